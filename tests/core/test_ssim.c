/* test_ssim.c - SSIM and MS-SSIM: identities (SSIM(x, x) = 1), monotone
 * decrease with noise, agreement with a naive reference written here (2-D
 * Gaussian window summed directly at every valid position, no separable
 * filtering) on small single- and multi-channel cases, the scale count and the
 * NaN conventions for images too small. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/rng.h"
#include "eval/ssim.h"

/* --- naive reference ------------------------------------------------------ */

/* Mean SSIM (and mean CS) of one channel, 11x11 window w(i, j) = g(i) g(j),
 * g(k) proportional to exp(-(k - 5)^2 / 4.5), summed directly. */
static void ref_ssim(const double *x, const double *y, int H, int W, double *ssim, double *cs)
{
    double g[11], gs = 0.0;
    for (int k = 0; k < 11; k++) {
        g[k] = exp(-(k - 5.0) * (k - 5.0) / (2.0 * 1.5 * 1.5));
        gs += g[k];
    }
    const double C1 = 1e-4, C2 = 9e-4;
    double s = 0.0, c = 0.0;
    int n = 0;
    for (int r = 0; r + 11 <= H; r++)
        for (int q = 0; q + 11 <= W; q++) {
            double mx = 0, my = 0, xx = 0, yy = 0, xy = 0;
            for (int i = 0; i < 11; i++)
                for (int j = 0; j < 11; j++) {
                    double w = g[i] * g[j] / (gs * gs);
                    double a = x[(r + i) * W + q + j], b = y[(r + i) * W + q + j];
                    mx += w * a;
                    my += w * b;
                    xx += w * a * a;
                    yy += w * b * b;
                    xy += w * a * b;
                }
            double vx = xx - mx * mx, vy = yy - my * my, cv = xy - mx * my;
            double cs1 = (2 * cv + C2) / (vx + vy + C2);
            s += (2 * mx * my + C1) / (mx * mx + my * my + C1) * cs1;
            c += cs1;
            n++;
        }
    *ssim = s / n;
    *cs = c / n;
}

static void fill(float *x, size_t n, struct dim_rng *r)
{
    for (size_t i = 0; i < n; i++)
        x[i] = dim_rng_uniform(r);
}

/* y = clamp(x + sigma * N(0, 1)) */
static void noisy(float *y, const float *x, size_t n, float sigma, struct dim_rng *r)
{
    for (size_t i = 0; i < n; i++) {
        float v = x[i] + sigma * dim_rng_normal(r);
        y[i] = v < 0 ? 0 : (v > 1 ? 1 : v);
    }
}

/* A smooth test image: a blurred blob pattern in [0, 1]. */
static void smooth(float *x, int C, int H, int W, uint64_t seed)
{
    struct dim_rng r;
    dim_rng_seed(&r, seed, 1);
    for (int c = 0; c < C; c++) {
        double fx = 0.1 + 0.3 * dim_rng_uniform(&r), fy = 0.1 + 0.3 * dim_rng_uniform(&r);
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++)
                x[(c * H + i) * W + j] = (float)(0.5 + 0.4 * sin(fx * i) * cos(fy * j + c));
    }
}

static void test_identical_images_score_one(void **state)
{
    (void)state;
    enum { C = 3, H = 32, W = 32 };
    static float x[2 * C * H * W];
    struct dim_rng r;
    dim_rng_seed(&r, 1, 1);
    fill(x, sizeof x / sizeof x[0], &r);
    double s, ms;
    int scales;
    assert_int_equal(dim_ssim_mean(x, x, 2, C, H, W, &s, &ms, &scales, NULL), 0);
    assert_true(fabs(s - 1.0) < 1e-9);
    assert_true(fabs(ms - 1.0) < 1e-9);
    assert_int_equal(scales, 2);
    /* constant images: every variance is 0 and the constants make the ratio 1 */
    static float k[H * W];
    for (int i = 0; i < H * W; i++)
        k[i] = 0.25f;
    assert_int_equal(dim_ssim_mean(k, k, 1, 1, H, W, &s, &ms, NULL, NULL), 0);
    assert_true(fabs(s - 1.0) < 1e-9 && fabs(ms - 1.0) < 1e-9);
}

static void test_ssim_decreases_with_noise(void **state)
{
    (void)state;
    enum { H = 40, W = 36 };
    static float x[H * W], y[H * W];
    smooth(x, 1, H, W, 3);
    struct dim_rng r;
    dim_rng_seed(&r, 2, 2);
    double prev = 1.0, prev_ms = 1.0;
    const float sigmas[4] = {0.01f, 0.05f, 0.15f, 0.4f};
    for (int k = 0; k < 4; k++) {
        noisy(y, x, H * W, sigmas[k], &r);
        double s, ms;
        assert_int_equal(dim_ssim_mean(x, y, 1, 1, H, W, &s, &ms, NULL, NULL), 0);
        print_message("noise %.2f: SSIM %.4f MS-SSIM %.4f\n", sigmas[k], s, ms);
        assert_true(s < prev && ms < prev_ms);
        assert_true(s > -1.0 && ms >= 0.0);
        prev = s;
        prev_ms = ms;
    }
    assert_true(prev < 0.5);
}

static void test_ssim_matches_naive_reference(void **state)
{
    (void)state;
    enum { C = 2, H = 13, W = 12 };
    float x[C * H * W], y[C * H * W];
    double xd[H * W], yd[H * W];
    struct dim_rng r;
    dim_rng_seed(&r, 7, 3);
    smooth(x, C, H, W, 9);
    noisy(y, x, C * H * W, 0.1f, &r);
    double want = 0.0;
    for (int c = 0; c < C; c++) {
        for (int i = 0; i < H * W; i++) {
            xd[i] = x[c * H * W + i];
            yd[i] = y[c * H * W + i];
        }
        double s, cs;
        ref_ssim(xd, yd, H, W, &s, &cs);
        want += s / C;
    }
    double got, ms;
    int scales = -1;
    assert_int_equal(dim_ssim_mean(x, y, 1, C, H, W, &got, &ms, &scales, NULL), 0);
    print_message("SSIM %.6f, reference %.6f\n", got, want);
    assert_true(fabs(got - want) < 1e-9);
    assert_true(want > 0.1 && want < 0.99); /* a non-trivial case */
    assert_true(isnan(ms));                 /* 13x12 halves to 6x6: one scale only */
    assert_int_equal(scales, 0);
}

/* Two scales (24x22 -> 12x11): MS-SSIM = CS_0^w0 * SSIM_1^w1 with w renormalised. */
static void test_msssim_matches_naive_reference(void **state)
{
    (void)state;
    enum { H = 24, W = 22 };
    float x[H * W], y[H * W];
    double xd[H * W], yd[H * W], x2[(H / 2) * (W / 2)], y2[(H / 2) * (W / 2)];
    struct dim_rng r;
    dim_rng_seed(&r, 8, 4);
    smooth(x, 1, H, W, 4);
    noisy(y, x, H * W, 0.08f, &r);
    for (int i = 0; i < H * W; i++) {
        xd[i] = x[i];
        yd[i] = y[i];
    }
    for (int i = 0; i < H / 2; i++)
        for (int j = 0; j < W / 2; j++) {
            x2[i * (W / 2) + j] = (xd[2 * i * W + 2 * j] + xd[2 * i * W + 2 * j + 1] +
                                   xd[(2 * i + 1) * W + 2 * j] + xd[(2 * i + 1) * W + 2 * j + 1]) /
                                  4;
            y2[i * (W / 2) + j] = (yd[2 * i * W + 2 * j] + yd[2 * i * W + 2 * j + 1] +
                                   yd[(2 * i + 1) * W + 2 * j] + yd[(2 * i + 1) * W + 2 * j + 1]) /
                                  4;
        }
    double s0, cs0, s1, cs1;
    ref_ssim(xd, yd, H, W, &s0, &cs0);
    ref_ssim(x2, y2, H / 2, W / 2, &s1, &cs1);
    double w0 = 0.0448 / (0.0448 + 0.2856), w1 = 0.2856 / (0.0448 + 0.2856);
    double want = pow(cs0, w0) * pow(s1, w1);
    double got_s, got_ms;
    int scales;
    assert_int_equal(dim_ssim_mean(x, y, 1, 1, H, W, &got_s, &got_ms, &scales, NULL), 0);
    print_message("MS-SSIM %.6f, reference %.6f\n", got_ms, want);
    assert_int_equal(scales, 2);
    assert_true(fabs(got_s - s0) < 1e-9);
    assert_true(fabs(got_ms - want) < 1e-9);
}

static void test_scale_counts_and_small_images(void **state)
{
    (void)state;
    assert_int_equal(dim_msssim_scales(32, 32), 2);
    assert_int_equal(dim_msssim_scales(28, 28), 2);
    assert_int_equal(dim_msssim_scales(64, 64), 3);
    assert_int_equal(dim_msssim_scales(96, 96), 4);
    assert_int_equal(dim_msssim_scales(176, 176), 5);
    assert_int_equal(dim_msssim_scales(1000, 1000), 5);
    assert_int_equal(dim_msssim_scales(21, 64), 0); /* 21 -> 10: one scale */
    assert_int_equal(dim_msssim_scales(10, 10), 0);
    float x[100] = {0};
    double s, ms;
    int scales = 9;
    assert_int_equal(dim_ssim_mean(x, x, 1, 1, 10, 10, &s, &ms, &scales, NULL), 0);
    assert_true(isnan(s) && isnan(ms));
    assert_int_equal(scales, 0);
    assert_int_equal(dim_ssim_mean(x, x, 0, 1, 10, 10, &s, &ms, &scales, NULL), DIM_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identical_images_score_one),
        cmocka_unit_test(test_ssim_decreases_with_noise),
        cmocka_unit_test(test_ssim_matches_naive_reference),
        cmocka_unit_test(test_msssim_matches_naive_reference),
        cmocka_unit_test(test_scale_counts_and_small_images),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

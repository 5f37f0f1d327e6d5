/* test_recon.c - the decoder on a frozen representation: the L2 loss against
 * its formula, its gradient by central differences with respect to the
 * decoder's outputs and parameters, training on a trivially decodable set
 * (images that are a fixed smooth function of y) down to a small MSE, and the
 * grid PNG (decoded back: size, tile placement, pixel values).
 *
 * Tolerances: the loss is quadratic in the outputs (eps 1e-2, rtol 5e-3, atol
 * 1e-5 for gradients of O(1e-2)); through the decoder (linear, ReLU) eps 5e-3,
 * rtol 3e-2, atol 1e-5 with ReLU kinks skipped. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/blas.h"
#include "data/image.h"
#include "eval/recon.h"
#include "eval/trainnet.h"
#include "evalfix.h"
#include "gradcheck.h"

/* --- the loss ------------------------------------------------------------- */

struct out_case {
    float out[12], t[12], dout[12];
};

static double out_loss(void *ctx)
{
    struct out_case *c = ctx;
    return dim_recon_l2_loss(NULL, c->out, c->t, 3, 4);
}

static void test_l2_loss_value_and_gradient(void **state)
{
    (void)state;
    struct out_case c;
    struct dim_rng rng;
    dim_rng_seed(&rng, 5, 5);
    gc_fill_uniform(c.out, 12, -0.5f, 1.5f, &rng);
    gc_fill_uniform(c.t, 12, 0.0f, 1.0f, &rng);
    double l = dim_recon_l2_loss(c.dout, c.out, c.t, 3, 4), want = 0.0;
    for (int i = 0; i < 12; i++)
        want += ((double)c.out[i] - c.t[i]) * ((double)c.out[i] - c.t[i]) / 12.0;
    assert_true(fabs(l - want) < 1e-9);
    struct gc_opts o = gc_opts_default("recon.l2.dout");
    o.rtol = 5e-3;
    o.atol = 1e-5;
    o.max_checks = 0;
    assert_int_equal(gc_check(&o, out_loss, &c, c.out, c.dout, 12, NULL), 0);
}

struct dec_case {
    struct dim_trainnet t;
    float y[4 * 3], target[4 * 5];
    bool *pos;
};

static double dec_loss(void *ctx)
{
    struct dec_case *c = ctx;
    const float *out = dim_trainnet_forward(&c->t, c->y, 4, NULL);
    return dim_recon_l2_loss(NULL, out, c->target, 4, 5);
}

static bool dec_kinked(void *ctx)
{
    struct dec_case *c = ctx;
    return evalfix_relu_changed(&c->t, 4, c->pos);
}

static void test_decoder_gradient(void **state)
{
    (void)state;
    struct dec_case c;
    memset(&c, 0, sizeof c);
    struct nn_net arch;
    dim_recon_arch(&arch, 3, 6, 5);
    assert_false(arch.bad);
    struct dim_rng rng;
    dim_rng_seed(&rng, 6, 1);
    assert_int_equal(dim_trainnet_create(&c.t, &arch, 4, &rng, NULL), 0);
    gc_fill_normal(c.y, 12, 1.0f, &rng);
    gc_fill_uniform(c.target, 20, 0.0f, 1.0f, &rng);
    c.pos = calloc(evalfix_relu_count(&c.t, 4), sizeof(bool));
    assert_non_null(c.pos);
    const float *out = dim_trainnet_forward(&c.t, c.y, 4, NULL);
    evalfix_relu_record(&c.t, 4, c.pos);
    dim_recon_l2_loss(dim_trainnet_dout(&c.t, 4), out, c.target, 4, 5);
    dim_trainnet_zero_grads(&c.t);
    dim_trainnet_backward(&c.t, c.y, NULL, 4);
    float *g = malloc(sizeof(float) * arch.n_params);
    assert_non_null(g);
    memcpy(g, c.t.grads, sizeof(float) * arch.n_params);
    struct gc_opts o = gc_opts_default("recon.decoder.params");
    o.eps = 5e-3;
    o.rtol = 3e-2;
    o.atol = 1e-5;
    o.max_checks = 0;
    o.kink = dec_kinked;
    struct gc_result res;
    assert_int_equal(gc_check(&o, dec_loss, &c, c.t.params, g, arch.n_params, &res), 0);
    assert_true(res.checked > 3 * res.skipped);
    free(g);
    free(c.pos);
    dim_trainnet_free(&c.t);
}

/* --- training ------------------------------------------------------------- */

/* n rows: y ~ N(0, I_3) (times a per-dimension scale), image (1, 8, 8) with
 * pixel p = 0.5 + 0.15 * (a_p . y), a_p fixed: decodable exactly (a linear map). */
static void decodable(float *Y, float *T, size_t n, uint64_t seed)
{
    struct dim_rng r, fixed;
    dim_rng_seed(&r, seed, 2);
    for (size_t i = 0; i < n; i++) {
        float y[3];
        for (int d = 0; d < 3; d++)
            Y[i * 3 + d] = 5.0f * (float)(d + 1) * (y[d] = dim_rng_normal(&r));
        dim_rng_seed(&fixed, 99, 1);
        for (int p = 0; p < 64; p++) {
            float v = 0.5f;
            for (int d = 0; d < 3; d++)
                v += 0.15f * (2.0f * dim_rng_uniform(&fixed) - 1.0f) * y[d];
            T[i * 64 + p] = v < 0 ? 0 : (v > 1 ? 1 : v);
        }
    }
}

static void test_decoder_learns_a_decodable_set(void **state)
{
    (void)state;
    const size_t ntr = 1024, nte = 256;
    float *Ytr = malloc(sizeof(float) * ntr * 3), *Ttr = malloc(sizeof(float) * ntr * 64);
    float *Yte = malloc(sizeof(float) * nte * 3), *Tte = malloc(sizeof(float) * nte * 64);
    float *R = malloc(sizeof(float) * nte * 64);
    assert_true(Ytr && Ttr && Yte && Tte && R);
    decodable(Ytr, Ttr, ntr, 1);
    decodable(Yte, Tte, nte, 2);
    double var = 0.0, mean = 0.0; /* MSE of predicting the mean image: the baseline */
    for (size_t j = 0; j < nte * 64; j++)
        mean += Tte[j] / (double)(nte * 64);
    for (size_t j = 0; j < nte * 64; j++)
        var += (Tte[j] - mean) * (Tte[j] - mean) / (double)(nte * 64);
    struct dim_recon_opts o;
    dim_recon_opts_default(&o);
    o.epochs = 30;
    o.hidden = 64;
    o.batch = 64;
    double mse = NAN;
    struct dim_err err;
    assert_int_equal(dim_recon_run(Ytr, Ttr, ntr, Yte, Tte, nte, 3, 64, &o, NULL, R, &mse, &err),
                     0);
    print_message("decoder test MSE %.6f (predicting the mean: %.6f)\n", mse, var);
    assert_true(mse < 1e-3 && mse < 0.05 * var);
    for (size_t j = 0; j < nte * 64; j++)
        assert_true(R[j] >= 0.0f && R[j] <= 1.0f);
    /* cancellation */
    atomic_bool stop = true;
    struct dim_hooks h = {.cancel = &stop};
    assert_int_equal(dim_recon_run(Ytr, Ttr, ntr, Yte, Tte, nte, 3, 64, &o, &h, R, &mse, &err),
                     DIM_ECANCELLED);
    assert_true(isnan(mse));
    assert_int_equal(dim_recon_run(Ytr, Ttr, 0, Yte, Tte, nte, 3, 64, &o, NULL, R, &mse, &err),
                     DIM_EINVAL);
    free(Ytr), free(Ttr), free(Yte), free(Tte), free(R);
}

/* --- the grid ------------------------------------------------------------- */

static void check_grid(int C)
{
    enum { N = 3, H = 5, W = 4 };
    float orig[N * 3 * H * W], rec[N * 3 * H * W];
    for (int i = 0; i < N * C * H * W; i++) {
        orig[i] = (float)(i % 7) / 6.0f;
        rec[i] = 1.0f - orig[i];
    }
    rec[0] = 2.0f; /* clamped to 1 */
    uint8_t *png = NULL;
    size_t len = 0;
    struct dim_err err;
    assert_int_equal(dim_recon_grid_png(orig, rec, N, C, H, W, &png, &len, &err), 0);
    assert_non_null(png);
    struct dim_image img;
    assert_int_equal(dim_image_decode(png, len, 0, &img, &err), 0);
    assert_int_equal(img.c, C);
    assert_int_equal(img.h, 2 * H + 6);
    assert_int_equal(img.w, N * (W + 2) + 2);
    const size_t plane = (size_t)img.h * img.w;
    assert_int_equal(img.px[0], 128); /* the gap */
    for (int i = 0; i < N; i++)
        for (int c = 0; c < C; c++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                    size_t s = (((size_t)i * C + c) * H + y) * W + x;
                    size_t top = c * plane + (size_t)(2 + y) * img.w + 2 + i * (W + 2) + x;
                    size_t bottom = top + (size_t)(H + 2) * img.w;
                    float r = rec[s] > 1.0f ? 1.0f : rec[s];
                    assert_int_equal(img.px[top], (int)lrintf(orig[s] * 255.0f));
                    assert_int_equal(img.px[bottom], (int)lrintf(r * 255.0f));
                }
    dim_image_free(&img);
    free(png);
}

static void test_grid_png_layout(void **state)
{
    (void)state;
    check_grid(1);
    check_grid(3);
    float x[4] = {0};
    uint8_t *png = (uint8_t *)1;
    size_t len = 1;
    assert_int_equal(dim_recon_grid_png(x, x, 1, 2, 1, 2, &png, &len, NULL), DIM_EINVAL);
    assert_null(png);
    assert_int_equal(dim_recon_grid_png(x, x, 0, 1, 1, 2, &png, &len, NULL), DIM_EINVAL);
}

int main(void)
{
    nn_blas_set_threads(1); /* small GEMMs: one thread is quicker and deterministic */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_l2_loss_value_and_gradient),
        cmocka_unit_test(test_decoder_gradient),
        cmocka_unit_test(test_decoder_learns_a_decodable_set),
        cmocka_unit_test(test_grid_png_layout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_norm.c - batch norm (train statistics, running statistics, inference) and
 * layer norm: forward properties against double-precision references, gradients
 * by central differences, accumulation. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gradcheck.h"
#include "nn/activation.h"
#include "nn/norm.h"

static float *alloc_floats(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof(float));
    assert_non_null(p);
    return p;
}

/* Input (B, C, HW) whose channel c has mean ~ 3c - 2 and std ~ 1 + c. */
static void fill_channels(float *x, size_t B, size_t C, size_t HW, struct dim_rng *rng)
{
    for (size_t b = 0; b < B; b++)
        for (size_t c = 0; c < C; c++)
            for (size_t i = 0; i < HW; i++)
                x[(b * C + c) * HW + i] =
                    (float)(3.0 * c - 2.0) + (1.0f + (float)c) * dim_rng_normal(rng);
}

/* Per-channel mean and biased variance of x (B, C, HW), in double. */
static void channel_stats(const float *x, size_t B, size_t C, size_t HW, size_t c, double *mean,
                          double *var)
{
    double s = 0.0, ss = 0.0, M = (double)(B * HW);
    for (size_t b = 0; b < B; b++)
        for (size_t i = 0; i < HW; i++)
            s += x[(b * C + c) * HW + i];
    *mean = s / M;
    for (size_t b = 0; b < B; b++)
        for (size_t i = 0; i < HW; i++) {
            double d = x[(b * C + c) * HW + i] - *mean;
            ss += d * d;
        }
    *var = ss / M;
}

static void test_bn_train_normalises(void **state)
{
    (void)state;
    const size_t shapes[][3] = {{8, 3, 1}, {4, 3, 5}, {2, 2, 9}};
    for (size_t s = 0; s < 3; s++) {
        size_t B = shapes[s][0], C = shapes[s][1], HW = shapes[s][2], n = B * C * HW;
        float *x = alloc_floats(n), *y = alloc_floats(n), *mean = alloc_floats(C),
              *invstd = alloc_floats(C), *gamma = alloc_floats(C), *beta = alloc_floats(C);
        struct dim_rng rng;
        dim_rng_seed(&rng, s, 1);
        fill_channels(x, B, C, HW, &rng);
        for (size_t c = 0; c < C; c++) {
            gamma[c] = 1.0f;
            beta[c] = 0.0f;
        }
        nn_batchnorm_forward_train(y, mean, invstd, x, gamma, beta, NULL, NULL, B, C, HW);
        for (size_t c = 0; c < C; c++) {
            double mx, vx, my, vy;
            channel_stats(x, B, C, HW, c, &mx, &vx);
            channel_stats(y, B, C, HW, c, &my, &vy);
            assert_true(fabs(my) < 1e-5);
            /* var(xhat) = var / (var + eps), within 1e-4 of 1 for var >= 1 */
            assert_true(fabs(vy - vx / (vx + NN_NORM_EPS)) < 1e-5);
            assert_true(fabs(vy - 1.0) < 1e-4);
            assert_true(fabs(mean[c] - mx) <= 1e-6 * (1.0 + fabs(mx)));
            assert_true(fabs(invstd[c] - 1.0 / sqrt(vx + NN_NORM_EPS)) <= 1e-6 * invstd[c]);
        }
        /* affine: channel c ends with mean beta_c and std |gamma_c| */
        for (size_t c = 0; c < C; c++) {
            gamma[c] = c % 2 ? -0.5f - (float)c : 2.0f;
            beta[c] = 1.0f - 0.75f * (float)c;
        }
        nn_batchnorm_forward_train(y, mean, invstd, x, gamma, beta, NULL, NULL, B, C, HW);
        for (size_t c = 0; c < C; c++) {
            double my, vy;
            channel_stats(y, B, C, HW, c, &my, &vy);
            assert_true(fabs(my - beta[c]) < 1e-5 * (1.0 + fabs(beta[c])));
            assert_true(fabs(sqrt(vy) - fabs(gamma[c])) < 1e-4 * fabs(gamma[c]));
        }
        free(x);
        free(y);
        free(mean);
        free(invstd);
        free(gamma);
        free(beta);
    }
}

static void test_bn_running_stats(void **state)
{
    (void)state;
    const size_t B = 5, C = 3, HW = 4;
    float x[5 * 3 * 4], y[5 * 3 * 4], mean[3], invstd[3];
    const float gamma[3] = {1, 1, 1}, beta[3] = {0, 0, 0};
    float rm[3] = {0.5f, -1.0f, 2.0f}, rv[3] = {2.0f, 0.5f, 1.0f};
    const float rm0[3] = {0.5f, -1.0f, 2.0f}, rv0[3] = {2.0f, 0.5f, 1.0f};
    struct dim_rng rng;
    dim_rng_seed(&rng, 42, 1);
    fill_channels(x, B, C, HW, &rng);
    nn_batchnorm_forward_train(y, mean, invstd, x, gamma, beta, rm, rv, B, C, HW);
    const double M = (double)(B * HW);
    for (size_t c = 0; c < C; c++) {
        double mx, vx;
        channel_stats(x, B, C, HW, c, &mx, &vx);
        double unbiased = vx * M / (M - 1.0);
        double want_m = 0.9 * rm0[c] + 0.1 * mx, want_v = 0.9 * rv0[c] + 0.1 * unbiased;
        assert_true(fabs(rm[c] - want_m) <= 1e-6 * (1.0 + fabs(want_m)));
        assert_true(fabs(rv[c] - want_v) <= 1e-6 * (1.0 + fabs(want_v)));
        /* the biased variance would be visibly different: the test tells them apart */
        assert_true(fabs((0.9 * rv0[c] + 0.1 * vx) - want_v) > 1e-3);
    }
    /* many updates on the same batch converge to the batch statistics */
    for (int it = 0; it < 300; it++)
        nn_batchnorm_forward_train(y, mean, invstd, x, gamma, beta, rm, rv, B, C, HW);
    for (size_t c = 0; c < C; c++) {
        double mx, vx;
        channel_stats(x, B, C, HW, c, &mx, &vx);
        assert_true(fabs(rm[c] - mx) < 1e-4 * (1.0 + fabs(mx)));
        assert_true(fabs(rv[c] - vx * M / (M - 1.0)) < 1e-4 * (1.0 + vx));
    }
}

static void test_bn_infer_uses_running_stats(void **state)
{
    (void)state;
    const size_t B = 4, C = 3, HW = 6, n = B * C * HW, per = C * HW;
    float x[4 * 3 * 6], y[4 * 3 * 6], y1[3 * 6];
    const float gamma[3] = {1.5f, -0.5f, 1.0f}, beta[3] = {0.25f, 1.0f, -2.0f};
    const float rm[3] = {0.5f, -1.0f, 2.0f}, rv[3] = {2.0f, 0.5f, 4.0f};
    struct dim_rng rng;
    dim_rng_seed(&rng, 43, 1);
    fill_channels(x, B, C, HW, &rng);
    nn_batchnorm_forward_infer(y, x, gamma, beta, rm, rv, B, C, HW);
    for (size_t i = 0; i < n; i++) {
        size_t c = (i / HW) % C;
        double want = gamma[c] * (x[i] - rm[c]) / sqrt(rv[c] + NN_NORM_EPS) + beta[c];
        assert_true(fabs(y[i] - want) <= 1e-5 * (1.0 + fabs(want)));
    }
    /* inference is per sample: one sample alone gives the same output */
    for (size_t b = 0; b < B; b++) {
        nn_batchnorm_forward_infer(y1, x + b * per, gamma, beta, rm, rv, 1, C, HW);
        assert_memory_equal(y1, y + b * per, sizeof y1);
    }
}

/* Batch norm train forward as a loss of (x, gamma, beta). */
struct bn_case {
    size_t B, C, HW, n;
    float *x, *y, *mean, *invstd, *gamma, *beta, *r, *dx, *dgamma, *dbeta;
};

static void bn_case_init(struct bn_case *k, size_t B, size_t C, size_t HW, uint64_t seed)
{
    k->B = B;
    k->C = C;
    k->HW = HW;
    k->n = B * C * HW;
    k->x = alloc_floats(k->n);
    k->y = alloc_floats(k->n);
    k->r = alloc_floats(k->n);
    k->dx = alloc_floats(k->n);
    k->mean = alloc_floats(C);
    k->invstd = alloc_floats(C);
    k->gamma = alloc_floats(C);
    k->beta = alloc_floats(C);
    k->dgamma = alloc_floats(C);
    k->dbeta = alloc_floats(C);
    struct dim_rng rng;
    dim_rng_seed(&rng, seed, 1);
    fill_channels(k->x, B, C, HW, &rng);
    gc_fill_uniform(k->gamma, C, 0.5f, 1.5f, &rng);
    gc_fill_normal(k->beta, C, 0.5f, &rng);
    gc_fill_normal(k->r, k->n, 1.0f, &rng);
}

static void bn_case_free(struct bn_case *k)
{
    free(k->x);
    free(k->y);
    free(k->r);
    free(k->dx);
    free(k->mean);
    free(k->invstd);
    free(k->gamma);
    free(k->beta);
    free(k->dgamma);
    free(k->dbeta);
}

static double bn_loss(void *ctx)
{
    struct bn_case *k = ctx;
    nn_batchnorm_forward_train(k->y, k->mean, k->invstd, k->x, k->gamma, k->beta, NULL, NULL, k->B,
                               k->C, k->HW);
    return gc_project(k->y, k->r, k->n, NULL);
}

static void test_bn_gradients(void **state)
{
    (void)state;
    /* HW = 1 (after a linear layer), HW > 1 (after a conv), and the smallest batch */
    const size_t shapes[][3] = {{6, 3, 1}, {3, 2, 5}, {2, 3, 4}, {2, 2, 1}};
    for (size_t s = 0; s < 4; s++) {
        struct bn_case k;
        bn_case_init(&k, shapes[s][0], shapes[s][1], shapes[s][2], 60 + s);
        float *dout = alloc_floats(k.n);
        bn_loss(&k);
        gc_project(k.y, k.r, k.n, dout);
        nn_batchnorm_backward(k.dx, k.dgamma, k.dbeta, dout, k.x, k.mean, k.invstd, k.gamma, k.B,
                              k.C, k.HW);
        struct gc_opts o = gc_opts_default("bn.din");
        o.max_checks = 0;
        assert_int_equal(gc_check(&o, bn_loss, &k, k.x, k.dx, k.n, NULL), 0);
        o.name = "bn.dgamma";
        assert_int_equal(gc_check(&o, bn_loss, &k, k.gamma, k.dgamma, k.C, NULL), 0);
        o.name = "bn.dbeta";
        assert_int_equal(gc_check(&o, bn_loss, &k, k.beta, k.dbeta, k.C, NULL), 0);

        /* accumulation: a second call adds the same again; din NULL leaves dgamma, dbeta alone */
        float *dx2 = alloc_floats(k.n), *dg2 = alloc_floats(k.C), *db2 = alloc_floats(k.C);
        memcpy(dx2, k.dx, sizeof(float) * k.n);
        memcpy(dg2, k.dgamma, sizeof(float) * k.C);
        memcpy(db2, k.dbeta, sizeof(float) * k.C);
        nn_batchnorm_backward(dx2, dg2, db2, dout, k.x, k.mean, k.invstd, k.gamma, k.B, k.C, k.HW);
        for (size_t i = 0; i < k.n; i++)
            assert_true(fabsf(dx2[i] - 2.0f * k.dx[i]) <= 1e-6f * (1.0f + fabsf(dx2[i])));
        for (size_t c = 0; c < k.C; c++) {
            assert_true(dg2[c] == 2.0f * k.dgamma[c]);
            assert_true(db2[c] == 2.0f * k.dbeta[c]);
        }
        memset(dg2, 0, sizeof(float) * k.C);
        memset(db2, 0, sizeof(float) * k.C);
        nn_batchnorm_backward(NULL, dg2, db2, dout, k.x, k.mean, k.invstd, k.gamma, k.B, k.C, k.HW);
        assert_memory_equal(dg2, k.dgamma, sizeof(float) * k.C);
        assert_memory_equal(db2, k.dbeta, sizeof(float) * k.C);
        free(dx2);
        free(dg2);
        free(db2);
        free(dout);
        bn_case_free(&k);
    }
}

static void test_ln_forward(void **state)
{
    (void)state;
    const size_t R = 4, D = 7;
    float x[4 * 7], y[4 * 7], mean[4], rstd[4], gamma[7], beta[7];
    struct dim_rng rng;
    dim_rng_seed(&rng, 70, 1);
    for (size_t r = 0; r < R; r++)
        for (size_t d = 0; d < D; d++)
            x[r * D + d] = 2.0f * (float)r - 3.0f + (1.0f + (float)r) * dim_rng_normal(&rng);
    for (size_t d = 0; d < D; d++) {
        gamma[d] = 1.0f;
        beta[d] = 0.0f;
    }
    nn_layernorm_forward(y, mean, rstd, x, gamma, beta, R, D);
    for (size_t r = 0; r < R; r++) {
        double m = 0.0, v = 0.0, mx = 0.0, vx = 0.0;
        for (size_t d = 0; d < D; d++) {
            m += y[r * D + d];
            mx += x[r * D + d];
        }
        m /= (double)D;
        mx /= (double)D;
        for (size_t d = 0; d < D; d++) {
            v += (y[r * D + d] - m) * (y[r * D + d] - m);
            vx += (x[r * D + d] - mx) * (x[r * D + d] - mx);
        }
        v /= (double)D;
        vx /= (double)D;
        assert_true(fabs(m) < 1e-5);
        assert_true(fabs(v - vx / (vx + NN_NORM_EPS)) < 1e-5);
        assert_true(fabs(mean[r] - mx) <= 1e-6 * (1.0 + fabs(mx)));
        assert_true(fabs(rstd[r] - 1.0 / sqrt(vx + NN_NORM_EPS)) <= 1e-6 * rstd[r]);
    }
    /* affine per feature d */
    gc_fill_normal(gamma, D, 1.0f, &rng);
    gc_fill_normal(beta, D, 1.0f, &rng);
    float y2[4 * 7];
    nn_layernorm_forward(y2, mean, rstd, x, gamma, beta, R, D);
    for (size_t i = 0; i < R * D; i++) {
        double want = (double)y[i] * gamma[i % D] + beta[i % D];
        assert_true(fabs(y2[i] - want) <= 1e-5 * (1.0 + fabs(want)));
    }
}

struct ln_case {
    size_t R, D;
    float *x, *y, *mean, *rstd, *gamma, *beta, *r, *dx, *dgamma, *dbeta;
};

static double ln_loss(void *ctx)
{
    struct ln_case *k = ctx;
    nn_layernorm_forward(k->y, k->mean, k->rstd, k->x, k->gamma, k->beta, k->R, k->D);
    return gc_project(k->y, k->r, k->R * k->D, NULL);
}

static void test_ln_gradients(void **state)
{
    (void)state;
    const size_t shapes[][2] = {{4, 7}, {1, 5}, {3, 2}, {2, 16}};
    for (size_t s = 0; s < 4; s++) {
        struct ln_case k;
        k.R = shapes[s][0];
        k.D = shapes[s][1];
        size_t n = k.R * k.D;
        k.x = alloc_floats(n);
        k.y = alloc_floats(n);
        k.r = alloc_floats(n);
        k.dx = alloc_floats(n);
        k.mean = alloc_floats(k.R);
        k.rstd = alloc_floats(k.R);
        k.gamma = alloc_floats(k.D);
        k.beta = alloc_floats(k.D);
        k.dgamma = alloc_floats(k.D);
        k.dbeta = alloc_floats(k.D);
        float *dout = alloc_floats(n);
        struct dim_rng rng;
        dim_rng_seed(&rng, 80 + s, 1);
        gc_fill_normal(k.x, n, 1.5f, &rng);
        gc_fill_uniform(k.gamma, k.D, 0.5f, 1.5f, &rng);
        gc_fill_normal(k.beta, k.D, 0.5f, &rng);
        gc_fill_normal(k.r, n, 1.0f, &rng);
        ln_loss(&k);
        gc_project(k.y, k.r, n, dout);
        nn_layernorm_backward(k.dx, k.dgamma, k.dbeta, dout, k.x, k.mean, k.rstd, k.gamma, k.R,
                              k.D);
        struct gc_opts o = gc_opts_default("ln.din");
        o.max_checks = 0;
        assert_int_equal(gc_check(&o, ln_loss, &k, k.x, k.dx, n, NULL), 0);
        o.name = "ln.dgamma";
        assert_int_equal(gc_check(&o, ln_loss, &k, k.gamma, k.dgamma, k.D, NULL), 0);
        o.name = "ln.dbeta";
        assert_int_equal(gc_check(&o, ln_loss, &k, k.beta, k.dbeta, k.D, NULL), 0);
        /* din NULL: parameter gradients alone, identical */
        float *dg = alloc_floats(k.D), *db = alloc_floats(k.D);
        nn_layernorm_backward(NULL, dg, db, dout, k.x, k.mean, k.rstd, k.gamma, k.R, k.D);
        assert_memory_equal(dg, k.dgamma, sizeof(float) * k.D);
        assert_memory_equal(db, k.dbeta, sizeof(float) * k.D);
        free(dg);
        free(db);
        free(dout);
        free(k.x);
        free(k.y);
        free(k.r);
        free(k.dx);
        free(k.mean);
        free(k.rstd);
        free(k.gamma);
        free(k.beta);
        free(k.dgamma);
        free(k.dbeta);
    }
}

/* The fused batch norm + ReLU gives bitwise what batch norm then ReLU give, forward
 * and backward, in both layouts (HW = 1 row-major, HW > 1 channel-major). */
static void test_bn_relu_fused_equals_separate(void **state)
{
    (void)state;
    struct dim_rng r;
    dim_rng_seed(&r, 21, 4);
    for (size_t HW = 1; HW <= 6; HW += 5) {
        const size_t B = 7, C = 70, n = B * C * HW;
        float *x = malloc(sizeof(float) * n), *dr = malloc(sizeof(float) * n);
        float g[70], b[70];
        gc_fill_normal(x, n, 1.0f, &r);
        gc_fill_normal(dr, n, 1.0f, &r);
        gc_fill_normal(g, C, 1.0f, &r);
        gc_fill_normal(b, C, 1.0f, &r);
        float *y1 = calloc(n, 4), *r1 = calloc(n, 4), *y2 = calloc(n, 4), *r2 = calloc(n, 4);
        float m1[70], s1[70], m2[70], s2[70], rm1[70] = {0}, rv1[70] = {0}, rm2[70] = {0},
                                                rv2[70] = {0};
        /* separate: BN, ReLU; then ReLU backward into d(BN out), BN backward */
        nn_batchnorm_forward_train(y1, m1, s1, x, g, b, rm1, rv1, B, C, HW);
        nn_relu_forward(r1, y1, n);
        float *dy = calloc(n, 4), *dx1 = calloc(n, 4), *dx2 = calloc(n, 4);
        float dg1[70] = {0}, db1[70] = {0}, dg2[70] = {0}, db2[70] = {0};
        nn_relu_backward(dy, dr, r1, n);
        nn_batchnorm_backward(dx1, dg1, db1, dy, x, m1, s1, g, B, C, HW);
        /* fused */
        nn_batchnorm_relu_forward_train(y2, r2, m2, s2, x, g, b, rm2, rv2, B, C, HW);
        nn_batchnorm_relu_backward(dx2, dg2, db2, dr, r2, x, m2, s2, g, B, C, HW);
        assert_memory_equal(y1, y2, n * sizeof(float));
        assert_memory_equal(r1, r2, n * sizeof(float));
        assert_memory_equal(rv1, rv2, sizeof rv1);
        assert_memory_equal(dx1, dx2, n * sizeof(float));
        assert_memory_equal(dg1, dg2, sizeof dg1);
        assert_memory_equal(db1, db2, sizeof db1);
        free(x), free(dr), free(y1), free(r1), free(y2), free(r2), free(dy), free(dx1), free(dx2);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bn_train_normalises),
        cmocka_unit_test(test_bn_running_stats),
        cmocka_unit_test(test_bn_infer_uses_running_stats),
        cmocka_unit_test(test_bn_gradients),
        cmocka_unit_test(test_ln_forward),
        cmocka_unit_test(test_ln_gradients),
        cmocka_unit_test(test_bn_relu_fused_equals_separate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_infer.c - the inference-only form (dim/infer.h, nn/infer_conv.h) against
 * the reference fp32 forward (dim_model_encode, nn_conv2d_forward_naive). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include <cmocka.h>

#include "base/parallel.h"
#include "base/rng.h"
#include "data/dataset.h"
#include "dim/infer.h"
#include "dim/model.h"
#include "dim/trainer.h"
#include "nn/infer_conv.h"

/* A "pool" of width 3 that runs the ranges one after another, last first, so
 * kernels that cut work by dim_parallel_width see three parts. */
static void reverse_run(void *pool, dim_range_fn fn, void *ctx, size_t n)
{
    (void)pool;
    for (size_t p = 3; p-- > 0;) {
        size_t b = n * p / 3, e = n * (p + 1) / 3;
        if (b < e)
            fn(ctx, b, e);
    }
}
static const struct dim_parallel three = {reverse_run, NULL, 3};

/* Largest |a - b| over the rows, each relative to its row's largest |a|. */
static double max_rel(const float *a, const float *b, size_t rows, size_t n)
{
    double worst = 0.0;
    for (size_t r = 0; r < rows; r++) {
        double scale = 0.0, d = 0.0;
        for (size_t i = 0; i < n; i++) {
            double x = fabs((double)a[r * n + i]), e = fabs((double)a[r * n + i] - b[r * n + i]);
            scale = x > scale ? x : scale;
            d = e > d ? e : d;
        }
        double rel = d / (scale > 0.0 ? scale : 1.0);
        worst = rel > worst ? rel : worst;
    }
    return worst;
}

/* Moves every batch norm away from the identity (gamma, beta, running mean and
 * variance), so that a fold that dropped or misplaced any of them shows. */
static void perturb_bn(struct nn_net *e, uint64_t seed)
{
    struct dim_rng r;
    dim_rng_seed(&r, seed, 7);
    for (int i = 0; i < e->n; i++) {
        const struct nn_layer *l = &e->L[i];
        if (l->op != NN_BN)
            continue;
        for (int c = 0; c < l->ic; c++) {
            e->params[l->w + c] *= 0.5f + dim_rng_uniform(&r);
            e->params[l->b + c] += 0.4f * dim_rng_uniform(&r) - 0.2f;
            e->state[l->rm + c] += 0.2f * dim_rng_uniform(&r) - 0.1f;
            e->state[l->rv + c] *= 0.5f + 1.5f * dim_rng_uniform(&r);
        }
    }
}

static double g_worst; /* the largest relative difference seen */

/* Compares every tap of m's folded form with the reference on B inputs x. */
static void check_taps(const struct dim_model *m, const struct dim_infer *inf, const float *x,
                       size_t B, double tol)
{
    struct dim_err err = {0};
    struct dim_encode_ws rws;
    struct dim_infer_ws iws;
    assert_int_equal(dim_encode_ws_create(&rws, m, B, &err), 0);
    assert_int_equal(dim_infer_ws_create(&iws, inf, B, &err), 0);
    for (int t = 0; t < 4; t++) {
        size_t n = dim_model_tap_size(m, (enum dim_tap)t);
        float *ref = malloc(sizeof(float) * B * n);
        assert_non_null(ref);
        memcpy(ref, dim_model_encode(m, &rws, x, B, (enum dim_tap)t), sizeof(float) * B * n);
        const float *got = dim_infer_encode(inf, &iws, x, B, (enum dim_tap)t);
        double rel = max_rel(ref, got, B, n);
        g_worst = rel > g_worst ? rel : g_worst;
        if (!(rel <= tol))
            fail_msg("tap %s, batch %zu: relative difference %.3g > %.3g",
                     dim_tap_name((enum dim_tap)t), B, rel, tol);
        /* not vacuous: the tap has signal */
        double s = 0.0;
        for (size_t i = 0; i < B * n; i++)
            s += fabs((double)ref[i]);
        assert_true(s > 0.0);
        free(ref);
    }
    dim_encode_ws_free(&rws);
    dim_infer_ws_free(&iws);
}

/* A basic32x32 model trained for two steps on Fashion-MNIST (so its running
 * statistics are a real batch's), batch norms then moved further; embeddings of
 * real test images, every tap, batches of 1, 7 and 96, serially and cut in
 * three parts. */
static void test_real_images_match_reference(void **state)
{
    (void)state;
    struct dim_err err = {0};
    struct dim_dataset train, test;
    if (dim_dataset_load("fashion-mnist", DIM_SPLIT_TRAIN, NULL, &train, &err) != 0)
        fail_msg("loading fashion-mnist: %s", err.msg);
    if (dim_dataset_load("fashion-mnist", DIM_SPLIT_TEST, NULL, &test, &err) != 0)
        fail_msg("loading fashion-mnist test: %s", err.msg);
    struct dim_config cfg;
    dim_config_default(&cfg);
    cfg.batch = 32;
    struct dim_model *m = NULL;
    assert_int_equal(dim_model_create(&m, &cfg, true, &err), 0);
    struct dim_preprocess pp = dim_model_preprocess(m);
    struct dim_trainer *t = NULL;
    assert_int_equal(dim_trainer_create(&t, m, &train, &pp, &err), 0);
    struct dim_losses ls;
    for (int i = 0; i < 2; i++)
        assert_int_equal(dim_trainer_step(t, &ls, &err), 0);
    dim_trainer_free(t);
    perturb_bn(&m->enc, 3);

    const size_t N = 96, in = (size_t)pp.c * pp.h * pp.w;
    float *x = malloc(sizeof(float) * N * in);
    uint32_t idx[96];
    for (uint32_t i = 0; i < N; i++)
        idx[i] = 97 * i % (uint32_t)test.n;
    dim_dataset_batch(&test, idx, N, &pp, NULL, x, NULL);

    struct dim_infer *inf = NULL;
    assert_int_equal(dim_infer_create(&inf, m, &err), 0);
    assert_int_equal((int)inf->n, 5); /* conv x3, linear x2: every norm and ReLU folded */
    assert_true(inf->n_params < m->n_main);
    const size_t Bs[] = {1, 7, 96};
    for (int p = 0; p < 2; p++) {
        dim_parallel_use(p ? &three : NULL);
        for (int i = 0; i < 3; i++)
            check_taps(m, inf, x, Bs[i], 1e-4);
    }
    dim_parallel_use(NULL);
    printf("    real images, every tap, batches 1, 7, 96: largest relative difference %.3g\n",
           g_worst);
    dim_infer_free(inf);
    free(x);
    dim_model_free(m);
    dim_dataset_free(&train);
    dim_dataset_free(&test);
}

/* The other presets' geometries (5x5 stride 2 pad 2; four 4x4 layers) and three
 * input channels (channels-last input), from random inputs. */
static void test_presets_and_channels(void **state)
{
    (void)state;
    const enum dim_preset ps[] = {DIM_BASIC28, DIM_BASIC64, DIM_BASIC32};
    const int cs[] = {1, 1, 3};
    for (int k = 0; k < 3; k++) {
        struct dim_err err = {0};
        struct dim_config cfg;
        dim_config_default(&cfg);
        cfg.preset = ps[k];
        cfg.in_c = cs[k];
        cfg.seed = 11 + (uint64_t)k;
        struct dim_model *m = NULL;
        assert_int_equal(dim_model_create(&m, &cfg, false, &err), 0);
        perturb_bn(&m->enc, 5 + (uint64_t)k);
        const size_t B = 5, in = nn_net_in_size(&m->enc);
        float *x = malloc(sizeof(float) * B * in);
        struct dim_rng r;
        dim_rng_seed(&r, 9, (uint64_t)k);
        for (size_t i = 0; i < B * in; i++)
            x[i] = 2.0f * dim_rng_uniform(&r) - 1.0f;
        struct dim_infer *inf = NULL;
        assert_int_equal(dim_infer_create(&inf, m, &err), 0);
        dim_parallel_use(&three);
        check_taps(m, inf, x, B, 1e-4);
        dim_parallel_use(NULL);
        check_taps(m, inf, x, 1, 1e-4);
        dim_infer_free(inf);
        free(x);
        dim_model_free(m);
    }
}

/* The kernel alone against the naive direct convolution, channels-last, with
 * blocks of 8 pixels (many blocks and a remainder) and with one block. */
static void test_conv_kernel_matches_naive(void **state)
{
    (void)state;
    struct nn_conv2d cv;
    assert_int_equal(nn_conv2d_init(&cv, 5, 9, 7, 6, 3, 2, 1), 0);
    const size_t B = 3, C = 5, HW = 9 * 7, OHW = (size_t)cv.OH * cv.OW, KK = 9;
    float x[3 * 5 * 63], xl[3 * 5 * 63], w[6 * 5 * 9], wl[6 * 5 * 9], bias[6];
    float ref[3 * 6 * 20], refl[3 * 6 * 20], got[3 * 6 * 20];
    assert_true(OHW == 20);
    struct dim_rng r;
    dim_rng_seed(&r, 4, 0);
    for (size_t i = 0; i < B * C * HW; i++)
        x[i] = 2.0f * dim_rng_uniform(&r) - 1.0f;
    for (size_t i = 0; i < 6 * C * KK; i++)
        w[i] = 2.0f * dim_rng_uniform(&r) - 1.0f;
    for (int i = 0; i < 6; i++)
        bias[i] = 0.3f * (float)i - 0.8f;
    for (size_t oc = 0; oc < 6; oc++)
        for (size_t c = 0; c < C; c++)
            for (size_t q = 0; q < KK; q++)
                wl[(oc * KK + q) * C + c] = w[(oc * C + c) * KK + q];
    nn_nchw_to_nhwc(xl, x, B, C, HW);
    nn_conv2d_forward_naive(ref, x, w, bias, &cv, B);
    for (size_t i = 0; i < B * 6 * OHW; i++)
        ref[i] = ref[i] > 0.0f ? ref[i] : 0.0f;
    nn_nchw_to_nhwc(refl, ref, B, 6, OHW);
    const size_t rows[] = {8, 64};
    for (int k = 0; k < 2; k++) {
        size_t sf = nn_infer_conv_scratch_floats(&cv, rows[k], 3);
        float *scratch = malloc(sizeof(float) * sf);
        memset(got, 0xff, sizeof got);
        dim_parallel_use(&three);
        nn_infer_conv_forward(got, scratch, xl, wl, bias, true, &cv, rows[k], 3, B);
        dim_parallel_use(NULL);
        double worst = 0.0;
        for (size_t i = 0; i < B * 6 * OHW; i++) {
            double d = fabs((double)got[i] - refl[i]);
            worst = d > worst ? d : worst;
        }
        if (!(worst < 1e-5))
            fail_msg("rows %zu: largest difference %.3g", rows[k], worst);
        free(scratch);
    }
}

/* A tap on a batch norm's output leaves its ReLU alone, which has nothing to
 * fold into: refused with a message naming the layer, not computed. */
static void test_unfoldable_tap_refused(void **state)
{
    (void)state;
    struct dim_err err = {0};
    struct dim_config cfg;
    dim_config_default(&cfg);
    struct dim_model *m = NULL;
    assert_int_equal(dim_model_create(&m, &cfg, false, &err), 0);
    int saved = m->tap_layer[DIM_TAP_FC];
    m->tap_layer[DIM_TAP_FC] = saved - 1; /* the BN before the ReLU */
    struct dim_infer *inf = NULL;
    assert_int_equal(dim_infer_create(&inf, m, &err), DIM_EINVAL);
    assert_null(inf);
    assert_non_null(strstr(err.msg, "(relu)"));
    m->tap_layer[DIM_TAP_FC] = saved;
    dim_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_images_match_reference),
        cmocka_unit_test(test_presets_and_channels),
        cmocka_unit_test(test_conv_kernel_matches_naive),
        cmocka_unit_test(test_unfoldable_tap_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

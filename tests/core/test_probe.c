/* test_probe.c - linear and MLP probes, the pixel baseline, and feature extraction
 * from an encoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include <cmocka.h>

#include "eval/probe.h"
#include "dimfix.h"

/* n points in dim dimensions: class k centred at +3 on axis k (k < classes), noise 1. */
static void blobs(float *X, uint16_t *y, size_t n, size_t dim, int classes, uint64_t seed)
{
    struct dim_rng r;
    dim_rng_seed(&r, seed, 2);
    for (size_t i = 0; i < n; i++) {
        y[i] = (uint16_t)(i % (size_t)classes);
        for (size_t d = 0; d < dim; d++)
            X[i * dim + d] = dim_rng_normal(&r) + (d == y[i] ? 3.0f : 0.0f) + 5.0f;
    }
}

static double probe_accuracy(enum dim_probe_kind kind, bool shuffle_labels)
{
    const size_t ntr = 600, nte = 300, dim = 12;
    const int classes = 4;
    float *Xtr = malloc(sizeof(float) * ntr * dim), *Xte = malloc(sizeof(float) * nte * dim);
    uint16_t *ytr = malloc(sizeof(uint16_t) * ntr), *yte = malloc(sizeof(uint16_t) * nte);
    blobs(Xtr, ytr, ntr, dim, classes, 1);
    blobs(Xte, yte, nte, dim, classes, 2);
    if (shuffle_labels) { /* labels independent of features: nothing to learn */
        struct dim_rng r;
        dim_rng_seed(&r, 5, 5);
        for (size_t i = 0; i < nte; i++)
            yte[i] = (uint16_t)dim_rng_below(&r, (uint32_t)classes);
    }
    struct dim_probe_opts o;
    dim_probe_opts_default(&o);
    o.kind = kind;
    o.epochs = 100;
    o.batch = 64;
    struct dim_linclass_result r;
    struct dim_err err;
    assert_int_equal(dim_probe_run(Xtr, ytr, ntr, Xte, yte, nte, dim, classes, &o, &r, &err), 0);
    if (kind == DIM_PROBE_LINEAR) { /* the converged solve reports itself */
        assert_int_equal(r.stop, NN_LBFGS_CONVERGED);
        assert_true(r.gnorm <= o.linear.gtol && r.iterations > 0);
    } else {
        assert_true(isnan(r.lambda));
    }
    free(Xtr), free(Xte), free(ytr), free(yte);
    return r.accuracy;
}

static void test_linear_probe_separates_blobs(void **state)
{
    (void)state;
    double acc = probe_accuracy(DIM_PROBE_LINEAR, false);
    print_message("linear probe accuracy %.4f\n", acc);
    /* Bayes accuracy here is about 0.97; a broken probe sits near 0.25 */
    assert_true(acc > 0.9);
}

static void test_mlp_probe_separates_blobs(void **state)
{
    (void)state;
    assert_true(probe_accuracy(DIM_PROBE_MLP, false) > 0.9);
}

static void test_probe_at_chance_on_random_labels(void **state)
{
    (void)state;
    double acc = probe_accuracy(DIM_PROBE_LINEAR, true);
    assert_true(acc > 0.12 && acc < 0.40);
}

static void test_probe_rejects_bad_arguments(void **state)
{
    (void)state;
    float X[8] = {0};
    uint16_t y[4] = {0, 1, 0, 1};
    struct dim_probe_opts o;
    dim_probe_opts_default(&o);
    struct dim_linclass_result acc;
    struct dim_err err;
    assert_int_equal(dim_probe_run(X, y, 4, X, y, 4, 2, 1, &o, &acc, &err), DIM_EINVAL);
    assert_int_equal(dim_probe_run(X, y, 0, X, y, 4, 2, 2, &o, &acc, &err), DIM_EINVAL);
    o.kind = DIM_PROBE_MLP;
    o.epochs = 0;
    assert_int_equal(dim_probe_run(X, y, 4, X, y, 4, 2, 2, &o, &acc, &err), DIM_EINVAL);
}

/* Features of every tap match a direct dim_model_encode of each image. */
static void test_features_match_encoder(void **state)
{
    (void)state;
    struct dim_config cfg = dimfix_config(64, 16, 64);
    struct dim_model *m;
    struct dim_err err;
    assert_int_equal(dim_model_create(&m, &cfg, false, &err), 0);
    struct dim_dataset ds;
    dimfix_random_dataset(&ds, 300, 3, 4); /* more than one 256-image extraction chunk */
    struct dim_preprocess pp = {1, 28, 28, 0, 0};
    struct dim_features f;
    assert_int_equal(dim_features_extract(m, &ds, &pp, &f, &err), 0);
    assert_int_equal(f.n, ds.n);
    assert_int_equal(f.dim[DIM_TAP_CONV], 128 * 7 * 7);
    assert_int_equal(f.dim[DIM_TAP_FC], 1024);
    assert_int_equal(f.dim[DIM_TAP_Y], 64);
    struct dim_encode_ws ws;
    assert_int_equal(dim_encode_ws_create(&ws, m, 1, &err), 0);
    float x[784];
    for (size_t i = 0; i < ds.n; i += 37) {
        uint32_t idx = (uint32_t)i;
        dim_dataset_batch(&ds, &idx, 1, &pp, NULL, x, NULL);
        for (int t = 0; t < DIM_N_PROBE_TAPS; t++) {
            const float *e = dim_model_encode(m, &ws, x, 1, (enum dim_tap)t);
            for (size_t d = 0; d < f.dim[t]; d++)
                assert_true(fabsf(e[d] - f.X[t][i * f.dim[t] + d]) <= 1e-4f * (1 + fabsf(e[d])));
        }
        assert_int_equal(f.labels[i], ds.labels[i]);
    }
    dim_encode_ws_free(&ws);
    dim_features_free(&f);
    dim_model_free(m);
    dim_dataset_free(&ds);
}

/* dim_probe_model is features of both splits with the model's own
 * preprocessing, then dim_probe_run per tap: the same accuracies as those steps
 * run by hand, and an error names the tap. */
static void test_probe_model_is_features_then_probes(void **state)
{
    (void)state;
    struct dim_config cfg = dimfix_config(16, 16, 64);
    struct dim_model *m;
    struct dim_err err;
    assert_int_equal(dim_model_create(&m, &cfg, false, &err), 0);
    const struct dim_preprocess pp = dim_model_preprocess(m);
    assert_int_equal(pp.c, cfg.in_c);
    assert_int_equal(pp.h, m->in_h);
    assert_int_equal(pp.w, m->in_w);
    assert_int_equal(pp.random_crop, 0);
    assert_int_equal(pp.random_flip, 0);
    struct dim_dataset tr, te;
    dimfix_random_dataset(&tr, 120, 3, 5);
    dimfix_random_dataset(&te, 60, 3, 6);
    struct dim_probe_opts o;
    dim_probe_opts_default(&o);
    struct dim_linclass_result acc[DIM_N_PROBE_TAPS];
    if (dim_probe_model(m, &tr, &te, &o, acc, &err) != 0)
        fail_msg("dim_probe_model: %s", err.msg);
    struct dim_features ftr, fte;
    assert_int_equal(dim_features_extract(m, &tr, &pp, &ftr, &err), 0);
    assert_int_equal(dim_features_extract(m, &te, &pp, &fte, &err), 0);
    for (int t = 0; t < DIM_N_PROBE_TAPS; t++) {
        struct dim_linclass_result want;
        assert_int_equal(dim_probe_run(ftr.X[t], ftr.labels, ftr.n, fte.X[t], fte.labels, fte.n,
                                       ftr.dim[t], tr.n_classes, &o, &want, &err),
                         0);
        assert_true(acc[t].accuracy == want.accuracy);
        assert_int_equal(acc[t].iterations, want.iterations);
    }
    /* the pixel row: the same probe on the images dim_model_preprocess makes */
    struct dim_linclass_result px, want_px;
    assert_int_equal(dim_probe_pixels(&tr, &te, &pp, &o, &px, &err), 0);
    float *Xtr, *Xte;
    uint16_t *ytr, *yte;
    assert_int_equal(dim_pixels_extract(&tr, &pp, &Xtr, &ytr, &err), 0);
    assert_int_equal(dim_pixels_extract(&te, &pp, &Xte, &yte, &err), 0);
    assert_true(Xtr[0] >= -1.0f && Xtr[0] <= 1.0f && ytr[7] == tr.labels[7]);
    assert_int_equal(dim_probe_run(Xtr, ytr, tr.n, Xte, yte, te.n, (size_t)pp.c * pp.h * pp.w,
                                   tr.n_classes, &o, &want_px, &err),
                     0);
    assert_true(px.accuracy == want_px.accuracy);
    free(Xtr), free(Xte), free(ytr), free(yte);
    o.linear.gtol = 0; /* refused by dim_probe_run: the message names the first tap */
    assert_int_not_equal(dim_probe_model(m, &tr, &te, &o, acc, &err), 0);
    assert_non_null(strstr(err.msg, "tap conv: "));
    dim_features_free(&ftr);
    dim_features_free(&fte);
    dim_dataset_free(&tr);
    dim_dataset_free(&te);
    dim_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_probe_separates_blobs),
        cmocka_unit_test(test_mlp_probe_separates_blobs),
        cmocka_unit_test(test_probe_at_chance_on_random_labels),
        cmocka_unit_test(test_probe_rejects_bad_arguments),
        cmocka_unit_test(test_features_match_encoder),
        cmocka_unit_test(test_probe_model_is_features_then_probes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

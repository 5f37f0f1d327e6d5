/* test_svm.c - the linear multiclass SVM: the Crammer-Singer hinge against a
 * hand-computed case, its gradient by central differences with respect to the
 * scores and through the linear layer with respect to W and b, and the
 * classifier: perfect on a linearly separable set, at chance on labels that are
 * independent of the features, spread over seeds, on features of every tap.
 *
 * Tolerances: the hinge is piecewise linear, so central differences are exact
 * away from its kinks (a margin crossing 0, or the highest wrong class
 * changing): eps 1e-3, rtol 5e-3, atol 1e-4, entries whose perturbation changes
 * the active set skipped (kink callback). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/blas.h"
#include "eval/svm.h"
#include "eval/trainnet.h"
#include "gradcheck.h"

static void test_hinge_loss_hand_computed(void **state)
{
    (void)state;
    /* row 0: y = 0, s = (2, 1.5, -1): margin 1 + 1.5 - 2 = 0.5 (class 1)
     * row 1: y = 2, s = (0, 3, 1):    margin 1 + 3 - 1 = 3   (class 1)
     * row 2: y = 1, s = (0, 5, 1):    margin 1 + 1 - 5 < 0   (inactive) */
    const float s[9] = {2, 1.5f, -1, 0, 3, 1, 0, 5, 1};
    const uint16_t y[3] = {0, 2, 1};
    float ds[9];
    double l = dim_svm_hinge_loss(ds, s, y, 3, 3);
    assert_true(fabs(l - 3.5 / 3.0) < 1e-9);
    const float third = 1.0f / 3.0f;
    const float want[9] = {-third, third, 0, 0, third, -third, 0, 0, 0};
    for (int i = 0; i < 9; i++)
        assert_true(fabsf(ds[i] - want[i]) < 1e-7f);
}

/* Active set of the hinge per row: -1 inactive, else the highest wrong class. */
static void active_set(int *act, const float *s, const uint16_t *y, size_t B, size_t K)
{
    for (size_t i = 0; i < B; i++) {
        size_t best = y[i] == 0 ? 1 : 0;
        for (size_t k = 0; k < K; k++)
            if (k != y[i] && s[i * K + k] > s[i * K + best])
                best = k;
        act[i] = 1.0f + s[i * K + best] - s[i * K + y[i]] > 0.0f ? (int)best : -1;
    }
}

struct lin_case {
    struct dim_trainnet t;
    float x[6 * 5];
    uint16_t y[6];
    int act0[6];
    float s[6 * 4];
    size_t kinks;
};

static double lin_loss(void *ctx)
{
    struct lin_case *c = ctx;
    const float *s = dim_trainnet_forward(&c->t, c->x, 6, NULL);
    memcpy(c->s, s, sizeof c->s);
    float ds[24];
    return dim_svm_hinge_loss(ds, s, c->y, 6, 4);
}

static bool lin_kinked(void *ctx)
{
    struct lin_case *c = ctx;
    int act[6];
    active_set(act, c->s, c->y, 6, 4);
    bool k = memcmp(act, c->act0, sizeof act) != 0;
    c->kinks += k;
    return k;
}

static void test_hinge_gradient_through_linear_layer(void **state)
{
    (void)state;
    struct lin_case c;
    memset(&c, 0, sizeof c);
    struct nn_net arch;
    nn_net_init(&arch, 5, 1, 1);
    nn_net_linear(&arch, 4, true);
    struct dim_rng rng;
    dim_rng_seed(&rng, 12, 1);
    assert_int_equal(dim_trainnet_create(&c.t, &arch, 6, &rng, NULL), 0);
    gc_fill_normal(c.t.params, arch.n_params, 1.0f, &rng); /* scores of O(1): some active */
    gc_fill_normal(c.x, 30, 1.0f, &rng);
    for (int i = 0; i < 6; i++)
        c.y[i] = (uint16_t)(i % 4);
    const float *s = dim_trainnet_forward(&c.t, c.x, 6, NULL);
    active_set(c.act0, s, c.y, 6, 4);
    int n_active = 0;
    for (int i = 0; i < 6; i++)
        n_active += c.act0[i] >= 0;
    assert_true(n_active >= 3);
    dim_svm_hinge_loss(dim_trainnet_dout(&c.t, 6), s, c.y, 6, 4);
    dim_trainnet_zero_grads(&c.t);
    dim_trainnet_backward(&c.t, c.x, NULL, 6);
    float g[24];
    memcpy(g, c.t.grads, sizeof(float) * arch.n_params);
    struct gc_opts o = gc_opts_default("svm.hinge.params");
    o.eps = 1e-3;
    o.rtol = 5e-3;
    o.atol = 1e-4;
    o.max_checks = 0;
    o.kink = lin_kinked;
    struct gc_result res;
    assert_int_equal(gc_check(&o, lin_loss, &c, c.t.params, g, arch.n_params, &res), 0);
    assert_true(res.checked >= 20);
    dim_trainnet_free(&c.t);
}

/* n points in dim dimensions, class k centred at +sep on axis k, noise 0.3 *
 * N(0, 1) plus an offset of 2 on every feature (standardisation must remove it). */
static void blobs(float *X, uint16_t *y, size_t n, size_t dim, int classes, float sep,
                  uint64_t seed)
{
    struct dim_rng r;
    dim_rng_seed(&r, seed, 4);
    for (size_t i = 0; i < n; i++) {
        y[i] = (uint16_t)(i % (size_t)classes);
        for (size_t d = 0; d < dim; d++)
            X[i * dim + d] = 0.3f * dim_rng_normal(&r) + (d == y[i] ? sep : 0.0f) + 2.0f;
    }
}

static double svm_accuracy(bool random_labels, int seeds, double *sd)
{
    const size_t ntr = 600, nte = 300, dim = 8;
    const int classes = 4;
    float *Xtr = malloc(sizeof(float) * ntr * dim), *Xte = malloc(sizeof(float) * nte * dim);
    uint16_t *ytr = malloc(sizeof(uint16_t) * ntr), *yte = malloc(sizeof(uint16_t) * nte);
    assert_true(Xtr && Xte && ytr && yte);
    blobs(Xtr, ytr, ntr, dim, classes, 4.0f, 1);
    blobs(Xte, yte, nte, dim, classes, 4.0f, 2);
    if (random_labels) {
        struct dim_rng r;
        dim_rng_seed(&r, 6, 6);
        for (size_t i = 0; i < ntr; i++)
            ytr[i] = (uint16_t)dim_rng_below(&r, (uint32_t)classes);
        for (size_t i = 0; i < nte; i++)
            yte[i] = (uint16_t)dim_rng_below(&r, (uint32_t)classes);
    }
    struct dim_svm_opts o;
    dim_svm_opts_default(&o);
    o.epochs = 20;
    o.batch = 64;
    o.seeds = seeds;
    double mean = -1.0;
    struct dim_err err;
    assert_int_equal(
        dim_svm_run(Xtr, ytr, ntr, Xte, yte, nte, dim, classes, &o, NULL, &mean, sd, &err), 0);
    free(Xtr), free(Xte), free(ytr), free(yte);
    return mean;
}

static void test_svm_separates_separable_set(void **state)
{
    (void)state;
    double sd;
    double acc = svm_accuracy(false, 2, &sd);
    print_message("SVM on separable blobs: %.4f +- %.4f\n", acc, sd);
    assert_true(acc == 1.0);
    assert_true(sd == 0.0);
}

static void test_svm_at_chance_on_shuffled_labels(void **state)
{
    (void)state;
    double sd;
    double acc = svm_accuracy(true, 3, &sd);
    print_message("SVM on random labels: %.4f +- %.4f\n", acc, sd);
    assert_true(acc > 0.12 && acc < 0.40);
    assert_true(sd >= 0.0 && sd < 0.1);
}

static void test_svm_single_seed_has_zero_spread_and_is_reproducible(void **state)
{
    (void)state;
    double sd1, sd2;
    double a1 = svm_accuracy(true, 1, &sd1), a2 = svm_accuracy(true, 1, &sd2);
    assert_true(sd1 == 0.0 && a1 == a2);
}

static void test_svm_rejects_bad_arguments_and_cancels(void **state)
{
    (void)state;
    float X[8] = {0, 1, 1, 0, 0, 1, 1, 0};
    uint16_t y[4] = {0, 1, 0, 1};
    struct dim_svm_opts o;
    dim_svm_opts_default(&o);
    double m, sd;
    struct dim_err err;
    assert_int_equal(dim_svm_run(X, y, 4, X, y, 4, 2, 1, &o, NULL, &m, &sd, &err), DIM_EINVAL);
    assert_true(isnan(m) && isnan(sd));
    assert_int_equal(dim_svm_run(X, y, 0, X, y, 4, 2, 2, &o, NULL, &m, &sd, &err), DIM_EINVAL);
    o.seeds = 0;
    assert_int_equal(dim_svm_run(X, y, 4, X, y, 4, 2, 2, &o, NULL, &m, &sd, &err), DIM_EINVAL);
    o.seeds = 1;
    o.epochs = 0;
    assert_int_equal(dim_svm_run(X, y, 4, X, y, 4, 2, 2, &o, NULL, &m, &sd, &err), DIM_EINVAL);
    o.epochs = 1;
    atomic_bool stop = true;
    struct dim_hooks h = {.cancel = &stop};
    assert_int_equal(dim_svm_run(X, y, 4, X, y, 4, 2, 2, &o, &h, &m, &sd, &err), DIM_ECANCELLED);
}

int main(void)
{
    nn_blas_set_threads(1); /* small GEMMs: one thread is quicker and deterministic */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hinge_loss_hand_computed),
        cmocka_unit_test(test_hinge_gradient_through_linear_layer),
        cmocka_unit_test(test_svm_separates_separable_set),
        cmocka_unit_test(test_svm_at_chance_on_shuffled_labels),
        cmocka_unit_test(test_svm_single_seed_has_zero_spread_and_is_reproducible),
        cmocka_unit_test(test_svm_rejects_bad_arguments_and_cancels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_ndm.c - the neural dependency measure: its JSD loss and DV estimate
 * against direct formulas, their gradients by central differences (the loss
 * with respect to the scores, and through the whole discriminator with respect
 * to its parameters), the column-wise shuffle, and the measure itself: near 0
 * for independent dimensions, clearly positive for strongly dependent ones.
 *
 * Tolerances: the loss on scores is smooth with O(1/B) gradients (B = 5): eps
 * 1e-2, rtol 2e-2, atol 1e-4. Through the discriminator (linear, ReLU): the
 * whole-net row of gradcheck.h (eps 5e-3, rtol 3e-2, atol 2e-3 is too loose for
 * gradients of O(0.01); atol 2e-4 is used), with ReLU kinks skipped. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/blas.h"
#include "eval/ndm.h"
#include "eval/trainnet.h"
#include "evalfix.h"
#include "gradcheck.h"

static double naive_sp(double z)
{
    return log(1.0 + exp(z));
}

/* --- the JSD loss on scores ---------------------------------------------- */

struct score_case {
    float u[10], du[10];
    size_t B;
};

static double score_loss(void *ctx)
{
    struct score_case *c = ctx;
    float tmp[10];
    return dim_ndm_jsd_loss(tmp, c->u, c->B);
}

static void test_jsd_loss_value_and_gradient(void **state)
{
    (void)state;
    struct score_case c = {.B = 5};
    struct dim_rng rng;
    dim_rng_seed(&rng, 3, 1);
    gc_fill_normal(c.u, 10, 2.0f, &rng);
    double l = dim_ndm_jsd_loss(c.du, c.u, c.B);
    double want = 0.0;
    for (size_t i = 0; i < 5; i++)
        want += (naive_sp(-(double)c.u[i]) + naive_sp((double)c.u[5 + i])) / 5.0;
    assert_true(fabs(l - want) < 1e-9);
    struct gc_opts o = gc_opts_default("ndm.jsd.du");
    o.atol = 1e-4;
    assert_int_equal(gc_check(&o, score_loss, &c, c.u, c.du, 10, NULL), 0);
    /* stable for large scores: no overflow, the right asymptotes */
    float big[4] = {200.0f, -200.0f, -200.0f, 200.0f}, dbig[4];
    l = dim_ndm_jsd_loss(dbig, big, 2);
    assert_true(isfinite(l) && fabs(l - 200.0) < 1e-6);
    assert_true(fabsf(dbig[0]) < 1e-30f && fabsf(dbig[1] + 0.5f) < 1e-6f);
}

static void test_dv_estimate_formula(void **state)
{
    (void)state;
    float u[6] = {1.0f, 2.0f, 3.0f, -1.0f, 0.0f, 0.5f};
    double want = 2.0 - log((exp(-1.0) + exp(0.0) + exp(0.5)) / 3.0);
    assert_true(fabs(dim_ndm_dv(u, 3) - want) < 1e-6);
    /* max-subtracted: scores near 1000 neither overflow nor lose the answer */
    for (int i = 0; i < 6; i++)
        u[i] += 1000.0f;
    assert_true(fabs(dim_ndm_dv(u, 3) - want) < 1e-3);
}

/* --- the column-wise shuffle --------------------------------------------- */

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void test_shuffle_permutes_each_column(void **state)
{
    (void)state;
    enum { B = 50, D = 3 };
    float Y[B * D], out[B * D], a[B], b[B];
    uint32_t perm[B];
    for (int i = 0; i < B * D; i++)
        Y[i] = (float)i; /* every entry distinct */
    struct dim_rng rng;
    dim_rng_seed(&rng, 5, 5);
    dim_ndm_shuffle(out, Y, B, D, &rng, perm);
    int moved = 0, same_row = 0;
    for (int d = 0; d < D; d++) {
        for (int i = 0; i < B; i++) {
            a[i] = Y[i * D + d];
            b[i] = out[i * D + d];
            moved += a[i] != b[i];
        }
        qsort(a, B, sizeof(float), cmp_float);
        qsort(b, B, sizeof(float), cmp_float);
        assert_memory_equal(a, b, sizeof a); /* a permutation of the same column */
    }
    for (int i = 0; i < B; i++) /* rows whose dimensions still come from one source row */
        same_row +=
            (int)(out[i * D + 1] - out[i * D]) == 1 && (int)(out[i * D + 2] - out[i * D + 1]) == 1;
    assert_true(moved > B * D * 3 / 4);
    assert_true(same_row < 5);
}

/* --- through the discriminator ------------------------------------------- */

struct disc_case {
    struct dim_trainnet t;
    float *x; /* (2B, D): positives then negatives */
    size_t B;
    bool *pos;
    size_t kinks;
};

static double disc_loss(void *ctx)
{
    struct disc_case *c = ctx;
    const float *u = dim_trainnet_forward(&c->t, c->x, 2 * c->B, NULL);
    float du[16];
    return dim_ndm_jsd_loss(du, u, c->B);
}

static bool disc_kinked(void *ctx)
{
    struct disc_case *c = ctx;
    bool k = evalfix_relu_changed(&c->t, 2 * c->B, c->pos);
    c->kinks += k;
    return k;
}

static void test_discriminator_gradient(void **state)
{
    (void)state;
    enum { D = 3, B = 4 };
    struct disc_case c = {.B = B};
    struct nn_net arch;
    dim_ndm_arch(&arch, D, 7, 5);
    assert_false(arch.bad);
    struct dim_rng rng;
    dim_rng_seed(&rng, 9, 2);
    assert_int_equal(dim_trainnet_create(&c.t, &arch, 2 * B, &rng, NULL), 0);
    float Y[B * D], x[2 * B * D];
    uint32_t perm[B];
    gc_fill_normal(Y, B * D, 1.0f, &rng);
    memcpy(x, Y, sizeof Y);
    dim_ndm_shuffle(x + B * D, Y, B, D, &rng, perm);
    c.x = x;
    c.pos = calloc(evalfix_relu_count(&c.t, 2 * B), sizeof(bool));
    assert_non_null(c.pos);
    /* analytic: forward, loss gradient, backward */
    const float *u = dim_trainnet_forward(&c.t, x, 2 * B, NULL);
    evalfix_relu_record(&c.t, 2 * B, c.pos);
    float *du = dim_trainnet_dout(&c.t, 2 * B);
    dim_ndm_jsd_loss(du, u, B);
    dim_trainnet_zero_grads(&c.t);
    dim_trainnet_backward(&c.t, x, NULL, 2 * B);
    float *grads = malloc(sizeof(float) * c.t.net.n_params);
    assert_non_null(grads);
    memcpy(grads, c.t.grads, sizeof(float) * c.t.net.n_params);
    struct gc_opts o = gc_opts_default("ndm.disc.params");
    o.eps = 5e-3;
    o.rtol = 3e-2;
    o.atol = 2e-4;
    o.max_checks = 0;
    o.kink = disc_kinked;
    struct gc_result res;
    assert_int_equal(gc_check(&o, disc_loss, &c, c.t.params, grads, c.t.net.n_params, &res), 0);
    assert_true(res.checked > 3 * res.skipped);
    free(grads);
    free(c.pos);
    dim_trainnet_free(&c.t);
}

/* --- the measure --------------------------------------------------------- */

/* n rows of D dimensions: independent N(0, 1), or z + noise * N(0, 1) with one
 * shared z per row (strongly dependent), shifted and scaled per dimension. */
static float *gaussian_rows(size_t n, size_t D, bool dependent, double noise, uint64_t seed)
{
    float *Y = malloc(sizeof(float) * n * D);
    assert_non_null(Y);
    struct dim_rng r;
    dim_rng_seed(&r, seed, 3);
    for (size_t i = 0; i < n; i++) {
        float z = dim_rng_normal(&r);
        for (size_t d = 0; d < D; d++) {
            float v = dependent ? z + (float)noise * dim_rng_normal(&r) : dim_rng_normal(&r);
            Y[i * D + d] = 3.0f + (float)(d + 1) * v;
        }
    }
    return Y;
}

static double ndm_of(bool dependent, bool sigmoid)
{
    const size_t ntr = 2048, nte = 1024, D = 4;
    float *Ytr = gaussian_rows(ntr, D, dependent, 0.3, 1);
    float *Yte = gaussian_rows(nte, D, dependent, 0.3, 2);
    struct dim_ndm_opts o;
    dim_ndm_opts_default(&o);
    o.steps = 300;
    o.hidden1 = 200; /* a fifth of the default widths keeps the test quick */
    o.hidden2 = 40;
    o.sigmoid = sigmoid;
    double v = NAN;
    struct dim_err err;
    int rc = dim_ndm_run(Ytr, ntr, Yte, nte, D, &o, NULL, &v, &err);
    if (rc)
        print_message("ndm: %s\n", err.msg);
    assert_int_equal(rc, 0);
    free(Ytr);
    free(Yte);
    return v;
}

static void test_ndm_near_zero_for_independent_dimensions(void **state)
{
    (void)state;
    double v = ndm_of(false, false);
    print_message("NDM of independent Gaussian dimensions: %.4f\n", v);
    assert_true(fabs(v) < 0.1);
}

/* Total correlation of the dependent rows (correlation 1 / 1.09 between every
 * pair of 4 dimensions) is -1/2 log det(corr) = 3.1 nats. */
static void test_ndm_large_for_dependent_dimensions(void **state)
{
    (void)state;
    double v = ndm_of(true, false), s = ndm_of(true, true);
    print_message("NDM of dependent dimensions: %.4f (sigmoid: %.4f), true value 3.07\n", v, s);
    assert_true(v > 1.0 && v < 6.0);
    assert_true(s > 1.0 && s < 6.0);
}

static void test_ndm_rejects_bad_arguments_and_cancels(void **state)
{
    (void)state;
    float Y[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    struct dim_ndm_opts o;
    dim_ndm_opts_default(&o);
    double v;
    struct dim_err err;
    assert_int_equal(dim_ndm_run(Y, 1, Y, 4, 2, &o, NULL, &v, &err), DIM_EINVAL);
    assert_true(isnan(v));
    o.steps = 0;
    assert_int_equal(dim_ndm_run(Y, 4, Y, 4, 2, &o, NULL, &v, &err), DIM_EINVAL);
    o.steps = 10;
    o.hidden1 = 8;
    o.hidden2 = 4;
    atomic_bool stop = true;
    struct dim_hooks h = {.cancel = &stop};
    assert_int_equal(dim_ndm_run(Y, 4, Y, 4, 2, &o, &h, &v, &err), DIM_ECANCELLED);
    assert_true(isnan(v));
    atomic_store(&stop, false);
    assert_int_equal(dim_ndm_run(Y, 4, Y, 4, 2, &o, &h, &v, &err), 0);
    assert_true(isfinite(v));
}

int main(void)
{
    nn_blas_set_threads(1); /* small GEMMs: one thread is quicker and deterministic */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jsd_loss_value_and_gradient),
        cmocka_unit_test(test_dv_estimate_formula),
        cmocka_unit_test(test_shuffle_permutes_each_column),
        cmocka_unit_test(test_discriminator_gradient),
        cmocka_unit_test(test_ndm_near_zero_for_independent_dimensions),
        cmocka_unit_test(test_ndm_large_for_dependent_dimensions),
        cmocka_unit_test(test_ndm_rejects_bad_arguments_and_cancels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

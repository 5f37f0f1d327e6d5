/* test_estimator.c - the JSD, InfoNCE and DV losses of dim/estimator: analytic
 * du against central differences (local form N=4, L=3 and global form N=5,
 * L=1, weight != 1), values against naive formulas written from
 * dim-algorithm.md section 2 in long double, stability at |u| ~ 1e4, JSD's
 * minimum, and the name table.
 *
 * Tolerances: the loss is accumulated in double from float scores, so a
 * central difference over an exactly representable float step carries only
 * ~1e-16 relative noise; du is rounded to float (~6e-8 relative). With eps 1e-3
 * the truncation error is eps^2/6 * f''' ~ 2e-7 relative to O(1) curvature, so
 * rtol 1e-4, atol 1e-7 are tight yet safe (the gradients here are 1e-3..1e-1). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dim/estimator.h"
#include "gradcheck.h"

static const enum dim_estimator all_estimators[3] = {DIM_JSD, DIM_NCE, DIM_DV};

/* u[(i*N + j)*L + q] */
static size_t at(size_t i, size_t j, size_t q, size_t N, size_t L)
{
    return (i * N + j) * L + q;
}

/* JSD: mean_P log(1 + e^-u) + mean_Q log(1 + e^u), literally. */
static long double ref_jsd(const float *u, size_t N, size_t L)
{
    long double sp = 0, sq = 0;
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < N; j++)
            for (size_t q = 0; q < L; q++) {
                long double v = u[at(i, j, q, N, L)];
                if (i == j)
                    sp += logl(1.0L + expl(-v));
                else
                    sq += logl(1.0L + expl(v));
            }
    return sp / (long double)(N * L) + sq / (long double)(N * (N - 1) * L);
}

/* InfoNCE: for every anchor (i, q), -log of the softmax of the positive u[i][i][q]
 * among itself and every negative u[i][j][q'] (j != i, all q'); mean over anchors. */
static long double ref_nce(const float *u, size_t N, size_t L)
{
    long double loss = 0;
    for (size_t i = 0; i < N; i++)
        for (size_t q = 0; q < L; q++) {
            long double pos = u[at(i, i, q, N, L)];
            long double den = expl(pos);
            for (size_t j = 0; j < N; j++)
                for (size_t r = 0; r < L && j != i; r++)
                    den += expl((long double)u[at(i, j, r, N, L)]);
            loss += -(pos - logl(den)); /* -log(e^pos / den) without underflowing e^pos */
        }
    return loss / (long double)(N * L);
}

/* DV: -mean_P u + log mean_Q e^u, literally. */
static long double ref_dv(const float *u, size_t N, size_t L)
{
    long double sp = 0, eq = 0;
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < N; j++)
            for (size_t q = 0; q < L; q++) {
                long double v = u[at(i, j, q, N, L)];
                if (i == j)
                    sp += v;
                else
                    eq += expl(v);
            }
    return -sp / (long double)(N * L) + logl(eq / (long double)(N * (N - 1) * L));
}

static long double ref_loss(enum dim_estimator e, const float *u, size_t N, size_t L)
{
    switch (e) {
    case DIM_JSD:
        return ref_jsd(u, N, L);
    case DIM_NCE:
        return ref_nce(u, N, L);
    case DIM_DV:
        return ref_dv(u, N, L);
    }
    return NAN;
}

struct est_case {
    enum dim_estimator e;
    size_t N, L, n;
    float w;
    float *u, *du, *scratch;
};

static void case_init(struct est_case *c, enum dim_estimator e, size_t N, size_t L, float w,
                      float scale, uint64_t seed)
{
    c->e = e;
    c->N = N;
    c->L = L;
    c->n = N * N * L;
    c->w = w;
    c->u = malloc(sizeof(float) * c->n);
    c->du = malloc(sizeof(float) * c->n);
    c->scratch = malloc(sizeof(float) * c->n);
    assert_non_null(c->u);
    assert_non_null(c->du);
    assert_non_null(c->scratch);
    struct dim_rng rng;
    dim_rng_seed(&rng, seed, 3);
    gc_fill_normal(c->u, c->n, scale, &rng);
    /* positives a little higher than negatives, as a critic would score them */
    for (size_t i = 0; i < N; i++)
        for (size_t q = 0; q < L; q++)
            c->u[at(i, i, q, N, L)] += 0.5f * scale;
}

static void case_free(struct est_case *c)
{
    free(c->u);
    free(c->du);
    free(c->scratch);
}

/* weight * loss; du goes to scratch, so the analytic du is untouched */
static double est_loss(void *ctx)
{
    struct est_case *c = ctx;
    return (double)c->w * dim_estimator_loss(c->e, c->scratch, c->u, c->N, c->L, c->w);
}

static void check_gradient(enum dim_estimator e, size_t N, size_t L)
{
    struct est_case c;
    case_init(&c, e, N, L, 2.5f, 1.0f, 100 + (uint64_t)e * 10 + L);
    /* du is overwritten, not accumulated: start from garbage */
    for (size_t k = 0; k < c.n; k++)
        c.du[k] = 1e30f;
    double loss = dim_estimator_loss(e, c.du, c.u, N, L, c.w);
    assert_true(isfinite(loss));
    char name[64];
    snprintf(name, sizeof name, "%s.du (N %zu, L %zu)", dim_estimator_name(e), N, L);
    struct gc_opts o = gc_opts_default(name);
    o.eps = 1e-3;
    o.rtol = 1e-4;
    o.atol = 1e-7;
    o.max_checks = 0;
    struct gc_result res;
    assert_int_equal(gc_check(&o, est_loss, &c, c.u, c.du, c.n, &res), 0);
    assert_int_equal(res.checked, c.n);
    /* the gradients are not trivially small: the check above has teeth */
    double mx = 0;
    for (size_t k = 0; k < c.n; k++)
        mx = fmax(mx, fabs(c.du[k]));
    assert_true(mx > 1e-2);
    /* weight scales du and not the returned loss */
    float *du1 = malloc(sizeof(float) * c.n);
    assert_non_null(du1);
    double loss1 = dim_estimator_loss(e, du1, c.u, N, L, 1.0f);
    assert_true(loss1 == loss);
    for (size_t k = 0; k < c.n; k++)
        assert_true(fabsf(c.du[k] - 2.5f * du1[k]) <= 1e-6f * fabsf(c.du[k]) + 1e-12f);
    free(du1);
    case_free(&c);
}

static void test_gradients_local(void **state)
{
    (void)state;
    for (int k = 0; k < 3; k++)
        check_gradient(all_estimators[k], 4, 3);
}

static void test_gradients_global(void **state)
{
    (void)state;
    for (int k = 0; k < 3; k++)
        check_gradient(all_estimators[k], 5, 1);
}

/* A mutation of the loss (here: the gradient of a different estimator) is caught. */
static void test_gradient_check_has_teeth(void **state)
{
    (void)state;
    struct est_case c;
    case_init(&c, DIM_NCE, 4, 3, 1.0f, 1.0f, 7);
    dim_estimator_loss(DIM_JSD, c.du, c.u, 4, 3, 1.0f);
    struct gc_opts o = gc_opts_default("nce vs jsd du");
    o.eps = 1e-3;
    o.rtol = 1e-4;
    o.atol = 1e-7;
    o.max_checks = 0;
    o.quiet = true;
    struct gc_result res;
    gc_check(&o, est_loss, &c, c.u, c.du, c.n, &res);
    assert_true(res.failed > res.checked / 2);
    case_free(&c);
}

/* Values against the naive formulas, at several shapes and scales. */
static void test_reference_values(void **state)
{
    (void)state;
    const size_t shapes[][2] = {{2, 1}, {4, 3}, {5, 1}, {3, 7}};
    const float scales[] = {0.1f, 1.0f, 4.0f};
    for (int k = 0; k < 3; k++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (size_t g = 0; g < sizeof scales / sizeof scales[0]; g++) {
                struct est_case c;
                case_init(&c, all_estimators[k], shapes[s][0], shapes[s][1], 1.0f, scales[g],
                          1000 + s * 10 + g);
                double got = dim_estimator_loss(c.e, c.du, c.u, c.N, c.L, 1.0f);
                long double want = ref_loss(c.e, c.u, c.N, c.L);
                if (!(fabsl((long double)got - want) <= 1e-12L + 1e-12L * fabsl(want)))
                    fail_msg("%s N %zu L %zu scale %g: got %.17g want %.17Lg",
                             dim_estimator_name(c.e), c.N, c.L, (double)scales[g], got, want);
                case_free(&c);
            }
    /* hand values at u = 0: JSD = 2 log 2, NCE = log(1 + (N-1)L), DV = 0 */
    float u0[5 * 5 * 2] = {0}, du[5 * 5 * 2];
    assert_true(fabs(dim_estimator_loss(DIM_JSD, du, u0, 5, 2, 1.0f) - 2.0 * log(2.0)) < 1e-15);
    assert_true(fabs(dim_estimator_loss(DIM_NCE, du, u0, 5, 2, 1.0f) - log(9.0)) < 1e-15);
    assert_true(fabs(dim_estimator_loss(DIM_DV, du, u0, 5, 2, 1.0f)) < 1e-15);
}

/* Scores of magnitude up to 1e4: the loss and gradients stay finite and match the
 * long double references (expl neither overflows nor underflows for |v| < 11356).
 * NCE's du sums to 0 per anchor row i, DV's over the whole tensor. */
static void test_huge_scores(void **state)
{
    (void)state;
    const size_t shapes[][2] = {{4, 3}, {5, 1}};
    for (int k = 0; k < 3; k++)
        for (size_t s = 0; s < 2; s++)
            for (int sign = -1; sign <= 1; sign += 2) {
                struct est_case c;
                const size_t N = shapes[s][0], L = shapes[s][1];
                case_init(&c, all_estimators[k], N, L, 1.0f, 1.0f, 77 + s + (uint64_t)k * 5);
                struct dim_rng rng;
                dim_rng_seed(&rng, 78 + s, 4);
                gc_fill_uniform(c.u, c.n, -1e4f, 1e4f, &rng);
                if (sign < 0) /* also the "wrong way round" critic: positives very low */
                    for (size_t i = 0; i < N; i++)
                        for (size_t q = 0; q < L; q++)
                            c.u[at(i, i, q, N, L)] = -0.5f * fabsf(c.u[at(i, i, q, N, L)]) - 5e3f;
                double got = dim_estimator_loss(c.e, c.du, c.u, N, L, 1.0f);
                long double want = ref_loss(c.e, c.u, N, L);
                assert_true(isfinite(got));
                if (!(fabsl((long double)got - want) <= 1e-9L * (1.0L + fabsl(want))))
                    fail_msg("%s huge: got %.17g want %.17Lg", dim_estimator_name(c.e), got, want);
                for (size_t j = 0; j < c.n; j++)
                    assert_true(isfinite(c.du[j]));
                if (c.e == DIM_NCE)
                    for (size_t i = 0; i < N; i++) {
                        double row = 0;
                        for (size_t j = 0; j < N * L; j++)
                            row += c.du[i * N * L + j];
                        assert_true(fabs(row) < 1e-6);
                    }
                if (c.e == DIM_DV) {
                    double tot = 0;
                    for (size_t j = 0; j < c.n; j++)
                        tot += c.du[j];
                    assert_true(fabs(tot) < 1e-6);
                }
                case_free(&c);
            }
}

/* JSD's infimum is 0: a critic that scores positives far above 0 and negatives far
 * below reaches it, with vanishing gradients; the loss is never negative. */
static void test_jsd_minimum(void **state)
{
    (void)state;
    const size_t N = 4, L = 3, n = N * N * L;
    float u[4 * 4 * 3], du[4 * 4 * 3];
    for (float big = 10.0f; big <= 1e4f; big *= 10.0f) {
        for (size_t i = 0; i < N; i++)
            for (size_t j = 0; j < N; j++)
                for (size_t q = 0; q < L; q++)
                    u[at(i, j, q, N, L)] = i == j ? big : -big;
        double l = dim_estimator_loss(DIM_JSD, du, u, N, L, 1.0f);
        assert_true(l >= 0.0);
        assert_true(l <= 2.0 * exp(-big) * (1.0 + 1e-12)); /* 2 log1p(e^-big) */
        for (size_t k = 0; k < n; k++)
            assert_true(fabsf(du[k]) <= expf(-big) + 1e-30f);
    }
    /* swapping the roles makes it large, and a random critic is in between */
    for (size_t k = 0; k < n; k++)
        u[k] = -u[k];
    assert_true(dim_estimator_loss(DIM_JSD, du, u, N, L, 1.0f) > 1e3);
}

static void test_names(void **state)
{
    (void)state;
    for (int k = 0; k < 3; k++) {
        enum dim_estimator e = (enum dim_estimator)99;
        const char *name = dim_estimator_name(all_estimators[k]);
        assert_int_equal(dim_estimator_parse(name, &e), 0);
        assert_int_equal(e, all_estimators[k]);
    }
    assert_string_equal(dim_estimator_name(DIM_JSD), "jsd");
    assert_string_equal(dim_estimator_name(DIM_NCE), "nce");
    assert_string_equal(dim_estimator_name(DIM_DV), "dv");
    const char *bad[] = {"", "js", "jsdx", "infonce", "mine", " nce"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        enum dim_estimator e = DIM_DV;
        assert_int_equal(dim_estimator_parse(bad[k], &e), -1);
        assert_int_equal(e, DIM_DV); /* untouched on failure */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradients_local),
        cmocka_unit_test(test_gradients_global),
        cmocka_unit_test(test_gradient_check_has_teeth),
        cmocka_unit_test(test_reference_values),
        cmocka_unit_test(test_huge_scores),
        cmocka_unit_test(test_jsd_minimum),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_neighbors.c - the cosine top-k search (service/neighbors.h) against a
 * naive oracle: every score computed in double and the whole index sorted, on
 * random unit vectors, for k below, at and above the index size; ties go to
 * the lower row; NaN rows rank last; the query's length does not matter; bad
 * arguments and a non-finite query are refused. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "service/neighbors.h"

#define N 257
#define D 24

static uint64_t rng = 88172645463325252ull;
static double uniform(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static void unit_rows(float *v, size_t n, size_t d)
{
    for (size_t i = 0; i < n; i++) {
        double ss = 0;
        for (size_t j = 0; j < d; j++) {
            v[i * d + j] = (float)(2 * uniform() - 1);
            ss += (double)v[i * d + j] * v[i * d + j];
        }
        for (size_t j = 0; j < d; j++)
            v[i * d + j] = (float)(v[i * d + j] / sqrt(ss));
    }
}

struct ranked {
    double c;
    size_t i;
};

static int by_score(const void *a, const void *b)
{
    const struct ranked *x = a, *y = b;
    if (x->c != y->c)
        return x->c > y->c ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

static void test_matches_sorted_oracle(void **state)
{
    (void)state;
    static float v[N * D], y[D];
    static uint16_t labels[N];
    unit_rows(v, N, D);
    for (size_t i = 0; i < N; i++)
        labels[i] = (uint16_t)(i % 10);
    for (size_t j = 0; j < D; j++)
        y[j] = (float)(3 * (2 * uniform() - 1)); /* not unit length */
    double yn = 0;
    for (size_t j = 0; j < D; j++)
        yn += (double)y[j] * y[j];
    static struct ranked all[N];
    for (size_t i = 0; i < N; i++) {
        double c = 0;
        for (size_t j = 0; j < D; j++)
            c += (double)v[i * D + j] * y[j];
        all[i] = (struct ranked){c / sqrt(yn), i};
    }
    qsort(all, N, sizeof all[0], by_score);
    const size_t ks[] = {1, 5, 64, N, N + 10};
    static struct neighbor out[N + 10];
    struct dim_err err;
    for (size_t t = 0; t < sizeof ks / sizeof ks[0]; t++) {
        size_t found = 99;
        assert_int_equal(neighbors_search(v, labels, N, D, y, ks[t], out, &found, &err), 0);
        assert_int_equal(found, ks[t] < N ? ks[t] : N);
        for (size_t r = 0; r < found; r++) {
            assert_true(fabs(all[r].c - out[r].cosine) < 1e-5);
            /* the row is the oracle's unless float rounding could swap neighbours */
            bool apart = (r == 0 || all[r - 1].c - all[r].c > 1e-5) &&
                         (r + 1 == N || all[r].c - all[r + 1].c > 1e-5);
            if (apart)
                assert_int_equal(out[r].index, all[r].i);
            assert_int_equal(out[r].label, labels[out[r].index]);
            if (r > 0)
                assert_true(out[r].cosine <= out[r - 1].cosine);
        }
    }
}

static void test_ties_nan_and_refusals(void **state)
{
    (void)state;
    /* rows 0 and 2 equal, row 1 NaN, row 3 opposite */
    float v[4 * 2] = {1, 0, NAN, NAN, 1, 0, -1, 0};
    uint16_t labels[4] = {7, 8, 9, 6};
    float y[2] = {2, 0};
    struct neighbor out[4];
    size_t found;
    struct dim_err err;
    assert_int_equal(neighbors_search(v, labels, 4, 2, y, 4, out, &found, &err), 0);
    assert_int_equal(found, 4);
    assert_int_equal(out[0].index, 0);
    assert_int_equal(out[1].index, 2);
    assert_int_equal(out[1].label, 9);
    assert_int_equal(out[2].index, 3);
    assert_int_equal(out[3].index, 1);
    assert_true(isinf(out[3].cosine) && out[3].cosine < 0);
    float zero[2] = {0, 0};
    assert_int_equal(neighbors_search(v, labels, 4, 2, zero, 1, out, &found, &err), 0);
    assert_int_equal(found, 1);
    float bad[2] = {INFINITY, 0};
    assert_int_equal(neighbors_search(v, labels, 4, 2, bad, 1, out, &found, &err), DIM_ENONFINITE);
    assert_int_equal(found, 0);
    assert_int_equal(neighbors_search(v, labels, 4, 2, y, 0, out, &found, &err), DIM_EINVAL);
    assert_non_null(strstr(err.msg, "k >= 1"));
    assert_int_equal(neighbors_search(v, labels, 0, 2, y, 1, out, &found, &err), DIM_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_sorted_oracle),
        cmocka_unit_test(test_ties_nan_and_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

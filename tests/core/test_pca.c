/* test_pca.c - principal components: recovering the axes and variances of a
 * rotated anisotropic Gaussian, agreement with a full Jacobi eigen-decomposition
 * of the sample covariance written here, the projection, and bad arguments. */
#include <math.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/rng.h"
#include "eval/pca.h"

/* A random orthonormal basis R (d, d) by Gram-Schmidt of Gaussian rows. */
static void random_rotation(double *R, size_t d, struct dim_rng *rng)
{
    for (size_t i = 0; i < d; i++) {
        for (;;) {
            for (size_t j = 0; j < d; j++)
                R[i * d + j] = dim_rng_normal(rng);
            for (size_t q = 0; q < i; q++) {
                double dot = 0;
                for (size_t j = 0; j < d; j++)
                    dot += R[i * d + j] * R[q * d + j];
                for (size_t j = 0; j < d; j++)
                    R[i * d + j] -= dot * R[q * d + j];
            }
            double nn = 0;
            for (size_t j = 0; j < d; j++)
                nn += R[i * d + j] * R[i * d + j];
            if (nn > 1e-6) {
                for (size_t j = 0; j < d; j++)
                    R[i * d + j] /= sqrt(nn);
                break;
            }
        }
    }
}

/* X (n, d): sum_a z_a * sd_a * R[a] + offset, z standard normal. */
static float *gaussian(size_t n, size_t d, const double *sd, const double *R, struct dim_rng *rng)
{
    float *X = malloc(n * d * sizeof *X);
    assert_non_null(X);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < d; j++)
            X[i * d + j] = 3.0f + (float)j * 0.5f;
        for (size_t a = 0; a < d; a++) {
            double z = dim_rng_normal(rng) * sd[a];
            for (size_t j = 0; j < d; j++)
                X[i * d + j] += (float)(z * R[a * d + j]);
        }
    }
    return X;
}

static void test_recovers_axes(void **state)
{
    (void)state;
    enum { N = 4000, D = 12 };
    struct dim_rng rng;
    dim_rng_seed(&rng, 7, 0);
    double R[D * D], sd[D];
    random_rotation(R, D, &rng);
    for (size_t a = 0; a < D; a++)
        sd[a] = a == 0 ? 5.0 : a == 1 ? 3.0 : 0.5;
    float *X = gaussian(N, D, sd, R, &rng);
    struct dim_pca p;
    assert_int_equal(dim_pca_fit(X, N, D, 2, &p, NULL), 0);
    for (size_t r = 0; r < 2; r++) {
        double dot = 0, nn = 0;
        for (size_t j = 0; j < D; j++) {
            dot += p.components[r * D + j] * R[r * D + j];
            nn += (double)p.components[r * D + j] * p.components[r * D + j];
        }
        assert_true(fabs(nn - 1.0) < 1e-5);
        assert_true(fabs(fabs(dot) - 1.0) < 2e-3); /* the true axis, up to sign */
    }
    /* variances close to 25 and 9 (sampling error ~ sqrt(2/N) relative) */
    assert_true(fabs(p.variance[0] - 25.0) < 25.0 * 0.08);
    assert_true(fabs(p.variance[1] - 9.0) < 9.0 * 0.08);
    double total = 25 + 9 + (D - 2) * 0.25;
    assert_true(fabs(p.explained[0] - 25.0 / total) < 0.03);
    assert_true(p.explained[0] > p.explained[1]);
    assert_true(fabs(p.mean[4] - 5.0f) < 0.3f);
    dim_pca_free(&p);
    free(X);
}

/* Full eigen-decomposition of a symmetric matrix by cyclic Jacobi, in the test. */
static void jacobi_all(double *A, size_t d, double *lam, double *V)
{
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < d; j++)
            V[i * d + j] = i == j;
    for (int sweep = 0; sweep < 200; sweep++)
        for (size_t p = 0; p < d; p++)
            for (size_t q = p + 1; q < d; q++) {
                double apq = A[p * d + q];
                if (fabs(apq) < 1e-300)
                    continue;
                double th = (A[q * d + q] - A[p * d + p]) / (2 * apq);
                double t = (th >= 0 ? 1.0 : -1.0) / (fabs(th) + sqrt(th * th + 1));
                double c = 1 / sqrt(t * t + 1), s = t * c;
                for (size_t r = 0; r < d; r++) {
                    double a = A[r * d + p], b = A[r * d + q];
                    A[r * d + p] = c * a - s * b;
                    A[r * d + q] = s * a + c * b;
                }
                for (size_t r = 0; r < d; r++) {
                    double a = A[p * d + r], b = A[q * d + r];
                    A[p * d + r] = c * a - s * b;
                    A[q * d + r] = s * a + c * b;
                }
                for (size_t r = 0; r < d; r++) {
                    double a = V[r * d + p], b = V[r * d + q];
                    V[r * d + p] = c * a - s * b;
                    V[r * d + q] = s * a + c * b;
                }
            }
    for (size_t i = 0; i < d; i++)
        lam[i] = A[i * d + i];
}

static void test_matches_full_eigendecomposition(void **state)
{
    (void)state;
    enum { N = 300, D = 9, K = 3 };
    struct dim_rng rng;
    dim_rng_seed(&rng, 11, 0);
    double R[D * D], sd[D];
    random_rotation(R, D, &rng);
    for (size_t a = 0; a < D; a++)
        sd[a] = 4.0 / (double)(a + 1); /* distinct variances */
    float *X = gaussian(N, D, sd, R, &rng);
    /* the sample covariance in double */
    double mean[D] = {0}, C[D * D] = {0}, lam[D], V[D * D];
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < D; j++)
            mean[j] += X[i * D + j] / (double)N;
    for (size_t i = 0; i < N; i++)
        for (size_t a = 0; a < D; a++)
            for (size_t b = 0; b < D; b++)
                C[a * D + b] += (X[i * D + a] - mean[a]) * (X[i * D + b] - mean[b]) / (N - 1);
    double trace = 0;
    for (size_t a = 0; a < D; a++)
        trace += C[a * D + a];
    jacobi_all(C, D, lam, V);
    struct dim_pca p;
    assert_int_equal(dim_pca_fit(X, N, D, K, &p, NULL), 0);
    bool used[D] = {false};
    for (size_t r = 0; r < K; r++) {
        size_t best = 0;
        for (size_t j = 1; j < D; j++)
            if (!used[j] && (used[best] || lam[j] > lam[best]))
                best = j;
        used[best] = true;
        assert_true(fabs(p.variance[r] - lam[best]) < 1e-4 * lam[best]);
        assert_true(fabs(p.explained[r] - lam[best] / trace) < 1e-5);
        double dot = 0;
        for (size_t j = 0; j < D; j++)
            dot += p.components[r * D + j] * V[j * D + best];
        assert_true(fabs(fabs(dot) - 1.0) < 1e-4);
    }
    /* projection: (x - mean) . component, and the projected variance is the eigenvalue */
    float *Y = malloc(N * K * sizeof *Y);
    assert_non_null(Y);
    dim_pca_project(&p, X, N, Y);
    for (size_t r = 0; r < K; r++) {
        double s = 0, s2 = 0;
        for (size_t i = 0; i < N; i++) {
            s += Y[i * K + r];
            s2 += (double)Y[i * K + r] * Y[i * K + r];
        }
        assert_true(fabs(s / N) < 1e-3);
        assert_true(fabs(s2 / (N - 1) - p.variance[r]) < 1e-3 * p.variance[r]);
    }
    /* signs: the largest-magnitude entry of each component is positive */
    for (size_t r = 0; r < K; r++) {
        size_t arg = 0;
        for (size_t j = 1; j < D; j++)
            if (fabsf(p.components[r * D + j]) > fabsf(p.components[r * D + arg]))
                arg = j;
        assert_true(p.components[r * D + arg] > 0);
    }
    free(Y);
    dim_pca_free(&p);
    free(X);
}

static void test_constant_data_and_bad_arguments(void **state)
{
    (void)state;
    float X[5 * 3];
    for (int i = 0; i < 15; i++)
        X[i] = 2.0f;
    struct dim_pca p;
    assert_int_equal(dim_pca_fit(X, 5, 3, 2, &p, NULL), 0); /* no variance: zeros, no NaN */
    for (int r = 0; r < 2; r++) {
        assert_true(p.variance[r] == 0.0);
        assert_true(p.explained[r] == 0.0);
        for (int j = 0; j < 3; j++)
            assert_false(isnan(p.components[r * 3 + j]));
    }
    dim_pca_free(&p);
    struct dim_err err;
    assert_int_equal(dim_pca_fit(X, 1, 3, 2, &p, &err), DIM_EINVAL);
    assert_non_null(strstr(err.msg, "2 rows"));
    assert_int_equal(dim_pca_fit(X, 5, 3, 4, &p, &err), DIM_EINVAL);
    assert_int_equal(dim_pca_fit(X, 5, 3, 0, &p, &err), DIM_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recovers_axes),
        cmocka_unit_test(test_matches_full_eigendecomposition),
        cmocka_unit_test(test_constant_data_and_bad_arguments),
    };
    return cmocka_run_group_tests_name("pca", tests, NULL, NULL);
}

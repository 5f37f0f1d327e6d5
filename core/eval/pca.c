/* pca.c - principal components by subspace iteration (core/eval/pca.h). */
#include "eval/pca.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/blas.h"

#define PCA_MAX_ITER 2000
#define PCA_TOL 1e-10

/* Orthonormalises the k columns of V (d, k; column j at V[i * k + j]) by
 * modified Gram-Schmidt. A column that vanishes is replaced by a unit vector. */
static void orthonormalise(double *V, size_t d, size_t k)
{
    size_t tries = 0; /* replacement axes tried for the current column */
    for (size_t j = 0; j < k; j++) {
        for (size_t q = 0; q < j; q++) {
            double dot = 0;
            for (size_t i = 0; i < d; i++)
                dot += V[i * k + j] * V[i * k + q];
            for (size_t i = 0; i < d; i++)
                V[i * k + j] -= dot * V[i * k + q];
        }
        double nn = 0;
        for (size_t i = 0; i < d; i++)
            nn += V[i * k + j] * V[i * k + j];
        if (nn < 1e-24 && tries < d) { /* degenerate: try the next coordinate axis */
            for (size_t i = 0; i < d; i++)
                V[i * k + j] = i == (j + tries) % d ? 1.0 : 0.0;
            tries++;
            j--; /* orthogonalise the replacement; k <= d axes cannot all be in the span */
            continue;
        }
        tries = 0;
        double inv = 1.0 / sqrt(nn);
        for (size_t i = 0; i < d; i++)
            V[i * k + j] *= inv;
    }
}

/* Eigen-decomposition of the symmetric k x k matrix H (destroyed) by cyclic
 * Jacobi rotations: eigenvalues in lam, eigenvectors in the columns of Q. */
static void jacobi(double *H, size_t k, double *lam, double *Q)
{
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < k; j++)
            Q[i * k + j] = i == j;
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0;
        for (size_t p = 0; p < k; p++)
            for (size_t q = p + 1; q < k; q++)
                off += H[p * k + q] * H[p * k + q];
        if (off < 1e-300)
            break;
        for (size_t p = 0; p < k; p++)
            for (size_t q = p + 1; q < k; q++) {
                double hpq = H[p * k + q];
                if (fabs(hpq) < 1e-300)
                    continue;
                double theta = (H[q * k + q] - H[p * k + p]) / (2 * hpq);
                double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1));
                double c = 1 / sqrt(t * t + 1), s = t * c;
                for (size_t r = 0; r < k; r++) { /* H <- H J */
                    double a = H[r * k + p], b = H[r * k + q];
                    H[r * k + p] = c * a - s * b;
                    H[r * k + q] = s * a + c * b;
                }
                for (size_t r = 0; r < k; r++) { /* H <- J^T H */
                    double a = H[p * k + r], b = H[q * k + r];
                    H[p * k + r] = c * a - s * b;
                    H[q * k + r] = s * a + c * b;
                }
                for (size_t r = 0; r < k; r++) { /* Q <- Q J */
                    double a = Q[r * k + p], b = Q[r * k + q];
                    Q[r * k + p] = c * a - s * b;
                    Q[r * k + q] = s * a + c * b;
                }
            }
    }
    for (size_t i = 0; i < k; i++)
        lam[i] = H[i * k + i];
}

/* W (d, k) = C V for C (d, d) float, V (d, k) double. */
static void cov_times(const float *C, const double *V, double *W, size_t d, size_t k)
{
    memset(W, 0, d * k * sizeof *W);
    for (size_t i = 0; i < d; i++) {
        const float *row = C + i * d;
        double *w = W + i * k;
        for (size_t l = 0; l < d; l++) {
            double c = row[l];
            const double *v = V + l * k;
            for (size_t j = 0; j < k; j++)
                w[j] += c * v[j];
        }
    }
}

int dim_pca_fit(const float *X, size_t n, size_t d, size_t k, struct dim_pca *p,
                struct dim_err *err)
{
    memset(p, 0, sizeof *p);
    if (n < 2 || d < 1)
        return dim_fail(err, DIM_EINVAL, "pca: need at least 2 rows of at least 1 feature, got "
                                         "%zu x %zu", n, d);
    if (k < 1 || k > d || k > DIM_PCA_MAX_K)
        return dim_fail(err, DIM_EINVAL, "pca: %zu components of %zu features (1 to %d)", k, d,
                        DIM_PCA_MAX_K);
    float *Xc = malloc(n * d * sizeof *Xc), *C = malloc(d * d * sizeof *C);
    double *V = malloc(d * k * sizeof *V), *W = malloc(d * k * sizeof *W);
    p->mean = malloc(d * sizeof *p->mean);
    p->components = malloc(k * d * sizeof *p->components);
    if (!Xc || !C || !V || !W || !p->mean || !p->components) {
        free(Xc), free(C), free(V), free(W);
        dim_pca_free(p);
        return dim_fail(err, DIM_ENOMEM, "pca: out of memory for %zu x %zu features", n, d);
    }
    p->d = d;
    p->k = k;
    for (size_t j = 0; j < d; j++) {
        double s = 0;
        for (size_t i = 0; i < n; i++)
            s += X[i * d + j];
        p->mean[j] = (float)(s / (double)n);
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            Xc[i * d + j] = X[i * d + j] - p->mean[j];
    nn_sgemm(true, false, d, d, n, 1.0f / (float)(n - 1), Xc, d, Xc, d, 0.0f, C, d);
    double trace = 0;
    for (size_t j = 0; j < d; j++)
        trace += C[j * d + j];
    p->total_variance = trace;

    /* Start from the k coordinate axes of largest variance, mixed a little so
     * that no start vector is orthogonal to a leading eigenvector by accident. */
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < k; j++)
            V[i * k + j] = 1e-3 * cos((double)(i * 7 + j * 13 + 1)) + (i % k == j ? C[i * d + i] : 0);
    orthonormalise(V, d, k);
    double H[DIM_PCA_MAX_K * DIM_PCA_MAX_K], Q[DIM_PCA_MAX_K * DIM_PCA_MAX_K];
    double lam[DIM_PCA_MAX_K], prev[DIM_PCA_MAX_K];
    for (size_t j = 0; j < k; j++)
        prev[j] = -1;
    for (int it = 0; it < PCA_MAX_ITER; it++) {
        cov_times(C, V, W, d, k);
        /* Rayleigh-Ritz: H = V^T C V, rotate V to H's eigenvectors */
        for (size_t a = 0; a < k; a++)
            for (size_t b = 0; b < k; b++) {
                double s = 0;
                for (size_t i = 0; i < d; i++)
                    s += V[i * k + a] * W[i * k + b];
                H[a * k + b] = s;
            }
        for (size_t a = 0; a < k; a++) /* symmetrise rounding */
            for (size_t b = a + 1; b < k; b++)
                H[a * k + b] = H[b * k + a] = 0.5 * (H[a * k + b] + H[b * k + a]);
        jacobi(H, k, lam, Q);
        bool done = true;
        for (size_t j = 0; j < k; j++)
            if (fabs(lam[j] - prev[j]) > PCA_TOL * (fabs(trace) + 1e-30))
                done = false;
        memcpy(prev, lam, k * sizeof *lam);
        if (done) {
            /* V <- V Q (the Ritz vectors of this subspace) */
            for (size_t i = 0; i < d; i++) {
                double row[DIM_PCA_MAX_K];
                for (size_t b = 0; b < k; b++) {
                    double s = 0;
                    for (size_t a = 0; a < k; a++)
                        s += V[i * k + a] * Q[a * k + b];
                    row[b] = s;
                }
                memcpy(V + i * k, row, k * sizeof *row);
            }
            break;
        }
        memcpy(V, W, d * k * sizeof *V);
        orthonormalise(V, d, k);
    }
    /* order by decreasing eigenvalue, fix signs, store */
    size_t order[DIM_PCA_MAX_K];
    for (size_t j = 0; j < k; j++)
        order[j] = j;
    for (size_t a = 0; a < k; a++)
        for (size_t b = a + 1; b < k; b++)
            if (lam[order[b]] > lam[order[a]]) {
                size_t t = order[a];
                order[a] = order[b];
                order[b] = t;
            }
    for (size_t r = 0; r < k; r++) {
        size_t j = order[r];
        size_t arg = 0;
        for (size_t i = 1; i < d; i++)
            if (fabs(V[i * k + j]) > fabs(V[arg * k + j]))
                arg = i;
        double sign = V[arg * k + j] < 0 ? -1.0 : 1.0;
        for (size_t i = 0; i < d; i++)
            p->components[r * d + i] = (float)(sign * V[i * k + j]);
        p->variance[r] = lam[j] > 0 ? lam[j] : 0;
        p->explained[r] = trace > 0 ? p->variance[r] / trace : 0;
    }
    free(Xc), free(C), free(V), free(W);
    return 0;
}

void dim_pca_project(const struct dim_pca *p, const float *X, size_t n, float *out)
{
    for (size_t i = 0; i < n; i++)
        for (size_t r = 0; r < p->k; r++) {
            double s = 0;
            const float *c = p->components + r * p->d;
            for (size_t j = 0; j < p->d; j++)
                s += (double)(X[i * p->d + j] - p->mean[j]) * c[j];
            out[i * p->k + r] = (float)s;
        }
}

void dim_pca_free(struct dim_pca *p)
{
    free(p->mean);
    free(p->components);
    memset(p, 0, sizeof *p);
}

/* pca.h - the leading principal components of a set of feature vectors, for
 * 2-D views of embeddings (the dashboard's projection of a model's test set).
 *
 * The covariance C = Xc^T Xc / (n - 1) of the centred rows is formed with one
 * sgemm, then its top k eigenvectors are found by subspace (block power)
 * iteration with Gram-Schmidt re-orthonormalisation and a Rayleigh-Ritz step on
 * the k x k projected matrix, until the eigenvalue estimates change by less
 * than 1e-10 relative (at most 2000 iterations). Each component's sign is
 * fixed so that its largest-magnitude entry is positive: runs are reproducible.
 * Depends on base/blas. Allocates its own workspace (d * d floats and a few
 * d * k doubles).
 */
#ifndef DIM_EVAL_PCA_H
#define DIM_EVAL_PCA_H

#include <stddef.h>

#include "base/error.h"

#define DIM_PCA_MAX_K 8

struct dim_pca {
    size_t d, k;
    float *mean;       /* (d) feature means */
    float *components; /* (k, d) unit rows, by decreasing variance */
    double variance[DIM_PCA_MAX_K];  /* eigenvalues of C */
    double explained[DIM_PCA_MAX_K]; /* variance / trace(C) */
    double total_variance;           /* trace(C) */
};

/* Fits k components (1 <= k <= min(d, DIM_PCA_MAX_K)) to X (n, d), n >= 2. */
int dim_pca_fit(const float *X, size_t n, size_t d, size_t k, struct dim_pca *p,
                struct dim_err *err);
/* out (n, k) = (X - mean) components^T. */
void dim_pca_project(const struct dim_pca *p, const float *X, size_t n, float *out);
void dim_pca_free(struct dim_pca *p);

#endif

/* estimator.h - the three mutual-information estimators of Deep InfoMax as losses.
 *
 * Scores u are laid out (N anchors i) x (N images j) x (L locations q): entry
 * u[(i*N + j)*L + q] scores the global vector of image i against location q of
 * image j. Pairs with j == i are positive (N*L of them), j != i negative
 * (N*(N-1)*L): all-pairs negatives. Global MI is the case L = 1.
 *   JSD: loss = mean_P sp(-u) + mean_Q sp(u)                  (sp = softplus)
 *   NCE: anchor (i, q) scores its positive against all negatives of row i;
 *        loss = mean_(i,q) sp(lse_i - u[i][i][q]), lse_i = logsumexp_{j != i, q'} u[i][j][q']
 *        (= -log softmax of the positive among the positive and row i's negatives)
 *   DV:  loss = -mean_P u + log mean_Q exp(u)
 * All sums run in double with max-subtracted log-sum-exp.
 * Depends on libm only. No allocation.
 */
#ifndef DIM_DIM_ESTIMATOR_H
#define DIM_DIM_ESTIMATOR_H

#include <stddef.h>

enum dim_estimator { DIM_JSD = 0, DIM_NCE = 1, DIM_DV = 2 };

/* The largest batch (N) the estimators handle, and so the largest batch a config
 * accepts: per-row partial sums live on the stack. */
#define DIM_BATCH_MAX 4096

/* "jsd", "nce", "dv" */
const char *dim_estimator_name(enum dim_estimator e);
/* Parses a name; returns 0 or -1 when unknown. */
int dim_estimator_parse(const char *name, enum dim_estimator *out);

/* Returns the loss (unweighted) and writes du = weight * d loss / d u (overwrites).
 * N in [2, DIM_BATCH_MAX], L >= 1; NaN otherwise.
 * Rows are split across the calling thread's pool (base/parallel.h) with the
 * same result as a serial run. */
double dim_estimator_loss(enum dim_estimator e, float *du, const float *u, size_t N, size_t L,
                          float weight);

/* The same loss when the columns are spread over ranks (base/dist.h): this rank holds
 * the block of images [j0, j0 + nj) of every anchor row, u and du laid out
 * (N anchors) x (nj images) x (L locations), u[(i*nj + jl)*L + q] scoring anchor i
 * against location q of image j0 + jl. Row statistics the loss needs across the
 * block boundary (NCE: each row's log-sum-exp over its negatives and the sum of its
 * positives' weights; DV: the log-sum-exp over all negatives and the positives' sum;
 * JSD: nothing) are combined with d's max_f64 and sum_f64, so every rank returns
 * the whole loss and writes du = weight * d loss / d u for its own block: the
 * block of the one-process du, up to the order of float sums. Every rank must call
 * it with the same N, L and nj, blocks covering [0, N) once. NaN for N, L outside
 * the limits above. */
struct dim_dist;
double dim_estimator_loss_cols(enum dim_estimator e, float *du, const float *u, size_t N,
                               size_t L, size_t j0, size_t nj, float weight,
                               const struct dim_dist *d);

#endif

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

#endif

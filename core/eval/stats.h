/* stats.h - small numerical helpers shared by the measures of core/eval:
 * per-feature standardisation, mean and spread, a stable log-mean-exp, evenly
 * spaced subsets and random derangements.
 * Depends on base/rng and libm. Only dim_stats_standardise allocates.
 */
#ifndef DIM_EVAL_STATS_H
#define DIM_EVAL_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "base/rng.h"

/* x = (x - mean_train) / std_train per feature (population std over the ntr
 * training rows), applied in place to Xtr (ntr, dim) and, when non-NULL, Xte
 * (nte, dim); features with std <= 1e-6 become 0. Idempotent up to rounding.
 * Returns 0, DIM_EINVAL (ntr == 0) or DIM_ENOMEM. */
int dim_stats_standardise(float *Xtr, size_t ntr, float *Xte, size_t nte, size_t dim,
                          struct dim_err *err);

/* Mean and sample standard deviation (n - 1 in the denominator; 0 when n < 2)
 * of x[0..n). NaN when n == 0. */
void dim_stats_mean_std(const double *x, size_t n, double *mean, double *sd);

/* log(mean_i exp(u[i])) over n > 0 values, max-subtracted, summed in double. */
double dim_stats_log_mean_exp(const float *u, size_t n);

/* k indices evenly spaced over [0, n): idx[i] = floor(i * n / k), k <= n. */
void dim_stats_even_indices(uint32_t *idx, size_t k, size_t n);

/* A uniformly random cyclic permutation of [0, n) (Sattolo's algorithm): no
 * fixed points when n >= 2, so perm[i] != i pairs every row with another. */
void dim_stats_derangement(struct dim_rng *rng, uint32_t *perm, size_t n);

#endif

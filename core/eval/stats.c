/* stats.c - numerical helpers of the measures (see stats.h). */
#include "eval/stats.h"

#include <math.h>
#include <stdlib.h>

/* acc: 2 * dim doubles (means, then inverse standard deviations). */
static void standardise(float *Xtr, size_t ntr, float *Xte, size_t nte, size_t dim, double *acc)
{
    double *mu = acc, *sd = acc + dim;
    for (size_t i = 0; i < ntr; i++)
        for (size_t d = 0; d < dim; d++)
            mu[d] += Xtr[i * dim + d];
    for (size_t d = 0; d < dim; d++)
        mu[d] /= (double)ntr;
    for (size_t i = 0; i < ntr; i++)
        for (size_t d = 0; d < dim; d++) {
            double t = Xtr[i * dim + d] - mu[d];
            sd[d] += t * t;
        }
    for (size_t d = 0; d < dim; d++) {
        double s = sqrt(sd[d] / (double)ntr);
        sd[d] = s > 1e-6 ? 1.0 / s : 0.0;
    }
    for (size_t i = 0; i < ntr; i++)
        for (size_t d = 0; d < dim; d++)
            Xtr[i * dim + d] = (float)((Xtr[i * dim + d] - mu[d]) * sd[d]);
    for (size_t i = 0; i < nte; i++)
        for (size_t d = 0; d < dim; d++)
            Xte[i * dim + d] = (float)((Xte[i * dim + d] - mu[d]) * sd[d]);
}

int dim_stats_standardise(float *Xtr, size_t ntr, float *Xte, size_t nte, size_t dim,
                          struct dim_err *err)
{
    if (ntr == 0)
        return dim_fail(err, DIM_EINVAL, "standardisation needs training rows");
    double *mu = calloc(2 * (dim ? dim : 1), sizeof(double));
    if (!mu)
        return dim_fail(err, DIM_ENOMEM, "out of memory for statistics of %zu features", dim);
    standardise(Xtr, ntr, Xte, Xte ? nte : 0, dim, mu);
    free(mu);
    return 0;
}

void dim_stats_mean_std(const double *x, size_t n, double *mean, double *sd)
{
    if (n == 0) {
        *mean = *sd = NAN;
        return;
    }
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += x[i];
    double m = s / (double)n, q = 0.0;
    for (size_t i = 0; i < n; i++)
        q += (x[i] - m) * (x[i] - m);
    *mean = m;
    *sd = n > 1 ? sqrt(q / (double)(n - 1)) : 0.0;
}

double dim_stats_log_mean_exp(const float *u, size_t n)
{
    double mx = u[0];
    for (size_t i = 1; i < n; i++)
        mx = u[i] > mx ? u[i] : mx;
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += exp((double)u[i] - mx);
    return mx + log(s / (double)n);
}

void dim_stats_even_indices(uint32_t *idx, size_t k, size_t n)
{
    for (size_t i = 0; i < k; i++)
        idx[i] = (uint32_t)((double)i * (double)n / (double)k);
}

void dim_stats_derangement(struct dim_rng *rng, uint32_t *perm, size_t n)
{
    for (size_t i = 0; i < n; i++)
        perm[i] = (uint32_t)i;
    for (size_t i = n; i > 1; i--) { /* Sattolo: j uniform in [0, i - 1) */
        size_t j = dim_rng_below(rng, (uint32_t)(i - 1));
        uint32_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}

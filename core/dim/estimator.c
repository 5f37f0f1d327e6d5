/* estimator.c - JSD, InfoNCE and DV losses over all-pairs score tensors.
 *
 * Work splits over anchor rows i (base/parallel.h); each row's loss is summed
 * into its own slot and the slots are added in row order, so the result does
 * not depend on how rows were shared out.
 */
#include "dim/estimator.h"

#include <math.h>
#include <string.h>

#include "base/dist.h"
#include "base/parallel.h"
#include "nn/activation.h"

const char *dim_estimator_name(enum dim_estimator e)
{
    switch (e) {
    case DIM_JSD:
        return "jsd";
    case DIM_NCE:
        return "nce";
    case DIM_DV:
        return "dv";
    }
    return "?";
}

int dim_estimator_parse(const char *name, enum dim_estimator *out)
{
    for (int e = DIM_JSD; e <= DIM_DV; e++)
        if (strcmp(name, dim_estimator_name((enum dim_estimator)e)) == 0) {
            *out = (enum dim_estimator)e;
            return 0;
        }
    return -1;
}

/* softplus(z) and sigmoid(z) from one exponential: with e = exp(-|z|),
 * sp(z) = max(z, 0) + log1p(e), sigmoid(z) = 1 / (1 + e) for z >= 0, e / (1 + e) otherwise. */
static inline double sp_sigmoid(double z, double *sig)
{
    double e = exp(-fabs(z));
    *sig = z >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
    return (z > 0 ? z : 0) + log1p(e);
}

struct est_job {
    float *du;
    const float *u;
    size_t N, L;
    double w, P, Q;
    double *row;  /* per-row loss (JSD, NCE) or positive sum (DV) */
    double *rmax; /* DV: per-row max over negatives, then per-row sum of exp(u - rmax) */
    double *rsum;
    double lse; /* DV: log-sum-exp over all negatives */
};

/* loss = (1/P) sum_P sp(-u) + (1/Q) sum_Q sp(u)
 * d/du_pos = -sigmoid(-u) / P;  d/du_neg = sigmoid(u) / Q */
static void jsd_rows(void *ctx, size_t i0, size_t i1)
{
    const struct est_job *j = ctx;
    const size_t N = j->N, L = j->L;
    for (size_t i = i0; i < i1; i++) {
        double lp = 0.0, lq = 0.0, sig;
        for (size_t jj = 0; jj < N; jj++) {
            const float *s = j->u + (i * N + jj) * L;
            float *d = j->du + (i * N + jj) * L;
            if (i == jj)
                for (size_t q = 0; q < L; q++) {
                    lp += sp_sigmoid(-s[q], &sig);
                    d[q] = (float)(-j->w * sig / j->P);
                }
            else
                for (size_t q = 0; q < L; q++) {
                    lq += sp_sigmoid(s[q], &sig);
                    d[q] = (float)(j->w * sig / j->Q);
                }
        }
        j->row[i] = lp / j->P + lq / j->Q;
    }
}

/* logsumexp over row i's negatives (j != i, all q) */
static double row_neg_lse(const float *u, size_t i, size_t N, size_t L)
{
    double mx = -INFINITY;
    for (size_t j = 0; j < N; j++) {
        if (j == i)
            continue;
        const float *s = u + (i * N + j) * L;
        for (size_t q = 0; q < L; q++)
            mx = s[q] > mx ? s[q] : mx;
    }
    double acc = 0.0;
    for (size_t j = 0; j < N; j++) {
        if (j == i)
            continue;
        const float *s = u + (i * N + j) * L;
        for (size_t q = 0; q < L; q++)
            acc += exp(s[q] - mx);
    }
    return mx + log(acc);
}

/* loss_iq = sp(lse_i - u_iiq), averaged over the N*L anchors.
 * With t = sigmoid(lse_i - u_iiq): d/du_iiq = -t / NL; d/d lse_i = t / NL, and
 * d lse_i / d u_ijq' = exp(u_ijq' - lse_i), so negatives get T_i * softmax. */
static void nce_rows(void *ctx, size_t i0, size_t i1)
{
    const struct est_job *j = ctx;
    const size_t N = j->N, L = j->L;
    const double A = j->P;
    for (size_t i = i0; i < i1; i++) {
        double lse = row_neg_lse(j->u, i, N, L), T = 0.0, loss = 0.0, t;
        const float *pos = j->u + (i * N + i) * L;
        float *dpos = j->du + (i * N + i) * L;
        for (size_t q = 0; q < L; q++) {
            loss += sp_sigmoid(lse - pos[q], &t);
            dpos[q] = (float)(-j->w * t / A);
            T += t / A;
        }
        for (size_t jj = 0; jj < N; jj++) {
            if (jj == i)
                continue;
            const float *s = j->u + (i * N + jj) * L;
            float *d = j->du + (i * N + jj) * L;
            for (size_t q = 0; q < L; q++)
                d[q] = (float)(j->w * T * exp(s[q] - lse));
        }
        j->row[i] = loss / A;
    }
}

/* DV phase 1, per row: sum of positives, max of negatives, sum of exp(neg - max). */
static void dv_row_stats(void *ctx, size_t i0, size_t i1)
{
    const struct est_job *j = ctx;
    const size_t N = j->N, L = j->L;
    for (size_t i = i0; i < i1; i++) {
        double sp = 0.0, mx = -INFINITY, acc = 0.0;
        for (size_t jj = 0; jj < N; jj++) {
            const float *s = j->u + (i * N + jj) * L;
            for (size_t q = 0; q < L; q++) {
                if (i == jj)
                    sp += s[q];
                else if (s[q] > mx)
                    mx = s[q];
            }
        }
        for (size_t jj = 0; jj < N; jj++)
            if (jj != i) {
                const float *s = j->u + (i * N + jj) * L;
                for (size_t q = 0; q < L; q++)
                    acc += exp(s[q] - mx);
            }
        j->row[i] = sp;
        j->rmax[i] = mx;
        j->rsum[i] = acc;
    }
}

/* DV phase 2: d/du_pos = -1/P;  d/du_neg = exp(u - lse_Q) (softmax over all negatives) */
static void dv_rows_grad(void *ctx, size_t i0, size_t i1)
{
    const struct est_job *j = ctx;
    const size_t N = j->N, L = j->L;
    for (size_t i = i0; i < i1; i++)
        for (size_t jj = 0; jj < N; jj++) {
            const float *s = j->u + (i * N + jj) * L;
            float *d = j->du + (i * N + jj) * L;
            for (size_t q = 0; q < L; q++)
                d[q] = i == jj ? (float)(-j->w / j->P) : (float)(j->w * exp(s[q] - j->lse));
        }
}

double dim_estimator_loss(enum dim_estimator e, float *du, const float *u, size_t N, size_t L,
                          float weight)
{
    if (N < 2 || N > DIM_BATCH_MAX || L < 1)
        return NAN;
    double row[DIM_BATCH_MAX], rmax[DIM_BATCH_MAX], rsum[DIM_BATCH_MAX];
    struct est_job j = {du, u, N, L, weight, (double)(N * L), (double)(N * (N - 1) * L),
                        row, rmax, rsum, 0.0};
    double loss = 0.0;
    switch (e) {
    case DIM_JSD:
    case DIM_NCE:
        dim_parallel_for(N, 2, e == DIM_JSD ? jsd_rows : nce_rows, &j);
        for (size_t i = 0; i < N; i++)
            loss += row[i];
        return loss;
    case DIM_DV: {
        /* loss = -(1/P) sum_P u + log((1/Q) sum_Q exp(u)) */
        dim_parallel_for(N, 2, dv_row_stats, &j);
        double sp = 0.0, mx = -INFINITY, acc = 0.0;
        for (size_t i = 0; i < N; i++) {
            sp += row[i];
            mx = rmax[i] > mx ? rmax[i] : mx;
        }
        for (size_t i = 0; i < N; i++)
            acc += rsum[i] * exp(rmax[i] - mx);
        j.lse = mx + log(acc);
        dim_parallel_for(N, 2, dv_rows_grad, &j);
        return -sp / j.P + j.lse - log(j.Q);
    }
    }
    return NAN;
}

/* ---- a column block per rank ------------------------------------------------------------
 * Entry (i, jl, q) of the block is the global entry (i, j0 + jl, q); it is a positive when
 * j0 + jl == i. Each rank's work splits over anchor rows as above. */
struct col_job {
    float *du;
    const float *u;
    size_t N, L, j0, nj;
    double w, P, Q;
    double *row, *rmax, *rsum, *T; /* per anchor row; T has N + 1 slots (the loss last) */
    double lse;                    /* DV */
};

/* JSD: every entry's loss and gradient are its own; the row's loss sums its entries. */
static void jsd_cols(void *ctx, size_t i0, size_t i1)
{
    const struct col_job *j = ctx;
    const size_t nj = j->nj, L = j->L;
    for (size_t i = i0; i < i1; i++) {
        double lp = 0.0, lq = 0.0, sig;
        for (size_t jl = 0; jl < nj; jl++) {
            const float *s = j->u + (i * nj + jl) * L;
            float *d = j->du + (i * nj + jl) * L;
            if (j->j0 + jl == i)
                for (size_t q = 0; q < L; q++) {
                    lp += sp_sigmoid(-s[q], &sig);
                    d[q] = (float)(-j->w * sig / j->P);
                }
            else
                for (size_t q = 0; q < L; q++) {
                    lq += sp_sigmoid(s[q], &sig);
                    d[q] = (float)(j->w * sig / j->Q);
                }
        }
        j->row[i] = lp / j->P + lq / j->Q;
    }
}

/* Per row of the block: the positives' sum (row), the negatives' max (rmax). */
static void col_pos_max(void *ctx, size_t i0, size_t i1)
{
    const struct col_job *j = ctx;
    for (size_t i = i0; i < i1; i++) {
        double sp = 0.0, mx = -INFINITY;
        for (size_t jl = 0; jl < j->nj; jl++) {
            const float *s = j->u + (i * j->nj + jl) * j->L;
            for (size_t q = 0; q < j->L; q++) {
                if (j->j0 + jl == i)
                    sp += s[q];
                else if (s[q] > mx)
                    mx = s[q];
            }
        }
        j->row[i] = sp;
        j->rmax[i] = mx;
    }
}

/* Per row: sum of exp(neg - shift), shift = rmax[i] (NCE: the row's global max) or
 * lse (DV: the global max over all negatives, in j->lse). */
static void col_sumexp(void *ctx, size_t i0, size_t i1)
{
    const struct col_job *j = ctx;
    for (size_t i = i0; i < i1; i++) {
        const double shift = j->T ? j->rmax[i] : j->lse;
        double acc = 0.0;
        for (size_t jl = 0; jl < j->nj; jl++) {
            if (j->j0 + jl == i)
                continue;
            const float *s = j->u + (i * j->nj + jl) * j->L;
            for (size_t q = 0; q < j->L; q++)
                acc += exp(s[q] - shift);
        }
        j->rsum[i] = acc;
    }
}

/* NCE, rows whose positives are in this block: loss, the positives' gradient and
 * T_i = sum_q t_iq / A (see nce_rows); rmax holds lse_i by now. */
static void nce_col_pos(void *ctx, size_t i0, size_t i1)
{
    const struct col_job *j = ctx;
    const double A = j->P;
    for (size_t i = i0; i < i1; i++) {
        j->T[i] = 0.0;
        j->row[i] = 0.0;
        if (i < j->j0 || i >= j->j0 + j->nj)
            continue;
        const float *pos = j->u + (i * j->nj + (i - j->j0)) * j->L;
        float *dpos = j->du + (i * j->nj + (i - j->j0)) * j->L;
        double loss = 0.0, T = 0.0, t;
        for (size_t q = 0; q < j->L; q++) {
            loss += sp_sigmoid(j->rmax[i] - pos[q], &t);
            dpos[q] = (float)(-j->w * t / A);
            T += t / A;
        }
        j->T[i] = T;
        j->row[i] = loss / A;
    }
}

/* Negatives' gradient: NCE w * T_i * exp(u - lse_i); DV w * exp(u - lse_Q), positives -w/P. */
static void col_neg_grad(void *ctx, size_t i0, size_t i1)
{
    const struct col_job *j = ctx;
    for (size_t i = i0; i < i1; i++)
        for (size_t jl = 0; jl < j->nj; jl++) {
            const float *s = j->u + (i * j->nj + jl) * j->L;
            float *d = j->du + (i * j->nj + jl) * j->L;
            if (j->j0 + jl == i) {
                if (!j->T) /* DV */
                    for (size_t q = 0; q < j->L; q++)
                        d[q] = (float)(-j->w / j->P);
                continue;
            }
            for (size_t q = 0; q < j->L; q++)
                d[q] = j->T ? (float)(j->w * j->T[i] * exp(s[q] - j->rmax[i]))
                            : (float)(j->w * exp(s[q] - j->lse));
        }
}

double dim_estimator_loss_cols(enum dim_estimator e, float *du, const float *u, size_t N,
                               size_t L, size_t j0, size_t nj, float weight,
                               const struct dim_dist *d)
{
    if (N < 2 || N > DIM_BATCH_MAX || L < 1 || j0 + nj > N)
        return NAN;
    double row[DIM_BATCH_MAX], rmax[DIM_BATCH_MAX], rsum[DIM_BATCH_MAX], T[DIM_BATCH_MAX + 1];
    struct col_job j = {du, u, N, L, j0, nj, weight, (double)(N * L), (double)(N * (N - 1) * L),
                        row, rmax, rsum, NULL, 0.0};
    double loss = 0.0;
    switch (e) {
    case DIM_JSD:
        dim_parallel_for(N, 2, jsd_cols, &j);
        for (size_t i = 0; i < N; i++)
            loss += row[i];
        d->sum_f64(d->ctx, &loss, 1);
        return loss;
    case DIM_NCE:
        /* lse_i = max_i + log sum exp(neg - max_i), both over the whole row */
        dim_parallel_for(N, 2, col_pos_max, &j);
        d->max_f64(d->ctx, rmax, N);
        j.T = T;
        dim_parallel_for(N, 2, col_sumexp, &j);
        d->sum_f64(d->ctx, rsum, N);
        for (size_t i = 0; i < N; i++)
            rmax[i] += log(rsum[i]);
        dim_parallel_for(N, 2, nce_col_pos, &j);
        T[N] = 0.0;
        for (size_t i = 0; i < N; i++)
            T[N] += row[i];
        d->sum_f64(d->ctx, T, N + 1); /* each row's T from its owner, and the loss */
        dim_parallel_for(N, 2, col_neg_grad, &j);
        return T[N];
    case DIM_DV: {
        /* loss = -(1/P) sum_P u + log((1/Q) sum_Q exp(u)) */
        dim_parallel_for(N, 2, col_pos_max, &j);
        double mx = -INFINITY;
        for (size_t i = 0; i < N; i++)
            mx = rmax[i] > mx ? rmax[i] : mx;
        d->max_f64(d->ctx, &mx, 1);
        j.lse = mx;
        dim_parallel_for(N, 2, col_sumexp, &j);
        double ps[2] = {0.0, 0.0}; /* sum exp(neg - max), sum of positives */
        for (size_t i = 0; i < N; i++) {
            ps[0] += rsum[i];
            ps[1] += row[i];
        }
        d->sum_f64(d->ctx, ps, 2);
        j.lse = mx + log(ps[0]);
        dim_parallel_for(N, 2, col_neg_grad, &j);
        return -ps[1] / j.P + j.lse - log(j.Q);
    }
    }
    return NAN;
}

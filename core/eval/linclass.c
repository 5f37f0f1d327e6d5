/* linclass.c - softmax regression and the squared-hinge SVM by L-BFGS (see linclass.h). */
#include "eval/linclass.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/blas.h"
#include "base/parallel.h"
#include "base/rng.h"
#include "eval/stats.h"

/* Fixed chunks of rows: their partial gradients are added in this order, so an
 * evaluation gives the same bits with any pool. */
#define N_CHUNKS 16

void dim_linclass_opts_default(struct dim_linclass_opts *o)
{
    memset(o, 0, sizeof *o);
    o->loss = DIM_LINCLASS_SOFTMAX;
    o->gtol = 1e-4;
    o->max_iter = 1000;
    o->n_lambdas = 6;
    double l = 1e-1;
    for (int i = 0; i < o->n_lambdas; i++, l /= 10.0)
        o->lambdas[i] = l;
    o->val_fraction = 0.1;
    o->seed = 1;
    o->search_rows = 10000;
}

const char *dim_linclass_loss_name(enum dim_linclass_loss l)
{
    return l == DIM_LINCLASS_SVM ? "svm" : "softmax";
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Rows per block: one block of X (in double) stays in cache between its two products. */
static size_t block_rows(size_t D)
{
    size_t r = (size_t)(512 * 1024) / (D * sizeof(double));
    return r < 8 ? 8 : r > 256 ? 256 : r;
}

/* The objective runs in double: with float32 scores its value carries rounding
 * of about 1e-8, and near the optimum the line search then sees only noise
 * (measured: stalls at |g| ~ 1e-5 on small problems). X stays float32 in
 * memory; each block is widened in cache. */
struct objective {
    enum dim_linclass_loss loss;
    const float *X;
    const uint16_t *y;
    const uint32_t *rows;
    size_t n, D, K, R;
    const double *W; /* (K, D) */
    const double *b;
    double *scratch; /* per chunk: xb (R, D), s (R, K) */
    double *gpart;   /* per chunk: K * (D + 1) */
    double loss_part[N_CHUNKS];
};

static size_t scratch_doubles(size_t R, size_t D, size_t K)
{
    return R * D + R * K;
}

/* Loss of one block of scores s (B, K), labels yb; overwrites s with
 * d (sum of the block's losses) / d s, unscaled (the caller divides by n). */
static double block_loss(enum dim_linclass_loss loss, double *s, const uint16_t *yb, size_t B,
                         size_t K)
{
    double sum = 0.0;
    for (size_t i = 0; i < B; i++) {
        double *z = s + i * K;
        if (loss == DIM_LINCLASS_SOFTMAX) {
            /* -log softmax(z)[y] = logsumexp(z) - z_y; d/dz = softmax(z) - onehot(y) */
            double mx = z[0];
            for (size_t k = 1; k < K; k++)
                mx = z[k] > mx ? z[k] : mx;
            double se = 0.0;
            for (size_t k = 0; k < K; k++)
                se += exp(z[k] - mx);
            sum += mx + log(se) - z[yb[i]];
            for (size_t k = 0; k < K; k++)
                z[k] = exp(z[k] - mx) / se;
            z[yb[i]] -= 1.0;
        } else {
            /* sum_k max(0, 1 - t z_k)^2; d/dz_k = -2 t max(0, 1 - t z_k) */
            for (size_t k = 0; k < K; k++) {
                double t = k == yb[i] ? 1.0 : -1.0, m = 1.0 - t * z[k];
                sum += m > 0.0 ? m * m : 0.0;
                z[k] = m > 0.0 ? -2.0 * t * m : 0.0;
            }
        }
    }
    return sum;
}

static void objective_chunks(void *ctx, size_t c0, size_t c1)
{
    struct objective *o = ctx;
    const size_t D = o->D, K = o->K, R = o->R, P = K * (D + 1);
    for (size_t c = c0; c < c1; c++) {
        size_t i0 = o->n * c / N_CHUNKS, i1 = o->n * (c + 1) / N_CHUNKS;
        double *xb = o->scratch + c * scratch_doubles(R, D, K), *s = xb + R * D;
        double *gp = o->gpart + c * P, loss = 0.0;
        memset(gp, 0, sizeof(double) * P);
        uint16_t yb[256];
        for (size_t i = i0; i < i1; i += R) {
            size_t B = i1 - i < R ? i1 - i : R;
            for (size_t j = 0; j < B; j++) {
                size_t row = o->rows ? o->rows[i + j] : i + j;
                const float *x = o->X + row * D;
                for (size_t d = 0; d < D; d++)
                    xb[j * D + d] = x[d];
                yb[j] = o->y[row];
            }
            /* s = x W' + b */
            for (size_t j = 0; j < B; j++)
                memcpy(s + j * K, o->b, sizeof(double) * K);
            nn_dgemm(false, true, B, K, D, 1.0, xb, D, o->W, D, 1.0, s, K);
            loss += block_loss(o->loss, s, yb, B, K);
            /* dW += ds' x, db += column sums of ds */
            nn_dgemm(true, false, K, D, B, 1.0, s, K, xb, D, 1.0, gp, D);
            for (size_t j = 0; j < B; j++)
                for (size_t k = 0; k < K; k++)
                    gp[K * D + k] += s[j * K + k];
        }
        o->loss_part[c] = loss;
    }
}

double dim_linclass_objective(enum dim_linclass_loss loss, double lambda, const double *w,
                              double *g, const float *X, const uint16_t *y, const uint32_t *rows,
                              size_t n, size_t D, int K)
{
    const size_t Kz = (size_t)K, P = Kz * (D + 1), R = block_rows(D);
    struct objective o = {loss, X, y, rows, n, D, Kz, R, w, w + Kz * D, NULL, NULL, {0}};
    o.scratch = malloc(sizeof(double) * N_CHUNKS * scratch_doubles(R, D, Kz));
    o.gpart = malloc(sizeof(double) * N_CHUNKS * P);
    if (!o.scratch || !o.gpart) {
        free(o.scratch);
        free(o.gpart);
        return NAN;
    }
    dim_parallel_for(N_CHUNKS, 1, objective_chunks, &o);
    /* f = sum / n + lambda / 2 ||W||^2; g = partial sums / n + lambda W */
    double f = 0.0, reg = 0.0;
    for (size_t c = 0; c < N_CHUNKS; c++)
        f += o.loss_part[c];
    memset(g, 0, sizeof(double) * P);
    for (size_t c = 0; c < N_CHUNKS; c++)
        for (size_t e = 0; e < P; e++)
            g[e] += o.gpart[c * P + e];
    const double inv_n = 1.0 / (double)n;
    for (size_t e = 0; e < P; e++)
        g[e] *= inv_n;
    for (size_t e = 0; e < Kz * D; e++) {
        reg += w[e] * w[e];
        g[e] += lambda * w[e];
    }
    free(o.scratch);
    free(o.gpart);
    return f * inv_n + 0.5 * lambda * reg;
}

double dim_linclass_accuracy(const double *w, const float *X, const uint16_t *y,
                             const uint32_t *rows, size_t n, size_t D, int K)
{
    const size_t Kz = (size_t)K;
    size_t correct = 0;
    for (size_t i = 0; i < n; i++) {
        size_t row = rows ? rows[i] : i;
        const float *x = X + row * D;
        size_t best = 0;
        double best_s = -INFINITY;
        for (size_t k = 0; k < Kz; k++) {
            const double *wk = w + k * D;
            double s = w[Kz * D + k];
            for (size_t d = 0; d < D; d++)
                s += wk[d] * (double)x[d];
            if (s > best_s) {
                best_s = s;
                best = k;
            }
        }
        correct += best == y[row];
    }
    return n ? (double)correct / (double)n : NAN;
}

/* Rows the preconditioner's covariance is estimated from (it need not be exact). */
static size_t cov_rows(size_t n, size_t D)
{
    size_t k = 2 * D > 4096 ? 2 * D : 4096;
    return k < n ? k : n;
}

int dim_linclass_covariance(const float *X, const uint32_t *rows, size_t n, size_t D, double **C,
                            struct dim_err *err)
{
    const size_t ns = cov_rows(n, D);
    *C = malloc(sizeof(double) * D * D);
    float *Xs = malloc(sizeof(float) * ns * D), *Cf = malloc(sizeof(float) * D * D);
    uint32_t *idx = malloc(sizeof(uint32_t) * ns);
    if (!*C || !Xs || !Cf || !idx) {
        free(*C);
        *C = NULL;
        free(Xs);
        free(Cf);
        free(idx);
        return dim_fail(err, DIM_ENOMEM, "out of memory for the covariance of %zu features", D);
    }
    dim_stats_even_indices(idx, ns, n);
    for (size_t i = 0; i < ns; i++)
        memcpy(Xs + i * D, X + (size_t)(rows ? rows[idx[i]] : idx[i]) * D, sizeof(float) * D);
    nn_sgemm(true, false, D, D, ns, 1.0f / (float)ns, Xs, D, Xs, D, 0.0f, Cf, D);
    for (size_t e = 0; e < D * D; e++)
        (*C)[e] = Cf[e];
    free(Xs);
    free(Cf);
    free(idx);
    return 0;
}

/* P = (a C + (lambda + eps) I)^-1 on each class's weights and 1 / a on the biases:
 * the inverse of the objective's Hessian with the loss's curvature per row
 * replaced by the constant a (eps: see precond_init). */
struct precond {
    size_t D, K;
    double a;
    double *L; /* (D, D) Cholesky factor */
};

static void precond_apply(void *ctx, double *v)
{
    const struct precond *p = ctx;
    nn_cholesky_solve(p->L, p->D, v, p->K);
    for (size_t k = 0; k < p->K; k++)
        v[p->K * p->D + k] /= p->a;
}

/* Curvature per row of each loss where the fit starts: softmax p(1 - p) with
 * p = 1 / K; squared hinge 2 on the (about half) active margins. */
static double loss_curvature(enum dim_linclass_loss loss, int K)
{
    return loss == DIM_LINCLASS_SVM ? 1.0 : 1.0 / K;
}

static int precond_init(struct precond *p, const double *C, size_t D, int K,
                        enum dim_linclass_loss loss, double lambda, struct dim_err *err)
{
    p->D = D;
    p->K = (size_t)K;
    p->a = loss_curvature(loss, K);
    p->L = malloc(sizeof(double) * D * D);
    if (!p->L)
        return dim_fail(err, DIM_ENOMEM, "out of memory for a preconditioner of %zu features", D);
    double tr = 0.0;
    for (size_t d = 0; d < D; d++)
        tr += C[d * D + d];
    /* C comes from a float32 product: rank-deficient, it can have negative
     * eigenvalues of about D * 1e-7 times its mean diagonal. A ridge that size
     * keeps the factorisation possible; tenfold more on each failure. */
    const double mean_diag = tr > 0.0 ? tr / (double)D : 1.0;
    double jitter = 1e-7 * (double)D * p->a * mean_diag;
    for (int attempt = 0; attempt < 6; attempt++, jitter *= 10.0) {
        for (size_t e = 0; e < D * D; e++)
            p->L[e] = p->a * C[e];
        for (size_t d = 0; d < D; d++)
            p->L[d * D + d] += lambda + jitter;
        if (nn_cholesky(p->L, D) == 0)
            return 0;
    }
    free(p->L);
    p->L = NULL;
    return dim_fail(err, DIM_ENONFINITE,
                    "preconditioner of %zu features is not positive definite", D);
}

struct fit_ctx {
    enum dim_linclass_loss loss;
    double lambda;
    const float *X;
    const uint16_t *y;
    const uint32_t *rows;
    size_t n, D;
    int K;
};

static double fit_fn(void *ctx, const double *w, double *g)
{
    const struct fit_ctx *c = ctx;
    return dim_linclass_objective(c->loss, c->lambda, w, g, c->X, c->y, c->rows, c->n, c->D, c->K);
}

int dim_linclass_fit(enum dim_linclass_loss loss, double lambda, double *w, const float *X,
                     const uint16_t *y, const uint32_t *rows, size_t n, size_t D, int K,
                     const double *C, const struct dim_linclass_opts *o,
                     const struct dim_hooks *h, struct nn_lbfgs_result *r, struct dim_err *err)
{
    struct fit_ctx c = {loss, lambda, X, y, rows, n, D, K};
    struct nn_lbfgs_opts lo;
    nn_lbfgs_opts_default(&lo);
    lo.gtol = o->gtol;
    lo.max_iter = o->max_iter;
    lo.cancel = h ? h->cancel : NULL;
    struct precond pc = {0};
    if (C) {
        int rc = precond_init(&pc, C, D, K, loss, lambda, err);
        if (rc)
            return rc;
        lo.precond = precond_apply;
        lo.precond_ctx = &pc;
    }
    int rc = nn_lbfgs_minimise(w, (size_t)K * (D + 1), fit_fn, &c, &lo, r, err);
    free(pc.L);
    if (rc == 0 && !(isfinite(r->f) && isfinite(r->gnorm)))
        rc = dim_fail(err, DIM_ENONFINITE, "%s at lambda %g: objective not finite",
                      dim_linclass_loss_name(loss), lambda);
    return rc;
}

/* With more features than half the rows, the covariance is mostly ridge and its
 * D^3 factorisations cost more than the iterations they save. */
static bool precondition(size_t n, size_t D)
{
    return 2 * D <= n;
}

int dim_linclass_run(float *Xtr, const uint16_t *ytr, size_t ntr, float *Xte,
                     const uint16_t *yte, size_t nte, size_t D, int K,
                     const struct dim_linclass_opts *o, const struct dim_hooks *h,
                     struct dim_linclass_result *r, struct dim_err *err)
{
    const double t0 = now();
    memset(r, 0, sizeof *r);
    r->accuracy = r->lambda = r->val_accuracy = r->gnorm = NAN;
    const int L = o->n_lambdas;
    const bool search = L > 1;
    size_t nval = search ? (size_t)llround(o->val_fraction * (double)ntr) : 0;
    if (ntr < 2 || nte < 1 || D == 0 || K < 2)
        return dim_fail(err, DIM_EINVAL,
                        "a linear classifier needs >= 2 training rows, >= 1 test row and "
                        ">= 2 classes (got %zu, %zu, %d)",
                        ntr, nte, K);
    if (L < 1 || L > DIM_LINCLASS_MAX_LAMBDAS || !(o->gtol > 0.0) || o->max_iter < 1)
        return dim_fail(err, DIM_EINVAL,
                        "linear classifier options: n_lambdas %d (1..%d), gtol %g (> 0), "
                        "max_iter %d (>= 1)",
                        L, DIM_LINCLASS_MAX_LAMBDAS, o->gtol, o->max_iter);
    for (int i = 0; i < L; i++)
        if (!(o->lambdas[i] >= 0.0) || (i > 0 && !(o->lambdas[i] < o->lambdas[i - 1])))
            return dim_fail(err, DIM_EINVAL, "lambdas must be >= 0 and strictly descending "
                                             "(lambda %d is %g)",
                            i, o->lambdas[i]);
    if (search && (!(o->val_fraction > 0.0 && o->val_fraction <= 0.5) || nval < 1 ||
                   ntr - nval < 2))
        return dim_fail(err, DIM_EINVAL,
                        "validation fraction %g of %zu training rows leaves no validation or "
                        "fitting split",
                        o->val_fraction, ntr);
    int rc = dim_stats_standardise(Xtr, ntr, Xte, nte, D, err);
    if (rc)
        return rc;
    const size_t P = (size_t)K * (D + 1);
    double *w = calloc(P, sizeof(double)), *best = malloc(sizeof(double) * P), *C = NULL;
    uint32_t *perm = malloc(sizeof(uint32_t) * ntr);
    if (!w || !best || !perm) {
        rc = dim_fail(err, DIM_ENOMEM, "out of memory for a linear classifier on %zu features",
                      D);
        goto out;
    }
    struct nn_lbfgs_result lr;
    int best_i = 0;
    if (search) {
        for (size_t i = 0; i < ntr; i++)
            perm[i] = (uint32_t)i;
        struct dim_rng rng;
        dim_rng_seed(&rng, o->seed, 0x11c1a55);
        dim_rng_shuffle(&rng, perm, ntr);
        /* perm[0, nval): validation; perm[nval, nval + nfit): fitting rows */
        const uint32_t *val = perm, *fit = perm + nval;
        size_t nfit = ntr - nval;
        if (o->search_rows >= 2 && nfit > o->search_rows)
            nfit = o->search_rows;
        if (precondition(nfit, D) && (rc = dim_linclass_covariance(Xtr, fit, nfit, D, &C, err)))
            goto out;
        /* the search only ranks lambdas: its solves stop at 10x the tolerance (the
         * final refit goes to the tolerance itself) */
        struct dim_linclass_opts path_opts = *o;
        path_opts.gtol = 10.0 * o->gtol;
        double best_acc = -1.0, prev_acc = -1.0;
        int falls = 0;
        for (int i = 0; i < L; i++) {
            rc = dim_linclass_fit(o->loss, o->lambdas[i], w, Xtr, ytr, fit, nfit, D, K, C,
                                  &path_opts, h, &lr, err);
            if (rc)
                goto out;
            r->lambdas_tried = i + 1;
            r->path_iterations += lr.iterations;
            double acc = dim_linclass_accuracy(w, Xtr, ytr, val, nval, D, K);
            if (acc > best_acc) {
                best_acc = acc;
                best_i = i;
                memcpy(best, w, sizeof(double) * P);
            }
            falls = acc < prev_acc ? falls + 1 : 0;
            prev_acc = acc;
            dim_hooks_report(h, (i + 1.0) / (L + 1));
            if (falls >= 2)
                break;
        }
        r->val_accuracy = best_acc;
        memcpy(w, best, sizeof(double) * P);
    }
    r->lambda = o->lambdas[best_i];
    if (!C && precondition(ntr, D) &&
        (rc = dim_linclass_covariance(Xtr, NULL, ntr, D, &C, err)) != 0)
        goto out;
    rc = dim_linclass_fit(o->loss, r->lambda, w, Xtr, ytr, NULL, ntr, D, K, C, o, h, &lr, err);
    if (rc)
        goto out;
    r->iterations = lr.iterations;
    r->path_iterations += lr.iterations;
    r->gnorm = lr.gnorm;
    r->stop = lr.stop;
    r->accuracy = dim_linclass_accuracy(w, Xte, yte, NULL, nte, D, K);
    dim_hooks_report(h, 1.0);
out:
    free(w);
    free(best);
    free(perm);
    free(C);
    r->seconds = now() - t0;
    return rc;
}

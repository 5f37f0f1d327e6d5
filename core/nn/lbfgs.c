/* lbfgs.c - L-BFGS with a strong-Wolfe line search (see lbfgs.h). */
#include "nn/lbfgs.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define C1 1e-4       /* sufficient decrease */
#define C2 0.9        /* curvature (the usual choice for quasi-Newton directions) */
#define MAX_BRACKET 20
#define MAX_ZOOM 30

void nn_lbfgs_opts_default(struct nn_lbfgs_opts *o)
{
    o->m = 10;
    o->max_iter = 1000;
    o->gtol = 1e-5;
    o->cancel = NULL;
    o->precond = NULL;
    o->precond_ctx = NULL;
}

const char *nn_lbfgs_stop_name(enum nn_lbfgs_stop s)
{
    switch (s) {
    case NN_LBFGS_CONVERGED:
        return "converged";
    case NN_LBFGS_MAX_ITER:
        return "iteration cap";
    case NN_LBFGS_NO_PROGRESS:
        return "no progress";
    }
    return "?";
}

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* One line: the start x0 (f0, slope d0 = g0'p along p) and the trial point. */
struct line {
    const double *x0, *p;
    double f0, d0;
    size_t n;
    nn_lbfgs_fn fn;
    void *ctx;
    double *xt, *gt; /* trial point and its gradient */
    int evals;
};

/* Evaluates phi(a) = f(x0 + a p) into xt, gt; *d gets phi'(a). */
static double phi(struct line *l, double a, double *d)
{
    for (size_t i = 0; i < l->n; i++)
        l->xt[i] = l->x0[i] + a * l->p[i];
    double f = l->fn(l->ctx, l->xt, l->gt);
    l->evals++;
    *d = dot(l->gt, l->p, l->n);
    return f;
}

/* Minimiser of the quadratic through (lo, f_lo, d_lo) and (hi, f_hi), kept in the
 * middle 80 % of the bracket; bisection when the quadratic has no minimum there. */
static double interpolate(double lo, double f_lo, double d_lo, double hi, double f_hi)
{
    double w = hi - lo, den = 2.0 * (f_hi - f_lo - d_lo * w);
    double a = den > 0.0 ? lo - d_lo * w * w / den : lo + 0.5 * w;
    double a_min = lo + 0.1 * w, a_max = lo + 0.9 * w;
    if (a_min > a_max) {
        double t = a_min;
        a_min = a_max;
        a_max = t;
    }
    if (!isfinite(a) || a < a_min || a > a_max)
        a = lo + 0.5 * w;
    return a;
}

/* Strong-Wolfe step length from a_init. Returns the step with xt, gt at it and
 * *ft its value, or 0 when no acceptable step was found. */
static double line_search(struct line *l, double a_init, double *ft)
{
    double a_prev = 0.0, f_prev = l->f0, d_prev = l->d0, a = a_init;
    double lo = 0, f_lo = 0, d_lo = 0, hi = 0, f_hi = 0;
    bool bracketed = false;
    for (int i = 0; i < MAX_BRACKET; i++) {
        double d, f = phi(l, a, &d);
        if (!isfinite(f) || !isfinite(d) || f > l->f0 + C1 * a * l->d0 ||
            (i > 0 && f >= f_prev)) {
            lo = a_prev, f_lo = f_prev, d_lo = d_prev;
            hi = a, f_hi = isfinite(f) ? f : INFINITY;
            bracketed = true;
            break;
        }
        if (fabs(d) <= -C2 * l->d0) {
            *ft = f;
            return a;
        }
        if (d >= 0.0) {
            lo = a, f_lo = f, d_lo = d;
            hi = a_prev, f_hi = f_prev;
            bracketed = true;
            break;
        }
        a_prev = a, f_prev = f, d_prev = d;
        a *= 2.0;
    }
    if (!bracketed) { /* still descending after MAX_BRACKET doublings: take the last */
        double d;
        *ft = phi(l, a_prev, &d);
        return isfinite(*ft) && *ft < l->f0 ? a_prev : 0.0;
    }
    for (int j = 0; j < MAX_ZOOM; j++) {
        a = isfinite(f_hi) ? interpolate(lo, f_lo, d_lo, hi, f_hi) : lo + 0.5 * (hi - lo);
        double d, f = phi(l, a, &d);
        if (!isfinite(f) || !isfinite(d) || f > l->f0 + C1 * a * l->d0 || f >= f_lo) {
            hi = a, f_hi = isfinite(f) ? f : INFINITY;
        } else {
            if (fabs(d) <= -C2 * l->d0) {
                *ft = f;
                return a;
            }
            if (d * (hi - lo) >= 0.0)
                hi = lo, f_hi = f_lo;
            lo = a, f_lo = f, d_lo = d;
        }
        if (fabs(hi - lo) <= 1e-16 * fmax(1.0, fabs(lo)))
            break;
    }
    /* No Wolfe point, but lo decreased f enough: take it (a step that only
     * satisfies sufficient decrease is still a descent step). */
    if (lo > 0.0 && f_lo < l->f0) {
        double d;
        *ft = phi(l, lo, &d);
        return lo;
    }
    return 0.0;
}

int nn_lbfgs_minimise(double *x, size_t n, nn_lbfgs_fn fn, void *ctx,
                      const struct nn_lbfgs_opts *o, struct nn_lbfgs_result *r,
                      struct dim_err *err)
{
    memset(r, 0, sizeof *r);
    r->f = r->gnorm = NAN;
    if (n == 0 || o->m < 1 || o->max_iter < 0 || !(o->gtol >= 0.0))
        return dim_fail(err, DIM_EINVAL, "L-BFGS needs n > 0, m >= 1, max_iter >= 0 and gtol "
                                         ">= 0 (n %zu, m %d, max_iter %d)",
                        n, o->m, o->max_iter);
    const size_t m = (size_t)o->m;
    /* g, p, xt, gt, then the history S (m, n) and Y (m, n) */
    double *buf = malloc(sizeof(double) * n * (4 + 2 * m));
    double *rho = malloc(sizeof(double) * 2 * m);
    if (!buf || !rho) {
        free(buf);
        free(rho);
        return dim_fail(err, DIM_ENOMEM, "out of memory for L-BFGS on %zu variables", n);
    }
    double *g = buf, *p = g + n, *xt = p + n, *gt = xt + n, *S = gt + n, *Y = S + m * n;
    double *alpha = rho + m;
    int rc = 0;
    double f = fn(ctx, x, g);
    r->evaluations = 1;
    double gnorm = sqrt(dot(g, g, n));
    if (!isfinite(f) || !isfinite(gnorm)) {
        rc = dim_fail(err, DIM_ENONFINITE, "L-BFGS: the function is not finite at the start");
        goto out;
    }
    size_t kept = 0, newest = 0; /* pairs in the ring, index of the newest */
    r->stop = NN_LBFGS_MAX_ITER;
    for (int it = 0; it < o->max_iter; it++) {
        if (gnorm <= o->gtol) {
            r->stop = NN_LBFGS_CONVERGED;
            break;
        }
        if (o->cancel && atomic_load_explicit(o->cancel, memory_order_relaxed)) {
            rc = dim_fail(err, DIM_ECANCELLED, "L-BFGS cancelled at iteration %d", it);
            break;
        }
        /* p = -H g by the two-loop recursion, newest pair first */
        for (size_t i = 0; i < n; i++)
            p[i] = -g[i];
        for (size_t k = 0; k < kept; k++) {
            size_t j = (newest + m - k) % m;
            alpha[j] = rho[j] * dot(S + j * n, p, n);
            for (size_t i = 0; i < n; i++)
                p[i] -= alpha[j] * Y[j * n + i];
        }
        if (o->precond)
            o->precond(o->precond_ctx, p);
        if (kept > 0) { /* gamma = s'y / y'Py of the newest pair (xt is free until the line search) */
            const double *s = S + newest * n, *y = Y + newest * n;
            memcpy(xt, y, sizeof(double) * n);
            if (o->precond)
                o->precond(o->precond_ctx, xt);
            double gamma = dot(s, y, n) / dot(y, xt, n);
            for (size_t i = 0; i < n; i++)
                p[i] *= gamma;
        }
        for (size_t k = kept; k-- > 0;) {
            size_t j = (newest + m - k) % m;
            double beta = rho[j] * dot(Y + j * n, p, n);
            for (size_t i = 0; i < n; i++)
                p[i] += (alpha[j] - beta) * S[j * n + i];
        }
        double d0 = dot(g, p, n);
        if (!(d0 < 0.0)) { /* not a descent direction (rounding): restart from -g */
            for (size_t i = 0; i < n; i++)
                p[i] = -g[i];
            d0 = -gnorm * gnorm;
            kept = 0;
        }
        struct line l = {x, p, f, d0, n, fn, ctx, xt, gt, 0};
        double ft = f;
        /* without history, -g (or -Pg) has no scale: the first trial is a step of length 1 */
        double a0 = kept > 0 ? 1.0 : fmin(1.0, 1.0 / sqrt(dot(p, p, n)));
        double a = line_search(&l, a0, &ft);
        r->evaluations += l.evals;
        if (a == 0.0) {
            if (kept == 0) {
                r->stop = NN_LBFGS_NO_PROGRESS;
                break;
            }
            kept = 0; /* retry once along -g with a fresh history */
            it--;
            continue;
        }
        /* the new pair: s = xt - x, y = gt - g */
        size_t slot = kept == 0 ? 0 : (newest + 1) % m;
        double *s = S + slot * n, *y = Y + slot * n;
        for (size_t i = 0; i < n; i++) {
            s[i] = xt[i] - x[i];
            y[i] = gt[i] - g[i];
        }
        double sy = dot(s, y, n);
        memcpy(x, xt, sizeof(double) * n);
        memcpy(g, gt, sizeof(double) * n);
        f = ft;
        gnorm = sqrt(dot(g, g, n));
        r->iterations = it + 1;
        if (sy > 1e-12 * sqrt(dot(y, y, n) * dot(s, s, n))) { /* keep pairs of positive curvature */
            rho[slot] = 1.0 / sy;
            newest = slot;
            kept = kept < m ? kept + 1 : m;
        } else if (kept == m) { /* the slot held the oldest pair: it is gone */
            kept = m - 1;
        }
    }
    if (rc == 0 && r->stop == NN_LBFGS_MAX_ITER && gnorm <= o->gtol)
        r->stop = NN_LBFGS_CONVERGED;
out:
    r->f = f;
    r->gnorm = gnorm;
    free(buf);
    free(rho);
    return rc;
}

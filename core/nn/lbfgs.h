/* lbfgs.h - limited-memory BFGS for smooth unconstrained minimisation of a
 * function of a double vector (Nocedal & Wright, Numerical Optimization, 2nd
 * ed., algorithms 7.4 and 7.5, with the strong-Wolfe line search of 3.5/3.6).
 *
 * The caller supplies f and its gradient in one call. The minimiser keeps the
 * last m correction pairs (s, y); its initial inverse Hessian is gamma * P, P the
 * caller's preconditioner (an approximation of the inverse Hessian, symmetric
 * positive definite; the identity when none is given) and gamma = s'y / y'Py of
 * the newest pair. It stops when ||g||_2 <= gtol (converged), after
 * max_iter iterations, when the line search cannot make progress (the function
 * is flat to within rounding along the direction: usually the tolerance is below
 * what the gradient's precision allows), when f or g is non-finite, or when the
 * cancel flag is set. The result says which, with the iteration count, the
 * number of function evaluations, f and ||g||_2 at the returned point.
 * Deterministic: the same function gives the same iterates.
 * Depends on libm and base/error. Allocates its history once per call.
 */
#ifndef DIM_NN_LBFGS_H
#define DIM_NN_LBFGS_H

#include <stdatomic.h>
#include <stddef.h>

#include "base/error.h"

/* Writes the gradient at x into g (n doubles) and returns f(x). */
typedef double (*nn_lbfgs_fn)(void *ctx, const double *x, double *g);
/* Replaces v (n doubles) by P v. */
typedef void (*nn_lbfgs_precond)(void *ctx, double *v);

enum nn_lbfgs_stop {
    NN_LBFGS_CONVERGED = 0, /* ||g|| <= gtol */
    NN_LBFGS_MAX_ITER,      /* iteration cap reached first */
    NN_LBFGS_NO_PROGRESS,   /* line search found no decrease (f flat to rounding) */
};

struct nn_lbfgs_opts {
    int m;                     /* correction pairs kept (default 10) */
    int max_iter;              /* iteration cap (default 1000) */
    double gtol;               /* gradient-norm tolerance (default 1e-5) */
    const atomic_bool *cancel; /* optional: stops with DIM_ECANCELLED between iterations */
    nn_lbfgs_precond precond;  /* optional (default NULL: the identity) */
    void *precond_ctx;
};

struct nn_lbfgs_result {
    enum nn_lbfgs_stop stop;
    int iterations;  /* accepted steps */
    int evaluations; /* calls of fn, the first included */
    double f, gnorm; /* at the returned x */
};

void nn_lbfgs_opts_default(struct nn_lbfgs_opts *o);
/* "converged", "iteration cap", "no progress". Static storage. */
const char *nn_lbfgs_stop_name(enum nn_lbfgs_stop s);

/* Minimises fn over x (n doubles, the starting point on entry, the best point
 * found on return) and fills r. Returns 0 (whatever r->stop says), DIM_EINVAL
 * (n == 0 or bad options), DIM_ENOMEM, DIM_ENONFINITE (fn gave a non-finite
 * value at the start or the line search met only non-finite values; x is the
 * last finite point), or DIM_ECANCELLED. */
int nn_lbfgs_minimise(double *x, size_t n, nn_lbfgs_fn fn, void *ctx,
                      const struct nn_lbfgs_opts *o, struct nn_lbfgs_result *r,
                      struct dim_err *err);

#endif

/* gradcheck.h - finite-difference gradient checking for float32 kernels (tests only).
 *
 * Usage: run the forward pass once, make a scalar loss with gc_project (which
 * also writes dout = r), run the backward pass into zeroed gradient buffers,
 * then call gc_check once per array (an input or a parameter tensor) with a
 * callback that reruns the forward pass and returns the same loss:
 *
 *     static double loss(void *ctx) { ...forward...; return gc_project(out, r, n, NULL); }
 *     struct gc_opts o = gc_opts_default("conv.dw");
 *     assert_int_equal(gc_check(&o, loss, ctx, w, dw, nw, NULL), 0);
 *
 * loss must be deterministic: reseed any generator it uses (dropout) on every
 * call, so that each evaluation sees the same random draw as the analytic pass.
 *
 * Numeric gradient, per checked entry j (central difference, in double):
 *     num = (L(x + eps) - L(x - eps)) / ((float)(x + eps) - (float)(x - eps))
 * The denominator is the step actually taken after rounding to float. x[j] is
 * restored bit-exactly afterwards. An entry passes when
 *     |num - ana| <= atol + rtol * max(|num|, |ana|).
 *
 * Why these tolerances: kernels run in float32, so one loss evaluation carries
 * rounding noise of roughly 1e-7 relative to its terms; divided by 2*eps = 2e-2
 * that is ~1e-5 absolute, which atol = 1e-3 swamps. The truncation error of a
 * central difference is eps^2/6 * f''' ~ 2e-5 relative for smooth ops with O(1)
 * curvature, which rtol = 2e-2 swamps. A wrong sign, a missing term or a factor
 * error (>= ~5% of the gradient) is still caught, as long as the test keeps the
 * gradients O(0.1..10) (inputs and projection weights of unit scale).
 *
 * Tolerances used per op (see the tests; GC_* below are the defaults):
 *   conv2d, linear, dropout mul    eps 1e-2  rtol 5e-3  atol 5e-4  (linear in each argument:
 *                                  central differences are exact up to rounding)
 *   relu, sigmoid                  eps 1e-2  rtol 2e-2  atol 1e-3
 *   batch norm, layer norm         eps 1e-2  rtol 2e-2  atol 1e-3  (inputs of unit variance)
 *   whole nn_net (conv,bn,relu,..) eps 5e-3  rtol 3e-2  atol 2e-3  (kinks skipped, see below)
 *
 * Kinks: ReLU is not differentiable at 0. Either keep pre-activations away from
 * zero (gc_fill_away_from_zero), or give gc_opts.kink a callback that, called
 * right after each perturbed loss evaluation, returns true when that evaluation
 * moved some pre-activation across 0 compared with the unperturbed pass; the
 * entry is then skipped (counted in gc_result.skipped), not compared.
 *
 * Everything here is deterministic: sampling uses a seeded struct dim_rng.
 * Failure lines go to stderr; at most GC_MAX_REPORTS per gc_check call. With the
 * environment variable GC_VERBOSE set, every gc_check also prints a summary line
 * (checked, skipped, failed, worst ratio), to see how much margin a test has.
 */
#ifndef DIMD_TESTS_GRADCHECK_H
#define DIMD_TESTS_GRADCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/rng.h"

#define GC_EPS 1e-2
#define GC_RTOL 2e-2
#define GC_ATOL 1e-3
#define GC_MAX_CHECKS 64 /* arrays longer than this are sampled */
#define GC_MAX_REPORTS 8

/* Runs a forward pass and returns a scalar loss accumulated in double. */
typedef double (*gc_loss_fn)(void *ctx);

struct gc_opts {
    const char *name;        /* label in failure lines, e.g. "conv.dw" */
    double eps;              /* perturbation, in the units of x */
    double atol, rtol;       /* pass: |num - ana| <= atol + rtol * max(|num|, |ana|) */
    size_t max_checks;       /* entries checked: all when n <= max_checks, else a random subset;
                                0 means every entry */
    uint64_t seed;           /* selects the subset */
    bool (*kink)(void *ctx); /* optional: true when the last loss evaluation crossed a kink */
    bool quiet;              /* no failure lines (for tests that expect failures) */
};

struct gc_result {
    size_t checked;     /* entries compared (skipped ones not included) */
    size_t failed;      /* entries outside the tolerance */
    size_t skipped;     /* entries skipped because kink() said so */
    double worst_ratio; /* max |num - ana| / (atol + rtol * max(|num|, |ana|)); > 1 fails */
    double worst_abs;   /* max |num - ana| */
    size_t worst_index; /* index of the entry with worst_ratio */
};

/* Default options: GC_EPS, GC_RTOL, GC_ATOL, GC_MAX_CHECKS, a fixed seed, no kink test,
 * failures printed. */
struct gc_opts gc_opts_default(const char *name);

/* Compares the analytic gradient grad (n) of loss with respect to x (n) against
 * central differences, perturbing x in place (restored before return). grad
 * must have been computed at the current x and must not be written by loss.
 * Returns the number of failed entries (0 = pass); fills res when non-NULL.
 * Prints one stderr line per failure (index, numeric, analytic, |diff|, tol). */
size_t gc_check(const struct gc_opts *o, gc_loss_fn loss, void *ctx, float *x, const float *grad,
                size_t n, struct gc_result *res);

/* Returns sum_i out[i] * r[i] accumulated in double; when dout is non-NULL also
 * writes dout[i] = r[i], the gradient of that loss with respect to out. */
double gc_project(const float *out, const float *r, size_t n, float *dout);

/* x[i] = uniform in [lo, hi). */
void gc_fill_uniform(float *x, size_t n, float lo, float hi, struct dim_rng *rng);
/* x[i] = scale * standard normal. */
void gc_fill_normal(float *x, size_t n, float scale, struct dim_rng *rng);
/* x[i] = random sign times uniform in [lo, hi), 0 < lo < hi: keeps ReLU inputs off the kink. */
void gc_fill_away_from_zero(float *x, size_t n, float lo, float hi, struct dim_rng *rng);

/* Elementwise comparison of two arrays (no finite differences), same pass rule
 * as gc_check. Returns the number of mismatches, printing the first few;
 * stores max |got - want| in *worst_abs when non-NULL. */
size_t gc_compare(const char *name, const float *got, const float *want, size_t n, double atol,
                  double rtol, double *worst_abs);

#endif

/* hooks.h - progress reports and cancellation for the long-running measures of
 * core/eval (the classifiers, NDM, MINE and the decoder train for thousands of
 * steps).
 *
 * A measure receives an optional const struct dim_hooks *. Between training
 * steps it asks dim_hooks_cancelled and, when true, stops and returns
 * DIM_ECANCELLED; now and then it calls dim_hooks_report with its own progress
 * f in [0, 1], which reaches the owner's callback as lo + f * (hi - lo), so the
 * owner of several measures (dim_evaluate) sees one overall fraction.
 * core/ owns no threads: the callback runs on the measuring thread, and the
 * cancel flag is written by whoever owns it (another thread, a signal handler).
 * Depends on libc (C11 atomics) only. No allocation.
 */
#ifndef DIM_EVAL_HOOKS_H
#define DIM_EVAL_HOOKS_H

#include <stdatomic.h>
#include <stdbool.h>

/* stage: a short static name ("ndm", "svm" ...); fraction: overall, in [0, 1]. */
typedef void (*dim_progress_fn)(void *ctx, const char *stage, double fraction);

struct dim_hooks {
    dim_progress_fn progress;  /* may be NULL */
    void *ctx;                 /* passed to progress */
    const atomic_bool *cancel; /* may be NULL; true asks the measure to stop */
    const char *stage;         /* passed to progress */
    double lo, hi;             /* this stage's share of the overall fraction */
};

/* True when h is non-NULL and its cancel flag is set. */
bool dim_hooks_cancelled(const struct dim_hooks *h);

/* Reports progress f (clamped to [0, 1]) within the stage; no-op when h or its
 * callback is NULL. */
void dim_hooks_report(const struct dim_hooks *h, double f);

/* True when step s of n (from 0) is one of about 100 evenly spaced points at
 * which a measure reports progress, and at the last step. */
bool dim_hooks_due(long s, long n);

#endif

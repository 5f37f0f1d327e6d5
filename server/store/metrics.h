/* metrics.h - a job's metric points: append (with the job's step and speed),
 * rewind on resume, per-key summary, and history pages with downsampling.
 * Metric values: NaN is stored as NULL and read back as NaN; infinities as is.
 * Appends and rewinds are guarded by the worker's attempt (store/jobs.h) and
 * write their "metrics" / "rewind" event in the same transaction.
 * Depends on store/store.h.
 */
#ifndef DIMD_STORE_METRICS_H
#define DIMD_STORE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "store/store.h"

struct store_metric {
    const char *key; /* [a-z0-9_], at most 63 characters */
    int64_t step;
    double value;
    int64_t wall_ms;
};

/* Appends metric points in one transaction, guarded by (attempt, RUNNING or
 * PAUSED); sets the job's step and images_per_second; writes one "metrics"
 * event {"points":[{"key","step","value","wall_ms"}...]}. Rows whose (key, step)
 * already exist are refused with STORE_CONFLICT (steps per key only increase). */
int store_metrics_append(struct dimd_store *s, int64_t job_id, int attempt,
                         const struct store_metric *m, size_t n, int64_t step,
                         double images_per_second, struct dim_err *err);

/* Worker-side on resume: deletes the job's metric points with step > step and,
 * when any were deleted, writes a "rewind" event {"step": step}. Guarded by
 * (attempt, RUNNING). Sets the job's step to `step`. */
int store_metrics_rewind(struct dimd_store *s, int64_t job_id, int attempt, int64_t step,
                         struct dim_err *err);

struct store_metric_summary {
    char key[64];
    int64_t count, first_step, last_step;
    double last, min, max; /* NaN when every value is NaN */
};
/* One summary per key, keys in alphabetical order. *out malloc'd. */
int store_metrics_summary(struct dimd_store *s, int64_t job_id, struct store_metric_summary **out,
                          size_t *n, struct dim_err *err);

struct store_point {
    int64_t step;
    double value;
    int64_t wall_ms;
};
/* Points of one key with after_step < step <= to_step, in step order, at most limit of them.
 * With max_points > 0 and more than max_points points in that range: the range
 * (after_step, last step of the first `limit` points] is cut into max_points/2
 * equal step buckets and each bucket's min and max points are kept, plus the
 * first and last point, without duplicates (so at most max_points + 2 points).
 * *more says whether points beyond the returned range remain (next cursor =
 * last returned step). *out malloc'd. */
int store_metrics_history(struct dimd_store *s, int64_t job_id, const char *key, int64_t after_step,
                          int64_t to_step, int64_t limit, int64_t max_points,
                          struct store_point **out, size_t *n, bool *more, struct dim_err *err);

#endif

/* event_json.h - the text of the job events on the wire (the "data" of each
 * server-sent event, stored as is by the store in the transaction of the change
 * it announces; the dashboard and tests/e2e read them). Plain values in,
 * compact JSON text out, reals with DIMD_REAL_DIGITS (api/real.h). No I/O; the
 * store calls these inside its transactions, so it never builds event JSON
 * itself and cannot write an event that disagrees with the row it changed.
 * Every function returns a malloc'd NUL-terminated string (free it), or NULL
 * when out of memory (or, for the checkpoint event, when metrics_json is not a
 * JSON object).
 * Depends on jansson, api/job_state.h, api/real.h.
 */
#ifndef DIMD_API_EVENT_JSON_H
#define DIMD_API_EVENT_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "api/job_state.h"

/* "state": {"state":to,"previous":previous or null (previous < 0: the job is
 * new),"error":null or {"code":code,"message":message or null}}; the error
 * object is present when code is not NULL. */
char *event_json_state(enum job_state to, int previous, const char *code, const char *message);

/* One metric point of a "metrics" event. */
struct event_json_point {
    const char *key;
    int64_t step;
    double value; /* NaN and infinities as real_json writes them */
    int64_t wall_ms;
};
/* "metrics": {"points":[{"key","step","value","wall_ms"}...]} of p[0..n). */
char *event_json_metrics(const struct event_json_point *p, size_t n);

/* "checkpoint": {"step","bytes","sha256","metrics"} where metrics is the JSON
 * object text metrics_json (NULL: {}) re-encoded. */
char *event_json_checkpoint(int64_t step, int64_t bytes, const char *sha256,
                            const char *metrics_json);

/* "rewind": {"step":step}, the step metrics were cut back to. */
char *event_json_rewind(int64_t step);

#endif

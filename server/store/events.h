/* events.h - the per-job event log (what GET /v1/jobs/{id}/events streams):
 * reading events after a cursor, and waiting for the next commit that wrote
 * events. The rows are written by the changes they announce (jobs, metrics,
 * checkpoints), in the same transaction; their text is formatted by
 * api/event_json.h, the store only stores it.
 * Depends on store/store.h.
 */
#ifndef DIMD_STORE_EVENTS_H
#define DIMD_STORE_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "store/store.h"

struct store_event {
    int64_t id; /* increasing over the whole database */
    int64_t job_id;
    char type[16]; /* "state", "metrics", "checkpoint", "rewind" */
    char *data;    /* JSON object text */
    int64_t created_ms;
};
void store_event_clear(struct store_event *e);
/* The job's events with id > after_id, oldest first, at most limit. *out malloc'd. */
int store_events_after(struct dimd_store *s, int64_t job_id, int64_t after_id, int limit,
                       struct store_event **out, size_t *n, struct dim_err *err);
/* Blocks until an event has been committed after the call's `seen` sequence or
 * timeout_ms passes; returns the current sequence. Sequence 0 is "nothing seen":
 * read the current one with store_event_seq. */
uint64_t store_event_seq(struct dimd_store *s);
uint64_t store_event_wait(struct dimd_store *s, uint64_t seen, int timeout_ms);

#endif

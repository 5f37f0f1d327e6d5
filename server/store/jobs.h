/* jobs.h - job rows: insert (with idempotency keys and the queue limit), get,
 * list with filters, state changes (compare-and-set), the worker's claim and
 * finish, start-up recovery, delete and counts.
 *
 * DESIGN
 * - Every state change is a compare-and-set in one transaction, and writes the
 *   "state" event that announces it in the same transaction (the event text is
 *   formatted by api/event_json.h from the row's plain values), so the event
 *   log (SSE) and the tables never disagree. Terminal states never change.
 * - A worker's writes name the attempt they belong to; a write whose attempt is
 *   no longer the job's current one, or whose job is no longer RUNNING (or
 *   PAUSED, for the pause checkpoint), is dropped with STORE_STALE.
 * - Times are milliseconds since the Unix epoch (0 = not set).
 * Depends on store/store.h, api/job_state.h.
 */
#ifndef DIMD_STORE_JOBS_H
#define DIMD_STORE_JOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/job_state.h"
#include "base/error.h"
#include "store/store.h"

/* One job row. Strings are owned by the struct (store_job_clear frees them). */
struct store_job {
    int64_t id;
    enum job_state state;
    char *name;      /* user's label, may be NULL */
    char *spec_json; /* the resolved job spec (api/jobspec.h), a JSON object */
    int64_t created_ms, started_ms, finished_ms, updated_ms;
    int64_t step;        /* last step whose metrics are stored */
    int64_t total_steps; /* 0 until a worker has loaded the dataset */
    double images_per_second;
    int attempts;            /* times a worker has claimed the job */
    int restarts;            /* times the daemon died (or was stopped abruptly) while it ran */
    char *error_code;        /* FAILED: stable code ("non_finite_loss"), else NULL */
    char *error_message;     /* FAILED: one line naming the cause, else NULL */
    int64_t checkpoint_step; /* step of the latest checkpoint, -1 when none */
    char *latest_json;       /* {"key": last value, ...} of every metric key (null: NaN or inf) */
    int64_t last_event_id;   /* id of the job's newest event, 0 when none */
    char *hosts;             /* JSON array: the host of each rank (ranks > 1), else NULL */
};
void store_job_clear(struct store_job *j);

/* How long an idempotency key holds by default: 24 hours. */
#define STORE_IDEMPOTENCY_TTL_MS (24 * 3600 * 1000LL)

/* Inserts a QUEUED job. With idem_key (may be NULL): a key stored less than
 * the idempotency TTL ago (store_idempotency_ttl_set) with the same
 * body_sha256 gives STORE_REPLAY and the original job in *out; with another
 * body, STORE_CONFLICT. A key that old or older has expired, whether or not
 * store_idempotency_purge has removed it yet: the insert makes a new job and
 * the key now names it, for another TTL. STORE_QUEUE_FULL when queue_max jobs
 * are QUEUED. */
int store_job_insert(struct dimd_store *s, const char *spec_json, const char *name,
                     const char *idem_key, const char *body_sha256, int64_t queue_max,
                     struct store_job *out, struct dim_err *err);
int store_job_get(struct dimd_store *s, int64_t id, struct store_job *out, struct dim_err *err);

/* Sets how long an idempotency key holds after the request that stored it
 * (ttl_ms >= 1; STORE_IDEMPOTENCY_TTL_MS until set). Thread-safe. */
void store_idempotency_ttl_set(struct dimd_store *s, int64_t ttl_ms);
/* Deletes the expired idempotency keys (stored a TTL or more ago); *removed
 * (may be NULL) = how many. The daemon calls it on a timer, so the table holds
 * the keys of one TTL's submissions at most. */
int store_idempotency_purge(struct dimd_store *s, int64_t *removed, struct dim_err *err);
/* The number of idempotency keys stored, expired ones not yet purged included. */
int store_idempotency_count(struct dimd_store *s, int64_t *n, struct dim_err *err);

/* Which jobs a list returns; a zero field matches every job. */
struct store_job_filter {
    unsigned state_mask; /* JOB_MASK bits */
    const char *kind;    /* the spec's "kind": "train" (also a spec without one) or "evaluate" */
    const char *model;   /* the spec's "model": evaluation jobs of that model */
    int version;         /* with model: evaluations of that version ("vN" in the spec) */
};

/* Newest first, the jobs f matches (NULL: all). before_id 0 = from the newest;
 * else only ids < before_id (the cursor). Fills up to limit jobs into *out
 * (malloc'd array, free each with store_job_clear then free the array); *n =
 * count, *more = whether older matching jobs remain. */
int store_job_list(struct dimd_store *s, const struct store_job_filter *f, int64_t before_id,
                   int limit, struct store_job **out, size_t *n, bool *more, struct dim_err *err);

/* Compare-and-set: moves job id from any state in from_mask to `to`, setting
 * finished_ms for terminal states and the error fields when given (else NULL).
 * Writes a "state" event. STORE_CONFLICT (with *out holding the current row)
 * when the job is in another state; STORE_NOT_FOUND. */
int store_job_transition(struct dimd_store *s, int64_t id, unsigned from_mask, enum job_state to,
                         const char *error_code, const char *error_message, struct store_job *out,
                         struct dim_err *err);

/* Claims the oldest QUEUED job whose id is not in skip[0..n_skip) (jobs a worker
 * still holds): QUEUED -> RUNNING, attempts + 1, started_ms set on the first
 * attempt, an attempts row, a "state" event. STORE_NOT_FOUND when none. */
int store_job_claim(struct dimd_store *s, const int64_t *skip, size_t n_skip, struct store_job *out,
                    struct dim_err *err);

/* Worker-side, guarded by (attempt, RUNNING): sets total_steps. */
int store_job_set_total(struct dimd_store *s, int64_t id, int attempt, int64_t total_steps,
                        struct dim_err *err);

/* Worker-side end of an attempt, guarded by (attempt, RUNNING): to SUCCEEDED or
 * FAILED (with code and message), back to QUEUED after a clean shutdown
 * checkpoint (restarts unchanged), or to PAUSED with a code and message (the
 * disk is full: resuming clears them). Writes a "state" event. */
int store_job_finish(struct dimd_store *s, int64_t id, int attempt, enum job_state to,
                     const char *error_code, const char *error_message, struct dim_err *err);

/* Worker-side, guarded by (attempt, RUNNING): records hosts_json (a JSON
 * array text, the host of each rank of a data-parallel job). */
int store_job_set_hosts(struct dimd_store *s, int64_t id, int attempt, const char *hosts_json,
                        struct dim_err *err);

/* Worker-side, guarded by (attempt, RUNNING): the attempt was lost the way a
 * daemon crash loses it (a rank of a data-parallel job died): restarts + 1 and
 * back to QUEUED, or FAILED ("restart_limit", with why) when restarts would
 * exceed max_restarts. *failed (may be NULL) says which. */
int store_job_restart(struct dimd_store *s, int64_t id, int attempt, int max_restarts,
                      const char *why, bool *failed, struct dim_err *err);

/* Start-up recovery: every RUNNING job (its daemon died) gets restarts + 1 and
 * goes back to QUEUED, or to FAILED ("restart_limit", naming the count) when
 * restarts would exceed max_restarts. Counts in *requeued and *failed. */
int store_recover(struct dimd_store *s, int max_restarts, int *requeued, int *failed,
                  struct dim_err *err);

/* Deletes a terminal job with its metrics, checkpoints and events, then
 * reclaims pages. STORE_CONFLICT when not terminal. */
int store_job_delete(struct dimd_store *s, int64_t id, struct dim_err *err);

/* Jobs per state. */
int store_job_counts(struct dimd_store *s, int64_t counts[JOB_N_STATES], struct dim_err *err);

#endif

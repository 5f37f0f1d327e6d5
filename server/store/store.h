/* store.h - the daemon's durable state in one SQLite file: jobs, attempts,
 * metrics, checkpoints (bytes and metadata), events, idempotency keys, tokens.
 *
 * DESIGN
 * - WAL mode, foreign keys on, busy_timeout, incremental auto-vacuum. The schema
 *   is the numbered files in migrations/ (embedded in the binary), applied in
 *   order inside transactions by PRAGMA user_version at open. A database newer
 *   than this binary is refused (STORE_ERROR naming both versions).
 * - Thread-safe: the store keeps a small pool of connections; every function
 *   takes one for its duration. Writes are short BEGIN IMMEDIATE transactions.
 * - Every state change is a compare-and-set in one transaction, and writes the
 *   event that announces it in the same transaction, so the event log (SSE) and
 *   the tables never disagree. Terminal states never change.
 * - A worker's writes name the attempt they belong to; a write whose attempt is
 *   no longer the job's current one, or whose job is no longer RUNNING (or
 *   PAUSED, for the pause checkpoint), is dropped with STORE_STALE.
 * - Checkpoint bytes and their row commit in one transaction; retention deletes
 *   in the same transaction and pages are then reclaimed (incremental_vacuum).
 * - Metric values: NaN is stored as NULL and read back as NaN; infinities as is.
 * - Times are milliseconds since the Unix epoch (0 = not set).
 * Depends on sqlite3, server/sha256.
 */
#ifndef DIMD_STORE_STORE_H
#define DIMD_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/job_state.h"
#include "api/model_name.h"
#include "api/real.h"
#include "api/scope.h"
#include "base/error.h"

enum store_rc {
    STORE_OK = 0,
    STORE_NOT_FOUND = 1,  /* no such job / checkpoint / token */
    STORE_CONFLICT = 2,   /* CAS failed (state not in from-set), or idempotency key reused with another body */
    STORE_QUEUE_FULL = 3, /* queue_max QUEUED jobs already */
    STORE_REPLAY = 4,     /* idempotency key with the same body: *out is the original job */
    STORE_STALE = 5,      /* a worker's write for an attempt that is no longer current */
    STORE_ERROR = -1      /* SQLite or I/O failure; err says what */
};

/* One job row. Strings are owned by the struct (store_job_clear frees them). */
struct store_job {
    int64_t id;
    enum job_state state;
    char *name;       /* user's label, may be NULL */
    char *spec_json;  /* the resolved job spec (api/jobspec.h), a JSON object */
    int64_t created_ms, started_ms, finished_ms, updated_ms;
    int64_t step;        /* last step whose metrics are stored */
    int64_t total_steps; /* 0 until a worker has loaded the dataset */
    double images_per_second;
    int attempts;          /* times a worker has claimed the job */
    int restarts;          /* times the daemon died (or was stopped abruptly) while it ran */
    char *error_code;      /* FAILED: stable code ("non_finite_loss"), else NULL */
    char *error_message;   /* FAILED: one line naming the cause, else NULL */
    int64_t checkpoint_step; /* step of the latest checkpoint, -1 when none */
    char *latest_json;       /* {"key": last value, ...} of every metric key (null: NaN or inf) */
    int64_t last_event_id;   /* id of the job's newest event, 0 when none */
};
void store_job_clear(struct store_job *j);

struct dimd_store;

/* Opens (creating when missing) the database at path and migrates it. */
int store_open(struct dimd_store **out, const char *path, struct dim_err *err);
void store_close(struct dimd_store *s);
/* Schema version of the open database, and the newest this binary knows. */
int store_schema_version(struct dimd_store *s);
int store_schema_latest(void);
/* Opens path and applies migrations up to `version` only (tests build old databases). */
int store_open_at_version(struct dimd_store **out, const char *path, int version,
                          struct dim_err *err);

/* ---- jobs ---- */

/* Inserts a QUEUED job. With idem_key (may be NULL): an existing key with the
 * same body_sha256 gives STORE_REPLAY and the original job in *out; with another
 * body, STORE_CONFLICT. STORE_QUEUE_FULL when queue_max jobs are QUEUED. */
int store_job_insert(struct dimd_store *s, const char *spec_json, const char *name,
                     const char *idem_key, const char *body_sha256, int64_t queue_max,
                     struct store_job *out, struct dim_err *err);
int store_job_get(struct dimd_store *s, int64_t id, struct store_job *out, struct dim_err *err);

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
                         const char *error_code, const char *error_message,
                         struct store_job *out, struct dim_err *err);

/* Claims the oldest QUEUED job whose id is not in skip[0..n_skip) (jobs a worker
 * still holds): QUEUED -> RUNNING, attempts + 1, started_ms set on the first
 * attempt, an attempts row, a "state" event. STORE_NOT_FOUND when none. */
int store_job_claim(struct dimd_store *s, const int64_t *skip, size_t n_skip,
                    struct store_job *out, struct dim_err *err);

/* Worker-side, guarded by (attempt, RUNNING): sets total_steps. */
int store_job_set_total(struct dimd_store *s, int64_t id, int attempt, int64_t total_steps,
                        struct dim_err *err);

/* Worker-side end of an attempt, guarded by (attempt, RUNNING): to SUCCEEDED or
 * FAILED (with code and message), or back to QUEUED after a clean shutdown
 * checkpoint (restarts unchanged). Writes a "state" event. */
int store_job_finish(struct dimd_store *s, int64_t id, int attempt, enum job_state to,
                     const char *error_code, const char *error_message, struct dim_err *err);

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

/* ---- metrics ---- */

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
int store_metrics_history(struct dimd_store *s, int64_t job_id, const char *key,
                          int64_t after_step, int64_t to_step, int64_t limit, int64_t max_points,
                          struct store_point **out, size_t *n, bool *more,
                          struct dim_err *err);

/* ---- checkpoints ---- */

struct store_retention {
    int keep_last;          /* newest N by step, >= 1 */
    int keep_best;          /* plus the best M by best_metric (0 = none) */
    char best_metric[64];   /* a key in the checkpoint's metrics JSON */
    bool best_is_max;       /* true: larger is better */
};

/* Stores one checkpoint: the bytes, their sha256 (64 hex digits), the metrics at
 * that step (a JSON object of key -> number, may be "{}"), all in one
 * transaction guarded by (attempt, RUNNING or PAUSED); applies retention in the
 * same transaction, writes a "checkpoint" event {"step","bytes","sha256",
 * "metrics"}, then reclaims the freed pages. A checkpoint at the same step
 * replaces the old one. */
int store_checkpoint_put(struct dimd_store *s, int64_t job_id, int attempt, int64_t step,
                         const void *bytes, size_t n, const char *sha256_hex,
                         const char *metrics_json, const struct store_retention *keep,
                         struct dim_err *err);

struct store_checkpoint {
    int64_t step, bytes, created_ms;
    char sha256[65];
    char *metrics_json;
};
void store_checkpoint_clear(struct store_checkpoint *c);
/* A job's checkpoints, by step ascending. *out malloc'd. STORE_NOT_FOUND for no such job. */
int store_checkpoint_list(struct dimd_store *s, int64_t job_id, struct store_checkpoint **out,
                          size_t *n, struct dim_err *err);
/* The bytes of the checkpoint at step (step < 0: the latest). *data malloc'd.
 * STORE_NOT_FOUND when there is none. */
int store_checkpoint_get(struct dimd_store *s, int64_t job_id, int64_t step,
                         struct store_checkpoint *meta, void **data, struct dim_err *err);

/* ---- events ---- */

struct store_event {
    int64_t id;   /* increasing over the whole database */
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

/* ---- tokens (bearer tokens; only their sha256 is stored) ---- */

#define TOKEN_TEXT_MAX 80

struct store_token {
    int64_t id;
    char name[64];
    enum scope scope;
    int64_t created_ms;
};
/* Creates a token from /dev/urandom: text "dimd_" + 48 hex digits into
 * token_text (TOKEN_TEXT_MAX bytes), the only time the text exists; stores its
 * sha256 only. *out (may be NULL) gets the row. The name must be 1..63
 * characters and the scope read or write (else STORE_ERROR naming them).
 * The daemon creates and deletes tokens through service/auth.h, whose cache of
 * the table must learn of every change. */
int store_token_create(struct dimd_store *s, const char *name, enum scope scope,
                       char token_text[TOKEN_TEXT_MAX], struct store_token *out,
                       struct dim_err *err);
/* Every token (without hashes), by id. *out malloc'd (free it), *n rows. */
int store_token_list(struct dimd_store *s, struct store_token **out, size_t *n,
                     struct dim_err *err);
/* Deletes token id; STORE_NOT_FOUND when there is none. */
int store_token_delete(struct dimd_store *s, int64_t id, struct dim_err *err);
int store_token_count(struct dimd_store *s, int64_t *n, struct dim_err *err);

/* A token with its stored hash (64 lowercase hex digits). */
struct store_token_hash {
    struct store_token t;
    char sha256[65];
};
/* Every token with its hash, by id (what service/auth.h compares presented
 * tokens with). *out malloc'd (free it), *n rows. */
int store_token_hashes(struct dimd_store *s, struct store_token_hash **out, size_t *n,
                       struct dim_err *err);

/* ---- models: named, immutable versions promoted from checkpoints ----
 * A model version owns a copy of its checkpoint (inference-only: no Adam
 * moments), so deleting the job or its checkpoints never breaks it, and the
 * neighbours index of its training set's embeddings. Version numbers count up
 * per name and are never reused, even after a delete. */

struct store_model_version {
    char name[MODEL_NAME_MAX];
    int version;            /* 1, 2, ... ("v1" in the API) */
    int64_t job_id;         /* source job, 0 once that job is deleted */
    int64_t step;           /* source checkpoint's step */
    char source_sha256[65]; /* the source checkpoint's sha256 */
    char sha256[65];        /* this version's (inference-only) checkpoint bytes */
    int64_t bytes;
    int64_t created_ms;
    bool pinned;            /* pinned versions cannot be deleted */
    char *info_json;        /* {"preset","channels","input":[c,h,w],"y_dim","dataset",...} */
    char *metrics_json;     /* metrics of the source checkpoint (probe accuracies, losses) */
    int64_t index_images;   /* images in the neighbours index (0: none) */
    int index_dim;          /* width of each index vector */
};
void store_model_version_clear(struct store_model_version *v);

/* The neighbours index: index_images unit vectors (float32, index_dim each) and
 * their labels (uint16). */
struct store_model_index {
    const float *vectors;
    const uint16_t *labels;
    int64_t n;
    int dim;
};

/* Creates the next version of model name (creating the model), in one
 * transaction: ckpt bytes with their sha256, the index (may be NULL / n 0).
 * *out gets the new version's row. */
int store_model_create(struct dimd_store *s, const char *name, int64_t job_id, int64_t step,
                       const char *source_sha256, const void *ckpt, size_t ckpt_bytes,
                       const char *sha256_hex, const char *info_json, const char *metrics_json,
                       bool pinned, const struct store_model_index *index,
                       struct store_model_version *out, struct dim_err *err);

/* Every model name with its newest version (NULL rows are skipped: a model whose
 * versions were all deleted is listed with version 0). *out malloc'd, name order. */
int store_model_list(struct dimd_store *s, struct store_model_version **out, size_t *n,
                     struct dim_err *err);
/* The versions of one model, oldest first. STORE_NOT_FOUND when no such model. */
int store_model_versions(struct dimd_store *s, const char *name, struct store_model_version **out,
                         size_t *n, struct dim_err *err);
/* One version (version 0: the newest). ckpt (optional, malloc'd) gets its
 * checkpoint bytes; vectors/labels (optional, malloc'd) its index. */
int store_model_get(struct dimd_store *s, const char *name, int version,
                    struct store_model_version *out, void **ckpt, float **vectors,
                    uint16_t **labels, struct dim_err *err);
/* Deletes one version (0: the newest). STORE_CONFLICT when it is pinned; STORE_NOT_FOUND. */
int store_model_delete(struct dimd_store *s, const char *name, int version, struct dim_err *err);
/* A counter (>= 1) that changes after every commit that creates or deletes a
 * model version, so a reader caching what a (name, version) resolves to knows
 * when to ask again. Pins do not change it. Valid because only this process
 * writes the database. */
uint64_t store_models_generation(struct dimd_store *s);
/* Sets or clears a version's pin (0: the newest). */
int store_model_pin(struct dimd_store *s, const char *name, int version, bool pinned,
                    struct store_model_version *out, struct dim_err *err);

/* ---- model projections (migrations/0004_projections.sql) ---- */

/* The stored projection JSON text of version `version` (an exact number) into
 * *json (malloc'd); STORE_NOT_FOUND when none is stored yet. */
int store_projection_get(struct dimd_store *s, const char *name, int version, char **json,
                         struct dim_err *err);
/* Stores it, unless one is stored already (the first one stays). STORE_NOT_FOUND
 * when the version no longer exists. */
int store_projection_put(struct dimd_store *s, const char *name, int version, const char *json,
                         struct dim_err *err);

/* ---- model evaluations (migrations/0005_evaluations.sql) ---- */

struct store_evaluation {
    int64_t id;
    int64_t job_id; /* 0 once the job is deleted */
    int64_t created_ms;
    char *results_json;
    int64_t grid_bytes; /* 0: no grid image */
};
void store_evaluation_clear(struct store_evaluation *e);
/* Records an evaluation of version `version` (an exact number) by job_id (a job
 * that no longer exists is recorded as none); grid (PNG) may be NULL.
 * STORE_NOT_FOUND when the version no longer exists. */
int store_evaluation_add(struct dimd_store *s, const char *name, int version, int64_t job_id,
                         const char *results_json, const void *grid, size_t grid_bytes,
                         int64_t *id, struct dim_err *err);
/* A version's evaluations, oldest first (none: an empty list). */
int store_evaluation_list(struct dimd_store *s, const char *name, int version,
                          struct store_evaluation **out, size_t *n, struct dim_err *err);
/* The grid PNG of evaluation id of that version; STORE_NOT_FOUND when there is none. */
int store_evaluation_grid(struct dimd_store *s, const char *name, int version, int64_t id,
                          void **png, size_t *bytes, struct dim_err *err);

#endif

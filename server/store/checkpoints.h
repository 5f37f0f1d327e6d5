/* checkpoints.h - a job's checkpoints: bytes and metadata stored in one
 * transaction with retention, listed, and read back.
 * Checkpoint bytes and their row commit in one transaction, with the
 * "checkpoint" event; retention deletes in the same transaction and pages are
 * then reclaimed (incremental_vacuum).
 * Depends on store/store.h.
 */
#ifndef DIMD_STORE_CHECKPOINTS_H
#define DIMD_STORE_CHECKPOINTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "store/store.h"

struct store_retention {
    int keep_last;        /* newest N by step, >= 1 */
    int keep_best;        /* plus the best M by best_metric (0 = none) */
    char best_metric[64]; /* a key in the checkpoint's metrics JSON */
    bool best_is_max;     /* true: larger is better */
};

/* Stores one checkpoint: the bytes, their sha256 (64 hex digits to check the
 * bytes against, or NULL: the store hashes the bytes once either way), the metrics at
 * that step (a JSON object of key -> number, may be "{}"), all in one
 * transaction guarded by (attempt, RUNNING or PAUSED); applies retention in the
 * same transaction, writes a "checkpoint" event {"step","bytes","sha256",
 * "metrics"}, then reclaims the freed pages. A checkpoint at the same step
 * replaces the old one. */
int store_checkpoint_put(struct dimd_store *s, int64_t job_id, int attempt, int64_t step,
                         const void *bytes, size_t n, const char *sha256_hex,
                         const char *metrics_json, const struct store_retention *keep,
                         struct dim_err *err);

/* New disk space that storing a checkpoint of n bytes may take: the pages the
 * database's free pages cannot hold (the database file grows by them when the
 * WAL is copied back) plus the WAL frames (about n and a 24-byte header per
 * page) beyond the WAL file's present size (SQLite reuses the file after a
 * checkpoint). Read before store_checkpoint_put, so a checkpoint is refused
 * before a full disk half-stores it (service/storage.h). */
int store_checkpoint_need(struct dimd_store *s, int64_t n, int64_t *need, struct dim_err *err);

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

#endif

/* store.h - the daemon's durable state in one SQLite file: opening and closing
 * it, its schema version, and the return codes every store function shares.
 * The tables have one header each, by concern: store/jobs.h (jobs, attempts,
 * idempotency keys), store/metrics.h, store/checkpoints.h, store/events.h,
 * store/tokens.h, store/models.h, store/projections.h, store/evaluations.h;
 * and two on the whole file: store/backup.h (the online copy) and
 * store/check.h (the integrity check).
 *
 * DESIGN
 * - WAL mode, foreign keys on, busy_timeout, incremental auto-vacuum. The schema
 *   is the numbered files in migrations/ (embedded in the binary), applied in
 *   order inside transactions by PRAGMA user_version at open. A database newer
 *   than this binary is refused (STORE_ERROR naming both versions).
 * - Thread-safe: the store keeps a small pool of connections; every function
 *   takes one for its duration. Writes are short BEGIN IMMEDIATE transactions.
 * - Every state change writes the event that announces it in the same
 *   transaction (store/events.h), so the event log and the tables never
 *   disagree. The store only stores the event's text; api/event_json.h formats it.
 * - Times are milliseconds since the Unix epoch (0 = not set).
 * - A full disk: every function returns STORE_FULL when SQLite reports
 *   SQLITE_FULL or an I/O error, with the transaction rolled back. Opening
 *   writes nothing to a database that is up to date (it needs room only for
 *   the -wal and -shm files), and freeing pages needs little room.
 * Depends on sqlite3, util/ (assets, clock, sha256), api/ (job states, scopes,
 * model names, event JSON).
 */
#ifndef DIMD_STORE_STORE_H
#define DIMD_STORE_STORE_H

#include <stdint.h>

#include "base/error.h"

enum store_rc {
    STORE_OK = 0,
    STORE_NOT_FOUND = 1, /* no such job / checkpoint / token */
    STORE_CONFLICT =
        2, /* CAS failed (state not in from-set), or idempotency key reused with another body */
    STORE_QUEUE_FULL = 3, /* queue_max QUEUED jobs already */
    STORE_REPLAY = 4,     /* idempotency key with the same body: *out is the original job */
    STORE_STALE = 5,      /* a worker's write for an attempt that is no longer current */
    STORE_ERROR = -1,     /* SQLite failure; err says what */
    STORE_FULL = -2       /* a write failed for lack of space or an I/O error (SQLITE_FULL,
                             SQLITE_IOERR_*: ENOSPC, EIO); nothing of the call was committed */
};

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
/* Gives the pages that deletes freed back to the file system: incremental
 * vacuum in steps of a few MiB, each followed by a WAL checkpoint that truncates
 * the database file, so it needs little space itself (a full disk). Stops at
 * the first failure (STORE_FULL / STORE_ERROR with err). *freed (may be NULL):
 * bytes the database file shrank by. */
int store_reclaim(struct dimd_store *s, int64_t *freed, struct dim_err *err);

#endif

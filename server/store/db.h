/* db.h - the store's SQLite plumbing, shared by the store's own files only
 * (the .c files of server/store/): the store struct, the connection pool, statements,
 * transactions, row and column helpers, and the few cross-concern helpers one
 * concern's file lends another (job guards, event rows, model lookups). No
 * caller outside server/store/ includes it: they use store/store.h and the
 * header of the concern they need.
 *
 * Conventions: every helper that takes a struct dim_err * records a message
 * naming the operation (op) and the offending value when it fails, and returns
 * a store_rc; err may be NULL where noted. A sqlite3 * is a pooled connection
 * the calling thread holds (db_pool_get .. db_pool_put).
 * Depends on sqlite3, store/store.h.
 */
#ifndef DIMD_STORE_DB_H
#define DIMD_STORE_DB_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "store/jobs.h"
#include "store/store.h"

#define DB_POOL_MAX 8
#define DB_BUSY_TIMEOUT_MS 5000
#define DB_WAL_CHECKPOINT_PAGES 1000 /* WAL pages before a commit checkpoints (SQLite's default) */

struct db_conn {
    sqlite3 *db;
    bool in_use;
};

struct dimd_store {
    char *path;
    int version; /* user_version after open */
    pthread_mutex_t mu;
    pthread_cond_t freed; /* a connection went back to the pool */
    struct db_conn pool[DB_POOL_MAX];
    int n_open;
    pthread_mutex_t ev_mu;
    pthread_cond_t ev_cv; /* CLOCK_MONOTONIC */
    uint64_t ev_seq;      /* starts at 1; bumped after each commit that wrote events */
    /* Only this process writes the database (the daemon owns its state
     * directory), so a counter bumped after the commits that change model
     * versions tells readers when what they hold is stale. */
    atomic_uint_fast64_t models_gen; /* starts at 1 */
    atomic_bool backup_running;      /* store_backup_temp: one at a time */
    atomic_int_fast64_t idem_ttl_ms; /* how long an idempotency key holds (store/jobs.h) */
};

/* ---- errors and small checks (db.c) ---- */

/* Records DIM_ENOMEM "op: out of memory"; returns STORE_ERROR. */
int db_nomem(struct dim_err *err, const char *op);
/* Records DIM_EINVAL with a printf-style message; returns STORE_ERROR. */
__attribute__((format(printf, 2, 3))) int db_inval(struct dim_err *err, const char *fmt, ...);
/* Records SQLite's message for the last failure on db, naming the operation
 * (and the busy_timeout when the database stayed locked); returns STORE_FULL
 * for SQLITE_FULL and SQLITE_IOERR_* (no space, a failed read or write), else
 * STORE_ERROR. */
int db_fail(struct dim_err *err, sqlite3 *db, const char *op);
/* Grows *p (elements of size elem, capacity *cap) to hold at least need. False
 * when out of memory (*p and *cap unchanged). */
bool db_grow(void **p, size_t *cap, size_t need, size_t elem);
/* Metric and retention keys: 1..63 of [a-z0-9_]. */
bool db_key_ok(const char *k);
/* 64 lowercase hex digits (a sha256). */
bool db_hex64_ok(const char *h);

/* ---- statements (db.c) ---- */

/* Prepares sql on db into *st and binds fmt's arguments in order: 'i' int64_t,
 * 'd' double (NaN binds NULL), 't' const char * (NULL binds NULL). On failure
 * *st is NULL and err names op. The caller finalizes *st. */
int db_stmt_open(sqlite3 *db, sqlite3_stmt **st, struct dim_err *err, const char *op,
                 const char *sql, const char *fmt, ...);
/* Reads every row of st (then finalized) into a growing malloc'd array of
 * elem-sized rows in *out (*n rows), each zeroed and filled by read(st, row),
 * which returns false when out of memory. On failure the rows read so far are
 * cleared with clear(row) and freed. */
int db_collect_rows(sqlite3 *db, sqlite3_stmt *st, size_t elem,
                    bool (*read)(sqlite3_stmt *st, void *row), void (*clear)(void *row), void **out,
                    size_t *n, struct dim_err *err, const char *op);
/* The clear of db_collect_rows for rows that own no memory. */
void db_no_clear(void *row);
/* Runs a statement that returns no rows (binding as db_stmt_open). *changes
 * (may be NULL) = rows changed. */
int db_run(sqlite3 *db, struct dim_err *err, const char *op, int *changes, const char *sql,
           const char *fmt, ...);
/* Runs a query returning one integer into *out (def when it returns no row or
 * NULL). err may be NULL. */
int db_query_int(sqlite3 *db, struct dim_err *err, const char *op, int64_t *out, int64_t def,
                 const char *sql, const char *fmt, ...);
/* Runs sql text (no parameters). */
int db_exec(sqlite3 *db, struct dim_err *err, const char *op, const char *sql);
/* Column i as a double: NULL (a stored NaN) reads as NaN. */
double db_col_value(sqlite3_stmt *st, int i);
/* Copies text column i into *out (malloc'd; NULL stays NULL). False when out
 * of memory. */
bool db_col_dup(sqlite3_stmt *st, int i, char **out);

/* ---- transactions (db.c) ---- */

/* BEGIN IMMEDIATE: a write transaction, the write lock taken up front. */
int db_tx_begin(sqlite3 *db, struct dim_err *err, const char *op);
/* BEGIN: a read transaction (one snapshot for several statements). */
int db_tx_read(sqlite3 *db, struct dim_err *err, const char *op);
/* Ends the open transaction: commits when rc is STORE_OK, else rolls back.
 * Returns rc, or db_fail's code when the commit failed. err may be NULL. */
int db_tx_end(sqlite3 *db, int rc, struct dim_err *err, const char *op);
/* Reclaims free pages (auto_vacuum = INCREMENTAL) after deletes, in steps
 * (store_reclaim). Runs outside any transaction; a failure only postpones the
 * reclaim, so it is not reported. */
void db_reclaim(sqlite3 *db);

/* ---- connections (db.c) ---- */

/* Takes a connection from s's pool (opening one when all are busy and the pool
 * is not full, else waiting). NULL with err set when opening fails. */
sqlite3 *db_pool_get(struct dimd_store *s, struct dim_err *err);
/* Gives db back to the pool, rolling back any transaction left open. */
void db_pool_put(struct dimd_store *s, sqlite3 *db);

/* ---- lent by one concern to another ---- */

/* jobs.c: loads job id into *out (may be NULL: only checks it exists);
 * STORE_NOT_FOUND without a message when there is no such job. */
int jobs_load(sqlite3 *db, int64_t id, struct store_job *out, struct dim_err *err);
/* jobs.c: opens a read transaction in which job_id exists; STORE_NOT_FOUND
 * ("no job N") otherwise, with no transaction left open. */
int jobs_tx_read(sqlite3 *db, int64_t job_id, struct dim_err *err, const char *op);
/* jobs.c: a worker's guard (inside a transaction): STORE_OK when job id is in a
 * state of mask and its current attempt is `attempt`; STORE_STALE otherwise,
 * also when the job no longer exists. */
int jobs_guard(sqlite3 *db, int64_t id, int attempt, unsigned mask, struct dim_err *err);

/* jobs.c: moves job id (inside a write transaction) from a state of from_mask
 * to `to` with its bookkeeping and "state" event; STORE_CONFLICT (nothing
 * written) when the job is in another state or terminal; STORE_NOT_FOUND. */
int jobs_move(sqlite3 *db, int64_t id, unsigned from_mask, enum job_state to, const char *code,
              const char *msg, int64_t now, struct dim_err *err);
/* jobs.c: inserts a QUEUED job with its "state" event (inside a write
 * transaction); *id = its id. No idempotency key, no queue limit. */
int jobs_insert_queued(sqlite3 *db, const char *spec_json, const char *name, int64_t now,
                       int64_t *id, struct dim_err *err);

/* events.c: adds an event row of job_id (inside the write transaction of the
 * change it announces); text is the event's JSON (api/event_json.h), owned and
 * freed by this call; NULL means building it ran out of memory. */
int events_add(sqlite3 *db, int64_t job_id, const char *type, char *text, int64_t now,
               struct dim_err *err);
/* events.c: after a commit that wrote events: bumps the event sequence and
 * wakes store_event_wait. */
void events_bump(struct dimd_store *s);

/* models.c: STORE_OK when name is a valid model name, else STORE_ERROR
 * (DIM_EINVAL naming it and op). */
int models_name_check(const char *name, const char *op, struct dim_err *err);
/* models.c: records why (name, version) was not found (no such model, or no
 * such version; version 0: none left). Returns STORE_NOT_FOUND, or STORE_ERROR. */
int models_not_found(sqlite3 *db, const char *name, int version, struct dim_err *err);
/* models.c: resolves (name, version) inside a transaction: *found = the version
 * number (the newest for version 0), *pinned (may be NULL) its pin.
 * STORE_NOT_FOUND with a message. */
int models_find(sqlite3 *db, const char *name, int version, int *found, bool *pinned,
                struct dim_err *err);
/* models.c: begins a write transaction in which version `version` (an exact
 * number) of name exists; otherwise rolls back and returns STORE_NOT_FOUND (or
 * the error). */
int models_tx_begin_on_version(sqlite3 *db, const char *name, int version, struct dim_err *err,
                               const char *op);

#endif

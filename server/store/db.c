/* db.c - the store's SQLite plumbing (store/store.h, and store/db.h for the
 * store's own files): open and close, migrations, the connection pool,
 * statements, transactions and row helpers.
 *
 * DESIGN
 * - One database file. The first connection (store_open) refuses a database
 *   newer than this binary, sets auto_vacuum = INCREMENTAL (which only takes on
 *   an empty database, so before any table exists), switches to WAL and applies
 *   the embedded migrations/NNNN_*.sql files, each in its own BEGIN IMMEDIATE
 *   transaction that also sets PRAGMA user_version = NNNN. A database that is
 *   up to date gets no write at open.
 * - A full disk: db_fail returns STORE_FULL for SQLITE_FULL and SQLITE_IOERR_*.
 *   A commit is never reported failed because the automatic checkpoint after
 *   it failed (wal_hook). Reclaims vacuum in small steps with a checkpoint
 *   after each (reclaim_steps), so freeing space needs little of it. (The -wal
 *   and -shm files are not kept at close: the first opener re-creates the -shm
 *   anyway, and a WAL left behind would be read again at the next open, hiding
 *   the database file from `dimd check`. Room to open on a full disk comes
 *   from the daemon's reserve file, service/storage.h.)
 * - A pool of at most DB_POOL_MAX connections, opened lazily; a function takes
 *   one for its whole duration (mutex + condition variable when all are busy),
 *   so a connection is only ever used by one thread at a time
 *   (SQLITE_OPEN_NOMUTEX). Statements are prepared per call and finalized
 *   before the connection goes back, so no connection keeps a read snapshot
 *   open between calls.
 * - Writes are BEGIN IMMEDIATE transactions: the write lock is taken up front,
 *   so a writer waits in the busy handler (busy_timeout) instead of failing on
 *   a lock upgrade. Anything but STORE_OK rolls the transaction back, so a
 *   refused call (CONFLICT, STALE, QUEUE_FULL, REPLAY, NOT_FOUND) writes nothing.
 * - One writer process: the daemon owns its state directory. That is what lets
 *   in-process counters, bumped after the commits that change a table, stand
 *   for "the table changed" (store_models_generation; the auth service's token
 *   cache, service/auth.h).
 * - synchronous = FULL: in WAL mode NORMAL already survives a killed process,
 *   but can lose the last commits on power loss, i.e. jobs whose 201 was sent,
 *   tokens that were handed out, checkpoints a job's progress relies on. The
 *   write rate is low (one metrics batch per job per metrics_flush_ms, one
 *   checkpoint per checkpoint_every steps), so one WAL fsync per commit is cheap.
 * Depends on sqlite3 (3.35+: JSON functions, upsert), util/assets.h, util/clock.h.
 */
#include "store/db.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/backup.h"
#include "util/assets.h"
#include "util/clock.h"

#define MIG_PREFIX "migrations/"

/* ---- small helpers ---- */

int db_nomem(struct dim_err *err, const char *op)
{
    dim_fail(err, DIM_ENOMEM, "%s: out of memory", op);
    return STORE_ERROR;
}

int db_inval(struct dim_err *err, const char *fmt, ...)
{
    char msg[sizeof(err->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    dim_fail(err, DIM_EINVAL, "%s", msg);
    return STORE_ERROR;
}

/* Records SQLite's message for the last failure on db, naming the operation. */
int db_fail(struct dim_err *err, sqlite3 *db, const char *op)
{
    int code = sqlite3_errcode(db) & 0xff;
    if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
        dim_fail(err, DIM_EIO, "%s: %s (SQLITE_BUSY: still locked after the %d ms busy_timeout)",
                 op, sqlite3_errmsg(db), DB_BUSY_TIMEOUT_MS);
    else
        dim_fail(err, DIM_EIO, "%s: %s", op, sqlite3_errmsg(db));
    /* no space, or the file system failed a read or write: the caller's layer
     * above decides what a full disk means (a paused job, a 507) */
    return code == SQLITE_FULL || code == SQLITE_IOERR ? STORE_FULL : STORE_ERROR;
}

/* Grows *p (elements of size elem, capacity *cap) to hold at least need. */
bool db_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t c = *cap ? *cap * 2 : 16;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q)
        return false;
    *p = q;
    *cap = c;
    return true;
}

/* Metric and retention keys: 1..63 of [a-z0-9_]. */
bool db_key_ok(const char *k)
{
    if (!k || !*k || strlen(k) > 63)
        return false;
    for (const char *p = k; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

bool db_hex64_ok(const char *h)
{
    if (!h || strlen(h) != 64)
        return false;
    for (const char *p = h; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}
/* ---- statements ---- */

/* Prepares sql and binds fmt's arguments in order: 'i' int64_t, 'd' double (NaN
 * binds NULL), 't' const char * (NULL binds NULL). */
static int db_stmt_vopen(sqlite3 *db, sqlite3_stmt **st, struct dim_err *err, const char *op,
                         const char *sql, const char *fmt, va_list ap)
{
    *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK)
        return db_fail(err, db, op);
    int rc = SQLITE_OK;
    for (int i = 0; fmt[i] && rc == SQLITE_OK; i++) {
        if (fmt[i] == 'i') {
            rc = sqlite3_bind_int64(*st, i + 1, va_arg(ap, int64_t));
        } else if (fmt[i] == 'd') {
            double v = va_arg(ap, double);
            rc = isnan(v) ? sqlite3_bind_null(*st, i + 1) : sqlite3_bind_double(*st, i + 1, v);
        } else {
            const char *t = va_arg(ap, const char *);
            rc = t ? sqlite3_bind_text(*st, i + 1, t, -1, SQLITE_TRANSIENT)
                   : sqlite3_bind_null(*st, i + 1);
        }
    }
    if (rc != SQLITE_OK) {
        db_fail(err, db, op);
        sqlite3_finalize(*st);
        *st = NULL;
        return STORE_ERROR;
    }
    return STORE_OK;
}

int db_stmt_open(sqlite3 *db, sqlite3_stmt **st, struct dim_err *err, const char *op,
                 const char *sql, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = db_stmt_vopen(db, st, err, op, sql, fmt, ap);
    va_end(ap);
    return rc;
}

/* Reads every row of st (then finalized) into a growing array of elem-sized
 * rows, each zeroed and filled by read(st, row), which returns false when out of
 * memory. On failure the rows read so far are cleared and freed. */
int db_collect_rows(sqlite3 *db, sqlite3_stmt *st, size_t elem,
                    bool (*read)(sqlite3_stmt *st, void *row), void (*clear)(void *row), void **out,
                    size_t *n, struct dim_err *err, const char *op)
{
    char *v = NULL;
    size_t cap = 0, cnt = 0;
    int rc = STORE_OK, r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (!db_grow((void **)&v, &cap, cnt + 1, elem)) {
            rc = db_nomem(err, op);
            break;
        }
        memset(v + cnt * elem, 0, elem);
        if (!read(st, v + cnt * elem)) {
            clear(v + cnt * elem);
            rc = db_nomem(err, op);
            break;
        }
        cnt++;
    }
    if (rc == STORE_OK && r != SQLITE_DONE)
        rc = db_fail(err, db, op);
    sqlite3_finalize(st);
    if (rc != STORE_OK) {
        for (size_t i = 0; i < cnt; i++)
            clear(v + i * elem);
        free(v);
        return rc;
    }
    *out = v;
    *n = cnt;
    return STORE_OK;
}

/* Runs a statement that returns no rows. *changes (may be NULL) = rows changed. */
int db_run(sqlite3 *db, struct dim_err *err, const char *op, int *changes, const char *sql,
           const char *fmt, ...)
{
    sqlite3_stmt *st;
    va_list ap;
    va_start(ap, fmt);
    int rc = db_stmt_vopen(db, &st, err, op, sql, fmt, ap);
    va_end(ap);
    if (rc != STORE_OK)
        return rc;
    int s = sqlite3_step(st);
    if (s != SQLITE_DONE && s != SQLITE_ROW)
        rc = db_fail(err, db, op);
    else if (changes)
        *changes = sqlite3_changes(db);
    sqlite3_finalize(st);
    return rc;
}

/* Runs a query returning one integer (def when it returns no row or NULL). */
int db_query_int(sqlite3 *db, struct dim_err *err, const char *op, int64_t *out, int64_t def,
                 const char *sql, const char *fmt, ...)
{
    sqlite3_stmt *st;
    va_list ap;
    va_start(ap, fmt);
    int rc = db_stmt_vopen(db, &st, err, op, sql, fmt, ap);
    va_end(ap);
    if (rc != STORE_OK)
        return rc;
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        *out = sqlite3_column_type(st, 0) == SQLITE_NULL ? def : sqlite3_column_int64(st, 0);
    else if (s == SQLITE_DONE)
        *out = def;
    else
        rc = db_fail(err, db, op);
    sqlite3_finalize(st);
    return rc;
}

int db_exec(sqlite3 *db, struct dim_err *err, const char *op, const char *sql)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(err, db, op);
    return STORE_OK;
}

double db_col_value(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

/* Copies a text column (NULL stays NULL). False when out of memory. */
bool db_col_dup(sqlite3_stmt *st, int i, char **out)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    *out = NULL;
    if (!t)
        return true;
    *out = strdup((const char *)t);
    return *out != NULL;
}
void db_no_clear(void *row)
{
    (void)row;
}

/* ---- transactions ---- */

int db_tx_begin(sqlite3 *db, struct dim_err *err, const char *op)
{
    return db_exec(db, err, op, "BEGIN IMMEDIATE");
}

int db_tx_read(sqlite3 *db, struct dim_err *err, const char *op)
{
    return db_exec(db, err, op, "BEGIN");
}

/* Ends the open transaction: commits when rc is STORE_OK, else rolls back.
 * Returns rc, or db_fail's code when the commit failed. */
int db_tx_end(sqlite3 *db, int rc, struct dim_err *err, const char *op)
{
    if (rc == STORE_OK && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = db_fail(err, db, op);
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Pages one incremental_vacuum step frees: the step's moved pages go to the WAL
 * before the checkpoint after it shrinks the database file, so this bounds the
 * space a reclaim needs (4 MiB at the default 4096-byte page). */
#define RECLAIM_STEP_PAGES 1024

/* Incremental vacuum in steps of RECLAIM_STEP_PAGES, each committed and
 * followed by a RESTART checkpoint: the checkpoint copies no page past the
 * database's new end and truncates the file, so every step gives its pages back
 * to the file system, and it waits (busy_timeout) for readers to leave the WAL
 * so the next step writes the WAL from its start instead of growing it (with a
 * passive checkpoint and a reader in the way, moving a 61 MB checkpoint grew
 * the WAL by 61 MB). */
static int reclaim_steps(sqlite3 *db, int64_t *freed, struct dim_err *err)
{
    const char *op = "reclaim free pages";
    int64_t page = 4096, before = 0, after = 0, free_pages = 0;
    int rc = db_query_int(db, err, op, &page, 4096, "PRAGMA page_size", "");
    if (rc == STORE_OK)
        rc = db_query_int(db, err, op, &before, 0, "PRAGMA page_count", "");
    after = before;
    for (int i = 0; rc == STORE_OK && i < 1000000; i++) {
        rc = db_query_int(db, err, op, &free_pages, 0, "PRAGMA freelist_count", "");
        if (rc != STORE_OK || free_pages == 0)
            break;
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA incremental_vacuum(%d)", RECLAIM_STEP_PAGES);
        rc = db_exec(db, err, op, sql);
        if (rc == STORE_OK) {
            sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_RESTART, NULL, NULL);
            rc = db_query_int(db, err, op, &after, 0, "PRAGMA page_count", "");
        }
    }
    if (freed)
        *freed = (before - after) * page;
    return rc;
}

/* Reclaims free pages after deletes; a failure only postpones the reclaim. */
void db_reclaim(sqlite3 *db)
{
    reclaim_steps(db, NULL, NULL);
}

int store_reclaim(struct dimd_store *s, int64_t *freed, struct dim_err *err)
{
    if (freed)
        *freed = 0;
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int rc = reclaim_steps(db, freed, err);
    db_pool_put(s, db);
    return rc;
}
/* ---- connections ---- */

/* SQLite's automatic checkpoint, but without its failure: the default hook
 * hands the checkpoint's error back as the COMMIT's, so on a disk too full for
 * the checkpoint to grow the database file a transaction that is committed (in
 * the WAL) would be reported as failed. A failed checkpoint is retried at the
 * next commit. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    (void)arg;
    if (pages >= DB_WAL_CHECKPOINT_PAGES)
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return SQLITE_OK;
}

static int conn_open(const char *path, sqlite3 **out, struct dim_err *err)
{
    sqlite3 *db = NULL;
    *out = NULL;
    int rc = sqlite3_open_v2(
        path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        dim_fail(err, DIM_EIO, "open database %s: %s", path,
                 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return STORE_ERROR;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, DB_BUSY_TIMEOUT_MS);
    sqlite3_wal_hook(db, wal_hook, NULL);
    /* secure_delete FAST, not Debian's default ON: ON writes every freed page
     * as zeros, so deleting a job rewrote all its checkpoint bytes into the WAL
     * (a 61 MB checkpoint: 61 MB of zeros), which a full disk cannot hold.
     * FAST still clears b-tree pages; freed overflow pages are truncated away
     * by the reclaim that follows every delete. */
    if (db_exec(db, err, "configure connection",
                "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; "
                "PRAGMA secure_delete = FAST") != STORE_OK) {
        sqlite3_close(db);
        return STORE_ERROR;
    }
    *out = db;
    return STORE_OK;
}

/* Takes a connection from the pool (opening one when all are busy and the pool
 * is not full, else waiting). NULL with err set when opening fails. */
sqlite3 *db_pool_get(struct dimd_store *s, struct dim_err *err)
{
    sqlite3 *db = NULL;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        for (int i = 0; i < s->n_open; i++) {
            if (!s->pool[i].in_use) {
                s->pool[i].in_use = true;
                db = s->pool[i].db;
                goto out;
            }
        }
        if (s->n_open < DB_POOL_MAX) {
            if (conn_open(s->path, &db, err) == STORE_OK) {
                s->pool[s->n_open].db = db;
                s->pool[s->n_open].in_use = true;
                s->n_open++;
            }
            goto out;
        }
        pthread_cond_wait(&s->freed, &s->mu);
    }
out:
    pthread_mutex_unlock(&s->mu);
    return db;
}

void db_pool_put(struct dimd_store *s, sqlite3 *db)
{
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n_open; i++)
        if (s->pool[i].db == db)
            s->pool[i].in_use = false;
    pthread_cond_signal(&s->freed);
    pthread_mutex_unlock(&s->mu);
}
/* ---- migrations ---- */

/* The number of an embedded migration ("migrations/0002_tokens.sql" -> 2), or -1
 * for any other file. */
static int mig_number(const char *name)
{
    size_t pl = strlen(MIG_PREFIX), nl = strlen(name);
    if (strncmp(name, MIG_PREFIX, pl) != 0 || nl < pl + 5 || strcmp(name + nl - 4, ".sql") != 0)
        return -1;
    const char *p = name + pl;
    if (*p < '0' || *p > '9')
        return -1;
    char *end;
    long v = strtol(p, &end, 10);
    if ((*end != '_' && *end != '.') || v <= 0 || v > 1000000)
        return -1;
    return (int)v;
}

int store_schema_latest(void)
{
    int latest = 0;
    for (size_t i = 0; i < assets_n_files; i++) {
        int v = mig_number(assets_files[i].name);
        if (v > latest)
            latest = v;
    }
    return latest;
}

static int user_version(sqlite3 *db, int *v, struct dim_err *err)
{
    int64_t x = 0;
    int rc = db_query_int(db, err, "read schema version", &x, 0, "PRAGMA user_version", "");
    *v = (int)x;
    return rc;
}

/* Applies the embedded migrations numbered (current, target], in name order. */
static int migrate(sqlite3 *db, int target, struct dim_err *err)
{
    int expect = 1;
    for (size_t i = 0; i < assets_n_files; i++) {
        const struct asset_file *f = &assets_files[i];
        int v = mig_number(f->name);
        if (v < 0)
            continue;
        if (v != expect) {
            dim_fail(err, DIM_EFORMAT, "embedded migration %s: expected number %d", f->name,
                     expect);
            return STORE_ERROR;
        }
        expect++;
        if (v > target)
            break;
        int have = 0;
        if (user_version(db, &have, err) != STORE_OK)
            return STORE_ERROR;
        if (have >= v) /* applied: no write transaction (a full disk opens too) */
            continue;
        if (db_tx_begin(db, err, "begin migration") != STORE_OK)
            return STORE_ERROR;
        int cur = 0, rc = user_version(db, &cur, err);
        if (rc == STORE_OK && cur < v) {
            char pragma[64];
            snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", v);
            if (sqlite3_exec(db, (const char *)f->data, NULL, NULL, NULL) != SQLITE_OK) {
                dim_fail(err, DIM_EIO, "apply %s: %s", f->name, sqlite3_errmsg(db));
                rc = STORE_ERROR;
            } else {
                rc = db_exec(db, err, "set schema version", pragma);
            }
        }
        if (db_tx_end(db, rc, err, "commit migration") != STORE_OK)
            return STORE_ERROR;
    }
    return STORE_OK;
}

/* ---- open / close ---- */

static int open_impl(struct dimd_store **out, const char *path, int target, struct dim_err *err)
{
    *out = NULL;
    int latest = store_schema_latest();
    if (target < 0 || target > latest) {
        dim_fail(err, DIM_EINVAL, "open %s: schema version %d is not in 0..%d", path, target,
                 latest);
        return STORE_ERROR;
    }
    if (!sqlite3_threadsafe()) {
        dim_fail(err, DIM_EUNSUPPORTED, "open %s: SQLite was built without thread support", path);
        return STORE_ERROR;
    }
    struct dimd_store *s = calloc(1, sizeof(*s));
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return db_nomem(err, "open store");
    }
    clock_cond_init(&s->ev_cv);
    pthread_mutex_init(&s->ev_mu, NULL);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->freed, NULL);
    s->ev_seq = 1;
    atomic_init(&s->models_gen, 1);
    atomic_init(&s->backup_running, false);
    atomic_init(&s->idem_ttl_ms, STORE_IDEMPOTENCY_TTL_MS);
    /* copies a backup was making when its process died (store/backup.h) */
    store_backup_sweep(path);

    sqlite3 *db;
    if (conn_open(path, &db, err) != STORE_OK) {
        store_close(s);
        return STORE_ERROR;
    }
    s->pool[0].db = db;
    s->n_open = 1;
    int v = 0;
    if (user_version(db, &v, err) != STORE_OK)
        goto fail;
    if (v > latest) {
        dim_fail(err, DIM_EUNSUPPORTED,
                 "database %s: schema version %d is newer than this dimd supports (%d); "
                 "upgrade dimd",
                 path, v, latest);
        goto fail;
    }
    /* auto_vacuum only takes on an empty database: before WAL and any table.
     * Setting it writes page 1, so it is left alone once it is set (a full disk
     * must not stop the daemon from opening its database). */
    int64_t av = 0;
    if (db_query_int(db, err, "read auto_vacuum", &av, 0, "PRAGMA auto_vacuum", "") != STORE_OK)
        goto fail;
    if (av != 2 &&
        db_exec(db, err, "set auto_vacuum", "PRAGMA auto_vacuum = INCREMENTAL") != STORE_OK)
        goto fail;
    sqlite3_stmt *st;
    if (db_stmt_open(db, &st, err, "set journal_mode", "PRAGMA journal_mode = WAL", "") != STORE_OK)
        goto fail;
    const unsigned char *mode = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
    bool wal = mode && strcmp((const char *)mode, "wal") == 0;
    if (!wal)
        dim_fail(err, DIM_EIO, "database %s: cannot use WAL journal mode (got %s): %s", path,
                 mode ? (const char *)mode : "an error", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    if (!wal)
        goto fail;
    if (migrate(db, target, err) != STORE_OK || user_version(db, &s->version, err) != STORE_OK)
        goto fail;
    *out = s;
    return STORE_OK;
fail:
    store_close(s);
    return STORE_ERROR;
}

int store_open(struct dimd_store **out, const char *path, struct dim_err *err)
{
    return open_impl(out, path, store_schema_latest(), err);
}

int store_open_at_version(struct dimd_store **out, const char *path, int version,
                          struct dim_err *err)
{
    return open_impl(out, path, version, err);
}

void store_close(struct dimd_store *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n_open; i++)
        sqlite3_close(s->pool[i].db);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->freed);
    pthread_mutex_destroy(&s->ev_mu);
    pthread_cond_destroy(&s->ev_cv);
    free(s->path);
    free(s);
}

int store_schema_version(struct dimd_store *s)
{
    return s->version;
}

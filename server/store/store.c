/* store.c - the daemon's durable state in SQLite (store/store.h).
 *
 * DESIGN
 * - One database file. The first connection (store_open) refuses a database
 *   newer than this binary, sets auto_vacuum = INCREMENTAL (which only takes on
 *   an empty database, so before any table exists), switches to WAL and applies
 *   the embedded migrations/NNNN_*.sql files, each in its own BEGIN IMMEDIATE
 *   transaction that also sets PRAGMA user_version = NNNN.
 * - A pool of at most POOL_MAX connections, opened lazily; a function takes one
 *   for its whole duration (mutex + condition variable when all are busy), so
 *   a connection is only ever used by one thread at a time (SQLITE_OPEN_NOMUTEX).
 *   Statements are prepared per call and finalized before the connection goes
 *   back, so no connection keeps a read snapshot open between calls.
 * - Writes are BEGIN IMMEDIATE transactions: the write lock is taken up front,
 *   so a writer waits in the busy handler (busy_timeout) instead of failing on
 *   a lock upgrade. Anything but STORE_OK rolls the transaction back, so a
 *   refused call (CONFLICT, STALE, QUEUE_FULL, REPLAY, NOT_FOUND) writes nothing.
 * - Events are rows written in the transaction of the change they announce.
 *   Their text is formatted by api/event_json.h from the plain values the
 *   change writes (for "state" events, the previous state read inside the
 *   transaction), so the store builds no event JSON and stores only text.
 *   After such a commit the in-process event sequence is bumped under ev_mu and
 *   ev_cv broadcast; store_event_wait sleeps on ev_cv (CLOCK_MONOTONIC).
 * - One writer process: the daemon owns its state directory. That is what lets
 *   in-process counters, bumped after the commits that change a table, stand
 *   for "the table changed": store_models_generation tells the encoder when a
 *   cached (name, version) resolution must be asked again, and the auth service
 *   (service/auth.h) keeps the tokens table in memory between the token changes
 *   it makes. Both hot paths of an encode request (authorisation, model lookup)
 *   then run without SQL.
 * - synchronous = FULL: in WAL mode NORMAL already survives a killed process,
 *   but can lose the last commits on power loss, i.e. jobs whose 201 was sent,
 *   tokens that were handed out, checkpoints a job's progress relies on. The
 *   write rate is low (one metrics batch per job per metrics_flush_ms, one
 *   checkpoint per checkpoint_every steps), so one WAL fsync per commit is cheap.
 * Depends on sqlite3 (3.35+: JSON functions, upsert), jansson, util/assets.h,
 * util/sha256.h.
 */
#include "store/store.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <jansson.h>
#include <sqlite3.h>

#include "api/event_json.h"
#include "util/assets.h"
#include "util/clock.h"
#include "util/sha256.h"

#define POOL_MAX 8
#define BUSY_TIMEOUT_MS 5000
#define MIG_PREFIX "migrations/"

struct conn {
    sqlite3 *db;
    bool in_use;
};

struct dimd_store {
    char *path;
    int version; /* user_version after open */
    pthread_mutex_t mu;
    pthread_cond_t freed; /* a connection went back to the pool */
    struct conn pool[POOL_MAX];
    int n_open;
    pthread_mutex_t ev_mu;
    pthread_cond_t ev_cv; /* CLOCK_MONOTONIC */
    uint64_t ev_seq;      /* starts at 1; bumped after each commit that wrote events */
    /* Only this process writes the database (the daemon owns its state
     * directory), so a counter bumped after the commits that change model
     * versions tells readers when what they hold is stale. */
    atomic_uint_fast64_t models_gen; /* starts at 1 */
};

/* ---- small helpers ---- */

static int nomem(struct dim_err *err, const char *op)
{
    dim_fail(err, DIM_ENOMEM, "%s: out of memory", op);
    return STORE_ERROR;
}

/* Records DIM_EINVAL with a printf-style message; returns STORE_ERROR. */
__attribute__((format(printf, 2, 3))) static int inval(struct dim_err *err, const char *fmt, ...)
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
static int db_fail(struct dim_err *err, sqlite3 *db, const char *op)
{
    int code = sqlite3_errcode(db) & 0xff;
    if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
        dim_fail(err, DIM_EIO, "%s: %s (SQLITE_BUSY: still locked after the %d ms busy_timeout)",
                 op, sqlite3_errmsg(db), BUSY_TIMEOUT_MS);
    else
        dim_fail(err, DIM_EIO, "%s: %s", op, sqlite3_errmsg(db));
    return STORE_ERROR;
}

/* Grows *p (elements of size elem, capacity *cap) to hold at least need. */
static bool grow(void **p, size_t *cap, size_t need, size_t elem)
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
static bool key_ok(const char *k)
{
    if (!k || !*k || strlen(k) > 63)
        return false;
    for (const char *p = k; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

static bool hex64_ok(const char *h)
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
static int stmt_vopen(sqlite3 *db, sqlite3_stmt **st, struct dim_err *err, const char *op,
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

static int stmt_open(sqlite3 *db, sqlite3_stmt **st, struct dim_err *err, const char *op,
                     const char *sql, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = stmt_vopen(db, st, err, op, sql, fmt, ap);
    va_end(ap);
    return rc;
}

/* Reads every row of st (then finalized) into a growing array of elem-sized
 * rows, each zeroed and filled by read(st, row), which returns false when out of
 * memory. On failure the rows read so far are cleared and freed. */
static int collect_rows(sqlite3 *db, sqlite3_stmt *st, size_t elem,
                        bool (*read)(sqlite3_stmt *st, void *row), void (*clear)(void *row),
                        void **out, size_t *n, struct dim_err *err, const char *op)
{
    char *v = NULL;
    size_t cap = 0, cnt = 0;
    int rc = STORE_OK, r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (!grow((void **)&v, &cap, cnt + 1, elem)) {
            rc = nomem(err, op);
            break;
        }
        memset(v + cnt * elem, 0, elem);
        if (!read(st, v + cnt * elem)) {
            clear(v + cnt * elem);
            rc = nomem(err, op);
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
static int run(sqlite3 *db, struct dim_err *err, const char *op, int *changes, const char *sql,
               const char *fmt, ...)
{
    sqlite3_stmt *st;
    va_list ap;
    va_start(ap, fmt);
    int rc = stmt_vopen(db, &st, err, op, sql, fmt, ap);
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
static int query_int(sqlite3 *db, struct dim_err *err, const char *op, int64_t *out, int64_t def,
                     const char *sql, const char *fmt, ...)
{
    sqlite3_stmt *st;
    va_list ap;
    va_start(ap, fmt);
    int rc = stmt_vopen(db, &st, err, op, sql, fmt, ap);
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

static int exec(sqlite3 *db, struct dim_err *err, const char *op, const char *sql)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(err, db, op);
    return STORE_OK;
}

static double col_value(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

/* Copies a text column (NULL stays NULL). False when out of memory. */
static bool col_dup(sqlite3_stmt *st, int i, char **out)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    *out = NULL;
    if (!t)
        return true;
    *out = strdup((const char *)t);
    return *out != NULL;
}

/* ---- transactions ---- */

static int tx_begin(sqlite3 *db, struct dim_err *err, const char *op)
{
    return exec(db, err, op, "BEGIN IMMEDIATE");
}

static int tx_read(sqlite3 *db, struct dim_err *err, const char *op)
{
    return exec(db, err, op, "BEGIN");
}

/* Opens a read transaction in which job_id exists; STORE_NOT_FOUND ("no job N")
 * otherwise, with no transaction left open. */
static int job_load(sqlite3 *db, int64_t id, struct store_job *out, struct dim_err *err);
static int tx_read_job(sqlite3 *db, int64_t job_id, struct dim_err *err, const char *op)
{
    int rc = tx_read(db, err, op);
    if (rc != STORE_OK)
        return rc;
    rc = job_load(db, job_id, NULL, err);
    if (rc == STORE_NOT_FOUND)
        dim_fail(err, DIM_ENOENT, "no job %lld", (long long)job_id);
    if (rc != STORE_OK)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Ends the open transaction: commits when rc is STORE_OK, else rolls back.
 * Returns rc, or STORE_ERROR when the commit failed. */
static int tx_end(sqlite3 *db, int rc, struct dim_err *err, const char *op)
{
    if (rc == STORE_OK && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = db_fail(err, db, op);
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Reclaims free pages (auto_vacuum = INCREMENTAL) after deletes. Runs outside
 * any transaction; a failure only postpones the reclaim, so it is not reported. */
static void reclaim(sqlite3 *db)
{
    int64_t free_pages = 0;
    if (query_int(db, NULL, "freelist_count", &free_pages, 0, "PRAGMA freelist_count", "") ==
            STORE_OK &&
        free_pages > 0)
        sqlite3_exec(db, "PRAGMA incremental_vacuum", NULL, NULL, NULL);
}

/* ---- connections ---- */

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
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    if (exec(db, err, "configure connection",
             "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL") != STORE_OK) {
        sqlite3_close(db);
        return STORE_ERROR;
    }
    *out = db;
    return STORE_OK;
}

/* Takes a connection from the pool (opening one when all are busy and the pool
 * is not full, else waiting). NULL with err set when opening fails. */
static sqlite3 *pool_get(struct dimd_store *s, struct dim_err *err)
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
        if (s->n_open < POOL_MAX) {
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

static void pool_put(struct dimd_store *s, sqlite3 *db)
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

static void ev_bump(struct dimd_store *s)
{
    pthread_mutex_lock(&s->ev_mu);
    s->ev_seq++;
    pthread_cond_broadcast(&s->ev_cv);
    pthread_mutex_unlock(&s->ev_mu);
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
    int rc = query_int(db, err, "read schema version", &x, 0, "PRAGMA user_version", "");
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
        if (tx_begin(db, err, "begin migration") != STORE_OK)
            return STORE_ERROR;
        int cur = 0, rc = user_version(db, &cur, err);
        if (rc == STORE_OK && cur < v) {
            char pragma[64];
            snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", v);
            if (sqlite3_exec(db, (const char *)f->data, NULL, NULL, NULL) != SQLITE_OK) {
                dim_fail(err, DIM_EIO, "apply %s: %s", f->name, sqlite3_errmsg(db));
                rc = STORE_ERROR;
            } else {
                rc = exec(db, err, "set schema version", pragma);
            }
        }
        if (tx_end(db, rc, err, "commit migration") != STORE_OK)
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
        return nomem(err, "open store");
    }
    clock_cond_init(&s->ev_cv);
    pthread_mutex_init(&s->ev_mu, NULL);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->freed, NULL);
    s->ev_seq = 1;
    atomic_init(&s->models_gen, 1);

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
    /* auto_vacuum only takes on an empty database: before WAL and any table. */
    if (exec(db, err, "set auto_vacuum", "PRAGMA auto_vacuum = INCREMENTAL") != STORE_OK)
        goto fail;
    sqlite3_stmt *st;
    if (stmt_open(db, &st, err, "set journal_mode", "PRAGMA journal_mode = WAL", "") != STORE_OK)
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

/* ---- jobs ---- */

void store_job_clear(struct store_job *j)
{
    if (!j)
        return;
    free(j->name);
    free(j->spec_json);
    free(j->error_code);
    free(j->error_message);
    free(j->latest_json);
    memset(j, 0, sizeof(*j));
}

/* The last value of every metric key of the job as a JSON object text: the
 * keys are walked with index seeks (a recursive MIN(key) > previous), so the
 * cost grows with the number of keys, not of points. NaN (stored NULL) and
 * infinities become null. */
#define JOB_LATEST_COL                                                                             \
    "(SELECT json_group_object(k.key, "                                                           \
    "   (SELECT CASE WHEN abs(l.value) <= 1.7976931348623157e308 THEN l.value END "               \
    "    FROM metrics l WHERE l.job_id = jobs.id AND l.key = k.key ORDER BY l.step DESC LIMIT 1)) " \
    " FROM (WITH RECURSIVE k(key) AS ("                                                           \
    "   SELECT (SELECT MIN(key) FROM metrics WHERE job_id = jobs.id) UNION ALL "                  \
    "   SELECT (SELECT MIN(m2.key) FROM metrics m2 WHERE m2.job_id = jobs.id AND m2.key > k.key) " \
    "   FROM k WHERE k.key IS NOT NULL) SELECT key FROM k WHERE key IS NOT NULL) k)"

#define JOB_COLS                                                                                   \
    "id, state, name, spec_json, created_ms, started_ms, finished_ms, updated_ms, step, "          \
    "total_steps, images_per_second, attempts, restarts, error_code, error_message, "              \
    "COALESCE((SELECT MAX(c.step) FROM checkpoints c WHERE c.job_id = jobs.id), -1), "         \
    JOB_LATEST_COL ", "                                                                            \
    "COALESCE((SELECT MAX(e.id) FROM events e WHERE e.job_id = jobs.id), 0)"

/* Reads a JOB_COLS row into *j (overwritten). */
static int job_read(sqlite3_stmt *st, struct store_job *j, struct dim_err *err)
{
    struct store_job t = {0};
    t.id = sqlite3_column_int64(st, 0);
    int state = job_state_parse((const char *)sqlite3_column_text(st, 1));
    t.state = state < 0 ? JOB_FAILED : (enum job_state)state;
    t.created_ms = sqlite3_column_int64(st, 4);
    t.started_ms = sqlite3_column_int64(st, 5);
    t.finished_ms = sqlite3_column_int64(st, 6);
    t.updated_ms = sqlite3_column_int64(st, 7);
    t.step = sqlite3_column_int64(st, 8);
    t.total_steps = sqlite3_column_int64(st, 9);
    t.images_per_second = sqlite3_column_double(st, 10);
    t.attempts = sqlite3_column_int(st, 11);
    t.restarts = sqlite3_column_int(st, 12);
    t.checkpoint_step = sqlite3_column_int64(st, 15);
    t.last_event_id = sqlite3_column_int64(st, 17);
    if (!col_dup(st, 2, &t.name) || !col_dup(st, 3, &t.spec_json) ||
        !col_dup(st, 13, &t.error_code) || !col_dup(st, 14, &t.error_message) ||
        !col_dup(st, 16, &t.latest_json)) {
        store_job_clear(&t);
        return nomem(err, "read job");
    }
    *j = t;
    return STORE_OK;
}

/* Loads job id into *out (may be NULL: only checks it exists). */
static int job_load(sqlite3 *db, int64_t id, struct store_job *out, struct dim_err *err)
{
    sqlite3_stmt *st;
    int rc =
        stmt_open(db, &st, err, "read job", "SELECT " JOB_COLS " FROM jobs WHERE id = ?", "i", id);
    if (rc != STORE_OK)
        return rc;
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        rc = out ? job_read(st, out, err) : STORE_OK;
    else if (s == SQLITE_DONE)
        rc = STORE_NOT_FOUND;
    else
        rc = db_fail(err, db, "read job");
    sqlite3_finalize(st);
    return rc;
}

/* The state of job id in *state. */
static int job_state_of(sqlite3 *db, int64_t id, enum job_state *state, int *attempts,
                        struct dim_err *err)
{
    sqlite3_stmt *st;
    int rc = stmt_open(db, &st, err, "read job state",
                       "SELECT state, attempts FROM jobs WHERE id = ?", "i", id);
    if (rc != STORE_OK)
        return rc;
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        int v = job_state_parse((const char *)sqlite3_column_text(st, 0));
        *state = v < 0 ? JOB_FAILED : (enum job_state)v;
        if (attempts)
            *attempts = sqlite3_column_int(st, 1);
    } else if (s == SQLITE_DONE) {
        rc = STORE_NOT_FOUND;
    } else {
        rc = db_fail(err, db, "read job state");
    }
    sqlite3_finalize(st);
    return rc;
}

/* A worker's guard: STORE_OK when job id is in a state of mask and its current
 * attempt is `attempt`; STORE_STALE otherwise, also when the job no longer
 * exists (it was deleted, so no attempt of it is current). */
static int guard(sqlite3 *db, int64_t id, int attempt, unsigned mask, struct dim_err *err)
{
    enum job_state state;
    int cur = 0;
    int rc = job_state_of(db, id, &state, &cur, err);
    if (rc == STORE_NOT_FOUND ||
        (rc == STORE_OK && (cur != attempt || !(mask & JOB_MASK(state))))) {
        dim_fail(err, DIM_ECANCELLED, "job %lld attempt %d is no longer current", (long long)id,
                 attempt);
        return STORE_STALE;
    }
    return rc;
}

/* Adds an event row; text is the event's JSON (api/event_json.h), owned and
 * freed by this call (NULL: building it ran out of memory). */
static int ev_add(sqlite3 *db, int64_t job_id, const char *type, char *text, int64_t now,
                  struct dim_err *err)
{
    if (!text)
        return nomem(err, "build event");
    int rc = run(db, err, "insert event", NULL,
                 "INSERT INTO events (job_id, type, data, created_ms) VALUES (?, ?, ?, ?)", "itti",
                 job_id, type, text, now);
    free(text);
    return rc;
}

/* Moves job id from `from` to `to` with its bookkeeping and event (inside a
 * write transaction). */
static int set_state(sqlite3 *db, int64_t id, enum job_state from, enum job_state to,
                     const char *code, const char *msg, int restarts_add, int64_t now,
                     struct dim_err *err)
{
    int rc = run(db, err, "update job state", NULL,
                 "UPDATE jobs SET state = ?, updated_ms = ?, "
                 "finished_ms = CASE WHEN ? THEN ? ELSE finished_ms END, "
                 "error_code = ?, error_message = ?, restarts = restarts + ? WHERE id = ?",
                 "tiiittii", job_state_name(to), now, (int64_t)job_state_terminal(to), now, code,
                 msg, (int64_t)restarts_add, id);
    if (rc != STORE_OK)
        return rc;
    if (from == JOB_RUNNING) {
        /* The attempt that ran ends here (outcome: where it left the job). */
        rc = run(db, err, "end attempt", NULL,
                 "UPDATE attempts SET finished_ms = ?, outcome = ? WHERE job_id = ? AND "
                 "attempt = (SELECT attempts FROM jobs WHERE id = ?) AND outcome IS NULL",
                 "itii", now, restarts_add ? "restart" : job_state_name(to), id, id);
        if (rc != STORE_OK)
            return rc;
    }
    return ev_add(db, id, "state", event_json_state(to, (int)from, code, msg), now, err);
}

int store_job_insert(struct dimd_store *s, const char *spec_json, const char *name,
                     const char *idem_key, const char *body_sha256, int64_t queue_max,
                     struct store_job *out, struct dim_err *err)
{
    const char *op = "insert job";
    if (!spec_json)
        return inval(err, "%s: %s is NULL", op, "spec_json");
    if (idem_key && !body_sha256)
        return inval(err, "%s: %s is NULL", op, "body_sha256 (with an idempotency key)");
    sqlite3 *db = pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int64_t now = clock_wall_ms(), id = 0;
    int rc = tx_begin(db, err, op);
    if (rc != STORE_OK)
        goto out;
    if (idem_key) {
        sqlite3_stmt *st;
        rc = stmt_open(db, &st, err, "read idempotency key",
                       "SELECT body_sha256, job_id FROM idempotency WHERE key = ?", "t", idem_key);
        if (rc != STORE_OK)
            goto end;
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            bool same = strcmp((const char *)sqlite3_column_text(st, 0), body_sha256) == 0;
            id = sqlite3_column_int64(st, 1);
            if (same) {
                rc = STORE_REPLAY;
            } else {
                dim_fail(err, DIM_EINVAL,
                         "idempotency key \"%s\" was used for job %lld with another body", idem_key,
                         (long long)id);
                rc = STORE_CONFLICT;
            }
        } else if (r != SQLITE_DONE) {
            rc = db_fail(err, db, "read idempotency key");
        }
        sqlite3_finalize(st);
        if (rc == STORE_REPLAY && out) {
            int lr = job_load(db, id, out, err);
            if (lr != STORE_OK)
                rc = lr == STORE_NOT_FOUND ? STORE_ERROR : lr;
        }
        if (rc != STORE_OK)
            goto end;
    }
    int64_t queued = 0;
    rc = query_int(db, err, "count queued jobs", &queued, 0,
                   "SELECT COUNT(*) FROM jobs WHERE state = 'QUEUED'", "");
    if (rc != STORE_OK)
        goto end;
    if (queue_max > 0 && queued >= queue_max) {
        dim_fail(err, DIM_ELIMIT, "queue is full: %lld jobs queued (queue_max %lld)",
                 (long long)queued, (long long)queue_max);
        rc = STORE_QUEUE_FULL;
        goto end;
    }
    rc = run(db, err, op, NULL,
             "INSERT INTO jobs (state, name, spec_json, created_ms, updated_ms) "
             "VALUES ('QUEUED', ?, ?, ?, ?)",
             "ttii", name, spec_json, now, now);
    if (rc != STORE_OK)
        goto end;
    id = sqlite3_last_insert_rowid(db);
    if (idem_key) {
        rc = run(db, err, "insert idempotency key", NULL,
                 "INSERT INTO idempotency (key, body_sha256, job_id, created_ms) "
                 "VALUES (?, ?, ?, ?)",
                 "ttii", idem_key, body_sha256, id, now);
        if (rc != STORE_OK)
            goto end;
    }
    rc = ev_add(db, id, "state", event_json_state(JOB_QUEUED, -1, NULL, NULL), now, err);
    if (rc == STORE_OK && out)
        rc = job_load(db, id, out, err);
end:
    rc = tx_end(db, rc, err, op);
    if (rc == STORE_OK)
        ev_bump(s);
out:
    pool_put(s, db);
    return rc;
}

int store_job_get(struct dimd_store *s, int64_t id, struct store_job *out, struct dim_err *err)
{
    sqlite3 *db = pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int rc = job_load(db, id, out, err);
    if (rc == STORE_NOT_FOUND)
        dim_fail(err, DIM_ENOENT, "no job %lld", (long long)id);
    pool_put(s, db);
    return rc;
}

int store_job_list(struct dimd_store *s, const struct store_job_filter *f, int64_t before_id,
                   int limit, struct store_job **out, size_t *n, bool *more, struct dim_err *err)
{
    static const struct store_job_filter all = {0};
    if (!f)
        f = &all;
    const unsigned state_mask = f->state_mask;
    char version[16] = "";
    if (f->version > 0)
        snprintf(version, sizeof version, "v%d", f->version);
    *out = NULL;
    *n = 0;
    *more = false;
    if (limit < 1) {
        dim_fail(err, DIM_EINVAL, "list jobs: limit %d must be >= 1", limit);
        return STORE_ERROR;
    }
    char sql[2048];
    size_t len = (size_t)snprintf(sql, sizeof(sql),
                                  "SELECT " JOB_COLS " FROM jobs WHERE (?1 = 0 OR id < ?1) "
                                  "AND (?2 IS NULL OR "
                                  "COALESCE(json_extract(spec_json, '$.kind'), 'train') = ?2) "
                                  "AND (?3 IS NULL OR json_extract(spec_json, '$.model') = ?3) "
                                  "AND (?4 IS NULL OR json_extract(spec_json, '$.version') = ?4)");
    unsigned mask = state_mask & ((1u << JOB_N_STATES) - 1);
    if (state_mask != 0) {
        /* Only the fixed state names go into the text; mask bits beyond the
         * states match nothing. */
        len += (size_t)snprintf(sql + len, sizeof(sql) - len, " AND state IN (''");
        for (int i = 0; i < JOB_N_STATES; i++)
            if (mask & JOB_MASK(i))
                len += (size_t)snprintf(sql + len, sizeof(sql) - len, ", '%s'", job_state_name((enum job_state)i));
        len += (size_t)snprintf(sql + len, sizeof(sql) - len, ")");
    }
    snprintf(sql + len, sizeof(sql) - len, " ORDER BY id DESC LIMIT ?5");

    sqlite3 *db = pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    struct store_job *jobs = NULL;
    size_t cap = 0, cnt = 0;
    sqlite3_stmt *st;
    int rc = stmt_open(db, &st, err, "list jobs", sql, "ittti", before_id, f->kind, f->model,
                       version[0] ? version : NULL, (int64_t)limit + 1);
    if (rc == STORE_OK) {
        int r;
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
            if (cnt == (size_t)limit) {
                *more = true;
                break;
            }
            if (!grow((void **)&jobs, &cap, cnt + 1, sizeof(*jobs))) {
                rc = nomem(err, "list jobs");
                break;
            }
            if ((rc = job_read(st, &jobs[cnt], err)) != STORE_OK)
                break;
            cnt++;
        }
        if (rc == STORE_OK && r != SQLITE_ROW && r != SQLITE_DONE)
            rc = db_fail(err, db, "list jobs");
        sqlite3_finalize(st);
    }
    pool_put(s, db);
    if (rc != STORE_OK) {
        for (size_t i = 0; i < cnt; i++)
            store_job_clear(&jobs[i]);
        free(jobs);
        *more = false;
        return rc;
    }
    *out = jobs;
    *n = cnt;
    return STORE_OK;
}

int store_job_transition(struct dimd_store *s, int64_t id, unsigned from_mask, enum job_state to,
                         const char *error_code, const char *error_message, struct store_job *out,
                         struct dim_err *err)
{
    const char *op = "change job state";
    if ((unsigned)to >= JOB_N_STATES) {
        dim_fail(err, DIM_EINVAL, "%s: state %d out of range", op, (int)to);
        return STORE_ERROR;
    }
    sqlite3 *db = pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int64_t now = clock_wall_ms();
    enum job_state cur;
    int rc = tx_begin(db, err, op);
    if (rc != STORE_OK)
        goto out;
    rc = job_state_of(db, id, &cur, NULL, err);
    if (rc == STORE_NOT_FOUND)
        dim_fail(err, DIM_ENOENT, "no job %lld", (long long)id);
    if (rc != STORE_OK)
        goto end;
    if (job_state_terminal(cur) || !(from_mask & JOB_MASK(cur))) {
        dim_fail(err, DIM_EINVAL, "job %lld is %s; cannot move it to %s", (long long)id,
                 job_state_name(cur), job_state_name(to));
        if (out && job_load(db, id, out, NULL) != STORE_OK)
            memset(out, 0, sizeof(*out));
        rc = STORE_CONFLICT;
        goto end;
    }
    rc = set_state(db, id, cur, to, error_code, error_message, 0, now, err);
    if (rc == STORE_OK && out)
        rc = job_load(db, id, out, err);
end:
    rc = tx_end(db, rc, err, op);
    if (rc == STORE_OK)
        ev_bump(s);
out:
    pool_put(s, db);
    return rc;
}

int store_job_claim(struct dimd_store *s, const int64_t *skip, size_t n_skip, struct store_job *out,
                    struct dim_err *err)
{
    const char *op = "claim job";
    sqlite3 *db = pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int64_t now = clock_wall_ms(), id = 0;
    int rc = tx_begin(db, err, op);
    if (rc != STORE_OK)
        goto out;
    sqlite3_stmt *st;
    rc = stmt_open(db, &st, err, op, "SELECT id FROM jobs WHERE state = 'QUEUED' ORDER BY id", "");
    if (rc != STORE_OK)
        goto end;
    int r;
    rc = STORE_NOT_FOUND;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t cand = sqlite3_column_int64(st, 0);
        size_t i = 0;
        while (i < n_skip && skip[i] != cand)
            i++;
        if (i == n_skip) {
            id = cand;
            rc = STORE_OK;
            break;
        }
    }
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        rc = db_fail(err, db, op);
    sqlite3_finalize(st);
    if (rc == STORE_NOT_FOUND)
        dim_fail(err, DIM_ENOENT, "no queued job to claim");
    if (rc != STORE_OK)
        goto end;
    rc = run(db, err, op, NULL,
             "UPDATE jobs SET state = 'RUNNING', attempts = attempts + 1, updated_ms = ?, "
             "started_ms = CASE WHEN started_ms = 0 THEN ? ELSE started_ms END, "
             "error_code = NULL, error_message = NULL WHERE id = ?",
             "iii", now, now, id);
    if (rc == STORE_OK)
        rc = run(db, err, "insert attempt", NULL,
                 "INSERT INTO attempts (job_id, attempt, started_ms) "
                 "SELECT id, attempts, ? FROM jobs WHERE id = ?",
                 "ii", now, id);
    if (rc == STORE_OK)
        rc = ev_add(db, id, "state", event_json_state(JOB_RUNNING, JOB_QUEUED, NULL, NULL), now, err);
    if (rc == STORE_OK && out)
        rc = job_load(db, id, out, err);
end:
    rc = tx_end(db, rc, err, op);
    if (rc == STORE_OK)
        ev_bump(s);
out:
    pool_put(s, db);
    return rc;
}

int store_job_set_total(struct dimd_store *s, int64_t id, int attempt, int64_t total_steps,
                        struct dim_err *err)
{
    const char *op = "set total steps";
    sqlite3 *db = pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int rc = tx_begin(db, err, op);
    if (rc == STORE_OK) {
        rc = guard(db, id, attempt, JOB_MASK(JOB_RUNNING), err);
        if (rc == STORE_OK)
            rc = run(db, err, op, NULL,
                     "UPDATE jobs SET total_steps = ?, updated_ms = ? WHERE id = ?", "iii",
                     total_steps, clock_wall_ms(), id);
        rc = tx_end(db, rc, err, op);
    }
    pool_put(s, db);
    return rc;
}

int store_job_finish(struct dimd_store *s, int64_t id, int attempt, enum job_state to,
                     const char *error_code, const char *error_message, struct dim_err *err)
{
    const char *op = "finish job";
    if (to != JOB_SUCCEEDED && to != JOB_FAILED && to != JOB_QUEUED) {
        dim_fail(err, DIM_EINVAL, "%s: a worker cannot move a job to %s", op, job_state_name(to));
        return STORE_ERROR;
    }
    sqlite3 *db = pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int rc = tx_begin(db, err, op);
    if (rc == STORE_OK) {
        rc = guard(db, id, attempt, JOB_MASK(JOB_RUNNING), err);
        if (rc == STORE_OK)
            rc = set_state(db, id, JOB_RUNNING, to, error_code, error_message, 0, clock_wall_ms(), err);
        rc = tx_end(db, rc, err, op);
        if (rc == STORE_OK)
            ev_bump(s);
    }
    pool_put(s, db);
    return rc;
}

int store_recover(struct dimd_store *s, int max_restarts, int *requeued, int *failed,
                  struct dim_err *err)
{
    const char *op = "recover running jobs";
    *requeued = 0;
    *failed = 0;
    sqlite3 *db = pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int64_t now = clock_wall_ms();
    int64_t *ids = NULL;
    int *restarts = NULL;
    size_t cap = 0, cap2 = 0, cnt = 0;
    int nq = 0, nf = 0;
    int rc = tx_begin(db, err, op);
    if (rc != STORE_OK)
        goto out;
    sqlite3_stmt *st;
    rc = stmt_open(db, &st, err, op,
                   "SELECT id, restarts FROM jobs WHERE state = 'RUNNING' ORDER BY id", "");
    if (rc != STORE_OK)
        goto end;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (!grow((void **)&ids, &cap, cnt + 1, sizeof(*ids)) ||
            !grow((void **)&restarts, &cap2, cnt + 1, sizeof(*restarts))) {
            rc = nomem(err, op);
            break;
        }
        ids[cnt] = sqlite3_column_int64(st, 0);
        restarts[cnt++] = sqlite3_column_int(st, 1);
    }
    if (rc == STORE_OK && r != SQLITE_DONE)
        rc = db_fail(err, db, op);
    sqlite3_finalize(st);
    for (size_t i = 0; i < cnt && rc == STORE_OK; i++) {
        int n = restarts[i] + 1;
        if (n > max_restarts) {
            char msg[160];
            snprintf(msg, sizeof(msg),
                     "the daemon stopped while the job ran %d times (max_restarts %d)", n,
                     max_restarts);
            rc = set_state(db, ids[i], JOB_RUNNING, JOB_FAILED, "restart_limit", msg, 1, now, err);
            nf++;
        } else {
            rc = set_state(db, ids[i], JOB_RUNNING, JOB_QUEUED, NULL, NULL, 1, now, err);
            nq++;
        }
    }
end:
    rc = tx_end(db, rc, err, op);
    if (rc == STORE_OK) {
        *requeued = nq;
        *failed = nf;
        if (cnt > 0)
            ev_bump(s);
    }
out:
    free(ids);
    free(restarts);
    pool_put(s, db);
    return rc;
}

int store_job_delete(struct dimd_store *s, int64_t id, struct dim_err *err)
{
    const char *op = "delete job";
    sqlite3 *db = pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    enum job_state cur;
    int rc = tx_begin(db, err, op);
    if (rc != STORE_OK)
        goto out;
    rc = job_state_of(db, id, &cur, NULL, err);
    if (rc == STORE_NOT_FOUND)
        dim_fail(err, DIM_ENOENT, "no job %lld", (long long)id);
    if (rc == STORE_OK && !job_state_terminal(cur)) {
        dim_fail(err, DIM_EINVAL, "job %lld is %s; only finished jobs can be deleted",
                 (long long)id, job_state_name(cur));
        rc = STORE_CONFLICT;
    }
    /* Metrics, checkpoints, events, attempts and idempotency keys cascade. */
    if (rc == STORE_OK)
        rc = run(db, err, op, NULL, "DELETE FROM jobs WHERE id = ?", "i", id);
    rc = tx_end(db, rc, err, op);
    if (rc == STORE_OK)
        reclaim(db);
out:
    pool_put(s, db);
    return rc;
}

int store_job_counts(struct dimd_store *s, int64_t counts[JOB_N_STATES], struct dim_err *err)
{
    for (int i = 0; i < JOB_N_STATES; i++)
        counts[i] = 0;
    sqlite3 *db = pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    sqlite3_stmt *st;
    int rc = stmt_open(db, &st, err, "count jobs",
                       "SELECT state, COUNT(*) FROM jobs GROUP BY state", "");
    if (rc == STORE_OK) {
        int r;
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
            int v = job_state_parse((const char *)sqlite3_column_text(st, 0));
            if (v >= 0)
                counts[v] = sqlite3_column_int64(st, 1);
        }
        if (r != SQLITE_DONE)
            rc = db_fail(err, db, "count jobs");
        sqlite3_finalize(st);
    }
    pool_put(s, db);
    return rc;
}

/* ---- metrics ---- */

int store_metrics_append(struct dimd_store *s, int64_t job_id, int attempt,
                         const struct store_metric *m, size_t n, int64_t step,
                         double images_per_second, struct dim_err *err)
{
    const char *op = "append metrics";
    if (n > 0 && !m)
        return inval(err, "%s: %s is NULL", op, "the point array");
    for (size_t i = 0; i < n; i++) {
        if (!key_ok(m[i].key)) {
            dim_fail(err, DIM_EINVAL, "%s: metric key \"%s\" is not 1..63 of [a-z0-9_]", op,
                     m[i].key ? m[i].key : "(null)");
            return STORE_ERROR;
        }
    }
    char *ev = NULL; /* the "metrics" event, written with the points */
    if (n > 0) {
        struct event_json_point *pts = malloc(n * sizeof(*pts));
        for (size_t i = 0; pts && i < n; i++)
            pts[i] = (struct event_json_point){m[i].key, m[i].step, m[i].value, m[i].wall_ms};
        ev = pts ? event_json_metrics(pts, n) : NULL;
        free(pts);
        if (!ev)
            return nomem(err, op);
    }
    sqlite3 *db = pool_get(s, err);
    if (!db) {
        free(ev);
        return STORE_ERROR;
    }
    int64_t now = clock_wall_ms();
    int rc = tx_begin(db, err, op);
    if (rc != STORE_OK)
        goto out;
    rc = guard(db, job_id, attempt, JOB_MASK(JOB_RUNNING) | JOB_MASK(JOB_PAUSED), err);
    if (rc != STORE_OK)
        goto end;
    if (n > 0) {
        sqlite3_stmt *st;
        rc = stmt_open(db, &st, err, op,
                       "INSERT INTO metrics (job_id, key, step, value, wall_ms) "
                       "VALUES (?, ?, ?, ?, ?)",
                       "");
        for (size_t i = 0; rc == STORE_OK && i < n; i++) {
            sqlite3_reset(st);
            sqlite3_bind_int64(st, 1, job_id);
            sqlite3_bind_text(st, 2, m[i].key, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 3, m[i].step);
            if (isnan(m[i].value))
                sqlite3_bind_null(st, 4);
            else
                sqlite3_bind_double(st, 4, m[i].value);
            sqlite3_bind_int64(st, 5, m[i].wall_ms);
            int r = sqlite3_step(st);
            if ((r & 0xff) == SQLITE_CONSTRAINT) {
                dim_fail(err, DIM_EINVAL, "job %lld already has metric %s at step %lld",
                         (long long)job_id, m[i].key, (long long)m[i].step);
                rc = STORE_CONFLICT;
            } else if (r != SQLITE_DONE) {
                rc = db_fail(err, db, op);
            }
        }
        sqlite3_finalize(st);
        if (rc != STORE_OK)
            goto end;
    }
    rc = run(db, err, op, NULL,
             "UPDATE jobs SET step = ?, images_per_second = ?, updated_ms = ? WHERE id = ?", "idii",
             step, isfinite(images_per_second) ? images_per_second : 0.0, now, job_id);
    if (rc == STORE_OK && n > 0) {
        rc = ev_add(db, job_id, "metrics", ev, now, err);
        ev = NULL;
    }
end:
    rc = tx_end(db, rc, err, op);
    if (rc == STORE_OK && n > 0)
        ev_bump(s);
out:
    free(ev);
    pool_put(s, db);
    return rc;
}

int store_metrics_rewind(struct dimd_store *s, int64_t job_id, int attempt, int64_t step,
                         struct dim_err *err)
{
    const char *op = "rewind metrics";
    sqlite3 *db = pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int64_t now = clock_wall_ms();
    int deleted = 0;
    int rc = tx_begin(db, err, op);
    if (rc != STORE_OK)
        goto out;
    rc = guard(db, job_id, attempt, JOB_MASK(JOB_RUNNING), err);
    if (rc == STORE_OK)
        rc = run(db, err, op, &deleted, "DELETE FROM metrics WHERE job_id = ? AND step > ?", "ii",
                 job_id, step);
    if (rc == STORE_OK)
        rc = run(db, err, op, NULL, "UPDATE jobs SET step = ?, updated_ms = ? WHERE id = ?", "iii",
                 step, now, job_id);
    if (rc == STORE_OK && deleted > 0)
        rc = ev_add(db, job_id, "rewind", event_json_rewind(step), now, err);
    rc = tx_end(db, rc, err, op);
    if (rc == STORE_OK && deleted > 0)
        ev_bump(s);
out:
    pool_put(s, db);
    return rc;
}

static bool summary_read(sqlite3_stmt *st, void *row)
{
    struct store_metric_summary *e = row;
    snprintf(e->key, sizeof(e->key), "%s", (const char *)sqlite3_column_text(st, 0));
    e->count = sqlite3_column_int64(st, 1);
    e->first_step = sqlite3_column_int64(st, 2);
    e->last_step = sqlite3_column_int64(st, 3);
    e->last = col_value(st, 4);
    e->min = col_value(st, 5);
    e->max = col_value(st, 6);
    return true;
}

/* For rows that own no memory. */
static void no_clear(void *row)
{
    (void)row;
}

int store_metrics_summary(struct dimd_store *s, int64_t job_id, struct store_metric_summary **out,
                          size_t *n, struct dim_err *err)
{
    const char *op = "summarise metrics";
    *out = NULL;
    *n = 0;
    sqlite3 *db = pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int rc = tx_read_job(db, job_id, err, op);
    if (rc != STORE_OK)
        goto out;
    sqlite3_stmt *st;
    rc = stmt_open(db, &st, err, op,
                   "SELECT key, COUNT(*), MIN(step), MAX(step), "
                   "(SELECT value FROM metrics l WHERE l.job_id = m.job_id AND l.key = m.key "
                   " ORDER BY step DESC LIMIT 1), MIN(value), MAX(value) "
                   "FROM metrics m WHERE job_id = ? GROUP BY key ORDER BY key",
                   "i", job_id);
    if (rc == STORE_OK)
        rc = collect_rows(db, st, sizeof(**out), summary_read, no_clear, (void **)out, n, err,
                          op);
    tx_end(db, STORE_ERROR, NULL, op); /* read-only: roll back */
out:
    pool_put(s, db);
    return rc;
}

/* Keeps the first and last point and each of B equal step buckets' min and max
 * (NaN values only when a bucket has nothing else) of p[0..k); returns the new count. */
static size_t downsample(struct store_point *p, size_t k, int64_t after_step, int64_t max_points,
                         struct dim_err *err, int *rc)
{
    int64_t buckets = max_points / 2 < 1 ? 1 : max_points / 2;
    if ((uint64_t)buckets > k)
        buckets = (int64_t)k;
    size_t nb = (size_t)buckets;
    size_t *mini = malloc(nb * sizeof(*mini)), *maxi = malloc(nb * sizeof(*maxi));
    bool *keep = calloc(k, sizeof(*keep));
    if (!mini || !maxi || !keep) {
        *rc = nomem(err, "downsample metrics");
        free(mini);
        free(maxi);
        free(keep);
        return k;
    }
    for (size_t b = 0; b < nb; b++)
        mini[b] = maxi[b] = SIZE_MAX;
    double width = (double)p[k - 1].step - (double)after_step; /* >= 1: steps > after_step */
    for (size_t i = 0; i < k; i++) {
        double x = ((double)p[i].step - (double)after_step - 1.0) / width * (double)nb;
        size_t b = x < 0 ? 0 : (size_t)x;
        if (b >= nb)
            b = nb - 1;
        double v = p[i].value;
        if (mini[b] == SIZE_MAX || (isnan(p[mini[b]].value) && !isnan(v))) {
            mini[b] = maxi[b] = i;
        } else {
            if (v < p[mini[b]].value)
                mini[b] = i;
            if (v > p[maxi[b]].value)
                maxi[b] = i;
        }
    }
    keep[0] = keep[k - 1] = true;
    for (size_t b = 0; b < nb; b++) {
        if (mini[b] != SIZE_MAX) {
            keep[mini[b]] = true;
            keep[maxi[b]] = true;
        }
    }
    size_t o = 0;
    for (size_t i = 0; i < k; i++)
        if (keep[i])
            p[o++] = p[i];
    free(mini);
    free(maxi);
    free(keep);
    return o;
}

int store_metrics_history(struct dimd_store *s, int64_t job_id, const char *key, int64_t after_step,
                          int64_t to_step, int64_t limit, int64_t max_points, struct store_point **out, size_t *n,
                          bool *more, struct dim_err *err)
{
    const char *op = "read metric history";
    *out = NULL;
    *n = 0;
    *more = false;
    if (!key)
        return inval(err, "%s: %s is NULL", op, "key");
    if (limit < 1) {
        dim_fail(err, DIM_EINVAL, "%s: limit %lld must be >= 1", op, (long long)limit);
        return STORE_ERROR;
    }
    if (limit > INT64_MAX - 1)
        limit = INT64_MAX - 1;
    sqlite3 *db = pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    struct store_point *p = NULL;
    size_t cap = 0, cnt = 0;
    bool over = false;
    int rc = tx_read_job(db, job_id, err, op);
    if (rc != STORE_OK)
        goto out;
    sqlite3_stmt *st;
    rc = stmt_open(db, &st, err, op,
                   "SELECT step, value, wall_ms FROM metrics WHERE job_id = ? AND key = ? "
                   "AND step > ? AND step <= ? ORDER BY step LIMIT ?",
                   "itiii", job_id, key, after_step, to_step, limit + 1);
    if (rc != STORE_OK)
        goto end;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if ((int64_t)cnt == limit) {
            over = true;
            break;
        }
        if (!grow((void **)&p, &cap, cnt + 1, sizeof(*p))) {
            rc = nomem(err, op);
            break;
        }
        p[cnt].step = sqlite3_column_int64(st, 0);
        p[cnt].value = col_value(st, 1);
        p[cnt].wall_ms = sqlite3_column_int64(st, 2);
        cnt++;
    }
    if (rc == STORE_OK && r != SQLITE_ROW && r != SQLITE_DONE)
        rc = db_fail(err, db, op);
    sqlite3_finalize(st);
end:
    tx_end(db, STORE_ERROR, NULL, op); /* read-only: roll back */
out:
    pool_put(s, db);
    if (rc == STORE_OK && max_points > 0 && (int64_t)cnt > max_points)
        cnt = downsample(p, cnt, after_step, max_points, err, &rc);
    if (rc != STORE_OK) {
        free(p);
        return rc;
    }
    *out = p;
    *n = cnt;
    *more = over;
    return STORE_OK;
}

/* ---- checkpoints ---- */

void store_checkpoint_clear(struct store_checkpoint *c)
{
    if (!c)
        return;
    free(c->metrics_json);
    memset(c, 0, sizeof(*c));
}

/* Deletes job_id's checkpoints that are neither among the newest keep_last nor
 * the best keep_best by best_metric (inside the put's transaction). */
static int retain(sqlite3 *db, int64_t job_id, const struct store_retention *k, struct dim_err *err)
{
    char path[80];
    bool best = k->keep_best > 0 && k->best_metric[0];
    snprintf(path, sizeof(path), "$.\"%s\"", best ? k->best_metric : "none");
    const char *sql =
        k->best_is_max
            ? "DELETE FROM checkpoints WHERE job_id = ?1 AND step NOT IN "
              "(SELECT step FROM checkpoints WHERE job_id = ?1 ORDER BY step DESC LIMIT ?2) "
              "AND step NOT IN (SELECT step FROM checkpoints WHERE job_id = ?1 AND "
              "json_type(metrics, ?3) IN ('integer', 'real') "
              "ORDER BY json_extract(metrics, ?3) DESC, step DESC LIMIT ?4)"
            : "DELETE FROM checkpoints WHERE job_id = ?1 AND step NOT IN "
              "(SELECT step FROM checkpoints WHERE job_id = ?1 ORDER BY step DESC LIMIT ?2) "
              "AND step NOT IN (SELECT step FROM checkpoints WHERE job_id = ?1 AND "
              "json_type(metrics, ?3) IN ('integer', 'real') "
              "ORDER BY json_extract(metrics, ?3) ASC, step DESC LIMIT ?4)";
    return run(db, err, "apply checkpoint retention", NULL, sql, "iiti", job_id,
               (int64_t)k->keep_last, path, (int64_t)(best ? k->keep_best : 0));
}

int store_checkpoint_put(struct dimd_store *s, int64_t job_id, int attempt, int64_t step,
                         const void *bytes, size_t n, const char *given_hex,
                         const char *metrics_json, const struct store_retention *keep,
                         struct dim_err *err)
{
    const char *op = "store checkpoint";
    if (n > 0 && !bytes)
        return inval(err, "%s: %s is NULL", op, "bytes");
    if (!hex64_ok(given_hex))
        return inval(err, "%s: sha256 \"%s\" is not 64 lowercase hex digits", op,
                     given_hex ? given_hex : "(null)");
    if (keep && (keep->keep_last < 1 || keep->keep_best < 0 ||
                 (keep->keep_best > 0 && !key_ok(keep->best_metric)))) {
        dim_fail(err, DIM_EINVAL,
                 "%s: retention keep_last %d, keep_best %d, best_metric \"%s\" "
                 "(need keep_last >= 1 and a metric key)",
                 op, keep->keep_last, keep->keep_best, keep->best_metric);
        return STORE_ERROR;
    }
    char digest[65];
    sha256_hex(bytes, n, digest);
    if (strcmp(digest, given_hex) != 0) {
        dim_fail(err, DIM_EINVAL, "%s: the bytes' sha256 is %s, not the given %s", op, digest,
                 given_hex);
        return STORE_ERROR;
    }
    json_error_t jerr;
    json_t *metrics = json_loads(metrics_json ? metrics_json : "{}", 0, &jerr);
    if (!metrics || !json_is_object(metrics)) {
        json_decref(metrics);
        return inval(err, "%s: metrics \"%s\" is not a JSON object", op,
                     metrics_json ? metrics_json : "");
    }
    /* The metrics column: the object re-encoded compactly with DIMD_REAL_DIGITS. */
    char *mtext = json_dumps(metrics, JSON_COMPACT | JSON_REAL_PRECISION(DIMD_REAL_DIGITS));
    json_decref(metrics);
    /* The "checkpoint" event, from the same values, written with the row. */
    char *ev = event_json_checkpoint(step, (int64_t)n, given_hex, metrics_json);
    if (!mtext || !ev) {
        free(mtext);
        free(ev);
        return nomem(err, op);
    }
    sqlite3 *db = pool_get(s, err);
    if (!db) {
        free(mtext);
        free(ev);
        return STORE_ERROR;
    }
    int64_t now = clock_wall_ms();
    int rc = tx_begin(db, err, op);
    if (rc != STORE_OK)
        goto out;
    rc = guard(db, job_id, attempt, JOB_MASK(JOB_RUNNING) | JOB_MASK(JOB_PAUSED), err);
    if (rc != STORE_OK)
        goto end;
    sqlite3_stmt *st;
    rc = stmt_open(db, &st, err, op,
                   "INSERT INTO checkpoints (job_id, step, bytes, sha256, metrics, created_ms, "
                   "data) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job_id, step) DO UPDATE SET "
                   "bytes = excluded.bytes, sha256 = excluded.sha256, metrics = excluded.metrics, "
                   "created_ms = excluded.created_ms, data = excluded.data",
                   "iiitti", job_id, step, (int64_t)n, given_hex, mtext, now);
    if (rc != STORE_OK)
        goto end;
    int b = n > 0 ? sqlite3_bind_blob64(st, 7, bytes, n, SQLITE_STATIC)
                  : sqlite3_bind_zeroblob(st, 7, 0);
    if (b != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(err, db, op);
    sqlite3_finalize(st);
    if (rc == STORE_OK && keep)
        rc = retain(db, job_id, keep, err);
    if (rc == STORE_OK) {
        rc = ev_add(db, job_id, "checkpoint", ev, now, err);
        ev = NULL;
    }
end:
    rc = tx_end(db, rc, err, op);
    if (rc == STORE_OK) {
        ev_bump(s);
        reclaim(db);
    }
out:
    free(ev);
    free(mtext);
    pool_put(s, db);
    return rc;
}

/* Reads columns step, bytes, sha256, metrics, created_ms. */
static int ckpt_read(sqlite3_stmt *st, struct store_checkpoint *c, struct dim_err *err)
{
    struct store_checkpoint t = {0};
    t.step = sqlite3_column_int64(st, 0);
    t.bytes = sqlite3_column_int64(st, 1);
    snprintf(t.sha256, sizeof(t.sha256), "%s", (const char *)sqlite3_column_text(st, 2));
    t.created_ms = sqlite3_column_int64(st, 4);
    if (!col_dup(st, 3, &t.metrics_json))
        return nomem(err, "read checkpoint");
    *c = t;
    return STORE_OK;
}

static bool ckpt_row(sqlite3_stmt *st, void *row)
{
    return ckpt_read(st, row, NULL) == STORE_OK;
}

static void ckpt_clear(void *row)
{
    store_checkpoint_clear(row);
}

int store_checkpoint_list(struct dimd_store *s, int64_t job_id, struct store_checkpoint **out,
                          size_t *n, struct dim_err *err)
{
    const char *op = "list checkpoints";
    *out = NULL;
    *n = 0;
    sqlite3 *db = pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int rc = tx_read_job(db, job_id, err, op);
    if (rc != STORE_OK)
        goto out;
    sqlite3_stmt *st;
    rc = stmt_open(db, &st, err, op,
                   "SELECT step, bytes, sha256, metrics, created_ms FROM checkpoints "
                   "WHERE job_id = ? ORDER BY step",
                   "i", job_id);
    if (rc == STORE_OK)
        rc = collect_rows(db, st, sizeof(**out), ckpt_row, ckpt_clear, (void **)out, n, err, op);
    tx_end(db, STORE_ERROR, NULL, op); /* read-only: roll back */
out:
    pool_put(s, db);
    return rc;
}

int store_checkpoint_get(struct dimd_store *s, int64_t job_id, int64_t step,
                         struct store_checkpoint *meta, void **data, struct dim_err *err)
{
    const char *op = "read checkpoint";
    if (data)
        *data = NULL;
    sqlite3 *db = pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    /* Without data only the metadata columns are read (an ETag check). */
    const char *sql =
        step < 0 ? (data ? "SELECT step, bytes, sha256, metrics, created_ms, data FROM "
                           "checkpoints WHERE job_id = ?1 ORDER BY step DESC LIMIT 1"
                         : "SELECT step, bytes, sha256, metrics, created_ms FROM checkpoints "
                           "WHERE job_id = ?1 ORDER BY step DESC LIMIT 1")
                 : (data ? "SELECT step, bytes, sha256, metrics, created_ms, data FROM "
                           "checkpoints WHERE job_id = ?1 AND step = ?2"
                         : "SELECT step, bytes, sha256, metrics, created_ms FROM checkpoints "
                           "WHERE job_id = ?1 AND step = ?2");
    sqlite3_stmt *st;
    int rc = step < 0 ? stmt_open(db, &st, err, op, sql, "i", job_id)
                      : stmt_open(db, &st, err, op, sql, "ii", job_id, step);
    if (rc == STORE_OK) {
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            struct store_checkpoint c = {0};
            rc = ckpt_read(st, &c, err);
            if (rc == STORE_OK && data) {
                size_t len = (size_t)sqlite3_column_bytes(st, 5);
                const void *blob = sqlite3_column_blob(st, 5);
                *data = malloc(len ? len : 1);
                if (!*data)
                    rc = nomem(err, op);
                else if (len)
                    memcpy(*data, blob, len);
            }
            if (rc == STORE_OK && meta)
                *meta = c;
            else
                store_checkpoint_clear(&c);
        } else if (r == SQLITE_DONE) {
            if (step < 0)
                dim_fail(err, DIM_ENOENT, "job %lld has no checkpoint", (long long)job_id);
            else
                dim_fail(err, DIM_ENOENT, "job %lld has no checkpoint at step %lld",
                         (long long)job_id, (long long)step);
            rc = STORE_NOT_FOUND;
        } else {
            rc = db_fail(err, db, op);
        }
        sqlite3_finalize(st);
    }
    pool_put(s, db);
    return rc;
}

/* ---- events ---- */

void store_event_clear(struct store_event *e)
{
    if (!e)
        return;
    free(e->data);
    memset(e, 0, sizeof(*e));
}

static bool event_read(sqlite3_stmt *st, void *row)
{
    struct store_event *e = row;
    e->id = sqlite3_column_int64(st, 0);
    e->job_id = sqlite3_column_int64(st, 1);
    snprintf(e->type, sizeof(e->type), "%s", (const char *)sqlite3_column_text(st, 2));
    e->created_ms = sqlite3_column_int64(st, 4);
    return col_dup(st, 3, &e->data) && e->data;
}

static void event_clear(void *row)
{
    store_event_clear(row);
}

int store_events_after(struct dimd_store *s, int64_t job_id, int64_t after_id, int limit,
                       struct store_event **out, size_t *n, struct dim_err *err)
{
    const char *op = "read events";
    *out = NULL;
    *n = 0;
    if (limit < 1) {
        dim_fail(err, DIM_EINVAL, "%s: limit %d must be >= 1", op, limit);
        return STORE_ERROR;
    }
    sqlite3 *db = pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    sqlite3_stmt *st;
    int rc = stmt_open(db, &st, err, op,
                       "SELECT id, job_id, type, data, created_ms FROM events "
                       "WHERE job_id = ? AND id > ? ORDER BY id LIMIT ?",
                       "iii", job_id, after_id, (int64_t)limit);
    if (rc == STORE_OK)
        rc = collect_rows(db, st, sizeof(**out), event_read, event_clear, (void **)out, n, err,
                          op);
    pool_put(s, db);
    return rc;
}

uint64_t store_event_seq(struct dimd_store *s)
{
    pthread_mutex_lock(&s->ev_mu);
    uint64_t v = s->ev_seq;
    pthread_mutex_unlock(&s->ev_mu);
    return v;
}

uint64_t store_event_wait(struct dimd_store *s, uint64_t seen, int timeout_ms)
{
    if (timeout_ms < 0)
        timeout_ms = 0;
    struct timespec until = clock_mono_ts(clock_mono_s() + timeout_ms * 1e-3);
    pthread_mutex_lock(&s->ev_mu);
    while (s->ev_seq <= seen)
        if (pthread_cond_timedwait(&s->ev_cv, &s->ev_mu, &until) == ETIMEDOUT)
            break;
    uint64_t v = s->ev_seq;
    pthread_mutex_unlock(&s->ev_mu);
    return v;
}

/* ---- tokens ---- */

static void token_read(sqlite3_stmt *st, struct store_token *t)
{
    memset(t, 0, sizeof(*t));
    t->id = sqlite3_column_int64(st, 0);
    snprintf(t->name, sizeof(t->name), "%s", (const char *)sqlite3_column_text(st, 1));
    const char *sc = (const char *)sqlite3_column_text(st, 2);
    t->scope = scope_parse(sc) == SCOPE_WRITE ? SCOPE_WRITE : SCOPE_READ;
    t->created_ms = sqlite3_column_int64(st, 3);
}

int store_token_create(struct dimd_store *s, const char *name, enum scope scope,
                       char token_text[TOKEN_TEXT_MAX], struct store_token *out,
                       struct dim_err *err)
{
    const char *op = "create token";
    if (!name || !*name || strlen(name) > 63)
        return inval(err, "%s: name \"%s\" must be 1..63 characters", op, name ? name : "");
    if (scope != SCOPE_READ && scope != SCOPE_WRITE) {
        dim_fail(err, DIM_EINVAL, "%s: scope %d is neither read nor write", op, (int)scope);
        return STORE_ERROR;
    }
    unsigned char rnd[24];
    size_t got = 0;
    while (got < sizeof(rnd)) {
        ssize_t r = getrandom(rnd + got, sizeof(rnd) - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            dim_fail(err, DIM_EIO, "%s: getrandom: %s", op, strerror(errno));
            return STORE_ERROR;
        }
        got += (size_t)r;
    }
    char text[TOKEN_TEXT_MAX];
    memcpy(text, "dimd_", 5);
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(text + 5 + 2 * i, 3, "%02x", rnd[i]);
    char hash[65];
    sha256_hex(text, strlen(text), hash);
    sqlite3 *db = pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int64_t now = clock_wall_ms();
    int rc = tx_begin(db, err, op);
    if (rc == STORE_OK) {
        rc = run(db, err, op, NULL,
                 "INSERT INTO tokens (name, scope, sha256, created_ms) VALUES (?, ?, ?, ?)", "ttti",
                 name, scope_name(scope), hash, now);
        int64_t id = sqlite3_last_insert_rowid(db);
        rc = tx_end(db, rc, err, op);
        if (rc == STORE_OK) {
            snprintf(token_text, TOKEN_TEXT_MAX, "%s", text);
            if (out) {
                memset(out, 0, sizeof(*out));
                out->id = id;
                snprintf(out->name, sizeof(out->name), "%s", name);
                out->scope = scope;
                out->created_ms = now;
            }
        }
    }
    pool_put(s, db);
    memset(text, 0, sizeof(text));
    return rc;
}

int store_token_list(struct dimd_store *s, struct store_token **out, size_t *n, struct dim_err *err)
{
    const char *op = "list tokens";
    *out = NULL;
    *n = 0;
    sqlite3 *db = pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    struct store_token *v = NULL;
    size_t cap = 0, cnt = 0;
    sqlite3_stmt *st;
    int rc = stmt_open(db, &st, err, op,
                       "SELECT id, name, scope, created_ms FROM tokens ORDER BY id", "");
    if (rc == STORE_OK) {
        int r;
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
            if (!grow((void **)&v, &cap, cnt + 1, sizeof(*v))) {
                rc = nomem(err, op);
                break;
            }
            token_read(st, &v[cnt++]);
        }
        if (rc == STORE_OK && r != SQLITE_DONE)
            rc = db_fail(err, db, op);
        sqlite3_finalize(st);
    }
    pool_put(s, db);
    if (rc != STORE_OK) {
        free(v);
        return rc;
    }
    *out = v;
    *n = cnt;
    return STORE_OK;
}

int store_token_delete(struct dimd_store *s, int64_t id, struct dim_err *err)
{
    const char *op = "delete token";
    sqlite3 *db = pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int changed = 0;
    int rc = tx_begin(db, err, op);
    if (rc == STORE_OK) {
        rc = run(db, err, op, &changed, "DELETE FROM tokens WHERE id = ?", "i", id);
        if (rc == STORE_OK && changed == 0) {
            dim_fail(err, DIM_ENOENT, "no token %lld", (long long)id);
            rc = STORE_NOT_FOUND;
        }
        rc = tx_end(db, rc, err, op);
    }
    pool_put(s, db);
    return rc;
}

int store_token_count(struct dimd_store *s, int64_t *n, struct dim_err *err)
{
    *n = 0;
    sqlite3 *db = pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int rc = query_int(db, err, "count tokens", n, 0, "SELECT COUNT(*) FROM tokens", "");
    pool_put(s, db);
    return rc;
}

static bool token_hash_read(sqlite3_stmt *st, void *row)
{
    struct store_token_hash *r = row;
    token_read(st, &r->t);
    const char *h = (const char *)sqlite3_column_text(st, 4);
    snprintf(r->sha256, sizeof r->sha256, "%s", h ? h : "");
    return true;
}

int store_token_hashes(struct dimd_store *s, struct store_token_hash **out, size_t *n,
                       struct dim_err *err)
{
    const char *op = "read token hashes";
    *out = NULL;
    *n = 0;
    sqlite3 *db = pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    sqlite3_stmt *st;
    int rc = stmt_open(db, &st, err, op,
                       "SELECT id, name, scope, created_ms, sha256 FROM tokens ORDER BY id", "");
    if (rc == STORE_OK)
        rc = collect_rows(db, st, sizeof(**out), token_hash_read, no_clear, (void **)out, n, err,
                          op);
    pool_put(s, db);
    return rc;
}

/* ---- models ----
 * models holds one row per name with next_version (never decremented, so a
 * number is never reused); model_versions one row per version, blobs last
 * (index vectors, index labels, then the checkpoint bytes). A version's job_id
 * becomes NULL (0 in the struct) when its job is deleted (ON DELETE SET NULL).
 * Index blobs are the host's float32 / uint16 bytes: little-endian, as the
 * checkpoint format already requires (core/dim/checkpoint.c). In
 * store_model_delete and store_model_pin, as in store_model_get, version 0
 * means the newest existing version. */

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "model index blobs are stored as host floats; this port assumes a little-endian host"
#endif

void store_model_version_clear(struct store_model_version *v)
{
    if (!v)
        return;
    free(v->info_json);
    free(v->metrics_json);
    memset(v, 0, sizeof(*v));
}

static int model_name_check(const char *name, const char *op, struct dim_err *err)
{
    if (model_name_ok(name))
        return STORE_OK;
    return inval(err, "%s: model name \"%.80s\" does not match ^[a-z0-9][a-z0-9_-]{0,62}$", op,
                 name ? name : "(null)");
}

/* The metadata columns, in the order mv_read reads them. */
#define MV_COLS                                                                                    \
    "name, version, job_id, step, source_sha256, sha256, bytes, created_ms, pinned, info, "        \
    "metrics, index_images, index_dim"
#define MV_NCOLS 13

/* Reads MV_COLS into *v (overwritten). NULL columns (a model without versions,
 * from store_model_list's outer join) read as 0, "" and NULL. */
static int mv_read(sqlite3_stmt *st, struct store_model_version *v, struct dim_err *err)
{
    struct store_model_version t = {0};
    const unsigned char *txt = sqlite3_column_text(st, 0);
    snprintf(t.name, sizeof(t.name), "%s", txt ? (const char *)txt : "");
    t.version = sqlite3_column_int(st, 1);
    t.job_id = sqlite3_column_int64(st, 2); /* NULL (job deleted) reads as 0 */
    t.step = sqlite3_column_int64(st, 3);
    txt = sqlite3_column_text(st, 4);
    snprintf(t.source_sha256, sizeof(t.source_sha256), "%s", txt ? (const char *)txt : "");
    txt = sqlite3_column_text(st, 5);
    snprintf(t.sha256, sizeof(t.sha256), "%s", txt ? (const char *)txt : "");
    t.bytes = sqlite3_column_int64(st, 6);
    t.created_ms = sqlite3_column_int64(st, 7);
    t.pinned = sqlite3_column_int(st, 8) != 0;
    t.index_images = sqlite3_column_int64(st, 11);
    t.index_dim = sqlite3_column_int(st, 12);
    if (!col_dup(st, 9, &t.info_json) || !col_dup(st, 10, &t.metrics_json)) {
        store_model_version_clear(&t);
        return nomem(err, "read model version");
    }
    *v = t;
    return STORE_OK;
}

/* Records why (name, version) was not found: no such model, or no such version
 * (version 0: no versions left). Returns STORE_NOT_FOUND, or STORE_ERROR. */
static int mv_not_found(sqlite3 *db, const char *name, int version, struct dim_err *err)
{
    int64_t has = 0;
    if (query_int(db, err, "read model", &has, 0, "SELECT COUNT(*) FROM models WHERE name = ?", "t",
                  name) != STORE_OK)
        return STORE_ERROR;
    if (!has)
        dim_fail(err, DIM_ENOENT, "no model %s", name);
    else if (version == 0)
        dim_fail(err, DIM_ENOENT, "model %s has no versions", name);
    else
        dim_fail(err, DIM_ENOENT, "model %s has no version %d", name, version);
    return STORE_NOT_FOUND;
}

/* Resolves (name, version) inside a transaction: *found = the version number
 * (the newest for version 0), *pinned its pin. STORE_NOT_FOUND with a message. */
static int mv_find(sqlite3 *db, const char *name, int version, int *found, bool *pinned,
                   struct dim_err *err)
{
    const char *op = "find model version";
    sqlite3_stmt *st;
    int rc = stmt_open(db, &st, err, op,
                       "SELECT version, pinned FROM model_versions WHERE name = ?1 AND "
                       "(?2 = 0 OR version = ?2) ORDER BY version DESC LIMIT 1",
                       "ti", name, (int64_t)version);
    if (rc != STORE_OK)
        return rc;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        *found = sqlite3_column_int(st, 0);
        if (pinned)
            *pinned = sqlite3_column_int(st, 1) != 0;
    } else if (r != SQLITE_DONE) {
        rc = db_fail(err, db, op);
    }
    sqlite3_finalize(st);
    if (r == SQLITE_DONE)
        rc = mv_not_found(db, name, version, err);
    return rc;
}

/* Loads version `version` (an existing number) of name into *out. */
static int mv_load(sqlite3 *db, const char *name, int version, struct store_model_version *out,
                   struct dim_err *err)
{
    const char *op = "read model version";
    sqlite3_stmt *st;
    int rc = stmt_open(db, &st, err, op,
                       "SELECT " MV_COLS " FROM model_versions WHERE name = ? AND version = ?",
                       "ti", name, (int64_t)version);
    if (rc != STORE_OK)
        return rc;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        rc = mv_read(st, out, err);
    else if (r == SQLITE_DONE)
        rc = mv_not_found(db, name, version, err);
    else
        rc = db_fail(err, db, op);
    sqlite3_finalize(st);
    return rc;
}

/* A JSON object's text (NULL: "{}") re-encoded compactly with DIMD_REAL_DIGITS,
 * into *out (malloc'd). STORE_ERROR with DIM_EINVAL when it is not an object. */
static int json_object_text(const char *text, const char *what, const char *op, char **out,
                            struct dim_err *err)
{
    *out = NULL;
    json_error_t jerr;
    json_t *v = json_loads(text ? text : "{}", 0, &jerr);
    if (!v || !json_is_object(v)) {
        json_decref(v);
        return inval(err, "%s: %s \"%.80s\" is not a JSON object", op, what, text);
    }
    *out = json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(DIMD_REAL_DIGITS));
    json_decref(v);
    return *out ? STORE_OK : nomem(err, op);
}

int store_model_create(struct dimd_store *s, const char *name, int64_t job_id, int64_t step,
                       const char *source_sha256, const void *ckpt, size_t ckpt_bytes,
                       const char *given_hex, const char *info_json, const char *metrics_json,
                       bool pinned, const struct store_model_index *index,
                       struct store_model_version *out, struct dim_err *err)
{
    const char *op = "create model version";
    if (model_name_check(name, op, err) != STORE_OK)
        return STORE_ERROR;
    if (job_id < 0 || step < 0)
        return inval(err, "%s: job %lld, step %lld (need >= 0)", op, (long long)job_id,
                     (long long)step);
    if (ckpt_bytes == 0 || !ckpt)
        return inval(err, "%s: the checkpoint is empty", op);
    if (!hex64_ok(source_sha256))
        return inval(err, "%s: source sha256 \"%.80s\" is not 64 lowercase hex digits", op,
                     source_sha256 ? source_sha256 : "(null)");
    if (!hex64_ok(given_hex))
        return inval(err, "%s: sha256 \"%.80s\" is not 64 lowercase hex digits", op,
                     given_hex ? given_hex : "(null)");
    int64_t n_index = index ? index->n : 0;
    int dim = n_index > 0 ? index->dim : 0;
    size_t vec_bytes = 0, lab_bytes = 0;
    if (n_index < 0)
        return inval(err, "%s: index of %lld images", op, (long long)n_index);
    if (n_index > 0) {
        if (dim < 1 || !index->vectors || !index->labels)
            return inval(err,
                         "%s: index of %lld images needs dim >= 1 (got %d), vectors and "
                         "labels",
                         op, (long long)n_index, dim);
        if ((uint64_t)n_index > SIZE_MAX / sizeof(float) / (size_t)dim)
            return inval(err, "%s: index of %lld x %d floats is too large", op, (long long)n_index,
                         dim);
        vec_bytes = (size_t)n_index * (size_t)dim * sizeof(float);
        lab_bytes = (size_t)n_index * sizeof(uint16_t);
    }
    char digest[65];
    sha256_hex(ckpt, ckpt_bytes, digest);
    if (strcmp(digest, given_hex) != 0) {
        dim_fail(err, DIM_EINVAL, "%s: the checkpoint bytes' sha256 is %s, not the given %s", op,
                 digest, given_hex);
        return STORE_ERROR;
    }
    char *info = NULL, *metrics = NULL;
    if (json_object_text(info_json, "info", op, &info, err) != STORE_OK)
        return STORE_ERROR;
    if (json_object_text(metrics_json, "metrics", op, &metrics, err) != STORE_OK) {
        free(info);
        return STORE_ERROR;
    }
    sqlite3 *db = pool_get(s, err);
    if (!db) {
        free(info);
        free(metrics);
        return STORE_ERROR;
    }
    int64_t now = clock_wall_ms(), version = 0;
    struct store_model_version t = {0};
    int rc = tx_begin(db, err, op);
    if (rc != STORE_OK)
        goto out;
    if (job_id > 0) {
        rc = job_load(db, job_id, NULL, err);
        if (rc == STORE_NOT_FOUND)
            dim_fail(err, DIM_ENOENT, "no job %lld", (long long)job_id);
        if (rc != STORE_OK)
            goto end;
    }
    rc = run(db, err, op, NULL,
             "INSERT INTO models (name, created_ms) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
             "ti", name, now);
    if (rc == STORE_OK)
        rc = query_int(db, err, op, &version, 0, "SELECT next_version FROM models WHERE name = ?",
                       "t", name);
    if (rc != STORE_OK)
        goto end;
    if (version < 1 || version >= INT32_MAX) {
        dim_fail(err, DIM_ERANGE, "%s: model %s: next version %lld out of range", op, name,
                 (long long)version);
        rc = STORE_ERROR;
        goto end;
    }
    rc = run(db, err, op, NULL, "UPDATE models SET next_version = next_version + 1 WHERE name = ?",
             "t", name);
    if (rc != STORE_OK)
        goto end;
    sqlite3_stmt *st;
    rc = stmt_open(db, &st, err, op,
                   "INSERT INTO model_versions (name, version, job_id, step, source_sha256, "
                   "sha256, bytes, created_ms, pinned, info, metrics, index_images, index_dim, "
                   "index_vectors, index_labels, data) VALUES (?, ?, NULLIF(?, 0), ?, ?, ?, ?, ?, "
                   "?, ?, ?, ?, ?, ?, ?, ?)",
                   "tiiittiiittii", name, version, job_id, step, source_sha256, given_hex,
                   (int64_t)ckpt_bytes, now, (int64_t)pinned, info, metrics, n_index, (int64_t)dim);
    if (rc != STORE_OK)
        goto end;
    int b = n_index > 0 ? sqlite3_bind_blob64(st, 14, index->vectors, vec_bytes, SQLITE_STATIC)
                        : sqlite3_bind_null(st, 14);
    if (b == SQLITE_OK)
        b = n_index > 0 ? sqlite3_bind_blob64(st, 15, index->labels, lab_bytes, SQLITE_STATIC)
                        : sqlite3_bind_null(st, 15);
    if (b == SQLITE_OK)
        b = sqlite3_bind_blob64(st, 16, ckpt, ckpt_bytes, SQLITE_STATIC);
    if (b != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(err, db, op);
    sqlite3_finalize(st);
    if (rc == STORE_OK && out)
        rc = mv_load(db, name, (int)version, &t, err);
end:
    rc = tx_end(db, rc, err, op);
    if (rc == STORE_OK)
        atomic_fetch_add(&s->models_gen, 1);
    if (rc == STORE_OK && out)
        *out = t;
    else
        store_model_version_clear(&t);
out:
    free(info);
    free(metrics);
    pool_put(s, db);
    return rc;
}

/* Appends the rows of a prepared MV_COLS query to a malloc'd array. */
static int mv_collect(sqlite3 *db, sqlite3_stmt *st, const char *op,
                      struct store_model_version **out, size_t *n, struct dim_err *err)
{
    struct store_model_version *v = NULL;
    size_t cap = 0, cnt = 0;
    int rc = STORE_OK, r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (!grow((void **)&v, &cap, cnt + 1, sizeof(*v))) {
            rc = nomem(err, op);
            break;
        }
        if ((rc = mv_read(st, &v[cnt], err)) != STORE_OK)
            break;
        cnt++;
    }
    if (rc == STORE_OK && r != SQLITE_DONE)
        rc = db_fail(err, db, op);
    if (rc != STORE_OK) {
        for (size_t i = 0; i < cnt; i++)
            store_model_version_clear(&v[i]);
        free(v);
        return rc;
    }
    *out = v;
    *n = cnt;
    return STORE_OK;
}

int store_model_list(struct dimd_store *s, struct store_model_version **out, size_t *n,
                     struct dim_err *err)
{
    const char *op = "list models";
    *out = NULL;
    *n = 0;
    sqlite3 *db = pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    /* One row per model: its newest version, or NULLs when it has none left. */
    sqlite3_stmt *st;
    int rc = stmt_open(
        db, &st, err, op,
        "SELECT m.name, v.version, v.job_id, v.step, v.source_sha256, v.sha256, v.bytes, "
        "v.created_ms, v.pinned, v.info, v.metrics, v.index_images, v.index_dim "
        "FROM models m LEFT JOIN model_versions v ON v.name = m.name AND v.version = "
        "(SELECT MAX(x.version) FROM model_versions x WHERE x.name = m.name) ORDER BY m.name",
        "");
    if (rc == STORE_OK) {
        rc = mv_collect(db, st, op, out, n, err);
        sqlite3_finalize(st);
    }
    pool_put(s, db);
    return rc;
}

int store_model_versions(struct dimd_store *s, const char *name, struct store_model_version **out,
                         size_t *n, struct dim_err *err)
{
    const char *op = "list model versions";
    *out = NULL;
    *n = 0;
    if (model_name_check(name, op, err) != STORE_OK)
        return STORE_ERROR;
    sqlite3 *db = pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int64_t has = 0;
    int rc = tx_read(db, err, op); /* the model check and the rows from one snapshot */
    if (rc != STORE_OK)
        goto out;
    rc = query_int(db, err, op, &has, 0, "SELECT COUNT(*) FROM models WHERE name = ?", "t", name);
    if (rc == STORE_OK && !has) {
        dim_fail(err, DIM_ENOENT, "no model %s", name);
        rc = STORE_NOT_FOUND;
    }
    if (rc == STORE_OK) {
        sqlite3_stmt *st;
        rc = stmt_open(db, &st, err, op,
                       "SELECT " MV_COLS " FROM model_versions WHERE name = ? ORDER BY version",
                       "t", name);
        if (rc == STORE_OK) {
            rc = mv_collect(db, st, op, out, n, err);
            sqlite3_finalize(st);
        }
    }
    tx_end(db, STORE_ERROR, NULL, op); /* read-only: roll back */
out:
    pool_put(s, db);
    return rc;
}

/* Copies blob column col (expected `want` bytes) into *dst (malloc'd; NULL when
 * want is 0). A length mismatch is a corrupt row: DIM_EFORMAT. */
static int blob_copy(sqlite3_stmt *st, int col, int64_t want, void **dst, const char *what,
                     const struct store_model_version *v, struct dim_err *err)
{
    const void *b = sqlite3_column_blob(st, col);
    int64_t len = sqlite3_column_bytes(st, col);
    if (len != want) {
        dim_fail(err, DIM_EFORMAT, "model %s version %d: %s are %lld bytes, expected %lld", v->name,
                 v->version, what, (long long)len, (long long)want);
        return STORE_ERROR;
    }
    if (want == 0)
        return STORE_OK;
    if (!b || !(*dst = malloc((size_t)want)))
        return nomem(err, "read model version");
    memcpy(*dst, b, (size_t)want);
    return STORE_OK;
}

int store_model_get(struct dimd_store *s, const char *name, int version,
                    struct store_model_version *out, void **ckpt, float **vectors,
                    uint16_t **labels, struct dim_err *err)
{
    const char *op = "read model version";
    if (ckpt)
        *ckpt = NULL;
    if (vectors)
        *vectors = NULL;
    if (labels)
        *labels = NULL;
    if (model_name_check(name, op, err) != STORE_OK)
        return STORE_ERROR;
    if (version < 0)
        return inval(err, "%s: version %d (need >= 1, or 0 for the newest)", op, version);
    /* Only the blobs asked for are read: a metadata-only call never touches them. */
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT " MV_COLS "%s%s%s FROM model_versions WHERE name = ?1 AND "
             "(?2 = 0 OR version = ?2) ORDER BY version DESC LIMIT 1",
             ckpt ? ", data" : "", vectors ? ", index_vectors" : "",
             labels ? ", index_labels" : "");
    sqlite3 *db = pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    struct store_model_version t = {0};
    void *c = NULL, *vec = NULL, *lab = NULL;
    int rc = tx_read(db, err, op);
    if (rc != STORE_OK)
        goto out;
    sqlite3_stmt *st;
    rc = stmt_open(db, &st, err, op, sql, "ti", name, (int64_t)version);
    if (rc != STORE_OK)
        goto end;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        int col = MV_NCOLS;
        rc = mv_read(st, &t, err);
        if (rc == STORE_OK && ckpt)
            rc = blob_copy(st, col++, t.bytes, &c, "checkpoint bytes", &t, err);
        if (rc == STORE_OK && vectors)
            rc = blob_copy(st, col++, t.index_images * t.index_dim * (int64_t)sizeof(float), &vec,
                           "index vectors", &t, err);
        if (rc == STORE_OK && labels)
            rc = blob_copy(st, col++, t.index_images * (int64_t)sizeof(uint16_t), &lab,
                           "index labels", &t, err);
    } else if (r != SQLITE_DONE) {
        rc = db_fail(err, db, op);
    }
    sqlite3_finalize(st);
    if (r == SQLITE_DONE)
        rc = mv_not_found(db, name, version, err);
end:
    tx_end(db, STORE_ERROR, NULL, op); /* read-only: roll back */
out:
    pool_put(s, db);
    if (rc != STORE_OK) {
        store_model_version_clear(&t);
        free(c);
        free(vec);
        free(lab);
        return rc;
    }
    if (out)
        *out = t;
    else
        store_model_version_clear(&t);
    if (ckpt)
        *ckpt = c;
    if (vectors)
        *vectors = vec;
    if (labels)
        *labels = lab;
    return STORE_OK;
}

int store_model_delete(struct dimd_store *s, const char *name, int version, struct dim_err *err)
{
    const char *op = "delete model version";
    if (model_name_check(name, op, err) != STORE_OK)
        return STORE_ERROR;
    if (version < 0)
        return inval(err, "%s: version %d (need >= 1, or 0 for the newest)", op, version);
    sqlite3 *db = pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int found = 0;
    bool pinned = false;
    int rc = tx_begin(db, err, op);
    if (rc != STORE_OK)
        goto out;
    rc = mv_find(db, name, version, &found, &pinned, err);
    if (rc == STORE_OK && pinned) {
        dim_fail(err, DIM_EINVAL, "model %s version %d is pinned; unpin it to delete it", name,
                 found);
        rc = STORE_CONFLICT;
    }
    /* The models row stays: it keeps next_version, so the number is not reused. */
    if (rc == STORE_OK)
        rc = run(db, err, op, NULL, "DELETE FROM model_versions WHERE name = ? AND version = ?",
                 "ti", name, (int64_t)found);
    rc = tx_end(db, rc, err, op);
    if (rc == STORE_OK) {
        atomic_fetch_add(&s->models_gen, 1);
        reclaim(db);
    }
out:
    pool_put(s, db);
    return rc;
}

uint64_t store_models_generation(struct dimd_store *s)
{
    return (uint64_t)atomic_load(&s->models_gen);
}

int store_model_pin(struct dimd_store *s, const char *name, int version, bool pinned,
                    struct store_model_version *out, struct dim_err *err)
{
    const char *op = pinned ? "pin model version" : "unpin model version";
    if (model_name_check(name, op, err) != STORE_OK)
        return STORE_ERROR;
    if (version < 0)
        return inval(err, "%s: version %d (need >= 1, or 0 for the newest)", op, version);
    sqlite3 *db = pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int found = 0;
    struct store_model_version t = {0};
    int rc = tx_begin(db, err, op);
    if (rc != STORE_OK)
        goto out;
    rc = mv_find(db, name, version, &found, NULL, err);
    if (rc == STORE_OK)
        rc = run(db, err, op, NULL,
                 "UPDATE model_versions SET pinned = ? WHERE name = ? AND version = ?", "iti",
                 (int64_t)pinned, name, (int64_t)found);
    if (rc == STORE_OK && out)
        rc = mv_load(db, name, found, &t, err);
    rc = tx_end(db, rc, err, op);
    if (rc == STORE_OK && out)
        *out = t;
    else
        store_model_version_clear(&t);
out:
    pool_put(s, db);
    return rc;
}

/* ---- model projections ---- */

/* Begins a write transaction in which version `version` (an exact number) of
 * name exists; otherwise rolls back and returns STORE_NOT_FOUND (or the error). */
static int tx_begin_on_version(sqlite3 *db, const char *name, int version, struct dim_err *err,
                               const char *op)
{
    int rc = tx_begin(db, err, op);
    if (rc != STORE_OK)
        return rc;
    int found = 0;
    rc = mv_find(db, name, version, &found, NULL, err);
    if (rc == STORE_OK && found != version)
        rc = mv_not_found(db, name, version, err);
    if (rc != STORE_OK)
        tx_end(db, rc, NULL, op);
    return rc;
}


int store_projection_get(struct dimd_store *s, const char *name, int version, char **json,
                         struct dim_err *err)
{
    const char *op = "read model projection";
    *json = NULL;
    if (model_name_check(name, op, err) != STORE_OK)
        return STORE_ERROR;
    sqlite3 *db = pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    sqlite3_stmt *st;
    int rc = stmt_open(db, &st, err, op,
                       "SELECT data FROM model_projections WHERE name = ? AND version = ?", "ti",
                       name, (int64_t)version);
    if (rc == STORE_OK) {
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW)
            rc = col_dup(st, 0, json) && *json ? STORE_OK : nomem(err, op);
        else if (r == SQLITE_DONE)
            rc = STORE_NOT_FOUND;
        else
            rc = db_fail(err, db, op);
        sqlite3_finalize(st);
    }
    pool_put(s, db);
    return rc;
}

int store_projection_put(struct dimd_store *s, const char *name, int version, const char *json,
                         struct dim_err *err)
{
    const char *op = "store model projection";
    if (model_name_check(name, op, err) != STORE_OK)
        return STORE_ERROR;
    sqlite3 *db = pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int rc = tx_begin_on_version(db, name, version, err, op);
    if (rc == STORE_OK) { /* a concurrent request may have stored it first: keep that one */
        rc = run(db, err, op, NULL,
                 "INSERT OR IGNORE INTO model_projections (name, version, created_ms, data) "
                 "VALUES (?, ?, ?, ?)",
                 "tiit", name, (int64_t)version, clock_wall_ms(), json);
        rc = tx_end(db, rc, err, op);
    }
    pool_put(s, db);
    return rc;
}

/* ---- model evaluations ---- */

void store_evaluation_clear(struct store_evaluation *e)
{
    if (!e)
        return;
    free(e->results_json);
    memset(e, 0, sizeof(*e));
}

int store_evaluation_add(struct dimd_store *s, const char *name, int version, int64_t job_id,
                         const char *results_json, const void *grid, size_t grid_bytes,
                         int64_t *id, struct dim_err *err)
{
    const char *op = "store model evaluation";
    if (model_name_check(name, op, err) != STORE_OK)
        return STORE_ERROR;
    sqlite3 *db = pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int rc = tx_begin_on_version(db, name, version, err, op);
    if (rc != STORE_OK)
        goto out;
    sqlite3_stmt *st = NULL;
    rc = stmt_open(db, &st, err, op,
                   "INSERT INTO model_evaluations (name, version, job_id, created_ms, results, "
                   "grid) VALUES (?, ?, (SELECT id FROM jobs WHERE id = ?), ?, ?, ?)",
                   "tiiit", name, (int64_t)version, job_id, clock_wall_ms(), results_json);
    if (rc == STORE_OK) {
        int b = grid ? sqlite3_bind_blob64(st, 6, grid, grid_bytes, SQLITE_STATIC)
                     : sqlite3_bind_null(st, 6);
        if (b != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE)
            rc = db_fail(err, db, op);
        else if (id)
            *id = sqlite3_last_insert_rowid(db);
    }
    sqlite3_finalize(st);
    rc = tx_end(db, rc, err, op);
out:
    pool_put(s, db);
    return rc;
}

static bool evaluation_read(sqlite3_stmt *st, void *row)
{
    struct store_evaluation *e = row;
    e->id = sqlite3_column_int64(st, 0);
    e->job_id = sqlite3_column_int64(st, 1);
    e->created_ms = sqlite3_column_int64(st, 2);
    e->grid_bytes = sqlite3_column_int64(st, 4);
    return col_dup(st, 3, &e->results_json) && e->results_json;
}

static void evaluation_clear(void *row)
{
    store_evaluation_clear(row);
}

int store_evaluation_list(struct dimd_store *s, const char *name, int version,
                          struct store_evaluation **out, size_t *n, struct dim_err *err)
{
    const char *op = "list model evaluations";
    *out = NULL;
    *n = 0;
    if (model_name_check(name, op, err) != STORE_OK)
        return STORE_ERROR;
    sqlite3 *db = pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    sqlite3_stmt *st;
    int rc = stmt_open(db, &st, err, op,
                       "SELECT id, COALESCE(job_id, 0), created_ms, results, "
                       "COALESCE(length(grid), 0) FROM model_evaluations "
                       "WHERE name = ? AND version = ? ORDER BY id",
                       "ti", name, (int64_t)version);
    if (rc == STORE_OK)
        rc = collect_rows(db, st, sizeof(**out), evaluation_read, evaluation_clear, (void **)out,
                          n, err, op);
    pool_put(s, db);
    return rc;
}

int store_evaluation_grid(struct dimd_store *s, const char *name, int version, int64_t id,
                          void **png, size_t *bytes, struct dim_err *err)
{
    const char *op = "read evaluation grid";
    *png = NULL;
    *bytes = 0;
    if (model_name_check(name, op, err) != STORE_OK)
        return STORE_ERROR;
    sqlite3 *db = pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    sqlite3_stmt *st;
    int rc = stmt_open(db, &st, err, op,
                       "SELECT grid FROM model_evaluations WHERE name = ? AND version = ? AND "
                       "id = ? AND grid IS NOT NULL",
                       "tii", name, (int64_t)version, id);
    if (rc == STORE_OK) {
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            const void *b = sqlite3_column_blob(st, 0);
            int len = sqlite3_column_bytes(st, 0);
            if (len > 0 && b && (*png = malloc((size_t)len))) {
                memcpy(*png, b, (size_t)len);
                *bytes = (size_t)len;
            } else {
                rc = nomem(err, op);
            }
        } else if (r == SQLITE_DONE) {
            rc = STORE_NOT_FOUND;
        } else {
            rc = db_fail(err, db, op);
        }
        sqlite3_finalize(st);
    }
    pool_put(s, db);
    return rc;
}

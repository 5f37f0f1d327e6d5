/* checkpoints.c - a job's checkpoints (store/checkpoints.h): put (bytes,
 * sha256 check, metrics, retention and the "checkpoint" event in one
 * transaction guarded by the worker's attempt), list and get.
 * The event text comes from api/event_json.h; jansson is used here only to
 * check the metrics JSON and normalise the text stored in the metrics column.
 * Depends on sqlite3, jansson, store/db.h, store/jobs.h (the guard),
 * api/event_json.h, api/real.h, util/clock.h, util/sha256.h.
 */
#include "store/checkpoints.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "api/event_json.h"
#include "api/real.h"
#include "store/db.h"
#include "util/clock.h"
#include "util/sha256.h"

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
    return db_run(db, err, "apply checkpoint retention", NULL, sql, "iiti", job_id,
                  (int64_t)k->keep_last, path, (int64_t)(best ? k->keep_best : 0));
}

int store_checkpoint_put(struct dimd_store *s, int64_t job_id, int attempt, int64_t step,
                         const void *bytes, size_t n, const char *given_hex,
                         const char *metrics_json, const struct store_retention *keep,
                         struct dim_err *err)
{
    const char *op = "store checkpoint";
    if (n > 0 && !bytes)
        return db_inval(err, "%s: %s is NULL", op, "bytes");
    if (given_hex && !db_hex64_ok(given_hex))
        return db_inval(err, "%s: sha256 \"%s\" is not 64 lowercase hex digits", op,
                        given_hex ? given_hex : "(null)");
    if (keep && (keep->keep_last < 1 || keep->keep_best < 0 ||
                 (keep->keep_best > 0 && !db_key_ok(keep->best_metric)))) {
        dim_fail(err, DIM_EINVAL,
                 "%s: retention keep_last %d, keep_best %d, best_metric \"%s\" "
                 "(need keep_last >= 1 and a metric key)",
                 op, keep->keep_last, keep->keep_best, keep->best_metric);
        return STORE_ERROR;
    }
    char digest[65];
    sha256_hex(bytes, n, digest);
    if (given_hex && strcmp(digest, given_hex) != 0) {
        dim_fail(err, DIM_EINVAL, "%s: the bytes' sha256 is %s, not the given %s", op, digest,
                 given_hex);
        return STORE_ERROR;
    }
    json_error_t jerr;
    json_t *metrics = json_loads(metrics_json ? metrics_json : "{}", 0, &jerr);
    if (!metrics || !json_is_object(metrics)) {
        json_decref(metrics);
        return db_inval(err, "%s: metrics \"%s\" is not a JSON object", op,
                        metrics_json ? metrics_json : "");
    }
    /* The metrics column: the object re-encoded compactly with DIMD_REAL_DIGITS. */
    char *mtext = json_dumps(metrics, JSON_COMPACT | JSON_REAL_PRECISION(DIMD_REAL_DIGITS));
    json_decref(metrics);
    /* The "checkpoint" event, from the same values, written with the row. */
    char *ev = event_json_checkpoint(step, (int64_t)n, digest, metrics_json);
    if (!mtext || !ev) {
        free(mtext);
        free(ev);
        return db_nomem(err, op);
    }
    sqlite3 *db = db_pool_get(s, err);
    if (!db) {
        free(mtext);
        free(ev);
        return STORE_ERROR;
    }
    int64_t now = clock_wall_ms();
    int rc = db_tx_begin(db, err, op);
    if (rc != STORE_OK)
        goto out;
    rc = jobs_guard(db, job_id, attempt, JOB_MASK(JOB_RUNNING) | JOB_MASK(JOB_PAUSED), err);
    if (rc != STORE_OK)
        goto end;
    sqlite3_stmt *st;
    rc = db_stmt_open(
        db, &st, err, op,
        "INSERT INTO checkpoints (job_id, step, bytes, sha256, metrics, created_ms, "
        "data) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job_id, step) DO UPDATE SET "
        "bytes = excluded.bytes, sha256 = excluded.sha256, metrics = excluded.metrics, "
        "created_ms = excluded.created_ms, data = excluded.data",
        "iiitti", job_id, step, (int64_t)n, digest, mtext, now);
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
        rc = events_add(db, job_id, "checkpoint", ev, now, err);
        ev = NULL;
    }
end:
    rc = db_tx_end(db, rc, err, op);
    if (rc == STORE_OK) {
        events_bump(s);
        db_reclaim(db);
    }
out:
    free(ev);
    free(mtext);
    db_pool_put(s, db);
    return rc;
}

int store_checkpoint_need(struct dimd_store *s, int64_t n, int64_t *need, struct dim_err *err)
{
    const char *op = "estimate a checkpoint's space";
    *need = 2 * n; /* when the database cannot tell: a copy in the WAL, one in the file */
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int64_t page = 4096, free_pages = 0;
    int rc = db_query_int(db, err, op, &page, 4096, "PRAGMA page_size", "");
    if (rc == STORE_OK)
        rc = db_query_int(db, err, op, &free_pages, 0, "PRAGMA freelist_count", "");
    db_pool_put(s, db);
    if (rc != STORE_OK)
        return rc;
    char wal[1100];
    snprintf(wal, sizeof wal, "%s-wal", s->path);
    struct stat st;
    int64_t wal_bytes = stat(wal, &st) == 0 ? (int64_t)st.st_size : 0;
    int64_t pages = (n + page - 1) / page + 4; /* the row, its index entry, the event */
    int64_t db_grow = (pages - free_pages) * page;
    int64_t wal_grow = pages * (page + 24) - wal_bytes;
    *need = (db_grow > 0 ? db_grow : 0) + (wal_grow > 0 ? wal_grow : 0);
    return STORE_OK;
}

/* Reads columns step, bytes, sha256, metrics, created_ms. */
static int ckpt_read(sqlite3_stmt *st, struct store_checkpoint *c, struct dim_err *err)
{
    struct store_checkpoint t = {0};
    t.step = sqlite3_column_int64(st, 0);
    t.bytes = sqlite3_column_int64(st, 1);
    snprintf(t.sha256, sizeof(t.sha256), "%s", (const char *)sqlite3_column_text(st, 2));
    t.created_ms = sqlite3_column_int64(st, 4);
    if (!db_col_dup(st, 3, &t.metrics_json))
        return db_nomem(err, "read checkpoint");
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
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int rc = jobs_tx_read(db, job_id, err, op);
    if (rc != STORE_OK)
        goto out;
    sqlite3_stmt *st;
    rc = db_stmt_open(db, &st, err, op,
                      "SELECT step, bytes, sha256, metrics, created_ms FROM checkpoints "
                      "WHERE job_id = ? ORDER BY step",
                      "i", job_id);
    if (rc == STORE_OK)
        rc = db_collect_rows(db, st, sizeof(**out), ckpt_row, ckpt_clear, (void **)out, n, err, op);
    db_tx_end(db, STORE_ERROR, NULL, op); /* read-only: roll back */
out:
    db_pool_put(s, db);
    return rc;
}

int store_checkpoint_get(struct dimd_store *s, int64_t job_id, int64_t step,
                         struct store_checkpoint *meta, void **data, struct dim_err *err)
{
    const char *op = "read checkpoint";
    if (data)
        *data = NULL;
    sqlite3 *db = db_pool_get(s, err);
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
    int rc = step < 0 ? db_stmt_open(db, &st, err, op, sql, "i", job_id)
                      : db_stmt_open(db, &st, err, op, sql, "ii", job_id, step);
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
                    rc = db_nomem(err, op);
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
    db_pool_put(s, db);
    return rc;
}

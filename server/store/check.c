/* check.c - the integrity check of a dimd database (store/check.h).
 * Depends on sqlite3, store/db.h, util/clock.h, util/sha256.h.
 */
#include "store/check.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/db.h"
#include "util/clock.h"
#include "util/sha256.h"

#define BLOB_CHUNK (1u << 20)
/* integrity_check stops after this many lines of errors */
#define INTEGRITY_MAX_ERRORS 100

struct checker {
    sqlite3 *db;
    store_check_problem_fn fn;
    void *ctx;
    struct store_check_report *r;
    unsigned char *buf; /* BLOB_CHUNK bytes */
};

__attribute__((format(printf, 2, 3))) static void problem(struct checker *c, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    c->r->problems++;
    if (c->fn)
        c->fn(c->ctx, line);
}

/* PRAGMA integrity_check: "ok", or one row per error (SQLite's text). */
static void check_structure(struct checker *c)
{
    sqlite3_stmt *st;
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA integrity_check(%d)", INTEGRITY_MAX_ERRORS);
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
        problem(c, "integrity_check: cannot run: %s", sqlite3_errmsg(c->db));
        return;
    }
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        if (!t || strcmp(t, "ok") == 0)
            continue;
        /* one line per problem: SQLite's text may hold several */
        char line[900];
        snprintf(line, sizeof line, "%s", t);
        for (char *p = line; *p; p++)
            if (*p == '\n')
                *p = ' ';
        problem(c, "integrity_check: %s", line);
    }
    if (s != SQLITE_DONE)
        problem(c, "integrity_check: stopped: %s", sqlite3_errmsg(c->db));
    sqlite3_finalize(st);

    if (sqlite3_prepare_v2(c->db, "PRAGMA foreign_key_check", -1, &st, NULL) != SQLITE_OK) {
        problem(c, "foreign_key_check: cannot run: %s", sqlite3_errmsg(c->db));
        return;
    }
    while ((s = sqlite3_step(st)) == SQLITE_ROW)
        problem(c, "foreign_key_check: row %lld of table %s refers to a missing row of %s",
                (long long)sqlite3_column_int64(st, 1), (const char *)sqlite3_column_text(st, 0),
                (const char *)sqlite3_column_text(st, 2));
    if (s != SQLITE_DONE)
        problem(c, "foreign_key_check: stopped: %s", sqlite3_errmsg(c->db));
    sqlite3_finalize(st);
}

/* The sha256 (hex) of blob column `col` of table's row rowid, in chunks; *n =
 * its size. False with the reason in why[] when it cannot be read. */
static bool blob_sha256(struct checker *c, const char *table, const char *col, int64_t rowid,
                        char hex[65], int64_t *n, char *why, size_t why_n)
{
    sqlite3_blob *b = NULL;
    if (sqlite3_blob_open(c->db, "main", table, col, rowid, 0, &b) != SQLITE_OK) {
        snprintf(why, why_n, "%s", sqlite3_errmsg(c->db));
        sqlite3_blob_close(b);
        return false;
    }
    int size = sqlite3_blob_bytes(b);
    struct sha256_ctx h;
    sha256_init(&h);
    for (int off = 0; off < size;) {
        int k = size - off < (int)BLOB_CHUNK ? size - off : (int)BLOB_CHUNK;
        if (sqlite3_blob_read(b, c->buf, k, off) != SQLITE_OK) {
            snprintf(why, why_n, "reading byte %d of %d: %s", off, size, sqlite3_errmsg(c->db));
            sqlite3_blob_close(b);
            return false;
        }
        sha256_update(&h, c->buf, (size_t)k);
        off += k;
    }
    sqlite3_blob_close(b);
    unsigned char d[32];
    sha256_final(&h, d);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    *n = size;
    return true;
}

/* Every checkpoint's bytes against its sha256 and bytes columns. */
static void check_checkpoints(struct checker *c)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT id, job_id, step, bytes, sha256 FROM checkpoints "
                           "ORDER BY job_id, step",
                           -1, &st, NULL) != SQLITE_OK) {
        problem(c, "checkpoints: cannot list them: %s", sqlite3_errmsg(c->db));
        return;
    }
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0), job = sqlite3_column_int64(st, 1),
                step = sqlite3_column_int64(st, 2), bytes = sqlite3_column_int64(st, 3), n = 0;
        const char *want = (const char *)sqlite3_column_text(st, 4);
        char got[65], why[512];
        c->r->checkpoints++;
        if (!blob_sha256(c, "checkpoints", "data", id, got, &n, why, sizeof why)) {
            problem(c, "checkpoint of job %lld at step %lld: cannot read its bytes: %s",
                    (long long)job, (long long)step, why);
            continue;
        }
        c->r->checkpoint_bytes += n;
        if (n != bytes)
            problem(c, "checkpoint of job %lld at step %lld: %lld bytes stored, %lld recorded",
                    (long long)job, (long long)step, (long long)n, (long long)bytes);
        else if (!want || strcmp(want, got) != 0)
            problem(c,
                    "checkpoint of job %lld at step %lld: sha256 mismatch: recorded %s, "
                    "bytes hash to %s",
                    (long long)job, (long long)step, want ? want : "(none)", got);
    }
    if (s != SQLITE_DONE)
        problem(c, "checkpoints: listing stopped: %s", sqlite3_errmsg(c->db));
    sqlite3_finalize(st);
}

/* Every model version's inference-only checkpoint against its sha256. */
static void check_versions(struct checker *c)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT rowid, name, version, bytes, sha256 FROM model_versions "
                           "ORDER BY name, version",
                           -1, &st, NULL) != SQLITE_OK) {
        problem(c, "model versions: cannot list them: %s", sqlite3_errmsg(c->db));
        return;
    }
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t rowid = sqlite3_column_int64(st, 0), v = sqlite3_column_int64(st, 2),
                bytes = sqlite3_column_int64(st, 3), n = 0;
        char name[128];
        snprintf(name, sizeof name, "%s", (const char *)sqlite3_column_text(st, 1));
        const char *want = (const char *)sqlite3_column_text(st, 4);
        char got[65], why[512];
        c->r->versions++;
        if (!blob_sha256(c, "model_versions", "data", rowid, got, &n, why, sizeof why)) {
            problem(c, "model %s version v%lld: cannot read its checkpoint: %s", name, (long long)v,
                    why);
            continue;
        }
        c->r->version_bytes += n;
        if (n != bytes)
            problem(c, "model %s version v%lld: %lld bytes stored, %lld recorded", name,
                    (long long)v, (long long)n, (long long)bytes);
        else if (!want || strcmp(want, got) != 0)
            problem(c, "model %s version v%lld: sha256 mismatch: recorded %s, bytes hash to %s",
                    name, (long long)v, want ? want : "(none)", got);
    }
    if (s != SQLITE_DONE)
        problem(c, "model versions: listing stopped: %s", sqlite3_errmsg(c->db));
    sqlite3_finalize(st);
}

int store_check(const char *db_path, store_check_problem_fn fn, void *ctx,
                struct store_check_report *r, struct dim_err *err)
{
    memset(r, 0, sizeof *r);
    double t0 = clock_mono_s();
    if (access(db_path, F_OK) != 0) {
        dim_fail(err, DIM_ENOENT, "%s: no such file", db_path);
        return STORE_ERROR;
    }
    struct checker c = {NULL, fn, ctx, r, malloc(BLOB_CHUNK)};
    if (!c.buf)
        return db_nomem(err, "check");
    char op[1100];
    snprintf(op, sizeof op, "check %s", db_path);
    int rc = STORE_OK;
    int orc = sqlite3_open_v2(db_path, &c.db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (orc != SQLITE_OK) {
        dim_fail(err, DIM_EIO, "%s: %s", op, c.db ? sqlite3_errmsg(c.db) : sqlite3_errstr(orc));
        rc = STORE_ERROR;
        goto out;
    }
    sqlite3_extended_result_codes(c.db, 1);
    sqlite3_busy_timeout(c.db, DB_BUSY_TIMEOUT_MS);
    /* one snapshot for the whole check; the first read also reads the header */
    int64_t tables = 0;
    if ((rc = db_tx_read(c.db, err, op)) != STORE_OK ||
        (rc = db_query_int(c.db, err, op, &tables, 0,
                           "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND "
                           "name IN ('jobs', 'checkpoints', 'model_versions')",
                           "")) != STORE_OK)
        goto out;
    if (tables != 3) {
        dim_fail(err, DIM_EFORMAT,
                 "%s: not a dimd database (it lacks the jobs, checkpoints or model_versions table)",
                 db_path);
        rc = STORE_ERROR;
        goto out;
    }
    db_query_int(c.db, NULL, op, &r->page_size, 0, "PRAGMA page_size", "");
    db_query_int(c.db, NULL, op, &r->pages, 0, "PRAGMA page_count", "");
    if (db_query_int(c.db, NULL, op, &r->jobs, 0, "SELECT COUNT(*) FROM jobs", "") != STORE_OK)
        problem(&c, "jobs: cannot count them: %s", sqlite3_errmsg(c.db));
    check_structure(&c);
    check_checkpoints(&c);
    check_versions(&c);
out:
    if (c.db) {
        if (!sqlite3_get_autocommit(c.db))
            sqlite3_exec(c.db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close(c.db);
    }
    free(c.buf);
    r->seconds = clock_mono_s() - t0;
    return rc;
}

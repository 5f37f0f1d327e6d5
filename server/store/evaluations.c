/* evaluations.c - evaluations recorded against a model version
 * (store/evaluations.h): add (results JSON and an optional grid PNG, in a
 * transaction in which the version exists), list, and read a grid.
 * Depends on sqlite3, store/db.h, util/clock.h.
 */
#include "store/evaluations.h"

#include <stdlib.h>
#include <string.h>

#include "store/db.h"
#include "util/clock.h"

void store_evaluation_clear(struct store_evaluation *e)
{
    if (!e)
        return;
    free(e->results_json);
    memset(e, 0, sizeof(*e));
}

int store_evaluation_add(struct dimd_store *s, const char *name, int version, int64_t job_id,
                         const char *results_json, const void *grid, size_t grid_bytes, int64_t *id,
                         struct dim_err *err)
{
    const char *op = "store model evaluation";
    if (models_name_check(name, op, err) != STORE_OK)
        return STORE_ERROR;
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int rc = models_tx_begin_on_version(db, name, version, err, op);
    if (rc != STORE_OK)
        goto out;
    sqlite3_stmt *st = NULL;
    rc = db_stmt_open(db, &st, err, op,
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
    rc = db_tx_end(db, rc, err, op);
out:
    db_pool_put(s, db);
    return rc;
}

static bool evaluation_read(sqlite3_stmt *st, void *row)
{
    struct store_evaluation *e = row;
    e->id = sqlite3_column_int64(st, 0);
    e->job_id = sqlite3_column_int64(st, 1);
    e->created_ms = sqlite3_column_int64(st, 2);
    e->grid_bytes = sqlite3_column_int64(st, 4);
    return db_col_dup(st, 3, &e->results_json) && e->results_json;
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
    if (models_name_check(name, op, err) != STORE_OK)
        return STORE_ERROR;
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    sqlite3_stmt *st;
    int rc = db_stmt_open(db, &st, err, op,
                          "SELECT id, COALESCE(job_id, 0), created_ms, results, "
                          "COALESCE(length(grid), 0) FROM model_evaluations "
                          "WHERE name = ? AND version = ? ORDER BY id",
                          "ti", name, (int64_t)version);
    if (rc == STORE_OK)
        rc = db_collect_rows(db, st, sizeof(**out), evaluation_read, evaluation_clear, (void **)out,
                             n, err, op);
    db_pool_put(s, db);
    return rc;
}

int store_evaluation_grid(struct dimd_store *s, const char *name, int version, int64_t id,
                          void **png, size_t *bytes, struct dim_err *err)
{
    const char *op = "read evaluation grid";
    *png = NULL;
    *bytes = 0;
    if (models_name_check(name, op, err) != STORE_OK)
        return STORE_ERROR;
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    sqlite3_stmt *st;
    int rc = db_stmt_open(db, &st, err, op,
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
                rc = db_nomem(err, op);
            }
        } else if (r == SQLITE_DONE) {
            rc = STORE_NOT_FOUND;
        } else {
            rc = db_fail(err, db, op);
        }
        sqlite3_finalize(st);
    }
    db_pool_put(s, db);
    return rc;
}

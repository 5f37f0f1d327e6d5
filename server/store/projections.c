/* projections.c - the stored projection of a model version's embeddings
 * (store/projections.h): read it, or store it once (the first one stays).
 * A file of its own rather than part of models.c: a projection is a derived
 * cache with its own table (migrations/0004_projections.sql) and its own
 * handler, not part of a version's lifecycle; it only borrows the version
 * lookup (models_tx_begin_on_version, store/db.h).
 * Depends on sqlite3, store/db.h, util/clock.h.
 */
#include "store/projections.h"

#include <stdint.h>
#include <stdlib.h>

#include "store/db.h"
#include "util/clock.h"

int store_projection_get(struct dimd_store *s, const char *name, int version, char **json,
                         struct dim_err *err)
{
    const char *op = "read model projection";
    *json = NULL;
    if (models_name_check(name, op, err) != STORE_OK)
        return STORE_ERROR;
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    sqlite3_stmt *st;
    int rc = db_stmt_open(db, &st, err, op,
                          "SELECT data FROM model_projections WHERE name = ? AND version = ?", "ti",
                          name, (int64_t)version);
    if (rc == STORE_OK) {
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW)
            rc = db_col_dup(st, 0, json) && *json ? STORE_OK : db_nomem(err, op);
        else if (r == SQLITE_DONE)
            rc = STORE_NOT_FOUND;
        else
            rc = db_fail(err, db, op);
        sqlite3_finalize(st);
    }
    db_pool_put(s, db);
    return rc;
}

int store_projection_put(struct dimd_store *s, const char *name, int version, const char *json,
                         struct dim_err *err)
{
    const char *op = "store model projection";
    if (models_name_check(name, op, err) != STORE_OK)
        return STORE_ERROR;
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int rc = models_tx_begin_on_version(db, name, version, err, op);
    if (rc == STORE_OK) { /* a concurrent request may have stored it first: keep that one */
        rc = db_run(db, err, op, NULL,
                    "INSERT OR IGNORE INTO model_projections (name, version, created_ms, data) "
                    "VALUES (?, ?, ?, ?)",
                    "tiit", name, (int64_t)version, clock_wall_ms(), json);
        rc = db_tx_end(db, rc, err, op);
    }
    db_pool_put(s, db);
    return rc;
}

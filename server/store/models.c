/* models.c - named, immutable model versions (store/models.h): create (the
 * next version number, a copy of the checkpoint and the neighbours index, in
 * one transaction), list, versions, get (only the blobs asked for), delete,
 * pin, and the generation counter; and the version lookups projections.c and
 * evaluations.c borrow (store/db.h).
 *
 * DESIGN
 * - models holds one row per name with next_version (never decremented, so a
 *   number is never reused); model_versions one row per version, blobs last
 *   (index vectors, index labels, then the checkpoint bytes). A version's job_id
 *   becomes NULL (0 in the struct) when its job is deleted (ON DELETE SET NULL).
 * - Index blobs are the host's float32 / uint16 bytes: little-endian, as the
 *   checkpoint format already requires (core/dim/checkpoint.c). In
 *   store_model_delete and store_model_pin, as in store_model_get, version 0
 *   means the newest existing version.
 * - store_models_generation is an in-process counter bumped after each commit
 *   that creates or deletes a version (one writer process, store/db.c), so the
 *   encoder's cached (name, version) resolutions need no SQL while it stands.
 * Depends on sqlite3, jansson (info and metrics texts are checked and
 * re-encoded), store/db.h, store/jobs.h (the source job), api/model_name.h,
 * api/real.h, util/clock.h, util/sha256.h.
 */
#include "store/models.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api/real.h"
#include "store/db.h"
#include "util/clock.h"
#include "util/sha256.h"

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

int models_name_check(const char *name, const char *op, struct dim_err *err)
{
    if (model_name_ok(name))
        return STORE_OK;
    return db_inval(err, "%s: model name \"%.80s\" does not match ^[a-z0-9][a-z0-9_-]{0,62}$", op,
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
    if (!db_col_dup(st, 9, &t.info_json) || !db_col_dup(st, 10, &t.metrics_json)) {
        store_model_version_clear(&t);
        return db_nomem(err, "read model version");
    }
    *v = t;
    return STORE_OK;
}

/* Records why (name, version) was not found: no such model, or no such version
 * (version 0: no versions left). Returns STORE_NOT_FOUND, or STORE_ERROR. */
int models_not_found(sqlite3 *db, const char *name, int version, struct dim_err *err)
{
    int64_t has = 0;
    if (db_query_int(db, err, "read model", &has, 0, "SELECT COUNT(*) FROM models WHERE name = ?",
                     "t", name) != STORE_OK)
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
int models_find(sqlite3 *db, const char *name, int version, int *found, bool *pinned,
                struct dim_err *err)
{
    const char *op = "find model version";
    sqlite3_stmt *st;
    int rc = db_stmt_open(db, &st, err, op,
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
        rc = models_not_found(db, name, version, err);
    return rc;
}

/* Loads version `version` (an existing number) of name into *out. */
static int mv_load(sqlite3 *db, const char *name, int version, struct store_model_version *out,
                   struct dim_err *err)
{
    const char *op = "read model version";
    sqlite3_stmt *st;
    int rc = db_stmt_open(db, &st, err, op,
                          "SELECT " MV_COLS " FROM model_versions WHERE name = ? AND version = ?",
                          "ti", name, (int64_t)version);
    if (rc != STORE_OK)
        return rc;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        rc = mv_read(st, out, err);
    else if (r == SQLITE_DONE)
        rc = models_not_found(db, name, version, err);
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
        return db_inval(err, "%s: %s \"%.80s\" is not a JSON object", op, what, text);
    }
    *out = json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(DIMD_REAL_DIGITS));
    json_decref(v);
    return *out ? STORE_OK : db_nomem(err, op);
}

int store_model_create(struct dimd_store *s, const char *name, int64_t job_id, int64_t step,
                       const char *source_sha256, const void *ckpt, size_t ckpt_bytes,
                       const char *given_hex, const char *info_json, const char *metrics_json,
                       bool pinned, const struct store_model_index *index,
                       struct store_model_version *out, struct dim_err *err)
{
    const char *op = "create model version";
    if (models_name_check(name, op, err) != STORE_OK)
        return STORE_ERROR;
    if (job_id < 0 || step < 0)
        return db_inval(err, "%s: job %lld, step %lld (need >= 0)", op, (long long)job_id,
                        (long long)step);
    if (ckpt_bytes == 0 || !ckpt)
        return db_inval(err, "%s: the checkpoint is empty", op);
    if (!db_hex64_ok(source_sha256))
        return db_inval(err, "%s: source sha256 \"%.80s\" is not 64 lowercase hex digits", op,
                        source_sha256 ? source_sha256 : "(null)");
    if (!db_hex64_ok(given_hex))
        return db_inval(err, "%s: sha256 \"%.80s\" is not 64 lowercase hex digits", op,
                        given_hex ? given_hex : "(null)");
    int64_t n_index = index ? index->n : 0;
    int dim = n_index > 0 ? index->dim : 0;
    size_t vec_bytes = 0, lab_bytes = 0;
    if (n_index < 0)
        return db_inval(err, "%s: index of %lld images", op, (long long)n_index);
    if (n_index > 0) {
        if (dim < 1 || !index->vectors || !index->labels)
            return db_inval(err,
                            "%s: index of %lld images needs dim >= 1 (got %d), vectors and "
                            "labels",
                            op, (long long)n_index, dim);
        if ((uint64_t)n_index > SIZE_MAX / sizeof(float) / (size_t)dim)
            return db_inval(err, "%s: index of %lld x %d floats is too large", op,
                            (long long)n_index, dim);
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
    sqlite3 *db = db_pool_get(s, err);
    if (!db) {
        free(info);
        free(metrics);
        return STORE_ERROR;
    }
    int64_t now = clock_wall_ms(), version = 0;
    struct store_model_version t = {0};
    int rc = db_tx_begin(db, err, op);
    if (rc != STORE_OK)
        goto out;
    if (job_id > 0) {
        rc = jobs_load(db, job_id, NULL, err);
        if (rc == STORE_NOT_FOUND)
            dim_fail(err, DIM_ENOENT, "no job %lld", (long long)job_id);
        if (rc != STORE_OK)
            goto end;
    }
    rc = db_run(db, err, op, NULL,
                "INSERT INTO models (name, created_ms) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                "ti", name, now);
    if (rc == STORE_OK)
        rc = db_query_int(db, err, op, &version, 0,
                          "SELECT next_version FROM models WHERE name = ?", "t", name);
    if (rc != STORE_OK)
        goto end;
    if (version < 1 || version >= INT32_MAX) {
        dim_fail(err, DIM_ERANGE, "%s: model %s: next version %lld out of range", op, name,
                 (long long)version);
        rc = STORE_ERROR;
        goto end;
    }
    rc = db_run(db, err, op, NULL,
                "UPDATE models SET next_version = next_version + 1 WHERE name = ?", "t", name);
    if (rc != STORE_OK)
        goto end;
    sqlite3_stmt *st;
    rc = db_stmt_open(
        db, &st, err, op,
        "INSERT INTO model_versions (name, version, job_id, step, source_sha256, "
        "sha256, bytes, created_ms, pinned, info, metrics, index_images, index_dim, "
        "index_vectors, index_labels, data) VALUES (?, ?, NULLIF(?, 0), ?, ?, ?, ?, ?, "
        "?, ?, ?, ?, ?, ?, ?, ?)",
        "tiiittiiittii", name, version, job_id, step, source_sha256, given_hex, (int64_t)ckpt_bytes,
        now, (int64_t)pinned, info, metrics, n_index, (int64_t)dim);
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
    rc = db_tx_end(db, rc, err, op);
    if (rc == STORE_OK)
        atomic_fetch_add(&s->models_gen, 1);
    if (rc == STORE_OK && out)
        *out = t;
    else
        store_model_version_clear(&t);
out:
    free(info);
    free(metrics);
    db_pool_put(s, db);
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
        if (!db_grow((void **)&v, &cap, cnt + 1, sizeof(*v))) {
            rc = db_nomem(err, op);
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
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    /* One row per model: its newest version, or NULLs when it has none left. */
    sqlite3_stmt *st;
    int rc = db_stmt_open(
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
    db_pool_put(s, db);
    return rc;
}

int store_model_versions(struct dimd_store *s, const char *name, struct store_model_version **out,
                         size_t *n, struct dim_err *err)
{
    const char *op = "list model versions";
    *out = NULL;
    *n = 0;
    if (models_name_check(name, op, err) != STORE_OK)
        return STORE_ERROR;
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int64_t has = 0;
    int rc = db_tx_read(db, err, op); /* the model check and the rows from one snapshot */
    if (rc != STORE_OK)
        goto out;
    rc =
        db_query_int(db, err, op, &has, 0, "SELECT COUNT(*) FROM models WHERE name = ?", "t", name);
    if (rc == STORE_OK && !has) {
        dim_fail(err, DIM_ENOENT, "no model %s", name);
        rc = STORE_NOT_FOUND;
    }
    if (rc == STORE_OK) {
        sqlite3_stmt *st;
        rc = db_stmt_open(db, &st, err, op,
                          "SELECT " MV_COLS " FROM model_versions WHERE name = ? ORDER BY version",
                          "t", name);
        if (rc == STORE_OK) {
            rc = mv_collect(db, st, op, out, n, err);
            sqlite3_finalize(st);
        }
    }
    db_tx_end(db, STORE_ERROR, NULL, op); /* read-only: roll back */
out:
    db_pool_put(s, db);
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
        return db_nomem(err, "read model version");
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
    if (models_name_check(name, op, err) != STORE_OK)
        return STORE_ERROR;
    if (version < 0)
        return db_inval(err, "%s: version %d (need >= 1, or 0 for the newest)", op, version);
    /* Only the blobs asked for are read: a metadata-only call never touches them. */
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT " MV_COLS "%s%s%s FROM model_versions WHERE name = ?1 AND "
             "(?2 = 0 OR version = ?2) ORDER BY version DESC LIMIT 1",
             ckpt ? ", data" : "", vectors ? ", index_vectors" : "",
             labels ? ", index_labels" : "");
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    struct store_model_version t = {0};
    void *c = NULL, *vec = NULL, *lab = NULL;
    int rc = db_tx_read(db, err, op);
    if (rc != STORE_OK)
        goto out;
    sqlite3_stmt *st;
    rc = db_stmt_open(db, &st, err, op, sql, "ti", name, (int64_t)version);
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
        rc = models_not_found(db, name, version, err);
end:
    db_tx_end(db, STORE_ERROR, NULL, op); /* read-only: roll back */
out:
    db_pool_put(s, db);
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
    if (models_name_check(name, op, err) != STORE_OK)
        return STORE_ERROR;
    if (version < 0)
        return db_inval(err, "%s: version %d (need >= 1, or 0 for the newest)", op, version);
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int found = 0;
    bool pinned = false;
    int rc = db_tx_begin(db, err, op);
    if (rc != STORE_OK)
        goto out;
    rc = models_find(db, name, version, &found, &pinned, err);
    if (rc == STORE_OK && pinned) {
        dim_fail(err, DIM_EINVAL, "model %s version %d is pinned; unpin it to delete it", name,
                 found);
        rc = STORE_CONFLICT;
    }
    /* The models row stays: it keeps next_version, so the number is not reused. */
    if (rc == STORE_OK)
        rc = db_run(db, err, op, NULL, "DELETE FROM model_versions WHERE name = ? AND version = ?",
                    "ti", name, (int64_t)found);
    rc = db_tx_end(db, rc, err, op);
    if (rc == STORE_OK) {
        atomic_fetch_add(&s->models_gen, 1);
        db_reclaim(db);
    }
out:
    db_pool_put(s, db);
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
    if (models_name_check(name, op, err) != STORE_OK)
        return STORE_ERROR;
    if (version < 0)
        return db_inval(err, "%s: version %d (need >= 1, or 0 for the newest)", op, version);
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int found = 0;
    struct store_model_version t = {0};
    int rc = db_tx_begin(db, err, op);
    if (rc != STORE_OK)
        goto out;
    rc = models_find(db, name, version, &found, NULL, err);
    if (rc == STORE_OK)
        rc = db_run(db, err, op, NULL,
                    "UPDATE model_versions SET pinned = ? WHERE name = ? AND version = ?", "iti",
                    (int64_t)pinned, name, (int64_t)found);
    if (rc == STORE_OK && out)
        rc = mv_load(db, name, found, &t, err);
    rc = db_tx_end(db, rc, err, op);
    if (rc == STORE_OK && out)
        *out = t;
    else
        store_model_version_clear(&t);
out:
    db_pool_put(s, db);
    return rc;
}

/* Begins a write transaction in which version `version` (an exact number) of
 * name exists; otherwise rolls back and returns STORE_NOT_FOUND (or the error). */
int models_tx_begin_on_version(sqlite3 *db, const char *name, int version, struct dim_err *err,
                               const char *op)
{
    int rc = db_tx_begin(db, err, op);
    if (rc != STORE_OK)
        return rc;
    int found = 0;
    rc = models_find(db, name, version, &found, NULL, err);
    if (rc == STORE_OK && found != version)
        rc = models_not_found(db, name, version, err);
    if (rc != STORE_OK)
        db_tx_end(db, rc, NULL, op);
    return rc;
}

/* tokens.c - bearer tokens (store/tokens.h): plain CRUD on the tokens table.
 * A token's text is "dimd_" + 48 hex digits from getrandom; only its sha256 is
 * stored, and the text leaves this file once, through store_token_create.
 * Checking presented tokens, and keeping the table in memory between changes,
 * is the auth service's (service/auth.c).
 * Depends on sqlite3, store/db.h, api/scope.h, util/clock.h, util/sha256.h.
 */
#include "store/tokens.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "store/db.h"
#include "util/clock.h"
#include "util/sha256.h"

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
        return db_inval(err, "%s: name \"%s\" must be 1..63 characters", op, name ? name : "");
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
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int64_t now = clock_wall_ms();
    int rc = db_tx_begin(db, err, op);
    if (rc == STORE_OK) {
        rc = db_run(db, err, op, NULL,
                    "INSERT INTO tokens (name, scope, sha256, created_ms) VALUES (?, ?, ?, ?)",
                    "ttti", name, scope_name(scope), hash, now);
        int64_t id = sqlite3_last_insert_rowid(db);
        rc = db_tx_end(db, rc, err, op);
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
    db_pool_put(s, db);
    memset(text, 0, sizeof(text));
    return rc;
}

int store_token_list(struct dimd_store *s, struct store_token **out, size_t *n, struct dim_err *err)
{
    const char *op = "list tokens";
    *out = NULL;
    *n = 0;
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    struct store_token *v = NULL;
    size_t cap = 0, cnt = 0;
    sqlite3_stmt *st;
    int rc = db_stmt_open(db, &st, err, op,
                          "SELECT id, name, scope, created_ms FROM tokens ORDER BY id", "");
    if (rc == STORE_OK) {
        int r;
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
            if (!db_grow((void **)&v, &cap, cnt + 1, sizeof(*v))) {
                rc = db_nomem(err, op);
                break;
            }
            token_read(st, &v[cnt++]);
        }
        if (rc == STORE_OK && r != SQLITE_DONE)
            rc = db_fail(err, db, op);
        sqlite3_finalize(st);
    }
    db_pool_put(s, db);
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
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int changed = 0;
    int rc = db_tx_begin(db, err, op);
    if (rc == STORE_OK) {
        rc = db_run(db, err, op, &changed, "DELETE FROM tokens WHERE id = ?", "i", id);
        if (rc == STORE_OK && changed == 0) {
            dim_fail(err, DIM_ENOENT, "no token %lld", (long long)id);
            rc = STORE_NOT_FOUND;
        }
        rc = db_tx_end(db, rc, err, op);
    }
    db_pool_put(s, db);
    return rc;
}

int store_token_count(struct dimd_store *s, int64_t *n, struct dim_err *err)
{
    *n = 0;
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    int rc = db_query_int(db, err, "count tokens", n, 0, "SELECT COUNT(*) FROM tokens", "");
    db_pool_put(s, db);
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
    sqlite3 *db = db_pool_get(s, err);
    if (!db)
        return STORE_ERROR;
    sqlite3_stmt *st;
    int rc = db_stmt_open(db, &st, err, op,
                          "SELECT id, name, scope, created_ms, sha256 FROM tokens ORDER BY id", "");
    if (rc == STORE_OK)
        rc = db_collect_rows(db, st, sizeof(**out), token_hash_read, db_no_clear, (void **)out, n,
                             err, op);
    db_pool_put(s, db);
    return rc;
}

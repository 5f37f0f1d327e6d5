/* auth.c - authentication over the tokens table (service/auth.h): a copy of
 * the table's rows and hashes, read again after the changes this service
 * makes, and the constant-time comparison.
 * Depends on store/tokens.h, util/sha256.h.
 */
#include "service/auth.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/sha256.h"

struct auth {
    struct dimd_store *store;
    atomic_uint_fast64_t gen; /* starts at 1; bumped after each token change */
    /* The tokens table as auth_check last read it (under mu). */
    pthread_mutex_t mu;
    struct store_token_hash *tok;
    size_t tok_n;
    uint_fast64_t tok_gen; /* gen when tok was read (0: never) */
};

int auth_create(struct auth **out, struct dimd_store *s, struct dim_err *err)
{
    *out = NULL;
    struct auth *a = calloc(1, sizeof(*a));
    if (!a) {
        dim_fail(err, DIM_ENOMEM, "create auth: out of memory");
        return STORE_ERROR;
    }
    a->store = s;
    atomic_init(&a->gen, 1);
    pthread_mutex_init(&a->mu, NULL);
    *out = a;
    return STORE_OK;
}

void auth_free(struct auth *a)
{
    if (!a)
        return;
    pthread_mutex_destroy(&a->mu);
    free(a->tok);
    free(a);
}

/* Reads the tokens table into a->tok (under mu). */
static int auth_reload(struct auth *a, uint_fast64_t gen, struct dim_err *err)
{
    struct store_token_hash *v = NULL;
    size_t n = 0;
    int rc = store_token_hashes(a->store, &v, &n, err);
    if (rc != STORE_OK)
        return rc;
    free(a->tok);
    a->tok = v;
    a->tok_n = n;
    a->tok_gen = gen;
    return STORE_OK;
}

int auth_check(struct auth *a, const char *token_text, struct store_token *out, struct dim_err *err)
{
    char hash[65];
    sha256_hex(token_text ? token_text : "", token_text ? strlen(token_text) : 0, hash);
    bool found = false;
    struct store_token match;
    pthread_mutex_lock(&a->mu);
    /* The counter is read before the table: a change committed meanwhile bumps
     * it again, so the next check reads the table anew. */
    uint_fast64_t gen = atomic_load(&a->gen);
    int rc = a->tok_gen == gen ? STORE_OK : auth_reload(a, gen, err);
    for (size_t k = 0; rc == STORE_OK && k < a->tok_n; k++) {
        const char *h = a->tok[k].sha256;
        /* Constant time over the 64 digits: no early exit on a mismatch. */
        unsigned diff = strlen(h) != 64;
        for (int i = 0; i < 64 && h[i]; i++)
            diff |= (unsigned)(unsigned char)(h[i] ^ hash[i]);
        if (diff == 0 && !found) {
            match = a->tok[k].t;
            found = true;
        }
    }
    pthread_mutex_unlock(&a->mu);
    if (rc != STORE_OK)
        return rc;
    if (!found || !token_text) {
        dim_fail(err, DIM_ENOENT, "unknown token");
        return STORE_NOT_FOUND;
    }
    if (out)
        *out = match;
    return STORE_OK;
}

int auth_token_create(struct auth *a, const char *name, enum scope scope,
                      char token_text[TOKEN_TEXT_MAX], struct store_token *out, struct dim_err *err)
{
    int rc = store_token_create(a->store, name, scope, token_text, out, err);
    if (rc == STORE_OK)
        atomic_fetch_add(&a->gen, 1);
    return rc;
}

int auth_token_delete(struct auth *a, int64_t id, struct dim_err *err)
{
    int rc = store_token_delete(a->store, id, err);
    if (rc == STORE_OK)
        atomic_fetch_add(&a->gen, 1);
    return rc;
}

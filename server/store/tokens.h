/* tokens.h - bearer tokens: create (the text is returned once; only its
 * sha256 is stored), list, delete, count, and read the stored hashes. Checking
 * a presented token (and caching the table between changes) is the auth
 * service's (service/auth.h), which every create and delete must go through so
 * its cache stays current.
 * Depends on store/store.h, api/scope.h.
 */
#ifndef DIMD_STORE_TOKENS_H
#define DIMD_STORE_TOKENS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/scope.h"
#include "base/error.h"
#include "store/store.h"

#define TOKEN_TEXT_MAX 80

struct store_token {
    int64_t id;
    char name[64];
    enum scope scope;
    int64_t created_ms;
};
/* Creates a token from /dev/urandom: text "dimd_" + 48 hex digits into
 * token_text (TOKEN_TEXT_MAX bytes), the only time the text exists; stores its
 * sha256 only. *out (may be NULL) gets the row. The name must be 1..63
 * characters and the scope read or write (else STORE_ERROR naming them).
 * The daemon creates and deletes tokens through service/auth.h, whose cache of
 * the table must learn of every change. */
int store_token_create(struct dimd_store *s, const char *name, enum scope scope,
                       char token_text[TOKEN_TEXT_MAX], struct store_token *out,
                       struct dim_err *err);
/* Every token (without hashes), by id. *out malloc'd (free it), *n rows. */
int store_token_list(struct dimd_store *s, struct store_token **out, size_t *n,
                     struct dim_err *err);
/* Deletes token id; STORE_NOT_FOUND when there is none. */
int store_token_delete(struct dimd_store *s, int64_t id, struct dim_err *err);
int store_token_count(struct dimd_store *s, int64_t *n, struct dim_err *err);

/* A token with its stored hash (64 lowercase hex digits). */
struct store_token_hash {
    struct store_token t;
    char sha256[65];
};
/* Every token with its hash, by id (what service/auth.h compares presented
 * tokens with). *out malloc'd (free it), *n rows. */
int store_token_hashes(struct dimd_store *s, struct store_token_hash **out, size_t *n,
                       struct dim_err *err);

#endif

/* auth.h - authentication: which token a presented bearer text is, and the
 * token changes that must keep that answer current.
 *
 * DESIGN
 * - The tokens table is read once per change and kept in memory: checks
 *   between token creations and deletions compare hashes without SQL (the hot
 *   path of every request). A counter bumped after each create or delete that
 *   goes through this service marks the copy stale. That stands for "the table
 *   changed" because only this process writes the database and every token
 *   change in the daemon goes through auth_token_create / auth_token_delete
 *   (store/tokens.h's create and delete would bypass the cache).
 * - A presented text is hashed (sha256) and compared with every stored hash in
 *   constant time (no early exit), so timing does not tell how much matched.
 * - Thread-safe: checks take a mutex around the cached copy.
 * Depends on store/tokens.h, util/sha256.h.
 */
#ifndef DIMD_SERVICE_AUTH_H
#define DIMD_SERVICE_AUTH_H

#include <stdint.h>

#include "api/scope.h"
#include "base/error.h"
#include "store/store.h"
#include "store/tokens.h"

struct auth;

/* Creates the service over store s (not owned; it must outlive the service).
 * Reads nothing yet: the first check reads the table. Returns STORE_OK, or
 * STORE_ERROR (out of memory). */
int auth_create(struct auth **out, struct dimd_store *s, struct dim_err *err);
void auth_free(struct auth *a);

/* The token whose text was presented (its hash compared in constant time with
 * every stored one) into *out (may be NULL): STORE_OK, STORE_NOT_FOUND
 * ("unknown token", also for NULL or ""), or STORE_ERROR when the table could
 * not be read. */
int auth_check(struct auth *a, const char *token_text, struct store_token *out,
               struct dim_err *err);

/* store_token_create (the text into token_text, once) and then marks the
 * cache stale, so the new token is known to the next check. */
int auth_token_create(struct auth *a, const char *name, enum scope scope,
                      char token_text[TOKEN_TEXT_MAX], struct store_token *out,
                      struct dim_err *err);
/* store_token_delete and then marks the cache stale, so the next check no
 * longer knows the token. STORE_NOT_FOUND when there is no token id. */
int auth_token_delete(struct auth *a, int64_t id, struct dim_err *err);

#endif

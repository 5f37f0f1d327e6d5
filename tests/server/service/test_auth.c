/* test_auth.c - authentication (service/auth.h): presented tokens checked
 * against the stored hashes, and the in-memory copy of the tokens table kept
 * current across token creations and revocations made after cached checks.
 *
 * Every test runs against a real database file in its own mkdtemp directory
 * under /tmp, removed afterwards (tests/support/storefix.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "service/auth.h"
#include "store/store.h"
#include "store/tokens.h"
#include "storefix.h"

/* The auth service over the fixture's store (one test at a time). */
static struct auth *auth;

static int auth_setup(void **state)
{
    if (storefix_setup_open(state) != 0)
        return -1;
    struct storefix *f = *state;
    struct dim_err err = {0};
    return auth_create(&auth, f->s, &err) == STORE_OK ? 0 : -1;
}

static int auth_teardown(void **state)
{
    auth_free(auth);
    auth = NULL;
    return storefix_teardown(state);
}

/* Checks answer from the stored hashes; a token revoked or created after
 * checks were answered from memory is known (or no longer known) at once. */
static void test_auth_check_cache(void **state)
{
    (void)state;
    struct dim_err err = {0};
    char t1[TOKEN_TEXT_MAX], t2[TOKEN_TEXT_MAX];
    struct store_token a = {0}, b = {0}, got = {0};
    assert_int_equal(auth_token_create(auth, "first", SCOPE_WRITE, t1, &a, &err), STORE_OK);
    assert_int_equal(auth_token_create(auth, "ci", SCOPE_READ, t2, &b, &err), STORE_OK);

    assert_int_equal(auth_check(auth, t1, &got, &err), STORE_OK);
    assert_int_equal(got.id, a.id);
    assert_int_equal(got.scope, SCOPE_WRITE);
    assert_string_equal(got.name, "first");
    assert_int_equal(auth_check(auth, t2, &got, &err), STORE_OK);
    assert_int_equal(got.scope, SCOPE_READ);
    assert_int_equal(got.id, b.id);
    char wrong[TOKEN_TEXT_MAX];
    memcpy(wrong, t1, sizeof(wrong));
    wrong[20] = wrong[20] == 'a' ? 'b' : 'a';
    assert_int_equal(auth_check(auth, wrong, &got, &err), STORE_NOT_FOUND);
    assert_int_equal(auth_check(auth, "", &got, &err), STORE_NOT_FOUND);
    assert_int_equal(auth_check(auth, NULL, &got, &err), STORE_NOT_FOUND);

    /* revoked after cached checks: unknown at once */
    assert_int_equal(auth_token_delete(auth, a.id, &err), STORE_OK);
    assert_int_equal(auth_token_delete(auth, a.id, &err), STORE_NOT_FOUND);
    assert_int_equal(auth_check(auth, t1, &got, &err), STORE_NOT_FOUND);
    assert_int_equal(auth_check(auth, t2, &got, &err), STORE_OK);
    /* a token created after checks were answered from memory is known at once */
    char t3[TOKEN_TEXT_MAX];
    assert_int_equal(auth_token_create(auth, "third", SCOPE_READ, t3, NULL, &err), STORE_OK);
    assert_int_equal(auth_check(auth, t3, &got, &err), STORE_OK);
    assert_string_equal(got.name, "third");
    /* refused creations change nothing */
    assert_int_equal(auth_token_create(auth, "", SCOPE_READ, t1, NULL, &err), STORE_ERROR);
    assert_int_equal(auth_check(auth, t2, &got, &err), STORE_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_auth_check_cache, auth_setup, auth_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

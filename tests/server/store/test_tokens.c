/* test_tokens.c - bearer tokens (store/tokens.h): create (text once, only the hash stored),
 * list, hashes, count, delete. Checking presented tokens is
 * tests/server/service/test_auth.c.
 *
 * Every test runs against a real database file in its own mkdtemp directory
 * under /tmp, removed afterwards (tests/support/storefix.h).
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "store/tokens.h"
#include "storefix.h"

static void test_tokens(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    char t1[TOKEN_TEXT_MAX], t2[TOKEN_TEXT_MAX];
    struct store_token a = {0}, b = {0};
    assert_int_equal(store_token_create(f->s, "first", SCOPE_WRITE, t1, &a, &err), STORE_OK);
    assert_int_equal(store_token_create(f->s, "ci", SCOPE_READ, t2, &b, &err), STORE_OK);
    assert_int_equal(strlen(t1), 53);
    assert_memory_equal(t1, "dimd_", 5);
    for (int i = 5; i < 53; i++)
        assert_true((t1[i] >= '0' && t1[i] <= '9') || (t1[i] >= 'a' && t1[i] <= 'f'));
    assert_string_not_equal(t1, t2);
    assert_true(b.id > a.id);
    assert_string_equal(a.name, "first");
    assert_true(a.created_ms > 0);

    /* Only the hash is stored. */
    char hash[65], sql[300];
    sha256_hex(t1, strlen(t1), hash);
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM tokens WHERE sha256 = '%s'", hash);
    assert_int_equal(storefix_raw_int(f->path, sql), 1);
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM tokens WHERE sha256 = '%s' OR name = '%s'", t1,
             t1);
    assert_int_equal(storefix_raw_int(f->path, sql), 0);

    /* The stored hashes, for the auth service (tests/server/service/test_auth.c
     * checks presented tokens against them). */
    struct store_token_hash *h = NULL;
    size_t nh = 0;
    assert_int_equal(store_token_hashes(f->s, &h, &nh, &err), STORE_OK);
    assert_int_equal(nh, 2);
    assert_int_equal(h[0].t.id, a.id);
    assert_string_equal(h[0].t.name, "first");
    assert_int_equal(h[0].t.scope, SCOPE_WRITE);
    assert_string_equal(h[0].sha256, hash);
    sha256_hex(t2, strlen(t2), hash);
    assert_int_equal(h[1].t.id, b.id);
    assert_string_equal(h[1].sha256, hash);
    free(h);

    struct store_token *v = NULL;
    size_t n = 0;
    assert_int_equal(store_token_list(f->s, &v, &n, &err), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].name, "first");
    assert_int_equal(v[0].scope, SCOPE_WRITE);
    assert_string_equal(v[1].name, "ci");
    assert_int_equal(v[1].scope, SCOPE_READ);
    free(v);
    int64_t cnt = 0;
    assert_int_equal(store_token_count(f->s, &cnt, &err), STORE_OK);
    assert_int_equal(cnt, 2);

    assert_int_equal(store_token_delete(f->s, a.id, &err), STORE_OK);
    assert_int_equal(store_token_delete(f->s, a.id, &err), STORE_NOT_FOUND);
    char t3[TOKEN_TEXT_MAX];
    assert_int_equal(store_token_create(f->s, "third", SCOPE_READ, t3, NULL, &err), STORE_OK);
    assert_int_equal(store_token_count(f->s, &cnt, &err), STORE_OK);
    assert_int_equal(cnt, 2);
    assert_int_equal(store_token_create(f->s, "", SCOPE_READ, t1, NULL, &err), STORE_ERROR);
    assert_int_equal(store_token_create(f->s, "x", (enum scope)7, t1, NULL, &err), STORE_ERROR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tokens, storefix_setup_open, storefix_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

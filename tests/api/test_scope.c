/* test_scope.c - token and route scopes (api/scope.h).
 *
 * Scopes are stored in the database and sent by clients as "read" / "write",
 * and an unrecognised scope must never become a granting one: names and
 * parse round-trip; anything else (other case, padding, "none", NULL) parses
 * to SCOPE_NONE; out-of-range values are named "none".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "api/scope.h"

static void test_names_round_trip(void **state)
{
    (void)state;
    assert_string_equal(scope_name(SCOPE_READ), "read");
    assert_string_equal(scope_name(SCOPE_WRITE), "write");
    assert_string_equal(scope_name(SCOPE_NONE), "none");
    assert_int_equal(scope_parse("read"), SCOPE_READ);
    assert_int_equal(scope_parse("write"), SCOPE_WRITE);
    const enum scope all[] = {SCOPE_READ, SCOPE_WRITE};
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(scope_parse(scope_name(all[i])), all[i]);
}

static void test_anything_else_grants_nothing(void **state)
{
    (void)state;
    const char *bad[] = {"",       "none",  "Read", "WRITE", "write ", " read",
                         "readwrite", "admin", "wri", "read\n", "r"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (scope_parse(bad[i]) != SCOPE_NONE)
            fail_msg("'%s' parsed to a granting scope", bad[i]);
    assert_int_equal(scope_parse(NULL), SCOPE_NONE);
    assert_int_equal(scope_parse(scope_name(SCOPE_NONE)), SCOPE_NONE);
}

static void test_out_of_range_is_none(void **state)
{
    (void)state;
    assert_string_equal(scope_name((enum scope)3), "none");
    assert_string_equal(scope_name((enum scope)(-1)), "none");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_round_trip),
        cmocka_unit_test(test_anything_else_grants_nothing),
        cmocka_unit_test(test_out_of_range_is_none),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

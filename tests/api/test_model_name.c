/* test_model_name.c - model names and versions on the wire (api/model_name.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "api/model_name.h"

/* The one parser of version names, for paths, queries and evaluation bodies. */
static void test_model_version_parse(void **state)
{
    (void)state;
    int v = -1;
    assert_true(model_version_parse("latest", &v) && v == 0);
    assert_true(model_version_parse("v3", &v) && v == 3);
    assert_true(model_version_parse("12", &v) && v == 12);
    assert_true(model_version_parse("v2147483647", &v) && v == 2147483647);
    const char *bad[] = {NULL,    "",    "v",   "v0",          "0",
                         "-1",    "v-1", "+3",  " 3",          "3 ",
                         "3x",    "V3",  "vv3", "v2147483648", "99999999999999999999",
                         "Latest"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = -1;
        assert_false(model_version_parse(bad[i], &v));
        assert_int_equal(v, -1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_version_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_problem.c - the table of problem codes (api/problem.h): codes are
 * unique, statuses are 4xx/5xx, out-of-range values answer 500 internal, and
 * the table is exactly the ProblemCode enum of openapi.yaml (the copy compiled
 * into the binary), so a code cannot be added on one side only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "api/problem.h"
#include "util/assets.h"

static void test_codes_unique_and_statuses_errors(void **state)
{
    (void)state;
    for (int i = 0; i < PROBLEM_N; i++) {
        const char *c = problem_code((enum problem)i);
        assert_true(strlen(c) > 0);
        assert_true(problem_status((enum problem)i) >= 400);
        assert_true(problem_status((enum problem)i) <= 599);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(c, problem_code((enum problem)j));
    }
    assert_int_equal(problem_status(PROBLEM_JOB_NOT_FOUND), 404);
    assert_string_equal(problem_code(PROBLEM_JOB_NOT_FOUND), "job_not_found");
    assert_int_equal(problem_status(PROBLEM_VALIDATION_FAILED), 422);
    assert_int_equal(problem_status(PROBLEM_QUEUE_FULL), 429);
    assert_int_equal(problem_status(PROBLEM_N), 500);
    assert_string_equal(problem_code(PROBLEM_N), "internal");
    assert_int_equal(problem_status((enum problem) - 1), 500);
}

/* The words between "enum: [" and "]" after "ProblemCode:" in openapi.yaml. */
static int openapi_codes(char codes[64][40])
{
    const struct asset_file *f = assets_find("openapi.yaml");
    assert_non_null(f);
    const char *p = strstr((const char *)f->data, "\n    ProblemCode:");
    assert_non_null(p);
    p = strstr(p, "enum: [");
    assert_non_null(p);
    p += 7;
    int n = 0;
    while (*p && *p != ']') {
        while (*p == ' ' || *p == ',' || *p == '\n')
            p++;
        size_t k = strcspn(p, ", \n]");
        if (k == 0)
            break;
        assert_true(k < 40 && n < 64);
        memcpy(codes[n], p, k);
        codes[n][k] = '\0';
        n++;
        p += k;
    }
    return n;
}

static void test_table_is_openapi_enum(void **state)
{
    (void)state;
    char codes[64][40];
    int n = openapi_codes(codes);
    assert_int_equal(n, PROBLEM_N);
    for (int i = 0; i < n; i++) {
        int found = 0;
        for (int j = 0; j < PROBLEM_N; j++)
            found += strcmp(codes[i], problem_code((enum problem)j)) == 0;
        if (found != 1)
            fail_msg("openapi.yaml's ProblemCode '%s' is not in api/problem.h", codes[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codes_unique_and_statuses_errors),
        cmocka_unit_test(test_table_is_openapi_enum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

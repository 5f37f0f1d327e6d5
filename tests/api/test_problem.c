/* test_problem.c - the table of problem codes (api/problem.h): codes are
 * unique, statuses are 4xx/5xx, out-of-range values answer 500 internal, and
 * the table is exactly the ProblemCode enum of openapi.yaml (the copy compiled
 * into the binary), so a code cannot be added on one side only; and
 * problem_utf8_fix, which makes a detail quoting any bytes valid UTF-8 (found
 * by tests/fuzz/fuzz_http: a path with %99 in it was answered 500). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>

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

/* s after problem_utf8_fix is want, with n bytes replaced, and jansson takes it. */
static void fixed_is(const char *s, const char *want, size_t n)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s", s);
    assert_int_equal(problem_utf8_fix(buf), n);
    assert_string_equal(buf, want);
    json_t *j = json_string(buf);
    assert_non_null(j);
    json_decref(j);
}

static void test_utf8_fix(void **state)
{
    (void)state;
    fixed_is("", "", 0);
    fixed_is("/v1/jobs/1?x=y", "/v1/jobs/1?x=y", 0);
    fixed_is("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf",
             "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf", 0);
    fixed_is("/v1/mode\x99s", "/v1/mode?s", 1);   /* a lone continuation byte */
    fixed_is("ab\xc3", "ab?", 1);                 /* cut short by the end (vsnprintf) */
    fixed_is("\xe2\x82", "??", 2);
    fixed_is("\xc0\xaf", "??", 2);               /* overlong '/' */
    fixed_is("\xe0\x80\xaf", "???", 3);         /* overlong, 3 bytes */
    fixed_is("\xed\xa0\x80", "???", 3);         /* a surrogate */
    fixed_is("\xf4\x90\x80\x80", "????", 4);   /* above U+10FFFF */
    fixed_is("\xf5\xff\xfe", "???", 3);
    fixed_is("\xc3\xa9\xc3", "\xc3\xa9?", 1);
    json_t *j = json_string("\x99");
    assert_null(j); /* why the fix is needed */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codes_unique_and_statuses_errors),
        cmocka_unit_test(test_table_is_openapi_enum),
        cmocka_unit_test(test_utf8_fix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* specfix.h - helpers of the spec tests (tests/api/test_jobspec.c,
 * test_evalspec.c): JSON test bodies, and the check that a parse reported
 * exactly the expected field errors.
 * Header-only (static inline): tests/support/ .c files are linked into the
 * core tests too, which do not link jansson.
 * Depends on cmocka, jansson.
 */
#ifndef DIMD_TESTS_SPECFIX_H
#define DIMD_TESTS_SPECFIX_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

/* text parsed as JSON (any value); fails the test when it is not JSON. */
static inline json_t *specfix_load(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
    if (!j)
        fail_msg("bad JSON in the test: %s: %s", text, je.text);
    return j;
}

/* Asserts that errors (a parse's {"path","message"} array for the body called
 * `what`) holds exactly n_paths errors, one at each of the n_paths paths in ap
 * (any order), each with a non-empty message. */
static inline void specfix_expect_paths(const json_t *errors, const char *what, int n_paths,
                                        va_list ap)
{
    char *dump = json_dumps(errors, 0);
    if ((int)json_array_size(errors) != n_paths)
        fail_msg("%s: expected %d errors, got %s", what, n_paths, dump);
    for (int i = 0; i < n_paths; i++) {
        const char *want = va_arg(ap, const char *);
        int found = 0;
        size_t k;
        json_t *e;
        json_array_foreach(errors, k, e) {
            const char *path = json_string_value(json_object_get(e, "path"));
            const char *msg = json_string_value(json_object_get(e, "message"));
            assert_non_null(path);
            assert_non_null(msg);
            assert_true(strlen(msg) > 0);
            found += strcmp(path, want) == 0;
        }
        if (found != 1)
            fail_msg("%s: expected one error at %s, got %s", what, want, dump);
    }
    free(dump);
}

#endif

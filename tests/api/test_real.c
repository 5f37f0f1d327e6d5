/* test_real.c - real numbers on the wire (api/real.h).
 *
 * JSON has no NaN or infinities; dimd writes them as "NaN", "Infinity" and
 * "-Infinity". Checked: the text of each non-finite value (NaN of either sign
 * and any payload included), no text for finite values at the edges (zero of
 * both signs, subnormals, the largest double), real_json gives a JSON real
 * with the exact value or the string, and a document holding them dumps as
 * valid JSON that reads back.
 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/real.h"

static double nan_with_payload(void)
{
    uint64_t u = 0xfff0000000000123ull; /* negative, signalling-style payload */
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static void test_nonfinite_texts(void **state)
{
    (void)state;
    assert_string_equal(real_nonfinite_text(NAN), "NaN");
    assert_string_equal(real_nonfinite_text(-NAN), "NaN");
    assert_true(isnan(nan_with_payload()));
    assert_string_equal(real_nonfinite_text(nan_with_payload()), "NaN");
    assert_string_equal(real_nonfinite_text(INFINITY), "Infinity");
    assert_string_equal(real_nonfinite_text(-INFINITY), "-Infinity");
    assert_string_equal(real_nonfinite_text(HUGE_VAL), "Infinity");
}

static void test_finite_values_have_no_text(void **state)
{
    (void)state;
    const double v[] = {0.0, -0.0, 1.5, -1.5, DBL_MAX, -DBL_MAX, DBL_MIN, 4.9e-324, -4.9e-324,
                        1e308, 0.1};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        if (real_nonfinite_text(v[i]))
            fail_msg("%g got the text %s", v[i], real_nonfinite_text(v[i]));
}

static void test_real_json(void **state)
{
    (void)state;
    const double finite[] = {0.0, -2.25, 0.1, DBL_MAX, 4.9e-324};
    for (size_t i = 0; i < sizeof finite / sizeof finite[0]; i++) {
        json_t *j = real_json(finite[i]);
        assert_true(json_is_real(j));
        assert_true(json_real_value(j) == finite[i]);
        json_decref(j);
    }
    const double special[] = {NAN, INFINITY, -INFINITY};
    const char *text[] = {"NaN", "Infinity", "-Infinity"};
    json_t *doc = json_array();
    for (size_t i = 0; i < 3; i++) {
        json_t *j = real_json(special[i]);
        assert_true(json_is_string(j));
        assert_string_equal(json_string_value(j), text[i]);
        json_array_append_new(doc, j);
    }
    json_array_append_new(doc, real_json(0.5));
    /* the document is valid JSON and reads back as written */
    char *s = json_dumps(doc, JSON_REAL_PRECISION(DIMD_REAL_DIGITS));
    assert_non_null(s);
    assert_string_equal(s, "[\"NaN\", \"Infinity\", \"-Infinity\", 0.5]");
    json_t *back = json_loads(s, 0, NULL);
    assert_non_null(back);
    assert_true(json_equal(doc, back));
    json_decref(back);
    free(s);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nonfinite_texts),
        cmocka_unit_test(test_finite_values_have_no_text),
        cmocka_unit_test(test_real_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_floattext.c - float32 to JSON number text.
 *
 * The promise is the round trip: strtof of the text gives back the same bits,
 * for every finite float. Checked on every float whose bit pattern is a
 * multiple of a prime stride (a million spread over all exponents, signs and
 * subnormals) plus the edges, together with: the text is a JSON number that
 * reads as a real (has '.' or 'e'), its digits are those of "%.9g" with
 * trailing zeros dropped, and it fits FLOATTEXT_MAX.
 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/floattext.h"

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* JSON's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int json_number(const char *s)
{
    if (*s == '-')
        s++;
    if (*s == '0')
        s++;
    else if (*s >= '1' && *s <= '9')
        while (*s >= '0' && *s <= '9')
            s++;
    else
        return 0;
    if (*s == '.') {
        s++;
        if (!(*s >= '0' && *s <= '9'))
            return 0;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!(*s >= '0' && *s <= '9'))
            return 0;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == '\0';
}

/* The significant digits of a number text, without sign, point, exponent,
 * leading or trailing zeros ("0.00120" -> "12"). */
static void sig_digits(const char *s, char *out)
{
    char *o = out;
    for (; *s && *s != 'e' && *s != 'E'; s++)
        if (*s >= '0' && *s <= '9' && (o > out || *s != '0'))
            *o++ = *s;
    while (o > out && o[-1] == '0')
        o--;
    *o = '\0';
}

/* Checks one value; returns 0 when it passes, else prints why. */
static int check(float v)
{
    char t[FLOATTEXT_MAX + 8];
    memset(t, 'X', sizeof t);
    size_t n = floattext(v, t);
    if (n == 0 || n >= FLOATTEXT_MAX || strlen(t) != n) {
        print_message("0x%08x: length %zu\n", bits(v), n);
        return 1;
    }
    if (!json_number(t) || !strpbrk(t, ".e")) {
        print_message("0x%08x: \"%s\" is not a JSON real\n", bits(v), t);
        return 1;
    }
    float back = strtof(t, NULL);
    if (bits(back) != bits(v)) {
        print_message("0x%08x: \"%s\" reads back as 0x%08x\n", bits(v), t, bits(back));
        return 1;
    }
    char ref[64], a[32], b[32];
    snprintf(ref, sizeof ref, "%.9g", (double)v);
    sig_digits(t, a);
    sig_digits(ref, b);
    if (strcmp(a, b) != 0) {
        print_message("0x%08x: \"%s\" against %%.9g \"%s\"\n", bits(v), t, ref);
        return 1;
    }
    return 0;
}

static void test_known_texts(void **state)
{
    (void)state;
    static const struct {
        float v;
        const char *text;
    } cases[] = {
        {0.0f, "0.0"},
        {-0.0f, "-0.0"},
        {1.0f, "1.0"},
        {-2.0f, "-2.0"},
        {0.5f, "0.5"},
        {0.1f, "0.100000001"},
        {1e-4f, "9.99999975e-05"},
        {0.00012f, "0.000119999997"},
        {123456789.0f, "123456792.0"},
        {1e9f, "1e+09"},
        {1.5e10f, "1.50000005e+10"},
        {FLT_MAX, "3.40282347e+38"},
        {FLT_MIN, "1.17549435e-38"},
        {FLT_TRUE_MIN, "1.40129846e-45"},
        {-3.25f, "-3.25"},
        {100.0f, "100.0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char t[FLOATTEXT_MAX];
        floattext(cases[i].v, t);
        print_message("%s\n", t);
        assert_string_equal(t, cases[i].text);
    }
}

static void test_not_finite_gives_no_text(void **state)
{
    (void)state;
    char t[FLOATTEXT_MAX] = "junk";
    assert_int_equal(floattext(NAN, t), 0);
    assert_string_equal(t, "");
    assert_int_equal(floattext(INFINITY, t), 0);
    assert_int_equal(floattext(-INFINITY, t), 0);
}

static void test_round_trip_across_all_exponents(void **state)
{
    (void)state;
    int bad = 0;
    long checked = 0;
    /* every 4093rd bit pattern: all exponents, both signs, subnormals */
    for (uint64_t u = 0; u <= 0xffffffffu && bad < 10; u += 4093) {
        float v = from_bits((uint32_t)u);
        if (!isfinite(v))
            continue;
        bad += check(v);
        checked++;
    }
    /* the edges of every binade: its first, second and last values */
    for (uint32_t e = 0; e < 255 && bad < 10; e++)
        for (uint32_t s = 0; s < 2; s++) {
            uint32_t base = s << 31 | e << 23;
            bad += check(from_bits(base)) + check(from_bits(base + 1)) +
                   check(from_bits(base + 0x7fffff));
            checked += 3;
        }
    print_message("%ld values checked, %d failed\n", checked, bad);
    assert_int_equal(bad, 0);
    assert_true(checked > 1000000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_texts),
        cmocka_unit_test(test_not_finite_gives_no_text),
        cmocka_unit_test(test_round_trip_across_all_exponents),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_strbuf.c - the growing text buffer (server/util/strbuf.h).
 *
 * The promise is that the text is never corrupt: after any sequence of
 * appends, data is exactly the concatenation (compared with a reference built
 * by snprintf), NUL-terminated, len is its length and len < cap. Checked
 * across the 4096-byte first capacity and its doublings (appends that end
 * exactly at the edge of the capacity, one byte past it), for one append
 * larger than twice the capacity, for formats that read their arguments
 * (the va_list is restarted after growing), and strbuf_free zeroes the
 * buffer so it can be used again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/strbuf.h"

static void assert_consistent(const struct strbuf *b, const char *want, size_t want_len)
{
    assert_non_null(b->data);
    assert_int_equal(b->len, want_len);
    assert_true(b->len < b->cap);
    assert_int_equal(strlen(b->data), b->len);
    if (memcmp(b->data, want, want_len) != 0) {
        size_t i = 0;
        while (b->data[i] == want[i])
            i++;
        fail_msg("text differs at byte %zu of %zu", i, want_len);
    }
}

static void test_first_append(void **state)
{
    (void)state;
    struct strbuf b = {0};
    assert_null(b.data);
    strbuf_printf(&b, "%s=%d", "x", 42);
    assert_consistent(&b, "x=42", 4);
    assert_int_equal(b.cap, 4096);
    strbuf_printf(&b, "%c%s", '!', "");
    assert_consistent(&b, "x=42!", 5);
    strbuf_free(&b);
    /* an empty first append still gives a terminated text */
    strbuf_printf(&b, "%s", "");
    assert_consistent(&b, "", 0);
    strbuf_free(&b);
}

static void test_many_appends_across_growth(void **state)
{
    (void)state;
    struct strbuf b = {0};
    size_t cap = 1 << 20;
    char *ref = malloc(cap);
    assert_non_null(ref);
    size_t n = 0;
    size_t grows = 0, last_cap = 0;
    for (int i = 0; n < 100000; i++) {
        /* pieces of varying length, with numbers that differ every time */
        char piece[256];
        int k = snprintf(piece, sizeof piece, "line %d: %.*s|%x|%g\n", i, i % 97,
                         "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstu"
                         "vwxyzabcdefghijklmnopqrstuvwxyz",
                         (unsigned)i * 2654435761u, i / 7.0);
        memcpy(ref + n, piece, (size_t)k);
        n += (size_t)k;
        ref[n] = '\0';
        strbuf_printf(&b, "line %d: %.*s|%x|%g\n", i, i % 97,
                      "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstu"
                      "vwxyzabcdefghijklmnopqrstuvwxyz",
                      (unsigned)i * 2654435761u, i / 7.0);
        assert_int_equal(b.len, n);
        if (b.cap != last_cap) {
            /* growth doubles: the capacity is 4096 times a power of two */
            assert_int_equal(b.cap % 4096, 0);
            assert_int_equal((b.cap / 4096) & (b.cap / 4096 - 1), 0);
            assert_true(b.cap > last_cap);
            last_cap = b.cap;
            grows++;
        }
    }
    assert_true(grows >= 5); /* 4096 .. 131072 */
    assert_consistent(&b, ref, n);
    strbuf_free(&b);
    free(ref);
}

static void test_appends_at_the_capacity_edge(void **state)
{
    (void)state;
    char big[4097];
    memset(big, 'a', sizeof big - 1);
    big[4096] = '\0';
    /* 4095 characters and the NUL fill the first 4096 bytes exactly */
    struct strbuf b = {0};
    strbuf_printf(&b, "%.4095s", big);
    assert_int_equal(b.cap, 4096);
    assert_consistent(&b, big, 4095);
    /* one more character does not fit: the buffer doubles and keeps the text */
    strbuf_printf(&b, "%s", "b");
    big[4095] = 'b';
    assert_int_equal(b.cap, 8192);
    assert_consistent(&b, big, 4096);
    strbuf_free(&b);

    /* 4096 characters into an empty buffer: just over the first capacity */
    memset(big, 'c', 4096);
    strbuf_printf(&b, "%s", big);
    assert_consistent(&b, big, 4096);
    assert_int_equal(b.cap, 8192);
    strbuf_free(&b);
}

static void test_one_append_larger_than_twice_the_capacity(void **state)
{
    (void)state;
    const size_t n = 3 * 4096 * 4 + 123; /* > 2x the 8192 a doubling would give */
    char *big = malloc(n + 1), *want = malloc(n + 16);
    assert_non_null(big);
    assert_non_null(want);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('A' + i % 26);
    big[n] = '\0';
    struct strbuf b = {0};
    strbuf_printf(&b, "%s", "head:");
    assert_int_equal(b.cap, 4096);
    strbuf_printf(&b, "%s", big);
    strbuf_printf(&b, ":%d", 7);
    int k = snprintf(want, n + 16, "head:%s:7", big);
    assert_consistent(&b, want, (size_t)k);
    assert_true(b.cap >= (size_t)k + 1);
    assert_true(b.cap <= 2 * ((size_t)k + 1) + 4096); /* grown to fit, not far beyond */
    strbuf_free(&b);

    /* the same as a first append */
    strbuf_printf(&b, "%s", big);
    assert_consistent(&b, big, n);
    strbuf_free(&b);
    free(big);
    free(want);
}

static void test_free_zeroes_and_allows_reuse(void **state)
{
    (void)state;
    struct strbuf b = {0};
    strbuf_printf(&b, "%0*d", 10000, 5);
    assert_int_equal(b.len, 10000);
    strbuf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    /* freeing a zeroed buffer is harmless */
    strbuf_free(&b);
    assert_null(b.data);
    /* and it starts over */
    strbuf_printf(&b, "again %d", 2);
    assert_consistent(&b, "again 2", 7);
    assert_int_equal(b.cap, 4096);
    strbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_append),
        cmocka_unit_test(test_many_appends_across_growth),
        cmocka_unit_test(test_appends_at_the_capacity_edge),
        cmocka_unit_test(test_one_append_larger_than_twice_the_capacity),
        cmocka_unit_test(test_free_zeroes_and_allows_reuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

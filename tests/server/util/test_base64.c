/* test_base64.c - util/base64: decoding what encode requests send as images.
 *
 * RFC 4648 section 10's vectors, padded and not; every class of input the
 * decoder refuses, each with a message naming the character and its offset;
 * the leniencies it keeps on purpose (URL-safe symbols, whitespace, padding
 * missing or excessive, unused low bits); a round trip of every length 0..300
 * through a small reference encoder written here; the output bound and data
 * URL prefixes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/base64.h"

static const char STD[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Reference encoder (RFC 4648 section 4, or 5 with URL): into out, NUL-terminated;
 * the length. */
static size_t ref_encode(const unsigned char *p, size_t n, const char *alphabet, int pad,
                         char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        for (int k = 3; k >= 0; k--)
            out[o++] = alphabet[(v >> (6 * k)) & 63];
    }
    if (n - i == 1) {
        out[o++] = alphabet[p[i] >> 2];
        out[o++] = alphabet[(p[i] & 3) << 4];
        if (pad)
            out[o++] = '=', out[o++] = '=';
    } else if (n - i == 2) {
        out[o++] = alphabet[p[i] >> 2];
        out[o++] = alphabet[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
        out[o++] = alphabet[(p[i + 1] & 15) << 2];
        if (pad)
            out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

/* Decodes NUL-terminated s, expecting success with exactly want (wn bytes). */
static void decodes_to(const char *s, const void *want, size_t wn)
{
    unsigned char *out = NULL;
    size_t n = 99;
    struct dim_err err = {0};
    int rc = base64_decode(s, strlen(s), &out, &n, &err);
    if (rc != 0)
        fail_msg("'%s' refused: %s", s, err.msg);
    assert_non_null(out);
    if (n != wn)
        fail_msg("'%s' gave %zu bytes, want %zu", s, n, wn);
    assert_memory_equal(out, want, wn);
    assert_true(n <= base64_decoded_max(strlen(s)));
    free(out);
}

/* Decodes s[0..len), expecting DIM_EFORMAT with a message containing needle. */
static void refused(const char *s, size_t len, const char *needle)
{
    unsigned char *out = (unsigned char *)"x";
    size_t n = 99;
    struct dim_err err = {0};
    int rc = base64_decode(s, len, &out, &n, &err);
    if (rc != DIM_EFORMAT)
        fail_msg("'%.*s' gave %d, want DIM_EFORMAT", (int)len, s, rc);
    assert_null(out);
    assert_int_equal(n, 0);
    if (!strstr(err.msg, needle))
        fail_msg("'%.*s': message '%s' does not contain '%s'", (int)len, s, err.msg, needle);
}

static void test_rfc4648_vectors(void **state)
{
    (void)state;
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const padded[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                         "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    static const char *const unpadded[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        decodes_to(padded[i], plain[i], strlen(plain[i]));
        decodes_to(unpadded[i], plain[i], strlen(plain[i]));
    }
}

static void test_refuses_characters_outside_the_alphabet(void **state)
{
    (void)state;
    refused("Zm9v*mFy", 8, "character '*' at offset 4 is not base64");
    refused("Zm9v.", 5, "'.' at offset 4");
    refused("Zm9v YmFy!", 10, "'!' at offset 9");
    refused("Zm:v", 4, "':' at offset 2");
    refused("\xffZm9v", 5, "byte 0xff at offset 0 is not base64");
    refused("Zm\0v", 4, "byte 0x00 at offset 2");       /* a NUL inside the length */
    refused("Zm9v\v", 5, "byte 0x0b at offset 4");      /* vertical tab is not whitespace here */
    refused("Zm9v\f", 5, "byte 0x0c at offset 4");      /* nor form feed */
    refused("data:image/png;base64,Zm9v", 26, "':' at offset 4"); /* prefixes are the caller's */
}

static void test_refuses_symbols_after_padding(void **state)
{
    (void)state;
    refused("Zg==Zg==", 8, "'Z' at offset 4 follows the '=' padding");
    refused("=Zm9v", 5, "'Z' at offset 1 follows");
    refused("Zm8=\n Zm8=", 10, "'Z' at offset 6 follows");
    refused("Zg=-", 4, "'-' at offset 3 follows"); /* a URL-safe symbol after '=' too */
}

static void test_accepts_url_safe_whitespace_and_loose_padding(void **state)
{
    (void)state;
    const unsigned char fb[] = {0xfb, 0xff, 0xbf};
    decodes_to("+/+/", fb, 3);
    decodes_to("-_-_", fb, 3);
    decodes_to("+_-/", fb, 3); /* the two alphabets mixed */
    decodes_to(" Zm\r\n9v\tYm Fy ", "foobar", 6);
    decodes_to("Zg", "f", 1);
    decodes_to("Zg=", "f", 1);
    decodes_to("Zg=====", "f", 1);
    decodes_to("Zg= =\n", "f", 1);
    decodes_to("Zm9v=", "foo", 3); /* padding after a full group */
    decodes_to("====", "", 0);
    decodes_to(" \r\n\t", "", 0);
    decodes_to("Z", "", 0);        /* a lone trailing symbol gives nothing */
    decodes_to("Zm9vY", "foo", 3);
    decodes_to("Zh==", "f", 1);    /* unused low bits (here 0b0001) are dropped */
    decodes_to("Zm9=", "fo", 2);   /* 'Zm9' has 2 unused bits set */
}

static void test_round_trip_lengths_0_to_300(void **state)
{
    (void)state;
    unsigned char data[300];
    char text[512], spaced[1024];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof data; i++) {
        x = x * 1103515245u + 12345u;
        data[i] = (unsigned char)(x >> 16);
    }
    data[0] = 0xff; /* the top symbols (62, 63) appear */
    data[1] = 0xff;
    for (size_t n = 0; n <= sizeof data; n++) {
        for (int variant = 0; variant < 4; variant++) {
            size_t tn = ref_encode(data, n, variant & 1 ? URL : STD, !(variant & 2), text);
            decodes_to(text, data, n);
            /* and with a line break every 76 characters, MIME style */
            size_t s = 0;
            for (size_t k = 0; k < tn; k++) {
                if (k && k % 76 == 0)
                    spaced[s++] = '\r', spaced[s++] = '\n';
                spaced[s++] = text[k];
            }
            spaced[s] = '\0';
            decodes_to(spaced, data, n);
        }
    }
}

static void test_reads_only_len_characters(void **state)
{
    (void)state;
    const char s[] = "Zm9vYmFy*not read";
    unsigned char *out = NULL;
    size_t n = 0;
    assert_int_equal(base64_decode(s, 8, &out, &n, NULL), 0);
    assert_int_equal(n, 6);
    assert_memory_equal(out, "foobar", 6);
    free(out);
    /* length 0 of a non-empty string: an empty (but allocated) result */
    assert_int_equal(base64_decode(s, 0, &out, &n, NULL), 0);
    assert_non_null(out);
    assert_int_equal(n, 0);
    free(out);
    /* a refused input with err NULL */
    assert_int_equal(base64_decode("*", 1, &out, &n, NULL), DIM_EFORMAT);
    assert_null(out);
}

static void test_output_bound(void **state)
{
    (void)state;
    assert_int_equal(base64_decoded_max(0), 3);
    assert_int_equal(base64_decoded_max(3), 3);
    assert_int_equal(base64_decoded_max(4), 6);
    assert_int_equal(base64_decoded_max(8), 9);
    /* the densest input, all symbols, never reaches the bound's slack */
    char s[64];
    for (size_t len = 0; len < sizeof s; len++) {
        memset(s, 'A', len);
        unsigned char *out = NULL;
        size_t n = 0;
        assert_int_equal(base64_decode(s, len, &out, &n, NULL), 0);
        assert_int_equal(n, len * 6 / 8);
        assert_true(n <= base64_decoded_max(len));
        free(out);
    }
    /* a large input: 3 MiB of output in one buffer */
    const size_t big = 4u << 20;
    char *t = malloc(big);
    assert_non_null(t);
    memset(t, '/', big);
    unsigned char *out = NULL;
    size_t n = 0;
    assert_int_equal(base64_decode(t, big, &out, &n, NULL), 0);
    assert_int_equal(n, big / 4 * 3);
    assert_int_equal(out[0], 0xff);
    assert_int_equal(out[n - 1], 0xff);
    free(out);
    free(t);
}

static void test_data_url_prefix(void **state)
{
    (void)state;
    const char *u = "data:image/png;base64,Zm9v";
    assert_int_equal(base64_data_url_prefix(u, strlen(u)), 22);
    assert_int_equal(base64_data_url_prefix("data:,", 6), 6);
    assert_int_equal(base64_data_url_prefix("data:", 5), 0);   /* just "data:" is not one */
    assert_int_equal(base64_data_url_prefix("data:x", 6), 0);  /* no comma */
    assert_int_equal(base64_data_url_prefix(u, 21), 0);        /* the comma beyond len */
    assert_int_equal(base64_data_url_prefix("DATA:,Zm9v", 10), 0); /* case-sensitive */
    assert_int_equal(base64_data_url_prefix("Zm9v", 4), 0);
    assert_int_equal(base64_data_url_prefix("", 0), 0);
    assert_int_equal(base64_data_url_prefix("data:a,b,c", 10), 7); /* the first comma */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_vectors),
        cmocka_unit_test(test_refuses_characters_outside_the_alphabet),
        cmocka_unit_test(test_refuses_symbols_after_padding),
        cmocka_unit_test(test_accepts_url_safe_whitespace_and_loose_padding),
        cmocka_unit_test(test_round_trip_lengths_0_to_300),
        cmocka_unit_test(test_reads_only_len_characters),
        cmocka_unit_test(test_output_bound),
        cmocka_unit_test(test_data_url_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

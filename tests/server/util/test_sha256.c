/* test_sha256.c - SHA-256 (util/sha256.h): the FIPS 180-2 vectors, also fed
 * in pieces. */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/sha256.h"

static void test_sha256_fips_vectors(void **state)
{
    (void)state;
    char hex[65];
    sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha256_hex(m448, strlen(m448), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

    /* One million 'a', fed in uneven pieces through the streaming API. */
    char a[1000];
    memset(a, 'a', sizeof(a));
    struct sha256_ctx c;
    sha256_init(&c);
    size_t left = 1000000, piece = 1;
    while (left > 0) {
        size_t k = piece < left ? piece : left;
        sha256_update(&c, a, k);
        left -= k;
        piece = piece % 987 + 13; /* 1..999 */
    }
    unsigned char d[32];
    sha256_final(&c, d);
    static const unsigned char want[32] = {0xcd, 0xc7, 0x6e, 0x5c, 0x99, 0x14, 0xfb, 0x92,
                                           0x81, 0xa1, 0xc7, 0xe2, 0x84, 0xd7, 0x3e, 0x67,
                                           0xf1, 0x80, 0x9a, 0x48, 0xa4, 0x97, 0x20, 0x0e,
                                           0x04, 0x6d, 0x39, 0xcc, 0xc7, 0x11, 0x2c, 0xd0};
    assert_memory_equal(d, want, 32);

    /* Lengths around the 55/56/64-byte padding edges: streaming == one-shot. */
    for (size_t n = 50; n <= 130; n++) {
        char one[65], two[65];
        sha256_hex(a, n, one);
        sha256_init(&c);
        sha256_update(&c, a, n / 3);
        sha256_update(&c, a, n - n / 3);
        sha256_final(&c, d);
        for (int i = 0; i < 32; i++)
            snprintf(two + 2 * i, 3, "%02x", d[i]);
        assert_string_equal(one, two);
    }
}

/* The SHA-extension block function (where the processor has it) against the
 * portable one: random bytes of every length to 300 and a few long ones, in
 * one piece and in pieces. On a processor without the extensions both runs
 * take the portable path and the FIPS vectors above are the check. */
static void test_sha256_shani_equals_portable(void **state)
{
    (void)state;
    enum { N = 100000 };
    unsigned char *buf = malloc(N);
    assert_non_null(buf);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        buf[i] = (unsigned char)x;
    }
    static const size_t longs[] = {4096, 65536 + 17, N};
    for (size_t k = 0; k < 301 + 3; k++) {
        size_t n = k <= 300 ? k : longs[k - 301];
        const unsigned char *p = buf + (k % 7); /* unaligned starts too */
        if (n + (k % 7) > N)
            p = buf;
        char fast[65], slow[65];
        sha256_hex(p, n, fast);
        bool had = sha256_force_portable(true);
        assert_string_equal(sha256_impl(), "portable");
        sha256_hex(p, n, slow);
        sha256_force_portable(false);
        assert_int_equal(strcmp(sha256_impl(), "sha-ni") == 0, had);
        assert_string_equal(fast, slow);
    }
    /* Streaming in pieces that cross block edges, on the default path. */
    struct sha256_ctx c;
    unsigned char d[32];
    char one[65], two[65];
    sha256_hex(buf, N, one);
    sha256_init(&c);
    for (size_t off = 0, piece = 1; off < N; off += piece, piece = piece * 7 % 1000 + 1)
        sha256_update(&c, buf + off, piece < N - off ? piece : N - off);
    sha256_final(&c, d);
    for (int i = 0; i < 32; i++)
        snprintf(two + 2 * i, 3, "%02x", d[i]);
    assert_string_equal(one, two);
    printf("sha256 block function: %s\n", sha256_impl());
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_fips_vectors),
        cmocka_unit_test(test_sha256_shani_equals_portable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

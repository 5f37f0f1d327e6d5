/* test_sha256.c - SHA-256 (util/sha256.h): the FIPS 180-2 vectors, also fed
 * in pieces. */
#include <setjmp.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_fips_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

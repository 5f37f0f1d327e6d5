/* base64.c - base64 decoding, standard and URL-safe alphabets (util/base64.h). */
#include "util/base64.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The value of a base64 symbol (either alphabet), or -1. */
static int base64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

size_t base64_decoded_max(size_t len)
{
    return len / 4 * 3 + 3;
}

size_t base64_data_url_prefix(const char *s, size_t len)
{
    if (len <= 5 || strncmp(s, "data:", 5) != 0)
        return 0;
    const char *comma = memchr(s, ',', len);
    return comma ? (size_t)(comma + 1 - s) : 0;
}

int base64_decode(const char *s, size_t len, unsigned char **out, size_t *out_len,
                  struct dim_err *err)
{
    *out = NULL;
    *out_len = 0;
    unsigned char *o = malloc(base64_decoded_max(len));
    if (!o)
        return dim_fail(err, DIM_ENOMEM, "out of memory for %zu bytes of base64",
                        base64_decoded_max(len));
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0;
    bool pad = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
            continue;
        if (c == '=') {
            pad = true;
            continue;
        }
        int v = base64_value(c);
        if (v < 0 || pad) {
            free(o);
            if (v < 0 && c >= 0x20 && c < 0x7f)
                return dim_fail(err, DIM_EFORMAT, "character '%c' at offset %zu is not base64",
                                c, i);
            if (v < 0)
                return dim_fail(err, DIM_EFORMAT, "byte 0x%02x at offset %zu is not base64", c, i);
            return dim_fail(err, DIM_EFORMAT, "'%c' at offset %zu follows the '=' padding", c, i);
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[n++] = (unsigned char)(acc >> bits);
        }
    }
    *out = o;
    *out_len = n;
    return 0;
}

/* floattext.c - float32 values as JSON number text (see floattext.h).
 *
 * The value, widened to double, is scaled by a power of ten so that its 9
 * significant digits are the integer part, and rounded. The scaling errs by at
 * most a few double ulps (1e-16 of the value), far below the half unit of the
 * 9th digit that the round trip allows, so the digits need no exact big-number
 * arithmetic. */
#include "util/floattext.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* 10^(i - 31), i = 0..85: scale factors 10^(8 - k) for decimal exponents k of
 * float32 values, k in [-45, 38]. */
static const double pow10_tab[] = {
    1e-31, 1e-30, 1e-29, 1e-28, 1e-27, 1e-26, 1e-25, 1e-24, 1e-23, 1e-22, 1e-21, 1e-20, 1e-19,
    1e-18, 1e-17, 1e-16, 1e-15, 1e-14, 1e-13, 1e-12, 1e-11, 1e-10, 1e-9,  1e-8,  1e-7,  1e-6,
    1e-5,  1e-4,  1e-3,  1e-2,  1e-1,  1e0,   1e1,   1e2,   1e3,   1e4,   1e5,   1e6,   1e7,
    1e8,   1e9,   1e10,  1e11,  1e12,  1e13,  1e14,  1e15,  1e16,  1e17,  1e18,  1e19,  1e20,
    1e21,  1e22,  1e23,  1e24,  1e25,  1e26,  1e27,  1e28,  1e29,  1e30,  1e31,  1e32,  1e33,
    1e34,  1e35,  1e36,  1e37,  1e38,  1e39,  1e40,  1e41,  1e42,  1e43,  1e44,  1e45,  1e46,
    1e47,  1e48,  1e49,  1e50,  1e51,  1e52,  1e53,  1e54};
#define POW10_MIN (-31)
#define POW10_N ((int)(sizeof pow10_tab / sizeof pow10_tab[0]))

static double pow10_of(int e)
{
    int i = e - POW10_MIN;
    return i < 0 ? 0 : i >= POW10_N ? pow10_tab[POW10_N - 1] : pow10_tab[i];
}

/* The 9 significant digits of d > 0 as an integer in [1e8, 1e9) and the
 * decimal exponent of the first one. */
static uint32_t digits9(double d, int *exp10)
{
    int k = (int)floor(log10(d));
    for (int tries = 0; tries < 3; tries++) {
        double n = nearbyint(d * pow10_of(8 - k));
        if (n >= 1e9) {
            k++; /* log10 fell short, or rounding carried into a 10th digit */
            continue;
        }
        if (n < 1e8) {
            k--;
            continue;
        }
        *exp10 = k;
        return (uint32_t)n;
    }
    /* unreachable for finite nonzero float32; keep the last scaling */
    double n = nearbyint(d * pow10_of(8 - k));
    *exp10 = k;
    return n >= 1e9 ? 999999999u : n < 1e8 ? 100000000u : (uint32_t)n;
}

size_t floattext(float v, char out[FLOATTEXT_MAX])
{
    char *p = out;
    if (!isfinite(v)) {
        out[0] = '\0';
        return 0;
    }
    if (signbit(v))
        *p++ = '-';
    if (v == 0) {
        memcpy(p, "0.0", 4);
        return (size_t)(p - out) + 3;
    }
    int k;
    uint32_t n = digits9(fabs((double)v), &k);
    char dig[9];
    for (int i = 8; i >= 0; i--) {
        dig[i] = (char)('0' + n % 10);
        n /= 10;
    }
    int nd = 9;
    while (nd > 1 && dig[nd - 1] == '0')
        nd--;
    if (k < -4 || k >= 9) { /* d.ddde-XX */
        *p++ = dig[0];
        if (nd > 1) {
            *p++ = '.';
            memcpy(p, dig + 1, (size_t)nd - 1);
            p += nd - 1;
        }
        *p++ = 'e';
        *p++ = k < 0 ? '-' : '+';
        int a = k < 0 ? -k : k;
        *p++ = (char)('0' + a / 10);
        *p++ = (char)('0' + a % 10);
    } else if (k >= 0) { /* ddd.ddd, at least one digit after the point */
        for (int i = 0; i <= k; i++)
            *p++ = i < nd ? dig[i] : '0';
        *p++ = '.';
        if (nd > k + 1) {
            memcpy(p, dig + k + 1, (size_t)(nd - k - 1));
            p += nd - k - 1;
        } else {
            *p++ = '0';
        }
    } else { /* 0.000ddd */
        *p++ = '0';
        *p++ = '.';
        for (int i = 0; i < -k - 1; i++)
            *p++ = '0';
        memcpy(p, dig, (size_t)nd);
        p += nd;
    }
    *p = '\0';
    return (size_t)(p - out);
}

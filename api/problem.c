/* problem.c - the table of problem codes (see problem.h). */
#include "api/problem.h"

#include <stddef.h>

static const struct {
    int status;
    const char *code;
} problems[PROBLEM_N] = {
#define PROBLEM_ROW(name, status, code) {status, code},
    PROBLEM_LIST(PROBLEM_ROW)
#undef PROBLEM_ROW
};

const char *problem_code(enum problem p)
{
    return (unsigned)p < PROBLEM_N ? problems[p].code : "internal";
}

int problem_status(enum problem p)
{
    return (unsigned)p < PROBLEM_N ? problems[p].status : 500;
}

/* The length of the well-formed UTF-8 sequence at s (1 to 4), or 0. */
static size_t utf8_seq(const unsigned char *s)
{
    const unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    unsigned char lo = 0x80, hi = 0xBF; /* bounds of the second byte */
    size_t n;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* no overlong forms */
        else if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F; /* nothing above U+10FFFF */
    } else {
        return 0;
    }
    if (s[1] < lo || s[1] > hi)
        return 0; /* also the NUL at the end */
    for (size_t k = 2; k < n; k++)
        if (s[k] < 0x80 || s[k] > 0xBF)
            return 0;
    return n;
}

size_t problem_utf8_fix(char *s)
{
    size_t fixed = 0;
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t n = utf8_seq(p);
        if (n == 0) {
            *p++ = '?';
            fixed++;
        } else {
            p += n;
        }
    }
    return fixed;
}

/* strbuf.c - a growing text buffer (see strbuf.h). */
#include "util/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void strbuf_printf(struct strbuf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        size_t room = b->cap - b->len;
        va_start(ap, fmt);
        int k = vsnprintf(b->data ? b->data + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (k < 0)
            return;
        if ((size_t)k < room) {
            b->len += (size_t)k;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap - b->len <= (size_t)k)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown)
            return;
        b->data = grown;
        b->cap = cap;
    }
}

void strbuf_free(struct strbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

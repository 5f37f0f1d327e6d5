/* strbuf.h - a growing text buffer for replies built piece by piece
 * (Prometheus text, Server-Sent Events, CSV).
 * Zero-initialise a struct strbuf to start; strbuf_free releases it. When
 * memory runs out, strbuf_printf leaves the buffer as it was (the text is then
 * short, never corrupt): callers that must know compare len before and after.
 * Depends on libc only.
 */
#ifndef DIMD_UTIL_STRBUF_H
#define DIMD_UTIL_STRBUF_H

#include <stddef.h>

struct strbuf {
    char *data; /* NUL-terminated once anything was written; NULL before */
    size_t len, cap;
};

/* Appends printf-formatted text. */
void strbuf_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Frees the text and zeroes b. */
void strbuf_free(struct strbuf *b);

#endif

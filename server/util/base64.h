/* base64.h - decoding base64 text from request bodies (the "images" of an encode
 * request's JSON).
 *
 * What base64_decode accepts, exactly:
 *   alphabet    A-Z a-z 0-9 with value 62 written '+' or '-' and value 63 '/'
 *               or '_': the standard (RFC 4648 section 4) and URL-safe
 *               (section 5) alphabets, mixed freely;
 *   whitespace  ' ', '\t', '\r' and '\n' anywhere, ignored;
 *   padding     optional: any number of '=' (none, too few, too many), but
 *               once a '=' is seen only '=' and whitespace may follow;
 *   the end     any number of symbols: each 4 give 3 bytes, a trailing 2 give
 *               1 byte, a trailing 3 give 2 bytes, a lone trailing 1 gives
 *               nothing; the unused low bits of the last symbol are dropped
 *               whatever they are (not checked to be 0).
 * Anything else (another character, a symbol after '=') is refused.
 * Depends on libc and base/error.h only. No globals; thread-safe.
 */
#ifndef DIMD_UTIL_BASE64_H
#define DIMD_UTIL_BASE64_H

#include <stddef.h>

#include "base/error.h"

/* The most bytes base64_decode writes for len characters of input
 * (len / 4 * 3 + 3, which holds for any mix of symbols, padding and whitespace). */
size_t base64_decoded_max(size_t len);

/* Decodes s[0..len) as described above into a malloc'd buffer: *out (the
 * caller frees it, even when *out_len is 0) holding *out_len bytes. s needs no
 * NUL. Returns 0, or DIM_EFORMAT naming the first offending character and its
 * offset ("character '*' at offset 12 is not base64", "'Q' at offset 8 follows
 * the '=' padding"), or DIM_ENOMEM; on failure *out is NULL and *out_len 0. */
int base64_decode(const char *s, size_t len, unsigned char **out, size_t *out_len,
                  struct dim_err *err);

/* When s[0..len) is a data URL ("data:" and more than that, e.g.
 * "data:image/png;base64,iVBO..."), the number of characters up to and
 * including its first comma, which base64_decode should skip; otherwise 0
 * (also for "data:" without a comma). */
size_t base64_data_url_prefix(const char *s, size_t len);

#endif

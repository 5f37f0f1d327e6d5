/* multipart.h - multipart/form-data request bodies (RFC 7578 over RFC 2046),
 * as encode requests send images: the boundary from the Content-Type, then the
 * parts one at a time, in place.
 *
 * What is accepted, exactly (the rules dimd has always applied):
 *   boundary   the first "boundary=" in the Content-Type, in any case, even
 *              inside another parameter's name; quoted ("...", up to the next
 *              quote or the end) or not (up to ';', ' ' or the end); 1 to 70
 *              characters.
 *   delimiter  "--" boundary, found anywhere in the body - not only at the
 *              start of a line - so a part's data must not contain it (RFC
 *              2046 asks the same of senders). Anything before the first one
 *              (the preamble) and after the closing "--" boundary "--" (the
 *              epilogue) is ignored; so is the rest of a delimiter's line.
 *   headers    from the delimiter to the first blank line ("\r\n\r\n"), at
 *              most MULTIPART_HEADERS_MAX bytes; none is required and none is
 *              refused. Content-Disposition's name and filename (quoted, no
 *              backslash escapes, or bare) and Content-Type are picked out.
 *   data       from the blank line to the next delimiter, less one "\r\n"
 *              just before the delimiter when there is one.
 * Parts are pointers into the body: nothing is allocated or copied, and
 * nothing past the body's last byte is read.
 * Depends on libc and base/error.h only. No globals; an iterator belongs to
 * one thread at a time.
 */
#ifndef DIMD_UTIL_MULTIPART_H
#define DIMD_UTIL_MULTIPART_H

#include <stddef.h>

#include "base/error.h"

#define MULTIPART_BOUNDARY_MAX 70   /* characters (RFC 2046) */
#define MULTIPART_HEADERS_MAX 8192  /* bytes of one part's headers, without the blank line */

/* Some bytes of the body: p is NULL (len 0) when absent. */
struct multipart_text {
    const char *p;
    size_t len;
};

/* One part. Every pointer is into the body given to multipart_init. */
struct multipart_part {
    const char *data; /* the part's bytes (not NUL-terminated) */
    size_t len;
    struct multipart_text headers;      /* the raw header block */
    struct multipart_text name;         /* Content-Disposition's name */
    struct multipart_text filename;     /* Content-Disposition's filename */
    struct multipart_text content_type; /* the Content-Type header's value */
};

/* An iteration over a body's parts: fill with multipart_init. */
struct multipart {
    const char *body, *end;
    const char *pos;   /* the next delimiter; NULL before the first is looked for */
    char delim[MULTIPART_BOUNDARY_MAX + 3]; /* "--" boundary, NUL-terminated */
    size_t delim_len;
    size_t index;      /* parts returned so far */
    int status;        /* 1 while parts may follow, else what multipart_next returns again */
    struct dim_err err; /* the message of a failed status */
};

/* The boundary parameter of content_type (a Content-Type header value, NUL-
 * terminated) into out, NUL-terminated, without the leading "--". Returns 0,
 * or DIM_EFORMAT when there is none, it is empty or longer than
 * MULTIPART_BOUNDARY_MAX (the message says which). */
int multipart_boundary(const char *content_type, char out[MULTIPART_BOUNDARY_MAX + 1],
                       struct dim_err *err);

/* Starts an iteration over body[0..len) (which must outlive it; may be NULL
 * when len is 0) with boundary (as multipart_boundary gives it; at most
 * MULTIPART_BOUNDARY_MAX characters, longer ones are cut). */
void multipart_init(struct multipart *mp, const char *boundary, const void *body, size_t len);

/* The next part into *part. Returns 1 with a part; 0 at the closing delimiter
 * (the end); DIM_EFORMAT when the body has no delimiter at all, a part's
 * headers never end, or no delimiter follows a part's data (a truncated body,
 * or one without its closing delimiter); DIM_ELIMIT when a part's headers are
 * longer than MULTIPART_HEADERS_MAX. Messages name the part by its index
 * (from 0). After 0 or an error, every later call returns the same again
 * (with the same message). */
int multipart_next(struct multipart *mp, struct multipart_part *part, struct dim_err *err);

#endif

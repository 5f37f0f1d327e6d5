/* multipart.c - multipart/form-data bodies, parsed in place (util/multipart.h). */
#define _GNU_SOURCE /* memmem, strcasestr */
#include "util/multipart.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

int multipart_boundary(const char *content_type, char out[MULTIPART_BOUNDARY_MAX + 1],
                       struct dim_err *err)
{
    out[0] = '\0';
    const char *p = strcasestr(content_type, "boundary=");
    if (!p)
        return dim_fail(err, DIM_EFORMAT, "no boundary parameter in '%.80s'", content_type);
    p += 9;
    bool quoted = *p == '"';
    if (quoted)
        p++;
    size_t n = 0;
    while (p[n] && (quoted ? p[n] != '"' : (p[n] != ';' && p[n] != ' ')))
        n++;
    if (n == 0)
        return dim_fail(err, DIM_EFORMAT, "the boundary parameter is empty");
    if (n > MULTIPART_BOUNDARY_MAX)
        return dim_fail(err, DIM_EFORMAT, "the boundary has %zu characters, more than %d", n,
                        MULTIPART_BOUNDARY_MAX);
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

void multipart_init(struct multipart *mp, const char *boundary, const void *body, size_t len)
{
    memset(mp, 0, sizeof *mp);
    mp->body = body ? body : "";
    mp->end = mp->body + (body ? len : 0);
    size_t n = strnlen(boundary, MULTIPART_BOUNDARY_MAX);
    mp->delim[0] = mp->delim[1] = '-';
    memcpy(mp->delim + 2, boundary, n);
    mp->delim[n + 2] = '\0';
    mp->delim_len = n + 2;
    mp->status = 1;
}

/* The first s[0..n) in [p, end), or NULL. */
static const char *multipart_find(const char *p, const char *end, const char *s, size_t n)
{
    return p < end ? memmem(p, (size_t)(end - p), s, n) : NULL;
}

static bool multipart_is(const char *p, size_t n, const char *name)
{
    return n == strlen(name) && strncasecmp(p, name, n) == 0;
}

static const char *multipart_skip_blanks(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/* The name and filename parameters of a Content-Disposition value [p, end). */
static void multipart_disposition(const char *p, const char *end, struct multipart_part *part)
{
    while (p < end && *p != ';')
        p++; /* the disposition type, form-data */
    while (p < end) {
        p = multipart_skip_blanks(p + 1, end);
        const char *key = p;
        while (p < end && *p != '=' && *p != ';')
            p++;
        const char *key_end = p;
        while (key_end > key && (key_end[-1] == ' ' || key_end[-1] == '\t'))
            key_end--;
        struct multipart_text v = {NULL, 0};
        if (p < end && *p == '=') {
            p = multipart_skip_blanks(p + 1, end);
            bool quoted = p < end && *p == '"';
            v.p = p + quoted;
            p = v.p;
            while (p < end && (quoted ? *p != '"' : *p != ';'))
                p++;
            const char *v_end = p;
            while (!quoted && v_end > v.p && (v_end[-1] == ' ' || v_end[-1] == '\t'))
                v_end--;
            v.len = (size_t)(v_end - v.p);
            while (p < end && *p != ';')
                p++;
        }
        if (multipart_is(key, (size_t)(key_end - key), "name"))
            part->name = v;
        else if (multipart_is(key, (size_t)(key_end - key), "filename"))
            part->filename = v;
    }
}

/* Picks Content-Disposition and Content-Type out of a header block [p, end);
 * its first line is the rest of the delimiter's line. */
static void multipart_headers(const char *p, const char *end, struct multipart_part *part)
{
    for (bool first = true; p < end; first = false) {
        const char *eol = multipart_find(p, end, "\r\n", 2);
        if (!eol)
            eol = end;
        const char *colon = first ? NULL : memchr(p, ':', (size_t)(eol - p));
        if (colon) {
            const char *v = multipart_skip_blanks(colon + 1, eol), *v_end = eol;
            while (v_end > v && (v_end[-1] == ' ' || v_end[-1] == '\t'))
                v_end--;
            if (multipart_is(p, (size_t)(colon - p), "Content-Disposition"))
                multipart_disposition(v, v_end, part);
            else if (multipart_is(p, (size_t)(colon - p), "Content-Type"))
                part->content_type = (struct multipart_text){v, (size_t)(v_end - v)};
        }
        p = eol < end ? eol + 2 : end;
    }
}

/* Ends the iteration with status rc (0 or an error), returning it. */
static int multipart_stop(struct multipart *mp, int rc, struct dim_err *err)
{
    mp->status = rc;
    if (err)
        *err = mp->err;
    return rc;
}

int multipart_next(struct multipart *mp, struct multipart_part *part, struct dim_err *err)
{
    memset(part, 0, sizeof *part);
    if (mp->status != 1)
        return multipart_stop(mp, mp->status, err);
    const size_t bl = mp->delim_len;
    if (!mp->pos) {
        mp->pos = multipart_find(mp->body, mp->end, mp->delim, bl);
        if (!mp->pos)
            return multipart_stop(mp, dim_fail(&mp->err, DIM_EFORMAT,
                                               "no delimiter '%s' in the %zu-byte body", mp->delim,
                                               (size_t)(mp->end - mp->body)),
                                  err);
    }
    const char *after = mp->pos + bl;
    if (mp->end - after >= 2 && after[0] == '-' && after[1] == '-') {
        dim_err_clear(&mp->err);
        return multipart_stop(mp, 0, err); /* the closing delimiter */
    }
    /* the blank line after the headers, looked for within the limit only */
    const char *limit = (size_t)(mp->end - after) > MULTIPART_HEADERS_MAX + 4
                            ? after + MULTIPART_HEADERS_MAX + 4
                            : mp->end;
    const char *hdr_end = multipart_find(after, limit, "\r\n\r\n", 4);
    if (!hdr_end && limit < mp->end)
        return multipart_stop(mp, dim_fail(&mp->err, DIM_ELIMIT,
                                           "part %zu: headers longer than %d bytes", mp->index,
                                           MULTIPART_HEADERS_MAX),
                              err);
    if (!hdr_end)
        return multipart_stop(mp, dim_fail(&mp->err, DIM_EFORMAT,
                                           "part %zu: the headers never end (no blank line "
                                           "before the body does)",
                                           mp->index),
                              err);
    const char *content = hdr_end + 4;
    const char *next = multipart_find(content, mp->end, mp->delim, bl);
    if (!next)
        return multipart_stop(mp, dim_fail(&mp->err, DIM_EFORMAT,
                                           "part %zu: no delimiter '%s' after its data (the body "
                                           "is truncated or lacks its closing '%s--')",
                                           mp->index, mp->delim, mp->delim),
                              err);
    const char *cend = next;
    if (cend - content >= 2 && cend[-2] == '\r' && cend[-1] == '\n')
        cend -= 2;
    part->data = content;
    part->len = (size_t)(cend - content);
    part->headers = (struct multipart_text){after, (size_t)(hdr_end - after)};
    multipart_headers(after, hdr_end, part);
    mp->pos = next;
    mp->index++;
    return 1;
}

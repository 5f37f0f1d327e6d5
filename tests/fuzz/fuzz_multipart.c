/* fuzz_multipart.c - util/multipart: an encode request's multipart/form-data
 * body. The input's first line is the Content-Type header value, the rest the
 * body (the tail of libFuzzer's buffer, so ASan sees any read past its end).
 * Invariants (util/multipart.h): the boundary is 1 to 70 characters; every
 * part, its headers, name, filename and content type lie inside the body and
 * parts come in order; the iteration ends (0 or an error) and, once ended,
 * returns the same status again.
 */
#include <stdint.h>

#include "util/multipart.h"
#include "fuzz.h"

static void inside(const char *body, size_t len, const char *p, size_t n, const char *what)
{
    if (!p) {
        FUZZ_CHECK(n == 0, "absent %s has length %zu", what, n);
        return;
    }
    FUZZ_CHECK(p >= body && n <= len && (size_t)(p - body) <= len - n,
               "%s [%td, +%zu) is outside the body of %zu bytes", what, p - body, n, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char ct[1024];
    size_t off = fuzz_split_line(data, size, ct, sizeof ct);
    char b[MULTIPART_BOUNDARY_MAX + 1];
    struct dim_err err;
    if (multipart_boundary(ct, b, &err) != 0) {
        FUZZ_CHECK(err.msg[0], "no message for a refused boundary");
        return 0;
    }
    size_t bl = strlen(b);
    FUZZ_CHECK(bl >= 1 && bl <= MULTIPART_BOUNDARY_MAX, "boundary of %zu characters", bl);
    const char *body = (const char *)data + off;
    size_t len = size - off;
    struct multipart mp;
    struct multipart_part part;
    multipart_init(&mp, b, len ? body : NULL, len);
    int rc;
    const char *last = body;
    size_t parts = 0;
    while ((rc = multipart_next(&mp, &part, &err)) == 1) {
        inside(body, len, part.data, part.len, "data");
        inside(body, len, part.headers.p, part.headers.len, "headers");
        inside(body, len, part.name.p, part.name.len, "name");
        inside(body, len, part.filename.p, part.filename.len, "filename");
        inside(body, len, part.content_type.p, part.content_type.len, "content type");
        FUZZ_CHECK(part.headers.len <= MULTIPART_HEADERS_MAX, "headers of %zu bytes",
                   part.headers.len);
        if (part.data) {
            FUZZ_CHECK(part.data >= last, "part %zu starts before the previous one ends", parts);
            last = part.data + part.len;
        }
        parts++;
        FUZZ_CHECK(parts <= len, "%zu parts from %zu bytes", parts, len);
    }
    FUZZ_CHECK(rc == 0 || rc == DIM_EFORMAT || rc == DIM_ELIMIT, "status %d", rc);
    if (rc < 0)
        FUZZ_CHECK(err.msg[0], "no message for status %d", rc);
    FUZZ_CHECK(multipart_next(&mp, &part, NULL) == rc, "a second call after the end differs");
    return 0;
}

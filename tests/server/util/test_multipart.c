/* test_multipart.c - util/multipart: multipart/form-data bodies, in place.
 *
 * The boundary from a Content-Type (quoted, bare, missing, empty, too long);
 * valid bodies (one part, several, a quoted boundary with spaces, CRLF before
 * a delimiter, an empty part, a part without headers, preamble and epilogue)
 * with their headers picked out; malformed ones (no delimiter, no closing
 * delimiter, headers that never end, a boundary inside data, a huge header),
 * each an error that names the problem and the part; and every prefix of a
 * valid body, copied to a buffer of exactly its size, so that ASan sees any
 * read past the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/multipart.h"

/* Whether t is exactly the NUL-terminated s (NULL: absent). */
static void text_is(struct multipart_text t, const char *s)
{
    if (!s) {
        assert_null(t.p);
        return;
    }
    assert_non_null(t.p);
    if (t.len != strlen(s) || memcmp(t.p, s, t.len) != 0)
        fail_msg("'%.*s' is not '%s'", (int)t.len, t.p, s);
}

/* Iterates over body[0..len) with boundary b into parts[] (at most 8); returns
 * the count; *rc gets the status that ended it and msg its message. */
static size_t parts_of(const char *b, const void *body, size_t len, struct multipart_part parts[8],
                       int *rc, struct dim_err *err)
{
    struct multipart mp;
    multipart_init(&mp, b, body, len);
    size_t n = 0;
    struct multipart_part p;
    while ((*rc = multipart_next(&mp, &p, err)) == 1) {
        assert_true(n < 8);
        parts[n++] = p;
    }
    return n;
}

static void boundary_is(const char *ct, const char *want)
{
    char b[MULTIPART_BOUNDARY_MAX + 1];
    struct dim_err err = {0};
    if (multipart_boundary(ct, b, &err) != 0)
        fail_msg("'%s': %s", ct, err.msg);
    assert_string_equal(b, want);
}

static void boundary_refused(const char *ct, const char *needle)
{
    char b[MULTIPART_BOUNDARY_MAX + 1];
    struct dim_err err = {0};
    assert_int_equal(multipart_boundary(ct, b, &err), DIM_EFORMAT);
    assert_string_equal(b, "");
    if (!strstr(err.msg, needle))
        fail_msg("'%s': message '%s' does not contain '%s'", ct, err.msg, needle);
}

static void test_boundary(void **state)
{
    (void)state;
    boundary_is("multipart/form-data; boundary=abc", "abc");
    boundary_is("multipart/form-data; boundary=abc; charset=utf-8", "abc");
    boundary_is("multipart/form-data; boundary=abc def", "abc");
    boundary_is("multipart/form-data; BOUNDARY=----WebKitFormBoundary7MA4YWxk",
                "----WebKitFormBoundary7MA4YWxk");
    boundary_is("multipart/form-data; boundary=\"a b;c\"; x=y", "a b;c");
    boundary_is("multipart/form-data; boundary=\"open", "open"); /* no closing quote: to the end */
    boundary_is("multipart/form-data; xboundary=y", "y");         /* the first "boundary=" */
    char ct[128], want[80];
    memset(want, 'b', 70);
    want[70] = '\0';
    snprintf(ct, sizeof ct, "multipart/form-data; boundary=%s", want);
    boundary_is(ct, want);
    boundary_refused("multipart/form-data", "no boundary parameter in 'multipart/form-data'");
    boundary_refused("multipart/form-data; charset=utf-8", "no boundary parameter");
    boundary_refused("multipart/form-data; boundary=", "empty");
    boundary_refused("multipart/form-data; boundary=; x=y", "empty");
    boundary_refused("multipart/form-data; boundary=\"\"", "empty");
    snprintf(ct, sizeof ct, "multipart/form-data; boundary=%sb", want);
    boundary_refused(ct, "71 characters, more than 70");
}

static void test_one_part_with_its_headers(void **state)
{
    (void)state;
    static const char body[] = "--xyz\r\n"
                               "Content-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n"
                               "Content-Type: image/png\r\n"
                               "\r\n"
                               "\x89PNG\0\r\n\x1a\n"
                               "\r\n--xyz--\r\n";
    struct multipart_part p[8];
    int rc;
    struct dim_err err;
    assert_int_equal(parts_of("xyz", body, sizeof body - 1, p, &rc, &err), 1);
    assert_int_equal(rc, 0);
    assert_int_equal(p[0].len, 9);
    assert_memory_equal(p[0].data, "\x89PNG\0\r\n\x1a\n", 9);
    text_is(p[0].name, "image");
    text_is(p[0].filename, "a.png");
    text_is(p[0].content_type, "image/png");
    assert_true(p[0].headers.p > body && p[0].headers.len > 0);
}

static void test_several_parts_in_order(void **state)
{
    (void)state;
    static const char body[] = "preamble, ignored\r\n"
                               "--b\r\ncontent-disposition:form-data;name=a\r\n\r\nAAA\r\n"
                               "--b\r\nCONTENT-DISPOSITION: form-data ; filename=\"x;name=y.png\" ;"
                               " name = \"b\"\r\nContent-type:  application/octet-stream  \r\n"
                               "X-Other: 1\r\n\r\nBB\r\n"
                               "--b\r\n\r\nC\r\n"
                               "--b--\r\nepilogue, ignored --b\r\n";
    struct multipart_part p[8];
    int rc;
    struct dim_err err;
    assert_int_equal(parts_of("b", body, sizeof body - 1, p, &rc, &err), 3);
    assert_int_equal(rc, 0);
    const char *data[] = {"AAA", "BB", "C"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(p[i].len, strlen(data[i]));
        assert_memory_equal(p[i].data, data[i], p[i].len);
    }
    text_is(p[0].name, "a");
    text_is(p[0].filename, NULL);
    text_is(p[0].content_type, NULL);
    text_is(p[1].name, "b");
    text_is(p[1].filename, "x;name=y.png"); /* a quoted ';' does not split parameters */
    text_is(p[1].content_type, "application/octet-stream");
    text_is(p[2].name, NULL); /* a part without headers */
    assert_int_equal(p[2].headers.len, 0);
}

static void test_quoted_boundary_with_spaces(void **state)
{
    (void)state;
    char b[MULTIPART_BOUNDARY_MAX + 1];
    assert_int_equal(multipart_boundary("multipart/form-data; boundary=\"my boundary\"", b, NULL),
                     0);
    static const char body[] = "--my boundary\r\n\r\none\r\n--my boundary\r\n\r\ntwo\r\n"
                               "--my boundary--";
    struct multipart_part p[8];
    int rc;
    assert_int_equal(parts_of(b, body, sizeof body - 1, p, &rc, NULL), 2);
    assert_int_equal(rc, 0);
    assert_memory_equal(p[1].data, "two", 3);
}

static void test_crlf_before_a_delimiter(void **state)
{
    (void)state;
    /* one CRLF before the delimiter belongs to it; a second one is data; a bare
     * LF is data; no line break at all is fine too */
    static const char body[] = "--b\r\n\r\nA\r\n\r\n--b\r\n\r\nB\n--b\r\n\r\nC--b\r\n\r\n\r\n--b--";
    struct multipart_part p[8];
    int rc;
    assert_int_equal(parts_of("b", body, sizeof body - 1, p, &rc, NULL), 4);
    assert_int_equal(rc, 0);
    assert_int_equal(p[0].len, 3);
    assert_memory_equal(p[0].data, "A\r\n", 3);
    assert_int_equal(p[1].len, 2);
    assert_memory_equal(p[1].data, "B\n", 2);
    assert_int_equal(p[2].len, 1);
    assert_int_equal(p[3].len, 0); /* an empty part */
    /* the headers' blank line may be the delimiter line's own CRLF: no headers */
    static const char bare[] = "--b\r\n\r\n--b--";
    assert_int_equal(parts_of("b", bare, sizeof bare - 1, p, &rc, NULL), 1);
    assert_int_equal(p[0].len, 0);
}

static void test_no_parts(void **state)
{
    (void)state;
    struct multipart_part p[8];
    int rc;
    static const char closing[] = "--b--\r\n";
    assert_int_equal(parts_of("b", closing, sizeof closing - 1, p, &rc, NULL), 0);
    assert_int_equal(rc, 0);
    /* the closing delimiter cut to "--b-" is a part whose headers never end */
    struct dim_err err;
    assert_int_equal(parts_of("b", "--b-", 4, p, &rc, &err), 0);
    assert_int_equal(rc, DIM_EFORMAT);
    assert_non_null(strstr(err.msg, "part 0: the headers never end"));
}

/* Expects body (NUL-terminated) to give n parts, then code with needle in its message. */
static void malformed(const char *what, const char *body, size_t n, int code, const char *needle)
{
    struct multipart_part p[8];
    int rc;
    struct dim_err err = {0};
    size_t got = parts_of("b", body, strlen(body), p, &rc, &err);
    if (got != n || rc != code)
        fail_msg("%s: %zu parts then %d, want %zu then %d", what, got, rc, n, code);
    if (!strstr(err.msg, needle))
        fail_msg("%s: message '%s' does not contain '%s'", what, err.msg, needle);
}

static void test_malformed_bodies(void **state)
{
    (void)state;
    malformed("empty body", "", 0, DIM_EFORMAT, "no delimiter '--b' in the 0-byte body");
    malformed("another boundary", "--c\r\n\r\nA\r\n--c--", 0, DIM_EFORMAT,
              "no delimiter '--b' in the 15-byte body");
    malformed("no closing delimiter", "--b\r\n\r\nA\r\n--b\r\n\r\nB\r\n", 1, DIM_EFORMAT,
              "part 1: no delimiter '--b' after its data");
    malformed("cut in the data", "--b\r\n\r\nAB", 0, DIM_EFORMAT, "lacks its closing '--b--'");
    malformed("truncated headers", "--b\r\nContent-Type: image/png\r\n", 0, DIM_EFORMAT,
              "part 0: the headers never end");
    malformed("LF-only line breaks", "--b\nContent-Type: image/png\n\nA\n--b--", 0, DIM_EFORMAT,
              "part 0: the headers never end");
    /* "--b" inside the data ends the part there; what follows is no part */
    malformed("boundary inside data", "--b\r\n\r\nxx--byy\r\n--b--", 1, DIM_EFORMAT,
              "part 1: the headers never end");
}

static void test_header_size_limit(void **state)
{
    (void)state;
    size_t cap = 2 * MULTIPART_HEADERS_MAX + 64;
    char *body = malloc(cap);
    assert_non_null(body);
    struct multipart_part p[8];
    int rc;
    struct dim_err err;
    /* a header block of exactly MULTIPART_HEADERS_MAX bytes: "\r\nX: vvv..." */
    int n = snprintf(body, cap, "--b\r\nX: ");
    memset(body + n, 'v', MULTIPART_HEADERS_MAX - 5);
    n += MULTIPART_HEADERS_MAX - 5;
    n += snprintf(body + n, cap - (size_t)n, "\r\n\r\nDATA\r\n--b--");
    assert_int_equal(parts_of("b", body, (size_t)n, p, &rc, &err), 1);
    assert_int_equal(rc, 0);
    assert_int_equal(p[0].headers.len, MULTIPART_HEADERS_MAX);
    assert_memory_equal(p[0].data, "DATA", 4);
    /* one byte more */
    n = snprintf(body, cap, "--b\r\nX: ");
    memset(body + n, 'v', MULTIPART_HEADERS_MAX - 4);
    n += MULTIPART_HEADERS_MAX - 4;
    n += snprintf(body + n, cap - (size_t)n, "\r\n\r\nDATA\r\n--b--");
    assert_int_equal(parts_of("b", body, (size_t)n, p, &rc, &err), 0);
    assert_int_equal(rc, DIM_ELIMIT);
    assert_non_null(strstr(err.msg, "part 0: headers longer than 8192 bytes"));
    /* a huge header in part 1: part 0 comes first */
    n = snprintf(body, cap, "--b\r\n\r\nA\r\n--b\r\nContent-Disposition: form-data; name=\"");
    memset(body + n, 'n', MULTIPART_HEADERS_MAX + 10);
    n += MULTIPART_HEADERS_MAX + 10;
    n += snprintf(body + n, cap - (size_t)n, "\"\r\n\r\nB\r\n--b--");
    assert_int_equal(parts_of("b", body, (size_t)n, p, &rc, &err), 1);
    assert_int_equal(rc, DIM_ELIMIT);
    assert_non_null(strstr(err.msg, "part 1: headers longer"));
    free(body);
}

static void test_the_end_repeats(void **state)
{
    (void)state;
    struct multipart mp;
    struct multipart_part p;
    struct dim_err err;
    multipart_init(&mp, "b", "--b\r\n\r\nA\r\n--b--", 15);
    assert_int_equal(multipart_next(&mp, &p, &err), 1);
    assert_int_equal(multipart_next(&mp, &p, &err), 0);
    assert_int_equal(multipart_next(&mp, &p, &err), 0);
    assert_null(p.data);
    multipart_init(&mp, "b", NULL, 0);
    assert_int_equal(multipart_next(&mp, &p, &err), DIM_EFORMAT);
    memset(&err, 0, sizeof err);
    assert_int_equal(multipart_next(&mp, &p, &err), DIM_EFORMAT);
    assert_non_null(strstr(err.msg, "no delimiter"));
    assert_int_equal(multipart_next(&mp, &p, NULL), DIM_EFORMAT);
}

static void test_every_prefix_stays_inside_the_body(void **state)
{
    (void)state;
    static const char body[] = "--bnd\r\nContent-Disposition: form-data; name=\"a\"; filename=\"f\"\r\n"
                               "Content-Type: image/png\r\n\r\n0123456789\r\n"
                               "--bnd\r\nContent-Disposition: form-data; name=b\r\n\r\nxyz\r\n"
                               "--bnd--\r\n";
    const size_t len = sizeof body - 1;
    for (size_t k = 0; k <= len; k++) {
        char *copy = malloc(k ? k : 1); /* exactly k bytes: ASan flags any read past them */
        assert_non_null(copy);
        memcpy(copy, body, k);
        struct multipart_part p[8];
        int rc;
        struct dim_err err;
        size_t n = parts_of("bnd", copy, k, p, &rc, &err);
        for (size_t i = 0; i < n; i++) {
            assert_true(p[i].data >= copy && p[i].data + p[i].len <= copy + k);
            assert_true(!p[i].name.p || p[i].name.p + p[i].name.len <= copy + k);
            assert_true(!p[i].filename.p || p[i].filename.p + p[i].filename.len <= copy + k);
        }
        /* the whole body, less at most its epilogue's CRLF, ends cleanly */
        if (k >= len - 2)
            assert_int_equal(rc, 0);
        else
            assert_true(rc < 0 || (rc == 0 && k >= len - 4));
        if (k >= len - 4)
            assert_int_equal(n, 2);
        free(copy);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_boundary),
        cmocka_unit_test(test_one_part_with_its_headers),
        cmocka_unit_test(test_several_parts_in_order),
        cmocka_unit_test(test_quoted_boundary_with_spaces),
        cmocka_unit_test(test_crlf_before_a_delimiter),
        cmocka_unit_test(test_no_parts),
        cmocka_unit_test(test_malformed_bodies),
        cmocka_unit_test(test_header_size_limit),
        cmocka_unit_test(test_the_end_repeats),
        cmocka_unit_test(test_every_prefix_stays_inside_the_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* web.c - the dashboard's static files, compiled into the binary (web/ and
 * uPlot from web/node_modules, see the Makefile's WEB_SRC). GET / answers
 * web/index.html; GET /ui/{file} answers the embedded web file whose base name
 * is file. Open routes: the page itself asks for a token.
 *
 * Every answer carries an ETag (the first 16 digits of the file's sha256) and
 * Cache-Control: no-cache, so browsers revalidate with If-None-Match and get
 * 304 for an unchanged file. A client that accepts gzip (Accept-Encoding) gets
 * the file gzip-compressed (level 9), with its own ETag ("...-gz": the two are
 * different representations) and Vary: Accept-Encoding on both. The files
 * are hashed and compressed once, on the first request for any of them, and
 * kept for the life of the process: the embedded files never change. A file
 * that does not shrink is always sent as it is. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

#include "handlers/handlers.h"
#include "util/assets.h"
#include "util/sha256.h"

static const struct {
    const char *ext, *type;
} content_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
};

/* An embedded web file as served. */
struct web_file {
    const struct asset_file *f;
    char etag[24], etag_gz[24]; /* "0123456789abcdef" and "0123456789abcdef-gz" */
    unsigned char *gz;          /* NULL when gzip does not make it smaller */
    size_t gz_size;
};

static struct web_file *web_files;
static size_t web_n;
static pthread_once_t web_once = PTHREAD_ONCE_INIT;

/* The content type of a served name, or NULL for an extension not served. */
static const char *content_type(const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < sizeof content_types / sizeof content_types[0]; i++) {
        size_t el = strlen(content_types[i].ext);
        if (len > el && strcmp(name + len - el, content_types[i].ext) == 0)
            return content_types[i].type;
    }
    return NULL;
}

/* data gzip-compressed at level 9 into a malloc'd buffer, or NULL when it does
 * not come out smaller (or zlib fails: the file is then served as it is). */
static unsigned char *gzip(const void *data, size_t n, size_t *out_n)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    /* windowBits 15 + 16: a gzip header and trailer around the deflate stream */
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    uLong cap = deflateBound(&z, (uLong)n);
    unsigned char *out = malloc(cap);
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int rc = out ? deflate(&z, Z_FINISH) : Z_MEM_ERROR;
    *out_n = (size_t)z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END || *out_n >= n) {
        free(out);
        return NULL;
    }
    return out;
}

static void web_load(void)
{
    size_t n = 0;
    for (size_t i = 0; i < assets_n_files; i++)
        n += strncmp(assets_files[i].name, "web/", 4) == 0;
    web_files = calloc(n ? n : 1, sizeof *web_files);
    if (!web_files)
        return;
    for (size_t i = 0; i < assets_n_files; i++) {
        const struct asset_file *f = &assets_files[i];
        if (strncmp(f->name, "web/", 4) != 0)
            continue;
        struct web_file *w = &web_files[web_n++];
        w->f = f;
        char hex[65];
        sha256_hex(f->data, f->size, hex);
        snprintf(w->etag, sizeof w->etag, "\"%.16s\"", hex);
        snprintf(w->etag_gz, sizeof w->etag_gz, "\"%.16s-gz\"", hex);
        w->gz = gzip(f->data, f->size, &w->gz_size);
    }
}

/* The web file with base name file ("app.js"), or NULL. */
static const struct web_file *web_find(const char *file)
{
    pthread_once(&web_once, web_load);
    for (size_t i = 0; i < web_n; i++) {
        const char *base = strrchr(web_files[i].f->name, '/') + 1;
        if (strcmp(base, file) == 0)
            return &web_files[i];
    }
    return NULL;
}

/* Whether an Accept-Encoding value accepts gzip: a "gzip" or "*" entry whose
 * q is not 0 ("gzip;q=0" refuses it). */
static bool accepts_gzip(const char *ae)
{
    for (const char *p = ae; p && *p;) {
        p += strspn(p, " \t,");
        size_t len = strcspn(p, ",");
        size_t tok = strcspn(p, ";, \t");
        if ((tok == 4 && strncasecmp(p, "gzip", 4) == 0) || (tok == 1 && *p == '*')) {
            const char *q = p + tok;
            bool zero = false;
            while (q < p + len) {
                q += strspn(q, " \t;");
                if (strncasecmp(q, "q=", 2) == 0) {
                    const char *v = q + 2;
                    zero = strtod(v, NULL) == 0;
                }
                q += strcspn(q, ";,");
            }
            return !zero;
        }
        p += len;
    }
    return false;
}

static void reply_file(struct http_request *rq, const struct web_file *w, const char *type)
{
    const bool gz = w->gz && accepts_gzip(http_header(rq, "Accept-Encoding"));
    http_add_header(rq, "Cache-Control", "no-cache");
    if (w->gz)
        http_add_header(rq, "Vary", "Accept-Encoding");
    if (handler_not_modified(rq, gz ? w->etag_gz : w->etag)) {
        /* 304 sent */
    } else if (gz) {
        http_add_header(rq, "Content-Encoding", "gzip");
        http_reply_bytes(rq, 200, type, w->gz, w->gz_size, false);
    } else {
        http_reply_bytes(rq, 200, type, w->f->data, w->f->size, false);
    }
}

void handle_web_index(void *app, struct http_request *rq)
{
    (void)app;
    const struct web_file *w = web_find("index.html");
    if (!w) {
        http_reply_problem(rq, PROBLEM_INTERNAL, "the dashboard is not embedded in this build");
        return;
    }
    reply_file(rq, w, content_types[0].type);
}

void handle_web_file(void *app, struct http_request *rq)
{
    (void)app;
    const char *file = http_param(rq, "file");
    const char *type = content_type(file);
    const struct web_file *w = type && file[0] != '.' ? web_find(file) : NULL;
    if (!w) {
        http_reply_problem(rq, PROBLEM_FILE_NOT_FOUND, "the dashboard has no file '%.100s'", file);
        return;
    }
    reply_file(rq, w, type);
}

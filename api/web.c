/* web.c - the dashboard's static files, compiled into the binary (web/ and
 * uPlot from web/node_modules, see the Makefile's WEB_FILES). GET / answers
 * web/index.html; GET /ui/{file} answers the embedded web file whose base name
 * is file. Open routes: the page itself asks for a token. Every answer carries
 * an ETag (the file's sha256) and Cache-Control: no-cache, so browsers
 * revalidate with If-None-Match and get 304 for an unchanged file. */
#include <string.h>

#include "api/api.h"
#include "server/embed.h"
#include "server/sha256.h"

static const struct {
    const char *ext, *type;
} content_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
};

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

/* The embedded web file with base name file ("app.js"), or NULL. */
static const struct embedded_file *web_find(const char *file)
{
    for (size_t i = 0; i < embedded_n_files; i++) {
        const char *name = embedded_files[i].name;
        if (strncmp(name, "web/", 4) != 0)
            continue;
        const char *base = strrchr(name, '/') + 1;
        if (strcmp(base, file) == 0)
            return &embedded_files[i];
    }
    return NULL;
}

static void reply_file(struct http_request *rq, const struct embedded_file *f, const char *type)
{
    char hex[65], etag[20];
    sha256_hex(f->data, f->size, hex);
    snprintf(etag, sizeof etag, "\"%.16s\"", hex);
    http_add_header(rq, "ETag", etag);
    http_add_header(rq, "Cache-Control", "no-cache");
    const char *inm = http_header(rq, "If-None-Match");
    if (inm && (strstr(inm, etag) || strcmp(inm, "*") == 0))
        http_reply_empty(rq, 304);
    else
        http_reply_bytes(rq, 200, type, f->data, f->size, false);
}

void api_web_index(void *app, struct http_request *rq)
{
    (void)app;
    const struct embedded_file *f = web_find("index.html");
    if (!f) {
        http_reply_problem(rq, 500, "internal", "the dashboard is not embedded in this build");
        return;
    }
    reply_file(rq, f, content_types[0].type);
}

void api_web_file(void *app, struct http_request *rq)
{
    (void)app;
    const char *file = http_param(rq, "file");
    const char *type = content_type(file);
    const struct embedded_file *f = type && file[0] != '.' ? web_find(file) : NULL;
    if (!f) {
        http_reply_problem(rq, 404, "file_not_found", "the dashboard has no file '%.100s'", file);
        return;
    }
    reply_file(rq, f, type);
}

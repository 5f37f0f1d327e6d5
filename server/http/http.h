/* http.h - the HTTP front: libmicrohttpd (a thread per connection, bounded by
 * max_connections), routing from a route table, the Host allow-list, bearer
 * token auth, bounded request bodies, problem+json errors, request statistics.
 *
 * A request goes: Host check (403 host_not_allowed) -> route match (404, 405
 * with Allow) -> auth (401 / 403 insufficient_scope) -> Content-Length against
 * max_body_bytes (413, before any byte of the body is read) -> body collected
 * (413 when a chunked body grows past the limit) -> the route's handler, which
 * answers with exactly one http_reply_* call. All of it runs on the
 * connection's thread; handlers may block (event streams do).
 * Tokens are checked by the application through http_options.authenticate; the
 * transport knows nothing of where they are kept.
 * Depends on libmicrohttpd, jansson, util (strbuf, clock), api (scope).
 */
#ifndef DIMD_HTTP_HTTP_H
#define DIMD_HTTP_HTTP_H

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "util/strbuf.h"
#include "api/problem.h"
#include "api/real.h"
#include "api/scope.h"

struct http_request;
struct http_server;
typedef void (*route_fn)(void *app, struct http_request *rq);

/* One route. Patterns are literal segments and {name} captures ("/v1/jobs/{id}"). */
struct route {
    const char *method;
    const char *pattern;
    enum scope scope;
    route_fn fn;
    bool large_body; /* bodies up to http_options.max_large_body_bytes (images) */
};

#define HTTP_MAX_PARAMS 4

/* Who presented the request's bearer token. */
struct http_principal {
    int64_t id; /* 0 on open routes */
    char name[64];
    enum scope scope;
    int64_t created_ms;
};

enum http_auth_rc { HTTP_AUTH_OK = 0, HTTP_AUTH_DENIED = 1, HTTP_AUTH_ERROR = -1 };
/* Checks a presented token for app: HTTP_AUTH_OK with *out filled, HTTP_AUTH_DENIED
 * for a token that is not valid, HTTP_AUTH_ERROR with err when it cannot tell.
 * Called on connection threads, concurrently. */
typedef int (*http_auth_fn)(void *app, const char *token, struct http_principal *out,
                            struct dim_err *err);

struct http_request {
    struct MHD_Connection *conn;
    const char *method, *path;
    const struct route *route;
    int route_index;
    const char *param_names[HTTP_MAX_PARAMS];
    char *param_values[HTTP_MAX_PARAMS];
    int n_params;
    char *body;
    size_t body_len;
    struct http_principal token; /* the authenticated token (id 0 on open routes) */
    bool replied;
    int status;
    double t0;
};

struct http_options {
    const char *listen;
    int port; /* 0: any free port */
    size_t max_body_bytes;
    size_t max_large_body_bytes; /* for routes with large_body */
    unsigned max_connections, connection_timeout_s;
    const char *allowed_hosts; /* comma-separated */
    int thread_nice;           /* nice of each connection's thread (0: left as it is) */
    http_auth_fn authenticate; /* for routes with a scope; called with the app pointer */
};

/* Starts serving routes[0..n_routes) with app passed to every handler. */
int http_start(struct http_server **out, const struct http_options *opt,
               const struct route *routes, size_t n_routes, void *app,
               struct dim_err *err);
int http_port(const struct http_server *s);
/* Stops accepting new connections (in-flight requests finish). */
void http_quiesce(struct http_server *s);
/* Waits for the connection threads and frees s. */
void http_stop(struct http_server *s);
/* Whether http_quiesce was called (long-running handlers end early). */
bool http_stopping(const struct http_server *s);

/* Request accessors. */
const char *http_param(const struct http_request *rq, const char *name); /* path capture */
const char *http_query(const struct http_request *rq, const char *name);
const char *http_header(const struct http_request *rq, const char *name);

/* Replies (exactly one per request). json replies take the reference. */
void http_reply_json(struct http_request *rq, int status, json_t *body);
/* A problem+json reply: the code and its status from api/problem.h's table. */
void http_reply_problem(struct http_request *rq, enum problem problem, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* 422 validation_failed with errors (taken) */
void http_reply_invalid(struct http_request *rq, json_t *errors, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* data is copied unless owned (then freed with free()). */
void http_reply_bytes(struct http_request *rq, int status, const char *content_type,
                      const void *data, size_t n, bool owned);
void http_reply_empty(struct http_request *rq, int status);
/* Extra headers for the next reply on rq (Location, ETag, Retry-After, ...), at most 6. */
void http_add_header(struct http_request *rq, const char *name, const char *value);
/* A streamed reply: read(ctx, buf, max) returns bytes written (> 0), 0 at the
 * end of the stream, or -1 on error; it may block. done(ctx) frees ctx. */
void http_reply_stream(struct http_request *rq, const char *content_type,
                       long (*read)(void *ctx, char *buf, size_t max), void (*done)(void *ctx),
                       void *ctx);

/* Replies with the size bytes of the open file fd from offset 0 (Content-Length
 * set), taking fd: it is closed once sent, or at once on failure. */
void http_reply_fd(struct http_request *rq, int status, const char *content_type, int fd,
                   uint64_t size);

/* Prometheus text of the HTTP statistics (requests by route, method and status;
 * latency histogram by route) appended to a growing buffer. */
void http_write_stats(struct http_server *s, struct strbuf *out);

/* RFC 3339 UTC with milliseconds ("2026-11-28T01:02:03.456Z") into buf[32]; null for 0. */
json_t *http_time_json(int64_t ms);

#endif

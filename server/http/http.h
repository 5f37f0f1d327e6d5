/* http.h - the HTTP front: libmicrohttpd, routing from a route table, the Host
 * allow-list, bearer token auth, bounded request bodies, problem+json errors,
 * event streams without a thread each, request statistics.
 *
 * A request goes: Host check (403 host_not_allowed) -> route match (404, 405
 * with Allow) -> auth (401 / 403 insufficient_scope) -> Content-Length against
 * max_body_bytes (413, before any byte of the body is read) -> body collected
 * (413 when a chunked body grows past the limit) -> the route's handler, which
 * answers with exactly one http_reply_* call.
 *
 * DESIGN
 * - One polling thread (libmicrohttpd's epoll loop) reads and writes every
 *   socket: headers, bodies and replies of slow clients cost no thread. It
 *   does the checks above itself (they are in memory; auth reads the token
 *   table only after a change), never a handler.
 * - Handlers run on handler threads, created on demand in two lanes of at
 *   most max_connections each: routes with large bodies (encode, neighbours)
 *   and all the others, so cheap requests never wait behind encodes. The
 *   polling thread suspends the connection once the body is in and queues the
 *   request; a handler thread runs the handler, which may block (database,
 *   encode batches); its reply is queued when the connection is resumed.
 * - Streams (http_reply_stream) hold no thread either: while a stream has
 *   nothing to send its connection is suspended ("parked"). One stream thread
 *   calls each stream's fill function, off the polling thread: when the
 *   stream's bytes have been sent, when the application reports a change
 *   (http_options.wait_change, watched by a relay thread), or when the
 *   stream's own deadline passes (heartbeats). At most max_streams are open;
 *   one more gets 503 too_many_streams.
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
    unsigned max_connections;  /* open connections besides streams; also the handler threads */
    unsigned max_streams;      /* open streams (http_reply_stream); 503 too_many_streams above */
    unsigned connection_timeout_s;
    size_t connection_memory;  /* per connection: request headers and reply buffers */
    const char *allowed_hosts; /* comma-separated */
    int thread_nice;           /* nice of the server's threads (0: left as they are) */
    http_auth_fn authenticate; /* for routes with a scope; called with the app pointer */
    /* Blocks until the application's data changed after sequence `seen` or
     * timeout_ms passed; returns the current sequence. Streams are filled again
     * after each change. NULL: streams are filled again at their deadlines only. */
    uint64_t (*wait_change)(void *app, uint64_t seen, int timeout_ms);
};

/* Starts serving routes[0..n_routes) with app passed to every handler. */
int http_start(struct http_server **out, const struct http_options *opt,
               const struct route *routes, size_t n_routes, void *app,
               struct dim_err *err);
int http_port(const struct http_server *s);
/* New requests get 503 shutting_down (in-flight requests finish); streams end. */
void http_quiesce(struct http_server *s);
/* Quiesces, waits for in-flight handlers, stops every thread and frees s. */
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
/* What a stream's fill function returns. */
enum http_stream_rc {
    HTTP_STREAM_ERROR = -1, /* close the connection */
    HTTP_STREAM_END = 0,    /* the stream is complete (bytes appended before it are sent) */
    HTTP_STREAM_MORE = 1,   /* bytes were appended to out: send them, then call again */
    HTTP_STREAM_WAIT = 2    /* nothing to send now: call again after the next change, or
                             * after *wait_s seconds at the latest */
};
typedef int (*http_fill_fn)(void *ctx, struct strbuf *out, double *wait_s);
/* A streamed reply (chunked) of content_type. fill(ctx, out, &wait_s) is called
 * on the stream thread, one stream at a time, never concurrently for one
 * stream: it may read the database but must not wait (return HTTP_STREAM_WAIT
 * instead). After http_quiesce fill is no longer called and the stream ends.
 * done(ctx) frees ctx once the reply is over (also when this call fails).
 * More than max_streams open: 503 too_many_streams, Retry-After. */
void http_reply_stream(struct http_request *rq, const char *content_type, http_fill_fn fill,
                       void (*done)(void *ctx), void *ctx);
/* Open streams and the ones parked (waiting for a change or a deadline). */
void http_stream_counts(struct http_server *s, unsigned *open, unsigned *parked);

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

/* http.c - libmicrohttpd glue, routing, the auth callback and replies (see http.h). */
#include "http/http.h"
#include "util/clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_EXTRA_HEADERS 6
#define N_BUCKETS 10
static const double bucket_le[N_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025,
                                            0.05,  0.1,    0.25,  1.0,  5.0};

/* Requests by (route, status); route index n_routes is "no route". */
struct status_count {
    int route, status;
    uint64_t n;
};

struct route_latency {
    uint64_t bucket[N_BUCKETS + 1]; /* last: +Inf */
    double sum;
    uint64_t count;
};

struct http_server {
    struct MHD_Daemon *mhd;
    const struct route *routes;
    size_t n_routes;
    http_auth_fn authenticate;
    void *app;
    size_t max_body, max_large_body;
    int thread_nice;
    char hosts[32][128];
    int n_hosts;
    atomic_bool stopping;
    pthread_mutex_t stats_lock;
    struct status_count *counts;
    size_t n_counts, cap_counts;
    struct route_latency *latency; /* n_routes + 1 */
};

/* Per-request state behind MHD's con_cls. */
struct request_state {
    struct http_request rq;
    struct http_server *srv;
    bool too_large, handled;
    size_t cap;
    char *extra[MAX_EXTRA_HEADERS][2];
    int n_extra;
};

json_t *http_time_json(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char buf[80];
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    return json_string(buf);
}

/* ---- statistics ---- */

/* Counted when the reply is queued, so a client that reads /metrics right after
 * a reply already sees it; timed when the reply has been sent. */
static void record_status(struct http_server *s, int route, int status)
{
    pthread_mutex_lock(&s->stats_lock);
    size_t i = 0;
    while (i < s->n_counts && !(s->counts[i].route == route && s->counts[i].status == status))
        i++;
    if (i == s->n_counts && s->n_counts == s->cap_counts) {
        size_t cap = s->cap_counts ? 2 * s->cap_counts : 64;
        struct status_count *g = realloc(s->counts, cap * sizeof *g);
        if (g) {
            s->counts = g;
            s->cap_counts = cap;
        }
    }
    if (i < s->cap_counts) {
        if (i == s->n_counts)
            s->counts[s->n_counts++] = (struct status_count){route, status, 0};
        s->counts[i].n++;
    }
    pthread_mutex_unlock(&s->stats_lock);
}

static void record_latency(struct http_server *s, int route, double seconds)
{
    pthread_mutex_lock(&s->stats_lock);
    struct route_latency *l = &s->latency[route];
    int b = 0;
    while (b < N_BUCKETS && seconds > bucket_le[b])
        b++;
    l->bucket[b]++;
    l->sum += seconds;
    l->count++;
    pthread_mutex_unlock(&s->stats_lock);
}

static void route_label(const struct http_server *s, int route, const char **method,
                        const char **pattern)
{
    if (route < (int)s->n_routes) {
        *method = s->routes[route].method;
        *pattern = s->routes[route].pattern;
    } else {
        *method = "any";
        *pattern = "unmatched";
    }
}

void http_write_stats(struct http_server *s, struct strbuf *out)
{
    pthread_mutex_lock(&s->stats_lock);
    strbuf_printf(out, "# HELP dimd_http_requests_total HTTP requests answered, by route, method "
                   "and status.\n# TYPE dimd_http_requests_total counter\n");
    for (size_t i = 0; i < s->n_counts; i++) {
        const char *m, *p;
        route_label(s, s->counts[i].route, &m, &p);
        strbuf_printf(out, "dimd_http_requests_total{route=\"%s\",method=\"%s\",status=\"%d\"} %llu\n",
                  p, m, s->counts[i].status, (unsigned long long)s->counts[i].n);
    }
    strbuf_printf(out, "# HELP dimd_http_request_duration_seconds Time from request to the end of "
                   "its reply, by route.\n# TYPE dimd_http_request_duration_seconds histogram\n");
    for (size_t r = 0; r <= s->n_routes; r++) {
        const struct route_latency *l = &s->latency[r];
        if (!l->count)
            continue;
        const char *m, *p;
        route_label(s, (int)r, &m, &p);
        uint64_t cum = 0;
        for (int b = 0; b <= N_BUCKETS; b++) {
            cum += l->bucket[b];
            if (b < N_BUCKETS)
                strbuf_printf(out,
                          "dimd_http_request_duration_seconds_bucket{route=\"%s\",method=\"%s\","
                          "le=\"%g\"} %llu\n",
                          p, m, bucket_le[b], (unsigned long long)cum);
            else
                strbuf_printf(out,
                          "dimd_http_request_duration_seconds_bucket{route=\"%s\",method=\"%s\","
                          "le=\"+Inf\"} %llu\n",
                          p, m, (unsigned long long)cum);
        }
        strbuf_printf(out,
                  "dimd_http_request_duration_seconds_sum{route=\"%s\",method=\"%s\"} %.6f\n"
                  "dimd_http_request_duration_seconds_count{route=\"%s\",method=\"%s\"} %llu\n",
                  p, m, l->sum, p, m, (unsigned long long)l->count);
    }
    pthread_mutex_unlock(&s->stats_lock);
}

/* ---- request accessors ---- */

static bool param_name_is(const char *captured, const char *name);

const char *http_param(const struct http_request *rq, const char *name)
{
    for (int i = 0; i < rq->n_params; i++)
        if (param_name_is(rq->param_names[i], name))
            return rq->param_values[i];
    return NULL;
}

const char *http_query(const struct http_request *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_header(const struct http_request *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

void http_add_header(struct http_request *rq, const char *name, const char *value)
{
    struct request_state *st = (struct request_state *)rq;
    if (st->n_extra == MAX_EXTRA_HEADERS)
        return;
    st->extra[st->n_extra][0] = strdup(name);
    st->extra[st->n_extra][1] = strdup(value);
    st->n_extra++;
}

/* ---- replies ---- */

static void queue(struct http_request *rq, int status, struct MHD_Response *resp,
                  const char *content_type)
{
    struct request_state *st = (struct request_state *)rq;
    if (rq->replied || !resp) {
        if (resp)
            MHD_destroy_response(resp);
        return;
    }
    if (content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    bool cache_set = false; /* a handler's Cache-Control replaces the default no-store */
    for (int i = 0; i < st->n_extra; i++)
        if (st->extra[i][0] && strcasecmp(st->extra[i][0], "Cache-Control") == 0)
            cache_set = true;
    if (!cache_set)
        MHD_add_response_header(resp, "Cache-Control", "no-store");
    for (int i = 0; i < st->n_extra; i++)
        if (st->extra[i][0] && st->extra[i][1])
            MHD_add_response_header(resp, st->extra[i][0], st->extra[i][1]);
    MHD_queue_response(rq->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    rq->replied = true;
    rq->status = status;
    record_status(st->srv, rq->route_index, status);
}

void http_reply_bytes(struct http_request *rq, int status, const char *content_type,
                      const void *data, size_t n, bool owned)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        n, (void *)data, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_MUST_COPY);
    if (!r && owned)
        free((void *)data);
    queue(rq, status, r, content_type);
}

void http_reply_empty(struct http_request *rq, int status)
{
    queue(rq, status, MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT), NULL);
}

static void reply_json_type(struct http_request *rq, int status, json_t *body,
                            const char *content_type)
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(DIMD_REAL_DIGITS));
    json_decref(body);
    if (!text) {
        http_reply_bytes(rq, 500, "application/problem+json",
                         "{\"type\":\"urn:dimd:problem:internal\",\"title\":\"Internal error\","
                         "\"status\":500,\"detail\":\"out of memory\",\"code\":\"internal\"}",
                         118, false);
        return;
    }
    size_t n = strlen(text);
    text[n] = '\n'; /* json_dumps' NUL becomes the newline curl users expect */
    http_reply_bytes(rq, status, content_type, text, n + 1, true);
}

void http_reply_json(struct http_request *rq, int status, json_t *body)
{
    reply_json_type(rq, status, body, "application/json");
}

static const char *status_title(int status)
{
    switch (status) {
    case 400: return "Bad request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not found";
    case 405: return "Method not allowed";
    case 409: return "Conflict";
    case 413: return "Payload too large";
    case 415: return "Unsupported media type";
    case 422: return "Unprocessable content";
    case 429: return "Too many requests";
    case 503: return "Service unavailable";
    default: return status >= 500 ? "Internal server error" : "Error";
    }
}

static void reply_problem_v(struct http_request *rq, enum problem problem, json_t *errors,
                            const char *fmt, va_list ap)
{
    const int status = problem_status(problem);
    const char *code = problem_code(problem);
    char detail[512], type[96];
    vsnprintf(detail, sizeof detail, fmt, ap);
    snprintf(type, sizeof type, "urn:dimd:problem:%s", code);
    json_t *p = json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", type, "title",
                          status_title(status), "status", status, "detail", detail, "code", code);
    if (errors)
        json_object_set_new(p, "errors", errors);
    reply_json_type(rq, status, p, "application/problem+json");
}

void http_reply_problem(struct http_request *rq, enum problem problem, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    reply_problem_v(rq, problem, NULL, fmt, ap);
    va_end(ap);
}

void http_reply_invalid(struct http_request *rq, json_t *errors, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    reply_problem_v(rq, PROBLEM_VALIDATION_FAILED, errors, fmt, ap);
    va_end(ap);
}

struct stream {
    long (*read)(void *ctx, char *buf, size_t max);
    void (*done)(void *ctx);
    void *ctx;
};

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct stream *s = cls;
    long n = s->read(s->ctx, buf, max);
    if (n > 0)
        return (ssize_t)n;
    return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void stream_free(void *cls)
{
    struct stream *s = cls;
    if (s->done)
        s->done(s->ctx);
    free(s);
}

void http_reply_stream(struct http_request *rq, const char *content_type,
                       long (*read)(void *ctx, char *buf, size_t max), void (*done)(void *ctx),
                       void *ctx)
{
    struct stream *s = malloc(sizeof *s);
    if (!s) {
        if (done)
            done(ctx);
        http_reply_problem(rq, PROBLEM_INTERNAL, "out of memory");
        return;
    }
    *s = (struct stream){read, done, ctx};
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, s, stream_free);
    if (!r) {
        stream_free(s);
        http_reply_problem(rq, PROBLEM_INTERNAL, "cannot create a streamed response");
        return;
    }
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    queue(rq, 200, r, content_type);
}

void http_reply_fd(struct http_request *rq, int status, const char *content_type, int fd,
                   uint64_t size)
{
    /* libmicrohttpd sends it with sendfile where it can, and closes fd */
    struct MHD_Response *r = MHD_create_response_from_fd64(size, fd);
    if (!r) {
        close(fd);
        http_reply_problem(rq, PROBLEM_INTERNAL, "cannot create a file response");
        return;
    }
    queue(rq, status, r, content_type);
}

/* ---- routing ---- */

/* Matches path against pattern, capturing {names}; returns whether it matched. */
static bool match(const char *pattern, const char *path, struct http_request *rq)
{
    int n = 0;
    const char *p = pattern, *u = path;
    while (*p && *u) {
        if (*p != '/' || *u != '/')
            return false;
        p++;
        u++;
        const char *pe = strchr(p, '/'), *ue = strchr(u, '/');
        size_t pl = pe ? (size_t)(pe - p) : strlen(p), ul = ue ? (size_t)(ue - u) : strlen(u);
        if (pl > 2 && p[0] == '{' && p[pl - 1] == '}') {
            if (ul == 0 || n == HTTP_MAX_PARAMS)
                return false;
            n++;
        } else if (pl != ul || strncmp(p, u, pl) != 0) {
            return false;
        }
        p += pl;
        u += ul;
    }
    if (*p || *u)
        return false;
    /* second pass: store the captures (only once the whole path matched) */
    p = pattern;
    u = path;
    rq->n_params = 0;
    while (*p) {
        p++;
        u++;
        const char *pe = strchr(p, '/'), *ue = strchr(u, '/');
        size_t pl = pe ? (size_t)(pe - p) : strlen(p), ul = ue ? (size_t)(ue - u) : strlen(u);
        if (p[0] == '{') {
            rq->param_names[rq->n_params] = p + 1;
            rq->param_values[rq->n_params] = strndup(u, ul);
            rq->n_params++;
        }
        p += pl;
        u += ul;
    }
    return true;
}

/* Capture names point into the pattern ("id}/cancel"): compare up to the '}'. */
static bool param_name_is(const char *captured, const char *name)
{
    size_t n = strlen(name);
    return strncmp(captured, name, n) == 0 && captured[n] == '}';
}

static bool host_allowed(const struct http_server *s, const char *host)
{
    if (!host || !*host)
        return false;
    char name[128];
    size_t n;
    if (host[0] == '[') {
        const char *end = strchr(host, ']');
        if (!end)
            return false;
        n = (size_t)(end - host) + 1;
    } else {
        const char *colon = strchr(host, ':');
        n = colon ? (size_t)(colon - host) : strlen(host);
    }
    if (n == 0 || n >= sizeof name)
        return false;
    memcpy(name, host, n);
    name[n] = '\0';
    for (int i = 0; i < s->n_hosts; i++)
        if (strcasecmp(s->hosts[i], name) == 0)
            return true;
    return false;
}

/* Auth: returns true when the request may proceed; otherwise replied. */
static bool authorize(struct http_server *s, struct http_request *rq)
{
    enum scope need = rq->route->scope;
    if (need == SCOPE_NONE)
        return true;
    const char *token = NULL;
    const char *auth = http_header(rq, MHD_HTTP_HEADER_AUTHORIZATION);
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0)
        token = auth + 7;
    else if (!auth && strcmp(rq->method, "GET") == 0)
        token = http_query(rq, "access_token");
    if (!token || !*token) {
        http_add_header(rq, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"dimd\"");
        http_reply_problem(rq, PROBLEM_UNAUTHORIZED,
                           "this route needs a bearer token (Authorization: Bearer TOKEN); the "
                           "first one is in the state directory's token file");
        return false;
    }
    struct dim_err err;
    int rc = s->authenticate(s->app, token, &rq->token, &err);
    if (rc == HTTP_AUTH_DENIED) {
        http_add_header(rq, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                        "Bearer realm=\"dimd\", error=\"invalid_token\"");
        http_reply_problem(rq, PROBLEM_UNAUTHORIZED, "the bearer token is not valid");
        return false;
    }
    if (rc != HTTP_AUTH_OK) {
        http_reply_problem(rq, PROBLEM_INTERNAL, "token check failed: %s", err.msg);
        return false;
    }
    if (need == SCOPE_WRITE && rq->token.scope != SCOPE_WRITE) {
        http_add_header(rq, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                        "Bearer realm=\"dimd\", error=\"insufficient_scope\", scope=\"write\"");
        http_reply_problem(rq, PROBLEM_INSUFFICIENT_SCOPE,
                           "%s %s needs a token with the write scope; token '%s' has read only",
                           rq->method, rq->route->pattern, rq->token.name);
        return false;
    }
    return true;
}

/* Route lookup: sets rq->route or replies 404 / 405. */
static bool route_request(struct http_server *s, struct http_request *rq)
{
    char allow[128] = "";
    for (size_t i = 0; i < s->n_routes; i++) {
        const struct route *r = &s->routes[i];
        if (!match(r->pattern, rq->path, rq))
            continue;
        if (strcmp(r->method, rq->method) == 0 ||
            (strcmp(rq->method, "HEAD") == 0 && strcmp(r->method, "GET") == 0)) {
            rq->route = r;
            rq->route_index = (int)i;
            return true;
        }
        for (int k = 0; k < rq->n_params; k++) {
            free(rq->param_values[k]);
            rq->param_values[k] = NULL;
        }
        rq->n_params = 0;
        if (!strstr(allow, r->method)) {
            size_t l = strlen(allow);
            snprintf(allow + l, sizeof allow - l, "%s%s", l ? ", " : "", r->method);
        }
    }
    if (allow[0]) {
        http_add_header(rq, MHD_HTTP_HEADER_ALLOW, allow);
        http_reply_problem(rq, PROBLEM_METHOD_NOT_ALLOWED, "%s is not allowed on %s (allowed: %s)",
                           rq->method, rq->path, allow);
    } else {
        http_reply_problem(rq, PROBLEM_NOT_FOUND, "no route %s %s (see /v1/openapi.yaml)",
                           rq->method, rq->path);
    }
    return false;
}

static size_t body_limit(const struct http_server *s, const struct http_request *rq)
{
    return rq->route && rq->route->large_body ? s->max_large_body : s->max_body;
}

static const char *body_limit_name(const struct http_request *rq)
{
    return rq->route && rq->route->large_body ? "encode_max_body_bytes" : "max_body_bytes";
}

/* Gives the calling connection thread nice value `nice` once in its life (each
 * connection has its own thread, which serves only it). The forward passes of
 * encode requests leave short idle gaps between their parallel loops; at the
 * same priority the connection threads take cores from them mid-pass, at a
 * lower one the scheduler runs them in those gaps instead (bench_encode
 * measures the effect: the README gives the figures). Raising one's own nice
 * needs no privilege; a failure only leaves the thread as it was. */
static void lower_thread_priority(int nice)
{
    static _Thread_local bool done;
    if (done)
        return;
    done = true;
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice) != 0)
        fprintf(stderr, "dimd: cannot set an HTTP thread's nice to %d: %s\n", nice,
                strerror(errno));
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    struct http_server *s = cls;
    struct request_state *st = *con_cls;
    if (!st && s->thread_nice > 0)
        lower_thread_priority(s->thread_nice);
    if (!st) {
        st = calloc(1, sizeof *st);
        if (!st)
            return MHD_NO;
        *con_cls = st;
        st->srv = s;
        struct http_request *rq = &st->rq;
        rq->conn = conn;
        rq->method = method;
        rq->path = url;
        rq->route_index = (int)s->n_routes;
        rq->t0 = clock_mono_s();
        if (atomic_load(&s->stopping)) {
            http_reply_problem(rq, PROBLEM_SHUTTING_DOWN, "dimd is shutting down");
            return MHD_YES;
        }
        if (!host_allowed(s, http_header(rq, MHD_HTTP_HEADER_HOST))) {
            const char *h = http_header(rq, MHD_HTTP_HEADER_HOST);
            http_reply_problem(rq, PROBLEM_HOST_NOT_ALLOWED,
                               "Host '%.100s' is not in allowed_hosts (a guard against DNS "
                               "rebinding; add it to allowed_hosts to serve it)",
                               h ? h : "(none)");
            return MHD_YES;
        }
        if (!route_request(s, rq) || !authorize(s, rq))
            return MHD_YES;
        const char *cl = http_header(rq, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > body_limit(s, rq)) {
            http_reply_problem(rq, PROBLEM_BODY_TOO_LARGE, "the body has %s bytes; %s is %zu", cl,
                               body_limit_name(rq), body_limit(s, rq));
            return MHD_YES;
        }
        return MHD_YES;
    }
    struct http_request *rq = &st->rq;
    if (rq->replied) { /* answered early: discard any body */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (st->too_large || rq->body_len + n > body_limit(s, rq)) {
            st->too_large = true;
            return MHD_YES;
        }
        if (rq->body_len + n + 1 > st->cap) {
            size_t cap = st->cap ? st->cap : 4096;
            while (cap < rq->body_len + n + 1)
                cap *= 2;
            char *g = realloc(rq->body, cap);
            if (!g)
                return MHD_NO;
            rq->body = g;
            st->cap = cap;
        }
        memcpy(rq->body + rq->body_len, upload_data, n);
        rq->body_len += n;
        rq->body[rq->body_len] = '\0';
        return MHD_YES;
    }
    if (st->too_large) {
        http_reply_problem(rq, PROBLEM_BODY_TOO_LARGE, "the body is larger than %s (%zu)",
                           body_limit_name(rq), body_limit(s, rq));
        return MHD_YES;
    }
    st->handled = true;
    rq->route->fn(s->app, rq);
    if (!rq->replied)
        http_reply_problem(rq, PROBLEM_INTERNAL, "the handler of %s %s gave no reply", rq->method,
                           rq->route->pattern);
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    (void)toe;
    struct http_server *s = cls;
    struct request_state *st = *con_cls;
    if (!st)
        return;
    struct http_request *rq = &st->rq;
    if (rq->replied)
        record_latency(s, rq->route_index, clock_mono_s() - rq->t0);
    for (int i = 0; i < rq->n_params; i++)
        free(rq->param_values[i]);
    for (int i = 0; i < st->n_extra; i++) {
        free(st->extra[i][0]);
        free(st->extra[i][1]);
    }
    free(rq->body);
    free(st);
    *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    /* a client closing an event stream is how streams end: not worth a line */
    if (strstr(msg, "no longer available for sending"))
        return;
    fprintf(stderr, "dimd: http: %s%s", msg, strchr(msg, '\n') ? "" : "\n");
}

int http_start(struct http_server **out, const struct http_options *opt,
               const struct route *routes, size_t n_routes, void *app,
               struct dim_err *err)
{
    *out = NULL;
    for (size_t i = 0; i < n_routes && !opt->authenticate; i++)
        if (routes[i].scope != SCOPE_NONE)
            return dim_fail(err, DIM_EINVAL, "route %s %s needs a token, and no authenticate "
                                             "callback was given", routes[i].method,
                            routes[i].pattern);
    struct http_server *s = calloc(1, sizeof *s);
    if (!s)
        return dim_fail(err, DIM_ENOMEM, "out of memory");
    s->routes = routes;
    s->n_routes = n_routes;
    s->authenticate = opt->authenticate;
    s->app = app;
    s->max_body = opt->max_body_bytes;
    s->thread_nice = opt->thread_nice;
    s->max_large_body = opt->max_large_body_bytes ? opt->max_large_body_bytes : opt->max_body_bytes;
    s->latency = calloc(n_routes + 1, sizeof *s->latency);
    pthread_mutex_init(&s->stats_lock, NULL);
    const char *h = opt->allowed_hosts;
    while (h && *h && s->n_hosts < 32) {
        const char *end = strchr(h, ',');
        size_t n = end ? (size_t)(end - h) : strlen(h);
        while (n && *h == ' ') {
            h++;
            n--;
        }
        while (n && h[n - 1] == ' ')
            n--;
        if (n > 0 && n < sizeof s->hosts[0]) {
            memcpy(s->hosts[s->n_hosts], h, n);
            s->hosts[s->n_hosts++][n] = '\0';
        }
        if (!end)
            break;
        h = end + 1;
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_ERROR_LOG;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, opt->listen, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)opt->port);
    } else if (inet_pton(AF_INET6, opt->listen, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)opt->port);
        flags |= MHD_USE_IPv6;
    } else {
        free(s->latency);
        free(s);
        return dim_fail(err, DIM_EINVAL, "listen '%s' is not an IPv4 or IPv6 address",
                        opt->listen);
    }
    s->mhd = MHD_start_daemon(
        flags, (uint16_t)opt->port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER,
        on_mhd_log, NULL, MHD_OPTION_SOCK_ADDR, &ss,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_LIMIT,
        opt->max_connections, MHD_OPTION_CONNECTION_TIMEOUT, opt->connection_timeout_s,
        MHD_OPTION_END);
    if (!s->mhd) {
        free(s->latency);
        free(s);
        return dim_fail(err, DIM_EIO, "cannot listen on %s port %d (in use, or not permitted)",
                        opt->listen, opt->port);
    }
    *out = s;
    return 0;
}

int http_port(const struct http_server *s)
{
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    return i ? (int)i->port : -1;
}

void http_quiesce(struct http_server *s)
{
    atomic_store(&s->stopping, true);
}

bool http_stopping(const struct http_server *s)
{
    return atomic_load(&((struct http_server *)s)->stopping);
}

void http_stop(struct http_server *s)
{
    if (!s)
        return;
    atomic_store(&s->stopping, true);
    MHD_stop_daemon(s->mhd);
    pthread_mutex_destroy(&s->stats_lock);
    free(s->counts);
    free(s->latency);
    free(s);
}

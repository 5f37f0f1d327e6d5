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

struct http_stream;
struct request_state;
struct http_server;

/* Handler threads of one kind: routes with large bodies (encode, neighbours:
 * image decoding and forward passes) have theirs, every other route shares
 * the other lane, so a cheap request never waits behind encode requests. */
enum { LANE_API, LANE_LARGE, N_LANES };
struct lane {
    struct http_server *srv;
    pthread_cond_t cv;                   /* a request was queued (or quit) */
    struct request_state *head, *tail;   /* queued requests */
    unsigned n_work;                     /* queued, not yet taken */
    pthread_t *threads;
    unsigned n_threads, max_threads, n_idle;
};

struct http_server {
    struct MHD_Daemon *mhd;
    uint64_t (*wait_change)(void *app, uint64_t seen, int timeout_ms);
    unsigned max_streams;
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

    /* Threads and suspended connections, all under mu. */
    pthread_mutex_t mu;
    pthread_cond_t pump_cv;   /* a stream was queued for the stream thread (or quit) */
    pthread_cond_t idle_cv;   /* n_suspended reached 0 */
    bool quit;                /* the threads end (http_stop, after every connection resumed) */
    unsigned n_suspended;     /* connections suspended and not yet resumed */
    struct lane lanes[N_LANES];
    struct http_stream *fill_head, *fill_tail; /* streams for the stream thread */
    struct http_stream *parked;                /* streams waiting (doubly linked) */
    unsigned n_streams, n_parked;
    uint64_t wake_gen; /* bumped by each change the relay reports */
    pthread_t pump, relay;
    bool pump_started, relay_started;
};

/* Per-request state behind MHD's con_cls. */
struct request_state {
    struct http_request rq;
    struct http_server *srv;
    bool too_large, handled;
    bool deferred;                 /* the handler runs on a handler thread: queue() keeps the reply */
    struct MHD_Response *resp;     /* kept reply, queued when the connection is resumed */
    int resp_status;
    struct request_state *next;    /* in the handler threads' queue */
    size_t cap;
    char *extra[MAX_EXTRA_HEADERS][2];
    int n_extra;
};

static void server_free(struct http_server *s);

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
    pthread_mutex_lock(&s->mu);
    unsigned streams = s->n_streams, parked = s->n_parked, workers = 0, busy = 0, queued = 0;
    for (int l = 0; l < N_LANES; l++) {
        workers += s->lanes[l].n_threads;
        busy += s->lanes[l].n_threads - s->lanes[l].n_idle;
        queued += s->lanes[l].n_work;
    }
    pthread_mutex_unlock(&s->mu);
    strbuf_printf(out,
                  "# HELP dimd_http_streams Open event streams (parked: waiting for an event or a "
                  "heartbeat, with no thread).\n# TYPE dimd_http_streams gauge\n"
                  "dimd_http_streams %u\ndimd_http_streams_parked %u\n"
                  "# HELP dimd_http_handler_threads Threads running request handlers (busy: in a "
                  "handler), and requests waiting for one.\n"
                  "# TYPE dimd_http_handler_threads gauge\n"
                  "dimd_http_handler_threads %u\ndimd_http_handler_threads_busy %u\n"
                  "dimd_http_requests_waiting %u\n",
                  streams, parked, workers, busy, queued);
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
    if (st->deferred) { /* on a handler thread: the polling thread queues it */
        st->resp = resp;
        st->resp_status = status;
    } else {
        MHD_queue_response(rq->conn, (unsigned)status, resp);
        MHD_destroy_response(resp);
    }
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
    case 507: return "Insufficient storage";
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
    problem_utf8_fix(detail); /* paths and values quoted in it may hold any byte */
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

/* ---- streams ----
 *
 * A stream is ACTIVE while the polling thread sends its bytes (buf from off);
 * once they are sent and the stream has not ended, the content reader suspends
 * the connection and hands the stream to the stream thread (FILLING), which
 * calls fill: bytes -> ACTIVE again (connection resumed), WAIT -> PARKED until
 * the next change or its deadline, then FILLING again. Only the thread that
 * owns the state touches buf: the polling thread while ACTIVE, the stream
 * thread while FILLING. The connection cannot close while suspended, so the
 * stream outlives every list it is in. */
enum stream_state { STREAM_ACTIVE, STREAM_FILLING, STREAM_PARKED };

struct http_stream {
    struct http_server *srv;
    struct MHD_Connection *conn;
    http_fill_fn fill;
    void (*done)(void *ctx);
    void *ctx;
    struct strbuf buf;
    size_t off;
    int end; /* 0: open; 1: ended; -1: failed */
    enum stream_state state;
    double due; /* PARKED: fill again at this time (clock_mono_s) */
    struct http_stream *prev, *next;
};

/* Under mu. */
static void fill_push(struct http_server *s, struct http_stream *t)
{
    t->state = STREAM_FILLING;
    t->next = NULL;
    t->prev = NULL;
    if (s->fill_tail)
        s->fill_tail->next = t;
    else
        s->fill_head = t;
    s->fill_tail = t;
    pthread_cond_signal(&s->pump_cv);
}

/* Under mu: every parked stream (or only the due ones) back to the fill queue. */
static void unpark(struct http_server *s, bool all, double now, double *next_due)
{
    struct http_stream *t = s->parked;
    while (t) {
        struct http_stream *nx = t->next;
        if (all || t->due <= now) {
            if (t->prev)
                t->prev->next = t->next;
            else
                s->parked = t->next;
            if (t->next)
                t->next->prev = t->prev;
            s->n_parked--;
            fill_push(s, t);
        } else if (next_due && t->due < *next_due) {
            *next_due = t->due;
        }
        t = nx;
    }
}

/* Under mu: a connection was resumed. */
static void resumed(struct http_server *s)
{
    if (--s->n_suspended == 0)
        pthread_cond_broadcast(&s->idle_cv);
}

/* The content reader, on the polling thread. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct http_stream *t = cls;
    if (t->off < t->buf.len) {
        size_t n = t->buf.len - t->off;
        if (n > max)
            n = max;
        memcpy(buf, t->buf.data + t->off, n);
        t->off += n;
        if (t->off == t->buf.len) { /* idle streams keep no buffer */
            strbuf_free(&t->buf);
            t->off = 0;
        }
        return (ssize_t)n;
    }
    if (t->end)
        return t->end > 0 ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
    struct http_server *s = t->srv;
    pthread_mutex_lock(&s->mu);
    if (atomic_load(&s->stopping)) {
        pthread_mutex_unlock(&s->mu);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    MHD_suspend_connection(t->conn); /* before the stream thread can see it (and resume it) */
    s->n_suspended++;
    fill_push(s, t);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static void stream_free(void *cls)
{
    struct http_stream *t = cls;
    struct http_server *s = t->srv;
    if (t->done)
        t->done(t->ctx);
    strbuf_free(&t->buf);
    pthread_mutex_lock(&s->mu);
    s->n_streams--;
    pthread_mutex_unlock(&s->mu);
    free(t);
}

static void lower_thread_priority(int nice);

/* The stream thread: fills streams from the fill queue, parks the waiting ones
 * and takes parked ones back when their deadline passes. */
static void *pump_main(void *arg)
{
    struct http_server *s = arg;
    if (s->thread_nice > 0)
        lower_thread_priority(s->thread_nice);
    pthread_mutex_lock(&s->mu);
    while (!s->quit) {
        if (!s->fill_head) {
            double now = clock_mono_s(), next = now + 1.0;
            unpark(s, false, now, &next);
            if (!s->fill_head) {
                struct timespec until = clock_mono_ts(next);
                pthread_cond_timedwait(&s->pump_cv, &s->mu, &until);
            }
            continue;
        }
        struct http_stream *t = s->fill_head;
        s->fill_head = t->next;
        if (!s->fill_head)
            s->fill_tail = NULL;
        uint64_t gen = s->wake_gen;
        bool stop = atomic_load(&s->stopping);
        pthread_mutex_unlock(&s->mu);
        /* FILLING: this thread owns the stream; the connection is suspended */
        strbuf_free(&t->buf);
        t->off = 0;
        double wait_s = 1.0;
        int rc = stop ? HTTP_STREAM_END : t->fill(t->ctx, &t->buf, &wait_s);
        if (rc == HTTP_STREAM_WAIT && t->buf.len > 0)
            rc = HTTP_STREAM_MORE;
        pthread_mutex_lock(&s->mu);
        if (rc == HTTP_STREAM_WAIT) {
            if (s->wake_gen != gen || atomic_load(&s->stopping)) {
                fill_push(s, t); /* a change came during the fill: look again */
            } else {
                if (!(wait_s > 0.001))
                    wait_s = 0.001;
                t->state = STREAM_PARKED;
                t->due = clock_mono_s() + wait_s;
                t->prev = NULL;
                t->next = s->parked;
                if (s->parked)
                    s->parked->prev = t;
                s->parked = t;
                s->n_parked++;
            }
            continue;
        }
        t->end = rc == HTTP_STREAM_MORE ? 0 : rc == HTTP_STREAM_END ? 1 : -1;
        t->state = STREAM_ACTIVE;
        pthread_mutex_unlock(&s->mu);
        MHD_resume_connection(t->conn); /* t may be freed from here on */
        pthread_mutex_lock(&s->mu);
        resumed(s);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Every parked stream is filled again (a change was reported). */
static void wake_streams(struct http_server *s)
{
    pthread_mutex_lock(&s->mu);
    s->wake_gen++;
    unpark(s, true, 0, NULL);
    pthread_mutex_unlock(&s->mu);
}

/* The relay thread: waits for the application's changes and wakes the streams. */
static void *relay_main(void *arg)
{
    struct http_server *s = arg;
    uint64_t seen = 0;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        bool quit = s->quit;
        pthread_mutex_unlock(&s->mu);
        if (quit)
            break;
        uint64_t v = s->wait_change(s->app, seen, 250);
        if (v != seen) {
            seen = v;
            wake_streams(s);
        }
    }
    return NULL;
}

void http_stream_counts(struct http_server *s, unsigned *open, unsigned *parked)
{
    pthread_mutex_lock(&s->mu);
    *open = s->n_streams;
    *parked = s->n_parked;
    pthread_mutex_unlock(&s->mu);
}

void http_reply_stream(struct http_request *rq, const char *content_type, http_fill_fn fill,
                       void (*done)(void *ctx), void *ctx)
{
    struct request_state *st = (struct request_state *)rq;
    struct http_server *s = st->srv;
    pthread_mutex_lock(&s->mu);
    unsigned open = s->n_streams;
    bool full = open >= s->max_streams;
    if (!full)
        s->n_streams++;
    pthread_mutex_unlock(&s->mu);
    if (full) {
        if (done)
            done(ctx);
        http_add_header(rq, "Retry-After", "10");
        http_reply_problem(rq, PROBLEM_TOO_MANY_STREAMS,
                           "%u event streams are open; sse_max_streams is %u (close one, or "
                           "raise the setting)",
                           open, s->max_streams);
        return;
    }
    struct http_stream *t = calloc(1, sizeof *t);
    if (!t) {
        pthread_mutex_lock(&s->mu);
        s->n_streams--;
        pthread_mutex_unlock(&s->mu);
        if (done)
            done(ctx);
        http_reply_problem(rq, PROBLEM_INTERNAL, "out of memory");
        return;
    }
    *t = (struct http_stream){.srv = s, .conn = rq->conn, .fill = fill, .done = done, .ctx = ctx};
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, t, stream_free);
    if (!r) {
        stream_free(t);
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

/* Gives the calling thread nice value `nice` once in its life (the polling,
 * handler and stream threads serve HTTP only). The forward passes of encode
 * requests leave short idle gaps between their parallel loops; at the same
 * priority the HTTP threads take cores from them mid-pass, at a lower one the
 * scheduler runs them in those gaps instead (bench_encode measures the effect:
 * the README gives the figures). Raising one's own nice needs no privilege; a
 * failure only leaves the thread as it was. */
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

/* ---- handler threads ---- */

/* A handler thread: runs queued requests' handlers; each reply is queued by the
 * polling thread when the connection is resumed (on_request). */
static void *worker_main(void *arg)
{
    struct lane *q = arg;
    struct http_server *s = q->srv;
    if (s->thread_nice > 0)
        lower_thread_priority(s->thread_nice);
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!q->head && !s->quit) {
            q->n_idle++;
            pthread_cond_wait(&q->cv, &s->mu);
            q->n_idle--;
        }
        if (!q->head)
            break;
        struct request_state *st = q->head;
        q->head = st->next;
        if (!q->head)
            q->tail = NULL;
        q->n_work--;
        pthread_mutex_unlock(&s->mu);
        struct http_request *rq = &st->rq;
        struct MHD_Connection *conn = rq->conn;
        rq->route->fn(s->app, rq);
        if (!rq->replied)
            http_reply_problem(rq, PROBLEM_INTERNAL, "the handler of %s %s gave no reply",
                               rq->method, rq->route->pattern);
        MHD_resume_connection(conn); /* st may be freed from here on */
        pthread_mutex_lock(&s->mu);
        resumed(s);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Suspends the request's connection and queues its handler in its lane; false
 * when the server is stopping (nothing done). On the polling thread. */
static bool dispatch(struct http_server *s, struct request_state *st)
{
    struct lane *q = &s->lanes[st->rq.route->large_body ? LANE_LARGE : LANE_API];
    pthread_mutex_lock(&s->mu);
    if (atomic_load(&s->stopping)) {
        pthread_mutex_unlock(&s->mu);
        return false;
    }
    st->deferred = true;
    MHD_suspend_connection(st->rq.conn);
    s->n_suspended++;
    st->next = NULL;
    if (q->tail)
        q->tail->next = st;
    else
        q->head = st;
    q->tail = st;
    q->n_work++;
    if (q->n_idle < q->n_work && q->n_threads < q->max_threads &&
        pthread_create(&q->threads[q->n_threads], NULL, worker_main, q) == 0)
        q->n_threads++;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&s->mu);
    return true;
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
    if (st->handled) { /* called again once the handler thread resumed the connection */
        if (!st->resp)
            return MHD_NO;
        MHD_queue_response(conn, (unsigned)st->resp_status, st->resp);
        MHD_destroy_response(st->resp);
        st->resp = NULL;
        return MHD_YES;
    }
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
    if (!dispatch(s, st))
        http_reply_problem(rq, PROBLEM_SHUTTING_DOWN, "dimd is shutting down");
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
    if (st->resp) /* resumed, then closed before the reply was queued */
        MHD_destroy_response(st->resp);
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
    if (strstr(msg, "no longer available for sending") ||
        strstr(msg, "Failed to send the footers"))
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
    bool ok = s->latency != NULL;
    for (int l = 0; l < N_LANES; l++) {
        struct lane *q = &s->lanes[l];
        q->srv = s;
        q->max_threads = opt->max_connections ? opt->max_connections : 1;
        q->threads = calloc(q->max_threads, sizeof *q->threads);
        ok = ok && q->threads;
    }
    s->max_streams = opt->max_streams;
    s->wait_change = opt->wait_change;
    if (!ok) {
        free(s->latency);
        for (int l = 0; l < N_LANES; l++)
            free(s->lanes[l].threads);
        free(s);
        return dim_fail(err, DIM_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&s->stats_lock, NULL);
    pthread_mutex_init(&s->mu, NULL);
    for (int l = 0; l < N_LANES; l++)
        pthread_cond_init(&s->lanes[l].cv, NULL);
    pthread_cond_init(&s->idle_cv, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* clock_mono_ts deadlines */
    pthread_cond_init(&s->pump_cv, &ca);
    pthread_condattr_destroy(&ca);
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
    /* epoll where libmicrohttpd has it (Linux builds do), poll() otherwise: neither
     * is bounded by FD_SETSIZE as select() is */
    unsigned flags = (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES
                          ? MHD_USE_EPOLL_INTERNAL_THREAD
                          : MHD_USE_POLL_INTERNAL_THREAD) |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
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
        server_free(s);
        return dim_fail(err, DIM_EINVAL, "listen '%s' is not an IPv4 or IPv6 address",
                        opt->listen);
    }
    if (pthread_create(&s->pump, NULL, pump_main, s) != 0) {
        server_free(s);
        return dim_fail(err, DIM_EIO, "cannot start the HTTP stream thread");
    }
    s->pump_started = true;
    if (s->wait_change) {
        if (pthread_create(&s->relay, NULL, relay_main, s) != 0) {
            server_free(s);
            return dim_fail(err, DIM_EIO, "cannot start the HTTP relay thread");
        }
        s->relay_started = true;
    }
    s->mhd = MHD_start_daemon(
        flags, (uint16_t)opt->port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER,
        on_mhd_log, NULL, MHD_OPTION_SOCK_ADDR, &ss,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_LIMIT,
        opt->max_connections + opt->max_streams, MHD_OPTION_CONNECTION_TIMEOUT,
        opt->connection_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, opt->connection_memory, MHD_OPTION_END);
    if (!s->mhd) {
        server_free(s);
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
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->stopping, true);
    unpark(s, true, 0, NULL); /* parked streams end */
    pthread_mutex_unlock(&s->mu);
}

bool http_stopping(const struct http_server *s)
{
    return atomic_load(&((struct http_server *)s)->stopping);
}

/* Stops the threads (quit, join) and frees s; MHD is stopped already. */
static void server_free(struct http_server *s)
{
    pthread_mutex_lock(&s->mu);
    s->quit = true;
    for (int l = 0; l < N_LANES; l++)
        pthread_cond_broadcast(&s->lanes[l].cv);
    pthread_cond_broadcast(&s->pump_cv);
    pthread_mutex_unlock(&s->mu);
    if (s->pump_started)
        pthread_join(s->pump, NULL);
    if (s->relay_started)
        pthread_join(s->relay, NULL);
    for (int l = 0; l < N_LANES; l++) {
        for (unsigned i = 0; i < s->lanes[l].n_threads; i++)
            pthread_join(s->lanes[l].threads[i], NULL);
        pthread_cond_destroy(&s->lanes[l].cv);
        free(s->lanes[l].threads);
    }
    pthread_cond_destroy(&s->pump_cv);
    pthread_cond_destroy(&s->idle_cv);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->stats_lock);
    free(s->counts);
    free(s->latency);
    free(s);
}

void http_stop(struct http_server *s)
{
    if (!s)
        return;
    http_quiesce(s);
    /* libmicrohttpd must not stop with a suspended connection: in-flight
     * handlers finish and streams end first (no new suspension once stopping) */
    pthread_mutex_lock(&s->mu);
    while (s->n_suspended > 0)
        pthread_cond_wait(&s->idle_cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    MHD_stop_daemon(s->mhd);
    server_free(s);
}

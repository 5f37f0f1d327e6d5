/* events.c - a job's events as Server-Sent Events.
 *
 * The events are rows of the store's event log, written in the same
 * transactions as the changes they announce, so a stream replays them from any
 * id: Last-Event-ID (or ?last_event_id=) N continues with the first event after
 * N, with no gap and no duplicate. Idle streams get a heartbeat comment every
 * sse_heartbeat_s; the stream ends once the job is terminal and every event has
 * been sent. Blocking here is fine: each connection has its own thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "handlers/handlers.h"
#include "store/events.h"
#include "util/clock.h"

#define EVENTS_PER_READ 256

struct sse {
    struct handler_ctx *a;
    int64_t job_id, last_id;
    struct strbuf pending;
    size_t off;
    double next_heartbeat;
    bool ended;
};

/* Fills s->pending with the next events, a heartbeat, or nothing at the end. */
static int fill(struct sse *s)
{
    struct handler_ctx *a = s->a;
    for (;;) {
        uint64_t seq = store_event_seq(a->store);
        /* the job's state first: a terminal job's last event is committed with its state */
        struct store_job job;
        struct dim_err err;
        int rc = store_job_get(a->store, s->job_id, &job, &err);
        if (rc != STORE_OK)
            return 0; /* deleted, or the database failed: end the stream */
        bool terminal = job_state_terminal(job.state);
        store_job_clear(&job);
        struct store_event *ev = NULL;
        size_t n = 0;
        if (store_events_after(a->store, s->job_id, s->last_id, EVENTS_PER_READ, &ev, &n, &err) !=
            STORE_OK)
            return -1;
        if (n > 0) {
            for (size_t i = 0; i < n; i++) {
                strbuf_printf(&s->pending, "id: %lld\nevent: %s\ndata: %s\n\n", (long long)ev[i].id,
                          ev[i].type, ev[i].data);
                s->last_id = ev[i].id;
                store_event_clear(&ev[i]);
            }
            free(ev);
            s->next_heartbeat = clock_mono_s() + (double)a->cfg->sse_heartbeat_s;
            return 1;
        }
        free(ev);
        if (terminal || http_stopping(a->http) || atomic_load(&a->phase) == HANDLER_STOPPING)
            return 0;
        double now = clock_mono_s();
        if (now >= s->next_heartbeat) {
            strbuf_printf(&s->pending, ": heartbeat\n\n");
            s->next_heartbeat = now + (double)a->cfg->sse_heartbeat_s;
            return 1;
        }
        double wait = s->next_heartbeat - now;
        store_event_wait(a->store, seq, (int)(1000 * (wait < 0.5 ? wait : 0.5)) + 1);
    }
}

static long sse_read(void *ctx, char *buf, size_t max)
{
    struct sse *s = ctx;
    if (s->off == s->pending.len) {
        s->pending.len = 0;
        s->off = 0;
        if (s->ended)
            return 0;
        int rc = fill(s);
        if (rc <= 0)
            return rc;
    }
    size_t n = s->pending.len - s->off;
    if (n > max)
        n = max;
    memcpy(buf, s->pending.data + s->off, n);
    s->off += n;
    return (long)n;
}

static void sse_done(void *ctx)
{
    struct sse *s = ctx;
    strbuf_free(&s->pending);
    free(s);
}

void handle_events(void *app, struct http_request *rq)
{
    struct handler_ctx *a = app;
    int64_t last = 0;
    const char *h = http_header(rq, "Last-Event-ID");
    if (h) {
        char *end;
        long long v = strtoll(h, &end, 10);
        if (end == h || *end || v < 0) {
            http_reply_problem(rq, PROBLEM_INVALID_PARAMETER,
                               "Last-Event-ID '%.40s' must be a non-negative integer", h);
            return;
        }
        last = v;
    } else if (!handler_query_int(rq, "last_event_id", 0, INT64_MAX, 0, &last)) {
        return;
    }
    struct store_job job;
    if (!handler_load_job(a, rq, &job))
        return;
    struct sse *s = calloc(1, sizeof *s);
    if (!s) {
        store_job_clear(&job);
        http_reply_problem(rq, PROBLEM_INTERNAL, "out of memory");
        return;
    }
    s->a = a;
    s->job_id = job.id;
    s->last_id = last;
    s->next_heartbeat = clock_mono_s() + (double)a->cfg->sse_heartbeat_s;
    store_job_clear(&job);
    strbuf_printf(&s->pending, "retry: 3000\n\n");
    http_reply_stream(rq, "text/event-stream", sse_read, sse_done, s);
}

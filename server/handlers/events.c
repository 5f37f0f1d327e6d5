/* events.c - a job's events as Server-Sent Events.
 *
 * The events are rows of the store's event log, written in the same
 * transactions as the changes they announce, so a stream replays them from any
 * id: Last-Event-ID (or ?last_event_id=) N continues with the first event after
 * N, with no gap and no duplicate. Idle streams get a heartbeat comment every
 * sse_heartbeat_s; the stream ends once the job is terminal and every event has
 * been sent. A stream holds no thread: the HTTP server calls fill on its stream
 * thread after each commit that wrote events (handler_wait_events) and at the
 * heartbeat deadline, and fill never waits. Fills run on that one thread only,
 * so they share a memo of each job's newest event id at the current event
 * sequence (handler_ctx.sse_memo): a thousand streams of one job woken by one
 * commit read the database once, and a heartbeat with no commit since reads it
 * not at all. First heartbeats are spread over the interval, so streams opened
 * together do not all beat at the same moment.
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
    double next_heartbeat;
    bool started; /* the retry line was sent */
};

/* A heartbeat when it is due, else how long until it is. */
static int heartbeat(struct sse *s, struct strbuf *out, double *wait_s)
{
    double now = clock_mono_s();
    if (now >= s->next_heartbeat - 0.01) {
        strbuf_printf(out, ": heartbeat\n\n");
        s->next_heartbeat = now + (double)s->a->cfg->sse_heartbeat_s;
        return HTTP_STREAM_MORE;
    }
    *wait_s = s->next_heartbeat - now;
    return HTTP_STREAM_WAIT;
}

/* Appends the next events, a heartbeat, or nothing (http_fill_fn). */
static int sse_fill(void *ctx, struct strbuf *out, double *wait_s)
{
    struct sse *s = ctx;
    struct handler_ctx *a = s->a;
    if (!s->started) {
        s->started = true;
        strbuf_printf(out, "retry: 3000\n\n");
        return HTTP_STREAM_MORE;
    }
    /* the memo: nothing was committed for this job since it was read */
    uint64_t seq = store_event_seq(a->store);
    struct sse_memo *m = &a->sse_memo[(uint64_t)s->job_id % SSE_MEMO_SLOTS];
    bool known = m->job_id == s->job_id && m->seq == seq;
    if (known && s->last_id >= m->last_event_id && !m->terminal)
        return heartbeat(s, out, wait_s);
    /* the job's state first: a terminal job's last event is committed with its state */
    struct store_job job;
    struct dim_err err;
    int rc = store_job_get(a->store, s->job_id, &job, &err);
    if (rc != STORE_OK)
        return HTTP_STREAM_END; /* deleted, or the database failed: end the stream */
    bool terminal = job_state_terminal(job.state);
    store_job_clear(&job);
    struct store_event *ev = NULL;
    size_t n = 0;
    if (store_events_after(a->store, s->job_id, s->last_id, EVENTS_PER_READ, &ev, &n, &err) !=
        STORE_OK)
        return HTTP_STREAM_ERROR;
    for (size_t i = 0; i < n; i++) {
        strbuf_printf(out, "id: %lld\nevent: %s\ndata: %s\n\n", (long long)ev[i].id, ev[i].type,
                      ev[i].data);
        s->last_id = ev[i].id;
        store_event_clear(&ev[i]);
    }
    free(ev);
    if (n < EVENTS_PER_READ) /* s->last_id is the job's newest event (as of seq or later) */
        *m = (struct sse_memo){s->job_id, seq, s->last_id, terminal};
    if (n > 0) {
        s->next_heartbeat = clock_mono_s() + (double)a->cfg->sse_heartbeat_s;
        return HTTP_STREAM_MORE;
    }
    if (terminal || atomic_load(&a->phase) == HANDLER_STOPPING)
        return HTTP_STREAM_END;
    return heartbeat(s, out, wait_s);
}

static void sse_done(void *ctx)
{
    free(ctx);
}

uint64_t handler_wait_events(void *app, uint64_t seen, int timeout_ms)
{
    struct handler_ctx *a = app;
    return store_event_wait(a->store, seen, timeout_ms);
}

void handle_events(void *app, struct http_request *rq)
{
    struct handler_ctx *a = app;
    int64_t last;
    if (!handler_last_event_id(rq, &last))
        return;
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
    /* the first heartbeat after half to all of the interval (spread by the clock's
     * microseconds) */
    double now = clock_mono_s();
    s->next_heartbeat = now + (double)a->cfg->sse_heartbeat_s *
                                  (0.5 + 0.5 * (double)((long long)(now * 1e6) % 1000) / 1000.0);
    store_job_clear(&job);
    http_reply_stream(rq, "text/event-stream", sse_fill, sse_done, s);
}

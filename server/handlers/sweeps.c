/* sweeps.c - submit, list, get, leaderboard, events (Server-Sent Events),
 * cancel, pause, resume and promote sweeps (service/sweeps.h drives them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/jobspec.h"
#include "api/sweep_spec.h"
#include "handlers/handlers.h"
#include "store/events.h"
#include "store/sweeps.h"
#include "util/clock.h"

#define EVENTS_PER_READ 256

static bool load_sweep(struct handler_ctx *a, struct http_request *rq, struct store_sweep *s)
{
    int64_t id;
    if (!handler_path_id(rq, PROBLEM_SWEEP_NOT_FOUND, &id))
        return false;
    struct dim_err err;
    int rc = store_sweep_get(a->store, id, s, &err);
    if (rc == STORE_NOT_FOUND) {
        http_reply_problem(rq, PROBLEM_SWEEP_NOT_FOUND, "no sweep %lld", (long long)id);
        return false;
    }
    if (rc != STORE_OK) {
        handler_internal(rq, "reading the sweep", &err);
        return false;
    }
    return true;
}

/* The *_ms times of sweeps_json as the API's timestamps (*_at, null for 0). */
static json_t *sweep_times(json_t *o)
{
    static const char *const k[][2] = {{"created_ms", "created_at"},
                                       {"updated_ms", "updated_at"},
                                       {"finished_ms", "finished_at"}};
    for (int i = 0; i < 3; i++) {
        json_t *v = json_object_get(o, k[i][0]);
        json_object_set_new(o, k[i][1], http_time_json(json_integer_value(v)));
        json_object_del(o, k[i][0]);
    }
    return o;
}

static void reply_sweep(struct handler_ctx *a, struct http_request *rq, int status,
                        const struct store_sweep *s, bool trials)
{
    struct dim_err err;
    json_t *o = sweeps_json(a->store, s, trials, &err);
    if (!o) {
        handler_internal(rq, "reading the sweep's trials", &err);
        return;
    }
    http_reply_json(rq, status, sweep_times(o));
}

void handle_sweep_submit(void *app, struct http_request *rq)
{
    struct handler_ctx *a = app;
    const char *key;
    if (!handler_idempotency_key(rq, &key))
        return;
    json_t *body = handler_body_json(rq);
    if (!body)
        return;
    json_t *errors = json_array();
    struct sweep_spec ss;
    int bad = sweep_spec_parse(body, datasets_check, a->datasets, &ss, errors);
    if (bad) {
        sweep_spec_clear(&ss);
        json_decref(body);
        http_reply_invalid(rq, errors, "the sweep has %d invalid field%s", bad,
                           bad == 1 ? "" : "s");
        return;
    }
    json_decref(errors);
    json_t *resolved = sweep_spec_to_json(&ss);
    char name[JOBSPEC_NAME_MAX];
    strcpy(name, ss.name);
    sweep_spec_clear(&ss);
    char digest[65], *text;
    if (!handler_submit_texts(rq, body, resolved, digest, &text))
        return;
    if (!handler_writable(a, rq)) {
        free(text);
        return;
    }
    struct store_sweep s;
    struct dim_err err;
    int rc = store_sweep_insert(a->store, text, name[0] ? name : NULL, key, digest, &s, &err);
    free(text);
    if (rc == STORE_OK || rc == STORE_REPLAY) {
        char loc[64];
        snprintf(loc, sizeof loc, "/v1/sweeps/%lld", (long long)s.id);
        http_add_header(rq, "Location", loc);
        if (rc == STORE_REPLAY)
            http_add_header(rq, "Idempotent-Replayed", "true");
        reply_sweep(a, rq, rc == STORE_OK ? 201 : 200, &s, false);
        store_sweep_clear(&s);
        if (rc == STORE_OK)
            sweeps_wake(a->sweeps);
    } else if (rc == STORE_CONFLICT) {
        http_reply_problem(rq, PROBLEM_IDEMPOTENCY_KEY_REUSED,
                           "Idempotency-Key '%s' was used for a different sweep body", key);
    } else {
        handler_store_fail(a, rq, rc, "storing the sweep", &err);
    }
}

void handle_sweep_list(void *app, struct http_request *rq)
{
    struct handler_ctx *a = app;
    unsigned mask = 0;
    const char *states = http_query(rq, "state");
    if (states) {
        char buf[128];
        snprintf(buf, sizeof buf, "%s", states);
        char *save = NULL;
        for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            bool found = false;
            for (int i = 0; i <= SWEEP_CANCELLED; i++)
                if (strcasecmp(t, sweep_state_name((enum sweep_state)i)) == 0)
                    mask |= 1u << i, found = true;
            if (!found) {
                http_reply_problem(rq, PROBLEM_INVALID_PARAMETER,
                                   "query parameter state='%.80s' must be a comma-separated list "
                                   "of RUNNING, PAUSED, SUCCEEDED, FAILED, CANCELLED",
                                   states);
                return;
            }
        }
    }
    int64_t limit, cursor;
    if (!handler_query_int(rq, "limit", 1, 500, 50, &limit) ||
        !handler_query_int(rq, "cursor", 0, INT64_MAX, 0, &cursor))
        return;
    struct store_sweep *s = NULL;
    size_t n = 0;
    bool more = false;
    struct dim_err err;
    if (store_sweep_list(a->store, mask, cursor, (int)limit, &s, &n, &more, &err) != STORE_OK) {
        handler_internal(rq, "listing sweeps", &err);
        return;
    }
    json_t *arr = json_array();
    json_t *next = json_null();
    if (more && n > 0) {
        char c[32];
        snprintf(c, sizeof c, "%lld", (long long)s[n - 1].id);
        next = json_string(c);
    }
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        json_t *o = ok ? sweeps_json(a->store, &s[i], false, &err) : NULL;
        if (!o)
            ok = false;
        else
            json_array_append_new(arr, sweep_times(o));
        store_sweep_clear(&s[i]);
    }
    free(s);
    if (!ok) {
        json_decref(arr);
        json_decref(next);
        handler_internal(rq, "reading the sweeps' trials", &err);
        return;
    }
    http_reply_json(rq, 200, json_pack("{s:o, s:o}", "sweeps", arr, "next_cursor", next));
}

void handle_sweep_get(void *app, struct http_request *rq)
{
    struct store_sweep s;
    if (!load_sweep(app, rq, &s))
        return;
    reply_sweep(app, rq, 200, &s, false);
    store_sweep_clear(&s);
}

void handle_sweep_leaderboard(void *app, struct http_request *rq)
{
    struct store_sweep s;
    if (!load_sweep(app, rq, &s))
        return;
    reply_sweep(app, rq, 200, &s, true);
    store_sweep_clear(&s);
}

typedef int (*sweep_change_fn)(struct sweeps *w, struct dimd_store *store, struct runner *runner,
                               int64_t id, struct dim_err *err);

static void change(struct handler_ctx *a, struct http_request *rq, sweep_change_fn fn,
                   const char *verb)
{
    struct store_sweep s;
    if (!load_sweep(a, rq, &s))
        return;
    int64_t id = s.id;
    store_sweep_clear(&s);
    struct dim_err err;
    int rc = fn(a->sweeps, a->store, a->runner, id, &err);
    if (rc == STORE_CONFLICT) {
        http_reply_problem(rq, PROBLEM_INVALID_TRANSITION, "%s (a sweep cannot be %s from there)",
                           err.msg, verb);
        return;
    }
    if (rc != STORE_OK) {
        handler_store_fail(a, rq, rc, "changing the sweep's state", &err);
        return;
    }
    if (store_sweep_get(a->store, id, &s, &err) != STORE_OK) {
        handler_internal(rq, "reading the sweep", &err);
        return;
    }
    reply_sweep(a, rq, 200, &s, false);
    store_sweep_clear(&s);
}

void handle_sweep_cancel(void *app, struct http_request *rq)
{
    change(app, rq, sweeps_cancel, "cancelled");
}

void handle_sweep_pause(void *app, struct http_request *rq)
{
    change(app, rq, sweeps_pause, "paused");
}

void handle_sweep_resume(void *app, struct http_request *rq)
{
    if (!handler_writable(app, rq))
        return;
    change(app, rq, sweeps_resume, "resumed");
}

void handle_sweep_promote(void *app, struct http_request *rq)
{
    struct handler_ctx *a = app;
    struct store_sweep s;
    if (!load_sweep(a, rq, &s))
        return;
    json_t *body = handler_body_json(rq);
    if (!body) {
        store_sweep_clear(&s);
        return;
    }
    if (json_is_object(body) && json_object_get(body, "job_id")) {
        json_t *errors = json_array();
        jobspec_error(errors, "job_id", "the sweep's best trial gives the job; leave it out");
        http_reply_invalid(rq, errors, "the promotion request is invalid");
        json_decref(body);
        store_sweep_clear(&s);
        return;
    }
    struct dim_err err;
    json_t *sj = sweeps_json(a->store, &s, false, &err);
    int64_t best = s.best_trial;
    store_sweep_clear(&s);
    if (!sj) {
        json_decref(body);
        handler_internal(rq, "reading the sweep's trials", &err);
        return;
    }
    json_t *job = json_object_get(json_object_get(sj, "best"), "job_id");
    if (best < 0 || !json_is_integer(job)) {
        http_reply_problem(rq, PROBLEM_INVALID_TRANSITION, "%s",
                           best < 0 ? "the sweep has no trial with a result yet"
                                    : "the best trial's job was deleted");
        json_decref(sj);
        json_decref(body);
        return;
    }
    if (json_is_object(body)) {
        json_object_set(body, "job_id", job);
        if (!json_object_get(body, "checkpoint"))
            json_object_set_new(body, "checkpoint", json_string("best"));
    }
    json_decref(sj);
    handler_promote(a, rq, body);
}

/* ---- events ---- */

struct sweep_sse {
    struct handler_ctx *a;
    int64_t sweep_id, last_id;
    double next_heartbeat;
    bool started;
};

static int sweep_sse_fill(void *ctx, struct strbuf *out, double *wait_s)
{
    struct sweep_sse *s = ctx;
    struct handler_ctx *a = s->a;
    if (!s->started) {
        s->started = true;
        strbuf_printf(out, "retry: 3000\n\n");
        return HTTP_STREAM_MORE;
    }
    struct store_sweep sw;
    struct dim_err err;
    if (store_sweep_get(a->store, s->sweep_id, &sw, &err) != STORE_OK)
        return HTTP_STREAM_END;
    bool terminal = sweep_state_terminal(sw.state);
    store_sweep_clear(&sw);
    struct store_event *ev = NULL;
    size_t n = 0;
    if (store_sweep_events_after(a->store, s->sweep_id, s->last_id, EVENTS_PER_READ, &ev, &n,
                                 &err) != STORE_OK)
        return HTTP_STREAM_ERROR;
    for (size_t i = 0; i < n; i++) {
        strbuf_printf(out, "id: %lld\nevent: %s\ndata: %s\n\n", (long long)ev[i].id, ev[i].type,
                      ev[i].data);
        s->last_id = ev[i].id;
        store_event_clear(&ev[i]);
    }
    free(ev);
    double now = clock_mono_s();
    if (n > 0) {
        s->next_heartbeat = now + (double)a->cfg->sse_heartbeat_s;
        return HTTP_STREAM_MORE;
    }
    if (terminal || atomic_load(&a->phase) == HANDLER_STOPPING)
        return HTTP_STREAM_END;
    if (now >= s->next_heartbeat - 0.01) {
        strbuf_printf(out, ": heartbeat\n\n");
        s->next_heartbeat = now + (double)a->cfg->sse_heartbeat_s;
        return HTTP_STREAM_MORE;
    }
    *wait_s = s->next_heartbeat - now;
    return HTTP_STREAM_WAIT;
}

static void sweep_sse_done(void *ctx)
{
    free(ctx);
}

void handle_sweep_events(void *app, struct http_request *rq)
{
    struct handler_ctx *a = app;
    int64_t last;
    if (!handler_last_event_id(rq, &last))
        return;
    struct store_sweep sw;
    if (!load_sweep(a, rq, &sw))
        return;
    struct sweep_sse *s = calloc(1, sizeof *s);
    if (!s) {
        store_sweep_clear(&sw);
        http_reply_problem(rq, PROBLEM_INTERNAL, "out of memory");
        return;
    }
    s->a = a;
    s->sweep_id = sw.id;
    s->last_id = last;
    s->next_heartbeat = clock_mono_s() + (double)a->cfg->sse_heartbeat_s;
    store_sweep_clear(&sw);
    http_reply_stream(rq, "text/event-stream", sweep_sse_fill, sweep_sse_done, s);
}

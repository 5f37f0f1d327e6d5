/* sweeps.c - the sweep service (see sweeps.h for the design). */
#include "service/sweeps.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/real.h"
#include "api/sweep_spec.h"
#include "store/events.h"
#include "store/jobs.h"
#include "util/clock.h"

struct sweeps {
    struct dimd_store *store;
    const struct datasets *ds;
    struct runner *runner;
    int default_parallel;
    pthread_t thread;
    atomic_bool stop;
    atomic_bool wake;
};

const char *sweeps_trial_state(const struct store_trial *t)
{
    if (t->stopped_rung >= 0)
        return "STOPPED";
    if (t->job_id == 0)
        return "DELETED";
    if (t->job_state == JOB_PAUSED && t->job_error_code &&
        strcmp(t->job_error_code, "sweep_rung") == 0)
        return "WAITING";
    return job_state_name(t->job_state);
}

/* Sweep events: {"type": ..., ...} compact text (malloc'd), NULL out of memory. */
static char *event_text(json_t *o)
{
    char *t = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(DIMD_REAL_DIGITS)) : NULL;
    json_decref(o);
    return t;
}

/* Whether trial a ranks before b: the higher rung, then the metric, then the
 * lower number. */
static bool trial_before(const struct store_trial *a, const struct store_trial *b, bool maximize)
{
    bool fa = a->rung >= 0 && isfinite(a->value), fb = b->rung >= 0 && isfinite(b->value);
    if (fa != fb)
        return fa;
    if (fa && a->rung != b->rung)
        return a->rung > b->rung;
    if (fa && sweep_better(a->value, b->value, maximize))
        return true;
    if (fa && sweep_better(b->value, a->value, maximize))
        return false;
    return a->trial < b->trial;
}

static bool is_active(const struct store_trial *t)
{
    return t->job_id && t->stopped_rung < 0 &&
           (t->job_state == JOB_QUEUED || t->job_state == JOB_RUNNING);
}

static bool is_waiting(const struct store_trial *t)
{
    return t->job_id && t->job_state == JOB_PAUSED && t->job_error_code &&
           strcmp(t->job_error_code, "sweep_rung") == 0;
}

static bool is_over(const struct store_trial *t)
{
    return t->job_id == 0 || t->stopped_rung >= 0 || job_state_terminal(t->job_state);
}

static int load_spec(const struct datasets *ds, const char *text, struct sweep_spec *ss,
                     struct dim_err *err)
{
    json_error_t jerr;
    json_t *body = json_loads(text, 0, &jerr);
    json_t *errors = json_array();
    int bad = body ? sweep_spec_parse(body, datasets_check, ds, ss, errors) : 1;
    if (bad) {
        json_t *e0 = json_array_get(errors, 0);
        dim_fail(err, DIM_EINVAL, "the sweep's spec no longer parses: %s: %s",
                 e0 ? json_string_value(json_object_get(e0, "path")) : "$",
                 e0 ? json_string_value(json_object_get(e0, "message")) : jerr.text);
    }
    json_decref(body);
    json_decref(errors);
    return bad ? -1 : 0;
}

/* The rung of a step of a run of total steps (k < n - 1), or -1. */
static int rung_of(const struct sweep_spec *ss, const double *res, int n, int64_t total,
                   int64_t step)
{
    for (int k = 0; k + 1 < n; k++)
        if ((int64_t)sweep_rung_step((uint64_t)total, res[k], ss->budget) == step)
            return k;
    return -1;
}

static bool has_result(const struct store_rung_result *r, size_t n, int64_t trial, int rung)
{
    for (size_t i = 0; i < n; i++)
        if (r[i].trial == trial && r[i].rung == rung)
            return true;
    return false;
}

/* Records the metric of every trial waiting at a rung or finished; *added = how many. */
static int record_results(struct dimd_store *store, int64_t id, const struct sweep_spec *ss,
                          const double *res, int n_rungs, const struct store_trial *t, size_t nt,
                          const struct store_rung_result *r, size_t nr, int *added,
                          struct dim_err *err)
{
    *added = 0;
    bool probe = strncmp(ss->metric, "probe_", 6) == 0;
    for (size_t i = 0; i < nt; i++) {
        int rung = -1;
        int64_t step = 0;
        if (is_waiting(&t[i]) && t[i].stopped_rung < 0) {
            step = t[i].step;
            rung = rung_of(ss, res, n_rungs, t[i].total_steps, step);
        } else if (t[i].job_id && t[i].job_state == JOB_SUCCEEDED) {
            step = t[i].total_steps;
            rung = n_rungs - 1;
        }
        if (rung < 0 || has_result(r, nr, t[i].trial, rung))
            continue;
        int64_t window = probe ? 1 : (step / 10 < 1 ? 1 : step / 10);
        double v = NAN;
        int rc = store_sweep_metric_at(store, t[i].job_id, ss->metric, step, window, &v, err);
        if (rc != STORE_OK)
            return rc;
        json_t *e = json_pack("{s:s, s:I, s:i, s:I, s:o, s:I}", "type", "rung_result", "trial",
                              (json_int_t)t[i].trial, "rung", rung, "step", (json_int_t)step,
                              "value", real_json(v), "job_id", (json_int_t)t[i].job_id);
        rc = store_sweep_add_result(store, id, t[i].trial, rung, step, v, event_text(e), err);
        if (rc == STORE_OK)
            ++*added;
        else if (rc != STORE_CONFLICT)
            return rc;
    }
    return STORE_OK;
}

/* ASHA's decisions at every rung below the last; *slots drops by the promotions. */
static int decide(struct dimd_store *store, struct runner *runner, int64_t id,
                  const struct sweep_spec *ss, int n_rungs, const struct store_trial *t, size_t nt,
                  const struct store_rung_result *r, size_t nr, int *slots, struct dim_err *err)
{
    struct sweep_rung_entry *e = calloc(nr + 1, sizeof *e);
    int64_t *prom = calloc(nr + 1, sizeof *prom), *stop = calloc(nr + 1, sizeof *stop);
    int rc = STORE_OK;
    if (!e || !prom || !stop) {
        rc = STORE_ERROR;
        dim_fail(err, DIM_ENOMEM, "out of memory for the rung decisions");
        goto out;
    }
    for (int k = n_rungs - 2; k >= 0; k--) {
        size_t n = 0;
        for (size_t i = 0; i < nr; i++) {
            if (r[i].rung != k)
                continue;
            e[n].trial = r[i].trial;
            e[n].value = r[i].value;
            e[n].decision = (enum sweep_decision)r[i].decision;
            /* a trial no longer waiting at this rung (cancelled, failed, deleted) keeps
             * its place in the ranking but cannot be decided on */
            if (e[n].decision == SWEEP_UNDECIDED) {
                bool waiting = false;
                for (size_t j = 0; j < nt; j++)
                    if (t[j].trial == r[i].trial)
                        waiting = is_waiting(&t[j]) && t[j].step == r[i].step;
                if (!waiting)
                    e[n].decision = SWEEP_STOP;
            }
            n++;
        }
        /* complete: every trial is created and each has a result here or is out before it */
        bool complete = nt == (size_t)ss->trials;
        for (size_t j = 0; complete && j < nt; j++) {
            if (has_result(r, nr, t[j].trial, k))
                continue;
            bool out_before = is_over(&t[j]);
            complete = out_before;
        }
        size_t np = 0, ns = 0;
        sweep_asha_decide(e, n, ss->eta, ss->maximize, complete, (size_t)(*slots > 0 ? *slots : 0),
                          prom, &np, stop, &ns);
        for (size_t i = 0; i < np + ns; i++) {
            bool promote = i < np;
            int64_t trial = promote ? prom[i] : stop[i - np];
            size_t rank = 0, at = 0;
            for (size_t q = 0; q < n; q++)
                if (e[q].trial == trial)
                    rank = q + 1, at = q;
            char msg[200];
            snprintf(msg, sizeof msg,
                     "stopped by the sweep at rung %d: %s %.6g ranks %zu of %zu (reduction "
                     "factor %d)",
                     k, ss->metric, e[at].value, rank, n, ss->eta);
            json_t *ev = json_pack("{s:s, s:I, s:i, s:s, s:o, s:I, s:I, s:b}", "type", "decision",
                                   "trial", (json_int_t)trial, "rung", k, "decision",
                                   promote ? "promote" : "stop", "value", real_json(e[at].value),
                                   "rank", (json_int_t)rank, "of", (json_int_t)n, "complete",
                                   complete);
            rc = store_sweep_decide(store, id, trial, k, promote, msg, event_text(ev), err);
            if (rc == STORE_OK && promote) {
                --*slots;
                if (runner)
                    runner_wake(runner);
            } else if (rc == STORE_CONFLICT) {
                rc = STORE_OK;
            } else if (rc != STORE_OK) {
                goto out;
            }
        }
    }
out:
    free(e);
    free(prom);
    free(stop);
    return rc;
}

int sweeps_pass(struct dimd_store *store, const struct datasets *ds, struct runner *runner,
                int default_parallel, int64_t id, struct dim_err *err)
{
    struct store_sweep sw;
    int rc = store_sweep_get(store, id, &sw, err);
    if (rc != STORE_OK)
        return rc;
    if (sw.state != SWEEP_RUNNING) {
        store_sweep_clear(&sw);
        return STORE_OK;
    }
    struct sweep_spec ss;
    if (load_spec(ds, sw.spec_json, &ss, err) != 0) {
        sweep_spec_clear(&ss);
        char *t = event_text(json_pack("{s:s, s:s, s:s, s:s}", "type", "state", "state", "FAILED",
                                       "previous", "RUNNING", "error", err->msg));
        rc = store_sweep_transition(store, id, 1u << SWEEP_RUNNING, SWEEP_FAILED, t, NULL, NULL,
                                    err);
        store_sweep_clear(&sw);
        return rc;
    }
    double res[SWEEP_MAX_RUNGS];
    int n_rungs = sweep_rungs(&ss, res);
    struct store_trial *t = NULL;
    struct store_rung_result *r = NULL;
    size_t nt = 0, nr = 0;
    int added = 0;
    rc = store_sweep_trials(store, id, &t, &nt, err);
    if (rc == STORE_OK)
        rc = store_sweep_results(store, id, &r, &nr, err);
    if (rc == STORE_OK)
        rc = record_results(store, id, &ss, res, n_rungs, t, nt, r, nr, &added, err);
    if (rc == STORE_OK && added) {
        free(r);
        r = NULL;
        rc = store_sweep_results(store, id, &r, &nr, err);
    }
    if (rc != STORE_OK)
        goto out;
    int parallel = ss.parallel ? ss.parallel : default_parallel;
    if (parallel < 1)
        parallel = 1;
    int active = 0;
    for (size_t i = 0; i < nt; i++)
        active += is_active(&t[i]);
    int slots = parallel - active;
    if (ss.algo == SWEEP_ASHA) {
        rc = decide(store, runner, id, &ss, n_rungs, t, nt, r, nr, &slots, err);
        if (rc != STORE_OK)
            goto out;
    }
    /* new trials */
    for (int i = (int)nt; i < ss.trials && slots > 0; i++) {
        json_t *body = sweep_trial_body(&ss, id, i);
        json_t *errors = json_array();
        struct job_spec js;
        int bad = jobspec_parse(body, datasets_check, ds, &js, errors);
        json_decref(errors);
        json_decref(body);
        json_t *params = sweep_trial_params(&ss, i);
        if (bad) {
            /* the dataset went away since the sweep was validated: the job fails with
             * its reason, as any job would */
            jobspec_default(&js);
        }
        json_t *spec = jobspec_to_json(&js);
        if (bad) {
            json_decref(spec);
            spec = sweep_trial_body(&ss, id, i);
        }
        char *spec_text = json_dumps(spec, JSON_COMPACT | JSON_REAL_PRECISION(DIMD_REAL_DIGITS));
        char *params_text = json_dumps(params, JSON_COMPACT | JSON_REAL_PRECISION(DIMD_REAL_DIGITS));
        json_t *ev = json_pack("{s:s, s:i, s:O}", "type", "trial_started", "trial", i, "params",
                               params);
        json_decref(spec);
        json_decref(params);
        int64_t job = 0;
        if (!spec_text || !params_text) {
            free(spec_text);
            free(params_text);
            json_decref(ev);
            rc = STORE_ERROR;
            dim_fail(err, DIM_ENOMEM, "out of memory for a trial");
            goto out;
        }
        rc = store_sweep_add_trial(store, id, i, params_text, spec_text, js.name, event_text(ev),
                                   &job, err);
        free(spec_text);
        free(params_text);
        if (rc == STORE_CONFLICT) {
            rc = STORE_OK;
            break;
        }
        if (rc != STORE_OK)
            goto out;
        slots--;
        if (runner)
            runner_wake(runner);
    }
    /* the best trial, and the end */
    {
        struct store_trial *fresh = NULL;
        size_t nf = 0;
        for (size_t i = 0; i < nt; i++)
            store_trial_clear(&t[i]);
        free(t);
        t = NULL;
        nt = 0;
        rc = store_sweep_trials(store, id, &fresh, &nf, err);
        if (rc != STORE_OK)
            goto out;
        t = fresh;
        nt = nf;
    }
    const struct store_trial *best = NULL;
    bool all_over = nt == (size_t)ss.trials;
    for (size_t i = 0; i < nt; i++) {
        if (t[i].rung >= 0 && isfinite(t[i].value) &&
            (!best || trial_before(&t[i], best, ss.maximize)))
            best = &t[i];
        bool over = is_over(&t[i]);
        /* a finished trial waits for its last result */
        if (over && t[i].job_id && t[i].job_state == JOB_SUCCEEDED && t[i].rung != n_rungs - 1)
            over = false;
        all_over = all_over && over;
    }
    if (best && best->trial != sw.best_trial) {
        json_error_t jerr;
        json_t *p = json_loads(best->params_json, 0, &jerr);
        char *ev = event_text(json_pack("{s:s, s:I, s:i, s:o, s:o, s:I}", "type", "best", "trial",
                                        (json_int_t)best->trial, "rung", best->rung, "value",
                                        real_json(best->value), "params", p ? p : json_null(),
                                        "job_id", (json_int_t)best->job_id));
        rc = store_sweep_set_best(store, id, best->trial, ev, err);
        if (rc != STORE_OK)
            goto out;
    }
    if (all_over) {
        enum sweep_state to = best ? SWEEP_SUCCEEDED : SWEEP_FAILED;
        char *ev = event_text(json_pack("{s:s, s:s, s:s}", "type", "state", "state",
                                        sweep_state_name(to), "previous", "RUNNING"));
        rc = store_sweep_transition(store, id, 1u << SWEEP_RUNNING, to, ev, NULL, NULL, err);
        if (rc == STORE_CONFLICT)
            rc = STORE_OK;
    }
out:
    for (size_t i = 0; i < nt; i++)
        store_trial_clear(&t[i]);
    free(t);
    free(r);
    sweep_spec_clear(&ss);
    store_sweep_clear(&sw);
    return rc;
}

static void *sweeps_main(void *arg)
{
    struct sweeps *w = arg;
    uint64_t seen = store_event_seq(w->store);
    while (!atomic_load(&w->stop)) {
        int64_t *ids = NULL;
        size_t n = 0;
        struct dim_err err;
        atomic_store(&w->wake, false);
        if (store_sweep_running(w->store, &ids, &n, &err) != STORE_OK)
            fprintf(stderr, "dimd: sweeps: %s\n", err.msg);
        for (size_t i = 0; i < n && !atomic_load(&w->stop); i++)
            if (sweeps_pass(w->store, w->ds, w->runner, w->default_parallel, ids[i], &err) !=
                STORE_OK)
                fprintf(stderr, "dimd: sweep %lld: %s\n", (long long)ids[i], err.msg);
        free(ids);
        /* a pause between passes: metric flushes commit often */
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        if (!atomic_load(&w->wake))
            seen = store_event_wait(w->store, seen, 1000);
        else
            seen = store_event_seq(w->store);
    }
    return NULL;
}

int sweeps_start(struct sweeps **out, struct dimd_store *store, const struct datasets *ds,
                 struct runner *runner, int default_parallel, struct dim_err *err)
{
    *out = NULL;
    struct sweeps *w = calloc(1, sizeof *w);
    if (!w)
        return dim_fail(err, DIM_ENOMEM, "out of memory for the sweep service");
    w->store = store;
    w->ds = ds;
    w->runner = runner;
    w->default_parallel = default_parallel;
    atomic_init(&w->stop, false);
    atomic_init(&w->wake, false);
    int rc = pthread_create(&w->thread, NULL, sweeps_main, w);
    if (rc != 0) {
        free(w);
        return dim_fail(err, DIM_ENOMEM, "cannot start the sweep thread: %s", strerror(rc));
    }
    *out = w;
    return 0;
}

void sweeps_wake(struct sweeps *w)
{
    if (w)
        atomic_store(&w->wake, true);
}

void sweeps_stop(struct sweeps *w)
{
    if (!w)
        return;
    atomic_store(&w->stop, true);
    pthread_join(w->thread, NULL);
    free(w);
}

static int change(struct sweeps *w, struct dimd_store *store, struct runner *runner, int64_t id,
                  unsigned from, enum sweep_state to, struct dim_err *err)
{
    struct store_sweep sw;
    int rc = store_sweep_get(store, id, &sw, err);
    if (rc != STORE_OK)
        return rc;
    char *ev = event_text(json_pack("{s:s, s:s, s:s}", "type", "state", "state",
                                    sweep_state_name(to), "previous", sweep_state_name(sw.state)));
    store_sweep_clear(&sw);
    int64_t *moved = NULL;
    size_t n = 0;
    rc = store_sweep_transition(store, id, from, to, ev, &moved, &n, err);
    if (rc == STORE_OK && runner) {
        for (size_t i = 0; i < n; i++)
            runner_job_changed(runner, moved[i]);
        runner_wake(runner);
    }
    free(moved);
    sweeps_wake(w);
    return rc;
}

int sweeps_pause(struct sweeps *w, struct dimd_store *store, struct runner *runner, int64_t id,
                 struct dim_err *err)
{
    return change(w, store, runner, id, 1u << SWEEP_RUNNING, SWEEP_PAUSED, err);
}

int sweeps_resume(struct sweeps *w, struct dimd_store *store, struct runner *runner, int64_t id,
                  struct dim_err *err)
{
    return change(w, store, runner, id, 1u << SWEEP_PAUSED, SWEEP_RUNNING, err);
}

int sweeps_cancel(struct sweeps *w, struct dimd_store *store, struct runner *runner, int64_t id,
                  struct dim_err *err)
{
    return change(w, store, runner, id, (1u << SWEEP_RUNNING) | (1u << SWEEP_PAUSED),
                  SWEEP_CANCELLED, err);
}

static json_t *trial_json(const struct store_trial *t, const struct sweep_spec *ss)
{
    json_error_t jerr;
    json_t *p = json_loads(t->params_json, 0, &jerr);
    return json_pack("{s:I, s:s, s:o, s:o, s:o, s:o, s:I, s:I, s:o, s:o}", "trial",
                     (json_int_t)t->trial, "state", sweeps_trial_state(t), "job_id",
                     t->job_id ? json_integer((json_int_t)t->job_id) : json_null(), "params",
                     p ? p : json_null(), "rung", t->rung >= 0 ? json_integer(t->rung) : json_null(),
                     "metric", t->rung >= 0 ? real_json(t->value) : json_null(), "step",
                     (json_int_t)t->step, "total_steps", (json_int_t)t->total_steps,
                     "stopped_at_rung",
                     t->stopped_rung >= 0 ? json_integer(t->stopped_rung) : json_null(),
                     "metric_step", t->rung >= 0 ? json_integer((json_int_t)t->rung_step)
                                                 : json_null());
    (void)ss;
}

json_t *sweeps_json(struct dimd_store *store, const struct store_sweep *s, bool with_trials,
                    struct dim_err *err)
{
    struct store_trial *t = NULL;
    size_t nt = 0;
    if (store_sweep_trials(store, s->id, &t, &nt, err) != STORE_OK)
        return NULL;
    json_error_t jerr;
    json_t *spec = json_loads(s->spec_json, 0, &jerr);
    bool maximize = true;
    const char *dir = json_string_value(json_object_get(spec, "direction"));
    if (dir && strcmp(dir, "min") == 0)
        maximize = false;
    json_t *counts = json_object();
    const char *const names[] = {"QUEUED",    "RUNNING",  "PAUSED", "WAITING", "SUCCEEDED",
                                 "FAILED",    "CANCELLED", "STOPPED", "DELETED"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        json_object_set_new(counts, names[i], json_integer(0));
    const struct store_trial *best = NULL;
    for (size_t i = 0; i < nt; i++) {
        const char *st = sweeps_trial_state(&t[i]);
        json_object_set_new(counts, st,
                            json_integer(json_integer_value(json_object_get(counts, st)) + 1));
        if (t[i].trial == s->best_trial)
            best = &t[i];
    }
    json_t *o = json_pack(
        "{s:I, s:o, s:s, s:o, s:I, s:o, s:o, s:o, s:I, s:I, s:I, s:I}", "id", (json_int_t)s->id,
        "name", s->name ? json_string(s->name) : json_null(), "state", sweep_state_name(s->state),
        "spec", spec ? spec : json_null(), "trials_created", (json_int_t)nt, "counts", counts,
        "best", best ? trial_json(best, NULL) : json_null(), "metric",
        json_incref(json_object_get(spec, "metric")), "created_ms", (json_int_t)s->created_ms,
        "updated_ms", (json_int_t)s->updated_ms, "finished_ms", (json_int_t)s->finished_ms,
        "last_event_id", (json_int_t)s->last_event_id);
    if (with_trials) {
        /* the leaderboard order (insertion sort: trials are few) */
        for (size_t i = 1; i < nt; i++) {
            struct store_trial x = t[i];
            size_t j = i;
            while (j > 0 && trial_before(&x, &t[j - 1], maximize)) {
                t[j] = t[j - 1];
                j--;
            }
            t[j] = x;
        }
        json_t *arr = json_array();
        for (size_t i = 0; i < nt; i++)
            json_array_append_new(arr, trial_json(&t[i], NULL));
        json_object_set_new(o, "trials", arr);
    }
    for (size_t i = 0; i < nt; i++)
        store_trial_clear(&t[i]);
    free(t);
    return o;
}

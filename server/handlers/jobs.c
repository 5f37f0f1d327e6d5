/* jobs.c - submit, list, get, delete, cancel, pause and resume jobs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "handlers/handlers.h"
#include "api/evalspec.h"
#include "api/jobspec.h"

#define RETRY_AFTER_S "30"

/* Validates a job body, training or evaluation ("kind"), and returns its
 * resolved spec (NULL with errors appended). An evaluation's model version must
 * exist; "latest" becomes the newest version's number. */
static json_t *spec_resolve(struct handler_ctx *a, const json_t *body, char name[JOBSPEC_NAME_MAX],
                            json_t *errors)
{
    name[0] = '\0';
    if (!evalspec_is_evaluation(body)) {
        struct job_spec spec;
        int bad = jobspec_parse(body, datasets_check, a->datasets, &spec, errors);
        if (json_is_object(body) && jobspec_sets_sweep(body)) {
            jobspec_error(errors, json_object_get(body, "sweep_id") ? "sweep_id" : "trial",
                          "is set by POST /v1/sweeps for its trials, not by a job");
            bad++;
        }
        bad += jobspec_check_limits(&spec, a->cfg->max_ranks, errors);
        if (bad != 0)
            return NULL;
        strcpy(name, spec.name);
        return jobspec_to_json(&spec);
    }
    struct eval_spec es;
    if (evalspec_parse(body, &es, errors) != 0)
        return NULL;
    struct store_model_version v;
    struct dim_err err;
    int rc = store_model_get(a->store, es.model, es.version, &v, NULL, NULL, NULL, &err);
    if (rc == STORE_NOT_FOUND) {
        struct store_model_version *all = NULL;
        size_t n = 0;
        bool model = store_model_versions(a->store, es.model, &all, &n, &err) == STORE_OK;
        for (size_t i = 0; i < n; i++)
            store_model_version_clear(&all[i]);
        free(all);
        if (model)
            jobspec_error(errors, "version", "model '%s' has no version v%d", es.model, es.version);
        else
            jobspec_error(errors, "model", "no model '%s'", es.model);
        return NULL;
    }
    if (rc != STORE_OK) {
        jobspec_error(errors, "model", "reading model '%s' failed: %s", es.model, err.msg);
        return NULL;
    }
    es.version = v.version;
    store_model_version_clear(&v);
    strcpy(name, es.name);
    return evalspec_to_json(&es);
}

void handle_job_submit(void *app, struct http_request *rq)
{
    struct handler_ctx *a = app;
    const char *key;
    if (!handler_idempotency_key(rq, &key))
        return;
    json_t *body = handler_body_json(rq);
    if (!body)
        return;
    json_t *errors = json_array();
    char name[JOBSPEC_NAME_MAX];
    json_t *resolved = spec_resolve(a, body, name, errors);
    int bad = (int)json_array_size(errors);
    if (bad) {
        json_decref(resolved);
        http_reply_invalid(rq, errors, "the job has %d invalid field%s", bad, bad == 1 ? "" : "s");
        json_decref(body);
        return;
    }
    json_decref(errors);
    char digest[65], *spec_text;
    if (!handler_submit_texts(rq, body, resolved, digest, &spec_text))
        return;
    if (!handler_writable(a, rq)) {
        free(spec_text);
        return;
    }
    struct store_job job;
    struct dim_err err;
    int rc = store_job_insert(a->store, spec_text, name[0] ? name : NULL, key, digest,
                              a->cfg->queue_max, &job, &err);
    free(spec_text);
    switch (rc) {
    case STORE_OK:
    case STORE_REPLAY: {
        char loc[64];
        snprintf(loc, sizeof loc, "/v1/jobs/%lld", (long long)job.id);
        http_add_header(rq, "Location", loc);
        if (rc == STORE_REPLAY)
            http_add_header(rq, "Idempotent-Replayed", "true");
        http_reply_json(rq, rc == STORE_OK ? 201 : 200, handler_job_json(&job));
        store_job_clear(&job);
        if (rc == STORE_OK && a->runner)
            runner_wake(a->runner);
        return;
    }
    case STORE_CONFLICT:
        http_reply_problem(rq, PROBLEM_IDEMPOTENCY_KEY_REUSED,
                           "Idempotency-Key '%s' was used for a different job body", key);
        return;
    case STORE_QUEUE_FULL:
        http_add_header(rq, "Retry-After", RETRY_AFTER_S);
        http_reply_problem(rq, PROBLEM_QUEUE_FULL,
                           "%ld jobs are queued, the most queue_max allows; retry later",
                           a->cfg->queue_max);
        return;
    default:
        handler_store_fail(a, rq, rc, "storing the job", &err);
    }
}

/* "QUEUED,RUNNING" -> mask; false when a name is not a state. */
static bool parse_states(const char *s, unsigned *mask)
{
    *mask = 0;
    char buf[256];
    if (strlen(s) >= sizeof buf)
        return false;
    strcpy(buf, s);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        for (char *c = t; *c; c++)
            if (*c >= 'a' && *c <= 'z')
                *c = (char)(*c - 'a' + 'A');
        int st = job_state_parse(t);
        if (st < 0)
            return false;
        *mask |= JOB_MASK(st);
    }
    return *mask != 0;
}

void handle_job_list(void *app, struct http_request *rq)
{
    struct handler_ctx *a = app;
    unsigned mask = 0;
    const char *states = http_query(rq, "state");
    if (states && !parse_states(states, &mask)) {
        http_reply_problem(rq, PROBLEM_INVALID_PARAMETER,
                           "query parameter state='%.80s' must be a comma-separated list of "
                           "QUEUED, RUNNING, PAUSED, SUCCEEDED, FAILED, CANCELLED",
                           states);
        return;
    }
    struct store_job_filter f = {mask, http_query(rq, "kind"), http_query(rq, "model"), 0};
    if (f.kind && strcmp(f.kind, "train") != 0 && strcmp(f.kind, "evaluate") != 0) {
        http_reply_problem(rq, PROBLEM_INVALID_PARAMETER,
                           "query parameter kind='%.40s' must be train or evaluate", f.kind);
        return;
    }
    if (f.model && !model_name_ok(f.model)) {
        http_reply_problem(rq, PROBLEM_INVALID_PARAMETER,
                           "query parameter model='%.80s' is not a model name", f.model);
        return;
    }
    const char *version = http_query(rq, "version");
    if (version && (!f.model || !model_version_parse(version, &f.version) || !f.version)) {
        http_reply_problem(rq, PROBLEM_INVALID_PARAMETER,
                           "query parameter version='%.40s' must be a version (v3 or 3) of the "
                           "model given with model=",
                           version);
        return;
    }
    int64_t limit, cursor;
    if (!handler_query_int(rq, "limit", 1, 500, 50, &limit) ||
        !handler_query_int(rq, "cursor", 0, INT64_MAX, 0, &cursor))
        return;
    struct store_job *jobs = NULL;
    size_t n = 0;
    bool more = false;
    struct dim_err err;
    if (store_job_list(a->store, &f, cursor, (int)limit, &jobs, &n, &more, &err) != STORE_OK) {
        handler_internal(rq, "listing jobs", &err);
        return;
    }
    json_t *next = json_null();
    if (more && n > 0) { /* the cursor: the oldest id on this page */
        char c[32];
        snprintf(c, sizeof c, "%lld", (long long)jobs[n - 1].id);
        next = json_string(c);
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, handler_job_json(&jobs[i]));
        store_job_clear(&jobs[i]);
    }
    free(jobs);
    http_reply_json(rq, 200, json_pack("{s:o, s:o}", "jobs", arr, "next_cursor", next));
}

void handle_job_get(void *app, struct http_request *rq)
{
    struct store_job job;
    if (!handler_load_job(app, rq, &job))
        return;
    http_reply_json(rq, 200, handler_job_json(&job));
    store_job_clear(&job);
}

void handle_job_delete(void *app, struct http_request *rq)
{
    struct handler_ctx *a = app;
    int64_t id;
    if (!handler_path_id(rq, PROBLEM_JOB_NOT_FOUND, &id))
        return;
    struct dim_err err;
    int rc = store_job_delete(a->store, id, &err);
    if (rc == STORE_OK) {
        handler_deleted(a);
        http_reply_empty(rq, 204);
    } else if (rc == STORE_NOT_FOUND)
        http_reply_problem(rq, PROBLEM_JOB_NOT_FOUND, "no job %lld", (long long)id);
    else if (rc == STORE_CONFLICT)
        http_reply_problem(rq, PROBLEM_JOB_NOT_TERMINAL,
                           "job %lld is not finished; cancel it first (only SUCCEEDED, FAILED "
                           "and CANCELLED jobs can be deleted)",
                           (long long)id);
    else
        handler_store_fail(a, rq, rc, "deleting the job", &err);
}

static void transition(struct handler_ctx *a, struct http_request *rq, unsigned from, enum job_state to,
                       const char *verb)
{
    int64_t id;
    if (!handler_path_id(rq, PROBLEM_JOB_NOT_FOUND, &id))
        return;
    struct store_job job;
    struct dim_err err;
    int rc = store_job_transition(a->store, id, from, to, NULL, NULL, &job, &err);
    if (rc == STORE_NOT_FOUND) {
        http_reply_problem(rq, PROBLEM_JOB_NOT_FOUND, "no job %lld", (long long)id);
        return;
    }
    if (rc == STORE_CONFLICT) {
        http_reply_problem(rq, PROBLEM_INVALID_TRANSITION, "job %lld is %s and cannot be %s%s",
                           (long long)id, job_state_name(job.state), verb,
                           job_state_terminal(job.state) ? " (terminal states never change)" : "");
        store_job_clear(&job);
        return;
    }
    if (rc != STORE_OK) {
        handler_store_fail(a, rq, rc, "changing the job's state", &err);
        return;
    }
    if (a->runner) {
        runner_job_changed(a->runner, id);
        if (to == JOB_QUEUED)
            runner_wake(a->runner);
    }
    http_reply_json(rq, 200, handler_job_json(&job));
    store_job_clear(&job);
}

void handle_job_cancel(void *app, struct http_request *rq)
{
    transition(app, rq, JOB_MASK(JOB_QUEUED) | JOB_MASK(JOB_RUNNING) | JOB_MASK(JOB_PAUSED),
               JOB_CANCELLED, "cancelled");
}

void handle_job_pause(void *app, struct http_request *rq)
{
    transition(app, rq, JOB_MASK(JOB_QUEUED) | JOB_MASK(JOB_RUNNING), JOB_PAUSED, "paused");
}

void handle_job_resume(void *app, struct http_request *rq)
{
    /* a resumed job writes metrics and checkpoints: not on a full disk */
    if (!handler_writable(app, rq))
        return;
    transition(app, rq, JOB_MASK(JOB_PAUSED), JOB_QUEUED, "resumed");
}

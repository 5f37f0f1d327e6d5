/* checkpoints.c - list a job's checkpoints; download one with its ETag. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/handlers.h"
#include "store/checkpoints.h"

static json_t *checkpoint_json(int64_t job_id, const struct store_checkpoint *c)
{
    char url[96];
    snprintf(url, sizeof url, "/v1/jobs/%lld/checkpoints/%lld", (long long)job_id,
             (long long)c->step);
    json_t *m = c->metrics_json ? json_loads(c->metrics_json, 0, NULL) : NULL;
    return json_pack("{s:I, s:I, s:s, s:o, s:o, s:s}", "step", (json_int_t)c->step, "bytes",
                     (json_int_t)c->bytes, "sha256", c->sha256, "created_at",
                     http_time_json(c->created_ms), "metrics", m ? m : json_object(), "url", url);
}

void handle_checkpoint_list(void *app, struct http_request *rq)
{
    struct handler_ctx *a = app;
    struct store_job job;
    if (!handler_load_job(a, rq, &job))
        return;
    struct store_checkpoint *cs = NULL;
    size_t n = 0;
    struct dim_err err;
    if (store_checkpoint_list(a->store, job.id, &cs, &n, &err) != STORE_OK) {
        store_job_clear(&job);
        handler_internal(rq, "listing checkpoints", &err);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, checkpoint_json(job.id, &cs[i]));
        store_checkpoint_clear(&cs[i]);
    }
    free(cs);
    http_reply_json(rq, 200,
                    json_pack("{s:I, s:o}", "job_id", (json_int_t)job.id, "checkpoints", arr));
    store_job_clear(&job);
}

void handle_checkpoint_get(void *app, struct http_request *rq)
{
    struct handler_ctx *a = app;
    struct store_job job;
    if (!handler_load_job(a, rq, &job))
        return;
    const char *sp = http_param(rq, "step");
    int64_t step = -1;
    if (strcmp(sp, "latest") != 0) {
        char *end;
        long long v = strtoll(sp, &end, 10);
        if (end == sp || *end || v < 0 || sp[0] == '-' || sp[0] == '+' || sp[0] == ' ') {
            http_reply_problem(rq, PROBLEM_CHECKPOINT_NOT_FOUND,
                               "'%.40s' is not a step (an integer, or latest)", sp);
            store_job_clear(&job);
            return;
        }
        step = v;
    }
    struct store_checkpoint meta;
    void *data = NULL;
    struct dim_err err;
    int rc = store_checkpoint_get(a->store, job.id, step, &meta, &data, &err);
    if (rc == STORE_NOT_FOUND) {
        http_reply_problem(rq, PROBLEM_CHECKPOINT_NOT_FOUND, "job %lld has no checkpoint %s%s",
                           (long long)job.id, step < 0 ? "yet" : "at step ", step < 0 ? "" : sp);
        store_job_clear(&job);
        return;
    }
    if (rc != STORE_OK) {
        store_job_clear(&job);
        handler_internal(rq, "reading the checkpoint", &err);
        return;
    }
    char etag[72], file[96];
    snprintf(etag, sizeof etag, "\"%s\"", meta.sha256);
    snprintf(file, sizeof file, "job-%lld-step-%lld.dimdckpt", (long long)job.id,
             (long long)meta.step);
    if (handler_not_modified(rq, etag))
        free(data);
    else
        handler_reply_download(rq, file, data, (size_t)meta.bytes);
    store_checkpoint_clear(&meta);
    store_job_clear(&job);
}

/* service.c - health, readiness, version, the API document, Prometheus
 * metrics, datasets and the job schema. */
#include <stdio.h>
#include <string.h>

#include "handlers/handlers.h"
#include "api/evalspec.h"
#include "util/assets.h"
#include "util/clock.h"
#include "api/jobspec.h"

void handle_healthz(void *app, struct http_request *rq)
{
    (void)app;
    http_reply_json(rq, 200, json_pack("{s:s}", "status", "ok"));
}

void handle_readyz(void *app, struct http_request *rq)
{
    struct handler_ctx *a = app;
    int phase = atomic_load(&a->phase);
    if (phase != HANDLER_READY) {
        http_reply_problem(rq, PROBLEM_NOT_READY, "dimd is %s",
                           phase == HANDLER_STARTING ? "starting" : "stopping");
        return;
    }
    int64_t counts[JOB_N_STATES];
    struct dim_err err;
    if (store_job_counts(a->store, counts, &err) != 0) {
        http_reply_problem(rq, PROBLEM_NOT_READY, "the database does not answer: %s", err.msg);
        return;
    }
    struct storage_status st;
    if (a->storage && !storage_admit(a->storage, 0, &st)) {
        http_reply_problem(rq, PROBLEM_INSUFFICIENT_STORAGE,
                           "read-mostly mode since %.1f s: %s; the state directory has %lld bytes "
                           "free and dimd accepts writes again at %lld",
                           (double)(clock_wall_ms() - st.since_ms) / 1000.0, st.reason,
                           (long long)st.free_bytes, (long long)st.leave_bytes);
        return;
    }
    http_reply_json(rq, 200, json_pack("{s:s, s:I, s:I}", "status", "ready", "workers",
                                       (json_int_t)a->cfg->workers, "queue_depth",
                                       (json_int_t)counts[JOB_QUEUED]));
}

void handle_version(void *app, struct http_request *rq)
{
    struct handler_ctx *a = app;
    http_reply_json(rq, 200, json_pack("{s:s, s:s, s:i}", "version", DIMD_VERSION, "api", "v1",
                                       "schema_version", store_schema_version(a->store)));
}

void handle_openapi(void *app, struct http_request *rq)
{
    (void)app;
    const struct asset_file *f = assets_find("openapi.yaml");
    if (!f) {
        http_reply_problem(rq, PROBLEM_INTERNAL, "openapi.yaml is not embedded in this build");
        return;
    }
    http_reply_bytes(rq, 200, "application/yaml", f->data, f->size, false);
}

void handle_prometheus(void *app, struct http_request *rq)
{
    struct handler_ctx *a = app;
    int64_t counts[JOB_N_STATES];
    struct dim_err err;
    if (store_job_counts(a->store, counts, &err) != 0) {
        handler_internal(rq, "counting jobs", &err);
        return;
    }
    int64_t idem_keys = 0;
    if (store_idempotency_count(a->store, &idem_keys, &err) != STORE_OK) {
        handler_internal(rq, "counting idempotency keys", &err);
        return;
    }
    struct runner_stats rs = {0};
    if (a->runner)
        runner_get_stats(a->runner, &rs);
    struct strbuf b = {0};
    strbuf_printf(&b, "# HELP dimd_jobs Jobs by state.\n# TYPE dimd_jobs gauge\n");
    for (int s = 0; s < JOB_N_STATES; s++)
        strbuf_printf(&b, "dimd_jobs{state=\"%s\"} %lld\n", job_state_name((enum job_state)s),
                  (long long)counts[s]);
    strbuf_printf(&b,
                  "# HELP dimd_idempotency_keys Idempotency keys stored (expired ones go within "
                  "a minute).\n# TYPE dimd_idempotency_keys gauge\ndimd_idempotency_keys %lld\n",
                  (long long)idem_keys);
    strbuf_printf(&b,
              "# HELP dimd_queue_depth Jobs waiting for a worker.\n# TYPE dimd_queue_depth gauge\n"
              "dimd_queue_depth %lld\n"
              "# HELP dimd_workers Worker threads, and how many run a job.\n"
              "# TYPE dimd_workers gauge\ndimd_workers %ld\n"
              "# TYPE dimd_workers_busy gauge\ndimd_workers_busy %d\n"
              "# HELP dimd_training_steps_total Training steps taken since start.\n"
              "# TYPE dimd_training_steps_total counter\ndimd_training_steps_total %llu\n"
              "# HELP dimd_training_images_total Images trained on since start.\n"
              "# TYPE dimd_training_images_total counter\ndimd_training_images_total %llu\n"
              "# HELP dimd_training_steps_per_second Steps per second of the running jobs.\n"
              "# TYPE dimd_training_steps_per_second gauge\ndimd_training_steps_per_second %.3f\n",
              (long long)counts[JOB_QUEUED], a->cfg->workers, rs.busy_workers,
              (unsigned long long)rs.steps_total, (unsigned long long)rs.images_total,
              rs.steps_per_second);
    struct inference_stats es = {0};
    if (a->inference)
        inference_get_stats(a->inference, &es);
    strbuf_printf(&b,
              "# HELP dimd_encode_requests_total Encode and neighbors requests answered.\n"
              "# TYPE dimd_encode_requests_total counter\ndimd_encode_requests_total %llu\n"
              "# HELP dimd_encode_images_total Images encoded.\n"
              "# TYPE dimd_encode_images_total counter\ndimd_encode_images_total %llu\n"
              "# HELP dimd_encode_batches_total Forward passes run for encode requests.\n"
              "# TYPE dimd_encode_batches_total counter\ndimd_encode_batches_total %llu\n"
              "# HELP dimd_encode_forward_seconds_total Wall-clock seconds in encode forward "
              "passes, summed over encode threads (divided by elapsed time: how busy they are).\n"
              "# TYPE dimd_encode_forward_seconds_total counter\n"
              "dimd_encode_forward_seconds_total %.6f\n"
              "# HELP dimd_encode_queue_images Images waiting to be encoded.\n"
              "# TYPE dimd_encode_queue_images gauge\ndimd_encode_queue_images %d\n"
              "# HELP dimd_models_loaded Model versions in the cache.\n"
              "# TYPE dimd_models_loaded gauge\ndimd_models_loaded %d\n",
              (unsigned long long)es.requests, (unsigned long long)es.images,
              (unsigned long long)es.batches, es.forward_seconds, es.queued_images,
              es.cached_models);
    if (a->storage) {
        struct storage_status st;
        storage_get(a->storage, &st);
        strbuf_printf(&b,
                      "# HELP dimd_storage_free_bytes Free bytes of the state directory's file "
                      "system (statvfs f_bavail), at the last check (every second).\n"
                      "# TYPE dimd_storage_free_bytes gauge\ndimd_storage_free_bytes %lld\n"
                      "# HELP dimd_storage_min_free_bytes The min_free_bytes setting.\n"
                      "# TYPE dimd_storage_min_free_bytes gauge\n"
                      "dimd_storage_min_free_bytes %lld\n"
                      "# HELP dimd_storage_reserve_bytes Bytes the reserve file holds now.\n"
                      "# TYPE dimd_storage_reserve_bytes gauge\ndimd_storage_reserve_bytes %lld\n"
                      "# HELP dimd_storage_degraded 1 while dimd is read-mostly for lack of "
                      "space (writes get 507).\n"
                      "# TYPE dimd_storage_degraded gauge\ndimd_storage_degraded %d\n"
                      "# HELP dimd_storage_faults_total Writes that failed for lack of space "
                      "or an I/O error.\n"
                      "# TYPE dimd_storage_faults_total counter\n"
                      "dimd_storage_faults_total %llu\n",
                      (long long)st.free_bytes, (long long)st.min_free_bytes,
                      (long long)st.reserve_held, st.degraded ? 1 : 0,
                      (unsigned long long)st.faults);
    }
    http_write_stats(a->http, &b);
    http_reply_bytes(rq, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len, true);
}

void handle_datasets(void *app, struct http_request *rq)
{
    struct handler_ctx *a = app;
    http_reply_json(rq, 200, json_pack("{s:o}", "datasets", datasets_list(a->datasets)));
}

void handle_job_schema(void *app, struct http_request *rq)
{
    (void)app;
    http_reply_json(rq, 200, json_pack("{s:o, s:o}", "fields", jobspec_schema_json(),
                                       "evaluate_fields", evalspec_schema_json()));
}

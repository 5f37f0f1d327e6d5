/* eval_job.c - one evaluation job on a worker (service/job_run.h; the
 * runner's workers reach it through job_run): core's dim_evaluate on a stored
 * model version and the dataset it was trained on, its progress as
 * "eval_progress" points, its results stored with the version.
 * Depends on store (jobs, metrics, evaluations), api (evalspec, real),
 * service/datasets and service/version_model, util/clock, core; no HTTP.
 */
#include "service/job_run.h"

#include <stdio.h>
#include <stdlib.h>

#include "api/evalspec.h"
#include "api/real.h"
#include "eval/evaluate.h"
#include "service/version_model.h"
#include "store/evaluations.h"
#include "util/clock.h"

/* An evaluation's progress is its step out of EVAL_STEPS (eval_progress points). */
#define EVAL_STEPS 1000

struct eval_run {
    struct run *x;
    atomic_bool cancel;
    bool ended; /* the job was written (failed, paused, cancelled, requeued) or taken over */
};

/* dim_evaluate's progress callback, on the worker's thread: writes progress at
 * most every metrics_flush_ms and asks core to stop on shutdown or when the
 * job was cancelled, paused or taken over. */
static void eval_progress(void *ctx, const char *stage, double fraction)
{
    (void)stage;
    struct eval_run *e = ctx;
    struct run *x = e->x;
    if (e->ended)
        return;
    if (atomic_load_explicit(&x->r->stop, memory_order_relaxed)) {
        atomic_store(&e->cancel, true);
        return;
    }
    double now = clock_mono_s();
    if (now - x->last_flush < x->r->cfg.metrics_flush_ms / 1000.0)
        return;
    uint64_t step = (uint64_t)(fraction * EVAL_STEPS);
    if (step >= EVAL_STEPS)
        step = EVAL_STEPS - 1; /* the last step carries the results */
    if (step > x->step) {
        x->step = step;
        if (job_run_push_point(x, "eval_progress", fraction, clock_wall_ms()) != 0) {
            job_run_fail(x, "out_of_memory", "out of memory for metric points");
            e->ended = true;
        }
    }
    if (!e->ended && job_run_flush(x) != RUN_OK)
        e->ended = true;
    if (!e->ended && atomic_exchange(&x->w->changed, false) && job_run_check_state(x) != RUN_OK)
        e->ended = true;
    if (e->ended)
        atomic_store(&e->cancel, true);
}

/* Loads the version the spec names: its model and its dataset's two splits. */
static int eval_setup(struct run *x, const struct eval_spec *es)
{
    struct runner *r = x->r;
    struct dim_err err;
    char dataset[DATASET_NAME_MAX];
    int rc = version_model_load(r->store, es->model, es->version, &x->m, dataset, &err);
    if (rc == VERSION_MODEL_NOT_FOUND)
        return job_run_fail(x, "version_not_found", "model '%s' has no version v%d", es->model,
                            es->version);
    if (rc == VERSION_MODEL_ERROR)
        return job_run_store_fail(x, STORE_ERROR, "model read", &err);
    if (rc != VERSION_MODEL_OK)
        return job_run_fail(x, err.code == DIM_ENOMEM ? "out_of_memory" : "checkpoint_invalid",
                            "model '%s' v%d: %s", es->model, es->version, err.msg);
    char path[4096];
    const struct dim_dataset_limits lim = {0, 64u << 20};
    if (datasets_resolve(r->ds, dataset, path, &err) != 0 ||
        dim_dataset_load(path, DIM_SPLIT_TRAIN, &lim, &x->train, &err) != 0 ||
        dim_dataset_load(path, DIM_SPLIT_TEST, &lim, &x->test, &err) != 0)
        return job_run_fail(x, err.code == DIM_ENOMEM ? "out_of_memory" : "dataset_unavailable",
                            "dataset '%s' of model '%s' v%d: %s", dataset, es->model, es->version,
                            err.msg);
    if (x->test.n_classes > x->train.n_classes)
        x->train.n_classes = x->test.n_classes;
    /* an evaluation restarts from the beginning: drop a dead attempt's progress */
    rc = store_metrics_rewind(r->store, x->id, x->attempt, 0, &err);
    if (rc == STORE_OK)
        rc = store_job_set_total(r->store, x->id, x->attempt, EVAL_STEPS, &err);
    if (rc != STORE_OK)
        return job_run_store_fail(x, rc, "evaluation setup", &err);
    x->cap_pts = 64;
    x->pts = malloc(x->cap_pts * sizeof *x->pts);
    if (!x->pts)
        return job_run_fail(x, "out_of_memory", "out of memory for metric points");
    return RUN_OK;
}

/* Runs an evaluation job: dim_evaluate on the version's model, the results
 * stored with the version (store_evaluation_add) and as the job's last metric
 * points, step EVAL_STEPS. */
void eval_job_run(struct run *x, const json_t *body)
{
    struct runner *r = x->r;
    struct eval_spec es;
    json_t *errors = json_array();
    int n_bad = evalspec_parse(body, &es, errors);
    if (n_bad || es.version == 0) {
        json_t *e0 = json_array_get(errors, 0);
        const char *msg = json_string_value(json_object_get(e0, "message"));
        job_run_fail(x, "invalid_spec", "%s: %s",
                     json_string_value(json_object_get(e0, "path")) ?: "$",
                     n_bad ? msg : "the version is not resolved");
        json_decref(errors);
        return;
    }
    json_decref(errors);
    if (eval_setup(x, &es) != RUN_OK)
        return;
    struct eval_run e = {.x = x};
    atomic_init(&e.cancel, false);
    struct dim_eval_opts o = es.opts;
    o.progress = eval_progress;
    o.progress_ctx = &e;
    o.cancel = &e.cancel;
    const struct dim_preprocess pp = dim_model_preprocess(x->m);
    struct dim_eval_result res;
    struct dim_err err;
    x->last_flush = clock_mono_s();
    int rc = dim_evaluate(x->m, &x->train, &x->test, &pp, &o, &res, &err);
    if (e.ended) {
        /* written already */
    } else if (rc == DIM_ECANCELLED) {
        job_run_shutdown(x); /* the daemon stops: QUEUED again, from the start next time */
    } else if (rc != 0) {
        job_run_fail(x, rc == DIM_ENOMEM ? "out_of_memory" : "evaluation_failed", "%s", err.msg);
    } else {
        json_t *j = evalspec_result_json(&res);
        char *text = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(DIMD_REAL_DIGITS));
        json_decref(j);
        const char *keys[EVAL_MAX_KEYS];
        double values[EVAL_MAX_KEYS];
        size_t n = evalspec_result_points(&res, keys, values);
        x->step = EVAL_STEPS;
        int64_t ms = clock_wall_ms();
        int prc = job_run_push_point(x, "eval_progress", 1.0, ms);
        for (size_t i = 0; i < n && prc == 0; i++)
            prc = job_run_push_point(x, keys[i], values[i], ms);
        if (!text || prc != 0) {
            job_run_fail(x, "out_of_memory", "out of memory for the results");
        } else if ((rc = store_evaluation_add(r->store, es.model, es.version, x->id, text,
                                              res.grid_png, res.grid_png_size, NULL, &err)) ==
                   STORE_NOT_FOUND) {
            job_run_fail(x, "version_not_found", "model '%s' v%d was deleted during the evaluation",
                         es.model, es.version);
        } else if (rc != STORE_OK) {
            job_run_store_fail(x, rc, "evaluation results", &err);
        } else if (job_run_flush(x) == RUN_OK) {
            rc = store_job_finish(r->store, x->id, x->attempt, JOB_SUCCEEDED, NULL, NULL, &err);
            if (rc == STORE_FULL)
                job_run_store_fail(x, rc, "the end state", &err);
            else if (rc == STORE_ERROR)
                fprintf(stderr, "dimd: job %lld: recording success: %s\n", (long long)x->id,
                        err.msg);
        }
        free(text);
    }
    dim_eval_result_free(&res);
}

/* job_run.c - one job a worker claimed (service/job_run.h): which kind it is,
 * and what a training job and an evaluation job share: failing the attempt,
 * the metric buffer and its flushes, state changes and the shutdown hand-back.
 * The kinds themselves are in train_job.c and eval_job.c; job_run_check_state
 * and job_run_shutdown store a training job's checkpoint through
 * train_job_checkpoint. Depends on store (jobs, metrics), api/evalspec,
 * util/clock, core; no HTTP.
 */
#include "service/job_run.h"

#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/evalspec.h"
#include "util/clock.h"

/* Ends the attempt as FAILED; a stale or failed write is only logged. */
int job_run_fail(struct run *x, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct dim_err err;
    int rc = store_job_finish(x->r->store, x->id, x->attempt, JOB_FAILED, code, msg, &err);
    if (rc == STORE_ERROR || rc == STORE_FULL)
        fprintf(stderr, "dimd: job %lld: cannot record failure %s (%s): %s\n", (long long)x->id,
                code, msg, err.msg);
    return RUN_END;
}

int job_run_pause_full(struct run *x, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct storage *sg = x->r->cfg.storage;
    fprintf(stderr, "dimd: job %lld: pausing: %s\n", (long long)x->id, msg);
    /* The pause is a small write; the reserve the guard gives back on each
     * fault makes room for it. Until it lands the job would stay RUNNING with
     * no worker, so it is retried (each failure a new fault) until it does, the
     * job is taken over, or the daemon stops (start-up recovery requeues it). */
    for (int tries = 1;; tries++) {
        struct dim_err err;
        int rc = store_job_finish(x->r->store, x->id, x->attempt, JOB_PAUSED, "storage_full", msg,
                                  &err);
        if (rc != STORE_FULL && rc != STORE_ERROR)
            return RUN_END; /* paused, or stale: no longer this worker's */
        fprintf(stderr, "dimd: job %lld: cannot record the pause (try %d): %s\n",
                (long long)x->id, tries, err.msg);
        if (rc == STORE_FULL && sg)
            storage_report(sg, err.msg);
        for (int i = 0; i < 10 && !atomic_load(&x->r->stop); i++)
            nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
        if (atomic_load(&x->r->stop))
            return RUN_END;
    }
}

int job_run_store_fail(struct run *x, int rc, const char *what, const struct dim_err *err)
{
    if (rc == STORE_STALE)
        return RUN_END;
    fprintf(stderr, "dimd: job %lld: store %s: %s\n", (long long)x->id, what, err->msg);
    if (rc == STORE_FULL) {
        if (x->r->cfg.storage)
            storage_report(x->r->cfg.storage, err->msg);
        return job_run_pause_full(x, "storing %s at step %llu failed: %s", what,
                                  (unsigned long long)x->step, err->msg);
    }
    return job_run_fail(x, "store_error", "storing %s failed: %s", what, err->msg);
}

int job_run_push_point(struct run *x, const char *key, double v, int64_t ms)
{
    if (x->n_pts == x->cap_pts) {
        size_t cap = x->cap_pts ? 2 * x->cap_pts : 1024;
        struct store_metric *p = realloc(x->pts, cap * sizeof *p);
        if (!p)
            return -1;
        x->pts = p;
        x->cap_pts = cap;
    }
    x->pts[x->n_pts++] = (struct store_metric){key, (int64_t)x->step, v, ms};
    return 0;
}

/* Writes the buffered points and the window's images_per_second. */
int job_run_flush(struct run *x)
{
    if (x->win_steps > 0 && x->win_s > 0) {
        x->ips = (double)(x->win_steps * x->m->cfg.batch) / x->win_s;
        if (job_run_push_point(x, "images_per_second", x->ips, clock_wall_ms()) != 0)
            return job_run_fail(x, "out_of_memory", "out of memory for metric points");
        pthread_mutex_lock(&x->r->mu);
        x->w->rate = (double)x->win_steps / x->win_s;
        pthread_mutex_unlock(&x->r->mu);
    }
    x->win_steps = 0;
    x->win_s = 0;
    x->last_flush = clock_mono_s();
    if (x->n_pts == 0)
        return RUN_OK;
    struct dim_err err;
    int rc = store_metrics_append(x->r->store, x->id, x->attempt, x->pts, x->n_pts,
                                  (int64_t)x->step, x->ips, &err);
    x->n_pts = 0;
    return rc == STORE_OK ? RUN_OK : job_run_store_fail(x, rc, "metrics", &err);
}

/* Re-reads the job after runner_job_changed (or at a flush). RUN_OK: keep going. */
int job_run_check_state(struct run *x)
{
    struct store_job j;
    memset(&j, 0, sizeof j);
    struct dim_err err;
    int rc = store_job_get(x->r->store, x->id, &j, &err);
    if (rc != STORE_OK) {
        if (rc == STORE_ERROR || rc == STORE_FULL) { /* transient: a flush notices a change */
            fprintf(stderr, "dimd: job %lld: re-reading state: %s\n", (long long)x->id, err.msg);
            return RUN_OK;
        }
        return RUN_END; /* deleted: nothing to write */
    }
    enum job_state st = j.state;
    int attempts = j.attempts;
    store_job_clear(&j);
    if (attempts != x->attempt)
        return RUN_END; /* taken over */
    if (st == JOB_RUNNING)
        return RUN_OK;
    if (st == JOB_PAUSED) { /* store accepts PAUSED for this attempt's last writes */
        if (x->ranks)
            rank_job_stop(x);
        else if (x->tr && x->step != x->last_ckpt) /* an evaluation has no checkpoints */
            train_job_checkpoint(x, false);
        else
            job_run_flush(x);
        return RUN_END;
    }
    return RUN_END; /* CANCELLED, QUEUED again, or terminal: no writes */
}

/* SIGTERM: checkpoint (no probe), back to QUEUED. */
int job_run_shutdown(struct run *x)
{
    if (x->ranks) {
        if (rank_job_stop(x) != RUN_OK)
            return RUN_END;
    } else if (x->m && x->tr) {
        if (x->step != x->last_ckpt) {
            if (train_job_checkpoint(x, false) != RUN_OK)
                return RUN_END;
        } else if (job_run_flush(x) != RUN_OK) {
            return RUN_END;
        }
    }
    struct dim_err err;
    int rc = store_job_finish(x->r->store, x->id, x->attempt, JOB_QUEUED, NULL, NULL, &err);
    if (rc == STORE_ERROR || rc == STORE_FULL)
        fprintf(stderr, "dimd: job %lld: requeue at shutdown: %s\n", (long long)x->id, err.msg);
    return RUN_END;
}

static void job_run_free(struct run *x)
{
    dim_trainer_free(x->tr);
    dim_model_free(x->m);
    dim_dataset_free(&x->train);
    dim_dataset_free(&x->test);
    free(x->probe_train.px);
    free(x->probe_train.labels);
    free(x->pts);
    free(x->ck.p);
}

void job_run(struct worker *w, const struct store_job *job)
{
    struct run x;
    memset(&x, 0, sizeof x);
    x.r = w->r;
    x.w = w;
    x.id = job->id;
    x.attempt = job->attempts;
    x.probe_pixels = NAN;
    json_t *body = json_loads(job->spec_json ? job->spec_json : "", 0, NULL);
    bool evaluation = evalspec_is_evaluation(body);
    if (evaluation)
        eval_job_run(&x, body);
    json_decref(body);
    if (!evaluation)
        train_job_run(&x, job);
    job_run_free(&x);
}

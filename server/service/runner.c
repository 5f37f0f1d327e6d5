/* runner.c - the worker threads that run training and evaluation jobs (see
 * runner.h for the design).
 *
 * Threads: every worker gives itself a compute pool of threads_per_worker - 1
 * threads (core's per-thread dim_parallel_use, BLAS on one thread), exactly as
 * `dimd train --threads N` does, so a job trains at the CLI's speed.
 * Locking: r->mu guards the wake sequence, which job each worker holds and the
 * per-worker rates; r->claim_mu makes "list the held jobs, claim one, record it"
 * atomic across workers. Counters are atomics. No store call is made under r->mu.
 * The jobs themselves run in job_run.c (train_job.c, eval_job.c), which share
 * struct runner and struct worker through the private service/job_run.h.
 * Depends on store/jobs, util (threadpool, clock), core (base); no HTTP.
 */
#include "service/runner.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/blas.h"
#include "base/parallel.h"
#include "service/job_run.h"
#include "store/jobs.h"
#include "util/clock.h"
#include "util/threadpool.h"

/* ---- workers ---- */

static int worker_claim(struct worker *w, struct store_job *job)
{
    struct runner *r = w->r;
    pthread_mutex_lock(&r->claim_mu);
    size_t n = 0;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->n_workers; i++)
        if (i != w->index && r->w[i].job_id != 0)
            w->skip[n++] = r->w[i].job_id;
    pthread_mutex_unlock(&r->mu);
    struct dim_err err;
    int rc = store_job_claim(r->store, w->skip, n, job, &err);
    if (rc == STORE_OK) {
        pthread_mutex_lock(&r->mu);
        w->job_id = job->id;
        w->rate = 0;
        r->busy++;
        pthread_mutex_unlock(&r->mu);
        /* a cancel or pause may have landed between the claim and the line above */
        atomic_store(&w->changed, true);
    } else if (rc == STORE_ERROR || rc == STORE_FULL) {
        fprintf(stderr, "dimd: worker %d: claiming a job: %s\n", w->index, err.msg);
        if (rc == STORE_FULL && r->cfg.storage)
            storage_report(r->cfg.storage, err.msg);
    }
    pthread_mutex_unlock(&r->claim_mu);
    return rc;
}

static void worker_release(struct worker *w)
{
    struct runner *r = w->r;
    pthread_mutex_lock(&r->mu);
    w->job_id = 0;
    w->rate = 0;
    r->busy--;
    r->wake_seq++; /* the job may be QUEUED again: let an idle worker look */
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct runner *r = w->r;
    /* this thread's compute: like cli_threads_use, but BLAS stays on one thread
     * (process-wide, set by runner_start) even when the pool cannot start */
    struct threadpool *pool = NULL;
    if (r->cfg.threads_per_worker > 1) {
        pool = threadpool_create(r->cfg.threads_per_worker - 1);
        if (pool)
            dim_parallel_use(threadpool_parallel(pool));
        else
            fprintf(stderr, "dimd: worker %d: cannot start %d compute threads; running serially\n",
                    w->index, r->cfg.threads_per_worker - 1);
    }
    while (!atomic_load(&r->stop)) {
        pthread_mutex_lock(&r->mu);
        uint64_t seen = r->wake_seq;
        pthread_mutex_unlock(&r->mu);
        struct store_job job;
        memset(&job, 0, sizeof job);
        /* a full disk: no claims (a claim is a write, and the job could not store) */
        bool full = r->cfg.storage && storage_degraded(r->cfg.storage);
        if (!full && worker_claim(w, &job) == STORE_OK) {
            job_run(w, &job);
            store_job_clear(&job);
            worker_release(w);
            continue;
        }
        store_job_clear(&job);
        /* poll in case a wake-up was missed */
        struct timespec until = clock_mono_ts(clock_mono_s() + 1.0);
        pthread_mutex_lock(&r->mu);
        while (!atomic_load(&r->stop) && r->wake_seq == seen)
            if (pthread_cond_timedwait(&r->cv, &r->mu, &until) == ETIMEDOUT)
                break;
        pthread_mutex_unlock(&r->mu);
    }
    dim_parallel_use(NULL);
    threadpool_free(pool);
    return NULL;
}

/* ---- public ---- */

static void runner_free(struct runner *r)
{
    for (int i = 0; i < r->n_workers; i++)
        free(r->w[i].skip);
    free(r->w);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->claim_mu);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

int runner_start(struct runner **out, struct dimd_store *store, const struct datasets *ds,
                 const struct runner_config *cfg, struct dim_err *err)
{
    *out = NULL;
    if (cfg->workers < 1 || cfg->workers > 1024)
        return dim_fail(err, DIM_EINVAL, "workers %d must be in [1, 1024]", cfg->workers);
    if (cfg->threads_per_worker < 1 || cfg->threads_per_worker > 1024)
        return dim_fail(err, DIM_EINVAL, "threads_per_worker %d must be in [1, 1024]",
                        cfg->threads_per_worker);
    if (cfg->metrics_flush_ms < 10)
        return dim_fail(err, DIM_EINVAL, "metrics_flush_ms %d must be >= 10",
                        cfg->metrics_flush_ms);
    struct runner *r = calloc(1, sizeof *r);
    if (!r)
        return dim_fail(err, DIM_ENOMEM, "out of memory for the runner");
    r->store = store;
    r->ds = ds;
    r->cfg = *cfg;
    r->n_workers = cfg->workers;
    atomic_init(&r->stop, false);
    atomic_init(&r->steps_total, 0);
    atomic_init(&r->images_total, 0);
    clock_cond_init(&r->cv);
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->claim_mu, NULL);
    r->w = calloc((size_t)r->n_workers, sizeof *r->w);
    if (!r->w) {
        runner_free(r);
        return dim_fail(err, DIM_ENOMEM, "out of memory for %d workers", cfg->workers);
    }
    for (int i = 0; i < r->n_workers; i++) {
        r->w[i].r = r;
        r->w[i].index = i;
        atomic_init(&r->w[i].changed, false);
        r->w[i].skip = malloc(sizeof(int64_t) * (size_t)r->n_workers);
        if (!r->w[i].skip) {
            runner_free(r);
            return dim_fail(err, DIM_ENOMEM, "out of memory for %d workers", cfg->workers);
        }
    }
    /* process-wide: every worker splits its products over its own pool */
    nn_blas_set_threads(1);
    for (int i = 0; i < r->n_workers; i++) {
        int rc = pthread_create(&r->w[i].thread, NULL, worker_main, &r->w[i]);
        if (rc != 0) {
            dim_fail(err, DIM_ENOMEM, "cannot start worker thread %d of %d: %s", i + 1,
                     r->n_workers, strerror(rc));
            runner_stop(r);
            return err ? err->code : DIM_ENOMEM;
        }
        r->n_started++;
    }
    *out = r;
    return 0;
}

void runner_wake(struct runner *r)
{
    pthread_mutex_lock(&r->mu);
    r->wake_seq++;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

void runner_job_changed(struct runner *r, int64_t job_id)
{
    if (job_id <= 0)
        return;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->n_workers; i++)
        if (r->w[i].job_id == job_id)
            atomic_store(&r->w[i].changed, true);
    pthread_mutex_unlock(&r->mu);
}

void runner_get_stats(struct runner *r, struct runner_stats *out)
{
    memset(out, 0, sizeof *out);
    out->steps_total = atomic_load(&r->steps_total);
    out->images_total = atomic_load(&r->images_total);
    pthread_mutex_lock(&r->mu);
    out->busy_workers = r->busy;
    for (int i = 0; i < r->n_workers; i++)
        if (r->w[i].job_id != 0)
            out->steps_per_second += r->w[i].rate;
    pthread_mutex_unlock(&r->mu);
}

void runner_stop(struct runner *r)
{
    if (!r)
        return;
    atomic_store(&r->stop, true);
    pthread_mutex_lock(&r->mu);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    for (int i = 0; i < r->n_started; i++)
        pthread_join(r->w[i].thread, NULL);
    runner_free(r);
}

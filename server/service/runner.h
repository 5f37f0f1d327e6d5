/* runner.h - the worker threads that run training and evaluation jobs.
 *
 * DESIGN
 * - A fixed set of worker threads; each owns a compute pool (util/threadpool.h) of
 *   threads_per_worker threads, BLAS on one thread, so workers x threads fits
 *   the cores. A worker sleeps until runner_wake, claims the oldest QUEUED job
 *   (store_job_claim, skipping jobs another worker still holds) and runs it.
 * - Running a training job (its steps, metric points, checkpoints and failure
 *   codes): service/train_job.c; an evaluation job: service/eval_job.c.
 * - Control: runner_job_changed tells the worker holding a job to re-read its
 *   state; CANCELLED stops it at once; PAUSED writes a checkpoint first.
 * - A full disk (with cfg.storage): no worker claims a job while the daemon is
 *   in degraded mode; a checkpoint the guard does not admit (min_free_bytes),
 *   or a store write that fails with STORE_FULL, pauses the job with error
 *   code "storage_full" (resume continues from its latest checkpoint, metric
 *   points after it rewound).
 * - runner_stop (SIGTERM): every worker finishes its step, stores a checkpoint,
 *   returns its job to QUEUED (store_job_finish, restarts unchanged) and exits.
 * Depends on store (jobs, metrics, checkpoints, evaluations), api (jobspec,
 * evalspec), service/datasets and service/version_model, util (threadpool,
 * clock, sha256), core; no HTTP.
 */
#ifndef DIMD_SERVICE_RUNNER_H
#define DIMD_SERVICE_RUNNER_H

#include <stdint.h>

#include "base/error.h"
#include "service/datasets.h"
#include "service/storage.h"
#include "store/store.h"

/* How a data-parallel job (spec "ranks" > 1) starts its ranks (service/rank_job.c). */
struct runner_mpi {
    int max_ranks;            /* a spec asking for more fails with invalid_spec */
    int max_restarts;         /* a lost rank counts as a daemon crash: FAILED above it */
    const char *mpirun;       /* the launcher: a path, or a name looked up in PATH */
    const char *hostfile;     /* "" or NULL: every rank on this machine (--oversubscribe) */
    const char *self_exe;     /* this dimd binary, started by mpirun as `dimd rank` */
};

struct runner_config {
    int workers;            /* >= 1 */
    int threads_per_worker; /* >= 1 */
    int metrics_flush_ms;   /* >= 10 */
    struct storage *storage; /* the storage guard (service/storage.h), or NULL: no checks */
    struct runner_mpi mpi;   /* strings must outlive the runner */
};

struct runner_stats {
    uint64_t steps_total;  /* training steps taken by this process */
    uint64_t images_total; /* images those steps consumed */
    int busy_workers;
    double steps_per_second; /* over the running jobs' latest flush windows */
};

struct runner;

/* Starts the workers. store and ds must outlive the runner. */
int runner_start(struct runner **out, struct dimd_store *store, const struct datasets *ds,
                 const struct runner_config *cfg, struct dim_err *err);
/* A job was queued or resumed: wake an idle worker. */
void runner_wake(struct runner *r);
/* Job id changed state through the API (cancel, pause): its worker re-reads it. */
void runner_job_changed(struct runner *r, int64_t job_id);
void runner_get_stats(struct runner *r, struct runner_stats *out);
/* Checkpoints running jobs, requeues them, joins the workers and frees r. */
void runner_stop(struct runner *r);

#endif

/* runner.h - the worker threads that run training jobs.
 *
 * DESIGN
 * - A fixed set of worker threads; each owns a compute pool (util/threadpool.h) of
 *   threads_per_worker threads, BLAS on one thread, so workers x threads fits
 *   the cores. A worker sleeps until runner_wake, claims the oldest QUEUED job
 *   (store_job_claim, skipping jobs another worker still holds) and runs it.
 * - Running a job: parse its stored spec (api/jobspec.h), load the dataset,
 *   build the model, or restore it from the latest stored checkpoint (verifying
 *   its sha256) and rewind metrics past that step; record total_steps; then step.
 *   Every step's losses become metric points ("loss_local", "loss_global",
 *   "loss_prior_enc", "loss_prior_disc", "loss_total", for the terms the model
 *   has); points are buffered and written in one transaction per flush
 *   (metrics_flush_ms, and before every checkpoint) together with
 *   "images_per_second" (the flush window's training rate: steps only, not
 *   checkpoints or probes).
 * - Every checkpoint_every steps and at the last step: serialise the model and
 *   progress into memory (core's writer interface), sha256 it, probe it when the
 *   spec asks ("probe_conv", "probe_fc", "probe_y" at that step), store it with
 *   retention in one transaction.
 * - A non-finite loss fails the job ("non_finite_loss", naming the term and the
 *   step); a dataset or model problem fails it with its own code.
 * - Control: runner_job_changed tells the worker holding a job to re-read its
 *   state; CANCELLED stops it at once; PAUSED writes a checkpoint first.
 * - runner_stop (SIGTERM): every worker finishes its step, stores a checkpoint,
 *   returns its job to QUEUED (store_job_finish, restarts unchanged) and exits.
 * Depends on server/store, server/jobspec, server/datasets, server/pool, core.
 */
#ifndef DIMD_SERVICE_RUNNER_H
#define DIMD_SERVICE_RUNNER_H

#include <stdint.h>

#include "base/error.h"
#include "service/datasets.h"
#include "store/store.h"

struct runner_config {
    int workers;            /* >= 1 */
    int threads_per_worker; /* >= 1 */
    int metrics_flush_ms;   /* >= 10 */
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

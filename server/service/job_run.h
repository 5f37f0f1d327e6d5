/* job_run.h - private to runner.c, job_run.c, train_job.c and eval_job.c of server/service/.
 *
 * One job a worker claimed: the runner's and the worker's state a job reads and
 * writes (struct runner and struct worker: runner.c creates and owns them), the
 * state of one attempt (struct run), and what a training job (train_job.c) and
 * an evaluation job (eval_job.c) share (job_run.c): ending the attempt as
 * FAILED, buffering metric points and flushing them, re-reading the job's state
 * after runner_job_changed, and handing the job back at runner_stop.
 * Return codes of the int functions: RUN_OK keep going, RUN_END the job is over
 * for this worker (its end state is written, or the job is gone or taken over).
 * Thread-safety: a struct run belongs to its worker's thread; the fields of
 * struct runner and struct worker say which lock guards them.
 * Depends on store (jobs, metrics), api/jobspec, service/datasets, core (dim, data);
 * no caller outside these four files includes it (they use service/runner.h).
 */
#ifndef DIMD_SERVICE_JOB_RUN_H
#define DIMD_SERVICE_JOB_RUN_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "api/jobspec.h"
#include "base/error.h"
#include "data/dataset.h"
#include "dim/checkpoint.h"
#include "dim/model.h"
#include "dim/trainer.h"
#include "service/datasets.h"
#include "service/runner.h"
#include "service/storage.h"
#include "store/jobs.h"
#include "store/metrics.h"
#include "store/store.h"
#include "store/sweeps.h"

struct worker {
    struct runner *r;
    int index;
    pthread_t thread;
    int64_t job_id;      /* held job (0: idle), under r->mu */
    double rate;         /* steps/s of its job's latest flush window, under r->mu */
    atomic_bool changed; /* runner_job_changed named its job */
    int64_t *skip;       /* claim scratch: the other workers' jobs */
};

struct runner {
    struct dimd_store *store;
    const struct datasets *ds;
    struct runner_config cfg;
    pthread_mutex_t mu, claim_mu;
    pthread_cond_t cv;
    uint64_t wake_seq; /* under mu */
    int busy;          /* under mu */
    atomic_bool stop;
    atomic_uint_least64_t steps_total, images_total;
    int n_workers, n_started;
    struct worker *w;
};

enum { RUN_OK = 0, RUN_END = 1 }; /* RUN_END: the job is over for this worker (written or stale) */

#define N_LOSS_KEYS 5

struct run {
    struct runner *r;
    struct worker *w;
    int64_t id;
    int attempt;
    struct job_spec spec;
    struct dim_dataset train, test;
    struct dim_dataset probe_train; /* a strided subset of train, owned (px NULL: use train) */
    double probe_pixels;            /* the probe's accuracy on the pixels, NaN until measured */
    struct dim_model *m;
    struct dim_trainer *tr;
    bool loss_on[N_LOSS_KEYS];
    uint64_t step, total, last_ckpt;
    struct dim_losses last;
    bool have_last;
    struct store_metric *pts;
    size_t n_pts, cap_pts;
    uint64_t win_steps;
    double win_s, last_flush, ips;
    struct dim_membuf ck;
    /* a sweep's trial (spec.sweep_id): the steps of its rungs below the last,
     * where it waits for the sweep's decision, and which it was promoted from */
    uint64_t rung_steps[16];
    bool rung_passed[16];
    int n_rungs;
    char sweep_metric[64];
    char dataset_path[4096];  /* the resolved dataset (the ranks load it too) */
    struct rank_proc *ranks;  /* a data-parallel job's mpirun and rank 0 (rank_job.c) */
};

/* ---- job_run.c: one claimed job, and what both kinds share ---- */

/* Runs the job w claimed (job: its row, read by store_job_claim) to the end of
 * this attempt: an evaluation job (its spec says so: evalspec_is_evaluation)
 * through eval_job_run, any other through train_job_run; then frees the run.
 * Called on w's thread, holding nothing. */
void job_run(struct worker *w, const struct store_job *job);
/* Ends the attempt as FAILED with code and the printf-style message; a stale or
 * failed write is only logged. Returns RUN_END. */
int job_run_fail(struct run *x, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A store call about `what` returned rc (not STORE_OK), err its message: a
 * STORE_STALE job is over without a write; STORE_FULL (no space, an I/O
 * error) is reported to the storage guard and pauses the job
 * (job_run_pause_full); anything else fails the job as "store_error".
 * Returns RUN_END. */
int job_run_store_fail(struct run *x, int rc, const char *what, const struct dim_err *err);
/* Ends the attempt as PAUSED with error code "storage_full" and the
 * printf-style message (what could not be stored, the free bytes); resuming
 * the job clears them. Retries the write while it fails for lack of space,
 * until it lands, the job is no longer this worker's or the runner stops.
 * Returns RUN_END. */
int job_run_pause_full(struct run *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Buffers the metric point (key, x->step, v, ms: wall milliseconds); key must
 * outlive the next flush. Returns 0, or -1 out of memory (nothing written). */
int job_run_push_point(struct run *x, const char *key, double v, int64_t ms);
/* Writes the buffered points and the window's images_per_second (and the
 * worker's rate) in one transaction; starts a new flush window. */
int job_run_flush(struct run *x);
/* Re-reads the job after runner_job_changed (or at a flush): RUNNING keeps
 * going; PAUSED writes a checkpoint (training, when the step has none) or
 * flushes, then ends; anything else ends with no write. A transient store
 * error keeps going. */
int job_run_check_state(struct run *x);
/* runner_stop: a training job stores a checkpoint of its step (no probe) or
 * flushes; the job goes back to QUEUED. Returns RUN_END. */
int job_run_shutdown(struct run *x);

/* ---- train_job.c ---- */

/* Runs training job x (x->r, x->w, x->id, x->attempt set, the rest zero) from
 * its stored spec (job->spec_json) to SUCCEEDED, FAILED, or to the end a state
 * change or runner_stop gives it. Leaves x for job_run to free. */
void train_job_run(struct run *x, const struct store_job *job);
/* Flushes, then stores a checkpoint of the current step (probed when probe and
 * the spec asks) with the spec's retention: the model's (x->m, x->tr), or for
 * a data-parallel job the bytes rank 0 sent, already in x->ck (x->m then
 * holds them decoded when probing). */
int train_job_checkpoint(struct run *x, bool probe);
/* Buffers one step's loss points (the terms the model has) and its lr when the
 * schedule moves it. Returns 0, or -1 out of memory. */
int train_job_push_losses(struct run *x, const struct dim_losses *l, double lr);
/* Ends the attempt as FAILED for step `step` (1-based), which core failed with
 * rc and msg (edited in place). Returns RUN_END. */
int train_job_step_failed(struct run *x, int rc, uint64_t step, char *msg);

/* ---- rank_job.c ---- */

/* Runs set-up training job x (spec.ranks > 1, x->m and x->tr at the step to
 * start from) in mpirun's ranks: launches them, feeds rank 0 the starting
 * checkpoint, stores its steps and checkpoints, and ends the attempt like
 * train_job_run; a rank that dies requeues the job (restarts + 1). Every rank
 * is gone when it returns. */
void rank_job_run(struct run *x);
/* A pause or runner_stop: asks the ranks to stop and stores the checkpoint of
 * the step they stop at (no probe). RUN_OK, or RUN_END when a store write
 * ended the job. */
int rank_job_stop(struct run *x);

/* ---- eval_job.c ---- */

/* Runs evaluation job x (set as for train_job_run; body: its parsed spec) to
 * SUCCEEDED, FAILED, or to the end a state change or runner_stop gives it.
 * Leaves x for job_run to free. */
void eval_job_run(struct run *x, const json_t *body);

#endif

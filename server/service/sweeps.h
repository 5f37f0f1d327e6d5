/* sweeps.h - the sweep service: one thread that drives every RUNNING sweep
 * (api/sweep_spec.h says what a sweep is), and the sweep's use cases for the
 * handlers (pause, resume, cancel, its JSON).
 *
 * DESIGN
 * - Trials are ordinary jobs run by the runner's workers. A trial of an ASHA
 *   sweep pauses itself at each rung below the last ("sweep_rung",
 *   service/train_job.c) once the step's metric is stored.
 * - The thread wakes after every commit that wrote events (store_event_wait)
 *   and at least once a second, and for each RUNNING sweep, from the rows
 *   alone: records the metric of each trial waiting at a rung or finished
 *   (its mean over the last tenth of the steps for a loss, its value at the
 *   step for a probe); takes ASHA's decisions (sweep_asha_decide), each a row
 *   written with its job's move; queues new trials while fewer than `parallel`
 *   trials are queued or running (promotions first); keeps the best trial (the
 *   highest rung reached, then the metric); ends the sweep when every trial
 *   is over. Nothing is held in memory between passes, so a daemon killed at
 *   any point continues where the rows say it was, and the store's keys make
 *   a repeated step a no-op: no trial created twice, no decision taken twice.
 * Depends on store (sweeps, jobs), api (sweep_spec, jobspec), service/runner,
 * service/datasets; no HTTP.
 */
#ifndef DIMD_SERVICE_SWEEPS_H
#define DIMD_SERVICE_SWEEPS_H

#include <jansson.h>
#include <stdint.h>

#include "base/error.h"
#include "service/datasets.h"
#include "service/runner.h"
#include "store/store.h"
#include "store/sweeps.h"

struct sweeps;

/* Starts the thread. default_parallel: trials at once of a sweep that gives
 * none (the daemon's workers). runner may be NULL (nothing to wake). */
int sweeps_start(struct sweeps **out, struct dimd_store *store, const struct datasets *ds,
                 struct runner *runner, int default_parallel, struct dim_err *err);
/* A sweep was created or changed: run a pass soon. */
void sweeps_wake(struct sweeps *w);
/* Joins the thread and frees w (NULL: nothing). */
void sweeps_stop(struct sweeps *w);

/* One pass over sweep id (what the thread does; callable from any thread, but
 * passes over one sweep must not run concurrently). */
int sweeps_pass(struct dimd_store *store, const struct datasets *ds, struct runner *runner,
                int default_parallel, int64_t id, struct dim_err *err);

/* Pause (RUNNING -> PAUSED: queued and running trials pause), resume (PAUSED
 * -> RUNNING: they go back to the queue) or cancel (every unfinished trial is
 * cancelled) sweep id; the workers holding moved jobs are told. Returns the
 * store's code (STORE_CONFLICT: the sweep is in another state, err says which). */
int sweeps_pause(struct sweeps *w, struct dimd_store *store, struct runner *runner, int64_t id,
                 struct dim_err *err);
int sweeps_resume(struct sweeps *w, struct dimd_store *store, struct runner *runner, int64_t id,
                  struct dim_err *err);
int sweeps_cancel(struct sweeps *w, struct dimd_store *store, struct runner *runner, int64_t id,
                  struct dim_err *err);

/* The trial's state as the API shows it: its job's state, or STOPPED (ASHA
 * stopped it), WAITING (paused at a rung for a decision), DELETED (its job
 * was deleted). Static storage. */
const char *sweeps_trial_state(const struct store_trial *t);

/* The sweep's JSON: id, name, state, spec, counts of trials by state, the best
 * trial (hyperparameters, metric, rung, job), times; with_trials adds "trials"
 * (the leaderboard order: highest rung, then metric) (a new reference, or NULL
 * with err set when reading the store failed). */
json_t *sweeps_json(struct dimd_store *store, const struct store_sweep *s, bool with_trials,
                    struct dim_err *err);

#endif

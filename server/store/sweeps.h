/* sweeps.h - sweep rows: insert (with an idempotency key), get, list, state
 * changes that move the trials' jobs in the same transaction, trials (each
 * inserted with its job in one transaction), the metric of a trial at a rung,
 * ASHA's decisions (one row each, written with the job move they cause), the
 * best trial, and the sweep's event log.
 *
 * DESIGN
 * - Everything a sweep decides is a row written in the transaction of its
 *   effect: a trial row and its QUEUED job; a decision row and its job's move
 *   (promote: PAUSED -> QUEUED; stop: PAUSED -> CANCELLED "sweep_stopped").
 *   The primary keys (sweep, trial) and (sweep, trial, rung) make a second
 *   attempt at either a no-op (STORE_CONFLICT), so a daemon killed at any
 *   moment never runs a trial twice nor decides twice.
 * - Every change writes a sweep event (text made by the caller) in the same
 *   transaction; jobs moved write their own "state" events.
 * Depends on store/db.h, store/jobs.h, store/events.h, api/job_state.h.
 */
#ifndef DIMD_STORE_SWEEPS_H
#define DIMD_STORE_SWEEPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/job_state.h"
#include "base/error.h"
#include "store/events.h"
#include "store/store.h"

/* Sweep states (the sweeps table's CHECK). */
enum sweep_state { SWEEP_RUNNING, SWEEP_PAUSED, SWEEP_SUCCEEDED, SWEEP_FAILED, SWEEP_CANCELLED };
const char *sweep_state_name(enum sweep_state s);
bool sweep_state_terminal(enum sweep_state s);

struct store_sweep {
    int64_t id;
    enum sweep_state state;
    char *name;      /* may be NULL */
    char *spec_json; /* the resolved spec */
    int64_t created_ms, updated_ms, finished_ms;
    int64_t best_trial; /* -1: none yet */
    int64_t last_event_id;
};
void store_sweep_clear(struct store_sweep *s);

/* A trial with what its job and the sweep's rows say of it. */
struct store_trial {
    int64_t trial;
    int64_t job_id;          /* 0: the job was deleted */
    char *params_json;       /* its hyperparameters */
    enum job_state job_state; /* meaningful when job_id != 0 */
    char *job_error_code;    /* may be NULL */
    int64_t step, total_steps;
    int rung;                /* the highest rung with a result, -1: none */
    int64_t rung_step;       /* its step */
    double value;            /* the metric there (NaN: none) */
    int promoted_rung;       /* the highest rung it was promoted from, -1: none */
    int stopped_rung;        /* the rung it was stopped at, -1: not stopped */
    int64_t created_ms;
};
void store_trial_clear(struct store_trial *t);

/* One result at a rung, with the decision on it (0 none, 1 promote, 2 stop). */
struct store_rung_result {
    int64_t trial;
    int rung;
    int64_t step;
    double value;
    int decision;
};

/* Inserts a RUNNING sweep with a "state" event. With idem_key: a key stored
 * less than the idempotency TTL ago with the same body_sha256 gives
 * STORE_REPLAY and the original sweep; with another body STORE_CONFLICT. */
int store_sweep_insert(struct dimd_store *s, const char *spec_json, const char *name,
                       const char *idem_key, const char *body_sha256, struct store_sweep *out,
                       struct dim_err *err);
int store_sweep_get(struct dimd_store *s, int64_t id, struct store_sweep *out,
                    struct dim_err *err);
/* Newest first; before_id 0 = from the newest; state_mask 0 = all (bit 1 << state). */
int store_sweep_list(struct dimd_store *s, unsigned state_mask, int64_t before_id, int limit,
                     struct store_sweep **out, size_t *n, bool *more, struct dim_err *err);
/* The ids of the sweeps in state RUNNING (malloc'd). */
int store_sweep_running(struct dimd_store *s, int64_t **ids, size_t *n, struct dim_err *err);

/* Moves sweep id from a state of from_mask (bits 1 << state) to `to`, with
 * event_text (a "state" sweep event, owned), and moves its trials' jobs:
 * pausing moves QUEUED and RUNNING ones to PAUSED "sweep_paused"; resuming moves
 * those back to QUEUED; cancelling moves every unfinished one to CANCELLED
 * "sweep_cancelled"; SUCCEEDED and FAILED move none. *moved (malloc'd, may be
 * NULL) = the jobs moved. STORE_CONFLICT when the sweep is in another state. */
int store_sweep_transition(struct dimd_store *s, int64_t id, unsigned from_mask,
                           enum sweep_state to, char *event_text, int64_t **moved,
                           size_t *n_moved, struct dim_err *err);

/* The sweep's trials, by trial number (malloc'd). */
int store_sweep_trials(struct dimd_store *s, int64_t sweep_id, struct store_trial **out,
                       size_t *n, struct dim_err *err);
/* Every result of the sweep with its decision (malloc'd), by rung then trial. */
int store_sweep_results(struct dimd_store *s, int64_t sweep_id, struct store_rung_result **out,
                        size_t *n, struct dim_err *err);

/* Creates trial `trial` of a RUNNING sweep and its QUEUED job (spec_json,
 * job_name) in one transaction with the sweep event event_text (owned);
 * *job_id its job. STORE_CONFLICT when the trial exists or the sweep is not
 * RUNNING (nothing written). */
int store_sweep_add_trial(struct dimd_store *s, int64_t sweep_id, int64_t trial,
                          const char *params_json, const char *spec_json, const char *job_name,
                          char *event_text, int64_t *job_id, struct dim_err *err);
/* Records the metric of a trial at a rung with event_text (owned);
 * STORE_CONFLICT when it is already recorded (nothing written). */
int store_sweep_add_result(struct dimd_store *s, int64_t sweep_id, int64_t trial, int rung,
                           int64_t step, double value, char *event_text, struct dim_err *err);
/* ASHA's decision on a trial at a rung (promote: its PAUSED job goes back to
 * the queue; stop: its PAUSED job is CANCELLED with code "sweep_stopped" and
 * job_message), with event_text (owned), in one transaction. STORE_CONFLICT
 * when decided before, the job is not PAUSED or the sweep is not RUNNING
 * (nothing written). */
int store_sweep_decide(struct dimd_store *s, int64_t sweep_id, int64_t trial, int rung,
                       bool promote, const char *job_message, char *event_text,
                       struct dim_err *err);
/* Sets the best trial with event_text (owned) when it changes. */
int store_sweep_set_best(struct dimd_store *s, int64_t sweep_id, int64_t trial, char *event_text,
                         struct dim_err *err);
/* For a trial's worker: *promoted = whether trial was promoted at rung. */
int store_sweep_promoted(struct dimd_store *s, int64_t sweep_id, int64_t trial, int rung,
                         bool *promoted, struct dim_err *err);
/* The mean of job_id's metric key over steps (step - window, step]; NaN when
 * there is no point (or only NaN ones). */
int store_sweep_metric_at(struct dimd_store *s, int64_t job_id, const char *key, int64_t step,
                          int64_t window, double *value, struct dim_err *err);
/* The sweep's events with id > after_id (store_event: job_id holds the sweep id). */
int store_sweep_events_after(struct dimd_store *s, int64_t sweep_id, int64_t after_id, int limit,
                             struct store_event **out, size_t *n, struct dim_err *err);

#endif

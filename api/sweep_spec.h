/* sweep_spec.h - a hyperparameter sweep's specification (POST /v1/sweeps) and
 * the pure logic of the search: the trials' hyperparameters (grid, random,
 * ASHA's draws), ASHA's rungs and its promote/stop decisions at a rung.
 *
 * DESIGN
 * - The body: a base job (any POST /v1/jobs training body, without steps or
 *   epochs), a search space over its keys ({"values": [...]} or a bare array;
 *   or {"min", "max", "scale": "uniform" | "log" | "int"}), an algorithm
 *   ("grid", "random", "asha"), trials, seed, the metric and its direction, the
 *   budget per trial ({"steps": N} or {"epochs": E}), ASHA's min_resource and
 *   reduction_factor (in the budget's unit), parallel trials, and
 *   validation_images (the probe metrics score on a validation split carved from
 *   the training split, never on the test split). Validated all at once: every
 *   problem with its JSON path; every value of the space is checked by parsing
 *   the job it would make (api/jobspec.h).
 * - Trial i's hyperparameters are a function of (spec, i) alone, so a daemon
 *   that died between creating trials draws the same ones again: grid point i
 *   (the last key varies fastest); random: a splitmix64 stream seeded by (seed,
 *   i); asha: the grid's points in a seeded order when every key is a list of
 *   values and trials fit the grid, else random draws.
 * - ASHA (Li et al., "A System for Massively Parallel Hyperparameter Tuning"):
 *   rungs at min_resource * eta^k below the budget, then the budget. At rung k,
 *   a trial with a result is promoted while it is in the top floor(n/eta) of
 *   the n results there (best first, non-finite values never); once no other
 *   trial can reach the rung, the rung is complete: the top max(1, floor(n/eta))
 *   are promoted and every other undecided trial is stopped.
 * Pure: no I/O. Depends on jansson, api/jobspec.h.
 */
#ifndef DIMD_API_SWEEP_SPEC_H
#define DIMD_API_SWEEP_SPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/jobspec.h"

#define SWEEP_MAX_DIMS 16
#define SWEEP_MAX_VALUES 100
#define SWEEP_MAX_TRIALS 1000
#define SWEEP_MAX_RUNGS 16
#define SWEEP_KEY_MAX 32

enum sweep_algo { SWEEP_GRID, SWEEP_RANDOM, SWEEP_ASHA };
enum sweep_scale { SWEEP_VALUES, SWEEP_UNIFORM, SWEEP_LOG, SWEEP_INT };

struct sweep_dim {
    char key[SWEEP_KEY_MAX];
    enum sweep_scale scale;
    json_t *values; /* SWEEP_VALUES: the array (a reference held by the spec) */
    double lo, hi;  /* ranges */
};

struct sweep_spec {
    char name[JOBSPEC_NAME_MAX]; /* "" = none */
    json_t *base;                /* the base job body (owned reference) */
    struct sweep_dim dims[SWEEP_MAX_DIMS];
    int n_dims;
    enum sweep_algo algo;
    uint64_t seed;
    int trials;
    char metric[64];
    bool maximize;
    bool budget_epochs; /* budget in epochs, else steps */
    double budget;
    double min_resource; /* asha: the first rung, in the budget's unit */
    int eta;             /* asha: the reduction factor */
    int parallel;        /* trials queued or running at once; 0: the daemon's workers */
    uint64_t validation_images; /* probe metrics: the held-out training images */
};

/* Releases the references s holds (safe on a zeroed or failed spec). */
void sweep_spec_clear(struct sweep_spec *s);

/* Parses and validates a sweep body; check/ctx as for jobspec_parse. Every
 * problem is appended to errors as {"path", "message"}; returns their number
 * (0: *out is valid; clear it with sweep_spec_clear either way). */
int sweep_spec_parse(const json_t *body, jobspec_dataset_check check, const void *ctx,
                     struct sweep_spec *out, json_t *errors);

/* The resolved spec, every key present (a new reference); parsing it again
 * gives the same spec. */
json_t *sweep_spec_to_json(const struct sweep_spec *s);

/* The number of points of the grid (every key a list), 0 when a key is a range. */
uint64_t sweep_grid_size(const struct sweep_spec *s);

/* Trial i's hyperparameters: {"key": value, ...} (a new reference). */
json_t *sweep_trial_params(const struct sweep_spec *s, int trial);

/* Trial i's job body: the base, its hyperparameters, the budget, the metric as
 * best_metric, validation_images for probe metrics, sweep_id and trial, and a
 * name (a new reference). */
json_t *sweep_trial_body(const struct sweep_spec *s, int64_t sweep_id, int trial);

/* The rungs' resources in the budget's unit, ascending, the last the budget
 * (grid and random: the budget only). Returns their number. */
int sweep_rungs(const struct sweep_spec *s, double out[SWEEP_MAX_RUNGS]);

/* The step of a run of total_steps at which the rung of `resource` falls
 * (budget: the whole budget): ceil(total * resource / budget), in [1, total]. */
uint64_t sweep_rung_step(uint64_t total_steps, double resource, double budget);

/* Whether metric value a ranks before b (direction; non-finite values last). */
bool sweep_better(double a, double b, bool maximize);

/* One result at a rung and the decision taken on it. */
enum sweep_decision { SWEEP_UNDECIDED = 0, SWEEP_PROMOTE = 1, SWEEP_STOP = 2 };
struct sweep_rung_entry {
    int64_t trial;
    double value; /* NaN: none (the metric was missing or not finite) */
    enum sweep_decision decision;
};

/* ASHA at one rung (see DESIGN): e[0..n) the rung's results with the decisions
 * already taken; complete: no other trial can still reach the rung; slots: how
 * many promotions may be made now (trials the sweep may still queue). Fills
 * promote[0..*n_promote) (best first, at most slots) and stop[0..*n_stop) with
 * the trials of new decisions (both arrays hold n). Sorts e best first. */
void sweep_asha_decide(struct sweep_rung_entry *e, size_t n, int eta, bool maximize, bool complete,
                       size_t slots, int64_t *promote, size_t *n_promote, int64_t *stop,
                       size_t *n_stop);

const char *sweep_algo_name(enum sweep_algo a);

#endif

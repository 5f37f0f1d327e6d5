/* jobspec.h - a training job's specification: the typed, closed schema of the
 * job JSON (POST /v1/jobs), validated all at once, and its resolved form.
 *
 * The JSON is flat and its keys are the CLI's flag names: every hyperparameter
 * of dim/hparams.h ("lr", "estimator", ...) plus the run keys below, so
 * `{"dataset":"fashion-mnist","steps":300,"lr":0.0002}` is
 * `dimd train --dataset fashion-mnist --steps 300 --lr 0.0002`.
 * The stored spec (jobspec_to_json) carries every key, defaults filled in.
 * Pure: no I/O. Whether a dataset exists is asked of the caller (a
 * jobspec_dataset_check), which knows the data roots.
 * Depends on jansson, core (dim/hparams, dim/probe).
 */
#ifndef DIMD_API_JOBSPEC_H
#define DIMD_API_JOBSPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "dim/model.h"
#include "eval/probe.h"
#include "base/error.h"

#define JOBSPEC_NAME_MAX 128
#define DATASET_NAME_MAX 256 /* bytes of a dataset name, with the NUL */

/* Whether dataset `name` can be used: 0, or nonzero with err naming the
 * dataset and the problem (service/datasets.h gives datasets_check). */
typedef int (*jobspec_dataset_check)(const void *ctx, const char *name, struct dim_err *err);

enum job_probe { JOB_PROBE_NONE, JOB_PROBE_LINEAR, JOB_PROBE_MLP };

struct job_spec {
    char name[JOBSPEC_NAME_MAX]; /* "" = none */
    char dataset[DATASET_NAME_MAX];
    struct dim_config cfg;
    bool channels_set;         /* else the dataset's channel count */
    uint64_t steps;            /* 0: run `epochs` passes instead */
    double epochs;             /* used when steps is 0 (default 1) */
    uint64_t checkpoint_every; /* steps between checkpoints (the last step always gets one) */
    uint64_t random_crop;
    bool random_flip;
    enum job_probe probe;      /* probe at every checkpoint */
    uint64_t probe_epochs;
    uint64_t probe_images;     /* training images the probe fits on (test split: all) */
    uint64_t keep_last, keep_best;
    char best_metric[64];      /* a metric key; losses are minimised, probe_* maximised */
    uint64_t validation_images; /* 0: the probe scores on the test split; N: on N training
                                   images held out of training and of the probe's fit */
    int64_t sweep_id;           /* a trial of this sweep (api/sweep_spec.h), 0: none */
    int64_t trial;              /* its trial number (from 0) when sweep_id is set */
    uint64_t ranks;            /* data-parallel processes under mpirun (1: in the daemon);
                                * cfg.batch is a multiple of it */
};

#define JOBSPEC_RANKS_MAX 1024 /* the schema's bound; the daemon's max_ranks is lower */

/* Appends {"path": "$.KEY" (or "$" when key is NULL), "message": ...} to errors:
 * the error form of every spec parser. */
void jobspec_error(json_t *errors, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fills the defaults. */
void jobspec_default(struct job_spec *s);

/* Whether body (a JSON object) sets "sweep_id" or "trial": keys only sweeps
 * (POST /v1/sweeps) write; POST /v1/jobs refuses them. */
bool jobspec_sets_sweep(const json_t *body);

/* Parses and validates a job body against the schema; check(ctx, ...) says
 * whether the dataset it names exists.
 * Every problem is appended to `errors` (a JSON array) as {"path": "$.lr",
 * "message": "..."}; returns the number of problems (0: *out is valid). */
int jobspec_parse(const json_t *body, jobspec_dataset_check check, const void *ctx,
                  struct job_spec *out, json_t *errors);

/* The daemon's limits on a parsed spec: ranks above max_ranks is a problem
 * at "$.ranks" (appended to errors). Returns the number of problems. */
int jobspec_check_limits(const struct job_spec *s, long max_ranks, json_t *errors);

/* The resolved spec with every key (a new reference). */
json_t *jobspec_to_json(const struct job_spec *s);

/* Total steps for a dataset of n_train images (steps, or ceil(epochs * steps per epoch)). */
uint64_t jobspec_total_steps(const struct job_spec *s, uint64_t n_train);

/* Every hyperparameter of c, named as in dim/hparams.h (a new reference). */
json_t *jobspec_hparams_json(const struct dim_config *c);

/* The schema of the job JSON for clients (GET /v1/job-schema): an array of
 * {name, type, default, help, minimum/maximum | enum} (a new reference). */
json_t *jobspec_schema_json(void);

const char *job_probe_name(enum job_probe p);

#endif

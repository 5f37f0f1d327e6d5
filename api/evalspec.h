/* evalspec.h - an evaluation job's specification: `POST /v1/jobs` with
 * `"kind": "evaluate"` measures a model version the way the DIM paper does
 * (core/eval/evaluate.h) and stores the results with the version.
 *
 *   {"kind": "evaluate", "model": "fm", "version": "v2",
 *    "measures": ["linear", "svm", "ndm", "mine", "recon"], "max_train": 5000}
 *
 * The keys besides kind, name, model, version and measures are the budget
 * fields of struct dim_eval_opts under the same names (and the flags of
 * `dimd measure`). Like a training spec, the schema is closed, validated all at
 * once with JSON paths, and stored with every key resolved; "latest" is
 * resolved to a version number at submission (by the API, which has the store).
 * Pure: no I/O. Depends on jansson, core (eval/evaluate), api/jobspec, api/model_name.
 */
#ifndef DIMD_API_EVALSPEC_H
#define DIMD_API_EVALSPEC_H

#include <jansson.h>
#include <stdbool.h>

#include "api/jobspec.h"
#include "eval/evaluate.h"
#include "api/model_name.h"

struct eval_spec {
    char name[JOBSPEC_NAME_MAX]; /* "" = none */
    char model[MODEL_NAME_MAX];
    int version; /* 0: the newest (only before the API resolves it) */
    struct dim_eval_opts opts; /* measures, seed and budgets; no callbacks */
};

/* Whether a job body (or stored spec) is an evaluation: "kind": "evaluate". */
bool evalspec_is_evaluation(const json_t *body);

void evalspec_default(struct eval_spec *s);

/* Parses and validates an evaluation body. Every problem is appended to errors
 * ({"path", "message"}); returns the number of problems. */
int evalspec_parse(const json_t *body, struct eval_spec *out, json_t *errors);

/* The resolved spec with every key (a new reference). */
json_t *evalspec_to_json(const struct eval_spec *s);

/* The fields of an evaluation body with type, default, bounds and help, for
 * GET /v1/job-schema (a new reference). */
json_t *evalspec_schema_json(void);

/* The metric keys an evaluation job writes for a measure mask, NULL-terminated
 * in buf (at most EVAL_MAX_KEYS): eval_progress and one key per figure
 * ("eval_linear_y", "eval_svm_y", "eval_ndm", "eval_mine", "eval_ssim", ...). */
#define EVAL_MAX_KEYS 32
size_t evalspec_metric_keys(unsigned measures, const char *keys[EVAL_MAX_KEYS]);

/* An evaluation's results as JSON: measures, n_train, n_test, the figures of
 * the measures that ran (null: failed), failed, failure, seconds. */
json_t *evalspec_result_json(const struct dim_eval_result *r);

/* Brings results stored before the converged classifiers (svm {"mean", "std"},
 * rows without "pixels" or "fit") to the current shape in place: the SVM's means
 * become its rows, a missing pixel row is null, a missing fit is null per row.
 * Current results are left as they are. */
void evalspec_result_upgrade(json_t *results);

/* The results as metric points: keys (those of evalspec_metric_keys but
 * eval_progress) and values (NaN: failed), in the same order. */
size_t evalspec_result_points(const struct dim_eval_result *r, const char *keys[EVAL_MAX_KEYS],
                              double values[EVAL_MAX_KEYS]);

#endif

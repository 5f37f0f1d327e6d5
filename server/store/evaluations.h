/* evaluations.h - the evaluations recorded against a model version
 * (migrations/0005_evaluations.sql): results JSON and an optional grid PNG.
 * Depends on store/store.h.
 */
#ifndef DIMD_STORE_EVALUATIONS_H
#define DIMD_STORE_EVALUATIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "store/store.h"

struct store_evaluation {
    int64_t id;
    int64_t job_id; /* 0 once the job is deleted */
    int64_t created_ms;
    char *results_json;
    int64_t grid_bytes; /* 0: no grid image */
};
void store_evaluation_clear(struct store_evaluation *e);
/* Records an evaluation of version `version` (an exact number) by job_id (a job
 * that no longer exists is recorded as none); grid (PNG) may be NULL.
 * STORE_NOT_FOUND when the version no longer exists. */
int store_evaluation_add(struct dimd_store *s, const char *name, int version, int64_t job_id,
                         const char *results_json, const void *grid, size_t grid_bytes, int64_t *id,
                         struct dim_err *err);
/* A version's evaluations, oldest first (none: an empty list). */
int store_evaluation_list(struct dimd_store *s, const char *name, int version,
                          struct store_evaluation **out, size_t *n, struct dim_err *err);
/* The grid PNG of evaluation id of that version; STORE_NOT_FOUND when there is none. */
int store_evaluation_grid(struct dimd_store *s, const char *name, int version, int64_t id,
                          void **png, size_t *bytes, struct dim_err *err);

#endif

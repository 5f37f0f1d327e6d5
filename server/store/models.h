/* models.h - named, immutable model versions promoted from checkpoints, with
 * their neighbours index, and a generation counter for caches of them.
 * A model version owns a copy of its checkpoint (inference-only: no Adam
 * moments), so deleting the job or its checkpoints never breaks it, and the
 * neighbours index of its training set's embeddings. Version numbers count up
 * per name and are never reused, even after a delete.
 * Depends on store/store.h, api/model_name.h.
 */
#ifndef DIMD_STORE_MODELS_H
#define DIMD_STORE_MODELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/model_name.h"
#include "base/error.h"
#include "store/store.h"

struct store_model_version {
    char name[MODEL_NAME_MAX];
    int version;            /* 1, 2, ... ("v1" in the API) */
    int64_t job_id;         /* source job, 0 once that job is deleted */
    int64_t step;           /* source checkpoint's step */
    char source_sha256[65]; /* the source checkpoint's sha256 */
    char sha256[65];        /* this version's (inference-only) checkpoint bytes */
    int64_t bytes;
    int64_t created_ms;
    bool pinned;          /* pinned versions cannot be deleted */
    char *info_json;      /* {"preset","channels","input":[c,h,w],"y_dim","dataset",...} */
    char *metrics_json;   /* metrics of the source checkpoint (probe accuracies, losses) */
    int64_t index_images; /* images in the neighbours index (0: none) */
    int index_dim;        /* width of each index vector */
};
void store_model_version_clear(struct store_model_version *v);

/* The neighbours index: index_images unit vectors (float32, index_dim each) and
 * their labels (uint16). */
struct store_model_index {
    const float *vectors;
    const uint16_t *labels;
    int64_t n;
    int dim;
};

/* Creates the next version of model name (creating the model), in one
 * transaction: ckpt bytes with their sha256, the index (may be NULL / n 0).
 * *out gets the new version's row. */
int store_model_create(struct dimd_store *s, const char *name, int64_t job_id, int64_t step,
                       const char *source_sha256, const void *ckpt, size_t ckpt_bytes,
                       const char *sha256_hex, const char *info_json, const char *metrics_json,
                       bool pinned, const struct store_model_index *index,
                       struct store_model_version *out, struct dim_err *err);

/* Every model name with its newest version (NULL rows are skipped: a model whose
 * versions were all deleted is listed with version 0). *out malloc'd, name order. */
int store_model_list(struct dimd_store *s, struct store_model_version **out, size_t *n,
                     struct dim_err *err);
/* The versions of one model, oldest first. STORE_NOT_FOUND when no such model. */
int store_model_versions(struct dimd_store *s, const char *name, struct store_model_version **out,
                         size_t *n, struct dim_err *err);
/* One version (version 0: the newest). ckpt (optional, malloc'd) gets its
 * checkpoint bytes; vectors/labels (optional, malloc'd) its index. */
int store_model_get(struct dimd_store *s, const char *name, int version,
                    struct store_model_version *out, void **ckpt, float **vectors,
                    uint16_t **labels, struct dim_err *err);
/* Deletes one version (0: the newest). STORE_CONFLICT when it is pinned; STORE_NOT_FOUND. */
int store_model_delete(struct dimd_store *s, const char *name, int version, struct dim_err *err);
/* A counter (>= 1) that changes after every commit that creates or deletes a
 * model version, so a reader caching what a (name, version) resolves to knows
 * when to ask again. Pins do not change it. Valid because only this process
 * writes the database. */
uint64_t store_models_generation(struct dimd_store *s);
/* Sets or clears a version's pin (0: the newest). */
int store_model_pin(struct dimd_store *s, const char *name, int version, bool pinned,
                    struct store_model_version *out, struct dim_err *err);

#endif

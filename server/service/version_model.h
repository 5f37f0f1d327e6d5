/* version_model.h - the model of a stored model version, read for a use case
 * that runs it: a version's projection (service/projection.h) and an
 * evaluation job (service/eval_job.c). The inference service keeps its own
 * loader: it caches models with their neighbours index.
 * Depends on store, api/jobspec (DATASET_NAME_MAX), core (dim).
 */
#ifndef DIMD_SERVICE_VERSION_MODEL_H
#define DIMD_SERVICE_VERSION_MODEL_H

#include "api/jobspec.h"
#include "base/error.h"
#include "dim/model.h"
#include "store/models.h"

enum version_model_rc {
    VERSION_MODEL_OK = 0,
    VERSION_MODEL_NOT_FOUND = 1, /* no such model or version */
    VERSION_MODEL_INVALID = 2,   /* its bytes do not decode: err has core's code and message */
    VERSION_MODEL_ERROR = -1     /* the store failed: err has its message */
};

/* Reads version `version` of model name (0: the newest) from the store and
 * decodes its checkpoint: *m gets the model, inference-only (free it with
 * dim_model_free), dataset the dataset named in its info ("" when none).
 * On failure *m is NULL and err says why (see enum version_model_rc; its
 * message is the store's or core's, without the version's name).
 * Thread-safety: as the store. */
int version_model_load(struct dimd_store *store, const char *name, int version,
                       struct dim_model **m, char dataset[DATASET_NAME_MAX], struct dim_err *err);

#endif

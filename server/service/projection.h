/* projection.h - a model version's projection for the dashboard's scatter
 * plot: the version's Y embeddings of up to max_images test images (evenly
 * spaced, service/embeddings.h), centred and projected on their first two
 * principal components (core/eval/pca.h).
 *
 * DESIGN
 * - Made on the first call, on the calling thread (the test split is encoded
 *   once, then PCA), stored with the version (migrations/0004_projections.sql)
 *   and read from the store afterwards: versions never change. On a full disk
 *   (STORE_FULL) the projection is answered without being stored. Two first calls
 *   at once both compute (the same text); the first one stored stays.
 * - The answer is JSON text: {"model","version":"v1","number","dataset",
 *   "classes","split":"test","n","dataset_images","y_dim",
 *   "explained_variance":[pc1, pc2],"points":[[x, y, label, image], ...]},
 *   numbers to 5 significant digits (plenty for a plot, and small); "image" is
 *   the point's position in the test split.
 * Depends on store, service/embeddings, service/version_model, core (dim,
 * eval/pca); no HTTP.
 */
#ifndef DIMD_SERVICE_PROJECTION_H
#define DIMD_SERVICE_PROJECTION_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"
#include "service/datasets.h"
#include "store/models.h"
#include "store/projections.h"

enum projection_rc {
    PROJECTION_OK = 0,
    PROJECTION_NOT_FOUND = 1,  /* no such version (or it was deleted meanwhile) */
    PROJECTION_NO_DATASET = 2, /* the test split cannot be loaded or has < 2 images (err: why) */
    PROJECTION_ERROR = -1      /* store, checkpoint or memory failure (err: what failed) */
};

/* The projection of model name's version `version` (an exact number >= 1) as
 * JSON text in *json (malloc'd, the caller frees it), computed with up to
 * max_images test images of the version's dataset (resolved through ds) when
 * none is stored yet, and then stored. *cached (when not NULL) says whether
 * it was read from the store. On failure *json is NULL and err says why (see
 * enum projection_rc).
 * Thread-safety: as the store; any number of calls may run at once. */
int projection_get(struct dimd_store *store, const struct datasets *ds, const char *name,
                   int version, size_t max_images, char **json, bool *cached,
                   struct dim_err *err);

#endif

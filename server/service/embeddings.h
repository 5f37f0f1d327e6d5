/* embeddings.h - the Y embeddings of a dataset split, for the use cases that
 * need a model's view of many images at once: a promoted version's neighbours
 * index (service/promote.h) and a version's projection (service/projection.h).
 *
 * DESIGN
 * - Runs on the calling thread with a compute pool (util/threadpool.h) of the
 *   machine's other cores for the duration of the call, like a training worker;
 *   batches of EMBEDDINGS_BATCH images.
 * - Images are taken evenly spaced: row i of n is image floor(i * N / n) of the
 *   N in the split, so a cap on n never biases a class-sorted folder.
 * Depends on service/datasets, util/threadpool, core (data, dim), jansson.
 */
#ifndef DIMD_SERVICE_EMBEDDINGS_H
#define DIMD_SERVICE_EMBEDDINGS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "data/dataset.h"
#include "dim/model.h"
#include "service/datasets.h"

#define EMBEDDINGS_BATCH 256

/* What embeddings_split made. Owned by the caller: embeddings_clear. */
struct embeddings {
    float *vectors;   /* (n, dim), malloc'd; NULL when n is 0 */
    uint16_t *labels; /* (n), malloc'd; NULL when n is 0 */
    int64_t n;        /* rows */
    int64_t n_data;   /* images in the split (N) */
    size_t dim;       /* width of a row: the model's Y */
    json_t *classes;  /* the dataset's class names (array), or JSON null */
};

/* Embeds up to max_n images of the dataset's split with model m (read only;
 * shared with other threads is fine): their Y, scaled to unit length when
 * unit (a zero vector stays zero), and their labels. max_n 0 reads nothing and
 * gives an empty result with classes null. On success out is filled (clear it
 * with embeddings_clear); on failure out is empty.
 * Returns 0, or -1 with err: the dataset cannot be resolved or loaded (its
 * message names the dataset or file), or DIM_ENOMEM.
 * Thread-safety: reentrant; the calling thread's dim_parallel pool is set for
 * the call and reset to none afterwards. */
int embeddings_split(const struct datasets *ds, const struct dim_model *m, const char *dataset,
                     enum dim_split split, size_t max_n, bool unit, struct embeddings *out,
                     struct dim_err *err);

/* Frees what out owns and zeroes it; NULL or an empty one is fine. */
void embeddings_clear(struct embeddings *out);

#endif

/* inference.h - the inference service: answers encode and neighbours requests
 * from trained model versions.
 *
 * DESIGN
 * - Model cache: model versions are loaded from the store on first use
 *   (dim_checkpoint_read, inference-only) and kept, at most cache_max of them,
 *   least recently used evicted first (never one in use). A loaded model is
 *   shared read-only by every encode thread; each thread has its own workspace.
 * - Dynamic batching: callers (HTTP connection threads) hand in preprocessed
 *   inputs and block. `threads` encode threads take the oldest request, gather
 *   more requests for the same model version and tap until batch_max images are
 *   collected or wait_ms has passed since the oldest arrived, run one forward
 *   pass for all of them and wake each caller with its rows. A request larger
 *   than batch_max runs alone, in chunks. More than queue_max waiting images:
 *   INFERENCE_QUEUE_FULL at once (the caller answers 429).
 * - Compute: each encode thread owns a compute pool (util/threadpool.h) of
 *   compute_threads threads; BLAS stays on one thread (process-wide setting).
 * - Neighbours: cosine similarity of a query embedding against the version's
 *   index (unit vectors of the training set's Y), top k.
 * Depends on store, util (threadpool, clock), core.
 */
#ifndef DIMD_SERVICE_INFERENCE_H
#define DIMD_SERVICE_INFERENCE_H

#include <stddef.h>
#include <stdint.h>

#include "api/model_name.h"
#include "base/error.h"
#include "dim/model.h"
#include "service/neighbors.h"
#include "store/store.h"

enum inference_rc {
    INFERENCE_OK = 0,
    INFERENCE_NOT_FOUND = 1,  /* no such model or version */
    INFERENCE_QUEUE_FULL = 2, /* queue_max images already wait */
    INFERENCE_STOPPING = 3,   /* inference_stop was called */
    INFERENCE_ERROR = -1      /* err says what */
};

struct inference_config {
    int threads;         /* encode threads, >= 1 */
    int compute_threads; /* compute threads of each (pool size + 1), >= 1 */
    int batch_max;       /* images per forward pass, >= 1 */
    int wait_ms;         /* longest wait for a batch to fill, >= 0 */
    int queue_max;       /* images waiting before INFERENCE_QUEUE_FULL, >= 1 */
    int cache_max;       /* model versions kept loaded, >= 1 */
};

/* What a caller needs to know of a model version (copied out; no pointers). */
struct inference_model_info {
    char name[MODEL_NAME_MAX];
    int version;
    char sha256[65];
    int in_c, in_h, in_w;
    size_t dim[4]; /* output width per tap: DIM_TAP_CONV, FC, Y, LOCAL (pooled: channels) */
    int64_t index_images;
};

struct inference;

int inference_start(struct inference **out, struct dimd_store *store, const struct inference_config *cfg,
                  struct dim_err *err);
/* Wakes every waiting caller with INFERENCE_STOPPING, joins the threads, frees. */
void inference_stop(struct inference *e);

/* Loads (or finds in the cache) model name at version (0: the newest) and
 * describes it. INFERENCE_NOT_FOUND names what is missing in err. */
int inference_model(struct inference *e, const char *name, int version, struct inference_model_info *info,
                  struct dim_err *err);

/* Encodes n inputs x (n, in_c, in_h, in_w), already preprocessed with
 * dim_image_to_input for the model's size, with model name at version (0: the
 * newest). Blocks until done. *out (malloc'd) gets n rows of info->dim[tap]
 * floats; DIM_TAP_LOCAL gives the local feature map averaged over locations. */
int inference_encode(struct inference *e, const char *name, int version, enum dim_tap tap,
                   const float *x, size_t n, float **out, struct inference_model_info *info,
                   struct dim_err *err);

/* The k nearest training images to embedding y (info->dim[DIM_TAP_Y] floats) by
 * cosine similarity, best first, in out[0..*n). INFERENCE_NOT_FOUND when the
 * version has no index. */
int inference_neighbors(struct inference *e, const char *name, int version, const float *y, int k,
                      struct neighbor *out, size_t *n, struct dim_err *err);

struct inference_stats {
    uint64_t requests, images, batches; /* since start */
    double forward_seconds;             /* since start: in forward passes, summed over threads */
    int queued_images;
    int cached_models;
};
void inference_get_stats(struct inference *e, struct inference_stats *out);

#endif

/* neighbors.h - the k training images nearest to a query embedding, by cosine
 * similarity against a model version's neighbours index (unit vectors of its
 * training set's Y embeddings, stored with the version).
 * Pure computation: one matrix-vector product (nn_sgemm) and a bounded heap;
 * thread-safe, allocates its scratch per call.
 * Depends on core/base (BLAS wrapper, errors).
 */
#ifndef DIMD_SERVICE_NEIGHBORS_H
#define DIMD_SERVICE_NEIGHBORS_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

struct neighbor {
    int64_t index; /* row of the index: position in the training split */
    int label;
    float cosine;
};

/* The min(k, n) rows of vectors (n, dim), unit length, most similar to y (dim),
 * into out[0..*found), best first; ties go to the lower row, NaN scores count
 * as -infinity. y need not be unit length (a zero y scores 0 everywhere).
 * Returns 0, DIM_EINVAL (k < 1, or n or dim 0), DIM_ENONFINITE (y has a
 * non-finite value) or DIM_ENOMEM, with err saying which. */
int neighbors_search(const float *vectors, const uint16_t *labels, size_t n, size_t dim,
                     const float *y, size_t k, struct neighbor *out, size_t *found,
                     struct dim_err *err);

#endif

/* linear.h - fully connected layer: out (B, O) = in (B, I) x W^T + b, W (O, I).
 * Backward ACCUMULATES into din, dw and db. Depends on base/blas.h; no allocation.
 */
#ifndef DIM_NN_LINEAR_H
#define DIM_NN_LINEAR_H

#include <stddef.h>

/* b may be NULL (no bias). */
void nn_linear_forward(float *out, const float *in, const float *w, const float *b, size_t B,
                       size_t I, size_t O);

/* din += dout x W (skipped when din is NULL); dw += dout^T x in; db += colsum(dout)
 * (skipped when db is NULL). */
void nn_linear_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                        const float *w, size_t B, size_t I, size_t O);

#endif

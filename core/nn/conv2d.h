/* conv2d.h - 2-D convolution by im2col + sgemm, with a naive direct oracle.
 *
 * Tensors are contiguous row-major float32 NCHW. Weights are (OC, C, k, k),
 * bias (OC). Any kernel size, stride and zero padding.
 * Backward passes ACCUMULATE into din, dw and db (callers zero them).
 * Depends on: base/blas.h. No allocation; thread-safe on distinct buffers.
 */
#ifndef DIM_NN_CONV2D_H
#define DIM_NN_CONV2D_H

#include <stddef.h>

struct nn_conv2d {
    int C, H, W;    /* input channels and size */
    int OC, OH, OW; /* output channels and size */
    int k, s, p;    /* square kernel, stride, padding */
};

/* Fills the geometry; returns 0, or -1 when the output would be empty. */
int nn_conv2d_init(struct nn_conv2d *cv, int C, int H, int W, int OC, int k, int s, int p);

/* Floats of the column buffer for B images: (C*k*k, B*OH*OW). */
size_t nn_conv2d_col_floats(const struct nn_conv2d *cv, size_t B);
/* Floats of scratch that forward and backward need for B images. */
size_t nn_conv2d_scratch_floats(const struct nn_conv2d *cv, size_t B);

/* out (B, OC, OH, OW) = w * in (B, C, H, W) + b (b may be NULL).
 * col receives the im2col matrix (kept for backward); scratch is temporary. */
void nn_conv2d_forward(float *out, float *col, float *scratch, const float *in, const float *w,
                       const float *b, const struct nn_conv2d *cv, size_t B);

/* Differentiates out = conv(in, w) + b given dout and the forward's col.
 * din += d/din (skipped when din is NULL), dw += d/dw, db += d/db (skipped when NULL). */
void nn_conv2d_backward(float *din, float *dw, float *db, float *scratch, const float *dout,
                        const float *col, const float *w, const struct nn_conv2d *cv, size_t B);

/* Direct six-loop convolution, the test oracle for nn_conv2d_forward. */
void nn_conv2d_forward_naive(float *out, const float *in, const float *w, const float *b,
                             const struct nn_conv2d *cv, size_t B);

#endif

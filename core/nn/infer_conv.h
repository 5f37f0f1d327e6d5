/* infer_conv.h - inference-only layer kernels on channels-last maps: convolution
 * and fully connected layers with the bias and the ReLU applied right after the
 * product, while the block is in cache. No gradients, no training state.
 *
 * Layout: maps are (B, H, W, C) ("NHWC"), weights of a convolution (OC, k, k, C),
 * of a fully connected layer (O, I) as in nn/linear.h. In NHWC a receptive field
 * row (one ki, all kj, all channels) is one contiguous run of k*C floats, so the
 * column gather is a few memcpy calls per output pixel instead of nn/conv2d.c's
 * strided loads.
 * Convolution: the B*OH*OW output pixels are cut into blocks of `rows` pixels;
 * each part of the thread's pool (base/parallel.h) takes blocks one at a time
 * from a shared counter (a part on a core busy with other work takes fewer)
 * and, for each, gathers its column block (rows, k*k*C) into its own slice of
 * scratch, multiplies it by the weights with one single-threaded sgemm into the
 * output rows, and adds the bias / applies ReLU to those rows. Fewer pixels than
 * one block: one gather, one sgemm split across the pool by output channels.
 * Fully connected: chunks of 128 output features taken the same way, one sgemm
 * each; one or two images: matrix-vector products (sgemm would copy the whole
 * weight matrix into its packed form for one row).
 * Results do not depend on the pool (each output element is one sgemm over the
 * whole k*k*C), but do depend on `rows` at the rounding level of sgemm.
 * Depends on: conv2d (geometry), base/blas, base/parallel.
 */
#ifndef DIM_NN_INFER_CONV_H
#define DIM_NN_INFER_CONV_H

#include <stdbool.h>
#include <stddef.h>

#include "nn/conv2d.h"

/* Output pixels per block so that one column block holds about target_floats
 * floats (at least 8 pixels). */
size_t nn_infer_conv_rows(const struct nn_conv2d *cv, size_t target_floats);

/* Scratch floats nn_infer_conv_forward needs for `parts` parts of `rows` pixels. */
size_t nn_infer_conv_scratch_floats(const struct nn_conv2d *cv, size_t rows, int parts);

/* out (B, OH, OW, OC) = conv(in (B, H, W, C), w (OC, k, k, C)) + b (OC; NULL: none),
 * then max(., 0) when relu. scratch holds nn_infer_conv_scratch_floats(cv, rows,
 * parts) floats; parts is how many slices it has (the pool's width or less). */
void nn_infer_conv_forward(float *out, float *scratch, const float *in, const float *w,
                           const float *b, bool relu, const struct nn_conv2d *cv, size_t rows,
                           int parts, size_t B);

/* out (B, O) = in (B, I) x w^T (w: (O, I)) + b (O; NULL: none), then max(., 0) when
 * relu. The product is split across the thread's pool (nn_sgemm). */
void nn_infer_linear_forward(float *out, const float *in, const float *w, const float *b,
                             bool relu, size_t B, size_t I, size_t O);

/* out (B, HW, C) = in (B, C, HW) transposed per image, and back. */
void nn_nchw_to_nhwc(float *out, const float *in, size_t B, size_t C, size_t HW);
void nn_nhwc_to_nchw(float *out, const float *in, size_t B, size_t C, size_t HW);

#endif

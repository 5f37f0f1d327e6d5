/* norm.h - batch normalisation and layer normalisation.
 *
 * Batch norm normalises each channel over (B, HW) for input (B, C, HW); a
 * linear layer's output is the case HW = 1. Training uses batch statistics and
 * updates running statistics (PyTorch convention: running_var tracks the
 * unbiased variance, new = (1 - momentum) * old + momentum * batch);
 * inference uses the running statistics.
 * Layer norm normalises each row of (R, D) over D, with affine gamma, beta.
 * Backward passes ACCUMULATE into din, dgamma and dbeta. No allocation.
 */
#ifndef DIM_NN_NORM_H
#define DIM_NN_NORM_H

#include <stddef.h>

#define NN_BN_MOMENTUM 0.1f
#define NN_NORM_EPS 1e-5f

/* out = gamma * (in - mean_c) * invstd_c + beta; mean (C), invstd (C) saved for backward.
 * running_mean/var (C) updated when non-NULL. */
void nn_batchnorm_forward_train(float *out, float *mean, float *invstd, const float *in,
                                const float *gamma, const float *beta, float *running_mean,
                                float *running_var, size_t B, size_t C, size_t HW);
void nn_batchnorm_forward_infer(float *out, const float *in, const float *gamma,
                                const float *beta, const float *running_mean,
                                const float *running_var, size_t B, size_t C, size_t HW);
void nn_batchnorm_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                           const float *in, const float *mean, const float *invstd,
                           const float *gamma, size_t B, size_t C, size_t HW);

/* Batch norm followed by ReLU, fused: also writes relu = max(out, 0) in the same pass.
 * relu may be NULL (then this is nn_batchnorm_forward_train). */
void nn_batchnorm_relu_forward_train(float *out, float *relu, float *mean, float *invstd,
                                     const float *in, const float *gamma, const float *beta,
                                     float *running_mean, float *running_var, size_t B, size_t C,
                                     size_t HW);
/* Backward of relu(batchnorm(in)) from dout = d/d relu, masked by relu > 0 on the fly,
 * so the batch norm's own output gradient is never stored. relu may be NULL (then
 * dout is d/d out and this is nn_batchnorm_backward). */
void nn_batchnorm_relu_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                                const float *relu, const float *in, const float *mean,
                                const float *invstd, const float *gamma, size_t B, size_t C,
                                size_t HW);

/* out (R, D) = gamma * (in - mean_r) * rstd_r + beta; mean, rstd (R) saved for backward. */
void nn_layernorm_forward(float *out, float *mean, float *rstd, const float *in,
                          const float *gamma, const float *beta, size_t R, size_t D);
void nn_layernorm_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                           const float *in, const float *mean, const float *rstd,
                           const float *gamma, size_t R, size_t D);

#endif

/* activation.h - elementwise functions and their derivatives, numerically stable.
 * Backward passes ACCUMULATE into din. No allocation. Large loops run on the
 * calling thread's pool when it has one (base/parallel.h).
 */
#ifndef DIM_NN_ACTIVATION_H
#define DIM_NN_ACTIVATION_H

#include <math.h>
#include <stddef.h>

/* softplus(z) = log(1 + e^z) = max(z, 0) + log1p(exp(-|z|)) */
static inline double nn_softplus(double z)
{
    return (z > 0 ? z : 0) + log1p(exp(-fabs(z)));
}

/* sigmoid(z) = 1 / (1 + e^-z), without overflow for large |z| */
static inline double nn_sigmoid(double z)
{
    if (z >= 0)
        return 1.0 / (1.0 + exp(-z));
    double e = exp(z);
    return e / (1.0 + e);
}

void nn_relu_forward(float *out, const float *in, size_t n);
/* din += dout where out > 0 */
void nn_relu_backward(float *din, const float *dout, const float *out, size_t n);

void nn_sigmoid_forward(float *out, const float *in, size_t n);
/* din += dout * out * (1 - out) */
void nn_sigmoid_backward(float *din, const float *dout, const float *out, size_t n);

/* Inverted dropout: mask[i] is 0 or 1/(1-p) drawn by the caller; out = in * mask. */
void nn_mul_forward(float *out, const float *in, const float *mask, size_t n);
/* din += dout * mask */
void nn_mul_backward(float *din, const float *dout, const float *mask, size_t n);

#endif

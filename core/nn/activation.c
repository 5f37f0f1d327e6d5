/* activation.c - elementwise kernels, split across the thread's pool (base/parallel.h). */
#include "nn/activation.h"

#include "base/parallel.h"

#define GRAIN 16384

struct ew {
    float *out;
    const float *a, *b;
};

static void relu_fwd(void *c, size_t i0, size_t i1)
{
    struct ew *e = c;
    float *restrict out = e->out;
    const float *restrict in = e->a;
    for (size_t i = i0; i < i1; i++)
        out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

void nn_relu_forward(float *out, const float *in, size_t n)
{
    struct ew e = {out, in, NULL};
    dim_parallel_for(n, GRAIN, relu_fwd, &e);
}

static void relu_bwd(void *c, size_t i0, size_t i1)
{
    struct ew *e = c;
    float *restrict din = e->out;
    const float *restrict dout = e->a, *restrict out = e->b;
    for (size_t i = i0; i < i1; i++)
        din[i] += out[i] > 0.0f ? dout[i] : 0.0f;
}

void nn_relu_backward(float *din, const float *dout, const float *out, size_t n)
{
    struct ew e = {din, dout, out};
    dim_parallel_for(n, GRAIN, relu_bwd, &e);
}

void nn_sigmoid_forward(float *out, const float *in, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (float)nn_sigmoid(in[i]);
}

void nn_sigmoid_backward(float *din, const float *dout, const float *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        din[i] += dout[i] * out[i] * (1.0f - out[i]);
}

static void mul_fwd(void *c, size_t i0, size_t i1)
{
    struct ew *e = c;
    for (size_t i = i0; i < i1; i++)
        e->out[i] = e->a[i] * e->b[i];
}

void nn_mul_forward(float *out, const float *in, const float *mask, size_t n)
{
    struct ew e = {out, in, mask};
    dim_parallel_for(n, GRAIN, mul_fwd, &e);
}

static void mul_bwd(void *c, size_t i0, size_t i1)
{
    struct ew *e = c;
    float *restrict din = e->out;
    const float *restrict dout = e->a, *restrict mask = e->b;
    for (size_t i = i0; i < i1; i++)
        din[i] += dout[i] * mask[i];
}

void nn_mul_backward(float *din, const float *dout, const float *mask, size_t n)
{
    struct ew e = {din, dout, mask};
    dim_parallel_for(n, GRAIN, mul_bwd, &e);
}

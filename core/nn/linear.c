/* linear.c - fully connected layer on sgemm. */
#include "nn/linear.h"

#include "base/blas.h"

void nn_linear_forward(float *out, const float *in, const float *w, const float *b, size_t B,
                       size_t I, size_t O)
{
    if (b) {
        for (size_t n = 0; n < B; n++)
            for (size_t o = 0; o < O; o++)
                out[n * O + o] = b[o];
    }
    nn_sgemm(false, true, B, O, I, 1.0f, in, I, w, I, b ? 1.0f : 0.0f, out, O);
}

void nn_linear_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                        const float *w, size_t B, size_t I, size_t O)
{
    /* out[n][o] = sum_i in[n][i] w[o][i] + b[o] */
    if (din)
        nn_sgemm(false, false, B, I, O, 1.0f, dout, O, w, I, 1.0f, din, I);
    nn_sgemm(true, false, O, I, B, 1.0f, dout, O, in, I, 1.0f, dw, I);
    if (db)
        for (size_t n = 0; n < B; n++)
            for (size_t o = 0; o < O; o++)
                db[o] += dout[n * O + o];
}

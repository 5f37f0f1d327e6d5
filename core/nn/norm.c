/* norm.c - batch norm and layer norm, statistics accumulated in double. */
#include "nn/norm.h"

#include <math.h>

void nn_batchnorm_forward_train(float *out, float *mean, float *invstd, const float *in,
                                const float *gamma, const float *beta, float *running_mean,
                                float *running_var, size_t B, size_t C, size_t HW)
{
    const size_t M = B * HW;
    for (size_t c = 0; c < C; c++) {
        double s = 0.0, ss = 0.0;
        for (size_t b = 0; b < B; b++) {
            const float *x = in + (b * C + c) * HW;
            for (size_t i = 0; i < HW; i++)
                s += x[i];
        }
        double mu = s / (double)M;
        for (size_t b = 0; b < B; b++) {
            const float *x = in + (b * C + c) * HW;
            for (size_t i = 0; i < HW; i++) {
                double d = x[i] - mu;
                ss += d * d;
            }
        }
        double var = ss / (double)M;
        float is = (float)(1.0 / sqrt(var + NN_NORM_EPS));
        mean[c] = (float)mu;
        invstd[c] = is;
        if (running_mean) {
            double unbiased = M > 1 ? ss / (double)(M - 1) : var;
            running_mean[c] = (1.0f - NN_BN_MOMENTUM) * running_mean[c] + NN_BN_MOMENTUM * (float)mu;
            running_var[c] =
                (1.0f - NN_BN_MOMENTUM) * running_var[c] + NN_BN_MOMENTUM * (float)unbiased;
        }
        float g = gamma[c] * is, sh = beta[c] - (float)mu * g;
        for (size_t b = 0; b < B; b++) {
            const float *x = in + (b * C + c) * HW;
            float *y = out + (b * C + c) * HW;
            for (size_t i = 0; i < HW; i++)
                y[i] = x[i] * g + sh;
        }
    }
}

void nn_batchnorm_forward_infer(float *out, const float *in, const float *gamma,
                                const float *beta, const float *running_mean,
                                const float *running_var, size_t B, size_t C, size_t HW)
{
    for (size_t c = 0; c < C; c++) {
        float g = gamma[c] / sqrtf(running_var[c] + NN_NORM_EPS);
        float sh = beta[c] - running_mean[c] * g;
        for (size_t b = 0; b < B; b++) {
            const float *x = in + (b * C + c) * HW;
            float *y = out + (b * C + c) * HW;
            for (size_t i = 0; i < HW; i++)
                y[i] = x[i] * g + sh;
        }
    }
}

/* Forward: y = gamma * xhat + beta, xhat = (x - mean) * invstd over M = B*HW samples.
 * Backward: dx = invstd / M * (M * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat)),
 * dxhat = dy * gamma. */
void nn_batchnorm_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                           const float *in, const float *mean, const float *invstd,
                           const float *gamma, size_t B, size_t C, size_t HW)
{
    const double M = (double)(B * HW);
    for (size_t c = 0; c < C; c++) {
        double sdy = 0.0, sdyx = 0.0;
        const float mu = mean[c], is = invstd[c];
        for (size_t b = 0; b < B; b++) {
            const float *x = in + (b * C + c) * HW, *dy = dout + (b * C + c) * HW;
            for (size_t i = 0; i < HW; i++) {
                sdy += dy[i];
                sdyx += (double)dy[i] * (x[i] - mu) * is;
            }
        }
        dgamma[c] += (float)sdyx;
        dbeta[c] += (float)sdy;
        if (!din)
            continue;
        const float k = gamma[c] * is;
        const float a = (float)(sdy / M), bcoef = (float)(sdyx / M);
        for (size_t b = 0; b < B; b++) {
            const float *x = in + (b * C + c) * HW, *dy = dout + (b * C + c) * HW;
            float *dx = din + (b * C + c) * HW;
            for (size_t i = 0; i < HW; i++) {
                float xh = (x[i] - mu) * is;
                dx[i] += k * (dy[i] - a - xh * bcoef);
            }
        }
    }
}

void nn_layernorm_forward(float *out, float *mean, float *rstd, const float *in,
                          const float *gamma, const float *beta, size_t R, size_t D)
{
    for (size_t r = 0; r < R; r++) {
        const float *x = in + r * D;
        float *y = out + r * D;
        double s = 0.0, ss = 0.0;
        for (size_t d = 0; d < D; d++)
            s += x[d];
        double mu = s / (double)D;
        for (size_t d = 0; d < D; d++) {
            double t = x[d] - mu;
            ss += t * t;
        }
        float is = (float)(1.0 / sqrt(ss / (double)D + NN_NORM_EPS));
        float m = (float)mu;
        mean[r] = m;
        rstd[r] = is;
        for (size_t d = 0; d < D; d++)
            y[d] = (x[d] - m) * is * gamma[d] + beta[d];
    }
}

/* Forward: y = gamma * xhat + beta, xhat = (x - mean) * rstd over the row's D values.
 * Backward: dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dy * gamma. */
void nn_layernorm_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                           const float *in, const float *mean, const float *rstd,
                           const float *gamma, size_t R, size_t D)
{
    for (size_t r = 0; r < R; r++) {
        const float *x = in + r * D, *dy = dout + r * D;
        const float mu = mean[r], is = rstd[r];
        double a = 0.0, b = 0.0;
        for (size_t d = 0; d < D; d++) {
            float xh = (x[d] - mu) * is;
            float dxh = dy[d] * gamma[d];
            dgamma[d] += dy[d] * xh;
            dbeta[d] += dy[d];
            a += dxh;
            b += (double)dxh * xh;
        }
        if (!din)
            continue;
        float ma = (float)(a / (double)D), mb = (float)(b / (double)D);
        float *dx = din + r * D;
        for (size_t d = 0; d < D; d++) {
            float xh = (x[d] - mu) * is;
            dx[d] += is * (dy[d] * gamma[d] - ma - xh * mb);
        }
    }
}

/* norm.c - batch norm and layer norm.
 *
 * Work splits over independent units, so a pool (base/parallel.h) gives the
 * same bits as a serial run: batch norm over channels (blocks of BN_BLOCK
 * channels when the layout is row-major (B, C), i.e. HW == 1), layer norm over
 * rows. Batch-norm statistics of channel-major layouts accumulate in double.
 * With collectives current (base/dist.h), training-mode batch norm takes its
 * statistics over the global batch instead (bn_dist_*, below): the same two
 * passes, each rank's double sums combined between them.
 */
#include "nn/norm.h"

#include <math.h>
#include <string.h>

#include "base/dist.h"
#include "base/parallel.h"

/* Channels per task in the row-major (HW == 1) layout: the block's accumulators
 * stay in L1 while rows stream through. */
#define BN_BLOCK 512

struct bn {
    float *out, *relu, *din, *dgamma, *dbeta;
    float *mean, *invstd, *running_mean, *running_var;
    const float *in, *dout, *gamma, *beta, *cmean, *cinvstd;
    size_t B, C, HW;
    int ranks; /* bn_dist_*: the batch is this many ranks' B each; 0 otherwise */
};

/* Batch statistics of channel c from its sum and sum of squared deviations. */
static void bn_stats(const struct bn *p, size_t c, double mu, double ss)
{
    const double M = (double)(p->B * p->HW) * (p->ranks ? p->ranks : 1), var = ss / M;
    p->mean[c] = (float)mu;
    p->invstd[c] = (float)(1.0 / sqrt(var + NN_NORM_EPS));
    if (p->running_mean) {
        double unbiased = M > 1 ? ss / (M - 1) : var;
        p->running_mean[c] =
            (1.0f - NN_BN_MOMENTUM) * p->running_mean[c] + NN_BN_MOMENTUM * (float)mu;
        p->running_var[c] =
            (1.0f - NN_BN_MOMENTUM) * p->running_var[c] + NN_BN_MOMENTUM * (float)unbiased;
    }
}

/* HW == 1: channels [b0, b1) blocks of the (B, C) matrix, walked row by row. */
static void bn_rows_fwd(void *ctx, size_t b0, size_t b1)
{
    const struct bn *p = ctx;
    const size_t B = p->B, C = p->C;
    for (size_t blk = b0; blk < b1; blk++) {
        const size_t c0 = blk * BN_BLOCK, nc = C - c0 < BN_BLOCK ? C - c0 : BN_BLOCK;
        double s[BN_BLOCK] = {0}, ss[BN_BLOCK] = {0};
        for (size_t b = 0; b < B; b++) {
            const float *x = p->in + b * C + c0;
            for (size_t c = 0; c < nc; c++)
                s[c] += x[c];
        }
        for (size_t c = 0; c < nc; c++)
            s[c] /= (double)B;
        for (size_t b = 0; b < B; b++) {
            const float *x = p->in + b * C + c0;
            for (size_t c = 0; c < nc; c++) {
                double d = x[c] - s[c];
                ss[c] += d * d;
            }
        }
        float g[BN_BLOCK], sh[BN_BLOCK];
        for (size_t c = 0; c < nc; c++) {
            bn_stats(p, c0 + c, s[c], ss[c]);
            g[c] = p->gamma[c0 + c] * p->invstd[c0 + c];
            sh[c] = p->beta[c0 + c] - p->mean[c0 + c] * g[c];
        }
        for (size_t b = 0; b < B; b++) {
            const float *x = p->in + b * C + c0;
            float *y = p->out + b * C + c0;
            for (size_t c = 0; c < nc; c++)
                y[c] = x[c] * g[c] + sh[c];
            if (p->relu) {
                float *r = p->relu + b * C + c0;
                for (size_t c = 0; c < nc; c++)
                    r[c] = y[c] > 0.0f ? y[c] : 0.0f;
            }
        }
    }
}

/* HW > 1: channels [c0, c1), each a strided set of B contiguous planes. */
static void bn_chan_fwd(void *ctx, size_t c0, size_t c1)
{
    const struct bn *p = ctx;
    const size_t B = p->B, C = p->C, HW = p->HW;
    for (size_t c = c0; c < c1; c++) {
        double s = 0.0, ss = 0.0;
        for (size_t b = 0; b < B; b++) {
            const float *x = p->in + (b * C + c) * HW;
            for (size_t i = 0; i < HW; i++)
                s += x[i];
        }
        double mu = s / (double)(B * HW);
        for (size_t b = 0; b < B; b++) {
            const float *x = p->in + (b * C + c) * HW;
            for (size_t i = 0; i < HW; i++) {
                double d = x[i] - mu;
                ss += d * d;
            }
        }
        bn_stats(p, c, mu, ss);
        float g = p->gamma[c] * p->invstd[c], sh = p->beta[c] - p->mean[c] * g;
        for (size_t b = 0; b < B; b++) {
            const float *x = p->in + (b * C + c) * HW;
            float *y = p->out + (b * C + c) * HW;
            for (size_t i = 0; i < HW; i++)
                y[i] = x[i] * g + sh;
            if (p->relu) {
                float *r = p->relu + (b * C + c) * HW;
                for (size_t i = 0; i < HW; i++)
                    r[i] = y[i] > 0.0f ? y[i] : 0.0f;
            }
        }
    }
}

/* ---- batch norm over a global batch (base/dist.h) -------------------------------------
 * Each rank holds B of the ranks * B samples. Forward: local double sums of x and x^2
 * per channel, combined in one call -> global mean and the sum of squared deviations
 * sum x^2 - M mean^2 (M = ranks * B * HW; in double, the cancellation costs about
 * 1e-16 * mean^2 / var, far below float resolution for activations); then the usual
 * affine map. One call instead of two passes' two: each call is a point where the
 * ranks wait for each other. Backward:
 * dgamma and dbeta take this rank's sums (the trainer sums gradients across ranks
 * afterwards); dx needs the global sums of dy and dy * xhat, combined first.
 * Channels go in chunks of BN_DIST_CHUNK so the sums live on the stack; work
 * splits over channels (HW > 1) or BN_BLOCK-channel blocks (HW == 1) as above. */
#define BN_DIST_CHUNK 1024

struct bnd {
    const struct bn *p;
    size_t c0, nc; /* the chunk's channels [c0, c0 + nc) */
    int phase;     /* forward: 0 sums of x and x^2, 2 normalise;
                      backward: 0 sums of dy and dy * xhat, 1 dx */
    double *s, *ss; /* (nc) */
};

/* Channels [lo, hi) of the chunk's work unit k. */
static void bnd_unit(const struct bnd *j, size_t k, size_t *lo, size_t *hi)
{
    if (j->p->HW == 1) {
        *lo = j->c0 + k * BN_BLOCK;
        *hi = *lo + BN_BLOCK < j->c0 + j->nc ? *lo + BN_BLOCK : j->c0 + j->nc;
    } else {
        *lo = j->c0 + k;
        *hi = *lo + 1;
    }
}

static size_t bnd_units(const struct bnd *j)
{
    return j->p->HW == 1 ? (j->nc + BN_BLOCK - 1) / BN_BLOCK : j->nc;
}

/* Visits every sample of channels [lo, hi): row-major walks rows then channels,
 * channel-major walks each channel's planes. */
#define BND_FOR(p, lo, hi, c, off, ...)                                                    \
    do {                                                                                    \
        if ((p)->HW == 1) {                                                                 \
            for (size_t b_ = 0; b_ < (p)->B; b_++)                                          \
                for (size_t c = (lo); c < (hi); c++) {                                      \
                    const size_t off = b_ * (p)->C + c;                                     \
                    __VA_ARGS__;                                                            \
                }                                                                           \
        } else {                                                                            \
            for (size_t c = (lo); c < (hi); c++)                                            \
                for (size_t b_ = 0; b_ < (p)->B; b_++)                                      \
                    for (size_t i_ = 0; i_ < (p)->HW; i_++) {                               \
                        const size_t off = (b_ * (p)->C + c) * (p)->HW + i_;                \
                        __VA_ARGS__;                                                        \
                    }                                                                       \
        }                                                                                   \
    } while (0)

static void bnd_fwd(void *ctx, size_t k0, size_t k1)
{
    const struct bnd *j = ctx;
    const struct bn *p = j->p;
    for (size_t k = k0; k < k1; k++) {
        size_t lo, hi;
        bnd_unit(j, k, &lo, &hi);
        if (j->phase == 0) {
            for (size_t c = lo; c < hi; c++)
                j->s[c - j->c0] = j->ss[c - j->c0] = 0.0;
            BND_FOR(p, lo, hi, c, off, {
                double x = p->in[off];
                j->s[c - j->c0] += x;
                j->ss[c - j->c0] += x * x;
            });
        } else {
            BND_FOR(p, lo, hi, c, off, {
                float g = p->gamma[c] * p->invstd[c], sh = p->beta[c] - p->mean[c] * g;
                float y = p->in[off] * g + sh;
                p->out[off] = y;
                if (p->relu)
                    p->relu[off] = y > 0.0f ? y : 0.0f;
            });
        }
    }
}

static void bn_dist_forward(struct bn *p, const struct dim_dist *d)
{
    double s[2 * BN_DIST_CHUNK];
    const double M = (double)(p->B * p->HW) * d->size;
    p->ranks = d->size;
    for (size_t c0 = 0; c0 < p->C; c0 += BN_DIST_CHUNK) {
        const size_t nc = p->C - c0 < BN_DIST_CHUNK ? p->C - c0 : BN_DIST_CHUNK;
        struct bnd j = {.p = p, .c0 = c0, .nc = nc, .s = s, .ss = s + nc};
        dim_parallel_for(bnd_units(&j), 1, bnd_fwd, &j);
        d->sum_f64(d->ctx, s, 2 * nc);
        for (size_t c = 0; c < nc; c++) {
            double mu = s[c] / M, ss = s[nc + c] - M * mu * mu;
            bn_stats(p, c0 + c, mu, ss > 0.0 ? ss : 0.0);
        }
        j.phase = 2;
        dim_parallel_for(bnd_units(&j), 1, bnd_fwd, &j);
    }
}

/* dy masked by the following ReLU, when there is one */
static inline float bnd_dy(const struct bn *p, size_t off)
{
    return p->relu ? p->dout[off] * (float)(p->relu[off] > 0.0f) : p->dout[off];
}

static void bnd_bwd(void *ctx, size_t k0, size_t k1)
{
    const struct bnd *j = ctx;
    const struct bn *p = j->p;
    const double M = (double)(p->B * p->HW) * p->ranks;
    for (size_t k = k0; k < k1; k++) {
        size_t lo, hi;
        bnd_unit(j, k, &lo, &hi);
        if (j->phase == 0) {
            for (size_t c = lo; c < hi; c++)
                j->s[c - j->c0] = j->ss[c - j->c0] = 0.0;
            BND_FOR(p, lo, hi, c, off, {
                float dy = bnd_dy(p, off);
                j->s[c - j->c0] += dy;
                j->ss[c - j->c0] += (double)dy * (p->in[off] - p->cmean[c]) * p->cinvstd[c];
            });
        } else {
            BND_FOR(p, lo, hi, c, off, {
                const float k_ = p->gamma[c] * p->cinvstd[c];
                const float a = (float)(j->s[c - j->c0] / M), bc = (float)(j->ss[c - j->c0] / M);
                float xh = (p->in[off] - p->cmean[c]) * p->cinvstd[c];
                p->din[off] += k_ * (bnd_dy(p, off) - a - xh * bc);
            });
        }
    }
}

static void bn_dist_backward(struct bn *p, const struct dim_dist *d)
{
    double s[2 * BN_DIST_CHUNK];
    p->ranks = d->size;
    for (size_t c0 = 0; c0 < p->C; c0 += BN_DIST_CHUNK) {
        const size_t nc = p->C - c0 < BN_DIST_CHUNK ? p->C - c0 : BN_DIST_CHUNK;
        struct bnd j = {.p = p, .c0 = c0, .nc = nc, .s = s, .ss = s + nc};
        dim_parallel_for(bnd_units(&j), 1, bnd_bwd, &j);
        for (size_t c = 0; c < nc; c++) { /* this rank's share; gradients are summed later */
            p->dbeta[c0 + c] += (float)s[c];
            p->dgamma[c0 + c] += (float)s[nc + c];
        }
        if (!p->din)
            continue;
        d->sum_f64(d->ctx, s, 2 * nc);
        j.phase = 1;
        dim_parallel_for(bnd_units(&j), 1, bnd_bwd, &j);
    }
}

void nn_batchnorm_forward_train(float *out, float *mean, float *invstd, const float *in,
                                const float *gamma, const float *beta, float *running_mean,
                                float *running_var, size_t B, size_t C, size_t HW)
{
    nn_batchnorm_relu_forward_train(out, NULL, mean, invstd, in, gamma, beta, running_mean,
                                    running_var, B, C, HW);
}

void nn_batchnorm_relu_forward_train(float *out, float *relu, float *mean, float *invstd,
                                     const float *in, const float *gamma, const float *beta,
                                     float *running_mean, float *running_var, size_t B, size_t C,
                                     size_t HW)
{
    struct bn p = {.out = out, .relu = relu, .mean = mean, .invstd = invstd, .running_mean = running_mean,
                   .running_var = running_var, .in = in, .gamma = gamma, .beta = beta,
                   .B = B, .C = C, .HW = HW};
    const struct dim_dist *d = dim_dist_current();
    if (d)
        bn_dist_forward(&p, d);
    else if (HW == 1)
        dim_parallel_for((C + BN_BLOCK - 1) / BN_BLOCK, 1, bn_rows_fwd, &p);
    else
        dim_parallel_for(C, 1, bn_chan_fwd, &p);
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

/* dy masked by the ReLU that follows (relu NULL: no mask) into d[0..n) */
static inline void masked_dy(float *restrict d, const float *restrict dy,
                             const float *restrict relu, size_t n)
{
    if (relu)
        for (size_t i = 0; i < n; i++)
            d[i] = dy[i] * (float)(relu[i] > 0.0f);
    else
        memcpy(d, dy, sizeof(float) * n);
}

/* Forward: y = gamma * xhat + beta, xhat = (x - mean) * invstd over M = B*HW samples.
 * Backward: dx = invstd / M * (M * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat)),
 * dxhat = dy * gamma; dgamma = sum(dy * xhat), dbeta = sum(dy). */
static void bn_rows_bwd(void *ctx, size_t b0, size_t b1)
{
    const struct bn *p = ctx;
    const size_t B = p->B, C = p->C;
    for (size_t blk = b0; blk < b1; blk++) {
        const size_t c0 = blk * BN_BLOCK, nc = C - c0 < BN_BLOCK ? C - c0 : BN_BLOCK;
        const float *mu = p->cmean + c0, *is = p->cinvstd + c0;
        float sdy[BN_BLOCK] = {0}, sdyx[BN_BLOCK] = {0}, d[BN_BLOCK];
        for (size_t b = 0; b < B; b++) {
            const float *x = p->in + b * C + c0;
            masked_dy(d, p->dout + b * C + c0, p->relu ? p->relu + b * C + c0 : NULL, nc);
            for (size_t c = 0; c < nc; c++) {
                sdy[c] += d[c];
                sdyx[c] += d[c] * (x[c] - mu[c]) * is[c];
            }
        }
        float k[BN_BLOCK], a[BN_BLOCK], bc[BN_BLOCK];
        for (size_t c = 0; c < nc; c++) {
            p->dgamma[c0 + c] += sdyx[c];
            p->dbeta[c0 + c] += sdy[c];
            k[c] = p->gamma[c0 + c] * is[c];
            a[c] = sdy[c] / (float)B;
            bc[c] = sdyx[c] / (float)B;
        }
        if (!p->din)
            continue;
        for (size_t b = 0; b < B; b++) {
            const float *x = p->in + b * C + c0;
            float *dx = p->din + b * C + c0;
            masked_dy(d, p->dout + b * C + c0, p->relu ? p->relu + b * C + c0 : NULL, nc);
            for (size_t c = 0; c < nc; c++) {
                float xh = (x[c] - mu[c]) * is[c];
                dx[c] += k[c] * (d[c] - a[c] - xh * bc[c]);
            }
        }
    }
}

/* Plane pieces of at most this many values are masked at a time. */
#define BN_PIECE 256

static void bn_chan_bwd(void *ctx, size_t c0, size_t c1)
{
    const struct bn *p = ctx;
    const size_t B = p->B, C = p->C, HW = p->HW;
    const double M = (double)(B * HW);
    float d[BN_PIECE];
    for (size_t c = c0; c < c1; c++) {
        double sdy = 0.0, sdyx = 0.0;
        const float mu = p->cmean[c], is = p->cinvstd[c];
        for (size_t b = 0; b < B; b++)
            for (size_t i0 = 0; i0 < HW; i0 += BN_PIECE) {
                const size_t off = (b * C + c) * HW + i0, n = HW - i0 < BN_PIECE ? HW - i0 : BN_PIECE;
                const float *x = p->in + off;
                masked_dy(d, p->dout + off, p->relu ? p->relu + off : NULL, n);
                for (size_t i = 0; i < n; i++) {
                    sdy += d[i];
                    sdyx += (double)d[i] * (x[i] - mu) * is;
                }
            }
        p->dgamma[c] += (float)sdyx;
        p->dbeta[c] += (float)sdy;
        if (!p->din)
            continue;
        const float k = p->gamma[c] * is;
        const float a = (float)(sdy / M), bcoef = (float)(sdyx / M);
        for (size_t b = 0; b < B; b++)
            for (size_t i0 = 0; i0 < HW; i0 += BN_PIECE) {
                const size_t off = (b * C + c) * HW + i0, n = HW - i0 < BN_PIECE ? HW - i0 : BN_PIECE;
                const float *x = p->in + off;
                float *dx = p->din + off;
                masked_dy(d, p->dout + off, p->relu ? p->relu + off : NULL, n);
                for (size_t i = 0; i < n; i++) {
                    float xh = (x[i] - mu) * is;
                    dx[i] += k * (d[i] - a - xh * bcoef);
                }
            }
    }
}

void nn_batchnorm_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                           const float *in, const float *mean, const float *invstd,
                           const float *gamma, size_t B, size_t C, size_t HW)
{
    nn_batchnorm_relu_backward(din, dgamma, dbeta, dout, NULL, in, mean, invstd, gamma, B, C, HW);
}

void nn_batchnorm_relu_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                                const float *relu, const float *in, const float *mean,
                                const float *invstd, const float *gamma, size_t B, size_t C,
                                size_t HW)
{
    struct bn p = {.din = din, .relu = (float *)relu, .dgamma = dgamma, .dbeta = dbeta, .in = in, .dout = dout,
                   .gamma = gamma, .cmean = mean, .cinvstd = invstd, .B = B, .C = C, .HW = HW};
    const struct dim_dist *d = dim_dist_current();
    if (d)
        bn_dist_backward(&p, d);
    else if (HW == 1)
        dim_parallel_for((C + BN_BLOCK - 1) / BN_BLOCK, 1, bn_rows_bwd, &p);
    else
        dim_parallel_for(C, 1, bn_chan_bwd, &p);
}

struct ln {
    float *out, *din, *dgamma, *dbeta, *mean, *rstd;
    const float *in, *dout, *gamma, *beta, *cmean, *crstd;
    size_t R, D;
};

static void ln_fwd(void *ctx, size_t r0, size_t r1)
{
    const struct ln *p = ctx;
    const size_t D = p->D;
    for (size_t r = r0; r < r1; r++) {
        const float *x = p->in + r * D;
        float *y = p->out + r * D;
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
        p->mean[r] = m;
        p->rstd[r] = is;
        for (size_t d = 0; d < D; d++)
            y[d] = (x[d] - m) * is * p->gamma[d] + p->beta[d];
    }
}

void nn_layernorm_forward(float *out, float *mean, float *rstd, const float *in,
                          const float *gamma, const float *beta, size_t R, size_t D)
{
    struct ln p = {.out = out, .mean = mean, .rstd = rstd, .in = in, .gamma = gamma,
                   .beta = beta, .D = D};
    dim_parallel_for(R, 16, ln_fwd, &p);
}

/* Forward: y = gamma * xhat + beta, xhat = (x - mean) * rstd over the row's D values.
 * Backward: dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dy * gamma. */
static void ln_bwd_dx(void *ctx, size_t r0, size_t r1)
{
    const struct ln *p = ctx;
    const size_t D = p->D;
    for (size_t r = r0; r < r1; r++) {
        const float *x = p->in + r * D, *dy = p->dout + r * D;
        const float mu = p->cmean[r], is = p->crstd[r];
        double a = 0.0, b = 0.0;
        for (size_t d = 0; d < D; d++) {
            float xh = (x[d] - mu) * is;
            float dxh = dy[d] * p->gamma[d];
            a += dxh;
            b += (double)dxh * xh;
        }
        float ma = (float)(a / (double)D), mb = (float)(b / (double)D);
        float *dx = p->din + r * D;
        for (size_t d = 0; d < D; d++) {
            float xh = (x[d] - mu) * is;
            dx[d] += is * (dy[d] * p->gamma[d] - ma - xh * mb);
        }
    }
}

/* Parameter gradients for columns [blk0, blk1) blocks: sums over rows per column. */
static void ln_bwd_params(void *ctx, size_t blk0, size_t blk1)
{
    const struct ln *p = ctx;
    const size_t D = p->D;
    for (size_t blk = blk0; blk < blk1; blk++) {
        const size_t d0 = blk * BN_BLOCK, nd = D - d0 < BN_BLOCK ? D - d0 : BN_BLOCK;
        for (size_t r = 0; r < p->R; r++) {
            const float *x = p->in + r * D + d0, *dy = p->dout + r * D + d0;
            const float mu = p->cmean[r], is = p->crstd[r];
            for (size_t d = 0; d < nd; d++) {
                p->dgamma[d0 + d] += dy[d] * (x[d] - mu) * is;
                p->dbeta[d0 + d] += dy[d];
            }
        }
    }
}

void nn_layernorm_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                           const float *in, const float *mean, const float *rstd,
                           const float *gamma, size_t R, size_t D)
{
    struct ln p = {.din = din, .dgamma = dgamma, .dbeta = dbeta, .in = in, .dout = dout,
                   .gamma = gamma, .cmean = mean, .crstd = rstd, .R = R, .D = D};
    dim_parallel_for((D + BN_BLOCK - 1) / BN_BLOCK, 1, ln_bwd_params, &p);
    if (din)
        dim_parallel_for(R, 16, ln_bwd_dx, &p);
}

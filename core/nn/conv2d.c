/* conv2d.c - im2col convolution over the whole batch.
 *
 * Layout trick: the column matrix holds every image side by side,
 * col (C*k*k, B*OH*OW), so one GEMM per direction covers the batch:
 *   forward   T (OC, B*OHW) = W (OC, CKK) x col;  out = permute(T) + b
 *   backward  T = permute(dout);  dW += T x col^T;  dcol = W^T x T;  din += col2im(dcol)
 */
#include "nn/conv2d.h"

#include <string.h>

#include "base/blas.h"
#include "base/parallel.h"

int nn_conv2d_init(struct nn_conv2d *cv, int C, int H, int W, int OC, int k, int s, int p)
{
    cv->C = C;
    cv->H = H;
    cv->W = W;
    cv->OC = OC;
    cv->k = k;
    cv->s = s;
    cv->p = p;
    cv->OH = cv->OW = 0;
    /* validate before dividing: s == 0 would trap */
    if (!(C > 0 && OC > 0 && k > 0 && s > 0 && p >= 0 && H + 2 * p >= k && W + 2 * p >= k))
        return -1;
    cv->OH = (H + 2 * p - k) / s + 1;
    cv->OW = (W + 2 * p - k) / s + 1;
    return 0;
}

size_t nn_conv2d_col_floats(const struct nn_conv2d *cv, size_t B)
{
    return (size_t)cv->C * cv->k * cv->k * B * cv->OH * cv->OW;
}

size_t nn_conv2d_scratch_floats(const struct nn_conv2d *cv, size_t B)
{
    /* forward: T; backward: T and dcol together */
    return (size_t)cv->OC * B * cv->OH * cv->OW + nn_conv2d_col_floats(cv, B);
}

struct conv_job {
    float *dst;
    const float *src;
    const float *bias;
    const struct nn_conv2d *cv;
    size_t B;
};

/* Output columns ow whose input column ow*s - p + kj lies in [0, W): [*lo, *hi). */
static void valid_cols(const struct nn_conv2d *cv, int kj, int *lo, int *hi)
{
    int off = kj - cv->p; /* iw = ow * s + off */
    int a = off >= 0 ? 0 : (-off + cv->s - 1) / cv->s;
    int b = cv->W - off <= 0 ? 0 : (cv->W - off + cv->s - 1) / cv->s;
    *lo = a < cv->OW ? a : cv->OW;
    *hi = b < cv->OW ? b : cv->OW;
    if (*hi < *lo)
        *hi = *lo;
}

/* col[(c*k + ki)*k + kj][b*OHW + oh*OW + ow] = in[b][c][oh*s - p + ki][ow*s - p + kj] or 0,
 * for column-matrix rows [r0, r1). */
static void im2col_rows(void *ctx, size_t r0, size_t r1)
{
    const struct conv_job *j = ctx;
    const struct nn_conv2d *cv = j->cv;
    const size_t ohw = (size_t)cv->OH * cv->OW, ncols = j->B * ohw, kk = (size_t)cv->k * cv->k;
    for (size_t r = r0; r < r1; r++) {
        const int c = (int)(r / kk), ki = (int)(r % kk) / cv->k, kj = (int)(r % kk) % cv->k;
        const int s = cv->s, off = kj - cv->p;
        int lo, hi;
        valid_cols(cv, kj, &lo, &hi);
        float *row = j->dst + r * ncols;
        for (size_t b = 0; b < j->B; b++) {
            const float *src = j->src + (b * cv->C + c) * (size_t)cv->H * cv->W;
            float *dst = row + b * ohw;
            for (int oh = 0; oh < cv->OH; oh++) {
                int ih = oh * s - cv->p + ki;
                float *d = dst + (size_t)oh * cv->OW;
                if (ih < 0 || ih >= cv->H) {
                    memset(d, 0, sizeof(float) * cv->OW);
                    continue;
                }
                const float *srow = src + (size_t)ih * cv->W;
                for (int ow = 0; ow < lo; ow++)
                    d[ow] = 0.0f;
                for (int ow = lo; ow < hi; ow++)
                    d[ow] = srow[ow * s + off];
                for (int ow = hi; ow < cv->OW; ow++)
                    d[ow] = 0.0f;
            }
        }
    }
}

/* din[b][c][ih][iw] += sum of the col entries that im2col copied from it, for images
 * [b0, b1) (each image's gradient is written by one task only). */
static void col2im_images(void *ctx, size_t b0, size_t b1)
{
    const struct conv_job *j = ctx;
    const struct nn_conv2d *cv = j->cv;
    const size_t ohw = (size_t)cv->OH * cv->OW, ncols = j->B * ohw;
    for (size_t b = b0; b < b1; b++)
        for (int c = 0; c < cv->C; c++) {
            float *dst = j->dst + (b * cv->C + c) * (size_t)cv->H * cv->W;
            for (int ki = 0; ki < cv->k; ki++)
                for (int kj = 0; kj < cv->k; kj++) {
                    const float *src =
                        j->src + ((size_t)(c * cv->k + ki) * cv->k + kj) * ncols + b * ohw;
                    const int st = cv->s, off = kj - cv->p;
                    int lo, hi;
                    valid_cols(cv, kj, &lo, &hi);
                    for (int oh = 0; oh < cv->OH; oh++) {
                        int ih = oh * st - cv->p + ki;
                        if (ih < 0 || ih >= cv->H)
                            continue;
                        float *drow = dst + (size_t)ih * cv->W;
                        const float *sv = src + (size_t)oh * cv->OW;
                        for (int ow = lo; ow < hi; ow++)
                            drow[ow * st + off] += sv[ow];
                    }
                }
        }
}

/* out[n][oc][:] = T[oc][n*OHW + :] + bias[oc], images [n0, n1) */
static void unpermute_images(void *ctx, size_t n0, size_t n1)
{
    const struct conv_job *j = ctx;
    const struct nn_conv2d *cv = j->cv;
    const size_t ohw = (size_t)cv->OH * cv->OW, ncols = j->B * ohw;
    for (size_t n = n0; n < n1; n++)
        for (int oc = 0; oc < cv->OC; oc++) {
            float *o = j->dst + (n * cv->OC + oc) * ohw;
            const float *t = j->src + (size_t)oc * ncols + n * ohw;
            float bias = j->bias ? j->bias[oc] : 0.0f;
            for (size_t i = 0; i < ohw; i++)
                o[i] = t[i] + bias;
        }
}

/* T[oc][n*OHW + :] = dout[n][oc][:], images [n0, n1) */
static void permute_images(void *ctx, size_t n0, size_t n1)
{
    const struct conv_job *j = ctx;
    const struct nn_conv2d *cv = j->cv;
    const size_t ohw = (size_t)cv->OH * cv->OW, ncols = j->B * ohw;
    for (size_t n = n0; n < n1; n++)
        for (int oc = 0; oc < cv->OC; oc++)
            memcpy(j->dst + (size_t)oc * ncols + n * ohw, j->src + (n * cv->OC + oc) * ohw,
                   sizeof(float) * ohw);
}

void nn_conv2d_forward(float *out, float *col, float *scratch, const float *in, const float *w,
                       const float *b, const struct nn_conv2d *cv, size_t B)
{
    const size_t ohw = (size_t)cv->OH * cv->OW, ncols = B * ohw;
    const size_t ckk = (size_t)cv->C * cv->k * cv->k;
    struct conv_job j = {col, in, NULL, cv, B};
    dim_parallel_for(ckk, 2, im2col_rows, &j);
    float *T = scratch; /* (OC, B*OHW) */
    nn_sgemm(false, false, (size_t)cv->OC, ncols, ckk, 1.0f, w, ckk, col, ncols, 0.0f, T, ncols);
    struct conv_job u = {out, T, b, cv, B};
    dim_parallel_for(B, 2, unpermute_images, &u);
}

void nn_conv2d_backward(float *din, float *dw, float *db, float *scratch, const float *dout,
                        const float *col, const float *w, const struct nn_conv2d *cv, size_t B)
{
    const size_t ohw = (size_t)cv->OH * cv->OW, ncols = B * ohw;
    const size_t ckk = (size_t)cv->C * cv->k * cv->k;
    float *T = scratch;                         /* (OC, B*OHW) */
    float *dcol = scratch + (size_t)cv->OC * ncols; /* (CKK, B*OHW) */
    struct conv_job pj = {T, dout, NULL, cv, B};
    dim_parallel_for(B, 2, permute_images, &pj);
    if (db)
        for (int oc = 0; oc < cv->OC; oc++) {
            const float *t = T + (size_t)oc * ncols;
            double s = 0.0;
            for (size_t i = 0; i < ncols; i++)
                s += t[i];
            db[oc] += (float)s;
        }
    /* dW (OC, CKK) += T (OC, ncols) x col^T (ncols, CKK) */
    nn_sgemm(false, true, (size_t)cv->OC, ckk, ncols, 1.0f, T, ncols, col, ncols, 1.0f, dw, ckk);
    if (din) {
        /* dcol (CKK, ncols) = W^T (CKK, OC) x T (OC, ncols) */
        nn_sgemm(true, false, ckk, ncols, (size_t)cv->OC, 1.0f, w, ckk, T, ncols, 0.0f, dcol,
                 ncols);
        struct conv_job cj = {din, dcol, NULL, cv, B};
        dim_parallel_for(B, 2, col2im_images, &cj);
    }
}

void nn_conv2d_forward_naive(float *out, const float *in, const float *w, const float *b,
                             const struct nn_conv2d *cv, size_t B)
{
    for (size_t n = 0; n < B; n++)
        for (int oc = 0; oc < cv->OC; oc++)
            for (int oh = 0; oh < cv->OH; oh++)
                for (int ow = 0; ow < cv->OW; ow++) {
                    double acc = b ? b[oc] : 0.0;
                    for (int c = 0; c < cv->C; c++)
                        for (int ki = 0; ki < cv->k; ki++)
                            for (int kj = 0; kj < cv->k; kj++) {
                                int ih = oh * cv->s - cv->p + ki, iw = ow * cv->s - cv->p + kj;
                                if (ih < 0 || ih >= cv->H || iw < 0 || iw >= cv->W)
                                    continue;
                                acc += (double)in[((n * cv->C + c) * cv->H + ih) * cv->W + iw] *
                                       w[((size_t)(oc * cv->C + c) * cv->k + ki) * cv->k + kj];
                            }
                    out[((n * cv->OC + oc) * cv->OH + oh) * cv->OW + ow] = (float)acc;
                }
}

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

/* col[(c*k + ki)*k + kj][b*OHW + oh*OW + ow] = in[b][c][oh*s - p + ki][ow*s - p + kj] or 0 */
static void im2col(float *col, const float *in, const struct nn_conv2d *cv, size_t B)
{
    const size_t ohw = (size_t)cv->OH * cv->OW, ncols = B * ohw;
    for (int c = 0; c < cv->C; c++)
        for (int ki = 0; ki < cv->k; ki++)
            for (int kj = 0; kj < cv->k; kj++) {
                float *row = col + ((size_t)(c * cv->k + ki) * cv->k + kj) * ncols;
                for (size_t b = 0; b < B; b++) {
                    const float *src = in + (b * cv->C + c) * (size_t)cv->H * cv->W;
                    float *dst = row + b * ohw;
                    for (int oh = 0; oh < cv->OH; oh++) {
                        int ih = oh * cv->s - cv->p + ki;
                        float *d = dst + (size_t)oh * cv->OW;
                        if (ih < 0 || ih >= cv->H) {
                            memset(d, 0, sizeof(float) * cv->OW);
                            continue;
                        }
                        const float *srow = src + (size_t)ih * cv->W;
                        for (int ow = 0; ow < cv->OW; ow++) {
                            int iw = ow * cv->s - cv->p + kj;
                            d[ow] = (iw >= 0 && iw < cv->W) ? srow[iw] : 0.0f;
                        }
                    }
                }
            }
}

/* din[b][c][ih][iw] += sum of the col entries that im2col copied from it */
static void col2im_add(float *din, const float *col, const struct nn_conv2d *cv, size_t B)
{
    const size_t ohw = (size_t)cv->OH * cv->OW, ncols = B * ohw;
    for (int c = 0; c < cv->C; c++)
        for (int ki = 0; ki < cv->k; ki++)
            for (int kj = 0; kj < cv->k; kj++) {
                const float *row = col + ((size_t)(c * cv->k + ki) * cv->k + kj) * ncols;
                for (size_t b = 0; b < B; b++) {
                    float *dst = din + (b * cv->C + c) * (size_t)cv->H * cv->W;
                    const float *src = row + b * ohw;
                    for (int oh = 0; oh < cv->OH; oh++) {
                        int ih = oh * cv->s - cv->p + ki;
                        if (ih < 0 || ih >= cv->H)
                            continue;
                        float *drow = dst + (size_t)ih * cv->W;
                        const float *s = src + (size_t)oh * cv->OW;
                        for (int ow = 0; ow < cv->OW; ow++) {
                            int iw = ow * cv->s - cv->p + kj;
                            if (iw >= 0 && iw < cv->W)
                                drow[iw] += s[ow];
                        }
                    }
                }
            }
}

void nn_conv2d_forward(float *out, float *col, float *scratch, const float *in, const float *w,
                       const float *b, const struct nn_conv2d *cv, size_t B)
{
    const size_t ohw = (size_t)cv->OH * cv->OW, ncols = B * ohw;
    const size_t ckk = (size_t)cv->C * cv->k * cv->k;
    im2col(col, in, cv, B);
    float *T = scratch; /* (OC, B*OHW) */
    nn_sgemm(false, false, (size_t)cv->OC, ncols, ckk, 1.0f, w, ckk, col, ncols, 0.0f, T, ncols);
    for (size_t n = 0; n < B; n++)
        for (int oc = 0; oc < cv->OC; oc++) {
            float *o = out + (n * cv->OC + oc) * ohw;
            const float *t = T + (size_t)oc * ncols + n * ohw;
            float bias = b ? b[oc] : 0.0f;
            for (size_t i = 0; i < ohw; i++)
                o[i] = t[i] + bias;
        }
}

void nn_conv2d_backward(float *din, float *dw, float *db, float *scratch, const float *dout,
                        const float *col, const float *w, const struct nn_conv2d *cv, size_t B)
{
    const size_t ohw = (size_t)cv->OH * cv->OW, ncols = B * ohw;
    const size_t ckk = (size_t)cv->C * cv->k * cv->k;
    float *T = scratch;                         /* (OC, B*OHW) */
    float *dcol = scratch + (size_t)cv->OC * ncols; /* (CKK, B*OHW) */
    for (size_t n = 0; n < B; n++)
        for (int oc = 0; oc < cv->OC; oc++)
            memcpy(T + (size_t)oc * ncols + n * ohw, dout + (n * cv->OC + oc) * ohw,
                   sizeof(float) * ohw);
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
        col2im_add(din, dcol, cv, B);
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

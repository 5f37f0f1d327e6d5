/* ssim.c - SSIM and MS-SSIM (see ssim.h). */
#include "eval/ssim.h"

#include <math.h>
#include <stdlib.h>

static const double ms_weights[DIM_MSSSIM_MAX_SCALES] = {0.0448, 0.2856, 0.3001, 0.2363, 0.1333};

int dim_msssim_scales(int H, int W)
{
    int s = 0;
    while (s < DIM_MSSSIM_MAX_SCALES && H >= DIM_SSIM_WIN && W >= DIM_SSIM_WIN) {
        s++;
        H /= 2;
        W /= 2;
    }
    return s >= 2 ? s : 0;
}

static void gauss(double g[DIM_SSIM_WIN])
{
    double sum = 0.0;
    for (int i = 0; i < DIM_SSIM_WIN; i++) {
        double d = i - (DIM_SSIM_WIN - 1) / 2;
        g[i] = exp(-d * d / (2.0 * DIM_SSIM_SIGMA * DIM_SSIM_SIGMA));
        sum += g[i];
    }
    for (int i = 0; i < DIM_SSIM_WIN; i++)
        g[i] /= sum;
}

/* out (H-10, W-10) = valid separable filter of in (H, W) by g x g; tmp (H, W-10). */
static void filter(double *out, const double *in, int H, int W, double *tmp, const double *g)
{
    const int K = DIM_SSIM_WIN, OH = H - K + 1, OW = W - K + 1;
    for (int r = 0; r < H; r++)
        for (int c = 0; c < OW; c++) {
            double s = 0.0;
            for (int k = 0; k < K; k++)
                s += g[k] * in[r * W + c + k];
            tmp[r * OW + c] = s;
        }
    for (int r = 0; r < OH; r++)
        for (int c = 0; c < OW; c++) {
            double s = 0.0;
            for (int k = 0; k < K; k++)
                s += g[k] * tmp[(r + k) * OW + c];
            out[r * OW + c] = s;
        }
}

/* Mean SSIM and mean CS of one channel x, y (H, W >= 11); ws holds 9 * H * W doubles. */
static void ssim_cs(const double *x, const double *y, int H, int W, const double *g, double *ws,
                    double *ssim, double *cs)
{
    const double C1 = 0.01 * 0.01, C2 = 0.03 * 0.03;
    const size_t n = (size_t)H * W, m = (size_t)(H - DIM_SSIM_WIN + 1) * (W - DIM_SSIM_WIN + 1);
    double *xx = ws, *yy = xx + n, *xy = yy + n, *tmp = xy + n, *f = tmp + n;
    for (size_t i = 0; i < n; i++) {
        xx[i] = x[i] * x[i];
        yy[i] = y[i] * y[i];
        xy[i] = x[i] * y[i];
    }
    double *mx = f, *my = f + n, *ex = f + 2 * n, *ey = f + 3 * n, *exy = f + 4 * n;
    filter(mx, x, H, W, tmp, g);
    filter(my, y, H, W, tmp, g);
    filter(ex, xx, H, W, tmp, g);
    filter(ey, yy, H, W, tmp, g);
    filter(exy, xy, H, W, tmp, g);
    double s = 0.0, c = 0.0;
    for (size_t i = 0; i < m; i++) {
        double vx = ex[i] - mx[i] * mx[i], vy = ey[i] - my[i] * my[i];
        double cov = exy[i] - mx[i] * my[i];
        double l = (2.0 * mx[i] * my[i] + C1) / (mx[i] * mx[i] + my[i] * my[i] + C1);
        double k = (2.0 * cov + C2) / (vx + vy + C2);
        s += l * k;
        c += k;
    }
    *ssim = s / (double)m;
    *cs = c / (double)m;
}

/* 2x2 block average of a (H, W) in place into (H/2, W/2): output k only reads
 * input positions >= k that no earlier output has overwritten. */
static void halve(double *a, int H, int W)
{
    const int H2 = H / 2, W2 = W / 2;
    for (int r = 0; r < H2; r++)
        for (int c = 0; c < W2; c++) {
            const double *p = a + (size_t)(2 * r) * W + 2 * c;
            a[(size_t)r * W2 + c] = 0.25 * (p[0] + p[1] + p[W] + p[W + 1]);
        }
}

int dim_ssim_mean(const float *X, const float *Y, size_t n, int C, int H, int W, double *ssim,
                  double *ms_ssim, int *scales, struct dim_err *err)
{
    *ssim = *ms_ssim = NAN;
    if (scales)
        *scales = 0;
    if (n == 0 || C < 1 || H < 1 || W < 1)
        return dim_fail(err, DIM_EINVAL, "SSIM of %zu images of %dx%dx%d", n, C, H, W);
    if (H < DIM_SSIM_WIN || W < DIM_SSIM_WIN)
        return 0;
    const int S = dim_msssim_scales(H, W);
    const size_t hw = (size_t)H * W;
    double *ws = malloc(sizeof(double) * 11 * hw);
    if (!ws)
        return dim_fail(err, DIM_ENOMEM, "out of memory for SSIM of %dx%d images", H, W);
    double *x = ws + 9 * hw, *y = x + hw, g[DIM_SSIM_WIN], wsum = 0.0;
    gauss(g);
    for (int j = 0; j < S; j++)
        wsum += ms_weights[j];
    double s_sum = 0.0, ms_sum = 0.0;
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < C; c++) {
            const float *xs = X + (i * C + c) * hw, *ys = Y + (i * C + c) * hw;
            for (size_t k = 0; k < hw; k++) {
                x[k] = xs[k];
                y[k] = ys[k];
            }
            double s, cs;
            ssim_cs(x, y, H, W, g, ws, &s, &cs);
            s_sum += s;
            if (S < 2)
                continue;
            double ms = 1.0;
            int h = H, w = W;
            for (int j = 0; j < S; j++) {
                if (j > 0) {
                    halve(x, h, w);
                    halve(y, h, w);
                    h /= 2;
                    w /= 2;
                    ssim_cs(x, y, h, w, g, ws, &s, &cs);
                }
                double base = j == S - 1 ? s : cs;
                ms *= pow(base > 0.0 ? base : 0.0, ms_weights[j] / wsum);
            }
            ms_sum += ms;
        }
    free(ws);
    *ssim = s_sum / (double)(n * C);
    if (S >= 2) {
        *ms_ssim = ms_sum / (double)(n * C);
        if (scales)
            *scales = S;
    }
    return 0;
}

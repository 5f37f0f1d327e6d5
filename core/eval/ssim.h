/* ssim.h - structural similarity (SSIM) and multi-scale SSIM between images
 * with values in [0, 1] (Wang et al. 2004; Wang, Simoncelli, Bovik 2003).
 *
 * SSIM of one channel: local statistics under an 11x11 Gaussian window
 * (sigma 1.5, normalised to sum 1), evaluated at every position where the
 * window fits inside the image ("valid" filtering, as the reference MATLAB code
 * and pytorch-msssim do):
 *     mu_x = G * x, s_x^2 = G * x^2 - mu_x^2, s_xy = G * (x y) - mu_x mu_y,
 *     l  = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1),
 *     cs = (2 s_xy + C2) / (s_x^2 + s_y^2 + C2),
 *     SSIM = mean over positions of l * cs,   CS = mean of cs,
 * C1 = (0.01 L)^2, C2 = (0.03 L)^2, data range L = 1. Channels are averaged.
 * Needs H, W >= 11; smaller images give NaN.
 * MS-SSIM: scale 0 is the image, scale j + 1 is scale j averaged over 2x2
 * blocks (odd edges dropped). The standard five weights
 * (0.0448, 0.2856, 0.3001, 0.2363, 0.1333) assume five scales, which need
 * 176x176 images; here as many scales S (2 <= S <= 5) are used as have both
 * sides >= 11, and the first S weights are renormalised to sum to 1:
 *     MS-SSIM = prod_{j < S-1} max(CS_j, 0)^w_j * max(SSIM_{S-1}, 0)^w_{S-1}
 * (negative bases clamped to 0, as pytorch-msssim does). 32x32 and 28x28 images
 * get 2 scales, 64x64 gets 3. Fewer than 2 scales: MS-SSIM is unavailable (NaN,
 * and 0 scales reported). Per channel, then averaged over channels and images.
 * Computed in double. Depends on libm and libc; allocates a workspace per call.
 */
#ifndef DIM_EVAL_SSIM_H
#define DIM_EVAL_SSIM_H

#include <stddef.h>

#include "base/error.h"

#define DIM_SSIM_WIN 11
#define DIM_SSIM_SIGMA 1.5
#define DIM_MSSSIM_MAX_SCALES 5

/* Number of MS-SSIM scales for an H x W image (0 when fewer than 2 fit). */
int dim_msssim_scales(int H, int W);

/* Mean SSIM and MS-SSIM over n image pairs X, Y (n, C, H, W) with values in
 * [0, 1]. *ssim is NaN when H or W < 11; *ms_ssim is NaN and *scales 0 when
 * fewer than 2 scales fit (scales may be NULL). Returns 0, DIM_EINVAL (n == 0 or
 * a size < 1) or DIM_ENOMEM. */
int dim_ssim_mean(const float *X, const float *Y, size_t n, int C, int H, int W, double *ssim,
                  double *ms_ssim, int *scales, struct dim_err *err);

#endif

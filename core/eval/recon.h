/* recon.h - reconstruction from a frozen representation: how much pixel
 * information Y keeps (the paper's decoder measure), and a PNG grid of
 * originals next to reconstructions.
 *
 * Decoder (an MLP: core/nn has no transposed convolution):
 *     Y (D) -> linear hidden -> ReLU -> linear hidden -> ReLU -> linear C*H*W
 * trained with Adam (cosine-decayed lr, trainnet.h) on the L2 loss in pixel
 * space against targets in [0, 1]:
 *     loss = 1 / (B P) * sum_i sum_p (out_ip - t_ip)^2,   P = C*H*W,
 * Y standardised per dimension with the training rows' statistics first (an
 * invertible map: it changes nothing a decoder could learn, only conditioning).
 * Reconstructions are the decoder's outputs clamped to [0, 1]; the reported MSE
 * is over those, on the held-out rows.
 * Allocation: dim_recon_run allocates its state once; steps do not.
 * Depends on eval/trainnet, eval/stats, eval/hooks, nn/, data/image (PNG).
 */
#ifndef DIM_EVAL_RECON_H
#define DIM_EVAL_RECON_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "eval/hooks.h"
#include "nn/net.h"

struct dim_recon_opts {
    int epochs;   /* passes over the training rows (default 15) */
    size_t batch; /* default 128 */
    float lr;     /* initial Adam learning rate, cosine-decayed (default 1e-3) */
    int hidden;   /* decoder width (default 512) */
    uint64_t seed;
};

void dim_recon_opts_default(struct dim_recon_opts *o);

/* The decoder above, for Y of width D and P outputs. Check net->bad. */
void dim_recon_arch(struct nn_net *net, int D, int hidden, size_t P);

/* Returns 1 / (B P) * sum (out - target)^2 over (B, P) and, when dout is
 * non-NULL, writes dout = 2 (out - target) / (B P) (overwrites). */
double dim_recon_l2_loss(float *dout, const float *out, const float *target, size_t B, size_t P);

/* Trains a decoder from Ytr (ntr, D) to targets Ttr (ntr, P) in [0, 1], then
 * writes reconstructions of Yte (nte, D) into R (nte, P; caller-allocated) and
 * their MSE against Tte (nte, P) into *mse. Inputs are not modified. Returns 0,
 * DIM_EINVAL, DIM_ENOMEM, DIM_ENONFINITE or DIM_ECANCELLED; *mse is NaN on failure. */
int dim_recon_run(const float *Ytr, const float *Ttr, size_t ntr, const float *Yte,
                  const float *Tte, size_t nte, size_t D, size_t P, const struct dim_recon_opts *o,
                  const struct dim_hooks *h, float *R, double *mse, struct dim_err *err);

/* Renders n pairs as an 8-bit PNG (grey when C == 1, RGB when C == 3) into a
 * malloc'd buffer *png of *len bytes (free it): the originals orig (n, C, H, W)
 * in the top row, their reconstructions recon (n, C, H, W) below, values in
 * [0, 1] (clamped), 2-pixel mid-grey gaps around and between tiles. Returns 0,
 * DIM_EINVAL (n == 0, C not 1 or 3) or DIM_ENOMEM. */
int dim_recon_grid_png(const float *orig, const float *recon, size_t n, int C, int H, int W,
                       uint8_t **png, size_t *len, struct dim_err *err);

#endif

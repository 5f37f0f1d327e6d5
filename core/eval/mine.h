/* mine.h - MINE estimate of the mutual information I(X; Y) between images X
 * and their representations Y (Belghazi et al. 2018, as used by Hjelm et al.
 * 2019 to measure how much input information Y keeps).
 *
 * Critic T(x, y) -> scalar, on (image, representation) pairs:
 *     a = fx(x)   fx: for images of at least 16x16, conv4x4 s2 p1 16 -> ReLU ->
 *                 conv4x4 s2 p1 32 -> ReLU -> linear H; for smaller images,
 *                 linear (flattened image) -> H
 *     b = fy(y)   linear D -> H, no bias
 *     T = head(a + b)   head: ReLU -> linear H -> H -> ReLU -> linear 1
 * (a + b is a linear layer on the concatenation [fx(x), y]). H = opts.hidden.
 * Positives: (x_i, y_i). Negatives: (x_i, y_perm(i)), perm a random cyclic
 * permutation of the batch (no fixed points), so every negative pairs an image
 * with another image's representation; fx and fy run once per batch.
 * Objective, the Donsker-Varadhan bound, maximised by Adam (cosine-decayed lr):
 *     DV = mean_P T - log mean_Q exp(T)     (max-subtracted, in double)
 * i.e. loss = -DV. Its exact gradient is d loss / d u_pos = -1 / B and
 * d loss / d u_neg_i = exp(u_i) / sum_Q exp(u). MINE's bias correction (on by
 * default, opts.ma_rate > 0) replaces the batch's mean_Q exp(T) in that
 * denominator by an exponential moving average m <- (1 - r) m + r mean_Q exp(T)
 * (kept as log m): d loss / d u_neg_i = exp(u_i - log m) / B.
 * Reported estimate: DV averaged over batches of held-out pairs after training
 * (opts.eval_passes passes, a new permutation per batch), in nats. Y is
 * standardised per dimension with the training rows' statistics first (MI is
 * invariant under such invertible maps); x is used as given (model inputs).
 * Allocation: dim_mine_run and dim_mine_critic_create allocate; steps do not.
 * Depends on eval/trainnet, eval/stats, eval/hooks, nn/, base/.
 */
#ifndef DIM_EVAL_MINE_H
#define DIM_EVAL_MINE_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "base/rng.h"
#include "eval/hooks.h"
#include "eval/trainnet.h"

struct dim_mine_opts {
    int steps;     /* critic updates (default 800) */
    size_t batch;  /* pairs per batch: B positives and B negatives (default 128) */
    float lr;      /* initial Adam learning rate, cosine-decayed (default 1e-3) */
    int hidden;    /* H (default 128) */
    float ma_rate; /* bias-correction moving-average rate r; 0 = plain DV gradient (default 0.01) */
    int eval_passes; /* passes over the held-out pairs (default 4) */
    uint64_t seed;
};

void dim_mine_opts_default(struct dim_mine_opts *o);

/* The critic and its training state. */
struct dim_mine_critic {
    int C, H, W, D, hidden;
    size_t cap;                       /* batch capacity */
    struct dim_trainnet fx, fy, head; /* head has capacity 2 * cap */
    float *hsum;                      /* (2 cap, hidden): head input */
    float *dh;                        /* (2 cap, hidden): its gradient */
};

/* Builds the critic for images (C, H, W) and representations of width D, for
 * batches up to cap, parameters from rng. Returns 0, DIM_EINVAL or DIM_ENOMEM. */
int dim_mine_critic_create(struct dim_mine_critic *c, int C, int H, int W, int D, int hidden,
                           size_t cap, struct dim_rng *rng, struct dim_err *err);
void dim_mine_critic_free(struct dim_mine_critic *c);

/* Scores of x (B, C, H, W) against y (B, D): u[i] = T(x_i, y_i) and
 * u[B + i] = T(x_i, y_perm[i]), for i < B <= cap; writes u (2B). */
void dim_mine_critic_forward(struct dim_mine_critic *c, const float *x, const float *y,
                             const uint32_t *perm, size_t B, float *u);

/* Back-propagates du (2B) for the batch of the last forward (same x, y, perm):
 * gradients ACCUMULATE into the three nets' grads. */
void dim_mine_critic_backward(struct dim_mine_critic *c, const float *x, const float *y,
                              const uint32_t *perm, size_t B, const float *du);

void dim_mine_critic_zero_grads(struct dim_mine_critic *c);
void dim_mine_critic_adam(struct dim_mine_critic *c, float lr);

/* DV loss on scores u (2B), positives first: returns -(mean_P u - log mean_Q exp u)
 * and writes du (overwrites). With log_ma == NULL or ma_rate <= 0, du is the exact
 * gradient; otherwise *log_ma is updated (initialised from the batch when it is
 * NaN) and the negatives' gradient uses it as described above. */
double dim_mine_dv_loss(float *du, const float *u, size_t B, double *log_ma, float ma_rate);

/* Trains a critic on (Xtr, Ytr) (ntr pairs; X (ntr, C, H, W), Y (ntr, D)) and
 * returns in *mi the DV estimate on (Xte, Yte). Inputs are not modified. Needs
 * ntr, nte >= 2, steps >= 1. Returns 0, DIM_EINVAL, DIM_ENOMEM, DIM_ENONFINITE
 * (training diverged) or DIM_ECANCELLED. *mi is NaN on failure. */
int dim_mine_run(const float *Xtr, const float *Ytr, size_t ntr, const float *Xte, const float *Yte,
                 size_t nte, int C, int H, int W, int D, const struct dim_mine_opts *o,
                 const struct dim_hooks *h, double *mi, struct dim_err *err);

#endif

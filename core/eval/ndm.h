/* ndm.h - neural dependency measure (NDM) of a representation Y (Hjelm et al.
 * 2019, section 4.2): how far Y's dimensions are from independent.
 *
 * Maths. P = rows of Y (samples of the joint), Q = the same batch with each
 * dimension permuted independently across the batch (samples of the product of
 * the marginals). A discriminator T: D -> 1000 -> ReLU -> 200 -> ReLU -> 1 (a
 * logit; nn_net linear layers with bias) is trained with Adam and the cosine-
 * decayed learning rate of trainnet.h on the stable JSD (logistic) objective
 *     loss = mean_P sp(-T) + mean_Q sp(T),        sp(z) = log(1 + e^z),
 * whose optimum is T* = log p(y) / q(y). The reported NDM is the
 * Donsker-Varadhan estimate of KL(P || Q) with that T on held-out rows:
 *     NDM = mean_P T - log mean_Q exp(T)          (max-subtracted, in double),
 * averaged over batches of the held-out rows, each with fresh shuffles.
 * KL(P || Q) is Y's total correlation: 0 for independent dimensions, larger
 * for more dependent (less disentangled) ones.
 * Inputs: Y as given, or sigmoid(Y) with opts.sigmoid (the squashing the
 * prior-matching term acts on). Either way the discriminator sees each dimension
 * standardised with the training rows' mean and std; total correlation is
 * invariant under such per-dimension invertible maps (sigmoid included), so the
 * two variants estimate the same quantity and differ only through the
 * estimator's behaviour on differently shaped inputs.
 * Allocation: dim_ndm_run allocates once up front; its steps do not allocate.
 * Depends on eval/trainnet, eval/stats, eval/hooks, nn/, base/.
 */
#ifndef DIM_EVAL_NDM_H
#define DIM_EVAL_NDM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "base/rng.h"
#include "eval/hooks.h"
#include "nn/net.h"

struct dim_ndm_opts {
    int steps;            /* discriminator updates (default 600) */
    size_t batch;         /* rows per batch: B positives and B shuffled negatives (default 128) */
    float lr;             /* initial Adam learning rate, cosine-decayed (default 1e-3) */
    int hidden1, hidden2; /* discriminator widths (default 1000, 200) */
    bool sigmoid;         /* measure sigmoid(Y) instead of Y */
    int eval_passes;      /* passes over the held-out rows, new shuffles each (default 4) */
    uint64_t seed;        /* initialisation, batches and shuffles */
};

void dim_ndm_opts_default(struct dim_ndm_opts *o);

/* The discriminator: D -> hidden1 -> ReLU -> hidden2 -> ReLU -> 1. Check net->bad. */
void dim_ndm_arch(struct nn_net *net, int D, int hidden1, int hidden2);

/* out (B, D) = Y (B, D) with column d permuted by its own random permutation
 * (drawn from rng into perm, B entries). out and Y must not overlap. */
void dim_ndm_shuffle(float *out, const float *Y, size_t B, size_t D, struct dim_rng *rng,
                     uint32_t *perm);

/* JSD objective on scores u (2B): u[0..B) positives, u[B..2B) negatives.
 * Returns mean_P sp(-u) + mean_Q sp(u) and writes du = d loss / d u (overwrites):
 * -sigmoid(-u) / B for positives, sigmoid(u) / B for negatives. */
double dim_ndm_jsd_loss(float *du, const float *u, size_t B);

/* DV estimate on scores u (2B) laid out as above: mean_P u - log mean_Q exp(u). */
double dim_ndm_dv(const float *u, size_t B);

/* Trains a discriminator on Ytr (ntr, D) and returns in *ndm the DV estimate
 * on Yte (nte, D). Neither array is modified. Needs ntr, nte >= 2 (the batch is
 * clipped to each), steps >= 1. Returns 0, DIM_EINVAL, DIM_ENOMEM,
 * DIM_ENONFINITE (the training loss diverged) or DIM_ECANCELLED (h's flag).
 * *ndm is NaN on failure. */
int dim_ndm_run(const float *Ytr, size_t ntr, const float *Yte, size_t nte, size_t D,
                const struct dim_ndm_opts *o, const struct dim_hooks *h, double *ndm,
                struct dim_err *err);

#endif

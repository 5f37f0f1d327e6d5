/* trainnet.h - a small network trained on its own, as the measures of core/eval
 * need (NDM discriminator, MINE critic, SVM, decoder): one nn_net with one slab
 * holding its parameters, gradients, Adam moments, batch-norm state and a
 * training workspace for a maximum batch, so that a training step never allocates.
 *
 * Optimiser: Adam, betas (0.9, 0.999), eps 1e-8, with the learning rate given
 * per update; dim_trainnet_lr is the decaying schedule every measure uses:
 *   lr(s) = lr0 * (0.01 + 0.99 * (1 + cos(pi * s / steps)) / 2)
 * (cosine from lr0 at step 0 to lr0 / 100 at the last step), which lowers the
 * variance of the converged estimates (the MINE paper's recommendation).
 * Not thread-safe (one trainnet per thread). Depends on nn/, base/.
 */
#ifndef DIM_EVAL_TRAINNET_H
#define DIM_EVAL_TRAINNET_H

#include <stddef.h>

#include "base/error.h"
#include "base/rng.h"
#include "nn/adam.h"
#include "nn/net.h"

struct dim_trainnet {
    struct nn_net net;                     /* bound to params, grads and state below */
    size_t cap;                            /* batch capacity of ws */
    float *params, *grads, *m, *v, *state; /* carved from slab; net.n_params each (state n_state) */
    struct nn_net_ws ws;                   /* training workspace for up to cap rows */
    struct nn_adam adam;
    float *slab;
};

/* Copies the architecture arch (built, not bound; arch->bad must be false),
 * allocates the slab for batches up to cap and initialises the parameters from
 * rng (nn_net_init_params), gradients and moments to zero. Returns 0,
 * DIM_EINVAL (bad architecture, cap 0) or DIM_ENOMEM. Free with dim_trainnet_free. */
int dim_trainnet_create(struct dim_trainnet *t, const struct nn_net *arch, size_t cap,
                        struct dim_rng *rng, struct dim_err *err);
void dim_trainnet_free(struct dim_trainnet *t);

/* Runs in (B, input) through the net in training mode (dropout draws from rng,
 * which may be NULL for nets without dropout) and returns the output (B, out),
 * valid until the next forward. B <= cap. */
float *dim_trainnet_forward(struct dim_trainnet *t, const float *in, size_t B, struct dim_rng *rng);

/* Zeroes the workspace's gradient buffers for batch B and returns the output
 * gradient (B, out) for the caller to fill before dim_trainnet_backward. */
float *dim_trainnet_dout(struct dim_trainnet *t, size_t B);

/* Back-propagates the filled output gradient: parameter gradients ACCUMULATE
 * into t->grads, din (B, input) accumulates when non-NULL. */
void dim_trainnet_backward(struct dim_trainnet *t, const float *in, float *din, size_t B);

void dim_trainnet_zero_grads(struct dim_trainnet *t);

/* One Adam update of every parameter at learning rate lr (gradients are read,
 * not cleared). */
void dim_trainnet_adam(struct dim_trainnet *t, float lr);

/* The schedule above: learning rate of update s (from 0) of steps. */
float dim_trainnet_lr(float lr0, long s, long steps);

#endif

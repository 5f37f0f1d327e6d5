/* minet.h - the encode-and-dot-product MI network of Deep InfoMax.
 *
 * Applied per row (a location's local vector, or a global vector Y):
 *   out = LayerNorm_D( nonlinear(x) + shortcut(x) )
 *   nonlinear = linear(Cin -> D, no bias) -> BN -> ReLU -> linear(D -> D, bias)
 *   shortcut  = linear(Cin -> D, no bias), initialised near identity
 * Parameters live in the owner's slab (see dim_minet_place); activations in a
 * struct dim_minet_ws. Depends on nn/.
 */
#ifndef DIM_DIM_MINET_H
#define DIM_DIM_MINET_H

#include <stdbool.h>
#include <stddef.h>

#include "base/rng.h"
#include "nn/net.h"

struct dim_minet {
    int cin, D;
    struct nn_net a, s; /* nonlinear path, shortcut */
    size_t ln_g, ln_b;  /* layer-norm affine, offsets relative to the bound params */
    size_t n_params, n_state;
    float *params, *grads; /* bound */
};

struct dim_minet_ws {
    struct nn_net_ws a, s;
    float *pre, *out, *dout; /* (cap, D) */
    float *dpre;             /* (cap, D): both paths' output gradient, one shared buffer */
    float *mean, *rstd;             /* (cap) */
};

/* Describes the net; returns -1 if a size is invalid. */
int dim_minet_init(struct dim_minet *mi, int cin, int D);
void dim_minet_bind(struct dim_minet *mi, float *params, float *grads, float *state);
/* Kaiming-uniform nonlinear path, near-identity shortcut, LN gamma 1 beta 0. */
void dim_minet_init_params(struct dim_minet *mi, struct dim_rng *rng);
size_t dim_minet_ws_floats(const struct dim_minet *mi, size_t cap);
void dim_minet_ws_carve(const struct dim_minet *mi, struct dim_minet_ws *ws, float *slab,
                        size_t cap);
/* ws->out (R, D) = minet(x (R, cin)) in training mode (batch-norm over the R rows). */
void dim_minet_forward(const struct dim_minet *mi, struct dim_minet_ws *ws, const float *x,
                       size_t R);
/* Given ws->dout, accumulates parameter gradients and dx (R, cin) (dx may be NULL). */
void dim_minet_backward(const struct dim_minet *mi, struct dim_minet_ws *ws, const float *x,
                        float *dx, size_t R);

#endif

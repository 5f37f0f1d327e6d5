/* net.h - a sequential network of conv, linear, batch-norm, ReLU and dropout
 * layers, with its parameters apart from its activations.
 *
 * A struct nn_net describes the layers and where each parameter lives as an
 * offset into flat slabs (params, grads, state = batch-norm running stats).
 * The owner allocates the slabs (usually one slab shared by several nets) and
 * binds them with nn_net_bind. Activations live in a struct nn_net_ws carved
 * from one caller-provided slab for a maximum batch, so forward and backward
 * never allocate. Several threads may run forward passes of one net at once in
 * NN_EVAL mode, each with its own workspace; NN_TRAIN writes running stats.
 * A linear layer flattens its input (C, H, W) to C*H*W features. In training, a
 * batch norm directly followed by a ReLU runs as one fused kernel (same results):
 * nothing may write into such a batch norm's own output gradient, ws->dact[i].
 * Depends on: conv2d, linear, norm, activation, base/rng.
 */
#ifndef DIM_NN_NET_H
#define DIM_NN_NET_H

#include <stdbool.h>
#include <stddef.h>

#include "base/rng.h"
#include "nn/conv2d.h"

#define NN_NET_MAX_LAYERS 16

enum nn_op { NN_CONV, NN_LINEAR, NN_BN, NN_RELU, NN_DROPOUT };
enum nn_mode { NN_EVAL = 0, NN_TRAIN = 1 };

struct nn_layer {
    enum nn_op op;
    int ic, ih, iw; /* input shape per sample */
    int oc, oh, ow; /* output shape per sample */
    struct nn_conv2d cv;
    bool bias;
    float drop;    /* dropout probability */
    size_t w, b;   /* param offsets: weight or gamma, bias or beta (SIZE_MAX: none) */
    size_t rm, rv; /* state offsets for batch norm */
};

struct nn_net {
    int n;
    struct nn_layer L[NN_NET_MAX_LAYERS];
    int in_c, in_h, in_w;
    size_t n_params, n_state;
    bool bad; /* a builder call failed (too many layers or impossible geometry) */
    float *params, *grads, *state;
};

struct nn_net_ws {
    size_t cap; /* batch capacity */
    bool train;
    float *act[NN_NET_MAX_LAYERS];  /* (cap, layer output) */
    float *dact[NN_NET_MAX_LAYERS]; /* same, gradients (train only) */
    float *aux[NN_NET_MAX_LAYERS];  /* conv: im2col columns; bn: mean, invstd; dropout: mask */
    float *scratch;
};

/* Builders: start with the per-sample input shape, then append layers. A failed
 * append sets net->bad; check it once after building. */
void nn_net_init(struct nn_net *net, int c, int h, int w);
void nn_net_conv(struct nn_net *net, int oc, int k, int s, int p, bool bias);
void nn_net_linear(struct nn_net *net, int out, bool bias);
void nn_net_bn(struct nn_net *net);
void nn_net_relu(struct nn_net *net);
void nn_net_dropout(struct nn_net *net, float p);

/* Per-sample sizes. */
size_t nn_net_in_size(const struct nn_net *net);
size_t nn_layer_out_size(const struct nn_layer *l);
size_t nn_net_out_size(const struct nn_net *net);

/* Points the net at its slabs (grads may be NULL for inference-only use). */
void nn_net_bind(struct nn_net *net, float *params, float *grads, float *state);
/* PyTorch-style defaults: conv/linear weights and biases U(-1/sqrt(fan_in), +1/sqrt(fan_in)),
 * BN gamma 1, beta 0, running mean 0, var 1. */
void nn_net_init_params(struct nn_net *net, struct dim_rng *rng);

/* Workspace floats for batch capacity cap; train adds gradient buffers. */
size_t nn_net_ws_floats(const struct nn_net *net, size_t cap, bool train);
/* Carves ws out of slab, which must hold nn_net_ws_floats(net, cap, train) floats. */
void nn_net_ws_carve(const struct nn_net *net, struct nn_net_ws *ws, float *slab, size_t cap,
                     bool train);

/* Runs in (B, in_c, in_h, in_w) through the net; B <= ws->cap. Layer i's output
 * is ws->act[i]. rng is used by dropout in NN_TRAIN mode only (may be NULL otherwise). */
void nn_net_forward(const struct nn_net *net, struct nn_net_ws *ws, const float *in, size_t B,
                    enum nn_mode mode, struct dim_rng *rng);
/* Zeroes every gradient buffer of ws for batch B. */
void nn_net_zero_dact(const struct nn_net *net, struct nn_net_ws *ws, size_t B);
/* Back-propagates ws->dact[n-1] (filled by the caller) through the net: parameter
 * gradients ACCUMULATE into net->grads, din (B, input) ACCUMULATES when non-NULL.
 * in must be the same input the forward pass saw. */
void nn_net_backward(const struct nn_net *net, struct nn_net_ws *ws, const float *in, float *din,
                     size_t B);

static inline float *nn_net_out(const struct nn_net *net, const struct nn_net_ws *ws)
{
    return ws->act[net->n - 1];
}
static inline float *nn_net_dout(const struct nn_net *net, const struct nn_net_ws *ws)
{
    return ws->dact[net->n - 1];
}

/* Multiply-accumulate count of one forward pass per sample (conv and linear layers). */
double nn_net_macs(const struct nn_net *net);
/* Multiply-accumulates per sample of nn_net_backward: every weight gradient, and
 * every input gradient except the first layer's when need_din is false. */
double nn_net_backward_macs(const struct nn_net *net, bool need_din);

#endif

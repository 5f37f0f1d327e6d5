/* net.c - sequential network: builders, slab layout, forward and backward. */
#include "nn/net.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "base/parallel.h"
#include "nn/activation.h"
#include "nn/linear.h"
#include "nn/norm.h"

void nn_net_init(struct nn_net *net, int c, int h, int w)
{
    memset(net, 0, sizeof *net);
    net->in_c = c;
    net->in_h = h;
    net->in_w = w;
    net->bad = c <= 0 || h <= 0 || w <= 0;
}

/* Appends a layer whose input is the previous layer's output; NULL when full. */
static struct nn_layer *push(struct nn_net *net, enum nn_op op)
{
    if (net->n >= NN_NET_MAX_LAYERS) {
        net->bad = true;
        return NULL;
    }
    struct nn_layer *l = &net->L[net->n++];
    memset(l, 0, sizeof *l);
    l->op = op;
    if (net->n == 1) {
        l->ic = net->in_c;
        l->ih = net->in_h;
        l->iw = net->in_w;
    } else {
        const struct nn_layer *p = l - 1;
        l->ic = p->oc;
        l->ih = p->oh;
        l->iw = p->ow;
    }
    l->oc = l->ic;
    l->oh = l->ih;
    l->ow = l->iw;
    l->w = l->b = l->rm = l->rv = SIZE_MAX;
    return l;
}

static size_t take(size_t *counter, size_t n)
{
    size_t off = *counter;
    *counter += n;
    return off;
}

void nn_net_conv(struct nn_net *net, int oc, int k, int s, int p, bool bias)
{
    struct nn_layer *l = push(net, NN_CONV);
    if (!l)
        return;
    if (nn_conv2d_init(&l->cv, l->ic, l->ih, l->iw, oc, k, s, p) != 0) {
        net->bad = true;
        return;
    }
    l->oc = oc;
    l->oh = l->cv.OH;
    l->ow = l->cv.OW;
    l->bias = bias;
    l->w = take(&net->n_params, (size_t)oc * l->ic * k * k);
    if (bias)
        l->b = take(&net->n_params, (size_t)oc);
}

void nn_net_linear(struct nn_net *net, int out, bool bias)
{
    struct nn_layer *l = push(net, NN_LINEAR);
    if (!l)
        return;
    if (out <= 0)
        net->bad = true;
    l->oc = out;
    l->oh = l->ow = 1;
    l->bias = bias;
    l->w = take(&net->n_params, (size_t)out * l->ic * l->ih * l->iw);
    if (bias)
        l->b = take(&net->n_params, (size_t)out);
}

void nn_net_bn(struct nn_net *net)
{
    struct nn_layer *l = push(net, NN_BN);
    if (!l)
        return;
    l->w = take(&net->n_params, (size_t)l->ic);
    l->b = take(&net->n_params, (size_t)l->ic);
    l->rm = take(&net->n_state, (size_t)l->ic);
    l->rv = take(&net->n_state, (size_t)l->ic);
}

void nn_net_relu(struct nn_net *net)
{
    push(net, NN_RELU);
}

void nn_net_dropout(struct nn_net *net, float p)
{
    struct nn_layer *l = push(net, NN_DROPOUT);
    if (!l)
        return;
    if (!(p >= 0.0f && p < 1.0f))
        net->bad = true;
    l->drop = p;
}

size_t nn_net_in_size(const struct nn_net *net)
{
    return (size_t)net->in_c * net->in_h * net->in_w;
}

size_t nn_layer_out_size(const struct nn_layer *l)
{
    return (size_t)l->oc * l->oh * l->ow;
}

static size_t layer_in_size(const struct nn_layer *l)
{
    return (size_t)l->ic * l->ih * l->iw;
}

size_t nn_net_out_size(const struct nn_net *net)
{
    return net->n ? nn_layer_out_size(&net->L[net->n - 1]) : nn_net_in_size(net);
}

void nn_net_bind(struct nn_net *net, float *params, float *grads, float *state)
{
    net->params = params;
    net->grads = grads;
    net->state = state;
}

void nn_net_init_params(struct nn_net *net, struct dim_rng *rng)
{
    for (int i = 0; i < net->n; i++) {
        const struct nn_layer *l = &net->L[i];
        if (l->op == NN_CONV || l->op == NN_LINEAR) {
            size_t fan_in = l->op == NN_CONV ? (size_t)l->ic * l->cv.k * l->cv.k : layer_in_size(l);
            size_t nw = (size_t)l->oc * fan_in;
            float bound = 1.0f / sqrtf((float)fan_in);
            for (size_t j = 0; j < nw; j++)
                net->params[l->w + j] = (2.0f * dim_rng_uniform(rng) - 1.0f) * bound;
            if (l->bias)
                for (int j = 0; j < l->oc; j++)
                    net->params[l->b + j] = (2.0f * dim_rng_uniform(rng) - 1.0f) * bound;
        } else if (l->op == NN_BN) {
            for (int j = 0; j < l->ic; j++) {
                net->params[l->w + j] = 1.0f;
                net->params[l->b + j] = 0.0f;
                net->state[l->rm + j] = 0.0f;
                net->state[l->rv + j] = 1.0f;
            }
        }
    }
}

static size_t aux_floats(const struct nn_layer *l, size_t cap)
{
    switch (l->op) {
    case NN_CONV:
        return nn_conv2d_col_floats(&l->cv, cap);
    case NN_BN:
        return 2 * (size_t)l->ic;
    case NN_DROPOUT:
        return cap * layer_in_size(l);
    default:
        return 0;
    }
}

static size_t scratch_floats(const struct nn_net *net, size_t cap)
{
    size_t s = 0;
    for (int i = 0; i < net->n; i++)
        if (net->L[i].op == NN_CONV) {
            size_t c = nn_conv2d_scratch_floats(&net->L[i].cv, cap);
            s = c > s ? c : s;
        }
    return s;
}

size_t nn_net_ws_floats(const struct nn_net *net, size_t cap, bool train)
{
    size_t total = scratch_floats(net, cap);
    for (int i = 0; i < net->n; i++) {
        size_t out = cap * nn_layer_out_size(&net->L[i]);
        total += out * (train ? 2 : 1) + aux_floats(&net->L[i], cap);
    }
    return total;
}

void nn_net_ws_carve(const struct nn_net *net, struct nn_net_ws *ws, float *slab, size_t cap,
                     bool train)
{
    memset(ws, 0, sizeof *ws);
    ws->cap = cap;
    ws->train = train;
    for (int i = 0; i < net->n; i++) {
        size_t out = cap * nn_layer_out_size(&net->L[i]);
        ws->act[i] = slab;
        slab += out;
        if (train) {
            ws->dact[i] = slab;
            slab += out;
        }
        size_t a = aux_floats(&net->L[i], cap);
        ws->aux[i] = a ? slab : NULL;
        slab += a;
    }
    ws->scratch = slab;
}

/* A batch norm directly followed by a ReLU runs as one fused kernel in training:
 * the pair's batch-norm output gradient (ws->dact[i]) is then never used. */
static bool fused_bn_relu(const struct nn_net *net, int i)
{
    return net->L[i].op == NN_BN && i + 1 < net->n && net->L[i + 1].op == NN_RELU;
}

void nn_net_forward(const struct nn_net *net, struct nn_net_ws *ws, const float *in, size_t B,
                    enum nn_mode mode, struct dim_rng *rng)
{
    const float *x = in;
    float *P = net->params;
    for (int i = 0; i < net->n; i++) {
        const struct nn_layer *l = &net->L[i];
        float *y = ws->act[i];
        size_t isz = layer_in_size(l), n = B * isz;
        switch (l->op) {
        case NN_CONV:
            nn_conv2d_forward(y, ws->aux[i], ws->scratch, x, P + l->w, l->bias ? P + l->b : NULL,
                              &l->cv, B);
            break;
        case NN_LINEAR:
            nn_linear_forward(y, x, P + l->w, l->bias ? P + l->b : NULL, B, isz, (size_t)l->oc);
            break;
        case NN_BN:
            if (mode == NN_TRAIN && fused_bn_relu(net, i)) {
                nn_batchnorm_relu_forward_train(y, ws->act[i + 1], ws->aux[i], ws->aux[i] + l->ic,
                                                x, P + l->w, P + l->b, net->state + l->rm,
                                                net->state + l->rv, B, (size_t)l->ic,
                                                (size_t)l->ih * l->iw);
                x = ws->act[++i]; /* the ReLU's output is written too */
                continue;
            } else if (mode == NN_TRAIN)
                nn_batchnorm_forward_train(y, ws->aux[i], ws->aux[i] + l->ic, x, P + l->w,
                                           P + l->b, net->state + l->rm, net->state + l->rv, B,
                                           (size_t)l->ic, (size_t)l->ih * l->iw);
            else
                nn_batchnorm_forward_infer(y, x, P + l->w, P + l->b, net->state + l->rm,
                                           net->state + l->rv, B, (size_t)l->ic,
                                           (size_t)l->ih * l->iw);
            break;
        case NN_RELU:
            nn_relu_forward(y, x, n);
            break;
        case NN_DROPOUT:
            if (mode == NN_TRAIN && l->drop > 0.0f) {
                float keep = 1.0f / (1.0f - l->drop);
                for (size_t j = 0; j < n; j++)
                    ws->aux[i][j] = dim_rng_uniform(rng) < l->drop ? 0.0f : keep;
            } else {
                for (size_t j = 0; j < n; j++)
                    ws->aux[i][j] = 1.0f;
            }
            nn_mul_forward(y, x, ws->aux[i], n);
            break;
        }
        x = y;
    }
}

void nn_net_zero_dact(const struct nn_net *net, struct nn_net_ws *ws, size_t B)
{
    for (int i = 0; i < net->n; i++) {
        if (fused_bn_relu(net, i))
            continue;
        dim_parallel_zero(ws->dact[i], B * nn_layer_out_size(&net->L[i]));
    }
}

void nn_net_backward(const struct nn_net *net, struct nn_net_ws *ws, const float *in, float *din,
                     size_t B)
{
    const float *P = net->params;
    float *G = net->grads;
    for (int i = net->n - 1; i >= 0; i--) {
        const struct nn_layer *l = &net->L[i];
        const float *x = i ? ws->act[i - 1] : in;
        float *dx = i ? ws->dact[i - 1] : din;
        const float *dy = ws->dact[i];
        size_t isz = layer_in_size(l), n = B * isz;
        switch (l->op) {
        case NN_CONV:
            nn_conv2d_backward(dx, G + l->w, l->bias ? G + l->b : NULL, ws->scratch, dy,
                               ws->aux[i], P + l->w, &l->cv, B);
            break;
        case NN_LINEAR:
            nn_linear_backward(dx, G + l->w, l->bias ? G + l->b : NULL, dy, x, P + l->w, B, isz,
                               (size_t)l->oc);
            break;
        case NN_BN:
            nn_batchnorm_backward(dx, G + l->w, G + l->b, dy, x, ws->aux[i], ws->aux[i] + l->ic,
                                  P + l->w, B, (size_t)l->ic, (size_t)l->ih * l->iw);
            break;
        case NN_RELU:
            if (i > 0 && fused_bn_relu(net, i - 1)) { /* back through ReLU and BN at once */
                const struct nn_layer *bn = &net->L[i - 1];
                nn_batchnorm_relu_backward(i > 1 ? ws->dact[i - 2] : din, G + bn->w, G + bn->b, dy,
                                           ws->act[i], i > 1 ? ws->act[i - 2] : in, ws->aux[i - 1],
                                           ws->aux[i - 1] + bn->ic, P + bn->w, B, (size_t)bn->ic,
                                           (size_t)bn->ih * bn->iw);
                i--;
            } else if (dx)
                nn_relu_backward(dx, dy, ws->act[i], n);
            break;
        case NN_DROPOUT:
            if (dx)
                nn_mul_backward(dx, dy, ws->aux[i], n);
            break;
        }
    }
}

static double layer_macs(const struct nn_layer *l)
{
    if (l->op == NN_CONV)
        return (double)l->oc * l->oh * l->ow * l->ic * l->cv.k * l->cv.k;
    if (l->op == NN_LINEAR)
        return (double)l->oc * layer_in_size(l);
    return 0.0;
}

double nn_net_macs(const struct nn_net *net)
{
    double m = 0.0;
    for (int i = 0; i < net->n; i++)
        m += layer_macs(&net->L[i]);
    return m;
}

double nn_net_backward_macs(const struct nn_net *net, bool need_din)
{
    double m = 0.0;
    bool first = true; /* no earlier conv/linear layer: its input gradient may be skipped */
    for (int i = 0; i < net->n; i++) {
        double f = layer_macs(&net->L[i]);
        if (f == 0.0)
            continue;
        m += f + ((first && !need_din) ? 0.0 : f);
        first = false;
    }
    return m;
}

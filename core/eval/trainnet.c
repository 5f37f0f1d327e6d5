/* trainnet.c - a separately trained small network (see trainnet.h). */
#include "eval/trainnet.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int dim_trainnet_create(struct dim_trainnet *t, const struct nn_net *arch, size_t cap,
                        struct dim_rng *rng, struct dim_err *err)
{
    memset(t, 0, sizeof *t);
    if (arch->bad || arch->n == 0 || cap == 0)
        return dim_fail(err, DIM_EINVAL, "bad network for a measure (%d layers, batch %zu)",
                        arch->n, cap);
    t->net = *arch;
    t->cap = cap;
    const size_t P = arch->n_params, S = arch->n_state;
    const size_t W = nn_net_ws_floats(arch, cap, true);
    t->slab = calloc(4 * P + S + W, sizeof(float));
    if (!t->slab)
        return dim_fail(err, DIM_ENOMEM, "out of memory for a network of %zu parameters", P);
    t->params = t->slab;
    t->grads = t->params + P;
    t->m = t->grads + P;
    t->v = t->m + P;
    t->state = t->v + P;
    nn_net_ws_carve(&t->net, &t->ws, t->state + S, cap, true);
    nn_net_bind(&t->net, t->params, t->grads, t->state);
    nn_net_init_params(&t->net, rng);
    t->adam = (struct nn_adam){1e-3f, 0.9f, 0.999f, 1e-8f, 0};
    return 0;
}

void dim_trainnet_free(struct dim_trainnet *t)
{
    free(t->slab);
    memset(t, 0, sizeof *t);
}

float *dim_trainnet_forward(struct dim_trainnet *t, const float *in, size_t B, struct dim_rng *rng)
{
    nn_net_forward(&t->net, &t->ws, in, B, NN_TRAIN, rng);
    return nn_net_out(&t->net, &t->ws);
}

float *dim_trainnet_dout(struct dim_trainnet *t, size_t B)
{
    nn_net_zero_dact(&t->net, &t->ws, B);
    return nn_net_dout(&t->net, &t->ws);
}

void dim_trainnet_backward(struct dim_trainnet *t, const float *in, float *din, size_t B)
{
    nn_net_backward(&t->net, &t->ws, in, din, B);
}

void dim_trainnet_zero_grads(struct dim_trainnet *t)
{
    memset(t->grads, 0, sizeof(float) * t->net.n_params);
}

void dim_trainnet_adam(struct dim_trainnet *t, float lr)
{
    t->adam.lr = lr;
    nn_adam_update(&t->adam, t->params, t->grads, t->m, t->v, t->net.n_params);
}

float dim_trainnet_lr(float lr0, long s, long steps)
{
    double f = steps > 1 ? (double)s / (double)(steps - 1) : 0.0;
    f = f < 0.0 ? 0.0 : (f > 1.0 ? 1.0 : f);
    return (float)(lr0 * (0.01 + 0.99 * 0.5 * (1.0 + cos(3.14159265358979323846 * f))));
}

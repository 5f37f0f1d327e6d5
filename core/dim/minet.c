/* minet.c - MI network: nonlinear path + shortcut, then layer norm. */
#include "dim/minet.h"

#include <string.h>

#include "nn/norm.h"

int dim_minet_init(struct dim_minet *mi, int cin, int D)
{
    memset(mi, 0, sizeof *mi);
    mi->cin = cin;
    mi->D = D;
    nn_net_init(&mi->a, cin, 1, 1);
    nn_net_linear(&mi->a, D, false);
    nn_net_bn(&mi->a);
    nn_net_relu(&mi->a);
    nn_net_linear(&mi->a, D, true);
    nn_net_init(&mi->s, cin, 1, 1);
    nn_net_linear(&mi->s, D, false);
    if (mi->a.bad || mi->s.bad || D <= 0)
        return -1;
    mi->ln_g = mi->a.n_params + mi->s.n_params;
    mi->ln_b = mi->ln_g + (size_t)D;
    mi->n_params = mi->ln_b + (size_t)D;
    mi->n_state = mi->a.n_state;
    return 0;
}

void dim_minet_bind(struct dim_minet *mi, float *params, float *grads, float *state)
{
    size_t off = mi->a.n_params;
    mi->params = params;
    mi->grads = grads;
    nn_net_bind(&mi->a, params, grads, state);
    nn_net_bind(&mi->s, params + off, grads ? grads + off : NULL, state + mi->a.n_state);
}

void dim_minet_init_params(struct dim_minet *mi, struct dim_rng *rng)
{
    nn_net_init_params(&mi->a, rng);
    float *w = mi->s.params + mi->s.L[0].w; /* (D, cin) */
    for (int d = 0; d < mi->D; d++)
        for (int c = 0; c < mi->cin; c++)
            w[(size_t)d * mi->cin + c] =
                d == c ? 1.0f : (2.0f * dim_rng_uniform(rng) - 1.0f) * 0.01f;
    for (int d = 0; d < mi->D; d++) {
        mi->params[mi->ln_g + d] = 1.0f;
        mi->params[mi->ln_b + d] = 0.0f;
    }
}

size_t dim_minet_ws_floats(const struct dim_minet *mi, size_t cap)
{
    return nn_net_ws_floats(&mi->a, cap, true) + nn_net_ws_floats(&mi->s, cap, true) +
           3 * cap * (size_t)mi->D + 2 * cap;
}

void dim_minet_ws_carve(const struct dim_minet *mi, struct dim_minet_ws *ws, float *slab,
                        size_t cap)
{
    const size_t cd = cap * (size_t)mi->D;
    nn_net_ws_carve(&mi->a, &ws->a, slab, cap, true);
    slab += nn_net_ws_floats(&mi->a, cap, true);
    nn_net_ws_carve(&mi->s, &ws->s, slab, cap, true);
    slab += nn_net_ws_floats(&mi->s, cap, true);
    ws->pre = slab;
    ws->out = slab + cd;
    ws->dout = slab + 2 * cd;
    ws->mean = slab + 3 * cd;
    ws->rstd = ws->mean + cap;
    /* both paths' output gradient is d pre: one buffer, which backward only reads */
    ws->dpre = ws->a.dact[mi->a.n - 1];
    ws->s.dact[mi->s.n - 1] = ws->dpre;
}

void dim_minet_forward(const struct dim_minet *mi, struct dim_minet_ws *ws, const float *x,
                       size_t R)
{
    const size_t n = R * (size_t)mi->D;
    nn_net_forward(&mi->a, &ws->a, x, R, NN_TRAIN, NULL);
    nn_net_forward(&mi->s, &ws->s, x, R, NN_TRAIN, NULL);
    const float *ya = nn_net_out(&mi->a, &ws->a), *ys = nn_net_out(&mi->s, &ws->s);
    for (size_t i = 0; i < n; i++)
        ws->pre[i] = ya[i] + ys[i];
    nn_layernorm_forward(ws->out, ws->mean, ws->rstd, ws->pre, mi->params + mi->ln_g,
                         mi->params + mi->ln_b, R, (size_t)mi->D);
}

/* out = LN(a(x) + s(x)): d pre from LN, then the same d pre into both paths. */
void dim_minet_backward(const struct dim_minet *mi, struct dim_minet_ws *ws, const float *x,
                        float *dx, size_t R)
{
    nn_net_zero_dact(&mi->a, &ws->a, R); /* includes dpre, shared with the shortcut */
    nn_net_zero_dact(&mi->s, &ws->s, R);
    nn_layernorm_backward(ws->dpre, mi->grads + mi->ln_g, mi->grads + mi->ln_b, ws->dout,
                          ws->pre, ws->mean, ws->rstd, mi->params + mi->ln_g, R, (size_t)mi->D);
    nn_net_backward(&mi->a, &ws->a, x, dx, R);
    nn_net_backward(&mi->s, &ws->s, x, dx, R);
}

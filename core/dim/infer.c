/* infer.c - folding a model's encoder into its inference-only form, and running
 * it (see infer.h). */
#include "dim/infer.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/parallel.h"
#include "nn/infer_conv.h"
#include "nn/norm.h"

/* One folded group: layers [first, last] of the encoder. */
struct group {
    int first, last, bn; /* bn: the norm's layer, or -1 */
};

static bool is_tap(const struct dim_model *m, int layer)
{
    for (int t = 0; t < 4; t++)
        if (m->tap_layer[t] == layer)
            return true;
    return false;
}

static const char *op_name(enum nn_op op)
{
    static const char *const names[] = {"conv", "linear", "batch norm", "relu", "dropout"};
    return (unsigned)op < 5 ? names[op] : "?";
}

/* Folds group g of net e into op o (its parameters at params + o->w, o->b).
 * prev_map: the previous op is a convolution whose output (C, H, W) this linear
 * layer reads channels-last. */
static void fold(const struct nn_net *e, const struct group *g, struct dim_infer_op *o,
                 float *params, bool prev_map)
{
    const struct nn_layer *l = &e->L[g->first];
    const struct nn_layer *bn = g->bn >= 0 ? &e->L[g->bn] : NULL;
    const float *W = e->params + l->w;
    const size_t OC = (size_t)l->oc;
    const size_t fan = o->conv ? (size_t)l->ic * l->cv.k * l->cv.k : o->in;
    float *w = params + o->w, *b = params + o->b;
    for (size_t oc = 0; oc < OC; oc++) {
        double s = 1.0, bias = l->bias ? (double)e->params[l->b + oc] : 0.0;
        if (bn) {
            s = (double)e->params[bn->w + oc] /
                sqrt((double)e->state[bn->rv + oc] + (double)NN_NORM_EPS);
            bias = (bias - (double)e->state[bn->rm + oc]) * s + (double)e->params[bn->b + oc];
        }
        b[oc] = (float)bias;
        const float *src = W + oc * fan;
        float *dst = w + oc * fan;
        if (o->conv) { /* (C, k, k) -> (k, k, C) */
            const size_t C = (size_t)l->ic, kk = (size_t)l->cv.k * l->cv.k;
            for (size_t c = 0; c < C; c++)
                for (size_t q = 0; q < kk; q++)
                    dst[q * C + c] = (float)((double)src[c * kk + q] * s);
        } else if (prev_map) { /* input (C, H, W) -> (H, W, C) */
            const size_t C = (size_t)l->ic, hw = (size_t)l->ih * l->iw;
            for (size_t c = 0; c < C; c++)
                for (size_t q = 0; q < hw; q++)
                    dst[q * C + c] = (float)((double)src[c * hw + q] * s);
        } else {
            for (size_t q = 0; q < fan; q++)
                dst[q] = (float)((double)src[q] * s);
        }
    }
}

int dim_infer_create(struct dim_infer **out, const struct dim_model *m, struct dim_err *err)
{
    *out = NULL;
    const struct nn_net *e = &m->enc;
    struct dim_infer *f = calloc(1, sizeof *f);
    if (!f)
        return dim_fail(err, DIM_ENOMEM, "out of memory for an inference form");
    struct group gs[NN_NET_MAX_LAYERS];
    f->in_c = e->in_c;
    f->in_h = e->in_h;
    f->in_w = e->in_w;
    for (int i = 0; i < e->n;) {
        const struct nn_layer *l = &e->L[i];
        if (l->op != NN_CONV && l->op != NN_LINEAR) {
            free(f);
            return dim_fail(err, DIM_EINVAL,
                            "encoder layer %d (%s) does not follow a convolution or linear "
                            "layer: cannot fold it",
                            i, op_name(l->op));
        }
        struct group g = {i, i, -1};
        if (!is_tap(m, g.last) && g.last + 1 < e->n && e->L[g.last + 1].op == NN_BN)
            g.bn = ++g.last;
        bool relu = false;
        if (!is_tap(m, g.last) && g.last + 1 < e->n && e->L[g.last + 1].op == NN_RELU) {
            relu = true;
            g.last++;
        }
        struct dim_infer_op *o = &f->op[f->n];
        o->conv = l->op == NN_CONV;
        o->cv = l->cv;
        o->in = (size_t)l->ic * l->ih * l->iw;
        o->out = nn_layer_out_size(l);
        o->relu = relu;
        o->w = f->n_params;
        f->n_params += (size_t)l->oc * (o->conv ? (size_t)l->ic * l->cv.k * l->cv.k : o->in);
        o->b = f->n_params;
        f->n_params += (size_t)l->oc;
        o->rows = o->conv ? nn_infer_conv_rows(&o->cv, DIM_INFER_BLOCK_FLOATS) : 0;
        gs[f->n++] = g;
        i = g.last + 1;
    }
    for (int t = 0; t < 4; t++) {
        f->tap_op[t] = -1;
        for (int k = 0; k < f->n; k++)
            if (gs[k].last == m->tap_layer[t])
                f->tap_op[t] = k;
        if (f->tap_op[t] < 0) {
            free(f);
            return dim_fail(err, DIM_EINVAL, "tap %s (layer %d) is inside a folded group",
                            dim_tap_name((enum dim_tap)t), m->tap_layer[t]);
        }
    }
    f->params = malloc(sizeof(float) * (f->n_params ? f->n_params : 1));
    if (!f->params) {
        size_t n = f->n_params;
        free(f);
        return dim_fail(err, DIM_ENOMEM, "out of memory for %zu folded parameters", n);
    }
    for (int k = 0; k < f->n; k++)
        fold(e, &gs[k], &f->op[k], f->params, k > 0 && f->op[k - 1].conv);
    *out = f;
    return 0;
}

void dim_infer_free(struct dim_infer *inf)
{
    if (!inf)
        return;
    free(inf->params);
    free(inf);
}

int dim_infer_ws_create(struct dim_infer_ws *ws, const struct dim_infer *inf, size_t cap,
                        struct dim_err *err)
{
    memset(ws, 0, sizeof *ws);
    if (cap == 0)
        return dim_fail(err, DIM_EINVAL, "encode batch capacity must be > 0");
    const int parts = dim_parallel_width();
    size_t total = 0, scratch = 0, tap = 0;
    for (int k = 0; k < inf->n; k++) {
        const struct dim_infer_op *o = &inf->op[k];
        if (cap > SIZE_MAX / 4 / (o->out + o->in + 1))
            return dim_fail(err, DIM_ENOMEM, "an encode workspace of %zu images is too large",
                            cap);
        total += cap * o->out;
        if (o->conv) {
            size_t s = nn_infer_conv_scratch_floats(&o->cv, o->rows, parts);
            scratch = s > scratch ? s : scratch;
            tap = cap * o->out > tap ? cap * o->out : tap;
        }
    }
    const bool need_x = inf->n > 0 && inf->op[0].conv && inf->in_c > 1;
    const size_t x = need_x ? cap * inf->op[0].in : 0;
    ws->slab = malloc(sizeof(float) * (total + scratch + tap + x + 1));
    if (!ws->slab)
        return dim_fail(err, DIM_ENOMEM, "out of memory for an encode workspace of %zu images",
                        cap);
    float *p = ws->slab;
    for (int k = 0; k < inf->n; k++) {
        ws->act[k] = p;
        p += cap * inf->op[k].out;
    }
    ws->scratch = p;
    p += scratch;
    ws->tap = p;
    p += tap;
    ws->x = need_x ? p : NULL;
    ws->cap = cap;
    ws->parts = parts;
    return 0;
}

void dim_infer_ws_free(struct dim_infer_ws *ws)
{
    free(ws->slab);
    memset(ws, 0, sizeof *ws);
}

const float *dim_infer_encode(const struct dim_infer *inf, struct dim_infer_ws *ws, const float *x,
                              size_t B, enum dim_tap tap)
{
    const float *cur = x;
    if (ws->x) {
        nn_nchw_to_nhwc(ws->x, x, B, (size_t)inf->in_c, (size_t)inf->in_h * inf->in_w);
        cur = ws->x;
    }
    const int last = inf->tap_op[tap];
    const float *P = inf->params;
    for (int k = 0; k <= last; k++) {
        const struct dim_infer_op *o = &inf->op[k];
        if (o->conv)
            nn_infer_conv_forward(ws->act[k], ws->scratch, cur, P + o->w, P + o->b, o->relu, &o->cv,
                                  o->rows, ws->parts, B);
        else
            nn_infer_linear_forward(ws->act[k], cur, P + o->w, P + o->b, o->relu, B, o->in,
                                    o->out);
        cur = ws->act[k];
    }
    const struct dim_infer_op *o = &inf->op[last];
    if (!o->conv)
        return cur;
    nn_nhwc_to_nchw(ws->tap, cur, B, (size_t)o->cv.OC, (size_t)o->cv.OH * o->cv.OW);
    return ws->tap;
}

/* probe.c - feature extraction and softmax probes. */
#include "eval/probe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/stats.h"
#include "nn/adam.h"
#include "nn/net.h"

void dim_probe_opts_default(struct dim_probe_opts *o)
{
    o->kind = DIM_PROBE_LINEAR;
    dim_linclass_opts_default(&o->linear);
    o->epochs = 20;
    o->lr = 1e-2f;
    o->batch = 256;
    o->seed = 7;
    o->cancel = NULL;
}

const char *dim_probe_kind_name(enum dim_probe_kind k)
{
    return k == DIM_PROBE_MLP ? "mlp" : "linear";
}

const char *dim_probe_row_name(int row)
{
    return row == DIM_PROBE_PIXELS ? "pixels" : dim_tap_name((enum dim_tap)row);
}

void dim_features_free(struct dim_features *f)
{
    for (int t = 0; t < DIM_N_PROBE_TAPS; t++)
        free(f->X[t]);
    free(f->labels);
    memset(f, 0, sizeof *f);
}

int dim_features_extract(const struct dim_model *m, const struct dim_dataset *ds,
                         const struct dim_preprocess *pp, struct dim_features *f,
                         struct dim_err *err)
{
    enum { CAP = 256 };
    memset(f, 0, sizeof *f);
    if (pp->c != m->cfg.in_c || pp->h != m->in_h || pp->w != m->in_w)
        return dim_fail(err, DIM_ESHAPE, "input %dx%dx%d does not match model input %dx%dx%d",
                        pp->c, pp->h, pp->w, m->cfg.in_c, m->in_h, m->in_w);
    struct dim_encode_ws ws;
    int rc = dim_encode_ws_create(&ws, m, CAP, err);
    if (rc)
        return rc;
    const size_t in_sz = (size_t)pp->c * pp->h * pp->w;
    float *x = malloc(sizeof(float) * CAP * in_sz);
    uint32_t *idx = malloc(sizeof(uint32_t) * CAP);
    f->n = ds->n;
    f->labels = malloc(sizeof(uint16_t) * (ds->n ? ds->n : 1));
    bool ok = x && idx && f->labels;
    for (int t = 0; t < DIM_N_PROBE_TAPS && ok; t++) {
        f->dim[t] = dim_model_tap_size(m, (enum dim_tap)t);
        f->X[t] = malloc(sizeof(float) * f->dim[t] * (ds->n ? ds->n : 1));
        ok = f->X[t] != NULL;
    }
    if (!ok) {
        free(x);
        free(idx);
        dim_encode_ws_free(&ws);
        dim_features_free(f);
        return dim_fail(err, DIM_ENOMEM, "out of memory for features of %zu images", ds->n);
    }
    for (size_t s = 0; s < ds->n; s += CAP) {
        size_t B = ds->n - s < CAP ? ds->n - s : CAP;
        for (size_t i = 0; i < B; i++)
            idx[i] = (uint32_t)(s + i);
        dim_dataset_batch(ds, idx, B, pp, NULL, x, f->labels + s);
        dim_model_encode(m, &ws, x, B, DIM_TAP_Y); /* runs every layer */
        for (int t = 0; t < DIM_N_PROBE_TAPS; t++)
            memcpy(f->X[t] + s * f->dim[t], ws.enc.act[m->tap_layer[t]],
                   sizeof(float) * B * f->dim[t]);
    }
    free(x);
    free(idx);
    dim_encode_ws_free(&ws);
    return 0;
}

/* Softmax cross-entropy over rows of logits (B, K): writes dlogits = (p - onehot) / B. */
static void softmax_xent_grad(float *dlogits, const float *logits, const uint16_t *y, size_t B,
                              size_t K)
{
    for (size_t i = 0; i < B; i++) {
        const float *z = logits + i * K;
        float *d = dlogits + i * K;
        float mx = z[0];
        for (size_t k = 1; k < K; k++)
            mx = z[k] > mx ? z[k] : mx;
        double s = 0.0;
        for (size_t k = 0; k < K; k++)
            s += exp((double)z[k] - mx);
        for (size_t k = 0; k < K; k++)
            d[k] = (float)(exp((double)z[k] - mx) / s / (double)B);
        d[y[i]] -= 1.0f / (float)B;
    }
}

static int mlp_run(float *Xtr, const uint16_t *ytr, size_t ntr, float *Xte, const uint16_t *yte,
                   size_t nte, size_t dim, int n_classes, const struct dim_probe_opts *o,
                   double *accuracy, struct dim_err *err)
{
    *accuracy = NAN;
    if (ntr == 0 || nte == 0 || dim == 0 || n_classes < 2 || o->batch == 0 || o->epochs < 1)
        return dim_fail(err, DIM_EINVAL, "probe needs train and test images, >= 2 classes, "
                        "batch > 0 and epochs >= 1");
    struct nn_net net;
    nn_net_init(&net, (int)dim, 1, 1);
    if (o->kind == DIM_PROBE_MLP) {
        nn_net_linear(&net, 200, true);
        nn_net_dropout(&net, 0.1f);
        nn_net_bn(&net);
        nn_net_relu(&net);
    }
    nn_net_linear(&net, n_classes, true);
    const size_t B = o->batch, P = net.n_params, K = (size_t)n_classes;
    const size_t wsn = nn_net_ws_floats(&net, B, true);
    float *params = calloc(4 * P + net.n_state + wsn, sizeof(float));
    uint16_t *yb = malloc(sizeof(uint16_t) * B);
    float *xb = malloc(sizeof(float) * B * dim);
    uint32_t *perm = malloc(sizeof(uint32_t) * ntr);
    if (!params || !yb || !xb || !perm) {
        free(params);
        free(yb);
        free(xb);
        free(perm);
        return dim_fail(err, DIM_ENOMEM, "out of memory for a probe on %zu features", dim);
    }
    float *grads = params + P, *mom = grads + P, *vel = mom + P, *state = vel + P;
    struct nn_net_ws ws;
    nn_net_ws_carve(&net, &ws, state + net.n_state, B, true);
    nn_net_bind(&net, params, grads, state);
    struct dim_rng rng;
    dim_rng_seed(&rng, o->seed, 0x9b0be);
    nn_net_init_params(&net, &rng);
    struct nn_adam adam = {o->lr, 0.9f, 0.999f, 1e-8f, 0};
    int rc = dim_stats_standardise(Xtr, ntr, Xte, nte, dim, err);
    if (rc) {
        free(params);
        free(yb);
        free(xb);
        free(perm);
        return rc;
    }
    for (size_t i = 0; i < ntr; i++)
        perm[i] = (uint32_t)i;
    for (int ep = 0; ep < o->epochs; ep++) {
        /* step schedule: lr, lr / 10 from the half, lr / 100 from three quarters */
        adam.lr = o->lr * (2 * ep >= o->epochs ? 0.1f : 1.0f) *
                  (4 * ep >= 3 * o->epochs ? 0.1f : 1.0f);
        dim_rng_shuffle(&rng, perm, ntr);
        for (size_t s = 0; s + 2 <= ntr; s += B) {
            if (o->cancel && atomic_load_explicit(o->cancel, memory_order_relaxed)) {
                free(params);
                free(yb);
                free(xb);
                free(perm);
                return dim_fail(err, DIM_ECANCELLED, "probe cancelled in epoch %d", ep);
            }
            size_t nb = ntr - s < B ? ntr - s : B;
            for (size_t i = 0; i < nb; i++) {
                memcpy(xb + i * dim, Xtr + (size_t)perm[s + i] * dim, sizeof(float) * dim);
                yb[i] = ytr[perm[s + i]];
            }
            nn_net_forward(&net, &ws, xb, nb, NN_TRAIN, &rng);
            nn_net_zero_dact(&net, &ws, nb);
            softmax_xent_grad(nn_net_dout(&net, &ws), nn_net_out(&net, &ws), yb, nb, K);
            memset(grads, 0, sizeof(float) * P);
            nn_net_backward(&net, &ws, xb, NULL, nb);
            nn_adam_update(&adam, params, grads, mom, vel, P);
        }
    }
    size_t correct = 0;
    for (size_t s = 0; s < nte; s += B) {
        size_t nb = nte - s < B ? nte - s : B;
        nn_net_forward(&net, &ws, Xte + s * dim, nb, NN_EVAL, NULL);
        const float *z = nn_net_out(&net, &ws);
        for (size_t i = 0; i < nb; i++) {
            size_t best = 0;
            for (size_t k = 1; k < K; k++)
                if (z[i * K + k] > z[i * K + best])
                    best = k;
            correct += best == yte[s + i];
        }
    }
    *accuracy = (double)correct / (double)nte;
    free(params);
    free(yb);
    free(xb);
    free(perm);
    return 0;
}

int dim_probe_run(float *Xtr, const uint16_t *ytr, size_t ntr, float *Xte, const uint16_t *yte,
                  size_t nte, size_t dim, int n_classes, const struct dim_probe_opts *o,
                  struct dim_linclass_result *r, struct dim_err *err)
{
    if (o->kind == DIM_PROBE_LINEAR) {
        struct dim_linclass_opts lo = o->linear;
        lo.loss = DIM_LINCLASS_SOFTMAX;
        struct dim_hooks h = {0};
        h.cancel = o->cancel;
        return dim_linclass_run(Xtr, ytr, ntr, Xte, yte, nte, dim, n_classes, &lo, &h, r, err);
    }
    memset(r, 0, sizeof *r);
    r->lambda = r->val_accuracy = r->gnorm = NAN;
    return mlp_run(Xtr, ytr, ntr, Xte, yte, nte, dim, n_classes, o, &r->accuracy, err);
}

int dim_probe_model(const struct dim_model *m, const struct dim_dataset *train,
                    const struct dim_dataset *test, const struct dim_probe_opts *o,
                    struct dim_linclass_result res[DIM_N_PROBE_TAPS], struct dim_err *err)
{
    const struct dim_preprocess pp = dim_model_preprocess(m);
    struct dim_features ftr, fte;
    memset(&ftr, 0, sizeof ftr);
    memset(&fte, 0, sizeof fte);
    int rc = dim_features_extract(m, train, &pp, &ftr, err);
    if (rc == 0)
        rc = dim_features_extract(m, test, &pp, &fte, err);
    for (int t = 0; t < DIM_N_PROBE_TAPS && rc == 0; t++) {
        rc = dim_probe_run(ftr.X[t], ftr.labels, ftr.n, fte.X[t], fte.labels, fte.n, ftr.dim[t],
                           train->n_classes, o, &res[t], err);
        if (rc) {
            struct dim_err inner = *err;
            dim_fail(err, rc, "tap %s: %s", dim_tap_name((enum dim_tap)t), inner.msg);
        }
    }
    dim_features_free(&ftr);
    dim_features_free(&fte);
    return rc;
}

int dim_pixels_extract(const struct dim_dataset *ds, const struct dim_preprocess *pp, float **X,
                       uint16_t **y, struct dim_err *err)
{
    enum { CAP = 256 };
    const size_t P = (size_t)pp->c * pp->h * pp->w, n = ds->n ? ds->n : 1;
    uint32_t idx[CAP];
    *X = malloc(sizeof(float) * n * P);
    *y = malloc(sizeof(uint16_t) * n);
    if (!*X || !*y) {
        free(*X);
        free(*y);
        *X = NULL;
        *y = NULL;
        return dim_fail(err, DIM_ENOMEM, "out of memory for the pixels of %zu images", ds->n);
    }
    for (size_t s = 0; s < ds->n; s += CAP) {
        size_t B = ds->n - s < CAP ? ds->n - s : CAP;
        for (size_t i = 0; i < B; i++)
            idx[i] = (uint32_t)(s + i);
        dim_dataset_batch(ds, idx, B, pp, NULL, *X + s * P, *y + s);
    }
    return 0;
}

int dim_probe_pixels(const struct dim_dataset *train, const struct dim_dataset *test,
                     const struct dim_preprocess *pp, const struct dim_probe_opts *o,
                     struct dim_linclass_result *r, struct dim_err *err)
{
    float *Xtr = NULL, *Xte = NULL;
    uint16_t *ytr = NULL, *yte = NULL;
    int rc = dim_pixels_extract(train, pp, &Xtr, &ytr, err);
    if (rc == 0)
        rc = dim_pixels_extract(test, pp, &Xte, &yte, err);
    if (rc == 0)
        rc = dim_probe_run(Xtr, ytr, train->n, Xte, yte, test->n,
                           (size_t)pp->c * pp->h * pp->w, train->n_classes, o, r, err);
    if (rc) {
        struct dim_err inner = *err;
        dim_fail(err, rc, "pixels: %s", inner.msg);
    }
    free(Xtr);
    free(Xte);
    free(ytr);
    free(yte);
    return rc;
}

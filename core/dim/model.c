/* model.c - presets, slab layout and initialisation of a DIM model. */
#include "dim/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/parallel.h"

void dim_config_default(struct dim_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->preset = DIM_BASIC32;
    cfg->in_c = 1;
    cfg->y_dim = 64;
    cfg->mi_dim = 512;
    cfg->estimator = DIM_JSD;
    cfg->alpha = 0.0f;
    cfg->beta = 1.0f;
    cfg->gamma = 0.1f;
    cfg->lr = 5e-4f;
    cfg->adam_beta1 = 0.5f;
    cfg->adam_beta2 = 0.999f;
    cfg->adam_eps = 1e-8f;
    cfg->lr_schedule = DIM_LR_CONSTANT;
    cfg->lr_warmup = 0;
    cfg->lr_final = 0.01f;
    cfg->lr_step_factor = 0.1f;
    cfg->lr_horizon = 0;
    cfg->batch = 64;
    cfg->seed = 1;
}

static const char *const preset_names[] = {"basic32x32", "basic28x28", "basic64x64"};
static const char *const tap_names[] = {"conv", "fc", "y", "local"};
static const char *const schedule_names[] = {"constant", "cosine", "step"};

const char *dim_lr_schedule_name(enum dim_lr_schedule s)
{
    return (unsigned)s < 3 ? schedule_names[s] : "?";
}

int dim_lr_schedule_parse(const char *name, enum dim_lr_schedule *out)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(name, schedule_names[i]) == 0) {
            *out = (enum dim_lr_schedule)i;
            return 0;
        }
    return -1;
}

bool dim_lr_varies(const struct dim_config *c)
{
    return c->lr_schedule != DIM_LR_CONSTANT || c->lr_warmup > 0;
}

void dim_config_resolve_lr(struct dim_config *c, uint64_t total_steps)
{
    if (c->lr_horizon == 0 && c->lr_schedule != DIM_LR_CONSTANT)
        c->lr_horizon = total_steps;
}

float dim_lr_at(const struct dim_config *c, uint64_t step)
{
    if (!dim_lr_varies(c))
        return c->lr;
    const uint64_t W = c->lr_warmup, H = c->lr_horizon;
    if (step < W)
        return (float)((double)c->lr * (double)(step + 1) / (double)W);
    if (c->lr_schedule == DIM_LR_CONSTANT || H == 0)
        return c->lr;
    double p = H > W ? (double)(step - W) / (double)(H - W) : 1.0;
    if (p > 1.0)
        p = 1.0;
    double f = 1.0;
    if (c->lr_schedule == DIM_LR_COSINE) {
        const double fin = c->lr_final;
        f = fin + (1.0 - fin) * 0.5 * (1.0 + cos(3.14159265358979323846 * p));
    } else {
        if (p >= 0.5)
            f *= c->lr_step_factor;
        if (p >= 0.75)
            f *= c->lr_step_factor;
    }
    return (float)((double)c->lr * f);
}

const char *dim_preset_name(enum dim_preset p)
{
    return (unsigned)p < 3 ? preset_names[p] : "?";
}

int dim_preset_parse(const char *name, enum dim_preset *out)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(name, preset_names[i]) == 0) {
            *out = (enum dim_preset)i;
            return 0;
        }
    return -1;
}

const char *dim_tap_name(enum dim_tap t)
{
    return (unsigned)t < 4 ? tap_names[t] : "?";
}

int dim_tap_parse(const char *name, enum dim_tap *out)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, tap_names[i]) == 0) {
            *out = (enum dim_tap)i;
            return 0;
        }
    return -1;
}

int dim_preset_size(enum dim_preset p)
{
    switch (p) {
    case DIM_BASIC32:
        return 32;
    case DIM_BASIC28:
        return 28;
    case DIM_BASIC64:
        return 64;
    }
    return 0;
}

static bool finite_in(float v, float lo, float hi)
{
    return isfinite(v) && v >= lo && v <= hi;
}

int dim_config_validate(const struct dim_config *c, struct dim_err *err)
{
    if ((unsigned)c->preset > DIM_BASIC64)
        return dim_fail(err, DIM_EINVAL, "preset %d is not one of basic32x32, basic28x28, basic64x64",
                        (int)c->preset);
    if (c->in_c != 1 && c->in_c != 3)
        return dim_fail(err, DIM_EINVAL, "channels %d must be 1 or 3", c->in_c);
    if (c->y_dim < 1 || c->y_dim > 4096)
        return dim_fail(err, DIM_EINVAL, "y_dim %d must be in [1, 4096]", c->y_dim);
    if (c->mi_dim < 1 || c->mi_dim > 8192)
        return dim_fail(err, DIM_EINVAL, "mi_dim %d must be in [1, 8192]", c->mi_dim);
    if ((unsigned)c->estimator > DIM_DV)
        return dim_fail(err, DIM_EINVAL, "estimator %d is not one of jsd, nce, dv",
                        (int)c->estimator);
    if (!finite_in(c->alpha, 0, 1e6f) || !finite_in(c->beta, 0, 1e6f) ||
        !finite_in(c->gamma, 0, 1e6f))
        return dim_fail(err, DIM_EINVAL, "loss weights alpha %g, beta %g, gamma %g must be >= 0",
                        (double)c->alpha, (double)c->beta, (double)c->gamma);
    if (c->alpha == 0 && c->beta == 0)
        return dim_fail(err, DIM_EINVAL, "alpha and beta are both 0: nothing to maximise");
    if (!finite_in(c->lr, 1e-12f, 1.0f))
        return dim_fail(err, DIM_EINVAL, "lr %g must be in (0, 1]", (double)c->lr);
    if (!finite_in(c->adam_beta1, 0, 0.999999f) || !finite_in(c->adam_beta2, 0, 0.9999999f))
        return dim_fail(err, DIM_EINVAL, "adam betas (%g, %g) must be in [0, 1)",
                        (double)c->adam_beta1, (double)c->adam_beta2);
    if (!finite_in(c->adam_eps, 1e-30f, 1.0f))
        return dim_fail(err, DIM_EINVAL, "adam_eps %g must be in (0, 1]", (double)c->adam_eps);
    if ((unsigned)c->lr_schedule > DIM_LR_STEP)
        return dim_fail(err, DIM_EINVAL, "lr_schedule %d is not one of constant, cosine, step",
                        (int)c->lr_schedule);
    if (!finite_in(c->lr_final, 0, 1.0f))
        return dim_fail(err, DIM_EINVAL, "lr_final %g must be in [0, 1] (a fraction of lr)",
                        (double)c->lr_final);
    if (!finite_in(c->lr_step_factor, 1e-6f, 1.0f))
        return dim_fail(err, DIM_EINVAL, "lr_step_factor %g must be in [1e-06, 1]",
                        (double)c->lr_step_factor);
    if (c->lr_warmup > DIM_LR_STEPS_MAX || c->lr_horizon > DIM_LR_STEPS_MAX)
        return dim_fail(err, DIM_EINVAL, "lr_warmup %llu and lr_horizon %llu must be at most %.0f",
                        (unsigned long long)c->lr_warmup, (unsigned long long)c->lr_horizon,
                        (double)DIM_LR_STEPS_MAX);
    if (c->lr_horizon > 0 && c->lr_warmup > c->lr_horizon)
        return dim_fail(err, DIM_EINVAL,
                        "lr_warmup %llu is longer than lr_horizon %llu (the steps the schedule "
                        "spans)",
                        (unsigned long long)c->lr_warmup, (unsigned long long)c->lr_horizon);
    if (c->batch < 2 || c->batch > DIM_BATCH_MAX)
        return dim_fail(err, DIM_EINVAL, "batch %u must be in [2, %d] (negatives need 2)",
                        c->batch, DIM_BATCH_MAX);
    return 0;
}

/* Appends conv -> BN -> ReLU. */
static void conv_block(struct nn_net *n, int oc, int k, int s, int p)
{
    nn_net_conv(n, oc, k, s, p, false);
    nn_net_bn(n);
    nn_net_relu(n);
}

static void build_encoder(struct dim_model *m)
{
    const struct dim_config *c = &m->cfg;
    int size = dim_preset_size(c->preset);
    struct nn_net *e = &m->enc;
    m->in_h = m->in_w = size;
    nn_net_init(e, c->in_c, size, size);
    switch (c->preset) {
    case DIM_BASIC32:
        conv_block(e, 64, 4, 2, 1);
        conv_block(e, 128, 4, 2, 1);
        m->tap_layer[DIM_TAP_LOCAL] = e->n - 1;
        conv_block(e, 256, 4, 2, 1);
        m->tap_layer[DIM_TAP_CONV] = e->n - 1;
        break;
    case DIM_BASIC28:
        conv_block(e, 64, 5, 2, 2);
        conv_block(e, 128, 5, 2, 2);
        m->tap_layer[DIM_TAP_LOCAL] = e->n - 1;
        m->tap_layer[DIM_TAP_CONV] = e->n - 1;
        break;
    case DIM_BASIC64:
        conv_block(e, 64, 4, 2, 1);
        conv_block(e, 128, 4, 2, 1);
        conv_block(e, 256, 4, 2, 1);
        m->tap_layer[DIM_TAP_LOCAL] = e->n - 1;
        conv_block(e, 512, 4, 2, 1);
        m->tap_layer[DIM_TAP_CONV] = e->n - 1;
        break;
    }
    nn_net_linear(e, 1024, false);
    nn_net_bn(e);
    nn_net_relu(e);
    m->tap_layer[DIM_TAP_FC] = e->n - 1;
    nn_net_linear(e, c->y_dim, true);
    m->tap_layer[DIM_TAP_Y] = e->n - 1;
    const struct nn_layer *lm = &e->L[m->tap_layer[DIM_TAP_LOCAL]];
    m->local_c = lm->oc;
    m->local_h = lm->oh;
    m->local_w = lm->ow;
}

static int build(struct dim_model *m)
{
    const struct dim_config *c = &m->cfg;
    build_encoder(m);
    if (m->enc.bad)
        return -1;
    m->has_local = c->beta > 0;
    m->has_global = c->alpha > 0;
    m->has_prior = c->gamma > 0;
    if (m->has_local && (dim_minet_init(&m->lmi, m->local_c, c->mi_dim) != 0 ||
                         dim_minet_init(&m->gmi, c->y_dim, c->mi_dim) != 0))
        return -1;
    if (m->has_global) {
        nn_net_init(&m->gc_conv, m->local_c, m->local_h, m->local_w);
        nn_net_conv(&m->gc_conv, 64, 3, 1, 0, true);
        nn_net_relu(&m->gc_conv);
        nn_net_conv(&m->gc_conv, 32, 3, 1, 0, true);
        nn_net_linear(&m->gc_conv, 512, true);
        nn_net_init(&m->gc_y, c->y_dim, 1, 1);
        nn_net_linear(&m->gc_y, 512, false);
        nn_net_init(&m->gc_head, 512, 1, 1);
        nn_net_relu(&m->gc_head);
        nn_net_linear(&m->gc_head, 512, true);
        nn_net_relu(&m->gc_head);
        nn_net_linear(&m->gc_head, 1, true);
        if (m->gc_conv.bad || m->gc_y.bad || m->gc_head.bad)
            return -1;
    }
    if (m->has_prior) {
        nn_net_init(&m->prior, c->y_dim, 1, 1);
        nn_net_linear(&m->prior, 1000, true);
        nn_net_relu(&m->prior);
        nn_net_linear(&m->prior, 200, true);
        nn_net_relu(&m->prior);
        nn_net_linear(&m->prior, 1, true);
    }
    return 0;
}

/* Binds every net of m to consecutive ranges of its slabs. Order is the
 * checkpoint's layout; never reorder. */
static void layout(struct dim_model *m, bool bind)
{
    size_t p = 0, s = 0;
#define PLACE(net)                                                                          \
    do {                                                                                    \
        if (bind)                                                                           \
            nn_net_bind(&(net), m->main_params + p, m->main_grads ? m->main_grads + p : NULL, \
                        m->state + s);                                                      \
        p += (net).n_params;                                                                \
        s += (net).n_state;                                                                 \
    } while (0)
#define PLACE_MI(mi)                                                                         \
    do {                                                                                     \
        if (bind)                                                                            \
            dim_minet_bind(&(mi), m->main_params + p, m->main_grads ? m->main_grads + p : NULL, \
                           m->state + s);                                                    \
        p += (mi).n_params;                                                                  \
        s += (mi).n_state;                                                                   \
    } while (0)
    PLACE(m->enc);
    if (m->has_local) {
        PLACE_MI(m->lmi);
        PLACE_MI(m->gmi);
    }
    if (m->has_global) {
        PLACE(m->gc_conv);
        PLACE(m->gc_y);
        PLACE(m->gc_head);
    }
#undef PLACE
#undef PLACE_MI
    m->n_main = p;
    m->n_state = s;
    m->n_prior = m->has_prior ? m->prior.n_params : 0;
    if (bind && m->has_prior)
        nn_net_bind(&m->prior, m->prior_params, m->prior_grads, m->state);
}

static float *alloc_floats(size_t n)
{
    return calloc(n ? n : 1, sizeof(float));
}

int dim_model_create(struct dim_model **out, const struct dim_config *cfg, bool training,
                     struct dim_err *err)
{
    *out = NULL;
    int rc = dim_config_validate(cfg, err);
    if (rc)
        return rc;
    struct dim_model *m = calloc(1, sizeof *m);
    if (!m)
        return dim_fail(err, DIM_ENOMEM, "out of memory for the model");
    m->cfg = *cfg;
    m->training = training;
    if (build(m) != 0) {
        free(m);
        return dim_fail(err, DIM_EINVAL, "preset %s cannot be built with these sizes",
                        dim_preset_name(cfg->preset));
    }
    layout(m, false);
    m->main_params = alloc_floats(m->n_main);
    m->state = alloc_floats(m->n_state);
    m->prior_params = alloc_floats(m->n_prior);
    bool ok = m->main_params && m->state && m->prior_params;
    if (training) {
        m->main_grads = alloc_floats(m->n_main);
        m->main_m = alloc_floats(m->n_main);
        m->main_v = alloc_floats(m->n_main);
        m->prior_grads = alloc_floats(m->n_prior);
        m->prior_m = alloc_floats(m->n_prior);
        m->prior_v = alloc_floats(m->n_prior);
        ok = ok && m->main_grads && m->main_m && m->main_v && m->prior_grads && m->prior_m &&
             m->prior_v;
    }
    if (!ok) {
        size_t n = m->n_main + m->n_prior;
        dim_model_free(m);
        return dim_fail(err, DIM_ENOMEM, "out of memory for %zu model parameters", n);
    }
    layout(m, true);
    struct nn_adam a = {cfg->lr, cfg->adam_beta1, cfg->adam_beta2, cfg->adam_eps, 0};
    m->opt_main = a;
    m->opt_prior = a;
    struct dim_rng rng;
    dim_rng_seed(&rng, cfg->seed, 0x1d1);
    dim_model_init_params(m, &rng);
    *out = m;
    return 0;
}

struct dim_preprocess dim_model_preprocess(const struct dim_model *m)
{
    struct dim_preprocess pp = {m->cfg.in_c, m->in_h, m->in_w, 0, 0};
    return pp;
}

void dim_model_free(struct dim_model *m)
{
    if (!m)
        return;
    free(m->main_params);
    free(m->main_grads);
    free(m->main_m);
    free(m->main_v);
    free(m->prior_params);
    free(m->prior_grads);
    free(m->prior_m);
    free(m->prior_v);
    free(m->state);
    free(m);
}

void dim_model_init_params(struct dim_model *m, struct dim_rng *rng)
{
    nn_net_init_params(&m->enc, rng);
    if (m->has_local) {
        dim_minet_init_params(&m->lmi, rng);
        dim_minet_init_params(&m->gmi, rng);
    }
    if (m->has_global) {
        nn_net_init_params(&m->gc_conv, rng);
        nn_net_init_params(&m->gc_y, rng);
        nn_net_init_params(&m->gc_head, rng);
    }
    if (m->has_prior)
        nn_net_init_params(&m->prior, rng);
    if (m->training) {
        memset(m->main_m, 0, sizeof(float) * m->n_main);
        memset(m->main_v, 0, sizeof(float) * m->n_main);
        memset(m->prior_m, 0, sizeof(float) * m->n_prior);
        memset(m->prior_v, 0, sizeof(float) * m->n_prior);
        m->opt_main.t = m->opt_prior.t = 0;
        dim_model_zero_grads(m);
    }
}

void dim_model_zero_grads(struct dim_model *m)
{
    if (!m->training)
        return;
    dim_parallel_zero(m->main_grads, m->n_main);
    dim_parallel_zero(m->prior_grads, m->n_prior);
}

size_t dim_model_tap_size(const struct dim_model *m, enum dim_tap t)
{
    return nn_layer_out_size(&m->enc.L[m->tap_layer[t]]);
}

size_t dim_model_encoder_params(const struct dim_model *m)
{
    return m->enc.n_params;
}

int dim_encode_ws_create(struct dim_encode_ws *ws, const struct dim_model *m, size_t cap,
                         struct dim_err *err)
{
    memset(ws, 0, sizeof *ws);
    if (cap == 0)
        return dim_fail(err, DIM_EINVAL, "encode batch capacity must be > 0");
    size_t n = nn_net_ws_floats(&m->enc, cap, false);
    ws->slab = malloc(sizeof(float) * n);
    if (!ws->slab)
        return dim_fail(err, DIM_ENOMEM, "out of memory for an encode workspace of %zu images",
                        cap);
    ws->cap = cap;
    nn_net_ws_carve(&m->enc, &ws->enc, ws->slab, cap, false);
    return 0;
}

void dim_encode_ws_free(struct dim_encode_ws *ws)
{
    free(ws->slab);
    memset(ws, 0, sizeof *ws);
}

const float *dim_model_encode(const struct dim_model *m, struct dim_encode_ws *ws,
                              const float *x, size_t B, enum dim_tap tap)
{
    nn_net_forward(&m->enc, &ws->enc, x, B, NN_EVAL, NULL);
    return ws->enc.act[m->tap_layer[tap]];
}

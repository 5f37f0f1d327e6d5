/* test_model.c - dim/model: the presets' shapes (dim-algorithm.md section 5),
 * which critics exist for which loss weights, the slab layout, config
 * validation naming each bad field, inference encoding (batch = one by one,
 * deterministic, read-only) and seeded initialisation. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dim/model.h"
#include "gradcheck.h"

/* A small valid config: tests change what they study. */
static struct dim_config small_config(enum dim_preset p, int in_c)
{
    struct dim_config c;
    dim_config_default(&c);
    c.preset = p;
    c.in_c = in_c;
    c.mi_dim = 16;
    return c;
}

static struct dim_model *create(const struct dim_config *c, bool training)
{
    struct dim_model *m = NULL;
    struct dim_err err = {0};
    int rc = dim_model_create(&m, c, training, &err);
    if (rc != 0)
        fail_msg("dim_model_create: %d %s", rc, err.msg);
    assert_non_null(m);
    return m;
}

static void assert_tap(const struct dim_model *m, enum dim_tap t, int c, int h, int w)
{
    const struct nn_layer *l = &m->enc.L[m->tap_layer[t]];
    if (l->oc != c || l->oh != h || l->ow != w)
        fail_msg("%s %s tap is %dx%dx%d, want %dx%dx%d", dim_preset_name(m->cfg.preset),
                 dim_tap_name(t), l->oc, l->oh, l->ow, c, h, w);
    assert_int_equal(dim_model_tap_size(m, t), (size_t)c * h * w);
}

/* conv -> BN -> ReLU blocks, then linear 1024 (BN, ReLU), then linear y_dim */
static void assert_encoder_structure(const struct dim_model *m, int n_conv, int k, int s, int p)
{
    const struct nn_net *e = &m->enc;
    assert_int_equal(e->n, 3 * n_conv + 4);
    for (int b = 0; b < n_conv; b++) {
        const struct nn_layer *cv = &e->L[3 * b];
        assert_int_equal(cv->op, NN_CONV);
        assert_int_equal(cv->cv.k, k);
        assert_int_equal(cv->cv.s, s);
        assert_int_equal(cv->cv.p, p);
        assert_false(cv->bias); /* followed by BN */
        assert_int_equal(e->L[3 * b + 1].op, NN_BN);
        assert_int_equal(e->L[3 * b + 2].op, NN_RELU);
    }
    const int f = 3 * n_conv;
    assert_int_equal(e->L[f].op, NN_LINEAR);
    assert_false(e->L[f].bias);
    assert_int_equal(e->L[f + 1].op, NN_BN);
    assert_int_equal(e->L[f + 2].op, NN_RELU);
    assert_int_equal(e->L[f + 3].op, NN_LINEAR);
    assert_true(e->L[f + 3].bias);
    assert_int_equal(m->tap_layer[DIM_TAP_FC], f + 2);
    assert_int_equal(m->tap_layer[DIM_TAP_Y], f + 3); /* Y: no activation */
}

static void test_preset_shapes(void **state)
{
    (void)state;
    for (int in_c = 1; in_c <= 3; in_c += 2) {
        struct dim_config c = small_config(DIM_BASIC32, in_c);
        struct dim_model *m = create(&c, false);
        assert_int_equal(m->in_h, 32);
        assert_int_equal(m->in_w, 32);
        assert_int_equal(nn_net_in_size(&m->enc), (size_t)in_c * 32 * 32);
        assert_int_equal(m->enc.L[0].ic, in_c);
        assert_encoder_structure(m, 3, 4, 2, 1);
        assert_int_equal(m->enc.L[0].oc, 64);
        assert_tap(m, DIM_TAP_LOCAL, 128, 8, 8);
        assert_tap(m, DIM_TAP_CONV, 256, 4, 4);
        assert_tap(m, DIM_TAP_FC, 1024, 1, 1);
        assert_tap(m, DIM_TAP_Y, 64, 1, 1);
        assert_int_equal(m->local_c, 128);
        assert_int_equal(m->local_h, 8);
        assert_int_equal(m->local_w, 8);
        dim_model_free(m);

        c = small_config(DIM_BASIC28, in_c);
        m = create(&c, false);
        assert_int_equal(m->in_h, 28);
        assert_int_equal(nn_net_in_size(&m->enc), (size_t)in_c * 28 * 28);
        assert_encoder_structure(m, 2, 5, 2, 2);
        assert_int_equal(m->enc.L[0].oc, 64);
        assert_tap(m, DIM_TAP_LOCAL, 128, 7, 7);
        assert_tap(m, DIM_TAP_CONV, 128, 7, 7);
        assert_tap(m, DIM_TAP_FC, 1024, 1, 1);
        assert_tap(m, DIM_TAP_Y, 64, 1, 1);
        dim_model_free(m);

        c = small_config(DIM_BASIC64, in_c);
        m = create(&c, false);
        assert_int_equal(m->in_h, 64);
        assert_int_equal(nn_net_in_size(&m->enc), (size_t)in_c * 64 * 64);
        assert_encoder_structure(m, 4, 4, 2, 1);
        assert_int_equal(m->enc.L[0].oc, 64);
        assert_int_equal(m->enc.L[3].oc, 128);
        assert_tap(m, DIM_TAP_LOCAL, 256, 8, 8);
        assert_tap(m, DIM_TAP_CONV, 512, 4, 4);
        assert_tap(m, DIM_TAP_FC, 1024, 1, 1);
        assert_tap(m, DIM_TAP_Y, 64, 1, 1);
        dim_model_free(m);
    }
    assert_int_equal(dim_preset_size(DIM_BASIC32), 32);
    assert_int_equal(dim_preset_size(DIM_BASIC28), 28);
    assert_int_equal(dim_preset_size(DIM_BASIC64), 64);
}

static void test_y_dim_and_mi_dim(void **state)
{
    (void)state;
    const int ys[] = {1, 100};
    for (size_t k = 0; k < 2; k++) {
        struct dim_config c = small_config(DIM_BASIC28, 1);
        c.y_dim = ys[k];
        c.mi_dim = 24;
        c.alpha = 0.5f;
        c.gamma = 0.1f;
        struct dim_model *m = create(&c, false);
        assert_tap(m, DIM_TAP_Y, ys[k], 1, 1);
        /* everything that reads Y is sized by y_dim; the MI nets by mi_dim */
        assert_int_equal(m->gmi.cin, ys[k]);
        assert_int_equal(m->gmi.D, 24);
        assert_int_equal(m->lmi.cin, 128);
        assert_int_equal(m->lmi.D, 24);
        assert_int_equal(m->gc_y.in_c, ys[k]);
        assert_int_equal(m->prior.in_c, ys[k]);
        assert_int_equal(nn_net_in_size(&m->prior), (size_t)ys[k]);
        dim_model_free(m);
    }
}

/* Which nets exist follows alpha (global critic), beta (local MI nets), gamma
 * (prior); n_main is exactly the encoder plus the present critics. */
static void test_critics_follow_weights(void **state)
{
    (void)state;
    const float w[][3] = {
        {0, 1, 0.1f},
        {1, 0, 1},
        {0.5f, 0.1f, 0.1f},
        {2, 3, 0},
    };
    for (size_t k = 0; k < sizeof w / sizeof w[0]; k++) {
        struct dim_config c = small_config(DIM_BASIC28, 1);
        c.alpha = w[k][0];
        c.beta = w[k][1];
        c.gamma = w[k][2];
        const bool training = k == 2; /* slabs of 4 x 6.4M floats: one is enough */
        struct dim_model *m = create(&c, training);
        assert_int_equal(m->has_global, c.alpha > 0);
        assert_int_equal(m->has_local, c.beta > 0);
        assert_int_equal(m->has_prior, c.gamma > 0);
        size_t want = m->enc.n_params;
        size_t want_state = m->enc.n_state;
        if (m->has_local) {
            want += m->lmi.n_params + m->gmi.n_params;
            want_state += m->lmi.n_state + m->gmi.n_state;
        }
        if (m->has_global) {
            want += m->gc_conv.n_params + m->gc_y.n_params + m->gc_head.n_params;
            /* map -> conv3x3 64 -> relu -> conv3x3 32 -> linear 512; Y -> 512; head -> 1 */
            assert_int_equal(nn_net_out_size(&m->gc_conv), 512);
            assert_int_equal(nn_net_out_size(&m->gc_y), 512);
            assert_int_equal(nn_net_out_size(&m->gc_head), 1);
            assert_int_equal(m->gc_conv.L[0].oc, 64);
            assert_int_equal(m->gc_conv.L[0].cv.k, 3);
            assert_int_equal(m->gc_conv.L[2].oc, 32);
            assert_int_equal(m->gc_conv.L[2].oh, 3); /* 7 -> 5 -> 3, valid convs */
        }
        assert_int_equal(m->n_main, want);
        assert_int_equal(m->n_state, want_state);
        assert_int_equal(dim_model_encoder_params(m), m->enc.n_params);
        if (m->has_prior) {
            /* y_dim -> 1000 -> 200 -> 1 */
            assert_int_equal(m->prior.L[0].oc, 1000);
            assert_int_equal(m->prior.L[2].oc, 200);
            assert_int_equal(nn_net_out_size(&m->prior), 1);
            assert_int_equal(m->n_prior, m->prior.n_params);
            assert_int_equal(m->n_prior, 64 * 1000 + 1000 + 1000 * 200 + 200 + 200 + 1);
        } else {
            assert_int_equal(m->n_prior, 0);
        }
        /* the nets are bound to consecutive ranges of the main slab, in layout order */
        assert_ptr_equal(m->enc.params, m->main_params);
        if (m->has_local) {
            assert_ptr_equal(m->lmi.params, m->main_params + m->enc.n_params);
            assert_ptr_equal(m->gmi.params, m->lmi.params + m->lmi.n_params);
            if (training)
                assert_ptr_equal(m->lmi.grads, m->main_grads + m->enc.n_params);
        }
        if (m->has_global)
            assert_ptr_equal(m->gc_head.params + m->gc_head.n_params, m->main_params + m->n_main);
        if (training) {
            assert_non_null(m->main_grads);
            assert_non_null(m->main_m);
            assert_non_null(m->main_v);
        }
        assert_int_equal(m->training, training);
        dim_model_free(m);
    }
    /* an inference-only model has no gradients or moments */
    struct dim_config c = small_config(DIM_BASIC28, 1);
    struct dim_model *m = create(&c, false);
    assert_false(m->training);
    assert_null(m->main_grads);
    assert_null(m->main_m);
    assert_null(m->prior_grads);
    dim_model_free(m);
}

/* Each bad field is refused with DIM_EINVAL and a message naming it. */
static void test_validate(void **state)
{
    (void)state;
    struct dim_config def;
    dim_config_default(&def);
    struct dim_err err = {0};
    assert_int_equal(dim_config_validate(&def, &err), 0);
    /* the documented defaults */
    assert_int_equal(def.preset, DIM_BASIC32);
    assert_int_equal(def.in_c, 1);
    assert_int_equal(def.y_dim, 64);
    assert_int_equal(def.mi_dim, 512);
    assert_int_equal(def.estimator, DIM_JSD);
    assert_true(def.alpha == 0.0f && def.beta == 1.0f && def.gamma == 0.1f);
    assert_true(def.lr == 5e-4f && def.adam_beta1 == 0.5f && def.adam_beta2 == 0.999f &&
                def.adam_eps == 1e-8f);
    assert_int_equal(def.batch, 64);
    assert_int_equal(def.lr_schedule, DIM_LR_CONSTANT);
    assert_true(def.lr_warmup == 0 && def.lr_horizon == 0);

    struct {
        const char *field; /* what the message must name */
        struct dim_config c;
    } bad[40];
    size_t n = 0;
#define BAD(name, stmt)                                                                            \
    do {                                                                                           \
        bad[n].field = name;                                                                       \
        bad[n].c = def;                                                                            \
        struct dim_config *c = &bad[n].c;                                                          \
        stmt;                                                                                      \
        n++;                                                                                       \
    } while (0)
    BAD("preset", c->preset = (enum dim_preset)3);
    BAD("preset", c->preset = (enum dim_preset) - 1);
    BAD("channels", c->in_c = 2);
    BAD("channels", c->in_c = 0);
    BAD("channels", c->in_c = 4);
    BAD("y_dim", c->y_dim = 0);
    BAD("y_dim", c->y_dim = 4097);
    BAD("mi_dim", c->mi_dim = 0);
    BAD("mi_dim", c->mi_dim = -5);
    BAD("mi_dim", c->mi_dim = 8193);
    BAD("estimator", c->estimator = (enum dim_estimator)3);
    BAD("alpha", c->alpha = -0.5f);
    BAD("alpha", c->alpha = NAN);
    BAD("beta", c->beta = INFINITY);
    BAD("gamma", c->gamma = -1.0f);
    BAD("alpha and beta", (c->alpha = 0, c->beta = 0));
    BAD("lr", c->lr = 0);
    BAD("lr", c->lr = -1e-4f);
    BAD("lr", c->lr = NAN);
    BAD("lr", c->lr = 2.0f);
    BAD("adam betas", c->adam_beta1 = 1.0f);
    BAD("adam betas", c->adam_beta2 = -0.1f);
    BAD("adam betas", c->adam_beta2 = NAN);
    BAD("adam_eps", c->adam_eps = 0);
    BAD("adam_eps", c->adam_eps = NAN);
    BAD("batch", c->batch = 0);
    BAD("batch", c->batch = 1);
    BAD("batch", c->batch = 4097);
    BAD("lr_schedule", c->lr_schedule = (enum dim_lr_schedule)3);
    BAD("lr_final", c->lr_final = -0.01f);
    BAD("lr_final", c->lr_final = 1.5f);
    BAD("lr_final", c->lr_final = NAN);
    BAD("lr_step_factor", c->lr_step_factor = 0);
    BAD("lr_step_factor", c->lr_step_factor = 1.01f);
    BAD("lr_warmup", (c->lr_warmup = 101, c->lr_horizon = 100));
    BAD("lr_warmup", c->lr_warmup = DIM_LR_STEPS_MAX + 1);
    BAD("lr_horizon", c->lr_horizon = DIM_LR_STEPS_MAX + 1);
#undef BAD
    for (size_t k = 0; k < n; k++) {
        memset(&err, 0, sizeof err);
        int rc = dim_config_validate(&bad[k].c, &err);
        if (rc != DIM_EINVAL)
            fail_msg("case %zu (%s): validate gave %d", k, bad[k].field, rc);
        assert_int_equal(err.code, DIM_EINVAL);
        if (!strstr(err.msg, bad[k].field))
            fail_msg("case %zu: message '%s' does not name '%s'", k, err.msg, bad[k].field);
        /* dim_model_create refuses it the same way, leaving *out NULL */
        struct dim_model *m = (struct dim_model *)&err;
        assert_int_equal(dim_model_create(&m, &bad[k].c, false, NULL), DIM_EINVAL);
        assert_null(m);
    }
    /* the value is in the message too */
    struct dim_config c = def;
    c.batch = 1;
    dim_config_validate(&c, &err);
    assert_non_null(strstr(err.msg, "batch 1"));
    c = def;
    c.in_c = 2;
    dim_config_validate(&c, &err);
    assert_non_null(strstr(err.msg, "channels 2"));
    c = def;
    c.lr_warmup = 500;
    c.lr_horizon = 100;
    dim_config_validate(&c, &err);
    assert_non_null(strstr(err.msg, "lr_warmup 500 is longer than lr_horizon 100"));
    /* warm-up as long as the horizon, and warm-up with the horizon unresolved, are valid */
    c.lr_horizon = 500;
    assert_int_equal(dim_config_validate(&c, &err), 0);
    c.lr_horizon = 0;
    assert_int_equal(dim_config_validate(&c, &err), 0);
}

static bool near(double got, double want)
{
    return fabs(got - want) <= 1e-6 * fabs(want) + 1e-12;
}
#define ASSERT_LR(cfg, step, want)                                                                     do {                                                                                                   double got_ = dim_lr_at(cfg, step), want_ = (want);                                               if (!near(got_, want_))                                                                                fail_msg("step %llu: lr %.9g, want %.9g", (unsigned long long)(step), got_, want_);       } while (0)

/* The schedule's values: warm-up ramp, cosine midpoint and end, step drops, constant
 * unchanged; and the lr is a function of (config, step) alone. */
static void test_lr_schedule(void **state)
{
    (void)state;
    struct dim_config c;
    dim_config_default(&c);
    c.lr = 1e-3f;
    const double lr = c.lr;
    /* constant without warm-up: cfg.lr itself (bit for bit) at any step, horizon or not */
    for (uint64_t t = 0; t < 3000; t += 7)
        assert_true(dim_lr_at(&c, t) == c.lr);
    c.lr_horizon = 100;
    assert_true(dim_lr_at(&c, 99) == c.lr && dim_lr_at(&c, 1000000) == c.lr);
    assert_false(dim_lr_varies(&c));

    /* constant with a warm-up of 10: lr/10, 2lr/10, ... lr at step 9, then lr */
    c.lr_warmup = 10;
    assert_true(dim_lr_varies(&c));
    ASSERT_LR(&c, 0, lr / 10);
    ASSERT_LR(&c, 4, lr * 5 / 10);
    ASSERT_LR(&c, 9, lr);
    ASSERT_LR(&c, 10, lr);
    ASSERT_LR(&c, 5000, lr);

    /* cosine over 110 steps after 10 of warm-up, to 1 % of lr */
    c.lr_schedule = DIM_LR_COSINE;
    c.lr_final = 0.01f;
    c.lr_horizon = 110;
    const double f = c.lr_final;
    ASSERT_LR(&c, 0, lr / 10);
    ASSERT_LR(&c, 9, lr);
    ASSERT_LR(&c, 10, lr); /* the decay starts at full lr */
    ASSERT_LR(&c, 60, lr * (f + (1 - f) * 0.5)); /* midpoint: halfway between lr and lr * f */
    ASSERT_LR(&c, 35, lr * (f + (1 - f) * 0.5 * (1 + cos(M_PI * 0.25))));
    ASSERT_LR(&c, 110, lr * f); /* the horizon */
    ASSERT_LR(&c, 10000, lr * f); /* past it: stays at the end value */
    for (uint64_t t = 10; t < 110; t++) /* decreasing through the decay */
        assert_true(dim_lr_at(&c, t + 1) < dim_lr_at(&c, t));
    c.lr_final = 0;
    ASSERT_LR(&c, 110, 0);
    ASSERT_LR(&c, 60, lr * 0.5);
    /* without warm-up the cosine starts at lr at step 0 */
    c.lr_warmup = 0;
    c.lr_horizon = 100;
    ASSERT_LR(&c, 0, lr);
    ASSERT_LR(&c, 50, lr * 0.5);
    ASSERT_LR(&c, 75, lr * 0.5 * (1 + cos(M_PI * 0.75)));
    /* an unresolved horizon does not decay */
    c.lr_horizon = 0;
    ASSERT_LR(&c, 50, lr);
    dim_config_resolve_lr(&c, 100);
    assert_int_equal(c.lr_horizon, 100);
    ASSERT_LR(&c, 50, lr * 0.5);
    dim_config_resolve_lr(&c, 999); /* resolved once: a set horizon stays */
    assert_int_equal(c.lr_horizon, 100);
    struct dim_config cst = c; /* a constant lr needs no horizon: it stays 0 */
    cst.lr_schedule = DIM_LR_CONSTANT;
    cst.lr_horizon = 0;
    dim_config_resolve_lr(&cst, 100);
    assert_int_equal(cst.lr_horizon, 0);

    /* step: x0.1 at 50 % and 75 % of the decay (steps 20..100 after a 20-step warm-up) */
    c.lr_schedule = DIM_LR_STEP;
    c.lr_step_factor = 0.1f;
    c.lr_warmup = 20;
    c.lr_horizon = 100;
    const double g = c.lr_step_factor;
    ASSERT_LR(&c, 19, lr);
    ASSERT_LR(&c, 20, lr);
    ASSERT_LR(&c, 59, lr);
    ASSERT_LR(&c, 60, lr * g);
    ASSERT_LR(&c, 79, lr * g);
    ASSERT_LR(&c, 80, lr * g * g);
    ASSERT_LR(&c, 100, lr * g * g);
    ASSERT_LR(&c, 1000000, lr * g * g);
    c.lr_step_factor = 0.5f;
    ASSERT_LR(&c, 70, lr * 0.5);
    ASSERT_LR(&c, 90, lr * 0.25);

    /* warm-up as long as the horizon: the ramp, then the end value */
    c.lr_schedule = DIM_LR_COSINE;
    c.lr_final = 0.1f;
    c.lr_warmup = c.lr_horizon = 50;
    ASSERT_LR(&c, 49, lr);
    ASSERT_LR(&c, 50, lr * (double)c.lr_final);

    /* a pure function: the same (config, step) gives the same bits, in any order */
    float fwd[200], back[200];
    for (int t = 0; t < 200; t++)
        fwd[t] = dim_lr_at(&c, (uint64_t)t);
    for (int t = 199; t >= 0; t--)
        back[t] = dim_lr_at(&c, (uint64_t)t);
    assert_memory_equal(fwd, back, sizeof fwd);

    /* names */
    for (int k = 0; k < 3; k++) {
        enum dim_lr_schedule out = (enum dim_lr_schedule)9;
        assert_int_equal(dim_lr_schedule_parse(dim_lr_schedule_name((enum dim_lr_schedule)k), &out),
                         0);
        assert_int_equal(out, k);
    }
    assert_string_equal(dim_lr_schedule_name(DIM_LR_COSINE), "cosine");
    enum dim_lr_schedule out;
    assert_int_equal(dim_lr_schedule_parse("linear", &out), -1);
}

static void test_names(void **state)
{
    (void)state;
    for (int p = 0; p < 3; p++) {
        enum dim_preset out = (enum dim_preset)9;
        assert_int_equal(dim_preset_parse(dim_preset_name((enum dim_preset)p), &out), 0);
        assert_int_equal(out, p);
    }
    assert_string_equal(dim_preset_name(DIM_BASIC28), "basic28x28");
    for (int t = 0; t < 4; t++) {
        enum dim_tap out = (enum dim_tap)9;
        assert_int_equal(dim_tap_parse(dim_tap_name((enum dim_tap)t), &out), 0);
        assert_int_equal(out, t);
    }
    assert_string_equal(dim_tap_name(DIM_TAP_Y), "y");
    enum dim_preset p;
    enum dim_tap t;
    assert_int_equal(dim_preset_parse("basic16x16", &p), -1);
    assert_int_equal(dim_tap_parse("z", &t), -1);
}

/* Inference: a batch encodes like its images one at a time, twice the same bits,
 * without touching the model. Running statistics are set to non-trivial values so
 * that BN in inference mode matters. */
static void test_encode(void **state)
{
    (void)state;
    struct dim_config c = small_config(DIM_BASIC28, 3);
    c.y_dim = 12;
    struct dim_model *m = create(&c, false);
    struct dim_rng rng;
    dim_rng_seed(&rng, 5, 5);
    for (int i = 0; i < m->enc.n; i++) {
        const struct nn_layer *l = &m->enc.L[i];
        if (l->op != NN_BN)
            continue;
        gc_fill_normal(m->state + l->rm, (size_t)l->ic, 0.1f, &rng);
        gc_fill_uniform(m->state + l->rv, (size_t)l->ic, 0.5f, 2.0f, &rng);
    }
    const size_t B = 5, in = nn_net_in_size(&m->enc);
    float *x = malloc(sizeof(float) * B * in);
    assert_non_null(x);
    gc_fill_uniform(x, B * in, -1.0f, 1.0f, &rng);
    size_t nm = m->n_main, ns = m->n_state;
    float *p0 = malloc(sizeof(float) * nm), *s0 = malloc(sizeof(float) * ns);
    assert_non_null(p0);
    assert_non_null(s0);
    memcpy(p0, m->main_params, sizeof(float) * nm);
    memcpy(s0, m->state, sizeof(float) * ns);

    struct dim_encode_ws ws, ws1;
    struct dim_err err = {0};
    assert_int_equal(dim_encode_ws_create(&ws, m, B, &err), 0);
    assert_int_equal(dim_encode_ws_create(&ws1, m, 1, &err), 0);
    const enum dim_tap taps[4] = {DIM_TAP_CONV, DIM_TAP_FC, DIM_TAP_Y, DIM_TAP_LOCAL};
    for (int k = 0; k < 4; k++) {
        const size_t n = dim_model_tap_size(m, taps[k]);
        float *a = malloc(sizeof(float) * B * n);
        assert_non_null(a);
        memcpy(a, dim_model_encode(m, &ws, x, B, taps[k]), sizeof(float) * B * n);
        const float *again = dim_model_encode(m, &ws, x, B, taps[k]);
        assert_memory_equal(a, again, sizeof(float) * B * n);
        for (size_t b = 0; b < B; b++) {
            const float *one = dim_model_encode(m, &ws1, x + b * in, 1, taps[k]);
            char name[32];
            snprintf(name, sizeof name, "encode %s [%zu]", dim_tap_name(taps[k]), b);
            assert_int_equal(gc_compare(name, one, a + b * n, n, 1e-5, 1e-4, NULL), 0);
        }
        /* the features depend on the image */
        assert_true(memcmp(a, a + n, sizeof(float) * n) != 0);
        free(a);
    }
    /* reading is all encode does */
    assert_memory_equal(p0, m->main_params, sizeof(float) * nm);
    assert_memory_equal(s0, m->state, sizeof(float) * ns);
    /* the Y tap is the encoder's last layer */
    assert_int_equal(m->tap_layer[DIM_TAP_Y], m->enc.n - 1);
    struct dim_encode_ws bad;
    assert_int_equal(dim_encode_ws_create(&bad, m, 0, &err), DIM_EINVAL);
    dim_encode_ws_free(&ws);
    dim_encode_ws_free(&ws1);
    free(x);
    free(p0);
    free(s0);
    dim_model_free(m);
}

/* The same seed gives the same bits everywhere; another seed differs everywhere
 * that is random (weights), while BN gammas stay 1. */
static void test_seeded_init(void **state)
{
    (void)state;
    struct dim_config c = small_config(DIM_BASIC28, 1);
    c.alpha = 0.5f;
    c.beta = 0.5f;
    c.gamma = 0.2f;
    c.y_dim = 10;
    c.seed = 42;
    struct dim_model *a = create(&c, true), *b = create(&c, false);
    c.seed = 43;
    struct dim_model *d = create(&c, false);
    assert_int_equal(a->n_main, b->n_main);
    assert_memory_equal(a->main_params, b->main_params, sizeof(float) * a->n_main);
    assert_memory_equal(a->prior_params, b->prior_params, sizeof(float) * a->n_prior);
    assert_memory_equal(a->state, b->state, sizeof(float) * a->n_state);
    /* different seeds: the first conv's weights, the MI nets, the critics and D differ */
    const size_t nw0 = 64 * 25;
    size_t same = 0;
    for (size_t j = 0; j < nw0; j++)
        same += a->main_params[j] == d->main_params[j];
    assert_true(same < 4);
    assert_true(memcmp(a->main_params + a->enc.n_params, d->main_params + a->enc.n_params,
                       sizeof(float) * (a->n_main - a->enc.n_params)) != 0);
    assert_true(memcmp(a->prior_params, d->prior_params, sizeof(float) * a->n_prior) != 0);
    /* training-side state starts at zero */
    for (size_t j = 0; j < a->n_main; j++)
        assert_true(a->main_m[j] == 0.0f && a->main_v[j] == 0.0f && a->main_grads[j] == 0.0f);
    assert_true(a->opt_main.t == 0 && a->opt_prior.t == 0);
    assert_true(a->opt_main.lr == c.lr && a->opt_main.beta1 == c.adam_beta1 &&
                a->opt_main.beta2 == c.adam_beta2 && a->opt_main.eps == c.adam_eps);
    /* weights are in the documented uniform bound 1/sqrt(fan_in) */
    const float bound = 1.0f / sqrtf(25.0f);
    for (size_t j = 0; j < nw0; j++)
        assert_true(fabsf(a->main_params[j]) <= bound);
    /* re-initialising from equal rng states gives equal values, moments back to 0 */
    struct dim_rng rng;
    dim_rng_seed(&rng, 99, 1);
    dim_model_init_params(a, &rng);
    float *p0 = malloc(sizeof(float) * a->n_main);
    assert_non_null(p0);
    memcpy(p0, a->main_params, sizeof(float) * a->n_main);
    for (size_t j = 0; j < a->n_main; j++)
        a->main_params[j] = a->main_m[j] = 7.0f;
    a->opt_main.t = 5;
    dim_rng_seed(&rng, 99, 1);
    dim_model_init_params(a, &rng);
    assert_memory_equal(p0, a->main_params, sizeof(float) * a->n_main);
    assert_true(a->main_m[0] == 0.0f && a->main_m[a->n_main - 1] == 0.0f && a->opt_main.t == 0);
    free(p0);
    dim_model_free(a);
    dim_model_free(b);
    dim_model_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_preset_shapes),
        cmocka_unit_test(test_y_dim_and_mi_dim),
        cmocka_unit_test(test_critics_follow_weights),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_lr_schedule),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_seeded_init),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

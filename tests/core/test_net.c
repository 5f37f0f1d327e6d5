/* test_net.c - sequential network: builder shapes and slab layout, workspace
 * bounds, whole-net gradients by central differences (conv, BN, ReLU, linear,
 * dropout in NN_TRAIN), and NN_EVAL batch independence. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gradcheck.h"
#include "nn/net.h"

static float *alloc_floats(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof(float));
    assert_non_null(p);
    return p;
}

/* (1, 8, 8) -> conv3 -> BN -> ReLU -> conv4/2 -> BN -> ReLU -> linear 10 -> dropout -> linear 3 */
static void build_small(struct nn_net *net)
{
    nn_net_init(net, 1, 8, 8);
    nn_net_conv(net, 4, 3, 1, 1, true);
    nn_net_bn(net);
    nn_net_relu(net);
    nn_net_conv(net, 6, 4, 2, 1, false);
    nn_net_bn(net);
    nn_net_relu(net);
    nn_net_linear(net, 10, true);
    nn_net_dropout(net, 0.5f);
    nn_net_linear(net, 3, true);
}

static void test_builder_shapes_and_params(void **state)
{
    (void)state;
    struct nn_net net;
    build_small(&net);
    assert_false(net.bad);
    assert_int_equal(net.n, 9);
    const int shapes[9][4] = {
        /* op, oc, oh, ow */
        {NN_CONV, 4, 8, 8},    {NN_BN, 4, 8, 8},       {NN_RELU, 4, 8, 8},
        {NN_CONV, 6, 4, 4},    {NN_BN, 6, 4, 4},       {NN_RELU, 6, 4, 4},
        {NN_LINEAR, 10, 1, 1}, {NN_DROPOUT, 10, 1, 1}, {NN_LINEAR, 3, 1, 1},
    };
    for (int i = 0; i < 9; i++) {
        const struct nn_layer *l = &net.L[i];
        assert_int_equal(l->op, shapes[i][0]);
        assert_int_equal(l->oc, shapes[i][1]);
        assert_int_equal(l->oh, shapes[i][2]);
        assert_int_equal(l->ow, shapes[i][3]);
        if (i > 0) {
            assert_int_equal(l->ic, net.L[i - 1].oc);
            assert_int_equal(l->ih, net.L[i - 1].oh);
            assert_int_equal(l->iw, net.L[i - 1].ow);
        }
    }
    /* parameter slab: consecutive, in layer order */
    assert_int_equal(net.L[0].w, 0);
    assert_int_equal(net.L[0].b, 36); /* 4 * 1 * 3 * 3 */
    assert_int_equal(net.L[1].w, 40); /* gamma (4) */
    assert_int_equal(net.L[1].b, 44); /* beta (4) */
    assert_int_equal(net.L[2].w, SIZE_MAX);
    assert_int_equal(net.L[3].w, 48);
    assert_int_equal(net.L[3].b, SIZE_MAX); /* no bias */
    assert_int_equal(net.L[4].w, 432);      /* 48 + 6 * 4 * 4 * 4 */
    assert_int_equal(net.L[4].b, 438);
    assert_int_equal(net.L[6].w, 444);
    assert_int_equal(net.L[6].b, 1404); /* 444 + 10 * 96 */
    assert_int_equal(net.L[7].w, SIZE_MAX);
    assert_int_equal(net.L[8].w, 1414);
    assert_int_equal(net.L[8].b, 1444);
    assert_int_equal(net.n_params, 1447);
    /* state slab: BN running mean and var */
    assert_int_equal(net.L[1].rm, 0);
    assert_int_equal(net.L[1].rv, 4);
    assert_int_equal(net.L[4].rm, 8);
    assert_int_equal(net.L[4].rv, 14);
    assert_int_equal(net.n_state, 20);
    assert_int_equal(nn_net_in_size(&net), 64);
    assert_int_equal(nn_net_out_size(&net), 3);
    assert_int_equal(nn_layer_out_size(&net.L[3]), 96);
    assert_true(nn_net_macs(&net) == 4.0 * 64 * 9 + 6.0 * 16 * 4 * 16 + 960 + 30);
}

static void test_builder_rejects_bad(void **state)
{
    (void)state;
    struct nn_net net;
    nn_net_init(&net, 0, 8, 8);
    assert_true(net.bad);
    nn_net_init(&net, 1, 8, 8);
    nn_net_conv(&net, 4, 9, 1, 0, true); /* kernel larger than the padded input */
    assert_true(net.bad);
    nn_net_init(&net, 1, 8, 8);
    nn_net_conv(&net, 4, 3, 0, 1, true); /* stride 0 */
    assert_true(net.bad);
    nn_net_init(&net, 1, 8, 8);
    nn_net_conv(&net, 0, 3, 1, 1, true);
    assert_true(net.bad);
    nn_net_init(&net, 1, 8, 8);
    nn_net_linear(&net, 0, true);
    assert_true(net.bad);
    nn_net_init(&net, 1, 8, 8);
    nn_net_dropout(&net, 1.0f);
    assert_true(net.bad);
    nn_net_init(&net, 1, 8, 8);
    nn_net_dropout(&net, -0.1f);
    assert_true(net.bad);
    nn_net_init(&net, 1, 8, 8);
    nn_net_dropout(&net, NAN);
    assert_true(net.bad);
    nn_net_init(&net, 1, 8, 8);
    for (int i = 0; i < NN_NET_MAX_LAYERS; i++)
        nn_net_relu(&net);
    assert_false(net.bad);
    nn_net_relu(&net);
    assert_true(net.bad);
    assert_int_equal(net.n, NN_NET_MAX_LAYERS);
}

/* Everything needed to run a net on one batch. */
struct net_case {
    struct nn_net net;
    struct nn_net_ws ws;
    float *params, *grads, *state, *slab;
    float *in, *din, *r;
    size_t B, n_in, n_out;
    uint64_t drop_seed;
    bool *ref_pos; /* sign of every ReLU input in the unperturbed pass */
    size_t n_relu; /* entries in ref_pos */
    size_t kinks;  /* perturbed evaluations that crossed a ReLU kink */
};

static void case_alloc(struct net_case *c, size_t B, uint64_t seed)
{
    c->params = alloc_floats(c->net.n_params);
    c->grads = alloc_floats(c->net.n_params);
    c->state = alloc_floats(c->net.n_state);
    nn_net_bind(&c->net, c->params, c->grads, c->state);
    struct dim_rng rng;
    dim_rng_seed(&rng, seed, 1);
    nn_net_init_params(&c->net, &rng);
    c->B = B;
    c->n_in = B * nn_net_in_size(&c->net);
    c->n_out = B * nn_net_out_size(&c->net);
    c->slab = alloc_floats(nn_net_ws_floats(&c->net, B, true));
    nn_net_ws_carve(&c->net, &c->ws, c->slab, B, true);
    c->in = alloc_floats(c->n_in);
    c->din = alloc_floats(c->n_in);
    c->r = alloc_floats(c->n_out);
    gc_fill_normal(c->in, c->n_in, 1.0f, &rng);
    gc_fill_normal(c->r, c->n_out, 1.0f, &rng);
    c->drop_seed = seed ^ 0x5eed;
    c->n_relu = 0;
    for (int i = 0; i < c->net.n; i++)
        if (c->net.L[i].op == NN_RELU)
            c->n_relu += B * nn_layer_out_size(&c->net.L[i]);
    c->ref_pos = calloc(c->n_relu ? c->n_relu : 1, sizeof(bool));
    assert_non_null(c->ref_pos);
    c->kinks = 0;
}

static void case_free(struct net_case *c)
{
    free(c->params);
    free(c->grads);
    free(c->state);
    free(c->slab);
    free(c->in);
    free(c->din);
    free(c->r);
    free(c->ref_pos);
}

/* Train-mode forward with the dropout stream reseeded: the mask is the same every call. */
static void train_forward(struct net_case *c)
{
    struct dim_rng rng;
    dim_rng_seed(&rng, c->drop_seed, 9);
    nn_net_forward(&c->net, &c->ws, c->in, c->B, NN_TRAIN, &rng);
}

static double net_loss(void *ctx)
{
    struct net_case *c = ctx;
    train_forward(c);
    return gc_project(nn_net_out(&c->net, &c->ws), c->r, c->n_out, NULL);
}

/* Visits the sign of every ReLU input (= whether its output is > 0). */
static bool relu_signs(struct net_case *c, bool record)
{
    size_t k = 0;
    bool changed = false;
    for (int i = 0; i < c->net.n; i++) {
        if (c->net.L[i].op != NN_RELU)
            continue;
        const float *y = c->ws.act[i];
        size_t n = c->B * nn_layer_out_size(&c->net.L[i]);
        for (size_t j = 0; j < n; j++, k++) {
            bool pos = y[j] > 0.0f;
            if (record)
                c->ref_pos[k] = pos;
            else if (pos != c->ref_pos[k])
                changed = true;
        }
    }
    return changed;
}

static bool net_kinked(void *ctx)
{
    struct net_case *c = ctx;
    bool k = relu_signs(c, false);
    c->kinks += k;
    return k;
}

/* Analytic gradients of net_loss into c->grads (parameters) and c->din (input). */
static void net_gradients(struct net_case *c, float *din)
{
    memset(c->grads, 0, sizeof(float) * c->net.n_params);
    if (din)
        memset(din, 0, sizeof(float) * c->n_in);
    train_forward(c);
    relu_signs(c, true);
    nn_net_zero_dact(&c->net, &c->ws, c->B);
    gc_project(nn_net_out(&c->net, &c->ws), c->r, c->n_out, nn_net_dout(&c->net, &c->ws));
    nn_net_backward(&c->net, &c->ws, c->in, din, c->B);
}

/* (2, 5, 5) -> conv3 -> BN -> ReLU -> conv3/2 -> BN -> ReLU -> linear 5 -> BN (HW = 1)
 *   -> ReLU -> dropout 0.3 -> linear 3 */
static void build_grad_net(struct nn_net *net)
{
    nn_net_init(net, 2, 5, 5);
    nn_net_conv(net, 3, 3, 1, 1, true);
    nn_net_bn(net);
    nn_net_relu(net);
    nn_net_conv(net, 4, 3, 2, 0, false);
    nn_net_bn(net);
    nn_net_relu(net);
    nn_net_linear(net, 5, false);
    nn_net_bn(net);
    nn_net_relu(net);
    nn_net_dropout(net, 0.3f);
    nn_net_linear(net, 3, true);
}

static const char *op_name(enum nn_op op)
{
    switch (op) {
    case NN_CONV:
        return "conv";
    case NN_LINEAR:
        return "linear";
    case NN_BN:
        return "bn";
    case NN_RELU:
        return "relu";
    case NN_DROPOUT:
        return "dropout";
    }
    return "?";
}

/* Whole-net tolerances (see gradcheck.h): eps 5e-3 keeps ReLU crossings rare,
 * BN in the chain adds curvature, so rtol 3e-2, atol 2e-3. */
static struct gc_opts net_opts(const char *name)
{
    struct gc_opts o = gc_opts_default(name);
    o.eps = 5e-3;
    o.rtol = 3e-2;
    o.atol = 2e-3;
    o.max_checks = 0; /* every entry */
    o.kink = net_kinked;
    return o;
}

static void test_net_gradients(void **state)
{
    (void)state;
    struct net_case c;
    build_grad_net(&c.net);
    assert_false(c.net.bad);
    case_alloc(&c, 4, 11);
    /* BN gamma and beta away from their 1 / 0 defaults, so their gradients are generic */
    struct dim_rng rng;
    dim_rng_seed(&rng, 12, 1);
    for (int i = 0; i < c.net.n; i++)
        if (c.net.L[i].op == NN_BN) {
            gc_fill_uniform(c.params + c.net.L[i].w, (size_t)c.net.L[i].ic, 0.5f, 1.5f, &rng);
            gc_fill_normal(c.params + c.net.L[i].b, (size_t)c.net.L[i].ic, 0.3f, &rng);
        }
    net_gradients(&c, c.din);

    /* dropout really dropped something, and really kept something */
    const struct nn_layer *drop = &c.net.L[9];
    assert_int_equal(drop->op, NN_DROPOUT);
    size_t zeros = 0, nd = c.B * nn_layer_out_size(drop);
    for (size_t j = 0; j < nd; j++)
        zeros += c.ws.aux[9][j] == 0.0f;
    assert_true(zeros > 0 && zeros < nd);

    size_t checked = 0, skipped = 0;
    struct gc_result res;
    struct gc_opts o = net_opts("net.din");
    assert_int_equal(gc_check(&o, net_loss, &c, c.in, c.din, c.n_in, &res), 0);
    checked += res.checked;
    skipped += res.skipped;
    for (int i = 0; i < c.net.n; i++) {
        const struct nn_layer *l = &c.net.L[i];
        size_t nw = 0, nb = 0;
        if (l->op == NN_CONV)
            nw = (size_t)l->oc * l->ic * l->cv.k * l->cv.k;
        else if (l->op == NN_LINEAR)
            nw = (size_t)l->oc * l->ic * l->ih * l->iw;
        else if (l->op == NN_BN)
            nw = (size_t)l->ic;
        if (l->b != SIZE_MAX)
            nb = (size_t)(l->op == NN_BN ? l->ic : l->oc);
        char name[64];
        if (nw) {
            snprintf(name, sizeof name, "net.L%d.%s.w", i, op_name(l->op));
            o.name = name;
            assert_int_equal(gc_check(&o, net_loss, &c, c.params + l->w, c.grads + l->w, nw, &res),
                             0);
            checked += res.checked;
            skipped += res.skipped;
        }
        if (nb) {
            snprintf(name, sizeof name, "net.L%d.%s.b", i, op_name(l->op));
            o.name = name;
            assert_int_equal(gc_check(&o, net_loss, &c, c.params + l->b, c.grads + l->b, nb, &res),
                             0);
            checked += res.checked;
            skipped += res.skipped;
        }
    }
    /* every parameter and input entry was either checked or skipped at a kink,
     * and kinks are the exception */
    assert_int_equal(checked + skipped, c.n_in + c.net.n_params);
    assert_true(skipped * 10 < checked);

    /* the checker catches a wrong gradient here too: flip the conv-0 weight gradient */
    for (size_t j = 0; j < 18; j++)
        c.grads[c.net.L[0].w + j] = -c.grads[c.net.L[0].w + j];
    o = net_opts("net.L0.conv.w (negated)");
    o.quiet = true;
    gc_check(&o, net_loss, &c, c.params + c.net.L[0].w, c.grads + c.net.L[0].w, 18, &res);
    assert_true(res.failed >= res.checked / 2 && res.checked > 0);
    case_free(&c);
}

/* Parameter gradients accumulate across backward calls; din NULL skips only din. */
static void test_net_backward_accumulates(void **state)
{
    (void)state;
    struct net_case c;
    build_grad_net(&c.net);
    case_alloc(&c, 3, 21);
    size_t np = c.net.n_params;
    net_gradients(&c, c.din);
    float *g1 = alloc_floats(np), *din1 = alloc_floats(c.n_in);
    memcpy(g1, c.grads, sizeof(float) * np);
    memcpy(din1, c.din, sizeof(float) * c.n_in);
    /* second backward on the same forward, without zeroing grads or din */
    nn_net_zero_dact(&c.net, &c.ws, c.B);
    gc_project(nn_net_out(&c.net, &c.ws), c.r, c.n_out, nn_net_dout(&c.net, &c.ws));
    nn_net_backward(&c.net, &c.ws, c.in, c.din, c.B);
    for (size_t j = 0; j < np; j++)
        assert_true(fabsf(c.grads[j] - 2.0f * g1[j]) <= 1e-5f * (1.0f + fabsf(g1[j])));
    for (size_t j = 0; j < c.n_in; j++)
        assert_true(fabsf(c.din[j] - 2.0f * din1[j]) <= 1e-5f * (1.0f + fabsf(din1[j])));
    net_gradients(&c, NULL);
    assert_int_equal(gc_compare("net.grads (din NULL)", c.grads, g1, np, 1e-6, 1e-5, NULL), 0);
    free(g1);
    free(din1);
    case_free(&c);
}

/* NN_EVAL: a batch gives the same outputs as its samples one at a time; running
 * statistics are used and left alone. NN_TRAIN updates them. */
static void test_eval_batch_equals_samples(void **state)
{
    (void)state;
    struct nn_net net;
    build_small(&net);
    const size_t B = 5, in1 = nn_net_in_size(&net), out1 = nn_net_out_size(&net);
    float *params = alloc_floats(net.n_params), *st = alloc_floats(net.n_state);
    nn_net_bind(&net, params, NULL, st);
    struct dim_rng rng;
    dim_rng_seed(&rng, 31, 1);
    nn_net_init_params(&net, &rng);
    for (int i = 0; i < net.n; i++)
        if (net.L[i].op == NN_BN) {
            gc_fill_normal(st + net.L[i].rm, (size_t)net.L[i].ic, 0.2f, &rng);
            gc_fill_uniform(st + net.L[i].rv, (size_t)net.L[i].ic, 0.5f, 2.0f, &rng);
        }
    float *st0 = alloc_floats(net.n_state);
    memcpy(st0, st, sizeof(float) * net.n_state);
    float *in = alloc_floats(B * in1), *out = alloc_floats(B * out1);
    gc_fill_normal(in, B * in1, 1.0f, &rng);
    float *slab = alloc_floats(nn_net_ws_floats(&net, B, false));
    struct nn_net_ws ws;
    nn_net_ws_carve(&net, &ws, slab, B, false);
    nn_net_forward(&net, &ws, in, B, NN_EVAL, NULL);
    memcpy(out, nn_net_out(&net, &ws), sizeof(float) * B * out1);
    assert_memory_equal(st, st0, sizeof(float) * net.n_state);
    for (size_t b = 0; b < B; b++) {
        nn_net_forward(&net, &ws, in + b * in1, 1, NN_EVAL, NULL);
        assert_int_equal(gc_compare("eval sample vs batch", nn_net_out(&net, &ws), out + b * out1,
                                    out1, 1e-5, 1e-5, NULL),
                         0);
    }
    /* eval dropout is the identity: the mask is all ones */
    assert_int_equal(net.L[7].op, NN_DROPOUT);
    for (size_t j = 0; j < nn_layer_out_size(&net.L[7]); j++)
        assert_true(ws.aux[7][j] == 1.0f);

    /* TRAIN uses batch statistics and moves the running ones */
    float *slab_t = alloc_floats(nn_net_ws_floats(&net, B, true));
    struct nn_net_ws wt;
    nn_net_ws_carve(&net, &wt, slab_t, B, true);
    nn_net_forward(&net, &wt, in, B, NN_TRAIN, &rng);
    assert_memory_not_equal(st, st0, sizeof(float) * net.n_state);
    free(slab_t);
    free(params);
    free(st);
    free(st0);
    free(in);
    free(out);
    free(slab);
}

/* A dropout-only net: mask fraction, kept scale, reproducibility, p = 0. */
static void test_dropout_layer(void **state)
{
    (void)state;
    struct nn_net net;
    nn_net_init(&net, 1000, 1, 1);
    nn_net_dropout(&net, 0.3f);
    assert_false(net.bad);
    nn_net_bind(&net, NULL, NULL, NULL);
    const size_t B = 4, n = B * 1000;
    float *in = alloc_floats(n), *o1 = alloc_floats(n),
          *slab = alloc_floats(nn_net_ws_floats(&net, B, true));
    struct nn_net_ws ws;
    nn_net_ws_carve(&net, &ws, slab, B, true);
    for (size_t j = 0; j < n; j++)
        in[j] = 1.0f + (float)(j % 7);
    struct dim_rng rng;
    dim_rng_seed(&rng, 5, 1);
    nn_net_forward(&net, &ws, in, B, NN_TRAIN, &rng);
    size_t zeros = 0;
    const float *y = nn_net_out(&net, &ws);
    for (size_t j = 0; j < n; j++) {
        if (y[j] == 0.0f)
            zeros++;
        else
            assert_true(fabsf(y[j] - in[j] / 0.7f) <= 1e-6f * y[j]);
    }
    assert_true(fabs((double)zeros / n - 0.3) < 0.03);
    memcpy(o1, y, sizeof(float) * n);
    dim_rng_seed(&rng, 5, 1);
    nn_net_forward(&net, &ws, in, B, NN_TRAIN, &rng);
    assert_memory_equal(nn_net_out(&net, &ws), o1, sizeof(float) * n);
    nn_net_forward(&net, &ws, in, B, NN_TRAIN, &rng); /* the stream moved on */
    assert_memory_not_equal(nn_net_out(&net, &ws), o1, sizeof(float) * n);
    /* backward: din = dout * mask */
    float *din = alloc_floats(n);
    for (size_t j = 0; j < n; j++)
        nn_net_dout(&net, &ws)[j] = 2.0f;
    nn_net_backward(&net, &ws, in, din, B);
    for (size_t j = 0; j < n; j++)
        assert_true(din[j] == 2.0f * ws.aux[0][j]);
    /* p = 0 in training is the identity */
    nn_net_init(&net, 1000, 1, 1);
    nn_net_dropout(&net, 0.0f);
    nn_net_forward(&net, &ws, in, B, NN_TRAIN, &rng);
    assert_memory_equal(nn_net_out(&net, &ws), in, sizeof(float) * n);
    free(in);
    free(o1);
    free(din);
    free(slab);
}

#define GUARD 4096
#define SENTINEL 0x7fc0dead /* a NaN no kernel produces */

static void fill_guard(float *p, size_t n)
{
    const uint32_t s = SENTINEL;
    for (size_t i = 0; i < n; i++)
        memcpy(p + i, &s, sizeof s);
}

static size_t guard_damage(const float *p, size_t n)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, p + i, sizeof u);
        bad += u != SENTINEL;
    }
    return bad;
}

/* Workspace: nn_net_ws_floats covers everything carve hands out and everything
 * forward and backward write, for train and eval layouts and partial batches. */
static void run_guarded(void (*build)(struct nn_net *), size_t cap, size_t B, bool train)
{
    struct nn_net net;
    build(&net);
    assert_false(net.bad);
    float *params = alloc_floats(net.n_params), *grads = alloc_floats(net.n_params),
          *st = alloc_floats(net.n_state);
    nn_net_bind(&net, params, grads, st);
    struct dim_rng rng;
    dim_rng_seed(&rng, 41, 1);
    nn_net_init_params(&net, &rng);
    size_t wsf = nn_net_ws_floats(&net, cap, train);
    float *mem = alloc_floats(wsf + 2 * GUARD), *slab = mem + GUARD;
    fill_guard(mem, wsf + 2 * GUARD);
    struct nn_net_ws ws;
    nn_net_ws_carve(&net, &ws, slab, cap, train);
    /* every carved region lies inside the slab */
    for (int i = 0; i < net.n; i++) {
        size_t out = cap * nn_layer_out_size(&net.L[i]);
        assert_true(ws.act[i] >= slab && ws.act[i] + out <= slab + wsf);
        if (train)
            assert_true(ws.dact[i] >= slab && ws.dact[i] + out <= slab + wsf);
        else
            assert_null(ws.dact[i]);
    }
    assert_true(ws.scratch >= slab && ws.scratch <= slab + wsf);
    size_t n_in = B * nn_net_in_size(&net);
    float *in = alloc_floats(n_in), *din = alloc_floats(n_in);
    gc_fill_normal(in, n_in, 1.0f, &rng);
    nn_net_forward(&net, &ws, in, B, train ? NN_TRAIN : NN_EVAL, &rng);
    if (train) {
        nn_net_zero_dact(&net, &ws, B);
        gc_fill_normal(nn_net_dout(&net, &ws), B * nn_net_out_size(&net), 1.0f, &rng);
        nn_net_backward(&net, &ws, in, din, B);
    }
    assert_int_equal(guard_damage(mem, GUARD), 0);
    assert_int_equal(guard_damage(slab + wsf, GUARD), 0);
    /* and the slab was used: the last layer's output is not sentinel */
    size_t n_out = B * nn_net_out_size(&net);
    assert_int_equal(guard_damage(nn_net_out(&net, &ws), n_out), n_out);
    free(params);
    free(grads);
    free(st);
    free(mem);
    free(in);
    free(din);
}

static void test_workspace_bounds(void **state)
{
    (void)state;
    run_guarded(build_small, 3, 3, true);
    run_guarded(build_small, 3, 2, true);
    run_guarded(build_small, 3, 3, false);
    run_guarded(build_grad_net, 4, 4, true);
    run_guarded(build_grad_net, 5, 1, true);
    run_guarded(build_grad_net, 2, 2, false);
}

/* The same without guard zones: a slab of exactly nn_net_ws_floats floats on
 * the heap, so AddressSanitizer (SAN=1) reports any write past its end. */
static void test_workspace_exact_heap(void **state)
{
    (void)state;
    struct nn_net net;
    build_grad_net(&net);
    float *params = alloc_floats(net.n_params), *grads = alloc_floats(net.n_params),
          *st = alloc_floats(net.n_state);
    nn_net_bind(&net, params, grads, st);
    struct dim_rng rng;
    dim_rng_seed(&rng, 51, 1);
    nn_net_init_params(&net, &rng);
    const size_t cap = 3;
    float *slab = malloc(sizeof(float) * nn_net_ws_floats(&net, cap, true));
    assert_non_null(slab);
    struct nn_net_ws ws;
    nn_net_ws_carve(&net, &ws, slab, cap, true);
    size_t n_in = cap * nn_net_in_size(&net);
    float *in = alloc_floats(n_in), *din = alloc_floats(n_in);
    gc_fill_normal(in, n_in, 1.0f, &rng);
    nn_net_forward(&net, &ws, in, cap, NN_TRAIN, &rng);
    nn_net_zero_dact(&net, &ws, cap);
    gc_fill_normal(nn_net_dout(&net, &ws), cap * nn_net_out_size(&net), 1.0f, &rng);
    nn_net_backward(&net, &ws, in, din, cap);
    for (size_t j = 0; j < n_in; j++)
        assert_true(isfinite(din[j]));
    free(slab);
    free(params);
    free(grads);
    free(st);
    free(in);
    free(din);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builder_shapes_and_params),
        cmocka_unit_test(test_builder_rejects_bad),
        cmocka_unit_test(test_net_gradients),
        cmocka_unit_test(test_net_backward_accumulates),
        cmocka_unit_test(test_eval_batch_equals_samples),
        cmocka_unit_test(test_dropout_layer),
        cmocka_unit_test(test_workspace_bounds),
        cmocka_unit_test(test_workspace_exact_heap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

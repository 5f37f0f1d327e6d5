/* test_conv2d.c - im2col convolution against the direct oracle, gradients by
 * central differences, and accumulation semantics of the backward pass. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gradcheck.h"
#include "nn/conv2d.h"

struct geom {
    int C, H, W, OC, k, s, p;
    size_t B;
    bool bias;
};

/* Kernel 1, 3, 4, 5; stride 1, 2; padding 0, 1, 2; non-square; C, OC, B > 1. */
static const struct geom GEOMS[] = {
    {1, 5, 5, 1, 1, 1, 0, 1, true},  {3, 7, 6, 4, 3, 1, 1, 2, true},
    {2, 8, 9, 3, 4, 2, 1, 3, false}, {2, 9, 7, 5, 5, 2, 2, 2, true},
    {3, 6, 5, 2, 3, 2, 0, 1, false}, {1, 4, 4, 2, 5, 1, 2, 1, true},
    {2, 5, 8, 3, 1, 2, 0, 2, true},  {4, 6, 10, 3, 4, 1, 0, 2, false},
    {3, 5, 6, 2, 3, 1, 2, 2, true},  {2, 7, 4, 3, 5, 1, 1, 1, false},
};
#define N_GEOMS (sizeof GEOMS / sizeof GEOMS[0])

/* Everything one convolution needs, sized for its geometry. */
struct conv_case {
    struct nn_conv2d cv;
    size_t B, n_in, n_w, n_out;
    float *in, *w, *b, *out, *ref, *col, *scratch, *r;
    float *din, *dw, *db, *dout;
};

static float *alloc_floats(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof(float));
    assert_non_null(p);
    return p;
}

static void case_init(struct conv_case *c, const struct geom *g, uint64_t seed)
{
    memset(c, 0, sizeof *c);
    assert_int_equal(nn_conv2d_init(&c->cv, g->C, g->H, g->W, g->OC, g->k, g->s, g->p), 0);
    c->B = g->B;
    c->n_in = g->B * (size_t)g->C * g->H * g->W;
    c->n_w = (size_t)g->OC * g->C * g->k * g->k;
    c->n_out = g->B * (size_t)g->OC * c->cv.OH * c->cv.OW;
    c->in = alloc_floats(c->n_in);
    c->w = alloc_floats(c->n_w);
    c->b = g->bias ? alloc_floats((size_t)g->OC) : NULL;
    c->out = alloc_floats(c->n_out);
    c->ref = alloc_floats(c->n_out);
    c->col = alloc_floats(nn_conv2d_col_floats(&c->cv, c->B));
    c->scratch = alloc_floats(nn_conv2d_scratch_floats(&c->cv, c->B));
    c->r = alloc_floats(c->n_out);
    c->din = alloc_floats(c->n_in);
    c->dw = alloc_floats(c->n_w);
    c->db = alloc_floats((size_t)g->OC);
    c->dout = alloc_floats(c->n_out);
    struct dim_rng rng;
    dim_rng_seed(&rng, seed, 1);
    gc_fill_normal(c->in, c->n_in, 1.0f, &rng);
    gc_fill_normal(c->w, c->n_w, 0.5f, &rng);
    if (c->b)
        gc_fill_normal(c->b, (size_t)g->OC, 0.5f, &rng);
    gc_fill_normal(c->r, c->n_out, 1.0f, &rng);
}

static void case_free(struct conv_case *c)
{
    free(c->in);
    free(c->w);
    free(c->b);
    free(c->out);
    free(c->ref);
    free(c->col);
    free(c->scratch);
    free(c->r);
    free(c->din);
    free(c->dw);
    free(c->db);
    free(c->dout);
}

static double conv_loss(void *ctx)
{
    struct conv_case *c = ctx;
    nn_conv2d_forward(c->out, c->col, c->scratch, c->in, c->w, c->b, &c->cv, c->B);
    return gc_project(c->out, c->r, c->n_out, NULL);
}

/* Small integers in [-3, 3]: every product and sum below stays an exact float. */
static void fill_small_ints(float *x, size_t n, struct dim_rng *rng)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((int)dim_rng_below(rng, 7) - 3);
}

static void test_init_geometry(void **state)
{
    (void)state;
    struct nn_conv2d cv;
    assert_int_equal(nn_conv2d_init(&cv, 3, 7, 6, 4, 3, 2, 1), 0);
    assert_int_equal(cv.OH, 4); /* (7 + 2 - 3) / 2 + 1 */
    assert_int_equal(cv.OW, 3); /* (6 + 2 - 3) / 2 + 1 */
    assert_int_equal(nn_conv2d_init(&cv, 1, 4, 4, 1, 4, 1, 0), 0);
    assert_int_equal(cv.OH, 1);
    assert_int_equal(cv.OW, 1);
    assert_int_equal(nn_conv2d_col_floats(&cv, 3), (size_t)1 * 4 * 4 * 3 * 1 * 1);
    /* impossible geometries are refused, not divided by */
    assert_int_equal(nn_conv2d_init(&cv, 1, 4, 4, 1, 5, 1, 0), -1);
    assert_int_equal(nn_conv2d_init(&cv, 1, 4, 9, 1, 5, 1, 0), -1);
    assert_int_equal(nn_conv2d_init(&cv, 1, 4, 4, 1, 3, 0, 0), -1);
    assert_int_equal(nn_conv2d_init(&cv, 0, 4, 4, 1, 3, 1, 0), -1);
    assert_int_equal(nn_conv2d_init(&cv, 1, 4, 4, 0, 3, 1, 0), -1);
    assert_int_equal(nn_conv2d_init(&cv, 1, 4, 4, 1, 0, 1, 0), -1);
    assert_int_equal(nn_conv2d_init(&cv, 1, 4, 4, 1, 3, 1, -1), -1);
}

static void test_forward_matches_naive(void **state)
{
    (void)state;
    for (size_t g = 0; g < N_GEOMS; g++) {
        struct conv_case c;
        case_init(&c, &GEOMS[g], 100 + g);
        nn_conv2d_forward(c.out, c.col, c.scratch, c.in, c.w, c.b, &c.cv, c.B);
        nn_conv2d_forward_naive(c.ref, c.in, c.w, c.b, &c.cv, c.B);
        assert_int_equal(gc_compare("conv.forward", c.out, c.ref, c.n_out, 1e-5, 1e-5, NULL), 0);
        case_free(&c);
    }
}

/* With small-integer data both paths are exact, so they must agree bit for bit;
 * this also pins the output layout (a permuted layout would not match). */
static void test_forward_exact_on_integers(void **state)
{
    (void)state;
    for (size_t g = 0; g < N_GEOMS; g++) {
        struct conv_case c;
        case_init(&c, &GEOMS[g], 200 + g);
        struct dim_rng rng;
        dim_rng_seed(&rng, 200 + g, 2);
        fill_small_ints(c.in, c.n_in, &rng);
        fill_small_ints(c.w, c.n_w, &rng);
        if (c.b)
            fill_small_ints(c.b, (size_t)c.cv.OC, &rng);
        nn_conv2d_forward(c.out, c.col, c.scratch, c.in, c.w, c.b, &c.cv, c.B);
        nn_conv2d_forward_naive(c.ref, c.in, c.w, c.b, &c.cv, c.B);
        assert_memory_equal(c.out, c.ref, sizeof(float) * c.n_out);
        case_free(&c);
    }
}

/* A single 3x3 identity-centre kernel with padding 1 copies the image. */
static void test_forward_identity_kernel(void **state)
{
    (void)state;
    struct nn_conv2d cv;
    assert_int_equal(nn_conv2d_init(&cv, 1, 3, 4, 1, 3, 1, 1), 0);
    float in[12], w[9] = {0, 0, 0, 0, 1, 0, 0, 0, 0}, b = 0.5f, out[12];
    float col[9 * 12], scratch[12 + 9 * 12];
    for (int i = 0; i < 12; i++)
        in[i] = (float)i;
    nn_conv2d_forward(out, col, scratch, in, w, &b, &cv, 1);
    for (int i = 0; i < 12; i++)
        assert_true(out[i] == (float)i + 0.5f);
}

static void test_gradients(void **state)
{
    (void)state;
    /* Convolution is linear in in, w and b: differences are exact up to rounding. */
    for (size_t g = 0; g < N_GEOMS; g++) {
        struct conv_case c;
        case_init(&c, &GEOMS[g], 300 + g);
        conv_loss(&c);
        memcpy(c.dout, c.r, sizeof(float) * c.n_out);
        nn_conv2d_backward(c.din, c.dw, c.b ? c.db : NULL, c.scratch, c.dout, c.col, c.w, &c.cv,
                           c.B);
        struct gc_opts o = gc_opts_default("conv.din");
        o.rtol = 5e-3;
        o.atol = 5e-4;
        o.seed = g;
        assert_int_equal(gc_check(&o, conv_loss, &c, c.in, c.din, c.n_in, NULL), 0);
        o.name = "conv.dw";
        assert_int_equal(gc_check(&o, conv_loss, &c, c.w, c.dw, c.n_w, NULL), 0);
        if (c.b) {
            o.name = "conv.db";
            assert_int_equal(gc_check(&o, conv_loss, &c, c.b, c.db, (size_t)c.cv.OC, NULL), 0);
        }
        case_free(&c);
    }
}

/* Backward ACCUMULATES: twice from zero is exactly 2x once, and it adds to what
 * is already there. Integer data keep every sum exact, so equality is exact. */
static void test_backward_accumulates(void **state)
{
    (void)state;
    for (size_t g = 0; g < N_GEOMS; g++) {
        struct conv_case c;
        case_init(&c, &GEOMS[g], 400 + g);
        struct dim_rng rng;
        dim_rng_seed(&rng, 400 + g, 3);
        fill_small_ints(c.in, c.n_in, &rng);
        fill_small_ints(c.w, c.n_w, &rng);
        fill_small_ints(c.dout, c.n_out, &rng);
        size_t oc = (size_t)c.cv.OC;
        nn_conv2d_forward(c.out, c.col, c.scratch, c.in, c.w, c.b, &c.cv, c.B);

        float *din1 = alloc_floats(c.n_in), *dw1 = alloc_floats(c.n_w), *db1 = alloc_floats(oc);
        nn_conv2d_backward(din1, dw1, db1, c.scratch, c.dout, c.col, c.w, &c.cv, c.B);
        nn_conv2d_backward(c.din, c.dw, c.db, c.scratch, c.dout, c.col, c.w, &c.cv, c.B);
        nn_conv2d_backward(c.din, c.dw, c.db, c.scratch, c.dout, c.col, c.w, &c.cv, c.B);
        for (size_t i = 0; i < c.n_in; i++)
            assert_true(c.din[i] == 2.0f * din1[i]);
        for (size_t i = 0; i < c.n_w; i++)
            assert_true(c.dw[i] == 2.0f * dw1[i]);
        for (size_t i = 0; i < oc; i++)
            assert_true(c.db[i] == 2.0f * db1[i]);

        /* starting from non-zero buffers adds the same gradient on top */
        for (size_t i = 0; i < c.n_in; i++)
            c.din[i] = 7.0f;
        for (size_t i = 0; i < c.n_w; i++)
            c.dw[i] = -5.0f;
        for (size_t i = 0; i < oc; i++)
            c.db[i] = 3.0f;
        nn_conv2d_backward(c.din, c.dw, c.db, c.scratch, c.dout, c.col, c.w, &c.cv, c.B);
        for (size_t i = 0; i < c.n_in; i++)
            assert_true(c.din[i] == 7.0f + din1[i]);
        for (size_t i = 0; i < c.n_w; i++)
            assert_true(c.dw[i] == -5.0f + dw1[i]);
        for (size_t i = 0; i < oc; i++)
            assert_true(c.db[i] == 3.0f + db1[i]);

        /* din == NULL and db == NULL skip those outputs and leave dw unchanged */
        memset(c.dw, 0, sizeof(float) * c.n_w);
        nn_conv2d_backward(NULL, c.dw, NULL, c.scratch, c.dout, c.col, c.w, &c.cv, c.B);
        assert_memory_equal(c.dw, dw1, sizeof(float) * c.n_w);

        free(din1);
        free(dw1);
        free(db1);
        case_free(&c);
    }
}

/* The checker itself must catch a wrong gradient: a negated or scaled entry of a
 * correct dw fails, the correct dw passes. */
static void test_checker_catches_wrong_gradient(void **state)
{
    (void)state;
    struct conv_case c;
    case_init(&c, &GEOMS[1], 500);
    conv_loss(&c);
    memcpy(c.dout, c.r, sizeof(float) * c.n_out);
    nn_conv2d_backward(c.din, c.dw, c.db, c.scratch, c.dout, c.col, c.w, &c.cv, c.B);
    struct gc_opts o = gc_opts_default("conv.dw");
    o.max_checks = 0;
    o.quiet = true; /* failures below are expected */
    struct gc_result res;
    assert_int_equal(gc_check(&o, conv_loss, &c, c.w, c.dw, c.n_w, &res), 0);
    assert_int_equal(res.checked, c.n_w);
    assert_true(res.worst_ratio < 1.0);
    /* negate every clearly non-zero entry: each one must fail */
    size_t n_neg = 0, big = 0;
    for (size_t i = 0; i < c.n_w; i++) {
        if (fabsf(c.dw[i]) > fabsf(c.dw[big]))
            big = i;
        if (fabsf(c.dw[i]) > 0.1f) {
            c.dw[i] = -c.dw[i];
            n_neg++;
        }
    }
    assert_true(n_neg > c.n_w / 2);
    assert_int_equal(gc_check(&o, conv_loss, &c, c.w, c.dw, c.n_w, &res), n_neg);
    assert_true(res.worst_ratio > 1.0);
    /* restore, then a 10% error in the largest entry alone */
    for (size_t i = 0; i < c.n_w; i++)
        if (fabsf(c.dw[i]) > 0.1f)
            c.dw[i] = -c.dw[i];
    c.dw[big] *= 1.1f;
    assert_int_equal(gc_check(&o, conv_loss, &c, c.w, c.dw, c.n_w, &res), 1);
    assert_int_equal(res.worst_index, big);
    case_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_geometry),
        cmocka_unit_test(test_forward_matches_naive),
        cmocka_unit_test(test_forward_exact_on_integers),
        cmocka_unit_test(test_forward_identity_kernel),
        cmocka_unit_test(test_gradients),
        cmocka_unit_test(test_backward_accumulates),
        cmocka_unit_test(test_checker_catches_wrong_gradient),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

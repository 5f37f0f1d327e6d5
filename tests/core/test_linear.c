/* test_linear.c - fully connected layer: forward against a direct loop,
 * gradients by central differences, accumulation and NULL-skip semantics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gradcheck.h"
#include "nn/linear.h"

struct lin_case {
    size_t B, I, O;
    float *in, *w, *b, *out, *ref, *r;
    float *din, *dw, *db, *dout;
};

static float *alloc_floats(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof(float));
    assert_non_null(p);
    return p;
}

static void case_init(struct lin_case *c, size_t B, size_t I, size_t O, bool bias, uint64_t seed)
{
    memset(c, 0, sizeof *c);
    c->B = B;
    c->I = I;
    c->O = O;
    c->in = alloc_floats(B * I);
    c->w = alloc_floats(O * I);
    c->b = bias ? alloc_floats(O) : NULL;
    c->out = alloc_floats(B * O);
    c->ref = alloc_floats(B * O);
    c->r = alloc_floats(B * O);
    c->din = alloc_floats(B * I);
    c->dw = alloc_floats(O * I);
    c->db = alloc_floats(O);
    c->dout = alloc_floats(B * O);
    struct dim_rng rng;
    dim_rng_seed(&rng, seed, 1);
    gc_fill_normal(c->in, B * I, 1.0f, &rng);
    gc_fill_normal(c->w, O * I, 0.5f, &rng);
    if (c->b)
        gc_fill_normal(c->b, O, 0.5f, &rng);
    gc_fill_normal(c->r, B * O, 1.0f, &rng);
}

static void case_free(struct lin_case *c)
{
    free(c->in);
    free(c->w);
    free(c->b);
    free(c->out);
    free(c->ref);
    free(c->r);
    free(c->din);
    free(c->dw);
    free(c->db);
    free(c->dout);
}

/* out[n][o] = sum_i in[n][i] w[o][i] + b[o], in double */
static void linear_ref(const struct lin_case *c)
{
    for (size_t n = 0; n < c->B; n++)
        for (size_t o = 0; o < c->O; o++) {
            double s = c->b ? c->b[o] : 0.0;
            for (size_t i = 0; i < c->I; i++)
                s += (double)c->in[n * c->I + i] * c->w[o * c->I + i];
            c->ref[n * c->O + o] = (float)s;
        }
}

static double lin_loss(void *ctx)
{
    struct lin_case *c = ctx;
    nn_linear_forward(c->out, c->in, c->w, c->b, c->B, c->I, c->O);
    return gc_project(c->out, c->r, c->B * c->O, NULL);
}

static const size_t SHAPES[][3] = {{1, 1, 1}, {1, 7, 3}, {4, 5, 6}, {3, 17, 2}, {8, 3, 9}};
#define N_SHAPES (sizeof SHAPES / sizeof SHAPES[0])

static void test_forward_matches_loop(void **state)
{
    (void)state;
    for (size_t s = 0; s < N_SHAPES; s++)
        for (int bias = 0; bias < 2; bias++) {
            struct lin_case c;
            case_init(&c, SHAPES[s][0], SHAPES[s][1], SHAPES[s][2], bias, 10 * s + bias);
            /* stale values in out must not leak into the result (beta 0 without bias) */
            for (size_t i = 0; i < c.B * c.O; i++)
                c.out[i] = 1e6f;
            nn_linear_forward(c.out, c.in, c.w, c.b, c.B, c.I, c.O);
            linear_ref(&c);
            assert_int_equal(
                gc_compare("linear.forward", c.out, c.ref, c.B * c.O, 1e-5, 1e-5, NULL), 0);
            case_free(&c);
        }
}

static void test_gradients(void **state)
{
    (void)state;
    for (size_t s = 0; s < N_SHAPES; s++)
        for (int bias = 0; bias < 2; bias++) {
            struct lin_case c;
            case_init(&c, SHAPES[s][0], SHAPES[s][1], SHAPES[s][2], bias, 100 + 10 * s + bias);
            lin_loss(&c);
            memcpy(c.dout, c.r, sizeof(float) * c.B * c.O);
            nn_linear_backward(c.din, c.dw, c.b ? c.db : NULL, c.dout, c.in, c.w, c.B, c.I, c.O);
            /* linear in each argument: exact up to rounding */
            struct gc_opts o = gc_opts_default("linear.din");
            o.rtol = 5e-3;
            o.atol = 5e-4;
            assert_int_equal(gc_check(&o, lin_loss, &c, c.in, c.din, c.B * c.I, NULL), 0);
            o.name = "linear.dw";
            assert_int_equal(gc_check(&o, lin_loss, &c, c.w, c.dw, c.O * c.I, NULL), 0);
            if (c.b) {
                o.name = "linear.db";
                assert_int_equal(gc_check(&o, lin_loss, &c, c.b, c.db, c.O, NULL), 0);
            }
            case_free(&c);
        }
}

/* Integer data keep every sum exact, so accumulation is checked bit for bit. */
static void test_backward_accumulates(void **state)
{
    (void)state;
    struct lin_case c;
    case_init(&c, 4, 5, 3, true, 7);
    struct dim_rng rng;
    dim_rng_seed(&rng, 7, 2);
    float *all[] = {c.in, c.w, c.dout};
    size_t len[] = {c.B * c.I, c.O * c.I, c.B * c.O};
    for (int a = 0; a < 3; a++)
        for (size_t i = 0; i < len[a]; i++)
            all[a][i] = (float)((int)dim_rng_below(&rng, 7) - 3);
    float *din1 = alloc_floats(c.B * c.I), *dw1 = alloc_floats(c.O * c.I), *db1 = alloc_floats(c.O);
    nn_linear_backward(din1, dw1, db1, c.dout, c.in, c.w, c.B, c.I, c.O);
    for (size_t i = 0; i < c.B * c.I; i++)
        c.din[i] = 1.0f;
    for (size_t i = 0; i < c.O * c.I; i++)
        c.dw[i] = -2.0f;
    for (size_t i = 0; i < c.O; i++)
        c.db[i] = 4.0f;
    nn_linear_backward(c.din, c.dw, c.db, c.dout, c.in, c.w, c.B, c.I, c.O);
    nn_linear_backward(c.din, c.dw, c.db, c.dout, c.in, c.w, c.B, c.I, c.O);
    for (size_t i = 0; i < c.B * c.I; i++)
        assert_true(c.din[i] == 1.0f + 2.0f * din1[i]);
    for (size_t i = 0; i < c.O * c.I; i++)
        assert_true(c.dw[i] == -2.0f + 2.0f * dw1[i]);
    for (size_t i = 0; i < c.O; i++)
        assert_true(c.db[i] == 4.0f + 2.0f * db1[i]);
    /* hand-checked entries: din = dout W, db = column sums of dout */
    for (size_t n = 0; n < c.B; n++)
        for (size_t i = 0; i < c.I; i++) {
            float s = 0.0f;
            for (size_t o = 0; o < c.O; o++)
                s += c.dout[n * c.O + o] * c.w[o * c.I + i];
            assert_true(din1[n * c.I + i] == s);
        }
    for (size_t o = 0; o < c.O; o++) {
        float s = 0.0f;
        for (size_t n = 0; n < c.B; n++)
            s += c.dout[n * c.O + o];
        assert_true(db1[o] == s);
    }
    /* NULL din and db are skipped; dw is the same */
    memset(c.dw, 0, sizeof(float) * c.O * c.I);
    nn_linear_backward(NULL, c.dw, NULL, c.dout, c.in, c.w, c.B, c.I, c.O);
    assert_memory_equal(c.dw, dw1, sizeof(float) * c.O * c.I);
    free(din1);
    free(dw1);
    free(db1);
    case_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_matches_loop),
        cmocka_unit_test(test_gradients),
        cmocka_unit_test(test_backward_accumulates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

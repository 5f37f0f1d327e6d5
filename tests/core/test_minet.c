/* test_minet.c - the MI network of dim/minet: forward against a naive double
 * reference, gradients of loss = sum(out * r) by central differences with respect
 * to the input and every parameter, accumulation, the near-identity shortcut and
 * the layer norm's statistics at initialisation.
 *
 * Tolerances for the gradient check (the whole-net row of gradcheck.h): eps 5e-3,
 * rtol 3e-2, atol 2e-3, every entry checked. The net has batch norm and layer
 * norm in its chain (curvature), and one ReLU: entries whose perturbed
 * evaluations flip a ReLU input's sign are skipped through the kink callback
 * (and must stay rare). The output of layer norm is O(1) and r ~ N(0, 1), so the
 * gradients are O(0.1..1) and the absolute tolerance is not vacuous. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dim/minet.h"
#include "gradcheck.h"

#define RELU_LAYER 2 /* linear, bn, relu, linear */

struct mi_case {
    struct dim_minet mi;
    struct dim_minet_ws ws;
    float *params, *grads, *state, *slab;
    float *x, *dx, *r;
    size_t R, n_x, n_out;
    bool *ref_pos;
    size_t kinks;
};

static float *alloc_floats(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof(float));
    assert_non_null(p);
    return p;
}

static void case_init(struct mi_case *c, int cin, int D, size_t R, uint64_t seed)
{
    memset(c, 0, sizeof *c);
    assert_int_equal(dim_minet_init(&c->mi, cin, D), 0);
    c->params = alloc_floats(c->mi.n_params);
    c->grads = alloc_floats(c->mi.n_params);
    c->state = alloc_floats(c->mi.n_state);
    dim_minet_bind(&c->mi, c->params, c->grads, c->state);
    struct dim_rng rng;
    dim_rng_seed(&rng, seed, 5);
    dim_minet_init_params(&c->mi, &rng);
    c->R = R;
    /* exactly the advertised workspace, in a malloc'd block so ASan sees overruns */
    size_t nws = dim_minet_ws_floats(&c->mi, R);
    c->slab = malloc(sizeof(float) * nws);
    assert_non_null(c->slab);
    dim_minet_ws_carve(&c->mi, &c->ws, c->slab, R);
    c->n_x = R * (size_t)cin;
    c->n_out = R * (size_t)D;
    c->x = alloc_floats(c->n_x);
    c->dx = alloc_floats(c->n_x);
    c->r = alloc_floats(c->n_out);
    gc_fill_normal(c->x, c->n_x, 1.0f, &rng);
    gc_fill_normal(c->r, c->n_out, 1.0f, &rng);
    c->ref_pos = calloc(c->n_out, sizeof(bool));
    assert_non_null(c->ref_pos);
}

static void case_free(struct mi_case *c)
{
    free(c->params);
    free(c->grads);
    free(c->state);
    free(c->slab);
    free(c->x);
    free(c->dx);
    free(c->r);
    free(c->ref_pos);
}

static double mi_loss(void *ctx)
{
    struct mi_case *c = ctx;
    dim_minet_forward(&c->mi, &c->ws, c->x, c->R);
    return gc_project(c->ws.out, c->r, c->n_out, NULL);
}

static bool relu_changed(struct mi_case *c, bool record)
{
    const float *y = c->ws.a.act[RELU_LAYER];
    bool changed = false;
    for (size_t j = 0; j < c->n_out; j++) {
        bool pos = y[j] > 0.0f;
        if (record)
            c->ref_pos[j] = pos;
        else
            changed |= pos != c->ref_pos[j];
    }
    return changed;
}

static bool mi_kinked(void *ctx)
{
    struct mi_case *c = ctx;
    bool k = relu_changed(c, false);
    c->kinks += k;
    return k;
}

/* Analytic gradients of mi_loss into c->grads and c->dx (both zeroed first). */
static void mi_gradients(struct mi_case *c, float *dx)
{
    memset(c->grads, 0, sizeof(float) * c->mi.n_params);
    if (dx)
        memset(dx, 0, sizeof(float) * c->n_x);
    dim_minet_forward(&c->mi, &c->ws, c->x, c->R);
    relu_changed(c, true);
    gc_project(c->ws.out, c->r, c->n_out, c->ws.dout);
    dim_minet_backward(&c->mi, &c->ws, c->x, dx, c->R);
}

/* Naive minet in double: out (R, D). */
static void ref_forward(const struct mi_case *c, double *out)
{
    const struct dim_minet *mi = &c->mi;
    const int cin = mi->cin, D = mi->D;
    const size_t R = c->R;
    const struct nn_layer *L0 = &mi->a.L[0], *L1 = &mi->a.L[1], *L3 = &mi->a.L[3];
    const float *w1 = mi->a.params + L0->w, *gam = mi->a.params + L1->w,
                *bet = mi->a.params + L1->b, *w2 = mi->a.params + L3->w, *b2 = mi->a.params + L3->b,
                *ws = mi->s.params + mi->s.L[0].w;
    double *h = calloc(R * (size_t)D, sizeof(double));
    assert_non_null(h);
    for (size_t r = 0; r < R; r++)
        for (int d = 0; d < D; d++) {
            double s = 0;
            for (int k = 0; k < cin; k++)
                s += (double)w1[d * cin + k] * c->x[r * cin + k];
            h[r * D + d] = s;
        }
    for (int d = 0; d < D; d++) { /* batch norm over the R rows, biased variance */
        double mean = 0, var = 0;
        for (size_t r = 0; r < R; r++)
            mean += h[r * D + d];
        mean /= (double)R;
        for (size_t r = 0; r < R; r++)
            var += (h[r * D + d] - mean) * (h[r * D + d] - mean);
        var /= (double)R;
        for (size_t r = 0; r < R; r++) {
            double v = gam[d] * (h[r * D + d] - mean) / sqrt(var + 1e-5) + bet[d];
            h[r * D + d] = v > 0 ? v : 0;
        }
    }
    for (size_t r = 0; r < R; r++) {
        double *o = out + r * D;
        for (int d = 0; d < D; d++) {
            double a = b2[d], s = 0;
            for (int k = 0; k < D; k++)
                a += (double)w2[d * D + k] * h[r * D + k];
            for (int k = 0; k < cin; k++)
                s += (double)ws[d * cin + k] * c->x[r * cin + k];
            o[d] = a + s;
        }
        double mean = 0, var = 0;
        for (int d = 0; d < D; d++)
            mean += o[d];
        mean /= D;
        for (int d = 0; d < D; d++)
            var += (o[d] - mean) * (o[d] - mean);
        var /= D;
        for (int d = 0; d < D; d++)
            o[d] = mi->params[mi->ln_g + d] * (o[d] - mean) / sqrt(var + 1e-5) +
                   mi->params[mi->ln_b + d];
    }
    free(h);
}

static void test_layout(void **state)
{
    (void)state;
    struct dim_minet mi;
    assert_int_equal(dim_minet_init(&mi, 5, 6), 0);
    /* a: W1 (6x5) + BN (6+6) + W2 (6x6) + b2 (6); s: 6x5; LN: 6 + 6 */
    assert_int_equal(mi.a.n_params, 30 + 12 + 36 + 6);
    assert_int_equal(mi.s.n_params, 30);
    assert_int_equal(mi.ln_g, 84 + 30);
    assert_int_equal(mi.ln_b, 84 + 30 + 6);
    assert_int_equal(mi.n_params, 84 + 30 + 12);
    assert_int_equal(mi.n_state, 12);
    assert_int_equal(mi.a.L[RELU_LAYER].op, NN_RELU);
    assert_int_equal(dim_minet_init(&mi, 5, 0), -1);
    assert_int_equal(dim_minet_init(&mi, 0, 4), -1);
}

static void test_forward_reference(void **state)
{
    (void)state;
    struct mi_case c;
    case_init(&c, 5, 6, 9, 31);
    /* move every parameter off its initial value so each one matters */
    struct dim_rng rng;
    dim_rng_seed(&rng, 32, 1);
    gc_fill_normal(c.params, c.mi.n_params, 0.5f, &rng);
    double *want = calloc(c.n_out, sizeof(double));
    assert_non_null(want);
    ref_forward(&c, want);
    dim_minet_forward(&c.mi, &c.ws, c.x, c.R);
    for (size_t j = 0; j < c.n_out; j++)
        if (!(fabs(c.ws.out[j] - want[j]) <= 1e-4 * (1.0 + fabs(want[j]))))
            fail_msg("out[%zu] = %.7g, reference %.7g", j, (double)c.ws.out[j], want[j]);
    free(want);
    case_free(&c);
}

static void test_gradients(void **state)
{
    (void)state;
    struct mi_case c;
    case_init(&c, 5, 6, 8, 41);
    /* generic values for BN and LN affine, and a shortcut that is not the identity */
    struct dim_rng rng;
    dim_rng_seed(&rng, 42, 1);
    const struct nn_layer *bn = &c.mi.a.L[1];
    gc_fill_uniform(c.params + bn->w, 6, 0.5f, 1.5f, &rng);
    gc_fill_normal(c.params + bn->b, 6, 0.3f, &rng);
    gc_fill_normal(c.mi.s.params, c.mi.s.n_params, 0.4f, &rng);
    gc_fill_uniform(c.params + c.mi.ln_g, 6, 0.5f, 1.5f, &rng);
    gc_fill_normal(c.params + c.mi.ln_b, 6, 0.3f, &rng);
    mi_gradients(&c, c.dx);

    struct gc_opts o = gc_opts_default("minet.dx");
    o.eps = 5e-3;
    o.rtol = 3e-2;
    o.atol = 2e-3;
    o.max_checks = 0;
    o.kink = mi_kinked;
    struct gc_result res;
    size_t checked = 0, skipped = 0;
    assert_int_equal(gc_check(&o, mi_loss, &c, c.x, c.dx, c.n_x, &res), 0);
    checked += res.checked;
    skipped += res.skipped;
    /* every parameter, one bound array at a time: nonlinear path, shortcut, LN affine */
    const struct {
        const char *name;
        size_t off, n;
    } parts[] = {
        {"minet.a (W1, bn, W2, b2)", 0, c.mi.a.n_params},
        {"minet.s (shortcut)", c.mi.a.n_params, c.mi.s.n_params},
        {"minet.ln (gamma, beta)", c.mi.ln_g, 2 * (size_t)c.mi.D},
    };
    for (size_t p = 0; p < 3; p++) {
        o.name = parts[p].name;
        assert_int_equal(gc_check(&o, mi_loss, &c, c.params + parts[p].off, c.grads + parts[p].off,
                                  parts[p].n, &res),
                         0);
        checked += res.checked;
        skipped += res.skipped;
    }
    assert_int_equal(checked + skipped, c.n_x + c.mi.n_params);
    assert_true(skipped * 10 < checked);
    /* the gradients are O(0.1..1), well above atol */
    double mx = 0;
    for (size_t j = 0; j < c.mi.n_params; j++)
        mx = fmax(mx, fabs(c.grads[j]));
    assert_true(mx > 0.1);
    case_free(&c);
}

/* dx and parameter gradients accumulate; dx may be NULL. */
static void test_backward_accumulates(void **state)
{
    (void)state;
    struct mi_case c;
    case_init(&c, 4, 7, 6, 51);
    mi_gradients(&c, c.dx);
    float *g1 = alloc_floats(c.mi.n_params), *dx1 = alloc_floats(c.n_x);
    memcpy(g1, c.grads, sizeof(float) * c.mi.n_params);
    memcpy(dx1, c.dx, sizeof(float) * c.n_x);
    gc_project(c.ws.out, c.r, c.n_out, c.ws.dout);
    dim_minet_backward(&c.mi, &c.ws, c.x, c.dx, c.R);
    for (size_t j = 0; j < c.mi.n_params; j++)
        assert_true(fabsf(c.grads[j] - 2.0f * g1[j]) <= 1e-5f * (1.0f + fabsf(g1[j])));
    for (size_t j = 0; j < c.n_x; j++)
        assert_true(fabsf(c.dx[j] - 2.0f * dx1[j]) <= 1e-5f * (1.0f + fabsf(dx1[j])));
    mi_gradients(&c, NULL);
    assert_int_equal(
        gc_compare("minet.grads (dx NULL)", c.grads, g1, c.mi.n_params, 1e-6, 1e-5, NULL), 0);
    free(g1);
    free(dx1);
    case_free(&c);
}

/* Shortcut W (D, cin): 1 at [c][c] for c < cin, |others| <= 0.01 and not all 0;
 * also with D < cin (then the diagonal stops at D). LN gamma 1, beta 0. */
static void test_shortcut_near_identity(void **state)
{
    (void)state;
    const int shapes[][2] = {{5, 9}, {6, 6}, {8, 3}};
    for (int s = 0; s < 3; s++) {
        struct mi_case c;
        const int cin = shapes[s][0], D = shapes[s][1];
        case_init(&c, cin, D, 4, 60 + (uint64_t)s);
        const float *w = c.mi.s.params + c.mi.s.L[0].w;
        assert_int_equal(c.mi.s.n_params, (size_t)D * cin);
        size_t nonzero = 0;
        for (int d = 0; d < D; d++)
            for (int k = 0; k < cin; k++) {
                float v = w[(size_t)d * cin + k];
                if (d == k) {
                    assert_true(v == 1.0f);
                } else {
                    assert_true(fabsf(v) <= 0.01f);
                    nonzero += v != 0.0f;
                }
            }
        assert_true(nonzero > 0);
        for (int d = 0; d < D; d++) {
            assert_true(c.params[c.mi.ln_g + d] == 1.0f);
            assert_true(c.params[c.mi.ln_b + d] == 0.0f);
        }
        case_free(&c);
    }
}

/* At init (gamma 1, beta 0) each output row has mean ~0 and variance ~1 over D. */
static void test_layernorm_rows_at_init(void **state)
{
    (void)state;
    struct mi_case c;
    const int D = 16;
    case_init(&c, 6, D, 10, 71);
    for (size_t j = 0; j < c.n_x; j++)
        c.x[j] = 3.0f * c.x[j] + 2.0f; /* far from normalised on input */
    dim_minet_forward(&c.mi, &c.ws, c.x, c.R);
    for (size_t r = 0; r < c.R; r++) {
        const float *o = c.ws.out + r * D;
        double mean = 0, var = 0;
        for (int d = 0; d < D; d++)
            mean += o[d];
        mean /= D;
        for (int d = 0; d < D; d++)
            var += (o[d] - mean) * (o[d] - mean);
        var /= D;
        assert_true(fabs(mean) < 1e-5);
        assert_true(fabs(var - 1.0) < 1e-3);
    }
    case_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_forward_reference),
        cmocka_unit_test(test_gradients),
        cmocka_unit_test(test_backward_accumulates),
        cmocka_unit_test(test_shortcut_near_identity),
        cmocka_unit_test(test_layernorm_rows_at_init),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

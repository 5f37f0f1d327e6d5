/* test_activation.c - ReLU, sigmoid, softplus (stability at the extremes) and the
 * dropout mask multiply: values, gradients, accumulation. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gradcheck.h"
#include "nn/activation.h"

#define N 40

static void test_softplus_values(void **state)
{
    (void)state;
    assert_true(fabs(nn_softplus(0.0) - log(2.0)) < 1e-15);
    for (double z = -30.0; z <= 30.0; z += 0.37)
        assert_true(fabs(nn_softplus(z) - log1p(exp(z))) <= 1e-14 * (1.0 + fabs(z)));
    /* softplus(z) - softplus(-z) = z */
    for (double z = 0.1; z < 50.0; z *= 1.7)
        assert_true(fabs(nn_softplus(z) - nn_softplus(-z) - z) <= 1e-14 * z);
}

static void test_softplus_stable_at_extremes(void **state)
{
    (void)state;
    /* the naive log(1 + exp(1000)) is inf; the stable form returns the limits */
    double hi = nn_softplus(1000.0), lo = nn_softplus(-1000.0);
    assert_true(isfinite(hi) && isfinite(lo));
    assert_true(hi == 1000.0);
    assert_true(lo == 0.0);
    assert_true(nn_softplus(1e30) == 1e30);
    assert_true(nn_softplus(-1e30) == 0.0);
    /* tiny but not yet zero: softplus(-700) ~ e^-700 */
    double t = nn_softplus(-700.0);
    assert_true(t > 0.0 && fabs(t - exp(-700.0)) <= 1e-12 * exp(-700.0));
}

static void test_sigmoid_values(void **state)
{
    (void)state;
    assert_true(nn_sigmoid(0.0) == 0.5);
    for (double z = -30.0; z <= 30.0; z += 0.37) {
        double want = 1.0 / (1.0 + exp(-z));
        assert_true(fabs(nn_sigmoid(z) - want) <= 1e-15);
        assert_true(fabs(nn_sigmoid(-z) - (1.0 - want)) <= 1e-15);
    }
    double hi = nn_sigmoid(1000.0), lo = nn_sigmoid(-1000.0);
    assert_true(isfinite(hi) && isfinite(lo));
    assert_true(hi == 1.0);
    assert_true(lo == 0.0);
    /* d softplus / dz = sigmoid, by central differences in double */
    for (double z = -8.0; z <= 8.0; z += 0.5) {
        double h = 1e-5, num = (nn_softplus(z + h) - nn_softplus(z - h)) / (2.0 * h);
        assert_true(fabs(num - nn_sigmoid(z)) < 1e-8);
    }
}

static void test_sigmoid_kernels(void **state)
{
    (void)state;
    const float in[6] = {-1000.0f, -20.0f, -0.5f, 0.0f, 3.0f, 1000.0f};
    float out[6], din[6], dout[6] = {1, 1, 1, 1, 1, 1};
    nn_sigmoid_forward(out, in, 6);
    for (int i = 0; i < 6; i++) {
        assert_true(isfinite(out[i]));
        assert_true(fabsf(out[i] - (float)nn_sigmoid(in[i])) == 0.0f);
    }
    assert_true(out[0] == 0.0f && out[5] == 1.0f && out[3] == 0.5f);
    for (int i = 0; i < 6; i++)
        din[i] = 0.25f;
    nn_sigmoid_backward(din, dout, out, 6);
    for (int i = 0; i < 6; i++) {
        assert_true(isfinite(din[i]));
        float want = 0.25f + out[i] * (1.0f - out[i]);
        assert_true(fabsf(din[i] - want) <= 1e-7f);
    }
    assert_true(din[0] == 0.25f && din[5] == 0.25f); /* saturated: no gradient */
}

struct elt_case {
    float in[N], out[N], r[N], mask[N];
    int op; /* 0 relu, 1 sigmoid, 2 mul */
    int sign_changes;
    bool ref_pos[N];
};

static double elt_loss(void *ctx)
{
    struct elt_case *k = ctx;
    if (k->op == 0)
        nn_relu_forward(k->out, k->in, N);
    else if (k->op == 1)
        nn_sigmoid_forward(k->out, k->in, N);
    else
        nn_mul_forward(k->out, k->in, k->mask, N);
    return gc_project(k->out, k->r, N, NULL);
}

/* Kink test for ReLU: did the last evaluation flip the sign of any input? */
static bool relu_kinked(void *ctx)
{
    struct elt_case *k = ctx;
    for (int i = 0; i < N; i++)
        if ((k->in[i] > 0.0f) != k->ref_pos[i]) {
            k->sign_changes++;
            return true;
        }
    return false;
}

static void elt_grad(struct elt_case *k, float *din)
{
    float dout[N];
    elt_loss(k);
    gc_project(k->out, k->r, N, dout);
    memset(din, 0, sizeof(float) * N);
    if (k->op == 0)
        nn_relu_backward(din, dout, k->out, N);
    else if (k->op == 1)
        nn_sigmoid_backward(din, dout, k->out, N);
    else
        nn_mul_backward(din, dout, k->mask, N);
}

static void test_relu(void **state)
{
    (void)state;
    struct elt_case k = {.op = 0};
    struct dim_rng rng;
    dim_rng_seed(&rng, 1, 1);
    gc_fill_away_from_zero(k.in, N, 0.05f, 2.0f, &rng);
    gc_fill_normal(k.r, N, 1.0f, &rng);
    nn_relu_forward(k.out, k.in, N);
    for (int i = 0; i < N; i++)
        assert_true(k.out[i] == (k.in[i] > 0.0f ? k.in[i] : 0.0f));
    float din[N];
    elt_grad(&k, din);
    for (int i = 0; i < N; i++)
        assert_true(din[i] == (k.in[i] > 0.0f ? k.r[i] : 0.0f));
    /* inputs at least 0.05 from the kink, eps 1e-2: plain check */
    struct gc_opts o = gc_opts_default("relu.din");
    o.max_checks = 0;
    assert_int_equal(gc_check(&o, elt_loss, &k, k.in, din, N, NULL), 0);

    /* inputs on or next to the kink: the kink callback skips exactly those */
    k.in[3] = 0.0f;
    k.in[7] = 0.004f;
    k.in[11] = -0.002f;
    for (int i = 0; i < N; i++)
        k.ref_pos[i] = k.in[i] > 0.0f;
    elt_grad(&k, din);
    o.kink = relu_kinked;
    struct gc_result res;
    assert_int_equal(gc_check(&o, elt_loss, &k, k.in, din, N, &res), 0);
    assert_int_equal(res.skipped, 3);
    assert_int_equal(res.checked, N - 3);
    /* without the kink test those entries are wrong by ~half a unit of r */
    o.kink = NULL;
    o.quiet = true;
    assert_true(gc_check(&o, elt_loss, &k, k.in, din, N, NULL) >= 2);

    /* backward accumulates and keys on out > 0 */
    float base[N];
    for (int i = 0; i < N; i++)
        base[i] = din[i] = (float)i;
    nn_relu_backward(din, k.r, k.out, N);
    for (int i = 0; i < N; i++)
        assert_true(din[i] == base[i] + (k.out[i] > 0.0f ? k.r[i] : 0.0f));
}

static void test_sigmoid_gradcheck(void **state)
{
    (void)state;
    struct elt_case k = {.op = 1};
    struct dim_rng rng;
    dim_rng_seed(&rng, 2, 1);
    gc_fill_uniform(k.in, N, -6.0f, 6.0f, &rng);
    gc_fill_normal(k.r, N, 1.0f, &rng);
    float din[N];
    elt_grad(&k, din);
    struct gc_opts o = gc_opts_default("sigmoid.din");
    o.max_checks = 0;
    assert_int_equal(gc_check(&o, elt_loss, &k, k.in, din, N, NULL), 0);
}

static void test_dropout_mul(void **state)
{
    (void)state;
    struct elt_case k = {.op = 2};
    struct dim_rng rng;
    dim_rng_seed(&rng, 3, 1);
    gc_fill_normal(k.in, N, 1.0f, &rng);
    gc_fill_normal(k.r, N, 1.0f, &rng);
    const float p = 0.25f, keep = 1.0f / (1.0f - p);
    for (int i = 0; i < N; i++)
        k.mask[i] = i % 4 == 1 ? 0.0f : keep;
    nn_mul_forward(k.out, k.in, k.mask, N);
    for (int i = 0; i < N; i++)
        assert_true(k.out[i] == (i % 4 == 1 ? 0.0f : k.in[i] * keep));
    float din[N];
    elt_grad(&k, din);
    for (int i = 0; i < N; i++)
        assert_true(din[i] == k.r[i] * k.mask[i]);
    struct gc_opts o = gc_opts_default("mul.din");
    o.max_checks = 0;
    o.rtol = 5e-3;
    o.atol = 5e-4;
    assert_int_equal(gc_check(&o, elt_loss, &k, k.in, din, N, NULL), 0);
    /* accumulates */
    nn_mul_backward(din, k.r, k.mask, N);
    for (int i = 0; i < N; i++)
        assert_true(din[i] == 2.0f * k.r[i] * k.mask[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_softplus_values),
        cmocka_unit_test(test_softplus_stable_at_extremes),
        cmocka_unit_test(test_sigmoid_values),
        cmocka_unit_test(test_sigmoid_kernels),
        cmocka_unit_test(test_relu),
        cmocka_unit_test(test_sigmoid_gradcheck),
        cmocka_unit_test(test_dropout_mul),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_adam.c - Adam: hand-computed steps against the formula of adam.c, and the
 * minimisation of a quadratic. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nn/adam.h"

/* Reference step in double:
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *   p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps) */
static void adam_ref(double *p, const double *g, double *m, double *v, size_t n, double lr,
                     double b1, double b2, double eps, unsigned t)
{
    for (size_t i = 0; i < n; i++) {
        m[i] = b1 * m[i] + (1.0 - b1) * g[i];
        v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
        double mh = m[i] / (1.0 - pow(b1, t)), vh = v[i] / (1.0 - pow(b2, t));
        p[i] -= lr * mh / (sqrt(vh) + eps);
    }
}

static void test_first_step_by_hand(void **state)
{
    (void)state;
    struct nn_adam a = {.lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .t = 0};
    float p[4] = {1.0f, -2.0f, 0.5f, 3.0f};
    const float g[4] = {0.1f, -0.3f, 2.0f, 0.0f};
    float m[4] = {0}, v[4] = {0};
    nn_adam_update(&a, p, g, m, v, 4);
    assert_int_equal(a.t, 1);
    /* first step: mhat = g, vhat = g^2, so p -= lr * g / (|g| + eps) = lr * sign(g) */
    const float want_p[4] = {1.0f - 0.01f, -2.0f + 0.01f, 0.5f - 0.01f, 3.0f};
    for (int i = 0; i < 4; i++) {
        assert_true(fabsf(p[i] - want_p[i]) <= 1e-6f);
        assert_true(fabsf(m[i] - 0.1f * g[i]) <= 1e-7f);
        double want_v = 0.001 * g[i] * g[i]; /* 1 - 0.999f is 0.001 to ~1e-5 relative */
        assert_true(fabs(v[i] - want_v) <= 1e-4 * want_v + 1e-12);
    }
    /* grads are read, not cleared */
    assert_true(g[0] == 0.1f && g[1] == -0.3f && g[2] == 2.0f && g[3] == 0.0f);
}

static void test_steps_match_formula(void **state)
{
    (void)state;
    enum { n = 5, steps = 6 };
    struct nn_adam a = {.lr = 0.05f, .beta1 = 0.8f, .beta2 = 0.95f, .eps = 1e-3f, .t = 0};
    float p[n] = {0.3f, -1.2f, 2.5f, 0.0f, -0.7f}, m[n] = {0}, v[n] = {0}, g[n];
    double pd[n], md[n] = {0}, vd[n] = {0}, gd[n];
    for (int i = 0; i < n; i++)
        pd[i] = p[i];
    for (unsigned t = 1; t <= steps; t++) {
        for (int i = 0; i < n; i++) {
            g[i] = (float)(sin(1.3 * i + 0.7 * t) * (1.0 + i)); /* varies in sign and scale */
            gd[i] = g[i];
        }
        nn_adam_update(&a, p, g, m, v, n);
        adam_ref(pd, gd, md, vd, n, 0.05, 0.8f, 0.95f, 1e-3f, t);
        assert_int_equal(a.t, t);
        for (int i = 0; i < n; i++) {
            assert_true(fabs(p[i] - pd[i]) <= 2e-6 * (1.0 + fabs(pd[i])));
            assert_true(fabs(m[i] - md[i]) <= 2e-6 * (1.0 + fabs(md[i])));
            assert_true(fabs(v[i] - vd[i]) <= 2e-6 * (1.0 + fabs(vd[i])));
        }
    }
}

/* f(p) = sum_i a_i (p_i - c_i)^2 with curvatures spanning 1e-2 .. 1e2: Adam's
 * per-coordinate scaling makes all of them converge. */
static void test_minimises_quadratic(void **state)
{
    (void)state;
    enum { n = 6 };
    const double ac[n] = {0.01, 0.1, 1.0, 10.0, 100.0, 3.0};
    const double c[n] = {1.0, -2.0, 0.5, 3.0, -1.5, 0.0};
    float p[n] = {0}, g[n], m[n] = {0}, v[n] = {0};
    struct nn_adam a = {.lr = 0.05f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .t = 0};
    double f0 = 0.0, f = 0.0;
    for (int i = 0; i < n; i++)
        f0 += ac[i] * c[i] * c[i];
    for (int step = 0; step < 3000; step++) {
        if (step == 2000)
            a.lr = 0.005f; /* a smaller step settles the last oscillation */
        for (int i = 0; i < n; i++)
            g[i] = (float)(2.0 * ac[i] * (p[i] - c[i]));
        nn_adam_update(&a, p, g, m, v, n);
    }
    for (int i = 0; i < n; i++) {
        f += ac[i] * (p[i] - c[i]) * (p[i] - c[i]);
        assert_true(fabs(p[i] - c[i]) < 2e-2);
    }
    assert_true(f < 1e-4 * f0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_step_by_hand),
        cmocka_unit_test(test_steps_match_formula),
        cmocka_unit_test(test_minimises_quadratic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_lbfgs.c - the L-BFGS minimiser on functions whose minimum is known. */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <string.h>

#include <cmocka.h>

#include "nn/lbfgs.h"

/* Rosenbrock in n dimensions: sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2, minimum 0 at all ones. */
static double rosenbrock(void *ctx, const double *x, double *g)
{
    size_t n = *(const size_t *)ctx;
    double f = 0.0;
    memset(g, 0, sizeof(double) * n);
    for (size_t i = 0; i + 1 < n; i++) {
        double a = x[i + 1] - x[i] * x[i], b = 1.0 - x[i];
        f += 100.0 * a * a + b * b;
        g[i] += -400.0 * a * x[i] - 2.0 * b;
        g[i + 1] += 200.0 * a;
    }
    return f;
}

static void test_rosenbrock_converges_to_ones(void **state)
{
    (void)state;
    size_t n = 10;
    double x[10];
    for (size_t i = 0; i < n; i++)
        x[i] = i % 2 ? 1.2 : -1.2;
    struct nn_lbfgs_opts o;
    nn_lbfgs_opts_default(&o);
    o.gtol = 1e-8;
    struct nn_lbfgs_result r;
    struct dim_err err;
    assert_int_equal(nn_lbfgs_minimise(x, n, rosenbrock, &n, &o, &r, &err), 0);
    print_message("rosenbrock: %d iterations, %d evaluations, f %.3g, |g| %.3g\n", r.iterations,
                  r.evaluations, r.f, r.gnorm);
    assert_int_equal(r.stop, NN_LBFGS_CONVERGED);
    assert_true(r.gnorm <= 1e-8);
    for (size_t i = 0; i < n; i++)
        assert_true(fabs(x[i] - 1.0) < 1e-6);
    assert_true(r.iterations < 200);
}

/* f = 1/2 sum_i c_i (x_i - i)^2 with conditioning 1e3: minimum at x_i = i. */
static double quadratic(void *ctx, const double *x, double *g)
{
    size_t n = *(const size_t *)ctx;
    double f = 0.0;
    for (size_t i = 0; i < n; i++) {
        double c = pow(1e3, (double)i / (double)(n - 1)), d = x[i] - (double)i;
        f += 0.5 * c * d * d;
        g[i] = c * d;
    }
    return f;
}

static void test_ill_conditioned_quadratic(void **state)
{
    (void)state;
    size_t n = 50;
    double x[50] = {0};
    struct nn_lbfgs_opts o;
    nn_lbfgs_opts_default(&o);
    o.gtol = 1e-7; /* |g| at the start is about 8e4 */
    struct nn_lbfgs_result r;
    assert_int_equal(nn_lbfgs_minimise(x, n, quadratic, &n, &o, &r, NULL), 0);
    print_message("quadratic: %s after %d iterations, |g| %.3g\n", nn_lbfgs_stop_name(r.stop),
                  r.iterations, r.gnorm);
    assert_int_equal(r.stop, NN_LBFGS_CONVERGED);
    for (size_t i = 0; i < n; i++)
        assert_true(fabs(x[i] - (double)i) < 1e-6);
}

/* The iteration cap is reported as such, and the point is the best one so far. */
static void test_iteration_cap_is_reported(void **state)
{
    (void)state;
    size_t n = 10;
    double x[10];
    for (size_t i = 0; i < n; i++)
        x[i] = -1.2;
    double g[10];
    double f0 = rosenbrock(&n, x, g);
    struct nn_lbfgs_opts o;
    nn_lbfgs_opts_default(&o);
    o.max_iter = 5;
    struct nn_lbfgs_result r;
    assert_int_equal(nn_lbfgs_minimise(x, n, rosenbrock, &n, &o, &r, NULL), 0);
    assert_int_equal(r.stop, NN_LBFGS_MAX_ITER);
    assert_int_equal(r.iterations, 5);
    assert_true(r.f < f0);
    assert_true(fabs(rosenbrock(&n, x, g) - r.f) == 0.0);
}

static double not_finite(void *ctx, const double *x, double *g)
{
    (void)ctx;
    g[0] = 1.0;
    return x[0] > 0.5 ? NAN : x[0] * x[0];
}

static void test_bad_input_and_nonfinite(void **state)
{
    (void)state;
    size_t n = 1;
    double x[1] = {1.0};
    struct nn_lbfgs_opts o;
    nn_lbfgs_opts_default(&o);
    struct nn_lbfgs_result r;
    struct dim_err err;
    assert_int_equal(nn_lbfgs_minimise(x, 0, rosenbrock, &n, &o, &r, &err), DIM_EINVAL);
    o.m = 0;
    assert_int_equal(nn_lbfgs_minimise(x, 1, rosenbrock, &n, &o, &r, &err), DIM_EINVAL);
    nn_lbfgs_opts_default(&o);
    assert_int_equal(nn_lbfgs_minimise(x, 1, not_finite, NULL, &o, &r, &err), DIM_ENONFINITE);
    assert_non_null(strstr(err.msg, "not finite"));
}

static void test_cancel_stops(void **state)
{
    (void)state;
    size_t n = 10;
    double x[10] = {0};
    atomic_bool stop = true;
    struct nn_lbfgs_opts o;
    nn_lbfgs_opts_default(&o);
    o.cancel = &stop;
    struct nn_lbfgs_result r;
    assert_int_equal(nn_lbfgs_minimise(x, n, rosenbrock, &n, &o, &r, NULL), DIM_ECANCELLED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rosenbrock_converges_to_ones),
        cmocka_unit_test(test_ill_conditioned_quadratic),
        cmocka_unit_test(test_iteration_cap_is_reported),
        cmocka_unit_test(test_bad_input_and_nonfinite),
        cmocka_unit_test(test_cancel_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

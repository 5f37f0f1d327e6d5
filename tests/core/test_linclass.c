/* test_linclass.c - the converged linear classifiers: gradients, optima known in
 * closed form, independence from the pool, the lambda search, and on a real
 * embedding an answer that does not move when the iteration cap is raised. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include <cmocka.h>

#include "base/parallel.h"
#include "base/rng.h"
#include "data/dataset.h"
#include "dim/model.h"
#include "eval/linclass.h"
#include "eval/probe.h"
#include "eval/stats.h"

/* n points in D dimensions: class k centred at +2 on axis k, noise 1, offset 3. */
static void blobs(float *X, uint16_t *y, size_t n, size_t D, int K, uint64_t seed)
{
    struct dim_rng r;
    dim_rng_seed(&r, seed, 2);
    for (size_t i = 0; i < n; i++) {
        y[i] = (uint16_t)(i % (size_t)K);
        for (size_t d = 0; d < D; d++)
            X[i * D + d] = dim_rng_normal(&r) + (d == y[i] ? 2.0f : 0.0f) + 3.0f;
    }
}

/* d f / d w_j by central differences in double against the analytic gradient,
 * for both losses, on a subset of the rows given by index. */
static void test_gradient_matches_differences(void **state)
{
    (void)state;
    const size_t n = 40, D = 5;
    const int K = 3;
    const size_t P = (size_t)K * (D + 1);
    float X[40 * 5];
    uint16_t y[40];
    blobs(X, y, n, D, K, 3);
    uint32_t rows[25];
    for (size_t i = 0; i < 25; i++)
        rows[i] = (uint32_t)((i * 7) % n);
    for (int loss = 0; loss < 2; loss++) {
        double w[18], g[18], gp[18];
        struct dim_rng r;
        dim_rng_seed(&r, 9, (uint64_t)loss);
        for (size_t j = 0; j < P; j++)
            w[j] = 0.3 * dim_rng_normal(&r);
        dim_linclass_objective((enum dim_linclass_loss)loss, 0.05, w, g, X, y, rows, 25, D, K);
        for (size_t j = 0; j < P; j++) {
            const double eps = 1e-3, keep = w[j];
            w[j] = keep + eps;
            double fp = dim_linclass_objective(loss, 0.05, w, gp, X, y, rows, 25, D, K);
            w[j] = keep - eps;
            double fm = dim_linclass_objective(loss, 0.05, w, gp, X, y, rows, 25, D, K);
            w[j] = keep;
            double num = (fp - fm) / (2 * eps);
            if (fabs(num - g[j]) > 1e-3 + 1e-2 * fabs(num))
                fail_msg("%s: d f / d w[%zu]: numeric %.6f, analytic %.6f",
                         dim_linclass_loss_name(loss), j, num, g[j]);
        }
    }
}

/* A pool that runs the ranges of a loop one index at a time, last first: the
 * chunks then finish in another order than serially. */
static void reverse_run(void *pool, dim_range_fn fn, void *ctx, size_t n)
{
    (void)pool;
    for (size_t i = n; i-- > 0;)
        fn(ctx, i, i + 1);
}

static void test_pool_does_not_change_bits(void **state)
{
    (void)state;
    const size_t n = 500, D = 7;
    const int K = 4;
    float *X = malloc(sizeof(float) * n * D);
    uint16_t *y = malloc(sizeof(uint16_t) * n);
    blobs(X, y, n, D, K, 4);
    double w[32], g1[32], g2[32];
    for (size_t j = 0; j < 32; j++)
        w[j] = 0.01 * (double)j - 0.1;
    double f1 = dim_linclass_objective(DIM_LINCLASS_SOFTMAX, 1e-3, w, g1, X, y, NULL, n, D, K);
    const struct dim_parallel rev = {reverse_run, NULL, 1};
    dim_parallel_use(&rev);
    double f2 = dim_linclass_objective(DIM_LINCLASS_SOFTMAX, 1e-3, w, g2, X, y, NULL, n, D, K);
    dim_parallel_use(NULL);
    assert_true(f1 == f2);
    assert_memory_equal(g1, g2, sizeof g1);
    free(X);
    free(y);
}

/* Two classes on one feature, x = +1 (class 1) and x = -1 (class 0), as many of
 * each. By symmetry the optimum has b_0 = b_1 and w_1 = -w_0 = a, so
 *   softmax: f(a) = log(1 + exp(-2a)) + lambda a^2, zero slope where
 *            lambda a (1 + exp(2a)) = 1 (solved here by bisection);
 *   svm:     f(a) = 2 (1 - a)^2 + lambda a^2 (for a <= 1), a = 2 / (2 + lambda). */
static double softmax_a(double lambda)
{
    double lo = 0.0, hi = 50.0;
    for (int i = 0; i < 200; i++) {
        double mid = 0.5 * (lo + hi);
        if (lambda * mid * (1.0 + exp(2.0 * mid)) < 1.0)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

static void test_known_optima(void **state)
{
    (void)state;
    float X[8] = {1, -1, 1, -1, 1, -1, 1, -1};
    uint16_t y[8] = {1, 0, 1, 0, 1, 0, 1, 0};
    const double lambdas[3] = {1.0, 0.1, 0.01};
    for (int loss = 0; loss < 2; loss++)
        for (int l = 0; l < 3; l++) {
            struct dim_linclass_opts o;
            dim_linclass_opts_default(&o);
            o.gtol = 1e-6; /* float32 scores: below about 1e-5 the line search sees only rounding */
            double w[4] = {0.3, -0.2, 0.1, 0.0}, *C = NULL;
            struct nn_lbfgs_result r;
            struct dim_err err;
            assert_int_equal(dim_linclass_covariance(X, NULL, 8, 1, &C, &err), 0);
            assert_int_equal(dim_linclass_fit((enum dim_linclass_loss)loss, lambdas[l], w, X, y,
                                              NULL, 8, 1, 2, C, &o, NULL, &r, &err),
                             0);
            free(C);
            double want = loss == DIM_LINCLASS_SVM ? 2.0 / (2.0 + lambdas[l])
                                                   : softmax_a(lambdas[l]);
            print_message("%s lambda %g: a = %.9f (want %.9f), %d iterations, |g| %.2e, %s\n",
                          dim_linclass_loss_name(loss), lambdas[l], w[1], want, r.iterations,
                          r.gnorm, nn_lbfgs_stop_name(r.stop));
            assert_true(r.gnorm < 2e-5);
            assert_true(fabs(w[1] - want) < 1e-5 * want);
            assert_true(fabs(w[0] + want) < 1e-5 * want);
            assert_true(fabs(w[2] - w[3]) < 1e-5);
        }
}

/* The preconditioner changes the path, not the answer: the same optimum with and
 * without it, in fewer iterations with it on correlated features. */
static void test_preconditioner_same_optimum(void **state)
{
    (void)state;
    const size_t n = 400, D = 20;
    const int K = 3;
    float *X = malloc(sizeof(float) * n * D);
    uint16_t *y = malloc(sizeof(uint16_t) * n);
    blobs(X, y, n, D, K, 5);
    for (size_t i = 0; i < n; i++) /* strongly correlated features */
        for (size_t d = 1; d < D; d++)
            X[i * D + d] = 0.9f * X[i * D] + 0.1f * X[i * D + d];
    double *C = NULL;
    struct dim_err err;
    assert_int_equal(dim_stats_standardise(X, n, NULL, 0, D, &err), 0); /* as the protocol does */
    assert_int_equal(dim_linclass_covariance(X, NULL, n, D, &C, &err), 0);
    struct dim_linclass_opts o;
    dim_linclass_opts_default(&o);
    o.gtol = 1e-5;
    o.max_iter = 20000;
    for (int loss = 0; loss < 2; loss++) {
        double w1[63] = {0}, w2[63] = {0};
        struct nn_lbfgs_result r1, r2;
        assert_int_equal(dim_linclass_fit(loss, 1e-2, w1, X, y, NULL, n, D, K, NULL, &o, NULL,
                                          &r1, &err),
                         0);
        assert_int_equal(
            dim_linclass_fit(loss, 1e-2, w2, X, y, NULL, n, D, K, C, &o, NULL, &r2, &err), 0);
        print_message("%s: %d iterations plain, %d preconditioned, |g| %.2e %.2e\n",
                      dim_linclass_loss_name(loss), r1.iterations, r2.iterations, r1.gnorm, r2.gnorm);
        assert_int_equal(r1.stop, NN_LBFGS_CONVERGED);
        assert_int_equal(r2.stop, NN_LBFGS_CONVERGED);
        assert_true(r2.iterations < r1.iterations);
        for (size_t j = 0; j < 63; j++) /* strong convexity: |dw| <= (|g1| + |g2|) / lambda */
            assert_true(fabs(w1[j] - w2[j]) <= (r1.gnorm + r2.gnorm) / 1e-2);
    }
    free(C);
    free(X);
    free(y);
}

static void test_run_searches_lambda_and_reports(void **state)
{
    (void)state;
    const size_t ntr = 900, nte = 300, D = 12;
    const int K = 4;
    float *Xtr = malloc(sizeof(float) * ntr * D), *Xte = malloc(sizeof(float) * nte * D);
    uint16_t *ytr = malloc(sizeof(uint16_t) * ntr), *yte = malloc(sizeof(uint16_t) * nte);
    for (int loss = 0; loss < 2; loss++) {
        blobs(Xtr, ytr, ntr, D, K, 1);
        blobs(Xte, yte, nte, D, K, 2);
        struct dim_linclass_opts o;
        dim_linclass_opts_default(&o);
        o.loss = (enum dim_linclass_loss)loss;
        struct dim_linclass_result r;
        struct dim_err err;
        assert_int_equal(
            dim_linclass_run(Xtr, ytr, ntr, Xte, yte, nte, D, K, &o, NULL, &r, &err), 0);
        print_message("%s: test %.4f, lambda %g (val %.4f), %d iterations, |g| %.2e, %d "
                      "lambdas\n",
                      dim_linclass_loss_name(loss), r.accuracy, r.lambda, r.val_accuracy,
                      r.iterations, r.gnorm, r.lambdas_tried);
        /* Bayes accuracy of these blobs is about 0.83; chance is 0.25 */
        assert_true(r.accuracy > 0.75);
        assert_true(r.val_accuracy > 0.7);
        assert_int_equal(r.stop, NN_LBFGS_CONVERGED);
        assert_true(r.gnorm <= o.gtol);
        assert_true(r.lambdas_tried >= 3 && r.lambdas_tried <= o.n_lambdas);
        bool on_grid = false;
        for (int i = 0; i < o.n_lambdas; i++)
            on_grid |= r.lambda == o.lambdas[i];
        assert_true(on_grid);
        assert_true(r.path_iterations >= r.iterations);
    }
    /* The search on a subsample: a cap above the fitting rows changes nothing;
     * a cap of 100 rows still ends in a converged fit on all 900. */
    {
        struct dim_linclass_opts o;
        dim_linclass_opts_default(&o);
        struct dim_linclass_result all, capped, small;
        o.search_rows = 0;
        blobs(Xtr, ytr, ntr, D, K, 1);
        blobs(Xte, yte, nte, D, K, 2);
        assert_int_equal(dim_linclass_run(Xtr, ytr, ntr, Xte, yte, nte, D, K, &o, NULL, &all,
                                          NULL), 0);
        o.search_rows = 10000;
        blobs(Xtr, ytr, ntr, D, K, 1);
        blobs(Xte, yte, nte, D, K, 2);
        assert_int_equal(dim_linclass_run(Xtr, ytr, ntr, Xte, yte, nte, D, K, &o, NULL,
                                          &capped, NULL), 0);
        assert_true(all.accuracy == capped.accuracy && all.gnorm == capped.gnorm);
        assert_int_equal(all.path_iterations, capped.path_iterations);
        o.search_rows = 100;
        blobs(Xtr, ytr, ntr, D, K, 1);
        blobs(Xte, yte, nte, D, K, 2);
        assert_int_equal(dim_linclass_run(Xtr, ytr, ntr, Xte, yte, nte, D, K, &o, NULL, &small,
                                          NULL), 0);
        print_message("search on 100 rows: test %.4f (all rows %.4f), lambda %g (%g)\n",
                      small.accuracy, all.accuracy, small.lambda, all.lambda);
        assert_int_equal(small.stop, NN_LBFGS_CONVERGED);
        assert_true(small.gnorm <= o.gtol);
        assert_true(small.accuracy > 0.75);
        assert_true(small.path_iterations != all.path_iterations || small.lambda != all.lambda ||
                    small.val_accuracy != all.val_accuracy);
    }
    /* labels independent of the features: chance */
    struct dim_rng rr;
    dim_rng_seed(&rr, 5, 5);
    for (size_t i = 0; i < nte; i++)
        yte[i] = (uint16_t)dim_rng_below(&rr, (uint32_t)K);
    blobs(Xtr, ytr, ntr, D, K, 1);
    struct dim_linclass_opts o;
    dim_linclass_opts_default(&o);
    struct dim_linclass_result r;
    assert_int_equal(dim_linclass_run(Xtr, ytr, ntr, Xte, yte, nte, D, K, &o, NULL, &r, NULL),
                     0);
    assert_true(r.accuracy > 0.15 && r.accuracy < 0.36);
    free(Xtr), free(Xte), free(ytr), free(yte);
}

static void test_run_rejects_bad_arguments(void **state)
{
    (void)state;
    float X[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    uint16_t y[4] = {0, 1, 0, 1};
    struct dim_linclass_opts o;
    dim_linclass_opts_default(&o);
    struct dim_linclass_result r;
    struct dim_err err;
    assert_int_equal(dim_linclass_run(X, y, 4, X, y, 4, 2, 1, &o, NULL, &r, &err), DIM_EINVAL);
    assert_non_null(strstr(err.msg, "2 classes"));
    assert_int_equal(dim_linclass_run(X, y, 1, X, y, 4, 2, 2, &o, NULL, &r, &err), DIM_EINVAL);
    o.lambdas[2] = o.lambdas[1]; /* not descending */
    assert_int_equal(dim_linclass_run(X, y, 4, X, y, 4, 2, 2, &o, NULL, &r, &err), DIM_EINVAL);
    assert_non_null(strstr(err.msg, "descending"));
    dim_linclass_opts_default(&o);
    o.gtol = 0;
    assert_int_equal(dim_linclass_run(X, y, 4, X, y, 4, 2, 2, &o, NULL, &r, &err), DIM_EINVAL);
    dim_linclass_opts_default(&o);
    o.val_fraction = 0.9;
    assert_int_equal(dim_linclass_run(X, y, 4, X, y, 4, 2, 2, &o, NULL, &r, &err), DIM_EINVAL);
    assert_non_null(strstr(err.msg, "validation"));
    o.n_lambdas = 0;
    assert_int_equal(dim_linclass_run(X, y, 4, X, y, 4, 2, 2, &o, NULL, &r, &err), DIM_EINVAL);
}

/* On a real embedding (a basic32x32 encoder's fc features of real Fashion-MNIST
 * images), the probe's answer is the same at 1x and 4x the iteration cap: the
 * solve stops on its tolerance, not on the budget. */
static void test_real_embedding_independent_of_cap(void **state)
{
    (void)state;
    struct dim_dataset tr, te, all;
    struct dim_err err;
    if (dim_dataset_load("fashion-mnist", DIM_SPLIT_TEST, NULL, &all, &err) != 0)
        fail_msg("loading fashion-mnist: %s", err.msg);
    /* views of 3000 training and 1000 test images of the test split's 10,000 */
    const size_t px = (size_t)all.c * all.h * all.w;
    tr = all;
    tr.n = 3000;
    te = all;
    te.n = 1000;
    te.px = all.px + 5000 * px;
    te.labels = all.labels + 5000;
    struct dim_config cfg;
    dim_config_default(&cfg);
    struct dim_model *m;
    assert_int_equal(dim_model_create(&m, &cfg, false, &err), 0);
    struct dim_rng rng;
    dim_rng_seed(&rng, 1, 1);
    dim_model_init_params(m, &rng);
    const struct dim_preprocess pp = dim_model_preprocess(m);
    struct dim_features ftr, fte;
    assert_int_equal(dim_features_extract(m, &tr, &pp, &ftr, &err), 0);
    assert_int_equal(dim_features_extract(m, &te, &pp, &fte, &err), 0);
    const size_t D = ftr.dim[DIM_TAP_FC];
    float *Xtr = malloc(sizeof(float) * ftr.n * D), *Xte = malloc(sizeof(float) * fte.n * D);
    double acc[2];
    int caps[2] = {1000, 4000};
    for (int c = 0; c < 2; c++) {
        memcpy(Xtr, ftr.X[DIM_TAP_FC], sizeof(float) * ftr.n * D);
        memcpy(Xte, fte.X[DIM_TAP_FC], sizeof(float) * fte.n * D);
        struct dim_linclass_opts o;
        dim_linclass_opts_default(&o);
        o.max_iter = caps[c];
        struct dim_linclass_result r;
        assert_int_equal(dim_linclass_run(Xtr, ftr.labels, ftr.n, Xte, fte.labels, fte.n, D, 10,
                                          &o, NULL, &r, &err),
                         0);
        print_message("cap %d: accuracy %.4f, lambda %g, %d iterations (%d on the path), |g| "
                      "%.2e, %s, %.1f s\n",
                      caps[c], r.accuracy, r.lambda, r.iterations, r.path_iterations, r.gnorm,
                      nn_lbfgs_stop_name(r.stop), r.seconds);
        assert_int_equal(r.stop, NN_LBFGS_CONVERGED);
        acc[c] = r.accuracy;
        assert_true(acc[c] > 0.6); /* a fresh encoder's fc features carry most of the classes */
    }
    assert_true(fabs(acc[0] - acc[1]) <= 0.001);
    free(Xtr);
    free(Xte);
    dim_features_free(&ftr);
    dim_features_free(&fte);
    dim_model_free(m);
    dim_dataset_free(&all);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradient_matches_differences),
        cmocka_unit_test(test_pool_does_not_change_bits),
        cmocka_unit_test(test_known_optima),
        cmocka_unit_test(test_preconditioner_same_optimum),
        cmocka_unit_test(test_run_searches_lambda_and_reports),
        cmocka_unit_test(test_run_rejects_bad_arguments),
        cmocka_unit_test(test_real_embedding_independent_of_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

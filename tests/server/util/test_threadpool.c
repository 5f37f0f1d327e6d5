/* test_threadpool.c - the compute thread pool and core's parallel loops.
 *
 * Every elementwise kernel that splits work through dim_parallel_for gives bitwise
 * the same result with a pool as without (work is split into disjoint units whose
 * internal order never changes). Matrix products split across the pool round
 * differently at OpenBLAS's tile edges, so whole training steps with a pool are
 * checked to be bitwise reproducible and close to serial ones.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/blas.h"
#include "base/parallel.h"
#include "dim/estimator.h"
#include "dim/trainer.h"
#include "nn/activation.h"
#include "nn/adam.h"
#include "nn/conv2d.h"
#include "nn/norm.h"
#include "dimfix.h"
#include "util/threadpool.h"

static float *rnd(size_t n, uint64_t seed)
{
    struct dim_rng r;
    dim_rng_seed(&r, seed, 1);
    float *p = malloc(sizeof(float) * n);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = dim_rng_normal(&r);
    return p;
}

static float *copy(const float *a, size_t n)
{
    float *p = malloc(sizeof(float) * n);
    assert_non_null(p);
    memcpy(p, a, sizeof(float) * n);
    return p;
}

/* Sum of items seen, to prove every index is visited exactly once. */
struct cover {
    int *hits;
};

static void cover_range(void *ctx, size_t b, size_t e)
{
    struct cover *c = ctx;
    for (size_t i = b; i < e; i++)
        __atomic_add_fetch(&c->hits[i], 1, __ATOMIC_RELAXED);
}

static void test_pool_covers_every_index_once(void **state)
{
    (void)state;
    for (int workers = 0; workers <= 3; workers++) {
        struct threadpool *pool = threadpool_create(workers);
        assert_non_null(pool);
        dim_parallel_use(threadpool_parallel(pool));
        const size_t sizes[] = {1, 2, 3, 7, 64, 1000, 100003};
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            for (int rep = 0; rep < 50; rep++) { /* many back-to-back jobs */
                int *hits = calloc(sizes[s], sizeof(int));
                struct cover c = {hits};
                dim_parallel_for(sizes[s], 1, cover_range, &c);
                for (size_t i = 0; i < sizes[s]; i++)
                    assert_int_equal(hits[i], 1);
                free(hits);
            }
        }
        dim_parallel_use(NULL);
        threadpool_free(pool);
    }
}

/* Outputs of one run of every pooled kernel, each with its length. */
struct outputs {
    int k;
    float *p[32];
    size_t n[32];
};

static float *keep(struct outputs *o, size_t n)
{
    assert_true(o->k < (int)(sizeof o->p / sizeof o->p[0]));
    float *p = calloc(n, sizeof(float));
    assert_non_null(p);
    o->p[o->k] = p;
    o->n[o->k++] = n;
    return p;
}

static void run_kernels(struct outputs *o, const float *x, const float *dy, const float *g,
                        const float *b, size_t B, size_t C, size_t HW)
{
    float *mean = calloc(C, 4), *is = calloc(C, 4), *rm = calloc(C, 4), *db = calloc(C, 4);
    for (size_t hw = 1; hw <= HW; hw += HW - 1) { /* row-major (HW 1) and channel-major BN */
        size_t m = B * C * hw;
        float *y = keep(o, m), *dx = keep(o, m), *dg = keep(o, C), *rv = keep(o, C);
        nn_batchnorm_forward_train(y, mean, is, x, g, b, rm, rv, B, C, hw);
        nn_batchnorm_backward(dx, dg, db, dy, x, mean, is, g, B, C, hw);
    }
    const size_t n = B * C * HW, R = B * HW;
    float *lm = calloc(R, 4), *lr = calloc(R, 4);
    float *ly = keep(o, n), *ldx = keep(o, n), *ldg = keep(o, C);
    nn_layernorm_forward(ly, lm, lr, x, g, b, R, C);
    nn_layernorm_backward(ldx, ldg, db, dy, x, lm, lr, g, R, C);
    float *ry = keep(o, n), *rdx = keep(o, n);
    nn_relu_forward(ry, x, n);
    nn_relu_backward(rdx, dy, ry, n);
    float *p = keep(o, n), *am = calloc(n, 4), *av = calloc(n, 4);
    memcpy(p, x, n * sizeof(float));
    struct nn_adam a = {1e-3f, 0.5f, 0.999f, 1e-8f, 0};
    nn_adam_update(&a, p, dy, am, av, n);
    nn_adam_update(&a, p, x, am, av, n);
    struct nn_conv2d cv;
    assert_int_equal(nn_conv2d_init(&cv, 3, 9, 7, 5, 3, 2, 1), 0);
    const size_t CB = 4, in_n = CB * 3 * 9 * 7, out_n = CB * 5 * (size_t)cv.OH * cv.OW;
    float *cin = rnd(in_n, 5), *w = rnd(5 * 27, 6), *cb = rnd(5, 7), *cdo = rnd(out_n, 8);
    float *col = calloc(nn_conv2d_col_floats(&cv, CB), 4),
          *scr = calloc(nn_conv2d_scratch_floats(&cv, CB), 4), *cdb = calloc(5, 4);
    float *co = keep(o, out_n), *cdi = keep(o, in_n), *cdw = keep(o, 5 * 27);
    nn_conv2d_forward(co, col, scr, cin, w, cb, &cv, CB);
    nn_conv2d_backward(cdi, cdw, cdb, scr, cdo, col, w, &cv, CB);
    for (int e = DIM_JSD; e <= DIM_DV; e++) { /* scores (N, N, L) = (9, 9, 5) */
        float *du = keep(o, B * B * HW), *loss = keep(o, 1);
        loss[0] = (float)dim_estimator_loss((enum dim_estimator)e, du, x, B, HW, 0.5f);
    }
    free(mean), free(is), free(rm), free(db), free(lm), free(lr), free(am), free(av);
    free(cin), free(w), free(cb), free(cdo), free(col), free(scr), free(cdb);
}

static void test_kernels_bitwise_equal_with_pool(void **state)
{
    (void)state;
    const size_t B = 9, C = 70, HW = 5, n = B * C * HW;
    float *x = rnd(n, 1), *dy = rnd(n, 2), *g = rnd(C, 3), *b = rnd(C, 4);
    struct outputs serial = {0}, pooled = {0};
    run_kernels(&serial, x, dy, g, b, B, C, HW);
    struct threadpool *pool = threadpool_create(2);
    assert_non_null(pool);
    dim_parallel_use(threadpool_parallel(pool));
    run_kernels(&pooled, x, dy, g, b, B, C, HW);
    dim_parallel_use(NULL);
    threadpool_free(pool);
    assert_int_equal(serial.k, pooled.k);
    for (int i = 0; i < serial.k; i++) {
        assert_int_equal(serial.n[i], pooled.n[i]);
        assert_memory_equal(serial.p[i], pooled.p[i], serial.n[i] * sizeof(float));
        free(serial.p[i]);
        free(pooled.p[i]);
    }
    free(x), free(dy), free(g), free(b);
}

/* What a run of three DIM(L+G)+prior steps produced: the losses of each step, the
 * parameters after them, and the gradients of one more (un-applied) backward pass. */
struct run {
    double loss[3];
    size_t n;
    float *params, *grads;
};

static void train_three_steps(struct threadpool *pool, struct run *out)
{
    struct dim_dataset ds;
    dimfix_random_dataset(&ds, 40, 2, 9);
    struct dim_config cfg = dimfix_config(16, 32, 8);
    cfg.alpha = 0.5f;
    cfg.beta = 1.0f;
    cfg.gamma = 0.1f;
    struct dim_preprocess pp = {1, 28, 28, 2, 1};
    dim_parallel_use(pool ? threadpool_parallel(pool) : NULL);
    struct dim_model *m;
    struct dim_trainer *t;
    struct dim_err err;
    assert_int_equal(dim_model_create(&m, &cfg, true, &err), 0);
    assert_int_equal(dim_trainer_create(&t, m, &ds, &pp, &err), 0);
    struct dim_losses l;
    for (int s = 0; s < 3; s++) {
        assert_int_equal(dim_trainer_step(t, &l, &err), 0);
        out->loss[s] = l.total;
    }
    dim_trainer_eval_batch(t, dim_trainer_input(t), true, &l);
    dim_parallel_use(NULL);
    out->n = m->n_main;
    out->params = copy(m->main_params, m->n_main);
    out->grads = copy(m->main_grads, m->n_main);
    dim_trainer_free(t);
    dim_model_free(m);
    dim_dataset_free(&ds);
}

/* With a pool, large matrix products are split by rows or columns of C, and
 * OpenBLAS's edge tiles round differently from a single call, so pooled and
 * serial results agree closely but not bitwise. The split is static, so a
 * pooled run is bitwise reproducible (what checkpoint resume relies on). */
static void test_training_with_pool_reproducible_and_close(void **state)
{
    (void)state;
    nn_blas_set_threads(1);
    struct threadpool *pool = threadpool_create(2);
    assert_non_null(pool);
    struct run serial, pooled, again;
    train_three_steps(NULL, &serial);
    train_three_steps(pool, &pooled);
    train_three_steps(pool, &again);
    assert_int_equal(serial.n, pooled.n);
    assert_memory_equal(pooled.params, again.params, pooled.n * sizeof(float));
    assert_memory_equal(pooled.grads, again.grads, pooled.n * sizeof(float));
    for (int s = 0; s < 3; s++) {
        double gap = fabs(serial.loss[s] - pooled.loss[s]);
        print_message("step %d loss serial %.9g pooled %.9g\n", s, serial.loss[s],
                      pooled.loss[s]);
        assert_true(gap <= 1e-5 * fabs(serial.loss[s]));
    }
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < serial.n; i++) {
        double d = (double)serial.grads[i] - pooled.grads[i];
        num += d * d;
        den += (double)serial.grads[i] * serial.grads[i];
    }
    print_message("gradient gap pooled vs serial: %.3g of its norm\n", sqrt(num / den));
    assert_true(den > 0.0 && sqrt(num / den) < 1e-3);
    threadpool_free(pool);
    struct run *runs[3] = {&serial, &pooled, &again};
    for (int k = 0; k < 3; k++) {
        free(runs[k]->params);
        free(runs[k]->grads);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_covers_every_index_once),
        cmocka_unit_test(test_kernels_bitwise_equal_with_pool),
        cmocka_unit_test(test_training_with_pool_reproducible_and_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

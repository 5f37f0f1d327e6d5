/* test_noalloc.c - no heap allocation inside a training step or a forward pass
 * once the workspace is set up.
 *
 * This binary is linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc
 * (see the Makefile), so every allocation made by core's code, which is linked
 * statically, passes through the counters below. Allocations inside OpenBLAS's
 * own shared library are not ours and are not seen.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/blas.h"
#include "dim/trainer.h"
#include "dimfix.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);

static size_t allocations;

void *__wrap_malloc(size_t n)
{
    allocations++;
    return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
    allocations++;
    return __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n)
{
    allocations++;
    return __real_realloc(p, n);
}

static void test_counter_sees_core_allocations(void **state)
{
    (void)state;
    size_t before = allocations;
    struct dim_config cfg = dimfix_config(64, 16, 64);
    struct dim_model *m;
    struct dim_err err;
    assert_int_equal(dim_model_create(&m, &cfg, false, &err), 0);
    assert_true(allocations > before); /* the wrap is live: creating a model allocates */
    dim_model_free(m);
}

static void test_training_steps_do_not_allocate(void **state)
{
    (void)state;
    struct dim_dataset ds;
    dimfix_random_dataset(&ds, 48, 2, 2);
    const float weights[][3] = {{0, 1, 0.1f}, {1, 0, 1}, {0.5f, 0.1f, 0.1f}};
    for (size_t k = 0; k < 3; k++) {
        struct dim_config cfg = dimfix_config(64, 16, 8);
        cfg.alpha = weights[k][0], cfg.beta = weights[k][1], cfg.gamma = weights[k][2];
        cfg.estimator = (enum dim_estimator)k;
        struct dim_model *m;
        struct dim_trainer *t;
        struct dim_err err;
        struct dim_preprocess pp = {1, 28, 28, 2, 1};
        assert_int_equal(dim_model_create(&m, &cfg, true, &err), 0);
        assert_int_equal(dim_trainer_create(&t, m, &ds, &pp, &err), 0);
        struct dim_losses l;
        assert_int_equal(dim_trainer_step(t, &l, &err), 0); /* lets BLAS set itself up */
        size_t before = allocations;
        for (int s = 0; s < 12; s++) /* crosses an epoch boundary (48 images, batch 8) */
            assert_int_equal(dim_trainer_step(t, &l, &err), 0);
        assert_int_equal(allocations, before);
        dim_trainer_free(t);
        dim_model_free(m);
    }
    dim_dataset_free(&ds);
}

static void test_forward_pass_does_not_allocate(void **state)
{
    (void)state;
    struct dim_config cfg;
    dim_config_default(&cfg);
    struct dim_model *m;
    struct dim_encode_ws ws;
    struct dim_err err;
    assert_int_equal(dim_model_create(&m, &cfg, false, &err), 0);
    assert_int_equal(dim_encode_ws_create(&ws, m, 4, &err), 0);
    float *x = calloc(4 * 32 * 32, sizeof(float));
    dim_model_encode(m, &ws, x, 4, DIM_TAP_Y);
    size_t before = allocations;
    for (int t = 0; t < 4; t++)
        dim_model_encode(m, &ws, x, (size_t)(t + 1), (enum dim_tap)t);
    assert_int_equal(allocations, before);
    free(x);
    dim_encode_ws_free(&ws);
    dim_model_free(m);
}

int main(void)
{
    nn_blas_set_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_sees_core_allocations),
        cmocka_unit_test(test_training_steps_do_not_allocate),
        cmocka_unit_test(test_forward_pass_does_not_allocate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_evaluations.c - evaluations of model versions (store/evaluations.h): add, list, grids, jobs
 * and versions deleted.
 *
 * Every test runs against a real database file in its own mkdtemp directory
 * under /tmp, removed afterwards (tests/support/storefix.h).
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "store/evaluations.h"
#include "storefix.h"

/* Evaluations belong to a version: stored with their grid, listed oldest first,
 * gone with the version; the job that measured becomes NULL when deleted. */
static void test_evaluations(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    struct storefix_mv in;
    storefix_mv_make(&in, 1000, 10, 8, 1);
    assert_int_equal(storefix_mv_create(f->s, "ev", 0, 1, &in, false), 1);
    assert_int_equal(storefix_mv_create(f->s, "ev", 0, 2, &in, false), 2);
    int64_t job = storefix_insert_job(f->s, NULL);
    const unsigned char png[5] = {0x89, 'P', 'N', 'G', 0};
    int64_t id1 = 0, id2 = 0;
    assert_int_equal(store_evaluation_add(f->s, "ev", 1, job, "{\"mine\":1.5}", png, 5, &id1, &err),
                     STORE_OK);
    assert_int_equal(store_evaluation_add(f->s, "ev", 1, 999, "{\"ndm\":0.5}", NULL, 0, &id2, &err),
                     STORE_OK); /* a job that does not exist is recorded as none */
    assert_true(id2 > id1 && id1 > 0);
    assert_int_equal(store_evaluation_add(f->s, "ev", 3, job, "{}", NULL, 0, NULL, &err),
                     STORE_NOT_FOUND);
    assert_int_equal(store_evaluation_add(f->s, "ev", 0, job, "{}", NULL, 0, NULL, &err),
                     STORE_NOT_FOUND); /* an exact number only */
    struct store_evaluation *e = NULL;
    size_t n = 0;
    assert_int_equal(store_evaluation_list(f->s, "ev", 1, &e, &n, &err), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(e[0].id, id1);
    assert_int_equal(e[0].job_id, job);
    assert_int_equal(e[0].grid_bytes, 5);
    assert_string_equal(e[0].results_json, "{\"mine\":1.5}");
    assert_int_equal(e[1].job_id, 0);
    assert_int_equal(e[1].grid_bytes, 0);
    for (size_t i = 0; i < n; i++)
        store_evaluation_clear(&e[i]);
    free(e);
    void *g = NULL;
    size_t gb = 0;
    assert_int_equal(store_evaluation_grid(f->s, "ev", 1, id1, &g, &gb, &err), STORE_OK);
    assert_int_equal(gb, 5);
    assert_memory_equal(g, png, 5);
    free(g);
    assert_int_equal(store_evaluation_grid(f->s, "ev", 1, id2, &g, &gb, &err), STORE_NOT_FOUND);
    assert_int_equal(store_evaluation_grid(f->s, "ev", 2, id1, &g, &gb, &err), STORE_NOT_FOUND);
    assert_int_equal(store_evaluation_list(f->s, "ev", 2, &e, &n, &err), STORE_OK);
    assert_int_equal(n, 0);
    free(e);
    /* deleting the job keeps the evaluation, without its job */
    assert_int_equal(store_job_transition(f->s, job, JOB_MASK(JOB_QUEUED), JOB_CANCELLED, NULL,
                                          NULL, NULL, &err),
                     STORE_OK);
    assert_int_equal(store_job_delete(f->s, job, &err), STORE_OK);
    assert_int_equal(storefix_raw_int(f->path,
                                      "SELECT COUNT(*) FROM model_evaluations WHERE job_id IS "
                                      "NULL"),
                     2);
    /* deleting the version takes its evaluations */
    assert_int_equal(store_model_delete(f->s, "ev", 1, &err), STORE_OK);
    assert_int_equal(storefix_raw_int(f->path, "SELECT COUNT(*) FROM model_evaluations"), 0);
    assert_int_equal(store_evaluation_list(f->s, "Bad", 1, &e, &n, &err), STORE_ERROR);
    storefix_mv_free(&in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_evaluations, storefix_setup_open, storefix_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

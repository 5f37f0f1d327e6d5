/* test_promote.c - promotion (service/promote.h) against a real store file and
 * a real image-folder dataset in a temporary directory: a trained checkpoint
 * becomes a loadable inference-only version whose embeddings equal the source
 * model's, with the neighbours index of its evenly spaced training images
 * (unit vectors, labels); latest, a step and the best checkpoint; a running
 * job and a finished one; and every error: no such job, no such checkpoint,
 * no checkpoint yet, no best_metric, a dataset that does not load (and the
 * index-less version that needs none), bytes that are not a checkpoint.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dim/checkpoint.h"
#include "dim/model.h"
#include "fixtures.h"
#include "service/datasets.h"
#include "service/promote.h"
#include "store/checkpoints.h"
#include "store/jobs.h"
#include "store/store.h"
#include "svcfix.h"
#include "util/sha256.h"

#define INDEX_MAX 40 /* of the 75 training images */
#define TOL 1e-5f

static char *g_dir;
static char g_shapes[600];
static struct datasets g_ds;
static struct dimd_store *g_store;
/* jobs: trained (2 checkpoints, best_metric probe_y: step 1 is best), empty
 * (no checkpoint, no best_metric), nodata (its dataset does not exist),
 * corrupt (its checkpoint is not one) */
static int64_t g_trained, g_empty, g_nodata, g_corrupt;
static int g_trained_attempt;
static void *g_ck[3]; /* g_ck[s]: the trained job's checkpoint at step s; g_ck[0] untrained */
static size_t g_ck_n[3];

/* Inserts a job with spec and claims it (RUNNING); *attempt gets its attempt. */
static int64_t running_job(const char *spec, int *attempt)
{
    struct store_job j;
    memset(&j, 0, sizeof j);
    struct dim_err err;
    if (store_job_insert(g_store, spec, NULL, NULL, NULL, 1000, &j, &err) != STORE_OK)
        fail_msg("store_job_insert: %s", err.msg);
    int64_t id = j.id;
    store_job_clear(&j);
    if (store_job_claim(g_store, NULL, 0, &j, &err) != STORE_OK || j.id != id)
        fail_msg("store_job_claim: %s", err.msg);
    *attempt = j.attempts;
    store_job_clear(&j);
    return id;
}

static void put_checkpoint(int64_t job, int attempt, int64_t step, const void *p, size_t n,
                           const char *metrics)
{
    char hex[65];
    sha256_hex(p, n, hex);
    const struct store_retention keep = {5, 0, "loss_total", false};
    struct dim_err err;
    if (store_checkpoint_put(g_store, job, attempt, step, p, n, hex, metrics, &keep, &err) !=
        STORE_OK)
        fail_msg("store_checkpoint_put: %s", err.msg);
}

static int group_setup(void **state)
{
    (void)state;
    char data[512], path[600];
    struct dim_err err;
    g_dir = svcfix_workdir(3, 30, data, g_shapes);
    if (!g_dir || datasets_init(&g_ds, data, &err) != 0 ||
        store_open(&g_store, fixtures_join(path, sizeof path, g_dir, "state.db"), &err) != 0)
        return -1;
    for (int s = 1; s <= 2; s++)
        if (svcfix_checkpoint(g_shapes, 1, s, &g_ck[s], &g_ck_n[s]) != 0)
            return -1;
    /* the job without a dataset needs any checkpoint: an inference-only one is a
     * third of a training one's bytes to write */
    if (svcfix_checkpoint(NULL, 1, 0, &g_ck[0], &g_ck_n[0]) != 0)
        return -1;
    int a;
    g_trained = running_job("{\"dataset\":\"data/shapes\",\"best_metric\":\"probe_y\"}",
                            &g_trained_attempt);
    put_checkpoint(g_trained, g_trained_attempt, 1, g_ck[1], g_ck_n[1], "{\"probe_y\":0.9}");
    put_checkpoint(g_trained, g_trained_attempt, 2, g_ck[2], g_ck_n[2], "{\"probe_y\":0.5}");
    g_empty = running_job("{\"dataset\":\"data/shapes\"}", &a);
    g_nodata = running_job("{\"dataset\":\"data/nope\"}", &a);
    put_checkpoint(g_nodata, a, 1, g_ck[0], g_ck_n[0], "{}");
    g_corrupt = running_job("{\"dataset\":\"data/shapes\"}", &a);
    put_checkpoint(g_corrupt, a, 1, "not a checkpoint", 16, "{}");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    store_close(g_store);
    for (int s = 0; s <= 2; s++)
        free(g_ck[s]);
    fixtures_rmtree(g_dir);
    free(g_dir);
    return 0;
}

/* ---- helpers ---- */

static int promote(int64_t job, int64_t step, size_t index_max, struct store_model_version *v,
                   struct dim_err *err)
{
    const struct promote_request rq = {"shoes", job, step, false, NULL};
    return promote_checkpoint(g_store, &g_ds, &rq, index_max, v, err);
}

/* Promotes and expects rc, with err naming want (a substring). */
static void promote_fails(int64_t job, int64_t step, size_t index_max, int rc, const char *want)
{
    struct store_model_version v;
    struct dim_err err = {0};
    assert_int_equal(promote(job, step, index_max, &v, &err), rc);
    if (!strstr(err.msg, want))
        fail_msg("error '%s' does not say '%s'", err.msg, want);
    assert_int_equal(v.version, 0);
}

static struct dim_model *read_model(const void *p, size_t n)
{
    struct dim_memsrc src = {p, n, 0};
    const struct dim_reader rd = {dim_memsrc_read, &src};
    struct dim_train_progress prog;
    struct dim_model *m = NULL;
    struct dim_err err;
    if (dim_checkpoint_read(&m, &prog, false, &rd, &err) != 0)
        fail_msg("dim_checkpoint_read: %s", err.msg);
    return m;
}

static void close_rows(const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(a[i] - b[i]) <= TOL * (1.0f + fabsf(b[i]))))
            fail_msg("value %zu: %.9g vs %.9g", i, (double)a[i], (double)b[i]);
}

/* ---- tests ---- */

/* The latest checkpoint of a running job: an inference-only copy of its model
 * (smaller, same embeddings) with the index of 40 of the 75 training images. */
static void test_latest_makes_an_inference_only_version(void **state)
{
    (void)state;
    struct store_model_version v;
    struct dim_err err = {0};
    assert_int_equal(promote(g_trained, PROMOTE_LATEST, INDEX_MAX, &v, &err), PROMOTE_OK);
    assert_string_equal(v.name, "shoes");
    assert_int_equal(v.job_id, g_trained);
    assert_int_equal(v.step, 2);
    char src_hex[65];
    sha256_hex(g_ck[2], g_ck_n[2], src_hex);
    assert_string_equal(v.source_sha256, src_hex);
    assert_true(v.bytes > 0 && (size_t)v.bytes < g_ck_n[2] / 2);
    assert_false(v.pinned);
    assert_int_equal(v.index_images, INDEX_MAX);
    assert_int_equal(v.index_dim, 16);

    struct store_model_version got;
    void *ck = NULL;
    float *vectors = NULL;
    uint16_t *labels = NULL;
    assert_int_equal(store_model_get(g_store, "shoes", v.version, &got, &ck, &vectors, &labels,
                                     &err),
                     STORE_OK);
    char hex[65];
    sha256_hex(ck, (size_t)got.bytes, hex);
    assert_string_equal(hex, got.sha256);
    json_t *info = json_loads(got.info_json, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(info, "dataset")), "data/shapes");
    assert_int_equal(json_integer_value(json_object_get(info, "index_dataset_images")), 75);
    assert_int_equal(json_array_size(json_object_get(info, "classes")), 3);
    assert_string_equal(json_string_value(json_array_get(json_object_get(info, "classes"), 2)),
                        "class2");
    assert_int_equal(json_integer_value(json_object_get(info, "y_dim")), 16);
    json_decref(info);

    /* the version's model and the source's encode alike; the index is the
     * source's unit Y of training images floor(i * 75 / 40) */
    struct dim_model *src = read_model(g_ck[2], g_ck_n[2]), *ver = read_model(ck, got.bytes);
    float *want = NULL, *ver_y = NULL;
    uint16_t *want_lab = NULL, *ver_lab = NULL;
    size_t n = 0, n_data = 0;
    assert_int_equal(svcfix_embed(src, g_shapes, DIM_SPLIT_TRAIN, INDEX_MAX, true, &want,
                                  &want_lab, &n, &n_data),
                     0);
    assert_int_equal(n, INDEX_MAX);
    assert_int_equal(n_data, 75);
    close_rows(vectors, want, n * 16);
    assert_memory_equal(labels, want_lab, n * sizeof *labels);
    assert_int_equal(labels[INDEX_MAX - 1], 2); /* image 73: the last class */
    assert_int_equal(svcfix_embed(ver, g_shapes, DIM_SPLIT_TRAIN, INDEX_MAX, true, &ver_y,
                                  &ver_lab, &n, &n_data),
                     0);
    assert_memory_equal(ver_y, want, n * 16 * sizeof *want);
    free(want);
    free(want_lab);
    free(ver_y);
    free(ver_lab);
    dim_model_free(src);
    dim_model_free(ver);
    free(ck);
    free(vectors);
    free(labels);
    store_model_version_clear(&got);
    store_model_version_clear(&v);
}

/* best_metric probe_y is larger-is-better: step 1 (0.9) beats step 2 (0.5);
 * a step names its checkpoint; pinned is kept; versions count up. */
static void test_best_and_a_step(void **state)
{
    (void)state;
    struct store_model_version v1, v2;
    struct dim_err err = {0};
    assert_int_equal(promote(g_trained, PROMOTE_BEST, 0, &v1, &err), PROMOTE_OK);
    assert_int_equal(v1.step, 1);
    assert_int_equal(v1.index_images, 0);
    const struct promote_request rq = {"shoes", g_trained, 2, true, NULL};
    assert_int_equal(promote_checkpoint(g_store, &g_ds, &rq, 4, &v2, &err), PROMOTE_OK);
    assert_int_equal(v2.step, 2);
    assert_true(v2.pinned);
    assert_int_equal(v2.index_images, 4);
    assert_int_equal(v2.version, v1.version + 1);
    struct store_job job;
    assert_int_equal(store_job_get(g_store, g_trained, &job, &err), STORE_OK);
    assert_int_equal(promote_best_step(g_store, &job), 1);
    store_job_clear(&job);
    store_model_version_clear(&v1);
    store_model_version_clear(&v2);
}

/* A job need not have finished, and may have: only its checkpoint counts. */
static void test_finished_job(void **state)
{
    (void)state;
    struct dim_err err = {0};
    assert_int_equal(store_job_finish(g_store, g_trained, g_trained_attempt, JOB_SUCCEEDED, NULL,
                                      NULL, &err),
                     STORE_OK);
    struct store_model_version v;
    assert_int_equal(promote(g_trained, 1, 2, &v, &err), PROMOTE_OK);
    assert_int_equal(v.step, 1);
    store_model_version_clear(&v);
}

static void test_errors(void **state)
{
    (void)state;
    promote_fails(999, PROMOTE_LATEST, 8, PROMOTE_NO_JOB, "no job 999");
    char want[96];
    snprintf(want, sizeof want, "job %lld has no checkpoint at step 7", (long long)g_trained);
    promote_fails(g_trained, 7, 8, PROMOTE_NO_CHECKPOINT, want);
    snprintf(want, sizeof want, "job %lld has no checkpoint yet", (long long)g_empty);
    promote_fails(g_empty, PROMOTE_LATEST, 8, PROMOTE_NO_CHECKPOINT, want);
    snprintf(want, sizeof want, "job %lld has no checkpoint with its best_metric yet",
             (long long)g_empty);
    promote_fails(g_empty, PROMOTE_BEST, 8, PROMOTE_NO_CHECKPOINT, want);
    promote_fails(g_nodata, PROMOTE_LATEST, 8, PROMOTE_NO_DATASET, "data/nope");
    promote_fails(g_corrupt, PROMOTE_LATEST, 8, PROMOTE_ERROR, "loading the checkpoint");
    /* without an index the dataset is not needed */
    struct store_model_version v;
    struct dim_err err = {0};
    assert_int_equal(promote(g_nodata, PROMOTE_LATEST, 0, &v, &err), PROMOTE_OK);
    assert_int_equal(v.index_images, 0);
    store_model_version_clear(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_latest_makes_an_inference_only_version),
        cmocka_unit_test(test_best_and_a_step),
        cmocka_unit_test(test_finished_job),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

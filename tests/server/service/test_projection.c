/* test_projection.c - a version's projection (service/projection.h) against a
 * real store file and a real image-folder dataset in a temporary directory:
 * the points are core's PCA (eval/pca.h) of the model's Y of the evenly spaced
 * test images, computed here independently, with their labels and positions;
 * the second call reads the stored text; a missing version, a dataset that
 * does not load, too few test images for PCA, bytes that are not a checkpoint.
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
#include "eval/pca.h"
#include "fixtures.h"
#include "service/datasets.h"
#include "service/projection.h"
#include "store/checkpoints.h"
#include "store/jobs.h"
#include "store/store.h"
#include "svcfix.h"
#include "util/sha256.h"

#define PROJ_MAX 20 /* of the 25 test images (5 classes x 5) */

static char *g_dir;
static char g_shapes[600];
static struct datasets g_ds;
static struct dimd_store *g_store;
static void *g_ck;
static size_t g_ck_n;

/* Stores ckpt as the next version of name, its info naming dataset. */
static void make_version(const char *name, const char *dataset, const void *ckpt, size_t n)
{
    char hex[65], info[128];
    sha256_hex(ckpt, n, hex);
    snprintf(info, sizeof info, "{\"dataset\":\"%s\"}", dataset);
    struct store_model_version v;
    memset(&v, 0, sizeof v);
    struct dim_err err;
    if (store_model_create(g_store, name, 0, 1, hex, ckpt, n, hex, info, "{}", false, NULL, &v,
                           &err) != STORE_OK)
        fail_msg("store_model_create %s: %s", name, err.msg);
    store_model_version_clear(&v);
}

static int group_setup(void **state)
{
    (void)state;
    char data[512], path[600];
    struct dim_err err;
    g_dir = svcfix_workdir(5, 30, data, g_shapes);
    if (!g_dir || datasets_init(&g_ds, data, &err) != 0 ||
        store_open(&g_store, fixtures_join(path, sizeof path, g_dir, "state.db"), &err) != 0 ||
        svcfix_checkpoint(NULL, 3, 0, &g_ck, &g_ck_n) != 0)
        return -1;
    make_version("shoes", "data/shapes", g_ck, g_ck_n);
    make_version("nodata", "data/nope", g_ck, g_ck_n);
    make_version("corrupt", "data/shapes", "not a checkpoint", 16);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    store_close(g_store);
    free(g_ck);
    fixtures_rmtree(g_dir);
    free(g_dir);
    return 0;
}

/* Whether a and b agree to the answer's 5 significant digits. */
static bool close5(double a, double b, double scale)
{
    return fabs(a - b) <= 2e-5 * (fabs(b) + scale);
}

/* The points are the PCA of the model's Y of test images floor(i * 25 / 20);
 * the second answer is the stored text. */
static void test_points_are_the_pca_and_are_stored(void **state)
{
    (void)state;
    char *text = NULL;
    bool cached = true;
    struct dim_err err = {0};
    assert_int_equal(projection_get(g_store, &g_ds, "shoes", 1, PROJ_MAX, &text, &cached, &err),
                     PROJECTION_OK);
    assert_false(cached);
    json_t *p = json_loads(text, 0, NULL);
    assert_non_null(p);
    assert_string_equal(json_string_value(json_object_get(p, "model")), "shoes");
    assert_string_equal(json_string_value(json_object_get(p, "version")), "v1");
    assert_string_equal(json_string_value(json_object_get(p, "dataset")), "data/shapes");
    assert_string_equal(json_string_value(json_object_get(p, "split")), "test");
    assert_int_equal(json_integer_value(json_object_get(p, "n")), PROJ_MAX);
    assert_int_equal(json_integer_value(json_object_get(p, "dataset_images")), 25);
    assert_int_equal(json_integer_value(json_object_get(p, "y_dim")), 16);
    assert_int_equal(json_array_size(json_object_get(p, "classes")), 5);

    struct dim_memsrc src = {g_ck, g_ck_n, 0};
    const struct dim_reader rd = {dim_memsrc_read, &src};
    struct dim_train_progress prog;
    struct dim_model *m = NULL;
    assert_int_equal(dim_checkpoint_read(&m, &prog, false, &rd, &err), 0);
    float *y = NULL;
    uint16_t *labels = NULL;
    size_t n = 0, n_data = 0;
    assert_int_equal(
        svcfix_embed(m, g_shapes, DIM_SPLIT_TEST, PROJ_MAX, false, &y, &labels, &n, &n_data), 0);
    struct dim_pca pca = {0};
    assert_int_equal(dim_pca_fit(y, n, 16, 2, &pca, &err), 0);
    float *xy = malloc(n * 2 * sizeof *xy);
    assert_non_null(xy);
    dim_pca_project(&pca, y, n, xy);
    double scale = sqrt(pca.variance[0]); /* the spread of the points */
    json_t *ev = json_object_get(p, "explained_variance");
    assert_true(close5(json_number_value(json_array_get(ev, 0)), pca.explained[0], 0));
    assert_true(close5(json_number_value(json_array_get(ev, 1)), pca.explained[1], 0));
    json_t *points = json_object_get(p, "points");
    assert_int_equal(json_array_size(points), n);
    for (size_t i = 0; i < n; i++) {
        json_t *pt = json_array_get(points, i);
        for (int k = 0; k < 2; k++)
            if (!close5(json_number_value(json_array_get(pt, (size_t)k)), xy[2 * i + k], scale))
                fail_msg("point %zu coordinate %d: %s vs %.9g", i, k,
                         json_dumps(pt, JSON_COMPACT), (double)xy[2 * i + k]);
        assert_int_equal(json_integer_value(json_array_get(pt, 2)), labels[i]);
        assert_int_equal(json_integer_value(json_array_get(pt, 3)), (json_int_t)(i * 25 / n));
    }
    json_decref(p);

    /* stored: the second call reads the same text */
    char *again = NULL, *stored = NULL;
    assert_int_equal(projection_get(g_store, &g_ds, "shoes", 1, PROJ_MAX, &again, &cached, &err),
                     PROJECTION_OK);
    assert_true(cached);
    assert_string_equal(again, text);
    assert_int_equal(store_projection_get(g_store, "shoes", 1, &stored, &err), STORE_OK);
    assert_string_equal(stored, text);
    free(again);
    free(stored);
    free(text);
    free(xy);
    free(y);
    free(labels);
    dim_pca_free(&pca);
    dim_model_free(m);
}

static void fails(const char *name, int version, size_t max, int rc, const char *want)
{
    char *text = (char *)"unset";
    struct dim_err err = {0};
    assert_int_equal(projection_get(g_store, &g_ds, name, version, max, &text, NULL, &err), rc);
    assert_null(text);
    if (!strstr(err.msg, want))
        fail_msg("error '%s' does not say '%s'", err.msg, want);
}

static void test_errors(void **state)
{
    (void)state;
    fails("shoes", 9, PROJ_MAX, PROJECTION_NOT_FOUND, "model 'shoes' version 9");
    fails("nodata", 1, PROJ_MAX, PROJECTION_NO_DATASET, "data/nope");
    fails("shoes", 2, PROJ_MAX, PROJECTION_NOT_FOUND, "version 2"); /* no v2 */
    fails("corrupt", 1, PROJ_MAX, PROJECTION_ERROR, "corrupt");
    /* nothing stored for a failure */
    char *stored = NULL;
    struct dim_err err;
    assert_int_equal(store_projection_get(g_store, "nodata", 1, &stored, &err), STORE_NOT_FOUND);
}

/* One test image is no projection: PCA needs 2. */
static void test_too_few_images(void **state)
{
    (void)state;
    make_version("shoes", "data/shapes", g_ck, g_ck_n); /* v2: no projection stored yet */
    fails("shoes", 2, 1, PROJECTION_NO_DATASET, "PCA needs 2");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_points_are_the_pca_and_are_stored),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_too_few_images),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

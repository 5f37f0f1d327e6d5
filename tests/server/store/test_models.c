/* test_models.c - model versions (store/models.h): create, list, get, versions never reused,
 * survival of the source job's delete, pins, refusals, reclaimed pages; and
 * the dashboard's reads (latest values, history ranges, projections from
 * store/projections.h).
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

#include "store/metrics.h"
#include "store/projections.h"
#include "storefix.h"

static void test_models_create_list_get(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    int64_t job = storefix_running_job(f->s);
    struct storefix_mv a, b, c;
    storefix_mv_make(&a, 5000, 37, 5, 1);
    storefix_mv_make(&b, 7001, 0, 0, 2); /* no index */
    storefix_mv_make(&c, 300, 3, 2, 3);
    assert_int_equal(storefix_mv_create(f->s, "shoes", job, 100, &a, false), 1);
    assert_int_equal(storefix_mv_create(f->s, "shoes", job, 200, &b, false), 2);
    assert_int_equal(storefix_mv_create(f->s, "boots", job, 300, &c, true), 1);

    /* list: one row per name, in name order, with its newest version. */
    struct store_model_version *v = NULL;
    size_t n = 0;
    assert_int_equal(store_model_list(f->s, &v, &n, &err), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].name, "boots");
    assert_int_equal(v[0].version, 1);
    assert_true(v[0].pinned);
    assert_string_equal(v[1].name, "shoes");
    assert_int_equal(v[1].version, 2);
    assert_int_equal(v[1].step, 200);
    assert_string_equal(v[1].sha256, b.sha);
    storefix_free_versions(v, n);

    /* versions: oldest first, every field. */
    assert_int_equal(store_model_versions(f->s, "shoes", &v, &n, &err), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(v[0].version, 1);
    assert_int_equal(v[0].job_id, job);
    assert_int_equal(v[0].step, 100);
    assert_string_equal(v[0].sha256, a.sha);
    assert_string_equal(v[0].source_sha256, STOREFIX_SRC_SHA);
    assert_int_equal(v[0].bytes, 5000);
    assert_false(v[0].pinned);
    assert_string_equal(v[0].info_json, "{\"preset\":\"basic32x32\",\"y_dim\":64}");
    assert_string_equal(v[0].metrics_json, "{\"probe_y\":0.81}");
    assert_int_equal(v[0].index_images, 37);
    assert_int_equal(v[0].index_dim, 5);
    assert_int_equal(v[1].version, 2);
    assert_int_equal(v[1].index_images, 0);
    assert_int_equal(v[1].index_dim, 0);
    storefix_free_versions(v, n);
    assert_int_equal(store_model_versions(f->s, "sandals", &v, &n, &err), STORE_NOT_FOUND);
    assert_int_equal(err.code, DIM_ENOENT);
    assert_null(v);
    assert_int_equal(n, 0);

    /* get: version 0 is the newest; blobs round-trip byte for byte. */
    struct store_model_version g = {0};
    void *ck = NULL;
    float *vec = NULL;
    uint16_t *lab = NULL;
    assert_int_equal(store_model_get(f->s, "shoes", 0, &g, &ck, &vec, &lab, &err), STORE_OK);
    assert_int_equal(g.version, 2);
    assert_non_null(ck);
    assert_memory_equal(ck, b.ckpt, b.bytes);
    assert_null(vec); /* no index */
    assert_null(lab);
    free(ck);
    store_model_version_clear(&g);
    assert_int_equal(store_model_get(f->s, "shoes", 1, &g, &ck, &vec, &lab, &err), STORE_OK);
    assert_int_equal(g.version, 1);
    assert_int_equal(g.step, 100);
    assert_memory_equal(ck, a.ckpt, a.bytes);
    assert_non_null(vec);
    assert_memory_equal(vec, a.vectors, 37 * 5 * sizeof(float));
    assert_non_null(lab);
    assert_memory_equal(lab, a.labels, 37 * sizeof(uint16_t));
    char h[65];
    sha256_hex(ck, (size_t)g.bytes, h);
    assert_string_equal(h, g.sha256);
    free(ck);
    free(vec);
    free(lab);
    store_model_version_clear(&g);
    /* Only some blobs. */
    assert_int_equal(store_model_get(f->s, "boots", 1, &g, NULL, NULL, &lab, &err), STORE_OK);
    assert_memory_equal(lab, c.labels, 3 * sizeof(uint16_t));
    free(lab);
    store_model_version_clear(&g);

    /* Not found: the version, the model. */
    ck = (void *)1;
    assert_int_equal(store_model_get(f->s, "shoes", 3, &g, &ck, NULL, NULL, &err), STORE_NOT_FOUND);
    assert_null(ck);
    assert_non_null(strstr(err.msg, "no version 3"));
    assert_int_equal(store_model_get(f->s, "sandals", 0, &g, NULL, NULL, NULL, &err),
                     STORE_NOT_FOUND);
    assert_non_null(strstr(err.msg, "no model sandals"));
    assert_int_equal(store_model_get(f->s, "shoes", -1, &g, NULL, NULL, NULL, &err), STORE_ERROR);
    assert_int_equal(err.code, DIM_EINVAL);

    /* Without out pointers the blobs are not read at all: a corrupt (short)
     * checkpoint blob only fails the calls that ask for it. */
    storefix_raw_exec(
        f->path, "UPDATE model_versions SET data = x'00' WHERE name = 'shoes' AND version = 1");
    assert_int_equal(store_model_get(f->s, "shoes", 1, &g, NULL, &vec, &lab, &err), STORE_OK);
    assert_memory_equal(vec, a.vectors, 37 * 5 * sizeof(float));
    free(vec);
    free(lab);
    store_model_version_clear(&g);
    assert_int_equal(store_model_get(f->s, "shoes", 1, &g, &ck, NULL, NULL, &err), STORE_ERROR);
    assert_int_equal(err.code, DIM_EFORMAT);
    assert_null(ck);

    storefix_mv_free(&a);
    storefix_mv_free(&b);
    storefix_mv_free(&c);
}

static void test_models_versions_not_reused(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    struct storefix_mv a;
    storefix_mv_make(&a, 1000, 4, 3, 7);
    for (int i = 1; i <= 3; i++)
        assert_int_equal(storefix_mv_create(f->s, "m", 0, i, &a, false), i);
    /* Deleting the newest does not give its number back. */
    assert_int_equal(store_model_delete(f->s, "m", 3, &err), STORE_OK);
    assert_int_equal(store_model_delete(f->s, "m", 3, &err), STORE_NOT_FOUND);
    assert_non_null(strstr(err.msg, "no version 3"));
    assert_int_equal(storefix_mv_create(f->s, "m", 0, 4, &a, false), 4);
    struct store_model_version g = {0};
    assert_int_equal(store_model_get(f->s, "m", 0, &g, NULL, NULL, NULL, &err), STORE_OK);
    assert_int_equal(g.version, 4);
    assert_int_equal(g.job_id, 0); /* created without a job */
    store_model_version_clear(&g);

    /* Delete everything (0 = the newest each time): the model stays, with version 0. */
    for (int want = 4; want >= 1; want--) {
        if (want == 3)
            continue;
        assert_int_equal(store_model_get(f->s, "m", 0, &g, NULL, NULL, NULL, &err), STORE_OK);
        assert_int_equal(g.version, want);
        store_model_version_clear(&g);
        assert_int_equal(store_model_delete(f->s, "m", 0, &err), STORE_OK);
    }
    assert_int_equal(storefix_raw_int(f->path, "SELECT COUNT(*) FROM model_versions"), 0);
    struct store_model_version *v = NULL;
    size_t n = 0;
    assert_int_equal(store_model_versions(f->s, "m", &v, &n, &err), STORE_OK);
    assert_int_equal(n, 0);
    free(v);
    assert_int_equal(store_model_list(f->s, &v, &n, &err), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].name, "m");
    assert_int_equal(v[0].version, 0);
    assert_string_equal(v[0].sha256, "");
    assert_string_equal(v[0].source_sha256, "");
    assert_int_equal(v[0].bytes, 0);
    assert_int_equal(v[0].index_images, 0);
    storefix_free_versions(v, n);
    assert_int_equal(store_model_get(f->s, "m", 0, &g, NULL, NULL, NULL, &err), STORE_NOT_FOUND);
    assert_non_null(strstr(err.msg, "no versions"));
    assert_int_equal(store_model_delete(f->s, "m", 0, &err), STORE_NOT_FOUND);
    assert_int_equal(store_model_delete(f->s, "nope", 1, &err), STORE_NOT_FOUND);
    assert_non_null(strstr(err.msg, "no model nope"));
    assert_int_equal(storefix_mv_create(f->s, "m", 0, 5, &a, false), 5);
    /* Another name counts on its own. */
    assert_int_equal(storefix_mv_create(f->s, "m2", 0, 1, &a, false), 1);
    storefix_mv_free(&a);
}

static void test_models_survive_job_delete(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    int64_t job = storefix_running_job(f->s);
    struct store_retention all = {100, 0, "", false};
    storefix_put_ckpt(f->s, job, 100, 4000, "{}", &all);
    struct storefix_mv a;
    storefix_mv_make(&a, 3000, 10, 4, 5);
    assert_int_equal(storefix_mv_create(f->s, "keep", job, 100, &a, false), 1);
    assert_int_equal(store_job_finish(f->s, job, 1, JOB_SUCCEEDED, NULL, NULL, &err), STORE_OK);
    assert_int_equal(store_job_delete(f->s, job, &err), STORE_OK);
    assert_int_equal(storefix_raw_int(f->path, "SELECT COUNT(*) FROM checkpoints"), 0);
    assert_int_equal(storefix_raw_int(f->path, "SELECT job_id IS NULL FROM model_versions"), 1);

    struct store_model_version g = {0};
    void *ck = NULL;
    float *vec = NULL;
    uint16_t *lab = NULL;
    assert_int_equal(store_model_get(f->s, "keep", 1, &g, &ck, &vec, &lab, &err), STORE_OK);
    assert_int_equal(g.job_id, 0);
    assert_int_equal(g.step, 100);
    assert_memory_equal(ck, a.ckpt, a.bytes);
    assert_memory_equal(vec, a.vectors, 40 * sizeof(float));
    assert_memory_equal(lab, a.labels, 10 * sizeof(uint16_t));
    free(ck);
    free(vec);
    free(lab);
    store_model_version_clear(&g);

    /* A job that does not exist (any more) cannot be a source; nothing is written. */
    struct store_model_version v = {0};
    assert_int_equal(store_model_create(f->s, "other", job, 1, STOREFIX_SRC_SHA, a.ckpt, a.bytes,
                                        a.sha, NULL, NULL, false, NULL, &v, &err),
                     STORE_NOT_FOUND);
    assert_non_null(strstr(err.msg, "no job"));
    assert_int_equal(storefix_raw_int(f->path, "SELECT COUNT(*) FROM models WHERE name = 'other'"),
                     0);
    storefix_mv_free(&a);
}

static void test_models_pin(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    struct storefix_mv a;
    storefix_mv_make(&a, 2000, 0, 0, 9);
    const uint64_t g0 = store_models_generation(f->s);
    assert_int_equal(storefix_mv_create(f->s, "p", 0, 1, &a, false), 1);
    const uint64_t g1 = store_models_generation(f->s);
    assert_true(g1 > g0); /* a new version moves the generation ... */
    assert_int_equal(storefix_mv_create(f->s, "p", 0, 2, &a, true), 2);

    struct store_model_version v = {0};
    const uint64_t g2 = store_models_generation(f->s);
    assert_true(g2 > g1);
    assert_int_equal(store_model_pin(f->s, "p", 1, true, &v, &err), STORE_OK);
    assert_int_equal(store_models_generation(f->s), g2); /* ... a pin does not ... */
    assert_true(v.pinned);
    assert_int_equal(v.version, 1);
    store_model_version_clear(&v);
    assert_int_equal(store_model_delete(f->s, "p", 1, &err), STORE_CONFLICT);
    assert_non_null(strstr(err.msg, "pinned"));
    assert_int_equal(store_models_generation(f->s), g2); /* ... nor a refused delete ... */
    /* 0 = the newest: v2, pinned when it was created. */
    assert_int_equal(store_model_delete(f->s, "p", 0, &err), STORE_CONFLICT);
    assert_int_equal(storefix_raw_int(f->path, "SELECT COUNT(*) FROM model_versions"), 2);

    assert_int_equal(store_model_pin(f->s, "p", 1, false, &v, &err), STORE_OK);
    assert_false(v.pinned);
    store_model_version_clear(&v);
    assert_int_equal(store_model_get(f->s, "p", 1, &v, NULL, NULL, NULL, &err), STORE_OK);
    assert_false(v.pinned);
    store_model_version_clear(&v);
    assert_int_equal(store_model_delete(f->s, "p", 1, &err), STORE_OK);
    assert_true(store_models_generation(f->s) > g2); /* ... and a delete does */
    /* 0 = the newest; out may be NULL. */
    assert_int_equal(store_model_pin(f->s, "p", 0, false, NULL, &err), STORE_OK);
    assert_int_equal(store_model_delete(f->s, "p", 2, &err), STORE_OK);

    assert_int_equal(store_model_pin(f->s, "p", 2, true, &v, &err), STORE_NOT_FOUND);
    assert_int_equal(store_model_pin(f->s, "q", 1, true, &v, &err), STORE_NOT_FOUND);
    assert_non_null(strstr(err.msg, "no model q"));
    storefix_mv_free(&a);
}

static void test_models_refused(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    struct storefix_mv a;
    storefix_mv_make(&a, 1500, 4, 2, 11);
    struct store_model_version v = {0};

    /* The given sha256 is not the bytes'. */
    char wrong[65];
    memcpy(wrong, a.sha, 65);
    wrong[10] = wrong[10] == '0' ? '1' : '0';
    assert_int_equal(store_model_create(f->s, "m", 0, 1, STOREFIX_SRC_SHA, a.ckpt, a.bytes, wrong,
                                        NULL, NULL, false, &a.index, &v, &err),
                     STORE_ERROR);
    assert_int_equal(err.code, DIM_EINVAL);
    assert_non_null(strstr(err.msg, "sha256"));
    assert_non_null(strstr(err.msg, a.sha));
    /* Not hex, bad source sha, empty checkpoint, bad JSON, bad index. */
    assert_int_equal(store_model_create(f->s, "m", 0, 1, STOREFIX_SRC_SHA, a.ckpt, a.bytes, "abc",
                                        NULL, NULL, false, NULL, &v, &err),
                     STORE_ERROR);
    assert_int_equal(store_model_create(f->s, "m", 0, 1, "x", a.ckpt, a.bytes, a.sha, NULL, NULL,
                                        false, NULL, &v, &err),
                     STORE_ERROR);
    assert_int_equal(store_model_create(f->s, "m", 0, 1, STOREFIX_SRC_SHA, a.ckpt, 0, a.sha, NULL,
                                        NULL, false, NULL, &v, &err),
                     STORE_ERROR);
    assert_int_equal(store_model_create(f->s, "m", 0, 1, STOREFIX_SRC_SHA, a.ckpt, a.bytes, a.sha,
                                        "[1]", NULL, false, NULL, &v, &err),
                     STORE_ERROR);
    assert_non_null(strstr(err.msg, "info"));
    assert_int_equal(store_model_create(f->s, "m", 0, 1, STOREFIX_SRC_SHA, a.ckpt, a.bytes, a.sha,
                                        NULL, "{bad", false, NULL, &v, &err),
                     STORE_ERROR);
    struct store_model_index bad = a.index;
    bad.dim = 0;
    assert_int_equal(store_model_create(f->s, "m", 0, 1, STOREFIX_SRC_SHA, a.ckpt, a.bytes, a.sha,
                                        NULL, NULL, false, &bad, &v, &err),
                     STORE_ERROR);
    bad = a.index;
    bad.labels = NULL;
    assert_int_equal(store_model_create(f->s, "m", 0, 1, STOREFIX_SRC_SHA, a.ckpt, a.bytes, a.sha,
                                        NULL, NULL, false, &bad, &v, &err),
                     STORE_ERROR);
    /* Nothing was written, not even the model row. */
    assert_int_equal(storefix_raw_int(f->path, "SELECT COUNT(*) FROM models"), 0);
    assert_int_equal(storefix_raw_int(f->path, "SELECT COUNT(*) FROM model_versions"), 0);

    /* Names: ^[a-z0-9][a-z0-9_-]{0,62}$ */
    char n63[64], n64[65];
    memset(n63, 'a', 63);
    n63[63] = 0;
    memset(n64, 'a', 64);
    n64[64] = 0;
    const char *badn[] = {"", "Shoes", "-x", "_x", "a b", "a/b", "a.b", "sh\xc3\xb6", n64, NULL};
    for (size_t i = 0; i < sizeof(badn) / sizeof(*badn); i++) {
        err.code = 0;
        assert_int_equal(store_model_create(f->s, badn[i], 0, 1, STOREFIX_SRC_SHA, a.ckpt, a.bytes,
                                            a.sha, NULL, NULL, false, NULL, &v, &err),
                         STORE_ERROR);
        assert_int_equal(err.code, DIM_EINVAL);
        assert_non_null(strstr(err.msg, "model name"));
        struct store_model_version *vs = NULL;
        size_t n = 0;
        err.code = 0;
        assert_int_equal(store_model_versions(f->s, badn[i], &vs, &n, &err), STORE_ERROR);
        assert_int_equal(err.code, DIM_EINVAL);
        err.code = 0;
        assert_int_equal(store_model_get(f->s, badn[i], 0, &v, NULL, NULL, NULL, &err),
                         STORE_ERROR);
        assert_int_equal(err.code, DIM_EINVAL);
        err.code = 0;
        assert_int_equal(store_model_delete(f->s, badn[i], 1, &err), STORE_ERROR);
        assert_int_equal(err.code, DIM_EINVAL);
        err.code = 0;
        assert_int_equal(store_model_pin(f->s, badn[i], 1, true, NULL, &err), STORE_ERROR);
        assert_int_equal(err.code, DIM_EINVAL);
    }
    assert_int_equal(storefix_raw_int(f->path, "SELECT COUNT(*) FROM models"), 0);
    const char *good[] = {"a", "0", "a-b_c", "9z--__", n63};
    for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
        assert_int_equal(storefix_mv_create(f->s, good[i], 0, 1, &a, false), 1);
    storefix_mv_free(&a);
}

static void test_models_delete_reclaims(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    struct storefix_mv small, big;
    storefix_mv_make(&small, 1000, 10, 8, 1);
    storefix_mv_make(&big, 2 * 1024 * 1024, 4096, 64, 2); /* 2 MiB + 1 MiB of index */
    assert_int_equal(storefix_mv_create(f->s, "big", 0, 1, &small, false), 1);
    assert_int_equal(storefix_mv_create(f->s, "big", 0, 2, &big, false), 2);
    int64_t pages = storefix_raw_int(f->path, "PRAGMA page_count");
    int64_t psize = storefix_raw_int(f->path, "PRAGMA page_size");
    int64_t freed = (int64_t)big.bytes + 4096 * 64 * 4 + 4096 * 2;
    assert_true(pages * psize > freed);
    assert_int_equal(store_model_delete(f->s, "big", 2, &err), STORE_OK);
    int64_t after = storefix_raw_int(f->path, "PRAGMA page_count");
    assert_int_equal(storefix_raw_int(f->path, "PRAGMA freelist_count"), 0);
    assert_true((pages - after) * psize >= freed);
    /* The other version is intact. */
    void *ck = NULL;
    struct store_model_version g = {0};
    assert_int_equal(store_model_get(f->s, "big", 0, &g, &ck, NULL, NULL, &err), STORE_OK);
    assert_int_equal(g.version, 1);
    assert_memory_equal(ck, small.ckpt, small.bytes);
    free(ck);
    store_model_version_clear(&g);
    storefix_mv_free(&small);
    storefix_mv_free(&big);
}

/* The dashboard's reads: a job's latest values and newest event id, history
 * ranges (to_step), and model projections (stored once, gone with the version). */
static void test_dashboard_reads(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    int64_t id = storefix_running_job(f->s);
    struct store_job j = {0};
    assert_int_equal(store_job_get(f->s, id, &j, &err), STORE_OK);
    assert_string_equal(j.latest_json, "{}");
    int64_t ev0 = j.last_event_id;
    assert_true(ev0 > 0); /* submission and claim are events */
    store_job_clear(&j);
    struct store_metric m[] = {{"loss_total", 1, 0.9, 1000},  {"probe_y", 1, 0.5, 1000},
                               {"loss_total", 2, 0.7, 1001},  {"loss_local", 2, INFINITY, 1001},
                               {"loss_total", 3, 0.25, 1002}, {"probe_y", 3, NAN, 1002}};
    assert_int_equal(store_metrics_append(f->s, id, 1, m, 6, 3, 10, &err), STORE_OK);
    assert_int_equal(store_job_get(f->s, id, &j, &err), STORE_OK);
    json_t *latest = json_loads(j.latest_json, 0, NULL);
    assert_non_null(latest);
    assert_int_equal(json_object_size(latest), 3);
    assert_true(json_real_value(json_object_get(latest, "loss_total")) == 0.25);
    assert_true(json_is_null(json_object_get(latest, "loss_local"))); /* inf */
    assert_true(json_is_null(json_object_get(latest, "probe_y")));    /* NaN */
    json_decref(latest);
    assert_true(j.last_event_id > ev0); /* the metrics event */
    char type[16];
    json_t *e = storefix_last_event(f->s, id, type);
    assert_string_equal(type, "metrics");
    json_decref(e);
    store_job_clear(&j);
    /* the list reads the same columns */
    struct store_job *jobs = NULL;
    size_t n = 0;
    bool more;
    assert_int_equal(store_job_list(f->s, NULL, 0, 10, &jobs, &n, &more, &err), STORE_OK);
    assert_int_equal(n, 1);
    assert_non_null(strstr(jobs[0].latest_json, "\"loss_total\":0.25"));
    store_job_clear(&jobs[0]);
    free(jobs);

    /* history range: after_step < step <= to_step */
    struct store_point *p = NULL;
    assert_int_equal(
        store_metrics_history(f->s, id, "loss_total", 1, 2, 100, 0, &p, &n, &more, &err), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(p[0].step, 2);
    assert_false(more);
    free(p);
    assert_int_equal(store_metrics_history(f->s, id, "loss_total", 0, 2, 1, 0, &p, &n, &more, &err),
                     STORE_OK);
    assert_int_equal(n, 1);
    assert_true(more); /* step 2 remains in range */
    free(p);

    /* projections */
    struct storefix_mv in;
    storefix_mv_make(&in, 1000, 10, 8, 1);
    assert_int_equal(storefix_mv_create(f->s, "proj", 0, 1, &in, false), 1);
    assert_int_equal(storefix_mv_create(f->s, "proj", 0, 2, &in, false), 2);
    char *text = NULL;
    assert_int_equal(store_projection_get(f->s, "proj", 1, &text, &err), STORE_NOT_FOUND);
    assert_int_equal(store_projection_put(f->s, "proj", 1, "{\"a\":1}", &err), STORE_OK);
    assert_int_equal(store_projection_put(f->s, "proj", 1, "{\"a\":2}", &err), STORE_OK);
    assert_int_equal(store_projection_get(f->s, "proj", 1, &text, &err), STORE_OK);
    assert_string_equal(text, "{\"a\":1}"); /* the first one stays */
    free(text);
    assert_int_equal(store_projection_get(f->s, "proj", 2, &text, &err), STORE_NOT_FOUND);
    assert_int_equal(store_projection_put(f->s, "proj", 3, "{}", &err), STORE_NOT_FOUND);
    assert_int_equal(store_projection_put(f->s, "nope", 1, "{}", &err), STORE_NOT_FOUND);
    assert_int_equal(store_projection_put(f->s, "Bad Name", 1, "{}", &err), STORE_ERROR);
    assert_int_equal(store_model_delete(f->s, "proj", 1, &err), STORE_OK);
    assert_int_equal(store_projection_get(f->s, "proj", 1, &text, &err), STORE_NOT_FOUND);
    assert_int_equal(storefix_raw_int(f->path, "SELECT COUNT(*) FROM model_projections"), 0);
    storefix_mv_free(&in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_models_create_list_get, storefix_setup_open,
                                        storefix_teardown),
        cmocka_unit_test_setup_teardown(test_models_versions_not_reused, storefix_setup_open,
                                        storefix_teardown),
        cmocka_unit_test_setup_teardown(test_models_survive_job_delete, storefix_setup_open,
                                        storefix_teardown),
        cmocka_unit_test_setup_teardown(test_models_pin, storefix_setup_open, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_models_refused, storefix_setup_open,
                                        storefix_teardown),
        cmocka_unit_test_setup_teardown(test_models_delete_reclaims, storefix_setup_open,
                                        storefix_teardown),
        cmocka_unit_test_setup_teardown(test_dashboard_reads, storefix_setup_open,
                                        storefix_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

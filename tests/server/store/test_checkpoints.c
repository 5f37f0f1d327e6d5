/* test_checkpoints.c - checkpoints (store/checkpoints.h): put, list and get with their "checkpoint"
 * events, and retention (newest N plus best M by a metric); a put that fails
 * for lack of space (the file size limit, RLIMIT_FSIZE: SQLite gets EFBIG as
 * it would ENOSPC) returns STORE_FULL and leaves what was committed, and the
 * worker's pause with storage_full; store_checkpoint_need.
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
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "storefix.h"

static void assert_steps(struct dimd_store *s, int64_t id, const int64_t *want, size_t n_want)
{
    struct dim_err err = {0};
    struct store_checkpoint *c = NULL;
    size_t n = 0;
    assert_int_equal(store_checkpoint_list(s, id, &c, &n, &err), STORE_OK);
    assert_int_equal(n, n_want);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(c[i].step, want[i]);
        store_checkpoint_clear(&c[i]);
    }
    free(c);
}

static void test_checkpoints(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    int64_t id = storefix_running_job(f->s);
    struct store_retention all = {100, 0, "", false};
    storefix_put_ckpt(f->s, id, 100, 5000, "{\"loss_total\":0.5,\"probe_y\":0.8}", &all);
    storefix_put_ckpt(f->s, id, 200, 7000, "{}", &all);

    struct store_checkpoint *c = NULL;
    size_t n = 0;
    assert_int_equal(store_checkpoint_list(f->s, id, &c, &n, &err), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(c[0].step, 100);
    assert_int_equal(c[0].bytes, 5000);
    assert_true(c[0].created_ms > 0);
    json_error_t je;
    json_t *mj = json_loads(c[0].metrics_json, 0, &je);
    assert_non_null(mj);
    assert_true(json_real_value(json_object_get(mj, "probe_y")) == 0.8);
    json_decref(mj);
    assert_int_equal(c[1].bytes, 7000);
    char first_sha[65];
    memcpy(first_sha, c[0].sha256, 65);
    for (size_t i = 0; i < n; i++)
        store_checkpoint_clear(&c[i]);
    free(c);
    assert_int_equal(store_checkpoint_list(f->s, 999, &c, &n, &err), STORE_NOT_FOUND);

    struct store_checkpoint meta = {0};
    void *data = NULL;
    assert_int_equal(store_checkpoint_get(f->s, id, 100, &meta, &data, &err), STORE_OK);
    char h[65];
    sha256_hex(data, 5000, h);
    assert_string_equal(h, meta.sha256);
    assert_string_equal(h, first_sha);
    assert_int_equal(meta.bytes, 5000);
    free(data);
    store_checkpoint_clear(&meta);
    assert_int_equal(store_checkpoint_get(f->s, id, -1, &meta, &data, &err), STORE_OK);
    assert_int_equal(meta.step, 200);
    sha256_hex(data, 7000, h);
    assert_string_equal(h, meta.sha256);
    free(data);
    store_checkpoint_clear(&meta);
    assert_int_equal(store_checkpoint_get(f->s, id, -1, &meta, NULL, &err), STORE_OK);
    assert_int_equal(meta.step, 200);
    store_checkpoint_clear(&meta);
    assert_int_equal(store_checkpoint_get(f->s, id, 150, &meta, &data, &err), STORE_NOT_FOUND);
    assert_null(data);
    struct store_job j = {0};
    assert_int_equal(store_job_get(f->s, id, &j, &err), STORE_OK);
    assert_int_equal(j.checkpoint_step, 200);
    store_job_clear(&j);

    /* The event. */
    char type[16];
    json_t *e = storefix_last_event(f->s, id, type);
    assert_string_equal(type, "checkpoint");
    assert_int_equal(json_integer_value(json_object_get(e, "step")), 200);
    assert_int_equal(json_integer_value(json_object_get(e, "bytes")), 7000);
    assert_string_equal(storefix_jstr(e, "sha256"), h);
    assert_true(json_is_object(json_object_get(e, "metrics")));
    json_decref(e);

    /* Wrong digest, bad metrics JSON: refused, nothing written. */
    size_t ev = storefix_n_events(f->s, id);
    assert_int_equal(store_checkpoint_put(f->s, id, 1, 300, "abc", 3, first_sha, "{}", &all, &err),
                     STORE_ERROR);
    assert_non_null(strstr(err.msg, "sha256"));
    sha256_hex("abc", 3, h);
    assert_int_equal(store_checkpoint_put(f->s, id, 1, 300, "abc", 3, h, "[1]", &all, &err),
                     STORE_ERROR);
    assert_int_equal(storefix_n_events(f->s, id), ev);
    const int64_t two[] = {100, 200};
    assert_steps(f->s, id, two, 2);

    /* No digest given: the store hashes the bytes and records that digest. */
    assert_int_equal(store_checkpoint_put(f->s, id, 1, 200, "abcd", 4, NULL, "{}", &all, &err),
                     STORE_OK);
    sha256_hex("abcd", 4, h);
    assert_int_equal(store_checkpoint_get(f->s, id, 200, &meta, &data, &err), STORE_OK);
    assert_string_equal(meta.sha256, h);
    assert_memory_equal(data, "abcd", 4);
    free(data);
    store_checkpoint_clear(&meta);
    e = storefix_last_event(f->s, id, type);
    assert_string_equal(storefix_jstr(e, "sha256"), h);
    json_decref(e);

    /* The same step again replaces it. */
    storefix_put_ckpt(f->s, id, 200, 3000, "{\"loss_total\":0.25}", &all);
    assert_steps(f->s, id, two, 2);
    assert_int_equal(store_checkpoint_get(f->s, id, 200, &meta, &data, &err), STORE_OK);
    assert_int_equal(meta.bytes, 3000);
    assert_string_equal(meta.metrics_json, "{\"loss_total\":0.25}");
    free(data);
    store_checkpoint_clear(&meta);
}

static void test_checkpoint_retention(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    /* keep_last 2 + the best 1 by probe_y (max). */
    int64_t id = storefix_running_job(f->s);
    struct store_retention kmax = {2, 1, "probe_y", true};
    storefix_put_ckpt(f->s, id, 100, 20000, "{\"probe_y\":0.9,\"loss_total\":3}", &kmax);
    storefix_put_ckpt(f->s, id, 200, 20000, "{\"probe_y\":0.5,\"loss_total\":1}", &kmax);
    storefix_put_ckpt(f->s, id, 300, 20000, "{\"probe_y\":0.6,\"loss_total\":2}", &kmax);
    const int64_t w1[] = {100, 200, 300};
    assert_steps(f->s, id, w1, 3);
    storefix_put_ckpt(f->s, id, 400, 20000, "{\"probe_y\":0.7,\"loss_total\":4}", &kmax);
    const int64_t w2[] = {100, 300, 400};
    assert_steps(f->s, id, w2, 3);
    storefix_put_ckpt(f->s, id, 500, 20000, "{\"loss_total\":0.1}", &kmax); /* lacks probe_y */
    const int64_t w3[] = {100, 400, 500};
    assert_steps(f->s, id, w3, 3);
    storefix_put_ckpt(f->s, id, 600, 20000, "{\"probe_y\":\"NaN\"}",
                      &kmax); /* not a number: never best */
    const int64_t w4[] = {100, 500, 600};
    assert_steps(f->s, id, w4, 3);
    /* Deleted checkpoints' pages are reclaimed at once. */
    assert_int_equal(storefix_raw_int(f->path, "PRAGMA freelist_count"), 0);

    /* keep_last 1 + the best 2 by loss_total (min). */
    int64_t id2 = storefix_insert_job(f->s, NULL);
    struct store_job j = {0};
    assert_int_equal(store_job_transition(f->s, id, JOB_MASK(JOB_RUNNING), JOB_CANCELLED, NULL,
                                          NULL, NULL, &err),
                     STORE_OK);
    assert_int_equal(store_job_claim(f->s, NULL, 0, &j, &err), STORE_OK);
    assert_int_equal(j.id, id2);
    store_job_clear(&j);
    struct store_retention kmin = {1, 2, "loss_total", false};
    const double loss[] = {5, 1, 4, 2, 3, 0.5};
    for (int i = 0; i < 6; i++) {
        char mj[64];
        snprintf(mj, sizeof(mj), "{\"loss_total\":%g}", loss[i]);
        storefix_put_ckpt(f->s, id2, 10 * (i + 1), 1000, mj, &kmin);
    }
    /* newest: 60 (0.5); best two: 60 (0.5), 20 (1). */
    const int64_t w5[] = {20, 60};
    assert_steps(f->s, id2, w5, 2);
    /* No retention: everything kept. */
    storefix_put_ckpt(f->s, id2, 70, 1000, "{}", NULL);
    const int64_t w6[] = {20, 60, 70};
    assert_steps(f->s, id2, w6, 3);
    /* The first job's checkpoints were not touched by the second's retention. */
    assert_steps(f->s, id, w4, 3);
}

static int64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : 0;
}

static void test_checkpoint_put_on_a_full_disk(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    int64_t id = storefix_running_job(f->s);
    struct store_retention keep = {1, 0, "", false};
    storefix_put_ckpt(f->s, id, 10, 5000, "{}", &keep);
    /* an 8 MB checkpoint where no file may grow past its present size */
    const size_t n = 8u << 20;
    unsigned char *big = malloc(n);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (unsigned char)(i * 131u);
    char hex[65];
    sha256_hex(big, n, hex);
    int64_t need = 0;
    assert_int_equal(store_checkpoint_need(f->s, (int64_t)n, &need, &err), STORE_OK);
    assert_true(need >= (int64_t)n);     /* the database file must grow by it at least */
    assert_true(need <= 2 * (int64_t)n + (1 << 20));
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    int64_t cap = file_size(f->path) > file_size(wal) ? file_size(f->path) : file_size(wal);
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = (rlim_t)cap + 65536;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = store_checkpoint_put(f->s, id, 1, 20, big, n, hex, "{}", &keep, &err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    assert_int_equal(rc, STORE_FULL);
    assert_non_null(strstr(err.msg, "store checkpoint"));
    /* nothing of it was stored, the committed checkpoint is whole */
    const int64_t only10[] = {10};
    assert_steps(f->s, id, only10, 1);
    struct store_checkpoint meta = {0};
    void *data = NULL;
    assert_int_equal(store_checkpoint_get(f->s, id, -1, &meta, &data, &err), STORE_OK);
    assert_int_equal(meta.step, 10);
    assert_int_equal(meta.bytes, 5000);
    sha256_hex(data, 5000, hex);
    assert_string_equal(hex, meta.sha256);
    free(data);
    store_checkpoint_clear(&meta);
    /* the worker pauses the job with storage_full; resuming clears it */
    assert_int_equal(store_job_finish(f->s, id, 1, JOB_PAUSED, "storage_full", "no space", &err),
                     STORE_OK);
    struct store_job j = {0};
    assert_int_equal(store_job_get(f->s, id, &j, &err), STORE_OK);
    assert_int_equal(j.state, JOB_PAUSED);
    assert_string_equal(j.error_code, "storage_full");
    store_job_clear(&j);
    assert_int_equal(store_job_transition(f->s, id, JOB_MASK(JOB_PAUSED), JOB_QUEUED, NULL, NULL,
                                          &j, &err),
                     STORE_OK);
    assert_null(j.error_code);
    store_job_clear(&j);
    /* with the limit gone the same put succeeds */
    sha256_hex(big, n, hex);
    assert_int_equal(store_job_claim(f->s, NULL, 0, &j, &err), STORE_OK);
    assert_int_equal(store_checkpoint_put(f->s, id, j.attempts, 20, big, n, hex, "{}", &keep, &err),
                     STORE_OK);
    store_job_clear(&j);
    const int64_t only20[] = {20};
    assert_steps(f->s, id, only20, 1);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_checkpoints, storefix_setup_open, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_put_on_a_full_disk, storefix_setup_open,
                                        storefix_teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_retention, storefix_setup_open,
                                        storefix_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

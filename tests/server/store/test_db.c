/* test_db.c - the SQLite plumbing (store/store.h, server/store/db.c): a fresh database
 * migrated to the latest schema, upgrades in place (from version 1, and
 * from 2 gaining the model tables), a newer schema refused, and the
 * connection pool under concurrent writers and a reader.
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
#include "store/tokens.h"
#include "storefix.h"
#include "util/assets.h"

static void test_open_fresh_migrates(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    assert_int_equal(store_schema_latest(), 7);
    assert_non_null(assets_find("migrations/0001_jobs.sql"));
    assert_non_null(assets_find("migrations/0002_tokens.sql"));
    assert_non_null(assets_find("migrations/0003_models.sql"));
    assert_non_null(assets_find("migrations/0004_projections.sql"));
    assert_non_null(assets_find("migrations/0005_evaluations.sql"));
    assert_non_null(assets_find("migrations/0006_sweeps.sql"));
    assert_non_null(assets_find("migrations/0007_job_hosts.sql"));
    assert_int_equal(store_open(&f->s, f->path, &err), STORE_OK);
    assert_int_equal(store_schema_version(f->s), 7);
    assert_int_equal(storefix_raw_int(f->path, "PRAGMA user_version"), 7);
    assert_int_equal(storefix_raw_int(f->path, "PRAGMA auto_vacuum"), 2); /* INCREMENTAL */
    assert_int_equal(
        storefix_raw_int(f->path, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
    assert_int_equal(
        storefix_raw_int(f->path, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' "
                                  "AND name IN ('jobs', 'attempts', 'metrics', 'checkpoints', "
                                  "'events', 'idempotency', 'tokens', 'models', "
                                  "'model_versions', 'model_projections', 'model_evaluations', "
                                  "'sweeps', 'sweep_trials', 'sweep_results', 'sweep_decisions', "
                                  "'sweep_events')"),
        16);
    /* The checkpoint bytes are the last column of a version's row. */
    assert_int_equal(
        storefix_raw_int(f->path, "SELECT name = 'data' FROM pragma_table_info('model_versions') "
                                  "ORDER BY cid DESC LIMIT 1"),
        1);
    /* A data-parallel job's hosts (0007) are a column of its row. */
    assert_int_equal(
        storefix_raw_int(f->path, "SELECT COUNT(*) FROM pragma_table_info('jobs') WHERE name = "
                                  "'hosts'"),
        1);
    /* Reopening an up-to-date database changes nothing. */
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(store_open(&f->s, f->path, &err), STORE_OK);
    assert_int_equal(store_schema_version(f->s), 7);
}

static void test_upgrade_in_place_keeps_jobs(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    assert_int_equal(store_open_at_version(&f->s, f->path, 1, &err), STORE_OK);
    assert_int_equal(store_schema_version(f->s), 1);
    assert_int_equal(
        storefix_raw_int(f->path, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'tokens'"), 0);
    int64_t n = 0;
    assert_int_equal(store_token_count(f->s, &n, &err), STORE_ERROR); /* no tokens table yet */
    assert_non_null(strstr(err.msg, "tokens"));
    /* this binary's job reads name jobs.hosts (0007): the old schema borrows the
     * column for the writes below and gives it back before the upgrade */
    storefix_raw_exec(f->path, "ALTER TABLE jobs ADD COLUMN hosts TEXT");
    int64_t id = storefix_insert_job(f->s, "old");
    storefix_raw_exec(f->path, "ALTER TABLE jobs DROP COLUMN hosts");
    store_close(f->s);
    f->s = NULL;

    /* 1 -> latest in one open: every later migration applies, in order. */
    assert_int_equal(store_open(&f->s, f->path, &err), STORE_OK);
    assert_int_equal(store_schema_version(f->s), store_schema_latest());
    assert_int_equal(storefix_raw_int(f->path, "PRAGMA user_version"), store_schema_latest());
    assert_int_equal(storefix_raw_int(f->path, "PRAGMA auto_vacuum"), 2);
    assert_int_equal(storefix_raw_int(f->path,
                                      "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' "
                                      "AND name IN ('tokens', 'models', 'model_versions')"),
                     3);
    struct store_job j = {0};
    assert_int_equal(store_job_get(f->s, id, &j, &err), STORE_OK);
    assert_string_equal(j.name, "old");
    assert_string_equal(j.spec_json, "{\"steps\":10}");
    store_job_clear(&j);
    char text[TOKEN_TEXT_MAX];
    assert_int_equal(store_token_create(f->s, "t", SCOPE_READ, text, NULL, &err), STORE_OK);
    assert_int_equal(store_token_count(f->s, &n, &err), STORE_OK);
    assert_int_equal(n, 1);
}

static void test_refuses_newer_schema(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    storefix_raw_exec(f->path, "CREATE TABLE future (x); PRAGMA user_version = 99");
    assert_int_equal(store_open(&f->s, f->path, &err), STORE_ERROR);
    assert_null(f->s);
    assert_non_null(strstr(err.msg, "99"));
    char latest[16];
    snprintf(latest, sizeof(latest), "(%d)", store_schema_latest());
    assert_non_null(strstr(err.msg, latest));
    assert_non_null(strstr(err.msg, "upgrade dimd"));
    /* And it was left alone. */
    assert_int_equal(storefix_raw_int(f->path, "PRAGMA user_version"), 99);
    assert_int_equal(
        storefix_raw_int(f->path, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'jobs'"), 0);
}

static void test_upgrade_from_2_gains_models(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    assert_int_equal(store_open_at_version(&f->s, f->path, 2, &err), STORE_OK);
    assert_int_equal(store_schema_version(f->s), 2);
    storefix_raw_exec(f->path, "ALTER TABLE jobs ADD COLUMN hosts TEXT"); /* as above */
    int64_t job = storefix_running_job(f->s);
    struct store_retention all = {100, 0, "", false};
    storefix_put_ckpt(f->s, job, 50, 3000, "{\"probe_y\":0.5}", &all);
    assert_int_equal(store_job_finish(f->s, job, 1, JOB_SUCCEEDED, NULL, NULL, &err), STORE_OK);
    struct store_model_version *v = NULL;
    size_t n = 0;
    assert_int_equal(store_model_list(f->s, &v, &n, &err), STORE_ERROR); /* no models table yet */
    assert_non_null(strstr(err.msg, "models"));
    storefix_raw_exec(f->path, "ALTER TABLE jobs DROP COLUMN hosts");
    store_close(f->s);
    f->s = NULL;

    assert_int_equal(store_open(&f->s, f->path, &err), STORE_OK);
    assert_int_equal(store_schema_version(f->s), store_schema_latest());
    assert_int_equal(storefix_raw_int(f->path, "PRAGMA user_version"), store_schema_latest());
    assert_int_equal(storefix_raw_int(f->path, "PRAGMA auto_vacuum"), 2);
    /* The old job and its checkpoint are intact, and can be promoted. */
    struct store_job j = {0};
    assert_int_equal(store_job_get(f->s, job, &j, &err), STORE_OK);
    assert_int_equal(j.state, JOB_SUCCEEDED);
    assert_int_equal(j.checkpoint_step, 50);
    store_job_clear(&j);
    struct store_checkpoint meta = {0};
    void *data = NULL;
    assert_int_equal(store_checkpoint_get(f->s, job, -1, &meta, &data, &err), STORE_OK);
    struct store_model_version out = {0};
    assert_int_equal(store_model_create(f->s, "old", job, meta.step, meta.sha256, data,
                                        (size_t)meta.bytes, meta.sha256, NULL, meta.metrics_json,
                                        false, NULL, &out, &err),
                     STORE_OK);
    assert_int_equal(out.version, 1);
    assert_int_equal(out.job_id, job);
    assert_string_equal(out.metrics_json, "{\"probe_y\":0.5}");
    assert_string_equal(out.info_json, "{}");
    store_model_version_clear(&out);
    free(data);
    store_checkpoint_clear(&meta);
    assert_int_equal(store_model_list(f->s, &v, &n, &err), STORE_OK);
    assert_int_equal(n, 1);
    storefix_free_versions(v, n);
    /* The foreign key to jobs works in the upgraded file too. */
    assert_int_equal(store_job_delete(f->s, job, &err), STORE_OK);
    assert_int_equal(store_model_get(f->s, "old", 1, &out, NULL, NULL, NULL, &err), STORE_OK);
    assert_int_equal(out.job_id, 0);
    store_model_version_clear(&out);
}

enum { CONC_BATCHES = 60, CONC_POINTS = 5 };

struct worker {
    struct dimd_store *s;
    int64_t id;
    int bad; /* calls that did not return STORE_OK */
    char msg[256];
    int *stop; /* set by the main thread (atomic) */
};

static void *writer(void *arg)
{
    struct worker *w = arg;
    struct dim_err err = {0};
    for (int b = 0; b < CONC_BATCHES; b++) {
        struct store_metric m[CONC_POINTS];
        for (int k = 0; k < CONC_POINTS; k++)
            m[k] = (struct store_metric){k % 2 ? "loss_local" : "loss_total",
                                         (int64_t)b * CONC_POINTS + k + 1, b + k, b};
        if (store_metrics_append(w->s, w->id, 1, m, CONC_POINTS, m[CONC_POINTS - 1].step, 1,
                                 &err) != STORE_OK) {
            w->bad++;
            snprintf(w->msg, sizeof(w->msg), "%s", err.msg);
        }
    }
    return NULL;
}

static void *reader(void *arg)
{
    struct worker *w = arg;
    struct dim_err err = {0};
    int rounds = 0;
    while (!__atomic_load_n(w->stop, __ATOMIC_ACQUIRE) || rounds < 5) {
        struct store_metric_summary *sm = NULL;
        struct store_point *p = NULL;
        struct store_job j = {0};
        size_t n = 0;
        bool more = false;
        if (store_metrics_summary(w->s, w->id, &sm, &n, &err) != STORE_OK ||
            store_metrics_history(w->s, w->id, "loss_total", 0, INT64_MAX, 1000, 20, &p, &n, &more,
                                  &err) != STORE_OK ||
            store_job_get(w->s, w->id, &j, &err) != STORE_OK) {
            w->bad++;
            snprintf(w->msg, sizeof(w->msg), "%s", err.msg);
        }
        free(sm);
        free(p);
        store_job_clear(&j);
        rounds++;
    }
    return NULL;
}

static void test_concurrency(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    int64_t a = storefix_insert_job(f->s, "a"), b = storefix_insert_job(f->s, "b");
    struct store_job j = {0};
    assert_int_equal(store_job_claim(f->s, NULL, 0, &j, &err), STORE_OK);
    assert_int_equal(j.id, a);
    store_job_clear(&j);
    assert_int_equal(store_job_claim(f->s, NULL, 0, &j, &err), STORE_OK);
    assert_int_equal(j.id, b);
    store_job_clear(&j);

    int stop = 0;
    struct worker w[3] = {
        {f->s, a, 0, "", &stop}, {f->s, b, 0, "", &stop}, {f->s, a, 0, "", &stop}};
    pthread_t th[3];
    assert_int_equal(pthread_create(&th[0], NULL, writer, &w[0]), 0);
    assert_int_equal(pthread_create(&th[1], NULL, writer, &w[1]), 0);
    assert_int_equal(pthread_create(&th[2], NULL, reader, &w[2]), 0);
    pthread_join(th[0], NULL);
    pthread_join(th[1], NULL);
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    pthread_join(th[2], NULL);
    for (int i = 0; i < 3; i++) {
        if (w[i].bad)
            fprintf(stderr, "thread %d: %d failures, last: %s\n", i, w[i].bad, w[i].msg);
        assert_int_equal(w[i].bad, 0);
    }
    char sql[128];
    for (int i = 0; i < 2; i++) {
        snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM metrics WHERE job_id = %lld",
                 (long long)w[i].id);
        assert_int_equal(storefix_raw_int(f->path, sql), CONC_BATCHES * CONC_POINTS);
        assert_int_equal(storefix_n_events(f->s, w[i].id), 2 + CONC_BATCHES);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_fresh_migrates, storefix_setup,
                                        storefix_teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_in_place_keeps_jobs, storefix_setup,
                                        storefix_teardown),
        cmocka_unit_test_setup_teardown(test_refuses_newer_schema, storefix_setup,
                                        storefix_teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_from_2_gains_models, storefix_setup,
                                        storefix_teardown),
        cmocka_unit_test_setup_teardown(test_concurrency, storefix_setup_open, storefix_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

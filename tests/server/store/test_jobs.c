/* test_jobs.c - job rows (store/jobs.h): insert, get and list with filters and cursors,
 * transitions and their "state" events, the claim order, recovery after a
 * crash, idempotency keys (a replay within the TTL, a new job after it, and
 * the purge that keeps the table to one TTL's keys), the queue limit, stale
 * workers' writes, and delete with its cascades.
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
#include "storefix.h"

static void test_job_insert_get_list(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    int64_t ids[7];
    for (int i = 0; i < 7; i++) {
        char name[16];
        snprintf(name, sizeof(name), "job%d", i);
        ids[i] = storefix_insert_job(f->s, name);
        if (i > 0)
            assert_true(ids[i] > ids[i - 1]);
    }
    struct store_job j = {0};
    assert_int_equal(store_job_get(f->s, ids[3], &j, &err), STORE_OK);
    assert_int_equal(j.id, ids[3]);
    assert_string_equal(j.name, "job3");
    assert_int_equal(j.state, JOB_QUEUED);
    assert_true(j.created_ms > 1600000000000LL);
    assert_int_equal(j.updated_ms, j.created_ms);
    assert_int_equal(j.started_ms, 0);
    assert_int_equal(j.finished_ms, 0);
    assert_int_equal(j.checkpoint_step, -1);
    assert_int_equal(j.attempts, 0);
    assert_null(j.error_code);
    store_job_clear(&j);
    assert_int_equal(store_job_get(f->s, 9999, &j, &err), STORE_NOT_FOUND);

    /* Pages of 3, newest first. */
    struct store_job *v = NULL;
    size_t n = 0;
    bool more = false;
    int64_t cursor = 0;
    int64_t seen[7];
    size_t total = 0;
    for (int page = 0; page < 3; page++) {
        assert_int_equal(store_job_list(f->s, NULL, cursor, 3, &v, &n, &more, &err), STORE_OK);
        assert_int_equal(n, page < 2 ? 3 : 1);
        assert_int_equal(more, page < 2);
        for (size_t i = 0; i < n; i++) {
            seen[total++] = v[i].id;
            store_job_clear(&v[i]);
        }
        cursor = seen[total - 1];
        free(v);
    }
    assert_int_equal(total, 7);
    for (int i = 0; i < 7; i++)
        assert_int_equal(seen[i], ids[6 - i]);

    /* Exactly limit rows left: more is false. */
    assert_int_equal(store_job_list(f->s, NULL, ids[3], 3, &v, &n, &more, &err), STORE_OK);
    assert_int_equal(n, 3);
    assert_false(more);
    for (size_t i = 0; i < n; i++)
        store_job_clear(&v[i]);
    free(v);

    /* State mask. */
    assert_int_equal(store_job_transition(f->s, ids[1], JOB_MASK(JOB_QUEUED), JOB_CANCELLED, NULL,
                                          NULL, NULL, &err),
                     STORE_OK);
    assert_int_equal(store_job_transition(f->s, ids[4], JOB_MASK(JOB_QUEUED), JOB_PAUSED, NULL,
                                          NULL, NULL, &err),
                     STORE_OK);
    assert_int_equal(
        store_job_list(f->s,
                       &(struct store_job_filter){.state_mask = JOB_MASK(JOB_CANCELLED) |
                                                                JOB_MASK(JOB_PAUSED)},
                       0, 10, &v, &n, &more, &err),
        STORE_OK);
    assert_int_equal(n, 2);
    assert_false(more);
    assert_int_equal(v[0].id, ids[4]);
    assert_int_equal(v[0].state, JOB_PAUSED);
    assert_int_equal(v[1].id, ids[1]);
    assert_int_equal(v[1].state, JOB_CANCELLED);
    for (size_t i = 0; i < n; i++)
        store_job_clear(&v[i]);
    free(v);
    assert_int_equal(store_job_list(f->s,
                                    &(struct store_job_filter){.state_mask = JOB_MASK(JOB_QUEUED)},
                                    ids[5], 2, &v, &n, &more, &err),
                     STORE_OK);
    assert_int_equal(n, 2);
    assert_true(more);
    assert_int_equal(v[0].id, ids[3]);
    assert_int_equal(v[1].id, ids[2]);
    for (size_t i = 0; i < n; i++)
        store_job_clear(&v[i]);
    free(v);
    assert_int_equal(
        store_job_list(f->s, &(struct store_job_filter){.state_mask = JOB_MASK(JOB_SUCCEEDED)}, 0,
                       5, &v, &n, &more, &err),
        STORE_OK);
    assert_int_equal(n, 0);
    assert_false(more);
    free(v);

    /* Kind, model and version (ids[] are specs without a kind: training jobs). */
    static const char *const specs[] = {
        "{\"kind\":\"train\",\"steps\":10}",
        "{\"kind\":\"evaluate\",\"model\":\"m\",\"version\":\"v1\"}",
        "{\"kind\":\"evaluate\",\"model\":\"m\",\"version\":\"v2\"}",
        "{\"kind\":\"evaluate\",\"model\":\"other\",\"version\":\"v1\"}",
    };
    int64_t sid[4];
    for (int i = 0; i < 4; i++) {
        struct store_job j2 = {0};
        assert_int_equal(store_job_insert(f->s, specs[i], NULL, NULL, NULL, 0, &j2, &err),
                         STORE_OK);
        sid[i] = j2.id;
        store_job_clear(&j2);
    }
    static const struct {
        struct store_job_filter f;
        size_t n;
        int first; /* index into sid of the newest match, -1: an ids[] job */
    } cases[] = {
        {{0, "train", NULL, 0}, 8, 0},
        {{0, "evaluate", NULL, 0}, 3, 3},
        {{0, "evaluate", "m", 0}, 2, 2},
        {{0, NULL, "m", 1}, 1, 1},
        {{0, "train", "m", 0}, 0, -1},
        {{0, NULL, "nope", 0}, 0, -1},
        {{JOB_MASK(JOB_PAUSED), "train", NULL, 0}, 1, -1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        assert_int_equal(store_job_list(f->s, &cases[c].f, 0, 20, &v, &n, &more, &err), STORE_OK);
        print_message("filter %zu: %zu jobs\n", c, n);
        assert_int_equal(n, cases[c].n);
        if (n && cases[c].first >= 0)
            assert_int_equal(v[0].id, sid[cases[c].first]);
        for (size_t i = 0; i < n; i++)
            store_job_clear(&v[i]);
        free(v);
    }
    for (int i = 0; i < 4; i++) { /* gone again for the counts below */
        assert_int_equal(store_job_transition(f->s, sid[i], JOB_MASK(JOB_QUEUED), JOB_CANCELLED,
                                              NULL, NULL, NULL, &err),
                         STORE_OK);
        assert_int_equal(store_job_delete(f->s, sid[i], &err), STORE_OK);
    }

    int64_t counts[JOB_N_STATES];
    assert_int_equal(store_job_counts(f->s, counts, &err), STORE_OK);
    assert_int_equal(counts[JOB_QUEUED], 5);
    assert_int_equal(counts[JOB_PAUSED], 1);
    assert_int_equal(counts[JOB_CANCELLED], 1);
    assert_int_equal(counts[JOB_RUNNING], 0);

    assert_string_equal(job_state_name(JOB_SUCCEEDED), "SUCCEEDED");
    assert_int_equal(job_state_parse("CANCELLED"), JOB_CANCELLED);
    assert_int_equal(job_state_parse("cancelled"), -1);
    assert_true(job_state_terminal(JOB_FAILED));
    assert_false(job_state_terminal(JOB_PAUSED));
}

static void test_job_transitions(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    struct store_job j = {0};
    const unsigned all = (1u << JOB_N_STATES) - 1;
    int64_t d = storefix_running_job(f->s);
    int64_t a = storefix_insert_job(f->s, "a");

    /* pause (QUEUED|RUNNING -> PAUSED), resume (PAUSED -> QUEUED). */
    assert_int_equal(store_job_transition(f->s, a, JOB_MASK(JOB_QUEUED) | JOB_MASK(JOB_RUNNING),
                                          JOB_PAUSED, NULL, NULL, &j, &err),
                     STORE_OK);
    assert_int_equal(j.state, JOB_PAUSED);
    assert_int_equal(j.finished_ms, 0);
    store_job_clear(&j);
    assert_int_equal(
        store_job_transition(f->s, a, JOB_MASK(JOB_PAUSED), JOB_QUEUED, NULL, NULL, &j, &err),
        STORE_OK);
    assert_int_equal(j.state, JOB_QUEUED);
    store_job_clear(&j);

    /* A CAS from a set that does not hold the state: CONFLICT with the current row. */
    assert_int_equal(
        store_job_transition(f->s, a, JOB_MASK(JOB_PAUSED), JOB_QUEUED, NULL, NULL, &j, &err),
        STORE_CONFLICT);
    assert_int_equal(j.id, a);
    assert_int_equal(j.state, JOB_QUEUED);
    assert_non_null(strstr(err.msg, "QUEUED"));
    store_job_clear(&j);
    assert_int_equal(storefix_state_of(f->s, a), JOB_QUEUED);

    /* Not found. */
    assert_int_equal(store_job_transition(f->s, 4242, all, JOB_CANCELLED, NULL, NULL, &j, &err),
                     STORE_NOT_FOUND);

    /* To each terminal state, with error fields when given. */
    int64_t b = storefix_insert_job(f->s, "b"), c = storefix_insert_job(f->s, "c");
    assert_int_equal(store_job_transition(f->s, a, all, JOB_CANCELLED, NULL, NULL, &j, &err),
                     STORE_OK);
    assert_int_equal(j.state, JOB_CANCELLED);
    assert_true(j.finished_ms >= j.created_ms && j.finished_ms > 0);
    assert_null(j.error_code);
    store_job_clear(&j);
    assert_int_equal(store_job_transition(f->s, b, all, JOB_FAILED, "dataset_missing",
                                          "dataset x is gone", &j, &err),
                     STORE_OK);
    assert_int_equal(j.state, JOB_FAILED);
    assert_string_equal(j.error_code, "dataset_missing");
    assert_string_equal(j.error_message, "dataset x is gone");
    store_job_clear(&j);
    assert_int_equal(store_job_transition(f->s, c, all, JOB_SUCCEEDED, NULL, NULL, &j, &err),
                     STORE_OK);
    store_job_clear(&j);

    /* Terminal states never change, whatever the from-set says. */
    int64_t term[3] = {a, b, c};
    enum job_state was[3] = {JOB_CANCELLED, JOB_FAILED, JOB_SUCCEEDED};
    for (int t = 0; t < 3; t++) {
        size_t ev = storefix_n_events(f->s, term[t]);
        for (int to = 0; to < JOB_N_STATES; to++) {
            assert_int_equal(
                store_job_transition(f->s, term[t], all, (enum job_state)to, NULL, NULL, &j, &err),
                STORE_CONFLICT);
            assert_int_equal(j.state, was[t]);
            store_job_clear(&j);
        }
        assert_int_equal(storefix_state_of(f->s, term[t]), was[t]);
        assert_int_equal(storefix_n_events(f->s, term[t]), ev);
    }
    assert_int_equal(store_job_get(f->s, b, &j, &err), STORE_OK);
    assert_string_equal(j.error_code, "dataset_missing");
    store_job_clear(&j);

    /* Cancelling a RUNNING job closes its attempt. */
    assert_int_equal(
        store_job_transition(f->s, d, JOB_MASK(JOB_RUNNING), JOB_CANCELLED, NULL, NULL, NULL, &err),
        STORE_OK);
    char sql[160];
    snprintf(sql, sizeof(sql),
             "SELECT outcome = 'CANCELLED' AND finished_ms > 0 FROM attempts WHERE job_id = %lld",
             (long long)d);
    assert_int_equal(storefix_raw_int(f->path, sql), 1);

    /* The state event says where it came from. */
    char type[16];
    json_t *e = storefix_last_event(f->s, b, type);
    assert_string_equal(type, "state");
    assert_string_equal(storefix_jstr(e, "state"), "FAILED");
    assert_string_equal(storefix_jstr(e, "previous"), "QUEUED");
    json_t *eo = json_object_get(e, "error");
    assert_string_equal(storefix_jstr(eo, "code"), "dataset_missing");
    assert_string_equal(storefix_jstr(eo, "message"), "dataset x is gone");
    json_decref(e);
    e = storefix_last_event(f->s, c, type);
    assert_true(json_is_null(json_object_get(e, "error")));
    json_decref(e);
}

static void test_job_claim_order(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    struct store_job j = {0};
    int64_t a = storefix_insert_job(f->s, "a"), b = storefix_insert_job(f->s, "b"),
            c = storefix_insert_job(f->s, "c");

    int64_t skip[1] = {a};
    assert_int_equal(store_job_claim(f->s, skip, 1, &j, &err), STORE_OK);
    assert_int_equal(j.id, b);
    assert_int_equal(j.state, JOB_RUNNING);
    assert_int_equal(j.attempts, 1);
    assert_true(j.started_ms > 0);
    store_job_clear(&j);
    assert_int_equal(store_job_claim(f->s, NULL, 0, &j, &err), STORE_OK);
    assert_int_equal(j.id, a);
    int64_t a_started = j.started_ms;
    store_job_clear(&j);
    int64_t skip2[2] = {c, 77};
    assert_int_equal(store_job_claim(f->s, skip2, 2, &j, &err), STORE_NOT_FOUND);
    assert_int_equal(storefix_state_of(f->s, c), JOB_QUEUED);
    assert_int_equal(store_job_claim(f->s, NULL, 0, &j, &err), STORE_OK);
    assert_int_equal(j.id, c);
    store_job_clear(&j);
    assert_int_equal(store_job_claim(f->s, NULL, 0, &j, &err), STORE_NOT_FOUND);

    /* A clean-shutdown requeue goes back ahead of newer jobs; the next claim
     * is attempt 2 and keeps the first started_ms. */
    int64_t d = storefix_insert_job(f->s, "d");
    assert_int_equal(store_job_finish(f->s, a, 1, JOB_QUEUED, NULL, NULL, &err), STORE_OK);
    assert_int_equal(store_job_claim(f->s, NULL, 0, &j, &err), STORE_OK);
    assert_int_equal(j.id, a);
    assert_int_equal(j.attempts, 2);
    assert_int_equal(j.restarts, 0);
    assert_int_equal(j.started_ms, a_started);
    store_job_clear(&j);
    assert_int_equal(store_job_claim(f->s, NULL, 0, &j, &err), STORE_OK);
    assert_int_equal(j.id, d);
    store_job_clear(&j);

    char sql[200];
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM attempts WHERE job_id = %lld", (long long)a);
    assert_int_equal(storefix_raw_int(f->path, sql), 2);
    snprintf(sql, sizeof(sql),
             "SELECT outcome = 'QUEUED' AND finished_ms > 0 FROM attempts WHERE job_id = %lld "
             "AND attempt = 1",
             (long long)a);
    assert_int_equal(storefix_raw_int(f->path, sql), 1);
    snprintf(sql, sizeof(sql),
             "SELECT outcome IS NULL AND started_ms > 0 FROM attempts WHERE job_id = %lld AND "
             "attempt = 2",
             (long long)a);
    assert_int_equal(storefix_raw_int(f->path, sql), 1);

    /* finish: SUCCEEDED and FAILED set finished_ms; other targets are refused. */
    assert_int_equal(store_job_finish(f->s, a, 2, JOB_CANCELLED, NULL, NULL, &err), STORE_ERROR);
    assert_int_equal(store_job_finish(f->s, a, 2, JOB_SUCCEEDED, NULL, NULL, &err), STORE_OK);
    assert_int_equal(
        store_job_finish(f->s, d, 1, JOB_FAILED, "non_finite_loss", "loss is NaN", &err), STORE_OK);
    assert_int_equal(store_job_get(f->s, d, &j, &err), STORE_OK);
    assert_int_equal(j.state, JOB_FAILED);
    assert_string_equal(j.error_code, "non_finite_loss");
    assert_true(j.finished_ms > 0);
    store_job_clear(&j);
    assert_int_equal(store_job_set_total(f->s, b, 1, 300, &err), STORE_OK);
    assert_int_equal(store_job_get(f->s, b, &j, &err), STORE_OK);
    assert_int_equal(j.total_steps, 300);
    store_job_clear(&j);
}

static void test_recover(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    struct store_job j = {0};
    int64_t id = storefix_running_job(f->s);
    int64_t other = storefix_insert_job(f->s, "waiting");
    int rq = -1, fl = -1;
    for (int round = 1; round <= 2; round++) {
        assert_int_equal(store_recover(f->s, 2, &rq, &fl, &err), STORE_OK);
        assert_int_equal(rq, 1);
        assert_int_equal(fl, 0);
        assert_int_equal(store_job_get(f->s, id, &j, &err), STORE_OK);
        assert_int_equal(j.state, JOB_QUEUED);
        assert_int_equal(j.restarts, round);
        assert_null(j.error_code);
        store_job_clear(&j);
        int64_t skip[1] = {other};
        assert_int_equal(store_job_claim(f->s, skip, 1, &j, &err), STORE_OK);
        assert_int_equal(j.id, id);
        assert_int_equal(j.attempts, round + 1);
        store_job_clear(&j);
    }
    /* The third death exceeds max_restarts 2. */
    assert_int_equal(store_recover(f->s, 2, &rq, &fl, &err), STORE_OK);
    assert_int_equal(rq, 0);
    assert_int_equal(fl, 1);
    assert_int_equal(store_job_get(f->s, id, &j, &err), STORE_OK);
    assert_int_equal(j.state, JOB_FAILED);
    assert_int_equal(j.restarts, 3);
    assert_string_equal(j.error_code, "restart_limit");
    assert_non_null(strstr(j.error_message, "3 times"));
    assert_true(j.finished_ms > 0);
    store_job_clear(&j);
    assert_int_equal(storefix_state_of(f->s, other), JOB_QUEUED);
    char sql[160];
    snprintf(sql, sizeof(sql),
             "SELECT COUNT(*) FROM attempts WHERE job_id = %lld AND "
             "outcome = 'restart'",
             (long long)id);
    assert_int_equal(storefix_raw_int(f->path, sql), 3);
    /* Nothing RUNNING: nothing to do. */
    assert_int_equal(store_recover(f->s, 2, &rq, &fl, &err), STORE_OK);
    assert_int_equal(rq, 0);
    assert_int_equal(fl, 0);
}

/* A data-parallel job's lost rank: restarts + 1 and QUEUED, FAILED past the
 * limit; its hosts; both guarded by the attempt like every worker write. */
static void test_restart_and_hosts(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    struct store_job j = {0};
    int64_t id = storefix_running_job(f->s);
    assert_int_equal(store_job_get(f->s, id, &j, &err), STORE_OK);
    assert_null(j.hosts);
    store_job_clear(&j);
    assert_int_equal(store_job_set_hosts(f->s, id, 1, "[\"a\",\"b\"]", &err), STORE_OK);
    assert_int_equal(store_job_set_hosts(f->s, id, 2, "[\"x\"]", &err), STORE_STALE);
    assert_int_equal(store_job_get(f->s, id, &j, &err), STORE_OK);
    assert_string_equal(j.hosts, "[\"a\",\"b\"]");
    store_job_clear(&j);
    bool failed = true;
    assert_int_equal(store_job_restart(f->s, id, 2, 1, "lost", &failed, &err), STORE_STALE);
    for (int attempt = 1; attempt <= 2; attempt++) {
        assert_int_equal(store_job_restart(f->s, id, attempt, 1, "a rank stopped", &failed, &err),
                         STORE_OK);
        assert_int_equal(store_job_get(f->s, id, &j, &err), STORE_OK);
        assert_int_equal(j.restarts, attempt);
        assert_int_equal(failed, attempt > 1);
        assert_int_equal(j.state, attempt > 1 ? JOB_FAILED : JOB_QUEUED);
        if (attempt > 1) {
            assert_string_equal(j.error_code, "restart_limit");
            assert_string_equal(j.error_message, "a rank stopped, 2 times (max_restarts 1)");
        }
        assert_string_equal(j.hosts, "[\"a\",\"b\"]"); /* the last attempt's, kept */
        store_job_clear(&j);
        if (attempt == 1) {
            assert_int_equal(store_job_claim(f->s, NULL, 0, &j, &err), STORE_OK);
            assert_int_equal(j.attempts, 2);
            store_job_clear(&j);
        }
    }
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM attempts WHERE job_id = %lld AND outcome = 'restart'",
             (long long)id);
    assert_int_equal(storefix_raw_int(f->path, sql), 2);
}

static void test_idempotency(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    struct store_job j = {0};
    char ha[65], hb[65];
    sha256_hex("{\"steps\":5}", 11, ha);
    sha256_hex("{\"steps\":6}", 11, hb);
    assert_int_equal(store_job_insert(f->s, "{\"steps\":5}", "first", "key-1", ha, 10, &j, &err),
                     STORE_OK);
    int64_t id = j.id;
    store_job_clear(&j);
    assert_int_equal(store_job_insert(f->s, "{\"steps\":5}", "first", "key-1", ha, 10, &j, &err),
                     STORE_REPLAY);
    assert_int_equal(j.id, id);
    assert_string_equal(j.name, "first");
    store_job_clear(&j);
    assert_int_equal(store_job_insert(f->s, "{\"steps\":6}", "first", "key-1", hb, 10, &j, &err),
                     STORE_CONFLICT);
    assert_non_null(strstr(err.msg, "key-1"));
    int64_t counts[JOB_N_STATES];
    assert_int_equal(store_job_counts(f->s, counts, &err), STORE_OK);
    assert_int_equal(counts[JOB_QUEUED], 1);
    assert_int_equal(storefix_n_events(f->s, id), 1);
    /* Another key makes another job. */
    assert_int_equal(store_job_insert(f->s, "{\"steps\":5}", NULL, "key-2", ha, 10, &j, &err),
                     STORE_OK);
    assert_true(j.id > id);
    assert_null(j.name);
    store_job_clear(&j);
    assert_int_equal(storefix_raw_int(f->path, "SELECT COUNT(*) FROM idempotency"), 2);
}

/* Ages every idempotency key matching `like` by ms milliseconds. */
static void age_keys(const char *path, const char *like, int64_t ms)
{
    char sql[160];
    snprintf(sql, sizeof sql, "UPDATE idempotency SET created_ms = created_ms - %lld WHERE key LIKE '%s'",
             (long long)ms, like);
    storefix_raw_exec(path, sql);
}

static void test_idempotency_expiry(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    struct store_job j = {0};
    char ha[65], hb[65];
    sha256_hex("a", 1, ha);
    sha256_hex("b", 1, hb);
    assert_int_equal(store_job_insert(f->s, "{}", NULL, "k", ha, 0, &j, &err), STORE_OK);
    int64_t first = j.id;
    store_job_clear(&j);
    /* within the default 24 h: 23 h 59 min later the key still replays the
     * original job, and refuses another body */
    age_keys(f->path, "k", STORE_IDEMPOTENCY_TTL_MS - 60000);
    assert_int_equal(store_job_insert(f->s, "{}", NULL, "k", ha, 0, &j, &err), STORE_REPLAY);
    assert_int_equal(j.id, first);
    store_job_clear(&j);
    assert_int_equal(store_job_insert(f->s, "{}", NULL, "k", hb, 0, &j, &err), STORE_CONFLICT);
    /* a minute later it is 24 h old: expired, even before any purge. The same
     * request makes a new job, and the key now names that one */
    age_keys(f->path, "k", 60000);
    assert_int_equal(store_job_insert(f->s, "{}", NULL, "k", ha, 0, &j, &err), STORE_OK);
    int64_t second = j.id;
    assert_true(second > first);
    store_job_clear(&j);
    assert_int_equal(store_job_insert(f->s, "{}", NULL, "k", ha, 0, &j, &err), STORE_REPLAY);
    assert_int_equal(j.id, second);
    store_job_clear(&j);
    assert_int_equal(storefix_raw_int(f->path, "SELECT COUNT(*) FROM idempotency"), 1);
    /* after expiry another body is no conflict either */
    age_keys(f->path, "k", STORE_IDEMPOTENCY_TTL_MS);
    assert_int_equal(store_job_insert(f->s, "{}", NULL, "k", hb, 0, &j, &err), STORE_OK);
    assert_true(j.id > second);
    store_job_clear(&j);
    /* a shorter TTL applies to the keys already stored */
    store_idempotency_ttl_set(f->s, 5000);
    age_keys(f->path, "k", 4000);
    assert_int_equal(store_job_insert(f->s, "{}", NULL, "k", hb, 0, &j, &err), STORE_REPLAY);
    store_job_clear(&j);
    age_keys(f->path, "k", 1000);
    assert_int_equal(store_job_insert(f->s, "{}", NULL, "k", hb, 0, &j, &err), STORE_OK);
    store_job_clear(&j);
}

static void test_idempotency_purge_bounds_the_table(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    struct store_job j = {0};
    char h[65];
    sha256_hex("x", 1, h);
    int64_t n = -1, removed = -1;
    assert_int_equal(store_idempotency_purge(f->s, &removed, &err), STORE_OK);
    assert_int_equal(removed, 0);
    /* ten rounds of 30 keyed submissions, each round a day after the one
     * before: the purge keeps the last round's keys only, where without it the
     * table would hold all 300 */
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < 30; i++) {
            char key[32];
            snprintf(key, sizeof key, "r%d-%d", round, i);
            assert_int_equal(store_job_insert(f->s, "{}", NULL, key, h, 0, &j, &err), STORE_OK);
            store_job_clear(&j);
        }
        assert_int_equal(store_idempotency_count(f->s, &n, &err), STORE_OK);
        assert_int_equal(n, round == 0 ? 30 : 60);
        assert_int_equal(store_idempotency_purge(f->s, &removed, &err), STORE_OK);
        assert_int_equal(removed, round == 0 ? 0 : 30);
        assert_int_equal(store_idempotency_count(f->s, &n, &err), STORE_OK);
        assert_int_equal(n, 30);
        age_keys(f->path, "%", STORE_IDEMPOTENCY_TTL_MS);
    }
    assert_int_equal(storefix_raw_int(f->path, "SELECT COUNT(*) FROM jobs"), 300);
    /* the purge deletes the keys only, never their jobs; a purged key makes a new job */
    assert_int_equal(store_idempotency_purge(f->s, &removed, &err), STORE_OK);
    assert_int_equal(removed, 30);
    assert_int_equal(store_idempotency_count(f->s, &n, &err), STORE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(storefix_raw_int(f->path, "SELECT COUNT(*) FROM jobs"), 300);
    assert_int_equal(store_job_insert(f->s, "{}", NULL, "r9-0", h, 0, &j, &err), STORE_OK);
    assert_int_equal(j.id, 301);
    store_job_clear(&j);
}

static void test_queue_full(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    struct store_job j = {0};
    char h[65];
    sha256_hex("x", 1, h);
    assert_int_equal(store_job_insert(f->s, "{}", NULL, "k1", h, 2, &j, &err), STORE_OK);
    int64_t first = j.id;
    store_job_clear(&j);
    assert_int_equal(store_job_insert(f->s, "{}", NULL, NULL, NULL, 2, &j, &err), STORE_OK);
    store_job_clear(&j);
    assert_int_equal(store_job_insert(f->s, "{}", NULL, NULL, NULL, 2, &j, &err), STORE_QUEUE_FULL);
    assert_non_null(strstr(err.msg, "2"));
    /* A retried request is still answered while the queue is full; a new key is not. */
    assert_int_equal(store_job_insert(f->s, "{}", NULL, "k1", h, 2, &j, &err), STORE_REPLAY);
    assert_int_equal(j.id, first);
    store_job_clear(&j);
    assert_int_equal(store_job_insert(f->s, "{}", NULL, "k2", h, 2, &j, &err), STORE_QUEUE_FULL);
    assert_int_equal(storefix_raw_int(f->path, "SELECT COUNT(*) FROM idempotency"), 1);
    int64_t counts[JOB_N_STATES];
    assert_int_equal(store_job_counts(f->s, counts, &err), STORE_OK);
    assert_int_equal(counts[JOB_QUEUED], 2);
    /* Claiming one frees a slot. */
    assert_int_equal(store_job_claim(f->s, NULL, 0, &j, &err), STORE_OK);
    store_job_clear(&j);
    assert_int_equal(store_job_insert(f->s, "{}", NULL, NULL, NULL, 2, &j, &err), STORE_OK);
    store_job_clear(&j);
}

static void test_stale_writes(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    struct store_job j = {0};
    int64_t id = storefix_running_job(f->s);
    struct store_metric m[1] = {{"loss_total", 1, 0.5, 1}};
    char h[65];
    sha256_hex("ck", 2, h);
    struct store_retention keep = {3, 0, "", false};

    /* Back to QUEUED and claimed again: attempt 1 is stale. */
    assert_int_equal(store_job_finish(f->s, id, 1, JOB_QUEUED, NULL, NULL, &err), STORE_OK);
    assert_int_equal(store_job_claim(f->s, NULL, 0, &j, &err), STORE_OK);
    assert_int_equal(j.attempts, 2);
    store_job_clear(&j);
    size_t ev = storefix_n_events(f->s, id);
    assert_int_equal(store_metrics_append(f->s, id, 1, m, 1, 1, 5, &err), STORE_STALE);
    assert_int_equal(store_job_set_total(f->s, id, 1, 99, &err), STORE_STALE);
    assert_int_equal(store_metrics_rewind(f->s, id, 1, 0, &err), STORE_STALE);
    assert_int_equal(store_checkpoint_put(f->s, id, 1, 1, "ck", 2, h, "{}", &keep, &err),
                     STORE_STALE);
    assert_int_equal(store_job_finish(f->s, id, 1, JOB_SUCCEEDED, NULL, NULL, &err), STORE_STALE);
    assert_int_equal(store_job_get(f->s, id, &j, &err), STORE_OK);
    assert_int_equal(j.state, JOB_RUNNING);
    assert_int_equal(j.total_steps, 0);
    assert_int_equal(j.step, 0);
    assert_int_equal(j.checkpoint_step, -1);
    store_job_clear(&j);
    assert_int_equal(storefix_n_events(f->s, id), ev);
    assert_int_equal(storefix_raw_int(f->path, "SELECT COUNT(*) FROM metrics"), 0);

    /* PAUSED: metrics and the pause checkpoint still land; the rest is stale. */
    assert_int_equal(
        store_job_transition(f->s, id, JOB_MASK(JOB_RUNNING), JOB_PAUSED, NULL, NULL, NULL, &err),
        STORE_OK);
    assert_int_equal(store_metrics_append(f->s, id, 2, m, 1, 1, 5, &err), STORE_OK);
    assert_int_equal(store_checkpoint_put(f->s, id, 2, 1, "ck", 2, h, "{}", &keep, &err), STORE_OK);
    assert_int_equal(store_job_set_total(f->s, id, 2, 99, &err), STORE_STALE);
    assert_int_equal(store_metrics_rewind(f->s, id, 2, 0, &err), STORE_STALE);
    assert_int_equal(store_job_finish(f->s, id, 2, JOB_SUCCEEDED, NULL, NULL, &err), STORE_STALE);
    assert_int_equal(storefix_state_of(f->s, id), JOB_PAUSED);

    /* CANCELLED: every write is stale. */
    assert_int_equal(
        store_job_transition(f->s, id, JOB_MASK(JOB_PAUSED), JOB_CANCELLED, NULL, NULL, NULL, &err),
        STORE_OK);
    m[0].step = 2;
    assert_int_equal(store_metrics_append(f->s, id, 2, m, 1, 2, 5, &err), STORE_STALE);
    assert_int_equal(store_checkpoint_put(f->s, id, 2, 2, "ck", 2, h, "{}", &keep, &err),
                     STORE_STALE);
    assert_int_equal(storefix_raw_int(f->path, "SELECT COUNT(*) FROM metrics"), 1);
    assert_int_equal(storefix_raw_int(f->path, "SELECT COUNT(*) FROM checkpoints"), 1);
    /* A deleted job has no current attempt either. */
    assert_int_equal(store_job_delete(f->s, id, &err), STORE_OK);
    assert_int_equal(store_metrics_append(f->s, id, 2, m, 1, 2, 5, &err), STORE_STALE);
}

static void test_delete_cascades_and_vacuums(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    int64_t keep = storefix_insert_job(f->s, "keep");
    int64_t skip[1] = {keep};
    struct store_job j = {0};
    int64_t id = storefix_insert_job(f->s, "big");
    assert_int_equal(store_job_claim(f->s, skip, 1, &j, &err), STORE_OK);
    assert_int_equal(j.id, id);
    store_job_clear(&j);
    struct store_retention all = {100, 0, "", false};
    for (int i = 1; i <= 4; i++)
        storefix_put_ckpt(f->s, id, i * 10, 256 * 1024, "{}", &all);
    struct store_metric m[1] = {{"loss_total", 1, 1, 1}};
    assert_int_equal(store_metrics_append(f->s, id, 1, m, 1, 1, 1, &err), STORE_OK);
    /* Not terminal: refused. */
    assert_int_equal(store_job_delete(f->s, id, &err), STORE_CONFLICT);
    assert_non_null(strstr(err.msg, "RUNNING"));
    assert_int_equal(store_job_finish(f->s, id, 1, JOB_SUCCEEDED, NULL, NULL, &err), STORE_OK);

    int64_t pages = storefix_raw_int(f->path, "PRAGMA page_count");
    int64_t psize = storefix_raw_int(f->path, "PRAGMA page_size");
    assert_true(pages * psize > 4 * 256 * 1024);
    assert_int_equal(store_job_delete(f->s, id, &err), STORE_OK);
    int64_t after = storefix_raw_int(f->path, "PRAGMA page_count");
    assert_int_equal(storefix_raw_int(f->path, "PRAGMA freelist_count"), 0);
    assert_true((pages - after) * psize >= 4 * 256 * 1024);
    assert_int_equal(store_job_get(f->s, id, &j, &err), STORE_NOT_FOUND);
    const char *tables[] = {"metrics", "checkpoints", "events", "attempts"};
    for (int t = 0; t < 4; t++) {
        char sql[128];
        snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s WHERE job_id = %lld", tables[t],
                 (long long)id);
        assert_int_equal(storefix_raw_int(f->path, sql), 0);
    }
    assert_int_equal(store_job_delete(f->s, id, &err), STORE_NOT_FOUND);
    assert_int_equal(storefix_state_of(f->s, keep), JOB_QUEUED);
    assert_int_equal(storefix_n_events(f->s, keep), 1);
    /* Ids of deleted jobs are not reused. */
    assert_true(storefix_insert_job(f->s, "next") > id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_job_insert_get_list, storefix_setup_open,
                                        storefix_teardown),
        cmocka_unit_test_setup_teardown(test_job_transitions, storefix_setup_open,
                                        storefix_teardown),
        cmocka_unit_test_setup_teardown(test_job_claim_order, storefix_setup_open,
                                        storefix_teardown),
        cmocka_unit_test_setup_teardown(test_recover, storefix_setup_open, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_restart_and_hosts, storefix_setup_open,
                                        storefix_teardown),
        cmocka_unit_test_setup_teardown(test_idempotency, storefix_setup_open, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_idempotency_expiry, storefix_setup_open,
                                        storefix_teardown),
        cmocka_unit_test_setup_teardown(test_idempotency_purge_bounds_the_table,
                                        storefix_setup_open, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_queue_full, storefix_setup_open, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_stale_writes, storefix_setup_open, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_delete_cascades_and_vacuums, storefix_setup_open,
                                        storefix_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_events.c - the event log (store/events.h): events after a cursor, and store_event_wait
 * woken by a commit in another thread or timing out.
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

static void test_events(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    int64_t other = storefix_insert_job(f->s, "other");
    int64_t skip[1] = {other};
    int64_t id = storefix_insert_job(f->s, "ev");
    struct store_job j = {0};
    assert_int_equal(store_job_claim(f->s, skip, 1, &j, &err), STORE_OK);
    store_job_clear(&j);
    struct store_metric m[2] = {{"loss_total", 1, 0.5, 1}, {"loss_total", 2, 0.4, 2}};
    assert_int_equal(store_metrics_append(f->s, id, 1, m, 2, 2, 1, &err), STORE_OK);
    assert_int_equal(
        store_job_transition(f->s, id, JOB_MASK(JOB_RUNNING), JOB_PAUSED, NULL, NULL, NULL, &err),
        STORE_OK);
    assert_int_equal(
        store_job_transition(f->s, id, JOB_MASK(JOB_PAUSED), JOB_QUEUED, NULL, NULL, NULL, &err),
        STORE_OK);
    /* Refused changes write no event. */
    assert_int_equal(
        store_job_transition(f->s, id, JOB_MASK(JOB_PAUSED), JOB_QUEUED, NULL, NULL, NULL, &err),
        STORE_CONFLICT);
    assert_int_equal(store_job_claim(f->s, skip, 1, &j, &err), STORE_OK);
    store_job_clear(&j);
    assert_int_equal(store_job_finish(f->s, id, 2, JOB_SUCCEEDED, NULL, NULL, &err), STORE_OK);

    struct store_event *ev = NULL;
    size_t n = 0;
    assert_int_equal(store_events_after(f->s, id, 0, 100, &ev, &n, &err), STORE_OK);
    const char *want[][3] = {{"state", "QUEUED", NULL},        {"state", "RUNNING", "QUEUED"},
                             {"metrics", NULL, NULL},          {"state", "PAUSED", "RUNNING"},
                             {"state", "QUEUED", "PAUSED"},    {"state", "RUNNING", "QUEUED"},
                             {"state", "SUCCEEDED", "RUNNING"}};
    assert_int_equal(n, 7);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ev[i].job_id, id);
        assert_string_equal(ev[i].type, want[i][0]);
        if (i > 0)
            assert_true(ev[i].id > ev[i - 1].id);
        assert_true(ev[i].created_ms > 0);
        json_error_t je;
        json_t *d = json_loads(ev[i].data, 0, &je);
        assert_non_null(d);
        if (want[i][1]) {
            assert_string_equal(storefix_jstr(d, "state"), want[i][1]);
            if (want[i][2])
                assert_string_equal(storefix_jstr(d, "previous"), want[i][2]);
            else
                assert_true(json_is_null(json_object_get(d, "previous")));
        }
        json_decref(d);
    }
    /* after_id and limit. */
    int64_t third = ev[2].id, sixth = ev[5].id;
    for (size_t i = 0; i < n; i++)
        store_event_clear(&ev[i]);
    free(ev);
    assert_int_equal(store_events_after(f->s, id, third, 3, &ev, &n, &err), STORE_OK);
    assert_int_equal(n, 3);
    assert_string_equal(ev[0].type, "state");
    assert_int_equal(ev[2].id, sixth);
    for (size_t i = 0; i < n; i++)
        store_event_clear(&ev[i]);
    free(ev);
    /* Other jobs' events are not mixed in. */
    assert_int_equal(store_events_after(f->s, other, 0, 100, &ev, &n, &err), STORE_OK);
    assert_int_equal(n, 1);
    store_event_clear(&ev[0]);
    free(ev);

    /* Event ids are never reused, even after the newest ones are deleted. */
    int64_t max_before = storefix_raw_int(f->path, "SELECT MAX(id) FROM events");
    assert_int_equal(store_job_delete(f->s, id, &err), STORE_OK);
    assert_int_equal(store_job_transition(f->s, other, JOB_MASK(JOB_QUEUED), JOB_CANCELLED, NULL,
                                          NULL, NULL, &err),
                     STORE_OK);
    assert_int_equal(store_events_after(f->s, other, 0, 100, &ev, &n, &err), STORE_OK);
    assert_int_equal(n, 2);
    assert_true(ev[1].id > max_before);
    for (size_t i = 0; i < n; i++)
        store_event_clear(&ev[i]);
    free(ev);
}

static int64_t ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)(t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

struct later {
    struct dimd_store *s;
    int64_t id;
    int rc;
};

static void *transition_later(void *arg)
{
    struct later *l = arg;
    struct timespec d = {0, 100 * 1000000L};
    nanosleep(&d, NULL);
    struct dim_err err = {0};
    l->rc = store_job_transition(l->s, l->id, JOB_MASK(JOB_QUEUED), JOB_CANCELLED, NULL, NULL, NULL,
                                 &err);
    return NULL;
}

static void test_event_wait(void **state)
{
    struct storefix *f = *state;
    int64_t id = storefix_insert_job(f->s, NULL);
    uint64_t seq = store_event_seq(f->s);
    assert_true(seq > 0);
    /* seen 0 is "nothing seen": returns at once. */
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(store_event_wait(f->s, 0, 5000), seq);
    assert_true(ms_since(&t0) < 1000);

    /* Times out when nothing is committed. */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(store_event_wait(f->s, seq, 150), seq);
    int64_t waited = ms_since(&t0);
    assert_true(waited >= 140 && waited < 3000);

    /* Wakes on a commit from another thread. */
    struct later l = {f->s, id, -99};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, transition_later, &l), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t v = store_event_wait(f->s, seq, 10000);
    waited = ms_since(&t0);
    pthread_join(th, NULL);
    assert_int_equal(l.rc, STORE_OK);
    assert_true(v > seq);
    assert_true(waited >= 50 && waited < 5000);
    assert_int_equal(store_event_seq(f->s), v);

    /* A refused change does not wake anyone. */
    struct dim_err err = {0};
    assert_int_equal(
        store_job_transition(f->s, id, JOB_MASK(JOB_QUEUED), JOB_CANCELLED, NULL, NULL, NULL, &err),
        STORE_CONFLICT);
    assert_int_equal(store_event_wait(f->s, v, 50), v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_events, storefix_setup_open, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_event_wait, storefix_setup_open, storefix_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

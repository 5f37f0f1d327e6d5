/* test_metrics.c - metric points (store/metrics.h): append with its "metrics" event, summaries,
 * history pages and downsampling, duplicates refused and rewinds.
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

static void test_metrics_append_summary_history(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    int64_t id = storefix_running_job(f->s);
    struct store_metric m[] = {{"loss_total", 1, 0.9, 1000}, {"probe_y", 1, NAN, 1000},
                               {"loss_total", 2, 0.7, 1001}, {"probe_y", 2, NAN, 1001},
                               {"loss_total", 3, 0.8, 1002}, {"loss_local", 3, INFINITY, 1002},
                               {"loss_local", 4, -2.5, 1003}};
    assert_int_equal(store_metrics_append(f->s, id, 1, m, 7, 4, 123.5, &err), STORE_OK);
    struct store_job j = {0};
    assert_int_equal(store_job_get(f->s, id, &j, &err), STORE_OK);
    assert_int_equal(j.step, 4);
    assert_true(j.images_per_second == 123.5);
    store_job_clear(&j);

    struct store_metric_summary *sm = NULL;
    size_t n = 0;
    assert_int_equal(store_metrics_summary(f->s, id, &sm, &n, &err), STORE_OK);
    assert_int_equal(n, 3);
    assert_string_equal(sm[0].key, "loss_local");
    assert_string_equal(sm[1].key, "loss_total");
    assert_string_equal(sm[2].key, "probe_y");
    assert_int_equal(sm[0].count, 2);
    assert_true(sm[0].max == INFINITY && sm[0].min == -2.5 && sm[0].last == -2.5);
    assert_int_equal(sm[1].count, 3);
    assert_int_equal(sm[1].first_step, 1);
    assert_int_equal(sm[1].last_step, 3);
    assert_true(sm[1].last == 0.8 && sm[1].min == 0.7 && sm[1].max == 0.9);
    assert_int_equal(sm[2].count, 2);
    assert_true(isnan(sm[2].last) && isnan(sm[2].min) && isnan(sm[2].max));
    free(sm);
    assert_int_equal(store_metrics_summary(f->s, 555, &sm, &n, &err), STORE_NOT_FOUND);

    /* NaN comes back as NaN, infinity as infinity. */
    struct store_point *p = NULL;
    bool more = true;
    assert_int_equal(
        store_metrics_history(f->s, id, "probe_y", 0, INT64_MAX, 100, 0, &p, &n, &more, &err),
        STORE_OK);
    assert_int_equal(n, 2);
    assert_false(more);
    assert_true(isnan(p[0].value) && isnan(p[1].value));
    assert_int_equal(p[1].wall_ms, 1001);
    free(p);
    assert_int_equal(
        store_metrics_history(f->s, id, "loss_local", 0, INT64_MAX, 100, 0, &p, &n, &more, &err),
        STORE_OK);
    assert_int_equal(n, 2);
    assert_true(isinf(p[0].value) && p[0].value > 0);
    assert_int_equal(p[0].step, 3);
    free(p);
    assert_int_equal(
        store_metrics_history(f->s, id, "nope", 0, INT64_MAX, 100, 0, &p, &n, &more, &err),
        STORE_OK);
    assert_int_equal(n, 0);
    free(p);

    /* The metrics event carries the points, non-finite values as strings. */
    char type[16];
    json_t *e = storefix_last_event(f->s, id, type);
    assert_string_equal(type, "metrics");
    json_t *pts = json_object_get(e, "points");
    assert_int_equal(json_array_size(pts), 7);
    assert_string_equal(storefix_jstr(json_array_get(pts, 0), "key"), "loss_total");
    assert_true(json_real_value(json_object_get(json_array_get(pts, 0), "value")) == 0.9);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(pts, 0), "wall_ms")), 1000);
    assert_string_equal(storefix_jstr(json_array_get(pts, 1), "value"), "NaN");
    assert_string_equal(storefix_jstr(json_array_get(pts, 5), "value"), "Infinity");
    json_decref(e);

    /* Cursor paging: after_step, limit, more. */
    struct store_metric many[50];
    for (int i = 0; i < 50; i++)
        many[i] = (struct store_metric){"loss_total", 4 + i, 1.0 / (i + 1), 2000 + i};
    assert_int_equal(store_metrics_append(f->s, id, 1, many, 50, 53, 10, &err), STORE_OK);
    int64_t after = 0;
    size_t got = 0;
    int pages = 0;
    do {
        assert_int_equal(store_metrics_history(f->s, id, "loss_total", after, INT64_MAX, 20, 0, &p,
                                               &n, &more, &err),
                         STORE_OK);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(p[i].step, (int64_t)(got + i + 1));
        got += n;
        pages++;
        assert_true(n > 0);
        after = p[n - 1].step;
        free(p);
    } while (more);
    assert_int_equal(got, 53);
    assert_int_equal(pages, 3);
    assert_int_equal(after, 53);
    /* limit equal to what remains: more is false. */
    assert_int_equal(
        store_metrics_history(f->s, id, "loss_total", 33, INT64_MAX, 20, 0, &p, &n, &more, &err),
        STORE_OK);
    assert_int_equal(n, 20);
    assert_false(more);
    free(p);
}

static void test_metrics_downsample(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    int64_t id = storefix_running_job(f->s);
    enum { N = 1000 };
    static struct store_metric m[N];
    static double val[N + 1];
    for (int i = 0; i < N; i++) {
        int64_t step = i + 1;
        val[step] = sin(step * 0.37) * (double)step + (step == 500 ? 5000.0 : 0.0);
        m[i] = (struct store_metric){"loss_total", step, val[step], step};
    }
    assert_int_equal(store_metrics_append(f->s, id, 1, m, N, N, 1, &err), STORE_OK);

    const int64_t cases[][3] = {/* after_step, limit, max_points */
                                {0, 100000, 10},
                                {0, 100000, 2},
                                {0, 600, 21},
                                {250, 100000, 64},
                                {0, 100000, 999}};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        int64_t after = cases[c][0], limit = cases[c][1], maxp = cases[c][2];
        struct store_point *p = NULL;
        size_t n = 0;
        bool more = false;
        assert_int_equal(store_metrics_history(f->s, id, "loss_total", after, INT64_MAX, limit,
                                               maxp, &p, &n, &more, &err),
                         STORE_OK);
        int64_t last = after + limit < N ? after + limit : N;
        int64_t k = last - after;
        assert_int_equal(more, last < N);
        assert_true((int64_t)n <= maxp + 2);
        assert_true((int64_t)n < k);
        assert_int_equal(p[0].step, after + 1);
        assert_int_equal(p[n - 1].step, last);
        for (size_t i = 0; i < n; i++) {
            if (i > 0)
                assert_true(p[i].step > p[i - 1].step);
            assert_true(p[i].value == val[p[i].step]);
            assert_int_equal(p[i].wall_ms, p[i].step);
        }
        /* Each of the max_points/2 equal step buckets keeps its min and max. */
        int64_t B = maxp / 2, width = last - after;
        for (int64_t b = 0; b < B; b++) {
            double lo = INFINITY, hi = -INFINITY;
            int64_t lo_s = -1, hi_s = -1;
            for (int64_t s = after + 1; s <= last; s++) {
                if ((s - after - 1) * B / width != b)
                    continue;
                if (val[s] < lo) {
                    lo = val[s];
                    lo_s = s;
                }
                if (val[s] > hi) {
                    hi = val[s];
                    hi_s = s;
                }
            }
            assert_true(lo_s > 0);
            bool has_lo = false, has_hi = false;
            for (size_t i = 0; i < n; i++) {
                has_lo |= p[i].step == lo_s;
                has_hi |= p[i].step == hi_s;
            }
            assert_true(has_lo && has_hi);
        }
        if (after < 500 && last >= 500) {
            bool spike = false;
            for (size_t i = 0; i < n; i++)
                spike |= p[i].step == 500;
            assert_true(spike);
        }
        free(p);
    }
    /* Fewer points than max_points: returned as they are. */
    struct store_point *p = NULL;
    size_t n = 0;
    bool more = true;
    assert_int_equal(
        store_metrics_history(f->s, id, "loss_total", 990, INT64_MAX, 100, 10, &p, &n, &more, &err),
        STORE_OK);
    assert_int_equal(n, 10);
    assert_false(more);
    free(p);
}

static void test_metrics_duplicate_and_rewind(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    int64_t id = storefix_running_job(f->s);
    struct store_metric m[10];
    for (int i = 0; i < 10; i++)
        m[i] = (struct store_metric){i % 2 ? "loss_local" : "loss_total", i / 2 + 1, i, 100 + i};
    assert_int_equal(store_metrics_append(f->s, id, 1, m, 10, 5, 50, &err), STORE_OK);
    size_t ev = storefix_n_events(f->s, id);

    /* A batch with one duplicate (key, step) writes nothing at all. */
    struct store_metric dup[3] = {
        {"loss_total", 6, 1, 200}, {"loss_local", 6, 1, 200}, {"loss_total", 5, 9, 200}};
    assert_int_equal(store_metrics_append(f->s, id, 1, dup, 3, 6, 60, &err), STORE_CONFLICT);
    assert_non_null(strstr(err.msg, "loss_total"));
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM metrics WHERE job_id = %lld", (long long)id);
    assert_int_equal(storefix_raw_int(f->path, sql), 10);
    assert_int_equal(storefix_n_events(f->s, id), ev);
    struct store_job j = {0};
    assert_int_equal(store_job_get(f->s, id, &j, &err), STORE_OK);
    assert_int_equal(j.step, 5);
    assert_true(j.images_per_second == 50);
    store_job_clear(&j);
    /* A bad key is refused before anything is written. */
    struct store_metric bad[1] = {{"Loss-Total", 7, 1, 1}};
    assert_int_equal(store_metrics_append(f->s, id, 1, bad, 1, 7, 1, &err), STORE_ERROR);
    assert_int_equal(storefix_raw_int(f->path, sql), 10);

    /* Rewind to step 3 deletes steps 4 and 5 of both keys. */
    assert_int_equal(store_metrics_rewind(f->s, id, 1, 3, &err), STORE_OK);
    assert_int_equal(storefix_raw_int(f->path, sql), 6);
    snprintf(sql, sizeof(sql), "SELECT MAX(step) FROM metrics WHERE job_id = %lld", (long long)id);
    assert_int_equal(storefix_raw_int(f->path, sql), 3);
    assert_int_equal(storefix_n_events(f->s, id), ev + 1);
    char type[16];
    json_t *e = storefix_last_event(f->s, id, type);
    assert_string_equal(type, "rewind");
    assert_int_equal(json_integer_value(json_object_get(e, "step")), 3);
    json_decref(e);
    assert_int_equal(store_job_get(f->s, id, &j, &err), STORE_OK);
    assert_int_equal(j.step, 3);
    store_job_clear(&j);
    /* Nothing after the step: no event. */
    assert_int_equal(store_metrics_rewind(f->s, id, 1, 3, &err), STORE_OK);
    assert_int_equal(storefix_n_events(f->s, id), ev + 1);
    /* The rewound steps can be written again. */
    assert_int_equal(store_metrics_append(f->s, id, 1, dup + 2, 1, 5, 60, &err), STORE_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_metrics_append_summary_history, storefix_setup_open,
                                        storefix_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_downsample, storefix_setup_open,
                                        storefix_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_duplicate_and_rewind, storefix_setup_open,
                                        storefix_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_runner.c - the job runner against a real store file and a real (tiny)
 * image-folder dataset: a job runs to SUCCEEDED with its metrics and
 * checkpoints; a runner stopped mid-job requeues it with a checkpoint and a new
 * runner finishes it bit for bit like an uninterrupted run; cancel, pause and
 * resume; a non-finite loss; bad datasets and specs fail their job while the
 * runner keeps serving.
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
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>

#include "data/image.h"
#include "dim/checkpoint.h"
#include "dim/model.h"
#include "dim/trainer.h"
#include "fixtures.h"
#include "service/datasets.h"
#include "service/runner.h"
#include "util/sha256.h"
#include "store/checkpoints.h"
#include "store/events.h"
#include "store/jobs.h"
#include "store/metrics.h"
#include "store/store.h"

/* the shared dataset: data/shapes (3 classes x 50 32x32 grey images) and
 * data/broken (one class whose only image is not a PNG) */
static char *g_dir;
static struct datasets g_ds;
static int g_db_seq;

#define SPEC_FMT                                                                                   \
    "{\"dataset\":\"data/shapes\",\"batch\":16,\"mi_dim\":32,\"y_dim\":16,\"steps\":%d,"           \
    "\"checkpoint_every\":%d,\"probe\":\"none\",\"keep_last\":%d,\"keep_best\":0}"
/* SPEC_FMT with a warm-up and a cosine decay over the run (lr_horizon 0: its steps) */
#define SPEC_SCHED_FMT                                                                             \
    "{\"dataset\":\"data/shapes\",\"batch\":16,\"mi_dim\":32,\"y_dim\":16,\"steps\":%d,"           \
    "\"checkpoint_every\":%d,\"probe\":\"none\",\"keep_last\":%d,\"keep_best\":0,"                \
    "\"lr\":0.001,\"lr_schedule\":\"cosine\",\"lr_warmup\":8,\"lr_final\":0.01}"

static void mkdir_in(const char *parent, const char *name, char *out, size_t cap)
{
    fixtures_join(out, cap, parent, name);
    if (mkdir(out, 0755) != 0)
        fail_msg("mkdir %s", out);
}

static int group_setup(void **state)
{
    (void)state;
    g_dir = fixtures_mkdtemp();
    if (!g_dir)
        return -1;
    char data[512], shapes[512], cls[512], path[600], broken[512];
    mkdir_in(g_dir, "data", data, sizeof data);
    mkdir_in(data, "shapes", shapes, sizeof shapes);
    uint8_t px[32 * 32];
    for (int c = 0; c < 3; c++) {
        char name[16];
        snprintf(name, sizeof name, "class%d", c);
        mkdir_in(shapes, name, cls, sizeof cls);
        for (int i = 0; i < 50; i++) {
            uint32_t s = (uint32_t)(c * 1000 + i) * 2654435761u + 1;
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++) {
                    s = s * 1664525u + 1013904223u;
                    int v = c == 0 ? x * 8 : c == 1 ? y * 8 : ((x / 4 + y / 4) & 1) * 200;
                    v += (int)(s >> 27) - 16;
                    px[y * 32 + x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
                }
            struct dim_image img = {1, 32, 32, px};
            char f[32];
            snprintf(f, sizeof f, "img%02d.png", i);
            struct dim_err err;
            if (dim_image_write_png(fixtures_join(path, sizeof path, cls, f), &img, &err) != 0)
                return -1;
        }
    }
    mkdir_in(data, "broken", broken, sizeof broken);
    mkdir_in(broken, "only", cls, sizeof cls);
    if (fixtures_write_file(fixtures_join(path, sizeof path, cls, "bad.png"), "not a png", 9))
        return -1;
    struct dim_err err;
    if (datasets_init(&g_ds, data, &err) != 0) {
        fprintf(stderr, "datasets_init: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    fixtures_rmtree(g_dir);
    free(g_dir);
    return 0;
}

/* ---- helpers ---- */

static struct dimd_store *open_store(void)
{
    char name[64], path[600];
    snprintf(name, sizeof name, "state%d.db", ++g_db_seq);
    struct dimd_store *s = NULL;
    struct dim_err err;
    if (store_open(&s, fixtures_join(path, sizeof path, g_dir, name), &err) != 0)
        fail_msg("store_open: %s", err.msg);
    return s;
}

static struct runner *start(struct dimd_store *s, int workers, int threads, int flush_ms)
{
    struct runner_config cfg = {workers, threads, flush_ms, NULL, {0}};
    struct runner *r = NULL;
    struct dim_err err;
    if (runner_start(&r, s, &g_ds, &cfg, &err) != 0)
        fail_msg("runner_start: %s", err.msg);
    return r;
}

static int64_t insert(struct dimd_store *s, const char *spec)
{
    struct store_job j;
    memset(&j, 0, sizeof j);
    struct dim_err err;
    if (store_job_insert(s, spec, NULL, NULL, NULL, 1000, &j, &err) != STORE_OK)
        fail_msg("store_job_insert: %s", err.msg);
    int64_t id = j.id;
    store_job_clear(&j);
    return id;
}

static int64_t insert_fmt(struct dimd_store *s, int steps, int every, int keep_last)
{
    char spec[512];
    snprintf(spec, sizeof spec, SPEC_FMT, steps, every, keep_last);
    return insert(s, spec);
}

static int64_t insert_sched(struct dimd_store *s, int steps, int every, int keep_last)
{
    char spec[512];
    snprintf(spec, sizeof spec, SPEC_SCHED_FMT, steps, every, keep_last);
    return insert(s, spec);
}

static void get_job(struct dimd_store *s, int64_t id, struct store_job *j)
{
    memset(j, 0, sizeof *j);
    struct dim_err err;
    if (store_job_get(s, id, j, &err) != STORE_OK)
        fail_msg("store_job_get %lld: %s", (long long)id, err.msg);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* DIMD_TEST_TIMEOUT_SCALE (default 1) multiplies every deadline below, as it
 * does the end-to-end tests': make test-tsan sets it (training runs ~15 times
 * slower under ThreadSanitizer). */
static double timeout_scale(void)
{
    const char *v = getenv("DIMD_TEST_TIMEOUT_SCALE");
    double k = v ? strtod(v, NULL) : 1.0;
    return k >= 1.0 ? k : 1.0;
}

/* Waits until the job is in a state of mask; returns the state. */
static enum job_state wait_state(struct dimd_store *s, int64_t id, unsigned mask, double timeout)
{
    timeout *= timeout_scale();
    double t0 = now_s();
    for (;;) {
        struct store_job j;
        get_job(s, id, &j);
        enum job_state st = j.state;
        store_job_clear(&j);
        if (mask & JOB_MASK(st))
            return st;
        if (now_s() - t0 > timeout)
            fail_msg("job %lld still %s after %.0f s", (long long)id, job_state_name(st), timeout);
        sleep_ms(2);
    }
}

static int64_t wait_step(struct dimd_store *s, int64_t id, int64_t min_step, double timeout)
{
    timeout *= timeout_scale();
    double t0 = now_s();
    for (;;) {
        struct store_job j;
        get_job(s, id, &j);
        int64_t step = j.step;
        enum job_state st = j.state;
        store_job_clear(&j);
        if (step >= min_step)
            return step;
        if (st != JOB_RUNNING && st != JOB_QUEUED)
            fail_msg("job %lld is %s at step %lld", (long long)id, job_state_name(st),
                     (long long)step);
        if (now_s() - t0 > timeout)
            fail_msg("job %lld at step %lld after %.0f s", (long long)id, (long long)step, timeout);
        sleep_ms(1);
    }
}

static void wait_idle(struct runner *r, double timeout)
{
    timeout *= timeout_scale();
    double t0 = now_s();
    for (;;) {
        struct runner_stats st;
        runner_get_stats(r, &st);
        if (st.busy_workers == 0)
            return;
        if (now_s() - t0 > timeout)
            fail_msg("%d workers still busy", st.busy_workers);
        sleep_ms(2);
    }
}

/* Finds key in the summaries (NULL when absent). */
static const struct store_metric_summary *summary_of(const struct store_metric_summary *sum,
                                                     size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(sum[i].key, key) == 0)
            return &sum[i];
    return NULL;
}

/* Every point of key, checked to be steps 1..last without gaps or duplicates. */
static void check_steps_contiguous(struct dimd_store *s, int64_t id, const char *key, int64_t last)
{
    struct store_point *p = NULL;
    size_t n = 0;
    bool more = true;
    struct dim_err err;
    assert_int_equal(store_metrics_history(s, id, key, 0, INT64_MAX, 1000000, 0, &p, &n, &more, &err),
                     STORE_OK);
    assert_int_equal(n, (size_t)last);
    assert_false(more);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(p[i].step, (int64_t)i + 1);
        assert_true(isfinite(p[i].value));
    }
    free(p);
}

/* The checkpoint's bytes: sha256 matches and they load with their step. */
static void load_checkpoint(struct dimd_store *s, int64_t id, int64_t step, void **data, size_t *n)
{
    struct store_checkpoint meta;
    memset(&meta, 0, sizeof meta);
    struct dim_err err;
    assert_int_equal(store_checkpoint_get(s, id, step, &meta, data, &err), STORE_OK);
    char hex[65];
    sha256_hex(*data, (size_t)meta.bytes, hex);
    assert_string_equal(hex, meta.sha256);
    assert_int_equal(meta.step, step);
    *n = (size_t)meta.bytes;
    store_checkpoint_clear(&meta);
}


static void check_checkpoint_loads(const void *data, size_t n, uint64_t step)
{
    struct dim_memsrc src = {data, n, 0};
    const struct dim_reader rd = {dim_memsrc_read, &src};
    struct dim_model *m = NULL;
    struct dim_train_progress prog;
    struct dim_err err;
    assert_int_equal(dim_checkpoint_read(&m, &prog, true, &rd, &err), 0);
    assert_int_equal(prog.step, step);
    assert_int_equal(m->cfg.batch, 16);
    assert_int_equal(m->cfg.mi_dim, 32);
    dim_model_free(m);
}

static size_t count_events(struct dimd_store *s, int64_t id, const char *type, int64_t *steps,
                           size_t cap)
{
    struct store_event *ev = NULL;
    size_t n = 0, k = 0;
    struct dim_err err;
    assert_int_equal(store_events_after(s, id, 0, 100000, &ev, &n, &err), STORE_OK);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ev[i].type, type) == 0) {
            if (steps && k < cap) {
                const char *p = strstr(ev[i].data, "\"step\":");
                steps[k] = p ? strtoll(p + 7, NULL, 10) : -1;
            }
            k++;
        }
        store_event_clear(&ev[i]);
    }
    free(ev);
    return k;
}

static size_t all_events(struct dimd_store *s, int64_t id)
{
    struct store_event *ev = NULL;
    size_t n = 0;
    struct dim_err err;
    assert_int_equal(store_events_after(s, id, 0, 100000, &ev, &n, &err), STORE_OK);
    for (size_t i = 0; i < n; i++)
        store_event_clear(&ev[i]);
    free(ev);
    return n;
}

/* ---- tests ---- */

static void test_job_succeeds(void **state)
{
    (void)state;
    struct dimd_store *s = open_store();
    int64_t id = insert_fmt(s, 30, 10, 2);
    struct runner *r = start(s, 1, 1, 10);
    runner_wake(r);
    assert_int_equal(wait_state(s, id, JOB_MASK(JOB_SUCCEEDED) | JOB_MASK(JOB_FAILED), 60),
                     JOB_SUCCEEDED);
    wait_idle(r, 10);
    struct runner_stats st;
    runner_get_stats(r, &st);
    assert_int_equal(st.steps_total, 30);
    assert_int_equal(st.images_total, 30 * 16);
    assert_int_equal(st.busy_workers, 0);
    runner_stop(r);

    struct store_job j;
    get_job(s, id, &j);
    assert_int_equal(j.total_steps, 30);
    assert_int_equal(j.step, 30);
    assert_int_equal(j.checkpoint_step, 30);
    assert_int_equal(j.attempts, 1);
    assert_null(j.error_code);
    assert_true(j.images_per_second > 0);
    store_job_clear(&j);

    /* default DIM(L) weights: local and prior terms, no global one */
    struct store_metric_summary *sum = NULL;
    size_t n = 0;
    struct dim_err err;
    assert_int_equal(store_metrics_summary(s, id, &sum, &n, &err), STORE_OK);
    const char *keys[] = {"loss_local", "loss_prior_enc", "loss_prior_disc", "loss_total"};
    for (size_t k = 0; k < 4; k++) {
        const struct store_metric_summary *m = summary_of(sum, n, keys[k]);
        assert_non_null(m);
        assert_int_equal(m->count, 30);
        assert_int_equal(m->first_step, 1);
        assert_int_equal(m->last_step, 30);
        check_steps_contiguous(s, id, keys[k], 30);
    }
    assert_null(summary_of(sum, n, "loss_global"));
    assert_null(summary_of(sum, n, "probe_y"));
    assert_null(summary_of(sum, n, "lr")); /* a constant lr is not recorded */
    const struct store_metric_summary *ips = summary_of(sum, n, "images_per_second");
    assert_non_null(ips);
    assert_true(ips->count >= 3); /* at least one per checkpoint */
    assert_true(ips->min > 0);
    assert_int_equal(ips->last_step, 30);
    free(sum);

    /* checkpoints at 10, 20, 30; keep_last 2 leaves 20 and 30 */
    int64_t steps[8];
    assert_int_equal(count_events(s, id, "checkpoint", steps, 8), 3);
    assert_int_equal(steps[0], 10);
    assert_int_equal(steps[1], 20);
    assert_int_equal(steps[2], 30);
    assert_int_equal(count_events(s, id, "rewind", NULL, 0), 0);
    struct store_checkpoint *ck = NULL;
    assert_int_equal(store_checkpoint_list(s, id, &ck, &n, &err), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ck[0].step, 20);
    assert_int_equal(ck[1].step, 30);
    assert_non_null(strstr(ck[1].metrics_json, "\"loss_total\""));
    for (size_t i = 0; i < n; i++)
        store_checkpoint_clear(&ck[i]);
    free(ck);

    void *data = NULL;
    size_t len = 0;
    load_checkpoint(s, id, 30, &data, &len);
    check_checkpoint_loads(data, len, 30);
    free(data);
    store_close(s);
}

/* Probing at checkpoints: probe_* points at those steps, in the checkpoint's
 * metrics, and keep_best by probe_y keeps the best one. */
static void test_probe_metrics(void **state)
{
    (void)state;
    struct dimd_store *s = open_store();
    int64_t id = insert(s, "{\"dataset\":\"data/shapes\",\"batch\":16,\"mi_dim\":32,\"y_dim\":16,"
                           "\"steps\":8,\"checkpoint_every\":4,\"probe\":\"linear\","
                           "\"probe_epochs\":2,\"probe_images\":100,\"keep_last\":1,"
                           "\"keep_best\":1}");
    struct runner *r = start(s, 1, 2, 10);
    runner_wake(r);
    assert_int_equal(wait_state(s, id, JOB_MASK(JOB_SUCCEEDED) | JOB_MASK(JOB_FAILED), 60),
                     JOB_SUCCEEDED);
    runner_stop(r);
    struct store_metric_summary *sum = NULL;
    size_t n = 0;
    struct dim_err err;
    assert_int_equal(store_metrics_summary(s, id, &sum, &n, &err), STORE_OK);
    const char *keys[] = {"probe_conv", "probe_fc", "probe_y"};
    for (size_t k = 0; k < 3; k++) {
        const struct store_metric_summary *m = summary_of(sum, n, keys[k]);
        assert_non_null(m);
        assert_int_equal(m->count, 2);
        assert_int_equal(m->first_step, 4);
        assert_int_equal(m->last_step, 8);
        assert_true(m->min >= 0 && m->max <= 1);
    }
    free(sum);
    struct store_checkpoint *ck = NULL;
    assert_int_equal(store_checkpoint_list(s, id, &ck, &n, &err), STORE_OK);
    assert_true(n >= 1 && n <= 2);
    assert_int_equal(ck[n - 1].step, 8);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(strstr(ck[i].metrics_json, "\"probe_y\""));
        store_checkpoint_clear(&ck[i]);
    }
    free(ck);
    store_close(s);
}

static void *final_checkpoint(struct dimd_store *s, int64_t id, int64_t step, size_t *n)
{
    void *data = NULL;
    load_checkpoint(s, id, step, &data, n);
    return data;
}

/* The job's "lr" points, 1..STEPS, against dim_lr_at of the checkpoint's config. */
static void check_lr_points(struct dimd_store *s, int64_t id, const struct dim_config *c,
                            int64_t steps)
{
    struct store_point *p = NULL;
    size_t n = 0;
    bool more = true;
    struct dim_err err;
    assert_int_equal(
        store_metrics_history(s, id, "lr", 0, INT64_MAX, 1000000, 0, &p, &n, &more, &err),
        STORE_OK);
    assert_int_equal(n, (size_t)steps);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(p[i].step, (int64_t)i + 1);
        if (p[i].value != (double)dim_lr_at(c, (uint64_t)i))
            fail_msg("lr at step %zu: %.9g, the schedule says %.9g", i + 1, p[i].value,
                     (double)dim_lr_at(c, (uint64_t)i));
    }
    assert_true(p[0].value < p[7].value);      /* the warm-up: lr/8 up to lr */
    assert_true(p[n - 1].value < p[8].value);  /* then the decay */
    free(p);
}

/* runner_stop mid-job: QUEUED with a checkpoint at its step; a new runner
 * finishes it, and the last checkpoint equals an uninterrupted run's bytes. Both
 * jobs warm up for 8 steps and then decay the lr by a cosine over the run: the
 * resumed job takes the same rates from its checkpoint's config. */
static void test_stop_and_resume_identical(void **state)
{
    (void)state;
    enum { STEPS = 40, EVERY = 1000 }; /* checkpoints cost ~1 s each (61 MB) */
    struct dimd_store *s = open_store();
    int64_t a = insert_sched(s, STEPS, EVERY, 3);
    struct runner *r = start(s, 1, 1, 10);
    runner_wake(r);
    assert_int_equal(wait_state(s, a, JOB_MASK(JOB_SUCCEEDED) | JOB_MASK(JOB_FAILED), 60),
                     JOB_SUCCEEDED);

    int64_t b = insert_sched(s, STEPS, EVERY, 3);
    runner_wake(r);
    wait_step(s, b, 5, 60);
    double t0 = now_s();
    runner_stop(r);
    double stop_s = now_s() - t0;
    assert_true(stop_s < 5 * timeout_scale());
    struct store_job j;
    get_job(s, b, &j);
    assert_int_equal(j.state, JOB_QUEUED);
    assert_int_equal(j.restarts, 0);
    assert_int_equal(j.attempts, 1);
    int64_t at = j.step;
    assert_true(at >= 5);
    assert_true(at < STEPS);
    assert_int_equal(j.checkpoint_step, at);
    store_job_clear(&j);
    void *mid = NULL;
    size_t mid_n = 0;
    load_checkpoint(s, b, at, &mid, &mid_n);
    check_checkpoint_loads(mid, mid_n, (uint64_t)at);
    /* the checkpoint holds the schedule with its horizon resolved to the job's steps */
    struct dim_memsrc src = {mid, mid_n, 0};
    const struct dim_reader rd = {dim_memsrc_read, &src};
    struct dim_model *mm = NULL;
    struct dim_err err;
    assert_int_equal(dim_checkpoint_read(&mm, NULL, false, &rd, &err), 0);
    assert_int_equal(mm->cfg.lr_schedule, DIM_LR_COSINE);
    assert_true(mm->cfg.lr_warmup == 8 && mm->cfg.lr_horizon == STEPS);
    const struct dim_config sched = mm->cfg;
    dim_model_free(mm);
    free(mid);

    r = start(s, 1, 1, 10);
    runner_wake(r);
    assert_int_equal(wait_state(s, b, JOB_MASK(JOB_SUCCEEDED) | JOB_MASK(JOB_FAILED), 60),
                     JOB_SUCCEEDED);
    runner_stop(r);
    get_job(s, b, &j);
    assert_int_equal(j.attempts, 2);
    assert_int_equal(j.step, STEPS);
    store_job_clear(&j);
    check_steps_contiguous(s, b, "loss_total", STEPS);
    check_steps_contiguous(s, b, "loss_local", STEPS);
    check_lr_points(s, a, &sched, STEPS);
    check_lr_points(s, b, &sched, STEPS);

    size_t na = 0, nb = 0;
    void *da = final_checkpoint(s, a, STEPS, &na);
    void *db = final_checkpoint(s, b, STEPS, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(da, db, na);
    free(da);
    free(db);
    store_close(s);
}

static void test_cancel_stops_writes(void **state)
{
    (void)state;
    struct dimd_store *s = open_store();
    int64_t id = insert_fmt(s, 1000000, 1000000, 1);
    struct runner *r = start(s, 1, 1, 10);
    runner_wake(r);
    wait_step(s, id, 3, 60);
    struct store_job j;
    memset(&j, 0, sizeof j);
    struct dim_err err;
    assert_int_equal(
        store_job_transition(s, id, JOB_MASK(JOB_RUNNING), JOB_CANCELLED, NULL, NULL, &j, &err),
        STORE_OK);
    store_job_clear(&j);
    runner_job_changed(r, id);
    wait_idle(r, 10);
    size_t ev = all_events(s, id);
    get_job(s, id, &j);
    int64_t step = j.step;
    assert_int_equal(j.state, JOB_CANCELLED);
    store_job_clear(&j);
    sleep_ms(150);
    assert_int_equal(all_events(s, id), ev);
    get_job(s, id, &j);
    assert_int_equal(j.state, JOB_CANCELLED);
    assert_int_equal(j.step, step);
    assert_int_equal(j.checkpoint_step, -1);
    store_job_clear(&j);
    /* the worker serves the next job */
    int64_t next = insert_fmt(s, 2, 2, 1);
    runner_wake(r);
    assert_int_equal(wait_state(s, next, JOB_MASK(JOB_SUCCEEDED) | JOB_MASK(JOB_FAILED), 60),
                     JOB_SUCCEEDED);
    runner_stop(r);
    store_close(s);
}

/* Pause checkpoints and leaves the job PAUSED; resume lets a worker claim it
 * again and it continues from that checkpoint. */
static void test_pause_and_resume(void **state)
{
    (void)state;
    struct dimd_store *s = open_store();
    int64_t id = insert_fmt(s, 1000000, 1000000, 2);
    struct runner *r = start(s, 2, 1, 10);
    runner_wake(r);
    wait_step(s, id, 3, 60);
    struct store_job j;
    memset(&j, 0, sizeof j);
    struct dim_err err;
    assert_int_equal(store_job_transition(s, id, JOB_MASK(JOB_RUNNING) | JOB_MASK(JOB_QUEUED),
                                          JOB_PAUSED, NULL, NULL, &j, &err),
                     STORE_OK);
    store_job_clear(&j);
    runner_job_changed(r, id);
    wait_idle(r, 10);
    get_job(s, id, &j);
    assert_int_equal(j.state, JOB_PAUSED);
    int64_t at = j.step;
    assert_true(at >= 3);
    assert_int_equal(j.checkpoint_step, at);
    store_job_clear(&j);
    void *data = NULL;
    size_t n = 0;
    load_checkpoint(s, id, at, &data, &n);
    check_checkpoint_loads(data, n, (uint64_t)at);
    free(data);
    sleep_ms(50);
    get_job(s, id, &j);
    assert_int_equal(j.state, JOB_PAUSED);
    assert_int_equal(j.step, at);
    store_job_clear(&j);

    assert_int_equal(
        store_job_transition(s, id, JOB_MASK(JOB_PAUSED), JOB_QUEUED, NULL, NULL, &j, &err),
        STORE_OK);
    store_job_clear(&j);
    runner_wake(r);
    wait_step(s, id, at + 3, 60);
    get_job(s, id, &j);
    assert_int_equal(j.attempts, 2);
    store_job_clear(&j);
    /* cancel it so the runner stops promptly; steps stay contiguous across the pause */
    assert_int_equal(
        store_job_transition(s, id, JOB_MASK(JOB_RUNNING), JOB_CANCELLED, NULL, NULL, &j, &err),
        STORE_OK);
    store_job_clear(&j);
    runner_job_changed(r, id);
    wait_idle(r, 10);
    runner_stop(r);
    get_job(s, id, &j);
    check_steps_contiguous(s, id, "loss_total", j.step);
    store_job_clear(&j);
    store_close(s);
}


/* A job restored from a checkpoint whose parameters hold a NaN fails with
 * non_finite_loss instead of running on. */
static void test_non_finite_fails(void **state)
{
    (void)state;
    struct dimd_store *s = open_store();
    int64_t id = insert_fmt(s, 30, 10, 2);
    struct store_job j;
    memset(&j, 0, sizeof j);
    struct dim_err err;
    assert_int_equal(store_job_claim(s, NULL, 0, &j, &err), STORE_OK);
    assert_int_equal(j.id, id);
    int attempt = j.attempts;
    store_job_clear(&j);

    /* the job's model after one real step, then poisoned */
    struct dim_dataset train = {0};
    const struct dim_dataset_limits lim = {0, 64u << 20};
    char path[600];
    fixtures_join(path, sizeof path, g_dir, "data/shapes");
    assert_int_equal(dim_dataset_load(path, DIM_SPLIT_TRAIN, &lim, &train, &err), 0);
    struct dim_config cfg;
    dim_config_default(&cfg);
    cfg.batch = 16;
    cfg.mi_dim = 32;
    cfg.y_dim = 16;
    cfg.in_c = 1;
    struct dim_model *m = NULL;
    assert_int_equal(dim_model_create(&m, &cfg, true, &err), 0);
    struct dim_preprocess pp = {1, m->in_h, m->in_w, 0, false};
    struct dim_trainer *tr = NULL;
    assert_int_equal(dim_trainer_create(&tr, m, &train, &pp, &err), 0);
    struct dim_losses l;
    assert_int_equal(dim_trainer_step(tr, &l, &err), 0);
    struct dim_train_progress prog;
    dim_trainer_progress(tr, &prog);
    m->main_params[3] = NAN;
    struct dim_membuf buf = {0};
    const struct dim_writer wr = {dim_membuf_write, &buf};
    assert_int_equal(dim_checkpoint_write(m, &prog, &wr, &err), 0);
    char hex[65];
    sha256_hex(buf.p, buf.n, hex);
    struct store_retention keep = {1, 0, "loss_total", false};
    assert_int_equal(store_checkpoint_put(s, id, attempt, 1, buf.p, buf.n, hex, "{}", &keep, &err),
                     STORE_OK);
    free(buf.p);
    dim_trainer_free(tr);
    dim_model_free(m);
    dim_dataset_free(&train);
    assert_int_equal(store_job_finish(s, id, attempt, JOB_QUEUED, NULL, NULL, &err), STORE_OK);

    struct runner *r = start(s, 1, 1, 10);
    runner_wake(r);
    assert_int_equal(wait_state(s, id, JOB_MASK(JOB_SUCCEEDED) | JOB_MASK(JOB_FAILED), 60),
                     JOB_FAILED);
    runner_stop(r);
    get_job(s, id, &j);
    assert_string_equal(j.error_code, "non_finite_loss");
    assert_non_null(j.error_message);
    assert_non_null(strstr(j.error_message, "not finite"));
    assert_non_null(strstr(j.error_message, "step 2 of 30"));
    assert_int_equal(j.checkpoint_step, 1);
    store_job_clear(&j);
    store_close(s);
}

/* Jobs whose dataset cannot load, or whose spec is broken, fail with a code;
 * the runner goes on to the next job. */
static void test_bad_jobs_fail_and_runner_serves_on(void **state)
{
    (void)state;
    struct dimd_store *s = open_store();
    int64_t broken = insert(s, "{\"dataset\":\"data/broken\",\"batch\":16,\"steps\":5,"
                               "\"probe\":\"none\"}");
    int64_t missing = insert(s, "{\"dataset\":\"data/nope\",\"steps\":5,\"probe\":\"none\"}");
    int64_t bad_json = insert(s, "{not json");
    int64_t bad_lr = insert(s, "{\"dataset\":\"data/shapes\",\"lr\":-1,\"probe\":\"none\"}");
    int64_t big_batch = insert(s, "{\"dataset\":\"data/shapes\",\"batch\":4096,\"steps\":5,"
                                  "\"probe\":\"none\"}");
    /* a warm-up longer than the run, which only its dataset's size tells (epochs) */
    int64_t long_warmup = insert(s, "{\"dataset\":\"data/shapes\",\"batch\":16,\"epochs\":1,"
                                    "\"lr_warmup\":100000,\"probe\":\"none\"}");
    int64_t good = insert_fmt(s, 2, 2, 1);
    struct runner *r = start(s, 1, 1, 10);
    runner_wake(r);
    assert_int_equal(wait_state(s, good, JOB_MASK(JOB_SUCCEEDED) | JOB_MASK(JOB_FAILED), 60),
                     JOB_SUCCEEDED);
    runner_stop(r);
    struct {
        int64_t id;
        const char *code;
    } want[] = {{broken, "dataset_unavailable"},
                {missing, "dataset_unavailable"},
                {bad_json, "invalid_spec"},
                {bad_lr, "invalid_spec"},
                {big_batch, "dataset_too_small"},
                {long_warmup, "invalid_config"}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        struct store_job j;
        get_job(s, want[i].id, &j);
        assert_int_equal(j.state, JOB_FAILED);
        assert_non_null(j.error_code);
        assert_string_equal(j.error_code, want[i].code);
        assert_non_null(j.error_message);
        assert_true(strlen(j.error_message) > 0);
        if (want[i].id == long_warmup && !strstr(j.error_message, "lr_warmup 100000 is longer "
                                                                  "than the run's"))
            fail_msg("long warm-up: '%s'", j.error_message);
        store_job_clear(&j);
    }
    store_close(s);
}

/* Two workers run two jobs at once; stats count both. */
static void test_two_workers(void **state)
{
    (void)state;
    struct dimd_store *s = open_store();
    int64_t a = insert_fmt(s, 12, 12, 1), b = insert_fmt(s, 12, 12, 1);
    struct runner *r = start(s, 2, 1, 10);
    runner_wake(r);
    assert_int_equal(wait_state(s, a, JOB_MASK(JOB_SUCCEEDED) | JOB_MASK(JOB_FAILED), 60),
                     JOB_SUCCEEDED);
    assert_int_equal(wait_state(s, b, JOB_MASK(JOB_SUCCEEDED) | JOB_MASK(JOB_FAILED), 60),
                     JOB_SUCCEEDED);
    wait_idle(r, 10);
    struct runner_stats st;
    runner_get_stats(r, &st);
    assert_int_equal(st.steps_total, 24);
    runner_stop(r);
    /* same spec and thread count: the same bytes */
    size_t na = 0, nb = 0;
    void *da = final_checkpoint(s, a, 12, &na);
    void *db = final_checkpoint(s, b, 12, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(da, db, na);
    free(da);
    free(db);
    store_close(s);
}

static void test_config_refused(void **state)
{
    (void)state;
    struct dimd_store *s = open_store();
    struct runner *r = NULL;
    struct dim_err err;
    struct runner_config bad[] = {{0, 1, 100, NULL, {0}}, {1, 0, 100, NULL, {0}}, {1, 1, 5, NULL, {0}}};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(runner_start(&r, s, &g_ds, &bad[i], &err), DIM_EINVAL);
        assert_null(r);
    }
    /* an idle runner stops at once */
    r = start(s, 3, 2, 100);
    double t0 = now_s();
    runner_stop(r);
    assert_true(now_s() - t0 < 2);
    store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_job_succeeds),
        cmocka_unit_test(test_probe_metrics),
        cmocka_unit_test(test_stop_and_resume_identical),
        cmocka_unit_test(test_cancel_stops_writes),
        cmocka_unit_test(test_pause_and_resume),
        cmocka_unit_test(test_non_finite_fails),
        cmocka_unit_test(test_bad_jobs_fail_and_runner_serves_on),
        cmocka_unit_test(test_two_workers),
        cmocka_unit_test(test_config_refused),
    };
    const char *only = getenv("TEST_RUNNER_FILTER"); /* e.g. "test_pause*" */
    if (only && *only)
        cmocka_set_test_filter(only);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

/* test_store.c - the SQLite store (store/store.h) and SHA-256 (util/sha256.h).
 *
 * Every test runs against a real database file in its own mkdtemp directory
 * under /tmp, removed afterwards. Some checks open a second, raw SQLite
 * connection to look at what the store wrote (pragmas, rows, page counts).
 */
#include <dirent.h>
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

#include "util/assets.h"
#include "util/sha256.h"
#include "store/checkpoints.h"
#include "store/evaluations.h"
#include "store/events.h"
#include "store/jobs.h"
#include "store/metrics.h"
#include "store/models.h"
#include "store/projections.h"
#include "store/store.h"
#include "store/tokens.h"

/* ---- fixture ---- */

struct fx {
    char dir[64];
    char path[128];
    struct dimd_store *s;
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/dimd-store-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/dimd.db", f->dir);
    *state = f;
    return 0;
}

/* A fixture with the store already open at the latest version. */
static int fx_setup_open(void **state)
{
    if (fx_setup(state) != 0)
        return -1;
    struct fx *f = *state;
    struct dim_err err = {0};
    return store_open(&f->s, f->path, &err) == STORE_OK ? 0 : -1;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    store_close(f->s);
    DIR *d = opendir(f->dir);
    if (d) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof(p), "%s/%s", f->dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* ---- helpers ---- */

/* One integer from a raw connection to the database file (-12345 on no row). */
static int64_t raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    int64_t v = -12345;
    int r = sqlite3_step(st);
    assert_true(r == SQLITE_ROW || r == SQLITE_DONE);
    if (r == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static int64_t insert_job(struct dimd_store *s, const char *name)
{
    struct dim_err err = {0};
    struct store_job j = {0};
    assert_int_equal(store_job_insert(s, "{\"steps\":10}", name, NULL, NULL, 0, &j, &err),
                     STORE_OK);
    int64_t id = j.id;
    assert_true(id > 0);
    assert_int_equal(j.state, JOB_QUEUED);
    store_job_clear(&j);
    return id;
}

/* Inserts a job and claims it (it must be the only QUEUED one): RUNNING, attempt 1. */
static int64_t running_job(struct dimd_store *s)
{
    struct dim_err err = {0};
    int64_t id = insert_job(s, NULL);
    struct store_job j = {0};
    assert_int_equal(store_job_claim(s, NULL, 0, &j, &err), STORE_OK);
    assert_int_equal(j.id, id);
    assert_int_equal(j.attempts, 1);
    store_job_clear(&j);
    return id;
}

static enum job_state state_of(struct dimd_store *s, int64_t id)
{
    struct dim_err err = {0};
    struct store_job j = {0};
    assert_int_equal(store_job_get(s, id, &j, &err), STORE_OK);
    enum job_state st = j.state;
    store_job_clear(&j);
    return st;
}

static size_t n_events(struct dimd_store *s, int64_t id)
{
    struct dim_err err = {0};
    struct store_event *ev = NULL;
    size_t n = 0;
    assert_int_equal(store_events_after(s, id, 0, 100000, &ev, &n, &err), STORE_OK);
    for (size_t i = 0; i < n; i++)
        store_event_clear(&ev[i]);
    free(ev);
    return n;
}

/* The last event of job id, parsed; its type in type. */
static json_t *last_event(struct dimd_store *s, int64_t id, char type[16])
{
    struct dim_err err = {0};
    struct store_event *ev = NULL;
    size_t n = 0;
    assert_int_equal(store_events_after(s, id, 0, 100000, &ev, &n, &err), STORE_OK);
    assert_true(n > 0);
    json_error_t je;
    json_t *v = json_loads(ev[n - 1].data, 0, &je);
    assert_non_null(v);
    memcpy(type, ev[n - 1].type, 16);
    for (size_t i = 0; i < n; i++)
        store_event_clear(&ev[i]);
    free(ev);
    return v;
}

static const char *jstr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int64_t ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)(t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* ---- SHA-256 ---- */

static void test_sha256_fips_vectors(void **state)
{
    (void)state;
    char hex[65];
    sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha256_hex(m448, strlen(m448), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

    /* One million 'a', fed in uneven pieces through the streaming API. */
    char a[1000];
    memset(a, 'a', sizeof(a));
    struct sha256_ctx c;
    sha256_init(&c);
    size_t left = 1000000, piece = 1;
    while (left > 0) {
        size_t k = piece < left ? piece : left;
        sha256_update(&c, a, k);
        left -= k;
        piece = piece % 987 + 13; /* 1..999 */
    }
    unsigned char d[32];
    sha256_final(&c, d);
    static const unsigned char want[32] = {0xcd, 0xc7, 0x6e, 0x5c, 0x99, 0x14, 0xfb, 0x92,
                                           0x81, 0xa1, 0xc7, 0xe2, 0x84, 0xd7, 0x3e, 0x67,
                                           0xf1, 0x80, 0x9a, 0x48, 0xa4, 0x97, 0x20, 0x0e,
                                           0x04, 0x6d, 0x39, 0xcc, 0xc7, 0x11, 0x2c, 0xd0};
    assert_memory_equal(d, want, 32);

    /* Lengths around the 55/56/64-byte padding edges: streaming == one-shot. */
    for (size_t n = 50; n <= 130; n++) {
        char one[65], two[65];
        sha256_hex(a, n, one);
        sha256_init(&c);
        sha256_update(&c, a, n / 3);
        sha256_update(&c, a, n - n / 3);
        sha256_final(&c, d);
        for (int i = 0; i < 32; i++)
            snprintf(two + 2 * i, 3, "%02x", d[i]);
        assert_string_equal(one, two);
    }
}

/* ---- schema ---- */

static void test_open_fresh_migrates(void **state)
{
    struct fx *f = *state;
    struct dim_err err = {0};
    assert_int_equal(store_schema_latest(), 5);
    assert_non_null(assets_find("migrations/0001_jobs.sql"));
    assert_non_null(assets_find("migrations/0002_tokens.sql"));
    assert_non_null(assets_find("migrations/0003_models.sql"));
    assert_non_null(assets_find("migrations/0004_projections.sql"));
    assert_non_null(assets_find("migrations/0005_evaluations.sql"));
    assert_int_equal(store_open(&f->s, f->path, &err), STORE_OK);
    assert_int_equal(store_schema_version(f->s), 5);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 5);
    assert_int_equal(raw_int(f->path, "PRAGMA auto_vacuum"), 2); /* INCREMENTAL */
    assert_int_equal(raw_int(f->path, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
    assert_int_equal(raw_int(f->path, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' "
                                      "AND name IN ('jobs', 'attempts', 'metrics', 'checkpoints', "
                                      "'events', 'idempotency', 'tokens', 'models', "
                                      "'model_versions', 'model_projections', 'model_evaluations')"),
                     11);
    /* The checkpoint bytes are the last column of a version's row. */
    assert_int_equal(raw_int(f->path,
                             "SELECT name = 'data' FROM pragma_table_info('model_versions') "
                             "ORDER BY cid DESC LIMIT 1"),
                     1);
    /* Reopening an up-to-date database changes nothing. */
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(store_open(&f->s, f->path, &err), STORE_OK);
    assert_int_equal(store_schema_version(f->s), 5);
}

static void test_upgrade_in_place_keeps_jobs(void **state)
{
    struct fx *f = *state;
    struct dim_err err = {0};
    assert_int_equal(store_open_at_version(&f->s, f->path, 1, &err), STORE_OK);
    assert_int_equal(store_schema_version(f->s), 1);
    assert_int_equal(raw_int(f->path, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'tokens'"),
                     0);
    int64_t n = 0;
    assert_int_equal(store_token_count(f->s, &n, &err), STORE_ERROR); /* no tokens table yet */
    assert_non_null(strstr(err.msg, "tokens"));
    int64_t id = insert_job(f->s, "old");
    store_close(f->s);
    f->s = NULL;

    /* 1 -> latest in one open: every later migration applies, in order. */
    assert_int_equal(store_open(&f->s, f->path, &err), STORE_OK);
    assert_int_equal(store_schema_version(f->s), store_schema_latest());
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), store_schema_latest());
    assert_int_equal(raw_int(f->path, "PRAGMA auto_vacuum"), 2);
    assert_int_equal(raw_int(f->path, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' "
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
    struct fx *f = *state;
    struct dim_err err = {0};
    raw_exec(f->path, "CREATE TABLE future (x); PRAGMA user_version = 99");
    assert_int_equal(store_open(&f->s, f->path, &err), STORE_ERROR);
    assert_null(f->s);
    assert_non_null(strstr(err.msg, "99"));
    char latest[16];
    snprintf(latest, sizeof(latest), "(%d)", store_schema_latest());
    assert_non_null(strstr(err.msg, latest));
    assert_non_null(strstr(err.msg, "upgrade dimd"));
    /* And it was left alone. */
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 99);
    assert_int_equal(raw_int(f->path, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'jobs'"), 0);
}

/* ---- jobs ---- */

static void test_job_insert_get_list(void **state)
{
    struct fx *f = *state;
    struct dim_err err = {0};
    int64_t ids[7];
    for (int i = 0; i < 7; i++) {
        char name[16];
        snprintf(name, sizeof(name), "job%d", i);
        ids[i] = insert_job(f->s, name);
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
    assert_int_equal(store_job_list(f->s, &(struct store_job_filter){.state_mask = JOB_MASK(JOB_CANCELLED) | JOB_MASK(JOB_PAUSED)}, 0, 10, &v,
                                    &n, &more, &err),
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
    assert_int_equal(store_job_list(f->s, &(struct store_job_filter){.state_mask = JOB_MASK(JOB_QUEUED)}, ids[5], 2, &v, &n, &more, &err),
                     STORE_OK);
    assert_int_equal(n, 2);
    assert_true(more);
    assert_int_equal(v[0].id, ids[3]);
    assert_int_equal(v[1].id, ids[2]);
    for (size_t i = 0; i < n; i++)
        store_job_clear(&v[i]);
    free(v);
    assert_int_equal(store_job_list(f->s, &(struct store_job_filter){.state_mask = JOB_MASK(JOB_SUCCEEDED)}, 0, 5, &v, &n, &more, &err),
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
    struct fx *f = *state;
    struct dim_err err = {0};
    struct store_job j = {0};
    const unsigned all = (1u << JOB_N_STATES) - 1;
    int64_t d = running_job(f->s);
    int64_t a = insert_job(f->s, "a");

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
    assert_int_equal(state_of(f->s, a), JOB_QUEUED);

    /* Not found. */
    assert_int_equal(store_job_transition(f->s, 4242, all, JOB_CANCELLED, NULL, NULL, &j, &err),
                     STORE_NOT_FOUND);

    /* To each terminal state, with error fields when given. */
    int64_t b = insert_job(f->s, "b"), c = insert_job(f->s, "c");
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
        size_t ev = n_events(f->s, term[t]);
        for (int to = 0; to < JOB_N_STATES; to++) {
            assert_int_equal(
                store_job_transition(f->s, term[t], all, (enum job_state)to, NULL, NULL, &j, &err),
                STORE_CONFLICT);
            assert_int_equal(j.state, was[t]);
            store_job_clear(&j);
        }
        assert_int_equal(state_of(f->s, term[t]), was[t]);
        assert_int_equal(n_events(f->s, term[t]), ev);
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
    assert_int_equal(raw_int(f->path, sql), 1);

    /* The state event says where it came from. */
    char type[16];
    json_t *e = last_event(f->s, b, type);
    assert_string_equal(type, "state");
    assert_string_equal(jstr(e, "state"), "FAILED");
    assert_string_equal(jstr(e, "previous"), "QUEUED");
    json_t *eo = json_object_get(e, "error");
    assert_string_equal(jstr(eo, "code"), "dataset_missing");
    assert_string_equal(jstr(eo, "message"), "dataset x is gone");
    json_decref(e);
    e = last_event(f->s, c, type);
    assert_true(json_is_null(json_object_get(e, "error")));
    json_decref(e);
}

static void test_job_claim_order(void **state)
{
    struct fx *f = *state;
    struct dim_err err = {0};
    struct store_job j = {0};
    int64_t a = insert_job(f->s, "a"), b = insert_job(f->s, "b"), c = insert_job(f->s, "c");

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
    assert_int_equal(state_of(f->s, c), JOB_QUEUED);
    assert_int_equal(store_job_claim(f->s, NULL, 0, &j, &err), STORE_OK);
    assert_int_equal(j.id, c);
    store_job_clear(&j);
    assert_int_equal(store_job_claim(f->s, NULL, 0, &j, &err), STORE_NOT_FOUND);

    /* A clean-shutdown requeue goes back ahead of newer jobs; the next claim
     * is attempt 2 and keeps the first started_ms. */
    int64_t d = insert_job(f->s, "d");
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
    assert_int_equal(raw_int(f->path, sql), 2);
    snprintf(sql, sizeof(sql),
             "SELECT outcome = 'QUEUED' AND finished_ms > 0 FROM attempts WHERE job_id = %lld "
             "AND attempt = 1",
             (long long)a);
    assert_int_equal(raw_int(f->path, sql), 1);
    snprintf(sql, sizeof(sql),
             "SELECT outcome IS NULL AND started_ms > 0 FROM attempts WHERE job_id = %lld AND "
             "attempt = 2",
             (long long)a);
    assert_int_equal(raw_int(f->path, sql), 1);

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
    struct fx *f = *state;
    struct dim_err err = {0};
    struct store_job j = {0};
    int64_t id = running_job(f->s);
    int64_t other = insert_job(f->s, "waiting");
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
    assert_int_equal(state_of(f->s, other), JOB_QUEUED);
    char sql[160];
    snprintf(sql, sizeof(sql),
             "SELECT COUNT(*) FROM attempts WHERE job_id = %lld AND "
             "outcome = 'restart'",
             (long long)id);
    assert_int_equal(raw_int(f->path, sql), 3);
    /* Nothing RUNNING: nothing to do. */
    assert_int_equal(store_recover(f->s, 2, &rq, &fl, &err), STORE_OK);
    assert_int_equal(rq, 0);
    assert_int_equal(fl, 0);
}

static void test_idempotency(void **state)
{
    struct fx *f = *state;
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
    assert_int_equal(n_events(f->s, id), 1);
    /* Another key makes another job. */
    assert_int_equal(store_job_insert(f->s, "{\"steps\":5}", NULL, "key-2", ha, 10, &j, &err),
                     STORE_OK);
    assert_true(j.id > id);
    assert_null(j.name);
    store_job_clear(&j);
    assert_int_equal(raw_int(f->path, "SELECT COUNT(*) FROM idempotency"), 2);
}

static void test_queue_full(void **state)
{
    struct fx *f = *state;
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
    assert_int_equal(raw_int(f->path, "SELECT COUNT(*) FROM idempotency"), 1);
    int64_t counts[JOB_N_STATES];
    assert_int_equal(store_job_counts(f->s, counts, &err), STORE_OK);
    assert_int_equal(counts[JOB_QUEUED], 2);
    /* Claiming one frees a slot. */
    assert_int_equal(store_job_claim(f->s, NULL, 0, &j, &err), STORE_OK);
    store_job_clear(&j);
    assert_int_equal(store_job_insert(f->s, "{}", NULL, NULL, NULL, 2, &j, &err), STORE_OK);
    store_job_clear(&j);
}

/* ---- metrics ---- */

static void test_metrics_append_summary_history(void **state)
{
    struct fx *f = *state;
    struct dim_err err = {0};
    int64_t id = running_job(f->s);
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
    assert_int_equal(store_metrics_history(f->s, id, "probe_y", 0, INT64_MAX, 100, 0, &p, &n, &more, &err),
                     STORE_OK);
    assert_int_equal(n, 2);
    assert_false(more);
    assert_true(isnan(p[0].value) && isnan(p[1].value));
    assert_int_equal(p[1].wall_ms, 1001);
    free(p);
    assert_int_equal(store_metrics_history(f->s, id, "loss_local", 0, INT64_MAX, 100, 0, &p, &n, &more, &err),
                     STORE_OK);
    assert_int_equal(n, 2);
    assert_true(isinf(p[0].value) && p[0].value > 0);
    assert_int_equal(p[0].step, 3);
    free(p);
    assert_int_equal(store_metrics_history(f->s, id, "nope", 0, INT64_MAX, 100, 0, &p, &n, &more, &err),
                     STORE_OK);
    assert_int_equal(n, 0);
    free(p);

    /* The metrics event carries the points, non-finite values as strings. */
    char type[16];
    json_t *e = last_event(f->s, id, type);
    assert_string_equal(type, "metrics");
    json_t *pts = json_object_get(e, "points");
    assert_int_equal(json_array_size(pts), 7);
    assert_string_equal(jstr(json_array_get(pts, 0), "key"), "loss_total");
    assert_true(json_real_value(json_object_get(json_array_get(pts, 0), "value")) == 0.9);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(pts, 0), "wall_ms")), 1000);
    assert_string_equal(jstr(json_array_get(pts, 1), "value"), "NaN");
    assert_string_equal(jstr(json_array_get(pts, 5), "value"), "Infinity");
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
        assert_int_equal(
            store_metrics_history(f->s, id, "loss_total", after, INT64_MAX, 20, 0, &p, &n, &more, &err),
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
    assert_int_equal(store_metrics_history(f->s, id, "loss_total", 33, INT64_MAX, 20, 0, &p, &n, &more, &err),
                     STORE_OK);
    assert_int_equal(n, 20);
    assert_false(more);
    free(p);
}

static void test_metrics_downsample(void **state)
{
    struct fx *f = *state;
    struct dim_err err = {0};
    int64_t id = running_job(f->s);
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
        assert_int_equal(
            store_metrics_history(f->s, id, "loss_total", after, INT64_MAX, limit, maxp, &p, &n, &more, &err),
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
        store_metrics_history(f->s, id, "loss_total", 990, INT64_MAX, 100, 10, &p, &n, &more, &err), STORE_OK);
    assert_int_equal(n, 10);
    assert_false(more);
    free(p);
}

static void test_metrics_duplicate_and_rewind(void **state)
{
    struct fx *f = *state;
    struct dim_err err = {0};
    int64_t id = running_job(f->s);
    struct store_metric m[10];
    for (int i = 0; i < 10; i++)
        m[i] = (struct store_metric){i % 2 ? "loss_local" : "loss_total", i / 2 + 1, i, 100 + i};
    assert_int_equal(store_metrics_append(f->s, id, 1, m, 10, 5, 50, &err), STORE_OK);
    size_t ev = n_events(f->s, id);

    /* A batch with one duplicate (key, step) writes nothing at all. */
    struct store_metric dup[3] = {
        {"loss_total", 6, 1, 200}, {"loss_local", 6, 1, 200}, {"loss_total", 5, 9, 200}};
    assert_int_equal(store_metrics_append(f->s, id, 1, dup, 3, 6, 60, &err), STORE_CONFLICT);
    assert_non_null(strstr(err.msg, "loss_total"));
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM metrics WHERE job_id = %lld", (long long)id);
    assert_int_equal(raw_int(f->path, sql), 10);
    assert_int_equal(n_events(f->s, id), ev);
    struct store_job j = {0};
    assert_int_equal(store_job_get(f->s, id, &j, &err), STORE_OK);
    assert_int_equal(j.step, 5);
    assert_true(j.images_per_second == 50);
    store_job_clear(&j);
    /* A bad key is refused before anything is written. */
    struct store_metric bad[1] = {{"Loss-Total", 7, 1, 1}};
    assert_int_equal(store_metrics_append(f->s, id, 1, bad, 1, 7, 1, &err), STORE_ERROR);
    assert_int_equal(raw_int(f->path, sql), 10);

    /* Rewind to step 3 deletes steps 4 and 5 of both keys. */
    assert_int_equal(store_metrics_rewind(f->s, id, 1, 3, &err), STORE_OK);
    assert_int_equal(raw_int(f->path, sql), 6);
    snprintf(sql, sizeof(sql), "SELECT MAX(step) FROM metrics WHERE job_id = %lld", (long long)id);
    assert_int_equal(raw_int(f->path, sql), 3);
    assert_int_equal(n_events(f->s, id), ev + 1);
    char type[16];
    json_t *e = last_event(f->s, id, type);
    assert_string_equal(type, "rewind");
    assert_int_equal(json_integer_value(json_object_get(e, "step")), 3);
    json_decref(e);
    assert_int_equal(store_job_get(f->s, id, &j, &err), STORE_OK);
    assert_int_equal(j.step, 3);
    store_job_clear(&j);
    /* Nothing after the step: no event. */
    assert_int_equal(store_metrics_rewind(f->s, id, 1, 3, &err), STORE_OK);
    assert_int_equal(n_events(f->s, id), ev + 1);
    /* The rewound steps can be written again. */
    assert_int_equal(store_metrics_append(f->s, id, 1, dup + 2, 1, 5, 60, &err), STORE_OK);
}

static void test_stale_writes(void **state)
{
    struct fx *f = *state;
    struct dim_err err = {0};
    struct store_job j = {0};
    int64_t id = running_job(f->s);
    struct store_metric m[1] = {{"loss_total", 1, 0.5, 1}};
    char h[65];
    sha256_hex("ck", 2, h);
    struct store_retention keep = {3, 0, "", false};

    /* Back to QUEUED and claimed again: attempt 1 is stale. */
    assert_int_equal(store_job_finish(f->s, id, 1, JOB_QUEUED, NULL, NULL, &err), STORE_OK);
    assert_int_equal(store_job_claim(f->s, NULL, 0, &j, &err), STORE_OK);
    assert_int_equal(j.attempts, 2);
    store_job_clear(&j);
    size_t ev = n_events(f->s, id);
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
    assert_int_equal(n_events(f->s, id), ev);
    assert_int_equal(raw_int(f->path, "SELECT COUNT(*) FROM metrics"), 0);

    /* PAUSED: metrics and the pause checkpoint still land; the rest is stale. */
    assert_int_equal(
        store_job_transition(f->s, id, JOB_MASK(JOB_RUNNING), JOB_PAUSED, NULL, NULL, NULL, &err),
        STORE_OK);
    assert_int_equal(store_metrics_append(f->s, id, 2, m, 1, 1, 5, &err), STORE_OK);
    assert_int_equal(store_checkpoint_put(f->s, id, 2, 1, "ck", 2, h, "{}", &keep, &err), STORE_OK);
    assert_int_equal(store_job_set_total(f->s, id, 2, 99, &err), STORE_STALE);
    assert_int_equal(store_metrics_rewind(f->s, id, 2, 0, &err), STORE_STALE);
    assert_int_equal(store_job_finish(f->s, id, 2, JOB_SUCCEEDED, NULL, NULL, &err), STORE_STALE);
    assert_int_equal(state_of(f->s, id), JOB_PAUSED);

    /* CANCELLED: every write is stale. */
    assert_int_equal(
        store_job_transition(f->s, id, JOB_MASK(JOB_PAUSED), JOB_CANCELLED, NULL, NULL, NULL, &err),
        STORE_OK);
    m[0].step = 2;
    assert_int_equal(store_metrics_append(f->s, id, 2, m, 1, 2, 5, &err), STORE_STALE);
    assert_int_equal(store_checkpoint_put(f->s, id, 2, 2, "ck", 2, h, "{}", &keep, &err),
                     STORE_STALE);
    assert_int_equal(raw_int(f->path, "SELECT COUNT(*) FROM metrics"), 1);
    assert_int_equal(raw_int(f->path, "SELECT COUNT(*) FROM checkpoints"), 1);
    /* A deleted job has no current attempt either. */
    assert_int_equal(store_job_delete(f->s, id, &err), STORE_OK);
    assert_int_equal(store_metrics_append(f->s, id, 2, m, 1, 2, 5, &err), STORE_STALE);
}

/* ---- checkpoints ---- */

static void put_ckpt(struct dimd_store *s, int64_t id, int64_t step, size_t bytes,
                     const char *metrics, const struct store_retention *keep)
{
    struct dim_err err = {0};
    unsigned char *b = malloc(bytes);
    assert_non_null(b);
    for (size_t i = 0; i < bytes; i++)
        b[i] = (unsigned char)(i * 31 + (size_t)step * 7 + (i >> 9));
    char h[65];
    sha256_hex(b, bytes, h);
    int rc = store_checkpoint_put(s, id, 1, step, b, bytes, h, metrics, keep, &err);
    if (rc != STORE_OK)
        fprintf(stderr, "checkpoint_put: %s\n", err.msg);
    assert_int_equal(rc, STORE_OK);
    free(b);
}

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
    struct fx *f = *state;
    struct dim_err err = {0};
    int64_t id = running_job(f->s);
    struct store_retention all = {100, 0, "", false};
    put_ckpt(f->s, id, 100, 5000, "{\"loss_total\":0.5,\"probe_y\":0.8}", &all);
    put_ckpt(f->s, id, 200, 7000, "{}", &all);

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
    json_t *e = last_event(f->s, id, type);
    assert_string_equal(type, "checkpoint");
    assert_int_equal(json_integer_value(json_object_get(e, "step")), 200);
    assert_int_equal(json_integer_value(json_object_get(e, "bytes")), 7000);
    assert_string_equal(jstr(e, "sha256"), h);
    assert_true(json_is_object(json_object_get(e, "metrics")));
    json_decref(e);

    /* Wrong digest, bad metrics JSON: refused, nothing written. */
    size_t ev = n_events(f->s, id);
    assert_int_equal(store_checkpoint_put(f->s, id, 1, 300, "abc", 3, first_sha, "{}", &all, &err),
                     STORE_ERROR);
    assert_non_null(strstr(err.msg, "sha256"));
    sha256_hex("abc", 3, h);
    assert_int_equal(store_checkpoint_put(f->s, id, 1, 300, "abc", 3, h, "[1]", &all, &err),
                     STORE_ERROR);
    assert_int_equal(n_events(f->s, id), ev);
    const int64_t two[] = {100, 200};
    assert_steps(f->s, id, two, 2);

    /* The same step again replaces it. */
    put_ckpt(f->s, id, 200, 3000, "{\"loss_total\":0.25}", &all);
    assert_steps(f->s, id, two, 2);
    assert_int_equal(store_checkpoint_get(f->s, id, 200, &meta, &data, &err), STORE_OK);
    assert_int_equal(meta.bytes, 3000);
    assert_string_equal(meta.metrics_json, "{\"loss_total\":0.25}");
    free(data);
    store_checkpoint_clear(&meta);
}

static void test_checkpoint_retention(void **state)
{
    struct fx *f = *state;
    struct dim_err err = {0};
    /* keep_last 2 + the best 1 by probe_y (max). */
    int64_t id = running_job(f->s);
    struct store_retention kmax = {2, 1, "probe_y", true};
    put_ckpt(f->s, id, 100, 20000, "{\"probe_y\":0.9,\"loss_total\":3}", &kmax);
    put_ckpt(f->s, id, 200, 20000, "{\"probe_y\":0.5,\"loss_total\":1}", &kmax);
    put_ckpt(f->s, id, 300, 20000, "{\"probe_y\":0.6,\"loss_total\":2}", &kmax);
    const int64_t w1[] = {100, 200, 300};
    assert_steps(f->s, id, w1, 3);
    put_ckpt(f->s, id, 400, 20000, "{\"probe_y\":0.7,\"loss_total\":4}", &kmax);
    const int64_t w2[] = {100, 300, 400};
    assert_steps(f->s, id, w2, 3);
    put_ckpt(f->s, id, 500, 20000, "{\"loss_total\":0.1}", &kmax); /* lacks probe_y */
    const int64_t w3[] = {100, 400, 500};
    assert_steps(f->s, id, w3, 3);
    put_ckpt(f->s, id, 600, 20000, "{\"probe_y\":\"NaN\"}", &kmax); /* not a number: never best */
    const int64_t w4[] = {100, 500, 600};
    assert_steps(f->s, id, w4, 3);
    /* Deleted checkpoints' pages are reclaimed at once. */
    assert_int_equal(raw_int(f->path, "PRAGMA freelist_count"), 0);

    /* keep_last 1 + the best 2 by loss_total (min). */
    int64_t id2 = insert_job(f->s, NULL);
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
        put_ckpt(f->s, id2, 10 * (i + 1), 1000, mj, &kmin);
    }
    /* newest: 60 (0.5); best two: 60 (0.5), 20 (1). */
    const int64_t w5[] = {20, 60};
    assert_steps(f->s, id2, w5, 2);
    /* No retention: everything kept. */
    put_ckpt(f->s, id2, 70, 1000, "{}", NULL);
    const int64_t w6[] = {20, 60, 70};
    assert_steps(f->s, id2, w6, 3);
    /* The first job's checkpoints were not touched by the second's retention. */
    assert_steps(f->s, id, w4, 3);
}

static void test_delete_cascades_and_vacuums(void **state)
{
    struct fx *f = *state;
    struct dim_err err = {0};
    int64_t keep = insert_job(f->s, "keep");
    int64_t skip[1] = {keep};
    struct store_job j = {0};
    int64_t id = insert_job(f->s, "big");
    assert_int_equal(store_job_claim(f->s, skip, 1, &j, &err), STORE_OK);
    assert_int_equal(j.id, id);
    store_job_clear(&j);
    struct store_retention all = {100, 0, "", false};
    for (int i = 1; i <= 4; i++)
        put_ckpt(f->s, id, i * 10, 256 * 1024, "{}", &all);
    struct store_metric m[1] = {{"loss_total", 1, 1, 1}};
    assert_int_equal(store_metrics_append(f->s, id, 1, m, 1, 1, 1, &err), STORE_OK);
    /* Not terminal: refused. */
    assert_int_equal(store_job_delete(f->s, id, &err), STORE_CONFLICT);
    assert_non_null(strstr(err.msg, "RUNNING"));
    assert_int_equal(store_job_finish(f->s, id, 1, JOB_SUCCEEDED, NULL, NULL, &err), STORE_OK);

    int64_t pages = raw_int(f->path, "PRAGMA page_count");
    int64_t psize = raw_int(f->path, "PRAGMA page_size");
    assert_true(pages * psize > 4 * 256 * 1024);
    assert_int_equal(store_job_delete(f->s, id, &err), STORE_OK);
    int64_t after = raw_int(f->path, "PRAGMA page_count");
    assert_int_equal(raw_int(f->path, "PRAGMA freelist_count"), 0);
    assert_true((pages - after) * psize >= 4 * 256 * 1024);
    assert_int_equal(store_job_get(f->s, id, &j, &err), STORE_NOT_FOUND);
    const char *tables[] = {"metrics", "checkpoints", "events", "attempts"};
    for (int t = 0; t < 4; t++) {
        char sql[128];
        snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s WHERE job_id = %lld", tables[t],
                 (long long)id);
        assert_int_equal(raw_int(f->path, sql), 0);
    }
    assert_int_equal(store_job_delete(f->s, id, &err), STORE_NOT_FOUND);
    assert_int_equal(state_of(f->s, keep), JOB_QUEUED);
    assert_int_equal(n_events(f->s, keep), 1);
    /* Ids of deleted jobs are not reused. */
    assert_true(insert_job(f->s, "next") > id);
}

/* ---- events ---- */

static void test_events(void **state)
{
    struct fx *f = *state;
    struct dim_err err = {0};
    int64_t other = insert_job(f->s, "other");
    int64_t skip[1] = {other};
    int64_t id = insert_job(f->s, "ev");
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
            assert_string_equal(jstr(d, "state"), want[i][1]);
            if (want[i][2])
                assert_string_equal(jstr(d, "previous"), want[i][2]);
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
    int64_t max_before = raw_int(f->path, "SELECT MAX(id) FROM events");
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
    struct fx *f = *state;
    int64_t id = insert_job(f->s, NULL);
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

/* ---- tokens ---- */

static void test_tokens(void **state)
{
    struct fx *f = *state;
    struct dim_err err = {0};
    char t1[TOKEN_TEXT_MAX], t2[TOKEN_TEXT_MAX];
    struct store_token a = {0}, b = {0};
    assert_int_equal(store_token_create(f->s, "first", SCOPE_WRITE, t1, &a, &err), STORE_OK);
    assert_int_equal(store_token_create(f->s, "ci", SCOPE_READ, t2, &b, &err), STORE_OK);
    assert_int_equal(strlen(t1), 53);
    assert_memory_equal(t1, "dimd_", 5);
    for (int i = 5; i < 53; i++)
        assert_true((t1[i] >= '0' && t1[i] <= '9') || (t1[i] >= 'a' && t1[i] <= 'f'));
    assert_string_not_equal(t1, t2);
    assert_true(b.id > a.id);
    assert_string_equal(a.name, "first");
    assert_true(a.created_ms > 0);

    /* Only the hash is stored. */
    char hash[65], sql[300];
    sha256_hex(t1, strlen(t1), hash);
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM tokens WHERE sha256 = '%s'", hash);
    assert_int_equal(raw_int(f->path, sql), 1);
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM tokens WHERE sha256 = '%s' OR name = '%s'", t1,
             t1);
    assert_int_equal(raw_int(f->path, sql), 0);

    /* The stored hashes, for the auth service (tests/server/service/test_auth.c
     * checks presented tokens against them). */
    struct store_token_hash *h = NULL;
    size_t nh = 0;
    assert_int_equal(store_token_hashes(f->s, &h, &nh, &err), STORE_OK);
    assert_int_equal(nh, 2);
    assert_int_equal(h[0].t.id, a.id);
    assert_string_equal(h[0].t.name, "first");
    assert_int_equal(h[0].t.scope, SCOPE_WRITE);
    assert_string_equal(h[0].sha256, hash);
    sha256_hex(t2, strlen(t2), hash);
    assert_int_equal(h[1].t.id, b.id);
    assert_string_equal(h[1].sha256, hash);
    free(h);

    struct store_token *v = NULL;
    size_t n = 0;
    assert_int_equal(store_token_list(f->s, &v, &n, &err), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].name, "first");
    assert_int_equal(v[0].scope, SCOPE_WRITE);
    assert_string_equal(v[1].name, "ci");
    assert_int_equal(v[1].scope, SCOPE_READ);
    free(v);
    int64_t cnt = 0;
    assert_int_equal(store_token_count(f->s, &cnt, &err), STORE_OK);
    assert_int_equal(cnt, 2);

    assert_int_equal(store_token_delete(f->s, a.id, &err), STORE_OK);
    assert_int_equal(store_token_delete(f->s, a.id, &err), STORE_NOT_FOUND);
    char t3[TOKEN_TEXT_MAX];
    assert_int_equal(store_token_create(f->s, "third", SCOPE_READ, t3, NULL, &err), STORE_OK);
    assert_int_equal(store_token_count(f->s, &cnt, &err), STORE_OK);
    assert_int_equal(cnt, 2);
    assert_int_equal(store_token_create(f->s, "", SCOPE_READ, t1, NULL, &err), STORE_ERROR);
    assert_int_equal(store_token_create(f->s, "x", (enum scope)7, t1, NULL, &err),
                     STORE_ERROR);
}

/* ---- concurrency ---- */

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
            store_metrics_history(w->s, w->id, "loss_total", 0, INT64_MAX, 1000, 20, &p, &n, &more, &err) !=
                STORE_OK ||
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

/* ---- models ---- */

/* A model version's inputs: checkpoint bytes and an index, from a seed. */
struct mv_input {
    unsigned char *ckpt;
    size_t bytes;
    char sha[65];
    float *vectors;
    uint16_t *labels;
    struct store_model_index index;
};

static void mv_input_make(struct mv_input *in, size_t bytes, int64_t n, int dim, unsigned seed)
{
    memset(in, 0, sizeof(*in));
    in->bytes = bytes;
    in->ckpt = malloc(bytes);
    assert_non_null(in->ckpt);
    for (size_t i = 0; i < bytes; i++)
        in->ckpt[i] = (unsigned char)(i * 131 + seed * 17 + (i >> 11));
    sha256_hex(in->ckpt, bytes, in->sha);
    if (n > 0) {
        in->vectors = malloc((size_t)n * (size_t)dim * sizeof(float));
        in->labels = malloc((size_t)n * sizeof(uint16_t));
        assert_non_null(in->vectors);
        assert_non_null(in->labels);
        for (int64_t i = 0; i < n * dim; i++)
            in->vectors[i] = (float)(i % 97) / 97.0f - 0.5f + (float)seed * 1e-3f;
        in->vectors[0] = -0.0f; /* bit patterns round-trip, not just values */
        for (int64_t i = 0; i < n; i++)
            in->labels[i] = (uint16_t)((i * 7 + seed) % 65536);
        in->labels[n - 1] = 65535;
    }
    in->index = (struct store_model_index){in->vectors, in->labels, n, dim};
}

static void mv_input_free(struct mv_input *in)
{
    free(in->ckpt);
    free(in->vectors);
    free(in->labels);
}

static const char SRC_SHA[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/* Creates the next version of name from in; returns its number. */
static int mv_create(struct dimd_store *s, const char *name, int64_t job_id, int64_t step,
                     const struct mv_input *in, bool pinned)
{
    struct dim_err err = {0};
    struct store_model_version v = {0};
    int rc = store_model_create(s, name, job_id, step, SRC_SHA, in->ckpt, in->bytes, in->sha,
                                "{\"preset\":\"basic32x32\",\"y_dim\":64}", "{\"probe_y\":0.81}",
                                pinned, &in->index, &v, &err);
    if (rc != STORE_OK)
        fprintf(stderr, "model_create: %s\n", err.msg);
    assert_int_equal(rc, STORE_OK);
    assert_string_equal(v.name, name);
    assert_true(v.version >= 1);
    assert_int_equal(v.job_id, job_id);
    assert_int_equal(v.step, step);
    assert_string_equal(v.sha256, in->sha);
    assert_string_equal(v.source_sha256, SRC_SHA);
    assert_int_equal(v.bytes, (int64_t)in->bytes);
    assert_true(v.created_ms > 0);
    assert_int_equal(v.pinned, pinned);
    assert_int_equal(v.index_images, in->index.n);
    assert_int_equal(v.index_dim, in->index.n > 0 ? in->index.dim : 0);
    int ver = v.version;
    store_model_version_clear(&v);
    return ver;
}

static void free_versions(struct store_model_version *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        store_model_version_clear(&v[i]);
    free(v);
}

static void test_models_create_list_get(void **state)
{
    struct fx *f = *state;
    struct dim_err err = {0};
    int64_t job = running_job(f->s);
    struct mv_input a, b, c;
    mv_input_make(&a, 5000, 37, 5, 1);
    mv_input_make(&b, 7001, 0, 0, 2); /* no index */
    mv_input_make(&c, 300, 3, 2, 3);
    assert_int_equal(mv_create(f->s, "shoes", job, 100, &a, false), 1);
    assert_int_equal(mv_create(f->s, "shoes", job, 200, &b, false), 2);
    assert_int_equal(mv_create(f->s, "boots", job, 300, &c, true), 1);

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
    free_versions(v, n);

    /* versions: oldest first, every field. */
    assert_int_equal(store_model_versions(f->s, "shoes", &v, &n, &err), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(v[0].version, 1);
    assert_int_equal(v[0].job_id, job);
    assert_int_equal(v[0].step, 100);
    assert_string_equal(v[0].sha256, a.sha);
    assert_string_equal(v[0].source_sha256, SRC_SHA);
    assert_int_equal(v[0].bytes, 5000);
    assert_false(v[0].pinned);
    assert_string_equal(v[0].info_json, "{\"preset\":\"basic32x32\",\"y_dim\":64}");
    assert_string_equal(v[0].metrics_json, "{\"probe_y\":0.81}");
    assert_int_equal(v[0].index_images, 37);
    assert_int_equal(v[0].index_dim, 5);
    assert_int_equal(v[1].version, 2);
    assert_int_equal(v[1].index_images, 0);
    assert_int_equal(v[1].index_dim, 0);
    free_versions(v, n);
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
    raw_exec(f->path,
             "UPDATE model_versions SET data = x'00' WHERE name = 'shoes' AND version = 1");
    assert_int_equal(store_model_get(f->s, "shoes", 1, &g, NULL, &vec, &lab, &err), STORE_OK);
    assert_memory_equal(vec, a.vectors, 37 * 5 * sizeof(float));
    free(vec);
    free(lab);
    store_model_version_clear(&g);
    assert_int_equal(store_model_get(f->s, "shoes", 1, &g, &ck, NULL, NULL, &err), STORE_ERROR);
    assert_int_equal(err.code, DIM_EFORMAT);
    assert_null(ck);

    mv_input_free(&a);
    mv_input_free(&b);
    mv_input_free(&c);
}

static void test_models_versions_not_reused(void **state)
{
    struct fx *f = *state;
    struct dim_err err = {0};
    struct mv_input a;
    mv_input_make(&a, 1000, 4, 3, 7);
    for (int i = 1; i <= 3; i++)
        assert_int_equal(mv_create(f->s, "m", 0, i, &a, false), i);
    /* Deleting the newest does not give its number back. */
    assert_int_equal(store_model_delete(f->s, "m", 3, &err), STORE_OK);
    assert_int_equal(store_model_delete(f->s, "m", 3, &err), STORE_NOT_FOUND);
    assert_non_null(strstr(err.msg, "no version 3"));
    assert_int_equal(mv_create(f->s, "m", 0, 4, &a, false), 4);
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
    assert_int_equal(raw_int(f->path, "SELECT COUNT(*) FROM model_versions"), 0);
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
    free_versions(v, n);
    assert_int_equal(store_model_get(f->s, "m", 0, &g, NULL, NULL, NULL, &err), STORE_NOT_FOUND);
    assert_non_null(strstr(err.msg, "no versions"));
    assert_int_equal(store_model_delete(f->s, "m", 0, &err), STORE_NOT_FOUND);
    assert_int_equal(store_model_delete(f->s, "nope", 1, &err), STORE_NOT_FOUND);
    assert_non_null(strstr(err.msg, "no model nope"));
    assert_int_equal(mv_create(f->s, "m", 0, 5, &a, false), 5);
    /* Another name counts on its own. */
    assert_int_equal(mv_create(f->s, "m2", 0, 1, &a, false), 1);
    mv_input_free(&a);
}

static void test_models_survive_job_delete(void **state)
{
    struct fx *f = *state;
    struct dim_err err = {0};
    int64_t job = running_job(f->s);
    struct store_retention all = {100, 0, "", false};
    put_ckpt(f->s, job, 100, 4000, "{}", &all);
    struct mv_input a;
    mv_input_make(&a, 3000, 10, 4, 5);
    assert_int_equal(mv_create(f->s, "keep", job, 100, &a, false), 1);
    assert_int_equal(store_job_finish(f->s, job, 1, JOB_SUCCEEDED, NULL, NULL, &err), STORE_OK);
    assert_int_equal(store_job_delete(f->s, job, &err), STORE_OK);
    assert_int_equal(raw_int(f->path, "SELECT COUNT(*) FROM checkpoints"), 0);
    assert_int_equal(raw_int(f->path, "SELECT job_id IS NULL FROM model_versions"), 1);

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
    assert_int_equal(store_model_create(f->s, "other", job, 1, SRC_SHA, a.ckpt, a.bytes, a.sha,
                                        NULL, NULL, false, NULL, &v, &err),
                     STORE_NOT_FOUND);
    assert_non_null(strstr(err.msg, "no job"));
    assert_int_equal(raw_int(f->path, "SELECT COUNT(*) FROM models WHERE name = 'other'"), 0);
    mv_input_free(&a);
}

static void test_models_pin(void **state)
{
    struct fx *f = *state;
    struct dim_err err = {0};
    struct mv_input a;
    mv_input_make(&a, 2000, 0, 0, 9);
    const uint64_t g0 = store_models_generation(f->s);
    assert_int_equal(mv_create(f->s, "p", 0, 1, &a, false), 1);
    const uint64_t g1 = store_models_generation(f->s);
    assert_true(g1 > g0); /* a new version moves the generation ... */
    assert_int_equal(mv_create(f->s, "p", 0, 2, &a, true), 2);

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
    assert_int_equal(raw_int(f->path, "SELECT COUNT(*) FROM model_versions"), 2);

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
    mv_input_free(&a);
}

static void test_models_refused(void **state)
{
    struct fx *f = *state;
    struct dim_err err = {0};
    struct mv_input a;
    mv_input_make(&a, 1500, 4, 2, 11);
    struct store_model_version v = {0};

    /* The given sha256 is not the bytes'. */
    char wrong[65];
    memcpy(wrong, a.sha, 65);
    wrong[10] = wrong[10] == '0' ? '1' : '0';
    assert_int_equal(store_model_create(f->s, "m", 0, 1, SRC_SHA, a.ckpt, a.bytes, wrong, NULL,
                                        NULL, false, &a.index, &v, &err),
                     STORE_ERROR);
    assert_int_equal(err.code, DIM_EINVAL);
    assert_non_null(strstr(err.msg, "sha256"));
    assert_non_null(strstr(err.msg, a.sha));
    /* Not hex, bad source sha, empty checkpoint, bad JSON, bad index. */
    assert_int_equal(store_model_create(f->s, "m", 0, 1, SRC_SHA, a.ckpt, a.bytes, "abc", NULL,
                                        NULL, false, NULL, &v, &err),
                     STORE_ERROR);
    assert_int_equal(store_model_create(f->s, "m", 0, 1, "x", a.ckpt, a.bytes, a.sha, NULL, NULL,
                                        false, NULL, &v, &err),
                     STORE_ERROR);
    assert_int_equal(store_model_create(f->s, "m", 0, 1, SRC_SHA, a.ckpt, 0, a.sha, NULL, NULL,
                                        false, NULL, &v, &err),
                     STORE_ERROR);
    assert_int_equal(store_model_create(f->s, "m", 0, 1, SRC_SHA, a.ckpt, a.bytes, a.sha, "[1]",
                                        NULL, false, NULL, &v, &err),
                     STORE_ERROR);
    assert_non_null(strstr(err.msg, "info"));
    assert_int_equal(store_model_create(f->s, "m", 0, 1, SRC_SHA, a.ckpt, a.bytes, a.sha, NULL,
                                        "{bad", false, NULL, &v, &err),
                     STORE_ERROR);
    struct store_model_index bad = a.index;
    bad.dim = 0;
    assert_int_equal(store_model_create(f->s, "m", 0, 1, SRC_SHA, a.ckpt, a.bytes, a.sha, NULL,
                                        NULL, false, &bad, &v, &err),
                     STORE_ERROR);
    bad = a.index;
    bad.labels = NULL;
    assert_int_equal(store_model_create(f->s, "m", 0, 1, SRC_SHA, a.ckpt, a.bytes, a.sha, NULL,
                                        NULL, false, &bad, &v, &err),
                     STORE_ERROR);
    /* Nothing was written, not even the model row. */
    assert_int_equal(raw_int(f->path, "SELECT COUNT(*) FROM models"), 0);
    assert_int_equal(raw_int(f->path, "SELECT COUNT(*) FROM model_versions"), 0);

    /* Names: ^[a-z0-9][a-z0-9_-]{0,62}$ */
    char n63[64], n64[65];
    memset(n63, 'a', 63);
    n63[63] = 0;
    memset(n64, 'a', 64);
    n64[64] = 0;
    const char *badn[] = {"", "Shoes", "-x", "_x", "a b", "a/b", "a.b", "sh\xc3\xb6", n64, NULL};
    for (size_t i = 0; i < sizeof(badn) / sizeof(*badn); i++) {
        err.code = 0;
        assert_int_equal(store_model_create(f->s, badn[i], 0, 1, SRC_SHA, a.ckpt, a.bytes, a.sha,
                                            NULL, NULL, false, NULL, &v, &err),
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
    assert_int_equal(raw_int(f->path, "SELECT COUNT(*) FROM models"), 0);
    const char *good[] = {"a", "0", "a-b_c", "9z--__", n63};
    for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
        assert_int_equal(mv_create(f->s, good[i], 0, 1, &a, false), 1);
    mv_input_free(&a);
}

static void test_models_delete_reclaims(void **state)
{
    struct fx *f = *state;
    struct dim_err err = {0};
    struct mv_input small, big;
    mv_input_make(&small, 1000, 10, 8, 1);
    mv_input_make(&big, 2 * 1024 * 1024, 4096, 64, 2); /* 2 MiB + 1 MiB of index */
    assert_int_equal(mv_create(f->s, "big", 0, 1, &small, false), 1);
    assert_int_equal(mv_create(f->s, "big", 0, 2, &big, false), 2);
    int64_t pages = raw_int(f->path, "PRAGMA page_count");
    int64_t psize = raw_int(f->path, "PRAGMA page_size");
    int64_t freed = (int64_t)big.bytes + 4096 * 64 * 4 + 4096 * 2;
    assert_true(pages * psize > freed);
    assert_int_equal(store_model_delete(f->s, "big", 2, &err), STORE_OK);
    int64_t after = raw_int(f->path, "PRAGMA page_count");
    assert_int_equal(raw_int(f->path, "PRAGMA freelist_count"), 0);
    assert_true((pages - after) * psize >= freed);
    /* The other version is intact. */
    void *ck = NULL;
    struct store_model_version g = {0};
    assert_int_equal(store_model_get(f->s, "big", 0, &g, &ck, NULL, NULL, &err), STORE_OK);
    assert_int_equal(g.version, 1);
    assert_memory_equal(ck, small.ckpt, small.bytes);
    free(ck);
    store_model_version_clear(&g);
    mv_input_free(&small);
    mv_input_free(&big);
}

/* The dashboard's reads: a job's latest values and newest event id, history
 * ranges (to_step), and model projections (stored once, gone with the version). */
static void test_dashboard_reads(void **state)
{
    struct fx *f = *state;
    struct dim_err err = {0};
    int64_t id = running_job(f->s);
    struct store_job j = {0};
    assert_int_equal(store_job_get(f->s, id, &j, &err), STORE_OK);
    assert_string_equal(j.latest_json, "{}");
    int64_t ev0 = j.last_event_id;
    assert_true(ev0 > 0); /* submission and claim are events */
    store_job_clear(&j);
    struct store_metric m[] = {{"loss_total", 1, 0.9, 1000}, {"probe_y", 1, 0.5, 1000},
                               {"loss_total", 2, 0.7, 1001}, {"loss_local", 2, INFINITY, 1001},
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
    json_t *e = last_event(f->s, id, type);
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
        store_metrics_history(f->s, id, "loss_total", 1, 2, 100, 0, &p, &n, &more, &err),
        STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(p[0].step, 2);
    assert_false(more);
    free(p);
    assert_int_equal(
        store_metrics_history(f->s, id, "loss_total", 0, 2, 1, 0, &p, &n, &more, &err), STORE_OK);
    assert_int_equal(n, 1);
    assert_true(more); /* step 2 remains in range */
    free(p);

    /* projections */
    struct mv_input in;
    mv_input_make(&in, 1000, 10, 8, 1);
    assert_int_equal(mv_create(f->s, "proj", 0, 1, &in, false), 1);
    assert_int_equal(mv_create(f->s, "proj", 0, 2, &in, false), 2);
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
    assert_int_equal(raw_int(f->path, "SELECT COUNT(*) FROM model_projections"), 0);
    mv_input_free(&in);
}

/* Evaluations belong to a version: stored with their grid, listed oldest first,
 * gone with the version; the job that measured becomes NULL when deleted. */
static void test_evaluations(void **state)
{
    struct fx *f = *state;
    struct dim_err err = {0};
    struct mv_input in;
    mv_input_make(&in, 1000, 10, 8, 1);
    assert_int_equal(mv_create(f->s, "ev", 0, 1, &in, false), 1);
    assert_int_equal(mv_create(f->s, "ev", 0, 2, &in, false), 2);
    int64_t job = insert_job(f->s, NULL);
    const unsigned char png[5] = {0x89, 'P', 'N', 'G', 0};
    int64_t id1 = 0, id2 = 0;
    assert_int_equal(store_evaluation_add(f->s, "ev", 1, job, "{\"mine\":1.5}", png, 5, &id1,
                                          &err),
                     STORE_OK);
    assert_int_equal(store_evaluation_add(f->s, "ev", 1, 999, "{\"ndm\":0.5}", NULL, 0, &id2,
                                          &err),
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
    assert_int_equal(raw_int(f->path, "SELECT COUNT(*) FROM model_evaluations WHERE job_id IS "
                                      "NULL"),
                     2);
    /* deleting the version takes its evaluations */
    assert_int_equal(store_model_delete(f->s, "ev", 1, &err), STORE_OK);
    assert_int_equal(raw_int(f->path, "SELECT COUNT(*) FROM model_evaluations"), 0);
    assert_int_equal(store_evaluation_list(f->s, "Bad", 1, &e, &n, &err), STORE_ERROR);
    mv_input_free(&in);
}

/* The one parser of version names, for paths, queries and evaluation bodies. */
static void test_model_version_parse(void **state)
{
    (void)state;
    int v = -1;
    assert_true(model_version_parse("latest", &v) && v == 0);
    assert_true(model_version_parse("v3", &v) && v == 3);
    assert_true(model_version_parse("12", &v) && v == 12);
    assert_true(model_version_parse("v2147483647", &v) && v == 2147483647);
    const char *bad[] = {NULL, "", "v", "v0", "0", "-1", "v-1", "+3", " 3", "3 ", "3x", "V3",
                         "vv3", "v2147483648", "99999999999999999999", "Latest"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = -1;
        assert_false(model_version_parse(bad[i], &v));
        assert_int_equal(v, -1);
    }
}

static void test_upgrade_from_2_gains_models(void **state)
{
    struct fx *f = *state;
    struct dim_err err = {0};
    assert_int_equal(store_open_at_version(&f->s, f->path, 2, &err), STORE_OK);
    assert_int_equal(store_schema_version(f->s), 2);
    int64_t job = running_job(f->s);
    struct store_retention all = {100, 0, "", false};
    put_ckpt(f->s, job, 50, 3000, "{\"probe_y\":0.5}", &all);
    assert_int_equal(store_job_finish(f->s, job, 1, JOB_SUCCEEDED, NULL, NULL, &err), STORE_OK);
    struct store_model_version *v = NULL;
    size_t n = 0;
    assert_int_equal(store_model_list(f->s, &v, &n, &err), STORE_ERROR); /* no models table yet */
    assert_non_null(strstr(err.msg, "models"));
    store_close(f->s);
    f->s = NULL;

    assert_int_equal(store_open(&f->s, f->path, &err), STORE_OK);
    assert_int_equal(store_schema_version(f->s), store_schema_latest());
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), store_schema_latest());
    assert_int_equal(raw_int(f->path, "PRAGMA auto_vacuum"), 2);
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
    free_versions(v, n);
    /* The foreign key to jobs works in the upgraded file too. */
    assert_int_equal(store_job_delete(f->s, job, &err), STORE_OK);
    assert_int_equal(store_model_get(f->s, "old", 1, &out, NULL, NULL, NULL, &err), STORE_OK);
    assert_int_equal(out.job_id, 0);
    store_model_version_clear(&out);
}

static void test_concurrency(void **state)
{
    struct fx *f = *state;
    struct dim_err err = {0};
    int64_t a = insert_job(f->s, "a"), b = insert_job(f->s, "b");
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
        assert_int_equal(raw_int(f->path, sql), CONC_BATCHES * CONC_POINTS);
        assert_int_equal(n_events(f->s, w[i].id), 2 + CONC_BATCHES);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_fips_vectors),
        cmocka_unit_test_setup_teardown(test_open_fresh_migrates, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_in_place_keeps_jobs, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_refuses_newer_schema, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_job_insert_get_list, fx_setup_open, fx_teardown),
        cmocka_unit_test_setup_teardown(test_job_transitions, fx_setup_open, fx_teardown),
        cmocka_unit_test_setup_teardown(test_job_claim_order, fx_setup_open, fx_teardown),
        cmocka_unit_test_setup_teardown(test_recover, fx_setup_open, fx_teardown),
        cmocka_unit_test_setup_teardown(test_idempotency, fx_setup_open, fx_teardown),
        cmocka_unit_test_setup_teardown(test_queue_full, fx_setup_open, fx_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_append_summary_history, fx_setup_open,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_downsample, fx_setup_open, fx_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_duplicate_and_rewind, fx_setup_open,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_stale_writes, fx_setup_open, fx_teardown),
        cmocka_unit_test_setup_teardown(test_checkpoints, fx_setup_open, fx_teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_retention, fx_setup_open, fx_teardown),
        cmocka_unit_test_setup_teardown(test_delete_cascades_and_vacuums, fx_setup_open,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_events, fx_setup_open, fx_teardown),
        cmocka_unit_test_setup_teardown(test_event_wait, fx_setup_open, fx_teardown),
        cmocka_unit_test_setup_teardown(test_tokens, fx_setup_open, fx_teardown),
        cmocka_unit_test_setup_teardown(test_models_create_list_get, fx_setup_open, fx_teardown),
        cmocka_unit_test_setup_teardown(test_models_versions_not_reused, fx_setup_open,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_models_survive_job_delete, fx_setup_open, fx_teardown),
        cmocka_unit_test_setup_teardown(test_models_pin, fx_setup_open, fx_teardown),
        cmocka_unit_test_setup_teardown(test_models_refused, fx_setup_open, fx_teardown),
        cmocka_unit_test_setup_teardown(test_models_delete_reclaims, fx_setup_open, fx_teardown),
        cmocka_unit_test_setup_teardown(test_dashboard_reads, fx_setup_open, fx_teardown),
        cmocka_unit_test_setup_teardown(test_evaluations, fx_setup_open, fx_teardown),
        cmocka_unit_test(test_model_version_parse),
        cmocka_unit_test_setup_teardown(test_upgrade_from_2_gains_models, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_concurrency, fx_setup_open, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

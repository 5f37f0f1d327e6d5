/* storefix.h - shared fixture and helpers of the store's tests
 * (tests/server/store/test_*.c, tests/server/service/test_auth.c): a fresh
 * database file in its own mkdtemp directory under /tmp per test, removed
 * afterwards; a raw SQLite connection to look at what the store wrote; jobs in
 * a given state; events; checkpoints; model version inputs.
 * Header-only (static inline): tests/support/ .c files are compiled without the
 * server's include folders and linked into the core tests too, which do not
 * link the store. Include it after <cmocka.h>'s prerequisites, as below.
 * Depends on cmocka, jansson, sqlite3, store/ (every concern), util/sha256.h.
 */
#ifndef DIMD_TESTS_STOREFIX_H
#define DIMD_TESTS_STOREFIX_H

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "store/checkpoints.h"
#include "store/events.h"
#include "store/jobs.h"
#include "store/models.h"
#include "store/store.h"
#include "util/sha256.h"

/* The source checkpoint sha256 of the model versions the tests create. */
#define STOREFIX_SRC_SHA "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

struct storefix {
    char dir[64];
    char path[128];
    struct dimd_store *s;
};

static inline int storefix_setup(void **state)
{
    struct storefix *f = calloc(1, sizeof(*f));
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
static inline int storefix_setup_open(void **state)
{
    if (storefix_setup(state) != 0)
        return -1;
    struct storefix *f = *state;
    struct dim_err err = {0};
    return store_open(&f->s, f->path, &err) == STORE_OK ? 0 : -1;
}

static inline int storefix_teardown(void **state)
{
    struct storefix *f = *state;
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

/* One integer from a raw connection to the database file (-12345 on no row). */
static inline int64_t storefix_raw_int(const char *path, const char *sql)
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

static inline void storefix_raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static inline int64_t storefix_insert_job(struct dimd_store *s, const char *name)
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
static inline int64_t storefix_running_job(struct dimd_store *s)
{
    struct dim_err err = {0};
    int64_t id = storefix_insert_job(s, NULL);
    struct store_job j = {0};
    assert_int_equal(store_job_claim(s, NULL, 0, &j, &err), STORE_OK);
    assert_int_equal(j.id, id);
    assert_int_equal(j.attempts, 1);
    store_job_clear(&j);
    return id;
}

static inline enum job_state storefix_state_of(struct dimd_store *s, int64_t id)
{
    struct dim_err err = {0};
    struct store_job j = {0};
    assert_int_equal(store_job_get(s, id, &j, &err), STORE_OK);
    enum job_state st = j.state;
    store_job_clear(&j);
    return st;
}

static inline size_t storefix_n_events(struct dimd_store *s, int64_t id)
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
static inline json_t *storefix_last_event(struct dimd_store *s, int64_t id, char type[16])
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

static inline const char *storefix_jstr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static inline void storefix_put_ckpt(struct dimd_store *s, int64_t id, int64_t step, size_t bytes,
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

/* A model version's inputs: checkpoint bytes and an index, from a seed. */
struct storefix_mv {
    unsigned char *ckpt;
    size_t bytes;
    char sha[65];
    float *vectors;
    uint16_t *labels;
    struct store_model_index index;
};

static inline void storefix_mv_make(struct storefix_mv *in, size_t bytes, int64_t n, int dim,
                                    unsigned seed)
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

static inline void storefix_mv_free(struct storefix_mv *in)
{
    free(in->ckpt);
    free(in->vectors);
    free(in->labels);
}

/* Creates the next version of name from in; returns its number. */
static inline int storefix_mv_create(struct dimd_store *s, const char *name, int64_t job_id,
                                     int64_t step, const struct storefix_mv *in, bool pinned)
{
    struct dim_err err = {0};
    struct store_model_version v = {0};
    int rc = store_model_create(s, name, job_id, step, STOREFIX_SRC_SHA, in->ckpt, in->bytes,
                                in->sha, "{\"preset\":\"basic32x32\",\"y_dim\":64}",
                                "{\"probe_y\":0.81}", pinned, &in->index, &v, &err);
    if (rc != STORE_OK)
        fprintf(stderr, "model_create: %s\n", err.msg);
    assert_int_equal(rc, STORE_OK);
    assert_string_equal(v.name, name);
    assert_true(v.version >= 1);
    assert_int_equal(v.job_id, job_id);
    assert_int_equal(v.step, step);
    assert_string_equal(v.sha256, in->sha);
    assert_string_equal(v.source_sha256, STOREFIX_SRC_SHA);
    assert_int_equal(v.bytes, (int64_t)in->bytes);
    assert_true(v.created_ms > 0);
    assert_int_equal(v.pinned, pinned);
    assert_int_equal(v.index_images, in->index.n);
    assert_int_equal(v.index_dim, in->index.n > 0 ? in->index.dim : 0);
    int ver = v.version;
    store_model_version_clear(&v);
    return ver;
}

static inline void storefix_free_versions(struct store_model_version *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        store_model_version_clear(&v[i]);
    free(v);
}

#endif

/* test_inference.c - the inference service (service/inference.h) against a
 * real store file: encodes equal core's dim_model_encode run directly, for
 * every tap and through batching, chunking, concurrency and cache eviction; the
 * queue limit; not-found and corrupt versions; neighbours; stop with callers
 * waiting. About 890 lines in one file because every case drives the same
 * service over the same store fixture; the search itself is tested in
 * test_neighbors.c.
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "dim/checkpoint.h"
#include "dim/model.h"
#include "fixtures.h"
#include "service/inference.h"
#include "util/sha256.h"
#include "store/models.h"
#include "store/store.h"

#define IDX_N 300
#define PLANT 123 /* index position of the planted nearest vector */
#define TOL 1e-5f

static const char SRC_SHA[] = "0000000000000000000000000000000000000000000000000000000000000000";

/* the shared fixture: one store with model "shoes" v1 (seed 1, with an index)
 * and v2 (seed 2, with an index), "plain" v1 (no index) and "corrupt" v1 (bytes
 * that are not a checkpoint) */
static char *g_dir;
static struct dimd_store *g_store;
static struct dim_model *g_m[3]; /* [1], [2]: shoes v1, v2 */
static size_t g_in;              /* floats per input */
static float *g_planted_x;       /* the input whose Y is planted in v1's index */

/* ---- helpers ---- */

static struct dim_config tiny_config(uint64_t seed)
{
    struct dim_config c;
    dim_config_default(&c);
    c.preset = DIM_BASIC32;
    c.mi_dim = 32;
    c.y_dim = 16;
    c.seed = seed;
    return c;
}

/* n deterministic inputs in [-1, 1] from seed. */
static float *make_inputs(size_t n, uint32_t seed)
{
    float *x = malloc(sizeof(float) * n * g_in);
    assert_non_null(x);
    uint32_t s = seed * 2654435761u + 12345u;
    for (size_t i = 0; i < n * g_in; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)(s >> 8) / (float)(1u << 24) * 2.0f - 1.0f;
    }
    return x;
}

/* dim_model_encode on m, run directly, one image per pass, tap LOCAL averaged
 * over locations. */
static float *direct(const struct dim_model *m, const float *x, size_t n, enum dim_tap tap,
                     size_t batch)
{
    struct dim_encode_ws ws;
    struct dim_err err;
    assert_int_equal(dim_encode_ws_create(&ws, m, batch, &err), 0);
    size_t ts = dim_model_tap_size(m, tap);
    size_t hw = (size_t)m->local_h * (size_t)m->local_w;
    size_t dim = tap == DIM_TAP_LOCAL ? (size_t)m->local_c : ts;
    float *out = malloc(sizeof(float) * n * dim);
    assert_non_null(out);
    for (size_t at = 0; at < n; at += batch) {
        size_t B = n - at < batch ? n - at : batch;
        const float *f = dim_model_encode(m, &ws, x + at * g_in, B, tap);
        for (size_t b = 0; b < B; b++) {
            if (tap != DIM_TAP_LOCAL) {
                memcpy(out + (at + b) * dim, f + b * ts, sizeof(float) * ts);
                continue;
            }
            for (size_t c = 0; c < dim; c++) {
                double s = 0;
                for (size_t i = 0; i < hw; i++)
                    s += f[b * ts + c * hw + i];
                out[(at + b) * dim + c] = (float)(s / (double)hw);
            }
        }
    }
    dim_encode_ws_free(&ws);
    return out;
}

static float g_maxdiff; /* largest |difference| seen by rows_close, for the report */

static void rows_close(const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (d > g_maxdiff)
            g_maxdiff = d;
        if (!(d <= TOL * (1.0f + fabsf(b[i]))))
            fail_msg("value %zu: %.9g vs %.9g", i, (double)a[i], (double)b[i]);
    }
}

static void create_version(const char *name, const void *ck, size_t bytes,
                           const struct store_model_index *idx, int want_version)
{
    char hex[65];
    sha256_hex(ck, bytes, hex);
    struct store_model_version v;
    memset(&v, 0, sizeof v);
    struct dim_err err;
    if (store_model_create(g_store, name, 0, 100, SRC_SHA, ck, bytes, hex, "{}", "{}", false, idx,
                           &v, &err) != STORE_OK)
        fail_msg("store_model_create %s: %s", name, err.msg);
    assert_int_equal(v.version, want_version);
    store_model_version_clear(&v);
}

/* A model from seed, saved (inference-only) as the next version of name, with
 * an index of IDX_N random unit vectors (when with_index) in which vector PLANT
 * is the direction of the Y of g_planted_x. */
static struct dim_model *make_version(const char *name, uint64_t seed, bool with_index,
                                      int want_version)
{
    struct dim_config c = tiny_config(seed);
    struct dim_model *m = NULL;
    struct dim_err err;
    if (dim_model_create(&m, &c, false, &err) != 0)
        fail_msg("dim_model_create: %s", err.msg);
    struct dim_membuf buf = {0};
    struct dim_writer w = {dim_membuf_write, &buf};
    if (dim_checkpoint_write(m, NULL, &w, &err) != 0)
        fail_msg("dim_checkpoint_write: %s", err.msg);
    struct store_model_index idx = {0};
    float *vec = NULL;
    uint16_t *lab = NULL;
    if (with_index) {
        int d = c.y_dim;
        vec = malloc(sizeof(float) * IDX_N * (size_t)d);
        lab = malloc(sizeof(uint16_t) * IDX_N);
        assert_true(vec && lab);
        uint32_t s = (uint32_t)seed * 7919u + 1u;
        for (int i = 0; i < IDX_N; i++) {
            double ss = 0;
            for (int j = 0; j < d; j++) {
                s = s * 1664525u + 1013904223u;
                vec[i * d + j] = (float)(s >> 8) / (float)(1u << 24) - 0.5f;
                ss += (double)vec[i * d + j] * vec[i * d + j];
            }
            for (int j = 0; j < d; j++)
                vec[i * d + j] = (float)(vec[i * d + j] / sqrt(ss));
            lab[i] = (uint16_t)(i % 10);
        }
        float *y = direct(m, g_planted_x, 1, DIM_TAP_Y, 1);
        double ss = 0;
        for (int j = 0; j < d; j++)
            ss += (double)y[j] * y[j];
        for (int j = 0; j < d; j++)
            vec[PLANT * d + j] = (float)(y[j] / sqrt(ss));
        lab[PLANT] = 7;
        free(y);
        idx = (struct store_model_index){vec, lab, IDX_N, d};
    }
    create_version(name, buf.p, buf.n, with_index ? &idx : NULL, want_version);
    free(buf.p);
    free(vec);
    free(lab);
    return m;
}

static int group_setup(void **state)
{
    (void)state;
    g_dir = fixtures_mkdtemp();
    if (!g_dir)
        return -1;
    char path[600];
    struct dim_err err;
    if (store_open(&g_store, fixtures_join(path, sizeof path, g_dir, "state.db"), &err) != 0) {
        fprintf(stderr, "store_open: %s\n", err.msg);
        return -1;
    }
    g_in = 1 * 32 * 32;
    g_planted_x = make_inputs(1, 777);
    g_m[1] = make_version("shoes", 1, true, 1);
    g_m[2] = make_version("shoes", 2, true, 2);
    dim_model_free(make_version("plain", 3, false, 1));
    const char junk[] = "this is not a dimd checkpoint at all";
    create_version("corrupt", junk, sizeof junk, NULL, 1);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    dim_model_free(g_m[1]);
    dim_model_free(g_m[2]);
    free(g_planted_x);
    store_close(g_store);
    fixtures_rmtree(g_dir);
    free(g_dir);
    return 0;
}

static struct inference *start(int threads, int batch_max, int wait_ms, int queue_max, int cache_max)
{
    struct inference_config cfg = {threads, 2, batch_max, wait_ms, queue_max, cache_max};
    struct inference *e = NULL;
    struct dim_err err;
    if (inference_start(&e, g_store, &cfg, &err) != INFERENCE_OK)
        fail_msg("inference_start: %s", err.msg);
    return e;
}

static float *encode_ok(struct inference *e, const char *name, int version, enum dim_tap tap,
                        const float *x, size_t n, struct inference_model_info *info)
{
    float *out = NULL;
    struct dim_err err;
    int rc = inference_encode(e, name, version, tap, x, n, &out, info, &err);
    if (rc != INFERENCE_OK)
        fail_msg("inference_encode %s v%d: rc %d: %s", name, version, rc, err.msg);
    assert_non_null(out);
    return out;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- tests ---- */

static void test_encode_matches_direct(void **state)
{
    (void)state;
    struct inference *e = start(1, 8, 5, 256, 4);
    struct inference_model_info info;
    struct dim_err err;
    assert_int_equal(inference_model(e, "shoes", 0, &info, &err), INFERENCE_OK);
    assert_string_equal(info.name, "shoes");
    assert_int_equal(info.version, 2); /* 0: the newest */
    assert_int_equal(info.in_c, 1);
    assert_int_equal(info.in_h, 32);
    assert_int_equal(info.in_w, 32);
    assert_int_equal(info.dim[DIM_TAP_CONV], 256 * 4 * 4);
    assert_int_equal(info.dim[DIM_TAP_FC], 1024);
    assert_int_equal(info.dim[DIM_TAP_Y], 16);
    assert_int_equal(info.dim[DIM_TAP_LOCAL], 128);
    assert_int_equal(info.index_images, IDX_N);
    assert_int_equal(strlen(info.sha256), 64);

    const size_t n = 5;
    float *x = make_inputs(n, 1);
    for (int v = 1; v <= 2; v++)
        for (int tap = 0; tap < 4; tap++) {
            float *got = encode_ok(e, "shoes", v, (enum dim_tap)tap, x, n, &info);
            assert_int_equal(info.version, v);
            /* one pass of all n, and one image per pass: the encoder must match both */
            float *want_b = direct(g_m[v], x, n, (enum dim_tap)tap, n);
            float *want_1 = direct(g_m[v], x, n, (enum dim_tap)tap, 1);
            rows_close(got, want_b, n * info.dim[tap]);
            rows_close(got, want_1, n * info.dim[tap]);
            if (tap == DIM_TAP_LOCAL) { /* not the raw map: its width is the channel count */
                assert_int_equal(info.dim[tap], (size_t)g_m[v]->local_c);
            }
            free(got);
            free(want_b);
            free(want_1);
        }
    /* the two versions are different models */
    float *a = encode_ok(e, "shoes", 1, DIM_TAP_Y, x, 1, NULL);
    float *b = encode_ok(e, "shoes", 2, DIM_TAP_Y, x, 1, NULL);
    assert_memory_not_equal(a, b, sizeof(float) * 16);
    free(a);
    free(b);
    struct inference_stats st;
    inference_get_stats(e, &st);
    assert_int_equal(st.cached_models, 2);
    assert_int_equal(st.queued_images, 0);
    assert_int_equal(st.requests, 2 * 4 + 2);
    assert_int_equal(st.images, 2 * 4 * n + 2);
    free(x);
    inference_stop(e);
}

static void test_local_is_mean_of_map(void **state)
{
    (void)state;
    struct inference *e = start(1, 4, 0, 64, 2);
    float *x = make_inputs(3, 9);
    float *got = encode_ok(e, "shoes", 1, DIM_TAP_LOCAL, x, 3, NULL);
    /* the raw local map straight from core, averaged here by hand in float */
    const struct dim_model *m = g_m[1];
    struct dim_encode_ws ws;
    struct dim_err err;
    assert_int_equal(dim_encode_ws_create(&ws, m, 3, &err), 0);
    const float *map = dim_model_encode(m, &ws, x, 3, DIM_TAP_LOCAL);
    size_t c = (size_t)m->local_c, hw = (size_t)m->local_h * (size_t)m->local_w;
    assert_int_equal(hw, 64);
    int nonzero = 0;
    for (size_t b = 0; b < 3; b++)
        for (size_t k = 0; k < c; k++) {
            float s = 0;
            for (size_t i = 0; i < hw; i++)
                s += map[(b * c + k) * hw + i];
            float want = s / (float)hw;
            if (fabsf(got[b * c + k] - want) > 1e-5f * (1.0f + fabsf(want)))
                fail_msg("image %zu channel %zu: %g, mean of map %g", b, k, (double)got[b * c + k],
                         (double)want);
            nonzero += want != 0;
        }
    assert_true(nonzero > 0);
    dim_encode_ws_free(&ws);
    free(got);
    free(x);
    inference_stop(e);
}

static void test_big_request_chunks(void **state)
{
    (void)state;
    struct inference *e = start(1, 8, 5, 16, 2);
    const size_t n = 21; /* > batch_max and > queue_max: runs alone, in chunks 8, 8, 5 */
    float *x = make_inputs(n, 2);
    struct inference_stats st0, st1;
    inference_get_stats(e, &st0);
    struct timespec w0, w1;
    clock_gettime(CLOCK_MONOTONIC, &w0);
    float *got = encode_ok(e, "shoes", 1, DIM_TAP_Y, x, n, NULL);
    clock_gettime(CLOCK_MONOTONIC, &w1);
    inference_get_stats(e, &st1);
    /* the three passes' time is counted, and is within the call's own */
    const double fw = st1.forward_seconds - st0.forward_seconds,
                 call = (double)(w1.tv_sec - w0.tv_sec) + 1e-9 * (double)(w1.tv_nsec - w0.tv_nsec);
    print_message("forward seconds %.6f of a %.6f s call\n", fw, call);
    assert_true(fw > 0 && fw <= call);
    float *want = direct(g_m[1], x, n, DIM_TAP_Y, 1);
    rows_close(got, want, n * 16);
    assert_int_equal(st1.batches - st0.batches, 3);
    assert_int_equal(st1.images - st0.images, n);
    free(got);
    free(want);
    /* batch_max 1: every image its own pass */
    struct inference *e1 = start(2, 1, 0, 4, 1);
    got = encode_ok(e1, "shoes", 1, DIM_TAP_FC, x, 5, NULL);
    want = direct(g_m[1], x, 5, DIM_TAP_FC, 1);
    rows_close(got, want, 5 * 1024);
    inference_get_stats(e1, &st1);
    assert_int_equal(st1.batches, 5);
    free(got);
    free(want);
    inference_stop(e1);
    free(x);
    inference_stop(e);
}

/* ---- concurrency ---- */

struct client {
    struct inference *e;
    const char *name;
    int version; /* < 0: alternate 1 and 2 */
    int rounds;
    const float *x; /* one image */
    const float *want[3];
    int failures;
    int rc_last;
    char msg[320];
};

static void *client_main(void *arg)
{
    struct client *c = arg;
    for (int i = 0; i < c->rounds; i++) {
        int v = c->version >= 0 ? c->version : 1 + i % 2;
        float *out = NULL;
        struct dim_err err;
        int rc = inference_encode(c->e, c->name, v, DIM_TAP_Y, c->x, 1, &out, NULL, &err);
        c->rc_last = rc;
        if (rc != INFERENCE_OK) {
            c->failures++;
            snprintf(c->msg, sizeof c->msg, "rc %d: %s", rc, err.msg);
            continue;
        }
        const float *want = c->want[v == 0 ? 2 : v];
        for (int j = 0; j < 16; j++)
            if (fabsf(out[j] - want[j]) > TOL * (1.0f + fabsf(want[j]))) {
                c->failures++;
                snprintf(c->msg, sizeof c->msg, "round %d v%d value %d: %g vs %g", i, v, j,
                         (double)out[j], (double)want[j]);
                break;
            }
        free(out);
    }
    return NULL;
}

static double g_last_rate; /* images/s of the latest run_clients */

/* n_clients threads send rounds single-image requests each; returns images per pass. */
static double run_clients(struct inference *e, int n_clients, int rounds, int version)
{
    struct client *c = calloc((size_t)n_clients, sizeof *c);
    pthread_t *th = calloc((size_t)n_clients, sizeof *th);
    float *x = make_inputs((size_t)n_clients, 42);
    float *want1 = direct(g_m[1], x, (size_t)n_clients, DIM_TAP_Y, 1);
    float *want2 = direct(g_m[2], x, (size_t)n_clients, DIM_TAP_Y, 1);
    assert_true(c && th);
    struct inference_stats st0, st1;
    inference_get_stats(e, &st0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n_clients; i++) {
        c[i] = (struct client){.e = e,
                               .name = "shoes",
                               .version = version,
                               .rounds = rounds,
                               .x = x + (size_t)i * g_in};
        c[i].want[1] = want1 + i * 16;
        c[i].want[2] = want2 + i * 16;
        assert_int_equal(pthread_create(&th[i], NULL, client_main, &c[i]), 0);
    }
    for (int i = 0; i < n_clients; i++)
        pthread_join(th[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    g_last_rate = (double)n_clients * rounds /
                  ((double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
    inference_get_stats(e, &st1);
    for (int i = 0; i < n_clients; i++)
        if (c[i].failures)
            fail_msg("client %d: %d failures, last: %s", i, c[i].failures, c[i].msg);
    uint64_t req = st1.requests - st0.requests, batches = st1.batches - st0.batches;
    assert_int_equal(req, (uint64_t)n_clients * (uint64_t)rounds);
    assert_int_equal(st1.images - st0.images, req);
    assert_int_equal(st1.queued_images, 0);
    free(c);
    free(th);
    free(x);
    free(want1);
    free(want2);
    return (double)req / (double)batches;
}

static void test_concurrent_batches_form(void **state)
{
    (void)state;
    struct {
        int threads, batch_max, wait_ms;
    } cases[] = {{1, 32, 5}, {1, 32, 0}, {2, 8, 5}, {4, 32, 2}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct inference *e = start(cases[k].threads, cases[k].batch_max, cases[k].wait_ms, 256, 4);
        double per = run_clients(e, 16, 20, 1);
        printf("    threads %d batch_max %d wait_ms %d: 16 clients x 20 requests, %.2f images "
               "per pass, %.0f images/s\n",
               cases[k].threads, cases[k].batch_max, cases[k].wait_ms, per, g_last_rate);
        assert_true(per > 1.0); /* batches < requests */
        assert_true(per <= (double)cases[k].batch_max);
        inference_stop(e);
    }
    /* a lone caller never waits for a batch to fill */
    struct inference *e = start(1, 32, 2000, 256, 4);
    float *x = make_inputs(1, 5);
    free(encode_ok(e, "shoes", 1, DIM_TAP_Y, x, 1, NULL)); /* loaded */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 20; i++)
        free(encode_ok(e, "shoes", 1, DIM_TAP_Y, x, 1, NULL));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    /* the bare forward pass of one image, on this thread (serial) */
    struct dim_encode_ws ws;
    struct dim_err err;
    assert_int_equal(dim_encode_ws_create(&ws, g_m[1], 1, &err), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 20; i++)
        dim_model_encode(g_m[1], &ws, x, 1, DIM_TAP_Y);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double bare = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    dim_encode_ws_free(&ws);
    printf("    a lone caller, wait_ms 2000: %.2f ms per single-image request (bare serial "
           "forward %.2f ms)\n",
           s / 20 * 1e3, bare / 20 * 1e3);
    assert_true(s < 2.0);
    free(x);
    inference_stop(e);
}

/* Under load, batches grow past the old default of 32 with the callers: 128
 * callers that send again as soon as they are answered form passes of about 64
 * (two groups taking turns), with batch_max 256; batch_max caps the same load. */
static void test_batches_grow_under_load(void **state)
{
    (void)state;
    struct inference *e = start(1, 256, 50, 1024, 4);
    float *x = make_inputs(1, 5);
    free(encode_ok(e, "shoes", 1, DIM_TAP_Y, x, 1, NULL)); /* loaded */
    free(x);
    double per = run_clients(e, 128, 6, 1);
    printf("    128 callers, batch_max 256, wait_ms 50: %.2f images per pass, %.0f images/s\n",
           per, g_last_rate);
    assert_true(per > 40.0);
    assert_true(per <= 128.0);
    inference_stop(e);
    e = start(1, 16, 50, 1024, 4);
    per = run_clients(e, 64, 4, 1);
    printf("    64 callers, batch_max 16: %.2f images per pass\n", per);
    assert_true(per > 8.0 && per <= 16.0);
    inference_stop(e);
}

static void test_cache_eviction(void **state)
{
    (void)state;
    struct inference *e = start(2, 8, 1, 256, 1);
    float *x = make_inputs(2, 3);
    float *w1 = direct(g_m[1], x, 2, DIM_TAP_Y, 1), *w2 = direct(g_m[2], x, 2, DIM_TAP_Y, 1);
    struct inference_stats st;
    for (int i = 0; i < 6; i++) {
        int v = 1 + i % 2;
        float *got = encode_ok(e, "shoes", v, DIM_TAP_Y, x, 2, NULL);
        rows_close(got, v == 1 ? w1 : w2, 32);
        free(got);
        inference_get_stats(e, &st);
        assert_int_equal(st.cached_models, 1);
    }
    /* concurrent callers alternating versions: in-use entries are never evicted */
    run_clients(e, 8, 10, -1);
    inference_get_stats(e, &st);
    assert_int_equal(st.cached_models, 1);
    /* version 0 is the newest, 2 */
    float *got = encode_ok(e, "shoes", 0, DIM_TAP_Y, x, 2, NULL);
    rows_close(got, w2, 32);
    free(got);
    free(x);
    free(w1);
    free(w2);
    inference_stop(e);
}

static void test_not_found_and_bad_input(void **state)
{
    (void)state;
    struct inference *e = start(1, 8, 1, 256, 2);
    float *x = make_inputs(1, 4);
    struct inference_model_info info;
    struct dim_err err;
    float *out = (float *)&info; /* must come back NULL */
    assert_int_equal(inference_encode(e, "boots", 0, DIM_TAP_Y, x, 1, &out, &info, &err),
                     INFERENCE_NOT_FOUND);
    assert_null(out);
    assert_non_null(strstr(err.msg, "boots"));
    assert_int_equal(inference_encode(e, "shoes", 7, DIM_TAP_Y, x, 1, &out, &info, &err),
                     INFERENCE_NOT_FOUND);
    assert_non_null(strstr(err.msg, "shoes"));
    assert_non_null(strstr(err.msg, "7"));
    assert_int_equal(inference_model(e, "shoes", 3, &info, &err), INFERENCE_NOT_FOUND);
    assert_int_equal(inference_model(e, "Bad/Name", 0, &info, &err), INFERENCE_NOT_FOUND);
    assert_non_null(strstr(err.msg, "Bad/Name"));
    assert_int_equal(inference_model(e, "", 0, &info, &err), INFERENCE_NOT_FOUND);
    assert_int_equal(inference_model(e, NULL, 0, &info, &err), INFERENCE_NOT_FOUND);
    char long_name[200];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    assert_int_equal(inference_model(e, long_name, 0, &info, &err), INFERENCE_NOT_FOUND);
    assert_int_equal(inference_model(e, "shoes", -1, &info, &err), INFERENCE_NOT_FOUND);
    /* bad arguments are errors, not crashes */
    assert_int_equal(inference_encode(e, "shoes", 1, (enum dim_tap)9, x, 1, &out, NULL, &err),
                     INFERENCE_ERROR);
    assert_int_equal(inference_encode(e, "shoes", 1, DIM_TAP_Y, x, 0, &out, NULL, &err),
                     INFERENCE_ERROR);
    assert_int_equal(inference_encode(e, "shoes", 1, DIM_TAP_Y, NULL, 1, &out, NULL, &err),
                     INFERENCE_ERROR);
    assert_int_equal(inference_encode(e, "shoes", 1, DIM_TAP_Y, x, 1, NULL, NULL, &err),
                     INFERENCE_ERROR);
    assert_int_equal(inference_encode(e, "shoes", 1, DIM_TAP_Y, x, SIZE_MAX / 2, &out, NULL, &err),
                     INFERENCE_ERROR);
    assert_null(out);
    /* a checkpoint that does not load: the core's error */
    assert_int_equal(inference_encode(e, "corrupt", 1, DIM_TAP_Y, x, 1, &out, NULL, &err),
                     INFERENCE_ERROR);
    assert_int_equal(err.code, DIM_ECKPT_MAGIC);
    assert_non_null(strstr(err.msg, "corrupt"));
    printf("    corrupt version: %s\n", err.msg);
    struct inference_stats st;
    inference_get_stats(e, &st);
    assert_int_equal(st.cached_models, 1); /* shoes v1 (the too-large request); not corrupt */
    assert_int_equal(st.requests, 0);

    /* a deleted version is not found even while cached; a model with no versions left */
    struct inference_model_info pi;
    assert_int_equal(inference_model(e, "plain", 0, &pi, &err), INFERENCE_OK);
    assert_int_equal(pi.index_images, 0);
    assert_int_equal(store_model_delete(g_store, "plain", 1, &err), STORE_OK);
    assert_int_equal(inference_model(e, "plain", 1, &info, &err), INFERENCE_NOT_FOUND);
    printf("    deleted version: %s\n", err.msg);
    assert_int_equal(inference_encode(e, "plain", 0, DIM_TAP_Y, x, 1, &out, NULL, &err),
                     INFERENCE_NOT_FOUND);
    assert_non_null(strstr(err.msg, "plain"));
    printf("    no versions left: %s\n", err.msg);
    /* the encoder still serves */
    free(encode_ok(e, "shoes", 1, DIM_TAP_Y, x, 1, NULL));
    /* "the newest" follows a version created while the old newest is cached
     * (recreating "plain" also leaves it for later tests: it becomes v2) */
    assert_int_equal(inference_model(e, "shoes", 0, &pi, &err), INFERENCE_OK);
    const int shoes_newest = pi.version;
    dim_model_free(make_version("plain", 3, false, 2));
    assert_int_equal(inference_model(e, "plain", 0, &pi, &err), INFERENCE_OK);
    assert_int_equal(pi.version, 2);
    assert_int_equal(inference_model(e, "shoes", 0, &pi, &err), INFERENCE_OK);
    assert_int_equal(pi.version, shoes_newest);
    free(x);
    inference_stop(e);
}

static void test_config_refused(void **state)
{
    (void)state;
    struct inference_config ok = {1, 1, 8, 5, 16, 2};
    struct inference_config bad[6];
    for (int i = 0; i < 6; i++)
        bad[i] = ok;
    bad[0].threads = 0;
    bad[1].compute_threads = 0;
    bad[2].batch_max = 0;
    bad[3].wait_ms = -1;
    bad[4].queue_max = 0;
    bad[5].cache_max = 0;
    for (int i = 0; i < 6; i++) {
        struct inference *e = (struct inference *)&ok;
        struct dim_err err;
        assert_int_equal(inference_start(&e, g_store, &bad[i], &err), INFERENCE_ERROR);
        assert_null(e);
        assert_int_equal(err.code, DIM_EINVAL);
    }
}

static void test_concurrent_first_load(void **state)
{
    (void)state;
    struct inference *e = start(2, 8, 1, 256, 4);
    run_clients(e, 12, 3, 2); /* all ask for the unloaded v2 at once */
    struct inference_stats st;
    inference_get_stats(e, &st);
    assert_int_equal(st.cached_models, 1);
    inference_stop(e);
}

/* ---- the queue limit and stop: a long request keeps the only thread busy ---- */

struct bg {
    struct inference *e;
    const float *x;
    size_t n;
    int rc;
    char msg[320];
    const float *want; /* optional: the expected Y rows */
    int mismatches;
};

static void *bg_main(void *arg)
{
    struct bg *b = arg;
    float *out = NULL;
    struct dim_err err;
    dim_err_clear(&err);
    b->rc = inference_encode(b->e, "shoes", 1, DIM_TAP_Y, b->x, b->n, &out, NULL, &err);
    snprintf(b->msg, sizeof b->msg, "%s", err.msg);
    if (b->rc == INFERENCE_OK && b->want)
        for (size_t i = 0; i < b->n * 16; i++)
            b->mismatches += !(fabsf(out[i] - b->want[i]) <= TOL * (1.0f + fabsf(b->want[i])));
    free(out);
    return NULL;
}

/* Waits until the encoder has admitted `requests` requests in all. */
static void wait_requests(struct inference *e, uint64_t requests)
{
    for (int i = 0; i < 20000; i++) {
        struct inference_stats st;
        inference_get_stats(e, &st);
        if (st.requests >= requests)
            return;
        sleep_ms(1);
    }
    fail_msg("requests never reached %llu", (unsigned long long)requests);
}

/* Waits until queued_images is q. */
static void wait_queued(struct inference *e, int q)
{
    for (int i = 0; i < 20000; i++) {
        struct inference_stats st;
        inference_get_stats(e, &st);
        if (st.queued_images == q)
            return;
        sleep_ms(1);
    }
    fail_msg("queued_images never reached %d", q);
}

/* One image per pass: busy for a good while, longer than loading a model on
 * another thread. 400, times DIMD_TEST_TIMEOUT_SCALE (make test-tsan: under
 * ThreadSanitizer on a loaded machine the relative speeds of the two vary). */
static size_t long_n = 400;
#define LONG_N long_n

static void test_queue_full(void **state)
{
    (void)state;
    struct inference *e = start(1, 1, 0, 4, 2);
    float *big = make_inputs(LONG_N, 6);
    free(encode_ok(e, "shoes", 1, DIM_TAP_Y, big, 1, NULL)); /* loaded */
    struct bg busy = {e, big, LONG_N, -9, "", NULL, 0};
    pthread_t tb;
    assert_int_equal(pthread_create(&tb, NULL, bg_main, &busy), 0);
    wait_requests(e, 2); /* admitted although > queue_max: the queue was empty */
    wait_queued(e, 0);   /* taken by the thread, which is now busy with it */
    struct bg three = {e, big, 3, -9, "", NULL, 0};
    pthread_t t3;
    assert_int_equal(pthread_create(&t3, NULL, bg_main, &three), 0);
    wait_queued(e, 3);
    /* 3 wait: 2 more would exceed 4, 1 more fits */
    float *out = NULL;
    struct dim_err err;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(inference_encode(e, "shoes", 1, DIM_TAP_Y, big, 2, &out, NULL, &err),
                     INFERENCE_QUEUE_FULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_null(out);
    assert_non_null(strstr(err.msg, "queue_max 4"));
    printf("    %s\n", err.msg);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    assert_true(s < 0.5); /* at once, not after the busy request */
    struct inference_stats st;
    inference_get_stats(e, &st);
    assert_int_equal(st.queued_images, 3);
    assert_true(st.images < 1 + LONG_N); /* the long request is still running */
    float *one = encode_ok(e, "shoes", 1, DIM_TAP_Y, big + 5 * g_in, 1, NULL);
    float *want = direct(g_m[1], big + 5 * g_in, 1, DIM_TAP_Y, 1);
    rows_close(one, want, 16);
    free(one);
    free(want);
    pthread_join(tb, NULL);
    pthread_join(t3, NULL);
    assert_int_equal(busy.rc, INFERENCE_OK);
    assert_int_equal(three.rc, INFERENCE_OK);
    free(big);
    inference_stop(e);
}

/* An entry in use is never evicted: cache_max 1, a long request holds v1 while
 * v2 is loaded and used; v1 stays (its request gets right answers), v2 goes
 * when released. */
static void test_in_use_not_evicted(void **state)
{
    (void)state;
    struct inference *e = start(2, 1, 0, 1000, 1);
    float *big = make_inputs(LONG_N, 11);
    struct bg busy = {e, big, LONG_N, -9, "", NULL, 0};
    float *busy_want = direct(g_m[1], big, LONG_N, DIM_TAP_Y, 1);
    busy.want = busy_want;
    pthread_t tb;
    assert_int_equal(pthread_create(&tb, NULL, bg_main, &busy), 0);
    wait_requests(e, 1);
    float *got = encode_ok(e, "shoes", 2, DIM_TAP_Y, big, 1, NULL);
    float *want = direct(g_m[2], big, 1, DIM_TAP_Y, 1);
    rows_close(got, want, 16);
    struct inference_stats st;
    inference_get_stats(e, &st);
    /* joined before any assertion: a failed one must not leave the thread
     * running on this stack frame (TSan saw the next test's frame raced) */
    pthread_join(tb, NULL);
    assert_true(st.images < 1 + LONG_N); /* v1's request still ran */
    /* v2 was over the limit while v1 was in use: it went as soon as it was released */
    assert_int_equal(st.cached_models, 1);
    assert_int_equal(busy.rc, INFERENCE_OK);
    assert_int_equal(busy.mismatches, 0);
    inference_get_stats(e, &st);
    assert_int_equal(st.cached_models, 1);
    free(got);
    got = encode_ok(e, "shoes", 2, DIM_TAP_Y, big, 1, NULL);
    rows_close(got, want, 16);
    free(got);
    free(want);
    free(busy_want);
    free(big);
    inference_stop(e);
}

static void test_stop_wakes_waiters(void **state)
{
    (void)state;
    struct inference *e = start(1, 1, 0, 1000, 2);
    float *big = make_inputs(LONG_N, 8);
    free(encode_ok(e, "shoes", 1, DIM_TAP_Y, big, 1, NULL));
    struct bg busy = {e, big, LONG_N, -9, "", NULL, 0};
    pthread_t tb;
    assert_int_equal(pthread_create(&tb, NULL, bg_main, &busy), 0);
    wait_requests(e, 2);
    wait_queued(e, 0);
    enum { W = 6 };
    struct bg w[W];
    pthread_t tw[W];
    for (int i = 0; i < W; i++) {
        w[i] = (struct bg){e, big + (size_t)i * g_in, 1, -9, "", NULL, 0};
        assert_int_equal(pthread_create(&tw[i], NULL, bg_main, &w[i]), 0);
    }
    wait_queued(e, W);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    inference_stop(e); /* waiters: STOPPING; the running one stops after its current pass */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    for (int i = 0; i < W; i++) {
        pthread_join(tw[i], NULL);
        assert_int_equal(w[i].rc, INFERENCE_STOPPING);
        assert_non_null(strstr(w[i].msg, "stopping"));
    }
    pthread_join(tb, NULL);
    assert_int_equal(busy.rc, INFERENCE_STOPPING); /* cut between its passes */
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    assert_true(s < 1.0);
    printf("    stop with %d waiting callers and one running: %.1f ms\n", W,
           ((double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9) * 1e3);
    free(big);
}

static void test_neighbors(void **state)
{
    (void)state;
    struct inference *e = start(1, 8, 1, 256, 4);
    struct inference_model_info info;
    float *y = encode_ok(e, "shoes", 1, DIM_TAP_Y, g_planted_x, 1, &info);
    struct neighbor nb[IDX_N + 5];
    size_t n = 0;
    struct dim_err err;
    assert_int_equal(inference_neighbors(e, "shoes", 1, y, 10, nb, &n, &err), INFERENCE_OK);
    assert_int_equal(n, 10);
    assert_int_equal(nb[0].index, PLANT);
    assert_int_equal(nb[0].label, 7);
    assert_true(fabsf(nb[0].cosine - 1.0f) < 1e-5f);
    for (size_t i = 1; i < n; i++) {
        assert_true(nb[i].cosine <= nb[i - 1].cosine);
        assert_true(nb[i].cosine < 0.9999f);
        assert_int_equal(nb[i].label, (int)(nb[i].index % 10));
    }
    /* a scaled query has the same neighbours; k above the index size gives them all */
    for (int j = 0; j < 16; j++)
        y[j] *= -3.0f; /* now the planted vector is the farthest */
    assert_int_equal(inference_neighbors(e, "shoes", 1, y, IDX_N + 5, nb, &n, &err), INFERENCE_OK);
    assert_int_equal(n, IDX_N);
    assert_int_equal(nb[IDX_N - 1].index, PLANT);
    assert_true(fabsf(nb[IDX_N - 1].cosine + 1.0f) < 1e-5f);
    bool seen[IDX_N] = {false};
    for (size_t i = 0; i < n; i++) {
        assert_true(nb[i].index >= 0 && nb[i].index < IDX_N);
        assert_false(seen[nb[i].index]);
        seen[nb[i].index] = true;
        if (i)
            assert_true(nb[i].cosine <= nb[i - 1].cosine);
    }
    /* version 2's index has no planted vector */
    for (int j = 0; j < 16; j++)
        y[j] /= -3.0f;
    assert_int_equal(inference_neighbors(e, "shoes", 2, y, 1, nb, &n, &err), INFERENCE_OK);
    assert_int_equal(n, 1);
    assert_true(nb[0].index != PLANT || nb[0].cosine < 0.9999f);
    /* no index; bad k; unknown model */
    assert_int_equal(inference_neighbors(e, "plain", 0, y, 3, nb, &n, &err), INFERENCE_NOT_FOUND);
    assert_non_null(strstr(err.msg, "index"));
    assert_int_equal(n, 0);
    assert_int_equal(inference_neighbors(e, "shoes", 1, y, 0, nb, &n, &err), INFERENCE_ERROR);
    assert_int_equal(inference_neighbors(e, "boots", 1, y, 3, nb, &n, &err), INFERENCE_NOT_FOUND);
    y[3] = NAN;
    assert_int_equal(inference_neighbors(e, "shoes", 1, y, 3, nb, &n, &err), INFERENCE_ERROR);
    free(y);
    inference_stop(e);
}

int main(void)
{
    const char *scale = getenv("DIMD_TEST_TIMEOUT_SCALE");
    if (scale && atoi(scale) > 1)
        long_n *= (size_t)atoi(scale);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_matches_direct),
        cmocka_unit_test(test_local_is_mean_of_map),
        cmocka_unit_test(test_big_request_chunks),
        cmocka_unit_test(test_concurrent_batches_form),
        cmocka_unit_test(test_batches_grow_under_load),
        cmocka_unit_test(test_cache_eviction),
        cmocka_unit_test(test_concurrent_first_load),
        cmocka_unit_test(test_not_found_and_bad_input),
        cmocka_unit_test(test_config_refused),
        cmocka_unit_test(test_queue_full),
        cmocka_unit_test(test_in_use_not_evicted),
        cmocka_unit_test(test_stop_wakes_waiters),
        cmocka_unit_test(test_neighbors),
    };
    const char *only = getenv("TEST_ENCODER_FILTER");
    if (only && *only)
        cmocka_set_test_filter(only);
    int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    fprintf(stderr, "largest difference from a direct dim_model_encode: %g\n", (double)g_maxdiff);
    return rc;
}

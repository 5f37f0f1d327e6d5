/* bench_store.c - what writing metrics and checkpoints costs a training job.
 *
 * A running job writes 5 loss points per step. The runner buffers them and
 * writes one transaction per flush; this measures that path (store_metrics_append
 * on a real SQLite file in WAL mode) against one transaction per step, for the
 * same points, and reports microseconds per training step for each.
 *
 * Then a checkpoint of the default training model (its bytes as a training job
 * writes them): sha256 in MB/s on the SHA extensions and on the portable block
 * function, and one store_checkpoint_put (the store hashes the bytes once),
 * against the old path that hashed in the job and again in the store.
 *
 * usage: bench_store [--steps N] [--batch STEPS_PER_FLUSH] [--json PATH]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dim/checkpoint.h"
#include "dim/model.h"
#include "store/checkpoints.h"
#include "store/jobs.h"
#include "store/metrics.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/sha256.h"

static const char *const keys[] = {"loss_local", "loss_prior_enc", "loss_prior_disc",
                                   "loss_total", "loss_global"};
#define N_KEYS 5

/* Appends steps [first, first + n) in flushes of `per` steps; returns seconds. */
static double run(struct dimd_store *s, int64_t job, int attempt, int64_t first, int64_t n,
                  int64_t per)
{
    struct store_metric *m = malloc(sizeof *m * (size_t)(per * N_KEYS));
    struct dim_err err;
    double t0 = clock_mono_s();
    for (int64_t st = first; st < first + n; st += per) {
        size_t k = 0;
        int64_t last = st;
        for (int64_t i = st; i < st + per && i < first + n; i++) {
            for (int j = 0; j < N_KEYS; j++)
                m[k++] = (struct store_metric){keys[j], i, 1.0 / (double)(i + j), 0};
            last = i;
        }
        if (store_metrics_append(s, job, attempt, m, k, last, 100.0, &err) != STORE_OK) {
            fprintf(stderr, "bench_store: %s\n", err.msg);
            exit(1);
        }
    }
    double t = clock_mono_s() - t0;
    free(m);
    return t;
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_store: %s: %s\n", what, msg);
    exit(1);
}

/* Seconds per sha256 of n bytes: the best of `rounds`. */
static double hash_s(const void *p, size_t n, int rounds)
{
    double best = 1e30;
    char hex[65];
    for (int r = 0; r < rounds; r++) {
        double t0 = clock_mono_s();
        sha256_hex(p, n, hex);
        double t = clock_mono_s() - t0;
        best = t < best ? t : best;
    }
    return best;
}

struct ckpt_cost {
    size_t bytes;
    double mbs_fast, mbs_portable; /* sha256 MB/s */
    double put_ms, put_hashed_ms;  /* one put; a hash then a put that checks it */
    const char *impl;
};

/* Checkpoints of the default training model into job `job`, steps 1.. */
static struct ckpt_cost checkpoint_cost(struct dimd_store *s, int64_t job, int attempt)
{
    struct ckpt_cost c = {0};
    struct dim_config cfg;
    dim_config_default(&cfg);
    struct dim_model *m;
    struct dim_err err = {0};
    if (dim_model_create(&m, &cfg, true, &err) != 0)
        die("dim_model_create", err.msg);
    struct dim_membuf ck = {0};
    const struct dim_writer w = {dim_membuf_write, &ck};
    if (dim_checkpoint_write(m, NULL, &w, &err) != 0)
        die("checkpoint", err.msg);
    dim_model_free(m);
    c.bytes = ck.n;
    c.impl = sha256_impl();
    c.mbs_fast = (double)ck.n / 1e6 / hash_s(ck.p, ck.n, 5);
    sha256_force_portable(true);
    c.mbs_portable = (double)ck.n / 1e6 / hash_s(ck.p, ck.n, 2);
    sha256_force_portable(false);
    struct store_retention keep = {.keep_last = 2};
    double best_put = 1e30, best_hashed = 1e30;
    for (int r = 0; r < 4; r++) {
        double t0 = clock_mono_s();
        if (store_checkpoint_put(s, job, attempt, 2 * r + 1, ck.p, ck.n, NULL, "{}", &keep,
                                 &err) != STORE_OK)
            die("store_checkpoint_put", err.msg);
        double t1 = clock_mono_s();
        char hex[65];
        sha256_hex(ck.p, ck.n, hex);
        if (store_checkpoint_put(s, job, attempt, 2 * r + 2, ck.p, ck.n, hex, "{}", &keep,
                                 &err) != STORE_OK)
            die("store_checkpoint_put", err.msg);
        double t2 = clock_mono_s();
        best_put = t1 - t0 < best_put ? t1 - t0 : best_put;
        best_hashed = t2 - t1 < best_hashed ? t2 - t1 : best_hashed;
    }
    c.put_ms = 1e3 * best_put;
    c.put_hashed_ms = 1e3 * best_hashed;
    free(ck.p);
    return c;
}

int main(int argc, char **argv)
{
    int64_t steps = 2000, per = 20;
    const char *json = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--steps") == 0)
            steps = atoll(argv[i + 1]);
        else if (strcmp(argv[i], "--batch") == 0)
            per = atoll(argv[i + 1]);
        else if (strcmp(argv[i], "--json") == 0)
            json = argv[i + 1];
    }
    char dir[] = "/tmp/dimd-bench-store-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char path[128];
    snprintf(path, sizeof path, "%s/dimd.db", dir);
    struct dimd_store *s;
    struct dim_err err;
    struct store_job job;
    if (store_open(&s, path, &err) != 0 ||
        store_job_insert(s, "{}", NULL, NULL, NULL, 10, &job, &err) != STORE_OK ||
        (store_job_clear(&job), store_job_claim(s, NULL, 0, &job, &err)) != STORE_OK) {
        fprintf(stderr, "bench_store: %s\n", err.msg);
        return 1;
    }
    /* warm-up, then the two ways over fresh step ranges */
    run(s, job.id, job.attempts, 1, 200, per);
    double batched = run(s, job.id, job.attempts, 1000, steps, per);
    double single = run(s, job.id, job.attempts, 1000 + steps, steps, 1);
    double us_b = 1e6 * batched / (double)steps, us_s = 1e6 * single / (double)steps;
    printf("metrics write cost, %d points per step, SQLite WAL:\n"
           "  batched (%lld steps per transaction): %.1f us per step (%.2f us per point)\n"
           "  one transaction per step:            %.1f us per step\n"
           "  batching is %.1fx cheaper\n",
           N_KEYS, (long long)per, us_b, us_b / N_KEYS, us_s, us_s / us_b);
    struct ckpt_cost c = checkpoint_cost(s, job.id, job.attempts);
    printf("checkpoint of the default training model, %.1f MB:\n"
           "  sha256: %.0f MB/s (%s) against %.0f MB/s portable: %.1fx\n"
           "  store_checkpoint_put, hashed once in the store: %.0f ms\n"
           "  hashed by the caller, then checked by the store: %.0f ms\n",
           (double)c.bytes / 1e6, c.mbs_fast, c.impl, c.mbs_portable,
           c.mbs_fast / c.mbs_portable, c.put_ms, c.put_hashed_ms);
    if (json) {
        FILE *f = fopen(json, "w");
        if (f) {
            fprintf(f,
                    "{\"points_per_step\":%d,\"steps\":%lld,\"steps_per_transaction\":%lld,"
                    "\"batched_us_per_step\":%.2f,\"per_step_transaction_us_per_step\":%.2f,"
                    "\"checkpoint_bytes\":%zu,\"sha256_impl\":\"%s\",\"sha256_mb_s\":%.1f,"
                    "\"sha256_portable_mb_s\":%.1f,\"checkpoint_put_ms\":%.1f,"
                    "\"checkpoint_put_hashed_twice_ms\":%.1f}\n",
                    N_KEYS, (long long)steps, (long long)per, us_b, us_s, c.bytes, c.impl,
                    c.mbs_fast, c.mbs_portable, c.put_ms, c.put_hashed_ms);
            fclose(f);
        }
    }
    store_job_clear(&job);
    store_close(s);
    static const char *const suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char f[160];
        snprintf(f, sizeof f, "%s%s", path, suffix[i]);
        unlink(f);
    }
    return rmdir(dir) == 0 ? 0 : 1;
}

/* bench_store.c - what writing metrics costs a training job.
 *
 * A running job writes 5 loss points per step. The runner buffers them and
 * writes one transaction per flush; this measures that path (store_metrics_append
 * on a real SQLite file in WAL mode) against one transaction per step, for the
 * same points, and reports microseconds per training step for each.
 *
 * usage: bench_store [--steps N] [--batch STEPS_PER_FLUSH] [--json PATH]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/jobs.h"
#include "store/metrics.h"
#include "store/store.h"
#include "util/clock.h"

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
    if (json) {
        FILE *f = fopen(json, "w");
        if (f) {
            fprintf(f,
                    "{\"points_per_step\":%d,\"steps\":%lld,\"steps_per_transaction\":%lld,"
                    "\"batched_us_per_step\":%.2f,\"per_step_transaction_us_per_step\":%.2f}\n",
                    N_KEYS, (long long)steps, (long long)per, us_b, us_s);
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

/* bench_train.c - training-step throughput against this machine's own sgemm.
 *
 * Workload (issue defaults): Fashion-MNIST zero-padded to 32x32, basic32x32,
 * D = 512, local JSD + prior (alpha 0, beta 1, gamma 0.1), batch 64, 2 threads.
 * Reports training images/s, achieved GFLOP/s (dim_trainer_step_flops: the
 * matrix products a step executes, counted from layer shapes), the sgemm GFLOP/s
 * this program measures (OpenBLAS on the same number of threads, square 1024^3),
 * their ratio and peak RSS.
 * The machine is shared, and its sgemm speed moves by 2x within seconds, so the
 * two are measured in alternation: each round times sgemm, then a few training
 * steps, and gives one ratio; the figures reported are medians over the rounds.
 * Also reported: the fastest single step against the fastest single sgemm, both
 * timed under the least interference the run saw.
 * Elementwise kernels run on a pool of (threads - 1) workers plus the caller, as in
 * dimd train; --pool 0 measures them serial.
 * usage: bench_train [--json PATH] [--steps N] [--threads N] [--pool 0|1] [--dataset SPEC]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "base/blas.h"
#include "dim/trainer.h"
#include "util/threadpool.h"
#include "util/clock.h"

/* sgemm GFLOP/s, C = A B with square n: the mean over `rounds` timed runs of about
 * 0.1 s each, and in *best the fastest single product seen. */
static double sgemm_gflops(size_t n, int rounds, double *best)
{
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n),
          *c = malloc(sizeof(float) * n * n);
    if (!a || !b || !c) {
        free(a);
        free(b);
        free(c);
        return 0.0;
    }
    struct dim_rng r;
    dim_rng_seed(&r, 3, 3);
    for (size_t i = 0; i < n * n; i++) {
        a[i] = dim_rng_uniform(&r) - 0.5f;
        b[i] = dim_rng_uniform(&r) - 0.5f;
    }
    nn_sgemm(false, false, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    const double flops = 2.0 * (double)n * n * n;
    int reps = (int)(1e10 / flops) + 1;
    double total = 0.0;
    for (int k = 0; k < rounds * reps; k++) {
        double t0 = clock_mono_s();
        nn_sgemm(false, false, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double dt = clock_mono_s() - t0;
        total += dt;
        *best = flops / dt / 1e9 > *best ? flops / dt / 1e9 : *best;
    }
    free(a);
    free(b);
    free(c);
    return flops * rounds * reps / total / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#define MAX_ROUNDS 64

int main(int argc, char **argv)
{
    const char *json = NULL, *spec = "fashion-mnist";
    int rounds = 16, steps = 6, threads = 2, use_pool = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0 && i + 1 < argc)
            json = argv[++i];
        else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--steps") == 0 && i + 1 < argc)
            steps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--pool") == 0 && i + 1 < argc)
            use_pool = atoi(argv[++i]);
        else if (strcmp(argv[i], "--dataset") == 0 && i + 1 < argc)
            spec = argv[++i];
        else {
            fprintf(stderr, "usage: bench_train [--json PATH] [--rounds N] [--steps N per round] "
                            "[--threads N] [--pool 0|1] [--dataset SPEC]\n");
            return 2;
        }
    }
    if (rounds < 1 || rounds > MAX_ROUNDS || steps < 1 || threads < 1) {
        fprintf(stderr, "bench_train: --rounds in [1, %d], --steps and --threads >= 1\n",
                MAX_ROUNDS);
        return 2;
    }
    struct dim_err err;
    struct dim_dataset ds;
    struct dim_dataset_limits lim = {0, 0};
    if (dim_dataset_load(spec, DIM_SPLIT_TRAIN, &lim, &ds, &err) != 0) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        return 1;
    }
    struct dim_config cfg;
    dim_config_default(&cfg);
    cfg.in_c = ds.c;
    struct dim_model *m = NULL;
    struct dim_trainer *t = NULL;
    struct dim_preprocess pp = {ds.c, 32, 32, 0, 0};
    if (dim_model_create(&m, &cfg, true, &err) != 0 ||
        dim_trainer_create(&t, m, &ds, &pp, &err) != 0) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        dim_model_free(m);
        dim_dataset_free(&ds);
        return 1;
    }
    /* the product's configuration: one pool of `threads`, BLAS inside it on one thread */
    struct threadpool *pool = use_pool ? threadpool_create(threads - 1) : NULL;
    const double flops = dim_trainer_step_flops(t);
    double sg[MAX_ROUNDS], tr[MAX_ROUNDS], ratio[MAX_ROUNDS], step_s[MAX_ROUNDS];
    double sg_best = 0.0, step_best = 1e30;
    struct dim_losses l;
    for (int r = -1; r < rounds; r++) { /* round -1 warms up */
        nn_blas_set_threads(threads); /* the reference: OpenBLAS's own threads */
        dim_parallel_use(NULL);
        double g = sgemm_gflops(1024, 2, &sg_best);
        if (pool) {
            nn_blas_set_threads(1);
            dim_parallel_use(threadpool_parallel(pool));
        }
        double t0 = clock_mono_s();
        for (int i = 0; i < steps; i++) {
            double s0 = clock_mono_s();
            if (dim_trainer_step(t, &l, &err) != 0) {
                fprintf(stderr, "bench_train: %s\n", err.msg);
                return 1;
            }
            if (r >= 0 && clock_mono_s() - s0 < step_best)
                step_best = clock_mono_s() - s0;
        }
        double dt = (clock_mono_s() - t0) / steps;
        if (r < 0)
            continue;
        sg[r] = g;
        step_s[r] = dt;
        tr[r] = flops / dt / 1e9;
        ratio[r] = tr[r] / g;
    }
    dim_parallel_use(NULL);
    double sg_min = sg[0], sg_max = sg[0];
    for (int r = 1; r < rounds; r++) {
        sg_min = sg[r] < sg_min ? sg[r] : sg_min;
        sg_max = sg[r] > sg_max ? sg[r] : sg_max;
    }
    const double dt = median(step_s, rounds), gflops = median(tr, rounds);
    const double sgm = median(sg, rounds), rat = median(ratio, rounds);
    const double ips = cfg.batch / dt;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss_mib = (double)ru.ru_maxrss / 1024.0;
    printf("train step  (basic32x32, D %d, local JSD + prior, batch %u, %d threads, %s)\n",
           cfg.mi_dim, cfg.batch, threads,
           pool ? "pool: split products + elementwise, BLAS 1 thread each"
                : "BLAS threads, serial elementwise");
    printf("  rounds               %8d  x (sgemm, then %d steps); medians below\n", rounds, steps);
    printf("  step time            %8.1f ms\n", dt * 1e3);
    printf("  images/s             %8.1f\n", ips);
    printf("  GFLOP per step       %8.2f  (matrix products, forward + backward)\n", flops / 1e9);
    printf("  achieved GFLOP/s     %8.1f\n", gflops);
    printf("  sgemm GFLOP/s        %8.1f  (OpenBLAS, %d threads, 1024^3; rounds ranged %.1f..%.1f)\n",
           sgm, threads, sg_min, sg_max);
    printf("  ratio                %8.3f  (median of per-round ratios; target >= 0.60)\n", rat);
    printf("  best vs best         %8.3f  (fastest step %.1f GFLOP/s / fastest sgemm %.1f GFLOP/s)\n",
           flops / step_best / 1e9 / sg_best, flops / step_best / 1e9, sg_best);
    printf("  peak RSS             %8.1f MiB\n", rss_mib);
    if (json) {
        FILE *f = fopen(json, "w");
        if (!f) {
            fprintf(stderr, "bench_train: cannot write %s\n", json);
            return 1;
        }
        fprintf(f,
                "{\"train\":{\"preset\":\"basic32x32\",\"mi_dim\":%d,\"batch\":%u,\"threads\":%d,"
                "\"pool\":%s,\"rounds\":%d,\"steps_per_round\":%d,\"step_ms\":%.3f,"
                "\"images_per_second\":%.2f,\"gflop_per_step\":%.4f,\"achieved_gflops\":%.2f,"
                "\"sgemm_gflops\":%.2f,\"sgemm_gflops_min\":%.2f,\"sgemm_gflops_max\":%.2f,"
                "\"ratio\":%.4f,\"best_step_gflops\":%.2f,\"best_sgemm_gflops\":%.2f,"
                "\"best_ratio\":%.4f,\"target_ratio\":0.6,\"peak_rss_mib\":%.1f}}\n",
                cfg.mi_dim, cfg.batch, threads, pool ? "true" : "false", rounds, steps, dt * 1e3,
                ips, flops / 1e9, gflops, sgm, sg_min, sg_max, rat, flops / step_best / 1e9, sg_best,
                flops / step_best / 1e9 / sg_best, rss_mib);
        fclose(f);
        printf("  written              %s\n", json);
    }
    dim_trainer_free(t);
    dim_model_free(m);
    dim_dataset_free(&ds);
    threadpool_free(pool);
    return 0;
}

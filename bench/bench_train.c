/* bench_train.c - training-step throughput against this machine's own sgemm.
 *
 * Workload (issue defaults): Fashion-MNIST zero-padded to 32x32, basic32x32,
 * D = 512, local JSD + prior (alpha 0, beta 1, gamma 0.1), batch 64, 2 threads.
 * Reports training images/s, achieved GFLOP/s (dim_trainer_step_flops: the
 * matrix products a step executes, counted from layer shapes), the sgemm GFLOP/s
 * this program measures (square 1024 x 1024 x 1024, same thread count, best of
 * several runs before and after the training loop), their ratio and peak RSS.
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
#include "server/pool.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Best GFLOP/s of `rounds` timed runs of C = A B with square n. */
static double sgemm_gflops(size_t n, int rounds)
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
    int reps = (int)(2e9 / flops) + 1;
    double best = 0.0;
    for (int k = 0; k < rounds; k++) {
        double t0 = now();
        for (int i = 0; i < reps; i++)
            nn_sgemm(false, false, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double g = flops * reps / (now() - t0) / 1e9;
        best = g > best ? g : best;
    }
    free(a);
    free(b);
    free(c);
    return best;
}

int main(int argc, char **argv)
{
    const char *json = NULL, *spec = "fashion-mnist";
    int steps = 40, threads = 2, use_pool = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0 && i + 1 < argc)
            json = argv[++i];
        else if (strcmp(argv[i], "--steps") == 0 && i + 1 < argc)
            steps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--pool") == 0 && i + 1 < argc)
            use_pool = atoi(argv[++i]);
        else if (strcmp(argv[i], "--dataset") == 0 && i + 1 < argc)
            spec = argv[++i];
        else {
            fprintf(stderr, "usage: bench_train [--json PATH] [--steps N] [--threads N] "
                            "[--pool 0|1] [--dataset SPEC]\n");
            return 2;
        }
    }
    if (steps < 1 || threads < 1) {
        fprintf(stderr, "bench_train: --steps and --threads must be >= 1\n");
        return 2;
    }
    nn_blas_set_threads(threads);
    struct dimd_pool *pool = use_pool ? dimd_pool_create(threads - 1) : NULL;
    if (pool)
        dim_parallel_use(dimd_pool_parallel(pool));
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
    double sg_before = sgemm_gflops(1024, 3);
    struct dim_losses l;
    for (int i = 0; i < 5; i++)
        dim_trainer_step(t, &l, &err);
    double t0 = now();
    for (int i = 0; i < steps; i++)
        if (dim_trainer_step(t, &l, &err) != 0) {
            fprintf(stderr, "bench_train: %s\n", err.msg);
            return 1;
        }
    double dt = (now() - t0) / steps;
    double sg_after = sgemm_gflops(1024, 3);
    double sg = sg_before > sg_after ? sg_before : sg_after;
    double flops = dim_trainer_step_flops(t);
    double gflops = flops / dt / 1e9;
    double ips = cfg.batch / dt;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss_mib = (double)ru.ru_maxrss / 1024.0;
    printf("train step  (basic32x32, D %d, local JSD + prior, batch %u, %d threads, %s, %d "
           "steps)\n",
           cfg.mi_dim, cfg.batch, threads, pool ? "pooled elementwise" : "serial elementwise",
           steps);
    printf("  step time            %8.1f ms\n", dt * 1e3);
    printf("  images/s             %8.1f\n", ips);
    printf("  GFLOP per step       %8.2f  (matrix products, forward + backward)\n", flops / 1e9);
    printf("  achieved GFLOP/s     %8.1f\n", gflops);
    printf("  sgemm GFLOP/s        %8.1f  (1024^3, best of before %.1f / after %.1f)\n", sg,
           sg_before, sg_after);
    printf("  ratio                %8.3f  (target >= 0.60)\n", gflops / sg);
    printf("  peak RSS             %8.1f MiB\n", rss_mib);
    if (json) {
        FILE *f = fopen(json, "w");
        if (!f) {
            fprintf(stderr, "bench_train: cannot write %s\n", json);
            return 1;
        }
        fprintf(f,
                "{\"train\":{\"preset\":\"basic32x32\",\"mi_dim\":%d,\"batch\":%u,\"threads\":%d,"
                "\"pool\":%s,\"steps\":%d,\"step_ms\":%.3f,\"images_per_sec\":%.2f,\"gflop_per_step\":%.4f,"
                "\"achieved_gflops\":%.2f,\"sgemm_gflops\":%.2f,\"sgemm_gflops_before\":%.2f,"
                "\"sgemm_gflops_after\":%.2f,\"ratio\":%.4f,\"target_ratio\":0.6,"
                "\"peak_rss_mib\":%.1f}}\n",
                cfg.mi_dim, cfg.batch, threads, pool ? "true" : "false", steps, dt * 1e3, ips, flops / 1e9, gflops, sg,
                sg_before, sg_after, gflops / sg, rss_mib);
        fclose(f);
        printf("  written              %s\n", json);
    }
    dim_trainer_free(t);
    dim_model_free(m);
    dim_dataset_free(&ds);
    dim_parallel_use(NULL);
    dimd_pool_free(pool);
    return 0;
}

/* bench_collectives.c - the collectives of a data-parallel step, timed alone (MPI).
 *
 * usage: mpirun -np N build/bench/bench_collectives [--json PATH]
 * For payloads of 4 B to 32 MiB per rank, and for the sizes one step of the default
 * model moves, times dist's sum_f32 (MPI_Allreduce) and gather_f32 (MPI_Allgather)
 * through the same hooks the trainer uses: each size is preceded by a barrier and
 * repeated (more for small sizes), the median reported. Rank 0 prints one line per
 * size and fits t = alpha + bytes * beta to the allreduce times of 1 MiB and more
 * (least squares), the cost model docs/scaling.md projects from.
 * Run it with --mca btl self,vader (shared memory) or self,tcp (TCP over loopback).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist/dist.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* median seconds of reps calls of one collective on n floats per rank */
static double time_op(struct dist *d, int gather, float *buf, float *all, size_t n, int reps)
{
    const struct dim_dist *h = dist_hooks(d);
    double t[64];
    for (int r = -2; r < reps; r++) {
        dist_any(d, 0); /* start together */
        double t0 = now();
        if (gather)
            h->gather_f32(h->ctx, all, buf, n);
        else
            h->sum_f32(h->ctx, buf, n);
        if (r >= 0)
            t[r] = now() - t0;
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp_double);
    return t[reps / 2];
}

int main(int argc, char **argv)
{
    const char *json = argc == 3 && strcmp(argv[1], "--json") == 0 ? argv[2] : NULL;
    struct dist *d;
    char msg[200];
    if (dist_start(&d, msg, sizeof msg) != 0) {
        fprintf(stderr, "bench_collectives: %s\n", msg);
        return 1;
    }
    const int N = dist_size(d), lead = dist_rank(d) == 0;
    /* sizes in floats: powers of 8 from 1, then the default model's step (basic32x32,
     * batch 64 over N ranks, mi_dim 512): the gradient slabs (main and prior: 5,910,650
     * floats; the step sends them as two calls), the local critic's dG (64 * 512 floats,
     * summed) and the global vectors of b = 64/N images (b * 512 floats, gathered) */
    size_t sizes[32], ns = 0;
    for (size_t n = 1; n <= ((size_t)8 << 20); n *= 8)
        sizes[ns++] = n;
    const size_t b = (size_t)(64 / N > 0 ? 64 / N : 1);
    const size_t step_sizes[3] = {5910650, 64 * 512, b * 512};
    for (int k = 0; k < 3; k++)
        sizes[ns++] = step_sizes[k];
    size_t max = 0;
    for (size_t i = 0; i < ns; i++)
        max = sizes[i] > max ? sizes[i] : max;
    float *buf = calloc(max, sizeof(float)), *all = calloc(max * (size_t)N, sizeof(float));
    if (!buf || !all) {
        fprintf(stderr, "bench_collectives: out of memory\n");
        dist_finish(d);
        return 1;
    }
    double ar[32], ag[32];
    for (size_t i = 0; i < ns; i++) {
        int reps = sizes[i] >= ((size_t)1 << 20) ? 9 : 41;
        for (size_t j = 0; j < sizes[i]; j++)
            buf[j] = 1e-3f * (float)(j % 1000);
        ar[i] = time_op(d, 0, buf, all, sizes[i], reps);
        ag[i] = time_op(d, 1, buf, all, sizes[i], reps);
    }
    /* least squares t = alpha + beta * bytes over the allreduces of >= 1 MiB */
    double sx = 0, sy = 0, sxx = 0, sxy = 0, m = 0;
    for (size_t i = 0; i < ns; i++)
        if (sizes[i] * 4 >= ((size_t)1 << 20)) {
            double x = 4.0 * (double)sizes[i];
            sx += x, sy += ar[i], sxx += x * x, sxy += x * ar[i], m++;
        }
    double beta = (m * sxy - sx * sy) / (m * sxx - sx * sx), alpha = (sy - beta * sx) / m;
    if (lead) {
        printf("%d ranks; median seconds per call\n%12s %12s %12s\n", N, "bytes/rank",
               "allreduce", "allgather");
        for (size_t i = 0; i < ns; i++)
            printf("%12zu %12.3e %12.3e%s\n", 4 * sizes[i], ar[i], ag[i],
                   i >= ns - 3 ? (i == ns - 3   ? "  (gradient slabs)"
                                  : i == ns - 2 ? "  (local critic's dG)"
                                                : "  (global vectors of b images)")
                               : "");
        printf("allreduce fit over >= 1 MiB: t = %.3e s + bytes / %.3f GB/s\n", alpha,
               1e-9 / beta);
        /* the small-message latency: the 4-byte allreduce */
        printf("4-byte allreduce: %.2f us\n", 1e6 * ar[0]);
        if (json) {
            FILE *f = fopen(json, "w");
            if (f) {
                fprintf(f, "{\"ranks\":%d,\"alpha_s\":%.6e,\"bytes_per_s\":%.6e,\"sizes\":[", N,
                        alpha, 1.0 / beta);
                for (size_t i = 0; i < ns; i++)
                    fprintf(f, "%s{\"bytes\":%zu,\"allreduce_s\":%.6e,\"allgather_s\":%.6e}",
                            i ? "," : "", 4 * sizes[i], ar[i], ag[i]);
                fprintf(f, "]}\n");
                fclose(f);
            }
        }
    }
    free(buf);
    free(all);
    dist_finish(d);
    return 0;
}

/* parallel.h - data-parallel loops without threads of core's own.
 *
 * core/ never creates threads. A program that owns threads (the CLI, the daemon,
 * the benchmark) may hand the calling thread a struct dim_parallel; from then on
 * the elementwise kernels of that thread split their loops across it. Without
 * one, every loop runs serially on the caller. Kernels partition their work into
 * disjoint ranges, so results are bitwise identical with or without a pool.
 * The setting is per thread (thread-local), so concurrent trainers on different
 * threads may use different pools or none.
 */
#ifndef DIM_BASE_PARALLEL_H
#define DIM_BASE_PARALLEL_H

#include <stddef.h>

/* Work on items [begin, end). */
typedef void (*dim_range_fn)(void *ctx, size_t begin, size_t end);

struct dim_parallel {
    /* Calls fn over disjoint ranges that together cover [0, n) and returns when
     * every call has returned. The caller's thread may run some of the ranges. */
    void (*run)(void *pool, dim_range_fn fn, void *ctx, size_t n);
    void *pool;
    /* How many ranges run may have in progress at once (its threads); 0 counts as 1. */
    int width;
};

/* Uses p for this thread's kernels from now on; NULL returns to serial loops.
 * p must stay valid while in use. */
void dim_parallel_use(const struct dim_parallel *p);

/* Runs fn over [0, n): on this thread's pool when one is set and n >= 2 * grain,
 * otherwise as one serial call fn(ctx, 0, n). */
void dim_parallel_for(size_t n, size_t grain, dim_range_fn fn, void *ctx);

/* The width of this thread's pool (1 without one): how many parts a kernel
 * that keeps per-part scratch should cut its work into. */
int dim_parallel_width(void);

/* Sets n floats to zero, split across the pool like any other loop. */
void dim_parallel_zero(float *p, size_t n);

#endif

/* threadpool.h - a fixed pool of compute threads that runs core's parallel loops.
 *
 * DESIGN: one job at a time. run() publishes (fn, ctx, n) under a mutex, bumps a
 * generation counter and wakes the workers; the range [0, n) is cut into
 * workers + 1 equal parts, part 0 run by the caller, part k by worker k. Workers
 * sleep on a condition variable between jobs; they do not spin: spinning bought
 * nothing measurable in training (bench_train) and, in the daemon, burnt the
 * CPU that HTTP threads need under encode load (bench_encode's daemon CPU per
 * image). run() is not reentrant: one pool
 * serves one calling thread (each training thread gets its own pool). Pool
 * threads never call into BLAS.
 * Depends on core/base and pthreads only.
 */
#ifndef DIMD_UTIL_THREADPOOL_H
#define DIMD_UTIL_THREADPOOL_H

#include "base/parallel.h"

struct threadpool;

/* Starts `workers` threads (0 is allowed: everything then runs on the caller).
 * Returns NULL when threads cannot be created. */
struct threadpool *threadpool_create(int workers);
/* Stops and joins the threads. */
void threadpool_free(struct threadpool *p);
/* The hook to give dim_parallel_use. Valid until threadpool_free. */
const struct dim_parallel *threadpool_parallel(struct threadpool *p);

#endif

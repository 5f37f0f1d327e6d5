/* pool.h - a fixed pool of worker threads that runs core's parallel loops.
 *
 * DESIGN: one job at a time. run() publishes (fn, ctx, n) under a mutex, bumps a
 * generation counter and wakes the workers; the range [0, n) is cut into
 * workers + 1 equal parts, part 0 run by the caller, part k by worker k. Workers
 * sleep on a condition variable between jobs; they do not spin. Spinning saved
 * nothing measurable in training (bench_train: ratio 0.57 spinning, 0.61 not,
 * same machine, within its noise) and, in the daemon, burnt the CPU that HTTP
 * threads needed: an encode under load cost 1.55 ms of daemon CPU per image
 * with spinning workers and 1.35 ms without. run() is not reentrant: one pool
 * serves one calling thread (each training thread gets its own pool). Pool
 * threads never call into BLAS.
 */
#ifndef DIMD_SERVER_POOL_H
#define DIMD_SERVER_POOL_H

#include "base/parallel.h"

struct dimd_pool;

/* Starts `workers` threads (0 is allowed: everything then runs on the caller).
 * Returns NULL when threads cannot be created. */
struct dimd_pool *dimd_pool_create(int workers);
/* Stops and joins the threads. */
void dimd_pool_free(struct dimd_pool *p);
/* The hook to give dim_parallel_use. Valid until dimd_pool_free. */
const struct dim_parallel *dimd_pool_parallel(struct dimd_pool *p);

#endif

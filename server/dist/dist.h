/* dist.h - data-parallel training over MPI: core's collectives (base/dist.h) on
 * MPI_Allreduce and MPI_Allgather, for `dimd train` started by mpirun.
 *
 * One process per rank, all on MPI_COMM_WORLD. dist_start initialises MPI and
 * must be called once, from the thread that will train (MPI_THREAD_FUNNELED:
 * only that thread calls MPI; core's compute pool never does). Every function
 * but dist_launched_size is collective: each rank calls it in the same order.
 * A communication failure ends the whole job (MPI's default error handler
 * aborts every rank), which is what a half-reduced gradient deserves.
 * Each collective is timed and its payload counted (dist_stats).
 * This layer may use core/base only; cmd/ drives it.
 */
#ifndef DIMD_DIST_DIST_H
#define DIMD_DIST_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "base/dist.h"

/* The ranks mpirun (or another launcher of Open MPI or a PMI) started this
 * process among, from the environment: OMPI_COMM_WORLD_SIZE or PMI_SIZE; 1 when
 * neither is set. Calls no MPI function. */
int dist_launched_size(void);
/* Of those, the ranks on this machine (OMPI_COMM_WORLD_LOCAL_SIZE; else the same
 * as dist_launched_size). */
int dist_launched_local_size(void);

struct dist;

/* Initialises MPI (with Open MPI's mpi_yield_when_idle 1 unless the environment sets
 * it: waiting ranks yield their core). Returns 0 and *out, or -1 with msg filled (MPI
 * missing thread support, out of memory). */
int dist_start(struct dist **out, char *msg, size_t msg_size);

/* The collectives to hand dim_trainer_create_dist; valid until dist_finish. */
const struct dim_dist *dist_hooks(const struct dist *d);
int dist_rank(const struct dist *d);
int dist_size(const struct dist *d);

/* Rank 0's n bytes of buf into every rank's buf. */
void dist_bcast(struct dist *d, void *buf, size_t n);
/* Every rank's n bytes of mine into all (size * n bytes, rank order); n < 2^31. */
void dist_allgather(struct dist *d, const void *mine, void *all, size_t n);
/* Whether flag is non-zero on any rank (every rank gets the same answer). */
int dist_any(struct dist *d, int flag);

/* What the collectives moved: per kind, calls, payload bytes (the buffer each
 * rank contributes, n * element size; a ring allreduce sends about 2 (N-1)/N of
 * it per rank, an allgather receives (N-1) times it) and wall seconds inside MPI,
 * waiting for the slower rank included. */
enum dist_kind {
    DIST_SUM_F32, /* gradient slabs, the local critic's dg and the global critic's dA */
    DIST_SUM_F64, /* batch-norm sums, loss sums and the estimators' row statistics (sum, max) */
    DIST_GATHER,  /* global MI-net outputs, global critic branches and scores */
    DIST_OTHER,   /* broadcasts and agreements (dist_bcast, dist_any) */
    DIST_KINDS
};
struct dist_stats {
    uint64_t calls[DIST_KINDS], bytes[DIST_KINDS];
    double seconds[DIST_KINDS];
};
void dist_stats(const struct dist *d, struct dist_stats *s);
const char *dist_kind_name(enum dist_kind k); /* "sum_f32", "sum_f64", "gather", "other" */

/* Finalises MPI (collective) and frees d. No MPI call is possible afterwards;
 * the process may go on alone (rank 0 probes the trained encoder). */
void dist_finish(struct dist *d);

#endif

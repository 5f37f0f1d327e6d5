/* dist.h - the collectives a data-parallel training step needs, supplied by the caller.
 *
 * core/ never talks to a network. A program that runs one training process per
 * rank (dimd under mpirun: server/dist/) hands the trainer a struct dim_dist
 * whose functions combine buffers across the ranks; core calls them from the
 * trainer's thread only, in the same order on every rank. Without one (NULL, or
 * size 1) nothing is combined and a step is bit-identical to one without this
 * module.
 *
 * While a trainer runs a forward or backward pass it sets its dim_dist as this
 * thread's current one (dim_dist_use), the way base/parallel.h hands kernels a
 * pool: batch norm in training mode (nn/norm.c) then normalises with the
 * statistics of the whole global batch (sums combined with sum_f64), every rank
 * holding an equal share of the batch.
 *
 * How a step splits (dim/trainer.c has the details): rank r of N takes images
 * [r*B/N, (r+1)*B/N) of the same seeded global batch of B. Every per-image net
 * runs on its own images. Each rank's gradients are the partial derivatives of
 * the one-process loss (a mean over the global batch) through its own images,
 * so the sum of the ranks' gradients is the one-process gradient: sum_f32 over
 * the gradient slab, then every rank applies the same Adam update and the
 * parameters stay equal without being sent.
 *
 * The functions must not fail: an implementation that cannot communicate ends
 * the job (MPI's default error handler aborts every rank). They block until
 * every rank has called them with the same n.
 * Depends on nothing.
 */
#ifndef DIM_BASE_DIST_H
#define DIM_BASE_DIST_H

#include <stddef.h>

struct dim_dist {
    int rank, size; /* this process's rank in [0, size) */
    /* buf (n) <- the elementwise sum over ranks of buf, the same on every rank */
    void (*sum_f32)(void *ctx, float *buf, size_t n);
    void (*sum_f64)(void *ctx, double *buf, size_t n);
    /* buf (n) <- the elementwise maximum over ranks (-INFINITY allowed) */
    void (*max_f64)(void *ctx, double *buf, size_t n);
    /* all (size * n) <- every rank's mine (n), in rank order */
    void (*gather_f32)(void *ctx, float *all, const float *mine, size_t n);
    void *ctx;
};

/* Makes d this thread's current collectives (NULL: none) and returns the
 * previous ones. d must stay valid while current. */
const struct dim_dist *dim_dist_use(const struct dim_dist *d);

/* This thread's current collectives when they span more than one rank, else NULL. */
const struct dim_dist *dim_dist_current(void);

#endif

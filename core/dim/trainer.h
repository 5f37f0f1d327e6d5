/* trainer.h - Deep InfoMax training steps over an in-memory dataset.
 *
 * One step: take the next batch of the current epoch's permutation, run the
 * encoder, add the local MI loss (beta), the global MI loss (alpha) and the
 * encoder's side of prior matching (gamma * mean sp(-D(sigmoid Y))), back-
 * propagate into encoder and critics and take one Adam step; then update the
 * prior discriminator D with its own Adam on real samples z ~ U[0,1]^y_dim
 * against sigmoid(Y) (detached). The discriminator's loss is never added to
 * the encoder's. Both Adams take the step's learning rate from the schedule,
 * dim_lr_at(cfg, steps taken before), so a resumed run takes the same rates.
 * All buffers are allocated by dim_trainer_create: a step never allocates.
 * Reproducibility: data order comes from data_rng (the state at the start of the
 * epoch is kept, so a resumed run regenerates the permutation); augmentation
 * and prior samples come from rng. Both are saved in checkpoints.
 * Data parallel over ranks: dim_trainer_create_dist.
 * Not thread-safe; one trainer per thread. Depends on dim/model, data/dataset, base/dist.
 */
#ifndef DIM_DIM_TRAINER_H
#define DIM_DIM_TRAINER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/dist.h"
#include "base/error.h"
#include "base/rng.h"
#include "data/dataset.h"
#include "dim/model.h"

struct dim_losses {
    double local;      /* local MI estimator loss (unweighted) */
    double global;     /* global MI estimator loss (unweighted) */
    double prior_enc;  /* mean sp(-D(sigmoid Y)) (unweighted) */
    double prior_disc; /* discriminator loss mean sp(-D(z)) + mean sp(D(sigmoid Y)) */
    double total;      /* beta*local + alpha*global + gamma*prior_enc: what the encoder minimises */
};

struct dim_train_progress {
    uint64_t step;  /* steps taken */
    uint64_t epoch; /* current epoch, from 0 */
    uint64_t pos;   /* images consumed in the current epoch */
    struct dim_rng rng, epoch_rng;
};

struct dim_trainer;

/* Creates a trainer for model m (created for training) over ds, which must
 * outlive the trainer and have at least cfg.batch images. pp gives the input
 * conversion (its size and channels must match the model) and augmentation. */
int dim_trainer_create(struct dim_trainer **out, struct dim_model *m,
                       const struct dim_dataset *ds, const struct dim_preprocess *pp,
                       struct dim_err *err);
/* The same, as rank dist->rank of dist->size ranks of one data-parallel run
 * (base/dist.h): each rank is created with the same model, dataset and
 * preprocessing, takes batch / size images of every global batch, and every
 * step calls dist's collectives, so all ranks must step together. cfg.batch
 * must be divisible by size (DIM_EINVAL otherwise). N ranks reproduce one
 * process's steps up to the order of floating-point sums (the header of
 * trainer.c says how the step splits). dist (NULL: one process) must outlive
 * the trainer. */
int dim_trainer_create_dist(struct dim_trainer **out, struct dim_model *m,
                            const struct dim_dataset *ds, const struct dim_preprocess *pp,
                            const struct dim_dist *dist, struct dim_err *err);
void dim_trainer_free(struct dim_trainer *t);

/* One training step. DIM_ENONFINITE (naming the term) when a loss is not
 * finite; the parameters are then left as before the step. */
int dim_trainer_step(struct dim_trainer *t, struct dim_losses *losses, struct dim_err *err);

/* Computes the encoder-side losses for batch x (B = cfg.batch images) and, when
 * backward is true, their gradients into the model's (zeroed first) gradient
 * slabs. No parameter changes (batch-norm running statistics do move). */
void dim_trainer_eval_batch(struct dim_trainer *t, const float *x, bool backward,
                            struct dim_losses *losses);

/* Steps per epoch (the last partial batch of an epoch is dropped). */
uint64_t dim_trainer_steps_per_epoch(const struct dim_trainer *t);

/* Where training is; dim_trainer_restore puts a new trainer at a saved point. */
void dim_trainer_progress(const struct dim_trainer *t, struct dim_train_progress *p);
int dim_trainer_restore(struct dim_trainer *t, const struct dim_train_progress *p,
                        struct dim_err *err);

/* Floating-point operations of the matrix products (convolutions, linear layers,
 * score products) one dim_trainer_step executes, forward and backward, counted
 * analytically from the layer shapes: 2 per multiply-accumulate. Elementwise
 * work (normalisation, activations, losses, Adam) is not counted. */
double dim_trainer_step_flops(const struct dim_trainer *t);

/* The batch buffer (B, C, H, W) the trainer fills; tests use it for gradient checks. */
float *dim_trainer_input(struct dim_trainer *t);

#endif

/* adam.h - Adam optimiser over one flat parameter slab.
 * Depends on nothing but libm. No allocation.
 */
#ifndef DIM_NN_ADAM_H
#define DIM_NN_ADAM_H

#include <stddef.h>
#include <stdint.h>

struct nn_adam {
    float lr, beta1, beta2, eps;
    uint64_t t; /* updates taken so far */
};

/* One update of n parameters: m, v moments; bias-corrected as in Kingma & Ba.
 * Increments a->t first. grads are read, not cleared. */
void nn_adam_update(struct nn_adam *a, float *params, const float *grads, float *m, float *v,
                    size_t n);

#endif

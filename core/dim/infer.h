/* infer.h - the inference-only form of a DIM model's encoder.
 *
 * Built from a loaded model (dim_infer_create) and immutable afterwards: every
 * convolution or linear layer followed by a batch norm gets the norm folded into
 * its weights and bias (running statistics: w' = w * g, b' = (b - mean) * g +
 * beta, g = gamma / sqrt(var + eps), in double), a following ReLU is applied in
 * the same pass as the bias, and convolutions run channels-last
 * (nn/infer_conv.h), so a linear layer after a map gets its input columns
 * permuted from (C, H, W) to (H, W, C) order. It holds only the folded encoder
 * parameters: no gradients, no optimiser state, no running statistics, no
 * critics. The model it came from stays the reference (dim_model_encode); the
 * two agree to float rounding (tests/core/test_infer.c checks 1e-4 relative on
 * real images).
 * Every tap of the model must end a folded group (it does in every preset: taps
 * sit on ReLU outputs and on Y); otherwise dim_infer_create refuses.
 * Thread-safety: many threads may encode with one form, each with its own
 * workspace. Depends on dim/model, nn/infer_conv, base.
 */
#ifndef DIM_DIM_INFER_H
#define DIM_DIM_INFER_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"
#include "dim/model.h"

#define DIM_INFER_BLOCK_FLOATS 262144 /* column block per part: 1 MiB (measured, README) */

struct dim_infer_op {
    bool conv;           /* else fully connected */
    struct nn_conv2d cv; /* conv: geometry (input and output channels-last) */
    size_t in, out;      /* floats per image */
    bool relu;
    size_t w, b;         /* offsets into params */
    size_t rows;         /* conv: output pixels per block */
};

struct dim_infer {
    int n;
    struct dim_infer_op op[NN_NET_MAX_LAYERS];
    int tap_op[4];     /* op whose output is each tap (enum dim_tap) */
    int in_c, in_h, in_w;
    size_t n_params;
    float *params;
};

/* Per-thread activations for batches up to cap. */
struct dim_infer_ws {
    size_t cap;
    int parts; /* the pool width when created: slices of conv scratch */
    float *act[NN_NET_MAX_LAYERS];
    float *x;       /* channels-last input (only when in_c > 1) */
    float *tap;     /* a map tap back in (C, H, W) order */
    float *scratch; /* conv column blocks */
    float *slab;
};

/* Folds m's encoder (as loaded; m itself is not changed). Returns 0, DIM_EINVAL
 * (a layer sequence or tap it cannot fold, named in err) or DIM_ENOMEM. */
int dim_infer_create(struct dim_infer **out, const struct dim_model *m, struct dim_err *err);
void dim_infer_free(struct dim_infer *inf);

/* A workspace for batches up to cap, its conv scratch cut for the pool of the
 * calling thread (base/parallel.h). Free with dim_infer_ws_free. */
int dim_infer_ws_create(struct dim_infer_ws *ws, const struct dim_infer *inf, size_t cap,
                        struct dim_err *err);
void dim_infer_ws_free(struct dim_infer_ws *ws);

/* As dim_model_encode: x (B, in_c, in_h, in_w), B <= ws->cap; returns the tap's
 * features (B, tap size) in the reference layout ((C, H, W) for map taps), valid
 * until the next call with ws. */
const float *dim_infer_encode(const struct dim_infer *inf, struct dim_infer_ws *ws, const float *x,
                              size_t B, enum dim_tap tap);

#endif

/* model.h - a Deep InfoMax model: encoder preset, MI critics, prior discriminator,
 * their parameters, batch-norm state and optimiser state.
 *
 * Memory: three slabs. "main" holds the encoder then the local MI nets, then the
 * global critic (each present only when its loss weight is > 0), trained by one
 * Adam; "prior" holds the prior discriminator, trained by its own Adam; "state"
 * holds batch-norm running statistics. Gradients and Adam moments exist only for
 * a model created for training. Activations are never in the model: inference
 * uses a struct dim_encode_ws per thread, training a struct dim_trainer.
 * Depends on nn/, base/.
 */
#ifndef DIM_DIM_MODEL_H
#define DIM_DIM_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "base/rng.h"
#include "data/image.h"
#include "dim/estimator.h"
#include "dim/minet.h"
#include "nn/adam.h"
#include "nn/net.h"

enum dim_preset { DIM_BASIC32 = 0, DIM_BASIC28 = 1, DIM_BASIC64 = 2 };
#define DIM_LR_STEPS_MAX 1000000000000ull /* bound of lr_warmup and lr_horizon (1e12) */
/* How the learning rate moves over a run (dim_lr_at). */
enum dim_lr_schedule { DIM_LR_CONSTANT = 0, DIM_LR_COSINE = 1, DIM_LR_STEP = 2 };
enum dim_tap { DIM_TAP_CONV = 0, DIM_TAP_FC = 1, DIM_TAP_Y = 2, DIM_TAP_LOCAL = 3 };
#define DIM_N_PROBE_TAPS 3 /* conv, fc, Y */

/* Everything that fixes the model's architecture and its training maths.
 * Field names are the CLI flags and the service's JSON keys. */
struct dim_config {
    enum dim_preset preset;
    int in_c;      /* input channels: 1 or 3 */
    int y_dim;     /* width of Y (default 64) */
    int mi_dim;    /* D, width of the MI embedding (default 512) */
    enum dim_estimator estimator;
    float alpha;   /* global MI weight */
    float beta;    /* local MI weight */
    float gamma;   /* prior matching weight */
    float lr, adam_beta1, adam_beta2, adam_eps;
    enum dim_lr_schedule lr_schedule; /* default constant: lr at every step */
    uint64_t lr_warmup;    /* steps of linear warm-up from lr/lr_warmup to lr (default 0) */
    float lr_final;        /* cosine: the lr at the horizon, as a fraction of lr (default 0.01) */
    float lr_step_factor;  /* step: lr is multiplied by this at 50 % and 75 % of the decay */
    uint64_t lr_horizon;   /* steps the schedule spans, warm-up included; 0: the run's own
                            * length, which whoever starts a decaying run resolves
                            * (dim_config_resolve_lr) */
    uint32_t batch;
    uint64_t seed;
};

struct dim_model {
    struct dim_config cfg;
    int in_h, in_w;
    struct nn_net enc;
    int tap_layer[4];          /* encoder layer whose output is each tap */
    int local_c, local_h, local_w;
    bool has_local, has_global, has_prior;
    struct dim_minet lmi, gmi; /* local DIM: on local vectors and on Y */
    struct nn_net gc_conv;     /* global critic: map -> conv, relu, conv -> linear 512 */
    struct nn_net gc_y;        /* global critic: Y -> linear 512 (no bias) */
    struct nn_net gc_head;     /* relu, linear 512, relu, linear 1 */
    struct nn_net prior;       /* 64 -> 1000 -> 200 -> 1 */
    size_t n_main, n_prior, n_state;
    float *main_params, *main_grads, *main_m, *main_v;
    float *prior_params, *prior_grads, *prior_m, *prior_v;
    float *state;
    struct nn_adam opt_main, opt_prior;
    bool training;
};

/* The paper's defaults: basic32x32, 1 channel, Y 64, D 512, JSD, DIM(L) weights
 * alpha 0, beta 1, gamma 0.1, Adam lr 5e-4 betas (0.5, 0.999) eps 1e-8, batch 64, seed 1;
 * a constant lr (schedule constant, no warm-up; lr_final 0.01, lr_step_factor 0.1, lr_horizon 0). */
void dim_config_default(struct dim_config *cfg);
/* Checks every field; the message names the first bad one and its value. */
int dim_config_validate(const struct dim_config *cfg, struct dim_err *err);

/* The learning rate of step `step` (0-based: the number of steps taken before
 * it), a pure function of (cfg, step), so a resumed run takes the same rates:
 *   warm-up, step < W = lr_warmup:  lr * (step + 1) / W
 *   then p = (step - W) / (H - W) in [0, 1] (H = lr_horizon; 1 when H <= W or past H),
 *   constant: lr;  cosine: lr * (f + (1 - f) * (1 + cos(pi p)) / 2), f = lr_final;
 *   step: lr * lr_step_factor^k, k the number of 0.5 and 0.75 that p has reached.
 * With lr_horizon 0 (unresolved) a decay schedule does not decay.
 * constant without warm-up returns cfg->lr itself: training is as before schedules. */
float dim_lr_at(const struct dim_config *cfg, uint64_t step);
/* Resolves lr_horizon 0 to total_steps, the run's length, for a decaying schedule
 * (cosine, step); a constant lr does not need it, and keeps 0 (so a constant run's
 * checkpoint does not depend on how many steps it was asked for). */
void dim_config_resolve_lr(struct dim_config *cfg, uint64_t total_steps);
/* Whether the lr changes over the run (a schedule other than constant, or a warm-up). */
bool dim_lr_varies(const struct dim_config *cfg);
const char *dim_lr_schedule_name(enum dim_lr_schedule s); /* "constant", "cosine", "step" */
int dim_lr_schedule_parse(const char *name, enum dim_lr_schedule *out);

const char *dim_preset_name(enum dim_preset p); /* "basic32x32" ... */
int dim_preset_parse(const char *name, enum dim_preset *out);
const char *dim_tap_name(enum dim_tap t); /* "conv", "fc", "y", "local" */
int dim_tap_parse(const char *name, enum dim_tap *out);
/* The preset's input size (32, 28 or 64). */
int dim_preset_size(enum dim_preset p);

/* Builds the architecture for cfg and allocates its slabs (with gradients and
 * Adam moments when training). Parameters are initialised from cfg->seed.
 * Returns 0, DIM_EINVAL (bad config) or DIM_ENOMEM. Free with dim_model_free. */
int dim_model_create(struct dim_model **out, const struct dim_config *cfg, bool training,
                     struct dim_err *err);
void dim_model_free(struct dim_model *m);

/* The preprocessing that feeds m its inputs: m's channels and input size, no
 * augmentation (what encoding, probing and serving use). */
struct dim_preprocess dim_model_preprocess(const struct dim_model *m);

/* Re-initialises all parameters and optimiser state from rng. */
void dim_model_init_params(struct dim_model *m, struct dim_rng *rng);
/* Zeroes all gradients. */
void dim_model_zero_grads(struct dim_model *m);
/* Per-sample size of a tap's features. */
size_t dim_model_tap_size(const struct dim_model *m, enum dim_tap t);
/* Number of floats in the encoder's parameters (a prefix of main_params). */
size_t dim_model_encoder_params(const struct dim_model *m);

/* Inference workspace: one per thread, for batches up to cap. */
struct dim_encode_ws {
    size_t cap;
    struct nn_net_ws enc;
    float *slab;
};
int dim_encode_ws_create(struct dim_encode_ws *ws, const struct dim_model *m, size_t cap,
                         struct dim_err *err);
void dim_encode_ws_free(struct dim_encode_ws *ws);

/* Runs the encoder in inference mode (running BN statistics) on x (B, in_c, in_h,
 * in_w), B <= ws->cap, and returns the tap's features (B, tap size), valid until
 * the next call with ws. DIM_TAP_LOCAL returns the local map. Read-only on m:
 * many threads may encode with one model, each with its own ws. */
const float *dim_model_encode(const struct dim_model *m, struct dim_encode_ws *ws,
                              const float *x, size_t B, enum dim_tap tap);

#endif

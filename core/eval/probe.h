/* probe.h - classification probes on a frozen encoder's features, and on the
 * raw pixels as the baseline every comparison carries.
 *
 * Features of the conv, fc and Y taps are extracted once (encoder in inference
 * mode, no augmentation) and a probe is fitted on the training split's features
 * and scored on the test split's:
 *   linear: multinomial logistic regression solved to convergence with its L2
 *           weight chosen on a validation split carved from the training split
 *           (eval/linclass.h: the protocol, the tolerance and what is reported).
 *           The answer depends on the data and the tolerance, not on a step budget.
 *   mlp:    the paper's probe, linear 200 -> dropout 0.1 -> BN -> ReLU -> linear,
 *           trained with softmax cross-entropy and Adam for a number of epochs,
 *           the learning rate divided by 10 after half and again after three
 *           quarters of them; features standardised first.
 * The pixel baseline runs the same probe on the model's input images (the
 * preprocessed pixels, flattened), so a reader sees what the encoder adds.
 * Depends on eval/linclass, dim/model, data/dataset, nn/.
 */
#ifndef DIM_EVAL_PROBE_H
#define DIM_EVAL_PROBE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "data/dataset.h"
#include "dim/model.h"
#include "eval/linclass.h"

enum dim_probe_kind { DIM_PROBE_LINEAR = 0, DIM_PROBE_MLP = 1 };

/* Rows of a probe comparison: the taps conv, fc, y (enum dim_tap), then the pixels. */
#define DIM_PROBE_PIXELS DIM_N_PROBE_TAPS
#define DIM_PROBE_ROWS (DIM_N_PROBE_TAPS + 1)
/* "conv", "fc", "y", "pixels". Static storage. */
const char *dim_probe_row_name(int row);

struct dim_probe_opts {
    enum dim_probe_kind kind;
    struct dim_linclass_opts linear; /* linear: solver and lambda search (its defaults) */
    int epochs;    /* mlp: passes over the training features (default 20) */
    float lr;      /* mlp: initial Adam learning rate (default 1e-2) */
    size_t batch;  /* mlp: default 256 */
    uint64_t seed; /* mlp: init, order and dropout */
    const atomic_bool *cancel; /* optional (default NULL): when set, the probe stops with
                                  DIM_ECANCELLED at its next step */
};

void dim_probe_opts_default(struct dim_probe_opts *o);
const char *dim_probe_kind_name(enum dim_probe_kind k); /* "linear", "mlp" */

/* Extracted features of one split: X[tap] is (n, dim[tap]) for conv, fc, Y. */
struct dim_features {
    size_t n;
    size_t dim[DIM_N_PROBE_TAPS];
    float *X[DIM_N_PROBE_TAPS];
    uint16_t *labels;
};

/* Encodes every image of ds (converted by pp, no augmentation) and keeps the
 * conv, fc and Y features. Allocates; free with dim_features_free. */
int dim_features_extract(const struct dim_model *m, const struct dim_dataset *ds,
                         const struct dim_preprocess *pp, struct dim_features *f,
                         struct dim_err *err);
void dim_features_free(struct dim_features *f);

/* Fits a probe on (Xtr, ytr) and scores it on (Xte, yte), both (n, dim),
 * standardised in place. Fills *r: the test accuracy always; for the linear
 * probe the solve's figures too (for the MLP those are NaN and 0). Allocates
 * its own workspace. DIM_ECANCELLED when o->cancel is set. */
int dim_probe_run(float *Xtr, const uint16_t *ytr, size_t ntr, float *Xte, const uint16_t *yte,
                  size_t nte, size_t dim, int n_classes, const struct dim_probe_opts *o,
                  struct dim_linclass_result *r, struct dim_err *err);

/* Probes m on every tap (features of train and test by dim_model_preprocess),
 * with train's n_classes: res[t] for tap t. On failure err names the tap
 * ("tap y: ..."). Allocates. */
int dim_probe_model(const struct dim_model *m, const struct dim_dataset *train,
                    const struct dim_dataset *test, const struct dim_probe_opts *o,
                    struct dim_linclass_result res[DIM_N_PROBE_TAPS], struct dim_err *err);

/* The same probe on the pixels of train and test as converted by pp (what the
 * model would receive). Allocates ((ntr + nte) * pp's size floats). */
int dim_probe_pixels(const struct dim_dataset *train, const struct dim_dataset *test,
                     const struct dim_preprocess *pp, const struct dim_probe_opts *o,
                     struct dim_linclass_result *r, struct dim_err *err);

/* The pixels of every image of ds converted by pp, as rows (n, c * h * w) into
 * *X (malloc'd) and labels into *y (malloc'd). DIM_ENOMEM. */
int dim_pixels_extract(const struct dim_dataset *ds, const struct dim_preprocess *pp, float **X,
                       uint16_t **y, struct dim_err *err);

#endif

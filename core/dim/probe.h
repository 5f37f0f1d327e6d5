/* probe.h - classification probes on a frozen encoder's features.
 *
 * Features of the conv, fc and Y taps are extracted once (encoder in inference
 * mode), standardised with the training split's per-feature mean and standard
 * deviation, then a probe is trained with softmax cross-entropy and Adam, its
 * learning rate divided by 10 after half and again after three quarters of the
 * epochs (the paper's probe schedule, compressed) so that the probe converges:
 *   linear: one linear layer (multinomial logistic regression)
 *   mlp:    the paper's probe, linear 200 -> dropout 0.1 -> BN -> ReLU -> linear
 * Both the trained and a freshly initialised encoder go through the identical
 * protocol, so their accuracies are comparable.
 * Depends on dim/model, data/dataset, nn/.
 */
#ifndef DIM_DIM_PROBE_H
#define DIM_DIM_PROBE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "data/dataset.h"
#include "dim/model.h"

enum dim_probe_kind { DIM_PROBE_LINEAR = 0, DIM_PROBE_MLP = 1 };

struct dim_probe_opts {
    enum dim_probe_kind kind;
    int epochs;    /* passes over the training features (default 20) */
    float lr;      /* initial Adam learning rate (default 1e-2) */
    size_t batch;  /* default 256 */
    uint64_t seed; /* init, order and dropout */
    const atomic_bool *cancel; /* optional (default NULL): when set, training stops with
                                  DIM_ECANCELLED at the next batch */
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

/* x = (x - mean_train) / std_train per feature, in place on Xtr (ntr, dim) and
 * Xte (nte, dim), statistics from the training rows only; features with std
 * <= 1e-6 become 0. acc: 2 * dim doubles of workspace. No allocation. */
void dim_probe_standardise(float *Xtr, size_t ntr, float *Xte, size_t nte, size_t dim,
                           double *acc);

/* Trains a probe on train features of one tap and returns test accuracy in
 * *accuracy (fraction in [0, 1]). Standardises train and test in place.
 * Allocates its own (small) workspace. DIM_ECANCELLED when o->cancel is set. */
int dim_probe_run(float *Xtr, const uint16_t *ytr, size_t ntr, float *Xte, const uint16_t *yte,
                  size_t nte, size_t dim, int n_classes, const struct dim_probe_opts *o,
                  double *accuracy, struct dim_err *err);

/* Probes m on every tap: features of train and test (dim_model_preprocess),
 * then dim_probe_run per tap with train's n_classes; acc[t] gets tap t's test
 * accuracy. On failure err names the tap ("tap y: ..."). Allocates. */
int dim_probe_model(const struct dim_model *m, const struct dim_dataset *train,
                    const struct dim_dataset *test, const struct dim_probe_opts *o,
                    double acc[DIM_N_PROBE_TAPS], struct dim_err *err);

#endif

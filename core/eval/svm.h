/* svm.h - linear multiclass support vector machine on frozen features (the
 * paper's "linear SVM" measure), for any tap of struct dim_features.
 *
 * Model: scores s = W x + b, W (K, dim). Loss: the Crammer-Singer multiclass
 * hinge with L2 regularisation of W (not b),
 *     loss = mean_i max(0, 1 + max_{k != y_i} s_ik - s_iy_i) + lambda / 2 * ||W||^2,
 * minimised by minibatch Adam with the cosine-decayed learning rate of
 * trainnet.h over opts.epochs passes in a random order. Prediction: argmax_k s_k.
 * Features are standardised first (training split's per-feature mean and std,
 * in place, as the probes do). Several seeds (initialisation and order) give a
 * mean and a sample standard deviation of the test accuracy.
 * Allocation: each run allocates its (small) state once; steps do not.
 * Depends on eval/trainnet, eval/stats, eval/hooks, nn/, base/.
 */
#ifndef DIM_EVAL_SVM_H
#define DIM_EVAL_SVM_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "eval/hooks.h"

struct dim_svm_opts {
    int epochs;    /* passes over the training features (default 5) */
    size_t batch;  /* default 256 */
    float lr;      /* initial Adam learning rate (default 1e-2) */
    float lambda;  /* L2 weight (default 1e-4) */
    int seeds;     /* runs for mean and spread (default 3) */
    uint64_t seed; /* first seed; run r uses seed + r */
};

void dim_svm_opts_default(struct dim_svm_opts *o);

/* Crammer-Singer hinge over rows of scores s (B, K) with labels y: returns
 * mean_i max(0, 1 + max_{k != y_i} s_ik - s_iy_i) and writes ds = d loss / d s
 * (overwrites): for each row with a positive margin violation, +1/B at the
 * highest-scoring wrong class (the first one on ties) and -1/B at y_i. */
double dim_svm_hinge_loss(float *ds, const float *s, const uint16_t *y, size_t B, size_t K);

/* One SVM with opts->seed + run as its seed, on features already standardised:
 * trains on (Xtr, ytr) and writes the test accuracy in [0, 1] to *accuracy.
 * Xtr, Xte are read only. Returns 0, DIM_EINVAL, DIM_ENOMEM, DIM_ENONFINITE or
 * DIM_ECANCELLED. */
int dim_svm_train_eval(const float *Xtr, const uint16_t *ytr, size_t ntr, const float *Xte,
                       const uint16_t *yte, size_t nte, size_t dim, int n_classes,
                       const struct dim_svm_opts *o, int run, const struct dim_hooks *h,
                       double *accuracy, struct dim_err *err);

/* Standardises Xtr and Xte in place (idempotent up to rounding), then runs
 * opts->seeds SVMs and writes the mean and sample standard deviation (0 for one
 * seed) of their test accuracies. Errors as dim_svm_train_eval; *mean and *sd
 * are NaN on failure. */
int dim_svm_run(float *Xtr, const uint16_t *ytr, size_t ntr, float *Xte, const uint16_t *yte,
                size_t nte, size_t dim, int n_classes, const struct dim_svm_opts *o,
                const struct dim_hooks *h, double *mean, double *sd, struct dim_err *err);

#endif

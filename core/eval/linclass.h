/* linclass.h - linear classifiers on frozen features, solved to convergence:
 * the linear probe and the linear SVM of the paper's measures, as convex
 * problems whose answer does not depend on a step budget.
 *
 * Model: scores s = W x + b, W (K, D), b (K); prediction argmax_k s_k.
 * Objective over the n rows it is fitted on (means, so lambda does not scale with n):
 *   softmax  f = mean_i -log softmax(s_i)[y_i]          + lambda / 2 * ||W||^2
 *            (multinomial logistic regression: the linear probe)
 *   svm      f = mean_i sum_k max(0, 1 - t_ik s_ik)^2    + lambda / 2 * ||W||^2,
 *            t_ik = +1 when y_i = k, else -1 (one-vs-rest L2-loss SVM: LIBLINEAR's
 *            -s 2, scikit-learn's LinearSVC default)
 * Both are convex with a continuous gradient; b is not penalised. L-BFGS
 * (nn/lbfgs.h) minimises f until ||grad f||_2 <= gtol or max_iter iterations,
 * preconditioned with the features' covariance (dim_linclass_fit) when there are
 * at least twice as many rows as features.
 *
 * Protocol of dim_linclass_run: the features are standardised with the training
 * rows' per-feature mean and standard deviation (in place, train and test); a
 * validation split of val_fraction of the training rows is carved with a seeded
 * permutation; lambda runs down the grid (largest first, each solve warm-started
 * from the previous solution) fitting the next search_rows of the permuted rows
 * (all the others when fewer) and scoring the validation rows (those solves stop
 * at 10 x gtol: they only rank the lambdas),
 * and stops early once the validation accuracy has fallen on two grid points in
 * a row; the lambda of the best validation accuracy (the larger on
 * ties) is refitted on all training rows, warm-started from its path solution,
 * and scored on the test rows.
 *
 * Threads: none of its own. Every function evaluation splits the rows into 16
 * fixed chunks run on the calling thread's pool (base/parallel.h) and adds their
 * partial gradients in chunk order, so results do not depend on the pool.
 * Allocation: per call (the solver's history, the chunks' partial gradients).
 * Depends on nn/lbfgs, eval/hooks, eval/stats, base/ (BLAS and LAPACK).
 */
#ifndef DIM_EVAL_LINCLASS_H
#define DIM_EVAL_LINCLASS_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "eval/hooks.h"
#include "nn/lbfgs.h"

enum dim_linclass_loss { DIM_LINCLASS_SOFTMAX = 0, DIM_LINCLASS_SVM = 1 };

#define DIM_LINCLASS_MAX_LAMBDAS 12

struct dim_linclass_opts {
    enum dim_linclass_loss loss;
    double gtol;         /* ||grad f||_2 tolerance of every solve (default 1e-4) */
    int max_iter;        /* L-BFGS iterations per solve (default 1000) */
    int n_lambdas;       /* grid size, 1..DIM_LINCLASS_MAX_LAMBDAS (default 6) */
    double lambdas[DIM_LINCLASS_MAX_LAMBDAS]; /* descending (default 1e-1 .. 1e-6 by 10x) */
    double val_fraction; /* of the training rows, in (0, 0.5] (default 0.1); ignored with
                            one lambda (no search: fits all training rows directly) */
    uint64_t seed;       /* the validation carve (default 1) */
    size_t search_rows;  /* most rows the lambda search fits on (default 10000; 0: all).
                            The search costs its solves times its rows; the final fit
                            always takes every training row. */
};

struct dim_linclass_result {
    double accuracy;        /* test accuracy in [0, 1] */
    double lambda;          /* the chosen L2 weight */
    double val_accuracy;    /* its validation accuracy (NaN without a search) */
    int iterations;         /* of the final fit */
    double gnorm;           /* ||grad f||_2 at the final fit's solution */
    enum nn_lbfgs_stop stop; /* how the final fit stopped */
    int lambdas_tried;      /* grid points solved before the early stop */
    int path_iterations;    /* iterations of every solve, the final fit included */
    double seconds;
};

void dim_linclass_opts_default(struct dim_linclass_opts *o);
const char *dim_linclass_loss_name(enum dim_linclass_loss l); /* "softmax", "svm" */

/* Objective at params w (K * (D + 1) doubles: W row-major, then b) over the rows
 * of X (n, D) listed in rows (all n rows in order when rows is NULL), with labels
 * y indexed like X: returns f and writes its gradient into g (same layout). For
 * tests and the solver; no allocation but 16 chunk buffers per call. On
 * allocation failure returns NaN. */
double dim_linclass_objective(enum dim_linclass_loss loss, double lambda, const double *w,
                              double *g, const float *X, const uint16_t *y, const uint32_t *rows,
                              size_t n, size_t D, int K);

/* Covariance (1/s) X_s' X_s of an evenly spaced sample of s = min(n, max(4096,
 * 2 D)) of the rows (rows, n: as in dim_linclass_objective) into *C (malloc'd
 * (D, D) doubles): the preconditioner's estimate of the features' second moments
 * (they are standardised, so it is their correlation matrix). DIM_ENOMEM. */
int dim_linclass_covariance(const float *X, const uint32_t *rows, size_t n, size_t D, double **C,
                            struct dim_err *err);

/* Fits W, b (w, K * (D + 1) doubles, the starting point on entry, the solution
 * on return) on the rows of X listed in rows (NULL: all n) at one lambda. With
 * C (from dim_linclass_covariance) L-BFGS is preconditioned by the inverse of
 * the Hessian the objective would have with a constant curvature per row,
 * (a C + lambda I)^-1 per class (a Cholesky factorisation per call, D^3 / 3
 * flops): the solution is the same, it takes far fewer iterations on correlated
 * features. NULL: plain L-BFGS. Returns 0 with *r filled, or DIM_ENOMEM,
 * DIM_ENONFINITE, DIM_ECANCELLED. */
int dim_linclass_fit(enum dim_linclass_loss loss, double lambda, double *w, const float *X,
                     const uint16_t *y, const uint32_t *rows, size_t n, size_t D, int K,
                     const double *C, const struct dim_linclass_opts *o,
                     const struct dim_hooks *h, struct nn_lbfgs_result *r, struct dim_err *err);

/* Fraction of the rows of X (NULL rows: all n) whose argmax score is their label. */
double dim_linclass_accuracy(const double *w, const float *X, const uint16_t *y,
                             const uint32_t *rows, size_t n, size_t D, int K);

/* The protocol above on features Xtr (ntr, D) and Xte (nte, D), standardised in
 * place. Needs ntr >= 2 (>= 2 per split when searching), nte >= 1, K >= 2.
 * Fills *r. Returns 0, DIM_EINVAL (naming the bad size or option), DIM_ENOMEM,
 * DIM_ENONFINITE or DIM_ECANCELLED (h's flag). */
int dim_linclass_run(float *Xtr, const uint16_t *ytr, size_t ntr, float *Xte,
                     const uint16_t *yte, size_t nte, size_t D, int K,
                     const struct dim_linclass_opts *o, const struct dim_hooks *h,
                     struct dim_linclass_result *r, struct dim_err *err);

#endif

/* evaluate.h - the one entry point that measures a frozen encoder the way the
 * Deep InfoMax paper does (section 7 of docs/dim-algorithm.md); the service's
 * evaluation jobs and `dimd measure` both call dim_evaluate.
 *
 * Measures (any subset, as a bit mask):
 *   linear  linear probe (softmax regression solved to convergence, L2 weight
 *           chosen on a validation split) on the conv, fc and Y taps and on
 *           the pixels                                         (eval/probe.h, eval/linclass.h)
 *   mlp     the paper's MLP probe on the same rows             (eval/probe.h)
 *   svm     linear SVM (squared hinge, one-vs-rest, solved like the linear
 *           probe) on the same rows                            (eval/linclass.h)
 *   ndm     neural dependency measure of Y, and of sigmoid(Y)  (eval/ndm.h)
 *   mine    MINE estimate of I(X; Y) in nats                   (eval/mine.h)
 *   recon   MLP decoder on frozen Y: test MSE, SSIM, MS-SSIM and a PNG grid of
 *           originals over reconstructions                     (eval/recon.h, eval/ssim.h)
 * Protocol: the training and test images (or evenly spaced subsets of at most
 * max_train and max_test of them) are encoded once (inference mode, no augmentation,
 * converted by pp); classifiers train on the training features and report test
 * accuracy, with the same classifier on the model's input pixels as a
 * baseline row; NDM, MINE and the decoder train on the training subset and report
 * on the test subset. Images enter MINE as model inputs ([-1, 1]); the decoder's
 * targets and the SSIM inputs are the same images mapped to [0, 1].
 * Every measure has its own seed derived from opts.seed, so a run is
 * reproducible and the same budget applied to two encoders (a trained one and
 * a freshly initialised one) gives comparable numbers.
 * Threads: none of its own; the matrix products use the calling thread's pool
 * (base/parallel.h) when one is set. Allocates per call (features, the
 * measures' state); nothing is kept after it returns except r->grid_png.
 * Depends on dim/, eval/, data/, nn/, base/.
 */
#ifndef DIM_EVAL_EVALUATE_H
#define DIM_EVAL_EVALUATE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "data/dataset.h"
#include "dim/model.h"
#include "eval/hooks.h"
#include "eval/linclass.h"
#include "eval/probe.h"

enum dim_measure {
    DIM_MEASURE_LINEAR = 1u << 0,
    DIM_MEASURE_MLP = 1u << 1,
    DIM_MEASURE_SVM = 1u << 2,
    DIM_MEASURE_NDM = 1u << 3,
    DIM_MEASURE_MINE = 1u << 4,
    DIM_MEASURE_RECON = 1u << 5,
};
#define DIM_N_MEASURES 6
#define DIM_MEASURE_ALL 0x3fu

/* Name of one measure ("linear", "mlp", "svm", "ndm", "mine", "recon"); "?" for
 * anything that is not a single measure bit. Static storage. */
const char *dim_measure_name(unsigned measure);
/* Position 0..5 of a single measure bit (the order above); -1 otherwise. */
int dim_measure_index(unsigned measure);
/* Parses a comma-separated list of names, or "all", into *mask (no spaces,
 * duplicates allowed). DIM_EINVAL naming the first unknown or empty entry. */
int dim_measure_parse(const char *list, unsigned *mask, struct dim_err *err);
/* Writes the names of mask's measures, comma-separated in the order above, into
 * buf (capacity cap, always terminated when cap > 0); returns the length needed. */
size_t dim_measure_format(unsigned mask, char *buf, size_t cap);

struct dim_eval_opts {
    unsigned measures;        /* enum dim_measure bits (default DIM_MEASURE_ALL) */
    uint64_t seed;            /* base seed of every measure (default 1) */
    size_t max_train;         /* training images used, evenly spaced; 0 = all (default 10000) */
    size_t max_test;          /* test images used, evenly spaced; 0 = all (default 0) */
    int probe_epochs;         /* linear and MLP probes (default 10) */
    int svm_epochs;           /* per SVM run (default 5) */
    int svm_seeds;            /* SVM runs per tap, for mean and std (default 3) */
    int ndm_steps;            /* discriminator updates, per NDM variant (default 600) */
    int mine_steps;           /* critic updates (default 800) */
    int recon_epochs;         /* decoder passes over the training subset (default 15) */
    int grid_pairs;           /* originals/reconstruction pairs in the PNG (default 10; 0: none) */
    dim_progress_fn progress; /* optional: (ctx, stage, overall fraction in [0, 1]) */
    void *progress_ctx;
    const atomic_bool *cancel; /* optional: when set, dim_evaluate returns DIM_ECANCELLED
                                  at the next training step */
};

struct dim_eval_result {
    unsigned measures;      /* the measures that ran */
    unsigned failed;        /* measures that diverged (non-finite): their values are NaN */
    char failure[256];      /* the first such failure's message, "" when none */
    size_t n_train, n_test; /* images used */
    /* Every figure below is NaN when its measure did not run (or failed).
     * Classifier rows: conv, fc, y, then pixels (DIM_PROBE_PIXELS). */
    struct dim_linclass_result linear[DIM_PROBE_ROWS]; /* .accuracy: test, in [0, 1] */
    double mlp[DIM_PROBE_ROWS];                        /* test accuracy */
    struct dim_linclass_result svm[DIM_PROBE_ROWS];
    double ndm, ndm_sigmoid;           /* DV estimate of KL(joint || product of marginals), nats */
    double mine;                       /* DV estimate of I(X; Y), nats */
    double ssim, ms_ssim;              /* test reconstructions vs originals; ms_ssim NaN when
                                          fewer than 2 scales fit the image */
    int ms_ssim_scales;                /* scales MS-SSIM used (0: unavailable) */
    double recon_mse;                  /* per-pixel MSE in [0, 1] pixel units */
    uint8_t *grid_png;                 /* malloc'd PNG (recon with grid_pairs > 0), or NULL */
    size_t grid_png_size;
    double seconds[DIM_N_MEASURES]; /* wall-clock per measure (by dim_measure_index); NaN
                                       when not run */
    double seconds_features;        /* encoding the images */
    double seconds_total;
};

void dim_eval_opts_default(struct dim_eval_opts *o);

/* Measures model m (read only; any preset) with training split train and test
 * split test (their images converted by pp, whose size and channels must match
 * the model) and fills r (which it initialises; free with dim_eval_result_free
 * whatever the return value). Classifier measures need >= 2 classes; every
 * measure needs >= 2 images in each split. A measure whose training diverges is
 * recorded in r->failed with NaN values and the others still run. Returns 0,
 * DIM_EINVAL or DIM_ESHAPE (naming the offending option or shape), DIM_ENOMEM,
 * or DIM_ECANCELLED (opts->cancel was set; r holds the measures completed so far). */
int dim_evaluate(const struct dim_model *m, const struct dim_dataset *train,
                 const struct dim_dataset *test, const struct dim_preprocess *pp,
                 const struct dim_eval_opts *o, struct dim_eval_result *r, struct dim_err *err);

/* Frees r->grid_png and leaves r with NaN figures. */
void dim_eval_result_free(struct dim_eval_result *r);

#endif

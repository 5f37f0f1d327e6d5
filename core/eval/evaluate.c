/* evaluate.c - all representation measures behind one call (see evaluate.h). */
#include "eval/evaluate.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eval/probe.h"
#include "eval/mine.h"
#include "eval/ndm.h"
#include "eval/recon.h"
#include "eval/ssim.h"
#include "eval/stats.h"

static const char *const measure_names[DIM_N_MEASURES] = {"linear", "mlp",  "svm",
                                                          "ndm",    "mine", "recon"};

/* Relative cost of each stage at the default budgets (for the overall progress
 * fraction only): features, then the measures in their order; measured seconds
 * / 10 of a basic32x32 model on Fashion-MNIST on 2 cores. */
static const double stage_weight[1 + DIM_N_MEASURES] = {3.4, 0.2, 1.0, 0.25, 1.3, 3.0, 1.7};

int dim_measure_index(unsigned m)
{
    if (m == 0 || (m & (m - 1)) != 0 || (m & ~DIM_MEASURE_ALL) != 0)
        return -1;
    int i = 0;
    while (!(m & 1u)) {
        m >>= 1;
        i++;
    }
    return i;
}

const char *dim_measure_name(unsigned m)
{
    int i = dim_measure_index(m);
    return i < 0 ? "?" : measure_names[i];
}

int dim_measure_parse(const char *list, unsigned *mask, struct dim_err *err)
{
    *mask = 0;
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        unsigned bit = 0;
        if (n == 3 && strncmp(p, "all", 3) == 0)
            bit = DIM_MEASURE_ALL;
        for (int i = 0; i < DIM_N_MEASURES && !bit; i++)
            if (strlen(measure_names[i]) == n && strncmp(p, measure_names[i], n) == 0)
                bit = 1u << i;
        if (!bit) {
            *mask = 0;
            if (n == 0)
                return dim_fail(err, DIM_EINVAL, "empty entry in measure list '%s'", list);
            return dim_fail(err, DIM_EINVAL,
                            "unknown measure '%.*s' (known: linear, mlp, svm, ndm, mine, "
                            "recon, all)",
                            (int)(n > 40 ? 40 : n), p);
        }
        *mask |= bit;
        if (!end)
            return 0;
        p = end + 1;
    }
}

size_t dim_measure_format(unsigned mask, char *buf, size_t cap)
{
    size_t len = 0;
    if (cap)
        buf[0] = '\0';
    for (int i = 0; i < DIM_N_MEASURES; i++) {
        if (!(mask & (1u << i)))
            continue;
        const char *s = measure_names[i];
        size_t n = strlen(s) + (len ? 1 : 0);
        if (len + n < cap) {
            if (len)
                buf[len] = ',';
            memcpy(buf + len + (len ? 1 : 0), s, strlen(s) + 1);
        }
        len += n;
    }
    return len;
}

void dim_eval_opts_default(struct dim_eval_opts *o)
{
    memset(o, 0, sizeof *o);
    o->measures = DIM_MEASURE_ALL;
    o->seed = 1;
    o->max_train = 0;
    o->max_test = 0;
    o->probe_epochs = 10;
    o->ndm_steps = 600;
    o->mine_steps = 800;
    o->recon_epochs = 15;
    o->grid_pairs = 10;
}

static void result_init(struct dim_eval_result *r)
{
    memset(r, 0, sizeof *r);
    for (int t = 0; t < DIM_PROBE_ROWS; t++) {
        r->linear[t].accuracy = r->linear[t].lambda = r->linear[t].val_accuracy = NAN;
        r->linear[t].gnorm = r->mlp[t] = NAN;
        r->svm[t] = r->linear[t];
    }
    r->ndm = r->ndm_sigmoid = r->mine = r->ssim = r->ms_ssim = r->recon_mse = NAN;
    for (int i = 0; i < DIM_N_MEASURES; i++)
        r->seconds[i] = NAN;
    r->seconds_features = r->seconds_total = NAN;
}

void dim_eval_result_free(struct dim_eval_result *r)
{
    free(r->grid_png);
    result_init(r);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One split's evenly spaced subset, encoded. */
struct split {
    size_t n;
    uint16_t *labels;           /* (n) */
    float *X[DIM_N_PROBE_TAPS]; /* (n, dim[t]) for the taps needed, else NULL */
    float *img;                 /* (n, C*H*W) model inputs, when needed */
};

static void split_free(struct split *s)
{
    for (int t = 0; t < DIM_N_PROBE_TAPS; t++)
        free(s->X[t]);
    free(s->labels);
    free(s->img);
    memset(s, 0, sizeof *s);
}

static int encode_split(const struct dim_model *m, const struct dim_dataset *ds,
                        const struct dim_preprocess *pp, size_t max, const bool taps[],
                        bool need_img, struct split *s, const struct dim_hooks *h, const char *what,
                        struct dim_err *err)
{
    enum { CAP = 256 };
    memset(s, 0, sizeof *s);
    s->n = max && max < ds->n ? max : ds->n;
    const size_t P = (size_t)pp->c * pp->h * pp->w;
    struct dim_encode_ws ws;
    int rc = dim_encode_ws_create(&ws, m, CAP, err);
    if (rc)
        return rc;
    uint32_t *idx = malloc(sizeof(uint32_t) * s->n);
    float *x = malloc(sizeof(float) * CAP * P);
    s->labels = malloc(sizeof(uint16_t) * s->n);
    bool ok = idx && x && s->labels;
    for (int t = 0; t < DIM_N_PROBE_TAPS && ok; t++)
        if (taps[t])
            ok =
                (s->X[t] = malloc(sizeof(float) * s->n * dim_model_tap_size(m, (enum dim_tap)t))) !=
                NULL;
    if (ok && need_img)
        ok = (s->img = malloc(sizeof(float) * s->n * P)) != NULL;
    if (!ok) {
        rc = dim_fail(err, DIM_ENOMEM, "out of memory for the features of %zu %s images", s->n,
                      what);
        goto out;
    }
    dim_stats_even_indices(idx, s->n, ds->n);
    for (size_t b = 0; b < s->n; b += CAP) {
        if (dim_hooks_cancelled(h)) {
            rc = dim_fail(err, DIM_ECANCELLED, "cancelled while encoding %s images", what);
            goto out;
        }
        size_t B = s->n - b < CAP ? s->n - b : CAP;
        dim_dataset_batch(ds, idx + b, B, pp, NULL, x, s->labels + b);
        dim_model_encode(m, &ws, x, B, DIM_TAP_Y); /* runs every layer */
        for (int t = 0; t < DIM_N_PROBE_TAPS; t++)
            if (taps[t]) {
                size_t d = dim_model_tap_size(m, (enum dim_tap)t);
                memcpy(s->X[t] + b * d, ws.enc.act[m->tap_layer[t]], sizeof(float) * B * d);
            }
        if (need_img)
            memcpy(s->img + b * P, x, sizeof(float) * B * P);
        dim_hooks_report(h, (double)(b + B) / (double)s->n);
    }
out:
    free(idx);
    free(x);
    dim_encode_ws_free(&ws);
    return rc;
}

/* The progress range of stage k (0 = features, 1 + measure index) among the selected ones. */
static struct dim_hooks stage_hooks(const struct dim_eval_opts *o, int k, const char *name)
{
    double total = stage_weight[0], before = 0.0;
    for (int i = 0; i < DIM_N_MEASURES; i++)
        if (o->measures & (1u << i))
            total += stage_weight[1 + i];
    for (int j = 0; j < k; j++)
        if (j == 0 || (o->measures & (1u << (j - 1))))
            before += stage_weight[j];
    struct dim_hooks h = {o->progress, o->progress_ctx, o->cancel,
                          name,        before / total,  (before + stage_weight[k]) / total};
    return h;
}

static int check_opts(const struct dim_eval_opts *o, struct dim_err *err)
{
    if (o->measures == 0 || (o->measures & ~DIM_MEASURE_ALL))
        return dim_fail(err, DIM_EINVAL, "measures mask 0x%x selects no known measure",
                        o->measures);
    struct {
        const char *name;
        int v, lo, hi;
    } b[] = {
        {"probe_epochs", o->probe_epochs, 1, 10000}, {"ndm_steps", o->ndm_steps, 1, 10000000},
        {"mine_steps", o->mine_steps, 1, 10000000},  {"recon_epochs", o->recon_epochs, 1, 10000},
        {"grid_pairs", o->grid_pairs, 0, 1000}};
    for (size_t i = 0; i < sizeof b / sizeof b[0]; i++)
        if (b[i].v < b[i].lo || b[i].v > b[i].hi)
            return dim_fail(err, DIM_EINVAL, "%s %d must be in [%d, %d]", b[i].name, b[i].v,
                            b[i].lo, b[i].hi);
    return 0;
}

/* Records a diverged measure and carries on; any other error ends the evaluation. */
static int absorb(int rc, unsigned bit, struct dim_eval_result *r, const struct dim_err *e)
{
    if (rc != DIM_ENONFINITE)
        return rc;
    if (!r->failed)
        snprintf(r->failure, sizeof r->failure, "%s: %.200s", dim_measure_name(bit),
                 e ? e->msg : "non-finite");
    r->failed |= bit;
    return 0;
}

int dim_evaluate(const struct dim_model *m, const struct dim_dataset *train,
                 const struct dim_dataset *test, const struct dim_preprocess *pp,
                 const struct dim_eval_opts *o, struct dim_eval_result *r, struct dim_err *err)
{
    result_init(r);
    const double t_start = now();
    int rc = check_opts(o, err);
    if (rc)
        return rc;
    if (pp->c != m->cfg.in_c || pp->h != m->in_h || pp->w != m->in_w)
        return dim_fail(err, DIM_ESHAPE, "input %dx%dx%d does not match model input %dx%dx%d",
                        pp->c, pp->h, pp->w, m->cfg.in_c, m->in_h, m->in_w);
    const unsigned cls = DIM_MEASURE_LINEAR | DIM_MEASURE_MLP | DIM_MEASURE_SVM;
    const unsigned M = o->measures;
    const size_t ntr = o->max_train && o->max_train < train->n ? o->max_train : train->n;
    const size_t nte = o->max_test && o->max_test < test->n ? o->max_test : test->n;
    if (ntr < 2 || nte < 2)
        return dim_fail(err, DIM_EINVAL,
                        "evaluation needs >= 2 training and test images "
                        "(have %zu and %zu)",
                        ntr, nte);
    int n_classes = train->n_classes > test->n_classes ? train->n_classes : test->n_classes;
    if ((M & cls) && n_classes < 2)
        return dim_fail(err, DIM_EINVAL, "classifier measures need >= 2 classes, dataset has %d",
                        n_classes);

    bool taps[DIM_N_PROBE_TAPS] = {(M & cls) != 0, (M & cls) != 0, true};
    /* the images: MINE's inputs, the decoder's targets, the classifiers' pixel row */
    const bool need_img = (M & (DIM_MEASURE_MINE | DIM_MEASURE_RECON | cls)) != 0;
    const int C = pp->c, H = pp->h, W = pp->w;
    const size_t P = (size_t)C * H * W, D = dim_model_tap_size(m, DIM_TAP_Y);
    struct split tr = {0}, te = {0};
    float *ytr = NULL, *yte = NULL, *R = NULL, *grid = NULL, *ptr = NULL, *pte = NULL;
    struct dim_err e2;
    struct dim_err *e = err ? err : &e2;

    double t0 = now();
    struct dim_hooks hf = stage_hooks(o, 0, "features"), hs = hf;
    hs.hi = hf.lo + (hf.hi - hf.lo) * (double)ntr / (double)(ntr + nte);
    if ((rc = encode_split(m, train, pp, ntr, taps, need_img, &tr, &hs, "training", e)) != 0)
        goto out;
    hs.lo = hs.hi;
    hs.hi = hf.hi;
    if ((rc = encode_split(m, test, pp, nte, taps, need_img, &te, &hs, "test", e)) != 0)
        goto out;
    r->n_train = tr.n;
    r->n_test = te.n;
    r->seconds_features = now() - t0;
    /* The classifiers standardise their features in place: Y-based measures get a copy. */
    ytr = malloc(sizeof(float) * tr.n * D);
    yte = malloc(sizeof(float) * te.n * D);
    if (!ytr || !yte) {
        rc = dim_fail(e, DIM_ENOMEM, "out of memory for Y of %zu images", tr.n + te.n);
        goto out;
    }
    memcpy(ytr, tr.X[DIM_TAP_Y], sizeof(float) * tr.n * D);
    memcpy(yte, te.X[DIM_TAP_Y], sizeof(float) * te.n * D);
    if (M & cls) { /* the pixel row, standardised in place like the taps: a copy */
        ptr = malloc(sizeof(float) * tr.n * P);
        pte = malloc(sizeof(float) * te.n * P);
        if (!ptr || !pte) {
            rc = dim_fail(e, DIM_ENOMEM, "out of memory for the pixels of %zu images",
                          tr.n + te.n);
            goto out;
        }
        memcpy(ptr, tr.img, sizeof(float) * tr.n * P);
        memcpy(pte, te.img, sizeof(float) * te.n * P);
    }

    for (int i = 0; i < DIM_N_MEASURES; i++) {
        const unsigned bit = 1u << i;
        if (!(M & bit))
            continue;
        if (o->cancel && atomic_load(o->cancel)) {
            rc = dim_fail(e, DIM_ECANCELLED, "evaluation cancelled before %s", measure_names[i]);
            goto out;
        }
        struct dim_hooks h = stage_hooks(o, 1 + i, measure_names[i]);
        dim_hooks_report(&h, 0.0);
        t0 = now();
        if (bit & cls) {
            struct dim_probe_opts po;
            dim_probe_opts_default(&po);
            po.kind = bit == DIM_MEASURE_MLP ? DIM_PROBE_MLP : DIM_PROBE_LINEAR;
            po.linear.loss = bit == DIM_MEASURE_SVM ? DIM_LINCLASS_SVM : DIM_LINCLASS_SOFTMAX;
            po.linear.seed = o->seed;
            po.epochs = o->probe_epochs;
            po.seed = o->seed + 101 * (uint64_t)(1 + i);
            po.cancel = o->cancel;
            for (int t = 0; t < DIM_PROBE_ROWS && rc == 0; t++) {
                const bool px = t == DIM_PROBE_PIXELS;
                struct dim_linclass_result lr;
                struct dim_hooks ht = h;
                ht.lo = h.lo + (h.hi - h.lo) * t / DIM_PROBE_ROWS;
                ht.hi = h.lo + (h.hi - h.lo) * (t + 1) / DIM_PROBE_ROWS;
                float *Xtr = px ? ptr : tr.X[t], *Xte = px ? pte : te.X[t];
                size_t d = px ? P : dim_model_tap_size(m, (enum dim_tap)t);
                if (po.kind == DIM_PROBE_LINEAR)
                    rc = dim_linclass_run(Xtr, tr.labels, tr.n, Xte, te.labels, te.n, d,
                                          n_classes, &po.linear, &ht, &lr, e);
                else
                    rc = dim_probe_run(Xtr, tr.labels, tr.n, Xte, te.labels, te.n, d, n_classes,
                                       &po, &lr, e);
                if (rc == 0 && bit == DIM_MEASURE_LINEAR)
                    r->linear[t] = lr;
                else if (rc == 0 && bit == DIM_MEASURE_SVM)
                    r->svm[t] = lr;
                else if (rc == 0)
                    r->mlp[t] = lr.accuracy;
                dim_hooks_report(&ht, 1.0);
            }
        } else if (bit == DIM_MEASURE_NDM) {
            struct dim_ndm_opts no;
            dim_ndm_opts_default(&no);
            no.steps = o->ndm_steps;
            no.seed = o->seed + 404;
            struct dim_hooks h1 = h, h2 = h;
            h1.hi = h2.lo = 0.5 * (h.lo + h.hi);
            rc = dim_ndm_run(ytr, tr.n, yte, te.n, D, &no, &h1, &r->ndm, e);
            rc = absorb(rc, bit, r, e);
            if (rc == 0) {
                no.sigmoid = true;
                rc = dim_ndm_run(ytr, tr.n, yte, te.n, D, &no, &h2, &r->ndm_sigmoid, e);
            }
        } else if (bit == DIM_MEASURE_MINE) {
            struct dim_mine_opts mo;
            dim_mine_opts_default(&mo);
            mo.steps = o->mine_steps;
            mo.seed = o->seed + 505;
            rc = dim_mine_run(tr.img, ytr, tr.n, te.img, yte, te.n, C, H, W, (int)D, &mo, &h,
                              &r->mine, e);
        } else if (bit == DIM_MEASURE_RECON) {
            /* targets: the model inputs mapped from [-1, 1] to [0, 1] (MINE, which
             * needs the inputs themselves, has run by now) */
            for (size_t j = 0; j < tr.n * P; j++)
                tr.img[j] = 0.5f * (tr.img[j] + 1.0f);
            for (size_t j = 0; j < te.n * P; j++)
                te.img[j] = 0.5f * (te.img[j] + 1.0f);
            struct dim_recon_opts ro;
            dim_recon_opts_default(&ro);
            ro.epochs = o->recon_epochs;
            ro.seed = o->seed + 606;
            R = malloc(sizeof(float) * te.n * P);
            if (!R) {
                rc = dim_fail(e, DIM_ENOMEM, "out of memory for %zu reconstructions", te.n);
                goto out;
            }
            struct dim_hooks hr = h;
            hr.hi = h.lo + 0.9 * (h.hi - h.lo);
            rc = dim_recon_run(ytr, tr.img, tr.n, yte, te.img, te.n, D, P, &ro, &hr, R,
                               &r->recon_mse, e);
            if (rc == 0)
                rc = dim_ssim_mean(te.img, R, te.n, C, H, W, &r->ssim, &r->ms_ssim,
                                   &r->ms_ssim_scales, e);
            size_t g = (size_t)o->grid_pairs < te.n ? (size_t)o->grid_pairs : te.n;
            if (rc == 0 && g > 0) {
                uint32_t gi[1000];
                grid = malloc(sizeof(float) * 2 * g * P);
                if (!grid) {
                    rc = dim_fail(e, DIM_ENOMEM, "out of memory for the grid image");
                    goto out;
                }
                dim_stats_even_indices(gi, g, te.n);
                for (size_t k = 0; k < g; k++) {
                    memcpy(grid + k * P, te.img + (size_t)gi[k] * P, sizeof(float) * P);
                    memcpy(grid + (g + k) * P, R + (size_t)gi[k] * P, sizeof(float) * P);
                }
                rc = dim_recon_grid_png(grid, grid + g * P, g, C, H, W, &r->grid_png,
                                        &r->grid_png_size, e);
            }
        }
        rc = absorb(rc, bit, r, e);
        if (rc)
            goto out;
        r->seconds[i] = now() - t0;
        r->measures |= bit;
        dim_hooks_report(&h, 1.0);
    }
out:
    split_free(&tr);
    split_free(&te);
    free(ytr);
    free(yte);
    free(R);
    free(grid);
    free(ptr);
    free(pte);
    r->seconds_total = now() - t_start;
    return rc;
}

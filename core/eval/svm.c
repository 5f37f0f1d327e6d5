/* svm.c - linear multiclass SVM (see svm.h). */
#include "eval/svm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/stats.h"
#include "eval/trainnet.h"

void dim_svm_opts_default(struct dim_svm_opts *o)
{
    o->epochs = 5;
    o->batch = 256;
    o->lr = 1e-2f;
    o->lambda = 1e-4f;
    o->seeds = 3;
    o->seed = 17;
}

/* loss_i = max(0, 1 + s_ik* - s_iy), k* = argmax_{k != y} s_ik:
 * d loss_i / d s_ik* = 1, d loss_i / d s_iy = -1 when the hinge is active. */
double dim_svm_hinge_loss(float *ds, const float *s, const uint16_t *y, size_t B, size_t K)
{
    double sum = 0.0;
    memset(ds, 0, sizeof(float) * B * K);
    for (size_t i = 0; i < B; i++) {
        const float *r = s + i * K;
        size_t best = y[i] == 0 ? 1 : 0;
        for (size_t k = 0; k < K; k++)
            if (k != y[i] && r[k] > r[best])
                best = k;
        double m = 1.0 + (double)r[best] - (double)r[y[i]];
        if (m > 0.0) {
            sum += m;
            ds[i * K + best] += (float)(1.0 / (double)B);
            ds[i * K + y[i]] -= (float)(1.0 / (double)B);
        }
    }
    return sum / (double)B;
}

int dim_svm_train_eval(const float *Xtr, const uint16_t *ytr, size_t ntr, const float *Xte,
                       const uint16_t *yte, size_t nte, size_t dim, int n_classes,
                       const struct dim_svm_opts *o, int run, const struct dim_hooks *h,
                       double *accuracy, struct dim_err *err)
{
    *accuracy = NAN;
    if (ntr == 0 || nte == 0 || dim == 0 || n_classes < 2 || o->batch == 0 || o->epochs < 1)
        return dim_fail(err, DIM_EINVAL,
                        "SVM needs training and test rows, >= 2 classes, "
                        "batch > 0 and epochs >= 1");
    const size_t B = o->batch < ntr ? o->batch : ntr, K = (size_t)n_classes;
    struct nn_net arch;
    nn_net_init(&arch, (int)dim, 1, 1);
    nn_net_linear(&arch, n_classes, true);
    struct dim_rng rng;
    dim_rng_seed(&rng, o->seed + (uint64_t)run, 0x53564d);
    struct dim_trainnet t;
    int rc = dim_trainnet_create(&t, &arch, B, &rng, err);
    if (rc)
        return rc;
    float *xb = malloc(sizeof(float) * B * dim);
    uint16_t *yb = malloc(sizeof(uint16_t) * B);
    uint32_t *perm = malloc(sizeof(uint32_t) * ntr);
    if (!xb || !yb || !perm) {
        rc = dim_fail(err, DIM_ENOMEM, "out of memory for an SVM on %zu features", dim);
        goto out;
    }
    for (size_t i = 0; i < ntr; i++)
        perm[i] = (uint32_t)i;
    const size_t per_epoch = (ntr + B - 1) / B, nw = K * dim;
    const long steps = (long)per_epoch * o->epochs;
    float *W = t.params + t.net.L[0].w, *dW = t.grads + t.net.L[0].w;
    long s = 0;
    for (int ep = 0; ep < o->epochs; ep++) {
        dim_rng_shuffle(&rng, perm, ntr);
        for (size_t p = 0; p < ntr; p += B, s++) {
            if (dim_hooks_cancelled(h)) {
                rc = dim_fail(err, DIM_ECANCELLED, "SVM cancelled in epoch %d", ep);
                goto out;
            }
            size_t nb = ntr - p < B ? ntr - p : B;
            for (size_t i = 0; i < nb; i++) {
                memcpy(xb + i * dim, Xtr + (size_t)perm[p + i] * dim, sizeof(float) * dim);
                yb[i] = ytr[perm[p + i]];
            }
            const float *sc = dim_trainnet_forward(&t, xb, nb, NULL);
            double loss = dim_svm_hinge_loss(dim_trainnet_dout(&t, nb), sc, yb, nb, K);
            if (!isfinite(loss)) {
                rc = dim_fail(err, DIM_ENONFINITE, "SVM loss is %g in epoch %d", loss, ep);
                goto out;
            }
            dim_trainnet_zero_grads(&t);
            dim_trainnet_backward(&t, xb, NULL, nb);
            for (size_t j = 0; j < nw; j++) /* d (lambda/2 ||W||^2) / dW = lambda W */
                dW[j] += o->lambda * W[j];
            dim_trainnet_adam(&t, dim_trainnet_lr(o->lr, s, steps));
            if (dim_hooks_due(s, steps))
                dim_hooks_report(h, (double)(s + 1) / (double)steps);
        }
    }
    size_t correct = 0;
    for (size_t p = 0; p < nte; p += B) {
        size_t nb = nte - p < B ? nte - p : B;
        const float *sc = dim_trainnet_forward(&t, Xte + p * dim, nb, NULL);
        for (size_t i = 0; i < nb; i++) {
            size_t best = 0;
            for (size_t k = 1; k < K; k++)
                if (sc[i * K + k] > sc[i * K + best])
                    best = k;
            correct += best == yte[p + i];
        }
    }
    *accuracy = (double)correct / (double)nte;
out:
    free(xb);
    free(yb);
    free(perm);
    dim_trainnet_free(&t);
    return rc;
}

int dim_svm_run(float *Xtr, const uint16_t *ytr, size_t ntr, float *Xte, const uint16_t *yte,
                size_t nte, size_t dim, int n_classes, const struct dim_svm_opts *o,
                const struct dim_hooks *h, double *mean, double *sd, struct dim_err *err)
{
    *mean = *sd = NAN;
    if (o->seeds < 1 || o->seeds > 100)
        return dim_fail(err, DIM_EINVAL, "SVM seeds %d must be in [1, 100]", o->seeds);
    if (ntr == 0 || nte == 0)
        return dim_fail(err, DIM_EINVAL, "SVM needs training and test rows");
    int rc = dim_stats_standardise(Xtr, ntr, Xte, nte, dim, err);
    if (rc)
        return rc;
    double acc[100];
    for (int r = 0; r < o->seeds; r++) {
        struct dim_hooks sub = {0};
        if (h) {
            sub = *h;
            sub.lo = h->lo + (h->hi - h->lo) * r / o->seeds;
            sub.hi = h->lo + (h->hi - h->lo) * (r + 1) / o->seeds;
        }
        rc = dim_svm_train_eval(Xtr, ytr, ntr, Xte, yte, nte, dim, n_classes, o, r, h ? &sub : NULL,
                                &acc[r], err);
        if (rc)
            return rc;
    }
    dim_stats_mean_std(acc, (size_t)o->seeds, mean, sd);
    return 0;
}

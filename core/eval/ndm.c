/* ndm.c - neural dependency measure (see ndm.h). */
#include "eval/ndm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/stats.h"
#include "eval/trainnet.h"
#include "nn/activation.h"

void dim_ndm_opts_default(struct dim_ndm_opts *o)
{
    o->steps = 600;
    o->batch = 128;
    o->lr = 1e-3f;
    o->hidden1 = 1000;
    o->hidden2 = 200;
    o->sigmoid = false;
    o->eval_passes = 4;
    o->seed = 11;
}

void dim_ndm_arch(struct nn_net *net, int D, int hidden1, int hidden2)
{
    nn_net_init(net, D, 1, 1);
    nn_net_linear(net, hidden1, true);
    nn_net_relu(net);
    nn_net_linear(net, hidden2, true);
    nn_net_relu(net);
    nn_net_linear(net, 1, true);
}

void dim_ndm_shuffle(float *out, const float *Y, size_t B, size_t D, struct dim_rng *rng,
                     uint32_t *perm)
{
    for (size_t i = 0; i < B; i++)
        perm[i] = (uint32_t)i;
    for (size_t d = 0; d < D; d++) {
        dim_rng_shuffle(rng, perm, B);
        for (size_t i = 0; i < B; i++)
            out[i * D + d] = Y[(size_t)perm[i] * D + d];
    }
}

/* loss = (1/B) sum_P sp(-u) + (1/B) sum_Q sp(u):
 * d/du_pos = -sigmoid(-u) / B,  d/du_neg = sigmoid(u) / B. */
double dim_ndm_jsd_loss(float *du, const float *u, size_t B)
{
    double lp = 0.0, lq = 0.0;
    for (size_t i = 0; i < B; i++) {
        lp += nn_softplus(-(double)u[i]);
        du[i] = (float)(-nn_sigmoid(-(double)u[i]) / (double)B);
        lq += nn_softplus((double)u[B + i]);
        du[B + i] = (float)(nn_sigmoid((double)u[B + i]) / (double)B);
    }
    return (lp + lq) / (double)B;
}

double dim_ndm_dv(const float *u, size_t B)
{
    double mp = 0.0;
    for (size_t i = 0; i < B; i++)
        mp += u[i];
    return mp / (double)B - dim_stats_log_mean_exp(u + B, B);
}

/* Copies Y (n, D) into out, through the sigmoid when asked. */
static void load_inputs(float *out, const float *Y, size_t n, size_t D, bool sig)
{
    for (size_t j = 0; j < n * D; j++)
        out[j] = sig ? (float)nn_sigmoid((double)Y[j]) : Y[j];
}

int dim_ndm_run(const float *Ytr, size_t ntr, const float *Yte, size_t nte, size_t D,
                const struct dim_ndm_opts *o, const struct dim_hooks *h, double *ndm,
                struct dim_err *err)
{
    *ndm = NAN;
    if (ntr < 2 || nte < 2 || D == 0 || o->batch < 2 || o->steps < 1 || o->eval_passes < 1 ||
        o->hidden1 < 1 || o->hidden2 < 1)
        return dim_fail(err, DIM_EINVAL,
                        "NDM needs >= 2 training and held-out rows (got %zu, %zu), D > 0, "
                        "batch >= 2, steps >= 1, eval_passes >= 1",
                        ntr, nte);
    const size_t B = o->batch < ntr ? o->batch : ntr;
    const size_t Be = o->batch < nte ? o->batch : nte;
    const size_t cap = B > Be ? B : Be;
    struct nn_net arch;
    dim_ndm_arch(&arch, (int)D, o->hidden1, o->hidden2);
    struct dim_rng rng;
    dim_rng_seed(&rng, o->seed, 0x4d4e);
    struct dim_trainnet T;
    int rc = dim_trainnet_create(&T, &arch, 2 * cap, &rng, err);
    if (rc)
        return rc;
    float *ytr = malloc(sizeof(float) * ntr * D), *yte = malloc(sizeof(float) * nte * D);
    float *xb = malloc(sizeof(float) * 2 * cap * D);
    uint32_t *order = malloc(sizeof(uint32_t) * (ntr > nte ? ntr : nte));
    uint32_t *perm = malloc(sizeof(uint32_t) * cap);
    if (!ytr || !yte || !xb || !order || !perm) {
        rc = dim_fail(err, DIM_ENOMEM, "out of memory for NDM on %zu x %zu features", ntr, D);
        goto out;
    }
    load_inputs(ytr, Ytr, ntr, D, o->sigmoid);
    load_inputs(yte, Yte, nte, D, o->sigmoid);
    if ((rc = dim_stats_standardise(ytr, ntr, yte, nte, D, err)) != 0)
        goto out;

    for (size_t i = 0; i < ntr; i++)
        order[i] = (uint32_t)i;
    size_t pos = ntr; /* forces a shuffle before the first batch */
    for (long s = 0; s < o->steps; s++) {
        if (dim_hooks_cancelled(h)) {
            rc = dim_fail(err, DIM_ECANCELLED, "NDM cancelled at step %ld of %d", s, o->steps);
            goto out;
        }
        if (pos + B > ntr) {
            dim_rng_shuffle(&rng, order, ntr);
            pos = 0;
        }
        for (size_t i = 0; i < B; i++)
            memcpy(xb + i * D, ytr + (size_t)order[pos + i] * D, sizeof(float) * D);
        pos += B;
        dim_ndm_shuffle(xb + B * D, xb, B, D, &rng, perm);
        const float *u = dim_trainnet_forward(&T, xb, 2 * B, NULL);
        float *du = dim_trainnet_dout(&T, 2 * B);
        double loss = dim_ndm_jsd_loss(du, u, B);
        if (!isfinite(loss)) {
            rc = dim_fail(err, DIM_ENONFINITE, "NDM discriminator loss is %g at step %ld", loss, s);
            goto out;
        }
        dim_trainnet_zero_grads(&T);
        dim_trainnet_backward(&T, xb, NULL, 2 * B);
        dim_trainnet_adam(&T, dim_trainnet_lr(o->lr, s, o->steps));
        if (dim_hooks_due(s, o->steps))
            dim_hooks_report(h, 0.95 * (double)(s + 1) / (double)o->steps);
    }

    /* held-out estimate: every full batch of every pass, fresh order and shuffles */
    double sum = 0.0;
    size_t nb = 0;
    for (size_t i = 0; i < nte; i++)
        order[i] = (uint32_t)i;
    for (int p = 0; p < o->eval_passes; p++) {
        dim_rng_shuffle(&rng, order, nte);
        for (size_t s = 0; s + Be <= nte; s += Be) {
            for (size_t i = 0; i < Be; i++)
                memcpy(xb + i * D, yte + (size_t)order[s + i] * D, sizeof(float) * D);
            dim_ndm_shuffle(xb + Be * D, xb, Be, D, &rng, perm);
            sum += dim_ndm_dv(dim_trainnet_forward(&T, xb, 2 * Be, NULL), Be);
            nb++;
        }
    }
    *ndm = sum / (double)nb;
    dim_hooks_report(h, 1.0);
    if (!isfinite(*ndm)) {
        rc = dim_fail(err, DIM_ENONFINITE, "NDM estimate is %g", *ndm);
        *ndm = NAN;
    }
out:
    free(ytr);
    free(yte);
    free(xb);
    free(order);
    free(perm);
    dim_trainnet_free(&T);
    return rc;
}

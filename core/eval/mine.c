/* mine.c - MINE estimate of I(X; Y) (see mine.h). */
#include "eval/mine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/stats.h"

void dim_mine_opts_default(struct dim_mine_opts *o)
{
    o->steps = 800;
    o->batch = 128;
    o->lr = 1e-3f;
    o->hidden = 128;
    o->ma_rate = 0.01f;
    o->eval_passes = 4;
    o->seed = 13;
}

int dim_mine_critic_create(struct dim_mine_critic *c, int C, int H, int W, int D, int hidden,
                           size_t cap, struct dim_rng *rng, struct dim_err *err)
{
    memset(c, 0, sizeof *c);
    if (C < 1 || H < 1 || W < 1 || D < 1 || hidden < 1 || cap < 1)
        return dim_fail(err, DIM_EINVAL,
                        "MINE critic for %dx%dx%d images, D %d, hidden %d, "
                        "batch %zu: every size must be >= 1",
                        C, H, W, D, hidden, cap);
    c->C = C, c->H = H, c->W = W, c->D = D, c->hidden = hidden, c->cap = cap;
    struct nn_net ax, ay, ah;
    nn_net_init(&ax, C, H, W);
    if (H >= 16 && W >= 16) {
        nn_net_conv(&ax, 16, 4, 2, 1, true);
        nn_net_relu(&ax);
        nn_net_conv(&ax, 32, 4, 2, 1, true);
        nn_net_relu(&ax);
    }
    nn_net_linear(&ax, hidden, true);
    nn_net_init(&ay, D, 1, 1);
    nn_net_linear(&ay, hidden, false);
    nn_net_init(&ah, hidden, 1, 1);
    nn_net_relu(&ah);
    nn_net_linear(&ah, hidden, true);
    nn_net_relu(&ah);
    nn_net_linear(&ah, 1, true);
    int rc;
    if ((rc = dim_trainnet_create(&c->fx, &ax, cap, rng, err)) != 0 ||
        (rc = dim_trainnet_create(&c->fy, &ay, cap, rng, err)) != 0 ||
        (rc = dim_trainnet_create(&c->head, &ah, 2 * cap, rng, err)) != 0) {
        dim_mine_critic_free(c);
        return rc;
    }
    c->hsum = malloc(sizeof(float) * 4 * cap * (size_t)hidden);
    if (!c->hsum) {
        dim_mine_critic_free(c);
        return dim_fail(err, DIM_ENOMEM, "out of memory for a MINE critic (batch %zu)", cap);
    }
    c->dh = c->hsum + 2 * cap * (size_t)hidden;
    return 0;
}

void dim_mine_critic_free(struct dim_mine_critic *c)
{
    dim_trainnet_free(&c->fx);
    dim_trainnet_free(&c->fy);
    dim_trainnet_free(&c->head);
    free(c->hsum);
    memset(c, 0, sizeof *c);
}

void dim_mine_critic_forward(struct dim_mine_critic *c, const float *x, const float *y,
                             const uint32_t *perm, size_t B, float *u)
{
    const size_t Hd = (size_t)c->hidden;
    const float *a = dim_trainnet_forward(&c->fx, x, B, NULL);
    const float *b = dim_trainnet_forward(&c->fy, y, B, NULL);
    for (size_t i = 0; i < B; i++) {
        const float *ai = a + i * Hd, *bi = b + i * Hd, *bp = b + (size_t)perm[i] * Hd;
        float *hp = c->hsum + i * Hd, *hn = c->hsum + (B + i) * Hd;
        for (size_t k = 0; k < Hd; k++) {
            hp[k] = ai[k] + bi[k];
            hn[k] = ai[k] + bp[k];
        }
    }
    memcpy(u, dim_trainnet_forward(&c->head, c->hsum, 2 * B, NULL), sizeof(float) * 2 * B);
}

/* Forward: h_pos_i = a_i + b_i, h_neg_i = a_i + b_perm(i), u = head(h). Backward:
 * da_i = dh_pos_i + dh_neg_i; db_i += dh_pos_i; db_perm(i) += dh_neg_i. */
void dim_mine_critic_backward(struct dim_mine_critic *c, const float *x, const float *y,
                              const uint32_t *perm, size_t B, const float *du)
{
    const size_t Hd = (size_t)c->hidden;
    memcpy(dim_trainnet_dout(&c->head, 2 * B), du, sizeof(float) * 2 * B);
    memset(c->dh, 0, sizeof(float) * 2 * B * Hd);
    dim_trainnet_backward(&c->head, c->hsum, c->dh, 2 * B);
    float *da = dim_trainnet_dout(&c->fx, B), *db = dim_trainnet_dout(&c->fy, B);
    for (size_t i = 0; i < B; i++) {
        const float *gp = c->dh + i * Hd, *gn = c->dh + (B + i) * Hd;
        float *dai = da + i * Hd, *dbi = db + i * Hd, *dbp = db + (size_t)perm[i] * Hd;
        for (size_t k = 0; k < Hd; k++) {
            dai[k] = gp[k] + gn[k];
            dbi[k] += gp[k];
            dbp[k] += gn[k];
        }
    }
    dim_trainnet_backward(&c->fx, x, NULL, B);
    dim_trainnet_backward(&c->fy, y, NULL, B);
}

void dim_mine_critic_zero_grads(struct dim_mine_critic *c)
{
    dim_trainnet_zero_grads(&c->fx);
    dim_trainnet_zero_grads(&c->fy);
    dim_trainnet_zero_grads(&c->head);
}

void dim_mine_critic_adam(struct dim_mine_critic *c, float lr)
{
    dim_trainnet_adam(&c->fx, lr);
    dim_trainnet_adam(&c->fy, lr);
    dim_trainnet_adam(&c->head, lr);
}

/* loss = -mean_P u + log mean_Q exp(u):
 * d/du_pos = -1/B; d/du_neg_i = exp(u_i - lme) / B with lme = log mean_Q exp(u)
 * (exact), or with lme replaced by the moving average log m (MINE's correction). */
double dim_mine_dv_loss(float *du, const float *u, size_t B, double *log_ma, float ma_rate)
{
    double mp = 0.0;
    for (size_t i = 0; i < B; i++) {
        mp += u[i];
        du[i] = (float)(-1.0 / (double)B);
    }
    const double lme = dim_stats_log_mean_exp(u + B, B);
    double denom = lme;
    if (log_ma && ma_rate > 0.0f) {
        if (isnan(*log_ma)) {
            *log_ma = lme;
        } else { /* log((1 - r) m + r e^lme), stably */
            double p = log1p(-(double)ma_rate) + *log_ma, q = log((double)ma_rate) + lme;
            double mx = p > q ? p : q;
            *log_ma = mx + log(exp(p - mx) + exp(q - mx));
        }
        denom = *log_ma;
    }
    for (size_t i = 0; i < B; i++)
        du[B + i] = (float)(exp((double)u[B + i] - denom) / (double)B);
    return -mp / (double)B + lme;
}

int dim_mine_run(const float *Xtr, const float *Ytr, size_t ntr, const float *Xte, const float *Yte,
                 size_t nte, int C, int H, int W, int D, const struct dim_mine_opts *o,
                 const struct dim_hooks *h, double *mi, struct dim_err *err)
{
    *mi = NAN;
    if (ntr < 2 || nte < 2 || o->batch < 2 || o->steps < 1 || o->eval_passes < 1 || D < 1 ||
        C < 1 || H < 1 || W < 1)
        return dim_fail(err, DIM_EINVAL,
                        "MINE needs >= 2 training and held-out pairs (got %zu, %zu), "
                        "batch >= 2, steps >= 1, eval_passes >= 1",
                        ntr, nte);
    const size_t B = o->batch < ntr ? o->batch : ntr;
    const size_t Be = o->batch < nte ? o->batch : nte;
    const size_t cap = B > Be ? B : Be;
    const size_t P = (size_t)C * H * W, Dz = (size_t)D;
    struct dim_rng rng;
    dim_rng_seed(&rng, o->seed, 0x4d494e45);
    struct dim_mine_critic c;
    int rc = dim_mine_critic_create(&c, C, H, W, D, o->hidden, cap, &rng, err);
    if (rc)
        return rc;
    float *ytr = malloc(sizeof(float) * ntr * Dz), *yte = malloc(sizeof(float) * nte * Dz);
    float *xb = malloc(sizeof(float) * cap * P), *yb = malloc(sizeof(float) * cap * Dz);
    float *u = malloc(sizeof(float) * 4 * cap), *du = u + 2 * cap;
    uint32_t *order = malloc(sizeof(uint32_t) * (ntr > nte ? ntr : nte));
    uint32_t *perm = malloc(sizeof(uint32_t) * cap);
    if (!ytr || !yte || !xb || !yb || !u || !order || !perm) {
        rc = dim_fail(err, DIM_ENOMEM, "out of memory for MINE on %zu pairs", ntr);
        goto out;
    }
    memcpy(ytr, Ytr, sizeof(float) * ntr * Dz);
    memcpy(yte, Yte, sizeof(float) * nte * Dz);
    if ((rc = dim_stats_standardise(ytr, ntr, yte, nte, Dz, err)) != 0)
        goto out;

    for (size_t i = 0; i < ntr; i++)
        order[i] = (uint32_t)i;
    size_t pos = ntr;
    double log_ma = NAN;
    for (long s = 0; s < o->steps; s++) {
        if (dim_hooks_cancelled(h)) {
            rc = dim_fail(err, DIM_ECANCELLED, "MINE cancelled at step %ld of %d", s, o->steps);
            goto out;
        }
        if (pos + B > ntr) {
            dim_rng_shuffle(&rng, order, ntr);
            pos = 0;
        }
        for (size_t i = 0; i < B; i++) {
            size_t r = order[pos + i];
            memcpy(xb + i * P, Xtr + r * P, sizeof(float) * P);
            memcpy(yb + i * Dz, ytr + r * Dz, sizeof(float) * Dz);
        }
        pos += B;
        dim_stats_derangement(&rng, perm, B);
        dim_mine_critic_forward(&c, xb, yb, perm, B, u);
        double loss = dim_mine_dv_loss(du, u, B, &log_ma, o->ma_rate);
        if (!isfinite(loss)) {
            rc = dim_fail(err, DIM_ENONFINITE, "MINE loss is %g at step %ld", loss, s);
            goto out;
        }
        dim_mine_critic_zero_grads(&c);
        dim_mine_critic_backward(&c, xb, yb, perm, B, du);
        dim_mine_critic_adam(&c, dim_trainnet_lr(o->lr, s, o->steps));
        if (dim_hooks_due(s, o->steps))
            dim_hooks_report(h, 0.95 * (double)(s + 1) / (double)o->steps);
    }

    double sum = 0.0;
    size_t nb = 0;
    for (size_t i = 0; i < nte; i++)
        order[i] = (uint32_t)i;
    for (int p = 0; p < o->eval_passes; p++) {
        dim_rng_shuffle(&rng, order, nte);
        for (size_t s = 0; s + Be <= nte; s += Be) {
            for (size_t i = 0; i < Be; i++) {
                size_t r = order[s + i];
                memcpy(xb + i * P, Xte + r * P, sizeof(float) * P);
                memcpy(yb + i * Dz, yte + r * Dz, sizeof(float) * Dz);
            }
            dim_stats_derangement(&rng, perm, Be);
            dim_mine_critic_forward(&c, xb, yb, perm, Be, u);
            sum -= dim_mine_dv_loss(du, u, Be, NULL, 0.0f);
            nb++;
        }
    }
    *mi = sum / (double)nb;
    dim_hooks_report(h, 1.0);
    if (!isfinite(*mi)) {
        rc = dim_fail(err, DIM_ENONFINITE, "MINE estimate is %g", *mi);
        *mi = NAN;
    }
out:
    free(ytr);
    free(yte);
    free(xb);
    free(yb);
    free(u);
    free(order);
    free(perm);
    dim_mine_critic_free(&c);
    return rc;
}

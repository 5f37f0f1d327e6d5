/* recon.c - decoder on a frozen representation, and the grid image (see recon.h). */
#include "eval/recon.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/image.h"
#include "eval/stats.h"
#include "eval/trainnet.h"

void dim_recon_opts_default(struct dim_recon_opts *o)
{
    o->epochs = 15;
    o->batch = 128;
    o->lr = 1e-3f;
    o->hidden = 512;
    o->seed = 19;
}

void dim_recon_arch(struct nn_net *net, int D, int hidden, size_t P)
{
    nn_net_init(net, D, 1, 1);
    nn_net_linear(net, hidden, true);
    nn_net_relu(net);
    nn_net_linear(net, hidden, true);
    nn_net_relu(net);
    nn_net_linear(net, P > (size_t)1 << 30 ? -1 : (int)P, true);
}

/* loss = 1/(B P) sum (out - t)^2:  d loss / d out = 2 (out - t) / (B P). */
double dim_recon_l2_loss(float *dout, const float *out, const float *target, size_t B, size_t P)
{
    const double scale = 1.0 / ((double)B * (double)P);
    double sum = 0.0;
    for (size_t j = 0; j < B * P; j++) {
        double d = (double)out[j] - (double)target[j];
        sum += d * d;
        if (dout)
            dout[j] = (float)(2.0 * d * scale);
    }
    return sum * scale;
}

int dim_recon_run(const float *Ytr, const float *Ttr, size_t ntr, const float *Yte,
                  const float *Tte, size_t nte, size_t D, size_t P, const struct dim_recon_opts *o,
                  const struct dim_hooks *h, float *R, double *mse, struct dim_err *err)
{
    *mse = NAN;
    if (ntr == 0 || nte == 0 || D == 0 || P == 0 || o->batch == 0 || o->epochs < 1 || o->hidden < 1)
        return dim_fail(err, DIM_EINVAL,
                        "decoder needs training and test rows (got %zu, %zu), "
                        "batch > 0, epochs >= 1",
                        ntr, nte);
    const size_t B = o->batch < ntr ? o->batch : ntr;
    struct nn_net arch;
    dim_recon_arch(&arch, (int)D, o->hidden, P);
    struct dim_rng rng;
    dim_rng_seed(&rng, o->seed, 0x5245);
    struct dim_trainnet t;
    int rc = dim_trainnet_create(&t, &arch, B, &rng, err);
    if (rc)
        return rc;
    float *ytr = malloc(sizeof(float) * ntr * D), *yte = malloc(sizeof(float) * nte * D);
    float *yb = malloc(sizeof(float) * B * D), *tb = malloc(sizeof(float) * B * P);
    uint32_t *perm = malloc(sizeof(uint32_t) * ntr);
    if (!ytr || !yte || !yb || !tb || !perm) {
        rc = dim_fail(err, DIM_ENOMEM, "out of memory for a decoder on %zu rows", ntr);
        goto out;
    }
    memcpy(ytr, Ytr, sizeof(float) * ntr * D);
    memcpy(yte, Yte, sizeof(float) * nte * D);
    if ((rc = dim_stats_standardise(ytr, ntr, yte, nte, D, err)) != 0)
        goto out;
    for (size_t i = 0; i < ntr; i++)
        perm[i] = (uint32_t)i;
    const long steps = (long)((ntr + B - 1) / B) * o->epochs;
    long s = 0;
    for (int ep = 0; ep < o->epochs; ep++) {
        dim_rng_shuffle(&rng, perm, ntr);
        for (size_t p = 0; p < ntr; p += B, s++) {
            if (dim_hooks_cancelled(h)) {
                rc = dim_fail(err, DIM_ECANCELLED, "decoder cancelled in epoch %d", ep);
                goto out;
            }
            size_t nb = ntr - p < B ? ntr - p : B;
            for (size_t i = 0; i < nb; i++) {
                memcpy(yb + i * D, ytr + (size_t)perm[p + i] * D, sizeof(float) * D);
                memcpy(tb + i * P, Ttr + (size_t)perm[p + i] * P, sizeof(float) * P);
            }
            const float *out = dim_trainnet_forward(&t, yb, nb, NULL);
            double loss = dim_recon_l2_loss(dim_trainnet_dout(&t, nb), out, tb, nb, P);
            if (!isfinite(loss)) {
                rc = dim_fail(err, DIM_ENONFINITE, "decoder loss is %g in epoch %d", loss, ep);
                goto out;
            }
            dim_trainnet_zero_grads(&t);
            dim_trainnet_backward(&t, yb, NULL, nb);
            dim_trainnet_adam(&t, dim_trainnet_lr(o->lr, s, steps));
            if (dim_hooks_due(s, steps))
                dim_hooks_report(h, (double)(s + 1) / (double)steps);
        }
    }
    double sum = 0.0;
    for (size_t p = 0; p < nte; p += B) {
        size_t nb = nte - p < B ? nte - p : B;
        const float *out = dim_trainnet_forward(&t, yte + p * D, nb, NULL);
        float *r = R + p * P;
        for (size_t j = 0; j < nb * P; j++)
            r[j] = out[j] < 0.0f ? 0.0f : (out[j] > 1.0f ? 1.0f : out[j]);
        sum += dim_recon_l2_loss(NULL, r, Tte + p * P, nb, P) * (double)nb;
    }
    *mse = sum / (double)nte;
out:
    free(ytr);
    free(yte);
    free(yb);
    free(tb);
    free(perm);
    dim_trainnet_free(&t);
    return rc;
}

static uint8_t to_u8(float v)
{
    v = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
    return (uint8_t)lrintf(v * 255.0f);
}

int dim_recon_grid_png(const float *orig, const float *recon, size_t n, int C, int H, int W,
                       uint8_t **png, size_t *len, struct dim_err *err)
{
    enum { GAP = 2 };
    *png = NULL;
    *len = 0;
    if (n == 0 || (C != 1 && C != 3) || H < 1 || W < 1 || n > 4096)
        return dim_fail(err, DIM_EINVAL,
                        "grid of %zu pairs of %dx%dx%d images (need 1..4096 "
                        "pairs, 1 or 3 channels)",
                        n, C, H, W);
    struct dim_image img = {C, 2 * H + 3 * GAP, (int)n * (W + GAP) + GAP, NULL};
    const size_t plane = (size_t)img.h * img.w, hw = (size_t)H * W;
    img.px = malloc(plane * C);
    if (!img.px)
        return dim_fail(err, DIM_ENOMEM, "out of memory for a %dx%d grid", img.h, img.w);
    memset(img.px, 128, plane * C);
    for (size_t i = 0; i < n; i++)
        for (int row = 0; row < 2; row++) {
            const float *src = (row ? recon : orig) + i * C * hw;
            size_t y0 = GAP + (size_t)row * (H + GAP), x0 = GAP + i * (W + GAP);
            for (int c = 0; c < C; c++)
                for (int y = 0; y < H; y++)
                    for (int x = 0; x < W; x++)
                        img.px[c * plane + (y0 + y) * img.w + x0 + x] =
                            to_u8(src[c * hw + (size_t)y * W + x]);
        }
    int rc = dim_image_encode_png(&img, png, len, err);
    free(img.px);
    return rc;
}

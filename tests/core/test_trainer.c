/* test_trainer.c - dim/trainer: whole-model gradients of dim_trainer_eval_batch by
 * central differences (DIM(L) with each estimator, DIM(G), DIM(L+G), and the
 * prior term alone), the losses against an independent re-composition of the
 * model's nets, the adversarial update of the prior discriminator, a short run
 * whose local loss falls, non-finite detection, and dim_trainer_create's checks.
 *
 * Gradient checks: basic28x28 with y_dim 6, mi_dim 8, batch 4, on four images of
 * a hand-filled synthetic dataset. In training mode batch norm uses batch
 * statistics, so the loss is a deterministic function of the parameters (running
 * statistics move but are not read). Models are built once per configuration
 * (group fixtures; building one costs ~0.1 s) and the three DIM(L) estimators
 * share one model by switching m->cfg.estimator, which eval_batch reads each call.
 *
 * Kinks and tolerances: no kink callback. The model has ~10^5 ReLUs at batch 4,
 * and perturbing any encoder weight moves all of them through batch norm, so some
 * cross 0 in nearly every evaluation: gradcheck's kink callback (skip the entry
 * when any ReLU input changes sign; tried) skipped almost every entry. Instead each
 * entry is checked at eps 1e-3 (rtol 2e-2, atol 3e-4) and, only if that fails,
 * again at eps 2.5e-4 (atol 6e-4), which must pass: a kink inside +-eps shifts the
 * difference quotient, a smaller step usually straddles none, while a wrong
 * gradient is wrong at every step. At most 1/4 of the entries may need the second
 * step (2 of 63 do). Measured: the largest gradient of each encoder layer agreed to
 * <= 3e-3 relative at eps 1e-3 (up to 3e-2 at eps 1e-2; float32 noise in the
 * loss, ~1e-7 of it, reaches 1e-3 relative at eps 2e-4). Entries checked are each
 * array's largest-|gradient| ones (mostly 0.03..1, so rtol binds; in the global
 * critic's head and for the prior term alone ~0.005, where atol is 6%) plus random
 * ones, which are small and so more exposed to single kinks: they get atol 1e-3
 * (1.5e-3 at the second step) and guard against gross errors (wrong offsets,
 * missing paths). A sign error, a missing term or a weight applied twice fails
 * (checked by mutating a copy of trainer.c). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/blas.h"
#include "dim/estimator.h"
#include "dim/model.h"
#include "dim/trainer.h"
#include "dimfix.h"
#include "gradcheck.h"
#include "nn/activation.h"

/* the short training run (test_loss_falls) */
#define LF_IMAGES 64
#define LF_BATCH 8
#define LF_STEPS 24

/* ---- synthetic data ---------------------------------------------------- */

static uint8_t clamp_px(int v)
{
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* n images (c, h, w). structured: four classes (horizontal stripes, vertical
 * stripes, a bright square, a checkerboard) with random phase, size and noise;
 * otherwise uniform noise. */
static void synth_dataset(struct dim_dataset *ds, size_t n, int c, int h, int w, bool structured,
                          uint64_t seed)
{
    memset(ds, 0, sizeof *ds);
    ds->n = n;
    ds->c = c;
    ds->h = h;
    ds->w = w;
    ds->n_classes = 4;
    const size_t per = (size_t)c * h * w;
    ds->px = malloc(n * per);
    ds->labels = malloc(n * sizeof *ds->labels);
    assert_non_null(ds->px);
    assert_non_null(ds->labels);
    struct dim_rng rng;
    dim_rng_seed(&rng, seed, 11);
    for (size_t i = 0; i < n; i++) {
        int cls = (int)(i % 4);
        ds->labels[i] = (uint16_t)cls;
        int phase = (int)dim_rng_below(&rng, 8), period = 4 + 2 * (int)dim_rng_below(&rng, 3);
        int side = 8 + (int)dim_rng_below(&rng, 8);
        int y0 = (int)dim_rng_below(&rng, (uint32_t)(h - side)),
            x0 = (int)dim_rng_below(&rng, (uint32_t)(w - side));
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    int v;
                    if (!structured) {
                        v = (int)(dim_rng_u32(&rng) & 255u);
                    } else {
                        bool on;
                        switch (cls) {
                        case 0:
                            on = ((y + phase) / (period / 2)) % 2 == 0;
                            break;
                        case 1:
                            on = ((x + phase) / (period / 2)) % 2 == 0;
                            break;
                        case 2:
                            on = y >= y0 && y < y0 + side && x >= x0 && x < x0 + side;
                            break;
                        default:
                            on = ((x + phase) / 7 + (y + phase) / 7) % 2 == 0;
                            break;
                        }
                        v = (on ? 210 : 40) + (int)(dim_rng_u32(&rng) % 41u) - 20;
                    }
                    ds->px[i * per + ((size_t)ch * h + y) * w + x] = clamp_px(v);
                }
    }
}

/* ---- the test's own forward pass, composed from the model's nets ---------- */

struct mirror {
    struct nn_net_ws enc, gcc, gcy, gch, prior;
    struct dim_minet_ws lws, gws;
    float *slab, *rows, *u, *du, *z, *sy;
    double local, global, prior_enc;
};

static void mirror_init(struct mirror *mr, const struct dim_model *m, size_t B)
{
    memset(mr, 0, sizeof *mr);
    const size_t Lc = (size_t)m->local_h * m->local_w, Cl = (size_t)m->local_c;
    size_t n = nn_net_ws_floats(&m->enc, B, true);
    size_t o_l = n, o_g = 0, o_gcc = 0, o_gcy = 0, o_gch = 0, o_p = 0;
    if (m->has_local) {
        o_g = o_l + dim_minet_ws_floats(&m->lmi, B * Lc);
        n = o_g + dim_minet_ws_floats(&m->gmi, B);
    }
    o_gcc = n;
    if (m->has_global) {
        o_gcy = o_gcc + nn_net_ws_floats(&m->gc_conv, B, true);
        o_gch = o_gcy + nn_net_ws_floats(&m->gc_y, B, true);
        n = o_gch + nn_net_ws_floats(&m->gc_head, B * B, true);
    }
    o_p = n;
    if (m->has_prior)
        n += nn_net_ws_floats(&m->prior, B, true);
    mr->slab = calloc(n, sizeof(float));
    mr->rows = calloc(B * Lc * Cl, sizeof(float));
    mr->u = calloc(B * B * Lc, sizeof(float));
    mr->du = calloc(B * B * Lc, sizeof(float));
    mr->z = calloc(B * B * 512, sizeof(float));
    mr->sy = calloc(B * (size_t)m->cfg.y_dim, sizeof(float));
    assert_true(mr->slab && mr->rows && mr->u && mr->du && mr->z && mr->sy);
    nn_net_ws_carve(&m->enc, &mr->enc, mr->slab, B, true);
    if (m->has_local) {
        dim_minet_ws_carve(&m->lmi, &mr->lws, mr->slab + o_l, B * Lc);
        dim_minet_ws_carve(&m->gmi, &mr->gws, mr->slab + o_g, B);
    }
    if (m->has_global) {
        nn_net_ws_carve(&m->gc_conv, &mr->gcc, mr->slab + o_gcc, B, true);
        nn_net_ws_carve(&m->gc_y, &mr->gcy, mr->slab + o_gcy, B, true);
        nn_net_ws_carve(&m->gc_head, &mr->gch, mr->slab + o_gch, B * B, true);
    }
    if (m->has_prior) {
        nn_net_ws_carve(&m->prior, &mr->prior, mr->slab + o_p, B, true);
    }
}

static void mirror_free(struct mirror *mr)
{
    free(mr->slab);
    free(mr->rows);
    free(mr->u);
    free(mr->du);
    free(mr->z);
    free(mr->sy);
}

/* The model's forward pass composed from its nets, written from dim-algorithm.md
 * sections 3 and 4 (scores in double), into mr->local, global, prior_enc. */
static void mirror_forward(struct mirror *mr, const struct dim_model *m, const float *x, size_t B)
{
    const size_t Lc = (size_t)m->local_h * m->local_w, Cl = (size_t)m->local_c;
    const size_t D = (size_t)m->cfg.mi_dim, Yd = (size_t)m->cfg.y_dim;
    nn_net_forward(&m->enc, &mr->enc, x, B, NN_TRAIN, NULL);
    const float *map = mr->enc.act[m->tap_layer[DIM_TAP_LOCAL]];
    const float *Y = mr->enc.act[m->tap_layer[DIM_TAP_Y]];
    if (m->has_local) {
        for (size_t b = 0; b < B; b++)
            for (size_t q = 0; q < Lc; q++)
                for (size_t c = 0; c < Cl; c++)
                    mr->rows[(b * Lc + q) * Cl + c] = map[(b * Cl + c) * Lc + q];
        dim_minet_forward(&m->lmi, &mr->lws, mr->rows, B * Lc);
        dim_minet_forward(&m->gmi, &mr->gws, Y, B);
        for (size_t i = 0; i < B; i++)
            for (size_t j = 0; j < B; j++)
                for (size_t q = 0; q < Lc; q++) {
                    double s = 0;
                    for (size_t d = 0; d < D; d++)
                        s += (double)mr->gws.out[i * D + d] * mr->lws.out[(j * Lc + q) * D + d];
                    mr->u[(i * B + j) * Lc + q] = (float)s;
                }
        mr->local = dim_estimator_loss(m->cfg.estimator, mr->du, mr->u, B, Lc, 1.0f);
    }
    if (m->has_global) {
        nn_net_forward(&m->gc_conv, &mr->gcc, map, B, NN_TRAIN, NULL);
        nn_net_forward(&m->gc_y, &mr->gcy, Y, B, NN_TRAIN, NULL);
        const float *A = nn_net_out(&m->gc_conv, &mr->gcc), *Bm = nn_net_out(&m->gc_y, &mr->gcy);
        for (size_t i = 0; i < B; i++) /* pair (Y_i, map_j) */
            for (size_t j = 0; j < B; j++)
                for (size_t h = 0; h < 512; h++)
                    mr->z[(i * B + j) * 512 + h] = A[j * 512 + h] + Bm[i * 512 + h];
        nn_net_forward(&m->gc_head, &mr->gch, mr->z, B * B, NN_TRAIN, NULL);
        mr->global = dim_estimator_loss(m->cfg.estimator, mr->du, nn_net_out(&m->gc_head, &mr->gch),
                                        B, 1, 1.0f);
    }
    if (m->has_prior) {
        for (size_t k = 0; k < B * Yd; k++)
            mr->sy[k] = (float)(1.0 / (1.0 + exp(-(double)Y[k])));
        nn_net_forward(&m->prior, &mr->prior, mr->sy, B, NN_TRAIN, NULL);
        const float *d = nn_net_out(&m->prior, &mr->prior);
        double s = 0;
        for (size_t i = 0; i < B; i++)
            s += log1p(exp(-(double)d[i]));
        mr->prior_enc = s / (double)B;
    }
}

/* ---- fixtures ------------------------------------------------------------ */

struct fx {
    struct dim_dataset ds;
    struct dim_preprocess pp;
    struct dim_model *m;
    struct dim_trainer *t;
    float *x; /* a fixed batch (B, C, H, W) */
    size_t B;
    struct mirror mr;
};

static struct dim_config tiny_config(enum dim_estimator e, float alpha, float beta, float gamma)
{
    struct dim_config c = dimfix_config(6, 8, 4);
    c.estimator = e;
    c.alpha = alpha;
    c.beta = beta;
    c.gamma = gamma;
    c.seed = 3;
    return c;
}

static struct fx *fx_create(const struct dim_config *c, size_t n_images, bool structured)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    synth_dataset(&f->ds, n_images, c->in_c, 28, 28, structured, c->seed + 100);
    f->pp = (struct dim_preprocess){c->in_c, 28, 28, 0, 0};
    struct dim_err err = {0};
    if (dim_model_create(&f->m, c, true, &err) != 0)
        fail_msg("model: %s", err.msg);
    if (dim_trainer_create(&f->t, f->m, &f->ds, &f->pp, &err) != 0)
        fail_msg("trainer: %s", err.msg);
    f->B = c->batch;
    const size_t in = nn_net_in_size(&f->m->enc);
    f->x = malloc(sizeof(float) * f->B * in);
    assert_non_null(f->x);
    uint32_t idx[64];
    assert_true(f->B <= 64);
    for (size_t b = 0; b < f->B; b++)
        idx[b] = (uint32_t)(b * 3 % n_images);
    dim_dataset_batch(&f->ds, idx, f->B, &f->pp, NULL, f->x, NULL);
    mirror_init(&f->mr, f->m, f->B);
    return f;
}

static void fx_free(struct fx *f)
{
    if (!f)
        return;
    mirror_free(&f->mr);
    dim_trainer_free(f->t);
    dim_model_free(f->m);
    dim_dataset_free(&f->ds);
    free(f->x);
    free(f);
}

/* Group state: DIM(L) (alpha 0, beta 1, gamma 0.1), DIM(G) (1, 0, 1) and
 * DIM(L+G) (0.5, 0.1, 0.1), each on 24 random images. */
struct group {
    struct fx *L, *G, *LG;
};

static int group_setup(void **state)
{
    struct group *g = calloc(1, sizeof *g);
    if (!g)
        return -1;
    struct dim_config c = tiny_config(DIM_JSD, 0.0f, 1.0f, 0.1f);
    g->L = fx_create(&c, 24, false);
    c = tiny_config(DIM_JSD, 1.0f, 0.0f, 1.0f);
    g->G = fx_create(&c, 24, false);
    c = tiny_config(DIM_NCE, 0.5f, 0.1f, 0.1f);
    g->LG = fx_create(&c, 24, false);
    *state = g;
    return 0;
}

static int group_teardown(void **state)
{
    struct group *g = *state;
    fx_free(g->L);
    fx_free(g->G);
    fx_free(g->LG);
    free(g);
    return 0;
}

/* ---- gradient checks ------------------------------------------------------ */

static double fx_loss(void *ctx)
{
    struct fx *f = ctx;
    struct dim_losses ls;
    dim_trainer_eval_batch(f->t, f->x, false, &ls);
    return ls.total;
}

/* Entries that needed the smaller step (see the file comment), and all entries. */
static size_t n_fallback, n_entries;

/* Checks the n_top entries of largest |grad| and n_rand random others of the
 * array (x, g, n), one single-entry gc_check each: at eps 1e-3, and when that
 * fails, again at eps 2.5e-4, which must pass. */
static void check_array(struct fx *f, const char *name, float *x, const float *g, size_t n,
                        size_t n_top, size_t n_rand)
{
    size_t idx[16], k = 0;
    assert_true(n_top + n_rand <= 16);
    for (size_t t = 0; t < n_top && t < n; t++) { /* selection by repeated max */
        size_t best = SIZE_MAX;
        for (size_t j = 0; j < n; j++) {
            bool taken = false;
            for (size_t q = 0; q < k && !taken; q++)
                taken = idx[q] == j;
            if (!taken && (best == SIZE_MAX || fabsf(g[j]) > fabsf(g[best])))
                best = j;
        }
        idx[k++] = best;
    }
    struct dim_rng rng;
    dim_rng_seed(&rng, n, 17);
    for (size_t t = 0; t < n_rand && k < n; t++)
        idx[k++] = dim_rng_below(&rng, (uint32_t)n);
    for (size_t q = 0; q < k; q++) {
        char label[96];
        snprintf(label, sizeof label, "%s[%zu] (%s)", name, idx[q],
                 q < n_top ? "largest" : "random");
        const bool top = q < n_top;
        struct gc_opts o = gc_opts_default(label);
        o.eps = 1e-3;
        o.rtol = 2e-2;
        o.atol = top ? 3e-4 : 1e-3;
        o.max_checks = 0;
        o.quiet = true;
        struct gc_result res;
        n_entries++;
        if (gc_check(&o, fx_loss, f, x + idx[q], g + idx[q], 1, &res) == 0)
            continue;
        n_fallback++;
        o.eps = 2.5e-4;
        o.atol = top ? 6e-4 : 1.5e-3;
        o.quiet = false;
        if (gc_check(&o, fx_loss, f, x + idx[q], g + idx[q], 1, &res) != 0)
            fail_msg("%s: the analytic gradient disagrees with central differences", label);
    }
}

/* Few entries needed the smaller step: kinks are the exception, not the rule. */
static void assert_fallbacks_rare(void)
{
    if (getenv("GC_VERBOSE"))
        fprintf(stderr, "%zu entries checked, %zu at the smaller step\n", n_entries, n_fallback);
    assert_true(n_entries > 0);
    assert_true(n_fallback * 4 <= n_entries);
}

/* Analytic gradients of the total at the fixed batch into m->main_grads. */
static void fx_gradients(struct fx *f, struct dim_losses *ls)
{
    dim_trainer_eval_batch(f->t, f->x, true, ls);
    assert_true(isfinite(ls->total));
}

/* Parameter range of layer i of net (weight and bias, or BN gamma and beta). */
static void layer_range(const struct nn_net *net, int i, size_t *off, size_t *n)
{
    const struct nn_layer *l = &net->L[i];
    *off = l->w;
    if (l->op == NN_CONV)
        *n = (size_t)l->oc * l->ic * l->cv.k * l->cv.k + (l->bias ? (size_t)l->oc : 0);
    else if (l->op == NN_LINEAR)
        *n = (size_t)l->oc * l->ic * l->ih * l->iw + (l->bias ? (size_t)l->oc : 0);
    else
        *n = 2 * (size_t)l->ic; /* BN: gamma then beta */
}

/* Entries of every parameterised layer of net (all of them when only is < 0, else
 * only layer `only`). */
static void check_net(struct fx *f, const char *prefix, const struct nn_net *net, int only,
                      size_t n_top, size_t n_rand)
{
    const size_t base = (size_t)(net->params - f->m->main_params);
    for (int i = 0; i < net->n; i++) {
        if (net->L[i].w == SIZE_MAX || (only >= 0 && i != only))
            continue;
        size_t off, n;
        layer_range(net, i, &off, &n);
        char name[64];
        snprintf(name, sizeof name, "%s.L%d", prefix, i);
        check_array(f, name, f->m->main_params + base + off, f->m->main_grads + base + off, n,
                    n_top, n_rand);
    }
}

static void check_minet(struct fx *f, const char *prefix, const struct dim_minet *mi, size_t n_top,
                        size_t n_rand)
{
    const size_t base = (size_t)(mi->params - f->m->main_params);
    check_array(f, prefix, f->m->main_params + base, f->m->main_grads + base, mi->n_params, n_top,
                n_rand);
}

static void assert_prior_grads_zero(const struct dim_model *m)
{
    for (size_t j = 0; j < m->n_prior; j++)
        if (m->prior_grads[j] != 0.0f)
            fail_msg("prior_grads[%zu] = %g after the encoder's pass", j,
                     (double)m->prior_grads[j]);
}

/* Encoder layers with parameters: conv, bn, conv, bn, [conv, bn,] linear, bn, linear */
static void check_encoder(struct fx *f, bool every_layer)
{
    const struct nn_net *e = &f->m->enc;
    const int fc = f->m->tap_layer[DIM_TAP_FC] - 2, y = f->m->tap_layer[DIM_TAP_Y];
    if (every_layer) { /* the largest gradient of every layer (BN included), and random ones */
        check_net(f, "enc", e, -1, 1, 0);
        check_net(f, "enc", e, 0, 0, 1);
        check_net(f, "enc", e, fc, 0, 1);
        check_net(f, "enc", e, y, 0, 1);
        return;
    }
    check_net(f, "enc", e, 0, 1, 0);  /* first conv */
    check_net(f, "enc", e, fc, 1, 0); /* linear 1024 */
    check_net(f, "enc", e, y, 1, 0);  /* Y */
}

static void test_gradients_local(void **state)
{
    struct fx *f = ((struct group *)*state)->L;
    for (int e = 0; e < 3; e++) {
        f->m->cfg.estimator = (enum dim_estimator)e;
        struct dim_losses ls;
        fx_gradients(f, &ls);
        assert_prior_grads_zero(f->m);
        check_encoder(f, e == DIM_JSD);
        check_minet(f, "lmi", &f->m->lmi, 2, e == DIM_JSD);
        check_minet(f, "gmi", &f->m->gmi, 2, e == DIM_JSD);
    }
    f->m->cfg.estimator = DIM_JSD;
}

static void test_gradients_global(void **state)
{
    struct fx *f = ((struct group *)*state)->G;
    struct dim_losses ls;
    fx_gradients(f, &ls);
    assert_prior_grads_zero(f->m);
    check_encoder(f, true);
    check_net(f, "gc_conv", &f->m->gc_conv, -1, 1, 0);
    check_net(f, "gc_y", &f->m->gc_y, -1, 1, 1);
    check_net(f, "gc_head", &f->m->gc_head, -1, 1, 0);
}

static void test_gradients_local_global(void **state)
{
    struct fx *f = ((struct group *)*state)->LG;
    struct dim_losses ls;
    fx_gradients(f, &ls);
    assert_prior_grads_zero(f->m);
    assert_true(ls.local > 0 && ls.global > 0 && ls.prior_enc > 0);
    check_encoder(f, false);
    check_minet(f, "lmi", &f->m->lmi, 1, 0);
    check_minet(f, "gmi", &f->m->gmi, 1, 0);
    check_net(f, "gc_conv", &f->m->gc_conv, 0, 1, 0);
    check_net(f, "gc_y", &f->m->gc_y, -1, 1, 0);
    check_net(f, "gc_head", &f->m->gc_head, -1, 1, 0);
}

/* The prior term alone: with beta set to 0 in the built model (and gamma to 0.5,
 * so that a missing or doubled weight shows) the total is gamma * prior_enc, and
 * the encoder's gradient is that term's. */
static void test_gradients_prior_term(void **state)
{
    struct fx *f = ((struct group *)*state)->L;
    struct dim_model *m = f->m;
    const struct dim_config saved = m->cfg;
    m->cfg.beta = 0.0f;
    m->cfg.gamma = 0.5f;
    struct dim_losses ls;
    fx_gradients(f, &ls);
    assert_true(ls.total == 0.5 * ls.prior_enc);
    assert_prior_grads_zero(m);
    for (size_t j = m->enc.n_params; j < m->n_main; j++) /* nothing reaches the MI nets */
        assert_true(m->main_grads[j] == 0.0f);
    check_net(f, "enc (prior term)", &m->enc, -1, 1, 0);
    m->cfg = saved;
    assert_fallbacks_rare();
}

/* The trainer's losses equal the test's own composition of the same nets, for
 * every estimator and every combination of terms; backward does not change them. */
static void test_losses_match_composition(void **state)
{
    struct group *g = *state;
    struct fx *fs[3] = {g->L, g->G, g->LG};
    for (int k = 0; k < 3; k++) {
        struct fx *f = fs[k];
        const struct dim_config c = f->m->cfg;
        /* a fresh global critic scores every pair almost alike; sharpen its output
         * layer so that the pairing of Y_i with map_j matters to the loss */
        float *head_w = NULL, saved[512];
        if (f->m->has_global) {
            const struct nn_layer *out = &f->m->gc_head.L[f->m->gc_head.n - 1];
            head_w = f->m->gc_head.params + out->w;
            memcpy(saved, head_w, sizeof saved);
            for (size_t h = 0; h < 512; h++)
                head_w[h] *= 30.0f;
        }
        for (int e = 0; e < 3; e++) {
            f->m->cfg.estimator = (enum dim_estimator)e;
            struct dim_losses ls, ls2;
            dim_trainer_eval_batch(f->t, f->x, false, &ls);
            if (e == k) {
                dim_trainer_eval_batch(f->t, f->x, true, &ls2);
                assert_true(ls.local == ls2.local && ls.global == ls2.global &&
                            ls.prior_enc == ls2.prior_enc && ls.total == ls2.total);
            }
            mirror_forward(&f->mr, f->m, f->x, f->B);
            const double tol = 1e-6;
            const char *en = dim_estimator_name((enum dim_estimator)e);
            if (f->m->has_local) {
                if (!(fabs(ls.local - f->mr.local) <= tol * (1 + fabs(ls.local))))
                    fail_msg("%s local: trainer %.8g, composed %.8g", en, ls.local, f->mr.local);
            } else {
                assert_true(ls.local == 0.0);
            }
            if (f->m->has_global) {
                if (!(fabs(ls.global - f->mr.global) <= tol * (1 + fabs(ls.global))))
                    fail_msg("%s global: trainer %.8g, composed %.8g", en, ls.global, f->mr.global);
            } else {
                assert_true(ls.global == 0.0);
            }
            if (!(fabs(ls.prior_enc - f->mr.prior_enc) <= tol * (1 + ls.prior_enc)))
                fail_msg("prior: trainer %.8g, composed %.8g", ls.prior_enc, f->mr.prior_enc);
            double total = c.beta * ls.local + c.alpha * ls.global + c.gamma * ls.prior_enc;
            assert_true(fabs(ls.total - total) <= 1e-12 * (1 + fabs(total)));
            assert_true(ls.prior_disc == 0.0); /* eval_batch never touches D */
        }
        if (head_w)
            memcpy(head_w, saved, sizeof saved);
        f->m->cfg = c;
    }
}

/* ---- the learning-rate schedule --------------------------------------------- */

/* Each step gives both Adams dim_lr_at(cfg, steps taken before it): a warm-up then
 * a cosine decay, read back from the optimisers after each step. */
static void test_schedule_applied(void **state)
{
    struct fx *f = ((struct group *)*state)->L;
    struct dim_model *m = f->m;
    const struct dim_config saved = m->cfg;
    struct dim_train_progress p;
    dim_trainer_progress(f->t, &p);
    m->cfg.lr_schedule = DIM_LR_COSINE;
    m->cfg.lr_warmup = p.step + 2; /* the last two warm-up steps, then a 2-step decay */
    m->cfg.lr_final = 0.0f;
    m->cfg.lr_horizon = p.step + 4;
    float seen[6];
    for (int s = 0; s < 6; s++) {
        struct dim_losses ls;
        struct dim_err err = {0};
        assert_int_equal(dim_trainer_step(f->t, &ls, &err), 0);
        assert_true(m->opt_main.lr == dim_lr_at(&m->cfg, p.step + (uint64_t)s));
        assert_true(m->opt_prior.lr == m->opt_main.lr);
        seen[s] = m->opt_main.lr;
    }
    const float lr = m->cfg.lr;
    assert_true(seen[0] < lr && seen[1] == lr && seen[2] == lr);
    assert_true(fabsf(seen[3] - 0.5f * lr) < 1e-6f * lr);
    assert_true(seen[4] == 0.0f && seen[5] == 0.0f);
    m->cfg = saved;
}

/* ---- the adversarial update ----------------------------------------------- */

static void test_prior_update(void **state)
{
    struct fx *f = ((struct group *)*state)->L;
    struct dim_model *m = f->m;
    assert_true(m->has_prior && m->n_prior > 0);
    float *p0 = malloc(sizeof(float) * m->n_prior), *e0 = malloc(sizeof(float) * m->n_main);
    assert_non_null(p0);
    assert_non_null(e0);
    const uint64_t t_main = m->opt_main.t, t_prior = m->opt_prior.t;
    for (int s = 0; s < 3; s++) {
        memcpy(p0, m->prior_params, sizeof(float) * m->n_prior);
        memcpy(e0, m->main_params, sizeof(float) * m->n_main);
        struct dim_losses ls;
        struct dim_err err = {0};
        assert_int_equal(dim_trainer_step(f->t, &ls, &err), 0);
        /* D took its own step and reports its own loss, mean sp(-D(z)) + mean sp(D(s)),
         * which is near 2 log 2 while D is still weak */
        assert_true(memcmp(p0, m->prior_params, sizeof(float) * m->n_prior) != 0);
        assert_true(memcmp(e0, m->main_params, sizeof(float) * m->n_main) != 0);
        assert_true(isfinite(ls.prior_disc) && ls.prior_disc > 0.7 && ls.prior_disc < 2.1);
        assert_true(ls.prior_disc != ls.prior_enc);
    }
    assert_true(m->opt_prior.t == t_prior + 3 && m->opt_main.t == t_main + 3);
    /* D's update minimises D's loss: with the encoder frozen (its parameters put back
     * after every step; both Adams take the schedule's lr, here a constant 1e-3) and
     * Y's bias at 3 (sigmoid(Y) near 0.95), D learns to tell those from U[0,1] */
    const float saved_lr = m->cfg.lr;
    const size_t yd = (size_t)m->cfg.y_dim, ybias = m->enc.n_params - yd;
    float bias0[64];
    assert_true(yd <= 64);
    memcpy(bias0, m->main_params + ybias, sizeof(float) * yd);
    for (size_t j = 0; j < yd; j++)
        m->main_params[ybias + j] = 3.0f;
    m->cfg.lr = 1e-3f;
    assert_false(dim_lr_varies(&m->cfg));
    memcpy(e0, m->main_params, sizeof(float) * m->n_main);
    double first = 0, last = 0;
    for (int s = 0; s < 12; s++) {
        struct dim_losses ls;
        struct dim_err err = {0};
        assert_int_equal(dim_trainer_step(f->t, &ls, &err), 0);
        assert_true(m->opt_prior.lr == 1e-3f && m->opt_main.lr == 1e-3f);
        memcpy(m->main_params, e0, sizeof(float) * m->n_main);
        if (s < 4)
            first += ls.prior_disc / 4;
        if (s >= 8)
            last += ls.prior_disc / 4;
    }
    if (getenv("GC_VERBOSE"))
        fprintf(stderr, "discriminator loss: first 4 steps %.4f, last 4 steps %.4f\n", first, last);
    if (!(last < 0.8 * first))
        fail_msg("D's loss did not fall with the encoder frozen: %.4f -> %.4f", first, last);
    m->cfg.lr = saved_lr;
    memcpy(m->main_params + ybias, bias0, sizeof(float) * yd);
    free(p0);
    free(e0);
}

/* gamma = 0: no prior net, no prior slab, no discriminator loss (the model of
 * test_create_rejects has gamma 0). */
static void assert_no_prior(struct dim_trainer *t, struct dim_model *m)
{
    assert_false(m->has_prior);
    assert_int_equal(m->n_prior, 0);
    struct dim_losses ls;
    struct dim_err err = {0};
    assert_int_equal(dim_trainer_step(t, &ls, &err), 0);
    assert_true(ls.prior_disc == 0.0 && ls.prior_enc == 0.0);
    assert_true(m->opt_prior.t == 0);
    assert_true(ls.total == m->cfg.beta * ls.local);
}

/* ---- a short run learns ----------------------------------------------------- */

static void test_loss_falls(void **state)
{
    (void)state;
    struct dim_config c = tiny_config(DIM_JSD, 0.0f, 1.0f, 0.1f);
    c.y_dim = 16;
    c.mi_dim = 16;
    c.batch = LF_BATCH;
    c.lr = 1e-3f;
    struct fx *f = fx_create(&c, LF_IMAGES, true);
    enum { STEPS = LF_STEPS, WIN = 10 };
    double first = 0, last = 0;
    struct dim_err err = {0};
    for (int s = 0; s < STEPS; s++) {
        struct dim_losses ls;
        int rc = dim_trainer_step(f->t, &ls, &err);
        if (rc != 0)
            fail_msg("step %d: %s", s, err.msg);
        if (s < WIN)
            first += ls.local / WIN;
        if (s >= STEPS - WIN)
            last += ls.local / WIN;
    }
    if (getenv("GC_VERBOSE"))
        fprintf(stderr, "local loss: first %d steps %.4f, last %d steps %.4f\n", WIN, first, WIN,
                last);
    if (!(last < 0.7 * first))
        fail_msg("local loss did not fall: first %d steps %.4f, last %d steps %.4f", WIN, first,
                 WIN, last);
    struct dim_train_progress p;
    dim_trainer_progress(f->t, &p);
    const uint64_t per = LF_IMAGES / LF_BATCH;
    assert_true(dim_trainer_steps_per_epoch(f->t) == per);
    assert_true(p.step == STEPS);
    assert_true(p.epoch == (STEPS - 1) / per);
    assert_true(p.pos == ((STEPS - 1) % per + 1) * LF_BATCH);
    fx_free(f);
}

/* ---- non-finite values ------------------------------------------------------ */

struct snap {
    float *main, *mm, *mv, *prior, *pm, *pv;
    uint64_t tm, tp;
};

static float *dup_floats(const float *p, size_t n)
{
    float *q = malloc(sizeof(float) * (n ? n : 1));
    assert_non_null(q);
    memcpy(q, p, sizeof(float) * n);
    return q;
}

static void snap_take(struct snap *s, const struct dim_model *m)
{
    s->main = dup_floats(m->main_params, m->n_main);
    s->mm = dup_floats(m->main_m, m->n_main);
    s->mv = dup_floats(m->main_v, m->n_main);
    s->prior = dup_floats(m->prior_params, m->n_prior);
    s->pm = dup_floats(m->prior_m, m->n_prior);
    s->pv = dup_floats(m->prior_v, m->n_prior);
    s->tm = m->opt_main.t;
    s->tp = m->opt_prior.t;
}

/* Bitwise equal, the poisoned value included (memcmp: cmocka's byte-wise compare
 * is slow on 6.5M floats). */
static void snap_same(const struct snap *s, const struct dim_model *m)
{
    assert_true(memcmp(s->main, m->main_params, sizeof(float) * m->n_main) == 0);
    assert_true(memcmp(s->mm, m->main_m, sizeof(float) * m->n_main) == 0);
    assert_true(memcmp(s->mv, m->main_v, sizeof(float) * m->n_main) == 0);
    assert_true(memcmp(s->prior, m->prior_params, sizeof(float) * m->n_prior) == 0);
    assert_true(memcmp(s->pm, m->prior_m, sizeof(float) * m->n_prior) == 0);
    assert_true(memcmp(s->pv, m->prior_v, sizeof(float) * m->n_prior) == 0);
    assert_true(s->tm == m->opt_main.t && s->tp == m->opt_prior.t);
}

static void snap_free(struct snap *s)
{
    free(s->main);
    free(s->mm);
    free(s->mv);
    free(s->prior);
    free(s->pm);
    free(s->pv);
}

/* Poisons one parameter, expects DIM_ENONFINITE naming `term` and nothing
 * updated, then restores the parameter (and, when `resume`, checks that training
 * goes on). */
static void nonfinite_case(struct fx *f, bool in_prior, size_t at, float bad, const char *term,
                           bool resume)
{
    struct dim_model *m = f->m;
    float *p = in_prior ? m->prior_params + at : m->main_params + at;
    assert_true(at < (in_prior ? m->n_prior : m->n_main));
    const float good = *p;
    *p = bad;
    struct snap s;
    snap_take(&s, m);
    struct dim_train_progress p0, p1;
    dim_trainer_progress(f->t, &p0);
    struct dim_losses ls;
    struct dim_err err = {0};
    int rc = dim_trainer_step(f->t, &ls, &err);
    if (rc != DIM_ENONFINITE)
        fail_msg("%s: step returned %d (%s), want DIM_ENONFINITE", term, rc, err.msg);
    assert_int_equal(err.code, DIM_ENONFINITE);
    if (!strstr(err.msg, term))
        fail_msg("message '%s' does not name '%s'", err.msg, term);
    snap_same(&s, m);
    dim_trainer_progress(f->t, &p1);
    assert_true(p1.step == p0.step);
    snap_free(&s);
    *p = good;
    if (resume)
        assert_int_equal(dim_trainer_step(f->t, &ls, &err), 0);
}

static void test_nonfinite(void **state)
{
    struct group *g = *state;
    struct dim_losses ls;
    struct dim_err err = {0};
    /* one healthy step first, so the Adam moments are not all zero */
    assert_int_equal(dim_trainer_step(g->L->t, &ls, &err), 0);
    assert_int_equal(dim_trainer_step(g->G->t, &ls, &err), 0);
    struct dim_model *L = g->L->m, *G = g->G->m;
    const size_t ybias = L->enc.n_params - (size_t)L->cfg.y_dim; /* Y = W h + b: b is last */
    /* a NaN in Y's bias: local MI is the first term computed */
    nonfinite_case(g->L, false, ybias + 1, NAN, "local MI loss", false);
    /* the global critic's output bias (its last parameter) */
    const size_t head_end = (size_t)(G->gc_head.params - G->main_params) + G->gc_head.n_params;
    nonfinite_case(g->G, false, head_end - 1, NAN, "global MI loss", false);
    /* an infinite layer-norm beta of the local MI net */
    const size_t lmi = (size_t)(L->lmi.params - L->main_params);
    nonfinite_case(g->L, false, lmi + L->lmi.ln_b + 2, INFINITY, "local MI loss", false);
    /* the prior discriminator's output bias: the encoder's prior matching term */
    nonfinite_case(g->L, true, L->n_prior - 1, NAN, "prior matching loss", false);
    /* a NaN first-conv weight: ReLU (max(x, 0)) maps NaN to 0 in the forward pass, so
     * every loss stays finite and only the gradient shows it */
    nonfinite_case(g->L, false, 5, NAN, "encoder gradient", false);
    /* likewise a NaN weight of D's first layer, behind a ReLU */
    nonfinite_case(g->L, true, 2, NAN, "encoder gradient", true);

    /* Only D's own loss overflows: with Y's bias at -100, s = sigmoid(Y) ~ 4e-44 and
     * D(s) stays finite, while a path 1e38 -> x10 -> x-1 from input 0 of D sends
     * its real samples z ~ U[0,1] to -inf. The encoder's terms and gradients are
     * finite; the step must still leave every parameter as it was. */
    const size_t yd = (size_t)L->cfg.y_dim;
    float *yb = L->main_params + ybias, saved_yb[64];
    assert_true(yd <= 64);
    memcpy(saved_yb, yb, sizeof(float) * yd);
    float *w1 = L->prior.params + L->prior.L[0].w, *w2 = L->prior.params + L->prior.L[2].w,
          *w3 = L->prior.params + L->prior.L[4].w;
    const float saved_w[3] = {w1[0], w2[0], w3[0]};
    for (size_t j = 0; j < yd; j++)
        yb[j] = -100.0f;
    w1[0] = 1e38f;
    w2[0] = 10.0f;
    w3[0] = -1.0f;
    struct snap sn;
    snap_take(&sn, L);
    memset(&err, 0, sizeof err);
    int rc = dim_trainer_step(g->L->t, &ls, &err);
    if (rc != DIM_ENONFINITE || !strstr(err.msg, "prior discriminator loss"))
        fail_msg("D overflow: step returned %d (%s)", rc, err.msg);
    assert_true(isfinite(ls.local) && isfinite(ls.prior_enc));
    snap_same(&sn, L);
    snap_free(&sn);
    memcpy(yb, saved_yb, sizeof(float) * yd);
    w1[0] = saved_w[0];
    w2[0] = saved_w[1];
    w3[0] = saved_w[2];
    assert_int_equal(dim_trainer_step(g->L->t, &ls, &err), 0);
}

/* ---- dim_trainer_create's checks -------------------------------------------- */

static void test_create_rejects(void **state)
{
    (void)state;
    struct dim_config c = tiny_config(DIM_JSD, 0.0f, 1.0f, 0.0f);
    c.batch = 8;
    struct dim_model *m, *inf;
    struct dim_err err = {0};
    assert_int_equal(dim_model_create(&m, &c, true, &err), 0);
    struct dim_dataset small, ok, rgb;
    synth_dataset(&small, 7, 1, 28, 28, false, 1);
    synth_dataset(&ok, 8, 1, 28, 28, false, 2);
    synth_dataset(&rgb, 8, 3, 28, 28, false, 3);
    struct dim_preprocess pp = {1, 28, 28, 0, 0};
    struct dim_trainer *t = (struct dim_trainer *)&err;
    /* fewer images than one batch */
    assert_int_equal(dim_trainer_create(&t, m, &small, &pp, &err), DIM_EINVAL);
    assert_null(t);
    assert_non_null(strstr(err.msg, "7 images"));
    /* a preprocess shape that is not the model's input */
    const struct dim_preprocess bad[] = {{3, 28, 28, 0, 0}, {1, 32, 32, 0, 0}, {1, 28, 27, 0, 0}};
    for (size_t k = 0; k < 3; k++) {
        t = (struct dim_trainer *)&err;
        assert_int_equal(dim_trainer_create(&t, m, &ok, &bad[k], &err), DIM_ESHAPE);
        assert_null(t);
        assert_non_null(strstr(err.msg, "does not match"));
    }
    /* an inference-only model */
    assert_int_equal(dim_model_create(&inf, &c, false, &err), 0);
    assert_int_equal(dim_trainer_create(&t, inf, &ok, &pp, &err), DIM_EINVAL);
    assert_null(t);
    /* an RGB dataset is fine when the preprocess converts it to the model's grey */
    assert_int_equal(dim_trainer_create(&t, m, &rgb, &pp, &err), 0);
    assert_no_prior(t, m);
    dim_trainer_free(t);
    /* exactly one batch is enough, and every step starts a new epoch */
    assert_int_equal(dim_trainer_create(&t, m, &ok, &pp, &err), 0);
    assert_true(dim_trainer_steps_per_epoch(t) == 1);
    struct dim_losses ls;
    for (int s = 0; s < 3; s++)
        assert_int_equal(dim_trainer_step(t, &ls, &err), 0);
    struct dim_train_progress p;
    dim_trainer_progress(t, &p);
    assert_true(p.step == 3 && p.epoch == 2 && p.pos == 8);
    /* restore refuses positions that do not fit */
    p.pos = 4;
    assert_int_equal(dim_trainer_restore(t, &p, &err), DIM_EINVAL);
    p.pos = 16;
    assert_int_equal(dim_trainer_restore(t, &p, &err), DIM_EINVAL);
    dim_trainer_free(t);
    dim_model_free(m);
    dim_model_free(inf);
    dim_dataset_free(&small);
    dim_dataset_free(&ok);
    dim_dataset_free(&rgb);
}

int main(void)
{
    nn_blas_set_threads(1); /* small GEMMs: one thread is quicker and deterministic */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_losses_match_composition),
        cmocka_unit_test(test_gradients_local),
        cmocka_unit_test(test_gradients_global),
        cmocka_unit_test(test_gradients_local_global),
        cmocka_unit_test(test_gradients_prior_term),
        cmocka_unit_test(test_schedule_applied),
        cmocka_unit_test(test_prior_update),
        cmocka_unit_test(test_nonfinite),
        cmocka_unit_test(test_loss_falls),
        cmocka_unit_test(test_create_rejects),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

/* trainer.c - the DIM training step.
 *
 * Shapes (B batch, Cl local channels, Lc = local H*W, D MI width, Yd = y_dim):
 *   enc:  x (B, C, H, W) -> local map (B, Cl, Lc), Y (B, Yd)
 *   local: rows (B*Lc, Cl) -> lmi -> l (B*Lc, D);  Y -> gmi -> g (B, D)
 *          u (B, B*Lc) = g l^T;  u[i][j*Lc + q] scores Y_i against location q of image j
 *   global: A (B, 512) = gc_conv(map), Bm (B, 512) = gc_y(Y),
 *           z[i*B + j] = A_j + Bm_i (B*B, 512) -> gc_head -> score (B*B)
 *   prior: s = sigmoid(Y) (B, Yd) -> D -> logit (B); D on [z ~ U; s] (2B) for its update
 *
 * Data parallel (base/dist.h), N ranks, rank r, local batch b = B/N, own images
 * [r*b, (r+1)*b) of the global batch (every rank builds the whole batch, so the data
 * and augmentation RNGs stay equal, and runs the nets on its slice):
 *   per-image nets (encoder, MI nets, critic branches, D) run on the b own rows; their
 *     batch norms use global statistics (nn/norm.c, through dim_dist_use);
 *   local: g (b, D) is gathered to G (B, D); rank r computes the column block of u
 *     of its own images, u_r (B, b*Lc) = G l_r^T (every anchor against its own
 *     images' locations), and the estimator on that block (dim_estimator_loss_cols:
 *     the row statistics that cross blocks are combined, every rank gets the whole
 *     loss and its block of du). dl_r = du_r^T G is then exact and local; dG = du_r l_r
 *     holds this rank's terms of every anchor's gradient, summed over ranks (B x D
 *     floats) before each rank keeps its own rows. Per rank the critic costs B*b*Lc*D
 *     per product instead of B*B*Lc*D, and l (b*Lc*D floats, the largest activation)
 *     is never sent;
 *   global: A and Bm (b, 512) are gathered to (B, 512); rank r runs the head on the
 *     b*B pairs of its own anchors i, the b*B scores are gathered to the whole (B, B)
 *     and every rank computes the whole loss and du and keeps its rows; dBm_i of its
 *     anchors is local; dA_j (every j gets terms from every anchor) is summed over
 *     ranks (B x 512 floats) and each keeps its own rows;
 *   prior: per image; the loss sums and D's update use 1/B of the global batch; the
 *     real samples z are drawn for all B (equal RNGs) and each rank takes its rows.
 * Every rank's gradient slabs then hold its share of the one-process gradient; one
 * sum over the main slab (and one over D's) gives the one-process gradient to all,
 * and the same Adam update keeps the parameters equal. With N == 1 (or no dist) every
 * loop and product is the one-process one: bit-identical.
 */
#include "dim/trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/blas.h"
#include "base/dist.h"
#include "base/parallel.h"
#include "nn/activation.h"

struct dim_trainer {
    struct dim_model *m;
    const struct dim_dataset *ds;
    struct dim_preprocess pp;
    size_t B, Lc;
    size_t b, r, N; /* local batch, rank, ranks (1, 0, 1 in one process) */
    const struct dim_dist *dist; /* NULL in one process */
    uint32_t *perm;
    struct dim_train_progress pr;
    struct dim_rng data_rng;
    float *slab;
    float *x;
    struct nn_net_ws enc;
    struct dim_minet_ws lws, gws;
    float *rows, *drows, *u, *du;
    struct nn_net_ws gcc, gcy, gch;
    float *z, *dz;
    struct nn_net_ws pw;
    float *sy, *dsy, *pin;
    /* N > 1 only: gathered MI outputs, critic branches and scores; dA summed over ranks */
    float *gall, *dgall, *aall, *bmall, *dall, *sall, *dsall;
};

/* Carves n floats from *cur, or only counts them when *cur is NULL. */
static float *carve(float **cur, size_t *total, size_t n)
{
    float *p = *cur ? *cur : NULL;
    if (*cur)
        *cur += n;
    *total += n;
    return p;
}

/* Lays out every buffer; with base NULL only counts. Returns floats needed. */
static size_t plan(struct dim_trainer *t, float *base)
{
    const struct dim_model *m = t->m;
    const size_t B = t->B, b = t->b, Lc = t->Lc, Cl = (size_t)m->local_c,
                 Yd = (size_t)m->cfg.y_dim, D = (size_t)m->cfg.mi_dim;
    const bool many = t->N > 1;
    float *cur = base;
    size_t total = 0;
    t->x = carve(&cur, &total, B * nn_net_in_size(&m->enc));
    float *p = carve(&cur, &total, nn_net_ws_floats(&m->enc, b, true));
    if (base)
        nn_net_ws_carve(&m->enc, &t->enc, p, b, true);
    if (m->has_local) {
        p = carve(&cur, &total, dim_minet_ws_floats(&m->lmi, b * Lc));
        if (base)
            dim_minet_ws_carve(&m->lmi, &t->lws, p, b * Lc);
        p = carve(&cur, &total, dim_minet_ws_floats(&m->gmi, b));
        if (base)
            dim_minet_ws_carve(&m->gmi, &t->gws, p, b);
        t->rows = carve(&cur, &total, b * Lc * Cl);
        t->drows = carve(&cur, &total, b * Lc * Cl);
        /* with ranks, this rank's column block (B, b*Lc) */
        t->u = carve(&cur, &total, B * b * Lc);
        t->du = carve(&cur, &total, B * b * Lc);
        if (many) {
            t->gall = carve(&cur, &total, B * D);
            t->dgall = carve(&cur, &total, B * D);
        }
    }
    if (m->has_global) {
        p = carve(&cur, &total, nn_net_ws_floats(&m->gc_conv, b, true));
        if (base)
            nn_net_ws_carve(&m->gc_conv, &t->gcc, p, b, true);
        p = carve(&cur, &total, nn_net_ws_floats(&m->gc_y, b, true));
        if (base)
            nn_net_ws_carve(&m->gc_y, &t->gcy, p, b, true);
        p = carve(&cur, &total, nn_net_ws_floats(&m->gc_head, b * B, true));
        if (base)
            nn_net_ws_carve(&m->gc_head, &t->gch, p, b * B, true);
        t->z = carve(&cur, &total, b * B * 512);
        t->dz = carve(&cur, &total, b * B * 512);
        if (many) {
            t->aall = carve(&cur, &total, B * 512);
            t->bmall = carve(&cur, &total, B * 512);
            t->dall = carve(&cur, &total, B * 512);
            t->sall = carve(&cur, &total, B * B);
            t->dsall = carve(&cur, &total, B * B);
        }
    }
    if (m->has_prior) {
        p = carve(&cur, &total, nn_net_ws_floats(&m->prior, 2 * b, true));
        if (base)
            nn_net_ws_carve(&m->prior, &t->pw, p, 2 * b, true);
        t->sy = carve(&cur, &total, b * Yd);
        t->dsy = carve(&cur, &total, b * Yd);
        t->pin = carve(&cur, &total, 2 * b * Yd);
    }
    return total;
}

static void new_epoch_order(struct dim_trainer *t)
{
    t->pr.epoch_rng = t->data_rng;
    for (size_t i = 0; i < t->ds->n; i++)
        t->perm[i] = (uint32_t)i;
    dim_rng_shuffle(&t->data_rng, t->perm, t->ds->n);
    t->pr.pos = 0;
}

int dim_trainer_create(struct dim_trainer **out, struct dim_model *m,
                       const struct dim_dataset *ds, const struct dim_preprocess *pp,
                       struct dim_err *err)
{
    return dim_trainer_create_dist(out, m, ds, pp, NULL, err);
}

int dim_trainer_create_dist(struct dim_trainer **out, struct dim_model *m,
                            const struct dim_dataset *ds, const struct dim_preprocess *pp,
                            const struct dim_dist *dist, struct dim_err *err)
{
    *out = NULL;
    if (dist && (dist->size < 1 || dist->rank < 0 || dist->rank >= dist->size))
        return dim_fail(err, DIM_EINVAL, "rank %d of %d ranks is not a rank", dist->rank,
                        dist->size);
    if (dist && m->cfg.batch % (uint32_t)dist->size != 0)
        return dim_fail(err, DIM_EINVAL, "batch %u does not split evenly over %d ranks",
                        m->cfg.batch, dist->size);
    if (!m->training)
        return dim_fail(err, DIM_EINVAL, "the model was not created for training");
    if (pp->c != m->cfg.in_c || pp->h != m->in_h || pp->w != m->in_w)
        return dim_fail(err, DIM_ESHAPE, "input %dx%dx%d does not match model input %dx%dx%d",
                        pp->c, pp->h, pp->w, m->cfg.in_c, m->in_h, m->in_w);
    if (ds->n < m->cfg.batch || ds->n > UINT32_MAX)
        return dim_fail(err, DIM_EINVAL, "dataset has %zu images; batch %u needs at least that many",
                        ds->n, m->cfg.batch);
    struct dim_trainer *t = calloc(1, sizeof *t);
    if (!t)
        return dim_fail(err, DIM_ENOMEM, "out of memory for the trainer");
    t->m = m;
    t->ds = ds;
    t->pp = *pp;
    t->B = m->cfg.batch;
    t->N = dist ? (size_t)dist->size : 1;
    t->r = dist ? (size_t)dist->rank : 0;
    t->b = t->B / t->N;
    t->dist = t->N > 1 ? dist : NULL;
    t->Lc = (size_t)m->local_h * m->local_w;
    size_t n = plan(t, NULL);
    t->slab = malloc(sizeof(float) * n);
    t->perm = malloc(sizeof(uint32_t) * ds->n);
    if (!t->slab || !t->perm) {
        dim_trainer_free(t);
        return dim_fail(err, DIM_ENOMEM, "out of memory for a %zu MiB training workspace",
                        n * sizeof(float) >> 20);
    }
    memset(t->slab, 0, sizeof(float) * n);
    plan(t, t->slab);
    dim_rng_seed(&t->data_rng, m->cfg.seed, 0xda7a);
    dim_rng_seed(&t->pr.rng, m->cfg.seed, 0x5eed);
    new_epoch_order(t);
    *out = t;
    return 0;
}

void dim_trainer_free(struct dim_trainer *t)
{
    if (!t)
        return;
    free(t->slab);
    free(t->perm);
    free(t);
}

uint64_t dim_trainer_steps_per_epoch(const struct dim_trainer *t)
{
    return t->ds->n / t->B;
}

float *dim_trainer_input(struct dim_trainer *t)
{
    return t->x;
}

void dim_trainer_progress(const struct dim_trainer *t, struct dim_train_progress *p)
{
    *p = t->pr;
}

int dim_trainer_restore(struct dim_trainer *t, const struct dim_train_progress *p,
                        struct dim_err *err)
{
    if (p->pos > t->ds->n || p->pos % t->B != 0)
        return dim_fail(err, DIM_EINVAL, "saved position %llu does not fit a dataset of %zu images "
                        "in batches of %zu", (unsigned long long)p->pos, t->ds->n, t->B);
    t->data_rng = p->epoch_rng;
    new_epoch_order(t);
    t->pr = *p;
    return 0;
}

/* local map (B, Cl, Lc) <-> rows (B*Lc, Cl), split over images */
struct transpose_job {
    float *dst;
    const float *src;
    size_t Cl, Lc;
};

static void map_to_rows_images(void *ctx, size_t b0, size_t b1)
{
    const struct transpose_job *j = ctx;
    for (size_t b = b0; b < b1; b++)
        for (size_t c = 0; c < j->Cl; c++) {
            const float *src = j->src + (b * j->Cl + c) * j->Lc;
            for (size_t q = 0; q < j->Lc; q++)
                j->dst[(b * j->Lc + q) * j->Cl + c] = src[q];
        }
}

static void rows_add_to_map_images(void *ctx, size_t b0, size_t b1)
{
    const struct transpose_job *j = ctx;
    for (size_t b = b0; b < b1; b++)
        for (size_t c = 0; c < j->Cl; c++) {
            float *dst = j->dst + (b * j->Cl + c) * j->Lc;
            for (size_t q = 0; q < j->Lc; q++)
                dst[q] += j->src[(b * j->Lc + q) * j->Cl + c];
        }
}

static void map_to_rows(float *rows, const float *map, size_t B, size_t Cl, size_t Lc)
{
    struct transpose_job j = {rows, map, Cl, Lc};
    dim_parallel_for(B, 2, map_to_rows_images, &j);
}

static void rows_add_to_map(float *map, const float *rows, size_t B, size_t Cl, size_t Lc)
{
    struct transpose_job j = {map, rows, Cl, Lc};
    dim_parallel_for(B, 2, rows_add_to_map_images, &j);
}

static double local_mi(struct dim_trainer *t, const float *map, float *dmap, const float *Y,
                       float *dY, bool backward)
{
    const struct dim_model *m = t->m;
    const size_t B = t->B, b = t->b, r = t->r, Lc = t->Lc, Cl = (size_t)m->local_c,
                 D = (size_t)m->cfg.mi_dim;
    map_to_rows(t->rows, map, b, Cl, Lc);
    dim_minet_forward(&m->lmi, &t->lws, t->rows, b * Lc);
    dim_minet_forward(&m->gmi, &t->gws, Y, b);
    const float *l = t->lws.out, *g = t->gws.out;
    if (t->dist) { /* all B anchors against this rank's images: u_r = G l_r^T */
        const struct dim_dist *d = t->dist;
        d->gather_f32(d->ctx, t->gall, g, b * D);
        nn_sgemm(false, true, B, b * Lc, D, 1.0f, t->gall, D, l, D, 0.0f, t->u, b * Lc);
        double loss = dim_estimator_loss_cols(m->cfg.estimator, t->du, t->u, B, Lc, r * b, b,
                                              m->cfg.beta, d);
        if (!backward)
            return loss;
        /* dl_r = du_r^T G (exact); dG = du_r l_r, summed over ranks, own rows kept */
        nn_sgemm(true, false, b * Lc, D, B, 1.0f, t->du, b * Lc, t->gall, D, 0.0f,
                 t->lws.dout, D);
        nn_sgemm(false, false, B, D, b * Lc, 1.0f, t->du, b * Lc, l, D, 0.0f, t->dgall, D);
        d->sum_f32(d->ctx, t->dgall, B * D);
        memcpy(t->gws.dout, t->dgall + r * b * D, sizeof(float) * b * D);
        memset(t->drows, 0, sizeof(float) * b * Lc * Cl);
        dim_minet_backward(&m->lmi, &t->lws, t->rows, t->drows, b * Lc);
        dim_minet_backward(&m->gmi, &t->gws, Y, dY, b);
        rows_add_to_map(dmap, t->drows, b, Cl, Lc);
        return loss;
    }
    nn_sgemm(false, true, B, B * Lc, D, 1.0f, g, D, l, D, 0.0f, t->u, B * Lc);
    double loss = dim_estimator_loss(m->cfg.estimator, t->du, t->u, B, Lc, m->cfg.beta);
    if (!backward)
        return loss;
    /* u = g l^T: dg = du l, dl = du^T g */
    nn_sgemm(false, false, B, D, B * Lc, 1.0f, t->du, B * Lc, l, D, 0.0f, t->gws.dout, D);
    nn_sgemm(true, false, B * Lc, D, B, 1.0f, t->du, B * Lc, g, D, 0.0f, t->lws.dout, D);
    memset(t->drows, 0, sizeof(float) * b * Lc * Cl);
    dim_minet_backward(&m->lmi, &t->lws, t->rows, t->drows, b * Lc);
    dim_minet_backward(&m->gmi, &t->gws, Y, dY, b);
    rows_add_to_map(dmap, t->drows, b, Cl, Lc);
    return loss;
}

static double global_mi(struct dim_trainer *t, const float *map, float *dmap, const float *Y,
                        float *dY, bool backward)
{
    const struct dim_model *m = t->m;
    const size_t B = t->B, b = t->b, r = t->r, H = 512;
    nn_net_forward(&m->gc_conv, &t->gcc, map, b, NN_TRAIN, NULL);
    nn_net_forward(&m->gc_y, &t->gcy, Y, b, NN_TRAIN, NULL);
    const float *A = nn_net_out(&m->gc_conv, &t->gcc), *Bm = nn_net_out(&m->gc_y, &t->gcy);
    if (t->dist) {
        t->dist->gather_f32(t->dist->ctx, t->aall, A, b * H);
        t->dist->gather_f32(t->dist->ctx, t->bmall, Bm, b * H);
        A = t->aall;
        Bm = t->bmall;
    }
    /* this rank's anchors i = r*b + il against all B images j */
    float *z = t->z;
    for (size_t il = 0; il < b; il++)
        for (size_t j = 0; j < B; j++)
            for (size_t h = 0; h < H; h++)
                z[(il * B + j) * H + h] = A[j * H + h] + Bm[(r * b + il) * H + h];
    nn_net_forward(&m->gc_head, &t->gch, z, b * B, NN_TRAIN, NULL);
    nn_net_zero_dact(&m->gc_head, &t->gch, b * B);
    float *score = nn_net_out(&m->gc_head, &t->gch), *dscore = nn_net_dout(&m->gc_head, &t->gch);
    if (t->dist) {
        t->dist->gather_f32(t->dist->ctx, t->sall, score, b * B);
        score = t->sall;
        dscore = t->dsall;
    }
    double loss = dim_estimator_loss(m->cfg.estimator, dscore, score, B, 1, m->cfg.alpha);
    if (!backward)
        return loss;
    if (t->dist)
        memcpy(nn_net_dout(&m->gc_head, &t->gch), t->dsall + r * b * B, sizeof(float) * b * B);
    memset(t->dz, 0, sizeof(float) * b * B * H);
    nn_net_backward(&m->gc_head, &t->gch, z, t->dz, b * B);
    const float *dzr = t->dz;
    /* z[i*B + j] = A_j + Bm_i: dA_j = sum_i dz[i*B + j], dBm_i = sum_j dz[i*B + j];
     * with ranks, dA_j sums over every rank's anchors */
    nn_net_zero_dact(&m->gc_conv, &t->gcc, b);
    nn_net_zero_dact(&m->gc_y, &t->gcy, b);
    float *dA = nn_net_dout(&m->gc_conv, &t->gcc), *dBm = nn_net_dout(&m->gc_y, &t->gcy);
    if (t->dist) {
        dA = t->dall;
        memset(dA, 0, sizeof(float) * B * H);
    }
    for (size_t il = 0; il < b; il++)
        for (size_t j = 0; j < B; j++)
            for (size_t h = 0; h < H; h++) {
                float d = dzr[(il * B + j) * H + h];
                dA[j * H + h] += d;
                dBm[il * H + h] += d;
            }
    if (t->dist) {
        t->dist->sum_f32(t->dist->ctx, t->dall, B * H);
        memcpy(nn_net_dout(&m->gc_conv, &t->gcc), t->dall + r * b * H, sizeof(float) * b * H);
    }
    nn_net_backward(&m->gc_conv, &t->gcc, map, dmap, b);
    nn_net_backward(&m->gc_y, &t->gcy, Y, dY, b);
    return loss;
}

static double prior_enc(struct dim_trainer *t, const float *Y, float *dY, bool backward)
{
    const struct dim_model *m = t->m;
    const size_t B = t->B, b = t->b, n = b * (size_t)m->cfg.y_dim;
    nn_sigmoid_forward(t->sy, Y, n);
    nn_net_forward(&m->prior, &t->pw, t->sy, b, NN_TRAIN, NULL);
    const float *d = nn_net_out(&m->prior, &t->pw);
    double loss = 0.0;
    for (size_t i = 0; i < b; i++)
        loss += nn_softplus(-d[i]);
    if (t->dist)
        t->dist->sum_f64(t->dist->ctx, &loss, 1);
    loss /= (double)B;
    if (!backward)
        return loss;
    /* loss = mean sp(-d) over the global batch: d loss/d d_i = -sigmoid(-d_i) / B */
    nn_net_zero_dact(&m->prior, &t->pw, b);
    float *dd = nn_net_dout(&m->prior, &t->pw);
    for (size_t i = 0; i < b; i++)
        dd[i] = (float)(-m->cfg.gamma * nn_sigmoid(-d[i]) / (double)B);
    memset(t->dsy, 0, sizeof(float) * n);
    nn_net_backward(&m->prior, &t->pw, t->sy, t->dsy, b);
    nn_sigmoid_backward(dY, t->dsy, t->sy, n);
    return loss;
}

void dim_trainer_eval_batch(struct dim_trainer *t, const float *x, bool backward,
                            struct dim_losses *ls)
{
    struct dim_model *m = t->m;
    memset(ls, 0, sizeof *ls);
    const struct dim_dist *prev = dim_dist_use(t->dist);
    x += t->r * t->b * nn_net_in_size(&m->enc); /* this rank's images */
    if (backward)
        dim_model_zero_grads(m);
    nn_net_forward(&m->enc, &t->enc, x, t->b, NN_TRAIN, NULL);
    if (backward)
        nn_net_zero_dact(&m->enc, &t->enc, t->b);
    const float *map = t->enc.act[m->tap_layer[DIM_TAP_LOCAL]];
    const float *Y = t->enc.act[m->tap_layer[DIM_TAP_Y]];
    float *dmap = backward ? t->enc.dact[m->tap_layer[DIM_TAP_LOCAL]] : NULL;
    float *dY = backward ? t->enc.dact[m->tap_layer[DIM_TAP_Y]] : NULL;
    if (m->has_local)
        ls->local = local_mi(t, map, dmap, Y, dY, backward);
    if (m->has_global)
        ls->global = global_mi(t, map, dmap, Y, dY, backward);
    if (m->has_prior) {
        ls->prior_enc = prior_enc(t, Y, dY, backward);
        if (backward) /* D's gradients from the encoder's term are not D's to apply */
            memset(m->prior_grads, 0, sizeof(float) * m->n_prior);
    }
    ls->total = m->cfg.beta * ls->local + m->cfg.alpha * ls->global +
                m->cfg.gamma * ls->prior_enc;
    if (backward)
        nn_net_backward(&m->enc, &t->enc, x, NULL, t->b);
    dim_dist_use(prev);
}

/* D's loss = mean_real sp(-D(z)) + mean_fake sp(D(s)), z ~ U[0,1], s = sigmoid(Y), and
 * its gradients into m->prior_grads; the caller applies them once all is finite. */
static double prior_disc_grads(struct dim_trainer *t)
{
    struct dim_model *m = t->m;
    const size_t B = t->B, b = t->b, Yd = (size_t)m->cfg.y_dim;
    /* the real samples of all B rows are drawn (every rank's RNG stays the same); this
     * rank keeps rows [r*b, (r+1)*b) */
    const size_t own0 = t->r * b * Yd, own1 = own0 + b * Yd;
    for (size_t i = 0; i < B * Yd; i++) {
        float v = dim_rng_uniform(&t->pr.rng);
        if (i >= own0 && i < own1)
            t->pin[i - own0] = v;
    }
    memcpy(t->pin + b * Yd, t->sy, sizeof(float) * b * Yd);
    nn_net_forward(&m->prior, &t->pw, t->pin, 2 * b, NN_TRAIN, NULL);
    nn_net_zero_dact(&m->prior, &t->pw, 2 * b);
    const float *d = nn_net_out(&m->prior, &t->pw);
    float *dd = nn_net_dout(&m->prior, &t->pw);
    double loss = 0.0;
    for (size_t i = 0; i < b; i++) {
        loss += nn_softplus(-d[i]) + nn_softplus(d[b + i]);
        dd[i] = (float)(-nn_sigmoid(-d[i]) / (double)B);
        dd[b + i] = (float)(nn_sigmoid(d[b + i]) / (double)B);
    }
    memset(m->prior_grads, 0, sizeof(float) * m->n_prior);
    nn_net_backward(&m->prior, &t->pw, t->pin, NULL, 2 * b);
    if (t->dist) {
        t->dist->sum_f64(t->dist->ctx, &loss, 1);
        t->dist->sum_f32(t->dist->ctx, m->prior_grads, m->n_prior);
    }
    return loss / (double)B;
}

/* Finiteness of n floats, checked in FINITE_PARTS fixed parts across the pool; each
 * part writes only its own flag. */
#define FINITE_PARTS 64

struct finite_job {
    const float *p;
    size_t n;
    bool ok[FINITE_PARTS];
};

static void finite_parts(void *ctx, size_t k0, size_t k1)
{
    struct finite_job *j = ctx;
    for (size_t k = k0; k < k1; k++) {
        size_t b = j->n * k / FINITE_PARTS, e = j->n * (k + 1) / FINITE_PARTS;
        /* a float is inf or NaN when its exponent bits are all ones; testing the
         * bits (read with memcpy, no aliasing) vectorises, isfinite() per value
         * did not and took 4 % of a training step */
        uint32_t any = 0;
        for (size_t i = b; i < e; i++) {
            uint32_t u;
            memcpy(&u, &j->p[i], sizeof u);
            any |= (u & 0x7f800000u) == 0x7f800000u;
        }
        j->ok[k] = any == 0;
    }
}

static bool all_finite(const float *p, size_t n)
{
    struct finite_job j = {.p = p, .n = n};
    dim_parallel_for(FINITE_PARTS, n < (1u << 16) ? FINITE_PARTS : 1, finite_parts, &j);
    for (size_t k = 0; k < FINITE_PARTS; k++)
        if (!j.ok[k])
            return false;
    return true;
}

int dim_trainer_step(struct dim_trainer *t, struct dim_losses *ls, struct dim_err *err)
{
    struct dim_model *m = t->m;
    if (t->pr.pos + t->B > t->ds->n) {
        t->pr.epoch++;
        new_epoch_order(t);
    }
    const uint32_t *idx = t->perm + t->pr.pos;
    bool augment = t->pp.random_crop > 0 || t->pp.random_flip;
    dim_dataset_batch(t->ds, idx, t->B, &t->pp, augment ? &t->pr.rng : NULL, t->x, NULL);
    dim_trainer_eval_batch(t, t->x, true, ls);
    if (t->dist) /* each rank's share of the one-process gradient -> the whole of it */
        t->dist->sum_f32(t->dist->ctx, m->main_grads, m->n_main);
    const char *bad = !isfinite(ls->local)       ? "local MI loss"
                      : !isfinite(ls->global)    ? "global MI loss"
                      : !isfinite(ls->prior_enc) ? "prior matching loss"
                      : !all_finite(m->main_grads, m->n_main) ? "encoder gradient"
                                                              : NULL;
    if (bad)
        return dim_fail(err, DIM_ENONFINITE, "%s is not finite at step %llu", bad,
                        (unsigned long long)t->pr.step);
    /* D's loss is checked before either update, so a failed step changes no parameter */
    if (m->has_prior) {
        ls->prior_disc = prior_disc_grads(t);
        if (!isfinite(ls->prior_disc) || !all_finite(m->prior_grads, m->n_prior))
            return dim_fail(err, DIM_ENONFINITE, "prior discriminator loss or gradient is not finite at step %llu",
                            (unsigned long long)t->pr.step);
    }
    /* the schedule's lr for this step, on both optimisers (cfg.lr itself when constant) */
    m->opt_main.lr = m->opt_prior.lr = dim_lr_at(&m->cfg, t->pr.step);
    nn_adam_update(&m->opt_main, m->main_params, m->main_grads, m->main_m, m->main_v, m->n_main);
    if (m->has_prior)
        nn_adam_update(&m->opt_prior, m->prior_params, m->prior_grads, m->prior_m, m->prior_v,
                       m->n_prior);
    t->pr.pos += t->B;
    t->pr.step++;
    return 0;
}

/* Matches dim_trainer_step: which nets run on how many rows, and which input
 * gradients are needed (the encoder's first layer and the discriminator's first
 * layer in its own update have none). */
double dim_trainer_step_flops(const struct dim_trainer *t)
{
    const struct dim_model *m = t->m;
    const double B = (double)t->B, Lc = (double)t->Lc, D = m->cfg.mi_dim;
#define TRAIN_MACS(net, rows, din) ((rows) * (nn_net_macs(net) + nn_net_backward_macs(net, din)))
    double macs = TRAIN_MACS(&m->enc, B, false);
    if (m->has_local) {
        macs += TRAIN_MACS(&m->lmi.a, B * Lc, true) + TRAIN_MACS(&m->lmi.s, B * Lc, true);
        macs += TRAIN_MACS(&m->gmi.a, B, true) + TRAIN_MACS(&m->gmi.s, B, true);
        macs += 3 * B * B * Lc * D; /* u = g l^T, dg = du l, dl = du^T g */
    }
    if (m->has_global)
        macs += TRAIN_MACS(&m->gc_conv, B, true) + TRAIN_MACS(&m->gc_y, B, true) +
                TRAIN_MACS(&m->gc_head, B * B, true);
    if (m->has_prior) /* encoder term on B rows, discriminator update on 2B rows */
        macs += TRAIN_MACS(&m->prior, B, true) + TRAIN_MACS(&m->prior, 2 * B, false);
#undef TRAIN_MACS
    return 2.0 * macs;
}

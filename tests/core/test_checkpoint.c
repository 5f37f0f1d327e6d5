/* test_checkpoint.c - dim/checkpoint: save and load give back the same model
 * bit for bit (parameters, batch-norm state, Adam moments and steps, progress,
 * encoder outputs), a resumed run equals a straight one bit for bit, every
 * malformed input gets its own error code, I/O failures are DIM_EIO / DIM_ENOENT.
 * Most tests go through in-memory reader/writer callbacks; one round trip goes
 * through dim_checkpoint_save/load in a temporary directory.
 *
 * The smallest model is basic28x28 (its linear layer alone is 6.4M floats), so
 * "every truncation length" means: every length inside the header, where reads
 * fail before a model is built, and the lengths around each payload boundary
 * plus a few inside, where each failed read first builds a model. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <zlib.h>

#include "base/blas.h"
#include "dim/checkpoint.h"
#include "dim/model.h"
#include "dim/trainer.h"
#include "fixtures.h"
#include "dimfix.h"
#include "gradcheck.h"

/* Byte offsets of header fields (checkpoint.h's layout). */
#define OFF_VERSION 8
#define OFF_PRESET 12
#define OFF_IN_C 16
#define OFF_BATCH 60
#define OFF_SCHEDULE 72 /* version 2: u32 lr_schedule, u64 lr_warmup, f32 lr_final, */
#define OFF_WARMUP 76   /* f32 lr_step_factor, u64 lr_horizon */
#define OFF_FINAL 84
#define OFF_HORIZON 92
#define SCHEDULE_BYTES 28 /* what version 1 lacks */
#define OFF_STEP 100
#define OFF_NT 172
#define OFF_TABLE 176
#define TABLE_ENTRY 24 /* name (16) + u64 count */
#define HEADER_BYTES (OFF_TABLE + 7 * TABLE_ENTRY)

/* ---- in-memory I/O ------------------------------------------------------------ */

struct membuf {
    uint8_t *data;
    size_t len, cap, pos;
    int writes, fail_at; /* the fail_at-th write call fails (1-based; 0: never) */
};

static int mem_write(void *ctx, const void *buf, size_t n)
{
    struct membuf *b = ctx;
    if (++b->writes == b->fail_at)
        return -1;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *p = realloc(b->data, cap);
        if (!p)
            return -1;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, buf, n);
    b->len += n;
    return 0;
}

static size_t mem_read(void *ctx, void *buf, size_t n)
{
    struct membuf *b = ctx;
    size_t k = b->len - b->pos < n ? b->len - b->pos : n;
    memcpy(buf, b->data + b->pos, k);
    b->pos += k;
    return k;
}

static void mem_save(const struct dim_model *m, const struct dim_train_progress *p,
                     struct membuf *b)
{
    memset(b, 0, sizeof *b);
    struct dim_writer w = {mem_write, b};
    struct dim_err err = {0};
    if (dim_checkpoint_write(m, p, &w, &err) != 0)
        fail_msg("write: %s", err.msg);
}

/* Reads len bytes of data (a view: data is not modified). */
static int mem_load(const uint8_t *data, size_t len, struct dim_model **out,
                    struct dim_train_progress *p, bool training, struct dim_err *err)
{
    struct membuf b = {(uint8_t *)data, len, len, 0, 0, 0};
    struct dim_reader r = {mem_read, &b};
    *out = (struct dim_model *)err; /* must become NULL on failure */
    int rc = dim_checkpoint_read(out, p, training, &r, err);
    if (rc != 0)
        assert_null(*out);
    else
        assert_non_null(*out);
    return rc;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)v);
    put_u32(p + 4, (uint32_t)(v >> 32));
}

/* ---- models, data and training -------------------------------------------------- */

static struct dim_config small_config(uint64_t seed)
{
    struct dim_config c = dimfix_config(6, 8, 4);
    c.alpha = 0.5f; /* every net present: encoder, local MI nets, global critic, prior */
    c.beta = 0.5f;
    c.gamma = 0.1f;
    c.lr = 1e-3f;
    c.seed = seed;
    /* every schedule field off its default, so a round trip shows each one */
    c.lr_schedule = DIM_LR_COSINE;
    c.lr_warmup = 3;
    c.lr_final = 0.05f;
    c.lr_step_factor = 0.3f;
    c.lr_horizon = 10;
    return c;
}

static struct dim_model *create(const struct dim_config *c, bool training)
{
    struct dim_model *m;
    struct dim_err err = {0};
    if (dim_model_create(&m, c, training, &err) != 0)
        fail_msg("model: %s", err.msg);
    return m;
}

/* n random 28x28 grey images */
static void random_dataset(struct dim_dataset *ds, size_t n, uint64_t seed)
{
    memset(ds, 0, sizeof *ds);
    ds->n = n;
    ds->c = 1;
    ds->h = ds->w = 28;
    ds->n_classes = 2;
    ds->px = malloc(n * 28 * 28);
    ds->labels = calloc(n, sizeof *ds->labels);
    assert_non_null(ds->px);
    assert_non_null(ds->labels);
    struct dim_rng rng;
    dim_rng_seed(&rng, seed, 8);
    for (size_t i = 0; i < n * 28 * 28; i++)
        ds->px[i] = (uint8_t)(dim_rng_u32(&rng) >> 24);
}

static const struct dim_preprocess augment = {1, 28, 28, 2, 1}; /* random crop 2, flip */

static struct dim_trainer *trainer(struct dim_model *m, const struct dim_dataset *ds)
{
    struct dim_trainer *t;
    struct dim_err err = {0};
    if (dim_trainer_create(&t, m, ds, &augment, &err) != 0)
        fail_msg("trainer: %s", err.msg);
    return t;
}

static void steps(struct dim_trainer *t, int n)
{
    for (int s = 0; s < n; s++) {
        struct dim_losses ls;
        struct dim_err err = {0};
        if (dim_trainer_step(t, &ls, &err) != 0)
            fail_msg("step: %s", err.msg);
    }
}

static bool same_floats(const float *a, const float *b, size_t n)
{
    return n == 0 || memcmp(a, b, sizeof(float) * n) == 0;
}

/* Everything a checkpoint holds, bit for bit (moments only when both train). */
static void assert_same_config(const struct dim_config *a, const struct dim_config *b)
{
    assert_true(a->preset == b->preset && a->in_c == b->in_c && a->y_dim == b->y_dim &&
                a->mi_dim == b->mi_dim && a->estimator == b->estimator);
    assert_true(a->alpha == b->alpha && a->beta == b->beta && a->gamma == b->gamma &&
                a->lr == b->lr && a->adam_beta1 == b->adam_beta1 &&
                a->adam_beta2 == b->adam_beta2 && a->adam_eps == b->adam_eps);
    assert_true(a->batch == b->batch && a->seed == b->seed);
    assert_true(a->lr_schedule == b->lr_schedule && a->lr_warmup == b->lr_warmup &&
                a->lr_final == b->lr_final && a->lr_step_factor == b->lr_step_factor &&
                a->lr_horizon == b->lr_horizon);
}

static void assert_same_model(const struct dim_model *a, const struct dim_model *b)
{
    assert_same_config(&a->cfg, &b->cfg);
    assert_int_equal(a->n_main, b->n_main);
    assert_int_equal(a->n_prior, b->n_prior);
    assert_int_equal(a->n_state, b->n_state);
    assert_true(same_floats(a->main_params, b->main_params, a->n_main));
    assert_true(same_floats(a->prior_params, b->prior_params, a->n_prior));
    assert_true(same_floats(a->state, b->state, a->n_state));
    if (a->training && b->training) {
        assert_true(same_floats(a->main_m, b->main_m, a->n_main));
        assert_true(same_floats(a->main_v, b->main_v, a->n_main));
        assert_true(same_floats(a->prior_m, b->prior_m, a->n_prior));
        assert_true(same_floats(a->prior_v, b->prior_v, a->n_prior));
        assert_true(a->opt_main.t == b->opt_main.t && a->opt_prior.t == b->opt_prior.t);
    }
}

static void assert_same_progress(const struct dim_train_progress *a,
                                 const struct dim_train_progress *b)
{
    assert_true(a->step == b->step && a->epoch == b->epoch && a->pos == b->pos);
    assert_true(a->rng.state == b->rng.state && a->rng.inc == b->rng.inc);
    assert_true(a->epoch_rng.state == b->epoch_rng.state && a->epoch_rng.inc == b->epoch_rng.inc);
}

/* Every tap of both models on the same images: identical bits. */
static void assert_same_encodings(const struct dim_model *a, const struct dim_model *b)
{
    const size_t B = 3, in = nn_net_in_size(&a->enc);
    float *x = malloc(sizeof(float) * B * in);
    assert_non_null(x);
    struct dim_rng rng;
    dim_rng_seed(&rng, 77, 1);
    gc_fill_uniform(x, B * in, -1.0f, 1.0f, &rng);
    struct dim_encode_ws wa, wb;
    struct dim_err err = {0};
    assert_int_equal(dim_encode_ws_create(&wa, a, B, &err), 0);
    assert_int_equal(dim_encode_ws_create(&wb, b, B, &err), 0);
    for (int t = 0; t < 4; t++) {
        const size_t n = B * dim_model_tap_size(a, (enum dim_tap)t);
        const float *ya = dim_model_encode(a, &wa, x, B, (enum dim_tap)t);
        const float *yb = dim_model_encode(b, &wb, x, B, (enum dim_tap)t);
        assert_true(memcmp(ya, yb, sizeof(float) * n) == 0);
    }
    dim_encode_ws_free(&wa);
    dim_encode_ws_free(&wb);
    free(x);
}

/* ---- group state: one trained model and its checkpoint -------------------------- */

struct group {
    struct dim_dataset ds;
    struct dim_model *m;
    struct dim_train_progress p;
    struct membuf ck;    /* training checkpoint of m */
    struct membuf small; /* inference-only checkpoint of m (no moments) */
};

static int group_setup(void **state)
{
    nn_blas_set_threads(1); /* bitwise reproducible GEMMs for the resume test */
    struct group *g = calloc(1, sizeof *g);
    if (!g)
        return -1;
    random_dataset(&g->ds, 10, 5);
    struct dim_config c = small_config(7);
    g->m = create(&c, true);
    struct dim_trainer *t = trainer(g->m, &g->ds);
    steps(t, 3); /* moments, BN running statistics and progress all non-trivial */
    dim_trainer_progress(t, &g->p);
    dim_trainer_free(t);
    mem_save(g->m, &g->p, &g->ck);
    struct dim_model *inf;
    struct dim_err err = {0};
    assert_int_equal(mem_load(g->ck.data, g->ck.len, &inf, NULL, false, &err), 0);
    mem_save(inf, NULL, &g->small);
    dim_model_free(inf);
    *state = g;
    return 0;
}

static int group_teardown(void **state)
{
    struct group *g = *state;
    dim_model_free(g->m);
    dim_dataset_free(&g->ds);
    free(g->ck.data);
    free(g->small.data);
    free(g);
    return 0;
}

/* ---- round trips ------------------------------------------------------------------ */

static void test_round_trip(void **state)
{
    struct group *g = *state;
    const struct dim_model *m = g->m;
    assert_true(m->opt_main.t == 3 && m->opt_prior.t == 3);
    /* the layout of checkpoint.h: header, tensors in table order, CRC */
    const uint8_t *d = g->ck.data;
    assert_memory_equal(d, DIM_CKPT_MAGIC, 8);
    assert_int_equal(get_u32(d + OFF_VERSION), DIM_CKPT_VERSION);
    assert_int_equal(get_u32(d + OFF_NT), 7);
    assert_true(get_u64(d + OFF_STEP) == 3);
    assert_int_equal(get_u32(d + OFF_SCHEDULE), DIM_LR_COSINE);
    assert_true(get_u64(d + OFF_WARMUP) == 3 && get_u64(d + OFF_HORIZON) == 10);
    assert_string_equal((const char *)d + OFF_TABLE, "main");
    assert_true(get_u64(d + OFF_TABLE + 16) == m->n_main);
    const size_t floats = 3 * m->n_main + 3 * m->n_prior + m->n_state;
    assert_int_equal(g->ck.len, HEADER_BYTES + 4 * floats + 4);
    assert_int_equal(g->small.len, HEADER_BYTES + 4 * (m->n_main + m->n_prior + m->n_state) + 4);

    /* training model: everything back, bit for bit */
    struct dim_model *r;
    struct dim_train_progress p;
    memset(&p, 0xee, sizeof p);
    struct dim_err err = {0};
    assert_int_equal(mem_load(g->ck.data, g->ck.len, &r, &p, true, &err), 0);
    assert_true(r->training);
    assert_same_model(m, r);
    assert_same_progress(&g->p, &p);
    assert_true(p.step == 3 && p.epoch == 1 && p.pos == 4); /* 10 images: 2 steps an epoch */
    assert_same_encodings(m, r);
    /* writing the loaded model again gives the same bytes */
    struct membuf again;
    mem_save(r, &p, &again);
    assert_int_equal(again.len, g->ck.len);
    assert_true(memcmp(again.data, g->ck.data, again.len) == 0);
    free(again.data);
    dim_model_free(r);

    /* inference-only model from the training checkpoint: same parameters, state and
     * encodings, no moments */
    assert_int_equal(mem_load(g->ck.data, g->ck.len, &r, NULL, false, &err), 0);
    assert_false(r->training);
    assert_null(r->main_m);
    assert_same_model(m, r);
    assert_same_encodings(m, r);
    dim_model_free(r);

    /* a training model from an inference-only checkpoint: moments start at zero */
    assert_int_equal(mem_load(g->small.data, g->small.len, &r, &p, true, &err), 0);
    assert_true(r->training);
    assert_true(same_floats(m->main_params, r->main_params, m->n_main));
    assert_true(r->opt_main.t == 0 && r->opt_prior.t == 0);
    for (size_t j = 0; j < r->n_main; j += 997)
        assert_true(r->main_m[j] == 0.0f && r->main_v[j] == 0.0f);
    assert_true(p.step == 0); /* written with a NULL progress */
    dim_model_free(r);
}

/* Train N steps straight, or N/2, checkpoint, load into a new model and trainer,
 * restore, N/2 more: the same bits, with a cosine lr schedule whose 3-step warm-up
 * ends in the first half and whose decay spans both (so the rates of the second
 * half come from the restored step and config). Augmentation is on (the rng matters); 10 images
 * in batches of 4 start epochs at steps 3, 5, 7 and 9, inside both halves, and the
 * checkpoint falls mid-epoch in epoch 2 (in epoch 1 a fresh trainer's data order
 * would match by chance: its generator already stands at epoch 1's start). */
static void test_resume_equals_straight(void **state)
{
    struct group *g = *state;
    enum { N = 10 };
    struct dim_config c = small_config(11);
    struct dim_model *a = create(&c, true);
    struct dim_trainer *ta = trainer(a, &g->ds);
    steps(ta, N);
    struct dim_train_progress pa;
    dim_trainer_progress(ta, &pa);
    assert_true(pa.step == N && pa.epoch == 4);

    struct dim_model *b = create(&c, true);
    struct dim_trainer *tb = trainer(b, &g->ds);
    steps(tb, N / 2);
    struct dim_train_progress pb;
    dim_trainer_progress(tb, &pb);
    assert_true(pb.epoch == 2 && pb.pos == 4); /* mid-epoch */
    struct membuf ck;
    mem_save(b, &pb, &ck);
    dim_trainer_free(tb);
    dim_model_free(b);

    struct dim_model *r;
    struct dim_train_progress pr;
    struct dim_err err = {0};
    assert_int_equal(mem_load(ck.data, ck.len, &r, &pr, true, &err), 0);
    struct dim_trainer *tr = trainer(r, &g->ds);
    assert_int_equal(dim_trainer_restore(tr, &pr, &err), 0);
    steps(tr, N - N / 2);
    struct dim_train_progress pr2;
    dim_trainer_progress(tr, &pr2);
    assert_same_progress(&pa, &pr2);
    assert_same_model(a, r);

    /* without dim_trainer_restore the run differs (the test can tell) */
    struct dim_model *r2;
    assert_int_equal(mem_load(ck.data, ck.len, &r2, NULL, true, &err), 0);
    struct dim_trainer *tr2 = trainer(r2, &g->ds);
    steps(tr2, N - N / 2);
    assert_false(same_floats(a->main_params, r2->main_params, a->n_main));
    dim_trainer_free(tr2);
    dim_model_free(r2);

    /* the schedule mattered: a constant lr gives other parameters */
    struct dim_config k = c;
    k.lr_schedule = DIM_LR_CONSTANT;
    k.lr_warmup = 0;
    struct dim_model *cst = create(&k, true);
    struct dim_trainer *tc = trainer(cst, &g->ds);
    steps(tc, N);
    assert_false(same_floats(a->main_params, cst->main_params, a->n_main));
    dim_trainer_free(tc);
    dim_model_free(cst);

    free(ck.data);
    dim_trainer_free(tr);
    dim_model_free(r);
    dim_trainer_free(ta);
    dim_model_free(a);
}

/* ---- malformed input ------------------------------------------------------------- */

static void expect(const uint8_t *data, size_t len, bool training, int want, const char *what)
{
    struct dim_model *m;
    struct dim_err err = {0};
    int rc = mem_load(data, len, &m, NULL, training, &err);
    if (rc != want)
        fail_msg("%s (%zu bytes): got %d (%s), want %d (%s)", what, len, rc, err.msg, want,
                 dim_status_name(want));
    if (rc == 0) {
        dim_model_free(m);
        return;
    }
    assert_int_equal(err.code, want);
    assert_true(strlen(err.msg) > 0);
}

/* A copy of the inference-only checkpoint to patch. */
static uint8_t *copy_small(const struct group *g)
{
    uint8_t *p = malloc(g->small.len + 1);
    assert_non_null(p);
    memcpy(p, g->small.data, g->small.len);
    return p;
}

static void test_truncated(void **state)
{
    struct group *g = *state;
    const uint8_t *d = g->small.data;
    const size_t len = g->small.len;
    /* The reader asks for 12 bytes before it looks at the magic, so every short
     * input, empty included, is DIM_ECKPT_TRUNCATED; so is every cut in the header. */
    for (size_t n = 0; n < HEADER_BYTES; n++)
        expect(d, n, false, DIM_ECKPT_TRUNCATED, "header cut");
    /* A cut in the payload or the checksum: around each boundary and inside. */
    const struct dim_model *m = g->m;
    const size_t t_main = HEADER_BYTES, t_prior = t_main + 4 * m->n_main,
                 t_state = t_prior + 4 * m->n_prior, crc = t_state + 4 * m->n_state;
    assert_int_equal(crc + 4, len);
    const size_t cuts[] = {
        t_main, t_main + 4 * m->n_main / 2 + 3, t_prior - 1, t_state + 5, crc - 1, crc, crc + 3};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++)
        expect(d, cuts[k], false, DIM_ECKPT_TRUNCATED, "payload cut");
    /* a training checkpoint cut inside its moments */
    const size_t moments = HEADER_BYTES + 4 * (m->n_main + m->n_prior + m->n_state);
    expect(g->ck.data, moments + 4 * m->n_main + 1, true, DIM_ECKPT_TRUNCATED, "moments cut");
    /* the whole thing reads */
    expect(d, len, false, 0, "whole");
}

static void test_bad_header(void **state)
{
    struct group *g = *state;
    const size_t len = g->small.len;
    uint8_t *p = copy_small(g);
    /* magic: each byte matters */
    for (int i = 0; i < 8; i++) {
        p[i] ^= 0x20;
        expect(p, len, false, DIM_ECKPT_MAGIC, "magic");
        p[i] ^= 0x20;
    }
    expect(p, 12, false, DIM_ECKPT_TRUNCATED, "12 bytes");
    p[0] = 'X';
    expect(p, 12, false, DIM_ECKPT_MAGIC, "12 bytes, bad magic");
    p[0] = 'D';
    /* version */
    const uint32_t versions[] = {0, DIM_CKPT_VERSION + 1, 0xffffffffu};
    for (size_t k = 0; k < 3; k++) {
        put_u32(p + OFF_VERSION, versions[k]);
        expect(p, len, false, DIM_ECKPT_VERSION, "version");
    }
    put_u32(p + OFF_VERSION, DIM_CKPT_VERSION);
    /* config fields out of range; the config is checked before the checksum */
    struct dim_err err = {0};
    uint32_t old;
    struct dim_model *m;
    const struct {
        size_t off;
        uint32_t v;
        const char *name;
    } cfgs[] = {{OFF_IN_C, 2, "channels"}, {OFF_IN_C, 0, "channels"}, {OFF_PRESET, 3, "preset"},
                {OFF_BATCH, 1, "batch"},   {20, 0, "y_dim"},          {28, 9, "estimator"}};
    for (size_t k = 0; k < sizeof cfgs / sizeof cfgs[0]; k++) {
        uint32_t was = get_u32(p + cfgs[k].off);
        put_u32(p + cfgs[k].off, cfgs[k].v);
        expect(p, len, false, DIM_ECKPT_CONFIG, cfgs[k].name);
        mem_load(p, len, &m, NULL, false, &err);
        if (!strstr(err.msg, cfgs[k].name))
            fail_msg("message '%s' does not name %s", err.msg, cfgs[k].name);
        put_u32(p + cfgs[k].off, was);
    }
    /* the schedule's fields (version 2) */
    put_u32(p + OFF_SCHEDULE, 3);
    expect(p, len, false, DIM_ECKPT_CONFIG, "lr_schedule 3");
    put_u32(p + OFF_SCHEDULE, DIM_LR_COSINE);
    put_u64(p + OFF_WARMUP, 11); /* longer than the horizon of 10 */
    expect(p, len, false, DIM_ECKPT_CONFIG, "lr_warmup 11");
    mem_load(p, len, &m, NULL, false, &err);
    assert_non_null(strstr(err.msg, "lr_warmup 11 is longer than lr_horizon 10"));
    put_u64(p + OFF_WARMUP, 3);
    old = get_u32(p + OFF_FINAL);
    put_u32(p + OFF_FINAL, 0x40000000u); /* 2.0 */
    expect(p, len, false, DIM_ECKPT_CONFIG, "lr_final 2");
    put_u32(p + OFF_FINAL, old);
    /* alpha = NaN (f32 at 32) */
    old = get_u32(p + 32);
    put_u32(p + 32, 0x7fc00000u);
    expect(p, len, false, DIM_ECKPT_CONFIG, "alpha NaN");
    put_u32(p + 32, old);
    /* tensor count */
    put_u32(p + OFF_NT, 6);
    expect(p, len, false, DIM_ECKPT_LAYOUT, "tensor count 6");
    put_u32(p + OFF_NT, 8);
    expect(p, len, false, DIM_ECKPT_LAYOUT, "tensor count 8");
    put_u32(p + OFF_NT, 7);
    /* a float count that disagrees with the config: main, state, a moment */
    for (int i = 0; i < 7; i += 2) {
        uint8_t *cnt = p + OFF_TABLE + (size_t)i * TABLE_ENTRY + 16;
        uint64_t c0 = get_u64(cnt);
        put_u64(cnt, c0 + 1);
        expect(p, len, false, DIM_ECKPT_LAYOUT, "float count");
        put_u64(cnt, c0);
    }
    /* a tensor name out of order */
    p[OFF_TABLE + TABLE_ENTRY + 1] ^= 0x20; /* "prior" -> "pRior" */
    expect(p, len, false, DIM_ECKPT_LAYOUT, "tensor name");
    p[OFF_TABLE + TABLE_ENTRY + 1] ^= 0x20;
    /* header bytes that no check reads are still under the checksum */
    p[OFF_STEP] ^= 1;
    expect(p, len, false, DIM_ECKPT_CHECKSUM, "step byte");
    p[OFF_STEP] ^= 1;
    expect(p, len, false, 0, "restored");
    free(p);
}

static void test_bad_payload(void **state)
{
    struct group *g = *state;
    const size_t len = g->small.len;
    uint8_t *p = copy_small(g);
    /* one flipped bit in the payload, or in the checksum itself */
    const size_t at[] = {HEADER_BYTES + 100, len - 1};
    for (size_t k = 0; k < 2; k++) {
        p[at[k]] ^= 0x04;
        expect(p, len, false, DIM_ECKPT_CHECKSUM, "flipped bit");
        p[at[k]] ^= 0x04;
    }
    /* trailing bytes after a valid checkpoint */
    p[len] = 0;
    expect(p, len + 1, false, DIM_ECKPT_LAYOUT, "trailing byte");
    free(p);
    /* the training checkpoint's moments are checksummed too, read or dropped */
    uint8_t *q = malloc(g->ck.len);
    assert_non_null(q);
    memcpy(q, g->ck.data, g->ck.len);
    q[g->ck.len - 4 * g->m->n_prior - 8] ^= 0x80; /* inside prior.v */
    expect(q, g->ck.len, false, DIM_ECKPT_CHECKSUM, "flipped (dropped) moment");
    free(q);
}

/* ---- I/O errors and files ----------------------------------------------------------- */

static void test_writer_failure(void **state)
{
    struct group *g = *state;
    /* count the writes of a good run, then fail each of the first, second and last */
    struct membuf b;
    mem_save(g->m, &g->p, &b);
    const int n = b.writes;
    free(b.data);
    assert_true(n >= 3);
    const int fail[] = {1, 2, n};
    for (int k = 0; k < 3; k++) {
        memset(&b, 0, sizeof b);
        b.fail_at = fail[k];
        struct dim_writer w = {mem_write, &b};
        struct dim_err err = {0};
        assert_int_equal(dim_checkpoint_write(g->m, &g->p, &w, &err), DIM_EIO);
        assert_int_equal(err.code, DIM_EIO);
        assert_int_equal(b.writes, fail[k]); /* stops at the first failure */
        free(b.data);
    }
}

/* A version-1 checkpoint (written before lr schedules: the same header without the
 * 28 schedule bytes after the seed) still loads, as a constant lr without warm-up,
 * with every parameter, moment and progress field; written again it is version 2. */
static void test_version1(void **state)
{
    struct group *g = *state;
    struct dim_config c = small_config(7);
    c.lr_schedule = DIM_LR_CONSTANT;
    c.lr_warmup = 0;
    c.lr_final = 0.01f;
    c.lr_step_factor = 0.1f;
    c.lr_horizon = 0;
    struct dim_model *m = create(&c, true);
    struct dim_trainer *t = trainer(m, &g->ds);
    steps(t, 3);
    struct dim_train_progress p;
    dim_trainer_progress(t, &p);
    struct membuf v2;
    mem_save(m, &p, &v2);
    /* the version-1 bytes: drop the schedule, version 1, checksum over the rest */
    const size_t len = v2.len - SCHEDULE_BYTES;
    uint8_t *v1 = malloc(len);
    assert_non_null(v1);
    memcpy(v1, v2.data, OFF_SCHEDULE);
    memcpy(v1 + OFF_SCHEDULE, v2.data + OFF_SCHEDULE + SCHEDULE_BYTES,
           v2.len - 4 - OFF_SCHEDULE - SCHEDULE_BYTES);
    put_u32(v1 + OFF_VERSION, 1);
    put_u32(v1 + len - 4, (uint32_t)crc32(crc32(0L, Z_NULL, 0), v1, (uInt)(len - 4)));
    struct dim_model *r;
    struct dim_train_progress pr;
    struct dim_err err = {0};
    assert_int_equal(mem_load(v1, len, &r, &pr, true, &err), 0);
    assert_int_equal(r->cfg.lr_schedule, DIM_LR_CONSTANT);
    assert_true(r->cfg.lr_warmup == 0 && r->cfg.lr_horizon == 0);
    assert_same_model(m, r);
    assert_same_progress(&p, &pr);
    assert_true(r->opt_main.t == 3 && r->opt_prior.t == 3);
    /* resumed, it trains exactly as the model it came from */
    struct dim_trainer *tr = trainer(r, &g->ds);
    assert_int_equal(dim_trainer_restore(tr, &pr, &err), 0);
    steps(t, 2);
    steps(tr, 2);
    assert_same_model(m, r);
    /* written again: version 2, the same bytes as the original writer's at that point */
    struct membuf again;
    dim_trainer_progress(tr, &pr);
    mem_save(r, &pr, &again);
    assert_int_equal(get_u32(again.data + OFF_VERSION), DIM_CKPT_VERSION);
    assert_int_equal(again.len, v2.len);
    /* a version-1 file cut inside its (shorter) header is truncated, not misread */
    expect(v1, OFF_STEP, false, DIM_ECKPT_TRUNCATED, "version 1 header cut");
    /* a version-2 header claiming version 1 is misread as 1 and fails its checks */
    put_u32(v2.data + OFF_VERSION, 1);
    struct dim_model *bad;
    assert_int_not_equal(mem_load(v2.data, v2.len, &bad, NULL, false, &err), 0);
    free(again.data);
    free(v1);
    free(v2.data);
    dim_trainer_free(tr);
    dim_model_free(r);
    dim_trainer_free(t);
    dim_model_free(m);
}

static void test_file_round_trip(void **state)
{
    struct group *g = *state;
    char *dir = fixtures_mkdtemp();
    assert_non_null(dir);
    char path[512], tmp[600];
    fixtures_join(path, sizeof path, dir, "model.ckpt");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    struct dim_err err = {0};
    struct dim_model *r = (struct dim_model *)&err;
    /* nothing there yet */
    assert_int_equal(dim_checkpoint_load(path, &r, NULL, true, &err), DIM_ENOENT);
    assert_null(r);
    assert_non_null(strstr(err.msg, "model.ckpt"));
    /* save twice (the second replaces the first), no temporary left behind */
    assert_int_equal(dim_checkpoint_save(path, g->m, NULL, &err), 0);
    assert_int_equal(dim_checkpoint_save(path, g->m, &g->p, &err), 0);
    struct stat st;
    assert_int_not_equal(stat(tmp, &st), 0);
    uint8_t *bytes;
    size_t n;
    assert_int_equal(fixtures_read_file(path, &bytes, &n), 0);
    assert_int_equal(n, g->ck.len);
    assert_true(memcmp(bytes, g->ck.data, n) == 0); /* the same bytes as the memory writer */
    free(bytes);
    struct dim_train_progress p;
    assert_int_equal(dim_checkpoint_load(path, &r, &p, true, &err), 0);
    assert_same_model(g->m, r);
    assert_same_progress(&g->p, &p);
    assert_same_encodings(g->m, r);
    dim_model_free(r);
    /* a damaged file: the reader's code, with the path in the message */
    assert_int_equal(fixtures_write_file(path, g->small.data, 100), 0);
    assert_int_equal(dim_checkpoint_load(path, &r, NULL, false, &err), DIM_ECKPT_TRUNCATED);
    assert_null(r);
    assert_non_null(strstr(err.msg, path));
    /* a directory that does not exist: the save fails with DIM_EIO */
    char missing[600];
    snprintf(missing, sizeof missing, "%s/no/such/dir/m.ckpt", dir);
    assert_int_equal(dim_checkpoint_save(missing, g->m, NULL, &err), DIM_EIO);
    assert_int_equal(fixtures_rmtree(dir), 0);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),      cmocka_unit_test(test_resume_equals_straight),
        cmocka_unit_test(test_truncated),       cmocka_unit_test(test_bad_header),
        cmocka_unit_test(test_bad_payload),     cmocka_unit_test(test_writer_failure),
        cmocka_unit_test(test_file_round_trip), cmocka_unit_test(test_version1),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

/* checkpoint.c - writer and validating reader of the checkpoint format. */
#include "dim/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoint payloads are written as host floats; this port assumes a little-endian host"
#endif

#define N_TENSORS 7
#define NAME_LEN 16
#define HEADER_MAX 512

/* A byte cursor for the fixed-size header. */
struct buf {
    uint8_t b[HEADER_MAX];
    size_t n;
};

static void put_u32(struct buf *b, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b->b[b->n++] = (uint8_t)(v >> (8 * i));
}
static void put_u64(struct buf *b, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        b->b[b->n++] = (uint8_t)(v >> (8 * i));
}
static void put_f32(struct buf *b, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    put_u32(b, v);
}
static uint32_t get_u32(const uint8_t *p, size_t *off)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[*off + i] << (8 * i);
    *off += 4;
    return v;
}
static uint64_t get_u64(const uint8_t *p, size_t *off)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[*off + i] << (8 * i);
    *off += 8;
    return v;
}
static float get_f32(const uint8_t *p, size_t *off)
{
    uint32_t v = get_u32(p, off);
    float f;
    memcpy(&f, &v, 4);
    return f;
}

/* Size of the header after magic and version: config, progress, tensor table.
 * Version 2 appends the lr schedule to version 1's config. */
#define CONFIG_BYTES_V1 (5 * 4 + 7 * 4 + 4 + 8)
#define SCHEDULE_BYTES (4 + 8 + 4 + 4 + 8)
#define CONFIG_BYTES (CONFIG_BYTES_V1 + SCHEDULE_BYTES)
#define PROGRESS_BYTES (3 * 8 + 4 * 8 + 2 * 8)
#define TABLE_BYTES (4 + N_TENSORS * (NAME_LEN + 8))

struct tensor {
    const char *name;
    float *data;
    size_t count;
};

static const char *const tensor_names[N_TENSORS] = {"main",   "prior",   "state",  "main.m",
                                                    "main.v", "prior.m", "prior.v"};

static void tensors_of(const struct dim_model *m, struct tensor t[N_TENSORS])
{
    float *ptr[N_TENSORS] = {m->main_params, m->prior_params, m->state, m->main_m,
                             m->main_v,      m->prior_m,      m->prior_v};
    size_t cnt[N_TENSORS] = {m->n_main, m->n_prior, m->n_state, m->n_main,
                             m->n_main, m->n_prior, m->n_prior};
    for (int i = 0; i < N_TENSORS; i++) {
        t[i].name = tensor_names[i];
        t[i].data = ptr[i];
        t[i].count = (i >= 3 && !m->training) ? 0 : cnt[i];
    }
}

int dim_checkpoint_write(const struct dim_model *m, const struct dim_train_progress *p,
                         const struct dim_writer *w, struct dim_err *err)
{
    struct dim_train_progress zero;
    if (!p) {
        memset(&zero, 0, sizeof zero);
        p = &zero;
    }
    const struct dim_config *c = &m->cfg;
    struct buf h = {.n = 0};
    memcpy(h.b, DIM_CKPT_MAGIC, 8);
    h.n = 8;
    put_u32(&h, DIM_CKPT_VERSION);
    put_u32(&h, (uint32_t)c->preset);
    put_u32(&h, (uint32_t)c->in_c);
    put_u32(&h, (uint32_t)c->y_dim);
    put_u32(&h, (uint32_t)c->mi_dim);
    put_u32(&h, (uint32_t)c->estimator);
    put_f32(&h, c->alpha);
    put_f32(&h, c->beta);
    put_f32(&h, c->gamma);
    put_f32(&h, c->lr);
    put_f32(&h, c->adam_beta1);
    put_f32(&h, c->adam_beta2);
    put_f32(&h, c->adam_eps);
    put_u32(&h, c->batch);
    put_u64(&h, c->seed);
    put_u32(&h, (uint32_t)c->lr_schedule);
    put_u64(&h, c->lr_warmup);
    put_f32(&h, c->lr_final);
    put_f32(&h, c->lr_step_factor);
    put_u64(&h, c->lr_horizon);
    put_u64(&h, p->step);
    put_u64(&h, p->epoch);
    put_u64(&h, p->pos);
    put_u64(&h, p->rng.state);
    put_u64(&h, p->rng.inc);
    put_u64(&h, p->epoch_rng.state);
    put_u64(&h, p->epoch_rng.inc);
    put_u64(&h, m->opt_main.t);
    put_u64(&h, m->opt_prior.t);
    struct tensor t[N_TENSORS];
    tensors_of(m, t);
    put_u32(&h, N_TENSORS);
    for (int i = 0; i < N_TENSORS; i++) {
        memset(h.b + h.n, 0, NAME_LEN);
        memcpy(h.b + h.n, t[i].name, strlen(t[i].name));
        h.n += NAME_LEN;
        put_u64(&h, t[i].count);
    }
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, h.b, (uInt)h.n);
    if (w->write(w->ctx, h.b, h.n))
        return dim_fail(err, DIM_EIO, "checkpoint header write failed");
    for (int i = 0; i < N_TENSORS; i++) {
        const uint8_t *d = (const uint8_t *)t[i].data;
        size_t left = t[i].count * sizeof(float);
        while (left) {
            size_t chunk = left < (1u << 30) ? left : (1u << 30);
            crc = crc32(crc, d, (uInt)chunk);
            if (w->write(w->ctx, d, chunk))
                return dim_fail(err, DIM_EIO, "checkpoint tensor %s write failed", t[i].name);
            d += chunk;
            left -= chunk;
        }
    }
    struct buf tail = {.n = 0};
    put_u32(&tail, (uint32_t)crc);
    if (w->write(w->ctx, tail.b, tail.n))
        return dim_fail(err, DIM_EIO, "checkpoint checksum write failed");
    return 0;
}

/* Reads exactly n bytes, updating crc; returns 0 or DIM_ECKPT_TRUNCATED. */
static int read_exact(const struct dim_reader *r, void *dst, size_t n, uLong *crc,
                      const char *what, struct dim_err *err)
{
    size_t got = r->read(r->ctx, dst, n);
    if (got != n)
        return dim_fail(err, DIM_ECKPT_TRUNCATED, "checkpoint truncated in %s (%zu of %zu bytes)",
                        what, got, n);
    if (crc)
        *crc = crc32(*crc, dst, (uInt)n);
    return 0;
}

int dim_checkpoint_read(struct dim_model **out, struct dim_train_progress *p, bool training,
                        const struct dim_reader *r, struct dim_err *err)
{
    *out = NULL;
    uint8_t h[HEADER_MAX];
    uLong crc = crc32(0L, Z_NULL, 0);
    int rc = read_exact(r, h, 12, &crc, "header", err);
    if (rc)
        return rc;
    if (memcmp(h, DIM_CKPT_MAGIC, 8) != 0)
        return dim_fail(err, DIM_ECKPT_MAGIC, "not a dimd checkpoint: bad magic bytes");
    size_t off = 8;
    uint32_t version = get_u32(h, &off);
    if (version < 1 || version > DIM_CKPT_VERSION)
        return dim_fail(err, DIM_ECKPT_VERSION,
                        "checkpoint format version %u is not supported (this build reads 1 to %u)",
                        version, DIM_CKPT_VERSION);
    const size_t rest =
        (version == 1 ? CONFIG_BYTES_V1 : CONFIG_BYTES) + PROGRESS_BYTES + TABLE_BYTES;
    rc = read_exact(r, h + 12, rest, &crc, "header", err);
    if (rc)
        return rc;
    struct dim_config c;
    dim_config_default(&c); /* version 1 has no schedule: constant, no warm-up */
    c.preset = (enum dim_preset)get_u32(h, &off);
    c.in_c = (int)get_u32(h, &off);
    c.y_dim = (int)get_u32(h, &off);
    c.mi_dim = (int)get_u32(h, &off);
    c.estimator = (enum dim_estimator)get_u32(h, &off);
    c.alpha = get_f32(h, &off);
    c.beta = get_f32(h, &off);
    c.gamma = get_f32(h, &off);
    c.lr = get_f32(h, &off);
    c.adam_beta1 = get_f32(h, &off);
    c.adam_beta2 = get_f32(h, &off);
    c.adam_eps = get_f32(h, &off);
    c.batch = get_u32(h, &off);
    c.seed = get_u64(h, &off);
    if (version >= 2) {
        c.lr_schedule = (enum dim_lr_schedule)get_u32(h, &off);
        c.lr_warmup = get_u64(h, &off);
        c.lr_final = get_f32(h, &off);
        c.lr_step_factor = get_f32(h, &off);
        c.lr_horizon = get_u64(h, &off);
    }
    struct dim_train_progress pr;
    pr.step = get_u64(h, &off);
    pr.epoch = get_u64(h, &off);
    pr.pos = get_u64(h, &off);
    pr.rng.state = get_u64(h, &off);
    pr.rng.inc = get_u64(h, &off);
    pr.epoch_rng.state = get_u64(h, &off);
    pr.epoch_rng.inc = get_u64(h, &off);
    uint64_t t_main = get_u64(h, &off), t_prior = get_u64(h, &off);
    struct dim_err cerr;
    if (dim_config_validate(&c, &cerr) != 0)
        return dim_fail(err, DIM_ECKPT_CONFIG, "checkpoint config invalid: %s", cerr.msg);
    uint32_t nt = get_u32(h, &off);
    if (nt != N_TENSORS)
        return dim_fail(err, DIM_ECKPT_LAYOUT, "checkpoint has %u tensors, expected %d", nt,
                        N_TENSORS);
    struct dim_model *m;
    rc = dim_model_create(&m, &c, training, &cerr);
    if (rc)
        return dim_fail(err, rc == DIM_ENOMEM ? DIM_ENOMEM : DIM_ECKPT_CONFIG,
                        "checkpoint config cannot be built: %s", cerr.msg);
    struct tensor t[N_TENSORS];
    tensors_of(m, t);
    uint64_t counts[N_TENSORS];
    for (int i = 0; i < N_TENSORS; i++) {
        char name[NAME_LEN + 1];
        memcpy(name, h + off, NAME_LEN);
        name[NAME_LEN] = '\0';
        off += NAME_LEN;
        counts[i] = get_u64(h, &off);
        /* moments may be absent (inference-only writer); otherwise every count must match */
        bool optional = i >= 3 && counts[i] == 0;
        const size_t need = i < 3 ? t[i].count : (i < 5 ? m->n_main : m->n_prior);
        if (strcmp(name, t[i].name) != 0 || (!optional && counts[i] != need)) {
            dim_model_free(m); /* need was read before: the message must not touch m */
            return dim_fail(err, DIM_ECKPT_LAYOUT,
                            "checkpoint tensor %d is '%s' with %llu floats; the config needs "
                            "'%s' with %zu",
                            i, name, (unsigned long long)counts[i], t[i].name, need);
        }
    }
    float *scratch = NULL;
    for (int i = 0; i < N_TENSORS && rc == 0; i++) {
        size_t bytes = (size_t)counts[i] * sizeof(float);
        float *dst = t[i].data;
        if (i >= 3 && !training && counts[i]) { /* moments not needed: read and drop */
            free(scratch);
            scratch = malloc(bytes);
            if (!scratch)
                rc = dim_fail(err, DIM_ENOMEM, "out of memory reading checkpoint");
            dst = scratch;
        }
        if (rc == 0 && bytes)
            rc = read_exact(r, dst, bytes, &crc, t[i].name, err);
    }
    free(scratch);
    uint8_t tail[5];
    if (rc == 0)
        rc = read_exact(r, tail, 4, NULL, "checksum", err);
    if (rc == 0) {
        size_t o = 0;
        uint32_t want = get_u32(tail, &o);
        if (want != (uint32_t)crc)
            rc = dim_fail(err, DIM_ECKPT_CHECKSUM,
                          "checkpoint checksum mismatch (stored %08x, computed %08x)", want,
                          (uint32_t)crc);
        else if (r->read(r->ctx, tail + 4, 1) != 0)
            rc = dim_fail(err, DIM_ECKPT_LAYOUT, "checkpoint has trailing bytes after its checksum");
    }
    if (rc) {
        dim_model_free(m);
        return rc;
    }
    if (training) {
        m->opt_main.t = counts[3] ? t_main : 0;
        m->opt_prior.t = counts[5] ? t_prior : 0;
    }
    if (p)
        *p = pr;
    *out = m;
    return 0;
}

static int file_write(void *ctx, const void *buf, size_t n)
{
    return fwrite(buf, 1, n, (FILE *)ctx) == n ? 0 : -1;
}

static size_t file_read(void *ctx, void *buf, size_t n)
{
    return fread(buf, 1, n, (FILE *)ctx);
}

int dim_checkpoint_save(const char *path, const struct dim_model *m,
                        const struct dim_train_progress *p, struct dim_err *err)
{
    size_t len = strlen(path);
    char *tmp = malloc(len + 5), *dir = malloc(len + 1);
    if (!tmp || !dir) {
        free(tmp);
        free(dir);
        return dim_fail(err, DIM_ENOMEM, "out of memory");
    }
    memcpy(tmp, path, len);
    memcpy(tmp + len, ".tmp", 5);
    memcpy(dir, path, len + 1);
    int rc = 0;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        rc = dim_fail(err, DIM_EIO, "cannot create %s: %s", tmp, strerror(errno));
        goto out;
    }
    struct dim_writer w = {file_write, f};
    rc = dim_checkpoint_write(m, p, &w, err);
    if (rc == 0 && (fflush(f) != 0 || fsync(fileno(f)) != 0))
        rc = dim_fail(err, DIM_EIO, "cannot write %s: %s", tmp, strerror(errno));
    if (fclose(f) != 0 && rc == 0)
        rc = dim_fail(err, DIM_EIO, "cannot close %s: %s", tmp, strerror(errno));
    if (rc == 0 && rename(tmp, path) != 0)
        rc = dim_fail(err, DIM_EIO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (rc) {
        unlink(tmp);
        goto out;
    }
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
out:
    free(tmp);
    free(dir);
    return rc;
}

int dim_checkpoint_load(const char *path, struct dim_model **out, struct dim_train_progress *p,
                        bool training, struct dim_err *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return dim_fail(err, errno == ENOENT ? DIM_ENOENT : DIM_EIO, "cannot open checkpoint %s: %s",
                        path, strerror(errno));
    struct dim_reader r = {file_read, f};
    int rc = dim_checkpoint_read(out, p, training, &r, err);
    fclose(f);
    if (rc) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err ? err->msg : "");
        dim_fail(err, rc, "%s: %s", path, msg);
    }
    return rc;
}

int dim_membuf_write(void *ctx, const void *buf, size_t n)
{
    struct dim_membuf *b = ctx;
    if (n > b->cap - b->n) {
        size_t cap = b->cap ? b->cap : 1u << 20;
        while (n > cap - b->n) {
            if (cap > SIZE_MAX / 2)
                return -1;
            cap *= 2;
        }
        unsigned char *p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, buf, n);
    b->n += n;
    return 0;
}

size_t dim_memsrc_read(void *ctx, void *buf, size_t n)
{
    struct dim_memsrc *s = ctx;
    size_t k = s->n - s->pos < n ? s->n - s->pos : n;
    memcpy(buf, s->p + s->pos, k);
    s->pos += k;
    return k;
}

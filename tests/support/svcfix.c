/* svcfix.c - fixtures for the service tests (svcfix.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/dataset.h"
#include "data/image.h"
#include "dim/checkpoint.h"
#include "dim/model.h"
#include "dim/trainer.h"
#include "dimfix.h"
#include "fixtures.h"
#include "svcfix.h"

/* Pixel (x, y) of image i of class c. */
static uint8_t svcfix_pixel(int c, int i, int x, int y, uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    int v = c % 3 == 0 ? x * 8 : c % 3 == 1 ? y * 8 : ((x / 4 + y / 4) & 1) * 200;
    v += (int)(*s >> 27) - 16 + (i % 5);
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

char *svcfix_workdir(int classes, int per_class, char data[512], char shapes[600])
{
    char *dir = fixtures_mkdtemp();
    if (dir && (mkdir(fixtures_join(data, 512, dir, "data"), 0755) != 0 ||
                svcfix_shapes(fixtures_join(shapes, 600, data, "shapes"), classes, per_class) != 0)) {
        fixtures_rmtree(dir);
        free(dir);
        dir = NULL;
    }
    return dir;
}

int svcfix_shapes(const char *dir, int classes, int per_class)
{
    if (mkdir(dir, 0755) != 0)
        return -1;
    uint8_t px[32 * 32];
    char path[4096];
    for (int c = 0; c < classes; c++) {
        snprintf(path, sizeof path, "%s/class%d", dir, c);
        if (mkdir(path, 0755) != 0)
            return -1;
        for (int i = 0; i < per_class; i++) {
            uint32_t s = (uint32_t)(c * 7919 + i) * 2654435761u + 7;
            for (int p = 0; p < 32 * 32; p++)
                px[p] = svcfix_pixel(c, i, p % 32, p / 32, &s);
            const struct dim_image img = {1, 32, 32, px};
            struct dim_err err;
            snprintf(path, sizeof path, "%s/class%d/img%02d.png", dir, c, i);
            if (dim_image_write_png(path, &img, &err) != 0)
                return -1;
        }
    }
    return 0;
}

int svcfix_checkpoint(const char *train_dir, uint64_t seed, int steps, void **buf, size_t *n)
{
    struct dim_config cfg = dimfix_config(16, 32, 16);
    cfg.preset = DIM_BASIC32;
    cfg.seed = seed;
    struct dim_model *m = NULL;
    struct dim_trainer *tr = NULL;
    struct dim_dataset ds = {0};
    struct dim_train_progress prog;
    memset(&prog, 0, sizeof prog);
    struct dim_membuf out = {0};
    const struct dim_writer wr = {dim_membuf_write, &out};
    const struct dim_dataset_limits lim = {0, 64u << 20};
    struct dim_err err;
    int rc = -1;
    if (dim_model_create(&m, &cfg, train_dir != NULL, &err) != 0)
        goto done;
    if (train_dir) {
        const struct dim_preprocess pp = {1, m->in_h, m->in_w, 0, false};
        if (dim_dataset_load(train_dir, DIM_SPLIT_TRAIN, &lim, &ds, &err) != 0 ||
            dim_trainer_create(&tr, m, &ds, &pp, &err) != 0)
            goto done;
        struct dim_losses l;
        for (int s = 0; s < steps; s++)
            if (dim_trainer_step(tr, &l, &err) != 0)
                goto done;
        dim_trainer_progress(tr, &prog);
    }
    if (dim_checkpoint_write(m, &prog, &wr, &err) != 0)
        goto done;
    *buf = out.p;
    *n = out.n;
    out.p = NULL;
    rc = 0;
done:
    if (rc != 0)
        fprintf(stderr, "svcfix_checkpoint: %s\n", err.msg);
    free(out.p);
    dim_trainer_free(tr);
    dim_dataset_free(&ds);
    dim_model_free(m);
    return rc;
}

int svcfix_embed(const struct dim_model *m, const char *dir, int split, size_t max_n, bool unit,
                 float **y, uint16_t **labels, size_t *n_out, size_t *n_data)
{
    struct dim_dataset ds = {0};
    const struct dim_dataset_limits lim = {0, 64u << 20};
    struct dim_err err;
    if (dim_dataset_load(dir, (enum dim_split)split, &lim, &ds, &err) != 0)
        return -1;
    const size_t n = ds.n < max_n ? ds.n : max_n, d = dim_model_tap_size(m, DIM_TAP_Y);
    const struct dim_preprocess pp = dim_model_preprocess(m);
    float *x = malloc((size_t)pp.c * pp.h * pp.w * sizeof *x), *out = malloc(n * d * sizeof *out);
    uint16_t *lab = malloc(n * sizeof *lab);
    struct dim_encode_ws ws = {0};
    int rc = -1;
    if (!x || !out || !lab || dim_encode_ws_create(&ws, m, 1, &err) != 0)
        goto done;
    for (size_t i = 0; i < n; i++) {
        const uint32_t idx = (uint32_t)(i * ds.n / n);
        dim_dataset_batch(&ds, &idx, 1, &pp, NULL, x, &lab[i]);
        const float *f = dim_model_encode(m, &ws, x, 1, DIM_TAP_Y);
        double nn = 0;
        for (size_t k = 0; k < d; k++)
            nn += (double)f[k] * f[k];
        for (size_t k = 0; k < d; k++)
            out[i * d + k] = unit ? (float)(f[k] / sqrt(nn)) : f[k];
    }
    *y = out;
    *labels = lab;
    *n_out = n;
    *n_data = ds.n;
    out = NULL;
    lab = NULL;
    rc = 0;
done:
    dim_encode_ws_free(&ws);
    free(x);
    free(out);
    free(lab);
    dim_dataset_free(&ds);
    return rc;
}

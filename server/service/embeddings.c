/* embeddings.c - the Y embeddings of a dataset split (service/embeddings.h).
 * Depends on service/datasets, util/threadpool, core; no HTTP, no store. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "service/embeddings.h"
#include "util/threadpool.h"

void embeddings_clear(struct embeddings *out)
{
    if (!out)
        return;
    free(out->vectors);
    free(out->labels);
    json_decref(out->classes);
    memset(out, 0, sizeof *out);
}

/* The dataset's class names as a JSON array, or JSON null when it has none. */
static json_t *embeddings_classes(const struct dim_dataset *ds)
{
    if (!ds->class_names)
        return json_null();
    json_t *a = json_array();
    for (int c = 0; c < ds->n_classes; c++)
        json_array_append_new(a, json_string(ds->class_names[c] ? ds->class_names[c] : ""));
    return a;
}

/* Copies B rows of y (dim wide) into out, each scaled to unit length when unit. */
static void embeddings_copy_rows(const float *y, size_t B, size_t dim, bool unit, float *out)
{
    for (size_t i = 0; i < B; i++) {
        double nn = 0;
        for (size_t k = 0; k < dim; k++)
            nn += (double)y[i * dim + k] * y[i * dim + k];
        float scale = !unit ? 1.0f : nn > 0 ? (float)(1.0 / sqrt(nn)) : 0.0f;
        for (size_t k = 0; k < dim; k++)
            out[i * dim + k] = y[i * dim + k] * scale;
    }
}

int embeddings_split(const struct datasets *ds, const struct dim_model *m, const char *dataset,
                     enum dim_split split, size_t max_n, bool unit, struct embeddings *out,
                     struct dim_err *err)
{
    memset(out, 0, sizeof *out);
    out->dim = dim_model_tap_size(m, DIM_TAP_Y);
    out->classes = json_null();
    if (max_n == 0)
        return 0;
    char path[4096];
    if (datasets_resolve(ds, dataset, path, err) != 0)
        return -1;
    struct dim_dataset d = {0};
    const struct dim_dataset_limits lim = {0, 64u << 20};
    if (dim_dataset_load(path, split, &lim, &d, err) != 0)
        return -1;
    const size_t n = d.n < max_n ? d.n : max_n, dim = out->dim;
    const struct dim_preprocess pp = dim_model_preprocess(m);
    const size_t in = (size_t)pp.c * (size_t)pp.h * (size_t)pp.w;
    float *vec = malloc(n * dim * sizeof *vec), *x = malloc(EMBEDDINGS_BATCH * in * sizeof *x);
    uint16_t *lab = malloc(n * sizeof *lab);
    uint32_t idx[EMBEDDINGS_BATCH];
    struct dim_encode_ws ws = {0};
    int rc = 0;
    dim_err_clear(err);
    if (!vec || !x || !lab || dim_encode_ws_create(&ws, m, EMBEDDINGS_BATCH, err) != 0) {
        rc = err && err->code ? -1
                              : dim_fail(err, DIM_ENOMEM, "out of memory for %zu embeddings", n);
        goto out;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    struct threadpool *pool = cores > 1 ? threadpool_create((int)cores - 1) : NULL;
    if (pool)
        dim_parallel_use(threadpool_parallel(pool));
    for (size_t s = 0; s < n; s += EMBEDDINGS_BATCH) {
        size_t b = n - s < EMBEDDINGS_BATCH ? n - s : EMBEDDINGS_BATCH;
        for (size_t i = 0; i < b; i++)
            idx[i] = (uint32_t)((s + i) * d.n / n);
        dim_dataset_batch(&d, idx, b, &pp, NULL, x, lab + s);
        const float *y = dim_model_encode(m, &ws, x, b, DIM_TAP_Y);
        embeddings_copy_rows(y, b, dim, unit, vec + s * dim);
    }
    dim_parallel_use(NULL);
    threadpool_free(pool);
    out->n = (int64_t)n;
    out->n_data = (int64_t)d.n;
    json_decref(out->classes);
    out->classes = embeddings_classes(&d);
out:
    dim_encode_ws_free(&ws);
    free(x);
    dim_dataset_free(&d);
    if (rc == 0) {
        out->vectors = vec;
        out->labels = lab;
    } else {
        free(vec);
        free(lab);
        embeddings_clear(out);
    }
    return rc;
}

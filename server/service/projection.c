/* projection.c - a model version's PCA projection, computed once and kept in
 * the store (service/projection.h). Depends on store, service/embeddings,
 * service/version_model, core; no HTTP. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/pca.h"
#include "service/embeddings.h"
#include "service/projection.h"
#include "service/version_model.h"

/* The projection's JSON of model name's version (e: its embeddings, p: their
 * PCA, xy: the projected points). */
static json_t *projection_json(const char *name, int version, const char *dataset,
                               const struct embeddings *e, const struct dim_pca *p,
                               const float *xy)
{
    json_t *points = json_array();
    for (int64_t i = 0; i < e->n; i++) {
        double x = xy[2 * i], y = xy[2 * i + 1];
        json_array_append_new(points, json_pack("[f, f, i, I]", isfinite(x) ? x : 0.0,
                                                isfinite(y) ? y : 0.0, (int)e->labels[i],
                                                (json_int_t)((i * e->n_data) / e->n)));
    }
    char vname[16];
    snprintf(vname, sizeof vname, "v%d", version);
    return json_pack("{s:s, s:s, s:i, s:s, s:O, s:s, s:I, s:I, s:i, s:[f, f], s:o}", "model",
                     name, "version", vname, "number", version, "dataset", dataset,
                     "classes", e->classes, "split", "test", "n", (json_int_t)e->n,
                     "dataset_images", (json_int_t)e->n_data, "y_dim", (int)e->dim,
                     "explained_variance", p->explained[0], p->explained[1], "points", points);
}

/* Computes the projection text of model name's version (its model m, its
 * dataset) into *text; PROJECTION_NO_DATASET or PROJECTION_ERROR with err. */
static int projection_make(const struct datasets *ds, const char *name, int version,
                           const struct dim_model *m, const char *dataset, size_t max_images,
                           char **text, struct dim_err *err)
{
    struct embeddings e = {0};
    struct dim_pca p = {0};
    float *xy = NULL;
    int rc = PROJECTION_ERROR;
    if (embeddings_split(ds, m, dataset, DIM_SPLIT_TEST, max_images, false, &e, err) != 0) {
        rc = PROJECTION_NO_DATASET;
        goto done;
    }
    if (e.n < 2) {
        rc = PROJECTION_NO_DATASET;
        dim_fail(err, DIM_EINVAL, "the test split of '%s' has %lld image(s); PCA needs 2", dataset,
                 (long long)e.n);
        goto done;
    }
    if (dim_pca_fit(e.vectors, (size_t)e.n, e.dim, 2, &p, err) != 0)
        goto done;
    xy = malloc((size_t)e.n * 2 * sizeof *xy);
    if (!xy) {
        dim_fail(err, DIM_ENOMEM, "out of memory for %lld projected points", (long long)e.n);
        goto done;
    }
    dim_pca_project(&p, e.vectors, (size_t)e.n, xy);
    json_t *j = projection_json(name, version, dataset, &e, &p, xy);
    *text = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(5)) : NULL;
    json_decref(j);
    if (*text)
        rc = PROJECTION_OK;
    else
        dim_fail(err, DIM_ENOMEM, "out of memory for the projection of %lld points",
                 (long long)e.n);
done:
    dim_pca_free(&p);
    free(xy);
    embeddings_clear(&e);
    return rc;
}

int projection_get(struct dimd_store *store, const struct datasets *ds, const char *name,
                   int version, size_t max_images, char **json, bool *cached,
                   struct dim_err *err)
{
    *json = NULL;
    if (cached)
        *cached = false;
    struct dim_err e = {0};
    int rc = store_projection_get(store, name, version, json, &e);
    if (rc == STORE_OK) {
        if (cached)
            *cached = true;
        return PROJECTION_OK;
    }
    if (rc != STORE_NOT_FOUND) {
        dim_fail(err, DIM_EIO, "reading the projection: %s", e.msg);
        return PROJECTION_ERROR;
    }
    struct dim_model *m = NULL;
    char dataset[DATASET_NAME_MAX];
    rc = version_model_load(store, name, version, &m, dataset, &e);
    if (rc == VERSION_MODEL_NOT_FOUND) {
        dim_fail(err, DIM_EINVAL, "model '%s' version %d was deleted", name, version);
        return PROJECTION_NOT_FOUND;
    }
    if (rc != VERSION_MODEL_OK) {
        dim_fail(err, rc == VERSION_MODEL_INVALID ? e.code : DIM_EIO, "%s model '%s' v%d: %s",
                 rc == VERSION_MODEL_INVALID ? "loading" : "reading", name, version, e.msg);
        return PROJECTION_ERROR;
    }
    char *text = NULL;
    rc = projection_make(ds, name, version, m, dataset, max_images, &text, err);
    dim_model_free(m);
    if (rc != PROJECTION_OK)
        return rc;
    rc = store_projection_put(store, name, version, text, &e);
    if (rc == STORE_NOT_FOUND) {
        free(text);
        dim_fail(err, DIM_EINVAL, "model '%s' version %d was deleted", name, version);
        return PROJECTION_NOT_FOUND;
    }
    if (rc == STORE_FULL) /* a full disk: the answer is right; it is stored next time */
        fprintf(stderr, "dimd: projection of '%s' v%d not stored: %s\n", name, version, e.msg);
    else if (rc != STORE_OK) {
        free(text);
        dim_fail(err, DIM_EIO, "storing the projection: %s", e.msg);
        return PROJECTION_ERROR;
    }
    *json = text;
    return PROJECTION_OK;
}

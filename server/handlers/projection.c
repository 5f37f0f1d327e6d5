/* projection.c - GET /v1/models/{name}/versions/{version}/projection: the
 * version's Y embeddings of up to projection_max_images test images (evenly
 * spaced), centred and projected on their first two principal components
 * (core/eval/pca.h), for the dashboard's scatter plot. Made on the first request
 * on the request's thread (the test split is encoded once, then PCA), stored
 * (migrations/0004_projections.sql) and answered from the store afterwards:
 * versions never change. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/handlers.h"
#include "store/projections.h"
#include "dim/checkpoint.h"
#include "eval/pca.h"

/* Builds the projection's JSON for version v; NULL with err on failure
 * (*unavailable set when the dataset is the cause). */
static json_t *make_projection(struct handler_ctx *a, const struct store_model_version *v,
                               const void *ckpt, bool *unavailable, struct dim_err *err)
{
    *unavailable = false;
    json_t *info = json_loads(v->info_json ? v->info_json : "{}", 0, NULL);
    const char *dataset = json_string_value(json_object_get(info, "dataset"));
    struct dim_model *m = NULL;
    struct dim_train_progress prog;
    struct dim_memsrc src = {ckpt, (size_t)v->bytes, 0};
    const struct dim_reader rd = {dim_memsrc_read, &src};
    float *Y = NULL, *xy = NULL;
    uint16_t *labels = NULL;
    int64_t n = 0, n_data = 0;
    json_t *out = NULL, *classes = NULL;
    struct dim_pca p = {0};
    if (dim_checkpoint_read(&m, &prog, false, &rd, err) != 0)
        goto done;
    if (handler_embed_split(a, m, dataset ? dataset : "", DIM_SPLIT_TEST,
                        (size_t)a->cfg->projection_max_images, false, &Y, &labels, &n, &n_data,
                        &classes, err) != 0) {
        *unavailable = true;
        goto done;
    }
    size_t d = dim_model_tap_size(m, DIM_TAP_Y);
    if (n < 2) {
        *unavailable = true;
        dim_fail(err, DIM_EINVAL, "the test split of '%s' has %lld image(s); PCA needs 2",
                 dataset ? dataset : "", (long long)n);
        goto done;
    }
    if (dim_pca_fit(Y, (size_t)n, d, 2, &p, err) != 0)
        goto done;
    xy = malloc((size_t)n * 2 * sizeof *xy);
    if (!xy) {
        dim_fail(err, DIM_ENOMEM, "out of memory for %lld projected points", (long long)n);
        goto done;
    }
    dim_pca_project(&p, Y, (size_t)n, xy);
    json_t *points = json_array();
    for (int64_t i = 0; i < n; i++) {
        double x = xy[2 * i], y = xy[2 * i + 1];
        json_array_append_new(points, json_pack("[f, f, i, I]", isfinite(x) ? x : 0.0,
                                                isfinite(y) ? y : 0.0, (int)labels[i],
                                                (json_int_t)((i * n_data) / n)));
    }
    char vname[16];
    snprintf(vname, sizeof vname, "v%d", v->version);
    out = json_pack("{s:s, s:s, s:i, s:s, s:O, s:s, s:I, s:I, s:i, s:[f, f], s:o}", "model",
                    v->name, "version", vname, "number", v->version, "dataset",
                    dataset ? dataset : "", "classes", classes, "split", "test", "n",
                    (json_int_t)n, "dataset_images", (json_int_t)n_data, "y_dim", (int)d,
                    "explained_variance", p.explained[0], p.explained[1], "points", points);
done:
    json_decref(classes);
    dim_pca_free(&p);
    free(xy);
    free(Y);
    free(labels);
    dim_model_free(m);
    json_decref(info);
    return out;
}

void handle_model_version_projection(void *app, struct http_request *rq)
{
    struct handler_ctx *a = app;
    struct store_model_version v;
    if (!handler_load_version(a, rq, &v, NULL))
        return;
    struct dim_err err;
    char *text = NULL;
    int rc = store_projection_get(a->store, v.name, v.version, &text, &err);
    if (rc == STORE_OK) {
        http_reply_bytes(rq, 200, "application/json", text, strlen(text), true);
        store_model_version_clear(&v);
        return;
    }
    if (rc != STORE_NOT_FOUND) {
        store_model_version_clear(&v);
        handler_internal(rq, "reading the projection", &err);
        return;
    }
    void *ckpt = NULL;
    struct store_model_version full;
    rc = store_model_get(a->store, v.name, v.version, &full, &ckpt, NULL, NULL, &err);
    if (rc == STORE_NOT_FOUND) {
        http_reply_problem(rq, PROBLEM_VERSION_NOT_FOUND, "model '%s' version %d was deleted",
                           v.name, v.version);
    } else if (rc != STORE_OK) {
        handler_internal(rq, "reading the model version", &err);
    } else {
        bool unavailable;
        json_t *proj = make_projection(a, &full, ckpt, &unavailable, &err);
        /* 5 significant digits are plenty for a scatter plot and keep the answer small */
        char *out = proj ? json_dumps(proj, JSON_COMPACT | JSON_REAL_PRECISION(5)) : NULL;
        json_decref(proj);
        if (!proj && unavailable) {
            http_reply_problem(rq, PROBLEM_DATASET_UNAVAILABLE,
                               "the projection needs the test split of the version's dataset: %s",
                               err.msg);
        } else if (!out) {
            handler_internal(rq, "making the projection", &err);
        } else {
            rc = store_projection_put(a->store, v.name, v.version, out, &err);
            if (rc == STORE_NOT_FOUND) {
                http_reply_problem(rq, PROBLEM_VERSION_NOT_FOUND,
                                   "model '%s' version %d was deleted", v.name, v.version);
                free(out);
            } else if (rc != STORE_OK) {
                handler_internal(rq, "storing the projection", &err);
                free(out);
            } else {
                http_reply_bytes(rq, 200, "application/json", out, strlen(out), true);
            }
        }
        store_model_version_clear(&full);
    }
    free(ckpt);
    store_model_version_clear(&v);
}

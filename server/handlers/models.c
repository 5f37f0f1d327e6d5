/* models.c - promote a job's checkpoint to a named, immutable model version;
 * list, get, pin, delete versions; download a version's checkpoint.
 *
 * Promoting copies the checkpoint without its optimiser state (an inference-only
 * checkpoint, a third of the size) and builds the version's neighbours index:
 * the Y embeddings, as unit vectors, of up to index_max_images training images
 * of the job's dataset, evenly spaced (image i of the index is training image
 * floor(i * N / n)). The work runs on the request's thread with a compute pool
 * of its own, like a training worker.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "handlers/handlers.h"
#include "store/checkpoints.h"
#include "dim/checkpoint.h"
#include "dim/hparams.h"
#include "api/jobspec.h"
#include "util/threadpool.h"
#include "util/sha256.h"

#define INDEX_BATCH 256


static json_t *handler_model_version_json(const struct store_model_version *v)
{
    char base[160], ver[16], link[224];
    snprintf(ver, sizeof ver, "v%d", v->version);
    snprintf(base, sizeof base, "/v1/models/%s", v->name);
    json_t *info = v->info_json ? json_loads(v->info_json, 0, NULL) : NULL;
    json_t *metrics = v->metrics_json ? json_loads(v->metrics_json, 0, NULL) : NULL;
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(v->name));
    json_object_set_new(o, "version", json_string(ver));
    json_object_set_new(o, "number", json_integer(v->version));
    json_object_set_new(o, "job_id", v->job_id > 0 ? json_integer(v->job_id) : json_null());
    json_object_set_new(o, "step", json_integer(v->step));
    json_object_set_new(o, "source_checkpoint_sha256", json_string(v->source_sha256));
    json_object_set_new(o, "checkpoint_sha256", json_string(v->sha256));
    json_object_set_new(o, "bytes", json_integer(v->bytes));
    json_object_set_new(o, "created_at", http_time_json(v->created_ms));
    json_object_set_new(o, "pinned", json_boolean(v->pinned));
    static const char *const from_info[] = {"preset", "input", "y_dim", "taps", "dataset",
                                            "classes"};
    for (size_t i = 0; i < sizeof from_info / sizeof from_info[0]; i++) {
        json_t *x = json_object_get(info, from_info[i]);
        json_object_set(o, from_info[i], x ? x : json_null());
    }
    json_object_set_new(o, "metrics", metrics ? metrics : json_object());
    json_object_set_new(o, "index_images", json_integer(v->index_images));
    json_t *links = json_object();
    snprintf(link, sizeof link, "%s/versions/%s", base, ver);
    json_object_set_new(links, "self", json_string(link));
    snprintf(link, sizeof link, "%s/encode?version=%s", base, ver);
    json_object_set_new(links, "encode", json_string(link));
    snprintf(link, sizeof link, "%s/neighbors?version=%s", base, ver);
    json_object_set_new(links, "neighbors", json_string(link));
    snprintf(link, sizeof link, "%s/versions/%s/checkpoint", base, ver);
    json_object_set_new(links, "checkpoint", json_string(link));
    json_object_set_new(o, "links", links);
    json_decref(info);
    return o;
}

bool handler_load_version(struct handler_ctx *a, struct http_request *rq, struct store_model_version *v,
                      void **ckpt)
{
    const char *name = http_param(rq, "name"), *vs = http_param(rq, "version");
    int version = 0;
    if (!model_name_ok(name)) {
        http_reply_problem(rq, PROBLEM_MODEL_NOT_FOUND, "no model '%.64s'", name);
        return false;
    }
    if (vs && !model_version_parse(vs, &version)) {
        http_reply_problem(rq, PROBLEM_VERSION_NOT_FOUND,
                           "'%.32s' is not a version (v1, 1 or latest)", vs);
        return false;
    }
    struct dim_err err;
    int rc = store_model_get(a->store, name, version, v, ckpt, NULL, NULL, &err);
    if (rc == STORE_OK)
        return true;
    if (rc != STORE_NOT_FOUND) {
        handler_internal(rq, "reading the model", &err);
        return false;
    }
    struct store_model_version *all = NULL;
    size_t n = 0;
    rc = store_model_versions(a->store, name, &all, &n, &err);
    for (size_t i = 0; i < n; i++)
        store_model_version_clear(&all[i]);
    free(all);
    if (rc == STORE_NOT_FOUND)
        http_reply_problem(rq, PROBLEM_MODEL_NOT_FOUND, "no model '%s'", name);
    else
        http_reply_problem(rq, PROBLEM_VERSION_NOT_FOUND, "model '%s' has no version %s", name,
                           version ? vs : "yet");
    return false;
}

void handle_model_list(void *app, struct http_request *rq)
{
    struct handler_ctx *a = app;
    struct store_model_version *ms = NULL;
    size_t n = 0;
    struct dim_err err;
    if (store_model_list(a->store, &ms, &n, &err) != STORE_OK) {
        handler_internal(rq, "listing models", &err);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        struct store_model_version *vs = NULL;
        size_t nv = 0;
        store_model_versions(a->store, ms[i].name, &vs, &nv, &err);
        for (size_t k = 0; k < nv; k++)
            store_model_version_clear(&vs[k]);
        free(vs);
        json_array_append_new(arr, json_pack("{s:s, s:I, s:o}", "name", ms[i].name, "versions",
                                             (json_int_t)nv, "latest",
                                             ms[i].version > 0 ? handler_model_version_json(&ms[i])
                                                               : json_null()));
        store_model_version_clear(&ms[i]);
    }
    free(ms);
    http_reply_json(rq, 200, json_pack("{s:o}", "models", arr));
}

void handle_model_get(void *app, struct http_request *rq)
{
    struct handler_ctx *a = app;
    const char *name = http_param(rq, "name");
    struct store_model_version *vs = NULL;
    size_t n = 0;
    struct dim_err err;
    int rc = model_name_ok(name) ? store_model_versions(a->store, name, &vs, &n, &err)
                                       : STORE_NOT_FOUND;
    if (rc == STORE_NOT_FOUND) {
        http_reply_problem(rq, PROBLEM_MODEL_NOT_FOUND, "no model '%.64s'", name);
        return;
    }
    if (rc != STORE_OK) {
        handler_internal(rq, "reading the model", &err);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, handler_model_version_json(&vs[i]));
        store_model_version_clear(&vs[i]);
    }
    free(vs);
    http_reply_json(rq, 200, json_pack("{s:s, s:o}", "name", name, "versions", arr));
}

void handle_model_version_get(void *app, struct http_request *rq)
{
    struct store_model_version v;
    if (!handler_load_version(app, rq, &v, NULL))
        return;
    http_reply_json(rq, 200, handler_model_version_json(&v));
    store_model_version_clear(&v);
}

void handle_model_version_checkpoint(void *app, struct http_request *rq)
{
    struct store_model_version v;
    void *data = NULL;
    const char *inm = http_header(rq, "If-None-Match");
    if (!handler_load_version(app, rq, &v, inm ? NULL : &data))
        return;
    char etag[72], disp[200];
    snprintf(etag, sizeof etag, "\"%s\"", v.sha256);
    http_add_header(rq, "ETag", etag);
    if (inm && (strstr(inm, v.sha256) || strcmp(inm, "*") == 0)) {
        http_reply_empty(rq, 304);
    } else if (inm) { /* the cheap path guessed wrong: read the bytes after all */
        store_model_version_clear(&v);
        if (!handler_load_version(app, rq, &v, &data))
            return;
        snprintf(disp, sizeof disp, "attachment; filename=\"%s-v%d.dimdckpt\"", v.name, v.version);
        http_add_header(rq, "Content-Disposition", disp);
        http_reply_bytes(rq, 200, "application/octet-stream", data, (size_t)v.bytes, true);
        data = NULL;
    } else {
        snprintf(disp, sizeof disp, "attachment; filename=\"%s-v%d.dimdckpt\"", v.name, v.version);
        http_add_header(rq, "Content-Disposition", disp);
        http_reply_bytes(rq, 200, "application/octet-stream", data, (size_t)v.bytes, true);
        data = NULL;
    }
    free(data);
    store_model_version_clear(&v);
}

static void set_pin(struct handler_ctx *a, struct http_request *rq, bool pinned)
{
    struct store_model_version v;
    if (!handler_load_version(a, rq, &v, NULL))
        return;
    struct store_model_version out;
    struct dim_err err;
    int rc = store_model_pin(a->store, v.name, v.version, pinned, &out, &err);
    store_model_version_clear(&v);
    if (rc != STORE_OK) {
        handler_internal(rq, "pinning the version", &err);
        return;
    }
    http_reply_json(rq, 200, handler_model_version_json(&out));
    store_model_version_clear(&out);
}

void handle_model_version_pin(void *app, struct http_request *rq)
{
    set_pin(app, rq, true);
}

void handle_model_version_unpin(void *app, struct http_request *rq)
{
    set_pin(app, rq, false);
}

void handle_model_version_delete(void *app, struct http_request *rq)
{
    struct handler_ctx *a = app;
    struct store_model_version v;
    if (!handler_load_version(a, rq, &v, NULL))
        return;
    struct dim_err err;
    int rc = store_model_delete(a->store, v.name, v.version, &err);
    if (rc == STORE_OK)
        http_reply_empty(rq, 204);
    else if (rc == STORE_CONFLICT)
        http_reply_problem(rq, PROBLEM_VERSION_PINNED,
                           "model %s v%d is pinned; unpin it before deleting it", v.name,
                           v.version);
    else if (rc == STORE_NOT_FOUND)
        http_reply_problem(rq, PROBLEM_VERSION_NOT_FOUND, "model %s has no version v%d", v.name,
                           v.version);
    else
        handler_internal(rq, "deleting the version", &err);
    store_model_version_clear(&v);
}

/* ---- promote ---- */

struct promote_req {
    const char *name;
    int64_t job_id;
    int64_t step; /* -1 latest, -2 best */
    bool pinned;
};

static void parse_promote(const json_t *body, struct promote_req *p, json_t *errors)
{
    memset(p, 0, sizeof *p);
    p->step = -1;
    if (!json_is_object(body)) {
        jobspec_error(errors, NULL, "the request must be a JSON object");
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)body, k, v) {
        if (strcmp(k, "name") == 0) {
            if (json_is_string(v) && model_name_ok(json_string_value(v)))
                p->name = json_string_value(v);
            else
                jobspec_error(errors, k,
                              "must be 1 to 63 of a-z, 0-9, '_' and '-', starting with a letter or digit");
        } else if (strcmp(k, "job_id") == 0) {
            if (json_is_integer(v) && json_integer_value(v) > 0)
                p->job_id = json_integer_value(v);
            else
                jobspec_error(errors, k, "must be a job id (a positive integer)");
        } else if (strcmp(k, "checkpoint") == 0) {
            const char *s = json_string_value(v);
            if (s && strcmp(s, "latest") == 0)
                p->step = -1;
            else if (s && strcmp(s, "best") == 0)
                p->step = -2;
            else if (json_is_integer(v) && json_integer_value(v) >= 0)
                p->step = json_integer_value(v);
            else
                jobspec_error(errors, k, "must be \"latest\", \"best\" or a step (an integer)");
        } else if (strcmp(k, "pinned") == 0) {
            if (json_is_boolean(v))
                p->pinned = json_is_true(v);
            else
                jobspec_error(errors, k, "must be true or false");
        } else {
            jobspec_error(errors, k, "unknown field (name, job_id, checkpoint, pinned)");
        }
    }
    if (!json_object_get(body, "name"))
        jobspec_error(errors, "name", "is required");
    if (!json_object_get(body, "job_id"))
        jobspec_error(errors, "job_id", "is required");
}

/* The step of the job's best checkpoint by its spec's best_metric, or -1. */
static int64_t best_step(struct handler_ctx *a, const struct store_job *job)
{
    json_t *spec = json_loads(job->spec_json, 0, NULL);
    const char *metric = json_string_value(json_object_get(spec, "best_metric"));
    bool larger = metric && strncmp(metric, "probe_", 6) == 0;
    struct store_checkpoint *cs = NULL;
    size_t n = 0;
    int64_t best = -1;
    double best_v = 0;
    if (metric && store_checkpoint_list(a->store, job->id, &cs, &n, NULL) == STORE_OK) {
        for (size_t i = 0; i < n; i++) {
            json_t *m = json_loads(cs[i].metrics_json, 0, NULL);
            json_t *x = json_object_get(m, metric);
            if (json_is_number(x)) {
                double v = json_number_value(x);
                if (best < 0 || (larger ? v >= best_v : v <= best_v)) {
                    best = cs[i].step;
                    best_v = v;
                }
            }
            json_decref(m);
            store_checkpoint_clear(&cs[i]);
        }
    }
    free(cs);
    json_decref(spec);
    return best;
}

int handler_embed_split(const struct handler_ctx *a, const struct dim_model *m, const char *dataset,
                    enum dim_split split, size_t max_n, bool unit, float **vectors,
                    uint16_t **labels, int64_t *n_out, int64_t *n_data, json_t **classes,
                    struct dim_err *err)
{
    *vectors = NULL;
    *labels = NULL;
    *n_out = *n_data = 0;
    if (classes)
        *classes = json_null();
    if (max_n == 0)
        return 0;
    char path[4096];
    if (datasets_resolve(a->datasets, dataset, path, err) != 0)
        return -1;
    struct dim_dataset ds = {0};
    struct dim_dataset_limits lim = {0, 64u << 20};
    if (dim_dataset_load(path, split, &lim, &ds, err) != 0)
        return -1;
    if (classes && ds.class_names) {
        *classes = json_array();
        for (int c = 0; c < ds.n_classes; c++)
            json_array_append_new(*classes, json_string(ds.class_names[c] ? ds.class_names[c] : ""));
    }
    size_t n = ds.n < max_n ? ds.n : max_n;
    size_t dim = dim_model_tap_size(m, DIM_TAP_Y);
    const struct dim_preprocess pp = dim_model_preprocess(m);
    size_t in = (size_t)pp.c * (size_t)pp.h * (size_t)pp.w;
    float *vec = malloc(n * dim * sizeof *vec), *x = malloc(INDEX_BATCH * in * sizeof *x);
    uint16_t *lab = malloc(n * sizeof *lab);
    uint32_t idx[INDEX_BATCH];
    struct dim_encode_ws ws = {0};
    int rc = 0;
    if (!vec || !x || !lab || dim_encode_ws_create(&ws, m, INDEX_BATCH, err) != 0) {
        rc = err->code ? -1 : dim_fail(err, DIM_ENOMEM, "out of memory for %zu embeddings", n);
        goto out;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    struct threadpool *pool = cores > 1 ? threadpool_create((int)cores - 1) : NULL;
    if (pool)
        dim_parallel_use(threadpool_parallel(pool));
    for (size_t s = 0; s < n; s += INDEX_BATCH) {
        size_t b = n - s < INDEX_BATCH ? n - s : INDEX_BATCH;
        for (size_t i = 0; i < b; i++)
            idx[i] = (uint32_t)((s + i) * ds.n / n);
        dim_dataset_batch(&ds, idx, b, &pp, NULL, x, lab + s);
        const float *y = dim_model_encode(m, &ws, x, b, DIM_TAP_Y);
        for (size_t i = 0; i < b; i++) {
            double nn = 0;
            for (size_t k = 0; k < dim; k++)
                nn += (double)y[i * dim + k] * y[i * dim + k];
            float scale = !unit ? 1.0f : nn > 0 ? (float)(1.0 / sqrt(nn)) : 0.0f;
            for (size_t k = 0; k < dim; k++)
                vec[(s + i) * dim + k] = y[i * dim + k] * scale;
        }
    }
    dim_parallel_use(NULL);
    threadpool_free(pool);
    *n_out = (int64_t)n;
    *n_data = (int64_t)ds.n;
out:
    dim_encode_ws_free(&ws);
    free(x);
    dim_dataset_free(&ds);
    if (rc == 0) {
        *vectors = vec;
        *labels = lab;
    } else {
        free(vec);
        free(lab);
    }
    return rc;
}

static json_t *info_json(const struct dim_model *m, const char *dataset, int64_t index_data,
                         json_t *classes)
{
    json_t *taps = json_object();
    for (int t = 0; t < 4; t++) {
        size_t d = t == DIM_TAP_LOCAL ? (size_t)m->local_c : dim_model_tap_size(m, (enum dim_tap)t);
        json_object_set_new(taps, dim_tap_name((enum dim_tap)t), json_integer((json_int_t)d));
    }
    return json_pack("{s:s, s:{s:i, s:i, s:i}, s:i, s:o, s:s, s:O, s:I, s:o}", "preset",
                     dim_preset_name(m->cfg.preset), "input", "channels", m->cfg.in_c, "height",
                     m->in_h, "width", m->in_w, "y_dim", m->cfg.y_dim, "taps", taps, "dataset",
                     dataset, "classes", classes, "index_dataset_images", (json_int_t)index_data,
                     "hyperparameters", jobspec_hparams_json(&m->cfg));
}

void handle_model_promote(void *app, struct http_request *rq)
{
    struct handler_ctx *a = app;
    json_t *body = handler_body_json(rq);
    if (!body)
        return;
    json_t *errors = json_array();
    struct promote_req p;
    parse_promote(body, &p, errors);
    struct store_job job = {0};
    struct store_checkpoint meta = {0};
    void *data = NULL;
    struct dim_err err = {0};
    char msg[320];
    if (json_array_size(errors) == 0) {
        int rc = store_job_get(a->store, p.job_id, &job, &err);
        if (rc == STORE_NOT_FOUND) {
            jobspec_error(errors, "job_id", "no job %lld", (long long)p.job_id);
        } else if (rc != STORE_OK) {
            handler_internal(rq, "reading the job", &err);
            goto out;
        }
    }
    if (json_array_size(errors) == 0) {
        int64_t step = p.step == -2 ? best_step(a, &job) : p.step;
        int rc = p.step == -2 && step < 0
                     ? STORE_NOT_FOUND
                     : store_checkpoint_get(a->store, job.id, step, &meta, &data, &err);
        if (rc == STORE_NOT_FOUND) {
            if (p.step >= 0)
                snprintf(msg, sizeof msg, "job %lld has no checkpoint at step %lld",
                         (long long)job.id, (long long)p.step);
            else
                snprintf(msg, sizeof msg, "job %lld has no checkpoint%s yet", (long long)job.id,
                         p.step == -2 ? " with its best_metric" : "");
            jobspec_error(errors, "checkpoint", "%s", msg);
        } else if (rc != STORE_OK) {
            handler_internal(rq, "reading the checkpoint", &err);
            goto out;
        }
    }
    if (json_array_size(errors) > 0) {
        http_reply_invalid(rq, errors, "the promotion request is invalid");
        errors = NULL;
        goto out;
    }
    /* the model, without its optimiser state */
    struct dim_model *m = NULL;
    struct dim_train_progress prog;
    struct dim_memsrc src = {data, (size_t)meta.bytes, 0};
    const struct dim_reader rd = {dim_memsrc_read, &src};
    if (dim_checkpoint_read(&m, &prog, false, &rd, &err) != 0) {
        handler_internal(rq, "loading the checkpoint", &err);
        goto out;
    }
    struct dim_membuf ck = {0};
    const struct dim_writer wr = {dim_membuf_write, &ck};
    float *vectors = NULL;
    uint16_t *labels = NULL;
    int64_t n_index = 0, n_data = 0;
    json_t *classes = NULL;
    json_t *spec = json_loads(job.spec_json, 0, NULL);
    const char *dataset = json_string_value(json_object_get(spec, "dataset"));
    if (dim_checkpoint_write(m, &prog, &wr, &err) != 0) {
        handler_internal(rq, "writing the model's checkpoint", &err);
    } else if (handler_embed_split(a, m, dataset ? dataset : "", DIM_SPLIT_TRAIN,
                               (size_t)a->cfg->index_max_images, true, &vectors, &labels,
                               &n_index, &n_data, &classes, &err) != 0) {
        http_reply_problem(rq, PROBLEM_DATASET_UNAVAILABLE,
                           "the neighbours index needs job %lld's dataset: %s", (long long)job.id,
                           err.msg);
    } else {
        char digest[65];
        sha256_hex(ck.p, ck.n, digest);
        json_t *info = info_json(m, dataset ? dataset : "", n_data, classes);
        char *info_text = json_dumps(info, JSON_COMPACT | JSON_REAL_PRECISION(DIMD_REAL_DIGITS));
        json_decref(info);
        struct store_model_index index = {vectors, labels, n_index,
                                          (int)dim_model_tap_size(m, DIM_TAP_Y)};
        struct store_model_version v;
        int rc = store_model_create(a->store, p.name, job.id, meta.step, meta.sha256, ck.p, ck.n,
                                    digest, info_text ? info_text : "{}",
                                    meta.metrics_json ? meta.metrics_json : "{}", p.pinned,
                                    n_index ? &index : NULL, &v, &err);
        free(info_text);
        if (rc == STORE_NOT_FOUND) {
            json_t *e = json_array();
            jobspec_error(e, "job_id", "the job was deleted while the version was being made");
            http_reply_invalid(rq, e, "the promotion request is invalid");
        } else if (rc == STORE_OK) {
            char loc[160];
            snprintf(loc, sizeof loc, "/v1/models/%s/versions/v%d", v.name, v.version);
            http_add_header(rq, "Location", loc);
            http_reply_json(rq, 201, handler_model_version_json(&v));
            store_model_version_clear(&v);
        } else {
            handler_internal(rq, "storing the model version", &err);
        }
    }
    json_decref(spec);
    json_decref(classes);
    free(vectors);
    free(labels);
    free(ck.p);
    dim_model_free(m);
out:
    json_decref(errors);
    json_decref(body);
    free(data);
    store_checkpoint_clear(&meta);
    store_job_clear(&job);
}

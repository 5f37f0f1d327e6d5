/* models.c - promote a job's checkpoint to a named, immutable model version
 * (service/promote.h does the work); list, get, pin, delete versions; download
 * a version's checkpoint.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/handlers.h"
#include "api/jobspec.h"
#include "service/promote.h"

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
    /* a conditional request reads the bytes only when it gets them */
    const bool conditional = http_header(rq, "If-None-Match") != NULL;
    if (!handler_load_version(app, rq, &v, conditional ? NULL : &data))
        return;
    char etag[72], file[96];
    snprintf(etag, sizeof etag, "\"%s\"", v.sha256);
    if (!handler_not_modified(rq, etag)) {
        if (conditional) {
            store_model_version_clear(&v);
            if (!handler_load_version(app, rq, &v, &data))
                return;
        }
        snprintf(file, sizeof file, "%s-v%d.dimdckpt", v.name, v.version);
        handler_reply_download(rq, file, data, (size_t)v.bytes);
        data = NULL;
    }
    free(data);
    store_model_version_clear(&v);
}

static void set_pin(struct handler_ctx *a, struct http_request *rq, bool pinned)
{
    if (!handler_writable(a, rq))
        return;
    struct store_model_version v;
    if (!handler_load_version(a, rq, &v, NULL))
        return;
    struct store_model_version out;
    struct dim_err err;
    int rc = store_model_pin(a->store, v.name, v.version, pinned, &out, &err);
    store_model_version_clear(&v);
    if (rc != STORE_OK) {
        handler_store_fail(a, rq, rc, "pinning the version", &err);
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
    if (rc == STORE_OK) {
        handler_deleted(a);
        http_reply_empty(rq, 204);
    }
    else if (rc == STORE_CONFLICT)
        http_reply_problem(rq, PROBLEM_VERSION_PINNED,
                           "model %s v%d is pinned; unpin it before deleting it", v.name,
                           v.version);
    else if (rc == STORE_NOT_FOUND)
        http_reply_problem(rq, PROBLEM_VERSION_NOT_FOUND, "model %s has no version v%d", v.name,
                           v.version);
    else
        handler_store_fail(a, rq, rc, "deleting the version", &err);
    store_model_version_clear(&v);
}

/* ---- promote ---- */

static void parse_promote(const json_t *body, struct promote_request *p, json_t *errors)
{
    memset(p, 0, sizeof *p);
    p->step = PROMOTE_LATEST;
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
                p->step = PROMOTE_LATEST;
            else if (s && strcmp(s, "best") == 0)
                p->step = PROMOTE_BEST;
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

void handle_model_promote(void *app, struct http_request *rq)
{
    json_t *body = handler_body_json(rq);
    if (body)
        handler_promote(app, rq, body);
}

void handler_promote(struct handler_ctx *a, struct http_request *rq, json_t *body)
{
    json_t *errors = json_array();
    struct promote_request p;
    parse_promote(body, &p, errors);
    p.storage = a->storage;
    if (json_array_size(errors) > 0) {
        http_reply_invalid(rq, errors, "the promotion request is invalid");
        json_decref(body);
        return;
    }
    if (!handler_writable(a, rq)) {
        json_decref(errors);
        json_decref(body);
        return;
    }
    struct store_model_version v;
    struct dim_err err = {0};
    int rc = promote_checkpoint(a->store, a->datasets, &p, (size_t)a->cfg->index_max_images, &v,
                                &err);
    if (rc == PROMOTE_OK) {
        char loc[160];
        snprintf(loc, sizeof loc, "/v1/models/%s/versions/v%d", v.name, v.version);
        http_add_header(rq, "Location", loc);
        http_reply_json(rq, 201, handler_model_version_json(&v));
        store_model_version_clear(&v);
    } else if (rc == PROMOTE_NO_DATASET) {
        http_reply_problem(rq, PROBLEM_DATASET_UNAVAILABLE,
                           "the neighbours index needs job %lld's dataset: %s",
                           (long long)p.job_id, err.msg);
    } else if (rc == PROMOTE_NO_ROOM) {
        http_add_header(rq, "Retry-After", "60");
        http_reply_problem(rq, PROBLEM_INSUFFICIENT_STORAGE, "%s", err.msg);
    } else if (rc == PROMOTE_FULL) {
        handler_store_fail(a, rq, STORE_FULL, "promoting the checkpoint", &err);
    } else if (rc == PROMOTE_ERROR) {
        handler_internal(rq, "promoting the checkpoint", &err);
    } else {
        jobspec_error(errors, rc == PROMOTE_NO_CHECKPOINT ? "checkpoint" : "job_id", "%s",
                      err.msg);
        http_reply_invalid(rq, errors, "the promotion request is invalid");
        errors = NULL;
    }
    json_decref(errors);
    json_decref(body);
}

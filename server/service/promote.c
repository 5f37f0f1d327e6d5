/* promote.c - promotion of a job's checkpoint to a model version
 * (service/promote.h). Depends on store, service/embeddings, api/jobspec
 * (the hyperparameters' JSON form), util/sha256, core; no HTTP. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/jobspec.h"
#include "api/real.h"
#include "dim/checkpoint.h"
#include "dim/hparams.h"
#include "service/embeddings.h"
#include "service/promote.h"
#include "store/checkpoints.h"
#include "util/sha256.h"

int64_t promote_best_step(struct dimd_store *store, const struct store_job *job)
{
    json_t *spec = json_loads(job->spec_json ? job->spec_json : "", 0, NULL);
    const char *metric = json_string_value(json_object_get(spec, "best_metric"));
    const bool larger = metric && strncmp(metric, "probe_", 6) == 0;
    struct store_checkpoint *cs = NULL;
    size_t n = 0;
    int64_t best = -1;
    double best_v = 0;
    if (metric && store_checkpoint_list(store, job->id, &cs, &n, NULL) == STORE_OK) {
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

/* The version's info JSON text (malloc'd, NULL when out of memory): the model's
 * shape, its dataset and that dataset's classes and size. */
static char *promote_info(const struct dim_model *m, const char *dataset, const struct embeddings *e)
{
    json_t *taps = json_object();
    for (int t = 0; t < 4; t++) {
        size_t d = t == DIM_TAP_LOCAL ? (size_t)m->local_c : dim_model_tap_size(m, (enum dim_tap)t);
        json_object_set_new(taps, dim_tap_name((enum dim_tap)t), json_integer((json_int_t)d));
    }
    json_t *info = json_pack(
        "{s:s, s:{s:i, s:i, s:i}, s:i, s:o, s:s, s:O, s:I, s:o}", "preset",
        dim_preset_name(m->cfg.preset), "input", "channels", m->cfg.in_c, "height", m->in_h,
        "width", m->in_w, "y_dim", m->cfg.y_dim, "taps", taps, "dataset", dataset, "classes",
        e->classes ? e->classes : json_null(), "index_dataset_images", (json_int_t)e->n_data,
        "hyperparameters", jobspec_hparams_json(&m->cfg));
    char *text = json_dumps(info, JSON_COMPACT | JSON_REAL_PRECISION(DIMD_REAL_DIGITS));
    json_decref(info);
    return text;
}

/* Reads the checkpoint rq names into *meta and *data; PROMOTE_NO_CHECKPOINT or
 * PROMOTE_ERROR with err when it cannot. */
static int promote_source(struct dimd_store *store, const struct store_job *job,
                          const struct promote_request *rq, struct store_checkpoint *meta,
                          void **data, struct dim_err *err)
{
    const int64_t step = rq->step == PROMOTE_BEST ? promote_best_step(store, job) : rq->step;
    struct dim_err e = {0};
    int rc = rq->step == PROMOTE_BEST && step < 0
                 ? STORE_NOT_FOUND
                 : store_checkpoint_get(store, job->id, step, meta, data, &e);
    if (rc == STORE_OK)
        return PROMOTE_OK;
    if (rc != STORE_NOT_FOUND) {
        dim_fail(err, DIM_EIO, "reading the checkpoint: %s", e.msg);
        return PROMOTE_ERROR;
    }
    if (rq->step >= 0)
        dim_fail(err, DIM_EINVAL, "job %lld has no checkpoint at step %lld", (long long)job->id,
                 (long long)rq->step);
    else
        dim_fail(err, DIM_EINVAL, "job %lld has no checkpoint%s yet", (long long)job->id,
                 rq->step == PROMOTE_BEST ? " with its best_metric" : "");
    return PROMOTE_NO_CHECKPOINT;
}

/* Makes and stores the version from the source checkpoint's bytes. */
static int promote_store(struct dimd_store *store, const struct datasets *ds,
                         const struct promote_request *rq, const struct store_job *job,
                         const struct store_checkpoint *meta, const void *data,
                         size_t index_max_images, struct store_model_version *out,
                         struct dim_err *err)
{
    struct dim_model *m = NULL;
    struct dim_train_progress prog;
    struct dim_memsrc src = {data, (size_t)meta->bytes, 0};
    const struct dim_reader rd = {dim_memsrc_read, &src};
    struct dim_err e = {0};
    if (dim_checkpoint_read(&m, &prog, false, &rd, &e) != 0) {
        dim_fail(err, e.code, "loading the checkpoint: %s", e.msg);
        return PROMOTE_ERROR;
    }
    struct dim_membuf ck = {0};
    const struct dim_writer wr = {dim_membuf_write, &ck};
    struct embeddings idx = {0};
    json_t *spec = json_loads(job->spec_json ? job->spec_json : "", 0, NULL);
    const char *dataset = json_string_value(json_object_get(spec, "dataset"));
    int rc = PROMOTE_ERROR;
    if (dim_checkpoint_write(m, &prog, &wr, &e) != 0) {
        dim_fail(err, e.code, "writing the model's checkpoint: %s", e.msg);
    } else if (embeddings_split(ds, m, dataset ? dataset : "", DIM_SPLIT_TRAIN, index_max_images,
                                true, &idx, err) != 0) {
        rc = PROMOTE_NO_DATASET;
    } else {
        /* the version's bytes must fit with the floor left free (service/storage.h) */
        int64_t bytes = (int64_t)ck.n + (int64_t)idx.n * ((int64_t)idx.dim * 4 + 2), need = 2 * bytes;
        struct storage_status ss;
        if (rq->storage && store_checkpoint_need(store, bytes, &need, &e) == STORE_OK &&
            !storage_admit(rq->storage, need, &ss)) {
            dim_fail(err, DIM_ELIMIT, "the version (%lld bytes) was not stored: %s",
                     (long long)bytes, ss.reason);
            json_decref(spec);
            embeddings_clear(&idx);
            free(ck.p);
            dim_model_free(m);
            return PROMOTE_NO_ROOM;
        }
        char digest[65];
        sha256_hex(ck.p, ck.n, digest);
        char *info = promote_info(m, dataset ? dataset : "", &idx);
        const struct store_model_index index = {idx.vectors, idx.labels, idx.n, (int)idx.dim};
        int st = info ? store_model_create(store, rq->name, job->id, meta->step, meta->sha256,
                                               ck.p, ck.n, digest, info,
                                               meta->metrics_json ? meta->metrics_json : "{}",
                                               rq->pinned, idx.n ? &index : NULL, out, &e)
                          : dim_fail(&e, DIM_ENOMEM, "out of memory for the version's info");
        free(info);
        if (st == STORE_OK) {
            rc = PROMOTE_OK;
        } else if (st == STORE_NOT_FOUND) {
            rc = PROMOTE_JOB_DELETED;
            dim_fail(err, DIM_EINVAL, "the job was deleted while the version was being made");
        } else {
            if (st == STORE_FULL)
                rc = PROMOTE_FULL;
            dim_fail(err, e.code ? e.code : DIM_EIO, "storing the model version: %s", e.msg);
        }
    }
    json_decref(spec);
    embeddings_clear(&idx);
    free(ck.p);
    dim_model_free(m);
    return rc;
}

int promote_checkpoint(struct dimd_store *store, const struct datasets *ds,
                       const struct promote_request *rq, size_t index_max_images,
                       struct store_model_version *out, struct dim_err *err)
{
    memset(out, 0, sizeof *out);
    struct store_job job = {0};
    struct store_checkpoint meta = {0};
    void *data = NULL;
    struct dim_err e = {0};
    int rc = store_job_get(store, rq->job_id, &job, &e);
    if (rc == STORE_NOT_FOUND) {
        dim_fail(err, DIM_EINVAL, "no job %lld", (long long)rq->job_id);
        return PROMOTE_NO_JOB;
    }
    if (rc != STORE_OK) {
        dim_fail(err, DIM_EIO, "reading the job: %s", e.msg);
        return PROMOTE_ERROR;
    }
    rc = promote_source(store, &job, rq, &meta, &data, err);
    if (rc == PROMOTE_OK)
        rc = promote_store(store, ds, rq, &job, &meta, data, index_max_images, out, err);
    free(data);
    store_checkpoint_clear(&meta);
    store_job_clear(&job);
    return rc;
}

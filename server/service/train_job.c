/* train_job.c - one training job on a worker, from its claim to its end state
 * (service/job_run.h; the runner's workers reach it through job_run).
 *
 * DESIGN
 * - Running a job: parse its stored spec (api/jobspec.h), load the dataset,
 *   build the model, or restore it from the latest stored checkpoint (verifying
 *   its sha256) and rewind metrics past that step; record total_steps; then step.
 *   Every step's losses become metric points ("loss_local", "loss_global",
 *   "loss_prior_enc", "loss_prior_disc", "loss_total", for the terms the model
 *   has, and "lr", the learning rate it took, when the schedule moves it);
 *   points are buffered and written in one transaction per flush
 *   (metrics_flush_ms, and before every checkpoint) together with
 *   "images_per_second" (the flush window's training rate: steps only, not
 *   checkpoints or probes).
 * - A new model with a decaying lr schedule resolves lr_horizon 0 to the run's steps;
 *   a resumed one keeps its checkpoint's config, schedule included.
 * - Every checkpoint_every steps and at the last step: serialise the model and
 *   progress into memory (core's writer interface), sha256 it, probe it when the
 *   spec asks ("probe_conv", "probe_fc", "probe_y" at that step), store it with
 *   retention in one transaction.
 * - A non-finite loss fails the job ("non_finite_loss", naming the term and the
 *   step); a dataset or model problem fails it with its own code.
 * - A spec with "ranks" > 1 is set up here the same way (the model, new or
 *   restored, is the checkpoint the ranks start from), then its steps run in
 *   mpirun's ranks and rank_job_run (service/rank_job.c) stores what rank 0
 *   sends through the same points, flushes and checkpoints.
 * A step allocates nothing: metric points go to a buffer that only grows when a
 * flush window holds more steps than any before it; the checkpoint buffer grows
 * to one checkpoint's size once per job.
 * Depends on store (jobs, metrics, checkpoints), api (jobspec, real),
 * service/datasets, util (clock, sha256), core (dim, data); no HTTP.
 */
#include "service/job_run.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/real.h"
#include "eval/probe.h"
#include "api/sweep_spec.h"
#include "store/checkpoints.h"
#include "store/sweeps.h"
#include "util/clock.h"
#include "util/sha256.h"

static const char *const loss_keys[N_LOSS_KEYS] = {"loss_local", "loss_global", "loss_prior_enc",
                                                   "loss_prior_disc", "loss_total"};
static const char *const probe_keys[DIM_N_PROBE_TAPS] = {"probe_conv", "probe_fc", "probe_y"};

int train_job_push_losses(struct run *x, const struct dim_losses *l, double lr)
{
    const double v[N_LOSS_KEYS] = {l->local, l->global, l->prior_enc, l->prior_disc, l->total};
    int64_t ms = clock_wall_ms();
    for (int k = 0; k < N_LOSS_KEYS; k++)
        if (x->loss_on[k] && job_run_push_point(x, loss_keys[k], v[k], ms) != 0)
            return -1;
    /* the lr the step took, when the schedule moves it */
    if (dim_lr_varies(&x->m->cfg) && job_run_push_point(x, "lr", lr, ms) != 0)
        return -1;
    return 0;
}

/* The probe on every tap, and once per run on the pixels (the same at every
 * checkpoint: the baseline the dashboard draws as a flat line). */
static int run_probe(struct run *x, double acc[DIM_N_PROBE_TAPS])
{
    const struct dim_dataset *tr = x->probe_train.px ? &x->probe_train : &x->train;
    struct dim_probe_opts po;
    dim_probe_opts_default(&po);
    po.kind = x->spec.probe == JOB_PROBE_MLP ? DIM_PROBE_MLP : DIM_PROBE_LINEAR;
    po.epochs = (int)x->spec.probe_epochs;
    po.cancel = &x->r->stop;
    struct dim_err err;
    struct dim_linclass_result res[DIM_N_PROBE_TAPS], px;
    int rc = dim_probe_model(x->m, tr, &x->test, &po, res, &err);
    if (rc == 0 && !isfinite(x->probe_pixels)) {
        const struct dim_preprocess pp = dim_model_preprocess(x->m);
        if ((rc = dim_probe_pixels(tr, &x->test, &pp, &po, &px, &err)) == 0)
            x->probe_pixels = px.accuracy;
    }
    if (rc == DIM_ECANCELLED)
        return job_run_shutdown(x);
    if (rc)
        return job_run_fail(x, rc == DIM_ENOMEM ? "out_of_memory" : "probe_failed",
                            "probe at step %llu: %s", (unsigned long long)x->step, err.msg);
    for (int t = 0; t < DIM_N_PROBE_TAPS; t++)
        acc[t] = res[t].accuracy;
    return RUN_OK;
}

static json_t *checkpoint_metrics(const struct run *x, const double *acc)
{
    json_t *o = json_object();
    if (x->have_last) {
        const double v[N_LOSS_KEYS] = {x->last.local, x->last.global, x->last.prior_enc,
                                       x->last.prior_disc, x->last.total};
        for (int k = 0; k < N_LOSS_KEYS; k++)
            if (x->loss_on[k] && isfinite(v[k]))
                json_object_set_new(o, loss_keys[k], json_real(v[k]));
    }
    for (int t = 0; acc && t < DIM_N_PROBE_TAPS; t++)
        if (isfinite(acc[t]))
            json_object_set_new(o, probe_keys[t], json_real(acc[t]));
    if (acc && isfinite(x->probe_pixels))
        json_object_set_new(o, "probe_pixels", json_real(x->probe_pixels));
    return o;
}

/* Flushes, then stores a checkpoint of the current step (probed when asked). */
int train_job_checkpoint(struct run *x, bool probe)
{
    double acc[DIM_N_PROBE_TAPS];
    probe = probe && x->spec.probe != JOB_PROBE_NONE;
    if (probe) {
        if (run_probe(x, acc) != RUN_OK)
            return RUN_END;
        int64_t ms = clock_wall_ms();
        for (int t = 0; t < DIM_N_PROBE_TAPS; t++)
            if (job_run_push_point(x, probe_keys[t], acc[t], ms) != 0)
                return job_run_fail(x, "out_of_memory", "out of memory for metric points");
        if (job_run_push_point(x, "probe_pixels", x->probe_pixels, ms) != 0)
            return job_run_fail(x, "out_of_memory", "out of memory for metric points");
    }
    if (job_run_flush(x) != RUN_OK)
        return RUN_END;
    struct dim_err err;
    if (!x->ranks) { /* a data-parallel job's rank 0 sent the bytes (service/rank_job.c) */
        struct dim_train_progress prog;
        dim_trainer_progress(x->tr, &prog);
        x->ck.n = 0;
        const struct dim_writer wr = {dim_membuf_write, &x->ck};
        if (dim_checkpoint_write(x->m, &prog, &wr, &err) != 0)
            return job_run_fail(x, "checkpoint_failed", "writing the checkpoint at step %llu: %s",
                                (unsigned long long)x->step, err.msg);
    }
    json_t *mj = checkpoint_metrics(x, probe ? acc : NULL);
    char *metrics =
        json_dumps(mj, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(DIMD_REAL_DIGITS));
    json_decref(mj);
    if (!metrics)
        return job_run_fail(x, "out_of_memory", "out of memory for checkpoint metrics");
    struct store_retention keep;
    memset(&keep, 0, sizeof keep);
    keep.keep_last = x->spec.keep_last > 1000000 ? 1000000 : (int)x->spec.keep_last;
    if (keep.keep_last < 1)
        keep.keep_last = 1;
    keep.keep_best = x->spec.keep_best > 1000000 ? 1000000 : (int)x->spec.keep_best;
    snprintf(keep.best_metric, sizeof keep.best_metric, "%s", x->spec.best_metric);
    keep.best_is_max = strncmp(keep.best_metric, "probe_", 6) == 0;
    /* a checkpoint needs room in the WAL and then in the database file
     * (store_checkpoint_need) and must leave the floor (min_free_bytes) free:
     * asked before, not found out after (service/storage.h) */
    struct storage_status ss;
    int64_t need = 2 * (int64_t)x->ck.n;
    if (x->r->cfg.storage &&
        store_checkpoint_need(x->r->store, (int64_t)x->ck.n, &need, &err) != STORE_OK)
        fprintf(stderr, "dimd: job %lld: %s (assuming %lld bytes)\n", (long long)x->id, err.msg,
                (long long)need);
    if (x->r->cfg.storage && !storage_admit(x->r->cfg.storage, need, &ss)) {
        free(metrics);
        return job_run_pause_full(x,
                                  "the checkpoint at step %llu (%zu bytes) was not stored: %s; "
                                  "free space, then resume the job",
                                  (unsigned long long)x->step, x->ck.n, ss.reason);
    }
    int rc = store_checkpoint_put(x->r->store, x->id, x->attempt, (int64_t)x->step, x->ck.p,
                                  x->ck.n, NULL, metrics, &keep, &err);
    free(metrics);
    if (rc != STORE_OK)
        return job_run_store_fail(x, rc, "checkpoint", &err);
    x->last_ckpt = x->step;
    return RUN_OK;
}

static const char *dim_code_name(int rc)
{
    switch (rc) {
    case DIM_ENOMEM:
        return "out_of_memory";
    case DIM_ENONFINITE:
        return "non_finite_loss";
    default:
        return "training_failed";
    }
}

int train_job_step_failed(struct run *x, int rc, uint64_t step, char *msg)
{
    if (rc == DIM_ENONFINITE) {
        /* core counts the steps taken before ("at step 1"); the job numbers
         * the failed step itself (2): keep one numbering in the message */
        char *at = strstr(msg, " at step ");
        if (at && at[9] && strspn(at + 9, "0123456789") == strlen(at + 9))
            *at = '\0';
        return job_run_fail(x, "non_finite_loss", "step %llu of %llu: %s",
                            (unsigned long long)step, (unsigned long long)x->total, msg);
    }
    return job_run_fail(x, dim_code_name(rc), "step %llu: %s", (unsigned long long)step, msg);
}

/* Copies k evenly strided images of d (image (i + offset) * n / k for i < k)
 * into *out (pixels and labels owned, no class names), marking them in held
 * when given. Returns -1 (out zeroed) when out of memory. */
static int copy_strided(const struct dim_dataset *d, size_t k, double offset,
                        struct dim_dataset *out, bool *held)
{
    const size_t sz = (size_t)d->c * (size_t)d->h * (size_t)d->w;
    *out = *d;
    out->n = k;
    out->class_names = NULL;
    out->px = malloc(k * sz);
    out->labels = malloc(k * sizeof *out->labels);
    if (!out->px || !out->labels) {
        free(out->px);
        free(out->labels);
        memset(out, 0, sizeof *out);
        return -1;
    }
    for (size_t i = 0; i < k; i++) {
        size_t j = (size_t)(((double)i + offset) * (double)d->n / (double)k);
        if (held)
            held[j] = true;
        memcpy(out->px + i * sz, d->px + j * sz, sz);
        out->labels[i] = d->labels[j];
    }
    return 0;
}

/* Every probe_images-th image would bias towards the first classes of a
 * class-sorted folder, so the probe fits on an evenly strided subset instead. */
static int make_probe_subset(struct run *x)
{
    const struct dim_dataset *d = &x->train;
    size_t k = (size_t)x->spec.probe_images;
    if (k == 0 || k >= d->n)
        return 0;
    return copy_strided(d, k, 0.0, &x->probe_train, NULL);
}

/* validation_images: an evenly strided subset of the training split becomes
 * the probe's scoring set (x->test, owned) and leaves the training set, which
 * is compacted in place; the test split is never read. */
static int carve_validation(struct run *x)
{
    struct dim_dataset *d = &x->train;
    const size_t k = (size_t)x->spec.validation_images, n = d->n;
    if (k >= n)
        return job_run_fail(x, "dataset_too_small",
                            "validation_images %zu must be below the %zu images of the training "
                            "split of %s",
                            k, n, x->spec.dataset);
    const size_t sz = (size_t)d->c * (size_t)d->h * (size_t)d->w;
    bool *held = calloc(n, sizeof *held);
    if (!held || copy_strided(d, k, 0.5, &x->test, held) != 0) {
        free(held);
        return job_run_fail(x, "out_of_memory", "out of memory for the validation split");
    }
    size_t m = 0;
    for (size_t j = 0; j < n; j++) {
        if (held[j])
            continue;
        if (m != j) {
            memmove(d->px + m * sz, d->px + j * sz, sz);
            d->labels[m] = d->labels[j];
        }
        m++;
    }
    d->n = m;
    free(held);
    return RUN_OK;
}

/* A sweep's trial: the steps of the rungs where it waits for a decision
 * (service/sweeps.c decides; the sweep's spec gives the rungs). */
static int sweep_setup(struct run *x)
{
    struct runner *r = x->r;
    struct store_sweep sw;
    struct dim_err err;
    int rc = store_sweep_get(r->store, x->spec.sweep_id, &sw, &err);
    if (rc == STORE_NOT_FOUND)
        return job_run_fail(x, "invalid_spec", "sweep %lld of this trial does not exist",
                            (long long)x->spec.sweep_id);
    if (rc != STORE_OK)
        return job_run_store_fail(x, rc, "sweep read", &err);
    json_error_t jerr;
    json_t *body = json_loads(sw.spec_json, 0, &jerr);
    store_sweep_clear(&sw);
    json_t *errors = json_array();
    struct sweep_spec ss;
    int bad = body ? sweep_spec_parse(body, datasets_check, r->ds, &ss, errors) : 1;
    json_decref(body);
    json_decref(errors);
    if (bad) {
        sweep_spec_clear(&ss);
        return job_run_fail(x, "invalid_spec", "the spec of sweep %lld no longer parses",
                            (long long)x->spec.sweep_id);
    }
    double res[SWEEP_MAX_RUNGS];
    int n = sweep_rungs(&ss, res);
    x->n_rungs = 0;
    for (int k = 0; k + 1 < n && k < 16; k++)
        x->rung_steps[x->n_rungs++] = sweep_rung_step(x->total, res[k], ss.budget);
    snprintf(x->sweep_metric, sizeof x->sweep_metric, "%s", ss.metric);
    sweep_spec_clear(&ss);
    return RUN_OK;
}

/* Before step x->step + 1 of a trial: at a rung it was not promoted from, it
 * stores what the sweep needs (a checkpoint, the probe at this step) and
 * pauses ("sweep_rung") until the sweep decides. RUN_END when it paused. */
static int sweep_gate(struct run *x)
{
    for (int k = 0; k < x->n_rungs; k++) {
        if (x->rung_steps[k] != x->step || x->rung_passed[k] || x->step >= x->total)
            continue;
        struct dim_err err;
        bool promoted = false;
        int rc = store_sweep_promoted(x->r->store, x->spec.sweep_id, x->spec.trial, k, &promoted,
                                      &err);
        if (rc != STORE_OK)
            return job_run_store_fail(x, rc, "rung decision read", &err);
        if (promoted) {
            x->rung_passed[k] = true;
            continue;
        }
        if (x->step != x->last_ckpt) {
            if (train_job_checkpoint(x, true) != RUN_OK)
                return RUN_END;
        } else if (strncmp(x->sweep_metric, "probe_", 6) == 0) {
            /* resumed at the rung from a checkpoint stored without its probe */
            double v = NAN;
            rc = store_sweep_metric_at(x->r->store, x->id, x->sweep_metric, (int64_t)x->step, 1,
                                       &v, &err);
            if (rc == STORE_OK && !isfinite(v) && x->spec.probe != JOB_PROBE_NONE) {
                double acc[DIM_N_PROBE_TAPS];
                if (run_probe(x, acc) != RUN_OK)
                    return RUN_END;
                int64_t ms = clock_wall_ms();
                for (int t = 0; t < DIM_N_PROBE_TAPS; t++)
                    if (job_run_push_point(x, probe_keys[t], acc[t], ms) != 0)
                        return job_run_fail(x, "out_of_memory", "out of memory for metric points");
            }
            if (job_run_flush(x) != RUN_OK)
                return RUN_END;
        } else if (job_run_flush(x) != RUN_OK) {
            return RUN_END;
        }
        char msg[160];
        snprintf(msg, sizeof msg, "at rung %d (step %llu): waiting for the sweep's decision", k,
                 (unsigned long long)x->step);
        rc = store_job_finish(x->r->store, x->id, x->attempt, JOB_PAUSED, "sweep_rung", msg, &err);
        if (rc != STORE_OK && rc != STORE_STALE)
            return job_run_store_fail(x, rc, "the rung pause", &err);
        return RUN_END;
    }
    return RUN_OK;
}

/* Parses the spec, loads the data, builds or restores the model. */
static int run_setup(struct run *x, const struct store_job *job)
{
    struct runner *r = x->r;
    struct dim_err err;
    json_error_t jerr;
    json_t *body = json_loads(job->spec_json ? job->spec_json : "", 0, &jerr);
    if (!body)
        return job_run_fail(x, "invalid_spec", "stored spec is not JSON: %s", jerr.text);
    json_t *errors = json_array();
    int n_bad = jobspec_parse(body, datasets_check, r->ds, &x->spec, errors);
    json_decref(body);
    if (n_bad) {
        /* a spec that was valid at submission and now names a dataset that is
         * gone is a dataset problem, not the user's spec */
        bool only_dataset = true;
        for (size_t i = 0; i < json_array_size(errors); i++) {
            const char *p = json_string_value(json_object_get(json_array_get(errors, i), "path"));
            only_dataset = only_dataset && p && strcmp(p, "$.dataset") == 0;
        }
        json_t *e0 = json_array_get(errors, 0);
        const char *path = json_string_value(json_object_get(e0, "path"));
        const char *msg = json_string_value(json_object_get(e0, "message"));
        if (only_dataset)
            job_run_fail(x, "dataset_unavailable", "%s", msg ? msg : "dataset unavailable");
        else
            job_run_fail(x, "invalid_spec", "%s: %s%s", path ? path : "$", msg ? msg : "invalid",
                         n_bad > 1 ? " (and more)" : "");
        json_decref(errors);
        return RUN_END;
    }
    json_decref(errors);
    if (x->spec.ranks > 1 && x->spec.ranks > (uint64_t)r->cfg.mpi.max_ranks)
        return job_run_fail(x, "invalid_spec",
                            "$.ranks: %llu ranks is more than this daemon's max_ranks (%d)",
                            (unsigned long long)x->spec.ranks, r->cfg.mpi.max_ranks);

    char *path = x->dataset_path;
    if (datasets_resolve(r->ds, x->spec.dataset, path, &err) != 0)
        return job_run_fail(x, "dataset_unavailable", "%s", err.msg);
    const struct dim_dataset_limits lim = {0, 64u << 20};
    if (dim_dataset_load(path, DIM_SPLIT_TRAIN, &lim, &x->train, &err) != 0)
        return job_run_fail(x, err.code == DIM_ENOMEM ? "out_of_memory" : "dataset_unavailable",
                            "dataset %s: %s", x->spec.dataset, err.msg);
    if (x->spec.validation_images && carve_validation(x) != RUN_OK)
        return RUN_END;
    if (x->spec.probe != JOB_PROBE_NONE && !x->spec.validation_images) {
        if (dim_dataset_load(path, DIM_SPLIT_TEST, &lim, &x->test, &err) != 0)
            return job_run_fail(x, err.code == DIM_ENOMEM ? "out_of_memory" : "dataset_unavailable",
                                "dataset %s (test split): %s", x->spec.dataset, err.msg);
    }
    if (x->spec.probe != JOB_PROBE_NONE) {
        if (x->test.n_classes > x->train.n_classes)
            x->train.n_classes = x->test.n_classes;
        if (x->test.n == 0 || x->train.n_classes < 2)
            return job_run_fail(x, "probe_unavailable",
                                "dataset %s: a probe needs test images and at least 2 classes "
                                "(%zu test images, %d classes)",
                                x->spec.dataset, x->test.n, x->train.n_classes);
        if (make_probe_subset(x) != 0)
            return job_run_fail(x, "out_of_memory", "out of memory for the probe's images");
    }
    if (atomic_load(&r->stop))
        return job_run_shutdown(x);

    /* the model: from the latest checkpoint, else new */
    struct store_checkpoint meta;
    memset(&meta, 0, sizeof meta);
    void *data = NULL;
    int rc = store_checkpoint_get(r->store, x->id, -1, &meta, &data, &err);
    struct dim_train_progress prog;
    bool resumed = false;
    if (rc == STORE_OK) {
        char hex[65];
        sha256_hex(data, (size_t)meta.bytes, hex);
        if (strcmp(hex, meta.sha256) != 0) {
            job_run_fail(x, "checkpoint_invalid",
                         "checkpoint at step %lld: sha256 %s does not match the stored %s",
                         (long long)meta.step, hex, meta.sha256);
            free(data);
            store_checkpoint_clear(&meta);
            return RUN_END;
        }
        struct dim_memsrc src = {data, (size_t)meta.bytes, 0};
        const struct dim_reader rd = {dim_memsrc_read, &src};
        rc = dim_checkpoint_read(&x->m, &prog, true, &rd, &err);
        free(data);
        int64_t ck_step = meta.step;
        store_checkpoint_clear(&meta);
        if (rc != 0)
            return job_run_fail(x, rc == DIM_ENOMEM ? "out_of_memory" : "checkpoint_invalid",
                                "checkpoint at step %lld: %s", (long long)ck_step, err.msg);
        if ((int64_t)prog.step != ck_step)
            return job_run_fail(x, "checkpoint_invalid",
                                "checkpoint stored as step %lld holds step %llu",
                                (long long)ck_step, (unsigned long long)prog.step);
        resumed = true;
    } else if (rc == STORE_NOT_FOUND) {
        struct dim_config cfg = x->spec.cfg;
        if (!x->spec.channels_set)
            cfg.in_c = x->train.c;
        /* lr_horizon 0 is the run's length; the model (and so every checkpoint)
         * holds the resolved number, so a resumed job keeps its schedule */
        const uint64_t run_steps = jobspec_total_steps(&x->spec, x->train.n);
        if (cfg.lr_horizon == 0 && cfg.lr_warmup > run_steps)
            return job_run_fail(x, "invalid_config",
                                "lr_warmup %llu is longer than the run's %llu steps (lr_horizon "
                                "0: the schedule spans the run)",
                                (unsigned long long)cfg.lr_warmup, (unsigned long long)run_steps);
        dim_config_resolve_lr(&cfg, run_steps);
        rc = dim_model_create(&x->m, &cfg, true, &err);
        if (rc != 0)
            return job_run_fail(x, rc == DIM_ENOMEM ? "out_of_memory" : "invalid_config", "%s",
                                err.msg);
    } else {
        return job_run_store_fail(x, rc, "checkpoint read", &err);
    }
    struct dim_preprocess pp = dim_model_preprocess(x->m);
    pp.random_crop = (int)x->spec.random_crop;
    pp.random_flip = x->spec.random_flip;
    rc = dim_trainer_create(&x->tr, x->m, &x->train, &pp, &err);
    if (rc != 0) {
        const char *code = rc == DIM_ENOMEM   ? "out_of_memory"
                           : rc == DIM_EINVAL ? "dataset_too_small"
                                              : "invalid_config";
        return job_run_fail(x, code, "%s", err.msg);
    }
    if (resumed && (rc = dim_trainer_restore(x->tr, &prog, &err)) != 0)
        return job_run_fail(x, "checkpoint_invalid", "%s", err.msg);
    x->step = x->last_ckpt = resumed ? prog.step : 0;
    x->loss_on[0] = x->m->has_local;
    x->loss_on[1] = x->m->has_global;
    x->loss_on[2] = x->m->has_prior;
    x->loss_on[3] = x->m->has_prior;
    x->loss_on[4] = true;

    /* points after the checkpoint (or all, without one) belong to a dead attempt */
    rc = store_metrics_rewind(r->store, x->id, x->attempt, (int64_t)x->step, &err);
    if (rc != STORE_OK)
        return job_run_store_fail(x, rc, "metrics rewind", &err);
    const uint64_t spe = dim_trainer_steps_per_epoch(x->tr);
    x->total = x->spec.steps ? x->spec.steps : (uint64_t)ceil(x->spec.epochs * (double)spe);
    if (x->total == 0)
        x->total = 1;
    uint64_t js = jobspec_total_steps(&x->spec, x->train.n);
    if (js != x->total)
        fprintf(stderr,
                "dimd: job %lld: jobspec_total_steps gives %llu, the trainer %llu steps "
                "(%llu per epoch); using the trainer's\n",
                (long long)x->id, (unsigned long long)js, (unsigned long long)x->total,
                (unsigned long long)spe);
    rc = store_job_set_total(r->store, x->id, x->attempt, (int64_t)x->total, &err);
    if (rc != STORE_OK)
        return job_run_store_fail(x, rc, "total steps", &err);
    if (x->step > x->total)
        return job_run_fail(x, "checkpoint_invalid",
                            "the checkpoint is at step %llu, past the job's %llu steps",
                            (unsigned long long)x->step, (unsigned long long)x->total);
    if (x->spec.sweep_id && sweep_setup(x) != RUN_OK)
        return RUN_END;
    /* points per flush window: size the buffer once for the expected window */
    x->cap_pts = 1024;
    x->pts = malloc(x->cap_pts * sizeof *x->pts);
    if (!x->pts)
        return job_run_fail(x, "out_of_memory", "out of memory for metric points");
    return RUN_OK;
}

void train_job_run(struct run *x, const struct store_job *job)
{
    struct runner *r = x->r;
    struct worker *w = x->w;
    if (run_setup(x, job) != RUN_OK)
        return;
    if (x->spec.ranks > 1) { /* the steps run in mpirun's ranks; this thread stores */
        rank_job_run(x);
        return;
    }
    const double flush_s = r->cfg.metrics_flush_ms / 1000.0;
    const uint64_t every = x->spec.checkpoint_every ? x->spec.checkpoint_every : x->total;
    const uint64_t batch = x->m->cfg.batch;
    struct dim_losses l;
    struct dim_err err;
    x->last_flush = clock_mono_s();
    while (x->step < x->total) {
        if (atomic_load_explicit(&r->stop, memory_order_relaxed)) {
            job_run_shutdown(x);
            return;
        }
        if (atomic_exchange(&w->changed, false) && job_run_check_state(x) != RUN_OK)
            return;
        if (x->n_rungs && sweep_gate(x) != RUN_OK)
            return;
        double t0 = clock_mono_s();
        int rc = dim_trainer_step(x->tr, &l, &err);
        double t1 = clock_mono_s();
        if (rc != 0) {
            if (job_run_flush(x) == RUN_OK)
                train_job_step_failed(x, rc, x->step + 1, err.msg);
            return;
        }
        x->step++;
        x->win_steps++;
        x->win_s += t1 - t0;
        x->last = l;
        x->have_last = true;
        atomic_fetch_add_explicit(&r->steps_total, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&r->images_total, batch, memory_order_relaxed);
        if (train_job_push_losses(x, &l, x->m->opt_main.lr) != 0) {
            job_run_fail(x, "out_of_memory", "out of memory for metric points");
            return;
        }
        if (x->step % every == 0 || x->step == x->total) {
            if (train_job_checkpoint(x, true) != RUN_OK)
                return;
        } else if (t1 - x->last_flush >= flush_s) {
            if (job_run_flush(x) != RUN_OK || job_run_check_state(x) != RUN_OK)
                return;
        }
    }
    if (x->step != x->last_ckpt && train_job_checkpoint(x, true) != RUN_OK)
        return;
    int rc = store_job_finish(r->store, x->id, x->attempt, JOB_SUCCEEDED, NULL, NULL, &err);
    if (rc == STORE_FULL)
        job_run_store_fail(x, rc, "the end state", &err);
    else if (rc == STORE_ERROR)
        fprintf(stderr, "dimd: job %lld: recording success: %s\n", (long long)x->id, err.msg);
}

/* runner.c - the worker threads that run training jobs (see runner.h for the design).
 *
 * Threads: every worker gives itself a compute pool of threads_per_worker - 1
 * threads (core's per-thread dim_parallel_use, BLAS on one thread), exactly as
 * `dimd train --threads N` does, so a job trains at the CLI's speed.
 * Locking: r->mu guards the wake sequence, which job each worker holds and the
 * per-worker rates; r->claim_mu makes "list the held jobs, claim one, record it"
 * atomic across workers. Counters are atomics. No store call is made under r->mu.
 * A step allocates nothing: metric points go to a buffer that only grows when a
 * flush window holds more steps than any before it; the checkpoint buffer grows
 * to one checkpoint's size once per job.
 */
#include "service/runner.h"
#include "util/clock.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/blas.h"
#include "base/parallel.h"
#include "data/dataset.h"
#include "dim/checkpoint.h"
#include "dim/model.h"
#include "dim/probe.h"
#include "dim/trainer.h"
#include "eval/evaluate.h"
#include "api/evalspec.h"
#include "api/jobspec.h"
#include "api/real.h"
#include "service/version_model.h"
#include "util/threadpool.h"
#include "util/sha256.h"
#include "store/checkpoints.h"
#include "store/evaluations.h"
#include "store/jobs.h"
#include "store/metrics.h"
#include "store/models.h"

struct worker {
    struct runner *r;
    int index;
    pthread_t thread;
    int64_t job_id;      /* held job (0: idle), under r->mu */
    double rate;         /* steps/s of its job's latest flush window, under r->mu */
    atomic_bool changed; /* runner_job_changed named its job */
    int64_t *skip;       /* claim scratch: the other workers' jobs */
};

struct runner {
    struct dimd_store *store;
    const struct datasets *ds;
    struct runner_config cfg;
    pthread_mutex_t mu, claim_mu;
    pthread_cond_t cv;
    uint64_t wake_seq; /* under mu */
    int busy;          /* under mu */
    atomic_bool stop;
    atomic_uint_least64_t steps_total, images_total;
    int n_workers, n_started;
    struct worker *w;
};

/* ---- clocks ---- */

/* ---- memory writer and reader for checkpoints ---- */

/* ---- one job ---- */

enum { RUN_OK = 0, RUN_END = 1 }; /* RUN_END: the job is over for this worker (written or stale) */

#define N_LOSS_KEYS 5
static const char *const loss_keys[N_LOSS_KEYS] = {"loss_local", "loss_global", "loss_prior_enc",
                                                   "loss_prior_disc", "loss_total"};
static const char *const probe_keys[DIM_N_PROBE_TAPS] = {"probe_conv", "probe_fc", "probe_y"};

struct run {
    struct runner *r;
    struct worker *w;
    int64_t id;
    int attempt;
    struct job_spec spec;
    struct dim_dataset train, test;
    struct dim_dataset probe_train; /* a strided subset of train, owned (px NULL: use train) */
    struct dim_model *m;
    struct dim_trainer *tr;
    bool loss_on[N_LOSS_KEYS];
    uint64_t step, total, last_ckpt;
    struct dim_losses last;
    bool have_last;
    struct store_metric *pts;
    size_t n_pts, cap_pts;
    uint64_t win_steps;
    double win_s, last_flush, ips;
    struct dim_membuf ck;
};

/* Ends the attempt as FAILED; a stale or failed write is only logged. */
static int run_fail(struct run *x, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int run_fail(struct run *x, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct dim_err err;
    int rc = store_job_finish(x->r->store, x->id, x->attempt, JOB_FAILED, code, msg, &err);
    if (rc == STORE_ERROR)
        fprintf(stderr, "dimd: job %lld: cannot record failure %s (%s): %s\n", (long long)x->id,
                code, msg, err.msg);
    return RUN_END;
}

static int store_fail(struct run *x, int rc, const char *what, const struct dim_err *err)
{
    if (rc == STORE_STALE)
        return RUN_END;
    fprintf(stderr, "dimd: job %lld: store %s: %s\n", (long long)x->id, what, err->msg);
    return run_fail(x, "store_error", "storing %s failed: %s", what, err->msg);
}

static int push_point(struct run *x, const char *key, double v, int64_t ms)
{
    if (x->n_pts == x->cap_pts) {
        size_t cap = x->cap_pts ? 2 * x->cap_pts : 1024;
        struct store_metric *p = realloc(x->pts, cap * sizeof *p);
        if (!p)
            return -1;
        x->pts = p;
        x->cap_pts = cap;
    }
    x->pts[x->n_pts++] = (struct store_metric){key, (int64_t)x->step, v, ms};
    return 0;
}

static int push_losses(struct run *x, const struct dim_losses *l)
{
    const double v[N_LOSS_KEYS] = {l->local, l->global, l->prior_enc, l->prior_disc, l->total};
    int64_t ms = clock_wall_ms();
    for (int k = 0; k < N_LOSS_KEYS; k++)
        if (x->loss_on[k] && push_point(x, loss_keys[k], v[k], ms) != 0)
            return -1;
    return 0;
}

/* Writes the buffered points and the window's images_per_second. */
static int run_flush(struct run *x)
{
    if (x->win_steps > 0 && x->win_s > 0) {
        x->ips = (double)(x->win_steps * x->m->cfg.batch) / x->win_s;
        if (push_point(x, "images_per_second", x->ips, clock_wall_ms()) != 0)
            return run_fail(x, "out_of_memory", "out of memory for metric points");
        pthread_mutex_lock(&x->r->mu);
        x->w->rate = (double)x->win_steps / x->win_s;
        pthread_mutex_unlock(&x->r->mu);
    }
    x->win_steps = 0;
    x->win_s = 0;
    x->last_flush = clock_mono_s();
    if (x->n_pts == 0)
        return RUN_OK;
    struct dim_err err;
    int rc = store_metrics_append(x->r->store, x->id, x->attempt, x->pts, x->n_pts,
                                  (int64_t)x->step, x->ips, &err);
    x->n_pts = 0;
    return rc == STORE_OK ? RUN_OK : store_fail(x, rc, "metrics", &err);
}

static int run_probe(struct run *x, double acc[DIM_N_PROBE_TAPS])
{
    const struct dim_dataset *tr = x->probe_train.px ? &x->probe_train : &x->train;
    struct dim_probe_opts po;
    dim_probe_opts_default(&po);
    po.kind = x->spec.probe == JOB_PROBE_MLP ? DIM_PROBE_MLP : DIM_PROBE_LINEAR;
    po.epochs = (int)x->spec.probe_epochs;
    struct dim_err err;
    int rc = dim_probe_model(x->m, tr, &x->test, &po, acc, &err);
    if (rc)
        return run_fail(x, rc == DIM_ENOMEM ? "out_of_memory" : "probe_failed",
                        "probe at step %llu: %s", (unsigned long long)x->step, err.msg);
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
    return o;
}

/* Flushes, then stores a checkpoint of the current step (probed when asked). */
static int run_checkpoint(struct run *x, bool probe)
{
    double acc[DIM_N_PROBE_TAPS];
    probe = probe && x->spec.probe != JOB_PROBE_NONE;
    if (probe) {
        if (run_probe(x, acc) != RUN_OK)
            return RUN_END;
        int64_t ms = clock_wall_ms();
        for (int t = 0; t < DIM_N_PROBE_TAPS; t++)
            if (push_point(x, probe_keys[t], acc[t], ms) != 0)
                return run_fail(x, "out_of_memory", "out of memory for metric points");
    }
    if (run_flush(x) != RUN_OK)
        return RUN_END;
    struct dim_err err;
    struct dim_train_progress prog;
    dim_trainer_progress(x->tr, &prog);
    x->ck.n = 0;
    const struct dim_writer wr = {dim_membuf_write, &x->ck};
    if (dim_checkpoint_write(x->m, &prog, &wr, &err) != 0)
        return run_fail(x, "checkpoint_failed", "writing the checkpoint at step %llu: %s",
                        (unsigned long long)x->step, err.msg);
    char hex[65];
    sha256_hex(x->ck.p, x->ck.n, hex);
    json_t *mj = checkpoint_metrics(x, probe ? acc : NULL);
    char *metrics = json_dumps(mj, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(DIMD_REAL_DIGITS));
    json_decref(mj);
    if (!metrics)
        return run_fail(x, "out_of_memory", "out of memory for checkpoint metrics");
    struct store_retention keep;
    memset(&keep, 0, sizeof keep);
    keep.keep_last = x->spec.keep_last > 1000000 ? 1000000 : (int)x->spec.keep_last;
    if (keep.keep_last < 1)
        keep.keep_last = 1;
    keep.keep_best = x->spec.keep_best > 1000000 ? 1000000 : (int)x->spec.keep_best;
    snprintf(keep.best_metric, sizeof keep.best_metric, "%s", x->spec.best_metric);
    keep.best_is_max = strncmp(keep.best_metric, "probe_", 6) == 0;
    int rc = store_checkpoint_put(x->r->store, x->id, x->attempt, (int64_t)x->step, x->ck.p,
                                  x->ck.n, hex, metrics, &keep, &err);
    free(metrics);
    if (rc != STORE_OK)
        return store_fail(x, rc, "checkpoint", &err);
    x->last_ckpt = x->step;
    return RUN_OK;
}

/* Re-reads the job after runner_job_changed (or at a flush). RUN_OK: keep going. */
static int run_check_state(struct run *x)
{
    struct store_job j;
    memset(&j, 0, sizeof j);
    struct dim_err err;
    int rc = store_job_get(x->r->store, x->id, &j, &err);
    if (rc != STORE_OK) {
        if (rc == STORE_ERROR) { /* transient: the next flush notices a real change */
            fprintf(stderr, "dimd: job %lld: re-reading state: %s\n", (long long)x->id, err.msg);
            return RUN_OK;
        }
        return RUN_END; /* deleted: nothing to write */
    }
    enum job_state st = j.state;
    int attempts = j.attempts;
    store_job_clear(&j);
    if (attempts != x->attempt)
        return RUN_END; /* taken over */
    if (st == JOB_RUNNING)
        return RUN_OK;
    if (st == JOB_PAUSED) { /* store accepts PAUSED for this attempt's last writes */
        if (x->tr && x->step != x->last_ckpt) /* an evaluation has no checkpoints */
            run_checkpoint(x, false);
        else
            run_flush(x);
        return RUN_END;
    }
    return RUN_END; /* CANCELLED, QUEUED again, or terminal: no writes */
}

/* SIGTERM: checkpoint (no probe), back to QUEUED. */
static int run_shutdown(struct run *x)
{
    if (x->m && x->tr) {
        if (x->step != x->last_ckpt) {
            if (run_checkpoint(x, false) != RUN_OK)
                return RUN_END;
        } else if (run_flush(x) != RUN_OK) {
            return RUN_END;
        }
    }
    struct dim_err err;
    int rc = store_job_finish(x->r->store, x->id, x->attempt, JOB_QUEUED, NULL, NULL, &err);
    if (rc == STORE_ERROR)
        fprintf(stderr, "dimd: job %lld: requeue at shutdown: %s\n", (long long)x->id, err.msg);
    return RUN_END;
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

/* Every probe_images-th image would bias towards the first classes of a
 * class-sorted folder, so the probe fits on an evenly strided subset instead. */
static int make_probe_subset(struct run *x)
{
    const struct dim_dataset *d = &x->train;
    size_t k = (size_t)x->spec.probe_images;
    if (k == 0 || k >= d->n)
        return 0;
    const size_t sz = (size_t)d->c * (size_t)d->h * (size_t)d->w;
    struct dim_dataset *s = &x->probe_train;
    *s = *d;
    s->n = k;
    s->class_names = NULL;
    s->px = malloc(k * sz);
    s->labels = malloc(k * sizeof *s->labels);
    if (!s->px || !s->labels) {
        free(s->px);
        free(s->labels);
        memset(s, 0, sizeof *s);
        return -1;
    }
    for (size_t i = 0; i < k; i++) {
        size_t j = (size_t)((double)i * (double)d->n / (double)k);
        memcpy(s->px + i * sz, d->px + j * sz, sz);
        s->labels[i] = d->labels[j];
    }
    return 0;
}

static void run_free(struct run *x)
{
    dim_trainer_free(x->tr);
    dim_model_free(x->m);
    dim_dataset_free(&x->train);
    dim_dataset_free(&x->test);
    free(x->probe_train.px);
    free(x->probe_train.labels);
    free(x->pts);
    free(x->ck.p);
}

/* Parses the spec, loads the data, builds or restores the model. */
static int run_setup(struct run *x, const struct store_job *job)
{
    struct runner *r = x->r;
    struct dim_err err;
    json_error_t jerr;
    json_t *body = json_loads(job->spec_json ? job->spec_json : "", 0, &jerr);
    if (!body)
        return run_fail(x, "invalid_spec", "stored spec is not JSON: %s", jerr.text);
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
            run_fail(x, "dataset_unavailable", "%s", msg ? msg : "dataset unavailable");
        else
            run_fail(x, "invalid_spec", "%s: %s%s", path ? path : "$", msg ? msg : "invalid",
                     n_bad > 1 ? " (and more)" : "");
        json_decref(errors);
        return RUN_END;
    }
    json_decref(errors);

    char path[4096];
    if (datasets_resolve(r->ds, x->spec.dataset, path, &err) != 0)
        return run_fail(x, "dataset_unavailable", "%s", err.msg);
    const struct dim_dataset_limits lim = {0, 64u << 20};
    if (dim_dataset_load(path, DIM_SPLIT_TRAIN, &lim, &x->train, &err) != 0)
        return run_fail(x, err.code == DIM_ENOMEM ? "out_of_memory" : "dataset_unavailable",
                        "dataset %s: %s", x->spec.dataset, err.msg);
    if (x->spec.probe != JOB_PROBE_NONE) {
        if (dim_dataset_load(path, DIM_SPLIT_TEST, &lim, &x->test, &err) != 0)
            return run_fail(x, err.code == DIM_ENOMEM ? "out_of_memory" : "dataset_unavailable",
                            "dataset %s (test split): %s", x->spec.dataset, err.msg);
        if (x->test.n_classes > x->train.n_classes)
            x->train.n_classes = x->test.n_classes;
        if (x->test.n == 0 || x->train.n_classes < 2)
            return run_fail(x, "probe_unavailable",
                            "dataset %s: a probe needs test images and at least 2 classes "
                            "(%zu test images, %d classes)",
                            x->spec.dataset, x->test.n, x->train.n_classes);
        if (make_probe_subset(x) != 0)
            return run_fail(x, "out_of_memory", "out of memory for the probe's images");
    }
    if (atomic_load(&r->stop))
        return run_shutdown(x);

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
            run_fail(x, "checkpoint_invalid",
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
            return run_fail(x, rc == DIM_ENOMEM ? "out_of_memory" : "checkpoint_invalid",
                            "checkpoint at step %lld: %s", (long long)ck_step, err.msg);
        if ((int64_t)prog.step != ck_step)
            return run_fail(x, "checkpoint_invalid",
                            "checkpoint stored as step %lld holds step %llu", (long long)ck_step,
                            (unsigned long long)prog.step);
        resumed = true;
    } else if (rc == STORE_NOT_FOUND) {
        struct dim_config cfg = x->spec.cfg;
        if (!x->spec.channels_set)
            cfg.in_c = x->train.c;
        rc = dim_model_create(&x->m, &cfg, true, &err);
        if (rc != 0)
            return run_fail(x, rc == DIM_ENOMEM ? "out_of_memory" : "invalid_config", "%s",
                            err.msg);
    } else {
        return store_fail(x, rc, "checkpoint read", &err);
    }
    struct dim_preprocess pp = dim_model_preprocess(x->m);
    pp.random_crop = (int)x->spec.random_crop;
    pp.random_flip = x->spec.random_flip;
    rc = dim_trainer_create(&x->tr, x->m, &x->train, &pp, &err);
    if (rc != 0) {
        const char *code = rc == DIM_ENOMEM   ? "out_of_memory"
                           : rc == DIM_EINVAL ? "dataset_too_small"
                                              : "invalid_config";
        return run_fail(x, code, "%s", err.msg);
    }
    if (resumed && (rc = dim_trainer_restore(x->tr, &prog, &err)) != 0)
        return run_fail(x, "checkpoint_invalid", "%s", err.msg);
    x->step = x->last_ckpt = resumed ? prog.step : 0;
    x->loss_on[0] = x->m->has_local;
    x->loss_on[1] = x->m->has_global;
    x->loss_on[2] = x->m->has_prior;
    x->loss_on[3] = x->m->has_prior;
    x->loss_on[4] = true;

    /* points after the checkpoint (or all, without one) belong to a dead attempt */
    rc = store_metrics_rewind(r->store, x->id, x->attempt, (int64_t)x->step, &err);
    if (rc != STORE_OK)
        return store_fail(x, rc, "metrics rewind", &err);
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
        return store_fail(x, rc, "total steps", &err);
    if (x->step > x->total)
        return run_fail(x, "checkpoint_invalid",
                        "the checkpoint is at step %llu, past the job's %llu steps",
                        (unsigned long long)x->step, (unsigned long long)x->total);
    /* points per flush window: size the buffer once for the expected window */
    x->cap_pts = 1024;
    x->pts = malloc(x->cap_pts * sizeof *x->pts);
    if (!x->pts)
        return run_fail(x, "out_of_memory", "out of memory for metric points");
    return RUN_OK;
}

/* ---- evaluation jobs ---- */

/* An evaluation's progress is its step out of EVAL_STEPS (eval_progress points). */
#define EVAL_STEPS 1000

struct eval_run {
    struct run *x;
    atomic_bool cancel;
    bool ended; /* the job was written (failed, paused, cancelled, requeued) or taken over */
};

/* dim_evaluate's progress callback, on the worker's thread: writes progress at
 * most every metrics_flush_ms and asks core to stop on shutdown or when the
 * job was cancelled, paused or taken over. */
static void eval_progress(void *ctx, const char *stage, double fraction)
{
    (void)stage;
    struct eval_run *e = ctx;
    struct run *x = e->x;
    if (e->ended)
        return;
    if (atomic_load_explicit(&x->r->stop, memory_order_relaxed)) {
        atomic_store(&e->cancel, true);
        return;
    }
    double now = clock_mono_s();
    if (now - x->last_flush < x->r->cfg.metrics_flush_ms / 1000.0)
        return;
    uint64_t step = (uint64_t)(fraction * EVAL_STEPS);
    if (step >= EVAL_STEPS)
        step = EVAL_STEPS - 1; /* the last step carries the results */
    if (step > x->step) {
        x->step = step;
        if (push_point(x, "eval_progress", fraction, clock_wall_ms()) != 0) {
            run_fail(x, "out_of_memory", "out of memory for metric points");
            e->ended = true;
        }
    }
    if (!e->ended && run_flush(x) != RUN_OK)
        e->ended = true;
    if (!e->ended && atomic_exchange(&x->w->changed, false) && run_check_state(x) != RUN_OK)
        e->ended = true;
    if (e->ended)
        atomic_store(&e->cancel, true);
}

/* Loads the version the spec names: its model and its dataset's two splits. */
static int eval_setup(struct run *x, const struct eval_spec *es)
{
    struct runner *r = x->r;
    struct dim_err err;
    char dataset[DATASET_NAME_MAX];
    int rc = version_model_load(r->store, es->model, es->version, &x->m, dataset, &err);
    if (rc == VERSION_MODEL_NOT_FOUND)
        return run_fail(x, "version_not_found", "model '%s' has no version v%d", es->model,
                        es->version);
    if (rc == VERSION_MODEL_ERROR)
        return store_fail(x, STORE_ERROR, "model read", &err);
    if (rc != VERSION_MODEL_OK)
        return run_fail(x, err.code == DIM_ENOMEM ? "out_of_memory" : "checkpoint_invalid",
                        "model '%s' v%d: %s", es->model, es->version, err.msg);
    char path[4096];
    const struct dim_dataset_limits lim = {0, 64u << 20};
    if (datasets_resolve(r->ds, dataset, path, &err) != 0 ||
        dim_dataset_load(path, DIM_SPLIT_TRAIN, &lim, &x->train, &err) != 0 ||
        dim_dataset_load(path, DIM_SPLIT_TEST, &lim, &x->test, &err) != 0)
        return run_fail(x, err.code == DIM_ENOMEM ? "out_of_memory" : "dataset_unavailable",
                        "dataset '%s' of model '%s' v%d: %s", dataset, es->model, es->version,
                        err.msg);
    if (x->test.n_classes > x->train.n_classes)
        x->train.n_classes = x->test.n_classes;
    /* an evaluation restarts from the beginning: drop a dead attempt's progress */
    rc = store_metrics_rewind(r->store, x->id, x->attempt, 0, &err);
    if (rc == STORE_OK)
        rc = store_job_set_total(r->store, x->id, x->attempt, EVAL_STEPS, &err);
    if (rc != STORE_OK)
        return store_fail(x, rc, "evaluation setup", &err);
    x->cap_pts = 64;
    x->pts = malloc(x->cap_pts * sizeof *x->pts);
    if (!x->pts)
        return run_fail(x, "out_of_memory", "out of memory for metric points");
    return RUN_OK;
}

/* Runs an evaluation job: dim_evaluate on the version's model, the results
 * stored with the version (store_evaluation_add) and as the job's last metric
 * points, step EVAL_STEPS. */
static void run_evaluation(struct run *x, const json_t *body)
{
    struct runner *r = x->r;
    struct eval_spec es;
    json_t *errors = json_array();
    int n_bad = evalspec_parse(body, &es, errors);
    if (n_bad || es.version == 0) {
        json_t *e0 = json_array_get(errors, 0);
        const char *msg = json_string_value(json_object_get(e0, "message"));
        run_fail(x, "invalid_spec", "%s: %s", json_string_value(json_object_get(e0, "path")) ?: "$",
                 n_bad ? msg : "the version is not resolved");
        json_decref(errors);
        return;
    }
    json_decref(errors);
    if (eval_setup(x, &es) != RUN_OK)
        return;
    struct eval_run e = {.x = x};
    atomic_init(&e.cancel, false);
    struct dim_eval_opts o = es.opts;
    o.progress = eval_progress;
    o.progress_ctx = &e;
    o.cancel = &e.cancel;
    const struct dim_preprocess pp = dim_model_preprocess(x->m);
    struct dim_eval_result res;
    struct dim_err err;
    x->last_flush = clock_mono_s();
    int rc = dim_evaluate(x->m, &x->train, &x->test, &pp, &o, &res, &err);
    if (e.ended) {
        /* written already */
    } else if (rc == DIM_ECANCELLED) {
        run_shutdown(x); /* the daemon stops: QUEUED again, from the start next time */
    } else if (rc != 0) {
        run_fail(x, rc == DIM_ENOMEM ? "out_of_memory" : "evaluation_failed", "%s", err.msg);
    } else {
        json_t *j = evalspec_result_json(&res);
        char *text = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(DIMD_REAL_DIGITS));
        json_decref(j);
        const char *keys[EVAL_MAX_KEYS];
        double values[EVAL_MAX_KEYS];
        size_t n = evalspec_result_points(&res, keys, values);
        x->step = EVAL_STEPS;
        int64_t ms = clock_wall_ms();
        int prc = push_point(x, "eval_progress", 1.0, ms);
        for (size_t i = 0; i < n && prc == 0; i++)
            prc = push_point(x, keys[i], values[i], ms);
        if (!text || prc != 0) {
            run_fail(x, "out_of_memory", "out of memory for the results");
        } else if ((rc = store_evaluation_add(r->store, es.model, es.version, x->id, text,
                                              res.grid_png, res.grid_png_size, NULL, &err)) ==
                   STORE_NOT_FOUND) {
            run_fail(x, "version_not_found", "model '%s' v%d was deleted during the evaluation",
                     es.model, es.version);
        } else if (rc != STORE_OK) {
            store_fail(x, rc, "evaluation results", &err);
        } else if (run_flush(x) == RUN_OK) {
            rc = store_job_finish(r->store, x->id, x->attempt, JOB_SUCCEEDED, NULL, NULL, &err);
            if (rc == STORE_ERROR)
                fprintf(stderr, "dimd: job %lld: recording success: %s\n", (long long)x->id,
                        err.msg);
        }
        free(text);
    }
    dim_eval_result_free(&res);
}

static void run_job(struct worker *w, const struct store_job *job)
{
    struct runner *r = w->r;
    struct run x;
    memset(&x, 0, sizeof x);
    x.r = r;
    x.w = w;
    x.id = job->id;
    x.attempt = job->attempts;
    json_t *body = json_loads(job->spec_json ? job->spec_json : "", 0, NULL);
    bool evaluation = evalspec_is_evaluation(body);
    if (evaluation)
        run_evaluation(&x, body);
    json_decref(body);
    if (evaluation || run_setup(&x, job) != RUN_OK)
        goto out;
    const double flush_s = r->cfg.metrics_flush_ms / 1000.0;
    const uint64_t every = x.spec.checkpoint_every ? x.spec.checkpoint_every : x.total;
    const uint64_t batch = x.m->cfg.batch;
    struct dim_losses l;
    struct dim_err err;
    x.last_flush = clock_mono_s();
    while (x.step < x.total) {
        if (atomic_load_explicit(&r->stop, memory_order_relaxed)) {
            run_shutdown(&x);
            goto out;
        }
        if (atomic_exchange(&w->changed, false) && run_check_state(&x) != RUN_OK)
            goto out;
        double t0 = clock_mono_s();
        int rc = dim_trainer_step(x.tr, &l, &err);
        double t1 = clock_mono_s();
        if (rc != 0) {
            if (run_flush(&x) != RUN_OK)
                goto out;
            if (rc == DIM_ENONFINITE) {
                /* core counts the steps taken before ("at step 1"); the job numbers
                 * the failed step itself (2): keep one numbering in the message */
                char *at = strstr(err.msg, " at step ");
                if (at && at[9] && strspn(at + 9, "0123456789") == strlen(at + 9))
                    *at = '\0';
                run_fail(&x, "non_finite_loss", "step %llu of %llu: %s",
                         (unsigned long long)x.step + 1, (unsigned long long)x.total, err.msg);
            } else
                run_fail(&x, dim_code_name(rc), "step %llu: %s", (unsigned long long)x.step + 1,
                         err.msg);
            goto out;
        }
        x.step++;
        x.win_steps++;
        x.win_s += t1 - t0;
        x.last = l;
        x.have_last = true;
        atomic_fetch_add_explicit(&r->steps_total, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&r->images_total, batch, memory_order_relaxed);
        if (push_losses(&x, &l) != 0) {
            run_fail(&x, "out_of_memory", "out of memory for metric points");
            goto out;
        }
        if (x.step % every == 0 || x.step == x.total) {
            if (run_checkpoint(&x, true) != RUN_OK)
                goto out;
        } else if (t1 - x.last_flush >= flush_s) {
            if (run_flush(&x) != RUN_OK || run_check_state(&x) != RUN_OK)
                goto out;
        }
    }
    if (x.step != x.last_ckpt && run_checkpoint(&x, true) != RUN_OK)
        goto out;
    int rc = store_job_finish(r->store, x.id, x.attempt, JOB_SUCCEEDED, NULL, NULL, &err);
    if (rc == STORE_ERROR)
        fprintf(stderr, "dimd: job %lld: recording success: %s\n", (long long)x.id, err.msg);
out:
    run_free(&x);
}

/* ---- workers ---- */

static int worker_claim(struct worker *w, struct store_job *job)
{
    struct runner *r = w->r;
    pthread_mutex_lock(&r->claim_mu);
    size_t n = 0;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->n_workers; i++)
        if (i != w->index && r->w[i].job_id != 0)
            w->skip[n++] = r->w[i].job_id;
    pthread_mutex_unlock(&r->mu);
    struct dim_err err;
    int rc = store_job_claim(r->store, w->skip, n, job, &err);
    if (rc == STORE_OK) {
        pthread_mutex_lock(&r->mu);
        w->job_id = job->id;
        w->rate = 0;
        r->busy++;
        pthread_mutex_unlock(&r->mu);
        /* a cancel or pause may have landed between the claim and the line above */
        atomic_store(&w->changed, true);
    } else if (rc == STORE_ERROR) {
        fprintf(stderr, "dimd: worker %d: claiming a job: %s\n", w->index, err.msg);
    }
    pthread_mutex_unlock(&r->claim_mu);
    return rc;
}

static void worker_release(struct worker *w)
{
    struct runner *r = w->r;
    pthread_mutex_lock(&r->mu);
    w->job_id = 0;
    w->rate = 0;
    r->busy--;
    r->wake_seq++; /* the job may be QUEUED again: let an idle worker look */
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct runner *r = w->r;
    /* this thread's compute: like cli_threads_use, but BLAS stays on one thread
     * (process-wide, set by runner_start) even when the pool cannot start */
    struct threadpool *pool = NULL;
    if (r->cfg.threads_per_worker > 1) {
        pool = threadpool_create(r->cfg.threads_per_worker - 1);
        if (pool)
            dim_parallel_use(threadpool_parallel(pool));
        else
            fprintf(stderr, "dimd: worker %d: cannot start %d compute threads; running serially\n",
                    w->index, r->cfg.threads_per_worker - 1);
    }
    while (!atomic_load(&r->stop)) {
        pthread_mutex_lock(&r->mu);
        uint64_t seen = r->wake_seq;
        pthread_mutex_unlock(&r->mu);
        struct store_job job;
        memset(&job, 0, sizeof job);
        if (worker_claim(w, &job) == STORE_OK) {
            run_job(w, &job);
            store_job_clear(&job);
            worker_release(w);
            continue;
        }
        store_job_clear(&job);
        /* poll in case a wake-up was missed */
        struct timespec until = clock_mono_ts(clock_mono_s() + 1.0);
        pthread_mutex_lock(&r->mu);
        while (!atomic_load(&r->stop) && r->wake_seq == seen)
            if (pthread_cond_timedwait(&r->cv, &r->mu, &until) == ETIMEDOUT)
                break;
        pthread_mutex_unlock(&r->mu);
    }
    dim_parallel_use(NULL);
    threadpool_free(pool);
    return NULL;
}

/* ---- public ---- */

static void runner_free(struct runner *r)
{
    for (int i = 0; i < r->n_workers; i++)
        free(r->w[i].skip);
    free(r->w);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->claim_mu);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

int runner_start(struct runner **out, struct dimd_store *store, const struct datasets *ds,
                 const struct runner_config *cfg, struct dim_err *err)
{
    *out = NULL;
    if (cfg->workers < 1 || cfg->workers > 1024)
        return dim_fail(err, DIM_EINVAL, "workers %d must be in [1, 1024]", cfg->workers);
    if (cfg->threads_per_worker < 1 || cfg->threads_per_worker > 1024)
        return dim_fail(err, DIM_EINVAL, "threads_per_worker %d must be in [1, 1024]",
                        cfg->threads_per_worker);
    if (cfg->metrics_flush_ms < 10)
        return dim_fail(err, DIM_EINVAL, "metrics_flush_ms %d must be >= 10",
                        cfg->metrics_flush_ms);
    struct runner *r = calloc(1, sizeof *r);
    if (!r)
        return dim_fail(err, DIM_ENOMEM, "out of memory for the runner");
    r->store = store;
    r->ds = ds;
    r->cfg = *cfg;
    r->n_workers = cfg->workers;
    atomic_init(&r->stop, false);
    atomic_init(&r->steps_total, 0);
    atomic_init(&r->images_total, 0);
    clock_cond_init(&r->cv);
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->claim_mu, NULL);
    r->w = calloc((size_t)r->n_workers, sizeof *r->w);
    if (!r->w) {
        runner_free(r);
        return dim_fail(err, DIM_ENOMEM, "out of memory for %d workers", cfg->workers);
    }
    for (int i = 0; i < r->n_workers; i++) {
        r->w[i].r = r;
        r->w[i].index = i;
        atomic_init(&r->w[i].changed, false);
        r->w[i].skip = malloc(sizeof(int64_t) * (size_t)r->n_workers);
        if (!r->w[i].skip) {
            runner_free(r);
            return dim_fail(err, DIM_ENOMEM, "out of memory for %d workers", cfg->workers);
        }
    }
    /* process-wide: every worker splits its products over its own pool */
    nn_blas_set_threads(1);
    for (int i = 0; i < r->n_workers; i++) {
        int rc = pthread_create(&r->w[i].thread, NULL, worker_main, &r->w[i]);
        if (rc != 0) {
            dim_fail(err, DIM_ENOMEM, "cannot start worker thread %d of %d: %s", i + 1,
                     r->n_workers, strerror(rc));
            runner_stop(r);
            return err ? err->code : DIM_ENOMEM;
        }
        r->n_started++;
    }
    *out = r;
    return 0;
}

void runner_wake(struct runner *r)
{
    pthread_mutex_lock(&r->mu);
    r->wake_seq++;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

void runner_job_changed(struct runner *r, int64_t job_id)
{
    if (job_id <= 0)
        return;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->n_workers; i++)
        if (r->w[i].job_id == job_id)
            atomic_store(&r->w[i].changed, true);
    pthread_mutex_unlock(&r->mu);
}

void runner_get_stats(struct runner *r, struct runner_stats *out)
{
    memset(out, 0, sizeof *out);
    out->steps_total = atomic_load(&r->steps_total);
    out->images_total = atomic_load(&r->images_total);
    pthread_mutex_lock(&r->mu);
    out->busy_workers = r->busy;
    for (int i = 0; i < r->n_workers; i++)
        if (r->w[i].job_id != 0)
            out->steps_per_second += r->w[i].rate;
    pthread_mutex_unlock(&r->mu);
}

void runner_stop(struct runner *r)
{
    if (!r)
        return;
    atomic_store(&r->stop, true);
    pthread_mutex_lock(&r->mu);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    for (int i = 0; i < r->n_started; i++)
        pthread_join(r->w[i].thread, NULL);
    runner_free(r);
}

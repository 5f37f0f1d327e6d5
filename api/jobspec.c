/* jobspec.c - the job JSON schema: run keys here, hyperparameters from
 * dim/hparams.h; parse with every error at once, and the resolved form. */
#include "api/jobspec.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dim/hparams.h"

enum run_type { RUN_STRING, RUN_UINT, RUN_NUMBER, RUN_BOOL, RUN_CHOICE };

struct run_key {
    const char *name;
    enum run_type type;
    double min, max;
    const char *const *choices; /* RUN_CHOICE: NULL-terminated */
    const char *help;
};

static const char *const probe_choices[] = {"none", "linear", "mlp", NULL};
static const char *const kind_choices[] = {"train", NULL};

/* The run keys, in the order the stored spec lists them (hyperparameters follow). */
static const struct run_key run_keys[] = {
    {"kind", RUN_CHOICE, 0, 0, kind_choices,
     "train (these keys); \"evaluate\" jobs have the keys of evaluate_fields"},
    {"name", RUN_STRING, 0, JOBSPEC_NAME_MAX - 1, NULL, "a label for the job"},
    {"dataset", RUN_STRING, 1, DATASET_NAME_MAX - 1, NULL,
     "a dataset name from GET /v1/datasets"},
    {"steps", RUN_UINT, 1, 1e12, NULL, "training steps (instead of epochs)"},
    {"epochs", RUN_NUMBER, 1e-6, 1e6, NULL, "passes over the training set (default 1)"},
    {"checkpoint_every", RUN_UINT, 1, 1e12, NULL,
     "steps between checkpoints (the last step always gets one)"},
    {"random_crop", RUN_UINT, 0, 16, NULL, "augmentation: pad N pixels and crop back at random"},
    {"random_flip", RUN_BOOL, 0, 0, NULL, "augmentation: random horizontal flips"},
    {"probe", RUN_CHOICE, 0, 0, probe_choices, "probe accuracies at every checkpoint"},
    {"probe_epochs", RUN_UINT, 1, 1000, NULL, "probe training epochs"},
    {"probe_images", RUN_UINT, 100, 1e9, NULL, "training images the probe fits on"},
    {"keep_last", RUN_UINT, 1, 1e6, NULL, "checkpoints kept: the newest N"},
    {"keep_best", RUN_UINT, 0, 1e6, NULL, "checkpoints kept: plus the best M by best_metric"},
    {"best_metric", RUN_STRING, 1, 63, NULL,
     "metric ranking checkpoints for keep_best (losses: lower is better; probe_*: higher)"},
    {"validation_images", RUN_UINT, 0, 1e9, NULL,
     "0: probes score on the test split; N: on N training images held out of training and "
     "of the probe's fit (a validation split; sweeps use it)"},
    {"ranks", RUN_UINT, 1, JOBSPEC_RANKS_MAX, NULL,
     "data-parallel processes started with mpirun, each on batch / ranks images of every "
     "batch (at most the daemon's max_ranks; batch must divide by it)"},
};
#define N_RUN_KEYS (sizeof run_keys / sizeof run_keys[0])

const char *job_probe_name(enum job_probe p)
{
    return (unsigned)p < 3 ? probe_choices[p] : "?";
}

void jobspec_default(struct job_spec *s)
{
    memset(s, 0, sizeof *s);
    strcpy(s->dataset, "fashion-mnist");
    dim_config_default(&s->cfg);
    s->epochs = 1.0;
    s->checkpoint_every = 500;
    s->probe = JOB_PROBE_LINEAR;
    s->probe_epochs = 10;
    s->probe_images = 10000;
    s->keep_last = 3;
    s->keep_best = 1;
    s->ranks = 1;
}

void jobspec_error(json_t *errors, const char *key, const char *fmt, ...)
{
    char path[96], msg[320];
    snprintf(path, sizeof path, key ? "$.%s" : "$", key);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_array_append_new(errors, json_pack("{s:s, s:s}", "path", path, "message", msg));
}

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

/* One hyperparameter; returns 0 or adds an error. */
static int parse_hparam(struct job_spec *s, const struct dim_hparam *h, const json_t *v,
                        json_t *errors)
{
    struct dim_err err;
    if (dim_hparam_is_text(h)) {
        if (!json_is_string(v)) {
            jobspec_error(errors, h->name, "must be a string, not %s", json_kind(v));
            return -1;
        }
        if (dim_hparam_parse(&s->cfg, h, json_string_value(v), &err) != 0) {
            jobspec_error(errors, h->name, "%s", err.msg);
            return -1;
        }
        return 0;
    }
    if (h->type == DIM_HP_FLOAT ? !json_is_number(v) : !json_is_integer(v)) {
        jobspec_error(errors, h->name, "must be %s, not %s",
                  h->type == DIM_HP_FLOAT ? "a number" : "an integer", json_kind(v));
        return -1;
    }
    if (dim_hparam_set_number(&s->cfg, h, json_number_value(v), &err) != 0) {
        jobspec_error(errors, h->name, "%s", err.msg);
        return -1;
    }
    if (strcmp(h->name, "channels") == 0)
        s->channels_set = true;
    return 0;
}

static int parse_run_key(struct job_spec *s, const struct run_key *k, const json_t *v,
                         json_t *errors)
{
    switch (k->type) {
    case RUN_STRING: {
        if (!json_is_string(v)) {
            jobspec_error(errors, k->name, "must be a string, not %s", json_kind(v));
            return -1;
        }
        size_t len = json_string_length(v);
        if (len < (size_t)k->min || len > (size_t)k->max) {
            jobspec_error(errors, k->name, "must have %.0f to %.0f characters, not %zu", k->min,
                      k->max, len);
            return -1;
        }
        if (strlen(json_string_value(v)) != len) {
            jobspec_error(errors, k->name, "must not contain NUL characters");
            return -1;
        }
        const char *t = json_string_value(v);
        if (strcmp(k->name, "name") == 0)
            strcpy(s->name, t);
        else if (strcmp(k->name, "dataset") == 0)
            strcpy(s->dataset, t);
        else
            strcpy(s->best_metric, t);
        return 0;
    }
    case RUN_UINT:
    case RUN_NUMBER: {
        if (k->type == RUN_UINT ? !json_is_integer(v) : !json_is_number(v)) {
            jobspec_error(errors, k->name, "must be %s, not %s",
                      k->type == RUN_UINT ? "an integer" : "a number", json_kind(v));
            return -1;
        }
        double x = json_number_value(v);
        if (!(x >= k->min && x <= k->max)) {
            jobspec_error(errors, k->name, "%g is out of range [%g, %g]", x, k->min, k->max);
            return -1;
        }
        uint64_t u = (uint64_t)x;
        if (strcmp(k->name, "steps") == 0)
            s->steps = u;
        else if (strcmp(k->name, "epochs") == 0)
            s->epochs = x;
        else if (strcmp(k->name, "checkpoint_every") == 0)
            s->checkpoint_every = u;
        else if (strcmp(k->name, "random_crop") == 0)
            s->random_crop = u;
        else if (strcmp(k->name, "probe_epochs") == 0)
            s->probe_epochs = u;
        else if (strcmp(k->name, "probe_images") == 0)
            s->probe_images = u;
        else if (strcmp(k->name, "keep_last") == 0)
            s->keep_last = u;
        else if (strcmp(k->name, "validation_images") == 0)
            s->validation_images = u;
        else if (strcmp(k->name, "ranks") == 0)
            s->ranks = u;
        else
            s->keep_best = u;
        return 0;
    }
    case RUN_BOOL:
        if (!json_is_boolean(v)) {
            jobspec_error(errors, k->name, "must be true or false, not %s", json_kind(v));
            return -1;
        }
        s->random_flip = json_is_true(v);
        return 0;
    case RUN_CHOICE:
        if (json_is_string(v)) {
            for (int i = 0; k->choices[i]; i++) {
                if (strcmp(json_string_value(v), k->choices[i]) == 0) {
                    s->probe = (enum job_probe)i;
                    return 0;
                }
            }
            jobspec_error(errors, k->name, "'%.64s' is not one of none, linear, mlp",
                      json_string_value(v));
        } else {
            jobspec_error(errors, k->name, "must be a string, not %s", json_kind(v));
        }
        return -1;
    }
    return -1;
}

static const struct run_key *run_key_find(const char *name)
{
    for (size_t i = 0; i < N_RUN_KEYS; i++)
        if (strcmp(run_keys[i].name, name) == 0)
            return &run_keys[i];
    return NULL;
}

/* Whether key names a metric this spec's jobs write. */
static bool metric_known(const struct job_spec *s, const char *key)
{
    struct dim_config c = s->cfg;
    bool local = c.beta > 0, global = c.alpha > 0, prior = c.gamma > 0;
    if (strcmp(key, "loss_total") == 0)
        return true;
    if (strcmp(key, "loss_local") == 0)
        return local;
    if (strcmp(key, "loss_global") == 0)
        return global;
    if (strcmp(key, "loss_prior_enc") == 0 || strcmp(key, "loss_prior_disc") == 0)
        return prior;
    if (strcmp(key, "probe_conv") == 0 || strcmp(key, "probe_fc") == 0 ||
        strcmp(key, "probe_y") == 0)
        return s->probe != JOB_PROBE_NONE;
    return false;
}

bool jobspec_sets_sweep(const json_t *body)
{
    return json_object_get(body, "sweep_id") || json_object_get(body, "trial");
}

int jobspec_parse(const json_t *body, jobspec_dataset_check check, const void *ctx,
                  struct job_spec *out, json_t *errors)
{
    size_t before = json_array_size(errors);
    jobspec_default(out);
    if (!json_is_object(body)) {
        jobspec_error(errors, NULL, "the job must be a JSON object, not %s", json_kind(body));
        return 1;
    }
    bool steps_given = false, epochs_given = false, best_given = false;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)body, key, v) {
        if (json_is_null(v))
            continue; /* null: the default */
        if (strcmp(key, "kind") == 0) { /* "evaluate" bodies go to api/evalspec.h */
            if (!json_is_string(v) || strcmp(json_string_value(v), "train") != 0)
                jobspec_error(errors, key, "must be \"train\" (the default) or \"evaluate\"");
            continue;
        }
        if (strcmp(key, "sweep_id") == 0 || strcmp(key, "trial") == 0) {
            /* written by sweeps (service/sweeps.c) into their trials' specs */
            double lo = strcmp(key, "trial") == 0 ? 0 : 1;
            if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > 1e15)
                jobspec_error(errors, key, "must be an integer >= %.0f", lo);
            else if (strcmp(key, "sweep_id") == 0)
                out->sweep_id = (int64_t)json_integer_value(v);
            else
                out->trial = (int64_t)json_integer_value(v);
            continue;
        }
        const struct dim_hparam *h = dim_hparam_find(key);
        const struct run_key *k = h ? NULL : run_key_find(key);
        if (!h && !k) {
            jobspec_error(errors, key, "unknown field (see GET /v1/job-schema)");
            continue;
        }
        int rc = h ? parse_hparam(out, h, v, errors) : parse_run_key(out, k, v, errors);
        if (rc == 0 && k) {
            steps_given |= strcmp(key, "steps") == 0;
            epochs_given |= strcmp(key, "epochs") == 0;
            best_given |= strcmp(key, "best_metric") == 0;
        }
    }
    if (steps_given && epochs_given)
        jobspec_error(errors, "epochs", "give steps or epochs, not both");
    if (!steps_given)
        out->steps = 0;
    if (!best_given)
        strcpy(out->best_metric, out->probe != JOB_PROBE_NONE ? "probe_y" : "loss_total");
    else if (!metric_known(out, out->best_metric))
        jobspec_error(errors, "best_metric",
                  "'%s' is not a metric this job writes (loss_total, the losses of its terms, "
                  "or probe_conv/probe_fc/probe_y when probing)",
                  out->best_metric);
    if (out->validation_images && out->probe == JOB_PROBE_NONE)
        jobspec_error(errors, "validation_images",
                      "a validation split is for the probe, and probe is none");
    struct dim_err err;
    if (check(ctx, out->dataset, &err) != 0)
        jobspec_error(errors, "dataset", "%s", err.msg);
    struct dim_config c = out->cfg;
    if (!out->channels_set)
        c.in_c = 1;
    /* lr_horizon 0 is the run's length: known here when steps is given (with epochs it
     * needs the dataset's size, and the job checks it when it starts) */
    if (steps_given && c.lr_horizon == 0 && c.lr_warmup > out->steps)
        jobspec_error(errors, "lr_warmup",
                      "lr_warmup %llu is longer than the run's %llu steps (lr_horizon 0: the "
                      "schedule spans the run)",
                      (unsigned long long)c.lr_warmup, (unsigned long long)out->steps);
    /* each rank takes batch / ranks images (not when batch or ranks is itself wrong) */
    bool batch_bad = false;
    for (size_t i = before; i < json_array_size(errors); i++) {
        const char *p = json_string_value(json_object_get(json_array_get(errors, i), "path"));
        batch_bad = batch_bad || (p && (strcmp(p, "$.batch") == 0 || strcmp(p, "$.ranks") == 0));
    }
    if (out->sweep_id && out->ranks > 1) /* rungs wait inside the daemon's step loop */
        jobspec_error(errors, "ranks", "a sweep's trials train in the daemon: ranks must be 1");
    if (!batch_bad && out->ranks > 1 && c.batch % out->ranks != 0)
        jobspec_error(errors, "ranks", "batch %u does not split evenly over %llu ranks",
                      c.batch, (unsigned long long)out->ranks);
    if (json_array_size(errors) == before && dim_config_validate(&c, &err) != 0) {
        /* the message starts with the field it is about ("channels 2 must be 1 or 3"),
         * unless it is about several ("alpha and beta are both 0") */
        char field[32] = "";
        sscanf(err.msg, "%31[a-z0-9_]", field);
        const char *next = err.msg + strlen(field);
        bool one = dim_hparam_find(field) && strncmp(next, " and ", 5) != 0;
        jobspec_error(errors, one ? field : NULL, "%s", err.msg);
    }
    return (int)(json_array_size(errors) - before);
}

int jobspec_check_limits(const struct job_spec *s, long max_ranks, json_t *errors)
{
    if ((long long)s->ranks <= (long long)max_ranks)
        return 0;
    jobspec_error(errors, "ranks", "%llu ranks is more than this daemon's max_ranks (%ld)",
                  (unsigned long long)s->ranks, max_ranks);
    return 1;
}

json_t *jobspec_hparams_json(const struct dim_config *c)
{
    json_t *o = json_object();
    for (size_t i = 0; i < dim_n_hparams; i++) {
        const struct dim_hparam *h = &dim_hparams[i];
        if (dim_hparam_is_text(h)) {
            char v[64];
            dim_hparam_format(c, h, v, sizeof v);
            json_object_set_new(o, h->name, json_string(v));
        } else if (h->type == DIM_HP_FLOAT) {
            /* the float as its shortest decimal, so 1e-4 reads back as 0.0001, not 0.000099999997 */
            char v[32];
            float f = (float)dim_hparam_get_number(c, h);
            for (int prec = 1; prec <= 9; prec++) {
                snprintf(v, sizeof v, "%.*g", prec, (double)f);
                if ((float)strtod(v, NULL) == f)
                    break;
            }
            json_object_set_new(o, h->name, json_real(strtod(v, NULL)));
        } else if (h->type == DIM_HP_U64) { /* exact: a double loses bits above 2^53 */
            uint64_t v;
            memcpy(&v, (const char *)c + h->offset, sizeof v);
            json_object_set_new(o, h->name, json_integer((json_int_t)v));
        } else {
            json_object_set_new(o, h->name, json_integer((json_int_t)dim_hparam_get_number(c, h)));
        }
    }
    return o;
}

json_t *jobspec_to_json(const struct job_spec *s)
{
    json_t *o = json_object();
    json_object_set_new(o, "kind", json_string("train"));
    json_object_set_new(o, "name", s->name[0] ? json_string(s->name) : json_null());
    json_object_set_new(o, "dataset", json_string(s->dataset));
    json_object_set_new(o, "steps", s->steps ? json_integer((json_int_t)s->steps) : json_null());
    json_object_set_new(o, "epochs", s->steps ? json_null() : json_real(s->epochs));
    json_object_set_new(o, "checkpoint_every", json_integer((json_int_t)s->checkpoint_every));
    json_object_set_new(o, "random_crop", json_integer((json_int_t)s->random_crop));
    json_object_set_new(o, "random_flip", json_boolean(s->random_flip));
    json_object_set_new(o, "probe", json_string(job_probe_name(s->probe)));
    json_object_set_new(o, "probe_epochs", json_integer((json_int_t)s->probe_epochs));
    json_object_set_new(o, "probe_images", json_integer((json_int_t)s->probe_images));
    json_object_set_new(o, "keep_last", json_integer((json_int_t)s->keep_last));
    json_object_set_new(o, "keep_best", json_integer((json_int_t)s->keep_best));
    json_object_set_new(o, "best_metric", json_string(s->best_metric));
    json_object_set_new(o, "validation_images", json_integer((json_int_t)s->validation_images));
    json_object_set_new(o, "ranks", json_integer((json_int_t)s->ranks));
    if (s->sweep_id) {
        json_object_set_new(o, "sweep_id", json_integer((json_int_t)s->sweep_id));
        json_object_set_new(o, "trial", json_integer((json_int_t)s->trial));
    }
    json_t *hp = jobspec_hparams_json(&s->cfg);
    json_object_update(o, hp);
    json_decref(hp);
    if (!s->channels_set)
        json_object_set_new(o, "channels", json_null());
    return o;
}

uint64_t jobspec_total_steps(const struct job_spec *s, uint64_t n_train)
{
    if (s->steps)
        return s->steps;
    uint64_t spe = s->cfg.batch ? n_train / s->cfg.batch : 0;
    uint64_t t = (uint64_t)ceil(s->epochs * (double)spe);
    return t ? t : 1;
}

json_t *jobspec_schema_json(void)
{
    struct job_spec d;
    jobspec_default(&d);
    json_t *spec = jobspec_to_json(&d);
    json_t *fields = json_array();
    for (size_t i = 0; i < N_RUN_KEYS; i++) {
        const struct run_key *k = &run_keys[i];
        static const char *const types[] = {"string", "integer", "number", "boolean", "string"};
        json_t *f = json_pack("{s:s, s:s, s:O, s:s}", "name", k->name, "type", types[k->type],
                              "default", json_object_get(spec, k->name), "help", k->help);
        if (k->type == RUN_UINT) {
            json_object_set_new(f, "minimum", json_integer((json_int_t)k->min));
            json_object_set_new(f, "maximum", json_integer((json_int_t)k->max));
        } else if (k->type == RUN_NUMBER) {
            json_object_set_new(f, "minimum", json_real(k->min));
            json_object_set_new(f, "maximum", json_real(k->max));
        }
        if (k->type == RUN_CHOICE) {
            json_t *e = json_array();
            for (int c = 0; k->choices[c]; c++)
                json_array_append_new(e, json_string(k->choices[c]));
            json_object_set_new(f, "enum", e);
        }
        json_array_append_new(fields, f);
    }
    for (size_t i = 0; i < dim_n_hparams; i++) {
        const struct dim_hparam *h = &dim_hparams[i];
        bool text = dim_hparam_is_text(h);
        const char *type = text ? "string" : h->type == DIM_HP_FLOAT ? "number" : "integer";
        json_t *f = json_pack("{s:s, s:s, s:O, s:s}", "name", h->name, "type", type, "default",
                              json_object_get(spec, h->name), "help", h->help);
        if (text) {
            json_t *e = json_array();
            for (int c = (int)h->min; c <= (int)h->max; c++) {
                struct dim_config tmp = d.cfg;
                dim_hparam_set_number(&tmp, h, c, NULL);
                char v[64];
                dim_hparam_format(&tmp, h, v, sizeof v);
                json_array_append_new(e, json_string(v));
            }
            json_object_set_new(f, "enum", e);
        } else if (strcmp(h->name, "channels") == 0) { /* grey or RGB */
            json_object_set_new(f, "enum", json_pack("[i, i]", 1, 3));
        } else if (h->type == DIM_HP_FLOAT) {
            json_object_set_new(f, "minimum", json_real(h->min));
            json_object_set_new(f, "maximum", json_real(h->max));
        } else {
            json_object_set_new(f, "minimum", json_integer((json_int_t)h->min));
            json_object_set_new(f, "maximum", json_integer((json_int_t)h->max));
        }
        json_array_append_new(fields, f);
    }
    json_decref(spec);
    return fields;
}

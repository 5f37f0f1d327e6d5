/* evalspec.c - the evaluation job schema (api/evalspec.h). */
#include "api/evalspec.h"

#include <stdarg.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A numeric budget field of struct dim_eval_opts. */
enum num_type { NUM_INT, NUM_SIZE, NUM_U64 };
struct num_key {
    const char *name;
    enum num_type type;
    size_t offset;
    double min, max;
    const char *help;
};

#define OPT(field) offsetof(struct dim_eval_opts, field)
static const struct num_key num_keys[] = {
    {"seed", NUM_U64, OPT(seed), 0, 9007199254740991.0, "base seed of every measure"},
    {"max_train", NUM_SIZE, OPT(max_train), 0, 1e9,
     "training images used, evenly spaced (0: all)"},
    {"max_test", NUM_SIZE, OPT(max_test), 0, 1e9, "test images used, evenly spaced (0: all)"},
    {"probe_epochs", NUM_INT, OPT(probe_epochs), 1, 1000,
     "epochs of the MLP probe (the linear probe and the SVM are solved to convergence)"},
    {"ndm_steps", NUM_INT, OPT(ndm_steps), 1, 1000000, "NDM discriminator updates"},
    {"mine_steps", NUM_INT, OPT(mine_steps), 1, 1000000, "MINE critic updates"},
    {"recon_epochs", NUM_INT, OPT(recon_epochs), 1, 1000, "decoder epochs"},
    {"grid_pairs", NUM_INT, OPT(grid_pairs), 0, 64,
     "original/reconstruction pairs in the grid image (0: none)"},
};
#define N_NUM_KEYS (sizeof num_keys / sizeof num_keys[0])

static double num_get(const struct dim_eval_opts *o, const struct num_key *k)
{
    const char *p = (const char *)o + k->offset;
    switch (k->type) {
    case NUM_INT: return *(const int *)(const void *)p;
    case NUM_SIZE: return (double)*(const size_t *)(const void *)p;
    case NUM_U64: return (double)*(const uint64_t *)(const void *)p;
    }
    return 0;
}

static void num_set(struct dim_eval_opts *o, const struct num_key *k, json_int_t v)
{
    char *p = (char *)o + k->offset;
    switch (k->type) {
    case NUM_INT: *(int *)(void *)p = (int)v; break;
    case NUM_SIZE: *(size_t *)(void *)p = (size_t)v; break;
    case NUM_U64: *(uint64_t *)(void *)p = (uint64_t)v; break;
    }
}

bool evalspec_is_evaluation(const json_t *body)
{
    const char *k = json_string_value(json_object_get(body, "kind"));
    return k && strcmp(k, "evaluate") == 0;
}

void evalspec_default(struct eval_spec *s)
{
    memset(s, 0, sizeof *s);
    dim_eval_opts_default(&s->opts);
}

/* "v3", "3", 3 or "latest" (0). */
static bool parse_version(const json_t *v, int *out)
{
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        if (n < 1 || n > INT32_MAX)
            return false;
        *out = (int)n;
        return true;
    }
    return model_version_parse(json_string_value(v), out);
}

static void parse_measures(const json_t *v, struct eval_spec *s, json_t *errors)
{
    struct dim_err err;
    unsigned mask = 0;
    if (json_is_string(v)) {
        if (dim_measure_parse(json_string_value(v), &mask, &err) != 0)
            jobspec_error(errors, "measures", "%s", err.msg);
    } else if (json_is_array(v) && json_array_size(v) > 0) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            unsigned one;
            char path[48];
            snprintf(path, sizeof path, "measures[%zu]", i);
            if (!json_is_string(e))
                jobspec_error(errors, path, "must be a string");
            else if (dim_measure_parse(json_string_value(e), &one, &err) != 0)
                jobspec_error(errors, path, "%s", err.msg);
            else
                mask |= one;
        }
    } else {
        jobspec_error(errors, "measures",
                  "must be a non-empty list of linear, mlp, svm, ndm, mine, recon (or \"all\")");
    }
    if (mask)
        s->opts.measures = mask;
}

int evalspec_parse(const json_t *body, struct eval_spec *out, json_t *errors)
{
    size_t before = json_array_size(errors);
    evalspec_default(out);
    if (!json_is_object(body)) {
        jobspec_error(errors, NULL, "the job must be a JSON object");
        return 1;
    }
    bool model_given = false;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)body, key, v) {
        if (json_is_null(v))
            continue;
        if (strcmp(key, "kind") == 0) {
            if (!evalspec_is_evaluation(body))
                jobspec_error(errors, key, "must be \"evaluate\" here");
        } else if (strcmp(key, "name") == 0) {
            const char *t = json_string_value(v);
            if (!t || json_string_length(v) >= JOBSPEC_NAME_MAX || strlen(t) != json_string_length(v))
                jobspec_error(errors, key, "must be a string of at most %d characters",
                          JOBSPEC_NAME_MAX - 1);
            else
                strcpy(out->name, t);
        } else if (strcmp(key, "model") == 0) {
            const char *t = json_string_value(v);
            if (!t || !model_name_ok(t))
                jobspec_error(errors, key, "must be a model name (lower-case letters, digits, _ and -)");
            else
                strcpy(out->model, t);
            model_given = true;
        } else if (strcmp(key, "version") == 0) {
            if (!parse_version(v, &out->version))
                jobspec_error(errors, key, "must be \"vN\", N or \"latest\"");
        } else if (strcmp(key, "measures") == 0) {
            parse_measures(v, out, errors);
        } else {
            const struct num_key *k = NULL;
            for (size_t i = 0; i < N_NUM_KEYS && !k; i++)
                if (strcmp(num_keys[i].name, key) == 0)
                    k = &num_keys[i];
            if (!k) {
                jobspec_error(errors, key, "unknown field of an evaluation (see GET /v1/job-schema)");
            } else if (!json_is_integer(v)) {
                jobspec_error(errors, key, "%s must be an integer", key);
            } else {
                json_int_t n = json_integer_value(v);
                if ((double)n < k->min || (double)n > k->max)
                    jobspec_error(errors, key, "%s %lld is out of range [%.0f, %.0f]", key,
                                  (long long)n, k->min, k->max);
                else
                    num_set(&out->opts, k, n);
            }
        }
    }
    if (!model_given)
        jobspec_error(errors, "model", "is required: the model whose version to evaluate");
    return (int)(json_array_size(errors) - before);
}

json_t *evalspec_to_json(const struct eval_spec *s)
{
    json_t *o = json_object();
    json_object_set_new(o, "kind", json_string("evaluate"));
    json_object_set_new(o, "name", s->name[0] ? json_string(s->name) : json_null());
    json_object_set_new(o, "model", json_string(s->model));
    char v[16];
    snprintf(v, sizeof v, "v%d", s->version);
    json_object_set_new(o, "version", s->version ? json_string(v) : json_string("latest"));
    json_t *m = json_array();
    for (int i = 0; i < DIM_N_MEASURES; i++)
        if (s->opts.measures & (1u << i))
            json_array_append_new(m, json_string(dim_measure_name(1u << i)));
    json_object_set_new(o, "measures", m);
    for (size_t i = 0; i < N_NUM_KEYS; i++)
        json_object_set_new(o, num_keys[i].name,
                            json_integer((json_int_t)num_get(&s->opts, &num_keys[i])));
    return o;
}

json_t *evalspec_schema_json(void)
{
    struct eval_spec d;
    evalspec_default(&d);
    json_t *fields = json_array();
    json_array_append_new(fields, json_pack("{s:s, s:s, s:s, s:[s], s:s}", "name", "kind", "type",
                                            "string", "default", "evaluate", "enum", "evaluate",
                                            "help", "an evaluation of a model version"));
    json_array_append_new(fields, json_pack("{s:s, s:s, s:n, s:s}", "name", "name", "type",
                                            "string", "default", "help", "a label for the job"));
    json_array_append_new(fields, json_pack("{s:s, s:s, s:n, s:s}", "name", "model", "type",
                                            "string", "default", "help",
                                            "the model (required)"));
    json_array_append_new(fields, json_pack("{s:s, s:s, s:s, s:s}", "name", "version", "type",
                                            "string", "default", "latest", "help",
                                            "vN, or latest (resolved at submission)"));
    json_t *all = json_array();
    for (int i = 0; i < DIM_N_MEASURES; i++)
        json_array_append_new(all, json_string(dim_measure_name(1u << i)));
    json_array_append_new(fields, json_pack("{s:s, s:s, s:O, s:o, s:s}", "name", "measures",
                                            "type", "array", "default", all, "enum", all,
                                            "help", "the measures to run"));
    for (size_t i = 0; i < N_NUM_KEYS; i++) {
        const struct num_key *k = &num_keys[i];
        json_array_append_new(
            fields, json_pack("{s:s, s:s, s:I, s:I, s:I, s:s}", "name", k->name, "type", "integer",
                              "default", (json_int_t)num_get(&d.opts, k), "minimum",
                              (json_int_t)k->min, "maximum", (json_int_t)k->max, "help", k->help));
    }
    return fields;
}

size_t evalspec_metric_keys(unsigned measures, const char *keys[EVAL_MAX_KEYS])
{
    struct dim_eval_result r;
    memset(&r, 0, sizeof r);
    r.measures = measures;
    const char *results[EVAL_MAX_KEYS];
    double values[EVAL_MAX_KEYS];
    size_t n = evalspec_result_points(&r, results, values);
    keys[0] = "eval_progress";
    memcpy(keys + 1, results, n * sizeof *keys);
    keys[n + 1] = NULL;
    return n + 1;
}

/* A number, or null when it is NaN (a measure not run, or failed). */
static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* {"conv": a, "fc": a, "y": a, "pixels": a}: test accuracies by row. */
static json_t *rows_json(const double v[DIM_PROBE_ROWS])
{
    json_t *o = json_object();
    for (int t = 0; t < DIM_PROBE_ROWS; t++)
        json_object_set_new(o, dim_probe_row_name(t), num(v[t]));
    return o;
}

/* A converged classifier's rows: accuracies, and under "fit" each solve's
 * chosen lambda, validation accuracy, iterations, gradient norm and stop. */
static json_t *linclass_json(const struct dim_linclass_result r[DIM_PROBE_ROWS])
{
    double acc[DIM_PROBE_ROWS];
    json_t *fit = json_object();
    for (int t = 0; t < DIM_PROBE_ROWS; t++) {
        acc[t] = r[t].accuracy;
        json_object_set_new(
            fit, dim_probe_row_name(t),
            isfinite(r[t].accuracy)
                ? json_pack("{s:o, s:o, s:i, s:i, s:o, s:s, s:o}", "lambda", num(r[t].lambda),
                            "val_accuracy", num(r[t].val_accuracy), "iterations",
                            r[t].iterations, "path_iterations", r[t].path_iterations, "gnorm",
                            num(r[t].gnorm), "stop", nn_lbfgs_stop_name(r[t].stop), "seconds",
                            num(r[t].seconds))
                : json_null());
    }
    json_t *o = rows_json(acc);
    json_object_set_new(o, "fit", fit);
    return o;
}

json_t *evalspec_result_json(const struct dim_eval_result *r)
{
    json_t *o = json_object();
    json_t *names = json_array(), *secs = json_object();
    json_object_set_new(secs, "features", num(r->seconds_features));
    for (int i = 0; i < DIM_N_MEASURES; i++)
        if (r->measures & (1u << i)) {
            json_array_append_new(names, json_string(dim_measure_name(1u << i)));
            json_object_set_new(secs, dim_measure_name(1u << i), num(r->seconds[i]));
        }
    json_object_set_new(secs, "total", num(r->seconds_total));
    json_object_set_new(o, "measures", names);
    json_object_set_new(o, "n_train", json_integer((json_int_t)r->n_train));
    json_object_set_new(o, "n_test", json_integer((json_int_t)r->n_test));
    if (r->measures & DIM_MEASURE_LINEAR)
        json_object_set_new(o, "linear", linclass_json(r->linear));
    if (r->measures & DIM_MEASURE_MLP)
        json_object_set_new(o, "mlp", rows_json(r->mlp));
    if (r->measures & DIM_MEASURE_SVM)
        json_object_set_new(o, "svm", linclass_json(r->svm));
    if (r->measures & DIM_MEASURE_NDM) {
        json_object_set_new(o, "ndm", num(r->ndm));
        json_object_set_new(o, "ndm_sigmoid", num(r->ndm_sigmoid));
    }
    if (r->measures & DIM_MEASURE_MINE)
        json_object_set_new(o, "mine", num(r->mine));
    if (r->measures & DIM_MEASURE_RECON) {
        json_object_set_new(o, "recon_mse", num(r->recon_mse));
        json_object_set_new(o, "ssim", num(r->ssim));
        json_object_set_new(o, "ms_ssim", num(r->ms_ssim));
        json_object_set_new(o, "ms_ssim_scales", json_integer(r->ms_ssim_scales));
    }
    json_t *failed = json_array();
    for (int i = 0; i < DIM_N_MEASURES; i++)
        if (r->failed & (1u << i))
            json_array_append_new(failed, json_string(dim_measure_name(1u << i)));
    json_object_set_new(o, "failed", failed);
    json_object_set_new(o, "failure", r->failed ? json_string(r->failure) : json_null());
    json_object_set_new(o, "seconds", secs);
    return o;
}

void evalspec_result_upgrade(json_t *results)
{
    static const char *const classifiers[3] = {"linear", "mlp", "svm"};
    if (!json_is_object(results))
        return;
    for (int c = 0; c < 3; c++) {
        json_t *o = json_object_get(results, classifiers[c]);
        if (!json_is_object(o))
            continue;
        json_t *mean = json_object_get(o, "mean");
        if (c == 2 && json_is_object(mean)) { /* the old SVM: mean and std over seeds */
            json_t *rows = json_deep_copy(mean);
            json_object_set_new(results, classifiers[c], rows);
            o = rows;
        }
        for (int t = 0; t < DIM_PROBE_ROWS; t++)
            if (!json_object_get(o, dim_probe_row_name(t)))
                json_object_set_new(o, dim_probe_row_name(t), json_null());
        if (c != 1 && !json_object_get(o, "fit")) {
            json_t *fit = json_object();
            for (int t = 0; t < DIM_PROBE_ROWS; t++)
                json_object_set_new(fit, dim_probe_row_name(t), json_null());
            json_object_set_new(o, "fit", fit);
        }
    }
}

size_t evalspec_result_points(const struct dim_eval_result *r, const char *keys[EVAL_MAX_KEYS],
                              double values[EVAL_MAX_KEYS])
{
    static const char *const rows[3][DIM_PROBE_ROWS] = {
        {"eval_linear_conv", "eval_linear_fc", "eval_linear_y", "eval_linear_pixels"},
        {"eval_mlp_conv", "eval_mlp_fc", "eval_mlp_y", "eval_mlp_pixels"},
        {"eval_svm_conv", "eval_svm_fc", "eval_svm_y", "eval_svm_pixels"},
    };
    size_t n = 0;
#define PUT(k, v) (keys[n] = (k), values[n] = (v), n++)
    for (int m = 0; m < 3; m++) /* linear, mlp, svm: the first three measure bits */
        if (r->measures & (1u << m))
            for (int t = 0; t < DIM_PROBE_ROWS; t++)
                PUT(rows[m][t], m == 1 ? r->mlp[t] : m == 0 ? r->linear[t].accuracy
                                                            : r->svm[t].accuracy);
    if (r->measures & DIM_MEASURE_NDM) {
        PUT("eval_ndm", r->ndm);
        PUT("eval_ndm_sigmoid", r->ndm_sigmoid);
    }
    if (r->measures & DIM_MEASURE_MINE)
        PUT("eval_mine", r->mine);
    if (r->measures & DIM_MEASURE_RECON) {
        PUT("eval_ssim", r->ssim);
        PUT("eval_ms_ssim", r->ms_ssim);
        PUT("eval_recon_mse", r->recon_mse);
    }
#undef PUT
    return n;
}

/* test_jobspec.c - the training job spec (api/jobspec.h), in C rather than over
 * HTTP (tests/e2e/test_validation.py), so every branch of the parser is cheap
 * to reach.
 *
 * What is checked: a body with only a dataset resolves to jobspec_default's
 * spec (best_metric filled from the probe), and null means "the default";
 * every error class carries the JSON path of the offending key ("$" for a
 * non-object or a problem about several fields): unknown keys, wrong types,
 * values just outside the bounds of dim/hparams.h and of the run keys (and the
 * bounds themselves accepted), steps with epochs, a best_metric the job does
 * not write, a dataset the check callback refuses (its message passed through
 * and its ctx handed back); all problems of a body are reported at once and
 * counted from the array's previous size; parse(to_json(s)) gives s back for a
 * spec that differs from the default in every key; total steps for steps and
 * for epochs (ceil over whole batches); the schema lists every key of the
 * stored spec, every hyperparameter with its bounds and its default.
 *
 * The dataset callback of these tests accepts only "fashion-mnist" and
 * "root/dir".
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/jobspec.h"
#include "specfix.h"
#include "dim/hparams.h"

#define REFUSED_FMT "dataset '%s' is not one the test knows"

struct check_ctx {
    int calls;
    char last[DATASET_NAME_MAX];
};

static int check_dataset(const void *ctx, const char *name, struct dim_err *err)
{
    struct check_ctx *c = (struct check_ctx *)ctx;
    c->calls++;
    snprintf(c->last, sizeof c->last, "%s", name);
    if (strcmp(name, "fashion-mnist") == 0 || strcmp(name, "root/dir") == 0)
        return 0;
    return dim_fail(err, DIM_ENOENT, REFUSED_FMT, name);
}

/* Parses text; returns the error array (a new reference) and the count in *n. */
static json_t *parse_text(const char *text, struct job_spec *s, int *n)
{
    struct check_ctx ctx = {0};
    json_t *body = specfix_load(text);
    json_t *errors = json_array();
    *n = jobspec_parse(body, check_dataset, &ctx, s, errors);
    json_decref(body);
    assert_int_equal(*n, (int)json_array_size(errors));
    return errors;
}

/* Asserts that text parses without errors into *s. */
static void parse_ok(const char *text, struct job_spec *s)
{
    int n;
    json_t *errors = parse_text(text, s, &n);
    if (n != 0) {
        char *e = json_dumps(errors, 0);
        fail_msg("%s: expected no errors, got %s", text, e);
    }
    json_decref(errors);
}

/* Asserts that text gives exactly the errors at `paths` (n of them, in any
 * order), each with a message. */
static void expect_paths(const char *text, int n_paths, ...)
{
    struct job_spec s;
    int n;
    json_t *errors = parse_text(text, &s, &n);
    va_list ap;
    va_start(ap, n_paths);
    specfix_expect_paths(errors, text, n_paths, ap);
    va_end(ap);
    json_decref(errors);
}

static void assert_json_equal(json_t *a, json_t *b)
{
    if (!json_equal(a, b)) {
        char *x = json_dumps(a, JSON_SORT_KEYS), *y = json_dumps(b, JSON_SORT_KEYS);
        fail_msg("JSON differs:\n  %s\n  %s", x, y);
    }
}

static void test_dataset_only_body_gives_the_defaults(void **state)
{
    (void)state;
    struct job_spec s, d;
    parse_ok("{\"dataset\": \"fashion-mnist\"}", &s);
    jobspec_default(&d);
    /* the one key parse resolves beyond the defaults: best_metric follows the probe */
    assert_string_equal(d.best_metric, "");
    assert_string_equal(s.best_metric, "probe_y");
    strcpy(d.best_metric, "probe_y");
    json_t *js = jobspec_to_json(&s), *jd = jobspec_to_json(&d);
    assert_json_equal(js, jd);
    /* a few defaults by value: epochs, not steps; channels from the dataset */
    assert_true(json_is_null(json_object_get(js, "steps")));
    assert_true(json_real_value(json_object_get(js, "epochs")) == 1.0);
    assert_true(json_is_null(json_object_get(js, "channels")));
    assert_true(json_is_null(json_object_get(js, "name")));
    assert_string_equal(json_string_value(json_object_get(js, "kind")), "train");
    assert_int_equal(json_integer_value(json_object_get(js, "checkpoint_every")), 500);
    assert_true(json_real_value(json_object_get(js, "lr")) == 0.0005);
    assert_string_equal(json_string_value(json_object_get(js, "probe")), "linear");
    assert_false(s.channels_set);
    json_decref(js);
    json_decref(jd);

    /* {} names the default dataset; null is the default for any key */
    struct job_spec e;
    parse_ok("{}", &e);
    assert_string_equal(e.dataset, "fashion-mnist");
    parse_ok("{\"lr\": null, \"steps\": null, \"dataset\": null, \"probe\": null, "
             "\"name\": null}",
             &e);
    js = jobspec_to_json(&e);
    jd = jobspec_to_json(&d);
    assert_json_equal(js, jd);
    json_decref(js);
    json_decref(jd);

    /* without a probe the default best_metric is the total loss */
    parse_ok("{\"probe\": \"none\"}", &e);
    assert_string_equal(e.best_metric, "loss_total");
    assert_int_equal(e.probe, JOB_PROBE_NONE);
}

static void test_non_object_is_one_error_at_root(void **state)
{
    (void)state;
    const char *bodies[] = {"[1, 2]", "42", "\"steps\"", "null", "true", "1.5"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        expect_paths(bodies[i], 1, "$");
}

static void test_unknown_keys(void **state)
{
    (void)state;
    expect_paths("{\"learning_rate\": 0.1}", 1, "$.learning_rate");
    expect_paths("{\"LR\": 0.1, \"epoch\": 2}", 2, "$.LR", "$.epoch");
    /* an evaluation key is unknown to a training spec */
    expect_paths("{\"model\": \"fm\"}", 1, "$.model");
    /* kind: "train" only; evaluation bodies go elsewhere */
    struct job_spec s;
    parse_ok("{\"kind\": \"train\"}", &s);
    expect_paths("{\"kind\": \"evaluate\"}", 1, "$.kind");
    expect_paths("{\"kind\": 1}", 1, "$.kind");
}

static void test_wrong_types(void **state)
{
    (void)state;
    static const struct {
        const char *body, *path;
    } cases[] = {
        {"{\"lr\": \"0.001\"}", "$.lr"},
        {"{\"lr\": true}", "$.lr"},
        {"{\"batch\": \"8\"}", "$.batch"},
        {"{\"batch\": 8.0}", "$.batch"},
        {"{\"seed\": 1.5}", "$.seed"},
        {"{\"preset\": 0}", "$.preset"},
        {"{\"estimator\": [\"jsd\"]}", "$.estimator"},
        {"{\"steps\": 1.5}", "$.steps"},
        {"{\"steps\": \"10\"}", "$.steps"},
        {"{\"epochs\": \"1\"}", "$.epochs"},
        {"{\"random_flip\": 1}", "$.random_flip"},
        {"{\"random_flip\": \"true\"}", "$.random_flip"},
        {"{\"probe\": 1}", "$.probe"},
        {"{\"dataset\": 5}", "$.dataset"},
        {"{\"name\": {}}", "$.name"},
        {"{\"best_metric\": false}", "$.best_metric"},
        {"{\"keep_best\": -0.5}", "$.keep_best"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_paths(cases[i].body, 1, cases[i].path);
    /* an integer is a number: epochs 2 and lr 1 are fine */
    struct job_spec s;
    parse_ok("{\"epochs\": 2, \"lr\": 1}", &s);
    assert_true(s.epochs == 2.0);
    assert_true(s.cfg.lr == 1.0f);
}

/* A JSON number just outside [min, max] of a numeric hyperparameter (or the bound itself). */
static void hp_value(const struct dim_hparam *h, int side, char *buf, size_t cap)
{
    bool real = h->type == DIM_HP_FLOAT;
    double v;
    if (side < 0)
        v = real ? (h->min > 0 ? h->min / 2 : h->min - 1) : h->min - 1;
    else if (side > 0)
        v = real ? h->max * 2 : h->max + 1;
    else
        v = 0;
    if (real)
        snprintf(buf, cap, "%.17g", v);
    else
        snprintf(buf, cap, "%.0f", v);
}

static void test_hyperparameter_bounds(void **state)
{
    (void)state;
    int numeric = 0;
    for (size_t i = 0; i < dim_n_hparams; i++) {
        const struct dim_hparam *h = &dim_hparams[i];
        if (dim_hparam_is_text(h))
            continue;
        numeric++;
        char body[160], v[64], path[64];
        snprintf(path, sizeof path, "$.%s", h->name);
        for (int side = -1; side <= 1; side += 2) {
            hp_value(h, side, v, sizeof v);
            snprintf(body, sizeof body, "{\"%s\": %s}", h->name, v);
            expect_paths(body, 1, path);
        }
        /* the bounds themselves are accepted (beta 0 needs alpha > 0) */
        for (int b = 0; b < 2; b++) {
            double x = b ? h->max : h->min;
            if (h->type == DIM_HP_FLOAT)
                snprintf(v, sizeof v, "%.17g", x);
            else
                snprintf(v, sizeof v, "%.0f", x);
            snprintf(body, sizeof body, "{\"%s\": %s%s}", h->name, v,
                     strcmp(h->name, "beta") == 0 ? ", \"alpha\": 1" : "");
            struct job_spec s;
            parse_ok(body, &s);
            if (h->type == DIM_HP_FLOAT)
                assert_true(dim_hparam_get_number(&s.cfg, h) == (double)(float)x);
            else
                assert_true(dim_hparam_get_number(&s.cfg, h) == x);
        }
    }
    assert_true(numeric >= 10);
    /* enumerations: an unknown name */
    expect_paths("{\"preset\": \"basic16x16\"}", 1, "$.preset");
    expect_paths("{\"estimator\": \"mine\"}", 1, "$.estimator");
    /* in the table's bounds but refused by dim_config_validate: the path is the field... */
    expect_paths("{\"channels\": 2}", 1, "$.channels");
    /* ...or the root for a problem about several fields */
    expect_paths("{\"alpha\": 0, \"beta\": 0}", 1, "$");
}

static void test_run_key_bounds(void **state)
{
    (void)state;
    static const struct {
        const char *body, *path;
    } cases[] = {
        {"{\"steps\": 0}", "$.steps"},
        {"{\"steps\": -3}", "$.steps"},
        {"{\"steps\": 1000000000001}", "$.steps"},
        {"{\"epochs\": 0}", "$.epochs"},
        {"{\"epochs\": 1000001}", "$.epochs"},
        {"{\"checkpoint_every\": 0}", "$.checkpoint_every"},
        {"{\"random_crop\": 17}", "$.random_crop"},
        {"{\"random_crop\": -1}", "$.random_crop"},
        {"{\"probe\": \"svm\"}", "$.probe"},
        {"{\"probe_epochs\": 0}", "$.probe_epochs"},
        {"{\"probe_epochs\": 1001}", "$.probe_epochs"},
        {"{\"probe_images\": 99}", "$.probe_images"},
        {"{\"keep_last\": 0}", "$.keep_last"},
        {"{\"keep_best\": -1}", "$.keep_best"},
        {"{\"dataset\": \"\"}", "$.dataset"},
        {"{\"best_metric\": \"\"}", "$.best_metric"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_paths(cases[i].body, 1, cases[i].path);

    /* a NUL inside a string (JSON "\u0000") */
    struct check_ctx ctx = {0};
    struct job_spec s;
    json_t *errors = json_array();
    json_t *nul = json_pack("{s:s#}", "name", "a\0b", (size_t)3);
    assert_int_equal(jobspec_parse(nul, check_dataset, &ctx, &s, errors), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 0), "path")),
                        "$.name");
    json_decref(nul);
    json_decref(errors);

    /* name: up to JOBSPEC_NAME_MAX - 1 characters */
    char body[400], name[JOBSPEC_NAME_MAX + 1];
    memset(name, 'n', sizeof name - 1);
    name[JOBSPEC_NAME_MAX] = '\0';
    snprintf(body, sizeof body, "{\"name\": \"%s\"}", name);
    expect_paths(body, 1, "$.name");
    name[JOBSPEC_NAME_MAX - 1] = '\0';
    snprintf(body, sizeof body, "{\"name\": \"%s\"}", name);
    parse_ok(body, &s);
    assert_string_equal(s.name, name);
    /* a best_metric longer than its buffer */
    snprintf(body, sizeof body, "{\"best_metric\": \"loss_total%054d\"}", 0);
    expect_paths(body, 1, "$.best_metric");

    /* the edges that are accepted */
    parse_ok("{\"random_crop\": 16, \"random_flip\": false, \"probe_images\": 100, "
             "\"keep_best\": 0, \"probe_epochs\": 1000, \"steps\": 1000000000000}",
             &s);
    assert_int_equal(s.random_crop, 16);
    assert_int_equal(s.probe_images, 100);
    assert_int_equal(s.keep_best, 0);
    assert_true(s.steps == 1000000000000ull);
}

static void test_steps_or_epochs(void **state)
{
    (void)state;
    expect_paths("{\"steps\": 10, \"epochs\": 1}", 1, "$.epochs");
    expect_paths("{\"epochs\": 1, \"steps\": 10}", 1, "$.epochs");
    struct job_spec s;
    parse_ok("{\"steps\": 10}", &s);
    assert_int_equal(s.steps, 10);
    json_t *j = jobspec_to_json(&s);
    assert_int_equal(json_integer_value(json_object_get(j, "steps")), 10);
    assert_true(json_is_null(json_object_get(j, "epochs")));
    json_decref(j);
    parse_ok("{\"epochs\": 2.5}", &s);
    assert_int_equal(s.steps, 0);
    assert_true(s.epochs == 2.5);
    /* a refused steps is not "given": no second error about epochs */
    expect_paths("{\"steps\": 0, \"epochs\": 1}", 1, "$.steps");
}

static void test_best_metric_must_be_written_by_the_job(void **state)
{
    (void)state;
    struct job_spec s;
    expect_paths("{\"best_metric\": \"accuracy\"}", 1, "$.best_metric");
    /* probes: only when probing, whatever the key order */
    expect_paths("{\"best_metric\": \"probe_y\", \"probe\": \"none\"}", 1, "$.best_metric");
    expect_paths("{\"probe\": \"none\", \"best_metric\": \"probe_fc\"}", 1, "$.best_metric");
    parse_ok("{\"best_metric\": \"probe_conv\", \"probe\": \"mlp\"}", &s);
    /* loss terms: only those with a nonzero weight (defaults: alpha 0, beta 1, gamma 0.1) */
    expect_paths("{\"best_metric\": \"loss_global\"}", 1, "$.best_metric");
    parse_ok("{\"best_metric\": \"loss_global\", \"alpha\": 0.5}", &s);
    parse_ok("{\"best_metric\": \"loss_local\"}", &s);
    expect_paths("{\"best_metric\": \"loss_local\", \"beta\": 0, \"alpha\": 1}", 1,
                 "$.best_metric");
    parse_ok("{\"best_metric\": \"loss_prior_enc\"}", &s);
    expect_paths("{\"best_metric\": \"loss_prior_disc\", \"gamma\": 0}", 1, "$.best_metric");
    parse_ok("{\"best_metric\": \"loss_total\", \"probe\": \"none\"}", &s);
    assert_string_equal(s.best_metric, "loss_total");
}

static void test_dataset_callback(void **state)
{
    (void)state;
    struct check_ctx ctx = {0};
    struct job_spec s;
    json_t *errors = json_array();
    json_t *body = specfix_load("{\"dataset\": \"imagenet\"}");
    assert_int_equal(jobspec_parse(body, check_dataset, &ctx, &s, errors), 1);
    /* the callback got our ctx and the name, and its message is the error's */
    assert_int_equal(ctx.calls, 1);
    assert_string_equal(ctx.last, "imagenet");
    json_t *e = json_array_get(errors, 0);
    assert_string_equal(json_string_value(json_object_get(e, "path")), "$.dataset");
    char want[128];
    snprintf(want, sizeof want, REFUSED_FMT, "imagenet");
    assert_string_equal(json_string_value(json_object_get(e, "message")), want);
    json_decref(body);
    json_decref(errors);

    expect_paths("{\"dataset\": \"../etc\"}", 1, "$.dataset");
    expect_paths("{\"dataset\": \"root/dir/..\"}", 1, "$.dataset");
    parse_ok("{\"dataset\": \"root/dir\"}", &s);
    assert_string_equal(s.dataset, "root/dir");

    /* the default dataset is checked too */
    memset(&ctx, 0, sizeof ctx);
    errors = json_array();
    body = specfix_load("{}");
    assert_int_equal(jobspec_parse(body, check_dataset, &ctx, &s, errors), 0);
    assert_int_equal(ctx.calls, 1);
    assert_string_equal(ctx.last, "fashion-mnist");
    json_decref(body);
    json_decref(errors);
}

static void test_all_errors_at_once(void **state)
{
    (void)state;
    expect_paths("{\"lr\": \"fast\", \"batch\": 1, \"learning_rate\": 3}", 3, "$.lr", "$.batch",
                 "$.learning_rate");
    expect_paths("{\"steps\": 0, \"probe\": \"svm\", \"dataset\": \"imagenet\", \"seed\": -1, "
                 "\"random_flip\": null}",
                 4, "$.steps", "$.probe", "$.dataset", "$.seed");
    /* errors are appended; the count is of this body's only */
    struct check_ctx ctx = {0};
    struct job_spec s;
    json_t *errors = json_pack("[{s:s, s:s}]", "path", "$.x", "message", "earlier");
    json_t *body = specfix_load("{\"lr\": -1, \"keep_last\": 0}");
    assert_int_equal(jobspec_parse(body, check_dataset, &ctx, &s, errors), 2);
    assert_int_equal(json_array_size(errors), 3);
    json_decref(body);
    json_decref(errors);
}

/* ranks: an integer in [1, 1024] the batch divides; the daemon's max_ranks on top */
static void test_ranks(void **state)
{
    (void)state;
    struct job_spec s;
    parse_ok("{\"dataset\": \"fashion-mnist\"}", &s);
    assert_int_equal(s.ranks, 1);
    parse_ok("{\"ranks\": 4, \"batch\": 32}", &s);
    assert_int_equal(s.ranks, 4);
    json_t *j = jobspec_to_json(&s);
    assert_int_equal(json_integer_value(json_object_get(j, "ranks")), 4);
    json_decref(j);
    expect_paths("{\"ranks\": 3, \"batch\": 32}", 1, "$.ranks");
    expect_paths("{\"ranks\": 0}", 1, "$.ranks");
    expect_paths("{\"ranks\": 1025}", 1, "$.ranks");
    expect_paths("{\"ranks\": \"2\"}", 1, "$.ranks");
    expect_paths("{\"ranks\": 2.5}", 1, "$.ranks");
    expect_paths("{\"ranks\": true}", 1, "$.ranks");
    /* a sweep's trial waits at its rungs inside the daemon's step loop: one rank */
    expect_paths("{\"sweep_id\": 3, \"trial\": 0, \"ranks\": 2}", 1, "$.ranks");
    /* a bad batch is reported once, at $.batch, not again as a split */
    expect_paths("{\"ranks\": 2, \"batch\": 1}", 1, "$.batch");
    /* with the other errors, all at once */
    expect_paths("{\"ranks\": 3, \"batch\": 16, \"lr\": \"x\"}", 2, "$.ranks", "$.lr");
    /* the message names the batch and the ranks */
    int n;
    json_t *errors = parse_text("{\"ranks\": 3, \"batch\": 16}", &s, &n);
    assert_int_equal(n, 1);
    const char *msg = json_string_value(json_object_get(json_array_get(errors, 0), "message"));
    assert_string_equal(msg, "batch 16 does not split evenly over 3 ranks");
    json_decref(errors);
    /* max_ranks */
    parse_ok("{\"ranks\": 4, \"batch\": 32}", &s);
    errors = json_array();
    assert_int_equal(jobspec_check_limits(&s, 4, errors), 0);
    assert_int_equal(jobspec_check_limits(&s, 3, errors), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 0), "path")),
                        "$.ranks");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(errors, 0), "message")),
        "4 ranks is more than this daemon's max_ranks (3)");
    json_decref(errors);
}

/* Every key differs from its default (channels set, name given, steps not epochs). */
static const char *const NON_DEFAULT =
    "{\"kind\": \"train\", \"name\": \"run-7\", \"dataset\": \"root/dir\", \"steps\": 1234, "
    "\"checkpoint_every\": 100, \"random_crop\": 4, \"random_flip\": true, \"probe\": \"mlp\", "
    "\"probe_epochs\": 3, \"probe_images\": 500, \"keep_last\": 5, \"keep_best\": 2, "
    "\"best_metric\": \"loss_global\", \"validation_images\": 700, \"sweep_id\": 3, "
    "\"trial\": 2, \"preset\": \"basic64x64\", \"channels\": 3, "
    "\"y_dim\": 128, \"mi_dim\": 256, \"estimator\": \"nce\", \"alpha\": 0.5, \"beta\": 1.5, "
    "\"gamma\": 0, \"lr\": 0.0003, \"adam_beta1\": 0.9, \"adam_beta2\": 0.99, \"adam_eps\": 1e-06, "
    "\"batch\": 32, \"seed\": 9007199254740991, \"lr_schedule\": \"step\", \"lr_warmup\": 100, "
    "\"lr_final\": 0.05, \"lr_step_factor\": 0.5, \"lr_horizon\": 1000}";

static void round_trip(const char *text)
{
    struct job_spec s1, s2;
    parse_ok(text, &s1);
    json_t *j1 = jobspec_to_json(&s1);
    struct check_ctx ctx = {0};
    json_t *errors = json_array();
    assert_int_equal(jobspec_parse(j1, check_dataset, &ctx, &s2, errors), 0);
    json_decref(errors);
    json_t *j2 = jobspec_to_json(&s2);
    assert_json_equal(j1, j2);
    assert_memory_equal(&s1, &s2, sizeof s1);
    json_decref(j1);
    json_decref(j2);
}

/* The schedule's keys: names, bounds and the warm-up against the horizon or the
 * steps, every problem at once; a good schedule resolves as given. */
static void test_lr_schedule(void **state)
{
    (void)state;
    struct job_spec s;
    parse_ok("{\"lr_schedule\": \"cosine\", \"lr_warmup\": 50, \"lr_final\": 0}", &s);
    assert_int_equal(s.cfg.lr_schedule, DIM_LR_COSINE);
    assert_true(s.cfg.lr_warmup == 50 && s.cfg.lr_final == 0.0f);
    assert_true(s.cfg.lr_horizon == 0); /* the run's length, resolved when the job starts */
    parse_ok("{\"steps\": 50, \"lr_schedule\": \"step\", \"lr_warmup\": 50}", &s);
    parse_ok("{\"steps\": 10, \"lr_warmup\": 50, \"lr_horizon\": 60}", &s);
    /* the default: constant, as before schedules */
    parse_ok("{}", &s);
    assert_int_equal(s.cfg.lr_schedule, DIM_LR_CONSTANT);
    assert_true(s.cfg.lr_warmup == 0 && s.cfg.lr_horizon == 0);
    /* every problem at once */
    expect_paths("{\"lr_schedule\": \"linear\", \"lr_warmup\": -5, \"lr_final\": 1.5, "
                 "\"lr_step_factor\": 0, \"lr_horizon\": -1}",
                 5, "$.lr_schedule", "$.lr_warmup", "$.lr_final", "$.lr_step_factor",
                 "$.lr_horizon");
    expect_paths("{\"lr_schedule\": 1}", 1, "$.lr_schedule");
    expect_paths("{\"lr_warmup\": 2.5}", 1, "$.lr_warmup");
    expect_paths("{\"lr_final\": -0.01}", 1, "$.lr_final");
    /* warm-up longer than the horizon, given or as the run's steps */
    expect_paths("{\"lr_schedule\": \"cosine\", \"lr_warmup\": 200, \"lr_horizon\": 100}", 1,
                 "$.lr_warmup");
    expect_paths("{\"lr_schedule\": \"cosine\", \"lr_warmup\": 200, \"steps\": 100}", 1,
                 "$.lr_warmup");
    int n;
    json_t *errors = parse_text("{\"lr_warmup\": 200, \"steps\": 100}", &s, &n);
    assert_int_equal(n, 1);
    const char *msg =
        json_string_value(json_object_get(json_array_get(errors, 0), "message"));
    assert_non_null(strstr(msg, "lr_warmup 200 is longer than the run's 100 steps"));
    json_decref(errors);
    errors = parse_text("{\"lr_warmup\": 200, \"lr_horizon\": 100}", &s, &n);
    msg = json_string_value(json_object_get(json_array_get(errors, 0), "message"));
    assert_non_null(strstr(msg, "lr_warmup 200 is longer than lr_horizon 100"));
    json_decref(errors);
    /* the message names the bad schedule and the choices */
    errors = parse_text("{\"lr_schedule\": \"linear\"}", &s, &n);
    msg = json_string_value(json_object_get(json_array_get(errors, 0), "message"));
    assert_non_null(strstr(msg, "'linear' is not one of constant, cosine, step"));
    json_decref(errors);
}

static void test_round_trip(void **state)
{
    (void)state;
    struct job_spec s, d;
    parse_ok(NON_DEFAULT, &s);
    jobspec_default(&d);
    /* the body really is non-default, field by field */
    assert_string_equal(s.name, "run-7");
    assert_string_equal(s.dataset, "root/dir");
    assert_int_equal(s.steps, 1234);
    assert_int_equal(s.checkpoint_every, 100);
    assert_int_equal(s.random_crop, 4);
    assert_true(s.random_flip);
    assert_int_equal(s.probe, JOB_PROBE_MLP);
    assert_int_equal(s.probe_epochs, 3);
    assert_int_equal(s.probe_images, 500);
    assert_int_equal(s.keep_last, 5);
    assert_int_equal(s.keep_best, 2);
    assert_string_equal(s.best_metric, "loss_global");
    assert_true(s.channels_set);
    assert_int_equal(s.cfg.in_c, 3);
    assert_int_equal(s.cfg.preset, DIM_BASIC64);
    assert_int_equal(s.cfg.estimator, DIM_NCE);
    assert_true(s.cfg.lr == 0.0003f);
    assert_true(s.cfg.adam_eps == 1e-6f);
    assert_int_equal(s.cfg.batch, 32);
    assert_true(s.cfg.seed == 9007199254740991ull);
    for (size_t i = 0; i < dim_n_hparams; i++)
        if (dim_hparam_get_number(&s.cfg, &dim_hparams[i]) ==
            dim_hparam_get_number(&d.cfg, &dim_hparams[i]))
            fail_msg("%s has its default value in the round-trip body", dim_hparams[i].name);

    /* the stored form writes floats as their shortest decimal, and reads back the same */
    json_t *j = jobspec_to_json(&s);
    json_t *in = specfix_load(NON_DEFAULT);
    const char *key;
    json_t *v;
    json_object_foreach(in, key, v) {
        json_t *out = json_object_get(j, key);
        if (!json_equal(v, out) && !(json_is_number(v) && json_is_number(out) &&
                                     json_number_value(v) == json_number_value(out)))
            fail_msg("key %s does not read back as given", key);
    }
    /* every key but epochs (null: steps are given) and ranks (a sweep's trial has one;
     * test_ranks reads 4 back) */
    assert_int_equal(json_object_size(in) + 2, json_object_size(j));
    assert_int_equal(json_integer_value(json_object_get(j, "ranks")), 1);
    assert_true(json_is_null(json_object_get(j, "epochs")));
    json_decref(in);
    json_decref(j);

    round_trip(NON_DEFAULT);
    round_trip("{\"epochs\": 2.5, \"probe\": \"none\", \"lr\": 0.00012345678}");
    round_trip("{}");
}

static void test_total_steps(void **state)
{
    (void)state;
    struct job_spec s;
    parse_ok("{\"steps\": 1234, \"batch\": 64}", &s);
    assert_int_equal(jobspec_total_steps(&s, 60000), 1234);
    assert_int_equal(jobspec_total_steps(&s, 10), 1234);
    /* epochs: over whole batches (60000 / 64 = 937 steps per epoch), rounded up */
    parse_ok("{\"batch\": 64}", &s);
    assert_int_equal(jobspec_total_steps(&s, 60000), 937);
    parse_ok("{\"epochs\": 2.5, \"batch\": 64}", &s);
    assert_int_equal(jobspec_total_steps(&s, 60000), 2343); /* ceil(2342.5) */
    parse_ok("{\"epochs\": 3, \"batch\": 100}", &s);
    assert_int_equal(jobspec_total_steps(&s, 1000), 30); /* exact: not rounded up to 31 */
    parse_ok("{\"epochs\": 0.001, \"batch\": 64}", &s);
    assert_int_equal(jobspec_total_steps(&s, 60000), 1); /* ceil(0.937) */
    /* never 0: a dataset smaller than one batch still trains a step */
    parse_ok("{\"epochs\": 1, \"batch\": 64}", &s);
    assert_int_equal(jobspec_total_steps(&s, 10), 1);
    assert_int_equal(jobspec_total_steps(&s, 0), 1);
}

static void test_schema_lists_every_key(void **state)
{
    (void)state;
    json_t *schema = jobspec_schema_json();
    struct job_spec d;
    jobspec_default(&d);
    json_t *spec = jobspec_to_json(&d);
    assert_true(json_is_array(schema));
    /* the schema's names are exactly the stored spec's keys, each once, with help */
    assert_int_equal(json_array_size(schema), json_object_size(spec));
    size_t i;
    json_t *f;
    json_array_foreach(schema, i, f) {
        const char *name = json_string_value(json_object_get(f, "name"));
        assert_non_null(name);
        if (!json_object_get(spec, name))
            fail_msg("schema field %s is not a key of the spec", name);
        for (size_t k = 0; k < i; k++) {
            json_t *other = json_object_get(json_array_get(schema, k), "name");
            assert_string_not_equal(name, json_string_value(other));
        }
        assert_true(strlen(json_string_value(json_object_get(f, "help"))) > 0);
        assert_non_null(json_string_value(json_object_get(f, "type")));
    }
    /* every hyperparameter, with its bounds and default */
    for (size_t h = 0; h < dim_n_hparams; h++) {
        const struct dim_hparam *hp = &dim_hparams[h];
        json_t *field = NULL;
        json_array_foreach(schema, i, f)
            if (strcmp(json_string_value(json_object_get(f, "name")), hp->name) == 0)
                field = f;
        if (!field)
            fail_msg("hyperparameter %s is not in the schema", hp->name);
        assert_true(json_equal(json_object_get(field, "default"), json_object_get(spec, hp->name)));
        const char *type = json_string_value(json_object_get(field, "type"));
        if (dim_hparam_is_text(hp)) {
            assert_string_equal(type, "string");
            json_t *e = json_object_get(field, "enum");
            assert_int_equal(json_array_size(e), (size_t)(hp->max - hp->min + 1));
            /* each choice parses */
            size_t k;
            json_t *c;
            json_array_foreach(e, k, c) {
                struct dim_config cfg;
                dim_config_default(&cfg);
                assert_int_equal(dim_hparam_parse(&cfg, hp, json_string_value(c), NULL), 0);
                assert_true(dim_hparam_get_number(&cfg, hp) == hp->min + (double)k);
            }
        } else if (strcmp(hp->name, "channels") == 0) {
            assert_string_equal(type, "integer");
            json_t *want = json_pack("[i, i]", 1, 3);
            assert_true(json_equal(json_object_get(field, "enum"), want));
            json_decref(want);
        } else {
            assert_string_equal(type, hp->type == DIM_HP_FLOAT ? "number" : "integer");
            assert_true(json_number_value(json_object_get(field, "minimum")) == hp->min);
            assert_true(json_number_value(json_object_get(field, "maximum")) == hp->max);
        }
    }
    /* run keys by example */
    json_array_foreach(schema, i, f) {
        const char *name = json_string_value(json_object_get(f, "name"));
        if (strcmp(name, "probe") == 0)
            assert_int_equal(json_array_size(json_object_get(f, "enum")), 3);
        if (strcmp(name, "random_crop") == 0) {
            assert_int_equal(json_integer_value(json_object_get(f, "maximum")), 16);
            assert_int_equal(json_integer_value(json_object_get(f, "default")), 0);
        }
    }
    json_decref(spec);
    json_decref(schema);
}

static void test_small_helpers(void **state)
{
    (void)state;
    assert_string_equal(job_probe_name(JOB_PROBE_NONE), "none");
    assert_string_equal(job_probe_name(JOB_PROBE_LINEAR), "linear");
    assert_string_equal(job_probe_name(JOB_PROBE_MLP), "mlp");
    assert_string_equal(job_probe_name((enum job_probe)3), "?");
    json_t *errors = json_array();
    jobspec_error(errors, NULL, "whole %d", 1);
    jobspec_error(errors, "lr", "bad %s", "lr");
    assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 0), "path")), "$");
    assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 0), "message")),
                        "whole 1");
    assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 1), "path")),
                        "$.lr");
    assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 1), "message")),
                        "bad lr");
    json_decref(errors);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dataset_only_body_gives_the_defaults),
        cmocka_unit_test(test_non_object_is_one_error_at_root),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_hyperparameter_bounds),
        cmocka_unit_test(test_run_key_bounds),
        cmocka_unit_test(test_steps_or_epochs),
        cmocka_unit_test(test_best_metric_must_be_written_by_the_job),
        cmocka_unit_test(test_dataset_callback),
        cmocka_unit_test(test_all_errors_at_once),
        cmocka_unit_test(test_ranks),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_total_steps),
        cmocka_unit_test(test_lr_schedule),
        cmocka_unit_test(test_schema_lists_every_key),
        cmocka_unit_test(test_small_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

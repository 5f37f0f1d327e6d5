/* test_evalspec.c - the evaluation job spec (api/evalspec.h).
 *
 * What is checked: which bodies are evaluations; the smallest body (kind and
 * model) resolves to the defaults of dim_eval_opts_default and version
 * "latest"; every error carries its JSON path ("$" for a non-object,
 * "$.measures[i]" for one bad entry of the list) and a body's problems are
 * reported at once, counted from the array's previous size; model names and
 * versions follow api/model_name.h ("v3", "3", 3, "latest"; no 0, no sign,
 * nothing above INT32_MAX); budgets are integers in their bounds; a spec with
 * every key changed survives parse(to_json(s)); the metric keys of a measure
 * mask are eval_progress plus exactly the keys of evalspec_result_points, in
 * order, and the points carry the right figures; results as JSON write null
 * for failed figures and leave out measures that did not run.
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

#include "api/evalspec.h"
#include "specfix.h"

static void parse_ok(const char *text, struct eval_spec *s)
{
    json_t *body = specfix_load(text);
    json_t *errors = json_array();
    int n = evalspec_parse(body, s, errors);
    if (n != 0)
        fail_msg("%s: expected no errors, got %s", text, json_dumps(errors, 0));
    json_decref(body);
    json_decref(errors);
}

/* Asserts that body gives exactly the errors at `paths` (any order), each with a message. */
static void expect_paths_json(const json_t *body, const char *what, int n_paths, va_list ap)
{
    struct eval_spec s;
    json_t *errors = json_array();
    int n = evalspec_parse(body, &s, errors);
    assert_int_equal(n, (int)json_array_size(errors));
    specfix_expect_paths(errors, what, n_paths, ap);
    json_decref(errors);
}

static void expect_paths(const char *text, int n_paths, ...)
{
    json_t *body = specfix_load(text);
    va_list ap;
    va_start(ap, n_paths);
    expect_paths_json(body, text, n_paths, ap);
    va_end(ap);
    json_decref(body);
}

/* body {"kind": "evaluate", "model": "fm", key: value} */
static json_t *with(const char *key, json_t *value)
{
    json_t *b = json_pack("{s:s, s:s}", "kind", "evaluate", "model", "fm");
    json_object_set_new(b, key, value);
    return b;
}

static void expect_key_error(const char *key, json_t *value, const char *path)
{
    json_t *b = with(key, value);
    char *what = json_dumps(b, 0);
    struct eval_spec s;
    json_t *errors = json_array();
    int n = evalspec_parse(b, &s, errors);
    char *dump = json_dumps(errors, 0);
    if (n != 1 || strcmp(json_string_value(json_object_get(json_array_get(errors, 0), "path")),
                         path) != 0)
        fail_msg("%s: expected one error at %s, got %s", what, path, dump);
    free(dump);
    free(what);
    json_decref(errors);
    json_decref(b);
}

static void expect_key_ok(const char *key, json_t *value, struct eval_spec *s)
{
    json_t *b = with(key, value);
    json_t *errors = json_array();
    int n = evalspec_parse(b, s, errors);
    if (n != 0)
        fail_msg("%s: expected no errors, got %s", json_dumps(b, 0), json_dumps(errors, 0));
    json_decref(errors);
    json_decref(b);
}

static void test_is_evaluation(void **state)
{
    (void)state;
    const char *yes[] = {"{\"kind\": \"evaluate\"}", "{\"model\": \"x\", \"kind\": \"evaluate\"}"};
    const char *no[] = {"{}", "{\"kind\": \"train\"}", "{\"kind\": \"Evaluate\"}",
                        "{\"kind\": 1}", "{\"kind\": null}", "[\"evaluate\"]", "\"evaluate\""};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        json_t *j = specfix_load(yes[i]);
        assert_true(evalspec_is_evaluation(j));
        json_decref(j);
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        json_t *j = specfix_load(no[i]);
        if (evalspec_is_evaluation(j))
            fail_msg("%s is not an evaluation", no[i]);
        json_decref(j);
    }
}

static void test_defaults(void **state)
{
    (void)state;
    struct eval_spec s;
    parse_ok("{\"kind\": \"evaluate\", \"model\": \"fm\"}", &s);
    struct dim_eval_opts d;
    dim_eval_opts_default(&d);
    assert_memory_equal(&s.opts, &d, sizeof d);
    assert_string_equal(s.model, "fm");
    assert_string_equal(s.name, "");
    assert_int_equal(s.version, 0);
    json_t *j = evalspec_to_json(&s);
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "evaluate");
    assert_string_equal(json_string_value(json_object_get(j, "version")), "latest");
    assert_true(json_is_null(json_object_get(j, "name")));
    json_t *m = json_object_get(j, "measures");
    assert_int_equal(json_array_size(m), DIM_N_MEASURES);
    const char *order[] = {"linear", "mlp", "svm", "ndm", "mine", "recon"};
    for (int i = 0; i < DIM_N_MEASURES; i++)
        assert_string_equal(json_string_value(json_array_get(m, (size_t)i)), order[i]);
    assert_int_equal(json_integer_value(json_object_get(j, "max_train")), 0); /* all */
    assert_null(json_object_get(j, "svm_seeds")); /* the SVM is solved, not trained */
    json_decref(j);

    /* null is the default; kind may be left out of the body given to the parser */
    struct eval_spec t;
    parse_ok("{\"model\": \"fm\", \"name\": null, \"version\": null, \"measures\": null, "
             "\"seed\": null}",
             &t);
    assert_memory_equal(&s, &t, sizeof s);
}

static void test_root_and_required(void **state)
{
    (void)state;
    const char *bodies[] = {"[1]", "3", "\"evaluate\"", "null"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        expect_paths(bodies[i], 1, "$");
    expect_paths("{\"kind\": \"evaluate\"}", 1, "$.model");
    expect_paths("{\"kind\": \"evaluate\", \"model\": null}", 1, "$.model");
    /* a training key is unknown here; so is a kind that is not evaluate */
    expect_paths("{\"kind\": \"evaluate\", \"model\": \"fm\", \"steps\": 10}", 1, "$.steps");
    expect_paths("{\"kind\": \"train\", \"model\": \"fm\"}", 1, "$.kind");
}

static void test_model_names(void **state)
{
    (void)state;
    char long_ok[MODEL_NAME_MAX], too_long[MODEL_NAME_MAX + 1];
    memset(long_ok, 'm', sizeof long_ok - 1);
    long_ok[MODEL_NAME_MAX - 1] = '\0';
    memset(too_long, 'm', sizeof too_long - 1);
    too_long[MODEL_NAME_MAX] = '\0';
    const char *good[] = {"a", "fm", "fm_2-x", "0model", long_ok};
    const char *bad[] = {"", "FM", "-fm", "_fm", "f m", "fm/..", "../fm", "fé", too_long};
    struct eval_spec s;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        expect_key_ok("model", json_string(good[i]), &s);
        assert_string_equal(s.model, good[i]);
    }
    /* one error each: not also "is required" */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_key_error("model", json_string(bad[i]), "$.model");
    expect_key_error("model", json_integer(5), "$.model");
}

static void test_versions(void **state)
{
    (void)state;
    struct eval_spec s;
    expect_key_ok("version", json_string("v3"), &s);
    assert_int_equal(s.version, 3);
    expect_key_ok("version", json_string("17"), &s);
    assert_int_equal(s.version, 17);
    expect_key_ok("version", json_integer(4), &s);
    assert_int_equal(s.version, 4);
    expect_key_ok("version", json_integer(INT32_MAX), &s);
    assert_int_equal(s.version, INT32_MAX);
    expect_key_ok("version", json_string("v2147483647"), &s);
    assert_int_equal(s.version, INT32_MAX);
    expect_key_ok("version", json_string("latest"), &s);
    assert_int_equal(s.version, 0);
    const char *bad[] = {"v0", "0", "-1", "v-1", "+3", "v", "", "v3x", "3 ", " 3", "V3",
                         "2147483648", "v99999999999999999999", "Latest", "vlatest"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_key_error("version", json_string(bad[i]), "$.version");
    expect_key_error("version", json_integer(0), "$.version");
    expect_key_error("version", json_integer(-2), "$.version");
    expect_key_error("version", json_integer((json_int_t)INT32_MAX + 1), "$.version");
    expect_key_error("version", json_real(3.0), "$.version");
    expect_key_error("version", json_true(), "$.version");
}

static void test_measures(void **state)
{
    (void)state;
    struct eval_spec s;
    expect_key_ok("measures", json_string("linear,svm"), &s);
    assert_int_equal(s.opts.measures, DIM_MEASURE_LINEAR | DIM_MEASURE_SVM);
    expect_key_ok("measures", json_pack("[s, s]", "ndm", "mine"), &s);
    assert_int_equal(s.opts.measures, DIM_MEASURE_NDM | DIM_MEASURE_MINE);
    expect_key_ok("measures", json_pack("[s, s]", "recon", "recon"), &s);
    assert_int_equal(s.opts.measures, DIM_MEASURE_RECON);
    expect_key_ok("measures", json_string("all"), &s);
    assert_int_equal(s.opts.measures, DIM_MEASURE_ALL);
    expect_key_ok("measures", json_pack("[s]", "mlp"), &s);
    assert_int_equal(s.opts.measures, DIM_MEASURE_MLP);

    expect_key_error("measures", json_array(), "$.measures");
    expect_key_error("measures", json_string(""), "$.measures");
    expect_key_error("measures", json_string("linear,,svm"), "$.measures");
    expect_key_error("measures", json_string("accuracy"), "$.measures");
    expect_key_error("measures", json_integer(7), "$.measures");
    expect_key_error("measures", json_pack("[s, s]", "linear", "bogus"), "$.measures[1]");
    /* each bad entry at its index, all at once */
    json_t *b = with("measures", json_pack("[s, i, s, s]", "linear", 5, "svm", "accuracy"));
    struct eval_spec t;
    json_t *errors = json_array();
    assert_int_equal(evalspec_parse(b, &t, errors), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 0), "path")),
                        "$.measures[1]");
    assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 1), "path")),
                        "$.measures[3]");
    json_decref(errors);
    json_decref(b);
}

static void test_budgets(void **state)
{
    (void)state;
    static const struct {
        const char *key;
        json_int_t lo, hi;
    } keys[] = {
        {"seed", 0, 9007199254740991LL}, {"max_train", 0, 1000000000}, {"max_test", 0, 1000000000},
        {"probe_epochs", 1, 1000},        {"ndm_steps", 1, 1000000},    {"mine_steps", 1, 1000000},
        {"recon_epochs", 1, 1000},
        {"grid_pairs", 0, 64},
    };
    struct eval_spec s;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char path[48];
        snprintf(path, sizeof path, "$.%s", keys[i].key);
        expect_key_error(keys[i].key, json_integer(keys[i].lo - 1), path);
        expect_key_error(keys[i].key, json_integer(keys[i].hi + 1), path);
        expect_key_error(keys[i].key, json_real(2.0), path);
        expect_key_error(keys[i].key, json_string("5"), path);
        /* the bounds are accepted and stored; the stored spec gives them back */
        for (int b = 0; b < 2; b++) {
            json_int_t v = b ? keys[i].hi : keys[i].lo;
            expect_key_ok(keys[i].key, json_integer(v), &s);
            json_t *j = evalspec_to_json(&s);
            assert_int_equal(json_integer_value(json_object_get(j, keys[i].key)), v);
            json_decref(j);
        }
    }
    expect_key_ok("seed", json_integer(9007199254740991LL), &s);
    assert_true(s.opts.seed == 9007199254740991ull);

    /* name */
    char name[JOBSPEC_NAME_MAX + 1];
    memset(name, 'n', sizeof name - 1);
    name[JOBSPEC_NAME_MAX] = '\0';
    expect_key_error("name", json_string(name), "$.name");
    expect_key_error("name", json_stringn("a\0b", 3), "$.name");
    expect_key_error("name", json_integer(1), "$.name");
    name[JOBSPEC_NAME_MAX - 1] = '\0';
    expect_key_ok("name", json_string(name), &s);
    assert_string_equal(s.name, name);
}

static void test_all_errors_at_once(void **state)
{
    (void)state;
    expect_paths("{\"kind\": \"evaluate\", \"version\": \"x\", \"probe_epochs\": 0, \"bogus\": 1}",
                 4, "$.version", "$.probe_epochs", "$.bogus", "$.model");
    /* the old SVM budgets are gone: named as unknown fields */
    expect_paths("{\"kind\": \"evaluate\", \"model\": \"fm\", \"svm_seeds\": 3, \"svm_epochs\": 5}",
                 2, "$.svm_seeds", "$.svm_epochs");
    struct eval_spec s;
    json_t *errors = json_pack("[{s:s, s:s}]", "path", "$", "message", "earlier");
    json_t *body = specfix_load("{\"kind\": \"evaluate\", \"model\": \"fm\", \"grid_pairs\": 65, "
                        "\"measures\": []}");
    assert_int_equal(evalspec_parse(body, &s, errors), 2);
    assert_int_equal(json_array_size(errors), 3);
    json_decref(body);
    json_decref(errors);
}

static void test_round_trip(void **state)
{
    (void)state;
    const char *text =
        "{\"kind\": \"evaluate\", \"name\": \"eval-1\", \"model\": \"fm_b\", \"version\": \"v12\", "
        "\"measures\": [\"mlp\", \"ndm\", \"recon\"], \"seed\": 42, \"max_train\": 5000, "
        "\"max_test\": 700, \"probe_epochs\": 2, "
        "\"ndm_steps\": 50, \"mine_steps\": 60, \"recon_epochs\": 7, \"grid_pairs\": 0}";
    struct eval_spec s1, s2, d;
    parse_ok(text, &s1);
    evalspec_default(&d);
    assert_int_equal(s1.version, 12);
    assert_int_equal(s1.opts.measures, DIM_MEASURE_MLP | DIM_MEASURE_NDM | DIM_MEASURE_RECON);
    json_t *in = specfix_load(text);
    json_t *j1 = evalspec_to_json(&s1);
    /* the stored form is the body itself (every key was given) */
    if (!json_equal(in, j1))
        fail_msg("stored %s", json_dumps(j1, JSON_SORT_KEYS));
    json_t *errors = json_array();
    assert_int_equal(evalspec_parse(j1, &s2, errors), 0);
    assert_memory_equal(&s1, &s2, sizeof s1);
    json_t *j2 = evalspec_to_json(&s2);
    assert_true(json_equal(j1, j2));
    /* and every budget differs from its default, so none is lost unnoticed */
    const char *key;
    json_t *v;
    json_t *jd = evalspec_to_json(&d);
    json_object_foreach(j1, key, v)
        if (strcmp(key, "kind") != 0 && json_equal(v, json_object_get(jd, key)))
            fail_msg("%s has its default value in the round-trip body", key);
    json_decref(jd);
    json_decref(j2);
    json_decref(errors);
    json_decref(j1);
    json_decref(in);
}

static void test_schema(void **state)
{
    (void)state;
    json_t *schema = evalspec_schema_json();
    struct eval_spec d;
    evalspec_default(&d);
    json_t *spec = evalspec_to_json(&d);
    /* the schema's names are exactly the stored spec's keys */
    assert_int_equal(json_array_size(schema), json_object_size(spec));
    size_t i;
    json_t *f;
    json_array_foreach(schema, i, f) {
        const char *name = json_string_value(json_object_get(f, "name"));
        assert_non_null(name);
        if (!json_object_get(spec, name))
            fail_msg("schema field %s is not a key of the spec", name);
        assert_true(strlen(json_string_value(json_object_get(f, "help"))) > 0);
        json_t *def = json_object_get(f, "default");
        if (strcmp(name, "name") != 0 && strcmp(name, "model") != 0 &&
            !json_equal(def, json_object_get(spec, name)))
            fail_msg("schema default of %s differs from the stored default", name);
    }
    json_decref(spec);
    json_decref(schema);
}

static void check_keys(unsigned mask, size_t n_want, const char *const *want)
{
    const char *keys[EVAL_MAX_KEYS];
    size_t n = evalspec_metric_keys(mask, keys);
    assert_int_equal(n, n_want + 1);
    assert_string_equal(keys[0], "eval_progress");
    for (size_t i = 0; i < n_want; i++)
        assert_string_equal(keys[i + 1], want[i]);
    assert_null(keys[n]);
}

static void test_metric_keys(void **state)
{
    (void)state;
    check_keys(0, 0, NULL);
    const char *lin[] = {"eval_linear_conv", "eval_linear_fc", "eval_linear_y",
                         "eval_linear_pixels"};
    check_keys(DIM_MEASURE_LINEAR, 4, lin);
    const char *svm_mine[] = {"eval_svm_conv", "eval_svm_fc", "eval_svm_y", "eval_svm_pixels",
                              "eval_mine"};
    check_keys(DIM_MEASURE_SVM | DIM_MEASURE_MINE, 5, svm_mine);
    const char *ndm_recon[] = {"eval_ndm", "eval_ndm_sigmoid", "eval_ssim", "eval_ms_ssim",
                               "eval_recon_mse"};
    check_keys(DIM_MEASURE_NDM | DIM_MEASURE_RECON, 5, ndm_recon);
    const char *mlp[] = {"eval_mlp_conv", "eval_mlp_fc", "eval_mlp_y", "eval_mlp_pixels"};
    check_keys(DIM_MEASURE_MLP, 4, mlp);

    /* all: the singles' keys concatenated in measure order, all distinct, and it fits */
    const char *all[EVAL_MAX_KEYS];
    size_t n_all = evalspec_metric_keys(DIM_MEASURE_ALL, all);
    assert_int_equal(n_all, 19); /* progress, 4 + 4 + 4 classifier rows, 2 NDM, MINE, 3 recon */
    size_t at = 1;
    for (int m = 0; m < DIM_N_MEASURES; m++) {
        const char *one[EVAL_MAX_KEYS];
        size_t n = evalspec_metric_keys(1u << m, one);
        assert_true(n >= 2);
        for (size_t k = 1; k < n; k++)
            assert_string_equal(all[at++], one[k]);
    }
    assert_int_equal(at, n_all);
    for (size_t i = 0; i < n_all; i++)
        for (size_t k = 0; k < i; k++)
            assert_string_not_equal(all[i], all[k]);
    assert_true(n_all + 1 <= EVAL_MAX_KEYS);
}

/* A result of every measure with a distinct value in every figure. */
static void full_result(struct dim_eval_result *r)
{
    memset(r, 0, sizeof *r);
    r->measures = DIM_MEASURE_ALL;
    for (int t = 0; t < DIM_PROBE_ROWS; t++) {
        r->linear[t].accuracy = 0.1 + t;
        r->linear[t].lambda = 1e-3;
        r->linear[t].val_accuracy = 0.05 + t;
        r->linear[t].iterations = 40 + t;
        r->linear[t].gnorm = 5e-5;
        r->mlp[t] = 0.2 + t;
        r->svm[t] = r->linear[t];
        r->svm[t].accuracy = 0.3 + t;
    }
    r->ndm = 5.5;
    r->ndm_sigmoid = 6.5;
    r->mine = 7.5;
    r->ssim = 8.5;
    r->ms_ssim = 9.5;
    r->recon_mse = 10.5;
    r->ms_ssim_scales = 3;
    r->n_train = 1000;
    r->n_test = 200;
    for (int i = 0; i < DIM_N_MEASURES; i++)
        r->seconds[i] = i + 1;
    r->seconds_features = 0.5;
    r->seconds_total = 30;
}

static double point(const char *const *keys, const double *values, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i], key) == 0)
            return values[i];
    fail_msg("no point %s", key);
    return NAN;
}

static void test_result_points(void **state)
{
    (void)state;
    struct dim_eval_result r;
    full_result(&r);
    const char *keys[EVAL_MAX_KEYS], *mk[EVAL_MAX_KEYS];
    double values[EVAL_MAX_KEYS];
    size_t n = evalspec_result_points(&r, keys, values);
    size_t nk = evalspec_metric_keys(r.measures, mk);
    assert_int_equal(n + 1, nk);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(keys[i], mk[i + 1]);
    assert_true(point(keys, values, n, "eval_linear_conv") == 0.1);
    assert_true(point(keys, values, n, "eval_linear_y") == 2.1);
    assert_true(point(keys, values, n, "eval_mlp_fc") == 1.2);
    assert_true(point(keys, values, n, "eval_svm_y") == 2.3);
    assert_true(point(keys, values, n, "eval_linear_pixels") == 3.1);
    assert_true(point(keys, values, n, "eval_ndm") == 5.5);
    assert_true(point(keys, values, n, "eval_ndm_sigmoid") == 6.5);
    assert_true(point(keys, values, n, "eval_mine") == 7.5);
    assert_true(point(keys, values, n, "eval_ssim") == 8.5);
    assert_true(point(keys, values, n, "eval_ms_ssim") == 9.5);
    assert_true(point(keys, values, n, "eval_recon_mse") == 10.5);
    /* a failed figure is a NaN point, still listed */
    r.measures = DIM_MEASURE_MINE;
    r.mine = NAN;
    n = evalspec_result_points(&r, keys, values);
    assert_int_equal(n, 1);
    assert_string_equal(keys[0], "eval_mine");
    assert_true(isnan(values[0]));
}

static void test_result_json(void **state)
{
    (void)state;
    struct dim_eval_result r;
    full_result(&r);
    json_t *j = evalspec_result_json(&r);
    assert_int_equal(json_array_size(json_object_get(j, "measures")), DIM_N_MEASURES);
    assert_int_equal(json_integer_value(json_object_get(j, "n_train")), 1000);
    assert_int_equal(json_integer_value(json_object_get(j, "n_test")), 200);
    assert_true(json_real_value(json_object_get(json_object_get(j, "linear"), "fc")) == 1.1);
    json_t *svm = json_object_get(j, "svm");
    assert_true(json_real_value(json_object_get(svm, "y")) == 2.3);
    assert_true(json_real_value(json_object_get(svm, "pixels")) == 3.3);
    json_t *fit = json_object_get(json_object_get(svm, "fit"), "fc");
    assert_int_equal(json_integer_value(json_object_get(fit, "iterations")), 41);
    assert_true(json_real_value(json_object_get(fit, "lambda")) == 1e-3);
    assert_string_equal(json_string_value(json_object_get(fit, "stop")), "converged");
    assert_true(json_real_value(json_object_get(json_object_get(j, "mlp"), "pixels")) == 3.2);
    assert_true(json_real_value(json_object_get(j, "ms_ssim")) == 9.5);
    assert_int_equal(json_integer_value(json_object_get(j, "ms_ssim_scales")), 3);
    assert_int_equal(json_array_size(json_object_get(j, "failed")), 0);
    assert_true(json_is_null(json_object_get(j, "failure")));
    json_t *secs = json_object_get(j, "seconds");
    assert_true(json_real_value(json_object_get(secs, "mine")) == 5.0);
    assert_true(json_real_value(json_object_get(secs, "total")) == 30.0);
    json_decref(j);

    /* only the measures that ran; a failed one's figures are null, and named */
    memset(&r, 0, sizeof r);
    r.measures = DIM_MEASURE_LINEAR | DIM_MEASURE_NDM;
    r.failed = DIM_MEASURE_NDM;
    snprintf(r.failure, sizeof r.failure, "ndm: non-finite");
    for (int t = 0; t < DIM_PROBE_ROWS; t++)
        r.linear[t].accuracy = NAN;
    r.linear[0].accuracy = 0.5;
    r.linear[1].accuracy = 0.6;
    r.ndm = NAN;
    r.ndm_sigmoid = INFINITY;
    r.seconds[0] = 1;
    r.seconds[3] = NAN;
    r.seconds_features = NAN;
    r.seconds_total = 2;
    j = evalspec_result_json(&r);
    assert_null(json_object_get(j, "mlp"));
    assert_null(json_object_get(j, "svm"));
    assert_null(json_object_get(j, "mine"));
    assert_null(json_object_get(j, "ssim"));
    assert_true(json_is_null(json_object_get(json_object_get(j, "linear"), "y")));
    assert_true(json_real_value(json_object_get(json_object_get(j, "linear"), "fc")) == 0.6);
    assert_true(json_is_null(json_object_get(j, "ndm")));
    assert_true(json_is_null(json_object_get(j, "ndm_sigmoid")));
    json_t *failed = json_object_get(j, "failed");
    assert_int_equal(json_array_size(failed), 1);
    assert_string_equal(json_string_value(json_array_get(failed, 0)), "ndm");
    assert_string_equal(json_string_value(json_object_get(j, "failure")), "ndm: non-finite");
    secs = json_object_get(j, "seconds");
    assert_int_equal(json_object_size(secs), 4); /* features, linear, ndm, total */
    assert_true(json_is_null(json_object_get(secs, "ndm")));
    assert_true(json_is_null(json_object_get(secs, "features")));
    /* the whole reply is valid JSON (no NaN literal) */
    char *text = json_dumps(j, 0);
    assert_non_null(text);
    assert_null(strstr(text, "nan"));
    free(text);
    json_decref(j);
}

/* Results an older dimd stored (Adam SVM with mean and std, rows without
 * pixels or fit) come out in the current shape; current results are unchanged. */
static void test_result_upgrade(void **state)
{
    (void)state;
    json_t *old = specfix_load(
        "{\"linear\": {\"conv\": 0.8, \"fc\": 0.81, \"y\": 0.7}, \"mlp\": {\"conv\": 0.85, "
        "\"fc\": 0.84, \"y\": 0.75}, \"svm\": {\"mean\": {\"conv\": 0.79, \"fc\": 0.8, \"y\": "
        "0.69}, \"std\": {\"conv\": 0.01, \"fc\": 0.0, \"y\": 0.02}}, \"ndm\": 0.3}");
    evalspec_result_upgrade(old);
    json_t *svm = json_object_get(old, "svm");
    assert_true(json_real_value(json_object_get(svm, "fc")) == 0.8);
    assert_null(json_object_get(svm, "mean"));
    assert_null(json_object_get(svm, "std"));
    assert_true(json_is_null(json_object_get(svm, "pixels")));
    assert_true(json_is_null(json_object_get(json_object_get(svm, "fit"), "y")));
    json_t *lin = json_object_get(old, "linear");
    assert_true(json_real_value(json_object_get(lin, "y")) == 0.7);
    assert_true(json_is_null(json_object_get(lin, "pixels")));
    assert_true(json_is_object(json_object_get(lin, "fit")));
    json_t *mlp = json_object_get(old, "mlp");
    assert_true(json_is_null(json_object_get(mlp, "pixels")));
    assert_null(json_object_get(mlp, "fit")); /* the MLP has no solves */
    assert_true(json_real_value(json_object_get(old, "ndm")) == 0.3);
    json_decref(old);

    struct dim_eval_result r;
    full_result(&r);
    json_t *cur = evalspec_result_json(&r), *copy = json_deep_copy(cur);
    evalspec_result_upgrade(copy);
    assert_true(json_equal(cur, copy));
    json_decref(cur);
    json_decref(copy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_is_evaluation),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_root_and_required),
        cmocka_unit_test(test_model_names),
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_measures),
        cmocka_unit_test(test_budgets),
        cmocka_unit_test(test_all_errors_at_once),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_schema),
        cmocka_unit_test(test_metric_keys),
        cmocka_unit_test(test_result_points),
        cmocka_unit_test(test_result_json),
        cmocka_unit_test(test_result_upgrade),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

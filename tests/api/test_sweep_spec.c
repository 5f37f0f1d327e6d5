/* test_sweep_spec.c - a sweep's body and the search logic (api/sweep_spec.h):
 * validation with every problem at once and its path, defaults, the resolved
 * form parsing back to the same spec, grid points (every one once, the last
 * key fastest), random draws (in range, log-uniform spread over decades,
 * integers, a function of (seed, trial) only), ASHA's seeded grid order (no
 * point twice), rungs and their steps, the trials' job bodies, and ASHA's
 * decisions at a rung (top 1/eta promoted while incomplete, the rest stopped
 * once complete, non-finite values never promoted, slots, decisions taken
 * before left alone, direction).
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

#include "api/sweep_spec.h"

static int check_dataset(const void *ctx, const char *name, struct dim_err *err)
{
    (void)ctx;
    if (strcmp(name, "fashion-mnist") == 0)
        return 0;
    return dim_fail(err, DIM_ENOENT, "no dataset '%s'", name);
}

static int parse(const char *text, struct sweep_spec *s, json_t **errors)
{
    json_error_t jerr;
    json_t *body = json_loads(text, 0, &jerr);
    assert_non_null(body);
    *errors = json_array();
    int n = sweep_spec_parse(body, check_dataset, NULL, s, *errors);
    json_decref(body);
    return n;
}

static bool has_path(const json_t *errors, const char *path)
{
    for (size_t i = 0; i < json_array_size(errors); i++)
        if (strcmp(json_string_value(json_object_get(json_array_get(errors, i), "path")), path) ==
            0)
            return true;
    return false;
}

#define BASE "\"base\": {\"dataset\": \"fashion-mnist\", \"probe\": \"none\"}"

static void test_every_problem_at_once(void **state)
{
    (void)state;
    struct sweep_spec s;
    json_t *e;
    int n = parse("{\"base\": {\"dataset\": \"nope\", \"steps\": 3}, \"space\": {\"lr\": [0.001, "
                  "-1], \"estimator\": [\"jsd\", \"bogus\"], \"gamma\": {\"min\": 1, \"max\": 0}, "
                  "\"batch\": {\"min\": 1, \"max\": 8, \"scale\": \"int\", \"x\": 1}}, "
                  "\"algorithm\": \"bayes\", \"budget\": {\"steps\": 0}, \"trials\": 0, "
                  "\"direction\": \"up\", \"colour\": 1}",
                  &s, &e);
    const char *want[] = {"$.base.steps", "$.base.dataset", "$.space.lr[1]", "$.space.estimator[1]",
                          "$.space.gamma", "$.space.batch.x", "$.algorithm", "$.budget.steps",
                          "$.trials", "$.direction", "$.colour"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!has_path(e, want[i])) {
            char *t = json_dumps(e, 0);
            fail_msg("no error at %s in %s", want[i], t);
        }
    assert_int_equal(n, (int)json_array_size(e));
    json_decref(e);
    sweep_spec_clear(&s);

    /* the dataset of the base is checked (no banned key hides it) */
    n = parse("{\"base\": {\"dataset\": \"nope\"}, \"space\": {\"lr\": [0.001]}, \"budget\": "
              "{\"steps\": 5}}",
              &s, &e);
    assert_true(has_path(e, "$.base.dataset"));
    json_decref(e);
    sweep_spec_clear(&s);

    /* grid over a range, a float range on an integer key, a log range from 0, a metric the
     * trials do not write, asha settings on grid */
    n = parse("{" BASE ", \"space\": {\"lr\": {\"min\": 0, \"max\": 0.1, \"scale\": \"log\"}, "
              "\"mi_dim\": {\"min\": 8, \"max\": 64}}, \"algorithm\": \"grid\", \"trials\": 3, "
              "\"metric\": \"probe_y\", \"budget\": {\"epochs\": 1}, \"asha\": {}}",
              &s, &e);
    assert_true(has_path(e, "$.space.lr"));
    assert_true(has_path(e, "$.space.mi_dim"));
    assert_true(has_path(e, "$.asha"));
    assert_true(has_path(e, "$.metric") || has_path(e, "$.validation_images"));
    assert_true(n >= 4);
    json_decref(e);
    sweep_spec_clear(&s);
}

static void test_defaults_and_round_trip(void **state)
{
    (void)state;
    struct sweep_spec s, t;
    json_t *e;
    assert_int_equal(parse("{\"base\": {\"dataset\": \"fashion-mnist\", \"probe\": \"linear\"}, "
                           "\"space\": {\"lr\": [0.0001, 0.001, 0.01], \"gamma\": [0, 0.1]}, "
                           "\"budget\": {\"steps\": 90}}",
                           &s, &e),
                     0);
    json_decref(e);
    assert_int_equal(s.algo, SWEEP_ASHA);
    assert_int_equal(s.trials, 6); /* the grid's size */
    assert_string_equal(s.metric, "probe_y");
    assert_true(s.maximize);
    assert_int_equal(s.validation_images, 2000);
    assert_int_equal(s.eta, 3);
    assert_true(fabs(s.min_resource - 10) < 1e-9); /* 90 / 3^2 */
    json_t *j = sweep_spec_to_json(&s);
    assert_int_equal(sweep_spec_parse(j, check_dataset, NULL, &t, e = json_array()), 0);
    json_t *j2 = sweep_spec_to_json(&t);
    assert_true(json_equal(j, j2));
    json_decref(j);
    json_decref(j2);
    json_decref(e);
    sweep_spec_clear(&s);
    sweep_spec_clear(&t);
    /* a loss: minimised, no validation split */
    assert_int_equal(parse("{" BASE ", \"space\": {\"lr\": [0.001]}, \"budget\": {\"steps\": 9}}",
                           &s, &e),
                     0);
    json_decref(e);
    assert_string_equal(s.metric, "loss_total");
    assert_false(s.maximize);
    assert_int_equal(s.validation_images, 0);
    sweep_spec_clear(&s);
}

static void test_grid_points_each_once(void **state)
{
    (void)state;
    struct sweep_spec s;
    json_t *e;
    assert_int_equal(parse("{" BASE ", \"space\": {\"lr\": [0.001, 0.01, 0.1], \"batch\": [8, "
                           "16]}, \"algorithm\": \"grid\", \"budget\": {\"steps\": 5}}",
                           &s, &e),
                     0);
    json_decref(e);
    assert_int_equal(sweep_grid_size(&s), 6);
    assert_int_equal(s.trials, 6);
    int seen[3][2] = {{0}};
    const double lrs[3] = {0.001, 0.01, 0.1};
    for (int i = 0; i < 6; i++) {
        json_t *p = sweep_trial_params(&s, i);
        double lr = json_number_value(json_object_get(p, "lr"));
        int b = (int)json_integer_value(json_object_get(p, "batch"));
        int li = -1;
        for (int k = 0; k < 3; k++)
            if (fabs(lr - lrs[k]) < 1e-12)
                li = k;
        assert_true(li >= 0 && (b == 8 || b == 16));
        seen[li][b == 16]++;
        if (i == 1) /* the last key varies fastest */
            assert_true(li == 0 && b == 16);
        json_decref(p);
    }
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 2; b++)
            assert_int_equal(seen[a][b], 1);
    sweep_spec_clear(&s);
}

static void test_random_draws(void **state)
{
    (void)state;
    struct sweep_spec s;
    json_t *e;
    assert_int_equal(parse("{" BASE ", \"space\": {\"lr\": {\"min\": 1e-5, \"max\": 1e-1, "
                           "\"scale\": \"log\"}, \"mi_dim\": {\"min\": 8, \"max\": 11, \"scale\": "
                           "\"int\"}, \"gamma\": {\"min\": 0.2, \"max\": 0.4}}, \"algorithm\": "
                           "\"random\", \"seed\": 42, \"trials\": 400, \"budget\": {\"steps\": 5}}",
                           &s, &e),
                     0);
    json_decref(e);
    int decades[4] = {0}, ints[4] = {0};
    for (int i = 0; i < 400; i++) {
        json_t *p = sweep_trial_params(&s, i);
        double lr = json_number_value(json_object_get(p, "lr"));
        double g = json_number_value(json_object_get(p, "gamma"));
        json_t *m = json_object_get(p, "mi_dim");
        assert_true(json_is_integer(m));
        assert_true(lr >= 1e-5 && lr <= 1e-1);
        assert_true(g >= 0.2 && g <= 0.4);
        int d = (int)floor(log10(lr) + 5);
        decades[d < 0 ? 0 : d > 3 ? 3 : d]++;
        ints[json_integer_value(m) - 8]++;
        /* a function of (seed, trial) alone */
        json_t *q = sweep_trial_params(&s, i);
        assert_true(json_equal(p, q));
        json_decref(q);
        json_decref(p);
    }
    for (int d = 0; d < 4; d++) /* log-uniform: ~100 per decade */
        assert_true(decades[d] > 60 && decades[d] < 140);
    for (int k = 0; k < 4; k++)
        assert_true(ints[k] > 60 && ints[k] < 140);
    /* another seed, other draws */
    json_t *a = sweep_trial_params(&s, 0);
    s.seed = 43;
    json_t *b = sweep_trial_params(&s, 0);
    assert_false(json_equal(a, b));
    json_decref(a);
    json_decref(b);
    sweep_spec_clear(&s);
}

static void test_asha_takes_distinct_grid_points(void **state)
{
    (void)state;
    struct sweep_spec s;
    json_t *e;
    assert_int_equal(parse("{" BASE ", \"space\": {\"seed\": [1, 2, 3, 4, 5, 6, 7, 8]}, "
                           "\"trials\": 8, \"seed\": 9, \"budget\": {\"steps\": 5}}",
                           &s, &e),
                     0);
    json_decref(e);
    int seen[9] = {0};
    bool in_order = true;
    for (int i = 0; i < 8; i++) {
        json_t *p = sweep_trial_params(&s, i);
        int v = (int)json_integer_value(json_object_get(p, "seed"));
        assert_true(v >= 1 && v <= 8);
        seen[v]++;
        in_order = in_order && v == i + 1;
        json_decref(p);
    }
    for (int v = 1; v <= 8; v++)
        assert_int_equal(seen[v], 1);
    assert_false(in_order); /* shuffled by the seed */
    sweep_spec_clear(&s);
}

static void test_rungs_and_trial_bodies(void **state)
{
    (void)state;
    struct sweep_spec s;
    json_t *e;
    assert_int_equal(parse("{\"name\": \"r\", " BASE ", \"space\": {\"lr\": [0.001]}, "
                           "\"budget\": {\"steps\": 100}, \"asha\": {\"min_resource\": 4, "
                           "\"reduction_factor\": 3}}",
                           &s, &e),
                     0);
    json_decref(e);
    double r[SWEEP_MAX_RUNGS];
    int n = sweep_rungs(&s, r);
    assert_int_equal(n, 4); /* 4, 12, 36, 100 */
    assert_true(r[0] == 4 && r[1] == 12 && r[2] == 36 && r[3] == 100);
    assert_int_equal(sweep_rung_step(100, 4, 100), 4);
    assert_int_equal(sweep_rung_step(1000, 4, 100), 40); /* epochs: in proportion */
    assert_int_equal(sweep_rung_step(10, 0.5, 100), 1);  /* never step 0 */
    assert_int_equal(sweep_rung_step(10, 100, 100), 10);
    json_t *b = sweep_trial_body(&s, 7, 0);
    assert_int_equal(json_integer_value(json_object_get(b, "sweep_id")), 7);
    assert_int_equal(json_integer_value(json_object_get(b, "trial")), 0);
    assert_int_equal(json_integer_value(json_object_get(b, "steps")), 100);
    assert_string_equal(json_string_value(json_object_get(b, "best_metric")), "loss_total");
    assert_string_equal(json_string_value(json_object_get(b, "name")), "r #0");
    assert_true(json_object_get(b, "lr") != NULL);
    /* the body is a valid job */
    struct job_spec js;
    json_t *errs = json_array();
    assert_int_equal(jobspec_parse(b, check_dataset, NULL, &js, errs), 0);
    assert_int_equal(js.sweep_id, 7);
    json_decref(errs);
    json_decref(b);
    s.algo = SWEEP_GRID;
    assert_int_equal(sweep_rungs(&s, r), 1);
    sweep_spec_clear(&s);
}

static size_t decide(struct sweep_rung_entry *e, size_t n, bool complete, size_t slots,
                     int64_t *p, size_t *np, int64_t *st, size_t *ns, bool maximize)
{
    sweep_asha_decide(e, n, 3, maximize, complete, slots, p, np, st, ns);
    return *np + *ns;
}

static void test_asha_decisions(void **state)
{
    (void)state;
    int64_t p[16], st[16];
    size_t np, ns;
    /* 2 results, eta 3: nothing yet */
    struct sweep_rung_entry e[9] = {{0, 0.5, 0}, {1, 0.3, 0}};
    assert_int_equal(decide(e, 2, false, 4, p, &np, st, &ns, false), 0);
    /* 3 results: the best (lowest loss) is promoted */
    e[2] = (struct sweep_rung_entry){2, 0.4, 0};
    decide(e, 3, false, 4, p, &np, st, &ns, false);
    assert_int_equal(np, 1);
    assert_int_equal(p[0], 1);
    assert_int_equal(ns, 0);
    /* maximising: the highest */
    decide(e, 3, false, 4, p, &np, st, &ns, true);
    assert_int_equal(p[0], 0);
    /* 6 results, trial 1 promoted before, a NaN, no slot: nothing promoted, nothing stopped */
    struct sweep_rung_entry f[6] = {{0, 0.5, 0}, {1, 0.3, SWEEP_PROMOTE}, {2, 0.4, 0},
                                    {3, NAN, 0}, {4, 0.1, 0}, {5, 0.9, 0}};
    assert_int_equal(decide(f, 6, false, 0, p, &np, st, &ns, false), 0);
    /* a slot: the best undecided of the top 2 (trial 4) */
    decide(f, 6, false, 1, p, &np, st, &ns, false);
    assert_int_equal(np, 1);
    assert_int_equal(p[0], 4);
    /* complete: top 2 = {4, 1}; 1 decided before; the other four stopped (NaN included) */
    struct sweep_rung_entry g[6] = {{0, 0.5, 0}, {1, 0.3, SWEEP_PROMOTE}, {2, 0.4, 0},
                                    {3, NAN, 0}, {4, 0.1, 0}, {5, 0.9, 0}};
    decide(g, 6, true, 4, p, &np, st, &ns, false);
    assert_int_equal(np, 1);
    assert_int_equal(p[0], 4);
    assert_int_equal(ns, 4);
    int64_t sum = 0;
    for (size_t i = 0; i < ns; i++)
        sum += st[i];
    assert_int_equal(sum, 0 + 2 + 3 + 5);
    /* complete with fewer results than eta: the best one still continues */
    struct sweep_rung_entry h[2] = {{0, 0.5, 0}, {1, 0.3, 0}};
    decide(h, 2, true, 4, p, &np, st, &ns, false);
    assert_int_equal(np, 1);
    assert_int_equal(p[0], 1);
    assert_int_equal(ns, 1);
    assert_int_equal(st[0], 0);
    /* only NaNs: none promoted, all stopped */
    struct sweep_rung_entry k[3] = {{0, NAN, 0}, {1, NAN, 0}, {2, NAN, 0}};
    decide(k, 3, true, 4, p, &np, st, &ns, false);
    assert_int_equal(np, 0);
    assert_int_equal(ns, 3);
    /* ties: the lower trial number first */
    struct sweep_rung_entry t[3] = {{5, 0.2, 0}, {2, 0.2, 0}, {9, 0.3, 0}};
    decide(t, 3, false, 4, p, &np, st, &ns, false);
    assert_int_equal(p[0], 2);
    assert_true(sweep_better(0.1, NAN, false) && !sweep_better(NAN, 0.1, true));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_problem_at_once),
        cmocka_unit_test(test_defaults_and_round_trip),
        cmocka_unit_test(test_grid_points_each_once),
        cmocka_unit_test(test_random_draws),
        cmocka_unit_test(test_asha_takes_distinct_grid_points),
        cmocka_unit_test(test_rungs_and_trial_bodies),
        cmocka_unit_test(test_asha_decisions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

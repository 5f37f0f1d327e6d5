/* test_evaluate.c - dim_evaluate, the one entry point of the measures: names
 * and lists of measures, every selected measure finite and every unselected one
 * NaN on a tiny model and dataset, the subset sizes, reproducibility, progress
 * reports (monotone, ending at 1), cancellation before and during a run, and
 * argument errors. Budgets are tiny: this checks the plumbing, while the
 * measures' own tests check their maths. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/blas.h"
#include "dimfix.h"
#include "eval/evaluate.h"

struct fixture {
    struct dim_model *m;
    struct dim_dataset train, test;
    struct dim_preprocess pp;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    struct dim_config cfg = dimfix_config(8, 16, 16);
    assert_int_equal(dim_model_create(&f->m, &cfg, false, NULL), 0);
    dimfix_random_dataset(&f->train, 64, 3, 1);
    dimfix_random_dataset(&f->test, 40, 3, 2);
    f->pp = (struct dim_preprocess){1, 28, 28, 0, 0};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    dim_model_free(f->m);
    dim_dataset_free(&f->train);
    dim_dataset_free(&f->test);
    free(f);
    return 0;
}

static void tiny_opts(struct dim_eval_opts *o)
{
    dim_eval_opts_default(o);
    o->probe_epochs = 1;
    o->ndm_steps = 4;
    o->mine_steps = 4;
    o->recon_epochs = 1;
    o->grid_pairs = 3;
}

static void test_measure_names_and_lists(void **state)
{
    (void)state;
    assert_string_equal(dim_measure_name(DIM_MEASURE_LINEAR), "linear");
    assert_string_equal(dim_measure_name(DIM_MEASURE_RECON), "recon");
    assert_string_equal(dim_measure_name(DIM_MEASURE_NDM | DIM_MEASURE_MINE), "?");
    assert_int_equal(dim_measure_index(DIM_MEASURE_MINE), 4);
    assert_int_equal(dim_measure_index(0), -1);
    assert_int_equal(dim_measure_index(1u << 6), -1);
    unsigned mask;
    struct dim_err err;
    assert_int_equal(dim_measure_parse("linear,mlp,svm,ndm,mine,recon", &mask, &err), 0);
    assert_int_equal(mask, DIM_MEASURE_ALL);
    assert_int_equal(dim_measure_parse("all", &mask, &err), 0);
    assert_int_equal(mask, DIM_MEASURE_ALL);
    assert_int_equal(dim_measure_parse("recon,ndm,ndm", &mask, &err), 0);
    assert_int_equal(mask, DIM_MEASURE_RECON | DIM_MEASURE_NDM);
    assert_int_equal(dim_measure_parse("ndm,pca", &mask, &err), DIM_EINVAL);
    assert_non_null(strstr(err.msg, "'pca'"));
    assert_int_equal(dim_measure_parse("ndm,", &mask, &err), DIM_EINVAL);
    assert_non_null(strstr(err.msg, "empty"));
    assert_int_equal(dim_measure_parse("", &mask, &err), DIM_EINVAL);
    assert_int_equal(dim_measure_parse("linearx", &mask, &err), DIM_EINVAL);
    char buf[64];
    assert_int_equal(dim_measure_format(DIM_MEASURE_RECON | DIM_MEASURE_LINEAR, buf, sizeof buf),
                     12);
    assert_string_equal(buf, "linear,recon");
    char small[8];
    size_t need = dim_measure_format(DIM_MEASURE_ALL, small, sizeof small);
    assert_int_equal(need, strlen("linear,mlp,svm,ndm,mine,recon"));
    assert_true(strlen(small) < sizeof small);
}

static void test_all_measures_finite(void **state)
{
    struct fixture *f = *state;
    struct dim_eval_opts o;
    tiny_opts(&o);
    struct dim_eval_result r;
    struct dim_err err;
    int rc = dim_evaluate(f->m, &f->train, &f->test, &f->pp, &o, &r, &err);
    if (rc)
        print_message("dim_evaluate: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(r.measures, DIM_MEASURE_ALL);
    assert_int_equal(r.failed, 0);
    assert_int_equal(r.n_train, 64);
    assert_int_equal(r.n_test, 40);
    for (int t = 0; t < DIM_PROBE_ROWS; t++) { /* the taps and the pixels */
        assert_true(r.linear[t].accuracy >= 0.0 && r.linear[t].accuracy <= 1.0);
        assert_true(r.mlp[t] >= 0.0 && r.mlp[t] <= 1.0);
        assert_true(r.svm[t].accuracy >= 0.0 && r.svm[t].accuracy <= 1.0);
        assert_true(r.linear[t].iterations > 0 && r.svm[t].iterations > 0);
        assert_true(r.linear[t].gnorm <= 1e-4 && r.svm[t].gnorm <= 1e-4);
        assert_true(r.linear[t].lambda > 0.0 && r.svm[t].lambda > 0.0);
    }
    assert_true(isfinite(r.ndm) && isfinite(r.ndm_sigmoid) && isfinite(r.mine));
    assert_true(r.recon_mse >= 0.0 && r.recon_mse <= 1.0);
    assert_true(r.ssim > -1.0 && r.ssim <= 1.0);
    assert_int_equal(r.ms_ssim_scales, 2); /* 28x28 -> 14x14 */
    assert_true(r.ms_ssim >= 0.0 && r.ms_ssim <= 1.0);
    assert_non_null(r.grid_png);
    assert_true(r.grid_png_size > 8 && memcmp(r.grid_png, "\x89PNG", 4) == 0);
    for (int i = 0; i < DIM_N_MEASURES; i++)
        assert_true(r.seconds[i] >= 0.0);
    assert_true(r.seconds_features >= 0.0 && r.seconds_total >= r.seconds_features);
    dim_eval_result_free(&r);
    assert_null(r.grid_png);
    assert_true(isnan(r.ndm));
}

static void test_unselected_measures_are_nan(void **state)
{
    struct fixture *f = *state;
    struct dim_eval_opts o;
    tiny_opts(&o);
    o.measures = DIM_MEASURE_NDM | DIM_MEASURE_RECON;
    o.grid_pairs = 0;
    o.max_train = 30;
    o.max_test = 20;
    struct dim_eval_result r;
    assert_int_equal(dim_evaluate(f->m, &f->train, &f->test, &f->pp, &o, &r, NULL), 0);
    assert_int_equal(r.measures, DIM_MEASURE_NDM | DIM_MEASURE_RECON);
    assert_int_equal(r.n_train, 30);
    assert_int_equal(r.n_test, 20);
    for (int t = 0; t < DIM_PROBE_ROWS; t++)
        assert_true(isnan(r.linear[t].accuracy) && isnan(r.mlp[t]) && isnan(r.svm[t].accuracy));
    assert_true(isnan(r.mine));
    assert_true(isfinite(r.ndm) && isfinite(r.ndm_sigmoid) && isfinite(r.ssim));
    assert_null(r.grid_png);
    assert_true(isnan(r.seconds[dim_measure_index(DIM_MEASURE_LINEAR)]));
    assert_true(isnan(r.seconds[dim_measure_index(DIM_MEASURE_MINE)]));
    assert_true(r.seconds[dim_measure_index(DIM_MEASURE_NDM)] >= 0.0);
    dim_eval_result_free(&r);
}

static void test_reproducible(void **state)
{
    struct fixture *f = *state;
    struct dim_eval_opts o;
    tiny_opts(&o);
    o.measures = DIM_MEASURE_LINEAR | DIM_MEASURE_SVM | DIM_MEASURE_MINE | DIM_MEASURE_RECON;
    struct dim_eval_result a, b;
    assert_int_equal(dim_evaluate(f->m, &f->train, &f->test, &f->pp, &o, &a, NULL), 0);
    assert_int_equal(dim_evaluate(f->m, &f->train, &f->test, &f->pp, &o, &b, NULL), 0);
    for (int t = 0; t < DIM_PROBE_ROWS; t++) {
        assert_true(a.linear[t].accuracy == b.linear[t].accuracy);
        assert_true(a.linear[t].gnorm == b.linear[t].gnorm);
        assert_true(a.svm[t].accuracy == b.svm[t].accuracy);
        assert_int_equal(a.svm[t].iterations, b.svm[t].iterations);
    }
    assert_true(a.mine == b.mine && a.recon_mse == b.recon_mse && a.ssim == b.ssim);
    assert_int_equal(a.grid_png_size, b.grid_png_size);
    assert_memory_equal(a.grid_png, b.grid_png, a.grid_png_size);
    o.seed = 2; /* another seed: another MINE critic */
    dim_eval_result_free(&b);
    assert_int_equal(dim_evaluate(f->m, &f->train, &f->test, &f->pp, &o, &b, NULL), 0);
    assert_true(a.mine != b.mine);
    dim_eval_result_free(&a);
    dim_eval_result_free(&b);
}

struct progress_log {
    int n;
    double frac[4096];
    const char *stage[4096];
    atomic_bool *cancel_at_mine; /* set this flag when the "mine" stage starts */
};

static void on_progress(void *ctx, const char *stage, double fraction)
{
    struct progress_log *p = ctx;
    if (p->n < 4096) {
        p->frac[p->n] = fraction;
        p->stage[p->n] = stage;
        p->n++;
    }
    if (p->cancel_at_mine && strcmp(stage, "mine") == 0)
        atomic_store(p->cancel_at_mine, true);
}

static void test_progress_is_monotone_and_ends_at_one(void **state)
{
    struct fixture *f = *state;
    struct dim_eval_opts o;
    tiny_opts(&o);
    static struct progress_log log;
    memset(&log, 0, sizeof log);
    o.progress = on_progress;
    o.progress_ctx = &log;
    struct dim_eval_result r;
    assert_int_equal(dim_evaluate(f->m, &f->train, &f->test, &f->pp, &o, &r, NULL), 0);
    assert_true(log.n > 10);
    assert_string_equal(log.stage[0], "features");
    for (int i = 1; i < log.n; i++)
        assert_true(log.frac[i] >= log.frac[i - 1] - 1e-12);
    assert_true(fabs(log.frac[log.n - 1] - 1.0) < 1e-9);
    assert_string_equal(log.stage[log.n - 1], "recon");
    const char *order[] = {"features", "linear", "mlp", "svm", "ndm", "mine", "recon"};
    int k = 0;
    for (int i = 0; i < log.n; i++) /* stages appear in order, each once */
        if (strcmp(log.stage[i], order[k]) != 0) {
            k++;
            assert_true(k < 7);
            assert_string_equal(log.stage[i], order[k]);
        }
    assert_int_equal(k, 6);
    dim_eval_result_free(&r);
}

static void test_cancel_before_and_during(void **state)
{
    struct fixture *f = *state;
    struct dim_eval_opts o;
    tiny_opts(&o);
    atomic_bool stop = true;
    o.cancel = &stop;
    struct dim_eval_result r;
    struct dim_err err;
    assert_int_equal(dim_evaluate(f->m, &f->train, &f->test, &f->pp, &o, &r, &err), DIM_ECANCELLED);
    assert_int_equal(r.measures, 0);
    dim_eval_result_free(&r);

    atomic_store(&stop, false);
    static struct progress_log log;
    memset(&log, 0, sizeof log);
    log.cancel_at_mine = &stop;
    o.progress = on_progress;
    o.progress_ctx = &log;
    o.mine_steps = 100000; /* would take minutes: the cancel must cut it short */
    assert_int_equal(dim_evaluate(f->m, &f->train, &f->test, &f->pp, &o, &r, &err), DIM_ECANCELLED);
    assert_non_null(strstr(err.msg, "cancel"));
    assert_int_equal(r.measures,
                     DIM_MEASURE_LINEAR | DIM_MEASURE_MLP | DIM_MEASURE_SVM | DIM_MEASURE_NDM);
    assert_true(isfinite(r.ndm) && isnan(r.mine) && isnan(r.ssim));
    dim_eval_result_free(&r);
}

static void test_rejects_bad_arguments(void **state)
{
    struct fixture *f = *state;
    struct dim_eval_opts o;
    tiny_opts(&o);
    struct dim_eval_result r;
    struct dim_err err;
    struct dim_preprocess bad = {1, 32, 32, 0, 0};
    assert_int_equal(dim_evaluate(f->m, &f->train, &f->test, &bad, &o, &r, &err), DIM_ESHAPE);
    assert_non_null(strstr(err.msg, "32"));
    o.measures = 0;
    assert_int_equal(dim_evaluate(f->m, &f->train, &f->test, &f->pp, &o, &r, &err), DIM_EINVAL);
    tiny_opts(&o);
    o.probe_epochs = 0;
    assert_int_equal(dim_evaluate(f->m, &f->train, &f->test, &f->pp, &o, &r, &err), DIM_EINVAL);
    assert_non_null(strstr(err.msg, "probe_epochs"));
    tiny_opts(&o);
    o.max_test = 1;
    assert_int_equal(dim_evaluate(f->m, &f->train, &f->test, &f->pp, &o, &r, &err), DIM_EINVAL);
    tiny_opts(&o);
    struct dim_dataset one = f->train;
    one.n_classes = 1;
    struct dim_dataset one_test = f->test;
    one_test.n_classes = 1;
    assert_int_equal(dim_evaluate(f->m, &one, &one_test, &f->pp, &o, &r, &err), DIM_EINVAL);
    o.measures = DIM_MEASURE_NDM; /* needs no labels */
    assert_int_equal(dim_evaluate(f->m, &one, &one_test, &f->pp, &o, &r, &err), 0);
    dim_eval_result_free(&r);
}

int main(void)
{
    nn_blas_set_threads(1); /* small GEMMs: one thread is quicker and deterministic */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_measure_names_and_lists),
        cmocka_unit_test_setup_teardown(test_all_measures_finite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unselected_measures_are_nan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reproducible, setup, teardown),
        cmocka_unit_test_setup_teardown(test_progress_is_monotone_and_ends_at_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_before_and_during, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejects_bad_arguments, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

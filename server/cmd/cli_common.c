/* cli_common.c - flag parsing, dataset loading and probe reports shared by the CLI commands. */
#include "cmd/cli.h"

#include "base/blas.h"
#include "base/parallel.h"
#include "dim/hparams.h"
#include "util/clock.h"
#include "util/threadpool.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int cli_next_flag(int argc, char **argv, int *i, const char **name, const char **value,
                  const char *const *with_value, bool hparams)
{
    static char buf[128];
    const char *a = argv[*i];
    if (strncmp(a, "--", 2) != 0 || a[2] == '\0')
        return 0;
    a += 2;
    const char *eq = strchr(a, '=');
    if (eq) {
        size_t n = (size_t)(eq - a);
        if (n >= sizeof buf)
            return -1;
        memcpy(buf, a, n);
        buf[n] = '\0';
        *name = buf;
        *value = eq + 1;
        (*i)++;
        return 1;
    }
    *name = a;
    *value = NULL;
    (*i)++;
    bool takes_value = hparams && dim_hparam_find(a) != NULL;
    for (const char *const *w = with_value; *w && !takes_value; w++)
        takes_value = strcmp(a, *w) == 0;
    if (takes_value) {
        if (*i >= argc)
            return -1;
        *value = argv[(*i)++];
    }
    return 1;
}

int cli_parse_u64(const char *cmd, const char *name, const char *v, uint64_t lo, uint64_t hi,
                  uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (!*v || *end || errno || v[0] == '-' || x < lo || x > hi) {
        fprintf(stderr, "dimd %s: --%s '%s' must be an integer in [%llu, %llu]\n", cmd, name, v,
                (unsigned long long)lo, (unsigned long long)hi);
        return -1;
    }
    *out = x;
    return 0;
}

int cli_parse_double(const char *cmd, const char *name, const char *v, double lo, double hi,
                     double *out)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (!*v || *end || errno || !isfinite(x) || x < lo || x > hi) {
        fprintf(stderr, "dimd %s: --%s '%s' must be a number in [%g, %g]\n", cmd, name, v, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

int cli_load_dataset(const char *cmd, const char *spec, struct dim_dataset *train,
                     struct dim_dataset *test)
{
    struct dim_dataset_limits lim = {0, 64u << 20};
    struct dim_err err;
    if (dim_dataset_load(spec, DIM_SPLIT_TRAIN, &lim, train, &err) != 0) {
        fprintf(stderr, "dimd %s: dataset %s: %s\n", cmd, spec, err.msg);
        return -1;
    }
    if (dim_dataset_load(spec, DIM_SPLIT_TEST, &lim, test, &err) != 0) {
        fprintf(stderr, "dimd %s: dataset %s (test split): %s\n", cmd, spec, err.msg);
        dim_dataset_free(train);
        return -1;
    }
    if (test->n_classes > train->n_classes)
        train->n_classes = test->n_classes;
    return 0;
}

int cli_probe_compare(const struct dim_model *m, bool fresh, bool pixels,
                      const struct dim_dataset *train,
                      const struct dim_dataset *test, const struct dim_probe_opts *po,
                      struct cli_probe_table *t)
{
    struct dim_err err;
    struct dim_model *f = NULL;
    double t0 = clock_mono_s();
    memset(t, 0, sizeof *t);
    t->has_fresh = fresh;
    t->has_pixels = pixels;
    const struct dim_preprocess pp = dim_model_preprocess(m);
    int rc = dim_probe_model(m, train, test, po, t->trained, &err);
    if (rc == 0 && fresh && (rc = dim_model_create(&f, &m->cfg, false, &err)) == 0)
        rc = dim_probe_model(f, train, test, po, t->fresh, &err);
    if (rc == 0 && pixels)
        rc = dim_probe_pixels(train, test, &pp, po, &t->pixels, &err);
    dim_model_free(f);
    t->seconds = clock_mono_s() - t0;
    if (rc != 0) {
        fprintf(stderr, "dimd: probe: %s\n", err.msg);
        return -1;
    }
    return 0;
}

void cli_probe_print(const struct cli_probe_table *t, const struct dim_probe_opts *po)
{
    printf("%s probe%s, test accuracy      conv     fc       y\n", dim_probe_kind_name(po->kind),
           po->kind == DIM_PROBE_LINEAR ? " (converged)" : "");
    const struct dim_linclass_result *rows[2] = {t->trained, t->fresh};
    const char *who[2] = {"trained encoder", "fresh encoder  "};
    for (int k = 0; k < 1 + t->has_fresh; k++)
        printf("  %s                %.4f   %.4f   %.4f\n", who[k], rows[k][0].accuracy,
               rows[k][1].accuracy, rows[k][2].accuracy);
    if (t->has_pixels)
        printf("  raw pixels, same probe         %.4f\n", t->pixels.accuracy);
    if (po->kind == DIM_PROBE_LINEAR)
        printf("  (L2 weight chosen on a %.0f %% validation split; trained y: lambda %g, %d "
               "iterations, |grad| %.1e, %s)\n",
               100 * po->linear.val_fraction, t->trained[2].lambda, t->trained[2].iterations,
               t->trained[2].gnorm, nn_lbfgs_stop_name(t->trained[2].stop));
}

static json_t *fit_json(const struct dim_linclass_result *r)
{
    return json_pack("{s:f, s:f, s:i, s:f, s:s}", "lambda", r->lambda, "val_accuracy",
                     r->val_accuracy, "iterations", r->iterations, "gnorm", r->gnorm, "stop",
                     nn_lbfgs_stop_name(r->stop));
}

json_t *cli_probe_json(const struct cli_probe_table *t, const struct dim_probe_opts *po)
{
    json_t *o = json_object(), *fit = json_object();
    json_object_set_new(o, "kind", json_string(dim_probe_kind_name(po->kind)));
    if (po->kind == DIM_PROBE_MLP)
        json_object_set_new(o, "epochs", json_integer(po->epochs));
    json_object_set_new(o, "seconds", json_real(t->seconds));
    const struct dim_linclass_result *rows[2] = {t->trained, t->fresh};
    const char *who[2] = {"trained", "fresh"};
    for (int k = 0; k < 1 + t->has_fresh; k++) {
        json_t *acc = json_object(), *f = json_object();
        for (int tap = 0; tap < DIM_N_PROBE_TAPS; tap++) {
            json_object_set_new(acc, dim_probe_row_name(tap), json_real(rows[k][tap].accuracy));
            json_object_set_new(f, dim_probe_row_name(tap), fit_json(&rows[k][tap]));
        }
        json_object_set_new(o, who[k], acc);
        json_object_set_new(fit, who[k], f);
    }
    if (t->has_pixels) {
        json_object_set_new(o, "pixels", json_real(t->pixels.accuracy));
        json_object_set_new(fit, "pixels", fit_json(&t->pixels));
    }
    if (po->kind == DIM_PROBE_LINEAR)
        json_object_set_new(o, "fit", fit);
    else
        json_decref(fit);
    return o;
}

struct threadpool *cli_threads_use(int threads)
{
    struct threadpool *pool = threads > 1 ? threadpool_create(threads - 1) : NULL;
    nn_blas_set_threads(pool ? 1 : threads);
    if (pool)
        dim_parallel_use(threadpool_parallel(pool));
    return pool;
}

void cli_threads_release(struct threadpool *pool)
{
    dim_parallel_use(NULL);
    threadpool_free(pool);
}

void cli_print_json(json_t *o, int digits)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(digits));
    if (s)
        printf("%s\n", s);
    free(s);
    json_decref(o);
}

/* cli_common.c - flag parsing, dataset loading and probe reports shared by the CLI commands. */
#include "cmd/cli.h"

#include "base/blas.h"
#include "base/parallel.h"
#include "dim/hparams.h"
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

int cli_probe_model(const struct dim_model *m, const struct dim_dataset *train,
                    const struct dim_dataset *test, const struct dim_probe_opts *po,
                    double acc[DIM_N_PROBE_TAPS])
{
    struct dim_err err;
    if (dim_probe_model(m, train, test, po, acc, &err) != 0) {
        fprintf(stderr, "dimd: probe: %s\n", err.msg);
        return -1;
    }
    return 0;
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

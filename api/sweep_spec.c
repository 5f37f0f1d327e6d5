/* sweep_spec.c - a sweep's body, its trials' hyperparameters, ASHA's rungs and
 * decisions (see sweep_spec.h for the design). */
#include "api/sweep_spec.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dim/hparams.h"

static const char *const algo_names[] = {"grid", "random", "asha"};
static const char *const scale_names[] = {"values", "uniform", "log", "int"};

/* Job keys a space may not vary: what makes the trials one sweep. */
static const char *const fixed_keys[] = {"kind",  "name",        "dataset",
                                         "steps", "epochs",      "sweep_id",
                                         "trial", "best_metric", "validation_images",
                                         "probe", NULL};

const char *sweep_algo_name(enum sweep_algo a)
{
    return (unsigned)a < 3 ? algo_names[a] : "?";
}

void sweep_spec_clear(struct sweep_spec *s)
{
    if (!s)
        return;
    json_decref(s->base);
    for (int i = 0; i < s->n_dims; i++)
        json_decref(s->dims[i].values);
    memset(s, 0, sizeof *s);
}

static bool key_fixed(const char *k)
{
    for (int i = 0; fixed_keys[i]; i++)
        if (strcmp(fixed_keys[i], k) == 0)
            return true;
    return false;
}

static void err_at(json_t *errors, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void err_at(json_t *errors, const char *path, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_array_append_new(errors, json_pack("{s:s, s:s}", "path", path, "message", msg));
}

/* The body of a job: base plus extra's keys (both may be NULL). */
static json_t *job_body(const json_t *base, const json_t *extra)
{
    json_t *b = base ? json_deep_copy(base) : json_object();
    if (extra)
        json_object_update(b, (json_t *)extra);
    return b;
}

/* Parses job body b; each problem goes to errors at path `at` (or, when NULL,
 * at "$.base" + its own path), naming the job's path when it is another key
 * than `key`. Returns the number of problems. */
static int check_job(const json_t *b, jobspec_dataset_check check, const void *ctx,
                     const char *at, const char *key, json_t *errors, struct job_spec *out)
{
    json_t *e = json_array();
    struct job_spec tmp;
    int n = jobspec_parse(b, check, ctx, out ? out : &tmp, e);
    char own[48];
    snprintf(own, sizeof own, "$.%s", key ? key : "");
    for (size_t i = 0; i < json_array_size(e); i++) {
        json_t *x = json_array_get(e, i);
        const char *p = json_string_value(json_object_get(x, "path"));
        const char *m = json_string_value(json_object_get(x, "message"));
        if (!p || !m)
            continue;
        if (!at) {
            char path[128];
            snprintf(path, sizeof path, "$.base%s", p + 1);
            err_at(errors, path, "%s", m);
        } else if (key && strcmp(p, own) == 0) {
            err_at(errors, at, "%s", m);
        } else {
            err_at(errors, at, "the trial's job: %s: %s", p, m);
        }
    }
    json_decref(e);
    return n;
}

static bool key_is_integer(const char *key)
{
    const struct dim_hparam *h = dim_hparam_find(key);
    if (h)
        return !dim_hparam_is_text(h) && h->type != DIM_HP_FLOAT;
    return true; /* the run keys a space may vary are integers or booleans */
}

/* One key of the space. */
static void parse_dim(struct sweep_spec *s, const char *key, const json_t *v, const json_t *base,
                      jobspec_dataset_check check, const void *ctx, json_t *errors)
{
    char path[96];
    snprintf(path, sizeof path, "$.space.%.40s", key);
    if (strlen(key) >= SWEEP_KEY_MAX || key_fixed(key)) {
        err_at(errors, path, "%s", strlen(key) >= SWEEP_KEY_MAX
                                      ? "is not a job field (see GET /v1/job-schema)"
                                      : "is fixed for every trial of a sweep; set it in base "
                                        "(steps and epochs: in budget)");
        return;
    }
    if (!dim_hparam_find(key) && strcmp(key, "random_crop") != 0 &&
        strcmp(key, "random_flip") != 0 && strcmp(key, "probe_epochs") != 0 &&
        strcmp(key, "probe_images") != 0 && strcmp(key, "checkpoint_every") != 0 &&
        strcmp(key, "keep_last") != 0 && strcmp(key, "keep_best") != 0) {
        err_at(errors, path, "is not a job field a sweep can vary (see GET /v1/job-schema)");
        return;
    }
    struct sweep_dim d;
    memset(&d, 0, sizeof d);
    strcpy(d.key, key);
    const json_t *values = NULL;
    if (json_is_array(v)) {
        values = v;
    } else if (json_is_object(v) && json_object_get(v, "values")) {
        values = json_object_get(v, "values");
        if (json_object_size(v) != 1)
            err_at(errors, path, "give values, or min, max and scale, not both");
        strcat(path, ".values");
        if (!json_is_array(values)) {
            err_at(errors, path, "must be an array of values");
            return;
        }
    } else if (json_is_object(v)) {
        const json_t *lo = json_object_get(v, "min"), *hi = json_object_get(v, "max");
        const json_t *sc = json_object_get(v, "scale");
        const char *k2;
        json_t *x;
        int bad = 0;
        json_object_foreach((json_t *)v, k2, x) {
            if (strcmp(k2, "min") && strcmp(k2, "max") && strcmp(k2, "scale")) {
                char p2[160];
                snprintf(p2, sizeof p2, "%s.%.40s", path, k2);
                err_at(errors, p2, "unknown field (values, or min, max and scale)");
                bad++;
            }
        }
        d.scale = SWEEP_UNIFORM;
        if (sc) {
            const char *t = json_string_value(sc);
            d.scale = (enum sweep_scale)0;
            for (int i = 1; t && i < 4; i++)
                if (strcmp(t, scale_names[i]) == 0)
                    d.scale = (enum sweep_scale)i;
            if (d.scale == SWEEP_VALUES) {
                char p2[160];
                snprintf(p2, sizeof p2, "%s.scale", path);
                err_at(errors, p2, "must be uniform, log or int");
                return;
            }
        }
        if (!json_is_number(lo) || !json_is_number(hi)) {
            err_at(errors, path, "a range needs numbers min and max");
            return;
        }
        d.lo = json_number_value(lo);
        d.hi = json_number_value(hi);
        if (bad)
            return;
        if (!(d.lo < d.hi) && !(d.scale == SWEEP_INT && d.lo == d.hi)) {
            err_at(errors, path, "min %g must be below max %g", d.lo, d.hi);
            return;
        }
        if (d.scale == SWEEP_LOG && d.lo <= 0) {
            err_at(errors, path, "a log-uniform range needs min > 0, not %g", d.lo);
            return;
        }
        if (d.scale == SWEEP_INT && (!json_is_integer(lo) || !json_is_integer(hi))) {
            err_at(errors, path, "an int range needs integer min and max");
            return;
        }
        if (d.scale != SWEEP_INT && key_is_integer(key)) {
            err_at(errors, path, "%s takes integers: use \"scale\": \"int\" or a list of values",
                   key);
            return;
        }
        /* both ends must make a valid job */
        for (int end = 0; end < 2; end++) {
            char p2[160];
            snprintf(p2, sizeof p2, "%s.%s", path, end ? "max" : "min");
            json_t *extra = json_pack("{s:O}", key, end ? hi : lo);
            json_t *b = job_body(base, extra);
            check_job(b, check, ctx, p2, key, errors, NULL);
            json_decref(b);
            json_decref(extra);
        }
        s->dims[s->n_dims++] = d;
        return;
    } else {
        err_at(errors, path,
               "must be a list of values, {\"values\": [...]}, or {\"min\", \"max\", \"scale\"}");
        return;
    }
    size_t n = json_array_size(values);
    if (n < 1 || n > SWEEP_MAX_VALUES) {
        err_at(errors, path, "must have 1 to %d values, not %zu", SWEEP_MAX_VALUES, n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char p2[160];
        snprintf(p2, sizeof p2, "%s[%zu]", path, i);
        json_t *extra = json_pack("{s:O}", key, json_array_get(values, i));
        json_t *b = job_body(base, extra);
        check_job(b, check, ctx, p2, key, errors, NULL);
        json_decref(b);
        json_decref(extra);
    }
    d.scale = SWEEP_VALUES;
    d.values = json_incref((json_t *)values);
    s->dims[s->n_dims++] = d;
}

uint64_t sweep_grid_size(const struct sweep_spec *s)
{
    uint64_t n = 1;
    for (int i = 0; i < s->n_dims; i++) {
        if (s->dims[i].scale != SWEEP_VALUES)
            return 0;
        n *= json_array_size(s->dims[i].values);
        if (n > (1ull << 40))
            return 1ull << 40;
    }
    return n;
}

static bool get_uint(const json_t *body, const char *key, double lo, double hi, double *out,
                     json_t *errors)
{
    const json_t *v = json_object_get(body, key);
    if (!v || json_is_null(v))
        return false;
    char path[64];
    snprintf(path, sizeof path, "$.%s", key);
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        err_at(errors, path, "must be an integer in [%.0f, %.0f]", lo, hi);
        return false;
    }
    *out = (double)json_integer_value(v);
    return true;
}

int sweep_spec_parse(const json_t *body, jobspec_dataset_check check, const void *ctx,
                     struct sweep_spec *out, json_t *errors)
{
    size_t before = json_array_size(errors);
    memset(out, 0, sizeof *out);
    out->eta = 3;
    if (!json_is_object(body)) {
        err_at(errors, "$", "the sweep must be a JSON object");
        return 1;
    }
    static const char *const known[] = {"name",   "base",   "space",     "algorithm",
                                        "seed",   "trials", "metric",    "direction",
                                        "budget", "asha",   "parallel",  "validation_images",
                                        NULL};
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)body, key, v) {
        bool ok = false;
        for (int i = 0; known[i]; i++)
            ok = ok || strcmp(known[i], key) == 0;
        if (!ok) {
            char path[96];
            snprintf(path, sizeof path, "$.%.60s", key);
            err_at(errors, path, "unknown field (name, base, space, algorithm, seed, trials, "
                                 "metric, direction, budget, asha, parallel, validation_images)");
        }
    }
    /* name */
    v = json_object_get(body, "name");
    if (v && !json_is_null(v)) {
        if (!json_is_string(v) || json_string_length(v) >= JOBSPEC_NAME_MAX ||
            strlen(json_string_value(v)) != json_string_length(v))
            err_at(errors, "$.name", "must be a string of at most %d characters",
                   JOBSPEC_NAME_MAX - 1);
        else
            strcpy(out->name, json_string_value(v));
    }
    /* algorithm */
    v = json_object_get(body, "algorithm");
    out->algo = SWEEP_ASHA;
    if (v) {
        int a = -1;
        for (int i = 0; json_is_string(v) && i < 3; i++)
            if (strcmp(json_string_value(v), algo_names[i]) == 0)
                a = i;
        if (a < 0)
            err_at(errors, "$.algorithm", "must be grid, random or asha");
        else
            out->algo = (enum sweep_algo)a;
    }
    /* budget */
    v = json_object_get(body, "budget");
    bool budget_ok = false;
    if (!json_is_object(v)) {
        err_at(errors, "$.budget", "required: {\"steps\": N} or {\"epochs\": E} per trial");
    } else {
        const json_t *st = json_object_get(v, "steps"), *ep = json_object_get(v, "epochs");
        if (json_object_size(v) != 1 || (!st && !ep)) {
            err_at(errors, "$.budget", "give exactly one of steps or epochs");
        } else if (st) {
            if (!json_is_integer(st) || json_integer_value(st) < 1 ||
                json_integer_value(st) > 1000000000000LL)
                err_at(errors, "$.budget.steps", "must be an integer in [1, 1e12]");
            else
                out->budget = (double)json_integer_value(st), budget_ok = true;
        } else {
            if (!json_is_number(ep) || !(json_number_value(ep) >= 1e-6) ||
                json_number_value(ep) > 1e6)
                err_at(errors, "$.budget.epochs", "must be a number in [1e-6, 1e6]");
            else
                out->budget = json_number_value(ep), out->budget_epochs = true, budget_ok = true;
        }
    }
    /* base */
    const json_t *base = json_object_get(body, "base");
    struct job_spec bs;
    jobspec_default(&bs);
    bool base_ok = false;
    if (!json_is_object(base)) {
        err_at(errors, "$.base", "required: a job body (as POST /v1/jobs takes)");
    } else {
        int bad = 0;
        static const char *const banned[] = {"steps", "epochs", "sweep_id", "trial",
                                             "validation_images", "best_metric", NULL};
        for (int i = 0; banned[i]; i++) {
            if (json_object_get(base, banned[i])) {
                char path[64];
                snprintf(path, sizeof path, "$.base.%s", banned[i]);
                err_at(errors, path, "%s",
                       i < 2   ? "a trial's length is the sweep's budget (budget.steps or "
                                 "budget.epochs)"
                       : i < 4 ? "is set by the sweep for its trials"
                               : "is set by the sweep (validation_images, metric)");
                bad++;
            }
        }
        const json_t *kind = json_object_get(base, "kind");
        if (kind && !(json_is_string(kind) && strcmp(json_string_value(kind), "train") == 0)) {
            err_at(errors, "$.base.kind", "a sweep's trials are training jobs (\"train\")");
            bad++;
        }
        if (!(kind && !(json_is_string(kind) && strcmp(json_string_value(kind), "train") == 0))) {
            /* the rest of the base is checked all the same (its banned keys left out) */
            json_t *b = json_deep_copy(base);
            for (int i = 0; banned[i]; i++)
                json_object_del(b, banned[i]);
            if (budget_ok)
                json_object_set_new(b, out->budget_epochs ? "epochs" : "steps",
                                    out->budget_epochs ? json_real(out->budget)
                                                       : json_integer((json_int_t)out->budget));
            base_ok = check_job(b, check, ctx, NULL, NULL, errors, &bs) == 0 && !bad;
            json_decref(b);
        }
        out->base = json_deep_copy(base);
    }
    /* metric and direction */
    v = json_object_get(body, "metric");
    if (v && !json_is_null(v)) {
        if (!json_is_string(v) || json_string_length(v) >= sizeof out->metric ||
            json_string_length(v) == 0)
            err_at(errors, "$.metric", "must be a metric key such as probe_y or loss_total");
        else
            strcpy(out->metric, json_string_value(v));
    } else {
        strcpy(out->metric, bs.probe != JOB_PROBE_NONE ? "probe_y" : "loss_total");
    }
    bool probe_metric = strncmp(out->metric, "probe_", 6) == 0;
    out->maximize = probe_metric;
    v = json_object_get(body, "direction");
    if (v && !json_is_null(v)) {
        const char *t = json_string_value(v);
        if (t && strcmp(t, "max") == 0)
            out->maximize = true;
        else if (t && strcmp(t, "min") == 0)
            out->maximize = false;
        else
            err_at(errors, "$.direction", "must be max or min");
    }
    double x;
    out->validation_images = probe_metric ? 2000 : 0;
    if (get_uint(body, "validation_images", 0, 1e9, &x, errors))
        out->validation_images = (uint64_t)x;
    if (probe_metric && out->validation_images == 0)
        err_at(errors, "$.validation_images",
               "a probe metric needs a validation split (a sweep never selects on the test "
               "split): give at least 1 image");
    if (base_ok && out->metric[0]) {
        /* the metric must be one the trials write: it becomes their best_metric */
        json_t *extra = json_pack("{s:s}", "best_metric", out->metric);
        if (out->validation_images && probe_metric)
            json_object_set_new(extra, "validation_images",
                                json_integer((json_int_t)out->validation_images));
        json_t *b = job_body(base, extra);
        check_job(b, check, ctx, "$.metric", "best_metric", errors, NULL);
        json_decref(b);
        json_decref(extra);
    }
    /* seed, parallel */
    if (get_uint(body, "seed", 0, 9007199254740991.0, &x, errors))
        out->seed = (uint64_t)x;
    if (get_uint(body, "parallel", 0, 64, &x, errors))
        out->parallel = (int)x;
    /* space */
    v = json_object_get(body, "space");
    if (!json_is_object(v) || json_object_size(v) == 0) {
        err_at(errors, "$.space", "required: an object of job fields to search, each a list "
                                  "of values or a range");
    } else if (json_object_size(v) > SWEEP_MAX_DIMS) {
        err_at(errors, "$.space", "at most %d fields, not %zu", SWEEP_MAX_DIMS,
               json_object_size(v));
    } else if (json_is_object(base)) {
        json_t *dv;
        json_object_foreach(v, key, dv) {
            if (json_object_get(base, key)) {
                char path[96];
                snprintf(path, sizeof path, "$.space.%.40s", key);
                err_at(errors, path, "is also set in base: give it in one place");
                continue;
            }
            parse_dim(out, key, dv, base, check, ctx, errors);
        }
    }
    /* trials */
    uint64_t grid = sweep_grid_size(out);
    bool trials_given = get_uint(body, "trials", 1, SWEEP_MAX_TRIALS, &x, errors);
    if (trials_given)
        out->trials = (int)x;
    else if (!json_object_get(body, "trials") && grid >= 1 && grid <= SWEEP_MAX_TRIALS)
        out->trials = (int)grid;
    else if (!json_object_get(body, "trials"))
        err_at(errors, "$.trials", "required when the space has a range (or more than %d "
                                   "points)", SWEEP_MAX_TRIALS);
    if (out->algo == SWEEP_GRID && out->n_dims && json_is_object(v)) {
        if (grid == 0)
            err_at(errors, "$.algorithm", "grid needs every field of space as a list of values");
        else if (out->trials && (uint64_t)out->trials > grid)
            err_at(errors, "$.trials", "the grid has %llu points, fewer than %d trials",
                   (unsigned long long)grid, out->trials);
    }
    /* asha */
    v = json_object_get(body, "asha");
    if (v && !json_is_null(v) && out->algo != SWEEP_ASHA) {
        err_at(errors, "$.asha", "is for algorithm asha");
    } else if (out->algo == SWEEP_ASHA) {
        if (v && !json_is_null(v) && !json_is_object(v)) {
            err_at(errors, "$.asha", "must be {\"min_resource\", \"reduction_factor\"}");
            v = NULL;
        }
        const json_t *rf = v ? json_object_get(v, "reduction_factor") : NULL;
        const json_t *mr = v ? json_object_get(v, "min_resource") : NULL;
        const char *k2;
        json_t *x2;
        if (v && json_is_object(v))
            json_object_foreach(v, k2, x2) if (strcmp(k2, "reduction_factor") &&
                                               strcmp(k2, "min_resource")) {
                char path[96];
                snprintf(path, sizeof path, "$.asha.%.40s", k2);
                err_at(errors, path, "unknown field (min_resource, reduction_factor)");
            }
        if (rf) {
            if (!json_is_integer(rf) || json_integer_value(rf) < 2 || json_integer_value(rf) > 16)
                err_at(errors, "$.asha.reduction_factor", "must be an integer in [2, 16]");
            else
                out->eta = (int)json_integer_value(rf);
        }
        if (budget_ok) {
            out->min_resource = out->budget / ((double)out->eta * out->eta);
            if (!out->budget_epochs)
                out->min_resource = floor(out->min_resource) < 1 ? 1 : floor(out->min_resource);
            if (mr) {
                bool bad = out->budget_epochs ? !json_is_number(mr) : !json_is_integer(mr);
                double m = json_number_value(mr);
                if (bad || !(m > 0) || m > out->budget)
                    err_at(errors, "$.asha.min_resource",
                           "must be %s in (0, %g], the budget's unit (%s)",
                           out->budget_epochs ? "a number" : "an integer", out->budget,
                           out->budget_epochs ? "epochs" : "steps");
                else
                    out->min_resource = m;
            }
            int n = 0;
            for (double q = out->min_resource; q < out->budget * (1 - 1e-9) && n <= SWEEP_MAX_RUNGS;
                 q *= out->eta)
                n++;
            if (n >= SWEEP_MAX_RUNGS)
                err_at(errors, "$.asha.min_resource",
                       "%g makes more than %d rungs below the budget %g", out->min_resource,
                       SWEEP_MAX_RUNGS - 1, out->budget);
        }
    }
    return (int)(json_array_size(errors) - before);
}

json_t *sweep_spec_to_json(const struct sweep_spec *s)
{
    json_t *space = json_object();
    for (int i = 0; i < s->n_dims; i++) {
        const struct sweep_dim *d = &s->dims[i];
        json_t *o;
        if (d->scale == SWEEP_VALUES)
            o = json_pack("{s:O}", "values", d->values);
        else if (d->scale == SWEEP_INT)
            o = json_pack("{s:I, s:I, s:s}", "min", (json_int_t)d->lo, "max", (json_int_t)d->hi,
                          "scale", "int");
        else
            o = json_pack("{s:f, s:f, s:s}", "min", d->lo, "max", d->hi, "scale",
                          scale_names[d->scale]);
        json_object_set_new(space, d->key, o);
    }
    json_t *budget = s->budget_epochs ? json_pack("{s:f}", "epochs", s->budget)
                                      : json_pack("{s:I}", "steps", (json_int_t)s->budget);
    json_t *asha = json_null();
    if (s->algo == SWEEP_ASHA)
        asha = json_pack("{s:o, s:i}", "min_resource",
                         s->budget_epochs ? json_real(s->min_resource)
                                          : json_integer((json_int_t)s->min_resource),
                         "reduction_factor", s->eta);
    return json_pack("{s:o, s:O, s:o, s:s, s:I, s:i, s:s, s:s, s:o, s:o, s:i, s:I}", "name",
                     s->name[0] ? json_string(s->name) : json_null(), "base", s->base, "space",
                     space, "algorithm", sweep_algo_name(s->algo), "seed", (json_int_t)s->seed,
                     "trials", s->trials, "metric", s->metric, "direction",
                     s->maximize ? "max" : "min", "budget", budget, "asha", asha, "parallel",
                     s->parallel, "validation_images", (json_int_t)s->validation_images);
}

/* ---- trials ---- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double unit(uint64_t *x)
{
    return (double)(splitmix64(x) >> 11) * (1.0 / 9007199254740992.0);
}

/* 4 significant digits: draws that read well in a leaderboard. */
static double round4(double v)
{
    char t[32];
    snprintf(t, sizeof t, "%.4g", v);
    return strtod(t, NULL);
}

static json_t *grid_point(const struct sweep_spec *s, uint64_t idx)
{
    json_t *o = json_object();
    for (int i = s->n_dims - 1; i >= 0; i--) {
        size_t n = json_array_size(s->dims[i].values);
        json_object_set(o, s->dims[i].key, json_array_get(s->dims[i].values, idx % n));
        idx /= n;
    }
    /* the space's key order */
    json_t *r = json_object();
    for (int i = 0; i < s->n_dims; i++)
        json_object_set(r, s->dims[i].key, json_object_get(o, s->dims[i].key));
    json_decref(o);
    return r;
}

static json_t *random_point(const struct sweep_spec *s, int trial)
{
    uint64_t st = s->seed * 0x2545F4914F6CDD1Dull + (uint64_t)trial * 0x9E3779B97F4A7C15ull + 1;
    splitmix64(&st);
    json_t *o = json_object();
    for (int i = 0; i < s->n_dims; i++) {
        const struct sweep_dim *d = &s->dims[i];
        json_t *v;
        switch (d->scale) {
        case SWEEP_VALUES:
            v = json_incref(
                json_array_get(d->values, splitmix64(&st) % json_array_size(d->values)));
            break;
        case SWEEP_INT:
            v = json_integer(
                (json_int_t)(d->lo + (double)(splitmix64(&st) % (uint64_t)(d->hi - d->lo + 1))));
            break;
        case SWEEP_LOG: {
            double y = round4(exp(log(d->lo) + unit(&st) * (log(d->hi) - log(d->lo))));
            v = json_real(y < d->lo ? d->lo : y > d->hi ? d->hi : y);
            break;
        }
        default: {
            double y = round4(d->lo + unit(&st) * (d->hi - d->lo));
            v = json_real(y < d->lo ? d->lo : y > d->hi ? d->hi : y);
        }
        }
        json_object_set_new(o, d->key, v);
    }
    return o;
}

json_t *sweep_trial_params(const struct sweep_spec *s, int trial)
{
    uint64_t grid = sweep_grid_size(s);
    if (s->algo == SWEEP_GRID)
        return grid_point(s, (uint64_t)trial);
    if (s->algo == SWEEP_ASHA && grid >= (uint64_t)s->trials && grid <= 100000) {
        /* distinct grid points in a seeded order: the trial-th of a Fisher-Yates shuffle */
        uint64_t *perm = malloc(grid * sizeof *perm);
        if (!perm)
            return random_point(s, trial);
        for (uint64_t i = 0; i < grid; i++)
            perm[i] = i;
        uint64_t st = s->seed ^ 0x5DEECE66Dull;
        for (uint64_t i = grid - 1; i > 0; i--) {
            uint64_t j = splitmix64(&st) % (i + 1), t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        json_t *r = grid_point(s, perm[trial]);
        free(perm);
        return r;
    }
    return random_point(s, trial);
}

json_t *sweep_trial_body(const struct sweep_spec *s, int64_t sweep_id, int trial)
{
    json_t *b = json_deep_copy(s->base);
    json_t *p = sweep_trial_params(s, trial);
    json_object_update(b, p);
    json_decref(p);
    json_object_set_new(b, s->budget_epochs ? "epochs" : "steps",
                        s->budget_epochs ? json_real(s->budget)
                                         : json_integer((json_int_t)s->budget));
    json_object_set_new(b, "best_metric", json_string(s->metric));
    if (strncmp(s->metric, "probe_", 6) == 0 && s->validation_images)
        json_object_set_new(b, "validation_images",
                            json_integer((json_int_t)s->validation_images));
    json_object_set_new(b, "sweep_id", json_integer((json_int_t)sweep_id));
    json_object_set_new(b, "trial", json_integer(trial));
    char name[JOBSPEC_NAME_MAX];
    if (s->name[0])
        snprintf(name, sizeof name, "%.100s #%d", s->name, trial);
    else
        snprintf(name, sizeof name, "sweep %lld #%d", (long long)sweep_id, trial);
    json_object_set_new(b, "name", json_string(name));
    return b;
}

int sweep_rungs(const struct sweep_spec *s, double out[SWEEP_MAX_RUNGS])
{
    int n = 0;
    if (s->algo == SWEEP_ASHA)
        for (double q = s->min_resource; q < s->budget * (1 - 1e-9) && n < SWEEP_MAX_RUNGS - 1;
             q *= s->eta)
            out[n++] = q;
    out[n++] = s->budget;
    return n;
}

uint64_t sweep_rung_step(uint64_t total_steps, double resource, double budget)
{
    if (total_steps == 0)
        return 0;
    if (!(budget > 0) || resource >= budget)
        return total_steps;
    double x = ceil((double)total_steps * resource / budget - 1e-9);
    if (x < 1)
        return 1;
    return x > (double)total_steps ? total_steps : (uint64_t)x;
}

/* ---- ASHA ---- */

bool sweep_better(double a, double b, bool maximize)
{
    if (!isfinite(a))
        return false;
    if (!isfinite(b))
        return true;
    return maximize ? a > b : a < b;
}

/* Insertion sort (n is small, and no shared state unlike qsort with a global). */
static void sort_entries(struct sweep_rung_entry *e, size_t n, bool maximize)
{
    for (size_t i = 1; i < n; i++) {
        struct sweep_rung_entry t = e[i];
        size_t j = i;
        while (j > 0) {
            bool before = sweep_better(t.value, e[j - 1].value, maximize) ||
                          (!sweep_better(e[j - 1].value, t.value, maximize) &&
                           t.trial < e[j - 1].trial);
            if (!before)
                break;
            e[j] = e[j - 1];
            j--;
        }
        e[j] = t;
    }
}

void sweep_asha_decide(struct sweep_rung_entry *e, size_t n, int eta, bool maximize, bool complete,
                       size_t slots, int64_t *promote, size_t *n_promote, int64_t *stop,
                       size_t *n_stop)
{
    *n_promote = *n_stop = 0;
    sort_entries(e, n, maximize);
    size_t quota = n / (size_t)(eta < 2 ? 2 : eta);
    if (complete && quota == 0 && n > 0)
        quota = 1;
    for (size_t i = 0; i < n; i++) {
        if (e[i].decision != SWEEP_UNDECIDED)
            continue;
        bool top = i < quota && isfinite(e[i].value);
        if (top && *n_promote < slots)
            promote[(*n_promote)++] = e[i].trial;
        else if (!top && complete)
            stop[(*n_stop)++] = e[i].trial;
    }
}

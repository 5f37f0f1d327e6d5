/* metrics.c - a job's metric summary and each metric's history (JSON or CSV). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/handlers.h"
#include "store/metrics.h"
#include "api/evalspec.h"

void handle_metrics_summary(void *app, struct http_request *rq)
{
    struct handler_ctx *a = app;
    struct store_job job;
    if (!handler_load_job(a, rq, &job))
        return;
    struct store_metric_summary *sm = NULL;
    size_t n = 0;
    struct dim_err err;
    if (store_metrics_summary(a->store, job.id, &sm, &n, &err) != STORE_OK) {
        store_job_clear(&job);
        handler_internal(rq, "summarising metrics", &err);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            arr, json_pack("{s:s, s:I, s:I, s:I, s:o, s:o, s:o}", "key", sm[i].key, "count",
                           (json_int_t)sm[i].count, "first_step", (json_int_t)sm[i].first_step,
                           "last_step", (json_int_t)sm[i].last_step, "last",
                           real_json(sm[i].last), "min", real_json(sm[i].min),
                           "max", real_json(sm[i].max)));
    free(sm);
    http_reply_json(rq, 200, json_pack("{s:I, s:o}", "job_id", (json_int_t)job.id, "metrics", arr));
    store_job_clear(&job);
}

static double spec_number(const json_t *spec, const char *key)
{
    return json_number_value(json_object_get(spec, key));
}

/* Whether a job with this stored spec writes metric k (its history may be
 * empty for now: not yet written). */
static bool job_writes(const struct store_job *job, const char *k)
{
    json_t *spec = job->spec_json ? json_loads(job->spec_json, 0, NULL) : NULL;
    if (evalspec_is_evaluation(spec)) {
        struct eval_spec es;
        json_t *errors = json_array();
        const char *keys[EVAL_MAX_KEYS];
        size_t n = evalspec_parse(spec, &es, errors) == 0
                       ? evalspec_metric_keys(es.opts.measures, keys)
                       : 0;
        json_decref(errors);
        json_decref(spec);
        for (size_t i = 0; i < n; i++)
            if (strcmp(keys[i], k) == 0)
                return true;
        return false;
    }
    const char *probe = json_string_value(json_object_get(spec, "probe"));
    bool probing = probe && strcmp(probe, "none") != 0, yes = false;
    if (strcmp(k, "loss_total") == 0 || strcmp(k, "images_per_second") == 0)
        yes = true;
    else if (strcmp(k, "loss_local") == 0)
        yes = spec_number(spec, "beta") > 0;
    else if (strcmp(k, "loss_global") == 0)
        yes = spec_number(spec, "alpha") > 0;
    else if (strcmp(k, "loss_prior_enc") == 0 || strcmp(k, "loss_prior_disc") == 0)
        yes = spec_number(spec, "gamma") > 0;
    else if (strcmp(k, "lr") == 0) /* when the schedule moves it (dim_lr_varies) */
        yes = spec_number(spec, "lr_warmup") > 0 ||
              (json_is_string(json_object_get(spec, "lr_schedule")) &&
               strcmp(json_string_value(json_object_get(spec, "lr_schedule")), "constant") != 0);
    else if (strcmp(k, "probe_conv") == 0 || strcmp(k, "probe_fc") == 0 ||
             strcmp(k, "probe_y") == 0 || strcmp(k, "probe_pixels") == 0)
        yes = probing;
    json_decref(spec);
    return yes;
}

static void csv_value(struct strbuf *b, double v)
{
    const char *t = real_nonfinite_text(v);
    if (t)
        strbuf_printf(b, "%s", t);
    else
        strbuf_printf(b, "%.*g", DIMD_REAL_DIGITS, v);
}

void handle_metrics_history(void *app, struct http_request *rq)
{
    struct handler_ctx *a = app;
    int64_t after, to, limit, max_points;
    const long cap = a->cfg->history_limit_max;
    if (!handler_query_int(rq, "after_step", 0, INT64_MAX, 0, &after) ||
        !handler_query_int(rq, "to_step", 0, INT64_MAX, INT64_MAX, &to) ||
        !handler_query_int(rq, "limit", 1, cap, cap < 10000 ? cap : 10000, &limit) ||
        !handler_query_int(rq, "max_points", 0, cap, 0, &max_points))
        return;
    if (to < after) {
        http_reply_problem(rq, PROBLEM_INVALID_PARAMETER,
                           "query parameter to_step=%lld is below after_step=%lld", (long long)to,
                           (long long)after);
        return;
    }
    if (max_points == 1) {
        http_reply_problem(rq, PROBLEM_INVALID_PARAMETER,
                           "query parameter max_points=1 must be 0 (all points) or at least 2");
        return;
    }
    const char *format = http_query(rq, "format");
    bool csv = format && strcmp(format, "csv") == 0;
    if (format && !csv && strcmp(format, "json") != 0) {
        http_reply_problem(rq, PROBLEM_INVALID_PARAMETER,
                           "query parameter format='%.20s' must be json or csv", format);
        return;
    }
    struct store_job job;
    if (!handler_load_job(a, rq, &job))
        return;
    const char *key = http_param(rq, "key");
    bool key_ok = strlen(key) < 64;
    for (const char *c = key; key_ok && *c; c++)
        key_ok = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_';
    if (!key_ok) {
        http_reply_problem(rq, PROBLEM_METRIC_NOT_FOUND,
                           "'%.64s' is not a metric key (lower-case letters, digits, _)", key);
        store_job_clear(&job);
        return;
    }
    struct store_point *pts = NULL;
    size_t n = 0;
    bool more = false;
    struct dim_err err;
    if (store_metrics_history(a->store, job.id, key, after, to, limit, max_points, &pts, &n, &more,
                              &err) != STORE_OK) {
        store_job_clear(&job);
        handler_internal(rq, "reading the metric", &err);
        return;
    }
    if (n == 0 && after == 0 && !job_writes(&job, key)) {
        http_reply_problem(rq, PROBLEM_METRIC_NOT_FOUND, "job %lld has no metric '%.64s'",
                           (long long)job.id, key);
        store_job_clear(&job);
        free(pts);
        return;
    }
    bool downsampled = false;
    if (max_points > 0 && n > 0) { /* was the range thinned? count it at full resolution */
        struct store_point *all = NULL;
        size_t n_all = 0;
        bool more_all;
        if (store_metrics_history(a->store, job.id, key, after, to, limit, 0, &all, &n_all, &more_all,
                                  &err) == STORE_OK)
            downsampled = n_all > n;
        free(all);
    }
    if (csv) {
        struct strbuf b = {0};
        strbuf_printf(&b, "step,value,wall_time_ms\n");
        for (size_t i = 0; i < n; i++) {
            strbuf_printf(&b, "%lld,", (long long)pts[i].step);
            csv_value(&b, pts[i].value);
            strbuf_printf(&b, ",%lld\n", (long long)pts[i].wall_ms);
        }
        char fname[160];
        snprintf(fname, sizeof fname, "attachment; filename=\"job-%lld-%s.csv\"",
                 (long long)job.id, key);
        http_add_header(rq, "Content-Disposition", fname);
        http_reply_bytes(rq, 200, "text/csv; charset=utf-8", b.data, b.len, true);
    } else {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, json_pack("[I, o, I]", (json_int_t)pts[i].step,
                                                 real_json(pts[i].value),
                                                 (json_int_t)pts[i].wall_ms));
        json_t *next = more && n ? json_integer(pts[n - 1].step) : json_null();
        http_reply_json(rq, 200,
                        json_pack("{s:I, s:s, s:o, s:o, s:b}", "job_id", (json_int_t)job.id,
                                  "key", key, "points", arr, "next_after_step", next,
                                  "downsampled", downsampled));
    }
    free(pts);
    store_job_clear(&job);
}

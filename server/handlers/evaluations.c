/* evaluations.c - a model version's evaluations: the results that evaluation
 * jobs ("kind": "evaluate", api/evalspec.h) stored with it, and their grid
 * images of originals over reconstructions. */
#include <stdio.h>
#include <stdlib.h>

#include "api/evalspec.h"
#include "handlers/handlers.h"
#include "store/evaluations.h"

static json_t *evaluation_json(const struct store_model_version *v,
                               const struct store_evaluation *e)
{
    json_t *results = json_loads(e->results_json ? e->results_json : "{}", 0, NULL);
    evalspec_result_upgrade(results); /* stored by an older dimd */
    char grid[192];
    snprintf(grid, sizeof grid, "/v1/models/%s/versions/v%d/evaluations/%lld/grid", v->name,
             v->version, (long long)e->id);
    return json_pack("{s:I, s:o, s:o, s:o, s:{s:o}}", "id", (json_int_t)e->id, "job_id",
                     e->job_id ? json_integer((json_int_t)e->job_id) : json_null(), "created_at",
                     http_time_json(e->created_ms), "results",
                     json_is_object(results) ? results : json_object(), "links", "grid",
                     e->grid_bytes ? json_string(grid) : json_null());
}

void handle_evaluation_list(void *app, struct http_request *rq)
{
    struct handler_ctx *a = app;
    struct store_model_version v;
    if (!handler_load_version(a, rq, &v, NULL))
        return;
    struct store_evaluation *es = NULL;
    size_t n = 0;
    struct dim_err err;
    if (store_evaluation_list(a->store, v.name, v.version, &es, &n, &err) != STORE_OK) {
        store_model_version_clear(&v);
        handler_internal(rq, "listing evaluations", &err);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, evaluation_json(&v, &es[i]));
        store_evaluation_clear(&es[i]);
    }
    free(es);
    char ver[16];
    snprintf(ver, sizeof ver, "v%d", v.version);
    http_reply_json(rq, 200, json_pack("{s:s, s:s, s:o}", "model", v.name, "version", ver,
                                       "evaluations", arr));
    store_model_version_clear(&v);
}

void handle_evaluation_grid(void *app, struct http_request *rq)
{
    struct handler_ctx *a = app;
    int64_t id;
    if (!handler_path_id(rq, PROBLEM_EVALUATION_NOT_FOUND, &id))
        return;
    struct store_model_version v;
    if (!handler_load_version(a, rq, &v, NULL))
        return;
    void *png = NULL;
    size_t bytes = 0;
    struct dim_err err;
    int rc = store_evaluation_grid(a->store, v.name, v.version, id, &png, &bytes, &err);
    if (rc == STORE_NOT_FOUND)
        http_reply_problem(rq, PROBLEM_EVALUATION_NOT_FOUND,
                           "model '%s' v%d has no evaluation %lld with a grid image", v.name,
                           v.version, (long long)id);
    else if (rc != STORE_OK)
        handler_internal(rq, "reading the grid image", &err);
    else
        http_reply_bytes(rq, 200, "image/png", png, bytes, true);
    store_model_version_clear(&v);
}

/* projection.c - GET /v1/models/{name}/versions/{version}/projection: the
 * version's PCA projection of its test-set embeddings for the dashboard's
 * scatter plot, made once and then read from the store (service/projection.h). */
#include <stdlib.h>
#include <string.h>

#include "handlers/handlers.h"
#include "service/projection.h"

void handle_model_version_projection(void *app, struct http_request *rq)
{
    struct handler_ctx *a = app;
    struct store_model_version v;
    if (!handler_load_version(a, rq, &v, NULL))
        return;
    struct dim_err err = {0};
    char *text = NULL;
    int rc = projection_get(a->store, a->datasets, v.name, v.version,
                            (size_t)a->cfg->projection_max_images, &text, NULL, &err);
    if (rc == PROJECTION_OK)
        http_reply_bytes(rq, 200, "application/json", text, strlen(text), true);
    else if (rc == PROJECTION_NOT_FOUND)
        http_reply_problem(rq, PROBLEM_VERSION_NOT_FOUND, "%s", err.msg);
    else if (rc == PROJECTION_NO_DATASET)
        http_reply_problem(rq, PROBLEM_DATASET_UNAVAILABLE,
                           "the projection needs the test split of the version's dataset: %s",
                           err.msg);
    else
        handler_internal(rq, "making the projection", &err);
    store_model_version_clear(&v);
}

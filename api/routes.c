/* routes.c - every route of the daemon, once. The HTTP server dispatches from
 * this table, `dimd routes` prints it, and the end-to-end tests check it
 * against openapi.yaml in both directions. The last field marks routes whose
 * bodies are images (encode_max_body_bytes instead of max_body_bytes). */
#include "api/api.h"

const struct route api_routes[] = {
    {"GET", "/healthz", SCOPE_NONE, api_healthz, false},
    {"GET", "/readyz", SCOPE_NONE, api_readyz, false},
    {"GET", "/v1/version", SCOPE_NONE, api_version, false},
    {"GET", "/v1/openapi.yaml", SCOPE_NONE, api_openapi, false},
    {"GET", "/metrics", SCOPE_READ, api_prometheus, false},
    {"GET", "/v1/datasets", SCOPE_READ, api_datasets, false},
    {"GET", "/v1/job-schema", SCOPE_READ, api_job_schema, false},
    {"POST", "/v1/jobs", SCOPE_WRITE, api_job_submit, false},
    {"GET", "/v1/jobs", SCOPE_READ, api_job_list, false},
    {"GET", "/v1/jobs/{id}", SCOPE_READ, api_job_get, false},
    {"DELETE", "/v1/jobs/{id}", SCOPE_WRITE, api_job_delete, false},
    {"POST", "/v1/jobs/{id}/cancel", SCOPE_WRITE, api_job_cancel, false},
    {"POST", "/v1/jobs/{id}/pause", SCOPE_WRITE, api_job_pause, false},
    {"POST", "/v1/jobs/{id}/resume", SCOPE_WRITE, api_job_resume, false},
    {"GET", "/v1/jobs/{id}/metrics", SCOPE_READ, api_metrics_summary, false},
    {"GET", "/v1/jobs/{id}/metrics/{key}", SCOPE_READ, api_metrics_history, false},
    {"GET", "/v1/jobs/{id}/events", SCOPE_READ, api_events, false},
    {"GET", "/v1/jobs/{id}/checkpoints", SCOPE_READ, api_checkpoint_list, false},
    {"GET", "/v1/jobs/{id}/checkpoints/{step}", SCOPE_READ, api_checkpoint_get, false},
    {"POST", "/v1/models", SCOPE_WRITE, api_model_promote, false},
    {"GET", "/v1/models", SCOPE_READ, api_model_list, false},
    {"GET", "/v1/models/{name}", SCOPE_READ, api_model_get, false},
    {"GET", "/v1/models/{name}/versions/{version}", SCOPE_READ, api_model_version_get, false},
    {"DELETE", "/v1/models/{name}/versions/{version}", SCOPE_WRITE, api_model_version_delete, false},
    {"POST", "/v1/models/{name}/versions/{version}/pin", SCOPE_WRITE, api_model_version_pin, false},
    {"POST", "/v1/models/{name}/versions/{version}/unpin", SCOPE_WRITE, api_model_version_unpin, false},
    {"GET", "/v1/models/{name}/versions/{version}/checkpoint", SCOPE_READ,
     api_model_version_checkpoint, false},
    {"POST", "/v1/models/{name}/encode", SCOPE_READ, api_encode, true},
    {"POST", "/v1/models/{name}/neighbors", SCOPE_READ, api_neighbors, true},
    {"GET", "/v1/tokens", SCOPE_WRITE, api_token_list, false},
    {"POST", "/v1/tokens", SCOPE_WRITE, api_token_create, false},
    {"DELETE", "/v1/tokens/{id}", SCOPE_WRITE, api_token_delete, false},
};
const size_t api_n_routes = sizeof api_routes / sizeof api_routes[0];

/* routes.c - every route of the daemon, once. The HTTP server dispatches from
 * this table, `dimd routes` prints it, and the end-to-end tests check it
 * against openapi.yaml in both directions. */
#include "api/api.h"

const struct route api_routes[] = {
    {"GET", "/healthz", SCOPE_NONE, api_healthz},
    {"GET", "/readyz", SCOPE_NONE, api_readyz},
    {"GET", "/v1/version", SCOPE_NONE, api_version},
    {"GET", "/v1/openapi.yaml", SCOPE_NONE, api_openapi},
    {"GET", "/metrics", SCOPE_READ, api_prometheus},
    {"GET", "/v1/datasets", SCOPE_READ, api_datasets},
    {"GET", "/v1/job-schema", SCOPE_READ, api_job_schema},
    {"POST", "/v1/jobs", SCOPE_WRITE, api_job_submit},
    {"GET", "/v1/jobs", SCOPE_READ, api_job_list},
    {"GET", "/v1/jobs/{id}", SCOPE_READ, api_job_get},
    {"DELETE", "/v1/jobs/{id}", SCOPE_WRITE, api_job_delete},
    {"POST", "/v1/jobs/{id}/cancel", SCOPE_WRITE, api_job_cancel},
    {"POST", "/v1/jobs/{id}/pause", SCOPE_WRITE, api_job_pause},
    {"POST", "/v1/jobs/{id}/resume", SCOPE_WRITE, api_job_resume},
    {"GET", "/v1/jobs/{id}/metrics", SCOPE_READ, api_metrics_summary},
    {"GET", "/v1/jobs/{id}/metrics/{key}", SCOPE_READ, api_metrics_history},
    {"GET", "/v1/jobs/{id}/events", SCOPE_READ, api_events},
    {"GET", "/v1/jobs/{id}/checkpoints", SCOPE_READ, api_checkpoint_list},
    {"GET", "/v1/jobs/{id}/checkpoints/{step}", SCOPE_READ, api_checkpoint_get},
    {"GET", "/v1/tokens", SCOPE_WRITE, api_token_list},
    {"POST", "/v1/tokens", SCOPE_WRITE, api_token_create},
    {"DELETE", "/v1/tokens/{id}", SCOPE_WRITE, api_token_delete},
};
const size_t api_n_routes = sizeof api_routes / sizeof api_routes[0];

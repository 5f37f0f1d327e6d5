/* handlers.h - the v1 HTTP API: the route table and its handlers.
 *
 * Every route is declared once in handler_routes (handlers/routes.c); the HTTP
 * server dispatches from it, `dimd routes` prints it and the end-to-end tests
 * compare it with openapi.yaml. Handlers translate between HTTP and the store
 * and the services (server/service/: runner, inference, promote, projection):
 * decode the request, call one, encode the reply; they hold no state of their
 * own and run no use case themselves. Files by resource: service.c (health,
 * version, Prometheus metrics, datasets, job schema), jobs.c, metrics.c,
 * events.c (Server-Sent Events), checkpoints.c, models.c (promote, versions),
 * projection.c (PCA of a version's test-set embeddings), evaluations.c (what
 * evaluation jobs measured), sweeps.c (hyperparameter sweeps), encode.c (encode and neighbours: every input
 * format), tokens.c (tokens, whoami), backup.c (a copy of the whole database),
 * web.c (the dashboard's files); common.c
 * has the shared pieces (ids, query parameters, the job's JSON form,
 * conditional downloads with an ETag).
 */
#ifndef DIMD_HANDLERS_HANDLERS_H
#define DIMD_HANDLERS_HANDLERS_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "api/version.h"
#include "data/dataset.h"
#include "dim/model.h"
#include "service/auth.h"
#include "service/datasets.h"
#include "service/inference.h"
#include "http/http.h"
#include "service/runner.h"
#include "service/storage.h"
#include "service/sweeps.h"
#include "store/jobs.h"
#include "store/models.h"

enum handler_phase { HANDLER_STARTING, HANDLER_READY, HANDLER_STOPPING };

/* The daemon's settings that handlers enforce or report (cmd/config.h has them all). */
struct handler_settings {
    long workers;               /* reported by /readyz and /metrics */
    long queue_max;             /* QUEUED jobs before 429 */
    long sse_heartbeat_s;       /* comment line on idle event streams */
    long history_limit_max;     /* points per metrics history page */
    long encode_max_pixels;     /* pixels of one encode input image */
    long encode_max_images;     /* images of one encode request */
    long index_max_images;      /* training images in a promoted version's neighbours index */
    long projection_max_images; /* test images of a version's projection */
    long max_ranks;             /* a training job's most ranks (its spec's "ranks") */
};

/* What the HTTP stream thread last read of a job at one event sequence
 * (events.c): the streams of one job woken by the same commit, and heartbeats
 * with no commit since, share it instead of each reading the database. */
#define SSE_MEMO_SLOTS 64
struct sse_memo {
    int64_t job_id; /* 0: empty */
    uint64_t seq;   /* store_event_seq when it was read */
    int64_t last_event_id;
    bool terminal;
};

struct handler_ctx {
    struct dimd_store *store;
    struct storage *storage; /* free space and degraded mode (service/storage.h); NULL: none */
    struct auth *auth; /* tokens: checks and changes (service/auth.h) */
    struct runner *runner;
    struct sweeps *sweeps; /* the sweep service (service/sweeps.h), NULL: not started */
    struct inference *inference;
    const struct datasets *datasets;
    const struct handler_settings *cfg;
    struct http_server *http;
    atomic_int phase;
    struct sse_memo sse_memo[SSE_MEMO_SLOTS]; /* the HTTP stream thread's only (events.c) */
};

extern const struct route handler_routes[];
extern const size_t handler_n_routes;

/* ---- handlers ---- */
void handle_web_index(void *app, struct http_request *rq);
void handle_web_file(void *app, struct http_request *rq);
void handle_healthz(void *app, struct http_request *rq);
void handle_readyz(void *app, struct http_request *rq);
void handle_version(void *app, struct http_request *rq);
void handle_openapi(void *app, struct http_request *rq);
void handle_prometheus(void *app, struct http_request *rq);
void handle_datasets(void *app, struct http_request *rq);
void handle_job_schema(void *app, struct http_request *rq);

void handle_job_submit(void *app, struct http_request *rq);
void handle_job_list(void *app, struct http_request *rq);
void handle_job_get(void *app, struct http_request *rq);
void handle_job_delete(void *app, struct http_request *rq);
void handle_job_cancel(void *app, struct http_request *rq);
void handle_job_pause(void *app, struct http_request *rq);
void handle_job_resume(void *app, struct http_request *rq);

void handle_metrics_summary(void *app, struct http_request *rq);
void handle_metrics_history(void *app, struct http_request *rq);
void handle_events(void *app, struct http_request *rq);
void handle_checkpoint_list(void *app, struct http_request *rq);
void handle_checkpoint_get(void *app, struct http_request *rq);

void handle_model_promote(void *app, struct http_request *rq);
void handle_model_list(void *app, struct http_request *rq);
void handle_model_get(void *app, struct http_request *rq);
void handle_model_version_get(void *app, struct http_request *rq);
void handle_model_version_delete(void *app, struct http_request *rq);
void handle_model_version_pin(void *app, struct http_request *rq);
void handle_model_version_unpin(void *app, struct http_request *rq);
void handle_model_version_checkpoint(void *app, struct http_request *rq);
void handle_model_version_projection(void *app, struct http_request *rq);
void handle_evaluation_list(void *app, struct http_request *rq);
void handle_evaluation_grid(void *app, struct http_request *rq);
void handle_encode(void *app, struct http_request *rq);
void handle_neighbors(void *app, struct http_request *rq);

void handle_sweep_submit(void *app, struct http_request *rq);
void handle_sweep_list(void *app, struct http_request *rq);
void handle_sweep_get(void *app, struct http_request *rq);
void handle_sweep_leaderboard(void *app, struct http_request *rq);
void handle_sweep_events(void *app, struct http_request *rq);
void handle_sweep_cancel(void *app, struct http_request *rq);
void handle_sweep_pause(void *app, struct http_request *rq);
void handle_sweep_resume(void *app, struct http_request *rq);
void handle_sweep_promote(void *app, struct http_request *rq);

void handle_backup(void *app, struct http_request *rq);

void handle_whoami(void *app, struct http_request *rq);
void handle_token_list(void *app, struct http_request *rq);
void handle_token_create(void *app, struct http_request *rq);
void handle_token_delete(void *app, struct http_request *rq);

/* The http_options.authenticate of the daemon: the tokens the auth service
 * knows (tokens.c, service/auth.h). */
int handler_authenticate(void *app, const char *token, struct http_principal *out,
                         struct dim_err *err);

/* The http_options.wait_change of the daemon (events.c): blocks until a commit
 * wrote events after sequence seen (store_event_wait), so event streams are
 * filled again. */
uint64_t handler_wait_events(void *app, uint64_t seen, int timeout_ms);

/* ---- shared pieces (common.c) ---- */

/* The {id} path parameter as a positive integer; replies 404 (code) and returns
 * false when it is not one. */
bool handler_path_id(struct http_request *rq, enum problem code, int64_t *id);
/* Loads job {id} into *job or replies 404 job_not_found / 500. */
bool handler_load_job(struct handler_ctx *a, struct http_request *rq, struct store_job *job);
/* Integer query parameter in [lo, hi] (default when absent); replies 400
 * invalid_parameter naming it and returns false when malformed. */
bool handler_query_int(struct http_request *rq, const char *name, int64_t lo, int64_t hi, int64_t def,
                   int64_t *out);
/* Where an event stream starts: the Last-Event-ID header, else the
 * last_event_id query parameter, else 0; replies 400 invalid_parameter and
 * returns false when it is not a non-negative integer. */
bool handler_last_event_id(struct http_request *rq, int64_t *last);
/* The job's public JSON form. */
json_t *handler_job_json(const struct store_job *j);
/* The request body as JSON (Content-Type application/json); replies 415 or 400
 * malformed_json and returns NULL otherwise. */
json_t *handler_body_json(struct http_request *rq);
/* The Idempotency-Key header of a submit into *key (NULL when absent); replies
 * 400 invalid_parameter and returns false unless it is 1 to 128 printable ASCII
 * characters without spaces. */
bool handler_idempotency_key(struct http_request *rq, const char **key);
/* A validated submit's texts: the sha256 of body as parsed, keys sorted (its
 * idempotency fingerprint: whitespace and key order do not make another
 * request), into digest, and resolved written compactly into *text (malloc'd).
 * Takes body and resolved (released here); replies 500 and returns false when
 * out of memory. */
bool handler_submit_texts(struct http_request *rq, json_t *body, json_t *resolved,
                          char digest[65], char **text);
/* (models.c) Loads the model version named by the path ({name}, {version}), with
 * its checkpoint bytes when ckpt is non-NULL, or replies 404 model_not_found /
 * version_not_found / 500 and returns false. */
bool handler_load_version(struct handler_ctx *a, struct http_request *rq, struct store_model_version *v,
                      void **ckpt);
/* (models.c) Promotes as POST /v1/models does with the request body `body`
 * (taken: released here) and replies. */
void handler_promote(struct handler_ctx *a, struct http_request *rq, json_t *body);
/* Conditional GET of a representation whose entity tag is etag (quoted, as
 * sent: "\"0123abcd\""): adds the ETag header and, when If-None-Match lists
 * etag or is "*", replies 304 and returns true; false otherwise (nothing
 * replied: the caller sends the representation). */
bool handler_not_modified(struct http_request *rq, const char *etag);
/* Replies 200 application/octet-stream with the n bytes of data as an
 * attachment named filename (Content-Disposition). Takes data (malloc'd):
 * freed once sent. */
void handler_reply_download(struct http_request *rq, const char *filename, void *data, size_t n);
/* Replies 500 internal naming what failed. */
void handler_internal(struct http_request *rq, const char *what, const struct dim_err *err);
/* Before a write that adds data (submit, resume, promote, pin, a token): true
 * when the storage guard admits it; otherwise replies 507
 * insufficient_storage naming the free bytes, the bytes writes need and why,
 * and returns false. Deletions, cancel and pause do not ask: they must work on
 * a full disk. */
bool handler_writable(struct handler_ctx *a, struct http_request *rq);
/* The same for a write of `bytes` more (a backup's copy): 507 prefixed with
 * `what` unless they leave the file system above the storage floor. */
bool handler_admit(struct handler_ctx *a, struct http_request *rq, int64_t bytes,
                   const char *what);
/* A store call about `what` failed with rc: STORE_FULL is reported to the
 * storage guard and replies 507 insufficient_storage; anything else 500. */
void handler_store_fail(struct handler_ctx *a, struct http_request *rq, int rc, const char *what,
                        const struct dim_err *err);
/* After a deletion: gives the freed pages back to the file system
 * (store_reclaim) and lets the storage guard measure again, so degraded mode
 * ends as soon as the space is there. */
void handler_deleted(struct handler_ctx *a);

#endif

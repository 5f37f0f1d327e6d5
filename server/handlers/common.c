/* common.c - pieces every resource's handlers share (handlers/handlers.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "handlers/handlers.h"
#include "util/sha256.h"

static bool parse_i64(const char *s, int64_t *out)
{
    if (!s || !*s || strlen(s) > 19)
        return false;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno)
        return false;
    *out = v;
    return true;
}

bool handler_path_id(struct http_request *rq, enum problem code, int64_t *id)
{
    const char *s = http_param(rq, "id");
    if (!parse_i64(s, id) || *id <= 0) {
        http_reply_problem(rq, code, "'%.64s' is not an id (a positive integer)", s ? s : "");
        return false;
    }
    return true;
}

void handler_internal(struct http_request *rq, const char *what, const struct dim_err *err)
{
    fprintf(stderr, "dimd: %s: %s\n", what, err ? err->msg : "failed");
    http_reply_problem(rq, PROBLEM_INTERNAL, "%s: %s", what, err ? err->msg : "failed");
}

/* 507 insufficient_storage from the guard's status st. */
static void reply_storage(struct http_request *rq, const struct storage_status *st,
                          const char *what)
{
    http_add_header(rq, "Retry-After", "60");
    http_reply_problem(rq, PROBLEM_INSUFFICIENT_STORAGE,
                       "%s: %s; the state directory has %lld bytes free and dimd accepts writes "
                       "again at %lld (delete jobs or model versions, or free space on its file "
                       "system)",
                       what, st->reason, (long long)st->free_bytes, (long long)st->leave_bytes);
}

bool handler_admit(struct handler_ctx *a, struct http_request *rq, int64_t bytes,
                   const char *what)
{
    struct storage_status st;
    if (!a->storage || storage_admit(a->storage, bytes, &st))
        return true;
    reply_storage(rq, &st, what);
    return false;
}

bool handler_writable(struct handler_ctx *a, struct http_request *rq)
{
    struct storage_status st;
    if (!a->storage || storage_admit(a->storage, 0, &st))
        return true;
    reply_storage(rq, &st, "dimd is in read-mostly mode");
    return false;
}

void handler_store_fail(struct handler_ctx *a, struct http_request *rq, int rc, const char *what,
                        const struct dim_err *err)
{
    if (rc != STORE_FULL || !a->storage) {
        handler_internal(rq, what, err);
        return;
    }
    fprintf(stderr, "dimd: %s: %s\n", what, err ? err->msg : "no space");
    storage_report(a->storage, err ? err->msg : "no space");
    struct storage_status st;
    storage_get(a->storage, &st);
    char w[160];
    snprintf(w, sizeof w, "%s failed for lack of space", what);
    reply_storage(rq, &st, w);
}

void handler_deleted(struct handler_ctx *a)
{
    struct dim_err err;
    int64_t freed = 0;
    if (store_reclaim(a->store, &freed, &err) != STORE_OK)
        fprintf(stderr, "dimd: reclaiming free pages: %s\n", err.msg);
    if (a->storage)
        storage_poll(a->storage);
}

bool handler_load_job(struct handler_ctx *a, struct http_request *rq, struct store_job *job)
{
    int64_t id;
    if (!handler_path_id(rq, PROBLEM_JOB_NOT_FOUND, &id))
        return false;
    struct dim_err err;
    int rc = store_job_get(a->store, id, job, &err);
    if (rc == STORE_NOT_FOUND) {
        http_reply_problem(rq, PROBLEM_JOB_NOT_FOUND, "no job %lld", (long long)id);
        return false;
    }
    if (rc != STORE_OK) {
        handler_internal(rq, "reading the job", &err);
        return false;
    }
    return true;
}

bool handler_query_int(struct http_request *rq, const char *name, int64_t lo, int64_t hi, int64_t def,
                   int64_t *out)
{
    const char *s = http_query(rq, name);
    if (!s) {
        *out = def;
        return true;
    }
    int64_t v;
    if (!parse_i64(s, &v) || v < lo || v > hi) {
        http_reply_problem(rq, PROBLEM_INVALID_PARAMETER,
                           "query parameter %s='%.40s' must be an integer in [%lld, %lld]", name,
                           s, (long long)lo, (long long)hi);
        return false;
    }
    *out = v;
    return true;
}

json_t *handler_body_json(struct http_request *rq)
{
    const char *ct = http_header(rq, "Content-Type");
    if (!ct || strncasecmp(ct, "application/json", 16) != 0 ||
        (ct[16] != '\0' && ct[16] != ';' && ct[16] != ' ')) {
        http_reply_problem(rq, PROBLEM_UNSUPPORTED_MEDIA_TYPE,
                           "the body must be application/json, not %.80s",
                           ct ? ct : "(no Content-Type)");
        return NULL;
    }
    if (rq->body_len == 0) {
        http_reply_problem(rq, PROBLEM_MALFORMED_JSON, "the body is empty; send a JSON object");
        return NULL;
    }
    json_error_t je;
    json_t *v = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!v) {
        http_reply_problem(rq, PROBLEM_MALFORMED_JSON, "the body is not valid JSON: %s (line %d, "
                           "column %d)", je.text, je.line, je.column);
        return NULL;
    }
    return v;
}

bool handler_last_event_id(struct http_request *rq, int64_t *last)
{
    *last = 0;
    const char *h = http_header(rq, "Last-Event-ID");
    if (!h)
        return handler_query_int(rq, "last_event_id", 0, INT64_MAX, 0, last);
    char *end;
    long long v = strtoll(h, &end, 10);
    if (end == h || *end || v < 0) {
        http_reply_problem(rq, PROBLEM_INVALID_PARAMETER,
                           "Last-Event-ID '%.40s' must be a non-negative integer", h);
        return false;
    }
    *last = v;
    return true;
}

bool handler_idempotency_key(struct http_request *rq, const char **key)
{
    *key = http_header(rq, "Idempotency-Key");
    if (!*key)
        return true;
    size_t n = strlen(*key);
    bool ok = n >= 1 && n <= 128;
    for (size_t i = 0; ok && i < n; i++)
        ok = (*key)[i] > 0x20 && (*key)[i] < 0x7f;
    if (!ok)
        http_reply_problem(rq, PROBLEM_INVALID_PARAMETER,
                           "Idempotency-Key must be 1 to 128 printable ASCII characters "
                           "without spaces");
    return ok;
}

bool handler_submit_texts(struct http_request *rq, json_t *body, json_t *resolved,
                          char digest[65], char **text)
{
    char *canon = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(body);
    *text = json_dumps(resolved, JSON_COMPACT | JSON_REAL_PRECISION(DIMD_REAL_DIGITS));
    json_decref(resolved);
    if (!canon || !*text) {
        free(canon);
        free(*text);
        *text = NULL;
        http_reply_problem(rq, PROBLEM_INTERNAL, "out of memory");
        return false;
    }
    sha256_hex(canon, strlen(canon), digest);
    free(canon);
    return true;
}

json_t *handler_job_json(const struct store_job *j)
{
    char base[64];
    snprintf(base, sizeof base, "/v1/jobs/%lld", (long long)j->id);
    json_t *spec = j->spec_json ? json_loads(j->spec_json, 0, NULL) : NULL;
    json_t *error = j->error_code ? json_pack("{s:s, s:s}", "code", j->error_code, "message",
                                              j->error_message ? j->error_message : "")
                                  : json_null();
    json_t *links = json_object();
    json_object_set_new(links, "self", json_string(base));
    static const char *const rel[] = {"metrics", "events", "checkpoints"};
    for (int i = 0; i < 3; i++) {
        char u[96];
        snprintf(u, sizeof u, "%s/%s", base, rel[i]);
        json_object_set_new(links, rel[i], json_string(u));
    }
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(j->id));
    json_object_set_new(o, "name", j->name ? json_string(j->name) : json_null());
    json_object_set_new(o, "state", json_string(job_state_name(j->state)));
    json_object_set_new(o, "created_at", http_time_json(j->created_ms));
    json_object_set_new(o, "started_at", http_time_json(j->started_ms));
    json_object_set_new(o, "finished_at", http_time_json(j->finished_ms));
    json_object_set_new(o, "step", json_integer(j->step));
    json_object_set_new(o, "total_steps", json_integer(j->total_steps));
    json_object_set_new(o, "images_per_second",
                        json_real(isfinite(j->images_per_second) ? j->images_per_second : 0));
    json_object_set_new(o, "attempts", json_integer(j->attempts));
    json_object_set_new(o, "restarts", json_integer(j->restarts));
    json_object_set_new(o, "checkpoint_step",
                        j->checkpoint_step >= 0 ? json_integer(j->checkpoint_step) : json_null());
    json_object_set_new(o, "error", error);
    json_t *latest = j->latest_json ? json_loads(j->latest_json, 0, NULL) : NULL;
    json_object_set_new(o, "latest", json_is_object(latest) ? latest : json_object());
    if (latest && !json_is_object(latest))
        json_decref(latest);
    json_object_set_new(o, "last_event_id", json_integer(j->last_event_id));
    /* a data-parallel job's ranks (1 for jobs that run in the daemon and for
     * evaluations) and the host of each, once its ranks have started */
    json_t *ranks = spec ? json_object_get(spec, "ranks") : NULL;
    json_object_set_new(o, "ranks", json_integer(json_is_integer(ranks) ? json_integer_value(ranks)
                                                                        : 1));
    json_t *hosts = j->hosts ? json_loads(j->hosts, 0, NULL) : NULL;
    if (hosts && !json_is_array(hosts)) {
        json_decref(hosts);
        hosts = NULL;
    }
    json_object_set_new(o, "hosts", hosts ? hosts : json_null());
    json_object_set_new(o, "spec", spec ? spec : json_object());
    json_object_set_new(o, "links", links);
    return o;
}

bool handler_not_modified(struct http_request *rq, const char *etag)
{
    http_add_header(rq, "ETag", etag);
    const char *inm = http_header(rq, "If-None-Match");
    if (!inm || !(strstr(inm, etag) || strcmp(inm, "*") == 0))
        return false;
    http_reply_empty(rq, 304);
    return true;
}

void handler_reply_download(struct http_request *rq, const char *filename, void *data, size_t n)
{
    char disp[320];
    snprintf(disp, sizeof disp, "attachment; filename=\"%s\"", filename);
    http_add_header(rq, "Content-Disposition", disp);
    http_reply_bytes(rq, 200, "application/octet-stream", data, n, true);
}

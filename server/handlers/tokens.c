/* tokens.c - list, create and revoke bearer tokens (write scope); whoami (the
 * presented token, any scope). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/handlers.h"
#include "store/tokens.h"
#include "api/jobspec.h"

static json_t *token_json(int64_t id, const char *name, enum scope scope, int64_t created_ms)
{
    return json_pack("{s:I, s:s, s:s, s:o}", "id", (json_int_t)id, "name", name, "scope",
                     scope_name(scope), "created_at", http_time_json(created_ms));
}

int handler_authenticate(void *app, const char *token, struct http_principal *out,
                         struct dim_err *err)
{
    struct handler_ctx *a = app;
    struct store_token t;
    int rc = auth_check(a->auth, token, &t, err);
    if (rc == STORE_NOT_FOUND)
        return HTTP_AUTH_DENIED;
    if (rc != STORE_OK)
        return HTTP_AUTH_ERROR;
    out->id = t.id;
    snprintf(out->name, sizeof out->name, "%s", t.name);
    out->scope = t.scope;
    out->created_ms = t.created_ms;
    return HTTP_AUTH_OK;
}

void handle_whoami(void *app, struct http_request *rq)
{
    (void)app;
    const struct http_principal *p = &rq->token;
    http_reply_json(rq, 200, token_json(p->id, p->name, p->scope, p->created_ms));
}

void handle_token_list(void *app, struct http_request *rq)
{
    struct handler_ctx *a = app;
    struct store_token *ts = NULL;
    size_t n = 0;
    struct dim_err err;
    if (store_token_list(a->store, &ts, &n, &err) != STORE_OK) {
        handler_internal(rq, "listing tokens", &err);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, token_json(ts[i].id, ts[i].name, ts[i].scope, ts[i].created_ms));
    free(ts);
    http_reply_json(rq, 200, json_pack("{s:o}", "tokens", arr));
}

void handle_token_create(void *app, struct http_request *rq)
{
    struct handler_ctx *a = app;
    json_t *body = handler_body_json(rq);
    if (!body)
        return;
    json_t *errors = json_array();
    const char *name = NULL;
    enum scope scope = SCOPE_READ;
    if (!json_is_object(body)) {
        jobspec_error(errors, NULL, "the token request must be a JSON object");
    } else {
        const char *k;
        json_t *v;
        json_object_foreach(body, k, v) {
            if (strcmp(k, "name") == 0) {
                if (json_is_string(v) && json_string_length(v) >= 1 &&
                    json_string_length(v) <= 63 &&
                    strlen(json_string_value(v)) == json_string_length(v))
                    name = json_string_value(v);
                else
                    jobspec_error(errors, k, "must be a string of 1 to 63 characters");
            } else if (strcmp(k, "scope") == 0) {
                const char *s = json_is_string(v) ? json_string_value(v) : "";
                scope = scope_parse(s);
                if (scope == SCOPE_NONE)
                    jobspec_error(errors, k, "must be \"read\" or \"write\"");
            } else {
                jobspec_error(errors, k, "unknown field");
            }
        }
        if (!name && json_array_size(errors) == 0)
            jobspec_error(errors, "name", "is required");
    }
    if (json_array_size(errors)) {
        size_t n = json_array_size(errors);
        http_reply_invalid(rq, errors, "the token request has %zu invalid field%s", n,
                           n == 1 ? "" : "s");
        json_decref(body);
        return;
    }
    json_decref(errors);
    if (!handler_writable(a, rq)) {
        json_decref(body);
        return;
    }
    char text[TOKEN_TEXT_MAX];
    struct store_token t;
    struct dim_err err;
    int rc = auth_token_create(a->auth, name, scope, text, &t, &err);
    json_decref(body);
    if (rc != STORE_OK) {
        handler_store_fail(a, rq, rc, "creating the token", &err);
        return;
    }
    json_t *o = token_json(t.id, t.name, t.scope, t.created_ms);
    json_object_set_new(o, "token", json_string(text));
    memset(text, 0, sizeof text);
    http_reply_json(rq, 201, o);
}

void handle_token_delete(void *app, struct http_request *rq)
{
    struct handler_ctx *a = app;
    int64_t id;
    if (!handler_path_id(rq, PROBLEM_TOKEN_NOT_FOUND, &id))
        return;
    struct dim_err err;
    int rc = auth_token_delete(a->auth, id, &err);
    if (rc == STORE_OK)
        http_reply_empty(rq, 204);
    else if (rc == STORE_NOT_FOUND)
        http_reply_problem(rq, PROBLEM_TOKEN_NOT_FOUND, "no token %lld", (long long)id);
    else
        handler_store_fail(a, rq, rc, "deleting the token", &err);
}

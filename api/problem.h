/* problem.h - every problem code the API answers with, and its HTTP status:
 * one table, so a code always comes with the same status and the list of
 * codes is in one place (openapi.yaml's Problem.code describes them).
 * A reply is application/problem+json: {"type": "urn:dimd:problem:CODE",
 * "title", "status", "detail", "code"} (server/http/http.c writes it).
 * Depends on libc only.
 */
#ifndef DIMD_API_PROBLEM_H
#define DIMD_API_PROBLEM_H

#include <stddef.h>

/* X(NAME, status, "code"), by status then code. */
#define PROBLEM_LIST(X) \
    X(INVALID_PARAMETER, 400, "invalid_parameter") \
    X(MALFORMED_JSON, 400, "malformed_json") \
    X(UNAUTHORIZED, 401, "unauthorized") \
    X(HOST_NOT_ALLOWED, 403, "host_not_allowed") \
    X(INSUFFICIENT_SCOPE, 403, "insufficient_scope") \
    X(CHECKPOINT_NOT_FOUND, 404, "checkpoint_not_found") \
    X(EVALUATION_NOT_FOUND, 404, "evaluation_not_found") \
    X(FILE_NOT_FOUND, 404, "file_not_found") \
    X(JOB_NOT_FOUND, 404, "job_not_found") \
    X(METRIC_NOT_FOUND, 404, "metric_not_found") \
    X(MODEL_NOT_FOUND, 404, "model_not_found") \
    X(NOT_FOUND, 404, "not_found") \
    X(SWEEP_NOT_FOUND, 404, "sweep_not_found") \
    X(TOKEN_NOT_FOUND, 404, "token_not_found") \
    X(VERSION_NOT_FOUND, 404, "version_not_found") \
    X(METHOD_NOT_ALLOWED, 405, "method_not_allowed") \
    X(BACKUP_IN_PROGRESS, 409, "backup_in_progress") \
    X(IDEMPOTENCY_KEY_REUSED, 409, "idempotency_key_reused") \
    X(INVALID_TRANSITION, 409, "invalid_transition") \
    X(JOB_NOT_TERMINAL, 409, "job_not_terminal") \
    X(NO_INDEX, 409, "no_index") \
    X(VERSION_PINNED, 409, "version_pinned") \
    X(BODY_TOO_LARGE, 413, "body_too_large") \
    X(TOO_MANY_IMAGES, 413, "too_many_images") \
    X(UNSUPPORTED_MEDIA_TYPE, 415, "unsupported_media_type") \
    X(DATASET_UNAVAILABLE, 422, "dataset_unavailable") \
    X(IMAGE_TOO_LARGE, 422, "image_too_large") \
    X(INVALID_IMAGE, 422, "invalid_image") \
    X(INVALID_REQUEST, 422, "invalid_request") \
    X(INVALID_TENSOR, 422, "invalid_tensor") \
    X(NO_IMAGES, 422, "no_images") \
    X(VALIDATION_FAILED, 422, "validation_failed") \
    X(ENCODE_QUEUE_FULL, 429, "encode_queue_full") \
    X(QUEUE_FULL, 429, "queue_full") \
    X(INTERNAL, 500, "internal") \
    X(NOT_READY, 503, "not_ready") \
    X(SHUTTING_DOWN, 503, "shutting_down") \
    X(TOO_MANY_STREAMS, 503, "too_many_streams") \
    X(INSUFFICIENT_STORAGE, 507, "insufficient_storage")

enum problem {
#define PROBLEM_ENUM(name, status, code) PROBLEM_##name,
    PROBLEM_LIST(PROBLEM_ENUM)
#undef PROBLEM_ENUM
    PROBLEM_N
};

/* The code's text ("job_not_found"); "internal" out of range. */
const char *problem_code(enum problem p);
/* Its HTTP status (404); 500 out of range. */
int problem_status(enum problem p);

/* Makes the NUL-terminated s valid UTF-8 in place, so that it can go into a
 * JSON string (jansson refuses anything else): each byte that does not belong
 * to a well-formed sequence (RFC 3629: no overlong forms, surrogates or values
 * above U+10FFFF; a sequence cut short by the end counts as malformed) becomes
 * '?'. Valid text is left as it is. Returns the number of bytes replaced.
 * Details quote request paths and values, which may hold any byte. */
size_t problem_utf8_fix(char *s);

#endif

/* error.h - status codes and the caller-owned error record used across core/.
 *
 * Every fallible core function returns an int status: 0 on success, a negative
 * DIM_E* code on failure. When the caller passes a non-NULL struct dim_err, the
 * function also writes a one-line message that names the offending value
 * ("input has 3 channels, model expects 1"). Nothing in core/ prints or exits.
 * Depends on: libc only.
 */
#ifndef DIM_BASE_ERROR_H
#define DIM_BASE_ERROR_H

#include <stddef.h>

/* X(name, value, short description). Values are stable: they appear in
 * checkpoints' error reports and in the service's problem codes. */
#define DIM_ERROR_TABLE(X)                                                         \
    X(OK, 0, "ok")                                                                 \
    X(NOMEM, -1, "out of memory")                                                  \
    X(INVAL, -2, "invalid argument")                                               \
    X(IO, -3, "input/output error")                                                \
    X(NOENT, -4, "no such file or directory")                                      \
    X(FORMAT, -5, "malformed data")                                                \
    X(SHAPE, -6, "shape mismatch")                                                 \
    X(RANGE, -7, "value out of range")                                             \
    X(LIMIT, -8, "configured limit exceeded")                                      \
    X(NONFINITE, -9, "non-finite value")                                           \
    X(UNSUPPORTED, -10, "unsupported")                                             \
    X(CANCELLED, -11, "cancelled")                                                 \
    X(CKPT_TRUNCATED, -20, "checkpoint truncated")                                 \
    X(CKPT_MAGIC, -21, "not a dimd checkpoint (bad magic)")                        \
    X(CKPT_VERSION, -22, "unsupported checkpoint version")                         \
    X(CKPT_CHECKSUM, -23, "checkpoint checksum mismatch")                          \
    X(CKPT_CONFIG, -24, "checkpoint config invalid")                               \
    X(CKPT_LAYOUT, -25, "checkpoint tensor table does not match its config")

enum dim_status {
#define DIM_ERR_ENUM(name, value, text) DIM_E##name = value,
    DIM_ERROR_TABLE(DIM_ERR_ENUM)
#undef DIM_ERR_ENUM
};

struct dim_err {
    int code;
    char msg[256];
};

/* Stable lower-case identifier of a code ("ckpt_magic"), or "unknown". Static storage. */
const char *dim_status_name(int code);

/* Short English description of a code. Static storage. */
const char *dim_status_text(int code);

/* Records code and a printf-style message in err (when non-NULL) and returns code,
 * so callers write `return dim_fail(err, DIM_EINVAL, "batch %zu must be > 0", b);`. */
int dim_fail(struct dim_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clears err to DIM_EOK with an empty message. err may be NULL. */
void dim_err_clear(struct dim_err *err);

#endif

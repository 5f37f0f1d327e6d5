/* event_json.c - the text of the job events (api/event_json.h), built with
 * jansson and dumped compactly with DIMD_REAL_DIGITS, keys in the order they
 * are packed. The bytes must not change: stored events are replayed to clients
 * as they were written.
 * Depends on jansson, api/job_state.h, api/real.h.
 */
#include "api/event_json.h"

#include <jansson.h>

#include "api/real.h"

/* Dumps v (may be NULL) and drops the reference. */
static char *dump(json_t *v)
{
    if (!v)
        return NULL;
    char *txt = json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(DIMD_REAL_DIGITS));
    json_decref(v);
    return txt;
}

char *event_json_state(enum job_state to, int previous, const char *code, const char *message)
{
    json_t *e = code ? json_pack("{s:s, s:s?}", "code", code, "message", message) : json_null();
    if (!e)
        return NULL;
    return dump(json_pack("{s:s, s:s?, s:o}", "state", job_state_name(to), "previous",
                          previous < 0 ? NULL : job_state_name((enum job_state)previous), "error",
                          e));
}

char *event_json_metrics(const struct event_json_point *p, size_t n)
{
    json_t *points = json_array();
    for (size_t i = 0; points && i < n; i++) {
        json_t *o =
            json_pack("{s:s, s:I, s:o, s:I}", "key", p[i].key, "step", (json_int_t)p[i].step,
                      "value", real_json(p[i].value), "wall_ms", (json_int_t)p[i].wall_ms);
        if (!o || json_array_append_new(points, o) != 0) {
            json_decref(points);
            points = NULL;
        }
    }
    if (!points)
        return NULL;
    return dump(json_pack("{s:o}", "points", points));
}

char *event_json_checkpoint(int64_t step, int64_t bytes, const char *sha256,
                            const char *metrics_json)
{
    json_error_t jerr;
    json_t *metrics = json_loads(metrics_json ? metrics_json : "{}", 0, &jerr);
    if (!metrics || !json_is_object(metrics)) {
        json_decref(metrics);
        return NULL;
    }
    return dump(json_pack("{s:I, s:I, s:s, s:o}", "step", (json_int_t)step, "bytes",
                          (json_int_t)bytes, "sha256", sha256, "metrics", metrics));
}

char *event_json_rewind(int64_t step)
{
    return dump(json_pack("{s:I}", "step", (json_int_t)step));
}

/* fuzz_jobspec.c - api/jobspec: a training job body (POST /v1/jobs) as the
 * daemon reads it: json_loadb with the handler's flags, then jobspec_parse.
 * Invariants: the problem count equals the error array's length, each error
 * has a path and a message; an accepted spec's resolved JSON (jobspec_to_json)
 * parses again with no problem to the same resolved JSON.
 */
#include <stdint.h>

#include "api/jobspec.h"
#include "fuzz.h"

/* Datasets "fashion-mnist" and "shapes" exist; any other name does not. */
static int dataset_check(const void *ctx, const char *name, struct dim_err *err)
{
    (void)ctx;
    if (strcmp(name, "fashion-mnist") == 0 || strcmp(name, "shapes") == 0)
        return 0;
    return dim_fail(err, DIM_ENOENT, "no dataset '%s'", name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
                              NULL);
    if (!body)
        return 0;
    json_t *errors = json_array();
    struct job_spec spec;
    int n = jobspec_parse(body, dataset_check, NULL, &spec, errors);
    fuzz_check_errors(errors, n);
    if (n == 0) {
        json_t *resolved = jobspec_to_json(&spec);
        FUZZ_CHECK(resolved, "jobspec_to_json failed");
        json_t *errors2 = json_array();
        struct job_spec again;
        int n2 = jobspec_parse(resolved, dataset_check, NULL, &again, errors2);
        char *dump = json_dumps(errors2, 0);
        FUZZ_CHECK(n2 == 0, "the resolved spec does not parse again: %s", dump);
        free(dump);
        json_t *resolved2 = jobspec_to_json(&again);
        FUZZ_CHECK(json_equal(resolved, resolved2), "the resolved spec changes when parsed again");
        (void)jobspec_total_steps(&spec, 60000);
        (void)jobspec_total_steps(&spec, 1);
        json_decref(resolved2);
        json_decref(errors2);
        json_decref(resolved);
    }
    json_decref(errors);
    json_decref(body);
    return 0;
}

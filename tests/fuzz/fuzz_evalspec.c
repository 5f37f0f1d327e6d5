/* fuzz_evalspec.c - api/evalspec: an evaluation job body ("kind": "evaluate"),
 * read as the daemon reads it (json_loadb, evalspec_is_evaluation,
 * evalspec_parse). Invariants: the error array matches the problem count and
 * each error has a path and a message; an accepted spec's resolved JSON parses
 * again, with no problem, to the same JSON; its metric keys fit the buffer.
 */
#include <stdint.h>

#include "api/evalspec.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
                              NULL);
    if (!body)
        return 0;
    (void)evalspec_is_evaluation(body);
    json_t *errors = json_array();
    struct eval_spec spec;
    int n = evalspec_parse(body, &spec, errors);
    fuzz_check_errors(errors, n);
    if (n == 0) {
        if (spec.version == 0)
            spec.version = 1; /* "latest", resolved by the API before it is stored */
        json_t *resolved = evalspec_to_json(&spec);
        FUZZ_CHECK(resolved, "evalspec_to_json failed");
        json_t *errors2 = json_array();
        struct eval_spec again;
        int n2 = evalspec_parse(resolved, &again, errors2);
        char *dump = json_dumps(errors2, 0);
        FUZZ_CHECK(n2 == 0, "the resolved spec does not parse again: %s", dump);
        free(dump);
        json_t *resolved2 = evalspec_to_json(&again);
        FUZZ_CHECK(json_equal(resolved, resolved2), "the resolved spec changes when parsed again");
        const char *keys[EVAL_MAX_KEYS];
        size_t nk = evalspec_metric_keys(spec.opts.measures, keys);
        FUZZ_CHECK(nk < EVAL_MAX_KEYS && keys[nk] == NULL, "%zu metric keys", nk);
        json_decref(resolved2);
        json_decref(errors2);
        json_decref(resolved);
    }
    json_decref(errors);
    json_decref(body);
    return 0;
}

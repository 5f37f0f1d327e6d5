/* fuzz_sweep_spec.c - api/sweep_spec: a sweep body (POST /v1/sweeps) as the
 * daemon reads it: json_loadb with the handler's flags, then sweep_spec_parse.
 * Invariants: the problem count equals the error array's length, each error
 * has a path and a message; an accepted spec's resolved JSON parses again to
 * the same resolved JSON; its rungs ascend and end at the budget; the first
 * trials' job bodies, when valid, are this sweep's; ASHA's decisions on made-up
 * results never promote more than the slots nor decide a trial twice.
 */
#include <math.h>
#include <stdint.h>

#include "api/sweep_spec.h"
#include "fuzz.h"

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
    struct sweep_spec s;
    int n = sweep_spec_parse(body, dataset_check, NULL, &s, errors);
    fuzz_check_errors(errors, n);
    if (n == 0) {
        json_t *resolved = sweep_spec_to_json(&s);
        FUZZ_CHECK(resolved, "sweep_spec_to_json failed");
        json_t *errors2 = json_array();
        struct sweep_spec again;
        int n2 = sweep_spec_parse(resolved, dataset_check, NULL, &again, errors2);
        char *dump = json_dumps(errors2, 0);
        FUZZ_CHECK(n2 == 0, "the resolved sweep does not parse again: %s", dump);
        free(dump);
        json_t *resolved2 = sweep_spec_to_json(&again);
        FUZZ_CHECK(json_equal(resolved, resolved2), "the resolved sweep changes when parsed again");
        double r[SWEEP_MAX_RUNGS];
        int nr = sweep_rungs(&s, r);
        FUZZ_CHECK(nr >= 1 && nr <= SWEEP_MAX_RUNGS && r[nr - 1] == s.budget, "rungs end elsewhere");
        for (int k = 1; k < nr; k++)
            FUZZ_CHECK(r[k] > r[k - 1], "rungs do not ascend");
        for (int k = 0; k < nr; k++) {
            uint64_t st = sweep_rung_step(1000, r[k], s.budget);
            FUZZ_CHECK(st >= 1 && st <= 1000, "rung step %llu out of [1, 1000]", (unsigned long long)st);
        }
        for (int t = 0; t < s.trials && t < 3; t++) {
            json_t *b = sweep_trial_body(&s, 9, t);
            json_t *e3 = json_array();
            struct job_spec js;
            int n3 = jobspec_parse(b, dataset_check, NULL, &js, e3);
            char *d3 = json_dumps(e3, 0), *bt = json_dumps(b, 0);
            /* each value was checked alone; a combination may still be refused (alpha and
             * beta both 0): that trial fails with the job's message */
            FUZZ_CHECK(n3 != 0 || (js.sweep_id == 9 && js.trial == t),
                       "trial %d's job %s is not this sweep's: %s", t, bt, d3);
            free(d3);
            free(bt);
            json_decref(e3);
            json_decref(b);
        }
        struct sweep_rung_entry e[8];
        int64_t p[8], st[8];
        size_t np, ns;
        for (int i = 0; i < 8; i++)
            e[i] = (struct sweep_rung_entry){i, i < (int)size ? (double)data[i] : NAN,
                                             (enum sweep_decision)(i % 3 == 2)};
        sweep_asha_decide(e, 8, s.eta, s.maximize, size % 2, 2, p, &np, st, &ns);
        FUZZ_CHECK(np <= 2 && np + ns <= 8, "%zu promotions, %zu stops", np, ns);
        json_decref(resolved2);
        json_decref(errors2);
        json_decref(resolved);
        sweep_spec_clear(&again);
    }
    sweep_spec_clear(&s);
    json_decref(errors);
    json_decref(body);
    return 0;
}

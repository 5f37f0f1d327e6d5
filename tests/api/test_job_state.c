/* test_job_state.c - job states on the wire (api/job_state.h).
 *
 * The names are what clients filter on (?state=RUNNING) and what the store
 * writes, so: every state has a distinct upper-case name that parses back to
 * it; parsing is exact (no other case, no prefix, no NULL crash); out-of-range
 * values name themselves "UNKNOWN"; exactly SUCCEEDED, FAILED and CANCELLED
 * are terminal; JOB_MASK gives each state its own bit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "api/job_state.h"

static void test_names_round_trip(void **state)
{
    (void)state;
    static const char *const want[JOB_N_STATES] = {"QUEUED",    "RUNNING", "PAUSED",
                                                   "SUCCEEDED", "FAILED",  "CANCELLED"};
    for (int i = 0; i < JOB_N_STATES; i++) {
        const char *n = job_state_name((enum job_state)i);
        assert_string_equal(n, want[i]);
        assert_int_equal(job_state_parse(n), i);
        for (int k = 0; k < i; k++)
            assert_string_not_equal(n, job_state_name((enum job_state)k));
    }
}

static void test_unknown(void **state)
{
    (void)state;
    assert_string_equal(job_state_name(JOB_N_STATES), "UNKNOWN");
    assert_string_equal(job_state_name((enum job_state)(-1)), "UNKNOWN");
    assert_string_equal(job_state_name((enum job_state)1000), "UNKNOWN");
    const char *bad[] = {"", "queued", "Running", "RUN", "RUNNINGX", " QUEUED", "UNKNOWN", "0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(job_state_parse(bad[i]), -1);
    assert_int_equal(job_state_parse(NULL), -1);
}

static void test_terminal_states_and_masks(void **state)
{
    (void)state;
    unsigned seen = 0;
    for (int i = 0; i < JOB_N_STATES; i++) {
        enum job_state s = (enum job_state)i;
        bool want = s == JOB_SUCCEEDED || s == JOB_FAILED || s == JOB_CANCELLED;
        assert_int_equal(job_state_terminal(s), want);
        assert_int_equal(seen & JOB_MASK(s), 0);
        seen |= JOB_MASK(s);
    }
    assert_int_equal(seen, (1u << JOB_N_STATES) - 1);
    assert_false(job_state_terminal(JOB_N_STATES));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_round_trip),
        cmocka_unit_test(test_unknown),
        cmocka_unit_test(test_terminal_states_and_masks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

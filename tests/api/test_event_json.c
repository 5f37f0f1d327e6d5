/* test_event_json.c - the text of job events (api/event_json.h), compared
 * byte for byte with what the dashboard and tests/e2e read: key order,
 * compact separators, null previous, error and message, NaN and infinities as strings,
 * 15 significant digits, escapes, and a checkpoint's metrics re-encoded (and
 * refused when they are not a JSON object). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/event_json.h"

static void check(char *got, const char *want)
{
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_state(void **state)
{
    (void)state;
    check(event_json_state(JOB_QUEUED, -1, NULL, NULL),
          "{\"state\":\"QUEUED\",\"previous\":null,\"error\":null}");
    check(event_json_state(JOB_RUNNING, JOB_QUEUED, NULL, NULL),
          "{\"state\":\"RUNNING\",\"previous\":\"QUEUED\",\"error\":null}");
    check(event_json_state(JOB_FAILED, JOB_RUNNING, "non_finite_loss", "loss is NaN at \"step\" 3"),
          "{\"state\":\"FAILED\",\"previous\":\"RUNNING\",\"error\":{\"code\":\"non_finite_loss\","
          "\"message\":\"loss is NaN at \\\"step\\\" 3\"}}");
    check(event_json_state(JOB_FAILED, JOB_RUNNING, "restart_limit", NULL),
          "{\"state\":\"FAILED\",\"previous\":\"RUNNING\",\"error\":{\"code\":\"restart_limit\","
          "\"message\":null}}");
}

static void test_metrics(void **state)
{
    (void)state;
    const struct event_json_point p[] = {
        {"loss_total", 20, 0.1234567890123456789, 1700000000123},
        {"loss_local", 20, NAN, 1},
        {"probe_y", 21, INFINITY, 2},
        {"loss_prior_disc", 22, -INFINITY, 3},
        {"images_per_second", 22, 1e300, 4},
        {"loss_global", 23, 2.0, 5},
    };
    check(event_json_metrics(p, 6),
          "{\"points\":["
          "{\"key\":\"loss_total\",\"step\":20,\"value\":0.123456789012346,\"wall_ms\":"
          "1700000000123},"
          "{\"key\":\"loss_local\",\"step\":20,\"value\":\"NaN\",\"wall_ms\":1},"
          "{\"key\":\"probe_y\",\"step\":21,\"value\":\"Infinity\",\"wall_ms\":2},"
          "{\"key\":\"loss_prior_disc\",\"step\":22,\"value\":\"-Infinity\",\"wall_ms\":3},"
          "{\"key\":\"images_per_second\",\"step\":22,\"value\":1e300,\"wall_ms\":4},"
          "{\"key\":\"loss_global\",\"step\":23,\"value\":2.0,\"wall_ms\":5}]}");
    check(event_json_metrics(p, 0), "{\"points\":[]}");
}

static void test_checkpoint_and_rewind(void **state)
{
    (void)state;
    const char *sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    check(event_json_checkpoint(500, 123456, sha,
                                "{ \"probe_y\" : 0.8100000000000001, \"loss_total\": -1 }"),
          "{\"step\":500,\"bytes\":123456,\"sha256\":"
          "\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822"
          "cd15d6c15b0f00a08\",\"metrics\":{\"probe_y\":0.81,\"loss_total\":-1}}");
    check(event_json_checkpoint(1, 2, sha, NULL),
          "{\"step\":1,\"bytes\":2,\"sha256\":"
          "\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c"
          "15b0f00a08\",\"metrics\":{}}");
    assert_null(event_json_checkpoint(1, 2, sha, "[1, 2]"));
    assert_null(event_json_checkpoint(1, 2, sha, "{not json"));
    check(event_json_rewind(40), "{\"step\":40}");
    check(event_json_rewind(0), "{\"step\":0}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_checkpoint_and_rewind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_clock.c - the daemon's clocks (server/util/clock.h).
 *
 * clock_mono_ts turns a monotonic instant in seconds into the timespec that
 * pthread_cond_timedwait takes: exact halves, negative times clamped to 0, and
 * tv_nsec in [0, 1e9) for any time, in particular for the doubles just below a
 * whole second (a tv_nsec of 1e9 makes the wait fail with EINVAL), and the
 * timespec is t to the nanosecond. (The fraction of a double below a whole
 * second is at most 1 - 2^-53, which scaled by 1e9 rounds below 1e9, so the
 * carry branch of clock_mono_ts cannot be reached from here; what it guards,
 * tv_nsec < 1e9, is what is checked.) clock_mono_s never goes back;
 * clock_wall_ms is CLOCK_REALTIME in milliseconds. A condition variable from
 * clock_cond_init waits on the monotonic clock: a deadline 50 ms ahead times
 * out after at least 50 ms (only the lower bound is asserted: the machine is
 * shared).
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "util/clock.h"

static void assert_ts(struct timespec ts, long long sec, long nsec)
{
    if ((long long)ts.tv_sec != sec || ts.tv_nsec != nsec)
        fail_msg("got {%lld, %ld}, expected {%lld, %ld}", (long long)ts.tv_sec, ts.tv_nsec, sec,
                 nsec);
}

static void test_mono_ts_conversion(void **state)
{
    (void)state;
    assert_ts(clock_mono_ts(1.5), 1, 500000000);
    assert_ts(clock_mono_ts(0.0), 0, 0);
    assert_ts(clock_mono_ts(7.0), 7, 0);
    assert_ts(clock_mono_ts(0.25), 0, 250000000);
    assert_ts(clock_mono_ts(123456.75), 123456, 750000000);
    /* negative: clamped to 0 */
    assert_ts(clock_mono_ts(-1.5), 0, 0);
    assert_ts(clock_mono_ts(-0.25), 0, 0);
    assert_ts(clock_mono_ts(-1e9), 0, 0);
}

/* Whether ts is t truncated to whole nanoseconds, give or take 1 ns (the
 * scaling of the fraction rounds), with tv_nsec in [0, 1e9). */
static int ts_is(struct timespec ts, double t)
{
    if (ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000L)
        return 0;
    double sec = floor(t);
    double ns = (t - sec) * 1e9; /* exact enough: t - sec is exact */
    long long want_s = (long long)sec, got_s = (long long)ts.tv_sec;
    long long diff = (got_s - want_s) * 1000000000LL + (ts.tv_nsec - (long long)ns);
    return diff >= -1 && diff <= 1;
}

static void test_mono_ts_near_whole_seconds(void **state)
{
    (void)state;
    /* just below a whole second: never a tv_nsec of 1e9 (pthread_cond_timedwait's
     * EINVAL); either the last nanosecond of the second before, or carried */
    const double whole[] = {1, 2, 3, 60, 86400, 1e6, 123456789};
    for (size_t i = 0; i < sizeof whole / sizeof whole[0]; i++) {
        double t = whole[i];
        for (int k = 0; k < 8; k++) {
            t = nextafter(t, 0.0);
            struct timespec ts = clock_mono_ts(t);
            bool below = (double)ts.tv_sec == whole[i] - 1 && ts_is(ts, t);
            bool carried = (double)ts.tv_sec == whole[i] && ts.tv_nsec == 0;
            if (!below && !carried)
                fail_msg("t %.17g gave {%lld, %ld}", t, (long long)ts.tv_sec, ts.tv_nsec);
        }
    }
    assert_ts(clock_mono_ts(2.9999999), 2, 999999900);
    assert_ts(clock_mono_ts(nextafter(0.0, 1.0)), 0, 0);
    /* any time: tv_nsec in range, and the timespec is t to the nanosecond */
    for (int i = 0; i < 100000; i++) {
        double t = i * 0.0123456789 + (i % 7) * 1e6;
        if (!ts_is(clock_mono_ts(t), t))
            fail_msg("t %.17g gave {%lld, %ld}", t, (long long)clock_mono_ts(t).tv_sec,
                     clock_mono_ts(t).tv_nsec);
    }
}

static void test_mono_s_never_goes_back(void **state)
{
    (void)state;
    double prev = clock_mono_s();
    assert_true(prev > 0);
    for (int i = 0; i < 5000; i++) {
        double t = clock_mono_s();
        if (t < prev)
            fail_msg("clock_mono_s went back from %.9f to %.9f", prev, t);
        prev = t;
    }
    /* the same clock as CLOCK_MONOTONIC */
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    double t = clock_mono_s();
    clock_gettime(CLOCK_MONOTONIC, &b);
    assert_true(t >= (double)a.tv_sec + (double)a.tv_nsec * 1e-9 - 1e-6);
    assert_true(t <= (double)b.tv_sec + (double)b.tv_nsec * 1e-9 + 1e-6);
}

static void test_wall_ms_is_realtime_in_ms(void **state)
{
    (void)state;
    struct timespec a, b;
    clock_gettime(CLOCK_REALTIME, &a);
    int64_t w = clock_wall_ms();
    clock_gettime(CLOCK_REALTIME, &b);
    int64_t lo = (int64_t)a.tv_sec * 1000 + a.tv_nsec / 1000000;
    int64_t hi = (int64_t)b.tv_sec * 1000 + b.tv_nsec / 1000000;
    assert_true(w >= lo);
    assert_true(w <= hi);
    assert_true(w > INT64_C(1600000000000)); /* after September 2020: milliseconds, not seconds */
}

static void test_cond_waits_on_the_monotonic_clock(void **state)
{
    (void)state;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv;
    clock_cond_init(&cv);
    pthread_mutex_lock(&mu);
    double t0 = clock_mono_s();
    struct timespec deadline = clock_mono_ts(t0 + 0.05);
    int rc;
    do /* a wake-up without a signal (rc 0) may happen: wait again */
        rc = pthread_cond_timedwait(&cv, &mu, &deadline);
    while (rc == 0);
    double waited = clock_mono_s() - t0;
    pthread_mutex_unlock(&mu);
    assert_int_equal(rc, ETIMEDOUT);
    /* at least 50 ms (less 1 us for the truncation of the deadline to whole ns) */
    if (waited < 0.05 - 1e-6)
        fail_msg("timed out after %.6f s, before its 0.05 s deadline", waited);
    pthread_cond_destroy(&cv);
    pthread_mutex_destroy(&mu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mono_ts_conversion),
        cmocka_unit_test(test_mono_ts_near_whole_seconds),
        cmocka_unit_test(test_mono_s_never_goes_back),
        cmocka_unit_test(test_wall_ms_is_realtime_in_ms),
        cmocka_unit_test(test_cond_waits_on_the_monotonic_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* clock.h - the daemon's clocks: wall time in milliseconds (what is stored and
 * shown), monotonic seconds (what durations and rates are measured with), and
 * condition variables that wait on the monotonic clock, so a change of the
 * system time never stretches or cuts a wait.
 * Depends on libc and pthreads only.
 */
#ifndef DIMD_UTIL_CLOCK_H
#define DIMD_UTIL_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t clock_wall_ms(void);
/* Seconds on CLOCK_MONOTONIC: only differences mean anything. */
double clock_mono_s(void);
/* The CLOCK_MONOTONIC instant t (seconds, as clock_mono_s gives) as a timespec
 * for pthread_cond_timedwait; negative parts are clamped to 0. */
struct timespec clock_mono_ts(double t);
/* Initialises cv to wait on CLOCK_MONOTONIC (give it clock_mono_ts deadlines). */
void clock_cond_init(pthread_cond_t *cv);

#endif

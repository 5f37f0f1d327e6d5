/* job_state.h - the states of a job and their names on the wire.
 *
 * QUEUED -> RUNNING -> SUCCEEDED | FAILED | CANCELLED, with PAUSED between
 * RUNNING and QUEUED; terminal states never change (the store enforces it).
 * Depends on libc only.
 */
#ifndef DIMD_API_JOB_STATE_H
#define DIMD_API_JOB_STATE_H

#include <stdbool.h>

enum job_state {
    JOB_QUEUED,
    JOB_RUNNING,
    JOB_PAUSED,
    JOB_SUCCEEDED,
    JOB_FAILED,
    JOB_CANCELLED,
    JOB_N_STATES
};
#define JOB_MASK(s) (1u << (s))

const char *job_state_name(enum job_state s); /* "QUEUED" ...; "UNKNOWN" out of range */
int job_state_parse(const char *name);        /* enum value, or -1 */
bool job_state_terminal(enum job_state s);

#endif

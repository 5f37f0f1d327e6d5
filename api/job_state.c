/* job_state.c - job state names (see job_state.h). */
#include "api/job_state.h"

#include <string.h>

static const char *const state_names[JOB_N_STATES] = {"QUEUED",    "RUNNING", "PAUSED",
                                                      "SUCCEEDED", "FAILED",  "CANCELLED"};

const char *job_state_name(enum job_state s)
{
    return (unsigned)s < JOB_N_STATES ? state_names[s] : "UNKNOWN";
}

int job_state_parse(const char *name)
{
    for (int i = 0; name && i < JOB_N_STATES; i++)
        if (strcmp(name, state_names[i]) == 0)
            return i;
    return -1;
}

bool job_state_terminal(enum job_state s)
{
    return s == JOB_SUCCEEDED || s == JOB_FAILED || s == JOB_CANCELLED;
}

/* problem.c - the table of problem codes (see problem.h). */
#include "api/problem.h"

static const struct {
    int status;
    const char *code;
} problems[PROBLEM_N] = {
#define PROBLEM_ROW(name, status, code) {status, code},
    PROBLEM_LIST(PROBLEM_ROW)
#undef PROBLEM_ROW
};

const char *problem_code(enum problem p)
{
    return (unsigned)p < PROBLEM_N ? problems[p].code : "internal";
}

int problem_status(enum problem p)
{
    return (unsigned)p < PROBLEM_N ? problems[p].status : 500;
}

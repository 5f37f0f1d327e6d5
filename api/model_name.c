/* model_name.c - model names and version numbers as users write them (see model_name.h). */
#include "api/model_name.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

bool model_name_ok(const char *n)
{
    if (!n || !*n || strlen(n) > MODEL_NAME_MAX - 1)
        return false;
    for (const char *p = n; *p; p++) {
        bool alnum = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9');
        if (!alnum && (p == n || (*p != '_' && *p != '-')))
            return false;
    }
    return true;
}

bool model_version_parse(const char *s, int *version)
{
    if (!s)
        return false;
    if (strcmp(s, "latest") == 0) {
        *version = 0;
        return true;
    }
    const char *d = s[0] == 'v' ? s + 1 : s;
    char *end;
    errno = 0;
    long long v = strtoll(d, &end, 10);
    if (*d < '0' || *d > '9' || *end || errno || v < 1 || v > INT32_MAX)
        return false;
    *version = (int)v;
    return true;
}

/* scope.c - token and route scopes (see scope.h). */
#include "api/scope.h"

#include <string.h>

const char *scope_name(enum scope s)
{
    return s == SCOPE_WRITE ? "write" : s == SCOPE_READ ? "read" : "none";
}

enum scope scope_parse(const char *name)
{
    if (name && strcmp(name, "write") == 0)
        return SCOPE_WRITE;
    if (name && strcmp(name, "read") == 0)
        return SCOPE_READ;
    return SCOPE_NONE;
}

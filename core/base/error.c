/* error.c - names and texts for the status table in error.h. */
#include "base/error.h"

#include <stdarg.h>
#include <stdio.h>

const char *dim_status_name(int code)
{
    switch (code) {
#define DIM_ERR_NAME(name, value, text)                                                    \
    case value:                                                                            \
        return #name;
        DIM_ERROR_TABLE(DIM_ERR_NAME)
#undef DIM_ERR_NAME
    }
    return "UNKNOWN";
}

const char *dim_status_text(int code)
{
    switch (code) {
#define DIM_ERR_TEXT(name, value, text)                                                    \
    case value:                                                                            \
        return text;
        DIM_ERROR_TABLE(DIM_ERR_TEXT)
#undef DIM_ERR_TEXT
    }
    return "unknown error";
}

int dim_fail(struct dim_err *err, int code, const char *fmt, ...)
{
    if (err) {
        err->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void dim_err_clear(struct dim_err *err)
{
    if (err) {
        err->code = DIM_EOK;
        err->msg[0] = '\0';
    }
}

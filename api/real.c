/* real.c - real numbers on the wire (see real.h). */
#include "api/real.h"

#include <math.h>

const char *real_nonfinite_text(double v)
{
    if (isnan(v))
        return "NaN";
    if (isinf(v))
        return v > 0 ? "Infinity" : "-Infinity";
    return NULL;
}

json_t *real_json(double v)
{
    const char *t = real_nonfinite_text(v);
    return t ? json_string(t) : json_real(v);
}

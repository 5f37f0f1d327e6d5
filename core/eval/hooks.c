/* hooks.c - progress and cancellation (see hooks.h). */
#include "eval/hooks.h"

#include <stddef.h>

bool dim_hooks_cancelled(const struct dim_hooks *h)
{
    return h && h->cancel && atomic_load_explicit(h->cancel, memory_order_relaxed);
}

void dim_hooks_report(const struct dim_hooks *h, double f)
{
    if (!h || !h->progress)
        return;
    f = f < 0.0 ? 0.0 : (f > 1.0 ? 1.0 : f);
    h->progress(h->ctx, h->stage ? h->stage : "", h->lo + f * (h->hi - h->lo));
}

bool dim_hooks_due(long s, long n)
{
    long every = n / 100 > 0 ? n / 100 : 1;
    return s + 1 == n || (s + 1) % every == 0;
}

/* parallel.c - the per-thread pool hook. */
#include "base/parallel.h"

static _Thread_local const struct dim_parallel *current;

void dim_parallel_use(const struct dim_parallel *p)
{
    current = p;
}

void dim_parallel_for(size_t n, size_t grain, dim_range_fn fn, void *ctx)
{
    if (n == 0)
        return;
    if (!current || n < 2 * (grain ? grain : 1)) {
        fn(ctx, 0, n);
        return;
    }
    current->run(current->pool, fn, ctx, n);
}

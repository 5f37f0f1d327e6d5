/* parallel.c - the per-thread pool hook. */
#include "base/parallel.h"

#include <string.h>

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

int dim_parallel_width(void)
{
    return current && current->width > 1 ? current->width : 1;
}

static void zero_range(void *ctx, size_t i0, size_t i1)
{
    memset((float *)ctx + i0, 0, sizeof(float) * (i1 - i0));
}

void dim_parallel_zero(float *p, size_t n)
{
    dim_parallel_for(n, 65536, zero_range, p);
}

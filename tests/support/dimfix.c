/* dimfix.c - shared DIM test set-ups (see dimfix.h). */
#include "dimfix.h"

#include <stdlib.h>
#include <string.h>

struct dim_config dimfix_config(int y_dim, int mi_dim, uint32_t batch)
{
    struct dim_config c;
    dim_config_default(&c);
    c.preset = DIM_BASIC28;
    c.y_dim = y_dim;
    c.mi_dim = mi_dim;
    c.batch = batch;
    return c;
}

void dimfix_random_dataset(struct dim_dataset *ds, size_t n, int classes, uint64_t seed)
{
    memset(ds, 0, sizeof *ds);
    ds->n = n, ds->c = 1, ds->h = 28, ds->w = 28, ds->n_classes = classes;
    ds->px = malloc(n * 784);
    ds->labels = malloc(n * sizeof(uint16_t));
    if (!ds->px || !ds->labels)
        abort();
    struct dim_rng r;
    dim_rng_seed(&r, seed, 7);
    for (size_t i = 0; i < n * 784; i++)
        ds->px[i] = (uint8_t)dim_rng_below(&r, 256);
    for (size_t i = 0; i < n; i++)
        ds->labels[i] = (uint16_t)(i % (size_t)classes);
}

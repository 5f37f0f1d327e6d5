/* rng.c - PCG32 (O'Neill, pcg-random.org, XSH RR 64/32). */
#include "base/rng.h"

#include <math.h>

void dim_rng_seed(struct dim_rng *r, uint64_t seed, uint64_t stream)
{
    r->state = 0;
    r->inc = (stream << 1u) | 1u;
    dim_rng_u32(r);
    r->state += seed;
    dim_rng_u32(r);
}

uint32_t dim_rng_u32(struct dim_rng *r)
{
    uint64_t old = r->state;
    r->state = old * 6364136223846793005ULL + r->inc;
    uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = (uint32_t)(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
}

uint32_t dim_rng_below(struct dim_rng *r, uint32_t n)
{
    uint32_t threshold = (uint32_t)(-n) % n;
    for (;;) {
        uint32_t x = dim_rng_u32(r);
        if (x >= threshold)
            return x % n;
    }
}

float dim_rng_uniform(struct dim_rng *r)
{
    return (float)(dim_rng_u32(r) >> 8) * (1.0f / 16777216.0f);
}

float dim_rng_normal(struct dim_rng *r)
{
    /* u1 in (0, 1] so that log(u1) is finite. */
    double u1 = ((double)(dim_rng_u32(r) >> 8) + 1.0) / 16777216.0;
    double u2 = (double)(dim_rng_u32(r) >> 8) / 16777216.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void dim_rng_shuffle(struct dim_rng *r, uint32_t *idx, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        uint32_t j = dim_rng_below(r, (uint32_t)i);
        uint32_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}

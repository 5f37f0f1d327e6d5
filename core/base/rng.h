/* rng.h - explicit, seedable random number generator (PCG32).
 *
 * All randomness in core/ flows through a struct dim_rng that the caller owns,
 * so that runs are reproducible and a checkpoint can save and restore the exact
 * stream (the struct is two uint64_t words, saved verbatim).
 * Not thread-safe: one generator per thread of use.
 */
#ifndef DIM_BASE_RNG_H
#define DIM_BASE_RNG_H

#include <stddef.h>
#include <stdint.h>

struct dim_rng {
    uint64_t state;
    uint64_t inc;
};

/* Seeds the generator; stream selects an independent sequence for the same seed. */
void dim_rng_seed(struct dim_rng *r, uint64_t seed, uint64_t stream);
uint32_t dim_rng_u32(struct dim_rng *r);
/* Uniform in [0, n) without modulo bias. n must be > 0. */
uint32_t dim_rng_below(struct dim_rng *r, uint32_t n);
/* Uniform float in [0, 1). */
float dim_rng_uniform(struct dim_rng *r);
/* Standard normal (Box-Muller; one value per call). */
float dim_rng_normal(struct dim_rng *r);
/* Fisher-Yates shuffle of idx[0..n). */
void dim_rng_shuffle(struct dim_rng *r, uint32_t *idx, size_t n);

#endif

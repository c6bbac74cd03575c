/* magpie/rng.h: a small, fast, seedable random generator (xoshiro256**, seeded by splitmix64).
 * Caller-owned state, no globals: give each thread its own mp_rng (mp_rng_jump-free: seed with seed+thread).
 * No call here returns an error code. Thread safety: calls on different mp_rng values may run concurrently;
 * every call mutates its mp_rng, so one mp_rng must not be shared between threads without a lock. */
#ifndef MAGPIE_RNG_H
#define MAGPIE_RNG_H

#include <stdint.h>

#include "magpie/error.h"

typedef struct mp_rng {
    uint64_t s[4]; /* generator state; never all zero */
} mp_rng;

MP_EXPORT void mp_rng_seed(mp_rng *rng, uint64_t seed);
MP_EXPORT uint64_t mp_rng_next(mp_rng *rng);
/* Uniform integer in [0, n); n > 0. Unbiased (Lemire's method). */
MP_EXPORT uint64_t mp_rng_below(mp_rng *rng, uint64_t n);
/* Uniform double in [0, 1). */
MP_EXPORT double mp_rng_uniform(mp_rng *rng);
/* Standard normal (Box-Muller, no cached second value so the state alone defines the stream). */
MP_EXPORT double mp_rng_normal(mp_rng *rng);
/* Fisher-Yates shuffle of n uint32 values in place. */
MP_EXPORT void mp_rng_shuffle_u32(mp_rng *rng, uint32_t *a, uint64_t n);

#endif

/* sha256.h - SHA-256 (FIPS 180-4), streaming and one-shot.
 *
 * Used for checkpoint digests, idempotency request bodies and bearer tokens
 * (only their hash is stored). Not constant-time with respect to the message
 * length, which is public in every use here.
 * Depends on libc only.
 */
#ifndef DIMD_UTIL_SHA256_H
#define DIMD_UTIL_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sha256_ctx {
    uint32_t h[8];
    uint64_t len;          /* message bytes so far */
    unsigned char buf[64]; /* pending partial block */
    size_t n;              /* bytes in buf */
};

/* Starts a digest. */
void sha256_init(struct sha256_ctx *c);
/* Adds n bytes (data may be NULL when n is 0). */
void sha256_update(struct sha256_ctx *c, const void *data, size_t n);
/* Writes the 32-byte digest; c must be initialised again before reuse. */
void sha256_final(struct sha256_ctx *c, unsigned char out[32]);
/* One-shot digest of data[0..n) as 64 lowercase hex digits and a NUL. */
void sha256_hex(const void *data, size_t n, char out[65]);

/* The block function in use: "sha-ni" (x86-64 SHA extensions, chosen by
 * cpuid) or "portable". */
const char *sha256_impl(void);
/* Uses the portable block function when on (off: back to the cpuid choice);
 * returns whether the SHA extensions were in use before. For tests and
 * benchmarks that compare the two; not for concurrent use with hashing. */
bool sha256_force_portable(bool on);

#endif

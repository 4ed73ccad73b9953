/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The few things every memlane folder shares: compiler hints, the cache
 * line size and the one key hash.
 *
 * Hash bit budget. Every key is hashed once, when it is parsed:
 *
 *     hv = XXH3_64bits(key, klen)
 *
 * and hv travels with the request from then on. Its bits are spent so that
 * no two consumers read the same ones:
 *
 *   bits 63..0  (multiply-shift)  which core owns the key:
 *                                 core = ((__uint128_t)hv * ncores) >> 64,
 *                                 dominated by the top bits;
 *   bits 31..0                    which index bucket in the shard (linear
 *                                 hashing takes as many low bits as the
 *                                 index has levels);
 *   bits 43..34                   the 10-bit tag kept in the index slot,
 *                                 which rejects almost every wrong slot
 *                                 without reading the item.
 *
 * The node ring (ketama) uses its own client-compatible MD5 hash and is
 * computed only when the cluster has more than one node.
 */
#ifndef MEMLANE_COMMON_H
#define MEMLANE_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#define ML_CACHE_LINE	 64
#define ML_ALIGNED(n)	 __attribute__((aligned(n)))
#define ML_CACHE_ALIGNED ML_ALIGNED(ML_CACHE_LINE)

#ifndef likely
#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#endif

#define ML_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ML_MIN(a, b)	 ((a) < (b) ? (a) : (b))
#define ML_MAX(a, b)	 ((a) > (b) ? (a) : (b))

/* The one key hash. */
static inline uint64_t ml_hash(const void *key, size_t klen)
{
	return XXH3_64bits(key, klen);
}

/* Which of ncores owns hv (multiply-shift, no modulo). */
static inline unsigned ml_hash_core(uint64_t hv, unsigned ncores)
{
	return (unsigned)(((__uint128_t)hv * ncores) >> 64);
}

#endif /* MEMLANE_COMMON_H */

/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ring/: which node owns a key, and which core of it.
 *
 * The node ring is libmemcached's weighted ketama, bit for bit (the mode
 * of MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, PHP's OPT_LIBKETAMA_COMPATIBLE
 * and pylibmc's ketama), so that a client that speaks it sends each key
 * straight to the node that owns it:
 *
 *   - member i gets floor(w_i / W * 40 * n + 1e-10) * 4 points, computed
 *     in float32 as libmemcached does (about 160 per member; some member
 *     counts get 156), where W is the sum of the weights and n the
 *     number of members of weight above 0; a member of weight 0 gets
 *     none and counts as if it were not listed, so keys go where a client
 *     sends them without it (libmemcached takes 0 as 1: clients cannot
 *     say it; it is a drained, dead or left member);
 *   - the points of member i are the MD5 digests of "host-j", or of
 *     "host:port-j" when the port is not 11211, for j = 0, 1, ..., four
 *     points per digest (its bytes 4x..4x+3, little-endian);
 *   - a key's point is the first four bytes of its MD5, little-endian;
 *     its owner is the member of the first ring point at or above it,
 *     wrapping around to the lowest.
 *
 * A ring is immutable once built: a change of members or weights builds
 * a new one (with the next epoch) and swaps it in whole.
 *
 * The key -> core split is multiply-shift on the key's 64-bit hash (the
 * cache's XXH3), a function unrelated to MD5: the keys a node owns
 * spread evenly over its cores.
 */
#ifndef MEMLANE_RING_H
#define MEMLANE_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"

#define RING_HOST_MAX	  64
#define RING_MEMBER_MAX	  4096
#define RING_DEFAULT_PORT 11211 /* ketama leaves this port out of a name */

struct ring_member {
	char host[RING_HOST_MAX]; /* as clients name it: the MD5 input */
	uint16_t port;
	uint32_t weight;
};

struct ring_params {
	const struct ring_member *members; /* a member's index is its id */
	unsigned nmembers;
	uint64_t epoch;
};

/* An interval of ring points, both ends included. */
struct ring_range {
	uint32_t lo, hi;
};

struct ring;

/* 0, or -EINVAL (no member, a host empty or too long, every weight 0,
 * too many points) or -ENOMEM. */
int ring_create(const struct ring_params *p, struct ring **out);
void ring_free(struct ring *r);

/* A key's point: the first four bytes of its MD5, little-endian. */
uint32_t ring_key_point(const void *key, size_t len);
/* The member owning a point. */
unsigned ring_owner(const struct ring *r, uint32_t point);

static inline unsigned ring_lookup(const struct ring *r, const void *key,
				   size_t len)
{
	return ring_owner(r, ring_key_point(key, len));
}

unsigned ring_nmembers(const struct ring *r);
const struct ring_member *ring_member(const struct ring *r, unsigned i);
uint64_t ring_epoch(const struct ring *r);
/* Points on the ring, all members' and member i's. */
unsigned ring_npoints(const struct ring *r);
unsigned ring_member_npoints(const struct ring *r, unsigned i);
/* The part of the 2^32 points member i owns. */
double ring_share(const struct ring *r, unsigned i);
/*
 * The ranges of points member i owns, ascending and merged where they
 * touch. Writes at most max of them; returns how many there are.
 */
unsigned ring_ranges(const struct ring *r, unsigned i, struct ring_range *out,
		     unsigned max);
/* Whether a point lies in one of n ascending, disjoint ranges. */
bool ring_range_has(const struct ring_range *rs, unsigned n, uint32_t point);
/*
 * Sets of points as ascending, disjoint ranges: a and b, a less b, and
 * what a and b share. out has room for na + nb ranges (none of the three
 * can need more) and may not be a or b. Each returns how many it wrote.
 */
unsigned ring_ranges_union(const struct ring_range *a, unsigned na,
			   const struct ring_range *b, unsigned nb,
			   struct ring_range *out);
unsigned ring_ranges_minus(const struct ring_range *a, unsigned na,
			   const struct ring_range *b, unsigned nb,
			   struct ring_range *out);
unsigned ring_ranges_intersect(const struct ring_range *a, unsigned na,
			       const struct ring_range *b, unsigned nb,
			       struct ring_range *out);

/* The core of ncores that owns a key of 64-bit hash hv (XXH3, the
 * cache's own split: the shard a node's cache gives the key). The node
 * ring hashes with MD5, so the two do not correlate. */
static inline unsigned ring_core(uint64_t hv, unsigned ncores)
{
	return ml_hash_core(hv, ncores);
}

#endif /* MEMLANE_RING_H */

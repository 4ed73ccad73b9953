/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Random numbers for building request streams, and the Zipf generator.
 *
 * None of this runs inside a timed loop: the benches draw every key number
 * they will need before the clock starts.
 */
#include <errno.h>
#include <math.h>

#include "bench.h"

void bench_rng_seed(struct bench_rng *r, uint64_t seed)
{
	r->state = seed;
}

/* splitmix64: a Weyl sequence, then a mixing finaliser. */
uint64_t bench_rng_next(struct bench_rng *r)
{
	uint64_t z;

	r->state += 0x9e3779b97f4a7c15ull;
	z = r->state;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Multiply-shift: the bias is below n / 2^64, far under what matters. */
uint64_t bench_rng_below(struct bench_rng *r, uint64_t n)
{
	return (uint64_t)(((__uint128_t)bench_rng_next(r) * n) >> 64);
}

double bench_rng_double(struct bench_rng *r)
{
	/* The top 53 bits, as a fraction of 2^53. */
	return (double)(bench_rng_next(r) >> 11) * 0x1.0p-53;
}

/* zeta(n, theta) = sum over i in 1..n of 1 / i^theta. Summed from the
 * smallest terms up, which loses the least precision. */
static double zipf_zeta(uint64_t n, double theta)
{
	double sum = 0.0;
	uint64_t i;

	for (i = n; i >= 1; i--)
		sum += exp(-theta * log((double)i));
	return sum;
}

int bench_zipf_init(struct bench_zipf *z, uint64_t n, double theta,
		    uint64_t seed)
{
	struct bench_rng r;
	double zeta2;

	if (n == 0 || !(theta > 0.0 && theta < 1.0))
		return -EINVAL;

	z->n = n;
	z->theta = theta;
	z->alpha = 1.0 / (1.0 - theta);
	z->zetan = zipf_zeta(n, theta);
	zeta2 = 1.0 + pow(0.5, theta);
	z->half_pow_theta = zeta2;
	z->eta = (1.0 - pow(2.0 / (double)n, 1.0 - theta)) /
		 (1.0 - zeta2 / z->zetan);

	/* The smallest power of two that holds n, so that a walk through
	 * the bijection lands below n in at most two steps on average. */
	z->bits = 1;
	while (z->bits < 64 && (1ull << z->bits) < n)
		z->bits++;
	bench_rng_seed(&r, seed);
	z->add = bench_rng_next(&r);
	z->mul1 = bench_rng_next(&r) | 1;
	z->mul2 = bench_rng_next(&r) | 1;
	return 0;
}

uint64_t bench_zipf_rank(const struct bench_zipf *z, struct bench_rng *r)
{
	double u = bench_rng_double(r);
	double uz = u * z->zetan;
	uint64_t rank;

	if (uz < 1.0)
		return 0;
	if (uz < z->half_pow_theta)
		return 1;
	rank = (uint64_t)((double)z->n *
			  pow(z->eta * u - z->eta + 1.0, z->alpha));
	return rank < z->n ? rank : z->n - 1;
}

/*
 * One round of a bijection of [0, 2^bits): adding a constant, multiplying
 * by an odd number modulo 2^bits and xoring in a right shift of itself are
 * each invertible.
 */
static uint64_t zipf_mix(const struct bench_zipf *z, uint64_t x)
{
	uint64_t mask = z->bits == 64 ? ~0ull : (1ull << z->bits) - 1;
	unsigned shift = (z->bits + 1) / 2;

	x = (x + z->add) & mask;
	x = (x * z->mul1) & mask;
	x ^= x >> shift;
	x = (x * z->mul2) & mask;
	x ^= x >> shift;
	return x;
}

/* Cycle walking: applying a bijection of the larger range until the value
 * falls inside [0, n) gives a bijection of [0, n). */
uint64_t bench_zipf_scramble(const struct bench_zipf *z, uint64_t rank)
{
	uint64_t x = rank;

	do {
		x = zipf_mix(z, x);
	} while (x >= z->n);
	return x;
}

uint64_t bench_zipf_next(const struct bench_zipf *z, struct bench_rng *r)
{
	return bench_zipf_scramble(z, bench_zipf_rank(z, r));
}

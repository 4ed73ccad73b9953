/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memlane-bench ring: the node ring for 10, 100 and 1000 members of equal
 * weight. Per size: ns per lookup (of a point, and of a key with its
 * MD5), the load spread (the largest share over the mean), and the part
 * of 1,000,000 keys whose owner changes when one member joins or one
 * leaves, next to the ideal (1/(n+1) and 1/n).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "ring.h"

#define LOOKUPS 2000000
#define MOVES	1000000

/* A ring of the members 0..n-1 but skip (UINT32_MAX: none). */
static struct ring *ring_of(unsigned n, unsigned skip)
{
	struct ring_member *m = calloc(n, sizeof(*m));
	struct ring_params p = {.members = m, .nmembers = 0};
	struct ring *r = NULL;

	if (!m)
		return NULL;
	for (unsigned i = 0; i < n; i++) {
		if (i == skip)
			continue;
		snprintf(m[p.nmembers].host, sizeof(m[0].host), "10.0.%u.%u",
			 i / 250, i % 250 + 1);
		m[p.nmembers].port = 11211;
		m[p.nmembers].weight = 1;
		p.nmembers++;
	}
	if (ring_create(&p, &r))
		r = NULL;
	free(m);
	return r;
}

/* The owner's host, which names a member across two rings. */
static const char *owner_host(const struct ring *r, const char *key, size_t len)
{
	return ring_member(r, ring_lookup(r, key, len))->host;
}

static double moved(const struct ring *a, const struct ring *b)
{
	unsigned long n = 0;

	for (unsigned k = 0; k < MOVES; k++) {
		char key[BENCH_KEY_MIN + 8];

		bench_key_format(k, sizeof(key), key);
		n += strcmp(owner_host(a, key, sizeof(key)),
			    owner_host(b, key, sizeof(key))) != 0;
	}
	return (double)n / MOVES;
}

static int run(unsigned n)
{
	struct ring *r = ring_of(n, UINT32_MAX),
		    *joined = ring_of(n + 1, UINT32_MAX),
		    *left = ring_of(n, n / 2);
	uint32_t *pts = malloc(sizeof(*pts) * LOOKUPS);
	struct bench_rng rng;
	unsigned sink = 0;
	double max = 0, ns_point, ns_key;
	uint64_t t0;

	if (!r || !joined || !left || !pts) {
		fprintf(stderr, "memlane-bench ring: out of memory\n");
		return 1;
	}
	bench_rng_seed(&rng, n);
	for (unsigned i = 0; i < LOOKUPS; i++)
		pts[i] = (uint32_t)bench_rng_next(&rng);
	t0 = bench_now_ns();
	for (unsigned i = 0; i < LOOKUPS; i++)
		sink += ring_owner(r, pts[i]);
	ns_point = (double)(bench_now_ns() - t0) / LOOKUPS;
	t0 = bench_now_ns();
	for (unsigned i = 0; i < LOOKUPS / 4; i++) {
		char key[20];

		bench_key_format(pts[i], sizeof(key), key);
		sink += ring_lookup(r, key, sizeof(key));
	}
	ns_key = (double)(bench_now_ns() - t0) / (LOOKUPS / 4);
	for (unsigned i = 0; i < n; i++)
		if (ring_share(r, i) > max)
			max = ring_share(r, i);
	printf("%-7u %7u %12.1f %14.1f %11.3f %9.2f%% %8.2f%% %9.2f%% "
	       "%8.2f%%\n",
	       n, ring_npoints(r), ns_point, ns_key, max * n,
	       100 * moved(r, joined), 100.0 / (n + 1), 100 * moved(r, left),
	       100.0 / n);
	ring_free(r);
	ring_free(joined);
	ring_free(left);
	free(pts);
	return sink == 0xffffffffu; /* keeps the loops */
}

int bench_ring_main(int argc, char **argv)
{
	static const unsigned sizes[] = {10, 100, 1000};

	if (argc > 1) {
		bool help =
			!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h");

		fprintf(help ? stdout : stderr,
			"usage: memlane-bench ring\n\n"
			"The node ring (libmemcached's weighted ketama) for "
			"10, "
			"100 and 1000\nmembers: ns per lookup, load spread, "
			"keys moved on a join and a leave.\n");
		return help ? 0 : 2;
	}
	bench_pin_cpu(-1);
	printf("memlane-bench ring: %u lookups per size, %u keys for the "
	       "moves\n"
	       "members  points  ns/lookup  ns/key+md5  max/mean   join "
	       "moved  ideal  leave moved  ideal\n",
	       LOOKUPS, MOVES);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		if (run(sizes[i]))
			return 1;
	return 0;
}

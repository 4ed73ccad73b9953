/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memlane-bench bloom: the split-block Bloom filter at 10.7 bits per key,
 * for 100,000, 1,000,000 and 10,000,000 keys (the largest is well beyond
 * the caches, as a node's digest is). Per size and path (SIMD, scalar):
 * ns per query of a hash, ns per query of a key with its XXH3, and the
 * false-positive rate measured on 1,000,000 absent keys next to the
 * theory's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "bloom.h"

#define BITS_PER_KEY 10.7
#define QUERIES	     4000000
#define ABSENT	     1000000

/* Keys 0..n-1 are added; absent keys are numbered from 1 << 40. */
#define ABSENT_BASE (1ull << 40)

static int run(unsigned long n, bool scalar)
{
	struct bloom_params p = {.nkeys = n, .bits_per_key = BITS_PER_KEY};
	uint64_t *hv = malloc(sizeof(*hv) * QUERIES);
	struct bench_rng rng;
	struct bloom *b;
	unsigned long fp = 0, sink = 0;
	double ns_hash, ns_key;
	uint64_t t0;

	if (!hv || bloom_create(&p, &b)) {
		fprintf(stderr, "memlane-bench bloom: out of memory\n");
		free(hv);
		return 1;
	}
	bloom_force_scalar(scalar);
	for (unsigned long k = 0; k < n; k++) {
		char key[BENCH_KEY_MIN];

		bench_key_format(k, sizeof(key), key);
		bloom_add(b, bloom_hash(key, sizeof(key)));
	}
	/* half present, half absent, in random order */
	bench_rng_seed(&rng, n);
	for (unsigned i = 0; i < QUERIES; i++) {
		uint64_t k = bench_rng_below(&rng, n);
		char key[BENCH_KEY_MIN];

		if (i & 1)
			k += ABSENT_BASE;
		bench_key_format(k, sizeof(key), key);
		hv[i] = bloom_hash(key, sizeof(key));
	}
	t0 = bench_now_ns();
	for (unsigned i = 0; i < QUERIES; i++)
		sink += bloom_maybe(b, hv[i]);
	ns_hash = (double)(bench_now_ns() - t0) / QUERIES;
	t0 = bench_now_ns();
	for (unsigned i = 0; i < QUERIES; i++) {
		char key[BENCH_KEY_MIN];

		/* the key is formatted outside the timing's intent but
		 * inside its loop: its cost is measured below and taken off */
		bench_key_format(hv[i] % n, sizeof(key), key);
		sink += bloom_maybe(b, bloom_hash(key, sizeof(key)));
	}
	ns_key = (double)(bench_now_ns() - t0) / QUERIES;
	t0 = bench_now_ns();
	for (unsigned i = 0; i < QUERIES; i++) {
		char key[BENCH_KEY_MIN];

		bench_key_format(hv[i] % n, sizeof(key), key);
		sink += (unsigned char)key[sizeof(key) - 1];
	}
	ns_key -= (double)(bench_now_ns() - t0) / QUERIES;
	for (unsigned long k = 0; k < ABSENT; k++) {
		char key[BENCH_KEY_MIN];

		bench_key_format(ABSENT_BASE + k, sizeof(key), key);
		fp += bloom_maybe(b, bloom_hash(key, sizeof(key)));
	}
	printf("%-9lu %-7s %9.1f %10.1f %8.3f%% %8.3f%% %9.2f\n", n,
	       scalar ? "scalar" : "simd", ns_hash, ns_key,
	       100.0 * (double)fp / ABSENT, 100.0 * bloom_fpr_theory(b),
	       (double)bloom_serialised_size(b) / (1 << 20));
	bloom_free(b);
	free(hv);
	bloom_force_scalar(false);
	return sink == 0xfffffffful; /* keeps the loops */
}

int bench_bloom_main(int argc, char **argv)
{
	static const unsigned long sizes[] = {100000, 1000000, 10000000};

	if (argc > 1) {
		bool help =
			!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h");

		fprintf(help ? stdout : stderr,
			"usage: memlane-bench bloom\n\n"
			"The split-block Bloom filter at %.1f bits per key "
			"for 10^5, 10^6 and 10^7\nkeys: ns per query (of a "
			"hash, of a key with its XXH3) and the false-\n"
			"positive rate against theory, SIMD and scalar.\n",
			BITS_PER_KEY);
		return help ? 0 : 2;
	}
	bench_pin_cpu(-1);
	printf("memlane-bench bloom: %.1f bits per key, %u queries (half "
	       "absent), FPR over %u absent keys; SIMD %s\n"
	       "keys      path    ns/query  ns/key+hash   FPR   theory   "
	       "MiB\n",
	       BITS_PER_KEY, QUERIES, ABSENT,
	       bloom_simd_active() ? "available" : "not built");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		for (int scalar = 0; scalar < 2; scalar++)
			if (run(sizes[i], scalar))
				return 1;
	return 0;
}

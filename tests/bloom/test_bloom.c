/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the split-block Bloom filter (bloom/bloom.c), written
 * against the contract in bloom/bloom.h: sizing, no false negatives, the
 * false positive rate against bloom_fpr_theory(), merge, clear, the
 * serialised form and its damage checks, and the AVX2 and scalar paths
 * setting the same bits.
 *
 * Keys are short strings hashed with bloom_hash(), as callers hash them;
 * present and absent keys have different prefixes, so no absent key is
 * ever one that was added.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bloom.h"

#define FPR_KEYS    1000000u
#define FPR_ABSENT  1000000u
#define FPR_BPK	    10.7
#define FPR_TARGET  0.01
#define FPR_REL_TOL 0.15
#define FPR_ABS_TOL 0.0005

/* ------------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------- */

static uint64_t key_hv(const char *prefix, uint64_t i)
{
	char key[48];
	int n = snprintf(key, sizeof(key), "%s:%llu", prefix,
			 (unsigned long long)i);

	return bloom_hash(key, (size_t)n);
}

static uint64_t present(uint64_t i)
{
	return key_hv("present", i);
}

static uint64_t absent(uint64_t i)
{
	return key_hv("absent", i);
}

static struct bloom *make(uint64_t nkeys, double bpk)
{
	struct bloom_params p = {.nkeys = nkeys, .bits_per_key = bpk};
	struct bloom *b = NULL;

	assert_int_equal(bloom_create(&p, &b), 0);
	assert_non_null(b);
	return b;
}

static void add_range(struct bloom *b, uint64_t lo, uint64_t hi)
{
	uint64_t i;

	for (i = lo; i < hi; i++)
		bloom_add(b, present(i));
}

static void assert_all_present(const struct bloom *b, uint64_t lo, uint64_t hi)
{
	uint64_t i;

	for (i = lo; i < hi; i++) {
		if (!bloom_maybe(b, present(i)))
			fail_msg("key %llu added but not found",
				 (unsigned long long)i);
	}
}

/* Absent keys [0, n) that b answers positive. */
static uint64_t false_positives(const struct bloom *b, uint64_t n)
{
	uint64_t i, fp = 0;

	for (i = 0; i < n; i++)
		fp += bloom_maybe(b, absent(i));
	return fp;
}

/* b's serialised form in a buffer of its own, *len bytes. */
static uint8_t *serialise(const struct bloom *b, size_t *len)
{
	size_t size = bloom_serialised_size(b);
	uint8_t *buf = malloc(size);

	assert_non_null(buf);
	assert_int_equal(bloom_serialise(b, buf, size), size);
	*len = size;
	return buf;
}

static bool same_bits(const struct bloom *a, const struct bloom *b)
{
	size_t la, lb;
	uint8_t *sa = serialise(a, &la), *sb = serialise(b, &lb);
	bool same = la == lb && !memcmp(sa, sb, la);

	free(sa);
	free(sb);
	return same;
}

static int restore_simd(void **state)
{
	(void)state;
	bloom_force_scalar(false);
	return 0;
}

/* ------------------------------------------------------------------------
 * Creation and sizing
 * ---------------------------------------------------------------------- */

static void test_sizing(void **state)
{
	static const struct {
		uint64_t nkeys;
		double bpk;
		uint64_t nblocks;
	} t[] = {
		{0, 10.7, 1},		{1, 10.7, 1},	       {256, 1.0, 1},
		{257, 1.0, 2},		{512, 1.0, 2},	       {100, 0.001, 1},
		{1000000, 10.7, 41797}, {1000000, 8.0, 31250},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct bloom *b = make(t[i].nkeys, t[i].bpk);

		assert_int_equal(bloom_nblocks(b), t[i].nblocks);
		assert_int_equal(bloom_count(b), 0);
		assert_int_equal(bloom_serialised_size(b),
				 BLOOM_HEADER_BYTES +
					 t[i].nblocks * BLOOM_BLOCK_BYTES);
		bloom_free(b);
	}
}

static void test_create_invalid(void **state)
{
	static const struct bloom_params bad[] = {
		{1000, 0.0},
		{1000, -1.0},
		{1000, NAN},
		{1000, INFINITY},
		{UINT64_MAX, 10.7},
		/* One block more than the block index can reach. */
		{(BLOOM_NBLOCKS_MAX + 1) * 256, 1.0},
	};
	struct bloom_params ok = {1000, 10.7};
	struct bloom *b;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		b = NULL;
		assert_int_equal(bloom_create(&bad[i], &b), -EINVAL);
		assert_null(b);
	}
	assert_int_equal(bloom_create(NULL, &b), -EINVAL);
	assert_int_equal(bloom_create(&ok, NULL), -EINVAL);
	bloom_free(NULL);
}

static void test_hash_is_xxh3(void **state)
{
	(void)state;
	/* XXH3_64bits("") and XXH3_64bits("a"), from xxHash's own tests:
	 * a filter's hv is the key hash the rest of memlane computes. */
	assert_int_equal(bloom_hash("", 0), 0x2d06800538d394c2ull);
	assert_int_equal(bloom_hash("a", 1), 0xe6c632b61e964e1full);
}

/* ------------------------------------------------------------------------
 * Membership and the false positive rate
 * ---------------------------------------------------------------------- */

static void no_false_negatives(void)
{
	struct bloom *b = make(100000, FPR_BPK);

	add_range(b, 0, 100000);
	assert_int_equal(bloom_count(b), 100000);
	assert_all_present(b, 0, 100000);
	bloom_free(b);
}

static void test_no_false_negatives(void **state)
{
	(void)state;
	no_false_negatives();
	bloom_force_scalar(true);
	no_false_negatives();
}

static void test_empty_answers_no(void **state)
{
	struct bloom *b = make(1000, FPR_BPK);

	(void)state;
	assert_int_equal(false_positives(b, 10000), 0);
	assert_false(bloom_maybe(b, 0));
	assert_false(bloom_maybe(b, UINT64_MAX));
	assert_true(bloom_fpr_theory(b) == 0.0);
	bloom_free(b);
}

/* Measured over FPR_ABSENT absent keys after adding nkeys at bpk. */
static double measured_fpr(struct bloom *b, uint64_t nkeys)
{
	add_range(b, 0, nkeys);
	return (double)false_positives(b, FPR_ABSENT) / FPR_ABSENT;
}

static void assert_near_theory(double measured, double theory)
{
	double tol = FPR_REL_TOL * theory + FPR_ABS_TOL;

	if (fabs(measured - theory) >= tol)
		fail_msg("measured FPR %.5f, theory %.5f (tolerance %.5f)",
			 measured, theory, tol);
}

static void test_fpr_target(void **state)
{
	int scalar;

	(void)state;
	for (scalar = 0; scalar < 2; scalar++) {
		struct bloom *b = make(FPR_KEYS, FPR_BPK);
		double m, t;

		bloom_force_scalar(scalar);
		m = measured_fpr(b, FPR_KEYS);
		t = bloom_fpr_theory(b);
		print_message("fpr at %.1f bits/key (%s): measured %.5f, "
			      "theory %.5f\n",
			      FPR_BPK, bloom_simd_active() ? "avx2" : "scalar",
			      m, t);
		assert_near_theory(m, t);
		assert_true(m <= FPR_TARGET);
		assert_true(t <= FPR_TARGET);
		bloom_free(b);
	}
}

/* The theory follows the measurement over loads, not only at one. */
static void test_fpr_tracks_load(void **state)
{
	static const double bpk[] = {4.0, 8.0, 16.0};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bpk) / sizeof(bpk[0]); i++) {
		struct bloom *b = make(200000, bpk[i]);
		double m = measured_fpr(b, 200000), t = bloom_fpr_theory(b);

		print_message("fpr at %.1f bits/key: measured %.5f, "
			      "theory %.5f\n",
			      bpk[i], m, t);
		assert_near_theory(m, t);
		bloom_free(b);
	}
}

/*
 * The theory against figures computed apart from the code (the Poisson
 * sum written out in a few lines of Python): a wrong formula cannot pass
 * by matching a wrong filter.
 */
static void test_fpr_theory_values(void **state)
{
	/* 1M keys in ceil(1M * bpk / 256) blocks. */
	static const struct {
		double bpk, fpr;
	} t[] = {
		{10.7, 0.009285609},
		{8.0, 0.033211864},
		{16.0, 0.001315573},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct bloom *b = make(1000000, t[i].bpk);
		double fpr;

		add_range(b, 0, 1000000);
		fpr = bloom_fpr_theory(b);
		if (fabs(fpr - t[i].fpr) > 1e-6 * t[i].fpr)
			fail_msg("theory at %.1f bits/key: %.9f, want %.9f",
				 t[i].bpk, fpr, t[i].fpr);
		bloom_free(b);
	}
}

static void test_fpr_theory_extremes(void **state)
{
	struct bloom *b = make(0, 1.0);
	double prev = 0.0, fpr;
	uint64_t i;

	(void)state;
	/* One block: rises with every key, towards 1, never above. */
	for (i = 0; i < 20000; i++) {
		bloom_add(b, i * 0x9e3779b97f4a7c15ull);
		fpr = bloom_fpr_theory(b);
		if (i < 1000)
			assert_true(fpr > prev);
		assert_true(fpr >= prev - 1e-12 && fpr <= 1.0);
		prev = fpr;
	}
	assert_true(prev > 0.999999);
	bloom_free(b);
}

/* ------------------------------------------------------------------------
 * Merge and clear
 * ---------------------------------------------------------------------- */

static void test_merge_union(void **state)
{
	struct bloom *a = make(20000, FPR_BPK), *b = make(20000, FPR_BPK);
	struct bloom *c = make(20000, FPR_BPK);

	(void)state;
	add_range(a, 0, 10000);
	add_range(b, 10000, 20000);
	add_range(c, 0, 20000);
	assert_int_equal(bloom_merge(a, b), 0);
	assert_int_equal(bloom_count(a), 20000);
	assert_int_equal(bloom_count(b), 10000);
	assert_all_present(a, 0, 20000);
	/* The union of the two halves is the filter of all the keys. */
	assert_true(same_bits(a, c));
	bloom_free(a);
	bloom_free(b);
	bloom_free(c);
}

static void test_merge_size_mismatch(void **state)
{
	struct bloom *a = make(20000, FPR_BPK), *b = make(40000, FPR_BPK);
	struct bloom *copy = make(20000, FPR_BPK);

	(void)state;
	add_range(a, 0, 100);
	add_range(copy, 0, 100);
	add_range(b, 1000, 2000);
	assert_int_equal(bloom_merge(a, b), -EINVAL);
	assert_int_equal(bloom_merge(b, a), -EINVAL);
	assert_int_equal(bloom_count(a), 100);
	assert_true(same_bits(a, copy));
	bloom_free(a);
	bloom_free(b);
	bloom_free(copy);
}

static void test_clear(void **state)
{
	struct bloom *b = make(10000, FPR_BPK), *empty = make(10000, FPR_BPK);

	(void)state;
	add_range(b, 0, 10000);
	bloom_clear(b);
	assert_int_equal(bloom_count(b), 0);
	assert_int_equal(bloom_nblocks(b), bloom_nblocks(empty));
	assert_true(same_bits(b, empty));
	assert_false(bloom_maybe(b, present(0)));
	assert_true(bloom_fpr_theory(b) == 0.0);
	/* Usable again. */
	add_range(b, 0, 100);
	assert_all_present(b, 0, 100);
	bloom_free(b);
	bloom_free(empty);
}

static void test_tiny(void **state)
{
	struct bloom *b = make(0, FPR_BPK), *r = NULL;
	uint8_t *buf;
	size_t len;

	(void)state;
	assert_int_equal(bloom_nblocks(b), 1);
	assert_false(bloom_maybe(b, present(0)));
	add_range(b, 0, 10);
	assert_all_present(b, 0, 10);
	assert_true(bloom_fpr_theory(b) > 0.0);
	buf = serialise(b, &len);
	assert_int_equal(len, BLOOM_HEADER_BYTES + BLOOM_BLOCK_BYTES);
	assert_int_equal(bloom_deserialise(buf, len, &r), 0);
	assert_all_present(r, 0, 10);
	free(buf);
	bloom_free(b);
	bloom_free(r);
}

/* ------------------------------------------------------------------------
 * The serialised form
 * ---------------------------------------------------------------------- */

static void test_serialise_roundtrip(void **state)
{
	struct bloom *b = make(50000, FPR_BPK), *r = NULL;
	uint8_t *buf, *again;
	size_t len, len2;
	uint64_t i;

	(void)state;
	add_range(b, 0, 50000);
	buf = serialise(b, &len);
	assert_memory_equal(buf, BLOOM_MAGIC, 4);
	assert_int_equal(buf[4] | buf[5] << 8, BLOOM_VERSION);
	assert_int_equal(bloom_deserialise(buf, len, &r), 0);
	assert_int_equal(bloom_nblocks(r), bloom_nblocks(b));
	assert_int_equal(bloom_count(r), 50000);
	assert_true(bloom_fpr_theory(r) == bloom_fpr_theory(b));
	for (i = 0; i < 200000; i++) {
		assert_true(bloom_maybe(r, present(i)) ==
			    bloom_maybe(b, present(i)));
		assert_true(bloom_maybe(r, absent(i)) ==
			    bloom_maybe(b, absent(i)));
	}
	again = serialise(r, &len2);
	assert_int_equal(len2, len);
	assert_memory_equal(again, buf, len);
	free(again);
	free(buf);
	bloom_free(b);
	bloom_free(r);
}

static void test_serialise_cap(void **state)
{
	struct bloom *b = make(1000, FPR_BPK);
	size_t size = bloom_serialised_size(b);
	uint8_t *buf = calloc(1, size + 1);

	(void)state;
	assert_non_null(buf);
	assert_int_equal(bloom_serialise(b, buf, size - 1), 0);
	assert_int_equal(bloom_serialise(b, buf, 0), 0);
	/* Nothing written when it does not fit. */
	assert_int_equal(buf[0], 0);
	assert_int_equal(bloom_serialise(b, buf, size + 1), size);
	free(buf);
	bloom_free(b);
}

/* Expects bloom_deserialise(buf, len) to fail with rc and leave *out. */
static void assert_refused(const uint8_t *buf, size_t len, int rc)
{
	struct bloom *sentinel = (struct bloom *)&sentinel, *r = sentinel;

	assert_int_equal(bloom_deserialise(buf, len, &r), rc);
	assert_ptr_equal(r, sentinel);
}

static void test_deserialise_damage(void **state)
{
	struct bloom *b = make(5000, FPR_BPK), *r = NULL;
	uint8_t *buf, *big;
	size_t len, off;

	(void)state;
	add_range(b, 0, 5000);
	buf = serialise(b, &len);

	/* Any one byte changed, header or blocks, is refused. */
	for (off = 0; off < len; off += (off < 64 ? 1 : 997)) {
		buf[off] ^= 0x10;
		r = NULL;
		if (bloom_deserialise(buf, len, &r) == 0)
			fail_msg("byte %zu changed but accepted", off);
		buf[off] ^= 0x10;
	}
	buf[len - 1] ^= 1;
	assert_refused(buf, len, -EBADMSG);
	buf[len - 1] ^= 1;

	/* Bad magic. */
	buf[0] = 'X';
	assert_refused(buf, len, -EBADMSG);
	buf[0] = 'M';

	/* A version this code does not know, whatever the checksum says. */
	buf[4] = 2;
	assert_refused(buf, len, -EPROTO);
	buf[4] = 1;
	buf[5] = 1;
	assert_refused(buf, len, -EPROTO);
	buf[5] = 0;

	/* Reserved bits set. */
	buf[7] = 1;
	assert_refused(buf, len, -EBADMSG);
	buf[7] = 0;

	/* Short or long by a byte, a block, or all but the header. */
	assert_refused(buf, len - 1, -EBADMSG);
	assert_refused(buf, len - BLOOM_BLOCK_BYTES, -EBADMSG);
	assert_refused(buf, BLOOM_HEADER_BYTES, -EBADMSG);
	assert_refused(buf, BLOOM_HEADER_BYTES - 1, -EBADMSG);
	assert_refused(buf, 0, -EBADMSG);
	big = calloc(1, len + 1);
	assert_non_null(big);
	memcpy(big, buf, len);
	assert_refused(big, len + 1, -EBADMSG);
	free(big);

	/* nblocks 0 and out of range, with the length to match. */
	memset(buf + 8, 0, 8);
	assert_refused(buf, BLOOM_HEADER_BYTES, -EBADMSG);
	memset(buf + 8, 0xff, 8);
	assert_refused(buf, len, -EBADMSG);

	assert_int_equal(bloom_deserialise(NULL, len, &r), -EINVAL);
	free(buf);
	bloom_free(b);
}

/* The block layout bloom.h promises: one key sets one bit in each of the
 * eight words of the block (hi32 * nblocks) >> 32, and nothing else. */
static void test_layout(void **state)
{
	static const uint64_t hvs[] = {
		0,
		UINT64_MAX,
		0x00000000ffffffffull,
		0xffffffff00000000ull,
		0x8000000012345678ull,
		0x123456789abcdef0ull,
	};
	int scalar;
	size_t i;

	(void)state;
	for (scalar = 0; scalar < 2; scalar++) {
		bloom_force_scalar(scalar);
		for (i = 0; i < sizeof(hvs) / sizeof(hvs[0]); i++) {
			struct bloom *b = make(1000, 10.0); /* 40 blocks */
			uint64_t nb = bloom_nblocks(b);
			uint64_t want = ((hvs[i] >> 32) * nb) >> 32, blk;
			uint8_t *buf;
			size_t len;
			unsigned w;

			bloom_add(b, hvs[i]);
			buf = serialise(b, &len);
			for (blk = 0; blk < nb; blk++) {
				const uint8_t *q = buf + BLOOM_HEADER_BYTES +
						   blk * BLOOM_BLOCK_BYTES;

				for (w = 0; w < 8; w++) {
					uint32_t v =
						q[4 * w] | q[4 * w + 1] << 8 |
						q[4 * w + 2] << 16 |
						(uint32_t)q[4 * w + 3] << 24;

					assert_int_equal(__builtin_popcount(v),
							 blk == want ? 1 : 0);
				}
			}
			assert_true(bloom_maybe(b, hvs[i]));
			free(buf);
			bloom_free(b);
		}
	}
}

/*
 * The serialised bytes of a fixed filter, pinned: nodes running different
 * builds exchange digests, so the salts, the block choice and the layout
 * may not change without a new version. The figure is XXH3-64 of the
 * whole serialised form, taken from this code when the format was set.
 */
#define GOLDEN_DIGEST 0x7b3cadaa04215222ull

static void test_golden(void **state)
{
	int scalar;

	(void)state;
	for (scalar = 0; scalar < 2; scalar++) {
		struct bloom *b = make(1000, 10.0);
		uint8_t *buf;
		size_t len;
		uint64_t d;

		bloom_force_scalar(scalar);
		add_range(b, 0, 1000);
		buf = serialise(b, &len);
		d = bloom_hash(buf, len);
		if (d != GOLDEN_DIGEST)
			fail_msg("serialised form changed: digest %016llx",
				 (unsigned long long)d);
		free(buf);
		bloom_free(b);
	}
}

/* ------------------------------------------------------------------------
 * AVX2 and scalar paths
 * ---------------------------------------------------------------------- */

static void test_paths_agree(void **state)
{
	struct bloom *simd = make(100000, FPR_BPK);
	struct bloom *scalar = make(100000, FPR_BPK);
	uint64_t i, hv, x = 0x243f6a8885a308d3ull;

	(void)state;
	bloom_force_scalar(false);
	if (!bloom_simd_active()) {
		bloom_free(simd);
		bloom_free(scalar);
		print_message("no AVX2 on this CPU\n");
		skip();
	}
	bloom_force_scalar(true);
	assert_false(bloom_simd_active());
	bloom_force_scalar(false);

	/* The same keys, added by each path, set the same bits. */
	for (i = 0; i < 100000; i++) {
		bloom_force_scalar(false);
		bloom_add(simd, present(i));
		bloom_force_scalar(true);
		bloom_add(scalar, present(i));
	}
	assert_true(same_bits(simd, scalar));

	/* And both paths give the same answer for any hash, present or not,
	 * on the same filter. */
	for (i = 0; i < 1000000; i++) {
		bool a, b;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		hv = i < 100000 ? present(i) : x;
		bloom_force_scalar(false);
		a = bloom_maybe(simd, hv);
		bloom_force_scalar(true);
		b = bloom_maybe(simd, hv);
		if (a != b)
			fail_msg(
				"paths differ on hv %016llx: avx2 %d scalar %d",
				(unsigned long long)hv, a, b);
	}
	bloom_free(simd);
	bloom_free(scalar);
}

#define T(f) cmocka_unit_test_teardown(f, restore_simd)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_sizing),
		T(test_create_invalid),
		T(test_hash_is_xxh3),
		T(test_no_false_negatives),
		T(test_empty_answers_no),
		T(test_fpr_target),
		T(test_fpr_tracks_load),
		T(test_fpr_theory_values),
		T(test_fpr_theory_extremes),
		T(test_merge_union),
		T(test_merge_size_mismatch),
		T(test_clear),
		T(test_tiny),
		T(test_serialise_roundtrip),
		T(test_serialise_cap),
		T(test_deserialise_damage),
		T(test_layout),
		T(test_golden),
		T(test_paths_agree),
	};

	return cmocka_run_group_tests_name("bloom", tests, NULL, NULL);
}

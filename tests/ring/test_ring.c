/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The node ring against libmemcached itself: for 3, 25 and 61 servers,
 * on port 11211 and others, with equal and unequal weights, 100,000 keys
 * must map to the same server as memcached_generate_hash() says, with
 * weighted ketama. libmemcached needs no connection for that: the
 * servers' names are hashed, never resolved.
 *
 * Then what the ring says of itself: points per member, shares and
 * ranges that agree with lookups, the wrap past the highest point, weight
 * 0, bad parameters, a core split that does not correlate with the
 * node ring, and the set operations on ranges, point by point.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libmemcached/memcached.h>

#include "common.h"
#include "ring.h"

#define KEYS 100000

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* n members named by style: 0 IPv4 on 11211, 1 IPv4 on other ports,
 * 2 host names on mixed ports; weights equal or not. */
static void members(struct ring_member *m, unsigned n, int style, bool weighted)
{
	for (unsigned i = 0; i < n; i++) {
		memset(&m[i], 0, sizeof(m[i]));
		if (style == 2)
			snprintf(m[i].host, sizeof(m[i].host),
				 "cache-%u.example.net", i);
		else
			snprintf(m[i].host, sizeof(m[i].host), "10.%u.%u.%u",
				 i / 200, (i * 7) % 250, i % 250 + 1);
		m[i].port = style == 0	 ? 11211
			    : style == 1 ? (uint16_t)(20000 + i)
			    : (i % 2)	 ? 11211
					 : (uint16_t)(11212 + i);
		m[i].weight = weighted ? 1 + (i * 37) % 9 : 1;
	}
}

static memcached_st *oracle(const struct ring_member *m, unsigned n)
{
	memcached_st *mc = memcached_create(NULL);

	assert_non_null(mc);
	assert_int_equal(memcached_behavior_set(
				 mc, MEMCACHED_BEHAVIOR_DISTRIBUTION,
				 MEMCACHED_DISTRIBUTION_CONSISTENT_KETAMA),
			 MEMCACHED_SUCCESS);
	assert_int_equal(memcached_behavior_set(
				 mc, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1),
			 MEMCACHED_SUCCESS);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(memcached_server_add_with_weight(
					 mc, m[i].host, m[i].port, m[i].weight),
				 MEMCACHED_SUCCESS);
	return mc;
}

static struct ring *build(const struct ring_member *m, unsigned n)
{
	struct ring_params p = {.members = m, .nmembers = n, .epoch = 7};
	struct ring *r = NULL;

	assert_int_equal(ring_create(&p, &r), 0);
	return r;
}

static void against_libmemcached(unsigned n, int style, bool weighted)
{
	struct ring_member m[64];
	memcached_st *mc;
	struct ring *r;
	unsigned differ = 0;

	members(m, n, style, weighted);
	mc = oracle(m, n);
	r = build(m, n);
	for (unsigned k = 0; k < KEYS; k++) {
		char key[48];
		int len = snprintf(key, sizeof(key), "key:%u:%llx", k,
				   (unsigned long long)(rnd() & 0xffffff));
		uint32_t want = memcached_generate_hash(mc, key, (size_t)len);

		if (ring_lookup(r, key, (size_t)len) != want && differ++ < 5)
			print_error("%u servers style %d: key %s: ring %u, "
				    "libmemcached %u\n",
				    n, style, key,
				    ring_lookup(r, key, (size_t)len), want);
	}
	assert_int_equal(differ, 0);
	ring_free(r);
	memcached_free(mc);
}

static void oracle_3(void **state)
{
	(void)state;
	for (int style = 0; style < 3; style++) {
		against_libmemcached(3, style, false);
		against_libmemcached(3, style, true);
	}
}

static void oracle_25(void **state)
{
	(void)state;
	for (int style = 0; style < 3; style++) {
		against_libmemcached(25, style, false);
		against_libmemcached(25, style, true);
	}
}

static void oracle_61(void **state)
{
	(void)state;
	for (int style = 0; style < 3; style++) {
		against_libmemcached(61, style, false);
		against_libmemcached(61, style, true);
	}
}

/* Equal weights: 160 points each, but for the member counts whose
 * float32 product falls just below 40 (156 points). */
static void points_per_member(void **state)
{
	struct ring_member m[64];
	unsigned short156 = 0;

	(void)state;
	for (unsigned n = 1; n <= 64; n++) {
		struct ring *r;
		float pct = 1.0f / (float)n;
		unsigned want =
			(unsigned)floorf((float)(pct * 160 / 4 * (float)n +
						 0.0000000001)) *
			4;

		members(m, n, 0, false);
		r = build(m, n);
		for (unsigned i = 0; i < n; i++)
			assert_int_equal(ring_member_npoints(r, i), want);
		assert_int_equal(ring_npoints(r), want * n);
		assert_true(want == 160 || want == 156);
		short156 += want == 156;
		ring_free(r);
	}
	assert_true(short156 > 0); /* the float32 rounding is kept */
}

static void shares_and_ranges(void **state)
{
	struct ring_member m[25];
	static struct ring_range rs[25][2000];
	unsigned nr[25];
	double total = 0;
	struct ring *r;

	(void)state;
	members(m, 25, 1, true);
	r = build(m, 25);
	assert_int_equal(ring_nmembers(r), 25);
	assert_int_equal(ring_epoch(r), 7);
	assert_string_equal(ring_member(r, 3)->host, m[3].host);
	assert_null(ring_member(r, 25));
	for (unsigned i = 0; i < 25; i++) {
		uint64_t covered = 0;

		nr[i] = ring_ranges(r, i, rs[i], 2000);
		assert_true(nr[i] > 0 && nr[i] <= 2000);
		for (unsigned j = 0; j < nr[i]; j++) {
			assert_true(rs[i][j].lo <= rs[i][j].hi);
			if (j)
				assert_true(rs[i][j].lo >
					    (uint64_t)rs[i][j - 1].hi + 1);
			covered += (uint64_t)rs[i][j].hi - rs[i][j].lo + 1;
		}
		assert_true(fabs((double)covered / 4294967296.0 -
				 ring_share(r, i)) < 1e-9);
		total += ring_share(r, i);
	}
	assert_true(fabs(total - 1.0) < 1e-9);
	/* heavier members own more */
	assert_true(ring_share(r, 4) > ring_share(r, 0)); /* weight 6 vs 1 */
	/* the ranges agree with lookups, at random points and at edges */
	for (unsigned k = 0; k < 200000; k++) {
		uint32_t pt = (uint32_t)rnd();
		unsigned o;

		if (k < 50) {
			unsigned i = k % 25, j = (k / 25) % nr[i];

			pt = k & 1 ? rs[i][j].lo : rs[i][j].hi;
		}
		o = ring_owner(r, pt);
		for (unsigned i = 0; i < 25; i++)
			assert_int_equal(ring_range_has(rs[i], nr[i], pt),
					 i == o);
	}
	/* asking for fewer ranges writes fewer and says how many there are */
	assert_int_equal(ring_ranges(r, 0, rs[0], 1), nr[0]);
	ring_free(r);
}

/* A point above the highest ring point belongs to the lowest point's
 * member; 0 and UINT32_MAX are points like any other. */
static void wrap_around(void **state)
{
	struct ring_member m[3];
	struct ring_range rs[600];
	struct ring *r;
	unsigned first, n, wrapped = 0;

	(void)state;
	members(m, 3, 0, false);
	r = build(m, 3);
	first = ring_owner(r, 0);
	assert_int_equal(ring_owner(r, UINT32_MAX), first);
	for (unsigned i = 0; i < 3; i++) {
		n = ring_ranges(r, i, rs, 600);
		assert_true(n > 0);
		/* only the lowest point's member holds either end */
		assert_int_equal(rs[0].lo == 0, i == first);
		assert_int_equal(rs[n - 1].hi == UINT32_MAX, i == first);
		if (i == first && rs[n - 1].lo > 0) {
			/* just past the highest point */
			assert_int_equal(ring_owner(r, rs[n - 1].lo), first);
			wrapped++;
		}
	}
	assert_int_equal(wrapped, 1);
	ring_free(r);
}

static void weight_zero_and_errors(void **state)
{
	struct ring_member m[4];
	struct ring_params p = {.members = m, .nmembers = 4};
	struct ring *r = NULL;

	(void)state;
	members(m, 4, 0, false);
	m[2].weight = 0;
	assert_int_equal(ring_create(&p, &r), 0);
	assert_int_equal(ring_member_npoints(r, 2), 0);
	assert_true(ring_share(r, 2) == 0);
	assert_int_equal(ring_ranges(r, 2, NULL, 0), 0);
	for (unsigned k = 0; k < 20000; k++)
		assert_int_not_equal(ring_owner(r, (uint32_t)rnd()), 2);
	/* a member of weight 0 is as if the list left it out: keys go
	 * where libmemcached sends them with the three others only */
	{
		struct ring_member rest[3] = {m[0], m[1], m[3]};
		static const unsigned back[3] = {0, 1, 3};
		memcached_st *mc = oracle(rest, 3);

		assert_int_equal(ring_member_npoints(r, 0), 160);
		for (unsigned k = 0; k < 20000; k++) {
			char key[32];
			int len = snprintf(key, sizeof(key), "zero:%u", k);

			assert_int_equal(ring_lookup(r, key, (size_t)len),
					 back[memcached_generate_hash(
						 mc, key, (size_t)len)]);
		}
		memcached_free(mc);
	}
	ring_free(r);

	for (unsigned i = 0; i < 4; i++)
		m[i].weight = 0;
	assert_int_equal(ring_create(&p, &r), -EINVAL);
	members(m, 4, 0, false);
	m[1].host[0] = 0;
	assert_int_equal(ring_create(&p, &r), -EINVAL);
	members(m, 4, 0, false);
	memset(m[3].host, 'a', sizeof(m[3].host));
	assert_int_equal(ring_create(&p, &r), -EINVAL);
	p.nmembers = 0;
	assert_int_equal(ring_create(&p, &r), -EINVAL);
	ring_free(NULL);
}

/* The key point is libmemcached's MD5 hash of the key. */
static void key_point_is_md5(void **state)
{
	memcached_st *mc = memcached_create(NULL);

	(void)state;
	memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1);
	for (unsigned k = 0; k < 1000; k++) {
		char key[32];
		int len = snprintf(key, sizeof(key), "k%u", k);

		assert_int_equal(ring_key_point(key, (size_t)len),
				 memcached_generate_hash_value(
					 key, (size_t)len, MEMCACHED_HASH_MD5));
	}
	/* MD5("") = d41d8cd9...: little-endian first word */
	assert_int_equal(ring_key_point("", 0), 0xd98c1dd4u);
	memcached_free(mc);
}

/*
 * The keys one node owns spread evenly over its cores: per node and
 * core count, a chi-square test of the core counts against uniform, and
 * the split is the cache's own (ml_hash_core).
 */
static void cores_independent_of_nodes(void **state)
{
	struct ring_member m[5];
	struct ring *r;
	unsigned cnt[5][8] = {{0}};
	const unsigned ncores = 8, nkeys = 200000;

	(void)state;
	members(m, 5, 1, false);
	r = build(m, 5);
	for (unsigned k = 0; k < nkeys; k++) {
		char key[128];
		int len = snprintf(key, sizeof(key), "user:%u", k);
		uint64_t hv = ml_hash(key, (size_t)len);

		assert_int_equal(ring_core(hv, ncores),
				 ml_hash_core(hv, ncores));
		cnt[ring_lookup(r, key, (size_t)len)][ring_core(hv, ncores)]++;
	}
	for (unsigned n = 0; n < 5; n++) {
		double sum = 0, chi = 0, e;

		for (unsigned c = 0; c < ncores; c++)
			sum += cnt[n][c];
		e = sum / ncores;
		assert_true(sum > nkeys / 10);
		for (unsigned c = 0; c < ncores; c++)
			chi += (cnt[n][c] - e) * (cnt[n][c] - e) / e;
		/* 7 degrees of freedom: p = 0.001 at 24.3 */
		if (chi >= 24.3)
			print_error("node %u: chi-square %.1f\n", n, chi);
		assert_true(chi < 24.3);
	}
	ring_free(r);
}

/* Random ascending, disjoint ranges in a space of 256 points, some at
 * its edges, some touching. */
static unsigned random_set(struct ring_range *out, bool *in)
{
	unsigned n = 0;

	memset(in, 0, 256);
	for (uint32_t p = 0; p < 256;) {
		uint32_t len = 1 + (uint32_t)(rnd() % 12);

		if (rnd() % 2) {
			uint32_t hi = p + len - 1 > 255 ? 255 : p + len - 1;

			/* a range that touches the one before is one range */
			if (n && out[n - 1].hi + 1 == p)
				out[n - 1].hi = hi;
			else
				out[n++] = (struct ring_range){p, hi};
			for (uint32_t q = p; q <= hi; q++)
				in[q] = true;
		}
		p += len;
	}
	return n;
}

static void check_set(const struct ring_range *rs, unsigned n, const bool *want)
{
	for (unsigned i = 0; i < n; i++) {
		assert_true(rs[i].lo <= rs[i].hi);
		if (i)
			assert_true(rs[i - 1].hi < rs[i].lo);
	}
	for (uint32_t p = 0; p < 256; p++)
		assert_int_equal(ring_range_has(rs, n, p), want[p]);
	assert_false(ring_range_has(rs, n, 256));
}

static void range_set_operations(void **state)
{
	(void)state;
	for (int round = 0; round < 2000; round++) {
		struct ring_range a[256], b[256], out[512];
		bool ia[256], ib[256], want[256];
		unsigned na = random_set(a, ia), nb = random_set(b, ib), n;

		n = ring_ranges_union(a, na, b, nb, out);
		for (int p = 0; p < 256; p++)
			want[p] = ia[p] || ib[p];
		check_set(out, n, want);
		/* touching ranges are merged: no two in a row touch */
		for (unsigned i = 1; i < n; i++)
			assert_true(out[i - 1].hi + 1 < out[i].lo);
		n = ring_ranges_minus(a, na, b, nb, out);
		assert_true(n <= na + nb);
		for (int p = 0; p < 256; p++)
			want[p] = ia[p] && !ib[p];
		check_set(out, n, want);
		n = ring_ranges_intersect(a, na, b, nb, out);
		assert_true(n <= na + nb);
		for (int p = 0; p < 256; p++)
			want[p] = ia[p] && ib[p];
		check_set(out, n, want);
	}
	/* the whole ring, and its top point */
	{
		struct ring_range all = {0, UINT32_MAX},
				  top = {UINT32_MAX, UINT32_MAX};
		struct ring_range out[2];

		assert_int_equal(ring_ranges_minus(&all, 1, &top, 1, out), 1);
		assert_int_equal(out[0].hi, UINT32_MAX - 1);
		assert_int_equal(ring_ranges_minus(&top, 1, &all, 1, out), 0);
		assert_int_equal(ring_ranges_intersect(&all, 1, &top, 1, out),
				 1);
		assert_int_equal(out[0].lo, UINT32_MAX);
		assert_int_equal(ring_ranges_union(&all, 1, &top, 1, out), 1);
		assert_int_equal(out[0].hi, UINT32_MAX);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(oracle_3),
		cmocka_unit_test(oracle_25),
		cmocka_unit_test(oracle_61),
		cmocka_unit_test(points_per_member),
		cmocka_unit_test(shares_and_ranges),
		cmocka_unit_test(wrap_around),
		cmocka_unit_test(weight_zero_and_errors),
		cmocka_unit_test(key_point_is_md5),
		cmocka_unit_test(cores_independent_of_nodes),
		cmocka_unit_test(range_set_operations),
	};

	return cmocka_run_group_tests_name("ring", tests, NULL, NULL);
}

/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the walk over a shard (cache/store_walk.c), against the
 * contract in cache/cache.h: every live item is handed over, nothing
 * expired, deleted or evicted is, the index may grow during the walk, and
 * a step does no more than its budget. And the gate: what it drops is a
 * miss for every command, what was written after its mark stays, and a
 * reap takes the rest away.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cache.h"
#include "common.h"

#define MIB (1024u * 1024u)
#define T0  1700000000u

/* Keys are "w:<n>"; the walk's callback counts the visits of each n. */
#define NKEYS 30000

struct seen {
	unsigned visits[NKEYS * 2];
	unsigned calls;
	bool bad; /* a key that is not ours, or a wrong value or flags */
};

static void count(void *arg, const struct cache_item *it)
{
	struct seen *sn = arg;
	char key[32], val[32];
	unsigned long n;
	char *end;

	sn->calls++;
	if (it->klen < 3 || it->klen >= sizeof(key)) {
		sn->bad = true;
		return;
	}
	memcpy(key, it->key, it->klen);
	key[it->klen] = 0;
	n = strtoul(key + 2, &end, 10);
	if (strncmp(key, "w:", 2) || *end || n >= NKEYS * 2) {
		sn->bad = true;
		return;
	}
	snprintf(val, sizeof(val), "v%lu", n);
	if (it->vlen != strlen(val) || memcmp(it->value, val, it->vlen) ||
	    it->flags != (uint32_t)n)
		sn->bad = true;
	sn->visits[n]++;
}

static struct cache_shard *open_shard(size_t mem, bool no_evict)
{
	struct cache_params p = {
		.mem_limit = mem,
		.segment_size = 64 * 1024,
		.item_size_max = 16 * 1024,
		.now = T0,
		.no_evict = no_evict,
	};
	struct cache_shard *s = cache_create(&p);

	assert_non_null(s);
	return s;
}

static int put(struct cache_shard *s, unsigned n, uint32_t exptime)
{
	char key[32], val[32];
	struct cache_store r = {.mode = CACHE_SET};

	snprintf(key, sizeof(key), "w:%u", n);
	snprintf(val, sizeof(val), "v%u", n);
	r.key = key;
	r.klen = (uint32_t)strlen(key);
	r.hv = ml_hash(key, r.klen);
	r.value = val;
	r.vlen = (uint32_t)strlen(val);
	r.flags = n;
	r.exptime = exptime;
	return cache_store(s, &r, NULL);
}

static int del(struct cache_shard *s, unsigned n)
{
	char key[32];
	uint32_t klen;

	snprintf(key, sizeof(key), "w:%u", n);
	klen = (uint32_t)strlen(key);
	return cache_delete(s, ml_hash(key, klen), key, klen, 0);
}

/* Walks to the end with the given budget; returns the steps taken. */
static unsigned walk_all(struct cache_shard *s, struct cache_walk *w,
			 unsigned budget, struct seen *sn)
{
	unsigned steps = 0;

	while (!cache_walk_step(s, w, budget, count, sn)) {
		steps++;
		assert_true(steps < 10000000);
	}
	return steps + 1;
}

/* An empty shard: the walk ends at once and calls nothing. */
static void test_walk_empty(void **state)
{
	struct cache_shard *s = open_shard(8 * MIB, false);
	struct cache_walk w = {0};
	struct seen *sn = calloc(1, sizeof(*sn));

	(void)state;
	assert_non_null(sn);
	walk_all(s, &w, 1 << 20, sn);
	assert_true(w.done);
	assert_int_equal(sn->calls, 0);
	assert_int_equal(w.visited, 0);
	/* a finished walk stays finished */
	assert_true(cache_walk_step(s, &w, 100, count, sn));
	assert_int_equal(sn->calls, 0);
	cache_free(s);
	free(sn);
}

/* Every live item once; expired and deleted ones never; the budget
 * bounds each step and budget 0 does nothing. */
static void test_walk_every_item(void **state)
{
	struct cache_shard *s = open_shard(64 * MIB, true);
	struct cache_walk w = {0};
	struct seen *sn = calloc(1, sizeof(*sn));
	struct cache_stats st;
	unsigned steps, live = 0;

	(void)state;
	assert_non_null(sn);
	for (unsigned n = 0; n < NKEYS; n++)
		assert_int_equal(put(s, n, n % 5 == 1 ? T0 + 10 : 0), 0);
	for (unsigned n = 0; n < NKEYS; n += 7)
		assert_int_equal(del(s, n), 0);
	cache_set_time(s, T0 + 10);
	cache_get_stats(s, &st);

	assert_false(cache_walk_step(s, &w, 0, count, sn));
	assert_int_equal(w.bucket, 0);
	assert_int_equal(sn->calls, 0);
	steps = walk_all(s, &w, 3, sn);
	assert_false(sn->bad);
	/* budget 3: each step covers three buckets at most */
	assert_true(steps >= st.index_buckets / 3);
	for (unsigned n = 0; n < NKEYS; n++) {
		bool want = n % 7 != 0 && n % 5 != 1;

		assert_int_equal(sn->visits[n], want ? 1 : 0);
		live += want;
	}
	assert_int_equal(sn->calls, live);
	assert_int_equal(w.visited, live);
	cache_free(s);
	free(sn);
}

/* The index grows while the walk goes: an item present from start to end
 * is still visited at least once, and the walk ends. */
static void test_walk_while_growing(void **state)
{
	struct cache_shard *s = open_shard(64 * MIB, true);
	struct cache_walk w = {0};
	struct seen *sn = calloc(1, sizeof(*sn));
	struct cache_stats a, b;
	unsigned next = NKEYS;

	(void)state;
	assert_non_null(sn);
	for (unsigned n = 0; n < NKEYS; n++)
		assert_int_equal(put(s, n, 0), 0);
	cache_get_stats(s, &a);
	while (!cache_walk_step(s, &w, 2, count, sn))
		for (unsigned i = 0; i < 8 && next < 2 * NKEYS; i++)
			assert_int_equal(put(s, next++, 0), 0);
	cache_get_stats(s, &b);
	assert_true(b.index_buckets > a.index_buckets);
	assert_false(sn->bad);
	for (unsigned n = 0; n < NKEYS; n++)
		assert_true(sn->visits[n] >= 1);
	for (unsigned n = 0; n < 2 * NKEYS; n++)
		assert_true(sn->visits[n] <= 2);
	cache_free(s);
	free(sn);
}

/* A shard that evicts: the walk hands over exactly what the shard still
 * holds, each once. */
static void test_walk_after_eviction(void **state)
{
	struct cache_shard *s = open_shard(2 * MIB, false);
	struct cache_walk w = {0};
	struct seen *sn = calloc(1, sizeof(*sn));
	struct cache_stats st;
	unsigned held = 0;

	(void)state;
	assert_non_null(sn);
	for (unsigned n = 0; n < 2 * NKEYS; n++)
		assert_int_equal(put(s, n, 0), 0);
	cache_get_stats(s, &st);
	assert_true(st.evictions > 0);
	walk_all(s, &w, 64, sn);
	assert_false(sn->bad);
	for (unsigned n = 0; n < 2 * NKEYS; n++) {
		char key[32];
		struct cache_item it;
		uint32_t klen;
		bool there;

		snprintf(key, sizeof(key), "w:%u", n);
		klen = (uint32_t)strlen(key);
		there = cache_get(s, ml_hash(key, klen), key, klen, 0, 0,
				  &it) == 0;
		assert_int_equal(sn->visits[n], there ? 1 : 0);
		held += there;
	}
	assert_int_equal(held, st.curr_items);
	cache_free(s);
	free(sn);
}

/* The gate's predicate: even keys are the gated range. */
static unsigned gate_calls;
static bool gate_even(void *arg, const char *key, uint32_t klen,
		      uint64_t written)
{
	char buf[32];

	(void)arg;
	(void)written;
	gate_calls++;
	snprintf(buf, sizeof(buf), "%.*s", (int)klen, key);
	return strtoul(buf + 2, NULL, 10) % 2 == 0;
}

/* Key n, its length and hash. */
static __attribute__((noinline)) uint64_t key_of(unsigned n, char *key,
						 uint32_t *klen)
{
	snprintf(key, 32, "w:%u", n);
	*klen = (uint32_t)strlen(key);
	return ml_hash(key, *klen);
}

static bool has(struct cache_shard *s, unsigned n)
{
	char key[32];
	struct cache_item it;
	uint32_t klen;

	snprintf(key, sizeof(key), "w:%u", n);
	klen = (uint32_t)strlen(key);
	return cache_get(s, ml_hash(key, klen), key, klen, 0, 0, &it) == 0;
}

static void test_gate(void **state)
{
	struct cache_shard *s = open_shard(64 * MIB, true);
	struct cache_walk w = {0};
	struct seen *sn = calloc(1, sizeof(*sn));
	struct cache_store add = {.mode = CACHE_ADD};
	struct cache_arith ar = {.incr = true, .delta = 1};
	struct cache_stats st;
	uint64_t mark, v;
	char key[32];
	unsigned gone = 0;

	(void)state;
	assert_non_null(sn);
	for (unsigned n = 0; n < NKEYS; n++)
		assert_int_equal(put(s, n, 0), 0);
	mark = cache_mark(s);
	/* written after the mark: new keys, and old ones written again */
	for (unsigned n = NKEYS; n < NKEYS + 1000; n++)
		assert_int_equal(put(s, n, 0), 0);
	for (unsigned n = 0; n < 1000; n++)
		assert_int_equal(put(s, n, 0), 0);
	cache_set_gate(s, mark, gate_even, NULL);

	/* reads: gated ones miss, the rest hit */
	for (unsigned n = 1000; n < 2000; n++) {
		assert_int_equal(has(s, n), n % 2 == 1);
		gone += n % 2 == 0;
	}
	for (unsigned n = 0; n < 1000; n++)
		assert_true(has(s, n));
	for (unsigned n = NKEYS; n < NKEYS + 1000; n++)
		assert_true(has(s, n));
	/* a write that needs the item finds none; add finds room */
	ar.key = key;
	ar.hv = key_of(2000, key, &ar.klen);
	assert_int_equal(cache_arith(s, &ar, &v, NULL), -ENOENT);
	ar.hv = key_of(2001, key, &ar.klen);
	assert_int_equal(cache_arith(s, &ar, &v, NULL), -EINVAL); /* "v2001" */
	gone++;
	add.key = key;
	add.hv = key_of(2002, key, &add.klen);
	add.value = "v2002"; /* as put() would, for count() */
	add.vlen = 5;
	add.flags = 2002;
	assert_int_equal(cache_store(s, &add, NULL), 0);
	gone++;
	add.hv = key_of(2003, key, &add.klen);
	assert_int_equal(cache_store(s, &add, NULL), -EEXIST);

	/* the reap takes the rest; a walk after it sees none of them */
	while (!cache_reap_step(s, &w, 3))
		;
	cache_get_stats(s, &st);
	gone += (NKEYS - 2000) / 2 - 2; /* 2000 and 2002 went already */
	assert_int_equal(st.gated, gone);
	assert_int_equal(w.visited, gone - 1000 / 2 - 2);
	assert_int_equal(st.reclaimed, 0);
	assert_int_equal(st.expired_unfetched, 0);
	assert_int_equal(st.curr_items, NKEYS + 1000 - gone + 1);
	memset(&w, 0, sizeof(w));
	while (!cache_walk_step(s, &w, 64, count, sn))
		;
	assert_false(sn->bad);
	for (unsigned n = 0; n < NKEYS + 1000; n++)
		assert_int_equal(sn->visits[n], n < 1000 || n >= NKEYS ||
							n % 2 == 1 ||
							n == 2002);
	/* without the gate nothing is asked again */
	cache_set_gate(s, 0, NULL, NULL);
	gate_calls = 0;
	for (unsigned n = 0; n < NKEYS + 1000; n++)
		assert_int_equal(has(s, n), sn->visits[n] == 1);
	assert_int_equal(gate_calls, 0);
	cache_free(s);
	free(sn);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_walk_empty),
		cmocka_unit_test(test_walk_every_item),
		cmocka_unit_test(test_walk_while_growing),
		cmocka_unit_test(test_walk_after_eviction),
		cmocka_unit_test(test_gate),
	};

	return cmocka_run_group_tests_name("cache_store_walk", tests, NULL,
					   NULL);
}

/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of one cache shard (cache/store.c), written against the
 * contract in cache/cache.h. One cmocka group per area: the index, items
 * and the memory ceiling, S3-FIFO eviction, expiry, CAS, and long runs of
 * random operations checked against a model of what the shard holds.
 *
 * Most tests hash keys with ml_hash() as the parser does; the index tests
 * pass hand-made hash values instead, to force many keys into one bucket
 * (same bucket bits 31..0) with different or identical tags (bits 47..34).
 * Those run in shards that neither grow their index nor evict: both work
 * from hv == ml_hash(key), which is what every real caller passes. The
 * chain tests with real colliding hashes cover growth and eviction.
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

#define KIB 1024u
#define MIB (1024u * 1024u)

/* The shard clock at creation: any recent unix time. */
#define T0 1700000000u

#define BUCKET_MASK 0xffffffffull
#define TAG_SHIFT   34

/* ------------------------------------------------------------------------
 * Fixture and helpers
 * ---------------------------------------------------------------------- */

#define FX_MAX_SHARDS 4

/* Every shard a test opens is freed by the teardown, also on failure. */
struct fx {
	struct cache_shard *s[FX_MAX_SHARDS];
	unsigned n;
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	unsigned i;

	for (i = 0; i < f->n; i++)
		cache_free(f->s[i]);
	free(f);
	return 0;
}

/* Small shard: 4 MiB, 64 KiB segments, 16 KiB items. */
static struct cache_params small_params(void)
{
	struct cache_params p = {
		.mem_limit = 4 * MIB,
		.item_size_max = 16 * KIB,
		.segment_size = 64 * KIB,
		.now = T0,
	};

	return p;
}

static struct cache_shard *fx_open(void **state, const struct cache_params *p)
{
	struct fx *f = *state;
	struct cache_shard *s;

	assert_true(f->n < FX_MAX_SHARDS);
	s = cache_create(p);
	assert_non_null(s);
	f->s[f->n++] = s;
	return s;
}

static struct cache_shard *fx_small(void **state)
{
	struct cache_params p = small_params();

	return fx_open(state, &p);
}

static struct cache_stats stats_of(const struct cache_shard *s)
{
	struct cache_stats st;

	memset(&st, 0xa5, sizeof(st));
	cache_get_stats(s, &st);
	return st;
}

/* The ceiling holds at every point a test looks. */
static void check_mem(const struct cache_shard *s)
{
	struct cache_stats st = stats_of(s);

	assert_true(st.mem_used <= st.mem_limit);
}

/* Deterministic value bytes for (seed, length). */
static void fill(void *buf, size_t len, uint32_t seed)
{
	uint8_t *b = buf;
	uint32_t x = seed * 2654435761u ^ 0x9e3779b9u;
	size_t i;

	if (!x)
		x = 1;
	for (i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		b[i] = (uint8_t)(x >> 11);
	}
}

/* A small deterministic PRNG for sizes and picks. */
static uint32_t rnd(uint64_t *st)
{
	*st = *st * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(*st >> 33);
}

static struct cache_store req_of(uint64_t hv, const char *key, uint32_t klen,
				 const void *val, uint32_t vlen)
{
	struct cache_store r = {
		.hv = hv,
		.key = key,
		.klen = klen,
		.value = val,
		.vlen = vlen,
		.mode = CACHE_SET,
	};

	return r;
}

/* Stores with an explicit hash. */
static int put_hv(struct cache_shard *s, uint64_t hv, const char *key,
		  uint32_t klen, const void *val, uint32_t vlen, uint32_t flags,
		  uint32_t exptime, struct cache_item *out)
{
	struct cache_store r = req_of(hv, key, klen, val, vlen);

	r.flags = flags;
	r.exptime = exptime;
	return cache_store(s, &r, out);
}

static int put(struct cache_shard *s, const char *key, const void *val,
	       uint32_t vlen, uint32_t flags, uint32_t exptime,
	       struct cache_item *out)
{
	uint32_t klen = (uint32_t)strlen(key);

	return put_hv(s, ml_hash(key, klen), key, klen, val, vlen, flags,
		      exptime, out);
}

static int put_str(struct cache_shard *s, const char *key, const char *val,
		   struct cache_item *out)
{
	return put(s, key, val, (uint32_t)strlen(val), 0, 0, out);
}

/* Stores with a mode and a CAS to compare. */
static int store_mode(struct cache_shard *s, enum cache_mode mode,
		      const char *key, const char *val, uint64_t cas,
		      struct cache_item *out)
{
	uint32_t klen = (uint32_t)strlen(key);
	struct cache_store r = req_of(ml_hash(key, klen), key, klen, val,
				      (uint32_t)strlen(val));

	r.mode = mode;
	r.cas = cas;
	return cache_store(s, &r, out);
}

static int get(struct cache_shard *s, const char *key, unsigned opts,
	       uint32_t exptime, struct cache_item *out)
{
	uint32_t klen = (uint32_t)strlen(key);

	memset(out, 0, sizeof(*out));
	return cache_get(s, ml_hash(key, klen), key, klen, opts, exptime, out);
}

static int del(struct cache_shard *s, const char *key, uint64_t cas)
{
	uint32_t klen = (uint32_t)strlen(key);

	return cache_delete(s, ml_hash(key, klen), key, klen, cas);
}

/* Looks key up without bumping it; true on a hit. */
static bool present(struct cache_shard *s, const char *key)
{
	struct cache_item it;

	return get(s, key, CACHE_GET_NOBUMP, 0, &it) == 0;
}

/* The item is a hit with exactly this key and value. */
static void expect_hit_hv(struct cache_shard *s, uint64_t hv, const char *key,
			  uint32_t klen, const void *val, uint32_t vlen)
{
	struct cache_item it;

	memset(&it, 0, sizeof(it));
	assert_int_equal(cache_get(s, hv, key, klen, CACHE_GET_NOBUMP, 0, &it),
			 0);
	assert_int_equal(it.klen, klen);
	assert_memory_equal(it.key, key, klen);
	assert_int_equal(it.vlen, vlen);
	if (vlen)
		assert_memory_equal(it.value, val, vlen);
}

static void expect_str(struct cache_shard *s, const char *key, const char *val)
{
	uint32_t klen = (uint32_t)strlen(key);

	expect_hit_hv(s, ml_hash(key, klen), key, klen, val,
		      (uint32_t)strlen(val));
}

static void expect_miss_hv(struct cache_shard *s, uint64_t hv, const char *key,
			   uint32_t klen)
{
	struct cache_item it;

	assert_int_equal(cache_get(s, hv, key, klen, CACHE_GET_NOBUMP, 0, &it),
			 -ENOENT);
}

static void expect_miss(struct cache_shard *s, const char *key)
{
	expect_miss_hv(s, ml_hash(key, strlen(key)), key,
		       (uint32_t)strlen(key));
}

/* Parses a stored counter: decimal digits, then only spaces (a shorter
 * result may keep the old length, padded). */
static uint64_t counter_of(const struct cache_item *it)
{
	char buf[32];
	uint32_t i, n = it->vlen;

	assert_true(n > 0 && n < sizeof(buf));
	memcpy(buf, it->value, n);
	buf[n] = '\0';
	for (i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++)
		;
	assert_true(i > 0);
	for (; i < n; i++)
		assert_int_equal(buf[i], ' ');
	return strtoull(buf, NULL, 10);
}

/* ------------------------------------------------------------------------
 * Lifecycle
 * ---------------------------------------------------------------------- */

static unsigned mapping_count(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	unsigned n = 0;
	int c;

	assert_non_null(f);
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

/* Creating and freeing shards over and over holds the process's memory
 * and mappings steady: a freed shard gives back all it took. */
static void test_create_free_cycles(void **state)
{
	struct cache_params p = small_params();
	unsigned before = 0, after, i, k;
	char key[32];

	(void)state;
	for (i = 0; i < 400; i++) {
		struct cache_shard *a = cache_create(&p);
		struct cache_shard *b = cache_create(&p);

		assert_non_null(a);
		assert_non_null(b);
		for (k = 0; k < 50; k++) {
			snprintf(key, sizeof(key), "cycle:%u", k);
			assert_int_equal(put_str(a, key, "value", NULL), 0);
			assert_int_equal(put_str(b, key, "value", NULL), 0);
		}
		cache_free(b);
		cache_free(a);
		if (i == 50)
			before = mapping_count();
	}
	after = mapping_count();
	assert_true(after <= before + 16);
}

static void test_create_params(void **state)
{
	struct cache_params p = small_params();
	struct cache_shard *s;
	struct cache_stats st;

	(void)state;
	cache_free(NULL);

	/* Too small for one segment and the index. */
	p.mem_limit = 4 * KIB;
	errno = 0;
	assert_null(cache_create(&p));
	assert_int_equal(errno, ENOMEM);

	/* A shard id that does not fit its bits. */
	p = small_params();
	p.cas_id = 4;
	p.cas_id_bits = 2;
	errno = 0;
	assert_null(cache_create(&p));
	assert_int_equal(errno, EINVAL);

	p = small_params();
	s = fx_open(state, &p);
	assert_int_equal(cache_time(s), T0);
	st = stats_of(s);
	assert_int_equal(st.mem_limit, p.mem_limit);
	assert_true(st.mem_used > 0);
	assert_true(st.mem_used <= st.mem_limit);
	assert_int_equal(st.curr_items, 0);
	assert_int_equal(st.bytes, 0);
	assert_true(st.index_buckets > 0);
}

/* ------------------------------------------------------------------------
 * Index
 * ---------------------------------------------------------------------- */

#define MANY 20000

static void test_index_many_keys(void **state)
{
	struct cache_params p = small_params();
	struct cache_shard *s;
	struct cache_stats st0, st;
	char key[64], val[64];
	struct cache_item it;
	unsigned i, n;

	p.mem_limit = 16 * MIB;
	s = fx_open(state, &p);
	st0 = stats_of(s);

	for (i = 0; i < MANY; i++) {
		snprintf(key, sizeof(key), "key:%06u", i);
		n = 8 + i % 24;
		fill(val, n, i);
		assert_int_equal(put(s, key, val, n, i, 0, NULL), 0);
	}
	check_mem(s);
	st = stats_of(s);
	assert_int_equal(st.curr_items, MANY);
	assert_int_equal(st.total_items, MANY);
	assert_int_equal(st.evictions, 0);
	/* items_hint 0 lets the index grow with its load. */
	assert_true(st.index_buckets > st0.index_buckets);

	for (i = 0; i < MANY; i++) {
		snprintf(key, sizeof(key), "key:%06u", i);
		n = 8 + i % 24;
		fill(val, n, i);
		assert_int_equal(get(s, key, 0, 0, &it), 0);
		assert_int_equal(it.flags, i);
		assert_int_equal(it.exptime, 0);
		assert_int_equal(it.vlen, n);
		assert_memory_equal(it.value, val, n);
		assert_int_equal(it.klen, strlen(key));
		assert_memory_equal(it.key, key, it.klen);
	}
	for (i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "nokey:%06u", i);
		expect_miss(s, key);
		/* Same length and prefix as a stored key. */
		snprintf(key, sizeof(key), "kez:%06u", i);
		expect_miss(s, key);
	}

	/* Delete every third key; the rest stay. */
	for (i = 0; i < MANY; i += 3) {
		snprintf(key, sizeof(key), "key:%06u", i);
		assert_int_equal(del(s, key, 0), 0);
		assert_int_equal(del(s, key, 0), -ENOENT);
	}
	for (i = 0; i < MANY; i++) {
		snprintf(key, sizeof(key), "key:%06u", i);
		assert_int_equal(present(s, key), i % 3 != 0);
	}
	st = stats_of(s);
	assert_int_equal(st.curr_items, MANY - (MANY + 2) / 3);
}

static void test_index_items_hint(void **state)
{
	struct cache_params p = small_params();
	struct cache_shard *s;
	struct cache_stats st0, st;
	char key[32];
	unsigned i;

	p.mem_limit = 16 * MIB;
	p.items_hint = 100000;
	s = fx_open(state, &p);
	st0 = stats_of(s);
	/* A 64-byte bucket has at most 16 slots: the hint sizes the index
	 * up front, far beyond what an unhinted shard starts with. */
	assert_true(st0.index_buckets * 16 >= p.items_hint);
	check_mem(s);
	p.items_hint = 0;
	assert_true(stats_of(fx_open(state, &p)).index_buckets <
		    st0.index_buckets);

	for (i = 0; i < 20000; i++) {
		snprintf(key, sizeof(key), "h%u", i);
		assert_int_equal(put_str(s, key, "v", NULL), 0);
	}
	st = stats_of(s);
	/* A fifth of the hinted load needs no growth. */
	assert_int_equal(st.index_buckets, st0.index_buckets);
	assert_int_equal(st.curr_items, 20000);
	for (i = 0; i < 20000; i++) {
		snprintf(key, sizeof(key), "h%u", i);
		expect_str(s, key, "v");
	}
}

#define CHAIN 40

/* hv of the i-th key forced into one bucket: same bits 31..0, and either
 * different tags or one tag with different bits above it. */
static uint64_t chain_hv(unsigned i, bool same_tag)
{
	const uint64_t low = 0x5a5a1234ull;

	if (same_tag)
		return low | (0x2a5ull << TAG_SHIFT) |
		       ((uint64_t)(i + 1) << 48);
	return low | ((uint64_t)(i + 1) << TAG_SHIFT) | (0xc0deull << 48);
}

static void chain_val(char *val, size_t sz, unsigned i, unsigned gen)
{
	snprintf(val, sz, "value-%u-gen-%u", i, gen);
}

static void expect_chain(struct cache_shard *s, bool same_tag, unsigned i,
			 unsigned gen)
{
	char key[32], val[64];

	snprintf(key, sizeof(key), "chain:%u", i);
	chain_val(val, sizeof(val), i, gen);
	expect_hit_hv(s, chain_hv(i, same_tag), key, (uint32_t)strlen(key), val,
		      (uint32_t)strlen(val));
}

static void put_chain(struct cache_shard *s, bool same_tag, unsigned i,
		      unsigned gen)
{
	char key[32], val[64];

	snprintf(key, sizeof(key), "chain:%u", i);
	chain_val(val, sizeof(val), i, gen);
	assert_int_equal(put_hv(s, chain_hv(i, same_tag), key,
				(uint32_t)strlen(key), val,
				(uint32_t)strlen(val), i, 0, NULL),
			 0);
}

static int del_chain(struct cache_shard *s, bool same_tag, unsigned i)
{
	char key[32];

	snprintf(key, sizeof(key), "chain:%u", i);
	return cache_delete(s, chain_hv(i, same_tag), key,
			    (uint32_t)strlen(key), 0);
}

static bool chain_present(struct cache_shard *s, bool same_tag, unsigned i)
{
	struct cache_item it;
	char key[32];

	snprintf(key, sizeof(key), "chain:%u", i);
	return cache_get(s, chain_hv(i, same_tag), key, (uint32_t)strlen(key),
			 CACHE_GET_NOBUMP, 0, &it) == 0;
}

/* More keys in one bucket than it has slots: overflow keeps all of them;
 * deleting from the middle of the chain keeps the others. */
static void forced_bucket(void **state, bool same_tag)
{
	struct cache_shard *s = fx_small(state);
	struct cache_stats st;
	unsigned i;

	for (i = 0; i < CHAIN; i++) {
		put_chain(s, same_tag, i, 0);
		/* Every key so far is still there after each insert. */
		if (i % 8 == 7 || i == 8) {
			unsigned j;

			for (j = 0; j <= i; j++)
				expect_chain(s, same_tag, j, 0);
		}
	}
	st = stats_of(s);
	assert_int_equal(st.curr_items, CHAIN);
	assert_int_equal(st.evictions, 0);
	assert_true(st.index_overflow > 0);
	for (i = 0; i < CHAIN; i++)
		expect_chain(s, same_tag, i, 0);

	/* Delete from the middle. */
	for (i = 15; i < 25; i++)
		assert_int_equal(del_chain(s, same_tag, i), 0);
	for (i = 0; i < CHAIN; i++) {
		if (i >= 15 && i < 25) {
			assert_false(chain_present(s, same_tag, i));
			assert_int_equal(del_chain(s, same_tag, i), -ENOENT);
		} else {
			expect_chain(s, same_tag, i, 0);
		}
	}
	assert_int_equal(stats_of(s).curr_items, CHAIN - 10);

	/* Re-add them with new values. */
	for (i = 15; i < 25; i++)
		put_chain(s, same_tag, i, 1);
	for (i = 0; i < CHAIN; i++)
		expect_chain(s, same_tag, i, i >= 15 && i < 25);

	/* Overwrite every key in place: no duplicates appear. */
	for (i = 0; i < CHAIN; i++)
		put_chain(s, same_tag, i, 2);
	assert_int_equal(stats_of(s).curr_items, CHAIN);
	for (i = 0; i < CHAIN; i++)
		expect_chain(s, same_tag, i, 2);

	/* Delete all but the last, then all, then refill. */
	for (i = 0; i + 1 < CHAIN; i++)
		assert_int_equal(del_chain(s, same_tag, i), 0);
	expect_chain(s, same_tag, CHAIN - 1, 2);
	assert_int_equal(del_chain(s, same_tag, CHAIN - 1), 0);
	assert_int_equal(stats_of(s).curr_items, 0);
	for (i = 0; i < CHAIN; i++)
		assert_false(chain_present(s, same_tag, i));
	for (i = 0; i < CHAIN; i++)
		put_chain(s, same_tag, i, 3);
	for (i = 0; i < CHAIN; i++)
		expect_chain(s, same_tag, i, 3);
	check_mem(s);
}

static void test_index_bucket_overflow(void **state)
{
	forced_bucket(state, false);
}

static void test_index_bucket_overflow_same_tag(void **state)
{
	forced_bucket(state, true);
}

/* Keys whose real hashes share the low bucket bits of an index of up to
 * twice its current size: they share a bucket now and through the next
 * split, and stay valid keys (hv == ml_hash) through growth and eviction.
 */
#define COLLIDE 40

static void colliding_keys(const struct cache_shard *s, char keys[][32],
			   unsigned n)
{
	uint64_t p2 = 1, mask, want;
	unsigned i = 0, j;

	while (p2 < stats_of(s).index_buckets)
		p2 <<= 1;
	mask = 2 * p2 - 1;
	want = ml_hash("col:0", 5) & mask;
	for (j = 0; i < n; j++) {
		snprintf(keys[i], 32, "col:%u", j);
		if ((ml_hash(keys[i], strlen(keys[i])) & mask) == want)
			i++;
		assert_true(j < 100000000u);
	}
}

/* A real overflow chain survives index growth. */
static void test_index_chain_grows(void **state)
{
	static char keys[COLLIDE][32];
	struct cache_params p = small_params();
	struct cache_shard *s;
	struct cache_stats st0, st;
	char key[32];
	unsigned i;

	p.mem_limit = 16 * MIB;
	s = fx_open(state, &p);
	colliding_keys(s, keys, COLLIDE);
	for (i = 0; i < COLLIDE; i++)
		assert_int_equal(put_str(s, keys[i], keys[i], NULL), 0);
	st0 = stats_of(s);
	assert_true(st0.index_overflow > 0);
	for (i = 0; i < 30000; i++) {
		snprintf(key, sizeof(key), "fill:%u", i);
		assert_int_equal(put_str(s, key, "12345678", NULL), 0);
	}
	st = stats_of(s);
	assert_true(st.index_buckets > st0.index_buckets);
	assert_int_equal(st.evictions, 0);
	assert_int_equal(st.curr_items, COLLIDE + 30000);
	for (i = 0; i < COLLIDE; i++)
		expect_str(s, keys[i], keys[i]);
	for (i = 0; i < 30000; i += 7) {
		snprintf(key, sizeof(key), "fill:%u", i);
		expect_str(s, key, "12345678");
	}
	/* Deletes from the split chains keep the rest. */
	for (i = 0; i < COLLIDE; i += 2)
		assert_int_equal(del(s, keys[i], 0), 0);
	for (i = 0; i < COLLIDE; i++) {
		if (i % 2)
			expect_str(s, keys[i], keys[i]);
		else
			expect_miss(s, keys[i]);
	}
}

/* A real overflow chain through eviction: its keys leave ghosts in the
 * chain, and storing them again soon finds those ghosts. */
static void test_index_chain_ghosts(void **state)
{
	static char keys[COLLIDE][32];
	static uint8_t val[1000];
	struct cache_params p = small_params();
	struct cache_shard *s;
	struct cache_stats st0, st;
	unsigned i, left = COLLIDE;
	char key[32];

	p.mem_limit = 2 * MIB;
	s = fx_open(state, &p);
	colliding_keys(s, keys, COLLIDE);
	for (i = 0; i < COLLIDE; i++) {
		fill(val, sizeof(val), i);
		assert_int_equal(put(s, keys[i], val, sizeof(val), 0, 0, NULL),
				 0);
	}
	assert_true(stats_of(s).index_overflow > 0);
	/* One-hit wonders until every chain key is evicted. */
	for (i = 0; left && i < 20000; i++) {
		unsigned j;

		snprintf(key, sizeof(key), "fill:%u", i);
		fill(val, sizeof(val), 1000 + i);
		assert_int_equal(put(s, key, val, sizeof(val), 0, 0, NULL), 0);
		check_mem(s);
		for (j = 0, left = 0; j < COLLIDE; j++)
			left += present(s, keys[j]);
	}
	assert_int_equal(left, 0);
	st0 = stats_of(s);
	for (i = 0; i < COLLIDE; i++) {
		fill(val, sizeof(val), 500 + i);
		assert_int_equal(put(s, keys[i], val, sizeof(val), 0, 0, NULL),
				 0);
	}
	st = stats_of(s);
	assert_true(st.ghost_hits - st0.ghost_hits >= COLLIDE * 9 / 10);
	for (i = 0; i < COLLIDE; i++) {
		fill(val, sizeof(val), 500 + i);
		expect_hit_hv(s, ml_hash(keys[i], strlen(keys[i])), keys[i],
			      (uint32_t)strlen(keys[i]), val, sizeof(val));
	}
	check_mem(s);
}

/* Identical hv: only the key bytes tell items apart. */
static void test_index_key_compare(void **state)
{
	struct cache_shard *s = fx_small(state);
	const uint64_t hv = 0x0123456789abcdefull;
	char key[32], val[32];
	unsigned i;

	assert_int_equal(put_hv(s, hv, "alpha", 5, "A", 1, 0, 0, NULL), 0);
	expect_miss_hv(s, hv, "alphb", 5);
	expect_miss_hv(s, hv, "alph", 4);
	expect_miss_hv(s, hv, "alpha!", 6);
	expect_miss_hv(s, hv, "bravo", 5);
	expect_hit_hv(s, hv, "alpha", 5, "A", 1);

	/* A second key with the same hv is a second item. */
	assert_int_equal(put_hv(s, hv, "bravo", 5, "B", 1, 0, 0, NULL), 0);
	expect_hit_hv(s, hv, "alpha", 5, "A", 1);
	expect_hit_hv(s, hv, "bravo", 5, "B", 1);
	assert_int_equal(stats_of(s).curr_items, 2);
	assert_int_equal(cache_delete(s, hv, "alphb", 5, 0), -ENOENT);
	assert_int_equal(cache_delete(s, hv, "alpha", 5, 0), 0);
	expect_miss_hv(s, hv, "alpha", 5);
	expect_hit_hv(s, hv, "bravo", 5, "B", 1);

	/* Bytes after a NUL count too. */
	assert_int_equal(put_hv(s, hv, "ab\0c", 4, "C", 1, 0, 0, NULL), 0);
	expect_miss_hv(s, hv, "ab\0d", 4);
	expect_hit_hv(s, hv, "ab\0c", 4, "C", 1);

	/* More identical hashes than a bucket has slots. */
	for (i = 0; i < 12; i++) {
		snprintf(key, sizeof(key), "same:%u", i);
		snprintf(val, sizeof(val), "v%u", i);
		assert_int_equal(put_hv(s, hv, key, (uint32_t)strlen(key), val,
					(uint32_t)strlen(val), 0, 0, NULL),
				 0);
	}
	for (i = 0; i < 12; i++) {
		snprintf(key, sizeof(key), "same:%u", i);
		snprintf(val, sizeof(val), "v%u", i);
		expect_hit_hv(s, hv, key, (uint32_t)strlen(key), val,
			      (uint32_t)strlen(val));
	}
	expect_miss_hv(s, hv, "same:12", 7);
	expect_hit_hv(s, hv, "bravo", 5, "B", 1);
	assert_int_equal(stats_of(s).curr_items, 14);
}

/* Hash values at the edges: all-zero tag and bucket bits, all ones. */
static void test_index_edge_hashes(void **state)
{
	static const uint64_t hvs[] = {
		0,	     ~0ull,
		1ull << 63,  1ull << TAG_SHIFT,
		BUCKET_MASK, BUCKET_MASK << 32,
	};
	struct cache_shard *s = fx_small(state);
	char key[16];
	unsigned i;

	for (i = 0; i < ML_ARRAY_SIZE(hvs); i++) {
		snprintf(key, sizeof(key), "edge%u", i);
		assert_int_equal(put_hv(s, hvs[i], key, (uint32_t)strlen(key),
					key, (uint32_t)strlen(key), 0, 0, NULL),
				 0);
	}
	for (i = 0; i < ML_ARRAY_SIZE(hvs); i++) {
		snprintf(key, sizeof(key), "edge%u", i);
		expect_hit_hv(s, hvs[i], key, (uint32_t)strlen(key), key,
			      (uint32_t)strlen(key));
	}
	for (i = 0; i < ML_ARRAY_SIZE(hvs); i++) {
		snprintf(key, sizeof(key), "edge%u", i);
		assert_int_equal(
			cache_delete(s, hvs[i], key, (uint32_t)strlen(key), 0),
			0);
		expect_miss_hv(s, hvs[i], key, (uint32_t)strlen(key));
	}
	assert_int_equal(stats_of(s).curr_items, 0);
}

/* What a hit looked like, copied out of the shard. */
struct seen {
	int rc;
	uint32_t klen, vlen, flags, exptime;
	uint64_t cas;
	char key[64];
	char val[256];
};

static void seen_of(struct seen *sn, int rc, const struct cache_item *it)
{
	memset(sn, 0, sizeof(*sn));
	sn->rc = rc;
	if (rc)
		return;
	assert_true(it->klen <= sizeof(sn->key));
	assert_true(it->vlen <= sizeof(sn->val));
	sn->klen = it->klen;
	sn->vlen = it->vlen;
	sn->flags = it->flags;
	sn->exptime = it->exptime;
	sn->cas = it->cas;
	memcpy(sn->key, it->key, it->klen);
	memcpy(sn->val, it->value, it->vlen);
}

/* cache_get_bulk() answers as cache_get() does, for a batch of hits,
 * misses, duplicates and colliding hashes. */
static void test_index_bulk(void **state)
{
	struct cache_shard *s = fx_small(state);
	static char keys[CACHE_BULK_MAX][32];
	const char *kp[CACHE_BULK_MAX];
	uint64_t hv[CACHE_BULK_MAX];
	uint32_t klen[CACHE_BULK_MAX];
	struct cache_item out[CACHE_BULK_MAX];
	int rc[CACHE_BULK_MAX];
	struct seen bulk[CACHE_BULK_MAX], one;
	const uint64_t same = 0xfeedfacecafebeefull;
	unsigned i, n, hits, want_hits;
	char val[256];

	/* Stored: b:0..99, with sizes up to 200. */
	for (i = 0; i < 100; i++) {
		snprintf(keys[0], sizeof(keys[0]), "b:%u", i);
		fill(val, i * 2, i);
		assert_int_equal(
			put(s, keys[0], val, i * 2, i * 3, T0 + 1000 + i, NULL),
			0);
	}
	/* Four keys sharing one hv, two of them stored. */
	assert_int_equal(put_hv(s, same, "s:0", 3, "zero", 4, 7, 0, NULL), 0);
	assert_int_equal(put_hv(s, same, "s:1", 3, "one", 3, 8, 0, NULL), 0);

	n = CACHE_BULK_MAX;
	for (i = 0; i < n; i++) {
		if (i < 4) {
			snprintf(keys[i], sizeof(keys[i]), "s:%u", i);
			hv[i] = same;
		} else {
			if (i % 3 == 0)
				snprintf(keys[i], sizeof(keys[i]), "miss:%u",
					 i);
			else if (i % 5 == 0)
				/* A duplicate of the key before. */
				memcpy(keys[i], keys[i - 1], sizeof(keys[i]));
			else
				snprintf(keys[i], sizeof(keys[i]), "b:%u",
					 i * 7 % 100);
			hv[i] = ml_hash(keys[i], strlen(keys[i]));
		}
		kp[i] = keys[i];
		klen[i] = (uint32_t)strlen(keys[i]);
		rc[i] = 12345;
	}

	memset(out, 0, sizeof(out));
	hits = cache_get_bulk(s, n, hv, kp, klen, out, rc);
	for (i = 0; i < n; i++) {
		assert_true(rc[i] == 0 || rc[i] == -ENOENT);
		seen_of(&bulk[i], rc[i], &out[i]);
	}

	want_hits = 0;
	for (i = 0; i < n; i++) {
		struct cache_item it;
		int r;

		memset(&it, 0, sizeof(it));
		r = cache_get(s, hv[i], kp[i], klen[i], 0, 0, &it);
		seen_of(&one, r, &it);
		assert_int_equal(bulk[i].rc, one.rc);
		if (r)
			continue;
		want_hits++;
		assert_int_equal(bulk[i].klen, one.klen);
		assert_memory_equal(bulk[i].key, kp[i], klen[i]);
		assert_memory_equal(bulk[i].key, one.key, one.klen);
		assert_int_equal(bulk[i].vlen, one.vlen);
		assert_memory_equal(bulk[i].val, one.val, one.vlen);
		assert_int_equal(bulk[i].flags, one.flags);
		assert_int_equal(bulk[i].exptime, one.exptime);
		assert_int_equal(bulk[i].cas, one.cas);
	}
	assert_int_equal(hits, want_hits);
	/* The batch was built to mix: check that it did. */
	assert_true(want_hits > 20 && want_hits < n - 10);
	assert_int_equal(bulk[0].rc, 0);
	assert_memory_equal(bulk[0].val, "zero", 4);
	assert_int_equal(bulk[1].rc, 0);
	assert_memory_equal(bulk[1].val, "one", 3);
	assert_int_equal(bulk[2].rc, -ENOENT);
	assert_int_equal(bulk[3].rc, -ENOENT);

	/* Empty and single batches. */
	assert_int_equal(cache_get_bulk(s, 0, hv, kp, klen, out, rc), 0);
	assert_int_equal(
		cache_get_bulk(s, 1, hv + 4, kp + 4, klen + 4, out, rc),
		bulk[4].rc == 0);
	assert_int_equal(rc[0], bulk[4].rc);
}

/* Keys deep in an overflow chain (three buckets of one hv), and keys
 * whose tag matches a slot of another key, are found by the bulk form. */
static void test_index_bulk_chain(void **state)
{
	struct cache_shard *s = fx_small(state);
	static char keys[CACHE_BULK_MAX][32];
	const char *kp[CACHE_BULK_MAX];
	uint64_t hv[CACHE_BULK_MAX];
	uint32_t klen[CACHE_BULK_MAX];
	struct cache_item out[CACHE_BULK_MAX];
	int rc[CACHE_BULK_MAX];
	const uint64_t same = 0x0123456789abcdefull;
	unsigned i, n = 40;

	for (i = 0; i < n; i++) {
		snprintf(keys[i], sizeof(keys[i]), "chain:%u", i);
		kp[i] = keys[i];
		klen[i] = (uint32_t)strlen(keys[i]);
		hv[i] = same;
		/* every other key is stored: 20 keys over three buckets */
		if (i % 2 == 0)
			assert_int_equal(put_hv(s, same, keys[i], klen[i],
						keys[i], klen[i], i, 0, NULL),
					 0);
	}
	assert_true(stats_of(s).index_overflow >= 1);
	assert_int_equal(cache_get_bulk(s, n, hv, kp, klen, out, rc), n / 2);
	for (i = 0; i < n; i++) {
		if (i % 2) {
			assert_int_equal(rc[i], -ENOENT);
			continue;
		}
		assert_int_equal(rc[i], 0);
		assert_int_equal(out[i].flags, i);
		assert_int_equal(out[i].vlen, klen[i]);
		assert_memory_equal(out[i].value, keys[i], klen[i]);
	}
}

/* A batch whose keys expired: the first to resolve reclaims them (and the
 * reclaims empty an overflow bucket, which is unlinked), a duplicate
 * resolved later misses, and keys further down the same chain are still
 * found. */
static void test_index_bulk_expired_chain(void **state)
{
	struct cache_shard *s = fx_small(state);
	static char keys[32][32];
	const char *kp[CACHE_BULK_MAX];
	uint64_t hv[CACHE_BULK_MAX];
	uint32_t klen[CACHE_BULK_MAX];
	struct cache_item out[CACHE_BULK_MAX];
	int rc[CACHE_BULK_MAX];
	const uint64_t same = 0x00c0ffee00c0ffeeull;
	struct cache_stats st0, st1;
	unsigned i, n = 0;

	/* 30 keys of one hv fill the bucket and two overflow buckets in
	 * order; the second ten expire at T0 + 10 */
	for (i = 0; i < 30; i++) {
		snprintf(keys[i], sizeof(keys[i]), "x:%u", i);
		assert_int_equal(put_hv(s, same, keys[i],
					(uint32_t)strlen(keys[i]), keys[i],
					(uint32_t)strlen(keys[i]), i,
					i >= 10 && i < 20 ? T0 + 10 : 0, NULL),
				 0);
	}
	snprintf(keys[30], sizeof(keys[30]), "x:99");
	st0 = stats_of(s);
	assert_int_equal(st0.index_overflow, 2);
	cache_set_time(s, T0 + 20);

	for (i = 10; i < 30; i++)
		kp[n++] = keys[i];
	kp[n++] = keys[10]; /* reclaimed by then */
	kp[n++] = keys[0];
	kp[n++] = keys[30]; /* never stored */
	for (i = 0; i < n; i++) {
		klen[i] = (uint32_t)strlen(kp[i]);
		hv[i] = same;
		rc[i] = 12345;
	}
	assert_int_equal(cache_get_bulk(s, n, hv, kp, klen, out, rc), 11);
	for (i = 0; i < n; i++) {
		unsigned k = (unsigned)atoi(kp[i] + 2);

		if (k >= 10 && k < 20) {
			assert_int_equal(rc[i], -ENOENT);
			continue;
		}
		if (k == 99) {
			assert_int_equal(rc[i], -ENOENT);
			continue;
		}
		assert_int_equal(rc[i], 0);
		assert_int_equal(out[i].flags, k);
		assert_int_equal(out[i].vlen, klen[i]);
		assert_memory_equal(out[i].value, kp[i], klen[i]);
	}
	st1 = stats_of(s);
	/* a lookup that finds an item expired counts it, as memcached
	 * does, as get_expired and not as a reclaim */
	assert_int_equal(st1.get_expired - st0.get_expired, 10);
	assert_int_equal(st1.reclaimed, st0.reclaimed);
	assert_int_equal(st1.curr_items, 20);
	assert_int_equal(st1.index_overflow, 1);
	for (i = 0; i < 30; i++) {
		if (i >= 10 && i < 20)
			expect_miss_hv(s, same, keys[i],
				       (uint32_t)strlen(keys[i]));
		else
			expect_hit_hv(s, same, keys[i],
				      (uint32_t)strlen(keys[i]), keys[i],
				      (uint32_t)strlen(keys[i]));
	}
}

/* Misses with hashes of their own, among hits, answer as cache_get()
 * does; and a bulk hit keeps a hit's bookkeeping: fetched is reported as
 * it was before the access and then set, atime moves when the clock has
 * moved and only then. */
static void test_index_bulk_misses_and_hit_marks(void **state)
{
	struct cache_shard *s = fx_small(state);
	static char keys[CACHE_BULK_MAX][32];
	const char *kp[CACHE_BULK_MAX];
	uint64_t hv[CACHE_BULK_MAX];
	uint32_t klen[CACHE_BULK_MAX];
	struct cache_item out[CACHE_BULK_MAX], it;
	int rc[CACHE_BULK_MAX];
	unsigned i, n = CACHE_BULK_MAX;

	for (i = 0; i < n; i++) {
		snprintf(keys[i], sizeof(keys[i]), "%s:%u",
			 i % 2 ? "absent" : "here", i);
		kp[i] = keys[i];
		klen[i] = (uint32_t)strlen(keys[i]);
		hv[i] = ml_hash(kp[i], klen[i]);
		if (i % 2 == 0)
			assert_int_equal(put_hv(s, hv[i], kp[i], klen[i], kp[i],
						klen[i], 0, 0, NULL),
					 0);
		rc[i] = 12345;
	}
	assert_int_equal(cache_get_bulk(s, n, hv, kp, klen, out, rc), n / 2);
	for (i = 0; i < n; i++) {
		if (i % 2) {
			assert_int_equal(rc[i], -ENOENT);
			expect_miss_hv(s, hv[i], kp[i], klen[i]);
			continue;
		}
		assert_int_equal(rc[i], 0);
		assert_false(out[i].fetched);
		assert_int_equal(out[i].atime, T0);
		assert_memory_equal(out[i].value, kp[i], klen[i]);
	}

	/* the same second: fetched now, atime unchanged */
	assert_int_equal(cache_get_bulk(s, 1, hv, kp, klen, out, rc), 1);
	assert_true(out[0].fetched);
	assert_int_equal(out[0].atime, T0);
	/* the clock moved: the hit reports the old atime and stores the
	 * new one */
	cache_set_time(s, T0 + 50);
	assert_int_equal(cache_get_bulk(s, 1, hv, kp, klen, out, rc), 1);
	assert_true(out[0].fetched);
	assert_int_equal(out[0].atime, T0);
	memset(&it, 0, sizeof(it));
	assert_int_equal(
		cache_get(s, hv[0], kp[0], klen[0], CACHE_GET_NOBUMP, 0, &it),
		0);
	assert_int_equal(it.atime, T0 + 50);
	assert_true(it.fetched);
}

/* ------------------------------------------------------------------------
 * Items and the memory ceiling
 * ---------------------------------------------------------------------- */

static void test_items_sizes(void **state)
{
	static const uint32_t sizes[] = {
		0,    1,    2,	  7,	8,    15,    16,    31,	  32,
		63,   64,   65,	  127,	128,  255,   256,   1000, 1023,
		1024, 4095, 4096, 8191, 8192, 12000, 15000,
	};
	static uint8_t val[16 * KIB], tmp[16 * KIB];
	struct cache_shard *s = fx_small(state);
	uint64_t cas[ML_ARRAY_SIZE(sizes)];
	char key[PROTO_KEY_MAX + 1];
	struct cache_item it;
	unsigned i, j;

	for (i = 0; i < ML_ARRAY_SIZE(sizes); i++) {
		uint32_t klen = 1 + (i * 37) % PROTO_KEY_MAX;
		uint32_t flags = i == 3 ? 0xffffffffu : i * 1001;
		uint32_t exptime = i % 2 ? T0 + 1000 + i : 0;

		if (i == ML_ARRAY_SIZE(sizes) - 1)
			klen = PROTO_KEY_MAX;
		for (j = 0; j < klen; j++)
			key[j] = (char)('a' + (i + j) % 26);
		fill(val, sizes[i], i + 1);
		memset(&it, 0, sizeof(it));
		assert_int_equal(put_hv(s, ml_hash(key, klen), key, klen, val,
					sizes[i], flags, exptime, &it),
				 0);
		/* out describes the new item. */
		assert_int_equal(it.klen, klen);
		assert_memory_equal(it.key, key, klen);
		assert_int_equal(it.vlen, sizes[i]);
		if (sizes[i])
			assert_memory_equal(it.value, val, sizes[i]);
		assert_int_equal(it.flags, flags);
		assert_int_equal(it.exptime, exptime);
		assert_int_not_equal(it.cas, 0);
		cas[i] = it.cas;
		check_mem(s);
	}
	for (i = 0; i < ML_ARRAY_SIZE(sizes); i++) {
		uint32_t klen = 1 + (i * 37) % PROTO_KEY_MAX;

		if (i == ML_ARRAY_SIZE(sizes) - 1)
			klen = PROTO_KEY_MAX;
		for (j = 0; j < klen; j++)
			key[j] = (char)('a' + (i + j) % 26);
		fill(tmp, sizes[i], i + 1);
		memset(&it, 0, sizeof(it));
		assert_int_equal(
			cache_get(s, ml_hash(key, klen), key, klen, 0, 0, &it),
			0);
		assert_int_equal(it.vlen, sizes[i]);
		if (sizes[i])
			assert_memory_equal(it.value, tmp, sizes[i]);
		assert_int_equal(it.flags, i == 3 ? 0xffffffffu : i * 1001);
		assert_int_equal(it.exptime, i % 2 ? T0 + 1000 + i : 0);
		assert_int_equal(it.cas, cas[i]);
	}
	assert_int_equal(stats_of(s).curr_items, ML_ARRAY_SIZE(sizes));
}

static void test_items_set_overwrites(void **state)
{
	static uint8_t big[10000];
	struct cache_shard *s = fx_small(state);
	struct cache_item it;
	struct cache_stats st;
	uint64_t c1, c2;

	assert_int_equal(put(s, "k", "first", 5, 1, 0, &it), 0);
	c1 = it.cas;
	assert_int_equal(put(s, "k", "second-longer", 13, 2, T0 + 50, &it), 0);
	c2 = it.cas;
	assert_int_not_equal(c1, c2);
	assert_int_equal(get(s, "k", 0, 0, &it), 0);
	assert_int_equal(it.vlen, 13);
	assert_memory_equal(it.value, "second-longer", 13);
	assert_int_equal(it.flags, 2);
	assert_int_equal(it.exptime, T0 + 50);
	assert_int_equal(it.cas, c2);

	assert_int_equal(put(s, "k", "x", 1, 3, 0, NULL), 0);
	expect_str(s, "k", "x");
	assert_int_equal(get(s, "k", 0, 0, &it), 0);
	assert_int_equal(it.flags, 3);
	assert_int_equal(it.exptime, 0);

	assert_int_equal(put(s, "k", "", 0, 4, 0, NULL), 0);
	expect_str(s, "k", "");

	fill(big, sizeof(big), 77);
	assert_int_equal(put(s, "k", big, sizeof(big), 5, 0, NULL), 0);
	expect_hit_hv(s, ml_hash("k", 1), "k", 1, big, sizeof(big));

	st = stats_of(s);
	assert_int_equal(st.curr_items, 1);
	assert_int_equal(st.total_items, 5);
}

static void test_items_add_replace(void **state)
{
	struct cache_shard *s = fx_small(state);
	struct cache_item it;

	assert_int_equal(store_mode(s, CACHE_REPLACE, "k", "r0", 0, NULL),
			 -ENOENT);
	expect_miss(s, "k");
	assert_int_equal(store_mode(s, CACHE_ADD, "k", "one", 0, NULL), 0);
	expect_str(s, "k", "one");
	assert_int_equal(store_mode(s, CACHE_ADD, "k", "two", 0, NULL),
			 -EEXIST);
	expect_str(s, "k", "one");
	assert_int_equal(store_mode(s, CACHE_REPLACE, "k", "three", 0, &it), 0);
	assert_int_equal(it.vlen, 5);
	expect_str(s, "k", "three");
	assert_int_equal(stats_of(s).curr_items, 1);

	/* A failed add refreshes the item as a hit would: atime moves. */
	assert_int_equal(get(s, "k", CACHE_GET_NOBUMP, 0, &it), 0);
	assert_int_equal(it.atime, T0);
	cache_set_time(s, T0 + 100);
	assert_int_equal(store_mode(s, CACHE_ADD, "k", "four", 0, NULL),
			 -EEXIST);
	assert_int_equal(get(s, "k", CACHE_GET_NOBUMP, 0, &it), 0);
	assert_int_equal(it.atime, T0 + 100);
	expect_str(s, "k", "three");

	/* ... but does not mark it fetched (memcached's mg h stays 0). */
	assert_int_equal(put_str(s, "fresh", "v", NULL), 0);
	assert_int_equal(store_mode(s, CACHE_ADD, "fresh", "w", 0, NULL),
			 -EEXIST);
	assert_int_equal(get(s, "fresh", CACHE_GET_NOBUMP, 0, &it), 0);
	assert_false(it.fetched);

	/* Deleted is missing again. */
	assert_int_equal(del(s, "k", 0), 0);
	assert_int_equal(store_mode(s, CACHE_REPLACE, "k", "five", 0, NULL),
			 -ENOENT);
	assert_int_equal(store_mode(s, CACHE_ADD, "k", "six", 0, NULL), 0);
	expect_str(s, "k", "six");
}

static void test_items_append_prepend(void **state)
{
	static uint8_t big[16 * KIB];
	struct cache_shard *s = fx_small(state);
	struct cache_store r;
	struct cache_item it;
	uint64_t cas;

	assert_int_equal(store_mode(s, CACHE_APPEND, "k", "x", 0, NULL),
			 -ENOENT);
	assert_int_equal(store_mode(s, CACHE_PREPEND, "k", "x", 0, NULL),
			 -ENOENT);
	expect_miss(s, "k");

	assert_int_equal(put(s, "k", "mid", 3, 5, T0 + 500, &it), 0);
	cas = it.cas;
	/* Flags and exptime of the request are ignored. */
	r = req_of(ml_hash("k", 1), "k", 1, "_end", 4);
	r.mode = CACHE_APPEND;
	r.flags = 9;
	r.exptime = T0 + 9;
	assert_int_equal(cache_store(s, &r, &it), 0);
	assert_int_not_equal(it.cas, cas);
	cas = it.cas;
	expect_str(s, "k", "mid_end");
	r.mode = CACHE_PREPEND;
	r.value = "start_";
	r.vlen = 6;
	assert_int_equal(cache_store(s, &r, &it), 0);
	assert_int_not_equal(it.cas, cas);
	expect_str(s, "k", "start_mid_end");
	assert_int_equal(get(s, "k", 0, 0, &it), 0);
	assert_int_equal(it.flags, 5);
	assert_int_equal(it.exptime, T0 + 500);

	/* Appending past item_size_max fails and keeps the old value. */
	r.mode = CACHE_APPEND;
	r.value = big;
	r.vlen = sizeof(big) - 8;
	assert_int_equal(cache_store(s, &r, NULL), -E2BIG);
	expect_str(s, "k", "start_mid_end");

	/* Empty append keeps the value. */
	r.value = "";
	r.vlen = 0;
	assert_int_equal(cache_store(s, &r, NULL), 0);
	expect_str(s, "k", "start_mid_end");

	/* Vivify on a miss creates the item with vivify_exptime. */
	r = req_of(ml_hash("v", 1), "v", 1, "tail", 4);
	r.mode = CACHE_APPEND;
	r.vivify = true;
	r.vivify_exptime = T0 + 60;
	assert_int_equal(cache_store(s, &r, NULL), 0);
	assert_int_equal(get(s, "v", 0, 0, &it), 0);
	assert_int_equal(it.vlen, 4);
	assert_memory_equal(it.value, "tail", 4);
	assert_int_equal(it.exptime, T0 + 60);
	r = req_of(ml_hash("w", 1), "w", 1, "head", 4);
	r.mode = CACHE_PREPEND;
	r.vivify = true;
	r.vivify_exptime = 0;
	assert_int_equal(cache_store(s, &r, NULL), 0);
	expect_str(s, "w", "head");
	r.value = "re";
	r.vlen = 2;
	assert_int_equal(cache_store(s, &r, NULL), 0);
	expect_str(s, "w", "rehead");
	assert_int_equal(stats_of(s).curr_items, 3);
}

static void test_items_too_big(void **state)
{
	static uint8_t val[2 * MIB];
	struct cache_params p = small_params();
	struct cache_shard *s = fx_small(state);
	struct cache_shard *big;

	fill(val, sizeof(val), 3);
	assert_int_equal(put(s, "k", val, 16 * KIB + 1, 0, 0, NULL), -E2BIG);
	assert_int_equal(put(s, "k", val, 64 * KIB, 0, 0, NULL), -E2BIG);
	expect_miss(s, "k");
	assert_int_equal(stats_of(s).curr_items, 0);
	/* Near the limit, with room for a header, fits. */
	assert_int_equal(put(s, "k", val, 16 * KIB - 256, 0, 0, NULL), 0);
	expect_hit_hv(s, ml_hash("k", 1), "k", 1, val, 16 * KIB - 256);
	/* A failed overwrite leaves the old item. */
	assert_int_equal(put(s, "k", val, 16 * KIB + 1, 0, 0, NULL), -E2BIG);
	expect_hit_hv(s, ml_hash("k", 1), "k", 1, val, 16 * KIB - 256);

	/* item_size_max 0 is 1 MiB, and segments grow to hold it. */
	p.mem_limit = 16 * MIB;
	p.item_size_max = 0;
	big = fx_open(state, &p);
	assert_int_equal(put(big, "k", val, MIB + 1, 0, 0, NULL), -E2BIG);
	assert_int_equal(put(big, "k", val, MIB / 2, 0, 0, NULL), 0);
	expect_hit_hv(big, ml_hash("k", 1), "k", 1, val, MIB / 2);
	assert_int_equal(put(big, "j", val + 1, MIB - 4 * KIB, 0, 0, NULL), 0);
	expect_hit_hv(big, ml_hash("j", 1), "j", 1, val + 1, MIB - 4 * KIB);
	check_mem(big);
}

#define CEIL_KEYS   2500
#define CEIL_WRITES 8000

/* Far more data than fits, with overwrites and reads mixed in: the
 * ceiling holds after every insert, and whatever survives is intact. */
static void test_items_mem_ceiling(void **state)
{
	static uint8_t val[8 * KIB], tmp[8 * KIB];
	static uint32_t last_len[CEIL_KEYS], last_seed[CEIL_KEYS];
	struct cache_shard *s = fx_small(state);
	struct cache_stats st;
	struct cache_item it;
	uint64_t seed = 42, hits = 0, total = 0;
	char key[32];
	unsigned i;

	for (i = 0; i < CEIL_WRITES; i++) {
		unsigned k = rnd(&seed) % CEIL_KEYS;
		uint32_t len = 1 + rnd(&seed) % sizeof(val);

		snprintf(key, sizeof(key), "ceil:%u", k);
		fill(val, len, i);
		assert_int_equal(put(s, key, val, len, k, 0, NULL), 0);
		last_len[k] = len;
		last_seed[k] = i;
		total += len;
		st = stats_of(s);
		assert_true(st.mem_used <= st.mem_limit);
		assert_true(st.bytes <= st.mem_used);

		/* The item just stored is there. */
		if (i % 7 == 0)
			expect_hit_hv(s, ml_hash(key, strlen(key)), key,
				      (uint32_t)strlen(key), val, len);
		/* Read an older key now and then (moves it to main). */
		if (i % 3 == 0) {
			k = rnd(&seed) % CEIL_KEYS;
			if (!last_len[k])
				continue;
			snprintf(key, sizeof(key), "ceil:%u", k);
			if (get(s, key, 0, 0, &it))
				continue;
			fill(tmp, last_len[k], last_seed[k]);
			assert_int_equal(it.vlen, last_len[k]);
			assert_memory_equal(it.value, tmp, last_len[k]);
			assert_int_equal(it.flags, k);
		}
	}
	assert_true(total > 4 * 4 * MIB);
	st = stats_of(s);
	assert_true(st.evictions > 0);
	assert_true(st.curr_items > 0);

	for (i = 0; i < CEIL_KEYS; i++) {
		if (!last_len[i])
			continue;
		snprintf(key, sizeof(key), "ceil:%u", i);
		if (get(s, key, CACHE_GET_NOBUMP, 0, &it))
			continue;
		hits++;
		fill(tmp, last_len[i], last_seed[i]);
		assert_int_equal(it.vlen, last_len[i]);
		assert_memory_equal(it.value, tmp, last_len[i]);
	}
	assert_int_equal(hits, st.curr_items);
	/* Most of the memory holds items (a loose floor). */
	assert_true(st.bytes > st.mem_limit / 4);
}

#define NOEVICT_MAX 5000

static void test_items_no_evict(void **state)
{
	static uint8_t val[3000];
	struct cache_params p = small_params();
	struct cache_shard *s;
	struct cache_stats st;
	char key[32];
	unsigned i, stored;
	int rc = 0;

	p.no_evict = true;
	s = fx_open(state, &p);
	for (i = 0; i < NOEVICT_MAX; i++) {
		snprintf(key, sizeof(key), "ne:%u", i);
		fill(val, sizeof(val), i);
		rc = put(s, key, val, sizeof(val), 0, 0, NULL);
		check_mem(s);
		if (rc)
			break;
	}
	assert_int_equal(rc, -ENOMEM);
	stored = i;
	/* A 4 MiB shard holds hundreds of 3000-byte items. */
	assert_true(stored > 500);
	expect_miss(s, key);

	/* Still full; nothing stored is lost. */
	snprintf(key, sizeof(key), "ne:%u", stored + 1);
	assert_int_equal(put(s, key, val, sizeof(val), 0, 0, NULL), -ENOMEM);
	st = stats_of(s);
	assert_int_equal(st.evictions, 0);
	assert_int_equal(st.curr_items, stored);
	for (i = 0; i < stored; i++) {
		snprintf(key, sizeof(key), "ne:%u", i);
		fill(val, sizeof(val), i);
		expect_hit_hv(s, ml_hash(key, strlen(key)), key,
			      (uint32_t)strlen(key), val, sizeof(val));
	}

	/* After a flush there is room again, for as many as before: what
	 * the flush left is reaped when nothing else can be compacted. */
	cache_flush(s);
	assert_int_equal(put(s, "again", val, sizeof(val), 0, 0, NULL), 0);
	expect_hit_hv(s, ml_hash("again", 5), "again", 5, val, sizeof(val));
	for (i = 1; i < stored; i++) {
		snprintf(key, sizeof(key), "na:%u", i);
		assert_int_equal(put(s, key, val, sizeof(val), 0, 0, NULL), 0);
	}
	st = stats_of(s);
	assert_int_equal(st.evictions, 0);
	assert_int_equal(st.curr_items, stored);
	check_mem(s);
}

/* f:0 .. f:n-1 are misses */
static void expect_flush_misses(struct cache_shard *s, unsigned n)
{
	char key[32];

	for (unsigned i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "f:%u", i);
		expect_miss(s, key);
	}
}

static void test_items_flush(void **state)
{
	struct cache_shard *s = fx_small(state);
	struct cache_stats st;
	char key[32];
	unsigned i;

	for (i = 0; i < 500; i++) {
		snprintf(key, sizeof(key), "f:%u", i);
		assert_int_equal(put_str(s, key, "some value", NULL), 0);
	}
	assert_int_equal(stats_of(s).curr_items, 500);
	cache_flush(s);
	/* as in memcached, a flushed item is a miss at once and is held
	 * (and counted) until a lookup, the sweep or eviction meets it */
	assert_int_equal(stats_of(s).curr_items, 500);
	expect_flush_misses(s, 200);
	st = stats_of(s);
	assert_int_equal(st.get_flushed, 200);
	assert_int_equal(st.get_expired, 0);
	assert_int_equal(st.curr_items, 300);
	cache_sweep(s, (unsigned)st.index_buckets);
	st = stats_of(s);
	assert_int_equal(st.curr_items, 0);
	assert_int_equal(st.bytes, 0);
	assert_int_equal(st.small_items + st.main_items, 0);
	assert_int_equal(st.reclaimed, 300);
	assert_int_equal(st.get_flushed, 200);
	expect_flush_misses(s, 500);
	check_mem(s);
	/* what is stored after the flush stays */
	for (i = 0; i < 500; i += 2) {
		snprintf(key, sizeof(key), "f:%u", i);
		assert_int_equal(put_str(s, key, "again", NULL), 0);
	}
	for (i = 0; i < 500; i++) {
		snprintf(key, sizeof(key), "f:%u", i);
		if (i % 2)
			expect_miss(s, key);
		else
			expect_str(s, key, "again");
	}
	st = stats_of(s);
	assert_int_equal(st.curr_items, 250);
	assert_int_equal(st.get_flushed, 200);
	cache_flush(s);
	cache_flush(s);
	expect_flush_misses(s, 500);
	st = stats_of(s);
	assert_int_equal(st.curr_items, 0);
	assert_int_equal(st.get_flushed, 450);
}

static void test_items_stats(void **state)
{
	static uint8_t val[600];
	struct cache_shard *s = fx_small(state);
	struct cache_stats st, st1;
	uint64_t payload = 0;
	char key[32];
	unsigned i;

	for (i = 0; i < 300; i++) {
		snprintf(key, sizeof(key), "st:%u", i);
		assert_int_equal(put(s, key, val, 2 * i, 0, 0, NULL), 0);
		payload += strlen(key) + 2 * i;
	}
	st = stats_of(s);
	assert_int_equal(st.curr_items, 300);
	assert_int_equal(st.total_items, 300);
	assert_true(st.bytes >= payload);
	assert_true(st.bytes <= st.mem_used);
	assert_int_equal(st.small_items + st.main_items, st.curr_items);

	/* An overwrite replaces the old item's bytes instead of adding to
	 * them (an item's encoding may vary by a few bytes). */
	assert_int_equal(put(s, "st:299", val, 598, 1, 0, NULL), 0);
	st1 = stats_of(s);
	assert_int_equal(st1.curr_items, 300);
	assert_int_equal(st1.total_items, 301);
	assert_true(st1.bytes < st.bytes + 64);
	assert_true(st1.bytes + 64 > st.bytes);

	for (i = 0; i < 300; i += 2) {
		snprintf(key, sizeof(key), "st:%u", i);
		assert_int_equal(del(s, key, 0), 0);
	}
	st1 = stats_of(s);
	assert_int_equal(st1.curr_items, 150);
	assert_true(st1.bytes < st.bytes);
	assert_int_equal(st1.small_items + st1.main_items, 150);
	for (i = 1; i < 300; i += 2) {
		snprintf(key, sizeof(key), "st:%u", i);
		assert_int_equal(del(s, key, 0), 0);
	}
	st1 = stats_of(s);
	assert_int_equal(st1.curr_items, 0);
	assert_int_equal(st1.bytes, 0);
	assert_int_equal(st1.total_items, 301);
}

/* fetched says whether the item had been fetched before this access;
 * CACHE_GET_NOBUMP neither marks it nor moves atime. */
static void test_items_fetched_nobump(void **state)
{
	struct cache_shard *s = fx_small(state);
	struct cache_item it;

	assert_int_equal(put_str(s, "k", "v", NULL), 0);
	cache_set_time(s, T0 + 200);
	assert_int_equal(get(s, "k", CACHE_GET_NOBUMP, 0, &it), 0);
	assert_false(it.fetched);
	assert_int_equal(it.atime, T0);
	assert_int_equal(get(s, "k", CACHE_GET_NOBUMP, 0, &it), 0);
	assert_false(it.fetched);
	assert_int_equal(it.atime, T0);
	assert_int_equal(get(s, "k", 0, 0, &it), 0);
	assert_false(it.fetched);
	assert_int_equal(get(s, "k", 0, 0, &it), 0);
	assert_true(it.fetched);
	assert_int_equal(get(s, "k", CACHE_GET_NOBUMP, 0, &it), 0);
	assert_true(it.fetched);
	assert_int_equal(it.atime, T0 + 200);

	/* A new value is a new item, not yet fetched. */
	assert_int_equal(put_str(s, "k", "w", NULL), 0);
	assert_int_equal(get(s, "k", 0, 0, &it), 0);
	assert_false(it.fetched);
}

/* ------------------------------------------------------------------------
 * S3-FIFO eviction
 * ---------------------------------------------------------------------- */

#define VAL_1K 1000
#define WSET   400
#define STREAM 20000

static struct cache_params s3_params(void)
{
	struct cache_params p = {
		.mem_limit = 2 * MIB,
		.item_size_max = 16 * KIB,
		.segment_size = 64 * KIB,
		.now = T0,
	};

	return p;
}

static void put_1k(struct cache_shard *s, const char *key, uint32_t seed)
{
	uint8_t val[VAL_1K];

	fill(val, sizeof(val), seed);
	assert_int_equal(put(s, key, val, sizeof(val), 0, 0, NULL), 0);
	check_mem(s);
}

static bool has_1k(struct cache_shard *s, const char *key, uint32_t seed)
{
	uint8_t val[VAL_1K];
	struct cache_item it;

	if (get(s, key, CACHE_GET_NOBUMP, 0, &it))
		return false;
	fill(val, sizeof(val), seed);
	assert_int_equal(it.vlen, sizeof(val));
	assert_memory_equal(it.value, val, sizeof(val));
	return true;
}

/* cache_prefetch_bulk() changes nothing: over chain keys, absent keys and
 * an expired key, and with more keys than CACHE_BULK_MAX, every counter
 * stays as it was, the expired item is not reclaimed, no item is marked
 * fetched or gets a new atime, and lookups answer as before. */
static void test_index_prefetch_changes_nothing(void **state)
{
	struct cache_shard *s = fx_small(state);
	static char keys[CACHE_BULK_MAX + 8][32];
	uint64_t hv[CACHE_BULK_MAX + 8];
	const uint64_t same = 0x0badcafe0badcafeull;
	struct cache_stats st0, st1;
	struct cache_item it;
	unsigned i, n = CACHE_BULK_MAX + 8;

	for (i = 0; i < n; i++) {
		uint32_t len;

		snprintf(keys[i], sizeof(keys[i]), "pf:%u", i);
		len = (uint32_t)strlen(keys[i]);
		/* the first 24 share one chain of three buckets; key 5
		 * expires at T0 + 10; odd keys past the chain are absent */
		hv[i] = i < 24 ? same : ml_hash(keys[i], len);
		if (i < 24 || i % 2 == 0)
			assert_int_equal(put_hv(s, hv[i], keys[i], len, keys[i],
						len, i, i == 5 ? T0 + 10 : 0,
						NULL),
					 0);
	}
	cache_set_time(s, T0 + 20);
	st0 = stats_of(s);
	assert_int_equal(st0.index_overflow, 2);

	cache_prefetch_bulk(s, n, hv);
	cache_prefetch_bulk(s, 0, hv);
	st1 = stats_of(s);
	assert_memory_equal(&st1, &st0, sizeof(st0));

	/* Still there, unread: not fetched, atime of the store. */
	memset(&it, 0, sizeof(it));
	assert_int_equal(cache_get(s, same, keys[7], (uint32_t)strlen(keys[7]),
				   CACHE_GET_NOBUMP, 0, &it),
			 0);
	assert_false(it.fetched);
	assert_int_equal(it.atime, T0);
	for (i = 0; i < n; i++) {
		uint32_t len = (uint32_t)strlen(keys[i]);

		if (i == 5 || (i >= 24 && i % 2))
			expect_miss_hv(s, hv[i], keys[i], len);
		else
			expect_hit_hv(s, hv[i], keys[i], len, keys[i], len);
	}
	/* The expired key was dropped by the lookup, not the prefetch. */
	assert_int_equal(stats_of(s).get_expired, st0.get_expired + 1);
}

/* Stores STREAM one-hit wonders, "o:0" on. */
static void put_stream(struct cache_shard *s)
{
	char key[32];

	for (unsigned i = 0; i < STREAM; i++) {
		snprintf(key, sizeof(key), "o:%u", i);
		put_1k(s, key, 100000 + i);
	}
}

/* How many of the working set "w:0".."w:WSET-1" are still held. */
static unsigned wset_left(struct cache_shard *s)
{
	unsigned i, n = 0;
	char key[32];

	for (i = 0; i < WSET; i++) {
		snprintf(key, sizeof(key), "w:%u", i);
		n += has_1k(s, key, i);
	}
	return n;
}

/* A re-referenced working set survives a scan of one-hit wonders ten
 * times the size of the shard; FIFO or LRU would lose all of it. */
static void test_s3fifo_scan_resistance(void **state)
{
	struct cache_params p = s3_params();
	struct cache_shard *s = fx_open(state, &p);
	struct cache_stats st;
	unsigned i, w_left, early = 0, late = 0;
	struct cache_item it;
	char key[32];

	for (i = 0; i < WSET; i++) {
		snprintf(key, sizeof(key), "w:%u", i);
		put_1k(s, key, i);
		assert_int_equal(get(s, key, 0, 0, &it), 0);
		assert_int_equal(get(s, key, 0, 0, &it), 0);
	}
	put_stream(s);
	w_left = wset_left(s);
	for (i = 0; i < STREAM; i++) {
		snprintf(key, sizeof(key), "o:%u", i);
		if (!has_1k(s, key, 100000 + i))
			continue;
		if (i < STREAM / 2)
			early++;
		else
			late++;
	}
	print_message("s3fifo: %u/%u of W left, one-hit wonders left: "
		      "%u early, %u late\n",
		      w_left, WSET, early, late);
	assert_true(w_left >= WSET * 9 / 10);
	assert_true(early <= STREAM / 200);
	assert_true(early + late <= STREAM / 10);

	st = stats_of(s);
	assert_true(st.evictions >= STREAM / 2);
	assert_true(st.evicted_unfetched >= STREAM / 2);
	assert_true(st.moved_to_main >= WSET * 9 / 10);
	assert_true(st.main_items >= WSET * 9 / 10);
	assert_int_equal(st.small_items + st.main_items, st.curr_items);
}

/* One read while in the small queue is enough: a working set read once
 * after it was stored moves to main and outlives the same scan. */
static void test_s3fifo_read_once_is_kept(void **state)
{
	struct cache_params p = s3_params();
	struct cache_shard *s = fx_open(state, &p);
	struct cache_item it;
	unsigned i;
	char key[32];

	for (i = 0; i < WSET; i++) {
		snprintf(key, sizeof(key), "w:%u", i);
		put_1k(s, key, i);
		assert_int_equal(get(s, key, 0, 0, &it), 0);
	}
	put_stream(s);
	assert_true(wset_left(s) >= WSET * 9 / 10);
	assert_true(stats_of(s).moved_to_main >= WSET * 9 / 10);
}

/* A prefetch is not a hit: a working set that is only prefetched, however
 * often, leaves with a scan of one-hit wonders as they do. */
static void test_s3fifo_prefetch_is_not_a_hit(void **state)
{
	struct cache_params p = s3_params();
	struct cache_shard *s = fx_open(state, &p);
	uint64_t hv[WSET];
	unsigned i, r;
	char key[32];

	for (i = 0; i < WSET; i++) {
		snprintf(key, sizeof(key), "w:%u", i);
		put_1k(s, key, i);
		hv[i] = ml_hash(key, (uint32_t)strlen(key));
	}
	for (r = 0; r < 4; r++)
		for (i = 0; i < WSET; i += CACHE_BULK_MAX)
			cache_prefetch_bulk(s, ML_MIN(WSET - i, CACHE_BULK_MAX),
					    hv + i);
	put_stream(s);
	assert_true(wset_left(s) <= WSET / 10);
	assert_int_equal(stats_of(s).moved_to_main, 0);
}

/* A key evicted unread from the small queue and stored again while its
 * ghost is remembered goes straight to main, and outlives a fresh key
 * stored at the same moment. */
static void test_s3fifo_ghost(void **state)
{
	struct cache_params p = s3_params();
	struct cache_shard *s = fx_open(state, &p);
	struct cache_stats st0, st;
	char key[32];
	unsigned i;

	put_1k(s, "g:first", 1);
	for (i = 0; i < STREAM && present(s, "g:first"); i++) {
		snprintf(key, sizeof(key), "g:%u", i);
		put_1k(s, key, 10 + i);
	}
	assert_false(present(s, "g:first"));
	st0 = stats_of(s);
	assert_true(st0.evictions > 0);

	put_1k(s, "g:first", 2);
	st = stats_of(s);
	assert_int_equal(st.ghost_hits, st0.ghost_hits + 1);
	assert_true(st.main_items >= st0.main_items + 1);

	/* Never seen before: no ghost. */
	put_1k(s, "fresh", 3);
	assert_int_equal(stats_of(s).ghost_hits, st0.ghost_hits + 1);

	/* Two shards' worth of one-hit wonders. */
	for (i = 0; i < 4000; i++) {
		snprintf(key, sizeof(key), "h:%u", i);
		put_1k(s, key, 50000 + i);
	}
	assert_true(has_1k(s, "g:first", 2));
	assert_false(present(s, "fresh"));
}

#define HOT_SET	   50
#define HOT_STREAM 6000

/* Stores a 1 KB hot item and hits it twice (it will move to main), and
 * hits the one stored 300 before again (by now in main). */
static void put_hot(struct cache_shard *s, unsigned i)
{
	struct cache_item it;
	char key[32];

	snprintf(key, sizeof(key), "hot:%u", i);
	put_1k(s, key, i);
	assert_int_equal(get(s, key, 0, 0, &it), 0);
	assert_int_equal(get(s, key, 0, 0, &it), 0);
	if (i >= 300) {
		snprintf(key, sizeof(key), "hot:%u", i - 300);
		(void)get(s, key, 0, 0, &it);
	}
}

static void hit_set(struct cache_shard *s)
{
	struct cache_item it;
	char key[32];
	unsigned j;

	for (j = 0; j < HOT_SET; j++) {
		snprintf(key, sizeof(key), "set:%u", j);
		(void)get(s, key, 0, 0, &it);
	}
}

/* When every item is hot, main must evict too: stores never fail, so a
 * hit gives a main item one more round, not a place forever. A small set
 * hit again and again keeps its place while the rest cycles through.
 * (The set joins once the shard is full: at the first fill the whole
 * small queue moves to main at once, with access bits cleared.) */
static void test_s3fifo_all_hot(void **state)
{
	struct cache_params p = s3_params();
	struct cache_shard *s = fx_open(state, &p);
	struct cache_stats st;
	unsigned i, n = 0, left = 0, hot_left = 0, old_left = 0;
	char key[32];

	for (n = 0; stats_of(s).evictions == 0; n++)
		put_hot(s, n);
	for (i = 0; i < 1000; i++)
		put_hot(s, n++);
	for (i = 0; i < HOT_SET; i++) {
		snprintf(key, sizeof(key), "set:%u", i);
		put_1k(s, key, 900000 + i);
	}
	for (i = 0; i < HOT_STREAM; i++) {
		if (i % 100 == 0)
			hit_set(s);
		put_hot(s, n++);
	}
	st = stats_of(s);
	assert_true(st.evictions > 0);
	assert_true(st.moved_to_main > 0);
	assert_true(st.reinserted > 0);
	assert_int_equal(st.small_items + st.main_items, st.curr_items);
	for (i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "hot:%u", i);
		if (!has_1k(s, key, i))
			continue;
		left++;
		old_left += i < 1000;
	}
	for (i = 0; i < HOT_SET; i++) {
		snprintf(key, sizeof(key), "set:%u", i);
		hot_left += has_1k(s, key, 900000 + i);
	}
	print_message("s3fifo: hot set %u/%u left, %u of the first 1000\n",
		      hot_left, HOT_SET, old_left);
	assert_int_equal(left + hot_left, st.curr_items);
	assert_true(hot_left >= HOT_SET * 9 / 10);
	/* Hit once in main thousands of stores ago: gone by now. */
	assert_true(old_left <= 100);
	/* The newest are there. */
	snprintf(key, sizeof(key), "hot:%u", n - 1);
	assert_true(has_1k(s, key, n - 1));
}

/* ------------------------------------------------------------------------
 * Expiry
 * ---------------------------------------------------------------------- */

static void test_expiry_lazy(void **state)
{
	struct cache_shard *s = fx_small(state);
	struct cache_item it;

	assert_int_equal(put(s, "a", "A", 1, 0, T0 + 10, NULL), 0);
	assert_int_equal(put(s, "b", "B", 1, 0, 0, NULL), 0);
	assert_int_equal(put(s, "c", "C", 1, 0, T0 + 100, NULL), 0);
	assert_int_equal(get(s, "a", 0, 0, &it), 0);
	assert_int_equal(it.exptime, T0 + 10);

	cache_set_time(s, T0 + 9);
	assert_int_equal(cache_time(s), T0 + 9);
	expect_str(s, "a", "A");
	assert_int_equal(stats_of(s).curr_items, 3);

	/* exptime <= now is expired. */
	cache_set_time(s, T0 + 10);
	expect_miss(s, "a");
	expect_str(s, "b", "B");
	expect_str(s, "c", "C");
	assert_int_equal(stats_of(s).curr_items, 2);
	assert_int_equal(del(s, "a", 0), -ENOENT);

	/* 0 never expires. */
	cache_set_time(s, 0xfffffff0u);
	expect_str(s, "b", "B");
	assert_int_equal(get(s, "c", 0, 0, &it), -ENOENT);
	assert_int_equal(stats_of(s).curr_items, 1);
}

static void test_expiry_store_in_past(void **state)
{
	struct cache_shard *s = fx_small(state);

	/* Stored (memcached answers STORED) but never seen. */
	assert_int_equal(put(s, "now", "x", 1, 0, T0, NULL), 0);
	expect_miss(s, "now");
	assert_int_equal(put(s, "past", "x", 1, 0, T0 - 5, NULL), 0);
	expect_miss(s, "past");
	assert_int_equal(put(s, "epoch", "x", 1, 0, 1, NULL), 0);
	expect_miss(s, "epoch");
	assert_int_equal(put(s, "next", "x", 1, 0, T0 + 1, NULL), 0);
	expect_str(s, "next", "x");
	assert_int_equal(stats_of(s).curr_items, 1);

	/* Overwriting a live item with an expired one removes it. */
	assert_int_equal(put(s, "next", "y", 1, 0, T0 - 1, NULL), 0);
	expect_miss(s, "next");
}

/* An expired item is missing for every command. */
static void test_expiry_modes(void **state)
{
	struct cache_shard *s = fx_small(state);
	struct cache_arith a = {0};
	struct cache_item it;
	uint64_t v, cas;

	assert_int_equal(put(s, "add", "1", 1, 0, T0 + 5, NULL), 0);
	assert_int_equal(put(s, "rep", "1", 1, 0, T0 + 5, NULL), 0);
	assert_int_equal(put(s, "app", "1", 1, 0, T0 + 5, NULL), 0);
	assert_int_equal(put(s, "num", "1", 1, 0, T0 + 5, NULL), 0);
	assert_int_equal(put(s, "cas", "1", 1, 0, T0 + 5, &it), 0);
	cas = it.cas;
	assert_int_equal(put(s, "del", "1", 1, 0, T0 + 5, NULL), 0);
	assert_int_equal(put(s, "inv", "1", 1, 0, T0 + 5, NULL), 0);
	cache_set_time(s, T0 + 5);

	assert_int_equal(store_mode(s, CACHE_ADD, "add", "2", 0, NULL), 0);
	expect_str(s, "add", "2");
	assert_int_equal(store_mode(s, CACHE_REPLACE, "rep", "2", 0, NULL),
			 -ENOENT);
	assert_int_equal(store_mode(s, CACHE_APPEND, "app", "2", 0, NULL),
			 -ENOENT);
	assert_int_equal(store_mode(s, CACHE_SET, "cas", "2", cas, NULL),
			 -ENOENT);
	a.hv = ml_hash("num", 3);
	a.key = "num";
	a.klen = 3;
	a.incr = true;
	a.delta = 1;
	assert_int_equal(cache_arith(s, &a, &v, NULL), -ENOENT);
	assert_int_equal(del(s, "del", 0), -ENOENT);
	assert_int_equal(
		cache_invalidate(s, ml_hash("inv", 3), "inv", 3, 0, false, 0),
		-ENOENT);
	expect_miss(s, "rep");
	expect_miss(s, "app");
	expect_miss(s, "num");
	expect_miss(s, "cas");
	expect_miss(s, "inv");
	expect_miss(s, "del");
	assert_int_equal(stats_of(s).curr_items, 1);
}

static void test_expiry_touch(void **state)
{
	struct cache_shard *s = fx_small(state);
	struct cache_item it;

	assert_int_equal(put(s, "k", "v", 1, 7, T0 + 10, NULL), 0);
	cache_set_time(s, T0 + 5);
	assert_int_equal(get(s, "k", CACHE_GET_TOUCH, T0 + 100, &it), 0);
	assert_int_equal(it.exptime, T0 + 100);
	assert_int_equal(it.flags, 7);
	cache_set_time(s, T0 + 50);
	assert_int_equal(get(s, "k", CACHE_GET_NOBUMP, 0, &it), 0);
	assert_int_equal(it.exptime, T0 + 100);
	expect_str(s, "k", "v");

	/* Touch to 0: never expires. */
	assert_int_equal(get(s, "k", CACHE_GET_TOUCH, 0, &it), 0);
	assert_int_equal(it.exptime, 0);
	cache_set_time(s, T0 + 1000000);
	expect_str(s, "k", "v");

	/* Touch to one second from now. */
	assert_int_equal(get(s, "k", CACHE_GET_TOUCH, T0 + 1000001, &it), 0);
	cache_set_time(s, T0 + 1000001);
	expect_miss(s, "k");

	/* Touch does not revive an expired item. */
	assert_int_equal(put(s, "j", "v", 1, 0, T0 + 1000002, NULL), 0);
	cache_set_time(s, T0 + 1000003);
	assert_int_equal(get(s, "j", CACHE_GET_TOUCH, T0 + 2000000, &it),
			 -ENOENT);
	expect_miss(s, "j");
}

/* Stores one item per bucket index i (bits 31..0 = i, the rest from the
 * key's own hash). */
static uint64_t bucket_hv(const char *key, uint32_t i)
{
	return (ml_hash(key, strlen(key)) & ~BUCKET_MASK) | i;
}

static unsigned sweep_all(struct cache_shard *s, unsigned budget, unsigned want,
			  unsigned max_calls)
{
	unsigned calls = 0, total = 0;

	while (total < want) {
		struct cache_stats a = stats_of(s), b;
		unsigned r;

		assert_true(calls < max_calls);
		r = cache_sweep(s, budget);
		b = stats_of(s);
		calls++;
		assert_int_equal(a.curr_items - b.curr_items, r);
		assert_int_equal(b.reclaimed - a.reclaimed, r);
		total += r;
		assert_true(total <= want);
	}
	return calls;
}

static void test_expiry_sweep(void **state)
{
	struct cache_params p = small_params();
	struct cache_shard *s;
	struct cache_stats st0, st;
	char key[32];
	unsigned i, n, b, k = 7, max_calls;

	p.mem_limit = 8 * MIB;
	p.items_hint = 2048;
	s = fx_open(state, &p);
	st0 = stats_of(s);
	b = (unsigned)st0.index_buckets;
	n = ML_MIN(b, 256u);
	assert_true(n >= 2 * k);

	/* Bucket i holds one expiring and one lasting item. */
	for (i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "exp:%u", i);
		assert_int_equal(put_hv(s, bucket_hv(key, i), key,
					(uint32_t)strlen(key), "e", 1, 0,
					T0 + 10, NULL),
				 0);
		snprintf(key, sizeof(key), "keep:%u", i);
		assert_int_equal(put_hv(s, bucket_hv(key, i), key,
					(uint32_t)strlen(key), "k", 1, 0, 0,
					NULL),
				 0);
	}
	st = stats_of(s);
	assert_int_equal(st.curr_items, 2 * n);
	b = (unsigned)st.index_buckets;

	/* Nothing has expired yet. */
	assert_int_equal(cache_sweep(s, b), 0);
	assert_int_equal(cache_sweep(s, b), 0);
	cache_set_time(s, T0 + 10);
	assert_int_equal(cache_sweep(s, 0), 0);
	assert_int_equal(stats_of(s).curr_items, 2 * n);

	/* Budget k: at most one expired item per bucket, so at most k per
	 * call; a full round over the index gets them all. */
	max_calls = 2 * ((b + k - 1) / k) + 4;
	for (i = 0;; i++) {
		struct cache_stats a = stats_of(s);
		unsigned r = cache_sweep(s, k);

		assert_true(r <= k);
		st = stats_of(s);
		assert_int_equal(a.curr_items - st.curr_items, r);
		assert_int_equal(st.reclaimed - a.reclaimed, r);
		if (st.curr_items == n)
			break;
		assert_true(i < max_calls);
	}
	assert_true(i + 1 >= (n + k - 1) / k);
	assert_int_equal(cache_sweep(s, b), 0);
	st = stats_of(s);
	assert_int_equal(st.reclaimed - st0.reclaimed, n);
	assert_int_equal(st.expired_unfetched - st0.expired_unfetched, n);
	for (i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "keep:%u", i);
		expect_hit_hv(s, bucket_hv(key, i), key, (uint32_t)strlen(key),
			      "k", 1);
		snprintf(key, sizeof(key), "exp:%u", i);
		expect_miss_hv(s, bucket_hv(key, i), key,
			       (uint32_t)strlen(key));
	}

	/* Again with whole-index budgets: two calls cover every bucket. */
	for (i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "exp:%u", i);
		assert_int_equal(put_hv(s, bucket_hv(key, i), key,
					(uint32_t)strlen(key), "e", 1, 0,
					T0 + 20, NULL),
				 0);
	}
	cache_set_time(s, T0 + 30);
	assert_true(sweep_all(s, b, n, 2) <= 2);
	assert_int_equal(stats_of(s).curr_items, n);
}

/* A chained bucket full of expired items is swept clean. */
static void test_expiry_sweep_chain(void **state)
{
	struct cache_shard *s = fx_small(state);
	struct cache_stats st;
	unsigned i, b;

	for (i = 0; i < CHAIN; i++) {
		char key[32], val[64];

		snprintf(key, sizeof(key), "chain:%u", i);
		chain_val(val, sizeof(val), i, 0);
		assert_int_equal(put_hv(s, chain_hv(i, false), key,
					(uint32_t)strlen(key), val,
					(uint32_t)strlen(val), 0,
					i % 4 ? T0 + 10 : 0, NULL),
				 0);
	}
	b = (unsigned)stats_of(s).index_buckets;
	cache_set_time(s, T0 + 11);
	sweep_all(s, 3, CHAIN - CHAIN / 4, 2 * ((b + 2) / 3) + 4);
	st = stats_of(s);
	assert_int_equal(st.curr_items, CHAIN / 4);
	for (i = 0; i < CHAIN; i++) {
		if (i % 4)
			assert_false(chain_present(s, false, i));
		else
			expect_chain(s, false, i, 0);
	}
}

/* ------------------------------------------------------------------------
 * CAS
 * ---------------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void expect_unique(uint64_t *v, size_t n)
{
	size_t i;

	qsort(v, n, sizeof(*v), cmp_u64);
	for (i = 0; i + 1 < n; i++)
		assert_int_not_equal(v[i], v[i + 1]);
}

/* Every kind of modification on one shard; returns the CAS values seen
 * (nonzero, low bits = id). */
static size_t cas_workload(struct cache_shard *s, uint32_t id, uint32_t bits,
			   uint64_t *cas, size_t max)
{
	const uint64_t mask = (1ull << bits) - 1;
	struct cache_arith a = {0};
	struct cache_store r;
	struct cache_item it;
	size_t n = 0;
	char key[32];
	unsigned i;
	uint64_t v;
	int want;

	for (i = 0; i < 300; i++) {
		unsigned op = i % 6;

		snprintf(key, sizeof(key), "c:%u", i % 50);
		memset(&it, 0, sizeof(it));
		switch (op) {
		case 0:
		case 1:
			assert_int_equal(put_str(s, key, "12", &it), 0);
			break;
		case 2:
			want = present(s, key) ? 0 : -ENOENT;
			assert_int_equal(
				store_mode(s, CACHE_APPEND, key, "3", 0, &it),
				want);
			break;
		case 3:
			r = req_of(ml_hash(key, strlen(key)), key,
				   (uint32_t)strlen(key), "9", 1);
			r.mode = CACHE_PREPEND;
			r.vivify = true;
			assert_int_equal(cache_store(s, &r, &it), 0);
			break;
		case 4:
			a.hv = ml_hash(key, strlen(key));
			a.key = key;
			a.klen = (uint32_t)strlen(key);
			a.incr = true;
			a.delta = 1;
			a.vivify = true;
			assert_int_equal(cache_arith(s, &a, &v, &it), 0);
			break;
		default:
			want = present(s, key) ? 0 : -ENOENT;
			a.hv = ml_hash(key, strlen(key));
			a.klen = (uint32_t)strlen(key);
			assert_int_equal(cache_invalidate(s, a.hv, key, a.klen,
							  0, false, 0),
					 want);
			if (!want)
				assert_int_equal(
					get(s, key, CACHE_GET_NOBUMP, 0, &it),
					0);
			break;
		}
		if (!it.cas)
			continue;
		assert_int_equal(it.cas & mask, id);
		assert_true(n < max);
		cas[n++] = it.cas;
		/* A reader sees the CAS the writer was given. */
		assert_int_equal(get(s, key, CACHE_GET_NOBUMP, 0, &it), 0);
		assert_int_equal(it.cas, cas[n - 1]);
	}
	return n;
}

static void cas_across(void **state, unsigned shards, uint32_t bits)
{
	static uint64_t cas[FX_MAX_SHARDS * 300];
	struct cache_params p = small_params();
	struct cache_shard *s;
	size_t n = 0;
	unsigned i;

	for (i = 0; i < shards; i++) {
		p.cas_id = i;
		p.cas_id_bits = bits;
		s = fx_open(state, &p);
		n += cas_workload(s, i, bits, cas + n, ML_ARRAY_SIZE(cas) - n);
	}
	assert_true(n >= shards * 250);
	for (i = 0; i < n; i++)
		assert_int_not_equal(cas[i], 0);
	expect_unique(cas, n);
}

static void test_cas_one_shard(void **state)
{
	cas_across(state, 1, 0);
}

static void test_cas_two_shards(void **state)
{
	cas_across(state, 2, 1);
}

static void test_cas_four_shards(void **state)
{
	cas_across(state, 4, 2);
}

static void test_cas_four_shards_spare_bits(void **state)
{
	cas_across(state, 4, 3);
}

static void test_cas_compare(void **state)
{
	struct cache_shard *s = fx_small(state);
	struct cache_item it;
	uint64_t c1, c2;

	assert_int_equal(put_str(s, "k", "one", &it), 0);
	c1 = it.cas;
	assert_int_equal(store_mode(s, CACHE_SET, "k", "bad", c1 + 1, NULL),
			 -EEXIST);
	expect_str(s, "k", "one");
	assert_int_equal(store_mode(s, CACHE_SET, "k", "two", c1, &it), 0);
	c2 = it.cas;
	assert_int_not_equal(c2, c1);
	expect_str(s, "k", "two");
	/* The old CAS is stale now. */
	assert_int_equal(store_mode(s, CACHE_SET, "k", "three", c1, NULL),
			 -EEXIST);
	expect_str(s, "k", "two");

	/* A CAS store on a missing key creates nothing. */
	assert_int_equal(store_mode(s, CACHE_SET, "nope", "x", c2, NULL),
			 -ENOENT);
	expect_miss(s, "nope");

	/* Delete with a CAS. */
	assert_int_equal(del(s, "k", c1), -EEXIST);
	expect_str(s, "k", "two");
	assert_int_equal(del(s, "k", c2), 0);
	expect_miss(s, "k");
	assert_int_equal(del(s, "k", c2), -ENOENT);
}

static void test_cas_invalidate(void **state)
{
	struct cache_shard *s = fx_small(state);
	const uint64_t hv = ml_hash("k", 1);
	struct cache_item it;
	uint64_t c1, c2, c3;

	assert_int_equal(put(s, "k", "v", 1, 4, T0 + 1000, &it), 0);
	c1 = it.cas;
	assert_int_equal(get(s, "k", 0, 0, &it), 0);
	assert_false(it.stale);

	assert_int_equal(cache_invalidate(s, hv, "k", 1, 0, false, 0), 0);
	assert_int_equal(get(s, "k", 0, 0, &it), 0);
	assert_true(it.stale);
	c2 = it.cas;
	assert_int_not_equal(c2, c1);
	assert_int_equal(it.exptime, T0 + 1000);
	assert_int_equal(it.flags, 4);
	assert_int_equal(it.vlen, 1);
	assert_memory_equal(it.value, "v", 1);

	assert_int_equal(cache_invalidate(s, hv, "k", 1, c1, true, T0 + 30),
			 -EEXIST);
	assert_int_equal(cache_invalidate(s, hv, "k", 1, c2, true, T0 + 30), 0);
	assert_int_equal(get(s, "k", 0, 0, &it), 0);
	c3 = it.cas;
	assert_int_not_equal(c3, c2);
	assert_int_not_equal(c3, c1);
	assert_int_equal(it.exptime, T0 + 30);
	assert_true(it.stale);
	assert_int_equal(
		cache_invalidate(s, ml_hash("x", 1), "x", 1, 0, false, 0),
		-ENOENT);

	/* A new value is not stale. */
	assert_int_equal(put_str(s, "k", "fresh", NULL), 0);
	assert_int_equal(get(s, "k", 0, 0, &it), 0);
	assert_false(it.stale);
}

/* Meta set I: a CAS older than the item's stores the value, marked
 * stale; a newer one is still EXISTS. */
static void test_cas_store_invalidate(void **state)
{
	struct cache_shard *s = fx_small(state);
	struct cache_store r;
	struct cache_item it;
	uint64_t c1, c2;

	assert_int_equal(put_str(s, "k", "one", &it), 0);
	c1 = it.cas;
	assert_int_equal(put_str(s, "k", "two", &it), 0);
	c2 = it.cas;
	assert_true(c2 > c1);

	r = req_of(ml_hash("k", 1), "k", 1, "three", 5);
	r.cas = c2 + 1000;
	r.invalidate = true;
	assert_int_equal(cache_store(s, &r, NULL), -EEXIST);
	expect_str(s, "k", "two");

	r.cas = c1;
	assert_int_equal(cache_store(s, &r, NULL), 0);
	assert_int_equal(get(s, "k", 0, 0, &it), 0);
	assert_true(it.stale);
	assert_int_equal(it.vlen, 5);
	assert_memory_equal(it.value, "three", 5);
	assert_int_not_equal(it.cas, c2);

	/* As in memcached, the stale value keeps the item's exptime and a
	 * win already handed out; the request's exptime is ignored. */
	assert_int_equal(put(s, "w", "a", 1, 0, T0 + 5000, &it), 0);
	c1 = it.cas;
	assert_int_equal(put(s, "w", "b", 1, 0, T0 + 5000, &it), 0);
	cache_mark_win(s, ml_hash("w", 1), "w", 1);
	r = req_of(ml_hash("w", 1), "w", 1, "c", 1);
	r.cas = c1;
	r.invalidate = true;
	r.exptime = T0 + 9000;
	assert_int_equal(cache_store(s, &r, NULL), 0);
	assert_int_equal(get(s, "w", 0, 0, &it), 0);
	assert_true(it.stale);
	assert_true(it.win_sent);
	assert_int_equal(it.exptime, T0 + 5000);
	assert_memory_equal(it.value, "c", 1);
}

/* A key stored in base64 (meta b) is remembered as such, by every later
 * version that the same request kind writes. */
static void test_items_key_binary(void **state)
{
	struct cache_shard *s = fx_small(state);
	struct cache_store r = req_of(ml_hash("bk", 2), "bk", 2, "v", 1);
	struct cache_item it;

	r.key_binary = true;
	assert_int_equal(cache_store(s, &r, NULL), 0);
	assert_int_equal(get(s, "bk", 0, 0, &it), 0);
	assert_true(it.key_binary);
	assert_int_equal(put_str(s, "plain", "v", &it), 0);
	assert_false(it.key_binary);
	r.key_binary = false;
	assert_int_equal(cache_store(s, &r, NULL), 0);
	assert_int_equal(get(s, "bk", 0, 0, &it), 0);
	assert_false(it.key_binary);
}

static void test_cas_mark_win(void **state)
{
	struct cache_shard *s = fx_small(state);
	const uint64_t hv = ml_hash("k", 1);
	struct cache_item it;

	assert_int_equal(put(s, "k", "v", 1, 3, 0, NULL), 0);
	assert_int_equal(get(s, "k", 0, 0, &it), 0);
	assert_false(it.win_sent);
	cache_mark_win(s, hv, "k", 1);
	assert_int_equal(get(s, "k", 0, 0, &it), 0);
	assert_true(it.win_sent);
	assert_int_equal(it.flags, 3);
	assert_memory_equal(it.value, "v", 1);
	/* On a missing key it does nothing. */
	cache_mark_win(s, ml_hash("x", 1), "x", 1);
	expect_miss(s, "x");
	/* A new value starts without a win. */
	assert_int_equal(put(s, "k", "w", 1, 3, 0, NULL), 0);
	assert_int_equal(get(s, "k", 0, 0, &it), 0);
	assert_false(it.win_sent);
}

static int arith(struct cache_shard *s, const char *key, bool incr,
		 uint64_t delta, uint64_t *v, struct cache_item *out)
{
	struct cache_arith a = {
		.hv = ml_hash(key, strlen(key)),
		.key = key,
		.klen = (uint32_t)strlen(key),
		.incr = incr,
		.delta = delta,
	};

	return cache_arith(s, &a, v, out);
}

static void expect_counter(struct cache_shard *s, const char *key, uint64_t v)
{
	struct cache_item it;

	assert_int_equal(get(s, key, CACHE_GET_NOBUMP, 0, &it), 0);
	assert_int_equal(counter_of(&it), v);
}

static void test_cas_arith(void **state)
{
	struct cache_shard *s = fx_small(state);
	struct cache_arith a;
	struct cache_item it;
	uint64_t v, c;

	assert_int_equal(put(s, "n", "10", 2, 33, T0 + 900, &it), 0);
	c = it.cas;
	v = 0;
	assert_int_equal(arith(s, "n", true, 5, &v, &it), 0);
	assert_int_equal(v, 15);
	assert_int_not_equal(it.cas, c);
	assert_int_equal(it.flags, 33);
	assert_int_equal(it.exptime, T0 + 900);
	assert_int_equal(counter_of(&it), 15);
	expect_counter(s, "n", 15);

	/* decr floors at 0. */
	assert_int_equal(arith(s, "n", false, 20, &v, NULL), 0);
	assert_int_equal(v, 0);
	expect_counter(s, "n", 0);
	assert_int_equal(arith(s, "n", false, 1, &v, NULL), 0);
	assert_int_equal(v, 0);

	/* Growing by a digit and shrinking back. */
	assert_int_equal(put_str(s, "n", "99", NULL), 0);
	assert_int_equal(arith(s, "n", true, 1, &v, NULL), 0);
	assert_int_equal(v, 100);
	assert_int_equal(get(s, "n", 0, 0, &it), 0);
	assert_int_equal(it.vlen, 3);
	assert_memory_equal(it.value, "100", 3);
	assert_int_equal(arith(s, "n", false, 1, &v, NULL), 0);
	assert_int_equal(v, 99);
	expect_counter(s, "n", 99);

	/* incr wraps at 2^64. */
	assert_int_equal(put_str(s, "n", "18446744073709551615", NULL), 0);
	assert_int_equal(arith(s, "n", true, 1, &v, NULL), 0);
	assert_int_equal(v, 0);
	expect_counter(s, "n", 0);
	assert_int_equal(put_str(s, "n", "18446744073709551614", NULL), 0);
	assert_int_equal(arith(s, "n", true, 3, &v, NULL), 0);
	assert_int_equal(v, 1);
	assert_int_equal(arith(s, "n", true, UINT64_MAX, &v, NULL), 0);
	assert_int_equal(v, 0);

	/* Not a number. */
	assert_int_equal(put_str(s, "n", "abc", NULL), 0);
	assert_int_equal(arith(s, "n", true, 1, &v, NULL), -EINVAL);
	expect_str(s, "n", "abc");
	assert_int_equal(put_str(s, "n", "12a", NULL), 0);
	assert_int_equal(arith(s, "n", false, 1, &v, NULL), -EINVAL);
	assert_int_equal(put_str(s, "n", "123456789012345678901", NULL), 0);
	assert_int_equal(arith(s, "n", true, 1, &v, NULL), -EINVAL);
	assert_int_equal(put_str(s, "n", "", NULL), 0);
	assert_int_equal(arith(s, "n", true, 1, &v, NULL), -EINVAL);

	/* Missing, then vivified with the initial value. */
	assert_int_equal(arith(s, "m", true, 1, &v, NULL), -ENOENT);
	expect_miss(s, "m");
	a = (struct cache_arith){
		.hv = ml_hash("m", 1),
		.key = "m",
		.klen = 1,
		.incr = true,
		.delta = 5,
		.vivify = true,
		.initial = 42,
		.vivify_exptime = T0 + 60,
	};
	assert_int_equal(cache_arith(s, &a, &v, NULL), 0);
	assert_int_equal(v, 42);
	assert_int_equal(get(s, "m", 0, 0, &it), 0);
	assert_int_equal(it.exptime, T0 + 60);
	assert_int_equal(counter_of(&it), 42);
	/* Once it exists, vivify changes nothing: the delta applies. */
	assert_int_equal(cache_arith(s, &a, &v, NULL), 0);
	assert_int_equal(v, 47);

	/* CAS compare, and setting exptime on success. */
	assert_int_equal(get(s, "m", 0, 0, &it), 0);
	c = it.cas;
	a.vivify = false;
	a.cas = c + 1;
	assert_int_equal(cache_arith(s, &a, &v, NULL), -EEXIST);
	expect_counter(s, "m", 47);
	a.cas = c;
	a.set_exptime = true;
	a.exptime = T0 + 77;
	assert_int_equal(cache_arith(s, &a, &v, &it), 0);
	assert_int_equal(v, 52);
	assert_int_not_equal(it.cas, c);
	assert_int_equal(get(s, "m", 0, 0, &it), 0);
	assert_int_equal(it.exptime, T0 + 77);
}

/* ------------------------------------------------------------------------
 * Groups
 * ---------------------------------------------------------------------- */

#define T(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)

/* ------------------------------------------------------------------------
 * Against a model: random operations of every kind, every answer checked
 * ---------------------------------------------------------------------- */

#define MK_KEYS 6000
#define MK_VMAX 2048
#define MK_OPS	200000

struct mk_entry {
	bool present;
	uint32_t vlen;
	uint32_t flags;
	uint32_t exptime;
	uint64_t cas;
	uint8_t val[MK_VMAX];
};

/* What the shard must hold. When evicting, the shard may have dropped a
 * key the model holds (a miss is then learnt), but a hit must always be
 * the model's latest version: nothing stale or deleted comes back. */
struct mk {
	struct cache_shard *s;
	struct mk_entry *e;
	uint64_t rng;
	uint32_t now;
	bool evicting;
	uint64_t last_cas;
	unsigned nomem, learnt;
	char key[MK_KEYS][64];
	uint32_t klen[MK_KEYS];
	uint64_t hv[MK_KEYS];
};

static uint64_t mk_rand(struct mk *m)
{
	m->rng ^= m->rng << 13;
	m->rng ^= m->rng >> 7;
	m->rng ^= m->rng << 17;
	return m->rng;
}

static uint32_t mk_below(struct mk *m, uint32_t n)
{
	return (uint32_t)(mk_rand(m) % n);
}

/* Keys of 6 to 45 bytes, so that every key compare path is taken. */
static void mk_init(struct mk *m, struct cache_shard *s, bool evicting)
{
	static const char pad[] = "----------------------------------------";

	m->s = s;
	m->e = calloc(MK_KEYS, sizeof(*m->e));
	assert_non_null(m->e);
	m->rng = 0x6d6f64656cull;
	m->now = T0;
	m->evicting = evicting;
	for (unsigned i = 0; i < MK_KEYS; i++) {
		snprintf(m->key[i], sizeof(m->key[i]), "mk%u:%.*s", i, i % 40,
			 pad);
		m->klen[i] = (uint32_t)strlen(m->key[i]);
		m->hv[i] = ml_hash(m->key[i], m->klen[i]);
	}
}

/* A hit must be the model's version, all of it. */
static void mk_expect_item(struct mk *m, unsigned i,
			   const struct cache_item *it)
{
	struct mk_entry *e = &m->e[i];

	assert_true(e->present);
	assert_int_equal(it->klen, m->klen[i]);
	assert_memory_equal(it->key, m->key[i], m->klen[i]);
	assert_int_equal(it->vlen, e->vlen);
	if (e->vlen)
		assert_memory_equal(it->value, e->val, e->vlen);
	assert_int_equal(it->flags, e->flags);
	assert_int_equal(it->exptime, e->exptime);
	assert_int_equal(it->cas, e->cas);
}

/* A miss is right for a key the model does not hold; for one it holds,
 * only when the shard evicts, and the model learns it. */
static void mk_learn_miss(struct mk *m, unsigned i)
{
	if (!m->e[i].present)
		return;
	assert_true(m->evicting);
	m->e[i].present = false;
	m->learnt++;
}

static void mk_observe(struct mk *m, unsigned i, int rc,
		       const struct cache_item *it)
{
	if (rc == 0) {
		mk_expect_item(m, i, it);
		return;
	}
	assert_int_equal(rc, -ENOENT);
	mk_learn_miss(m, i);
}

/* A new version was stored: its CAS is the newest, its bytes are ours. */
static void mk_stored(struct mk *m, unsigned i, const struct cache_item *it,
		      const uint8_t *val, uint32_t vlen, uint32_t flags,
		      uint32_t exptime)
{
	struct mk_entry *e = &m->e[i];

	assert_true(it->cas > m->last_cas);
	m->last_cas = it->cas;
	e->present = true;
	e->vlen = vlen;
	memmove(e->val, val, vlen);
	e->flags = flags;
	e->exptime = exptime;
	e->cas = it->cas;
	mk_expect_item(m, i, it);
}

static void mk_fill(struct mk *m, uint8_t *buf, uint32_t n)
{
	for (uint32_t j = 0; j < n; j++)
		buf[j] = (uint8_t)mk_rand(m);
}

static uint32_t mk_vlen(struct mk *m, uint32_t max)
{
	return mk_below(m, 10) < 7 ? mk_below(m, ML_MIN(101u, max + 1))
				   : mk_below(m, max + 1);
}

static uint32_t mk_exptime(struct mk *m)
{
	return mk_below(m, 10) ? 0 : m->now + 1 + mk_below(m, 4);
}

/* set, add, replace, append, prepend, and CAS stores. */
static void mk_store(struct mk *m, unsigned i, enum cache_mode mode,
		     bool with_cas)
{
	struct mk_entry *e = &m->e[i];
	uint8_t val[MK_VMAX], joined[MK_VMAX];
	bool join = mode == CACHE_APPEND || mode == CACHE_PREPEND;
	uint32_t vlen = mk_vlen(m, join ? MK_VMAX / 4 : MK_VMAX);
	struct cache_store r =
		req_of(m->hv[i], m->key[i], m->klen[i], val, vlen);
	struct cache_item it;
	bool cas_ok = true;
	int rc;

	if (join && e->present && e->vlen + vlen > MK_VMAX) {
		mode = CACHE_SET;
		join = false;
	}
	mk_fill(m, val, vlen);
	r.mode = mode;
	r.flags = mk_below(m, 3) ? 0 : (uint32_t)mk_rand(m);
	r.exptime = mk_exptime(m);
	if (with_cas) {
		cas_ok = e->present && mk_below(m, 2);
		r.cas = cas_ok ? e->cas : e->cas + 1 + mk_below(m, 5);
	}
	memset(&it, 0, sizeof(it));
	rc = cache_store(m->s, &r, &it);
	if (rc == -ENOMEM) { /* nothing is lost */
		assert_false(m->evicting);
		m->nomem++;
		return;
	}
	if (rc == 0) {
		uint32_t flags = r.flags, exptime = r.exptime;

		assert_true(e->present || mode == CACHE_SET ||
			    mode == CACHE_ADD);
		if (with_cas)
			assert_true(cas_ok);
		if (mode == CACHE_ADD)
			assert_true(!e->present || m->evicting);
		if (join) { /* the old item keeps its flags and exptime */
			if (mode == CACHE_APPEND) {
				memcpy(joined, e->val, e->vlen);
				memcpy(joined + e->vlen, val, vlen);
			} else {
				memcpy(joined, val, vlen);
				memcpy(joined + vlen, e->val, e->vlen);
			}
			mk_stored(m, i, &it, joined, e->vlen + vlen, e->flags,
				  e->exptime);
			return;
		}
		mk_stored(m, i, &it, val, vlen, flags, exptime);
		return;
	}
	if (rc == -EEXIST) { /* add of a held key, or a CAS mismatch */
		assert_true(e->present);
		assert_true(mode == CACHE_ADD || (with_cas && !cas_ok));
		return;
	}
	assert_int_equal(rc, -ENOENT); /* a CAS, replace or join found none */
	assert_true(with_cas || (mode != CACHE_SET && mode != CACHE_ADD));
	mk_learn_miss(m, i);
}

static void mk_delete(struct mk *m, unsigned i)
{
	struct mk_entry *e = &m->e[i];
	unsigned how = mk_below(m, 4);
	uint64_t cas = how == 0 ? e->cas : how == 1 ? e->cas + 7 : 0;
	int rc = cache_delete(m->s, m->hv[i], m->key[i], m->klen[i], cas);

	if (rc == 0) {
		assert_true(e->present && how != 1);
		e->present = false;
	} else if (rc == -EEXIST) {
		assert_true(e->present && how == 1);
	} else {
		assert_int_equal(rc, -ENOENT);
		mk_learn_miss(m, i);
	}
}

static void mk_get(struct mk *m, unsigned i, unsigned opts)
{
	struct cache_item it;

	memset(&it, 0, sizeof(it));
	mk_observe(
		m, i,
		cache_get(m->s, m->hv[i], m->key[i], m->klen[i], opts, 0, &it),
		&it);
}

static void mk_get_bulk(struct mk *m)
{
	unsigned n = 1 + mk_below(m, CACHE_BULK_MAX), idx[CACHE_BULK_MAX];
	const char *key[CACHE_BULK_MAX];
	uint32_t klen[CACHE_BULK_MAX];
	uint64_t hv[CACHE_BULK_MAX];
	struct cache_item out[CACHE_BULK_MAX];
	int rc[CACHE_BULK_MAX];
	unsigned hits, j;

	for (j = 0; j < n; j++) {
		idx[j] = mk_below(m, MK_KEYS);
		key[j] = m->key[idx[j]];
		klen[j] = m->klen[idx[j]];
		hv[j] = m->hv[idx[j]];
	}
	if (mk_below(m, 2))
		cache_prefetch_bulk(m->s, n, hv);
	hits = cache_get_bulk(m->s, n, hv, key, klen, out, rc);
	for (j = 0; j < n; j++) {
		hits -= rc[j] == 0;
		mk_observe(m, idx[j], rc[j], &out[j]);
	}
	assert_int_equal(hits, 0);
}

/* gat/touch: a hit takes the new exptime and keeps its CAS. */
static void mk_touch(struct mk *m, unsigned i)
{
	uint32_t exptime = mk_exptime(m);
	struct cache_item it;
	int rc;

	memset(&it, 0, sizeof(it));
	rc = cache_get(m->s, m->hv[i], m->key[i], m->klen[i], CACHE_GET_TOUCH,
		       exptime, &it);
	if (rc == -ENOMEM) {
		assert_false(m->evicting);
		m->nomem++;
		return;
	}
	if (rc == 0) {
		assert_true(m->e[i].present);
		m->e[i].exptime = exptime;
	}
	mk_observe(m, i, rc, &it);
}

/* A decimal value, then incr or decr on it: the answer is the number,
 * wrapped at 2^64 or stopped at 0, and the item holds its digits (padded
 * with spaces when it got shorter, as memcached does). */
static void mk_arith(struct mk *m, unsigned i)
{
	uint64_t v0 = mk_below(m, 2) ? mk_below(m, 1000)
				     : UINT64_MAX - mk_below(m, 1000);
	struct cache_arith a = {
		.hv = m->hv[i],
		.key = m->key[i],
		.klen = m->klen[i],
		.incr = mk_below(m, 2),
		.delta = mk_below(m, 2) ? mk_below(m, 2000) : mk_rand(m),
	};
	struct cache_store r;
	struct cache_item it;
	char num[24], got[24];
	uint64_t v, want;
	uint32_t n, j;
	int rc;

	n = (uint32_t)snprintf(num, sizeof(num), "%llu",
			       (unsigned long long)v0);
	r = req_of(m->hv[i], m->key[i], m->klen[i], num, n);
	memset(&it, 0, sizeof(it));
	rc = cache_store(m->s, &r, &it);
	if (rc == -ENOMEM) {
		assert_false(m->evicting);
		m->nomem++;
		return;
	}
	assert_int_equal(rc, 0);
	mk_stored(m, i, &it, (const uint8_t *)num, n, 0, 0);

	memset(&it, 0, sizeof(it));
	rc = cache_arith(m->s, &a, &v, &it);
	if (rc == -ENOMEM) {
		assert_false(m->evicting);
		m->nomem++;
		return;
	}
	if (rc == -ENOENT) {
		mk_learn_miss(m, i);
		return;
	}
	assert_int_equal(rc, 0);
	want = a.incr ? v0 + a.delta : a.delta > v0 ? 0 : v0 - a.delta;
	assert_true(v == want);
	n = (uint32_t)snprintf(got, sizeof(got), "%llu",
			       (unsigned long long)want);
	assert_true(it.vlen >= n);
	assert_memory_equal(it.value, got, n);
	for (j = n; j < it.vlen; j++)
		assert_int_equal(it.value[j], ' ');
	mk_stored(m, i, &it, (const uint8_t *)it.value, it.vlen, 0, 0);
}

static void mk_tick(struct mk *m)
{
	m->now += 1 + mk_below(m, 3);
	cache_set_time(m->s, m->now);
	for (unsigned i = 0; i < MK_KEYS; i++)
		if (m->e[i].present && m->e[i].exptime &&
		    m->e[i].exptime <= m->now)
			m->e[i].present = false;
}

static void mk_run(struct mk *m, unsigned ops)
{
	struct cache_stats st;
	unsigned held = 0;

	for (unsigned op = 0; op < ops; op++) {
		unsigned i = mk_below(m, MK_KEYS), r = mk_below(m, 100);

		if (r < 30)
			mk_store(m, i, CACHE_SET, false);
		else if (r < 34)
			mk_store(m, i, CACHE_ADD, false);
		else if (r < 38)
			mk_store(m, i, CACHE_REPLACE, false);
		else if (r < 42)
			mk_store(m, i, CACHE_APPEND, false);
		else if (r < 46)
			mk_store(m, i, CACHE_PREPEND, false);
		else if (r < 51)
			mk_store(m, i, CACHE_SET, true);
		else if (r < 58)
			mk_delete(m, i);
		else if (r < 76)
			mk_get(m, i, mk_below(m, 4) ? 0 : CACHE_GET_NOBUMP);
		else if (r < 86)
			mk_get_bulk(m);
		else if (r < 90)
			mk_touch(m, i);
		else if (r < 94)
			mk_arith(m, i);
		else if (r < 97)
			mk_tick(m);
		else if (r < 99)
			cache_sweep(m->s, 1 + mk_below(m, 64));
		else if (mk_below(m, 1000) == 0) {
			cache_flush(m->s);
			for (unsigned j = 0; j < MK_KEYS; j++)
				m->e[j].present = false;
		}
		if (op % 4096 == 0)
			check_mem(m->s);
	}
	/* every key, looked up once more, is what the model says */
	for (unsigned i = 0; i < MK_KEYS; i++) {
		mk_get(m, i, CACHE_GET_NOBUMP);
		held += m->e[i].present;
	}
	st = stats_of(m->s);
	print_message("model: %u keys held, %u misses learnt, %u out of "
		      "memory; %llu evictions, %llu moved to main, %llu "
		      "reclaimed, %llu overflow buckets\n",
		      held, m->learnt, m->nomem,
		      (unsigned long long)st.evictions,
		      (unsigned long long)st.moved_to_main,
		      (unsigned long long)st.reclaimed,
		      (unsigned long long)st.index_overflow);
	assert_int_equal(st.curr_items, held);
	check_mem(m->s);
	free(m->e);
}

/* With -M the shard may only compact, never drop: it must hold exactly
 * what the model holds, through overwrites, joins, CAS, deletes, arith,
 * touches, expiry, sweeps and flushes. Its keys outgrow it, so stores
 * also meet the ceiling, and those must lose nothing. */
static void test_model_exact(void **state)
{
	struct cache_params p = s3_params();
	static struct mk m;

	p.no_evict = true;
	mk_init(&m, fx_open(state, &p), false);
	mk_run(&m, MK_OPS);
	assert_true(stats_of(m.s).evictions == 0);
	assert_true(m.nomem > 0); /* the ceiling was reached */
}

/* Evicting, in a shard smaller than the model's keys: misses are allowed,
 * a wrong or resurrected value never is. */
static void test_model_evicting(void **state)
{
	struct cache_params p = s3_params();
	static struct mk m;

	p.mem_limit = 1 * MIB;
	mk_init(&m, fx_open(state, &p), true);
	mk_run(&m, MK_OPS);
	assert_true(stats_of(m.s).evictions > 0);
	assert_true(m.learnt > 0);
}

int main(void)
{
	const struct CMUnitTest lifecycle[] = {
		T(test_create_params),
		T(test_create_free_cycles),
	};
	const struct CMUnitTest index[] = {
		T(test_index_many_keys),
		T(test_index_items_hint),
		T(test_index_bucket_overflow),
		T(test_index_bucket_overflow_same_tag),
		T(test_index_chain_grows),
		T(test_index_chain_ghosts),
		T(test_index_key_compare),
		T(test_index_edge_hashes),
		T(test_index_bulk),
		T(test_index_bulk_chain),
		T(test_index_bulk_expired_chain),
		T(test_index_bulk_misses_and_hit_marks),
		T(test_index_prefetch_changes_nothing),
	};
	const struct CMUnitTest items[] = {
		T(test_items_sizes),	   T(test_items_set_overwrites),
		T(test_items_add_replace), T(test_items_append_prepend),
		T(test_items_too_big),	   T(test_items_mem_ceiling),
		T(test_items_no_evict),	   T(test_items_flush),
		T(test_items_stats),	   T(test_items_fetched_nobump),
	};
	const struct CMUnitTest s3fifo[] = {
		T(test_s3fifo_scan_resistance),
		T(test_s3fifo_read_once_is_kept),
		T(test_s3fifo_prefetch_is_not_a_hit),
		T(test_s3fifo_ghost),
		T(test_s3fifo_all_hot),
	};
	const struct CMUnitTest expiry[] = {
		T(test_expiry_lazy),  T(test_expiry_store_in_past),
		T(test_expiry_modes), T(test_expiry_touch),
		T(test_expiry_sweep), T(test_expiry_sweep_chain),
	};
	const struct CMUnitTest cas[] = {
		T(test_cas_one_shard),
		T(test_cas_two_shards),
		T(test_cas_four_shards),
		T(test_cas_four_shards_spare_bits),
		T(test_cas_compare),
		T(test_cas_invalidate),
		T(test_cas_store_invalidate),
		T(test_cas_mark_win),
		T(test_items_key_binary),
		T(test_cas_arith),
	};
	const struct CMUnitTest model[] = {
		T(test_model_exact),
		T(test_model_evicting),
	};
	int failed = 0;

	failed += cmocka_run_group_tests_name("store_lifecycle", lifecycle,
					      NULL, NULL);
	failed += cmocka_run_group_tests_name("store_index", index, NULL, NULL);
	failed += cmocka_run_group_tests_name("store_items", items, NULL, NULL);
	failed +=
		cmocka_run_group_tests_name("store_s3fifo", s3fifo, NULL, NULL);
	failed +=
		cmocka_run_group_tests_name("store_expiry", expiry, NULL, NULL);
	failed += cmocka_run_group_tests_name("store_cas", cas, NULL, NULL);
	failed += cmocka_run_group_tests_name("store_model", model, NULL, NULL);
	return failed ? 1 : 0;
}

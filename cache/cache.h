/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * cache: one shard of the node's cache, and the memcached protocol that
 * reaches it (parse -> process -> compose).
 *
 * A shard is owned by exactly one core and has no locks: every function
 * taking a struct cache_shard runs on that core. The store knows nothing of
 * the wire; the parser knows nothing of the store; proto_execute() is the
 * one bridge between them.
 */
#ifndef MEMLANE_CACHE_H
#define MEMLANE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------------
 * The shard
 * ---------------------------------------------------------------------- */

struct cache_shard;

struct cache_item;

struct cache_params {
	/* Hard ceiling, in allocator-real bytes, for everything the shard
	 * allocates: segments and index. */
	size_t mem_limit;
	/* Largest item accepted (memcached's -I); 0 means 1 MiB. */
	size_t item_size_max;
	/* Bytes per storage segment; 0 means 1 MiB, and it is raised to hold
	 * item_size_max. Tests use small segments to reach limits fast. */
	size_t segment_size;
	/* Expected number of items; sizes the index up front so that a
	 * known load does not pay for growth. 0 lets the index grow. */
	size_t items_hint;
	/* CAS uniqueness across the node: this shard's id and the number of
	 * low CAS bits reserved for shard ids (ids < 1 << cas_id_bits). */
	uint32_t cas_id;
	uint32_t cas_id_bits;
	/* The clock at creation, unix seconds (see cache_set_time()). */
	uint32_t now;
	/* memcached's -M: answer out of memory instead of evicting. */
	bool no_evict;
	/* memcached's -C: every CAS reads 0 and none matches. */
	bool no_cas;
	/* memcached's -L: segments on transparent huge pages. */
	bool huge_pages;
	/* An item's size by the protocol's reckoning (memcached's -I), to
	 * which an append or prepend's joined item is held as well as to
	 * the shard's own (-E2BIG), and past MC_SLAB_CHUNK_MAX of which a
	 * value is no number to incr or decr; NULL: only the shard's own. */
	size_t (*item_size)(uint32_t klen, uint32_t vlen, uint32_t flags);
	/* Told of each item evicted (watch evictions), before it goes;
	 * NULL: nobody asks. */
	void (*evicted)(void *arg, const struct cache_item *it);
	void *evicted_arg;
};

/* A stored item as seen by a reader. Pointers stay valid until the next
 * call that may store into or evict from the same shard. */
struct cache_item {
	const char *key;
	const char *value;
	uint32_t klen;
	uint32_t vlen;
	uint32_t flags;
	uint32_t exptime; /* absolute unix seconds, 0 = never */
	uint32_t atime;	  /* last access, unix seconds */
	uint64_t cas;
	bool fetched;	 /* had been fetched before this access */
	bool stale;	 /* marked stale by a meta invalidate */
	bool win_sent;	 /* a recache win (W) has been handed out */
	bool key_binary; /* stored through a base64 key (meta b) */
};

/* Shard-wide counters, in memcached's terms. */
struct cache_stats {
	uint64_t curr_items;
	uint64_t total_items;
	uint64_t bytes;	   /* sum of stored item sizes */
	uint64_t mem_used; /* allocator-real bytes held (segments + index) */
	uint64_t mem_limit;
	uint64_t evictions;
	uint64_t expired_unfetched;
	uint64_t evicted_unfetched;
	uint64_t reclaimed; /* expired items whose space was reclaimed */
	/* items a command looked up and found expired, or flushed (a miss) */
	uint64_t get_expired;
	uint64_t get_flushed;
	uint64_t crawler_checked; /* lru_crawler crawl's, as memcached's */
	uint64_t crawler_reclaimed;
	uint64_t index_buckets;
	uint64_t index_overflow;
	uint64_t segments;
	uint64_t small_items; /* items in the S3-FIFO small queue */
	uint64_t main_items;  /* items in the S3-FIFO main queue */
	uint64_t ghost_hits;  /* inserts that went straight to main */
	uint64_t moved_to_main;
	uint64_t reinserted; /* main items given another round */
	uint64_t gated;	     /* items dropped by the gate (cache_set_gate) */
};

/* Returns a new shard, or NULL with errno set (EINVAL for a bad params,
 * ENOMEM when mem_limit cannot hold one segment and the index). */
struct cache_shard *cache_create(const struct cache_params *p);
/* Frees the shard and all its memory; takes NULL. */
void cache_free(struct cache_shard *s);

/* Sets the shard's clock (unix seconds). Runs on the owner core, called
 * by its loop between bursts and by tests that need time to pass. */
void cache_set_time(struct cache_shard *s, uint32_t now);
uint32_t cache_time(const struct cache_shard *s);

/* Reclaims expired items: inspects at most budget index buckets, resuming
 * where the previous call stopped. Returns the number of items reclaimed. */
unsigned cache_sweep(struct cache_shard *s, unsigned budget);

/* lru_crawler crawl: reclaims everything expired or flushed, in one pass
 * through the index, counting what it checks and reclaims in
 * crawler_checked and crawler_reclaimed. Returns what it reclaimed. */
unsigned cache_crawl(struct cache_shard *s);

/* A walk of every live item of a shard, a slice at a time. Start with a
 * zeroed struct; the walk is done when cache_walk_step returns true. */
struct cache_walk {
	uint32_t bucket; /* next index bucket */
	bool done;
	uint64_t visited; /* items handed to the callback so far */
};

/* it, and the strings it points to, are valid during the call only; the
 * callback must not change the shard. */
typedef void cache_walk_fn(void *arg, const struct cache_item *it);

/* Hands each live item of the next budget index buckets to fn. An item
 * that stays in the shard for the whole walk is visited at least once,
 * however the index grows meanwhile (one that moves as the index splits
 * may be visited twice); one stored or dropped during the walk may or may
 * not be. Returns whether the walk is done. */
bool cache_walk_step(struct cache_shard *s, struct cache_walk *w,
		     unsigned budget, cache_walk_fn *fn, void *arg);

/*
 * A gate: a way to drop, in a slice of time, every item written before a
 * moment that a predicate names (the node ring's ranges a node has just
 * been given: what it held there from before may be older than what the
 * owner held meanwhile). cache_mark() is the shard's write clock: an item
 * stored from now on, or given a new CAS, is written at or after it. With
 * a gate set, an item written before `below` is passed to fn, with when
 * it was written; when fn says it is gone, every command takes it as a
 * miss and it is reclaimed where it is found: on access, by the sweep,
 * by eviction and by cache_reap_step(). fn NULL takes the gate away.
 */
typedef bool cache_gate_fn(void *arg, const char *key, uint32_t klen,
			   uint64_t written);
uint64_t cache_mark(const struct cache_shard *s);
void cache_set_gate(struct cache_shard *s, uint64_t below, cache_gate_fn *fn,
		    void *arg);
/* Reclaims what has expired, or what the gate drops, in the next budget
 * index buckets of a walk (struct cache_walk, started zeroed). An item
 * gated when the walk starts is gone when it is done. Returns whether
 * the walk is done. */
bool cache_reap_step(struct cache_shard *s, struct cache_walk *w,
		     unsigned budget);

/* Drops every item (flush_all): from now on each is a miss; its memory
 * is reclaimed as the sweep, a lookup or eviction meets it. */
void cache_flush(struct cache_shard *s);

/* memcached's cache_memlimit: a new ceiling, at most the one the shard
 * was made with and at least two segments (-ERANGE otherwise). Items
 * held beyond it are evicted as new ones need room. */
int cache_set_mem_limit(struct cache_shard *s, size_t bytes);

void cache_get_stats(const struct cache_shard *s, struct cache_stats *st);

/*
 * Every hv passed to a shard must be ml_hash(key, klen) (common.h): the
 * shard recomputes it from stored keys when it grows its index and when
 * it evicts, and a different value would lose the key.
 */

/* Store modes (memcached's commands). */
enum cache_mode {
	CACHE_SET,
	CACHE_ADD,
	CACHE_REPLACE,
	CACHE_APPEND,
	CACHE_PREPEND,
};

struct cache_store {
	uint64_t hv;
	const char *key;
	uint32_t klen;
	uint32_t vlen;
	const void *value;
	uint32_t flags;
	uint32_t exptime; /* absolute, 0 = never */
	uint64_t cas;	  /* compare with this CAS first; 0 = don't */
	enum cache_mode mode;
	/* meta I: a CAS older than the item's stores the value as stale
	 * (keeping the item's exptime and win) instead of EXISTS */
	bool invalidate;
	/* the key came base64-encoded (meta b); memcached remembers it */
	bool key_binary;
	/* append/prepend on a miss: create the item with this exptime */
	bool vivify;
	uint32_t vivify_exptime;
};

/*
 * Stores an item. Returns 0 when stored (out, if not NULL, describes the
 * new item), or
 *   -EEXIST  add found the key, or the CAS did not match (EXISTS);
 *   -ENOENT  replace/append/prepend found no key, or a CAS store found
 *            none (NOT_FOUND);
 *   -E2BIG   the item is larger than item_size_max;
 *   -ENOMEM  nothing could be evicted to make room;
 *   -EINVAL  klen is 0 or over 250, or mode is unknown.
 * For add, -EEXIST also bumps the existing item (frequency and last
 * access) without marking it fetched, as memcached does.
 */
int cache_store(struct cache_shard *s, const struct cache_store *req,
		struct cache_item *out);

/* Lookup options. */
#define CACHE_GET_NOBUMP 0x1 /* meta u: no hit bit, atime or frequency */
#define CACHE_GET_TOUCH	 0x2 /* set exptime (gat, touch, mg T) */

/* Looks a key up. Returns 0 and fills out on a hit, -ENOENT on a miss
 * (expired and flushed items are misses, reclaimed on the spot and
 * counted in get_expired and get_flushed, as by every command's lookup). */
int cache_get(struct cache_shard *s, uint64_t hv, const char *key,
	      uint32_t klen, unsigned opts, uint32_t exptime,
	      struct cache_item *out);

/* Bulk lookup of n keys (n <= CACHE_BULK_MAX): prefetches every bucket,
 * then every candidate item, then resolves. rc[i] is 0 or -ENOENT as for
 * cache_get(). Returns the number of hits. */
#define CACHE_BULK_MAX 64
unsigned cache_get_bulk(struct cache_shard *s, unsigned n, const uint64_t *hv,
			const char *const *key, const uint32_t *klen,
			struct cache_item *out, int *rc);

/* Brings into cache what an operation on each of n keys (n <= CACHE_BULK_MAX,
 * more are ignored) will read first: its bucket chain's first two buckets
 * and the item of its first tag match. Changes nothing, counts nothing and
 * cannot fail. Call it for the keys of a burst just before storing,
 * deleting or counting them one by one: their misses then overlap. */
void cache_prefetch_bulk(const struct cache_shard *s, unsigned n,
			 const uint64_t *hv);

/* Deletes a key. cas != 0 deletes only if it matches. Returns 0, -ENOENT,
 * or -EEXIST on a CAS mismatch. */
int cache_delete(struct cache_shard *s, uint64_t hv, const char *key,
		 uint32_t klen, uint64_t cas);

/* Meta invalidate (md I): marks the item stale, gives it a new CAS and, if
 * set_exptime, a new exptime. Returns 0, -ENOENT or -EEXIST (CAS). */
int cache_invalidate(struct cache_shard *s, uint64_t hv, const char *key,
		     uint32_t klen, uint64_t cas, bool set_exptime,
		     uint32_t exptime);

/* Marks that a recache win has been handed out for this item (mg W). */
void cache_mark_win(struct cache_shard *s, uint64_t hv, const char *key,
		    uint32_t klen);

struct cache_arith {
	uint64_t hv;
	const char *key;
	uint32_t klen;
	bool incr;
	uint64_t delta;
	uint64_t cas; /* compare first; 0 = don't */
	bool vivify;  /* create on miss with initial and exptime */
	uint64_t initial;
	uint32_t vivify_exptime;
	bool set_exptime; /* on success, set exptime */
	uint32_t exptime;
};

/*
 * incr/decr: decr stops at 0, incr wraps at 2^64. Returns 0 with *value
 * and out (if not NULL) set, or
 *   -ENOENT  no such key (and no vivify);
 *   -EINVAL  the stored value is not a decimal number of at most 20 digits;
 *   -EEXIST  CAS mismatch;
 *   -ENOMEM  no room for the new value.
 */
int cache_arith(struct cache_shard *s, const struct cache_arith *req,
		uint64_t *value, struct cache_item *out);

#include "proto.h"

#endif /* MEMLANE_CACHE_H */

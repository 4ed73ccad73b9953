/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Visits of the whole index, a slice at a time so that the core that owns
 * the shard keeps serving between slices: the expiry sweep, which
 * reclaims what has expired, the reap, which does the same once through
 * the index for what a gate drops, and the walk, which hands every live
 * item to a callback (the digest of a node's keys, and later dumps).
 */
#include <errno.h>

#include "store_internal.h"

/* ---------------------------------------------------------------------
 * Expiry sweep
 * ------------------------------------------------------------------- */
/* Reclaims what is gone in index bucket bi's chain; returns how many.
 * crawl: an lru_crawler crawl's pass, counted as memcached's crawler
 * counts (items checked, crawler_reclaimed). */
static unsigned reap_bucket(struct cache_shard *s, uint32_t bi, bool crawl)
{
	struct bucket *head = pbucket(s, bi), *b;
	unsigned reclaimed = 0;

	for (b = head; b; b = bucket_next(s, b)) {
		for (unsigned i = 0; i < BUCKET_SLOTS; i++) {
			uint64_t sl = slot_get(b, i);
			struct item it;
			struct pos pos = {b, i};

			if (!(sl & SLOT_USED) || (sl & SLOT_GHOST))
				continue;
			s->st.crawler_checked += crawl;
			item_decode(s, slot_seg(sl), slot_off(s, sl), &it);
			if (!item_expired(s, &it))
				continue;
			if (crawl &&
			    (item_timed_out(s, &it) || item_flushed(s, &it)))
				s->st.crawler_reclaimed++;
			else
				item_count_reclaim(s, &it, *it.bits);
			store_unlink(s, &pos, &it);
			reclaimed++;
		}
	}
	if (reclaimed)
		store_chain_trim(s, head);
	return reclaimed;
}

unsigned cache_sweep(struct cache_shard *s, unsigned budget)
{
	unsigned reclaimed = 0;

	for (; budget > 0; budget--) {
		uint32_t bi = s->sweep_pos;

		if (bi >= s->nbuckets)
			bi = 0;
		s->sweep_pos = bi + 1;
		reclaimed += reap_bucket(s, bi, false);
	}
	return reclaimed;
}

unsigned cache_crawl(struct cache_shard *s)
{
	unsigned reclaimed = 0;

	for (uint32_t bi = 0; bi < s->nbuckets; bi++)
		reclaimed += reap_bucket(s, bi, true);
	s->flush_reap = false;
	return reclaimed;
}

/* ---------------------------------------------------------------------
 * The gate
 * ------------------------------------------------------------------- */

uint64_t cache_mark(const struct cache_shard *s)
{
	return s->cas_next;
}

void cache_set_gate(struct cache_shard *s, uint64_t below, cache_gate_fn *fn,
		    void *arg)
{
	s->gate_below = fn ? below : 0;
	s->gate_fn = fn;
	s->gate_arg = arg;
}

/* In index order, as the walk below: an item that moves as the index
 * splits moves to a bucket not yet reaped. */
bool cache_reap_step(struct cache_shard *s, struct cache_walk *w,
		     unsigned budget)
{
	for (; budget > 0 && !w->done; budget--) {
		if (w->bucket >= s->nbuckets) {
			w->done = true;
			break;
		}
		w->visited += reap_bucket(s, w->bucket, false);
		w->bucket++;
	}
	return w->done;
}

/* ---------------------------------------------------------------------
 * Walk
 * ------------------------------------------------------------------- */

/*
 * Buckets are visited in index order. The index grows by splitting bucket
 * split into split and split + 2^level; a key can only move to a bucket
 * above the one it was in, so an item that stays in the shard from the
 * walk's start to its end is seen at least once: the bucket it moves to
 * is beyond the walk's position when it moves from a bucket the walk has
 * not reached, and an item moved from a bucket already walked lands in a
 * new bucket, which the walk reaches later since nbuckets is read afresh
 * every step. An item may then be seen twice; the callback counts what
 * it is given, so a digest just adds the same key again.
 */
bool cache_walk_step(struct cache_shard *s, struct cache_walk *w,
		     unsigned budget, cache_walk_fn *fn, void *arg)
{
	for (; budget > 0 && !w->done; budget--) {
		if (w->bucket >= s->nbuckets) {
			w->done = true;
			break;
		}
		for (struct bucket *b = pbucket(s, w->bucket); b;
		     b = bucket_next(s, b)) {
			for (unsigned i = 0; i < BUCKET_SLOTS; i++) {
				uint64_t sl = slot_get(b, i);
				struct cache_item view;
				struct item it;

				if (!(sl & SLOT_USED) || (sl & SLOT_GHOST))
					continue;
				item_decode(s, slot_seg(sl), slot_off(s, sl),
					    &it);
				if (item_expired(s, &it))
					continue;
				item_view(s, &it, &view);
				w->visited++;
				fn(arg, &view);
			}
		}
		w->bucket++;
	}
	return w->done;
}

int cache_set_mem_limit(struct cache_shard *s, size_t bytes)
{
	if (bytes > s->mem_limit_max || bytes < 2 * s->seg_real)
		return -ERANGE;
	/* what is held beyond it goes as new items need room */
	s->mem_limit = bytes;
	return 0;
}

void store_tell_evicted(struct cache_shard *s, const struct item *it)
{
	struct cache_item view;

	item_view(s, it, &view);
	s->evicted(s->evicted_arg, &view);
}

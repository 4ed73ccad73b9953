/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The shard: index, items, S3-FIFO eviction, expiry and CAS.
 *
 * Items live in segments, contiguous blocks from the shard's own jemalloc
 * arena, written append-only. Two FIFO queues of segments make S3-FIFO:
 * new keys enter the small queue; when the oldest small segment is
 * evicted, its items that were hit since they were written move to the
 * main queue and the others leave a ghost behind. The oldest main segment
 * gives its hit items another round (frequency minus one) and drops the
 * rest. A hit only bumps a 2-bit counter in the index slot: no list is
 * touched. Space of overwritten and deleted items is reclaimed when their
 * segment is evicted.
 *
 * The index is a linear-hashing table of 64-byte buckets, seven slots
 * each, with overflow buckets chained from a pool. It grows one bucket at
 * a time (no stop-the-world rehash), so its memory follows the number of
 * items. Ghosts are index slots without an item: they cost nothing but
 * otherwise-empty slots.
 *
 * Memory: segments, index chunks and overflow chunks all come from the
 * shard's arena, are counted with their real (sallocx) sizes, and their
 * sum never exceeds mem_limit.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <jemalloc/jemalloc.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "cache.h"
#include "common.h"
#include "store_internal.h"

/* ---------------------------------------------------------------------
 * Memory from the shard's arena
 * ------------------------------------------------------------------- */

/*
 * Arenas of freed shards are reset (every allocation in them is dropped at
 * once) and kept for the next shard. jemalloc keeps the address space of a
 * destroyed arena, so one arena per shard ever created would let
 * short-lived shards (tests, the fuzzer) grow the process's mappings
 * without bound. Shards are created and freed at setup only; the lock is
 * never on a request's path.
 */
#define ARENA_POOL 64

/* memcached's default slab_chunk_max: an item larger by item_size is
 * kept in chunks, and memcached's incr and decr take it for no number */
#define MC_SLAB_CHUNK_MAX (512u * 1024u)

static pthread_mutex_t arena_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned arena_pool[ARENA_POOL];
static unsigned arena_pool_n;

static int arena_take(unsigned *arena)
{
	size_t sz = sizeof(*arena);
	int rc = 0;

	pthread_mutex_lock(&arena_pool_lock);
	if (arena_pool_n)
		*arena = arena_pool[--arena_pool_n];
	else if (mallctl("arenas.create", arena, &sz, NULL, 0))
		rc = -ENOMEM;
	pthread_mutex_unlock(&arena_pool_lock);
	return rc;
}

static void arena_give(unsigned arena)
{
	char name[64];

	snprintf(name, sizeof(name), "arena.%u.reset", arena);
	mallctl(name, NULL, NULL, NULL, 0);
	pthread_mutex_lock(&arena_pool_lock);
	if (arena_pool_n < ARENA_POOL) {
		arena_pool[arena_pool_n++] = arena;
	} else {
		snprintf(name, sizeof(name), "arena.%u.destroy", arena);
		mallctl(name, NULL, NULL, NULL, 0);
	}
	pthread_mutex_unlock(&arena_pool_lock);
}

static void *arena_alloc(struct cache_shard *s, size_t size, bool zero,
			 size_t *real)
{
	int fl = MALLOCX_ARENA(s->arena) | MALLOCX_TCACHE_NONE;
	void *p = mallocx(size, zero ? fl | MALLOCX_ZERO : fl);

	if (p && real)
		*real = sallocx(p, fl);
	return p;
}

static void arena_free(struct cache_shard *s, void *p)
{
	if (p)
		dallocx(p, MALLOCX_ARENA(s->arena) | MALLOCX_TCACHE_NONE);
}

/* ---------------------------------------------------------------------
 * Items
 * ------------------------------------------------------------------- */

/* Largest size an item can take in any segment. */
static uint32_t item_size_bound(uint32_t klen, uint32_t vlen, uint32_t flags,
				uint32_t exptime)
{
	return 1 + klen + 1 + varint_len(vlen) + 10 + 4 + (flags ? 4 : 0) +
	       (exptime ? 4 : 0) + vlen;
}

/* Room to reserve for an item: its bound plus alignment padding. */
static inline uint32_t item_room(const struct cache_shard *s, uint32_t bound)
{
	return bound + (1u << s->off_shift) - 1;
}

/* Where the old item's value goes in a new version of it. */
enum old_use { OLD_NONE, OLD_FIRST, OLD_SECOND };

/* What a new item is made of: the header fields and up to two value
 * pieces (append/prepend join the old value and the new data). */
struct item_src {
	const char *key;
	uint32_t klen;
	uint32_t flags;
	uint32_t exptime;
	uint32_t atime;
	uint64_t cas_ctr;
	uint8_t bits; /* ITEM_FETCHED, ITEM_STALE, ITEM_WIN, ITEM_BINKEY */
	const void *v1;
	uint32_t l1;
	const void *v2;
	uint32_t l2;
	const void *pad; /* l3 bytes of ' ' if not NULL */
	uint32_t l3;
	uint8_t old; /* enum old_use */
};

/* Writes an item at the open end of seg; the caller reserved the room. */
static uint32_t item_write(struct cache_shard *s, uint32_t seg,
			   const struct item_src *src)
{
	struct seg *sg = &s->segs[seg];
	uint32_t unit = 1u << s->off_shift;
	uint32_t off = (sg->used + unit - 1) & ~(unit - 1);
	uint8_t *p = (uint8_t *)sg->data + off;
	uint32_t vlen = src->l1 + src->l2 + src->l3;
	uint8_t bits = src->bits & ITEM_KEEP;

	*p++ = (uint8_t)src->klen;
	memcpy(p, src->key, src->klen);
	p += src->klen;
	if (src->flags)
		bits |= ITEM_FLAGS;
	if (src->exptime)
		bits |= ITEM_EXP;
	*p++ = bits;
	p += varint_put(p, vlen);
	p += varint_put(p, zigzag((int64_t)(src->cas_ctr - sg->cas_base)));
	put32(p, src->atime);
	p += 4;
	if (src->flags) {
		put32(p, src->flags);
		p += 4;
	}
	if (src->exptime) {
		put32(p, src->exptime);
		p += 4;
	}
	if (src->l1)
		memcpy(p, src->v1, src->l1);
	p += src->l1;
	if (src->l2)
		memcpy(p, src->v2, src->l2);
	p += src->l2;
	if (src->l3)
		memset(p, ' ', src->l3);
	p += src->l3;
	sg->used = (uint32_t)(p - (uint8_t *)sg->data);
	sg->live_bytes += sg->used - off;
	return off;
}

/* ---------------------------------------------------------------------
 * Index
 * ------------------------------------------------------------------- */

static inline uint64_t slot_make(const struct cache_shard *s, uint64_t hv,
				 uint32_t seg, uint32_t off, uint64_t freq)
{
	return ((hv >> TAG_SHIFT) & TAG_MASK) << SLOT_TAG_SHIFT | SLOT_USED |
	       freq << SLOT_FREQ_SHIFT | (uint64_t)seg << SLOT_SEG_SHIFT |
	       off >> s->off_shift;
}

static inline uint64_t slot_tagbits(uint64_t hv)
{
	return ((hv >> TAG_SHIFT) & TAG_MASK) << SLOT_TAG_SHIFT | SLOT_USED;
}

/* Tag + used + ghost bits: what a lookup compares. */
#define SLOT_MATCH_MASK (TAG_MASK << SLOT_TAG_SHIFT | SLOT_USED | SLOT_GHOST)

static inline uint32_t bucket_of(const struct cache_shard *s, uint64_t hv)
{
	uint32_t b = (uint32_t)hv & ((1u << s->level) - 1);

	if (b < s->split)
		b = (uint32_t)hv & ((2u << s->level) - 1);
	return b;
}

/* A ghost counts while fewer keys than the cache holds have been
 * evicted from small after it (S3-FIFO's ghost queue, sized like the
 * cache, without a queue). */
static inline bool ghost_fresh(const struct cache_shard *s, uint64_t sl)
{
	uint64_t age = (s->ghost_clock - (sl & SLOT_REF_MASK)) & SLOT_REF_MASK;

	return age <= s->st.curr_items;
}

#define BUCKET_ALL 0x55555u /* every slot, as the masks below number them */
_Static_assert(BUCKET_SLOTS == 10, "BUCKET_ALL has a bit per slot");

/* Slots of b whose top 16 bits, masked by m, equal w: bit 2i is set for
 * slot i. */
static inline unsigned bucket_cmp(const struct bucket *b, uint16_t m,
				  uint16_t w)
{
#ifdef __SSE2__
	__m128i vw = _mm_set1_epi16((short)w), vm = _mm_set1_epi16((short)m);
	__m128i a = _mm_loadu_si128((const __m128i *)(const void *)&b->hi[0]);
	__m128i c = _mm_loadu_si128((const __m128i *)(const void *)&b->hi[2]);
	unsigned ma = (unsigned)_mm_movemask_epi8(
		_mm_cmpeq_epi16(_mm_and_si128(a, vm), vw));
	unsigned mc = (unsigned)_mm_movemask_epi8(
		_mm_cmpeq_epi16(_mm_and_si128(c, vm), vw));

	return (ma | mc << 4) & BUCKET_ALL;
#else
	unsigned r = 0;

	for (unsigned i = 0; i < BUCKET_SLOTS; i++)
		if ((b->hi[i] & m) == w)
			r |= 1u << (2 * i);
	return r;
#endif
}

/* Slots of b whose tag, used and ghost bits equal those of want. */
static inline unsigned bucket_match(const struct bucket *b, uint64_t want)
{
	return bucket_cmp(b, (uint16_t)(SLOT_MATCH_MASK >> 32),
			  (uint16_t)(want >> 32));
}

/* Slots of b that are not in use. */
static inline unsigned bucket_free(const struct bucket *b)
{
	return bucket_cmp(b, (uint16_t)(SLOT_USED >> 32), 0);
}

/* Slots of b that hold no item: free, or a ghost. */
static inline unsigned bucket_reusable(const struct bucket *b)
{
	return bucket_free(b) | bucket_cmp(b, (uint16_t)(SLOT_GHOST >> 32),
					   (uint16_t)(SLOT_GHOST >> 32));
}

/* Compares a stored key (klen byte first) with key, without a call for
 * the usual short keys. */
static inline bool key_eq(const uint8_t *stored, const char *key, uint32_t klen)
{
	const uint8_t *a = stored + 1;
	uint64_t x, y, u, v;

	if (stored[0] != klen)
		return false;
	if (klen < 8 || klen > 16)
		return memcmp(a, key, klen) == 0;
	memcpy(&x, a, 8);
	memcpy(&y, key, 8);
	memcpy(&u, a + klen - 8, 8);
	memcpy(&v, key + klen - 8, 8);
	return ((x ^ y) | (u ^ v)) == 0;
}

static inline const uint8_t *slot_item(const struct cache_shard *s, uint64_t sl)
{
	return (const uint8_t *)s->segs[slot_seg(sl)].data + slot_off(s, sl);
}

/* Whether any of the ghost slots m of b is fresh. */
static bool ghost_among(const struct cache_shard *s, const struct bucket *b,
			unsigned m)
{
	for (; m; m &= m - 1)
		if (ghost_fresh(s, slot_get(b, (unsigned)__builtin_ctz(m) / 2)))
			return true;
	return false;
}

/*
 * Finds the item for key in the chain of hv. On a hit returns true with
 * *pos and *it filled. Also reports the first free slot (or NULL) and a
 * ghost with the key's tag, if any, for an insert that follows.
 */
static bool index_find(const struct cache_shard *s, uint64_t hv,
		       const char *key, uint32_t klen, struct pos *pos,
		       struct item *it, struct pos *hole, bool *ghost)
{
	uint64_t want = slot_tagbits(hv);
	struct bucket *b = pbucket(s, bucket_of(s, hv));

	if (hole)
		hole->b = NULL;
	if (ghost)
		*ghost = false;
	for (; b; b = bucket_next(s, b)) {
		/* slots looked at: all of them, or those before a hit */
		unsigned seen = ~0u, m, i = 0;
		uint64_t sl = 0;

		for (m = bucket_match(b, want); m; m &= m - 1) {
			i = (unsigned)__builtin_ctz(m) / 2;
			sl = slot_get(b, i);
			if (key_eq(slot_item(s, sl), key, klen)) {
				seen = (1u << (2 * i)) - 1;
				break;
			}
		}
		if (hole && !hole->b && (m = bucket_free(b) & seen)) {
			hole->b = b;
			hole->i = (unsigned)__builtin_ctz(m) / 2;
		}
		if (ghost && !*ghost)
			*ghost = ghost_among(
				s, b,
				bucket_match(b, want | SLOT_GHOST) & seen);
		if (seen != ~0u) {
			pos->b = b;
			pos->i = i;
			item_decode(s, slot_seg(sl), slot_off(s, sl), it);
			return true;
		}
	}
	return false;
}

/* index_find() for readers: no hole, no ghost. */
static inline bool index_lookup(const struct cache_shard *s, uint64_t hv,
				const char *key, uint32_t klen, struct pos *pos,
				struct item *it)
{
	uint64_t want = slot_tagbits(hv);
	struct bucket *b = pbucket(s, bucket_of(s, hv));

	do {
		for (unsigned m = bucket_match(b, want); m; m &= m - 1) {
			unsigned i = (unsigned)__builtin_ctz(m) / 2;
			uint64_t sl = slot_get(b, i);

			if (!key_eq(slot_item(s, sl), key, klen))
				continue;
			pos->b = b;
			pos->i = i;
			item_decode(s, slot_seg(sl), slot_off(s, sl), it);
			return true;
		}
		b = bucket_next(s, b);
	} while (b);
	return false;
}

/* Finds the slot that refers to (seg, off) for an item whose key hashes
 * to hv. */
static bool index_find_ref(const struct cache_shard *s, uint64_t hv,
			   uint32_t seg, uint32_t off, struct pos *pos)
{
	uint64_t ref = (uint64_t)seg << SLOT_SEG_SHIFT | off >> s->off_shift;
	uint64_t want = slot_tagbits(hv);
	struct bucket *b = pbucket(s, bucket_of(s, hv));

	for (; b; b = bucket_next(s, b)) {
		for (unsigned m = bucket_match(b, want); m; m &= m - 1) {
			unsigned i = (unsigned)__builtin_ctz(m) / 2;

			if ((slot_get(b, i) & SLOT_REF_MASK) == ref) {
				pos->b = b;
				pos->i = i;
				return true;
			}
		}
	}
	return false;
}

static void mem_add(struct cache_shard *s, size_t n)
{
	s->mem_used += n;
}

static int mem_make_room(struct cache_shard *s, size_t bytes);

/* Makes sure one overflow bucket is free, so that the insert that
 * follows never allocates (and so never evicts) half-way. */
static int ovf_ensure(struct cache_shard *s)
{
	struct bucket *chunk;
	size_t real;
	int rc;

	if (s->ovf_free)
		return 0;
	if (s->ovf_nchunks == s->chunk_slots)
		return -ENOMEM;
	rc = mem_make_room(s, s->chunk_real);
	if (rc)
		return rc;
	if (s->ovf_free) /* eviction emptied some */
		return 0;
	chunk = arena_alloc(s, CHUNK_BUCKETS * sizeof(struct bucket), true,
			    &real);
	if (!chunk)
		return -ENOMEM;
	mem_add(s, real);
	s->ovf_chunks[s->ovf_nchunks++] = chunk;
	/* id 0 means "none": the first chunk starts its free list at 1 */
	for (uint32_t i = CHUNK_BUCKETS; i-- > 0;) {
		uint32_t id = (s->ovf_nchunks - 1) * CHUNK_BUCKETS + i;

		if (id == 0)
			continue;
		chunk[i].next = s->ovf_free;
		s->ovf_free = id;
	}
	s->ovf_count += CHUNK_BUCKETS;
	s->st.index_overflow = s->ovf_used;
	return 0;
}

static uint32_t ovf_take(struct cache_shard *s)
{
	uint32_t id = s->ovf_free;
	struct bucket *b = obucket(s, id);

	s->ovf_free = b->next;
	memset(b, 0, sizeof(*b));
	s->ovf_used++;
	s->st.index_overflow = s->ovf_used;
	return id;
}

static void ovf_put(struct cache_shard *s, uint32_t id)
{
	struct bucket *b = obucket(s, id);

	memset(b, 0, sizeof(*b));
	b->next = s->ovf_free;
	s->ovf_free = id;
	s->ovf_used--;
	s->st.index_overflow = s->ovf_used;
}

/* Empties a primary bucket, giving its overflow chain back. */
static void bucket_clear(struct cache_shard *s, struct bucket *b)
{
	while (b->next) {
		uint32_t id = b->next;

		b->next = obucket(s, id)->next;
		ovf_put(s, id);
	}
	memset(b->hi, 0, sizeof(b->hi));
	memset(b->lo, 0, sizeof(b->lo));
}

/* Places a slot in the chain of hv: a hole found by index_find(), any
 * ghost slot, or a new overflow bucket (ovf_ensure() was called). */
static void index_place(struct cache_shard *s, uint64_t hv,
			const struct pos *hole, uint64_t sl)
{
	struct bucket *b, *last = NULL;

	if (hole && hole->b) {
		slot_set(hole->b, hole->i, sl);
		return;
	}
	/* no empty slot: reuse a ghost, else chain a new bucket */
	for (b = pbucket(s, bucket_of(s, hv)); b; b = bucket_next(s, b)) {
		unsigned m = bucket_reusable(b);

		if (m) {
			slot_set(b, (unsigned)__builtin_ctz(m) / 2, sl);
			return;
		}
		last = b;
	}
	last->next = ovf_take(s);
	slot_set(obucket(s, last->next), 0, sl);
}

/* Unlinks empty overflow buckets from the chain starting at head. */
void store_chain_trim(struct cache_shard *s, struct bucket *head)
{
	struct bucket *b = head;

	while (b->next) {
		struct bucket *n = obucket(s, b->next);

		if (bucket_reusable(n) == BUCKET_ALL) {
			uint32_t id = b->next;

			b->next = n->next;
			ovf_put(s, id);
		} else {
			b = n;
		}
	}
}

/* ---------------------------------------------------------------------
 * Segments and queues
 * ------------------------------------------------------------------- */

static void fifo_push(struct cache_shard *s, enum queue q, uint32_t id)
{
	struct fifo *f = &s->q[q];
	struct seg *sg = &s->segs[id];

	sg->queue = (uint8_t)q;
	sg->next = SEG_NONE;
	sg->prev = f->newest;
	if (f->newest != SEG_NONE)
		s->segs[f->newest].next = id;
	else
		f->oldest = id;
	f->newest = id;
	f->nsegs++;
}

static void fifo_pop_oldest(struct cache_shard *s, enum queue q)
{
	struct fifo *f = &s->q[q];
	uint32_t id = f->oldest;

	f->oldest = s->segs[id].next;
	if (f->oldest != SEG_NONE)
		s->segs[f->oldest].prev = SEG_NONE;
	else
		f->newest = SEG_NONE;
	f->nsegs--;
}

/* Segments the shard may hold at most, keeping the index's memory. */
static bool seg_affordable(const struct cache_shard *s, unsigned n)
{
	return s->mem_used + n * s->seg_real <= s->mem_limit;
}

/* Takes an empty segment: from the free list, or new from the arena.
 * spare is how many segments must remain obtainable afterwards (one is
 * kept for relocating items during eviction). */
static uint32_t seg_get(struct cache_shard *s, unsigned spare)
{
	uint32_t id;

	if (s->nfree > spare ||
	    (s->nfree > 0 && seg_affordable(s, spare - s->nfree + 1))) {
		id = s->free_segs;
		s->free_segs = s->segs[id].next;
		s->nfree--;
	} else if (seg_affordable(s, 1 + spare - s->nfree)) {
		size_t real;
		char *d;

		/* find an unused slot in segs[] */
		for (id = 0; id < s->seg_slots && s->segs[id].data; id++)
			;
		if (id == s->seg_slots)
			return SEG_NONE;
		d = arena_alloc(s, s->seg_size, false, &real);
		if (!d)
			return SEG_NONE;
		/* -L: a hint only, for the 2 MiB pages the segment lies in
		 * (a huge page needs the whole of one); without THP the pages
		 * stay as they are */
		if (s->huge_pages) {
			uintptr_t lo = (uintptr_t)d & ~(uintptr_t)(HUGE_2M - 1);
			uintptr_t hi =
				((uintptr_t)d + s->seg_size + HUGE_2M - 1) &
				~(uintptr_t)(HUGE_2M - 1);

			(void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
		}
		s->segs[id].data = d;
		mem_add(s, real);
		s->nsegs_alloc++;
		s->st.segments = s->nsegs_alloc;
	} else {
		return SEG_NONE;
	}
	s->segs[id].used = 0;
	s->segs[id].live_bytes = 0;
	s->segs[id].cas_base = s->cas_next;
	return id;
}

static void seg_release(struct cache_shard *s, uint32_t id)
{
	s->segs[id].next = s->free_segs;
	s->free_segs = id;
	s->nfree++;
}

/* Gives a free segment's memory back to the arena. */
static bool seg_return_one(struct cache_shard *s)
{
	uint32_t id = s->free_segs;

	if (!s->nfree)
		return false;
	s->free_segs = s->segs[id].next;
	s->nfree--;
	s->mem_used -= s->seg_real;
	arena_free(s, s->segs[id].data);
	s->segs[id].data = NULL;
	s->nsegs_alloc--;
	s->st.segments = s->nsegs_alloc;
	return true;
}

static int evict_one(struct cache_shard *s);

/*
 * Makes the open segment of queue q able to take size more bytes, opening
 * a new one when it cannot. relocating: called from eviction, may use the
 * spare segment and never evicts. Returns the segment id or SEG_NONE.
 */
static uint32_t seg_reserve(struct cache_shard *s, enum queue q, uint32_t size,
			    bool relocating)
{
	struct fifo *f = &s->q[q];
	uint32_t id;

	if (f->newest != SEG_NONE &&
	    s->segs[f->newest].used + size <= s->seg_size)
		return f->newest;
	for (unsigned tries = 0;; tries++) {
		id = seg_get(s, relocating ? 0 : 1);
		if (id != SEG_NONE)
			break;
		if (relocating || tries == EVICT_TRIES || evict_one(s))
			return SEG_NONE;
		/* eviction may have left room in the open segment */
		if (f->newest != SEG_NONE &&
		    s->segs[f->newest].used + size <= s->seg_size)
			return f->newest;
	}
	fifo_push(s, q, id);
	return id;
}

/* ---------------------------------------------------------------------
 * Removing and relocating items
 * ------------------------------------------------------------------- */

/* Drops an item from the index and its segment's accounting. */
void store_unlink(struct cache_shard *s, const struct pos *pos,
		  const struct item *it)
{
	uint64_t sl = slot_get(pos->b, pos->i);
	struct seg *sg = &s->segs[slot_seg(sl)];

	slot_set(pos->b, pos->i, 0);
	*it->bits |= ITEM_DEAD;
	sg->live_bytes -= it->size;
	s->q[sg->queue].items--;
	s->st.curr_items--;
	s->st.bytes -= it->size;
}

/* Forgets the key of an item that was found through pos, trimming empty
 * overflow buckets of its chain. */
static void item_remove(struct cache_shard *s, uint64_t hv,
			const struct pos *pos, const struct item *it)
{
	store_unlink(s, pos, it);
	store_chain_trim(s, pbucket(s, bucket_of(s, hv)));
}

/* Copies a live item to the open main segment, keeping its CAS. Returns
 * false when there was no room (the caller then drops it). */
static bool item_relocate(struct cache_shard *s, const struct pos *pos,
			  const struct item *it, uint64_t hv, uint64_t freq)
{
	struct item_src src = {
		.key = it->key,
		.klen = it->klen,
		.flags = it->flags,
		.exptime = it->exptime,
		.atime = get32(it->atime),
		.cas_ctr = it->cas_ctr,
		.bits = *it->bits,
		.v1 = it->value,
		.l1 = it->vlen,
	};
	uint32_t size =
		item_size_bound(it->klen, it->vlen, it->flags, it->exptime);
	uint32_t seg = seg_reserve(s, Q_MAIN, item_room(s, size), true);
	uint32_t off;

	if (seg == SEG_NONE)
		return false;
	{
		struct seg *old = &s->segs[slot_seg(slot_get(pos->b, pos->i))];

		off = item_write(s, seg, &src);
		s->st.bytes += s->segs[seg].used - off;
		s->st.bytes -= it->size;
		*it->bits |= ITEM_DEAD;
		old->live_bytes -= it->size;
		s->q[old->queue].items--;
		s->q[Q_MAIN].items++;
		slot_set(pos->b, pos->i, slot_make(s, hv, seg, off, freq));
	}
	return true;
}

/* Items whose buckets an eviction prefetches before it handles them. */
#define EVICT_AHEAD 16

/* Where the item after it starts in its segment. */
static inline uint32_t item_next(const struct cache_shard *s,
				 const struct item *it, uint32_t off)
{
	return (off + it->size + (1u << s->off_shift) - 1) &
	       ~((1u << s->off_shift) - 1);
}

/*
 * Evicts the oldest segment of one queue (S3-FIFO): small items that were
 * hit move to main, the rest leave a ghost; main items that were hit get
 * another round with one less frequency, the rest go. Returns 0, or
 * -ENOMEM when no segment can be evicted.
 */
static int evict_segment(struct cache_shard *s, enum queue q)
{
	uint32_t id = s->q[q].oldest;
	/* items decoded ahead of the one handled, with their key hashes */
	struct {
		struct item it;
		uint64_t hv;
	} ring[EVICT_AHEAD];
	uint32_t next = 0, head = 0, n = 0;
	struct seg *sg;

	fifo_pop_oldest(s, q);
	sg = &s->segs[id];
	for (;;) {
		struct item it;
		struct pos pos;
		uint64_t hv, sl, freq;

		/* Decoding runs EVICT_AHEAD items in front, hashing keys
		 * and prefetching their buckets, so that the index misses of
		 * a segment's items overlap instead of queueing. Handling an
		 * item changes no other item's key, fields or place. */
		for (; n < EVICT_AHEAD && next < sg->used; n++) {
			unsigned r = (head + n) % EVICT_AHEAD;

			item_decode(s, id, next, &ring[r].it);
			next = item_next(s, &ring[r].it, next);
			if (*ring[r].it.bits & ITEM_DEAD) /* and stays so */
				continue;
			ring[r].hv = ml_hash(ring[r].it.key, ring[r].it.klen);
			__builtin_prefetch(
				pbucket(s, bucket_of(s, ring[r].hv)));
		}
		if (!n)
			break;
		it = ring[head].it;
		hv = ring[head].hv;
		head = (head + 1) % EVICT_AHEAD;
		n--;
		if (*it.bits & ITEM_DEAD)
			continue;
		if (!index_find_ref(s, hv, id,
				    (uint32_t)(it.base - (uint8_t *)sg->data),
				    &pos))
			continue;
		sl = slot_get(pos.b, pos.i);
		freq = slot_freq(sl);
		if (item_expired(s, &it)) {
			item_count_reclaim(s, &it, *it.bits);
			item_remove(s, hv, &pos, &it);
			continue;
		}
		if (s->no_evict || freq > 0) {
			uint64_t nf = s->no_evict    ? freq
				      : q == Q_SMALL ? 0
						     : freq - 1;

			if (item_relocate(s, &pos, &it, hv, nf)) {
				s->st.moved_to_main += q == Q_SMALL;
				s->st.reinserted += q == Q_MAIN;
				continue;
			}
		}
		if (!(*it.bits & ITEM_FETCHED))
			s->st.evicted_unfetched++;
		if (unlikely(s->evicted))
			store_tell_evicted(s, &it);
		store_unlink(s, &pos, &it);
		s->st.evictions++;
		if (q == Q_SMALL) /* remember the key as a ghost */
			slot_set(pos.b, pos.i,
				 slot_tagbits(hv) | SLOT_GHOST |
					 (s->ghost_clock++ & SLOT_REF_MASK));
		else
			store_chain_trim(s, pbucket(s, bucket_of(s, hv)));
	}
	seg_release(s, id);
	return 0;
}

/* Picks the queue to evict from and evicts one segment. */
static int evict_one(struct cache_shard *s)
{
	struct fifo *sm = &s->q[Q_SMALL], *mn = &s->q[Q_MAIN];
	uint32_t total = sm->nsegs + mn->nsegs;
	bool small_ok = sm->nsegs > 1, main_ok = mn->nsegs > 1;

	if (s->no_evict) {
		/* only compaction: rewrite the segment with the most dead
		 * bytes, keeping every live item */
		int best = -1;
		uint32_t dead = 0;

		for (int q = 0; q < Q_NR; q++) {
			uint32_t id = s->q[q].oldest;
			struct seg *sg;

			if (s->q[q].nsegs < 2)
				continue;
			sg = &s->segs[id];
			if (sg->used - sg->live_bytes > dead) {
				dead = sg->used - sg->live_bytes;
				best = q;
			}
		}
		if (best < 0 || dead < s->seg_size / 8) {
			/* what a flush_all left counts as dead once reaped */
			if (!s->flush_reap)
				return -ENOMEM;
			s->flush_reap = false;
			cache_sweep(s, s->nbuckets);
			return 0;
		}
		return evict_segment(s, (enum queue)best);
	}
	if (small_ok && (sm->nsegs * 10 > total || !main_ok))
		return evict_segment(s, Q_SMALL);
	if (main_ok)
		return evict_segment(s, Q_MAIN);
	/* one segment each: evict whichever is not being written to */
	if (sm->nsegs == 1)
		return evict_segment(s, Q_SMALL);
	if (mn->nsegs == 1)
		return evict_segment(s, Q_MAIN);
	return -ENOMEM;
}

/* Frees memory until bytes more fit under the limit: free segments go
 * back to the arena first, then segments are evicted. */
static int mem_make_room(struct cache_shard *s, size_t bytes)
{
	for (unsigned tries = 0; s->mem_used + bytes > s->mem_limit; tries++) {
		if (seg_return_one(s))
			continue;
		if (tries > EVICT_TRIES || evict_one(s))
			return -ENOMEM;
	}
	return 0;
}

/* ---------------------------------------------------------------------
 * Index growth (linear hashing)
 * ------------------------------------------------------------------- */

static int chunk_add(struct cache_shard *s)
{
	struct bucket *c;
	size_t real;

	if (s->nchunks == s->chunk_slots)
		return -ENOMEM;
	if (mem_make_room(s, s->chunk_real))
		return -ENOMEM;
	c = arena_alloc(s, CHUNK_BUCKETS * sizeof(struct bucket), true, &real);
	if (!c)
		return -ENOMEM;
	mem_add(s, real);
	s->chunks[s->nchunks++] = c;
	return 0;
}

/* Splits bucket s->split into itself and its image one level up. */
static void index_split(struct cache_shard *s)
{
	uint32_t from = s->split, to = from + (1u << s->level);
	uint64_t stack[64], *ent = stack;
	size_t n = 0, cap = ML_ARRAY_SIZE(stack);
	struct bucket *b, *dst[2];
	unsigned fill[2] = {0, 0};

	if (to >> CHUNK_SHIFT >= s->nchunks && chunk_add(s))
		return;
	if (ovf_ensure(s))
		return;
	/* gather the chain's items; ghosts cannot be rehashed and go */
	for (b = pbucket(s, from); b; b = bucket_next(s, b)) {
		for (unsigned i = 0; i < BUCKET_SLOTS; i++) {
			uint64_t sl = slot_get(b, i);

			if (!(sl & SLOT_USED) || (sl & SLOT_GHOST))
				continue;
			if (n == cap) {
				uint64_t *bigger =
					malloc(2 * cap * sizeof(*bigger));

				if (!bigger)
					return;
				memcpy(bigger, ent, n * sizeof(*ent));
				if (ent != stack)
					free(ent);
				ent = bigger;
				cap *= 2;
			}
			ent[n++] = sl;
		}
	}
	b = pbucket(s, from);
	bucket_clear(s, b);
	dst[0] = b;
	dst[1] = pbucket(s, to);
	memset(dst[1], 0, sizeof(*dst[1]));
	for (size_t k = 0; k < n; k++) {
		const uint8_t *p =
			(const uint8_t *)s->segs[slot_seg(ent[k])].data +
			slot_off(s, ent[k]);
		uint64_t hv = ml_hash(p + 1, p[0]);
		unsigned side = (hv >> s->level) & 1;

		if (fill[side] == BUCKET_SLOTS) {
			uint32_t id;

			if (!s->ovf_free && ovf_ensure(s)) {
				/* cannot happen: the chain freed enough */
				continue;
			}
			id = ovf_take(s);
			dst[side]->next = id;
			dst[side] = obucket(s, id);
			fill[side] = 0;
		}
		slot_set(dst[side], fill[side]++, ent[k]);
	}
	if (ent != stack)
		free(ent);
	s->nbuckets++;
	if (++s->split == 1u << s->level) {
		s->level++;
		s->split = 0;
	}
	s->st.index_buckets = s->nbuckets;
}

static void index_maybe_grow(struct cache_shard *s)
{
	uint64_t cap =
		(uint64_t)s->nbuckets * BUCKET_SLOTS * LOAD_MAX_PERMILLE / 1000;

	if (s->st.curr_items > cap && s->level < 31)
		index_split(s);
}

/* ---------------------------------------------------------------------
 * Lifecycle
 * ------------------------------------------------------------------- */

struct cache_shard *cache_create(const struct cache_params *p)
{
	struct cache_shard *s;
	size_t seg_size, item_max, real;
	uint32_t nb;
	unsigned arena;

	item_max = p->item_size_max ? p->item_size_max : ITEM_SIZE_MAX_DEFAULT;
	seg_size = p->segment_size ? p->segment_size : SEG_SIZE_DEFAULT;
	/* an item's size includes its header, as -I does in memcached */
	if (seg_size < item_max)
		seg_size = item_max;
	/* a shard holds at most SEG_MAX segments: big shards get big ones */
	if (seg_size < p->mem_limit / SEG_MAX + 1)
		seg_size = p->mem_limit / SEG_MAX + 1;
	if (item_max > ITEM_SIZE_LIMIT || seg_size > ITEM_SIZE_LIMIT ||
	    p->cas_id_bits > 16 || p->cas_id >> p->cas_id_bits ||
	    item_max < 64) {
		errno = EINVAL;
		return NULL;
	}
	if (arena_take(&arena)) {
		errno = ENOMEM;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		goto err_arena;
	s->arena = arena;
	s->mem_limit = p->mem_limit;
	s->mem_limit_max = p->mem_limit;
	s->item_max = (uint32_t)item_max;
	s->no_evict = p->no_evict;
	s->no_cas = p->no_cas;
	s->huge_pages = p->huge_pages;
	s->evicted = p->evicted;
	s->item_size = p->item_size;
	s->evicted_arg = p->evicted_arg;
	s->cas_bits = p->cas_id_bits;
	s->cas_id = p->cas_id;
	s->cas_next = 1;
	s->now = p->now;
	s->free_segs = SEG_NONE;
	for (int q = 0; q < Q_NR; q++)
		s->q[q].oldest = s->q[q].newest = SEG_NONE;

	/* real sizes of the two kinds of allocation */
	{
		void *t = arena_alloc(s, seg_size, false, &s->seg_real);

		arena_free(s, t);
		t = arena_alloc(s, CHUNK_BUCKETS * sizeof(struct bucket), false,
				&s->chunk_real);
		arena_free(s, t);
		if (!s->seg_real || !s->chunk_real)
			goto err_shard;
	}
	/* a segment uses all that the allocator gives it */
	seg_size = ML_MIN(s->seg_real, (size_t)ITEM_SIZE_LIMIT);
	s->seg_size = (uint32_t)seg_size;
	while ((seg_size - 1) >> (SLOT_OFF_BITS + s->off_shift))
		s->off_shift++;

	s->seg_slots = (uint32_t)ML_MIN(p->mem_limit / s->seg_real + 1,
					(size_t)SEG_MAX);
	s->chunk_slots = (uint32_t)(p->mem_limit / s->chunk_real + 2);
	s->segs = arena_alloc(s, s->seg_slots * sizeof(*s->segs), true, &real);
	if (!s->segs)
		goto err_shard;
	mem_add(s, real);
	s->chunks = arena_alloc(s, s->chunk_slots * sizeof(*s->chunks), true,
				&real);
	if (!s->chunks)
		goto err_shard;
	mem_add(s, real);
	s->ovf_chunks = arena_alloc(s, s->chunk_slots * sizeof(*s->chunks),
				    true, &real);
	if (!s->ovf_chunks)
		goto err_shard;
	mem_add(s, real);

	/* initial index: enough buckets for the hint, at least one chunk */
	nb = CHUNK_BUCKETS;
	if (p->items_hint) {
		uint64_t want = (uint64_t)p->items_hint * 1000 /
					(BUCKET_SLOTS * LOAD_MAX_PERMILLE) +
				1;

		if (want > nb)
			nb = (uint32_t)ML_MIN(want, (uint64_t)1 << 30);
	}
	while (s->nchunks * CHUNK_BUCKETS < nb)
		if (chunk_add(s))
			break;
	if (s->nchunks == 0)
		goto err_shard;
	nb = ML_MIN(nb, s->nchunks * CHUNK_BUCKETS);
	s->level = 31 - (uint32_t)__builtin_clz(nb);
	s->split = nb - (1u << s->level);
	s->nbuckets = nb;
	s->st.index_buckets = nb;
	s->st.mem_limit = p->mem_limit;

	/* the limit must hold the index, two segments and the spare */
	if (!seg_affordable(s, 3))
		goto err_shard;
	return s;

err_shard:
	cache_free(s);
	errno = ENOMEM;
	return NULL;
err_arena:
	arena_give(arena);
	errno = ENOMEM;
	return NULL;
}

void cache_free(struct cache_shard *s)
{
	if (!s)
		return;
	arena_give(s->arena);
	free(s);
}

void cache_set_time(struct cache_shard *s, uint32_t now)
{
	s->now = now;
}

uint32_t cache_time(const struct cache_shard *s)
{
	return s->now;
}

void cache_get_stats(const struct cache_shard *s, struct cache_stats *st)
{
	*st = s->st;
	st->mem_used = s->mem_used;
	st->mem_limit = s->mem_limit;
	st->small_items = s->q[Q_SMALL].items;
	st->main_items = s->q[Q_MAIN].items;
}

void cache_flush(struct cache_shard *s)
{
	s->flush_below = s->cas_next;
	s->flush_reap = true;
}

/* ---------------------------------------------------------------------
 * Reads
 * ------------------------------------------------------------------- */

/* Records a hit: frequency in the slot, fetched bit and atime in the
 * item. No list is touched. Only what changes is stored, so that an item
 * hit again within the same second leaves its lines clean (no write-back
 * to memory for a read). */
static inline void item_hit(struct cache_shard *s, const struct pos *pos,
			    const struct item *it)
{
	uint64_t sl = slot_get(pos->b, pos->i);

	if (slot_freq(sl) < 3)
		pos->b->hi[pos->i] =
			(uint16_t)((sl + (1ull << SLOT_FREQ_SHIFT)) >> 32);
	if (!(*it->bits & ITEM_FETCHED))
		*it->bits |= ITEM_FETCHED;
	if (get32(it->atime) != s->now)
		put32(it->atime, s->now);
}

/* Finds a key's live item; an expired one is reclaimed on the spot and
 * reported missing. ghost: as for index_find(). */
static void expired_reclaim(struct cache_shard *s, uint64_t hv,
			    const struct pos *pos, const struct item *it)
{
	item_count_lookup(s, it);
	item_remove(s, hv, pos, it);
}

static bool find_live(struct cache_shard *s, uint64_t hv, const char *key,
		      uint32_t klen, struct pos *pos, struct item *it,
		      bool *ghost)
{
	if (!index_find(s, hv, key, klen, pos, it, NULL, ghost))
		return false;
	if (!item_expired(s, it))
		return true;
	expired_reclaim(s, hv, pos, it);
	return false;
}

static int item_rewrite(struct cache_shard *s, uint64_t hv, const char *key,
			const struct pos *pos, const struct item *it,
			uint64_t cas_ctr, uint8_t bits, uint32_t exptime);

/* Gives an item a new exptime: in place when it has the field, else as a
 * new copy with the same CAS (touch keeps the CAS, as in memcached). */
static int item_set_exptime(struct cache_shard *s, uint64_t hv, const char *key,
			    uint32_t exptime, struct pos *pos, struct item *it)
{
	int rc;

	if (it->exp && exptime) {
		put32(it->exp, exptime);
		it->exptime = exptime;
		return 0;
	}
	if (!it->exp && !exptime)
		return 0;
	rc = item_rewrite(s, hv, key, pos, it, it->cas_ctr, *it->bits, exptime);
	if (rc)
		return rc;
	return index_find(s, hv, key, it->klen, pos, it, NULL, NULL) ? 0
								     : -ENOENT;
}

/* A reader's step once the key is found: expiry, touch, view, hit. */
static inline int get_found(struct cache_shard *s, uint64_t hv, const char *key,
			    unsigned opts, uint32_t exptime, struct pos *pos,
			    struct item *it, struct cache_item *out)
{
	if (unlikely(item_expired(s, it))) {
		expired_reclaim(s, hv, pos, it);
		return -ENOENT;
	}
	if (unlikely(opts & CACHE_GET_TOUCH)) {
		int rc = item_set_exptime(s, hv, key, exptime, pos, it);

		if (rc)
			return rc;
	}
	if (out)
		item_view(s, it, out);
	if (!(opts & CACHE_GET_NOBUMP))
		item_hit(s, pos, it);
	return 0;
}

int cache_get(struct cache_shard *s, uint64_t hv, const char *key,
	      uint32_t klen, unsigned opts, uint32_t exptime,
	      struct cache_item *out)
{
	struct pos pos;
	struct item it;

	if (!index_lookup(s, hv, key, klen, &pos, &it))
		return -ENOENT;
	return get_found(s, hv, key, opts, exptime, &pos, &it, out);
}

#define CAND_NONE (-1) /* no tag here; the full lookup decides */
#define CAND_NEXT (-2) /* no tag here; the next bucket is on its way */
#define CAND_MISS (-3) /* no tag in the whole chain: a miss */

/* Finds the first slot of *b whose tag matches hv and prefetches its
 * item. With none: a miss if the chain ends here; else, with follow,
 * moves *b to the overflow bucket, prefetches it and says CAND_NEXT. */
static inline int8_t bulk_candidate(const struct cache_shard *s,
				    struct bucket **b, uint64_t hv, bool follow)
{
	unsigned m = bucket_match(*b, slot_tagbits(hv));

	if (m) {
		int8_t i = (int8_t)(__builtin_ctz(m) / 2);
		const uint8_t *p = slot_item(s, slot_get(*b, (unsigned)i));

		/* The item's first two lines (one when it starts a line):
		 * most small items straddle a line boundary, and the second
		 * line would otherwise be a miss of its own at resolve time.
		 * They hold all of an item up to 64 bytes and the header
		 * and first value bytes of a larger one. A prefetch never
		 * faults, even past the end of the segment. */
		__builtin_prefetch(p);
		__builtin_prefetch(p + ML_CACHE_LINE - 1);
		return i;
	}
	if (!(*b)->next)
		return CAND_MISS;
	if (!follow)
		return CAND_NONE;
	*b = obucket(s, (*b)->next);
	__builtin_prefetch(*b);
	return CAND_NEXT;
}

/* The passes that read nothing but the index: every bucket of n keys is
 * prefetched, then read for its candidate, whose item is prefetched. */
static inline void bulk_locate(const struct cache_shard *s, unsigned n,
			       const uint64_t *hv, struct bucket **b,
			       int8_t *cand)
{
	/* pass 1: every bucket */
	for (unsigned i = 0; i < n; i++) {
		b[i] = pbucket(s, bucket_of(s, hv[i]));
		__builtin_prefetch(b[i]);
	}
	/* pass 2: the first slot whose tag matches, and its item; with no
	 * match, the first overflow bucket */
	for (unsigned i = 0; i < n; i++)
		cand[i] = bulk_candidate(s, &b[i], hv[i], true);
	/* pass 3: candidates in the overflow buckets */
	for (unsigned i = 0; i < n; i++)
		if (cand[i] == CAND_NEXT)
			cand[i] = bulk_candidate(s, &b[i], hv[i], false);
}

void cache_prefetch_bulk(const struct cache_shard *s, unsigned n,
			 const uint64_t *hv)
{
	struct bucket *b[CACHE_BULK_MAX];
	int8_t cand[CACHE_BULK_MAX];

	bulk_locate(s, ML_MIN(n, CACHE_BULK_MAX), hv, b, cand);
}

/*
 * The passes see the index before any request of the batch is resolved.
 * Resolving may reclaim an expired item (and trim its chain), which never
 * adds a key: a miss seen by the passes stays a miss, and a candidate is
 * checked again before it is trusted.
 */
unsigned cache_get_bulk(struct cache_shard *s, unsigned n, const uint64_t *hv,
			const char *const *key, const uint32_t *klen,
			struct cache_item *out, int *rc)
{
	struct bucket *b[CACHE_BULK_MAX];
	int8_t cand[CACHE_BULK_MAX];
	unsigned hits = 0;

	if (n > CACHE_BULK_MAX)
		n = CACHE_BULK_MAX;
	bulk_locate(s, n, hv, b, cand);
	/* pass 4: resolve; a candidate whose key differs (a tag collision)
	 * or a longer chain takes the full lookup */
	for (unsigned i = 0; i < n; i++) {
		struct pos pos = {b[i], (unsigned)cand[i]};
		struct item it;
		uint64_t sl;

		if (cand[i] >= 0 &&
		    (sl = slot_get(b[i], pos.i),
		     (sl & SLOT_MATCH_MASK) == slot_tagbits(hv[i]) &&
			     key_eq(slot_item(s, sl), key[i], klen[i]))) {
			item_decode(s, slot_seg(sl), slot_off(s, sl), &it);
			rc[i] = get_found(s, hv[i], key[i], 0, 0, &pos, &it,
					  &out[i]);
		} else if (cand[i] == CAND_MISS) {
			rc[i] = -ENOENT;
		} else {
			rc[i] = cache_get(s, hv[i], key[i], klen[i], 0, 0,
					  &out[i]);
		}
		hits += rc[i] == 0;
	}
	return hits;
}

/* ---------------------------------------------------------------------
 * Writes
 * ------------------------------------------------------------------- */

/*
 * Writes a new version of a key from src into queue q, replacing the old
 * one if still present. The caller has checked the mode's preconditions
 * on an earlier lookup. Everything that may evict (index growth, an
 * overflow bucket, room in the open segment) happens first; then the key
 * is looked up again and the write goes where it stands, so that no
 * pointer into a segment is held across an eviction. src->old says where
 * the old value goes in the new one (append, prepend, touch, rewrite);
 * such a write finds -ENOENT if the old item went meanwhile.
 */
static int item_commit(struct cache_shard *s, uint64_t hv, enum queue q,
		       struct item_src *src, const uint64_t *freq,
		       struct cache_item *out)
{
	uint32_t vlen = src->l1 + src->l2 + src->l3;
	uint32_t bound =
		item_size_bound(src->klen, vlen, src->flags, src->exptime);
	struct pos pos, hole;
	struct item old, it;
	uint32_t seg, off;
	bool found;
	uint64_t fr = freq ? *freq : 0;

	if (bound > s->item_max)
		return -E2BIG;
	index_maybe_grow(s);
	if (ovf_ensure(s))
		return -ENOMEM;
	seg = seg_reserve(s, q, item_room(s, bound), false);
	if (seg == SEG_NONE)
		return -ENOMEM;
	found = index_find(s, hv, src->key, src->klen, &pos, &old, &hole, NULL);
	if (src->old != OLD_NONE) {
		if (!found)
			return -ENOENT;
		if (src->old == OLD_FIRST) {
			src->v1 = old.value;
			src->l1 = old.vlen;
		} else {
			src->v2 = old.value;
			src->l2 = old.vlen;
		}
	}
	if (found) {
		struct seg *osg = &s->segs[slot_seg(slot_get(pos.b, pos.i))];

		if (!freq)
			fr = slot_freq(slot_get(pos.b, pos.i));
		/* the old value may be a source of the new one: it stays
		 * readable in its segment until the segment is evicted */
		s->st.bytes -= old.size;
		osg->live_bytes -= old.size;
		s->q[osg->queue].items--;
		s->st.curr_items--;
	}
	off = item_write(s, seg, src);
	if (found) {
		*old.bits |= ITEM_DEAD;
		slot_set(pos.b, pos.i, slot_make(s, hv, seg, off, fr));
	} else {
		index_place(s, hv, &hole, slot_make(s, hv, seg, off, fr));
	}
	item_decode(s, seg, off, &it);
	s->q[q].items++;
	s->st.curr_items++;
	s->st.bytes += it.size;
	s->st.total_items++;
	if (out)
		item_view(s, &it, out);
	return 0;
}

static inline uint64_t cas_take(struct cache_shard *s)
{
	return s->cas_next++;
}

int cache_store(struct cache_shard *s, const struct cache_store *req,
		struct cache_item *out)
{
	struct item_src src = {
		.key = req->key,
		.klen = req->klen,
		.flags = req->flags,
		.exptime = req->exptime,
		.atime = s->now,
		.bits = req->key_binary ? ITEM_BINKEY : 0,
		.v1 = req->value,
		.l1 = req->vlen,
	};
	struct pos pos;
	struct item it;
	bool found, ghost;
	enum queue q = Q_SMALL;

	if (req->klen == 0 || req->klen > 250)
		return -EINVAL;
	if (item_size_bound(req->klen, req->vlen, req->flags, req->exptime) >
	    s->item_max)
		return -E2BIG;
	found = find_live(s, req->hv, req->key, req->klen, &pos, &it, &ghost);
	if (req->cas) {
		if (!found)
			return -ENOENT;
		if (cas_value(s, it.cas_ctr) != req->cas) {
			if (!req->invalidate ||
			    req->cas >= cas_value(s, it.cas_ctr))
				return -EEXIST;
			/* an older CAS with invalidate stores the value as
			 * stale; like memcached, the item keeps its exptime
			 * and a win already handed out */
			src.bits |= ITEM_STALE | (*it.bits & ITEM_WIN);
			src.exptime = it.exptime;
		}
	}
	switch (req->mode) {
	case CACHE_SET:
		break;
	case CACHE_ADD:
		if (found) {
			/* as memcached: the item is bumped (frequency, last
			 * access) but not marked fetched */
			uint8_t fetched = *it.bits & ITEM_FETCHED;

			item_hit(s, &pos, &it);
			if (!fetched)
				*it.bits &= (uint8_t)~ITEM_FETCHED;
			return -EEXIST;
		}
		break;
	case CACHE_REPLACE:
		if (!found)
			return -ENOENT;
		break;
	case CACHE_APPEND:
	case CACHE_PREPEND:
		if (!found) {
			if (!req->vivify)
				return -ENOENT;
			src.exptime = req->vivify_exptime;
			break;
		}
		if (s->item_size && s->item_size(req->klen, it.vlen + req->vlen,
						 it.flags) > s->item_max)
			return -E2BIG;
		/* the old item keeps its flags and exptime */
		src.flags = it.flags;
		src.exptime = it.exptime;
		if (req->mode == CACHE_APPEND) {
			src.l1 = it.vlen;
			src.v2 = req->value;
			src.l2 = req->vlen;
			src.old = OLD_FIRST;
		} else {
			src.l2 = it.vlen;
			src.old = OLD_SECOND;
		}
		break;
	default:
		return -EINVAL;
	}
	if (found && s->segs[slot_seg(slot_get(pos.b, pos.i))].queue == Q_MAIN)
		q = Q_MAIN;
	else if (!found && ghost) {
		q = Q_MAIN;
		s->st.ghost_hits++;
	}
	src.cas_ctr = cas_take(s);
	return item_commit(s, req->hv, q, &src, NULL, out);
}

/* Finds a key's live item for a write that may name a CAS (0: none).
 * Returns 0, -ENOENT, or -EEXIST when the item's CAS differs. */
static int find_live_cas(struct cache_shard *s, uint64_t hv, const char *key,
			 uint32_t klen, uint64_t cas, struct pos *pos,
			 struct item *it)
{
	if (!find_live(s, hv, key, klen, pos, it, NULL))
		return -ENOENT;
	if (cas && cas != cas_value(s, it->cas_ctr))
		return -EEXIST;
	return 0;
}

int cache_delete(struct cache_shard *s, uint64_t hv, const char *key,
		 uint32_t klen, uint64_t cas)
{
	struct pos pos;
	struct item it;
	int rc = find_live_cas(s, hv, key, klen, cas, &pos, &it);

	if (rc)
		return rc;
	item_remove(s, hv, &pos, &it);
	return 0;
}

/* Rewrites an item in full with changed header fields, keeping its value
 * and frequency. */
static int item_rewrite(struct cache_shard *s, uint64_t hv, const char *key,
			const struct pos *pos, const struct item *it,
			uint64_t cas_ctr, uint8_t bits, uint32_t exptime)
{
	struct item_src src = {
		.key = key,
		.klen = it->klen,
		.flags = it->flags,
		.exptime = exptime,
		.atime = get32(it->atime),
		.cas_ctr = cas_ctr,
		.bits = bits,
		.l1 = it->vlen,
		.old = OLD_FIRST,
	};
	uint64_t freq = slot_freq(slot_get(pos->b, pos->i));
	enum queue q = s->segs[slot_seg(slot_get(pos->b, pos->i))].queue;
	int rc = item_commit(s, hv, q, &src, &freq, NULL);

	s->st.total_items--;
	return rc;
}

int cache_invalidate(struct cache_shard *s, uint64_t hv, const char *key,
		     uint32_t klen, uint64_t cas, bool set_exptime,
		     uint32_t exptime)
{
	struct pos pos;
	struct item it;
	int rc = find_live_cas(s, hv, key, klen, cas, &pos, &it);

	if (rc)
		return rc;
	return item_rewrite(s, hv, key, &pos, &it, cas_take(s),
			    (uint8_t)((*it.bits | ITEM_STALE) & ~ITEM_WIN),
			    set_exptime ? exptime : it.exptime);
}

void cache_mark_win(struct cache_shard *s, uint64_t hv, const char *key,
		    uint32_t klen)
{
	struct pos pos;
	struct item it;

	if (index_find(s, hv, key, klen, &pos, &it, NULL, NULL))
		*it.bits |= ITEM_WIN;
}

/* Parses a stored value as memcached does for incr/decr: like strtoull
 * (leading blanks, a sign), then the end of the value or a blank; a
 * minus sign is refused when the result would be negative as signed. */
static bool parse_counter(const char *v, uint32_t len, uint64_t *out)
{
	uint32_t i = 0;
	bool neg = false, any = false;
	uint64_t r = 0;

	while (i < len && (v[i] == ' ' || (v[i] >= '\t' && v[i] <= '\r')))
		i++;
	if (i < len && (v[i] == '+' || v[i] == '-'))
		neg = v[i++] == '-';
	for (; i < len && v[i] >= '0' && v[i] <= '9'; i++) {
		unsigned d = (unsigned)(v[i] - '0');

		if (r > (UINT64_MAX - d) / 10)
			return false; /* ERANGE */
		r = r * 10 + d;
		any = true;
	}
	if (!any)
		return false;
	if (i < len && !(v[i] == ' ' || (v[i] >= '\t' && v[i] <= '\r')))
		return false;
	if (neg)
		r = (uint64_t)0 - r;
	if ((int64_t)r < 0 && neg)
		return false;
	*out = r;
	return true;
}

static unsigned u64_to_dec(uint64_t v, char *buf)
{
	char tmp[20];
	unsigned n = 0, len;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (len = 0; len < n; len++)
		buf[len] = tmp[n - 1 - len];
	return n;
}

int cache_arith(struct cache_shard *s, const struct cache_arith *req,
		uint64_t *value, struct cache_item *out)
{
	struct item_src src = {
		.key = req->key,
		.klen = req->klen,
		.atime = s->now,
	};
	struct pos pos;
	struct item it;
	char digits[20];
	uint64_t v, freq;
	enum queue q = Q_SMALL;
	int rc;

	if (!find_live(s, req->hv, req->key, req->klen, &pos, &it, NULL)) {
		if (!req->vivify)
			return -ENOENT;
		/* created with the initial value; no delta applied */
		v = req->initial;
		src.exptime = req->vivify_exptime;
		src.v1 = digits;
		src.l1 = u64_to_dec(v, digits);
		src.cas_ctr = cas_take(s);
		rc = item_commit(s, req->hv, Q_SMALL, &src, NULL, out);
		if (rc == 0)
			*value = v;
		return rc;
	}
	/* memcached's order: an empty value, or one it keeps in chunks
	 * (its item past slab_chunk_max), is not a number before any CAS
	 * is compared, a value that does not parse only after */
	if (it.vlen == 0 ||
	    (s->item_size &&
	     s->item_size(it.klen, it.vlen, it.flags) > MC_SLAB_CHUNK_MAX))
		return -EINVAL;
	if (req->cas && req->cas != cas_value(s, it.cas_ctr))
		return -EEXIST;
	if (!parse_counter(it.value, it.vlen, &v))
		return -EINVAL;
	if (req->incr)
		v += req->delta;
	else
		v = v > req->delta ? v - req->delta : 0;
	src.v1 = digits;
	src.l1 = u64_to_dec(v, digits);
	/* a shorter number keeps the item's length, padded with blanks */
	if (src.l1 < it.vlen) {
		src.pad = " ";
		src.l3 = it.vlen - src.l1;
	}
	src.flags = it.flags;
	src.exptime = req->set_exptime ? req->exptime : it.exptime;
	src.bits = *it.bits & ITEM_KEEP;
	src.atime = get32(it.atime);
	src.cas_ctr = cas_take(s);
	freq = slot_freq(slot_get(pos.b, pos.i));
	q = s->segs[slot_seg(slot_get(pos.b, pos.i))].queue;
	rc = item_commit(s, req->hv, q, &src, &freq, out);
	if (rc == 0) {
		*value = v;
		/* memcached rewrites a number that still fits in place and
		 * links a new item, counted, for one that has grown */
		if (src.l1 <= it.vlen)
			s->st.total_items--;
	}
	return rc;
}

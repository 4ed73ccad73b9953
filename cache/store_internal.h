/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The shard's layout, shared by the files of the store: store.c (index,
 * items, eviction) and store_walk.c (the expiry sweep and the walks that
 * visit every item). Never included from another folder.
 */
#ifndef MEMLANE_STORE_INTERNAL_H
#define MEMLANE_STORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cache.h"
#include "common.h"

/*
 * Index slot (48 bits, ten to a bucket; a bucket keeps the top 16 bits
 * of its slots together, so that one vector compare finds the tags, and
 * the low 32 bits apart):
 *
 *   47..38  tag (hv bits 43..34)
 *   37      in use
 *   36      ghost: no item, bits 33..0 hold the ghost clock at eviction
 *   35..34  frequency (S3-FIFO, saturating at 3)
 *   33..20  segment id
 *   19..0   offset of the item in its segment, in units of
 *           1 << off_shift bytes (1 byte for segments up to 1 MiB)
 */
#define SLOT_TAG_SHIFT	38
#define SLOT_USED	(1ull << 37)
#define SLOT_GHOST	(1ull << 36)
#define SLOT_FREQ_SHIFT 34
#define SLOT_FREQ_MASK	(3ull << SLOT_FREQ_SHIFT)
#define SLOT_SEG_SHIFT	20
#define SLOT_SEG_BITS	14
#define SLOT_OFF_BITS	20
#define SLOT_REF_MASK	((1ull << 34) - 1)

#define TAG_SHIFT 34
#define TAG_MASK  0x3ffull

#define BUCKET_SLOTS  10
#define CHUNK_SHIFT   10 /* buckets per index chunk: 1024 (64 KiB) */
#define CHUNK_BUCKETS (1u << CHUNK_SHIFT)
/* Split a bucket when the average fill passes this (per mille). */
#define LOAD_MAX_PERMILLE     860
#define SEG_SIZE_DEFAULT      (1u << 20)
#define SEG_MAX		      (1u << SLOT_SEG_BITS)
#define SEG_NONE	      UINT32_MAX
#define ITEM_SIZE_MAX_DEFAULT (1u << 20)
#define ITEM_SIZE_LIMIT	      (1u << 30)
/* Evictions an insert may run before it gives up (-ENOMEM). */
#define EVICT_TRIES 64

/*
 * A bucket, one cache line:
 *
 *   OFFSET SIZE FIELD
 *   0      4    next: overflow bucket id, 0 = none
 *   4      20   hi[10]: slot bits 47..32 (tag, used, ghost, freq, seg 13..12)
 *   24     40   lo[10]: slot bits 31..0 (seg 11..0, offset)
 */
struct bucket {
	uint32_t next;
	uint16_t hi[BUCKET_SLOTS];
	uint32_t lo[BUCKET_SLOTS];
};
_Static_assert(sizeof(struct bucket) == ML_CACHE_LINE, "bucket is one line");
_Static_assert(offsetof(struct bucket, lo) == 24, "bucket layout");

static inline uint64_t slot_get(const struct bucket *b, unsigned i)
{
	return (uint64_t)b->hi[i] << 32 | b->lo[i];
}

static inline void slot_set(struct bucket *b, unsigned i, uint64_t v)
{
	b->hi[i] = (uint16_t)(v >> 32);
	b->lo[i] = (uint32_t)v;
}

/*
 * Item layout, byte-packed, key first so that a lookup compares keys
 * without decoding the rest:
 *
 *   OFFSET         SIZE    FIELD
 *   0              1       klen (1..250)
 *   1              klen    key
 *   1+klen         1       bits (ITEM_*)
 *   ..             1..5    vlen, LEB128
 *   ..             1..10   CAS counter minus the segment's base, zigzag
 *                          LEB128 (fresh items: 1-3 bytes)
 *   ..             4       atime, unix seconds
 *   ..             0 or 4  client flags (ITEM_FLAGS)
 *   ..             0 or 4  exptime, unix seconds (ITEM_EXP)
 *   ..             vlen    value
 */
#define ITEM_FLAGS   0x01
#define ITEM_EXP     0x02
#define ITEM_FETCHED 0x04
#define ITEM_STALE   0x08
#define ITEM_WIN     0x10
#define ITEM_BINKEY  0x20 /* the key was given in base64 (meta b) */
#define ITEM_DEAD    0x80
/* Bits a new version of an item can carry over. */
#define ITEM_KEEP (ITEM_FETCHED | ITEM_STALE | ITEM_WIN | ITEM_BINKEY)

enum queue { Q_SMALL, Q_MAIN, Q_NR };

struct seg {
	char *data;
	uint32_t used;	     /* bytes written */
	uint32_t live_bytes; /* bytes of items still indexed */
	uint32_t next;	     /* newer segment in the queue / free list */
	uint32_t prev;	     /* older segment in the queue */
	uint64_t cas_base;   /* CAS counter when the segment was opened */
	uint8_t queue;
};

struct fifo {
	uint32_t oldest;
	uint32_t newest; /* the open segment appends go to */
	uint32_t nsegs;
	uint64_t items;
};

/* a transparent huge page: -L asks for the ones a segment lies in */
#define HUGE_2M (2u << 20)

struct cache_shard {
	/* hot: index geometry */
	struct bucket **chunks; /* primary buckets, CHUNK_BUCKETS each */
	struct bucket **ovf_chunks;
	uint32_t level; /* linear hashing: 1 << level buckets, plus split */
	uint32_t split;
	uint32_t nbuckets;
	uint32_t now;
	struct seg *segs;
	uint64_t cas_next; /* next CAS counter value */
	uint32_t cas_bits;
	uint32_t cas_id;

	struct fifo q[Q_NR];
	uint32_t free_segs; /* free list of allocated, empty segments */
	uint32_t nfree;
	uint32_t nsegs_alloc; /* segments holding memory (queues + free) */
	uint32_t seg_slots;   /* size of segs[] */
	uint32_t seg_size;
	uint32_t off_shift; /* item offsets are in 1 << off_shift bytes */
	size_t seg_real;    /* sallocx(seg_size) */
	uint32_t item_max;
	bool no_evict;
	bool no_cas;	 /* -C: CAS values read 0 */
	bool huge_pages; /* -L: segments asked to be huge pages */
	void (*evicted)(void *arg, const struct cache_item *it);
	void *evicted_arg;
	/* the protocol's item size (cache_params) */
	size_t (*item_size)(uint32_t klen, uint32_t vlen, uint32_t flags);

	uint32_t ovf_free;  /* free overflow buckets, chained by next */
	uint32_t ovf_count; /* overflow buckets allocated (ids 1..) */
	uint32_t ovf_used;
	uint32_t chunk_slots; /* size of chunks[] and ovf_chunks[] */
	uint32_t nchunks;
	uint32_t ovf_nchunks;

	uint64_t ghost_clock;
	uint32_t sweep_pos;

	size_t mem_used;
	size_t mem_limit;
	size_t mem_limit_max; /* what the shard was made for */
	size_t chunk_real;
	unsigned arena;

	struct cache_stats st;

	/* flush_all: an item written before it is flushed, a miss until it
	 * is reclaimed (memcached's flush is as lazy); flush_reap: some may
	 * be left, for -M's compaction to reap first */
	uint64_t flush_below;
	bool flush_reap;
	/* the gate (cache_set_gate()): below 0 when none */
	uint64_t gate_below;
	cache_gate_fn *gate_fn;
	void *gate_arg;
};

/* ---------------------------------------------------------------------
 * Varints
 * ------------------------------------------------------------------- */

static inline unsigned varint_len(uint64_t v)
{
	unsigned n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static inline unsigned varint_put(uint8_t *p, uint64_t v)
{
	unsigned n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

static inline unsigned varint_get(const uint8_t *p, uint64_t *v)
{
	uint64_t r = 0;
	unsigned n = 0, shift = 0;

	if (likely(p[0] < 0x80)) {
		*v = p[0];
		return 1;
	}
	if (p[1] < 0x80) {
		*v = (uint64_t)(p[0] & 0x7f) | (uint64_t)p[1] << 7;
		return 2;
	}
	/* three bytes: a CAS delta within a large segment */
	if (p[2] < 0x80) {
		*v = (uint64_t)(p[0] & 0x7f) | (uint64_t)(p[1] & 0x7f) << 7 |
		     (uint64_t)p[2] << 14;
		return 3;
	}
	do {
		r |= (uint64_t)(p[n] & 0x7f) << shift;
		shift += 7;
	} while (p[n++] & 0x80);
	*v = r;
	return n;
}

static inline uint64_t zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static inline uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

/* An item's fields, decoded. */
struct item {
	uint8_t *base;	/* first byte (klen) */
	uint8_t *bits;	/* the bits byte */
	uint8_t *atime; /* the atime field */
	uint8_t *exp;	/* the exptime field, NULL if absent */
	const char *key;
	const char *value;
	uint32_t klen;
	uint32_t vlen;
	uint32_t flags;
	uint32_t exptime;
	uint64_t cas_ctr;
	uint32_t size; /* whole item */
};

/* Forced inline: callgrind counts 60 instructions per GET saved when the
 * decode folds into the lookup that needs only some of its fields. */
static inline __attribute__((always_inline)) void item_decode(
	const struct cache_shard *s, uint32_t seg, uint32_t off,
	struct item *it)
{
	uint8_t *p = (uint8_t *)s->segs[seg].data + off;
	uint64_t v;
	uint8_t *q;

	it->base = p;
	it->klen = p[0];
	it->key = (const char *)p + 1;
	q = p + 1 + it->klen;
	it->bits = q++;
	q += varint_get(q, &v);
	it->vlen = (uint32_t)v;
	q += varint_get(q, &v);
	it->cas_ctr = s->segs[seg].cas_base + (uint64_t)unzigzag(v);
	it->atime = q;
	q += 4;
	it->flags = 0;
	if (*it->bits & ITEM_FLAGS) {
		it->flags = get32(q);
		q += 4;
	}
	it->exp = NULL;
	it->exptime = 0;
	if (*it->bits & ITEM_EXP) {
		it->exp = q;
		it->exptime = get32(q);
		q += 4;
	}
	it->value = (const char *)q;
	it->size = (uint32_t)(q - p) + it->vlen;
}

/* Past its exptime. */
static inline bool item_timed_out(const struct cache_shard *s,
				  const struct item *it)
{
	return it->exptime != 0 && it->exptime <= s->now;
}

/* Written before the last flush_all. */
static inline bool item_flushed(const struct cache_shard *s,
				const struct item *it)
{
	return it->cas_ctr < s->flush_below;
}

/* Gone: past its exptime, flushed, or dropped by the gate. */
static inline bool item_expired(const struct cache_shard *s,
				const struct item *it)
{
	return item_timed_out(s, it) || item_flushed(s, it) ||
	       (unlikely(it->cas_ctr < s->gate_below) &&
		s->gate_fn(s->gate_arg, it->key, it->klen, it->cas_ctr));
}

/* Counts an item reclaimed because item_expired() said so. */
static inline void item_count_reclaim(struct cache_shard *s,
				      const struct item *it, uint8_t bits)
{
	if (!item_timed_out(s, it) && !item_flushed(s, it)) {
		s->st.gated++;
		return;
	}
	if (!(bits & ITEM_FETCHED))
		s->st.expired_unfetched++;
	s->st.reclaimed++;
}

/* Counts an item a command's lookup found gone, and drops, as memcached
 * counts it: flushed first, then expired; neither is a reclaim there. */
static inline void item_count_lookup(struct cache_shard *s,
				     const struct item *it)
{
	if (item_flushed(s, it))
		s->st.get_flushed++;
	else if (item_timed_out(s, it))
		s->st.get_expired++;
	else
		s->st.gated++;
}

static inline uint32_t slot_seg(uint64_t sl)
{
	return (uint32_t)(sl >> SLOT_SEG_SHIFT) & (SEG_MAX - 1);
}

static inline uint32_t slot_off(const struct cache_shard *s, uint64_t sl)
{
	return ((uint32_t)sl & ((1u << SLOT_OFF_BITS) - 1)) << s->off_shift;
}

static inline uint64_t slot_freq(uint64_t sl)
{
	return (sl & SLOT_FREQ_MASK) >> SLOT_FREQ_SHIFT;
}

static inline struct bucket *pbucket(const struct cache_shard *s, uint32_t b)
{
	return &s->chunks[b >> CHUNK_SHIFT][b & (CHUNK_BUCKETS - 1)];
}

static inline struct bucket *obucket(const struct cache_shard *s, uint32_t id)
{
	return &s->ovf_chunks[id >> CHUNK_SHIFT][id & (CHUNK_BUCKETS - 1)];
}

static inline struct bucket *bucket_next(const struct cache_shard *s,
					 const struct bucket *b)
{
	return b->next ? obucket(s, b->next) : NULL;
}

/* Where a key's slot is. */
struct pos {
	struct bucket *b;
	unsigned i;
};

static inline uint64_t cas_value(const struct cache_shard *s, uint64_t ctr)
{
	return s->no_cas ? 0 : (ctr << s->cas_bits) | s->cas_id;
}

static inline void item_view(const struct cache_shard *s, const struct item *it,
			     struct cache_item *out)
{
	uint8_t bits = *it->bits;

	out->key = it->key;
	out->klen = it->klen;
	out->value = it->value;
	out->vlen = it->vlen;
	out->flags = it->flags;
	out->exptime = it->exptime;
	out->atime = get32(it->atime);
	out->cas = cas_value(s, it->cas_ctr);
	out->fetched = bits & ITEM_FETCHED;
	out->stale = bits & ITEM_STALE;
	out->win_sent = bits & ITEM_WIN;
	out->key_binary = bits & ITEM_BINKEY;
}

/* Hands an item about to be evicted to the shard's evicted callback. */
void store_tell_evicted(struct cache_shard *s, const struct item *it);

/* Drops an item from the index and its segment's accounting. */
void store_unlink(struct cache_shard *s, const struct pos *pos,
		  const struct item *it);

/* Unlinks empty overflow buckets from the chain starting at head. */
void store_chain_trim(struct cache_shard *s, struct bucket *head);

#endif

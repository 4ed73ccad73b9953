/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A split-block Bloom filter over 64-bit key hashes.
 *
 * The filter is an array of 256-bit blocks, each eight 32-bit words. A key
 * with hash hv touches one block and sets one bit in each of its eight
 * words, so an add or a query reads a single 32-byte, 32-byte-aligned
 * block (half a cache line): one miss at most.
 *
 *   block = (hi32(hv) * nblocks) >> 32          (multiply-shift)
 *   bit w = (lo32(hv) * salt[w]) >> 27           (w = 0..7, odd salts)
 *
 * hv is the key hash the parser already computed (ml_hash() in
 * common/common.h, which bloom_hash() equals), so a filter costs no second
 * hash. The block comes from hv's top bits, which also pick the owner core
 * (ml_hash_core()): a filter that holds only one core's keys fills only
 * that core's share of its blocks. Size such filters for all the node's
 * keys (they then merge into the node's filter with no loss), or expect
 * the false positive rate of a filter ncores times as full.
 *
 * A filter is not thread-safe: one writer, no concurrent readers while it
 * writes. Readers alone may share it.
 *
 * Serialised form (all integers little-endian):
 *
 *   OFFSET  SIZE  FIELD
 *        0     4  magic "MLBF"
 *        4     2  version, 1
 *        6     2  reserved, 0
 *        8     8  nblocks
 *       16     8  count: keys added
 *       24     8  checksum: XXH3-64 of bytes 0..23 followed by the blocks
 *       32   32n  the blocks, each eight 32-bit words, word 0 first
 */
#ifndef MEMLANE_BLOOM_H
#define MEMLANE_BLOOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BLOOM_BLOCK_BITS   256
#define BLOOM_BLOCK_BYTES  32
#define BLOOM_HEADER_BYTES 32
#define BLOOM_MAGIC	   "MLBF"
#define BLOOM_VERSION	   1
/* The largest filter: the block index takes 32 bits of hv (128 GiB). */
#define BLOOM_NBLOCKS_MAX (1ull << 32)

struct bloom;

/*
 * What a filter is sized for: nblocks = max(1, ceil(nkeys * bits_per_key
 * / 256)). At 10.7 bits per key the expected false positive rate is about
 * 0.93 % (bloom_fpr_theory()).
 */
struct bloom_params {
	uint64_t nkeys;
	double bits_per_key;
};

/*
 * Creates an empty filter into *out. Returns 0, -EINVAL for a NULL
 * argument, bits_per_key <= 0 (or NaN) or more than BLOOM_NBLOCKS_MAX
 * blocks, or -ENOMEM.
 */
int bloom_create(const struct bloom_params *p, struct bloom **out);

/* Frees a filter; b may be NULL. */
void bloom_free(struct bloom *b);

/* The hash bloom_add() and bloom_maybe() expect: XXH3-64 of the key, the
 * same as ml_hash(). */
uint64_t bloom_hash(const void *key, size_t len);

/* Adds the key whose hash is hv. This function can't fail. */
void bloom_add(struct bloom *b, uint64_t hv);

/* False if the key whose hash is hv was never added (since the last
 * bloom_clear()); true if it was, or by a false positive. */
bool bloom_maybe(const struct bloom *b, uint64_t hv);

/*
 * dst |= src: dst then answers true for every key either held, and its
 * count becomes the sum of both (an upper bound on the distinct keys).
 * Returns 0, or -EINVAL if the two differ in nblocks (dst is unchanged).
 */
int bloom_merge(struct bloom *dst, const struct bloom *src);

/* Removes every key and zeroes the count. */
void bloom_clear(struct bloom *b);

/* The number of 256-bit blocks, at least 1. */
uint64_t bloom_nblocks(const struct bloom *b);

/* Keys added since creation or the last bloom_clear(), duplicates
 * included; after a merge, the sum of both counts. */
uint64_t bloom_count(const struct bloom *b);

/*
 * The false positive rate expected of a split-block filter of this size
 * holding bloom_count() distinct keys with uniform hashes: a block's load
 * is Poisson with mean count / nblocks, and a query of a block holding i
 * keys is positive with probability (1 - (31/32)^i)^8.
 */
double bloom_fpr_theory(const struct bloom *b);

/* The bytes bloom_serialise() writes: BLOOM_HEADER_BYTES + 32 nblocks. */
size_t bloom_serialised_size(const struct bloom *b);

/* Writes the filter into buf in the form above. Returns the bytes written,
 * or 0 (and writes nothing) if cap is less than bloom_serialised_size(). */
size_t bloom_serialise(const struct bloom *b, void *buf, size_t cap);

/*
 * Reads a filter that bloom_serialise() wrote, exactly len bytes, into a
 * new filter in *out. Returns 0; -EBADMSG if len is not the size the
 * header implies, the magic or reserved field is wrong, nblocks is 0 or
 * above BLOOM_NBLOCKS_MAX, or the checksum differs; -EPROTO for a
 * version other than BLOOM_VERSION; -EINVAL for a NULL argument; or
 * -ENOMEM.
 */
int bloom_deserialise(const void *buf, size_t len, struct bloom **out);

/*
 * For tests and benchmarks only. The filter uses AVX2 when the CPU has it
 * (checked at run time) and a scalar path otherwise; both give the same
 * bits. bloom_force_scalar(true) makes every filter take the scalar path
 * until bloom_force_scalar(false). Not to be called while another thread
 * uses a filter. bloom_simd_active() says whether AVX2 is in use.
 */
void bloom_force_scalar(bool on);
bool bloom_simd_active(void);

#endif /* MEMLANE_BLOOM_H */

/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The split-block Bloom filter described in bloom.h.
 *
 * Adds and queries take one of two paths that set and test the same bits:
 * AVX2, which forms a block's eight one-bit masks in one register, and a
 * scalar loop. The build sets no -march, so the AVX2 functions are compiled
 * for that target alone and chosen at run time when the CPU has it.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BLOOM_X86 1
#endif

#include "common.h"

#include "bloom.h"

#define BLOOM_WORDS 8

/* One odd multiplier per word; the top 5 bits of lo32(hv) * salt pick the
 * word's bit. Drawn at random once; any distinct odd values would do as
 * long as they stay fixed, since serialised filters depend on them. */
static const uint32_t bloom_salt[BLOOM_WORDS] = {
	0xf4074a31u, 0x11ca9835u, 0xa9c9192du, 0x39475481u,
	0xe084357bu, 0x9d1dff8fu, 0xe4548a7fu, 0x392cced7u,
};

struct bloom_block {
	uint32_t w[BLOOM_WORDS];
} ML_ALIGNED(BLOOM_BLOCK_BYTES);

_Static_assert(sizeof(struct bloom_block) == BLOOM_BLOCK_BYTES,
	       "a block is 256 bits");
_Static_assert(BLOOM_BLOCK_BYTES * 8 == BLOOM_BLOCK_BITS,
	       "block bytes and bits agree");

struct bloom {
	struct bloom_block *blocks; /* nblocks, 32-byte aligned */
	uint64_t nblocks;
	uint64_t count;
};

/* Whether the CPU has AVX2, and whether a test has turned it off. */
static bool bloom_cpu_avx2;
static bool bloom_scalar_forced;

#ifdef BLOOM_X86
__attribute__((constructor)) static void bloom_cpu_detect(void)
{
	__builtin_cpu_init();
	bloom_cpu_avx2 = __builtin_cpu_supports("avx2");
}
#endif

static inline bool bloom_use_avx2(void)
{
	return bloom_cpu_avx2 && !bloom_scalar_forced;
}

void bloom_force_scalar(bool on)
{
	bloom_scalar_forced = on;
}

bool bloom_simd_active(void)
{
	return bloom_use_avx2();
}

static inline struct bloom_block *bloom_block_of(const struct bloom *b,
						 uint64_t hv)
{
	/* nblocks <= 2^32, so the product fits in 64 bits. */
	return &b->blocks[((hv >> 32) * b->nblocks) >> 32];
}

/* ------------------------------------------------------------------------
 * Scalar path
 * ---------------------------------------------------------------------- */

static inline uint32_t bloom_bit(uint32_t lo, unsigned w)
{
	return 1u << ((lo * bloom_salt[w]) >> 27);
}

static void bloom_add_scalar(struct bloom_block *blk, uint32_t lo)
{
	unsigned w;

	for (w = 0; w < BLOOM_WORDS; w++)
		blk->w[w] |= bloom_bit(lo, w);
}

static bool bloom_maybe_scalar(const struct bloom_block *blk, uint32_t lo)
{
	uint32_t missing = 0;
	unsigned w;

	/* No early exit: a branch per word costs more in mispredictions on
	 * absent keys than the few extra instructions. */
	for (w = 0; w < BLOOM_WORDS; w++)
		missing |= bloom_bit(lo, w) & ~blk->w[w];
	return missing == 0;
}

/* ------------------------------------------------------------------------
 * AVX2 path
 * ---------------------------------------------------------------------- */

#ifdef BLOOM_X86
__attribute__((target("avx2"))) static inline __m256i bloom_mask_avx2(
	uint32_t lo)
{
	const __m256i salt = _mm256_loadu_si256((const __m256i *)bloom_salt);
	__m256i h = _mm256_mullo_epi32(_mm256_set1_epi32((int)lo), salt);

	return _mm256_sllv_epi32(_mm256_set1_epi32(1),
				 _mm256_srli_epi32(h, 27));
}

__attribute__((target("avx2"))) static void bloom_add_avx2(
	struct bloom_block *blk, uint32_t lo)
{
	__m256i *p = (__m256i *)blk->w;

	_mm256_store_si256(
		p, _mm256_or_si256(_mm256_load_si256(p), bloom_mask_avx2(lo)));
}

__attribute__((target("avx2"))) static bool bloom_maybe_avx2(
	const struct bloom_block *blk, uint32_t lo)
{
	__m256i v = _mm256_load_si256((const __m256i *)blk->w);

	/* testc: (~v & mask) == 0, every bit of the mask is set in v. */
	return _mm256_testc_si256(v, bloom_mask_avx2(lo));
}
#endif

/* ------------------------------------------------------------------------
 * The filter
 * ---------------------------------------------------------------------- */

static int bloom_alloc(uint64_t nblocks, struct bloom **out)
{
	struct bloom *b;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->blocks = aligned_alloc(BLOOM_BLOCK_BYTES,
				  (size_t)nblocks * BLOOM_BLOCK_BYTES);
	if (!b->blocks)
		goto free_bloom;
	b->nblocks = nblocks;
	*out = b;
	return 0;

free_bloom:
	free(b);
	return -ENOMEM;
}

/* Whether a filter of nblocks can exist and be serialised in a size_t. */
static bool bloom_nblocks_ok(uint64_t nblocks)
{
	return nblocks >= 1 && nblocks <= BLOOM_NBLOCKS_MAX &&
	       nblocks <= (SIZE_MAX - BLOOM_HEADER_BYTES) / BLOOM_BLOCK_BYTES;
}

int bloom_create(const struct bloom_params *p, struct bloom **out)
{
	double blocks;
	uint64_t nblocks;
	int rc;

	if (!p || !out || !(p->bits_per_key > 0.0))
		return -EINVAL;
	blocks = ceil((double)p->nkeys * p->bits_per_key / BLOOM_BLOCK_BITS);
	if (!(blocks <= (double)BLOOM_NBLOCKS_MAX))
		return -EINVAL;
	nblocks = ML_MAX((uint64_t)blocks, 1);
	if (!bloom_nblocks_ok(nblocks))
		return -EINVAL;
	rc = bloom_alloc(nblocks, out);
	if (rc)
		return rc;
	bloom_clear(*out);
	return 0;
}

void bloom_free(struct bloom *b)
{
	if (!b)
		return;
	free(b->blocks);
	free(b);
}

uint64_t bloom_hash(const void *key, size_t len)
{
	return ml_hash(key, len);
}

void bloom_add(struct bloom *b, uint64_t hv)
{
	struct bloom_block *blk = bloom_block_of(b, hv);

#ifdef BLOOM_X86
	if (bloom_use_avx2())
		bloom_add_avx2(blk, (uint32_t)hv);
	else
#endif
		bloom_add_scalar(blk, (uint32_t)hv);
	b->count++;
}

bool bloom_maybe(const struct bloom *b, uint64_t hv)
{
	const struct bloom_block *blk = bloom_block_of(b, hv);

#ifdef BLOOM_X86
	if (bloom_use_avx2())
		return bloom_maybe_avx2(blk, (uint32_t)hv);
#endif
	return bloom_maybe_scalar(blk, (uint32_t)hv);
}

int bloom_merge(struct bloom *dst, const struct bloom *src)
{
	uint64_t i;
	unsigned w;

	if (dst->nblocks != src->nblocks)
		return -EINVAL;
	for (i = 0; i < dst->nblocks; i++) {
		for (w = 0; w < BLOOM_WORDS; w++)
			dst->blocks[i].w[w] |= src->blocks[i].w[w];
	}
	/* Saturate: an upper bound must not wrap to a small number. */
	if (__builtin_add_overflow(dst->count, src->count, &dst->count))
		dst->count = UINT64_MAX;
	return 0;
}

void bloom_clear(struct bloom *b)
{
	memset(b->blocks, 0, (size_t)b->nblocks * BLOOM_BLOCK_BYTES);
	b->count = 0;
}

uint64_t bloom_nblocks(const struct bloom *b)
{
	return b->nblocks;
}

uint64_t bloom_count(const struct bloom *b)
{
	return b->count;
}

/* A block holding i keys answers a query positive with probability
 * (1 - (31/32)^i)^8: each word has one bit per key. */
static double bloom_block_fpr(double i)
{
	double word = 1.0 - pow(1.0 - 1.0 / 32, i);

	return pow(word, BLOOM_WORDS);
}

/*
 * Poisson probabilities fall below this fraction of the mode's within a
 * few dozen standard deviations on either side; what is left of the sum
 * is smaller than a double can show next to it.
 */
#define BLOOM_FPR_EPS 1e-20
/* Above this mean load every block that a query can land in is all but
 * full: 8 (31/32)^2000 < 1e-27 and a Poisson(4096) load is below 2000
 * with a probability far smaller still. */
#define BLOOM_FPR_FULL_LOAD 4096.0

double bloom_fpr_theory(const struct bloom *b)
{
	double lambda, w, sum = 0.0, total = 0.0;
	uint64_t mode, i;

	if (b->count == 0)
		return 0.0;
	lambda = (double)b->count / (double)b->nblocks;
	if (lambda > BLOOM_FPR_FULL_LOAD)
		return 1.0;
	/*
	 * Sum outwards from the mode, where the terms are largest, with the
	 * pmf scaled so that the mode's weight is 1, and divide by the sum of
	 * the weights at the end. Nothing underflows (exp(-lambda) would
	 * above a load of 745), and the scale needs no lgamma(), whose
	 * rounding would show as noise of 1e-12 in the result.
	 */
	mode = (uint64_t)lambda;
	for (i = mode, w = 1.0; w >= BLOOM_FPR_EPS; i++) {
		sum += w * bloom_block_fpr((double)i);
		total += w;
		w *= lambda / (double)(i + 1);
	}
	for (i = mode, w = 1.0; i > 0; i--) {
		w *= (double)i / lambda;
		if (w < BLOOM_FPR_EPS)
			break;
		sum += w * bloom_block_fpr((double)(i - 1));
		total += w;
	}
	return ML_MIN(sum / total, 1.0);
}

/* ------------------------------------------------------------------------
 * Serialised form
 * ---------------------------------------------------------------------- */

#define BLOOM_OFF_MAGIC	   0
#define BLOOM_OFF_VERSION  4
#define BLOOM_OFF_RESERVED 6
#define BLOOM_OFF_NBLOCKS  8
#define BLOOM_OFF_COUNT	   16
#define BLOOM_OFF_CHECKSUM 24

_Static_assert(BLOOM_OFF_CHECKSUM + 8 == BLOOM_HEADER_BYTES,
	       "the header ends with the checksum");

static void bloom_put_le(uint8_t *p, uint64_t v, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t bloom_get_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	unsigned i;

	for (i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* XXH3-64 of the header up to the checksum, then the blocks. */
static uint64_t bloom_checksum(const uint8_t *buf, uint64_t nblocks)
{
	XXH3_state_t st;

	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, buf, BLOOM_OFF_CHECKSUM);
	XXH3_64bits_update(&st, buf + BLOOM_HEADER_BYTES,
			   (size_t)nblocks * BLOOM_BLOCK_BYTES);
	return XXH3_64bits_digest(&st);
}

size_t bloom_serialised_size(const struct bloom *b)
{
	return BLOOM_HEADER_BYTES + (size_t)b->nblocks * BLOOM_BLOCK_BYTES;
}

size_t bloom_serialise(const struct bloom *b, void *buf, size_t cap)
{
	size_t size = bloom_serialised_size(b);
	uint8_t *p = buf, *q;
	uint64_t i;
	unsigned w;

	if (!buf || cap < size)
		return 0;
	memcpy(p + BLOOM_OFF_MAGIC, BLOOM_MAGIC, 4);
	bloom_put_le(p + BLOOM_OFF_VERSION, BLOOM_VERSION, 2);
	bloom_put_le(p + BLOOM_OFF_RESERVED, 0, 2);
	bloom_put_le(p + BLOOM_OFF_NBLOCKS, b->nblocks, 8);
	bloom_put_le(p + BLOOM_OFF_COUNT, b->count, 8);
	q = p + BLOOM_HEADER_BYTES;
	for (i = 0; i < b->nblocks; i++) {
		for (w = 0; w < BLOOM_WORDS; w++, q += 4)
			bloom_put_le(q, b->blocks[i].w[w], 4);
	}
	bloom_put_le(p + BLOOM_OFF_CHECKSUM, bloom_checksum(p, b->nblocks), 8);
	return size;
}

int bloom_deserialise(const void *buf, size_t len, struct bloom **out)
{
	const uint8_t *p = buf, *q;
	uint64_t nblocks, i;
	struct bloom *b;
	unsigned w;
	int rc;

	if (!buf || !out)
		return -EINVAL;
	if (len < BLOOM_HEADER_BYTES ||
	    memcmp(p + BLOOM_OFF_MAGIC, BLOOM_MAGIC, 4))
		return -EBADMSG;
	if (bloom_get_le(p + BLOOM_OFF_VERSION, 2) != BLOOM_VERSION)
		return -EPROTO;
	if (bloom_get_le(p + BLOOM_OFF_RESERVED, 2) != 0)
		return -EBADMSG;
	nblocks = bloom_get_le(p + BLOOM_OFF_NBLOCKS, 8);
	if (!bloom_nblocks_ok(nblocks) ||
	    len != BLOOM_HEADER_BYTES + (size_t)nblocks * BLOOM_BLOCK_BYTES)
		return -EBADMSG;
	if (bloom_get_le(p + BLOOM_OFF_CHECKSUM, 8) !=
	    bloom_checksum(p, nblocks))
		return -EBADMSG;
	rc = bloom_alloc(nblocks, &b);
	if (rc)
		return rc;
	b->count = bloom_get_le(p + BLOOM_OFF_COUNT, 8);
	q = p + BLOOM_HEADER_BYTES;
	for (i = 0; i < nblocks; i++) {
		for (w = 0; w < BLOOM_WORDS; w++, q += 4)
			b->blocks[i].w[w] = (uint32_t)bloom_get_le(q, 4);
	}
	*out = b;
	return 0;
}

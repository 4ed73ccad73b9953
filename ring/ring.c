/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The node ring: libmemcached's weighted ketama continuum (see ring.h),
 * sorted points with their members, and a table of where each 2^16-wide
 * slice of the point space starts in it, so that a lookup searches only
 * the few points of its slice.
 */
/* MD5 through its direct interface: one call, no context to allocate,
 * which OpenSSL 3 keeps but marks deprecated */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/md5.h>

#include "ring.h"

#define POINTS_PER_MEMBER 160 /* libmemcached's, for weighted ketama */
#define POINTS_PER_DIGEST 4
#define SLICE_BITS	  16

struct point {
	uint32_t value;
	uint32_t member;
};

struct ring {
	uint64_t epoch;
	unsigned nmembers, npoints;
	struct ring_member *members;
	unsigned *member_points;
	double *share;
	struct point *points;
	/* slice[s]: the first point whose value >> SLICE_BITS is >= s */
	uint32_t slice[(1u << (32 - SLICE_BITS)) + 1];
};

static uint32_t digest_word(const unsigned char *d, unsigned x)
{
	return (uint32_t)d[4 * x + 3] << 24 | (uint32_t)d[4 * x + 2] << 16 |
	       (uint32_t)d[4 * x + 1] << 8 | d[4 * x];
}

uint32_t ring_key_point(const void *key, size_t len)
{
	unsigned char d[MD5_DIGEST_LENGTH];

	MD5(key, len, d);
	return digest_word(d, 0);
}

/*
 * The points of a member of weight w among n members of total weight
 * total, exactly as libmemcached computes them: in float32, with its
 * small addend, floored to a multiple of four.
 */
static uint32_t member_npoints(uint32_t w, uint64_t total, unsigned n)
{
	float pct = (float)w / (float)total;
	float f =
		(float)(pct * POINTS_PER_MEMBER / 4 * (float)n + 0.0000000001);

	return (uint32_t)floorf(f) * 4;
}

static int point_cmp(const void *a, const void *b)
{
	const struct point *x = a, *y = b;

	if (x->value != y->value)
		return x->value < y->value ? -1 : 1;
	return x->member < y->member ? -1 : x->member > y->member;
}

/* Adds member i's points at r->points + *at. */
static int member_points(struct ring *r, unsigned i, uint32_t count,
			 unsigned *at)
{
	const struct ring_member *m = &r->members[i];

	for (uint32_t j = 0; j < count / POINTS_PER_DIGEST; j++) {
		unsigned char d[MD5_DIGEST_LENGTH];
		char name[RING_HOST_MAX + 24];
		int n;

		if (m->port == RING_DEFAULT_PORT)
			n = snprintf(name, sizeof(name), "%s-%u", m->host, j);
		else
			n = snprintf(name, sizeof(name), "%s:%u-%u", m->host,
				     m->port, j);
		if (n < 0 || (size_t)n >= sizeof(name))
			return -EINVAL;
		MD5((const unsigned char *)name, (size_t)n, d);
		for (unsigned x = 0; x < POINTS_PER_DIGEST; x++) {
			r->points[*at].value = digest_word(d, x);
			r->points[*at].member = i;
			(*at)++;
		}
	}
	return 0;
}

/* Each point owns the arc from just past the point before it up to
 * itself; the lowest also owns the wrap past the highest. */
static void shares(struct ring *r)
{
	for (unsigned j = 0; j < r->npoints; j++) {
		uint64_t lo = j ? (uint64_t)r->points[j - 1].value + 1 : 0;
		uint64_t end = (uint64_t)r->points[j].value + 1;
		uint64_t arc = end > lo ? end - lo : 0;

		if (j == 0)
			arc += UINT32_MAX - r->points[r->npoints - 1].value;
		r->share[r->points[j].member] += (double)arc / 4294967296.0;
	}
}

int ring_create(const struct ring_params *p, struct ring **out)
{
	uint64_t total = 0, npoints = 0;
	struct ring *r;
	unsigned at = 0, owners = 0;

	if (!p->nmembers || p->nmembers > RING_MEMBER_MAX)
		return -EINVAL;
	for (unsigned i = 0; i < p->nmembers; i++) {
		size_t hl = strnlen(p->members[i].host, RING_HOST_MAX);

		if (hl == 0 || hl == RING_HOST_MAX)
			return -EINVAL;
		total += p->members[i].weight;
		owners += p->members[i].weight > 0;
	}
	if (!total)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->epoch = p->epoch;
	r->nmembers = p->nmembers;
	r->members = calloc(p->nmembers, sizeof(*r->members));
	r->member_points = calloc(p->nmembers, sizeof(*r->member_points));
	r->share = calloc(p->nmembers, sizeof(*r->share));
	if (!r->members || !r->member_points || !r->share)
		goto nomem;
	memcpy(r->members, p->members, sizeof(*p->members) * p->nmembers);
	for (unsigned i = 0; i < p->nmembers; i++) {
		/* a member of weight 0 is as if not listed: the others get
		 * the points a client gets without it in its list */
		r->member_points[i] =
			member_npoints(r->members[i].weight, total, owners);
		npoints += r->member_points[i];
	}
	if (!npoints || npoints > UINT32_MAX / 2) {
		ring_free(r);
		return -EINVAL;
	}
	r->npoints = (unsigned)npoints;
	r->points = malloc(sizeof(*r->points) * npoints);
	if (!r->points)
		goto nomem;
	for (unsigned i = 0; i < p->nmembers; i++)
		if (member_points(r, i, r->member_points[i], &at)) {
			ring_free(r);
			return -EINVAL;
		}
	qsort(r->points, r->npoints, sizeof(*r->points), point_cmp);
	for (uint64_t s = 0, j = 0; s <= (1u << (32 - SLICE_BITS)); s++) {
		while (j < r->npoints &&
		       (uint64_t)r->points[j].value < s << SLICE_BITS)
			j++;
		r->slice[s] = (uint32_t)j;
	}
	shares(r);
	*out = r;
	return 0;
nomem:
	ring_free(r);
	return -ENOMEM;
}

void ring_free(struct ring *r)
{
	if (!r)
		return;
	free(r->members);
	free(r->member_points);
	free(r->share);
	free(r->points);
	free(r);
}

unsigned ring_owner(const struct ring *r, uint32_t point)
{
	uint32_t s = point >> SLICE_BITS;
	uint32_t lo = r->slice[s], hi = r->slice[s + 1];

	/* the first point >= point lies in [lo, hi]: in the slice, or the
	 * first one of a later slice */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (r->points[mid].value < point)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == r->npoints)
		lo = 0;
	return r->points[lo].member;
}

unsigned ring_nmembers(const struct ring *r)
{
	return r->nmembers;
}

const struct ring_member *ring_member(const struct ring *r, unsigned i)
{
	return i < r->nmembers ? &r->members[i] : NULL;
}

uint64_t ring_epoch(const struct ring *r)
{
	return r->epoch;
}

unsigned ring_npoints(const struct ring *r)
{
	return r->npoints;
}

unsigned ring_member_npoints(const struct ring *r, unsigned i)
{
	return i < r->nmembers ? r->member_points[i] : 0;
}

double ring_share(const struct ring *r, unsigned i)
{
	return i < r->nmembers ? r->share[i] : 0;
}

/* Adds [lo, hi] to the ranges, merging with the last when they touch. */
static void range_add(struct ring_range *out, unsigned max, unsigned *n,
		      uint32_t lo, uint32_t hi)
{
	if (*n && *n <= max && (uint64_t)out[*n - 1].hi + 1 == lo) {
		out[*n - 1].hi = hi;
		return;
	}
	if (*n < max) {
		out[*n].lo = lo;
		out[*n].hi = hi;
	}
	(*n)++;
}

unsigned ring_ranges(const struct ring *r, unsigned i, struct ring_range *out,
		     unsigned max)
{
	const struct point *last = &r->points[r->npoints - 1];
	unsigned n = 0;

	if (i >= r->nmembers)
		return 0;
	for (unsigned j = 0; j < r->npoints; j++) {
		uint64_t lo = j ? (uint64_t)r->points[j - 1].value + 1 : 0;

		if (r->points[j].member != i || r->points[j].value < lo)
			continue;
		range_add(out, max, &n, (uint32_t)lo, r->points[j].value);
	}
	/* past the highest point: the lowest point's owner */
	if (r->points[0].member == i && last->value < UINT32_MAX)
		range_add(out, max, &n, last->value + 1, UINT32_MAX);
	return n;
}

bool ring_range_has(const struct ring_range *rs, unsigned n, uint32_t point)
{
	unsigned lo = 0, hi = n;

	/* the first range whose end is at or above the point */
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (rs[mid].hi < point)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && rs[lo].lo <= point;
}

unsigned ring_ranges_union(const struct ring_range *a, unsigned na,
			   const struct ring_range *b, unsigned nb,
			   struct ring_range *out)
{
	unsigned n = 0, i = 0, j = 0;

	while (i < na || j < nb) {
		struct ring_range x = j >= nb || (i < na && a[i].lo <= b[j].lo)
					      ? a[i++]
					      : b[j++];

		if (n && (uint64_t)out[n - 1].hi + 1 >= x.lo) {
			if (x.hi > out[n - 1].hi)
				out[n - 1].hi = x.hi;
		} else {
			out[n++] = x;
		}
	}
	return n;
}

unsigned ring_ranges_minus(const struct ring_range *a, unsigned na,
			   const struct ring_range *b, unsigned nb,
			   struct ring_range *out)
{
	unsigned n = 0, j = 0;

	for (unsigned i = 0; i < na; i++) {
		uint64_t lo = a[i].lo, hi = a[i].hi;

		while (j < nb && b[j].hi < lo)
			j++;
		for (unsigned k = j; k < nb && b[k].lo <= hi && lo <= hi; k++) {
			if (b[k].lo > lo)
				out[n++] = (struct ring_range){(uint32_t)lo,
							       b[k].lo - 1};
			lo = (uint64_t)b[k].hi + 1;
		}
		if (lo <= hi)
			out[n++] =
				(struct ring_range){(uint32_t)lo, (uint32_t)hi};
	}
	return n;
}

unsigned ring_ranges_intersect(const struct ring_range *a, unsigned na,
			       const struct ring_range *b, unsigned nb,
			       struct ring_range *out)
{
	unsigned n = 0, i = 0, j = 0;

	while (i < na && j < nb) {
		uint32_t lo = a[i].lo > b[j].lo ? a[i].lo : b[j].lo;
		uint32_t hi = a[i].hi < b[j].hi ? a[i].hi : b[j].hi;

		if (lo <= hi)
			out[n++] = (struct ring_range){lo, hi};
		if (a[i].hi < b[j].hi)
			i++;
		else
			j++;
	}
	return n;
}

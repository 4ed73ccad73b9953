/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Per-prefix stats (memcached's -D and stats detail on|off|dump): while
 * detail is on, each get of a key, its hit, each storage command and
 * each delete is counted under the key's prefix, the part before the
 * first delimiter (':' unless -D says); a key without the delimiter is
 * not counted, as in memcached. Each node counts its own requests in a
 * table of its own, fixed in size once made (so that the node answering
 * a dump can read every node's table while they count); the dump sums
 * the nodes' tables by prefix.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto_internal.h"

#define DETAIL_SLOTS 1024 /* prefixes per node; more are not counted */

struct detail_slot {
	atomic_bool used; /* the prefix is written before this is set */
	uint8_t len;
	char prefix[PROTO_KEY_MAX];
	uint64_t get, hit, set, del;
};

struct proto_detail {
	struct detail_slot slot[DETAIL_SLOTS];
};

static char delim(const struct proto_node *n)
{
	return n->p.detail_delim ? n->p.detail_delim : ':';
}

/* The slot of key's prefix, made when new; NULL when the key has no
 * prefix or the table is full. */
static struct detail_slot *slot_of(struct proto_node *n, const char *key,
				   uint32_t klen)
{
	const char *d = memchr(key, delim(n), klen);
	uint32_t len, h, i;

	if (!d)
		return NULL;
	if (!n->detail_table) {
		n->detail_table = calloc(1, sizeof(*n->detail_table));
		if (!n->detail_table)
			return NULL;
	}
	len = (uint32_t)(d - key);
	h = (uint32_t)ml_hash(key, len);
	for (i = 0; i < DETAIL_SLOTS; i++) {
		struct detail_slot *s =
			&n->detail_table->slot[(h + i) % DETAIL_SLOTS];

		if (!atomic_load_explicit(&s->used, memory_order_acquire)) {
			s->len = (uint8_t)len;
			memcpy(s->prefix, key, len);
			atomic_store_explicit(&s->used, true,
					      memory_order_release);
			return s;
		}
		if (s->len == len && memcmp(s->prefix, key, len) == 0)
			return s;
	}
	return NULL;
}

void proto_detail_count(struct proto_node *n, const char *key, uint32_t klen,
			enum proto_detail_what what)
{
	struct detail_slot *s = slot_of(n, key, klen);

	if (!s)
		return;
	switch (what) {
	case DETAIL_HIT:
		s->hit++;
		s->get++; /* a hit is a get too */
		break;
	case DETAIL_GET:
		s->get++;
		break;
	case DETAIL_SET:
		s->set++;
		break;
	case DETAIL_DEL:
		s->del++;
		break;
	}
}

void proto_detail_free(struct proto_node *n)
{
	free(n->detail_table);
	n->detail_table = NULL;
}

/* The slot of another table that holds like's prefix, or NULL. */
static const struct detail_slot *slot_find(const struct proto_detail *t,
					   const struct detail_slot *like)
{
	uint32_t h = (uint32_t)ml_hash(like->prefix, like->len);

	for (uint32_t i = 0; i < DETAIL_SLOTS; i++) {
		const struct detail_slot *s = &t->slot[(h + i) % DETAIL_SLOTS];

		if (!atomic_load_explicit(&s->used, memory_order_acquire))
			return NULL;
		if (s->len == like->len &&
		    memcmp(s->prefix, like->prefix, s->len) == 0)
			return s;
	}
	return NULL;
}

int proto_detail_dump(struct proto_node *n, struct proto_out *out)
{
	unsigned nodes = n->npeers ? n->npeers : 1;

	for (unsigned a = 0; a < nodes; a++) {
		struct proto_node *na = n->npeers ? n->peers[a] : n;
		struct proto_detail *ta = na->detail_table;

		for (unsigned i = 0; ta && i < DETAIL_SLOTS; i++) {
			const struct detail_slot *s = &ta->slot[i];
			uint64_t get = s->get, hit = s->hit, set = s->set,
				 del = s->del;
			bool seen = false;
			char line[PROTO_KEY_MAX + 128];
			int len;

			if (!atomic_load_explicit(&s->used,
						  memory_order_acquire))
				continue;
			/* an earlier node already printed this prefix: the
			 * line is printed once, by the first node with it */
			for (unsigned b = 0; b < a && !seen; b++) {
				struct proto_node *nb = n->peers[b];

				seen = nb->detail_table &&
				       slot_find(nb->detail_table, s);
			}
			if (seen)
				continue;
			for (unsigned b = a + 1; b < nodes; b++) {
				struct proto_node *nb = n->peers[b];
				const struct detail_slot *o =
					nb->detail_table
						? slot_find(nb->detail_table, s)
						: NULL;

				if (o) {
					get += o->get;
					hit += o->hit;
					set += o->set;
					del += o->del;
				}
			}
			len = snprintf(line, sizeof(line),
				       "PREFIX %.*s get %llu hit %llu set %llu "
				       "del %llu\r\n",
				       (int)s->len, s->prefix,
				       (unsigned long long)get,
				       (unsigned long long)hit,
				       (unsigned long long)set,
				       (unsigned long long)del);
			if (proto_out_reserve(out, (size_t)len))
				return -ENOMEM;
			memcpy(out->buf + out->len, line, (size_t)len);
			out->len += (size_t)len;
		}
	}
	if (proto_out_reserve(out, 5))
		return -ENOMEM;
	memcpy(out->buf + out->len, "END\r\n", 5);
	out->len += 5;
	return 0;
}

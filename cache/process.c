/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * process: the one bridge between the protocol parser and the shards.
 *
 * proto_execute() takes a parsed request, routes its keys to their shards,
 * runs the store operations and composes the reply that memcached 1.6.18
 * would send, byte for byte: the same status words, the same order of
 * meta return flags, the same cases where noreply (or meta q) hides a
 * reply and the same cases where it does not.
 *
 * A node is used by one thread at a time and has no locks. Its counters
 * (the "stats" command) live in the node; the shards keep their own item
 * and memory counters, which stats sums.
 *
 * Replies are appended to a struct proto_out that grows by doubling, so a
 * connection stops allocating once its buffer has reached its working
 * size. Numbers are written by hand, without printf.
 */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "cache.h"
#include "common.h"
#include "proto_internal.h"

/* Room for any reply line apart from its data block. The longest is a
 * meta line: a base64 key (336 bytes), an opaque (32) and a dozen
 * numbers. */
#define LINE_ROOM 1024u

/* Room for the whole general stats reply (it is about 2.5 KiB). */
#define STATS_ROOM 8192u

/* The first size a reply buffer takes. */
#define OUT_MIN_CAP 1024u

/*
 * memcached's size of an item: its 48-byte header, the key and a NUL, the
 * data with its \r\n, 4 bytes of client flags when they are not 0 and the
 * 8-byte CAS. "me" reports it, and it tells which of memcached's two
 * answers a failed append gets.
 */
#define MC_ITEM_HDR 48u
#define MC_ITEM_CAS 8u

/* ------------------------------------------------------------------------
 * Writing replies
 * ---------------------------------------------------------------------- */

int proto_out_reserve(struct proto_out *o, size_t more)
{
	size_t need, cap;
	char *b;

	if (likely(o->cap - o->len >= more))
		return 0;
	if (more > SIZE_MAX / 2 - o->len)
		return -ENOMEM;
	need = o->len + more;
	cap = o->cap ? o->cap : OUT_MIN_CAP;
	while (cap < need)
		cap *= 2;
	b = realloc(o->buf, cap);
	if (!b)
		return -ENOMEM;
	o->buf = b;
	o->cap = cap;
	return 0;
}

void proto_out_free(struct proto_out *o)
{
	if (!o)
		return;
	free(o->buf);
	o->buf = NULL;
	o->len = 0;
	o->cap = 0;
}

/* Returns where up to room bytes may be written, or NULL (-ENOMEM). The
 * caller writes, then sets the new end with out_end(). */
static inline char *out_begin(struct proto_out *o, size_t room)
{
	if (unlikely(proto_out_reserve(o, room)))
		return NULL;
	return o->buf + o->len;
}

static inline void out_end(struct proto_out *o, char *p)
{
	o->len = (size_t)(p - o->buf);
}

static int out_put(struct proto_out *o, const char *s, size_t n)
{
	if (n == 0) /* an empty buffer may have no memory at all */
		return 0;
	if (unlikely(proto_out_reserve(o, n)))
		return -ENOMEM;
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	return 0;
}

#define OUT_LIT(o, s) out_put((o), (s), sizeof(s) - 1)

static inline char *put_mem(char *p, const void *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

#define PUT_LIT(p, s) put_mem((p), (s), sizeof(s) - 1)

static const char digit_pairs[201] =
	"00010203040506070809101112131415161718192021222324252627282930313233"
	"34353637383940414243444546474849505152535455565758596061626364656667"
	"6869707172737475767778798081828384858687888990919293949596979899";

/* Writes v in decimal, two digits at a time. */
static char *put_u64(char *p, uint64_t v)
{
	char tmp[20];
	char *t = tmp + sizeof(tmp);
	size_t n;

	while (v >= 100) {
		unsigned d = (unsigned)(v % 100) * 2;

		v /= 100;
		t -= 2;
		t[0] = digit_pairs[d];
		t[1] = digit_pairs[d + 1];
	}
	if (v >= 10) {
		unsigned d = (unsigned)v * 2;

		t -= 2;
		t[0] = digit_pairs[d];
		t[1] = digit_pairs[d + 1];
	} else {
		*--t = (char)('0' + v);
	}
	n = (size_t)(tmp + sizeof(tmp) - t);
	memcpy(p, t, n);
	return p + n;
}

static char *put_i64(char *p, int64_t v)
{
	if (v < 0) {
		*p++ = '-';
		return put_u64(p, (uint64_t)0 - (uint64_t)v);
	}
	return put_u64(p, (uint64_t)v);
}

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Writes n bytes in base64 with padding (meta keys sent with b). */
static char *put_base64(char *p, const unsigned char *s, size_t n)
{
	size_t i;

	for (i = 0; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 |
			     s[i + 2];

		*p++ = b64_alphabet[v >> 18];
		*p++ = b64_alphabet[(v >> 12) & 63];
		*p++ = b64_alphabet[(v >> 6) & 63];
		*p++ = b64_alphabet[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)s[i] << 16;

		*p++ = b64_alphabet[v >> 18];
		*p++ = b64_alphabet[(v >> 12) & 63];
		*p++ = '=';
		*p++ = '=';
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;

		*p++ = b64_alphabet[v >> 18];
		*p++ = b64_alphabet[(v >> 12) & 63];
		*p++ = b64_alphabet[(v >> 6) & 63];
		*p++ = '=';
	}
	return p;
}

/* ------------------------------------------------------------------------
 * The node
 * ---------------------------------------------------------------------- */

size_t proto_item_size(uint32_t klen, uint32_t vlen, uint32_t flags)
{
	return MC_ITEM_HDR + klen + 1 + (size_t)vlen + 2 + (flags ? 4 : 0) +
	       MC_ITEM_CAS;
}

struct proto_node *proto_node_create(const struct proto_node_params *p)
{
	struct proto_node *n;
	struct cache_params cp;
	unsigned i, bits = 0;
	int err;

	if (!p || p->nshards == 0 || p->nshards > (1u << 16) ||
	    p->mem_limit < p->nshards) {
		errno = EINVAL;
		return NULL;
	}
	n = calloc(1, sizeof(*n));
	if (!n) {
		errno = ENOMEM;
		return NULL;
	}
	n->shards = calloc(p->nshards, sizeof(*n->shards));
	if (!n->shards) {
		free(n);
		errno = ENOMEM;
		return NULL;
	}
	n->nshards = p->nshards;
	n->now = p->now;
	n->started = p->now;
	n->p = *p;
	n->lru_crawler = p->lru_crawler;
	n->detail = p->detail_delim != 0;
	n->slab_automove = 1;

	/* CAS values carry the shard id in their low bits: unique per node */
	while ((1u << bits) < p->nshards)
		bits++;
	if (p->cas_id_bits) {
		/* one shard of a node whose other shards have other nodes */
		if (p->nshards != 1 || p->cas_id >> p->cas_id_bits) {
			free(n->shards);
			free(n);
			errno = EINVAL;
			return NULL;
		}
		bits = p->cas_id_bits;
	}
	cp = (struct cache_params){
		.mem_limit = p->mem_limit / p->nshards,
		.item_size_max = p->item_size_max,
		.item_size = proto_item_size,
		.segment_size = p->segment_size,
		.items_hint = (p->items_hint + p->nshards - 1) / p->nshards,
		.cas_id_bits = bits,
		.now = p->now,
		.no_evict = p->no_evict,
		.no_cas = p->no_cas,
		.huge_pages = p->huge_pages,
		.evicted = p->watch ? proto_watch_evicted : NULL,
		.evicted_arg = n,
	};
	for (i = 0; i < p->nshards; i++) {
		cp.cas_id = p->cas_id_bits ? p->cas_id : i;
		n->shards[i] = cache_create(&cp);
		if (!n->shards[i])
			goto err_shards;
	}
	return n;

err_shards:
	err = errno ? errno : ENOMEM;
	proto_node_free(n);
	errno = err;
	return NULL;
}

void proto_node_free(struct proto_node *n)
{
	unsigned i;

	if (!n)
		return;
	for (i = 0; i < n->nshards; i++)
		cache_free(n->shards[i]);
	free(n->shards);
	proto_detail_free(n);
	free(n);
}

static void node_flush(struct proto_node *n)
{
	unsigned i;

	for (i = 0; i < n->nshards; i++)
		cache_flush(n->shards[i]);
	n->flush_pending = false;
	n->flush_hold = false;
}

/* A delayed flush_all comes due in the second "at". */
static void node_flush_at(struct proto_node *n, uint32_t at)
{
	node_flush(n);
	n->flush_at = at;
	n->flush_hold = at == n->now;
}

void proto_node_set_time(struct proto_node *n, uint32_t now)
{
	unsigned i;

	n->now = now;
	for (i = 0; i < n->nshards; i++)
		cache_set_time(n->shards[i], now);
	if (n->flush_hold && now != n->flush_at)
		n->flush_hold = false;
	if (n->flush_pending && now >= n->flush_at)
		node_flush_at(n, n->flush_at);
}

struct cache_shard *proto_node_shard(struct proto_node *n, unsigned i)
{
	return i < n->nshards ? n->shards[i] : NULL;
}

void proto_prefetch(const struct proto_node *n, unsigned cnt,
		    const uint64_t *hv)
{
	uint64_t mine[CACHE_BULK_MAX];

	if (n->nshards == 1) {
		cache_prefetch_bulk(n->shards[0], cnt, hv);
		return;
	}
	for (unsigned s = 0; s < n->nshards; s++) {
		unsigned m = 0;

		for (unsigned i = 0; i < cnt && m < CACHE_BULK_MAX; i++)
			if (ml_hash_core(hv[i], n->nshards) == s)
				mine[m++] = hv[i];
		if (m)
			cache_prefetch_bulk(n->shards[s], m, mine);
	}
}

void proto_node_set_conn_stats(struct proto_node *n,
			       const struct proto_conn_stats *cs)
{
	n->conn = *cs;
}

void proto_node_set_transport_stats(struct proto_node *n,
				    int (*fn)(void *arg, struct proto_out *out),
				    void *arg)
{
	n->transport_stats = fn;
	n->transport_arg = arg;
}

void proto_node_set_peers(struct proto_node *n, struct proto_node *const *peers,
			  unsigned npeers)
{
	n->peers = npeers > 1 ? peers : NULL;
	n->npeers = npeers > 1 ? npeers : 0;
}

/* The nodes stats sums over, and the one that keeps the reset baseline.
 * Other cores' counters are read while they run: a figure may be a few
 * requests old, never torn (aligned 64-bit words). */
static inline unsigned node_count(const struct proto_node *n)
{
	return n->npeers ? n->npeers : 1;
}

static inline const struct proto_node *node_at(const struct proto_node *n,
					       unsigned i)
{
	return n->npeers ? n->peers[i] : n;
}

static inline struct proto_node *node_home(struct proto_node *n)
{
	return n->npeers ? n->peers[0] : n;
}

#define COUNTER_WORDS (sizeof(struct proc_counters) / sizeof(uint64_t))

/* Counters of every node, summed. */
static void node_counters_raw(const struct proto_node *n,
			      struct proc_counters *sum)
{
	uint64_t *t = (uint64_t *)sum;

	memset(sum, 0, sizeof(*sum));
	for (unsigned i = 0; i < node_count(n); i++) {
		const uint64_t *c = (const uint64_t *)&node_at(n, i)->c;

		for (size_t w = 0; w < COUNTER_WORDS; w++)
			t[w] += c[w];
	}
}

/* Counters of every node, summed, since the last reset. */
static void node_counters(struct proto_node *n, struct proc_counters *sum)
{
	const uint64_t *base = (const uint64_t *)&node_home(n)->c_base;
	uint64_t *t = (uint64_t *)sum;

	node_counters_raw(n, sum);
	for (size_t w = 0; w < COUNTER_WORDS; w++)
		t[w] = t[w] > base[w] ? t[w] - base[w] : 0;
}

static void node_conns(const struct proto_node *n, struct proto_conn_stats *sum)
{
	memset(sum, 0, sizeof(*sum));
	for (unsigned i = 0; i < node_count(n); i++) {
		const struct proto_conn_stats *c = &node_at(n, i)->conn;

		sum->curr_connections += c->curr_connections;
		sum->total_connections += c->total_connections;
		sum->rejected_connections += c->rejected_connections;
		sum->bytes_read += c->bytes_read;
		sum->bytes_written += c->bytes_written;
		sum->conn_yields += c->conn_yields;
	}
}

static inline uint64_t node_mem_limit(const struct proto_node *n)
{
	return (uint64_t)n->p.mem_limit * node_count(n);
}

/* ------------------------------------------------------------------------
 * Text retrievals: get, gets, gat, gats
 * ---------------------------------------------------------------------- */

/* Appends one VALUE block. */
static int put_value(struct proto_out *out, const char *key, uint32_t klen,
		     const struct cache_item *it, bool cas)
{
	char *p = out_begin(out, LINE_ROOM + it->vlen + 2);

	if (unlikely(!p))
		return -ENOMEM;
	p = PUT_LIT(p, "VALUE ");
	p = put_mem(p, key, klen);
	*p++ = ' ';
	p = put_u64(p, it->flags);
	*p++ = ' ';
	p = put_u64(p, it->vlen);
	if (cas) {
		*p++ = ' ';
		p = put_u64(p, it->cas);
	}
	p = PUT_LIT(p, "\r\n");
	p = put_mem(p, it->value, it->vlen);
	p = PUT_LIT(p, "\r\n");
	out_end(out, p);
	return 0;
}

/* Looks up a batch of keys, each in its own shard, with one bulk call per
 * shard involved. */
static void lookup_batch(struct proto_node *n, unsigned m, const uint64_t *hv,
			 const char *const *key, const uint32_t *klen,
			 struct cache_item *it, int *rc)
{
	uint16_t sh[CACHE_BULK_MAX];
	bool done[CACHE_BULK_MAX];
	unsigned i, j;

	if (n->nshards == 1) {
		cache_get_bulk(n->shards[0], m, hv, key, klen, it, rc);
		return;
	}
	for (i = 0; i < m; i++) {
		sh[i] = (uint16_t)ml_hash_core(hv[i], n->nshards);
		done[i] = false;
	}
	for (i = 0; i < m; i++) {
		uint64_t shv[CACHE_BULK_MAX];
		const char *skey[CACHE_BULK_MAX];
		uint32_t sklen[CACHE_BULK_MAX];
		struct cache_item sit[CACHE_BULK_MAX];
		int src[CACHE_BULK_MAX];
		uint8_t idx[CACHE_BULK_MAX];
		unsigned k = 0;

		if (done[i])
			continue;
		for (j = i; j < m; j++) {
			if (done[j] || sh[j] != sh[i])
				continue;
			done[j] = true;
			idx[k] = (uint8_t)j;
			shv[k] = hv[j];
			skey[k] = key[j];
			sklen[k] = klen[j];
			k++;
		}
		cache_get_bulk(n->shards[sh[i]], k, shv, skey, sklen, sit, src);
		for (j = 0; j < k; j++) {
			it[idx[j]] = sit[j];
			rc[idx[j]] = src[j];
		}
	}
}

/* get and gets: keys are looked up in batches (bulk lookups prefetch),
 * then answered in request order. Lookups store nothing, so the item
 * pointers of a batch stay valid until it is answered. */
static int do_get(struct proto_node *n, const char *buf,
		  const struct proto_req *req, struct proto_out *out, bool cas)
{
	uint64_t hv[CACHE_BULK_MAX];
	const char *key[CACHE_BULK_MAX];
	uint32_t klen[CACHE_BULK_MAX];
	struct cache_item it[CACHE_BULK_MAX];
	int rc[CACHE_BULK_MAX];
	uint32_t pos = req->key_off, off, len;
	bool first = true, more = true;
	unsigned m, i;

	while (more) {
		for (m = 0; m < CACHE_BULK_MAX; m++) {
			if (!proto_next_key(buf, req, &pos, &off, &len)) {
				more = false;
				break;
			}
			key[m] = buf + off;
			klen[m] = len;
			hv[m] = first ? req->hv : ml_hash(buf + off, len);
			first = false;
		}
		if (m == 0)
			break;
		lookup_batch(n, m, hv, key, klen, it, rc);
		n->c.cmd_get += m;
		for (i = 0; i < m; i++) {
			if (WATCHING(n, PROTO_WATCH_FETCHERS))
				proto_watch_fetch(n, key[i], klen[i],
						  rc[i] ? NULL : &it[i]);
			if (unlikely(n->detail))
				proto_detail_count(n, key[i], klen[i],
						   rc[i] ? DETAIL_GET
							 : DETAIL_HIT);
			if (rc[i]) {
				n->c.get_misses++;
				continue;
			}
			n->c.get_hits++;
			if (put_value(out, key[i], klen[i], &it[i], cas))
				return -ENOMEM;
		}
	}
	return OUT_LIT(out, "END\r\n");
}

/* gat and gats: a touch may rewrite an item, so each key is answered
 * before the next one is looked up. */
static int do_gat(struct proto_node *n, const char *buf,
		  const struct proto_req *req, struct proto_out *out, bool cas)
{
	uint32_t exptime = exptime_abs(n, req->exptime);
	uint32_t pos = req->key_off, off, len;
	bool first = true;

	while (proto_next_key(buf, req, &pos, &off, &len)) {
		uint64_t hv = first ? req->hv : ml_hash(buf + off, len);
		struct cache_item it;

		first = false;
		n->c.cmd_touch++;
		if (cache_get(shard_of(n, hv), hv, buf + off, len,
			      CACHE_GET_TOUCH, exptime, &it)) {
			if (WATCHING(n, PROTO_WATCH_FETCHERS))
				proto_watch_fetch(n, buf + off, len, NULL);
			n->c.touch_misses++;
			continue;
		}
		if (WATCHING(n, PROTO_WATCH_FETCHERS))
			proto_watch_fetch(n, buf + off, len, &it);
		n->c.touch_hits++;
		if (put_value(out, buf + off, len, &it, cas))
			return -ENOMEM;
	}
	return OUT_LIT(out, "END\r\n");
}

/* ------------------------------------------------------------------------
 * Text storage, delete, incr/decr, touch
 * ---------------------------------------------------------------------- */

/* A reply that noreply hides (text commands hide errors too). */
static int reply(struct proto_out *out, const struct proto_req *req,
		 const char *s, size_t len)
{
	if (req->noreply)
		return 0;
	return out_put(out, s, len);
}

#define REPLY(out, req, s) reply((out), (req), (s), sizeof(s) - 1)

static const char err_too_large[] =
	"SERVER_ERROR object too large for cache\r\n";
static const char err_bad_chunk[] = "CLIENT_ERROR bad data chunk\r\n";
static const char err_no_memory[] =
	"SERVER_ERROR out of memory storing object\r\n";

/*
 * When an item cannot be stored, memcached answers differently for the
 * new data and for the joined value of an append or prepend: data too
 * large on its own (by memcached's reckoning) is SERVER_ERROR, and set
 * and ms then drop the old value; a joined value that does not fit is
 * just NOT_STORED.
 */
static bool store_joined_failed(const struct proto_node *n,
				const struct store_op *op, int rc)
{
	size_t max = n->p.item_size_max ? n->p.item_size_max : 1u << 20;

	if (op->st.mode != CACHE_APPEND && op->st.mode != CACHE_PREPEND)
		return false;
	return rc == -ENOMEM ||
	       proto_item_size(op->st.klen, op->st.vlen, op->st.flags) <= max;
}

int proto_store_run(struct proto_node *n, struct store_op *op,
		    struct cache_item *out)
{
	struct cache_shard *s = shard_of(n, op->st.hv);
	int rc;

	n->c.cmd_set++;
	if (op->cas_cmd && op->st.cas == 0) {
		/* a CAS of 0 matches no item; the store would not compare */
		struct cache_item it;

		rc = cache_get(s, op->st.hv, op->st.key, op->st.klen,
			       CACHE_GET_NOBUMP, 0, &it);
		rc = rc ? -ENOENT : -EEXIST;
	} else {
		rc = cache_store(s, &op->st, out);
	}
	switch (rc) {
	case 0:
		if (op->cas_cmd)
			n->c.cas_hits++;
		break;
	case -EEXIST:
		if (op->cas_cmd)
			n->c.cas_badval++;
		break;
	case -ENOENT:
		if (op->cas_cmd)
			n->c.cas_misses++;
		break;
	case -E2BIG:
	case -ENOMEM:
		op->joined = store_joined_failed(n, op, rc);
		if (op->joined)
			break;
		if (rc == -E2BIG)
			n->c.store_too_large++;
		else
			n->c.store_no_memory++;
		if (op->drop_old)
			cache_delete(s, op->st.hv, op->st.key, op->st.klen, 0);
		break;
	default:
		break;
	}
	if (WATCHING(n, PROTO_WATCH_MUTATIONS))
		proto_watch_store(n, op, rc);
	if (unlikely(n->detail))
		proto_detail_count(n, op->st.key, op->st.klen, DETAIL_SET);
	return rc;
}

/* The store request for a request's key and data block. */
static void store_op_init(struct store_op *op, const char *buf,
			  const struct proto_req *req, uint32_t flags,
			  uint32_t exptime)
{
	memset(op, 0, sizeof(*op));
	op->st.hv = req->hv;
	op->st.key = buf + req->key_off;
	op->st.klen = req->klen;
	op->st.value = buf + req->data_off;
	op->st.vlen = req->data_len;
	op->st.flags = flags;
	op->st.exptime = exptime;
}

static int do_store(struct proto_node *n, const char *buf,
		    const struct proto_req *req, struct proto_out *out)
{
	struct store_op op;
	int rc;

	store_op_init(&op, buf, req, req->flags, exptime_abs(n, req->exptime));

	switch (req->cmd) {
	case PROTO_SET:
		op.st.mode = CACHE_SET;
		op.drop_old = true;
		break;
	case PROTO_ADD:
		op.st.mode = CACHE_ADD;
		break;
	case PROTO_REPLACE:
		op.st.mode = CACHE_REPLACE;
		break;
	case PROTO_APPEND:
		op.st.mode = CACHE_APPEND;
		break;
	case PROTO_PREPEND:
		op.st.mode = CACHE_PREPEND;
		break;
	default: /* PROTO_CAS */
		op.st.mode = CACHE_SET;
		op.st.cas = req->num;
		op.cas_cmd = true;
		break;
	}
	rc = proto_store_run(n, &op, NULL);
	switch (rc) {
	case 0:
		return REPLY(out, req, "STORED\r\n");
	case -EEXIST:
		if (op.st.mode == CACHE_ADD)
			return REPLY(out, req, "NOT_STORED\r\n");
		return REPLY(out, req, "EXISTS\r\n");
	case -ENOENT:
		if (op.cas_cmd)
			return REPLY(out, req, "NOT_FOUND\r\n");
		return REPLY(out, req, "NOT_STORED\r\n");
	case -E2BIG:
	case -ENOMEM:
		if (op.joined)
			return REPLY(out, req, "NOT_STORED\r\n");
		if (rc == -E2BIG)
			return reply(out, req, err_too_large,
				     sizeof(err_too_large) - 1);
		return reply(out, req, err_no_memory,
			     sizeof(err_no_memory) - 1);
	default:
		return REPLY(out, req,
			     "SERVER_ERROR Unhandled storage type.\r\n");
	}
}

static int do_delete(struct proto_node *n, const char *buf,
		     const struct proto_req *req, struct proto_out *out)
{
	int rc = cache_delete(shard_of(n, req->hv), req->hv, buf + req->key_off,
			      req->klen, 0);

	if (unlikely(n->detail))
		proto_detail_count(n, buf + req->key_off, req->klen,
				   DETAIL_DEL);
	if (rc) {
		n->c.delete_misses++;
		return REPLY(out, req, "NOT_FOUND\r\n");
	}
	n->c.delete_hits++;
	return REPLY(out, req, "DELETED\r\n");
}

static int do_arith(struct proto_node *n, const char *buf,
		    const struct proto_req *req, struct proto_out *out)
{
	bool incr = req->cmd == PROTO_INCR;
	struct cache_arith a = {
		.hv = req->hv,
		.key = buf + req->key_off,
		.klen = req->klen,
		.incr = incr,
		.delta = req->num,
	};
	uint64_t v;
	char *p;
	int rc;

	rc = cache_arith(shard_of(n, req->hv), &a, &v, NULL);
	if (rc == 0 || rc == -ENOENT)
		count_arith(n, incr, rc == 0);
	switch (rc) {
	case 0:
		if (req->noreply)
			return 0;
		p = out_begin(out, 24);
		if (!p)
			return -ENOMEM;
		p = put_u64(p, v);
		p = PUT_LIT(p, "\r\n");
		out_end(out, p);
		return 0;
	case -ENOENT:
		return REPLY(out, req, "NOT_FOUND\r\n");
	case -EINVAL:
		return REPLY(out, req,
			     "CLIENT_ERROR cannot increment or decrement "
			     "non-numeric value\r\n");
	default:
		return REPLY(out, req, "SERVER_ERROR out of memory\r\n");
	}
}

static int do_touch(struct proto_node *n, const char *buf,
		    const struct proto_req *req, struct proto_out *out)
{
	int rc = cache_get(shard_of(n, req->hv), req->hv, buf + req->key_off,
			   req->klen, CACHE_GET_TOUCH,
			   exptime_abs(n, req->exptime), NULL);

	n->c.cmd_touch++;
	if (rc) {
		n->c.touch_misses++;
		return REPLY(out, req, "NOT_FOUND\r\n");
	}
	n->c.touch_hits++;
	return REPLY(out, req, "TOUCHED\r\n");
}

/*
 * flush_all [delay]: without a delay (or with one <= 0) every item goes
 * now. With one, memcached invalidates everything written up to and
 * including the second before the moment named, once that second has
 * come: the flush is scheduled for it, and during it nothing stored
 * stays (see flush_hold). A delay of 1 is that second already. A later
 * flush_all replaces a pending one. An absolute time in the past flushes
 * now.
 */
int proto_do_flush_all(struct proto_node *n, const struct proto_req *req,
		       struct proto_out *out)
{
	int64_t delay = req->has_num ? (int64_t)req->num : 0;
	uint32_t at;

	if (n->p.no_flush)
		return REPLY(out, req,
			     "CLIENT_ERROR flush_all not allowed\r\n");
	/* one flush_all is one, however many cores it runs on */
	n->c.cmd_flush += !req->copy;
	if (delay > 0) {
		at = exptime_abs(n, delay) - 1;
		if (at > n->now) {
			n->flush_pending = true;
			n->flush_hold = false;
			n->flush_at = at;
		} else {
			node_flush_at(n, at);
		}
		return REPLY(out, req, "OK\r\n");
	}
	node_flush(n);
	return REPLY(out, req, "OK\r\n");
}

/* ------------------------------------------------------------------------
 * Meta commands
 * ---------------------------------------------------------------------- */

#define HAS(req, c) (((req)->meta.flags & PROTO_MF(c)) != 0)

/* Whether return flag a is asked for before flag b (meta commands apply
 * T and N where they stand among the return flags, so a t before a T
 * shows the old TTL). A flag absent from the order list counts as first. */
static bool flag_before(const struct proto_meta *m, char a, char b)
{
	unsigned i;

	if (!memchr(m->order, b, m->norder))
		return false;
	for (i = 0; i < m->norder; i++) {
		if (m->order[i] == b)
			return false;
		if (m->order[i] == a)
			return true;
	}
	return false;
}

static bool in_order(const struct proto_meta *m, char c)
{
	return memchr(m->order, c, m->norder) != NULL;
}

/* " k<key>"; a key that came in base64 goes back so, followed by " b". */
static char *put_key_flag(char *p, const char *key, uint32_t klen, bool binary)
{
	p = PUT_LIT(p, " k");
	if (binary) {
		p = put_base64(p, (const unsigned char *)key, klen);
		return PUT_LIT(p, " b");
	}
	return put_mem(p, key, klen);
}

/* The request's key as " k<key>": md, ma and every miss answer the key as
 * it was sent. */
static char *put_meta_key(char *p, const char *buf, const struct proto_req *req)
{
	return put_key_flag(p, buf + req->key_off, req->klen, HAS(req, 'b'));
}

static char *put_meta_opaque(char *p, const char *buf,
			     const struct proto_req *req)
{
	p = PUT_LIT(p, " O");
	return put_mem(p, buf + req->meta.opaque_off, req->meta.opaque_len);
}

/* A meta status line that carries only the O and k flags: misses and
 * failures. */
static int meta_status(struct proto_out *out, const char *buf,
		       const struct proto_req *req, const char *code)
{
	char *p = out_begin(out, LINE_ROOM);
	unsigned i;

	if (!p)
		return -ENOMEM;
	p = put_mem(p, code, 2);
	for (i = 0; i < req->meta.norder; i++) {
		if (req->meta.order[i] == 'O')
			p = put_meta_opaque(p, buf, req);
		else if (req->meta.order[i] == 'k')
			p = put_meta_key(p, buf, req);
	}
	p = PUT_LIT(p, "\r\n");
	out_end(out, p);
	return 0;
}

/* " t<seconds left>", -1 for never; memcached's unsigned 32-bit
 * difference for an item already past its time. */
static char *put_ttl(char *p, const struct proto_node *n, uint32_t exptime)
{
	p = PUT_LIT(p, " t");
	if (exptime == 0)
		return PUT_LIT(p, "-1");
	return put_u64(p, (uint32_t)(exptime - n->now));
}

/*
 * mg: a hit answers VA (with v) or HD and the return flags in request
 * order, then Z (a win was handed out already), X (stale) and W (this
 * client wins the recache), in that order. T, N and R act where they
 * stand among the flags. A miss answers EN with O and k, hidden by q.
 */
static int do_mg(struct proto_node *n, const char *buf,
		 const struct proto_req *req, struct proto_out *out)
{
	const struct proto_meta *m = &req->meta;
	struct cache_shard *s = shard_of(n, req->hv);
	const char *key = buf + req->key_off;
	bool has_t = HAS(req, 'T'), created = false, won = false;
	bool late_touch = false;
	uint32_t ttl = 0, viv = 0, exp;
	unsigned opts = HAS(req, 'u') ? CACHE_GET_NOBUMP : 0;
	struct cache_item it;
	unsigned i;
	char *p;
	int rc;

	if (has_t) {
		ttl = exptime_abs(n, m->ttl);
		/* a t or R before the T sees the old TTL: touch afterwards */
		late_touch =
			flag_before(m, 't', 'T') || flag_before(m, 'R', 'T');
		if (!late_touch)
			opts |= CACHE_GET_TOUCH;
	}
	rc = cache_get(s, req->hv, key, req->klen, opts, ttl, &it);
	if (WATCHING(n, PROTO_WATCH_FETCHERS))
		proto_watch_fetch(n, key, req->klen, rc ? NULL : &it);
	if (rc && HAS(req, 'N')) {
		/* vivify: an empty item; its TTL is whichever of N and T
		 * stands last */
		struct cache_store st = {
			.hv = req->hv,
			.key = key,
			.klen = req->klen,
			.value = "",
			.mode = CACHE_ADD,
		};

		viv = exptime_abs(n, m->vivify_ttl);
		st.exptime = viv;
		if (has_t && (!in_order(m, 'N') || flag_before(m, 'N', 'T')))
			st.exptime = ttl;
		rc = cache_store(s, &st, &it);
		created = rc == 0;
		late_touch = false;
		/* memcached's vivify fetches what it made, unless u: the
		 * next mg sees h1 (this one answers from the item as it was
		 * made) */
		if (created && !HAS(req, 'u'))
			cache_get(s, req->hv, key, req->klen, 0, 0, NULL);
	}
	if (rc) {
		n->c.cmd_get++;
		n->c.get_misses++;
		if (req->noreply)
			return 0;
		return meta_status(out, buf, req, "EN");
	}
	/* with T, memcached counts a touch, even of what N just made */
	if (has_t) {
		n->c.cmd_touch++;
		n->c.touch_hits++;
	} else {
		n->c.cmd_get++;
		n->c.get_hits++;
	}

	p = out_begin(out, LINE_ROOM + it.vlen + 2);
	if (!p)
		return -ENOMEM;
	if (HAS(req, 'v')) {
		p = PUT_LIT(p, "VA ");
		p = put_u64(p, it.vlen);
	} else {
		p = PUT_LIT(p, "HD");
	}
	/* the TTL as the flags so far have left it */
	exp = created ? 0 : it.exptime;
	if (has_t && !in_order(m, 'T'))
		exp = ttl;
	if (created && !in_order(m, 'N')) {
		exp = viv;
		won = true;
	}
	for (i = 0; i < m->norder; i++) {
		switch (m->order[i]) {
		case 'T':
			exp = ttl;
			break;
		case 'N':
			if (created) {
				exp = viv;
				won = true;
			}
			break;
		case 'R':
			if (!it.win_sent && !created && exp != 0 &&
			    exp < exptime_abs(n, m->recache))
				won = true;
			break;
		case 's':
			p = PUT_LIT(p, " s");
			p = put_u64(p, it.vlen);
			break;
		case 't':
			p = put_ttl(p, n, exp);
			break;
		case 'c':
			p = PUT_LIT(p, " c");
			p = put_u64(p, it.cas);
			break;
		case 'f':
			p = PUT_LIT(p, " f");
			p = put_u64(p, it.flags);
			break;
		case 'l':
			p = PUT_LIT(p, " l");
			p = put_u64(p, (uint32_t)(n->now - it.atime));
			break;
		case 'h':
			p = PUT_LIT(p, " h");
			*p++ = it.fetched ? '1' : '0';
			break;
		case 'O':
			p = put_meta_opaque(p, buf, req);
			break;
		case 'k':
			/* base64 if the item was stored so, whatever this
			 * request used */
			p = put_key_flag(p, key, req->klen, it.key_binary);
			break;
		default:
			break;
		}
	}
	if (it.win_sent)
		p = PUT_LIT(p, " Z");
	if (it.stale) {
		p = PUT_LIT(p, " X");
		if (!it.win_sent)
			won = true;
	}
	if (won)
		p = PUT_LIT(p, " W");
	p = PUT_LIT(p, "\r\n");
	if (HAS(req, 'v')) {
		p = put_mem(p, it.value, it.vlen);
		p = PUT_LIT(p, "\r\n");
	}
	out_end(out, p);

	/* it.value is not read past this point: these may move the item */
	if (won)
		cache_mark_win(s, req->hv, key, req->klen);
	if (late_touch)
		cache_get(s, req->hv, key, req->klen,
			  CACHE_GET_NOBUMP | CACHE_GET_TOUCH, ttl, NULL);
	return 0;
}

/*
 * ms: HD, NS, EX or NF with the O, k and c flags in request order (c is
 * the new CAS, 0 when nothing was stored). A CAS turns set and replace
 * into a compare-and-swap, limits append and prepend, and is ignored by
 * add. memcached 1.6.18 accepts N but does not vivify an append: NS.
 */
static int do_ms(struct proto_node *n, const char *buf,
		 const struct proto_req *req, struct proto_out *out)
{
	const struct proto_meta *m = &req->meta;
	bool has_cas = HAS(req, 'C');
	struct store_op op;
	struct cache_item it;
	const char *code;
	uint64_t cas = 0;
	unsigned i;
	char *p;
	int rc;

	/* the parser leaves ttl 0 without T: never expires */
	store_op_init(&op, buf, req, m->client_flags, exptime_abs(n, m->ttl));
	op.drop_old = true;

	switch (m->mode) {
	case 0:
	case 'S':
		op.st.mode = CACHE_SET;
		break;
	case 'E':
		op.st.mode = CACHE_ADD;
		has_cas = false;
		break;
	case 'A':
		op.st.mode = CACHE_APPEND;
		break;
	case 'P':
		op.st.mode = CACHE_PREPEND;
		break;
	case 'R':
		op.st.mode = CACHE_REPLACE;
		break;
	default:
		return OUT_LIT(out,
			       "CLIENT_ERROR invalid mode for ms M token\r\n");
	}
	/* memcached remembers a base64 key on the item, except that an
	 * append or prepend makes a new item that forgets it */
	op.st.key_binary = HAS(req, 'b') && op.st.mode != CACHE_APPEND &&
			   op.st.mode != CACHE_PREPEND;
	if (has_cas) {
		op.st.cas = m->cas;
		if (op.st.mode == CACHE_SET || op.st.mode == CACHE_REPLACE) {
			op.st.mode = CACHE_SET;
			op.cas_cmd = true;
			op.st.invalidate = HAS(req, 'I');
		}
	}
	rc = proto_store_run(n, &op, &it);
	switch (rc) {
	case 0:
		cas = it.cas;
		if (req->noreply)
			return 0;
		code = "HD";
		break;
	case -EEXIST:
		code = op.st.mode == CACHE_ADD ? "NS" : "EX";
		break;
	case -ENOENT:
		code = op.cas_cmd ? "NF" : "NS";
		break;
	case -E2BIG:
	case -ENOMEM:
		if (op.joined) {
			code = "NS";
			break;
		}
		if (rc == -E2BIG)
			return out_put(out, err_too_large,
				       sizeof(err_too_large) - 1);
		return out_put(out, err_no_memory, sizeof(err_no_memory) - 1);
	default:
		return OUT_LIT(out, "SERVER_ERROR Unhandled storage type.\r\n");
	}

	p = out_begin(out, LINE_ROOM);
	if (!p)
		return -ENOMEM;
	p = put_mem(p, code, 2);
	for (i = 0; i < m->norder; i++) {
		switch (m->order[i]) {
		case 'O':
			p = put_meta_opaque(p, buf, req);
			break;
		case 'k':
			p = put_meta_key(p, buf, req);
			break;
		case 'c':
			p = PUT_LIT(p, " c");
			p = put_u64(p, cas);
			break;
		default:
			break;
		}
	}
	p = PUT_LIT(p, "\r\n");
	out_end(out, p);
	return 0;
}

/* md: delete, or with I mark stale (new CAS, T sets the TTL). HD is
 * hidden by q; NF and EX are not. */
static int do_md(struct proto_node *n, const char *buf,
		 const struct proto_req *req, struct proto_out *out)
{
	const struct proto_meta *m = &req->meta;
	struct cache_shard *s = shard_of(n, req->hv);
	const char *key = buf + req->key_off;
	bool stale = HAS(req, 'I');
	int rc;

	if (HAS(req, 'C') && m->cas == 0) {
		/* a CAS of 0 matches no item */
		rc = cache_get(s, req->hv, key, req->klen, CACHE_GET_NOBUMP, 0,
			       NULL);
		rc = rc ? -ENOENT : -EEXIST;
	} else if (stale) {
		rc = cache_invalidate(s, req->hv, key, req->klen,
				      HAS(req, 'C') ? m->cas : 0, HAS(req, 'T'),
				      exptime_abs(n, m->ttl));
	} else {
		rc = cache_delete(s, req->hv, key, req->klen,
				  HAS(req, 'C') ? m->cas : 0);
	}
	switch (rc) {
	case 0:
		if (!stale)
			n->c.delete_hits++;
		if (req->noreply)
			return 0;
		return meta_status(out, buf, req, "HD");
	case -EEXIST:
		n->c.delete_misses++;
		return meta_status(out, buf, req, "EX");
	default:
		n->c.delete_misses++;
		return meta_status(out, buf, req, "NF");
	}
}

/*
 * ma: incr (default) or decr by D (default 1). N creates a missing item
 * holding J (no delta applied). VA <len> (with v) or HD, then c, t, O, k
 * in request order, T and N acting where they stand; NF, NS and EX carry
 * O and k only. q hides the success of an update only: a creation is
 * answered (memcached 1.6.18).
 */
static int do_ma(struct proto_node *n, const char *buf,
		 const struct proto_req *req, struct proto_out *out)
{
	const struct proto_meta *m = &req->meta;
	struct cache_shard *s = shard_of(n, req->hv);
	const char *key = buf + req->key_off;
	bool has_t = HAS(req, 'T'), created = false, late_touch = false;
	uint32_t ttl = has_t ? exptime_abs(n, m->ttl) : 0;
	uint32_t viv = 0, exp;
	struct cache_arith a = {
		.hv = req->hv,
		.key = key,
		.klen = req->klen,
		.incr = true,
		.delta = m->delta,
		.cas = HAS(req, 'C') ? m->cas : 0,
	};
	struct cache_item it;
	char num[24];
	size_t numlen;
	uint64_t v;
	unsigned i;
	char *p;
	int rc;

	switch (m->mode) {
	case 0:
	case 'I':
	case '+':
		break;
	case 'D':
	case '-':
		a.incr = false;
		break;
	default:
		return OUT_LIT(out,
			       "CLIENT_ERROR invalid mode for ma M token\r\n");
	}
	if (has_t) {
		late_touch = flag_before(m, 't', 'T');
		a.set_exptime = !late_touch;
		a.exptime = ttl;
	}
	rc = cache_arith(s, &a, &v, &it);
	if (rc == -ENOENT && HAS(req, 'N')) {
		viv = exptime_abs(n, m->vivify_ttl);
		a.vivify = true;
		a.initial = m->initial;
		a.cas = 0;
		a.set_exptime = false;
		/* the TTL is whichever of N and T stands last */
		a.vivify_exptime = viv;
		if (has_t && (!in_order(m, 'N') || flag_before(m, 'N', 'T')))
			a.vivify_exptime = ttl;
		rc = cache_arith(s, &a, &v, &it);
		if (rc)
			return OUT_LIT(out, "SERVER_ERROR Out of memory "
					    "allocating new item\r\n");
		created = true;
		late_touch = false;
	}
	switch (rc) {
	case 0:
		break;
	case -ENOENT:
		if (a.incr)
			n->c.incr_misses++;
		else
			n->c.decr_misses++;
		return meta_status(out, buf, req, "NF");
	case -EEXIST:
		return meta_status(out, buf, req, "EX");
	case -EINVAL:
		return OUT_LIT(out, "CLIENT_ERROR cannot increment or "
				    "decrement non-numeric value\r\n");
	default:
		return OUT_LIT(out, "SERVER_ERROR out of memory\r\n");
	}
	if (!created) {
		if (a.incr)
			n->c.incr_hits++;
		else
			n->c.decr_hits++;
	}
	if (late_touch)
		cache_get(s, req->hv, key, req->klen,
			  CACHE_GET_NOBUMP | CACHE_GET_TOUCH, ttl, NULL);
	/* q hides the answer to an update, not to a creation */
	if (req->noreply && !created)
		return 0;

	numlen = (size_t)(put_u64(num, v) - num);
	p = out_begin(out, LINE_ROOM);
	if (!p)
		return -ENOMEM;
	if (HAS(req, 'v')) {
		p = PUT_LIT(p, "VA ");
		p = put_u64(p, numlen);
	} else {
		p = PUT_LIT(p, "HD");
	}
	exp = created ? 0 : it.exptime;
	if (has_t && !in_order(m, 'T') && !late_touch)
		exp = ttl;
	if (created && !in_order(m, 'N'))
		exp = viv;
	for (i = 0; i < m->norder; i++) {
		switch (m->order[i]) {
		case 'T':
			exp = ttl;
			break;
		case 'N':
			if (created)
				exp = viv;
			break;
		case 'c':
			p = PUT_LIT(p, " c");
			p = put_u64(p, it.cas);
			break;
		case 't':
			p = put_ttl(p, n, exp);
			break;
		case 'O':
			p = put_meta_opaque(p, buf, req);
			break;
		case 'k':
			p = put_meta_key(p, buf, req);
			break;
		default:
			break;
		}
	}
	p = PUT_LIT(p, "\r\n");
	if (HAS(req, 'v')) {
		p = put_mem(p, num, numlen);
		p = PUT_LIT(p, "\r\n");
	}
	out_end(out, p);
	return 0;
}

/*
 * me: memcached's debug line. exp is what memcached 1.6.18 prints: the
 * seconds since the exptime (so a live item shows a negative number), -1
 * for none. cls is always 1 (memlane has no slab classes) and size is the
 * size memcached would account the item at, so the line reads the same
 * against either server.
 */
static int do_me(struct proto_node *n, const char *buf,
		 const struct proto_req *req, struct proto_out *out)
{
	struct cache_item it;
	char *p;

	n->c.cmd_meta++;
	n->c.cmd_me++;
	if (cache_get(shard_of(n, req->hv), req->hv, buf + req->key_off,
		      req->klen, CACHE_GET_NOBUMP, 0, &it))
		return OUT_LIT(out, "EN\r\n");
	p = out_begin(out, LINE_ROOM);
	if (!p)
		return -ENOMEM;
	p = PUT_LIT(p, "ME ");
	/* base64 if the item was stored so, whatever this request used */
	if (it.key_binary)
		p = put_base64(p, (const unsigned char *)buf + req->key_off,
			       req->klen);
	else
		p = put_mem(p, buf + req->key_off, req->klen);
	p = PUT_LIT(p, " exp=");
	if (it.exptime == 0)
		p = PUT_LIT(p, "-1");
	else
		p = put_i64(p, (int64_t)n->now - (int64_t)it.exptime);
	p = PUT_LIT(p, " la=");
	p = put_u64(p, (uint32_t)(n->now - it.atime));
	p = PUT_LIT(p, " cas=");
	p = put_u64(p, it.cas);
	if (it.fetched)
		p = PUT_LIT(p, " fetch=yes");
	else
		p = PUT_LIT(p, " fetch=no");
	p = PUT_LIT(p, " cls=1 size=");
	p = put_u64(p, proto_item_size(it.klen, it.vlen, it.flags));
	p = PUT_LIT(p, "\r\n");
	out_end(out, p);
	return 0;
}

/* ------------------------------------------------------------------------
 * stats
 * ---------------------------------------------------------------------- */

/* Every shard's counters, summed. */
static void node_store_stats(const struct proto_node *n, struct cache_stats *t)
{
	struct cache_stats st;
	unsigned i;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < n->nshards * node_count(n); i++) {
		const struct proto_node *o = node_at(n, i / n->nshards);

		cache_get_stats(o->shards[i % o->nshards], &st);
		t->curr_items += st.curr_items;
		t->total_items += st.total_items;
		t->bytes += st.bytes;
		t->mem_used += st.mem_used;
		t->mem_limit += st.mem_limit;
		t->evictions += st.evictions;
		t->expired_unfetched += st.expired_unfetched;
		t->evicted_unfetched += st.evicted_unfetched;
		t->reclaimed += st.reclaimed;
		t->get_expired += st.get_expired;
		t->get_flushed += st.get_flushed;
		t->crawler_checked += st.crawler_checked;
		t->crawler_reclaimed += st.crawler_reclaimed;
		t->index_buckets += st.index_buckets;
		t->index_overflow += st.index_overflow;
		t->segments += st.segments;
		t->small_items += st.small_items;
		t->main_items += st.main_items;
		t->ghost_hits += st.ghost_hits;
		t->moved_to_main += st.moved_to_main;
		t->reinserted += st.reinserted;
	}
}

/* Subtracts a baseline taken at "stats reset", never below 0 (a shard's
 * counter can only grow, but be safe). */
static inline uint64_t since(uint64_t now, uint64_t base)
{
	return now > base ? now - base : 0;
}

static char *stat_str(char *p, const char *name, const char *v)
{
	p = PUT_LIT(p, "STAT ");
	p = put_mem(p, name, strlen(name));
	*p++ = ' ';
	p = put_mem(p, v, strlen(v));
	return PUT_LIT(p, "\r\n");
}

static char *stat_u(char *p, const char *name, uint64_t v)
{
	p = PUT_LIT(p, "STAT ");
	p = put_mem(p, name, strlen(name));
	*p++ = ' ';
	p = put_u64(p, v);
	return PUT_LIT(p, "\r\n");
}

/* "STAT name sec.usec" as memcached prints rusage. */
static char *stat_tv(char *p, const char *name, const struct timeval *tv)
{
	char frac[8];
	char *e;
	size_t len;

	p = PUT_LIT(p, "STAT ");
	p = put_mem(p, name, strlen(name));
	*p++ = ' ';
	p = put_u64(p, (uint64_t)tv->tv_sec);
	*p++ = '.';
	e = put_u64(frac, (uint64_t)tv->tv_usec % 1000000);
	len = (size_t)(e - frac);
	memset(p, '0', 6 - len);
	p = put_mem(p + 6 - len, frac, len);
	return PUT_LIT(p, "\r\n");
}

/* The index's "hash power": log2 of its bucket count. */
static unsigned hash_power(uint64_t buckets)
{
	unsigned pw = 0;

	while (buckets > 1) {
		buckets >>= 1;
		pw++;
	}
	return pw;
}

/*
 * General stats: memcached 1.6.18's names in its order. Where memcached
 * reports on machinery memlane does not have (slab rebalancing, the LRU
 * crawler, its logger, response objects) the value is 0.
 */
static int stats_general(struct proto_node *n, struct proto_out *out)
{
	struct proc_counters sum;
	const struct proc_counters *c = &sum;
	const struct proc_baseline *b = &node_home(n)->base;
	struct proto_conn_stats conns;
	const struct proto_conn_stats *cs = &conns;
	struct cache_stats st;
	struct rusage ru;
	char *p;

	p = out_begin(out, STATS_ROOM);
	if (!p)
		return -ENOMEM;
	node_counters(n, &sum);
	node_conns(n, &conns);
	node_store_stats(n, &st);
	if (getrusage(RUSAGE_SELF, &ru))
		memset(&ru, 0, sizeof(ru));

	p = stat_u(p, "pid", n->p.pid);
	p = stat_u(p, "uptime", n->now - n->started);
	p = stat_u(p, "time", n->now);
	p = stat_str(p, "version", PROC_VERSION);
	p = stat_str(p, "libevent", "none");
	p = stat_u(p, "pointer_size", 8 * sizeof(void *));
	p = stat_tv(p, "rusage_user", &ru.ru_utime);
	p = stat_tv(p, "rusage_system", &ru.ru_stime);
	p = stat_u(p, "max_connections", n->p.conn_max);
	p = stat_u(p, "curr_connections", cs->curr_connections);
	p = stat_u(p, "total_connections",
		   since(cs->total_connections, b->total_connections));
	p = stat_u(p, "rejected_connections",
		   since(cs->rejected_connections, b->rejected_connections));
	p = stat_u(p, "connection_structures", cs->curr_connections);
	p = stat_u(p, "response_obj_oom", 0);
	p = stat_u(p, "response_obj_count", 0);
	p = stat_u(p, "response_obj_bytes", 0);
	p = stat_u(p, "read_buf_count", 0);
	p = stat_u(p, "read_buf_bytes", 0);
	p = stat_u(p, "read_buf_bytes_free", 0);
	p = stat_u(p, "read_buf_oom", 0);
	p = stat_u(p, "reserved_fds", 0);
	p = stat_u(p, "cmd_get", c->cmd_get);
	p = stat_u(p, "cmd_set", c->cmd_set);
	p = stat_u(p, "cmd_flush", c->cmd_flush);
	p = stat_u(p, "cmd_touch", c->cmd_touch);
	/* memcached 1.6.18 counts only me here, not mg, ms, md, ma, mn */
	p = stat_u(p, "cmd_meta", c->cmd_me);
	p = stat_u(p, "get_hits", c->get_hits);
	p = stat_u(p, "get_misses", c->get_misses);
	p = stat_u(p, "get_expired", since(st.get_expired, b->get_expired));
	p = stat_u(p, "get_flushed", since(st.get_flushed, b->get_flushed));
	p = stat_u(p, "delete_misses", c->delete_misses);
	p = stat_u(p, "delete_hits", c->delete_hits);
	p = stat_u(p, "incr_misses", c->incr_misses);
	p = stat_u(p, "incr_hits", c->incr_hits);
	p = stat_u(p, "decr_misses", c->decr_misses);
	p = stat_u(p, "decr_hits", c->decr_hits);
	p = stat_u(p, "cas_misses", c->cas_misses);
	p = stat_u(p, "cas_hits", c->cas_hits);
	p = stat_u(p, "cas_badval", c->cas_badval);
	p = stat_u(p, "touch_hits", c->touch_hits);
	p = stat_u(p, "touch_misses", c->touch_misses);
	p = stat_u(p, "store_too_large", c->store_too_large);
	p = stat_u(p, "store_no_memory", c->store_no_memory);
	p = stat_u(p, "auth_cmds", 0);
	p = stat_u(p, "auth_errors", 0);
	p = stat_u(p, "bytes_read", since(cs->bytes_read, b->bytes_read));
	p = stat_u(p, "bytes_written",
		   since(cs->bytes_written, b->bytes_written));
	p = stat_u(p, "limit_maxbytes", node_mem_limit(n));
	p = stat_u(p, "accepting_conns", 1);
	p = stat_u(p, "listen_disabled_num", 0);
	p = stat_u(p, "time_in_listen_disabled_us", 0);
	p = stat_u(p, "threads", n->p.threads);
	p = stat_u(p, "conn_yields", cs->conn_yields);
	p = stat_u(p, "hash_power_level", hash_power(st.index_buckets));
	p = stat_u(p, "hash_bytes",
		   (st.index_buckets + st.index_overflow) * ML_CACHE_LINE);
	/* the index grows a bucket at a time, never all at once */
	p = stat_u(p, "hash_is_expanding", 0);
	p = stat_u(p, "slab_reassign_rescues", 0);
	p = stat_u(p, "slab_reassign_chunk_rescues", 0);
	p = stat_u(p, "slab_reassign_evictions_nomem", 0);
	p = stat_u(p, "slab_reassign_inline_reclaim", 0);
	p = stat_u(p, "slab_reassign_busy_items", 0);
	p = stat_u(p, "slab_reassign_busy_deletes", 0);
	p = stat_u(p, "slab_reassign_running", 0);
	p = stat_u(p, "slabs_moved", 0);
	p = stat_u(p, "lru_crawler_running", 0);
	p = stat_u(p, "lru_crawler_starts", c->lru_crawler_starts);
	p = stat_u(p, "lru_maintainer_juggles", 0);
	p = stat_u(p, "malloc_fails", 0);
	p = stat_u(p, "log_worker_dropped", 0);
	p = stat_u(p, "log_worker_written", 0);
	p = stat_u(p, "log_watcher_skipped", 0);
	p = stat_u(p, "log_watcher_sent", 0);
	p = stat_u(p, "log_watchers", 0);
	p = stat_u(p, "unexpected_napi_ids", 0);
	p = stat_u(p, "round_robin_fallback", 0);
	p = stat_u(p, "bytes", st.bytes);
	p = stat_u(p, "curr_items", st.curr_items);
	p = stat_u(p, "total_items", since(st.total_items, b->total_items));
	p = stat_u(p, "slab_global_page_pool", 0);
	p = stat_u(p, "expired_unfetched",
		   since(st.expired_unfetched, b->expired_unfetched));
	p = stat_u(p, "evicted_unfetched",
		   since(st.evicted_unfetched, b->evicted_unfetched));
	p = stat_u(p, "evicted_active", 0);
	p = stat_u(p, "evictions", since(st.evictions, b->evictions));
	p = stat_u(p, "reclaimed", since(st.reclaimed, b->reclaimed));
	p = stat_u(p, "crawler_reclaimed",
		   since(st.crawler_reclaimed, b->crawler_reclaimed));
	p = stat_u(p, "crawler_items_checked",
		   since(st.crawler_checked, b->crawler_checked));
	p = stat_u(p, "lrutail_reflocked", 0);
	/* S3-FIFO's small -> main promotion is the nearest thing to a move
	 * to the warm LRU, a main item's second round to a move within */
	p = stat_u(p, "moves_to_cold", 0);
	p = stat_u(p, "moves_to_warm",
		   since(st.moved_to_main, b->moved_to_main));
	p = stat_u(p, "moves_within_lru", since(st.reinserted, b->reinserted));
	p = stat_u(p, "direct_reclaims", 0);
	p = stat_u(p, "lru_bumps_dropped", 0);
	p = PUT_LIT(p, "END\r\n");
	out_end(out, p);
	return 0;
}

/* A setting's string, or what memcached prints for none. */
static const char *or_null(const char *v, const char *none)
{
	return v && *v ? v : none;
}

static const char *const tls_names[] = {"tlsv1.0", "tlsv1.1", "tlsv1.2",
					"tlsv1.3"};

/* A number in octal, as memcached prints the umask. */
static char *stat_o(char *p, const char *name, unsigned v)
{
	char buf[16];

	snprintf(buf, sizeof(buf), "%o", v);
	return stat_str(p, name, buf);
}

static char *stat_mem(char *p, const char *name, const char *v, size_t len)
{
	char buf[8];

	memcpy(buf, v, len);
	buf[len] = '\0';
	return stat_str(p, name, buf);
}

/*
 * stats settings: memcached 1.6.18's names in its order. Settings of
 * machinery memlane does not have read 0, "no" or NULL.
 */
static int stats_settings(struct proto_node *n, struct proto_out *out)
{
	char *p = out_begin(out, STATS_ROOM);
	size_t ism = n->p.item_size_max ? n->p.item_size_max : 1u << 20;

	if (!p)
		return -ENOMEM;
	p = stat_u(p, "maxbytes", node_mem_limit(n));
	p = stat_u(p, "maxconns", n->p.conn_max);
	p = stat_u(p, "tcpport", n->p.tcp_port);
	p = stat_u(p, "udpport", n->p.udp_port);
	p = stat_str(p, "inter", n->p.inter ? n->p.inter : "NULL");
	p = stat_u(p, "verbosity", n->verbosity);
	p = stat_u(p, "oldest", 0);
	p = stat_str(p, "evictions", n->p.no_evict ? "off" : "on");
	p = stat_str(p, "domain_socket",
		     n->p.domain_socket ? n->p.domain_socket : "NULL");
	p = stat_o(p, "umask", n->p.umask);
	p = stat_str(p, "shutdown_command", n->p.shutdown_cmd ? "yes" : "no");
	p = stat_str(p, "growth_factor", "0.00");
	p = stat_u(p, "chunk_size", 0);
	p = stat_u(p, "num_threads", n->p.threads);
	p = stat_u(p, "num_threads_per_udp", n->p.threads);
	p = stat_mem(p, "stat_key_prefix",
		     n->p.detail_delim ? &n->p.detail_delim : ":", 1);
	p = stat_str(p, "detail_enabled", n->detail ? "yes" : "no");
	p = stat_u(p, "reqs_per_event", n->p.reqs_per_event);
	p = stat_str(p, "cas_enabled", n->p.no_cas ? "no" : "yes");
	p = stat_u(p, "tcp_backlog", n->p.tcp_backlog);
	p = stat_str(p, "binding_protocol",
		     n->p.binding ? n->p.binding : "auto-negotiate");
	p = stat_str(p, "auth_enabled_sasl", "no");
	p = stat_str(p, "auth_enabled_ascii", n->p.auth_ascii ? "yes" : "no");
	p = stat_u(p, "item_size_max", ism);
	p = stat_str(p, "maxconns_fast", n->p.maxconns_fast ? "yes" : "no");
	p = stat_u(p, "hashpower_init", n->p.hashpower);
	p = stat_str(p, "slab_reassign", "no");
	p = stat_u(p, "slab_automove", n->slab_automove);
	p = stat_str(p, "slab_automove_ratio", "0.00");
	p = stat_u(p, "slab_automove_window", 0);
	p = stat_u(p, "slab_chunk_max", 0);
	p = stat_str(p, "lru_crawler", n->lru_crawler ? "yes" : "no");
	p = stat_u(p, "lru_crawler_sleep", n->p.lru_crawler_sleep);
	p = stat_u(p, "lru_crawler_tocrawl", n->p.lru_crawler_tocrawl);
	p = stat_u(p, "tail_repair_time", 0);
	p = stat_str(p, "flush_enabled", n->p.no_flush ? "no" : "yes");
	p = stat_str(p, "dump_enabled", n->p.no_dump ? "no" : "yes");
	p = stat_str(p, "hash_algorithm", "xxh3");
	p = stat_str(p, "lru_maintainer_thread", "no");
	p = stat_str(p, "lru_segmented", "no");
	p = stat_u(p, "hot_lru_pct", 0);
	p = stat_u(p, "warm_lru_pct", 0);
	p = stat_str(p, "hot_max_factor", "0.00");
	p = stat_str(p, "warm_max_factor", "0.00");
	p = stat_str(p, "temp_lru", "no");
	p = stat_u(p, "temporary_ttl", 0);
	p = stat_u(p, "idle_timeout", n->p.idle_timeout);
	p = stat_u(p, "watcher_logbuf_size", n->p.watcher_logbuf_kb * 1024ull);
	p = stat_u(p, "worker_logbuf_size", n->p.worker_logbuf_kb * 1024ull);
	p = stat_u(p, "read_buf_mem_limit",
		   n->p.read_buf_mem_mb * 1024ull * 1024);
	p = stat_str(p, "track_sizes", "no");
	p = stat_str(p, "inline_ascii_response", "no");
	p = stat_u(p, "ext_item_size", 0);
	p = stat_u(p, "ext_item_age", UINT32_MAX); /* memcached's default */
	p = stat_u(p, "ext_low_ttl", 0);
	p = stat_u(p, "ext_recache_rate", 0);
	p = stat_u(p, "ext_wbuf_size", 0);
	p = stat_u(p, "ext_compact_under", 0);
	p = stat_u(p, "ext_drop_under", 0);
	p = stat_u(p, "ext_max_sleep", 0);
	p = stat_str(p, "ext_max_frag", "0.00");
	p = stat_str(p, "slab_automove_freeratio", "0.000");
	p = stat_str(p, "ext_drop_unread", "no");
	p = stat_str(p, "ssl_enabled", n->p.ssl ? "yes" : "no");
	p = stat_str(p, "ssl_chain_cert",
		     or_null(n->p.ssl_chain_cert, "(null)"));
	p = stat_str(p, "ssl_key", or_null(n->p.ssl_key, "(null)"));
	p = stat_u(p, "ssl_verify_mode", n->p.ssl_verify_mode);
	p = stat_u(p, "ssl_keyformat", 1);
	p = stat_str(p, "ssl_ciphers", or_null(n->p.ssl_ciphers, "NULL"));
	p = stat_str(p, "ssl_ca_cert", or_null(n->p.ssl_ca_cert, "NULL"));
	p = stat_u(p, "ssl_wbuf_size", n->p.ssl_wbuf_kb * 1024ull);
	p = stat_str(p, "ssl_session_cache",
		     n->p.ssl_session_cache ? "yes" : "no");
	p = stat_str(p, "ssl_kernel_tls", "no");
	p = stat_str(p, "ssl_min_version", tls_names[n->p.ssl_min_version & 3]);
	p = stat_str(p, "num_napi_ids", "(null)");
	p = stat_str(p, "memory_file", "(null)");
	p = PUT_LIT(p, "END\r\n");
	out_end(out, p);
	return 0;
}

static char *stat_cls(char *p, const char *prefix, const char *name, uint64_t v)
{
	p = PUT_LIT(p, "STAT ");
	p = put_mem(p, prefix, strlen(prefix));
	p = put_mem(p, name, strlen(name));
	*p++ = ' ';
	p = put_u64(p, v);
	return PUT_LIT(p, "\r\n");
}

/*
 * stats items: memlane has no slab classes, so the whole store is shown
 * as class 1 under memcached's field names, and only while it holds items
 * (memcached lists the classes that do). S3-FIFO's small queue stands for
 * the hot LRU, its main queue for the cold one; LRU machinery memlane
 * does not have reads 0.
 */
static int stats_items(struct proto_node *n, struct proto_out *out)
{
	const struct proc_baseline *b = &node_home(n)->base;
	struct proc_counters sum;
	struct cache_stats st;
	const char *c = "items:1:";
	char *p = out_begin(out, STATS_ROOM);

	if (!p)
		return -ENOMEM;
	node_counters(n, &sum);
	node_store_stats(n, &st);
	if (st.curr_items) {
		p = stat_cls(p, c, "number", st.curr_items);
		p = stat_cls(p, c, "number_hot", st.small_items);
		p = stat_cls(p, c, "number_warm", 0);
		p = stat_cls(p, c, "number_cold", st.main_items);
		p = stat_cls(p, c, "age_hot", 0);
		p = stat_cls(p, c, "age_warm", 0);
		p = stat_cls(p, c, "age", 0);
		p = stat_cls(p, c, "mem_requested", st.bytes);
		p = stat_cls(p, c, "evicted",
			     since(st.evictions, b->evictions));
		p = stat_cls(p, c, "evicted_nonzero", 0);
		p = stat_cls(p, c, "evicted_time", 0);
		p = stat_cls(p, c, "outofmemory", sum.store_no_memory);
		p = stat_cls(p, c, "tailrepairs", 0);
		p = stat_cls(p, c, "reclaimed",
			     since(st.reclaimed, b->reclaimed));
		p = stat_cls(p, c, "expired_unfetched",
			     since(st.expired_unfetched, b->expired_unfetched));
		p = stat_cls(p, c, "evicted_unfetched",
			     since(st.evicted_unfetched, b->evicted_unfetched));
		p = stat_cls(p, c, "evicted_active", 0);
		p = stat_cls(p, c, "crawler_reclaimed",
			     since(st.crawler_reclaimed, b->crawler_reclaimed));
		p = stat_cls(p, c, "crawler_items_checked",
			     since(st.crawler_checked, b->crawler_checked));
		p = stat_cls(p, c, "lrutail_reflocked", 0);
		p = stat_cls(p, c, "moves_to_cold", 0);
		p = stat_cls(p, c, "moves_to_warm",
			     since(st.moved_to_main, b->moved_to_main));
		p = stat_cls(p, c, "moves_within_lru",
			     since(st.reinserted, b->reinserted));
		p = stat_cls(p, c, "direct_reclaims", 0);
		p = stat_cls(p, c, "hits_to_hot", 0);
		p = stat_cls(p, c, "hits_to_warm", 0);
		p = stat_cls(p, c, "hits_to_cold", 0);
		p = stat_cls(p, c, "hits_to_temp", 0);
	}
	p = PUT_LIT(p, "END\r\n");
	out_end(out, p);
	return 0;
}

/*
 * stats slabs: class 1 stands for the store's segments, the unit memlane
 * allocates memory in (a page of one chunk each), listed once there is
 * one as memcached lists a class once it has a page. total_malloced is
 * all the memory the shards hold, index included.
 */
static int stats_slabs(struct proto_node *n, struct proto_out *out)
{
	struct proc_counters sum;
	const struct proc_counters *c = &sum;
	struct cache_stats st;
	const char *cl = "1:";
	size_t seg = n->p.segment_size ? n->p.segment_size : 1u << 20;
	size_t ism = n->p.item_size_max ? n->p.item_size_max : 1u << 20;
	char *p = out_begin(out, STATS_ROOM);

	if (!p)
		return -ENOMEM;
	node_counters(n, &sum);
	node_store_stats(n, &st);
	if (seg < ism)
		seg = ism;
	if (st.segments) {
		p = stat_cls(p, cl, "chunk_size", seg);
		p = stat_cls(p, cl, "chunks_per_page", 1);
		p = stat_cls(p, cl, "total_pages", st.segments);
		p = stat_cls(p, cl, "total_chunks", st.segments);
		p = stat_cls(p, cl, "used_chunks", st.segments);
		p = stat_cls(p, cl, "free_chunks", 0);
		p = stat_cls(p, cl, "free_chunks_end", 0);
		p = stat_cls(p, cl, "get_hits", c->get_hits);
		p = stat_cls(p, cl, "cmd_set", c->cmd_set);
		p = stat_cls(p, cl, "delete_hits", c->delete_hits);
		p = stat_cls(p, cl, "incr_hits", c->incr_hits);
		p = stat_cls(p, cl, "decr_hits", c->decr_hits);
		p = stat_cls(p, cl, "cas_hits", c->cas_hits);
		p = stat_cls(p, cl, "cas_badval", c->cas_badval);
		p = stat_cls(p, cl, "touch_hits", c->touch_hits);
	}
	p = stat_u(p, "active_slabs", st.segments ? 1 : 0);
	p = stat_u(p, "total_malloced", st.mem_used);
	p = PUT_LIT(p, "END\r\n");
	out_end(out, p);
	return 0;
}

/* stats reset: our counters go to 0; the shards' and the transport's
 * are remembered and subtracted from then on. */
static void stats_reset(struct proto_node *n)
{
	struct proto_node *home = node_home(n);
	struct proto_conn_stats conns;
	struct cache_stats st;

	node_store_stats(n, &st);
	node_conns(n, &conns);
	node_counters_raw(n, &home->c_base);
	home->base = (struct proc_baseline){
		.total_items = st.total_items,
		.evictions = st.evictions,
		.expired_unfetched = st.expired_unfetched,
		.evicted_unfetched = st.evicted_unfetched,
		.reclaimed = st.reclaimed,
		.get_expired = st.get_expired,
		.get_flushed = st.get_flushed,
		.crawler_checked = st.crawler_checked,
		.crawler_reclaimed = st.crawler_reclaimed,
		.moved_to_main = st.moved_to_main,
		.reinserted = st.reinserted,
		.total_connections = conns.total_connections,
		.rejected_connections = conns.rejected_connections,
		.bytes_read = conns.bytes_read,
		.bytes_written = conns.bytes_written,
	};
}

/* The i-th space-separated word of [s, s + len), or false. */
static bool word(const char *s, size_t len, unsigned i, const char **w,
		 size_t *wlen)
{
	size_t pos = 0;

	for (;;) {
		size_t start;

		while (pos < len && s[pos] == ' ')
			pos++;
		if (pos == len)
			return false;
		start = pos;
		while (pos < len && s[pos] != ' ')
			pos++;
		if (i-- == 0) {
			*w = s + start;
			*wlen = pos - start;
			return true;
		}
	}
}

static bool word_is(const char *w, size_t wlen, const char *lit)
{
	return wlen == strlen(lit) && memcmp(w, lit, wlen) == 0;
}

/* stats detail on|off|dump: the switch is every node's; a dump sums
 * every node's counters (proto_detail.c). */
static int stats_detail(struct proto_node *n, const char *buf,
			const struct proto_req *req, struct proto_out *out)
{
	const char *args = buf + req->args_off;
	const char *w;
	size_t wlen;

	if (word(args, req->args_len, 1, &w, &wlen)) {
		if (word_is(w, wlen, "on") || word_is(w, wlen, "off")) {
			bool on = word_is(w, wlen, "on");

			for (unsigned i = 0; i < node_count(n); i++)
				(n->npeers ? n->peers[i] : n)->detail = on;
			return OUT_LIT(out, "OK\r\n");
		}
		if (word_is(w, wlen, "dump"))
			return proto_detail_dump(n, out);
	}
	return OUT_LIT(out, "CLIENT_ERROR usage: stats detail on|off|dump\r\n");
}

/*
 * stats cores: memlane's own group (memcached answers ERROR to it), one
 * block of figures per core, "STAT core:<i>:<name> <value>", for the
 * control plane and for operators balancing a node.
 */
static int stats_cores(struct proto_node *n, struct proto_out *out)
{
	for (unsigned i = 0; i < node_count(n); i++) {
		const struct proto_node *o = node_at(n, i);
		struct cache_stats st, t;
		char prefix[32];
		char *p = out_begin(out, 1024);

		if (!p)
			return -ENOMEM;
		memset(&t, 0, sizeof(t));
		for (unsigned s = 0; s < o->nshards; s++) {
			cache_get_stats(o->shards[s], &st);
			t.curr_items += st.curr_items;
			t.bytes += st.bytes;
			t.mem_used += st.mem_used;
			t.evictions += st.evictions;
		}
		*put_u64(PUT_LIT(prefix, "core:"), i) = '\0';
		strcat(prefix, ":");
		p = stat_cls(p, prefix, "curr_items", t.curr_items);
		p = stat_cls(p, prefix, "bytes", t.bytes);
		p = stat_cls(p, prefix, "mem_used", t.mem_used);
		p = stat_cls(p, prefix, "limit_maxbytes", o->p.mem_limit);
		p = stat_cls(p, prefix, "evictions", t.evictions);
		p = stat_cls(p, prefix, "cmd_get", o->c.cmd_get);
		p = stat_cls(p, prefix, "cmd_set", o->c.cmd_set);
		p = stat_cls(p, prefix, "get_hits", o->c.get_hits);
		p = stat_cls(p, prefix, "get_misses", o->c.get_misses);
		p = stat_cls(p, prefix, "curr_connections",
			     o->conn.curr_connections);
		p = stat_cls(p, prefix, "total_connections",
			     o->conn.total_connections);
		p = stat_cls(p, prefix, "bytes_read", o->conn.bytes_read);
		p = stat_cls(p, prefix, "bytes_written", o->conn.bytes_written);
		out_end(out, p);
	}
	return OUT_LIT(out, "END\r\n");
}

/* stats [group]: memcached reads only the first word; an unknown group
 * is an ERROR. */
int proto_do_stats(struct proto_node *n, const char *buf,
		   const struct proto_req *req, struct proto_out *out)
{
	const char *args = buf + req->args_off;
	const char *w;
	size_t wlen;

	if (!word(args, req->args_len, 0, &w, &wlen))
		return stats_general(n, out);
	if (word_is(w, wlen, "settings"))
		return stats_settings(n, out);
	if (word_is(w, wlen, "items"))
		return stats_items(n, out);
	if (word_is(w, wlen, "slabs"))
		return stats_slabs(n, out);
	/* no item size histogram is kept, and none can be switched on */
	if (word_is(w, wlen, "sizes"))
		return OUT_LIT(out, "STAT sizes_status disabled\r\nEND\r\n");
	if (word_is(w, wlen, "sizes_enable") ||
	    word_is(w, wlen, "sizes_disable"))
		return OUT_LIT(out, "STAT sizes_status disabled\r\n");
	/* a dump is the transport's, streamed from every core over TCP;
	 * what reaches here (UDP, or arguments it does not take) is
	 * answered as memcached -X answers it */
	if (word_is(w, wlen, "cachedump"))
		return OUT_LIT(out,
			       "CLIENT_ERROR stats cachedump not allowed\r\n");
	/* nothing is stored outside memory */
	if (word_is(w, wlen, "extstore"))
		return OUT_LIT(out, "END\r\n");
	/* connections are the transport's; it answers for them */
	if (word_is(w, wlen, "conns")) {
		int rc = n->transport_conns
				 ? n->transport_conns(n->transport_conns_arg,
						      out)
				 : 0;

		return rc ? rc : OUT_LIT(out, "END\r\n");
	}
	if (word_is(w, wlen, "reset")) {
		stats_reset(n);
		return OUT_LIT(out, "RESET\r\n");
	}
	if (word_is(w, wlen, "detail"))
		return stats_detail(n, buf, req, out);
	if (word_is(w, wlen, "cores"))
		return stats_cores(n, out);
	if (word_is(w, wlen, "dataplane") && n->transport_stats) {
		int rc = n->transport_stats(n->transport_arg, out);

		return rc ? rc : OUT_LIT(out, "END\r\n");
	}
	return OUT_LIT(out, "ERROR\r\n");
}

/* ------------------------------------------------------------------------
 * Dispatch
 * ---------------------------------------------------------------------- */

static int dispatch(struct proto_node *n, const char *buf,
		    const struct proto_req *req, struct proto_out *out)
{
	switch (req->cmd) {
	case PROTO_GET:
		return do_get(n, buf, req, out, false);
	case PROTO_GETS:
		return do_get(n, buf, req, out, true);
	case PROTO_GAT:
		return do_gat(n, buf, req, out, false);
	case PROTO_GATS:
		return do_gat(n, buf, req, out, true);
	case PROTO_SET:
	case PROTO_ADD:
	case PROTO_REPLACE:
	case PROTO_APPEND:
	case PROTO_PREPEND:
	case PROTO_CAS:
		return do_store(n, buf, req, out);
	case PROTO_DELETE:
		return do_delete(n, buf, req, out);
	case PROTO_INCR:
	case PROTO_DECR:
		return do_arith(n, buf, req, out);
	case PROTO_TOUCH:
		return do_touch(n, buf, req, out);
	case PROTO_FLUSH_ALL:
		return proto_do_flush_all(n, req, out);
	case PROTO_VERSION:
		return OUT_LIT(out, "VERSION " PROC_VERSION "\r\n");
	case PROTO_VERBOSITY:
		n->verbosity = (unsigned)ML_MIN(req->num, (uint64_t)UINT32_MAX);
		return REPLY(out, req, "OK\r\n");
	case PROTO_STATS:
		return proto_do_stats(n, buf, req, out);
	case PROTO_MG:
		n->c.cmd_meta++;
		return do_mg(n, buf, req, out);
	case PROTO_MS:
		n->c.cmd_meta++;
		return do_ms(n, buf, req, out);
	case PROTO_MD:
		n->c.cmd_meta++;
		return do_md(n, buf, req, out);
	case PROTO_MA:
		n->c.cmd_meta++;
		return do_ma(n, buf, req, out);
	case PROTO_MN:
		n->c.cmd_meta++;
		return OUT_LIT(out, "MN\r\n");
	case PROTO_ME:
		return do_me(n, buf, req, out);
	case PROTO_ADMIN:
		return proto_admin_execute(n, buf, req, out);
	case PROTO_LRU_CRAWLER:
		if (!proto_dump_allowed(n, req))
			return proto_admin_execute(n, buf, req, out);
		/* the dump is the transport's, streamed from every core */
		return OUT_LIT(out, "SERVER_ERROR key dumps are served over "
				    "TCP only\r\n");
	default:
		return 0;
	}
}

/*
 * A request the parser refused: its answer (which noreply hides when the
 * line had set it before the fault). Data the parser found too large is
 * counted as a store would count it, and a set or ms refused so still
 * drops the key's old value: the parser names the key for that.
 */
static int do_error(struct proto_node *n, const char *buf,
		    const struct proto_req *req, struct proto_out *out)
{
	if (req->err && strcmp(req->err, err_too_large) == 0)
		n->c.store_too_large++;
	/* memcached counts a store once its data is read, bad or not */
	else if (req->err && strcmp(req->err, err_bad_chunk) == 0)
		n->c.cmd_set++;
	if (req->klen)
		cache_delete(shard_of(n, req->hv), req->hv, buf + req->key_off,
			     req->klen, 0);
	if (req->err && !req->noreply &&
	    out_put(out, req->err, strlen(req->err)))
		return -ENOMEM;
	return req->close ? -EPIPE : 0;
}

int proto_execute(struct proto_node *n, const char *buf,
		  const struct proto_req *req, struct proto_out *out)
{
	size_t start = out->len;
	int rc;

	if (unlikely(req->binary))
		return proto_bin_execute(n, buf, req, out);
	switch (req->cmd) {
	case PROTO_NONE:
		return 0;
	case PROTO_QUIT:
		return -EPIPE;
	case PROTO_ERR:
		return do_error(n, buf, req, out);
	default:
		break;
	}
	rc = dispatch(n, buf, req, out);
	if (unlikely(req->err) && !rc && proto_is_retrieval(req)) {
		out->len = start;
		rc = out_put(out, req->err, strlen(req->err));
	}
	/* in the second a delayed flush_all came due, nothing stays */
	if (unlikely(n->flush_hold) && req->klen)
		cache_delete(shard_of(n, req->hv), req->hv, buf + req->key_off,
			     req->klen, 0);
	if (unlikely(rc)) {
		/* nothing of a reply that did not fit is left behind */
		out->len = start;
		return rc;
	}
	return req->close ? -EPIPE : 0;
}

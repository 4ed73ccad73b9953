/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Key dumps: "lru_crawler metadump all|hash|<classes>" and "stats
 * cachedump <class> <limit>", streamed from every core's shard while the
 * cores serve. A core never reads another's shard, so the dump goes from
 * core to core as a message: the core that owns a shard walks
 * DUMP_BUCKETS index buckets of it, writes their items' lines into the
 * message, and sends it back with where its walk stands; the connection's
 * core appends the lines to the connection's output and asks for the next
 * batch once the output has room, so a client that does not read holds
 * up its own dump and nothing else. Until the dump ends (with END) the
 * connection takes no other request, and it starts only when every
 * earlier request has been answered, so the lines go out in their place.
 *
 * The lines are memcached 1.6's: "key=<uri-encoded key> exp=<unix time or
 * -1> la=<unix time> cas=<n> fetch=<yes|no> cls=1 size=<bytes>" for
 * metadump, "ITEM <key> [<bytes> b; <unix time or 0> s]" for cachedump,
 * whose whole answer memcached bounds at 2 MB. memlane has one class of
 * items (stats items and stats slabs say class 1): class 1, "all" and
 * "hash" dump everything, another class nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dp_internal.h"

#define DUMP_BUCKETS  256
#define CACHEDUMP_MAX (2u << 20) /* memcached's bound on the answer */
#define DUMP_LINE_MAX (3 * PROTO_KEY_MAX + 160)

enum { DUMP_META = 1, DUMP_CACHE = 2 };

/* The dump a request asks for (0: none), with the cachedump limit. */
int dp_dump_kind(const char *buf, const struct proto_req *req, bool *everything,
		 uint64_t *limit)
{
	const char *a = buf + req->args_off;
	unsigned cls = 0, lim = 0;
	char word[16];

	*everything = true;
	*limit = 0;
	if (req->cmd == PROTO_LRU_CRAWLER) {
		*everything = req->num != 0;
		return DUMP_META;
	}
	if (req->cmd != PROTO_STATS || req->args_len < 9 ||
	    memcmp(a, "cachedump", 9) != 0)
		return 0;
	if (req->args_len >= 64 ||
	    sscanf(a, "%15s %u %u", word, &cls, &lim) != 3 ||
	    strcmp(word, "cachedump") != 0)
		return 0; /* memcached's own refusal, from the text path */
	*everything = cls == 1;
	*limit = lim;
	return DUMP_CACHE;
}

static size_t uri_encode(const char *s, size_t n, char *out)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
		    ch == '_' || ch == '~') {
			out[o++] = (char)ch;
		} else {
			out[o++] = '%';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	return o;
}

static void dump_item(void *arg, const struct cache_item *it)
{
	struct dp_msg *m = arg;
	char line[DUMP_LINE_MAX], key[3 * PROTO_KEY_MAX + 1];
	int n;

	if (it->klen > PROTO_KEY_MAX ||
	    proto_out_reserve(&m->reply, DUMP_LINE_MAX))
		return;
	if (m->req.flags == DUMP_META) {
		size_t kl = uri_encode(it->key, it->klen, key);

		key[kl] = 0;
		n = snprintf(line, sizeof(line),
			     "key=%s exp=%lld la=%u cas=%llu fetch=%s cls=1 "
			     "size=%zu\n",
			     key, it->exptime ? (long long)it->exptime : -1ll,
			     it->atime, (unsigned long long)it->cas,
			     it->fetched ? "yes" : "no",
			     proto_item_size(it->klen, it->vlen, it->flags));
	} else {
		n = snprintf(line, sizeof(line), "ITEM %.*s [%u b; %u s]\r\n",
			     (int)it->klen, it->key, it->vlen, it->exptime);
	}
	if (n > 0 && (size_t)n < sizeof(line)) {
		memcpy(m->reply.buf + m->reply.len, line, (size_t)n);
		m->reply.len += (size_t)n;
	}
}

/* On the core that owns the shard: one batch. req.num is where the walk
 * stands (its next bucket); has_num says it is done. */
void dp_dump_batch(struct dp_core *c, struct dp_msg *m)
{
	struct cache_walk w = {.bucket = (uint32_t)m->req.num};

	m->reply.len = 0;
	m->req.has_num = cache_walk_step(proto_node_shard(c->node, 0), &w,
					 DUMP_BUCKETS, dump_item, m);
	m->req.num = w.bucket;
	if (m->src != c->id) {
		m->kind = MSG_DUMP_DONE;
		dp_msg_send(c, m->src, m);
	}
}

static bool out_room(const struct dp_conn *k)
{
	return k->out.len - k->out_sent <= OUT_HIGH;
}

/* A batch's lines, filed; the dump moves to the next core when the walk
 * of this one is done, and ends after the last. */
static void dump_take(struct dp_conn *k, struct dp_msg *m)
{
	size_t n = m->reply.len;

	if (k->dump_kind == DUMP_CACHE) {
		bool stop = false;
		size_t last = 0;

		/* whole lines, no more than the limit asks or 2 MB in all */
		for (size_t i = 0; i < m->reply.len && !stop; i++) {
			if (m->reply.buf[i] != '\n')
				continue;
			if (k->dump_bytes + i + 1 > CACHEDUMP_MAX) {
				stop = true;
				break;
			}
			last = i + 1;
			if (k->dump_left && --k->dump_left == 0)
				stop = true;
		}
		n = last;
		k->dump_bytes += n;
		if (stop)
			k->dump_core = dp_ncores;
	}
	if (n && !proto_out_reserve(&k->out, n)) {
		memcpy(k->out.buf + k->out.len, m->reply.buf, n);
		k->out.len += n;
	}
	if (k->dump_core < dp_ncores) {
		if (m->req.has_num) {
			k->dump_core++;
			k->dump_bucket = 0;
		} else {
			k->dump_bucket = (uint32_t)m->req.num;
		}
	}
	if (k->dump_core >= dp_ncores) {
		static const char end[] = "END\r\n";

		if (!proto_out_reserve(&k->out, sizeof(end) - 1)) {
			memcpy(k->out.buf + k->out.len, end, sizeof(end) - 1);
			k->out.len += sizeof(end) - 1;
		} else {
			k->want_close = true;
		}
		k->dumping = false;
	}
}

/* Asks for batches while the output has room: this core's at once,
 * another's by a message (one at a time). */
void dp_dump_next(struct dp_core *c, struct dp_conn *k)
{
	while (k->dumping && !k->dump_inflight && !k->closed && out_room(k)) {
		struct dp_msg *m = dp_msg_get(c);

		if (!m) {
			k->dumping = false;
			k->want_close = true;
			return;
		}
		m->conn = k;
		m->req.flags = k->dump_kind;
		m->req.num = k->dump_bucket;
		m->req.has_num = false;
		if (!k->dump_all) {
			/* a class memlane does not have: nothing in it */
			m->req.has_num = true;
			m->reply.len = 0;
		} else if (k->dump_core == c->id) {
			dp_dump_batch(c, m);
		} else {
			m->kind = MSG_DUMP;
			k->dump_inflight = true;
			k->waiting++;
			dp_msg_send(c, k->dump_core, m);
			return;
		}
		dump_take(k, m);
		dp_msg_put(c, m);
	}
}

/* Another core's batch came back. */
void dp_dump_reply(struct dp_core *c, struct dp_msg *m)
{
	struct dp_conn *k = m->conn;

	k->waiting--;
	k->dump_inflight = false;
	if (k->closed) {
		dp_msg_put(c, m);
		if (k->waiting == 0)
			dp_conn_close(c, k);
		return;
	}
	dump_take(k, m);
	dp_msg_put(c, m);
	k->ops->progress(c, k);
}

bool dp_dump_start(struct dp_core *c, struct dp_conn *k, const char *buf,
		   const struct proto_req *req)
{
	bool all;
	uint64_t limit;
	int kind = dp_dump_kind(buf, req, &all, &limit);

	if (!kind || k->udp)
		return false;
	k->dumping = true;
	k->dump_kind = (uint8_t)kind;
	k->dump_all = all;
	k->dump_core = 0;
	k->dump_bucket = 0;
	k->dump_left = limit;
	k->dump_bytes = 0;
	dp_dump_next(c, k);
	return true;
}

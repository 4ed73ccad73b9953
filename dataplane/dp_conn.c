/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Connections, whichever backend made them: a TCP stream or one datagram.
 * Their input is parsed, each request routed to the core that owns its
 * key (executed here, or handed off), and the replies kept in request
 * order by a queue of slots: a reply that is ready while an earlier one
 * is still out waits in its slot. A connection's ops, given by its
 * backend, say how the replies then leave.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_internal.h"
#include "ring.h"

/* ------------------------------------------------------------------------
 * Connections
 * ---------------------------------------------------------------------- */

static void conn_link(struct dp_core *c, struct dp_conn *k)
{
	k->next = c->conns.next;
	k->prev = &c->conns;
	c->conns.next->prev = k;
	c->conns.next = k;
}

static void conn_unlink(struct dp_conn *k)
{
	k->prev->next = k->next;
	k->next->prev = k->prev;
}

static inline struct dp_slot *slot_at(const struct dp_conn *k, uint32_t seq)
{
	return &k->slots[seq & (k->scap - 1)];
}

/* A new slot at the tail; the array doubles when it is full (a split
 * retrieval of many keys), every slot keeping its sequence number. */
static struct dp_slot *slot_push(struct dp_conn *k)
{
	if (k->stail - k->shead == k->scap) {
		uint32_t cap = k->scap * 2;
		struct dp_slot *n = calloc(cap, sizeof(*n));

		if (!n)
			return NULL;
		for (uint32_t q = k->shead; q != k->stail; q++)
			n[q & (cap - 1)] = *slot_at(k, q);
		free(k->slots);
		k->slots = n;
		k->scap = cap;
	}
	return slot_at(k, k->stail++);
}

atomic_size_t dp_rbuf_bytes;

bool dp_rbuf_charge(ssize_t bytes)
{
	size_t limit = (size_t)dp_cfg->read_buf_mem_mb << 20;

	if (bytes > 0 && limit &&
	    atomic_load(&dp_rbuf_bytes) + (size_t)bytes > limit)
		return false;
	atomic_fetch_add(&dp_rbuf_bytes, (size_t)bytes);
	return true;
}

void dp_conn_free(struct dp_conn *k)
{
	if (!k->udp && k->rbuf)
		dp_rbuf_charge(-(ssize_t)k->rcap);
	free(k->left);
	free(k->rbuf);
	free(k->slots);
	proto_out_free(&k->out);
	free(k);
}

/* A datagram's connection goes back to the core's pool, its buffers kept
 * (but for a reply buffer grown past UDP_OUT_KEEP by a large value), so
 * that a datagram costs no allocation. */
static void conn_release(struct dp_core *c, struct dp_conn *k)
{
	while (k->shead != k->stail) {
		struct dp_slot *s = slot_at(k, k->shead);

		if (s->msg)
			dp_msg_put(c, s->msg);
		k->shead++;
	}
	conn_unlink(k);
	if (k->udp && c->udp_pooled < UDP_POOL_MAX) {
		if (k->out.cap > UDP_OUT_KEEP)
			proto_out_free(&k->out);
		k->next = c->udp_pool;
		c->udp_pool = k;
		c->udp_pooled++;
		return;
	}
	dp_conn_free(k);
}

/* A pooled datagram connection, as new but for its buffers. */
static struct dp_conn *conn_reuse(struct dp_core *c)
{
	struct dp_conn *k = c->udp_pool, old = *k;

	c->udp_pool = k->next;
	c->udp_pooled--;
	memset(k, 0, sizeof(*k));
	k->slots = old.slots;
	k->scap = old.scap;
	k->rbuf = old.rbuf;
	k->rcap = old.rcap;
	k->left = old.left;
	k->out.buf = old.out.buf;
	k->out.cap = old.out.cap;
	return k;
}

/* Closes a connection; it is freed now or when its last reply returns. */
void dp_conn_close(struct dp_core *c, struct dp_conn *k)
{
	if (k->watch_mask)
		dp_watch_stop(c, k);
	if (!k->closed) {
		k->closed = true;
		k->ops->closed(c, k);
	}
	if (k->waiting == 0)
		conn_release(c, k);
}

struct dp_conn *dp_conn_new(struct dp_core *c, int fd, bool udp,
			    const struct dp_conn_ops *ops)
{
	struct dp_conn *k;

	if (udp && c->udp_pool) {
		k = conn_reuse(c);
	} else {
		k = calloc(1, sizeof(*k));
		if (!k)
			return NULL;
		k->scap = 16;
		k->slots = calloc(k->scap, sizeof(*k->slots));
		k->rcap = udp ? 0 : RBUF_MIN;
		k->rbuf = udp ? NULL : malloc(k->rcap);
		if (k->rbuf)
			atomic_fetch_add(&dp_rbuf_bytes, k->rcap);
		if (!k->slots || (!udp && !k->rbuf)) {
			dp_conn_free(k);
			return NULL;
		}
	}
	k->fd = fd;
	k->udp = udp;
	k->binary = false;
	k->ops = ops;
	k->ps.item_size_max = (uint32_t)dp_cfg->item_size_max;
	k->last_rx = dp_now_sec();
	conn_link(c, k);
	return k;
}

/*
 * UDP replies leave as memcached sends them. It holds a response per
 * request (none for noreply or a quiet meta miss), and per key of a
 * retrieval, the END joining the last key's; it sends what it holds after
 * each retrieval and mn, and at the end of the datagram. Each response is
 * a message, except that an empty one (a key that missed) is a bare
 * header with a count of 0 when nothing went out since the last flush,
 * and nothing at all when something did. udp_before() and udp_after() go
 * around every reply appended to the output, in order; a key's reply
 * waits there until the next key or the END shows where it ends.
 */
static void udp_response(struct dp_core *c, struct dp_conn *k)
{
	if (k->out.len || !k->walked)
		k->ops->send(c, k);
	k->out.len = 0;
	k->walked = true;
}

static inline void udp_before(struct dp_core *c, struct dp_conn *k,
			      enum part part)
{
	if (k->udp && part == PART_NEXT)
		udp_response(c, k);
}

static inline void udp_after(struct dp_core *c, struct dp_conn *k,
			     enum part part, bool flush)
{
	if (!k->udp)
		return;
	if (part == PART_END || part == PART_BIN ||
	    (part == PART_NONE && k->out.len))
		udp_response(c, k);
	if (flush)
		k->walked = false;
}

/* Whether memcached sends what it holds once this request is done. */
static inline bool udp_flushes(const struct proto_req *req, enum part part)
{
	switch (req->cmd) {
	case PROTO_GET:
	case PROTO_GETS:
	case PROTO_GAT:
	case PROTO_GATS:
	case PROTO_MN:
		return part == PART_NONE;
	default:
		return part == PART_END;
	}
}

static inline bool part_of_key(enum part part)
{
	return part == PART_FIRST || part == PART_NEXT;
}

/* Appends ready slots, in order, to the connection's output. */
/*
 * The bound on what one datagram's replies may add up to, against
 * reflection: one largest item with its lines, plus UDP_AMPLIFY bytes
 * per byte of the request. A key of a multi-key get whose value would
 * pass it is left out, as a miss is (counted in c->udp_capped). Returns
 * how much of a reply of len bytes to keep.
 */
static size_t udp_bound(struct dp_core *c, struct dp_conn *k, enum part part,
			size_t len)
{
	if (!k->udp)
		return len;
	if (part_of_key(part) && k->udp_bytes + len > k->udp_cap) {
		c->udp_capped++;
		return 0;
	}
	k->udp_bytes += len;
	return len;
}

void dp_conn_drain(struct dp_core *c, struct dp_conn *k)
{
	while (k->shead != k->stail) {
		struct dp_slot *s = slot_at(k, k->shead);

		if (s->state != SLOT_READY)
			break;
		k->held -= s->msg->reply.len;
		if (!k->closed && !k->want_close) {
			size_t len =
				udp_bound(c, k, s->part, s->msg->reply.len);

			udp_before(c, k, s->part);
			if (len && proto_out_reserve(&k->out, len)) {
				k->want_close = true;
			} else {
				if (len)
					memcpy(k->out.buf + k->out.len,
					       s->msg->reply.buf, len);
				k->out.len += len;
				udp_after(c, k, s->part, s->flush);
			}
		}
		if (s->close)
			k->want_close = true;
		dp_msg_put(c, s->msg);
		s->msg = NULL;
		k->shead++;
	}
}

size_t dp_rbuf_max(void)
{
	return dp_cfg->item_size_max + PROTO_GET_LINE_MAX;
}

/* Drops a trailing "END\r\n" (one key of a split retrieval). */
void dp_strip_end(struct proto_out *o, size_t from)
{
	if (o->len >= from + 5 &&
	    memcmp(o->buf + o->len - 5, "END\r\n", 5) == 0)
		o->len -= 5;
}

static bool slot_wait(struct dp_conn *k, struct dp_msg *m,
		      const struct proto_req *req, enum part part);

/* A message that carries a copy of the request to where it runs, its
 * slot waiting at the tail; NULL when memory is out (the connection then
 * closes). */
static struct dp_msg *msg_carrying(struct dp_core *c, struct dp_conn *k,
				   const char *buf, const struct proto_req *req,
				   enum part part)
{
	struct dp_msg *m = dp_msg_get(c);

	if (!m || proto_out_reserve(&m->bytes, req->len) ||
	    !slot_wait(k, m, req, part)) {
		if (m)
			dp_msg_put(c, m);
		k->want_close = true;
		return NULL;
	}
	memcpy(m->bytes.buf, buf, req->len);
	m->bytes.len = req->len;
	return m;
}

/* A request that waits for its key to be fetched from the node that
 * owned it before (dp_warm.c); it runs here when that is done. */
static void exec_warm(struct dp_core *c, struct dp_conn *k, const char *buf,
		      const struct proto_req *req, enum part part,
		      unsigned member)
{
	struct dp_msg *m = msg_carrying(c, k, buf, req, part);

	if (m)
		dp_warm_fetch(c, m, member);
}

/* Executes a request this core owns, answering in order. */
static void exec_local(struct dp_core *c, struct dp_conn *k, const char *buf,
		       const struct proto_req *req, enum part part)
{
	struct dp_msg *m;
	struct dp_slot *s;
	size_t from = k->out.len;
	unsigned member;
	int rc;

	if (unlikely(c->warm) && dp_warm_wants(c, buf, req, &member)) {
		exec_warm(c, k, buf, req, part, member);
		return;
	}
	if (k->shead == k->stail) {
		/* nothing ahead: straight to the output */
		udp_before(c, k, part);
		from = k->out.len;
		rc = proto_execute(c->node, buf, req, &k->out);
		if (part_of_key(part))
			dp_strip_end(&k->out, from);
		k->out.len = from + udp_bound(c, k, part, k->out.len - from);
		if (rc == -EPIPE || rc == -ENOMEM)
			k->want_close = true;
		else
			udp_after(c, k, part, udp_flushes(req, part));
		return;
	}
	m = dp_msg_get(c);
	s = m ? slot_push(k) : NULL;
	if (!s) {
		if (m)
			dp_msg_put(c, m);
		k->want_close = true;
		return;
	}
	rc = proto_execute(c->node, buf, req, &m->reply);
	if (part_of_key(part))
		dp_strip_end(&m->reply, 0);
	k->held += m->reply.len;
	s->state = SLOT_READY;
	s->close = rc == -EPIPE || rc == -ENOMEM;
	s->part = (uint8_t)part;
	s->flush = udp_flushes(req, part);
	s->msg = m;
	dp_conn_drain(c, k);
}

/* A slot at the tail that waits for m, the request's message. Returns
 * false when memory is out. */
static bool slot_wait(struct dp_conn *k, struct dp_msg *m,
		      const struct proto_req *req, enum part part)
{
	struct dp_slot *s = slot_push(k);

	if (!s)
		return false;
	m->req = *req;
	m->kind = MSG_REQ;
	m->strip_end = part_of_key(part);
	m->conn = k;
	m->slot = k->stail - 1;
	s->state = SLOT_WAIT;
	s->close = false;
	s->part = (uint8_t)part;
	s->flush = udp_flushes(req, part);
	s->msg = NULL;
	k->waiting++;
	return true;
}

/* Sends a request to the core that owns its key. */
static void exec_remote(struct dp_core *c, struct dp_conn *k, unsigned owner,
			const char *buf, const struct proto_req *req,
			enum part part)
{
	struct dp_msg *m = msg_carrying(c, k, buf, req, part);

	if (!m)
		return;
	c->handed_off++;
	dp_msg_send(c, owner, m);
}

/* Sends a request to the node that owns its key. */
static void exec_forward(struct dp_core *c, struct dp_conn *k, unsigned member,
			 const char *buf, const struct proto_req *req,
			 enum part part)
{
	struct dp_msg *m = dp_msg_get(c);

	if (!m || !slot_wait(k, m, req, part)) {
		if (m)
			dp_msg_put(c, m);
		k->want_close = true;
		return;
	}
	dp_fwd_send(c, member, m, buf);
}

/*
 * Where a key runs: a core of this node (its index), or another node
 * (DP_CORE_MAX + the member). A request a peer forwarded runs here
 * whatever this node's ring says, and so does one that cannot be sent
 * as it was taken: an error whose data block was swallowed.
 */
static unsigned key_route(const struct dp_core *c, const struct dp_conn *k,
			  const char *key, size_t klen, uint64_t hv)
{
	if (c->ring && !k->forwarded) {
		unsigned m = dp_key_owner(c, key, klen);

		if (m != dp_cfg->self)
			return DP_CORE_MAX + m;
	}
	return ring_core(hv, dp_ncores);
}

static void exec_routed(struct dp_core *c, struct dp_conn *k, const char *buf,
			const struct proto_req *req, enum part part)
{
	unsigned to = req->cmd == PROTO_ERR || req->close
			      ? ml_hash_core(req->hv, dp_ncores)
			      : key_route(c, k, buf + req->key_off, req->klen,
					  req->hv);

	if (to == c->id)
		exec_local(c, k, buf, req, part);
	else if (to < DP_CORE_MAX)
		exec_remote(c, k, to, buf, req, part);
	else
		exec_forward(c, k, to - DP_CORE_MAX, buf, req, part);
}

/*
 * A retrieval of keys that more than one core owns, or of more than one
 * key over UDP, is split into one request per key, each answered without
 * its END, and one END at the end; the slots keep them in the order the
 * keys were given. The keys go out as long as the connection has room (a
 * datagram's all at once), so a get of many thousand keys holds no more
 * in flight than a pipeline does. buf is the retrieval's line. Returns
 * whether every key went out.
 */
static bool split_run(struct dp_core *c, struct dp_conn *k, const char *buf)
{
	static const char *const names[] = {[PROTO_GET] = "get",
					    [PROTO_GETS] = "gets",
					    [PROTO_GAT] = "gat",
					    [PROTO_GATS] = "gats"};
	const struct proto_req *req = &k->split;
	/* a key too long ends the keys, and its error is the whole reply */
	const struct proto_req end_req = {
		.cmd = PROTO_ERR, .err = req->err ? req->err : "END\r\n"};
	struct proto_parser ps = {.item_size_max = k->ps.item_size_max};
	char line[PROTO_KEY_MAX + 64];
	uint32_t off, klen;
	struct proto_req one;

	while (!k->want_close && (k->udp || dp_conn_can_take(k))) {
		enum part part =
			k->split_pos == req->key_off ? PART_FIRST : PART_NEXT;
		int n;

		if (!proto_next_key(buf, req, &k->split_pos, &off, &klen)) {
			exec_local(c, k, "", &end_req, PART_END);
			k->splitting = false;
			return true;
		}
		if (req->cmd == PROTO_GAT || req->cmd == PROTO_GATS)
			n = snprintf(line, sizeof(line), "%s %lld ",
				     names[req->cmd], (long long)req->exptime);
		else
			n = snprintf(line, sizeof(line), "%s ",
				     names[req->cmd]);
		memcpy(line + n, buf + off, klen);
		memcpy(line + n + klen, "\r\n", 2);
		if (proto_parse(&ps, line, (size_t)n + klen + 2, &one) == 0)
			continue;
		if (req->err) /* looked up, and answered by end_req only */
			one.err = "";
		exec_routed(c, k, line, &one, part);
		k->last_rx = dp_now_sec();
	}
	return false;
}

/* Whether a retrieval has more than one key. */
static bool keys_many(const char *buf, const struct proto_req *req)
{
	uint32_t pos = req->key_off, off, klen;

	/* the common get of one key: its key ends the line */
	if (req->key_off + req->klen >= req->keys_end)
		return false;
	return proto_next_key(buf, req, &pos, &off, &klen) &&
	       proto_next_key(buf, req, &pos, &off, &klen);
}

/* Whether a retrieval's keys all run in one place: one core of this
 * node, or one other node. */
static bool keys_one_route(const struct dp_core *c, const struct dp_conn *k,
			   const char *buf, const struct proto_req *req)
{
	uint32_t pos = req->key_off, off, klen;
	unsigned first =
		key_route(c, k, buf + req->key_off, req->klen, req->hv);

	while (proto_next_key(buf, req, &pos, &off, &klen))
		if (key_route(c, k, buf + off, klen,
			      ml_hash(buf + off, klen)) != first)
			return false;
	return true;
}

static bool handle_request(struct dp_core *c, struct dp_conn *k,
			   const char *buf, const struct proto_req *req)
{
	enum part whole = req->binary ? PART_BIN : PART_NONE;

	/* the mn that ends each forwarded request is not one of its own */
	c->forwarded_in += k->forwarded && req->cmd != PROTO_MN;
	switch (req->cmd) {
	case PROTO_GET:
	case PROTO_GETS:
	case PROTO_GAT:
	case PROTO_GATS:
		/* while previous owners' digests last, each key of a
		 * retrieval is looked at on its own (dp_warm_wants()) */
		if (k->udp ? keys_many(buf, req)
			   : (dp_ncores > 1 || c->ring) &&
				     req->keys_end > req->key_off &&
				     ((c->warm && keys_many(buf, req)) ||
				      !keys_one_route(c, k, buf, req))) {
			k->split = *req;
			k->split_pos = req->key_off;
			k->splitting = true;
			return split_run(c, k, buf);
		}
		if (req->keys_end == req->key_off) {
			exec_local(c, k, buf, req, whole);
			return true;
		}
		exec_routed(c, k, buf, req, whole);
		return true;
	case PROTO_SET:
	case PROTO_ADD:
	case PROTO_REPLACE:
	case PROTO_APPEND:
	case PROTO_PREPEND:
	case PROTO_CAS:
	case PROTO_DELETE:
	case PROTO_INCR:
	case PROTO_DECR:
	case PROTO_TOUCH:
	case PROTO_MG:
	case PROTO_MS:
	case PROTO_MD:
	case PROTO_MA:
	case PROTO_ME:
		exec_routed(c, k, buf, req, whole);
		return true;
	case PROTO_ERR:
		/* a set or ms too large for the cache drops the key's old
		 * value, in the shard that owns it */
		if (req->klen) {
			exec_routed(c, k, buf, req, whole);
			return true;
		}
		exec_local(c, k, buf, req, whole);
		return true;
	case PROTO_FLUSH_ALL:
		if (dp_ncores > 1)
			dp_flush_broadcast(c, buf, req);
		exec_local(c, k, buf, req, whole);
		return true;
	case PROTO_ADMIN:
		if (req->num == PROTO_ADMIN_WATCH &&
		    dp_watch_start(c, k, buf, req))
			return true;
		/* what every core holds changes on every core */
		if (dp_ncores > 1 && proto_admin_fans_out(req))
			dp_flush_broadcast(c, buf, req);
		exec_local(c, k, buf, req, whole);
		return true;
	default:
		/* errors, stats, version, verbosity, mn, quit: this core */
		exec_local(c, k, buf, req, whole);
		return true;
	}
}

/* Whether the connection has its store of parsed requests (k->left). */
static bool conn_left(struct dp_conn *k)
{
	if (!k->left)
		k->left = malloc(sizeof(*k->left) * AHEAD_MAX);
	return k->left != NULL;
}

/*
 * Parses up to AHEAD_MAX requests from rbuf + off into q, and adds the
 * hashes of the keys this core owns to hv[*nh..max), so that what they
 * will read can be prefetched together. Returns how many it parsed.
 */
static unsigned parse_ahead(struct dp_core *c, struct dp_conn *k, size_t off,
			    struct proto_req *q, uint64_t *hv, unsigned *nh,
			    unsigned max)
{
	unsigned n = 0;

	while (n < AHEAD_MAX && off < k->rlen) {
		struct proto_req *r = &q[n];
		/* a forwarding peer sends each request as its client did */
		bool bin =
			k->binary || (k->forwarded &&
				      (uint8_t)k->rbuf[off] == PROTO_BIN_REQ);
		size_t got = bin ? proto_parse_binary(&k->ps, k->rbuf + off,
						      k->rlen - off, r)
				 : proto_parse(&k->ps, k->rbuf + off,
					       k->rlen - off, r);

		if (got == 0)
			break;
		off += got;
		n++;
		if (r->klen && *nh < max &&
		    ml_hash_core(r->hv, dp_ncores) == c->id)
			hv[(*nh)++] = r->hv;
		if (proto_ends_stream(r))
			break; /* nothing after it runs */
	}
	return n;
}

/*
 * Parses and runs what the connection's buffer holds, as far as it may
 * take requests now (a datagram is taken whole). Requests are parsed
 * AHEAD_MAX at a time and prefetched; those that room keeps from running
 * wait in k->left, as do a stats request and those after it while the
 * connection has requests at other cores, and a split retrieval that
 * runs out of room stays at the head of the buffer, to go on first next
 * time. Sets k->runnable when input is left that only room stopped.
 */
/* Whether a client's first bytes make it speak the binary protocol: by
 * its first byte (0x80), or as -B says. */
static bool dp_binary_first(const char *buf, size_t len)
{
	if (dp_cfg->binding != DP_BIND_AUTO)
		return dp_cfg->binding == DP_BIND_BINARY;
	return len && (uint8_t)buf[0] == PROTO_BIN_REQ;
}

/*
 * A stream's first bytes: a peer's forwarding connection announces
 * itself with DP_FWD_HELLO, and what comes after runs here, never
 * forwarded again; a first byte of 0x80 makes the connection binary, as
 * in memcached. Returns false while the bytes so far could still be the
 * start of the hello.
 */
static bool conn_greet(struct dp_core *c, struct dp_conn *k)
{
	static const char hello[] = DP_FWD_HELLO;
	size_t n = sizeof(hello) - 1;

	(void)c;
	if (k->rlen < n && memcmp(k->rbuf, hello, k->rlen) == 0)
		return false;
	k->greeted = true;
	if (k->rlen >= n && memcmp(k->rbuf, hello, n) == 0) {
		k->forwarded = true;
		memmove(k->rbuf, k->rbuf + n, k->rlen - n);
		k->rlen -= n;
	} else {
		k->binary = dp_binary_first(k->rbuf, k->rlen);
	}
	return true;
}

void dp_conn_parse(struct dp_core *c, struct dp_conn *k)
{
	struct proto_req *q = k->left;
	unsigned qh = 0, qn = k->nleft, ran = 0;
	size_t off = 0;

	k->runnable = false;
	if (unlikely(k->watch_mask) || k->ended) {
		/* a watcher's input is ignored, as memcached; so is what
		 * came after a quit or a close, while the replies before it
		 * are still to come from other cores */
		k->rlen = 0;
		return;
	}
	if (!k->greeted && !k->udp && !conn_greet(c, k))
		return;
	if (k->dumping) {
		/* nothing else runs until the dump's END */
		dp_dump_next(c, k);
		if (k->dumping)
			return;
	}
	c->running = k;
	k->yielded = false;
	while (off < k->rlen) {
		struct proto_req *req;

		if (k->udp ? k->want_close : !dp_conn_can_take(k)) {
			k->runnable = !k->want_close;
			break;
		}
		/* -R: after so many requests, the other connections' turn */
		if (!k->udp && !k->forwarded && ran == dp_cfg->reqs_per_event) {
			k->runnable = k->yielded = true;
			c->cs.conn_yields++;
			break;
		}
		if (k->splitting) {
			if (!split_run(c, k, k->rbuf + off))
				continue; /* out of room: the check above */
			off += k->split.len;
			continue;
		}
		if (qh == qn) {
			uint64_t hv[AHEAD_MAX];
			unsigned nh = 0;

			q = c->ahead;
			qh = 0;
			qn = parse_ahead(c, k, off, q, hv, &nh, AHEAD_MAX);
			if (nh > 1)
				proto_prefetch(c->node, nh, hv);
			if (qn == 0)
				break;
		}
		req = &q[qh];
		/* stats reads every core's counters and shards: it waits for
		 * this connection's requests at other cores to run, so that
		 * it sees them, as memcached's stats sees every request
		 * before it (a reply brings the connection back here) */
		if (req->cmd == PROTO_STATS && k->waiting)
			break;
		/* a watch starts once every reply before it is out */
		if (req->cmd == PROTO_ADMIN && req->num == PROTO_ADMIN_WATCH &&
		    k->shead != k->stail)
			break;
		/* a dump streams into the output: it starts once everything
		 * before it is out there */
		if (!k->udp && dp_dump_wanted(k->rbuf + off, req) &&
		    proto_dump_allowed(c->node, req)) {
			if (k->shead != k->stail)
				break;
			qh++;
			k->last_rx = dp_now_sec();
			dp_dump_start(c, k, k->rbuf + off, req);
			off += req->len;
			if (k->dumping)
				break;
			continue;
		}
		qh++;
		k->last_rx = dp_now_sec();
		if (unlikely(dp_auth_on) && !k->authed && !k->forwarded &&
		    req->cmd != PROTO_NONE)
			dp_auth_gate(k, k->rbuf + off, req);
		ran++;
		if (req->cmd != PROTO_NONE &&
		    !handle_request(c, k, k->rbuf + off, req))
			continue;
		off += req->len;
		if (proto_ends_stream(req)) {
			/* parse_ahead() stopped at it: nothing is left */
			k->ended = true;
			off = k->rlen;
			break;
		}
	}
	c->running = NULL;
	k->nleft = qn - qh;
	if (k->nleft && !conn_left(k)) {
		k->nleft = 0;
		k->want_close = true;
	} else if (k->nleft) {
		memmove(k->left, q + qh, sizeof(*q) * k->nleft);
	}
	if (off) {
		memmove(k->rbuf, k->rbuf + off, k->rlen - off);
		k->rlen -= off;
	}
}

struct dp_conn *dp_udp_take(struct dp_core *c, const char *d, size_t n,
			    const struct dp_conn_ops *ops)
{
	struct proto_udp_hdr h;
	struct dp_conn *k;

	if (proto_udp_parse(d, n, &h)) {
		c->udp_dropped++;
		return NULL;
	}
	k = dp_conn_new(c, -1, true, ops);
	if (!k)
		return NULL;
	k->req_id = h.req_id;
	k->udp_cap = dp_cfg->item_size_max + PROTO_KEY_MAX + 64 +
		     (size_t)UDP_AMPLIFY * n;
	/* the payload is parsed where it lies in a copy the conn owns */
	if (k->rcap < n - PROTO_UDP_HDR + 1) {
		char *b = realloc(k->rbuf, n - PROTO_UDP_HDR + 1);

		if (!b) {
			conn_release(c, k);
			return NULL;
		}
		k->rbuf = b;
		k->rcap = n - PROTO_UDP_HDR + 1;
	}
	memcpy(k->rbuf, d + PROTO_UDP_HDR, n - PROTO_UDP_HDR);
	k->rlen = n - PROTO_UDP_HDR;
	k->binary = dp_binary_first(k->rbuf, k->rlen);
	return k;
}

/* One datagram: one request or a few, each answered with a message of
 * its own (one or more datagrams), in order, as memcached does. */
void dp_udp_run(struct dp_core *c, struct dp_conn *k)
{
	if (!k->want_close)
		dp_conn_parse(c, k);
	if (k->shead == k->stail && (!k->nleft || k->want_close)) {
		if (k->out.len)
			k->ops->send(c, k);
		dp_conn_close(c, k);
	}
}

void dp_udp_burst(struct dp_core *c, struct dp_conn *const *k, unsigned n)
{
	uint64_t hv[CACHE_BULK_MAX];
	unsigned nh = 0;

	for (unsigned i = 0; n > 1 && i < n; i++)
		if (k[i] && conn_left(k[i]))
			k[i]->nleft = parse_ahead(c, k[i], 0, k[i]->left, hv,
						  &nh, ML_ARRAY_SIZE(hv));
	if (nh > 1)
		proto_prefetch(c->node, nh, hv);
	for (unsigned i = 0; i < n; i++)
		if (k[i])
			dp_udp_run(c, k[i]);
}

/* Files a reply from another core in its slot, and moves its connection
 * on. */
void dp_conn_reply(struct dp_core *c, struct dp_msg *m)
{
	struct dp_conn *k = m->conn;
	struct dp_slot *s = slot_at(k, m->slot);

	k->waiting--;
	k->held += m->reply.len;
	s->state = SLOT_READY;
	s->close = m->close;
	s->msg = m;
	dp_conn_drain(c, k);
	if (k->closed) {
		if (k->waiting == 0)
			dp_conn_close(c, k);
		return;
	}
	/* a datagram's stats that waited may run now */
	k->ops->progress(c, k);
}

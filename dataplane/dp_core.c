/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The socket backend: one loop per worker core.
 *
 *   while (!stop) {
 *           wait for events (not at all while work is queued);
 *           accept, read, parse, route, execute what this core owns;
 *           drain the rings from the other cores: execute their
 *           requests, file their replies;
 *           write what is ready; wake the cores we sent to;
 *           once a second: clock, expiry sweep, idle connections;
 *   }
 *
 * Share nothing: a core touches only its own shard, connections and
 * message pool. A request for a key another core owns is copied, with
 * its parsed form, into a message that travels over the SP/SC ring from
 * this core to the owner (queued during a pass of the loop and moved onto
 * the ring in bursts at its end); the owner writes the reply into the same
 * message and sends it back on the ring in the other direction, so every
 * message returns to the pool it came from. Replies on a connection are
 * kept in request order by a queue of slots: a reply that is ready while
 * an earlier one is still out waits in its slot.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_ring.h>

#include "cache.h"
#include "common.h"
#include "dataplane.h"

#define BURST	     32		 /* events, datagrams, ring messages */
#define RING_SIZE    4096	 /* messages per direction between cores */
#define SLOT_MAX     1024	 /* requests in flight on one connection */
#define WAIT_MAX     64		 /* of those, at other cores */
#define RBUF_MIN     (16 * 1024) /* first receive buffer of a connection */
#define OUT_HIGH     (4u << 20)	 /* unsent bytes that pause reading */
#define MSG_PREALLOC 256	 /* messages per core made at setup */
#define UDP_DGRAM    65536
#define WAIT_MS	     100  /* longest sleep: the stop flag's delay */
#define SWEEP_BUDGET 1024 /* index buckets inspected per second */
#define DRAIN_MS     200  /* flushing replies at stop */
#define AHEAD_MAX    32	  /* requests parsed before they run, to prefetch */
#define UDP_POOL_MAX 64	  /* datagram connections a core keeps for reuse */
#define UDP_OUT_KEEP (64 * 1024) /* a pooled one's reply buffer, at most */

enum msg_kind { MSG_REQ, MSG_REPLY, MSG_FLUSH, MSG_FLUSH_DONE };

struct dp_conn;

/* A request on its way to the core that owns its key, and its reply on
 * the way back. */
struct dp_msg {
	uint8_t kind;
	uint8_t src;	/* core that sent the request, and owns the msg */
	bool strip_end; /* one key of a split get: drop its END line */
	bool close;	/* the reply closes the connection */
	uint32_t slot;	/* the request's slot on its connection */
	struct dp_conn *conn;
	struct proto_req req;
	struct proto_out bytes; /* the request's bytes */
	struct proto_out reply;
	struct dp_msg *next; /* free list */
};

enum { SLOT_WAIT, SLOT_READY };

/* What a request is of its line: all of it, a key of a split retrieval
 * (its reply cut from its END), or the END that closes one. */
enum part { PART_NONE, PART_FIRST, PART_NEXT, PART_END };

struct dp_slot {
	uint8_t state;
	uint8_t part; /* enum part */
	bool flush;   /* UDP: memcached sends what it holds after this */
	bool close;
	struct dp_msg *msg; /* holds the reply */
};

struct dp_conn {
	int fd;
	bool udp;
	bool want_close;  /* quit or error: answer what came before, then close
			   */
	bool eof;	  /* the client sent all it will: answer it, close */
	bool closed;	  /* fd gone; freed when no reply is out */
	bool pollout;	  /* the socket is full: EPOLLOUT wanted */
	bool pollout_set; /* EPOLLOUT is what epoll has */
	bool paused;	  /* EPOLLIN dropped: it may not take more now */
	bool walked;	  /* UDP: a response went out since the last flush */
	struct proto_parser ps;
	char *rbuf;
	size_t rlen, rcap;
	struct proto_out out;
	size_t out_sent;
	struct dp_slot *slots;
	uint32_t scap;	       /* slots[] size, a power of two */
	uint32_t shead, stail; /* slots in [shead, stail), by sequence */
	uint32_t waiting;      /* slots waiting for another core */
	size_t held;	       /* reply bytes in ready slots */
	uint64_t last_rx;      /* when input last made progress, seconds */
	/* A split retrieval (see split_run()) is taken a key at a time while
	 * the connection has room: its request stays at the head of rbuf
	 * and split_pos is where its key walk stands. */
	bool splitting;
	bool runnable; /* input is left that only room stopped */
	uint32_t split_pos;
	struct proto_req split;
	/* requests parsed but not yet run (kept back by room, or a datagram
	 * parsed with its burst), in order, the first at the head of rbuf;
	 * made when first needed */
	struct proto_req *left;
	uint32_t nleft;
	struct dp_conn *prev, *next;
	/* UDP: where the reply goes */
	struct sockaddr_storage peer;
	socklen_t peerlen;
	uint16_t req_id;
	int ufd;
};

struct dp_core {
	unsigned id;
	int ep;
	int evfd;
	atomic_int sleeping;

	struct proto_node *node;
	int lfd[DP_ADDR_MAX];
	int ufd[DP_ADDR_MAX];
	unsigned nl, nu;
	struct rte_ring *to[DP_CORE_MAX];   /* this core -> core i */
	struct rte_ring *from[DP_CORE_MAX]; /* core i -> this core */
	/* messages for core i not yet on its ring, oldest first */
	struct dp_msg *outq[DP_CORE_MAX];
	struct dp_msg *outq_tail[DP_CORE_MAX];
	bool kick[DP_CORE_MAX];
	struct dp_msg *pool;
	struct dp_conn conns; /* list head */
	struct proto_conn_stats cs;
	uint64_t last_tick;
	uint64_t udp_dropped;
	char *dgram;
	bool quiet;			   /* stopping: no new input */
	struct proto_req ahead[AHEAD_MAX]; /* parsed, not yet run */
	struct dp_conn *udp_pool;	   /* released datagram connections */
	unsigned udp_pooled;
} ML_CACHE_ALIGNED;

static const struct dp_config *cfg;
static struct dp_core *cores;
static unsigned ncores;
static atomic_int stop_flag;
static atomic_uint conns_open;
static atomic_uint cores_quiet;

unsigned dp_eal_memory_mb(unsigned n)
{
	/* a ring per ordered pair of cores, plus room for the EAL itself */
	size_t ring = RING_SIZE * sizeof(void *) + 4096;
	size_t bytes = (size_t)n * (n - 1) * ring + (2u << 20);

	return (unsigned)((bytes + (1u << 20) - 1) >> 20) + 2;
}

void dp_stop(void)
{
	atomic_store(&stop_flag, 1);
}

static uint64_t now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec;
}

static uint32_t wall_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return (uint32_t)ts.tv_sec;
}

/* ------------------------------------------------------------------------
 * Messages
 * ---------------------------------------------------------------------- */

static struct dp_msg *msg_get(struct dp_core *c)
{
	struct dp_msg *m = c->pool;

	if (m) {
		c->pool = m->next;
	} else {
		m = calloc(1, sizeof(*m));
		if (!m)
			return NULL;
	}
	m->src = (uint8_t)c->id;
	m->bytes.len = 0;
	m->reply.len = 0;
	m->strip_end = false;
	m->close = false;
	return m;
}

/* Returns a message to the pool of the core running this (its owner). */
static void msg_put(struct dp_core *c, struct dp_msg *m)
{
	m->next = c->pool;
	c->pool = m;
}

static void msg_free(struct dp_msg *m)
{
	proto_out_free(&m->bytes);
	proto_out_free(&m->reply);
	free(m);
}

/* Queues a message for core dst. Queued messages go onto the ring in
 * bursts, at the end of the loop's pass (outq_flush()). */
static void msg_send(struct dp_core *c, unsigned dst, struct dp_msg *m)
{
	m->next = NULL;
	if (c->outq[dst])
		c->outq_tail[dst]->next = m;
	else
		c->outq[dst] = m;
	c->outq_tail[dst] = m;
}

/*
 * Moves queued messages onto the rings, BURST at a time, in order.
 * Returns whether any stayed queued (a ring was full). A message on a
 * ring belongs to the other core at once, which may already be reusing
 * its next field: the queue's rest is taken before the enqueue.
 */
static bool outq_flush(struct dp_core *c)
{
	bool left = false;

	for (unsigned d = 0; d < ncores; d++) {
		while (c->outq[d]) {
			void *burst[BURST];
			struct dp_msg *m = c->outq[d];
			unsigned n = 0, sent;

			for (; m && n < BURST; m = m->next)
				burst[n++] = m;
			sent = rte_ring_sp_enqueue_burst(c->to[d], burst, n,
							 NULL);
			if (sent)
				c->kick[d] = true;
			c->outq[d] = sent == n ? m : burst[sent];
			if (sent < n)
				break;
		}
		left |= c->outq[d] != NULL;
	}
	return left;
}

/* Wakes the cores this one sent to, if they sleep. */
static void kick_all(struct dp_core *c)
{
	for (unsigned d = 0; d < ncores; d++) {
		struct dp_core *o = &cores[d];
		uint64_t one = 1;

		if (!c->kick[d])
			continue;
		c->kick[d] = false;
		atomic_thread_fence(memory_order_seq_cst);
		if (atomic_load(&o->sleeping) &&
		    write(o->evfd, &one, sizeof(one)) < 0)
			(void)0; /* the counter is full: it will wake */
	}
}

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

static void conn_free(struct dp_conn *k)
{
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
			msg_put(c, s->msg);
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
	conn_free(k);
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
static void conn_close(struct dp_core *c, struct dp_conn *k)
{
	if (!k->closed) {
		k->closed = true;
		if (!k->udp) {
			close(k->fd);
			atomic_fetch_sub(&conns_open, 1);
			c->cs.curr_connections--;
		}
	}
	if (k->waiting == 0)
		conn_release(c, k);
}

static struct dp_conn *conn_new(struct dp_core *c, int fd, bool udp)
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
		if (!k->slots || (!udp && !k->rbuf)) {
			conn_free(k);
			return NULL;
		}
	}
	k->fd = fd;
	k->udp = udp;
	k->ps.item_size_max = (uint32_t)cfg->item_size_max;
	k->last_rx = now_sec();
	conn_link(c, k);
	return k;
}

static void udp_send(struct dp_core *c, struct dp_conn *k);

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
		udp_send(c, k);
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
	if (part == PART_END || (part == PART_NONE && k->out.len))
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

/* Sends what is ready. Returns false when the connection was closed. */
static bool conn_send(struct dp_core *c, struct dp_conn *k)
{
	if (k->udp) {
		if (k->out.len)
			udp_send(c, k);
		return true;
	}
	while (k->out_sent < k->out.len) {
		ssize_t n = send(k->fd, k->out.buf + k->out_sent,
				 k->out.len - k->out_sent, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				k->pollout = true;
				return true;
			}
			conn_close(c, k);
			return false;
		}
		k->out_sent += (size_t)n;
		c->cs.bytes_written += (uint64_t)n;
	}
	k->out.len = 0;
	k->out_sent = 0;
	k->pollout = false;
	return true;
}

/* Appends ready slots, in order, to the connection's output. */
static void conn_drain(struct dp_core *c, struct dp_conn *k)
{
	while (k->shead != k->stail) {
		struct dp_slot *s = slot_at(k, k->shead);

		if (s->state != SLOT_READY)
			break;
		k->held -= s->msg->reply.len;
		if (!k->closed && !k->want_close) {
			size_t len = s->msg->reply.len;

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
		msg_put(c, s->msg);
		s->msg = NULL;
		k->shead++;
	}
}

/* Reply bytes a connection holds that the client has not taken. */
static inline size_t conn_pending(const struct dp_conn *k)
{
	return k->out.len - k->out_sent + k->held;
}

/*
 * Whether the connection may take another request: it has not asked to
 * close, and what it has in flight is bounded in requests, in requests at
 * other cores and in unsent reply bytes. A client that does not read its
 * replies is therefore not read either, and costs at most about OUT_HIGH
 * plus WAIT_MAX replies.
 */
static inline bool conn_can_take(const struct dp_conn *k)
{
	return !k->want_close && k->stail - k->shead < SLOT_MAX &&
	       k->waiting < WAIT_MAX && conn_pending(k) <= OUT_HIGH;
}

/* Drops a trailing "END\r\n" (one key of a split retrieval). */
static void strip_end(struct proto_out *o, size_t from)
{
	if (o->len >= from + 5 &&
	    memcmp(o->buf + o->len - 5, "END\r\n", 5) == 0)
		o->len -= 5;
}

/* Executes a request this core owns, answering in order. */
static void exec_local(struct dp_core *c, struct dp_conn *k, const char *buf,
		       const struct proto_req *req, enum part part)
{
	struct dp_msg *m;
	struct dp_slot *s;
	size_t from = k->out.len;
	int rc;

	if (k->shead == k->stail) {
		/* nothing ahead: straight to the output */
		udp_before(c, k, part);
		from = k->out.len;
		rc = proto_execute(c->node, buf, req, &k->out);
		if (part_of_key(part))
			strip_end(&k->out, from);
		if (rc == -EPIPE || rc == -ENOMEM)
			k->want_close = true;
		else
			udp_after(c, k, part, udp_flushes(req, part));
		return;
	}
	m = msg_get(c);
	s = m ? slot_push(k) : NULL;
	if (!s) {
		if (m)
			msg_put(c, m);
		k->want_close = true;
		return;
	}
	rc = proto_execute(c->node, buf, req, &m->reply);
	if (part_of_key(part))
		strip_end(&m->reply, 0);
	k->held += m->reply.len;
	s->state = SLOT_READY;
	s->close = rc == -EPIPE || rc == -ENOMEM;
	s->part = (uint8_t)part;
	s->flush = udp_flushes(req, part);
	s->msg = m;
	conn_drain(c, k);
}

/* Sends a request to the core that owns its key. */
static void exec_remote(struct dp_core *c, struct dp_conn *k, unsigned owner,
			const char *buf, const struct proto_req *req,
			enum part part)
{
	struct dp_msg *m = msg_get(c);
	struct dp_slot *s = NULL;

	if (!m || proto_out_reserve(&m->bytes, req->len) ||
	    !(s = slot_push(k))) {
		if (m)
			msg_put(c, m);
		k->want_close = true;
		return;
	}
	memcpy(m->bytes.buf, buf, req->len);
	m->bytes.len = req->len;
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
	msg_send(c, owner, m);
}

static void exec_routed(struct dp_core *c, struct dp_conn *k, const char *buf,
			const struct proto_req *req, enum part part)
{
	unsigned owner = ml_hash_core(req->hv, ncores);

	if (owner == c->id)
		exec_local(c, k, buf, req, part);
	else
		exec_remote(c, k, owner, buf, req, part);
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
	static const struct proto_req end_req = {
		.cmd = PROTO_ERR, .err = "END\r\n", .len = 0};
	const struct proto_req *req = &k->split;
	struct proto_parser ps = {.item_size_max = k->ps.item_size_max};
	char line[PROTO_KEY_MAX + 64];
	uint32_t off, klen;
	struct proto_req one;

	while (!k->want_close && (k->udp || conn_can_take(k))) {
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
		exec_routed(c, k, line, &one, part);
		k->last_rx = now_sec();
	}
	return false;
}

/* Whether a retrieval has more than one key. */
static bool keys_many(const char *buf, const struct proto_req *req)
{
	uint32_t pos = req->key_off, off, klen;

	return proto_next_key(buf, req, &pos, &off, &klen) &&
	       proto_next_key(buf, req, &pos, &off, &klen);
}

/* Whether a retrieval's keys all belong to one core. */
static bool keys_one_core(const char *buf, const struct proto_req *req)
{
	uint32_t pos = req->key_off, off, klen;
	unsigned first = ml_hash_core(req->hv, ncores);

	while (proto_next_key(buf, req, &pos, &off, &klen))
		if (ml_hash_core(ml_hash(buf + off, klen), ncores) != first)
			return false;
	return true;
}

static void flush_broadcast(struct dp_core *c, const char *buf,
			    const struct proto_req *req)
{
	for (unsigned d = 0; d < ncores; d++) {
		struct dp_msg *m;

		if (d == c->id)
			continue;
		m = msg_get(c);
		if (!m || proto_out_reserve(&m->bytes, req->len)) {
			if (m)
				msg_put(c, m);
			continue;
		}
		memcpy(m->bytes.buf, buf, req->len);
		m->bytes.len = req->len;
		m->req = *req;
		m->req.noreply = true;
		m->kind = MSG_FLUSH;
		m->conn = NULL;
		msg_send(c, d, m);
	}
}

static bool handle_request(struct dp_core *c, struct dp_conn *k,
			   const char *buf, const struct proto_req *req)
{
	switch (req->cmd) {
	case PROTO_GET:
	case PROTO_GETS:
	case PROTO_GAT:
	case PROTO_GATS:
		if (k->udp ? keys_many(buf, req)
			   : ncores > 1 && req->keys_end > req->key_off &&
				     !keys_one_core(buf, req)) {
			k->split = *req;
			k->split_pos = req->key_off;
			k->splitting = true;
			return split_run(c, k, buf);
		}
		if (req->keys_end == req->key_off) {
			exec_local(c, k, buf, req, PART_NONE);
			return true;
		}
		exec_routed(c, k, buf, req, PART_NONE);
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
		exec_routed(c, k, buf, req, PART_NONE);
		return true;
	case PROTO_ERR:
		/* a set or ms too large for the cache drops the key's old
		 * value, in the shard that owns it */
		if (req->klen) {
			exec_routed(c, k, buf, req, PART_NONE);
			return true;
		}
		exec_local(c, k, buf, req, PART_NONE);
		return true;
	case PROTO_FLUSH_ALL:
		if (ncores > 1)
			flush_broadcast(c, buf, req);
		exec_local(c, k, buf, req, PART_NONE);
		return true;
	default:
		/* errors, stats, version, verbosity, mn, quit: this core */
		exec_local(c, k, buf, req, PART_NONE);
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
		size_t got =
			proto_parse(&k->ps, k->rbuf + off, k->rlen - off, r);

		if (got == 0)
			break;
		off += got;
		n++;
		if (r->klen && *nh < max &&
		    ml_hash_core(r->hv, ncores) == c->id)
			hv[(*nh)++] = r->hv;
		if (r->close || r->cmd == PROTO_QUIT)
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
static void conn_parse(struct dp_core *c, struct dp_conn *k)
{
	struct proto_req *q = k->left;
	unsigned qh = 0, qn = k->nleft;
	size_t off = 0;

	k->runnable = false;
	while (off < k->rlen) {
		struct proto_req *req;

		if (k->udp ? k->want_close : !conn_can_take(k)) {
			k->runnable = !k->want_close;
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
		qh++;
		k->last_rx = now_sec();
		if (req->cmd != PROTO_NONE &&
		    !handle_request(c, k, k->rbuf + off, req))
			continue;
		off += req->len;
	}
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

/* The most a connection buffers: a command line and the largest item. */
static inline size_t rbuf_max(void)
{
	return cfg->item_size_max + PROTO_GET_LINE_MAX;
}

/* Asks epoll for input only while the connection can take it, and for
 * output while the socket is full. */
static void conn_interest(struct dp_core *c, struct dp_conn *k)
{
	bool in = !k->eof && conn_can_take(k) && k->rlen < rbuf_max();
	struct epoll_event ev = {.data.ptr = k};

	if (in == !k->paused && k->pollout == k->pollout_set)
		return;
	k->paused = !in;
	k->pollout_set = k->pollout;
	ev.events = (in ? EPOLLIN : 0) | (k->pollout ? EPOLLOUT : 0);
	epoll_ctl(c->ep, EPOLL_CTL_MOD, k->fd, &ev);
}

/*
 * Moves a TCP connection on: runs what it may of its input, sends what
 * is ready, closes it once it is done (after quit, an error, or the end
 * of its input, every earlier request answered), and asks epoll for what
 * it needs next. Returns false when the connection was closed.
 */
static bool conn_progress(struct dp_core *c, struct dp_conn *k)
{
	for (int round = 0; round < 4; round++) {
		conn_parse(c, k);
		if (!conn_send(c, k))
			return false;
		if (!k->runnable || !conn_can_take(k))
			break;
	}
	if ((k->want_close || k->eof) && !k->runnable && k->shead == k->stail &&
	    k->out_sent == k->out.len) {
		conn_close(c, k);
		return false;
	}
	/* input it could run now comes back at once through EPOLLOUT */
	if (k->runnable && conn_can_take(k))
		k->pollout = true;
	conn_interest(c, k);
	return true;
}

static void conn_read(struct dp_core *c, struct dp_conn *k)
{
	ssize_t n;

	if (k->rlen == k->rcap && k->rcap < rbuf_max()) {
		size_t cap = ML_MIN(k->rcap * 2, rbuf_max());
		char *b = realloc(k->rbuf, cap);

		if (b) {
			k->rbuf = b;
			k->rcap = cap;
		}
	}
	if (k->rlen < k->rcap) {
		n = recv(k->fd, k->rbuf + k->rlen, k->rcap - k->rlen, 0);
		if (n > 0) {
			c->cs.bytes_read += (uint64_t)n;
			k->rlen += (size_t)n;
		} else if (n == 0) {
			k->eof = true;
		} else if (errno != EAGAIN && errno != EINTR) {
			conn_close(c, k); /* reset: nobody to answer */
			return;
		}
	}
	conn_progress(c, k);
}

static void do_accept(struct dp_core *c, int lfd)
{
	for (int i = 0; i < BURST; i++) {
		struct epoll_event ev;
		struct dp_conn *k;
		int one = 1;
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		c->cs.total_connections++;
		if (atomic_fetch_add(&conns_open, 1) >= cfg->conn_max) {
			static const char msg[] =
				"ERROR Too many open connections\r\n";

			atomic_fetch_sub(&conns_open, 1);
			c->cs.rejected_connections++;
			if (send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL) < 0)
				(void)0;
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		k = conn_new(c, fd, false);
		if (!k) {
			atomic_fetch_sub(&conns_open, 1);
			close(fd);
			continue;
		}
		c->cs.curr_connections++;
		ev.events = EPOLLIN;
		ev.data.ptr = k;
		if (epoll_ctl(c->ep, EPOLL_CTL_ADD, fd, &ev)) {
			conn_close(c, k);
			continue;
		}
	}
}

/* ------------------------------------------------------------------------
 * UDP
 * ---------------------------------------------------------------------- */

/* Sends the output as one message; an empty one is a bare header whose
 * count is 0. */
static void udp_send(struct dp_core *c, struct dp_conn *k)
{
	unsigned count = proto_udp_count(k->out.len);
	char d[PROTO_UDP_MTU];

	if (count == 0) {
		struct proto_udp_hdr h = {.req_id = k->req_id};

		proto_udp_write(d, &h);
		if (sendto(k->ufd, d, PROTO_UDP_HDR, 0,
			   (struct sockaddr *)&k->peer, k->peerlen) > 0)
			c->cs.bytes_written += PROTO_UDP_HDR;
	}
	for (unsigned seq = 0; seq < count; seq++) {
		size_t n = proto_udp_frame(d, k->req_id, k->out.buf, k->out.len,
					   seq);

		if (n == 0)
			break;
		if (sendto(k->ufd, d, n, 0, (struct sockaddr *)&k->peer,
			   k->peerlen) > 0)
			c->cs.bytes_written += n;
	}
	k->out.len = 0;
}

/* Takes one datagram: a connection that owns a copy of its payload, or
 * NULL when the datagram is dropped. */
static struct dp_conn *udp_take(struct dp_core *c, int ufd, const char *d,
				size_t n, const struct sockaddr_storage *peer,
				socklen_t plen)
{
	struct proto_udp_hdr h;
	struct dp_conn *k;

	if (proto_udp_parse(d, n, &h)) {
		c->udp_dropped++;
		return NULL;
	}
	k = conn_new(c, -1, true);
	if (!k)
		return NULL;
	k->ufd = ufd;
	k->peer = *peer;
	k->peerlen = plen;
	k->req_id = h.req_id;
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
	return k;
}

/* One datagram: one request or a few, each answered with a message of
 * its own (one or more datagrams), in order, as memcached does. Runs
 * again on each reply from another core, for a stats held back until
 * they are in; the datagram is done once nothing is out or held back. */
static void udp_run(struct dp_core *c, struct dp_conn *k)
{
	if (!k->want_close)
		conn_parse(c, k);
	if (k->shead == k->stail && (!k->nleft || k->want_close)) {
		conn_send(c, k);
		conn_close(c, k);
	}
}

/* A burst of datagrams: each is parsed into its connection's requests
 * held back, the keys this core owns are prefetched together, then the
 * datagrams run in order. */
static void do_udp(struct dp_core *c, int ufd)
{
	struct mmsghdr mm[BURST];
	struct iovec iov[BURST];
	struct sockaddr_storage peers[BURST];
	struct dp_conn *k[BURST];
	uint64_t hv[CACHE_BULK_MAX];
	unsigned nh = 0;
	int n;

	for (int i = 0; i < BURST; i++) {
		iov[i].iov_base = c->dgram + (size_t)i * UDP_DGRAM;
		iov[i].iov_len = UDP_DGRAM;
		memset(&mm[i].msg_hdr, 0, sizeof(mm[i].msg_hdr));
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
		mm[i].msg_hdr.msg_name = &peers[i];
		mm[i].msg_hdr.msg_namelen = sizeof(peers[i]);
	}
	n = recvmmsg(ufd, mm, BURST, MSG_DONTWAIT, NULL);
	for (int i = 0; i < n; i++) {
		c->cs.bytes_read += mm[i].msg_len;
		k[i] = udp_take(c, ufd, iov[i].iov_base, mm[i].msg_len,
				&peers[i], mm[i].msg_hdr.msg_namelen);
		if (k[i] && n > 1 && conn_left(k[i]))
			k[i]->nleft = parse_ahead(c, k[i], 0, k[i]->left, hv,
						  &nh, ML_ARRAY_SIZE(hv));
	}
	if (nh > 1)
		proto_prefetch(c->node, nh, hv);
	for (int i = 0; i < n; i++)
		if (k[i])
			udp_run(c, k[i]);
}

/* ------------------------------------------------------------------------
 * Messages from other cores
 * ---------------------------------------------------------------------- */

static void on_request(struct dp_core *c, struct dp_msg *m)
{
	size_t from = 0;
	int rc;

	m->reply.len = 0;
	rc = proto_execute(c->node, m->bytes.buf, &m->req, &m->reply);
	if (m->strip_end)
		strip_end(&m->reply, from);
	m->close = rc == -EPIPE || rc == -ENOMEM;
	m->kind = MSG_REPLY;
	msg_send(c, m->src, m);
}

static void on_reply(struct dp_core *c, struct dp_msg *m)
{
	struct dp_conn *k = m->conn;
	struct dp_slot *s = slot_at(k, m->slot);

	k->waiting--;
	k->held += m->reply.len;
	s->state = SLOT_READY;
	s->close = m->close;
	s->msg = m;
	conn_drain(c, k);
	if (k->closed) {
		if (k->waiting == 0)
			conn_close(c, k);
		return;
	}
	if (k->udp) {
		udp_run(c, k); /* a stats that waited may run now */
		return;
	}
	conn_progress(c, k);
}

/* Prefetches for the requests among a burst of messages, as conn_parse()
 * does for a connection's. */
static void prefetch_requests(struct dp_core *c, struct dp_msg *const *m,
			      unsigned n)
{
	uint64_t hv[BURST];
	unsigned nh = 0;

	for (unsigned i = 0; i < n; i++)
		if (m[i]->kind == MSG_REQ && m[i]->req.klen)
			hv[nh++] = m[i]->req.hv;
	if (nh > 1)
		proto_prefetch(c->node, nh, hv);
}

static unsigned rings_drain(struct dp_core *c)
{
	struct dp_msg *burst[BURST];
	unsigned total = 0;

	for (unsigned src = 0; src < ncores; src++) {
		unsigned n;

		if (src == c->id)
			continue;
		n = rte_ring_sc_dequeue_burst(c->from[src], (void **)burst,
					      BURST, NULL);
		total += n;
		prefetch_requests(c, burst, n);
		for (unsigned i = 0; i < n; i++) {
			struct dp_msg *m = burst[i];

			switch (m->kind) {
			case MSG_REQ:
				on_request(c, m);
				break;
			case MSG_REPLY:
				on_reply(c, m);
				break;
			case MSG_FLUSH:
				m->reply.len = 0;
				proto_execute(c->node, m->bytes.buf, &m->req,
					      &m->reply);
				m->kind = MSG_FLUSH_DONE;
				msg_send(c, m->src, m);
				break;
			default: /* MSG_FLUSH_DONE */
				msg_put(c, m);
				break;
			}
		}
	}
	return total;
}

/* ------------------------------------------------------------------------
 * The loop
 * ---------------------------------------------------------------------- */

static void tick(struct dp_core *c)
{
	uint64_t now = now_sec();
	struct dp_conn *k, *next;

	if (now == c->last_tick)
		return;
	c->last_tick = now;
	proto_node_set_time(c->node, wall_sec());
	cache_sweep(proto_node_shard(c->node, 0), SWEEP_BUDGET);
	if (!cfg->idle_timeout)
		return;
	for (k = c->conns.next; k != &c->conns; k = next) {
		next = k->next;
		/* a partial request that makes no progress */
		if (!k->udp && !k->closed && k->rlen &&
		    now - k->last_rx >= cfg->idle_timeout)
			conn_close(c, k);
	}
}

static int worker(void *arg)
{
	int idx = rte_lcore_index(rte_lcore_id());
	struct epoll_event evs[BURST];
	bool quiet_counted = false;
	struct dp_core *c;

	(void)arg;
	if (idx < 0 || (unsigned)idx >= ncores)
		return 0; /* an lcore beyond -t (from --eal) */
	c = &cores[idx];
	while (true) {
		int timeout = 0, n;
		bool busy;

		if (atomic_load(&stop_flag) && !c->quiet) {
			/* stop taking input; answer what is in flight */
			c->quiet = true;
			for (unsigned i = 0; i < c->nl; i++)
				epoll_ctl(c->ep, EPOLL_CTL_DEL, c->lfd[i],
					  NULL);
			for (unsigned i = 0; i < c->nu; i++)
				epoll_ctl(c->ep, EPOLL_CTL_DEL, c->ufd[i],
					  NULL);
		}
		if (c->quiet) {
			bool waiting = false;

			for (struct dp_conn *k = c->conns.next; k != &c->conns;
			     k = k->next)
				waiting |= k->waiting != 0;
			if (!waiting && !quiet_counted) {
				quiet_counted = true;
				atomic_fetch_add(&cores_quiet, 1);
			}
			if (atomic_load(&cores_quiet) == ncores)
				break;
		}

		busy = outq_flush(c);
		for (unsigned s = 0; s < ncores && !busy; s++)
			busy = s != c->id && !rte_ring_empty(c->from[s]);
		if (!busy) {
			atomic_store(&c->sleeping, 1);
			atomic_thread_fence(memory_order_seq_cst);
			busy = false;
			for (unsigned s = 0; s < ncores && !busy; s++)
				busy = s != c->id &&
				       !rte_ring_empty(c->from[s]);
			timeout = busy ? 0 : (c->quiet ? 1 : WAIT_MS);
		}
		n = epoll_wait(c->ep, evs, BURST, timeout);
		atomic_store(&c->sleeping, 0);
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;
			struct dp_conn *k;

			if (p == &c->evfd) {
				uint64_t v;

				if (read(c->evfd, &v, sizeof(v)) < 0)
					(void)0;
				continue;
			}
			if ((uintptr_t)p >= (uintptr_t)&c->lfd[0] &&
			    (uintptr_t)p < (uintptr_t)&c->lfd[DP_ADDR_MAX]) {
				do_accept(c, *(int *)p);
				continue;
			}
			if ((uintptr_t)p >= (uintptr_t)&c->ufd[0] &&
			    (uintptr_t)p < (uintptr_t)&c->ufd[DP_ADDR_MAX]) {
				do_udp(c, *(int *)p);
				continue;
			}
			k = p;
			if ((evs[i].events & EPOLLOUT) && !conn_progress(c, k))
				continue;
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR) &&
			    !c->quiet)
				conn_read(c, k);
		}
		rings_drain(c);
		outq_flush(c);
		kick_all(c);
		tick(c);
		proto_node_set_conn_stats(c->node, &c->cs);
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * Setup and teardown
 * ---------------------------------------------------------------------- */

/* Says, from errno, that addr:port cannot be listened on. */
static int listen_error(const char *addr, uint16_t port, int type, char *err,
			size_t errlen)
{
	snprintf(err, errlen, "cannot listen on %s port %u (%s): %s", addr,
		 port, type == SOCK_STREAM ? "tcp" : "udp", strerror(errno));
	return -EADDRINUSE;
}

static socklen_t addr_fill(const char *addr, uint16_t port,
			   struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (!strchr(addr, ':')) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		inet_pton(AF_INET, addr, &s4->sin_addr);
		return sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		inet_pton(AF_INET6, addr, &s6->sin6_addr);
		return sizeof(*s6);
	}
}

/*
 * Whether a port is free for this process: bound for a moment without
 * SO_REUSEPORT. The cores then share it through SO_REUSEPORT, which would
 * just as well let a second memlaned on the same port take half of the
 * connections and datagrams, silently; like memcached, a second one is
 * refused instead.
 */
static int port_free(const char *addr, uint16_t port, int type, char *err,
		     size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = addr_fill(addr, port, &ss);
	int fd = socket(ss.ss_family, type | SOCK_CLOEXEC, 0), one = 1, e;

	if (fd >= 0) {
		/* TCP: a port left in TIME_WAIT is free, as memcached has it */
		if (type == SOCK_STREAM)
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
				   sizeof(one));
		if (ss.ss_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
				   sizeof(one));
		e = bind(fd, (struct sockaddr *)&ss, sl) ? errno : 0;
		close(fd);
		if (!e)
			return 0;
		errno = e;
	}
	return listen_error(addr, port, type, err, errlen);
}

static int listen_socket(const char *addr, uint16_t port, int type, char *err,
			 size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = addr_fill(addr, port, &ss);
	int fd, one = 1, e;
	int family = ss.ss_family;

	fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)))
		goto fail_fd;
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl))
		goto fail_fd;
	if (type == SOCK_STREAM && listen(fd, 1024))
		goto fail_fd;
	return fd;

fail_fd:
	e = errno; /* close() must not change what is reported */
	close(fd);
	errno = e;
fail:
	listen_error(addr, port, type, err, errlen);
	return -1;
}

static void core_teardown(struct dp_core *c)
{
	uint64_t deadline = now_sec() * 1000 + DRAIN_MS;
	struct timespec ts;

	/* flush what is owed, briefly, then close everything */
	for (;;) {
		bool left = false;

		for (struct dp_conn *k = c->conns.next; k != &c->conns;
		     k = k->next)
			if (!k->closed && !k->udp && k->out.len > k->out_sent &&
			    conn_send(c, k))
				left |= k->out.len > k->out_sent;
		clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
		if (!left || (uint64_t)ts.tv_sec * 1000 +
					     (uint64_t)ts.tv_nsec / 1000000 >
				     deadline)
			break;
		usleep(1000);
	}
	while (c->conns.next != &c->conns) {
		struct dp_conn *k = c->conns.next;

		k->waiting = 0;
		conn_close(c, k);
	}
	for (unsigned i = 0; i < c->nl; i++)
		close(c->lfd[i]);
	for (unsigned i = 0; i < c->nu; i++)
		close(c->ufd[i]);
	for (unsigned d = 0; d < ncores; d++) {
		while (c->outq[d]) {
			struct dp_msg *m = c->outq[d];

			c->outq[d] = m->next;
			msg_free(m);
		}
	}
	while (c->pool) {
		struct dp_msg *m = c->pool;

		c->pool = m->next;
		msg_free(m);
	}
	while (c->udp_pool) {
		struct dp_conn *k = c->udp_pool;

		c->udp_pool = k->next;
		conn_free(k);
	}
	if (c->ep >= 0)
		close(c->ep);
	if (c->evfd >= 0)
		close(c->evfd);
	free(c->dgram);
}

static int core_setup(struct dp_core *c, unsigned id, char *err, size_t errlen)
{
	struct proto_node_params np = {
		.nshards = 1,
		.mem_limit = cfg->mem_limit / ncores,
		.item_size_max = cfg->item_size_max,
		.no_evict = cfg->no_evict,
		.now = wall_sec(),
		.pid = (uint32_t)getpid(),
		.conn_max = cfg->conn_max,
		.tcp_port = cfg->tcp_port,
		.udp_port = cfg->udp_port,
		.threads = ncores,
		.cas_id = id,
		.cas_id_bits = 0,
	};
	struct epoll_event ev;

	while ((1u << np.cas_id_bits) < ncores)
		np.cas_id_bits++;
	c->id = id;
	c->ep = -1;
	c->evfd = -1;
	c->conns.next = c->conns.prev = &c->conns;
	c->node = proto_node_create(&np);
	if (!c->node) {
		snprintf(err, errlen, "core %u: cannot create its shard: %s",
			 id, strerror(errno));
		return -ENOMEM;
	}
	c->ep = epoll_create1(EPOLL_CLOEXEC);
	c->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->ep < 0 || c->evfd < 0) {
		snprintf(err, errlen, "core %u: %s", id, strerror(errno));
		return -errno;
	}
	ev.events = EPOLLIN;
	ev.data.ptr = &c->evfd;
	epoll_ctl(c->ep, EPOLL_CTL_ADD, c->evfd, &ev);
	for (unsigned a = 0; a < cfg->naddrs; a++) {
		if (cfg->tcp_port) {
			int fd = listen_socket(cfg->addrs[a], cfg->tcp_port,
					       SOCK_STREAM, err, errlen);

			if (fd < 0)
				return -EADDRINUSE;
			c->lfd[c->nl] = fd;
			ev.data.ptr = &c->lfd[c->nl++];
			epoll_ctl(c->ep, EPOLL_CTL_ADD, fd, &ev);
		}
		if (cfg->udp_port) {
			int fd = listen_socket(cfg->addrs[a], cfg->udp_port,
					       SOCK_DGRAM, err, errlen);

			if (fd < 0)
				return -EADDRINUSE;
			c->ufd[c->nu] = fd;
			ev.data.ptr = &c->ufd[c->nu++];
			epoll_ctl(c->ep, EPOLL_CTL_ADD, fd, &ev);
		}
	}
	if (cfg->udp_port) {
		c->dgram = malloc((size_t)BURST * UDP_DGRAM);
		if (!c->dgram)
			return -ENOMEM;
	}
	for (int i = 0; i < MSG_PREALLOC; i++) {
		struct dp_msg *m = calloc(1, sizeof(*m));

		if (!m)
			return -ENOMEM;
		msg_put(c, m);
	}
	return 0;
}

static int rings_setup(char *err, size_t errlen)
{
	for (unsigned s = 0; s < ncores; s++) {
		for (unsigned d = 0; d < ncores; d++) {
			char name[32];
			struct rte_ring *r;

			if (s == d)
				continue;
			snprintf(name, sizeof(name), "dp%u_%u", s, d);
			r = rte_ring_create(name, RING_SIZE, SOCKET_ID_ANY,
					    RING_F_SP_ENQ | RING_F_SC_DEQ);
			if (!r) {
				snprintf(err, errlen,
					 "cannot create ring %s: %s", name,
					 rte_strerror(rte_errno));
				return -ENOMEM;
			}
			cores[s].to[d] = r;
			cores[d].from[s] = r;
		}
	}
	return 0;
}

int dp_run(const struct dp_config *config, char *err, size_t errlen)
{
	int rc = 0;

	cfg = config;
	ncores = config->ncores;
	if (rte_lcore_count() < ncores) {
		snprintf(err, errlen, "the EAL has %u lcores, %u are needed",
			 rte_lcore_count(), ncores);
		return -EINVAL;
	}
	cores = aligned_alloc(ML_CACHE_LINE, sizeof(*cores) * ncores);
	if (!cores) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	memset(cores, 0, sizeof(*cores) * ncores);
	for (unsigned i = 0; i < ncores; i++) {
		cores[i].ep = -1;
		cores[i].evfd = -1;
		cores[i].conns.next = cores[i].conns.prev = &cores[i].conns;
	}
	for (unsigned a = 0; a < cfg->naddrs && !rc; a++) {
		if (cfg->tcp_port)
			rc = port_free(cfg->addrs[a], cfg->tcp_port,
				       SOCK_STREAM, err, errlen);
		if (!rc && cfg->udp_port)
			rc = port_free(cfg->addrs[a], cfg->udp_port, SOCK_DGRAM,
				       err, errlen);
	}
	for (unsigned i = 0; i < ncores && !rc; i++)
		rc = core_setup(&cores[i], i, err, errlen);
	if (!rc)
		rc = rings_setup(err, errlen);
	if (!rc) {
		struct proto_node *peers[DP_CORE_MAX];

		for (unsigned i = 0; i < ncores; i++)
			peers[i] = cores[i].node;
		for (unsigned i = 0; i < ncores; i++)
			proto_node_set_peers(cores[i].node, peers, ncores);
		if (cfg->verbose)
			fprintf(stderr,
				"memlaned: %u cores, tcp %u, udp %u, %zu MB\n",
				ncores, cfg->tcp_port, cfg->udp_port,
				cfg->mem_limit >> 20);
		rte_eal_mp_remote_launch(worker, NULL, CALL_MAIN);
		rte_eal_mp_wait_lcore();
	}
	for (unsigned i = 0; i < ncores; i++)
		core_teardown(&cores[i]);
	for (unsigned s = 0; s < ncores; s++)
		for (unsigned d = 0; d < ncores; d++)
			if (cores[s].to[d]) {
				struct dp_msg *m;

				while (rte_ring_sc_dequeue(cores[s].to[d],
							   (void **)&m) == 0)
					msg_free(m);
				rte_ring_free(cores[s].to[d]);
			}
	for (unsigned i = 0; i < ncores; i++)
		proto_node_free(cores[i].node);
	free(cores);
	cores = NULL;
	return rc;
}

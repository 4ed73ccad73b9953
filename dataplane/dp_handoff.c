/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The hand-off between cores. A request for a key another core owns is
 * copied, with its parsed form, into a message that travels over the
 * SP/SC ring from this core to the owner (queued during a pass of the
 * loop and moved onto the ring in bursts at its end); the owner writes
 * the reply into the same message and sends it back on the ring in the
 * other direction, so every message returns to the pool it came from.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_errno.h>
#include <rte_ring.h>

#include "dp_internal.h"

/* ------------------------------------------------------------------------
 * Messages
 * ---------------------------------------------------------------------- */

struct dp_msg *dp_msg_get(struct dp_core *c)
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
void dp_msg_put(struct dp_core *c, struct dp_msg *m)
{
	m->next = c->pool;
	c->pool = m;
}

void dp_msg_free(struct dp_msg *m)
{
	proto_out_free(&m->bytes);
	proto_out_free(&m->reply);
	free(m);
}

/* Queues a message for core dst. Queued messages go onto the ring in
 * bursts, at the end of the loop's pass (dp_outq_flush()). */
void dp_msg_send(struct dp_core *c, unsigned dst, struct dp_msg *m)
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
bool dp_outq_flush(struct dp_core *c)
{
	bool left = false;

	for (unsigned d = 0; d < dp_ncores; d++) {
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
void dp_kick_all(struct dp_core *c)
{
	for (unsigned d = 0; d < dp_ncores; d++) {
		struct dp_core *o = &dp_cores[d];
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

void dp_flush_broadcast(struct dp_core *c, const char *buf,
			const struct proto_req *req)
{
	for (unsigned d = 0; d < dp_ncores; d++) {
		struct dp_msg *m;

		if (d == c->id)
			continue;
		m = dp_msg_get(c);
		if (!m || proto_out_reserve(&m->bytes, req->len)) {
			if (m)
				dp_msg_put(c, m);
			continue;
		}
		memcpy(m->bytes.buf, buf, req->len);
		m->bytes.len = req->len;
		m->req = *req;
		m->req.noreply = true;
		m->req.copy = true;
		m->kind = MSG_FLUSH;
		m->conn = NULL;
		dp_msg_send(c, d, m);
	}
}

/* ------------------------------------------------------------------------
 * Messages from other cores
 * ---------------------------------------------------------------------- */

static void on_request(struct dp_core *c, struct dp_msg *m)
{
	size_t from = 0;
	unsigned member;
	int rc;

	if (unlikely(c->warm) &&
	    dp_warm_wants(c, m->bytes.buf, &m->req, &member)) {
		dp_warm_fetch(c, m, member); /* it replies when done */
		return;
	}
	m->reply.len = 0;
	rc = proto_execute(c->node, m->bytes.buf, &m->req, &m->reply);
	if (m->strip_end)
		dp_strip_end(&m->reply, from);
	m->close = rc == -EPIPE || rc == -ENOMEM;
	m->kind = MSG_REPLY;
	dp_msg_send(c, m->src, m);
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

unsigned dp_rings_drain(struct dp_core *c)
{
	struct dp_msg *burst[BURST];
	unsigned total = 0;

	for (unsigned src = 0; src < dp_ncores; src++) {
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
				dp_conn_reply(c, m);
				break;
			case MSG_FLUSH:
				m->reply.len = 0;
				proto_execute(c->node, m->bytes.buf, &m->req,
					      &m->reply);
				m->kind = MSG_FLUSH_DONE;
				dp_msg_send(c, m->src, m);
				break;
			case MSG_DUMP:
				dp_dump_batch(c, m);
				break;
			case MSG_DUMP_DONE:
				dp_dump_reply(c, m);
				break;
			default: /* MSG_FLUSH_DONE */
				dp_msg_put(c, m);
				break;
			}
		}
	}
	return total;
}

int dp_rings_setup(char *err, size_t errlen)
{
	for (unsigned s = 0; s < dp_ncores; s++) {
		for (unsigned d = 0; d < dp_ncores; d++) {
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
			dp_cores[s].to[d] = r;
			dp_cores[d].from[s] = r;
		}
	}
	return 0;
}

bool dp_rings_pending(const struct dp_core *c)
{
	for (unsigned s = 0; s < dp_ncores; s++)
		if (s != c->id && !rte_ring_empty(c->from[s]))
			return true;
	return false;
}

void dp_msgs_teardown(struct dp_core *c)
{
	for (unsigned d = 0; d < dp_ncores; d++) {
		while (c->outq[d]) {
			struct dp_msg *m = c->outq[d];

			c->outq[d] = m->next;
			dp_msg_free(m);
		}
	}
	while (c->pool) {
		struct dp_msg *m = c->pool;

		c->pool = m->next;
		dp_msg_free(m);
	}
}

void dp_rings_free(void)
{
	for (unsigned s = 0; s < dp_ncores; s++)
		for (unsigned d = 0; d < dp_ncores; d++)
			if (dp_cores[s].to[d]) {
				struct dp_msg *m;

				while (rte_ring_sc_dequeue(dp_cores[s].to[d],
							   (void **)&m) == 0)
					dp_msg_free(m);
				rte_ring_free(dp_cores[s].to[d]);
				dp_cores[s].to[d] = NULL;
			}
}

/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Forwarding: a request for a key another node owns goes to that node
 * once, on the one connection this core keeps to it, opened when first
 * needed and pipelined: every request of every client of this core for
 * that node shares it, and the replies come back in the order the
 * requests went.
 *
 * On the wire a forwarded request is the request as the client sent it
 * (a base64 key written back in base64), followed by "mn\r\n": the peer
 * answers it as memcached would and then "MN\r\n", so each reply ends at
 * an MN line even when the request has none (noreply, a quiet meta
 * miss). The connection first sends DP_FWD_HELLO, and the peer runs what
 * comes after it, never forwarding it again.
 *
 * A peer that refuses, closes, sends what is not a reply, or leaves the
 * oldest request unanswered past --forward-timeout fails every request
 * queued for it with SERVER_ERROR, and for FWD_DOWN_MS after that new
 * requests for it fail at once rather than wait; then a request tries to
 * connect again.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dp_internal.h"

#define FWD_QUEUE_MAX 8192 /* requests in flight to one peer */
#define FWD_DOWN_MS   1000 /* a failed peer's requests fail at once */
#define FWD_LINE_MAX  2048 /* a reply line longer is not a reply */
#define FWD_IN_MIN    (16 * 1024)

enum fwd_state { FWD_IDLE, FWD_CONNECTING, FWD_UP };

/* A connection per member: every index gossip may give, or the fixed
 * members. */
static unsigned fwd_slots(void)
{
	return dp_cfg->gossip ? DP_NODE_MAX : dp_cfg->nmembers;
}

struct dp_fwd {
	int fd;
	uint8_t state;	  /* enum fwd_state */
	bool pollout_set; /* EPOLLOUT is what epoll has */
	unsigned member;
	struct proto_out out; /* to send: the hello, then requests */
	size_t out_sent;
	char *in; /* replies received, not yet filed */
	size_t inlen, incap;
	struct dp_msg *head, *tail; /* in flight, oldest first */
	unsigned nq;
	uint64_t down_until; /* ms */
};

static const char err_down[] =
	"SERVER_ERROR the node that owns this key is unreachable\r\n";
static const char err_timeout[] =
	"SERVER_ERROR the node that owns this key did not answer\r\n";
static const char err_busy[] =
	"SERVER_ERROR too many requests queued for the owner node\r\n";

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A reply is whole: to the client's slot, or to the request a warm
 * fetch was for. */
static void fwd_deliver(struct dp_core *c, struct dp_msg *m)
{
	if (m->kind == MSG_FETCH)
		dp_warm_done(c, m);
	else
		dp_conn_reply(c, m);
}

/* Answers a request here, with an error; filed at the next flush. */
static void fail_one(struct dp_core *c, struct dp_msg *m, const char *why)
{
	size_t n = strlen(why);

	c->forward_errors++;
	m->reply.len = 0;
	/* a text noreply gets nothing back, as memcached answers nothing
	 * to it: an error the client does not read for would be taken as
	 * the reply of its next request (meta q still shows errors) */
	if (m->req.noreply && m->req.cmd < PROTO_MG && !m->req.binary)
		n = 0;
	if (m->req.binary) {
		/* a binary client gets a binary error, the text after
		 * "SERVER_ERROR " without its line end */
		if (proto_bin_error(&m->reply, &m->req, why + 13, n - 15))
			m->close = true;
	} else if (!n) {
		/* nothing to say */
	} else if (!proto_out_reserve(&m->reply, n)) {
		memcpy(m->reply.buf, why, n);
		m->reply.len = n;
	} else {
		m->close = true; /* no memory for the error: close instead */
	}
	m->strip_end = false;
	m->next = c->fwd_failed;
	c->fwd_failed = m;
}

/* The connection is lost: what was queued on it fails, and the peer is
 * taken as down for a while. */
static void fwd_fail(struct dp_core *c, struct dp_fwd *f, const char *why)
{
	if (f->fd >= 0)
		close(f->fd); /* which takes it out of epoll */
	if (dp_cfg->verbose && f->state != FWD_IDLE)
		fprintf(stderr, "memlaned: core %u: member %u: %.*s\n", c->id,
			f->member, (int)(strlen(why) - 2), why + 13);
	f->fd = -1;
	f->state = FWD_IDLE;
	f->pollout_set = false;
	f->out.len = f->out_sent = 0;
	f->inlen = 0;
	while (f->head) {
		struct dp_msg *m = f->head;

		f->head = m->next;
		fail_one(c, m, why);
	}
	f->tail = NULL;
	f->nq = 0;
	f->down_until = now_ms() + FWD_DOWN_MS;
}

static void fwd_interest(struct dp_core *c, struct dp_fwd *f, bool out)
{
	struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0),
				 .data.ptr = f};

	if (out == f->pollout_set)
		return;
	f->pollout_set = out;
	epoll_ctl(c->sock.ep, EPOLL_CTL_MOD, f->fd, &ev);
}

/* Opens the connection, its hello first in the output. */
static int fwd_connect(struct dp_core *c, struct dp_fwd *f)
{
	static const char hello[] = DP_FWD_HELLO;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = f};
	const struct sockaddr_storage *sa;
	socklen_t salen;
	int one = 1;

	sa = dp_peer_addr(f->member, &salen);
	f->fd = socket(sa->ss_family,
		       SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (f->fd < 0)
		return -errno;
	setsockopt(f->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(f->fd, (const struct sockaddr *)sa, salen) &&
	    errno != EINPROGRESS) {
		int rc = -errno;

		close(f->fd);
		f->fd = -1;
		return rc;
	}
	if (epoll_ctl(c->sock.ep, EPOLL_CTL_ADD, f->fd, &ev) ||
	    proto_out_reserve(&f->out, sizeof(hello) - 1)) {
		close(f->fd);
		f->fd = -1;
		return -ENOMEM;
	}
	memcpy(f->out.buf, hello, sizeof(hello) - 1);
	f->out.len = sizeof(hello) - 1;
	f->out_sent = 0;
	f->pollout_set = true;
	f->state = FWD_CONNECTING;
	return 0;
}

static bool meta_b64(const struct proto_req *req)
{
	switch (req->cmd) {
	case PROTO_MG:
	case PROTO_MS:
	case PROTO_MD:
	case PROTO_MA:
	case PROTO_ME:
		return (req->meta.flags & PROTO_MF('b')) != 0;
	default:
		return false;
	}
}

size_t dp_b64_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				     "abcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = digits[(v >> 18) & 63];
		out[o++] = digits[(v >> 12) & 63];
		out[o++] = i + 1 < n ? digits[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? digits[v & 63] : '=';
	}
	return o;
}

/*
 * Appends the request as the client sent it, and "mn\r\n". The parser
 * decoded a base64 key where it lay (the decoded bytes first, what is
 * left of the text after them), so such a key is encoded again.
 */
static int fwd_encode(struct proto_out *o, const char *buf,
		      const struct proto_req *req)
{
	size_t end, need = req->len + 4;

	if (!meta_b64(req)) {
		if (proto_out_reserve(o, need))
			return -ENOMEM;
		memcpy(o->buf + o->len, buf, req->len);
		o->len += req->len;
	} else {
		end = req->key_off + req->klen;
		while (end < req->len && buf[end] != ' ' && buf[end] != '\r' &&
		       buf[end] != '\n')
			end++;
		need += 4 * ((size_t)req->klen + 2) / 3;
		if (proto_out_reserve(o, need))
			return -ENOMEM;
		memcpy(o->buf + o->len, buf, req->key_off);
		o->len += req->key_off;
		o->len += dp_b64_encode((const uint8_t *)buf + req->key_off,
					req->klen, o->buf + o->len);
		memcpy(o->buf + o->len, buf + end, req->len - end);
		o->len += req->len - end;
	}
	memcpy(o->buf + o->len, "mn\r\n", 4);
	o->len += 4;
	return 0;
}

void dp_fwd_send(struct dp_core *c, unsigned member, struct dp_msg *m,
		 const char *buf)
{
	struct dp_fwd *f = &c->fwd[member];

	c->forwards++;
	if (f->nq >= FWD_QUEUE_MAX) {
		fail_one(c, m, err_busy);
		return;
	}
	if (f->state == FWD_IDLE) {
		if (f->down_until && now_ms() < f->down_until) {
			fail_one(c, m, err_down);
			return;
		}
		if (fwd_connect(c, f)) {
			fwd_fail(c, f, err_down);
			fail_one(c, m, err_down);
			return;
		}
	}
	if (fwd_encode(&f->out, buf, &m->req)) {
		fail_one(c, m, err_busy);
		return;
	}
	m->t_ms = now_ms();
	m->next = NULL;
	if (f->tail)
		f->tail->next = m;
	else
		f->head = m;
	f->tail = m;
	f->nq++;
}

/* Writes what the output holds, as far as the socket takes it. */
static void fwd_write(struct dp_core *c, struct dp_fwd *f)
{
	while (f->out_sent < f->out.len) {
		ssize_t n = send(f->fd, f->out.buf + f->out_sent,
				 f->out.len - f->out_sent, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				fwd_interest(c, f, true);
				return;
			}
			fwd_fail(c, f, err_down);
			return;
		}
		f->out_sent += (size_t)n;
	}
	f->out.len = f->out_sent = 0;
	fwd_interest(c, f, false);
}

/* The bytes of a token: its decimal value, or -1. */
static long long tok_num(const char *p, const char *end)
{
	long long v = 0;

	if (p >= end || *p < '0' || *p > '9')
		return -1;
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (*p - '0');
		if (v > (1ll << 40))
			return -1;
	}
	return p == end || *p == ' ' || *p == '\r' ? v : -1;
}

/* Where token i of a line starts, or NULL. */
static const char *tok_at(const char *p, const char *end, int i)
{
	while (i-- > 0) {
		while (p < end && *p != ' ')
			p++;
		while (p < end && *p == ' ')
			p++;
	}
	return p < end ? p : NULL;
}

/*
 * One unit of a reply at p: a line, with its data block when it is a
 * VALUE or VA line. Returns its bytes, 0 when more must arrive first, or
 * -1 when it is not a reply. *end says the unit is the MN that closes the
 * request's reply.
 */
static long reply_unit(const char *p, size_t n, bool *end)
{
	const char *nl = memchr(p, '\n', ML_MIN(n, (size_t)FWD_LINE_MAX));
	const char *le, *t;
	long long data = -1;
	size_t line;

	*end = false;
	if ((uint8_t)p[0] == PROTO_BIN_RES) {
		/* a binary response: its header says how long it is */
		size_t whole;

		if (n < PROTO_BIN_HDR)
			return 0;
		whole = PROTO_BIN_HDR + ((size_t)(uint8_t)p[8] << 24 |
					 (size_t)(uint8_t)p[9] << 16 |
					 (size_t)(uint8_t)p[10] << 8 |
					 (uint8_t)p[11]);
		if (whole > 2 * dp_rbuf_max())
			return -1;
		return n < whole ? 0 : (long)whole;
	}
	if (!nl)
		return n >= FWD_LINE_MAX ? -1 : 0;
	line = (size_t)(nl - p) + 1;
	if (line < 2 || nl[-1] != '\r')
		return -1;
	le = nl - 1;
	if (line == 4 && memcmp(p, "MN", 2) == 0) {
		*end = true;
		return 4;
	}
	if (line > 6 && memcmp(p, "VALUE ", 6) == 0) {
		t = tok_at(p, le, 3);
		data = t ? tok_num(t, le) : -1;
		if (data < 0)
			return -1;
	} else if (line > 3 && memcmp(p, "VA ", 3) == 0) {
		t = tok_at(p, le, 1);
		data = t ? tok_num(t, le) : -1;
		if (data < 0)
			return -1;
	}
	if (data < 0)
		return (long)line;
	if (n < line + (size_t)data + 2)
		return 0;
	if (memcmp(p + line + data, "\r\n", 2) != 0)
		return -1;
	return (long)(line + (size_t)data + 2);
}

/* Files the replies that arrived whole, in order. */
static void fwd_parse(struct dp_core *c, struct dp_fwd *f)
{
	size_t pos = 0;

	while (pos < f->inlen) {
		struct dp_msg *m = f->head;
		bool end;
		long got;

		if (!m) {
			fwd_fail(c, f, err_down); /* a reply nobody asked */
			return;
		}
		got = reply_unit(f->in + pos, f->inlen - pos, &end);
		if (got < 0) {
			fwd_fail(c, f, err_down);
			return;
		}
		if (got == 0)
			break;
		if (end) {
			f->head = m->next;
			if (!f->head)
				f->tail = NULL;
			f->nq--;
			if (m->strip_end)
				dp_strip_end(&m->reply, 0);
			m->close = false;
			pos += (size_t)got;
			/* the client's connection moves on, and may queue
			 * more here: f stays as it is */
			fwd_deliver(c, m);
			continue;
		}
		if (proto_out_reserve(&m->reply, (size_t)got)) {
			fwd_fail(c, f, err_busy);
			return;
		}
		memcpy(m->reply.buf + m->reply.len, f->in + pos, (size_t)got);
		m->reply.len += (size_t)got;
		pos += (size_t)got;
	}
	memmove(f->in, f->in + pos, f->inlen - pos);
	f->inlen -= pos;
}

static void fwd_read(struct dp_core *c, struct dp_fwd *f)
{
	for (int round = 0; round < 8; round++) {
		ssize_t n;

		if (f->incap - f->inlen < FWD_IN_MIN / 2) {
			size_t cap = f->incap ? f->incap * 2 : FWD_IN_MIN;
			char *b;

			if (cap > 2 * dp_rbuf_max() + FWD_IN_MIN) {
				fwd_fail(c, f, err_busy);
				return;
			}
			b = realloc(f->in, cap);
			if (!b) {
				fwd_fail(c, f, err_busy);
				return;
			}
			f->in = b;
			f->incap = cap;
		}
		n = recv(f->fd, f->in + f->inlen, f->incap - f->inlen, 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			fwd_parse(c, f);
			if (f->state != FWD_IDLE)
				fwd_fail(c, f, err_down);
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		f->inlen += (size_t)n;
		fwd_parse(c, f);
		if (f->state == FWD_IDLE)
			return;
	}
}

bool dp_fwd_event(struct dp_core *c, void *p, uint32_t events)
{
	struct dp_fwd *f = p;

	if (!c->fwd || f < c->fwd || f >= c->fwd + fwd_slots())
		return false;
	if (f->state == FWD_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return true;
		if (getsockopt(f->fd, SOL_SOCKET, SO_ERROR, &err, &len) ||
		    err) {
			fwd_fail(c, f, err_down);
			return true;
		}
		f->state = FWD_UP;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		fwd_read(c, f);
	if (f->state == FWD_UP && (events & EPOLLOUT))
		fwd_write(c, f);
	return true;
}

void dp_fwd_flush(struct dp_core *c)
{
	uint64_t now = 0;

	if (!c->fwd)
		return;
	for (unsigned i = 0; i < fwd_slots(); i++) {
		struct dp_fwd *f = &c->fwd[i];

		if (!f->head)
			continue;
		if (!now)
			now = now_ms();
		if (now - f->head->t_ms > dp_cfg->forward_timeout_ms)
			fwd_fail(c, f, err_timeout);
	}
	/* answering may bring more requests, for here or for a peer */
	while (c->fwd_failed) {
		struct dp_msg *m = c->fwd_failed;

		c->fwd_failed = m->next;
		fwd_deliver(c, m);
	}
	for (unsigned i = 0; i < fwd_slots(); i++) {
		struct dp_fwd *f = &c->fwd[i];

		if (f->state == FWD_UP && f->out_sent < f->out.len)
			fwd_write(c, f);
	}
}

int dp_fwd_setup(struct dp_core *c, char *err, size_t errlen)
{
	c->fwd = NULL;
	if (fwd_slots() < 2)
		return 0;
	c->fwd = calloc(fwd_slots(), sizeof(*c->fwd));
	if (!c->fwd) {
		snprintf(err, errlen, "core %u: out of memory", c->id);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < fwd_slots(); i++) {
		c->fwd[i].fd = -1;
		c->fwd[i].member = i;
	}
	return 0;
}

/* Lets go of the connections and of what is still queued on them; the
 * clients' connections are closed after this. */
void dp_fwd_teardown(struct dp_core *c)
{
	if (!c->fwd)
		return;
	for (unsigned i = 0; i < fwd_slots(); i++) {
		struct dp_fwd *f = &c->fwd[i];

		if (f->fd >= 0)
			close(f->fd);
		while (f->head) {
			struct dp_msg *m = f->head;

			f->head = m->next;
			if (m->kind == MSG_FETCH)
				dp_warm_drop(c, m);
			else
				dp_msg_put(c, m);
		}
		proto_out_free(&f->out);
		free(f->in);
	}
	while (c->fwd_failed) {
		struct dp_msg *m = c->fwd_failed;

		c->fwd_failed = m->next;
		if (m->kind == MSG_FETCH)
			dp_warm_drop(c, m);
		else
			dp_msg_put(c, m);
	}
	free(c->fwd);
	c->fwd = NULL;
}

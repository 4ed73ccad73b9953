/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The socket backend: TCP and UDP on kernel sockets, no privilege, no
 * NIC. Every core has one SO_REUSEPORT listener per address and port and
 * one epoll set, which also holds its wake-up eventfd; a TCP connection
 * lives on the core whose listener accepted it. With the DPDK backend the
 * same cores still serve TCP here, on the same shards.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "dp_internal.h"

static const struct dp_conn_ops tcp_ops;

/* Writes what the stream's output holds, as far as the socket takes it. */
static bool tcp_send(struct dp_core *c, struct dp_conn *k)
{
	while (k->out_sent < k->out.len) {
		ssize_t n =
			k->tls ? dp_tls_write(k, k->out.buf + k->out_sent,
					      k->out.len - k->out_sent)
			       : send(k->fd, k->out.buf + k->out_sent,
				      k->out.len - k->out_sent, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				k->pollout = true;
				return true;
			}
			dp_conn_close(c, k);
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

/* Asks epoll for input only while the connection can take it, and for
 * output while the socket is full. */
static void tcp_interest(struct dp_core *c, struct dp_conn *k)
{
	bool in = !k->eof && dp_conn_can_take(k) && k->rlen < dp_rbuf_max();
	struct epoll_event ev = {.data.ptr = k};

	if (in == !k->paused && k->pollout == k->pollout_set)
		return;
	k->paused = !in;
	k->pollout_set = k->pollout;
	ev.events = (in ? EPOLLIN : 0) | (k->pollout ? EPOLLOUT : 0);
	epoll_ctl(c->sock.ep, EPOLL_CTL_MOD, k->fd, &ev);
}

/*
 * Moves a TCP connection on: runs what it may of its input, sends what
 * is ready, closes it once it is done (after quit, an error, or the end
 * of its input, every earlier request answered), and asks epoll for what
 * it needs next. Returns false when the connection was closed.
 */
static bool tcp_progress(struct dp_core *c, struct dp_conn *k)
{
	for (int round = 0; round < 4; round++) {
		dp_conn_parse(c, k);
		if (!tcp_send(c, k))
			return false;
		if (!k->runnable || !dp_conn_can_take(k) || k->yielded)
			break;
	}
	if ((k->want_close || k->eof) && !k->runnable && k->shead == k->stail &&
	    k->out_sent == k->out.len) {
		dp_conn_close(c, k);
		return false;
	}
	/* input it could run now, or a dump's next batch, comes back at
	 * once through EPOLLOUT */
	if ((k->runnable && dp_conn_can_take(k)) ||
	    (k->dumping && !k->dump_inflight) ||
	    (dp_tls_pending(k) && dp_conn_can_take(k)))
		k->pollout = true;
	tcp_interest(c, k);
	return true;
}

static void tcp_read(struct dp_core *c, struct dp_conn *k)
{
	ssize_t n;

	if (k->rlen == k->rcap && k->rcap < dp_rbuf_max()) {
		size_t cap = ML_MIN(k->rcap * 2, dp_rbuf_max());
		char *b;

		if (!dp_rbuf_charge(cap - k->rcap)) {
			/* -o read_buf_mem_limit: memcached's answer, then
			 * the connection ends */
			static const char msg[] = "SERVER_ERROR out of memory "
						  "reading request\r\n";

			if (k->shead == k->stail &&
			    !proto_out_reserve(&k->out, sizeof(msg) - 1)) {
				memcpy(k->out.buf + k->out.len, msg,
				       sizeof(msg) - 1);
				k->out.len += sizeof(msg) - 1;
			}
			k->want_close = true;
			k->rlen = 0;
			tcp_progress(c, k);
			return;
		}
		b = realloc(k->rbuf, cap);
		if (b) {
			k->rbuf = b;
			k->rcap = cap;
		} else {
			dp_rbuf_charge(-(ssize_t)(cap - k->rcap));
		}
	}
	/* TLS: what OpenSSL has decrypted already is taken too, for epoll
	 * will not say it is there */
	do {
		if (k->rlen >= k->rcap)
			break;
		n = k->tls ? dp_tls_read(k, k->rbuf + k->rlen,
					 k->rcap - k->rlen)
			   : recv(k->fd, k->rbuf + k->rlen, k->rcap - k->rlen,
				  0);
		if (n > 0) {
			c->cs.bytes_read += (uint64_t)n;
			k->rlen += (size_t)n;
		} else if (n == 0) {
			k->eof = true;
		} else if (errno != EAGAIN && errno != EINTR) {
			dp_conn_close(c, k); /* reset: nobody to answer */
			return;
		} else if (k->tls_wants_write) {
			k->pollout = true;
		}
	} while (n > 0 && dp_tls_pending(k));
	tcp_progress(c, k);
}

/* The listeners' interest, switched off while -c is reached without
 * maxconns_fast (memcached then leaves new connections queued). */
static void listeners_interest(struct dp_core *c, uint32_t events)
{
	for (unsigned i = 0; i < c->sock.nl; i++) {
		struct epoll_event ev = {.events = events,
					 .data.ptr = &c->sock.lfd[i]};

		epoll_ctl(c->sock.ep, EPOLL_CTL_MOD, c->sock.lfd[i], &ev);
	}
}

static void accept_pause(struct dp_core *c)
{
	if (c->sock.accept_paused)
		return;
	c->sock.accept_paused = true;
	listeners_interest(c, 0);
}

void dp_sock_accept_resume(struct dp_core *c)
{
	if (!c->sock.accept_paused ||
	    atomic_load(&dp_conns_open) >= dp_cfg->conn_max)
		return;
	c->sock.accept_paused = false;
	listeners_interest(
		c, EPOLLIN | (dp_cfg->unix_path[0] ? EPOLLEXCLUSIVE : 0));
}

static void tcp_accept(struct dp_core *c, int lfd, bool tls)
{
	for (int i = 0; i < BURST; i++) {
		struct epoll_event ev;
		struct dp_conn *k;
		int one = 1;
		int fd;

		if (!dp_cfg->maxconns_fast &&
		    atomic_load(&dp_conns_open) >= dp_cfg->conn_max) {
			/* what comes now waits in the listen queue */
			accept_pause(c);
			return;
		}
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		c->cs.total_connections++;
		if (atomic_fetch_add(&dp_conns_open, 1) >= dp_cfg->conn_max &&
		    dp_cfg->maxconns_fast) {
			static const char msg[] =
				"ERROR Too many open connections\r\n";

			atomic_fetch_sub(&dp_conns_open, 1);
			c->cs.rejected_connections++;
			if (send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL) < 0)
				(void)0;
			close(fd);
			continue;
		}
		if (!dp_cfg->unix_path[0])
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				   sizeof(one));
		k = dp_conn_new(c, fd, false, &tcp_ops);
		if (!k) {
			atomic_fetch_sub(&dp_conns_open, 1);
			close(fd);
			continue;
		}
		c->cs.curr_connections++;
		pthread_mutex_lock(&c->tcp_lock);
		k->tprev = NULL;
		k->tnext = c->tcp_first;
		if (c->tcp_first)
			c->tcp_first->tprev = k;
		c->tcp_first = k;
		pthread_mutex_unlock(&c->tcp_lock);
		ev.events = EPOLLIN;
		ev.data.ptr = k;
		if (epoll_ctl(c->sock.ep, EPOLL_CTL_ADD, fd, &ev) ||
		    (tls && dp_tls_accept(k))) {
			dp_conn_close(c, k);
			continue;
		}
	}
}

/* ------------------------------------------------------------------------
 * stats conns
 * ---------------------------------------------------------------------- */

struct conn_line {
	int fd;
	char kind; /* 'l' listener, 'u' UDP socket, 't' a connection */
	const char *state;
	uint64_t idle;
};

static int conn_line_cmp(const void *a, const void *b)
{
	const struct conn_line *x = a, *y = b;

	return x->fd < y->fd ? -1 : x->fd > y->fd;
}

/* "tcp:1.2.3.4:5" or "tcp6:[::1]:5", as memcached names an address. */
static void name_addr(const struct sockaddr_storage *sa, const char *proto,
		      char *out, size_t n)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		port = ntohs(s6->sin6_port);
		snprintf(out, n, "%s6:[%s]:%u", proto, ip, port);
		return;
	}
	if (sa->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		port = ntohs(s4->sin_port);
	}
	if (sa->ss_family == AF_UNIX || dp_cfg->unix_path[0]) {
		/* a client of the -s socket has no name of its own */
		snprintf(out, n, "unix:%s", dp_cfg->unix_path);
		return;
	}
	snprintf(out, n, "%s:%s:%u", proto, ip, port);
}

static int conn_print(struct proto_out *out, const struct conn_line *l)
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	char addr[128], local[128], line[640];
	const char *proto = l->kind == 'u' ? "udp" : "tcp";
	int n = 0;

	memset(&sa, 0, sizeof(sa));
	if (l->kind == 't')
		getpeername(l->fd, (struct sockaddr *)&sa, &len);
	else
		getsockname(l->fd, (struct sockaddr *)&sa, &len);
	name_addr(&sa, proto, addr, sizeof(addr));
	if (l->kind == 'u')
		n += snprintf(line + n, sizeof(line) - (size_t)n,
			      "STAT %d:UDP UDP\r\n", l->fd);
	n += snprintf(line + n, sizeof(line) - (size_t)n, "STAT %d:addr %s\r\n",
		      l->fd, addr);
	if (l->kind == 't') {
		len = sizeof(sa);
		memset(&sa, 0, sizeof(sa));
		getsockname(l->fd, (struct sockaddr *)&sa, &len);
		name_addr(&sa, proto, local, sizeof(local));
		n += snprintf(line + n, sizeof(line) - (size_t)n,
			      "STAT %d:listen_addr %s\r\n", l->fd, local);
	}
	n += snprintf(
		line + n, sizeof(line) - (size_t)n,
		"STAT %d:state %s\r\nSTAT %d:secs_since_last_cmd %llu\r\n",
		l->fd, l->state, l->fd, (unsigned long long)l->idle);
	if (proto_out_reserve(out, (size_t)n))
		return -ENOMEM;
	memcpy(out->buf + out->len, line, (size_t)n);
	out->len += (size_t)n;
	return 0;
}

int dp_sock_conns(void *arg, struct proto_out *out)
{
	const struct dp_core *self = arg;
	uint64_t now = dp_now_sec();
	size_t n = 0, cap = 64;
	struct conn_line *l = malloc(sizeof(*l) * cap);
	int rc = 0;

	if (!l)
		return -ENOMEM;
	for (unsigned i = 0; i < self->sock.nl; i++)
		l[n++] = (struct conn_line){self->sock.lfd[i], 'l',
					    "conn_listening", 0};
	for (unsigned i = 0; i < self->sock.nu && n < cap; i++)
		l[n++] = (struct conn_line){self->sock.ufd[i], 'u', "conn_read",
					    0};
	/* every core's list held at once (only this core takes more than
	 * its own), so that no fd printed can close meanwhile */
	for (unsigned i = 0; i < dp_ncores; i++)
		pthread_mutex_lock(&dp_cores[i].tcp_lock);
	for (unsigned i = 0; i < dp_ncores && !rc; i++) {
		for (const struct dp_conn *k = dp_cores[i].tcp_first; k;
		     k = k->tnext) {
			uint64_t rx =
				__atomic_load_n(&k->last_rx, __ATOMIC_RELAXED);

			if (n == cap) {
				struct conn_line *b =
					realloc(l, sizeof(*l) * cap * 2);

				if (!b) {
					rc = -ENOMEM;
					break;
				}
				l = b;
				cap *= 2;
			}
			l[n++] = (struct conn_line){k->fd, 't',
						    k == self->running
							    ? "conn_parse_cmd"
							    : "conn_read",
						    now > rx ? now - rx : 0};
		}
	}
	qsort(l, n, sizeof(*l), conn_line_cmp);
	for (size_t j = 0; j < n && !rc; j++)
		rc = conn_print(out, &l[j]);
	for (unsigned i = 0; i < dp_ncores; i++)
		pthread_mutex_unlock(&dp_cores[i].tcp_lock);
	free(l);
	return rc;
}

/* Sends the output as one message; an empty one is a bare header whose
 * count is 0. */
static bool udp_send(struct dp_core *c, struct dp_conn *k)
{
	unsigned count = proto_udp_count(k->out.len);
	char d[PROTO_UDP_MTU];

	if (count == 0) {
		struct proto_udp_hdr h = {.req_id = k->req_id};

		proto_udp_write(d, &h);
		if (sendto(k->peer.sock.fd, d, PROTO_UDP_HDR, 0,
			   (struct sockaddr *)&k->peer.sock.addr,
			   k->peer.sock.len) > 0)
			c->cs.bytes_written += PROTO_UDP_HDR;
	}
	for (unsigned seq = 0; seq < count; seq++) {
		size_t n = proto_udp_frame(d, k->req_id, k->out.buf, k->out.len,
					   seq);

		if (n == 0)
			break;
		if (sendto(k->peer.sock.fd, d, n, 0,
			   (struct sockaddr *)&k->peer.sock.addr,
			   k->peer.sock.len) > 0)
			c->cs.bytes_written += n;
	}
	k->out.len = 0;
	return true;
}

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
	if (type == SOCK_STREAM && listen(fd, (int)dp_cfg->backlog))
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

/*
 * The -s socket: made once, with -a's mode (a stale socket file left by
 * an earlier run is replaced, as memcached replaces it); every core
 * accepts on its own copy of it, woken one at a time (EPOLLEXCLUSIVE).
 */
static int unix_listener(const char *path, unsigned mask, char *err,
			 size_t errlen)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct stat st;
	mode_t old;
	int fd, e;

	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	old = umask((mode_t)(~mask & 0777));
	e = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (e || listen(fd, (int)dp_cfg->backlog)) {
		e = errno;
		close(fd);
		errno = e;
		goto fail;
	}
	return fd;
fail:
	snprintf(err, errlen, "failed to listen on UNIX socket: %s: %s", path,
		 strerror(errno));
	return -1;
}

/* ------------------------------------------------------------------------
 * The backend
 * ---------------------------------------------------------------------- */

static void tcp_ops_progress(struct dp_core *c, struct dp_conn *k)
{
	tcp_progress(c, k);
}

static void tcp_closed(struct dp_core *c, struct dp_conn *k)
{
	/* out of stats conns' sight before its fd can be reused */
	pthread_mutex_lock(&c->tcp_lock);
	if (k->tprev)
		k->tprev->tnext = k->tnext;
	else if (c->tcp_first == k)
		c->tcp_first = k->tnext;
	if (k->tnext)
		k->tnext->tprev = k->tprev;
	k->tprev = k->tnext = NULL;
	dp_tls_close(k);
	close(k->fd);
	pthread_mutex_unlock(&c->tcp_lock);
	atomic_fetch_sub(&dp_conns_open, 1);
	c->cs.curr_connections--;
}

static void udp_closed(struct dp_core *c, struct dp_conn *k)
{
	(void)c;
	(void)k;
}

static const struct dp_conn_ops tcp_ops = {
	.send = tcp_send,
	.progress = tcp_ops_progress,
	.closed = tcp_closed,
};

static const struct dp_conn_ops udp_ops = {
	.send = udp_send,
	.progress = dp_udp_run,
	.closed = udp_closed,
};

/* A burst of datagrams from one socket, taken and run together. */
static void udp_recv(struct dp_core *c, int ufd)
{
	struct mmsghdr mm[BURST];
	struct iovec iov[BURST];
	struct sockaddr_storage peers[BURST];
	struct dp_conn *k[BURST];
	int n;

	for (int i = 0; i < BURST; i++) {
		iov[i].iov_base = c->sock.dgram + (size_t)i * UDP_DGRAM;
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
		k[i] = dp_udp_take(c, iov[i].iov_base, mm[i].msg_len, &udp_ops);
		if (!k[i])
			continue;
		k[i]->peer.sock.fd = ufd;
		k[i]->peer.sock.addr = peers[i];
		k[i]->peer.sock.len = mm[i].msg_hdr.msg_namelen;
	}
	if (n > 0)
		dp_udp_burst(c, k, (unsigned)n);
}

static unsigned sock_poll(struct dp_core *c, int timeout_ms)
{
	struct epoll_event evs[BURST];
	int n;

	/* the core holds no ring while it sleeps: a new one is read on
	 * waking, before anything that arrived runs */
	if (timeout_ms > 0)
		dp_ring_offline(c);
	n = epoll_wait(c->sock.ep, evs, BURST, timeout_ms);
	if (timeout_ms > 0)
		dp_ring_online(c);
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
		if ((uintptr_t)p >= (uintptr_t)&c->sock.lfd[0] &&
		    (uintptr_t)p < (uintptr_t)&c->sock.lfd[DP_ADDR_MAX + 1]) {
			tcp_accept(c, *(int *)p,
				   c->sock.lfd_tls[(int *)p - c->sock.lfd]);
			continue;
		}
		if ((uintptr_t)p >= (uintptr_t)&c->sock.ufd[0] &&
		    (uintptr_t)p < (uintptr_t)&c->sock.ufd[DP_ADDR_MAX]) {
			udp_recv(c, *(int *)p);
			continue;
		}
		if (dp_fwd_event(c, p, evs[i].events))
			continue;
		k = p;
		if ((evs[i].events & EPOLLOUT) && !tcp_progress(c, k))
			continue;
		if ((evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR) ||
		     (k->tls && (k->tls_wants_write || dp_tls_pending(k)))) &&
		    !c->quiet)
			tcp_read(c, k);
	}
	return n > 0 ? (unsigned)n : 0;
}

static void sock_quiet(struct dp_core *c)
{
	for (unsigned i = 0; i < c->sock.nl; i++)
		epoll_ctl(c->sock.ep, EPOLL_CTL_DEL, c->sock.lfd[i], NULL);
	for (unsigned i = 0; i < c->sock.nu; i++)
		epoll_ctl(c->sock.ep, EPOLL_CTL_DEL, c->sock.ufd[i], NULL);
}

static void sock_flush(struct dp_core *c)
{
	(void)c; /* every send was made as it came */
}

/* Flushes what streams are owed, for at most DRAIN_MS, then closes the
 * listeners. */
static void sock_teardown(struct dp_core *c)
{
	uint64_t deadline = dp_now_sec() * 1000 + DRAIN_MS;
	struct timespec ts;

	for (;;) {
		bool left = false;

		for (struct dp_conn *k = c->conns.next; k != &c->conns;
		     k = k->next)
			if (!k->closed && !k->udp && k->out.len > k->out_sent &&
			    tcp_send(c, k))
				left |= k->out.len > k->out_sent;
		clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
		if (!left || (uint64_t)ts.tv_sec * 1000 +
					     (uint64_t)ts.tv_nsec / 1000000 >
				     deadline)
			break;
		usleep(1000);
	}
	for (unsigned i = 0; i < c->sock.nl; i++)
		close(c->sock.lfd[i]);
	for (unsigned i = 0; i < c->sock.nu; i++)
		close(c->sock.ufd[i]);
	if (c->id == 0 && dp_cfg->unix_path[0])
		unlink(dp_cfg->unix_path);
	c->sock.nl = c->sock.nu = 0;
	if (c->sock.ep >= 0)
		close(c->sock.ep);
	c->sock.ep = -1;
	free(c->sock.dgram);
	c->sock.dgram = NULL;
}

/* An address's TCP port: its own from -l ADDR:PORT, or -p. */
static uint16_t tcp_port_of(const struct dp_config *cfg, unsigned a)
{
	return cfg->addr_port[a] ? cfg->addr_port[a] : cfg->tcp_port;
}

/* One listener per address and port; the kernel spreads connections and
 * datagrams over the cores' listeners (SO_REUSEPORT). A port another
 * process holds is found by the first core, before anyone binds. */
static int sock_setup(struct dp_core *c, char *err, size_t errlen)
{
	const struct dp_config *cfg = dp_cfg;
	/* with the DPDK backend, -U is the port's, not the kernel's */
	uint16_t udp_port =
		cfg->dataplane == DP_BACKEND_SOCKET ? cfg->udp_port : 0;
	struct epoll_event ev = {.events = EPOLLIN};
	int rc;

	for (unsigned a = 0; c->id == 0 && a < cfg->naddrs; a++) {
		if (tcp_port_of(cfg, a) &&
		    (rc = port_free(cfg->addrs[a], tcp_port_of(cfg, a),
				    SOCK_STREAM, err, errlen)))
			return rc;
		if (udp_port && (rc = port_free(cfg->addrs[a], udp_port,
						SOCK_DGRAM, err, errlen)))
			return rc;
	}
	c->sock.ep = epoll_create1(EPOLL_CLOEXEC);
	if (c->sock.ep < 0) {
		snprintf(err, errlen, "core %u: %s", c->id, strerror(errno));
		return -errno;
	}
	ev.data.ptr = &c->evfd;
	epoll_ctl(c->sock.ep, EPOLL_CTL_ADD, c->evfd, &ev);
	if (cfg->unix_path[0]) {
		static int shared = -1;
		int fd;

		if (c->id == 0 &&
		    (shared = unix_listener(cfg->unix_path, cfg->unix_mask, err,
					    errlen)) < 0)
			return -EADDRINUSE;
		fd = c->id == 0 ? shared : fcntl(shared, F_DUPFD_CLOEXEC, 0);
		if (fd < 0) {
			snprintf(err, errlen, "core %u: %s", c->id,
				 strerror(errno));
			return -errno;
		}
		c->sock.lfd[c->sock.nl] = fd;
		ev.events = EPOLLIN | EPOLLEXCLUSIVE;
		ev.data.ptr = &c->sock.lfd[c->sock.nl++];
		epoll_ctl(c->sock.ep, EPOLL_CTL_ADD, fd, &ev);
		ev.events = EPOLLIN;
	}
	for (unsigned a = 0; a < cfg->naddrs; a++) {
		if (tcp_port_of(cfg, a)) {
			int fd = listen_socket(cfg->addrs[a],
					       tcp_port_of(cfg, a), SOCK_STREAM,
					       err, errlen);

			if (fd < 0)
				return -EADDRINUSE;
			c->sock.lfd_tls[c->sock.nl] =
				cfg->ssl && !cfg->addr_notls[a];
			c->sock.lfd[c->sock.nl] = fd;
			ev.data.ptr = &c->sock.lfd[c->sock.nl++];
			epoll_ctl(c->sock.ep, EPOLL_CTL_ADD, fd, &ev);
		}
		if (udp_port) {
			int fd = listen_socket(cfg->addrs[a], udp_port,
					       SOCK_DGRAM, err, errlen);

			if (fd < 0)
				return -EADDRINUSE;
			c->sock.ufd[c->sock.nu] = fd;
			ev.data.ptr = &c->sock.ufd[c->sock.nu++];
			epoll_ctl(c->sock.ep, EPOLL_CTL_ADD, fd, &ev);
		}
	}
	if (udp_port) {
		c->sock.dgram = malloc((size_t)BURST * UDP_DGRAM);
		if (!c->sock.dgram)
			return -ENOMEM;
	}
	return 0;
}

const struct dp_backend dp_socket_backend = {
	.name = "socket",
	.setup = sock_setup,
	.quiet = sock_quiet,
	.poll = sock_poll,
	.flush = sock_flush,
	.teardown = sock_teardown,
	.busy_poll = false,
};

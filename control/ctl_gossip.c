/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Membership by gossip in memlaned. Two threads: the probe thread owns
 * the gossip UDP socket and drives gossip.c's timers with the wall clock
 * (the replay window compares the clocks of members: keep them in step,
 * as NTP does); the push-pull thread owns the TCP listener on the same
 * port, serves and starts push-pulls, and joins through the seeds while
 * the node is alone. A push-pull may wait PP_TIMEOUT_MS on a member that
 * is cut off, and a hand-off digest longer: on the probe thread, that
 * wait would leave the node's pings unanswered and have the others
 * suspect it. Both turn what gossip says into the view and the ring.
 *
 * A member learnt is given the next index of the view and keeps it; its
 * memcached address is resolved by the dataplane before any ring names
 * it. A member dead or left keeps its index with no points, so that the
 * forwarding connections and the counters of the others stay where they
 * are. Push-pull over TCP: each side sends a 4-byte little-endian length
 * and its state (gossip_state_encode), then reads the other's; a side
 * that takes more than PP_TIMEOUT_MS is given up on.
 *
 * Every call into gossip.c, and every change of the view, holds c->lock:
 * the admin endpoint's thread joins, leaves and sets the weight through
 * the same lock.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "control_internal.h"

#define SEEDS_MAX     16
#define PP_TIMEOUT_MS 1000
#define HO_RECV_MS    5000 /* a hand-off digest, which may be larger */
#define RECV_BURST    64
#define PP_POLL_MS    100

struct ctl_gossip {
	struct ctl *c;
	struct gossip *g;
	struct gossip_io io;
	int udp, tcp, wake[2];
	pthread_t thread, pp_thread;
	bool started, pp_started;
	struct gossip_addr self;
	struct gossip_addr seeds[SEEDS_MAX];
	unsigned nseeds;
	unsigned probe_interval_ms;
	uint64_t next_seed_try;
	bool dirty; /* the view changed: a new ring */
	/* one push-pull at a time: the thread's, or a join's */
	pthread_mutex_t pp_lock;
	uint8_t *state, *peer_state;
	uint64_t pp_failed;
};

uint64_t ctl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int resolve4(const char *host, uint16_t port, struct gossip_addr *out)
{
	struct addrinfo hints = {.ai_family = AF_INET,
				 .ai_socktype = SOCK_DGRAM},
			*res;

	if (getaddrinfo(host, NULL, &hints, &res))
		return -EINVAL;
	out->ip = ((struct sockaddr_in *)(void *)res->ai_addr)->sin_addr.s_addr;
	out->port = port;
	freeaddrinfo(res);
	return 0;
}

/* "host:port" into its parts; the port is after the last colon. */
static int split_hostport(const char *s, char *host, size_t hostlen,
			  uint16_t *port)
{
	const char *colon = strrchr(s, ':');
	char *end;
	unsigned long v;

	if (!colon || colon == s || (size_t)(colon - s) >= hostlen)
		return -EINVAL;
	v = strtoul(colon + 1, &end, 10);
	if (*end || !v || v > 65535)
		return -EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	*port = (uint16_t)v;
	return 0;
}

static struct sockaddr_in sa_of(const struct gossip_addr *a)
{
	return (struct sockaddr_in){.sin_family = AF_INET,
				    .sin_addr.s_addr = a->ip,
				    .sin_port = htons(a->port)};
}

/* ---------------------------------------------------------------------
 * What gossip.c asks of its host
 * ------------------------------------------------------------------- */

static void io_send(void *arg, const struct gossip_addr *to, const void *buf,
		    size_t len)
{
	struct ctl_gossip *cg = arg;
	struct sockaddr_in sa = sa_of(to);

	/* a full socket buffer loses the datagram, as the network may */
	(void)sendto(cg->udp, buf, len, MSG_DONTWAIT, (struct sockaddr *)&sa,
		     sizeof(sa));
}

int ctl_view_index(struct ctl *c, const struct gossip_addr *a)
{
	for (unsigned i = 0; i < c->nmembers; i++)
		if (c->view[i].addr.ip == a->ip &&
		    c->view[i].addr.port == a->port)
			return (int)i;
	return -1;
}

/* Holds c->lock (every call into gossip.c does). */
static void io_changed(void *arg, const struct gossip_member *m)
{
	struct ctl_gossip *cg = arg;
	struct ctl *c = cg->c;
	int i = m->self ? 0 : ctl_view_index(c, &m->addr);
	struct ctl_view *v;

	if (i < 0) {
		struct ctl_member *cm;

		if (c->nmembers == CTL_MEMBER_MAX) {
			if (c->verbose)
				fprintf(stderr,
					"memlaned: gossip: %s left out: at "
					"most %d members\n",
					m->service, CTL_MEMBER_MAX);
			return;
		}
		i = (int)c->nmembers;
		cm = &c->members[i];
		memset(cm, 0, sizeof(*cm));
		memset(&c->view[i], 0, sizeof(c->view[i]));
		if (split_hostport(m->service, cm->host, sizeof(cm->host),
				   &cm->port) == 0)
			c->view[i].resolved =
				c->ops->member_added(c->ops->arg, (unsigned)i,
						     cm->host, cm->port) == 0;
		c->view[i].addr = m->addr;
		c->nmembers++;
	}
	v = &c->view[i];
	if (c->verbose && v->state != m->state)
		fprintf(stderr, "memlaned: gossip: %s is %s (incarnation %u)\n",
			m->service, gossip_state_name(m->state),
			m->incarnation);
	v->state = m->state;
	v->incarnation = m->incarnation;
	v->changed_ms = ctl_now_ms();
	snprintf(v->id, sizeof(v->id), "%s", m->id);
	c->members[i].weight = m->weight;
	cg->dirty = true;
}

/* A new ring when the view changed. Holds c->lock. */
static void settle(struct ctl_gossip *cg)
{
	char err[160];

	if (!cg->dirty)
		return;
	cg->dirty = false;
	/* when no member would own a key (every one drained or left),
	 * the ring stays as it was */
	if (ctl_rebuild(cg->c, err, sizeof(err)) == 0 && cg->c->verbose)
		fprintf(stderr, "memlaned: ring epoch %llu: %u members\n",
			(unsigned long long)cg->c->epoch, cg->c->nmembers);
}

/* ---------------------------------------------------------------------
 * Push-pull over TCP
 * ------------------------------------------------------------------- */

int ctl_io_wait(int fd, short ev, uint64_t deadline)
{
	for (;;) {
		uint64_t now = ctl_now_ms();
		struct pollfd pfd = {.fd = fd, .events = ev};
		int n;

		if (now >= deadline)
			return -ETIMEDOUT;
		n = poll(&pfd, 1, (int)(deadline - now));
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

int ctl_io_all(int fd, void *buf, size_t len, bool out, uint64_t deadline)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n;
		int rc = ctl_io_wait(fd, out ? POLLOUT : POLLIN, deadline);

		if (rc)
			return rc;
		n = out ? send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT)
			: recv(fd, p, len, MSG_DONTWAIT);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int send_state(struct ctl_gossip *cg, int fd, uint64_t deadline)
{
	struct ctl *c = cg->c;
	uint8_t hdr[4];
	ssize_t n;

	pthread_mutex_lock(&c->lock);
	n = gossip_state_encode(cg->g, ctl_now_ms(), cg->state,
				GOSSIP_STATE_MAX);
	pthread_mutex_unlock(&c->lock);
	if (n < 0)
		return (int)n;
	for (int i = 0; i < 4; i++)
		hdr[i] = (uint8_t)((size_t)n >> (8 * i));
	if (ctl_io_all(fd, hdr, 4, true, deadline))
		return -EIO;
	return ctl_io_all(fd, cg->state, (size_t)n, true, deadline);
}

static int recv_len(int fd, uint32_t *len, uint64_t deadline)
{
	uint8_t hdr[4];
	int rc;

	if ((rc = ctl_io_all(fd, hdr, 4, false, deadline)))
		return rc;
	*len = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 |
	       (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
	return 0;
}

/* A state whose header said len bytes follow. */
static int recv_state_body(struct ctl_gossip *cg, int fd, uint32_t len,
			   uint64_t deadline)
{
	struct ctl *c = cg->c;
	int rc;

	if (len == 0 || len > GOSSIP_STATE_MAX)
		return -EMSGSIZE;
	if ((rc = ctl_io_all(fd, cg->peer_state, len, false, deadline)))
		return rc;
	pthread_mutex_lock(&c->lock);
	rc = gossip_state_merge(cg->g, ctl_now_ms(), cg->peer_state, len);
	settle(cg);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static int recv_state(struct ctl_gossip *cg, int fd, uint64_t deadline)
{
	uint32_t len;
	int rc = recv_len(fd, &len, deadline);

	return rc ? rc : recv_state_body(cg, fd, len, deadline);
}

/* A TCP connection to a member's gossip port. */
int ctl_connect(const struct gossip_addr *to, uint64_t deadline)
{
	struct sockaddr_in sa = sa_of(to);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int rc, soerr = 0;
	socklen_t sl = sizeof(soerr);

	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) &&
	    errno != EINPROGRESS) {
		rc = -errno;
		goto fail;
	}
	if ((rc = ctl_io_wait(fd, POLLOUT, deadline)))
		goto fail;
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
	if (soerr) {
		rc = -soerr;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return rc;
}

/* Push-pull with a member: ours out, theirs in. Holds pp_lock. */
static int pushpull_locked(struct ctl_gossip *cg, const struct gossip_addr *to)
{
	uint64_t deadline = ctl_now_ms() + PP_TIMEOUT_MS;
	int fd = ctl_connect(to, deadline), rc;

	if (fd < 0) {
		cg->pp_failed++;
		return fd;
	}
	rc = send_state(cg, fd, deadline);
	if (!rc)
		rc = recv_state(cg, fd, deadline);
	close(fd);
	if (rc)
		cg->pp_failed++;
	return rc;
}

static int pushpull(struct ctl_gossip *cg, const struct gossip_addr *to)
{
	int rc;

	pthread_mutex_lock(&cg->pp_lock);
	rc = pushpull_locked(cg, to);
	pthread_mutex_unlock(&cg->pp_lock);
	return rc;
}

/* A member's push-pull: theirs in, ours out. Or a hand-off digest: the
 * length's top bit says so (ctl_handoff.c). */
static void serve_pushpull(struct ctl_gossip *cg)
{
	int fd = accept4(cg->tcp, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	uint64_t deadline = ctl_now_ms() + PP_TIMEOUT_MS;
	uint32_t len;

	if (fd < 0)
		return;
	if (recv_len(fd, &len, deadline)) {
		cg->pp_failed++;
	} else if (len & 0x80000000u) {
		ctl_handoff_recv(cg->c, fd, len & 0x7fffffffu,
				 ctl_now_ms() + HO_RECV_MS);
	} else {
		pthread_mutex_lock(&cg->pp_lock);
		/* ours is encoded before theirs is merged: each side sends
		 * what it knew, as the joining side does */
		if (recv_state_body(cg, fd, len, deadline) == 0)
			send_state(cg, fd, deadline);
		else
			cg->pp_failed++;
		pthread_mutex_unlock(&cg->pp_lock);
	}
	close(fd);
}

/* ---------------------------------------------------------------------
 * The thread
 * ------------------------------------------------------------------- */

static bool alone(struct ctl_gossip *cg)
{
	struct ctl *c = cg->c;

	for (unsigned i = 1; i < c->nmembers; i++)
		if (c->view[i].state <= GOSSIP_SUSPECT)
			return false;
	return true;
}

static void try_seeds(struct ctl_gossip *cg, uint64_t now)
{
	if (!cg->nseeds || now < cg->next_seed_try)
		return;
	cg->next_seed_try = now + cg->probe_interval_ms;
	for (unsigned i = 0; i < cg->nseeds; i++)
		if (pushpull(cg, &cg->seeds[i]) == 0)
			return;
}

static void *run(void *arg)
{
	struct ctl_gossip *cg = arg;
	struct ctl *c = cg->c;
	uint8_t buf[GOSSIP_MTU + 1];

	for (;;) {
		struct pollfd pfd[2] = {{.fd = cg->udp, .events = POLLIN},
					{.fd = cg->wake[0], .events = POLLIN}};
		uint64_t now = ctl_now_ms(), next;
		int wait;

		pthread_mutex_lock(&c->lock);
		next = gossip_next_ms(cg->g);
		pthread_mutex_unlock(&c->lock);
		wait = next <= now	  ? 0
		       : next - now > 100 ? 100
					  : (int)(next - now);
		if (poll(pfd, 2, wait) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			break;
		for (int k = 0; (pfd[0].revents & POLLIN) && k < RECV_BURST;
		     k++) {
			struct sockaddr_in from;
			socklen_t fl = sizeof(from);
			struct gossip_addr fa;
			/* one byte past the MTU: a longer datagram is seen
			 * as oversized, not cut to fit */
			ssize_t n = recvfrom(cg->udp, buf, sizeof(buf),
					     MSG_DONTWAIT | MSG_TRUNC,
					     (struct sockaddr *)&from, &fl);

			if (n < 0)
				break;
			fa.ip = from.sin_addr.s_addr;
			fa.port = ntohs(from.sin_port);
			pthread_mutex_lock(&c->lock);
			gossip_recv(cg->g, ctl_now_ms(), &fa, buf,
				    (size_t)n > sizeof(buf) ? GOSSIP_MTU + 1
							    : (size_t)n);
			settle(cg);
			pthread_mutex_unlock(&c->lock);
		}
		pthread_mutex_lock(&c->lock);
		gossip_tick(cg->g, ctl_now_ms());
		settle(cg);
		pthread_mutex_unlock(&c->lock);
	}
	return NULL;
}

/* The push-pull thread: wakes at least every PP_POLL_MS to see whether
 * a push-pull is due (gossip.c keeps its time). */
static void *run_pushpull(void *arg)
{
	struct ctl_gossip *cg = arg;
	struct ctl *c = cg->c;

	for (;;) {
		struct pollfd pfd[2] = {{.fd = cg->tcp, .events = POLLIN},
					{.fd = cg->wake[0], .events = POLLIN}};
		struct gossip_addr to;
		uint64_t now;
		bool pp, lonely;

		if (poll(pfd, 2, PP_POLL_MS) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			break;
		if (pfd[0].revents & POLLIN)
			serve_pushpull(cg);
		pthread_mutex_lock(&c->lock);
		now = ctl_now_ms();
		pp = gossip_pushpull_target(cg->g, now, &to);
		lonely = alone(cg);
		pthread_mutex_unlock(&c->lock);
		if (pp)
			pushpull(cg, &to);
		if (lonely)
			try_seeds(cg, now);
	}
	return NULL;
}

/* ---------------------------------------------------------------------
 * Setup
 * ------------------------------------------------------------------- */

static int parse_seeds(struct ctl_gossip *cg, const char *list, char *err,
		       size_t errlen)
{
	char copy[1024], *save = NULL;

	if (!list || !*list)
		return 0;
	snprintf(copy, sizeof(copy), "%s", list);
	for (char *t = strtok_r(copy, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		char host[RING_HOST_MAX];
		uint16_t port;

		if (cg->nseeds == SEEDS_MAX) {
			snprintf(err, errlen, "--seeds: at most %d", SEEDS_MAX);
			return -EINVAL;
		}
		if (split_hostport(t, host, sizeof(host), &port) ||
		    resolve4(host, port, &cg->seeds[cg->nseeds])) {
			snprintf(err, errlen, "--seeds: cannot resolve '%s'",
				 t);
			return -EINVAL;
		}
		if (cg->seeds[cg->nseeds].ip != cg->self.ip ||
		    cg->seeds[cg->nseeds].port != cg->self.port)
			cg->nseeds++; /* a member is not its own seed */
	}
	return 0;
}

static int open_sockets(struct ctl_gossip *cg, char *err, size_t errlen)
{
	struct sockaddr_in sa = sa_of(&cg->self);
	int one = 1;

	cg->udp = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	cg->tcp =
		socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (cg->udp < 0 || cg->tcp < 0)
		goto fail;
	setsockopt(cg->tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(cg->udp, (struct sockaddr *)&sa, sizeof(sa)) ||
	    bind(cg->tcp, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(cg->tcp, 64))
		goto fail;
	if (pipe2(cg->wake, O_CLOEXEC))
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "gossip on %s:%u: %s", inet_ntoa(sa.sin_addr),
		 cg->self.port, strerror(errno));
	return -EADDRINUSE;
}

int ctl_gossip_start(struct ctl *c, const struct ctl_params *p, char *err,
		     size_t errlen)
{
	const struct ctl_gossip_params *gp = &p->gossip;
	struct ctl_gossip *cg = calloc(1, sizeof(*cg));
	struct gossip_params g = {0};
	char service[GOSSIP_SERVICE_MAX], id[GOSSIP_ID_MAX];
	int rc;

	if (!cg) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	cg->c = c;
	pthread_mutex_init(&cg->pp_lock, NULL);
	cg->udp = cg->tcp = cg->wake[0] = cg->wake[1] = -1;
	c->g = cg;
	cg->state = malloc(GOSSIP_STATE_MAX);
	cg->peer_state = malloc(GOSSIP_STATE_MAX);
	if (!cg->state || !cg->peer_state) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (resolve4(gp->addr, gp->port, &cg->self)) {
		snprintf(err, errlen, "--gossip: '%s' is not an IPv4 address",
			 gp->addr);
		return -EINVAL;
	}
	if ((rc = parse_seeds(cg, gp->seeds, err, errlen)) ||
	    (rc = open_sockets(cg, err, errlen)))
		return rc;
	snprintf(service, sizeof(service), "%s:%u", c->members[0].host,
		 c->members[0].port);
	/* a name for people: the address, as far as it fits */
	snprintf(id, sizeof(id), "%.*s", (int)sizeof(id) - 1, service);
	cg->io = (struct gossip_io){
		.send = io_send, .changed = io_changed, .arg = cg};
	g.addr = cg->self;
	g.id = id;
	g.service = service;
	g.weight = c->members[0].weight;
	g.probe_interval_ms = gp->probe_interval_ms;
	g.probe_timeout_ms = gp->probe_timeout_ms;
	g.pushpull_interval_ms = gp->pushpull_interval_ms;
	g.suspicion_mult = gp->suspicion_mult;
	g.indirect_probes = gp->indirect_probes;
	g.key = gp->keylen ? gp->key : NULL;
	g.keylen = gp->keylen;
	g.seed = (uint64_t)ctl_now_ms() ^ (uint64_t)getpid() << 32;
	g.now_ms = ctl_now_ms();
	g.io = &cg->io;
	cg->probe_interval_ms =
		gp->probe_interval_ms ? gp->probe_interval_ms : 1000;
	c->view[0].addr = cg->self;
	c->view[0].changed_ms = g.now_ms;
	memcpy(c->view[0].id, id, sizeof(id));
	if ((rc = gossip_create(&g, &cg->g))) {
		snprintf(err, errlen, "gossip: %s", strerror(-rc));
		return rc;
	}
	/* before anything can bring a digest, or a ring change send one */
	if ((rc = ctl_handoff_start(c, p, &cg->self, err, errlen)))
		return rc;
	/* the first join, before the node serves, so that it serves with
	 * the cluster's ring; the push-pull thread tries again while it is
	 * alone */
	try_seeds(cg, ctl_now_ms());
	if ((rc = pthread_create(&cg->thread, NULL, run, cg))) {
		snprintf(err, errlen, "gossip thread: %s", strerror(rc));
		return -rc;
	}
	cg->started = true;
	if ((rc = pthread_create(&cg->pp_thread, NULL, run_pushpull, cg))) {
		snprintf(err, errlen, "push-pull thread: %s", strerror(rc));
		return -rc;
	}
	cg->pp_started = true;
	if (c->verbose)
		fprintf(stderr, "memlaned: gossip on %s:%u, %u seeds%s\n",
			gp->addr, gp->port, cg->nseeds,
			gp->keylen ? ", signed" : "");
	return 0;
}

void ctl_gossip_stop(struct ctl *c)
{
	struct ctl_gossip *cg = c->g;

	if (!cg)
		return;
	/* one byte, never read: both threads see it */
	if ((cg->started || cg->pp_started) && write(cg->wake[1], "x", 1) < 0)
		(void)0; /* the pipe is ours: it has room */
	if (cg->started)
		pthread_join(cg->thread, NULL);
	if (cg->pp_started)
		pthread_join(cg->pp_thread, NULL);
	/* after the thread that reads digests, before the sockets go */
	ctl_handoff_stop(c);
	for (int i = 0; i < 2; i++)
		if (cg->wake[i] >= 0)
			close(cg->wake[i]);
	if (cg->udp >= 0)
		close(cg->udp);
	if (cg->tcp >= 0)
		close(cg->tcp);
	gossip_free(cg->g);
	free(cg->state);
	free(cg->peer_state);
	pthread_mutex_destroy(&cg->pp_lock);
	free(cg);
	c->g = NULL;
}

/* ---------------------------------------------------------------------
 * For the endpoint
 * ------------------------------------------------------------------- */

int ctl_gossip_join(struct ctl *c, const char *seed, char *err, size_t errlen)
{
	struct ctl_gossip *cg = c->g;
	struct gossip_addr a;
	char host[RING_HOST_MAX];
	uint16_t port;
	int rc;

	if (split_hostport(seed, host, sizeof(host), &port) ||
	    resolve4(host, port, &a)) {
		snprintf(err, errlen, "cannot resolve '%s'", seed);
		return -EINVAL;
	}
	pthread_mutex_lock(&c->lock);
	gossip_rejoin(cg->g, ctl_now_ms()); /* a node that left comes back */
	settle(cg);
	pthread_mutex_unlock(&c->lock);
	rc = pushpull(cg, &a);
	if (rc)
		snprintf(err, errlen, "push-pull with %s: %s", seed,
			 strerror(-rc));
	return rc;
}

int ctl_gossip_leave(struct ctl *c)
{
	uint64_t now = ctl_now_ms();

	pthread_mutex_lock(&c->lock);
	gossip_leave(c->g->g, now);
	/* the news goes out now, not at the next gossip interval */
	gossip_tick(c->g->g, now);
	settle(c->g);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

int ctl_gossip_weight(struct ctl *c, uint32_t weight)
{
	pthread_mutex_lock(&c->lock);
	gossip_set_weight(c->g->g, ctl_now_ms(), weight);
	settle(c->g);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

void ctl_gossip_stats(struct ctl *c, struct gossip_stats *st,
		      unsigned *awareness)
{
	pthread_mutex_lock(&c->lock);
	gossip_get_stats(c->g->g, st);
	*awareness = gossip_awareness(c->g->g);
	pthread_mutex_unlock(&c->lock);
}

/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The warm hand-off's messages. When the ring takes ranges away from this
 * node, a thread of its own asks the dataplane for the Bloom digest of
 * the keys held there (the cores walk their shards while they serve),
 * and sends it to each member that now owns part of them, with the part
 * that member owns, over the push-pull channel: a TCP connection to the
 * member's gossip port. The member's gossip thread reads it
 * (ctl_handoff_recv()) and hands it to its dataplane as an offer, under
 * its own index for the sender.
 *
 * On the wire, after the 4-byte little-endian length with its top bit
 * set (a push-pull state has it clear), all integers little-endian:
 *
 *   off  size  field
 *   0    4     "MLHO"
 *   4    1     version (1)
 *   5    3     zero
 *   8    8     sent, unix ms
 *   16   4     sender's gossip IPv4, network order
 *   20   2     sender's gossip port
 *   22   2     zero
 *   24   8     sender's ring epoch
 *   32   4     n, ranges (at most HO_RANGES_MAX)
 *   36   8n    ranges: lo, hi (ascending, disjoint)
 *   ..   4     b, the digest's bytes
 *   ..   b     the digest (bloom_serialise())
 *   ..   32    with a cluster key: HMAC-SHA256 of all the above
 *
 * A message is taken once per sender and time (a time at or before the
 * last one taken from that sender is a replay), within the gossip's
 * replay window of this node's clock; one that fails any check is
 * dropped and counted.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "bloom.h"
#include "control_internal.h"

#define HO_MAGIC      "MLHO"
#define HO_HEAD	      36
#define HO_MAC	      32
#define HO_RANGES_MAX 65536
#define HO_BYTES_MAX  (64u << 20)
#define HO_WINDOW_MS  30000 /* as gossip's replay window */
#define HO_TIMEOUT_MS 5000
#define HO_QUEUE_MAX  8

struct ho_target {
	struct gossip_addr addr;
	unsigned n;
	struct ring_range *rs;
};

struct ho_job {
	struct ho_job *next;
	uint64_t epoch;
	unsigned nlost, ntargets;
	struct ring_range *lost;
	struct ho_target t[CTL_MEMBER_MAX];
};

struct ctl_handoff {
	struct ctl *c;
	pthread_t thread;
	bool started, stop;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct ho_job *head, *tail;
	unsigned queued;
	uint8_t key[64];
	size_t keylen;
	struct gossip_addr self;
	uint64_t last_ms[CTL_MEMBER_MAX]; /* the last time taken, by sender */
	/* counters */
	atomic_ulong sent, send_failed, skipped, received, dropped;
};

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = n; i-- > 0;)
		v = v << 8 | p[i];
	return v;
}

static void job_free(struct ho_job *j)
{
	if (!j)
		return;
	for (unsigned i = 0; i < j->ntargets; i++)
		free(j->t[i].rs);
	free(j->lost);
	free(j);
}

static struct ring_range *ranges_of(const struct ring *r, unsigned m,
				    unsigned *n)
{
	unsigned k = ring_ranges(r, m, NULL, 0);
	struct ring_range *rs = malloc(sizeof(*rs) * (k ? k : 1));

	*n = rs ? ring_ranges(r, m, rs, k) : 0;
	return rs;
}

/* The ring went from old to r: who gets which part of what this node
 * lost. Holds c->lock. */
void ctl_handoff_plan(struct ctl *c, const struct ring *old,
		      const struct ring *r)
{
	struct ctl_handoff *h = c->h;
	struct ring_range *ro = NULL, *rn = NULL;
	unsigned no = 0, nn = 0;
	struct ho_job *j = NULL;

	if (!h || !old || !r || c->self >= ring_nmembers(old))
		return;
	ro = ranges_of(old, c->self, &no);
	rn = c->self < ring_nmembers(r) ? ranges_of(r, c->self, &nn)
					: calloc(1, sizeof(*rn));
	if (c->self >= ring_nmembers(r))
		nn = 0;
	j = calloc(1, sizeof(*j));
	if (!ro || !rn || !j)
		goto out;
	j->lost = malloc(sizeof(*j->lost) * (no + nn + 1));
	if (!j->lost)
		goto out;
	j->nlost = ring_ranges_minus(ro, no, rn, nn, j->lost);
	j->epoch = ring_epoch(r);
	for (unsigned m = 0; m < ring_nmembers(r) && j->nlost; m++) {
		struct ho_target *t = &j->t[j->ntargets];
		struct ring_range *rm;
		unsigned nm;

		if (m == c->self || !ring_member_npoints(r, m))
			continue;
		rm = ranges_of(r, m, &nm);
		t->rs = malloc(sizeof(*t->rs) * (nm + j->nlost + 1));
		if (rm && t->rs)
			t->n = ring_ranges_intersect(rm, nm, j->lost, j->nlost,
						     t->rs);
		free(rm);
		if (!t->n) {
			free(t->rs);
			t->rs = NULL;
			continue;
		}
		t->addr = c->view[m].addr;
		j->ntargets++;
	}
	if (!j->ntargets)
		goto out;
	pthread_mutex_lock(&h->lock);
	if (h->queued == HO_QUEUE_MAX) { /* the oldest gives way */
		struct ho_job *o = h->head;

		h->head = o->next;
		h->queued--;
		atomic_fetch_add(&h->skipped, 1);
		job_free(o);
		if (!h->head)
			h->tail = NULL;
	}
	if (h->tail)
		h->tail->next = j;
	else
		h->head = j;
	h->tail = j;
	h->queued++;
	pthread_cond_signal(&h->cond);
	pthread_mutex_unlock(&h->lock);
	j = NULL;
out:
	job_free(j);
	free(ro);
	free(rn);
}

/* The message for one target, its length header first. */
static uint8_t *encode(struct ctl_handoff *h, const struct ho_job *j,
		       const struct ho_target *t, const uint8_t *bf, size_t bl,
		       size_t *len)
{
	size_t body =
		HO_HEAD + 8 * (size_t)t->n + 4 + bl + (h->keylen ? HO_MAC : 0);
	uint8_t *m = calloc(1, 4 + body), *p;
	unsigned maclen = HO_MAC;

	if (!m)
		return NULL;
	put_le(m, (uint64_t)body | 0x80000000u, 4);
	p = m + 4;
	memcpy(p, HO_MAGIC, 4);
	p[4] = 1;
	put_le(p + 8, ctl_now_ms(), 8);
	memcpy(p + 16, &h->self.ip, 4);
	put_le(p + 20, h->self.port, 2);
	put_le(p + 24, j->epoch, 8);
	put_le(p + 32, t->n, 4);
	p += HO_HEAD;
	for (unsigned i = 0; i < t->n; i++, p += 8) {
		put_le(p, t->rs[i].lo, 4);
		put_le(p + 4, t->rs[i].hi, 4);
	}
	put_le(p, bl, 4);
	memcpy(p + 4, bf, bl);
	p += 4 + bl;
	if (h->keylen && !HMAC(EVP_sha256(), h->key, (int)h->keylen, m + 4,
			       (size_t)(p - (m + 4)), p, &maclen)) {
		free(m);
		return NULL;
	}
	*len = 4 + body;
	return m;
}

static int send_to(const struct gossip_addr *to, const uint8_t *m, size_t len)
{
	uint64_t deadline = ctl_now_ms() + HO_TIMEOUT_MS;
	int fd = ctl_connect(to, deadline), rc;

	if (fd < 0)
		return fd;
	rc = ctl_io_all(fd, (void *)m, len, true, deadline);
	if (!rc) {
		/* the peer closes once it has read it all */
		uint8_t x;

		if (ctl_io_wait(fd, POLLIN, deadline) == 0)
			(void)recv(fd, &x, 1, MSG_DONTWAIT);
	}
	close(fd);
	return rc;
}

static void run_job(struct ctl_handoff *h, const struct ho_job *j)
{
	struct ctl *c = h->c;
	struct bloom *bf = NULL;
	uint8_t *bytes = NULL;
	size_t bl;

	if (c->ops->digest(c->ops->arg, j->lost, j->nlost, &bf)) {
		atomic_fetch_add(&h->send_failed, j->ntargets);
		return;
	}
	if (!bloom_count(bf)) {
		/* nothing held there: nothing to fetch */
		atomic_fetch_add(&h->skipped, j->ntargets);
		bloom_free(bf);
		return;
	}
	bl = bloom_serialised_size(bf);
	bytes = malloc(bl);
	if (!bytes || bloom_serialise(bf, bytes, bl) != bl) {
		atomic_fetch_add(&h->send_failed, j->ntargets);
		goto out;
	}
	for (unsigned i = 0; i < j->ntargets; i++) {
		size_t len;
		uint8_t *m = encode(h, j, &j->t[i], bytes, bl, &len);
		int rc = m ? send_to(&j->t[i].addr, m, len) : -ENOMEM;

		free(m);
		atomic_fetch_add(rc ? &h->send_failed : &h->sent, 1);
		if (rc && c->verbose)
			fprintf(stderr, "memlaned: hand-off digest: %s\n",
				strerror(-rc));
	}
out:
	free(bytes);
	bloom_free(bf);
}

static void *run(void *arg)
{
	struct ctl_handoff *h = arg;

	pthread_mutex_lock(&h->lock);
	while (!h->stop) {
		struct ho_job *j = h->head;
		struct timespec ts;

		if (!j) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&h->cond, &h->lock, &ts);
			pthread_mutex_unlock(&h->lock);
			if (h->c->ops->handoff_tick)
				h->c->ops->handoff_tick(h->c->ops->arg);
			pthread_mutex_lock(&h->lock);
			continue;
		}
		h->head = j->next;
		if (!h->head)
			h->tail = NULL;
		h->queued--;
		pthread_mutex_unlock(&h->lock);
		run_job(h, j);
		job_free(j);
		pthread_mutex_lock(&h->lock);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

/* A digest whose length header said len bytes follow. Runs on the
 * gossip thread. */
void ctl_handoff_recv(struct ctl *c, int fd, uint32_t len, uint64_t deadline)
{
	struct ctl_handoff *h = c->h;
	uint8_t *m = NULL, mac[HO_MAC];
	unsigned maclen = HO_MAC, n;
	size_t body, off;
	struct gossip_addr from = {0};
	struct ring_range *rs = NULL;
	struct bloom *bf = NULL;
	uint64_t sent, now = ctl_now_ms();
	uint32_t bl;
	int i;

	if (!h)
		return; /* no hand-off here: closed unread */
	if (len > HO_BYTES_MAX || len < HO_HEAD + 4)
		goto drop;
	m = malloc(len);
	if (!m || ctl_io_all(fd, m, len, false, deadline))
		goto drop;
	body = len - (h->keylen ? HO_MAC : 0);
	if (h->keylen && (!HMAC(EVP_sha256(), h->key, (int)h->keylen, m, body,
				mac, &maclen) ||
			  CRYPTO_memcmp(mac, m + body, HO_MAC) != 0))
		goto drop;
	if (memcmp(m, HO_MAGIC, 4) != 0 || m[4] != 1)
		goto drop;
	sent = get_le(m + 8, 8);
	memcpy(&from.ip, m + 16, 4);
	from.port = (uint16_t)get_le(m + 20, 2);
	n = (unsigned)get_le(m + 32, 4);
	if (n == 0 || n > HO_RANGES_MAX || HO_HEAD + 8 * (size_t)n + 4 > body)
		goto drop;
	if (sent + HO_WINDOW_MS < now || sent > now + HO_WINDOW_MS)
		goto drop;
	rs = malloc(sizeof(*rs) * n);
	if (!rs)
		goto drop;
	off = HO_HEAD;
	for (unsigned k = 0; k < n; k++, off += 8) {
		rs[k].lo = (uint32_t)get_le(m + off, 4);
		rs[k].hi = (uint32_t)get_le(m + off + 4, 4);
		if (rs[k].lo > rs[k].hi || (k && rs[k - 1].hi >= rs[k].lo))
			goto drop;
	}
	bl = (uint32_t)get_le(m + off, 4);
	if ((size_t)bl != body - off - 4 ||
	    bloom_deserialise(m + off + 4, bl, &bf))
		goto drop;
	pthread_mutex_lock(&c->lock);
	i = ctl_view_index(c, &from);
	if (i > 0 && sent > h->last_ms[i])
		h->last_ms[i] = sent;
	else
		i = -1; /* unknown, this node, or a replay */
	pthread_mutex_unlock(&c->lock);
	if (i < 0)
		goto drop;
	if (c->ops->handoff_offer(c->ops->arg, (unsigned)i, rs, n, bf) == 0)
		atomic_fetch_add(&h->received, 1);
	else
		atomic_fetch_add(&h->dropped, 1);
	free(rs);
	free(m);
	return;
drop:
	atomic_fetch_add(&h->dropped, 1);
	bloom_free(bf);
	free(rs);
	free(m);
}

int ctl_handoff_start(struct ctl *c, const struct ctl_params *p,
		      const struct gossip_addr *self, char *err, size_t errlen)
{
	struct ctl_handoff *h;
	int rc;

	if (!p->gossip.handoff_window_ms || !p->ops->digest ||
	    !p->ops->handoff_offer)
		return 0;
	h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	h->c = c;
	h->self = *self;
	h->keylen = p->gossip.keylen <= sizeof(h->key) ? p->gossip.keylen : 0;
	if (h->keylen)
		memcpy(h->key, p->gossip.key, h->keylen);
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
	if ((rc = pthread_create(&h->thread, NULL, run, h))) {
		snprintf(err, errlen, "hand-off thread: %s", strerror(rc));
		pthread_mutex_destroy(&h->lock);
		pthread_cond_destroy(&h->cond);
		free(h);
		return -rc;
	}
	h->started = true;
	pthread_mutex_lock(&c->lock);
	c->h = h;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

void ctl_handoff_stop(struct ctl *c)
{
	struct ctl_handoff *h = c->h;

	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	h->stop = true;
	pthread_cond_signal(&h->cond);
	pthread_mutex_unlock(&h->lock);
	if (h->started)
		pthread_join(h->thread, NULL);
	while (h->head) {
		struct ho_job *j = h->head;

		h->head = j->next;
		job_free(j);
	}
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->cond);
	OPENSSL_cleanse(h->key, sizeof(h->key));
	pthread_mutex_lock(&c->lock);
	c->h = NULL;
	pthread_mutex_unlock(&c->lock);
	free(h);
}

void ctl_handoff_stats(struct ctl *c, struct ctl_handoff_stats *st)
{
	struct ctl_handoff *h = c->h;

	memset(st, 0, sizeof(*st));
	if (!h)
		return;
	st->sent = atomic_load(&h->sent);
	st->send_failed = atomic_load(&h->send_failed);
	st->skipped = atomic_load(&h->skipped);
	st->received = atomic_load(&h->received);
	st->dropped = atomic_load(&h->dropped);
}

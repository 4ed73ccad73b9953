/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What a ring change means for the keys a node holds (with gossip only,
 * where every node's ring is the same one).
 *
 * Ranges gained. What the node holds in a range it has just been given
 * was written while another node owned it, or before: it may be older
 * than the value that owner held. Each core gates such items in its
 * shard (cache_set_gate()): an item written before the core took the
 * change, whose ring point lies in a gained range, is a miss from then on
 * and is reaped in slices. A node that owns k, loses it and gets it back
 * (A, B, A) therefore never serves its copy from before B.
 *
 * Ranges lost. The node keeps what it holds there for the hand-off
 * window, so that the new owner can fetch it, and then gates it the same
 * way (the purge). Without a window the purge is at once.
 *
 * The warm hand-off. The control plane sends each new owner a Bloom
 * digest of the keys the node held in the ranges it lost (ctl_handoff.c)
 * and hands the ones it receives to this file as offers. For the window,
 * a request on the new owner for a key it does not hold (any command
 * with a key but set, whose answer does not depend on what was there),
 * whose point lies in an offer's ranges and whose digest says it may be
 * there, waits while the key is fetched from the previous owner over the
 * forwarding connection ("mg <key> b v f t"): the value, its flags and
 * what is left of its TTL are stored as an add (a value written here
 * meanwhile wins), and then the request runs as it would have. A key is
 * fetched once: what was fetched, and what was deleted or written here,
 * is remembered in a per-core filter for as long as offers last.
 *
 * The gate events and the purge are published by the control plane's
 * thread with the ring, taken by each core at the start of a pass
 * (dp_warm_enter()), and freed after the RCU grace period that frees the
 * ring. A core acknowledges what it took; an event no core has missed is
 * replaced, one that some core has not taken is carried into the next.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_rcu_qsbr.h>

#include "bloom.h"
#include "dp_internal.h"
#include "ring.h"

#define REAP_BUDGET 256	 /* index buckets per core per pass */
#define OFFERS_MAX  32	 /* hand-off offers held at once */
#define TRIED_MIN   4096 /* keys the per-core filter is sized for */
#define TOOK_ALL    UINT64_MAX

/* Ranges that a core gates (gained, or lost and due to be purged). */
struct warm_event {
	uint64_t gen;
	uint64_t due_ms; /* the purge: not before then */
	unsigned n;
	struct ring_range rs[];
};

/* A core's gate: ranges, each with the core's write mark when it took
 * it; an item there written before its range's mark is gone. */
struct dp_gate {
	unsigned n;
	uint64_t below; /* the highest mark */
	struct gate_range {
		uint32_t lo, hi;
		uint64_t mark;
	} r[];
};

/* A previous owner's digest. */
struct warm_offer {
	unsigned member;
	uint64_t until_ms;
	unsigned n;
	struct ring_range *rs;
	struct bloom *bf;
};

struct dp_warm_table {
	unsigned n;
	uint64_t keys; /* in every digest, for the filters' size */
	struct warm_offer o[OFFERS_MAX];
};

static struct warm_event *_Atomic gate_event;
static struct warm_event *_Atomic purge_event;
static struct dp_warm_table *_Atomic offers;
static struct warm_event *retired[2]; /* freed after the grace period */
static uint64_t warm_gen;
static pthread_mutex_t offer_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------------
 * Ring changes: the control plane's side
 * ---------------------------------------------------------------------- */

static struct ring_range *self_ranges(const struct ring *r, unsigned *n)
{
	unsigned self = dp_cfg->self, k;
	struct ring_range *rs;

	*n = 0;
	if (!r || self >= ring_nmembers(r))
		return calloc(1, sizeof(*rs));
	k = ring_ranges(r, self, NULL, 0);
	rs = malloc(sizeof(*rs) * (k ? k : 1));
	if (rs)
		*n = ring_ranges(r, self, rs, k);
	return rs;
}

/* Whether every core has taken event e (a core that left takes all). */
static bool all_took(const struct warm_event *e, bool purge)
{
	for (unsigned i = 0; i < dp_ncores; i++) {
		uint64_t seen = atomic_load(purge ? &dp_cores[i].purge_seen
						  : &dp_cores[i].gate_seen);

		if (seen != e->gen && seen != TOOK_ALL)
			return false;
	}
	return true;
}

static struct warm_event *event_new(const struct ring_range *rs, unsigned n,
				    uint64_t due_ms)
{
	struct warm_event *e = malloc(sizeof(*e) + sizeof(rs[0]) * (n + 1));

	if (!e)
		return NULL;
	e->gen = ++warm_gen;
	e->due_ms = due_ms;
	e->n = n;
	memcpy(e->rs, rs, sizeof(rs[0]) * n);
	return e;
}

/*
 * The ring goes from old to r: the gate event (the ranges gained, and the
 * last event's where a core has not taken it) and the purge (the ranges
 * lost, and the last purge's where a core has not done it, less what r
 * gives back), published before r is. Runs on the control plane's thread,
 * under the publish lock; dp_warm_retire() follows the grace period.
 * Out of memory, the events stay as they were: the gate then misses a
 * range, the purge leaves items until they are evicted.
 */
void dp_warm_ring_changed(const struct ring *old, const struct ring *r)
{
	struct warm_event *ge = atomic_load(&gate_event),
			  *pe = atomic_load(&purge_event);
	unsigned no, nn, ng, nl, nc, np;
	struct ring_range *ro, *rn, *gained, *lost, *carry, *left;
	bool carry_gate, carry_purge;
	uint64_t now = now_ms();

	if (!dp_cfg->gossip || !r)
		return;
	ro = self_ranges(old, &no);
	rn = self_ranges(r, &nn);
	carry_gate = ge && !all_took(ge, false);
	carry_purge = pe && !all_took(pe, true);
	nc = (carry_gate ? ge->n : 0) + (carry_purge ? pe->n : 0);
	gained = malloc(sizeof(*gained) * (no + nn + nc + 1));
	lost = malloc(sizeof(*lost) * (no + nn + nc + 1));
	carry = malloc(sizeof(*carry) * (no + nn + nc + 1));
	left = malloc(sizeof(*left) * (2 * (no + nn + nc) + 1));
	if (!ro || !rn || !gained || !lost || !carry || !left)
		goto out;
	ng = old ? ring_ranges_minus(rn, nn, ro, no, gained) : 0;
	nl = ring_ranges_minus(ro, no, rn, nn, lost);
	if (carry_gate) {
		nc = ring_ranges_union(gained, ng, ge->rs, ge->n, carry);
		memcpy(gained, carry, sizeof(*carry) * nc);
		ng = nc;
	}
	if (ng || ge) {
		struct warm_event *e = ng ? event_new(gained, ng, 0) : NULL;

		if (e || !ng) {
			atomic_store_explicit(&gate_event, e,
					      memory_order_release);
			retired[0] = ge;
		}
	}
	/* the purge: a range lost waits a whole window from now */
	nc = ring_ranges_union(lost, nl, carry_purge ? pe->rs : NULL,
			       carry_purge ? pe->n : 0, carry);
	np = ring_ranges_minus(carry, nc, rn, nn, left);
	if (np || pe) {
		bool same = carry_purge && !nl && np == pe->n &&
			    memcmp(left, pe->rs, sizeof(*left) * np) == 0;
		struct warm_event *e = NULL;

		if (!same && np)
			e = event_new(left, np,
				      nl ? now + dp_cfg->handoff_window_s *
							      1000ull
					 : pe->due_ms);
		if (!same && (e || !np)) {
			atomic_store_explicit(&purge_event, e,
					      memory_order_release);
			retired[1] = pe;
		}
	}
out:
	free(ro);
	free(rn);
	free(gained);
	free(lost);
	free(carry);
	free(left);
}

/* After the grace period that followed dp_warm_ring_changed(). */
void dp_warm_retire(void)
{
	for (int i = 0; i < 2; i++) {
		free(retired[i]);
		retired[i] = NULL;
	}
}

/* ------------------------------------------------------------------------
 * The gate: a core's side
 * ---------------------------------------------------------------------- */

static bool gate_drops(void *arg, const char *key, uint32_t klen,
		       uint64_t written)
{
	const struct dp_gate *g = ((const struct dp_core *)arg)->gate;
	uint32_t pt = ring_key_point(key, klen);
	unsigned lo = 0, hi = g->n;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (g->r[mid].hi < pt)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < g->n && g->r[lo].lo <= pt && written < g->r[lo].mark;
}

static int range_cmp(const void *a, const void *b)
{
	const struct gate_range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Adds ranges to the core's gate with its write mark now, and starts the
 * reap again. Out of memory, the shard is flushed instead: nothing older
 * is served either way. */
static void gate_add(struct dp_core *c, const struct ring_range *rs, unsigned n)
{
	struct cache_shard *s = proto_node_shard(c->node, 0);
	const struct dp_gate *old = c->gate;
	unsigned on = old ? old->n : 0, k = 0;
	struct dp_gate *g =
		malloc(sizeof(*g) + sizeof(g->r[0]) * (2 * on + n + 1));
	struct ring_range *piece = malloc(sizeof(*piece) * (n + 2));
	uint64_t mark = cache_mark(s);

	if (!n) {
		free(g);
		free(piece);
		return;
	}
	if (!g || !piece) {
		free(g);
		free(piece);
		cache_flush(s);
		return;
	}
	/* what the old gate keeps, with its marks, less the new ranges */
	for (unsigned i = 0; i < on; i++) {
		struct ring_range one = {old->r[i].lo, old->r[i].hi};
		unsigned m = ring_ranges_minus(&one, 1, rs, n, piece);

		for (unsigned j = 0; j < m; j++)
			g->r[k++] = (struct gate_range){
				piece[j].lo, piece[j].hi, old->r[i].mark};
	}
	for (unsigned i = 0; i < n; i++)
		g->r[k++] = (struct gate_range){rs[i].lo, rs[i].hi, mark};
	qsort(g->r, k, sizeof(g->r[0]), range_cmp);
	g->n = k;
	g->below = 0;
	for (unsigned i = 0; i < k; i++)
		if (g->r[i].mark > g->below)
			g->below = g->r[i].mark;
	free(piece);
	c->gate = g;
	cache_set_gate(s, g->below, gate_drops, c);
	free((void *)old);
	memset(&c->reap, 0, sizeof(c->reap));
	c->reaping = true;
}

static struct dp_warm_table *offers_live(struct dp_core *c)
{
	struct dp_warm_table *t =
		atomic_load_explicit(&offers, memory_order_acquire);

	if (!t)
		return NULL;
	for (unsigned i = 0; i < t->n; i++)
		if (t->o[i].until_ms > c->warm_now)
			return t;
	return NULL;
}

void dp_warm_enter(struct dp_core *c)
{
	const struct warm_event *ge =
		atomic_load_explicit(&gate_event, memory_order_acquire);
	const struct warm_event *pe =
		atomic_load_explicit(&purge_event, memory_order_acquire);

	/* the common pass: nothing new since the last, no offer */
	if ((!ge || ge->gen == atomic_load_explicit(&c->gate_seen,
						    memory_order_relaxed)) &&
	    (!pe || pe->gen == atomic_load_explicit(&c->purge_seen,
						    memory_order_relaxed)) &&
	    !c->warm && !c->tried &&
	    !atomic_load_explicit(&offers, memory_order_relaxed))
		return;
	c->warm_now = now_ms();
	if (ge && ge->gen != atomic_load_explicit(&c->gate_seen,
						  memory_order_relaxed)) {
		gate_add(c, ge->rs, ge->n);
		atomic_store(&c->gate_seen, ge->gen);
	}
	if (pe && c->warm_now >= pe->due_ms &&
	    pe->gen != atomic_load_explicit(&c->purge_seen,
					    memory_order_relaxed)) {
		gate_add(c, pe->rs, pe->n);
		atomic_store(&c->purge_seen, pe->gen);
	}
	c->warm = offers_live(c);
	if (!c->warm && c->tried) {
		bloom_free(c->tried);
		c->tried = NULL;
	}
}

bool dp_warm_pending(const struct dp_core *c)
{
	return c->reaping;
}

void dp_warm_step(struct dp_core *c)
{
	struct cache_shard *s;
	struct cache_stats st;

	if (!c->reaping)
		return;
	s = proto_node_shard(c->node, 0);
	if (cache_reap_step(s, &c->reap, REAP_BUDGET)) {
		cache_set_gate(s, 0, NULL, NULL);
		free(c->gate);
		c->gate = NULL;
		c->reaping = false;
	}
	cache_get_stats(s, &st);
	c->purged = st.gated;
}

/* The core leaves its loop: it takes every event from now on. */
void dp_warm_leave(struct dp_core *c)
{
	atomic_store(&c->gate_seen, TOOK_ALL);
	atomic_store(&c->purge_seen, TOOK_ALL);
	if (c->gate)
		cache_set_gate(proto_node_shard(c->node, 0), 0, NULL, NULL);
	free(c->gate);
	c->gate = NULL;
	c->reaping = false;
	bloom_free(c->tried);
	c->tried = NULL;
	c->warm = NULL;
}

/* ------------------------------------------------------------------------
 * Offers: the control plane's side
 * ---------------------------------------------------------------------- */

static void offer_free(struct warm_offer *o)
{
	free(o->rs);
	bloom_free(o->bf);
}

/* A new table of the live offers, and o if not NULL (the oldest goes
 * when it is full); published, and the old one freed after the grace
 * period. Holds offer_lock. */
static int offers_replace(const struct warm_offer *o)
{
	struct dp_warm_table *old = atomic_load(&offers), *t;
	uint64_t now = now_ms();
	bool keep[OFFERS_MAX] = {false};
	unsigned live = 0, skip = 0;

	if (old)
		for (unsigned i = 0; i < old->n; i++)
			live += keep[i] = old->o[i].until_ms > now;
	if (!o && old && live == old->n)
		return 0; /* nothing expired */
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	if (o && live == OFFERS_MAX)
		skip = 1;
	for (unsigned i = 0; old && i < old->n; i++) {
		if (!keep[i])
			continue;
		if (skip) {
			keep[i] = false;
			skip = 0;
			continue;
		}
		t->o[t->n++] = old->o[i];
	}
	if (o)
		t->o[t->n++] = *o;
	for (unsigned i = 0; i < t->n; i++)
		t->keys += bloom_count(t->o[i].bf);
	if (!t->n) {
		free(t);
		t = NULL;
	}
	atomic_store_explicit(&offers, t, memory_order_release);
	dp_ring_synchronize();
	for (unsigned i = 0; old && i < old->n; i++)
		if (!keep[i])
			offer_free(&old->o[i]);
	free(old);
	return 0;
}

int dp_warm_offer(void *arg, unsigned member, const struct ring_range *rs,
		  unsigned n, struct bloom *bf)
{
	struct warm_offer o = {.member = member, .n = n, .bf = bf};
	int rc;

	(void)arg;
	if (!dp_cfg->handoff_window_s || member == dp_cfg->self ||
	    member >= DP_NODE_MAX || !n) {
		bloom_free(bf);
		return -EINVAL;
	}
	o.until_ms = now_ms() + dp_cfg->handoff_window_s * 1000ull;
	o.rs = malloc(sizeof(*rs) * n);
	if (!o.rs) {
		bloom_free(bf);
		return -ENOMEM;
	}
	memcpy(o.rs, rs, sizeof(*rs) * n);
	pthread_mutex_lock(&offer_lock);
	rc = offers_replace(&o);
	pthread_mutex_unlock(&offer_lock);
	if (rc)
		offer_free(&o);
	return rc;
}

void dp_warm_tick(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&offer_lock);
	offers_replace(NULL);
	pthread_mutex_unlock(&offer_lock);
}

unsigned dp_warm_offers(void)
{
	struct dp_warm_table *t;
	unsigned n;

	pthread_mutex_lock(&offer_lock);
	t = atomic_load(&offers);
	n = t ? t->n : 0;
	pthread_mutex_unlock(&offer_lock);
	return n;
}

/* At stop, after the workers. */
void dp_warm_teardown(void)
{
	struct dp_warm_table *t = atomic_exchange(&offers, NULL);

	for (unsigned i = 0; t && i < t->n; i++)
		offer_free(&t->o[i]);
	free(t);
	free(atomic_exchange(&gate_event, NULL));
	free(atomic_exchange(&purge_event, NULL));
	dp_warm_retire();
}

/* ------------------------------------------------------------------------
 * The fetch: a core's side
 * ---------------------------------------------------------------------- */

/* The per-core filter of keys not to fetch; NULL when memory is out. */
static struct bloom *tried(struct dp_core *c)
{
	if (!c->tried) {
		struct bloom_params bp = {
			.nkeys = ML_MAX(TRIED_MIN,
					2 * c->warm->keys / dp_ncores),
			.bits_per_key = 10.7};

		if (bloom_create(&bp, &c->tried))
			c->tried = NULL;
	}
	return c->tried;
}

bool dp_warm_wants(struct dp_core *c, const char *buf,
		   const struct proto_req *req, unsigned *member)
{
	const char *key = buf + req->key_off;
	struct cache_shard *s;
	struct bloom *t;
	uint32_t pt;

	if (!req->klen)
		return false;
	t = tried(c);
	if (!t)
		return false; /* fetching twice could undo a delete */
	if (req->cmd == PROTO_SET || req->cmd == PROTO_ERR) {
		/* what a set (or a set too large, which drops the key)
		 * leaves is what the key is from now on */
		bloom_add(t, req->hv);
		return false;
	}
	/* one key: a retrieval of several is split when offers live */
	if (req->key_off + req->klen < req->keys_end &&
	    (req->cmd == PROTO_GET || req->cmd == PROTO_GETS ||
	     req->cmd == PROTO_GAT || req->cmd == PROTO_GATS))
		return false;
	s = proto_node_shard(c->node, 0);
	if (bloom_maybe(t, req->hv) ||
	    cache_get(s, req->hv, key, req->klen, CACHE_GET_NOBUMP, 0, NULL) ==
		    0)
		return false;
	pt = ring_key_point(key, req->klen);
	/* only the owner fetches: a peer's fetch of this key, sent on an
	 * older ring, is answered from what is here */
	if (!c->ring || ring_owner(c->ring, pt) != dp_cfg->self)
		return false;
	for (unsigned i = c->warm->n; i-- > 0;) {
		const struct warm_offer *o = &c->warm->o[i];

		if (o->until_ms > c->warm_now &&
		    ring_range_has(o->rs, o->n, pt) &&
		    bloom_maybe(o->bf, req->hv)) {
			*member = o->member;
			return true;
		}
	}
	return false;
}

/* Runs the request that waited, and sends its reply on its way. */
static void finish(struct dp_core *c, struct dp_msg *m)
{
	int rc;

	m->reply.len = 0;
	rc = proto_execute(c->node, m->bytes.buf, &m->req, &m->reply);
	if (m->strip_end)
		dp_strip_end(&m->reply, 0);
	m->close = rc == -EPIPE || rc == -ENOMEM;
	if (m->src == c->id) {
		dp_conn_reply(c, m);
	} else {
		m->kind = MSG_REPLY;
		dp_msg_send(c, m->src, m);
	}
}

void dp_warm_fetch(struct dp_core *c, struct dp_msg *m, unsigned member)
{
	struct proto_parser ps = {.item_size_max = 1024 * 1024};
	const char *key = m->bytes.buf + m->req.key_off;
	struct dp_msg *f = dp_msg_get(c);
	size_t n;

	bloom_add(c->tried, m->req.hv);
	if (!f ||
	    proto_out_reserve(&f->bytes, 4 * (PROTO_KEY_MAX + 2) / 3 + 32)) {
		if (f)
			dp_msg_put(c, f);
		finish(c, m);
		return;
	}
	memcpy(f->bytes.buf, "mg ", 3);
	n = 3 +
	    dp_b64_encode((const uint8_t *)key, m->req.klen, f->bytes.buf + 3);
	memcpy(f->bytes.buf + n, " b v f t\r\n", 10);
	f->bytes.len = n + 10;
	if (proto_parse(&ps, f->bytes.buf, f->bytes.len, &f->req) !=
		    f->bytes.len ||
	    f->req.cmd != PROTO_MG) {
		dp_msg_put(c, f);
		finish(c, m);
		return;
	}
	f->kind = MSG_FETCH;
	f->conn = NULL;
	f->orig = m;
	c->warm_fetches++;
	dp_fwd_send(c, member, f, f->bytes.buf);
}

/* A number at p, up to a space or the line's end; false if none. */
static bool num_at(const char *p, const char *end, long long *v)
{
	bool neg = p < end && *p == '-';
	long long x = 0;
	const char *q = p + neg;

	if (q >= end || *q < '0' || *q > '9')
		return false;
	for (; q < end && *q >= '0' && *q <= '9'; q++) {
		x = x * 10 + (*q - '0');
		if (x > (1ll << 40))
			return false;
	}
	*v = neg ? -x : x;
	return q == end || *q == ' ';
}

/* Stores what a fetch brought ("VA <len> <flags>\r\n<data>\r\n"), as an
 * add. Returns whether it did. */
static bool store_fetched(struct dp_core *c, const struct dp_msg *f,
			  const struct dp_msg *m)
{
	const char *p = f->reply.buf, *end, *nl;
	long long len = -1, flags = 0, ttl = -1, v;
	struct cache_shard *s = proto_node_shard(c->node, 0);
	struct cache_store st = {.mode = CACHE_ADD};

	if (f->reply.len < 5 || memcmp(p, "VA ", 3) != 0)
		return false;
	nl = memchr(p, '\n', f->reply.len);
	if (!nl || nl == p || nl[-1] != '\r')
		return false;
	end = nl - 1;
	for (const char *t = p + 3; t < end;) {
		if (len < 0) {
			if (!num_at(t, end, &len) || len < 0)
				return false;
		} else if (*t == 'f' && num_at(t + 1, end, &v) && v >= 0 &&
			   v <= UINT32_MAX) {
			flags = v;
		} else if (*t == 't' && num_at(t + 1, end, &v)) {
			ttl = v;
		} else if (*t == 'X') {
			return false; /* stale there: not worth having */
		}
		while (t < end && *t != ' ')
			t++;
		while (t < end && *t == ' ')
			t++;
	}
	if (len < 0 || (size_t)(nl + 1 - p) + (size_t)len + 2 > f->reply.len ||
	    (ttl != -1 && ttl <= 0))
		return false;
	st.hv = m->req.hv;
	st.key = m->bytes.buf + m->req.key_off;
	st.klen = m->req.klen;
	st.value = nl + 1;
	st.vlen = (uint32_t)len;
	st.flags = (uint32_t)flags;
	st.exptime = ttl == -1 ? 0 : cache_time(s) + (uint32_t)ttl;
	return cache_store(s, &st, NULL) == 0;
}

void dp_warm_done(struct dp_core *c, struct dp_msg *f)
{
	struct dp_msg *m = f->orig;

	if (store_fetched(c, f, m))
		c->warm_hits++;
	else
		c->warm_misses++;
	dp_msg_put(c, f);
	finish(c, m);
}

/* A fetch that never ran (the node stops): lets go of both. */
void dp_warm_drop(struct dp_core *c, struct dp_msg *f)
{
	struct dp_msg *m = f->orig;

	if (m->src == c->id)
		dp_msg_put(c, m);
	else
		dp_msg_free(m);
	dp_msg_put(c, f);
}

/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * SWIM with Lifeguard's refinements: see gossip.h for what it does and
 * who drives it.
 *
 * A message, little endian, then the MAC when the cluster has a key:
 *
 *   OFFSET SIZE  FIELD
 *   0      4     magic "MLG1"
 *   4      1     type (MSG_*)
 *   5      1     0
 *   6      2     number of updates
 *   8      8     counter: the sender's clock in us, strictly increasing
 *   16     4     sender IPv4 (network order)
 *   20     2     sender port
 *   22     2     0
 *   24     4     sequence number (ping, ping-req, ack, nack)
 *   28     4     target IPv4: the member the probe is about
 *   32     2     target port
 *   34     2     0
 *   36     ...   updates
 *   end-32 32    HMAC-SHA256 of everything before it
 *
 * An update:
 *
 *   0      1     state (enum gossip_state)
 *   1      1     id length (1..GOSSIP_ID_MAX-1)
 *   2      1     service length (1..GOSSIP_SERVICE_MAX-1)
 *   3      1     0
 *   4      4     incarnation
 *   8      4     weight
 *   12     4     member IPv4
 *   16     2     member port
 *   18     2     0
 *   20     4     from IPv4: who suspected or declared it
 *   24     2     from port
 *   26     2     0
 *   28     ...   id, then service (no NULs)
 *
 * A push-pull state is a message of type MSG_STATE with every member as
 * an update, up to GOSSIP_STATE_MAX bytes.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "gossip.h"

#define HDR_LEN	    36
#define UPD_FIXED   28
#define MAGIC	    "MLG1"
#define CONFIRM_MAX 8
#define RELAY_MAX   64
#define REPLAY_N    32	/* counters remembered per sender */
#define STRANGER_N  256 /* and for senders not yet members */
#define ADDR_SLOTS  (2 * GOSSIP_MEMBER_MAX)

enum msg_type {
	MSG_PING = 1,
	MSG_PING_REQ,
	MSG_ACK,
	MSG_NACK,
	MSG_GOSSIP,
	MSG_STATE,
};

struct mem {
	struct gossip_member m;
	/* who suspected or declared it; for a suspect, the latest to
	 * confirm, as its update says */
	struct gossip_addr from;
	/* every independent suspicion: the first, then confirmations */
	struct gossip_addr suspecters[CONFIRM_MAX + 1];
	unsigned nconfirm;
	uint64_t suspect_start;
	unsigned tx_left; /* times its update is still to be sent */
	bool queued;
	uint64_t seen[REPLAY_N]; /* its last counters */
	unsigned nseen, seen_pos;
};

struct relay {
	uint32_t seq;	   /* of our ping to the target */
	uint32_t orig_seq; /* of the requester's probe */
	struct gossip_addr requester, target;
	uint64_t deadline;
};

struct probe {
	bool active, acked, indirect;
	uint32_t seq;
	unsigned target;
	unsigned nacks, expected_nacks;
	uint64_t timeout_at, deadline;
};

struct gossip {
	struct gossip_params p;
	uint8_t key[GOSSIP_KEY_MAX];
	struct mem *mem; /* mem[0] is this member */
	unsigned nmem;
	uint32_t *slots; /* addr hash -> index + 1 */
	unsigned *order; /* probe order, reshuffled each round */
	unsigned norder, order_pos;
	unsigned *bcast; /* members with an update to send */
	unsigned nbcast;
	unsigned *suspects;
	unsigned nsuspects;
	struct relay relays[RELAY_MAX];
	unsigned nrelays;
	struct probe probe;
	uint32_t seq;
	uint64_t counter;
	uint64_t rng;
	unsigned awareness;
	unsigned nlive; /* members alive or suspect, this one included */
	bool leaving;
	uint64_t next_probe, next_gossip, next_pushpull;
	struct {
		struct gossip_addr addr;
		uint64_t counter;
	} strangers[STRANGER_N];
	unsigned stranger_pos;
	struct gossip_stats st;
	uint8_t buf[GOSSIP_MTU];
};

/* ---------------------------------------------------------------------
 * Little helpers
 * ------------------------------------------------------------------- */

static uint64_t rnd(struct gossip *g)
{
	uint64_t x = g->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	g->rng = x;
	return x * 0x2545f4914f6cdd1dull;
}

static unsigned rnd_below(struct gossip *g, unsigned n)
{
	return (unsigned)((rnd(g) >> 32) * n >> 32);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void put_addr(uint8_t *p, const struct gossip_addr *a)
{
	memcpy(p, &a->ip, 4);
	put16(p + 4, a->port);
}

static struct gossip_addr get_addr(const uint8_t *p)
{
	struct gossip_addr a;

	memcpy(&a.ip, p, 4);
	a.port = get16(p + 4);
	return a;
}

static bool addr_eq(const struct gossip_addr *a, const struct gossip_addr *b)
{
	return a->ip == b->ip && a->port == b->port;
}

static unsigned addr_hash(const struct gossip_addr *a)
{
	uint64_t k = ((uint64_t)a->ip << 16 | a->port) * 0x9e3779b97f4a7c15ull;

	return (unsigned)(k >> 40) & (ADDR_SLOTS - 1);
}

static int find(const struct gossip *g, const struct gossip_addr *a)
{
	for (unsigned h = addr_hash(a);; h = (h + 1) & (ADDR_SLOTS - 1)) {
		uint32_t v = g->slots[h];

		if (!v)
			return -1;
		if (addr_eq(&g->mem[v - 1].m.addr, a))
			return (int)(v - 1);
	}
}

static bool member_live(const struct mem *m)
{
	return m->m.state == GOSSIP_ALIVE || m->m.state == GOSSIP_SUSPECT;
}

static void changed(struct gossip *g, unsigned idx)
{
	struct gossip_member m;

	if (!g->p.io->changed)
		return;
	m = g->mem[idx].m;
	m.self = idx == 0;
	g->p.io->changed(g->p.io->arg, &m);
}

/* ---------------------------------------------------------------------
 * Dissemination
 * ------------------------------------------------------------------- */

static unsigned retransmit_limit(const struct gossip *g)
{
	return g->p.retransmit_mult *
	       (unsigned)ceil(log10((double)g->nlive + 1.0));
}

static void queue(struct gossip *g, unsigned i)
{
	struct mem *m = &g->mem[i];

	m->tx_left = retransmit_limit(g);
	if (!m->queued && m->tx_left) {
		m->queued = true;
		g->bcast[g->nbcast++] = i;
	}
}

static size_t update_len(const struct mem *m)
{
	return UPD_FIXED + strlen(m->m.id) + strlen(m->m.service);
}

static size_t put_update(uint8_t *p, const struct mem *m)
{
	size_t il = strlen(m->m.id), sl = strlen(m->m.service);

	memset(p, 0, UPD_FIXED);
	p[0] = (uint8_t)m->m.state;
	p[1] = (uint8_t)il;
	p[2] = (uint8_t)sl;
	put32(p + 4, m->m.incarnation);
	put32(p + 8, m->m.weight);
	put_addr(p + 12, &m->m.addr);
	put_addr(p + 20, &m->from);
	memcpy(p + UPD_FIXED, m->m.id, il);
	memcpy(p + UPD_FIXED + il, m->m.service, sl);
	return UPD_FIXED + il + sl;
}

/* The least-sent updates first: an insertion sort, the list being short
 * and nearly sorted from the last time. */
static void sort_bcast(struct gossip *g)
{
	for (unsigned i = 1; i < g->nbcast; i++) {
		unsigned v = g->bcast[i], j = i;

		while (j > 0 &&
		       g->mem[g->bcast[j - 1]].tx_left < g->mem[v].tx_left) {
			g->bcast[j] = g->bcast[j - 1];
			j--;
		}
		g->bcast[j] = v;
	}
}

/* ---------------------------------------------------------------------
 * Messages out
 * ------------------------------------------------------------------- */

static uint64_t next_counter(struct gossip *g, uint64_t now_ms)
{
	uint64_t c = now_ms * 1000;

	if (c <= g->counter)
		c = g->counter + 1;
	g->counter = c;
	return c;
}

static void header(struct gossip *g, uint8_t *p, uint64_t now, int type,
		   uint32_t seq, const struct gossip_addr *target)
{
	memset(p, 0, HDR_LEN);
	memcpy(p, MAGIC, 4);
	p[4] = (uint8_t)type;
	put64(p + 8, next_counter(g, now));
	put_addr(p + 16, &g->p.addr);
	put32(p + 24, seq);
	if (target)
		put_addr(p + 28, target);
}

static size_t mac_len(const struct gossip *g)
{
	return g->p.key ? GOSSIP_MAC_LEN : 0;
}

static void seal(const struct gossip *g, uint8_t *p, size_t len)
{
	unsigned out = 0;

	if (g->p.key)
		HMAC(EVP_sha256(), g->key, (int)g->p.keylen, p, len, p + len,
		     &out);
}

/* Sends a message with as many updates as fit; first, if not -1, is
 * the member whose update goes first (a suspect hears its suspicion). */
static void send_msg(struct gossip *g, uint64_t now,
		     const struct gossip_addr *to, int type, uint32_t seq,
		     const struct gossip_addr *target, int first)
{
	uint8_t *p = g->buf;
	size_t len = HDR_LEN, room = GOSSIP_MTU - mac_len(g);
	unsigned n = 0, keep = 0;

	header(g, p, now, type, seq, target);
	if (first >= 0 && update_len(&g->mem[first]) <= room - len) {
		len += put_update(p + len, &g->mem[first]);
		n++;
	}
	sort_bcast(g);
	for (unsigned i = 0; i < g->nbcast; i++) {
		unsigned idx = g->bcast[i];
		struct mem *m = &g->mem[idx];

		if ((int)idx != first && update_len(m) <= room - len &&
		    n < UINT16_MAX) {
			len += put_update(p + len, m);
			n++;
			m->tx_left--;
		}
		if (m->tx_left)
			g->bcast[keep++] = idx;
		else
			m->queued = false;
	}
	g->nbcast = keep;
	put16(p + 6, (uint16_t)n);
	seal(g, p, len);
	len += mac_len(g);
	g->st.sent++;
	g->st.sent_bytes += len;
	g->p.io->send(g->p.io->arg, to, p, len);
}

/* ---------------------------------------------------------------------
 * Applying what others say
 * ------------------------------------------------------------------- */

struct update {
	enum gossip_state state;
	uint32_t incarnation, weight;
	struct gossip_addr addr, from;
	char id[GOSSIP_ID_MAX];
	char service[GOSSIP_SERVICE_MAX];
};

static unsigned suspicion_timeout(const struct gossip *g, unsigned confirms)
{
	unsigned n = g->nlive, k = g->p.indirect_probes;
	double scale = fmax(1.0, log10((double)(n ? n : 1)));
	double min = g->p.suspicion_mult * scale * g->p.probe_interval_ms;
	double max = g->p.suspicion_max_mult * min, t;

	if (n < 2 + k)
		k = n > 2 ? n - 2 : 0;
	if (k == 0)
		return (unsigned)min;
	t = max - (max - min) * log((double)confirms + 1) / log((double)k + 1);
	return (unsigned)fmax(min, t);
}

static uint64_t suspect_deadline(const struct gossip *g, const struct mem *m)
{
	return m->suspect_start + suspicion_timeout(g, m->nconfirm);
}

static void suspects_drop(struct gossip *g, unsigned idx)
{
	for (unsigned i = 0; i < g->nsuspects; i++)
		if (g->suspects[i] == idx) {
			g->suspects[i] = g->suspects[--g->nsuspects];
			return;
		}
}

static void set_state(struct gossip *g, unsigned idx, enum gossip_state s,
		      uint64_t now)
{
	struct mem *m = &g->mem[idx];

	if (m->m.state == GOSSIP_SUSPECT && s != GOSSIP_SUSPECT)
		suspects_drop(g, idx);
	if (s == GOSSIP_SUSPECT && m->m.state != GOSSIP_SUSPECT)
		g->suspects[g->nsuspects++] = idx;
	g->nlive += (unsigned)(s <= GOSSIP_SUSPECT) - (unsigned)member_live(m);
	m->m.state = s;
	m->m.changed_ms = now;
}

static int add_member(struct gossip *g, const struct update *u, uint64_t now)
{
	struct mem *m;
	unsigned h;

	if (g->nmem == GOSSIP_MEMBER_MAX)
		return -1;
	m = &g->mem[g->nmem];
	memset(m, 0, sizeof(*m));
	m->m.addr = u->addr;
	memcpy(m->m.id, u->id, sizeof(m->m.id));
	memcpy(m->m.service, u->service, sizeof(m->m.service));
	m->m.weight = u->weight;
	m->m.incarnation = u->incarnation;
	m->m.state = GOSSIP_DEAD; /* set_state below makes it what it is */
	m->m.changed_ms = now;
	for (h = addr_hash(&u->addr); g->slots[h];
	     h = (h + 1) & (ADDR_SLOTS - 1))
		;
	g->slots[h] = g->nmem + 1;
	/* a new member enters the probe order at a random place */
	if (g->norder) {
		unsigned at = rnd_below(g, g->norder + 1);

		g->order[g->norder++] = g->order[at];
		g->order[at] = g->nmem;
	} else {
		g->order[g->norder++] = g->nmem;
	}
	return (int)g->nmem++;
}

static void refute(struct gossip *g, uint32_t inc, uint64_t now)
{
	struct mem *self = &g->mem[0];

	self->m.incarnation = inc + 1;
	self->m.changed_ms = now;
	g->st.refutations++;
	if (g->awareness + 1 < g->p.awareness_max)
		g->awareness++;
	queue(g, 0);
}

static void suspect(struct gossip *g, unsigned idx, uint32_t inc,
		    const struct gossip_addr *from, uint64_t now)
{
	struct mem *m = &g->mem[idx];

	if (m->m.state == GOSSIP_SUSPECT && inc == m->m.incarnation) {
		/* an independent confirmation shortens the timeout, and is
		 * passed on so that others count it too */
		for (unsigned i = 0; i <= m->nconfirm; i++)
			if (addr_eq(from, &m->suspecters[i]))
				return;
		if (m->nconfirm == CONFIRM_MAX)
			return;
		m->suspecters[++m->nconfirm] = *from;
		m->from = *from;
		queue(g, idx);
		return;
	}
	m->m.incarnation = inc;
	m->from = *from;
	m->suspecters[0] = *from;
	m->nconfirm = 0;
	m->suspect_start = now;
	set_state(g, idx, GOSSIP_SUSPECT, now);
	g->st.suspicions += addr_eq(from, &g->p.addr);
	queue(g, idx);
	changed(g, idx);
}

static void apply(struct gossip *g, const struct update *u, bool from_state,
		  uint64_t now)
{
	enum gossip_state s = u->state;
	struct mem *m;
	int idx;

	if (addr_eq(&u->addr, &g->p.addr)) {
		struct mem *self = &g->mem[0];

		if (g->leaving)
			return;
		if (s == GOSSIP_ALIVE ? u->incarnation > self->m.incarnation
				      : u->incarnation >= self->m.incarnation)
			refute(g, u->incarnation, now);
		return;
	}
	if (from_state && s == GOSSIP_DEAD)
		s = GOSSIP_SUSPECT; /* what others declared, we suspect */
	idx = find(g, &u->addr);
	if (idx < 0) {
		if (s != GOSSIP_ALIVE && s != GOSSIP_SUSPECT)
			return;
		idx = add_member(g, u, now);
		if (idx < 0)
			return;
		if (s == GOSSIP_SUSPECT) {
			suspect(g, (unsigned)idx, u->incarnation, &u->from,
				now);
		} else {
			set_state(g, (unsigned)idx, GOSSIP_ALIVE, now);
			queue(g, (unsigned)idx);
			changed(g, (unsigned)idx);
		}
		return;
	}
	m = &g->mem[idx];
	switch (s) {
	case GOSSIP_ALIVE:
		if (u->incarnation <= m->m.incarnation)
			return;
		m->m.incarnation = u->incarnation;
		m->m.weight = u->weight;
		memcpy(m->m.id, u->id, sizeof(m->m.id));
		memcpy(m->m.service, u->service, sizeof(m->m.service));
		set_state(g, (unsigned)idx, GOSSIP_ALIVE, now);
		queue(g, (unsigned)idx);
		changed(g, (unsigned)idx);
		return;
	case GOSSIP_SUSPECT:
		if (u->incarnation < m->m.incarnation || !member_live(m))
			return;
		suspect(g, (unsigned)idx, u->incarnation, &u->from, now);
		return;
	case GOSSIP_DEAD:
	case GOSSIP_LEFT:
		if (u->incarnation < m->m.incarnation || !member_live(m))
			return;
		m->m.incarnation = u->incarnation;
		m->from = u->from;
		set_state(g, (unsigned)idx, s, now);
		queue(g, (unsigned)idx);
		changed(g, (unsigned)idx);
		return;
	}
}

/* ---------------------------------------------------------------------
 * Messages in
 * ------------------------------------------------------------------- */

/* Checks an update at p (at most left bytes); its length, or 0. */
static size_t parse_update(const uint8_t *p, size_t left, struct update *u)
{
	size_t il, sl;

	if (left < UPD_FIXED || p[0] > GOSSIP_LEFT)
		return 0;
	il = p[1];
	sl = p[2];
	if (!il || il >= GOSSIP_ID_MAX || !sl || sl >= GOSSIP_SERVICE_MAX ||
	    left < UPD_FIXED + il + sl)
		return 0;
	if (memchr(p + UPD_FIXED, 0, il + sl))
		return 0;
	u->state = (enum gossip_state)p[0];
	u->incarnation = get32(p + 4);
	u->weight = get32(p + 8);
	u->addr = get_addr(p + 12);
	u->from = get_addr(p + 20);
	memset(u->id, 0, sizeof(u->id));
	memset(u->service, 0, sizeof(u->service));
	memcpy(u->id, p + UPD_FIXED, il);
	memcpy(u->service, p + UPD_FIXED + il, sl);
	return UPD_FIXED + il + sl;
}

/* Whether counter c from sender is fresh; records it. */
static bool fresh(struct gossip *g, const struct gossip_addr *sender,
		  uint64_t c, uint64_t now)
{
	uint64_t t = c / 1000, w = g->p.replay_window_ms;
	int idx = find(g, sender);

	if (t + w < now || t > now + w)
		return false;
	if (idx >= 0) {
		struct mem *m = &g->mem[idx];
		uint64_t oldest = UINT64_MAX;

		for (unsigned i = 0; i < m->nseen; i++) {
			if (m->seen[i] == c)
				return false;
			if (m->seen[i] < oldest)
				oldest = m->seen[i];
		}
		/* older than everything remembered: it may have been seen */
		if (m->nseen == REPLAY_N && c < oldest)
			return false;
		m->seen[m->seen_pos] = c;
		m->seen_pos = (m->seen_pos + 1) % REPLAY_N;
		if (m->nseen < REPLAY_N)
			m->nseen++;
		return true;
	}
	for (unsigned i = 0; i < STRANGER_N; i++)
		if (g->strangers[i].counter == c &&
		    addr_eq(&g->strangers[i].addr, sender))
			return false;
	g->strangers[g->stranger_pos].addr = *sender;
	g->strangers[g->stranger_pos].counter = c;
	g->stranger_pos = (g->stranger_pos + 1) % STRANGER_N;
	return true;
}

/* Authenticates and checks a message; on success the updates start at
 * HDR_LEN and end at *body_end. */
static int check_msg(struct gossip *g, uint64_t now, const uint8_t *p,
		     size_t len, size_t max, size_t *body_end)
{
	uint8_t mac[EVP_MAX_MD_SIZE];
	unsigned maclen = 0, n;
	size_t off = HDR_LEN, end;
	struct update u;

	if (len > max) {
		g->st.oversized++;
		return -EMSGSIZE;
	}
	if (len < HDR_LEN + mac_len(g) || memcmp(p, MAGIC, 4)) {
		g->st.malformed++;
		return -EBADMSG;
	}
	end = len - mac_len(g);
	if (g->p.key) {
		HMAC(EVP_sha256(), g->key, (int)g->p.keylen, p, end, mac,
		     &maclen);
		if (CRYPTO_memcmp(mac, p + end, GOSSIP_MAC_LEN)) {
			g->st.bad_mac++;
			return -EPERM;
		}
	}
	if (p[4] < MSG_PING || p[4] > MSG_STATE) {
		g->st.malformed++;
		return -EBADMSG;
	}
	n = get16(p + 6);
	for (unsigned i = 0; i < n; i++) {
		size_t l = parse_update(p + off, end - off, &u);

		if (!l) {
			g->st.malformed++;
			return -EBADMSG;
		}
		off += l;
	}
	if (off != end) {
		g->st.malformed++;
		return -EBADMSG;
	}
	{
		struct gossip_addr sender = get_addr(p + 16);

		if (!fresh(g, &sender, get64(p + 8), now)) {
			g->st.replayed++;
			return -EALREADY;
		}
	}
	*body_end = end;
	g->st.received++;
	g->st.received_bytes += len;
	return 0;
}

static void apply_all(struct gossip *g, const uint8_t *p, size_t end,
		      bool from_state, uint64_t now)
{
	size_t off = HDR_LEN;
	struct update u;

	for (unsigned i = 0, n = get16(p + 6); i < n; i++) {
		off += parse_update(p + off, end - off, &u);
		apply(g, &u, from_state, now);
	}
}

static void relay_add(struct gossip *g, uint32_t seq, uint32_t orig,
		      const struct gossip_addr *req,
		      const struct gossip_addr *target, uint64_t deadline)
{
	struct relay *r;

	if (g->nrelays == RELAY_MAX) /* the oldest goes */
		memmove(&g->relays[0], &g->relays[1],
			sizeof(g->relays[0]) * --g->nrelays);
	r = &g->relays[g->nrelays++];
	r->seq = seq;
	r->orig_seq = orig;
	r->requester = *req;
	r->target = *target;
	r->deadline = deadline;
}

static unsigned scaled(const struct gossip *g, unsigned ms)
{
	return ms * (g->awareness + 1);
}

int gossip_recv(struct gossip *g, uint64_t now, const struct gossip_addr *from,
		const void *buf, size_t len)
{
	const uint8_t *p = buf;
	struct gossip_addr sender, target;
	uint32_t seq;
	size_t end;
	int rc, idx;

	(void)from; /* the sender is the one the MAC vouches for */
	rc = check_msg(g, now, p, len, GOSSIP_MTU, &end);
	if (rc)
		return rc;
	sender = get_addr(p + 16);
	target = get_addr(p + 28);
	seq = get32(p + 24);
	/* the updates first: an ack may carry a refutation */
	apply_all(g, p, end, false, now);
	if (g->leaving && p[4] != MSG_ACK)
		return 0;
	switch (p[4]) {
	case MSG_PING:
		if (addr_eq(&target, &g->p.addr))
			send_msg(g, now, &sender, MSG_ACK, seq, &target, -1);
		break;
	case MSG_PING_REQ:
		idx = find(g, &target);
		g->seq++;
		relay_add(g, g->seq, seq, &sender, &target,
			  now + scaled(g, g->p.probe_timeout_ms));
		send_msg(g, now, &target, MSG_PING, g->seq, &target, idx);
		break;
	case MSG_ACK:
		if (g->probe.active && seq == g->probe.seq &&
		    addr_eq(&target, &g->mem[g->probe.target].m.addr)) {
			g->probe.acked = true;
			break;
		}
		for (unsigned i = 0; i < g->nrelays; i++) {
			struct relay *r = &g->relays[i];

			if (r->seq != seq || !addr_eq(&r->target, &sender))
				continue;
			send_msg(g, now, &r->requester, MSG_ACK, r->orig_seq,
				 &r->target, -1);
			*r = g->relays[--g->nrelays];
			break;
		}
		break;
	case MSG_NACK:
		if (g->probe.active && seq == g->probe.seq)
			g->probe.nacks++;
		break;
	default:
		break;
	}
	return 0;
}

/* ---------------------------------------------------------------------
 * Timers
 * ------------------------------------------------------------------- */

/* A live member other than self and skip, or -1. */
static int random_live(struct gossip *g, int skip)
{
	unsigned n = 0;
	int pick = -1;

	/* most members are live: a few random tries find one */
	for (unsigned tries = 0; g->nmem > 1 && tries < 16; tries++) {
		unsigned i = 1 + rnd_below(g, g->nmem - 1);

		if ((int)i != skip && member_live(&g->mem[i]))
			return (int)i;
	}
	/* reservoir sampling over the live members */
	for (unsigned i = 1; i < g->nmem; i++) {
		if ((int)i == skip || !member_live(&g->mem[i]))
			continue;
		if (rnd_below(g, ++n) == 0)
			pick = (int)i;
	}
	return pick;
}

static int next_target(struct gossip *g)
{
	for (unsigned tries = 0; tries < 2 * g->norder + 1; tries++) {
		unsigned idx;

		if (g->order_pos >= g->norder) {
			/* a new round in a new order (Fisher-Yates) */
			for (unsigned i = g->norder; i > 1; i--) {
				unsigned j = rnd_below(g, i),
					 t = g->order[i - 1];

				g->order[i - 1] = g->order[j];
				g->order[j] = t;
			}
			g->order_pos = 0;
		}
		if (!g->norder)
			return -1;
		idx = g->order[g->order_pos++];
		if (member_live(&g->mem[idx]))
			return (int)idx;
	}
	return -1;
}

static void probe_start(struct gossip *g, uint64_t now)
{
	int t = next_target(g);

	g->next_probe = now + scaled(g, g->p.probe_interval_ms);
	if (t < 0)
		return;
	g->seq++;
	g->probe = (struct probe){
		.active = true,
		.seq = g->seq,
		.target = (unsigned)t,
		.timeout_at = now + scaled(g, g->p.probe_timeout_ms),
		.deadline = g->next_probe,
	};
	g->st.probes++;
	send_msg(g, now, &g->mem[t].m.addr, MSG_PING, g->seq, &g->mem[t].m.addr,
		 g->mem[t].m.state == GOSSIP_SUSPECT ? t : -1);
}

static void probe_indirect(struct gossip *g, uint64_t now)
{
	struct probe *pr = &g->probe;
	const struct gossip_addr *target = &g->mem[pr->target].m.addr;
	int picked[16];
	unsigned n = 0, want = g->p.indirect_probes;

	pr->indirect = true;
	if (want > 16)
		want = 16;
	for (unsigned tries = 0; n < want && tries < 4 * want; tries++) {
		int c = random_live(g, (int)pr->target);
		bool dup = false;

		if (c < 0)
			break;
		for (unsigned i = 0; i < n; i++)
			dup |= picked[i] == c;
		if (dup)
			continue;
		picked[n++] = c;
		send_msg(g, now, &g->mem[c].m.addr, MSG_PING_REQ, pr->seq,
			 target, -1);
	}
	pr->expected_nacks = n;
}

static void probe_end(struct gossip *g, uint64_t now)
{
	struct probe *pr = &g->probe;
	struct mem *m = &g->mem[pr->target];

	pr->active = false;
	if (pr->acked) {
		if (g->awareness)
			g->awareness--;
		return;
	}
	g->st.probes_failed++;
	/* missing nacks: the fault may be ours (Lifeguard) */
	{
		unsigned nacks = pr->nacks < pr->expected_nacks
					 ? pr->nacks
					 : pr->expected_nacks;
		unsigned delta =
			pr->expected_nacks ? pr->expected_nacks - nacks : 1;

		g->awareness += delta;
		if (g->awareness >= g->p.awareness_max)
			g->awareness = g->p.awareness_max - 1;
	}
	/* a new suspicion, or a confirmation of one */
	if (member_live(m))
		suspect(g, pr->target, m->m.incarnation, &g->p.addr, now);
}

void gossip_tick(struct gossip *g, uint64_t now)
{
	struct probe *pr = &g->probe;

	if (g->leaving) {
		if (now < g->next_gossip)
			return;
		g->next_gossip = now + g->p.gossip_interval_ms;
		if (g->nbcast) {
			for (unsigned i = 0; i < g->p.gossip_nodes; i++) {
				int t = random_live(g, -1);

				if (t >= 0)
					send_msg(g, now, &g->mem[t].m.addr,
						 MSG_GOSSIP, 0, NULL, -1);
			}
		}
		return;
	}
	if (pr->active && !pr->acked && !pr->indirect && now >= pr->timeout_at)
		probe_indirect(g, now);
	if (pr->active && now >= pr->deadline)
		probe_end(g, now);
	if (!pr->active && now >= g->next_probe)
		probe_start(g, now);
	for (unsigned i = 0; i < g->nsuspects;) {
		unsigned idx = g->suspects[i];
		struct mem *m = &g->mem[idx];

		if (now < suspect_deadline(g, m)) {
			i++;
			continue;
		}
		m->from = g->p.addr;
		set_state(g, idx, GOSSIP_DEAD, now); /* drops it from here */
		g->st.declared_dead++;
		queue(g, idx);
		changed(g, idx);
	}
	for (unsigned i = 0; i < g->nrelays;) {
		struct relay *r = &g->relays[i];

		if (now < r->deadline) {
			i++;
			continue;
		}
		send_msg(g, now, &r->requester, MSG_NACK, r->orig_seq,
			 &r->target, -1);
		*r = g->relays[--g->nrelays];
	}
	if (now >= g->next_gossip) {
		g->next_gossip = now + g->p.gossip_interval_ms;
		for (unsigned i = 0; g->nbcast && i < g->p.gossip_nodes; i++) {
			int t = random_live(g, -1);

			if (t < 0)
				break;
			send_msg(g, now, &g->mem[t].m.addr, MSG_GOSSIP, 0, NULL,
				 -1);
		}
	}
}

uint64_t gossip_next_ms(const struct gossip *g)
{
	const struct probe *pr = &g->probe;
	uint64_t t = g->next_gossip;

	if (g->leaving)
		return t;
	if (pr->active) {
		if (!pr->acked && !pr->indirect && pr->timeout_at < t)
			t = pr->timeout_at;
		if (pr->deadline < t)
			t = pr->deadline;
	} else if (g->next_probe < t) {
		t = g->next_probe;
	}
	for (unsigned i = 0; i < g->nsuspects; i++) {
		uint64_t d = suspect_deadline(g, &g->mem[g->suspects[i]]);

		if (d < t)
			t = d;
	}
	for (unsigned i = 0; i < g->nrelays; i++)
		if (g->relays[i].deadline < t)
			t = g->relays[i].deadline;
	return t;
}

/* ---------------------------------------------------------------------
 * Push-pull
 * ------------------------------------------------------------------- */

ssize_t gossip_state_encode(struct gossip *g, uint64_t now, void *buf,
			    size_t cap)
{
	uint8_t *p = buf;
	size_t len = HDR_LEN;

	if (cap > GOSSIP_STATE_MAX)
		cap = GOSSIP_STATE_MAX;
	if (cap < HDR_LEN + mac_len(g))
		return -ENOSPC;
	header(g, p, now, MSG_STATE, 0, NULL);
	for (unsigned i = 0; i < g->nmem; i++) {
		if (update_len(&g->mem[i]) > cap - mac_len(g) - len)
			return -ENOSPC;
		len += put_update(p + len, &g->mem[i]);
	}
	put16(p + 6, (uint16_t)g->nmem);
	seal(g, p, len);
	return (ssize_t)(len + mac_len(g));
}

int gossip_state_merge(struct gossip *g, uint64_t now, const void *buf,
		       size_t len)
{
	const uint8_t *p = buf;
	size_t end;
	int rc = check_msg(g, now, p, len, GOSSIP_STATE_MAX, &end);

	if (rc)
		return rc;
	if (p[4] != MSG_STATE) {
		g->st.malformed++;
		return -EBADMSG;
	}
	g->st.pushpulls++;
	apply_all(g, p, end, true, now);
	return 0;
}

bool gossip_pushpull_target(struct gossip *g, uint64_t now,
			    struct gossip_addr *to)
{
	unsigned dead = 0;
	int pick = -1;

	if (now < g->next_pushpull || g->leaving)
		return false;
	pick = random_live(g, -1);
	/* alone, or now and then: one declared dead, so that a partition
	 * heals when its two sides can talk again */
	for (unsigned i = 1; i < g->nmem; i++)
		dead += g->mem[i].m.state == GOSSIP_DEAD;
	if (dead && (pick < 0 || rnd_below(g, 2) == 0)) {
		unsigned k = rnd_below(g, dead);

		for (unsigned i = 1; i < g->nmem; i++)
			if (g->mem[i].m.state == GOSSIP_DEAD && k-- == 0)
				pick = (int)i;
	}
	g->next_pushpull =
		now + (pick < 0 || g->nlive < 2 ? g->p.probe_interval_ms
						: g->p.pushpull_interval_ms);
	if (pick < 0)
		return false;
	*to = g->mem[pick].m.addr;
	return true;
}

/* ---------------------------------------------------------------------
 * This member
 * ------------------------------------------------------------------- */

void gossip_leave(struct gossip *g, uint64_t now)
{
	struct mem *self = &g->mem[0];

	if (g->leaving)
		return;
	g->leaving = true;
	self->m.incarnation++;
	set_state(g, 0, GOSSIP_LEFT, now);
	self->from = g->p.addr;
	queue(g, 0);
	g->next_gossip = now;
	changed(g, 0);
}

void gossip_rejoin(struct gossip *g, uint64_t now)
{
	struct mem *self = &g->mem[0];

	if (!g->leaving)
		return;
	g->leaving = false;
	self->m.incarnation++;
	set_state(g, 0, GOSSIP_ALIVE, now);
	self->from = g->p.addr;
	queue(g, 0);
	g->next_probe = now;
	changed(g, 0);
}

void gossip_set_weight(struct gossip *g, uint64_t now, uint32_t weight)
{
	struct mem *self = &g->mem[0];

	if (g->leaving || weight == self->m.weight)
		return;
	self->m.weight = weight;
	self->m.incarnation++;
	self->m.changed_ms = now;
	queue(g, 0);
	changed(g, 0);
}

unsigned gossip_members(const struct gossip *g, struct gossip_member *out,
			unsigned max)
{
	for (unsigned i = 0; i < g->nmem && i < max; i++) {
		out[i] = g->mem[i].m;
		out[i].self = i == 0;
	}
	return g->nmem;
}

unsigned gossip_awareness(const struct gossip *g)
{
	return g->awareness;
}

void gossip_get_stats(const struct gossip *g, struct gossip_stats *st)
{
	*st = g->st;
}

const char *gossip_state_name(enum gossip_state s)
{
	static const char *const names[] = {"alive", "suspect", "dead", "left"};

	return (unsigned)s < 4 ? names[s] : "?";
}

/* ---------------------------------------------------------------------
 * Lifecycle
 * ------------------------------------------------------------------- */

#define DEFAULT(f, v)                                                          \
	do {                                                                   \
		if (!p.f)                                                      \
			p.f = (v);                                             \
	} while (0)

int gossip_create(const struct gossip_params *params, struct gossip **out)
{
	struct gossip_params p = *params;
	struct gossip *g;
	struct mem *self;

	DEFAULT(probe_interval_ms, 1000);
	DEFAULT(probe_timeout_ms, 500);
	DEFAULT(gossip_interval_ms, 200);
	DEFAULT(pushpull_interval_ms, 30000);
	DEFAULT(replay_window_ms, 30000);
	DEFAULT(indirect_probes, 3);
	DEFAULT(suspicion_mult, 4);
	DEFAULT(suspicion_max_mult, 6);
	DEFAULT(retransmit_mult, 4);
	DEFAULT(gossip_nodes, 3);
	DEFAULT(awareness_max, 8);
	if (!p.io || !p.io->send || !p.id || !p.service || !p.id[0] ||
	    !p.service[0] || strlen(p.id) >= GOSSIP_ID_MAX ||
	    strlen(p.service) >= GOSSIP_SERVICE_MAX ||
	    (p.key && (p.keylen < GOSSIP_KEY_MIN || p.keylen > GOSSIP_KEY_MAX)))
		return -EINVAL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->mem = calloc(GOSSIP_MEMBER_MAX, sizeof(*g->mem));
	g->slots = calloc(ADDR_SLOTS, sizeof(*g->slots));
	g->order = calloc(GOSSIP_MEMBER_MAX, sizeof(*g->order));
	g->bcast = calloc(GOSSIP_MEMBER_MAX, sizeof(*g->bcast));
	g->suspects = calloc(GOSSIP_MEMBER_MAX, sizeof(*g->suspects));
	if (!g->mem || !g->slots || !g->order || !g->bcast || !g->suspects) {
		gossip_free(g);
		return -ENOMEM;
	}
	if (p.key)
		memcpy(g->key, p.key, p.keylen);
	p.key = p.key ? g->key : NULL;
	g->p = p;
	g->rng = p.seed * 0x9e3779b97f4a7c15ull + 0x6a09e667f3bcc909ull;
	if (!g->rng)
		g->rng = 1;
	self = &g->mem[0];
	self->m.addr = p.addr;
	strcpy(self->m.id, p.id);
	strcpy(self->m.service, p.service);
	self->m.weight = p.weight;
	self->m.state = GOSSIP_ALIVE;
	self->m.changed_ms = p.now_ms;
	self->from = p.addr;
	g->slots[addr_hash(&p.addr)] = 1;
	g->nmem = 1;
	g->nlive = 1;
	/* spread the first probes of members started together */
	g->next_probe = p.now_ms + rnd_below(g, p.probe_interval_ms);
	g->next_gossip = p.now_ms + rnd_below(g, p.gossip_interval_ms);
	g->next_pushpull = p.now_ms + p.pushpull_interval_ms;
	*out = g;
	return 0;
}

void gossip_free(struct gossip *g)
{
	if (!g)
		return;
	free(g->mem);
	free(g->slots);
	free(g->order);
	free(g->bcast);
	free(g->suspects);
	OPENSSL_cleanse(g->key, sizeof(g->key));
	free(g);
}

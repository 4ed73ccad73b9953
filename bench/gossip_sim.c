/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The gossip simulator: see gossip_sim.h. Events (a datagram's delivery,
 * a member's timer) sit in one binary heap ordered by virtual time, ties
 * by the order they were made, so a run is a function of its seed.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gossip_sim.h"

#define EXTRA_MEMBERS 16 /* room for sim_join */
#define GOSSIP_PORT   7946

enum ev_kind { EV_DELIVER, EV_TICK };

struct ev {
	uint64_t t, order;
	unsigned kind, to, from;
	uint8_t *buf;
	size_t len;
};

struct node {
	struct sim *s;
	unsigned id;
	struct gossip *g;
	struct gossip_io io;
	bool running, isolated;
	bool gone; /* left: still gossiping, no longer an observer */
	unsigned slow_ms;
	uint64_t tick_at;
};

struct sim {
	struct sim_params p;
	unsigned n, cap;
	struct node *nodes;
	uint8_t *view; /* view[o * cap + i]: state o sees i in, 0xff none */
	unsigned *counts[4]; /* running observers seeing i in a state */
	uint64_t *first_down, *all_down;
	struct ev *heap;
	size_t nheap, heapcap;
	uint64_t now, order, rng;
	struct sim_counts c;
	uint8_t *state_a, *state_b;
};

static uint64_t rnd(struct sim *s)
{
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return s->rng * 0x2545f4914f6cdd1dull;
}

static double rnd01(struct sim *s)
{
	return (double)(rnd(s) >> 11) / 9007199254740992.0;
}

static struct gossip_addr addr_of(unsigned i)
{
	return (struct gossip_addr){.ip = htonl(0x0a000001u + i),
				    .port = GOSSIP_PORT};
}

static unsigned id_of(const struct gossip_addr *a)
{
	return ntohl(a->ip) - 0x0a000001u;
}

/* ---------------------------------------------------------------------
 * The heap
 * ------------------------------------------------------------------- */

static bool before(const struct ev *a, const struct ev *b)
{
	return a->t < b->t || (a->t == b->t && a->order < b->order);
}

static void push(struct sim *s, struct ev e)
{
	size_t i;

	if (s->nheap == s->heapcap) {
		s->heapcap = s->heapcap ? 2 * s->heapcap : 4096;
		s->heap = realloc(s->heap, s->heapcap * sizeof(*s->heap));
		if (!s->heap)
			abort();
	}
	e.order = s->order++;
	i = s->nheap++;
	while (i > 0 && before(&e, &s->heap[(i - 1) / 2])) {
		s->heap[i] = s->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	s->heap[i] = e;
}

static struct ev pop(struct sim *s)
{
	struct ev top = s->heap[0], last = s->heap[--s->nheap];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= s->nheap)
			break;
		if (c + 1 < s->nheap && before(&s->heap[c + 1], &s->heap[c]))
			c++;
		if (!before(&s->heap[c], &last))
			break;
		s->heap[i] = s->heap[c];
		i = c;
	}
	if (s->nheap)
		s->heap[i] = last;
	return top;
}

static void schedule(struct sim *s, struct node *nd)
{
	uint64_t t = gossip_next_ms(nd->g);

	if (t < s->now)
		t = s->now;
	if (t == nd->tick_at)
		return;
	nd->tick_at = t;
	push(s, (struct ev){.t = t, .kind = EV_TICK, .to = nd->id});
}

/* ---------------------------------------------------------------------
 * What members see
 * ------------------------------------------------------------------- */

static bool down(uint8_t st)
{
	return st == GOSSIP_DEAD || st == GOSSIP_LEFT;
}

static void check_all_down(struct sim *s, unsigned i)
{
	unsigned others = sim_running(s) -
			  (s->nodes[i].running && !s->nodes[i].gone ? 1 : 0);

	if (s->all_down[i] == UINT64_MAX && others &&
	    s->counts[GOSSIP_DEAD][i] + s->counts[GOSSIP_LEFT][i] >= others)
		s->all_down[i] = s->now;
}

static void on_changed(void *arg, const struct gossip_member *m)
{
	struct node *o = arg;
	struct sim *s = o->s;
	unsigned i = id_of(&m->addr);
	uint8_t *v = &s->view[(size_t)o->id * s->cap + i],
		st = (uint8_t)m->state;
	const struct node *t;

	if (i >= s->n || m->self || o->gone)
		return;
	t = &s->nodes[i];
	if (*v != 0xff)
		s->counts[*v][i]--;
	*v = st;
	s->counts[st][i]++;
	/* an episode: the first member to see a healthy one so */
	if (t->running && !t->isolated && !t->slow_ms && !o->isolated &&
	    s->counts[st][i] == 1) {
		s->c.false_suspicions += st == GOSSIP_SUSPECT;
		s->c.false_deaths += st == GOSSIP_DEAD;
	}
	if (down(st)) {
		if (s->first_down[i] == UINT64_MAX)
			s->first_down[i] = s->now;
		check_all_down(s, i);
	}
}

static void on_send(void *arg, const struct gossip_addr *to, const void *buf,
		    size_t len)
{
	struct node *from = arg;
	struct sim *s = from->s;
	unsigned d = id_of(to);
	uint64_t delay;
	struct ev e;

	if (!from->running)
		return;
	s->c.messages++;
	s->c.bytes += len;
	if (d >= s->n || from->isolated || s->nodes[d].isolated ||
	    rnd01(s) < s->p.loss) {
		s->c.dropped++;
		return;
	}
	delay = s->p.delay_min_ms;
	if (s->p.delay_max_ms > s->p.delay_min_ms)
		delay += rnd(s) % (s->p.delay_max_ms - s->p.delay_min_ms + 1);
	e = (struct ev){.t = s->now + delay + s->nodes[d].slow_ms,
			.kind = EV_DELIVER,
			.to = d,
			.from = from->id,
			.len = len};
	e.buf = malloc(len);
	if (!e.buf)
		abort();
	memcpy(e.buf, buf, len);
	push(s, e);
}

/* ---------------------------------------------------------------------
 * Members
 * ------------------------------------------------------------------- */

static void pushpull(struct sim *s, unsigned a, unsigned b)
{
	struct node *na = &s->nodes[a], *nb = &s->nodes[b];
	ssize_t la, lb;

	if (!na->running || !nb->running || na->isolated || nb->isolated)
		return;
	la = gossip_state_encode(na->g, s->now, s->state_a, GOSSIP_STATE_MAX);
	lb = gossip_state_encode(nb->g, s->now, s->state_b, GOSSIP_STATE_MAX);
	if (la > 0)
		gossip_state_merge(nb->g, s->now, s->state_a, (size_t)la);
	if (lb > 0)
		gossip_state_merge(na->g, s->now, s->state_b, (size_t)lb);
	schedule(s, na);
	schedule(s, nb);
}

static const uint8_t sim_key[32] = "memlane simulated cluster key!!";

static int add_node(struct sim *s)
{
	unsigned i = s->n;
	struct node *nd = &s->nodes[i];
	struct gossip_params gp = s->p.gp;
	char id[32], svc[32];

	if (i == s->cap)
		return -1;
	snprintf(id, sizeof(id), "m%u", i);
	snprintf(svc, sizeof(svc), "10.0.%u.%u:11211", (i + 1) >> 8,
		 (i + 1) & 255);
	nd->s = s;
	nd->id = i;
	nd->running = true;
	nd->tick_at = UINT64_MAX;
	nd->io = (struct gossip_io){
		.send = on_send, .changed = on_changed, .arg = nd};
	gp.addr = addr_of(i);
	gp.id = id;
	gp.service = svc;
	gp.weight = 1;
	gp.seed = s->p.seed * 1000003u + i;
	gp.now_ms = s->now;
	gp.io = &nd->io;
	if (s->p.keyed) {
		gp.key = sim_key;
		gp.keylen = sizeof(sim_key);
	}
	if (gossip_create(&gp, &nd->g))
		return -1;
	memset(&s->view[(size_t)i * s->cap], 0xff, s->cap);
	s->first_down[i] = s->all_down[i] = UINT64_MAX;
	s->n++;
	return (int)i;
}

struct sim *sim_create(const struct sim_params *p)
{
	struct sim *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->p = *p;
	s->cap = p->members + EXTRA_MEMBERS;
	s->rng = p->seed * 0x9e3779b97f4a7c15ull + 1;
	s->nodes = calloc(s->cap, sizeof(*s->nodes));
	s->view = malloc((size_t)s->cap * s->cap);
	for (int k = 0; k < 4; k++)
		s->counts[k] = calloc(s->cap, sizeof(unsigned));
	s->first_down = calloc(s->cap, sizeof(uint64_t));
	s->all_down = calloc(s->cap, sizeof(uint64_t));
	s->state_a = malloc(GOSSIP_STATE_MAX);
	s->state_b = malloc(GOSSIP_STATE_MAX);
	if (!s->nodes || !s->view || !s->counts[3] || !s->all_down ||
	    !s->state_b)
		goto fail;
	for (unsigned i = 0; i < p->members; i++)
		if (add_node(s) < 0)
			goto fail;
	/* everyone learns everyone through member 0, twice round */
	for (int round = 0; round < 2; round++)
		for (unsigned i = 1; i < s->n; i++)
			pushpull(s, i, 0);
	for (unsigned i = 0; i < s->n; i++)
		schedule(s, &s->nodes[i]);
	return s;
fail:
	sim_free(s);
	return NULL;
}

void sim_free(struct sim *s)
{
	if (!s)
		return;
	for (unsigned i = 0; i < s->n; i++)
		gossip_free(s->nodes[i].g);
	for (size_t i = 0; i < s->nheap; i++)
		free(s->heap[i].buf);
	free(s->heap);
	free(s->nodes);
	free(s->view);
	for (int k = 0; k < 4; k++)
		free(s->counts[k]);
	free(s->first_down);
	free(s->all_down);
	free(s->state_a);
	free(s->state_b);
	free(s);
}

void sim_run_until(struct sim *s, uint64_t t)
{
	while (s->nheap && s->heap[0].t <= t) {
		struct ev e = pop(s);
		struct node *nd = &s->nodes[e.to];
		struct gossip_addr to;

		s->now = e.t;
		if (e.kind == EV_DELIVER) {
			struct gossip_addr from = addr_of(e.from);

			if (nd->running && !nd->isolated) {
				gossip_recv(nd->g, s->now, &from, e.buf, e.len);
				schedule(s, nd);
			}
			free(e.buf);
			continue;
		}
		if (!nd->running || e.t != nd->tick_at)
			continue;
		nd->tick_at = UINT64_MAX;
		gossip_tick(nd->g, s->now);
		if (gossip_pushpull_target(nd->g, s->now, &to))
			pushpull(s, e.to, id_of(&to));
		schedule(s, nd);
	}
	if (t > s->now)
		s->now = t;
}

uint64_t sim_now(const struct sim *s)
{
	return s->now;
}

static void forget_views(struct sim *s, unsigned o)
{
	for (unsigned i = 0; i < s->n; i++) {
		uint8_t *v = &s->view[(size_t)o * s->cap + i];

		if (*v != 0xff)
			s->counts[*v][i]--;
		*v = 0xff;
	}
}

void sim_kill(struct sim *s, unsigned i)
{
	s->nodes[i].running = false;
	forget_views(s, i);
	s->first_down[i] = s->all_down[i] = UINT64_MAX;
	for (unsigned k = 0; k < s->n; k++)
		check_all_down(s, k);
}

void sim_leave(struct sim *s, unsigned i)
{
	struct node *nd = &s->nodes[i];

	s->first_down[i] = s->all_down[i] = UINT64_MAX;
	nd->gone = true;
	forget_views(s, i);
	gossip_leave(nd->g, s->now);
	schedule(s, nd);
}

void sim_slow(struct sim *s, unsigned i, unsigned delay_ms)
{
	s->nodes[i].slow_ms = delay_ms;
}

void sim_isolate(struct sim *s, unsigned i, bool cut)
{
	s->nodes[i].isolated = cut;
	if (cut)
		s->first_down[i] = s->all_down[i] = UINT64_MAX;
}

unsigned sim_join(struct sim *s, unsigned seed)
{
	int i = add_node(s);

	if (i < 0)
		abort();
	pushpull(s, (unsigned)i, seed);
	schedule(s, &s->nodes[i]);
	return (unsigned)i;
}

unsigned sim_seen(const struct sim *s, unsigned i, enum gossip_state st)
{
	return s->counts[st][i];
}

unsigned sim_running(const struct sim *s)
{
	unsigned n = 0;

	for (unsigned i = 0; i < s->n; i++)
		n += s->nodes[i].running && !s->nodes[i].gone;
	return n;
}

/* Whether observer o counts member i live: itself always. */
static bool live_in(const struct sim *s, unsigned o, unsigned i)
{
	return i == o || s->view[(size_t)o * s->cap + i] <= GOSSIP_SUSPECT;
}

bool sim_converged(const struct sim *s)
{
	int ref = -1;

	for (unsigned o = 0; o < s->n; o++) {
		if (!s->nodes[o].running || s->nodes[o].gone)
			continue;
		if (ref < 0) {
			ref = (int)o;
			continue;
		}
		for (unsigned i = 0; i < s->n; i++)
			if (live_in(s, (unsigned)ref, i) != live_in(s, o, i))
				return false;
	}
	return true;
}

void sim_counts(const struct sim *s, struct sim_counts *c)
{
	*c = s->c;
}

void sim_reset_counts(struct sim *s)
{
	memset(&s->c, 0, sizeof(s->c));
}

uint64_t sim_first_down(const struct sim *s, unsigned i)
{
	return s->first_down[i];
}

uint64_t sim_all_down(const struct sim *s, unsigned i)
{
	return s->all_down[i];
}

struct gossip *sim_member(struct sim *s, unsigned i)
{
	return s->nodes[i].g;
}

/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of membership (control/gossip.c): the wire and its
 * authentication, the state machine's rules, and a short run of the
 * simulator (bench/gossip_sim.c) with the same code: detection, no false
 * deaths under loss, Lifeguard's slow member, join, leave and a
 * partition that heals. Every time here is virtual.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gossip.h"
#include "gossip_sim.h"

#define T0 1000000u

/* ---------------------------------------------------------------------
 * Two or three members wired by hand: what one sends lands in a mailbox
 * ------------------------------------------------------------------- */

struct mail {
	uint8_t buf[GOSSIP_MTU];
	size_t len;
	struct gossip_addr to;
};

struct box {
	struct mail m[256];
	unsigned n;
	unsigned changes;
	struct gossip_member last;
};

static void box_send(void *arg, const struct gossip_addr *to, const void *buf,
		     size_t len)
{
	struct box *b = arg;

	assert_true(len <= GOSSIP_MTU);
	if (b->n == 256)
		return;
	memcpy(b->m[b->n].buf, buf, len);
	b->m[b->n].len = len;
	b->m[b->n].to = *to;
	b->n++;
}

static void box_changed(void *arg, const struct gossip_member *m)
{
	struct box *b = arg;

	b->changes++;
	b->last = *m;
}

static const uint8_t key[32] = "0123456789abcdef0123456789abcdef";

struct trio {
	struct gossip *g[3];
	struct box box[3];
	struct gossip_io io[3];
	struct gossip_addr addr[3];
};

static struct gossip_addr addr_n(unsigned i)
{
	return (struct gossip_addr){.ip = htonl(0x7f000001u), .port = 7000 + i};
}

static void trio_make(struct trio *t, const uint8_t *k)
{
	memset(t, 0, sizeof(*t));
	for (unsigned i = 0; i < 3; i++) {
		char id[8], svc[32];
		struct gossip_params p = {0};

		snprintf(id, sizeof(id), "n%u", i);
		snprintf(svc, sizeof(svc), "127.0.0.1:%u", 11211 + i);
		t->addr[i] = addr_n(i);
		t->io[i] = (struct gossip_io){.send = box_send,
					      .changed = box_changed,
					      .arg = &t->box[i]};
		p.addr = t->addr[i];
		p.id = id;
		p.service = svc;
		p.weight = 1;
		p.key = k;
		p.keylen = k ? sizeof(key) : 0;
		p.seed = i + 1;
		p.now_ms = T0;
		p.io = &t->io[i];
		assert_int_equal(gossip_create(&p, &t->g[i]), 0);
	}
}

static void trio_free(struct trio *t)
{
	for (unsigned i = 0; i < 3; i++)
		gossip_free(t->g[i]);
}

static unsigned index_of(const struct trio *t, const struct gossip_addr *a)
{
	for (unsigned i = 0; i < 3; i++)
		if (t->addr[i].port == a->port)
			return i;
	fail();
	return 0;
}

/* Delivers every queued message (and what they cause) at time now. */
static void trio_flush(struct trio *t, uint64_t now)
{
	for (int rounds = 0; rounds < 50; rounds++) {
		bool any = false;

		for (unsigned i = 0; i < 3; i++) {
			struct box *b = &t->box[i];
			unsigned n = b->n;
			struct mail *copy = malloc(sizeof(*copy) * (n ? n : 1));

			memcpy(copy, b->m, sizeof(*copy) * n);
			b->n = 0;
			for (unsigned k = 0; k < n; k++) {
				unsigned d = index_of(t, &copy[k].to);

				gossip_recv(t->g[d], now, &t->addr[i],
					    copy[k].buf, copy[k].len);
				any = true;
			}
			free(copy);
		}
		if (!any)
			return;
	}
}

static void pushpull(struct gossip *a, struct gossip *b, uint64_t now)
{
	static uint8_t sa[GOSSIP_STATE_MAX], sb[GOSSIP_STATE_MAX];
	ssize_t la = gossip_state_encode(a, now, sa, sizeof(sa));
	ssize_t lb = gossip_state_encode(b, now, sb, sizeof(sb));

	assert_true(la > 0 && lb > 0);
	assert_int_equal(gossip_state_merge(b, now, sa, (size_t)la), 0);
	assert_int_equal(gossip_state_merge(a, now, sb, (size_t)lb), 0);
}

static enum gossip_state seen(struct gossip *g, unsigned port)
{
	struct gossip_member m[8];
	unsigned n = gossip_members(g, m, 8);

	for (unsigned i = 0; i < n; i++)
		if (m[i].addr.port == port)
			return m[i].state;
	return (enum gossip_state) - 1;
}

static uint32_t incarnation_of(struct gossip *g, unsigned port)
{
	struct gossip_member m[8];
	unsigned n = gossip_members(g, m, 8);

	for (unsigned i = 0; i < n; i++)
		if (m[i].addr.port == port)
			return m[i].incarnation;
	fail();
	return 0;
}

static void trio_join(struct trio *t)
{
	pushpull(t->g[1], t->g[0], T0);
	pushpull(t->g[2], t->g[0], T0);
	pushpull(t->g[1], t->g[0], T0);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(gossip_members(t->g[i], NULL, 0), 3);
}

/* ---------------------------------------------------------------------
 * The wire
 * ------------------------------------------------------------------- */

static void test_params(void **state)
{
	struct gossip_io io = {.send = box_send};
	struct gossip_params p = {.id = "a", .service = "h:1", .io = &io};
	struct gossip *g;

	(void)state;
	assert_int_equal(gossip_create(&p, &g), 0);
	gossip_free(g);
	p.key = key;
	p.keylen = GOSSIP_KEY_MIN - 1;
	assert_int_equal(gossip_create(&p, &g), -EINVAL);
	p.key = NULL;
	p.id = "";
	assert_int_equal(gossip_create(&p, &g), -EINVAL);
	p.id = "a";
	p.service = NULL;
	assert_int_equal(gossip_create(&p, &g), -EINVAL);
	gossip_free(NULL);
}

/* A ping is answered with an ack; the probe succeeds, nobody suspects. */
static void test_ping_ack(void **state)
{
	struct trio t;
	struct gossip_stats st;
	uint64_t now = T0;

	(void)state;
	trio_make(&t, key);
	trio_join(&t);
	for (int i = 0; i < 200; i++, now += 50) {
		for (unsigned k = 0; k < 3; k++)
			gossip_tick(t.g[k], now);
		trio_flush(&t, now);
	}
	for (unsigned k = 0; k < 3; k++) {
		gossip_get_stats(t.g[k], &st);
		assert_true(st.probes >= 5);
		assert_int_equal(st.probes_failed, 0);
		assert_int_equal(st.bad_mac + st.malformed + st.replayed, 0);
		for (unsigned j = 0; j < 3; j++)
			assert_int_equal(seen(t.g[k], 7000 + j), GOSSIP_ALIVE);
	}
	trio_free(&t);
}

/* Forged, truncated, oversized, replayed and stale messages change
 * nothing and are each counted under their reason. */
static uint64_t bad_mac_of(struct gossip *g)
{
	struct gossip_stats st;

	gossip_get_stats(g, &st);
	return st.bad_mac;
}

static void test_bad_messages(void **state)
{
	struct trio t, other;
	struct gossip_stats a, b;
	uint8_t msg[GOSSIP_MTU + 64];
	uint64_t now = T0 + 100000;
	size_t len, tries = 0;
	unsigned changes;

	(void)state;
	trio_make(&t, key);
	trio_join(&t);
	/* a real message from 1 to 0: a gossip of 1's new weight */
	gossip_set_weight(t.g[1], T0 + 10, 5);
	t.box[1].n = 0;
	gossip_tick(t.g[1], now); /* the gossip interval has passed */
	assert_true(t.box[1].n > 0);
	len = t.box[1].m[0].len;
	memcpy(msg, t.box[1].m[0].buf, len);
	memset(msg + len, 0, sizeof(msg) - len);
	changes = t.box[0].changes;
	gossip_get_stats(t.g[0], &a);

	/* forged: one bit of the body flipped, the MAC kept */
	msg[40] ^= 1;
	assert_int_equal(gossip_recv(t.g[0], now, &t.addr[1], msg, len),
			 -EPERM);
	msg[40] ^= 1;
	/* truncated: too short for a MAC, or a MAC that no longer fits */
	for (size_t l = 0; l < len; l += 7, tries++)
		assert_true(gossip_recv(t.g[0], now, &t.addr[1], msg, l) < 0);
	/* oversized */
	assert_int_equal(
		gossip_recv(t.g[0], now, &t.addr[1], msg, GOSSIP_MTU + 1),
		-EMSGSIZE);
	/* stale: outside the replay window */
	assert_int_equal(gossip_recv(t.g[0], now + 31000, &t.addr[1], msg, len),
			 -EALREADY);
	gossip_get_stats(t.g[0], &b);
	assert_int_equal(b.bad_mac + b.malformed - a.bad_mac - a.malformed,
			 1 + tries);
	assert_int_equal(b.oversized - a.oversized, 1);
	assert_int_equal(b.replayed - a.replayed, 1);
	assert_int_equal(b.received, a.received);
	/* under another cluster's key */
	trio_make(&other, (const uint8_t *)"another cluster key, 32 bytes..");
	assert_int_equal(gossip_recv(other.g[0], now, &t.addr[1], msg, len),
			 -EPERM);
	assert_int_equal(bad_mac_of(other.g[0]), 1);
	trio_free(&other);
	assert_int_equal(t.box[0].changes, changes);
	assert_int_equal(incarnation_of(t.g[0], 7001), 0);

	/* the real one once; the same bytes again are a replay */
	assert_int_equal(gossip_recv(t.g[0], now, &t.addr[1], msg, len), 0);
	assert_true(t.box[0].changes > changes);
	assert_int_equal(incarnation_of(t.g[0], 7001), 1);
	assert_int_equal(gossip_recv(t.g[0], now + 1, &t.addr[1], msg, len),
			 -EALREADY);
	gossip_get_stats(t.g[0], &a);
	assert_int_equal(a.replayed - b.replayed, 1);
	assert_int_equal(a.received - b.received, 1);
	trio_free(&t);
}

/* Without a key, a message with a bad update length is malformed, and
 * garbage after the updates too. */
static void test_malformed_updates(void **state)
{
	struct trio t;
	struct gossip_stats a, b;
	uint8_t msg[GOSSIP_MTU];
	size_t len;

	(void)state;
	trio_make(&t, NULL);
	trio_join(&t);
	gossip_set_weight(t.g[1], T0 + 10, 3);
	t.box[1].n = 0;
	gossip_tick(t.g[1], T0 + 100000);
	len = t.box[1].m[0].len;
	memcpy(msg, t.box[1].m[0].buf, len);
	gossip_get_stats(t.g[0], &a);
	msg[36 + 1] = 200; /* the first update's id length */
	assert_int_equal(gossip_recv(t.g[0], T0 + 100000, &t.addr[1], msg, len),
			 -EBADMSG);
	memcpy(msg, t.box[1].m[0].buf, len);
	msg[len] = 'x';
	assert_int_equal(
		gossip_recv(t.g[0], T0 + 100000, &t.addr[1], msg, len + 1),
		-EBADMSG);
	memcpy(msg, t.box[1].m[0].buf, len);
	msg[4] = 99; /* no such type */
	assert_int_equal(gossip_recv(t.g[0], T0 + 100000, &t.addr[1], msg, len),
			 -EBADMSG);
	gossip_get_stats(t.g[0], &b);
	assert_int_equal(b.malformed - a.malformed, 3);
	assert_int_equal(incarnation_of(t.g[0], 7001), 0);
	trio_free(&t);
}

/* ---------------------------------------------------------------------
 * The rules
 * ------------------------------------------------------------------- */

/* A member that stops answering is suspected, then declared dead; a
 * suspected member that is alive refutes with a higher incarnation. */
static void test_suspect_dead_refute(void **state)
{
	struct trio t;
	uint64_t now = T0;

	(void)state;
	trio_make(&t, key);
	trio_join(&t);
	/* member 2 hears nothing: its mail is dropped, it sends nothing */
	for (int i = 0; i < 400 && seen(t.g[0], 7002) == GOSSIP_ALIVE;
	     i++, now += 50) {
		gossip_tick(t.g[0], now);
		gossip_tick(t.g[1], now);
		t.box[0].n = t.box[1].n = 0; /* all lost */
	}
	assert_int_equal(seen(t.g[0], 7002), GOSSIP_SUSPECT);
	/* now 0 and 1 talk, 2 still silent: 2 goes dead at both */
	for (int i = 0; i < 2000 && (seen(t.g[0], 7002) != GOSSIP_DEAD ||
				     seen(t.g[1], 7002) != GOSSIP_DEAD);
	     i++, now += 50) {
		gossip_tick(t.g[0], now);
		gossip_tick(t.g[1], now);
		for (unsigned k = 0; k < 2; k++) {
			unsigned keep = 0;

			for (unsigned m = 0; m < t.box[k].n; m++)
				if (t.box[k].m[m].to.port != 7002)
					t.box[k].m[keep++] = t.box[k].m[m];
			t.box[k].n = keep;
		}
		t.box[2].n = 0;
		trio_flush(&t, now);
	}
	assert_int_equal(seen(t.g[0], 7002), GOSSIP_DEAD);
	assert_int_equal(seen(t.g[1], 7002), GOSSIP_DEAD);
	/* 2 comes back: a push-pull tells it it is dead; it refutes */
	pushpull(t.g[2], t.g[0], now);
	assert_true(incarnation_of(t.g[2], 7002) >= 1);
	/* and gossips it */
	for (int i = 0; i < 20; i++, now += 50) {
		for (unsigned k = 0; k < 3; k++)
			gossip_tick(t.g[k], now);
		trio_flush(&t, now);
	}
	assert_int_equal(seen(t.g[0], 7002), GOSSIP_ALIVE);
	assert_int_equal(seen(t.g[1], 7002), GOSSIP_ALIVE);
	trio_free(&t);
}

/* A graceful leave is "left" everywhere at once and never refuted. */
static void test_leave(void **state)
{
	struct trio t;

	(void)state;
	trio_make(&t, key);
	trio_join(&t);
	gossip_leave(t.g[2], T0 + 5);
	gossip_tick(t.g[2], T0 + 5);
	trio_flush(&t, T0 + 5);
	assert_int_equal(seen(t.g[0], 7002), GOSSIP_LEFT);
	assert_int_equal(seen(t.g[1], 7002), GOSSIP_LEFT);
	assert_int_equal(seen(t.g[2], 7002), GOSSIP_LEFT);
	/* an old alive of it changes nothing */
	pushpull(t.g[1], t.g[0], T0 + 6);
	assert_int_equal(seen(t.g[0], 7002), GOSSIP_LEFT);
	trio_free(&t);
}

/* A weight change is gossiped with a new incarnation. */
static void test_weight(void **state)
{
	struct trio t;
	struct gossip_member m[4];
	uint64_t now = T0;

	(void)state;
	trio_make(&t, key);
	trio_join(&t);
	gossip_set_weight(t.g[1], now, 0);
	for (int i = 0; i < 40; i++, now += 50) {
		for (unsigned k = 0; k < 3; k++)
			gossip_tick(t.g[k], now);
		trio_flush(&t, now);
	}
	for (unsigned k = 0; k < 3; k++) {
		unsigned n = gossip_members(t.g[k], m, 4);

		for (unsigned i = 0; i < n; i++)
			if (m[i].addr.port == 7001) {
				assert_int_equal(m[i].weight, 0);
				assert_int_equal(m[i].incarnation, 1);
			}
	}
	trio_free(&t);
}

/* ---------------------------------------------------------------------
 * The simulator, a short configuration
 * ------------------------------------------------------------------- */

static struct sim *sim_of(unsigned n, double loss, unsigned amax, uint64_t seed)
{
	struct sim_params p = {.members = n,
			       .loss = loss,
			       .delay_min_ms = 1,
			       .delay_max_ms = 5,
			       .seed = seed,
			       .keyed = true};
	struct sim *s;

	p.gp.awareness_max = amax;
	s = sim_create(&p);
	assert_non_null(s);
	sim_run_until(s, 30000);
	sim_reset_counts(s);
	return s;
}

/* Kills are detected by everyone within the suspicion bound (for 50
 * members: 4 * log10(50) * 6 probe intervals at most, plus a round). */
static void test_sim_detect(void **state)
{
	struct sim *s = sim_of(50, 0.0, 0, 7);

	(void)state;
	for (unsigned k = 0; k < 5; k++) {
		unsigned v = 3 + 9 * k;
		uint64_t t0 = sim_now(s);

		sim_kill(s, v);
		sim_run_until(s, t0 + 60000);
		assert_true(sim_all_down(s, v) != UINT64_MAX);
		assert_true(sim_all_down(s, v) - t0 < 45000);
		assert_int_equal(sim_seen(s, v, GOSSIP_DEAD), sim_running(s));
		assert_true(sim_converged(s));
	}
	sim_free(s);
}

/* 1% loss for three minutes: no healthy member is declared dead. */
static void test_sim_loss(void **state)
{
	struct sim *s = sim_of(50, 0.01, 0, 11);
	struct sim_counts c;

	(void)state;
	sim_run_until(s, sim_now(s) + 180000);
	sim_counts(s, &c);
	assert_int_equal(c.false_deaths, 0);
	assert_true(c.dropped > 0);
	assert_true(sim_converged(s));
	sim_free(s);
}

/* Lifeguard: a member that handles everything 2 s late makes fewer
 * false suspicions of healthy members with local health awareness than
 * without it. */
static void test_sim_slow_member(void **state)
{
	struct sim_counts with, without;
	struct sim *s;

	(void)state;
	s = sim_of(30, 0.0, 0, 5);
	sim_slow(s, 4, 2000);
	sim_run_until(s, sim_now(s) + 120000);
	sim_counts(s, &with);
	sim_free(s);
	s = sim_of(30, 0.0, 1, 5);
	sim_slow(s, 4, 2000);
	sim_run_until(s, sim_now(s) + 120000);
	sim_counts(s, &without);
	sim_free(s);
	assert_true(without.false_suspicions > 0);
	assert_true(with.false_suspicions < without.false_suspicions);
	assert_int_equal(with.false_deaths, 0);
}

/* A join, a leave, a failure: everyone holds the same live set soon. */
static void test_sim_converge(void **state)
{
	struct sim *s = sim_of(40, 0.0, 0, 3);
	unsigned j;

	(void)state;
	assert_true(sim_converged(s));
	j = sim_join(s, 0);
	sim_run_until(s, sim_now(s) + 10000);
	assert_true(sim_converged(s));
	assert_int_equal(sim_seen(s, j, GOSSIP_ALIVE), sim_running(s) - 1);
	sim_leave(s, j);
	sim_run_until(s, sim_now(s) + 5000);
	assert_int_equal(sim_seen(s, j, GOSSIP_LEFT), sim_running(s));
	assert_true(sim_converged(s));
	sim_free(s);
}

/* A member cut off is declared dead by the others, with no false death
 * among them, and comes back when the link heals. */
static void test_sim_partition(void **state)
{
	struct sim *s = sim_of(20, 0.0, 0, 9);
	struct sim_counts c;

	(void)state;
	sim_isolate(s, 6, true);
	sim_run_until(s, sim_now(s) + 60000);
	assert_int_equal(sim_seen(s, 6, GOSSIP_DEAD), sim_running(s) - 1);
	sim_counts(s, &c);
	assert_int_equal(c.false_deaths, 0);
	sim_isolate(s, 6, false);
	sim_run_until(s, sim_now(s) + 120000);
	assert_int_equal(sim_seen(s, 6, GOSSIP_ALIVE), sim_running(s) - 1);
	assert_true(sim_converged(s));
	sim_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_ping_ack),
		cmocka_unit_test(test_bad_messages),
		cmocka_unit_test(test_malformed_updates),
		cmocka_unit_test(test_suspect_dead_refute),
		cmocka_unit_test(test_leave),
		cmocka_unit_test(test_weight),
		cmocka_unit_test(test_sim_detect),
		cmocka_unit_test(test_sim_loss),
		cmocka_unit_test(test_sim_slow_member),
		cmocka_unit_test(test_sim_converge),
		cmocka_unit_test(test_sim_partition),
	};

	return cmocka_run_group_tests_name("control_gossip", tests, NULL, NULL);
}

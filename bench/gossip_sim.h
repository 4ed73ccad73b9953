/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A deterministic simulator of gossip membership: many members running
 * control/gossip.c itself, in virtual time, over a simulated network that
 * loses and delays datagrams. Push-pull is a reliable exchange that
 * happens at once when both ends are up and can reach each other. Used
 * by memlane-bench gossip and by the membership tests.
 */
#ifndef MEMLANE_GOSSIP_SIM_H
#define MEMLANE_GOSSIP_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "gossip.h"

struct sim_params {
	unsigned members;
	double loss;	       /* each datagram, independently */
	unsigned delay_min_ms; /* one way */
	unsigned delay_max_ms;
	uint64_t seed;
	struct gossip_params gp; /* timers; the rest is the simulator's */
	bool keyed;		 /* HMAC on every message */
};

struct sim;

struct sim *sim_create(const struct sim_params *p);
void sim_free(struct sim *s);

/* Runs until virtual time t (ms). */
void sim_run_until(struct sim *s, uint64_t t);
uint64_t sim_now(const struct sim *s);

/* Member i stops (no messages in or out, no timers), as after kill -9. */
void sim_kill(struct sim *s, unsigned i);
/* Member i leaves gracefully. */
void sim_leave(struct sim *s, unsigned i);
/* Member i handles everything delay_ms late (a CPU-starved member). */
void sim_slow(struct sim *s, unsigned i, unsigned delay_ms);
/* Cuts (or heals) every link between member i and the others. */
void sim_isolate(struct sim *s, unsigned i, bool cut);
/* A new member, joining through member seed; returns its index. */
unsigned sim_join(struct sim *s, unsigned seed);

/* How many running members see member i in state st. */
unsigned sim_seen(const struct sim *s, unsigned i, enum gossip_state st);
/* Running members, and whether every one sees exactly the same set of
 * live members (the same ring). */
unsigned sim_running(const struct sim *s);
bool sim_converged(const struct sim *s);

struct sim_counts {
	/* episodes: a healthy member (running, reachable, not slowed)
	 * that some member begins to see suspect, or dead */
	uint64_t false_suspicions;
	uint64_t false_deaths;
	uint64_t messages, bytes; /* sent by running members */
	uint64_t dropped;	  /* lost by the network */
};
void sim_counts(const struct sim *s, struct sim_counts *c);
/* Resets the counters (after a warm-up). */
void sim_reset_counts(struct sim *s);
/* The time member i was first seen dead (or left) by another, since
 * t0, or UINT64_MAX; and the time every running member saw it so. */
uint64_t sim_first_down(const struct sim *s, unsigned i);
uint64_t sim_all_down(const struct sim *s, unsigned i);
struct gossip *sim_member(struct sim *s, unsigned i);

#endif

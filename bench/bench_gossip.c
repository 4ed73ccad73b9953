/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memlane-bench gossip: the membership protocol (control/gossip.c, the
 * code memlaned runs) in the simulator, with --members members (1000) at
 * the LAN defaults (probe interval 1 s, timeout 500 ms, 3 indirect
 * probes, suspicion multiplier 4), one-way delays of 1 to 5 ms:
 *
 *   detect     --kills members killed one at a time, a minute apart:
 *              the time until a first member and until every member
 *              declares each dead, median and p99
 *   loss       five minutes without failures at 1% and 5% loss: false
 *              suspicions and false deaths
 *   slow       one member whose every datagram is handled 2 s late, with
 *              Lifeguard's local health and without it
 *   traffic    datagrams and bytes per member per second, steady state
 *   converge   the time until every member holds the same live set after
 *              a join, a graceful leave and a failure
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "gossip_sim.h"

#define WARMUP_MS 60000
#define STEP_MS	  50

struct gopts {
	unsigned members, kills;
	uint64_t seed;
};

static struct sim *make(const struct gopts *o, double loss, unsigned amax)
{
	struct sim_params p = {
		.members = o->members,
		.loss = loss,
		.delay_min_ms = 1,
		.delay_max_ms = 5,
		.seed = o->seed,
		.keyed = true,
	};
	struct sim *s;

	p.gp.awareness_max = amax;
	s = sim_create(&p);
	if (!s) {
		fprintf(stderr, "memlane-bench gossip: out of memory\n");
		exit(1);
	}
	sim_run_until(s, WARMUP_MS);
	sim_reset_counts(s);
	return s;
}

static double pctl(uint64_t *v, unsigned n, double p)
{
	qsort(v, n, sizeof(*v), bench_cmp_u64);
	return n ? (double)v[(unsigned)(p * (n - 1) + 0.5)] / 1000.0 : 0;
}

static void detect(const struct gopts *o)
{
	struct sim *s = make(o, 0, 0);
	uint64_t *first = calloc(o->kills, 8), *all = calloc(o->kills, 8);
	unsigned n = 0;

	for (unsigned k = 0; k < o->kills; k++) {
		unsigned victim = 1 + (k * 7919u) % (o->members - 1);
		uint64_t t0 = sim_now(s);

		sim_kill(s, victim);
		sim_run_until(s, t0 + 60000);
		if (sim_all_down(s, victim) == UINT64_MAX)
			continue; /* counted below as missing */
		first[n] = sim_first_down(s, victim) - t0;
		all[n] = sim_all_down(s, victim) - t0;
		n++;
	}
	printf("detect    %u kills: first member %.2f s median, %.2f s p99; "
	       "every member %.2f s median, %.2f s p99; %u not detected "
	       "within 60 s\n",
	       o->kills, pctl(first, n, 0.5), pctl(first, n, 0.99),
	       pctl(all, n, 0.5), pctl(all, n, 0.99), o->kills - n);
	free(first);
	free(all);
	sim_free(s);
}

static void steady(const struct gopts *o, const char *what, double loss,
		   unsigned amax, int slow)
{
	struct sim *s = make(o, loss, amax);
	struct sim_counts c;
	const uint64_t span = 300000;

	if (slow >= 0)
		sim_slow(s, (unsigned)slow, 2000);
	sim_run_until(s, sim_now(s) + span);
	sim_counts(s, &c);
	printf("%-9s %4.1f%% loss%s: %llu false suspicions, %llu false "
	       "deaths of healthy members in %llu member-minutes; %.2f "
	       "datagrams and %.0f bytes per member per second\n",
	       what, 100 * loss,
	       slow < 0	   ? ""
	       : amax == 1 ? ", no local health"
			   : ", lifeguard",
	       (unsigned long long)c.false_suspicions,
	       (unsigned long long)c.false_deaths,
	       (unsigned long long)(o->members * span / 60000),
	       (double)c.messages / o->members / (span / 1000.0),
	       (double)c.bytes / o->members / (span / 1000.0));
	sim_free(s);
}

/* Time from now until every member holds the same live set, with
 * member m in it (want ALIVE) or out of it (LEFT, DEAD) everywhere. */
static double until_converged(struct sim *s, unsigned m, enum gossip_state want)
{
	uint64_t t0 = sim_now(s);

	while (sim_now(s) - t0 < 120000) {
		unsigned need = sim_running(s) - (want == GOSSIP_ALIVE);

		sim_run_until(s, sim_now(s) + STEP_MS);
		if (sim_seen(s, m, want) == need && sim_converged(s))
			return (double)(sim_now(s) - t0) / 1000.0;
	}
	return -1;
}

static void converge(const struct gopts *o)
{
	struct sim *s = make(o, 0, 0);
	double join, leave, fail;
	unsigned j;

	j = sim_join(s, 0);
	join = until_converged(s, j, GOSSIP_ALIVE);
	sim_run_until(s, sim_now(s) + 30000);
	sim_leave(s, j);
	leave = until_converged(s, j, GOSSIP_LEFT);
	sim_run_until(s, sim_now(s) + 30000);
	sim_kill(s, 5);
	fail = until_converged(s, 5, GOSSIP_DEAD);
	printf("converge  same live set everywhere after a join %.2f s, a "
	       "leave %.2f s, a failure %.2f s (-1: not within 120 s)\n",
	       join, leave, fail);
	sim_free(s);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: memlane-bench gossip [--members N] [--kills N] "
		   "[--seed S] [detect|loss|slow|traffic|converge ...]\n");
}

int bench_gossip_main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"members", required_argument, NULL, 'n'},
		{"kills", required_argument, NULL, 'k'},
		{"seed", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	struct gopts o = {.members = 1000, .kills = 20, .seed = 1};
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "n:k:s:h", lo, NULL)) != -1) {
		switch (ch) {
		case 'n':
			o.members = (unsigned)atoi(optarg);
			break;
		case 'k':
			o.kills = (unsigned)atoi(optarg);
			break;
		case 's':
			o.seed = strtoull(optarg, NULL, 0);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (o.members < 8 || o.members > 4000 || !o.kills) {
		usage(stderr);
		return 2;
	}
	/* no scenario named: every one */
	if (optind >= argc) {
		static char every[] = "all", *one[] = {every};

		argv = one;
		argc = 1;
		optind = 0;
	}
	printf("memlane-bench gossip: %u members, LAN defaults, 1-5 ms "
	       "one way, HMAC on every datagram, seed %llu\n",
	       o.members, (unsigned long long)o.seed);
	for (int i = optind; i < argc; i++) {
		const char *w = argv[i];
		bool every = !strcmp(w, "all");

		if (every || !strcmp(w, "detect"))
			detect(&o);
		if (every || !strcmp(w, "loss")) {
			steady(&o, "loss", 0.01, 0, -1);
			steady(&o, "loss", 0.05, 0, -1);
		}
		if (every || !strcmp(w, "slow")) {
			steady(&o, "slow", 0, 0, 3);
			steady(&o, "slow", 0, 1, 3);
		}
		if (every || !strcmp(w, "traffic"))
			steady(&o, "traffic", 0, 0, -1);
		if (every || !strcmp(w, "converge"))
			converge(&o);
	}
	return 0;
}

/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * /metrics: the node's counters in Prometheus' text format, version
 * 0.0.4. Counters end in _total; a per-core series carries core="N", a
 * per-member one member="host:port".
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_internal.h"

void ctl_buf_printf(struct ctl_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL,
			      b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if (b->p && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap < b->len + (size_t)n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);

		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

struct core_metric {
	const char *name;
	const char *help;
	size_t off;
	bool gauge;
};

#define CM(f, help)                                                            \
	{                                                                      \
#f, help, offsetof(struct ctl_core_stats, f), false            \
	}

static const struct core_metric core_metrics[] = {
	CM(ops, "Requests the core's shard executed."),
	CM(cmd_get, "Keys asked for by retrievals."),
	CM(get_hits, "Retrieved keys that were found."),
	CM(get_misses, "Retrieved keys that were not found."),
	CM(cmd_set, "Storage commands."),
	CM(forwards, "Requests forwarded to the node that owns their key."),
	CM(forward_errors,
	   "Forwarded requests answered SERVER_ERROR: the owner failed."),
	CM(forwarded_in, "Requests other nodes forwarded to this one."),
	CM(handed_off, "Requests sent to the core that owns their key."),
	CM(drops, "Malformed datagrams dropped."),
	{"curr_connections", "Open client connections.",
	 offsetof(struct ctl_core_stats, curr_connections), true},
};

void ctl_metrics(struct ctl *c, struct ctl_buf *b)
{
	struct ctl_core_stats cs[CTL_CORE_MAX];
	unsigned n = c->ops->stats(c->ops->arg, cs, CTL_CORE_MAX);

	for (size_t m = 0; m < sizeof(core_metrics) / sizeof(core_metrics[0]);
	     m++) {
		const struct core_metric *cm = &core_metrics[m];
		const char *suffix = cm->gauge ? "" : "_total";

		ctl_buf_printf(b, "# HELP memlane_%s%s %s\n", cm->name, suffix,
			       cm->help);
		ctl_buf_printf(b, "# TYPE memlane_%s%s %s\n", cm->name, suffix,
			       cm->gauge ? "gauge" : "counter");
		for (unsigned i = 0; i < n; i++) {
			uint64_t v;

			memcpy(&v, (const char *)&cs[i] + cm->off, sizeof(v));
			ctl_buf_printf(b, "memlane_%s%s{core=\"%u\"} %llu\n",
				       cm->name, suffix, i,
				       (unsigned long long)v);
		}
	}
	ctl_buf_printf(b,
		       "# HELP memlane_admin_unauthorized_total Admin "
		       "requests refused for a missing or wrong token.\n"
		       "# TYPE memlane_admin_unauthorized_total counter\n"
		       "memlane_admin_unauthorized_total %lu\n",
		       atomic_load(&c->unauthorized));
	ctl_buf_printf(b,
		       "# HELP memlane_admin_requests_total Admin requests.\n"
		       "# TYPE memlane_admin_requests_total counter\n"
		       "memlane_admin_requests_total %lu\n",
		       atomic_load(&c->requests));
	if (c->g) {
		struct gossip_stats gs;
		unsigned aware;

		ctl_gossip_stats(c, &gs, &aware);
		ctl_buf_printf(
			b,
			"# HELP memlane_gossip_messages_total Gossip datagrams "
			"and push-pull states, sent and taken.\n"
			"# TYPE memlane_gossip_messages_total counter\n"
			"memlane_gossip_messages_total{dir=\"sent\"} %llu\n"
			"memlane_gossip_messages_total{dir=\"received\"} "
			"%llu\n"
			"# HELP memlane_gossip_dropped_total Gossip dropped, "
			"by reason.\n"
			"# TYPE memlane_gossip_dropped_total counter\n"
			"memlane_gossip_dropped_total{reason=\"bad_mac\"} "
			"%llu\n"
			"memlane_gossip_dropped_total{reason=\"replayed\"} "
			"%llu\n"
			"memlane_gossip_dropped_total{reason=\"malformed\"} "
			"%llu\n"
			"memlane_gossip_dropped_total{reason=\"oversized\"} "
			"%llu\n"
			"# HELP memlane_gossip_awareness Local health: 0 is "
			"healthy; higher stretches probes.\n"
			"# TYPE memlane_gossip_awareness gauge\n"
			"memlane_gossip_awareness %u\n",
			(unsigned long long)gs.sent,
			(unsigned long long)gs.received,
			(unsigned long long)gs.bad_mac,
			(unsigned long long)gs.replayed,
			(unsigned long long)gs.malformed,
			(unsigned long long)gs.oversized, aware);
	}
	pthread_mutex_lock(&c->lock);
	ctl_buf_printf(b,
		       "# HELP memlane_ring_epoch The ring's epoch: it grows "
		       "with every change of the members or weights.\n"
		       "# TYPE memlane_ring_epoch gauge\n"
		       "memlane_ring_epoch %llu\n"
		       "# HELP memlane_ring_members Members on the ring.\n"
		       "# TYPE memlane_ring_members gauge\n"
		       "memlane_ring_members %u\n",
		       (unsigned long long)c->epoch, c->nmembers);
	ctl_buf_printf(b, "# HELP memlane_ring_share The part of the keyspace "
			  "a member owns.\n"
			  "# TYPE memlane_ring_share gauge\n");
	for (unsigned i = 0; i < c->nmembers; i++)
		ctl_buf_printf(b, "memlane_ring_share{member=\"%s:%u\"} %.6f\n",
			       c->members[i].host, c->members[i].port,
			       ring_share(c->ring, i));
	ctl_buf_printf(b, "# HELP memlane_ring_weight A member's weight.\n"
			  "# TYPE memlane_ring_weight gauge\n");
	for (unsigned i = 0; i < c->nmembers; i++)
		ctl_buf_printf(b, "memlane_ring_weight{member=\"%s:%u\"} %u\n",
			       c->members[i].host, c->members[i].port,
			       c->members[i].weight);
	pthread_mutex_unlock(&c->lock);
}

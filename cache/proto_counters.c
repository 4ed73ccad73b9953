/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A node's counters for readers outside the protocol: the admin endpoint
 * and its metrics, which want totals that never go back (stats reset only
 * moves what "stats" reports).
 */
#include "cache.h"
#include "proto_internal.h"

static inline uint64_t counter(const uint64_t *v)
{
	return __atomic_load_n(v, __ATOMIC_RELAXED);
}

void proto_node_counters(const struct proto_node *n, struct proto_counters *out)
{
	const struct proc_counters *c = &n->c;

	out->cmd_get = counter(&c->cmd_get);
	out->get_hits = counter(&c->get_hits);
	out->get_misses = counter(&c->get_misses);
	out->cmd_set = counter(&c->cmd_set);
	out->cmd_touch = counter(&c->cmd_touch);
	out->cmd_meta = counter(&c->cmd_meta);
	out->delete_hits = counter(&c->delete_hits);
	out->delete_misses = counter(&c->delete_misses);
	out->arith = counter(&c->incr_hits) + counter(&c->incr_misses) +
		     counter(&c->decr_hits) + counter(&c->decr_misses);
}

void proto_node_set_transport_conns(struct proto_node *n,
				    int (*fn)(void *arg, struct proto_out *out),
				    void *arg)
{
	n->transport_conns = fn;
	n->transport_conns_arg = arg;
}

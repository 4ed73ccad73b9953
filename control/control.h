/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * control/: the cluster as this node sees it, and the admin endpoint.
 *
 * The control plane holds the members (host, port, weight, in the order
 * the configuration gives them: a member's index is the same on every
 * ring) and builds a new node ring, with the next epoch, whenever that
 * view changes; the dataplane publishes it to its cores (ops->publish).
 * Its admin endpoint (HTTP, loopback by default, a bearer token where it
 * binds elsewhere) serves the view, the ring, the cores' counters, a
 * Bloom digest of the keys the node holds in a range of the ring, and
 * Prometheus text metrics; memlanectl is its client. With gossip
 * (ctl_gossip.c) the members come and go: a member's index stays its
 * own, and one that is dead or has left owns no points.
 */
#ifndef MEMLANE_CONTROL_H
#define MEMLANE_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ring.h"

struct bloom;

/* A core's counters, since the node started. */
struct ctl_core_stats {
	uint64_t ops; /* requests its shard executed */
	uint64_t cmd_get, get_hits, get_misses, cmd_set;
	uint64_t forwards;	 /* requests sent on to their owner node */
	uint64_t forward_errors; /* of those, answered SERVER_ERROR */
	uint64_t forwarded_in;	 /* requests peers forwarded here */
	uint64_t handed_off;	 /* requests sent to another core */
	uint64_t drops;		 /* malformed datagrams dropped */
	uint64_t curr_connections;
};

/* What the control plane asks of the dataplane; called from its own
 * thread. */
struct ctl_node_ops {
	/* Every core's counters; returns how many cores it wrote. */
	unsigned (*stats)(void *arg, struct ctl_core_stats *out, unsigned max);
	/* Makes r the ring the cores read and returns the ring it
	 * replaced, once no core reads that one any more. */
	struct ring *(*publish)(void *arg, struct ring *r);
	/* The Bloom digest of the keys held whose ring points lie in the
	 * ranges; 0 or -errno. */
	int (*digest)(void *arg, const struct ring_range *rs, unsigned n,
		      struct bloom **out);
	/* Gossip brought a new member, at index member of every ring from
	 * now on: resolve where to forward its keys. 0 or -errno (the
	 * member then owns no keys here). */
	int (*member_added)(void *arg, unsigned member, const char *host,
			    uint16_t port);
	/* The warm hand-off: member, the previous owner of the ranges,
	 * sent the digest of what it held there (bf, which the call takes);
	 * 0 or -errno. And a tick, about once a second, to let offers
	 * expire. */
	int (*handoff_offer)(void *arg, unsigned member,
			     const struct ring_range *rs, unsigned n,
			     struct bloom *bf);
	void (*handoff_tick)(void *arg);
	void *arg;
};

/* Membership by gossip (control/gossip.h); off: the members are fixed. */
struct ctl_gossip_params {
	bool on;
	const char *addr; /* IPv4 of the UDP and TCP gossip port */
	uint16_t port;
	const char *seeds; /* "host:port,..." of members' gossip ports */
	const uint8_t *key;
	size_t keylen;
	/* 0: the default */
	unsigned probe_interval_ms, probe_timeout_ms, pushpull_interval_ms;
	unsigned suspicion_mult, indirect_probes;
	/* the warm hand-off: how long a new owner may fetch from the
	 * previous one (0: no hand-off) */
	unsigned handoff_window_ms;
};

struct ctl_member {
	char host[RING_HOST_MAX];
	uint16_t port;
	uint32_t weight;
};

struct ctl_params {
	const struct ctl_member *members;
	unsigned nmembers;
	unsigned self; /* this node, among the members */
	/* the admin endpoint: NULL for none */
	const char *admin_addr;
	uint16_t admin_port;
	/* failing to bind is an error (else a warning: the node runs
	 * without its endpoint) */
	bool admin_required;
	const char *token; /* "" or NULL: none */
	bool verbose;
	const struct ctl_node_ops *ops;
	/* with gossip, members[0] is this node (self 0), and members learnt
	 * are added after it */
	struct ctl_gossip_params gossip;
};

struct ctl;

/* Builds and publishes the first ring, and starts the admin endpoint.
 * 0 or -errno with a message in err. */
int ctl_start(const struct ctl_params *p, struct ctl **out, char *err,
	      size_t errlen);
/* Stops the endpoint, unpublishes the ring and frees it. NULL is fine. */
void ctl_stop(struct ctl *c);

/* The view, for the endpoint and for tests: a member's new weight makes
 * a new ring (epoch + 1). -EINVAL for a bad member, or when no member
 * would own any key. */
int ctl_set_weight(struct ctl *c, unsigned member, uint32_t weight);
uint64_t ctl_epoch(const struct ctl *c);
/* The admin endpoint's port (useful when 0 was asked), 0 for none. */
uint16_t ctl_admin_port(const struct ctl *c);

#endif /* MEMLANE_CONTROL_H */

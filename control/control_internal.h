/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control plane's rooms. Never included from another folder.
 *
 *   ctl_cluster.c  the members, their weights, the rings built from them
 *   ctl_admin.c    the admin endpoint: HTTP, JSON, tokens
 *   ctl_metrics.c  the Prometheus text of /metrics
 *   ctl_gossip.c   membership by gossip: the thread, its sockets and
 *                  push-pull over TCP, around gossip.c's state machine
 */
#ifndef MEMLANE_CONTROL_INTERNAL_H
#define MEMLANE_CONTROL_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "control.h"
#include "gossip.h"

#define CTL_MEMBER_MAX 64
#define CTL_CORE_MAX   64

struct MHD_Daemon;

struct ctl {
	pthread_mutex_t lock; /* the view and the ring */
	struct ctl_member members[CTL_MEMBER_MAX];
	unsigned nmembers, self;
	uint64_t epoch;
	struct ring *ring; /* the published one */
	const struct ctl_node_ops *ops;
	bool verbose;
	char token[160];
	struct MHD_Daemon *httpd;
	uint16_t port;
	/* the endpoint's own counters */
	atomic_ulong requests, unauthorized, bad_requests, not_found;
	/* what gossip says of each member (fixed members: alive) */
	struct ctl_view {
		enum gossip_state state;
		uint32_t incarnation;
		uint64_t changed_ms; /* unix ms */
		char id[GOSSIP_ID_MAX];
		struct gossip_addr addr;
		bool resolved; /* its keys can be forwarded */
	} view[CTL_MEMBER_MAX];
	struct ctl_gossip *g; /* NULL: fixed members */
};

/* Builds the ring of the view and publishes it. Holds c->lock. */
int ctl_rebuild(struct ctl *c, char *err, size_t errlen);

int ctl_gossip_start(struct ctl *c, const struct ctl_params *p, char *err,
		     size_t errlen);
void ctl_gossip_stop(struct ctl *c);
/* For the endpoint; each takes c->lock. 0 or -errno. */
int ctl_gossip_join(struct ctl *c, const char *seed, char *err, size_t errlen);
int ctl_gossip_leave(struct ctl *c);
int ctl_gossip_weight(struct ctl *c, uint32_t weight);
void ctl_gossip_stats(struct ctl *c, struct gossip_stats *st,
		      unsigned *awareness);

/* Appends to a growing string; the text of /metrics. */
struct ctl_buf {
	char *p;
	size_t len, cap;
	bool oom;
};
void ctl_buf_printf(struct ctl_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void ctl_metrics(struct ctl *c, struct ctl_buf *b);

int ctl_admin_start(struct ctl *c, const struct ctl_params *p, char *err,
		    size_t errlen);
void ctl_admin_stop(struct ctl *c);

#endif /* MEMLANE_CONTROL_INTERNAL_H */

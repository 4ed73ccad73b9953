/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control plane's rooms. Never included from another folder.
 *
 *   ctl_cluster.c  the members, their weights, the rings built from them
 *   ctl_admin.c    the admin endpoint: HTTP, JSON, tokens
 *   ctl_metrics.c  the Prometheus text of /metrics
 *   ctl_gossip.c   membership by gossip: the thread, its sockets and
 *                  push-pull over TCP, around gossip.c's state machine
 *   ctl_handoff.c  the warm hand-off's digests: made and sent when the
 *                  ring takes ranges away, taken from the push-pull port
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
	struct ctl_gossip *g;  /* NULL: fixed members */
	struct ctl_handoff *h; /* NULL: no hand-off */
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

/* What ctl_gossip.c lends the hand-off: the wall clock in ms, a wait
 * for a socket, a whole read or write before a deadline (0 or -errno),
 * a TCP connection to a gossip port (the fd or -errno), and the view's
 * index of a member's gossip address (-1: none; holds c->lock). */
uint64_t ctl_now_ms(void);
int ctl_io_wait(int fd, short ev, uint64_t deadline);
int ctl_io_all(int fd, void *buf, size_t len, bool out, uint64_t deadline);
int ctl_connect(const struct gossip_addr *to, uint64_t deadline);
int ctl_view_index(struct ctl *c, const struct gossip_addr *a);

/* The warm hand-off (ctl_handoff.c): started with gossip when the
 * dataplane has a window; the ring changed (holds c->lock); a digest
 * read from the push-pull port, len bytes after its header; counters. */
struct ctl_handoff_stats {
	uint64_t sent, send_failed;
	uint64_t skipped; /* nothing held in the ranges, or a queue full */
	uint64_t received, dropped;
};
int ctl_handoff_start(struct ctl *c, const struct ctl_params *p,
		      const struct gossip_addr *self, char *err, size_t errlen);
void ctl_handoff_stop(struct ctl *c);
void ctl_handoff_plan(struct ctl *c, const struct ring *old,
		      const struct ring *r);
void ctl_handoff_recv(struct ctl *c, int fd, uint32_t len, uint64_t deadline);
void ctl_handoff_stats(struct ctl *c, struct ctl_handoff_stats *st);

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

/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The cluster as the cores see it: one pointer to the current node ring,
 * swapped by the control plane and read by each core at the start of a
 * pass, never during one's middle. A ring that was replaced is freed once
 * every core has passed a quiescent point since (DPDK's rte_rcu_qsbr: the
 * end of each pass, and the whole of an epoll sleep, during which a core
 * is offline). The peers' addresses are resolved once, before the
 * workers start (a member gossip learns, when it is learnt), and what the
 * admin endpoint and the hand-off ask of the cores (counters, a digest
 * of their keys) is answered here.
 */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_rcu_qsbr.h>

#include "bloom.h"
#include "control.h"
#include "dp_internal.h"
#include "ring.h"

static struct ring *_Atomic cur_ring;
static struct rte_rcu_qsbr *qsbr;
static pthread_mutex_t publish_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sockaddr_storage peer_sa[DP_NODE_MAX];
static socklen_t peer_salen[DP_NODE_MAX];
static struct ctl *ctl;

/* A digest being made: each core walks its own shard a slice per pass,
 * adding the keys of the ranges to its own filter. */
#define DIGEST_BUDGET 256 /* index buckets per core per pass */
struct digest_job {
	const struct ring_range *rs;
	unsigned nrs;
	struct bloom *part[DP_CORE_MAX];
	struct cache_walk walk[DP_CORE_MAX];
	bool done[DP_CORE_MAX];
	/* a core's part is answered once: by the core when its walk ends,
	 * or as abandoned when the core has left its loop */
	atomic_bool claimed[DP_CORE_MAX];
	atomic_bool abandoned;
	atomic_uint left;
	sem_t finished;
};
static struct digest_job *_Atomic digest_job;
static atomic_bool core_gone[DP_CORE_MAX];
static pthread_mutex_t digest_lock = PTHREAD_MUTEX_INITIALIZER;

/* A node alone reads no ring: it routes nothing. */
void dp_ring_enter(struct dp_core *c)
{
	struct ring *r;

	if (!qsbr)
		return;
	r = atomic_load_explicit(&cur_ring, memory_order_acquire);
	c->ring = r && ring_nmembers(r) > 1 ? r : NULL;
	dp_warm_enter(c);
}

void dp_ring_quiescent(struct dp_core *c)
{
	if (qsbr)
		rte_rcu_qsbr_quiescent(qsbr, c->id);
}

void dp_ring_offline(struct dp_core *c)
{
	if (qsbr)
		rte_rcu_qsbr_thread_offline(qsbr, c->id);
}

void dp_ring_online(struct dp_core *c)
{
	if (!qsbr)
		return;
	rte_rcu_qsbr_thread_online(qsbr, c->id);
	dp_ring_enter(c);
}

unsigned dp_key_owner(const struct dp_core *c, const char *key, size_t klen)
{
	if (!c->ring)
		return dp_cfg->self;
	return ring_lookup(c->ring, key, klen);
}

const struct sockaddr_storage *dp_peer_addr(unsigned member, socklen_t *len)
{
	*len = peer_salen[member];
	return &peer_sa[member];
}

/* Swaps the ring the cores read; returns the one it replaced once no
 * core can still be reading it. What the change does to the keys held
 * (dp_warm.c) is published first: a core that reads the new ring reads
 * that too. Runs on the control plane's thread. */
static struct ring *publish(void *arg, struct ring *r)
{
	struct ring *old;

	(void)arg;
	pthread_mutex_lock(&publish_lock);
	old = atomic_load_explicit(&cur_ring, memory_order_relaxed);
	dp_warm_ring_changed(old, r);
	atomic_store_explicit(&cur_ring, r, memory_order_release);
	rte_rcu_qsbr_synchronize(qsbr, RTE_QSBR_THRID_INVALID);
	dp_warm_retire();
	pthread_mutex_unlock(&publish_lock);
	return old;
}

void dp_ring_synchronize(void)
{
	rte_rcu_qsbr_synchronize(qsbr, RTE_QSBR_THRID_INVALID);
}

/* Every core's counters, read while the cores count. */
static unsigned core_stats(void *arg, struct ctl_core_stats *out, unsigned max)
{
	unsigned n = ML_MIN(max, dp_ncores);

	(void)arg;
	for (unsigned i = 0; i < n; i++) {
		const struct dp_core *c = &dp_cores[i];
		struct proto_counters pc;

		proto_node_counters(c->node, &pc);
		out[i] = (struct ctl_core_stats){
			.ops = pc.cmd_get + pc.cmd_set + pc.cmd_touch +
			       pc.delete_hits + pc.delete_misses + pc.arith +
			       pc.cmd_meta,
			.cmd_get = pc.cmd_get,
			.get_hits = pc.get_hits,
			.get_misses = pc.get_misses,
			.cmd_set = pc.cmd_set,
			.forwards = c->forwards,
			.forward_errors = c->forward_errors,
			.forwarded_in = c->forwarded_in,
			.handed_off = c->handed_off,
			.drops = c->udp_dropped,
			.curr_connections = c->cs.curr_connections,
		};
	}
	return n;
}

static void digest_key(void *arg, const struct cache_item *it)
{
	struct digest_job *j = arg;

	if (ring_range_has(j->rs, j->nrs, ring_key_point(it->key, it->klen)))
		bloom_add(j->part[0], bloom_hash(it->key, it->klen));
}

static void digest_answer(struct digest_job *j, unsigned core, bool abandoned)
{
	if (atomic_exchange(&j->claimed[core], true))
		return;
	if (abandoned)
		atomic_store(&j->abandoned, true);
	if (atomic_fetch_sub(&j->left, 1) == 1)
		sem_post(&j->finished);
}

static void core_wake(struct dp_core *c)
{
	uint64_t one = 1;

	if (write(c->evfd, &one, sizeof(one)) < 0)
		(void)0; /* the counter is full: it wakes anyway */
}

bool dp_digest_pending(const struct dp_core *c)
{
	struct digest_job *j =
		atomic_load_explicit(&digest_job, memory_order_acquire);

	return j && !j->done[c->id];
}

void dp_digest_step(struct dp_core *c)
{
	struct digest_job *j =
		atomic_load_explicit(&digest_job, memory_order_acquire);
	struct digest_job view;

	if (!j || j->done[c->id])
		return;
	/* the callback adds to part[0]: this core's filter */
	view.rs = j->rs;
	view.nrs = j->nrs;
	view.part[0] = j->part[c->id];
	if (!cache_walk_step(proto_node_shard(c->node, 0), &j->walk[c->id],
			     DIGEST_BUDGET, digest_key, &view))
		return;
	j->done[c->id] = true;
	digest_answer(j, c->id, false);
}

/* The core leaves its loop: a digest it has not finished is answered as
 * abandoned, and so is any posted after this. */
void dp_digest_leave(struct dp_core *c)
{
	struct digest_job *j;

	atomic_store(&core_gone[c->id], true);
	j = atomic_load(&digest_job);
	if (j)
		digest_answer(j, c->id, true);
}

/*
 * The Bloom digest of the keys the node holds whose ring points lie in
 * the ranges, made while the cores serve: every core walks its shard a
 * slice per pass, and the filters are merged here. Runs on the control
 * plane's thread, one digest at a time.
 */
int dp_digest(void *arg, const struct ring_range *rs, unsigned nrs,
	      struct bloom **out)
{
	struct bloom_params bp = {.bits_per_key = 10.7};
	struct digest_job *j = calloc(1, sizeof(*j));
	int rc = 0;

	(void)arg;
	if (!j)
		return -ENOMEM;
	for (unsigned i = 0; i < dp_ncores; i++) {
		struct cache_stats st;

		/* an estimate, read while the core counts */
		cache_get_stats(proto_node_shard(dp_cores[i].node, 0), &st);
		bp.nkeys += st.curr_items;
	}
	j->rs = rs;
	j->nrs = nrs;
	for (unsigned i = 0; i < dp_ncores && !rc; i++)
		rc = bloom_create(&bp, &j->part[i]);
	if (rc)
		goto out;
	if (!bp.nkeys) {
		/* nothing held (a node that has just started, whose cores
		 * may not run yet): nothing to walk */
		*out = j->part[0];
		j->part[0] = NULL;
		goto out;
	}
	atomic_store(&j->left, dp_ncores);
	sem_init(&j->finished, 0, 0);
	pthread_mutex_lock(&digest_lock);
	atomic_store(&digest_job, j);
	for (unsigned i = 0; i < dp_ncores; i++) {
		if (atomic_load(&core_gone[i]))
			digest_answer(j, i, true);
		else
			core_wake(&dp_cores[i]);
	}
	while (sem_wait(&j->finished) && errno == EINTR)
		;
	atomic_store_explicit(&digest_job, NULL, memory_order_release);
	/* a core may have read the job just before: it lets go of it by its
	 * next quiescent point */
	rte_rcu_qsbr_synchronize(qsbr, RTE_QSBR_THRID_INVALID);
	pthread_mutex_unlock(&digest_lock);
	sem_destroy(&j->finished);
	if (atomic_load(&j->abandoned))
		rc = -ECANCELED; /* the node is stopping */
	for (unsigned i = 1; i < dp_ncores && !rc; i++)
		rc = bloom_merge(j->part[0], j->part[i]);
	if (!rc) {
		*out = j->part[0];
		j->part[0] = NULL;
	}
out:
	for (unsigned i = 0; i < dp_ncores; i++)
		bloom_free(j->part[i]);
	free(j);
	return rc;
}

static int resolve_peer(unsigned i, const char *host, uint16_t port_num,
			char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
	char port[8];
	int rc;

	if (i >= DP_NODE_MAX)
		return -ENOSPC;
	snprintf(port, sizeof(port), "%u", port_num);
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc) {
		snprintf(err, errlen, "peer %s:%u: %s", host, port_num,
			 gai_strerror(rc));
		return -EINVAL;
	}
	/* before any ring names member i: the cores read it after they
	 * read that ring, which is published with release order */
	memcpy(&peer_sa[i], res->ai_addr, res->ai_addrlen);
	peer_salen[i] = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* Gossip learnt a member. Runs on the control plane's thread. */
static int member_added(void *arg, unsigned i, const char *host, uint16_t port)
{
	char err[160];
	int rc;

	(void)arg;
	rc = resolve_peer(i, host, port, err, sizeof(err));
	if (rc && dp_cfg->verbose)
		fprintf(stderr, "memlaned: %s\n", err);
	return rc;
}

int dp_cluster_setup(char *err, size_t errlen)
{
	static const struct ctl_node_ops ops = {
		.stats = core_stats,
		.publish = publish,
		.digest = dp_digest,
		.member_added = member_added,
		.handoff_offer = dp_warm_offer,
		.handoff_tick = dp_warm_tick,
	};
	const struct dp_config *cfg = dp_cfg;
	struct ctl_member members[DP_NODE_MAX];
	struct ctl_params p = {
		.members = members,
		.nmembers = cfg->nmembers,
		.self = cfg->self,
		.admin_addr = cfg->admin_off ? NULL : cfg->admin_addr,
		.admin_port = cfg->admin_port,
		.admin_required = cfg->admin_given,
		.token = cfg->admin_token,
		.verbose = cfg->verbose,
		.ops = &ops,
		.gossip = {.on = cfg->gossip,
			   .addr = cfg->gossip_addr,
			   .port = cfg->gossip_port,
			   .seeds = cfg->seeds,
			   .key = cfg->cluster_key,
			   .keylen = cfg->cluster_keylen,
			   .probe_interval_ms = cfg->probe_interval_ms,
			   .probe_timeout_ms = cfg->probe_timeout_ms,
			   .pushpull_interval_ms = cfg->pushpull_interval_ms,
			   .suspicion_mult = cfg->suspicion_mult,
			   .indirect_probes = cfg->indirect_probes,
			   .handoff_window_ms = cfg->handoff_window_s * 1000},
	};
	size_t sz;
	int rc;

	for (unsigned i = 0; i < cfg->nmembers; i++) {
		if (i != cfg->self &&
		    (rc = resolve_peer(i, cfg->members[i].host,
				       cfg->members[i].port, err, errlen)))
			return rc;
		snprintf(members[i].host, sizeof(members[i].host), "%s",
			 cfg->members[i].host);
		members[i].port = cfg->members[i].port;
		members[i].weight = cfg->members[i].weight;
	}
	sz = rte_rcu_qsbr_get_memsize(dp_ncores);
	qsbr = aligned_alloc(RTE_CACHE_LINE_SIZE,
			     (sz + RTE_CACHE_LINE_SIZE - 1) &
				     ~(size_t)(RTE_CACHE_LINE_SIZE - 1));
	if (!qsbr || rte_rcu_qsbr_init(qsbr, dp_ncores)) {
		snprintf(err, errlen, "cannot set up the ring's RCU");
		return -ENOMEM;
	}
	/* offline until its worker starts: the first ring is published
	 * before any core runs */
	for (unsigned i = 0; i < dp_ncores; i++)
		rte_rcu_qsbr_thread_register(qsbr, i);
	return ctl_start(&p, &ctl, err, errlen);
}

/* After the workers: stops the control plane, which frees the ring. */
void dp_cluster_teardown(void)
{
	ctl_stop(ctl);
	ctl = NULL;
	dp_warm_teardown();
	free(qsbr);
	qsbr = NULL;
	atomic_store(&cur_ring, NULL);
}

/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The per-core loop, and the node's setup and teardown.
 *
 *   while (!stop) {
 *           poll each backend: take what arrived (the socket backend
 *           sleeps in epoll while nothing is queued and no backend
 *           must be polled), parse, route, execute what this core owns;
 *           drain the rings from the other cores: execute their
 *           requests, file their replies;
 *           flush each backend; move queued messages onto the rings,
 *           wake the cores we sent to;
 *           once a second: clock, expiry sweep, idle connections;
 *   }
 *
 * Share nothing: a core touches only its own shard, connections, message
 * pool and backend state.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_launch.h>
#include <rte_lcore.h>

#include "dp_internal.h"
#include "dp_process.h"

const struct dp_config *dp_cfg;
struct dp_core *dp_cores;
unsigned dp_ncores;
atomic_uint dp_conns_open;
/* loop passes a busy port may take before the sockets are asked */
#define SOCK_EVERY 16

static atomic_int stop_flag;
static atomic_uint cores_quiet;
/* the backends every core runs, the socket one first */
static const struct dp_backend *backends[DP_BACKEND_MAX];
static unsigned nbackends;

unsigned dp_eal_memory_mb(const struct dp_config *cfg)
{
	/* a ring per ordered pair of cores, plus room for the EAL itself */
	size_t n = cfg->ncores, ring = RING_SIZE * sizeof(void *) + 4096;
	size_t bytes = n * (n - 1) * ring + (2u << 20);
	unsigned mb = (unsigned)((bytes + (1u << 20) - 1) >> 20) + 2;

	/* per core an mbuf pool (about 20 MB) and a PMD's own buffers
	 * (af_xdp's UMEM: 16 MB), and the port's rings */
	if (cfg->dataplane == DP_BACKEND_DPDK)
		mb += (unsigned)n * 40 + 64;
	return mb;
}

void dp_stop(void)
{
	atomic_store(&stop_flag, 1);
}

uint64_t dp_now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec;
}

uint32_t dp_wall_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return (uint32_t)ts.tv_sec;
}

static void tick(struct dp_core *c)
{
	uint64_t now = dp_now_sec();
	struct dp_conn *k, *next;

	if (now == c->last_tick)
		return;
	c->last_tick = now;
	proto_node_set_time(c->node, dp_wall_sec());
	cache_sweep(proto_node_shard(c->node, 0), SWEEP_BUDGET);
	dp_sock_accept_resume(c);
	if (!dp_cfg->idle_timeout && !dp_cfg->conn_idle_timeout)
		return;
	for (k = c->conns.next; k != &c->conns; k = next) {
		next = k->next;
		if (k->udp || k->closed || k->forwarded)
			continue;
		/* a partial request that makes no progress (--idle-timeout),
		 * or any connection idle that long (-o idle_timeout), as
		 * memcached: nothing owed to it, nothing asked of it */
		if ((dp_cfg->idle_timeout && k->rlen &&
		     now - k->last_rx >= dp_cfg->idle_timeout) ||
		    (dp_cfg->conn_idle_timeout && k->shead == k->stail &&
		     !k->dumping &&
		     now - k->last_rx >= dp_cfg->conn_idle_timeout))
			dp_conn_close(c, k);
	}
}

/* Whether every core has stopped taking input and has nothing out at
 * another core: then every core may leave its loop. */
static bool all_quiet(struct dp_core *c, bool *counted)
{
	bool waiting = false;

	for (struct dp_conn *k = c->conns.next; k != &c->conns; k = k->next)
		waiting |= k->waiting != 0;
	if (!waiting && !*counted) {
		*counted = true;
		atomic_fetch_add(&cores_quiet, 1);
	}
	return atomic_load(&cores_quiet) == dp_ncores;
}

/* How long the sleeping backend may wait: not at all while work is
 * queued or another backend must be polled. */
static int wait_ms(struct dp_core *c, bool polled)
{
	if (dp_outq_flush(c) || dp_rings_pending(c) || polled ||
	    c->fwd_failed || dp_digest_pending(c) || dp_warm_pending(c))
		return 0;
	atomic_store(&c->sleeping, 1);
	atomic_thread_fence(memory_order_seq_cst);
	if (dp_rings_pending(c)) {
		atomic_store(&c->sleeping, 0);
		return 0;
	}
	return c->quiet ? 1 : WAIT_MS;
}

static int worker(void *arg)
{
	int idx = rte_lcore_index(rte_lcore_id());
	bool quiet_counted = false, polled = false;
	unsigned skipped = 0, work;
	uint64_t t0, t1;
	struct dp_core *c;

	(void)arg;
	if (idx < 0 || (unsigned)idx >= dp_ncores)
		return 0; /* an lcore beyond -t (from --eal) */
	c = &dp_cores[idx];
	for (unsigned b = 0; b < nbackends; b++)
		polled |= backends[b]->busy_poll;
	dp_ring_online(c); /* from here the core holds rings */
	while (true) {
		if (atomic_load(&stop_flag) && !c->quiet) {
			/* stop taking input; answer what is in flight */
			c->quiet = true;
			for (unsigned b = 0; b < nbackends; b++)
				backends[b]->quiet(c);
		}
		if (c->quiet && all_quiet(c, &quiet_counted))
			break;
		t0 = rte_rdtsc();
		work = 0;
		dp_ring_enter(c);
		/* a polled port comes first; the sockets beside it are
		 * asked (a system call) only every SOCK_EVERY passes while
		 * the port keeps the core busy */
		for (unsigned b = nbackends; b-- > 0;) {
			if (b == 0 && polled && work && ++skipped < SOCK_EVERY)
				continue;
			if (b == 0)
				skipped = 0;
			work += backends[b]->poll(c, b == 0 ? wait_ms(c, polled)
							    : 0);
		}
		work += dp_rings_drain(c);
		dp_fwd_flush(c);
		dp_digest_step(c);
		dp_warm_step(c);
		for (unsigned b = 0; b < nbackends; b++)
			backends[b]->flush(c);
		dp_outq_flush(c);
		dp_kick_all(c);
		tick(c);
		if (unlikely(c->nwatchers))
			dp_watch_deliver(c);
		proto_node_set_conn_stats(c->node, &c->cs);
		dp_ring_quiescent(c);
		t1 = rte_rdtsc();
		c->loop_tsc += t1 - t0;
		if (!work)
			c->idle_tsc += t1 - t0;
	}
	dp_digest_leave(c);
	dp_warm_leave(c);
	dp_ring_offline(c);
	return 0;
}

/* ------------------------------------------------------------------------
 * stats dataplane
 * ---------------------------------------------------------------------- */

int dp_stat(struct proto_out *out, const char *name, uint64_t v)
{
	char line[160];
	int n = snprintf(line, sizeof(line), "STAT %s %" PRIu64 "\r\n", name,
			 v);

	if (proto_out_reserve(out, (size_t)n))
		return -ENOMEM;
	memcpy(out->buf + out->len, line, (size_t)n);
	out->len += (size_t)n;
	return 0;
}

int dp_stat_str(struct proto_out *out, const char *name, const char *v)
{
	char line[160];
	int n = snprintf(line, sizeof(line), "STAT %s %s\r\n", name, v);

	if (n >= (int)sizeof(line))
		n = sizeof(line) - 1;
	if (proto_out_reserve(out, (size_t)n))
		return -ENOMEM;
	memcpy(out->buf + out->len, line, (size_t)n);
	out->len += (size_t)n;
	return 0;
}

int dp_stat_core(struct proto_out *out, unsigned core, const char *name,
		 uint64_t v)
{
	char full[64];

	snprintf(full, sizeof(full), "dp_core%u_%s", core, name);
	return dp_stat(out, full, v);
}

/* The node's dataplane counters, every core's: read while the cores
 * count, as stats reads every shard's. */
static int dp_stats(void *arg, struct proto_out *out)
{
	const struct dp_backend *b = backends[nbackends - 1];
	uint64_t handed = 0, dropped = 0, loop = 0, idle = 0, capped = 0;
	uint64_t fwd = 0, fwd_err = 0, fwd_in = 0, purged = 0;
	uint64_t fetches = 0, fetched = 0, absent = 0;
	int rc = 0;

	(void)arg;
	for (unsigned i = 0; i < dp_ncores; i++) {
		handed += dp_cores[i].handed_off;
		dropped += dp_cores[i].udp_dropped;
		capped += dp_cores[i].udp_capped;
		fwd += dp_cores[i].forwards;
		fwd_err += dp_cores[i].forward_errors;
		fwd_in += dp_cores[i].forwarded_in;
		purged += dp_cores[i].purged;
		fetches += dp_cores[i].warm_fetches;
		fetched += dp_cores[i].warm_hits;
		absent += dp_cores[i].warm_misses;
		loop += dp_cores[i].loop_tsc;
		idle += dp_cores[i].idle_tsc;
		rc |= dp_stat_core(out, i, "handed_off",
				   dp_cores[i].handed_off);
		rc |= dp_stat_core(out, i, "loop_cycles", dp_cores[i].loop_tsc);
		rc |= dp_stat_core(out, i, "idle_cycles", dp_cores[i].idle_tsc);
	}
	rc |= dp_stat_str(out, "dp_backend", b->name);
	rc |= dp_stat(out, "dp_cores", dp_ncores);
	rc |= dp_stat(out, "dp_handed_off", handed);
	rc |= dp_stat(out, "dp_udp_bad_frames", dropped);
	rc |= dp_stat(out, "dp_udp_capped_keys", capped);
	rc |= dp_stat(out, "dp_members", dp_cfg->nmembers);
	rc |= dp_stat(out, "dp_forwards", fwd);
	rc |= dp_stat(out, "dp_forward_errors", fwd_err);
	rc |= dp_stat(out, "dp_forwarded_in", fwd_in);
	rc |= dp_stat(out, "dp_purged", purged);
	rc |= dp_stat(out, "dp_handoff_offers", dp_warm_offers());
	rc |= dp_stat(out, "dp_handoff_fetches", fetches);
	rc |= dp_stat(out, "dp_handoff_fetched", fetched);
	rc |= dp_stat(out, "dp_handoff_absent", absent);
	rc |= dp_stat(out, "dp_loop_cycles", loop);
	rc |= dp_stat(out, "dp_idle_cycles", idle);
	if (!rc && b->stats)
		rc = b->stats(out);
	return rc ? -ENOMEM : 0;
}

/* ------------------------------------------------------------------------
 * Setup and teardown
 * ---------------------------------------------------------------------- */

static void core_teardown(struct dp_core *c)
{
	for (unsigned b = nbackends; b-- > 0;)
		if (backends[b]->teardown)
			backends[b]->teardown(c);
	dp_fwd_teardown(c);
	while (c->conns.next != &c->conns) {
		struct dp_conn *k = c->conns.next;

		k->waiting = 0;
		dp_conn_close(c, k);
	}
	dp_msgs_teardown(c);
	while (c->udp_pool) {
		struct dp_conn *k = c->udp_pool;

		c->udp_pool = k->next;
		dp_conn_free(k);
	}
	if (c->evfd >= 0)
		close(c->evfd);
	c->evfd = -1;
}

/* -A's shutdown command: every stop of memlaned's drains what is owed,
 * so graceful or not, it is the same stop. */
static void node_shutdown(bool graceful)
{
	(void)graceful;
	dp_stop();
}

static const char *const binding_names[] = {
	[DP_BIND_AUTO] = "auto-negotiate",
	[DP_BIND_ASCII] = "ascii",
	[DP_BIND_BINARY] = "binary",
};

static int core_setup(struct dp_core *c, unsigned id, char *err, size_t errlen)
{
	const struct dp_config *cfg = dp_cfg;
	struct proto_node_params np = {
		.nshards = 1,
		.mem_limit = cfg->mem_limit / dp_ncores,
		.item_size_max = cfg->item_size_max,
		.no_evict = cfg->no_evict,
		.now = dp_wall_sec(),
		.pid = (uint32_t)getpid(),
		.conn_max = cfg->conn_max,
		.tcp_port = cfg->tcp_port,
		.udp_port = cfg->udp_port,
		.threads = dp_ncores,
		.cas_id = id,
		.cas_id_bits = 0,
		/* hashpower: memcached's starting index, 2^n items */
		.items_hint = cfg->hashpower
				      ? (1ull << ML_MIN(cfg->hashpower, 32u)) /
						dp_ncores
				      : 0,
		.no_cas = cfg->no_cas,
		.huge_pages = cfg->largepages,
		.no_flush = cfg->no_flush,
		.no_dump = cfg->no_dump,
		.no_watch = cfg->no_watch,
		.shutdown_cmd = cfg->shutdown_cmd,
		.auth_ascii = cfg->auth_file[0] != '\0',
		.maxconns_fast = cfg->maxconns_fast,
		.lru_crawler = cfg->lru_crawler,
		.detail_delim = cfg->detail_delim,
		.binding = binding_names[cfg->binding],
		.domain_socket = cfg->unix_path[0] ? cfg->unix_path : NULL,
		.inter = cfg->listen_arg[0] ? cfg->listen_arg : "127.0.0.1",
		.umask = cfg->unix_mask,
		.reqs_per_event = cfg->reqs_per_event,
		.tcp_backlog = cfg->backlog,
		.idle_timeout = cfg->conn_idle_timeout,
		.hashpower = cfg->hashpower,
		.lru_crawler_sleep = cfg->lru_crawler_sleep,
		.lru_crawler_tocrawl = cfg->lru_crawler_tocrawl,
		.read_buf_mem_mb = cfg->read_buf_mem_mb,
		.watcher_logbuf_kb = cfg->watcher_logbuf_kb,
		.worker_logbuf_kb = cfg->worker_logbuf_kb,
		.ssl = cfg->ssl,
		.ssl_verify_mode = cfg->ssl_verify_mode,
		.ssl_min_version = cfg->ssl_min_version,
		.ssl_wbuf_kb = cfg->ssl_wbuf_kb,
		.ssl_session_cache = cfg->ssl_session_cache,
		.ssl_chain_cert = cfg->ssl_chain_cert,
		.ssl_key = cfg->ssl_key,
		.ssl_ca_cert = cfg->ssl_ca_cert,
		.ssl_ciphers = cfg->ssl_ciphers,
		.shutdown = node_shutdown,
		.watch = &dp_watch,
	};
	int rc;

	while ((1u << np.cas_id_bits) < dp_ncores)
		np.cas_id_bits++;
	c->id = id;
	c->node = proto_node_create(&np);
	if (!c->node) {
		snprintf(err, errlen, "core %u: cannot create its shard: %s",
			 id, strerror(errno));
		return -ENOMEM;
	}
	c->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->evfd < 0) {
		snprintf(err, errlen, "core %u: %s", id, strerror(errno));
		return -errno;
	}
	for (unsigned b = 0; b < nbackends; b++)
		if ((rc = backends[b]->setup(c, err, errlen)))
			return rc;
	if ((rc = dp_fwd_setup(c, err, errlen)))
		return rc;
	for (int i = 0; i < MSG_PREALLOC; i++) {
		struct dp_msg *m = calloc(1, sizeof(*m));

		if (!m)
			return -ENOMEM;
		dp_msg_put(c, m);
	}
	return 0;
}

int dp_run(const struct dp_config *config, char *err, size_t errlen)
{
	/* every core's node, which each node reads for stats: it lives as
	 * long as the cores run */
	struct proto_node *peers[DP_CORE_MAX];
	int rc = 0;

	dp_cfg = config;
	dp_ncores = config->ncores;
	nbackends = 0;
	backends[nbackends++] = &dp_socket_backend;
	if (config->dataplane == DP_BACKEND_DPDK)
		backends[nbackends++] = &dp_dpdk_backend;
	if (rte_lcore_count() < dp_ncores) {
		snprintf(err, errlen, "the EAL has %u lcores, %u are needed",
			 rte_lcore_count(), dp_ncores);
		return -EINVAL;
	}
	dp_cores = aligned_alloc(ML_CACHE_LINE, sizeof(*dp_cores) * dp_ncores);
	if (!dp_cores) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	memset(dp_cores, 0, sizeof(*dp_cores) * dp_ncores);
	for (unsigned i = 0; i < dp_ncores; i++) {
		struct dp_core *c = &dp_cores[i];

		c->id = i;
		c->evfd = -1;
		c->sock.ep = -1;
		c->conns.next = c->conns.prev = &c->conns;
		pthread_mutex_init(&c->tcp_lock, NULL);
	}
	if (config->auth_file[0])
		rc = dp_auth_load(config->auth_file, err, errlen);
	if (!rc && config->ssl)
		rc = dp_tls_setup(config, err, errlen);
	for (unsigned i = 0; i < dp_ncores && !rc; i++)
		rc = core_setup(&dp_cores[i], i, err, errlen);
	if (!rc)
		rc = dp_rings_setup(err, errlen);
	if (!rc)
		rc = dp_cluster_setup(err, errlen);
	if (!rc) {
		for (unsigned i = 0; i < dp_ncores; i++)
			peers[i] = dp_cores[i].node;
		for (unsigned i = 0; i < dp_ncores; i++) {
			proto_node_set_peers(dp_cores[i].node, peers,
					     dp_ncores);
			proto_node_set_transport_stats(dp_cores[i].node,
						       dp_stats, NULL);
			proto_node_set_transport_conns(
				dp_cores[i].node, dp_sock_conns, &dp_cores[i]);
		}
		if (config->verbose)
			fprintf(stderr,
				"memlaned: %u cores, %s, tcp %u, udp %u, %zu "
				"MB\n",
				dp_ncores, backends[nbackends - 1]->name,
				config->tcp_port, config->udp_port,
				config->mem_limit >> 20);
		rc = dp_process_ready(config, err, errlen);
	}
	if (!rc) {
		rte_eal_mp_remote_launch(worker, NULL, CALL_MAIN);
		rte_eal_mp_wait_lcore();
	}
	dp_cluster_teardown();
	for (unsigned i = 0; i < dp_ncores; i++)
		core_teardown(&dp_cores[i]);
	for (unsigned b = nbackends; b-- > 0;)
		if (backends[b]->close)
			backends[b]->close();
	dp_rings_free();
	for (unsigned i = 0; i < dp_ncores; i++)
		proto_node_free(dp_cores[i].node);
	free(dp_cores);
	dp_cores = NULL;
	dp_auth_free();
	dp_tls_free();
	return rc;
}

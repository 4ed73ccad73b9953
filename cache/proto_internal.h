/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The node as the protocol's own files see it (process.c and the files
 * that answer beside it). Never included from another folder.
 */
#ifndef MEMLANE_CACHE_PROTO_INTERNAL_H
#define MEMLANE_CACHE_PROTO_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "proto.h"

/* Node counters, in memcached's names. */
struct proc_counters { /* only uint64_t members: summed word by word */
	uint64_t cmd_get;
	uint64_t cmd_set;
	uint64_t cmd_flush;
	uint64_t cmd_touch;
	uint64_t cmd_meta;
	uint64_t get_hits;
	uint64_t get_misses;
	uint64_t delete_misses;
	uint64_t delete_hits;
	uint64_t incr_misses;
	uint64_t incr_hits;
	uint64_t decr_misses;
	uint64_t decr_hits;
	uint64_t cas_misses;
	uint64_t cas_hits;
	uint64_t cas_badval;
	uint64_t touch_hits;
	uint64_t touch_misses;
	uint64_t store_too_large;
	uint64_t store_no_memory;
};

/* Shard and transport counters as they were at the last "stats reset":
 * those are not ours to zero, so stats reports the difference. */
struct proc_baseline {
	uint64_t total_items;
	uint64_t evictions;
	uint64_t expired_unfetched;
	uint64_t evicted_unfetched;
	uint64_t reclaimed;
	uint64_t moved_to_main;
	uint64_t reinserted;
	uint64_t total_connections;
	uint64_t rejected_connections;
	uint64_t bytes_read;
	uint64_t bytes_written;
};

struct proto_node {
	/* hot: routing and the clock */
	struct cache_shard **shards;
	unsigned nshards;
	uint32_t now;

	/*
	 * A delayed flush_all, applied when the clock reaches flush_at; then,
	 * for the rest of that second, whatever is stored is gone at once
	 * (flush_hold), as memcached hides every item written up to and
	 * including that second.
	 */
	bool flush_pending;
	bool flush_hold;
	uint32_t flush_at;

	struct proc_counters c;

	/* cold: what stats reports */
	uint32_t started;
	unsigned verbosity;
	bool detail;
	struct proto_node_params p;
	struct proto_conn_stats conn;
	struct proc_baseline base;
	struct proc_counters c_base; /* counters at "stats reset" */

	/* every node of the process, this one included (see
	 * proto_node_set_peers()); NULL when this node is the only one */
	struct proto_node *const *peers;
	unsigned npeers;

	/* the transport's counters: stats dataplane */
	int (*transport_stats)(void *arg, struct proto_out *out);
	void *transport_arg;
};

#endif /* MEMLANE_CACHE_PROTO_INTERNAL_H */

/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The node as the protocol's own files see it (process.c and the files
 * that answer beside it). Never included from another folder.
 */
#ifndef MEMLANE_CACHE_PROTO_INTERNAL_H
#define MEMLANE_CACHE_PROTO_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "cache.h"
#include "common.h"
#include "proto.h"

/* What we answer to "version" and in stats. The golden transcripts of
 * memcached 1.6.18 are compared with the version normalised. */
#define PROC_VERSION "1.6.18-memlane-" MEMLANE_VERSION

/* memcached: exptimes up to 30 days are relative, larger ones absolute. */
#define REALTIME_MAXDELTA (60 * 60 * 24 * 30)

/* An exptime that is already in the past for any clock: the item is
 * stored (it replaces the old value) but is never seen. */
#define EXPTIME_PAST 1u

/* Node counters, in memcached's names. */
struct proc_counters { /* only uint64_t members: summed word by word */
	uint64_t cmd_get;
	uint64_t cmd_set;
	uint64_t cmd_flush;
	uint64_t cmd_touch;
	uint64_t cmd_meta; /* every meta command: the admin endpoint's */
	uint64_t cmd_me;   /* me: what memcached's stats calls cmd_meta */
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
	uint64_t lru_crawler_starts; /* lru_crawler crawl's */
};

/* Shard and transport counters as they were at the last "stats reset":
 * those are not ours to zero, so stats reports the difference. */
struct proc_baseline {
	uint64_t total_items;
	uint64_t evictions;
	uint64_t expired_unfetched;
	uint64_t evicted_unfetched;
	uint64_t reclaimed;
	uint64_t get_expired;
	uint64_t get_flushed;
	uint64_t crawler_checked;
	uint64_t crawler_reclaimed;
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
	atomic_bool detail;		   /* stats detail on (-D) */
	struct proto_detail *detail_table; /* proto_detail.c */
	bool lru_crawler;		   /* lru_crawler enable|disable */
	unsigned slab_automove; /* slabs automove: shown, nothing to move */
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
	int (*transport_conns)(void *arg, struct proto_out *out);
	void *transport_conns_arg;
};

static inline struct cache_shard *shard_of(const struct proto_node *n,
					   uint64_t hv)
{
	return n->shards[ml_hash_core(hv, n->nshards)];
}

/*
 * An exptime as sent (memcached's rules) to the store's absolute unix
 * seconds: 0 never expires, a negative one has already expired, up to 30
 * days is relative to now, anything larger is a unix time (expired if it
 * is not in the future).
 */
static inline uint32_t exptime_abs(const struct proto_node *n, int64_t exptime)
{
	if (exptime == 0)
		return 0;
	if (exptime < 0)
		return EXPTIME_PAST;
	if (exptime > REALTIME_MAXDELTA) {
		if (exptime <= n->now)
			return EXPTIME_PAST;
		return exptime > UINT32_MAX ? UINT32_MAX : (uint32_t)exptime;
	}
	return n->now + (uint32_t)exptime;
}

/* An incr or decr counted, as memcached counts them. */
static inline void count_arith(struct proto_node *n, bool incr, bool hit)
{
	if (incr)
		*(hit ? &n->c.incr_hits : &n->c.incr_misses) += 1;
	else
		*(hit ? &n->c.decr_hits : &n->c.decr_misses) += 1;
}

/* Both parsers: the data-block bytes a refused request left to drop
 * come first, as a request of nothing (0: none are left). */
static inline size_t parse_swallowed(struct proto_parser *ps, size_t len,
				     struct proto_req *req)
{
	size_t n;

	if (likely(ps->swallow == 0))
		return 0;
	n = (size_t)ML_MIN((uint64_t)len, ps->swallow);
	ps->swallow -= n;
	req->cmd = PROTO_NONE;
	req->len = (uint32_t)n;
	return n;
}

/* Stores for set/add/replace/append/prepend/cas and for ms: the store's
 * answer, with the memcached quirks the store cannot know of. */
struct store_op {
	struct cache_store st;
	bool cas_cmd;  /* cas semantics: missing is NOT_FOUND */
	bool drop_old; /* on a failed store the old value goes (set, ms) */
	bool joined;   /* out: the joined value of an append did not fit */
};

/* What the text commands share with the binary ones (proto_binary.c):
 * a store with memcached's counting and quirks (-errno as cache_store()),
 * flush_all (req->has_num, req->num: its delay; req->noreply: no "OK"),
 * and stats (req->args_off and args_len name the group in buf), each
 * answering in text. */
int proto_store_run(struct proto_node *n, struct store_op *op,
		    struct cache_item *out);
/* watch (proto_watch.c): a line for the log, when a watcher asks */
#define WATCHING(n, what)                                                      \
	unlikely((n)->p.watch && (atomic_load_explicit(&(n)->p.watch->mask,    \
						       memory_order_relaxed) & \
				  (what)))
void proto_watch_fetch(struct proto_node *n, const char *key, uint32_t klen,
		       const struct cache_item *it);
void proto_watch_store(struct proto_node *n, const struct store_op *op, int rc);
void proto_watch_evicted(void *node, const struct cache_item *it);

/* per-prefix stats (proto_detail.c), counted while n->detail is on */
enum proto_detail_what { DETAIL_GET, DETAIL_HIT, DETAIL_SET, DETAIL_DEL };
void proto_detail_count(struct proto_node *n, const char *key, uint32_t klen,
			enum proto_detail_what what);
int proto_detail_dump(struct proto_node *n, struct proto_out *out);
void proto_detail_free(struct proto_node *n);

/* PROTO_ADMIN (proto_admin.c) */
int proto_admin_execute(struct proto_node *n, const char *buf,
			const struct proto_req *req, struct proto_out *out);
int proto_do_flush_all(struct proto_node *n, const struct proto_req *req,
		       struct proto_out *out);
int proto_do_stats(struct proto_node *n, const char *buf,
		   const struct proto_req *req, struct proto_out *out);

/* The binary protocol (proto_binary.c): a request proto_parse_binary()
 * made, run. As proto_execute(). */
int proto_bin_execute(struct proto_node *n, const char *buf,
		      const struct proto_req *req, struct proto_out *out);

#endif /* MEMLANE_CACHE_PROTO_INTERNAL_H */

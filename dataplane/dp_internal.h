/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The dataplane's rooms and what they share. Never included from another
 * folder.
 *
 *   dp_loop.c     the per-core loop, the node's setup and teardown
 *   dp_conn.c     connections: parse, route, execute, replies in order,
 *                 memcached's UDP reply rules
 *   dp_handoff.c  messages between cores over the SP/SC rings
 *   dp_socket.c   the socket backend: TCP and UDP on kernel sockets
 *   dp_dpdk.c     the DPDK backend: memcached UDP on a DPDK port
 *   dp_xdp.c      the XDP program's loader (libbpf), for net_af_xdp
 *   dp_forward.c  requests for keys another node owns: pooled, pipelined
 *                 connections from each core to each peer
 *   dp_cluster.c  the ring the cores read (published under RCU), the
 *                 peers' addresses, what the admin endpoint asks of cores
 *   dp_warm.c     what a ring change does to the keys held: the gate of
 *                 ranges gained, the purge of ranges lost, and the warm
 *                 hand-off (fetching a key from its previous owner)
 *
 * A backend is the small interface below (struct dp_backend): the loop
 * asks it to set a core up, to poll, to flush and to let go, and every
 * request it takes becomes a connection (struct dp_conn) whose ops say
 * how its replies leave. Above a connection nothing knows which backend
 * delivered the request: parse, route, hand-off and execute are one code
 * for all of them.
 */
#ifndef MEMLANE_DP_INTERNAL_H
#define MEMLANE_DP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cache.h"
#include "common.h"
#include "dataplane.h"

#define BURST	     32		 /* events, datagrams, packets, messages */
#define RING_SIZE    4096	 /* messages per direction between cores */
#define SLOT_MAX     1024	 /* requests in flight on one connection */
#define WAIT_MAX     64		 /* of those, at other cores */
#define RBUF_MIN     (16 * 1024) /* first receive buffer of a connection */
#define OUT_HIGH     (4u << 20)	 /* unsent bytes that pause reading */
#define MSG_PREALLOC 256	 /* messages per core made at setup */
#define UDP_DGRAM    65536
#define WAIT_MS	     100  /* longest sleep: the stop flag's delay */
#define SWEEP_BUDGET 1024 /* index buckets inspected per second */
#define DRAIN_MS     200  /* flushing replies at stop */
#define AHEAD_MAX    32	  /* requests parsed before they run, to prefetch */
#define UDP_POOL_MAX 64	  /* datagram connections a core keeps for reuse */
#define UDP_OUT_KEEP (64 * 1024) /* a pooled one's reply buffer, at most */
#define UDP_AMPLIFY                                                            \
	64 /* reply bytes a datagram may ask per byte of it,                   \
	      past one largest item (see udp_bound()) */

struct dp_core;
struct dp_conn;
struct dp_fwd;
struct rte_mbuf;
struct ring;
struct ring_range;
struct bloom;

/* ------------------------------------------------------------------------
 * Messages between cores (dp_handoff.c)
 * ---------------------------------------------------------------------- */

enum msg_kind {
	MSG_REQ,
	MSG_REPLY,
	MSG_FLUSH,
	MSG_FLUSH_DONE,
	MSG_FETCH,
	MSG_DUMP,      /* a batch of a key dump, to the shard's core */
	MSG_DUMP_DONE, /* and back, with its lines */
};

/* A request on its way to the core that owns its key, and its reply on
 * the way back. */
struct dp_msg {
	uint8_t kind;
	uint8_t src;	/* core that sent the request, and owns the msg */
	bool strip_end; /* one key of a split get: drop its END line */
	bool close;	/* the reply closes the connection */
	uint32_t slot;	/* the request's slot on its connection */
	struct dp_conn *conn;
	struct proto_req req;
	struct proto_out bytes; /* the request's bytes */
	struct proto_out reply;
	struct dp_msg *next; /* free list; a peer's queue */
	uint64_t t_ms;	     /* forwarded: when it was queued */
	struct dp_msg *orig; /* MSG_FETCH: the request that waits for it */
};

/* A message from the core's pool (NULL when memory is out). */
struct dp_msg *dp_msg_get(struct dp_core *c);
/* Returns a message to the pool of the core running this (its owner). */
void dp_msg_put(struct dp_core *c, struct dp_msg *m);
void dp_msg_free(struct dp_msg *m);
/* Queues a message for core dst; it goes onto the ring at the end of the
 * loop's pass (dp_outq_flush()). */
void dp_msg_send(struct dp_core *c, unsigned dst, struct dp_msg *m);
/* Moves queued messages onto the rings. Returns whether any stayed
 * queued (a ring was full). */
bool dp_outq_flush(struct dp_core *c);
/* Whether another core has put messages on a ring to this one. */
bool dp_rings_pending(const struct dp_core *c);
/* Wakes the cores this one sent to, if they sleep. */
void dp_kick_all(struct dp_core *c);
/* Takes the messages from the other cores: runs their requests, files
 * their replies. Returns how many it took. */
unsigned dp_rings_drain(struct dp_core *c);
/* Sends a flush_all to every other core (their shards flush too). */
void dp_flush_broadcast(struct dp_core *c, const char *buf,
			const struct proto_req *req);
int dp_rings_setup(char *err, size_t errlen);
/* Frees the rings and what is still on them; runs after the workers. */
void dp_rings_free(void);
/* Frees the core's pool and what it had queued. */
void dp_msgs_teardown(struct dp_core *c);

/* ------------------------------------------------------------------------
 * Connections (dp_conn.c)
 * ---------------------------------------------------------------------- */

enum { SLOT_WAIT, SLOT_READY };

/* What a request is of its line: all of it, a key of a split retrieval
 * (its reply cut from its END), or the END that closes one; or a binary
 * frame, whose response is a message of its own even when it is empty
 * (a quiet miss), as memcached sends it over UDP. */
enum part { PART_NONE, PART_FIRST, PART_NEXT, PART_END, PART_BIN };

struct dp_slot {
	uint8_t state;
	uint8_t part; /* enum part */
	bool flush;   /* UDP: memcached sends what it holds after this */
	bool close;
	struct dp_msg *msg; /* holds the reply */
};

/* How a connection's replies leave, given by the backend that made it. */
struct dp_conn_ops {
	/* Sends what k->out holds: a stream writes what it can (and asks
	 * to be told when it can write more); a datagram connection sends
	 * it as one message, an empty one as a bare header. Returns false
	 * when the connection was closed. */
	bool (*send)(struct dp_core *c, struct dp_conn *k);
	/* A reply from another core was filed: moves the connection on. */
	void (*progress)(struct dp_core *c, struct dp_conn *k);
	/* The connection is closed: lets go of what the backend holds for
	 * it (a socket, a packet buffer). Runs once. */
	void (*closed)(struct dp_core *c, struct dp_conn *k);
};

struct dp_conn {
	int fd;
	bool udp;
	bool want_close;  /* quit or error: answer what came before, then close
			   */
	bool eof;	  /* the client sent all it will: answer it, close */
	bool ended;	  /* a quit or a close was taken: nothing after runs */
	bool closed;	  /* fd gone; freed when no reply is out */
	bool pollout;	  /* the socket is full: EPOLLOUT wanted */
	bool pollout_set; /* EPOLLOUT is what epoll has */
	bool paused;	  /* EPOLLIN dropped: it may not take more now */
	bool walked;	  /* UDP: a response went out since the last flush */
	bool greeted;	  /* TCP: its first bytes were looked at */
	bool forwarded;	  /* a peer's forwarding connection: run, never
			     forward */
	bool binary; /* memcached's binary protocol (its first byte said) */
	bool authed; /* -Y: its first set gave a user and password */
	/* -Z: its TLS session (dp_tls.c), NULL on a plain connection, and
	 * whether OpenSSL waits to write before it can go on */
	struct ssl_st *tls;
	bool tls_wants_write;
	/* watch (dp_watch.c): the kinds it asked for (0: not a watcher),
	 * how far into the log it has read, and the lines it has seen */
	unsigned watch_mask;
	uint64_t watch_pos, watch_lines;
	/* a key dump under way (dp_dump.c): the core whose shard it walks
	 * and where, a batch out, and a cachedump's limit and bytes */
	bool dumping, dump_inflight, dump_all;
	uint8_t dump_kind;
	unsigned dump_core;
	uint32_t dump_bucket;
	uint64_t dump_left, dump_bytes;
	const struct dp_conn_ops *ops;
	struct proto_parser ps;
	char *rbuf;
	size_t rlen, rcap;
	struct proto_out out;
	size_t out_sent;
	struct dp_slot *slots;
	uint32_t scap;	       /* slots[] size, a power of two */
	uint32_t shead, stail; /* slots in [shead, stail), by sequence */
	uint32_t waiting;      /* slots waiting for another core */
	size_t held;	       /* reply bytes in ready slots */
	uint64_t last_rx;      /* when input last made progress, seconds */
	/* A split retrieval (see split_run()) is taken a key at a time while
	 * the connection has room: its request stays at the head of rbuf
	 * and split_pos is where its key walk stands. */
	bool splitting;
	bool runnable; /* input is left that only room stopped */
	bool yielded;  /* -R stopped it: its next turn comes after others' */
	uint32_t split_pos;
	struct proto_req split;
	/* requests parsed but not yet run (kept back by room, or a datagram
	 * parsed with its burst), in order, the first at the head of rbuf;
	 * made when first needed */
	struct proto_req *left;
	uint32_t nleft;
	struct dp_conn *prev, *next;
	/* a TCP connection of the socket backend: its core's list of them,
	 * which stats conns reads from any core (under tcp_lock) */
	struct dp_conn *tprev, *tnext;
	/* a datagram's request id, and where its replies go: a socket
	 * address, or a packet peer kept with the packet it came in */
	uint16_t req_id;
	size_t udp_bytes; /* replies so far, against udp_cap */
	size_t udp_cap;
	union {
		struct {
			struct sockaddr_storage addr;
			socklen_t len;
			int fd;
		} sock;
		struct {
			uint8_t mac[6];
			uint16_t port; /* network order, as ip */
			uint32_t ip;
			struct rte_mbuf *keep; /* reused for the first reply */
		} pkt;
	} peer;
};

/* A new connection on this core; a datagram one comes from the core's
 * pool. NULL when memory is out. */
struct dp_conn *dp_conn_new(struct dp_core *c, int fd, bool udp,
			    const struct dp_conn_ops *ops);
/* Closes a connection; it is freed now or when its last reply returns. */
void dp_conn_close(struct dp_core *c, struct dp_conn *k);
void dp_conn_free(struct dp_conn *k);
/*
 * Parses and runs what the connection's buffer holds, as far as it may
 * take requests now (a datagram is taken whole). Sets k->runnable when
 * input is left that only room stopped.
 */
void dp_conn_parse(struct dp_core *c, struct dp_conn *k);
/* Appends ready slots, in order, to the connection's output. */
void dp_conn_drain(struct dp_core *c, struct dp_conn *k);
/*
 * Whether the connection may take another request: it has not asked to
 * close, and what it has in flight is bounded in requests, in requests at
 * other cores and in unsent reply bytes. A client that does not read its
 * replies is therefore not read either, and costs at most about OUT_HIGH
 * plus WAIT_MAX replies.
 */
static inline bool dp_conn_can_take(const struct dp_conn *k)
{
	size_t pending = k->out.len - k->out_sent + k->held;

	return !k->want_close && k->stail - k->shead < SLOT_MAX &&
	       k->waiting < WAIT_MAX && pending <= OUT_HIGH;
}
/* The most a connection buffers: a command line and the largest item. */
size_t dp_rbuf_max(void);
/* Files a reply from another core in its slot, and moves its connection
 * on. */
void dp_conn_reply(struct dp_core *c, struct dp_msg *m);
/* Drops a trailing "END\r\n" (one key of a split retrieval). */
void dp_strip_end(struct proto_out *o, size_t from);

/*
 * A datagram: a connection that owns a copy of its payload (the memcached
 * frame header first), or NULL when the datagram is dropped (a bad frame
 * header, counted in c->udp_dropped) or memory is out. The caller fills
 * k->peer.
 */
struct dp_conn *dp_udp_take(struct dp_core *c, const char *d, size_t n,
			    const struct dp_conn_ops *ops);
/*
 * A burst of datagrams taken: parses each into its connection's requests
 * held back, prefetches the keys this core owns together, then runs the
 * datagrams in order. k[i] may be NULL (dropped).
 */
void dp_udp_burst(struct dp_core *c, struct dp_conn *const *k, unsigned n);
/* One datagram's requests, run; again on each reply from another core.
 * The datagram is done once nothing is out or held back. */
void dp_udp_run(struct dp_core *c, struct dp_conn *k);

/* ------------------------------------------------------------------------
 * Backends
 * ---------------------------------------------------------------------- */

/*
 * What the loop calls. setup runs on the main thread before the workers
 * start, teardown after they stopped; quiet, poll and flush run on the
 * core's own worker.
 */
struct dp_backend {
	const char *name;
	/* Sets up the core's part; the first core's call also sets up what
	 * the node shares (a port), the last one's starts it. */
	int (*setup)(struct dp_core *c, char *err, size_t errlen);
	/* Stops taking new input; what is in flight is still answered. */
	void (*quiet)(struct dp_core *c);
	/* Takes what has arrived (waiting at most timeout_ms for it, where
	 * the backend can sleep) and runs it. Returns how much it took. */
	unsigned (*poll)(struct dp_core *c, int timeout_ms);
	/* Sends what the pass queued. */
	void (*flush)(struct dp_core *c);
	/* Flushes what is owed, briefly, and closes what it opened. */
	void (*teardown)(struct dp_core *c);
	/* After every core's teardown: closes what the node shares. May be
	 * NULL. */
	void (*close)(void);
	/* Appends the backend's stats dataplane lines (all cores); may be
	 * NULL. Returns 0 or -ENOMEM. */
	int (*stats)(struct proto_out *out);
	/* Whether poll must be called without sleeping (a polled port). */
	bool busy_poll;
};

extern const struct dp_backend dp_socket_backend;
extern const struct dp_backend dp_dpdk_backend;

/* The socket backend's part of a core. */
struct dp_sock_core {
	int ep;
	int lfd[DP_ADDR_MAX + 1]; /* TCP per -l address, or the -s socket */
	bool lfd_tls[DP_ADDR_MAX + 1]; /* -Z, and not a notls: address */
	int ufd[DP_ADDR_MAX];
	unsigned nl, nu;
	char *dgram;
	bool accept_paused; /* -c reached with no_maxconns_fast */
};

/* Without maxconns_fast, a core that reached -c stops accepting; the
 * socket backend's tick takes its listeners back once a slot is free. */
void dp_sock_accept_resume(struct dp_core *c);

/* The DPDK backend's part of a core, opaque to the rest. */
struct dp_pkt_core;

/* ------------------------------------------------------------------------
 * Cores (dp_loop.c)
 * ---------------------------------------------------------------------- */

#define DP_BACKEND_MAX 2

struct dp_core {
	unsigned id;
	int evfd; /* written to wake the core while it sleeps */
	atomic_int sleeping;

	/* watch: this core's watcher connections (dp_watch.c) */
	struct dp_conn *watchers[16];
	unsigned nwatchers;
	struct proto_node *node;
	struct rte_ring *to[DP_CORE_MAX];   /* this core -> core i */
	struct rte_ring *from[DP_CORE_MAX]; /* core i -> this core */
	/* messages for core i not yet on its ring, oldest first */
	struct dp_msg *outq[DP_CORE_MAX];
	struct dp_msg *outq_tail[DP_CORE_MAX];
	bool kick[DP_CORE_MAX];
	struct dp_msg *pool;
	struct dp_conn conns; /* list head */
	struct proto_conn_stats cs;
	uint64_t last_tick;
	uint64_t udp_dropped;
	uint64_t handed_off; /* requests sent to their owner core */
	uint64_t udp_capped; /* keys left out of a UDP reply (udp_bound()) */
	/* TSC cycles in the loop, and in passes that found no work (an
	 * epoll sleep included): the core's idle share */
	uint64_t loop_tsc, idle_tsc;
	bool quiet;			   /* stopping: no new input */
	struct proto_req ahead[AHEAD_MAX]; /* parsed, not yet run */
	struct dp_conn *udp_pool;	   /* released datagram connections */
	unsigned udp_pooled;
	struct dp_sock_core sock;
	struct dp_pkt_core *pkt;
	/* its TCP connections, for stats conns: changed by this core at
	 * accept and close, read by the core that runs stats conns */
	pthread_mutex_t tcp_lock;
	struct dp_conn *tcp_first;
	const struct dp_conn *running; /* whose requests run now */
	/* the cluster: the ring read at the start of the pass (NULL for a
	 * node alone), and a forwarding connection per member */
	const struct ring *ring;
	struct dp_fwd *fwd;
	struct dp_msg *fwd_failed; /* answered here, filed at the flush */
	/* what a ring change does here (dp_warm.c): the gate of this
	 * core's shard and its reap, the events taken, the offers of
	 * previous owners read at the start of the pass (NULL: none live),
	 * and the keys not to fetch again */
	struct dp_gate *gate;
	struct cache_walk reap;
	bool reaping;
	_Atomic uint64_t gate_seen, purge_seen;
	const struct dp_warm_table *warm;
	uint64_t warm_now; /* ms, at the start of the pass */
	struct bloom *tried;
	uint64_t warm_fetches; /* keys fetched from a previous owner */
	uint64_t warm_hits;    /* of those, found there and stored here */
	uint64_t warm_misses;  /* not there, or not stored */
	uint64_t purged;       /* items the gate dropped (this shard's count) */
	uint64_t forwards;     /* requests sent to their owner node */
	uint64_t forward_errors; /* of those, answered SERVER_ERROR here */
	uint64_t forwarded_in;	 /* requests peers forwarded here */
} ML_CACHE_ALIGNED;

/* The node, as every core sees it; set before the workers start. */
/* -Z (dp_tls.c): the server context, made at start, and each TLS
 * connection's I/O, with a socket's conventions (-1 and EAGAIN when
 * OpenSSL must wait; tls_wants_write says for what) */
int dp_tls_setup(const struct dp_config *cfg, char *err, size_t errlen);
void dp_tls_free(void);
int dp_tls_accept(struct dp_conn *k);
ssize_t dp_tls_read(struct dp_conn *k, void *buf, size_t len);
ssize_t dp_tls_write(struct dp_conn *k, const void *buf, size_t len);
bool dp_tls_pending(const struct dp_conn *k);
void dp_tls_close(struct dp_conn *k);

/* watch (dp_watch.c): the log every node writes to, and its watchers.
 * A kind memcached knows that memlane never logs takes this bit. */
#define DP_WATCH_SILENT 0x80000000u
extern struct proto_watch dp_watch;
/* Makes k a watcher and answers OK; false when memcached would refuse
 * the command (-W, a kind it does not know), which then runs as any. */
bool dp_watch_start(struct dp_core *c, struct dp_conn *k, const char *buf,
		    const struct proto_req *req);
void dp_watch_stop(struct dp_core *c, struct dp_conn *k);
/* Each pass of a core with watchers: what is new, sent to them. */
void dp_watch_deliver(struct dp_core *c);

/* -Y (dp_auth.c): the user:password table, loaded at start */
extern bool dp_auth_on;
int dp_auth_load(const char *path, char *err, size_t errlen);
void dp_auth_free(void);
/* Before an unauthenticated connection's request runs: turns it into
 * its answer (an error, or STORED for a set of a known user's token,
 * which authenticates the connection). */
void dp_auth_gate(struct dp_conn *k, const char *buf, struct proto_req *req);

/* Bytes of TCP read buffers, all cores together, and the charge of a
 * buffer's growth against -o read_buf_mem_limit (false: over it). */
extern atomic_size_t dp_rbuf_bytes;
bool dp_rbuf_charge(ssize_t bytes);

extern const struct dp_config *dp_cfg;
extern struct dp_core *dp_cores;
extern unsigned dp_ncores;
extern atomic_uint dp_conns_open;

/* ------------------------------------------------------------------------
 * The cluster (dp_cluster.c) and forwarding (dp_forward.c)
 * ---------------------------------------------------------------------- */

/* Resolves the peers, publishes the first ring, starts the admin
 * endpoint; runs before the workers. */
int dp_cluster_setup(char *err, size_t errlen);
void dp_cluster_teardown(void);
/* The core reads the current ring (at the start of a pass), and says it
 * holds no ring (the end of a pass: a quiescent point). */
void dp_ring_enter(struct dp_core *c);
void dp_ring_quiescent(struct dp_core *c);
/* Around a sleep: the core holds no ring while it sleeps. */
void dp_ring_offline(struct dp_core *c);
void dp_ring_online(struct dp_core *c);
/* The member that owns a key, on the core's ring; dp_cfg->self when the
 * node is alone. */
unsigned dp_key_owner(const struct dp_core *c, const char *key, size_t klen);
/* Waits until no core can still read what was replaced before this
 * call (the RCU grace period). Control plane's thread. */
void dp_ring_synchronize(void);
/* The admin endpoint's digest (see dp_digest()): whether this core has
 * its part to walk, a slice of that walk (each pass), and the core
 * leaving its loop. */
bool dp_digest_pending(const struct dp_core *c);
void dp_digest_step(struct dp_core *c);
void dp_digest_leave(struct dp_core *c);
int dp_digest(void *arg, const struct ring_range *rs, unsigned nrs,
	      struct bloom **out);

/* What a ring change does to the keys held (dp_warm.c). The control
 * plane's side: the ring goes from old to r (before r is published), the
 * grace period after it, a previous owner's digest offered (bf is taken),
 * offers expired, how many there are, and the end. */
void dp_warm_ring_changed(const struct ring *old, const struct ring *r);
void dp_warm_retire(void);
int dp_warm_offer(void *arg, unsigned member, const struct ring_range *rs,
		  unsigned n, struct bloom *bf);
void dp_warm_tick(void *arg);
unsigned dp_warm_offers(void);
void dp_warm_teardown(void);
/* A core's side: at the start of a pass (after the ring is read); the
 * reap under way and a slice of it; the core leaving its loop. */
void dp_warm_enter(struct dp_core *c);
bool dp_warm_pending(const struct dp_core *c);
void dp_warm_step(struct dp_core *c);
void dp_warm_leave(struct dp_core *c);
/* With offers live (c->warm): whether the request, on the core that owns
 * its key, waits for the key to be fetched from *member first; if so,
 * dp_warm_fetch() takes m (the request in m->bytes and m->req, its reply
 * due to its connection's slot or to core m->src), and dp_warm_done() is
 * the fetch's reply, from dp_forward.c (dp_warm_drop() at teardown). */
bool dp_warm_wants(struct dp_core *c, const char *buf,
		   const struct proto_req *req, unsigned *member);
void dp_warm_fetch(struct dp_core *c, struct dp_msg *m, unsigned member);
void dp_warm_done(struct dp_core *c, struct dp_msg *f);
void dp_warm_drop(struct dp_core *c, struct dp_msg *f);

/* Key dumps (dp_dump.c): whether a request is one; starting it (false:
 * it is not, or not here); asking for the next batches; a batch on the
 * shard's core, and its lines back on the connection's. */
int dp_dump_kind(const char *buf, const struct proto_req *req, bool *all,
		 uint64_t *limit);
static inline bool dp_dump_wanted(const char *buf, const struct proto_req *req)
{
	bool all;
	uint64_t limit;

	/* every request asks: only two commands can be dumps */
	return (req->cmd == PROTO_LRU_CRAWLER || req->cmd == PROTO_STATS) &&
	       dp_dump_kind(buf, req, &all, &limit) != 0;
}
bool dp_dump_start(struct dp_core *c, struct dp_conn *k, const char *buf,
		   const struct proto_req *req);
void dp_dump_next(struct dp_core *c, struct dp_conn *k);
void dp_dump_batch(struct dp_core *c, struct dp_msg *m);
void dp_dump_reply(struct dp_core *c, struct dp_msg *m);

/* A peer's address, resolved at setup. */
const struct sockaddr_storage *dp_peer_addr(unsigned member, socklen_t *len);

int dp_fwd_setup(struct dp_core *c, char *err, size_t errlen);
void dp_fwd_teardown(struct dp_core *c);
/* Queues a request, buf[0..m->req.len), for the member that owns its
 * key; its reply is filed in slot m->slot of m->conn (dp_conn_reply()),
 * never from within this call. */
void dp_fwd_send(struct dp_core *c, unsigned member, struct dp_msg *m,
		 const char *buf);
/* Whether an epoll pointer is a forwarding connection's; if so, moves it
 * on. */
bool dp_fwd_event(struct dp_core *c, void *p, uint32_t events);
/* Sends what the pass queued; fails requests past the timeout. */
void dp_fwd_flush(struct dp_core *c);
/* Base64 of n bytes into out (4 * ceil(n / 3) bytes); returns that. */
size_t dp_b64_encode(const uint8_t *in, size_t n, char *out);
/* A forwarding connection's first line, which the peer takes as such. */
#define DP_FWD_HELLO "MEMLANE-FORWARD 1\r\n"

/* One "STAT name value" line appended to out; 0 or -ENOMEM. */
int dp_stat(struct proto_out *out, const char *name, uint64_t v);
int dp_stat_str(struct proto_out *out, const char *name, const char *v);
/* "STAT dp_core<core>_<name> value" */
int dp_stat_core(struct proto_out *out, unsigned core, const char *name,
		 uint64_t v);
/* stats conns: every core's TCP connections and this core's listeners,
 * as memcached lists them (arg: the core that runs it). */
int dp_sock_conns(void *arg, struct proto_out *out);

/* Monotonic and wall-clock seconds, coarse. */
uint64_t dp_now_sec(void);
uint32_t dp_wall_sec(void);

#endif /* MEMLANE_DP_INTERNAL_H */

/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The memcached protocol, as memcached 1.6 speaks it: text and meta
 * commands, parsed incrementally from a byte stream.
 *
 * Part of cache/'s public interface; include "cache.h", which includes
 * this file.
 */
#ifndef MEMLANE_CACHE_PROTO_H
#define MEMLANE_CACHE_PROTO_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_KEY_MAX 250
/* Longest command line other than a retrieval's key list (memcached
 * closes a connection whose line grows past this without a newline,
 * silently, unless it starts with "get " or "gets " after at most 100
 * spaces; gat/gats get no such exception). */
#define PROTO_LINE_MAX 2048
/* Longest get or gets line accepted (about 100,000 keys of 40 bytes);
 * past it the connection is closed. memcached sets no bound: its memory
 * grows to hundreds of times the line while it waits for the end. */
#define PROTO_GET_LINE_MAX (4u << 20)
/* Longest meta opaque token memcached accepts, its 'O' included. */
#define PROTO_OPAQUE_MAX 32

enum proto_cmd {
	PROTO_NONE = 0, /* nothing to execute or answer (swallowed bytes) */
	PROTO_ERR,	/* answer req->err verbatim, unless req->noreply;
			 * klen != 0: a set or ms too large for the cache,
			 * whose key memcached also unlinks */
	PROTO_GET,
	PROTO_GETS,
	PROTO_GAT,
	PROTO_GATS,
	PROTO_SET,
	PROTO_ADD,
	PROTO_REPLACE,
	PROTO_APPEND,
	PROTO_PREPEND,
	PROTO_CAS,
	PROTO_DELETE,
	PROTO_INCR,
	PROTO_DECR,
	PROTO_TOUCH,
	PROTO_FLUSH_ALL,
	PROTO_VERSION,
	PROTO_VERBOSITY,
	PROTO_STATS,
	PROTO_QUIT,
	PROTO_MG,
	PROTO_MS,
	PROTO_MD,
	PROTO_MA,
	PROTO_MN,
	PROTO_ME,
	PROTO_LRU_CRAWLER, /* lru_crawler metadump: num 1 for all, hash,
			    * or class 1; 0 for another class */
	PROTO_ADMIN,	   /* num: enum proto_admin; args: the words after
			    * the command's name */
	PROTO_CMD_MAX
};

/* watch, memcached's live log: what watchers ask to see */
#define PROTO_WATCH_FETCHERS  0x1u
#define PROTO_WATCH_MUTATIONS 0x2u
#define PROTO_WATCH_EVICTIONS 0x4u

/* The transport's log: every node of the process shares one. */
struct proto_watch {
	atomic_uint mask; /* what any watcher asks for; 0: nobody watches */
	/* takes one line, without its ts=, gid= and newline; any core */
	void (*emit)(void *arg, const char *line, size_t len);
	void *arg;
};

/* memcached's administrative commands (PROTO_ADMIN) */
enum proto_admin {
	PROTO_ADMIN_SHUTDOWN,
	PROTO_ADMIN_MEMLIMIT, /* cache_memlimit: every core takes its share */
	PROTO_ADMIN_SLABS,
	PROTO_ADMIN_LRU,
	PROTO_ADMIN_CRAWLER, /* lru_crawler, but for metadump */
	PROTO_ADMIN_WATCH,
};

/* Bit of a meta flag letter in proto_meta.flags: A..Z are bits 0..25,
 * a..z bits 26..51. */
#define PROTO_MF(c)                                                            \
	((c) >= 'a' ? 1ull << ((c) - 'a' + 26) : 1ull << ((c) - 'A'))

/* A meta command's flags, decoded. Tokens that are numbers are parsed;
 * the opaque is an offset into the request. */
struct proto_meta {
	uint64_t flags;	     /* PROTO_MF() of every flag present */
	uint32_t opaque_off; /* O */
	uint8_t opaque_len;
	char mode;	       /* M, 0 when absent */
	uint32_t client_flags; /* F */
	int64_t ttl;	       /* T */
	int64_t vivify_ttl;    /* N */
	int64_t recache;       /* R */
	uint64_t cas;	       /* C */
	uint64_t delta;	       /* D, 1 when absent */
	uint64_t initial;      /* J, 0 when absent */
	/* Order in which the return flags were given (mg answers them in
	 * request order): the letters, as sent. */
	char order[24];
	uint8_t norder;
};

/*
 * One parsed request. Every offset is from the first byte of the request
 * (the buf passed to proto_parse()), never a copy.
 */
struct proto_req {
	uint8_t cmd;   /* enum proto_cmd */
	bool noreply;  /* text "noreply", or meta q */
	bool close;    /* close the connection after answering */
	bool has_num;  /* num was given (flush_all delay, verbosity) */
	bool copy;     /* a fan-out's copy, answered at another core: it
			* acts but counts nothing */
	uint16_t klen; /* the (first) key */
	uint32_t key_off;
	uint32_t keys_end; /* retrievals: keys lie in [key_off, keys_end) */
	uint32_t data_off; /* storage: the data block, without its \r\n */
	uint32_t data_len;
	uint32_t args_off; /* stats: the argument, e.g. "settings" */
	uint32_t args_len;
	uint32_t len;	 /* bytes of the request: line and data block */
	uint32_t flags;	 /* client flags of a text storage command */
	int64_t exptime; /* storage, touch, gat/gats: as sent */
	uint64_t num;	 /* cas unique, incr/decr delta, flush_all delay,
			  * verbosity level */
	uint64_t hv;	 /* hash of the (first) key */
	const char *err; /* PROTO_ERR: the whole reply, "...\r\n"; a
			  * retrieval: the reply instead of what its keys
			  * found (they are looked up all the same) */
	struct proto_meta meta;
	/* a binary-protocol frame (proto_parse_binary()): cmd is how it
	 * routes (PROTO_SET, PROTO_MG for any other key, PROTO_FLUSH_ALL,
	 * PROTO_STATS, PROTO_ERR for a frame refused, else PROTO_VERSION),
	 * noreply says a quiet opcode, and flags, exptime, num (a delta, a
	 * delay, a level) and the data block are the frame's */
	bool binary;
	struct proto_bin {
		uint8_t op;
		uint8_t status;	 /* PROTO_ERR: the refusal's */
		uint32_t opaque; /* as sent, echoed as it came */
		uint64_t cas;
		uint64_t initial; /* incr/decr */
		uint32_t expiry;  /* incr/decr */
	} bin;
};

/* get, gets, gat, gats */
static inline bool proto_is_retrieval(const struct proto_req *req)
{
	return req->cmd >= PROTO_GET && req->cmd <= PROTO_GATS;
}

/* Whether an administrative command changes what every core holds: the
 * transport runs it on each core (quietly on all but the asking one). */
static inline bool proto_admin_fans_out(const struct proto_req *req)
{
	return req->cmd == PROTO_ADMIN && (req->num == PROTO_ADMIN_MEMLIMIT ||
					   req->num == PROTO_ADMIN_CRAWLER ||
					   req->num == PROTO_ADMIN_SLABS);
}

/* Per-connection parser state. Zero it, then set item_size_max. */
struct proto_parser {
	uint64_t swallow; /* data-block bytes still to discard */
	/* -I (0 = 1 MiB): a storage command whose item is larger is
	 * answered SERVER_ERROR object too large for cache, and its data
	 * block is swallowed without being buffered. memcached sizes an
	 * item as key + data + 59, plus 4 when the client flags are not 0. */
	uint32_t item_size_max;
	/* bytes at the start of the input known to hold no newline, so that
	 * a long line is scanned once however many reads bring it */
	uint32_t scanned;
};

/*
 * Parses one request from buf[0..len). Returns the number of bytes it
 * consumed (req->len), with req filled; or 0 when buf holds no complete
 * request yet (call again with more bytes, from the same start). A
 * malformed request is consumed like any other and comes back as PROTO_ERR
 * with the reply memcached gives; req->close says when memcached would
 * close the connection instead. May rewrite the key bytes in place (meta
 * base64 keys are decoded where they lie).
 */
size_t proto_parse(struct proto_parser *ps, char *buf, size_t len,
		   struct proto_req *req);

/* The first byte of a binary-protocol request (memcached detects the
 * protocol of a connection from it). */
#define PROTO_BIN_REQ 0x80
/* The first byte of a binary-protocol response. */
#define PROTO_BIN_RES 0x81
#define PROTO_BIN_HDR 24
/* As proto_parse(), for memcached's binary protocol (cache/proto_binary.c);
 * proto_execute() answers its requests in binary. */
size_t proto_parse_binary(struct proto_parser *ps, char *buf, size_t len,
			  struct proto_req *req);
/* Whether the connection ends with req: a quit (text or binary), or a
 * request refused with a close. memcached runs nothing sent after it. */
bool proto_ends_stream(const struct proto_req *req);
/* An item's size as memcached reckons it (its metadump's size=). */
size_t proto_item_size(uint32_t klen, uint32_t vlen, uint32_t flags);

struct proto_out;
/* Appends a binary response to req saying the request failed for a
 * reason outside memcached's own (a cluster's: its owner node did not
 * answer): status 0x86, temporary failure, with the text. 0 or -ENOMEM. */
int proto_bin_error(struct proto_out *out, const struct proto_req *req,
		    const char *text, size_t len);

/*
 * Iterates the keys of a retrieval. *pos starts at req->key_off; each call
 * returns true with the next key's offset and length, or false at the end.
 */
bool proto_next_key(const char *buf, const struct proto_req *req, uint32_t *pos,
		    uint32_t *off, uint32_t *klen);

/* The memcached UDP frame header, 8 bytes, big-endian on the wire:
 *
 *   OFFSET SIZE FIELD
 *   0      2    request id (echoed in the reply)
 *   2      2    sequence number of this datagram
 *   4      2    total datagrams in this message
 *   6      2    reserved, 0
 */
#define PROTO_UDP_HDR 8
/* Largest reply datagram, header included. */
#define PROTO_UDP_MTU 1400

struct proto_udp_hdr {
	uint16_t req_id;
	uint16_t seq;
	uint16_t count;
	uint16_t reserved;
};

/* Reads a frame header. Returns 0, or -EINVAL when len is short, or the
 * request spans more than one datagram (memcached accepts only single
 * datagram requests). */
int proto_udp_parse(const void *buf, size_t len, struct proto_udp_hdr *h);
/* Writes a frame header into 8 bytes at buf. */
void proto_udp_write(void *buf, const struct proto_udp_hdr *h);
/* Number of datagrams a reply of len bytes needs. */
unsigned proto_udp_count(size_t len);
/*
 * Frames datagram seq (0-based) of a reply: writes the header for req_id
 * into dgram and copies that datagram's slice of reply after it. Returns
 * the datagram length, at most PROTO_UDP_MTU.
 */
size_t proto_udp_frame(void *dgram, uint16_t req_id, const void *reply,
		       size_t len, unsigned seq);

/* ------------------------------------------------------------------------
 * Executing requests: the node as one thread sees it
 * ---------------------------------------------------------------------- */

struct cache_shard;
struct proto_node;

/* Whether a key dump (stats cachedump, lru_crawler metadump) may run:
 * not with -X, and a metadump not while the LRU crawler is disabled.
 * A dump refused is answered by proto_execute() as memcached refuses it. */
bool proto_dump_allowed(const struct proto_node *n,
			const struct proto_req *req);

struct proto_node_params {
	unsigned nshards;     /* shards; a key goes to ml_hash_core() */
	size_t mem_limit;     /* bytes for the whole node (-m), split evenly */
	size_t item_size_max; /* -I; 0 = 1 MiB */
	size_t segment_size;  /* 0 = default */
	size_t items_hint;    /* whole node; 0 = grow */
	bool no_evict;	      /* -M: answer out of memory instead */
	uint32_t now;	      /* unix seconds */
	uint32_t pid;	      /* for stats */
	unsigned conn_max;    /* for stats settings (-c) */
	unsigned tcp_port;    /* for stats settings (-p) */
	unsigned udp_port;    /* for stats settings (-U) */
	unsigned threads;     /* for stats (-t) */
	/* One shard of a node whose other shards belong to other nodes (one
	 * per core): this shard's CAS id and the bits reserved for ids.
	 * 0 bits: the node numbers its own shards. */
	uint32_t cas_id;
	uint32_t cas_id_bits;
	/* memcached's switches, as its flags set them; stats settings
	 * shows them */
	bool no_cas;		   /* -C: CAS values read 0, none matches */
	bool huge_pages;	   /* -L */
	bool no_flush;		   /* -F: flush_all refused */
	bool no_dump;		   /* -X: cachedump and metadump refused */
	bool no_watch;		   /* -W: watch refused */
	bool shutdown_cmd;	   /* -A: shutdown served (see shutdown) */
	bool auth_ascii;	   /* -Y */
	bool maxconns_fast;	   /* -o maxconns_fast */
	bool lru_crawler;	   /* -o no_lru_crawler clears it */
	char detail_delim;	   /* -D; 0: ':' with detail off */
	const char *binding;	   /* -B, as stats settings names it */
	const char *domain_socket; /* -s, NULL when none */
	const char *inter;	   /* -l */
	unsigned umask;		   /* -a */
	unsigned reqs_per_event;   /* -R */
	unsigned tcp_backlog;	   /* -b */
	unsigned idle_timeout;	   /* -o idle_timeout */
	unsigned hashpower;	   /* -o hashpower */
	unsigned lru_crawler_sleep, lru_crawler_tocrawl;
	unsigned read_buf_mem_mb; /* -o read_buf_mem_limit */
	unsigned watcher_logbuf_kb, worker_logbuf_kb;
	bool ssl; /* -Z */
	unsigned ssl_verify_mode, ssl_min_version, ssl_wbuf_kb;
	bool ssl_session_cache;
	const char *ssl_chain_cert, *ssl_key, *ssl_ca_cert, *ssl_ciphers;
	/* -A's shutdown: stops the process, gracefully or not; NULL: the
	 * command is refused as without -A */
	void (*shutdown)(bool graceful);
	/* watch: the log fetches, stores and evictions go to; NULL: none */
	struct proto_watch *watch;
};

/* Returns a node, or NULL with errno set (EINVAL, ENOMEM). */
struct proto_node *proto_node_create(const struct proto_node_params *p);
/* Frees the node and its shards; takes NULL. */
void proto_node_free(struct proto_node *n);
/* Advances every shard's clock (unix seconds) and applies a due delayed
 * flush_all. */
void proto_node_set_time(struct proto_node *n, uint32_t now);
struct cache_shard *proto_node_shard(struct proto_node *n, unsigned i);
/*
 * Brings into cache what requests for keys of these hashes will read
 * first (at most CACHE_BULK_MAX per shard are taken), so that a pipeline's
 * misses overlap instead of queueing one behind another. Changes nothing
 * and counts nothing. Call it for requests about to run, in any order.
 */
void proto_prefetch(const struct proto_node *n, unsigned cnt,
		    const uint64_t *hv);

/* A growable reply buffer, owned by its connection. */
struct proto_out {
	char *buf;
	size_t len;
	size_t cap;
};

/* Makes room for more bytes; returns 0 or -ENOMEM. */
int proto_out_reserve(struct proto_out *o, size_t more);
void proto_out_free(struct proto_out *o);

/*
 * Executes one parsed request (buf is the request's first byte, as given
 * to proto_parse()) and appends its reply, if any, to out. Returns 0, or
 * -ENOMEM when out could not grow (nothing was appended), or -EPIPE when
 * the connection must be closed after out is sent (quit, or a request
 * whose req->close is set).
 */
int proto_execute(struct proto_node *n, const char *buf,
		  const struct proto_req *req, struct proto_out *out);

/*
 * Makes stats (and stats reset) cover every node in peers (this one
 * included): the process's other cores. Each node keeps counting its own
 * requests; only stats reads across. peers must outlive the nodes.
 */
void proto_node_set_peers(struct proto_node *n, struct proto_node *const *peers,
			  unsigned npeers);

/* Connection counters the transport reports, for stats. */
struct proto_conn_stats {
	uint64_t curr_connections;
	uint64_t total_connections;
	uint64_t rejected_connections;
	uint64_t bytes_read;
	uint64_t bytes_written;
	uint64_t conn_yields; /* -R reached: the core turned to another */
};
void proto_node_set_conn_stats(struct proto_node *n,
			       const struct proto_conn_stats *cs);
/*
 * Lets the transport answer "stats dataplane" (memlane's own group):
 * fn appends its STAT lines, without the END, and returns 0 or -ENOMEM.
 * It runs on the core that executes the stats request and may read
 * every core's counters. Without it the group is an ERROR, as any
 * unknown group is.
 */
void proto_node_set_transport_stats(struct proto_node *n,
				    int (*fn)(void *arg, struct proto_out *out),
				    void *arg);
/* Lets the transport answer "stats conns" (its connections, as memcached
 * lists them, without the END); without it the group is empty. */
void proto_node_set_transport_conns(struct proto_node *n,
				    int (*fn)(void *arg, struct proto_out *out),
				    void *arg);

/*
 * A node's request counters since it started (stats reset leaves them
 * alone), for the admin endpoint and its metrics. May be called from
 * another thread while the node's own core counts: each value is read
 * whole, as stats reads the other cores' nodes.
 */
struct proto_counters {
	uint64_t cmd_get;    /* keys asked for by retrievals */
	uint64_t get_hits;   /* of those, found */
	uint64_t get_misses; /* of those, not found */
	uint64_t cmd_set;    /* storage commands */
	uint64_t cmd_touch;
	uint64_t cmd_meta;    /* meta commands */
	uint64_t delete_hits; /* deletes that found their key */
	uint64_t delete_misses;
	uint64_t arith; /* incr and decr, hit or not */
};
void proto_node_counters(const struct proto_node *n,
			 struct proto_counters *out);

#endif /* MEMLANE_CACHE_PROTO_H */

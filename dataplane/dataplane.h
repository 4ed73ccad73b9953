/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dataplane: memlaned's packet and socket I/O, the per-core loop and the
 * hand-off of requests between cores.
 *
 * Every worker core owns one cache shard, one SO_REUSEPORT TCP listener
 * and UDP socket per listen address, one epoll loop and the connections
 * the kernel gives its listener. A request whose key another core owns
 * travels to it over a single-producer/single-consumer rte_ring and its
 * reply comes back the same way; a connection's replies leave in the
 * order of its requests.
 */
#ifndef MEMLANE_DATAPLANE_H
#define MEMLANE_DATAPLANE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DP_ADDR_MAX  8
#define DP_CORE_MAX  64
#define DP_NODE_MAX  64	 /* members of a cluster */
#define DP_HOST_MAX  64	 /* a member's host, as clients name it */
#define DP_TOKEN_MAX 128 /* the admin endpoint's token */

enum dp_backend_kind {
	DP_BACKEND_SOCKET, /* kernel sockets, the default */
	DP_BACKEND_DPDK,   /* memcached UDP on a DPDK port, TCP on sockets */
};

/* A member of the cluster, as clients' ketama names it: host, port and
 * weight. */
struct dp_member {
	char host[DP_HOST_MAX];
	uint16_t port;
	uint32_t weight;
};

/* -B: which protocols a connection may speak */
enum dp_binding {
	DP_BIND_AUTO, /* by its first byte, as memcached */
	DP_BIND_ASCII,
	DP_BIND_BINARY,
};

struct dp_config {
	uint16_t tcp_port; /* -p, 0 = no TCP */
	uint16_t udp_port; /* -U, 0 = no UDP */
	unsigned naddrs;   /* -l */
	char addrs[DP_ADDR_MAX][64];
	char listen_arg[DP_ADDR_MAX * 64]; /* -l as given: stats settings */
	/* -l's ADDR:PORT (0: -p) and notls:ADDR (plain beside -Z) */
	uint16_t addr_port[DP_ADDR_MAX];
	bool addr_notls[DP_ADDR_MAX];
	size_t mem_limit;		/* -m, bytes */
	unsigned ncores;		/* -t */
	unsigned conn_max;		/* -c */
	size_t item_size_max;		/* -I, bytes */
	bool no_evict;			/* -M */
	unsigned verbose;		/* -v, -vv */
	unsigned idle_timeout;		/* seconds, 0 = never */
	char eal_extra[512];		/* --eal */
	enum dp_backend_kind dataplane; /* --dataplane */
	char ip[16];	     /* --ip: the IPv4 the DPDK port answers for */
	char udp_allow[512]; /* --udp-allow; "" = the port's own subnet */
	/* the cluster: every member (this node among them, at self), in
	 * the order --peers gives; one member = no routing */
	unsigned nmembers;
	struct dp_member members[DP_NODE_MAX];
	unsigned self;
	unsigned forward_timeout_ms; /* --forward-timeout */
	/* the admin endpoint: off, or an address and port (--admin) */
	bool admin_off;
	bool admin_given; /* --admin was given: failing to bind is fatal */
	char admin_addr[64];
	uint16_t admin_port;
	char admin_token[DP_TOKEN_MAX]; /* --admin-token; "" = none */
	/* membership by gossip (--gossip, --seeds): members come and go;
	 * members[0] is this node, the others are learnt */
	bool gossip;
	char gossip_addr[64];
	uint16_t gossip_port;
	char seeds[1024]; /* host:port,... of other members' gossip */
	uint8_t cluster_key[64];
	size_t cluster_keylen; /* 0: no --cluster-key-file */
	unsigned probe_interval_ms, probe_timeout_ms, pushpull_interval_ms;
	unsigned suspicion_mult, indirect_probes;
	/* the warm hand-off (--handoff-window), seconds; 0: off */
	unsigned handoff_window_s;

	/* memcached's process flags (see dp_process.c) */
	char user[64];	   /* -u: the identity taken when run as root */
	bool daemonize;	   /* -d */
	char pidfile[256]; /* -P */
	bool coredumps;	   /* -r: core file limit raised to the most */
	bool lock_memory;  /* -k: mlockall */
	bool largepages;   /* -L: item memory on transparent huge pages */
	char logfile[256]; /* a config file's "logfile": stdout, stderr */
	/* -s and -a: a Unix-domain socket instead of TCP and UDP */
	char unix_path[108];
	unsigned unix_mask;
	/* what memcached's flags switch in the protocol */
	bool shutdown_cmd;	 /* -A */
	bool no_cas;		 /* -C */
	bool no_flush;		 /* -F */
	bool no_dump;		 /* -X */
	bool no_watch;		 /* -W */
	enum dp_binding binding; /* -B */
	unsigned backlog;	 /* -b */
	unsigned reqs_per_event; /* -R */
	char detail_delim;	 /* -D: per-prefix stats on from the start */
	char auth_file[256];	 /* -Y */
	/* -o options with a meaning here */
	unsigned conn_idle_timeout; /* idle_timeout: any idle connection */
	bool maxconns_fast;
	unsigned hashpower;
	bool lru_crawler;
	unsigned read_buf_mem_mb;
	unsigned lru_crawler_sleep, lru_crawler_tocrawl;
	unsigned watcher_logbuf_kb, worker_logbuf_kb;
	/* -Z and its -o ssl_... options */
	bool ssl;
	char ssl_chain_cert[256], ssl_key[256], ssl_ca_cert[256];
	char ssl_ciphers[256];
	unsigned ssl_verify_mode; /* 0 none, 1 request, 2 require, 3 once */
	unsigned ssl_min_version; /* 0 TLS 1.0 ... 3 TLS 1.3 */
	unsigned ssl_wbuf_kb;
	bool ssl_session_cache;
	bool foreground;   /* --foreground: -d does not detach */
	bool keep_network; /* --keep-network: -s leaves -p and -U on */
	/* one line per option accepted without its meaning, for stderr */
	char warnings[2048];
};

/*
 * Fills cfg from memlaned's command line (and the --config file it
 * names). Returns 0, 1 when the command line asked for --help, --version
 * or --license (text written to out), or minus memcached's exit code for
 * the mistake (EX_USAGE for a bad value, 1 for an unknown flag and the
 * counts memcached checks itself) with a one-line reason in err.
 */
int dp_config_parse(int argc, char **argv, struct dp_config *cfg, char *err,
		    size_t errlen, char *out, size_t outlen);

/*
 * Runs the node until dp_stop() is called: starts one worker per lcore
 * (the EAL must be initialised, with at least cfg->ncores lcores), and
 * returns 0 after every worker has flushed, closed and freed what it
 * held, or -errno when the node could not start (err says why):
 * -EADDRINUSE when an address or port cannot be listened on, whatever
 * the socket call's own errno was.
 */
int dp_run(const struct dp_config *cfg, char *err, size_t errlen);

/* Megabytes of EAL memory the node needs: its rings, and with the DPDK
 * backend its mbuf pools and the PMD's own buffers. */
unsigned dp_eal_memory_mb(const struct dp_config *cfg);

/*
 * Before the EAL starts, with the DPDK backend: gives each net_af_xdp
 * vdev in cfg->eal_extra memlane's XDP program (xdp_prog=), unless it
 * names one of its own, after taking a stale copy of ours, left by a
 * crash, off its interface. Returns 0, or -errno with err saying why
 * (-EBUSY: another program holds the interface).
 */
int dp_dpdk_prepare(struct dp_config *cfg, char *err, size_t errlen);

/* Asks a running node to stop. Async-signal-safe. */
void dp_stop(void);

#endif /* MEMLANE_DATAPLANE_H */

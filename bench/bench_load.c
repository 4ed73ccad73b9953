/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memlane-bench load: a load generator for any memcached-protocol server.
 *
 * Client threads each drive their share of the connections from one epoll
 * loop. A connection keeps up to --pipeline requests in flight. In the
 * closed loop (the default) a reply makes room for the next request at
 * once; in the open loop (--rate) each connection sends on a fixed
 * schedule and a request's latency runs from the time it was *meant* to
 * leave, so a server that stalls is charged for the requests it held up
 * (the coordinated-omission correction).
 *
 * Requests speak the text protocol (get, set), the meta protocol (mg, ms)
 * or text over UDP with memcached's 8-byte frame header (gets, and sets
 * either as single datagrams or over a companion TCP connection). Every
 * reply is parsed and checked: a hit must carry exactly the value this
 * generator stores under that key (the key's own name, then a fixed
 * pattern), so replies that belong to another request are caught.
 *
 * Latencies go into log-bucketed histograms (128 buckets per power of two,
 * under 1% relative error) that are allocated once per thread; nothing is
 * allocated per request.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "common.h"

#include "bench.h"

#define LOAD_CONNS_DEF	  16u
#define LOAD_KEYS_DEF	  1000000ull
#define LOAD_KLEN_DEF	  16u
#define LOAD_VLEN_DEF	  32u
#define LOAD_VLEN_MAX	  (1u << 20)
#define LOAD_DURATION_DEF 10.0
#define LOAD_WARMUP_DEF	  1.0
#define LOAD_TIMEOUT_DEF  2.0
#define LOAD_THETA_DEF	  0.99
#define LOAD_PIPELINE_MAX 4096u
#define LOAD_THREADS_MAX  256u
#define LOAD_CPUS_MAX	  256u

/* Latency histogram: values below 2 * LOAD_HIST_SUB ns have a bucket of
 * their own; above, each power of two is split into LOAD_HIST_SUB equal
 * buckets. Values from 2^LOAD_HIST_TOP_BITS ns (about 18 minutes) on land
 * in the last bucket. */
#define LOAD_HIST_SUB_BITS 7
#define LOAD_HIST_SUB	   (1u << LOAD_HIST_SUB_BITS)
#define LOAD_HIST_TOP_BITS 40
#define LOAD_HIST_BUCKETS                                                      \
	((LOAD_HIST_TOP_BITS - LOAD_HIST_SUB_BITS + 1) * LOAD_HIST_SUB)

/* Zipf key numbers are drawn ahead into a ring of this many per thread. */
#define LOAD_ZIPF_RING (1u << 20)

#define LOAD_EVENTS	   64
#define LOAD_TICK_NS	   10000000ull /* timeout checks, phase polling */
#define LOAD_RECONNECT_NS  100000000ull
#define LOAD_DRAIN_MAX_NS  1000000000ull
#define LOAD_RBUF_MIN	   (64u * 1024)
#define LOAD_LINE_MAX	   1024u /* longest reply line accepted */
#define LOAD_UDP_HDR	   8u
#define LOAD_UDP_REQ_MAX   1400u /* one datagram, header included */
#define LOAD_UDP_RX_BUF	   2048u
#define LOAD_UDP_BURST	   32u
#define LOAD_PRELOAD_BATCH 512u
#define LOAD_PRELOAD_BYTES (1u << 20)

enum load_proto { LOAD_TEXT, LOAD_META, LOAD_UDP };

static const char *const load_proto_names[] = {
	[LOAD_TEXT] = "text",
	[LOAD_META] = "meta",
	[LOAD_UDP] = "udp",
};

enum load_op { LOAD_GET, LOAD_SET };

/* What one reply said. */
enum load_res {
	LOAD_R_NEED,	     /* incomplete: wait for more bytes */
	LOAD_R_HIT,	     /* the value this generator stores */
	LOAD_R_MISS,	     /* END / EN */
	LOAD_R_STORED,	     /* STORED / HD */
	LOAD_R_NOT_STORED,   /* NOT_STORED, EXISTS, NOT_FOUND / NS, EX, NF */
	LOAD_R_SERVER_ERROR, /* ERROR, CLIENT_ERROR, SERVER_ERROR */
	LOAD_R_BAD_VALUE,    /* well framed, but not the value stored */
	LOAD_R_BAD,	     /* not a reply to this request: framing is lost */
};

/* Why a connection was given up. */
enum load_fail { LOAD_F_CONN, LOAD_F_BAD, LOAD_F_TIMEOUT };

enum load_phase { LOAD_PH_WARMUP, LOAD_PH_MEASURE, LOAD_PH_STOP };

struct load_opts {
	char host[256];
	char port[16];
	unsigned tcp_port; /* UDP: TCP port for sets and preload; 0 = same */
	struct sockaddr_storage addr; /* the server: TCP, or UDP */
	struct sockaddr_storage tcp_addr;
	enum load_proto proto;
	bool udp_sets_tcp;
	unsigned conns;
	unsigned pipeline;
	unsigned threads;
	unsigned get_w, set_w; /* --ratio GET:SET */
	uint64_t keys;
	bool zipf;
	double theta;
	unsigned klen;
	unsigned vlen;
	double warmup;
	double duration; /* 0 with requests == 0: preload only */
	uint64_t requests;
	double rate; /* ops/s over all connections; 0 = closed loop */
	double timeout;
	bool preload;
	bool json;
	bool quiet;
	unsigned ncpus;
	int cpus[LOAD_CPUS_MAX];
	uint64_t seed;
};

struct load_hist {
	uint64_t n;
	uint64_t sum;
	uint64_t max;
	uint64_t count[LOAD_HIST_BUCKETS];
};

struct load_counts {
	uint64_t gets; /* answered GETs (hits + misses) */
	uint64_t sets; /* answered SETs that were stored */
	uint64_t hits;
	uint64_t misses;
	uint64_t server_errors;
	uint64_t not_stored;
	uint64_t bad_values;
	uint64_t bad_replies;
	uint64_t timeouts;
	uint64_t conn_errors;
	uint64_t aborted; /* in flight on a connection that failed */
};

struct load_stats {
	struct load_counts c;
	struct load_hist all;
	struct load_hist get;
	struct load_hist set;
};

/* One request in flight. */
struct load_req {
	uint64_t key;
	uint64_t t_intended; /* latency runs from here */
	uint64_t t_sent;     /* timeouts run from here */
	uint16_t udp_id;
	uint16_t dgrams_seen; /* UDP: datagrams of a long reply so far */
	uint8_t op;
	bool measured; /* issued in the measured phase */
	bool active;   /* UDP: the slot is in use */
};

struct load_flow;

/* One socket: a TCP connection, or a connected UDP socket. */
struct load_ep {
	int fd;
	bool udp;
	bool meta;
	bool connecting;
	bool want_out; /* EPOLLOUT is registered */
	uint64_t reconnect_at;
	struct load_flow *flow;
	/* TCP: a FIFO of pipeline entries; UDP: slots by request id. */
	struct load_req *reqs;
	unsigned head;
	unsigned n;
	unsigned id_mask;
	unsigned id_bits;
	uint16_t id_gen;
	unsigned *free_slots;
	unsigned nfree;
	/* TCP bytes to send: [soff, slen) of sbuf. */
	char *sbuf;
	size_t scap, soff, slen;
	/* TCP bytes received: [roff, rlen) of rbuf not yet parsed. */
	char *rbuf;
	size_t rcap, roff, rlen;
	/* UDP datagrams to send: [txoff, ntx) of fixed-size cells. */
	char *tx;
	unsigned *txlen;
	unsigned txcap, txoff, ntx;
};

/* What generates requests: one per --conns. A flow has one socket, or
 * (UDP with --udp-sets tcp) a UDP socket for GETs and a TCP one for SETs. */
struct load_flow {
	struct load_ep *ep[2];
	unsigned inflight; /* over both sockets */
	uint64_t due_base; /* open loop: request k is due at */
	uint64_t due_k;	   /*   due_base + k * interval */
	uint64_t due;
};

struct load_thread {
	pthread_t tid;
	unsigned idx;
	int cpu;
	const struct load_opts *o;
	int epfd;
	struct load_flow *flows;
	unsigned nflows;
	struct load_ep *eps;
	unsigned neps;
	struct bench_rng rng;
	uint32_t *zring;
	uint32_t zpos;
	char *value; /* the fixed pattern the values are made of */
	double interval_ns;
	bool limited; /* --requests: stop after quota measured ones */
	uint64_t quota;
	uint64_t issued;
	bool measuring;
	bool stopping;
	bool finished;
	uint64_t t_finished;
	uint64_t next_tick;
	struct load_stats st;
	/* For the progress line: read by the main thread. */
	_Atomic uint64_t prog_ops;
	_Atomic uint64_t prog_errors;
	_Atomic bool done;
	/* Preload, run before the load. */
	uint64_t pre_lo, pre_hi;
	uint64_t pre_errors;
	int rc;
	/* UDP receive scratch. */
	struct mmsghdr *rx_msgs;
	struct iovec *rx_iov;
	char *rx_buf;
};

static _Atomic int load_phase;
static _Atomic bool load_interrupted;
static struct bench_zipf load_zipf;

/* ------------------------------------------------------------------------
 * Histogram
 * ---------------------------------------------------------------------- */

static unsigned load_hist_index(uint64_t v)
{
	unsigned msb, shift;

	if (v < 2 * LOAD_HIST_SUB)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	if (msb >= LOAD_HIST_TOP_BITS)
		return LOAD_HIST_BUCKETS - 1;
	shift = msb - LOAD_HIST_SUB_BITS;
	return shift * LOAD_HIST_SUB + (unsigned)(v >> shift);
}

/* The largest value that lands in bucket idx. */
static uint64_t load_hist_top(unsigned idx)
{
	unsigned shift;

	if (idx < 2 * LOAD_HIST_SUB)
		return idx;
	shift = idx / LOAD_HIST_SUB - 1;
	return (((uint64_t)(idx % LOAD_HIST_SUB + LOAD_HIST_SUB)) << shift) +
	       (1ull << shift) - 1;
}

static void load_hist_add(struct load_hist *h, uint64_t v)
{
	h->count[load_hist_index(v)]++;
	h->n++;
	h->sum += v;
	if (v > h->max)
		h->max = v;
}

static void load_hist_merge(struct load_hist *to, const struct load_hist *h)
{
	unsigned i;

	for (i = 0; i < LOAD_HIST_BUCKETS; i++)
		to->count[i] += h->count[i];
	to->n += h->n;
	to->sum += h->sum;
	to->max = ML_MAX(to->max, h->max);
}

/* The value at percentile p (0..100), in ns: the top of the bucket that
 * holds it, but never above the largest value seen. */
static uint64_t load_hist_pct(const struct load_hist *h, double p)
{
	uint64_t rank, seen = 0;
	unsigned i;

	if (!h->n)
		return 0;
	rank = (uint64_t)ceil(p / 100.0 * (double)h->n);
	if (rank < 1)
		rank = 1;
	for (i = 0; i < LOAD_HIST_BUCKETS; i++) {
		seen += h->count[i];
		if (seen >= rank)
			return ML_MIN(load_hist_top(i), h->max);
	}
	return h->max;
}

static double load_hist_mean(const struct load_hist *h)
{
	return h->n ? (double)h->sum / (double)h->n : 0.0;
}

/* ------------------------------------------------------------------------
 * Options
 * ---------------------------------------------------------------------- */

static void load_usage(FILE *f)
{
	fprintf(f,
		"usage: memlane-bench load [options]\n"
		"  --server HOST:PORT  the server (default 127.0.0.1:11211)\n"
		"  --proto P           text (get/set), meta (mg/ms) or udp "
		"(default text)\n"
		"  --udp-sets udp|tcp  udp: SETs as datagrams (default) or "
		"over TCP\n"
		"  --tcp-port PORT     udp: the TCP port for SETs and "
		"--preload\n"
		"                      (default: the UDP port)\n"
		"  --conns N           connections (default %u)\n"
		"  --pipeline D        requests in flight per connection "
		"(default 1)\n"
		"  --ratio G:S         GETs to SETs (default 90:10)\n"
		"  --keys N            key numbers 0..N-1 (default 1M)\n"
		"  --dist D            uniform or zipf[:THETA] (default "
		"uniform;\n"
		"                      THETA %.2f)\n"
		"  --key-size K        key bytes, >= %u (default %u)\n"
		"  --value-size B      value bytes (default %u)\n"
		"  --warmup S          seconds of load before measuring "
		"(default %.0f)\n"
		"  --duration S        seconds measured (default %.0f)\n"
		"  --requests N        stop after N measured requests "
		"instead\n"
		"  --rate R            open loop: R requests/s in total, "
		"latency from\n"
		"                      the intended send time (default: "
		"closed loop)\n"
		"  --threads T         client threads (default 1)\n"
		"  --cpus LIST         pin thread i to the i-th CPU of LIST "
		"(0,2,4-7)\n"
		"  --timeout S         a request unanswered this long is "
		"a timeout\n"
		"                      (default %.0f)\n"
		"  --preload           set every key once before the load; "
		"with\n"
		"                      --duration 0, only that\n"
		"  --seed N            random seed (default: fixed)\n"
		"  --json              one JSON object instead of the text "
		"report\n"
		"  --quiet             no progress lines on stderr\n",
		LOAD_CONNS_DEF, LOAD_THETA_DEF, BENCH_KEY_MIN, LOAD_KLEN_DEF,
		LOAD_VLEN_DEF, LOAD_WARMUP_DEF, LOAD_DURATION_DEF,
		LOAD_TIMEOUT_DEF);
}

/* "HOST:PORT" or "[V6ADDR]:PORT"; the port is required. */
static int load_split_hostport(const char *s, struct load_opts *o)
{
	const char *colon, *host = s;
	size_t hlen;

	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		host = s + 1;
		hlen = (size_t)(close - host);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		hlen = (size_t)(colon - s);
	}
	if (!hlen || hlen >= sizeof(o->host) ||
	    strlen(colon + 1) >= sizeof(o->port) || !colon[1])
		return -EINVAL;
	memcpy(o->host, host, hlen);
	o->host[hlen] = '\0';
	snprintf(o->port, sizeof(o->port), "%s", colon + 1);
	return 0;
}

static int load_resolve(const char *host, const char *port, bool udp,
			struct sockaddr_storage *out)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = udp ? SOCK_DGRAM : SOCK_STREAM,
		.ai_flags = AI_NUMERICSERV,
	};
	struct addrinfo *res;
	int rc;

	rc = getaddrinfo(host, port, &hints, &res);
	if (rc) {
		fprintf(stderr, "load: %s:%s: %s\n", host, port,
			gai_strerror(rc));
		return -EINVAL;
	}
	memcpy(out, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return 0;
}

/* "0,2,4-7". */
static int load_parse_cpus(const char *s, struct load_opts *o)
{
	o->ncpus = 0;
	while (*s) {
		unsigned long lo, hi;
		char *end;

		if (*s < '0' || *s > '9')
			return -EINVAL;
		lo = strtoul(s, &end, 10);
		hi = lo;
		if (*end == '-') {
			s = end + 1;
			if (*s < '0' || *s > '9')
				return -EINVAL;
			hi = strtoul(s, &end, 10);
		}
		if (hi < lo || hi >= CPU_SETSIZE)
			return -EINVAL;
		for (; lo <= hi; lo++) {
			if (o->ncpus == LOAD_CPUS_MAX)
				return -EINVAL;
			o->cpus[o->ncpus++] = (int)lo;
		}
		if (*end == ',')
			end++;
		else if (*end)
			return -EINVAL;
		s = end;
	}
	return o->ncpus ? 0 : -EINVAL;
}

static int load_parse_ratio(const char *s, struct load_opts *o)
{
	unsigned long g, st;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	g = strtoul(s, &end, 10);
	if (*end != ':' || end[1] < '0' || end[1] > '9')
		return -EINVAL;
	st = strtoul(end + 1, &end, 10);
	if (*end || g + st == 0 || g > 1000000 || st > 1000000)
		return -EINVAL;
	o->get_w = (unsigned)g;
	o->set_w = (unsigned)st;
	return 0;
}

static int load_parse_dist(const char *s, struct load_opts *o)
{
	if (!strcmp(s, "uniform")) {
		o->zipf = false;
		return 0;
	}
	if (strncmp(s, "zipf", 4))
		return -EINVAL;
	o->zipf = true;
	o->theta = LOAD_THETA_DEF;
	if (!s[4])
		return 0;
	if (s[4] != ':' || bench_parse_double(s + 5, &o->theta))
		return -EINVAL;
	return o->theta > 0.0 && o->theta < 1.0 ? 0 : -EINVAL;
}

/* Decimal digits the largest key number needs. */
static unsigned load_digits(uint64_t v)
{
	unsigned d = 1;

	while (v >= 10) {
		v /= 10;
		d++;
	}
	return d;
}

/* Bytes of the longest request: a SET. */
static size_t load_req_max(const struct load_opts *o)
{
	/* "set " key " 0 0 " digits "\r\n" value "\r\n", or the shorter
	 * "ms " key " " digits "\r\n" value "\r\n". */
	return 4 + o->klen + 5 + 10 + 2 + o->vlen + 2;
}

static int load_parse(int argc, char **argv, struct load_opts *o)
{
	enum {
		OPT_SERVER = 256,
		OPT_PROTO,
		OPT_UDP_SETS,
		OPT_TCP_PORT,
		OPT_CONNS,
		OPT_PIPELINE,
		OPT_RATIO,
		OPT_KEYS,
		OPT_DIST,
		OPT_KLEN,
		OPT_VLEN,
		OPT_WARMUP,
		OPT_DURATION,
		OPT_REQUESTS,
		OPT_RATE,
		OPT_THREADS,
		OPT_CPUS,
		OPT_TIMEOUT,
		OPT_PRELOAD,
		OPT_SEED,
		OPT_JSON,
		OPT_QUIET,
	};
	static const struct option longopts[] = {
		{"server", required_argument, NULL, OPT_SERVER},
		{"proto", required_argument, NULL, OPT_PROTO},
		{"udp-sets", required_argument, NULL, OPT_UDP_SETS},
		{"tcp-port", required_argument, NULL, OPT_TCP_PORT},
		{"conns", required_argument, NULL, OPT_CONNS},
		{"pipeline", required_argument, NULL, OPT_PIPELINE},
		{"ratio", required_argument, NULL, OPT_RATIO},
		{"keys", required_argument, NULL, OPT_KEYS},
		{"dist", required_argument, NULL, OPT_DIST},
		{"key-size", required_argument, NULL, OPT_KLEN},
		{"value-size", required_argument, NULL, OPT_VLEN},
		{"warmup", required_argument, NULL, OPT_WARMUP},
		{"duration", required_argument, NULL, OPT_DURATION},
		{"requests", required_argument, NULL, OPT_REQUESTS},
		{"rate", required_argument, NULL, OPT_RATE},
		{"threads", required_argument, NULL, OPT_THREADS},
		{"cpus", required_argument, NULL, OPT_CPUS},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"preload", no_argument, NULL, OPT_PRELOAD},
		{"seed", required_argument, NULL, OPT_SEED},
		{"json", no_argument, NULL, OPT_JSON},
		{"quiet", no_argument, NULL, OPT_QUIET},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *server = "127.0.0.1:11211";
	bool duration_set = false;
	char tcp_port[16];
	uint64_t v;
	int c;

	*o = (struct load_opts){
		.proto = LOAD_TEXT,
		.conns = LOAD_CONNS_DEF,
		.pipeline = 1,
		.threads = 1,
		.get_w = 90,
		.set_w = 10,
		.keys = LOAD_KEYS_DEF,
		.theta = LOAD_THETA_DEF,
		.klen = LOAD_KLEN_DEF,
		.vlen = LOAD_VLEN_DEF,
		.warmup = LOAD_WARMUP_DEF,
		.duration = LOAD_DURATION_DEF,
		.timeout = LOAD_TIMEOUT_DEF,
		.seed = 0x6d656d6c616e65ull,
	};
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_SERVER:
			server = optarg;
			break;
		case OPT_PROTO:
			if (!strcmp(optarg, "text"))
				o->proto = LOAD_TEXT;
			else if (!strcmp(optarg, "meta"))
				o->proto = LOAD_META;
			else if (!strcmp(optarg, "udp"))
				o->proto = LOAD_UDP;
			else
				goto bad;
			break;
		case OPT_UDP_SETS:
			if (!strcmp(optarg, "tcp"))
				o->udp_sets_tcp = true;
			else if (!strcmp(optarg, "udp"))
				o->udp_sets_tcp = false;
			else
				goto bad;
			break;
		case OPT_TCP_PORT:
			if (bench_parse_u64(optarg, &v) || !v || v > 65535)
				goto bad;
			o->tcp_port = (unsigned)v;
			break;
		case OPT_CONNS:
			if (bench_parse_u64(optarg, &v) || !v || v > 65536)
				goto bad;
			o->conns = (unsigned)v;
			break;
		case OPT_PIPELINE:
			if (bench_parse_u64(optarg, &v) || !v ||
			    v > LOAD_PIPELINE_MAX)
				goto bad;
			o->pipeline = (unsigned)v;
			break;
		case OPT_RATIO:
			if (load_parse_ratio(optarg, o))
				goto bad;
			break;
		case OPT_KEYS:
			if (bench_parse_u64(optarg, &o->keys) || !o->keys ||
			    o->keys > UINT32_MAX)
				goto bad;
			break;
		case OPT_DIST:
			if (load_parse_dist(optarg, o))
				goto bad;
			break;
		case OPT_KLEN:
			if (bench_parse_u64(optarg, &v) || v < BENCH_KEY_MIN ||
			    v > PROTO_KEY_MAX)
				goto bad;
			o->klen = (unsigned)v;
			break;
		case OPT_VLEN:
			if (bench_parse_u64(optarg, &v) || v > LOAD_VLEN_MAX)
				goto bad;
			o->vlen = (unsigned)v;
			break;
		case OPT_WARMUP:
			if (bench_parse_double(optarg, &o->warmup))
				goto bad;
			break;
		case OPT_DURATION:
			if (bench_parse_double(optarg, &o->duration))
				goto bad;
			duration_set = true;
			break;
		case OPT_REQUESTS:
			if (bench_parse_u64(optarg, &o->requests) ||
			    !o->requests)
				goto bad;
			break;
		case OPT_RATE:
			if (bench_parse_double(optarg, &o->rate) ||
			    !(o->rate > 0.0))
				goto bad;
			break;
		case OPT_THREADS:
			if (bench_parse_u64(optarg, &v) || !v ||
			    v > LOAD_THREADS_MAX)
				goto bad;
			o->threads = (unsigned)v;
			break;
		case OPT_CPUS:
			if (load_parse_cpus(optarg, o))
				goto bad;
			break;
		case OPT_TIMEOUT:
			if (bench_parse_double(optarg, &o->timeout) ||
			    !(o->timeout > 0.0))
				goto bad;
			break;
		case OPT_PRELOAD:
			o->preload = true;
			break;
		case OPT_SEED:
			if (bench_parse_u64(optarg, &o->seed))
				goto bad;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_QUIET:
			o->quiet = true;
			break;
		case 'h':
			load_usage(stdout);
			return 1;
		default:
			goto bad;
		}
	}
	if (optind != argc)
		goto bad;
	/* --requests alone runs until the requests are done. */
	if (o->requests && !duration_set)
		o->duration = 0.0;
	if (o->threads > o->conns) {
		fprintf(stderr, "load: --threads above --conns\n");
		goto bad;
	}
	if (load_digits(o->keys - 1) > o->klen - 4) {
		fprintf(stderr,
			"load: %u-byte keys cannot name %llu distinct keys\n",
			o->klen, (unsigned long long)o->keys);
		goto bad;
	}
	if (o->proto == LOAD_UDP && o->set_w && !o->udp_sets_tcp &&
	    LOAD_UDP_HDR + load_req_max(o) > LOAD_UDP_REQ_MAX) {
		fprintf(stderr,
			"load: a SET of %u bytes does not fit one "
			"datagram; use --udp-sets tcp\n",
			o->vlen);
		goto bad;
	}
	if (o->zipf && load_digits(o->keys) > 9 && !o->quiet)
		fprintf(stderr, "load: summing zeta over %llu keys...\n",
			(unsigned long long)o->keys);
	if (load_split_hostport(server, o)) {
		fprintf(stderr, "load: --server wants HOST:PORT\n");
		goto bad;
	}
	if (load_resolve(o->host, o->port, o->proto == LOAD_UDP, &o->addr))
		return -EINVAL;
	snprintf(tcp_port, sizeof(tcp_port), "%u", o->tcp_port);
	if (load_resolve(o->host, o->tcp_port ? tcp_port : o->port, false,
			 &o->tcp_addr))
		return -EINVAL;
	return 0;
bad:
	load_usage(stderr);
	return -EINVAL;
}

/* ------------------------------------------------------------------------
 * Requests and replies
 * ---------------------------------------------------------------------- */

static uint64_t load_next_key(struct load_thread *t)
{
	if (!t->o->zipf)
		return bench_rng_below(&t->rng, t->o->keys);
	return t->zring[t->zpos++ & (LOAD_ZIPF_RING - 1)];
}

static size_t load_put_u(char *p, uint64_t v)
{
	char tmp[24];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (i = 0; i < n; i++)
		p[i] = tmp[n - 1 - i];
	return n;
}

/* The value stored under key: the key's own name, then the pattern. */
static void load_put_value(const struct load_thread *t, uint64_t key, char *p)
{
	const struct load_opts *o = t->o;
	char name[PROTO_KEY_MAX];
	unsigned pre = ML_MIN(o->klen, o->vlen);

	bench_key_format(key, o->klen, name);
	memcpy(p, name, pre);
	memcpy(p + pre, t->value + pre, o->vlen - pre);
}

static bool load_value_ok(const struct load_thread *t, uint64_t key,
			  const char *p, uint64_t len)
{
	const struct load_opts *o = t->o;
	char name[PROTO_KEY_MAX];
	unsigned pre = ML_MIN(o->klen, o->vlen);

	if (len != o->vlen)
		return false;
	bench_key_format(key, o->klen, name);
	return !memcmp(p, name, pre) &&
	       !memcmp(p + pre, t->value + pre, o->vlen - pre);
}

/* Writes one request (no UDP header) at p; returns its length. */
static size_t load_compose(const struct load_thread *t, bool meta,
			   enum load_op op, uint64_t key, char *p)
{
	const struct load_opts *o = t->o;
	char *s = p;

	if (op == LOAD_GET) {
		memcpy(s, meta ? "mg " : "get ", meta ? 3 : 4);
		s += meta ? 3 : 4;
		bench_key_format(key, o->klen, s);
		s += o->klen;
		if (meta) {
			memcpy(s, " v", 2);
			s += 2;
		}
		memcpy(s, "\r\n", 2);
		return (size_t)(s + 2 - p);
	}
	memcpy(s, meta ? "ms " : "set ", meta ? 3 : 4);
	s += meta ? 3 : 4;
	bench_key_format(key, o->klen, s);
	s += o->klen;
	if (meta) {
		*s++ = ' ';
	} else {
		memcpy(s, " 0 0 ", 5);
		s += 5;
	}
	s += load_put_u(s, o->vlen);
	memcpy(s, "\r\n", 2);
	s += 2;
	load_put_value(t, key, s);
	s += o->vlen;
	memcpy(s, "\r\n", 2);
	return (size_t)(s + 2 - p);
}

/* Length of the line at p up to and including "\r\n", or 0 when no whole
 * line is there yet. */
static size_t load_line(const char *p, size_t len)
{
	const char *nl = memchr(p, '\n', ML_MIN(len, (size_t)LOAD_LINE_MAX));

	if (!nl)
		return 0;
	return (size_t)(nl - p) + 1;
}

static bool load_is(const char *p, size_t linelen, const char *word)
{
	size_t n = strlen(word);

	return linelen == n + 2 && !memcmp(p, word, n) && p[n] == '\r';
}

static bool load_starts(const char *p, size_t linelen, const char *word)
{
	size_t n = strlen(word);

	return linelen >= n + 2 && !memcmp(p, word, n) &&
	       (p[n] == ' ' || p[n] == '\r');
}

static bool load_is_error(const char *p, size_t linelen)
{
	return load_is(p, linelen, "ERROR") ||
	       load_starts(p, linelen, "CLIENT_ERROR") ||
	       load_starts(p, linelen, "SERVER_ERROR");
}

/* Parses a decimal number at *p (before end); moves *p past it. */
static bool load_num(const char **p, const char *end, uint64_t *v)
{
	const char *s = *p;
	uint64_t x = 0;

	if (s == end || *s < '0' || *s > '9')
		return false;
	while (s < end && *s >= '0' && *s <= '9') {
		if (x > (UINT64_MAX - 9) / 10)
			return false;
		x = x * 10 + (uint64_t)(*s - '0');
		s++;
	}
	*p = s;
	*v = x;
	return true;
}

/*
 * Reads the data block of a hit: bytes of value at p + head, then "\r\n",
 * then trail (the text protocol's "END\r\n", or nothing). Sets *used.
 */
static enum load_res load_data(const struct load_thread *t,
			       const struct load_req *r, const char *p,
			       size_t len, size_t head, uint64_t bytes,
			       const char *trail, size_t *used)
{
	size_t tlen = strlen(trail);
	uint64_t need = head + bytes + 2 + tlen;

	if (len < need)
		return LOAD_R_NEED;
	if (memcmp(p + head + bytes, "\r\n", 2) ||
	    memcmp(p + head + bytes + 2, trail, tlen))
		return LOAD_R_BAD;
	*used = (size_t)need;
	return load_value_ok(t, r->key, p + head, bytes) ? LOAD_R_HIT
							 : LOAD_R_BAD_VALUE;
}

/* "VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>\r\nEND\r\n" */
static enum load_res load_text_value(const struct load_thread *t,
				     const struct load_req *r, const char *p,
				     size_t len, size_t linelen, size_t *used)
{
	const char *s = p + 6, *end = p + linelen - 2;
	char name[PROTO_KEY_MAX];
	uint64_t flags, bytes, cas;

	bench_key_format(r->key, t->o->klen, name);
	if ((size_t)(end - s) <= t->o->klen || memcmp(s, name, t->o->klen) ||
	    s[t->o->klen] != ' ')
		return LOAD_R_BAD;
	s += t->o->klen + 1;
	if (!load_num(&s, end, &flags) || s == end || *s++ != ' ' ||
	    !load_num(&s, end, &bytes))
		return LOAD_R_BAD;
	if (s != end && (*s++ != ' ' || !load_num(&s, end, &cas) || s != end))
		return LOAD_R_BAD;
	return load_data(t, r, p, len, linelen, bytes, "END\r\n", used);
}

/* "VA <bytes>[ <flags>...]\r\n<data>\r\n" */
static enum load_res load_meta_value(const struct load_thread *t,
				     const struct load_req *r, const char *p,
				     size_t len, size_t linelen, size_t *used)
{
	const char *s = p + 3, *end = p + linelen - 2;
	uint64_t bytes;

	if (!load_num(&s, end, &bytes) || (s != end && *s != ' '))
		return LOAD_R_BAD;
	return load_data(t, r, p, len, linelen, bytes, "", used);
}

/*
 * Parses the reply to r at p (len bytes available). Returns what it said
 * and sets *used to its length, or returns LOAD_R_NEED.
 */
static enum load_res load_parse_reply(const struct load_thread *t, bool meta,
				      const struct load_req *r, const char *p,
				      size_t len, size_t *used)
{
	size_t ll = load_line(p, len);

	if (!ll)
		return len >= LOAD_LINE_MAX ? LOAD_R_BAD : LOAD_R_NEED;
	if (ll < 2 || p[ll - 2] != '\r')
		return LOAD_R_BAD;
	*used = ll;
	if (load_is_error(p, ll))
		return LOAD_R_SERVER_ERROR;
	if (r->op == LOAD_GET) {
		if (meta) {
			if (load_is(p, ll, "EN"))
				return LOAD_R_MISS;
			if (ll > 5 && !memcmp(p, "VA ", 3))
				return load_meta_value(t, r, p, len, ll, used);
			/* A hit without its value. */
			if (load_starts(p, ll, "HD"))
				return LOAD_R_BAD_VALUE;
			return LOAD_R_BAD;
		}
		if (load_is(p, ll, "END"))
			return LOAD_R_MISS;
		if (ll > 8 && !memcmp(p, "VALUE ", 6))
			return load_text_value(t, r, p, len, ll, used);
		return LOAD_R_BAD;
	}
	if (meta) {
		if (load_starts(p, ll, "HD"))
			return LOAD_R_STORED;
		if (load_starts(p, ll, "NS") || load_starts(p, ll, "EX") ||
		    load_starts(p, ll, "NF"))
			return LOAD_R_NOT_STORED;
		return LOAD_R_BAD;
	}
	if (load_is(p, ll, "STORED"))
		return LOAD_R_STORED;
	if (load_is(p, ll, "NOT_STORED") || load_is(p, ll, "EXISTS") ||
	    load_is(p, ll, "NOT_FOUND"))
		return LOAD_R_NOT_STORED;
	return LOAD_R_BAD;
}

/* ------------------------------------------------------------------------
 * Accounting
 * ---------------------------------------------------------------------- */

static uint64_t load_errors(const struct load_counts *c)
{
	return c->server_errors + c->not_stored + c->bad_values +
	       c->bad_replies + c->timeouts + c->conn_errors;
}

/* Whether what happens now belongs to the measured window. */
static bool load_counting(const struct load_thread *t)
{
	return t->measuring && (!t->stopping || t->o->duration == 0.0);
}

/* Only the owner thread writes its counters: a relaxed load and store
 * are enough, and cost no locked instruction. */
static void load_publish_ops(struct load_thread *t)
{
	uint64_t v = atomic_load_explicit(&t->prog_ops, memory_order_relaxed);

	atomic_store_explicit(&t->prog_ops, v + 1, memory_order_relaxed);
}

static void load_complete(struct load_thread *t, struct load_ep *ep,
			  const struct load_req *r, enum load_res res,
			  uint64_t now)
{
	struct load_counts *c = &t->st.c;
	uint64_t lat;

	ep->flow->inflight--;
	if (res == LOAD_R_HIT || res == LOAD_R_MISS || res == LOAD_R_STORED)
		load_publish_ops(t);
	if (!r->measured || !load_counting(t))
		return;
	lat = now > r->t_intended ? now - r->t_intended : 0;
	load_hist_add(&t->st.all, lat);
	load_hist_add(r->op == LOAD_GET ? &t->st.get : &t->st.set, lat);
	switch (res) {
	case LOAD_R_HIT:
		c->gets++;
		c->hits++;
		break;
	case LOAD_R_MISS:
		c->gets++;
		c->misses++;
		break;
	case LOAD_R_STORED:
		c->sets++;
		break;
	case LOAD_R_NOT_STORED:
		c->not_stored++;
		break;
	case LOAD_R_SERVER_ERROR:
		c->server_errors++;
		break;
	case LOAD_R_BAD_VALUE:
		c->bad_values++;
		break;
	default:
		c->bad_replies++;
		break;
	}
}

static void load_publish_errors(struct load_thread *t)
{
	atomic_store_explicit(&t->prog_errors, load_errors(&t->st.c),
			      memory_order_relaxed);
}

/* ------------------------------------------------------------------------
 * Sockets
 * ---------------------------------------------------------------------- */

static void load_ep_events(struct load_thread *t, struct load_ep *ep, bool out)
{
	struct epoll_event ev = {
		.events = EPOLLIN | (out ? EPOLLOUT : 0),
		.data.ptr = ep,
	};

	if (out == ep->want_out)
		return;
	ep->want_out = out;
	epoll_ctl(t->epfd, EPOLL_CTL_MOD, ep->fd, &ev);
}

static void load_ep_reset(struct load_ep *ep)
{
	unsigned i;

	ep->head = 0;
	ep->n = 0;
	ep->soff = ep->slen = 0;
	ep->roff = ep->rlen = 0;
	ep->txoff = ep->ntx = 0;
	if (ep->udp) {
		ep->nfree = 0;
		for (i = ep->id_mask + 1; i-- > 0;) {
			ep->reqs[i].active = false;
			if (i < ep->txcap)
				ep->free_slots[ep->nfree++] = i;
		}
	}
}

/* Opens the socket (TCP: starts a non-blocking connect). */
static int load_ep_open(struct load_thread *t, struct load_ep *ep)
{
	const struct load_opts *o = t->o;
	const struct sockaddr_storage *a = ep->udp ? &o->addr : &o->tcp_addr;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = ep};
	int fd, one = 1, rc;

	fd = socket(a->ss_family,
		    (ep->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK |
			    SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		return -errno;
	if (!ep->udp)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	rc = connect(fd, (const struct sockaddr *)a,
		     a->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					      : sizeof(struct sockaddr_in));
	if (rc && errno != EINPROGRESS) {
		rc = -errno;
		close(fd);
		return rc;
	}
	ep->connecting = rc != 0;
	ep->want_out = ep->connecting;
	if (ep->want_out)
		ev.events |= EPOLLOUT;
	if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		rc = -errno;
		close(fd);
		return rc;
	}
	ep->fd = fd;
	load_ep_reset(ep);
	return 0;
}

static unsigned load_ep_inflight(const struct load_ep *ep)
{
	return ep->udp ? ep->txcap - ep->nfree : ep->n;
}

/* Gives a socket up: what was in flight on it is lost. A TCP socket is
 * reopened after LOAD_RECONNECT_NS. */
static void load_ep_fail(struct load_thread *t, struct load_ep *ep,
			 enum load_fail why, uint64_t now)
{
	struct load_counts *c = &t->st.c;
	unsigned lost = load_ep_inflight(ep);
	bool count = load_counting(t);

	ep->flow->inflight -= lost;
	if (count) {
		switch (why) {
		case LOAD_F_TIMEOUT:
			c->timeouts += lost;
			break;
		case LOAD_F_BAD:
			c->bad_replies++;
			c->aborted += lost;
			break;
		default:
			c->conn_errors++;
			c->aborted += lost;
			break;
		}
	}
	if (ep->fd >= 0)
		close(ep->fd);
	ep->fd = -1;
	ep->connecting = false;
	ep->want_out = false;
	load_ep_reset(ep);
	ep->reconnect_at = now + LOAD_RECONNECT_NS;
	load_publish_errors(t);
}

static void load_ep_reopen(struct load_thread *t, struct load_ep *ep,
			   uint64_t now)
{
	if (!load_ep_open(t, ep))
		return;
	if (load_counting(t))
		t->st.c.conn_errors++;
	ep->reconnect_at = now + LOAD_RECONNECT_NS;
	load_publish_errors(t);
}

/* Sends what is queued on a socket, as far as the kernel takes it. */
static void load_ep_flush(struct load_thread *t, struct load_ep *ep,
			  uint64_t now)
{
	if (ep->fd < 0 || ep->connecting)
		return;
	if (ep->udp) {
		size_t cell = LOAD_UDP_REQ_MAX;
		struct mmsghdr msgs[LOAD_UDP_BURST];
		struct iovec iov[LOAD_UDP_BURST];

		while (ep->txoff < ep->ntx) {
			unsigned i,
				k = ML_MIN(ep->ntx - ep->txoff, LOAD_UDP_BURST);
			int sent;

			for (i = 0; i < k; i++) {
				unsigned j = ep->txoff + i;

				iov[i].iov_base = ep->tx + (size_t)j * cell;
				iov[i].iov_len = ep->txlen[j];
				msgs[i] = (struct mmsghdr){
					.msg_hdr.msg_iov = &iov[i],
					.msg_hdr.msg_iovlen = 1,
				};
			}
			sent = sendmmsg(ep->fd, msgs, k, MSG_DONTWAIT);
			if (sent < 0) {
				if (errno == EAGAIN || errno == ENOBUFS ||
				    errno == EINTR)
					break;
				/* A refused datagram (nothing listens):
				 * those in flight will time out. */
				if (load_counting(t))
					t->st.c.conn_errors++;
				ep->txoff = ep->ntx;
				break;
			}
			ep->txoff += (unsigned)sent;
		}
		if (ep->txoff == ep->ntx)
			ep->txoff = ep->ntx = 0;
		load_ep_events(t, ep, ep->ntx != 0);
		return;
	}
	while (ep->soff < ep->slen) {
		ssize_t n = send(ep->fd, ep->sbuf + ep->soff,
				 ep->slen - ep->soff, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			load_ep_fail(t, ep, LOAD_F_CONN, now);
			return;
		}
		ep->soff += (size_t)n;
	}
	if (ep->soff == ep->slen)
		ep->soff = ep->slen = 0;
	load_ep_events(t, ep, ep->slen != 0);
}

/* Queues one request on a socket. */
static void load_ep_send(struct load_thread *t, struct load_ep *ep,
			 const struct load_req *req)
{
	bool meta = ep->meta;
	struct load_req *r;

	if (ep->udp) {
		unsigned slot = ep->free_slots[--ep->nfree];
		char *cell;

		if (ep->ntx == ep->txcap) {
			/* Earlier datagrams wait on the kernel: move the
			 * unsent ones to the front. */
			memmove(ep->tx,
				ep->tx + (size_t)ep->txoff * LOAD_UDP_REQ_MAX,
				(size_t)(ep->ntx - ep->txoff) *
					LOAD_UDP_REQ_MAX);
			memmove(ep->txlen, ep->txlen + ep->txoff,
				(ep->ntx - ep->txoff) * sizeof(*ep->txlen));
			ep->ntx -= ep->txoff;
			ep->txoff = 0;
		}
		r = &ep->reqs[slot];
		*r = *req;
		r->udp_id = (uint16_t)(((unsigned)ep->id_gen++ << ep->id_bits) |
				       slot);
		r->active = true;
		r->dgrams_seen = 0;
		cell = ep->tx + (size_t)ep->ntx * LOAD_UDP_REQ_MAX;
		cell[0] = (char)(r->udp_id >> 8);
		cell[1] = (char)(r->udp_id & 0xff);
		memset(cell + 2, 0, 6);
		cell[5] = 1; /* one datagram */
		ep->txlen[ep->ntx++] =
			(unsigned)(LOAD_UDP_HDR +
				   load_compose(t, false, req->op, req->key,
						cell + LOAD_UDP_HDR));
		return;
	}
	if (ep->soff == ep->slen) {
		ep->soff = ep->slen = 0;
	} else if (ep->slen + load_req_max(t->o) > ep->scap) {
		memmove(ep->sbuf, ep->sbuf + ep->soff, ep->slen - ep->soff);
		ep->slen -= ep->soff;
		ep->soff = 0;
	}
	ep->slen +=
		load_compose(t, meta, req->op, req->key, ep->sbuf + ep->slen);
	r = &ep->reqs[(ep->head + ep->n++) % (ep->id_mask + 1)];
	*r = *req;
}

/* ------------------------------------------------------------------------
 * Issuing
 * ---------------------------------------------------------------------- */

static bool load_flow_ready(const struct load_thread *t,
			    const struct load_flow *f, uint64_t now)
{
	if (t->stopping || f->inflight >= t->o->pipeline)
		return false;
	if (t->measuring && t->limited && t->issued >= t->quota)
		return false;
	return !t->interval_ns || f->due <= now;
}

/* Issues as many requests as the flow may now send. */
static void load_flow_issue(struct load_thread *t, struct load_flow *f,
			    uint64_t now)
{
	const struct load_opts *o = t->o;

	while (load_flow_ready(t, f, now)) {
		struct load_req req = {
			.key = load_next_key(t),
			.t_sent = now,
			.measured = t->measuring,
		};
		struct load_ep *ep;

		if (bench_rng_below(&t->rng, o->get_w + o->set_w) < o->get_w)
			req.op = LOAD_GET;
		else
			req.op = LOAD_SET;
		ep = req.op == LOAD_SET && f->ep[1] ? f->ep[1] : f->ep[0];
		if (ep->fd < 0 || ep->connecting)
			return;
		req.t_intended = t->interval_ns ? f->due : now;
		load_ep_send(t, ep, &req);
		f->inflight++;
		if (t->measuring)
			t->issued++;
		if (t->interval_ns) {
			f->due_k++;
			f->due = f->due_base +
				 (uint64_t)((double)f->due_k * t->interval_ns);
		}
	}
}

/* ------------------------------------------------------------------------
 * Receiving
 * ---------------------------------------------------------------------- */

static void load_tcp_read(struct load_thread *t, struct load_ep *ep,
			  uint64_t now)
{
	unsigned cap = ep->id_mask + 1;
	ssize_t n;

	if (ep->rlen == ep->rcap) {
		load_ep_fail(t, ep, LOAD_F_BAD, now);
		return;
	}
	n = recv(ep->fd, ep->rbuf + ep->rlen, ep->rcap - ep->rlen, 0);
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		load_ep_fail(t, ep, LOAD_F_CONN, now);
		return;
	}
	ep->rlen += (size_t)n;
	while (ep->n) {
		struct load_req *r = &ep->reqs[ep->head];
		size_t used = 0;
		enum load_res res;

		res = load_parse_reply(t, ep->meta, r, ep->rbuf + ep->roff,
				       ep->rlen - ep->roff, &used);
		if (res == LOAD_R_NEED)
			break;
		if (res == LOAD_R_BAD) {
			load_ep_fail(t, ep, LOAD_F_BAD, now);
			return;
		}
		load_complete(t, ep, r, res, now);
		ep->roff += used;
		ep->head = (ep->head + 1) % cap;
		ep->n--;
	}
	if (!ep->n && ep->roff < ep->rlen) {
		/* Bytes that answer nothing that was asked. */
		load_ep_fail(t, ep, LOAD_F_BAD, now);
		return;
	}
	if (ep->roff == ep->rlen) {
		ep->roff = ep->rlen = 0;
	} else if (ep->roff) {
		memmove(ep->rbuf, ep->rbuf + ep->roff, ep->rlen - ep->roff);
		ep->rlen -= ep->roff;
		ep->roff = 0;
	}
}

/* One reply datagram. A reply in several datagrams (a long value) is
 * counted when all have come; only its first is checked. */
static void load_udp_dgram(struct load_thread *t, struct load_ep *ep,
			   const unsigned char *d, size_t len, uint64_t now)
{
	unsigned id, seq, count;
	struct load_req *r;
	enum load_res res;
	size_t used = 0;

	if (len < LOAD_UDP_HDR) {
		if (load_counting(t))
			t->st.c.bad_replies++;
		return;
	}
	id = (unsigned)d[0] << 8 | d[1];
	seq = (unsigned)d[2] << 8 | d[3];
	count = (unsigned)d[4] << 8 | d[5];
	r = &ep->reqs[id & ep->id_mask];
	/* Late (the request timed out) or a stray: not ours to count. */
	if (!r->active || r->udp_id != id)
		return;
	if (count == 0 || seq >= count) {
		res = LOAD_R_BAD;
	} else if (count == 1) {
		res = load_parse_reply(t, false, r,
				       (const char *)d + LOAD_UDP_HDR,
				       len - LOAD_UDP_HDR, &used);
		if (res == LOAD_R_NEED || used != len - LOAD_UDP_HDR)
			res = LOAD_R_BAD;
	} else {
		if (seq == 0 && (len < LOAD_UDP_HDR + 6 ||
				 memcmp(d + LOAD_UDP_HDR, "VALUE ", 6))) {
			res = LOAD_R_BAD;
		} else if (++r->dgrams_seen < count) {
			return;
		} else {
			res = r->op == LOAD_GET ? LOAD_R_HIT : LOAD_R_BAD;
		}
	}
	r->active = false;
	ep->free_slots[ep->nfree++] = id & ep->id_mask;
	load_complete(t, ep, r, res, now);
}

static void load_udp_read(struct load_thread *t, struct load_ep *ep,
			  uint64_t now)
{
	int n, i;

	n = recvmmsg(ep->fd, t->rx_msgs, LOAD_UDP_BURST, MSG_DONTWAIT, NULL);
	if (n < 0) {
		/* ECONNREFUSED: nothing listens; the requests time out. */
		if (errno != EAGAIN && errno != EINTR && load_counting(t))
			t->st.c.conn_errors++;
		return;
	}
	for (i = 0; i < n; i++) {
		if (t->rx_msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
			if (load_counting(t))
				t->st.c.bad_replies++;
			continue;
		}
		load_udp_dgram(t, ep,
			       (const unsigned char *)t->rx_buf +
				       (size_t)i * LOAD_UDP_RX_BUF,
			       t->rx_msgs[i].msg_len, now);
		t->rx_msgs[i].msg_hdr.msg_flags = 0;
	}
}

static void load_ep_ready(struct load_thread *t, struct load_ep *ep,
			  uint32_t events, uint64_t now)
{
	struct load_flow *f = ep->flow;
	unsigned i;

	if (ep->connecting && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		int err = 0;
		socklen_t elen = sizeof(err);

		getsockopt(ep->fd, SOL_SOCKET, SO_ERROR, &err, &elen);
		if (err) {
			load_ep_fail(t, ep, LOAD_F_CONN, now);
			return;
		}
		ep->connecting = false;
		load_ep_events(t, ep, false);
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
		if (ep->udp)
			load_udp_read(t, ep, now);
		else
			load_tcp_read(t, ep, now);
	}
	if (ep->fd < 0)
		return;
	load_flow_issue(t, f, now);
	for (i = 0; i < 2; i++) {
		if (f->ep[i])
			load_ep_flush(t, f->ep[i], now);
	}
}

/* The oldest request on each socket against --timeout; reconnects. */
static void load_tick(struct load_thread *t, uint64_t now)
{
	uint64_t limit = (uint64_t)(t->o->timeout * 1e9);
	unsigned i, j;

	for (i = 0; i < t->neps; i++) {
		struct load_ep *ep = &t->eps[i];

		if (ep->fd < 0) {
			if (now >= ep->reconnect_at && !t->stopping)
				load_ep_reopen(t, ep, now);
			continue;
		}
		if (!ep->udp) {
			if (ep->n && now - ep->reqs[ep->head].t_sent > limit)
				load_ep_fail(t, ep, LOAD_F_TIMEOUT, now);
			continue;
		}
		for (j = 0; j < ep->txcap; j++) {
			struct load_req *r = &ep->reqs[j];

			if (!r->active || now - r->t_sent <= limit)
				continue;
			r->active = false;
			ep->free_slots[ep->nfree++] = j;
			ep->flow->inflight--;
			if (r->measured && load_counting(t))
				t->st.c.timeouts++;
		}
	}
	load_publish_errors(t);
}

/* ------------------------------------------------------------------------
 * The thread
 * ---------------------------------------------------------------------- */

static unsigned load_bits(unsigned n)
{
	unsigned b = 0;

	while ((1u << b) < n)
		b++;
	return b;
}

static int load_ep_init(struct load_thread *t, struct load_ep *ep,
			struct load_flow *f, bool udp)
{
	const struct load_opts *o = t->o;
	unsigned d = o->pipeline;

	ep->fd = -1;
	ep->udp = udp;
	ep->meta = o->proto == LOAD_META;
	ep->flow = f;
	ep->id_bits = load_bits(d);
	ep->id_mask = (1u << ep->id_bits) - 1;
	ep->reqs = calloc(ep->id_mask + 1, sizeof(*ep->reqs));
	if (!ep->reqs)
		return -ENOMEM;
	if (udp) {
		ep->txcap = d;
		ep->free_slots = calloc(d, sizeof(*ep->free_slots));
		ep->tx = malloc((size_t)d * LOAD_UDP_REQ_MAX);
		ep->txlen = calloc(d, sizeof(*ep->txlen));
		if (!ep->free_slots || !ep->tx || !ep->txlen)
			return -ENOMEM;
		return 0;
	}
	ep->scap = (size_t)(d + 1) * load_req_max(o);
	ep->rcap = ML_MAX((size_t)LOAD_RBUF_MIN,
			  2 * (size_t)d * (o->klen + o->vlen + 64));
	ep->sbuf = malloc(ep->scap);
	ep->rbuf = malloc(ep->rcap);
	if (!ep->sbuf || !ep->rbuf)
		return -ENOMEM;
	return 0;
}

static void load_ep_free(struct load_ep *ep)
{
	if (ep->fd >= 0)
		close(ep->fd);
	free(ep->reqs);
	free(ep->free_slots);
	free(ep->tx);
	free(ep->txlen);
	free(ep->sbuf);
	free(ep->rbuf);
}

static void load_thread_free(struct load_thread *t)
{
	unsigned i;

	if (t->eps) {
		for (i = 0; i < t->neps; i++)
			load_ep_free(&t->eps[i]);
	}
	free(t->eps);
	free(t->flows);
	free(t->zring);
	free(t->value);
	free(t->rx_msgs);
	free(t->rx_iov);
	free(t->rx_buf);
	if (t->epfd >= 0)
		close(t->epfd);
	t->eps = NULL;
	t->flows = NULL;
	t->zring = NULL;
	t->value = NULL;
	t->rx_msgs = NULL;
	t->rx_iov = NULL;
	t->rx_buf = NULL;
	t->epfd = -1;
}

/* Everything a thread needs, before any thread starts. */
static int load_thread_init(struct load_thread *t)
{
	const struct load_opts *o = t->o;
	bool two = o->proto == LOAD_UDP && o->udp_sets_tcp;
	unsigned i, e = 0;
	int rc;

	bench_rng_seed(&t->rng, o->seed + 0x1000193ull * (t->idx + 1));
	t->value = malloc(o->vlen + 1);
	t->flows = calloc(t->nflows, sizeof(*t->flows));
	t->neps = t->nflows * (two ? 2 : 1);
	t->eps = calloc(t->neps, sizeof(*t->eps));
	if (!t->value || !t->flows || !t->eps)
		return -ENOMEM;
	for (i = 0; i < o->vlen; i++)
		t->value[i] = (char)('a' + i % 26);
	for (i = 0; i < t->neps; i++)
		t->eps[i].fd = -1;
	for (i = 0; i < t->nflows; i++) {
		struct load_flow *f = &t->flows[i];

		f->ep[0] = &t->eps[e++];
		rc = load_ep_init(t, f->ep[0], f, o->proto == LOAD_UDP);
		if (rc)
			return rc;
		if (two) {
			f->ep[1] = &t->eps[e++];
			rc = load_ep_init(t, f->ep[1], f, false);
			if (rc)
				return rc;
		}
	}
	if (o->zipf) {
		struct bench_rng zr;

		bench_rng_seed(&zr, o->seed ^ (0x9e37ull * (t->idx + 7)));
		t->zring = malloc(LOAD_ZIPF_RING * sizeof(*t->zring));
		if (!t->zring)
			return -ENOMEM;
		for (i = 0; i < LOAD_ZIPF_RING; i++)
			t->zring[i] =
				(uint32_t)bench_zipf_next(&load_zipf, &zr);
	}
	if (o->proto == LOAD_UDP) {
		t->rx_msgs = calloc(LOAD_UDP_BURST, sizeof(*t->rx_msgs));
		t->rx_iov = calloc(LOAD_UDP_BURST, sizeof(*t->rx_iov));
		t->rx_buf = malloc((size_t)LOAD_UDP_BURST * LOAD_UDP_RX_BUF);
		if (!t->rx_msgs || !t->rx_iov || !t->rx_buf)
			return -ENOMEM;
		for (i = 0; i < LOAD_UDP_BURST; i++) {
			t->rx_iov[i].iov_base =
				t->rx_buf + (size_t)i * LOAD_UDP_RX_BUF;
			t->rx_iov[i].iov_len = LOAD_UDP_RX_BUF;
			t->rx_msgs[i].msg_hdr.msg_iov = &t->rx_iov[i];
			t->rx_msgs[i].msg_hdr.msg_iovlen = 1;
		}
	}
	if (o->rate > 0.0)
		t->interval_ns = (double)o->conns * 1e9 / o->rate;
	return 0;
}

/* The drain after the stop: replies still due, within a bound. */
static bool load_drained(const struct load_thread *t)
{
	unsigned i;

	for (i = 0; i < t->nflows; i++) {
		if (t->flows[i].inflight)
			return false;
	}
	return true;
}

/* Next wake-up of an open loop: the earliest due request, or the tick. */
static uint64_t load_wait_ns(const struct load_thread *t, uint64_t now)
{
	uint64_t until = t->next_tick;
	unsigned i;

	if (t->interval_ns && !t->stopping) {
		for (i = 0; i < t->nflows; i++) {
			const struct load_flow *f = &t->flows[i];

			if (f->inflight < t->o->pipeline && f->due < until &&
			    f->ep[0]->fd >= 0 && !f->ep[0]->connecting)
				until = f->due;
		}
	}
	return until > now ? until - now : 0;
}

static void *load_thread_main(void *arg)
{
	struct load_thread *t = arg;
	const struct load_opts *o = t->o;
	struct epoll_event ev[LOAD_EVENTS];
	uint64_t now, drain_until = 0;
	unsigned i;

	if (t->cpu >= 0 && bench_pin_cpu(t->cpu) < 0)
		fprintf(stderr, "load: cannot pin thread %u to CPU %d\n",
			t->idx, t->cpu);
	now = bench_now_ns();
	for (i = 0; i < t->neps; i++) {
		if (load_ep_open(t, &t->eps[i]))
			t->eps[i].reconnect_at = now + LOAD_RECONNECT_NS;
	}
	for (i = 0; i < t->nflows; i++) {
		struct load_flow *f = &t->flows[i];

		/* Spread the connections' schedules over one interval. */
		f->due_base = now + (uint64_t)(t->interval_ns * i / t->nflows);
		f->due = f->due_base;
	}
	t->next_tick = now + LOAD_TICK_NS;

	for (;;) {
		int phase =
			atomic_load_explicit(&load_phase, memory_order_acquire);
		struct timespec ts;
		uint64_t wait;
		int n, k;

		now = bench_now_ns();
		if (phase == LOAD_PH_MEASURE && !t->measuring) {
			/* The measured window starts: forget the warmup. */
			memset(&t->st, 0, sizeof(t->st));
			t->measuring = true;
			t->issued = 0;
		}
		if (phase == LOAD_PH_STOP && !t->stopping) {
			t->stopping = true;
			drain_until =
				now + ML_MIN(LOAD_DRAIN_MAX_NS,
					     (uint64_t)(o->timeout * 1e9));
		}
		if (t->measuring && t->limited && t->issued >= t->quota &&
		    !t->finished && load_drained(t)) {
			t->finished = true;
			t->t_finished = now;
			atomic_store_explicit(&t->done, true,
					      memory_order_release);
		}
		if (t->stopping && (load_drained(t) || now >= drain_until))
			break;
		if (now >= t->next_tick) {
			load_tick(t, now);
			t->next_tick = now + LOAD_TICK_NS;
		}
		for (i = 0; i < t->nflows; i++)
			load_flow_issue(t, &t->flows[i], now);
		for (i = 0; i < t->neps; i++) {
			struct load_ep *ep = &t->eps[i];

			if (ep->slen || ep->ntx)
				load_ep_flush(t, ep, now);
		}

		wait = load_wait_ns(t, now);
		ts.tv_sec = (time_t)(wait / 1000000000ull);
		ts.tv_nsec = (long)(wait % 1000000000ull);
		n = epoll_pwait2(t->epfd, ev, LOAD_EVENTS, &ts, NULL);
		if (n < 0)
			continue;
		now = bench_now_ns();
		for (k = 0; k < n; k++)
			load_ep_ready(t, ev[k].data.ptr, ev[k].events, now);
		load_publish_errors(t);
	}
	if (!t->finished)
		t->t_finished = bench_now_ns();
	for (i = 0; i < t->neps; i++) {
		if (t->eps[i].fd >= 0)
			close(t->eps[i].fd);
		t->eps[i].fd = -1;
	}
	atomic_store_explicit(&t->done, true, memory_order_release);
	return NULL;
}

/* ------------------------------------------------------------------------
 * Preload: every key once, over one blocking TCP connection per thread
 * ---------------------------------------------------------------------- */

static int load_send_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads and checks the replies to count SETs. */
static int load_preload_replies(struct load_thread *t, int fd, bool meta,
				char *buf, size_t cap, unsigned count)
{
	struct load_req r = {.op = LOAD_SET};
	size_t have = 0, off = 0;

	while (count) {
		enum load_res res;
		size_t used = 0;
		ssize_t n;

		res = load_parse_reply(t, meta, &r, buf + off, have - off,
				       &used);
		if (res == LOAD_R_BAD)
			return -EPROTO;
		if (res != LOAD_R_NEED) {
			if (res != LOAD_R_STORED)
				t->pre_errors++;
			off += used;
			count--;
			continue;
		}
		if (off) {
			memmove(buf, buf + off, have - off);
			have -= off;
			off = 0;
		}
		if (have == cap)
			return -EPROTO;
		n = recv(fd, buf + have, cap - have, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n ? -errno : -ECONNRESET;
		have += (size_t)n;
	}
	return have == off ? 0 : -EPROTO;
}

static void *load_preload_main(void *arg)
{
	struct load_thread *t = arg;
	const struct load_opts *o = t->o;
	const struct sockaddr_storage *a = &o->tcp_addr;
	bool meta = o->proto == LOAD_META;
	size_t one = load_req_max(o), cap, used;
	struct timeval tv = {
		.tv_sec = (time_t)o->timeout,
		.tv_usec =
			(long)((o->timeout - (double)(time_t)o->timeout) * 1e6),
	};
	char *buf, reply[LOAD_LINE_MAX * 4];
	uint64_t key = t->pre_lo;
	int fd, one_i = 1;

	if (t->cpu >= 0)
		bench_pin_cpu(t->cpu);
	cap = ML_MAX((size_t)LOAD_PRELOAD_BYTES, one);
	buf = malloc(cap);
	if (!buf) {
		t->rc = -ENOMEM;
		return NULL;
	}
	fd = socket(a->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		t->rc = -errno;
		goto free_buf;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one_i, sizeof(one_i));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (const struct sockaddr *)a,
		    a->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					     : sizeof(struct sockaddr_in))) {
		t->rc = -errno;
		goto close_fd;
	}
	while (key < t->pre_hi) {
		unsigned count = 0;

		used = 0;
		while (key < t->pre_hi && count < LOAD_PRELOAD_BATCH &&
		       used + one <= cap) {
			used += load_compose(t, meta, LOAD_SET, key++,
					     buf + used);
			count++;
		}
		t->rc = load_send_all(fd, buf, used);
		if (t->rc)
			break;
		t->rc = load_preload_replies(t, fd, meta, reply, sizeof(reply),
					     count);
		if (t->rc)
			break;
	}
close_fd:
	close(fd);
free_buf:
	free(buf);
	return NULL;
}

/* Runs fn on every thread at once and waits for them all. */
static int load_run_threads(struct load_thread *ts, unsigned n,
			    void *(*fn)(void *))
{
	unsigned i, started;
	int rc = 0;

	for (started = 0; started < n; started++) {
		rc = -pthread_create(&ts[started].tid, NULL, fn, &ts[started]);
		if (rc)
			break;
	}
	for (i = 0; i < started; i++)
		pthread_join(ts[i].tid, NULL);
	return rc;
}

/* ------------------------------------------------------------------------
 * Report
 * ---------------------------------------------------------------------- */

struct load_result {
	struct load_stats st;
	double seconds;
	double preload_s;
	uint64_t preload_errors;
};

static double load_us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

static double load_ops(const struct load_result *r)
{
	const struct load_counts *c = &r->st.c;

	return r->seconds > 0.0 ? (double)(c->gets + c->sets) / r->seconds
				: 0.0;
}

static void load_print_lat(const char *name, const struct load_hist *h)
{
	if (!h->n)
		return;
	printf("%-10s p50 %9.1f  p99 %9.1f  p99.9 %9.1f  max %9.1f  mean "
	       "%9.1f\n",
	       name, load_us(load_hist_pct(h, 50.0)),
	       load_us(load_hist_pct(h, 99.0)), load_us(load_hist_pct(h, 99.9)),
	       load_us(h->max), load_hist_mean(h) / 1000.0);
}

static void load_print(const struct load_opts *o, const struct load_result *r)
{
	const struct load_counts *c = &r->st.c;
	char dist[32];

	if (o->zipf)
		snprintf(dist, sizeof(dist), "zipf %.2f", o->theta);
	else
		snprintf(dist, sizeof(dist), "uniform");
	printf("memlane-bench load\n");
	printf("server     %s:%s, %s", o->host, o->port,
	       load_proto_names[o->proto]);
	if (o->proto == LOAD_UDP && o->set_w)
		printf(" (SETs over %s)", o->udp_sets_tcp ? "TCP" : "UDP");
	printf("\nclient     %u connections x pipeline %u, %u thread%s, ",
	       o->conns, o->pipeline, o->threads, o->threads > 1 ? "s" : "");
	if (o->rate > 0.0)
		printf("open loop at %.0f requests/s\n", o->rate);
	else
		printf("closed loop\n");
	printf("requests   %u:%u GET:SET, %llu keys %s, %u-byte keys, "
	       "%u-byte values\n",
	       o->get_w, o->set_w, (unsigned long long)o->keys, dist, o->klen,
	       o->vlen);
	if (o->preload)
		printf("preload    %llu keys in %.2f s, %llu not stored\n",
		       (unsigned long long)o->keys, r->preload_s,
		       (unsigned long long)r->preload_errors);
	if (r->seconds <= 0.0)
		return;
	printf("measured   %.2f s after %.1f s of warmup\n\n", r->seconds,
	       o->warmup);
	printf("throughput %.0f ops/s (GETs %llu, SETs %llu; hits %.2f%% of "
	       "GETs)\n",
	       load_ops(r), (unsigned long long)c->gets,
	       (unsigned long long)c->sets,
	       c->gets ? 100.0 * (double)c->hits / (double)c->gets : 0.0);
	printf("latency us%s\n",
	       o->rate > 0.0 ? " (from the intended send time)" : "");
	load_print_lat("  all", &r->st.all);
	load_print_lat("  GET", &r->st.get);
	load_print_lat("  SET", &r->st.set);
	printf("errors     %llu: server %llu, not stored %llu, bad value "
	       "%llu, bad reply %llu,\n"
	       "           timeouts %llu, connection %llu (requests lost "
	       "with them %llu)\n",
	       (unsigned long long)load_errors(c),
	       (unsigned long long)c->server_errors,
	       (unsigned long long)c->not_stored,
	       (unsigned long long)c->bad_values,
	       (unsigned long long)c->bad_replies,
	       (unsigned long long)c->timeouts,
	       (unsigned long long)c->conn_errors,
	       (unsigned long long)c->aborted);
	printf("misses     %llu\n", (unsigned long long)c->misses);
}

static void load_json_lat(const char *name, const struct load_hist *h,
			  bool comma)
{
	printf("\"%s\": {\"count\": %llu, \"p50\": %.3f, \"p99\": %.3f, "
	       "\"p999\": %.3f, \"max\": %.3f, \"mean\": %.3f}%s",
	       name, (unsigned long long)h->n, load_us(load_hist_pct(h, 50.0)),
	       load_us(load_hist_pct(h, 99.0)), load_us(load_hist_pct(h, 99.9)),
	       load_us(h->max), load_hist_mean(h) / 1000.0, comma ? ", " : "");
}

static void load_print_json(const struct load_opts *o,
			    const struct load_result *r)
{
	const struct load_counts *c = &r->st.c;

	printf("{\"bench\": \"load\", \"server\": \"%s:%s\", \"proto\": "
	       "\"%s\", \"udp_sets\": \"%s\", \"conns\": %u, \"pipeline\": "
	       "%u, \"threads\": %u, \"get_weight\": %u, \"set_weight\": %u, "
	       "\"keys\": %llu, \"dist\": \"%s\", \"theta\": %.3f, "
	       "\"key_bytes\": %u, \"value_bytes\": %u, \"rate\": %.1f, "
	       "\"warmup_seconds\": %.3f,\n",
	       o->host, o->port, load_proto_names[o->proto],
	       o->udp_sets_tcp ? "tcp" : "udp", o->conns, o->pipeline,
	       o->threads, o->get_w, o->set_w, (unsigned long long)o->keys,
	       o->zipf ? "zipf" : "uniform", o->zipf ? o->theta : 0.0, o->klen,
	       o->vlen, o->rate, o->warmup);
	printf(" \"preload\": %s, \"preload_seconds\": %.3f, "
	       "\"preload_errors\": %llu,\n",
	       o->preload ? "true" : "false", r->preload_s,
	       (unsigned long long)r->preload_errors);
	printf(" \"seconds\": %.3f, \"ops_per_sec\": %.1f, \"gets\": %llu, "
	       "\"sets\": %llu, \"hits\": %llu, \"misses\": %llu,\n",
	       r->seconds, load_ops(r), (unsigned long long)c->gets,
	       (unsigned long long)c->sets, (unsigned long long)c->hits,
	       (unsigned long long)c->misses);
	printf(" \"errors\": {\"total\": %llu, \"server\": %llu, "
	       "\"not_stored\": %llu, \"bad_value\": %llu, \"bad_reply\": "
	       "%llu, \"timeouts\": %llu, \"connection\": %llu, "
	       "\"aborted_requests\": %llu},\n",
	       (unsigned long long)load_errors(c),
	       (unsigned long long)c->server_errors,
	       (unsigned long long)c->not_stored,
	       (unsigned long long)c->bad_values,
	       (unsigned long long)c->bad_replies,
	       (unsigned long long)c->timeouts,
	       (unsigned long long)c->conn_errors,
	       (unsigned long long)c->aborted);
	printf(" \"latency_us\": {");
	load_json_lat("all", &r->st.all, true);
	load_json_lat("get", &r->st.get, true);
	load_json_lat("set", &r->st.set, false);
	printf("}}\n");
}

/* ------------------------------------------------------------------------
 * The command
 * ---------------------------------------------------------------------- */

static void load_on_signal(int sig)
{
	(void)sig;
	atomic_store(&load_interrupted, true);
}

static void load_sleep_ns(uint64_t ns)
{
	struct timespec ts = {(time_t)(ns / 1000000000ull),
			      (long)(ns % 1000000000ull)};

	nanosleep(&ts, NULL);
}

static void load_progress_sums(const struct load_thread *ts, unsigned n,
			       uint64_t *ops, uint64_t *errors)
{
	unsigned i;

	*ops = *errors = 0;
	for (i = 0; i < n; i++) {
		*ops += atomic_load_explicit(&ts[i].prog_ops,
					     memory_order_relaxed);
		*errors += atomic_load_explicit(&ts[i].prog_errors,
						memory_order_relaxed);
	}
}

static bool load_all_done(const struct load_thread *ts, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		if (!atomic_load_explicit(&ts[i].done, memory_order_acquire))
			return false;
	}
	return true;
}

/*
 * The main thread's part while the load runs: the phase clock and the
 * progress line. Returns the measured window's length in seconds.
 */
static double load_supervise(const struct load_opts *o, struct load_thread *ts)
{
	uint64_t start = bench_now_ns(), t_measure = 0, t_stop = 0;
	uint64_t next_line = start + 1000000000ull, last_ops = 0;
	uint64_t last_line = start;
	uint64_t warmup_ns = (uint64_t)(o->warmup * 1e9);
	uint64_t dur_ns = (uint64_t)(o->duration * 1e9);
	unsigned sec = 0, i;

	for (;;) {
		uint64_t now = bench_now_ns();
		int phase = atomic_load(&load_phase);

		if (phase == LOAD_PH_WARMUP && now - start >= warmup_ns) {
			t_measure = now;
			atomic_store(&load_phase, LOAD_PH_MEASURE);
			phase = LOAD_PH_MEASURE;
		}
		if (phase == LOAD_PH_MEASURE &&
		    ((dur_ns && now - t_measure >= dur_ns) ||
		     atomic_load(&load_interrupted) ||
		     (o->requests && load_all_done(ts, o->threads)))) {
			t_stop = now;
			atomic_store(&load_phase, LOAD_PH_STOP);
			break;
		}
		if (phase == LOAD_PH_WARMUP && atomic_load(&load_interrupted)) {
			atomic_store(&load_phase, LOAD_PH_STOP);
			return 0.0;
		}
		if (now >= next_line) {
			uint64_t ops, errors;

			sec++;
			load_progress_sums(ts, o->threads, &ops, &errors);
			if (!o->quiet)
				fprintf(stderr,
					"load: %s %3us  %10.0f ops/s  "
					"errors %llu\n",
					phase == LOAD_PH_WARMUP ? "warmup"
								: "run   ",
					sec,
					(double)(ops - last_ops) * 1e9 /
						(double)(now - last_line),
					(unsigned long long)errors);
			last_ops = ops;
			last_line = now;
			next_line += 1000000000ull;
		}
		load_sleep_ns(ML_MIN(next_line - ML_MIN(next_line, now),
				     (uint64_t)LOAD_TICK_NS));
	}
	/* --requests: the window ends with the last thread's last reply. */
	if (o->requests && !dur_ns) {
		uint64_t last = t_measure;

		for (i = 0; i < o->threads; i++)
			last = ML_MAX(last, ts[i].t_finished);
		t_stop = ML_MIN(t_stop, last);
	}
	return (double)(t_stop - t_measure) / 1e9;
}

static int load_preload(const struct load_opts *o, struct load_thread *ts,
			struct load_result *res)
{
	uint64_t t0 = bench_now_ns();
	unsigned i;
	int rc;

	if (!o->quiet)
		fprintf(stderr, "load: preloading %llu keys...\n",
			(unsigned long long)o->keys);
	for (i = 0; i < o->threads; i++) {
		ts[i].pre_lo = o->keys * i / o->threads;
		ts[i].pre_hi = o->keys * (i + 1) / o->threads;
	}
	rc = load_run_threads(ts, o->threads, load_preload_main);
	res->preload_s = (double)(bench_now_ns() - t0) / 1e9;
	for (i = 0; i < o->threads; i++) {
		res->preload_errors += ts[i].pre_errors;
		if (!rc && ts[i].rc)
			rc = ts[i].rc;
	}
	if (rc) {
		fprintf(stderr, "load: preload: %s\n", strerror(-rc));
		return rc;
	}
	if (res->preload_errors)
		fprintf(stderr, "load: preload: %llu SETs not stored\n",
			(unsigned long long)res->preload_errors);
	else if (!o->quiet)
		fprintf(stderr, "load: preloaded in %.2f s\n", res->preload_s);
	return 0;
}

int bench_load_main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = load_on_signal};
	struct load_result *res;
	struct load_thread *ts;
	struct load_opts o;
	unsigned i, flow0 = 0;
	uint64_t q0 = 0;
	int rc, status = 1;

	rc = load_parse(argc, argv, &o);
	if (rc)
		return rc > 0 ? 0 : 2;
	if (o.zipf && bench_zipf_init(&load_zipf, o.keys, o.theta, o.seed))
		return 2;
	res = calloc(1, sizeof(*res));
	ts = calloc(o.threads, sizeof(*ts));
	if (!res || !ts) {
		fprintf(stderr, "load: out of memory\n");
		goto free_all;
	}
	for (i = 0; i < o.threads; i++) {
		struct load_thread *t = &ts[i];
		unsigned flow1 =
			(unsigned)((uint64_t)o.conns * (i + 1) / o.threads);
		uint64_t q1 = o.requests * (i + 1) / o.threads;

		t->idx = i;
		t->o = &o;
		t->epfd = -1;
		t->cpu = o.ncpus ? o.cpus[i % o.ncpus] : -1;
		t->nflows = flow1 - flow0;
		t->limited = o.requests != 0;
		t->quota = q1 - q0;
		flow0 = flow1;
		q0 = q1;
		rc = load_thread_init(t);
		if (rc) {
			fprintf(stderr, "load: %s\n", strerror(-rc));
			goto free_all;
		}
		t->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (t->epfd < 0) {
			fprintf(stderr, "load: epoll: %s\n", strerror(errno));
			goto free_all;
		}
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	if (o.preload && load_preload(&o, ts, res))
		goto free_all;
	if (o.duration == 0.0 && !o.requests) {
		/* Preload only. */
		if (o.json)
			load_print_json(&o, res);
		else
			load_print(&o, res);
		status = 0;
		goto free_all;
	}

	atomic_store(&load_phase, LOAD_PH_WARMUP);
	for (i = 0; i < o.threads; i++) {
		rc = -pthread_create(&ts[i].tid, NULL, load_thread_main,
				     &ts[i]);
		if (rc) {
			fprintf(stderr, "load: thread: %s\n", strerror(-rc));
			atomic_store(&load_phase, LOAD_PH_STOP);
			break;
		}
	}
	if (i == o.threads)
		res->seconds = load_supervise(&o, ts);
	while (i-- > 0)
		pthread_join(ts[i].tid, NULL);
	if (rc)
		goto free_all;

	for (i = 0; i < o.threads; i++) {
		struct load_counts *c = &res->st.c;
		const struct load_counts *tc = &ts[i].st.c;

		c->gets += tc->gets;
		c->sets += tc->sets;
		c->hits += tc->hits;
		c->misses += tc->misses;
		c->server_errors += tc->server_errors;
		c->not_stored += tc->not_stored;
		c->bad_values += tc->bad_values;
		c->bad_replies += tc->bad_replies;
		c->timeouts += tc->timeouts;
		c->conn_errors += tc->conn_errors;
		c->aborted += tc->aborted;
		load_hist_merge(&res->st.all, &ts[i].st.all);
		load_hist_merge(&res->st.get, &ts[i].st.get);
		load_hist_merge(&res->st.set, &ts[i].st.set);
	}
	if (o.json)
		load_print_json(&o, res);
	else
		load_print(&o, res);
	/* A run in which nothing was answered measured nothing. */
	status = res->st.c.gets + res->st.c.sets ? 0 : 1;
	if (status)
		fprintf(stderr, "load: no request was answered\n");
free_all:
	if (ts) {
		for (i = 0; i < o.threads; i++)
			load_thread_free(&ts[i]);
	}
	free(ts);
	free(res);
	return status;
}

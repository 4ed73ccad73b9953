/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memlane-bench pktload: a memcached UDP load generator that never enters
 * the kernel's socket layer. It drives a DPDK port of its own (net_af_xdp
 * or net_af_packet on the client's interface, or a NIC), builds every
 * frame itself with the dataplane's packet codec and answers ARP for its
 * address, so that on a veth pair the client costs a fraction of what a
 * socket client costs and the server, not the client, is measured.
 *
 * One lcore keeps --window requests in flight. A request's slot in the
 * window is its UDP request id (slot and a generation count), so a reply
 * finds its request at once and a late reply to a slot already reused is
 * told apart. Every reply is checked: a hit must carry the value this
 * generator stores under that key (the key's own name, then 'x's).
 * Latencies are kept, one sample per reply up to LAT_MAX, and sorted at
 * the end.
 *
 * Give it an address the client kernel does not own (--src): the kernel
 * then ignores the replies instead of answering them with ICMP port
 * unreachable, and this generator answers ARP for the address itself.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "cache.h"
#include "common.h"
#include "dp_pkt.h"

#include "bench.h"

#define PK_BURST      32
#define PK_WINDOW_MAX 1024 /* slot bits of the request id: 10 */
#define PK_SLOT_BITS  10
#define PK_EAL_MAX    48
#define PK_LAT_MAX    (8u << 20)
#define PK_KLEN_MAX   200
#define PK_VLEN_MAX   1024 /* a reply must fit one datagram */

struct pk_opts {
	char eal[512];
	struct dp_pkt_self self; /* the client: --src, its port */
	struct dp_peer to;	 /* the server */
	bool have_mac;
	uint64_t keys;
	unsigned get_w, set_w;
	unsigned klen, vlen;
	unsigned window;
	double duration, warmup, timeout;
	bool preload, json;
};

struct pk_slot {
	uint64_t key;
	uint64_t sent; /* tsc */
	uint8_t gen;
	bool busy, set;
};

struct pk_counts {
	uint64_t gets, sets, hits, misses, stored, errors, bad, timeouts;
	uint64_t late; /* replies to a slot already reused */
};

static struct {
	struct pk_opts o;
	uint16_t port;
	struct rte_mempool *pool;
	struct pk_slot slots[PK_WINDOW_MAX];
	struct rte_mbuf *tx[PK_BURST];
	unsigned ntx;
	uint16_t ip_id;
	uint64_t rng;
	uint64_t *lat;
	size_t nlat;
	bool counting;
	struct pk_counts c;
	uint64_t inflight;
} pk;

static atomic_bool pk_stop;

static void pk_on_signal(int sig)
{
	(void)sig;
	atomic_store(&pk_stop, true);
}

static void pk_usage(FILE *f)
{
	fprintf(f,
		"usage: memlane-bench pktload --eal \"ARGS\" --src ADDR "
		"--dst ADDR:PORT [options]\n"
		"  --eal ARGS       EAL arguments naming the client's port, "
		"e.g.\n"
		"                   \"--vdev=net_af_xdp0,iface=veth1\"\n"
		"  --src ADDR       the client's IPv4 address (one its kernel "
		"does not own)\n"
		"  --sport PORT     its UDP port (default 40000)\n"
		"  --dst ADDR:PORT  the server\n"
		"  --dst-mac MAC    the server's MAC (default: asked by ARP)\n"
		"  --keys N         key space (default 100000)\n"
		"  --ratio G:S      GET:SET weights (default 90:10)\n"
		"  --key-size N     bytes per key (default 16)\n"
		"  --value-size N   bytes per value (default 32, at most %d)\n"
		"  --window N       requests in flight (default 64, at most "
		"%d)\n"
		"  --duration S     measured seconds (default 5)\n"
		"  --warmup S       seconds before measuring (default 1)\n"
		"  --timeout S      a request unanswered this long is lost "
		"(default 0.2)\n"
		"  --preload        set every key once first\n"
		"  --json           one JSON object instead of the text\n",
		PK_VLEN_MAX, PK_WINDOW_MAX);
}

static int pk_parse(int argc, char **argv, struct pk_opts *o)
{
	static const struct option longopts[] = {
		{"eal", required_argument, NULL, 'e'},
		{"src", required_argument, NULL, 's'},
		{"sport", required_argument, NULL, 'P'},
		{"dst", required_argument, NULL, 'd'},
		{"dst-mac", required_argument, NULL, 'M'},
		{"keys", required_argument, NULL, 'k'},
		{"ratio", required_argument, NULL, 'r'},
		{"key-size", required_argument, NULL, 'K'},
		{"value-size", required_argument, NULL, 'V'},
		{"window", required_argument, NULL, 'w'},
		{"duration", required_argument, NULL, 'D'},
		{"warmup", required_argument, NULL, 'W'},
		{"timeout", required_argument, NULL, 'T'},
		{"preload", no_argument, NULL, 'p'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	char host[64];
	uint64_t v;
	int c;

	memset(o, 0, sizeof(*o));
	o->self.udp_port = htons(40000);
	o->keys = 100000;
	o->get_w = 90;
	o->set_w = 10;
	o->klen = 16;
	o->vlen = 32;
	o->window = 64;
	o->duration = 5.0;
	o->warmup = 1.0;
	o->timeout = 0.2;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		const char *colon;
		struct in_addr a;
		unsigned m[6];

		switch (c) {
		case 'e':
			snprintf(o->eal, sizeof(o->eal), "%s", optarg);
			break;
		case 's':
			if (inet_pton(AF_INET, optarg, &a) != 1)
				goto bad;
			o->self.ip = a.s_addr;
			break;
		case 'P':
			if (bench_parse_u64(optarg, &v) || !v || v > 65535)
				goto bad;
			o->self.udp_port = htons((uint16_t)v);
			break;
		case 'd':
			colon = strrchr(optarg, ':');
			if (!colon || (size_t)(colon - optarg) >= sizeof(host))
				goto bad;
			memcpy(host, optarg, (size_t)(colon - optarg));
			host[colon - optarg] = '\0';
			if (inet_pton(AF_INET, host, &a) != 1 ||
			    bench_parse_u64(colon + 1, &v) || !v || v > 65535)
				goto bad;
			o->to.ip = a.s_addr;
			o->to.port = htons((uint16_t)v);
			break;
		case 'M':
			if (sscanf(optarg, "%x:%x:%x:%x:%x:%x", &m[0], &m[1],
				   &m[2], &m[3], &m[4], &m[5]) != 6)
				goto bad;
			for (int i = 0; i < 6; i++)
				o->to.mac[i] = (uint8_t)m[i];
			o->have_mac = true;
			break;
		case 'k':
			if (bench_parse_u64(optarg, &o->keys) || !o->keys)
				goto bad;
			break;
		case 'r':
			if (sscanf(optarg, "%u:%u", &o->get_w, &o->set_w) !=
				    2 ||
			    o->get_w + o->set_w == 0)
				goto bad;
			break;
		case 'K':
			if (bench_parse_u64(optarg, &v) || v < BENCH_KEY_MIN ||
			    v > PK_KLEN_MAX)
				goto bad;
			o->klen = (unsigned)v;
			break;
		case 'V':
			if (bench_parse_u64(optarg, &v) || v > PK_VLEN_MAX)
				goto bad;
			o->vlen = (unsigned)v;
			break;
		case 'w':
			if (bench_parse_u64(optarg, &v) || !v ||
			    v > PK_WINDOW_MAX)
				goto bad;
			o->window = (unsigned)v;
			break;
		case 'D':
			if (bench_parse_double(optarg, &o->duration) ||
			    o->duration <= 0)
				goto bad;
			break;
		case 'W':
			if (bench_parse_double(optarg, &o->warmup) ||
			    o->warmup < 0)
				goto bad;
			break;
		case 'T':
			if (bench_parse_double(optarg, &o->timeout) ||
			    o->timeout <= 0)
				goto bad;
			break;
		case 'p':
			o->preload = true;
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			pk_usage(stdout);
			return 1;
		default:
			pk_usage(stderr);
			return -EINVAL;
		}
		continue;
	bad:
		fprintf(stderr, "memlane-bench pktload: bad value '%s'\n",
			optarg);
		return -EINVAL;
	}
	if (!o->eal[0] || !o->self.ip || !o->to.ip) {
		fprintf(stderr, "memlane-bench pktload: --eal, --src and --dst "
				"are needed\n");
		return -EINVAL;
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * Frames
 * ---------------------------------------------------------------------- */

static uint64_t pk_rand(void)
{
	uint64_t z = (pk.rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void pk_tx_flush(void)
{
	unsigned sent = 0;

	for (int t = 0; t < 64 && sent < pk.ntx; t++)
		sent += rte_eth_tx_burst(pk.port, 0, pk.tx + sent,
					 (uint16_t)(pk.ntx - sent));
	if (sent < pk.ntx)
		rte_pktmbuf_free_bulk(pk.tx + sent, pk.ntx - sent);
	pk.ntx = 0;
}

static void pk_tx(struct rte_mbuf *m)
{
	pk.tx[pk.ntx++] = m;
	if (pk.ntx == PK_BURST)
		pk_tx_flush();
}

/* The value stored under a key: its name, then 'x's. */
static void pk_value(uint64_t key, char *p)
{
	char name[PK_KLEN_MAX];
	unsigned pre = ML_MIN(pk.o.klen, pk.o.vlen);

	bench_key_format(key, pk.o.klen, name);
	memcpy(p, name, pre);
	memset(p + pre, 'x', pk.o.vlen - pre);
}

/* Sends the request of slot i (a get, or a set when set). */
static bool pk_send(unsigned i, uint64_t key, bool set)
{
	struct pk_slot *s = &pk.slots[i];
	struct rte_mbuf *m = rte_pktmbuf_alloc(pk.pool);
	struct proto_udp_hdr h;
	char *p, *b;
	size_t len;

	if (!m)
		return false;
	s->gen++;
	s->key = key;
	s->set = set;
	s->busy = true;
	b = rte_pktmbuf_mtod(m, char *);
	p = b + DP_PKT_UDP_HDR;
	h = (struct proto_udp_hdr){
		.req_id = (uint16_t)(s->gen << PK_SLOT_BITS | i), .count = 1};
	proto_udp_write(p, &h);
	p += PROTO_UDP_HDR;
	if (set) {
		p += sprintf(p, "set ");
		bench_key_format(key, pk.o.klen, p);
		p += pk.o.klen;
		p += sprintf(p, " 0 0 %u\r\n", pk.o.vlen);
		pk_value(key, p);
		p += pk.o.vlen;
		memcpy(p, "\r\n", 2);
		p += 2;
	} else {
		p += sprintf(p, "get ");
		bench_key_format(key, pk.o.klen, p);
		p += pk.o.klen;
		memcpy(p, "\r\n", 2);
		p += 2;
	}
	len = dp_pkt_udp_build((uint8_t *)b, &pk.o.self, &pk.o.to,
			       (size_t)(p - b) - DP_PKT_UDP_HDR, pk.ip_id++, 0);
	m->data_len = (uint16_t)len;
	m->pkt_len = (uint32_t)len;
	s->sent = rte_rdtsc();
	pk.inflight++;
	pk_tx(m);
	return true;
}

/* Checks a reply against its request and counts it. */
static void pk_reply(struct pk_slot *s, const char *p, size_t n)
{
	struct pk_counts *c = &pk.c;
	char head[PK_KLEN_MAX + 64], val[PK_VLEN_MAX];
	int hl;

	if (!pk.counting)
		return;
	if (s->set) {
		c->sets++;
		if (n == 8 && !memcmp(p, "STORED\r\n", 8))
			c->stored++;
		else
			c->errors++;
		return;
	}
	c->gets++;
	if (n == 5 && !memcmp(p, "END\r\n", 5)) {
		c->misses++;
		return;
	}
	memcpy(head, "VALUE ", 6);
	bench_key_format(s->key, pk.o.klen, head + 6);
	hl = 6 + (int)pk.o.klen;
	hl += snprintf(head + hl, sizeof(head) - (size_t)hl, " 0 %u\r\n",
		       pk.o.vlen);
	pk_value(s->key, val);
	if (n == (size_t)hl + pk.o.vlen + 7 && !memcmp(p, head, (size_t)hl) &&
	    !memcmp(p + hl, val, pk.o.vlen) &&
	    !memcmp(p + hl + pk.o.vlen, "\r\nEND\r\n", 7))
		c->hits++;
	else
		c->bad++;
}

static void pk_rx(void)
{
	struct rte_mbuf *rx[PK_BURST];
	uint16_t n = rte_eth_rx_burst(pk.port, 0, rx, PK_BURST);
	uint64_t now = rte_rdtsc();

	for (uint16_t i = 0; i < n; i++) {
		uint8_t *f = rte_pktmbuf_mtod(rx[i], uint8_t *);
		struct dp_pkt_info in;
		struct proto_udp_hdr h;
		struct pk_slot *s;

		switch (dp_pkt_classify(f, rte_pktmbuf_data_len(rx[i]),
					&pk.o.self, 0, &in)) {
		case DP_PKT_ARP_REQUEST:
			rx[i]->data_len = rx[i]->pkt_len =
				(uint16_t)dp_pkt_arp_reply(f, &pk.o.self);
			pk_tx(rx[i]);
			continue;
		case DP_PKT_MEMCACHED:
			break;
		default:
			rte_pktmbuf_free(rx[i]);
			continue;
		}
		proto_udp_parse(f + in.payload_off, in.payload_len, &h);
		s = &pk.slots[h.req_id & (PK_WINDOW_MAX - 1)];
		if (!s->busy || (uint8_t)(h.req_id >> PK_SLOT_BITS) !=
					(uint8_t)(s->gen & 0x3f)) {
			pk.c.late += pk.counting;
		} else {
			pk_reply(s,
				 (const char *)f + in.payload_off +
					 PROTO_UDP_HDR,
				 in.payload_len - PROTO_UDP_HDR);
			if (pk.counting && pk.nlat < PK_LAT_MAX)
				pk.lat[pk.nlat++] = now - s->sent;
			s->busy = false;
			pk.inflight--;
		}
		rte_pktmbuf_free(rx[i]);
	}
}

/* Asks the server's MAC by ARP; 0, or -ETIMEDOUT. */
static int pk_arp(void)
{
	uint64_t hz = rte_get_tsc_hz(), end = rte_rdtsc() + 3 * hz;
	struct dp_pkt_self probe = pk.o.self;

	while (rte_rdtsc() < end && !atomic_load(&pk_stop)) {
		struct rte_mbuf *m = rte_pktmbuf_alloc(pk.pool), *rx[PK_BURST];
		uint64_t next = rte_rdtsc() + hz / 5;

		if (!m)
			return -ENOMEM;
		m->data_len = m->pkt_len = (uint16_t)dp_pkt_arp_request(
			rte_pktmbuf_mtod(m, uint8_t *), &pk.o.self, pk.o.to.ip);
		pk_tx(m);
		pk_tx_flush();
		while (rte_rdtsc() < next) {
			uint16_t n = rte_eth_rx_burst(pk.port, 0, rx, PK_BURST);

			for (uint16_t i = 0; i < n; i++) {
				const uint8_t *f =
					rte_pktmbuf_mtod(rx[i], uint8_t *);

				if (dp_pkt_arp_is_reply(
					    f, rte_pktmbuf_data_len(rx[i]),
					    &probe, pk.o.to.ip, pk.o.to.mac)) {
					rte_pktmbuf_free_bulk(
						rx + i, (unsigned)(n - i));
					return 0;
				}
				rte_pktmbuf_free(rx[i]);
			}
		}
	}
	return -ETIMEDOUT;
}

enum pk_mode {
	PK_PRELOAD, /* a set of every key, once */
	PK_LOAD,    /* the mix, for the time given */
	PK_DRAIN,   /* nothing new: the replies still out */
};

/* Runs the window for at most `seconds`, as mode says. */
static void pk_run(double seconds, enum pk_mode mode, uint64_t *next_key)
{
	bool preload = mode == PK_PRELOAD;
	uint64_t hz = rte_get_tsc_hz(), start = rte_rdtsc();
	uint64_t end = start + (uint64_t)(seconds * (double)hz);
	uint64_t tmo = (uint64_t)(pk.o.timeout * (double)hz), last_scan = 0;
	unsigned weight = pk.o.get_w + pk.o.set_w;

	while (!atomic_load(&pk_stop)) {
		uint64_t now = rte_rdtsc();

		if (now >= end || (mode != PK_LOAD && !pk.inflight &&
				   (!preload || *next_key >= pk.o.keys)))
			break;
		for (unsigned i = 0; mode != PK_DRAIN && i < pk.o.window; i++) {
			uint64_t key;
			bool set;

			if (pk.slots[i].busy)
				continue;
			if (preload) {
				if (*next_key >= pk.o.keys)
					break;
				key = (*next_key)++;
				set = true;
			} else {
				uint64_t r = pk_rand();

				key = r % pk.o.keys;
				set = (unsigned)(r >> 40) % weight >=
				      pk.o.get_w;
			}
			if (!pk_send(i, key, set))
				break;
		}
		pk_tx_flush();
		pk_rx();
		if (now - last_scan > hz / 1000) {
			last_scan = now;
			for (unsigned i = 0; i < pk.o.window; i++) {
				struct pk_slot *s = &pk.slots[i];

				if (s->busy && now - s->sent > tmo) {
					s->busy = false;
					pk.inflight--;
					pk.c.timeouts += pk.counting;
				}
			}
		}
	}
}

static int pk_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pk_pct_us(double p)
{
	size_t i;

	if (!pk.nlat)
		return 0.0;
	i = (size_t)(p / 100.0 * (double)(pk.nlat - 1));
	return (double)pk.lat[i] * 1e6 / (double)rte_get_tsc_hz();
}

static void pk_print(double seconds)
{
	const struct pk_counts *c = &pk.c;
	double ops = (double)(c->gets + c->sets) / seconds;
	char src[16], dst[16];

	inet_ntop(AF_INET, &pk.o.self.ip, src, sizeof(src));
	inet_ntop(AF_INET, &pk.o.to.ip, dst, sizeof(dst));
	qsort(pk.lat, pk.nlat, sizeof(*pk.lat), pk_cmp);
	if (pk.o.json) {
		printf("{\"bench\": \"pktload\", \"server\": \"%s:%u\", "
		       "\"client\": \"%s\", \"window\": %u, \"keys\": %llu, "
		       "\"get_weight\": %u, \"set_weight\": %u, "
		       "\"value_bytes\": %u, \"seconds\": %.3f, "
		       "\"ops_per_sec\": %.1f, \"gets\": %llu, \"sets\": %llu, "
		       "\"hits\": %llu, \"misses\": %llu, \"errors\": %llu, "
		       "\"bad_replies\": %llu, \"timeouts\": %llu, \"late\": "
		       "%llu, \"latency_us\": {\"all\": {\"p50\": %.3f, "
		       "\"p99\": %.3f, \"p999\": %.3f}}}\n",
		       dst, ntohs(pk.o.to.port), src, pk.o.window,
		       (unsigned long long)pk.o.keys, pk.o.get_w, pk.o.set_w,
		       pk.o.vlen, seconds, ops, (unsigned long long)c->gets,
		       (unsigned long long)c->sets, (unsigned long long)c->hits,
		       (unsigned long long)c->misses,
		       (unsigned long long)c->errors,
		       (unsigned long long)c->bad,
		       (unsigned long long)c->timeouts,
		       (unsigned long long)c->late, pk_pct_us(50),
		       pk_pct_us(99), pk_pct_us(99.9));
		return;
	}
	printf("memlane-bench pktload\n"
	       "server     %s:%u, memcached UDP from %s over a DPDK port\n"
	       "client     window %u, %u:%u GET:SET, %llu keys, %u-byte "
	       "values\n"
	       "measured   %.2f s\n\n"
	       "throughput %.0f ops/s (GETs %llu, SETs %llu; hits %.2f%% of "
	       "GETs)\n"
	       "latency us p50 %.1f, p99 %.1f, p99.9 %.1f\n"
	       "errors     not stored %llu, bad reply %llu, timeouts %llu, "
	       "late %llu\n",
	       dst, ntohs(pk.o.to.port), src, pk.o.window, pk.o.get_w,
	       pk.o.set_w, (unsigned long long)pk.o.keys, pk.o.vlen, seconds,
	       ops, (unsigned long long)c->gets, (unsigned long long)c->sets,
	       c->gets ? 100.0 * (double)c->hits / (double)c->gets : 0.0,
	       pk_pct_us(50), pk_pct_us(99), pk_pct_us(99.9),
	       (unsigned long long)c->errors, (unsigned long long)c->bad,
	       (unsigned long long)c->timeouts, (unsigned long long)c->late);
}

/* Starts the EAL and the first port it has, one queue pair. */
static int pk_port(const char *argv0)
{
	static char buf[512];
	char *eal[PK_EAL_MAX];
	struct rte_eth_conf conf;
	int n = 0;

	snprintf(buf, sizeof(buf), "%s", pk.o.eal);
	eal[n++] = (char *)argv0;
	eal[n++] = "--no-huge";
	eal[n++] = "-m";
	eal[n++] = "256";
	eal[n++] = "--no-pci";
	eal[n++] = "--no-shconf";
	eal[n++] = "--no-telemetry";
	eal[n++] = "--log-level=lib.eal:error";
	for (char *save, *t = strtok_r(buf, " ", &save);
	     t && n < PK_EAL_MAX - 1; t = strtok_r(NULL, " ", &save))
		eal[n++] = t;
	eal[n] = NULL;
	if (rte_eal_init(n, eal) < 0) {
		fprintf(stderr,
			"memlane-bench pktload: cannot start the EAL: "
			"%s\n",
			rte_strerror(rte_errno));
		return -EINVAL;
	}
	if (rte_eth_dev_count_avail() == 0) {
		fprintf(stderr, "memlane-bench pktload: no port (--eal)\n");
		return -ENODEV;
	}
	pk.port = (uint16_t)rte_eth_find_next(0);
	pk.pool = rte_pktmbuf_pool_create("pk_pool", 8191, 256, 0,
					  RTE_MBUF_DEFAULT_BUF_SIZE,
					  SOCKET_ID_ANY);
	memset(&conf, 0, sizeof(conf));
	if (!pk.pool || rte_eth_dev_configure(pk.port, 1, 1, &conf) ||
	    rte_eth_rx_queue_setup(pk.port, 0, 1024, SOCKET_ID_ANY, NULL,
				   pk.pool) ||
	    rte_eth_tx_queue_setup(pk.port, 0, 1024, SOCKET_ID_ANY, NULL) ||
	    rte_eth_dev_start(pk.port)) {
		fprintf(stderr, "memlane-bench pktload: cannot start port %u\n",
			pk.port);
		return -EIO;
	}
	rte_eth_macaddr_get(pk.port, (struct rte_ether_addr *)pk.o.self.mac);
	return 0;
}

int bench_pktload_main(int argc, char **argv)
{
	uint64_t key = 0, t0, t1;
	int rc;

	rc = pk_parse(argc, argv, &pk.o);
	if (rc)
		return rc > 0 ? 0 : 2;
	pk.rng = bench_now_ns();
	pk.lat = malloc(sizeof(*pk.lat) * PK_LAT_MAX);
	if (!pk.lat || pk_port(argv[0]))
		return 1;
	signal(SIGINT, pk_on_signal);
	signal(SIGTERM, pk_on_signal);
	if (!pk.o.have_mac && pk_arp()) {
		fprintf(stderr, "memlane-bench pktload: no ARP reply from the "
				"server\n");
		rc = 1;
		goto out;
	}
	if (pk.o.preload)
		pk_run(600.0, PK_PRELOAD, &key);
	pk_run(pk.o.warmup, PK_LOAD, &key);
	pk.counting = true;
	t0 = rte_rdtsc();
	pk_run(pk.o.duration, PK_LOAD, &key);
	t1 = rte_rdtsc();
	pk.counting = false;
	pk_run(pk.o.timeout, PK_DRAIN, &key);
	pk_print((double)(t1 - t0) / (double)rte_get_tsc_hz());
	rc = 0;
out:
	rte_eth_dev_stop(pk.port);
	rte_eth_dev_close(pk.port);
	rte_eal_cleanup();
	free(pk.lat);
	return rc;
}

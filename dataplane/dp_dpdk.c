/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The DPDK backend: memcached UDP on a DPDK port, any PMD (a real NIC,
 * net_af_xdp, net_af_packet, net_tap).
 *
 * Each core that owns one of the port's RX/TX queue pairs polls it:
 *
 *   rx burst (up to BURST) -> classify each frame (Ethernet, ARP, IPv4,
 *   ICMP, UDP, every length and checksum checked) -> ARP requests for
 *   --ip and ICMP echo answered in place, in the same mbuf -> a memcached
 *   datagram becomes a datagram connection (dp_udp_take()) and runs as
 *   the socket backend's do: routed to the core that owns each key, over
 *   the hand-off rings when that is another core -> replies framed
 *   straight into mbufs, the first one into the request's own mbuf with
 *   the addresses swapped -> tx burst at the end of the pass.
 *
 * What the port offers (queues, RSS, checksum offloads) is read from it,
 * never assumed. A port with fewer queues than cores has its queues on
 * the first cores; the others own shards only, and get their requests
 * over the rings. Every other frame is dropped and counted by reason.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "dp_internal.h"
#include "dp_pkt.h"
#include "dp_xdp.h"

#define POOL_MBUFS 8191 /* per core: rx ring, replies in flight, tx */
#define POOL_CACHE 256
#define RX_DESC	   1024
#define TX_DESC	   1024
#define TX_PENDING 512 /* mbufs queued in a pass before a tx burst */
#define TX_TRIES   8   /* bursts before a full tx queue drops a reply */
#define ALLOW_MAX  64
#define REPLY_ROOM (DP_PKT_UDP_HDR + PROTO_UDP_MTU)

/* A core's counters, for stats dataplane; written by the core only. */
struct pkt_stats {
	uint64_t rx;	     /* frames taken from the queue */
	uint64_t tx;	     /* frames the port took */
	uint64_t requests;   /* memcached datagrams taken */
	uint64_t arp;	     /* ARP replies sent */
	uint64_t icmp;	     /* echo replies sent */
	uint64_t split;	     /* replies of more than one datagram */
	uint64_t polls;	     /* rx bursts */
	uint64_t idle;	     /* of those, empty */
	uint64_t tx_dropped; /* frames the tx queue would not take */
	uint64_t drop[DP_DROP_MAX];
};

struct dp_pkt_core {
	int queue; /* -1: this core owns no queue */
	struct rte_mempool *pool;
	uint16_t ip_id;
	unsigned ntx;
	struct rte_mbuf *tx[TX_PENDING];
	struct pkt_stats st;
} ML_CACHE_ALIGNED;

/* The port, as every core reads it; set up before the workers start. */
static struct {
	uint16_t port;
	unsigned nqueues;
	unsigned tx_offloads; /* DP_TX_* */
	bool rx_ip_csum, rx_l4_csum;
	bool rss;
	bool started;
	char ifname[IF_NAMESIZE];
	char driver[64];
	struct dp_pkt_self self;
	struct dp_prefix allow[ALLOW_MAX];
	struct dp_xdp *xdp;
} port;

/* The XDP program's object, held for the af_xdp PMD to load. */
static int xdp_obj_fd = -1;

static const struct dp_conn_ops pkt_ops;

/* ------------------------------------------------------------------------
 * Transmit
 * ---------------------------------------------------------------------- */

static void tx_flush(struct dp_pkt_core *p)
{
	unsigned sent = 0;

	for (int t = 0; t < TX_TRIES && sent < p->ntx; t++)
		sent += rte_eth_tx_burst(port.port, (uint16_t)p->queue,
					 p->tx + sent,
					 (uint16_t)(p->ntx - sent));
	p->st.tx += sent;
	if (sent < p->ntx) {
		p->st.tx_dropped += p->ntx - sent;
		rte_pktmbuf_free_bulk(p->tx + sent, p->ntx - sent);
	}
	p->ntx = 0;
}

static void tx_queue(struct dp_pkt_core *p, struct rte_mbuf *m)
{
	if (p->ntx == TX_PENDING)
		tx_flush(p);
	p->tx[p->ntx++] = m;
}

/* An mbuf for one reply datagram: the request's own the first time
 * (addresses are rewritten, payload overwritten), a fresh one after. */
static struct rte_mbuf *reply_mbuf(struct dp_pkt_core *p, struct dp_conn *k)
{
	struct rte_mbuf *m = k->peer.pkt.keep;

	if (m) {
		k->peer.pkt.keep = NULL;
		if (rte_mbuf_refcnt_read(m) == 1 && RTE_MBUF_DIRECT(m)) {
			rte_pktmbuf_reset(m);
			if (rte_pktmbuf_tailroom(m) >= REPLY_ROOM)
				return m;
		}
		rte_pktmbuf_free(m);
	}
	m = rte_pktmbuf_alloc(p->pool);
	if (!m)
		p->st.drop[DP_DROP_NO_MBUF]++;
	return m;
}

/* Sends what k->out holds as one memcached message: one datagram per
 * PROTO_UDP_MTU of it, an empty one as a bare header. */
static bool pkt_send(struct dp_core *c, struct dp_conn *k)
{
	struct dp_pkt_core *p = c->pkt;
	unsigned count = proto_udp_count(k->out.len);
	struct dp_peer to;

	memcpy(to.mac, k->peer.pkt.mac, sizeof(to.mac));
	to.ip = k->peer.pkt.ip;
	to.port = k->peer.pkt.port;
	if (count > 1)
		p->st.split++;
	for (unsigned seq = 0; seq < ML_MAX(count, 1u); seq++) {
		struct rte_mbuf *m = reply_mbuf(p, k);
		uint8_t *f;
		size_t n, len;

		if (!m)
			break;
		f = rte_pktmbuf_mtod(m, uint8_t *);
		if (count == 0) {
			struct proto_udp_hdr h = {.req_id = k->req_id};

			proto_udp_write(f + DP_PKT_UDP_HDR, &h);
			n = PROTO_UDP_HDR;
		} else {
			n = proto_udp_frame(f + DP_PKT_UDP_HDR, k->req_id,
					    k->out.buf, k->out.len, seq);
		}
		len = dp_pkt_udp_build(f, &port.self, &to, n, p->ip_id++,
				       port.tx_offloads);
		m->data_len = (uint16_t)len;
		m->pkt_len = (uint32_t)len;
		if (port.tx_offloads) {
			m->l2_len = 14;
			m->l3_len = 20;
			m->ol_flags |= RTE_MBUF_F_TX_IPV4;
			if (port.tx_offloads & DP_TX_IP_CSUM)
				m->ol_flags |= RTE_MBUF_F_TX_IP_CKSUM;
			if (port.tx_offloads & DP_TX_UDP_CSUM)
				m->ol_flags |= RTE_MBUF_F_TX_UDP_CKSUM;
		}
		c->cs.bytes_written += n;
		tx_queue(p, m);
	}
	k->out.len = 0;
	return true;
}

static void pkt_closed(struct dp_core *c, struct dp_conn *k)
{
	(void)c;
	rte_pktmbuf_free(k->peer.pkt.keep); /* takes NULL */
	k->peer.pkt.keep = NULL;
}

static const struct dp_conn_ops pkt_ops = {
	.send = pkt_send,
	.progress = dp_udp_run,
	.closed = pkt_closed,
};

/* ------------------------------------------------------------------------
 * Receive
 * ---------------------------------------------------------------------- */

/* What the port says it verified of a frame's checksums; a checksum it
 * found bad drops the frame (returns false). */
static bool rx_verified(const struct rte_mbuf *m, unsigned *verified)
{
	uint64_t ip = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
	uint64_t l4 = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;

	*verified = 0;
	if (ip == RTE_MBUF_F_RX_IP_CKSUM_BAD ||
	    l4 == RTE_MBUF_F_RX_L4_CKSUM_BAD)
		return false;
	if (port.rx_ip_csum && ip == RTE_MBUF_F_RX_IP_CKSUM_GOOD)
		*verified |= DP_CSUM_IP_GOOD;
	if (port.rx_l4_csum && l4 == RTE_MBUF_F_RX_L4_CKSUM_GOOD)
		*verified |= DP_CSUM_L4_GOOD;
	return true;
}

/* One frame: answered in place (ARP, ping), taken as a datagram (its
 * connection returned), or dropped and counted. */
static struct dp_conn *rx_one(struct dp_core *c, struct rte_mbuf *m)
{
	struct dp_pkt_core *p = c->pkt;
	struct dp_pkt_info in;
	struct dp_conn *k;
	unsigned verified;
	uint8_t *f;
	size_t len;

	if (!rte_pktmbuf_is_contiguous(m) && rte_pktmbuf_linearize(m)) {
		p->st.drop[DP_DROP_TRUNCATED]++;
		goto drop;
	}
	if (!rx_verified(m, &verified)) {
		p->st.drop[DP_DROP_BAD_CSUM]++;
		goto drop;
	}
	f = rte_pktmbuf_mtod(m, uint8_t *);
	switch (dp_pkt_classify(f, rte_pktmbuf_data_len(m), &port.self,
				verified, &in)) {
	case DP_PKT_ARP_REQUEST:
		len = dp_pkt_arp_reply(f, &port.self);
		m->data_len = (uint16_t)len;
		m->pkt_len = (uint32_t)len;
		m->ol_flags = 0;
		p->st.arp++;
		tx_queue(p, m);
		return NULL;
	case DP_PKT_ICMP_ECHO:
		len = dp_pkt_icmp_reply(f, rte_pktmbuf_data_len(m));
		m->data_len = (uint16_t)len;
		m->pkt_len = (uint32_t)len;
		m->ol_flags = 0;
		p->st.icmp++;
		tx_queue(p, m);
		return NULL;
	case DP_PKT_MEMCACHED:
		c->cs.bytes_read += in.payload_len;
		k = dp_udp_take(c, (const char *)f + in.payload_off,
				in.payload_len, &pkt_ops);
		if (!k) {
			p->st.drop[DP_DROP_NO_MBUF]++;
			goto drop;
		}
		p->st.requests++;
		memcpy(k->peer.pkt.mac, in.from.mac, sizeof(in.from.mac));
		k->peer.pkt.ip = in.from.ip;
		k->peer.pkt.port = in.from.port;
		k->peer.pkt.keep = m;
		return k;
	default:
		p->st.drop[in.drop]++;
		goto drop;
	}
drop:
	rte_pktmbuf_free(m);
	return NULL;
}

static unsigned pkt_poll(struct dp_core *c, int timeout_ms)
{
	struct dp_pkt_core *p = c->pkt;
	struct rte_mbuf *rx[BURST];
	struct dp_conn *k[BURST];
	unsigned n, nk = 0;

	(void)timeout_ms; /* a polled port never sleeps */
	if (p->queue < 0 || c->quiet)
		return 0;
	n = rte_eth_rx_burst(port.port, (uint16_t)p->queue, rx, BURST);
	p->st.polls++;
	if (n == 0) {
		p->st.idle++;
		return 0;
	}
	p->st.rx += n;
	for (unsigned i = 0; i < n; i++) {
		if (i + 1 < n)
			rte_prefetch0(rte_pktmbuf_mtod(rx[i + 1], void *));
		k[nk] = rx_one(c, rx[i]);
		nk += k[nk] != NULL;
	}
	if (nk)
		dp_udp_burst(c, k, nk);
	return n;
}

static void pkt_flush(struct dp_core *c)
{
	if (c->pkt->ntx)
		tx_flush(c->pkt);
}

static void pkt_quiet(struct dp_core *c)
{
	(void)c; /* pkt_poll takes nothing once the core is quiet */
}

/* ------------------------------------------------------------------------
 * Setup and teardown
 * ---------------------------------------------------------------------- */

/* The sources UDP is answered for: --udp-allow, or the subnets of the
 * interface's own IPv4 addresses, or, when it has none (a NIC taken
 * from the kernel, an interface left without an address so that only
 * memlaned answers for --ip), the /24 around --ip. */
static int allow_setup(char *err, size_t errlen)
{
	int n;

	if (dp_cfg->udp_allow[0]) {
		n = dp_prefix_parse(dp_cfg->udp_allow, port.allow, ALLOW_MAX);
		if (n < 0) {
			snprintf(err, errlen,
				 "--udp-allow: '%s' is not a list of IPv4 "
				 "CIDR prefixes (at most %d)",
				 dp_cfg->udp_allow, ALLOW_MAX);
			return -EINVAL;
		}
	} else {
		n = port.ifname[0] ? dp_xdp_ifnet_prefixes(
					     port.ifname, port.allow, ALLOW_MAX)
				   : 0;
		if (n <= 0) {
			port.allow[0].addr = port.self.ip & htonl(0xffffff00);
			port.allow[0].len = 24;
			n = 1;
		}
	}
	port.self.allow = port.allow;
	port.self.nallow = (unsigned)n;
	return 0;
}

/* Configures the port for as many queue pairs as it has for the cores,
 * with RSS and checksum offloads where it offers them. */
static int port_open(char *err, size_t errlen)
{
	struct rte_eth_conf conf;
	struct rte_eth_dev_info info;
	struct in_addr ip;
	int rc;

	memset(&port, 0, sizeof(port));
	if (rte_eth_dev_count_avail() == 0) {
		snprintf(err, errlen,
			 "--dataplane dpdk: the EAL found no port (give one "
			 "with --eal, e.g. --vdev=net_af_xdp0,iface=eth0)");
		return -ENODEV;
	}
	port.port = (uint16_t)rte_eth_find_next(0);
	rc = rte_eth_dev_info_get(port.port, &info);
	if (rc) {
		snprintf(err, errlen, "port %u: %s", port.port, strerror(-rc));
		return rc;
	}
	snprintf(port.driver, sizeof(port.driver), "%s",
		 info.driver_name ? info.driver_name : "?");
	if (info.if_index)
		if_indextoname(info.if_index, port.ifname);
	port.nqueues = ML_MIN(dp_ncores,
			      ML_MIN(info.max_rx_queues, info.max_tx_queues));
	if (port.nqueues == 0) {
		snprintf(err, errlen, "port %u (%s) has no queue", port.port,
			 port.driver);
		return -ENODEV;
	}
	memset(&conf, 0, sizeof(conf));
	if (port.nqueues > 1 && (info.flow_type_rss_offloads &
				 (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP))) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf =
			info.flow_type_rss_offloads &
			(RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP);
		port.rss = true;
	}
	if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM) {
		conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
		port.rx_ip_csum = true;
	}
	if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_UDP_CKSUM) {
		conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
		port.rx_l4_csum = true;
	}
	if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) {
		conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
		port.tx_offloads |= DP_TX_IP_CSUM;
	}
	if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_UDP_CKSUM) {
		conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
		port.tx_offloads |= DP_TX_UDP_CSUM;
	}
	rc = rte_eth_dev_configure(port.port, (uint16_t)port.nqueues,
				   (uint16_t)port.nqueues, &conf);
	if (rc) {
		snprintf(err, errlen,
			 "port %u (%s): cannot configure %u "
			 "queues: %s",
			 port.port, port.driver, port.nqueues, strerror(-rc));
		return rc;
	}
	inet_pton(AF_INET, dp_cfg->ip, &ip);
	port.self.ip = ip.s_addr;
	port.self.udp_port = htons(dp_cfg->udp_port);
	return allow_setup(err, errlen);
}

static int pkt_setup(struct dp_core *c, char *err, size_t errlen)
{
	struct dp_pkt_core *p;
	char name[RTE_MEMPOOL_NAMESIZE];
	uint16_t nrx = RX_DESC, ntx = TX_DESC;
	int socket, rc;

	if (c->id == 0 && (rc = port_open(err, errlen)))
		return rc;
	p = aligned_alloc(ML_CACHE_LINE, sizeof(*p));
	if (!p)
		return -ENOMEM;
	memset(p, 0, sizeof(*p));
	p->queue = c->id < port.nqueues ? (int)c->id : -1;
	c->pkt = p;
	if (p->queue < 0)
		return 0;
	socket = rte_eth_dev_socket_id(port.port);
	snprintf(name, sizeof(name), "dp_pool%u", c->id);
	p->pool = rte_pktmbuf_pool_create(name, POOL_MBUFS, POOL_CACHE, 0,
					  RTE_MBUF_DEFAULT_BUF_SIZE,
					  socket < 0 ? SOCKET_ID_ANY : socket);
	if (!p->pool) {
		snprintf(err, errlen,
			 "core %u: no memory for its mbufs: %s "
			 "(give the EAL more, -m)",
			 c->id, rte_strerror(rte_errno));
		return -ENOMEM;
	}
	rte_eth_dev_adjust_nb_rx_tx_desc(port.port, &nrx, &ntx);
	rc = rte_eth_rx_queue_setup(port.port, (uint16_t)p->queue, nrx,
				    (unsigned)socket, NULL, p->pool);
	if (!rc)
		rc = rte_eth_tx_queue_setup(port.port, (uint16_t)p->queue, ntx,
					    (unsigned)socket, NULL);
	if (rc) {
		snprintf(err, errlen, "port %u (%s): queue %d: %s", port.port,
			 port.driver, p->queue, strerror(-rc));
		return rc;
	}
	if (c->id + 1 < port.nqueues)
		return 0;
	/* the last queue is set up: start the port */
	rc = rte_eth_dev_start(port.port);
	if (rc) {
		snprintf(err, errlen, "port %u (%s): cannot start: %s",
			 port.port, port.driver, strerror(-rc));
		return rc;
	}
	port.started = true;
	rte_eth_macaddr_get(port.port, (struct rte_ether_addr *)port.self.mac);
	if (strcmp(port.driver, "net_af_xdp") == 0) {
		struct dp_xdp_params xp = {
			.ip = port.self.ip,
			.udp_port = port.self.udp_port,
			.allow = port.allow,
			.nallow = port.self.nallow,
		};

		port.xdp = dp_xdp_open(port.ifname, &xp);
		if (!port.xdp) {
			snprintf(err, errlen,
				 "%s: cannot configure memlane's "
				 "XDP program: %s",
				 port.ifname, strerror(errno));
			return -errno;
		}
	}
	if (dp_cfg->verbose)
		fprintf(stderr,
			"memlaned: port %u (%s%s%s): %u queue%s%s, %s:%u\n",
			port.port, port.driver, port.ifname[0] ? " on " : "",
			port.ifname, port.nqueues, port.nqueues > 1 ? "s" : "",
			port.rss ? ", RSS" : "", dp_cfg->ip, dp_cfg->udp_port);
	return 0;
}

static void pkt_teardown(struct dp_core *c)
{
	struct dp_pkt_core *p = c->pkt;

	if (!p)
		return;
	if (p->ntx)
		tx_flush(p);
}

/* After every core let go of its connections (and the mbufs they
 * kept): the port stops and closes (the af_xdp PMD detaches the XDP
 * program then; dp_xdp_close() makes sure), and the pools go. */
static void pkt_close(void)
{
	if (port.nqueues) {
		if (port.started)
			rte_eth_dev_stop(port.port);
		rte_eth_dev_close(port.port);
	}
	dp_xdp_close(port.xdp);
	port.xdp = NULL;
	if (xdp_obj_fd >= 0)
		close(xdp_obj_fd);
	xdp_obj_fd = -1;
	for (unsigned i = 0; i < dp_ncores; i++) {
		struct dp_pkt_core *p = dp_cores[i].pkt;

		if (!p)
			continue;
		rte_mempool_free(p->pool);
		free(p);
		dp_cores[i].pkt = NULL;
	}
	port.nqueues = 0;
}

/* ------------------------------------------------------------------------
 * Before the EAL starts
 * ---------------------------------------------------------------------- */

/* The value of key=... in a vdev's devargs, into buf. */
static bool devarg(const char *vdev, const char *key, char *buf, size_t len)
{
	size_t kl = strlen(key);

	for (const char *p = strchr(vdev, ','); p; p = strchr(p + 1, ',')) {
		if (strncmp(p + 1, key, kl) == 0 && p[1 + kl] == '=') {
			const char *v = p + 2 + kl;
			size_t n = strcspn(v, ",");

			if (n >= len)
				return false;
			memcpy(buf, v, n);
			buf[n] = '\0';
			return true;
		}
	}
	return false;
}

int dp_dpdk_prepare(struct dp_config *cfg, char *err, size_t errlen)
{
	char in[sizeof(cfg->eal_extra)], out[sizeof(cfg->eal_extra)];
	char *save, *tok;
	size_t off = 0;
	bool vdev_next = false;
	int rc;

	snprintf(in, sizeof(in), "%s", cfg->eal_extra);
	out[0] = '\0';
	for (tok = strtok_r(in, " ", &save); tok;
	     tok = strtok_r(NULL, " ", &save)) {
		const char *vdev = NULL;
		char ifname[IF_NAMESIZE], extra[64] = "";

		if (vdev_next)
			vdev = tok;
		else if (strncmp(tok, "--vdev=", 7) == 0)
			vdev = tok + 7;
		vdev_next = strcmp(tok, "--vdev") == 0;
		if (vdev && strncmp(vdev, "net_af_xdp", 10) == 0 &&
		    !strstr(vdev, "xdp_prog=")) {
			/* our XDP program, in place of libxdp's default one;
			 * a stale copy left by a crash is taken off first */
			if (!devarg(vdev, "iface", ifname, sizeof(ifname))) {
				snprintf(err, errlen,
					 "--eal: '%s' names no iface=", vdev);
				return -EINVAL;
			}
			if ((rc = dp_xdp_prepare(ifname, err, errlen)))
				return rc;
			if (xdp_obj_fd < 0)
				xdp_obj_fd = dp_xdp_object_fd();
			if (xdp_obj_fd < 0) {
				snprintf(err, errlen,
					 "cannot hold the XDP program: %s",
					 strerror(-xdp_obj_fd));
				return xdp_obj_fd;
			}
			/* preferred busy polling (the PMD's default) has
			 * the kernel wait for our polls to run the queue's
			 * NAPI, which pays only with the NIC's IRQ deferral
			 * tuned for it; without it the kernel runs it as
			 * usual: off unless asked for */
			snprintf(extra, sizeof(extra),
				 ",xdp_prog=/proc/self/fd/%d%s", xdp_obj_fd,
				 strstr(vdev, "busy_budget=")
					 ? ""
					 : ",busy_budget=0");
		}
		rc = snprintf(out + off, sizeof(out) - off, "%s%s%s",
			      off ? " " : "", tok, extra);
		if (rc < 0 || (size_t)rc >= sizeof(out) - off) {
			snprintf(err, errlen, "--eal: too long");
			return -E2BIG;
		}
		off += (size_t)rc;
	}
	memcpy(cfg->eal_extra, out, sizeof(out));
	return 0;
}

/* ------------------------------------------------------------------------
 * stats dataplane
 * ---------------------------------------------------------------------- */

static int pkt_stats(struct proto_out *out)
{
	struct pkt_stats sum;
	int rc = 0;

	memset(&sum, 0, sizeof(sum));
	for (unsigned i = 0; i < dp_ncores; i++) {
		const struct pkt_stats *s = &dp_cores[i].pkt->st;
		const uint64_t *a = (const uint64_t *)s;
		uint64_t *b = (uint64_t *)&sum;

		for (size_t j = 0; j < sizeof(sum) / sizeof(uint64_t); j++)
			b[j] += a[j];
		if (dp_cores[i].pkt->queue < 0)
			continue;
		rc |= dp_stat_core(out, i, "polls", s->polls);
		rc |= dp_stat_core(out, i, "idle_polls", s->idle);
		rc |= dp_stat_core(out, i, "rx_packets", s->rx);
		rc |= dp_stat_core(out, i, "tx_packets", s->tx);
		rc |= dp_stat_core(out, i, "requests", s->requests);
	}
	rc |= dp_stat_str(out, "dp_port",
			  port.ifname[0] ? port.ifname : port.driver);
	rc |= dp_stat_str(out, "dp_driver", port.driver);
	rc |= dp_stat(out, "dp_queues", port.nqueues);
	rc |= dp_stat(out, "dp_rss", port.rss);
	rc |= dp_stat(out, "dp_tx_checksum_offload", port.tx_offloads);
	rc |= dp_stat(out, "dp_polls", sum.polls);
	rc |= dp_stat(out, "dp_idle_polls", sum.idle);
	rc |= dp_stat(out, "dp_rx_packets", sum.rx);
	rc |= dp_stat(out, "dp_tx_packets", sum.tx);
	rc |= dp_stat(out, "dp_tx_dropped", sum.tx_dropped);
	rc |= dp_stat(out, "dp_requests", sum.requests);
	rc |= dp_stat(out, "dp_arp_replies", sum.arp);
	rc |= dp_stat(out, "dp_icmp_replies", sum.icmp);
	rc |= dp_stat(out, "dp_replies_split", sum.split);
	for (unsigned d = 0; d < DP_DROP_MAX; d++) {
		char name[48];

		snprintf(name, sizeof(name), "dp_drop_%s",
			 dp_drop_name((enum dp_drop)d));
		rc |= dp_stat(out, name, sum.drop[d]);
	}
	if (port.xdp) {
		uint64_t x[ML_XDP_STAT_MAX];

		if (dp_xdp_counters(port.xdp, x) == 0)
			for (unsigned i = 0; i < ML_XDP_STAT_MAX; i++) {
				char name[48];

				snprintf(name, sizeof(name), "xdp_%s",
					 dp_xdp_stat_name(i));
				rc |= dp_stat(out, name, x[i]);
			}
	}
	return rc ? -ENOMEM : 0;
}

const struct dp_backend dp_dpdk_backend = {
	.name = "dpdk",
	.setup = pkt_setup,
	.quiet = pkt_quiet,
	.poll = pkt_poll,
	.flush = pkt_flush,
	.teardown = pkt_teardown,
	.close = pkt_close,
	.stats = pkt_stats,
	.busy_poll = true,
};

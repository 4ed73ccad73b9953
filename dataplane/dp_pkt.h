/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The bypass path's packet codec: Ethernet, ARP, IPv4, ICMP echo and UDP
 * carrying memcached's frame. No DPDK, no allocation, no system call: it
 * reads and writes frames as bytes, so that the DPDK backend, its tests
 * and the packet-level load generator share one reading of a frame.
 *
 * A frame the codec accepts (OFFSET/SIZE):
 *
 *   0   14  Ethernet: dst, src, type 0x0800 (IPv4) or 0x0806 (ARP)
 *   14  20  IPv4 without options (IHL 5), not a fragment
 *   34   8  UDP, to the memcached port
 *   42   8  memcached's frame header: request id, sequence number,
 *           datagram count (must be 1), reserved
 *   50   -  the request text
 *
 * Addresses and ports are in network byte order throughout.
 */
#ifndef MEMLANE_DP_PKT_H
#define MEMLANE_DP_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DP_PKT_ETH_HDR 14
#define DP_PKT_UDP_HDR 42 /* Ethernet + IPv4 + UDP: where a payload starts */
#define DP_PKT_ARP_LEN 42 /* an ARP frame, without the NIC's padding */

/* Why a frame was dropped; the dataplane's counters are indexed by it. */
enum dp_drop {
	DP_DROP_TRUNCATED,   /* shorter than a header it announces */
	DP_DROP_BAD_CSUM,    /* IPv4 header, ICMP or UDP checksum wrong */
	DP_DROP_IP_OPTIONS,  /* IPv4 with options (IHL > 5) */
	DP_DROP_FRAGMENT,    /* an IPv4 fragment (MF, or an offset) */
	DP_DROP_BAD_LENGTH,  /* IPv4 or UDP length beyond the frame, or
				shorter than its own header */
	DP_DROP_BAD_FRAME,   /* memcached's frame header short, or a
				request over several datagrams */
	DP_DROP_NOT_ALLOWED, /* memcached UDP from outside the allowlist */
	DP_DROP_NOT_FOR_US,  /* another address, protocol, port or type */
	DP_DROP_NO_MBUF,     /* the backend's: no buffer for it or its reply */
	DP_DROP_MAX
};

/* "truncated", "bad_checksum", ...: the counter's name in stats. */
const char *dp_drop_name(enum dp_drop d);

enum dp_pkt_kind {
	DP_PKT_DROP,
	DP_PKT_MEMCACHED,   /* a memcached UDP request for us */
	DP_PKT_ARP_REQUEST, /* who has our address */
	DP_PKT_ICMP_ECHO,   /* a ping of our address */
};

/* An IPv4 prefix: addr with its host bits zero. */
struct dp_prefix {
	uint32_t addr;
	uint8_t len;
};

/* Who we are on the wire. */
struct dp_pkt_self {
	uint8_t mac[6];
	uint32_t ip;
	uint16_t udp_port;
	const struct dp_prefix *allow; /* sources UDP is answered for */
	unsigned nallow;	       /* 0: every source */
};

/* The other end of a datagram: where a reply goes. */
struct dp_peer {
	uint8_t mac[6];
	uint32_t ip;
	uint16_t port;
};

struct dp_pkt_info {
	enum dp_pkt_kind kind;
	enum dp_drop drop;    /* DP_PKT_DROP: why */
	uint16_t payload_off; /* DP_PKT_MEMCACHED: the UDP payload, */
	uint16_t payload_len; /* frame header first, by the UDP length */
	struct dp_peer from;
};

/* What the port already verified of a frame (its RX offloads). */
#define DP_CSUM_IP_GOOD 1u
#define DP_CSUM_L4_GOOD 2u

/*
 * Classifies a frame of len bytes, every length and every checksum the
 * port did not verify checked. Returns out->kind; for DP_PKT_DROP,
 * out->drop says why. Frames may carry padding past the IPv4 length.
 */
enum dp_pkt_kind dp_pkt_classify(const uint8_t *frame, size_t len,
				 const struct dp_pkt_self *self,
				 unsigned verified, struct dp_pkt_info *out);

/* Turns an ARP request that dp_pkt_classify() took into our reply, in
 * place. Returns the reply's length, DP_PKT_ARP_LEN. */
size_t dp_pkt_arp_reply(uint8_t *frame, const struct dp_pkt_self *self);

/* Writes a broadcast ARP request from self for ip into frame (at least
 * DP_PKT_ARP_LEN bytes). Returns its length. */
size_t dp_pkt_arp_request(uint8_t *frame, const struct dp_pkt_self *self,
			  uint32_t ip);

/* Whether frame is an ARP reply telling ip's MAC (copied to mac) to
 * self. */
bool dp_pkt_arp_is_reply(const uint8_t *frame, size_t len,
			 const struct dp_pkt_self *self, uint32_t ip,
			 uint8_t mac[6]);

/* Turns an ICMP echo request that dp_pkt_classify() took into its reply,
 * in place: addresses swapped, type 0, TTL 64, checksums updated.
 * Returns the reply's length. */
size_t dp_pkt_icmp_reply(uint8_t *frame, size_t len);

/* What the port computes on transmit (its TX offloads). */
#define DP_TX_IP_CSUM 1u /* the IPv4 header checksum */
#define DP_TX_UDP_CSUM                                                         \
	2u /* the UDP checksum (the pseudo-header sum is                       \
	      written for it, as DPDK's offload wants) */

/*
 * Writes the Ethernet, IPv4 (DF, TTL 64, id ip_id) and UDP headers in
 * front of the payload_len bytes already at frame + DP_PKT_UDP_HDR, from
 * self to `to`, with the checksums the port does not compute. Returns
 * the frame's length.
 */
size_t dp_pkt_udp_build(uint8_t *frame, const struct dp_pkt_self *self,
			const struct dp_peer *to, size_t payload_len,
			uint16_t ip_id, unsigned offloads);

/*
 * Parses "198.18.0.0/15,198.19.1.2" (a bare address is a /32) into
 * out[0..max). Returns how many, -EINVAL for a malformed list or a
 * prefix with host bits set, -ENOSPC past max.
 */
int dp_prefix_parse(const char *list, struct dp_prefix *out, unsigned max);
bool dp_prefix_match(const struct dp_prefix *p, unsigned n, uint32_t ip);

/* The Internet checksum (RFC 1071) of len bytes, folded, not inverted,
 * added to sum. */
uint32_t dp_csum_add(uint32_t sum, const void *p, size_t len);
uint16_t dp_csum_fold(uint32_t sum);

#endif /* MEMLANE_DP_PKT_H */

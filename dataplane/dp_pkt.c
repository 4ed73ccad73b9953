/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The bypass path's packet codec (see dp_pkt.h). Every field is read
 * byte by byte after its bounds are checked, so a frame may sit at any
 * alignment and no length it claims is trusted.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "dp_pkt.h"

#define ETH_P_IPV4 0x0800
#define ETH_P_ARP  0x0806
#define IP_HDR	   20
#define UDP_HDR	   8
#define ICMP_HDR   8
#define ARP_BODY   28
#define IP_MF	   0x2000
#define IP_DF	   0x4000
#define IP_OFFSET  0x1fff

static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static const char *const drop_names[DP_DROP_MAX] = {
	[DP_DROP_TRUNCATED] = "truncated",
	[DP_DROP_BAD_CSUM] = "bad_checksum",
	[DP_DROP_IP_OPTIONS] = "ip_options",
	[DP_DROP_FRAGMENT] = "fragment",
	[DP_DROP_BAD_LENGTH] = "bad_length",
	[DP_DROP_BAD_FRAME] = "bad_frame",
	[DP_DROP_NOT_ALLOWED] = "not_allowed",
	[DP_DROP_NOT_FOR_US] = "not_for_us",
	[DP_DROP_NO_MBUF] = "no_mbuf",
};

const char *dp_drop_name(enum dp_drop d)
{
	return (unsigned)d < DP_DROP_MAX ? drop_names[d] : "unknown";
}

static inline uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* A 32-bit field kept in network order, as the addresses are. */
static inline uint32_t raw32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

/* One's complement sums do not care in which order the bytes of a word
 * are added, only that both bytes of a word swap together (RFC 1071):
 * the buffer is summed in native words, 8 bytes at a time, and the
 * folded result turned to network order once. */
uint32_t dp_csum_add(uint32_t sum, const void *p, size_t len)
{
	const uint8_t *b = p;
	uint64_t s = 0, w;
	uint16_t v;

	for (; len >= 8; b += 8, len -= 8) {
		memcpy(&w, b, 8);
		s += w;
		s += s < w; /* the end-around carry */
	}
	if (len >= 4) {
		uint32_t w4;

		memcpy(&w4, b, 4);
		s += w4;
		s += s < w4;
		b += 4;
		len -= 4;
	}
	if (len >= 2) {
		uint16_t w2;

		memcpy(&w2, b, 2);
		s += w2;
		s += s < w2;
		b += 2;
		len -= 2;
	}
	if (len) {
		uint8_t last[2] = {b[0], 0};
		uint16_t w2;

		memcpy(&w2, last, 2);
		s += w2;
		s += s < w2;
	}
	s = (s & 0xffffffffu) + (s >> 32);
	s = (s & 0xffffffffu) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	v = (uint16_t)s;
	v = ntohs(v);
	s = (uint64_t)sum + v;
	return (uint32_t)((s & 0xffffffffu) + (s >> 32));
}

uint16_t dp_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* The pseudo-header sum of a UDP datagram of len bytes. */
static uint32_t pseudo_sum(const uint8_t *ip, size_t len)
{
	uint32_t s = dp_csum_add(0, ip + 12, 8); /* source, destination */

	return s + 17 + (uint32_t)len;
}

bool dp_prefix_match(const struct dp_prefix *p, unsigned n, uint32_t ip)
{
	uint32_t h = ntohl(ip);

	for (unsigned i = 0; i < n; i++) {
		uint32_t mask = p[i].len ? ~0u << (32 - p[i].len) : 0;

		if ((h & mask) == ntohl(p[i].addr))
			return true;
	}
	return false;
}

int dp_prefix_parse(const char *list, struct dp_prefix *out, unsigned max)
{
	char buf[1024], *save, *tok;
	unsigned n = 0;

	if (!list || strlen(list) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, list);
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *slash = strchr(tok, '/'), *end;
		struct in_addr a;
		unsigned long len = 32;
		uint32_t mask;

		if (slash) {
			*slash = '\0';
			if (!slash[1] || slash[1] == '-' || slash[1] == '+')
				return -EINVAL;
			len = strtoul(slash + 1, &end, 10);
			if (*end || len > 32)
				return -EINVAL;
		}
		if (inet_pton(AF_INET, tok, &a) != 1)
			return -EINVAL;
		mask = len ? ~0u << (32 - len) : 0;
		if (ntohl(a.s_addr) & ~mask)
			return -EINVAL; /* host bits past the prefix */
		if (n == max)
			return -ENOSPC;
		out[n].addr = a.s_addr;
		out[n].len = (uint8_t)len;
		n++;
	}
	return n ? (int)n : -EINVAL;
}

static enum dp_pkt_kind drop(struct dp_pkt_info *out, enum dp_drop why)
{
	out->kind = DP_PKT_DROP;
	out->drop = why;
	return DP_PKT_DROP;
}

static enum dp_pkt_kind classify_arp(const uint8_t *a, size_t len,
				     const struct dp_pkt_self *self,
				     struct dp_pkt_info *out)
{
	if (len < ARP_BODY)
		return drop(out, DP_DROP_TRUNCATED);
	/* Ethernet, IPv4, 6 and 4 byte addresses, a request for us */
	if (be16(a) != 1 || be16(a + 2) != ETH_P_IPV4 || a[4] != 6 ||
	    a[5] != 4 || be16(a + 6) != 1 || raw32(a + 24) != self->ip)
		return drop(out, DP_DROP_NOT_FOR_US);
	memcpy(out->from.mac, a + 8, 6);
	out->from.ip = raw32(a + 14);
	out->kind = DP_PKT_ARP_REQUEST;
	return out->kind;
}

static enum dp_pkt_kind classify_udp(const uint8_t *ip, const uint8_t *u,
				     size_t len, const struct dp_pkt_self *self,
				     unsigned verified, struct dp_pkt_info *out)
{
	struct proto_udp_hdr h;
	size_t ulen;

	if (len < UDP_HDR)
		return drop(out, DP_DROP_TRUNCATED);
	ulen = be16(u + 4);
	if (ulen < UDP_HDR || ulen > len)
		return drop(out, DP_DROP_BAD_LENGTH);
	if (be16(u + 2) != ntohs(self->udp_port))
		return drop(out, DP_DROP_NOT_FOR_US);
	/* a checksum of 0: the sender computed none, which IPv4 allows */
	if (!(verified & DP_CSUM_L4_GOOD) && be16(u + 6) &&
	    dp_csum_fold(dp_csum_add(pseudo_sum(ip, ulen), u, ulen)) != 0xffff)
		return drop(out, DP_DROP_BAD_CSUM);
	out->from.ip = raw32(ip + 12);
	memcpy(&out->from.port, u, 2);
	if (self->nallow &&
	    !dp_prefix_match(self->allow, self->nallow, out->from.ip))
		return drop(out, DP_DROP_NOT_ALLOWED);
	if (proto_udp_parse(u + UDP_HDR, ulen - UDP_HDR, &h))
		return drop(out, DP_DROP_BAD_FRAME);
	out->payload_off = (uint16_t)(u + UDP_HDR - (ip - DP_PKT_ETH_HDR));
	out->payload_len = (uint16_t)(ulen - UDP_HDR);
	out->kind = DP_PKT_MEMCACHED;
	return out->kind;
}

enum dp_pkt_kind dp_pkt_classify(const uint8_t *f, size_t len,
				 const struct dp_pkt_self *self,
				 unsigned verified, struct dp_pkt_info *out)
{
	const uint8_t *ip = f + DP_PKT_ETH_HDR;
	size_t tot, ihl;
	uint16_t frag;

	memset(out, 0, sizeof(*out));
	if (len < DP_PKT_ETH_HDR)
		return drop(out, DP_DROP_TRUNCATED);
	memcpy(out->from.mac, f + 6, 6);
	if (be16(f + 12) == ETH_P_ARP) {
		if (memcmp(f, self->mac, 6) && memcmp(f, bcast, 6))
			return drop(out, DP_DROP_NOT_FOR_US);
		return classify_arp(ip, len - DP_PKT_ETH_HDR, self, out);
	}
	if (be16(f + 12) != ETH_P_IPV4 || memcmp(f, self->mac, 6))
		return drop(out, DP_DROP_NOT_FOR_US);
	len -= DP_PKT_ETH_HDR;
	if (len < IP_HDR)
		return drop(out, DP_DROP_TRUNCATED);
	if (ip[0] >> 4 != 4)
		return drop(out, DP_DROP_NOT_FOR_US);
	ihl = (size_t)(ip[0] & 0xf) * 4;
	if (ihl < IP_HDR)
		return drop(out, DP_DROP_BAD_LENGTH);
	if (ihl > IP_HDR)
		return drop(out, DP_DROP_IP_OPTIONS);
	tot = be16(ip + 2);
	if (tot < IP_HDR || tot > len)
		return drop(out, DP_DROP_BAD_LENGTH);
	if (!(verified & DP_CSUM_IP_GOOD) &&
	    dp_csum_fold(dp_csum_add(0, ip, IP_HDR)) != 0xffff)
		return drop(out, DP_DROP_BAD_CSUM);
	frag = be16(ip + 6);
	if (frag & (IP_MF | IP_OFFSET))
		return drop(out, DP_DROP_FRAGMENT);
	if (raw32(ip + 16) != self->ip)
		return drop(out, DP_DROP_NOT_FOR_US);
	switch (ip[9]) {
	case 17:
		return classify_udp(ip, ip + IP_HDR, tot - IP_HDR, self,
				    verified, out);
	case 1:
		if (tot - IP_HDR < ICMP_HDR)
			return drop(out, DP_DROP_TRUNCATED);
		if (ip[IP_HDR] != 8 || ip[IP_HDR + 1] != 0)
			return drop(out, DP_DROP_NOT_FOR_US);
		if (!(verified & DP_CSUM_L4_GOOD) &&
		    dp_csum_fold(dp_csum_add(0, ip + IP_HDR, tot - IP_HDR)) !=
			    0xffff)
			return drop(out, DP_DROP_BAD_CSUM);
		out->from.ip = raw32(ip + 12);
		out->kind = DP_PKT_ICMP_ECHO;
		return out->kind;
	default:
		return drop(out, DP_DROP_NOT_FOR_US);
	}
}

static void eth_write(uint8_t *f, const uint8_t *dst, const uint8_t *src,
		      uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	put_be16(f + 12, type);
}

size_t dp_pkt_arp_reply(uint8_t *f, const struct dp_pkt_self *self)
{
	uint8_t *a = f + DP_PKT_ETH_HDR, peer_mac[6], peer_ip[4];

	memcpy(peer_mac, a + 8, 6);
	memcpy(peer_ip, a + 14, 4);
	eth_write(f, peer_mac, self->mac, ETH_P_ARP);
	put_be16(a + 6, 2); /* reply */
	memcpy(a + 8, self->mac, 6);
	memcpy(a + 14, &self->ip, 4);
	memcpy(a + 18, peer_mac, 6);
	memcpy(a + 24, peer_ip, 4);
	return DP_PKT_ARP_LEN;
}

size_t dp_pkt_arp_request(uint8_t *f, const struct dp_pkt_self *self,
			  uint32_t ip)
{
	uint8_t *a = f + DP_PKT_ETH_HDR;

	eth_write(f, bcast, self->mac, ETH_P_ARP);
	put_be16(a, 1);
	put_be16(a + 2, ETH_P_IPV4);
	a[4] = 6;
	a[5] = 4;
	put_be16(a + 6, 1);
	memcpy(a + 8, self->mac, 6);
	memcpy(a + 14, &self->ip, 4);
	memset(a + 18, 0, 6);
	memcpy(a + 24, &ip, 4);
	return DP_PKT_ARP_LEN;
}

bool dp_pkt_arp_is_reply(const uint8_t *f, size_t len,
			 const struct dp_pkt_self *self, uint32_t ip,
			 uint8_t mac[6])
{
	const uint8_t *a = f + DP_PKT_ETH_HDR;

	if (len < DP_PKT_ARP_LEN || be16(f + 12) != ETH_P_ARP || be16(a) != 1 ||
	    be16(a + 2) != ETH_P_IPV4 || a[4] != 6 || a[5] != 4 ||
	    be16(a + 6) != 2 || raw32(a + 14) != ip ||
	    raw32(a + 24) != self->ip)
		return false;
	memcpy(mac, a + 8, 6);
	return true;
}

size_t dp_pkt_icmp_reply(uint8_t *f, size_t len)
{
	uint8_t *ip = f + DP_PKT_ETH_HDR, *icmp = ip + IP_HDR, mac[6], a[4];
	size_t tot = be16(ip + 2);
	uint32_t s;

	(void)len; /* dp_pkt_classify() checked tot against it */
	memcpy(mac, f, 6);
	memcpy(f, f + 6, 6);
	memcpy(f + 6, mac, 6);
	memcpy(a, ip + 12, 4);
	memcpy(ip + 12, ip + 16, 4);
	memcpy(ip + 16, a, 4);
	ip[8] = 64;
	put_be16(ip + 10, 0);
	put_be16(ip + 10, (uint16_t)~dp_csum_fold(dp_csum_add(0, ip, IP_HDR)));
	icmp[0] = 0;
	put_be16(icmp + 2, 0);
	s = dp_csum_add(0, icmp, tot - IP_HDR);
	put_be16(icmp + 2, (uint16_t)~dp_csum_fold(s));
	return DP_PKT_ETH_HDR + tot;
}

size_t dp_pkt_udp_build(uint8_t *f, const struct dp_pkt_self *self,
			const struct dp_peer *to, size_t payload_len,
			uint16_t ip_id, unsigned offloads)
{
	uint8_t *ip = f + DP_PKT_ETH_HDR, *u = ip + IP_HDR;
	size_t ulen = UDP_HDR + payload_len;
	uint16_t sum;

	eth_write(f, to->mac, self->mac, ETH_P_IPV4);
	ip[0] = 0x45;
	ip[1] = 0;
	put_be16(ip + 2, (uint16_t)(IP_HDR + ulen));
	put_be16(ip + 4, ip_id);
	put_be16(ip + 6, IP_DF);
	ip[8] = 64;
	ip[9] = 17;
	put_be16(ip + 10, 0);
	memcpy(ip + 12, &self->ip, 4);
	memcpy(ip + 16, &to->ip, 4);
	if (!(offloads & DP_TX_IP_CSUM))
		put_be16(ip + 10,
			 (uint16_t)~dp_csum_fold(dp_csum_add(0, ip, IP_HDR)));
	memcpy(u, &self->udp_port, 2);
	memcpy(u + 2, &to->port, 2);
	put_be16(u + 4, (uint16_t)ulen);
	put_be16(u + 6, 0);
	if (offloads & DP_TX_UDP_CSUM) {
		put_be16(u + 6, dp_csum_fold(pseudo_sum(ip, ulen)));
	} else {
		sum = (uint16_t)~dp_csum_fold(
			dp_csum_add(pseudo_sum(ip, ulen), u, ulen));
		put_be16(u + 6, sum ? sum : 0xffff); /* 0 means none */
	}
	return DP_PKT_UDP_HDR + payload_len;
}

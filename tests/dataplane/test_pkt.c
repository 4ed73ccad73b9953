/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The bypass path's packet codec (dataplane/dp_pkt.c), table-driven: a
 * good memcached request frame, spoiled one way per case, and the verdict
 * each must get; the replies the codec writes, checked with a checksum of
 * the test's own; the allowlist parser; and every truncation of good
 * frames, which must never be read past (ASan) nor taken.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dp_pkt.h"

#define FRAME_MAX 512

static const uint8_t our_mac[6] = {0x02, 0, 0, 0, 0, 1};
static const uint8_t peer_mac[6] = {0x02, 0, 0, 0, 0, 2};
static struct dp_prefix allow[2];
static struct dp_pkt_self self;

struct frame {
	uint8_t b[FRAME_MAX];
	size_t len;
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* RFC 1071, byte pair by byte pair: the test's own, not the codec's. */
static uint16_t sum16(const uint8_t *p, size_t n, uint32_t s)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += get16(p + i);
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

static uint32_t ip_of(const char *a)
{
	struct in_addr x;

	assert_int_equal(inet_pton(AF_INET, a, &x), 1);
	return x.s_addr;
}

static void ip_fix(uint8_t *ip)
{
	size_t hl = (size_t)(ip[0] & 0xf) * 4;

	put16(ip + 10, 0);
	put16(ip + 10, (uint16_t)~sum16(ip, hl, 0));
}

static uint16_t udp_sum(const uint8_t *ip, const uint8_t *u, size_t ulen)
{
	uint32_t s = sum16(ip + 12, 8, 0) + 17 + (uint32_t)ulen;

	return sum16(u, ulen, s);
}

static void udp_fix(uint8_t *ip, uint8_t *u, size_t ulen)
{
	uint16_t c;

	put16(u + 6, 0);
	c = (uint16_t)~udp_sum(ip, u, ulen);
	put16(u + 6, c ? c : 0xffff);
}

/* "get a\r\n" from 198.18.0.2:40000 to us, 198.18.0.1:11211. */
static void good(struct frame *f)
{
	static const char req[] = "get a\r\n";
	uint8_t *ip = f->b + 14, *u = ip + 20, *mc = u + 8;
	size_t plen = 8 + sizeof(req) - 1;

	memset(f, 0, sizeof(*f));
	memcpy(f->b, our_mac, 6);
	memcpy(f->b + 6, peer_mac, 6);
	put16(f->b + 12, 0x0800);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(20 + 8 + plen));
	put16(ip + 6, 0x4000);
	ip[8] = 64;
	ip[9] = 17;
	memcpy(ip + 12, &(uint32_t){ip_of("198.18.0.2")}, 4);
	memcpy(ip + 16, &self.ip, 4);
	put16(u, 40000);
	put16(u + 2, 11211);
	put16(u + 4, (uint16_t)(8 + plen));
	put16(mc, 0x1234);
	put16(mc + 4, 1);
	memcpy(mc + 8, req, sizeof(req) - 1);
	f->len = 14 + 20 + 8 + plen;
	ip_fix(ip);
	udp_fix(ip, u, 8 + plen);
}

static void arp(struct frame *f, uint16_t op, const char *target,
		const uint8_t *dst)
{
	uint8_t *a = f->b + 14;

	memset(f, 0, sizeof(*f));
	memcpy(f->b, dst, 6);
	memcpy(f->b + 6, peer_mac, 6);
	put16(f->b + 12, 0x0806);
	put16(a, 1);
	put16(a + 2, 0x0800);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, op);
	memcpy(a + 8, peer_mac, 6);
	memcpy(a + 14, &(uint32_t){ip_of("198.18.0.2")}, 4);
	memcpy(a + 24, &(uint32_t){ip_of(target)}, 4);
	f->len = 42;
}

static void ping(struct frame *f)
{
	uint8_t *ip = f->b + 14, *icmp = ip + 20;

	good(f);
	ip[9] = 1;
	put16(ip + 2, 20 + 8 + 16);
	icmp[0] = 8;
	icmp[1] = 0;
	put16(icmp + 2, 0);
	put16(icmp + 4, 0x77);
	put16(icmp + 6, 3);
	memset(icmp + 8, 0xab, 16);
	put16(icmp + 2, (uint16_t)~sum16(icmp, 24, 0));
	f->len = 14 + 20 + 24;
	ip_fix(ip);
}

/* ---- the cases ------------------------------------------------------- */

#define IP(f)  ((f)->b + 14)
#define UDP(f) ((f)->b + 34)

static void m_none(struct frame *f)
{
	(void)f;
}
static void m_pad(struct frame *f)
{
	f->len += 20;
}
static void m_eth_short(struct frame *f)
{
	f->len = 10;
}
static void m_ip_short(struct frame *f)
{
	f->len = 14 + 12;
}
static void m_udp_short(struct frame *f)
{
	put16(IP(f) + 2, 20 + 6);
	ip_fix(IP(f));
	f->len = 14 + 26;
}
static void m_ip_csum(struct frame *f)
{
	IP(f)[10] ^= 1;
}
static void m_udp_csum(struct frame *f)
{
	UDP(f)[6] ^= 1;
}
static void m_udp_csum0(struct frame *f)
{
	put16(UDP(f) + 6, 0);
}
static void m_options(struct frame *f)
{
	IP(f)[0] = 0x46;
	ip_fix(IP(f));
}
static void m_mf(struct frame *f)
{
	put16(IP(f) + 6, 0x2000);
	ip_fix(IP(f));
}
static void m_offset(struct frame *f)
{
	put16(IP(f) + 6, 0x0010);
	ip_fix(IP(f));
}
static void m_tot_beyond(struct frame *f)
{
	put16(IP(f) + 2, (uint16_t)(f->len - 14 + 1));
	ip_fix(IP(f));
}
static void m_tot_short(struct frame *f)
{
	put16(IP(f) + 2, 19);
	ip_fix(IP(f));
}
static void m_ihl_short(struct frame *f)
{
	IP(f)[0] = 0x44;
}
static void m_ulen_beyond(struct frame *f)
{
	put16(UDP(f) + 4, (uint16_t)(get16(UDP(f) + 4) + 1));
	put16(UDP(f) + 6, 0);
}
static void m_ulen_short(struct frame *f)
{
	put16(UDP(f) + 4, 7);
	put16(UDP(f) + 6, 0);
}
static void m_frame_short(struct frame *f)
{
	put16(UDP(f) + 4, 8 + 5);
	udp_fix(IP(f), UDP(f), 8 + 5);
}
static void m_count2(struct frame *f)
{
	put16(UDP(f) + 8 + 4, 2);
	udp_fix(IP(f), UDP(f), get16(UDP(f) + 4));
}
static void m_outsider(struct frame *f)
{
	memcpy(IP(f) + 12, &(uint32_t){ip_of("203.0.113.9")}, 4);
	ip_fix(IP(f));
	udp_fix(IP(f), UDP(f), get16(UDP(f) + 4));
}
static void m_other_mac(struct frame *f)
{
	f->b[5] = 9;
}
static void m_other_ip(struct frame *f)
{
	memcpy(IP(f) + 16, &(uint32_t){ip_of("198.18.0.9")}, 4);
	ip_fix(IP(f));
	udp_fix(IP(f), UDP(f), get16(UDP(f) + 4));
}
static void m_other_port(struct frame *f)
{
	put16(UDP(f) + 2, 11212);
	udp_fix(IP(f), UDP(f), get16(UDP(f) + 4));
}
static void m_tcp(struct frame *f)
{
	IP(f)[9] = 6;
	ip_fix(IP(f));
}
static void m_ipv6(struct frame *f)
{
	put16(f->b + 12, 0x86dd);
}
static void m_version(struct frame *f)
{
	IP(f)[0] = 0x65;
}
static void m_arp_req(struct frame *f)
{
	arp(f, 1, "198.18.0.1", our_mac);
}
static void m_arp_bcast(struct frame *f)
{
	static const uint8_t b[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

	arp(f, 1, "198.18.0.1", b);
}
static void m_arp_other(struct frame *f)
{
	arp(f, 1, "198.18.0.7", our_mac);
}
static void m_arp_reply(struct frame *f)
{
	arp(f, 2, "198.18.0.1", our_mac);
}
static void m_arp_short(struct frame *f)
{
	arp(f, 1, "198.18.0.1", our_mac);
	f->len = 14 + 20;
}
static void m_ping(struct frame *f)
{
	ping(f);
}
static void m_ping_csum(struct frame *f)
{
	ping(f);
	IP(f)[20 + 8] ^= 1;
}
static void m_ping_short(struct frame *f)
{
	ping(f);
	put16(IP(f) + 2, 20 + 4);
	ip_fix(IP(f));
}
static void m_icmp_other(struct frame *f)
{
	ping(f);
	IP(f)[20] = 13; /* timestamp */
	put16(IP(f) + 22, 0);
	put16(IP(f) + 22, (uint16_t)~sum16(IP(f) + 20, 24, 0));
}

struct pkt_case {
	const char *name;
	void (*make)(struct frame *f);
	enum dp_pkt_kind kind;
	enum dp_drop drop;
};

#define OK(n, m, k)                                                            \
	{                                                                      \
		n, m, k, DP_DROP_MAX                                           \
	}
#define NO(n, m, d)                                                            \
	{                                                                      \
		n, m, DP_PKT_DROP, d                                           \
	}

static const struct pkt_case cases[] = {
	OK("good", m_none, DP_PKT_MEMCACHED),
	OK("ethernet padding", m_pad, DP_PKT_MEMCACHED),
	OK("udp checksum 0", m_udp_csum0, DP_PKT_MEMCACHED),
	OK("arp request", m_arp_req, DP_PKT_ARP_REQUEST),
	OK("arp request, broadcast", m_arp_bcast, DP_PKT_ARP_REQUEST),
	OK("ping", m_ping, DP_PKT_ICMP_ECHO),
	NO("ethernet cut", m_eth_short, DP_DROP_TRUNCATED),
	NO("ipv4 cut", m_ip_short, DP_DROP_TRUNCATED),
	NO("udp cut", m_udp_short, DP_DROP_TRUNCATED),
	NO("arp cut", m_arp_short, DP_DROP_TRUNCATED),
	NO("icmp cut", m_ping_short, DP_DROP_TRUNCATED),
	NO("ipv4 checksum", m_ip_csum, DP_DROP_BAD_CSUM),
	NO("udp checksum", m_udp_csum, DP_DROP_BAD_CSUM),
	NO("icmp checksum", m_ping_csum, DP_DROP_BAD_CSUM),
	NO("ip options", m_options, DP_DROP_IP_OPTIONS),
	NO("more fragments", m_mf, DP_DROP_FRAGMENT),
	NO("fragment offset", m_offset, DP_DROP_FRAGMENT),
	NO("ipv4 length beyond", m_tot_beyond, DP_DROP_BAD_LENGTH),
	NO("ipv4 length short", m_tot_short, DP_DROP_BAD_LENGTH),
	NO("ihl below 5", m_ihl_short, DP_DROP_BAD_LENGTH),
	NO("udp length beyond", m_ulen_beyond, DP_DROP_BAD_LENGTH),
	NO("udp length short", m_ulen_short, DP_DROP_BAD_LENGTH),
	NO("frame header short", m_frame_short, DP_DROP_BAD_FRAME),
	NO("datagram count 2", m_count2, DP_DROP_BAD_FRAME),
	NO("outside the allowlist", m_outsider, DP_DROP_NOT_ALLOWED),
	NO("another mac", m_other_mac, DP_DROP_NOT_FOR_US),
	NO("another ip", m_other_ip, DP_DROP_NOT_FOR_US),
	NO("another port", m_other_port, DP_DROP_NOT_FOR_US),
	NO("tcp", m_tcp, DP_DROP_NOT_FOR_US),
	NO("ipv6", m_ipv6, DP_DROP_NOT_FOR_US),
	NO("ip version 6 in ipv4", m_version, DP_DROP_NOT_FOR_US),
	NO("arp for another ip", m_arp_other, DP_DROP_NOT_FOR_US),
	NO("arp reply", m_arp_reply, DP_DROP_NOT_FOR_US),
	NO("icmp timestamp", m_icmp_other, DP_DROP_NOT_FOR_US),
};

static int setup(void **state)
{
	(void)state;
	memcpy(self.mac, our_mac, 6);
	self.ip = ip_of("198.18.0.1");
	self.udp_port = htons(11211);
	assert_int_equal(dp_prefix_parse("198.18.0.0/15,192.0.2.7", allow, 2),
			 2);
	self.allow = allow;
	self.nallow = 2;
	return 0;
}

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct pkt_case *c = &cases[i];
		struct dp_pkt_info in;
		struct frame f;
		enum dp_pkt_kind k;

		good(&f);
		c->make(&f);
		k = dp_pkt_classify(f.b, f.len, &self, 0, &in);
		if (k != c->kind || in.kind != k ||
		    (k == DP_PKT_DROP && in.drop != c->drop))
			fail_msg("%s: kind %d drop %s, want kind %d drop %s",
				 c->name, k, dp_drop_name(in.drop), c->kind,
				 c->kind == DP_PKT_DROP ? dp_drop_name(c->drop)
							: "-");
	}
}

/* A good frame's fields come out right. */
static void test_memcached_fields(void **state)
{
	struct dp_pkt_info in;
	struct frame f;

	(void)state;
	good(&f);
	assert_int_equal(dp_pkt_classify(f.b, f.len, &self, 0, &in),
			 DP_PKT_MEMCACHED);
	assert_int_equal(in.payload_off, 42);
	assert_int_equal(in.payload_len, 8 + 7);
	assert_memory_equal(f.b + in.payload_off + 8, "get a\r\n", 7);
	assert_memory_equal(in.from.mac, peer_mac, 6);
	assert_int_equal(in.from.ip, ip_of("198.18.0.2"));
	assert_int_equal(ntohs(in.from.port), 40000);
}

/* What the port verified is not checked again; nothing else is skipped. */
static void test_verified(void **state)
{
	struct dp_pkt_info in;
	struct frame f;

	(void)state;
	good(&f);
	m_ip_csum(&f);
	assert_int_equal(
		dp_pkt_classify(f.b, f.len, &self, DP_CSUM_IP_GOOD, &in),
		DP_PKT_MEMCACHED);
	assert_int_equal(
		dp_pkt_classify(f.b, f.len, &self, DP_CSUM_L4_GOOD, &in),
		DP_PKT_DROP);
	good(&f);
	m_udp_csum(&f);
	assert_int_equal(
		dp_pkt_classify(f.b, f.len, &self, DP_CSUM_L4_GOOD, &in),
		DP_PKT_MEMCACHED);
	assert_int_equal(
		dp_pkt_classify(f.b, f.len, &self, DP_CSUM_IP_GOOD, &in),
		DP_PKT_DROP);
	assert_int_equal(in.drop, DP_DROP_BAD_CSUM);
}

/* An empty allowlist lets everyone in; /0, /15 and /32 match as they
 * say. */
static void test_allowlist(void **state)
{
	struct dp_prefix p[4];
	struct dp_pkt_info in;
	struct dp_pkt_self open = self;
	struct frame f;

	(void)state;
	open.nallow = 0;
	good(&f);
	m_outsider(&f);
	assert_int_equal(dp_pkt_classify(f.b, f.len, &open, 0, &in),
			 DP_PKT_MEMCACHED);
	assert_int_equal(dp_prefix_parse("0.0.0.0/0", p, 4), 1);
	assert_true(dp_prefix_match(p, 1, ip_of("203.0.113.9")));
	assert_int_equal(dp_prefix_parse("198.18.0.0/15", p, 4), 1);
	assert_true(dp_prefix_match(p, 1, ip_of("198.19.255.255")));
	assert_false(dp_prefix_match(p, 1, ip_of("198.20.0.0")));
	assert_false(dp_prefix_match(p, 1, ip_of("198.17.255.255")));
	assert_int_equal(dp_prefix_parse("10.0.0.1,10.0.0.3/32", p, 4), 2);
	assert_true(dp_prefix_match(p, 2, ip_of("10.0.0.3")));
	assert_false(dp_prefix_match(p, 2, ip_of("10.0.0.2")));
}

static void test_prefix_errors(void **state)
{
	static const char *const bad[] = {
		"",
		"nonsense",
		"198.18.0.0/33",
		"198.18.0.0/",
		"198.18.0.0/-1",
		"198.18.0.1/24",
		"1.2.3.4,,x",
		"198.18.0.0/1x",
		"::1",
	};
	struct dp_prefix p[2];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (dp_prefix_parse(bad[i], p, 2) != -EINVAL)
			fail_msg("'%s' was taken", bad[i]);
	assert_int_equal(dp_prefix_parse("1.0.0.0/8,2.0.0.0/8,3.0.0.0/8", p, 2),
			 -ENOSPC);
}

static void test_drop_names(void **state)
{
	static const char *const want[DP_DROP_MAX] = {
		"truncated",   "bad_checksum", "ip_options",
		"fragment",    "bad_length",   "bad_frame",
		"not_allowed", "not_for_us",   "no_mbuf"};

	(void)state;
	for (int d = 0; d < DP_DROP_MAX; d++)
		assert_string_equal(dp_drop_name((enum dp_drop)d), want[d]);
	assert_string_equal(dp_drop_name(DP_DROP_MAX), "unknown");
}

/* A reply built by the codec is a good frame at the peer, whose
 * checksums the test's own sum accepts. */
static void test_udp_build(void **state)
{
	static const char body[] = "\x12\x34\0\0\0\x01\0\0VALUE a 0 1\r\n"
				   "x\r\nEND\r\n";
	struct dp_pkt_self peer = {.udp_port = htons(40000)};
	struct dp_peer to = {.port = htons(40000)};
	struct dp_pkt_info in;
	struct frame f;
	size_t len, n = sizeof(body) - 1;

	(void)state;
	memcpy(peer.mac, peer_mac, 6);
	peer.ip = ip_of("198.18.0.2");
	memcpy(to.mac, peer_mac, 6);
	to.ip = peer.ip;
	for (unsigned off = 0; off < 4; off++) {
		memset(&f, 0, sizeof(f));
		memcpy(f.b + DP_PKT_UDP_HDR, body, n);
		len = dp_pkt_udp_build(f.b, &self, &to, n, 7,
				       off & 1 ? DP_TX_IP_CSUM : 0);
		assert_int_equal(len, DP_PKT_UDP_HDR + n);
		if (off & 1) {
			assert_int_equal(get16(IP(&f) + 10), 0);
			ip_fix(IP(&f));
		}
		assert_int_equal(sum16(IP(&f), 20, 0), 0xffff);
		assert_int_equal(udp_sum(IP(&f), UDP(&f), 8 + n), 0xffff);
		assert_int_equal(dp_pkt_classify(f.b, len, &peer, 0, &in),
				 DP_PKT_MEMCACHED);
		assert_int_equal(in.from.ip, self.ip);
		assert_int_equal(ntohs(in.from.port), 11211);
		assert_memory_equal(f.b + in.payload_off, body, n);
	}
	/* offloaded UDP checksum: the pseudo-header's sum is written */
	memset(&f, 0, sizeof(f));
	memcpy(f.b + DP_PKT_UDP_HDR, body, n);
	dp_pkt_udp_build(f.b, &self, &to, n, 7, DP_TX_UDP_CSUM);
	assert_int_equal(get16(UDP(&f) + 6),
			 sum16(IP(&f) + 12, 8, 17 + (uint32_t)(8 + n)));
}

/* A payload whose checksum comes out 0 is sent as 0xffff: 0 means none. */
static void test_udp_build_zero_sum(void **state)
{
	struct dp_peer to = {.port = htons(40000)};
	struct frame f;
	uint16_t fill;

	(void)state;
	memcpy(to.mac, peer_mac, 6);
	to.ip = ip_of("198.18.0.2");
	/* two payload bytes that make the sum of everything else 0xffff */
	memset(&f, 0, sizeof(f));
	dp_pkt_udp_build(f.b, &self, &to, 2, 7, 0);
	put16(UDP(&f) + 6, 0);
	fill = (uint16_t)~udp_sum(IP(&f), UDP(&f), 10);
	put16(f.b + DP_PKT_UDP_HDR, fill);
	dp_pkt_udp_build(f.b, &self, &to, 2, 7, 0);
	assert_int_equal(get16(UDP(&f) + 6), 0xffff);
}

static void test_arp_and_ping_replies(void **state)
{
	struct dp_pkt_self peer = {.ip = 0};
	struct dp_pkt_info in;
	uint8_t mac[6];
	struct frame f;
	size_t len;

	(void)state;
	m_arp_bcast(&f);
	assert_int_equal(dp_pkt_classify(f.b, f.len, &self, 0, &in),
			 DP_PKT_ARP_REQUEST);
	len = dp_pkt_arp_reply(f.b, &self);
	assert_int_equal(len, DP_PKT_ARP_LEN);
	memcpy(peer.mac, peer_mac, 6);
	peer.ip = ip_of("198.18.0.2");
	assert_memory_equal(f.b, peer_mac, 6);
	assert_true(dp_pkt_arp_is_reply(f.b, len, &peer, self.ip, mac));
	assert_memory_equal(mac, our_mac, 6);
	/* and a request of ours is what classify takes at the other end */
	len = dp_pkt_arp_request(f.b, &peer, self.ip);
	assert_int_equal(dp_pkt_classify(f.b, len, &self, 0, &in),
			 DP_PKT_ARP_REQUEST);
	assert_false(dp_pkt_arp_is_reply(f.b, len, &peer, self.ip, mac));

	ping(&f);
	assert_int_equal(dp_pkt_classify(f.b, f.len, &self, 0, &in),
			 DP_PKT_ICMP_ECHO);
	len = dp_pkt_icmp_reply(f.b, f.len);
	assert_int_equal(len, f.len);
	assert_memory_equal(f.b, peer_mac, 6);
	assert_memory_equal(f.b + 6, our_mac, 6);
	assert_int_equal(IP(&f)[20], 0);
	assert_memory_equal(IP(&f) + 12, &self.ip, 4);
	assert_int_equal(sum16(IP(&f), 20, 0), 0xffff);
	assert_int_equal(sum16(IP(&f) + 20, 24, 0), 0xffff);
}

/* Every truncation of good frames, and seeded byte flips: never read
 * past the frame (ASan), never taken with a payload past it. */
static void test_truncations(void **state)
{
	void (*makes[])(struct frame *) = {m_none, m_arp_req, m_ping};
	uint64_t seed = 12345;

	(void)state;
	for (size_t m = 0; m < 3; m++) {
		struct frame g;

		good(&g);
		makes[m](&g);
		for (size_t n = 0; n <= g.len; n++) {
			uint8_t *copy = malloc(n ? n : 1);
			struct dp_pkt_info in;

			memcpy(copy, g.b, n);
			if (dp_pkt_classify(copy, n, &self, 0, &in) ==
			    DP_PKT_MEMCACHED)
				assert_true((size_t)in.payload_off +
						    in.payload_len <=
					    n);
			free(copy);
		}
		for (int t = 0; t < 20000; t++) {
			struct frame f = g;
			struct dp_pkt_info in;
			uint8_t *copy;

			seed = seed * 6364136223846793005ull + 1;
			f.b[(seed >> 33) % g.len] ^= (uint8_t)(seed >> 20);
			f.len = (seed >> 45) % (g.len + 1);
			copy = malloc(f.len ? f.len : 1);
			memcpy(copy, f.b, f.len);
			if (dp_pkt_classify(copy, f.len, &self, 0, &in) ==
			    DP_PKT_MEMCACHED)
				assert_true((size_t)in.payload_off +
						    in.payload_len <=
					    f.len);
			free(copy);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_memcached_fields),
		cmocka_unit_test(test_verified),
		cmocka_unit_test(test_allowlist),
		cmocka_unit_test(test_prefix_errors),
		cmocka_unit_test(test_drop_names),
		cmocka_unit_test(test_udp_build),
		cmocka_unit_test(test_udp_build_zero_sum),
		cmocka_unit_test(test_arp_and_ping_replies),
		cmocka_unit_test(test_truncations),
	};

	return cmocka_run_group_tests_name("dataplane_pkt", tests, setup, NULL);
}

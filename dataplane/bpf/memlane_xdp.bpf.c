/* SPDX-License-Identifier: (BSD-3-Clause OR GPL-2.0) */
/*
 * memlane's XDP program: what takes the bypass path, decided at the
 * driver.
 *
 *   memcached UDP to our port (and address), well formed, from an
 *   allowed source            -> the AF_XDP socket of its RX queue
 *   memcached UDP, malformed  -> dropped, counted by reason
 *   from outside the allowlist -> dropped, counted: no reply ever goes
 *                                to such a source (reflection attacks)
 *   everything else           -> the kernel
 *
 * Every byte is read after a bounds check against data_end. The UDP
 * checksum is left to user space, which reads the payload anyway.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "memlane_xdp_shared.h"

#define IP_MF	  0x2000
#define IP_OFFSET 0x1fff
#define MC_HDR	  8 /* memcached's UDP frame header */

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, ML_XDP_SOCKS_MAX);
	__type(key, __u32);
	__type(value, __u32);
} xsks_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ml_xdp_config);
} ml_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, ML_XDP_ALLOW_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ml_xdp_prefix);
	__type(value, __u8);
} ml_allow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ML_XDP_NSTATS);
	__type(key, __u32);
	__type(value, __u64);
} ml_stats SEC(".maps");

static __always_inline int count(__u32 stat, int verdict)
{
	__u64 *v = bpf_map_lookup_elem(&ml_stats, &stat);

	if (v)
		*v += 1;
	return verdict;
}

/* The IPv4 header (20 bytes, already bounds-checked) sums to 0xffff. */
static __always_inline int ip_csum_ok(const __u16 *w)
{
	__u32 s = 0;

#pragma unroll
	for (int i = 0; i < 10; i++)
		s += w[i];
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return s == 0xffff;
}

SEC("xdp")
int memlane_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ml_xdp_config *cfg;
	struct ml_xdp_prefix key;
	struct ethhdr *eth = data;
	struct udphdr *udp;
	struct iphdr *ip;
	__u32 zero = 0, q, tot, ulen;
	__u8 *mc;

	cfg = bpf_map_lookup_elem(&ml_config, &zero);
	if (!cfg || !cfg->udp_port)
		return count(ML_XDP_PASSED, XDP_PASS);
	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return count(ML_XDP_PASSED, XDP_PASS);
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || ip->version != 4 ||
	    ip->protocol != IPPROTO_UDP)
		return count(ML_XDP_PASSED, XDP_PASS);
	if (cfg->ip && ip->daddr != cfg->ip)
		return count(ML_XDP_PASSED, XDP_PASS);
	/* a later fragment carries no UDP header: it is ours when the
	 * first one was, and that one is dropped below */
	if (ip->frag_off & bpf_htons(IP_OFFSET))
		return count(ML_XDP_PASSED, XDP_PASS);
	if (ip->ihl != 5) {
		/* options: where the UDP header sits is unknown here */
		if (ip->ihl < 5)
			return count(ML_XDP_PASSED, XDP_PASS);
		udp = (void *)ip + ip->ihl * 4;
		if ((void *)udp + 4 > end || udp->dest != cfg->udp_port)
			return count(ML_XDP_PASSED, XDP_PASS);
		return count(ML_XDP_DROP_IP_OPTIONS, XDP_DROP);
	}
	udp = (void *)(ip + 1);
	/* the ports are the header's first 4 bytes */
	if ((void *)udp + 4 > end || udp->dest != cfg->udp_port)
		return count(ML_XDP_PASSED, XDP_PASS);
	if ((void *)(udp + 1) > end)
		return count(ML_XDP_DROP_TRUNCATED, XDP_DROP);
	/* memcached UDP for us from here on: malformed is dropped */
	if (ip->frag_off & bpf_htons(IP_MF))
		return count(ML_XDP_DROP_FRAGMENT, XDP_DROP);
	tot = bpf_ntohs(ip->tot_len);
	ulen = bpf_ntohs(udp->len);
	if (tot < sizeof(*ip) + sizeof(*udp) || (void *)ip + tot > end ||
	    ulen < sizeof(*udp) || ulen > tot - sizeof(*ip))
		return count(ML_XDP_DROP_BAD_LENGTH, XDP_DROP);
	if (!ip_csum_ok((const __u16 *)ip))
		return count(ML_XDP_DROP_BAD_CHECKSUM, XDP_DROP);
	mc = (__u8 *)(udp + 1);
	if (ulen < sizeof(*udp) + MC_HDR || (void *)(mc + MC_HDR) > end)
		return count(ML_XDP_DROP_BAD_FRAME, XDP_DROP);
	/* the datagram count: memcached takes single-datagram requests */
	if (mc[4] != 0 || mc[5] != 1)
		return count(ML_XDP_DROP_BAD_FRAME, XDP_DROP);
	if (!cfg->allow_all) {
		key.len = 32;
		key.addr = ip->saddr;
		if (!bpf_map_lookup_elem(&ml_allow, &key))
			return count(ML_XDP_DROP_NOT_ALLOWED, XDP_DROP);
	}
	q = ctx->rx_queue_index;
	if (!bpf_map_lookup_elem(&xsks_map, &q))
		return count(ML_XDP_REDIRECT_FAILED, XDP_PASS);
	count(ML_XDP_REDIRECTED, 0);
	return bpf_redirect_map(&xsks_map, q, XDP_PASS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

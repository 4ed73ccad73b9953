// SPDX-License-Identifier: (GPL-2.0-only OR BSD-3-Clause)
/*
 * memlane's XDP program: memcached UDP for memlaned goes to the queue's
 * AF_XDP socket, malformed memcached UDP and sources outside the
 * allowlist are dropped here, everything else goes to the kernel.
 *
 * The af_xdp PMD loads this object itself, so the settings come from
 * the ml_config map, not from rodata; until memlaned fills it, every
 * frame is passed. UDP checksums are left to memlaned.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "memlane_xdp_shared.h"

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, ML_XDP_XSKS_MAX);
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
	__type(key, struct ml_xdp_lpm_key);
	__type(value, __u8);
} ml_allow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ML_XDP_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} ml_stats SEC(".maps");

#define IP_MF	   0x2000
#define IP_OFFMASK 0x1fff

static __always_inline int count(__u32 stat, int verdict)
{
	__u64 *n = bpf_map_lookup_elem(&ml_stats, &stat);

	if (n)
		*n += 1;
	return verdict;
}

/* The IPv4 header's one's-complement sum over its 20 bytes (no
 * options): 0xffff folded when the checksum is right. */
static __always_inline __u16 ip_sum(const struct iphdr *ip)
{
	const __u16 *w = (const __u16 *)ip;
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < (int)(sizeof(*ip) / 2); i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

SEC("xdp")
int memlane_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ml_xdp_config *cfg;
	struct ml_xdp_lpm_key key;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct udphdr *udp;
	__u8 *frame;
	__u32 zero = 0, qid, tot, ulen;
	__u64 flen;
	int verdict;

	cfg = bpf_map_lookup_elem(&ml_config, &zero);
	if (!cfg || !cfg->udp_port)
		return count(ML_XDP_PASSED, XDP_PASS);
	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return count(ML_XDP_PASSED, XDP_PASS);
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || ip->version != 4 ||
	    ip->protocol != IPPROTO_UDP || (cfg->ip && ip->daddr != cfg->ip))
		return count(ML_XDP_PASSED, XDP_PASS);
	/* the UDP header's place depends on IHL; the destination port is
	 * read from there so that options do not hide memcached traffic */
	if (ip->ihl < 5)
		return count(ML_XDP_PASSED, XDP_PASS);
	udp = (void *)ip + ip->ihl * 4;
	if ((void *)udp + 4 > end)
		return count(ML_XDP_PASSED, XDP_PASS);
	if (udp->dest != cfg->udp_port)
		return count(ML_XDP_PASSED, XDP_PASS);

	/* memcached UDP for us from here on: malformed is dropped */
	if (ip->ihl != 5)
		return count(ML_XDP_DROP_IP_OPTIONS, XDP_DROP);
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFMASK))
		return count(ML_XDP_DROP_FRAGMENT, XDP_DROP);
	if ((void *)(udp + 1) > end)
		return count(ML_XDP_DROP_TRUNCATED, XDP_DROP);
	flen = (__u64)(end - (void *)ip);
	tot = bpf_ntohs(ip->tot_len);
	ulen = bpf_ntohs(udp->len);
	if (tot > flen || tot < sizeof(*ip) + sizeof(*udp) ||
	    ulen > tot - sizeof(*ip) || ulen < sizeof(*udp))
		return count(ML_XDP_DROP_BAD_LENGTH, XDP_DROP);
	if (ip_sum(ip) != 0xffff)
		return count(ML_XDP_DROP_BAD_CHECKSUM, XDP_DROP);
	frame = (__u8 *)(udp + 1);
	if (ulen < sizeof(*udp) + ML_XDP_FRAME_HDR ||
	    (void *)(frame + ML_XDP_FRAME_HDR) > end || frame[4] != 0 ||
	    frame[5] != 1)
		return count(ML_XDP_DROP_BAD_FRAME, XDP_DROP);
	if (!cfg->allow_all) {
		key.prefixlen = 32;
		key.addr = ip->saddr;
		if (!bpf_map_lookup_elem(&ml_allow, &key))
			return count(ML_XDP_DROP_NOT_ALLOWED, XDP_DROP);
	}

	/* no socket on this queue (or it went since): the kernel has it */
	qid = ctx->rx_queue_index;
	if (!bpf_map_lookup_elem(&xsks_map, &qid))
		return count(ML_XDP_REDIRECT_FAILED, XDP_PASS);
	verdict = bpf_redirect_map(&xsks_map, qid, XDP_PASS);
	if (verdict != XDP_REDIRECT)
		return count(ML_XDP_REDIRECT_FAILED, verdict);
	return count(ML_XDP_REDIRECTED, verdict);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

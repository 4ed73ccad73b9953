/* SPDX-License-Identifier: (BSD-3-Clause OR GPL-2.0) */
/*
 * What memlane's XDP program and memlaned share: its settings, its
 * allowlist's key and its counters. Included from BPF and user space.
 */
#ifndef MEMLANE_XDP_SHARED_H
#define MEMLANE_XDP_SHARED_H

#define ML_XDP_SOCKS_MAX 64  /* RX queues with an AF_XDP socket */
#define ML_XDP_ALLOW_MAX 256 /* allowlist prefixes */

/* ml_config[0], filled by memlaned once the port runs; until then
 * udp_port is 0 and every frame goes to the kernel. */
struct ml_xdp_config {
	__u32 ip;	/* network order; 0: any */
	__u16 udp_port; /* network order */
	__u8 allow_all; /* no allowlist: every source */
	__u8 pad;
};

/* ml_allow's key: an LPM trie key, prefix length first */
struct ml_xdp_prefix {
	__u32 len;
	__u32 addr; /* network order */
};

/* ml_stats indexes (per CPU) */
enum ml_xdp_stat {
	ML_XDP_PASSED,		/* to the kernel */
	ML_XDP_REDIRECTED,	/* to the AF_XDP socket of the RX queue */
	ML_XDP_REDIRECT_FAILED, /* no socket on that queue: to the kernel */
	ML_XDP_DROP_TRUNCATED,
	ML_XDP_DROP_IP_OPTIONS,
	ML_XDP_DROP_FRAGMENT,
	ML_XDP_DROP_BAD_LENGTH,
	ML_XDP_DROP_BAD_CHECKSUM, /* the IPv4 header's; UDP's is checked in
				     user space */
	ML_XDP_DROP_BAD_FRAME,
	ML_XDP_DROP_NOT_ALLOWED,
	ML_XDP_NSTATS
};

#endif /* MEMLANE_XDP_SHARED_H */

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-3-Clause) */
/*
 * What memlane's XDP program and memlaned share: the layout of the
 * ml_config entry, the ml_allow key and the ml_stats indices. Included
 * by the BPF object and by user space, so only fixed-width types.
 */
#ifndef MEMLANE_XDP_SHARED_H
#define MEMLANE_XDP_SHARED_H

/* ml_config[0]; all zero until memlaned fills it, and then the program
 * passes every frame to the kernel. */
struct ml_xdp_config {
	__u32 ip;	/* network order; 0: any destination */
	__u16 udp_port; /* network order; 0: not configured */
	__u8 allow_all; /* 1: every source, ml_allow unused */
	__u8 pad;
};

/* ml_allow's key: an LPM trie key, prefixlen then the address. */
struct ml_xdp_lpm_key {
	__u32 prefixlen;
	__u32 addr; /* network order */
};

/* ml_stats' indices, in the order stats prints them. */
enum ml_xdp_stat {
	ML_XDP_PASSED,		  /* not memcached UDP for us: to the kernel */
	ML_XDP_REDIRECTED,	  /* to the queue's AF_XDP socket */
	ML_XDP_REDIRECT_FAILED,	  /* no socket on the queue: to the kernel */
	ML_XDP_DROP_TRUNCATED,	  /* UDP header cut short */
	ML_XDP_DROP_IP_OPTIONS,	  /* IHL > 5 */
	ML_XDP_DROP_FRAGMENT,	  /* MF or a fragment offset */
	ML_XDP_DROP_BAD_LENGTH,	  /* IPv4 or UDP length beyond the frame or
				     below its header */
	ML_XDP_DROP_BAD_CHECKSUM, /* IPv4 header checksum */
	ML_XDP_DROP_BAD_FRAME,	  /* memcached frame header short, or a
				     datagram count other than 1 */
	ML_XDP_DROP_NOT_ALLOWED,  /* source outside ml_allow */
	ML_XDP_STAT_COUNT
};

#define ML_XDP_XSKS_MAX	 64
#define ML_XDP_ALLOW_MAX 256
#define ML_XDP_FRAME_HDR 8 /* memcached's UDP frame header */

#endif /* MEMLANE_XDP_SHARED_H */

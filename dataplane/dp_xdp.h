/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memlane's XDP program on a net_af_xdp port: its object, held for the
 * PMD to load (xdp_prog=), and memlaned's side of it with libbpf: a stale
 * copy taken off at start, the program's settings and allowlist filled
 * in once the port runs, its counters read for stats, and the program
 * taken off at exit.
 */
#ifndef MEMLANE_DP_XDP_H
#define MEMLANE_DP_XDP_H

#include <stddef.h>
#include <stdint.h>

#include "dp_pkt.h"

struct dp_xdp;

/* The program's counters (per-CPU, summed), ML_XDP_STAT_MAX of them. */
#define ML_XDP_STAT_MAX 10

struct dp_xdp_params {
	uint32_t ip;	   /* network order; 0: any */
	uint16_t udp_port; /* network order */
	const struct dp_prefix *allow;
	unsigned nallow; /* 0: every source */
};

/* A memfd holding the program's object, for xdp_prog=/proc/self/fd/N.
 * Returns the fd, or -errno. */
int dp_xdp_object_fd(void);
/* Before the port starts: takes a stale memlane program (one left by a
 * crash, recognised by its name) off ifname. Returns 0, -ENODEV, -EBUSY
 * (another program holds it; err names it), or -errno; err says why
 * whenever it is not 0. */
int dp_xdp_prepare(const char *ifname, char *err, size_t errlen);
/* After the PMD attached the program (native or generic mode): fills
 * its allowlist, then its settings, so that it sorts frames only with
 * the allowlist in place. NULL with errno set: ENOENT (memlane's program
 * is not attached to ifname), ENODEV, E2BIG (more than 256 prefixes),
 * EINVAL (a prefix longer than 32), or the kernel's. */
struct dp_xdp *dp_xdp_open(const char *ifname, const struct dp_xdp_params *p);
/* Sums the counters over the CPUs into out, in enum ml_xdp_stat's
 * order (dataplane/bpf/memlane_xdp_shared.h). Returns 0 or -errno. */
int dp_xdp_counters(struct dp_xdp *x, uint64_t out[ML_XDP_STAT_MAX]);
/* "passed", "redirected", ...: counter i's name in stats. */
const char *dp_xdp_stat_name(unsigned i);
/* Takes the program off the interface if it is still there; takes
 * NULL. */
void dp_xdp_close(struct dp_xdp *x);
/* The subnets of ifname's IPv4 addresses, into out[0..max). Returns how
 * many (0: none), or -errno. */
int dp_xdp_ifnet_prefixes(const char *ifname, struct dp_prefix *out,
			  unsigned max);

#endif /* MEMLANE_DP_XDP_H */

/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The XDP program's loader. Until the program lands, a net_af_xdp port
 * is refused with a clear error (dp_xdp_prepare()).
 */
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "dp_xdp.h"

int dp_xdp_object_fd(void)
{
	return -ENOTSUP;
}

int dp_xdp_prepare(const char *ifname, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: net_af_xdp is not served yet", ifname);
	return -ENOTSUP;
}

struct dp_xdp *dp_xdp_open(const char *ifname, const struct dp_xdp_params *p)
{
	(void)ifname;
	(void)p;
	errno = ENOTSUP;
	return NULL;
}

int dp_xdp_counters(struct dp_xdp *x, uint64_t out[ML_XDP_STAT_MAX])
{
	(void)x;
	(void)out;
	return -ENOTSUP;
}

const char *dp_xdp_stat_name(unsigned i)
{
	(void)i;
	return "unknown";
}

void dp_xdp_close(struct dp_xdp *x)
{
	(void)x;
}

int dp_xdp_ifnet_prefixes(const char *ifname, struct dp_prefix *out,
			  unsigned max)
{
	struct ifaddrs *all, *a;
	int n = 0;

	if (getifaddrs(&all))
		return -errno;
	for (a = all; a; a = a->ifa_next) {
		uint32_t addr, mask;

		if (!a->ifa_addr || !a->ifa_netmask ||
		    a->ifa_addr->sa_family != AF_INET ||
		    strcmp(a->ifa_name, ifname))
			continue;
		if ((unsigned)n == max)
			break;
		addr = ((struct sockaddr_in *)a->ifa_addr)->sin_addr.s_addr;
		mask = ((struct sockaddr_in *)a->ifa_netmask)->sin_addr.s_addr;
		out[n].addr = addr & mask;
		out[n].len = (uint8_t)__builtin_popcount(mask);
		n++;
	}
	freeifaddrs(all);
	return n;
}

/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memlane's XDP program on a net_af_xdp port, from memlaned's side, with
 * libbpf.
 *
 * DPDK's af_xdp PMD loads and attaches the program itself (its xdp_prog=
 * devarg, given the object that the skeleton embeds, through a memfd),
 * and puts each queue's AF_XDP socket into the program's xsks_map. So the
 * PMD, not this file, owns the program's load; this file finds it on the
 * interface afterwards and fills the maps that are its settings (the PMD
 * loads the object as it is, so settings cannot be read-only data set
 * before the load). Why not our own AF_XDP sockets: with the PMD, every
 * DPDK port works alike and the af_xdp port needs no code of its own.
 */
#include <errno.h>
#include <ifaddrs.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "dp_xdp.h"
#include "memlane_xdp.skel.h"
#include "memlane_xdp_shared.h"

_Static_assert(ML_XDP_NSTATS == ML_XDP_STAT_MAX,
	       "dp_xdp.h and the program count alike");

#define PROG_NAME "memlane_xdp"

struct dp_xdp {
	int ifindex;
	__u32 prog_id;
	int stats_fd;
	int ncpus;
};

static const char *const stat_names[ML_XDP_NSTATS] = {
	[ML_XDP_PASSED] = "passed",
	[ML_XDP_REDIRECTED] = "redirected",
	[ML_XDP_REDIRECT_FAILED] = "redirect_failed",
	[ML_XDP_DROP_TRUNCATED] = "drop_truncated",
	[ML_XDP_DROP_IP_OPTIONS] = "drop_ip_options",
	[ML_XDP_DROP_FRAGMENT] = "drop_fragment",
	[ML_XDP_DROP_BAD_LENGTH] = "drop_bad_length",
	[ML_XDP_DROP_BAD_CHECKSUM] = "drop_bad_checksum",
	[ML_XDP_DROP_BAD_FRAME] = "drop_bad_frame",
	[ML_XDP_DROP_NOT_ALLOWED] = "drop_not_allowed",
};

const char *dp_xdp_stat_name(unsigned i)
{
	return i < ML_XDP_NSTATS ? stat_names[i] : "unknown";
}

int dp_xdp_object_fd(void)
{
	size_t sz, off = 0;
	const char *obj = memlane_xdp_bpf__elf_bytes(&sz);
	int fd = memfd_create("memlane_xdp.bpf.o", MFD_CLOEXEC);

	if (fd < 0)
		return -errno;
	while (off < sz) {
		ssize_t n = write(fd, obj + off, sz - off);

		if (n <= 0) {
			int e = n < 0 ? errno : EIO;

			close(fd);
			return -e;
		}
		off += (size_t)n;
	}
	/* the PMD opens it by path, /proc/self/fd/<fd> */
	return fd;
}

/* The program attached to ifindex (its id, 0 for none) and its name. */
static int attached(int ifindex, __u32 *id, char *name, size_t len)
{
	struct bpf_prog_info info;
	__u32 info_len = sizeof(info);
	int fd, rc;

	*id = 0;
	name[0] = '\0';
	rc = bpf_xdp_query_id(ifindex, 0, id);
	if (rc || !*id)
		return rc;
	fd = bpf_prog_get_fd_by_id(*id);
	if (fd < 0)
		return -errno;
	memset(&info, 0, sizeof(info));
	rc = bpf_obj_get_info_by_fd(fd, &info, &info_len);
	close(fd);
	if (rc)
		return rc;
	snprintf(name, len, "%s", info.name);
	return 0;
}

int dp_xdp_prepare(const char *ifname, char *err, size_t errlen)
{
	int ifindex = (int)if_nametoindex(ifname);
	char name[BPF_OBJ_NAME_LEN];
	__u32 id;
	int rc;

	if (!ifindex) {
		snprintf(err, errlen, "net_af_xdp: no interface %s", ifname);
		return -ENODEV;
	}
	rc = attached(ifindex, &id, name, sizeof(name));
	if (rc) {
		snprintf(err, errlen, "%s: cannot ask for its XDP program: %s",
			 ifname, strerror(-rc));
		return rc;
	}
	if (!id)
		return 0;
	if (strncmp(name, PROG_NAME, sizeof(name) - 1)) {
		snprintf(err, errlen,
			 "%s: XDP program %u (%s) is attached already; take "
			 "it off first (ip link set %s xdp off)",
			 ifname, id, name[0] ? name : "no name", ifname);
		return -EBUSY;
	}
	/* ours, left by a memlaned that did not exit: replaced */
	rc = bpf_xdp_detach(ifindex, 0, NULL);
	if (rc) {
		snprintf(err, errlen,
			 "%s: cannot take off a stale XDP "
			 "program: %s",
			 ifname, strerror(-rc));
		return rc;
	}
	return 0;
}

/* A map of the program, by name. Returns its fd or -errno. */
static int prog_map(__u32 prog_id, const char *want)
{
	struct bpf_prog_info info;
	__u32 info_len = sizeof(info), ids[16], n;
	int pfd = bpf_prog_get_fd_by_id(prog_id), found = -ENOENT;

	if (pfd < 0)
		return -errno;
	memset(&info, 0, sizeof(info));
	info.nr_map_ids = 16;
	info.map_ids = (__u64)(unsigned long)ids;
	if (bpf_obj_get_info_by_fd(pfd, &info, &info_len)) {
		found = -errno;
		goto close_prog;
	}
	n = info.nr_map_ids < 16 ? info.nr_map_ids : 16;
	for (__u32 i = 0; i < n && found < 0; i++) {
		struct bpf_map_info mi;
		__u32 ml = sizeof(mi);
		int mfd = bpf_map_get_fd_by_id(ids[i]);

		if (mfd < 0)
			continue;
		memset(&mi, 0, sizeof(mi));
		if (!bpf_obj_get_info_by_fd(mfd, &mi, &ml) &&
		    strcmp(mi.name, want) == 0) {
			found = mfd;
			continue;
		}
		close(mfd);
	}
close_prog:
	close(pfd);
	return found;
}

struct dp_xdp *dp_xdp_open(const char *ifname, const struct dp_xdp_params *p)
{
	struct ml_xdp_config cfg = {.ip = p->ip,
				    .udp_port = p->udp_port,
				    .allow_all = p->nallow == 0};
	char name[BPF_OBJ_NAME_LEN];
	struct dp_xdp *x;
	int allow_fd = -1, cfg_fd = -1, e;
	__u32 zero = 0;
	__u8 one = 1;

	x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	x->stats_fd = -1;
	x->ifindex = (int)if_nametoindex(ifname);
	e = x->ifindex ? attached(x->ifindex, &x->prog_id, name, sizeof(name))
		       : -ENODEV;
	if (!e && (!x->prog_id || strncmp(name, PROG_NAME, sizeof(name) - 1)))
		e = -ENOENT; /* the PMD did not attach ours */
	if (e)
		goto fail;
	x->ncpus = libbpf_num_possible_cpus();
	x->stats_fd = prog_map(x->prog_id, "ml_stats");
	allow_fd = prog_map(x->prog_id, "ml_allow");
	cfg_fd = prog_map(x->prog_id, "ml_config");
	if (x->ncpus <= 0 || x->stats_fd < 0 || allow_fd < 0 || cfg_fd < 0) {
		e = -ENOENT;
		goto close_maps;
	}
	for (unsigned i = 0; i < p->nallow; i++) {
		struct ml_xdp_prefix k = {.len = p->allow[i].len,
					  .addr = p->allow[i].addr};

		if (bpf_map_update_elem(allow_fd, &k, &one, BPF_ANY)) {
			e = -errno;
			goto close_maps;
		}
	}
	/* the settings last: until now the program passed everything */
	if (bpf_map_update_elem(cfg_fd, &zero, &cfg, BPF_ANY)) {
		e = -errno;
		goto close_maps;
	}
	close(allow_fd);
	close(cfg_fd);
	return x;

close_maps:
	if (allow_fd >= 0)
		close(allow_fd);
	if (cfg_fd >= 0)
		close(cfg_fd);
fail:
	dp_xdp_close(x);
	errno = -e;
	return NULL;
}

int dp_xdp_counters(struct dp_xdp *x, uint64_t out[ML_XDP_STAT_MAX])
{
	__u64 *v;

	if (!x || x->stats_fd < 0)
		return -EINVAL;
	v = calloc((size_t)x->ncpus, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (__u32 i = 0; i < ML_XDP_NSTATS; i++) {
		out[i] = 0;
		if (bpf_map_lookup_elem(x->stats_fd, &i, v))
			continue;
		for (int c = 0; c < x->ncpus; c++)
			out[i] += v[c];
	}
	free(v);
	return 0;
}

void dp_xdp_close(struct dp_xdp *x)
{
	char name[BPF_OBJ_NAME_LEN];
	__u32 id;

	if (!x)
		return;
	/* the PMD takes its program off when the port closes; a program
	 * still there that is ours goes now */
	if (x->ifindex && x->prog_id &&
	    !attached(x->ifindex, &id, name, sizeof(name)) && id == x->prog_id)
		bpf_xdp_detach(x->ifindex, 0, NULL);
	if (x->stats_fd >= 0)
		close(x->stats_fd);
	free(x);
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

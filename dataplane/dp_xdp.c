/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memlane's XDP program from user space, with libbpf. The af_xdp PMD
 * loads and attaches the object itself (from the memfd that
 * dp_xdp_object_fd() gives it); memlaned finds the attached program by
 * its name, reaches its maps through the program's map ids, and writes
 * the settings the program reads from ml_config.
 */
#include <errno.h>
#include <ifaddrs.h>
#include <linux/if_link.h>
#include <linux/types.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
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

_Static_assert(ML_XDP_STAT_COUNT == ML_XDP_STAT_MAX,
	       "dp_xdp.h and the program count the same counters");

#define XDP_PROG_NAME	"memlane_xdp"
#define XDP_MAP_IDS_MAX 16

struct dp_xdp {
	int ifindex;
	__u32 mode; /* XDP_FLAGS_DRV_MODE or XDP_FLAGS_SKB_MODE */
	__u32 prog_id;
	int prog_fd;
	int config_fd;
	int allow_fd;
	int stats_fd;
	unsigned ncpus;
	__u64 *percpu; /* one counter's value on every CPU */
};

static const char *const stat_names[ML_XDP_STAT_MAX] = {
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

/* The two modes a program can be attached in, each with its id. */
static const __u32 xdp_modes[] = {XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE};

static __u32 mode_prog_id(const struct bpf_xdp_query_opts *q, __u32 mode)
{
	return mode == XDP_FLAGS_DRV_MODE ? q->drv_prog_id : q->skb_prog_id;
}

int dp_xdp_object_fd(void)
{
	const char *bytes;
	size_t len, off = 0;
	int fd, rc;

	bytes = memlane_xdp_bpf__elf_bytes(&len);
	fd = memfd_create(XDP_PROG_NAME ".bpf.o", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (off < len) {
		ssize_t n = write(fd, bytes + off, len - off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto close_fd;
		}
		off += (size_t)n;
	}
	return fd;

close_fd:
	close(fd);
	return rc;
}

/* The program with this id: its fd and its info (name, map ids when
 * map_ids is given). Returns the fd or -errno. */
static int prog_by_id(__u32 id, struct bpf_prog_info *info, __u32 *map_ids,
		      __u32 nmap_ids)
{
	__u32 len = sizeof(*info);
	int fd, rc;

	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		return -errno;
	memset(info, 0, sizeof(*info));
	if (map_ids) {
		info->nr_map_ids = nmap_ids;
		info->map_ids = (__u64)(unsigned long)map_ids;
	}
	rc = bpf_obj_get_info_by_fd(fd, info, &len);
	if (rc) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

/* Takes prog_fd's program off ifindex in mode, and only if it is still
 * the one attached there. */
static int xdp_detach(int ifindex, __u32 mode, int prog_fd)
{
	LIBBPF_OPTS(bpf_xdp_attach_opts, opts, .old_prog_fd = prog_fd);

	return bpf_xdp_detach(ifindex, mode | XDP_FLAGS_REPLACE, &opts);
}

int dp_xdp_prepare(const char *ifname, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	int ifindex, rc;

	ifindex = (int)if_nametoindex(ifname);
	if (!ifindex) {
		rc = -errno;
		snprintf(err, errlen, "%s: no such interface", ifname);
		return rc;
	}
	rc = bpf_xdp_query(ifindex, 0, &q);
	if (rc) {
		snprintf(err, errlen, "%s: cannot query its XDP program: %s",
			 ifname, strerror(-rc));
		return rc;
	}
	for (size_t m = 0; m < sizeof(xdp_modes) / sizeof(xdp_modes[0]); m++) {
		__u32 mode = xdp_modes[m], id = mode_prog_id(&q, mode);
		struct bpf_prog_info info;
		int fd;

		if (!id)
			continue;
		fd = prog_by_id(id, &info, NULL, 0);
		if (fd < 0) {
			if (fd == -ENOENT)
				continue; /* gone meanwhile */
			snprintf(err, errlen,
				 "%s: cannot inspect XDP program %u: %s",
				 ifname, id, strerror(-fd));
			return fd;
		}
		if (strcmp(info.name, XDP_PROG_NAME)) {
			snprintf(err, errlen,
				 "%s: XDP program '%s' (id %u) is attached; "
				 "take it off first (ip link set dev %s xdp "
				 "off)",
				 ifname, info.name, id, ifname);
			close(fd);
			return -EBUSY;
		}
		rc = xdp_detach(ifindex, mode, fd);
		close(fd);
		if (rc && rc != -EEXIST) {
			snprintf(err, errlen,
				 "%s: cannot take off a stale %s (id %u): %s",
				 ifname, XDP_PROG_NAME, id, strerror(-rc));
			return rc;
		}
	}
	return 0;
}

/* Finds ml_config, ml_allow and ml_stats among the program's maps. */
static int maps_find(struct dp_xdp *x, const __u32 *ids, __u32 n)
{
	for (__u32 i = 0; i < n; i++) {
		struct bpf_map_info info;
		__u32 len = sizeof(info);
		int fd, *slot = NULL;

		fd = bpf_map_get_fd_by_id(ids[i]);
		if (fd < 0)
			return -errno;
		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
			int rc = -errno;

			close(fd);
			return rc;
		}
		if (strcmp(info.name, "ml_config") == 0)
			slot = &x->config_fd;
		else if (strcmp(info.name, "ml_allow") == 0)
			slot = &x->allow_fd;
		else if (strcmp(info.name, "ml_stats") == 0)
			slot = &x->stats_fd;
		if (!slot || *slot >= 0) {
			close(fd);
			continue;
		}
		*slot = fd;
	}
	if (x->config_fd < 0 || x->allow_fd < 0 || x->stats_fd < 0)
		return -ENOENT;
	return 0;
}

/* The allowlist first, then the settings: the program starts sorting
 * only once ml_config names a port, by which time ml_allow is full. */
static int config_fill(struct dp_xdp *x, const struct dp_xdp_params *p)
{
	struct ml_xdp_config cfg = {
		.ip = p->ip,
		.udp_port = p->udp_port,
		.allow_all = p->nallow == 0,
	};
	__u32 zero = 0;
	__u8 one = 1;

	if (p->nallow > ML_XDP_ALLOW_MAX)
		return -E2BIG;
	for (unsigned i = 0; i < p->nallow; i++) {
		struct ml_xdp_lpm_key key = {
			.prefixlen = p->allow[i].len,
			.addr = p->allow[i].addr,
		};

		if (p->allow[i].len > 32)
			return -EINVAL;
		if (bpf_map_update_elem(x->allow_fd, &key, &one, BPF_ANY))
			return -errno;
	}
	if (bpf_map_update_elem(x->config_fd, &zero, &cfg, BPF_ANY))
		return -errno;
	return 0;
}

static void xdp_free(struct dp_xdp *x)
{
	if (x->stats_fd >= 0)
		close(x->stats_fd);
	if (x->allow_fd >= 0)
		close(x->allow_fd);
	if (x->config_fd >= 0)
		close(x->config_fd);
	if (x->prog_fd >= 0)
		close(x->prog_fd);
	free(x->percpu);
	free(x);
}

struct dp_xdp *dp_xdp_open(const char *ifname, const struct dp_xdp_params *p)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	__u32 ids[XDP_MAP_IDS_MAX], nids = 0;
	struct dp_xdp *x;
	int rc, ncpus;

	x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	x->prog_fd = x->config_fd = x->allow_fd = x->stats_fd = -1;
	ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0) {
		rc = ncpus ? ncpus : -EINVAL;
		goto free_xdp;
	}
	x->ncpus = (unsigned)ncpus;
	x->percpu = calloc(x->ncpus, sizeof(*x->percpu));
	if (!x->percpu) {
		rc = -ENOMEM;
		goto free_xdp;
	}
	x->ifindex = (int)if_nametoindex(ifname);
	if (!x->ifindex) {
		rc = -errno;
		goto free_xdp;
	}
	rc = bpf_xdp_query(x->ifindex, 0, &q);
	if (rc)
		goto free_xdp;
	rc = -ENOENT;
	for (size_t m = 0; m < sizeof(xdp_modes) / sizeof(xdp_modes[0]); m++) {
		__u32 id = mode_prog_id(&q, xdp_modes[m]);
		struct bpf_prog_info info;
		int fd;

		if (!id)
			continue;
		fd = prog_by_id(id, &info, ids, XDP_MAP_IDS_MAX);
		if (fd < 0) {
			rc = fd;
			continue;
		}
		if (strcmp(info.name, XDP_PROG_NAME)) {
			close(fd);
			continue;
		}
		x->mode = xdp_modes[m];
		x->prog_id = id;
		x->prog_fd = fd;
		nids = info.nr_map_ids < XDP_MAP_IDS_MAX ? info.nr_map_ids
							 : XDP_MAP_IDS_MAX;
		break;
	}
	if (x->prog_fd < 0)
		goto free_xdp;
	rc = maps_find(x, ids, nids);
	if (rc)
		goto free_xdp;
	rc = config_fill(x, p);
	if (rc)
		goto free_xdp;
	return x;

free_xdp:
	xdp_free(x);
	errno = -rc;
	return NULL;
}

int dp_xdp_counters(struct dp_xdp *x, uint64_t out[ML_XDP_STAT_MAX])
{
	for (__u32 i = 0; i < ML_XDP_STAT_MAX; i++) {
		if (bpf_map_lookup_elem(x->stats_fd, &i, x->percpu))
			return -errno;
		out[i] = 0;
		for (unsigned c = 0; c < x->ncpus; c++)
			out[i] += x->percpu[c];
	}
	return 0;
}

const char *dp_xdp_stat_name(unsigned i)
{
	return i < ML_XDP_STAT_MAX ? stat_names[i] : "unknown";
}

void dp_xdp_close(struct dp_xdp *x)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);

	if (!x)
		return;
	if (bpf_xdp_query(x->ifindex, 0, &q) == 0 &&
	    mode_prog_id(&q, x->mode) == x->prog_id)
		xdp_detach(x->ifindex, x->mode, x->prog_fd);
	xdp_free(x);
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

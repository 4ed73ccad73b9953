/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memlane-bench: per-core micro benchmarks (and, later, the load
 * generator), one subcommand each, dispatched from a table.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

struct bench_cmd {
	const char *name;
	const char *summary;
	int (*main)(int argc, char **argv);
};

static const struct bench_cmd bench_cmds[] = {
	{"engine", "one core, no network: request rate of the cache shard",
	 bench_engine_main},
	{"memory", "bytes per stored item, against memcached with --memcached",
	 bench_memory_main},
	{"load", "load generator for a memcached-protocol server",
	 bench_load_main},
	{"pktload", "memcached UDP load from a DPDK port (kernel bypass)",
	 bench_pktload_main},
	{"ring", "the node ring: lookup cost, load spread, keys moved",
	 bench_ring_main},
	{"bloom", "the Bloom filter: ns per query, false positives",
	 bench_bloom_main},
	{"cluster", "load on a cluster: one node, or every node by ketama",
	 bench_cluster_main},
	{"gossip",
	 "membership in the simulator: detection, false "
	 "positives, traffic, convergence",
	 bench_gossip_main},
	{"binary", "memcached's binary protocol under load, at a depth",
	 bench_binary_main},
};

static void bench_usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: memlane-bench <command> [options]\n"
		   "       memlane-bench <command> --help\n\ncommands:\n");
	for (i = 0; i < sizeof(bench_cmds) / sizeof(bench_cmds[0]); i++)
		fprintf(f, "  %-8s %s\n", bench_cmds[i].name,
			bench_cmds[i].summary);
}

int main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		bench_usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "help")) {
		bench_usage(stdout);
		return 0;
	}
	for (i = 0; i < sizeof(bench_cmds) / sizeof(bench_cmds[0]); i++) {
		if (!strcmp(argv[1], bench_cmds[i].name))
			return bench_cmds[i].main(argc - 1, argv + 1);
	}
	fprintf(stderr, "memlane-bench: unknown command '%s'\n", argv[1]);
	bench_usage(stderr);
	return 2;
}

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void bench_cpu_model(char *buf, size_t len)
{
	char line[256];
	FILE *f;

	snprintf(buf, len, "unknown CPU");
	f = fopen("/proc/cpuinfo", "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *v;

		if (strncmp(line, "model name", 10))
			continue;
		v = strchr(line, ':');
		if (!v)
			break;
		v++;
		while (*v == ' ' || *v == '\t')
			v++;
		v[strcspn(v, "\n")] = '\0';
		snprintf(buf, len, "%s", v);
		break;
	}
	fclose(f);
}

int bench_pin_cpu(int cpu)
{
	cpu_set_t set;

	if (cpu < 0) {
		if (sched_getaffinity(0, sizeof(set), &set))
			return -errno;
		for (cpu = CPU_SETSIZE - 1; cpu >= 0; cpu--) {
			if (CPU_ISSET(cpu, &set))
				break;
		}
		if (cpu < 0)
			return -ENODEV;
	}
	if (cpu >= CPU_SETSIZE)
		return -EINVAL;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		return -errno;
	return cpu;
}

int bench_rss(pid_t pid, uint64_t *rss)
{
	unsigned long long size, resident;
	char path[64];
	FILE *f;
	int n;

	if (pid == 0)
		snprintf(path, sizeof(path), "/proc/self/statm");
	else
		snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	n = fscanf(f, "%llu %llu", &size, &resident);
	fclose(f);
	if (n != 2)
		return -EIO;
	*rss = resident * (uint64_t)sysconf(_SC_PAGESIZE);
	return 0;
}

void bench_key_format(uint64_t idx, unsigned klen, char *buf)
{
	unsigned i = klen;

	memcpy(buf, "key:", 4);
	while (i > 4) {
		buf[--i] = (char)('0' + idx % 10);
		idx /= 10;
	}
}

int bench_dial(const char *ip, unsigned port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port)};
	int fd, one = 1;

	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
		return -EINVAL;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int bench_send_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int bench_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

int bench_parse_u64(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (*end) {
	case 'k':
		v *= 1000ull;
		end++;
		break;
	case 'M':
		v *= 1000000ull;
		end++;
		break;
	case 'G':
		v *= 1000000000ull;
		end++;
		break;
	}
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

int bench_parse_double(const char *s, double *out)
{
	char *end;
	double v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !(v >= 0.0))
		return -EINVAL;
	*out = v;
	return 0;
}

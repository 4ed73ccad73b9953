/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memlaned's command line: memcached's flags where they overlap, with
 * memcached's meaning, plus the few memlane adds.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane.h"

#define MIB (1024ull * 1024)

static const char usage[] =
	"usage: memlaned [options]\n"
	"  -p, --port=PORT         TCP port (default 11211, 0 = off)\n"
	"  -U, --udp-port=PORT     UDP port (default 0 = off)\n"
	"  -l, --listen=ADDR[,..]  addresses to listen on (default 127.0.0.1)\n"
	"  -m, --memory-limit=MB   memory for items, all cores together "
	"(default 64)\n"
	"  -t, --threads=N         worker cores (default: every CPU allowed)\n"
	"  -c, --conn-limit=N      most simultaneous connections (default "
	"1024)\n"
	"  -I, --max-item-size=S   largest item, with k or m suffix (default "
	"1m)\n"
	"  -M, --disable-evictions answer out of memory instead of evicting\n"
	"  -v, --verbose           say more (-vv: more still)\n"
	"      --idle-timeout=S    close a connection stalled on a partial\n"
	"                          request after S seconds (default 30, 0 = "
	"never)\n"
	"      --eal=ARGS          extra DPDK EAL arguments\n"
	"      --dataplane=KIND    socket (default) or dpdk: memcached UDP on\n"
	"                          the DPDK port the EAL arguments give\n"
	"      --ip=ADDR           dpdk: the IPv4 address the port answers\n"
	"                          for (ARP, ping, memcached UDP on -U)\n"
	"      --udp-allow=CIDR[,CIDR..]\n"
	"                          dpdk: the sources UDP is answered for\n"
	"                          (default: the interface's own subnets)\n"
	"  -h, --help              this text\n"
	"  -V, --version           the version\n";

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* A whole decimal number in [min, max]. */
static int parse_uint(const char *s, unsigned long long min,
		      unsigned long long max, unsigned long long *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* A size with an optional k, m or g suffix (powers of 1024); unit is the
 * multiplier of a bare number. */
static int parse_size(const char *s, unsigned long long unit,
		      unsigned long long *out)
{
	char *end;
	unsigned long long v, mul = unit;

	if (!s || !*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case '\0':
		break;
	case 'k':
	case 'K':
		mul = 1024;
		end++;
		break;
	case 'm':
	case 'M':
		mul = MIB;
		end++;
		break;
	case 'g':
	case 'G':
		mul = 1024 * MIB;
		end++;
		break;
	default:
		return -EINVAL;
	}
	if (*end || v > UINT64_MAX / mul)
		return -EINVAL;
	*out = v * mul;
	return 0;
}

static unsigned cpus_allowed(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set))
		return 1;
	return (unsigned)CPU_COUNT(&set);
}

static int parse_addrs(const char *arg, struct dp_config *cfg, char *err,
		       size_t errlen)
{
	char buf[DP_ADDR_MAX * 64], *save, *tok;
	unsigned char bin[16];

	if (strlen(arg) >= sizeof(buf))
		return fail(err, errlen, "-l: too long");
	strcpy(buf, arg);
	cfg->naddrs = 0;
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (cfg->naddrs == DP_ADDR_MAX)
			return fail(err, errlen, "-l: at most %d addresses",
				    DP_ADDR_MAX);
		if (inet_pton(AF_INET, tok, bin) != 1 &&
		    inet_pton(AF_INET6, tok, bin) != 1)
			return fail(err, errlen,
				    "-l: '%s' is not an IPv4 or IPv6 address",
				    tok);
		snprintf(cfg->addrs[cfg->naddrs++], sizeof(cfg->addrs[0]), "%s",
			 tok);
	}
	if (cfg->naddrs == 0)
		return fail(err, errlen, "-l: no address given");
	return 0;
}

int dp_config_parse(int argc, char **argv, struct dp_config *cfg, char *err,
		    size_t errlen, char *out, size_t outlen)
{
	enum { OPT_IDLE = 256, OPT_EAL, OPT_DATAPLANE, OPT_IP, OPT_ALLOW };
	static const struct option longopts[] = {
		{"port", required_argument, NULL, 'p'},
		{"udp-port", required_argument, NULL, 'U'},
		{"listen", required_argument, NULL, 'l'},
		{"memory-limit", required_argument, NULL, 'm'},
		{"threads", required_argument, NULL, 't'},
		{"conn-limit", required_argument, NULL, 'c'},
		{"max-item-size", required_argument, NULL, 'I'},
		{"disable-evictions", no_argument, NULL, 'M'},
		{"verbose", no_argument, NULL, 'v'},
		{"idle-timeout", required_argument, NULL, OPT_IDLE},
		{"eal", required_argument, NULL, OPT_EAL},
		{"dataplane", required_argument, NULL, OPT_DATAPLANE},
		{"ip", required_argument, NULL, OPT_IP},
		{"udp-allow", required_argument, NULL, OPT_ALLOW},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	unsigned long long v;
	bool cores_given = false;
	int c;

	memset(cfg, 0, sizeof(*cfg));
	cfg->tcp_port = 11211;
	cfg->naddrs = 1;
	strcpy(cfg->addrs[0], "127.0.0.1");
	cfg->mem_limit = 64 * MIB;
	cfg->ncores = cpus_allowed();
	if (cfg->ncores > DP_CORE_MAX)
		cfg->ncores = DP_CORE_MAX;
	cfg->conn_max = 1024;
	cfg->item_size_max = MIB;
	cfg->idle_timeout = 30;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":p:U:l:m:t:c:I:MvhV", longopts,
				NULL)) != -1) {
		switch (c) {
		case 'p':
		case 'U':
			if (parse_uint(optarg, 0, 65535, &v))
				return fail(err, errlen,
					    "-%c: '%s' is not a port (0-65535)",
					    c, optarg);
			*(c == 'p' ? &cfg->tcp_port : &cfg->udp_port) =
				(uint16_t)v;
			break;
		case 'l':
			if (parse_addrs(optarg, cfg, err, errlen))
				return -EINVAL;
			break;
		case 'm':
			if (parse_size(optarg, MIB, &v) || v < MIB)
				return fail(err, errlen,
					    "-m: '%s' is not a memory size of "
					    "at least 1 MB",
					    optarg);
			cfg->mem_limit = v;
			break;
		case 't':
			if (parse_uint(optarg, 1, DP_CORE_MAX, &v))
				return fail(err, errlen,
					    "-t: '%s' is not a core count "
					    "(1-%d)",
					    optarg, DP_CORE_MAX);
			cfg->ncores = (unsigned)v;
			cores_given = true;
			break;
		case 'c':
			if (parse_uint(optarg, 1, 1000000, &v))
				return fail(err, errlen,
					    "-c: '%s' is not a connection "
					    "count (1-1000000)",
					    optarg);
			cfg->conn_max = (unsigned)v;
			break;
		case 'I':
			if (parse_size(optarg, 1, &v) || v < 1024 ||
			    v > 1024 * MIB)
				return fail(err, errlen,
					    "-I: '%s' is not an item size "
					    "between 1k and 1024m",
					    optarg);
			cfg->item_size_max = v;
			break;
		case 'M':
			cfg->no_evict = true;
			break;
		case 'v':
			cfg->verbose++;
			break;
		case OPT_IDLE:
			if (parse_uint(optarg, 0, 86400 * 365, &v))
				return fail(err, errlen,
					    "--idle-timeout: '%s' is not a "
					    "number of seconds",
					    optarg);
			cfg->idle_timeout = (unsigned)v;
			break;
		case OPT_EAL:
			if (strlen(optarg) >= sizeof(cfg->eal_extra))
				return fail(err, errlen, "--eal: too long");
			strcpy(cfg->eal_extra, optarg);
			break;
		case OPT_DATAPLANE:
			if (strcmp(optarg, "socket") == 0)
				cfg->dataplane = DP_BACKEND_SOCKET;
			else if (strcmp(optarg, "dpdk") == 0)
				cfg->dataplane = DP_BACKEND_DPDK;
			else
				return fail(err, errlen,
					    "--dataplane: '%s' is not socket "
					    "or dpdk",
					    optarg);
			break;
		case OPT_IP: {
			struct in_addr a;

			if (inet_pton(AF_INET, optarg, &a) != 1)
				return fail(err, errlen,
					    "--ip: '%s' is not an IPv4 address",
					    optarg);
			snprintf(cfg->ip, sizeof(cfg->ip), "%s", optarg);
			break;
		}
		case OPT_ALLOW:
			if (strlen(optarg) >= sizeof(cfg->udp_allow))
				return fail(err, errlen,
					    "--udp-allow: too long");
			strcpy(cfg->udp_allow, optarg);
			break;
		case 'h':
			snprintf(out, outlen, "%s", usage);
			return 1;
		case 'V':
			snprintf(out, outlen, "memlaned %s\n", MEMLANE_VERSION);
			return 1;
		case ':':
			return fail(err, errlen, "option '%s' needs a value",
				    argv[optind - 1]);
		default:
			if (optopt)
				return fail(err, errlen,
					    "unknown option '-%c' (see --help)",
					    optopt);
			return fail(err, errlen,
				    "unknown option '%s' (see --help)",
				    argv[optind - 1]);
		}
	}
	if (optind < argc)
		return fail(err, errlen, "unexpected argument '%s'",
			    argv[optind]);
	if (cfg->item_size_max > cfg->mem_limit / 2)
		return fail(err, errlen,
			    "-I: an item may be at most half of -m");
	/* every core's shard must hold a few of the largest items: without
	 * -t, use fewer cores rather than refuse */
	while (!cores_given && cfg->ncores > 1 &&
	       cfg->mem_limit / cfg->ncores < 4 * cfg->item_size_max)
		cfg->ncores--;
	if (cfg->mem_limit / cfg->ncores < 4 * cfg->item_size_max)
		return fail(err, errlen,
			    "-m: each of the %u cores needs room for four "
			    "items of -I; give more memory or fewer cores",
			    cfg->ncores);
	if (cfg->tcp_port == 0 && cfg->udp_port == 0)
		return fail(err, errlen, "-p 0 and -U 0: nothing to serve");
	if (cfg->dataplane == DP_BACKEND_DPDK && !cfg->ip[0])
		return fail(err, errlen,
			    "--dataplane dpdk needs --ip, the address the port "
			    "answers for");
	if (cfg->dataplane == DP_BACKEND_DPDK && !cfg->udp_port)
		return fail(
			err, errlen,
			"--dataplane dpdk needs -U, the memcached UDP port");
	if (cfg->dataplane != DP_BACKEND_DPDK &&
	    (cfg->ip[0] || cfg->udp_allow[0]))
		return fail(err, errlen,
			    "--ip and --udp-allow go with --dataplane dpdk");
	return 0;
}

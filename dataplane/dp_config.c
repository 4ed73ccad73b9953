/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memlaned's command line: memcached's flags where they overlap, with
 * memcached's meaning, plus the few memlane adds.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stddef.h>
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
	"      --self=HOST:PORT    this node as clients and peers name it\n"
	"                          (default: the first -l address and -p)\n"
	"      --peers=HOST:PORT[:WEIGHT][,..]\n"
	"                          the cluster's members (this node may be\n"
	"                          among them); keys are routed to their\n"
	"                          owner by libmemcached's weighted ketama\n"
	"      --weight=N          this node's weight on the ring (default "
	"1)\n"
	"      --forward-timeout=MS\n"
	"                          a forwarded request that gets no reply in\n"
	"                          MS gets SERVER_ERROR (default 1000)\n"
	"      --admin=ADDR:PORT|off\n"
	"                          the HTTP admin endpoint (default\n"
	"                          127.0.0.1 and -p + 1000)\n"
	"      --admin-token=TOKEN the bearer token the admin endpoint asks\n"
	"                          for (required off loopback; also from\n"
	"                          MEMLANE_ADMIN_TOKEN)\n"
	"      --gossip=ADDR:PORT  membership by gossip on this UDP and TCP\n"
	"                          port (default with --seeds: the first -l\n"
	"                          address and -p + 2000)\n"
	"      --seeds=HOST:PORT[,..]\n"
	"                          members to join through (their gossip\n"
	"                          ports); not with --peers\n"
	"      --cluster-key-file=FILE\n"
	"                          the cluster's shared key (16-64 bytes):\n"
	"                          every gossip message is signed with it;\n"
	"                          required to gossip off loopback\n"
	"      --probe-interval=MS --probe-timeout=MS --pushpull-interval=MS\n"
	"      --suspicion-mult=N  --indirect-probes=N\n"
	"                          gossip timers (1000, 500, 30000, 4, 3)\n"
	"      --handoff-window=S  for S seconds after the ring changes, a\n"
	"                          new owner that misses a key fetches it\n"
	"                          from the previous one, which keeps what\n"
	"                          it lost that long (default 30; 0: off)\n"
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

/* HOST:PORT, with an optional :WEIGHT when weight is not NULL. */
static int parse_member(const char *what, const char *arg, struct dp_member *m,
			bool with_weight, char *err, size_t errlen)
{
	char buf[DP_HOST_MAX + 32], *port, *weight = NULL;
	unsigned long long v;

	if (strlen(arg) >= sizeof(buf))
		return fail(err, errlen, "%s: '%s' is too long", what, arg);
	strcpy(buf, arg);
	port = strchr(buf, ':');
	if (!port || port == buf)
		return fail(err, errlen, "%s: '%s' is not HOST:PORT", what,
			    arg);
	*port++ = '\0';
	if (with_weight && (weight = strchr(port, ':')))
		*weight++ = '\0';
	if (parse_uint(port, 1, 65535, &v))
		return fail(err, errlen, "%s: '%s' has no port (1-65535)", what,
			    arg);
	if (strlen(buf) >= DP_HOST_MAX ||
	    strspn(buf, "abcdefghijklmnopqrstuvwxyz"
			"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			"0123456789.-_") != strlen(buf))
		return fail(err, errlen,
			    "%s: '%s' is not a host name or IPv4 "
			    "address",
			    what, buf);
	memset(m, 0, sizeof(*m));
	strcpy(m->host, buf);
	m->port = (uint16_t)v;
	m->weight = 1;
	if (weight) {
		if (parse_uint(weight, 0, 1000000, &v))
			return fail(err, errlen,
				    "%s: '%s' has a weight that is not a "
				    "number (0-1000000)",
				    what, arg);
		m->weight = (uint32_t)v;
	}
	return 0;
}

static bool member_same(const struct dp_member *a, const struct dp_member *b)
{
	return a->port == b->port && strcmp(a->host, b->host) == 0;
}

static int parse_peers(const char *arg, struct dp_config *cfg, char *err,
		       size_t errlen)
{
	char *buf = strdup(arg), *save, *tok;
	int rc = 0;

	if (!buf)
		return fail(err, errlen, "--peers: out of memory");
	cfg->nmembers = 0;
	for (tok = strtok_r(buf, ",", &save); tok && !rc;
	     tok = strtok_r(NULL, ",", &save)) {
		struct dp_member m;

		if (cfg->nmembers == DP_NODE_MAX) {
			rc = fail(err, errlen, "--peers: at most %d members",
				  DP_NODE_MAX);
			break;
		}
		if ((rc = parse_member("--peers", tok, &m, true, err, errlen)))
			break;
		for (unsigned i = 0; i < cfg->nmembers; i++)
			if (member_same(&cfg->members[i], &m))
				rc = fail(err, errlen,
					  "--peers: %s:%u is given twice",
					  m.host, m.port);
		cfg->members[cfg->nmembers++] = m;
	}
	free(buf);
	if (!rc && cfg->nmembers == 0)
		rc = fail(err, errlen, "--peers: no member given");
	return rc;
}

/* The cluster from --self, --peers and --weight: this node is a member,
 * added when --peers leaves it out. */
static int cluster_finish(struct dp_config *cfg, const char *self_arg,
			  long weight, char *err, size_t errlen)
{
	struct dp_member self;
	unsigned i;

	if (self_arg) {
		if (parse_member("--self", self_arg, &self, false, err, errlen))
			return -EINVAL;
	} else {
		memset(&self, 0, sizeof(self));
		snprintf(self.host, sizeof(self.host), "%s", cfg->addrs[0]);
		self.port = cfg->tcp_port;
		self.weight = 1;
		if (cfg->nmembers && !self.port)
			return fail(err, errlen,
				    "--peers with -p 0: give --self, the "
				    "address peers forward to");
	}
	for (i = 0; i < cfg->nmembers; i++)
		if (member_same(&cfg->members[i], &self))
			break;
	if (i == cfg->nmembers && cfg->nmembers && !self_arg)
		return fail(err, errlen,
			    "--peers: this node (%s:%u) is not among them; "
			    "give --self HOST:PORT as the peers name it",
			    self.host, self.port);
	if (i == cfg->nmembers) {
		if (cfg->nmembers == DP_NODE_MAX)
			return fail(err, errlen, "--peers: at most %d members",
				    DP_NODE_MAX);
		cfg->members[cfg->nmembers++] = self;
	}
	cfg->self = i;
	if (weight >= 0)
		cfg->members[i].weight = (uint32_t)weight;
	return 0;
}

/* The cluster key: the file's bytes, a final newline left out. */
static int read_key(const char *path, struct dp_config *cfg, char *err,
		    size_t errlen)
{
	uint8_t buf[sizeof(cfg->cluster_key) + 2];
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f)
		return fail(err, errlen, "--cluster-key-file: %s: %s", path,
			    strerror(errno));
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	if (n && buf[n - 1] == '\n')
		n--;
	if (n && buf[n - 1] == '\r')
		n--;
	if (n < 16 || n > sizeof(cfg->cluster_key))
		return fail(err, errlen,
			    "--cluster-key-file: %s: the key is 16 to %zu "
			    "bytes, this one %s",
			    path, sizeof(cfg->cluster_key),
			    n < 16 ? "shorter" : "longer");
	memcpy(cfg->cluster_key, buf, n);
	cfg->cluster_keylen = n;
	return 0;
}

static bool loopback(const char *host)
{
	struct in_addr a;

	return (inet_pton(AF_INET, host, &a) == 1 &&
		(ntohl(a.s_addr) >> 24) == 127) ||
	       !strcmp(host, "localhost");
}

/* Membership by gossip: the endpoint, and no gossip off loopback
 * without a key. */
static int gossip_finish(struct dp_config *cfg, char *err, size_t errlen)
{
	char seeds[sizeof(cfg->seeds)], *save = NULL;

	if (!cfg->gossip_port) {
		unsigned port = cfg->tcp_port + 2000u;

		if (!cfg->tcp_port || port > 65535)
			return fail(err, errlen,
				    "give --gossip ADDR:PORT (-p + 2000 is no "
				    "port)");
		snprintf(cfg->gossip_addr, sizeof(cfg->gossip_addr), "%s",
			 cfg->addrs[0]);
		cfg->gossip_port = (uint16_t)port;
	}
	if (cfg->cluster_keylen)
		return 0;
	if (!loopback(cfg->gossip_addr))
		return fail(err, errlen,
			    "--gossip on %s is off loopback: give "
			    "--cluster-key-file",
			    cfg->gossip_addr);
	strcpy(seeds, cfg->seeds);
	for (char *t = strtok_r(seeds, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		struct dp_member m;

		if (parse_member("--seeds", t, &m, false, err, errlen))
			return -EINVAL;
		if (!loopback(m.host))
			return fail(err, errlen,
				    "--seeds: %s is off loopback: give "
				    "--cluster-key-file",
				    m.host);
	}
	return 0;
}

static int parse_admin(const char *arg, struct dp_config *cfg, char *err,
		       size_t errlen)
{
	struct dp_member m;
	struct in_addr a;

	cfg->admin_given = true;
	if (strcmp(arg, "off") == 0) {
		cfg->admin_off = true;
		return 0;
	}
	if (parse_member("--admin", arg, &m, false, err, errlen))
		return -EINVAL;
	if (inet_pton(AF_INET, m.host, &a) != 1)
		return fail(err, errlen, "--admin: '%s' is not an IPv4 address",
			    m.host);
	cfg->admin_off = false;
	strcpy(cfg->admin_addr, m.host);
	cfg->admin_port = m.port;
	return 0;
}

int dp_config_parse(int argc, char **argv, struct dp_config *cfg, char *err,
		    size_t errlen, char *out, size_t outlen)
{
	enum {
		OPT_IDLE = 256,
		OPT_EAL,
		OPT_DATAPLANE,
		OPT_IP,
		OPT_ALLOW,
		OPT_SELF,
		OPT_PEERS,
		OPT_WEIGHT,
		OPT_FWD_TIMEOUT,
		OPT_ADMIN,
		OPT_ADMIN_TOKEN,
		OPT_GOSSIP,
		OPT_SEEDS,
		OPT_KEY_FILE,
		OPT_PROBE_INTERVAL,
		OPT_PROBE_TIMEOUT,
		OPT_PUSHPULL,
		OPT_SUSPICION,
		OPT_INDIRECT,
		OPT_HANDOFF,
	};
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
		{"self", required_argument, NULL, OPT_SELF},
		{"peers", required_argument, NULL, OPT_PEERS},
		{"weight", required_argument, NULL, OPT_WEIGHT},
		{"forward-timeout", required_argument, NULL, OPT_FWD_TIMEOUT},
		{"admin", required_argument, NULL, OPT_ADMIN},
		{"admin-token", required_argument, NULL, OPT_ADMIN_TOKEN},
		{"gossip", required_argument, NULL, OPT_GOSSIP},
		{"seeds", required_argument, NULL, OPT_SEEDS},
		{"cluster-key-file", required_argument, NULL, OPT_KEY_FILE},
		{"probe-interval", required_argument, NULL, OPT_PROBE_INTERVAL},
		{"probe-timeout", required_argument, NULL, OPT_PROBE_TIMEOUT},
		{"pushpull-interval", required_argument, NULL, OPT_PUSHPULL},
		{"suspicion-mult", required_argument, NULL, OPT_SUSPICION},
		{"indirect-probes", required_argument, NULL, OPT_INDIRECT},
		{"handoff-window", required_argument, NULL, OPT_HANDOFF},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	unsigned long long v;
	bool cores_given = false;
	const char *self_arg = NULL, *env_token;
	long weight = -1;
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
	cfg->forward_timeout_ms = 1000;
	cfg->handoff_window_s = 30;
	strcpy(cfg->admin_addr, "127.0.0.1");
	env_token = getenv("MEMLANE_ADMIN_TOKEN");
	if (env_token && strlen(env_token) < sizeof(cfg->admin_token))
		strcpy(cfg->admin_token, env_token);

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
		case OPT_SELF:
			self_arg = optarg;
			break;
		case OPT_PEERS:
			if (parse_peers(optarg, cfg, err, errlen))
				return -EINVAL;
			break;
		case OPT_WEIGHT:
			if (parse_uint(optarg, 0, 1000000, &v))
				return fail(err, errlen,
					    "--weight: '%s' is not a weight "
					    "(0-1000000)",
					    optarg);
			weight = (long)v;
			break;
		case OPT_FWD_TIMEOUT:
			if (parse_uint(optarg, 1, 600000, &v))
				return fail(err, errlen,
					    "--forward-timeout: '%s' is not a "
					    "number of milliseconds "
					    "(1-600000)",
					    optarg);
			cfg->forward_timeout_ms = (unsigned)v;
			break;
		case OPT_ADMIN:
			if (parse_admin(optarg, cfg, err, errlen))
				return -EINVAL;
			break;
		case OPT_ADMIN_TOKEN:
			if (!*optarg ||
			    strlen(optarg) >= sizeof(cfg->admin_token))
				return fail(err, errlen,
					    "--admin-token: 1 to %d characters",
					    DP_TOKEN_MAX - 1);
			strcpy(cfg->admin_token, optarg);
			break;
		case OPT_GOSSIP: {
			struct dp_member m;

			if (parse_member("--gossip", optarg, &m, false, err,
					 errlen))
				return -EINVAL;
			snprintf(cfg->gossip_addr, sizeof(cfg->gossip_addr),
				 "%s", m.host);
			cfg->gossip_port = m.port;
			cfg->gossip = true;
			break;
		}
		case OPT_SEEDS:
			if (strlen(optarg) >= sizeof(cfg->seeds))
				return fail(err, errlen, "--seeds: too long");
			strcpy(cfg->seeds, optarg);
			cfg->gossip = true;
			break;
		case OPT_KEY_FILE:
			if (read_key(optarg, cfg, err, errlen))
				return -EINVAL;
			break;
		case OPT_PROBE_INTERVAL:
		case OPT_PROBE_TIMEOUT:
		case OPT_PUSHPULL:
		case OPT_SUSPICION:
		case OPT_INDIRECT:
		case OPT_HANDOFF: {
			static const struct {
				int opt;
				const char *name;
				unsigned long lo, hi;
				size_t off;
			} knobs[] = {
				{OPT_PROBE_INTERVAL, "--probe-interval", 10,
				 600000,
				 offsetof(struct dp_config, probe_interval_ms)},
				{OPT_PROBE_TIMEOUT, "--probe-timeout", 5,
				 600000,
				 offsetof(struct dp_config, probe_timeout_ms)},
				{OPT_PUSHPULL, "--pushpull-interval", 100,
				 3600000,
				 offsetof(struct dp_config,
					  pushpull_interval_ms)},
				{OPT_SUSPICION, "--suspicion-mult", 1, 100,
				 offsetof(struct dp_config, suspicion_mult)},
				{OPT_INDIRECT, "--indirect-probes", 1, 16,
				 offsetof(struct dp_config, indirect_probes)},
				{OPT_HANDOFF, "--handoff-window", 0, 3600,
				 offsetof(struct dp_config, handoff_window_s)},
			};

			for (size_t k = 0; k < sizeof(knobs) / sizeof(knobs[0]);
			     k++) {
				if (knobs[k].opt != c)
					continue;
				if (parse_uint(optarg, knobs[k].lo, knobs[k].hi,
					       &v))
					return fail(err, errlen,
						    "%s: '%s' is not a number "
						    "in %lu-%lu",
						    knobs[k].name, optarg,
						    knobs[k].lo, knobs[k].hi);
				*(unsigned *)((char *)cfg + knobs[k].off) =
					(unsigned)v;
			}
			/* a gossip timer asks for gossip; the window is
			 * only used with it */
			cfg->gossip |= c != OPT_HANDOFF;
			break;
		}
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
	if (cfg->gossip && cfg->nmembers)
		return fail(err, errlen,
			    "--peers is a fixed cluster; --seeds and --gossip "
			    "make one by gossip: give one or the other");
	if (cluster_finish(cfg, self_arg, weight, err, errlen))
		return -EINVAL;
	if (cfg->gossip && gossip_finish(cfg, err, errlen))
		return -EINVAL;
	if (!cfg->admin_given) {
		/* the default endpoint: loopback, beside the memcached port */
		unsigned port =
			(cfg->tcp_port ? cfg->tcp_port : cfg->udp_port) + 1000u;

		cfg->admin_off = port == 1000 || port > 65535;
		cfg->admin_port = (uint16_t)port;
	}
	if (!cfg->admin_off && !cfg->admin_token[0] &&
	    strncmp(cfg->admin_addr, "127.", 4) != 0)
		return fail(err, errlen,
			    "--admin on %s is off loopback: give "
			    "--admin-token (or MEMLANE_ADMIN_TOKEN)",
			    cfg->admin_addr);
	return 0;
}

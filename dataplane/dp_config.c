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
#include <sysexits.h>

#include "dataplane.h"
#include "dp_options.h"

#define MIB (1024ull * 1024)

static const char usage[] =
	"usage: memlaned [options]\n"
	"memcached's flags, with memcached's meaning:\n"
	"  -p, --port=PORT         TCP port (default 11211, 0 = off)\n"
	"  -U, --udp-port=PORT     UDP port (default 0 = off)\n"
	"  -s, --unix-socket=FILE  a Unix-domain socket instead of TCP and "
	"UDP\n"
	"  -a, --unix-mask=MASK    its access mask, in octal (default 700)\n"
	"  -A, --enable-shutdown   serve the shutdown command\n"
	"  -l, --listen=ADDR[,..]  addresses to listen on (default 127.0.0.1)\n"
	"  -d, --daemon            run in the background\n"
	"  -r, --enable-coredumps  raise the core file limit to its most\n"
	"  -u, --user=USER         the identity to take when run as root\n"
	"  -m, --memory-limit=MB   memory for items, all cores together "
	"(default 64)\n"
	"  -M, --disable-evictions answer out of memory instead of evicting\n"
	"  -c, --conn-limit=N      most simultaneous connections (default "
	"1024)\n"
	"  -k, --lock-memory       lock all memory in RAM (mlockall)\n"
	"  -v, --verbose           say more (-vv: more still)\n"
	"  -h, --help              this text\n"
	"  -i, --license           the license\n"
	"  -V, --version           the version\n"
	"  -P, --pidfile=FILE      write the process id to FILE\n"
	"  -f, --slab-growth-factor=F, -n, --slab-min-size=N\n"
	"                          accepted; memlane has no slab classes\n"
	"  -L, --enable-largepages item memory on transparent huge pages\n"
	"  -D CHAR                 per-prefix stats (stats detail) on, with\n"
	"                          CHAR ending the prefix\n"
	"  -t, --threads=N         worker cores (default: every CPU allowed)\n"
	"  -R, --max-reqs-per-event=N\n"
	"                          requests run per connection before the\n"
	"                          core turns to the next (default 20)\n"
	"  -C, --disable-cas       no CAS values (they read 0)\n"
	"  -b, --listen-backlog=N  the listen queue (default 1024)\n"
	"  -B, --protocol=NAME     ascii, binary or auto (default)\n"
	"  -I, --max-item-size=S   largest item, with k or m suffix (default "
	"1m)\n"
	"  -S, --enable-sasl       refused: use -Y or TLS client certificates\n"
	"  -F, --disable-flush-all refuse flush_all\n"
	"  -X, --disable-dumping   refuse stats cachedump and lru_crawler "
	"metadump\n"
	"  -W, --disable-watch     refuse watch\n"
	"  -Y, --auth-file=FILE    text-protocol authentication, user:pass "
	"lines\n"
	"  -e, --memory-file=FILE  refused: memlane keeps items in RAM only\n"
	"  -Z, --enable-ssl        TLS on TCP (-o ssl_chain_cert, ssl_key,\n"
	"                          ssl_ca_cert, ssl_verify_mode...); -l\n"
	"                          notls:ADDR[:PORT] stays plain\n"
	"  -N, --napi_ids=N        accepted; memlane spreads by SO_REUSEPORT\n"
	"  -o, --extended=OPT,...  memcached's extended options: "
	"idle_timeout,\n"
	"                          maxconns_fast, hashpower, no_lru_crawler,\n"
	"                          read_buf_mem_limit, modern, ssl_*... act;\n"
	"                          slab and LRU tuning is accepted with a\n"
	"                          warning\n"
	"memlane's own options:\n"
	"      --config=FILE       options from FILE first, one per line, as\n"
	"                          Debian's /etc/memcached.conf has them\n"
	"      --foreground        stay in the foreground, -d or not\n"
	"      --keep-network      with -s, serve -p and -U as well\n"
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
	"                          it lost that long (default 30; 0: off)\n";

static const char license[] =
	"memlane is distributed under the BSD 3-Clause license: see the\n"
	"LICENSE file of its source, or /usr/share/doc/memlane/copyright.\n";

/* A bad value: memcached's EX_USAGE. */
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EX_USAGE;
}

/* Where memcached exits with 1 instead: an unknown flag, a count it
 * checks itself (-t, -c, -R, -N). */
static int fail1(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -DP_EXIT_FAILURE;
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
	strcpy(cfg->listen_arg, arg);
	cfg->naddrs = 0;
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *colon;
		bool notls = strncmp(tok, "notls:", 6) == 0;
		unsigned long long port = 0;

		if (cfg->naddrs == DP_ADDR_MAX)
			return fail(err, errlen, "-l: at most %d addresses",
				    DP_ADDR_MAX);
		/* memcached's [notls:]ADDR[:PORT]; an IPv6 address with a
		 * port in brackets */
		if (notls)
			tok += 6;
		if (tok[0] == '[' && (colon = strstr(tok, "]:"))) {
			*colon = '\0';
			if (parse_uint(colon + 2, 1, 65535, &port))
				return fail(err, errlen, "-l: '%s' has no port",
					    colon + 2);
			tok++;
		} else if ((colon = strchr(tok, ':')) &&
			   !strchr(colon + 1, ':')) {
			*colon = '\0';
			if (parse_uint(colon + 1, 1, 65535, &port))
				return fail(err, errlen, "-l: '%s' has no port",
					    colon + 1);
		}
		cfg->addr_port[cfg->naddrs] = (uint16_t)port;
		cfg->addr_notls[cfg->naddrs] = notls;
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
			return -EX_USAGE;
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
			return -EX_USAGE;
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
		return -EX_USAGE;
	if (inet_pton(AF_INET, m.host, &a) != 1)
		return fail(err, errlen, "--admin: '%s' is not an IPv4 address",
			    m.host);
	cfg->admin_off = false;
	strcpy(cfg->admin_addr, m.host);
	cfg->admin_port = m.port;
	return 0;
}

static void set_defaults(struct dp_config *cfg)
{
	const char *env_token = getenv("MEMLANE_ADMIN_TOKEN");

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
	if (env_token && strlen(env_token) < sizeof(cfg->admin_token))
		strcpy(cfg->admin_token, env_token);
	/* memcached's defaults */
	cfg->unix_mask = 0700;
	cfg->backlog = 1024;
	cfg->reqs_per_event = 20;
	cfg->maxconns_fast = true;
	cfg->lru_crawler = true;
	cfg->lru_crawler_sleep = 100;
	cfg->watcher_logbuf_kb = 256;
	cfg->worker_logbuf_kb = 64;
	cfg->ssl_min_version = 2;
	cfg->ssl_wbuf_kb = 16;
}

/* One of memcached's flags that takes a count it checks itself. */
static int count_arg(int c, const char *arg, unsigned long long *v, char *err,
		     size_t errlen)
{
	static const struct {
		char c;
		const char *msg;
	} counts[] = {
		{'t', "Number of threads must be greater than 0"},
		{'c', "Maximum connections must be greater than 0"},
		{'R', "Number of requests per event must be greater than 0"},
		{'N', "Maximum number of NAPI IDs must be greater than 0"},
		{'n', "Chunk size must be greater than 0"},
	};

	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
		if (counts[i].c == c && parse_uint(arg, 1, 1000000, v))
			return fail1(err, errlen, "-%c %s: %s", c, arg,
				     counts[i].msg);
	return 0;
}

static int parse_args(int argc, char **argv, struct dp_config *cfg, char *err,
		      size_t errlen, char *out, size_t outlen)
{
	enum {
		OPT_IDLE = 256,
		OPT_CONFIG,
		OPT_FOREGROUND,
		OPT_KEEP_NETWORK,
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
		{"unix-socket", required_argument, NULL, 's'},
		{"unix-mask", required_argument, NULL, 'a'},
		{"enable-shutdown", no_argument, NULL, 'A'},
		{"daemon", no_argument, NULL, 'd'},
		{"enable-coredumps", no_argument, NULL, 'r'},
		{"user", required_argument, NULL, 'u'},
		{"lock-memory", no_argument, NULL, 'k'},
		{"license", no_argument, NULL, 'i'},
		{"pidfile", required_argument, NULL, 'P'},
		{"slab-growth-factor", required_argument, NULL, 'f'},
		{"slab-min-size", required_argument, NULL, 'n'},
		{"enable-largepages", no_argument, NULL, 'L'},
		{"max-reqs-per-event", required_argument, NULL, 'R'},
		{"disable-cas", no_argument, NULL, 'C'},
		{"listen-backlog", required_argument, NULL, 'b'},
		{"protocol", required_argument, NULL, 'B'},
		{"enable-sasl", no_argument, NULL, 'S'},
		{"disable-flush-all", no_argument, NULL, 'F'},
		{"disable-dumping", no_argument, NULL, 'X'},
		{"disable-watch", no_argument, NULL, 'W'},
		{"auth-file", required_argument, NULL, 'Y'},
		{"memory-file", required_argument, NULL, 'e'},
		{"enable-ssl", no_argument, NULL, 'Z'},
		{"napi_ids", required_argument, NULL, 'N'},
		{"extended", required_argument, NULL, 'o'},
		{"config", required_argument, NULL, OPT_CONFIG},
		{"foreground", no_argument, NULL, OPT_FOREGROUND},
		{"keep-network", no_argument, NULL, OPT_KEEP_NETWORK},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	unsigned long long v;
	bool cores_given = false;
	const char *self_arg = NULL;
	long weight = -1;
	int c, rc;

	optind = 0; /* glibc: start over, whatever parsed before */
	opterr = 0;
	while ((c = getopt_long(argc, argv,
				":p:U:s:a:Al:dru:m:Mc:kvhiVP:f:n:LD:t:R:Cb:B:I:"
				"SFXWY:e:ZN:o:",
				longopts, NULL)) != -1) {
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
				return -EX_USAGE;
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
			if ((rc = count_arg(c, optarg, &v, err, errlen)))
				return rc;
			if (parse_uint(optarg, 1, DP_CORE_MAX, &v))
				return fail1(err, errlen,
					     "-t: '%s' is not a core count "
					     "(1-%d)",
					     optarg, DP_CORE_MAX);
			cfg->ncores = (unsigned)v;
			cores_given = true;
			break;
		case 'c':
			if (parse_uint(optarg, 1, 1000000, &v))
				return fail1(err, errlen,
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
				return -EX_USAGE;
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
				return -EX_USAGE;
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
				return -EX_USAGE;
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
				return -EX_USAGE;
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
		case 's':
			if (!*optarg ||
			    strlen(optarg) >= sizeof(cfg->unix_path))
				return fail(err, errlen,
					    "-s: a socket path of 1 to %zu "
					    "bytes",
					    sizeof(cfg->unix_path) - 1);
			strcpy(cfg->unix_path, optarg);
			break;
		case 'a': {
			char *end;
			unsigned long m;

			errno = 0;
			m = strtoul(optarg, &end, 8);
			if (!*optarg || *end || errno || m > 0777)
				return fail(err, errlen,
					    "-a: '%s' is not an octal mode",
					    optarg);
			cfg->unix_mask = (unsigned)m;
			break;
		}
		case 'A':
			cfg->shutdown_cmd = true;
			break;
		case 'd':
			cfg->daemonize = true;
			break;
		case 'r':
			cfg->coredumps = true;
			break;
		case 'u':
			if (!*optarg || strlen(optarg) >= sizeof(cfg->user))
				return fail(err, errlen, "-u: a user name");
			strcpy(cfg->user, optarg);
			break;
		case 'k':
			cfg->lock_memory = true;
			break;
		case 'P':
			if (!*optarg || strlen(optarg) >= sizeof(cfg->pidfile))
				return fail(err, errlen, "-P: a file name");
			strcpy(cfg->pidfile, optarg);
			break;
		case 'f': {
			char *end;
			double f = strtod(optarg, &end);

			if (*end || !(f > 1.0))
				return fail1(err, errlen,
					     "-f %s: Factor must be greater "
					     "than 1",
					     optarg);
			dp_options_warn(cfg, "memlaned: warning: -f has no "
					     "effect: memlane has no slab "
					     "classes, items take their own "
					     "size");
			break;
		}
		case 'n':
		case 'N':
			if ((rc = count_arg(c, optarg, &v, err, errlen)))
				return rc;
			dp_options_warn(cfg, "%s",
					c == 'n' ? "memlaned: warning: -n has "
						   "no effect: memlane has no "
						   "slab classes, items take "
						   "their own size"
						 : "memlaned: warning: -N has "
						   "no effect: connections "
						   "spread over the cores by "
						   "SO_REUSEPORT");
			break;
		case 'L':
			cfg->largepages = true;
			break;
		case 'D':
			/* as memcached: the first character */
			if (!optarg[0])
				return fail(err, errlen,
					    "-D: give the prefix delimiter");
			cfg->detail_delim = optarg[0];
			break;
		case 'R':
			if ((rc = count_arg(c, optarg, &v, err, errlen)))
				return rc;
			cfg->reqs_per_event = (unsigned)v;
			break;
		case 'C':
			cfg->no_cas = true;
			break;
		case 'b':
			if (parse_uint(optarg, 1, 65535, &v))
				return fail(err, errlen,
					    "-b: '%s' is not a backlog "
					    "(1-65535)",
					    optarg);
			cfg->backlog = (unsigned)v;
			break;
		case 'B':
			if (!strcmp(optarg, "auto"))
				cfg->binding = DP_BIND_AUTO;
			else if (!strcmp(optarg, "ascii"))
				cfg->binding = DP_BIND_ASCII;
			else if (!strcmp(optarg, "binary"))
				cfg->binding = DP_BIND_BINARY;
			else
				return fail(err, errlen,
					    "Invalid value for binding "
					    "protocol: %s -- should be one of "
					    "auto, binary, or ascii",
					    optarg);
			break;
		case 'S':
			return fail(err, errlen,
				    "-S: This server is not built with SASL "
				    "support; use -Y or TLS client "
				    "certificates");
		case 'F':
			cfg->no_flush = true;
			break;
		case 'X':
			cfg->no_dump = true;
			break;
		case 'W':
			cfg->no_watch = true;
			break;
		case 'Y': {
			FILE *f = fopen(optarg, "r");

			if (!f || strlen(optarg) >= sizeof(cfg->auth_file)) {
				int e = errno;

				if (f)
					fclose(f);
				return fail1(err, errlen,
					     "Could not open authfile [%s] for "
					     "reading: %s",
					     optarg, strerror(e));
			}
			fclose(f);
			strcpy(cfg->auth_file, optarg);
			break;
		}
		case 'e':
			return fail(err, errlen,
				    "-e: memlane keeps items in memory only; "
				    "a memory file is not served");
		case 'Z':
			cfg->ssl = true;
			break;
		case 'o':
			if ((rc = dp_options_extended(cfg, optarg, err,
						      errlen)))
				return rc;
			break;
		case OPT_CONFIG:
			break; /* read before the rest, by dp_args_build() */
		case OPT_FOREGROUND:
			cfg->foreground = true;
			break;
		case OPT_KEEP_NETWORK:
			cfg->keep_network = true;
			break;
		case 'i':
			snprintf(out, outlen, "%s", license);
			return 1;
		case 'h':
			snprintf(out, outlen, "%s", usage);
			return 1;
		case 'V':
			snprintf(out, outlen, "memlaned %s\n", MEMLANE_VERSION);
			return 1;
		case ':':
			return fail1(err, errlen, "option '%s' needs a value",
				     argv[optind - 1]);
		default:
			if (optopt)
				return fail1(err, errlen,
					     "unknown option '-%c' (see "
					     "--help)",
					     optopt);
			return fail1(err, errlen,
				     "unknown option '%s' (see --help)",
				     argv[optind - 1]);
		}
	}
	if (optind < argc)
		return fail1(err, errlen, "unexpected argument '%s'",
			     argv[optind]);
	if (cfg->unix_path[0] && !cfg->keep_network) {
		/* as memcached: a Unix socket, and no network */
		if (cfg->nmembers || cfg->gossip)
			return fail(err, errlen,
				    "-s serves no network: a cluster needs "
				    "-p");
		cfg->tcp_port = cfg->udp_port = 0;
	}
	if (cfg->auth_file[0] && cfg->udp_port)
		return fail(err, errlen,
			    "Cannot use UDP with ascii authentication enabled "
			    "(-U 0 to disable)");
	if (cfg->auth_file[0] && (cfg->nmembers || cfg->gossip))
		return fail(err, errlen,
			    "-Y: a cluster's forwarding connections are not "
			    "authenticated; -Y serves a single node");
	if (cfg->ssl && !cfg->ssl_chain_cert[0])
		return fail(err, errlen,
			    "-Z: give -o ssl_chain_cert (and ssl_key when the "
			    "key is not in it)");
	if (cfg->ssl && (cfg->nmembers || cfg->gossip))
		return fail(err, errlen,
			    "-Z: a cluster's forwarding connections are "
			    "plain; -Z serves a single node");
	if (cfg->ssl && !cfg->tcp_port)
		return fail(err, errlen,
			    "ERROR: You cannot enable SSL without a TCP port.");
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
	if (cfg->tcp_port == 0 && cfg->udp_port == 0 && !cfg->unix_path[0])
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
		return -EX_USAGE;
	if (cfg->gossip && gossip_finish(cfg, err, errlen))
		return -EX_USAGE;
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

int dp_config_parse(int argc, char **argv, struct dp_config *cfg, char *err,
		    size_t errlen, char *out, size_t outlen)
{
	struct dp_args args;
	int rc;

	set_defaults(cfg);
	if ((rc = dp_args_build(argc, argv, &args, cfg, err, errlen)))
		return rc;
	rc = parse_args(args.argc, args.argv, cfg, err, errlen, out, outlen);
	dp_args_free(&args);
	/* glibc's getopt keeps where it was in our argv (what it permuted),
	 * and only optind = 0 makes it start over: the EAL, which parses its
	 * own arguments with getopt after us, sets optind to 1 only */
	{
		char *none[] = {argv[0], NULL};

		optind = 0;
		getopt(1, none, "");
		optind = 1;
	}
	return rc;
}

/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memlane-bench memory: what one stored item costs in memory.
 *
 * A shard with a large limit is loaded with N small items (16-byte keys,
 * 32-byte values by default) and the cost is reported two ways: as the
 * shard accounts it (cache_stats.mem_used, allocator-real bytes, split
 * into index and segments) and as the kernel sees it (resident set growth
 * over the load). With --memcached the same items are also loaded into a
 * real memcached over TCP, and its resident set growth is reported beside
 * ours.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "common.h"

#include "bench.h"

#define MEMORY_ITEMS_DEF      1000000ull
#define MEMORY_KLEN_DEF	      16u
#define MEMORY_VLEN_DEF	      32u
#define MEMORY_TARGET	      72.0 /* bytes per item, in total */
#define MEMORY_LIMIT_MIN      (1ull << 30)
#define MEMORY_LIMIT_PER_ITEM 256u
/* Set explicitly so that segments' share of mem_used is known. */
#define MEMORY_SEGMENT_SIZE (1u << 20)

#define MEMCACHED_PATH	    "/usr/bin/memcached"
#define MEMCACHED_MB	    "1024"
#define MEMCACHED_PORT_LO   20000
#define MEMCACHED_PORT_SPAN 10000
#define MEMCACHED_START_MS  5000
#define MEMCACHED_SETTLE_MS 20000
#define MEMCACHED_STABLE_MS 1000
#define MEMCACHED_POLL_MS   50
#define MEMORY_IO_BUF	    (256 * 1024)

struct memory_opts {
	uint64_t items;
	uint64_t hint;
	unsigned klen;
	unsigned vlen;
	bool memcached;
	bool json;
};

/* One store's figures. Fields that do not apply are left at 0 and shown
 * as "-". */
struct memory_result {
	const char *store;
	uint64_t items; /* items the store reports holding */
	uint64_t rss_before;
	uint64_t rss_after;
	uint64_t accounted;   /* memlane: cache_stats.mem_used */
	uint64_t index;	      /* memlane: accounted - segments */
	uint64_t segments;    /* memlane: segments held, 1 MiB each */
	uint64_t stats_bytes; /* the store's own sum of item sizes */
	double load_s;
};

static void memory_usage(FILE *f)
{
	fprintf(f,
		"usage: memlane-bench memory [options]\n"
		"  --items N        items loaded (default 1M)\n"
		"  --hint N         the shard's items_hint (default: --items; "
		"0 lets the\n"
		"                   index grow)\n"
		"  --key-size B     key bytes (default %u)\n"
		"  --value-size B   value bytes (default %u)\n"
		"  --memcached      also load the items into %s\n"
		"  --json           one JSON object instead of the table\n",
		MEMORY_KLEN_DEF, MEMORY_VLEN_DEF, MEMCACHED_PATH);
}

static int memory_parse(int argc, char **argv, struct memory_opts *o)
{
	static const struct option longopts[] = {
		{"items", required_argument, NULL, 'n'},
		{"hint", required_argument, NULL, 'i'},
		{"key-size", required_argument, NULL, 'k'},
		{"value-size", required_argument, NULL, 'v'},
		{"memcached", no_argument, NULL, 'm'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool hint_set = false;
	uint64_t v;
	int c;

	*o = (struct memory_opts){
		.items = MEMORY_ITEMS_DEF,
		.klen = MEMORY_KLEN_DEF,
		.vlen = MEMORY_VLEN_DEF,
	};
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			if (bench_parse_u64(optarg, &o->items) || !o->items)
				goto bad;
			break;
		case 'i':
			if (bench_parse_u64(optarg, &o->hint))
				goto bad;
			hint_set = true;
			break;
		case 'k':
			if (bench_parse_u64(optarg, &v) || v < BENCH_KEY_MIN ||
			    v > PROTO_KEY_MAX)
				goto bad;
			o->klen = (unsigned)v;
			break;
		case 'v':
			if (bench_parse_u64(optarg, &v) || v > 1000000)
				goto bad;
			o->vlen = (unsigned)v;
			break;
		case 'm':
			o->memcached = true;
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			memory_usage(stdout);
			return 1;
		default:
			goto bad;
		}
	}
	if (optind != argc)
		goto bad;
	if (!hint_set)
		o->hint = o->items;
	return 0;
bad:
	memory_usage(stderr);
	return -EINVAL;
}

/* ------------------------------------------------------------------------
 * memlane
 * ---------------------------------------------------------------------- */

static int memory_memlane(const struct memory_opts *o,
			  struct memory_result *res)
{
	struct cache_params p = {
		.mem_limit = ML_MAX(MEMORY_LIMIT_MIN,
				    o->items * MEMORY_LIMIT_PER_ITEM),
		.items_hint = o->hint,
		.segment_size = MEMORY_SEGMENT_SIZE,
		.now = (uint32_t)time(NULL),
	};
	struct cache_store req = {
		.klen = o->klen,
		.vlen = o->vlen,
		.mode = CACHE_SET,
	};
	char key[PROTO_KEY_MAX];
	struct cache_shard *s;
	struct cache_stats st;
	uint64_t i, t0, failed = 0;
	char *value;
	int rc;

	value = malloc(o->vlen + 1);
	if (!value)
		return -ENOMEM;
	memset(value, 'v', o->vlen);
	req.key = key;
	req.value = value;

	res->store = "memlane";
	rc = bench_rss(0, &res->rss_before);
	if (rc)
		goto free_value;
	s = cache_create(&p);
	if (!s) {
		rc = -errno;
		fprintf(stderr, "memory: cache_create: %s\n", strerror(errno));
		goto free_value;
	}
	t0 = bench_now_ns();
	for (i = 0; i < o->items; i++) {
		bench_key_format(i, o->klen, key);
		req.hv = ml_hash(key, o->klen);
		if (cache_store(s, &req, NULL))
			failed++;
	}
	res->load_s = (double)(bench_now_ns() - t0) / 1e9;
	rc = bench_rss(0, &res->rss_after);
	cache_get_stats(s, &st);
	res->items = st.curr_items;
	res->accounted = st.mem_used;
	res->segments = ML_MIN(st.segments * MEMORY_SEGMENT_SIZE, st.mem_used);
	res->index = st.mem_used - res->segments;
	res->stats_bytes = st.bytes;
	if (failed || st.evictions)
		fprintf(stderr,
			"memory: warning: %llu stores failed, %llu evictions\n",
			(unsigned long long)failed,
			(unsigned long long)st.evictions);
	cache_free(s);
free_value:
	free(value);
	return rc;
}

/* ------------------------------------------------------------------------
 * memcached, over TCP on 127.0.0.1
 * ---------------------------------------------------------------------- */

/* Picks a random port in the high range that nothing listens on now. */
static int memory_free_port(void)
{
	struct bench_rng rng;
	int tries;

	bench_rng_seed(&rng, bench_now_ns() ^ (uint64_t)getpid());
	for (tries = 0; tries < 100; tries++) {
		int port = MEMCACHED_PORT_LO +
			   (int)bench_rng_below(&rng, MEMCACHED_PORT_SPAN);
		struct sockaddr_in a = {
			.sin_family = AF_INET,
			.sin_port = htons((uint16_t)port),
			.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
		};
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		int ok;

		if (fd < 0)
			return -errno;
		ok = !bind(fd, (struct sockaddr *)&a, sizeof(a));
		close(fd);
		if (ok)
			return port;
	}
	return -EADDRINUSE;
}

static void memory_sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Starts memcached on 127.0.0.1:port. Returns its pid, or -errno. */
static pid_t memory_memcached_start(int port)
{
	char portstr[16];
	pid_t pid;

	snprintf(portstr, sizeof(portstr), "%d", port);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
			dup2(null, STDERR_FILENO);
		}
		/* memcached refuses to run as root unless told which user
		 * to be; staying root changes nothing. */
		if (geteuid() == 0)
			execl(MEMCACHED_PATH, "memcached", "-l", "127.0.0.1",
			      "-p", portstr, "-U", "0", "-m", MEMCACHED_MB,
			      "-t", "1", "-u", "root", (char *)NULL);
		else
			execl(MEMCACHED_PATH, "memcached", "-l", "127.0.0.1",
			      "-p", portstr, "-U", "0", "-m", MEMCACHED_MB,
			      "-t", "1", (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* Connects to the started memcached, retrying while it starts up. Returns
 * the socket, or -errno: -ECHILD when it exited, and has been reaped. */
static int memory_memcached_connect(pid_t pid, int port)
{
	struct sockaddr_in a = {
		.sin_family = AF_INET,
		.sin_port = htons((uint16_t)port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	unsigned waited;
	int fd, one = 1;

	for (waited = 0; waited < MEMCACHED_START_MS; waited += 20) {
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return -ECHILD;
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0)
			return -errno;
		if (!connect(fd, (struct sockaddr *)&a, sizeof(a))) {
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				   sizeof(one));
			return fd;
		}
		close(fd);
		memory_sleep_ms(20);
	}
	return -ETIMEDOUT;
}

static int memory_send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Sends cmd and reads the reply up to and including the line end, which
 * ends it ("MN\r\n", "END\r\n"). Returns 0, or -errno. */
static int memory_request(int fd, const char *cmd, const char *end, char *reply,
			  size_t len)
{
	size_t have = 0, elen = strlen(end);
	int rc;

	rc = memory_send_all(fd, cmd, strlen(cmd));
	if (rc)
		return rc;
	for (;;) {
		ssize_t n;

		if (have + 1 >= len)
			return -EMSGSIZE;
		n = recv(fd, reply + have, len - 1 - have, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n ? -errno : -ECONNRESET;
		have += (size_t)n;
		reply[have] = '\0';
		if (have >= elen && !strcmp(reply + have - elen, end))
			return 0;
	}
}

/* The value of "STAT name <value>" in a stats reply, or 0. */
static uint64_t memory_stat(const char *reply, const char *name)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "STAT %s ", name);
	p = strstr(reply, pat);
	return p ? strtoull(p + strlen(pat), NULL, 10) : 0;
}

/* Pipelines every item as "set <key> 0 0 <vlen> noreply", then waits for
 * a no-op's answer, which comes only after every set was processed. */
static int memory_memcached_load(int fd, const struct memory_opts *o)
{
	char *buf, reply[64];
	size_t used = 0, one = 64 + o->klen + o->vlen;
	uint64_t i;
	int rc = 0;

	buf = malloc(ML_MAX(MEMORY_IO_BUF, 2 * one));
	if (!buf)
		return -ENOMEM;
	for (i = 0; i < o->items; i++) {
		if (used + one > ML_MAX(MEMORY_IO_BUF, 2 * one)) {
			rc = memory_send_all(fd, buf, used);
			if (rc)
				goto out;
			used = 0;
		}
		memcpy(buf + used, "set ", 4);
		used += 4;
		bench_key_format(i, o->klen, buf + used);
		used += o->klen;
		used += (size_t)sprintf(buf + used, " 0 0 %u noreply\r\n",
					o->vlen);
		memset(buf + used, 'v', o->vlen);
		used += o->vlen;
		memcpy(buf + used, "\r\n", 2);
		used += 2;
	}
	rc = memory_send_all(fd, buf, used);
	if (!rc)
		rc = memory_request(fd, "mn\r\n", "MN\r\n", reply,
				    sizeof(reply));
out:
	free(buf);
	return rc;
}

static int memory_memcached(const struct memory_opts *o,
			    struct memory_result *res)
{
	unsigned waited, stable;
	char reply[8192];
	uint64_t power;
	uint64_t t0;
	int port, fd, rc;
	pid_t pid;

	res->store = "memcached";
	if (access(MEMCACHED_PATH, X_OK)) {
		fprintf(stderr, "memory: %s: %s\n", MEMCACHED_PATH,
			strerror(errno));
		return -errno;
	}
	port = memory_free_port();
	if (port < 0)
		return port;
	pid = memory_memcached_start(port);
	if (pid < 0)
		return pid;
	fd = memory_memcached_connect(pid, port);
	if (fd == -ECHILD) {
		/* It exited (and was reaped): there is nothing to stop. */
		fprintf(stderr, "memory: memcached exited on start-up\n");
		return fd;
	}
	if (fd < 0) {
		rc = fd;
		fprintf(stderr, "memory: memcached on port %d: %s\n", port,
			strerror(-rc));
		goto stop;
	}
	rc = memory_request(fd, "version\r\n", "\r\n", reply, sizeof(reply));
	if (rc)
		goto close_fd;
	rc = bench_rss(pid, &res->rss_before);
	if (rc)
		goto close_fd;

	t0 = bench_now_ns();
	rc = memory_memcached_load(fd, o);
	res->load_s = (double)(bench_now_ns() - t0) / 1e9;
	if (rc)
		goto close_fd;

	/*
	 * memcached grows its hash table in the background, one doubling at
	 * a time, well after the sets that called for it. Measure the state
	 * it settles in: no growth under way and the same table size for
	 * MEMCACHED_STABLE_MS in a row.
	 */
	for (waited = 0, stable = 0, power = 0;; waited += MEMCACHED_POLL_MS) {
		uint64_t now_power;

		rc = memory_request(fd, "stats\r\n", "END\r\n", reply,
				    sizeof(reply));
		if (rc)
			goto close_fd;
		now_power = memory_stat(reply, "hash_power_level");
		if (memory_stat(reply, "hash_is_expanding") ||
		    now_power != power)
			stable = 0;
		else
			stable += MEMCACHED_POLL_MS;
		power = now_power;
		if (stable >= MEMCACHED_STABLE_MS ||
		    waited >= MEMCACHED_SETTLE_MS)
			break;
		memory_sleep_ms(MEMCACHED_POLL_MS);
	}
	res->items = memory_stat(reply, "curr_items");
	res->stats_bytes = memory_stat(reply, "bytes");
	rc = bench_rss(pid, &res->rss_after);
close_fd:
	close(fd);
stop:
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	return rc;
}

/* ------------------------------------------------------------------------
 * Output and the command
 * ---------------------------------------------------------------------- */

static double memory_per_item(uint64_t bytes, uint64_t items)
{
	return items ? (double)bytes / (double)items : 0.0;
}

static uint64_t memory_rss_growth(const struct memory_result *r)
{
	return r->rss_after > r->rss_before ? r->rss_after - r->rss_before : 0;
}

static void memory_cell(uint64_t bytes, uint64_t items)
{
	if (bytes)
		printf(" %10.1f", memory_per_item(bytes, items));
	else
		printf(" %10s", "-");
}

static void memory_print(const struct memory_opts *o, const char *cpu,
			 const struct memory_result *res, unsigned n)
{
	double rss, acc;
	unsigned i;

	printf("memlane-bench memory\n");
	printf("cpu     %s\n", cpu);
	printf("load    %llu items: %u-byte keys, %u-byte values, no expiry; "
	       "items_hint %llu\n\n",
	       (unsigned long long)o->items, o->klen, o->vlen,
	       (unsigned long long)o->hint);
	printf("%-10s %9s %8s %10s %10s %10s %10s %10s\n", "store", "items",
	       "load s", "RSS", "accounted", "index", "segments", "item data");
	for (i = 0; i < n; i++) {
		const struct memory_result *r = &res[i];

		printf("%-10s %9llu %8.2f", r->store,
		       (unsigned long long)r->items, r->load_s);
		memory_cell(memory_rss_growth(r), r->items);
		memory_cell(r->accounted, r->items);
		memory_cell(r->index, r->items);
		memory_cell(r->segments, r->items);
		memory_cell(r->stats_bytes, r->items);
		printf("\n");
	}
	rss = memory_per_item(memory_rss_growth(&res[0]), res[0].items);
	acc = memory_per_item(res[0].accounted, res[0].items);
	printf("\ntarget  memlane at <= %.0f bytes per item in total: RSS "
	       "%.1f, accounted %.1f: %s\n",
	       MEMORY_TARGET, rss, acc,
	       rss <= MEMORY_TARGET && acc <= MEMORY_TARGET ? "met"
							    : "NOT met");
	for (i = 1; i < n; i++)
		printf("        %s RSS per item is %.2fx memlane's\n",
		       res[i].store,
		       memory_per_item(memory_rss_growth(&res[i]),
				       res[i].items) /
			       rss);
	printf("\n"
	       "All figures but items and load s are bytes per stored item.\n"
	       "RSS        resident set growth over the load "
	       "(/proc/<pid>/statm),\n"
	       "           from before the shard was created (memlane) or "
	       "after start-up\n"
	       "           (memcached: -m %s -t 1 -U 0, items sent as "
	       "pipelined noreply\n"
	       "           sets, measured once its hash table stopped "
	       "growing)\n"
	       "accounted  cache_stats.mem_used: allocator-real bytes the "
	       "shard holds\n"
	       "index      accounted minus segments: index buckets, overflow "
	       "buckets and\n"
	       "           the shard's tables\n"
	       "segments   the 1 MiB segments the items are written into\n"
	       "item data  the store's own sum of item sizes (its \"bytes\" "
	       "statistic)\n",
	       MEMCACHED_MB);
}

static void memory_print_json(const struct memory_opts *o, const char *cpu,
			      const struct memory_result *res, unsigned n)
{
	unsigned i;

	printf("{\"bench\": \"memory\", \"cpu\": \"%s\", \"items\": %llu, "
	       "\"key_bytes\": %u, \"value_bytes\": %u, \"items_hint\": %llu, "
	       "\"target_bytes_per_item\": %.0f,\n \"stores\": [",
	       cpu, (unsigned long long)o->items, o->klen, o->vlen,
	       (unsigned long long)o->hint, MEMORY_TARGET);
	for (i = 0; i < n; i++) {
		const struct memory_result *r = &res[i];

		printf("%s\n  {\"store\": \"%s\", \"items\": %llu, "
		       "\"load_seconds\": %.3f, \"rss_before\": %llu, "
		       "\"rss_after\": %llu, \"rss_per_item\": %.2f, "
		       "\"accounted_per_item\": %.2f, \"index_per_item\": "
		       "%.2f, "
		       "\"segments_per_item\": %.2f, "
		       "\"item_data_per_item\": %.2f}",
		       i ? "," : "", r->store, (unsigned long long)r->items,
		       r->load_s, (unsigned long long)r->rss_before,
		       (unsigned long long)r->rss_after,
		       memory_per_item(memory_rss_growth(r), r->items),
		       memory_per_item(r->accounted, r->items),
		       memory_per_item(r->index, r->items),
		       memory_per_item(r->segments, r->items),
		       memory_per_item(r->stats_bytes, r->items));
	}
	printf("\n ]}\n");
}

int bench_memory_main(int argc, char **argv)
{
	struct memory_result res[2] = {{0}};
	struct memory_opts o;
	unsigned n = 0;
	char cpu[128];
	int rc;

	rc = memory_parse(argc, argv, &o);
	if (rc)
		return rc > 0 ? 0 : 2;
	bench_cpu_model(cpu, sizeof(cpu));

	fprintf(stderr, "memory: loading %llu items into a memlane shard...\n",
		(unsigned long long)o.items);
	rc = memory_memlane(&o, &res[n]);
	if (rc) {
		fprintf(stderr, "memory: memlane: %s\n", strerror(-rc));
		return 1;
	}
	n++;
	if (o.memcached) {
		fprintf(stderr,
			"memory: loading %llu items into memcached...\n",
			(unsigned long long)o.items);
		rc = memory_memcached(&o, &res[n]);
		if (rc) {
			fprintf(stderr, "memory: memcached: %s\n",
				strerror(-rc));
			return 1;
		}
		n++;
	}
	if (o.json)
		memory_print_json(&o, cpu, res, n);
	else
		memory_print(&o, cpu, res, n);
	return 0;
}

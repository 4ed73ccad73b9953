/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memlane-bench engine: the request rate of one cache shard on one pinned
 * core, with no network, set against the machine's own limit.
 *
 * The limit is the rate of independent random 64-byte reads from a buffer
 * far larger than the last-level cache, issued B at a time (prefetch all
 * B, then read all B). A lookup in a shard that does not fit in the cache
 * costs at least one such read (its index bucket; the item is a second),
 * so a shard reaching a large fraction of the limit at the same batch
 * depth leaves little on the table. The same buffer also gives the rate
 * of a GET's memory reads with no work at all (a bucket line, then the
 * item's one or two lines): the ceiling for a shard whose GETs touch that
 * many lines.
 *
 * What a timed loop does per operation is what a server core does with a
 * parsed request: hash the key (ml_hash(), once), then cache_get() or
 * cache_store(), or, at batch 32, one cache_prefetch_bulk() for the SETs of
 * the burst before they are stored and one cache_get_bulk() for its GETs.
 * Everything random is drawn before the clock starts: the key numbers, the
 * GET/SET choice and the key bytes themselves, laid out one after the other
 * like requests in a receive buffer.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "common.h"

#include "bench.h"

#define ENGINE_KEYS_DEF	     10000000ull
#define ENGINE_KEYS_QUICK    1000000ull
#define ENGINE_SECONDS_DEF   2.0
#define ENGINE_SECONDS_QUICK 0.5
#define ENGINE_REPEATS_DEF   5
/* Operations drawn ahead of time; the stream wraps around. Far more
 * distinct keys than the last-level cache holds items. */
#define ENGINE_STREAM_DEF   (1u << 22)
#define ENGINE_STREAM_QUICK (1u << 20)
/* The clock is read once per chunk of operations. */
#define ENGINE_CHUNK	  2048u
#define ENGINE_BURST	  32u
#define ENGINE_ZIPF_THETA 0.99
#define ENGINE_TARGET	  0.40
/* Per-item bytes assumed beyond key and value when sizing mem_limit. */
#define ENGINE_ITEM_OVERHEAD 64u
#define ENGINE_MEM_SLACK     1.3
#define ENGINE_MEM_MIN	     (16u << 20)

/* The machine limit's buffer and its dependent-read chain. */
#define LIMIT_BYTES	   (1ull << 30)
#define LIMIT_CHAIN_STRIDE 16u /* lines between chain slots */
/* GET-shaped reads: bucket lines in the first part of the buffer (an
 * index for 10M keys is about this size), items in the rest. */
#define PATTERN_BUCKET_BYTES (128ull << 20)

/* Writes through this keep loads from being optimised away. */
static volatile uint64_t engine_sink;

struct engine_size {
	unsigned klen;
	unsigned vlen;
};

static const struct engine_size engine_sizes[] = {
	{16, 32},
	{64, 512},
};

/* Percent of SETs in each mix (GET/SET 100/0, 90/10, 50/50). */
static const unsigned engine_set_pcts[] = {0, 10, 50};

enum engine_dist { ENGINE_UNIFORM, ENGINE_ZIPF, ENGINE_NDIST };

static const char *const engine_dist_names[] = {
	[ENGINE_UNIFORM] = "uniform",
	[ENGINE_ZIPF] = "zipf0.99",
};

static const unsigned engine_batches[] = {1, ENGINE_BURST};

struct engine_opts {
	uint64_t keys;
	double seconds;	  /* per case, when ops == 0 */
	uint64_t ops;	  /* per case; 0 = run for seconds */
	unsigned repeats; /* slices per case; the median is reported */
	uint32_t stream_len;
	int cpu;
	bool json;
	/* Filters: run only the cases of this name (NULL: all). */
	const char *only_mix;
	const char *only_sizes;
	const char *only_dist;
	const char *only_batch;
};

struct engine_limit {
	double mreads[2]; /* at batch 1 and at ENGINE_BURST */
	/* GET-shaped reads at ENGINE_BURST, in millions per second: a bucket
	 * line, then an item of one line or straddling two */
	double mgets[2];
	double chase_ns; /* one dependent random read */
	char thp[16];	 /* transparent huge pages: always, madvise, never */
};

struct engine_result {
	unsigned klen;
	unsigned vlen;
	unsigned set_pct;
	enum engine_dist dist;
	unsigned batch;
	double mops;	  /* median over the slices */
	double hit_ratio; /* of the GETs */
	uint64_t set_fail;
	double of_limit;
};

/* The pre-drawn requests of one distribution. */
struct engine_stream {
	uint32_t *idx; /* key numbers */
	uint8_t *mix;  /* 0..99: a SET when below the case's set percent */
	uint32_t len;  /* a power of two, a multiple of ENGINE_BURST */
};

/* The state of a timed loop. The stream is read in order; only the shard
 * is touched at random. */
struct engine_run {
	struct cache_shard *shard;
	const char *keys; /* len keys of klen bytes, in stream order */
	const uint8_t *mix;
	uint32_t mask;
	uint32_t pos;
	unsigned klen;
	unsigned vlen;
	unsigned set_pct;
	const char *value;
	uint64_t gets;
	uint64_t hits;
	uint64_t sets;
	uint64_t set_fail;
	uint64_t sink;
};

static void engine_usage(FILE *f)
{
	fprintf(f,
		"usage: memlane-bench engine [options]\n"
		"  --keys N      keys preloaded and drawn from (default 10M)\n"
		"  --seconds S   measured time per case (default %.1f)\n"
		"  --ops N       measured operations per case instead\n"
		"  --repeats R   slices per case, median reported (default "
		"%d)\n"
		"  --cpu C       pin to CPU C (default: the highest allowed)\n"
		"  --quick       1M keys, %.1f s per case\n"
		"  --json        one JSON object instead of the table\n"
		"  --mix M, --sizes K/V, --dist D, --batch B\n"
		"                run only the cases named so (e.g. --mix 100/0 "
		"--sizes 16/32\n"
		"                --dist uniform --batch 32)\n",
		ENGINE_SECONDS_DEF, ENGINE_REPEATS_DEF, ENGINE_SECONDS_QUICK);
}

static int engine_parse(int argc, char **argv, struct engine_opts *o)
{
	static const struct option longopts[] = {
		{"keys", required_argument, NULL, 'k'},
		{"seconds", required_argument, NULL, 's'},
		{"ops", required_argument, NULL, 'o'},
		{"repeats", required_argument, NULL, 'r'},
		{"cpu", required_argument, NULL, 'c'},
		{"quick", no_argument, NULL, 'q'},
		{"json", no_argument, NULL, 'j'},
		{"mix", required_argument, NULL, 'M'},
		{"sizes", required_argument, NULL, 'S'},
		{"dist", required_argument, NULL, 'D'},
		{"batch", required_argument, NULL, 'B'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool keys_set = false, seconds_set = false;
	uint64_t v;
	int c;

	*o = (struct engine_opts){
		.keys = ENGINE_KEYS_DEF,
		.seconds = ENGINE_SECONDS_DEF,
		.repeats = ENGINE_REPEATS_DEF,
		.stream_len = ENGINE_STREAM_DEF,
		.cpu = -1,
	};
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'k':
			if (bench_parse_u64(optarg, &o->keys) || o->keys == 0 ||
			    o->keys > UINT32_MAX)
				goto bad;
			keys_set = true;
			break;
		case 's':
			if (bench_parse_double(optarg, &o->seconds) ||
			    o->seconds <= 0.0)
				goto bad;
			seconds_set = true;
			break;
		case 'o':
			if (bench_parse_u64(optarg, &o->ops) || o->ops == 0)
				goto bad;
			break;
		case 'r':
			if (bench_parse_u64(optarg, &v) || v == 0 || v > 99)
				goto bad;
			o->repeats = (unsigned)v;
			break;
		case 'c':
			if (bench_parse_u64(optarg, &v) || v >= CPU_SETSIZE)
				goto bad;
			o->cpu = (int)v;
			break;
		case 'q':
			if (!keys_set)
				o->keys = ENGINE_KEYS_QUICK;
			if (!seconds_set)
				o->seconds = ENGINE_SECONDS_QUICK;
			o->stream_len = ENGINE_STREAM_QUICK;
			break;
		case 'j':
			o->json = true;
			break;
		case 'M':
			o->only_mix = optarg;
			break;
		case 'S':
			o->only_sizes = optarg;
			break;
		case 'D':
			o->only_dist = optarg;
			break;
		case 'B':
			o->only_batch = optarg;
			break;
		case 'h':
			engine_usage(stdout);
			return 1;
		default:
			goto bad;
		}
	}
	if (optind != argc)
		goto bad;
	return 0;
bad:
	engine_usage(stderr);
	return -EINVAL;
}

static void *engine_map(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* The kernel's transparent huge page mode (the bracketed word of its
 * setting), or "unknown". The limit's buffer does not ask for huge pages,
 * and neither does jemalloc unless configured to, so under "madvise" the
 * limit and the shard see the same page size. */
static void engine_thp_mode(char *buf, size_t len)
{
	char line[128], *a, *b;
	FILE *f;

	snprintf(buf, len, "unknown");
	f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	if (!f)
		return;
	if (fgets(line, sizeof(line), f)) {
		a = strchr(line, '[');
		b = a ? strchr(a, ']') : NULL;
		if (b) {
			*b = '\0';
			snprintf(buf, len, "%s", a + 1);
		}
	}
	fclose(f);
}

static int engine_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double engine_median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), engine_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

/* ------------------------------------------------------------------------
 * The machine limit
 * ---------------------------------------------------------------------- */

static inline const uint8_t *limit_line(const uint8_t *buf,
					const uint32_t *lines, uint32_t i)
{
	return buf + (size_t)lines[i] * ML_CACHE_LINE;
}

/* Reads n random lines (a multiple of batch) starting at *pos of lines[],
 * batch at a time: prefetch every address of the batch, then read them. */
static uint64_t limit_reads(const uint8_t *buf, const uint32_t *lines,
			    uint32_t mask, uint32_t *pos, unsigned batch,
			    unsigned n)
{
	uint64_t sink = 0;
	uint32_t p = *pos;
	unsigned i, j;

	for (i = 0; i < n; i += batch) {
		for (j = 0; j < batch; j++)
			__builtin_prefetch(
				limit_line(buf, lines, (p + j) & mask), 0, 3);
		for (j = 0; j < batch; j++)
			sink += *(const uint64_t *)limit_line(buf, lines,
							      (p + j) & mask);
		p = (p + batch) & mask;
	}
	*pos = p;
	return sink;
}

/* The bucket line of the GET-shaped read at lines[i]. */
static inline const uint8_t *pattern_bucket(const uint8_t *buf,
					    const uint32_t *lines, uint32_t i)
{
	return buf +
	       (size_t)(lines[i] % (PATTERN_BUCKET_BYTES / ML_CACHE_LINE)) *
		       ML_CACHE_LINE;
}

/*
 * The memory accesses of n GETs with nothing else, ENGINE_BURST at a time
 * as cache_get_bulk() does them: prefetch every bucket line; read each
 * one for its item's line number and prefetch the item (item_lines 1 or
 * 2; two when the item straddles a line boundary, as most small items
 * do); then read every item. The rate is a ceiling for a GET of that
 * many lines on this machine.
 */
static uint64_t pattern_reads(const uint8_t *buf, const uint32_t *lines,
			      uint32_t mask, uint32_t *pos, unsigned item_lines,
			      unsigned n)
{
	/* an item of two lines starts mid-line and ends in the next one */
	const size_t skew = item_lines == 2 ? ML_CACHE_LINE / 2 : 0;
	const uint8_t *item[ENGINE_BURST];
	uint64_t sink = 0;
	uint32_t p = *pos;
	unsigned i, j;

	for (i = 0; i < n; i += ENGINE_BURST) {
		for (j = 0; j < ENGINE_BURST; j++)
			__builtin_prefetch(
				pattern_bucket(buf, lines, (p + j) & mask));
		for (j = 0; j < ENGINE_BURST; j++) {
			const uint8_t *bk =
				pattern_bucket(buf, lines, (p + j) & mask);

			item[j] = buf +
				  (size_t) * (const uint32_t *)bk *
					  ML_CACHE_LINE +
				  skew;
			__builtin_prefetch(item[j]);
			if (item_lines == 2)
				__builtin_prefetch(item[j] + ML_CACHE_LINE - 1);
		}
		for (j = 0; j < ENGINE_BURST; j++) {
			sink += item[j][0];
			if (item_lines == 2)
				sink += item[j][ML_CACHE_LINE - 8];
		}
		p = (p + ENGINE_BURST) & mask;
	}
	*pos = p;
	return sink;
}

/* Median rate, in millions of reads per second, over o->repeats slices:
 * of independent reads at batch, or with item_lines, of GET-shaped reads
 * (millions of GETs). */
static double limit_rate(const struct engine_opts *o, const uint8_t *buf,
			 const uint32_t *lines, uint32_t len, unsigned batch,
			 unsigned item_lines)
{
	double rates[100];
	uint32_t pos = 0;
	unsigned r;

	for (r = 0; r < o->repeats; r++) {
		uint64_t t0 = bench_now_ns(), t = t0, done = 0;
		uint64_t want_ops = o->ops / o->repeats;
		uint64_t want_ns = (uint64_t)(o->seconds * 1e9 / o->repeats);

		for (;;) {
			if (item_lines)
				engine_sink +=
					pattern_reads(buf, lines, len - 1, &pos,
						      item_lines, ENGINE_CHUNK);
			else
				engine_sink +=
					limit_reads(buf, lines, len - 1, &pos,
						    batch, ENGINE_CHUNK);
			done += ENGINE_CHUNK;
			t = bench_now_ns();
			if (o->ops ? done >= want_ops : t - t0 >= want_ns)
				break;
		}
		rates[r] = (double)done * 1e3 / (double)(t - t0);
	}
	return engine_median(rates, o->repeats);
}

/*
 * Latency of one dependent random read: the buffer is cut into slots of
 * LIMIT_CHAIN_STRIDE lines, one random line of each slot is picked, and
 * the picked lines are linked into one ring in a random order; then the
 * ring is followed, each read giving the next address.
 */
static int limit_chase(uint8_t *buf, double seconds, double *ns)
{
	uint32_t nslots =
		(uint32_t)(LIMIT_BYTES / ML_CACHE_LINE / LIMIT_CHAIN_STRIDE);
	uint64_t t0, t, hops = 0;
	struct bench_rng rng;
	uint32_t *order, i;
	size_t cur;

	order = malloc(sizeof(*order) * nslots);
	if (!order)
		return -ENOMEM;
	bench_rng_seed(&rng, 0x6c696d6974ull);
	for (i = 0; i < nslots; i++)
		order[i] = i * LIMIT_CHAIN_STRIDE +
			   (uint32_t)bench_rng_below(&rng, LIMIT_CHAIN_STRIDE);
	for (i = nslots - 1; i > 0; i--) {
		uint32_t j = (uint32_t)bench_rng_below(&rng, i + 1);
		uint32_t tmp = order[i];

		order[i] = order[j];
		order[j] = tmp;
	}
	/* Line order[i] leads to order[i + 1], the last back to the first;
	 * each link is stored in the line it leaves from. */
	for (i = 0; i < nslots; i++)
		*(uint64_t *)(buf + (size_t)order[i] * ML_CACHE_LINE) =
			order[(i + 1) % nslots];
	cur = order[0];
	free(order);

	t0 = bench_now_ns();
	do {
		for (i = 0; i < 1024; i++)
			cur = *(const uint64_t *)(buf + cur * ML_CACHE_LINE);
		hops += 1024;
		t = bench_now_ns();
	} while (t - t0 < (uint64_t)(seconds * 1e9));
	engine_sink += cur;
	*ns = (double)(t - t0) / (double)hops;
	return 0;
}

static int engine_measure_limit(const struct engine_opts *o,
				struct engine_limit *lim)
{
	uint8_t *buf;
	uint32_t *lines, i;
	struct bench_rng rng;
	unsigned b;
	int rc = 0;

	engine_thp_mode(lim->thp, sizeof(lim->thp));
	buf = engine_map(LIMIT_BYTES);
	if (!buf)
		return -ENOMEM;
	lines = malloc(sizeof(*lines) * o->stream_len);
	if (!lines) {
		rc = -ENOMEM;
		goto unmap;
	}
	/* Resident before any timing: every page written once. */
	memset(buf, 0x5a, LIMIT_BYTES);
	bench_rng_seed(&rng, 0x6275666665ull);
	for (i = 0; i < o->stream_len; i++)
		lines[i] = (uint32_t)bench_rng_below(
			&rng, LIMIT_BYTES / ML_CACHE_LINE);

	for (b = 0; b < ML_ARRAY_SIZE(engine_batches); b++)
		lim->mreads[b] = limit_rate(o, buf, lines, o->stream_len,
					    engine_batches[b], 0);
	/* Each bucket line names a random item line beyond the buckets. */
	for (i = 0; i < PATTERN_BUCKET_BYTES / ML_CACHE_LINE; i++)
		*(uint32_t *)(buf + (size_t)i * ML_CACHE_LINE) =
			(uint32_t)((PATTERN_BUCKET_BYTES +
				    bench_rng_below(
					    &rng, LIMIT_BYTES -
							  PATTERN_BUCKET_BYTES -
							  ML_CACHE_LINE)) /
				   ML_CACHE_LINE);
	for (b = 0; b < 2; b++)
		lim->mgets[b] = limit_rate(o, buf, lines, o->stream_len,
					   ENGINE_BURST, b + 1);
	rc = limit_chase(buf, ML_MIN(o->seconds, 1.0), &lim->chase_ns);

	free(lines);
unmap:
	munmap(buf, LIMIT_BYTES);
	return rc;
}

/* ------------------------------------------------------------------------
 * Streams, the shard and the timed loops
 * ---------------------------------------------------------------------- */

static void engine_stream_free(struct engine_stream *st)
{
	free(st->idx);
	free(st->mix);
	st->idx = NULL;
	st->mix = NULL;
}

static int engine_stream_build(struct engine_stream *st, enum engine_dist d,
			       uint64_t keys, uint32_t len)
{
	struct bench_zipf z;
	struct bench_rng rng;
	uint32_t i;
	int rc;

	st->len = len;
	st->idx = malloc(sizeof(*st->idx) * len);
	st->mix = malloc(len);
	if (!st->idx || !st->mix) {
		rc = -ENOMEM;
		goto fail;
	}
	bench_rng_seed(&rng, 0x656e67696e65ull + d);
	if (d == ENGINE_ZIPF) {
		rc = bench_zipf_init(&z, keys, ENGINE_ZIPF_THETA, 0x7a697066);
		if (rc)
			goto fail;
		for (i = 0; i < len; i++)
			st->idx[i] = (uint32_t)bench_zipf_next(&z, &rng);
	} else {
		for (i = 0; i < len; i++)
			st->idx[i] = (uint32_t)bench_rng_below(&rng, keys);
	}
	for (i = 0; i < len; i++)
		st->mix[i] = (uint8_t)bench_rng_below(&rng, 100);
	return 0;
fail:
	engine_stream_free(st);
	return rc;
}

/* The key bytes of every operation in the stream, back to back. */
static char *engine_stream_keys(const struct engine_stream *st, unsigned klen)
{
	char *keys = engine_map((size_t)st->len * klen);
	uint32_t i;

	if (!keys)
		return NULL;
	for (i = 0; i < st->len; i++)
		bench_key_format(st->idx[i], klen, keys + (size_t)i * klen);
	return keys;
}

static struct cache_shard *engine_shard(uint64_t keys,
					const struct engine_size *sz)
{
	struct cache_params p = {
		.mem_limit =
			(size_t)((double)keys *
				 (sz->klen + sz->vlen + ENGINE_ITEM_OVERHEAD) *
				 ENGINE_MEM_SLACK),
		.items_hint = keys,
		.now = (uint32_t)time(NULL),
	};

	/* a shard needs a few whole segments besides its index */
	p.mem_limit = ML_MAX(p.mem_limit, ENGINE_MEM_MIN);

	return cache_create(&p);
}

/* Stores every key once. Returns the number of keys that failed. */
static uint64_t engine_preload(struct cache_shard *s, uint64_t keys,
			       const struct engine_size *sz, const char *value)
{
	struct cache_store req = {
		.vlen = sz->vlen,
		.value = value,
		.mode = CACHE_SET,
	};
	char key[PROTO_KEY_MAX];
	uint64_t i, failed = 0;

	req.key = key;
	req.klen = sz->klen;
	for (i = 0; i < keys; i++) {
		bench_key_format(i, sz->klen, key);
		req.hv = ml_hash(key, sz->klen);
		if (cache_store(s, &req, NULL))
			failed++;
	}
	return failed;
}

static inline void engine_set(struct engine_run *e, uint64_t hv,
			      const char *key)
{
	struct cache_store req = {
		.hv = hv,
		.key = key,
		.klen = e->klen,
		.vlen = e->vlen,
		.value = e->value,
		.mode = CACHE_SET,
	};

	e->sets++;
	if (cache_store(e->shard, &req, NULL))
		e->set_fail++;
}

/* n operations, one at a time. */
static void engine_run_single(struct engine_run *e, unsigned n)
{
	struct cache_item it;
	unsigned i;

	for (i = 0; i < n; i++) {
		const char *key = e->keys + (size_t)e->pos * e->klen;
		uint64_t hv = ml_hash(key, e->klen);

		if (e->mix[e->pos] < e->set_pct) {
			engine_set(e, hv, key);
		} else {
			e->gets++;
			if (!cache_get(e->shard, hv, key, e->klen, 0, 0, &it)) {
				e->hits++;
				e->sink += (uint8_t)it.value[0] + it.vlen;
			}
		}
		e->pos = (e->pos + 1) & e->mask;
	}
}

/* n operations (a multiple of ENGINE_BURST) in bursts: the SETs of a burst
 * prefetched together and then stored one by one, then all its GETs in one
 * cache_get_bulk(). */
static void engine_run_burst(struct engine_run *e, unsigned n)
{
	const char *key[ENGINE_BURST], *skey[ENGINE_BURST];
	uint32_t klen[ENGINE_BURST];
	uint64_t hv[ENGINE_BURST], shv[ENGINE_BURST];
	struct cache_item out[ENGINE_BURST];
	int rc[ENGINE_BURST];
	unsigned i, j, ng, ns;

	for (j = 0; j < ENGINE_BURST; j++)
		klen[j] = e->klen;
	for (i = 0; i < n; i += ENGINE_BURST) {
		ng = ns = 0;
		for (j = 0; j < ENGINE_BURST; j++) {
			const char *k = e->keys + (size_t)e->pos * e->klen;
			uint64_t h = ml_hash(k, e->klen);

			if (e->mix[e->pos] < e->set_pct) {
				skey[ns] = k;
				shv[ns] = h;
				ns++;
			} else {
				key[ng] = k;
				hv[ng] = h;
				ng++;
			}
			e->pos = (e->pos + 1) & e->mask;
		}
		if (ns) {
			cache_prefetch_bulk(e->shard, ns, shv);
			for (j = 0; j < ns; j++)
				engine_set(e, shv[j], skey[j]);
		}
		if (!ng)
			continue;
		e->gets += ng;
		e->hits += cache_get_bulk(e->shard, ng, hv, key, klen, out, rc);
		for (j = 0; j < ng; j++) {
			if (!rc[j])
				e->sink +=
					(uint8_t)out[j].value[0] + out[j].vlen;
		}
	}
}

/* Runs one case for o->repeats slices; fills the rate and hit ratio. */
static void engine_case(const struct engine_opts *o, struct engine_run *e,
			struct engine_result *res)
{
	double rates[100];
	unsigned r;

	e->gets = e->hits = e->sets = e->set_fail = 0;
	for (r = 0; r < o->repeats; r++) {
		uint64_t t0 = bench_now_ns(), t = t0, done = 0;
		uint64_t want_ops = o->ops / o->repeats;
		uint64_t want_ns = (uint64_t)(o->seconds * 1e9 / o->repeats);

		for (;;) {
			if (res->batch == 1)
				engine_run_single(e, ENGINE_CHUNK);
			else
				engine_run_burst(e, ENGINE_CHUNK);
			done += ENGINE_CHUNK;
			t = bench_now_ns();
			if (o->ops ? done >= want_ops : t - t0 >= want_ns)
				break;
		}
		rates[r] = (double)done * 1e3 / (double)(t - t0);
	}
	engine_sink += e->sink;
	res->mops = engine_median(rates, o->repeats);
	res->hit_ratio = e->gets ? (double)e->hits / (double)e->gets : 1.0;
	res->set_fail = e->set_fail;
}

/* ------------------------------------------------------------------------
 * Output
 * ---------------------------------------------------------------------- */

static void engine_mix_name(unsigned set_pct, char *buf, size_t len)
{
	snprintf(buf, len, "%u/%u", 100 - set_pct, set_pct);
}

static void engine_print_header(const struct engine_opts *o, const char *cpu,
				int pinned, const struct engine_limit *lim)
{
	printf("memlane-bench engine\n");
	printf("cpu     %s, pinned to CPU %d\n", cpu, pinned);
	printf("keys    %llu, drawn uniformly or by Zipf %.2f (ranks "
	       "scrambled)\n",
	       (unsigned long long)o->keys, ENGINE_ZIPF_THETA);
	if (o->ops)
		printf("timing  %llu operations per case, median of %u "
		       "slices\n",
		       (unsigned long long)o->ops, o->repeats);
	else
		printf("timing  %.1f s per case, median of %u slices\n",
		       o->seconds, o->repeats);
	printf("limit   random 64-byte reads from a %llu MiB buffer "
	       "(THP: %s)\n",
	       LIMIT_BYTES >> 20, lim->thp);
	printf("        independent: batch 1 %.1f Mreads/s, batch %u %.1f "
	       "Mreads/s\n",
	       lim->mreads[0], ENGINE_BURST, lim->mreads[1]);
	printf("        dependent: %.1f ns per read\n", lim->chase_ns);
	printf("        a GET's lines alone at batch %u (bucket, then item): "
	       "item of 1 line %.1f Mops/s (%.0f%%), of 2 lines %.1f Mops/s "
	       "(%.0f%%)\n\n",
	       ENGINE_BURST, lim->mgets[0],
	       100.0 * lim->mgets[0] / lim->mreads[1], lim->mgets[1],
	       100.0 * lim->mgets[1] / lim->mreads[1]);
	printf("%-7s %-7s %-9s %5s %8s %8s %8s %9s\n", "mix", "sizes", "dist",
	       "batch", "Mops/s", "ns/op", "hit%", "of limit");
}

static void engine_print_row(const struct engine_result *r)
{
	char mix[16], size[16];

	engine_mix_name(r->set_pct, mix, sizeof(mix));
	snprintf(size, sizeof(size), "%u/%u", r->klen, r->vlen);
	printf("%-7s %-7s %-9s %5u %8.2f %8.1f %7.2f%% %8.0f%%", mix, size,
	       engine_dist_names[r->dist], r->batch, r->mops, 1e3 / r->mops,
	       r->hit_ratio * 100.0, r->of_limit * 100.0);
	if (r->set_fail)
		printf("  (%llu SETs failed)", (unsigned long long)r->set_fail);
	printf("\n");
	fflush(stdout);
}

/* The target: GET 100/0, uniform, batch 32 reaches ENGINE_TARGET
 * of the batch-32 limit. */
static bool engine_is_target(const struct engine_result *r)
{
	return r->set_pct == 0 && r->dist == ENGINE_UNIFORM &&
	       r->batch == ENGINE_BURST;
}

static void engine_print_footer(const struct engine_result *res, unsigned n)
{

	unsigned i, shown = 0;

	printf("\ntarget  GET 100/0, uniform, batch %u at >= %.0f%% of the "
	       "batch-%u limit:\n",
	       ENGINE_BURST, ENGINE_TARGET * 100.0, ENGINE_BURST);
	for (i = 0; i < n; i++) {
		if (!engine_is_target(&res[i]))
			continue;
		printf("        %u/%u: %.0f%%, %s\n", res[i].klen, res[i].vlen,
		       res[i].of_limit * 100.0,
		       res[i].of_limit >= ENGINE_TARGET ? "met" : "NOT met");
		shown++;
	}
	if (!shown)
		printf("        not run (filtered out)\n");
	printf("\n"
	       "mix       GET/SET percent of operations\n"
	       "sizes     key/value bytes; keys are fixed-length decimal "
	       "strings\n"
	       "dist      how keys are drawn from the preloaded set\n"
	       "batch     1: cache_get()/cache_store() per operation; %u: "
	       "bursts of %u,\n"
	       "          the SETs prefetched together "
	       "(cache_prefetch_bulk()), then\n"
	       "          stored one by one, the GETs in one "
	       "cache_get_bulk()\n"
	       "Mops/s    million operations per second (median slice); "
	       "every operation\n"
	       "          includes hashing its key; a GET reads its value's "
	       "first byte\n"
	       "ns/op     1000 / Mops/s\n"
	       "hit%%      GETs that found their key\n"
	       "of limit  Mops/s over the limit's Mreads/s at the same batch "
	       "depth\n"
	       "a GET's lines alone: the memory reads of a GET and nothing "
	       "else (a random\n"
	       "          bucket line, then the item it names: one line, or "
	       "two "
	       "when the item\n"
	       "          straddles a line boundary, as most small items do); "
	       "a ceiling for\n"
	       "          a GET of that many lines, in percent of the limit\n",
	       ENGINE_BURST, ENGINE_BURST);
}

static void engine_print_json(const struct engine_opts *o, const char *cpu,
			      int pinned, const struct engine_limit *lim,
			      const struct engine_result *res, unsigned n)
{
	unsigned i;

	printf("{\"bench\": \"engine\", \"cpu\": \"%s\", \"cpu_pinned\": %d, "
	       "\"keys\": %llu, \"zipf_theta\": %.2f, ",
	       cpu, pinned, (unsigned long long)o->keys, ENGINE_ZIPF_THETA);
	if (o->ops)
		printf("\"ops_per_case\": %llu, ", (unsigned long long)o->ops);
	else
		printf("\"seconds_per_case\": %.3f, ", o->seconds);
	printf("\"repeats\": %u,\n \"limit\": {\"buffer_bytes\": %llu, "
	       "\"transparent_hugepages\": \"%s\", "
	       "\"mreads_batch1\": %.3f, \"mreads_batch%u\": %.3f, "
	       "\"dependent_read_ns\": %.2f, "
	       "\"get_pattern_mops_item_1_line\": %.3f, "
	       "\"get_pattern_mops_item_2_lines\": %.3f},\n \"cases\": [",
	       o->repeats, LIMIT_BYTES, lim->thp, lim->mreads[0], ENGINE_BURST,
	       lim->mreads[1], lim->chase_ns, lim->mgets[0], lim->mgets[1]);
	for (i = 0; i < n; i++) {
		const struct engine_result *r = &res[i];
		char mix[16];

		engine_mix_name(r->set_pct, mix, sizeof(mix));
		printf("%s\n  {\"mix\": \"%s\", \"key_bytes\": %u, "
		       "\"value_bytes\": %u, \"dist\": \"%s\", \"batch\": %u, "
		       "\"mops\": %.3f, \"ns_per_op\": %.2f, "
		       "\"hit_ratio\": %.5f, \"set_failed\": %llu, "
		       "\"of_limit\": %.4f%s}",
		       i ? "," : "", mix, r->klen, r->vlen,
		       engine_dist_names[r->dist], r->batch, r->mops,
		       1e3 / r->mops, r->hit_ratio,
		       (unsigned long long)r->set_fail, r->of_limit,
		       engine_is_target(r)
			       ? (r->of_limit >= ENGINE_TARGET
					  ? ", \"target\": \"met\""
					  : ", \"target\": \"not met\"")
			       : "");
	}
	printf("\n ]}\n");
}

/* ------------------------------------------------------------------------
 * The command
 * ---------------------------------------------------------------------- */

/* Whether a case is selected by the --mix/--sizes/--dist/--batch filters
 * (NULL: all). */
static bool engine_selected(const char *filter, const char *name)
{
	return !filter || !strcmp(filter, name);
}

static bool engine_size_selected(const struct engine_opts *o,
				 const struct engine_size *sz)
{
	char name[32];

	snprintf(name, sizeof(name), "%u/%u", sz->klen, sz->vlen);
	return engine_selected(o->only_sizes, name);
}

static bool engine_case_selected(const struct engine_opts *o, unsigned set_pct,
				 enum engine_dist d, unsigned batch)
{
	char mix[16], b[16];

	engine_mix_name(set_pct, mix, sizeof(mix));
	snprintf(b, sizeof(b), "%u", batch);
	return engine_selected(o->only_mix, mix) &&
	       engine_selected(o->only_dist, engine_dist_names[d]) &&
	       engine_selected(o->only_batch, b);
}

static unsigned engine_count_selected(const struct engine_opts *o)
{
	unsigned i, m, d, b, n = 0;

	for (i = 0; i < ML_ARRAY_SIZE(engine_sizes); i++) {
		if (!engine_size_selected(o, &engine_sizes[i]))
			continue;
		for (m = 0; m < ML_ARRAY_SIZE(engine_set_pcts); m++)
			for (d = 0; d < ENGINE_NDIST; d++)
				for (b = 0; b < ML_ARRAY_SIZE(engine_batches);
				     b++)
					n += engine_case_selected(
						o, engine_set_pcts[m],
						(enum engine_dist)d,
						engine_batches[b]);
	}
	return n;
}

/*
 * Runs every selected case of one key/value size on one shard, preloaded
 * once. Mixes go in order of their share of SETs, so that the read-only
 * cases see the shard exactly as preloaded and the writes of one case age
 * the shard for the next, as they would in service. Returns 0 or -errno;
 * *n counts the results filled.
 */
static int engine_size_cases(const struct engine_opts *o,
			     const struct engine_size *sz,
			     const struct engine_stream *streams,
			     const struct engine_limit *lim,
			     struct engine_result *res, unsigned *n)
{
	char *keys[ENGINE_NDIST] = {NULL};
	struct engine_run e = {0};
	struct cache_stats st;
	uint64_t t0, failed;
	unsigned d, m, b;
	char *value;
	int rc = 0;

	value = malloc(sz->vlen);
	if (!value)
		return -ENOMEM;
	memset(value, 'v', sz->vlen);
	for (d = 0; d < ENGINE_NDIST; d++) {
		if (!streams[d].idx)
			continue;
		keys[d] = engine_stream_keys(&streams[d], sz->klen);
		if (!keys[d]) {
			rc = -ENOMEM;
			goto free_keys;
		}
	}

	e.shard = engine_shard(o->keys, sz);
	if (!e.shard) {
		rc = -errno;
		fprintf(stderr, "engine: cache_create: %s\n", strerror(errno));
		goto free_keys;
	}
	fprintf(stderr, "engine: preloading %llu keys of %u/%u bytes...",
		(unsigned long long)o->keys, sz->klen, sz->vlen);
	t0 = bench_now_ns();
	failed = engine_preload(e.shard, o->keys, sz, value);
	cache_get_stats(e.shard, &st);
	fprintf(stderr, " %.1f s, %llu items, %.1f MiB\n",
		(double)(bench_now_ns() - t0) / 1e9,
		(unsigned long long)st.curr_items,
		(double)st.mem_used / (1 << 20));
	if (failed || st.curr_items != o->keys)
		fprintf(stderr,
			"engine: warning: %llu stores failed, %llu of %llu "
			"keys held\n",
			(unsigned long long)failed,
			(unsigned long long)st.curr_items,
			(unsigned long long)o->keys);

	e.klen = sz->klen;
	e.vlen = sz->vlen;
	e.value = value;
	for (m = 0; m < ML_ARRAY_SIZE(engine_set_pcts); m++) {
		for (d = 0; d < ENGINE_NDIST; d++) {
			if (!keys[d])
				continue;
			e.keys = keys[d];
			e.mix = streams[d].mix;
			e.mask = streams[d].len - 1;
			e.pos = 0;
			for (b = 0; b < ML_ARRAY_SIZE(engine_batches); b++) {
				struct engine_result *r;

				if (!engine_case_selected(o, engine_set_pcts[m],
							  (enum engine_dist)d,
							  engine_batches[b]))
					continue;
				r = &res[(*n)++];
				*r = (struct engine_result){
					.klen = sz->klen,
					.vlen = sz->vlen,
					.set_pct = engine_set_pcts[m],
					.dist = (enum engine_dist)d,
					.batch = engine_batches[b],
				};
				e.set_pct = r->set_pct;
				engine_case(o, &e, r);
				r->of_limit = r->mops / lim->mreads[b];
				if (!o->json)
					engine_print_row(r);
			}
		}
	}
	cache_free(e.shard);
free_keys:
	for (d = 0; d < ENGINE_NDIST; d++) {
		if (keys[d])
			munmap(keys[d], (size_t)streams[d].len * sz->klen);
	}
	free(value);
	return rc;
}

int bench_engine_main(int argc, char **argv)
{
	enum {
		NCASES = ML_ARRAY_SIZE(engine_sizes) * ENGINE_NDIST *
			 ML_ARRAY_SIZE(engine_set_pcts) *
			 ML_ARRAY_SIZE(engine_batches)
	};
	struct engine_stream streams[ENGINE_NDIST] = {0};
	struct engine_result res[NCASES];
	struct engine_limit lim;
	struct engine_opts o;
	unsigned d, i, n = 0;
	char cpu[128];
	int pinned, rc;
	double need;

	rc = engine_parse(argc, argv, &o);
	if (rc)
		return rc > 0 ? 0 : 2;
	if (o.ops && o.ops < o.repeats * (uint64_t)ENGINE_CHUNK)
		o.ops = o.repeats * (uint64_t)ENGINE_CHUNK;
	if (!engine_count_selected(&o)) {
		fprintf(stderr, "engine: no case matches the filters\n");
		return 2;
	}

	/* The largest selected size's shard must fit, with room to spare. */
	need = 0.0;
	for (i = 0; i < ML_ARRAY_SIZE(engine_sizes); i++) {
		const struct engine_size *sz = &engine_sizes[i];

		if (engine_size_selected(&o, sz))
			need = ML_MAX(need, (double)o.keys *
						    (sz->klen + sz->vlen +
						     ENGINE_ITEM_OVERHEAD) *
						    ENGINE_MEM_SLACK);
	}
	if (need > 0.8 * (double)sysconf(_SC_PHYS_PAGES) *
			   (double)sysconf(_SC_PAGESIZE)) {
		fprintf(stderr,
			"engine: %llu keys need about %.1f GiB; use --keys\n",
			(unsigned long long)o.keys, need / (1 << 30));
		return 1;
	}

	bench_cpu_model(cpu, sizeof(cpu));
	pinned = bench_pin_cpu(o.cpu);
	if (pinned < 0) {
		fprintf(stderr, "engine: cannot pin to a CPU: %s\n",
			strerror(-pinned));
		return 1;
	}

	fprintf(stderr, "engine: measuring the machine limit...\n");
	rc = engine_measure_limit(&o, &lim);
	if (rc) {
		fprintf(stderr, "engine: limit: %s\n", strerror(-rc));
		return 1;
	}
	for (d = 0; d < ENGINE_NDIST; d++) {
		if (!engine_selected(o.only_dist, engine_dist_names[d]))
			continue;
		fprintf(stderr, "engine: drawing %u %s operations...\n",
			o.stream_len, engine_dist_names[d]);
		rc = engine_stream_build(&streams[d], (enum engine_dist)d,
					 o.keys, o.stream_len);
		if (rc)
			goto free_streams;
	}

	if (!o.json)
		engine_print_header(&o, cpu, pinned, &lim);
	for (i = 0; i < ML_ARRAY_SIZE(engine_sizes); i++) {
		if (!engine_size_selected(&o, &engine_sizes[i]))
			continue;
		rc = engine_size_cases(&o, &engine_sizes[i], streams, &lim, res,
				       &n);
		if (rc)
			goto free_streams;
	}
	if (o.json)
		engine_print_json(&o, cpu, pinned, &lim, res, n);
	else
		engine_print_footer(res, n);

free_streams:
	for (d = 0; d < ENGINE_NDIST; d++)
		engine_stream_free(&streams[d]);
	if (rc)
		fprintf(stderr, "engine: %s\n", strerror(-rc));
	return rc ? 1 : 0;
}

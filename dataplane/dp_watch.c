/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * watch: memcached's live log of fetches, stores and evictions, for
 * connections that asked for it ("watch [fetchers] [mutations]
 * [evictions] ..."). Every core writes the lines its shard makes into
 * one log (a ring of bytes under a lock, taken only while someone
 * watches); each watcher's core copies what is new into the watcher's
 * output every pass of its loop, and a watcher that falls a whole ring
 * behind is told how many lines it missed ("skipped=N"), as memcached
 * tells it. A watcher's own input is ignored from then on, as in
 * memcached.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "dp_internal.h"

#define LOG_BYTES   (4u << 20)
#define COPY_MAX    (256u << 10) /* per watcher per pass */
#define OUT_MAX	    (1u << 20)	 /* a watcher not reading: no more copied */
#define WATCHER_MAX 16		 /* per core */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_ring[LOG_BYTES];
static uint64_t log_head;  /* bytes ever written */
static uint64_t log_lines; /* lines ever written */
static uint64_t log_gid;
static atomic_ullong watch_cores; /* bit i: core i has a watcher */

static void log_emit(void *arg, const char *line, size_t len);

struct proto_watch dp_watch = {.emit = log_emit};

static void ring_put(const char *p, size_t n)
{
	while (n) {
		size_t at = log_head % LOG_BYTES;
		size_t take = ML_MIN(n, LOG_BYTES - at);

		memcpy(log_ring + at, p, take);
		log_head += take;
		p += take;
		n -= take;
	}
}

static void log_emit(void *arg, const char *line, size_t len)
{
	unsigned long long cores;
	struct timeval tv;
	char pre[64];
	int n;

	(void)arg;
	gettimeofday(&tv, NULL);
	pthread_mutex_lock(&log_lock);
	n = snprintf(pre, sizeof(pre), "ts=%lld.%06ld gid=%llu ",
		     (long long)tv.tv_sec, (long)tv.tv_usec,
		     (unsigned long long)++log_gid);
	ring_put(pre, (size_t)n);
	ring_put(line, len);
	ring_put("\n", 1);
	log_lines++;
	pthread_mutex_unlock(&log_lock);
	/* a watcher's core asleep in epoll is woken for it */
	cores = atomic_load(&watch_cores);
	for (unsigned i = 0; cores; i++, cores >>= 1) {
		uint64_t one = 1;

		if ((cores & 1) && atomic_load(&dp_cores[i].sleeping) &&
		    write(dp_cores[i].evfd, &one, sizeof(one)) < 0)
			(void)0;
	}
}

/* The union of what every watcher asks for; under log_lock. */
static void mask_update(void)
{
	unsigned mask = 0;
	unsigned long long cores = 0;

	for (unsigned i = 0; i < dp_ncores; i++) {
		for (unsigned w = 0; w < dp_cores[i].nwatchers; w++)
			mask |= dp_cores[i].watchers[w]->watch_mask;
		if (dp_cores[i].nwatchers)
			cores |= 1ull << i;
	}
	atomic_store(&dp_watch.mask, mask);
	atomic_store(&watch_cores, cores);
}

/* The kinds a watch command asks for, or 0 for a word memcached 1.6.18
 * does not know. Kinds memlane never logs are taken and stay silent. */
static unsigned watch_kinds(const char *buf, const struct proto_req *req)
{
	static const struct {
		const char *word;
		unsigned bits;
	} kinds[] = {
		{"fetchers", PROTO_WATCH_FETCHERS},
		{"mutations", PROTO_WATCH_MUTATIONS},
		{"evictions", PROTO_WATCH_EVICTIONS},
		{"rawcmds", DP_WATCH_SILENT},
		{"sysevents", DP_WATCH_SILENT},
		{"connevents", DP_WATCH_SILENT},
		{"proxyreqs", DP_WATCH_SILENT},
		{"proxyevents", DP_WATCH_SILENT},
		{"proxyuser", DP_WATCH_SILENT},
	};
	const char *p = buf + req->args_off, *end = p + req->args_len;
	unsigned mask = 0;

	while (p < end) {
		const char *w;
		size_t n, i;

		while (p < end && *p == ' ')
			p++;
		w = p;
		while (p < end && *p != ' ')
			p++;
		n = (size_t)(p - w);
		if (!n)
			break;
		for (i = 0; i < ML_ARRAY_SIZE(kinds); i++)
			if (strlen(kinds[i].word) == n &&
			    memcmp(kinds[i].word, w, n) == 0)
				break;
		if (i == ML_ARRAY_SIZE(kinds))
			return 0;
		mask |= kinds[i].bits;
	}
	/* a bare watch is memcached's fetchers */
	return mask ? mask : PROTO_WATCH_FETCHERS;
}

bool dp_watch_start(struct dp_core *c, struct dp_conn *k, const char *buf,
		    const struct proto_req *req)
{
	static const char ok[] = "OK\r\n";
	unsigned mask;

	if (dp_cfg->no_watch || k->udp || k->forwarded ||
	    c->nwatchers == WATCHER_MAX || !(mask = watch_kinds(buf, req)))
		return false; /* answered as memcached refuses it */
	if (proto_out_reserve(&k->out, sizeof(ok) - 1))
		return false;
	memcpy(k->out.buf + k->out.len, ok, sizeof(ok) - 1);
	k->out.len += sizeof(ok) - 1;
	pthread_mutex_lock(&log_lock);
	k->watch_mask = mask;
	k->watch_pos = log_head;
	k->watch_lines = log_lines;
	c->watchers[c->nwatchers++] = k;
	mask_update();
	pthread_mutex_unlock(&log_lock);
	return true;
}

void dp_watch_stop(struct dp_core *c, struct dp_conn *k)
{
	pthread_mutex_lock(&log_lock);
	for (unsigned w = 0; w < c->nwatchers; w++)
		if (c->watchers[w] == k) {
			c->watchers[w] = c->watchers[--c->nwatchers];
			break;
		}
	k->watch_mask = 0;
	mask_update();
	pthread_mutex_unlock(&log_lock);
}

/* What is new in the log, into one watcher's output; under log_lock. */
static void copy_new(struct dp_conn *k)
{
	uint64_t n;

	if (log_head - k->watch_pos > LOG_BYTES) {
		char msg[48];
		int len = snprintf(
			msg, sizeof(msg), "skipped=%llu\n",
			(unsigned long long)(log_lines - k->watch_lines));

		k->watch_pos = log_head;
		k->watch_lines = log_lines;
		if (!proto_out_reserve(&k->out, (size_t)len)) {
			memcpy(k->out.buf + k->out.len, msg, (size_t)len);
			k->out.len += (size_t)len;
		}
		return;
	}
	n = ML_MIN(log_head - k->watch_pos, (uint64_t)COPY_MAX);
	if (!n || proto_out_reserve(&k->out, n))
		return;
	while (n) {
		size_t at = k->watch_pos % LOG_BYTES;
		size_t take = ML_MIN((size_t)n, LOG_BYTES - at);
		char *dst = k->out.buf + k->out.len;

		memcpy(dst, log_ring + at, take);
		for (size_t i = 0; i < take; i++)
			k->watch_lines += dst[i] == '\n';
		k->out.len += take;
		k->watch_pos += take;
		n -= take;
	}
}

void dp_watch_deliver(struct dp_core *c)
{
	struct dp_conn *ready[WATCHER_MAX];
	unsigned n = 0;

	pthread_mutex_lock(&log_lock);
	for (unsigned w = 0; w < c->nwatchers; w++) {
		struct dp_conn *k = c->watchers[w];

		if (k->closed || k->out.len > OUT_MAX)
			continue;
		copy_new(k);
		if (k->out.len > k->out_sent)
			ready[n++] = k;
	}
	pthread_mutex_unlock(&log_lock);
	/* a send that fails closes the watcher, which leaves the table */
	for (unsigned i = 0; i < n; i++)
		ready[i]->ops->progress(c, ready[i]);
}

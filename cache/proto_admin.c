/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memcached's administrative commands, answered as memcached 1.6.18
 * answers them: shutdown (-A), cache_memlimit, slabs reassign|automove,
 * lru tune|mode|temp_ttl and lru_crawler's subcommands other than the
 * dumps. memlane has no slab classes and no LRU maintainer: a command
 * that would tune them is checked as memcached checks it and what it
 * sets is shown by stats settings; cache_memlimit and lru_crawler act.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto_internal.h"

#define WORDS_MAX 8
/* The slab classes memcached 1.6.18 has with its default -f, -n and -I:
 * 0 (the page pool) to 39; what its slabs reassign accepts. */
#define SLAB_CLASS_LAST 39
/* memcached's largest class id for lru_crawler crawl */
#define CRAWL_CLASS_LAST 63
#define MB		 (1024ull * 1024)

struct words {
	unsigned n;
	const char *w[WORDS_MAX];
	uint32_t len[WORDS_MAX];
};

/* The request's arguments split at spaces; more than WORDS_MAX are
 * counted but not kept. */
static void split(const char *buf, const struct proto_req *req,
		  struct words *ws)
{
	const char *p = buf + req->args_off, *end = p + req->args_len;

	ws->n = 0;
	while (p < end) {
		const char *s;

		while (p < end && *p == ' ')
			p++;
		if (p == end)
			break;
		s = p;
		while (p < end && *p != ' ')
			p++;
		if (ws->n < WORDS_MAX) {
			ws->w[ws->n] = s;
			ws->len[ws->n] = (uint32_t)(p - s);
		}
		ws->n++;
	}
}

static bool is(const struct words *ws, unsigned i, const char *lit)
{
	return i < ws->n && i < WORDS_MAX && ws->len[i] == strlen(lit) &&
	       memcmp(ws->w[i], lit, ws->len[i]) == 0;
}

/* Word i as a C string in tmp, or false when there is none or it is too
 * long to be a number. */
static bool word_copy(const struct words *ws, unsigned i, char *tmp,
		      size_t size)
{
	if (i >= ws->n || i >= WORDS_MAX || ws->len[i] == 0 ||
	    ws->len[i] >= size)
		return false;
	memcpy(tmp, ws->w[i], ws->len[i]);
	tmp[ws->len[i]] = '\0';
	return true;
}

/* memcached's safe_strtoul/strtol on a word: the whole word a number. */
static bool word_num(const struct words *ws, unsigned i, bool sign,
		     long long *v)
{
	char tmp[32], *end;

	if (!word_copy(ws, i, tmp, sizeof(tmp)) || (!sign && tmp[0] == '-'))
		return false;
	errno = 0;
	*v = strtoll(tmp, &end, 10);
	return !errno && *end == '\0';
}

static bool word_double(const struct words *ws, unsigned i, double *v)
{
	char tmp[64], *end;

	if (!word_copy(ws, i, tmp, sizeof(tmp)))
		return false;
	*v = strtod(tmp, &end);
	return *end == '\0';
}

static int say(struct proto_out *out, bool quiet, const char *s)
{
	size_t len = strlen(s);

	if (quiet)
		return 0;
	if (proto_out_reserve(out, len + 2))
		return -ENOMEM;
	memcpy(out->buf + out->len, s, len);
	memcpy(out->buf + out->len + len, "\r\n", 2);
	out->len += len + 2;
	return 0;
}

static int admin_shutdown(struct proto_node *n, const struct words *ws,
			  struct proto_out *out)
{
	bool graceful = is(ws, 0, "graceful");

	if (!n->p.shutdown_cmd || !n->p.shutdown)
		return say(out, false, "ERROR: shutdown not enabled");
	if (ws->n > 1 || (ws->n == 1 && !graceful))
		return say(out, false, "CLIENT_ERROR invalid shutdown mode");
	n->p.shutdown(graceful);
	return -EPIPE; /* the connection closes without a word */
}

/* cache_memlimit MB [noreply]: each core's shard takes its share. */
static int admin_memlimit(struct proto_node *n, const struct words *ws,
			  bool quiet, struct proto_out *out)
{
	long long mb;
	size_t share;

	quiet |= is(ws, ws->n - 1, "noreply");
	if (!word_num(ws, 0, false, &mb) || mb > UINT32_MAX)
		return say(out, quiet, "ERROR");
	if (mb < 8)
		return say(out, quiet,
			   "MEMLIMIT_TOO_SMALL cannot set maxbytes to less "
			   "than 8m");
	if (mb > 1000000000)
		return say(out, quiet,
			   "MEMLIMIT_ADJUST_FAILED input value is megabytes "
			   "not bytes");
	share = (size_t)mb * MB / (n->npeers ? n->npeers : 1);
	for (unsigned i = 0; i < n->nshards; i++)
		if (cache_set_mem_limit(n->shards[i], share / n->nshards))
			return say(out, quiet,
				   "MEMLIMIT_ADJUST_FAILED out of bounds or "
				   "unable to adjust");
	n->p.mem_limit = share;
	return say(out, quiet, "OK");
}

static int admin_slabs(struct proto_node *n, const struct words *ws, bool quiet,
		       struct proto_out *out)
{
	long long a, b;

	if (is(ws, 0, "reassign") && ws->n == 3) {
		if (!word_num(ws, 1, true, &a) || !word_num(ws, 2, true, &b))
			return say(out, quiet,
				   "CLIENT_ERROR bad command line format");
		if (a == b)
			return say(out, quiet,
				   "SAME src and dst class are identical");
		if (a < 0 || a > SLAB_CLASS_LAST || b < 0 ||
		    b > SLAB_CLASS_LAST)
			return say(out, quiet,
				   "BADCLASS invalid src or dst class id");
		/* segments are reused whole: no class has pages to give */
		return say(out, quiet,
			   "NOSPARE source class has no spare pages");
	}
	if (is(ws, 0, "automove") && (ws->n == 2 || ws->n == 3)) {
		quiet |= is(ws, ws->n - 1, "noreply");
		if (!word_num(ws, 1, false, &a))
			return say(out, quiet,
				   "CLIENT_ERROR bad command line format");
		if (a > 2)
			return say(out, quiet, "ERROR");
		n->slab_automove = (unsigned)a;
		return say(out, quiet, "OK");
	}
	return say(out, quiet, "ERROR");
}

static int admin_lru(struct proto_node *n, const struct words *ws, bool quiet,
		     struct proto_out *out)
{
	long long hot, warm, ttl;
	double hf, wf;

	if (is(ws, 0, "tune") && ws->n >= 5) {
		if (!word_num(ws, 1, false, &hot) ||
		    !word_num(ws, 2, false, &warm) ||
		    !word_double(ws, 3, &hf) || !word_double(ws, 4, &wf))
			return say(out, quiet, "ERROR");
		if (hot + warm > 80)
			return say(
				out, quiet,
				"ERROR hot and warm pcts must not exceed 80");
		if (hf <= 0 || wf <= 0)
			return say(out, quiet,
				   "ERROR hot/warm age factors must be greater "
				   "than 0");
		return say(out, quiet, "OK");
	}
	if (is(ws, 0, "mode") && ws->n >= 2) {
		if (is(ws, 1, "flat") || is(ws, 1, "segmented"))
			return say(out, quiet, "OK");
		return say(out, quiet, "ERROR");
	}
	if (is(ws, 0, "temp_ttl") && ws->n >= 2) {
		if (!word_num(ws, 1, true, &ttl))
			return say(out, quiet, "ERROR");
		return say(out, quiet, "OK");
	}
	(void)n;
	return say(out, quiet, "ERROR");
}

/* A crawl's class list: all, or ids from 1 to 63 joined by commas. */
static bool crawl_classes(const struct words *ws)
{
	const char *p = ws->w[1], *end = p + ws->len[1];

	if (is(ws, 1, "all"))
		return true;
	while (p < end) {
		unsigned v = 0, digits = 0;

		while (p < end && *p >= '0' && *p <= '9' && digits < 4) {
			v = v * 10 + (unsigned)(*p++ - '0');
			digits++;
		}
		if (!digits || v < 1 || v > CRAWL_CLASS_LAST)
			return false;
		if (p < end && *p++ != ',')
			return false;
	}
	return true;
}

static int admin_crawler(struct proto_node *n, const struct words *ws,
			 const struct proto_req *req, struct proto_out *out)
{
	long long v;

	if (ws->n == 2 && is(ws, 0, "crawl")) {
		if (!n->lru_crawler)
			return say(out, req->noreply,
				   "CLIENT_ERROR lru crawler disabled");
		if (!crawl_classes(ws))
			return say(out, req->noreply,
				   "BADCLASS invalid class id");
		/* the expired items go now: one pass through the index */
		for (unsigned i = 0; i < n->nshards; i++)
			cache_crawl(n->shards[i]);
		/* one crawl is one start, however many cores it runs on */
		n->c.lru_crawler_starts += !req->copy;
		return say(out, req->noreply, "OK");
	}
	if (ws->n == 2 && (is(ws, 0, "tocrawl") || is(ws, 0, "sleep"))) {
		bool sleep = is(ws, 0, "sleep");

		if (!word_num(ws, 1, false, &v) || v > UINT32_MAX)
			return say(out, req->noreply,
				   "CLIENT_ERROR bad command line format");
		if (sleep && v > 1000000)
			return say(out, req->noreply,
				   "CLIENT_ERROR sleep must be one second or "
				   "less");
		*(sleep ? &n->p.lru_crawler_sleep : &n->p.lru_crawler_tocrawl) =
			(unsigned)v;
		return say(out, req->noreply, "OK");
	}
	if (ws->n == 1 && is(ws, 0, "enable")) {
		bool was = n->lru_crawler;

		n->lru_crawler = true;
		return say(out, req->noreply,
			   was ? "ERROR failed to start lru crawler thread"
			       : "OK");
	}
	if (ws->n == 1 && is(ws, 0, "disable")) {
		n->lru_crawler = false;
		return say(out, req->noreply, "OK");
	}
	return say(out, req->noreply, "ERROR");
}

bool proto_dump_allowed(const struct proto_node *n, const struct proto_req *req)
{
	if (n->p.no_dump)
		return false;
	return req->cmd != PROTO_LRU_CRAWLER || n->lru_crawler;
}

int proto_admin_execute(struct proto_node *n, const char *buf,
			const struct proto_req *req, struct proto_out *out)
{
	struct words ws;

	if (req->cmd == PROTO_LRU_CRAWLER) /* a metadump refused */
		return say(out, false,
			   n->p.no_dump ? "ERROR metadump not allowed"
					: "CLIENT_ERROR lru crawler disabled");
	split(buf, req, &ws);
	switch (req->num) {
	case PROTO_ADMIN_SHUTDOWN:
		return admin_shutdown(n, &ws, out);
	case PROTO_ADMIN_MEMLIMIT:
		return admin_memlimit(n, &ws, req->noreply, out);
	case PROTO_ADMIN_SLABS:
		return admin_slabs(n, &ws, req->noreply, out);
	case PROTO_ADMIN_LRU:
		return admin_lru(n, &ws, req->noreply, out);
	case PROTO_ADMIN_CRAWLER:
		return admin_crawler(n, &ws, req, out);
	case PROTO_ADMIN_WATCH:
		if (n->p.no_watch)
			return say(out, req->noreply,
				   "CLIENT_ERROR watch commands not allowed");
		return say(out, req->noreply, "ERROR");
	default:
		return say(out, req->noreply, "ERROR");
	}
}

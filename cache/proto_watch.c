/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * watch, memcached's live log: the lines for fetches, stores and
 * evictions, in memcached 1.6.18's words, handed to the transport's log
 * (which adds the time and a sequence number) only while a watcher asks
 * for that kind. memlane has one size class, so clsid is 1 for an item
 * and 0 for a miss, and the client's fd is not known here (cfd=0).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "proto_internal.h"

#define LINE_MAX_WATCH (PROTO_KEY_MAX + 160)

static void emit(struct proto_node *n, const char *line, int len)
{
	if (len > 0)
		n->p.watch->emit(
			n->p.watch->arg, line,
			ML_MIN((size_t)len, (size_t)LINE_MAX_WATCH - 1));
}

void proto_watch_fetch(struct proto_node *n, const char *key, uint32_t klen,
		       const struct cache_item *it)
{
	char line[LINE_MAX_WATCH];

	emit(n, line,
	     snprintf(line, sizeof(line),
		      "type=item_get key=%.*s status=%s clsid=%u cfd=0 "
		      "size=%u",
		      (int)klen, key, it ? "found" : "not_found", it ? 1u : 0u,
		      it ? it->vlen : 0u));
}

static const char *store_cmd(const struct store_op *op)
{
	if (op->cas_cmd)
		return "cas";
	switch (op->st.mode) {
	case CACHE_ADD:
		return "add";
	case CACHE_REPLACE:
		return "replace";
	case CACHE_APPEND:
		return "append";
	case CACHE_PREPEND:
		return "prepend";
	default:
		return "set";
	}
}

static const char *store_status(const struct store_op *op, int rc)
{
	switch (rc) {
	case 0:
		return "stored";
	case -EEXIST:
		/* only a CAS that lost is EXISTS; an add that found the key
		 * is NOT_STORED, as its reply says */
		return op->cas_cmd ? "exists" : "not_stored";
	case -ENOENT:
		return op->cas_cmd ? "not_found" : "not_stored";
	case -E2BIG:
		return "too_large";
	case -ENOMEM:
		return "no_memory";
	default:
		return "not_stored";
	}
}

void proto_watch_store(struct proto_node *n, const struct store_op *op, int rc)
{
	char line[LINE_MAX_WATCH];
	long long ttl =
		op->st.exptime == 0 ? 0 : (long long)op->st.exptime - n->now;

	emit(n, line,
	     snprintf(line, sizeof(line),
		      "type=item_store key=%.*s status=%s cmd=%s ttl=%lld "
		      "clsid=1 cfd=0 size=%u",
		      (int)op->st.klen, op->st.key, store_status(op, rc),
		      store_cmd(op), ttl, op->st.vlen));
}

void proto_watch_evicted(void *node, const struct cache_item *it)
{
	struct proto_node *n = node;
	char line[LINE_MAX_WATCH];

	if (!WATCHING(n, PROTO_WATCH_EVICTIONS))
		return;
	emit(n, line,
	     snprintf(line, sizeof(line),
		      "type=eviction key=%.*s fetch=%s ttl=%lld la=%lld "
		      "clsid=1 size=%u",
		      (int)it->klen, it->key, it->fetched ? "yes" : "no",
		      it->exptime ? (long long)it->exptime - n->now : -1LL,
		      (long long)n->now - it->atime, it->vlen));
}

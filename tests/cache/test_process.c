/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of cache/process.c: requests are parsed by the real parser
 * (proto_parse() on literal strings) and executed on a node; the replies
 * are compared with what memcached 1.6.18 answers to the same bytes.
 *
 * Time never passes by itself: the tests move the node's clock with
 * proto_node_set_time().
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cache.h"
#include "common.h"

#define MIB (1024u * 1024u)

/* The node clock at creation: any recent unix time. */
#define T0 1700000000u

#define VERSION_LINE "VERSION 1.6.18-memlane-" MEMLANE_VERSION "\r\n"

/* ------------------------------------------------------------------------
 * Fixture: a node, a connection's parser and reply buffer
 * ---------------------------------------------------------------------- */

struct fx {
	struct proto_node *n;
	struct proto_parser ps;
	struct proto_out out;
	uint32_t now;
	char *reply; /* the last run's replies, NUL-terminated */
	bool closed; /* the last run ended with -EPIPE */
};

static struct fx *fx_new(unsigned nshards, size_t item_size_max)
{
	struct proto_node_params p = {
		.nshards = nshards,
		.mem_limit = 32 * MIB,
		.item_size_max = item_size_max,
		.segment_size = 64 * 1024,
		.now = T0,
		.pid = 4242,
		.conn_max = 1024,
		.tcp_port = 11211,
		.threads = nshards,
	};
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->n = proto_node_create(&p);
	assert_non_null(f->n);
	f->ps.item_size_max = (uint32_t)item_size_max;
	f->now = T0;
	return f;
}

static int setup1(void **state)
{
	*state = fx_new(1, 0);
	return 0;
}

static int setup2(void **state)
{
	*state = fx_new(2, 0);
	return 0;
}

/* -I 4 KiB, to reach the item size limit with small values. */
static int setup_small_items(void **state)
{
	*state = fx_new(1, 4096);
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	proto_node_free(f->n);
	proto_out_free(&f->out);
	free(f->reply);
	free(f);
	return 0;
}

/* Parses and executes every request in text[0..len) and returns their
 * replies. Every request in a test's text is complete. */
static const char *run_n(struct fx *f, const char *text, size_t len)
{
	char *buf = malloc(len + 1);
	size_t pos = 0;

	assert_non_null(buf);
	memcpy(buf, text, len);
	f->out.len = 0;
	f->closed = false;
	while (pos < len) {
		struct proto_req req;
		size_t used;
		int rc;

		memset(&req, 0, sizeof(req));
		used = proto_parse(&f->ps, buf + pos, len - pos, &req);
		assert_true(used > 0);
		assert_true(used <= len - pos);
		rc = proto_execute(f->n, buf + pos, &req, &f->out);
		pos += used;
		if (rc == -EPIPE) {
			f->closed = true;
			break;
		}
		assert_int_equal(rc, 0);
	}
	free(buf);
	free(f->reply);
	f->reply = malloc(f->out.len + 1);
	assert_non_null(f->reply);
	memcpy(f->reply, f->out.buf, f->out.len);
	f->reply[f->out.len] = '\0';
	return f->reply;
}

static const char *run(struct fx *f, const char *text)
{
	return run_n(f, text, strlen(text));
}

/* Runs text and checks the whole reply. */
#define EXPECT(f, text, want) assert_string_equal(run((f), (text)), (want))

static void advance(struct fx *f, uint32_t secs)
{
	f->now += secs;
	proto_node_set_time(f->n, f->now);
}

/* The CAS in a reply: the 5th field of its first VALUE line, else its
 * first meta " c<number>" flag. */
static uint64_t cas_in(const char *reply)
{
	unsigned long long v;
	const char *c;

	if (sscanf(reply, "VALUE %*s %*u %*u %llu", &v) == 1)
		return v;
	c = strstr(reply, " c");
	assert_non_null(c);
	assert_int_equal(sscanf(c, " c%llu", &v), 1);
	return v;
}

/* The value of "STAT <name> <value>" in a stats reply, or -1. */
static long long stat_of(const char *reply, const char *name)
{
	char pat[128];
	const char *p;
	long long v;

	snprintf(pat, sizeof(pat), "STAT %s ", name);
	p = strstr(reply, pat);
	if (!p)
		return -1;
	if (sscanf(p + strlen(pat), "%lld", &v) != 1)
		return -1;
	return v;
}

/* Checks that a stats reply gives exactly these names, in this order,
 * each as "STAT <name> <value>", then END. */
static void expect_stat_names(const char *reply, const char *const *names,
			      size_t count)
{
	const char *p = reply;
	size_t i;

	for (i = 0; i < count; i++) {
		size_t len = strlen(names[i]);
		const char *eol = strstr(p, "\r\n");

		assert_non_null(eol);
		if (strncmp(p, "STAT ", 5) != 0 ||
		    strncmp(p + 5, names[i], len) != 0 || p[5 + len] != ' ' ||
		    p + 5 + len + 1 >= eol)
			fail_msg("stat %zu: want %s, got %.*s", i, names[i],
				 (int)(eol - p), p);
		p = eol + 2;
	}
	assert_string_equal(p, "END\r\n");
}

/* ------------------------------------------------------------------------
 * Text storage and retrieval
 * ---------------------------------------------------------------------- */

static void test_set_get(void **state)
{
	struct fx *f = *state;

	EXPECT(f, "set a 5 0 3\r\nabc\r\n", "STORED\r\n");
	EXPECT(f, "get a\r\n", "VALUE a 5 3\r\nabc\r\nEND\r\n");
	EXPECT(f, "get a b a\r\n",
	       "VALUE a 5 3\r\nabc\r\nVALUE a 5 3\r\nabc\r\nEND\r\n");
	EXPECT(f, "get nope\r\n", "END\r\n");
	/* an empty value and a value with any bytes */
	EXPECT(f, "set e 0 0 0\r\n\r\n", "STORED\r\n");
	EXPECT(f, "get e\r\n", "VALUE e 0 0\r\n\r\nEND\r\n");
	{
		static const char req[] =
			"set z 4294967295 0 3\r\na\0b\r\nget z\r\n";
		static const char want[] = "STORED\r\nVALUE z 4294967295 3\r\n"
					   "a\0b\r\nEND\r\n";

		run_n(f, req, sizeof(req) - 1);
		assert_int_equal(f->out.len, sizeof(want) - 1);
		assert_memory_equal(f->out.buf, want, sizeof(want) - 1);
	}
	/* overwrite */
	EXPECT(f, "set a 0 0 6\r\nbarbaz\r\nget a\r\n",
	       "STORED\r\nVALUE a 0 6\r\nbarbaz\r\nEND\r\n");
}

static void test_gets_cas(void **state)
{
	struct fx *f = *state;
	char cmd[128];
	uint64_t cas, cas2;

	EXPECT(f, "set c 3 0 1\r\n1\r\n", "STORED\r\n");
	cas = cas_in(run(f, "gets c\r\n"));
	snprintf(cmd, sizeof(cmd), "VALUE c 3 1 %llu\r\n1\r\nEND\r\n",
		 (unsigned long long)cas);
	assert_string_equal(f->reply, cmd);

	snprintf(cmd, sizeof(cmd), "cas c 0 0 1 %llu\r\n2\r\n",
		 (unsigned long long)cas + 1);
	EXPECT(f, cmd, "EXISTS\r\n");
	snprintf(cmd, sizeof(cmd), "cas c 7 0 1 %llu\r\n2\r\n",
		 (unsigned long long)cas);
	EXPECT(f, cmd, "STORED\r\n");
	/* the same CAS again: the item has a new one now */
	EXPECT(f, cmd, "EXISTS\r\n");
	cas2 = cas_in(run(f, "gets c\r\n"));
	assert_true(cas2 != cas);
	assert_true(strncmp(f->reply, "VALUE c 7 1 ", 12) == 0);
	/* a CAS of 0 matches nothing */
	EXPECT(f, "cas c 0 0 1 0\r\n3\r\n", "EXISTS\r\n");
	EXPECT(f, "cas nokey 0 0 1 1\r\nx\r\n", "NOT_FOUND\r\n");
	EXPECT(f, "cas nokey 0 0 1 1 noreply\r\nx\r\n", "");
	snprintf(cmd, sizeof(cmd), "cas c 0 0 1 %llu noreply\r\n4\r\nget c\r\n",
		 (unsigned long long)cas2);
	EXPECT(f, cmd, "VALUE c 0 1\r\n4\r\nEND\r\n");
}

static void test_add_replace_append(void **state)
{
	struct fx *f = *state;

	EXPECT(f, "set a 5 0 3\r\nabc\r\n", "STORED\r\n");
	EXPECT(f, "add a 0 0 1\r\nx\r\n", "NOT_STORED\r\n");
	EXPECT(f, "add b 1 0 1\r\nx\r\n", "STORED\r\n");
	EXPECT(f, "replace c 0 0 1\r\ny\r\n", "NOT_STORED\r\n");
	EXPECT(f, "replace b 2 0 2\r\nyy\r\n", "STORED\r\n");
	EXPECT(f, "get b\r\n", "VALUE b 2 2\r\nyy\r\nEND\r\n");
	/* append and prepend keep the stored flags */
	EXPECT(f, "append b 9 0 2\r\nzz\r\nprepend b 9 0 2\r\nww\r\n",
	       "STORED\r\nSTORED\r\n");
	EXPECT(f, "get b\r\n", "VALUE b 2 6\r\nwwyyzz\r\nEND\r\n");
	EXPECT(f, "append nx 0 0 1\r\na\r\nprepend nx 0 0 1\r\na\r\n",
	       "NOT_STORED\r\nNOT_STORED\r\n");
	/* noreply hides every answer */
	EXPECT(f, "add a 0 0 1 noreply\r\nx\r\n", "");
	EXPECT(f, "replace nx 0 0 1 noreply\r\nx\r\n", "");
	EXPECT(f, "set a 0 0 1 noreply\r\nq\r\nappend a 0 0 1 noreply\r\nr\r\n",
	       "");
	EXPECT(f, "get a nx\r\n", "VALUE a 0 2\r\nqr\r\nEND\r\n");
}

static void test_many_keys(void **state)
{
	struct fx *f = *state;
	char line[2048], want[8192];
	size_t l, w;
	unsigned i;

	for (i = 0; i < 150; i += 2) {
		char cmd[64];

		snprintf(cmd, sizeof(cmd), "set k%u %u 0 %u\r\n%u\r\n", i, i,
			 i < 10	   ? 1
			 : i < 100 ? 2
				   : 3,
			 i);
		EXPECT(f, cmd, "STORED\r\n");
	}
	/* more keys than one bulk lookup takes, half of them misses, in
	 * request order */
	l = (size_t)snprintf(line, sizeof(line), "get");
	w = 0;
	for (i = 0; i < 150; i++) {
		l += (size_t)snprintf(line + l, sizeof(line) - l, " k%u", i);
		if (i % 2 == 0)
			w += (size_t)snprintf(want + w, sizeof(want) - w,
					      "VALUE k%u %u %u\r\n%u\r\n", i, i,
					      i < 10	? 1
					      : i < 100 ? 2
							: 3,
					      i);
	}
	snprintf(line + l, sizeof(line) - l, "\r\n");
	snprintf(want + w, sizeof(want) - w, "END\r\n");
	EXPECT(f, line, want);
	run(f, "stats\r\n");
	assert_int_equal(stat_of(f->reply, "cmd_get"), 150);
	assert_int_equal(stat_of(f->reply, "get_hits"), 75);
	assert_int_equal(stat_of(f->reply, "get_misses"), 75);
}

static void test_delete(void **state)
{
	struct fx *f = *state;

	EXPECT(f, "set d 0 0 1\r\nx\r\n", "STORED\r\n");
	EXPECT(f, "delete d\r\n", "DELETED\r\n");
	EXPECT(f, "delete d\r\n", "NOT_FOUND\r\n");
	EXPECT(f, "get d\r\n", "END\r\n");
	EXPECT(f,
	       "set d 0 0 1\r\nx\r\ndelete d noreply\r\ndelete d noreply\r\n",
	       "STORED\r\n");
	EXPECT(f, "get d\r\n", "END\r\n");
}

static void test_incr_decr(void **state)
{
	struct fx *f = *state;

	EXPECT(f, "set n 5 0 2\r\n10\r\n", "STORED\r\n");
	EXPECT(f, "incr n 5\r\n", "15\r\n");
	EXPECT(f, "decr n 100\r\n", "0\r\n");
	EXPECT(f, "incr n 18446744073709551615\r\n",
	       "18446744073709551615\r\n");
	EXPECT(f, "incr n 1\r\n", "0\r\n");
	/* the number shrank in place: blanks keep the value's length */
	EXPECT(f, "get n\r\n",
	       "VALUE n 5 20\r\n0"
	       "                   \r\nEND\r\n");
	EXPECT(f, "set n 0 0 3\r\n100\r\ndecr n 95\r\nget n\r\n",
	       "STORED\r\n5\r\nVALUE n 0 3\r\n5  \r\nEND\r\n");
	EXPECT(f, "incr n 1\r\n", "6\r\n");
	EXPECT(f, "incr nx 1\r\ndecr nx 1\r\n", "NOT_FOUND\r\nNOT_FOUND\r\n");
	EXPECT(f, "set s 0 0 2\r\nab\r\nincr s 1\r\ndecr s 1\r\n",
	       "STORED\r\n"
	       "CLIENT_ERROR cannot increment or decrement non-numeric "
	       "value\r\n"
	       "CLIENT_ERROR cannot increment or decrement non-numeric "
	       "value\r\n");
	/* noreply hides the error too */
	EXPECT(f,
	       "incr s 1 noreply\r\nincr nx 1 noreply\r\nincr n 4 noreply\r\n",
	       "");
	EXPECT(f, "get n\r\n", "VALUE n 0 3\r\n10 \r\nEND\r\n");
	run(f, "stats\r\n");
	assert_int_equal(stat_of(f->reply, "incr_hits"), 5);
	assert_int_equal(stat_of(f->reply, "incr_misses"), 2);
	assert_int_equal(stat_of(f->reply, "decr_hits"), 2);
	assert_int_equal(stat_of(f->reply, "decr_misses"), 1);
}

static void test_touch_gat(void **state)
{
	struct fx *f = *state;
	char want[128];
	uint64_t cas;

	EXPECT(f, "set t 3 0 1\r\nx\r\n", "STORED\r\n");
	cas = cas_in(run(f, "gets t\r\n"));
	EXPECT(f, "touch t 100\r\n", "TOUCHED\r\n");
	EXPECT(f, "touch nx 100\r\n", "NOT_FOUND\r\n");
	EXPECT(f, "touch t 100 noreply\r\ntouch nx 1 noreply\r\n", "");
	EXPECT(f, "mg t t\r\n", "HD t100\r\n");
	EXPECT(f, "gat 50 t nx t\r\n",
	       "VALUE t 3 1\r\nx\r\nVALUE t 3 1\r\nx\r\nEND\r\n");
	EXPECT(f, "mg t t\r\n", "HD t50\r\n");
	/* a touch leaves the CAS alone */
	snprintf(want, sizeof(want), "VALUE t 3 1 %llu\r\nx\r\nEND\r\n",
		 (unsigned long long)cas);
	EXPECT(f, "gats 0 t\r\n", want);
	EXPECT(f, "mg t t\r\n", "HD t-1\r\n");
	EXPECT(f, "gat 10 nx\r\n", "END\r\n");
	/* a negative TTL: the item is answered once, then gone */
	EXPECT(f, "gat -1 t\r\n", "VALUE t 3 1\r\nx\r\nEND\r\n");
	EXPECT(f, "get t\r\n", "END\r\n");
	EXPECT(f, "set t 0 0 1\r\nx\r\ntouch t -1\r\nget t\r\n",
	       "STORED\r\nTOUCHED\r\nEND\r\n");
	run(f, "stats\r\n");
	assert_int_equal(stat_of(f->reply, "cmd_touch"), 11);
	assert_int_equal(stat_of(f->reply, "touch_hits"), 7);
	assert_int_equal(stat_of(f->reply, "touch_misses"), 4);
}

/* ------------------------------------------------------------------------
 * Time: expiry and flush_all
 * ---------------------------------------------------------------------- */

static void test_expiry(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	/* relative: expired when exptime <= now */
	EXPECT(f, "set r 0 10 1\r\nx\r\n", "STORED\r\n");
	advance(f, 9);
	EXPECT(f, "get r\r\n", "VALUE r 0 1\r\nx\r\nEND\r\n");
	advance(f, 1);
	EXPECT(f, "get r\r\n", "END\r\n");

	/* 30 days is still relative */
	EXPECT(f, "set r 0 2592000 1\r\nx\r\nmg r t\r\n",
	       "STORED\r\nHD t2592000\r\n");

	/* larger is a unix time */
	snprintf(cmd, sizeof(cmd), "set a 0 %u 1\r\nx\r\n", f->now + 100);
	EXPECT(f, cmd, "STORED\r\n");
	EXPECT(f, "mg a t\r\n", "HD t100\r\n");
	advance(f, 99);
	EXPECT(f, "get a\r\n", "VALUE a 0 1\r\nx\r\nEND\r\n");
	advance(f, 1);
	EXPECT(f, "get a\r\n", "END\r\n");
	snprintf(cmd, sizeof(cmd), "set a 0 %u 1\r\nx\r\nget a\r\n", f->now);
	EXPECT(f, cmd, "STORED\r\nEND\r\n");
	EXPECT(f, "set a 0 2592001 1\r\nx\r\nget a\r\n", "STORED\r\nEND\r\n");

	/* negative: stored, replacing the old value, but never seen */
	EXPECT(f, "set n 0 0 1\r\nx\r\nset n 0 -1 1\r\ny\r\nget n\r\n",
	       "STORED\r\nSTORED\r\nEND\r\n");
	EXPECT(f, "add n 0 0 1\r\nz\r\nget n\r\n",
	       "STORED\r\nVALUE n 0 1\r\nz\r\nEND\r\n");

	/* meta T */
	EXPECT(f, "ms m 1 T5\r\nx\r\n", "HD\r\n");
	advance(f, 4);
	EXPECT(f, "mg m v t\r\n", "VA 1 t1\r\nx\r\n");
	advance(f, 1);
	EXPECT(f, "mg m v\r\n", "EN\r\n");
	EXPECT(f, "ms m 1 T-1\r\nx\r\nmg m v\r\n", "HD\r\nEN\r\n");
}

static void test_flush_all(void **state)
{
	struct fx *f = *state;

	EXPECT(f, "set a 0 0 1\r\na\r\nset b 0 0 1\r\nb\r\nflush_all\r\n",
	       "STORED\r\nSTORED\r\nOK\r\n");
	EXPECT(f, "get a b\r\n", "END\r\n");
	EXPECT(f, "set a 0 0 1\r\na\r\nflush_all noreply\r\nget a\r\n",
	       "STORED\r\nEND\r\n");
	EXPECT(f, "set a 0 0 1\r\na\r\nflush_all 0\r\nget a\r\n",
	       "STORED\r\nOK\r\nEND\r\n");
	EXPECT(f, "set a 0 0 1\r\na\r\nflush_all -1\r\nget a\r\n",
	       "STORED\r\nOK\r\nEND\r\n");

	/* a delay: memcached drops what was written up to and including the
	 * second before the moment named, once that second comes */
	EXPECT(f, "set a 0 0 1\r\na\r\nflush_all 10\r\nget a\r\n",
	       "STORED\r\nOK\r\nVALUE a 0 1\r\na\r\nEND\r\n");
	advance(f, 8);
	EXPECT(f, "get a\r\n", "VALUE a 0 1\r\na\r\nEND\r\n");
	advance(f, 1);
	EXPECT(f, "get a\r\n", "END\r\n");
	/* what is written in that second is gone at once */
	EXPECT(f,
	       "set a 0 0 1\r\na\r\nget a\r\nmg v N30\r\nmg v N30\r\n"
	       "incr a 1\r\n",
	       "STORED\r\nEND\r\nHD W\r\nHD W\r\nNOT_FOUND\r\n");
	/* and it happens once */
	advance(f, 1);
	EXPECT(f, "set a 0 0 1\r\na\r\nget a\r\n",
	       "STORED\r\nVALUE a 0 1\r\na\r\nEND\r\n");
	advance(f, 100);
	EXPECT(f, "get a\r\n", "VALUE a 0 1\r\na\r\nEND\r\n");

	/* a later flush_all replaces a pending one */
	EXPECT(f, "flush_all 10\r\nflush_all 100 noreply\r\n", "OK\r\n");
	advance(f, 50);
	EXPECT(f, "get a\r\n", "VALUE a 0 1\r\na\r\nEND\r\n");
	advance(f, 49);
	EXPECT(f, "get a\r\n", "END\r\n");
	/* a delay of 1 is the current second */
	EXPECT(f,
	       "set a 0 0 1\r\na\r\nflush_all 1\r\nget a\r\n"
	       "set a 0 0 1\r\na\r\nget a\r\n",
	       "STORED\r\nOK\r\nEND\r\nSTORED\r\nEND\r\n");
	/* an immediate flush_all ends that: later writes stay */
	EXPECT(f, "flush_all\r\nset a 0 0 1\r\na\r\nget a\r\n",
	       "OK\r\nSTORED\r\nVALUE a 0 1\r\na\r\nEND\r\n");
	advance(f, 1);
	EXPECT(f, "get a\r\n", "VALUE a 0 1\r\na\r\nEND\r\n");

	run(f, "stats\r\n");
	assert_int_equal(stat_of(f->reply, "cmd_flush"), 9);
}

/* ------------------------------------------------------------------------
 * Admin commands, errors, closing
 * ---------------------------------------------------------------------- */

static void test_admin(void **state)
{
	struct fx *f = *state;

	EXPECT(f, "version\r\n", VERSION_LINE);
	EXPECT(f, "verbosity 1\r\n", "OK\r\n");
	EXPECT(f, "verbosity 1 noreply\r\n", "");
	EXPECT(f, "mn\r\n", "MN\r\n");
	EXPECT(f, "bogus\r\n", "ERROR\r\n");
	assert_false(f->closed);
	/* quit: nothing more is answered */
	EXPECT(f, "quit\r\n", "");
	assert_true(f->closed);
	EXPECT(f, "version\r\nquit\r\nversion\r\n", VERSION_LINE);
	assert_true(f->closed);
}

static void test_execute_contract(void **state)
{
	struct fx *f = *state;
	struct proto_req req;
	char quit[] = "quit\r\n";

	/* quit: -EPIPE, nothing appended */
	memset(&req, 0, sizeof(req));
	assert_int_equal(proto_parse(&f->ps, quit, 6, &req), 6);
	f->out.len = 0;
	assert_int_equal(proto_execute(f->n, quit, &req, &f->out), -EPIPE);
	assert_int_equal(f->out.len, 0);

	/* a close without a word, into a buffer that has no memory yet */
	memset(&req, 0, sizeof(req));
	req.cmd = PROTO_ERR;
	req.err = "";
	req.close = true;
	assert_null(f->out.buf);
	assert_int_equal(proto_execute(f->n, quit, &req, &f->out), -EPIPE);
	assert_int_equal(f->out.len, 0);

	/* an error the connection does not survive: answered, then -EPIPE */
	memset(&req, 0, sizeof(req));
	req.cmd = PROTO_ERR;
	req.err = "SERVER_ERROR bye\r\n";
	req.close = true;
	assert_int_equal(proto_execute(f->n, quit, &req, &f->out), -EPIPE);
	assert_int_equal(f->out.len, 18);
	assert_memory_equal(f->out.buf, "SERVER_ERROR bye\r\n", 18);

	/* one it survives */
	req.close = false;
	req.err = "ERROR\r\n";
	assert_int_equal(proto_execute(f->n, quit, &req, &f->out), 0);
	assert_int_equal(f->out.len, 25);

	/* nothing to do */
	memset(&req, 0, sizeof(req));
	req.cmd = PROTO_NONE;
	assert_int_equal(proto_execute(f->n, quit, &req, &f->out), 0);
	assert_int_equal(f->out.len, 25);
}

static void test_out_buffer(void **state)
{
	struct fx *f = *state;
	size_t vlen = 100000, len, cap;
	char *req = malloc(vlen + 64);
	char *buf;

	assert_non_null(req);
	len = (size_t)sprintf(req, "set big 0 0 %zu\r\n", vlen);
	memset(req + len, 'v', vlen);
	memcpy(req + len + vlen, "\r\nget big\r\n", 11);
	run_n(f, req, len + vlen + 11);
	assert_int_equal(f->out.len, 8 + 20 + vlen + 2 + 5);
	assert_true(f->out.cap >= f->out.len);
	assert_memory_equal(f->out.buf + 8, "VALUE big 0 100000\r\nvvv", 23);
	assert_memory_equal(f->out.buf + f->out.len - 7, "\r\nEND\r\n", 7);

	/* once grown, the same replies need no new memory */
	buf = f->out.buf;
	cap = f->out.cap;
	run_n(f, req, len + vlen + 11);
	assert_ptr_equal(f->out.buf, buf);
	assert_int_equal(f->out.cap, cap);
	free(req);

	/* reserve grows by doubling and keeps what is there */
	{
		struct proto_out o = {0};

		assert_int_equal(proto_out_reserve(&o, 10), 0);
		assert_true(o.cap >= 10);
		memcpy(o.buf, "0123456789", 10);
		o.len = 10;
		cap = o.cap;
		assert_int_equal(proto_out_reserve(&o, cap), 0);
		assert_true(o.cap >= 2 * cap);
		assert_memory_equal(o.buf, "0123456789", 10);
		assert_int_equal(proto_out_reserve(&o, SIZE_MAX), -ENOMEM);
		assert_int_equal(o.len, 10);
		proto_out_free(&o);
		assert_null(o.buf);
		assert_int_equal(o.cap, 0);
		proto_out_free(&o);
	}
}

/* Writes "<line>\r\n" then vlen bytes of 'v' and \r\n into req; returns
 * the length. */
static size_t big_req(char *req, const char *line, size_t vlen)
{
	size_t len = (size_t)sprintf(req, "%s\r\n", line);

	memset(req + len, 'v', vlen);
	memcpy(req + len + vlen, "\r\n", 2);
	return len + vlen + 2;
}

/*
 * Values too large for -I (4 KiB here) with memcached's item overhead.
 * memcached answers SERVER_ERROR and, for set and ms, drops the old
 * value; an append whose data fits alone but not joined with the old
 * value is NOT_STORED and changes nothing.
 */
static void test_too_large(void **state)
{
	struct fx *f = *state;
	char *req = malloc(8192);

	assert_non_null(req);
	EXPECT(f, "set a 0 0 1\r\nx\r\n", "STORED\r\n");
	assert_string_equal(run_n(f, req, big_req(req, "set a 0 0 4090", 4090)),
			    "SERVER_ERROR object too large for cache\r\n");
	EXPECT(f, "get a\r\n", "END\r\n");
	/* noreply hides it; the old value goes all the same */
	EXPECT(f, "set a 0 0 1\r\nx\r\n", "STORED\r\n");
	assert_string_equal(
		run_n(f, req, big_req(req, "set a 0 0 4090 noreply", 4090)),
		"");
	EXPECT(f, "get a\r\n", "END\r\n");

	/* add, replace, append: the old value stays */
	EXPECT(f, "set a 0 0 1\r\nx\r\n", "STORED\r\n");
	assert_string_equal(
		run_n(f, req, big_req(req, "replace a 0 0 4090", 4090)),
		"SERVER_ERROR object too large for cache\r\n");
	assert_string_equal(
		run_n(f, req, big_req(req, "append a 0 0 4090", 4090)),
		"SERVER_ERROR object too large for cache\r\n");
	EXPECT(f, "get a\r\n",
	       "VALUE a 0 1\r\nx\r\n"
	       "END\r\n");

	/* an append that fits alone but not joined */
	assert_string_equal(run_n(f, req, big_req(req, "set a 0 0 3000", 3000)),
			    "STORED\r\n");
	assert_string_equal(
		run_n(f, req, big_req(req, "append a 0 0 3000", 3000)),
		"NOT_STORED\r\n");
	assert_string_equal(run_n(f, req, big_req(req, "ms a 3000 MA", 3000)),
			    "NS\r\n");
	run(f, "mg a s\r\n");
	assert_string_equal(f->reply, "HD s3000\r\n");

	/* meta set: the error shows even with q, and the old value goes */
	assert_string_equal(run_n(f, req, big_req(req, "ms a 4090 q", 4090)),
			    "SERVER_ERROR object too large for cache\r\n");
	EXPECT(f, "mg a v\r\n", "EN\r\n");
	free(req);

	run(f, "stats\r\n");
	assert_int_equal(stat_of(f->reply, "store_too_large"), 5);
}

/* ------------------------------------------------------------------------
 * stats
 * ---------------------------------------------------------------------- */

static const char *const general_names[] = {
	"pid",
	"uptime",
	"time",
	"version",
	"libevent",
	"pointer_size",
	"rusage_user",
	"rusage_system",
	"max_connections",
	"curr_connections",
	"total_connections",
	"rejected_connections",
	"connection_structures",
	"response_obj_oom",
	"response_obj_count",
	"response_obj_bytes",
	"read_buf_count",
	"read_buf_bytes",
	"read_buf_bytes_free",
	"read_buf_oom",
	"reserved_fds",
	"cmd_get",
	"cmd_set",
	"cmd_flush",
	"cmd_touch",
	"cmd_meta",
	"get_hits",
	"get_misses",
	"get_expired",
	"get_flushed",
	"delete_misses",
	"delete_hits",
	"incr_misses",
	"incr_hits",
	"decr_misses",
	"decr_hits",
	"cas_misses",
	"cas_hits",
	"cas_badval",
	"touch_hits",
	"touch_misses",
	"store_too_large",
	"store_no_memory",
	"auth_cmds",
	"auth_errors",
	"bytes_read",
	"bytes_written",
	"limit_maxbytes",
	"accepting_conns",
	"listen_disabled_num",
	"time_in_listen_disabled_us",
	"threads",
	"conn_yields",
	"hash_power_level",
	"hash_bytes",
	"hash_is_expanding",
	"slab_reassign_rescues",
	"slab_reassign_chunk_rescues",
	"slab_reassign_evictions_nomem",
	"slab_reassign_inline_reclaim",
	"slab_reassign_busy_items",
	"slab_reassign_busy_deletes",
	"slab_reassign_running",
	"slabs_moved",
	"lru_crawler_running",
	"lru_crawler_starts",
	"lru_maintainer_juggles",
	"malloc_fails",
	"log_worker_dropped",
	"log_worker_written",
	"log_watcher_skipped",
	"log_watcher_sent",
	"log_watchers",
	"unexpected_napi_ids",
	"round_robin_fallback",
	"bytes",
	"curr_items",
	"total_items",
	"slab_global_page_pool",
	"expired_unfetched",
	"evicted_unfetched",
	"evicted_active",
	"evictions",
	"reclaimed",
	"crawler_reclaimed",
	"crawler_items_checked",
	"lrutail_reflocked",
	"moves_to_cold",
	"moves_to_warm",
	"moves_within_lru",
	"direct_reclaims",
	"lru_bumps_dropped",
};

static const char *const settings_names[] = {
	"maxbytes",
	"maxconns",
	"tcpport",
	"udpport",
	"inter",
	"verbosity",
	"oldest",
	"evictions",
	"domain_socket",
	"umask",
	"shutdown_command",
	"growth_factor",
	"chunk_size",
	"num_threads",
	"num_threads_per_udp",
	"stat_key_prefix",
	"detail_enabled",
	"reqs_per_event",
	"cas_enabled",
	"tcp_backlog",
	"binding_protocol",
	"auth_enabled_sasl",
	"auth_enabled_ascii",
	"item_size_max",
	"maxconns_fast",
	"hashpower_init",
	"slab_reassign",
	"slab_automove",
	"slab_automove_ratio",
	"slab_automove_window",
	"slab_chunk_max",
	"lru_crawler",
	"lru_crawler_sleep",
	"lru_crawler_tocrawl",
	"tail_repair_time",
	"flush_enabled",
	"dump_enabled",
	"hash_algorithm",
	"lru_maintainer_thread",
	"lru_segmented",
	"hot_lru_pct",
	"warm_lru_pct",
	"hot_max_factor",
	"warm_max_factor",
	"temp_lru",
	"temporary_ttl",
	"idle_timeout",
	"watcher_logbuf_size",
	"worker_logbuf_size",
	"read_buf_mem_limit",
	"track_sizes",
	"inline_ascii_response",
	"ext_item_size",
	"ext_item_age",
	"ext_low_ttl",
	"ext_recache_rate",
	"ext_wbuf_size",
	"ext_compact_under",
	"ext_drop_under",
	"ext_max_sleep",
	"ext_max_frag",
	"slab_automove_freeratio",
	"ext_drop_unread",
	"ssl_enabled",
	"ssl_chain_cert",
	"ssl_key",
	"ssl_verify_mode",
	"ssl_keyformat",
	"ssl_ciphers",
	"ssl_ca_cert",
	"ssl_wbuf_size",
	"ssl_session_cache",
	"ssl_kernel_tls",
	"ssl_min_version",
	"num_napi_ids",
	"memory_file",
};

static void test_stats(void **state)
{
	struct fx *f = *state;
	struct proto_conn_stats cs = {
		.curr_connections = 3,
		.total_connections = 10,
		.bytes_read = 1000,
		.bytes_written = 2000,
	};

	proto_node_set_conn_stats(f->n, &cs);
	run(f, "stats\r\n");
	expect_stat_names(f->reply, general_names,
			  ML_ARRAY_SIZE(general_names));
	assert_int_equal(stat_of(f->reply, "pid"), 4242);
	assert_int_equal(stat_of(f->reply, "time"), T0);
	assert_int_equal(stat_of(f->reply, "curr_connections"), 3);
	assert_int_equal(stat_of(f->reply, "total_connections"), 10);
	assert_int_equal(stat_of(f->reply, "bytes_written"), 2000);
	assert_int_equal(stat_of(f->reply, "limit_maxbytes"), 32 * MIB);
	assert_non_null(strstr(f->reply, "STAT version 1.6.18-memlane-"));
	/* a trailing space is no group */
	run(f, "stats \r\n");
	expect_stat_names(f->reply, general_names,
			  ML_ARRAY_SIZE(general_names));

	run(f, "stats settings\r\n");
	expect_stat_names(f->reply, settings_names,
			  ML_ARRAY_SIZE(settings_names));
	assert_int_equal(stat_of(f->reply, "maxbytes"), 32 * MIB);
	assert_int_equal(stat_of(f->reply, "item_size_max"), MIB);
	assert_non_null(strstr(f->reply, "STAT evictions on\r\n"));

	/* counters */
	advance(f, 7);
	run(f, "set a 0 0 1\r\na\r\nget a b\r\ndelete b\r\nmg a\r\n"
	       "stats\r\n");
	assert_int_equal(stat_of(f->reply, "uptime"), 7);
	assert_int_equal(stat_of(f->reply, "cmd_set"), 1);
	assert_int_equal(stat_of(f->reply, "cmd_get"), 3);
	assert_int_equal(stat_of(f->reply, "get_hits"), 2);
	assert_int_equal(stat_of(f->reply, "get_misses"), 1);
	assert_int_equal(stat_of(f->reply, "delete_misses"), 1);
	assert_int_equal(stat_of(f->reply, "curr_items"), 1);
	assert_int_equal(stat_of(f->reply, "total_items"), 1);
	assert_true(stat_of(f->reply, "bytes") > 0);

	/* stats reset zeroes the counters, not the items */
	EXPECT(f, "stats reset\r\n", "RESET\r\n");
	run(f, "stats\r\n");
	assert_int_equal(stat_of(f->reply, "cmd_get"), 0);
	assert_int_equal(stat_of(f->reply, "cmd_set"), 0);
	assert_int_equal(stat_of(f->reply, "total_items"), 0);
	assert_int_equal(stat_of(f->reply, "total_connections"), 0);
	assert_int_equal(stat_of(f->reply, "bytes_read"), 0);
	assert_int_equal(stat_of(f->reply, "curr_items"), 1);
	assert_int_equal(stat_of(f->reply, "curr_connections"), 3);

	EXPECT(f, "stats nosuchgroup\r\n", "ERROR\r\n");
	EXPECT(f, "stats sizes\r\nstats extstore\r\nstats cachedump 1 1\r\n",
	       "STAT sizes_status disabled\r\nEND\r\nEND\r\n"
	       "CLIENT_ERROR stats cachedump not allowed\r\n");
	EXPECT(f, "stats detail\r\n",
	       "CLIENT_ERROR usage: stats detail on|off|dump\r\n");
	EXPECT(f, "stats detail on\r\n", "OK\r\n");
	run(f, "stats settings\r\n");
	assert_non_null(strstr(f->reply, "STAT detail_enabled yes\r\n"));
}

static void test_stats_items_slabs(void **state)
{
	struct fx *f = *state;

	/* nothing stored: no class */
	EXPECT(f, "stats items\r\n", "END\r\n");
	run(f, "stats slabs\r\n");
	assert_null(strstr(f->reply, "STAT 1:"));
	assert_non_null(strstr(f->reply, "STAT active_slabs 0\r\n"));

	EXPECT(f, "set b 0 0 3\r\nbbb\r\n", "STORED\r\n");
	run(f, "stats items\r\n");
	assert_true(strncmp(f->reply,
			    "STAT items:1:number 1\r\n"
			    "STAT items:1:number_hot ",
			    47) == 0);
	assert_non_null(
		strstr(f->reply, "STAT items:1:hits_to_temp 0\r\nEND\r\n"));
	run(f, "stats slabs\r\n");
	assert_true(strncmp(f->reply, "STAT 1:chunk_size ", 18) == 0);
	assert_non_null(strstr(f->reply, "STAT 1:cmd_set 1\r\n"));
	assert_non_null(strstr(f->reply, "STAT active_slabs 1\r\n"
					 "STAT total_malloced "));
	assert_int_equal(strcmp(f->reply + strlen(f->reply) - 5, "END\r\n"), 0);
}

static int transport_lines(void *arg, struct proto_out *out)
{
	static const char lines[] = "STAT dp_backend test\r\n";
	unsigned *calls = arg;

	(*calls)++;
	if (proto_out_reserve(out, sizeof(lines) - 1))
		return -ENOMEM;
	memcpy(out->buf + out->len, lines, sizeof(lines) - 1);
	out->len += sizeof(lines) - 1;
	return 0;
}

/* stats dataplane is the transport's: an unknown group until it gives
 * its counters, then its lines and END. */
static void test_stats_dataplane(void **state)
{
	struct fx *f = *state;
	unsigned calls = 0;

	EXPECT(f, "stats dataplane\r\n", "ERROR\r\n");
	proto_node_set_transport_stats(f->n, transport_lines, &calls);
	EXPECT(f, "stats dataplane\r\n", "STAT dp_backend test\r\nEND\r\n");
	EXPECT(f, "stats dataplane extra\r\n",
	       "STAT dp_backend test\r\nEND\r\n");
	assert_int_equal(calls, 2);
	/* other groups are not the transport's */
	EXPECT(f, "stats datapl\r\n", "ERROR\r\n");
	assert_int_equal(calls, 2);
}

/* ------------------------------------------------------------------------
 * Meta commands
 * ---------------------------------------------------------------------- */

static void test_mg_flags(void **state)
{
	struct fx *f = *state;
	char want[160];
	uint64_t cas;

	EXPECT(f, "ms mk 3 F7 T0\r\nabc\r\n", "HD\r\n");
	EXPECT(f, "mg mk\r\n", "HD\r\n");
	EXPECT(f, "mg mk v\r\n", "VA 3\r\nabc\r\n");
	cas = cas_in(run(f, "mg mk c\r\n"));
	/* return flags come back in request order */
	snprintf(want, sizeof(want),
		 "VA 3 s3 f7 t-1 c%llu kmk O123 h1 l0\r\nabc\r\n",
		 (unsigned long long)cas);
	EXPECT(f, "mg mk s v f t c k O123 h l\r\n", want);
	snprintf(want, sizeof(want), "HD l0 h1 kmk f7 s3 t-1 c%llu\r\n",
		 (unsigned long long)cas);
	EXPECT(f, "mg mk l h k f s t c\r\n", want);
	EXPECT(f, "mg mk O9 k v s\r\n", "VA 3 O9 kmk s3\r\nabc\r\n");
	/* q hides a miss only */
	EXPECT(f, "mg mk q\r\n", "HD\r\n");
	EXPECT(f, "mg nx q\r\nmg nx q k v\r\n", "");
	EXPECT(f, "mg nx\r\n", "EN\r\n");
	EXPECT(f, "mg nx v k O1\r\n", "EN knx O1\r\n");
	EXPECT(f, "mg nx s O2 t k\r\n", "EN O2 knx\r\n");
	EXPECT(f, "mg mk v q\r\nmg nx v q\r\nmg mk k q\r\nmn\r\n",
	       "VA 3\r\nabc\r\nHD kmk\r\nMN\r\n");

	/* h and l show the state before this access; u changes neither */
	EXPECT(f, "set h 0 0 1\r\nh\r\n", "STORED\r\n");
	advance(f, 5);
	EXPECT(f, "mg h h l u\r\nmg h h l\r\nmg h h l\r\n",
	       "HD h0 l5\r\nHD h0 l5\r\nHD h1 l0\r\n");

	/* T updates the TTL where it stands among the flags */
	EXPECT(f, "mg mk t T100\r\n", "HD t-1\r\n");
	EXPECT(f, "mg mk t\r\n", "HD t100\r\n");
	EXPECT(f, "mg mk T200 t\r\n", "HD t200\r\n");
	EXPECT(f, "mg mk T0 t\r\n", "HD t-1\r\n");
	EXPECT(f, "mg nx T100 t\r\n", "EN\r\n");

	run(f, "stats\r\n");
	/* a T on a miss counts as a get */
	assert_int_equal(stat_of(f->reply, "cmd_touch"), 3);
	assert_int_equal(stat_of(f->reply, "touch_hits"), 3);
	assert_int_equal(stat_of(f->reply, "touch_misses"), 0);
}

static void test_mg_vivify_recache(void **state)
{
	struct fx *f = *state;
	char want[128];
	uint64_t cas;

	/* N: a miss makes an empty item and wins; later askers see Z */
	run(f, "mg viv N30 v t c s k\r\n");
	cas = cas_in(f->reply);
	snprintf(want, sizeof(want), "VA 0 t30 c%llu s0 kviv W\r\n\r\n",
		 (unsigned long long)cas);
	assert_string_equal(f->reply, want);
	snprintf(want, sizeof(want), "VA 0 t30 c%llu s0 Z\r\n\r\n",
		 (unsigned long long)cas);
	EXPECT(f, "mg viv N30 v t c s\r\n", want);
	EXPECT(f, "mg viv v t\r\n", "VA 0 t30 Z\r\n\r\n");
	EXPECT(f, "mg viv N30 q\r\n", "HD Z\r\n");
	EXPECT(f, "mg viv2 N30 q\r\n", "HD W\r\n");
	/* the TTL shown is the one in force where t stands */
	EXPECT(f, "mg vv1 t N30 s\r\n", "HD t-1 s0 W\r\n");
	EXPECT(f, "mg vv1 t\r\n", "HD t30 Z\r\n");
	EXPECT(f, "mg vv2 N30 T100 t\r\nmg vv3 T100 N30 t\r\nmg vv3 t\r\n",
	       "HD t100 W\r\nHD t30 W\r\nHD t30 Z\r\n");
	/* storing the value ends the win state */
	EXPECT(f, "ms viv 4 T0\r\nreal\r\nmg viv v N30\r\n",
	       "HD\r\nVA 4\r\nreal\r\n");

	/* R: win when the remaining TTL is below the token */
	EXPECT(f, "ms r1 2 T100\r\nhi\r\n", "HD\r\n");
	EXPECT(f, "mg r1 R30 t\r\n", "HD t100\r\n");
	EXPECT(f, "mg r1 R200 t\r\n", "HD t100 W\r\n");
	EXPECT(f, "mg r1 R200 t\r\n", "HD t100 Z\r\n");
	EXPECT(f, "ms r2 2 T0\r\nhi\r\nmg r2 R200 t\r\n", "HD\r\nHD t-1\r\n");
	/* R sees the TTL as a T before it left it */
	EXPECT(f, "ms r3 2 T100\r\nhi\r\nmg r3 T10 R30 t\r\n",
	       "HD\r\nHD t10 W\r\n");
	EXPECT(f, "ms r4 2 T10\r\nhi\r\nmg r4 R30 T100 t\r\nmg r4 t\r\n",
	       "HD\r\nHD t100 W\r\nHD t100 Z\r\n");
}

static void test_md(void **state)
{
	struct fx *f = *state;
	char cmd[128];
	uint64_t cas, cas2;

	EXPECT(f, "set d 0 0 1\r\nx\r\nmd d\r\nmd d\r\n",
	       "STORED\r\nHD\r\nNF\r\n");
	/* q hides HD only */
	EXPECT(f, "set d 0 0 1\r\nx\r\nmd d q\r\nmd d q k\r\nmd d O5 k\r\n",
	       "STORED\r\nNF kd\r\nNF O5 kd\r\n");
	EXPECT(f, "set d 0 0 1\r\nx\r\nmd d k O6\r\n",
	       "STORED\r\nHD kd O6\r\n");

	/* CAS */
	EXPECT(f, "set d 0 0 1\r\nx\r\n", "STORED\r\n");
	cas = cas_in(run(f, "mg d c\r\n"));
	snprintf(cmd, sizeof(cmd), "md d C%llu k\r\n",
		 (unsigned long long)cas + 1);
	EXPECT(f, cmd, "EX kd\r\n");
	EXPECT(f, "md d C0 q\r\n", "EX\r\n");
	EXPECT(f, "md nope C5\r\n", "NF\r\n");
	snprintf(cmd, sizeof(cmd), "md d C%llu\r\n", (unsigned long long)cas);
	EXPECT(f, cmd, "HD\r\n");
	EXPECT(f, "mg d v\r\n", "EN\r\n");

	/* I: stale with a new CAS; X and a win for the first asker */
	EXPECT(f, "ms st 2 T0\r\nhi\r\n", "HD\r\n");
	cas = cas_in(run(f, "mg st c\r\n"));
	EXPECT(f, "md st I T30\r\n", "HD\r\n");
	cas2 = cas_in(run(f, "mg st v c t\r\n"));
	assert_true(cas2 != cas);
	snprintf(cmd, sizeof(cmd), "VA 2 c%llu t30 X W\r\nhi\r\n",
		 (unsigned long long)cas2);
	assert_string_equal(f->reply, cmd);
	snprintf(cmd, sizeof(cmd), "VA 2 c%llu t30 Z X\r\nhi\r\n",
		 (unsigned long long)cas2);
	EXPECT(f, "mg st v c t\r\n", cmd);
	EXPECT(f, "mg st\r\n", "HD Z X\r\n");
	EXPECT(f, "ms st 2 C1\r\nyo\r\n", "EX\r\n");
	/* marking again hands out a new win */
	EXPECT(f, "md st I q\r\nmg st\r\n", "HD X W\r\n");
	/* a store ends it */
	snprintf(cmd, sizeof(cmd), "ms st 5 C%llu\r\nfresh\r\n",
		 (unsigned long long)cas_in(run(f, "mg st c\r\n")));
	EXPECT(f, cmd, "HD\r\n");
	EXPECT(f, "mg st v\r\n", "VA 5\r\nfresh\r\n");
	EXPECT(f, "md nope I\r\n", "NF\r\n");

	run(f, "stats\r\n");
	assert_int_equal(stat_of(f->reply, "delete_hits"), 4);
}

static void test_ms(void **state)
{
	struct fx *f = *state;
	char cmd[128], want[128];
	uint64_t cas, cas2;

	EXPECT(f, "ms a 1\r\nA\r\nmg a v f t\r\n",
	       "HD\r\nVA 1 f0 t-1\r\nA\r\n");
	EXPECT(f, "ms a 2 F123 T100\r\nAA\r\nmg a v f t\r\n",
	       "HD\r\nVA 2 f123 t100\r\nAA\r\n");
	run(f, "ms a 2 c\r\nAB\r\n");
	cas = cas_in(f->reply);
	snprintf(want, sizeof(want), "HD c%llu\r\n", (unsigned long long)cas);
	assert_string_equal(f->reply, want);
	EXPECT(f, "ms a 2 k O99\r\nAC\r\n", "HD ka O99\r\n");
	EXPECT(f, "ms a 0\r\n\r\nmg a v s\r\n", "HD\r\nVA 0 s0\r\n\r\n");

	/* q hides HD only */
	EXPECT(f, "ms a 2 q\r\nAF\r\nms a 2 q MR\r\nAG\r\n", "");
	EXPECT(f, "ms nothere 2 q MR k O1\r\nXX\r\n", "NS knothere O1\r\n");
	run(f, "ms n2 2 ME k O1 c\r\nv4\r\n");
	snprintf(want, sizeof(want), "HD kn2 O1 c%llu\r\n",
		 (unsigned long long)cas_in(f->reply));
	assert_string_equal(f->reply, want);
	EXPECT(f, "ms n2 2 ME k O1 c\r\nv5\r\n", "NS kn2 O1 c0\r\n");

	/* modes */
	EXPECT(f, "ms m 3 MS\r\nset\r\nms m 3 ME\r\nadd\r\n", "HD\r\nNS\r\n");
	EXPECT(f, "ms m 3 MA\r\napp\r\nms m 3 MP\r\npre\r\nmg m v\r\n",
	       "HD\r\nHD\r\nVA 9\r\npresetapp\r\n");
	EXPECT(f, "ms m 3 MR\r\nrep\r\nmg m v\r\n", "HD\r\nVA 3\r\nrep\r\n");
	EXPECT(f,
	       "ms none 3 MR\r\nrep\r\nms none 3 MA\r\napp\r\n"
	       "ms none 3 MP\r\npre\r\n",
	       "NS\r\nNS\r\nNS\r\n");
	/* memcached 1.6.18 does not vivify an append */
	EXPECT(f, "ms none 3 MA N30\r\napp\r\nmg none v\r\n", "NS\r\nEN\r\n");
	/* modes are upper case only */
	EXPECT(f, "ms m 1 Ms\r\ns\r\nms m 1 Ma\r\na\r\nmg m v\r\n",
	       "CLIENT_ERROR invalid mode for ms M token\r\n"
	       "CLIENT_ERROR invalid mode for ms M token\r\n"
	       "VA 3\r\nrep\r\n");
	/* append keeps the stored flags */
	EXPECT(f, "ms fl 2 F7\r\nab\r\nms fl 2 MA F9\r\ncd\r\nmg fl v f\r\n",
	       "HD\r\nHD\r\nVA 4 f7\r\nabcd\r\n");

	/* CAS compare */
	cas = cas_in(run(f, "ms c 1 c\r\n1\r\n"));
	snprintf(cmd, sizeof(cmd), "ms c 1 C%llu c\r\n2\r\n",
		 (unsigned long long)cas);
	cas2 = cas_in(run(f, cmd));
	assert_true(cas2 != cas);
	EXPECT(f, cmd, "EX c0\r\n");
	snprintf(cmd, sizeof(cmd), "ms c 1 C%llu MA\r\n3\r\n",
		 (unsigned long long)cas2);
	EXPECT(f, cmd, "HD\r\n");
	EXPECT(f, cmd, "EX\r\n");
	EXPECT(f, "mg c v\r\n", "VA 2\r\n23\r\n");
	EXPECT(f, "ms c 1 C0\r\n4\r\n", "EX\r\n");
	EXPECT(f, "ms nocas 1 C1\r\nx\r\nms nocas 1 MR C1\r\nx\r\n",
	       "NF\r\nNF\r\n");
	EXPECT(f, "ms nocas 1 MA C1\r\nx\r\nms nocas 1 ME C1\r\nx\r\n",
	       "NS\r\nHD\r\n");

	/* I: an older CAS stores the value but marks it stale */
	cas = cas_in(run(f, "ms inv 3 c\r\none\r\n"));
	run(f, "ms inv 3 c\r\ntwo\r\n");
	snprintf(cmd, sizeof(cmd), "ms inv 3 I C%llu c\r\nold\r\n",
		 (unsigned long long)cas);
	cas2 = cas_in(run(f, cmd));
	snprintf(want, sizeof(want), "VA 3 c%llu X W\r\nold\r\n",
		 (unsigned long long)cas2);
	EXPECT(f, "mg inv v c\r\n", want);
	snprintf(cmd, sizeof(cmd), "ms inv 3 I C%llu c\r\nnew\r\n",
		 (unsigned long long)cas2 + 1000);
	EXPECT(f, cmd, "EX c0\r\n");
	EXPECT(f, "ms inv 3\r\nfix\r\nmg inv v\r\n", "HD\r\nVA 3\r\nfix\r\n");

	/* TTL */
	EXPECT(f, "ms t 1 T-1\r\nt\r\nmg t v\r\n", "HD\r\nEN\r\n");

	run(f, "stats\r\n");
	/* CAS counters count set and replace with C (append's C is a
	 * condition, not a cas) */
	assert_int_equal(stat_of(f->reply, "cas_hits"), 2);
	assert_int_equal(stat_of(f->reply, "cas_badval"), 3);
	assert_int_equal(stat_of(f->reply, "cas_misses"), 2);
}

static void test_ma(void **state)
{
	struct fx *f = *state;
	char cmd[128], want[128];
	uint64_t cas;

	EXPECT(f, "ma n1\r\nma n1 q\r\nma n1 O3 k\r\n",
	       "NF\r\nNF\r\nNF O3 kn1\r\n");
	run(f, "ma n1 N0 J10 v t c k O1\r\n");
	cas = cas_in(f->reply);
	snprintf(want, sizeof(want), "VA 2 t-1 c%llu kn1 O1\r\n10\r\n",
		 (unsigned long long)cas);
	assert_string_equal(f->reply, want);
	EXPECT(f, "ma n1 v\r\n", "VA 2\r\n11\r\n");
	EXPECT(f, "ma n1 q\r\nma n1\r\n", "HD\r\n");
	EXPECT(f, "ma n1 v D5 MD\r\n", "VA 1\r\n8\r\n");
	EXPECT(f, "ma n1 v D100 M-\r\n", "VA 1\r\n0\r\n");
	EXPECT(f, "ma n1 v M+ D18446744073709551615\r\n",
	       "VA 20\r\n18446744073709551615\r\n");
	/* wraps; t before T shows the old TTL */
	EXPECT(f, "ma n1 v MI D2 t T100\r\n", "VA 1 t-1\r\n1\r\n");
	EXPECT(f, "ma n1 t v T200\r\n", "VA 1 t100\r\n2\r\n");
	/* the number shrank in place: blanks keep its length */
	EXPECT(f, "mg n1 t v\r\n",
	       "VA 20 t200\r\n2"
	       "                   \r\n");
	EXPECT(f, "ma n1 T50 t\r\n", "HD t50\r\n");
	EXPECT(f, "ma n1 v C1\r\nma n1 v C1 q\r\n", "EX\r\nEX\r\n");
	/* a CAS of 0 is no compare for ma */
	EXPECT(f, "ma n1 v C0\r\n", "VA 1\r\n4\r\n");
	cas = cas_in(run(f, "mg n1 c\r\n"));
	snprintf(cmd, sizeof(cmd), "ma n1 v C%llu c\r\n",
		 (unsigned long long)cas);
	run(f, cmd);
	assert_true(strncmp(f->reply, "VA 1 c", 6) == 0);
	assert_true(cas_in(f->reply) != cas);
	assert_true(strcmp(strstr(f->reply, "\r\n"), "\r\n5\r\n") == 0);

	/* vivify: J is the value, no delta applied */
	EXPECT(f, "ma v2 N0 MD J3 v\r\n", "VA 1\r\n3\r\n");
	/* q hides an update, not a creation */
	EXPECT(f, "ma v3 q N0 J5\r\nma v3 v\r\nma v3 q N0\r\n",
	       "HD\r\nVA 1\r\n6\r\n");
	EXPECT(f, "ma v4 t N30 v\r\nma v4 t\r\n",
	       "VA 1 t-1\r\n0\r\nHD t30\r\n");
	EXPECT(f, "ma v5 N30 T100 t\r\nma v6 T100 N30 t\r\n",
	       "HD t100\r\nHD t30\r\n");

	EXPECT(f, "set w 0 0 3\r\nabc\r\nma w\r\nma w q\r\n",
	       "STORED\r\n"
	       "CLIENT_ERROR cannot increment or decrement non-numeric "
	       "value\r\n"
	       "CLIENT_ERROR cannot increment or decrement non-numeric "
	       "value\r\n");

	run(f, "stats\r\n");
	assert_int_equal(stat_of(f->reply, "incr_misses"), 3);
	assert_int_equal(stat_of(f->reply, "decr_hits"), 2);
}

static void test_me(void **state)
{
	struct fx *f = *state;
	char want[128];
	uint64_t cas;

	EXPECT(f, "set me1 0 100 3\r\nabc\r\n", "STORED\r\n");
	cas = cas_in(run(f, "mg me1 c u\r\n"));
	snprintf(want, sizeof(want),
		 "ME me1 exp=-100 la=0 cas=%llu fetch=no cls=1 size=65\r\n",
		 (unsigned long long)cas);
	EXPECT(f, "me me1\r\n", want);
	advance(f, 3);
	EXPECT(f, "get me1\r\n", "VALUE me1 0 3\r\nabc\r\nEND\r\n");
	advance(f, 2);
	snprintf(want, sizeof(want),
		 "ME me1 exp=-95 la=2 cas=%llu fetch=yes cls=1 size=65\r\n",
		 (unsigned long long)cas);
	EXPECT(f, "me me1\r\n", want);
	EXPECT(f, "me nx\r\n", "EN\r\n");
	EXPECT(f, "set me2 7 0 3\r\nabc\r\n", "STORED\r\n");
	run(f, "me me2\r\n");
	assert_true(strncmp(f->reply, "ME me2 exp=-1 la=0 cas=", 23) == 0);
	assert_non_null(strstr(f->reply, " fetch=no cls=1 size=69\r\n"));
}

static void test_base64_keys(void **state)
{
	struct fx *f = *state;
	char want[128];

	run(f, "ms YWJj 2 b k c\r\nv1\r\n");
	snprintf(want, sizeof(want), "HD kYWJj b c%llu\r\n",
		 (unsigned long long)cas_in(f->reply));
	assert_string_equal(f->reply, want);
	/* the key is the decoded bytes */
	EXPECT(f, "get abc\r\n", "VALUE abc 0 2\r\nv1\r\nEND\r\n");
	EXPECT(f, "mg YWJj b v k s O1\r\n", "VA 2 kYWJj b s2 O1\r\nv1\r\n");
	run(f, "me YWJj b\r\n");
	assert_true(strncmp(f->reply, "ME YWJj exp=-1 la=0 cas=", 24) == 0);
	EXPECT(f, "md YWJj b k q\r\nmg YWJj b k\r\n", "EN kYWJj b\r\n");
	EXPECT(f, "ma YWI= b k N0 v\r\n", "VA 1 kYWI= b\r\n0\r\n");
	EXPECT(f, "mg ab v\r\n", "VA 1\r\n0\r\n");

	/* the item remembers that its key came in base64: mg k and me
	 * answer it so whatever the request used */
	EXPECT(f, "ms ZGJnYg== 1 b\r\nx\r\nmg dbgb k v\r\n",
	       "HD\r\nVA 1 kZGJnYg== b\r\nx\r\n");
	run(f, "me dbgb\r\n");
	assert_true(strncmp(f->reply, "ME ZGJnYg== exp=-1 ", 19) == 0);
	EXPECT(f, "incr dbgb 1\r\ntouch dbgb 10\r\nmg dbgb k\r\n",
	       "CLIENT_ERROR cannot increment or decrement non-numeric "
	       "value\r\n"
	       "TOUCHED\r\nHD kZGJnYg== b\r\n");
	/* a plain key stays plain, asked for with b or not */
	EXPECT(f, "set xyz 0 0 1\r\n1\r\nmg eHl6 b k\r\nmd eHl6 b k\r\n",
	       "STORED\r\nHD kxyz\r\nHD keHl6 b\r\n");
	/* items made by a vivify or an append forget it */
	EXPECT(f, "mg eHl6MQ== b N30 k\r\nmg xyz1 k\r\n",
	       "HD kxyz1 W\r\nHD kxyz1 Z\r\n");
	EXPECT(f, "ma eHl6Mg== b N0 k\r\nmg xyz2 k\r\n",
	       "HD keHl6Mg== b\r\nHD kxyz2\r\n");
	EXPECT(f,
	       "ms eHl6Mw== 1 b\r\na\r\nms eHl6Mw== 1 b MA\r\nc\r\n"
	       "mg xyz3 k v\r\n",
	       "HD\r\nHD\r\nVA 2 kxyz3\r\nac\r\n");
}

/* CAS values are unique across the node: each shard puts its id in the
 * low bits. */
static void test_cas_unique_shards(void **state)
{
	struct fx *f = *state;
	uint64_t cas[200];
	unsigned per_shard[2] = {0, 0};
	unsigned i, j;

	for (i = 0; i < 200; i++) {
		char cmd[64];
		uint64_t hv;

		snprintf(cmd, sizeof(cmd), "set key%u 0 0 1\r\nx\r\n", i);
		EXPECT(f, cmd, "STORED\r\n");
		snprintf(cmd, sizeof(cmd), "gets key%u\r\n", i);
		cas[i] = cas_in(run(f, cmd));
		snprintf(cmd, sizeof(cmd), "key%u", i);
		hv = ml_hash(cmd, strlen(cmd));
		assert_int_equal(cas[i] & 1, ml_hash_core(hv, 2));
		per_shard[ml_hash_core(hv, 2)]++;
		for (j = 0; j < i; j++)
			assert_true(cas[j] != cas[i]);
	}
	assert_true(per_shard[0] > 0 && per_shard[1] > 0);
	/* and a key is found in its shard by every command */
	EXPECT(f, "get key1 key2 key3\r\n",
	       "VALUE key1 0 1\r\nx\r\nVALUE key2 0 1\r\nx\r\n"
	       "VALUE key3 0 1\r\nx\r\nEND\r\n");
	EXPECT(f, "delete key7\r\nmg key7\r\ntouch key8 10\r\nmg key8 t\r\n",
	       "DELETED\r\nEN\r\nTOUCHED\r\nHD t10\r\n");
}

/*
 * proto_prefetch() on both shards, for stored and missing keys and more
 * keys than one bulk takes: nothing counted, nothing marked as fetched,
 * nothing lost or changed.
 */
static void test_prefetch_changes_nothing(void **state)
{
	static const char *const counters[] = {
		"cmd_get",    "get_hits",    "get_misses", "cmd_touch",
		"curr_items", "total_items", "bytes",	   "evictions"};
	struct fx *f = *state;
	long long before[ML_ARRAY_SIZE(counters)];
	uint64_t hv[150];
	char cmd[96];
	unsigned i;

	for (i = 0; i < 100; i++) {
		snprintf(cmd, sizeof(cmd), "set pf%u %u 0 3\r\nv%02u\r\n", i, i,
			 i);
		EXPECT(f, cmd, "STORED\r\n");
	}
	run(f, "stats\r\n");
	for (i = 0; i < ML_ARRAY_SIZE(counters); i++)
		before[i] = stat_of(f->reply, counters[i]);
	for (i = 0; i < ML_ARRAY_SIZE(hv); i++) {
		int n = snprintf(cmd, sizeof(cmd), "pf%u", i);

		hv[i] = ml_hash(cmd, (size_t)n);
	}
	proto_prefetch(f->n, ML_ARRAY_SIZE(hv), hv);
	proto_prefetch(f->n, 2, hv + 148);
	run(f, "stats\r\n");
	for (i = 0; i < ML_ARRAY_SIZE(counters); i++)
		assert_int_equal(stat_of(f->reply, counters[i]), before[i]);
	for (i = 0; i < 150; i++) {
		char want[96];

		snprintf(cmd, sizeof(cmd), "mg pf%u h v f\r\n", i);
		if (i < 100)
			snprintf(want, sizeof(want), "VA 3 h0 f%u\r\nv%02u\r\n",
				 i, i);
		else
			snprintf(want, sizeof(want), "EN\r\n");
		EXPECT(f, cmd, want);
	}
}

/* One node per core: each with one shard and its own CAS id, and stats
 * on any of them sums all (what memlaned runs). */
static void test_node_peers(void **state)
{
	struct proto_node_params p = {
		.nshards = 1,
		.mem_limit = 16 * MIB,
		.now = T0,
		.cas_id_bits = 1,
	};
	struct proto_node *peers[2];
	struct fx a = {.now = T0}, b = {.now = T0};
	uint64_t ca, cb;

	(void)state;
	for (unsigned i = 0; i < 2; i++) {
		p.cas_id = i;
		peers[i] = proto_node_create(&p);
		assert_non_null(peers[i]);
	}
	/* an id that does not fit its bits is refused */
	p.cas_id = 2;
	errno = 0;
	assert_null(proto_node_create(&p));
	assert_int_equal(errno, EINVAL);
	for (unsigned i = 0; i < 2; i++)
		proto_node_set_peers(peers[i], peers, 2);
	a.n = peers[0];
	b.n = peers[1];
	a.ps.item_size_max = b.ps.item_size_max = MIB;
	ca = cas_in(run(&a, "ms k 1 c\r\na\r\n"));
	cb = cas_in(run(&b, "ms k 1 c\r\nb\r\n"));
	assert_int_equal(ca & 1, 0);
	assert_int_equal(cb & 1, 1);
	run(&b, "get k x\r\nstats\r\n");
	assert_int_equal(stat_of(b.reply, "cmd_set"), 2);
	assert_int_equal(stat_of(b.reply, "cmd_get"), 2);
	assert_int_equal(stat_of(b.reply, "curr_items"), 2);
	assert_int_equal(stat_of(b.reply, "limit_maxbytes"), 32 * MIB);
	/* per-core figures: each core's own */
	run(&a, "stats cores\r\n");
	assert_int_equal(stat_of(a.reply, "core:0:cmd_set"), 1);
	assert_int_equal(stat_of(a.reply, "core:1:cmd_set"), 1);
	assert_int_equal(stat_of(a.reply, "core:1:cmd_get"), 2);
	assert_int_equal(stat_of(a.reply, "core:0:curr_items"), 1);
	assert_int_equal(stat_of(a.reply, "core:1:limit_maxbytes"), 16 * MIB);
	assert_non_null(strstr(a.reply, "END\r\n"));
	/* a reset on one core resets what every core reports */
	EXPECT(&a, "stats reset\r\n", "RESET\r\n");
	run(&b, "stats\r\n");
	assert_int_equal(stat_of(b.reply, "cmd_set"), 0);
	run(&a, "ms k2 1\r\nc\r\nstats\r\n");
	assert_int_equal(stat_of(a.reply, "cmd_set"), 1);
	proto_out_free(&a.out);
	proto_out_free(&b.out);
	free(a.reply);
	free(b.reply);
	proto_node_free(peers[0]);
	proto_node_free(peers[1]);
}

static void test_node_params(void **state)
{
	struct proto_node_params p = {
		.nshards = 0,
		.mem_limit = 32 * MIB,
		.now = T0,
	};
	struct proto_node *n;

	(void)state;
	errno = 0;
	assert_null(proto_node_create(&p));
	assert_int_equal(errno, EINVAL);
	p.nshards = 4;
	n = proto_node_create(&p);
	assert_non_null(n);
	assert_non_null(proto_node_shard(n, 3));
	assert_null(proto_node_shard(n, 4));
	assert_true(proto_node_shard(n, 0) != proto_node_shard(n, 1));
	assert_int_equal(cache_time(proto_node_shard(n, 2)), T0);
	proto_node_set_time(n, T0 + 5);
	assert_int_equal(cache_time(proto_node_shard(n, 2)), T0 + 5);
	proto_node_free(n);
	proto_node_free(NULL);
	/* too little memory for the shards */
	p.mem_limit = 1024;
	errno = 0;
	assert_null(proto_node_create(&p));
	assert_int_equal(errno, ENOMEM);
}

/* The admin endpoint's counters: totals that stats reset leaves alone. */
static void test_counters(void **state)
{
	struct fx *f = *state;
	struct proto_counters c;

	run(f, "set a 0 0 1\r\nx\r\nget a b\r\nmg a v\r\ndelete a\r\n"
	       "delete a\r\nincr n 1\r\ntouch a 1\r\nstats reset\r\n");
	proto_node_counters(f->n, &c);
	assert_int_equal(c.cmd_get, 3);
	assert_int_equal(c.get_hits, 2);
	assert_int_equal(c.get_misses, 1);
	assert_int_equal(c.cmd_set, 1);
	assert_int_equal(c.cmd_meta, 1);
	assert_int_equal(c.delete_hits, 1);
	assert_int_equal(c.delete_misses, 1);
	assert_int_equal(c.arith, 1);
	assert_int_equal(c.cmd_touch, 1);
}

#define T1(fn) cmocka_unit_test_setup_teardown(fn, setup1, teardown)
#define T2(fn) cmocka_unit_test_setup_teardown(fn, setup2, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T1(test_set_get),
		T1(test_gets_cas),
		T1(test_add_replace_append),
		T1(test_many_keys),
		T2(test_many_keys),
		T1(test_delete),
		T1(test_incr_decr),
		T1(test_touch_gat),
		T1(test_expiry),
		T2(test_expiry),
		T1(test_flush_all),
		T2(test_flush_all),
		T1(test_admin),
		T1(test_execute_contract),
		T1(test_out_buffer),
		cmocka_unit_test_setup_teardown(test_too_large,
						setup_small_items, teardown),
		T1(test_stats),
		T1(test_stats_items_slabs),
		T1(test_stats_dataplane),
		T1(test_counters),
		T1(test_mg_flags),
		T1(test_mg_vivify_recache),
		T1(test_md),
		T2(test_md),
		T1(test_ms),
		T1(test_ma),
		T1(test_me),
		T1(test_base64_keys),
		T2(test_cas_unique_shards),
		T2(test_prefetch_changes_nothing),
		T1(test_prefetch_changes_nothing),
		cmocka_unit_test(test_node_params),
		cmocka_unit_test(test_node_peers),
	};

	return cmocka_run_group_tests_name("process", tests, NULL, NULL);
}

/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Golden transcripts of the binary protocol: every step a real memcached
 * 1.6.18 answered in tests/golden/binary/ (recorded by
 * tests/golden/record_binary.py) is replayed through proto_parse_binary()
 * (or proto_parse() on a connection whose first byte is text) and
 * proto_execute(), and memlane's replies must equal memcached's byte for
 * byte once the CAS of every binary response is zeroed in both and the
 * version string is taken out: quiet pipelines ending in noop, CAS
 * conflicts, incr on a value that is not a number, refusals that close
 * the connection, a value too large read and dropped, and values set
 * over binary read over text and the other way round. Each transcript
 * runs with one shard and with two.
 */
#include <dirent.h>
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

#ifndef SOURCE_ROOT
#define SOURCE_ROOT "."
#endif
#define BIN_DIR SOURCE_ROOT "/tests/golden/binary"
#define NOW	1700000000u

#define CAS_MAX 8

struct step {
	unsigned n;
	bool text, closed;
	unsigned ncas, cas_off[CAS_MAX]; /* where the last CAS seen goes */
	char *sent, *reply;
	size_t sent_len, reply_len;
};

struct transcript {
	char name[64];
	struct step *steps;
	unsigned nsteps;
	char *data;
};

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *p;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	p = malloc((size_t)n + 1);
	if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
		free(p);
		p = NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return p;
}

/* "<tag> <len>\n<bytes>\n" at *p; false when it is not that. */
static bool block(char **p, char *end, const char *tag, char **out, size_t *len)
{
	size_t tl = strlen(tag);
	char *q;
	unsigned long n;

	if ((size_t)(end - *p) < tl + 2 || memcmp(*p, tag, tl) ||
	    (*p)[tl] != ' ')
		return false;
	n = strtoul(*p + tl + 1, &q, 10);
	if (*q != '\n' || (size_t)(end - q - 1) < n + 1 || q[1 + n] != '\n')
		return false;
	*out = q + 1;
	*len = n;
	*p = q + 2 + n;
	return true;
}

static bool load(const char *path, struct transcript *t)
{
	size_t len;
	char *p, *end, *nl;

	memset(t, 0, sizeof(*t));
	t->data = slurp(path, &len);
	if (!t->data)
		return false;
	p = t->data;
	end = p + len;
	if (len < 24 || memcmp(p, "memlane-golden-binary 1\n", 24))
		return false;
	p += 24;
	nl = memchr(p, '\n', (size_t)(end - p));
	if (!nl || sscanf(p, "session %63s", t->name) != 1)
		return false;
	p = nl + 1;
	while (p < end) {
		struct step s = {0};
		char kind[8], state[8], cas[128];

		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl || sscanf(p, "step %u %7s %7s %127s", &s.n, kind, state,
				  cas) != 4)
			return false;
		for (char *c = cas; *c && *c != '-' && s.ncas < CAS_MAX;) {
			s.cas_off[s.ncas++] = (unsigned)strtoul(c, &c, 10);
			if (*c == ',')
				c++;
		}
		s.text = strcmp(kind, "text") == 0;
		s.closed = strcmp(state, "closed") == 0;
		p = nl + 1;
		if (!block(&p, end, "sent", &s.sent, &s.sent_len) ||
		    !block(&p, end, "reply", &s.reply, &s.reply_len))
			return false;
		t->steps = realloc(t->steps, sizeof(s) * (t->nsteps + 1));
		assert_non_null(t->steps);
		t->steps[t->nsteps++] = s;
	}
	return t->nsteps > 0;
}

/* Zeroes the CAS of every binary response and drops the version's
 * text (memlane names itself after memcached's version). */
static void normalise(const char *in, size_t len, struct proto_out *o)
{
	size_t i = 0;

	o->len = 0;
	while (i + PROTO_BIN_HDR <= len && (uint8_t)in[i] == PROTO_BIN_RES) {
		size_t body = (size_t)(uint8_t)in[i + 8] << 24 |
			      (size_t)(uint8_t)in[i + 9] << 16 |
			      (size_t)(uint8_t)in[i + 10] << 8 |
			      (uint8_t)in[i + 11];
		bool version = in[i + 1] == 0x0b;
		size_t keep = version ? 0 : body;

		if (i + PROTO_BIN_HDR + body > len)
			break;
		assert_int_equal(proto_out_reserve(o, PROTO_BIN_HDR + keep), 0);
		memcpy(o->buf + o->len, in + i, PROTO_BIN_HDR);
		memset(o->buf + o->len + 16, 0, 8);
		if (version)
			memset(o->buf + o->len + 8, 0, 4);
		memcpy(o->buf + o->len + PROTO_BIN_HDR, in + i + PROTO_BIN_HDR,
		       keep);
		o->len += PROTO_BIN_HDR + keep;
		i += PROTO_BIN_HDR + body;
	}
	assert_int_equal(proto_out_reserve(o, len - i + 1), 0);
	memcpy(o->buf + o->len, in + i, len - i);
	o->len += len - i;
}

static void print_bytes(const char *label, const char *p, size_t n)
{
	fprintf(stderr, "  %s (%zu bytes):", label, n);
	for (size_t i = 0; i < n && i < 160; i++)
		fprintf(stderr, " %02x", (uint8_t)p[i]);
	fprintf(stderr, n > 160 ? " ...\n" : "\n");
}

/* The last CAS a binary response in r carried, else cas. */
static uint64_t last_cas(const char *r, size_t len, uint64_t cas)
{
	for (size_t i = 0; i + PROTO_BIN_HDR <= len;) {
		uint64_t c = 0;
		size_t body = (size_t)(uint8_t)r[i + 8] << 24 |
			      (size_t)(uint8_t)r[i + 9] << 16 |
			      (size_t)(uint8_t)r[i + 10] << 8 |
			      (uint8_t)r[i + 11];

		for (int k = 16; k < 24; k++)
			c = c << 8 | (uint8_t)r[i + k];
		if ((uint8_t)r[i] == PROTO_BIN_RES && c)
			cas = c;
		i += PROTO_BIN_HDR + body;
	}
	return cas;
}

static unsigned replay(const struct transcript *t, unsigned nshards)
{
	struct proto_node_params np = {
		.nshards = nshards,
		.mem_limit = 64u << 20,
		.item_size_max = 1u << 20,
		.now = NOW,
		.pid = 1,
	};
	struct proto_node *node = proto_node_create(&np);
	struct proto_parser ps = {.item_size_max = 1u << 20};
	struct proto_out got = {0}, a = {0}, b = {0};
	char *in = NULL;
	size_t inlen = 0;
	bool fresh = true, binary = false;
	unsigned bad = 0, last = 0;
	uint64_t cas = 0;

	assert_non_null(node);
	for (unsigned i = 0; i < t->nsteps; i++) {
		const struct step *s = &t->steps[i];
		size_t off = 0;
		bool closed = false;

		/* a step number skipped is a reconnect */
		if (i && s->n != last + 1)
			fresh = true;
		last = s->n;
		if (fresh) {
			memset(&ps, 0, sizeof(ps));
			ps.item_size_max = 1u << 20;
			inlen = 0;
			binary = s->sent_len &&
				 (uint8_t)s->sent[0] == PROTO_BIN_REQ;
			fresh = false;
		}
		in = realloc(in, inlen + s->sent_len + 1);
		assert_non_null(in);
		memcpy(in + inlen, s->sent, s->sent_len);
		/* this server's own CAS where memcached was sent its own */
		for (unsigned k = 0; k < s->ncas; k++)
			for (int j = 0; j < 8; j++)
				in[inlen + s->cas_off[k] + j] =
					(char)(cas >> (8 * (7 - j)));
		inlen += s->sent_len;
		got.len = 0;
		while (off < inlen && !closed) {
			struct proto_req req;
			size_t n =
				binary ? proto_parse_binary(&ps, in + off,
							    inlen - off, &req)
				       : proto_parse(&ps, in + off, inlen - off,
						     &req);

			if (n == 0)
				break;
			closed = proto_execute(node, in + off, &req, &got) ==
				 -EPIPE;
			off += n;
		}
		memmove(in, in + off, inlen - off);
		inlen -= off;
		if (binary)
			cas = last_cas(got.buf, got.len, cas);
		normalise(s->reply, s->reply_len, &a);
		normalise(got.buf ? got.buf : "", got.len, &b);
		if (a.len != b.len || memcmp(a.buf, b.buf, a.len) ||
		    closed != s->closed) {
			fprintf(stderr,
				"%s, %u shard(s), step %u: memcached %s, "
				"memlane %s\n",
				t->name, nshards, s->n,
				s->closed ? "closed" : "open",
				closed ? "closed" : "open");
			print_bytes("sent", s->sent, s->sent_len);
			print_bytes("memcached", a.buf ? a.buf : "", a.len);
			print_bytes("memlane", b.buf ? b.buf : "", b.len);
			bad++;
		}
		if (closed || s->closed)
			fresh = true;
	}
	free(in);
	proto_out_free(&got);
	proto_out_free(&a);
	proto_out_free(&b);
	proto_node_free(node);
	return bad;
}

static void transcripts(void **state)
{
	DIR *d = opendir(BIN_DIR);
	struct dirent *e;
	unsigned files = 0, bad = 0;

	(void)state;
	assert_non_null(d);
	while ((e = readdir(d))) {
		char path[512];
		struct transcript t;
		size_t l = strlen(e->d_name);

		if (l < 5 || strcmp(e->d_name + l - 4, ".btr"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", BIN_DIR, e->d_name);
		if (!load(path, &t)) {
			fprintf(stderr, "%s: not a transcript\n", path);
			bad++;
		} else {
			bad += replay(&t, 1) + replay(&t, 2);
			files++;
		}
		free(t.steps);
		free(t.data);
	}
	closedir(d);
	assert_true(files >= 8);
	assert_int_equal(bad, 0);
}

/* The parser on its own: a frame cut anywhere waits for the rest, and a
 * frame whole is one request whatever follows it. */
static void frames_cut_anywhere(void **state)
{
	static const unsigned char get[] = {
		0x80, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x01, 0xaa, 0xbb, 0xcc, 0xdd, 0,	0,
		0,    0,    0,	  0,	0,    0,    'k'};
	char buf[sizeof(get) * 2];
	struct proto_parser ps = {.item_size_max = 1u << 20};
	struct proto_req req;

	(void)state;
	memcpy(buf, get, sizeof(get));
	memcpy(buf + sizeof(get), get, sizeof(get));
	for (size_t cut = 0; cut < sizeof(get); cut++)
		assert_int_equal(proto_parse_binary(&ps, buf, cut, &req), 0);
	assert_int_equal(proto_parse_binary(&ps, buf, sizeof(buf), &req),
			 sizeof(get));
	assert_true(req.binary);
	assert_int_equal(req.klen, 1);
	assert_int_equal(req.key_off, 24);
	assert_int_equal(req.cmd, PROTO_MG);
}

/* A set's head against -I (1 MiB) as memcached reckons an item: 59 bytes
 * beside key and value, 4 more with flags (measured against memcached
 * 1.6.18). Too large: refused with the head alone, its value to be
 * dropped; not: the parser waits for the value. */
static size_t set_head(uint32_t flags, uint32_t vlen, struct proto_req *req)
{
	unsigned char h[24 + 8 + 3] = {0x80, 0x01, 0x00, 0x03, 0x08};
	struct proto_parser ps = {.item_size_max = 1u << 20};
	uint32_t body = 8 + 3 + vlen;

	for (int i = 0; i < 4; i++) {
		h[8 + i] = (unsigned char)(body >> (24 - 8 * i));
		h[24 + i] = (unsigned char)(flags >> (24 - 8 * i));
	}
	memcpy(h + 32, "lim", 3);
	return proto_parse_binary(&ps, (char *)h, sizeof(h), req);
}

static void too_large_as_memcached_reckons(void **state)
{
	const uint32_t max = 1u << 20;
	struct proto_req req;

	(void)state;
	assert_int_equal(set_head(0, max - 59 - 3, &req), 0);
	assert_int_equal(set_head(0, max - 59 - 3 + 1, &req), 35);
	assert_int_equal(req.cmd, PROTO_ERR);
	assert_int_equal(req.bin.status, 0x03); /* Too large. */
	assert_int_equal(set_head(7, max - 63 - 3, &req), 0);
	assert_int_equal(set_head(7, max - 63 - 3 + 1, &req), 35);
	assert_int_equal(req.bin.status, 0x03);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(frames_cut_anywhere),
		cmocka_unit_test(too_large_as_memcached_reckons),
		cmocka_unit_test(transcripts),
	};

	return cmocka_run_group_tests_name("cache_golden_binary", tests, NULL,
					   NULL);
}

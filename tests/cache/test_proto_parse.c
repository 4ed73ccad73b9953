/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the protocol parser (cache/proto_parse.c), written against
 * the contract in cache/proto.h and against what memcached 1.6.18 answers
 * on the wire: every error line below is the one memcached sends for that
 * input.
 *
 * Tables first (one request in, every field of struct proto_req checked,
 * and every strict prefix of the input must ask for more bytes), then the
 * stream tests: one pipelined stream holding every command, parsed whole,
 * split in two at every byte, and fed one byte at a time, must give the
 * same requests.
 */
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

/* Keys and tokens of exact lengths. */
#define K10  "kkkkkkkkkk"
#define K50  K10 K10 K10 K10 K10
#define K250 K50 K50 K50 K50 K50
#define K251 K250 "k"
#define O10  "oooooooooo"
/* An O token of 32 bytes (the longest memcached takes) and of 33. */
#define OPQ31 O10 O10 O10 "o"
#define OPQ32 OPQ31 "o"

#define E_UNKNOWN "ERROR\r\n"
#define E_FORMAT  "CLIENT_ERROR bad command line format\r\n"
#define E_CHUNK	  "CLIENT_ERROR bad data chunk\r\n"
#define E_LARGE	  "SERVER_ERROR object too large for cache\r\n"
#define E_EXPTIME "CLIENT_ERROR invalid exptime argument\r\n"
#define E_DELTA	  "CLIENT_ERROR invalid numeric delta argument\r\n"
#define E_DELETE                                                               \
	"CLIENT_ERROR bad command line format.  "                              \
	"Usage: delete <key> [noreply]\r\n"
#define E_INVALID   "CLIENT_ERROR invalid flag\r\n"
#define E_DUP	    "CLIENT_ERROR duplicate flag\r\n"
#define E_TOKEN	    "CLIENT_ERROR bad token in command line format\r\n"
#define E_MLEN	    "CLIENT_ERROR incorrect length for M token\r\n"
#define E_INITIAL   "CLIENT_ERROR invalid numeric initial value\r\n"
#define E_MDELTA    "CLIENT_ERROR invalid numeric delta value\r\n"
#define E_B64	    "CLIENT_ERROR error decoding key\r\n"
#define E_EITHER    "CLIENT_ERROR invalid or duplicate flag\r\n"
#define E_MG_MANY   "CLIENT_ERROR options flags are too long\r\n"
#define E_META_MANY "CLIENT_ERROR options flags too long\r\n"
#define E_OPAQUE    "CLIENT_ERROR opaque token too long\r\n"
#define E_MS_MODE   "CLIENT_ERROR invalid mode for ms M token\r\n"
#define E_MA_MODE   "CLIENT_ERROR invalid mode for ma M token\r\n"

/* ------------------------------------------------------------------------
 * One request per case
 * ---------------------------------------------------------------------- */

struct pcase {
	const char *in;
	size_t inlen;
	uint8_t cmd;
	const char *err; /* PROTO_ERR: the reply */
	bool noreply;
	bool close;
	size_t used;	   /* bytes consumed; 0 = all of in */
	uint64_t swallow;  /* ps->swallow afterwards */
	uint32_t item_max; /* ps->item_size_max */
	const char *key;   /* first key, as it ends up in the buffer */
	size_t keylen;	   /* 0 = strlen(key) */
	const char *keys;  /* retrievals: every key, '|' between */
	const char *data;  /* storage: the data block */
	uint32_t flags;
	int64_t exptime;
	uint64_t num;
	bool has_num;
	const char *args; /* stats */
	/* meta */
	const char *mflags; /* letters present */
	const char *order;  /* letters in request order; NULL = mflags */
	const char *opaque;
	char mode;
	uint32_t cflags;
	int64_t ttl, vivify, recache;
	uint64_t cas, initial;
	uint64_t delta;
	bool delta_given; /* else 1 for meta, 0 for text */
};

#define IN(s)  .in = (s), .inlen = sizeof(s) - 1
#define ERR(s) .cmd = PROTO_ERR, .err = (s)

static bool is_meta(uint8_t cmd)
{
	return cmd >= PROTO_MG && cmd <= PROTO_ME;
}

static uint64_t mask_of(const char *letters)
{
	uint64_t m = 0;

	for (; letters && *letters; letters++)
		m |= PROTO_MF(*letters);
	return m;
}

/* A printable form of a case's input, for failure messages. */
static const char *show(const char *in, size_t len)
{
	static char out[160];
	size_t i, o = 0;

	for (i = 0; i < len && o + 5 < sizeof(out); i++) {
		unsigned char c = (unsigned char)in[i];

		if (c >= 0x20 && c < 0x7f)
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, sizeof(out) - o,
					      "\\x%02x", c);
	}
	out[o] = 0;
	return out;
}

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			print_error("case \"%s\": ", show(c->in, c->inlen));   \
			fail_msg(__VA_ARGS__);                                 \
		}                                                              \
	} while (0)

static void check_bytes(const struct pcase *c, const char *what,
			const char *buf, uint32_t off, size_t len,
			const char *want, size_t wlen)
{
	CHECK(len == wlen, "%s length %zu, want %zu", what, len, wlen);
	CHECK(memcmp(buf + off, want, wlen) == 0, "%s bytes differ", what);
}

static void check_keys(const struct pcase *c, const char *buf,
		       const struct proto_req *r)
{
	const char *want = c->keys;
	uint32_t pos = r->key_off, off, klen;
	size_t n;

	while (proto_next_key(buf, r, &pos, &off, &klen)) {
		CHECK(*want != 0, "more keys than expected");
		n = strcspn(want, "|");
		check_bytes(c, "key", buf, off, klen, want, n);
		want += n;
		if (*want == '|')
			want++;
	}
	CHECK(*want == 0, "fewer keys than expected, missing \"%s\"", want);
}

static void check_req(const struct pcase *c, const char *buf,
		      const struct proto_req *r, const struct proto_parser *ps)
{
	size_t used = c->used ? c->used : c->inlen;
	const struct proto_meta *m = &r->meta;
	bool has_delta = is_meta(c->cmd) && c->cmd != PROTO_MN;
	uint64_t delta = c->delta_given ? c->delta : (has_delta ? 1 : 0);

	CHECK(r->cmd == c->cmd, "cmd %u, want %u", r->cmd, c->cmd);
	CHECK(r->len == used, "len %u, want %zu", r->len, used);
	CHECK(r->noreply == c->noreply, "noreply %d", r->noreply);
	CHECK(r->close == c->close, "close %d", r->close);
	CHECK(ps->swallow == c->swallow, "swallow %llu, want %llu",
	      (unsigned long long)ps->swallow, (unsigned long long)c->swallow);
	if (c->cmd == PROTO_ERR || c->err) {
		CHECK(r->err && strcmp(r->err, c->err) == 0,
		      "err \"%s\", want \"%s\"", r->err ? r->err : "(null)",
		      c->err);
	} else {
		CHECK(r->err == NULL, "err set on a good request");
	}

	if (c->key) {
		size_t kl = c->keylen ? c->keylen : strlen(c->key);

		check_bytes(c, "key", buf, r->key_off, r->klen, c->key, kl);
		CHECK(r->hv == ml_hash(c->key, kl), "hv is not ml_hash(key)");
	} else {
		CHECK(r->klen == 0, "klen %u, want none", r->klen);
		CHECK(r->hv == 0, "hv set without a key");
	}
	if (c->keys)
		check_keys(c, buf, r);
	if (c->data) {
		check_bytes(c, "data", buf, r->data_off, r->data_len, c->data,
			    strlen(c->data));
	} else {
		CHECK(r->data_len == 0, "data_len %u, want 0", r->data_len);
	}
	if (c->args) {
		check_bytes(c, "args", buf, r->args_off, r->args_len, c->args,
			    strlen(c->args));
	} else {
		CHECK(r->args_len == 0, "args_len %u", r->args_len);
	}
	CHECK(r->flags == c->flags, "flags %u, want %u", r->flags, c->flags);
	CHECK(r->exptime == c->exptime, "exptime %lld, want %lld",
	      (long long)r->exptime, (long long)c->exptime);
	CHECK(r->num == c->num, "num %llu, want %llu",
	      (unsigned long long)r->num, (unsigned long long)c->num);
	CHECK(r->has_num == c->has_num, "has_num %d", r->has_num);

	if (!is_meta(c->cmd)) {
		CHECK(m->flags == 0 && m->norder == 0, "meta flags on text");
		return;
	}
	CHECK(m->flags == mask_of(c->mflags), "meta flags %#llx, want %#llx",
	      (unsigned long long)m->flags,
	      (unsigned long long)mask_of(c->mflags));
	{
		const char *order =
			c->order ? c->order : (c->mflags ? c->mflags : "");

		CHECK(m->norder == strlen(order) &&
			      memcmp(m->order, order, m->norder) == 0,
		      "order \"%.*s\", want \"%s\"", m->norder, m->order,
		      order);
	}
	if (c->opaque)
		check_bytes(c, "opaque", buf, m->opaque_off, m->opaque_len,
			    c->opaque, strlen(c->opaque));
	else
		CHECK(m->opaque_len == 0, "opaque_len %u", m->opaque_len);
	CHECK(m->mode == c->mode, "mode '%c', want '%c'", m->mode, c->mode);
	CHECK(m->client_flags == c->cflags, "F %u", m->client_flags);
	CHECK(m->ttl == c->ttl, "T %lld", (long long)m->ttl);
	CHECK(m->vivify_ttl == c->vivify, "N %lld", (long long)m->vivify_ttl);
	CHECK(m->recache == c->recache, "R %lld", (long long)m->recache);
	CHECK(m->cas == c->cas, "C %llu", (unsigned long long)m->cas);
	CHECK(m->delta == delta, "D %llu", (unsigned long long)m->delta);
	CHECK(m->initial == c->initial, "J %llu",
	      (unsigned long long)m->initial);
}

/*
 * Runs one case: every strict prefix of the bytes the request uses must
 * ask for more (0, parser untouched), and the whole input must give the
 * expected request. Buffers are exactly as long as the bytes in them, so
 * the sanitizers see any read past the end.
 */
static void run_case(const struct pcase *c)
{
	size_t used = c->used ? c->used : c->inlen;
	struct proto_parser ps;
	struct proto_req r;
	size_t n, p;
	char *buf;

	if (!c->close) {
		for (p = 0; p < used; p++) {
			buf = malloc(p ? p : 1);
			assert_non_null(buf);
			memcpy(buf, c->in, p);
			memset(&ps, 0, sizeof(ps));
			ps.item_size_max = c->item_max;
			n = proto_parse(&ps, buf, p, &r);
			CHECK(n == 0, "prefix of %zu bytes gave %zu", p, n);
			CHECK(ps.swallow == 0, "prefix set swallow");
			CHECK(memcmp(buf, c->in, p) == 0,
			      "prefix rewrote the buffer");
			free(buf);
		}
	}

	buf = malloc(c->inlen);
	assert_non_null(buf);
	memcpy(buf, c->in, c->inlen);
	memset(&ps, 0, sizeof(ps));
	ps.item_size_max = c->item_max;
	n = proto_parse(&ps, buf, c->inlen, &r);
	CHECK(n == r.len, "returned %zu, req->len %u", n, r.len);
	check_req(c, buf, &r, &ps);
	free(buf);
}

static void run_table(const struct pcase *t, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		run_case(&t[i]);
}

/* ------------------------------------------------------------------------
 * Retrievals
 * ---------------------------------------------------------------------- */

static const struct pcase get_cases[] = {
	{IN("get a\r\n"), .cmd = PROTO_GET, .key = "a", .keys = "a"},
	{IN("get a\n"), .cmd = PROTO_GET, .key = "a", .keys = "a"},
	{IN("gets foo\r\n"), .cmd = PROTO_GETS, .key = "foo", .keys = "foo"},
	{IN("get  a   b c \r\n"), .cmd = PROTO_GET, .key = "a",
	 .keys = "a|b|c"},
	{IN("   get a\r\n"), .cmd = PROTO_GET, .key = "a", .keys = "a"},
	/* Only spaces separate; other bytes belong to the key. */
	{IN("get a\tb \x01\r\n"), .cmd = PROTO_GET, .key = "a\tb",
	 .keys = "a\tb|\x01"},
	{IN("get a\r\r\n"), .cmd = PROTO_GET, .key = "a\r", .keys = "a\r"},
	/* memcached reads the line only up to its first NUL. */
	{IN("get a\0b c\r\n"), .cmd = PROTO_GET, .key = "a", .keys = "a"},
	{IN("get\0 a\r\n"), ERR(E_UNKNOWN)},
	{IN("get " K250 " b\r\n"), .cmd = PROTO_GET, .key = K250,
	 .keys = K250 "|b"},
	{IN("get " K251 "\r\n"), ERR(E_FORMAT)},
	/* the keys before a key too long are looked up, then the error
	 * is the reply */
	{IN("get a " K251 " b\r\n"), .cmd = PROTO_GET, .key = "a", .keys = "a",
	 .err = E_FORMAT},
	{IN("gets a b " K251 "\r\n"), .cmd = PROTO_GETS, .key = "a",
	 .keys = "a|b", .err = E_FORMAT},
	{IN("get\r\n"), ERR(E_UNKNOWN)},
	{IN("get \r\n"), ERR(E_UNKNOWN)},
	{IN("gets\r\n"), ERR(E_UNKNOWN)},
	{IN("GET a\r\n"), ERR(E_UNKNOWN)},
	{IN("getx a\r\n"), ERR(E_UNKNOWN)},
	{IN("get\ta\r\n"), ERR(E_UNKNOWN)},
	{IN("gat 10 a\r\n"), .cmd = PROTO_GAT, .key = "a", .keys = "a",
	 .exptime = 10},
	{IN("gats -1 a b\r\n"), .cmd = PROTO_GATS, .key = "a", .keys = "a|b",
	 .exptime = -1},
	{IN("gat +10 a\r\n"), .cmd = PROTO_GAT, .key = "a", .keys = "a",
	 .exptime = 10},
	{IN("gat 10\t a\r\n"), .cmd = PROTO_GAT, .key = "a", .keys = "a",
	 .exptime = 10},
	/* A number is read as a long and kept in 32 bits. */
	{IN("gat 99999999999 a\r\n"), .cmd = PROTO_GAT, .key = "a", .keys = "a",
	 .exptime = 1215752191},
	{IN("gat 2147483648 a\r\n"), .cmd = PROTO_GAT, .key = "a", .keys = "a",
	 .exptime = INT32_MIN},
	/* gat with no key is answered END: a request with no keys. */
	{IN("gat 10\r\n"), .cmd = PROTO_GAT, .keys = "", .exptime = 10},
	{IN("gat\r\n"), ERR(E_UNKNOWN)},
	{IN("gat x a\r\n"), ERR(E_EXPTIME)},
	{IN("gat 10x a\r\n"), ERR(E_EXPTIME)},
	{IN("gat 0x10 a\r\n"), ERR(E_EXPTIME)},
	{IN("gat 1.5 a\r\n"), ERR(E_EXPTIME)},
	{IN("gat 9223372036854775808 a\r\n"), ERR(E_EXPTIME)},
	{IN("gat x " K251 "\r\n"), ERR(E_EXPTIME)},
	{IN("gat 1 " K251 "\r\n"), ERR(E_FORMAT)},
	{IN("gat 1 a " K251 "\r\n"), .cmd = PROTO_GAT, .key = "a", .keys = "a",
	 .exptime = 1, .err = E_FORMAT},
};

static void test_get(void **state)
{
	(void)state;
	run_table(get_cases, ML_ARRAY_SIZE(get_cases));
}

/* ------------------------------------------------------------------------
 * Storage
 * ---------------------------------------------------------------------- */

static const struct pcase store_cases[] = {
	{IN("set a 5 10 3\r\nabc\r\n"), .cmd = PROTO_SET, .key = "a",
	 .data = "abc", .flags = 5, .exptime = 10},
	{IN("add k 0 0 1\r\nx\r\n"), .cmd = PROTO_ADD, .key = "k", .data = "x"},
	{IN("replace k 0 0 1\r\nx\r\n"), .cmd = PROTO_REPLACE, .key = "k",
	 .data = "x"},
	{IN("append k 0 0 1\r\nx\r\n"), .cmd = PROTO_APPEND, .key = "k",
	 .data = "x"},
	{IN("prepend k 0 0 1\r\nx\r\n"), .cmd = PROTO_PREPEND, .key = "k",
	 .data = "x"},
	{IN("set a 0 0 0\r\n\r\n"), .cmd = PROTO_SET, .key = "a", .data = ""},
	/* The data block may hold anything, \r\n included. */
	{IN("set a 0 0 4\r\n\r\n\r\n\r\n"), .cmd = PROTO_SET, .key = "a",
	 .data = "\r\n\r\n"},
	{IN("set a 0 0 3 noreply\r\nabc\r\n"), .cmd = PROTO_SET, .key = "a",
	 .data = "abc", .noreply = true},
	/* The sixth token is taken as noreply only when it says so. */
	{IN("set a 0 0 1 x\r\nx\r\n"), .cmd = PROTO_SET, .key = "a",
	 .data = "x"},
	{IN("set a 0 0 1\n\r\nx\r\n"), ERR(E_CHUNK),
	 .used = sizeof("set a 0 0 1\n\r\nx") - 1},
	{IN("set a 4294967295 -5 1\r\nx\r\n"), .cmd = PROTO_SET, .key = "a",
	 .data = "x", .flags = 4294967295u, .exptime = -5},
	{IN("set a 4294967296 0 1\r\nx\r\n"), .cmd = PROTO_SET, .key = "a",
	 .data = "x"},
	{IN("set a 0\t 0 1\t\r\nx\r\n"), .cmd = PROTO_SET, .key = "a",
	 .data = "x"},
	{IN("set a 0 0 4294967297\r\nx\r\n"), .cmd = PROTO_SET, .key = "a",
	 .data = "x"},
	{IN("set " K250 " 0 0 1\r\nx\r\n"), .cmd = PROTO_SET, .key = K250,
	 .data = "x"},
	{IN("cas a 0 0 1 99\r\nx\r\n"), .cmd = PROTO_CAS, .key = "a",
	 .data = "x", .num = 99},
	{IN("cas a 0 0 1 18446744073709551615 noreply\r\nx\r\n"),
	 .cmd = PROTO_CAS, .key = "a", .data = "x", .num = UINT64_MAX,
	 .noreply = true},
	{IN("cas a 0 0 1 1 x\r\nx\r\n"), .cmd = PROTO_CAS, .key = "a",
	 .data = "x", .num = 1},

	/* Wrong token counts: ERROR, and the data block is left alone. */
	{IN("set\r\n"), ERR(E_UNKNOWN)},
	{IN("set a 0 0\r\nx\r\n"), ERR(E_UNKNOWN),
	 .used = sizeof("set a 0 0\r\n") - 1},
	{IN("set a 0 0 1 noreply x\r\nx\r\n"), ERR(E_UNKNOWN),
	 .used = sizeof("set a 0 0 1 noreply x\r\n") - 1},
	{IN("cas a 0 0 1\r\nx\r\n"), ERR(E_UNKNOWN),
	 .used = sizeof("cas a 0 0 1\r\n") - 1},
	{IN("cas a 0 0 1 1 x y\r\n"), ERR(E_UNKNOWN)},
	{IN("appendx a 0 0 1\r\n"), ERR(E_UNKNOWN)},

	/* Bad lines: the data block is not eaten. */
	{IN("set a -1 0 1\r\nx\r\n"), ERR(E_FORMAT),
	 .used = sizeof("set a -1 0 1\r\n") - 1},
	{IN("set a x 0 1\r\n"), ERR(E_FORMAT)},
	{IN("set a 0 x 1\r\n"), ERR(E_FORMAT)},
	{IN("set a 0 0 abc\r\n"), ERR(E_FORMAT)},
	{IN("set a 0 0 -1\r\n"), ERR(E_FORMAT)},
	{IN("set a 0 0 1x\r\n"), ERR(E_FORMAT)},
	{IN("set a 0 0 2147483646\r\n"), ERR(E_FORMAT)},
	{IN("set " K251 " 0 0 1\r\n"), ERR(E_FORMAT)},
	{IN("cas a 0 0 1 x\r\n"), ERR(E_FORMAT)},
	{IN("cas a 0 0 1 -1\r\n"), ERR(E_FORMAT)},
	{IN("cas a 0 0 -1 1\r\n"), ERR(E_FORMAT)},
	/* noreply is read before the line is judged, and hides the error. */
	{IN("set a x 0 1 noreply\r\n"), ERR(E_FORMAT), .noreply = true},
	{IN("set " K251 " 0 0 1 noreply\r\n"), ERR(E_FORMAT), .noreply = true},
	{IN("set a 0 0 noreply\r\n"), ERR(E_FORMAT), .noreply = true},
	{IN("cas a 0 0 1 noreply\r\n"), ERR(E_FORMAT), .noreply = true},

	/* A data block of the wrong length: exactly <bytes> + 2 are eaten. */
	{IN("set a 0 0 1\r\nxyz\r\n"), ERR(E_CHUNK),
	 .used = sizeof("set a 0 0 1\r\nxyz") - 1},
	{IN("set a 0 0 1\r\nxy\r\n"), ERR(E_CHUNK),
	 .used = sizeof("set a 0 0 1\r\nxy\r") - 1},
	{IN("set a 0 0 1\r\nx\r\r\n"), ERR(E_CHUNK),
	 .used = sizeof("set a 0 0 1\r\nx\r\r") - 1},
	{IN("set a 0 0 0\r\nxy"), ERR(E_CHUNK)},
	{IN("set a 0 0 1 noreply\r\nxyz"), ERR(E_CHUNK), .noreply = true},
	{IN("cas a 0 0 1 5\r\nxyz"), ERR(E_CHUNK)},

	/*
	 * Too large for -I (1 MiB by default): memcached counts the key,
	 * the data, 59 bytes of its own and 4 more for non-zero flags. The
	 * line alone is consumed and the data block is swallowed; a set
	 * also names its key (memcached drops the old value).
	 */
	{IN("set a 0 0 1048517\r\n"), ERR(E_LARGE), .swallow = 1048519,
	 .key = "a"},
	{IN("set a 0 0 1048517 noreply\r\n"), ERR(E_LARGE), .swallow = 1048519,
	 .key = "a", .noreply = true},
	{IN("set a 1 0 1048513\r\n"), ERR(E_LARGE), .swallow = 1048515,
	 .key = "a"},
	{IN("set " K10 " 0 0 1048508\r\n"), ERR(E_LARGE), .swallow = 1048510,
	 .key = K10},
	{IN("add a 0 0 1048517\r\n"), ERR(E_LARGE), .swallow = 1048519},
	{IN("append a 0 0 2000000\r\n"), ERR(E_LARGE), .swallow = 2000002},
	{IN("cas a 0 0 2000000 1\r\n"), ERR(E_LARGE), .swallow = 2000002},
	{IN("set a 0 0 2147483645\r\n"), ERR(E_LARGE), .swallow = 2147483647,
	 .key = "a"},
	{IN("set a 0 0 100\r\n"), ERR(E_LARGE), .swallow = 102, .key = "a",
	 .item_max = 159},
	{IN("set a 0 0 99\r\n"), ERR(E_LARGE), .swallow = 101, .key = "a",
	 .item_max = 158},
};

static void test_store(void **state)
{
	(void)state;
	run_table(store_cases, ML_ARRAY_SIZE(store_cases));
}

/* Just under the limit the parser waits for the data block instead. */
static void test_store_limit(void **state)
{
	static const struct {
		const char *line;
		uint32_t item_max;
	} fits[] = {
		{"set a 0 0 1048516\r\n", 0},
		{"set a 1 0 1048512\r\n", 0},
		{"set " K10 " 0 0 1048507\r\n", 0},
		{"set a 0 0 99\r\n", 159},
		{"set a 0 0 2000000\r\n", 4 * MIB},
		{"ms a 1048516\r\n", 0},
		{"ms a 1048512 F1\r\n", 0},
		{"ms YWJj 1048514 b\r\n", 0},
	};
	struct proto_parser ps;
	struct proto_req r;
	size_t i;

	(void)state;
	for (i = 0; i < ML_ARRAY_SIZE(fits); i++) {
		char buf[64];
		size_t n = strlen(fits[i].line);

		memcpy(buf, fits[i].line, n);
		memset(&ps, 0, sizeof(ps));
		ps.item_size_max = fits[i].item_max;
		assert_int_equal(proto_parse(&ps, buf, n, &r), 0);
		assert_int_equal(ps.swallow, 0);
		assert_memory_equal(buf, fits[i].line, n);
	}
}

/* ------------------------------------------------------------------------
 * The other text commands
 * ---------------------------------------------------------------------- */

static const struct pcase misc_cases[] = {
	{IN("delete a\r\n"), .cmd = PROTO_DELETE, .key = "a"},
	{IN("delete a noreply\r\n"), .cmd = PROTO_DELETE, .key = "a",
	 .noreply = true},
	{IN("delete a 0\r\n"), .cmd = PROTO_DELETE, .key = "a"},
	{IN("delete a  0\r\n"), .cmd = PROTO_DELETE, .key = "a"},
	{IN("delete a 0 noreply\r\n"), .cmd = PROTO_DELETE, .key = "a",
	 .noreply = true},
	{IN("delete noreply\r\n"), .cmd = PROTO_DELETE, .key = "noreply"},
	{IN("delete\r\n"), ERR(E_UNKNOWN)},
	{IN("delete a 0 noreply x\r\n"), ERR(E_UNKNOWN)},
	{IN("delete a 1\r\n"), ERR(E_DELETE)},
	{IN("delete a x\r\n"), ERR(E_DELETE)},
	{IN("delete a 00\r\n"), ERR(E_DELETE)},
	{IN("delete a 0 0\r\n"), ERR(E_DELETE)},
	{IN("delete a 0 x\r\n"), ERR(E_DELETE)},
	{IN("delete a noreply x\r\n"), ERR(E_DELETE)},
	{IN("delete a noreplyx\r\n"), ERR(E_DELETE)},
	{IN("delete a 1 noreply\r\n"), ERR(E_DELETE), .noreply = true},
	{IN("delete " K251 "\r\n"), ERR(E_FORMAT)},
	{IN("delete " K251 " 1\r\n"), ERR(E_DELETE)},
	{IN("delete " K251 " noreply\r\n"), ERR(E_FORMAT), .noreply = true},

	{IN("incr a 5\r\n"), .cmd = PROTO_INCR, .key = "a", .num = 5},
	{IN("decr a 18446744073709551615 noreply\r\n"), .cmd = PROTO_DECR,
	 .key = "a", .num = UINT64_MAX, .noreply = true},
	{IN("incr a 1 2\r\n"), .cmd = PROTO_INCR, .key = "a", .num = 1},
	{IN("incr a -0\r\n"), .cmd = PROTO_INCR, .key = "a", .num = 0},
	{IN("incr a\r\n"), ERR(E_UNKNOWN)},
	{IN("incr a 1 2 3\r\n"), ERR(E_UNKNOWN)},
	{IN("incr a x\r\n"), ERR(E_DELTA)},
	{IN("incr a -1\r\n"), ERR(E_DELTA)},
	{IN("incr a 18446744073709551616\r\n"), ERR(E_DELTA)},
	{IN("incr a x noreply\r\n"), ERR(E_DELTA), .noreply = true},
	{IN("incr a noreply\r\n"), ERR(E_DELTA), .noreply = true},
	{IN("incr " K251 " x\r\n"), ERR(E_FORMAT)},
	{IN("decr " K251 " 1 noreply\r\n"), ERR(E_FORMAT), .noreply = true},

	{IN("touch a 10\r\n"), .cmd = PROTO_TOUCH, .key = "a", .exptime = 10},
	{IN("touch a -1 noreply\r\n"), .cmd = PROTO_TOUCH, .key = "a",
	 .exptime = -1, .noreply = true},
	{IN("touch a 1 x\r\n"), .cmd = PROTO_TOUCH, .key = "a", .exptime = 1},
	{IN("touch a\r\n"), ERR(E_UNKNOWN)},
	{IN("touch a 1 2 3\r\n"), ERR(E_UNKNOWN)},
	{IN("touch a x\r\n"), ERR(E_EXPTIME)},
	{IN("touch a x noreply\r\n"), ERR(E_EXPTIME), .noreply = true},
	{IN("touch " K251 " x\r\n"), ERR(E_FORMAT)},

	{IN("flush_all\r\n"), .cmd = PROTO_FLUSH_ALL},
	{IN("flush_all noreply\r\n"), .cmd = PROTO_FLUSH_ALL, .noreply = true},
	{IN("flush_all 0\r\n"), .cmd = PROTO_FLUSH_ALL, .has_num = true},
	{IN("flush_all 10\r\n"), .cmd = PROTO_FLUSH_ALL, .has_num = true,
	 .num = 10, .exptime = 10},
	{IN("flush_all 10 noreply\r\n"), .cmd = PROTO_FLUSH_ALL,
	 .has_num = true, .num = 10, .exptime = 10, .noreply = true},
	/* A negative delay flushes now. */
	{IN("flush_all -1\r\n"), .cmd = PROTO_FLUSH_ALL, .has_num = true,
	 .exptime = -1},
	{IN("flush_all 1 2\r\n"), .cmd = PROTO_FLUSH_ALL, .has_num = true,
	 .num = 1, .exptime = 1},
	{IN("flush_all 1 2 3\r\n"), ERR(E_UNKNOWN)},
	{IN("flush_all x\r\n"), ERR(E_EXPTIME)},
	{IN("flush_all x noreply\r\n"), ERR(E_EXPTIME), .noreply = true},
	{IN("flush_all noreply noreply\r\n"), ERR(E_EXPTIME), .noreply = true},
	{IN("flush_all noreply 5\r\n"), ERR(E_EXPTIME)},

	{IN("version\r\n"), .cmd = PROTO_VERSION},
	{IN("version x y\r\n"), .cmd = PROTO_VERSION},
	{IN("versions\r\n"), ERR(E_UNKNOWN)},
	{IN("verbosity 1\r\n"), .cmd = PROTO_VERBOSITY, .has_num = true,
	 .num = 1},
	{IN("verbosity 4294967297 noreply\r\n"), .cmd = PROTO_VERBOSITY,
	 .has_num = true, .num = 1, .noreply = true},
	{IN("verbosity 1 2\r\n"), .cmd = PROTO_VERBOSITY, .has_num = true,
	 .num = 1},
	{IN("verbosity\r\n"), ERR(E_UNKNOWN)},
	{IN("verbosity 1 2 3\r\n"), ERR(E_UNKNOWN)},
	{IN("verbosity x\r\n"), ERR(E_FORMAT)},
	{IN("verbosity -1\r\n"), ERR(E_FORMAT)},
	{IN("verbosity noreply\r\n"), ERR(E_FORMAT), .noreply = true},
	{IN("verbosity 1 2 noreply\r\n"), ERR(E_UNKNOWN)},

	{IN("stats\r\n"), .cmd = PROTO_STATS},
	{IN("stats settings\r\n"), .cmd = PROTO_STATS, .args = "settings",
	 .keys = "settings"},
	{IN("stats  cachedump 1  2  \r\n"), .cmd = PROTO_STATS,
	 .args = "cachedump 1  2", .keys = "cachedump|1|2"},
	{IN("quit\r\n"), .cmd = PROTO_QUIT},
	{IN("quit now\r\n"), .cmd = PROTO_QUIT},
	/* administrative commands: their words are read where they run */
	{IN("shutdown\r\n"), .cmd = PROTO_ADMIN, .num = PROTO_ADMIN_SHUTDOWN},
	{IN("shutdown graceful\r\n"), .cmd = PROTO_ADMIN,
	 .num = PROTO_ADMIN_SHUTDOWN, .args = "graceful"},
	{IN("shutdown noreply\r\n"), .cmd = PROTO_ADMIN,
	 .num = PROTO_ADMIN_SHUTDOWN, .args = "noreply"},
	{IN("cache_memlimit 64\r\n"), .cmd = PROTO_ADMIN,
	 .num = PROTO_ADMIN_MEMLIMIT, .args = "64"},
	{IN("cache_memlimit 64 noreply\r\n"), .cmd = PROTO_ADMIN,
	 .num = PROTO_ADMIN_MEMLIMIT, .args = "64 noreply"},
	{IN("cache_memlimit\r\n"), ERR(E_UNKNOWN)},
	{IN("cache_memlimit 1 2 3\r\n"), ERR(E_UNKNOWN)},
	{IN("slabs\r\n"), ERR(E_UNKNOWN)},
	{IN("slabs reassign 1 2\r\n"), .cmd = PROTO_ADMIN,
	 .num = PROTO_ADMIN_SLABS, .args = "reassign 1 2"},
	{IN("lru mode\r\n"), ERR(E_UNKNOWN)},
	{IN("lru mode flat  \r\n"), .cmd = PROTO_ADMIN, .num = PROTO_ADMIN_LRU,
	 .args = "mode flat"},
	{IN("lru_crawler\r\n"), ERR(E_UNKNOWN)},
	{IN("lru_crawler crawl all\r\n"), .cmd = PROTO_ADMIN,
	 .num = PROTO_ADMIN_CRAWLER, .args = "crawl all"},
	{IN("lru_crawler mgdump 1\r\n"), ERR(E_UNKNOWN)},
	{IN("watch\r\n"), .cmd = PROTO_ADMIN, .num = PROTO_ADMIN_WATCH},

	{IN("\r\n"), ERR(E_UNKNOWN)},
	{IN("\n"), ERR(E_UNKNOWN)},
	{IN(" \r\n"), ERR(E_UNKNOWN)},
	{IN("x\r\n"), ERR(E_UNKNOWN)},
	{IN("xx\r\n"), ERR(E_UNKNOWN)},
	{IN("\0version\r\n"), ERR(E_UNKNOWN)},
	{IN("version\0junk\r\n"), .cmd = PROTO_VERSION},
	{IN("slabs automove 1\r\n"), .cmd = PROTO_ADMIN,
	 .num = PROTO_ADMIN_SLABS, .args = "automove 1"},
	{IN("\x80\x01\r\n"), ERR(E_UNKNOWN)},
};

static void test_misc(void **state)
{
	(void)state;
	run_table(misc_cases, ML_ARRAY_SIZE(misc_cases));
}

/* ------------------------------------------------------------------------
 * Meta commands
 * ---------------------------------------------------------------------- */

static const struct pcase mg_cases[] = {
	{IN("mg a\r\n"), .cmd = PROTO_MG, .key = "a"},
	{IN("mg a v k s t f c h l O123 q u\r\n"), .cmd = PROTO_MG, .key = "a",
	 .mflags = "vkstfchlOqu", .opaque = "123", .noreply = true},
	{IN("mg a k v O1\r\n"), .cmd = PROTO_MG, .key = "a", .mflags = "kvO",
	 .opaque = "1"},
	/* Only a token's first letter counts. */
	{IN("mg a vv kx\r\n"), .cmd = PROTO_MG, .key = "a", .mflags = "vk"},
	{IN("mg a O\r\n"), .cmd = PROTO_MG, .key = "a", .mflags = "O",
	 .opaque = ""},
	{IN("mg a O" OPQ31 "\r\n"), .cmd = PROTO_MG, .key = "a", .mflags = "O",
	 .opaque = OPQ31},
	/* Every command takes every flag memcached knows. */
	{IN("mg a N30 R5 T-1 C99 F7 J3 D4 MI P L I\r\n"), .cmd = PROTO_MG,
	 .key = "a", .mflags = "NRTCFJDMPLI", .vivify = 30, .recache = 5,
	 .ttl = -1, .cas = 99, .cflags = 7, .initial = 3, .delta = 4,
	 .delta_given = true, .mode = 'I'},
	{IN("mg a Pfoo Lbar/baz v\r\n"), .cmd = PROTO_MG, .key = "a",
	 .mflags = "PLv"},
	{IN("mg a T99999999999\r\n"), .cmd = PROTO_MG, .key = "a",
	 .mflags = "T", .ttl = 1215752191},
	{IN("mg a v T1\x0bz\r\n"), .cmd = PROTO_MG, .key = "a", .mflags = "vT",
	 .ttl = 1},
	{IN("mg a F4294967296\r\n"), .cmd = PROTO_MG, .key = "a",
	 .mflags = "F"},
	{IN("mg a\x01 v\r\n"), .cmd = PROTO_MG, .key = "a\x01", .mflags = "v"},
	{IN("mg " K250 " v\r\n"), .cmd = PROTO_MG, .key = K250, .mflags = "v"},
	/* 17 flags is the most memcached takes. */
	{IN("mg a c f h k l O1 q s t u v N1 R2 T3 P L F4\r\n"), .cmd = PROTO_MG,
	 .key = "a", .mflags = "cfhklOqstuvNRTPLF", .opaque = "1", .vivify = 1,
	 .recache = 2, .ttl = 3, .cflags = 4, .noreply = true},

	{IN("mg\r\n"), ERR(E_UNKNOWN)},
	{IN("mg \r\n"), ERR(E_UNKNOWN)},
	{IN("mg " K251 "\r\n"), ERR(E_FORMAT)},
	{IN("mg a c f h k l O1 q s t u v N1 R2 T3 P L F4 I\r\n"),
	 ERR(E_MG_MANY)},
	{IN("mg " K251 " c f h k l O1 q s t u v N1 R2 T3 P L F4 I\r\n"),
	 ERR(E_FORMAT)},
	{IN("mg a c f h k l O1 q s t u v N1 R2 T3 P L F4 c\r\n"),
	 ERR(E_MG_MANY)},
	{IN("mg a v v\r\n"), ERR(E_DUP)},
	{IN("mg a x\r\n"), ERR(E_INVALID)},
	{IN("mg a E\r\n"), ERR(E_INVALID)},
	{IN("mg a S1\r\n"), ERR(E_INVALID)},
	{IN("mg a 1\r\n"), ERR(E_INVALID)},
	{IN("mg a \xff\r\n"), ERR(E_DUP)},
	{IN("mg a \x7f\r\n"), ERR(E_DUP)},
	{IN("mg a \x7e\r\n"), ERR(E_INVALID)},
	{IN("mg a x v v\r\n"), ERR(E_INVALID)},
	{IN("mg a v v x\r\n"), ERR(E_DUP)},
	{IN("mg a Tx\r\n"), ERR(E_TOKEN)},
	{IN("mg a T\r\n"), ERR(E_TOKEN)},
	{IN("mg a N\r\n"), ERR(E_TOKEN)},
	{IN("mg a Rx\r\n"), ERR(E_TOKEN)},
	{IN("mg a C\r\n"), ERR(E_TOKEN)},
	{IN("mg a C-1\r\n"), ERR(E_TOKEN)},
	{IN("mg a Fx\r\n"), ERR(E_FORMAT)},
	{IN("mg a F-1\r\n"), ERR(E_FORMAT)},
	{IN("mg a M\r\n"), ERR(E_MLEN)},
	{IN("mg a MII\r\n"), ERR(E_MLEN)},
	{IN("mg a Jx\r\n"), ERR(E_INITIAL)},
	{IN("mg a Dx\r\n"), ERR(E_MDELTA)},
	/* The last complaint wins; a bad F keeps the one before it. */
	{IN("mg a Fx Tx\r\n"), ERR(E_TOKEN)},
	{IN("mg a Tx Fx\r\n"), ERR(E_TOKEN)},
	{IN("mg a Tx Jx\r\n"), ERR(E_INITIAL)},
	{IN("mg a Tx x\r\n"), ERR(E_INVALID)},
	{IN("mg a Tx v v\r\n"), ERR(E_DUP)},
	{IN("mg a b\r\n"), ERR(E_B64)},
	{IN("mg a b Tx\r\n"), ERR(E_TOKEN)},
	{IN("mg a Tx b\r\n"), ERR(E_B64)},
	{IN("mg a b Fx\r\n"), ERR(E_B64)},
	{IN("mg a O" OPQ32 "\r\n"), ERR(E_OPAQUE)},
	{IN("mg a O" OPQ32 " x\r\n"), ERR(E_INVALID)},
	{IN("mg a O" OPQ32 " Tx\r\n"), ERR(E_TOKEN)},
	{IN("mg a q Tx\r\n"), ERR(E_TOKEN)},
	{IN("mg a O" OPQ32 " q\r\n"), ERR(E_OPAQUE)},
};

static void test_mg(void **state)
{
	(void)state;
	run_table(mg_cases, ML_ARRAY_SIZE(mg_cases));
}

/* Base64 keys, decoded in place the lenient way memcached does. */
static const struct pcase b64_cases[] = {
	{IN("mg YQ== b\r\n"), .cmd = PROTO_MG, .key = "a", .mflags = "b"},
	{IN("mg YWI= b k\r\n"), .cmd = PROTO_MG, .key = "ab", .mflags = "bk"},
	{IN("mg YWJj v b\r\n"), .cmd = PROTO_MG, .key = "abc", .mflags = "vb"},
	{IN("mg YWJjZA== b\r\n"), .cmd = PROTO_MG, .key = "abcd",
	 .mflags = "b"},
	{IN("mg YQ==YQ== b\r\n"), .cmd = PROTO_MG, .key = "a", .mflags = "b"},
	{IN("mg YWJj\tZA== b\r\n"), .cmd = PROTO_MG, .key = "abcd",
	 .mflags = "b"},
	{IN("mg YQ=a b\r\n"), .cmd = PROTO_MG, .key = "a\0", .keylen = 2,
	 .mflags = "b"},
	{IN("mg YR== b\r\n"), .cmd = PROTO_MG, .key = "a", .mflags = "b"},
	{IN("mg AA== b\r\n"), .cmd = PROTO_MG, .key = "\0", .keylen = 1,
	 .mflags = "b"},
	{IN("mg +/+/ b\r\n"), .cmd = PROTO_MG, .key = "\xfb\xff\xbf",
	 .mflags = "b"},
	{IN("mg IGEg b\r\n"), .cmd = PROTO_MG, .key = " a ", .mflags = "b"},
	{IN("mg YQ b\r\n"), ERR(E_B64)},
	{IN("mg YQ= b\r\n"), ERR(E_B64)},
	{IN("mg Y=== b\r\n"), ERR(E_B64)},
	{IN("mg ==== b\r\n"), ERR(E_B64)},
	{IN("mg _-__ b\r\n"), ERR(E_B64)},
	{IN("mg YWJ* b\r\n"), ERR(E_B64)},
	{IN("mg YWJjZ b\r\n"), ERR(E_B64)},
	{IN("md YQ b\r\n"), ERR(E_EITHER)},
	{IN("ma a b\r\n"), ERR(E_EITHER)},
	{IN("ms YQ== 1 b T5\r\nx\r\n"), .cmd = PROTO_MS, .key = "a",
	 .data = "x", .mflags = "bT", .ttl = 5, .exptime = 5},
	{IN("md YWJj b q\r\n"), .cmd = PROTO_MD, .key = "abc", .mflags = "bq",
	 .noreply = true},
	{IN("ma YWJj b\r\n"), .cmd = PROTO_MA, .key = "abc", .mflags = "b"},
	/* me decodes only with a lone b right after the key. */
	{IN("me YQ== b\r\n"), .cmd = PROTO_ME, .key = "a", .mflags = "b"},
	{IN("me YQ== bx\r\n"), .cmd = PROTO_ME, .key = "YQ=="},
	{IN("me YQ== c b\r\n"), .cmd = PROTO_ME, .key = "YQ=="},
	{IN("me a b\r\n"), ERR(E_FORMAT)},
	{IN("me a  b\r\n"), ERR(E_FORMAT)},
	/* The 250-byte limit is on the key as sent. */
	{IN("mg " K250 " b\r\n"), ERR(E_B64)},
	{IN("mg " K251 " b\r\n"), ERR(E_FORMAT)},
};

static void test_b64(void **state)
{
	(void)state;
	run_table(b64_cases, ML_ARRAY_SIZE(b64_cases));
}

static const struct pcase ms_cases[] = {
	{IN("ms a 2\r\nxy\r\n"), .cmd = PROTO_MS, .key = "a", .data = "xy"},
	{IN("ms a 2 T10 F5 c k q I C9 MA O77\r\nxy\r\n"), .cmd = PROTO_MS,
	 .key = "a", .data = "xy", .mflags = "TFckqICMO", .opaque = "77",
	 .ttl = 10, .exptime = 10, .cflags = 5, .flags = 5, .cas = 9, .num = 9,
	 .mode = 'A', .noreply = true},
	{IN("ms a 0 ME\r\n\r\n"), .cmd = PROTO_MS, .key = "a", .data = "",
	 .mflags = "M", .mode = 'E'},
	{IN("ms a 1 MP\r\nx\r\n"), .cmd = PROTO_MS, .key = "a", .data = "x",
	 .mflags = "M", .mode = 'P'},
	{IN("ms a 1 MR\r\nx\r\n"), .cmd = PROTO_MS, .key = "a", .data = "x",
	 .mflags = "M", .mode = 'R'},
	{IN("ms a 1 MS\r\nx\r\n"), .cmd = PROTO_MS, .key = "a", .data = "x",
	 .mflags = "M", .mode = 'S'},
	{IN("ms a +1\r\nx\r\n"), .cmd = PROTO_MS, .key = "a", .data = "x"},
	{IN("ms a 4294967297\r\nx\r\n"), .cmd = PROTO_MS, .key = "a",
	 .data = "x"},
	{IN("ms a 1 F4294967296\r\nx\r\n"), .cmd = PROTO_MS, .key = "a",
	 .data = "x", .mflags = "F"},
	{IN("ms a 1 c f h k l O1 s t u v N1 R1 T1 P L F1\r\nx\r\n"),
	 .cmd = PROTO_MS, .key = "a", .data = "x", .mflags = "cfhklOstuvNRTPLF",
	 .opaque = "1", .vivify = 1, .recache = 1, .ttl = 1, .exptime = 1,
	 .cflags = 1, .flags = 1},

	/* Errors before the length is known leave the data block alone. */
	{IN("ms\r\n"), ERR(E_UNKNOWN)},
	{IN("ms a\r\nx\r\n"), ERR(E_FORMAT), .used = 6},
	{IN("ms a x\r\nx\r\n"), ERR(E_FORMAT), .used = 8},
	{IN("ms a -1\r\n"), ERR(E_FORMAT)},
	{IN("ms a 1x\r\n"), ERR(E_FORMAT)},
	{IN("ms a 2147483646\r\n"), ERR(E_FORMAT)},
	{IN("ms " K251 " 1\r\n"), ERR(E_FORMAT)},
	{IN("ms a 1 c f h k l O1 q s t u v N1 R1 T1 P L F1\r\n"),
	 ERR(E_META_MANY)},
	{IN("ms a x c f h k l O1 q s t u v N1 R1 T1 P L F1\r\n"),
	 ERR(E_META_MANY)},
	{IN("ms " K251 " x c f h k l O1 q s t u v N1 R1 T1 P L F1\r\n"),
	 ERR(E_FORMAT)},

	/* Errors after it: the line is answered, <len> + 2 are swallowed. */
	{IN("ms a 1 x\r\n"), ERR(E_INVALID), .swallow = 3},
	{IN("ms a 1 S1\r\n"), ERR(E_INVALID), .swallow = 3},
	{IN("ms a 1 v v\r\n"), ERR(E_DUP), .swallow = 3},
	{IN("ms a 5 Tx\r\n"), ERR(E_TOKEN), .swallow = 7},
	{IN("ms a 1 q Tx\r\n"), ERR(E_TOKEN), .swallow = 3},
	{IN("ms a 1 Fx\r\n"), ERR(E_FORMAT), .swallow = 3},
	{IN("ms a 1 b\r\n"), ERR(E_B64), .swallow = 3},
	{IN("ms a 1 b Fx\r\n"), ERR(E_B64), .swallow = 3},
	{IN("ms a 1 MX\r\n"), ERR(E_MS_MODE), .swallow = 3},
	{IN("ms a 1 Ms\r\n"), ERR(E_MS_MODE), .swallow = 3},
	{IN("ms a 1 MI\r\n"), ERR(E_MS_MODE), .swallow = 3},
	{IN("ms a 1 MX Tx\r\n"), ERR(E_TOKEN), .swallow = 3},
	{IN("ms a 1 MX O" OPQ32 "\r\n"), ERR(E_MS_MODE), .swallow = 3},
	{IN("ms a 1 O" OPQ32 " MX\r\n"), ERR(E_MS_MODE), .swallow = 3},
	{IN("ms a 1 O" OPQ32 "\r\n"), ERR(E_OPAQUE), .swallow = 3},
	{IN("ms a 1 MS MA\r\n"), ERR(E_DUP), .swallow = 3},
	/* The opaque check comes before the size check. */
	{IN("ms a 2000000 O" OPQ32 "\r\n"), ERR(E_OPAQUE), .swallow = 2000002},
	{IN("ms a 2000000 MX\r\n"), ERR(E_MS_MODE), .swallow = 2000002},
	/* Too large: in every mode memcached drops the key's old value. */
	{IN("ms a 1048517\r\n"), ERR(E_LARGE), .swallow = 1048519, .key = "a"},
	{IN("ms a 2000000 MA q\r\n"), ERR(E_LARGE), .swallow = 2000002,
	 .key = "a"},
	{IN("ms a 1048513 F1\r\n"), ERR(E_LARGE), .swallow = 1048515,
	 .key = "a"},
	{IN("ms YWJj 1048515 b\r\n"), ERR(E_LARGE), .swallow = 1048517,
	 .key = "abc"},

	/* A bad data chunk is answered even with q. */
	{IN("ms a 1 q\r\nxyz"), ERR(E_CHUNK)},
	{IN("ms a 1\r\nxyz\r\n"), ERR(E_CHUNK), .used = 11},
};

static void test_ms(void **state)
{
	(void)state;
	run_table(ms_cases, ML_ARRAY_SIZE(ms_cases));
}

static const struct pcase mdma_cases[] = {
	{IN("md a\r\n"), .cmd = PROTO_MD, .key = "a"},
	{IN("md a q C5 I T30 k O1\r\n"), .cmd = PROTO_MD, .key = "a",
	 .mflags = "qCITkO", .opaque = "1", .cas = 5, .ttl = 30,
	 .noreply = true},
	/* md keeps any M it is given. */
	{IN("md a MX\r\n"), .cmd = PROTO_MD, .key = "a", .mflags = "M",
	 .mode = 'X'},
	{IN("md a c f h k l O1 s t u v N1 R1 T1 P L F1\r\n"), .cmd = PROTO_MD,
	 .key = "a", .mflags = "cfhklOstuvNRTPLF", .opaque = "1", .vivify = 1,
	 .recache = 1, .ttl = 1, .cflags = 1},
	{IN("md\r\n"), ERR(E_UNKNOWN)},
	{IN("md " K251 "\r\n"), ERR(E_FORMAT)},
	{IN("md a c f h k l O1 q s t u v N1 R1 T1 P L F1\r\n"), .cmd = PROTO_MD,
	 .key = "a", .mflags = "cfhklOqstuvNRTPLF", .opaque = "1", .vivify = 1,
	 .recache = 1, .ttl = 1, .cflags = 1, .noreply = true},
	{IN("md a c f h k l O1 q s t u v N1 R1 T1 P L F1 I\r\n"),
	 ERR(E_META_MANY)},
	{IN("md " K251 " c f h k l O1 q s t u v N1 R1 T1 P L F1 I\r\n"),
	 ERR(E_FORMAT)},
	/* Every flag error of md and ma reads the same. */
	{IN("md a x\r\n"), ERR(E_EITHER)},
	{IN("md a v v\r\n"), ERR(E_EITHER)},
	{IN("md a Tx\r\n"), ERR(E_EITHER)},
	{IN("md a x O" OPQ32 "\r\n"), ERR(E_EITHER)},
	{IN("md a O" OPQ32 "\r\n"), ERR(E_OPAQUE)},

	{IN("ma a\r\n"), .cmd = PROTO_MA, .key = "a"},
	{IN("ma a N0 J5 D7 MD q t c v k O9\r\n"), .cmd = PROTO_MA, .key = "a",
	 .mflags = "NJDMqtcvkO", .opaque = "9", .initial = 5, .delta = 7,
	 .delta_given = true, .mode = 'D', .noreply = true},
	{IN("ma a M+\r\n"), .cmd = PROTO_MA, .key = "a", .mflags = "M",
	 .mode = '+'},
	{IN("ma a M-\r\n"), .cmd = PROTO_MA, .key = "a", .mflags = "M",
	 .mode = '-'},
	{IN("ma a MI\r\n"), .cmd = PROTO_MA, .key = "a", .mflags = "M",
	 .mode = 'I'},
	{IN("ma a D0\r\n"), .cmd = PROTO_MA, .key = "a", .mflags = "D",
	 .delta = 0, .delta_given = true},
	{IN("ma a D18446744073709551615\r\n"), .cmd = PROTO_MA, .key = "a",
	 .mflags = "D", .delta = UINT64_MAX, .delta_given = true},
	{IN("ma\r\n"), ERR(E_UNKNOWN)},
	{IN("ma a x\r\n"), ERR(E_EITHER)},
	{IN("ma a Dx\r\n"), ERR(E_EITHER)},
	{IN("ma a D-1\r\n"), ERR(E_EITHER)},
	{IN("ma a D18446744073709551616\r\n"), ERR(E_EITHER)},
	{IN("ma a MI MD\r\n"), ERR(E_EITHER)},
	{IN("ma a MX\r\n"), ERR(E_MA_MODE)},
	{IN("ma a Mi\r\n"), ERR(E_MA_MODE)},
	{IN("ma a MX O" OPQ32 "\r\n"), ERR(E_MA_MODE)},
	{IN("ma a O" OPQ32 " MX\r\n"), ERR(E_MA_MODE)},
	{IN("ma a O" OPQ32 "\r\n"), ERR(E_OPAQUE)},
	{IN("ma a s f h l u k c t v O1 P L F1 I C1 R1 T1 N1\r\n"),
	 ERR(E_META_MANY)},

	{IN("me a\r\n"), .cmd = PROTO_ME, .key = "a"},
	{IN("me a x y z\r\n"), .cmd = PROTO_ME, .key = "a"},
	{IN("me\r\n"), ERR(E_FORMAT)},
	{IN("me " K251 "\r\n"), ERR(E_FORMAT)},

	{IN("mn\r\n"), .cmd = PROTO_MN},
	{IN("mn a b c\r\n"), .cmd = PROTO_MN},
	{IN("mx\r\n"), ERR(E_UNKNOWN)},
	{IN("mna\r\n"), ERR(E_UNKNOWN)},
	{IN("m\r\n"), ERR(E_UNKNOWN)},
};

static void test_md_ma_me_mn(void **state)
{
	(void)state;
	run_table(mdma_cases, ML_ARRAY_SIZE(mdma_cases));
}

/* ------------------------------------------------------------------------
 * Long lines and the connection-closing cases
 * ---------------------------------------------------------------------- */

/* Parses n bytes made of head, fill repeated, then tail. */
static size_t parse_built(const char *head, char fill, size_t n,
			  const char *tail, struct proto_req *r)
{
	struct proto_parser ps = {0};
	size_t hl = strlen(head), tl = strlen(tail), got;
	char *buf = malloc(n);

	assert_non_null(buf);
	assert_true(hl + tl <= n);
	memcpy(buf, head, hl);
	memset(buf + hl, fill, n - hl - tl);
	memcpy(buf + n - tl, tail, tl);
	got = proto_parse(&ps, buf, n, r);
	free(buf);
	return got;
}

static void expect_close(size_t got, size_t n, const struct proto_req *r)
{
	assert_int_equal(got, n);
	assert_int_equal(r->cmd, PROTO_ERR);
	assert_true(r->close);
	assert_string_equal(r->err, "");
}

static void expect_reply(size_t got, size_t n, const struct proto_req *r,
			 uint8_t cmd, const char *err)
{
	assert_int_equal(got, n);
	assert_int_equal(r->cmd, cmd);
	assert_false(r->close);
	if (err)
		assert_string_equal(r->err, err);
}

/*
 * memcached closes a connection when it holds more than 2048 bytes of a
 * line and no newline, unless the line is a get or gets; a longer line
 * whose newline it already holds (up to its 16 KiB read buffer) is
 * answered like any other.
 */
static void test_long_lines(void **state)
{
	struct proto_req r;
	size_t got;

	(void)state;
	got = parse_built("x", 'x', 2047 + 2, "\r\n", &r);
	expect_reply(got, 2049, &r, PROTO_ERR, E_UNKNOWN);
	got = parse_built("x", 'x', 2048 + 2, "\r\n", &r);
	expect_reply(got, 2050, &r, PROTO_ERR, E_UNKNOWN);
	got = parse_built("set ", 'k', 3000, " 0 0 1\r\n", &r);
	expect_reply(got, 3000, &r, PROTO_ERR, E_FORMAT);
	got = parse_built("set long 0 0 1 noreply ", 'x', 3028, "\r\n", &r);
	expect_reply(got, 3028, &r, PROTO_ERR, E_UNKNOWN);
	got = parse_built("mg k L", 'p', 16384, "\r\n", &r);
	expect_reply(got, 16384, &r, PROTO_MG, NULL);
	got = parse_built("mg k L", 'p', 16385, "\r\n", &r);
	expect_close(got, 16385, &r);

	/* Without a newline: wait up to 2048 bytes, then close. */
	assert_int_equal(parse_built("x", 'x', 2048, "", &r), 0);
	got = parse_built("x", 'x', 2049, "", &r);
	expect_close(got, 2049, &r);
	got = parse_built("mg ", 'k', 2049, "", &r);
	expect_close(got, 2049, &r);
	got = parse_built("gat 0 ", 'k', 2049, "", &r);
	expect_close(got, 2049, &r);
	got = parse_built("get\t", 'k', 2049, "", &r);
	expect_close(got, 2049, &r);
	got = parse_built("get", 'k', 2049, "", &r);
	expect_close(got, 2049, &r);

	/* get and gets lines may grow to PROTO_GET_LINE_MAX. */
	assert_int_equal(parse_built("get ", 'k', 5000, "", &r), 0);
	assert_int_equal(parse_built("gets ", 'k', 5000, "", &r), 0);
	assert_int_equal(parse_built("get ", ' ', PROTO_GET_LINE_MAX, "k", &r),
			 0);
	got = parse_built("get ", ' ', PROTO_GET_LINE_MAX + 1, "k", &r);
	expect_close(got, PROTO_GET_LINE_MAX + 1, &r);
	got = parse_built("get ", ' ', PROTO_GET_LINE_MAX + 1, "k\r\n", &r);
	expect_reply(got, PROTO_GET_LINE_MAX + 1, &r, PROTO_GET, NULL);
	assert_int_equal(r.klen, 1);
	got = parse_built("get ", ' ', PROTO_GET_LINE_MAX + 2, "k\r\n", &r);
	expect_close(got, PROTO_GET_LINE_MAX + 2, &r);
	got = parse_built("get ", ' ', 30000, "a b\r\n", &r);
	expect_reply(got, 30000, &r, PROTO_GET, NULL);
	assert_int_equal(r.klen, 1);

	/* Up to 100 spaces may come before the get. */
	{
		char head[120];

		memset(head, ' ', 100);
		strcpy(head + 100, "get a ");
		assert_int_equal(parse_built(head, ' ', 3000, "", &r), 0);
		got = parse_built(head, ' ', 20000, "\r\n", &r);
		expect_reply(got, 20000, &r, PROTO_GET, NULL);
		memset(head, ' ', 101);
		strcpy(head + 101, "get a ");
		got = parse_built(head, ' ', 3000, "", &r);
		expect_close(got, 3000, &r);
		got = parse_built(head, ' ', 20000, "\r\n", &r);
		expect_close(got, 20000, &r);
	}
}

/*
 * A get line as long as the parser takes, of 12-byte keys, arriving in
 * reads of a few KiB with one parser, as a connection brings it: every
 * read but the last asks for more, and the last gives every key. Then the
 * parser, told the newline-free bytes it has seen, is handed another
 * input: a shorter one (the count no longer fits, so it starts over) and
 * one whose newline sits just past the bytes already seen.
 */
static void test_long_get_in_reads(void **state)
{
	const size_t keys = (PROTO_GET_LINE_MAX - 6) / 13, step = 4093;
	const size_t n = 4 + keys * 13 + 1;
	struct proto_parser ps = {0};
	uint32_t pos, off, klen;
	struct proto_req r;
	size_t have, got = 0, i;
	char *buf = malloc(n + 1);

	(void)state;
	assert_non_null(buf);
	memcpy(buf, "get", 3);
	for (i = 0; i < keys; i++)
		snprintf(buf + 3 + i * 13, 14, " k%011zu", i);
	memcpy(buf + n - 2, "\r\n", 2);
	assert_true(n <= PROTO_GET_LINE_MAX + 1);
	for (have = ML_MIN(step, n);; have = ML_MIN(have + step, n)) {
		got = proto_parse(&ps, buf, have, &r);
		if (have == n)
			break;
		assert_int_equal(got, 0);
		assert_int_equal(ps.scanned, have);
	}
	expect_reply(got, n, &r, PROTO_GET, NULL);
	assert_int_equal(ps.scanned, 0);
	pos = r.key_off;
	for (i = 0; proto_next_key(buf, &r, &pos, &off, &klen); i++) {
		char want[13];

		snprintf(want, sizeof(want), "k%011zu", i);
		assert_int_equal(klen, 12);
		assert_memory_equal(buf + off, want, 12);
	}
	assert_int_equal(i, keys);

	/* a stale count larger than the input is dropped */
	assert_int_equal(proto_parse(&ps, buf, 40000, &r), 0);
	assert_int_equal(ps.scanned, 40000);
	memcpy(buf, "get a\r\n", 7);
	expect_reply(proto_parse(&ps, buf, 7, &r), 7, &r, PROTO_GET, NULL);
	assert_int_equal(r.klen, 1);

	/* the newline right after the bytes seen is found */
	memcpy(buf, "get ab", 6);
	memset(buf + 6, ' ', 3000);
	assert_int_equal(proto_parse(&ps, buf, 3006, &r), 0);
	memcpy(buf + 3006, "\r\n", 2);
	expect_reply(proto_parse(&ps, buf, 3008, &r), 3008, &r, PROTO_GET,
		     NULL);
	assert_int_equal(r.klen, 2);
	free(buf);
}

/* ------------------------------------------------------------------------
 * Swallowing a data block too large for the cache
 * ---------------------------------------------------------------------- */

static void test_swallow(void **state)
{
	static const char line[] = "set big 0 0 100000 noreply\r\n";
	static const char next[] = "get a\r\n";
	const size_t data = 100000 + 2, ll = sizeof(line) - 1;
	const size_t total = ll + data + sizeof(next) - 1;
	struct proto_parser ps = {0};
	struct proto_req r;
	size_t chunk, off, n, nones, eaten;
	char *buf = malloc(total);

	(void)state;
	assert_non_null(buf);
	memcpy(buf, line, ll);
	memset(buf + ll, 'v', data);
	memcpy(buf + ll + data, next, sizeof(next) - 1);

	/* Nothing pending: an empty buffer asks for more. */
	assert_int_equal(proto_parse(&ps, buf, 0, &r), 0);

	for (chunk = 1; chunk <= total; chunk = chunk * 7 + 3) {
		memset(&ps, 0, sizeof(ps));
		ps.item_size_max = 64 * 1024;
		n = proto_parse(&ps, buf, ll, &r);
		assert_int_equal(n, ll);
		assert_int_equal(r.cmd, PROTO_ERR);
		assert_string_equal(r.err, E_LARGE);
		assert_true(r.noreply);
		assert_int_equal(r.klen, 3);
		assert_int_equal(ps.swallow, data);

		/* The data block arrives in pieces and is never buffered. */
		off = ll;
		nones = 0;
		eaten = 0;
		while (ps.swallow) {
			size_t avail = ML_MIN(chunk, total - off);

			assert_int_equal(proto_parse(&ps, buf + off, 0, &r), 0);
			n = proto_parse(&ps, buf + off, avail, &r);
			assert_true(n > 0 && n <= avail);
			assert_int_equal(r.cmd, PROTO_NONE);
			assert_int_equal(r.len, n);
			off += n;
			eaten += n;
			nones++;
		}
		assert_int_equal(eaten, data);
		assert_true(nones >= data / chunk);
		n = proto_parse(&ps, buf + off, total - off, &r);
		assert_int_equal(n, sizeof(next) - 1);
		assert_int_equal(r.cmd, PROTO_GET);
	}
	free(buf);
}

/* ------------------------------------------------------------------------
 * proto_next_key
 * ---------------------------------------------------------------------- */

static void test_next_key(void **state)
{
	static const char line[] = "get  a bb   ccc  \r\n";
	struct proto_parser ps = {0};
	struct proto_req r;
	uint32_t pos, off, klen;
	char buf[sizeof(line)];

	(void)state;
	memcpy(buf, line, sizeof(line));
	assert_int_equal(proto_parse(&ps, buf, sizeof(line) - 1, &r),
			 sizeof(line) - 1);
	assert_int_equal(r.key_off, 5);
	pos = r.key_off;
	assert_true(proto_next_key(buf, &r, &pos, &off, &klen));
	assert_int_equal(off, 5);
	assert_int_equal(klen, 1);
	assert_true(proto_next_key(buf, &r, &pos, &off, &klen));
	assert_int_equal(off, 7);
	assert_int_equal(klen, 2);
	assert_true(proto_next_key(buf, &r, &pos, &off, &klen));
	assert_int_equal(off, 12);
	assert_int_equal(klen, 3);
	assert_false(proto_next_key(buf, &r, &pos, &off, &klen));
	assert_false(proto_next_key(buf, &r, &pos, &off, &klen));

	/* A hand-made range: only [key_off, keys_end) is looked at. */
	memset(&r, 0, sizeof(r));
	r.key_off = 7;
	r.keys_end = 8;
	pos = r.key_off;
	assert_true(proto_next_key(buf, &r, &pos, &off, &klen));
	assert_int_equal(off, 7);
	assert_int_equal(klen, 1);
	assert_false(proto_next_key(buf, &r, &pos, &off, &klen));
}

/* ------------------------------------------------------------------------
 * One pipelined stream, whole and split
 * ---------------------------------------------------------------------- */

/* Every command, good and bad, text and meta, with data blocks. */
static const char stream[] =
	"get a\r\n"
	"gets a bb ccc\r\n"
	"gat 100 a b\r\n"
	"gats 0 x\r\n"
	"gat 5\r\n"
	"set k 1 2 5\r\nhello\r\n"
	"add k 0 0 2 noreply\r\n\r\n\r\n"
	"replace k 0 0 3\r\nabc\r\n"
	"append k 0 0 1\r\nz\r\n"
	"prepend k 0 0 1\r\nz\r\n"
	"cas k 0 0 1 77\r\nz\r\n"
	"set k 0 0 1\r\nzzz\r\n"
	"set k 0 0 -1\r\n"
	"set k 0 0 40 noreply\r\n0123456789012345678901234567890123456789\r\n"
	"set k 0 0 10\r\n0123456789\r\n"
	"delete k\r\n"
	"delete k 0 noreply\r\n"
	"delete k 1\r\n"
	"incr n 5\r\n"
	"decr n 3 noreply\r\n"
	"incr n x\r\n"
	"touch k 60\r\n"
	"flush_all 10\r\n"
	"flush_all noreply\r\n"
	"version\r\n"
	"verbosity 1 noreply\r\n"
	"stats items\r\n"
	"stats\r\n"
	"slabs\r\n"
	"bogus command\r\n"
	"\r\n"
	"get a\0junk\r\n"
	"get " K251 "\r\n"
	"mg a v k O1 t\r\n"
	"mg YWJj b v\r\n"
	"mg a v v\r\n"
	"ms k 3 T10 F2 MA q\r\nxyz\r\n"
	"ms YWJj 2 b\r\nhi\r\n"
	"ms k 3 Tx\r\n123\r\n"
	"ms k 5 q\r\n123\r\nzz"
	"ms k 40 O9\r\n0123456789012345678901234567890123456789\r\n"
	"md k q I T5\r\n"
	"md YWJj b\r\n"
	"md k x\r\n"
	"ma n N0 J10 D2 MD v\r\n"
	"ma n MX\r\n"
	"me k\r\n"
	"me YWJj b\r\n"
	"mn\r\n"
	"mg " K250 " v\r\n"
	"get " K50 " " K50 " " K50 " " K50 " " K50 " " K50 " " K50 " " K50
	" " K50 " " K50 " " K50 " " K50 " " K50 " " K50 " " K50 " " K50 " " K50
	" " K50 " " K50 " " K50 " " K50 " " K50 " " K50 " " K50 " " K50 " " K50
	" " K50 " " K50 " " K50 " " K50 " " K50 " " K50 " " K50 " " K50 " " K50
	" " K50 " " K50 " " K50 " " K50 " " K50 " " K50 " " K50 " " K50 " " K50
	" " K50 "\r\n"
	"quit\r\n";

/* The -I used on the stream, so the two 40-byte blocks are too large. */
#define STREAM_ITEM_MAX 99
#define MAX_REQS	128

/* A request with what it points at copied out, for comparing runs. */
struct rec {
	struct proto_req r;
	char key[PROTO_KEY_MAX];
	char data[64];
	char opaque[PROTO_OPAQUE_MAX];
};

static void rec_fill(struct rec *x, const char *buf, const struct proto_req *r)
{
	memset(x, 0, sizeof(*x));
	x->r = *r;
	memcpy(x->key, buf + r->key_off, r->klen);
	assert_true(r->data_len <= sizeof(x->data));
	memcpy(x->data, buf + r->data_off, r->data_len);
	memcpy(x->opaque, buf + r->meta.opaque_off, r->meta.opaque_len);
}

static bool meta_equal(const struct proto_meta *a, const struct proto_meta *b)
{
	return a->flags == b->flags && a->opaque_off == b->opaque_off &&
	       a->opaque_len == b->opaque_len && a->mode == b->mode &&
	       a->client_flags == b->client_flags && a->ttl == b->ttl &&
	       a->vivify_ttl == b->vivify_ttl && a->recache == b->recache &&
	       a->cas == b->cas && a->delta == b->delta &&
	       a->initial == b->initial && a->norder == b->norder &&
	       memcmp(a->order, b->order, a->norder) == 0;
}

static void rec_compare(const struct rec *a, const struct rec *b, size_t i,
			size_t split)
{
	const struct proto_req *x = &a->r, *y = &b->r;

	if (x->cmd != y->cmd || x->noreply != y->noreply ||
	    x->close != y->close || x->has_num != y->has_num ||
	    x->klen != y->klen || x->key_off != y->key_off ||
	    x->keys_end != y->keys_end || x->data_off != y->data_off ||
	    x->data_len != y->data_len || x->args_off != y->args_off ||
	    x->args_len != y->args_len || x->len != y->len ||
	    x->flags != y->flags || x->exptime != y->exptime ||
	    x->num != y->num || x->hv != y->hv ||
	    (x->err == NULL) != (y->err == NULL) ||
	    (x->err && strcmp(x->err, y->err) != 0) ||
	    !meta_equal(&x->meta, &y->meta) ||
	    memcmp(a->key, b->key, sizeof(a->key)) != 0 ||
	    memcmp(a->data, b->data, sizeof(a->data)) != 0 ||
	    memcmp(a->opaque, b->opaque, sizeof(a->opaque)) != 0)
		fail_msg("request %zu differs when split at %zu (cmd %u/%u)", i,
			 split, x->cmd, y->cmd);
}

/*
 * Parses the stream as a connection would: the buffer holds first bytes
 * [0, step(0)), and every time the parser asks for more, the next step
 * arrives. step == 0 means all at once. PROTO_NONE (swallowed bytes) is
 * left out of the list.
 */
static size_t parse_stream(size_t first, size_t step, struct rec *out,
			   uint64_t *nones)
{
	const size_t total = sizeof(stream) - 1;
	struct proto_parser ps = {.item_size_max = STREAM_ITEM_MAX};
	size_t off = 0, avail, n, nreq = 0;
	struct proto_req r;
	char *buf = malloc(total);

	assert_non_null(buf);
	memcpy(buf, stream, total);
	avail = first ? first : total;
	*nones = 0;
	while (off < total) {
		n = proto_parse(&ps, buf + off, avail - off, &r);
		if (n == 0) {
			assert_true(avail < total);
			avail = step ? ML_MIN(avail + step, total) : total;
			continue;
		}
		assert_int_equal(n, r.len);
		assert_true(off + n <= avail);
		if (r.cmd == PROTO_NONE) {
			(*nones)++;
		} else {
			assert_true(nreq < MAX_REQS);
			rec_fill(&out[nreq++], buf + off, &r);
		}
		off += n;
	}
	assert_int_equal(off, total);
	free(buf);
	return nreq;
}

static void test_stream_whole(void **state)
{
	static const uint8_t want[] = {
		PROTO_GET,	 PROTO_GETS,	PROTO_GAT,
		PROTO_GATS,	 PROTO_GAT,	PROTO_SET,
		PROTO_ADD,	 PROTO_REPLACE, PROTO_APPEND,
		PROTO_PREPEND,	 PROTO_CAS,	PROTO_ERR,
		PROTO_ERR,	 PROTO_ERR,	PROTO_ERR,
		PROTO_SET,	 PROTO_DELETE,	PROTO_DELETE,
		PROTO_ERR,	 PROTO_INCR,	PROTO_DECR,
		PROTO_ERR,	 PROTO_TOUCH,	PROTO_FLUSH_ALL,
		PROTO_FLUSH_ALL, PROTO_VERSION, PROTO_VERBOSITY,
		PROTO_STATS,	 PROTO_STATS,	PROTO_ERR,
		PROTO_ERR,	 PROTO_ERR,	PROTO_GET,
		PROTO_ERR,	 PROTO_MG,	PROTO_MG,
		PROTO_ERR,	 PROTO_MS,	PROTO_MS,
		PROTO_ERR,	 PROTO_ERR,	PROTO_ERR,
		PROTO_MD,	 PROTO_MD,	PROTO_ERR,
		PROTO_MA,	 PROTO_ERR,	PROTO_ME,
		PROTO_ME,	 PROTO_MN,	PROTO_MG,
		PROTO_GET,	 PROTO_QUIT,
	};
	static struct rec recs[MAX_REQS];
	uint64_t nones;
	size_t n, i;

	(void)state;
	n = parse_stream(0, 0, recs, &nones);
	assert_int_equal(n, ML_ARRAY_SIZE(want));
	for (i = 0; i < n; i++) {
		if (recs[i].r.cmd != want[i])
			fail_msg("request %zu: cmd %u, want %u", i,
				 recs[i].r.cmd, want[i]);
	}
	/* Three data blocks were swallowed (the two 40-byte ones and the
	 * one after "ms k 3 Tx"), each in one piece from a whole buffer. */
	assert_int_equal(nones, 3);
	/* Spot checks that the stream parses as intended. */
	assert_memory_equal(recs[5].data, "hello", 5);
	/* "zzz" is the 1 + 2 bytes eaten; the \r\n after it is a line. */
	assert_string_equal(recs[11].r.err, E_CHUNK);
	assert_string_equal(recs[12].r.err, E_UNKNOWN);
	assert_string_equal(recs[14].r.err, E_LARGE);
	assert_true(recs[14].r.noreply);
	assert_memory_equal(recs[35].key, "abc", 3);
	assert_int_equal(recs[35].r.klen, 3);
	assert_memory_equal(recs[38].key, "abc", 3);
	assert_string_equal(recs[39].r.err, E_TOKEN);
	assert_string_equal(recs[40].r.err, E_CHUNK);
	assert_false(recs[40].r.noreply);
	assert_string_equal(recs[41].r.err, E_LARGE);
	assert_int_equal(recs[41].r.klen, 1);
	assert_int_equal(recs[50].r.klen, PROTO_KEY_MAX);
	assert_int_equal(recs[51].r.klen, 50);
}

static void test_stream_split(void **state)
{
	static struct rec whole[MAX_REQS], part[MAX_REQS];
	const size_t total = sizeof(stream) - 1;
	uint64_t nones;
	size_t n, m, s, i;

	(void)state;
	n = parse_stream(0, 0, whole, &nones);
	for (s = 1; s < total; s++) {
		m = parse_stream(s, 0, part, &nones);
		if (m != n)
			fail_msg("split at %zu: %zu requests, want %zu", s, m,
				 n);
		for (i = 0; i < n; i++)
			rec_compare(&whole[i], &part[i], i, s);
	}
}

static void test_stream_trickle(void **state)
{
	static struct rec whole[MAX_REQS], part[MAX_REQS];
	static const size_t steps[] = {1, 2, 3, 7, 64, 1000};
	uint64_t nones;
	size_t n, m, i, k;

	(void)state;
	n = parse_stream(0, 0, whole, &nones);
	for (k = 0; k < ML_ARRAY_SIZE(steps); k++) {
		m = parse_stream(steps[k], steps[k], part, &nones);
		assert_int_equal(m, n);
		for (i = 0; i < n; i++)
			rec_compare(&whole[i], &part[i], i, steps[k]);
	}
}

/*
 * The one place where the split matters, as it does for memcached: a
 * 3000-byte line closes the connection if more than 2048 of its bytes
 * come before the newline does, and is answered if it comes whole.
 */
static void test_close_split(void **state)
{
	const size_t n = 3000;
	struct proto_parser ps;
	struct proto_req r;
	size_t s, got;
	char *buf = malloc(n);

	(void)state;
	assert_non_null(buf);
	memcpy(buf, "mg ", 3);
	memset(buf + 3, 'k', n - 5);
	memcpy(buf + n - 2, "\r\n", 2);
	for (s = 1; s <= n; s++) {
		memset(&ps, 0, sizeof(ps));
		got = proto_parse(&ps, buf, s, &r);
		if (s <= PROTO_LINE_MAX)
			assert_int_equal(got, 0);
		else if (s < n)
			expect_close(got, s, &r);
		else
			expect_reply(got, n, &r, PROTO_ERR, E_FORMAT);
	}
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get),
		cmocka_unit_test(test_store),
		cmocka_unit_test(test_store_limit),
		cmocka_unit_test(test_misc),
		cmocka_unit_test(test_mg),
		cmocka_unit_test(test_b64),
		cmocka_unit_test(test_ms),
		cmocka_unit_test(test_md_ma_me_mn),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_swallow),
		cmocka_unit_test(test_next_key),
		cmocka_unit_test(test_stream_whole),
		cmocka_unit_test(test_stream_split),
		cmocka_unit_test(test_stream_trickle),
		cmocka_unit_test(test_long_get_in_reads),
		cmocka_unit_test(test_close_split),
	};

	return cmocka_run_group_tests_name("proto_parse", tests, NULL, NULL);
}

/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the protocol layer: the input is a byte stream from
 * one client connection. Its first byte sets the protocol, as memcached's
 * connections do: 0x80 is the binary protocol, 0x01 (then dropped) is a
 * forwarding peer's mix, each request binary when its first byte is 0x80
 * and text otherwise, anything else is text. It is parsed and executed on
 * a fresh node twice, once whole and once cut in two at a point derived
 * from the input, and these must hold:
 *
 *   - proto_parse() never consumes more than it was offered, and what it
 *     returns is req->len;
 *   - every offset it reports lies inside the request;
 *   - a text error carries a reply line ("" only for a silent close), a
 *     binary one a status;
 *   - proto_execute() returns 0, -EPIPE or -ENOMEM, nothing else;
 *   - the same requests come out whole and split (bytes swallowed after
 *     an oversized data block may come in other slices), and the replies
 *     are the same byte for byte. memcached itself treats a line longer
 *     than PROTO_LINE_MAX differently depending on how it was read, so
 *     inputs holding such a run of bytes are not compared.
 *
 * Every buffer handed to the parser is exactly as long as the bytes in it,
 * so that AddressSanitizer sees any read past the end.
 *
 * Two nodes live for the whole run (creating a node per input would cost
 * more than the input), one fed whole and one split; as both see the same
 * requests they stay in the same state, CAS counters included. Each input
 * starts with a flush_all on both, so items do not carry over. Should the
 * two ever be allowed to part (an input that is not compared), both are
 * made anew.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"

#define FUZZ_NOW 1700000000u
/* Small limits, so that inputs of a few KiB reach them. */
#define FUZZ_ITEM_MAX  2048
#define FUZZ_SEGMENT   16384
#define FUZZ_SHARD_MEM (256 * 1024)
/* Requests remembered per pass for the whole/split comparison. */
#define FUZZ_MAX_REQS 4096

#define FUZZ_SHARDS 2

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What a parsed request says, independent of where its buffer lay. */
struct fuzz_sig {
	uint8_t cmd;
	bool noreply;
	bool close;
	uint32_t len;
	uint32_t key_off;
	uint16_t klen;
	uint32_t data_off;
	uint32_t data_len;
	uint64_t num;
	int64_t exptime;
	uint64_t hv;
	const char *err;
};

struct fuzz_pass {
	struct proto_node *node;
	struct proto_parser ps;
	struct proto_out out;
	struct fuzz_sig sig[FUZZ_MAX_REQS];
	size_t nsig;
	size_t consumed; /* bytes parsed, swallowed ones included */
	char *pend;	 /* bytes not parsed yet */
	size_t npend;
	bool closed;
	enum { MODE_TEXT, MODE_BINARY, MODE_MIXED } mode;
};

static void fuzz_die(const char *what, size_t a, size_t b)
{
	fprintf(stderr, "fuzz_proto: %s (%zu, %zu)\n", what, a, b);
	abort();
}

/* Checks one parsed request against the buffer it came from. */
static void check_req(const struct proto_req *req, size_t used, size_t avail)
{
	if (used > avail)
		fuzz_die("proto_parse consumed more than offered", used, avail);
	if (req->len != used)
		fuzz_die("proto_parse return differs from req->len", used,
			 req->len);
	if (req->cmd >= PROTO_CMD_MAX)
		fuzz_die("bad command", req->cmd, 0);
	if (req->cmd == PROTO_ERR && req->binary) {
		if (!req->bin.status)
			fuzz_die("binary refusal without a status", 0, 0);
		return;
	}
	if (req->cmd == PROTO_ERR) {
		size_t n;

		if (!req->err)
			fuzz_die("PROTO_ERR without a reply", 0, 0);
		n = strlen(req->err);
		if (n && (n < 2 || memcmp(req->err + n - 2, "\r\n", 2)))
			fuzz_die("error reply without line end", n, 0);
		if (!n && !req->close)
			fuzz_die("empty error reply without close", 0, 0);
		return;
	}
	if (req->cmd == PROTO_NONE)
		return;
	if (req->klen > PROTO_KEY_MAX)
		fuzz_die("key too long", req->klen, 0);
	if (req->klen && (size_t)req->key_off + req->klen > used)
		fuzz_die("key outside the request", req->key_off, used);
	if (req->data_len && (size_t)req->data_off + req->data_len > used)
		fuzz_die("data outside the request", req->data_off, used);
	if (req->keys_end > used)
		fuzz_die("key list outside the request", req->keys_end, used);
	if (req->meta.opaque_len > PROTO_OPAQUE_MAX ||
	    (req->meta.opaque_len &&
	     (size_t)req->meta.opaque_off + req->meta.opaque_len > used))
		fuzz_die("bad opaque", req->meta.opaque_off,
			 req->meta.opaque_len);
}

/* Walks a retrieval's keys: each lies inside the key list. */
static void check_keys(const char *buf, const struct proto_req *req)
{
	uint32_t pos = req->key_off, off, klen, n = 0;

	if (req->cmd != PROTO_GET && req->cmd != PROTO_GETS &&
	    req->cmd != PROTO_GAT && req->cmd != PROTO_GATS)
		return;
	while (proto_next_key(buf, req, &pos, &off, &klen)) {
		if (off < req->key_off || off + klen > req->keys_end || !klen)
			fuzz_die("key outside the key list", off, klen);
		if (++n > PROTO_GET_LINE_MAX)
			fuzz_die("key walk does not end", n, 0);
	}
}

static void record(struct fuzz_pass *p, const struct proto_req *req)
{
	struct fuzz_sig *s;

	if (req->cmd == PROTO_NONE || p->nsig == FUZZ_MAX_REQS)
		return;
	s = &p->sig[p->nsig++];
	s->cmd = req->cmd;
	s->noreply = req->noreply;
	s->close = req->close;
	s->len = req->len;
	s->key_off = req->key_off;
	s->klen = req->klen;
	s->data_off = req->data_off;
	s->data_len = req->data_len;
	s->num = req->num;
	s->exptime = req->exptime;
	s->hv = req->hv;
	s->err = req->err;
}

/*
 * Appends bytes to what the connection holds, then parses and executes
 * every complete request. The parser sees a buffer of exactly the bytes
 * held.
 */
static void feed(struct fuzz_pass *p, const uint8_t *data, size_t n)
{
	size_t off = 0, have;
	char *buf;

	if (p->closed)
		return;
	have = p->npend + n;
	buf = malloc(have ? have : 1);
	if (!buf)
		abort();
	if (p->npend)
		memcpy(buf, p->pend, p->npend);
	if (n)
		memcpy(buf + p->npend, data, n);
	free(p->pend);
	p->pend = NULL;
	p->npend = 0;

	while (off < have) {
		struct proto_req req;
		size_t avail = have - off, used, before;
		int rc;

		if (p->mode == MODE_BINARY ||
		    (p->mode == MODE_MIXED && p->ps.swallow == 0 &&
		     (uint8_t)buf[off] == PROTO_BIN_REQ))
			used = proto_parse_binary(&p->ps, buf + off, avail,
						  &req);
		else
			used = proto_parse(&p->ps, buf + off, avail, &req);
		if (!used)
			break;
		check_req(&req, used, avail);
		check_keys(buf + off, &req);
		record(p, &req);
		before = p->out.len;
		rc = proto_execute(p->node, buf + off, &req, &p->out);
		if (rc != 0 && rc != -EPIPE && rc != -ENOMEM)
			fuzz_die("proto_execute returned", (size_t)-rc, 0);
		if (p->out.len < before || p->out.len > p->out.cap)
			fuzz_die("reply buffer shrank or overflowed",
				 p->out.len, p->out.cap);
		if (rc == -ENOMEM && p->out.len != before)
			fuzz_die("-ENOMEM with a partial reply", before,
				 p->out.len);
		off += used;
		p->consumed += used;
		if (rc == -EPIPE || req.close) {
			p->closed = true;
			break;
		}
	}
	if (!p->closed && off < have) {
		p->npend = have - off;
		p->pend = malloc(p->npend);
		if (!p->pend)
			abort();
		memcpy(p->pend, buf + off, p->npend);
	}
	free(buf);
}

static struct proto_node *node_new(void)
{
	struct proto_node_params np = {
		.nshards = FUZZ_SHARDS,
		.mem_limit = (size_t)FUZZ_SHARD_MEM * FUZZ_SHARDS,
		.item_size_max = FUZZ_ITEM_MAX,
		.segment_size = FUZZ_SEGMENT,
		.now = FUZZ_NOW,
		.pid = 1,
		.conn_max = 16,
		.tcp_port = 11211,
		.threads = 1,
	};
	struct proto_node *n = proto_node_create(&np);

	if (!n)
		fuzz_die("proto_node_create failed", (size_t)errno,
			 FUZZ_SHARDS);
	return n;
}

static void pass_start(struct fuzz_pass *p, struct proto_node *n)
{
	static const char flush[] = "flush_all\r\n";

	memset(p, 0, sizeof(*p));
	p->ps.item_size_max = FUZZ_ITEM_MAX;
	p->node = n;
	feed(p, (const uint8_t *)flush, sizeof(flush) - 1);
	/* Each input starts with an empty, unallocated reply buffer, as a
	 * new connection would. */
	proto_out_free(&p->out);
	memset(&p->out, 0, sizeof(p->out));
	p->nsig = 0;
	p->consumed = 0;
}

static void pass_end(struct fuzz_pass *p)
{
	proto_out_free(&p->out);
	free(p->pend);
	p->pend = NULL;
}

/* FNV-1a: where to cut the input, from its bytes. */
static uint64_t fnv(const uint8_t *d, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= d[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/*
 * Replies that may differ between two runs of the same bytes: stats
 * report CPU time and the like (text "stats", or a binary stat frame).
 */
static bool has_volatile_reply(const uint8_t *d, size_t n)
{
	static const char word[] = "stats";
	size_t i;

	for (i = 0; i + sizeof(word) - 1 <= n; i++)
		if (!memcmp(d + i, word, sizeof(word) - 1))
			return true;
	for (i = 0; i + 1 < n; i++)
		if (d[i] == PROTO_BIN_REQ && d[i + 1] == 0x10)
			return true;
	return false;
}

/* A run of more than PROTO_LINE_MAX bytes without a newline. */
static bool has_long_line(const uint8_t *d, size_t n)
{
	size_t i, run = 0;

	for (i = 0; i < n; i++) {
		run = d[i] == '\n' ? 0 : run + 1;
		if (run > PROTO_LINE_MAX)
			return true;
	}
	return false;
}

static bool same_sigs(const struct fuzz_pass *a, const struct fuzz_pass *b)
{
	size_t i;

	if (a->nsig != b->nsig)
		return false;
	for (i = 0; i < a->nsig; i++) {
		const struct fuzz_sig *x = &a->sig[i], *y = &b->sig[i];

		if (x->cmd != y->cmd || x->noreply != y->noreply ||
		    x->close != y->close || x->len != y->len ||
		    x->key_off != y->key_off || x->klen != y->klen ||
		    x->data_off != y->data_off || x->data_len != y->data_len ||
		    x->num != y->num || x->exptime != y->exptime ||
		    x->hv != y->hv || x->err != y->err)
			return false;
	}
	return true;
}

static struct fuzz_pass whole, split;
static struct proto_node *node_whole, *node_split;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	node_whole = node_new();
	node_split = node_new();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t h;
	size_t cut;
	int mode = size && data[0] == PROTO_BIN_REQ ? MODE_BINARY
		   : size && data[0] == 0x01	    ? MODE_MIXED
						    : MODE_TEXT;

	if (mode == MODE_MIXED) {
		data++;
		size--;
	}
	h = fnv(data, size);
	cut = size ? (size_t)(h % (size + 1)) : 0;
	pass_start(&whole, node_whole);
	whole.mode = mode;
	feed(&whole, data, size);

	pass_start(&split, node_split);
	split.mode = mode;
	feed(&split, data, cut);
	feed(&split, data + cut, size - cut);

	if (mode != MODE_BINARY && has_long_line(data, size)) {
		/* Not compared: the two nodes may differ from here on. */
		proto_node_free(node_whole);
		proto_node_free(node_split);
		node_whole = node_new();
		node_split = node_new();
		goto out;
	}
	if (whole.consumed != split.consumed || whole.closed != split.closed)
		fuzz_die("whole and split consumed differently", whole.consumed,
			 split.consumed);
	if (!same_sigs(&whole, &split))
		fuzz_die("whole and split parsed differently", whole.nsig,
			 split.nsig);
	if (!has_volatile_reply(data, size) &&
	    (whole.out.len != split.out.len ||
	     (whole.out.len &&
	      memcmp(whole.out.buf, split.out.buf, whole.out.len))))
		fuzz_die("whole and split answered differently", whole.out.len,
			 split.out.len);
out:
	pass_end(&whole);
	pass_end(&split);
	return 0;
}

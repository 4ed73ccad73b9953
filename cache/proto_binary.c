/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memcached's binary protocol: frames parsed into the same requests the
 * text protocol makes (a key, its hash, a data block), so that routing,
 * the hand-off between cores and forwarding carry them unchanged, and run
 * against the same shard with the text commands' own store, flush and
 * stats: a value set over binary is read over text and meta, and the
 * other way round.
 *
 * A frame, every integer big-endian:
 *
 *   off  size  request                  response
 *   0    1     magic 0x80               magic 0x81
 *   1    1     opcode                   opcode
 *   2    2     key length               key length
 *   4    1     extras length            extras length
 *   5    1     data type (0)            data type (0)
 *   6    2     vbucket (ignored)        status
 *   8    4     body length: extras + key + value
 *   12   4     opaque, echoed
 *   16   8     CAS                      CAS
 *   24   ...   extras, key, value
 *
 * What is refused, and how, is what memcached 1.6 does, as its own
 * answers recorded in tests/golden show: a bad magic closes the
 * connection without a word; extras or a key where the opcode takes none,
 * or a key over 250 bytes, is "Invalid arguments" and a close; a key and
 * extras longer than the body is "Unknown command" and a close; an
 * unknown opcode is "Unknown command" and the connection goes on; a value
 * too large for an item is "Too large." with its body read and dropped.
 * Quiet opcodes answer only errors (and a quiet get only hits).
 */
#include <errno.h>
#include <string.h>

#include "proto_internal.h"

#define HDR 24

enum bin_op {
	OP_GET = 0x00,
	OP_SET = 0x01,
	OP_ADD = 0x02,
	OP_REPLACE = 0x03,
	OP_DELETE = 0x04,
	OP_INCR = 0x05,
	OP_DECR = 0x06,
	OP_QUIT = 0x07,
	OP_FLUSH = 0x08,
	OP_GETQ = 0x09,
	OP_NOOP = 0x0a,
	OP_VERSION = 0x0b,
	OP_GETK = 0x0c,
	OP_GETKQ = 0x0d,
	OP_APPEND = 0x0e,
	OP_PREPEND = 0x0f,
	OP_STAT = 0x10,
	OP_SETQ = 0x11,
	OP_ADDQ = 0x12,
	OP_REPLACEQ = 0x13,
	OP_DELETEQ = 0x14,
	OP_INCRQ = 0x15,
	OP_DECRQ = 0x16,
	OP_QUITQ = 0x17,
	OP_FLUSHQ = 0x18,
	OP_APPENDQ = 0x19,
	OP_PREPENDQ = 0x1a,
	OP_VERBOSITY = 0x1b,
	OP_TOUCH = 0x1c,
	OP_GAT = 0x1d,
	OP_GATQ = 0x1e,
	OP_GATK = 0x23,
	OP_GATKQ = 0x24,
};

enum bin_status {
	ST_OK = 0x00,
	ST_NOT_FOUND = 0x01,
	ST_EXISTS = 0x02,
	ST_TOO_LARGE = 0x03,
	ST_EINVAL = 0x04,
	ST_NOT_STORED = 0x05,
	ST_NON_NUMERIC = 0x06,
	ST_UNKNOWN = 0x81,
	ST_ENOMEM = 0x82,
	ST_TMPFAIL = 0x86,
	ST_SILENT = 0xff, /* ours: close without a word */
};

static const char *status_text(unsigned st)
{
	switch (st) {
	case ST_NOT_FOUND:
		return "Not found";
	case ST_EXISTS:
		return "Data exists for key.";
	case ST_TOO_LARGE:
		return "Too large.";
	case ST_EINVAL:
		return "Invalid arguments";
	case ST_NOT_STORED:
		return "Not stored.";
	case ST_NON_NUMERIC:
		return "Non-numeric server-side value for incr or decr";
	case ST_ENOMEM:
		return "Out of memory";
	default:
		return "Unknown command";
	}
}

static uint64_t be(const char *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | (uint8_t)p[i];
	return v;
}

static char *put_be(char *p, uint64_t v, int n)
{
	for (int i = n; i-- > 0;) {
		p[i] = (char)(v & 0xff);
		v >>= 8;
	}
	return p + n;
}

/* ------------------------------------------------------------------------
 * Parsing
 * ---------------------------------------------------------------------- */

/* What an opcode takes: extras (-1: 0 or 4), a key (1 yes, 0 no, -1
 * either), a value. */
struct shape {
	int8_t extras, key;
	bool value;
	bool known;
};

static struct shape shape_of(unsigned op)
{
	switch (op) {
	case OP_GET:
	case OP_GETQ:
	case OP_GETK:
	case OP_GETKQ:
	case OP_DELETE:
	case OP_DELETEQ:
		return (struct shape){0, 1, false, true};
	case OP_SET:
	case OP_SETQ:
	case OP_ADD:
	case OP_ADDQ:
	case OP_REPLACE:
	case OP_REPLACEQ:
		return (struct shape){8, 1, true, true};
	case OP_APPEND:
	case OP_APPENDQ:
	case OP_PREPEND:
	case OP_PREPENDQ:
		return (struct shape){0, 1, true, true};
	case OP_INCR:
	case OP_INCRQ:
	case OP_DECR:
	case OP_DECRQ:
		return (struct shape){20, 1, false, true};
	case OP_QUIT:
	case OP_QUITQ:
	case OP_NOOP:
	case OP_VERSION:
		return (struct shape){0, 0, false, true};
	case OP_FLUSH:
	case OP_FLUSHQ:
		return (struct shape){-1, 0, false, true};
	case OP_STAT:
		return (struct shape){0, -1, false, true};
	case OP_VERBOSITY:
		return (struct shape){4, 0, false, true};
	case OP_TOUCH:
	case OP_GAT:
	case OP_GATQ:
	case OP_GATK:
	case OP_GATKQ:
		return (struct shape){4, 1, false, true};
	default:
		return (struct shape){0, 0, false, false};
	}
}

static bool quiet(unsigned op)
{
	switch (op) {
	case OP_GETQ:
	case OP_GETKQ:
	case OP_SETQ:
	case OP_ADDQ:
	case OP_REPLACEQ:
	case OP_DELETEQ:
	case OP_INCRQ:
	case OP_DECRQ:
	case OP_QUITQ:
	case OP_FLUSHQ:
	case OP_APPENDQ:
	case OP_PREPENDQ:
	case OP_GATQ:
	case OP_GATKQ:
		return true;
	default:
		return false;
	}
}

/* A frame refused: answered (or not) in proto_bin_execute(). */
static size_t refuse(struct proto_req *req, unsigned st, bool close, size_t len)
{
	req->cmd = PROTO_ERR;
	req->klen = 0;
	req->bin.status = (uint8_t)st;
	req->close = close;
	req->len = (uint32_t)len;
	return len;
}

/* The command a frame routes as: by its key, as a store (which a new
 * owner never needs to fetch first), or on the core that took it. */
static uint8_t route_cmd(unsigned op)
{
	switch (op) {
	case OP_SET:
	case OP_SETQ:
		return PROTO_SET;
	case OP_FLUSH:
	case OP_FLUSHQ:
		return PROTO_FLUSH_ALL;
	case OP_STAT:
		return PROTO_STATS;
	default:
		return shape_of(op).key == 1 ? PROTO_MG : PROTO_VERSION;
	}
}

bool proto_ends_stream(const struct proto_req *req)
{
	return req->close || req->cmd == PROTO_QUIT ||
	       (req->binary &&
		(req->bin.op == OP_QUIT || req->bin.op == OP_QUITQ));
}

size_t proto_parse_binary(struct proto_parser *ps, char *buf, size_t len,
			  struct proto_req *req)
{
	size_t max = ps->item_size_max ? ps->item_size_max : 1u << 20;
	unsigned op, klen, elen;
	uint64_t body, vlen;
	struct shape sh;

	memset(req, 0, sizeof(*req));
	if (parse_swallowed(ps, len, req))
		return req->len;
	if (len < HDR)
		return 0;
	req->binary = true;
	if ((uint8_t)buf[0] != PROTO_BIN_REQ)
		return refuse(req, ST_SILENT, true, HDR);
	op = (uint8_t)buf[1];
	klen = (unsigned)be(buf + 2, 2);
	elen = (uint8_t)buf[4];
	body = be(buf + 8, 4);
	req->bin.op = (uint8_t)op;
	memcpy(&req->bin.opaque, buf + 12, 4);
	req->bin.cas = be(buf + 16, 8);
	sh = shape_of(op);
	req->noreply = quiet(op);
	if (klen + elen > body) {
		/* memcached reads the key and extras it was promised first */
		if (len < HDR + (size_t)klen + elen)
			return 0;
		return refuse(req, ST_UNKNOWN, true, HDR + (size_t)klen + elen);
	}
	vlen = body - klen - elen;
	/* a value too large is read and dropped, and the connection goes
	 * on; memcached sizes an item as the text protocol does, with the
	 * flags of a set, add or replace (an append's are 0) */
	if (sh.known && sh.value && sh.extras == (int8_t)elen &&
	    klen <= PROTO_KEY_MAX && klen > 0 &&
	    len >= HDR + (size_t)elen + klen &&
	    proto_item_size(klen, (uint32_t)vlen,
			    elen == 8 ? (uint32_t)be(buf + HDR, 4) : 0) > max) {
		size_t head = HDR + (size_t)elen + klen;

		ps->swallow = vlen;
		refuse(req, ST_TOO_LARGE, false, head);
		/* a set refused so drops the key's old value, as memcached
		 * does: the key goes to its shard */
		if (op == OP_SET || op == OP_SETQ) {
			req->key_off = HDR + elen;
			req->klen = (uint16_t)klen;
			req->hv = ml_hash(buf + req->key_off, klen);
		}
		return head;
	}
	if (sh.known && !sh.value && vlen > 0) {
		/* memcached refuses as soon as it has the header */
		return refuse(req, ST_EINVAL, true, HDR);
	}
	if (len < HDR + body)
		return 0;
	req->len = (uint32_t)(HDR + body);
	if (!sh.known)
		return refuse(req, ST_UNKNOWN, false, req->len);
	if (klen > PROTO_KEY_MAX || (sh.key == 1 && klen == 0) ||
	    (sh.key == 0 && klen != 0) ||
	    (sh.extras >= 0 && elen != (unsigned)sh.extras) ||
	    (sh.extras < 0 && elen != 0 && elen != 4))
		return refuse(req, ST_EINVAL, true, req->len);
	req->cmd = route_cmd(op);
	req->key_off = HDR + elen;
	req->klen = (uint16_t)klen;
	req->keys_end = req->key_off + klen;
	req->data_off = HDR + elen + klen;
	req->data_len = (uint32_t)vlen;
	if (klen)
		req->hv = ml_hash(buf + req->key_off, klen);
	switch (elen) {
	case 4: /* touch, gat, flush, verbosity */
		/* unsigned, as memcached reads it: all ones is far ahead */
		req->exptime = (int64_t)be(buf + HDR, 4);
		req->num = be(buf + HDR, 4);
		req->has_num = true;
		break;
	case 8: /* set, add, replace */
		req->flags = (uint32_t)be(buf + HDR, 4);
		req->exptime = (int64_t)be(buf + HDR + 4, 4);
		break;
	case 20: /* incr, decr */
		req->num = be(buf + HDR, 8);
		req->bin.initial = be(buf + HDR + 8, 8);
		req->bin.expiry = (uint32_t)be(buf + HDR + 16, 4);
		break;
	default:
		break;
	}
	if (op == OP_STAT) {
		req->args_off = req->key_off;
		req->args_len = klen;
	}
	return req->len;
}

/* ------------------------------------------------------------------------
 * Answers
 * ---------------------------------------------------------------------- */

static int respond(struct proto_out *out, const struct proto_req *req,
		   unsigned st, uint64_t cas, const void *ext, size_t elen,
		   const void *key, size_t klen, const void *val, size_t vlen)
{
	size_t n = HDR + elen + klen + vlen;
	char *p;

	if (proto_out_reserve(out, n))
		return -ENOMEM;
	p = out->buf + out->len;
	p[0] = (char)0x81;
	p[1] = (char)req->bin.op;
	put_be(p + 2, klen, 2);
	p[4] = (char)elen;
	p[5] = 0;
	put_be(p + 6, st, 2);
	put_be(p + 8, elen + klen + vlen, 4);
	memcpy(p + 12, &req->bin.opaque, 4);
	put_be(p + 16, cas, 8);
	p += HDR;
	if (elen)
		memcpy(p, ext, elen);
	if (klen)
		memcpy(p + elen, key, klen);
	if (vlen)
		memcpy(p + elen + klen, val, vlen);
	out->len += n;
	return 0;
}

static int fail(struct proto_out *out, const struct proto_req *req, unsigned st)
{
	const char *t = status_text(st);

	return respond(out, req, st, 0, NULL, 0, NULL, 0, t, strlen(t));
}

/* Success: nothing for a quiet opcode. */
static int ok(struct proto_out *out, const struct proto_req *req, uint64_t cas)
{
	if (req->noreply)
		return 0;
	return respond(out, req, ST_OK, cas, NULL, 0, NULL, 0, NULL, 0);
}

int proto_bin_error(struct proto_out *out, const struct proto_req *req,
		    const char *text, size_t len)
{
	return respond(out, req, ST_TMPFAIL, 0, NULL, 0, NULL, 0, text, len);
}

static bool with_key(unsigned op)
{
	return op == OP_GETK || op == OP_GETKQ || op == OP_GATK ||
	       op == OP_GATKQ;
}

static int bin_get(struct proto_node *n, const char *buf,
		   const struct proto_req *req, struct proto_out *out,
		   bool touch)
{
	const char *key = buf + req->key_off;
	struct cache_item it;
	char flags[4];
	int rc;

	if (touch) {
		n->c.cmd_touch++;
		rc = cache_get(shard_of(n, req->hv), req->hv, key, req->klen,
			       CACHE_GET_TOUCH, exptime_abs(n, req->exptime),
			       &it);
		if (rc)
			n->c.touch_misses++;
		else
			n->c.touch_hits++;
	} else {
		n->c.cmd_get++;
		rc = cache_get(shard_of(n, req->hv), req->hv, key, req->klen, 0,
			       0, &it);
		if (rc)
			n->c.get_misses++;
		else
			n->c.get_hits++;
	}
	if (rc) {
		if (req->noreply)
			return 0;
		if (with_key(req->bin.op))
			return respond(out, req, ST_NOT_FOUND, 0, NULL, 0, key,
				       req->klen, NULL, 0);
		return fail(out, req, ST_NOT_FOUND);
	}
	put_be(flags, it.flags, 4);
	if (req->bin.op == OP_TOUCH)
		return respond(out, req, ST_OK, it.cas, flags, 4, NULL, 0, NULL,
			       0);
	return respond(out, req, ST_OK, it.cas, flags, 4, key,
		       with_key(req->bin.op) ? req->klen : 0, it.value,
		       it.vlen);
}

static int bin_store(struct proto_node *n, const char *buf,
		     const struct proto_req *req, struct proto_out *out)
{
	struct store_op op = {0};
	struct cache_item it;
	int rc;

	op.st.hv = req->hv;
	op.st.key = buf + req->key_off;
	op.st.klen = req->klen;
	op.st.value = buf + req->data_off;
	op.st.vlen = req->data_len;
	op.st.flags = req->flags;
	op.st.exptime = exptime_abs(n, req->exptime);
	op.st.cas = req->bin.cas;
	switch (req->bin.op) {
	case OP_SET:
	case OP_SETQ:
		op.st.mode = CACHE_SET;
		op.drop_old = true;
		break;
	case OP_ADD:
	case OP_ADDQ:
		op.st.mode = CACHE_ADD;
		break;
	case OP_REPLACE:
	case OP_REPLACEQ:
		op.st.mode = CACHE_REPLACE;
		break;
	case OP_APPEND:
	case OP_APPENDQ:
		op.st.mode = CACHE_APPEND;
		op.st.flags = 0;
		op.st.exptime = 0;
		break;
	default:
		op.st.mode = CACHE_PREPEND;
		op.st.flags = 0;
		op.st.exptime = 0;
		break;
	}
	/* memcached: a set, add or replace with a CAS is a cas */
	if (req->bin.cas &&
	    (op.st.mode == CACHE_SET || op.st.mode == CACHE_ADD ||
	     op.st.mode == CACHE_REPLACE)) {
		op.st.mode = CACHE_SET;
		op.cas_cmd = true;
	}
	rc = proto_store_run(n, &op, &it);
	switch (rc) {
	case 0:
		return ok(out, req, it.cas);
	case -EEXIST:
		return fail(out, req, ST_EXISTS);
	case -ENOENT:
		return fail(out, req,
			    op.st.mode == CACHE_APPEND ||
					    op.st.mode == CACHE_PREPEND
				    ? ST_NOT_STORED
				    : ST_NOT_FOUND);
	case -E2BIG:
		return fail(out, req, op.joined ? ST_NOT_STORED : ST_TOO_LARGE);
	default:
		return fail(out, req, op.joined ? ST_NOT_STORED : ST_ENOMEM);
	}
}

static int bin_delete(struct proto_node *n, const char *buf,
		      const struct proto_req *req, struct proto_out *out)
{
	int rc = cache_delete(shard_of(n, req->hv), req->hv, buf + req->key_off,
			      req->klen, req->bin.cas);

	if (rc == -ENOENT) {
		n->c.delete_misses++;
		return fail(out, req, ST_NOT_FOUND);
	}
	if (rc)
		return fail(out, req, ST_EXISTS);
	n->c.delete_hits++;
	return ok(out, req, 0);
}

static int bin_arith(struct proto_node *n, const char *buf,
		     const struct proto_req *req, struct proto_out *out)
{
	bool incr = req->bin.op == OP_INCR || req->bin.op == OP_INCRQ;
	struct cache_arith a = {
		.hv = req->hv,
		.key = buf + req->key_off,
		.klen = req->klen,
		.incr = incr,
		.delta = req->num,
		.cas = req->bin.cas,
		.initial = req->bin.initial,
		.vivify_exptime = exptime_abs(n, req->bin.expiry),
	};
	struct cache_shard *s = shard_of(n, req->hv);
	struct cache_item it;
	char v[8];
	uint64_t val;
	int rc = cache_arith(s, &a, &val, &it);

	/* a miss makes the initial value unless the expiry is all ones;
	 * memcached counts that as neither a hit nor a miss */
	if (rc == -ENOENT && req->bin.expiry != 0xffffffffu) {
		a.vivify = true;
		rc = cache_arith(s, &a, &val, &it);
	} else if (rc == 0 || rc == -ENOENT) {
		count_arith(n, incr, rc == 0);
	}
	switch (rc) {
	case 0:
		if (req->noreply)
			return 0;
		put_be(v, val, 8);
		return respond(out, req, ST_OK, it.cas, NULL, 0, NULL, 0, v, 8);
	case -ENOENT:
		return fail(out, req, ST_NOT_FOUND);
	case -EINVAL:
		return fail(out, req, ST_NON_NUMERIC);
	case -EEXIST:
		return fail(out, req, ST_EXISTS);
	default:
		return fail(out, req, ST_ENOMEM);
	}
}

/* stat [group]: one response per STAT line (the name as key, the value
 * as value), then an empty one; a group text stats refuses is Not
 * found, and reset answers the empty one alone. */
static int bin_stat(struct proto_node *n, const char *buf,
		    const struct proto_req *req, struct proto_out *out)
{
	struct proto_out text = {0};
	size_t start = out->len;
	int rc = proto_do_stats(n, buf, req, &text);
	const char *p = text.buf, *end = text.buf + text.len;

	if (rc) {
		proto_out_free(&text);
		return rc;
	}
	if (text.len >= 5 && (memcmp(text.buf, "ERROR", 5) == 0 ||
			      memcmp(text.buf, "CLIENT_ERROR", 12) == 0)) {
		proto_out_free(&text);
		return fail(out, req, ST_NOT_FOUND);
	}
	while (p < end && !rc) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl && nl > p && nl[-1] == '\r' ? nl - 1 : nl;
		const char *name, *sp;

		if (!nl)
			break;
		if (le - p > 5 && memcmp(p, "STAT ", 5) == 0) {
			name = p + 5;
			sp = memchr(name, ' ', (size_t)(le - name));
			if (!sp)
				sp = le;
			rc = respond(out, req, ST_OK, 0, NULL, 0, name,
				     (size_t)(sp - name), sp < le ? sp + 1 : sp,
				     sp < le ? (size_t)(le - sp - 1) : 0);
		}
		p = nl + 1;
	}
	proto_out_free(&text);
	if (!rc)
		rc = respond(out, req, ST_OK, 0, NULL, 0, NULL, 0, NULL, 0);
	if (rc)
		out->len = start;
	return rc;
}

int proto_bin_execute(struct proto_node *n, const char *buf,
		      const struct proto_req *req, struct proto_out *out)
{
	size_t start = out->len;
	int rc = 0;

	if (req->cmd == PROTO_NONE)
		return 0;
	if (req->cmd == PROTO_ERR) {
		/* memcached counts store_too_large for text storage alone */
		if (req->klen)
			cache_delete(shard_of(n, req->hv), req->hv,
				     buf + req->key_off, req->klen, 0);
		if (req->bin.status != ST_SILENT)
			rc = fail(out, req, req->bin.status);
		return rc ? rc : req->close ? -EPIPE : 0;
	}
	switch (req->bin.op) {
	case OP_GET:
	case OP_GETQ:
	case OP_GETK:
	case OP_GETKQ:
		rc = bin_get(n, buf, req, out, false);
		break;
	case OP_GAT:
	case OP_GATQ:
	case OP_GATK:
	case OP_GATKQ:
	case OP_TOUCH:
		rc = bin_get(n, buf, req, out, true);
		break;
	case OP_SET:
	case OP_SETQ:
	case OP_ADD:
	case OP_ADDQ:
	case OP_REPLACE:
	case OP_REPLACEQ:
	case OP_APPEND:
	case OP_APPENDQ:
	case OP_PREPEND:
	case OP_PREPENDQ:
		rc = bin_store(n, buf, req, out);
		break;
	case OP_DELETE:
	case OP_DELETEQ:
		rc = bin_delete(n, buf, req, out);
		break;
	case OP_INCR:
	case OP_INCRQ:
	case OP_DECR:
	case OP_DECRQ:
		rc = bin_arith(n, buf, req, out);
		break;
	case OP_FLUSH:
	case OP_FLUSHQ: {
		/* counted once, however many cores it runs on */
		struct proto_req f = {.has_num = req->num != 0,
				      .num = req->num,
				      .noreply = true,
				      .copy = req->copy};

		proto_do_flush_all(n, &f, out);
		rc = ok(out, req, 0);
		break;
	}
	case OP_NOOP:
		rc = respond(out, req, ST_OK, 0, NULL, 0, NULL, 0, NULL, 0);
		break;
	case OP_VERSION:
		rc = respond(out, req, ST_OK, 0, NULL, 0, NULL, 0, PROC_VERSION,
			     sizeof(PROC_VERSION) - 1);
		break;
	case OP_VERBOSITY:
		/* memcached 1.6 answers Unknown command, once the next frame
		 * has come, and takes that frame as part of this one: the
		 * answer is the same here, and the next frame is its own */
		rc = fail(out, req, ST_UNKNOWN);
		break;
	case OP_STAT:
		rc = bin_stat(n, buf, req, out);
		break;
	case OP_QUIT:
		rc = respond(out, req, ST_OK, 0, NULL, 0, NULL, 0, NULL, 0);
		return rc ? rc : -EPIPE;
	case OP_QUITQ:
		return -EPIPE;
	default:
		rc = fail(out, req, ST_UNKNOWN);
		break;
	}
	/* in the second a delayed flush_all came due, nothing stays */
	if (unlikely(n->flush_hold) && req->klen)
		cache_delete(shard_of(n, req->hv), req->hv, buf + req->key_off,
			     req->klen, 0);
	if (unlikely(rc)) {
		out->len = start;
		return rc;
	}
	return 0;
}

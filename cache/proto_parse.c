/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The memcached text and meta protocol parser: bytes in, one struct
 * proto_req out, nothing executed.
 *
 * The parser answers every malformed request the way memcached 1.6 does,
 * down to the error line, whether "noreply" hides it, how many bytes of a
 * data block it eats and when the connection is closed. A stream parses
 * the same however it is split, with the one exception memcached itself
 * makes: whether a command line longer than PROTO_LINE_MAX closes the
 * connection depends on whether its newline is already buffered (see
 * proto_parse()).
 *
 * No allocation and no system call: a request is offsets into the
 * caller's buffer, plus the few numbers the line carries.
 */
#include <limits.h>
#include <string.h>

#include "cache.h"
#include "common.h"
#include "proto_internal.h"

/* The error lines, as memcached words them. */
static const char err_unknown[] = "ERROR\r\n";
static const char err_format[] = "CLIENT_ERROR bad command line format\r\n";
static const char err_chunk[] = "CLIENT_ERROR bad data chunk\r\n";
static const char err_large[] = "SERVER_ERROR object too large for cache\r\n";
static const char err_exptime[] = "CLIENT_ERROR invalid exptime argument\r\n";
static const char err_delta[] =
	"CLIENT_ERROR invalid numeric delta argument\r\n";
static const char err_delete[] = "CLIENT_ERROR bad command line format.  "
				 "Usage: delete <key> [noreply]\r\n";
static const char err_mflag_invalid[] = "CLIENT_ERROR invalid flag\r\n";
static const char err_mflag_dup[] = "CLIENT_ERROR duplicate flag\r\n";
static const char err_mflag_token[] =
	"CLIENT_ERROR bad token in command line format\r\n";
static const char err_mflag_mlen[] =
	"CLIENT_ERROR incorrect length for M token\r\n";
static const char err_mflag_initial[] =
	"CLIENT_ERROR invalid numeric initial value\r\n";
static const char err_mflag_delta[] =
	"CLIENT_ERROR invalid numeric delta value\r\n";
static const char err_mflag_b64[] = "CLIENT_ERROR error decoding key\r\n";
static const char err_mflag_either[] =
	"CLIENT_ERROR invalid or duplicate flag\r\n";
static const char err_mg_many[] = "CLIENT_ERROR options flags are too long\r\n";
static const char err_meta_many[] = "CLIENT_ERROR options flags too long\r\n";
static const char err_opaque[] = "CLIENT_ERROR opaque token too long\r\n";
static const char err_ms_mode[] =
	"CLIENT_ERROR invalid mode for ms M token\r\n";
static const char err_ma_mode[] =
	"CLIENT_ERROR invalid mode for ma M token\r\n";

/* The connection is closed without a word. */
static const char err_close[] = "";

/*
 * memcached splits a command line into at most this many tokens; no
 * command but the retrievals looks further, and every decision below is
 * the same for 24 tokens as for more.
 */
#define LINE_TOKENS 24
/* A meta command has at most this many tokens, its name included. */
#define META_TOKENS 19
/* Spaces memcached skips before "get " when it lets a long line grow. */
#define GET_LEAD_MAX 100
/*
 * memcached reads into a 16 KiB buffer: a line other than a long get whose
 * newline lies past it never fits, and the connection is closed.
 */
#define READ_WINDOW 16384

#define ONE_MIB (1024u * 1024u)
/*
 * Bytes memcached adds to key and data when it sizes an item against -I:
 * its item header (48), the key's terminator (1), the data block's \r\n
 * (2) and the CAS value (8); non-zero client flags take 4 more.
 */
#define ITEM_OVERHEAD	59
#define ITEM_FLAGS_SIZE 4

struct tok {
	uint32_t off;
	uint32_t len;
};

/* One command line, split into tokens. */
struct line {
	char *buf;     /* the request's first byte */
	uint32_t end;  /* end of the command text: before \r\n, cut at NUL */
	uint32_t next; /* first byte after the newline */
	unsigned nt;   /* tokens, at most LINE_TOKENS */
	struct tok t[LINE_TOKENS];
};

static inline bool is_space(char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

/*
 * memcached cuts the line at its first NUL byte and splits the rest on
 * single spaces, skipping empty tokens.
 */
static void line_split(struct line *ln)
{
	const char *b = ln->buf;
	uint32_t p = 0, s;

	ln->nt = 0;
	while (ln->nt < LINE_TOKENS) {
		while (p < ln->end && b[p] == ' ')
			p++;
		if (p >= ln->end)
			break;
		s = p;
		while (p < ln->end && b[p] != ' ')
			p++;
		ln->t[ln->nt].off = s;
		ln->t[ln->nt].len = p - s;
		ln->nt++;
	}
}

static inline const char *tok_ptr(const struct line *ln, unsigned i)
{
	return ln->buf + ln->t[i].off;
}

static inline bool tok_is(const struct line *ln, unsigned i, const char *s,
			  size_t n)
{
	return ln->t[i].len == n && memcmp(tok_ptr(ln, i), s, n) == 0;
}

#define TOK_IS(ln, i, lit) tok_is((ln), (i), (lit), sizeof(lit) - 1)

/* memcached takes "noreply" from the last token, whatever the command. */
static inline bool last_is_noreply(const struct line *ln)
{
	return ln->nt > 0 && TOK_IS(ln, ln->nt - 1, "noreply");
}

/*
 * Reads a decimal number from [p, end) as the C library's strto*() family
 * does (white space, a sign, digits), with memcached's rule on top: the
 * digits must end the token or be followed by white space. Fails when
 * there is no digit or the magnitude overflows 64 bits.
 */
static bool num_read(const char *p, const char *end, bool *neg, uint64_t *mag)
{
	const char *digits;
	uint64_t v = 0;

	while (p < end && is_space(*p))
		p++;
	*neg = false;
	if (p < end && (*p == '+' || *p == '-')) {
		*neg = *p == '-';
		p++;
	}
	digits = p;
	while (p < end && *p >= '0' && *p <= '9') {
		unsigned d = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
		p++;
	}
	if (p == digits || (p < end && !is_space(*p)))
		return false;
	*mag = v;
	return true;
}

/*
 * A signed number: read as a 64-bit long, then kept in 32 bits the way
 * memcached stores it (so 4294967297 reads as 1).
 */
static bool num_i32(const char *p, const char *end, int32_t *out)
{
	uint64_t m;
	bool neg;

	if (!num_read(p, end, &neg, &m))
		return false;
	if (m > (uint64_t)INT64_MAX + neg)
		return false;
	*out = (int32_t)(uint32_t)(neg ? -m : m);
	return true;
}

/*
 * An unsigned 64-bit number. A minus sign is accepted only when the
 * negated value still looks positive as a signed number, as memcached
 * does.
 */
static bool num_u64(const char *p, const char *end, uint64_t *out)
{
	uint64_t m, v;
	bool neg;

	if (!num_read(p, end, &neg, &m))
		return false;
	v = neg ? -m : m;
	if (neg && (int64_t)v < 0)
		return false;
	*out = v;
	return true;
}

/* An unsigned number kept in 32 bits (client flags, verbosity). */
static bool num_u32(const char *p, const char *end, uint32_t *out)
{
	uint64_t v;

	if (!num_u64(p, end, &v))
		return false;
	*out = (uint32_t)v;
	return true;
}

static inline bool tok_i32(const struct line *ln, unsigned i, int32_t *out)
{
	return num_i32(tok_ptr(ln, i), tok_ptr(ln, i) + ln->t[i].len, out);
}

static inline bool tok_u32(const struct line *ln, unsigned i, uint32_t *out)
{
	return num_u32(tok_ptr(ln, i), tok_ptr(ln, i) + ln->t[i].len, out);
}

static inline bool tok_u64(const struct line *ln, unsigned i, uint64_t *out)
{
	return num_u64(tok_ptr(ln, i), tok_ptr(ln, i) + ln->t[i].len, out);
}

/*
 * One more than each base64 digit's value ('=' counts as the digit 0); 0
 * for every byte outside the alphabet.
 */
static const uint8_t b64_code[256] = {
	['A'] = 1,  ['B'] = 2,	['C'] = 3,  ['D'] = 4,	['E'] = 5,  ['F'] = 6,
	['G'] = 7,  ['H'] = 8,	['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12,
	['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16, ['Q'] = 17, ['R'] = 18,
	['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
	['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30,
	['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36,
	['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42,
	['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
	['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54,
	['2'] = 55, ['3'] = 56, ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60,
	['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64, ['='] = 1,
};

/*
 * Decodes a base64 key the lenient way memcached does: bytes outside the
 * alphabet are skipped, the alphabet characters (with '=') must come in
 * groups of four, and decoding stops after the first group that holds
 * padding (one '=' drops one byte, two drop two, more is an error).
 * Returns the decoded length, or 0 when the key does not decode. out
 * needs 3/4 of len bytes.
 */
static size_t b64_decode(const char *in, size_t len, uint8_t *out)
{
	size_t i, valid = 0, o = 0;
	unsigned n = 0, pad = 0;
	uint8_t q[4];

	for (i = 0; i < len; i++)
		valid += b64_code[(uint8_t)in[i]] != 0;
	if (valid == 0 || valid % 4 != 0)
		return 0;

	for (i = 0; i < len; i++) {
		uint8_t v = b64_code[(uint8_t)in[i]];

		if (v == 0)
			continue;
		pad += in[i] == '=';
		q[n++] = v - 1;
		if (n < 4)
			continue;
		out[o++] = (uint8_t)(q[0] << 2 | q[1] >> 4);
		out[o++] = (uint8_t)(q[1] << 4 | q[2] >> 2);
		out[o++] = (uint8_t)(q[2] << 6 | q[3]);
		n = 0;
		if (pad == 0)
			continue;
		if (pad > 2)
			return 0;
		o -= pad;
		break;
	}
	return o;
}

/* What a meta command's key becomes once its flags are read. */
struct meta_key {
	bool decoded; /* b: bin[] replaces the token */
	uint16_t len;
	uint8_t bin[PROTO_KEY_MAX];
};

/* The flag letters memcached 1.6 knows; any command accepts any of them. */
#define META_KNOWN                                                             \
	(PROTO_MF('b') | PROTO_MF('c') | PROTO_MF('f') | PROTO_MF('h') |       \
	 PROTO_MF('k') | PROTO_MF('l') | PROTO_MF('q') | PROTO_MF('s') |       \
	 PROTO_MF('t') | PROTO_MF('u') | PROTO_MF('v') | PROTO_MF('C') |       \
	 PROTO_MF('D') | PROTO_MF('F') | PROTO_MF('I') | PROTO_MF('J') |       \
	 PROTO_MF('L') | PROTO_MF('M') | PROTO_MF('N') | PROTO_MF('O') |       \
	 PROTO_MF('P') | PROTO_MF('R') | PROTO_MF('T'))

static inline bool is_letter(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/*
 * Reads the flag tokens t[first..nt) of a meta command into m, and
 * decodes the key into k when b is given. Returns NULL, or the reply
 * memcached's mg and ms give: an unknown or repeated flag stops at once;
 * any other bad token is remembered and the scan goes on, so the last
 * such complaint is the one answered (a bad F keeps the one before it).
 * O's length is checked later, as memcached does.
 */
static const char *meta_flags(const struct line *ln, unsigned first,
			      struct proto_meta *m, struct meta_key *k)
{
	const char *err = NULL;
	bool failed = false;
	unsigned i;

	for (i = first; i < ln->nt; i++) {
		const char *p = tok_ptr(ln, i);
		const char *end = p + ln->t[i].len;
		uint8_t c = (uint8_t)p[0];
		int32_t v32;

		if (c >= 127 || (is_letter(c) && (m->flags & PROTO_MF(c))))
			return err_mflag_dup;
		if (!is_letter(c) || !(META_KNOWN & PROTO_MF(c)))
			return err_mflag_invalid;
		m->flags |= PROTO_MF(c);
		m->order[m->norder++] = (char)c;

		switch (c) {
		case 'b':
			k->len = (uint16_t)b64_decode(tok_ptr(ln, 1),
						      ln->t[1].len, k->bin);
			k->decoded = true;
			if (k->len == 0) {
				err = err_mflag_b64;
				failed = true;
			}
			break;
		case 'N':
		case 'T':
		case 'R':
			if (!num_i32(p + 1, end, &v32)) {
				err = err_mflag_token;
				failed = true;
			} else if (c == 'N') {
				m->vivify_ttl = v32;
			} else if (c == 'T') {
				m->ttl = v32;
			} else {
				m->recache = v32;
			}
			break;
		case 'F':
			if (!num_u32(p + 1, end, &m->client_flags))
				failed = true;
			break;
		case 'C':
			if (!num_u64(p + 1, end, &m->cas)) {
				err = err_mflag_token;
				failed = true;
			}
			break;
		case 'M':
			if (ln->t[i].len != 2) {
				err = err_mflag_mlen;
				failed = true;
			} else {
				m->mode = p[1];
			}
			break;
		case 'J':
			if (!num_u64(p + 1, end, &m->initial)) {
				err = err_mflag_initial;
				failed = true;
			}
			break;
		case 'D':
			if (!num_u64(p + 1, end, &m->delta)) {
				err = err_mflag_delta;
				failed = true;
			}
			break;
		case 'O':
			/* Checked against PROTO_OPAQUE_MAX by the caller. */
			m->opaque_off = ln->t[i].off + 1;
			break;
		default:
			break;
		}
	}
	if (failed)
		return err ? err : err_format;
	return NULL;
}

/* The O token, flag letter included, is at most PROTO_OPAQUE_MAX bytes. */
static bool meta_opaque_ok(const struct line *ln, unsigned first,
			   struct proto_meta *m)
{
	unsigned i;

	if (!(m->flags & PROTO_MF('O')))
		return true;
	for (i = first; i < ln->nt; i++) {
		if (ln->buf[ln->t[i].off] != 'O')
			continue;
		if (ln->t[i].len > PROTO_OPAQUE_MAX)
			return false;
		m->opaque_len = (uint8_t)(ln->t[i].len - 1);
		break;
	}
	return true;
}

/* The request being built, and where its line lies. */
struct parse {
	struct proto_parser *ps;
	struct line ln;
	size_t avail; /* bytes in the caller's buffer */
	struct proto_req *req;
	struct meta_key key;
};

static inline void req_key(struct parse *pp, unsigned i)
{
	pp->req->key_off = pp->ln.t[i].off;
	pp->req->klen = (uint16_t)pp->ln.t[i].len;
}

/* Finishes a request that consumed the line alone. */
static size_t done_line(struct parse *pp, uint8_t cmd)
{
	pp->req->cmd = cmd;
	pp->req->len = pp->ln.next;
	return pp->ln.next;
}

/*
 * Answers the line with err and nothing else; noreply, when the line set
 * it before the error was found, still hides the answer.
 */
static size_t fail_line(struct parse *pp, const char *err)
{
	bool noreply = pp->req->noreply;

	memset(pp->req, 0, sizeof(*pp->req));
	pp->req->noreply = noreply;
	pp->req->err = err;
	return done_line(pp, PROTO_ERR);
}

/* Answers with err and discards the n bytes of data block that follow. */
static size_t fail_swallow(struct parse *pp, const char *err, uint64_t n)
{
	pp->ps->swallow = n;
	return fail_line(pp, err);
}

/*
 * Whether memcached would create an item this large: the -I ceiling holds
 * the key, the data block and memcached's per-item overhead.
 */
static bool too_large(const struct proto_parser *ps, size_t klen,
		      uint32_t flags, uint32_t vlen)
{
	uint64_t max = ps->item_size_max ? ps->item_size_max : ONE_MIB;
	uint64_t need = (uint64_t)klen + vlen + ITEM_OVERHEAD;

	if (flags != 0)
		need += ITEM_FLAGS_SIZE;
	return need > max;
}

/*
 * The data block of a storage command, once it is all buffered: memcached
 * reads exactly vlen + 2 bytes and refuses them unless they end in \r\n.
 * Returns 0 while bytes are missing.
 */
static size_t take_data(struct parse *pp, uint8_t cmd, uint32_t vlen)
{
	struct proto_req *req = pp->req;
	uint64_t total = (uint64_t)pp->ln.next + vlen + 2;
	const char *d;

	if (pp->avail < total)
		return 0;
	d = pp->ln.buf + pp->ln.next + vlen;
	if (d[0] != '\r' || d[1] != '\n') {
		fail_line(pp, err_chunk);
	} else {
		req->cmd = cmd;
		req->data_off = pp->ln.next;
		req->data_len = vlen;
	}
	req->len = (uint32_t)total;
	return req->len;
}

/* set, add, replace, append, prepend, cas */
static size_t parse_store(struct parse *pp, uint8_t cmd)
{
	const struct line *ln = &pp->ln;
	struct proto_req *req = pp->req;
	unsigned want = cmd == PROTO_CAS ? 6 : 5;
	int32_t exptime, vlen;

	if (ln->nt != want && ln->nt != want + 1)
		return fail_line(pp, err_unknown);
	req->noreply = last_is_noreply(ln);
	if (ln->t[1].len > PROTO_KEY_MAX)
		return fail_line(pp, err_format);
	if (!tok_u32(ln, 2, &req->flags) || !tok_i32(ln, 3, &exptime) ||
	    !tok_i32(ln, 4, &vlen))
		return fail_line(pp, err_format);
	if (cmd == PROTO_CAS && !tok_u64(ln, 5, &req->num))
		return fail_line(pp, err_format);
	if (vlen < 0 || vlen > INT_MAX - 2)
		return fail_line(pp, err_format);
	req->exptime = exptime;

	if (too_large(pp->ps, ln->t[1].len, req->flags, (uint32_t)vlen)) {
		fail_swallow(pp, err_large, (uint64_t)vlen + 2);
		/* memcached drops the key's old value when a set fails so. */
		if (cmd == PROTO_SET)
			req_key(pp, 1);
		return req->len;
	}
	req_key(pp, 1);
	return take_data(pp, cmd, (uint32_t)vlen);
}

/* get, gets, gat, gats */
static size_t parse_get(struct parse *pp, uint8_t cmd)
{
	const struct line *ln = &pp->ln;
	struct proto_req *req = pp->req;
	unsigned first = 1;
	uint32_t pos, off, klen;
	int32_t exptime;

	if (ln->nt < 2)
		return fail_line(pp, err_unknown);
	if (cmd == PROTO_GAT || cmd == PROTO_GATS) {
		if (!tok_i32(ln, 1, &exptime))
			return fail_line(pp, err_exptime);
		req->exptime = exptime;
		first = 2;
	}
	req->keys_end = ln->end;
	/* gat with no key at all is answered END. */
	req->key_off = first < ln->nt ? ln->t[first].off : ln->end;

	pos = req->key_off;
	while (proto_next_key(ln->buf, req, &pos, &off, &klen)) {
		if (klen <= PROTO_KEY_MAX)
			continue;
		if (off == req->key_off)
			return fail_line(pp, err_format);
		/* memcached looks up (and touches) the keys before a key
		 * too long, then answers only the error */
		req->keys_end = off;
		req->err = err_format;
		break;
	}
	if (first < ln->nt)
		req_key(pp, first);
	return done_line(pp, cmd);
}

static size_t parse_delete(struct parse *pp)
{
	const struct line *ln = &pp->ln;
	struct proto_req *req = pp->req;

	if (ln->nt < 2 || ln->nt > 4)
		return fail_line(pp, err_unknown);
	if (ln->nt > 2) {
		/* 1.6 still takes the old "delete <key> 0" form. */
		bool zero = TOK_IS(ln, 2, "0");
		bool ok;

		req->noreply = last_is_noreply(ln);
		ok = ln->nt == 3 ? zero || req->noreply : zero && req->noreply;
		if (!ok)
			return fail_line(pp, err_delete);
	}
	if (ln->t[1].len > PROTO_KEY_MAX)
		return fail_line(pp, err_format);
	req_key(pp, 1);
	return done_line(pp, PROTO_DELETE);
}

/* incr, decr */
static size_t parse_arith(struct parse *pp, uint8_t cmd)
{
	const struct line *ln = &pp->ln;
	struct proto_req *req = pp->req;

	if (ln->nt != 3 && ln->nt != 4)
		return fail_line(pp, err_unknown);
	req->noreply = last_is_noreply(ln);
	if (ln->t[1].len > PROTO_KEY_MAX)
		return fail_line(pp, err_format);
	if (!tok_u64(ln, 2, &req->num))
		return fail_line(pp, err_delta);
	req_key(pp, 1);
	return done_line(pp, cmd);
}

static size_t parse_touch(struct parse *pp)
{
	const struct line *ln = &pp->ln;
	struct proto_req *req = pp->req;
	int32_t exptime;

	if (ln->nt != 3 && ln->nt != 4)
		return fail_line(pp, err_unknown);
	req->noreply = last_is_noreply(ln);
	if (ln->t[1].len > PROTO_KEY_MAX)
		return fail_line(pp, err_format);
	if (!tok_i32(ln, 2, &exptime))
		return fail_line(pp, err_exptime);
	req->exptime = exptime;
	req_key(pp, 1);
	return done_line(pp, PROTO_TOUCH);
}

/*
 * flush_all [delay] [noreply]: the delay lands in exptime as sent and in
 * num as memcached uses it (zero or negative means now).
 */
static size_t parse_flush(struct parse *pp)
{
	const struct line *ln = &pp->ln;
	struct proto_req *req = pp->req;
	int32_t delay;

	if (ln->nt > 3)
		return fail_line(pp, err_unknown);
	req->noreply = last_is_noreply(ln);
	if (ln->nt != (req->noreply ? 2u : 1u)) {
		if (!tok_i32(ln, 1, &delay))
			return fail_line(pp, err_exptime);
		req->has_num = true;
		req->exptime = delay;
		req->num = delay > 0 ? (uint64_t)delay : 0;
	}
	return done_line(pp, PROTO_FLUSH_ALL);
}

static size_t parse_verbosity(struct parse *pp)
{
	const struct line *ln = &pp->ln;
	struct proto_req *req = pp->req;
	uint32_t level;

	if (ln->nt != 2 && ln->nt != 3)
		return fail_line(pp, err_unknown);
	req->noreply = last_is_noreply(ln);
	if (!tok_u32(ln, 1, &level))
		return fail_line(pp, err_format);
	req->has_num = true;
	req->num = level;
	return done_line(pp, PROTO_VERBOSITY);
}

/*
 * stats [args]: args_off/args_len span the arguments as sent, and
 * [key_off, keys_end) holds the same words for proto_next_key(); klen
 * stays 0, there is no key.
 */
/* An administrative command: its words are read where it runs
 * (proto_admin.c); memcached answers these whatever a noreply says,
 * except where the command takes one itself. */
static size_t parse_admin(struct parse *pp, enum proto_admin which)
{
	const struct line *ln = &pp->ln;
	struct proto_req *req = pp->req;
	uint32_t end = ln->end;

	req->num = which;
	req->noreply = false;
	if (ln->nt > 1) {
		while (end > ln->t[1].off && ln->buf[end - 1] == ' ')
			end--;
		req->args_off = ln->t[1].off;
		req->args_len = end - ln->t[1].off;
	}
	return done_line(pp, PROTO_ADMIN);
}

static size_t parse_stats(struct parse *pp)
{
	const struct line *ln = &pp->ln;
	struct proto_req *req = pp->req;
	uint32_t end = ln->end;

	if (ln->nt > 1) {
		while (end > ln->t[1].off && ln->buf[end - 1] == ' ')
			end--;
		req->args_off = ln->t[1].off;
		req->args_len = end - ln->t[1].off;
		req->key_off = req->args_off;
		req->keys_end = end;
	}
	return done_line(pp, PROTO_STATS);
}

/* Puts a decoded base64 key where its text was, now that it is final. */
static void meta_key_commit(struct parse *pp)
{
	struct proto_req *req = pp->req;

	if (!pp->key.decoded)
		return;
	memcpy(pp->ln.buf + req->key_off, pp->key.bin, pp->key.len);
	req->klen = pp->key.len;
}

static void meta_start(struct parse *pp)
{
	pp->req->meta.delta = 1;
	req_key(pp, 1);
}

/* mg, md, ma */
static size_t parse_meta(struct parse *pp, uint8_t cmd)
{
	const struct line *ln = &pp->ln;
	struct proto_req *req = pp->req;
	struct proto_meta *m = &req->meta;
	const char *err;

	if (ln->nt < 2)
		return fail_line(pp, err_unknown);
	if (ln->t[1].len > PROTO_KEY_MAX)
		return fail_line(pp, err_format);
	if (ln->nt > META_TOKENS)
		return fail_line(pp,
				 cmd == PROTO_MG ? err_mg_many : err_meta_many);
	meta_start(pp);
	err = meta_flags(ln, 2, m, &pp->key);
	if (err)
		return fail_line(pp, cmd == PROTO_MG ? err : err_mflag_either);
	if (cmd == PROTO_MA && m->mode != 0 && m->mode != 'I' &&
	    m->mode != '+' && m->mode != 'D' && m->mode != '-')
		return fail_line(pp, err_ma_mode);
	if (!meta_opaque_ok(ln, 2, m))
		return fail_line(pp, err_opaque);
	req->noreply = m->flags & PROTO_MF('q');
	meta_key_commit(pp);
	return done_line(pp, cmd);
}

static size_t parse_ms(struct parse *pp)
{
	const struct line *ln = &pp->ln;
	struct proto_req *req = pp->req;
	struct proto_meta *m = &req->meta;
	const char *err;
	int32_t vlen;
	uint64_t eat;
	size_t klen;

	if (ln->nt < 2)
		return fail_line(pp, err_unknown);
	if (ln->t[1].len > PROTO_KEY_MAX || ln->nt == 2)
		return fail_line(pp, err_format);
	if (ln->nt > META_TOKENS)
		return fail_line(pp, err_meta_many);
	if (!tok_i32(ln, 2, &vlen) || vlen < 0 || vlen > INT_MAX - 2)
		return fail_line(pp, err_format);

	/* From here on memcached discards the data block with any error. */
	eat = (uint64_t)vlen + 2;
	meta_start(pp);
	err = meta_flags(ln, 3, m, &pp->key);
	if (err)
		return fail_swallow(pp, err, eat);
	switch (m->mode) {
	case 0:
	case 'E':
	case 'A':
	case 'P':
	case 'R':
	case 'S':
		break;
	default:
		return fail_swallow(pp, err_ms_mode, eat);
	}
	if (!meta_opaque_ok(ln, 3, m))
		return fail_swallow(pp, err_opaque, eat);

	klen = pp->key.decoded ? pp->key.len : ln->t[1].len;
	if (too_large(pp->ps, klen, m->client_flags, (uint32_t)vlen)) {
		/* Whatever the mode, memcached drops the key's old value. */
		fail_swallow(pp, err_large, eat);
		req_key(pp, 1);
		meta_key_commit(pp);
		return req->len;
	}
	if (!take_data(pp, PROTO_MS, (uint32_t)vlen))
		return 0;
	if (req->cmd == PROTO_MS) {
		req->noreply = m->flags & PROTO_MF('q');
		req->flags = m->client_flags;
		req->exptime = m->ttl;
		req->num = m->cas;
		meta_key_commit(pp);
	}
	/* A bad data chunk is answered even with q. */
	return req->len;
}

/* me <key> [b]: only a b right after the key means anything. */
static size_t parse_me(struct parse *pp)
{
	const struct line *ln = &pp->ln;
	struct proto_req *req = pp->req;

	if (ln->nt < 2 || ln->t[1].len > PROTO_KEY_MAX)
		return fail_line(pp, err_format);
	meta_start(pp);
	if (ln->nt >= 3 && TOK_IS(ln, 2, "b")) {
		pp->key.len = (uint16_t)b64_decode(tok_ptr(ln, 1), ln->t[1].len,
						   pp->key.bin);
		if (pp->key.len == 0)
			return fail_line(pp, err_format);
		pp->key.decoded = true;
		req->meta.flags = PROTO_MF('b');
		req->meta.order[0] = 'b';
		req->meta.norder = 1;
		meta_key_commit(pp);
	}
	return done_line(pp, PROTO_ME);
}

#define CMD_IS(ln, lit) TOK_IS((ln), 0, (lit))

/* Picks the command by its first byte, then its whole name. */
static size_t parse_line(struct parse *pp)
{
	struct line *ln = &pp->ln;
	const char *c;

	if (ln->nt == 0 || ln->t[0].len < 2)
		return fail_line(pp, err_unknown);
	c = tok_ptr(ln, 0);

	if (c[0] == 'm' && ln->t[0].len == 2) {
		switch (c[1]) {
		case 'g':
			return parse_meta(pp, PROTO_MG);
		case 's':
			return parse_ms(pp);
		case 'd':
			return parse_meta(pp, PROTO_MD);
		case 'a':
			return parse_meta(pp, PROTO_MA);
		case 'n':
			return done_line(pp, PROTO_MN);
		case 'e':
			return parse_me(pp);
		default:
			return fail_line(pp, err_unknown);
		}
	}

	switch (c[0]) {
	case 'g':
		if (CMD_IS(ln, "get"))
			return parse_get(pp, PROTO_GET);
		if (CMD_IS(ln, "gets"))
			return parse_get(pp, PROTO_GETS);
		if (CMD_IS(ln, "gat"))
			return parse_get(pp, PROTO_GAT);
		if (CMD_IS(ln, "gats"))
			return parse_get(pp, PROTO_GATS);
		/* memcached wants a key before it looks at the name. */
		break;
	case 's':
		if (CMD_IS(ln, "set"))
			return parse_store(pp, PROTO_SET);
		if (CMD_IS(ln, "stats"))
			return parse_stats(pp);
		if (CMD_IS(ln, "shutdown"))
			return parse_admin(pp, PROTO_ADMIN_SHUTDOWN);
		if (CMD_IS(ln, "slabs") && ln->nt > 1)
			return parse_admin(pp, PROTO_ADMIN_SLABS);
		break;
	case 'a':
		if (CMD_IS(ln, "add"))
			return parse_store(pp, PROTO_ADD);
		if (CMD_IS(ln, "append"))
			return parse_store(pp, PROTO_APPEND);
		break;
	case 'p':
		if (CMD_IS(ln, "prepend"))
			return parse_store(pp, PROTO_PREPEND);
		break;
	case 'r':
		if (CMD_IS(ln, "replace"))
			return parse_store(pp, PROTO_REPLACE);
		break;
	case 'c':
		if (CMD_IS(ln, "cas"))
			return parse_store(pp, PROTO_CAS);
		/* one value and an optional noreply, or it is not the command
		 */
		if (CMD_IS(ln, "cache_memlimit") &&
		    (ln->nt == 2 || ln->nt == 3))
			return parse_admin(pp, PROTO_ADMIN_MEMLIMIT);
		break;
	case 'd':
		if (CMD_IS(ln, "delete"))
			return parse_delete(pp);
		if (CMD_IS(ln, "decr"))
			return parse_arith(pp, PROTO_DECR);
		break;
	case 'i':
		if (CMD_IS(ln, "incr"))
			return parse_arith(pp, PROTO_INCR);
		break;
	case 't':
		if (CMD_IS(ln, "touch"))
			return parse_touch(pp);
		break;
	case 'f':
		if (CMD_IS(ln, "flush_all"))
			return parse_flush(pp);
		break;
	case 'v':
		if (CMD_IS(ln, "version"))
			return done_line(pp, PROTO_VERSION);
		if (CMD_IS(ln, "verbosity"))
			return parse_verbosity(pp);
		break;
	case 'q':
		if (CMD_IS(ln, "quit"))
			return done_line(pp, PROTO_QUIT);
		break;
	case 'l':
		/* lru_crawler metadump all|hash|<classes>: memcached's other
		 * subcommands are not served (ERROR, as an unknown one) */
		if (CMD_IS(ln, "lru_crawler") && ln->nt == 3 &&
		    TOK_IS(ln, 1, "metadump")) {
			pp->req->num = TOK_IS(ln, 2, "all") ||
				       TOK_IS(ln, 2, "hash") ||
				       TOK_IS(ln, 2, "1");
			return done_line(pp, PROTO_LRU_CRAWLER);
		}
		if (CMD_IS(ln, "lru_crawler") && ln->nt > 1 &&
		    !TOK_IS(ln, 1, "metadump") && !TOK_IS(ln, 1, "mgdump"))
			return parse_admin(pp, PROTO_ADMIN_CRAWLER);
		if (CMD_IS(ln, "lru") && ln->nt > 2)
			return parse_admin(pp, PROTO_ADMIN_LRU);
		break;
	case 'w':
		if (CMD_IS(ln, "watch"))
			return parse_admin(pp, PROTO_ADMIN_WATCH);
		break;
	default:
		break;
	}
	/* an HTTP request line (any method, its last word HTTP/...): the
	 * connection closes without a word, memcached's defence against
	 * cross-protocol requests; a one-letter command is an ERROR */
	if (ln->nt >= 1 && ln->t[0].len >= 2 && ln->t[ln->nt - 1].len >= 5 &&
	    memcmp(tok_ptr(ln, ln->nt - 1), "HTTP/", 5) == 0) {
		size_t n = fail_line(pp, err_close);

		pp->req->close = true;
		return n;
	}
	return fail_line(pp, err_unknown);
}

/*
 * A line that has grown past PROTO_LINE_MAX may keep growing only when it
 * starts (after at most GET_LEAD_MAX spaces) with "get " or "gets ", the
 * one exception memcached makes. buf holds more than PROTO_LINE_MAX bytes.
 */
static bool line_may_grow(const char *buf)
{
	unsigned lead = 0;

	while (buf[lead] == ' ' && lead <= GET_LEAD_MAX)
		lead++;
	if (lead > GET_LEAD_MAX)
		return false;
	return memcmp(buf + lead, "get ", 4) == 0 ||
	       memcmp(buf + lead, "gets ", 5) == 0;
}

/* memcached closes the connection and says nothing. */
static size_t parse_close(struct proto_req *req, size_t len)
{
	uint32_t n = (uint32_t)ML_MIN(len, (size_t)UINT32_MAX);

	req->cmd = PROTO_ERR;
	req->err = err_close;
	req->close = true;
	req->len = n;
	return n;
}

size_t proto_parse(struct proto_parser *ps, char *buf, size_t len,
		   struct proto_req *req)
{
	struct parse pp;
	const char *nl;
	size_t scan, at;

	memset(req, 0, sizeof(*req));

	if (parse_swallowed(ps, len, req))
		return req->len;
	if (len == 0)
		return 0;

	/*
	 * memcached closes a connection once it holds more than
	 * PROTO_LINE_MAX bytes without a newline, unless the line is a get
	 * that may grow (here to PROTO_GET_LINE_MAX). A longer line whose
	 * newline is already in the buffer is parsed, as memcached does when
	 * it reads the line in one go: so call with all the bytes at hand.
	 */
	scan = ML_MIN(len, (size_t)PROTO_GET_LINE_MAX + 1);
	if (ps->scanned > scan)
		ps->scanned = 0; /* not the input of the last call */
	nl = memchr(buf + ps->scanned, '\n', scan - ps->scanned);
	ps->scanned = nl ? 0 : (uint32_t)scan;
	at = nl ? (size_t)(nl - buf) : len;
	if (unlikely(at > PROTO_LINE_MAX)) {
		bool grow = line_may_grow(buf);

		if (!nl && (!grow || len > PROTO_GET_LINE_MAX)) {
			ps->scanned = 0;
			return parse_close(req, len);
		}
		if (nl && !grow && at >= READ_WINDOW)
			return parse_close(req, len);
	}
	if (!nl)
		return 0;

	pp.ps = ps;
	pp.avail = len;
	pp.req = req;
	pp.key.decoded = false;
	pp.key.len = 0;
	pp.ln.buf = buf;
	pp.ln.next = (uint32_t)at + 1;
	pp.ln.end = (uint32_t)at;
	if (at > 0 && buf[at - 1] == '\r')
		pp.ln.end--;
	nl = memchr(buf, '\0', pp.ln.end);
	if (nl)
		pp.ln.end = (uint32_t)(nl - buf);
	line_split(&pp.ln);

	if (!parse_line(&pp))
		return 0;
	if (req->klen != 0)
		req->hv = ml_hash(buf + req->key_off, req->klen);
	return req->len;
}

bool proto_next_key(const char *buf, const struct proto_req *req, uint32_t *pos,
		    uint32_t *off, uint32_t *klen)
{
	uint32_t p = *pos, end = req->keys_end, s;

	while (p < end && buf[p] == ' ')
		p++;
	if (p >= end) {
		*pos = p;
		return false;
	}
	s = p;
	while (p < end && buf[p] != ' ')
		p++;
	*off = s;
	*klen = p - s;
	*pos = p;
	return true;
}

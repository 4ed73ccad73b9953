/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Golden transcripts: every request a real memcached 1.6.18 answered in
 * tests/golden/transcripts/ is replayed through proto_parse() and
 * proto_execute(), with no network, and memlane's replies must equal
 * memcached's after both are normalised the same way (CAS values, times,
 * stats values; see tests/golden/README.md).
 *
 * Each transcript runs with one shard and with two, then once more with
 * its splittable steps fed as one byte stream cut at random places.
 *
 * On a mismatch the step, its request and both replies are printed,
 * escaped. GOLDEN_ONLY=<session> runs one transcript; GOLDEN_MAX_REPORTS
 * (default 20) bounds the mismatches printed per run.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
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
#define GOLD_DIR SOURCE_ROOT "/tests/golden/transcripts"

/* The replay's clock at the start of every transcript. */
#define GOLD_NOW	   1700000000u
#define GOLD_SPLIT_SEEDS   3
#define GOLD_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------------
 * A growable byte buffer
 * ---------------------------------------------------------------------- */

struct gbuf {
	char *p;
	size_t len;
	size_t cap;
};

static void gbuf_reserve(struct gbuf *b, size_t more)
{
	size_t cap = b->cap ? b->cap : 256;
	char *p;

	if (b->len + more <= b->cap)
		return;
	while (cap < b->len + more)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p) {
		fprintf(stderr, "golden: out of memory\n");
		abort();
	}
	b->p = p;
	b->cap = cap;
}

static void gbuf_add(struct gbuf *b, const void *p, size_t len)
{
	if (!len)
		return;
	gbuf_reserve(b, len);
	memcpy(b->p + b->len, p, len);
	b->len += len;
}

static void gbuf_str(struct gbuf *b, const char *s)
{
	gbuf_add(b, s, strlen(s));
}

static void gbuf_fmt(struct gbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void gbuf_fmt(struct gbuf *b, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		gbuf_add(b, tmp,
			 (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static void gbuf_free(struct gbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static bool gbuf_eq(const struct gbuf *a, const struct gbuf *b)
{
	return a->len == b->len && (!a->len || !memcmp(a->p, b->p, a->len));
}

/* ------------------------------------------------------------------------
 * Transcripts
 * ---------------------------------------------------------------------- */

enum gold_kind { GOLD_STEP, GOLD_SLEEP, GOLD_RECONNECT };

#define GF_NOSENTINEL 0x1
#define GF_NOSPLIT    0x2
#define GF_COLLAPSE   0x4
#define GF_CLOSED     0x8
#define GF_DYNAMIC    0x10

struct gold_rec {
	enum gold_kind kind;
	unsigned step;	  /* step number, from 1 */
	unsigned line;	  /* line in the session script */
	unsigned flags;	  /* GF_* */
	unsigned seconds; /* GOLD_SLEEP */
	struct gbuf tmpl;
	struct gbuf reply;
};

struct gold {
	char name[64];
	size_t mem_limit;
	size_t item_size_max;
	bool no_evict;
	struct gold_rec *recs;
	size_t nrecs;
};

static void gold_free(struct gold *g)
{
	size_t i;

	if (!g)
		return;
	for (i = 0; i < g->nrecs; i++) {
		gbuf_free(&g->recs[i].tmpl);
		gbuf_free(&g->recs[i].reply);
	}
	free(g->recs);
	free(g);
}

/* Reading a transcript: a cursor over the whole file. */
struct gold_cur {
	const char *p;
	size_t len;
	size_t off;
};

/* Returns the next '\n'-terminated header line (without it) in buf. */
static bool cur_line(struct gold_cur *c, char *buf, size_t size)
{
	const char *nl;
	size_t n;

	if (c->off >= c->len)
		return false;
	nl = memchr(c->p + c->off, '\n', c->len - c->off);
	if (!nl)
		return false;
	n = (size_t)(nl - (c->p + c->off));
	if (n >= size)
		return false;
	memcpy(buf, c->p + c->off, n);
	buf[n] = '\0';
	c->off += n + 1;
	return true;
}

/* Reads "<tag> <len>\n<len bytes>\n" into out. */
static bool cur_block(struct gold_cur *c, const char *tag, struct gbuf *out)
{
	char line[128], want[32];
	unsigned long long n;
	int used = 0;

	if (!cur_line(c, line, sizeof(line)))
		return false;
	snprintf(want, sizeof(want), "%s %%llu%%n", tag);
	if (sscanf(line, want, &n, &used) != 1 || line[used] != '\0')
		return false;
	if (n > c->len - c->off || c->len - c->off - n < 1)
		return false;
	gbuf_add(out, c->p + c->off, (size_t)n);
	c->off += (size_t)n;
	if (c->p[c->off] != '\n')
		return false;
	c->off++;
	return true;
}

static unsigned parse_flags(const char *s)
{
	static const struct {
		const char *name;
		unsigned bit;
	} names[] = {
		{"nosentinel", GF_NOSENTINEL}, {"nosplit", GF_NOSPLIT},
		{"collapse", GF_COLLAPSE},     {"closed", GF_CLOSED},
		{"dynamic", GF_DYNAMIC},
	};
	unsigned flags = 0;
	size_t i, n;

	while (*s && strcmp(s, "-")) {
		n = strcspn(s, ",");
		for (i = 0; i < GOLD_ARRAY_SIZE(names); i++)
			if (strlen(names[i].name) == n &&
			    !strncmp(s, names[i].name, n))
				flags |= names[i].bit;
		s += n;
		if (*s == ',')
			s++;
	}
	return flags;
}

/* Parses a transcript held in memory. Returns NULL on a format error. */
static struct gold *gold_parse(const char *p, size_t len)
{
	struct gold_cur c = {.p = p, .len = len};
	struct gold *g = calloc(1, sizeof(*g));
	char line[256], fl[128];
	unsigned long long ml, ism;
	unsigned ne, a, b;
	size_t cap = 0;

	if (!g)
		return NULL;
	if (!cur_line(&c, line, sizeof(line)) ||
	    strcmp(line, "memlane-golden 1"))
		goto bad;
	if (!cur_line(&c, line, sizeof(line)) ||
	    sscanf(line, "session %63s", g->name) != 1)
		goto bad;
	if (!cur_line(&c, line, sizeof(line)) ||
	    sscanf(line, "server mem_limit=%llu item_size_max=%llu no_evict=%u",
		   &ml, &ism, &ne) != 3)
		goto bad;
	g->mem_limit = (size_t)ml;
	g->item_size_max = (size_t)ism;
	g->no_evict = ne != 0;

	for (;;) {
		struct gold_rec *r;

		if (!cur_line(&c, line, sizeof(line)))
			goto bad;
		if (!strcmp(line, "end"))
			break;
		if (g->nrecs == cap) {
			struct gold_rec *nr;

			cap = cap ? cap * 2 : 64;
			nr = realloc(g->recs, cap * sizeof(*nr));
			if (!nr)
				goto bad;
			g->recs = nr;
		}
		r = &g->recs[g->nrecs];
		memset(r, 0, sizeof(*r));
		g->nrecs++;
		if (sscanf(line, "sleep %u", &a) == 1) {
			r->kind = GOLD_SLEEP;
			r->seconds = a;
		} else if (!strcmp(line, "reconnect")) {
			r->kind = GOLD_RECONNECT;
		} else if (sscanf(line, "step %u line=%u flags=%127s", &a, &b,
				  fl) == 3) {
			struct gbuf sent = {0};
			bool ok;

			r->kind = GOLD_STEP;
			r->step = a;
			r->line = b;
			r->flags = parse_flags(fl);
			ok = cur_block(&c, "tmpl", &r->tmpl) &&
			     cur_block(&c, "sent", &sent) &&
			     cur_block(&c, "reply", &r->reply);
			gbuf_free(&sent);
			if (!ok)
				goto bad;
		} else {
			goto bad;
		}
	}
	return g;
bad:
	gold_free(g);
	return NULL;
}

static struct gold *gold_load(const char *path)
{
	struct gbuf data = {0};
	struct gold *g = NULL;
	char tmp[65536];
	FILE *f;
	size_t n;

	f = fopen(path, "rb");
	if (!f)
		return NULL;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		gbuf_add(&data, tmp, n);
	if (!ferror(f))
		g = gold_parse(data.p ? data.p : "", data.len);
	fclose(f);
	gbuf_free(&data);
	return g;
}

/* ------------------------------------------------------------------------
 * Templates: $CAS, $NOW[+-N], $FILL(N), $$
 * ---------------------------------------------------------------------- */

static const char gold_alphabet[] = "abcdefghijklmnopqrstuvwxyz";

static bool digits_at(const char *p, size_t len, size_t *n, uint64_t *v)
{
	uint64_t x = 0;
	size_t i = 0;

	while (i < len && isdigit((unsigned char)p[i]) && i < 19)
		x = x * 10 + (uint64_t)(p[i++] - '0');
	*n = i;
	*v = x;
	return i > 0;
}

/*
 * Expands a template into wire bytes with the given CAS and clock.
 * Returns false on a malformed token.
 */
static bool gold_expand(const char *t, size_t len, uint64_t cas, uint32_t now,
			struct gbuf *out)
{
	size_t i = 0, n;
	uint64_t v;

	while (i < len) {
		const char *d = memchr(t + i, '$', len - i);
		size_t plain = d ? (size_t)(d - (t + i)) : len - i;

		gbuf_add(out, t + i, plain);
		i += plain;
		if (i >= len)
			break;
		i++; /* the '$' */
		if (i < len && t[i] == '$') {
			gbuf_add(out, "$", 1);
			i++;
		} else if (len - i >= 3 && !memcmp(t + i, "CAS", 3)) {
			gbuf_fmt(out, "%" PRIu64, cas);
			i += 3;
		} else if (len - i >= 3 && !memcmp(t + i, "NOW", 3)) {
			int64_t off = 0;

			i += 3;
			if (i < len && (t[i] == '+' || t[i] == '-')) {
				bool neg = t[i] == '-';

				if (!digits_at(t + i + 1, len - i - 1, &n, &v))
					return false;
				off = neg ? -(int64_t)v : (int64_t)v;
				i += 1 + n;
			}
			gbuf_fmt(out, "%" PRId64, (int64_t)now + off);
		} else if (len - i >= 5 && !memcmp(t + i, "FILL(", 5)) {
			size_t k;

			i += 5;
			if (!digits_at(t + i, len - i, &n, &v) ||
			    i + n >= len || t[i + n] != ')')
				return false;
			i += n + 1;
			gbuf_reserve(out, (size_t)v);
			for (k = 0; k < v; k++)
				out->p[out->len + k] = gold_alphabet[k % 26];
			out->len += (size_t)v;
		} else {
			return false;
		}
	}
	return true;
}

static bool has_token(const struct gbuf *t, const char *tok)
{
	size_t i, n = strlen(tok);

	for (i = 0; i + 1 + n <= t->len; i++) {
		if (t->p[i] != '$')
			continue;
		if (t->p[i + 1] == '$') {
			i++;
			continue;
		}
		if (!memcmp(t->p + i + 1, tok, n))
			return true;
	}
	return false;
}

/* ------------------------------------------------------------------------
 * Normalising replies
 * ---------------------------------------------------------------------- */

struct gold_norm {
	uint64_t *cas; /* distinct CAS values, in order of appearance */
	size_t ncas;
	size_t cap;
	uint64_t last; /* the last CAS value seen */
	bool have_last;
};

static void norm_free(struct gold_norm *nm)
{
	free(nm->cas);
	memset(nm, 0, sizeof(*nm));
}

static bool all_digits(const char *p, size_t len)
{
	size_t i;

	if (!len)
		return false;
	for (i = 0; i < len; i++)
		if (!isdigit((unsigned char)p[i]))
			return false;
	return true;
}

static uint64_t to_u64(const char *p, size_t len)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < len; i++)
		v = v * 10 + (uint64_t)(p[i] - '0');
	return v;
}

/* Writes a CAS value as its ordinal (#n), 0 as 0. */
static void norm_cas(struct gold_norm *nm, const char *p, size_t len,
		     struct gbuf *out)
{
	uint64_t v = to_u64(p, len);
	size_t i;

	nm->last = v;
	nm->have_last = true;
	if (!v) {
		gbuf_add(out, "0", 1);
		return;
	}
	for (i = 0; i < nm->ncas; i++)
		if (nm->cas[i] == v)
			break;
	if (i == nm->ncas) {
		if (nm->ncas == nm->cap) {
			size_t cap = nm->cap ? nm->cap * 2 : 32;
			uint64_t *c = realloc(nm->cas, cap * sizeof(*c));

			if (!c)
				abort();
			nm->cas = c;
			nm->cap = cap;
		}
		nm->cas[nm->ncas++] = v;
	}
	gbuf_fmt(out, "#%zu", i + 1);
}

#define NORM_MAX_TOKENS 64

struct tok {
	const char *p;
	size_t len;
};

static size_t split_tokens(const char *p, size_t len, struct tok *t)
{
	size_t n = 0, i = 0;

	while (i < len && n < NORM_MAX_TOKENS) {
		size_t s = i;

		while (i < len && p[i] != ' ')
			i++;
		t[n].p = p + s;
		t[n].len = i - s;
		n++;
		if (i < len)
			i++; /* the space */
	}
	return n;
}

static bool tok_is(const struct tok *t, const char *s)
{
	return t->len == strlen(s) && !memcmp(t->p, s, t->len);
}

static bool is_meta_code(const struct tok *t)
{
	static const char *codes[] = {"VA", "HD", "EN", "NF", "NS", "EX"};
	size_t i;

	for (i = 0; i < GOLD_ARRAY_SIZE(codes); i++)
		if (tok_is(t, codes[i]))
			return true;
	return false;
}

/* Rewrites one meta return flag token. */
static void norm_meta_token(struct gold_norm *nm, const struct tok *t,
			    struct gbuf *out)
{
	if (t->len > 1 && t->p[0] == 'c' && all_digits(t->p + 1, t->len - 1)) {
		gbuf_add(out, "c", 1);
		norm_cas(nm, t->p + 1, t->len - 1, out);
	} else if (t->len > 1 && (t->p[0] == 't' || t->p[0] == 'l') &&
		   all_digits(t->p + 1, t->len - 1)) {
		gbuf_add(out, t->p, 1);
		gbuf_add(out, "*", 1);
	} else {
		gbuf_add(out, t->p, t->len);
	}
}

/* Rewrites one key=value token of an ME line. */
static void norm_me_token(struct gold_norm *nm, const struct tok *t,
			  struct gbuf *out)
{
	static const char *masked[] = {"exp=", "la=", "cls=", "size="};
	size_t i, n;

	if (t->len > 4 && !memcmp(t->p, "cas=", 4) &&
	    all_digits(t->p + 4, t->len - 4)) {
		gbuf_add(out, "cas=", 4);
		norm_cas(nm, t->p + 4, t->len - 4, out);
		return;
	}
	for (i = 0; i < GOLD_ARRAY_SIZE(masked); i++) {
		n = strlen(masked[i]);
		if (t->len < n || memcmp(t->p, masked[i], n))
			continue;
		if (!strcmp(masked[i], "exp=") && t->len == 6 &&
		    !memcmp(t->p + 4, "-1", 2))
			break;
		gbuf_add(out, t->p, n);
		gbuf_add(out, "*", 1);
		return;
	}
	gbuf_add(out, t->p, t->len);
}

/* A STAT line of stats items / stats slabs: compared by structure only. */
static bool slab_stat(const struct tok *name)
{
	return memchr(name->p, ':', name->len) ||
	       tok_is(name, "active_slabs") || tok_is(name, "total_malloced");
}

/*
 * Appends the normalised form of a reply stream to out (see the README
 * for the rules). Lines are "\r\n" terminated; the data blocks announced by
 * VALUE and VA are copied untouched. A trailing partial line is copied as
 * is.
 */
static void gold_normalise(struct gold_norm *nm, const char *p, size_t len,
			   struct gbuf *out)
{
	struct tok t[NORM_MAX_TOKENS];
	size_t off = 0, n, i;

	while (off < len) {
		const char *line = p + off;
		const char *end = NULL;
		size_t ll, skip = 0;
		size_t k;

		for (k = off; k + 1 < len; k++) {
			if (p[k] == '\r' && p[k + 1] == '\n') {
				end = p + k;
				break;
			}
		}
		if (!end) {
			gbuf_add(out, line, len - off);
			return;
		}
		ll = (size_t)(end - line);
		off += ll + 2;
		n = split_tokens(line, ll, t);

		if (n >= 4 && tok_is(&t[0], "VALUE")) {
			for (i = 0; i < 4; i++) {
				if (i)
					gbuf_add(out, " ", 1);
				gbuf_add(out, t[i].p, t[i].len);
			}
			for (i = 4; i < n; i++) {
				gbuf_add(out, " ", 1);
				if (i == 4 && all_digits(t[i].p, t[i].len))
					norm_cas(nm, t[i].p, t[i].len, out);
				else
					gbuf_add(out, t[i].p, t[i].len);
			}
			if (all_digits(t[3].p, t[3].len))
				skip = (size_t)to_u64(t[3].p, t[3].len) + 2;
		} else if (n >= 1 && is_meta_code(&t[0])) {
			gbuf_add(out, t[0].p, t[0].len);
			for (i = 1; i < n; i++) {
				gbuf_add(out, " ", 1);
				if (i == 1 && tok_is(&t[0], "VA"))
					gbuf_add(out, t[i].p, t[i].len);
				else
					norm_meta_token(nm, &t[i], out);
			}
			if (n >= 2 && tok_is(&t[0], "VA") &&
			    all_digits(t[1].p, t[1].len))
				skip = (size_t)to_u64(t[1].p, t[1].len) + 2;
		} else if (n >= 2 && tok_is(&t[0], "ME")) {
			gbuf_add(out, "ME ", 3);
			gbuf_add(out, t[1].p, t[1].len);
			for (i = 2; i < n; i++) {
				gbuf_add(out, " ", 1);
				norm_me_token(nm, &t[i], out);
			}
		} else if (n >= 1 && tok_is(&t[0], "VERSION")) {
			gbuf_str(out, "VERSION *");
		} else if (n >= 3 && tok_is(&t[0], "STAT") && t[1].len &&
			   t[2].len) {
			if (slab_stat(&t[1]))
				continue;
			gbuf_add(out, "STAT ", 5);
			gbuf_add(out, t[1].p, t[1].len);
			gbuf_add(out, " *", 2);
		} else {
			gbuf_add(out, line, ll);
		}
		gbuf_add(out, "\r\n", 2);
		if (skip) {
			if (skip > len - off)
				skip = len - off;
			gbuf_add(out, p + off, skip);
			off += skip;
		}
	}
}

/*
 * Keeps only the first occurrence of each distinct line: for steps whose
 * replies depend on how much fits in memory, where only which replies
 * occur, and which comes first, is compared.
 */
static void gold_collapse(const struct gbuf *in, struct gbuf *out)
{
	size_t off = 0;

	while (off < in->len) {
		const char *nl = memchr(in->p + off, '\n', in->len - off);
		size_t n =
			nl ? (size_t)(nl - (in->p + off)) + 1 : in->len - off;
		size_t o2 = 0;
		bool seen = false;

		while (o2 < out->len && !seen) {
			const char *nl2 =
				memchr(out->p + o2, '\n', out->len - o2);
			size_t n2 = nl2 ? (size_t)(nl2 - (out->p + o2)) + 1
					: out->len - o2;

			seen = n2 == n && !memcmp(out->p + o2, in->p + off, n);
			o2 += n2;
		}
		if (!seen)
			gbuf_add(out, in->p + off, n);
		off += n;
	}
}

/* ------------------------------------------------------------------------
 * Reporting
 * ---------------------------------------------------------------------- */

/*
 * Prints p[from, to) escaped, breaking lines after each \n, with the
 * total length and what was left out.
 */
static void print_escaped(const char *label, const char *p, size_t len,
			  size_t from, size_t to)
{
	size_t i;

	if (to > len)
		to = len;
	if (from > to)
		from = to;
	printf("    %s (%zu bytes):\n      ", label, len);
	if (from)
		printf("(%zu bytes before) ", from);
	for (i = from; i < to; i++) {
		unsigned char ch = (unsigned char)p[i];

		if (ch == '\r')
			fputs("\\r", stdout);
		else if (ch == '\n')
			fputs(i + 1 < to ? "\\n\n      " : "\\n", stdout);
		else if (ch == '\\')
			fputs("\\\\", stdout);
		else if (ch == '\t')
			fputs("\\t", stdout);
		else if (ch < 0x20 || ch >= 0x7f)
			printf("\\x%02x", ch);
		else
			putchar(ch);
	}
	if (to < len)
		printf("... (%zu more)", len - to);
	putchar('\n');
}

/* The start of the line holding byte at, going back at least back bytes. */
static size_t window_start(const struct gbuf *b, size_t at, size_t back)
{
	size_t i = at > back ? at - back : 0;

	if (i > b->len)
		i = b->len;
	while (i > 0 && b->p[i - 1] != '\n')
		i--;
	return i;
}

static size_t first_diff(const struct gbuf *a, const struct gbuf *b)
{
	size_t i, n = a->len < b->len ? a->len : b->len;

	for (i = 0; i < n; i++)
		if (a->p[i] != b->p[i])
			break;
	return i;
}

/* ------------------------------------------------------------------------
 * The replay
 * ---------------------------------------------------------------------- */

/* One client connection: its parser and the bytes it has not parsed. */
struct gold_conn {
	struct proto_parser ps;
	struct gbuf in;
	bool closed;	 /* proto_execute() asked to close it */
	unsigned errors; /* API contract violations */
};

struct gold_run {
	const struct gold *g;
	unsigned nshards;
	const char *pass;
	struct proto_node *node;
	struct gold_conn conn;
	struct proto_out out;
	uint32_t now;
	uint64_t cas;	       /* last CAS seen in memlane's replies */
	struct gold_norm nexp; /* normalising memcached's replies */
	struct gold_norm nact; /* normalising memlane's replies */
	unsigned mismatches;
	unsigned reported;
	unsigned max_reports;
	bool quiet; /* run steps without checking them */
};

static void conn_reset(struct gold_run *r)
{
	gbuf_free(&r->conn.in);
	memset(&r->conn.ps, 0, sizeof(r->conn.ps));
	r->conn.ps.item_size_max = (uint32_t)r->g->item_size_max;
	r->conn.closed = false;
}

static void report(struct gold_run *r, const struct gold_rec *rec,
		   const char *what)
{
	if (r->quiet)
		return;
	r->mismatches++;
	if (r->reported++ >= r->max_reports)
		return;
	printf("[golden] %s (%u shard%s, %s): step %u (session line %u): %s\n",
	       r->g->name, r->nshards, r->nshards == 1 ? "" : "s", r->pass,
	       rec ? rec->step : 0, rec ? rec->line : 0, what);
}

/*
 * Feeds bytes to the connection: parses and executes every complete
 * request, appending replies to r->out. Bytes after a close are dropped.
 */
static void conn_feed(struct gold_run *r, const char *p, size_t len)
{
	struct gold_conn *c = &r->conn;
	size_t off = 0;

	if (c->closed)
		return;
	gbuf_add(&c->in, p, len);
	while (off < c->in.len) {
		struct proto_req req;
		size_t avail = c->in.len - off;
		size_t used;
		int rc;

		memset(&req, 0, sizeof(req));
		used = proto_parse(&c->ps, c->in.p + off, avail, &req);
		if (!used)
			break;
		if (used > avail || req.len != used ||
		    req.cmd >= PROTO_CMD_MAX) {
			printf("[golden] %s: proto_parse() returned %zu of %zu"
			       " bytes, req.len %u, cmd %u\n",
			       r->g->name, used, avail, req.len, req.cmd);
			c->errors++;
			c->closed = true;
			break;
		}
		rc = proto_execute(r->node, c->in.p + off, &req, &r->out);
		off += used;
		if (rc == -EPIPE) {
			c->closed = true;
			break;
		}
		if (rc) {
			printf("[golden] %s: proto_execute() returned %d\n",
			       r->g->name, rc);
			c->errors++;
		}
	}
	if (c->closed) {
		c->in.len = 0;
	} else if (off) {
		memmove(c->in.p, c->in.p + off, c->in.len - off);
		c->in.len -= off;
	}
}

/*
 * Reports normalised replies that differ: a window around the first
 * difference of each, and the start of the request.
 */
static void report_diff(struct gold_run *r, const struct gold_rec *rec,
			const struct gbuf *e, const struct gbuf *a,
			const struct gbuf *request, const char *context)
{
	size_t at = first_diff(e, a);
	size_t from = window_start(e, at, 240);
	char what[192];

	snprintf(what, sizeof(what), "%sreply differs at normalised byte %zu",
		 context, at);
	report(r, rec, what);
	if (r->quiet || r->reported > r->max_reports)
		return;
	print_escaped("request", request->p, request->len, 0, 400);
	print_escaped("memcached (normalised)", e->p, e->len, from, at + 600);
	print_escaped("memlane   (normalised)", a->p, a->len, from, at + 600);
}

/* Compares memcached's and memlane's replies, both normalised. */
static void compare(struct gold_run *r, const struct gold_rec *rec,
		    const struct gbuf *exp_raw, const struct gbuf *act_raw,
		    const struct gbuf *request, bool collapse)
{
	struct gbuf e = {0}, a = {0};

	gold_normalise(&r->nexp, exp_raw->p, exp_raw->len, &e);
	gold_normalise(&r->nact, act_raw->p, act_raw->len, &a);
	if (collapse) {
		struct gbuf ce = {0}, ca = {0};

		gold_collapse(&e, &ce);
		gold_collapse(&a, &ca);
		gbuf_free(&e);
		gbuf_free(&a);
		e = ce;
		a = ca;
	}
	if (!gbuf_eq(&e, &a))
		report_diff(r, rec, &e, &a, request, "");
	gbuf_free(&e);
	gbuf_free(&a);
}

static int run_start(struct gold_run *r, const struct gold *g, unsigned nshards,
		     const char *pass)
{
	struct proto_node_params p = {
		.nshards = nshards,
		.mem_limit = g->mem_limit,
		.item_size_max = g->item_size_max,
		.no_evict = g->no_evict,
		.now = GOLD_NOW,
		.pid = 4242,
		.conn_max = 1024,
		.tcp_port = 11211,
		.udp_port = 0,
		.threads = 1,
	};
	const char *max = getenv("GOLDEN_MAX_REPORTS");

	memset(r, 0, sizeof(*r));
	r->g = g;
	r->nshards = nshards;
	r->pass = pass;
	r->now = GOLD_NOW;
	r->max_reports = max ? (unsigned)atoi(max) : 20;
	r->node = proto_node_create(&p);
	if (!r->node) {
		printf("[golden] %s: proto_node_create(%u shards, %zu bytes)"
		       " failed: %s\n",
		       g->name, nshards, g->mem_limit, strerror(errno));
		return -1;
	}
	conn_reset(r);
	return 0;
}

static void run_end(struct gold_run *r)
{
	proto_node_free(r->node);
	proto_out_free(&r->out);
	gbuf_free(&r->conn.in);
	norm_free(&r->nexp);
	norm_free(&r->nact);
}

/* Feeds one record the way a client would send it. */
static void run_step(struct gold_run *r, const struct gold_rec *rec,
		     struct gbuf *pend_exp, struct gbuf *pend_act,
		     struct gbuf *pend_req)
{
	struct gbuf wire = {0};
	struct gold_norm scan = {0};
	struct gbuf sink = {0};
	bool closed;

	if (rec->kind == GOLD_SLEEP) {
		r->now += rec->seconds;
		proto_node_set_time(r->node, r->now);
		return;
	}
	if (rec->kind == GOLD_RECONNECT) {
		conn_reset(r);
		return;
	}
	if (!gold_expand(rec->tmpl.p, rec->tmpl.len, r->cas, r->now, &wire)) {
		report(r, rec, "malformed template in the transcript");
		gbuf_free(&wire);
		return;
	}
	r->out.len = 0;
	conn_feed(r, wire.p, wire.len);
	closed = r->conn.closed;

	/* $CAS for later steps: the last CAS in memlane's own replies. */
	gold_normalise(&scan, r->out.buf, r->out.len, &sink);
	if (scan.have_last)
		r->cas = scan.last;
	norm_free(&scan);
	gbuf_free(&sink);

	gbuf_add(pend_exp, rec->reply.p, rec->reply.len);
	gbuf_add(pend_act, r->out.buf, r->out.len);
	gbuf_add(pend_req, wire.p, wire.len);
	gbuf_free(&wire);

	if ((rec->flags & GF_NOSENTINEL) && !closed &&
	    !(rec->flags & GF_CLOSED))
		return;
	if (!r->quiet)
		compare(r, rec, pend_exp, pend_act, pend_req,
			rec->flags & GF_COLLAPSE);
	if (!!(rec->flags & GF_CLOSED) != closed)
		report(r, rec,
		       closed ? "memlane closed the connection,"
				" memcached did not"
			      : "memcached closed the connection,"
				" memlane did not");
	if (closed || (rec->flags & GF_CLOSED))
		conn_reset(r);
	pend_exp->len = pend_act->len = pend_req->len = 0;
}

/* Replays a transcript step by step. Returns the number of mismatches. */
static unsigned gold_replay(const struct gold *g, unsigned nshards)
{
	struct gbuf pe = {0}, pa = {0}, pr = {0};
	struct gold_run r;
	unsigned bad;
	size_t i;

	if (run_start(&r, g, nshards, "step by step"))
		return 1;
	for (i = 0; i < g->nrecs; i++)
		run_step(&r, &g->recs[i], &pe, &pa, &pr);
	if (pe.len || pa.len)
		compare(&r, NULL, &pe, &pa, &pr, false);
	bad = r.mismatches + r.conn.errors;
	run_end(&r);
	gbuf_free(&pe);
	gbuf_free(&pa);
	gbuf_free(&pr);
	return bad;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

/*
 * Which steps may be fed as part of a randomly split stream: no
 * substitution, no close, no collapse, not marked nosplit; and a step sent
 * without sentinel only together with the step after it, so that every
 * split run starts and ends where memcached's replies were complete.
 */
static void mark_splittable(const struct gold *g, bool *ok)
{
	bool changed = true;
	size_t i;

	for (i = 0; i < g->nrecs; i++)
		ok[i] = g->recs[i].kind == GOLD_STEP &&
			!(g->recs[i].flags &
			  (GF_DYNAMIC | GF_CLOSED | GF_COLLAPSE | GF_NOSPLIT));
	/* A step without sentinel and the step after it go together. */
	while (changed) {
		changed = false;
		for (i = 0; i < g->nrecs; i++) {
			bool nos = g->recs[i].kind == GOLD_STEP &&
				   (g->recs[i].flags & GF_NOSENTINEL);
			bool next = i + 1 < g->nrecs && ok[i + 1];

			if (nos && ok[i] && !next) {
				ok[i] = false;
				changed = true;
			}
			if (nos && !ok[i] && next) {
				ok[i + 1] = false;
				changed = true;
			}
		}
	}
}

/*
 * Replays a transcript with each run of splittable steps sent as one
 * stream cut at random places. Only the split runs are compared, each on
 * its own CAS numbering.
 */
static unsigned gold_replay_split(const struct gold *g, unsigned nshards,
				  uint64_t seed)
{
	struct gbuf pe = {0}, pa = {0}, pr = {0};
	struct gbuf wire = {0}, exp = {0}, act = {0}, req = {0};
	bool *ok = calloc(g->nrecs + 1, sizeof(*ok));
	size_t *wire_end = calloc(g->nrecs + 1, sizeof(*wire_end));
	size_t *exp_end = calloc(g->nrecs + 1, sizeof(*exp_end));
	struct gold_run r;
	unsigned bad;
	size_t i = 0;

	if (!ok || !wire_end || !exp_end ||
	    run_start(&r, g, nshards, "random split")) {
		free(ok);
		free(wire_end);
		free(exp_end);
		return 1;
	}
	mark_splittable(g, ok);
	seed = seed * 0x9e3779b97f4a7c15ull + 1;
	while (i < g->nrecs) {
		size_t first = i, off = 0, k, at;
		char ctx[96];

		if (!ok[i]) {
			/* Keeps the state in step; its checks belong to the
			 * step-by-step pass. */
			r.quiet = true;
			run_step(&r, &g->recs[i], &pe, &pa, &pr);
			r.quiet = false;
			i++;
			continue;
		}
		/* The run's bytes, and memcached's replies normalised step
		 * by step so that a difference can be traced to its step. */
		norm_free(&r.nexp);
		norm_free(&r.nact);
		wire.len = exp.len = 0;
		for (; i < g->nrecs && ok[i]; i++) {
			gold_expand(g->recs[i].tmpl.p, g->recs[i].tmpl.len, 0,
				    r.now, &wire);
			gold_normalise(&r.nexp, g->recs[i].reply.p,
				       g->recs[i].reply.len, &exp);
			wire_end[i] = wire.len;
			exp_end[i] = exp.len;
		}
		r.out.len = 0;
		while (off < wire.len) {
			uint64_t x = xorshift(&seed);
			size_t n = (x & 1) ? 1 + (x >> 8) % 8
					   : 1 + (x >> 8) % 16384;

			if (n > wire.len - off)
				n = wire.len - off;
			conn_feed(&r, wire.p + off, n);
			off += n;
		}
		act.len = 0;
		gold_normalise(&r.nact, r.out.buf, r.out.len, &act);
		if (r.nact.have_last)
			r.cas = r.nact.last;
		if (gbuf_eq(&exp, &act))
			continue;
		at = first_diff(&exp, &act);
		for (k = first; k + 1 < i && exp_end[k] <= at; k++)
			;
		req.len = 0;
		off = k > first ? wire_end[k - 1] : 0;
		gbuf_add(&req, wire.p + off, wire_end[k] - off);
		snprintf(ctx, sizeof(ctx),
			 "in the run of steps %u-%u, at or before this step: ",
			 g->recs[first].step, g->recs[i - 1].step);
		report_diff(&r, &g->recs[k], &exp, &act, &req, ctx);
	}
	bad = r.mismatches + r.conn.errors;
	run_end(&r);
	free(ok);
	free(wire_end);
	free(exp_end);
	gbuf_free(&req);
	gbuf_free(&pe);
	gbuf_free(&pa);
	gbuf_free(&pr);
	gbuf_free(&wire);
	gbuf_free(&exp);
	gbuf_free(&act);
	return bad;
}

/* ------------------------------------------------------------------------
 * Tests: the normaliser and the transcript reader, without a node
 * ---------------------------------------------------------------------- */

static void norm_str(struct gold_norm *nm, const char *in, struct gbuf *out)
{
	out->len = 0;
	gold_normalise(nm, in, strlen(in), out);
	gbuf_reserve(out, 1);
	out->p[out->len] = '\0';
}

static void test_normalise_cas(void **state)
{
	struct gold_norm nm = {0};
	struct gbuf o = {0};

	(void)state;
	norm_str(&nm, "VALUE k 0 1 77\r\nx\r\nEND\r\n", &o);
	assert_string_equal(o.p, "VALUE k 0 1 #1\r\nx\r\nEND\r\n");
	norm_str(&nm, "HD c99 kfoo\r\nVA 2 c77 t-1\r\nab\r\n", &o);
	assert_string_equal(o.p, "HD c#2 kfoo\r\nVA 2 c#1 t-1\r\nab\r\n");
	assert_true(nm.have_last);
	assert_int_equal(nm.last, 77);
	norm_str(&nm, "ME k exp=-1 la=3 cas=99 fetch=no cls=1 size=70\r\n", &o);
	assert_string_equal(
		o.p, "ME k exp=-1 la=* cas=#2 fetch=no cls=* size=*\r\n");
	norm_str(&nm, "HD c0\r\nVALUE k 0 1 0\r\nx\r\nEND\r\n", &o);
	assert_string_equal(o.p, "HD c0\r\nVALUE k 0 1 0\r\nx\r\nEND\r\n");
	/* Equal CAS values map to the same ordinal on either side. */
	{
		struct gold_norm other = {0};
		struct gbuf o2 = {0};

		norm_str(&other, "VALUE k 0 1 5\r\nx\r\nEND\r\nHD c5\r\n", &o2);
		assert_string_equal(o2.p,
				    "VALUE k 0 1 #1\r\nx\r\nEND\r\nHD c#1\r\n");
		norm_free(&other);
		gbuf_free(&o2);
	}
	norm_free(&nm);
	gbuf_free(&o);
}

static void test_normalise_times_version_stats(void **state)
{
	struct gold_norm nm = {0};
	struct gbuf o = {0};

	(void)state;
	norm_str(&nm, "HD t99 l5 h1 s3 f0 O12 kt5\r\n", &o);
	assert_string_equal(o.p, "HD t* l* h1 s3 f0 O12 kt5\r\n");
	norm_str(&nm, "ME k exp=30 la=0 cas=1 fetch=yes cls=3 size=64\r\n", &o);
	assert_string_equal(
		o.p, "ME k exp=* la=* cas=#1 fetch=yes cls=* size=*\r\n");
	norm_str(&nm, "VERSION 1.6.18\r\n", &o);
	assert_string_equal(o.p, "VERSION *\r\n");
	norm_str(&nm, "STAT pid 12\r\nSTAT version 1.6.18\r\nEND\r\n", &o);
	assert_string_equal(o.p, "STAT pid *\r\nSTAT version *\r\nEND\r\n");
	norm_str(&nm,
		 "STAT items:1:number 2\r\nSTAT 1:chunk_size 96\r\n"
		 "STAT active_slabs 1\r\nSTAT total_malloced 1048576\r\n"
		 "END\r\n",
		 &o);
	assert_string_equal(o.p, "END\r\n");
	/* A malformed STAT line is kept, so that it shows. */
	norm_str(&nm, "STAT items:1:number\r\nEND\r\n", &o);
	assert_string_equal(o.p, "STAT items:1:number\r\nEND\r\n");
	norm_free(&nm);
	gbuf_free(&o);
}

static void test_normalise_data_untouched(void **state)
{
	struct gold_norm nm = {0};
	struct gbuf o = {0};
	const char *in = "VALUE k 0 16\r\nVERSION x\r\nHD c1\r\n\r\n"
			 "VA 11 c3\r\nSTAT a b\r\nt5\r\n"
			 "CLIENT_ERROR bad data chunk\r\npartial";

	(void)state;
	norm_str(&nm, in, &o);
	assert_string_equal(o.p, "VALUE k 0 16\r\nVERSION x\r\nHD c1\r\n\r\n"
				 "VA 11 c#1\r\nSTAT a b\r\nt5\r\n"
				 "CLIENT_ERROR bad data chunk\r\npartial");
	norm_free(&nm);
	gbuf_free(&o);
}

static void test_collapse(void **state)
{
	struct gbuf in = {0}, out = {0};

	(void)state;
	gbuf_str(&in, "STORED\r\nSTORED\r\nSERVER_ERROR x\r\n"
		      "STORED\r\nSERVER_ERROR x\r\nEND\r\n");
	gold_collapse(&in, &out);
	assert_int_equal(out.len,
			 strlen("STORED\r\nSERVER_ERROR x\r\nEND\r\n"));
	assert_memory_equal(out.p, "STORED\r\nSERVER_ERROR x\r\nEND\r\n",
			    out.len);
	gbuf_free(&in);
	gbuf_free(&out);
}

static void test_expand(void **state)
{
	static const char t[] = "cas k 0 $NOW+5 1 $CAS $NOW-7 $NOW $$x "
				"$FILL(30)|";
	struct gbuf o = {0};

	(void)state;
	assert_true(gold_expand(t, strlen(t), 42, 1000, &o));
	gbuf_reserve(&o, 1);
	o.p[o.len] = '\0';
	assert_string_equal(o.p, "cas k 0 1005 1 42 993 1000 $x "
				 "abcdefghijklmnopqrstuvwxyzabcd|");
	o.len = 0;
	assert_false(gold_expand("$FOO", 4, 0, 0, &o));
	o.len = 0;
	assert_false(gold_expand("$FILL(3", 7, 0, 0, &o));
	gbuf_free(&o);
}

static void test_parse_transcript(void **state)
{
	static const char t[] =
		"memlane-golden 1\n"
		"session demo\n"
		"server mem_limit=1024 item_size_max=512 no_evict=1\n"
		"step 1 line=3 flags=nosentinel,dynamic\n"
		"tmpl 5\nget a\n"
		"sent 5\nget a\n"
		"reply 5\nEND\r\n\n"
		"sleep 4\n"
		"reconnect\n"
		"end\n";
	struct gold *g;

	(void)state;
	g = gold_parse(t, sizeof(t) - 1);
	assert_non_null(g);
	assert_string_equal(g->name, "demo");
	assert_int_equal(g->mem_limit, 1024);
	assert_int_equal(g->item_size_max, 512);
	assert_true(g->no_evict);
	assert_int_equal(g->nrecs, 3);
	assert_int_equal(g->recs[0].kind, GOLD_STEP);
	assert_int_equal(g->recs[0].flags, GF_NOSENTINEL | GF_DYNAMIC);
	assert_int_equal(g->recs[0].reply.len, 5);
	assert_memory_equal(g->recs[0].reply.p, "END\r\n", 5);
	assert_int_equal(g->recs[1].kind, GOLD_SLEEP);
	assert_int_equal(g->recs[1].seconds, 4);
	assert_int_equal(g->recs[2].kind, GOLD_RECONNECT);
	gold_free(g);
	/* A truncated block is an error. */
	assert_null(gold_parse(t, 120));
}

/* ------------------------------------------------------------------------
 * Tests: the transcripts
 * ---------------------------------------------------------------------- */

/* Transcripts that could not be read. */
static unsigned gold_malformed;

struct gold_case {
	char name[96];
	struct gold *g;
	unsigned nshards;
	bool split;
};

static void test_transcript(void **state)
{
	struct gold_case *gc = *state;
	unsigned bad = 0, s;

	if (!gc->split) {
		bad = gold_replay(gc->g, gc->nshards);
	} else {
		for (s = 0; s < GOLD_SPLIT_SEEDS; s++)
			bad += gold_replay_split(gc->g, gc->nshards, s + 1);
	}
	if (bad)
		printf("[golden] %s: %u mismatch%s\n", gc->name, bad,
		       bad == 1 ? "" : "es");
	assert_int_equal(bad, 0);
}

/* Every transcript is well formed, and fixed steps were sent as recorded. */
static void test_transcripts_consistent(void **state)
{
	struct gold_case *cases = *state;
	size_t i, k;

	assert_int_equal(gold_malformed, 0);
	for (i = 0; cases[i].g; i++) {
		const struct gold *g = cases[i].g;

		if (cases[i].split || cases[i].nshards != 1)
			continue;
		assert_true(g->nrecs > 0);
		assert_true(g->mem_limit > 0);
		for (k = 0; k < g->nrecs; k++) {
			const struct gold_rec *rec = &g->recs[k];
			struct gbuf w = {0};

			if (rec->kind != GOLD_STEP)
				continue;
			assert_int_equal(!!(rec->flags & GF_DYNAMIC),
					 has_token(&rec->tmpl, "CAS") ||
						 has_token(&rec->tmpl, "NOW"));
			assert_true(gold_expand(rec->tmpl.p, rec->tmpl.len, 1,
						GOLD_NOW, &w));
			gbuf_free(&w);
		}
	}
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the transcripts (sorted), loads them, and builds the cases. */
static struct gold_case *load_cases(size_t *ncases)
{
	const char *only = getenv("GOLDEN_ONLY");
	struct gold_case *cases = NULL;
	char **names = NULL;
	size_t n = 0, cap = 0, i, k = 0;
	struct dirent *de;
	DIR *d;

	d = opendir(GOLD_DIR);
	if (!d) {
		printf("[golden] cannot open %s: %s\n", GOLD_DIR,
		       strerror(errno));
		return NULL;
	}
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);

		if (l < 4 || strcmp(de->d_name + l - 3, ".tr"))
			continue;
		if (only &&
		    (strlen(only) != l - 3 || strncmp(de->d_name, only, l - 3)))
			continue;
		if (n == cap) {
			char **nn;

			cap = cap ? cap * 2 : 16;
			nn = realloc(names, cap * sizeof(*nn));
			if (!nn)
				abort();
			names = nn;
		}
		names[n++] = strdup(de->d_name);
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmp_names);

	/* Per transcript: 1 shard, 2 shards, random split; plus a NULL end. */
	cases = calloc(n * 3 + 1, sizeof(*cases));
	if (!cases)
		abort();
	for (i = 0; i < n; i++) {
		char path[1024];
		struct gold *g;
		unsigned v;

		snprintf(path, sizeof(path), "%s/%s", GOLD_DIR, names[i]);
		g = gold_load(path);
		if (!g) {
			printf("[golden] %s: malformed transcript\n", path);
			gold_malformed++;
			continue;
		}
		for (v = 0; v < 3; v++) {
			struct gold_case *gc = &cases[k++];

			gc->g = g;
			gc->nshards = v == 0 ? 1 : 2;
			gc->split = v == 2;
			snprintf(gc->name, sizeof(gc->name), "%s/%s", g->name,
				 v == 0	  ? "1shard"
				 : v == 1 ? "2shards"
					  : "split");
		}
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	*ncases = k;
	return cases;
}

int main(void)
{
	const struct CMUnitTest unit[] = {
		cmocka_unit_test(test_normalise_cas),
		cmocka_unit_test(test_normalise_times_version_stats),
		cmocka_unit_test(test_normalise_data_untouched),
		cmocka_unit_test(test_collapse),
		cmocka_unit_test(test_expand),
		cmocka_unit_test(test_parse_transcript),
	};
	struct CMUnitTest *tests;
	struct gold_case *cases;
	size_t ncases = 0, i;
	int fails;

	fails = cmocka_run_group_tests_name("golden_normalise", unit, NULL,
					    NULL);

	cases = load_cases(&ncases);
	if (!cases || !ncases) {
		printf("[golden] no transcripts found in %s\n", GOLD_DIR);
		free(cases);
		return 1;
	}
	tests = calloc(ncases + 1, sizeof(*tests));
	if (!tests)
		abort();
	tests[0].name = "transcripts_consistent";
	tests[0].test_func = test_transcripts_consistent;
	tests[0].initial_state = cases;
	for (i = 0; i < ncases; i++) {
		tests[i + 1].name = cases[i].name;
		tests[i + 1].test_func = test_transcript;
		tests[i + 1].initial_state = &cases[i];
	}
	fails += _cmocka_run_group_tests("golden", tests, ncases + 1, NULL,
					 NULL);

	for (i = 0; i < ncases; i += 3)
		gold_free(cases[i].g);
	free(cases);
	free(tests);
	return fails ? 1 : 0;
}

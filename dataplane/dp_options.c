/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memcached's options file and extended options, read into memlaned's
 * configuration.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "dp_options.h"

#define FILE_MAX (256 * 1024) /* an options file larger is refused */

static int failc(int code, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int failc(int code, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -code;
}

void dp_options_warn(struct dp_config *cfg, const char *fmt, ...)
{
	size_t used = strlen(cfg->warnings);
	va_list ap;

	if (used + 2 >= sizeof(cfg->warnings))
		return;
	va_start(ap, fmt);
	vsnprintf(cfg->warnings + used, sizeof(cfg->warnings) - used - 1, fmt,
		  ap);
	va_end(ap);
	used = strlen(cfg->warnings);
	cfg->warnings[used] = '\n';
	cfg->warnings[used + 1] = '\0';
}

/* ------------------------------------------------------------------------
 * The options file
 * ---------------------------------------------------------------------- */

/* Where --config names the file: its index in argv, and the file. */
static int config_arg(int argc, char **argv, const char **file)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strncmp(argv[i], "--config=", 9) == 0) {
			*file = argv[i] + 9;
			return i;
		}
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			*file = argv[i + 1];
			return i;
		}
	}
	return -1;
}

static char *read_all(const char *path, char *err, size_t errlen, int *rc)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;

	if (!f) {
		*rc = failc(EX_NOINPUT, err, errlen, "--config: %s: %s", path,
			    strerror(errno));
		return NULL;
	}
	buf = malloc(FILE_MAX + 1);
	if (!buf) {
		fclose(f);
		*rc = failc(EX_OSERR, err, errlen, "--config: out of memory");
		return NULL;
	}
	n = fread(buf, 1, FILE_MAX + 1, f);
	fclose(f);
	if (n > FILE_MAX) {
		free(buf);
		*rc = failc(EX_USAGE, err, errlen,
			    "--config: %s is larger than %d KiB", path,
			    FILE_MAX / 1024);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/* One line of the file, its comment and outer blanks gone: its words
 * appended to words (each NUL-ended), counted in *nwords. A '#' after a
 * backslash is kept, as Debian's wrapper keeps it. */
static int config_line(char *line, unsigned lineno, const char *path, char **wp,
		       unsigned *nwords, struct dp_config *cfg, char *err,
		       size_t errlen)
{
	char *save, *w, *src, *dst;

	for (src = dst = line; *src; src++) {
		if (*src == '#' && (src == line || src[-1] != '\\'))
			break;
		if (*src == '\\' && src[1] == '#')
			continue;
		*dst++ = *src;
	}
	*dst = '\0';
	w = line + strspn(line, " \t\r");
	if (!*w)
		return 0;
	if (*w != '-') {
		char *arg;

		w = strtok_r(w, " \t\r", &save);
		arg = strtok_r(NULL, "\r", &save);
		if (arg)
			arg += strspn(arg, " \t");
		if (strcmp(w, "logfile") != 0 || !arg || !*arg)
			return failc(EX_USAGE, err, errlen,
				     "--config: %s:%u: '%s' is neither an "
				     "option nor logfile PATH",
				     path, lineno, w);
		snprintf(cfg->logfile, sizeof(cfg->logfile), "%s", arg);
		return 0;
	}
	for (w = strtok_r(w, " \t\r", &save); w;
	     w = strtok_r(NULL, " \t\r", &save)) {
		size_t n = strlen(w) + 1;

		memmove(*wp, w, n);
		*wp += n;
		(*nwords)++;
	}
	return 0;
}

int dp_args_build(int argc, char **argv, struct dp_args *args,
		  struct dp_config *cfg, char *err, size_t errlen)
{
	const char *path = NULL;
	int at = config_arg(argc, argv, &path), rc = 0, k = 0;
	unsigned nwords = 0, lineno = 0;
	char *text, *wp, *line, *next;

	memset(args, 0, sizeof(*args));
	if (at < 0) {
		args->argc = argc;
		args->argv = calloc((size_t)argc + 1, sizeof(char *));
		if (!args->argv)
			return failc(EX_OSERR, err, errlen, "out of memory");
		memcpy(args->argv, argv, (size_t)argc * sizeof(char *));
		return 0;
	}
	if (!(text = read_all(path, err, errlen, &rc)))
		return rc;
	/* the words are packed over the text they come from: never longer */
	wp = text;
	for (line = text; line && !rc; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		/* the line is copied first: packing may overwrite it */
		{
			char copy[4096];

			if (strlen(line) >= sizeof(copy)) {
				rc = failc(EX_USAGE, err, errlen,
					   "--config: %s:%u: line too long",
					   path, lineno);
				break;
			}
			strcpy(copy, line);
			rc = config_line(copy, lineno, path, &wp, &nwords, cfg,
					 err, errlen);
		}
	}
	if (rc) {
		free(text);
		return rc;
	}
	args->words = text;
	args->argv = calloc((size_t)argc + nwords + 1, sizeof(char *));
	if (!args->argv) {
		free(text);
		return failc(EX_OSERR, err, errlen, "out of memory");
	}
	args->argv[k++] = argv[0];
	for (char *w = text; nwords--; w += strlen(w) + 1)
		args->argv[k++] = w;
	for (int i = 1; i < argc; i++) {
		if (i == at) {
			/* --config FILE is left out */
			if (strcmp(argv[i], "--config") == 0)
				i++;
			continue;
		}
		args->argv[k++] = argv[i];
	}
	args->argc = k;
	return 0;
}

void dp_args_free(struct dp_args *args)
{
	free(args->argv);
	free(args->words);
	memset(args, 0, sizeof(*args));
}

/* ------------------------------------------------------------------------
 * -o
 * ---------------------------------------------------------------------- */

static int num(const char *v, unsigned long lo, unsigned long hi, unsigned *out)
{
	char *end;
	unsigned long x;

	if (!v || !*v || *v == '-' || *v == '+')
		return -1;
	errno = 0;
	x = strtoul(v, &end, 10);
	if (errno || *end || x < lo || x > hi)
		return -1;
	*out = (unsigned)x;
	return 0;
}

/* A file-name value copied into a configuration string. */
static int path_opt(const char *name, const char *v, char *dst, size_t n,
		    char *err, size_t errlen)
{
	if (!v || !*v || strlen(v) >= n)
		return failc(EX_USAGE, err, errlen,
			     "-o %s: give a file name (at most %zu bytes)",
			     name, n - 1);
	strcpy(dst, v);
	return 0;
}

/* Tuning of memcached's slab allocator, LRU maintainer and external
 * storage: accepted, with what memlane does instead. */
static const struct {
	const char *name;
	const char *instead;
} ignored[] = {
	{"slab_reassign", "memlane's segments are reused whole; no slab "
			  "pages move"},
	{"no_slab_reassign", "memlane's segments are reused whole"},
	{"slab_automove", "memlane has no slab classes to balance"},
	{"no_slab_automove", "memlane has no slab classes to balance"},
	{"slab_automove_ratio", "memlane has no slab classes to balance"},
	{"slab_automove_window", "memlane has no slab classes to balance"},
	{"slab_automove_freeratio", "memlane has no slab classes to balance"},
	{"slab_chunk_max", "items are packed in segments at their own size"},
	{"slab_sizes", "items are packed in segments at their own size"},
	{"no_chunked_items", "items are packed in segments at their own size"},
	{"no_inline_ascii_resp", "replies are written from the item itself"},
	{"lru_maintainer", "eviction is S3-FIFO, run inline"},
	{"no_lru_maintainer", "eviction is S3-FIFO, run inline"},
	{"lru_segmented", "eviction is S3-FIFO, run inline"},
	{"no_lru_segmented", "eviction is S3-FIFO, run inline"},
	{"hot_lru_pct", "eviction is S3-FIFO, with a fixed small queue"},
	{"warm_lru_pct", "eviction is S3-FIFO, with a fixed small queue"},
	{"hot_max_factor", "eviction is S3-FIFO, with a fixed small queue"},
	{"warm_max_factor", "eviction is S3-FIFO, with a fixed small queue"},
	{"temporary_ttl", "short-lived items are evicted like any other"},
	{"tail_repair_time", "no item is ever locked at the tail"},
	{"no_hashexpand", "each core's index grows in small steps"},
	{"hash_algorithm", "keys are hashed with xxh3 always"},
	{"track_sizes", "stats sizes is not kept"},
	{"sock_cookie_id", "no socket cookie is set"},
	{"drop_privileges", "-u drops root; no seccomp filter is loaded"},
	{"no_drop_privileges", "-u drops root; no seccomp filter is loaded"},
	{"ssl_keyformat", "keys are read as PEM"},
	{"ssl_kernel_tls", "TLS runs in user space"},
	{"ext_path", "items are kept in memory only"},
	{"ext_page_size", "items are kept in memory only"},
	{"ext_wbuf_size", "items are kept in memory only"},
	{"ext_threads", "items are kept in memory only"},
	{"ext_io_depth", "items are kept in memory only"},
	{"ext_item_size", "items are kept in memory only"},
	{"ext_item_age", "items are kept in memory only"},
	{"ext_low_ttl", "items are kept in memory only"},
	{"ext_recache_rate", "items are kept in memory only"},
	{"ext_compact_under", "items are kept in memory only"},
	{"ext_drop_under", "items are kept in memory only"},
	{"ext_max_sleep", "items are kept in memory only"},
	{"ext_max_frag", "items are kept in memory only"},
	{"ext_drop_unread", "items are kept in memory only"},
};

static int one_option(struct dp_config *cfg, char *name, char *v, char *err,
		      size_t errlen)
{
	unsigned u;

#define BAD(what)                                                              \
	failc(EX_USAGE, err, errlen, "-o %s: '%s' is not %s", name,            \
	      v ? v : "", what)
	if (!strcmp(name, "maxconns_fast") || !strcmp(name, "no_maxconns_fast"))
		cfg->maxconns_fast = name[0] != 'n';
	else if (!strcmp(name, "hashpower")) {
		if (num(v, 12, 64, &u)) {
			if (v && !num(v, 65, ~0u, &u))
				return failc(DP_EXIT_FAILURE, err, errlen,
					     "Initial hashtable multiplier of "
					     "%s is too high",
					     v);
			return BAD("a power of two from 12 to 64");
		}
		cfg->hashpower = u;
	} else if (!strcmp(name, "idle_timeout")) {
		if (num(v, 0, 86400u * 365, &u))
			return BAD("a number of seconds");
		cfg->conn_idle_timeout = u;
	} else if (!strcmp(name, "lru_crawler") ||
		   !strcmp(name, "no_lru_crawler"))
		cfg->lru_crawler = name[0] != 'n';
	else if (!strcmp(name, "lru_crawler_sleep")) {
		if (num(v, 0, 1000000, &u))
			return BAD("a number of microseconds up to 1000000");
		cfg->lru_crawler_sleep = u;
	} else if (!strcmp(name, "lru_crawler_tocrawl")) {
		if (num(v, 0, ~0u, &u))
			return BAD("a number of items");
		cfg->lru_crawler_tocrawl = u;
	} else if (!strcmp(name, "read_buf_mem_limit")) {
		if (num(v, 0, 1u << 20, &u))
			return BAD("a number of megabytes");
		cfg->read_buf_mem_mb = u;
	} else if (!strcmp(name, "watcher_logbuf_size") ||
		   !strcmp(name, "worker_logbuf_size")) {
		if (num(v, 1, 1u << 20, &u))
			return BAD("a number of kilobytes");
		*(name[1] == 'a' ? &cfg->watcher_logbuf_kb
				 : &cfg->worker_logbuf_kb) = u;
	} else if (!strcmp(name, "modern") || !strcmp(name, "no_modern")) {
		/* memcached 1.6's modern defaults are memlane's: nothing */
	} else if (!strcmp(name, "ssl_chain_cert"))
		return path_opt(name, v, cfg->ssl_chain_cert,
				sizeof(cfg->ssl_chain_cert), err, errlen);
	else if (!strcmp(name, "ssl_key"))
		return path_opt(name, v, cfg->ssl_key, sizeof(cfg->ssl_key),
				err, errlen);
	else if (!strcmp(name, "ssl_ca_cert"))
		return path_opt(name, v, cfg->ssl_ca_cert,
				sizeof(cfg->ssl_ca_cert), err, errlen);
	else if (!strcmp(name, "ssl_ciphers"))
		return path_opt(name, v, cfg->ssl_ciphers,
				sizeof(cfg->ssl_ciphers), err, errlen);
	else if (!strcmp(name, "ssl_verify_mode")) {
		if (num(v, 0, 3, &u))
			return BAD("0, 1, 2 or 3");
		cfg->ssl_verify_mode = u;
	} else if (!strcmp(name, "ssl_min_version")) {
		if (num(v, 0, 3, &u))
			return BAD("0, 1, 2 or 3");
		cfg->ssl_min_version = u;
	} else if (!strcmp(name, "ssl_wbuf_size")) {
		if (num(v, 1, 1024, &u))
			return BAD("a number of kilobytes");
		cfg->ssl_wbuf_kb = u;
	} else if (!strcmp(name, "ssl_session_cache"))
		cfg->ssl_session_cache = true;
	else {
		for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]);
		     i++)
			if (!strcmp(name, ignored[i].name)) {
				dp_options_warn(cfg,
						"memlaned: warning: -o %s has "
						"no effect: %s",
						name, ignored[i].instead);
				return 0;
			}
		return failc(DP_EXIT_FAILURE, err, errlen,
			     "Illegal suboption \"%s\"", name);
	}
#undef BAD
	return 0;
}

int dp_options_extended(struct dp_config *cfg, const char *arg, char *err,
			size_t errlen)
{
	char *buf = strdup(arg), *save = NULL;
	int rc = 0;

	if (!buf)
		return failc(EX_OSERR, err, errlen, "out of memory");
	for (char *t = strtok_r(buf, ",", &save); t && !rc;
	     t = strtok_r(NULL, ",", &save)) {
		char *v = strchr(t, '=');

		if (v)
			*v++ = '\0';
		rc = one_option(cfg, t, v, err, errlen);
	}
	free(buf);
	return rc;
}

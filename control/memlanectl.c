/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memlanectl: the admin endpoint's client. Human tables by default,
 * the endpoint's JSON with --json; a clear message and a non-zero exit
 * status on any error (1: the node or the network, 2: the command line).
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#define SERVER_DEFAULT "127.0.0.1:12211"
#define NODES_MAX      64
#define COLS_MAX       16
#define ROWS_MAX       4096

struct opts {
	const char *servers[NODES_MAX];
	unsigned nservers;
	const char *token;
	bool json;
};

/* ------------------------------------------------------------------------
 * Tables: rows of cells, printed with each column as wide as its widest
 * cell; numbers to the right.
 * ---------------------------------------------------------------------- */

struct table {
	unsigned ncols, nrows;
	char *cell[ROWS_MAX][COLS_MAX];
	bool right[COLS_MAX];
};

static void table_add(struct table *t, const char *const *cells)
{
	if (t->nrows == ROWS_MAX)
		return;
	for (unsigned i = 0; i < t->ncols; i++)
		t->cell[t->nrows][i] = strdup(cells[i] ? cells[i] : "");
	t->nrows++;
}

static void table_print(struct table *t)
{
	size_t w[COLS_MAX] = {0};

	for (unsigned r = 0; r < t->nrows; r++)
		for (unsigned i = 0; i < t->ncols; i++)
			if (t->cell[r][i] && strlen(t->cell[r][i]) > w[i])
				w[i] = strlen(t->cell[r][i]);
	for (unsigned r = 0; r < t->nrows; r++) {
		for (unsigned i = 0; i < t->ncols; i++) {
			const char *s = t->cell[r][i] ? t->cell[r][i] : "";
			const char *sep = i + 1 < t->ncols ? "  " : "\n";

			if (i + 1 == t->ncols && !t->right[i])
				printf("%s%s", s, sep);
			else
				printf(t->right[i] ? "%*s%s" : "%-*s%s",
				       (int)w[i], s, sep);
			free(t->cell[r][i]);
		}
	}
	t->nrows = 0;
}

/* ------------------------------------------------------------------------
 * HTTP
 * ---------------------------------------------------------------------- */

struct body {
	char *p;
	size_t len;
};

static size_t on_data(char *d, size_t size, size_t n, void *arg)
{
	struct body *b = arg;
	char *p = realloc(b->p, b->len + size * n + 1);

	if (!p)
		return 0;
	memcpy(p + b->len, d, size * n);
	b->p = p;
	b->len += size * n;
	b->p[b->len] = 0;
	return size * n;
}

/*
 * Asks a node; returns the HTTP status (with the body in *out), or -1
 * when the node could not be reached (a message printed).
 */
static long http(const struct opts *o, const char *server, const char *method,
		 const char *path, struct body *out)
{
	CURL *h = curl_easy_init();
	struct curl_slist *hdr = NULL;
	char url[512], auth[256];
	long status = -1;
	CURLcode rc;

	memset(out, 0, sizeof(*out));
	if (!h) {
		fprintf(stderr, "memlanectl: out of memory\n");
		return -1;
	}
	snprintf(url, sizeof(url), "http://%s%s", server, path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	if (!strcmp(method, "POST")) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
	}
	if (o->token && *o->token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
			 o->token);
		hdr = curl_slist_append(hdr, auth);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	}
	rc = curl_easy_perform(h);
	if (rc != CURLE_OK)
		fprintf(stderr, "memlanectl: %s: %s\n", server,
			curl_easy_strerror(rc));
	else
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	return status;
}

/* The node's JSON answer to a request, or NULL (the error printed). */
static json_t *ask(const struct opts *o, const char *server, const char *method,
		   const char *path)
{
	struct body b;
	long status = http(o, server, method, path, &b);
	json_error_t jerr;
	json_t *j;

	if (status < 0) {
		free(b.p);
		return NULL;
	}
	j = b.p ? json_loads(b.p, 0, &jerr) : NULL;
	if (status != 200) {
		const char *msg =
			json_string_value(json_object_get(j, "error"));

		fprintf(stderr, "memlanectl: %s: %ld: %s\n", server, status,
			msg ? msg : (b.p ? b.p : "no answer"));
		json_decref(j);
		free(b.p);
		return NULL;
	}
	if (!j)
		fprintf(stderr, "memlanectl: %s: not JSON: %s\n", server,
			jerr.text);
	free(b.p);
	return j;
}

static int print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_PRESERVE_ORDER | JSON_INDENT(2));

	if (s)
		printf("%s\n", s);
	free(s);
	json_decref(j);
	return s ? 0 : 1;
}

/* Asks the first node; returns the reply when the caller is to print
 * a table of it, else NULL with the exit code in *rc: 1 when the node
 * failed, print_json()'s under --json. */
static json_t *ask_view(const struct opts *o, const char *method,
			const char *path, int *rc)
{
	json_t *j = ask(o, o->servers[0], method, path);

	if (!j) {
		*rc = 1;
		return NULL;
	}
	if (o->json) {
		*rc = print_json(j);
		return NULL;
	}
	return j;
}

static const char *num(char *buf, size_t n, json_t *v)
{
	if (json_is_integer(v))
		snprintf(buf, n, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, n, "%.4f", json_real_value(v));
	else if (json_is_string(v))
		snprintf(buf, n, "%s", json_string_value(v));
	else if (json_is_boolean(v))
		snprintf(buf, n, "%s", json_is_true(v) ? "yes" : "no");
	else
		snprintf(buf, n, "-");
	return buf;
}

/* ------------------------------------------------------------------------
 * Subcommands
 * ---------------------------------------------------------------------- */

struct cmd {
	const char *name;
	const char *args;
	const char *summary;
	int (*run)(const struct opts *o, int argc, char **argv);
};

/* "12s ago" from a unix time in ms. */
static const char *ago(char *buf, size_t n, json_t *ms)
{
	struct timespec ts;
	long long now, t = json_integer_value(ms), d;

	if (!t)
		return "-";
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	d = (now - t) / 1000;
	if (d < 0)
		d = 0;
	if (d < 120)
		snprintf(buf, n, "%llds ago", d);
	else if (d < 7200)
		snprintf(buf, n, "%lldm ago", d / 60);
	else
		snprintf(buf, n, "%lldh ago", d / 3600);
	return buf;
}

static int cmd_members(const struct opts *o, int argc, char **argv)
{
	int rc;
	static struct table t = {
		.ncols = 7, .right = {true, false, true, false, false, true}};
	json_t *j, *m;
	size_t i;

	(void)argc;
	(void)argv;
	j = ask_view(o, "GET", "/v1/members", &rc);
	if (!j)
		return rc;
	printf("ring epoch %lld, membership %s\n",
	       (long long)json_integer_value(json_object_get(j, "epoch")),
	       json_string_value(json_object_get(j, "membership")));
	table_add(&t, (const char *[]){"ID", "ADDRESS", "WEIGHT", "SELF",
				       "STATE", "INC", "LAST CHANGE"});
	json_array_foreach(json_object_get(j, "members"), i, m)
	{
		char a[32], b[32], c[32], d[32];
		const char *st = json_string_value(json_object_get(m, "state"));

		if (st && !strcmp(st, "alive") &&
		    !json_integer_value(json_object_get(m, "weight")))
			st = "drained";
		table_add(
			&t,
			(const char *[]){
				num(a, sizeof(a), json_object_get(m, "id")),
				json_string_value(
					json_object_get(m, "address")),
				num(b, sizeof(b), json_object_get(m, "weight")),
				json_is_true(json_object_get(m, "self")) ? "*"
									 : "",
				st ? st : "?",
				num(c, sizeof(c),
				    json_object_get(m, "incarnation")),
				ago(d, sizeof(d),
				    json_object_get(m, "last_change_ms"))});
	}
	table_print(&t);
	json_decref(j);
	return 0;
}

static int cmd_ring(const struct opts *o, int argc, char **argv)
{
	int rc;
	static struct table t = {.ncols = 5,
				 .right = {true, false, true, true, true}};
	json_t *j, *m;
	size_t i;

	(void)argc;
	(void)argv;
	j = ask_view(o, "GET", "/v1/ring", &rc);
	if (!j)
		return rc;
	printf("ring epoch %lld, %lld points\n",
	       (long long)json_integer_value(json_object_get(j, "epoch")),
	       (long long)json_integer_value(json_object_get(j, "points")));
	table_add(&t, (const char *[]){"ID", "ADDRESS", "WEIGHT", "POINTS",
				       "SHARE"});
	json_array_foreach(json_object_get(j, "members"), i, m)
	{
		char a[32], b[32], c[32], d[32];

		snprintf(d, sizeof(d), "%.2f%%",
			 100.0 * json_real_value(json_object_get(m, "share")));
		table_add(
			&t,
			(const char *[]){
				num(a, sizeof(a), json_object_get(m, "id")),
				json_string_value(
					json_object_get(m, "address")),
				num(b, sizeof(b), json_object_get(m, "weight")),
				num(c, sizeof(c), json_object_get(m, "points")),
				d});
	}
	table_print(&t);
	json_decref(j);
	return 0;
}

static const char *const stat_cols[] = {
	"ops",		"get_hits", "get_misses", "forwards", "forward_errors",
	"forwarded_in", "drops",
};
#define NSTAT (sizeof(stat_cols) / sizeof(stat_cols[0]))

static void stats_row(struct table *t, const char *node, const char *core,
		      json_t *o)
{
	const char *cells[COLS_MAX] = {node, core};
	char buf[NSTAT][32];

	for (size_t i = 0; i < NSTAT; i++)
		cells[2 + i] = num(buf[i], sizeof(buf[i]),
				   json_object_get(o, stat_cols[i]));
	table_add(t, cells);
}

static int cmd_stats(const struct opts *o, int argc, char **argv)
{
	static struct table t = {.ncols = 2 + NSTAT,
				 .right = {false, true, true, true, true, true,
					   true, true, true}};
	json_t *all = json_array();
	const char *head[COLS_MAX] = {"NODE",	    "CORE",   "OPS",
				      "HITS",	    "MISSES", "FORWARDS",
				      "FWD_ERRORS", "FWD_IN", "DROPS"};
	int rc = 0;

	(void)argc;
	(void)argv;
	for (unsigned s = 0; s < o->nservers; s++) {
		json_t *j = ask(o, o->servers[s], "GET", "/v1/stats");

		if (!j) {
			rc = 1;
			continue;
		}
		json_object_set_new(j, "admin_address",
				    json_string(o->servers[s]));
		json_array_append_new(all, j);
	}
	if (o->json) {
		if (json_array_size(all) == 1) {
			json_t *one = json_incref(json_array_get(all, 0));

			json_decref(all);
			all = one;
		}
		return print_json(all) | rc;
	}
	table_add(&t, head);
	for (size_t n = 0; n < json_array_size(all); n++) {
		json_t *j = json_array_get(all, n), *c;
		const char *node =
			json_string_value(json_object_get(j, "node"));
		size_t i;

		json_array_foreach(json_object_get(j, "cores"), i, c)
		{
			char core[24];

			snprintf(core, sizeof(core), "%zu", i);
			stats_row(&t, node, core, c);
		}
		stats_row(&t, node, "all", json_object_get(j, "total"));
	}
	table_print(&t);
	json_decref(all);
	return rc;
}

static int cmd_digest(const struct opts *o, int argc, char **argv)
{
	int rc;
	static const struct option lo[] = {
		{"member", required_argument, NULL, 'm'},
		{"range", required_argument, NULL, 'r'},
		{"out", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0}};
	const char *member = NULL, *range = NULL, *out = NULL;
	char path[128];
	unsigned long lo_p, hi_p;
	json_t *j;
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "m:r:o:", lo, NULL)) != -1) {
		switch (ch) {
		case 'm':
			member = optarg;
			break;
		case 'r':
			range = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		default:
			return 2;
		}
	}
	if (optind < argc || (member && range)) {
		fprintf(stderr, "memlanectl digest: give --member N or "
				"--range LO-HI (default: this node)\n");
		return 2;
	}
	if (range) {
		if (sscanf(range, "%lu-%lu", &lo_p, &hi_p) != 2 ||
		    lo_p > 0xffffffffUL || hi_p > 0xffffffffUL || lo_p > hi_p) {
			fprintf(stderr,
				"memlanectl digest: --range is LO-HI, ring "
				"points from 0 to 4294967295, LO <= HI\n");
			return 2;
		}
		snprintf(path, sizeof(path), "/v1/digest?lo=%lu&hi=%lu", lo_p,
			 hi_p);
	} else if (member) {
		snprintf(path, sizeof(path), "/v1/digest?member=%s", member);
	} else {
		json_t *m = ask(o, o->servers[0], "GET", "/v1/members");

		if (!m)
			return 1;
		snprintf(path, sizeof(path), "/v1/digest?member=%lld",
			 (long long)json_integer_value(
				 json_object_get(m, "self")));
		json_decref(m);
	}
	if (out) {
		struct body b;
		long status;
		FILE *f;

		strncat(path, "&format=binary",
			sizeof(path) - strlen(path) - 1);
		status = http(o, o->servers[0], "GET", path, &b);
		if (status != 200) {
			if (status > 0)
				fprintf(stderr, "memlanectl: %s: %ld: %s\n",
					o->servers[0], status, b.p ? b.p : "");
			free(b.p);
			return 1;
		}
		f = fopen(out, "wb");
		if (!f || fwrite(b.p, 1, b.len, f) != b.len || fclose(f)) {
			fprintf(stderr, "memlanectl: %s: %s\n", out,
				strerror(errno));
			free(b.p);
			return 1;
		}
		if (!o->json)
			printf("%s: the filter, %zu bytes\n", out, b.len);
		free(b.p);
		return 0;
	}
	j = ask_view(o, "GET", path, &rc);
	if (!j)
		return rc;
	printf("digest of %lld keys in %lld ranges (ring epoch %lld): %lld "
	       "blocks, %lld bytes, %.2f bits per key, false positives %.3f%% "
	       "in theory\n",
	       (long long)json_integer_value(json_object_get(j, "keys")),
	       (long long)json_integer_value(json_object_get(j, "ranges")),
	       (long long)json_integer_value(json_object_get(j, "epoch")),
	       (long long)json_integer_value(json_object_get(j, "blocks")),
	       (long long)json_integer_value(json_object_get(j, "bytes")),
	       json_real_value(json_object_get(j, "bits_per_key")),
	       100.0 * json_real_value(json_object_get(j, "fpr_theory")));
	json_decref(j);
	return 0;
}

static int weight_post(const struct opts *o, const char *path)
{
	json_t *m, *j;
	int rc;

	j = ask_view(o, "POST", path, &rc);
	if (!j)
		return rc;
	m = json_object_get(j, "member");
	printf("%s: weight %lld, ring epoch %lld\n",
	       json_string_value(json_object_get(m, "address")),
	       (long long)json_integer_value(json_object_get(m, "weight")),
	       (long long)json_integer_value(json_object_get(j, "epoch")));
	json_decref(j);
	return 0;
}

static int cmd_weight(const struct opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
		{"member", required_argument, NULL, 'm'}, {NULL, 0, NULL, 0}};
	const char *member = NULL;
	char path[128], *end;
	unsigned long w;
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "m:", lo, NULL)) != -1) {
		if (ch != 'm')
			return 2;
		member = optarg;
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "memlanectl weight: one weight is needed\n");
		return 2;
	}
	errno = 0;
	w = strtoul(argv[optind], &end, 10);
	if (errno || *end || argv[optind][0] < '0' || argv[optind][0] > '9' ||
	    w > 1000000) {
		fprintf(stderr,
			"memlanectl weight: '%s' is not a weight (0 to "
			"1000000)\n",
			argv[optind]);
		return 2;
	}
	if (member)
		snprintf(path, sizeof(path), "/v1/weight?value=%lu&member=%s",
			 w, member);
	else
		snprintf(path, sizeof(path), "/v1/weight?value=%lu", w);
	return weight_post(o, path);
}

static int cmd_drain(const struct opts *o, int argc, char **argv)
{
	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "memlanectl drain: takes no arguments\n");
		return 2;
	}
	return weight_post(o, "/v1/drain");
}

static int cmd_join(const struct opts *o, int argc, char **argv)
{
	int rc;
	char path[300];
	json_t *j;

	if (argc != 2 || !*argv[1] || strlen(argv[1]) > 200 ||
	    strpbrk(argv[1], "&?# ")) {
		fprintf(stderr, "memlanectl join: one seed is needed, "
				"HOST:PORT of a member's gossip port\n");
		return 2;
	}
	snprintf(path, sizeof(path), "/v1/join?seed=%s", argv[1]);
	j = ask_view(o, "POST", path, &rc);
	if (!j)
		return rc;
	printf("joined through %s: %lld members known, ring epoch %lld\n",
	       argv[1],
	       (long long)json_integer_value(json_object_get(j, "members")),
	       (long long)json_integer_value(json_object_get(j, "epoch")));
	json_decref(j);
	return 0;
}

static int cmd_leave(const struct opts *o, int argc, char **argv)
{
	int rc;
	json_t *j;

	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "memlanectl leave: takes no arguments\n");
		return 2;
	}
	j = ask_view(o, "POST", "/v1/leave", &rc);
	if (!j)
		return rc;
	printf("%s: left (incarnation %lld)\n",
	       json_string_value(json_object_get(json_object_get(j, "member"),
						 "address")),
	       (long long)json_integer_value(json_object_get(
		       json_object_get(j, "member"), "incarnation")));
	json_decref(j);
	return 0;
}

static const struct cmd cmds[] = {
	{"members", "", "the members, their weights and the ring epoch",
	 cmd_members},
	{"ring", "", "each member's points and share of the keyspace",
	 cmd_ring},
	{"stats", "",
	 "per-node and per-core ops, hits, misses, forwards, forward errors "
	 "and drops (every -s node)",
	 cmd_stats},
	{"digest", "[--member N | --range LO-HI] [--out FILE]",
	 "a Bloom digest of the keys the node holds in part of the ring "
	 "(default: its own part); --out writes the filter itself",
	 cmd_digest},
	{"weight", "[--member N] <weight>",
	 "sets a member's weight (default: this node's) on the ring this "
	 "node advertises",
	 cmd_weight},
	{"drain", "",
	 "this node owns no keys any more (weight 0) and keeps serving what "
	 "peers forward",
	 cmd_drain},
	{"join", "<host:port>",
	 "this node joins the cluster through a member's gossip port "
	 "(gossip only)",
	 cmd_join},
	{"leave", "",
	 "this node leaves the cluster gracefully: marked left at once "
	 "(gossip only)",
	 cmd_leave},
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: memlanectl [-s host:port[,host:port...]] [--token T] "
		"[--json] <command> [args]\n"
		"       memlanectl <command> --help\n\n"
		"  -s, --server  admin endpoint(s), default " SERVER_DEFAULT
		" (memlaned's -p plus 1000)\n"
		"  --token T     bearer token (or MEMLANE_ADMIN_TOKEN)\n"
		"  --json        the endpoint's JSON instead of tables\n\n"
		"commands:\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-8s %s\n", cmds[i].name, cmds[i].summary);
}

/* A later -s replaces an earlier one, as options do. */
static int split_servers(struct opts *o, char *list)
{
	o->nservers = 0;
	for (char *s = strtok(list, ","); s; s = strtok(NULL, ",")) {
		if (o->nservers == NODES_MAX) {
			fprintf(stderr, "memlanectl: more than %d servers\n",
				NODES_MAX);
			return -1;
		}
		o->servers[o->nservers++] = s;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"server", required_argument, NULL, 's'},
		{"token", required_argument, NULL, 't'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	struct opts o = {.token = getenv("MEMLANE_ADMIN_TOKEN")};
	const struct cmd *cmd = NULL;
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "+s:t:jh", lo, NULL)) != -1) {
		switch (ch) {
		case 's':
			if (split_servers(&o, optarg))
				return 2;
			break;
		case 't':
			o.token = optarg;
			break;
		case 'j':
			o.json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	if (!o.nservers)
		o.servers[o.nservers++] = SERVER_DEFAULT;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[optind], cmds[i].name))
			cmd = &cmds[i];
	if (!strcmp(argv[optind], "help")) {
		usage(stdout);
		return 0;
	}
	if (!cmd) {
		fprintf(stderr, "memlanectl: unknown command '%s'\n",
			argv[optind]);
		usage(stderr);
		return 2;
	}
	for (int i = optind + 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("usage: memlanectl [options] %s %s\n\n%s\n",
			       cmd->name, cmd->args, cmd->summary);
			return 0;
		}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmd->run(&o, argc - optind, argv + optind);
	curl_global_cleanup();
	return rc;
}

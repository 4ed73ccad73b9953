/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The admin endpoint: HTTP (libmicrohttpd, one thread of its own) and
 * JSON (jansson). Loopback by default; where it binds elsewhere a bearer
 * token is required, and a request without the right one gets 401 and
 * is counted. The library answers malformed HTTP (400) and headers past
 * its memory bound (431) itself; here every path and method is checked,
 * and every error is a JSON object {"error": "..."} with its status.
 *
 *   GET  /v1/members   the members, their weights, the ring epoch
 *   GET  /v1/ring      each member's points and share of the keyspace
 *   GET  /v1/stats     per-core and total counters
 *   GET  /v1/digest    ?member=N or ?lo=P&hi=P [&format=binary]: a Bloom
 *                      digest of the keys held in that part of the ring
 *   POST /v1/weight    ?value=W [&member=N]: a new ring
 *   POST /v1/drain     this node's weight to 0: it owns no keys, and
 *                      still serves what peers forward
 *   POST /v1/join      ?seed=HOST:PORT: push-pull with a member (gossip)
 *   POST /v1/leave     leave the cluster gracefully (gossip); without
 *                      gossip both are 501
 *   GET  /metrics      Prometheus text format
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <microhttpd.h>

#include "bloom.h"
#include "control_internal.h"

#define HTTP_MEMORY   (16 * 1024) /* per connection: headers past it get 431 */
#define HTTP_CONN_MAX 64
#define HTTP_TIMEOUT  10 /* seconds */
#define RANGES_MAX    (CTL_MEMBER_MAX * 160)

struct reply {
	unsigned status;
	char *body;
	size_t len;
	const char *type;
	const char *allow; /* 405: the methods the path takes */
};

static void reply_json(struct reply *r, unsigned status, json_t *j)
{
	r->status = status;
	r->type = "application/json";
	r->body =
		j ? json_dumps(j, JSON_PRESERVE_ORDER | JSON_INDENT(1)) : NULL;
	r->len = r->body ? strlen(r->body) : 0;
	json_decref(j);
	if (!r->body && status < 500) {
		r->status = 500;
		r->type = "text/plain";
	}
}

static void reply_error(struct reply *r, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void reply_error(struct reply *r, unsigned status, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	reply_json(r, status, json_pack("{s:s}", "error", msg));
}

static void address(const struct ctl_member *m, char *out, size_t n)
{
	snprintf(out, n, "%s:%u", m->host, m->port);
}

/* A query argument as an unsigned number; -1 if absent, -2 if bad. */
static long long arg_num(struct MHD_Connection *conn, const char *name,
			 unsigned long long max)
{
	const char *v =
		MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
	unsigned long long n;
	char *end;

	if (!v)
		return -1;
	if (*v < '0' || *v > '9')
		return -2;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || *end || n > max)
		return -2;
	return (long long)n;
}

static json_t *member_json(const struct ctl *c, unsigned i)
{
	char a[RING_HOST_MAX + 8];

	address(&c->members[i], a, sizeof(a));
	const struct ctl_view *v = &c->view[i];

	return json_pack(
		"{s:i,s:s,s:s,s:i,s:i,s:b,s:s,s:I,s:I,s:s}", "id",
		(json_int_t)i, "address", a, "host", c->members[i].host, "port",
		(json_int_t)c->members[i].port, "weight",
		(json_int_t)c->members[i].weight, "self", i == c->self, "state",
		gossip_state_name(v->state), "incarnation",
		(json_int_t)v->incarnation, "last_change_ms",
		(json_int_t)v->changed_ms, "name", v->id[0] ? v->id : a);
}

static void get_members(struct ctl *c, struct reply *r)
{
	json_t *arr = json_array();

	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i < c->nmembers; i++)
		json_array_append_new(arr, member_json(c, i));
	reply_json(r, 200,
		   json_pack("{s:I,s:i,s:s,s:o}", "epoch", (json_int_t)c->epoch,
			     "self", (json_int_t)c->self, "membership",
			     c->g ? "gossip" : "fixed", "members", arr));
	pthread_mutex_unlock(&c->lock);
}

static void get_ring(struct ctl *c, struct reply *r)
{
	json_t *arr = json_array();

	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i < c->nmembers; i++) {
		json_t *m = member_json(c, i);

		json_object_set_new(
			m, "points",
			json_integer(ring_member_npoints(c->ring, i)));
		json_object_set_new(m, "share",
				    json_real(ring_share(c->ring, i)));
		json_array_append_new(arr, m);
	}
	reply_json(r, 200,
		   json_pack("{s:I,s:i,s:o}", "epoch", (json_int_t)c->epoch,
			     "points", (json_int_t)ring_npoints(c->ring),
			     "members", arr));
	pthread_mutex_unlock(&c->lock);
}

static json_t *core_json(const struct ctl_core_stats *s)
{
	return json_pack(
		"{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "ops",
		(json_int_t)s->ops, "cmd_get", (json_int_t)s->cmd_get,
		"get_hits", (json_int_t)s->get_hits, "get_misses",
		(json_int_t)s->get_misses, "cmd_set", (json_int_t)s->cmd_set,
		"forwards", (json_int_t)s->forwards, "forward_errors",
		(json_int_t)s->forward_errors, "forwarded_in",
		(json_int_t)s->forwarded_in, "handed_off",
		(json_int_t)s->handed_off, "drops", (json_int_t)s->drops,
		"curr_connections", (json_int_t)s->curr_connections);
}

static void get_stats(struct ctl *c, struct reply *r)
{
	struct ctl_core_stats cs[CTL_CORE_MAX], t = {0};
	unsigned n = c->ops->stats(c->ops->arg, cs, CTL_CORE_MAX);
	json_t *cores = json_array(), *total, *gossip = NULL, *out;
	char a[RING_HOST_MAX + 8];

	for (unsigned i = 0; i < n; i++) {
		json_t *o = core_json(&cs[i]);

		json_object_set_new(o, "core", json_integer(i));
		json_array_append_new(cores, o);
		t.ops += cs[i].ops;
		t.cmd_get += cs[i].cmd_get;
		t.get_hits += cs[i].get_hits;
		t.get_misses += cs[i].get_misses;
		t.cmd_set += cs[i].cmd_set;
		t.forwards += cs[i].forwards;
		t.forward_errors += cs[i].forward_errors;
		t.forwarded_in += cs[i].forwarded_in;
		t.handed_off += cs[i].handed_off;
		t.drops += cs[i].drops;
		t.curr_connections += cs[i].curr_connections;
	}
	total = core_json(&t);
	if (c->g) {
		struct gossip_stats gs;
		unsigned aware;

		ctl_gossip_stats(c, &gs, &aware);
		gossip = json_pack(
			"{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:i}",
			"sent", (json_int_t)gs.sent, "received",
			(json_int_t)gs.received, "bad_mac",
			(json_int_t)gs.bad_mac, "replayed",
			(json_int_t)gs.replayed, "malformed",
			(json_int_t)gs.malformed, "oversized",
			(json_int_t)gs.oversized, "probes",
			(json_int_t)gs.probes, "probes_failed",
			(json_int_t)gs.probes_failed, "suspicions",
			(json_int_t)gs.suspicions, "refutations",
			(json_int_t)gs.refutations, "declared_dead",
			(json_int_t)gs.declared_dead, "pushpulls",
			(json_int_t)gs.pushpulls, "awareness",
			(json_int_t)aware);
	}
	pthread_mutex_lock(&c->lock);
	address(&c->members[c->self], a, sizeof(a));
	out = json_pack("{s:s,s:I,s:o,s:o,s:{s:I,s:I}}", "node", a, "epoch",
			(json_int_t)c->epoch, "total", total, "cores", cores,
			"admin", "requests",
			(json_int_t)atomic_load(&c->requests), "unauthorized",
			(json_int_t)atomic_load(&c->unauthorized));
	pthread_mutex_unlock(&c->lock);
	if (gossip && c->h) {
		struct ctl_handoff_stats hs;

		ctl_handoff_stats(c, &hs);
		json_object_set_new(
			gossip, "handoff",
			json_pack("{s:I,s:I,s:I,s:I,s:I}", "sent",
				  (json_int_t)hs.sent, "send_failed",
				  (json_int_t)hs.send_failed, "skipped",
				  (json_int_t)hs.skipped, "received",
				  (json_int_t)hs.received, "dropped",
				  (json_int_t)hs.dropped));
	}
	if (gossip && out)
		json_object_set_new(out, "gossip", gossip);
	reply_json(r, 200, out);
}

static void get_digest(struct ctl *c, struct MHD_Connection *conn,
		       struct reply *r)
{
	const char *fmt = MHD_lookup_connection_value(
		conn, MHD_GET_ARGUMENT_KIND, "format");
	long long member = arg_num(conn, "member", CTL_MEMBER_MAX - 1);
	long long lo = arg_num(conn, "lo", UINT32_MAX);
	long long hi = arg_num(conn, "hi", UINT32_MAX);
	static struct ring_range rs[RANGES_MAX];
	unsigned n;
	struct bloom *b = NULL;
	uint64_t epoch;
	int rc;

	if (fmt && strcmp(fmt, "binary") && strcmp(fmt, "json"))
		return reply_error(r, 400, "format is json or binary");
	if (member == -2 || lo == -2 || hi == -2)
		return reply_error(r, 400,
				   "member, lo and hi are numbers "
				   "(lo and hi below 2^32)");
	if ((member >= 0) == (lo >= 0 || hi >= 0) || (lo >= 0) != (hi >= 0))
		return reply_error(r, 400, "give member=N, or lo=P and hi=P");
	if (lo > hi)
		return reply_error(r, 400, "lo is above hi");
	pthread_mutex_lock(&c->lock);
	epoch = c->epoch;
	if (member >= (long long)c->nmembers) {
		pthread_mutex_unlock(&c->lock);
		return reply_error(r, 404, "no member %lld", member);
	}
	if (member >= 0) {
		n = ring_ranges(c->ring, (unsigned)member, rs, RANGES_MAX);
		n = n > RANGES_MAX ? RANGES_MAX : n;
	} else {
		rs[0].lo = (uint32_t)lo;
		rs[0].hi = (uint32_t)hi;
		n = 1;
	}
	pthread_mutex_unlock(&c->lock);
	/* the cores walk their shards while they serve; this thread waits */
	rc = c->ops->digest(c->ops->arg, rs, n, &b);
	if (rc)
		return reply_error(r, 503, "digest: %s", strerror(-rc));
	if (fmt && !strcmp(fmt, "binary")) {
		r->len = bloom_serialised_size(b);
		r->body = malloc(r->len);
		if (r->body)
			bloom_serialise(b, r->body, r->len);
		r->status = r->body ? 200 : 500;
		r->type = "application/octet-stream";
	} else {
		reply_json(
			r, 200,
			json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:f}", "epoch",
				  (json_int_t)epoch, "member",
				  (json_int_t)member, "ranges", (json_int_t)n,
				  "keys", (json_int_t)bloom_count(b), "blocks",
				  (json_int_t)bloom_nblocks(b), "bytes",
				  (json_int_t)bloom_serialised_size(b),
				  "bits_per_key",
				  bloom_count(b)
					  ? (double)bloom_nblocks(b) * 256.0 /
						    (double)bloom_count(b)
					  : 0.0,
				  "fpr_theory", bloom_fpr_theory(b)));
	}
	bloom_free(b);
}

static void post_weight(struct ctl *c, struct MHD_Connection *conn,
			struct reply *r, bool drain)
{
	long long w = drain ? 0 : arg_num(conn, "value", 1000000);
	long long member = drain ? -1 : arg_num(conn, "member", 1000000);
	unsigned m;
	int rc;

	if (w < 0)
		return reply_error(r, 400,
				   "value=W is needed, a weight from 0 to "
				   "1000000");
	if (member == -2)
		return reply_error(r, 400, "member is a number");
	m = member < 0 ? c->self : (unsigned)member;
	if (m >= c->nmembers)
		return reply_error(r, 404, "no member %u", m);
	if (c->g && m != c->self)
		return reply_error(r, 400,
				   "with gossip a member sets its own weight: "
				   "ask member %u's endpoint",
				   m);
	rc = c->g ? ctl_gossip_weight(c, (uint32_t)w)
		  : ctl_set_weight(c, m, (uint32_t)w);
	if (rc == -EINVAL)
		return reply_error(r, 409,
				   "no member would own a key: weight %lld "
				   "refused",
				   w);
	if (rc)
		return reply_error(r, 500, "%s", strerror(-rc));
	pthread_mutex_lock(&c->lock);
	reply_json(r, 200,
		   json_pack("{s:I,s:o}", "epoch", (json_int_t)c->epoch,
			     "member", member_json(c, m)));
	pthread_mutex_unlock(&c->lock);
}

static void post_join(struct ctl *c, struct MHD_Connection *conn,
		      struct reply *r)
{
	const char *seed = MHD_lookup_connection_value(
		conn, MHD_GET_ARGUMENT_KIND, "seed");
	char err[200];

	if (!seed || !*seed)
		return reply_error(r, 400,
				   "seed=HOST:PORT is needed, a "
				   "member's gossip address");
	if (ctl_gossip_join(c, seed, err, sizeof(err)))
		return reply_error(r, 502, "%s", err);
	pthread_mutex_lock(&c->lock);
	reply_json(r, 200,
		   json_pack("{s:I,s:i}", "epoch", (json_int_t)c->epoch,
			     "members", (json_int_t)c->nmembers));
	pthread_mutex_unlock(&c->lock);
}

static void post_leave(struct ctl *c, struct reply *r)
{
	ctl_gossip_leave(c);
	pthread_mutex_lock(&c->lock);
	reply_json(r, 200,
		   json_pack("{s:I,s:o}", "epoch", (json_int_t)c->epoch,
			     "member", member_json(c, c->self)));
	pthread_mutex_unlock(&c->lock);
}

static void get_metrics(struct ctl *c, struct reply *r)
{
	struct ctl_buf b = {0};

	ctl_metrics(c, &b);
	if (b.oom) {
		free(b.p);
		return reply_error(r, 500, "out of memory");
	}
	r->status = 200;
	r->type = "text/plain; version=0.0.4; charset=utf-8";
	r->body = b.p;
	r->len = b.len;
}

/* Whether the request carries the token, compared in constant time. */
static bool authorized(const struct ctl *c, struct MHD_Connection *conn)
{
	const char *h;
	size_t n = strlen(c->token), hn;
	unsigned char diff = 0;

	if (!n)
		return true;
	h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
					MHD_HTTP_HEADER_AUTHORIZATION);
	if (!h || strncmp(h, "Bearer ", 7))
		return false;
	h += 7;
	hn = strlen(h);
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)(c->token[i] ^ (i < hn ? h[i] : 0));
	return diff == 0 && hn == n;
}

struct route {
	const char *path;
	const char *method;
	int id;
};

enum {
	R_MEMBERS,
	R_RING,
	R_STATS,
	R_DIGEST,
	R_WEIGHT,
	R_DRAIN,
	R_JOIN,
	R_LEAVE,
	R_METRICS
};

static const struct route routes[] = {
	{"/v1/members", "GET", R_MEMBERS}, {"/v1/ring", "GET", R_RING},
	{"/v1/stats", "GET", R_STATS},	   {"/v1/digest", "GET", R_DIGEST},
	{"/v1/weight", "POST", R_WEIGHT},  {"/v1/drain", "POST", R_DRAIN},
	{"/v1/join", "POST", R_JOIN},	   {"/v1/leave", "POST", R_LEAVE},
	{"/metrics", "GET", R_METRICS},
};

static void dispatch(struct ctl *c, struct MHD_Connection *conn,
		     const char *url, const char *method, struct reply *r)
{
	const struct route *rt = NULL;

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (!strcmp(url, routes[i].path))
			rt = &routes[i];
	if (!rt) {
		atomic_fetch_add(&c->not_found, 1);
		return reply_error(r, 404, "no such path: %.100s", url);
	}
	if (strcmp(method, rt->method) &&
	    !(!strcmp(method, "HEAD") && !strcmp(rt->method, "GET"))) {
		atomic_fetch_add(&c->bad_requests, 1);
		r->allow = rt->method;
		return reply_error(r, 405, "%s takes %s, not %.20s", rt->path,
				   rt->method, method);
	}
	switch (rt->id) {
	case R_MEMBERS:
		return get_members(c, r);
	case R_RING:
		return get_ring(c, r);
	case R_STATS:
		return get_stats(c, r);
	case R_DIGEST:
		return get_digest(c, conn, r);
	case R_WEIGHT:
		return post_weight(c, conn, r, false);
	case R_DRAIN:
		return post_weight(c, conn, r, true);
	case R_JOIN:
	case R_LEAVE:
		if (!c->g)
			return reply_error(r, 501,
					   "%s needs gossip membership; the "
					   "members are fixed (--peers)",
					   rt->path + 4);
		return rt->id == R_JOIN ? post_join(c, conn, r)
					: post_leave(c, r);
	default:
		return get_metrics(c, r);
	}
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn,
			      const char *url, const char *method,
			      const char *version, const char *upload,
			      size_t *upload_size, void **req_cls)
{
	static int started;
	struct ctl *c = cls;
	struct reply r = {0};
	struct MHD_Response *resp;
	enum MHD_Result ret;

	(void)version;
	(void)upload;
	if (!*req_cls) {
		*req_cls = &started; /* headers in: the body, if any, next */
		return MHD_YES;
	}
	if (*upload_size) {
		*upload_size = 0; /* no path takes a body: it is dropped */
		return MHD_YES;
	}
	atomic_fetch_add(&c->requests, 1);
	if (!authorized(c, conn)) {
		atomic_fetch_add(&c->unauthorized, 1);
		reply_error(&r, 401, "a valid bearer token is required");
	} else {
		dispatch(c, conn, url, method, &r);
	}
	resp = MHD_create_response_from_buffer(r.len, r.body ? r.body : "",
					       r.body ? MHD_RESPMEM_MUST_FREE
						      : MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		free(r.body);
		return MHD_NO;
	}
	if (r.type)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
					r.type);
	if (r.status == 401)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					"Bearer realm=\"memlane\"");
	if (r.allow)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r.allow);
	ret = MHD_queue_response(conn, r.status, resp);
	MHD_destroy_response(resp);
	return ret;
}

int ctl_admin_start(struct ctl *c, const struct ctl_params *p, char *err,
		    size_t errlen)
{
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
	struct sockaddr_in a4 = {.sin_family = AF_INET};
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
	const struct sockaddr *sa;
	const union MHD_DaemonInfo *info;

	if (inet_pton(AF_INET, p->admin_addr, &a4.sin_addr) == 1) {
		a4.sin_port = htons(p->admin_port);
		sa = (const struct sockaddr *)&a4;
	} else if (inet_pton(AF_INET6, p->admin_addr, &a6.sin6_addr) == 1) {
		a6.sin6_port = htons(p->admin_port);
		sa = (const struct sockaddr *)&a6;
		flags |= MHD_USE_IPv6;
	} else {
		snprintf(err, errlen, "--admin: %s is not an IP address",
			 p->admin_addr);
		return -EINVAL;
	}
	c->httpd = MHD_start_daemon(
		flags, p->admin_port, NULL, NULL, handle, c,
		MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		(size_t)HTTP_MEMORY, MHD_OPTION_CONNECTION_LIMIT,
		(unsigned)HTTP_CONN_MAX, MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned)HTTP_TIMEOUT, MHD_OPTION_END);
	if (!c->httpd) {
		if (!p->admin_required) {
			fprintf(stderr,
				"memlaned: warning: admin endpoint %s:%u: "
				"cannot listen; running without it\n",
				p->admin_addr, p->admin_port);
			return 0;
		}
		snprintf(err, errlen, "admin endpoint %s:%u: cannot listen",
			 p->admin_addr, p->admin_port);
		return -EADDRINUSE;
	}
	info = MHD_get_daemon_info(c->httpd, MHD_DAEMON_INFO_BIND_PORT);
	c->port = info ? info->port : p->admin_port;
	if (p->verbose)
		fprintf(stderr, "memlaned: admin endpoint on %s:%u\n",
			p->admin_addr, c->port);
	return 0;
}

void ctl_admin_stop(struct ctl *c)
{
	if (c->httpd)
		MHD_stop_daemon(c->httpd);
	c->httpd = NULL;
}

/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memlane-bench cluster: load on a cluster, the way its two kinds of
 * client put it there.
 *
 *   --mode plain    every connection talks to the first server only, as
 *                   a client that knows one node (pymemcache's Client);
 *                   the node forwards what it does not own
 *   --mode ketama   every connection holds one socket per server and
 *                   sends each request to the key's owner by ketama (the
 *                   ring/ library, bit-exact with libmemcached's)
 *   --mode forward  one connection to the first server, one request at
 *                   a time, alternating keys that server owns and keys
 *                   it forwards: the difference of the median latencies
 *                   is the cost of one forward
 *
 * Each connection has one request outstanding (a closed loop); GET:SET
 * is --ratio, keys uniform over --keys, preloaded by ketama first.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"
#include "ring.h"

#define SERVERS_MAX 16
#define CONNS_MAX   256
#define KEY_LEN	    16
#define LAT_MAX	    (1u << 22)

struct copts {
	struct ring_member srv[SERVERS_MAX];
	unsigned nsrv;
	const char *mode;
	unsigned conns;
	double duration, warmup, ratio;
	uint64_t keys;
	unsigned vlen;
	bool json;
};

struct cconn {
	int fd[SERVERS_MAX];
	int busy; /* the socket with the request out, or -1 */
	bool get;
	uint64_t t0;
	char in[4096];
	size_t inlen;
	bool local; /* forward mode: the key is the first server's */
};

/* Whether the buffer holds a whole reply: a get's ends at END (the values
 * are letters), anything else at its first line. */
static bool reply_done(const struct cconn *k)
{
	if (k->inlen < 2 || memcmp(k->in + k->inlen - 2, "\r\n", 2))
		return false;
	if (!k->get)
		return true;
	return k->inlen >= 5 && !memcmp(k->in + k->inlen - 5, "END\r\n", 5);
}

static double pct(uint64_t *lat, size_t n, double p)
{
	if (!n)
		return 0;
	return (double)lat[(size_t)(p * (double)(n - 1))] / 1000.0;
}

/* Sends the next request of connection k; returns the socket used. */
static int issue(const struct copts *o, const struct ring *r, struct cconn *k,
		 struct bench_rng *rng, bool ketama, int want_local)
{
	char key[KEY_LEN], buf[256 + 4096];
	uint64_t idx;
	unsigned s;
	int n;

	for (;;) {
		idx = bench_rng_below(rng, o->keys);
		bench_key_format(idx, KEY_LEN, key);
		s = ring_lookup(r, key, KEY_LEN);
		if (want_local < 0 || (s == 0) == (want_local == 1))
			break;
	}
	k->local = s == 0;
	if (!ketama)
		s = 0;
	k->get = bench_rng_double(rng) < o->ratio;
	if (k->get) {
		n = snprintf(buf, sizeof(buf), "get %.*s\r\n", KEY_LEN, key);
	} else {
		n = snprintf(buf, sizeof(buf), "set %.*s 0 0 %u\r\n", KEY_LEN,
			     key, o->vlen);
		memset(buf + n, 'v', o->vlen);
		memcpy(buf + n + o->vlen, "\r\n", 2);
		n += (int)o->vlen + 2;
	}
	k->inlen = 0;
	k->busy = (int)s;
	k->t0 = bench_now_ns();
	if (bench_send_all(k->fd[s], buf, (size_t)n))
		return -1;
	return (int)s;
}

static int preload(const struct copts *o, const struct ring *r, int *fds)
{
	char key[KEY_LEN], buf[256 + 4096], line[64];

	for (uint64_t i = 0; i < o->keys; i++) {
		unsigned s;
		int n;
		size_t got = 0;

		bench_key_format(i, KEY_LEN, key);
		s = ring_lookup(r, key, KEY_LEN);
		n = snprintf(buf, sizeof(buf), "set %.*s 0 0 %u noreply\r\n",
			     KEY_LEN, key, o->vlen);
		memset(buf + n, 'v', o->vlen);
		memcpy(buf + n + o->vlen, "\r\n", 2);
		if (bench_send_all(fds[s], buf, (size_t)n + o->vlen + 2))
			return -1;
		if (i % 1000 != 999 && i + 1 != o->keys)
			continue;
		/* a round trip now and then, so the noreplies have landed */
		for (unsigned j = 0; j < o->nsrv; j++) {
			if (bench_send_all(fds[j], "mn\r\n", 4))
				return -1;
			got = 0;
			while (got < 4) {
				ssize_t m = recv(fds[j], line + got,
						 sizeof(line) - got, 0);

				if (m <= 0)
					return -1;
				got += (size_t)m;
			}
		}
	}
	return 0;
}

static int parse_servers(struct copts *o, char *list)
{
	for (char *s = strtok(list, ","); s; s = strtok(NULL, ",")) {
		char *port = strrchr(s, ':');

		if (!port || o->nsrv == SERVERS_MAX)
			return -1;
		*port++ = 0;
		snprintf(o->srv[o->nsrv].host, RING_HOST_MAX, "%s", s);
		o->srv[o->nsrv].port = (uint16_t)atoi(port);
		o->srv[o->nsrv].weight = 1;
		o->nsrv++;
	}
	return o->nsrv ? 0 : -1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: memlane-bench cluster --servers H:P,H:P,... [options]\n"
		"  --mode plain|ketama|forward  (default ketama)\n"
		"  --conns N        connections (default 16; forward: 1)\n"
		"  --duration S     measured seconds (default 5)\n"
		"  --warmup S       (default 1)\n"
		"  --keys N         (default 100000)\n"
		"  --ratio R        GET share (default 0.9)\n"
		"  --value-size N   (default 32)\n"
		"  --json\n");
}

int bench_cluster_main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"servers", required_argument, NULL, 's'},
		{"mode", required_argument, NULL, 'm'},
		{"conns", required_argument, NULL, 'c'},
		{"duration", required_argument, NULL, 'd'},
		{"warmup", required_argument, NULL, 'w'},
		{"keys", required_argument, NULL, 'k'},
		{"ratio", required_argument, NULL, 'r'},
		{"value-size", required_argument, NULL, 'v'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	struct copts o = {.mode = "ketama",
			  .conns = 16,
			  .duration = 5,
			  .warmup = 1,
			  .ratio = 0.9,
			  .keys = 100000,
			  .vlen = 32};
	static struct cconn conns[CONNS_MAX];
	static struct pollfd pfd[CONNS_MAX];
	struct ring_params rp;
	struct ring *r = NULL;
	struct bench_rng rng;
	uint64_t *lat[2], nlat[2] = {0, 0}, done = 0, t_start, t_meas, t_end;
	bool ketama, forward;
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (ch) {
		case 's':
			if (parse_servers(&o, optarg)) {
				fprintf(stderr, "cluster: bad --servers\n");
				return 2;
			}
			break;
		case 'm':
			o.mode = optarg;
			break;
		case 'c':
			o.conns = (unsigned)atoi(optarg);
			break;
		case 'd':
			o.duration = atof(optarg);
			break;
		case 'w':
			o.warmup = atof(optarg);
			break;
		case 'k':
			o.keys = strtoull(optarg, NULL, 10);
			break;
		case 'r':
			o.ratio = atof(optarg);
			break;
		case 'v':
			o.vlen = (unsigned)atoi(optarg);
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
	ketama = !strcmp(o.mode, "ketama");
	forward = !strcmp(o.mode, "forward");
	if (!o.nsrv || (!ketama && !forward && strcmp(o.mode, "plain")) ||
	    o.conns < 1 || o.conns > CONNS_MAX || o.keys < 2 || o.vlen > 4000 ||
	    o.duration <= 0) {
		usage(stderr);
		return 2;
	}
	if (forward)
		o.conns = 1;
	rp = (struct ring_params){.members = o.srv, .nmembers = o.nsrv};
	if (ring_create(&rp, &r)) {
		fprintf(stderr, "cluster: cannot build the ring\n");
		return 2;
	}
	lat[0] = malloc(sizeof(uint64_t) * LAT_MAX);
	lat[1] = malloc(sizeof(uint64_t) * LAT_MAX);
	for (unsigned c = 0; c < o.conns; c++) {
		conns[c].busy = -1;
		for (unsigned s = 0; s < o.nsrv; s++) {
			conns[c].fd[s] = ketama || s == 0
						 ? bench_dial(o.srv[s].host,
							      o.srv[s].port)
						 : -1;
			if ((ketama || s == 0) && conns[c].fd[s] < 0) {
				fprintf(stderr, "cluster: %s:%u: %s\n",
					o.srv[s].host, o.srv[s].port,
					strerror(-conns[c].fd[s]));
				return 1;
			}
		}
	}
	{
		int pre[SERVERS_MAX];

		for (unsigned s = 0; s < o.nsrv; s++)
			pre[s] = bench_dial(o.srv[s].host, o.srv[s].port);
		for (unsigned s = 0; s < o.nsrv; s++)
			if (pre[s] < 0 ||
			    (s + 1 == o.nsrv && preload(&o, r, pre))) {
				fprintf(stderr, "cluster: preload failed\n");
				return 1;
			}
		for (unsigned s = 0; s < o.nsrv; s++)
			close(pre[s]);
	}
	bench_rng_seed(&rng, 42);
	t_start = bench_now_ns();
	t_meas = t_start + (uint64_t)(o.warmup * 1e9);
	t_end = t_meas + (uint64_t)(o.duration * 1e9);
	for (unsigned c = 0; c < o.conns; c++)
		if (issue(&o, r, &conns[c], &rng, ketama,
			  forward ? (int)(c & 1) : -1) < 0)
			return 1;
	for (uint64_t now = t_start; now < t_end; now = bench_now_ns()) {
		int n;

		for (unsigned c = 0; c < o.conns; c++) {
			pfd[c].fd = conns[c].fd[conns[c].busy];
			pfd[c].events = POLLIN;
		}
		n = poll(pfd, o.conns, 1000);
		if (n < 0 && errno != EINTR)
			return 1;
		for (unsigned c = 0; c < o.conns && n > 0; c++) {
			struct cconn *k = &conns[c];
			ssize_t m;

			if (!(pfd[c].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			m = recv(pfd[c].fd, k->in + k->inlen,
				 sizeof(k->in) - k->inlen, 0);
			if (m <= 0) {
				fprintf(stderr, "cluster: a server closed\n");
				return 1;
			}
			k->inlen += (size_t)m;
			if (k->inlen == sizeof(k->in))
				k->inlen = 0; /* a value: only its end counts */
			if (!reply_done(k))
				continue;
			now = bench_now_ns();
			if (now >= t_meas) {
				unsigned w = forward && !k->local;

				done++;
				if (nlat[w] < LAT_MAX)
					lat[w][nlat[w]++] = now - k->t0;
			}
			if (issue(&o, r, k, &rng, ketama,
				  forward ? (int)((done + c) & 1) : -1) < 0)
				return 1;
		}
	}
	qsort(lat[0], nlat[0], sizeof(uint64_t), bench_cmp_u64);
	qsort(lat[1], nlat[1], sizeof(uint64_t), bench_cmp_u64);
	if (forward) {
		double l = pct(lat[0], nlat[0], 0.5),
		       f = pct(lat[1], nlat[1], 0.5);

		printf(o.json ? "{\"mode\": \"forward\", \"local_p50_us\": "
				"%.2f, \"forwarded_p50_us\": %.2f, "
				"\"forward_cost_us\": %.2f, \"samples\": "
				"%llu}\n"
			      : "forward: local p50 %.2f us, forwarded p50 "
				"%.2f us, one forward %.2f us (%llu samples)\n",
		       l, f, f - l, (unsigned long long)(nlat[0] + nlat[1]));
	} else {
		double secs = o.duration;

		printf(o.json ? "{\"mode\": \"%s\", \"ops_per_s\": %.0f, "
				"\"p50_us\": %.1f, \"p99_us\": %.1f, "
				"\"p999_us\": %.1f}\n"
			      : "%s: %.0f ops/s, p50 %.1f us, p99 %.1f us, "
				"p99.9 %.1f us\n",
		       o.mode, (double)done / secs, pct(lat[0], nlat[0], 0.5),
		       pct(lat[0], nlat[0], 0.99), pct(lat[0], nlat[0], 0.999));
	}
	ring_free(r);
	free(lat[0]);
	free(lat[1]);
	return 0;
}

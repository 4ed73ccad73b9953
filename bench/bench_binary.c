/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memlane-bench binary: memcached's binary protocol under load, against
 * any server that speaks it (memlaned, memcached).
 *
 * --conns connections, each with --depth requests in flight: a batch of
 * depth frames is written at once and the next goes out when the whole
 * batch is answered (depth 1 is a closed loop of single requests). GET
 * and SET in --ratio, 16-byte keys uniform over --keys, 32-byte values,
 * the keys set first. Reports requests per second and the latency of a
 * batch (p50, p99), after --warmup seconds, over --duration.
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

#define CONNS_MAX 256
#define DEPTH_MAX 256
#define KEY_LEN	  16
#define VAL_LEN	  32
#define HDR	  24
#define LAT_MAX	  (1u << 22)

struct bconn {
	int fd;
	unsigned want; /* responses still due for the batch */
	uint64_t sent_ns;
	char in[1 << 16];
	size_t inlen;
};

struct bopts {
	const char *host;
	unsigned port, conns, depth;
	double duration, warmup;
	uint64_t keys;
	unsigned get_pct;
	bool json;
};

static size_t put_frame(char *p, unsigned op, uint64_t key, bool value)
{
	unsigned elen = value ? 8 : 0, vlen = value ? VAL_LEN : 0;
	uint32_t body = elen + KEY_LEN + vlen;

	memset(p, 0, HDR + elen);
	p[0] = (char)0x80;
	p[1] = (char)op;
	p[3] = KEY_LEN;
	p[4] = (char)elen;
	p[8] = (char)(body >> 24);
	p[9] = (char)(body >> 16);
	p[10] = (char)(body >> 8);
	p[11] = (char)body;
	bench_key_format(key, KEY_LEN, p + HDR + elen);
	if (value)
		memset(p + HDR + elen + KEY_LEN, 'v', VAL_LEN);
	return HDR + body;
}

/* Takes whole responses from k->in; returns how many, -1 on a bad one. */
static int take(struct bconn *k)
{
	size_t off = 0;
	int n = 0;

	while (k->inlen - off >= HDR) {
		const unsigned char *h = (const unsigned char *)k->in + off;
		size_t body = (size_t)h[8] << 24 | (size_t)h[9] << 16 |
			      (size_t)h[10] << 8 | h[11];

		if (h[0] != 0x81)
			return -1;
		if (k->inlen - off < HDR + body)
			break;
		off += HDR + body;
		n++;
	}
	memmove(k->in, k->in + off, k->inlen - off);
	k->inlen -= off;
	return n;
}

static int batch(const struct bopts *o, struct bconn *k, struct bench_rng *rng)
{
	static __thread char buf[DEPTH_MAX * (HDR + 8 + KEY_LEN + VAL_LEN)];
	size_t len = 0;

	for (unsigned i = 0; i < o->depth; i++) {
		uint64_t key = bench_rng_below(rng, o->keys);
		bool get = bench_rng_below(rng, 100) < o->get_pct;

		len += put_frame(buf + len, get ? 0x00 : 0x01, key, !get);
	}
	k->want = o->depth;
	k->sent_ns = bench_now_ns();
	return bench_send_all(k->fd, buf, len);
}

static int preload(const struct bopts *o, struct bconn *k)
{
	char buf[64 * (HDR + 8 + KEY_LEN + VAL_LEN)];

	for (uint64_t key = 0; key < o->keys;) {
		size_t len = 0;
		unsigned n = 0;

		for (; n < 64 && key < o->keys; n++)
			len += put_frame(buf + len, 0x01, key++, true);
		if (bench_send_all(k->fd, buf, len))
			return -1;
		while (n) {
			ssize_t r = recv(k->fd, k->in + k->inlen,
					 sizeof(k->in) - k->inlen, 0);
			int got;

			if (r <= 0)
				return -1;
			k->inlen += (size_t)r;
			got = take(k);
			if (got < 0)
				return -1;
			n -= (unsigned)got;
		}
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: memlane-bench binary --port P [--host A] "
		   "[--conns N] [--depth D]\n"
		   "       [--duration S] [--warmup S] [--keys K] "
		   "[--ratio G:S] [--json]\n");
}

int bench_binary_main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"host", required_argument, NULL, 'H'},
		{"port", required_argument, NULL, 'p'},
		{"conns", required_argument, NULL, 'c'},
		{"depth", required_argument, NULL, 'd'},
		{"duration", required_argument, NULL, 'D'},
		{"warmup", required_argument, NULL, 'w'},
		{"keys", required_argument, NULL, 'k'},
		{"ratio", required_argument, NULL, 'r'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct bopts o = {.host = "127.0.0.1",
			  .conns = 16,
			  .depth = 1,
			  .duration = 5,
			  .warmup = 1,
			  .keys = 100000,
			  .get_pct = 90};
	struct bconn *k;
	struct pollfd pfd[CONNS_MAX];
	struct bench_rng rng;
	uint64_t *lat, nlat = 0, done = 0, v, t0, t_end, t_meas;
	int ch, rc = 1;
	unsigned g, s;

	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (ch) {
		case 'H':
			o.host = optarg;
			break;
		case 'p':
		case 'c':
		case 'd':
		case 'k':
			if (bench_parse_u64(optarg, &v) || !v) {
				usage(stderr);
				return 2;
			}
			if (ch == 'p')
				o.port = (unsigned)v;
			else if (ch == 'c')
				o.conns = (unsigned)v;
			else if (ch == 'd')
				o.depth = (unsigned)v;
			else
				o.keys = v;
			break;
		case 'D':
		case 'w':
			if (bench_parse_double(optarg, ch == 'D' ? &o.duration
								 : &o.warmup)) {
				usage(stderr);
				return 2;
			}
			break;
		case 'r':
			if (sscanf(optarg, "%u:%u", &g, &s) != 2 ||
			    g + s == 0) {
				usage(stderr);
				return 2;
			}
			o.get_pct = g * 100 / (g + s);
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
	if (!o.port || o.conns > CONNS_MAX || o.depth > DEPTH_MAX) {
		usage(stderr);
		return 2;
	}
	k = calloc(o.conns, sizeof(*k));
	lat = malloc(sizeof(*lat) * LAT_MAX);
	if (!k || !lat)
		goto out;
	for (unsigned i = 0; i < o.conns; i++) {
		k[i].fd = bench_dial(o.host, o.port);
		if (k[i].fd < 0) {
			fprintf(stderr,
				"memlane-bench binary: cannot connect "
				"to %s:%u\n",
				o.host, o.port);
			goto out;
		}
		pfd[i] = (struct pollfd){.fd = k[i].fd, .events = POLLIN};
	}
	if (preload(&o, &k[0])) {
		fprintf(stderr, "memlane-bench binary: preload failed\n");
		goto out;
	}
	bench_rng_seed(&rng, 42);
	t0 = bench_now_ns();
	t_meas = t0 + (uint64_t)(o.warmup * 1e9);
	t_end = t_meas + (uint64_t)(o.duration * 1e9);
	for (unsigned i = 0; i < o.conns; i++)
		if (batch(&o, &k[i], &rng))
			goto out;
	for (;;) {
		uint64_t now;

		if (poll(pfd, o.conns, 1000) < 0 && errno != EINTR)
			goto out;
		now = bench_now_ns();
		for (unsigned i = 0; i < o.conns; i++) {
			ssize_t r;
			int got;

			if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = recv(k[i].fd, k[i].in + k[i].inlen,
				 sizeof(k[i].in) - k[i].inlen, 0);
			if (r <= 0) {
				fprintf(stderr, "memlane-bench binary: the "
						"server closed\n");
				goto out;
			}
			k[i].inlen += (size_t)r;
			got = take(&k[i]);
			if (got < 0) {
				fprintf(stderr, "memlane-bench binary: not a "
						"binary response\n");
				goto out;
			}
			k[i].want -= (unsigned)got;
			if (k[i].want)
				continue;
			if (k[i].sent_ns >= t_meas && now <= t_end) {
				done += o.depth;
				if (nlat < LAT_MAX)
					lat[nlat++] = now - k[i].sent_ns;
			}
			if (now < t_end && batch(&o, &k[i], &rng))
				goto out;
		}
		if (now >= t_end) {
			bool idle = true;

			for (unsigned i = 0; i < o.conns; i++)
				idle &= k[i].want == 0;
			if (idle || now > t_end + 2000000000ull)
				break;
		}
	}
	qsort(lat, nlat, sizeof(*lat), bench_cmp_u64);
	{
		double ops = (double)done / o.duration;
		double p50 = nlat ? (double)lat[nlat / 2] / 1e3 : 0;
		double p99 = nlat ? (double)lat[nlat * 99 / 100] / 1e3 : 0;

		if (o.json)
			printf("{\"ops_per_s\": %.0f, \"p50_us\": %.1f, "
			       "\"p99_us\": %.1f, \"depth\": %u, \"conns\": "
			       "%u}\n",
			       ops, p50, p99, o.depth, o.conns);
		else
			printf("binary: %u conns, depth %u: %.0f requests/s, "
			       "batch p50 %.1f us, p99 %.1f us\n",
			       o.conns, o.depth, ops, p50, p99);
	}
	rc = 0;
out:
	for (unsigned i = 0; k && i < o.conns; i++)
		if (k[i].fd > 0)
			close(k[i].fd);
	free(k);
	free(lat);
	return rc;
}

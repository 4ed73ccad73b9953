/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memlane-bench: what its subcommands share. Internal to bench/.
 *
 * Each subcommand is one entry point, bench_<name>_main(argc, argv), where
 * argv[0] is the subcommand's own name; bench.c dispatches to it from a
 * table, so a new subcommand is one declaration here and one table row.
 */
#ifndef MEMLANE_BENCH_H
#define MEMLANE_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Subcommands. Each returns the process exit status. */
int bench_engine_main(int argc, char **argv);
int bench_memory_main(int argc, char **argv);
int bench_load_main(int argc, char **argv);
int bench_pktload_main(int argc, char **argv);
int bench_ring_main(int argc, char **argv);
int bench_bloom_main(int argc, char **argv);
int bench_cluster_main(int argc, char **argv);
int bench_gossip_main(int argc, char **argv);
int bench_binary_main(int argc, char **argv);

/* ------------------------------------------------------------------------
 * Shared helpers (bench.c)
 * ---------------------------------------------------------------------- */

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/* Copies the CPU's model name from /proc/cpuinfo into buf (always
 * terminated; "unknown CPU" when it cannot be read). */
void bench_cpu_model(char *buf, size_t len);

/*
 * Pins the calling thread to one CPU: cpu if it is >= 0, else the highest
 * CPU the thread may run on (CPU 0 tends to take the most interrupts).
 * Returns the CPU pinned to, or -errno.
 */
int bench_pin_cpu(int cpu);

/* Resident set size of a process (0 = this one) from /proc/<pid>/statm,
 * in bytes. Returns 0 and sets *rss, or -errno. */
int bench_rss(pid_t pid, uint64_t *rss);

/*
 * Writes the benchmark's key number idx as exactly klen bytes (no
 * terminator): "key:" and the decimal number, left-padded with zeros.
 * Every bench and the load generator use the same key names, so their
 * figures describe the same keys. klen must be at least 12.
 */
#define BENCH_KEY_MIN 12
void bench_key_format(uint64_t idx, unsigned klen, char *buf);

/* A TCP connection to an IPv4 address, TCP_NODELAY set: the fd, or
 * -errno (-EINVAL for an address that is not IPv4). */
int bench_dial(const char *ip, unsigned port);
/* Writes all n bytes; 0, or -1 when the socket fails. */
int bench_send_all(int fd, const void *p, size_t n);
/* qsort() order of uint64_t values. */
int bench_cmp_u64(const void *a, const void *b);

/* Parse a whole decimal number (an optional k, M or G suffix multiplies
 * by a power of 1000) or a decimal fraction. Return 0, or -EINVAL. */
int bench_parse_u64(const char *s, uint64_t *out);
int bench_parse_double(const char *s, double *out);

/* ------------------------------------------------------------------------
 * Random numbers and the Zipf generator (zipf.c)
 * ---------------------------------------------------------------------- */

/* A small, fast generator (splitmix64); never used inside a timed loop. */
struct bench_rng {
	uint64_t state;
};

void bench_rng_seed(struct bench_rng *r, uint64_t seed);
uint64_t bench_rng_next(struct bench_rng *r);
/* Uniform in [0, n), n > 0. */
uint64_t bench_rng_below(struct bench_rng *r, uint64_t n);
/* Uniform in [0, 1). */
double bench_rng_double(struct bench_rng *r);

/*
 * Zipf over n ranks with skew theta (0 < theta < 1), by the method of
 * Gray et al., "Quickly generating billion-record synthetic databases"
 * (SIGMOD 1994), as YCSB uses it: zeta(n, theta) is summed once at init,
 * and each draw then costs one pow().
 */
struct bench_zipf {
	uint64_t n;
	double theta;
	double alpha; /* 1 / (1 - theta) */
	double zetan; /* zeta(n, theta) */
	double eta;
	double half_pow_theta; /* 1 + 0.5^theta: the bound of rank 1 */
	/* The scramble: a bijection of [0, 2^bits) walked until it lands
	 * below n, so that hot ranks map to scattered key numbers. */
	unsigned bits;
	uint64_t add, mul1, mul2;
};

/* Returns 0, or -EINVAL for n == 0 or theta outside (0, 1). */
int bench_zipf_init(struct bench_zipf *z, uint64_t n, double theta,
		    uint64_t seed);
/* A rank in [0, n): 0 is the most popular. */
uint64_t bench_zipf_rank(const struct bench_zipf *z, struct bench_rng *r);
/* The key number in [0, n) that rank maps to (a permutation of [0, n)). */
uint64_t bench_zipf_scramble(const struct bench_zipf *z, uint64_t rank);
/* bench_zipf_scramble(bench_zipf_rank()). */
uint64_t bench_zipf_next(const struct bench_zipf *z, struct bench_rng *r);

#endif /* MEMLANE_BENCH_H */

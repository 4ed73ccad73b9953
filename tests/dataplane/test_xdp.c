/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of memlane's XDP program (dataplane/bpf/memlane_xdp.bpf.c)
 * and of its loader (dataplane/dp_xdp.c). The program runs in the kernel
 * on crafted frames through BPF_PROG_TEST_RUN, so no traffic is sent;
 * the loader's tests attach it to the loopback of a network namespace of
 * their own. Needs root and a kernel that takes BPF: skipped otherwise.
 */
#include <errno.h>
#include <linux/if_link.h>
#include <linux/types.h>
#include <net/if.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cmocka.h>

#include "dp_xdp.h"
#include "memlane_xdp.skel.h"
#include "memlane_xdp_shared.h"

#define SKIP_RC 77

#define SERVER_IP "198.18.0.1"
#define CLIENT_IP "198.18.0.2"
#define PORT	  11211

#define ETH_LEN	  14
#define IP_LEN	  20
#define UDP_OFF	  (ETH_LEN + IP_LEN)
#define MC_OFF	  (UDP_OFF + 8)
#define FRAME_MAX 256

static const char request[] = "get a\r\n";

static struct memlane_xdp_bpf *skel;
static int prog_fd;
static int ncpus;

struct frame {
	uint8_t b[FRAME_MAX];
	size_t len;
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* The IPv4 header checksum of the header at f->b + ETH_LEN. */
static void ip_csum_fix(struct frame *f)
{
	uint8_t *ip = f->b + ETH_LEN;
	size_t hl = (size_t)(ip[0] & 0xf) * 4;
	uint32_t sum = 0;

	put16(ip + 10, 0);
	for (size_t i = 0; i < hl; i += 2)
		sum += get16(ip + i);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	put16(ip + 10, (uint16_t)~sum);
}

/* A memcached UDP request from CLIENT_IP to SERVER_IP:PORT. */
static void frame_good(struct frame *f)
{
	static const uint8_t mac_dst[6] = {0x02, 0, 0, 0, 0, 1};
	static const uint8_t mac_src[6] = {0x02, 0, 0, 0, 0, 2};
	size_t plen = 8 + sizeof(request) - 1;
	uint8_t *ip = f->b + ETH_LEN, *udp = f->b + UDP_OFF;
	uint8_t *mc = f->b + MC_OFF;
	struct in_addr a;

	memset(f, 0, sizeof(*f));
	memcpy(f->b, mac_dst, 6);
	memcpy(f->b + 6, mac_src, 6);
	put16(f->b + 12, 0x0800);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(IP_LEN + 8 + plen));
	put16(ip + 4, 0x4242);
	ip[8] = 64;
	ip[9] = 17;
	inet_pton(AF_INET, CLIENT_IP, &a);
	memcpy(ip + 12, &a, 4);
	inet_pton(AF_INET, SERVER_IP, &a);
	memcpy(ip + 16, &a, 4);
	put16(udp, 40000);
	put16(udp + 2, PORT);
	put16(udp + 4, (uint16_t)(8 + plen));
	put16(mc, 0x1234);
	put16(mc + 4, 1);
	memcpy(mc + 8, request, sizeof(request) - 1);
	f->len = MC_OFF + plen;
	ip_csum_fix(f);
}

/* ---- how each case spoils the good frame ---------------------------- */

static void m_none(struct frame *f)
{
	(void)f;
}

static void m_padded(struct frame *f)
{
	f->len += 18; /* Ethernet padding past IPv4's total length */
}

static void m_udp_cut(struct frame *f)
{
	f->len = UDP_OFF + 6;
	put16(f->b + ETH_LEN + 2, IP_LEN + 6);
}

static void m_tot_beyond(struct frame *f)
{
	put16(f->b + ETH_LEN + 2, (uint16_t)(f->len - ETH_LEN + 1));
}

static void m_tot_short(struct frame *f)
{
	put16(f->b + ETH_LEN + 2, IP_LEN + 4);
}

static void m_udp_beyond(struct frame *f)
{
	put16(f->b + UDP_OFF + 4, (uint16_t)(f->len - UDP_OFF + 1));
}

static void m_udp_short(struct frame *f)
{
	put16(f->b + UDP_OFF + 4, 7);
}

/* four NOP options between the IPv4 and the UDP header */
static void m_options(struct frame *f)
{
	uint8_t *ip = f->b + ETH_LEN;

	memmove(ip + IP_LEN + 4, ip + IP_LEN, f->len - UDP_OFF);
	memset(ip + IP_LEN, 1, 4);
	ip[0] = 0x46;
	put16(ip + 2, (uint16_t)(get16(ip + 2) + 4));
	f->len += 4;
}

static void m_more_fragments(struct frame *f)
{
	put16(f->b + ETH_LEN + 6, 0x2000);
}

static void m_fragment_offset(struct frame *f)
{
	put16(f->b + ETH_LEN + 6, 0x0005);
}

static void m_bad_csum(struct frame *f)
{
	f->b[ETH_LEN + 10] ^= 0x01;
}

static void m_frame_short(struct frame *f)
{
	f->len = MC_OFF + 4;
	put16(f->b + ETH_LEN + 2, IP_LEN + 8 + 4);
	put16(f->b + UDP_OFF + 4, 8 + 4);
}

static void m_count_2(struct frame *f)
{
	put16(f->b + MC_OFF + 4, 2);
}

static void m_count_257(struct frame *f)
{
	put16(f->b + MC_OFF + 4, 0x0101);
}

static void m_outsider(struct frame *f)
{
	struct in_addr a;

	inet_pton(AF_INET, "198.19.7.7", &a);
	memcpy(f->b + ETH_LEN + 12, &a, 4);
}

static void m_other_dst(struct frame *f)
{
	struct in_addr a;

	inet_pton(AF_INET, "198.18.0.9", &a);
	memcpy(f->b + ETH_LEN + 16, &a, 4);
}

static void m_arp(struct frame *f)
{
	put16(f->b + 12, 0x0806);
	f->len = 42;
}

static void m_ipv6(struct frame *f)
{
	put16(f->b + 12, 0x86dd);
	f->b[ETH_LEN] = 0x60;
}

static void m_tcp(struct frame *f)
{
	f->b[ETH_LEN + 9] = 6;
}

static void m_other_port(struct frame *f)
{
	put16(f->b + UDP_OFF + 2, PORT + 1);
}

/* IPv4 options on a TCP segment: not memcached UDP, so not ours to drop */
static void m_tcp_options(struct frame *f)
{
	m_options(f);
	f->b[ETH_LEN + 9] = 6;
}

struct xdp_case {
	const char *name;
	void (*spoil)(struct frame *f);
	bool keep_csum; /* the spoiled checksum is the point */
	int verdict;
	enum ml_xdp_stat stat;
};

static const struct xdp_case cases[] = {
	{"good", m_none, false, XDP_PASS, ML_XDP_REDIRECT_FAILED},
	{"good_padded", m_padded, false, XDP_PASS, ML_XDP_REDIRECT_FAILED},
	{"udp_cut", m_udp_cut, false, XDP_DROP, ML_XDP_DROP_TRUNCATED},
	{"tot_len_beyond", m_tot_beyond, false, XDP_DROP,
	 ML_XDP_DROP_BAD_LENGTH},
	{"tot_len_short", m_tot_short, false, XDP_DROP, ML_XDP_DROP_BAD_LENGTH},
	{"udp_len_beyond", m_udp_beyond, false, XDP_DROP,
	 ML_XDP_DROP_BAD_LENGTH},
	{"udp_len_short", m_udp_short, false, XDP_DROP, ML_XDP_DROP_BAD_LENGTH},
	{"ip_options", m_options, false, XDP_DROP, ML_XDP_DROP_IP_OPTIONS},
	{"more_fragments", m_more_fragments, false, XDP_DROP,
	 ML_XDP_DROP_FRAGMENT},
	{"fragment_offset", m_fragment_offset, false, XDP_DROP,
	 ML_XDP_DROP_FRAGMENT},
	{"bad_checksum", m_bad_csum, true, XDP_DROP, ML_XDP_DROP_BAD_CHECKSUM},
	{"frame_short", m_frame_short, false, XDP_DROP, ML_XDP_DROP_BAD_FRAME},
	{"count_2", m_count_2, false, XDP_DROP, ML_XDP_DROP_BAD_FRAME},
	{"count_257", m_count_257, false, XDP_DROP, ML_XDP_DROP_BAD_FRAME},
	{"outsider", m_outsider, false, XDP_DROP, ML_XDP_DROP_NOT_ALLOWED},
	{"other_dst", m_other_dst, false, XDP_PASS, ML_XDP_PASSED},
	{"arp", m_arp, true, XDP_PASS, ML_XDP_PASSED},
	{"ipv6", m_ipv6, true, XDP_PASS, ML_XDP_PASSED},
	{"tcp", m_tcp, false, XDP_PASS, ML_XDP_PASSED},
	{"tcp_options", m_tcp_options, false, XDP_PASS, ML_XDP_PASSED},
	{"other_port", m_other_port, false, XDP_PASS, ML_XDP_PASSED},
};

/* ---- the program, run in the kernel --------------------------------- */

static void stats_read(uint64_t out[ML_XDP_STAT_COUNT])
{
	__u64 v[ncpus];

	for (__u32 i = 0; i < ML_XDP_STAT_COUNT; i++) {
		assert_int_equal(bpf_map__lookup_elem(skel->maps.ml_stats, &i,
						      sizeof(i), v, sizeof(v),
						      0),
				 0);
		out[i] = 0;
		for (int c = 0; c < ncpus; c++)
			out[i] += v[c];
	}
}

static void config_set(const char *ip, uint16_t port, bool allow_all)
{
	struct ml_xdp_config cfg = {
		.udp_port = htons(port),
		.allow_all = allow_all,
	};
	__u32 zero = 0;

	if (ip)
		assert_int_equal(inet_pton(AF_INET, ip, &cfg.ip), 1);
	assert_int_equal(bpf_map__update_elem(skel->maps.ml_config, &zero,
					      sizeof(zero), &cfg, sizeof(cfg),
					      BPF_ANY),
			 0);
}

static void allow_add(const char *net, unsigned len)
{
	struct ml_xdp_lpm_key key = {.prefixlen = len};
	__u8 one = 1;

	assert_int_equal(inet_pton(AF_INET, net, &key.addr), 1);
	assert_int_equal(bpf_map__update_elem(skel->maps.ml_allow, &key,
					      sizeof(key), &one, sizeof(one),
					      BPF_ANY),
			 0);
}

/* Runs the program on f; checks the verdict and that exactly one
 * counter, stat, moved by one. */
static void run_expect(const char *name, const struct frame *f, int verdict,
		       enum ml_xdp_stat stat)
{
	uint64_t before[ML_XDP_STAT_COUNT], after[ML_XDP_STAT_COUNT];
	uint8_t out[FRAME_MAX + 256];
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = f->b,
		    .data_size_in = (__u32)f->len, .data_out = out,
		    .data_size_out = sizeof(out), .repeat = 1);

	stats_read(before);
	assert_int_equal(bpf_prog_test_run_opts(prog_fd, &opts), 0);
	stats_read(after);
	if ((int)opts.retval != verdict)
		fail_msg("%s: verdict %u, expected %d", name, opts.retval,
			 verdict);
	for (unsigned i = 0; i < ML_XDP_STAT_COUNT; i++) {
		uint64_t want = i == (unsigned)stat ? 1 : 0;

		if (after[i] - before[i] != want)
			fail_msg("%s: %s moved by %llu, expected %llu", name,
				 dp_xdp_stat_name(i),
				 (unsigned long long)(after[i] - before[i]),
				 (unsigned long long)want);
	}
}

/* The good frame, spoiled, with its IPv4 checksum made right again. */
static void frame_spoiled(struct frame *f, void (*spoil)(struct frame *f))
{
	frame_good(f);
	spoil(f);
	ip_csum_fix(f);
}

static int setup_configured(void **state)
{
	(void)state;
	config_set(SERVER_IP, PORT, false);
	allow_add("198.18.0.0", 24);
	return 0;
}

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct xdp_case *c = &cases[i];
		struct frame f;

		if (c->keep_csum) {
			frame_good(&f);
			c->spoil(&f);
		} else {
			frame_spoiled(&f, c->spoil);
		}
		run_expect(c->name, &f, c->verdict, c->stat);
	}
}

/* The same frames under other settings in ml_config. */
struct settings_case {
	const char *name;
	const char *ip; /* NULL: any */
	uint16_t port;	/* 0: as before memlaned fills ml_config */
	bool allow_all;
	void (*spoil)(struct frame *f);
	int verdict;
	enum ml_xdp_stat stat;
};

static const struct settings_case settings[] = {
	{"unconfigured good", SERVER_IP, 0, false, m_none, XDP_PASS,
	 ML_XDP_PASSED},
	{"unconfigured count_2", SERVER_IP, 0, false, m_count_2, XDP_PASS,
	 ML_XDP_PASSED},
	{"allow_all outsider", SERVER_IP, PORT, true, m_outsider, XDP_PASS,
	 ML_XDP_REDIRECT_FAILED},
	{"allow_all count_2", SERVER_IP, PORT, true, m_count_2, XDP_DROP,
	 ML_XDP_DROP_BAD_FRAME},
	{"any_ip other_dst", NULL, PORT, false, m_other_dst, XDP_PASS,
	 ML_XDP_REDIRECT_FAILED},
	{"any_ip outsider", NULL, PORT, false, m_outsider, XDP_DROP,
	 ML_XDP_DROP_NOT_ALLOWED},
};

static void test_settings(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
		const struct settings_case *c = &settings[i];
		struct frame f;

		config_set(c->ip, c->port, c->allow_all);
		frame_spoiled(&f, c->spoil);
		run_expect(c->name, &f, c->verdict, c->stat);
	}
	config_set(SERVER_IP, PORT, false);
}

/* A longest-prefix match: a /32 inside an otherwise unlisted /16. */
static void test_allow_host(void **state)
{
	struct frame f;

	(void)state;
	allow_add("198.19.7.7", 32);
	frame_spoiled(&f, m_outsider);
	run_expect("allowed host", &f, XDP_PASS, ML_XDP_REDIRECT_FAILED);
	f.b[ETH_LEN + 15] = 8; /* 198.19.7.8 */
	ip_csum_fix(&f);
	run_expect("its neighbour", &f, XDP_DROP, ML_XDP_DROP_NOT_ALLOWED);
}

/* ---- the loader ------------------------------------------------------ */

static void test_stat_names(void **state)
{
	static const char *const names[ML_XDP_STAT_MAX] = {
		"passed",	    "redirected",	 "redirect_failed",
		"drop_truncated",   "drop_ip_options",	 "drop_fragment",
		"drop_bad_length",  "drop_bad_checksum", "drop_bad_frame",
		"drop_not_allowed",
	};

	(void)state;
	for (unsigned i = 0; i < ML_XDP_STAT_MAX; i++)
		assert_string_equal(dp_xdp_stat_name(i), names[i]);
	assert_string_equal(dp_xdp_stat_name(ML_XDP_STAT_MAX), "unknown");
}

static void test_object_fd(void **state)
{
	const void *bytes;
	size_t len;
	struct stat st;
	char *buf;
	int fd;

	(void)state;
	bytes = memlane_xdp_bpf__elf_bytes(&len);
	fd = dp_xdp_object_fd();
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal((size_t)st.st_size, len);
	buf = malloc(len);
	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, len, 0), (ssize_t)len);
	assert_memory_equal(buf, bytes, len);
	free(buf);
	close(fd);
}

/* A one-instruction XDP program that is not memlane's. */
static int other_prog_load(void)
{
	struct bpf_insn insns[] = {
		{.code = BPF_ALU64 | BPF_MOV | BPF_K, .imm = XDP_PASS},
		{.code = BPF_JMP | BPF_EXIT},
	};

	return bpf_prog_load(BPF_PROG_TYPE_XDP, "other_xdp", "GPL", insns, 2,
			     NULL);
}

static __u32 lo_prog_id(int ifindex)
{
	__u32 id = 0;

	assert_int_equal(bpf_xdp_query_id(ifindex, XDP_FLAGS_SKB_MODE, &id), 0);
	return id;
}

/* Attaches the program to lo as the PMD would, opens it there, and
 * reads back the ml_config that dp_xdp_open() wrote. */
static struct dp_xdp *attach_open(int ifindex, const struct dp_xdp_params *p,
				  struct ml_xdp_config *cfg)
{
	struct dp_xdp *x;
	__u32 zero = 0;

	assert_int_equal(
		bpf_xdp_attach(ifindex, prog_fd, XDP_FLAGS_SKB_MODE, NULL), 0);
	x = dp_xdp_open("lo", p);
	assert_non_null(x);
	assert_int_equal(bpf_map__lookup_elem(skel->maps.ml_config, &zero,
					      sizeof(zero), cfg, sizeof(*cfg),
					      0),
			 0);
	return x;
}

static void test_prepare_open_close(void **state)
{
	struct dp_prefix allow[2] = {{0, 24}, {0, 32}};
	struct dp_xdp_params p = {
		.udp_port = htons(PORT),
		.allow = allow,
		.nallow = 2,
	};
	uint64_t ctr[ML_XDP_STAT_MAX];
	struct ml_xdp_config cfg;
	struct ml_xdp_lpm_key key;
	struct dp_xdp *x;
	char err[256] = "";
	__u8 v;
	int ifindex, other;

	(void)state;
	ifindex = (int)if_nametoindex("lo");
	assert_true(ifindex > 0);
	inet_pton(AF_INET, SERVER_IP, &p.ip);
	inet_pton(AF_INET, "198.18.0.0", &allow[0].addr);
	inet_pton(AF_INET, "203.0.113.5", &allow[1].addr);

	/* nothing attached: nothing to do, and nothing to open */
	assert_int_equal(dp_xdp_prepare("lo", err, sizeof(err)), 0);
	errno = 0;
	assert_null(dp_xdp_open("lo", &p));
	assert_int_equal(errno, ENOENT);
	assert_int_equal(dp_xdp_prepare("nonesuch0", err, sizeof(err)),
			 -ENODEV);

	/* a stale copy of ours is taken off */
	assert_int_equal(
		bpf_xdp_attach(ifindex, prog_fd, XDP_FLAGS_SKB_MODE, NULL), 0);
	assert_int_not_equal(lo_prog_id(ifindex), 0);
	assert_int_equal(dp_xdp_prepare("lo", err, sizeof(err)), 0);
	assert_int_equal(lo_prog_id(ifindex), 0);

	/* someone else's is left alone, and named */
	other = other_prog_load();
	assert_true(other >= 0);
	assert_int_equal(
		bpf_xdp_attach(ifindex, other, XDP_FLAGS_SKB_MODE, NULL), 0);
	assert_int_equal(dp_xdp_prepare("lo", err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "other_xdp"));
	assert_int_not_equal(lo_prog_id(ifindex), 0);
	errno = 0;
	assert_null(dp_xdp_open("lo", &p));
	assert_int_equal(errno, ENOENT);
	assert_int_equal(bpf_xdp_detach(ifindex, XDP_FLAGS_SKB_MODE, NULL), 0);
	close(other);

	/* attached as the PMD would: open fills the same maps */
	config_set(NULL, 0, false);
	x = attach_open(ifindex, &p, &cfg);
	assert_int_equal(cfg.ip, p.ip);
	assert_int_equal(cfg.udp_port, htons(PORT));
	assert_int_equal(cfg.allow_all, 0);
	key.prefixlen = 32;
	key.addr = allow[1].addr;
	assert_int_equal(bpf_map__lookup_elem(skel->maps.ml_allow, &key,
					      sizeof(key), &v, sizeof(v), 0),
			 0);

	/* its counters are the program's */
	{
		uint64_t before[ML_XDP_STAT_MAX];
		struct frame f;

		assert_int_equal(dp_xdp_counters(x, before), 0);
		frame_spoiled(&f, m_count_2);
		run_expect("count_2 via lo", &f, XDP_DROP,
			   ML_XDP_DROP_BAD_FRAME);
		assert_int_equal(dp_xdp_counters(x, ctr), 0);
		for (unsigned i = 0; i < ML_XDP_STAT_MAX; i++)
			assert_int_equal(ctr[i] - before[i],
					 i == ML_XDP_DROP_BAD_FRAME);
	}

	dp_xdp_close(x);
	assert_int_equal(lo_prog_id(ifindex), 0);
	dp_xdp_close(NULL);
	config_set(SERVER_IP, PORT, false);
}

/* No allowlist: every source. */
static void test_open_allow_all(void **state)
{
	struct dp_xdp_params p = {.udp_port = htons(PORT)};
	struct ml_xdp_config cfg;
	struct dp_xdp *x;
	int ifindex;

	(void)state;
	ifindex = (int)if_nametoindex("lo");
	x = attach_open(ifindex, &p, &cfg);
	assert_int_equal(cfg.allow_all, 1);
	assert_int_equal(cfg.ip, 0);
	dp_xdp_close(x);
	assert_int_equal(lo_prog_id(ifindex), 0);
	config_set(SERVER_IP, PORT, false);
}

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt,
			va_list ap)
{
	if (level == LIBBPF_WARN)
		return vfprintf(stderr, fmt, ap);
	return 0;
}

int main(void)
{
	const struct CMUnitTest program[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_settings),
		cmocka_unit_test(test_allow_host),
	};
	const struct CMUnitTest loader[] = {
		cmocka_unit_test(test_stat_names),
		cmocka_unit_test(test_object_fd),
		cmocka_unit_test(test_prepare_open_close),
		cmocka_unit_test(test_open_allow_all),
	};
	int rc;

	if (geteuid() != 0) {
		printf("skipped: loading BPF programs needs root\n");
		return SKIP_RC;
	}
	libbpf_set_print(libbpf_quiet);
	skel = memlane_xdp_bpf__open_and_load();
	if (!skel) {
		printf("skipped: the kernel refused memlane's XDP program: "
		       "%s\n",
		       strerror(errno));
		return SKIP_RC;
	}
	prog_fd = bpf_program__fd(skel->progs.memlane_xdp);
	ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0) {
		printf("skipped: cannot count the CPUs: %s\n",
		       strerror(-ncpus));
		memlane_xdp_bpf__destroy(skel);
		return SKIP_RC;
	}
	rc = cmocka_run_group_tests_name("dataplane_xdp_program", program,
					 setup_configured, NULL);
	if (unshare(CLONE_NEWNET) == 0)
		rc |= cmocka_run_group_tests_name("dataplane_xdp_loader",
						  loader, NULL, NULL);
	else
		printf("skipped the loader tests: no network namespace of "
		       "our own: %s\n",
		       strerror(errno));
	memlane_xdp_bpf__destroy(skel);
	return rc;
}

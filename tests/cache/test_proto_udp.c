/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of memcached's UDP framing (cache/proto_udp.c), against the
 * contract in cache/proto.h and what memcached 1.6.18 sends: a 3025-byte
 * reply goes out as datagrams of 1400, 1400 and 249 bytes.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cache.h"
#include "common.h"

/* Reply bytes per datagram. */
#define PAYLOAD (PROTO_UDP_MTU - PROTO_UDP_HDR)

/* Reads a header by hand, whatever its count (replies have many). */
static struct proto_udp_hdr hdr_read(const uint8_t *p)
{
	struct proto_udp_hdr h = {
		.req_id = (uint16_t)(p[0] << 8 | p[1]),
		.seq = (uint16_t)(p[2] << 8 | p[3]),
		.count = (uint16_t)(p[4] << 8 | p[5]),
		.reserved = (uint16_t)(p[6] << 8 | p[7]),
	};

	return h;
}

static void test_parse(void **state)
{
	static const uint8_t dgram[] = {
		0x12, 0x34, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
		'g',  'e',  't',  ' ',	'a',  '\r', '\n',
	};
	struct proto_udp_hdr h;

	(void)state;
	assert_int_equal(proto_udp_parse(dgram, sizeof(dgram), &h), 0);
	assert_int_equal(h.req_id, 0x1234);
	assert_int_equal(h.seq, 0);
	assert_int_equal(h.count, 1);
	assert_int_equal(h.reserved, 0);
	/* A bare header is a valid (empty) request. */
	assert_int_equal(proto_udp_parse(dgram, PROTO_UDP_HDR, &h), 0);
}

static void test_parse_short(void **state)
{
	static const uint8_t dgram[PROTO_UDP_HDR] = {0, 1, 0, 0, 0, 1, 0, 0};
	struct proto_udp_hdr h;
	size_t len;

	(void)state;
	for (len = 0; len < PROTO_UDP_HDR; len++) {
		/* Exactly len bytes, so a sanitizer sees any overread. */
		uint8_t *b = malloc(len ? len : 1);

		assert_non_null(b);
		memcpy(b, dgram, len);
		assert_int_equal(proto_udp_parse(b, len, &h), -EINVAL);
		free(b);
	}
}

/* memcached takes single-datagram requests only; it ignores seq and the
 * reserved field. */
static void test_parse_count(void **state)
{
	static const struct {
		uint8_t b[PROTO_UDP_HDR];
		int ret;
	} cases[] = {
		{{0, 7, 0, 0, 0, 1, 0, 0}, 0},
		{{0, 7, 0, 5, 0, 1, 0, 9}, 0},
		{{0, 7, 0, 0, 0, 0, 0, 0}, -EINVAL},
		{{0, 7, 0, 0, 0, 2, 0, 0}, -EINVAL},
		{{0, 7, 0, 1, 0, 2, 0, 0}, -EINVAL},
		{{0, 7, 0, 0, 1, 1, 0, 0}, -EINVAL},
		{{0, 7, 0, 0, 0xff, 0xff, 0, 0}, -EINVAL},
	};
	struct proto_udp_hdr h;
	size_t i;

	(void)state;
	for (i = 0; i < ML_ARRAY_SIZE(cases); i++)
		assert_int_equal(proto_udp_parse(cases[i].b, PROTO_UDP_HDR, &h),
				 cases[i].ret);
}

static void test_write(void **state)
{
	static const struct proto_udp_hdr hs[] = {
		{0, 0, 1, 0},
		{0x1234, 0x5678, 0x9abc, 0xdef0},
		{0xffff, 0xfffe, 0xfffd, 0xfffc},
		{1, 2, 3, 0},
	};
	uint8_t b[PROTO_UDP_HDR + 2];
	struct proto_udp_hdr back;
	size_t i;

	(void)state;
	for (i = 0; i < ML_ARRAY_SIZE(hs); i++) {
		memset(b, 0xaa, sizeof(b));
		proto_udp_write(b, &hs[i]);
		/* Big-endian, eight bytes, nothing after them. */
		assert_int_equal(b[0], hs[i].req_id >> 8);
		assert_int_equal(b[1], hs[i].req_id & 0xff);
		assert_int_equal(b[2], hs[i].seq >> 8);
		assert_int_equal(b[5], hs[i].count & 0xff);
		assert_int_equal(b[6], hs[i].reserved >> 8);
		assert_int_equal(b[8], 0xaa);
		assert_int_equal(b[9], 0xaa);
		back = hdr_read(b);
		assert_memory_equal(&back, &hs[i], sizeof(back));
	}

	/* A request header written then parsed comes back the same. */
	{
		struct proto_udp_hdr h = {0xbeef, 3, 1, 0}, got;

		proto_udp_write(b, &h);
		assert_int_equal(proto_udp_parse(b, PROTO_UDP_HDR, &got), 0);
		assert_memory_equal(&got, &h, sizeof(h));
	}
}

static void test_count(void **state)
{
	static const struct {
		size_t len;
		unsigned count;
	} cases[] = {
		{0, 0},
		{1, 1},
		{PAYLOAD - 1, 1},
		{PAYLOAD, 1},
		{PAYLOAD + 1, 2},
		{2 * PAYLOAD, 2},
		{2 * PAYLOAD + 1, 3},
		{3025, 3},
		{1024 * 1024, 754},
	};
	size_t i;

	(void)state;
	assert_int_equal(PAYLOAD, 1392);
	for (i = 0; i < ML_ARRAY_SIZE(cases); i++)
		assert_int_equal(proto_udp_count(cases[i].len), cases[i].count);
}

/*
 * Frames every datagram of a reply, checks each against the limits and
 * the header, and glues the payloads back together.
 */
static void frame_round_trip(size_t len, uint16_t req_id)
{
	uint8_t *reply = malloc(len ? len : 1);
	uint8_t *back = malloc(len ? len : 1);
	uint8_t dgram[PROTO_UDP_MTU + 16];
	unsigned count = proto_udp_count(len), seq;
	size_t off = 0, n;

	assert_non_null(reply);
	assert_non_null(back);
	for (n = 0; n < len; n++)
		reply[n] = (uint8_t)(n * 7 + n / 251);

	for (seq = 0; seq < count; seq++) {
		struct proto_udp_hdr h;

		memset(dgram, 0x55, sizeof(dgram));
		n = proto_udp_frame(dgram, req_id, reply, len, seq);
		assert_true(n > PROTO_UDP_HDR);
		assert_true(n <= PROTO_UDP_MTU);
		/* Every datagram but the last is full. */
		if (seq + 1 < count)
			assert_int_equal(n, PROTO_UDP_MTU);
		else
			assert_int_equal(n - PROTO_UDP_HDR, len - off);
		/* Nothing written past the datagram. */
		assert_int_equal(dgram[n], 0x55);
		h = hdr_read(dgram);
		assert_int_equal(h.req_id, req_id);
		assert_int_equal(h.seq, seq);
		assert_int_equal(h.count, count);
		assert_int_equal(h.reserved, 0);
		memcpy(back + off, dgram + PROTO_UDP_HDR, n - PROTO_UDP_HDR);
		off += n - PROTO_UDP_HDR;
	}
	assert_int_equal(off, len);
	if (len)
		assert_memory_equal(back, reply, len);
	/* Past the last datagram there is nothing to frame. */
	assert_int_equal(proto_udp_frame(dgram, req_id, reply, len, count), 0);
	free(reply);
	free(back);
}

static void test_frame(void **state)
{
	static const size_t lens[] = {
		1,	     29,   PAYLOAD - 1, PAYLOAD, PAYLOAD + 1,
		2 * PAYLOAD, 3025, 10000,	100000,
	};
	size_t i;

	(void)state;
	for (i = 0; i < ML_ARRAY_SIZE(lens); i++)
		frame_round_trip(lens[i], (uint16_t)(0xfff0 + i));
}

/* The reply memcached splits into 1400, 1400 and 249 bytes. */
static void test_frame_memcached(void **state)
{
	static const size_t want[] = {1400, 1400, 249};
	uint8_t dgram[PROTO_UDP_MTU];
	uint8_t reply[3025];
	size_t i;

	(void)state;
	memset(reply, 'v', sizeof(reply));
	assert_int_equal(proto_udp_count(sizeof(reply)), 3);
	for (i = 0; i < ML_ARRAY_SIZE(want); i++) {
		size_t n = proto_udp_frame(dgram, 7, reply, sizeof(reply),
					   (unsigned)i);
		static const uint8_t hdr0[] = {0, 7, 0, 0, 0, 3, 0, 0};

		assert_int_equal(n, want[i]);
		if (i == 0)
			assert_memory_equal(dgram, hdr0, sizeof(hdr0));
	}
}

/* A reply needing more datagrams than 16 bits can count is not framed. */
static void test_frame_too_many(void **state)
{
	const size_t len = (size_t)PAYLOAD * 65536;
	uint8_t dgram[PROTO_UDP_MTU];
	static const uint8_t reply[1];

	(void)state;
	assert_int_equal(proto_udp_count(len), 65536);
	assert_int_equal(proto_udp_count(len - 1), 65536);
	assert_int_equal(proto_udp_count(len - PAYLOAD), 65535);
	/* Only the length is looked at before refusing. */
	assert_int_equal(proto_udp_frame(dgram, 1, reply, len, 0), 0);
	assert_int_equal(proto_udp_frame(dgram, 1, reply, 0, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_short),
		cmocka_unit_test(test_parse_count),
		cmocka_unit_test(test_write),
		cmocka_unit_test(test_count),
		cmocka_unit_test(test_frame),
		cmocka_unit_test(test_frame_memcached),
		cmocka_unit_test(test_frame_too_many),
	};

	return cmocka_run_group_tests_name("proto_udp", tests, NULL, NULL);
}

/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memcached's UDP framing: every datagram starts with the 8-byte header
 * described in proto.h. A request must fit one datagram; a reply is cut
 * into as many datagrams as it needs, each at most PROTO_UDP_MTU bytes
 * with its header, numbered from 0 and all carrying the total count.
 */
#include <errno.h>
#include <string.h>

#include "cache.h"
#include "common.h"

/* Reply bytes one datagram carries after its header. */
#define UDP_PAYLOAD (PROTO_UDP_MTU - PROTO_UDP_HDR)

static inline uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

int proto_udp_parse(const void *buf, size_t len, struct proto_udp_hdr *h)
{
	const uint8_t *p = buf;

	if (len < PROTO_UDP_HDR)
		return -EINVAL;
	h->req_id = get_be16(p);
	h->seq = get_be16(p + 2);
	h->count = get_be16(p + 4);
	h->reserved = get_be16(p + 6);
	/* memcached drops a request spread over several datagrams; it
	 * ignores the sequence number and the reserved field. */
	if (h->count != 1)
		return -EINVAL;
	return 0;
}

void proto_udp_write(void *buf, const struct proto_udp_hdr *h)
{
	uint8_t *p = buf;

	put_be16(p, h->req_id);
	put_be16(p + 2, h->seq);
	put_be16(p + 4, h->count);
	put_be16(p + 6, h->reserved);
}

/* A reply of 0 bytes needs no datagram. */
unsigned proto_udp_count(size_t len)
{
	return (unsigned)((len + UDP_PAYLOAD - 1) / UDP_PAYLOAD);
}

/*
 * Returns 0 (and writes nothing) when seq lies past the reply, or when the
 * reply needs more datagrams than the 16-bit count can say.
 */
size_t proto_udp_frame(void *dgram, uint16_t req_id, const void *reply,
		       size_t len, unsigned seq)
{
	unsigned count = proto_udp_count(len);
	struct proto_udp_hdr h = {
		.req_id = req_id,
		.seq = (uint16_t)seq,
		.count = (uint16_t)count,
		.reserved = 0,
	};
	size_t off = (size_t)seq * UDP_PAYLOAD;
	size_t n;

	if (seq >= count || count > UINT16_MAX)
		return 0;
	n = ML_MIN(len - off, (size_t)UDP_PAYLOAD);
	proto_udp_write(dgram, &h);
	memcpy((uint8_t *)dgram + PROTO_UDP_HDR, (const uint8_t *)reply + off,
	       n);
	return PROTO_UDP_HDR + n;
}

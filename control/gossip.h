/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Membership by gossip: SWIM with Lifeguard's refinements, as a state
 * machine without I/O and without a clock of its own.
 *
 * The host (memlaned's control threads, or the simulator in bench/) owns
 * the sockets and the time: it passes every datagram it receives to
 * gossip_recv(), calls gossip_tick() when gossip_next_ms() says, carries
 * the full state over a reliable channel when gossip_pushpull_target()
 * asks (TCP in memlaned), and sends what io->send is given. The same code
 * runs in both; only the host differs.
 *
 * What it does:
 *   - each probe interval, one member (round robin, reshuffled every
 *     round) is pinged; without an ack within the probe timeout, k others
 *     are asked to ping it (ping-req), and answer with its ack or a nack;
 *     without any ack by the end of the interval it becomes suspect;
 *   - a suspect is declared dead when its suspicion times out; the
 *     timeout starts at suspicion_max_mult times the minimum and shrinks
 *     towards the minimum (suspicion_mult * log10(n) probe intervals)
 *     as independent suspicions confirm it (Lifeguard);
 *   - local health: a member whose probes fail without the nacks that
 *     would show the target is at fault counts itself less healthy and
 *     stretches its probe interval and timeout (Lifeguard's awareness),
 *     so a slow member probes less and accuses less;
 *   - incarnation numbers: a member suspected or declared dead refutes by
 *     gossiping itself alive with a higher incarnation; a graceful leave
 *     is a "left" update, never refuted;
 *   - updates ride on every message (ping, ack, ...) and on gossip
 *     messages to a few members each gossip interval, each about
 *     retransmit_mult * log10(n + 1) times;
 *   - push-pull: the full state, exchanged with a random member each
 *     push-pull interval and with a seed to join.
 *
 * Every message carries a counter (the sender's clock in microseconds,
 * strictly increasing) and, with a cluster key, an HMAC-SHA256 over all
 * of it. A message without a valid MAC, outside the replay window, or
 * whose counter was seen before is dropped and counted; so is a
 * truncated or oversized one. Nothing about the sender is believed
 * before its MAC checks.
 */
#ifndef MEMLANE_GOSSIP_H
#define MEMLANE_GOSSIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define GOSSIP_ID_MAX	   48	/* a member's name, with its NUL */
#define GOSSIP_SERVICE_MAX 72	/* "host:port" its clients use, with NUL */
#define GOSSIP_MTU	   1400 /* largest datagram sent or taken */
#define GOSSIP_KEY_MIN	   16
#define GOSSIP_KEY_MAX	   64
#define GOSSIP_MAC_LEN	   32
#define GOSSIP_MEMBER_MAX  4096
#define GOSSIP_STATE_MAX   (1u << 20) /* largest push-pull state */

enum gossip_state {
	GOSSIP_ALIVE,
	GOSSIP_SUSPECT,
	GOSSIP_DEAD,
	GOSSIP_LEFT,
};

/* A gossip endpoint: IPv4, the same port for UDP and push-pull TCP. */
struct gossip_addr {
	uint32_t ip; /* network byte order */
	uint16_t port;
};

struct gossip_member {
	struct gossip_addr addr;
	char id[GOSSIP_ID_MAX];
	/* the memcached address, exactly the string the node ring hashes */
	char service[GOSSIP_SERVICE_MAX];
	uint32_t weight;
	uint32_t incarnation;
	enum gossip_state state;
	uint64_t changed_ms; /* when this member last saw it change */
	bool self;
};

struct gossip_io {
	/* One datagram to an address; the host may drop it. */
	void (*send)(void *arg, const struct gossip_addr *to, const void *buf,
		     size_t len);
	/* A member joined, changed state, incarnation or weight (m as it
	 * is now): the ring may change. Called from within gossip_recv,
	 * gossip_tick and the rest; may be NULL. */
	void (*changed)(void *arg, const struct gossip_member *m);
	void *arg;
};

struct gossip_params {
	struct gossip_addr addr;
	const char *id;
	const char *service;
	uint32_t weight;
	/* timers, ms; 0 takes the LAN default in brackets */
	unsigned probe_interval_ms;    /* 1000 */
	unsigned probe_timeout_ms;     /* 500 */
	unsigned gossip_interval_ms;   /* 200 */
	unsigned pushpull_interval_ms; /* 30000 */
	unsigned replay_window_ms;     /* 30000 */
	unsigned indirect_probes;      /* 3 */
	unsigned suspicion_mult;       /* 4 */
	unsigned suspicion_max_mult;   /* 6 */
	unsigned retransmit_mult;      /* 4 */
	unsigned gossip_nodes;	       /* 3 */
	unsigned awareness_max;	       /* 8 */
	/* the cluster key; NULL: messages carry no MAC */
	const uint8_t *key;
	size_t keylen;
	uint64_t seed; /* the random choices, for a repeatable run */
	uint64_t now_ms;
	const struct gossip_io *io;
};

struct gossip_stats {
	uint64_t sent, sent_bytes, received, received_bytes;
	uint64_t bad_mac;   /* a MAC missing or wrong */
	uint64_t replayed;  /* a counter seen before, or outside the window */
	uint64_t malformed; /* truncated, unknown type, bad lengths */
	uint64_t oversized; /* longer than GOSSIP_MTU (or a state's bound) */
	uint64_t probes, probes_failed, suspicions, refutations;
	uint64_t declared_dead; /* members this one declared dead */
	uint64_t pushpulls;
};

struct gossip;

/* 0, or -EINVAL for bad parameters (a key shorter than GOSSIP_KEY_MIN,
 * an id or service too long or empty), -ENOMEM. */
int gossip_create(const struct gossip_params *p, struct gossip **out);
void gossip_free(struct gossip *g);

/* Runs the timers that are due at now. */
void gossip_tick(struct gossip *g, uint64_t now_ms);
/* The next time gossip_tick has something to do. */
uint64_t gossip_next_ms(const struct gossip *g);

/* A datagram from a source address. 0, or the reason it was dropped:
 * -EMSGSIZE oversized, -EBADMSG malformed, -EPERM bad MAC, -EALREADY
 * replayed or out of the window; each is counted. */
int gossip_recv(struct gossip *g, uint64_t now_ms,
		const struct gossip_addr *from, const void *buf, size_t len);

/* Push-pull. The state is the whole member list, authenticated like a
 * datagram. encode returns the length written, or -ENOSPC; merge
 * returns 0 or an error as gossip_recv does. */
ssize_t gossip_state_encode(struct gossip *g, uint64_t now_ms, void *buf,
			    size_t cap);
int gossip_state_merge(struct gossip *g, uint64_t now_ms, const void *buf,
		       size_t len);
/* Whether a periodic push-pull is due at now, and with whom. */
bool gossip_pushpull_target(struct gossip *g, uint64_t now_ms,
			    struct gossip_addr *to);

/* Leaves gracefully: gossips "left" with a new incarnation. The host
 * keeps ticking a little (a few gossip intervals) for it to spread. */
void gossip_leave(struct gossip *g, uint64_t now_ms);
/* After a leave: a member again, with a new incarnation (then join
 * through a push-pull). Nothing when it has not left. */
void gossip_rejoin(struct gossip *g, uint64_t now_ms);
/* A new weight for this member, gossiped with a new incarnation. */
void gossip_set_weight(struct gossip *g, uint64_t now_ms, uint32_t weight);

/* Every member this one knows, itself included, in the order they were
 * learnt (self first). Returns the count, which may exceed max. */
unsigned gossip_members(const struct gossip *g, struct gossip_member *out,
			unsigned max);
unsigned gossip_awareness(const struct gossip *g);
void gossip_get_stats(const struct gossip *g, struct gossip_stats *st);
const char *gossip_state_name(enum gossip_state s);

#endif /* MEMLANE_GOSSIP_H */

# SPDX-License-Identifier: BSD-3-Clause
"""A randomized differential: command streams drawn from the protocol's
grammar, run against memlaned and memcached 1.6.18 (both -t 2) side by
side, the replies compared byte for byte and, after each stream, every
stats field memcached also has.

A stream is a list of units; what a unit is depends on the mode:

  step       one text or meta request, then `mn`, read up to `MN`, so
             that quiet and noreply requests are compared too
  pipelined  up to 40 requests, each followed by `mn`, in one write
             split at random byte boundaries
  conns      the same over three connections at once, each with keys of
             its own (no flush_all: it would reach the others' keys)
  udp        one request and `mn` in one datagram (values that fit it)
  binary     up to 10 binary frames, then a noop, read up to its answer

The key space is small so that commands collide; values run from 0
bytes to past -I, keys up to and past 250 bytes, TTLs include negative
ones. What legitimately differs is masked, and only that: CAS values
(harness.Normaliser numbers them in order of first appearance, so a
CAS that is reused still has to match; each server's own last CAS of a
key is fed back into its own cas and C), the clock in t and l, the
version string. In binary, the CAS field of each response header and
the version's body.

A stream that differs is shrunk (delta debugging: chunks of units
dropped while the difference stays, on fresh servers each time) and
printed as a session ready for tests/golden/sessions/ (text modes) or
as frames (binary).

Stats: after each stream, `stats`, `stats settings`, `stats items` and
`stats slabs`; each field both servers name is compared unless
STATS_DIFFER gives the reason it cannot match (the README's protocol
section shows that table). In `stats items` and `stats slabs`, memcached
numbers its slab classes and memlane has one class of segments, so
those groups are compared by the names both servers give, which the
table accounts for.

  test_diff_random.py [--seeds 1,2,3] [--steps 2000] [--modes step,...]
  make fuzz-diff SEEDS=1,2,3 STEPS=100000
"""

import argparse
import random
import re
import select
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True

import harness  # noqa: E402

ITEM_MAX = 1 << 20  # -I: values past it are refused
TOO_LONG = b"L" * 251
MODES = ("step", "pipelined", "conns", "udp", "binary")
UDP_BODY_MAX = 1400 - 8
SHRINK_SECONDS = 180
UNSEEN_CAS = 987654321987

# Fields both servers name that cannot be equal, with the reason. The
# README's protocol section shows this table.
SLABS = "memcached's slab allocator; memlane allocates segments"
SLRU = "memcached's segmented LRU; memlane evicts by S3-FIFO"
# memcached reclaims dead items from the tail of a slab class's LRU
# when it allocates in that class: which dead item a lookup finds
# first and which one an allocation reclaims differs from memlane. The
# sum (dead_items()) is the same on both, and is compared.
DEAD_SPLIT = ("a dead item is counted once: by the lookup that finds it, "
             "or when reclaimed; memcached also reclaims from the tail of "
             "a slab class's LRU when it allocates, so the sum is compared "
             "instead")
DEAD_PARTS = ("get_expired", "get_flushed", "reclaimed",
              "crawler_reclaimed")

STATS_DIFFER = {
    "pid": "a process of its own",
    "uptime": "the clock",
    "time": "the clock",
    "rusage_user": "CPU time",
    "rusage_system": "CPU time",
    "version": "memlane's version names memlane after memcached's",
    "libevent": "memlane has no libevent",
    "total_connections": "memcached counts its listening sockets too",
    "connection_structures": "memcached's per-connection structures",
    "reserved_fds": "memcached's own descriptors",
    "response_obj_count": "memcached's response objects",
    "response_obj_bytes": "memcached's response objects",
    "read_buf_count": "memcached's read buffers",
    "read_buf_bytes": "memcached's read buffers",
    "read_buf_bytes_free": "memcached's read buffers",
    "bytes_read": "each server's own CAS values go back in cas and C, "
                  "with as many digits as it makes",
    "bytes_written": "CAS values have as many digits as each server makes",
    "bytes": "the bytes of items: 68 of overhead in memlane, memcached's "
             "item header and slab rounding",
    "hash_power_level": "memlane's index is one per core, sized by -m",
    "hash_bytes": "memlane's index is one per core, sized by -m",
    "reclaimed": DEAD_SPLIT,
    "get_expired": DEAD_SPLIT,
    "get_flushed": DEAD_SPLIT,
    "crawler_reclaimed": DEAD_SPLIT,
    "crawler_items_checked": "memcached's crawler also checks the dead "
                             "items its LRU maintainer has not reclaimed "
                             "yet (see reclaimed)",
    "expired_unfetched": "counted where reclaimed is",
    "lru_maintainer_juggles": SLRU,
    "lrutail_reflocked": SLRU,
    "moves_to_cold": SLRU,
    "moves_to_warm": SLRU,
    "moves_within_lru": SLRU,
    "conn_yields": "memcached yields after -R requests of one read; "
                   "memlane after -R requests of a connection's turn",
    # stats settings
    "tcpport": "each server listens on a port of its own",
    "hash_algorithm": "memlane hashes keys with xxh3",
    "oldest": "the age of memcached's oldest LRU item",
    "chunk_size": SLABS,
    "growth_factor": SLABS,
    "slab_chunk_max": SLABS,
    "slab_reassign": SLABS,
    "slab_automove_ratio": SLABS,
    "slab_automove_window": SLABS,
    "slab_automove_freeratio": SLABS,
    "lru_maintainer_thread": SLRU,
    "lru_segmented": SLRU,
    "hot_lru_pct": SLRU,
    "warm_lru_pct": SLRU,
    "hot_max_factor": SLRU,
    "warm_max_factor": SLRU,
    "temporary_ttl": SLRU,
    "ext_item_size": "extstore, which memlane does not have",
    "ext_max_frag": "extstore, which memlane does not have",
    "ext_max_sleep": "extstore, which memlane does not have",
    "ext_recache_rate": "extstore, which memlane does not have",
    "ext_wbuf_size": "extstore, which memlane does not have",
}

# Fields that can match in one mode and not in another.
MODE_DIFFER = {
    "udp": {"curr_connections": "memcached counts a UDP connection per "
                                "worker thread",
            "udpport": "each server listens on a port of its own"},
}


# stats items and stats slabs: memcached's per-class lines
# (items:<class>:<name>, <class>:<name>) name slab classes; memlane has
# none of them. What is compared of those groups is the total of each
# per-class count across classes, for the counts the two keep alike.
CLASS_SUMS = {
    "items": ["number", "number_hot", "number_warm", "number_cold",
              "evicted", "evicted_nonzero", "outofmemory", "reclaimed",
              "expired_unfetched", "evicted_unfetched", "crawler_reclaimed",
              "lrutail_reflocked", "moves_to_cold", "moves_to_warm",
              "moves_within_lru", "direct_reclaims", "hits_to_hot",
              "hits_to_warm", "hits_to_cold", "hits_to_temp",
              "evicted_active", "crawler_items_checked", "age_hot",
              "age_warm", "age", "mem_requested", "number_temp"],
    "slabs": ["get_hits", "cmd_set", "delete_hits", "incr_hits",
              "decr_hits", "cas_hits", "cas_badval", "touch_hits",
              "used_chunks", "free_chunks", "free_chunks_end",
              "total_chunks", "total_pages", "mem_requested", "chunk_size",
              "chunks_per_page"],
}
CLASS_DIFFER = {
    "items": {
        "number_hot": SLRU, "number_warm": SLRU, "number_cold": SLRU,
        "number_temp": SLRU, "moves_to_cold": SLRU, "moves_to_warm": SLRU,
        "moves_within_lru": SLRU, "hits_to_hot": SLRU,
        "hits_to_warm": SLRU, "hits_to_cold": SLRU, "hits_to_temp": SLRU,
        "lrutail_reflocked": SLRU, "evicted_active": SLRU,
        "age_hot": "the clock", "age_warm": "the clock", "age": "the clock",
        "mem_requested": "see bytes",
        "reclaimed": "see reclaimed",
        "expired_unfetched": "see reclaimed",
        "crawler_reclaimed": "memcached's crawler runs on its own clock",
        "crawler_items_checked": "memcached's crawler runs on its own "
                                 "clock",
        "direct_reclaims": SLABS,
    },
    "slabs": {
        "used_chunks": SLABS, "free_chunks": SLABS,
        "free_chunks_end": SLABS, "total_chunks": SLABS,
        "total_pages": SLABS, "chunk_size": SLABS,
        "chunks_per_page": SLABS, "mem_requested": "see bytes",
    },
}


# ---------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------

class Gen:
    """Units of a stream. A text request is bytes; {CAS} in it is the
    server's own last CAS of the request's key, filled in when sent. A
    binary request is a tuple (op, key, extras, value, use_cas)."""

    def __init__(self, seed, mode):
        self.r = random.Random(seed)
        self.mode = mode
        self.small = mode == "udp"

    def keys(self, conn=0):
        p = b"c%d_" % conn if self.mode == "conns" else b""
        return [p + b"k%d" % i for i in range(6)] + [p + b"n",
                                                    p + b"K" * (250 - len(p))]

    def key(self, conn=0):
        if self.r.random() < 0.02:
            return TOO_LONG
        return self.r.choice(self.keys(conn))

    def value(self):
        r = self.r.random()
        if r < 0.1:
            return b""
        if r < 0.12 and not self.small:
            return b"v" * self.r.randint(ITEM_MAX - 128, ITEM_MAX + 256)
        if r < 0.35:
            return b"%d" % self.r.randint(0, 1 << 20)
        return bytes(self.r.choice(b"abcxyz") for _ in
                     range(self.r.randint(1, 40)))

    def noreply(self):
        return b" noreply" if self.r.random() < 0.15 else b""

    def ttl(self):
        return self.r.choice([0, 0, 0, 1000, 5000, -1])

    def text(self, conn=0):
        r = self.r.random()
        k = self.key(conn)
        if r < 0.25:
            cmd = self.r.choice([b"set", b"add", b"replace", b"append",
                                 b"prepend", b"cas"])
            v = self.value()
            if k == TOO_LONG:
                # KNOWN: memcached reads the data of a key too long as
                # command lines; past 2048 bytes without a newline it
                # closes, and whether the replies before it went out
                # (the CLIENT_ERROR too) depends on where its reads fell,
                # which even one write leaves to chance: once in 250,000
                # requests of step (memlane sends them all)
                v = v[:1000]
            cas = b" {CAS}" if cmd == b"cas" else b""
            return b"%s %s %d %d %d%s%s\r\n%s\r\n" % (
                cmd, k, self.r.randint(0, 9), self.ttl(), len(v), cas,
                self.noreply(), v)
        if r < 0.45:
            cmd = self.r.choice([b"get", b"gets", b"gat 1000", b"gats 1000",
                                 b"gat -1"])
            keys = [self.key(conn) for _ in range(self.r.randint(1, 3))]
            if cmd.startswith(b"gat"):
                # KNOWN: memcached's gat of one key twice keeps a
                # reference to it, so that a later incr or decr writes
                # a new item (total_items, and no padding: see PADDED)
                keys = list(dict.fromkeys(keys))
            keys = b" ".join(keys)
            return b"%s %s\r\n" % (cmd, keys)
        if r < 0.55:
            cmd = self.r.choice([b"incr", b"decr"])
            d = self.r.choice([b"1", b"7", b"18446744073709551615", b"x"])
            return b"%s %s %s%s\r\n" % (cmd, k, d, self.noreply())
        if r < 0.62:
            return b"delete %s%s\r\n" % (k, self.noreply())
        if r < 0.66:
            return b"touch %s %d%s\r\n" % (k, self.ttl(), self.noreply())
        if r < 0.86:
            return self.meta(k)
        if r < 0.88 and self.mode != "conns":
            return b"flush_all%s\r\n" % self.noreply()
        return self.r.choice([b"bogus\r\n", b"get\r\n", b"set k0 0 0\r\n",
                              b"incr\r\n", b"mg\r\n", b"ms k0\r\n",
                              b"set k1 0 0 3\r\nabcd\r\n", b"mn\r\n",
                              b"verbosity\r\n", b"\r\n", b"GET k1\r\n"])

    def meta(self, k):
        kind = self.r.choice([b"mg", b"mg", b"ms", b"md", b"ma"])
        flags = {
            b"mg": [b"v", b"k", b"c", b"f", b"s", b"t", b"h", b"l", b"O12",
                    b"q", b"N100", b"T1000", b"E55", b"u", b"T-1"],
            b"ms": [b"c", b"k", b"O3", b"q", b"I", b"T1000", b"F5",
                    b"MS", b"ME", b"MA", b"MP", b"MR", b"C{CAS}", b"E77",
                    b"T-1", b"N100"],
            b"md": [b"q", b"k", b"O9", b"I", b"T30", b"C{CAS}"],
            b"ma": [b"q", b"k", b"O4", b"N100", b"J13", b"D3", b"v", b"t",
                    b"c", b"MI", b"MD", b"C{CAS}", b"E99"],
        }[kind]
        chosen = self.r.sample(flags, self.r.randint(0, 4))
        if kind == b"ms":
            v = self.value()
            if k == TOO_LONG:
                v = v[:1000]  # KNOWN: as in text()
            return b"ms %s %d %s\r\n%s\r\n" % (k, len(v), b" ".join(chosen),
                                               v)
        return b" ".join([kind, k] + chosen) + b"\r\n"

    def binary(self):
        r = self.r.random()
        k = self.key()
        cas = self.r.random() < 0.2
        exp = self.r.choice([0, 0, 1000, 5000])
        if r < 0.3:
            op = self.r.choice([0x01, 0x02, 0x03, 0x11, 0x12, 0x13])
            v = self.bin_value(k)
            return (op, k, struct.pack(">II", self.r.randint(0, 9), exp), v,
                    cas)
        if r < 0.5:
            op = self.r.choice([0x00, 0x09, 0x0c, 0x0d])
            return (op, k, b"", b"", False)
        if r < 0.6:
            op = self.r.choice([0x05, 0x06, 0x15, 0x16])
            delta = self.r.choice([1, 7, (1 << 64) - 1])
            init = self.r.choice([0, 10])
            exp = self.r.choice([0, 0xffffffff])  # 0xffffffff: no create
            return (op, k, struct.pack(">QQI", delta, init, exp), b"", cas)
        if r < 0.67:
            return (self.r.choice([0x04, 0x14]), k, b"", b"", cas)
        if r < 0.74:
            return (self.r.choice([0x0e, 0x0f, 0x19, 0x1a]), k, b"",
                    self.bin_value(k), cas)
        if r < 0.84:
            op = self.r.choice([0x1c, 0x1d, 0x1e, 0x23, 0x24])
            return (op, k, struct.pack(">I", exp), b"", False)
        if r < 0.86:
            return (self.r.choice([0x08, 0x18]), b"",
                    self.r.choice([b"", struct.pack(">I", 0)]), b"", False)
        if r < 0.95:
            return (self.r.choice([0x0a, 0x0b]), b"", b"", b"", False)
        # an unknown opcode: answered, and the connection goes on. Not
        # with a key or extras: memcached then takes as many bytes of
        # the next frame as its body again (the README's table)
        return (0x50, b"", b"", b"", False)

    def bin_value(self, k):
        """KNOWN: memcached closes at a key too long with the rest of
        its frame unread, and a close with input unread is a reset,
        which can drop replies the client has not read yet: how many
        depends on timing. So not with a large value."""
        v = self.value()
        return v[:1000] if k == TOO_LONG else v

    def bad_binary(self):
        """A frame that memcached closes the connection for: extras of
        the wrong length, a key where none may be, a get without a key.
        It goes in a unit of its own: memcached may drop the answers to
        the frames before it in the same read (the README's table)."""
        k = self.key()
        return self.r.choice([
            (0x01, k, b"\0\0\0\0", b"x", False),
            (0x00, k, b"\0\0\0\0", b"", False),
            (0x05, k, b"", b"", False),
            (0x0a, k, b"", b"", False),
            (0x00, b"", b"", b"", False),
        ])

    def unit(self):
        """(connection, [requests], split seed)"""
        m = self.mode
        if m in ("step", "udp"):
            while True:
                t = self.text()
                if m == "step" or len(t) + 4 <= UDP_BODY_MAX:
                    return (0, [t], 0)
        if m == "binary":
            if self.r.random() < 0.03:
                return (0, [self.bad_binary()], 0)
            return (0, self.draw(self.r.randint(1, 10), self.binary), 0)
        conn = self.r.randrange(3) if m == "conns" else 0
        return (conn, self.draw(self.r.randint(1, 40),
                                lambda: self.text(conn)),
                self.r.getrandbits(32))

    def draw(self, n, make):
        """n requests of one write, none an incr or decr of a key whose
        value a reply before it carries. KNOWN: memcached holds an item
        until the reply that carries it is written, after the whole
        read, and an incr or decr of an item held so writes a new item
        (counted in total_items, and unpadded: see PADDED) where memlane
        changes the number in place."""
        out, held = [], set()
        while len(out) < n:
            q = make()
            if arith_key(q) in held:
                continue
            held |= held_keys(q)
            out.append(q)
        return out


# ---------------------------------------------------------------------------
# Running a stream against one server
# ---------------------------------------------------------------------------

def request_key(req):
    if isinstance(req, tuple):
        return req[1]
    w = req.split(b"\r\n", 1)[0].split(b" ")
    return w[1] if len(w) > 1 else b""


# binary opcodes whose response holds the item in memcached (get, getq,
# getk, getkq, gat, gatq, gatk, gatkq, and touch, whose response has no
# value but keeps the item as gat's does), and incr, decr and their
# quiet ones
BIN_HOLDS = {0x00, 0x09, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x23, 0x24}
BIN_ARITH = {0x05, 0x06, 0x15, 0x16}


def held_keys(req):
    """The keys whose item a reply to req holds in memcached."""
    if isinstance(req, tuple):
        return {req[1]} if req[0] in BIN_HOLDS else set()
    w = req.split(b"\r\n", 1)[0].split(b" ")
    if w[0] in (b"get", b"gets"):
        return set(w[1:])
    if w[0] in (b"gat", b"gats"):
        return set(w[2:])
    if w[0] == b"mg" and b"v" in w[2:]:
        return {w[1]}
    return set()


def arith_key(req):
    """The key an incr, decr or ma changes, or None."""
    if isinstance(req, tuple):
        return req[1] if req[0] in BIN_ARITH else None
    w = req.split(b"\r\n", 1)[0].split(b" ")
    return w[1] if w[0] in (b"incr", b"decr", b"ma") and len(w) > 1 \
        else None


def mn_count(req):
    """How many MN a request and the mn after it are answered with."""
    return 1 + sum(1 for line in req.split(b"\r\n") if line == b"mn")


# magic, opcode, key length, extras length, data type, vbucket or
# status, body length, opaque, CAS
BIN_HDR = struct.Struct(">BBHBBHIIQ")


def bin_frame(req, cas, opaque):
    op, key, extras, value, use_cas = req
    return BIN_HDR.pack(0x80, op, len(key), len(extras), 0, 0,
                        len(key) + len(extras) + len(value), opaque,
                        cas if use_cas else 0) + extras + key + value


class Side:
    """One server's connections, with its own last CAS of each key."""

    def __init__(self, srv, mode):
        self.srv, self.mode = srv, mode
        self.cas = {}
        self.socks = {}
        self.udp = None
        self.req_id = 0
        self.norm = harness.Normaliser()

    def sock(self, conn):
        s = self.socks.get(conn)
        if s is None:
            s = socket.create_connection((harness.HOST, self.srv.port), 5)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.setblocking(False)
            self.socks[conn] = s
        return s

    def close(self):
        for s in self.socks.values():
            s.close()
        self.socks = {}
        if self.udp:
            self.udp.close()

    def fill(self, req):
        """{CAS} as this server's last CAS of the key; for a key whose CAS
        was never seen, one that neither server has given out (a small
        guess would match one server's counter and not the other's)."""
        return req.replace(b"{CAS}", b"%d" % self.cas.get(request_key(req),
                                                          UNSEEN_CAS))

    def learn_text(self, req, reply):
        """The CAS values a reply shows, by key."""
        key = request_key(req)
        for line in reply.split(b"\r\n"):
            t = line.split(b" ")
            if t[0] == b"VALUE" and len(t) >= 5 and t[4].isdigit():
                self.cas[t[1]] = int(t[4])
            elif t[0] in (b"VA", b"HD", b"EN", b"NS", b"EX", b"NF"):
                k, c = key, None
                for tok in t[1:]:
                    if tok[:1] == b"k":
                        k = tok[1:]
                    elif tok[:1] == b"c" and tok[1:].isdigit():
                        c = int(tok[1:])
                if c is not None:
                    self.cas[k] = c

    def exchange(self, s, data, splits, done, deadline):
        """Writes data in the pieces splits cuts it into while reading
        whatever comes back, until done(reply) or the peer closes."""
        pieces, at = [], 0
        for cut in splits:
            pieces.append(data[at:cut])
            at = cut
        pieces.append(data[at:])
        out = bytearray()
        pending = b""
        while True:
            if not pending and pieces:
                pending = pieces.pop(0)
            w = [s] if pending else []
            r, wr, _ = select.select([s], w, [], max(0, deadline -
                                                     time.time()))
            if not r and not wr:
                return bytes(out) + b"<timeout>"
            if wr:
                try:
                    n = s.send(pending)
                    pending = pending[n:]
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    pending, pieces = b"", []
            if r:
                try:
                    d = s.recv(1 << 20)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    d = b""
                if not d:
                    return bytes(out) + b"<closed>"
                out += d
                if not pending and not pieces and done(out):
                    return bytes(out)

    def run_text(self, unit):
        conn, reqs, split_seed = unit
        s = self.sock(conn)
        data = b"".join(self.fill(q) + b"mn\r\n" for q in reqs)
        splits = []
        if self.mode != "step" and len(data) > 1:
            rr = random.Random(split_seed)
            splits = sorted(rr.sample(range(1, len(data)),
                                      min(len(data) - 1, rr.randint(0, 6))))
        want = sum(mn_count(q) for q in reqs)
        reply = self.exchange(s, data, splits,
                              lambda b: b.count(b"MN\r\n") >= want,
                              time.time() + 20)
        if reply.endswith((b"<closed>", b"<timeout>")):
            self.socks.pop(conn).close()
        parts = reply.split(b"MN\r\n")
        for q, p in zip(reqs, parts):
            self.learn_text(q, p)
        return reply

    def run_udp(self, unit):
        if self.udp is None:
            self.udp = harness.UdpClient(self.srv.udp_port)
        self.req_id = (self.req_id + 1) & 0xffff
        body = self.fill(unit[1][0]) + b"mn\r\n"
        want = mn_count(unit[1][0])
        rep = self.udp.request(self.req_id, body,
                               lambda b: b.count(b"MN\r\n") >= want,
                               timeout=5, settle=0.002)
        self.learn_text(unit[1][0], bytes(rep.data))
        return bytes(rep.data) + (b"" if rep.complete else b"<timeout>") + \
            "".join("<%s>" % e for e in rep.errors).encode()

    def run_binary(self, unit):
        s = self.sock(0)
        self.req_id += 1
        noop = 0x7f000000 | (self.req_id & 0xffffff)
        frames = [bin_frame(q, self.cas.get(q[1], UNSEEN_CAS), i + 1)
                  for i, q in enumerate(unit[1])]
        data = b"".join(frames) + bin_frame((0x0a, b"", b"", b"", False),
                                            0, noop)

        def done(buf):
            i = 0
            while i + 24 <= len(buf):
                _, op, _, _, _, _, body, opq, _ = BIN_HDR.unpack_from(buf, i)
                if i + 24 + body > len(buf):
                    return False
                i += 24 + body
                if op == 0x0a and opq == noop:
                    return True
            return False

        reply = self.exchange(s, data, [], done, time.time() + 20)
        if reply.endswith((b"<closed>", b"<timeout>")):
            self.socks.pop(0).close()
        # each response's CAS learnt, then masked; the version's body too
        out = bytearray(reply)
        i = 0
        while i + 24 <= len(out) and out[i] == 0x81:
            _, op, _, _, _, status, body, opq, cas = BIN_HDR.unpack_from(out, i)
            if status == 0 and cas and 1 <= opq <= len(unit[1]):
                self.cas[unit[1][opq - 1][1]] = cas
            if cas:
                out[i + 16:i + 24] = b"%-8s" % self.norm._cas(b"%d" % cas)
            if op == 0x0b and status == 0:
                # the version (README): its body, and so its length
                out[i + 24:i + 24 + body] = b"*"
                out[i + 8:i + 12] = struct.pack(">I", 1)
                body = 1
            i += 24 + body
        return bytes(out)

    def run(self, unit):
        if self.mode == "udp":
            return self.run_udp(unit)
        if self.mode == "binary":
            return self.run_binary(unit)
        return self.run_text(unit)

    def masked(self, reply):
        if self.mode == "binary":
            return reply
        return unpad(self.norm.normalise(reply))


# A number that incr or decr made shorter: both servers pad it with
# spaces in place, but memcached writes a new, unpadded item when a reply
# still to be written in the same pipeline holds the old one (the
# README's table). Masked: the padding, in the data and its length.
PADDED = re.compile(rb"^(VALUE \S+ \d+ |VA )\d+([^\r]*\r\n)(\d+) +\r\n",
                    re.M)


def unpad(reply):
    return PADDED.sub(lambda m: m.group(1) + b"%d" % len(m.group(3)) +
                      m.group(2) + m.group(3) + b"\r\n", reply)


def mask(mode, reply):
    """A reply as compared (a fresh numbering of its CAS values)."""
    return reply if mode == "binary" else unpad(
        harness.Normaliser().normalise(reply))


def servers(mode):
    # memcached's LRU maintainer thread off, on both: it takes a
    # reference to each item it walks, and an incr or decr of an item
    # someone else holds writes a new item (counted in total_items)
    # instead of changing the number in place, so that with it on one
    # stream's total_items differs from run to run of memcached alone
    extra = ("-B", "auto", "-o", "no_lru_maintainer")
    return (harness.Server("memlaned", threads=2, udp=mode == "udp",
                           extra=extra),
            harness.Server("memcached", threads=2, udp=mode == "udp",
                           extra=extra))


def reap(srv):
    """What is dead goes on both: lru_crawler crawl, waited for on
    memcached, whose crawler runs on a thread of its own."""
    deadline = time.time() + 10
    while True:
        with harness.Conn(srv.port) as c:
            c.send(b"lru_crawler crawl all\r\n")
            if c.readline() == b"OK\r\n":
                break
        if time.time() > deadline:
            raise harness.TestFailure("lru_crawler crawl: never OK")
        time.sleep(0.05)
    while harness.stats(srv.port).get("lru_crawler_running", "0") != "0":
        if time.time() > deadline:
            raise harness.TestFailure("the crawl does not end")
        time.sleep(0.05)


def dead_items(g):
    """Items found dead, each counted once, wherever it was found: by a
    command's lookup (get_expired, get_flushed) or reclaimed."""
    return sum(int(g["general"][k]) for k in DEAD_PARTS)


def general_stats(port, open_conns):
    """`stats`, once the server has seen the closes of the connections
    the test closed (the stream's, and those reap() and earlier stats
    opened): a server learns of a client's close when it next reads the
    socket, so a count taken at once may still hold one. Waits, bounded,
    for curr_connections to be the open ones and this one; the count is
    then compared as any other. open_conns None: at once."""
    deadline = time.time() + 5
    while True:
        st = harness.stats(port)
        if open_conns is None or time.time() > deadline or \
                int(st.get("curr_connections", "0")) <= open_conns + 1:
            return st
        time.sleep(0.02)


def stats_groups(port, open_conns):
    out = {"general": general_stats(port, open_conns)}
    for g in ("settings", "items", "slabs"):
        out[g] = harness.stats(port, g)
    return out


def class_sums(group, fields):
    """Per-class lines summed across classes, by name."""
    sums = {}
    for name, v in fields.items():
        parts = name.split(":")
        base = parts[-1]
        if len(parts) >= 2 and base in CLASS_SUMS[group]:
            try:
                sums[base] = sums.get(base, 0) + int(v)
            except ValueError:
                pass
    return sums


def stats_differences(ml, mc, mode, open_conns):
    reap(ml)
    reap(mc)
    if mode == "udp":
        open_conns = (None, None)
    a, b = (stats_groups(srv.port, n) for srv, n in zip((ml, mc),
                                                        open_conns))
    differ = MODE_DIFFER.get(mode, {})
    out = []
    if dead_items(a) != dead_items(b):
        out.append(("dead items", "%s: memlaned "
                    "%d, memcached %d" % (" + ".join(DEAD_PARTS),
                                          dead_items(a), dead_items(b))))
    for g in ("general", "settings"):
        for name in sorted(set(a[g]) & set(b[g])):
            if name in STATS_DIFFER or name in differ:
                continue
            if a[g][name] != b[g][name]:
                out.append(("%s %s" % (g, name),
                            "stats %s %s: memlaned %s, memcached %s"
                            % (g, name, a[g][name], b[g][name])))
    for g in ("items", "slabs"):
        sa, sb = class_sums(g, a[g]), class_sums(g, b[g])
        for name in sorted(set(sa) | set(sb)):
            if name in CLASS_DIFFER[g] or name not in sa or name not in sb:
                continue
            if sa[name] != sb[name]:
                out.append(("%s %s" % (g, name),
                            "stats %s *:%s (summed): memlaned %d, "
                            "memcached %d" % (g, name, sa[name], sb[name])))
    return out


def play(mode, units, with_stats=True):
    """(unit index, memlaned's reply, memcached's) of the first unit
    whose replies differ; (len(units), differences) when only the stats
    do; None when all agree."""
    ml, mc = servers(mode)
    with harness.Servers(ml, mc):
        a, b = Side(ml, mode), Side(mc, mode)
        try:
            for i, u in enumerate(units):
                x, y = a.run(u), b.run(u)
                if a.masked(x) != b.masked(y):
                    return i, x, y
            if with_stats:
                d = stats_differences(ml, mc, mode,
                                      (len(a.socks), len(b.socks)))
                if d:
                    return len(units), d, None
        finally:
            a.close()
            b.close()
    return None


def ddmin(items, differs, deadline):
    """Delta debugging (Zeller's ddmin): chunks of items dropped while
    differs() holds, the chunks halved when none can go."""
    n = 2
    while len(items) >= 2 and time.time() < deadline:
        size = max(1, len(items) // n)
        chunks = [items[i:i + size] for i in range(0, len(items), size)]
        cut = False
        for c in range(len(chunks)):
            if time.time() >= deadline:
                break
            trial = [x for j, ch in enumerate(chunks) if j != c for x in ch]
            if trial and differs(trial):
                items, n, cut = trial, max(n - 1, 2), True
                break
        if not cut:
            if size == 1:
                break
            n = min(len(items), n * 2)
    return items


def shrink(mode, units, at, field):
    """The stream cut after the unit that differs, then delta debugging
    on whole units and then on the requests inside them, on fresh
    servers each time, while a reply still differs (a difference in the
    stats: while that field does). Bounded in time."""
    stats_only = field is not None
    units = list(units[:at + 1]) if not stats_only else list(units)
    deadline = time.time() + SHRINK_SECONDS

    def differs(trial):
        r = play(mode, trial, with_stats=stats_only)
        if r is None:
            return False
        if stats_only:
            return r[2] is None and field in [f for f, _ in r[1]]
        return r[2] is not None

    def regroup(items):
        out = []
        for uid, conn, q, seed in items:
            if out and out[-1][0] == uid:
                out[-1][2].append(q)
            else:
                out.append((uid, conn, [q], seed))
        return [(conn, reqs, seed) for _, conn, reqs, seed in out]

    units = ddmin(units, differs, deadline)
    items = [(i, conn, q, seed) for i, (conn, reqs, seed) in enumerate(units)
             for q in reqs]
    items = ddmin(items, lambda t: differs(regroup(t)), deadline)
    return regroup(items)


def session_lines(units):
    """A session for tests/golden/sessions/: one step per unit."""
    out = []
    for conn, reqs, _ in units:
        if conn:
            out.append("# connection %d" % conn)
        for q in reqs:
            q = q.replace(b"{CAS}", b"$CAS")
            for line in q.split(b"\r\n")[:-1]:
                if len(line) > 60 and line == line[:1] * len(line):
                    out.append("$FILL(%d)" % len(line))
                    continue
                s = "".join(chr(c) if 32 <= c < 127 and c != 92 else
                            "\\x%02x" % c for c in line)
                if s[:1] in ("#", "!"):
                    s = "\\x%02x" % ord(s[0]) + s[1:]
                out.append(s)
        out.append("")
    return out


def report(mode, seed, units, result):
    i, x, y = result
    field = None
    if y is None:
        field = x[0][0]
        print("%s seed %d: the stats differ after %d units:\n  %s"
              % (mode, seed, len(units), "\n  ".join(t for _, t in x)))
    else:
        print("%s seed %d: unit %d differs\n  sent      %r\n  %s"
              % (mode, seed, i, units[i][1],
                 harness.diff_text(mask(mode, y), mask(mode, x))))
    small = shrink(mode, units, i, field)
    print("  the shortest stream found that differs (%d units%s):"
          % (len(small), ", in " + field if field else ""))
    if mode == "binary":
        for _, reqs, _ in small:
            print("    " + " ".join(bin_frame(q, 0, 0).hex()
                                    for q in reqs))
    else:
        for line in session_lines(small):
            print("    " + line)
    r = play(mode, small)
    if r and r[2] is not None:
        print("  on it (expected: memcached's, got: memlaned's)\n  %s"
              % harness.diff_text(mask(mode, r[2]), mask(mode, r[1])))
    elif r:
        print("  on it: %s" % "; ".join(t for _, t in r[1]))


def run(mode, seed, steps):
    """Units drawn until they hold `steps` requests; True when clean."""
    gen = Gen(seed, mode)
    units, n = [], 0
    while n < steps:
        u = gen.unit()
        units.append(u)
        n += len(u[1])
    t0 = time.time()
    result = play(mode, units)
    print("%-9s seed %-4d %6d requests in %4d units, %.1f s: %s"
          % (mode, seed, n, len(units), time.time() - t0,
             "clean" if result is None else "DIFFERS"))
    sys.stdout.flush()
    if result is None:
        return True
    report(mode, seed, units, result)
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--steps", type=int, default=2000,
                    help="requests per seed and mode")
    ap.add_argument("--modes", default=",".join(MODES))
    args = ap.parse_args()
    if harness.target_is_memcached():
        return harness.SKIP
    ok = True
    t0 = time.time()
    seeds = [int(s) for s in args.seeds.split(",")]
    modes = args.modes.split(",")
    for mode in modes:
        if mode not in MODES:
            print("unknown mode %r (modes: %s)" % (mode, ", ".join(MODES)))
            return 2
    total = 0
    for mode in modes:
        for seed in seeds:
            ok &= run(mode, seed, args.steps)
            total += args.steps
    print("%d requests (%d seeds x %d modes) in %.1f s: %s" % (
        total, len(seeds), len(modes), time.time() - t0,
        "clean" if ok else "differences"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

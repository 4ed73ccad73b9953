# SPDX-License-Identifier: BSD-3-Clause
"""stats as a memcached dashboard reads them: the same workload against
memlaned and memcached 1.6.18, both with -t 2, and every counter of
`stats` that both keep compared.

  counters_match_memcached
      text storage, retrieval, gat/gats, touch, arith, delete, meta
      commands (me among them), flush_all, expiry: each counter of
      COMPARED equal on both servers. The fields left out are in
      DIFFERENT, each with its reason.
  binary_counters_match_memcached
      the same over the binary protocol: a flush counted once, an incr
      that makes its initial value neither a hit nor a miss, a value
      too large not in store_too_large (memcached counts that for text
      alone), an add with a CAS counted as a cas.
  dead_items_counted
      items flushed and expired, then looked up by get, mg, set, incr,
      delete and touch: memlaned counts each in get_flushed or
      get_expired, as memcached's lookups count them; the rest are
      reclaimed by lru_crawler crawl (crawler_reclaimed). Each dead item
      is counted once, in the same total as memcached's. The crawl is
      one lru_crawler_starts on both (memcached's LRU maintainer, which
      starts crawls of its own, off).
"""

import socket
import struct
import sys
import time

sys.dont_write_bytecode = True

import harness  # noqa: E402
from harness import bin_frame, check  # noqa: E402

COMPARED = [
    "cmd_get", "cmd_set", "cmd_flush", "cmd_touch", "cmd_meta", "get_hits",
    "get_misses", "delete_misses", "delete_hits", "incr_misses",
    "incr_hits", "decr_misses", "decr_hits", "cas_misses", "cas_hits",
    "cas_badval", "touch_hits", "touch_misses", "total_items", "curr_items",
    "evictions",
]

# Counters both servers name that this workload cannot make equal.
DIFFERENT = {
    "get_expired": "memcached's LRU maintainer may reclaim an expired "
                   "item before the get that would count it (see "
                   "dead_items_counted)",
    "get_flushed": "as get_expired",
    "reclaimed": "memcached counts memory reused from dead items, which "
                 "depends on its slab allocator",
    "expired_unfetched": "follows reclaimed",
    "curr_items (in a flush_all's second)": "an item stored in the second "
                 "of a flush_all is hidden by both; memcached counts it "
                 "until it is reclaimed, memlane drops it",
}

WORKLOAD = [
    b"set a 0 0 1\r\nx\r\nset b 0 0 1\r\ny\r\nget a b zz\r\ngets a\r\n",
    b"add a 0 0 1\r\nz\r\nreplace zz 0 0 1\r\nz\r\nappend a 0 0 1\r\nq\r\n",
    b"gat 100 a zz\r\ngats 100 b\r\ntouch a 10\r\ntouch zz 10\r\n",
    b"set n 0 0 1\r\n5\r\nincr n 2\r\ndecr n 1\r\nincr zz 1\r\ndecr zz 1\r\n",
    # a number that grows past its length is a new item (total_items);
    # one that shrinks is padded in place
    b"set g 0 0 2\r\n99\r\nincr g 1\r\nincr g 1\r\ndecr g 90\r\n",
    b"cas a 0 0 1 1\r\nx\r\ncas zz 0 0 1 1\r\nx\r\n",
    b"delete b\r\ndelete b\r\n",
    # a bad data chunk is refused, and counted as a set
    b"set bc 0 0 1\r\nxy\r\n",
    b"mg a v\r\nmg zz v\r\nms m 1\r\nx\r\nmd m\r\nma n\r\nmn\r\nme a\r\n",
    # a vivify with T is a touch, as memcached counts it
    b"mg viv N100 T1000\r\nmg viv2 N100\r\n",
    b"flush_all\r\nget a\r\n",
    # past the flush's second: what is stored in that second is hidden
    # by both, and memcached counts it in curr_items until it is
    # reclaimed, where memlane drops it (see DIFFERENT)
    1.1,
    b"set e 0 100 1\r\nx\r\n",
]


def exchange_all(port, steps):
    s = socket.create_connection((harness.HOST, port), 5)
    s.settimeout(0.3)
    for step in steps:
        if isinstance(step, float):
            time.sleep(step)
            continue
        s.sendall(step)
        time.sleep(0.15)
        try:
            while s.recv(65536):
                pass
        except socket.timeout:
            pass
    s.close()


def counters_match_memcached():
    ml = harness.Server("memlaned", threads=2)
    mc = harness.Server("memcached", threads=2)
    with harness.Servers(ml, mc):
        for srv in (ml, mc):
            exchange_all(srv.port, WORKLOAD)
        a = harness.stats(ml.port)
        b = harness.stats(mc.port)
    for name in COMPARED:
        check(name in b, "memcached has no %s" % name)
        check(a.get(name) == b[name], "stats %s: memlaned %s, memcached %s"
              % (name, a.get(name), b[name]))
    for name in DIFFERENT:
        field = name.split()[0]
        check(field in a and field in b, "%s is not in both" % field)
    print("   %d counters equal; %d left out: %s"
          % (len(COMPARED), len(DIFFERENT), ", ".join(sorted(DIFFERENT))))


def bin_arith(op, key, delta, initial, expiry):
    return bin_frame(op, key, extras=struct.pack(">QQI", delta, initial,
                                                 expiry))


SET_X = struct.pack(">II", 0, 0)
BIN_WORKLOAD = [
    bin_frame(0x01, b"a", b"x", SET_X) + bin_frame(0x00, b"a") +
    bin_frame(0x00, b"zz"),
    # incr: a miss that makes 5, a hit, a miss that makes nothing
    bin_arith(0x05, b"n", 1, 5, 0) + bin_arith(0x05, b"n", 1, 5, 0) +
    bin_arith(0x06, b"m", 1, 5, 0xffffffff),
    bin_frame(0x01, b"big", b"v" * (1 << 20), SET_X),
    # an add with a CAS is a cas: a wrong CAS counts in cas_badval
    bin_frame(0x02, b"a", b"y", SET_X, cas=987654321),
    bin_frame(0x08) + bin_frame(0x18, extras=b"\0\0\0\0"),
    bin_frame(0x00, b"a"),
]


def binary_counters_match_memcached():
    ml = harness.Server("memlaned", threads=2, extra=("-B", "auto"))
    mc = harness.Server("memcached", threads=2, extra=("-B", "auto"))
    with harness.Servers(ml, mc):
        for srv in (ml, mc):
            exchange_all(srv.port, BIN_WORKLOAD)
        a = harness.stats(ml.port)
        b = harness.stats(mc.port)
    for name in COMPARED + ["store_too_large"]:
        check(a.get(name) == b[name], "stats %s: memlaned %s, memcached %s"
              % (name, a.get(name), b[name]))
    check(b["cmd_flush"] == "2" and b["incr_hits"] == "1" and
          b["incr_misses"] == "0" and b["decr_misses"] == "1" and
          b["cas_badval"] == "1", "memcached counts otherwise: %r" % b)


# Each request in one write, answered before the next second's sweep:
# f0..f5 flushed, e0..e5 expired (TTL -1), then each looked up once by a
# different command; f6, f7, e6 and e7 are left for the crawl.
DEAD_WRITE = b"".join(
    [b"set f%d 0 0 1\r\n1\r\n" % i for i in range(8)] +
    [b"flush_all\r\n"] +
    [b"set e%d 0 -1 1\r\n1\r\n" % i for i in range(8)] +
    [b"get %s0\r\nmg %s1 v\r\nset %s2 0 0 1\r\n2\r\nincr %s3 1\r\n"
     b"delete %s4\r\ntouch %s5 10\r\n" % ((p,) * 6) for p in (b"f", b"e")]
    + [b"mn\r\n"])
DEAD_TOTAL = ["get_expired", "get_flushed", "reclaimed", "crawler_reclaimed"]


def dead_items_counted():
    off = ("-o", "no_lru_maintainer")
    ml = harness.Server("memlaned", threads=2, extra=off)
    mc = harness.Server("memcached", threads=2, extra=off)
    got = {}
    with harness.Servers(ml, mc):
        for srv in (ml, mc):
            with harness.Conn(srv.port) as c:
                c.send(DEAD_WRITE)
                c.read_until(b"MN\r\n")
                c.send(b"lru_crawler crawl all\r\n")
                check(c.readline() == b"OK\r\n", "lru_crawler crawl")
            harness.wait_for("the crawl", lambda: harness.stats(
                srv.port).get("lru_crawler_running") == "0", 5)
            got[srv.kind] = {k: int(v) for k, v in
                             harness.stats(srv.port).items()
                             if k in DEAD_TOTAL + ["curr_items",
                                                   "lru_crawler_starts"]}
    a, b = got["memlaned"], got["memcached"]
    want = {"get_flushed": 6, "get_expired": 6, "crawler_reclaimed": 4,
            "reclaimed": 0, "curr_items": 2}
    for name, v in want.items():
        check(a[name] == v, "memlaned %s: %d, not %d" % (name, a[name], v))
    total = [sum(x[k] for k in DEAD_TOTAL) for x in (a, b)]
    check(total[0] == total[1] == 16, "dead items counted: memlaned %d, "
          "memcached %d, of 16" % tuple(total))
    check(b["curr_items"] == 2, "memcached curr_items %d" % b["curr_items"])
    check(a["lru_crawler_starts"] == b["lru_crawler_starts"] == 1,
          "lru_crawler_starts: memlaned %d, memcached %d, not 1"
          % (a["lru_crawler_starts"], b["lru_crawler_starts"]))
    print("   memlaned: %s; memcached: %s" % (a, b))


if __name__ == "__main__":
    harness.run_checks([counters_match_memcached,
                        binary_counters_match_memcached, dead_items_counted])

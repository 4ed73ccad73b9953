# SPDX-License-Identifier: BSD-3-Clause
"""stats as a memcached dashboard reads them: the same workload against
memlaned and memcached 1.6.18, both with -t 2, and every counter of
`stats` that both keep compared.

  counters_match_memcached
      text storage, retrieval, gat/gats, touch, arith, delete, meta
      commands (me among them), flush_all, expiry: each counter of
      COMPARED equal on both servers. The fields left out are in
      DIFFERENT, each with its reason.
"""

import socket
import sys
import time

sys.dont_write_bytecode = True

import harness  # noqa: E402
from harness import check  # noqa: E402

COMPARED = [
    "cmd_get", "cmd_set", "cmd_flush", "cmd_touch", "cmd_meta", "get_hits",
    "get_misses", "delete_misses", "delete_hits", "incr_misses",
    "incr_hits", "decr_misses", "decr_hits", "cas_misses", "cas_hits",
    "cas_badval", "touch_hits", "touch_misses", "total_items", "curr_items",
    "evictions",
]

# Counters both servers name that this workload cannot make equal.
DIFFERENT = {
    "get_expired": "memcached's LRU crawler may reclaim an expired item "
                   "before the get that would count it",
    "get_flushed": "memlane drops a flushed item at once; memcached keeps "
                   "it until a get finds it (counted) or memory is reused",
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
    b"cas a 0 0 1 1\r\nx\r\ncas zz 0 0 1 1\r\nx\r\n",
    b"delete b\r\ndelete b\r\n",
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


if __name__ == "__main__":
    harness.run_checks([counters_match_memcached])

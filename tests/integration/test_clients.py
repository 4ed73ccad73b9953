# SPDX-License-Identifier: BSD-3-Clause
"""memlaned driven by a real client library, pymemcache, and by one
hand-written meta protocol session with opaques and quiet mode; and
stats conns, which lists the test's own connections as memcached does.

memlaned runs with -t 2, so keys land on both cores. Every call's result
is checked against what memcached returns for it.
"""

import sys

# Keep the source tree free of bytecode caches.
sys.dont_write_bytecode = True

import harness  # noqa: E402
from harness import check, show

from pymemcache.client.base import Client
from pymemcache.exceptions import (MemcacheClientError,
                                   MemcacheIllegalInputError,
                                   MemcacheServerError)


def client(srv):
    return Client((harness.HOST, srv.port), default_noreply=False,
                  connect_timeout=harness.IO_TIMEOUT,
                  timeout=harness.IO_TIMEOUT)


def eq(what, got, want):
    check(got == want, "%s: expected %r, got %r" % (what, want, got))


def raises(what, exc, fn, *args, **kw):
    try:
        r = fn(*args, **kw)
    except exc as e:
        return e
    except Exception as e:  # noqa: BLE001 - report which one
        harness.fail("%s: expected %s, got %s: %s"
                     % (what, exc.__name__, type(e).__name__, e))
    harness.fail("%s: expected %s, returned %r" % (what, exc.__name__, r))


def pymemcache_operations():
    with harness.Server("memlaned", threads=2) as srv:
        c = client(srv)
        try:
            eq("version", c.version().split(b".")[0].isdigit(), True)

            # set / get / get_many
            for i in range(100):
                eq("set k%d" % i, c.set("k%d" % i, b"value-%d" % i), True)
            for i in range(100):
                eq("get k%d" % i, c.get("k%d" % i), b"value-%d" % i)
            keys = ["k%d" % i for i in range(0, 100, 3)] + ["nope1", "nope2"]
            want = {k: b"value-%s" % k[1:].encode() for k in keys
                    if not k.startswith("nope")}
            eq("get_many of %d keys" % len(keys), c.get_many(keys), want)
            eq("get of a missing key", c.get("nope"), None)
            eq("get with default", c.get("nope", default=b"d"), b"d")
            eq("set_many", c.set_many({"m1": b"1", "m2": b"2"}), [])
            eq("get m1 m2", c.get_many(["m1", "m2"]),
               {"m1": b"1", "m2": b"2"})

            # Binary values, empty values, client flags.
            blob = bytes(range(256)) * 40 + b"\r\n\r\nEND\r\n"
            eq("set blob", c.set("blob", blob), True)
            eq("get blob", c.get("blob"), blob)
            eq("set empty", c.set("empty", b""), True)
            eq("get empty", c.get("empty"), b"")
            eq("set with flags", c.set("fl", b"x", flags=0xdeadbeef), True)
            with srv.connect() as raw:
                line = raw.cmd(b"mg fl f\r\n")
                eq("mg fl f", line, b"HD f3735928559\r\n")

            # gets / cas
            v, cas = c.gets("k1")
            eq("gets value", v, b"value-1")
            check(cas is not None and cas.isdigit(), "gets cas %r" % cas)
            eq("cas with the current CAS", c.cas("k1", b"new", cas), True)
            eq("get after cas", c.get("k1"), b"new")
            eq("cas with a stale CAS", c.cas("k1", b"newer", cas), False)
            eq("get after a failed cas", c.get("k1"), b"new")
            eq("cas on a missing key", c.cas("nope", b"x", b"1"), None)
            v2, cas2 = c.gets("k1")
            check(cas2 != cas, "a new value kept its CAS %r" % cas)
            eq("gets of a missing key", c.gets("nope"), (None, None))
            many = c.gets_many(["k2", "k3", "nope"])
            eq("gets_many keys", sorted(many), ["k2", "k3"])
            eq("gets_many value", many["k2"][0], b"value-2")

            # add / replace
            eq("add of an existing key", c.add("k2", b"x"), False)
            eq("add of a new key", c.add("added", b"a"), True)
            eq("get added", c.get("added"), b"a")
            eq("replace of a missing key", c.replace("nope", b"x"), False)
            eq("get after a failed replace", c.get("nope"), None)
            eq("replace of an existing key", c.replace("k2", b"r"), True)
            eq("get replaced", c.get("k2"), b"r")

            # append / prepend
            eq("append", c.append("k3", b"-tail"), True)
            eq("prepend", c.prepend("k3", b"head-"), True)
            eq("get after append and prepend", c.get("k3"),
               b"head-value-3-tail")
            eq("append to a missing key", c.append("nope", b"x"), False)
            eq("prepend to a missing key", c.prepend("nope", b"x"), False)

            # incr / decr
            eq("set n", c.set("n", b"10"), True)
            eq("incr n 5", c.incr("n", 5), 15)
            eq("decr n 3", c.decr("n", 3), 12)
            eq("decr below 0", c.decr("n", 100), 0)
            eq("incr past 2^64", c.set("big", b"18446744073709551615"),
               True)
            eq("incr wraps", c.incr("big", 2), 1)
            eq("incr of a missing key", c.incr("nope", 1), None)
            eq("decr of a missing key", c.decr("nope", 1), None)
            eq("set text", c.set("text", b"abc"), True)
            e = raises("incr of a non-numeric value", MemcacheClientError,
                       c.incr, "text", 1)
            check(b"non-numeric" in str(e).encode(),
                  "incr of a non-numeric value: %s" % e)
            raises("decr of a non-numeric value", MemcacheClientError,
                   c.decr, "text", 1)
            eq("the client still works after an error", c.get("text"),
               b"abc")

            # touch
            eq("touch", c.touch("k4", 100), True)
            eq("touch of a missing key", c.touch("nope", 100), False)
            eq("get touched", c.get("k4"), b"value-4")
            eq("touch to expire", c.touch("k4", -1), True)
            eq("get expired", c.get("k4"), None)

            # delete
            eq("delete", c.delete("k5"), True)
            eq("get deleted", c.get("k5"), None)
            eq("delete of a missing key", c.delete("k5"), False)
            eq("delete_many", c.delete_many(["k6", "k7", "nope"]), True)
            eq("get_many after delete_many", c.get_many(["k6", "k7"]), {})

            # Errors: keys the client refuses, a value the server refuses.
            raises("key with a space", MemcacheIllegalInputError,
                   c.set, "bad key", b"x")
            raises("key of 251 bytes", MemcacheClientError,
                   c.set, "k" * 251, b"x")
            eq("key of 250 bytes", c.set("k" * 250, b"x"), True)
            eq("get key of 250 bytes", c.get("k" * 250), b"x")
            e = raises("value over -I", MemcacheServerError,
                       c.set, "huge", b"x" * (2 << 20))
            check("too large" in str(e), "value over -I: %s" % e)
            eq("get after a refused value", c.get("huge"), None)
            eq("the client still works", c.get("k8"), b"value-8")

            # stats
            st = c.stats()
            for name in (b"pid", b"uptime", b"curr_connections",
                         b"cmd_get", b"cmd_set", b"get_hits", b"get_misses",
                         b"curr_items", b"limit_maxbytes", b"threads"):
                check(name in st, "stats has no %s: %r" % (name, st))
            eq("stats threads", st[b"threads"], 2)
            eq("stats limit_maxbytes", st[b"limit_maxbytes"], 64 << 20)
            check(st[b"cmd_set"] >= 100, "stats cmd_set %r"
                  % st[b"cmd_set"])

            # flush_all
            eq("flush_all", c.flush_all(), True)
            eq("get after flush_all", c.get("k9"), None)
            eq("get_many after flush_all",
               c.get_many(["k%d" % i for i in range(100)]), {})
            eq("set after flush_all", c.set("k9", b"again"), True)
            eq("get after flush_all and set", c.get("k9"), b"again")
        finally:
            c.close()


def pymemcache_many_keys_two_clients():
    """Two clients, values written by one and read by the other, on keys
    that spread over both cores."""
    with harness.Server("memlaned", threads=2) as srv:
        a, b = client(srv), client(srv)
        try:
            vals = {"key:%d" % i: (b"%d:" % i) * (i % 50 + 1)
                    for i in range(500)}
            eq("set_many of 500", a.set_many(vals), [])
            got = b.get_many(list(vals))
            missing = [k for k in vals if got.get(k) != vals[k]]
            check(not missing, "%d of 500 keys wrong, e.g. %s: %r"
                  % (len(missing), missing[:3],
                     [got.get(k) for k in missing[:3]]))
            eq("delete_many", b.delete_many(list(vals)[:250]), True)
            got = a.get_many(list(vals))
            eq("keys left", len(got), 250)
        finally:
            a.close()
            b.close()


# The meta session: requests, and memcached 1.6.18's exact replies. Quiet
# mode (q) hides the uninteresting outcome: a stored ms, a mg miss, a md
# hit, a successful ma (even with v), but not a ma that had to create its
# key (N); mn marks the end; opaques (O) come back on every reply, EN
# included, and never on an error line.
META_SESSION = [
    (b"ms m1 2 q O1\r\naa\r\n"
     b"ms m2 2 O2\r\nbb\r\n"
     b"mg m1 v q O3\r\n"
     b"mg missing v q O4\r\n"
     b"mg missing v O5\r\n"
     b"md m2 q O6\r\n"
     b"md m2 q O7\r\n"
     b"md m2 O8\r\n"
     b"mn\r\n",
     b"HD O2\r\n"
     b"VA 2 O3\r\naa\r\n"
     b"EN O5\r\n"
     b"NF O7\r\n"
     b"NF O8\r\n"
     b"MN\r\n"),
    (b"ma cnt q O9 N0 J5\r\n"
     b"ma cnt v O10\r\n"
     b"ma cnt v q MD D2 O11\r\n"
     b"mg cnt v O12 k\r\n"
     b"ma m1 O13\r\n"
     b"mn\r\n",
     b"HD O9\r\n"
     b"VA 1 O10\r\n6\r\n"
     b"VA 1 O12 kcnt\r\n4\r\n"
     b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
     b"MN\r\n"),
    (b"ms m3 1 MA q O14\r\nx\r\n"
     b"ms m1 1 MA q O15\r\nz\r\n"
     b"ms m1 1 ME q O16\r\nz\r\n"
     b"mg m1 v O17\r\n"
     b"mn\r\n"
     b"mg m1 s O18 q\r\n"
     b"mn\r\n",
     b"NS O14\r\n"
     b"NS O16\r\n"
     b"VA 3 O17\r\naaz\r\n"
     b"MN\r\n"
     b"HD s3 O18\r\n"
     b"MN\r\n"),
]


def stats_conns_lists_own_connections():
    """Each of the test's connections, on both cores, by its address, with
    the listener; the one asking is conn_parse_cmd, an idle one conn_read
    and as idle as it has been; a connection closed is gone."""
    import socket
    import time

    with harness.Server("memlaned", threads=2) as srv:
        idle = [socket.create_connection((harness.HOST, srv.port))
                for _ in range(4)]
        for s in idle:
            s.sendall(b"version\r\n")
            s.recv(100)
        time.sleep(1.5)
        with harness.Conn(srv.port) as c:
            c.send(b"stats conns\r\n")
            text = c.read_until(b"END\r\n").decode()
            own = c.sock.getsockname()
        by_fd = {}
        for line in text.splitlines()[:-1]:
            w = line.split(" ", 2)
            check(w[0] == "STAT" and ":" in w[1], "a STAT line: %r" % line)
            fd, name = w[1].split(":", 1)
            by_fd.setdefault(fd, {})[name] = w[2]
        peers = {v.get("addr"): v for v in by_fd.values()}
        for s in idle:
            a = "tcp:%s:%d" % s.getsockname()
            check(a in peers, "%s listed: %s" % (a, text))
            check(peers[a]["state"] == "conn_read" and
                  int(peers[a]["secs_since_last_cmd"]) >= 1 and
                  peers[a]["listen_addr"] == "tcp:%s:%d"
                  % (harness.HOST, srv.port), "idle %s: %r" % (a, peers[a]))
        me = peers.get("tcp:%s:%d" % own)
        check(me and me["state"] == "conn_parse_cmd",
              "the asking connection: %r" % me)
        check(any(v.get("state") == "conn_listening" and
                  v.get("addr") == "tcp:%s:%d" % (harness.HOST, srv.port)
                  for v in by_fd.values()), "the listener is listed")
        gone = "tcp:%s:%d" % idle[0].getsockname()
        idle[0].close()
        time.sleep(0.3)
        with harness.Conn(srv.port) as c:
            c.send(b"stats conns\r\n")
            text = c.read_until(b"END\r\n").decode()
        check(gone not in text, "a closed connection is gone")
        for s in idle[1:]:
            s.close()


def meta_session_opaque_quiet():
    with harness.Server("memlaned", threads=2) as srv:
        with srv.connect() as c:
            for i, (req, want) in enumerate(META_SESSION):
                c.send(req)
                got = b"".join(c.read_until(b"MN\r\n")
                               for _ in range(req.count(b"mn\r\n")))
                check(got == want, "meta step %d\n      sent: %s\n      %s"
                      % (i + 1, show(req), harness.diff_text(want, got)))
            # Opaques over many keys on both cores, all in one pipeline:
            # each answer in request order with its own opaque, the quiet
            # hits silent.
            req = bytearray()
            want = bytearray()
            for i in range(300):
                k = b"o%d" % i
                req += b"ms %s %d O%d%s\r\n%s\r\n" % (
                    k, len(k), i, b" q" if i % 2 else b"", k)
                if i % 2 == 0:
                    want += b"HD O%d\r\n" % i
            for i in range(300):
                req += b"mg o%d v O%d%s\r\n" % (i, 1000 + i,
                                                b" q" if i % 3 else b"")
                want += b"VA %d O%d\r\no%d\r\n" % (len(b"o%d" % i),
                                                  1000 + i, i)
                req += b"mg none%d v q O%d\r\n" % (i, 2000 + i)
            req += b"mn\r\n"
            want += b"MN\r\n"
            c.send(bytes(req))
            got = c.read_until(b"MN\r\n")
            check(got == bytes(want), "300 ms + 600 mg with opaques:\n"
                  "      %s" % harness.diff_text(bytes(want), got))


if __name__ == "__main__":
    harness.run_checks([stats_conns_lists_own_connections,
                        pymemcache_operations,
                        pymemcache_many_keys_two_clients,
                        meta_session_opaque_quiet])

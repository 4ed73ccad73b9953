# SPDX-License-Identifier: BSD-3-Clause
"""Key dumps, streamed from every core while the node serves:

  - lru_crawler metadump all lists every key stored on both cores, once,
    each line as memcached 1.6 writes it for the same item (its CAS and
    last access aside), and a class memlane has not dumps nothing;
  - stats cachedump 1 <limit> answers as memcached does, the limit
    honoured; memcdump (libmemcached-tools) lists exactly the keys;
  - a client that does not read its dump holds up only itself: another
    connection is answered meanwhile, and the dump is whole once read.
"""

import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True

import harness  # noqa: E402
from harness import check

N = 3000


def fill(port, n=N, prefix=b"d"):
    with harness.Conn(port) as c:
        for base in range(0, n, 500):
            c.send(b"".join(
                b"set %s:%d %d %d %d\r\n%s\r\n"
                % (prefix, i, i % 7, 0 if i % 3 else 1000000, len(b"v%d" % i),
                   b"v%d" % i) for i in range(base, min(n, base + 500))))
            for _ in range(base, min(n, base + 500)):
                check(c.readline() == b"STORED\r\n", "a set")
        c.send(b"get %s:1 %s:2\r\n" % (prefix, prefix))
        c.read_until(b"END\r\n")


def dump(port, cmd, end=b"END\r\n"):
    with harness.Conn(port, timeout=30) as c:
        c.send(cmd)
        return c.read_until(end)


def meta_lines(text):
    """key -> the line without its la= and cas= values."""
    out = {}
    for line in text.decode().splitlines():
        if line == "END":
            continue
        f = dict(w.split("=", 1) for w in line.split())
        out[f["key"]] = " ".join("%s=%s" % (k, f[k]) for k in
                                 ("key", "exp", "fetch", "cls", "size"))
        check("la" in f and "cas" in f, "la= and cas= in %r" % line)
    return out


def metadump_like_memcached():
    with harness.Server("memlaned", threads=2) as ml:
        fill(ml.port)
        mine = dump(ml.port, b"lru_crawler metadump all\r\n")
        check(mine.endswith(b"\nEND\r\n"), "ends with END")
        lines = mine.count(b"\n") - 1
        check(lines == N, "%d lines for %d keys" % (lines, N))
        ours = meta_lines(mine)
        check(set(ours) == {"d%%3A%d" % i for i in range(N)},
              "every key once, uri-encoded")
        by_hash = dump(ml.port, b"lru_crawler metadump hash\r\n")
        check(meta_lines(by_hash) == ours, "by hash: the same keys")
        one = dump(ml.port, b"lru_crawler metadump 1\r\n")
        check(meta_lines(one) == ours, "class 1: the same keys")
        # memcached 1.6.18 has no mgdump: it is an ERROR there too
        mg = dump(ml.port, b"lru_crawler mgdump all\r\n", b"\r\n")
        check(mg == b"ERROR\r\n", "lru_crawler mgdump: %r" % mg)
        other = dump(ml.port, b"lru_crawler metadump 2\r\n")
        check(other == b"END\r\n", "class 2 is empty: %r" % other[:80])
        bad = dump(ml.port, b"lru_crawler metadump\r\n", b"\r\n")
        check(bad == b"ERROR\r\n", "no argument: %r" % bad)
    mc, port = harness.start_memcached()
    try:
        fill(port)
        theirs = meta_lines(dump(port, b"lru_crawler metadump all\r\n"))
        mg = dump(port, b"lru_crawler mgdump all\r\n", b"\r\n")
        check(mg == b"ERROR\r\n", "memcached's lru_crawler mgdump: %r" % mg)
    finally:
        mc.kill()
        mc.wait()
    # the TTL'd ones: their exp is an absolute time, a second apart at most
    diff = [k for k in ours if ours[k] != theirs.get(k) and
            "exp=-1" in ours[k]]
    check(not diff, "lines differ from memcached's: %r / %r" % (
        [ours[k] for k in diff[:3]], [theirs.get(k) for k in diff[:3]]))


def cachedump_and_memcdump():
    with harness.Server("memlaned", threads=2) as ml:
        fill(ml.port)
        out = dump(ml.port, b"stats cachedump 1 10\r\n")
        items = out.splitlines()[:-1]
        check(len(items) == 10 and all(i.startswith(b"ITEM d:") and
                                       b" b; " in i for i in items),
              "ten ITEM lines: %r" % out[:200])
        out = dump(ml.port, b"stats cachedump 1 0\r\n")
        check(out.count(b"\r\n") == N + 1, "every key with limit 0")
        out = dump(ml.port, b"stats cachedump 2 0\r\n")
        check(out == b"END\r\n", "another class: %r" % out[:80])
        got = subprocess.run(["memcdump", "--servers=127.0.0.1:%d" % ml.port],
                             capture_output=True, text=True, timeout=60)
        keys = set(got.stdout.split())
        check(keys == {"d:%d" % i for i in range(N)},
              "memcdump lists exactly the keys: %d of %d, %r" % (
                  len(keys), N, got.stderr[:200]))


def slow_reader_holds_only_itself():
    with harness.Server("memlaned", threads=2, mem_mb=512) as ml:
        # more than the output a connection may hold unsent (4 MB) and
        # the sockets' buffers: the dump waits for its reader
        fill(ml.port, 100000, b"s")
        slow = socket.create_connection(("127.0.0.1", ml.port))
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        slow.sendall(b"lru_crawler metadump all\r\nversion\r\n")
        time.sleep(0.5)
        t = time.monotonic()
        with harness.Conn(ml.port) as c:
            for i in range(100):
                c.send(b"get s:%d\r\n" % i)
                check(c.read_until(b"END\r\n").startswith(b"VALUE"),
                      "served while a dump waits")
        check(time.monotonic() - t < 5, "others are answered meanwhile")
        slow.settimeout(30)
        buf = b""
        while not (buf.endswith(b"\r\n") and
                   b"END\r\nVERSION " in buf[-200:]):
            d = slow.recv(1 << 20)
            if not d:
                break
            buf += d
        slow.close()
        body, _, tail = buf.partition(b"END\r\n")
        check(body.count(b"\n") == 100000, "the dump is whole: %d lines"
              % body.count(b"\n"))
        check(tail.startswith(b"VERSION "), "and the next request after it")


if __name__ == "__main__":
    if harness.target_is_memcached():
        sys.exit(harness.SKIP)
    harness.run_checks([metadump_like_memcached, cachedump_and_memcdump,
                        slow_reader_holds_only_itself])

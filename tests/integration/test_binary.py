# SPDX-License-Identifier: BSD-3-Clause
"""memcached's binary protocol against real clients:

  - memccapable -b (libmemcached-tools): every binary check passes on
    memlaned (-t 2), as it passes on the memcached beside it;
  - pylibmc (python3-pylibmc) with binary=True: its calls give what
    they give against memcached, a value it sets reads back over text;
  - a binary client of one node of a cluster (--peers): its quiet
    pipeline of sets and gets for keys the other node owns is forwarded
    in binary and answered in order, ending at its noop;
  - a value set over binary reads back over text and meta on the owner,
    and a text set reads back over binary;
  - binary frames in UDP datagrams, several to a datagram, answered
    datagram by datagram as memcached answers them (each response a
    message of its own, a quiet miss a bare header when nothing went out
    before it), CAS values aside;
  - nothing sent after a quit or a frame refused with a close runs,
    even while the replies before it are still at other cores (gets of
    keys that both cores own): a set after it is not stored, on
    memlaned as on memcached; the text protocol's quit likewise.

(libmemcached's own binary mode runs in dataplane_libmemcached; the
replies byte for byte in cache_golden_binary.)
"""

import socket
import struct
import subprocess
import sys

sys.dont_write_bytecode = True

import harness  # noqa: E402
from harness import bin_frame as frame, check

GET, SET, GETQ, NOOP = 0x00, 0x01, 0x09, 0x0a


def responses(sock, until_opaque):
    """Binary responses up to and including the noop of that opaque."""
    buf, out = b"", []
    while True:
        i = 0
        while i + 24 <= len(buf):
            body = struct.unpack(">I", buf[i + 8:i + 12])[0]
            if i + 24 + body > len(buf):
                break
            h = struct.unpack(">BBHBBHIIQ", buf[i:i + 24])
            out.append((h[1], h[5], h[7], buf[i + 24:i + 24 + body]))
            i += 24 + body
            if h[1] == NOOP and h[7] == until_opaque:
                return out
        buf = buf[i:]
        d = sock.recv(1 << 20)
        if not d:
            harness.fail("the node closed the connection")
        buf += d


def capable(port):
    out = subprocess.run(["memccapable", "-h", "127.0.0.1", "-p", str(port),
                          "-b", "-t", "10"], capture_output=True, text=True,
                         timeout=120)
    return out.returncode, out.stdout + out.stderr


def memccapable_binary():
    with harness.Server("memlaned", threads=2) as ml:
        rc, text = capable(ml.port)
        print("  memlaned: %s" % text.strip().splitlines()[-1])
        check(rc == 0 and "All tests passed" in text and "[FAIL]" not in
              text, "memccapable -b on memlaned:\n%s" % text)
    mc, port = harness.start_memcached()
    try:
        rc, text = capable(port)
        check(rc == 0 and "All tests passed" in text,
              "memccapable -b on memcached itself:\n%s" % text)
    finally:
        mc.kill()
        mc.wait()


def udp_exchange(port, bodies):
    """For each body: the datagrams that came back, with the CAS of each
    binary response zeroed."""
    import socket as s_
    u = s_.socket(s_.AF_INET, s_.SOCK_DGRAM)
    u.settimeout(0.5)
    out = []
    for n, body in enumerate(bodies):
        u.sendto(struct.pack(">HHHH", n + 1, 0, 1, 0) + body,
                 ("127.0.0.1", port))
        got = []
        try:
            while True:
                d, _ = u.recvfrom(65536)
                d = bytearray(d)
                if len(d) >= 8 + 24:
                    d[8 + 16:8 + 24] = bytes(8)
                got.append(bytes(d))
        except OSError:
            pass
        out.append(got)
    u.close()
    return out


def udp_binary_like_memcached():
    def st(key, value):
        return frame(SET, key, value, struct.pack(">II", 3, 0))

    bodies = [
        st(b"u1", b"one"),
        frame(GET, b"u1") + frame(GET, b"nokey"),
        frame(GETQ, b"a") + frame(GETQ, b"b") + frame(NOOP, opaque=9),
        frame(0x11, b"u2", b"v", struct.pack(">II", 0, 0)) +
        frame(GETQ, b"a") + frame(NOOP, opaque=9),
        frame(GET, b"u1") + frame(GETQ, b"a") + frame(GETQ, b"b"),
        frame(GETQ, b"a"),
        frame(0x0c, b"u2") + frame(0x0d, b"nokey") + frame(0x04, b"u2") +
        frame(GET, b"u2"),
    ]
    with harness.Server("memlaned", threads=2, udp=True) as ml:
        mine = udp_exchange(ml.udp_port, bodies)
    mc, port = harness.start_memcached(udp=True)
    try:
        theirs = udp_exchange(port, bodies)
    finally:
        mc.kill()
        mc.wait()
    for body, a, b in zip(bodies, mine, theirs):
        check(a == b, "datagrams for %s:\n memlaned %r\n memcached %r"
              % (body.hex()[:80], a, b))


QUIT, GAT = 0x07, 0x1d


def ended_stream(port, stream, probe_key, binary):
    """Sends stream on a connection, reads until the node closes it,
    then asks a new connection for probe_key: what it answers."""
    with socket.create_connection((harness.HOST, port), 5) as s:
        s.sendall(stream)
        s.settimeout(5)
        try:
            while s.recv(1 << 16):
                pass
        except socket.timeout:
            harness.fail("the connection stays open after its end")
    with socket.create_connection((harness.HOST, port), 5) as s:
        if binary:
            s.sendall(frame(GET, probe_key) + frame(NOOP, opaque=7))
            return responses(s, 7)[0][1]
        s.sendall(b"get %s\r\n" % probe_key)
        s.settimeout(5)
        out = b""
        while not out.endswith(b"END\r\n"):
            out += s.recv(1 << 16)
        return out


def nothing_runs_after_the_end():
    keys = [b"key%d" % i for i in range(8)]  # owned by both cores
    gets = b"".join(frame(GET, k, opaque=i) for i, k in enumerate(keys))

    def late(k):
        return frame(SET, k, b"x", struct.pack(">II", 0, 0))

    cases = [
        ("binary quit", gets + frame(QUIT) + late(b"late1"), b"late1", True),
        ("binary key too long", gets + frame(GAT, b"L" * 251,
                                              extras=b"\0\0\0\0") +
         late(b"late2"), b"late2", True),
        ("text quit", b"get " + b" ".join(keys) + b"\r\nquit\r\n"
         b"set late3 0 0 1\r\nx\r\n", b"late3", False),
    ]
    ml = harness.Server("memlaned", threads=2, extra=("-B", "auto"))
    mc = harness.Server("memcached", threads=2, extra=("-B", "auto"))
    with harness.Servers(ml, mc):
        for name, stream, key, binary in cases:
            got = [ended_stream(srv.port, stream, key, binary)
                   for srv in (ml, mc)]
            want = 1 if binary else b"END\r\n"  # 1: Not found
            check(got[1] == want, "%s: memcached %r" % (name, got[1]))
            check(got[0] == want, "%s: what came after it ran (memlaned "
                  "answers %r for its key)" % (name, got[0]))


def pylibmc_binary():
    import pylibmc

    def session(port):
        mc = pylibmc.Client(["127.0.0.1:%d" % port], binary=True,
                            behaviors={"cas": True})

        def call(name, *args):
            """What the call returns, or the error it raises."""
            try:
                r = getattr(mc, name)(*args)
                return sorted(r.items()) if isinstance(r, dict) else r
            except pylibmc.Error as e:
                return type(e).__name__

        mc.flush_all()
        out = [call(*c) for c in [
            ("set", "p:a", b"one"), ("get", "p:a"), ("add", "p:a", b"x"),
            ("add", "p:b", b"two"), ("replace", "p:none", b"x"),
            ("append", "p:a", b"+"), ("prepend", "p:a", b"<"),
            ("get", "p:a"), ("set", "p:n", b"5"), ("incr", "p:n", 1),
            ("decr", "p:n", 10), ("incr", "p:none", 1),
            ("get_multi", ["p:a", "p:b", "p:none"]),
            ("set_multi", {"p:m%d" % i: b"%d" % i for i in range(50)}),
            ("delete", "p:b"), ("delete", "p:b"), ("touch", "p:a", 100),
            ("incr", "p:a", 1), ("set", "p:text", b"for text")]]
        out.append(len(mc.get_multi(["p:m%d" % i for i in range(60)])))
        v, cas = mc.gets("p:a")
        out += [v, call("cas", "p:a", b"new", cas),
                call("cas", "p:a", b"newer", cas), call("get", "p:a")]
        return out

    with harness.Server("memlaned", threads=2) as ml:
        mine = session(ml.port)
        with harness.Conn(ml.port) as c:
            c.send(b"get p:text\r\n")
            check(c.read_until(b"END\r\n") ==
                  b"VALUE p:text 0 8\r\nfor text\r\nEND\r\n",
                  "pylibmc's binary set read over text")
    mc, port = harness.start_memcached()
    try:
        theirs = session(port)
    finally:
        mc.kill()
        mc.wait()
    check(mine == theirs, "pylibmc, binary:\n memlaned  %r\n memcached %r"
          % (mine, theirs))


def forwarded_in_binary():
    ports = [harness.free_port(), harness.free_port()]
    while ports[1] == ports[0]:
        ports[1] = harness.free_port()
    peers = ",".join("127.0.0.1:%d" % p for p in ports)
    nodes = [harness.Server("memlaned", threads=2, port=p,
                            extra=("--peers", peers, "--self",
                                   "127.0.0.1:%d" % p, "--admin", "off"))
             for p in ports]
    with harness.Servers(*nodes):
        n = 200
        with socket.create_connection(("127.0.0.1", ports[0]), 5) as s:
            s.sendall(b"".join(
                frame(SET, b"b:%d" % i, b"v%d" % i,
                      struct.pack(">II", i, 0), opaque=i)
                for i in range(n)) + frame(NOOP, opaque=0xfffe))
            got = responses(s, 0xfffe)
            check(len(got) == n + 1 and
                  all(g[0] == SET and g[1] == 0 and g[2] == i
                      for i, g in enumerate(got[:n])),
                  "every set answered in order: %r" % (got[:3],))
            # quiet gets: hits only, in order, the misses silent
            s.sendall(b"".join(frame(GETQ, b"b:%d" % i, opaque=i)
                               for i in range(n + 50)) +
                      frame(NOOP, opaque=0xffff))
            got = responses(s, 0xffff)
            check(len(got) == n + 1, "%d hits and the noop, not %d"
                  % (n, len(got) - 1))
            for i, (op, st, opq, body) in enumerate(got[:n]):
                check(op == GETQ and st == 0 and opq == i and
                      body == struct.pack(">I", i) + b"v%d" % i,
                      "getq b:%d: %r" % (i, (op, st, opq, body)))
        fwd = int(harness.stats(ports[1], "dataplane")["dp_forwarded_in"])
        check(fwd > n // 4, "node 1 was forwarded binary requests (%d)"
              % fwd)
        # the owner reads them over text and meta; text reads back over
        # binary
        with harness.Conn(ports[0]) as c:
            c.send(b"get b:7\r\nmg b:7 v f\r\nset t:1 9 0 4\r\ntext\r\n")
            check(c.read_until(b"END\r\n") == b"VALUE b:7 7 2\r\nv7\r\nEND\r\n",
                  "a binary set read over text")
            check(c.read_until(b"\r\nv7\r\n") == b"VA 2 f7\r\nv7\r\n",
                  "and over meta")
            check(c.readline() == b"STORED\r\n", "a text set")
        with socket.create_connection(("127.0.0.1", ports[1]), 5) as s:
            s.sendall(frame(GET, b"t:1", opaque=1) + frame(NOOP, opaque=2))
            got = responses(s, 2)
            check(got[0] == (GET, 0, 1, struct.pack(">I", 9) + b"text"),
                  "a text set read over binary, from the other node: %r"
                  % (got[0],))


if __name__ == "__main__":
    if harness.target_is_memcached():
        sys.exit(harness.SKIP)
    harness.run_checks([memccapable_binary, pylibmc_binary,
                        forwarded_in_binary,
                        udp_binary_like_memcached,
                        nothing_runs_after_the_end])

# SPDX-License-Identifier: BSD-3-Clause
"""memlaned under concurrent load, every reply checked against a model.

load_pipelined_model: 32 connections, each keeping 32 requests in flight,
send a random mix of ms, mg, md, ma (all with opaques) and text gets for a
bounded time (ML_LOAD_SECONDS, default 6) to memlaned -t 2. Each
connection owns its own key range, spread over both cores by the key
hash, so a per-connection model predicts every reply byte for byte: the
opaques prove that replies come back in request order, the values that no
write was lost or crossed over. Zero mismatches are allowed.

deep_pipeline_like_memcached: 6,000 requests of every kind written at
once on one connection to memcached and to memlaned -t 1 and -t 2; the
reply streams must be the same bytes (memlaned holds back what its
in-flight limits do not yet allow).

cas_race: two clients race cas (and meta ms with C) on one key, round
after round; each round exactly one wins and the value is the winner's.
"""

import base64
import collections
import os
import selectors
import socket
import sys
import threading
import time

# Keep the source tree free of bytecode caches.
sys.dont_write_bytecode = True

import harness  # noqa: E402
from harness import check, show

CONNS = 32
DEPTH = 32
KEYS_PER_CONN = 120
NON_NUMERIC = (b"CLIENT_ERROR cannot increment or decrement non-numeric"
               b" value\r\n")


class ModelConn:
    """One connection, the keys it owns and what they hold."""

    def __init__(self, idx, port, rnd):
        self.idx = idx
        self.rnd = rnd
        self.sock = socket.create_connection((harness.HOST, port), 10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.keys = [b"c%02d:%d" % (idx, i) for i in range(KEYS_PER_CONN)]
        self.model = {}            # key -> (flags, value)
        self.out = bytearray()
        self.inbuf = bytearray()
        self.pending = collections.deque()  # (request, expected reply)
        self.opaque = 0
        self.done = 0
        self.sent = 0
        self.error = None
        self.closed = False

    # Requests, each with the exact reply the model predicts.

    def _value(self):
        r = self.rnd.random()
        if r < 0.3:
            return b"%d" % self.rnd.randrange(10 ** 9)
        if r < 0.9:
            n = self.rnd.randrange(0, 64)
        else:
            n = self.rnd.randrange(1000, 20000)
        # Random bytes that start with a letter: never read as a number
        # (memcached's incr skips leading blanks and takes a sign).
        return (b"x" + self.rnd.randbytes(n - 1)) if n else b""

    def next_request(self):
        self.opaque += 1
        o = self.opaque
        k = self.rnd.choice(self.keys)
        r = self.rnd.random()
        cur = self.model.get(k)
        if r < 0.30:
            v = self._value()
            flags = self.rnd.choice([0, 0, 1, 0xffffffff])
            req = b"ms %s %d F%d O%d\r\n%s\r\n" % (k, len(v), flags, o, v)
            self.model[k] = (flags, v)
            exp = b"HD O%d\r\n" % o
        elif r < 0.65:
            req = b"mg %s v f O%d\r\n" % (k, o)
            if cur is None:
                exp = b"EN O%d\r\n" % o
            else:
                exp = b"VA %d f%d O%d\r\n%s\r\n" % (len(cur[1]), cur[0], o,
                                                    cur[1])
        elif r < 0.75:
            req = b"md %s O%d\r\n" % (k, o)
            exp = (b"NF O%d\r\n" if cur is None else b"HD O%d\r\n") % o
            self.model.pop(k, None)
        elif r < 0.90:
            req = b"ma %s v O%d\r\n" % (k, o)
            if cur is None:
                exp = b"NF O%d\r\n" % o
            elif cur[1].isdigit() and len(cur[1]) <= 19:
                nv = b"%d" % ((int(cur[1]) + 1) % (1 << 64))
                self.model[k] = (cur[0], nv)
                exp = b"VA %d O%d\r\n%s\r\n" % (len(nv), o, nv)
            else:
                exp = NON_NUMERIC
        else:
            ks = self.rnd.sample(self.keys, self.rnd.randrange(1, 6))
            req = b"get " + b" ".join(ks) + b"\r\n"
            exp = bytearray()
            for kk in ks:
                c = self.model.get(kk)
                if c is not None:
                    exp += b"VALUE %s %d %d\r\n%s\r\n" % (kk, c[0],
                                                         len(c[1]), c[1])
            exp = bytes(exp + b"END\r\n")
        self.out += req
        self.pending.append((req, exp))
        self.sent += 1

    def verify_request(self, key):
        """A final read of one key."""
        self.opaque += 1
        o = self.opaque
        req = b"mg %s v f O%d\r\n" % (key, o)
        cur = self.model.get(key)
        exp = (b"EN O%d\r\n" % o if cur is None else
               b"VA %d f%d O%d\r\n%s\r\n" % (len(cur[1]), cur[0], o, cur[1]))
        self.out += req
        self.pending.append((req, exp))
        self.sent += 1

    # I/O

    def flush(self):
        while self.out:
            try:
                n = self.sock.send(self.out)
            except BlockingIOError:
                return
            except OSError as e:
                self.fail("send failed: %s" % e)
                return
            del self.out[:n]

    def receive(self):
        try:
            chunk = self.sock.recv(1 << 20)
        except BlockingIOError:
            return
        except OSError as e:
            self.fail("recv failed: %s" % e)
            return
        if not chunk:
            self.fail("the server closed the connection")
            return
        self.inbuf += chunk
        while self.pending and not self.error:
            req, exp = self.pending[0]
            have = len(self.inbuf)
            n = min(have, len(exp))
            if self.inbuf[:n] != exp[:n]:
                self.fail("request %d %s\n      expected %s\n      got      %s"
                          % (self.done + 1, show(req, 200), show(exp, 200),
                             show(self.inbuf[:max(len(exp), 200)], 200)))
                return
            if have < len(exp):
                return
            del self.inbuf[:len(exp)]
            self.pending.popleft()
            self.done += 1
        if not self.pending and self.inbuf:
            self.fail("bytes with no request: %s" % show(self.inbuf))

    def fail(self, msg):
        if self.error is None:
            self.error = "connection %d: %s" % (self.idx, msg)


def load_pipelined_model():
    seconds = float(os.environ.get("ML_LOAD_SECONDS", "6"))
    rnd = harness.seeded_random("load_pipelined_model")
    with harness.Server("memlaned", threads=2, mem_mb=256) as srv:
        conns = [ModelConn(i, srv.port,
                           harness.random.Random(rnd.randrange(1 << 30)))
                 for i in range(CONNS)]
        sel = selectors.DefaultSelector()
        try:
            for c in conns:
                sel.register(c.sock, selectors.EVENT_READ, c)
            t_end = time.time() + seconds
            phase = "load"
            deadline = None
            while True:
                now = time.time()
                if phase == "load" and now >= t_end:
                    phase = "drain"
                    deadline = now + 60
                if phase == "drain" and all(not c.pending or c.error
                                            for c in conns):
                    # Read every key back once.
                    phase = "verify"
                    deadline = now + 60
                    for c in conns:
                        if not c.error:
                            for k in c.keys:
                                c.verify_request(k)
                elif phase == "verify" and all(not c.pending or c.error
                                               for c in conns):
                    break
                if deadline and now > deadline:
                    stuck = [(c.idx, len(c.pending)) for c in conns
                             if c.pending and not c.error]
                    harness.fail("replies missing after %s: (connection,"
                                 " outstanding) %s" % (phase, stuck[:8]))
                if phase == "load":
                    for c in conns:
                        while not c.error and len(c.pending) < DEPTH:
                            c.next_request()
                for c in conns:
                    if not c.error:
                        c.flush()
                        want = selectors.EVENT_READ | \
                            (selectors.EVENT_WRITE if c.out else 0)
                        sel.modify(c.sock, want, c)
                for key, ev in sel.select(0.5):
                    c = key.data
                    if c.error:
                        continue
                    if ev & selectors.EVENT_READ:
                        c.receive()
                    if ev & selectors.EVENT_WRITE:
                        c.flush()
                if any(c.error for c in conns):
                    break
            errors = [c.error for c in conns if c.error]
            total = sum(c.done for c in conns)
            least = min(c.done for c in conns)
            print("   %d connections x depth %d: %d replies checked in"
                  " %.0fs, fewest on one connection %d"
                  % (CONNS, DEPTH, total, seconds, least))
            check(not errors, "%d connections saw a wrong reply:\n    %s"
                  % (len(errors), "\n    ".join(errors[:5])))
            # Liveness, not speed: every connection got through its key
            # range and more than one full pipeline.
            check(least >= KEYS_PER_CONN + 2 * DEPTH,
                  "a connection completed only %d requests" % least)
            for c in conns:
                check(not c.pending, "connection %d: %d replies missing"
                      % (c.idx, len(c.pending)))
            check(srv.alive(), "memlaned died: %s" % srv.log()[-2000:])
        finally:
            sel.close()
            for c in conns:
                c.sock.close()


def deep_pipeline_request(rnd, keys):
    """One random request of the deep pipeline."""
    k = rnd.choice(keys)
    v = b"%d" % rnd.randrange(10 ** rnd.randrange(1, 9))
    if rnd.random() < 0.003:
        # too large: refused, and its key's old value dropped
        return b"set %s 0 0 2000000 noreply\r\n%s\r\n" % (k, b"x" * 2000000)
    return rnd.choice([
        b"set %s 0 0 %d\r\n%s\r\n" % (k, len(v), v),
        b"set %s 0 0 %d noreply\r\n%s\r\n" % (k, len(v), v),
        b"get %s\r\n" % k,
        b"get %s\r\n" % b" ".join(rnd.sample(keys, 6)),
        b"mg %s v f k O%d\r\n" % (k, rnd.randrange(1000)),
        b"mg %s b v k\r\n" % base64.b64encode(k),
        b"mg %s v q\r\n" % k,
        b"ms %s %d T0 F3\r\n%s\r\n" % (k, len(v), v),
        b"md %s q\r\n" % k,
        b"incr %s 7\r\n" % k,
        b"ma %s D2 v\r\n" % k,
        b"delete %s noreply\r\n" % k,
        b"append %s 0 0 1\r\nz\r\n" % k,
        b"touch %s 0\r\n" % k,
        b"bogus %s\r\n" % k,
        b"mn\r\n",
    ])


def deep_pipeline_like_memcached():
    """6,000 requests of every kind in one write, keys on both cores:
    requests that memlaned's in-flight limits hold back wait their turn,
    and the reply stream must be memcached's, byte for byte."""
    rnd = harness.seeded_random("deep_pipeline")
    keys = [b"dp%04d" % i for i in range(300)]
    data = b"".join(deep_pipeline_request(rnd, keys) for _ in range(6000))
    ref = harness.Server("memcached", threads=1, mem_mb=64)
    srvs = [harness.Server("memlaned", threads=t, mem_mb=64) for t in (1, 2)]
    with harness.Servers(ref, *srvs):
        want, how = harness.exchange_halfclose(ref.port, data, 60)
        check(how == "closed" and want.count(b"\r\n") > 5000,
              "memcached answered only %s (%s)" % (show(want), how))
        for srv in srvs:
            got, how = harness.exchange_halfclose(srv.port, data, 60)
            check(how == "closed", "%s: no close within 60 s (%s)"
                  % (srv.name(), how))
            check(got == want, "%s: %s" % (srv.name(),
                                          harness.diff_text(want, got)))


def cas_race():
    rounds = int(os.environ.get("ML_CAS_ROUNDS", "300"))
    with harness.Server("memlaned", threads=2) as srv:
        conns = [srv.connect(), srv.connect()]
        try:
            conns[0].cmd(b"set race 0 0 4\r\ninit\r\n")
            barrier = threading.Barrier(2, timeout=harness.IO_TIMEOUT)
            results = [[None] * rounds, [None] * rounds]
            failures = []

            def racer(me):
                c = conns[me]
                try:
                    for r in range(rounds):
                        meta = r % 2 == 1
                        if meta:
                            c.send(b"mg race c v\r\n")
                            line, _ = c.read_meta()
                            cas = int([t for t in line.split()
                                       if t.startswith(b"c")][0][1:])
                        else:
                            c.send(b"gets race\r\n")
                            cas = c.read_retrieval()[b"race"][2]
                        v = b"r%d-c%d" % (r, me)
                        barrier.wait()
                        if meta:
                            got = c.cmd(b"ms race %d C%d\r\n%s\r\n"
                                        % (len(v), cas, v))
                            got = {b"HD\r\n": "won",
                                   b"EX\r\n": "lost"}.get(got, got)
                        else:
                            got = c.cmd(b"cas race 0 0 %d %d\r\n%s\r\n"
                                        % (len(v), cas, v))
                            got = {b"STORED\r\n": "won",
                                   b"EXISTS\r\n": "lost"}.get(got, got)
                        results[me][r] = (got, cas)
                        barrier.wait()
                        if me == 0:
                            # Both have answered: the value is the
                            # winner's.
                            won = [i for i in (0, 1)
                                   if results[i][r][0] == "won"]
                            c.send(b"get race\r\n")
                            now = c.read_retrieval()[b"race"][1]
                            if len(won) == 1 and \
                                    now != b"r%d-c%d" % (r, won[0]):
                                failures.append(
                                    "round %d: client %d won, the value is"
                                    " %r" % (r, won[0], now))
                except Exception as e:  # noqa: BLE001 - reported below
                    failures.append("client %d: %s: %s"
                                    % (me, type(e).__name__, e))
                    barrier.abort()

            threads = [threading.Thread(target=racer, args=(i,))
                       for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            check(not failures, "; ".join(failures))
            wins = [0, 0]
            with srv.connect() as c:
                for r in range(rounds):
                    (a, ca), (b, cb) = results[0][r], results[1][r]
                    check(ca == cb, "round %d: the clients read different"
                          " CAS values %d and %d" % (r, ca, cb))
                    check(sorted([a, b]) == ["lost", "won"],
                          "round %d (%s): client 0 %r, client 1 %r"
                          % (r, "ms C" if r % 2 else "cas", a, b))
                    wins[0 if a == "won" else 1] += 1
                c.send(b"get race\r\n")
                last = c.read_retrieval()[b"race"][1]
            r = rounds - 1
            winner = 0 if results[0][r][0] == "won" else 1
            check(last == b"r%d-c%d" % (r, winner),
                  "after the last round the value is %r, the winner was"
                  " client %d" % (last, winner))
            print("   %d rounds, wins %d / %d" % (rounds, wins[0], wins[1]))
        finally:
            for c in conns:
                c.close()


if __name__ == "__main__":
    harness.run_checks([load_pipelined_model, deep_pipeline_like_memcached,
                        cas_race])

#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The warm hand-off: the hit ratio, second by second, after the ring
changes under a steady read load, with hand-off and without.

Nodes are memlaned processes on loopback ports, joined by gossip
(--seeds). A read-through client on node 0, which never leaves, reads
keys drawn from a zipfian distribution (s = 0.99) over a steady key set,
one get per key, pipelined in batches at a fixed rate; a miss is filled
with a set, as a cache's user does. Node 0 forwards each key to its
owner. Two changes are measured:

  join   three nodes hold every key; a fourth joins and takes about a
         quarter of the ring
  leave  four nodes hold every key; the fourth leaves gracefully
         (memlanectl leave) and its ranges go back to the other three

each with --handoff-window 30 (the default) and 0 (no hand-off). The
seconds are counted from the moment node 0's ring changes.

  bench/compare_handoff.py [--seconds 30] [--keys 20000] [--rate 4000]
                           [--json FILE] [--build DIR]
"""

import argparse
import bisect
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_cluster import wait_port  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def port_free(port, kind):
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port(taken):
    """A port p for a node, with p + 1000 (its admin endpoint) and p + 2000
    (its gossip port, TCP and UDP) free too."""
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        want = {p, p + 1000, p + 2000}
        if (p + 2000 < 65536 and not taken & want and
                all(port_free(q, socket.SOCK_STREAM) for q in want) and
                port_free(p + 2000, socket.SOCK_DGRAM)):
            taken |= want
            return p


def admin(port, path, post=False):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                 data=b"" if post else None,
                                 method="POST" if post else "GET")
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read() or b"{}")


class Cluster:
    def __init__(self, memlaned, n, window, log):
        taken = set()
        self.memlaned, self.window, self.log = memlaned, window, log
        self.ports = [free_port(taken) for _ in range(n)]
        self.seeds = ",".join("127.0.0.1:%d" % (p + 2000)
                              for p in self.ports)
        self.procs = [None] * n

    def start(self, i):
        p = self.ports[i]
        self.procs[i] = subprocess.Popen(
            [self.memlaned, "-p", str(p), "-U", "0", "-l", "127.0.0.1",
             "-t", "1", "-m", "64", "--seeds", self.seeds,
             # LAN-like timers, lenient enough for a loaded machine
             # (sanitizer builds, tests beside): a false suspicion here
             # would change the ring under the measurement
             "--probe-interval", "500", "--probe-timeout", "400",
             "--suspicion-mult", "4", "--handoff-window", str(self.window)]
            + (["-u", "root"] if os.geteuid() == 0 else []),
            stdout=subprocess.DEVNULL, stderr=self.log)
        wait_port(p)

    def members(self, i):
        """Members that own points on node i's ring."""
        r = admin(self.ports[i] + 1000, "/v1/ring")
        return sum(1 for m in r["members"] if m["points"] > 0)

    def stats(self, i):
        out = {}
        with socket.create_connection(("127.0.0.1", self.ports[i])) as s:
            s.sendall(b"stats dataplane\r\n")
            buf = b""
            while not buf.endswith(b"END\r\n"):
                buf += s.recv(65536)
        for line in buf.decode().splitlines():
            w = line.split()
            if len(w) == 3 and w[0] == "STAT" and w[2].isdigit():
                out[w[1]] = int(w[2])
        return out

    def stop(self):
        for p in self.procs:
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()


class Reader:
    """A read-through client of node 0: get, and set on a miss."""

    def __init__(self, port, keys, seed):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.keys = keys
        weights = [1.0 / (r + 1) ** 0.99 for r in range(keys)]
        total, acc, self.cdf = sum(weights), 0.0, []
        for w in weights:
            acc += w
            self.cdf.append(acc / total)
        self.rng = random.Random(seed)
        # the rank of a key is not its name: hot keys are spread
        self.names = list(range(keys))
        self.rng.shuffle(self.names)

    def key(self):
        r = bisect.bisect_left(self.cdf, self.rng.random())
        return b"h:%d" % self.names[min(r, self.keys - 1)]

    def line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(262144)
            if not d:
                raise RuntimeError("node 0 closed the connection")
            self.buf += d
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def skip(self, n):
        while len(self.buf) < n:
            self.buf += self.s.recv(262144)
        self.buf = self.buf[n:]

    def sets(self, keys):
        self.s.sendall(b"".join(b"set %s 0 0 8\r\nvalue-%s\r\n"
                                % (k, k[-2:].rjust(2, b"0")) for k in keys))
        for _ in keys:
            line = self.line()
            if line != b"STORED":
                raise RuntimeError("set: %r" % line)

    def batch(self, n):
        """n gets; returns (hits, misses); misses are set again."""
        keys = [self.key() for _ in range(n)]
        self.s.sendall(b"".join(b"get %s\r\n" % k for k in keys))
        hits, missed = 0, []
        for k in keys:
            line = self.line()
            if line.startswith(b"VALUE"):
                self.skip(int(line.split()[3]) + 2)
                if self.line() != b"END":
                    raise RuntimeError("get: no END")
                hits += 1
            elif line == b"END":
                missed.append(k)
            else:
                raise RuntimeError("get: %r" % line)
        if missed:
            self.sets(missed)
        return hits, len(missed)

    def fill(self):
        allk = [b"h:%d" % i for i in range(self.keys)]
        for i in range(0, len(allk), 500):
            self.sets(allk[i:i + 500])


def converge(cl, want, among, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(cl.members(i) == want for i in among):
            return
        time.sleep(0.1)
    raise RuntimeError("the rings did not reach %d members" % want)


def run_one(args, change, window, log):
    n = 4
    cl = Cluster(args.memlaned, n, window, log)
    try:
        first = 3 if change == "join" else 4
        for i in range(first):
            cl.start(i)
        converge(cl, first, range(first))
        rd = Reader(cl.ports[0], args.keys, args.seed)
        rd.fill()
        per = max(1, args.rate // 20)  # a batch every 50 ms
        # a warm, steady second before the change
        for _ in range(20):
            rd.batch(per)
            time.sleep(0.05)
        if change == "join":
            cl.start(3)
            want = 4
        else:
            admin(cl.ports[3] + 1000, "/v1/leave", post=True)
            want = 3
        # the clock starts when node 0 routes by the new ring
        deadline = time.monotonic() + 30
        while cl.members(0) != want:
            if time.monotonic() > deadline:
                raise RuntimeError("node 0's ring did not change")
            time.sleep(0.02)
        t0 = time.monotonic()
        seconds = []
        for sec in range(args.seconds):
            h = m = 0
            while time.monotonic() < t0 + sec + 1:
                a, b = rd.batch(per)
                h, m = h + a, m + b
                left = t0 + sec + 1 - time.monotonic()
                if left > 0:
                    time.sleep(min(0.05, left))
            seconds.append(h / max(1, h + m))
        st = {}
        for i in range(n):
            if cl.procs[i] is not None:
                s = cl.stats(i)
                for k in ("dp_handoff_fetches", "dp_handoff_fetched",
                          "dp_handoff_absent", "dp_purged"):
                    st[k] = st.get(k, 0) + s.get(k, 0)
        return {"per_second": seconds, "stats": st}
    finally:
        cl.stop()


def run(args, log=None):
    rows = {}
    for change in ("join", "leave"):
        for label, window in (("handoff", 30), ("none", 0)):
            print("handoff: %s, %s" % (change, label), file=sys.stderr)
            rows["%s_%s" % (change, label)] = run_one(args, change, window,
                                                      log)
    return rows


def report(args, rows):
    print("\nHit ratio per second after the ring changes: zipfian reads "
          "(s = 0.99) of %d keys\nat %d gets/s through node 0, a miss "
          "filled with a set; -t 1 nodes, gossip\n" % (args.keys, args.rate))
    for change, what in (("join", "a 4th node joins 3"),
                         ("leave", "the 4th of 4 leaves gracefully")):
        w, wo = rows[change + "_handoff"], rows[change + "_none"]
        print("%s:\n" % what)
        print("| second | with hand-off | without |")
        print("|---|---|---|")
        for s in range(len(w["per_second"])):
            print("| %d | %.3f | %.3f |" % (s + 1, w["per_second"][s],
                                          wo["per_second"][s]))
        mw = sum(w["per_second"]) / len(w["per_second"])
        mo = sum(wo["per_second"]) / len(wo["per_second"])
        print("| mean | %.3f | %.3f |" % (mw, mo))
        print("\nfetched from the previous owner: %d of %d tried (%d not "
              "there)\n" % (w["stats"]["dp_handoff_fetched"],
                            w["stats"]["dp_handoff_fetches"],
                            w["stats"]["dp_handoff_absent"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--keys", type=int, default=20000)
    ap.add_argument("--rate", type=int, default=4000, help="gets per second")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    args.memlaned = os.path.join(args.build, "dataplane", "memlaned")
    with tempfile.TemporaryFile() as log:
        try:
            rows = run(args, log)
        except Exception:
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace")[-4000:])
            raise
    report(args, rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()

# SPDX-License-Identifier: BSD-3-Clause
"""Membership by gossip: three memlaned nodes on loopback ports, started
with --seeds only, signed with a cluster key the test writes.

  - memlanectl members shows every node alive on every node within a few
    seconds, and every node holds the same ring;
  - kill -9 of one node: it is marked dead within the detection bound,
    the rings drop it, and clients keep working with only its keys
    missing; started again, it rejoins with a higher incarnation;
  - memlanectl leave: the node is marked left at once everywhere;
  - ownership flapping A -> B -> A (a drain, then its end): what was
    written at B is never shadowed by A's older copy;
  - forged, truncated, oversized and (as root, captured on lo) replayed
    datagrams on the gossip port change nothing and are counted under
    their reason;
  - gossip off loopback without --cluster-key-file is refused.

The timers are short (probe interval 200 ms, timeout 100 ms, suspicion
multiplier 2) so that the bounds are a few seconds.
"""

import os
import signal
import socket
import struct
import sys
import tempfile
import time

sys.dont_write_bytecode = True

import harness  # noqa: E402
from harness import check

from pymemcache.client.base import Client  # noqa: E402

PROBE_MS = 200
TIMEOUT_MS = 100
SUSPICION = 2
# the suspicion timeout at its longest (suspicion_max_mult 6 times the
# minimum, 2 * log10(3) < 1 probe intervals), plus a probe round for
# the first suspicion, plus the news reaching everyone
DEAD_BOUND_S = 6 * SUSPICION * PROBE_MS / 1000 + 3 * PROBE_MS / 1000 + 2
KEYS = 300


ctl = harness.memlanectl
ctl_json = harness.memlanectl_json
wait_for = harness.wait_for


def ketama_owners(servers, prefix, n):
    return [int(x) for x in
            harness.ketama_client("owners", servers, prefix,
                                  str(n)).split()]


class GossipCluster:
    def __init__(self, keyfile, n=3):
        ports = []
        while len(ports) < 3 * n:
            p = harness.free_port()
            if p not in ports:
                ports.append(p)
        self.ports, self.admin, self.gossip = (ports[:n], ports[n:2 * n],
                                               ports[2 * n:])
        self.seeds = ",".join("127.0.0.1:%d" % g for g in self.gossip)
        self.keyfile = keyfile
        self.nodes = [self.node(i) for i in range(n)]

    def node(self, i):
        return harness.Server(
            "memlaned", threads=2, port=self.ports[i],
            extra=("--seeds", self.seeds,
                   "--gossip", "127.0.0.1:%d" % self.gossip[i],
                   "--cluster-key-file", self.keyfile,
                   "--admin", "127.0.0.1:%d" % self.admin[i],
                   "--probe-interval", str(PROBE_MS),
                   "--probe-timeout", str(TIMEOUT_MS),
                   "--suspicion-mult", str(SUSPICION),
                   "--pushpull-interval", "2000",
                   "--forward-timeout", "500"))

    def __enter__(self):
        harness.Servers(*self.nodes).__enter__()
        return self

    def __exit__(self, *exc):
        live = [n for n in self.nodes if n.proc is not None]
        return harness.Servers(*live).__exit__(*exc)

    def states(self, i):
        """member address -> (state, incarnation), as node i sees it."""
        m = ctl_json(self.admin[i], "members")
        return {x["address"]: (x["state"], x["incarnation"])
                for x in m["members"]}

    def addr(self, i):
        return "127.0.0.1:%d" % self.ports[i]

    def ring(self, i):
        r = ctl_json(self.admin[i], "ring")
        return {m["address"]: m["points"] for m in r["members"]}


def holders(cl, k):
    """The live nodes whose own shard holds g:k (asked as a forwarding
    peer, so that nothing is forwarded on)."""
    out = []
    for i, n in enumerate(cl.nodes):
        if n.proc is None:
            continue
        with harness.Conn(cl.ports[i]) as c:
            c.send(b"MEMLANE-FORWARD 1\r\nget g:%d\r\nmn\r\n" % k)
            if c.read_until(b"MN\r\n").startswith(b"VALUE"):
                out.append(i)
    return out


def all_alive(cl, among):
    for i in among:
        st = cl.states(i)
        for j in among:
            if st.get(cl.addr(j), ("?",))[0] != "alive":
                return False
    return True


def key_file():
    f = tempfile.NamedTemporaryFile("wb", delete=False, suffix=".key")
    f.write(os.urandom(32))
    f.close()
    return f.name


def join_detect_rejoin():
    kf = key_file()
    try:
        with GossipCluster(kf) as cl:
            wait_for("every node alive everywhere",
                     lambda: all_alive(cl, range(3)), 10)
            rings = [cl.ring(i) for i in range(3)]
            check(rings[0] == rings[1] == rings[2] and
                  all(p > 0 for p in rings[0].values()),
                  "every node holds the same ring: %r" % rings)
            table = ctl(cl.admin[0], "members").stdout.decode()
            check("alive" in table and "INC" in table, "members table:\n%s"
                  % table)

            servers = ",".join(cl.addr(i) for i in range(3))
            owners = ketama_owners(servers, "g:", KEYS)
            c0 = Client(("127.0.0.1", cl.ports[0]), timeout=5,
                        default_noreply=False)
            for k in range(KEYS):
                check(c0.set("g:%d" % k, b"v%d" % k), "set g:%d" % k)

            victim = cl.nodes[2]
            t0 = time.time()
            os.kill(victim.pid, signal.SIGKILL)
            victim.proc.wait()
            victim.proc = None
            t = wait_for("the killed node dead at both others",
                         lambda: all(cl.states(i)[cl.addr(2)][0] == "dead"
                                     for i in (0, 1)), DEAD_BOUND_S + 5)
            check(t - t0 <= DEAD_BOUND_S, "dead after %.2f s, bound %.2f s"
                  % (t - t0, DEAD_BOUND_S))
            for i in (0, 1):
                check(cl.ring(i)[cl.addr(2)] == 0,
                      "node %d's ring dropped the dead node" % i)
            for k in range(KEYS):
                try:
                    got = c0.get("g:%d" % k)
                except Exception as e:
                    harness.fail("g:%d (owner %d) after the death: %r; %r"
                                 % (k, owners[k], e, cl.states(0)))
                if owners[k] == 2:
                    check(got is None, "g:%d (dead node's) reads %r"
                          % (k, got))
                else:
                    check(got == b"v%d" % k, "g:%d (owner %d) reads %r; "
                          "held by %r; rings %r" % (k, owners[k], got,
                                                    holders(cl, k),
                                                    [cl.ring(i) for i in
                                                     (0, 1)]))
            # its keys have new owners and can be written again
            for k in range(KEYS):
                if owners[k] == 2:
                    check(c0.set("g:%d" % k, b"w"), "set g:%d again" % k)
                    check(c0.get("g:%d" % k) == b"w", "get g:%d again" % k)
                    break
            c0.close()

            cl.nodes[2] = cl.node(2)
            cl.nodes[2].start()
            wait_for("the restarted node alive everywhere",
                     lambda: all_alive(cl, range(3)), 10)
            check(cl.states(0)[cl.addr(2)][1] >= 1,
                  "it rejoined with a higher incarnation: %r"
                  % (cl.states(0)[cl.addr(2)],))
            rings = [cl.ring(i) for i in range(3)]
            check(rings[0] == rings[1] == rings[2],
                  "the same ring again: %r" % rings)
    finally:
        os.unlink(kf)


def graceful_leave():
    kf = key_file()
    try:
        with GossipCluster(kf) as cl:
            wait_for("every node alive everywhere",
                     lambda: all_alive(cl, range(3)), 10)
            out = ctl(cl.admin[1], "leave").stdout.decode()
            check("left" in out, "memlanectl leave: %r" % out)
            t0 = time.time()
            wait_for("left at once",
                     lambda: all(cl.states(i)[cl.addr(1)][0] == "left"
                                 for i in (0, 2)), 1.0)
            check(time.time() - t0 < 1.0, "left after %.2f s"
                  % (time.time() - t0))
            check(cl.ring(0)[cl.addr(1)] == 0, "the ring dropped it")
            # it keeps running and answering what reaches it
            c1 = Client(("127.0.0.1", cl.ports[1]), timeout=5,
                        default_noreply=False)
            check(c1.set("after-leave", b"x"), "the left node still serves")
            check(c1.get("after-leave") == b"x", "and reads back")
            c1.close()
            bad = ctl(cl.admin[1], "join", "no-such-host:1", ok=False)
            check(bad.returncode == 1 and b"resolve" in bad.stderr,
                  "join of a bad seed: %r" % bad.stderr)
            # and it joins again through a seed
            out = ctl(cl.admin[1], "join",
                      "127.0.0.1:%d" % cl.gossip[0]).stdout.decode()
            check("joined" in out, "memlanectl join: %r" % out)
            wait_for("the node that left alive everywhere again",
                     lambda: all_alive(cl, range(3)), 5)
            check(cl.ring(0)[cl.addr(1)] > 0, "and on the ring again")
    finally:
        os.unlink(kf)


def purged(port):
    with harness.Conn(port) as c:
        c.send(b"stats dataplane\r\n")
        while True:
            line = c.readline()
            if line == b"END\r\n":
                harness.fail("no dp_purged in stats dataplane")
            w = line.split()
            if w[1] == b"dp_purged":
                c.read_until(b"END\r\n")
                return int(w[2])


def no_stale_read_after_a_flap():
    """A owns k, then B (A drains), then A again: what was written at
    B is never shadowed by A's older copy. A drops what it no longer owns
    when the ring takes it away, so k reads as B's value or as a miss."""
    kf = key_file()
    try:
        with GossipCluster(kf) as cl:
            wait_for("every node alive everywhere",
                     lambda: all_alive(cl, range(3)), 10)
            servers = ",".join(cl.addr(i) for i in range(3))
            owners = ketama_owners(servers, "f:", 200)
            mine = [k for k in range(200) if owners[k] == 0]
            check(len(mine) > 20, "node 0 owns keys")
            c = Client(("127.0.0.1", cl.ports[1]), timeout=5,
                       default_noreply=False)
            for k in mine:
                check(c.set("f:%d" % k, b"old"), "set f:%d" % k)
            ctl(cl.admin[0], "drain")
            wait_for("node 0 owns nothing on every ring",
                     lambda: all(cl.ring(i)[cl.addr(0)] == 0
                                 for i in range(3)), 5)
            wait_for("node 0 dropped what it lost",
                     lambda: purged(cl.ports[0]) >= len(mine), 5)
            for k in mine:
                check(c.set("f:%d" % k, b"new"), "set f:%d at B" % k)
            ctl(cl.admin[0], "weight", "1")
            wait_for("node 0 owns keys again on every ring",
                     lambda: all(cl.ring(i)[cl.addr(0)] > 0
                                 for i in range(3)), 5)
            for k in mine:
                got = c.get("f:%d" % k)
                check(got in (b"new", None), "f:%d after A, B, A: %r"
                      % (k, got))
                check(got != b"old", "A's older copy shadows B's")
            c.close()
    finally:
        os.unlink(kf)


def bad_datagrams():
    kf = key_file()
    try:
        with GossipCluster(kf) as cl:
            wait_for("every node alive everywhere",
                     lambda: all_alive(cl, range(3)), 10)
            before = ctl_json(cl.admin[0], "stats")["gossip"]
            states = cl.states(0)
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            dest = ("127.0.0.1", cl.gossip[0])
            now_us = int(time.time() * 1e6)
            hdr = b"MLG1" + struct.pack("<BBHQ", 5, 0, 0, now_us) + \
                socket.inet_aton("127.0.0.1") + \
                struct.pack("<HHIIHH", cl.gossip[1], 0, 0, 0, 0, 0)
            # forged: a well-formed message under no key, or a wrong MAC
            for i in range(5):
                s.sendto(hdr + os.urandom(32), dest)
            # truncated
            for n in (0, 1, 4, 20, 35):
                s.sendto(hdr[:n], dest)
            # oversized
            s.sendto(hdr + b"x" * 3000, dest)
            s.sendto(os.urandom(1500), dest)
            # replayed: a real datagram to node 0, captured on the
            # loopback interface (as root) and sent again
            replays = 0
            if os.geteuid() == 0:
                cap = capture_gossip(cl.gossip[0])
                check(cap is not None, "a gossip datagram to node 0 "
                      "captured")
                for _ in range(3):
                    s.sendto(cap, dest)
                replays = 3
            s.close()
            time.sleep(0.5)
            after = ctl_json(cl.admin[0], "stats")["gossip"]
            check(after["replayed"] - before["replayed"] == replays,
                  "replays counted: %r -> %r" % (before, after))
            check(after["bad_mac"] - before["bad_mac"] == 5,
                  "forged counted: %r -> %r" % (before, after))
            check(after["malformed"] - before["malformed"] == 5,
                  "truncated counted: %r" % after)
            check(after["oversized"] - before["oversized"] == 2,
                  "oversized counted: %r" % after)
            check(cl.states(0) == states, "nothing changed: %r"
                  % cl.states(0))
            fams = harness_metrics(cl.admin[0])
            check("memlane_gossip_dropped_total" in fams,
                  "/metrics has the drops")
            check(all_alive(cl, range(3)), "the cluster is as it was")
    finally:
        os.unlink(kf)


def capture_gossip(port, timeout=5.0):
    """The UDP payload of one datagram to port on lo."""
    raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW,
                        socket.htons(0x0003))
    try:
        raw.bind(("lo", 0))
        raw.settimeout(0.2)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                frame = raw.recv(65536)
            except socket.timeout:
                continue
            if len(frame) < 14 + 20 + 8 or frame[12:14] != b"\x08\x00":
                continue
            ihl = (frame[14] & 0x0f) * 4
            if frame[14 + 9] != 17:
                continue
            udp = frame[14 + ihl:]
            if struct.unpack(">H", udp[2:4])[0] == port and \
                    udp[8:12] == b"MLG1":
                return udp[8:]
        return None
    finally:
        raw.close()


def harness_metrics(admin):
    import urllib.request
    from prometheus_client.parser import text_string_to_metric_families
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin,
                                timeout=10) as r:
        text = r.read().decode()
    return {f.name + "_total" if f.type == "counter" else f.name: f
            for f in text_string_to_metric_families(text)}


def refused_off_loopback():
    out = harness.Server("memlaned", extra=("--gossip", "198.18.0.1:7946"))
    try:
        out.start()
        harness.fail("memlaned gossiped off loopback without a key")
    except harness.TestFailure as e:
        check("--cluster-key-file" in str(e), "the refusal says why: %s"
              % e)
    short = tempfile.NamedTemporaryFile("wb", delete=False)
    short.write(b"too short")
    short.close()
    try:
        out = harness.Server("memlaned", extra=(
            "--seeds", "127.0.0.1:1", "--cluster-key-file", short.name))
        try:
            out.start()
            harness.fail("memlaned took a 9-byte key")
        except harness.TestFailure as e:
            check("16 to 64 bytes" in str(e), "a short key: %s" % e)
    finally:
        os.unlink(short.name)


if __name__ == "__main__":
    if harness.target_is_memcached():
        sys.exit(harness.SKIP)
    harness.run_checks([join_detect_rejoin, graceful_leave,
                        no_stale_read_after_a_flap, bad_datagrams,
                        refused_off_loopback])

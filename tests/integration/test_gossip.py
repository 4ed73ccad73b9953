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
    written at B is never shadowed by A's older copy, with the hand-off
    window and without; within it, A fetches B's values;
  - a fourth node joins three under a zipfian read load: the hit ratio
    with hand-off is at least that without (bench/compare_handoff.py
    measures it, this runs its short form);
  - forged, truncated, oversized, replayed and unknown senders' hand-off
    digests on the push-pull port change nothing and are counted;
  - a peer that opens the push-pull port and stalls does not stall the
    probes: the node is never dead to the others meanwhile;
  - forged, truncated, oversized and (as root, captured on lo) replayed
    datagrams on the gossip port change nothing and are counted under
    their reason;
  - gossip off loopback without --cluster-key-file is refused.

The timers are short (probe interval 200 ms, timeout 100 ms, suspicion
multiplier 2) so that the bounds are a few seconds.
"""

import hashlib
import hmac
import os
import signal
import socket
import struct
import sys
import tempfile
import time
import urllib.request

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
    def __init__(self, keyfile, n=3, extra=()):
        self.extra = tuple(extra)
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
                   "--forward-timeout", "500") + self.extra)

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


def node0_serves(cl, key):
    c = Client(("127.0.0.1", cl.ports[0]), timeout=5)
    check(c.set(key, b"x") and c.get(key) == b"x", "node 0 still serves")
    c.close()


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


def dp_stat(port, name):
    return int(harness.stats(port, "dataplane")[name])


def held_here(port, key):
    """Whether node port's own shard holds key (asked as a forwarding
    peer, so that nothing is forwarded on or fetched)."""
    with harness.Conn(port) as c:
        c.send(b"MEMLANE-FORWARD 1\r\nget %s\r\nmn\r\n" % key.encode())
        return c.read_until(b"MN\r\n").startswith(b"VALUE")


def flap(cl, window):
    """Node 0 owns some f: keys, drains (node 1..2 own them), writes go
    there, then node 0 takes them back. Returns (keys, client)."""
    servers = ",".join(cl.addr(i) for i in range(3))
    owners = ketama_owners(servers, "f:", 200)
    mine = [k for k in range(200) if owners[k] == 0]
    check(len(mine) > 20, "node 0 owns keys")
    c = Client(("127.0.0.1", cl.ports[1]), timeout=5, default_noreply=False)
    for k in mine:
        check(c.set("f:%d" % k, b"old"), "set f:%d" % k)
    ctl(cl.admin[0], "drain")
    wait_for("node 0 owns nothing on every ring",
             lambda: all(cl.ring(i)[cl.addr(0)] == 0 for i in range(3)), 5)
    if window:
        # the previous owner keeps what it lost for the window
        time.sleep(0.5)
        check(all(held_here(cl.ports[0], "f:%d" % k) for k in mine),
              "node 0 keeps what it lost for the hand-off window")
    else:
        wait_for("node 0 dropped what it lost",
                 lambda: dp_stat(cl.ports[0], "dp_purged") >= len(mine), 5)
    for k in mine:
        check(c.set("f:%d" % k, b"new"), "set f:%d at B" % k)
    ctl(cl.admin[0], "weight", "1")
    wait_for("node 0 owns keys again on every ring",
             lambda: all(cl.ring(i)[cl.addr(0)] > 0 for i in range(3)), 5)
    return mine, c


def no_stale_read_after_a_flap():
    """A owns k, then B (A drains), then A again: what was written at
    B is never shadowed by A's older copy. Without a hand-off window A
    drops what it no longer owns at once, so k reads as B's value or as
    a miss."""
    kf = key_file()
    try:
        with GossipCluster(kf, extra=("--handoff-window", "0")) as cl:
            wait_for("every node alive everywhere",
                     lambda: all_alive(cl, range(3)), 10)
            mine, c = flap(cl, 0)
            for k in mine:
                got = c.get("f:%d" % k)
                check(got in (b"new", None), "f:%d after A, B, A: %r"
                      % (k, got))
                check(got != b"old", "A's older copy shadows B's")
            c.close()
    finally:
        os.unlink(kf)


def flap_within_the_window():
    """The same flap inside the hand-off window: A still holds its old
    copies when the keys come back, and never serves them (the gate of
    ranges gained drops them); B, which lost the keys, offers A its
    digest, and A fetches B's values. Every read is B's value."""
    kf = key_file()
    try:
        with GossipCluster(kf) as cl:
            wait_for("every node alive everywhere",
                     lambda: all_alive(cl, range(3)), 10)
            mine, c = flap(cl, 30)
            wait_for("node 0 holds its previous owners' digests",
                     lambda: dp_stat(cl.ports[0], "dp_handoff_offers") >= 1,
                     5)
            # a delete at the new owner is final: the key, not fetched
            # before, is not fetched back
            gone = mine.pop()
            check(c.delete("f:%d" % gone), "delete at the new owner")
            check(c.get("f:%d" % gone) is None,
                  "a deleted key is not fetched back")
            # a value written at the new owner wins over the previous
            # owner's, fetched or not
            newest = mine.pop()
            check(c.set("f:%d" % newest, b"newest"), "set at the new owner")
            check(c.get("f:%d" % newest) == b"newest",
                  "the new owner's own write wins")
            check(c.add("f:%d" % mine[-1], b"added", noreply=False) is False,
                  "add of a key the previous owner holds is not stored")
            for k in mine:
                got = c.get("f:%d" % k)
                check(got == b"new", "f:%d after A, B, A: %r" % (k, got))
            check(dp_stat(cl.ports[0], "dp_handoff_fetched") >= len(mine),
                  "node 0 fetched the keys from their previous owners")
            wait_for("node 0 dropped its older copies",
                     lambda: dp_stat(cl.ports[0], "dp_purged") >= len(mine),
                     5)
            # fetched once: read again, nothing more is fetched
            before = dp_stat(cl.ports[0], "dp_handoff_fetches")
            for k in mine:
                check(c.get("f:%d" % k) == b"new", "f:%d again" % k)
            check(dp_stat(cl.ports[0], "dp_handoff_fetches") == before,
                  "a key is fetched once")
            c.close()
    finally:
        os.unlink(kf)


def fourth_node_joins_under_load():
    """The hand-off benchmark's join, short: the hit ratio with hand-off
    is at least the hit ratio without, and keys were fetched."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(
        __file__)), "..", "..", "bench"))
    import compare_handoff

    class Args:
        memlaned = harness.memlaned_path()
        keys, rate, seed, seconds = 5000, 2000, 7, 6

    res = {}
    with tempfile.TemporaryFile() as log:
        for label, window in (("with", 30), ("without", 0)):
            try:
                res[label] = compare_handoff.run_one(Args, "join", window,
                                                     log)
            except RuntimeError as e:
                log.seek(0)
                harness.fail("%s hand-off: %s\n%s" % (
                    label, e, log.read().decode(errors="replace")[-2000:]))
    w, wo = res["with"], res["without"]
    mw = sum(w["per_second"]) / len(w["per_second"])
    mo = sum(wo["per_second"]) / len(wo["per_second"])
    print("  hit ratio after the join: %.3f with hand-off, %.3f without; "
          "%d of %d fetched" % (mw, mo, w["stats"]["dp_handoff_fetched"],
                                w["stats"]["dp_handoff_fetches"]))
    check(mw >= mo, "with hand-off %.3f < without %.3f" % (mw, mo))
    check(w["stats"]["dp_handoff_fetched"] > 0,
          "the new node fetched keys from their previous owners")
    check(wo["stats"]["dp_handoff_fetches"] == 0,
          "without a window nothing is fetched")


def digest_frame(key, port, ranges, bloom, sent_ms=None):
    """A hand-off digest (control/ctl_handoff.c) from gossip port port."""
    sent = int(time.time() * 1000) if sent_ms is None else sent_ms
    body = (b"MLHO\x01\x00\x00\x00" + struct.pack("<Q", sent) +
            socket.inet_aton("127.0.0.1") +
            struct.pack("<HHQI", port, 0, 1, len(ranges)) +
            b"".join(struct.pack("<II", lo, hi) for lo, hi in ranges) +
            struct.pack("<I", len(bloom)) + bloom)
    body += hmac.new(key, body, hashlib.sha256).digest()
    return struct.pack("<I", len(body) | 0x80000000) + body


def send_digest(port, data, close_after=None):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data if close_after is None else data[:close_after])
        if close_after is not None:
            return
        try:
            s.recv(1)  # the node closes once it has read it
        except OSError:
            pass


def bad_digests():
    kf = key_file()
    with open(kf, "rb") as f:
        key = f.read()
    try:
        with GossipCluster(kf) as cl:
            wait_for("every node alive everywhere",
                     lambda: all_alive(cl, range(3)), 10)
            url = ("http://127.0.0.1:%d/v1/digest?lo=0&hi=4294967295"
                   "&format=binary" % cl.admin[1])
            with urllib.request.urlopen(url, timeout=5) as r:
                bloom = r.read()
            g0, g1 = cl.gossip[0], cl.gossip[1]
            ranges = [(0, 1 << 31)]

            def counts():
                h = ctl_json(cl.admin[0], "stats")["gossip"]["handoff"]
                return (h["received"], h["dropped"],
                        dp_stat(cl.ports[0], "dp_handoff_offers"))

            def after(what, want):
                wait_for(what, lambda: counts() == want, 3)

            rx, dropped, offers = counts()
            good = digest_frame(key, g1, ranges, bloom)
            send_digest(g0, good)
            after("a good digest is taken", (rx + 1, dropped, offers + 1))
            send_digest(g0, good)
            after("a replayed one is dropped", (rx + 1, dropped + 1,
                                                 offers + 1))
            forged = bytearray(digest_frame(key, g1, ranges, bloom))
            forged[-1] ^= 1
            send_digest(g0, bytes(forged))
            after("a forged one is dropped", (rx + 1, dropped + 2,
                                               offers + 1))
            other = digest_frame(os.urandom(32), g1, ranges, bloom)
            send_digest(g0, other)
            after("one signed with another key is dropped",
                  (rx + 1, dropped + 3, offers + 1))
            stranger = digest_frame(key, 1, ranges, bloom)
            send_digest(g0, stranger)
            after("one from no member is dropped",
                  (rx + 1, dropped + 4, offers + 1))
            old = digest_frame(key, g1, ranges, bloom,
                               int(time.time() * 1000) - 120000)
            send_digest(g0, old)
            after("one from two minutes ago is dropped",
                  (rx + 1, dropped + 5, offers + 1))
            send_digest(g0, digest_frame(key, g1, ranges, bloom),
                        close_after=100)
            after("a truncated one is dropped",
                  (rx + 1, dropped + 6, offers + 1))
            send_digest(g0, struct.pack("<I", 0x80000000 | (100 << 20)) +
                        b"x" * 64)
            after("an oversized one is dropped",
                  (rx + 1, dropped + 7, offers + 1))
            bad_ranges = digest_frame(key, g1, [(10, 5)], bloom)
            send_digest(g0, bad_ranges)
            after("one with bad ranges is dropped",
                  (rx + 1, dropped + 8, offers + 1))
            check(all_alive(cl, range(3)), "membership is as it was")
            node0_serves(cl, "after-digests")
    finally:
        os.unlink(kf)


def slow_peer_does_not_stall_probes():
    """A peer that opens the push-pull port, announces a hand-off digest
    and sends nothing more holds that connection for seconds: the node
    must go on answering probes meanwhile, and the others must never
    see it dead."""
    kf = key_file()
    try:
        with GossipCluster(kf) as cl:
            wait_for("every node alive everywhere",
                     lambda: all_alive(cl, range(3)), 10)
            seen = set()
            end = time.time() + 2 * DEAD_BOUND_S
            while time.time() < end:
                with socket.create_connection(
                        ("127.0.0.1", cl.gossip[0]), timeout=10) as s:
                    s.sendall(struct.pack("<I", 0x80000000 | 1000))
                    # held until the node gives up on it (or the end)
                    s.settimeout(0.2)
                    while time.time() < end:
                        try:
                            if not s.recv(1):
                                break
                        except socket.timeout:
                            pass
                        for i in (1, 2):
                            seen.add(cl.states(i)[cl.addr(0)][0])
            check(seen <= {"alive", "suspect"},
                  "node 0 was never dead to the others: %r" % seen)
            node0_serves(cl, "after-slow-peer")
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
                        no_stale_read_after_a_flap, flap_within_the_window,
                        fourth_node_joins_under_load, bad_digests,
                        slow_peer_does_not_stall_probes, bad_datagrams,
                        refused_off_loopback])

# SPDX-License-Identifier: BSD-3-Clause
"""Three memlaned nodes on loopback ports behaving as one cache.

Each node is given the others (--peers) and routes a key it does not own
to its owner by libmemcached's weighted ketama. The checks:

  - pymemcache (a plain client, one node) and libmemcached with ketama
    (every node) read back everything they wrote, through any node;
  - a script of text and meta commands (multi-key gets over every owner,
    noreply, quiet mode, CAS, TTLs, flags, a 512 KB binary value, one
    pipeline) gets through node 0 byte for byte what one node alone
    answers; UDP gets are forwarded too;
  - the ketama client causes no forward; the plain client's forwards are
    exactly the requests for keys that, by libmemcached's own ketama,
    another node owns;
  - memlanectl members, ring, stats and digest, and /metrics (parsed by
    prometheus_client) show what the test did;
  - drain: the drained node owns nothing on its ring and still serves
    what peers forward;
  - kill -9 one node: requests for its keys get SERVER_ERROR within the
    forward timeout, every other key keeps working, nothing hangs.

KETAMA_CLIENT and MEMLANECTL name the helpers meson builds.
"""

import base64
import os
import signal
import sys
import time
import urllib.request

sys.dont_write_bytecode = True

import harness  # noqa: E402
from harness import check

from pymemcache.client.base import Client  # noqa: E402

from prometheus_client.parser import text_string_to_metric_families  # noqa

KEYS = 400
FWD_TIMEOUT_MS = 500


ketama = harness.ketama_client
ctl = harness.memlanectl
ctl_json = harness.memlanectl_json


def http(admin, path, method="GET"):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (admin, path),
                                 method=method)
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read()


class Cluster:
    def __init__(self, n=3, threads=2, udp=False):
        self.ports = []
        while len(self.ports) < 2 * n:
            p = harness.free_port()
            if p not in self.ports:
                self.ports.append(p)
        self.admin = self.ports[n:]
        self.ports = self.ports[:n]
        peers = ",".join("127.0.0.1:%d" % p for p in self.ports)
        self.servers_arg = peers
        self.nodes = [harness.Server(
            "memlaned", threads=threads, port=p, udp=udp,
            extra=("--peers", peers, "--self", "127.0.0.1:%d" % p,
                   "--admin", "127.0.0.1:%d" % a,
                   "--forward-timeout", str(FWD_TIMEOUT_MS)))
            for p, a in zip(self.ports, self.admin)]

    def __enter__(self):
        harness.Servers(*self.nodes).__enter__()
        return self

    def __exit__(self, *exc):
        return harness.Servers(*self.nodes).__exit__(*exc)

    def client(self, i):
        return Client((harness.HOST, self.ports[i]), default_noreply=False,
                      connect_timeout=harness.IO_TIMEOUT,
                      timeout=harness.IO_TIMEOUT)

    def owners(self, prefix, n):
        return [int(x) for x in ketama("owners", self.servers_arg, prefix,
                                       str(n)).split()]

    def forwards(self, i):
        st = ctl_json(self.admin[i], "stats")
        return st["total"]["forwards"]

    def fwd_in(self, i):
        return ctl_json(self.admin[i], "stats")["total"]["forwarded_in"]


def plain_and_ketama_clients():
    with Cluster() as cl:
        owners = cl.owners("p:", KEYS)
        check(len(set(owners)) == 3, "ketama spreads keys over all three "
              "nodes: %r" % sorted(set(owners)))
        before = [cl.forwards(i) for i in range(3)]
        c0 = cl.client(0)
        for k in range(KEYS):
            check(c0.set("p:%d" % k, b"val-%d" % k),
                  "set p:%d through node 0" % k)
        # every key reads back through every node
        for i in range(3):
            ci = cl.client(i)
            for k in range(KEYS):
                got = ci.get("p:%d" % k)
                check(got == b"val-%d" % k, "get p:%d through node %d: %r"
                      % (k, i, got))
            many = ci.get_many(["p:%d" % k for k in range(0, KEYS, 7)])
            check(len(many) == len(range(0, KEYS, 7)),
                  "get_many through node %d: %d keys" % (i, len(many)))
            ci.close()
        c0.close()
        after = [cl.forwards(i) for i in range(3)]
        # node i forwarded every request for a key it does not own: the
        # sets (node 0 only), the gets, and each key of the get_many that
        # another node owns (a get of keys of several owners is split)
        for i in range(3):
            foreign = sum(1 for o in owners if o != i)
            mkeys = [owners[k] for k in range(0, KEYS, 7)]
            multi = sum(1 for k in mkeys if k != i)
            want = foreign * (2 if i == 0 else 1) + multi
            got = after[i] - before[i]
            check(got == want, "node %d forwarded %d requests; the ring "
                  "predicts %d" % (i, got, want))

        # the ketama client goes straight to the owners: no forwards
        before = [cl.forwards(i) for i in range(3)]
        fin = [cl.fwd_in(i) for i in range(3)]
        ketama("set", cl.servers_arg, "k:", str(KEYS))
        ketama("get", cl.servers_arg, "k:", str(KEYS))
        ketama("get", cl.servers_arg, "p:", "0")
        after = [cl.forwards(i) for i in range(3)]
        check(after == before, "the ketama client caused forwards: %r -> %r"
              % (before, after))
        check([cl.fwd_in(i) for i in range(3)] == fin,
              "forwarded_in moved under a ketama client")
        # what libmemcached wrote reads back through any one node
        c1 = cl.client(1)
        for k in range(0, KEYS, 3):
            check(c1.get("k:%d" % k) == b"v:k:%d" % k,
                  "get k:%d through node 1" % k)
        c1.close()

        # meta commands with a base64 key are forwarded with it
        with harness.Conn(cl.ports[2]) as c:
            for k in range(30):
                key = ("bk:%d" % k).encode()
                b64 = base64.b64encode(key)
                c.send(b"ms " + b64 + b" 2 b\r\nhi\r\n")
                check(c.readline() == b"HD\r\n", "ms b through node 2")
                c.send(b"mg " + b64 + b" b v k\r\n")
                line = c.readline()
                check(line.startswith(b"VA 2") and b"k" + b64 in line,
                      "mg b through node 2: %r" % line)
                check(c.readline() == b"hi\r\n", "mg b value")
        check_admin_views(cl, owners)


def script(keys, big):
    """Commands over keys of every owner, in two rounds: the second uses
    the CAS values the first returned (cas_of)."""
    a, b, c, miss = keys["a"], keys["b"], keys["c"], keys["miss"]
    one = [
        b"set %s 7 0 3\r\nabc\r\n" % a,
        b"set %s 4294967295 0 12\r\nx\r\nMN\r\nEND\r\n\r\n" % b,
        b"set %s 0 0 %d\r\n%s\r\n" % (c, len(big), big),
        b"set %s 1 0 1 noreply\r\n1\r\n" % keys["n1"],
        b"add %s 0 0 1\r\nz\r\n" % a,
        b"replace %s 0 0 1\r\nz\r\n" % miss,
        b"append %s 0 0 2\r\n++\r\n" % a,
        b"prepend %s 0 0 2\r\n--\r\n" % a,
        b"set %s 0 0 2\r\n10\r\n" % keys["ctr"],
        b"incr %s 5\r\n" % keys["ctr"],
        b"decr %s 100\r\n" % keys["ctr"],
        b"incr %s 1\r\n" % miss,
        b"incr %s 1\r\n" % a,
        # a multi-key get over every owner, with misses and repeats
        b"get %s %s %s %s %s %s\r\n" % (a, miss, b, keys["n1"], a, c),
        b"gets %s %s %s\r\n" % (b, miss, a),
        b"touch %s 100\r\n" % a,
        b"touch %s 100\r\n" % miss,
        b"gat 0 %s %s\r\n" % (a, miss),
        b"delete %s noreply\r\n" % keys["n1"],
        b"delete %s\r\n" % keys["n1"],
        b"set %s 0 2 1\r\nt\r\n" % keys["ttl"],
        b"set %s 0 -1 1\r\nt\r\n" % keys["neg"],
        b"get %s %s\r\n" % (keys["ttl"], keys["neg"]),
        # meta: flags, TTLs, quiet mode, opaque, arithmetic, base64 keys
        b"ms %s 2 F9 T0\r\nhi\r\n" % keys["m1"],
        b"mg %s v f t s k O123\r\n" % keys["m1"],
        b"mg %s v q\r\n" % miss,
        b"mg %s s v q k\r\n" % keys["m1"],
        b"ms %s 1 q\r\nq\r\n" % keys["m2"],
        b"md %s q\r\n" % miss,
        b"md %s q\r\n" % keys["m2"],
        b"mg %s v\r\n" % keys["m2"],
        b"ma %s N0 J13 D2\r\n" % keys["ma"],
        b"ma %s v D5\r\n" % keys["ma"],
        b"ma %s q MD D100\r\n" % keys["ma"],
        b"mg %s v\r\n" % keys["ma"],
        b"mn\r\n",
        b"get\r\n",
        b"set %s 0 0 z\r\n" % a,
        b"gets %s %s\r\n" % (a, b),
    ]
    return one


def cas_of(out, key):
    for line in out.split(b"\r\n"):
        parts = line.split()
        if len(parts) == 5 and parts[0] == b"VALUE" and parts[1] == key:
            return parts[4]
    harness.fail("no CAS for %r in %r" % (key, out[-400:]))


def normalise(out):
    """CAS values differ between servers: each is replaced by the order
    in which it first appears, so equal ones stay equal."""
    seen = {}
    lines = []
    for line in out.split(b"\r\n"):
        parts = line.split(b" ")
        if len(parts) == 5 and parts[0] == b"VALUE":
            parts[4] = b"<cas%d>" % seen.setdefault(parts[4], len(seen))
        elif parts and parts[0] in (b"VA", b"HD", b"EN", b"NF", b"NS"):
            for i, p in enumerate(parts):
                if p.startswith(b"c") and p[1:].isdigit():
                    parts[i] = b"c<cas%d>" % seen.setdefault(p[1:],
                                                              len(seen))
        lines.append(b" ".join(parts))
    return b"\r\n".join(lines)


def run_script(port, keys, big):
    """The script against one server; returns its normalised replies."""
    with harness.Conn(port) as c:
        out = b""
        for cmd in script(keys, big):
            c.send(cmd + b"mn\r\n")
            out += c.read_until(b"MN\r\n")
        ca, cb = cas_of(out, keys["a"]), cas_of(out, keys["b"])
        for cmd in (b"cas %s 0 0 1 %s\r\nC\r\n" % (keys["a"], ca),
                    b"cas %s 0 0 1 %s\r\nD\r\n" % (keys["a"], ca),
                    b"cas %s 0 0 1 %s noreply\r\nE\r\n" % (keys["b"], cb),
                    b"cas %s 0 0 1 1\r\nF\r\n" % keys["miss"],
                    b"mg %s v c\r\n" % keys["a"],
                    b"get %s %s\r\n" % (keys["a"], keys["b"])):
            c.send(cmd + b"mn\r\n")
            out += c.read_until(b"MN\r\n")
        # the whole script again at once: one pipeline through forwards
        c.send(b"".join(script(keys, big)) + b"mn\r\n")
        out += c.read_until(b"MN\r\n")
        time.sleep(2.2)  # past the 2 s TTL
        c.send(b"get %s\r\nmg %s v\r\nmn\r\n" % (keys["ttl"], keys["ttl"]))
        out += c.read_until(b"MN\r\n")
    return normalise(out)


def same_as_one_node():
    """What a client sees through node 0 of the cluster, with every key
    owned elsewhere too, is byte for byte what one node alone answers."""
    with Cluster() as cl:
        owners = cl.owners("s:", 200)
        by = {i: ["s:%d" % k for k in range(200) if owners[k] == i]
              for i in range(3)}
        check(all(len(by[i]) >= 6 for i in range(3)), "keys of each owner")
        names = ["a", "b", "c", "miss", "n1", "ctr", "ttl", "neg", "m1",
                 "m2", "ma"]
        # spread the roles over the owners, node 0's included
        keys = {n: by[(i + 1) % 3][i // 3].encode()
                for i, n in enumerate(names)}
        big = bytes(range(256)) * 2000  # 512 KB, binary
        alone = harness.Server("memlaned", threads=2)
        with alone:
            want = run_script(alone.port, keys, big)
        for part in (b"NOT_STORED", b"EXISTS", b"NOT_FOUND", b"TOUCHED",
                     b"VA 2 f9 t-1 s2 k", b"CLIENT_ERROR", b"VALUE %s 0 %d"
                     % (keys["c"], len(big)), b"VA 2\r\n18"):
            check(part in want, "one node answers %r" % part)
        before = cl.forwards(0)
        got = run_script(cl.ports[0], keys, big)
        check(cl.forwards(0) > before, "the script went through forwards")
        if got != want:
            gl, wl = got.split(b"\r\n"), want.split(b"\r\n")
            for i, (g, w) in enumerate(zip(gl, wl)):
                if g != w:
                    harness.fail("line %d through the cluster %r, alone "
                                 "%r" % (i, g[:200], w[:200]))
            harness.fail("%d lines through the cluster, %d alone"
                         % (len(gl), len(wl)))


def udp_through_forwards():
    """A UDP request for another node's key is forwarded like a TCP one
    and answered in datagrams as one node would."""
    with Cluster(udp=True) as cl:
        owners = cl.owners("u:", 60)
        c0 = cl.client(0)
        for k in range(60):
            check(c0.set("u:%d" % k, b"w%d" % k), "set u:%d" % k)
        c0.close()
        before = cl.forwards(0)
        u = harness.UdpClient(cl.nodes[0].udp_port)
        try:
            for k in range(60):
                rep = u.request(k + 1, b"get u:%d\r\n" % k,
                                lambda d: d.endswith(b"END\r\n"))
                check(not rep.errors, "udp framing: %r" % rep.errors)
                check(bytes(rep.data) == b"VALUE u:%d 0 %d\r\nw%d\r\nEND\r\n"
                      % (k, len(b"w%d" % k), k),
                      "udp get u:%d: %r" % (k, bytes(rep.data)))
            keys = b" ".join(b"u:%d" % k for k in range(0, 60, 5))
            rep = u.request(999, b"get " + keys + b"\r\n",
                            lambda d: d.endswith(b"END\r\n"))
            want = b"".join(b"VALUE u:%d 0 %d\r\nw%d\r\n"
                            % (k, len(b"w%d" % k), k)
                            for k in range(0, 60, 5)) + b"END\r\n"
            check(bytes(rep.data) == want, "udp multi-get: %r"
                  % bytes(rep.data)[:300])
        finally:
            u.close()
        foreign = sum(1 for o in owners if o != 0) + \
            sum(1 for k in range(0, 60, 5) if owners[k] != 0)
        check(cl.forwards(0) - before == foreign, "udp forwards %d, the "
              "ring predicts %d" % (cl.forwards(0) - before, foreign))


def check_admin_views(cl, owners):
    members = ctl_json(cl.admin[0], "members")
    addrs = [m["address"] for m in members["members"]]
    check(addrs == ["127.0.0.1:%d" % p for p in cl.ports],
          "memlanectl members: %r" % addrs)
    check([m["self"] for m in members["members"]] == [True, False, False],
          "members: self is node 0")
    table = ctl(cl.admin[0], "members").stdout.decode()
    for a in addrs:
        check(a in table, "members table lists %s:\n%s" % (a, table))

    ring = ctl_json(cl.admin[0], "ring")
    shares = [m["share"] for m in ring["members"]]
    check(abs(sum(shares) - 1) < 1e-6, "ring shares add to 1: %r" % shares)
    check(all(0.2 < s < 0.5 for s in shares), "shares near 1/3: %r"
          % shares)
    check(sum(m["points"] for m in ring["members"]) == ring["points"],
          "ring points add up")
    # the shares say where keys go: compare with libmemcached's ketama
    for i, s in enumerate(shares):
        frac = sum(1 for o in owners if o == i) / len(owners)
        check(abs(frac - s) < 0.12, "node %d: share %.3f, %.3f of the "
              "keys" % (i, s, frac))
    text = ctl(cl.admin[0], "ring").stdout.decode()
    check("SHARE" in text and "%" in text, "ring table:\n%s" % text)

    st = ctl_json(cl.admin[0], "stats")
    check(len(st["cores"]) == 2, "stats has two cores")
    check(st["total"]["ops"] > 0 and st["total"]["forwards"] > 0,
          "stats totals: %r" % st["total"])
    check(sum(c["forwards"] for c in st["cores"]) == st["total"]["forwards"],
          "per-core forwards add to the total")
    text = ctl(cl.admin[0], "stats").stdout.decode()
    check("FORWARDS" in text and "all" in text, "stats table:\n%s" % text)
    multi = ctl(cl.admin[0], "-s", ",".join("127.0.0.1:%d" % a
                                            for a in cl.admin),
                "stats").stdout.decode()
    for p in cl.ports:
        rows = [ln for ln in multi.splitlines()
                if ln.startswith("127.0.0.1:%d " % p) and " all " in ln]
        check(len(rows) == 1, "stats of every node, once each (a later "
              "-s replaces the first):\n%s" % multi)

    # /metrics, through a real Prometheus parser
    fams = {f.name: f for f in text_string_to_metric_families(
        http(cl.admin[0], "/metrics").decode())}
    for name in ("memlane_forwards", "memlane_ops", "memlane_get_hits",
                 "memlane_forward_errors", "memlane_drops",
                 "memlane_ring_share", "memlane_ring_epoch"):
        check(name in fams, "/metrics has %s: %r" % (name, sorted(fams)))
    fwd = sum(s.value for s in fams["memlane_forwards"].samples
              if s.name == "memlane_forwards_total")
    now = ctl_json(cl.admin[0], "stats")["total"]["forwards"]
    check(fwd == now, "/metrics forwards %r, stats %r" % (fwd, now))

    # the digest of node 0's part of the ring holds the keys node 0 owns
    dig = ctl_json(cl.admin[0], "digest", "--member", "0")
    held = sum(1 for o in owners if o == 0) + \
        len([k for k in ketama("owners", cl.servers_arg, "k:",
                               str(KEYS)).split() if k == "0"])
    bk = [k for k in ketama("owners", cl.servers_arg, "bk:", "30").split()
          if k == "0"]
    check(dig["keys"] == held + len(bk), "digest of node 0: %d keys, node "
          "0 owns %d" % (dig["keys"], held + len(bk)))
    check(dig["fpr_theory"] < 0.01, "digest fpr %r" % dig["fpr_theory"])
    other = ctl_json(cl.admin[0], "digest", "--member", "1")
    check(other["keys"] == 0, "node 0 holds no key of node 1's part: %d"
          % other["keys"])
    raw = http(cl.admin[0], "/v1/digest?member=0&format=binary")
    check(len(raw) == dig["bytes"], "binary digest: %d bytes, said %d"
          % (len(raw), dig["bytes"]))


def drain_keeps_serving_forwards():
    with Cluster() as cl:
        owners = cl.owners("d:", KEYS)
        r = ctl(cl.admin[1], "drain").stdout.decode()
        check("weight 0" in r, "drain: %r" % r)
        ring = ctl_json(cl.admin[1], "ring")
        check(ring["members"][1]["share"] == 0 and ring["epoch"] == 2,
              "drained node's ring: %r" % ring["members"][1])
        # node 1 owns nothing on its own ring: everything it is asked
        # goes to the others
        before = cl.forwards(1)
        c1 = cl.client(1)
        for k in range(KEYS):
            check(c1.set("d:%d" % k, b"x%d" % k), "set d:%d via drained"
                  % k)
        check(cl.forwards(1) - before == KEYS,
              "the drained node forwarded %d of %d"
              % (cl.forwards(1) - before, KEYS))
        # and still serves what node 0 forwards to it (node 0's ring
        # still has node 1)
        c0 = cl.client(0)
        fin = cl.fwd_in(1)
        for k in range(KEYS):
            if owners[k] == 1:
                check(c0.set("d:%d" % k, b"y%d" % k), "set via node 0")
                check(c0.get("d:%d" % k) == b"y%d" % k, "get via node 0")
        n1 = sum(1 for o in owners if o == 1)
        check(cl.fwd_in(1) - fin == 2 * n1, "drained node served %d "
              "forwards, expected %d" % (cl.fwd_in(1) - fin, 2 * n1))
        bad = ctl(cl.admin[1], "weight", "x", ok=False)
        check(bad.returncode == 2 and b"not a weight" in bad.stderr,
              "memlanectl weight x: %r" % bad.stderr)
        back = ctl(cl.admin[1], "weight", "1").stdout.decode()
        check("weight 1" in back, "weight 1: %r" % back)
        c0.close()
        c1.close()


def kill_one_node():
    with Cluster() as cl:
        owners = cl.owners("x:", KEYS)
        c0 = cl.client(0)
        for k in range(KEYS):
            c0.set("x:%d" % k, b"v%d" % k)
        victim = cl.nodes[2]
        os.kill(victim.pid, signal.SIGKILL)
        victim.proc.wait()
        with harness.Conn(cl.ports[0]) as c:
            for k in range(KEYS):
                t0 = time.time()
                c.send(b"get x:%d\r\n" % k)
                line = c.readline()
                took = time.time() - t0
                if owners[k] == 2:
                    check(line.startswith(b"SERVER_ERROR"),
                          "get x:%d (owner killed): %r" % (k, line))
                    check(took < FWD_TIMEOUT_MS / 1000 + 2,
                          "SERVER_ERROR after %.2fs" % took)
                else:
                    check(line.startswith(b"VALUE"), "get x:%d: %r"
                          % (k, line))
                    c.read_until(b"END\r\n")
            # a pipeline mixing both kinds keeps its order
            keys = list(range(40))
            c.send(b"".join(b"set x:%d 0 0 1 noreply\r\nz\r\n" % k
                            for k in keys if owners[k] != 2) +
                   b"".join(b"get x:%d\r\n" % k for k in keys))
            for k in keys:
                line = c.readline()
                if owners[k] == 2:
                    check(line.startswith(b"SERVER_ERROR"),
                          "pipelined get x:%d: %r" % (k, line))
                else:
                    check(line == b"VALUE x:%d 0 1\r\n" % k,
                          "pipelined get x:%d: %r" % (k, line))
                    check(c.read_until(b"END\r\n") == b"z\r\nEND\r\n",
                          "pipelined value x:%d" % k)
        st = ctl_json(cl.admin[0], "stats")["total"]
        check(st["forward_errors"] > 0, "forward errors counted: %r" % st)
        # the node that is left keeps answering its admin endpoint
        ctl(cl.admin[1], "members")
        c0.close()
        cl.nodes[2] = harness.Server("memlaned")  # gone: nothing to stop
        cl.nodes[2].proc = None


if __name__ == "__main__":
    if harness.target_is_memcached():
        sys.exit(harness.SKIP)
    harness.run_checks([plain_and_ketama_clients, same_as_one_node,
                        udp_through_forwards,
                        drain_keeps_serving_forwards, kill_one_node])

# SPDX-License-Identifier: BSD-3-Clause
"""A partition, on hosts the test makes: three network namespaces, each
with one memlaned, joined by veth pairs to a bridge in a fourth
namespace (198.18.1.0/24). Gossip is signed (off loopback a cluster key
is required).

The link of node 2 is set down on the bridge: node 2 is marked suspect
and then dead by nodes 0 and 1, which never see each other dead (no
false death on the healthy side: a suspicion a busy machine causes is
refuted); node 2 sees them go too.
The link comes back: the cluster heals, every node alive everywhere.

Needs root; exits 77 (skipped) with the reason otherwise. Everything it
makes is removed at the end, and the servers are stopped by PID.
"""

import atexit
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True

import harness  # noqa: E402
from harness import check  # noqa: E402

PORT = 11211
GOSSIP = 7946
ADMIN = 12211
PROBE_MS = 200
NODES = 3


def ip(*args, check_rc=True):
    return subprocess.run(["ip"] + list(args), capture_output=True,
                          check=check_rc)


class Hosts:
    def __init__(self):
        tag = "%x" % (os.getpid() & 0xfffff)
        self.hub = "mlph" + tag
        self.ns = ["mlp%d%s" % (i, tag) for i in range(NODES)]
        self.hubdev = ["hp%d%s" % (i, tag) for i in range(NODES)]
        self.addr = ["198.18.1.%d" % (i + 1) for i in range(NODES)]
        self.made = []
        self.procs = []
        atexit.register(self.close)
        for n in [self.hub] + self.ns:
            ip("netns", "add", n)
            self.made.append(n)
            ip("-n", n, "link", "set", "lo", "up")
        ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        ip("-n", self.hub, "link", "set", "br0", "up")
        for i in range(NODES):
            ip("link", "add", self.hubdev[i], "netns", self.hub, "type",
               "veth", "peer", "name", "eth0", "netns", self.ns[i])
            ip("-n", self.hub, "link", "set", self.hubdev[i], "master",
               "br0")
            ip("-n", self.hub, "link", "set", self.hubdev[i], "up")
            ip("-n", self.ns[i], "addr", "add", self.addr[i] + "/24", "dev",
               "eth0")
            ip("-n", self.ns[i], "link", "set", "eth0", "up")

    def link(self, i, up):
        ip("-n", self.hub, "link", "set", self.hubdev[i],
           "up" if up else "down")

    def start(self, i, keyfile, log):
        seeds = ",".join("%s:%d" % (a, GOSSIP) for a in self.addr)
        argv = ["ip", "netns", "exec", self.ns[i], harness.memlaned_path()
                ] + harness.root_args() + [
                "-l", self.addr[i], "-p", str(PORT), "-U", "0", "-t", "1",
                "--seeds", seeds, "--gossip", "%s:%d" % (self.addr[i], GOSSIP),
                "--cluster-key-file", keyfile,
                "--admin", "127.0.0.1:%d" % ADMIN,
                "--probe-interval", str(PROBE_MS), "--probe-timeout", "100",
                "--suspicion-mult", "2", "--pushpull-interval", "1000", "-v"]
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def members(self, i):
        out = subprocess.run(
            ["ip", "netns", "exec", self.ns[i], os.environ["MEMLANECTL"],
             "-s", "127.0.0.1:%d" % ADMIN, "--json", "members"],
            capture_output=True, timeout=30)
        if out.returncode:
            return None
        return {m["address"]: m["state"]
                for m in json.loads(out.stdout)["members"]}

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs = []
        for n in reversed(self.made):
            ip("netns", "del", n, check_rc=False)
        self.made = []


def svc(h, i):
    return "%s:%d" % (h.addr[i], PORT)


wait_for = harness.wait_for


def seen(h, i, j):
    m = h.members(i)
    return m.get(svc(h, j)) if m else None


def partition_heals():
    h = Hosts()
    key = tempfile.NamedTemporaryFile("wb", delete=False)
    key.write(os.urandom(32))
    key.close()
    log = tempfile.TemporaryFile()
    try:
        for i in range(NODES):
            h.start(i, key.name, log)
        wait_for("every node alive everywhere",
                 lambda: all(seen(h, i, j) == "alive" for i in range(NODES)
                             for j in range(NODES)), 15)
        h.link(2, False)
        states01 = set()
        saw_suspect = False
        deadline = time.time() + 15
        while time.time() < deadline:
            s0, s1 = h.members(0), h.members(1)
            states01.add(s0[svc(h, 1)])
            states01.add(s1[svc(h, 0)])
            saw_suspect |= "suspect" in (s0[svc(h, 2)], s1[svc(h, 2)])
            if s0[svc(h, 2)] == "dead" and s1[svc(h, 2)] == "dead":
                break
            time.sleep(0.02)
        check(seen(h, 0, 2) == "dead" and seen(h, 1, 2) == "dead",
              "the cut-off node dead on the healthy side")
        check(saw_suspect, "it was suspect first")
        # a suspicion can come of a busy machine (and is refuted); a
        # death would be false
        check(states01 <= {"alive", "suspect"},
              "no false death on the healthy side: %r" % states01)
        wait_for("the cut-off node sees the others dead",
                 lambda: seen(h, 2, 0) == "dead" and seen(h, 2, 1) == "dead",
                 15)
        wait_for("0 and 1 alive to each other",
                 lambda: seen(h, 0, 1) == "alive" and
                 seen(h, 1, 0) == "alive", 5)
        h.link(2, True)
        wait_for("the cluster heals",
                 lambda: all(seen(h, i, j) == "alive" for i in range(NODES)
                             for j in range(NODES)), 20)
        for p in h.procs:
            check(p.poll() is None, "every node still runs")
    except harness.TestFailure:
        log.seek(0)
        sys.stderr.write(log.read().decode(errors="replace")[-4000:])
        raise
    finally:
        h.close()
        os.unlink(key.name)


def main():
    if os.geteuid() != 0:
        print("SKIP partition: needs root (network namespaces)")
        return harness.SKIP
    if harness.target_is_memcached():
        return harness.SKIP
    harness.run_checks([partition_heals])
    return 0


if __name__ == "__main__":
    sys.exit(main())

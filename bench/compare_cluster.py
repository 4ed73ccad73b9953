# SPDX-License-Identifier: BSD-3-Clause
"""bench/compare --cluster: three memlaned nodes on this machine, as one
cache, under the two kinds of client, in one run.

The nodes listen on loopback ports, each with -t 1 and the others as
--peers. memlane-bench cluster then measures, for --repeat runs each
(the median is kept):

  plain    --conns connections to node 0 only, as pymemcache's Client
           does; node 0 forwards every key another node owns (2 in 3)
  ketama   --conns connections, each with a socket per node, every
           request sent to its owner by libmemcached's ketama: no forward
  forward  one connection to node 0, one request at a time, keys node 0
           owns and keys it forwards alternating: the difference of the
           two median latencies is the cost of one forward

Every run is a closed loop (one request outstanding per connection), 90:10
GET:SET, 16-byte keys, 32-byte values, uniform over --keys keys preloaded
by ketama. Three nodes, their peers' connections and the load generator
share this machine's CPUs, so the throughputs are those of the machine as
a whole, not of a node per core. There are no targets: the row records
what a forward costs and what a smart client saves.
"""

import json
import os
import socket
import statistics
import subprocess
import time

NODES = 3


def wait_port(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5) as s:
                s.sendall(b"version\r\n")
                if s.recv(64).startswith(b"VERSION"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("node on port %d did not answer" % port)


def start(args, children, free_port):
    taken = set()
    ports = [free_port(taken) for _ in range(NODES)]
    peers = ",".join("127.0.0.1:%d" % p for p in ports)
    for p in ports:
        proc = subprocess.Popen(
            [args.memlaned, "-p", str(p), "-U", "0", "-l", "127.0.0.1",
             "-t", "1", "-m", str(args.memory), "--peers", peers,
             "--self", "127.0.0.1:%d" % p, "--admin", "off"]
            + (["-u", "root"] if os.geteuid() == 0 else []),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        children.append(proc)
    for p in ports:
        wait_port(p)
    return peers


def bench(args, peers, mode):
    cmd = [args.bench, "cluster", "--servers", peers, "--mode", mode,
           "--duration", str(args.duration), "--warmup", str(args.warmup),
           "--keys", str(args.cluster_keys), "--json"]
    if mode != "forward":
        cmd += ["--conns", str(args.conns)]
    out = subprocess.run(cmd, capture_output=True, text=True,
                         timeout=args.duration + args.warmup + 600)
    if out.returncode:
        raise RuntimeError("memlane-bench cluster --mode %s: %s"
                           % (mode, out.stderr.strip()))
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(args, children, free_port):
    peers = start(args, children, free_port)
    rows = {}
    for mode in ("plain", "ketama", "forward"):
        runs = []
        for i in range(args.repeat):
            args.say("cluster: %s, run %d of %d" % (mode, i + 1,
                                                   args.repeat))
            runs.append(bench(args, peers, mode))
        key = "forward_cost_us" if mode == "forward" else "ops_per_s"
        runs.sort(key=lambda r: r[key])
        rows[mode] = dict(runs[len(runs) // 2],
                          runs=[r[key] for r in runs])
    return rows


def report(args, rows):
    p, k, f = rows["plain"], rows["ketama"], rows["forward"]
    print("\n3 nodes (-t 1 each) on one machine, %d connections, closed "
          "loop, 90:10 get/set,\n%d keys, median of %d run(s) of %gs\n"
          % (args.conns, args.cluster_keys, args.repeat, args.duration))
    print("| client | ops/s | p50 | p99 | p99.9 |")
    print("|---|---|---|---|---|")
    for name, r in (("plain, node 0 only", p), ("ketama, every node", k)):
        print("| %s | %s | %.0f us | %.0f us | %.0f us |"
              % (name, format(int(r["ops_per_s"]), ","), r["p50_us"],
                 r["p99_us"], r["p999_us"]))
    print("\nketama / plain throughput: %.2fx"
          % (k["ops_per_s"] / max(1.0, p["ops_per_s"])))
    print("one forward: %.1f us (p50 %.1f us forwarded, %.1f us local, "
          "%d samples; runs %s)"
          % (f["forward_cost_us"], f["forwarded_p50_us"], f["local_p50_us"],
             f["samples"], ", ".join("%.1f" % x for x in f["runs"])))
    return False

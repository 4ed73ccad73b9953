#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""What TLS costs per request: memlaned and memcached 1.6 side by side,
each with one server core (-t 1, pinned to CPU 1, the client on CPU 0),
each serving TLS (-Z) and plain TCP (a notls: listener) at once.

A client on one connection sends gets of a 100-byte value, either one at
a time (depth 1: a round trip each) or in batches of 64 per write (depth
64: the cost of the server's and client's work alone). Each row is run
in rounds alternating the servers and the transports (A B A B), and the
median of the rounds is reported, in microseconds per request; the TLS
cost is the TLS row less the plain one.

  bench/compare_tls.py [--requests 20000] [--rounds 5] [--build DIR]
                       [--json FILE]
"""

import argparse
import json
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

HOST = "127.0.0.1"


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pki(d):
    def run(*a):
        subprocess.run(["openssl"] + list(a), cwd=d, check=True,
                       capture_output=True)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
        "-out", "ca.crt", "-days", "2", "-subj", "/CN=bench ca")
    with open(os.path.join(d, "ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out",
        "srv.csr", "-subj", "/CN=127.0.0.1")
    run("x509", "-req", "-in", "srv.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "srv.crt", "-days", "2", "-extfile", "ext")
    for f in os.listdir(d):
        os.chmod(os.path.join(d, f), 0o644)
    os.chmod(d, 0o755)


class Server:
    def __init__(self, name, binary, d):
        self.name = name
        self.tls_port, self.plain_port = free_port(), free_port()
        argv = ["taskset", "-c", "1", binary, "-l",
                "%s,notls:%s:%d" % (HOST, HOST, self.plain_port), "-p",
                str(self.tls_port), "-U", "0", "-t", "1", "-m", "64", "-Z",
                "-o", "ssl_chain_cert=%s/srv.crt,ssl_key=%s/srv.key" % (d, d)]
        if os.geteuid() == 0:
            argv += ["-u", "root"]
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log)
        for _ in range(200):
            try:
                socket.create_connection((HOST, self.plain_port), 1).close()
                socket.create_connection((HOST, self.tls_port), 1).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("%s did not start" % name)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def connect(port, tls, d):
    s = socket.create_connection((HOST, port), 5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls:
        ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.crt"))
        s = ctx.wrap_socket(s, server_hostname=HOST)
    return s


def read_exact(s, n, buf):
    while len(buf) < n:
        chunk = s.recv(1 << 20)
        if not chunk:
            raise RuntimeError("closed")
        buf += chunk
    return buf[n:]


def one_run(srv, tls, depth, requests, d):
    s = connect(srv.tls_port if tls else srv.plain_port, tls, d)
    value = b"v" * 100
    s.sendall(b"set bench 0 0 %d\r\n%s\r\n" % (len(value), value))
    read_exact(s, len(b"STORED\r\n"), b"")
    req = b"get bench\r\n" * depth
    reply = len(b"VALUE bench 0 100\r\n") + 100 + 2 + len(b"END\r\n")
    buf = b""
    t0 = time.perf_counter()
    for _ in range(requests // depth):
        s.sendall(req)
        buf = read_exact(s, reply * depth, buf)
    took = time.perf_counter() - t0
    s.close()
    return took / (requests // depth * depth) * 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--build", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "build"))
    ap.add_argument("--memcached", default="/usr/bin/memcached")
    ap.add_argument("--json")
    args = ap.parse_args()
    if not shutil.which("openssl"):
        sys.exit("openssl is needed for the certificates")
    os.sched_setaffinity(0, {0})
    d = tempfile.mkdtemp()
    servers = []
    try:
        pki(d)
        servers = [Server("memlaned", os.path.join(args.build, "dataplane",
                                                   "memlaned"), d),
                   Server("memcached", args.memcached, d)]
        rows = {}
        for depth in (1, 64):
            for _ in range(args.rounds):
                for srv in servers:
                    for tls in (False, True):
                        key = (srv.name, depth, "tls" if tls else "plain")
                        rows.setdefault(key, []).append(
                            one_run(srv, tls, depth, args.requests, d))
        out = {}
        print("us per get (median of %d rounds of %d requests), one server "
              "core each" % (args.rounds, args.requests))
        print("%-10s %5s %8s %8s %9s" % ("server", "depth", "plain", "tls",
                                          "tls cost"))
        for depth in (1, 64):
            for srv in servers:
                p = statistics.median(rows[(srv.name, depth, "plain")])
                t = statistics.median(rows[(srv.name, depth, "tls")])
                out["%s_d%d" % (srv.name, depth)] = {"plain_us": p,
                                                     "tls_us": t}
                print("%-10s %5d %8.2f %8.2f %+9.2f" % (srv.name, depth, p,
                                                        t, t - p))
        for depth in (1, 64):
            a = out["memlaned_d%d" % depth]["tls_us"]
            b = out["memcached_d%d" % depth]["tls_us"]
            print("depth %d over TLS: memlaned takes %.2fx memcached's time "
                  "per get" % (depth, a / b))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(out, f, indent=1)
    finally:
        for srv in servers:
            srv.stop()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()

# SPDX-License-Identifier: BSD-3-Clause
"""bench/compare --bypass: memcached UDP through the kernel bypass, side by
side with the socket paths, one server core each, in one run.

The run makes its own hosts: a server and a client network namespace joined
by a veth pair, with addresses from 198.18.0.0/15, torn down at the end.
Servers, in turn, on the server end of the veth, pinned to --server-cpu:

  memlaned af_xdp     --dataplane dpdk on net_af_xdp, our XDP program
  memlaned af_packet  --dataplane dpdk on net_af_packet
  memlaned socket     the socket backend, -U
  memcached           memcached -U

Each is preloaded and then measured from the client namespace, pinned to
--client-cpu, by every client that can reach it: memlane-bench pktload on
net_af_xdp and on net_af_packet (DPDK in the client too), and
memlane-bench load --proto udp on kernel sockets; a row keeps the client
that measured the most. For the DPDK servers, stats dataplane before and
after gives the share of the server core's time spent in loop passes that
found no work (idle):
while it is well above 0 the server had time to spare and the client or
the veth was the ceiling.

Targets, as ratios of the same run:
  bypass UDP >= 3x memcached's UDP throughput per server core
  bypass UDP >= 2x memlaned's own socket-backend UDP
"""

import json
import os
import socket
import struct
import subprocess
import time

TARGET_MEMCACHED = 3.0
TARGET_SOCKET = 2.0

SERVER_IP = "198.18.0.1"    # the server kernel's (af_xdp, socket, memcached)
PACKET_IP = "198.18.0.11"   # memlaned on af_packet answers for it alone
CLIENT_IP = "198.18.0.2"    # the client kernel's
BYPASS_IP = "198.18.0.3"    # pktload's own, not the client kernel's
PORT = 11211


class Topology:
    """Two namespaces and a veth pair, removed by close()."""

    def __init__(self):
        tag = "%x" % (os.getpid() & 0xffff)
        self.srv, self.cli = "mlb-s" + tag, "mlb-c" + tag
        self.sdev, self.cdev = "mlbs" + tag, "mlbc" + tag
        self.made = []
        for ns in (self.srv, self.cli):
            self.ip("netns", "add", ns)
            self.made.append(ns)
        self.ip("link", "add", self.sdev, "type", "veth", "peer", "name",
                self.cdev)
        self.ip("link", "set", self.sdev, "netns", self.srv)
        self.ip("link", "set", self.cdev, "netns", self.cli)
        for ns, dev, addr in ((self.srv, self.sdev, SERVER_IP),
                              (self.cli, self.cdev, CLIENT_IP)):
            self.ip("-n", ns, "link", "set", "lo", "up")
            self.ip("-n", ns, "addr", "add", addr + "/24", "dev", dev)
            self.ip("-n", ns, "link", "set", dev, "up")
            # veth hands UDP on with its checksum left to an offload
            # that never comes; the bypass path drops such frames
            subprocess.run(["ip", "netns", "exec", ns, "ethtool", "-K",
                            dev, "tx", "off"], check=True,
                           stdout=subprocess.DEVNULL)
        self.smac = self.mac(self.srv, self.sdev)

    @staticmethod
    def ip(*args):
        subprocess.run(["ip"] + list(args), check=True,
                       stdout=subprocess.DEVNULL)

    @staticmethod
    def mac(ns, dev):
        out = subprocess.run(["ip", "-n", ns, "-j", "link", "show", dev],
                             check=True, capture_output=True).stdout
        return json.loads(out)[0]["address"]

    def run_in(self, ns, cpu, cmd):
        return ["ip", "netns", "exec", ns, "taskset", "-c", str(cpu)] + cmd

    def close(self):
        for ns in self.made:
            subprocess.run(["ip", "netns", "del", ns],
                           stderr=subprocess.DEVNULL)
        self.made = []


def udp_request(ns, addr, payload, timeout=2.0):
    """One memcached UDP request from inside namespace ns, its reply."""
    code = ("import socket,struct,sys\n"
            "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            "s.settimeout(%r)\n"
            "s.sendto(struct.pack('>HHHH',7,0,1,0)+%r,(%r,%d))\n"
            "buf=b''\n"
            "while not buf.endswith(b'END\\r\\n'):\n"
            "    buf+=s.recv(65536)[8:]\n"
            "sys.stdout.buffer.write(buf)\n" % (timeout, payload, addr, PORT))
    out = subprocess.run(["ip", "netns", "exec", ns, "/usr/bin/python3",
                          "-c", code], capture_output=True,
                         timeout=timeout + 5)
    return out.stdout.decode(errors="replace")


def dp_stats(topo, addr):
    st = {}
    for line in udp_request(topo.cli, addr, b"stats dataplane\r\n").split(
            "\r\n"):
        p = line.split(" ")
        if len(p) == 3 and p[0] == "STAT":
            st[p[1]] = p[2]
    return st


class BypassServer:
    def __init__(self, name, cmd, addr, dpdk, tcp=True):
        self.name, self.cmd, self.addr, self.dpdk = name, cmd, addr, dpdk
        self.tcp = tcp
        self.proc = None

    def start(self, topo, args, children):
        self.log = open(os.devnull, "wb")
        self.proc = subprocess.Popen(
            topo.run_in(topo.srv, args.server_cpu, self.cmd),
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        children.append(self.proc)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited on start-up (%d)" %
                                   (self.name, self.proc.returncode))
            try:
                if "VERSION" in udp_request(topo.cli, self.addr,
                                            b"version\r\n", 0.5) or \
                   udp_request(topo.cli, self.addr, b"get x\r\n", 0.5):
                    return
            except subprocess.TimeoutExpired:
                pass
            time.sleep(0.2)
        raise RuntimeError("%s: no UDP answer" % self.name)

    def cpu_seconds(self):
        """User and system CPU time of the server so far (ip netns exec
        and taskset exec it, so the PID is the server's)."""
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return int(fields[11]) / tick, int(fields[12]) / tick

    def stop(self, children):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc in children:
            children.remove(self.proc)
        self.proc = None


def run_client(topo, args, children, cmd, seconds):
    p = subprocess.Popen(topo.run_in(topo.cli, args.client_cpu, cmd),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    children.append(p)
    try:
        out, err = p.communicate(timeout=seconds + 120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        children.remove(p)
    if p.returncode != 0:
        raise RuntimeError("%s exited %d: %s" %
                           (cmd[1], p.returncode,
                            err.decode(errors="replace").strip()[-400:]))
    return json.loads(out.decode())


def clients(topo, args, srv):
    """The clients that can reach srv: (name, command builder)."""
    mac = ["--dst-mac", topo.smac]
    base = ["--dst", "%s:%d" % (srv.addr, PORT), "--src", BYPASS_IP,
            "--keys", str(args.bypass_keys), "--ratio", "90:10",
            "--value-size", "32", "--window", str(args.window),
            "--json"] + mac
    out = []
    for pmd in ("net_af_xdp", "net_af_packet"):
        eal = "--vdev=%s0,iface=%s --file-prefix=mlbc%s" % (
            pmd, topo.cdev, pmd[4:])
        out.append(("pktload " + pmd[7:],
                    lambda extra, eal=eal: [args.bench, "pktload", "--eal",
                                            eal] + base + extra))
    sock = ["--server", "%s:%d" % (srv.addr, PORT), "--proto", "udp",
            "--conns", str(args.conns), "--pipeline", "16", "--ratio",
            "90:10", "--keys", str(args.bypass_keys), "--key-size", "16",
            "--value-size", "32", "--threads", "1", "--json", "--quiet",
            "--udp-sets", "udp"]
    # memlane-bench load preloads over TCP, which af_packet does not serve
    if srv.tcp:
        out.append(("load udp socket",
                    lambda extra: [args.bench, "load"] + sock + extra))
    return out


def measure(topo, args, children, srv):
    best = None
    for cname, build in clients(topo, args, srv):
        extra_pre = ["--preload", "--duration", "0.1", "--warmup", "0"]
        try:
            run_client(topo, args, children, build(extra_pre), 60)
        except (RuntimeError, ValueError) as e:
            args.say("%s: %s could not preload: %s" % (srv.name, cname, e))
            continue
        runs = []
        for _ in range(args.repeat):
            before = dp_stats(topo, srv.addr) if srv.dpdk else {}
            c0, t0 = srv.cpu_seconds(), time.monotonic()
            try:
                r = run_client(topo, args, children,
                               build(["--duration", str(args.duration),
                                      "--warmup", str(args.warmup)]),
                               args.duration + args.warmup)
            except (RuntimeError, ValueError) as e:
                args.say("%s: %s failed: %s" % (srv.name, cname, e))
                break
            wall = time.monotonic() - t0
            c1 = srv.cpu_seconds()
            r["server_cpu"] = (c1[0] + c1[1] - c0[0] - c0[1]) / wall
            r["server_sys"] = (c1[1] - c0[1]) / wall
            if srv.dpdk:
                after = dp_stats(topo, srv.addr)
                loop = int(after.get("dp_loop_cycles", 0)) - \
                    int(before.get("dp_loop_cycles", 0))
                idle = int(after.get("dp_idle_cycles", 0)) - \
                    int(before.get("dp_idle_cycles", 0))
                r["idle"] = idle / loop if loop > 0 else None
            r["client"] = cname
            runs.append(r)
            args.say("%s via %s: %.0f ops/s" % (srv.name, cname,
                                                r["ops_per_sec"]))
        if not runs:
            continue
        runs.sort(key=lambda x: x["ops_per_sec"])
        med = runs[len(runs) // 2]
        if best is None or med["ops_per_sec"] > best["ops_per_sec"]:
            best = med
    if best is None:
        raise RuntimeError("%s: no client measured it" % srv.name)
    return best


def servers(args, topo):
    one = ["-t", "1", "-m", str(args.memory)]
    ml, mc = args.memlaned, args.memcached
    return [
        BypassServer("memlaned af_xdp",
                     [ml, "-u", "root", "--dataplane", "dpdk", "--eal",
                      "--vdev=net_af_xdp0,iface=%s" % topo.sdev, "--ip",
                      SERVER_IP, "-U", str(PORT), "-p", str(PORT), "-l",
                      SERVER_IP] + one, SERVER_IP, True),
        BypassServer("memlaned af_packet",
                     [ml, "-u", "root", "--dataplane", "dpdk", "--eal",
                      "--vdev=net_af_packet0,iface=%s" % topo.sdev, "--ip",
                      PACKET_IP, "-U", str(PORT), "-p", "0"] + one,
                     PACKET_IP, True, tcp=False),
        BypassServer("memlaned socket",
                     [ml, "-u", "root", "-U", str(PORT), "-p", str(PORT), "-l",
                      SERVER_IP] + one, SERVER_IP, False),
        BypassServer("memcached",
                     [mc, "-U", str(PORT), "-p", str(PORT), "-l", SERVER_IP,
                      "-u", "root", "-c", "4096"] + one, SERVER_IP, False),
    ]


def run(args, children):
    """Returns (rows, failed)."""
    if os.geteuid() != 0:
        raise RuntimeError("--bypass needs root (network namespaces, "
                           "DPDK ports)")
    topo = Topology()
    rows = []
    try:
        for srv in servers(args, topo):
            args.say("%s: starting" % srv.name)
            try:
                srv.start(topo, args, children)
            except RuntimeError as e:
                args.say("%s: not measured: %s" % (srv.name, e))
                srv.stop(children)
                continue
            try:
                r = measure(topo, args, children, srv)
            finally:
                srv.stop(children)
            r["server_name"] = srv.name
            rows.append(r)
    finally:
        topo.close()
    return rows


def report(args, rows):
    by = {r["server_name"]: r for r in rows}
    print("bench/compare --bypass: memcached UDP on a veth pair between "
          "two network namespaces,\none server core each (CPU %d), the "
          "client on CPU %d; 90:10 GET:SET, %d keys,\n32-byte values, "
          "%g s warmup + %g s measured%s" %
          (args.server_cpu, args.client_cpu, args.bypass_keys, args.warmup,
           args.duration,
           ", median of %d" % args.repeat if args.repeat > 1 else ""))
    print()
    print("%-19s %-17s %11s %8s %8s %8s %8s %6s" %
          ("server", "best client", "ops/s/core", "p50 us", "p99 us",
           "srv cpu", "of it sys", "idle"))
    for r in rows:
        lat = r["latency_us"]["all"]
        idle = r.get("idle")
        print("%-19s %-17s %11.0f %8.1f %8.1f %7.0f%% %8.0f%% %6s" %
              (r["server_name"], r["client"], r["ops_per_sec"], lat["p50"],
               lat["p99"], 100 * r["server_cpu"], 100 * r["server_sys"],
               "-" if idle is None else "%.0f%%" % (100 * idle)))
    failed = False
    bypass = max((by[n] for n in ("memlaned af_xdp", "memlaned af_packet")
                  if n in by), key=lambda r: r["ops_per_sec"], default=None)
    print()
    for name, target in (("memcached", TARGET_MEMCACHED),
                         ("memlaned socket", TARGET_SOCKET)):
        if bypass is None or name not in by:
            continue
        ratio = bypass["ops_per_sec"] / max(1e-9, by[name]["ops_per_sec"])
        ok = ratio >= target
        failed |= not ok
        print("target    %s / %s UDP >= %.1fx: %.2fx  %s" %
              (bypass["server_name"], name, target, ratio,
               "PASS" if ok else "FAIL"))
    print()
    print("of it sys the server core's time in the kernel: on a veth "
          "pair that includes\n          carrying each reply through "
          "the veth into the client's socket")
    print("idle      the share of the server core's loop time spent in "
          "passes that found no\n          work (stats dataplane: "
          "dp_idle_cycles / dp_loop_cycles), over the measured\n"
          "          run: well above 0 means the server waited for the "
          "client or the veth")
    return failed

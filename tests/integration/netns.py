# SPDX-License-Identifier: BSD-3-Clause
"""Test hosts of memlane's own: a server and a client network namespace
joined by a veth pair, with addresses from 198.18.0.0/15.

The test process moves itself into the client namespace (enter_client())
before it starts any thread, so that its sockets, and the clients it runs,
are the client host's; servers run in the server namespace through
`ip netns exec`, which execs them, so their PIDs are their own. Everything
is torn down when the test ends, fails or is stopped (SIGTERM).

Also here: raw Ethernet frames from the client's end of the veth, with
their IPv4 and UDP checksums, for the bad-packet checks.
"""

import atexit
import ctypes
import json
import os
import socket
import struct
import subprocess
import tempfile
import time

import harness

CLONE_NEWNET = 0x40000000

SERVER_IP = "198.18.0.1"  # memlaned's --ip
OTHER_IP = "198.18.0.5"   # the server kernel's own (memcached, TCP)
CLIENT_IP = "198.18.0.2"
PREFIX = 24


def need_root():
    """None when the test can make hosts, else the reason it cannot."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, DPDK ports)"
    for tool in ("ip", "ethtool"):
        if subprocess.run(["which", tool], capture_output=True).returncode:
            return "needs %s" % tool
    return None


def run(*argv, check=True):
    return subprocess.run(list(argv), check=check, capture_output=True)


class Topology:
    """Two namespaces and a veth pair. server_owns lists the addresses
    the server kernel owns on its end (memlaned on af_packet answers for
    SERVER_IP itself, so the kernel must not own it then)."""

    def __init__(self, server_owns):
        tag = "%x" % (os.getpid() & 0xfffff)
        self.srv, self.cli = "mlts" + tag, "mltc" + tag
        self.sdev, self.cdev = "vs" + tag, "vc" + tag
        self.made = []
        atexit.register(self.close)
        try:
            for ns in (self.srv, self.cli):
                run("ip", "netns", "add", ns)
                self.made.append(ns)
            run("ip", "link", "add", self.sdev, "type", "veth", "peer",
                "name", self.cdev)
            run("ip", "link", "set", self.sdev, "netns", self.srv)
            run("ip", "link", "set", self.cdev, "netns", self.cli)
            for ns, dev, addrs in ((self.srv, self.sdev, server_owns),
                                   (self.cli, self.cdev, [CLIENT_IP])):
                run("ip", "-n", ns, "link", "set", "lo", "up")
                # no IPv6 on the link: its neighbour discovery and MLD
                # frames would land in the bypass path's drop counters
                run("ip", "netns", "exec", ns, "sysctl", "-q", "-w",
                    "net.ipv6.conf.%s.disable_ipv6=1" % dev)
                for a in addrs:
                    run("ip", "-n", ns, "addr", "add",
                        "%s/%d" % (a, PREFIX), "dev", dev)
                run("ip", "-n", ns, "link", "set", dev, "up")
                # veth leaves UDP checksums to an offload that never
                # runs; the bypass path drops such frames as bad
                run("ip", "netns", "exec", ns, "ethtool", "-K", dev, "tx",
                    "off")
            self.smac = self.mac(self.srv, self.sdev)
            self.cmac = self.mac(self.cli, self.cdev)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def mac(ns, dev):
        out = run("ip", "-n", ns, "-j", "link", "show", dev).stdout
        return bytes.fromhex(json.loads(out)[0]["address"].replace(":", ""))

    def enter_client(self):
        """Moves this process (one thread only) into the client host."""
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open("/run/netns/" + self.cli, os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
        finally:
            os.close(fd)

    def in_server(self, argv):
        return ["ip", "netns", "exec", self.srv] + list(argv)

    def close(self):
        harness._stop_all()
        for ns in self.made:
            subprocess.run(["ip", "netns", "del", ns],
                           stderr=subprocess.DEVNULL)
        self.made = []


class NsServer:
    """memlaned or memcached in the server namespace, answering UDP on
    host:udp_port (and TCP on tcp_host:port when port is set), stopped by
    PID. Quacks like harness.Server for the differential."""

    def __init__(self, topo, kind, argv, host, udp_port, port=None,
                 tcp_host=None, label=None, ready_tcp=False):
        self.topo, self.kind, self.host = topo, kind, host
        self.ready_tcp = ready_tcp
        self.udp_port, self.port = udp_port, port
        self.tcp_host = tcp_host or host
        self.argv = topo.in_server(argv)
        self.label = label or kind
        self.proc = None
        self._log = None
        self.returncode = None

    def name(self):
        return self.label

    def describe(self):
        return "%s (%s)" % (self.label, " ".join(self.argv))

    def start(self):
        self._log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=self._log,
                                     stderr=subprocess.STDOUT)
        harness._live[self.proc.pid] = self
        deadline = time.time() + harness.START_TIMEOUT
        rid = 1
        while time.time() < deadline and self.proc.poll() is None:
            rid += 1
            if self._ready(rid):
                return self
            time.sleep(0.05)
        log = self.log()
        self.kill()
        raise harness.TestFailure("%s did not start: %s"
                                  % (self.describe(), log[-2000:]))

    def _ready(self, rid):
        """Whether it answers: version over UDP, or over TCP when this
        host's UDP is not to be answered (an allowlist run)."""
        try:
            if self.ready_tcp:
                # an answer, not just a connection: the kernel takes
                # connections into the backlog before memlaned has
                # finished setting up its port
                with harness.Conn(self.port, 1.0, self.tcp_host) as c:
                    return c.cmd(b"version\r\n").startswith(b"VERSION")
            with harness.UdpClient(self.udp_port, self.host) as u:
                return u.request(rid, b"version\r\n",
                                 lambda d: d.endswith(b"\r\n"), 0.3,
                                 0).complete
        except (OSError, harness.Closed):  # not up yet: refused, closed
            return False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, 15)
            try:
                self.proc.wait(harness.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
                raise harness.TestFailure("%s did not exit within %ds of "
                                          "SIGTERM" % (self.describe(),
                                                       harness.STOP_TIMEOUT))
        self.returncode = self.proc.returncode
        harness._live.pop(self.proc.pid, None)
        if self.returncode != 0:
            raise harness.TestFailure("%s exited with status %d:\n%s"
                                      % (self.describe(), self.returncode,
                                         self.log()[-3000:]))

    def kill(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, 15)
                self.proc.wait(harness.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, 9)
                self.proc.wait()
            except ProcessLookupError:
                pass
        self.returncode = self.proc.returncode
        harness._live.pop(self.proc.pid, None)

    def connect(self):
        return harness.Conn(self.port, host=self.tcp_host)

    def udp(self):
        return harness.UdpClient(self.udp_port, self.host)

    def stats(self, group=b"dataplane"):
        """stats <group> over UDP, as {name: int or str}."""
        with self.udp() as u:
            rep = u.request(77, b"stats " + group + b"\r\n",
                            lambda d: d.endswith(b"END\r\n"), 5.0, 0)
        harness.check(rep.complete, "%s: no reply to stats %s"
                      % (self.label, group.decode()))
        out = {}
        for line in bytes(rep.data).decode().split("\r\n"):
            p = line.split(" ")
            if len(p) == 3 and p[0] == "STAT":
                out[p[1]] = int(p[2]) if p[2].isdigit() else p[2]
        return out

    def __enter__(self):
        return self.start()

    def __exit__(self, etype, evalue, tb):
        if etype is None:
            self.stop()
        else:
            self.kill()
        return False


# ---------------------------------------------------------------------------
# Raw frames
# ---------------------------------------------------------------------------

def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff


def ipv4(src, dst, proto, payload, options=b"", frag=0x4000, tot=None,
         bad_csum=False):
    ihl = 5 + len(options) // 4
    tot = tot if tot is not None else ihl * 4 + len(payload)
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, tot, 0x1234, frag, 64,
                    proto, 0, socket.inet_aton(src),
                    socket.inet_aton(dst)) + options
    c = csum(h) ^ (1 if bad_csum else 0)
    return h[:10] + struct.pack("!H", c) + h[12:] + payload


def udp(src, dst, sport, dport, payload, ulen=None, bad_csum=False):
    ulen = ulen if ulen is not None else 8 + len(payload)
    h = struct.pack("!HHHH", sport, dport, ulen, 0)
    pseudo = struct.pack("!4s4sBBH", socket.inet_aton(src),
                         socket.inet_aton(dst), 0, 17, 8 + len(payload))
    c = csum(pseudo + h + payload) or 0xffff
    if bad_csum:
        c ^= 0x0101
    return h[:6] + struct.pack("!H", c) + payload


def memcached_frame(req_id, body, count=1):
    return struct.pack("!HHHH", req_id, 0, count, 0) + body


def ether(dst, src, payload, ethertype=0x0800):
    return dst + src + struct.pack("!H", ethertype) + payload


class RawSender:
    """Sends frames as they are from the client's end of the veth."""

    def __init__(self, topo):
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        self.sock.bind((topo.cdev, 0))

    def send(self, frame):
        self.sock.send(frame)

    def close(self):
        self.sock.close()

# SPDX-License-Identifier: BSD-3-Clause
"""memlaned's kernel bypass, on hosts the test makes: a veth pair between
a server and a client network namespace (198.18.0.0/15).

    test_bypass.py af_packet|af_xdp [check ...]

memlaned runs with --dataplane dpdk on the server's end of the veth,
through DPDK's net_af_packet or net_af_xdp (with memlane's XDP program),
next to a real memcached on the same veth; the test itself is the client
host. Checks:

  differential   every golden session over UDP, memlaned (-t 1, -t 2)
                 against memcached, byte for byte after normalisation
  large_values   replies of up to 1 MB in many datagrams, like memcached's
  arp_ping       (af_packet) memlaned answers ARP and ping for --ip
  tcp_and_udp    (af_xdp) TCP through the kernel and bypass UDP, one cache
  counters       what took the bypass and what reached the kernel
  bad_packets    each malformed frame dropped, counted under its reason,
                 never answered, and the node keeps serving
  allowlist      UDP from outside --udp-allow dropped and counted
  cluster_udp    a bypass node and a socket node as one cache: bypass UDP
                 gets of the other node's keys are forwarded to it

Needs root; exits 77 (skipped) with the reason otherwise, or where the
kernel refuses XDP.
"""

import os
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True

import harness  # noqa: E402
import netns  # noqa: E402
import test_differential as diff  # noqa: E402
from harness import check, record  # noqa: E402
from netns import CLIENT_IP, OTHER_IP, SERVER_IP  # noqa: E402

UDP_PORT = 11211
TCP_PORT = 11212   # memlaned's, on a kernel address
MC_PORT = 11211    # memcached's, TCP and UDP, on OTHER_IP
# A request must fit one unfragmented frame: the bypass takes no IPv4
# fragments (MTU 1500, less the IPv4 and UDP headers).
UDP_MAX_REQUEST = 1472

MODE = None
TOPO = None


def memlaned(threads=1, mem_mb=64, item_max=None, no_evict=False,
             extra=(), ready_tcp=False):
    argv = [harness.memlaned_path()] + harness.root_args() + [
        "--dataplane", "dpdk", "--eal",
        "--vdev=net_%s0,iface=%s" % (MODE, TOPO.sdev),
        "--ip", SERVER_IP, "-U", str(UDP_PORT), "-p", str(TCP_PORT),
        "-t", str(threads), "-m", str(mem_mb)]
    # on af_packet the kernel must not own --ip: TCP uses its other one
    tcp_host = OTHER_IP if MODE == "af_packet" else SERVER_IP
    argv += ["-l", tcp_host]
    if item_max:
        argv += ["-I", "%dk" % (item_max // 1024)]
    if no_evict:
        argv.append("-M")
    return netns.NsServer(TOPO, "memlaned", argv + list(extra), SERVER_IP,
                          UDP_PORT, TCP_PORT, tcp_host,
                          "memlaned %s -t %d" % (MODE, threads), ready_tcp)


def memcached(mem_mb=64, item_max=None, no_evict=False):
    argv = [harness.memcached_path(), "-l", OTHER_IP, "-p", str(MC_PORT),
            "-U", str(MC_PORT), "-m", str(mem_mb), "-t", "1", "-B", "ascii",
            "-u", "root"]
    if item_max:
        argv += ["-I", "%dk" % (item_max // 1024)]
    if no_evict:
        argv.append("-M")
    return netns.NsServer(TOPO, "memcached", argv, OTHER_IP, MC_PORT,
                          MC_PORT, OTHER_IP, "memcached")


def until_end(d):
    return d.endswith(b"END\r\n")


# ---------------------------------------------------------------------------
# The protocol, like memcached
# ---------------------------------------------------------------------------

def differential():
    """The golden sessions over UDP through the bypass, -t 1 and -t 2,
    against memcached on the same veth."""
    names = sorted(os.path.splitext(f)[0]
                   for f in os.listdir(diff.SESSIONS_DIR)
                   if f.endswith(".txt"))
    problems = []
    played = 0
    for name in names:
        server_name, records = record.parse_session(
            os.path.join(diff.SESSIONS_DIR, name + ".txt"))
        cfg = record.SERVERS[server_name]
        common = dict(mem_mb=cfg["mem_mb"], item_max=cfg["item_size_max"],
                      no_evict=cfg["no_evict"])
        for threads in (1, 2):
            # one bypass memlaned on the veth at a time
            servers = [memcached(**common), memlaned(threads, **common)]
            diff.play_all(servers, records, True, name, problems,
                          UDP_MAX_REQUEST)
            played += 1
        print("   %s: played" % name, flush=True)
    check(played and not problems, "%d differences:\n  - %s"
          % (len(problems), "\n  - ".join(problems)))


def large_values():
    """Values stored over TCP come back over bypass UDP in as many
    datagrams as memcached sends, byte for byte the same."""
    rnd = harness.seeded_random("bypass_large")
    with memcached(mem_mb=64) as mc, memlaned(2, mem_mb=64) as ml:
        for size in (1000, 1400, 5000, 300000, 1000000):
            v = bytes(rnd.randrange(256) for _ in range(4096))
            v = (v * (size // len(v) + 1))[:size]
            k = b"lv%d" % size
            got = {}
            for srv in (mc, ml):
                with srv.connect() as c:
                    line = c.cmd(b"set %s 3 0 %d\r\n%s\r\n" % (k, size, v))
                    check(line == b"STORED\r\n", "%s: set %s: %r"
                          % (srv.label, k, line))
                with srv.udp() as u:
                    rep = u.request(size & 0xffff, b"get %s\r\n" % k,
                                    until_end)
                check(rep.complete and not rep.errors,
                      "%s: get %s: %s" % (srv.label, k,
                                          "; ".join(rep.errors) or
                                          "incomplete"))
                got[srv.label] = (bytes(rep.data), rep.datagrams)
            want = b"VALUE %s 3 %d\r\n%s\r\nEND\r\n" % (k, size, v)
            check(got[ml.label][0] == want,
                  "memlaned: get %s: %s" % (k, harness.diff_text(
                      want, got[ml.label][0])))
            check(got[ml.label] == got[mc.label],
                  "get %s: memlaned sent %d datagrams, memcached %d"
                  % (k, got[ml.label][1], got[mc.label][1]))
        st = ml.stats()
        check(st.get("dp_replies_split", 0) >= 4,
              "dp_replies_split %s after four multi-datagram replies"
              % st.get("dp_replies_split"))


# ---------------------------------------------------------------------------
# The host
# ---------------------------------------------------------------------------

def arp_ping():
    """On af_packet the kernel does not own --ip: memlaned answers ARP and
    ICMP echo for it."""
    if MODE != "af_packet":
        print("   arp_ping: the kernel answers on af_xdp")
        return harness.SKIP
    with memlaned() as ml:
        before = ml.stats()
        subprocess.run(["ip", "neigh", "flush", "dev", TOPO.cdev],
                       capture_output=True)
        p = subprocess.run(["ping", "-c", "3", "-i", "0.2", "-W", "2",
                            SERVER_IP], capture_output=True, timeout=20)
        check(p.returncode == 0, "ping %s: %s" % (SERVER_IP,
                                                  p.stdout.decode()[-300:]))
        neigh = subprocess.run(["ip", "neigh", "show", SERVER_IP],
                               capture_output=True).stdout.decode()
        check(TOPO.smac.hex(":") in neigh.lower(),
              "ARP: %s resolved to %r, want %s" % (SERVER_IP, neigh,
                                                  TOPO.smac.hex(":")))
        after = ml.stats()
        check(after["dp_arp_replies"] > before["dp_arp_replies"],
              "dp_arp_replies stayed %d" % after["dp_arp_replies"])
        check(after["dp_icmp_replies"] - before["dp_icmp_replies"] >= 3,
              "dp_icmp_replies grew by %d for 3 pings"
              % (after["dp_icmp_replies"] - before["dp_icmp_replies"]))


def tcp_and_udp():
    """In one memlaned on af_xdp, TCP (pymemcache, through the kernel)
    and bypass UDP read each other's writes."""
    if MODE != "af_xdp":
        print("   tcp_and_udp: TCP sits on another address on af_packet")
        return harness.SKIP
    from pymemcache.client.base import Client
    with memlaned(2) as ml:
        c = Client((SERVER_IP, TCP_PORT), timeout=5, default_noreply=False)
        with ml.udp() as u:
            for i in range(40):
                k = b"tu%d" % i
                c.set(k, b"tcp-%d" % i)
                rep = u.request(100 + i, b"get %s\r\n" % k, until_end)
                check(bytes(rep.data) == b"VALUE %s 0 %d\r\ntcp-%d\r\nEND"
                      b"\r\n" % (k, len(b"tcp-%d" % i), i),
                      "set over TCP, get over UDP: %r" % bytes(rep.data))
                rep = u.request(200 + i, b"set %s 0 0 5\r\nudp-%d\r\n"
                                % (k, i % 10), lambda d: d.endswith(b"\n"))
                check(bytes(rep.data) == b"STORED\r\n", "set over UDP: %r"
                      % bytes(rep.data))
                check(c.get(k) == b"udp-%d" % (i % 10),
                      "set over UDP, get over TCP: %r" % c.get(k))
        c.close()


def counters():
    """Requests are counted where they went: the bypass (dp_requests;
    on af_xdp, xdp_redirected) and the kernel (xdp_passed: TCP, ping)."""
    with memlaned() as ml:
        before = ml.stats()
        n, sent = 50, 0
        with ml.udp() as u:
            for i in range(n):
                # UDP may lose one on a loaded machine: sent again, and
                # counted as sent
                for _ in range(3):
                    sent += 1
                    rep = u.request(300 + i, b"get cnt%d\r\n" % i,
                                    until_end, 2.0)
                    if rep.complete:
                        break
                check(rep.complete, "get %d: no reply, 3 times" % i)
        after = ml.stats()
        # each stats request counts itself
        got = after["dp_requests"] - before["dp_requests"]
        check(n + 1 <= got <= sent + 1, "dp_requests grew by %d for %d "
              "requests (%d datagrams) and a stats" % (got, n, sent))
        check(after["dp_tx_packets"] - before["dp_tx_packets"] >= n,
              "dp_tx_packets grew by %d"
              % (after["dp_tx_packets"] - before["dp_tx_packets"]))
        if MODE != "af_xdp":
            return
        # the stats request itself is one more redirected datagram
        red = after["xdp_redirected"] - before["xdp_redirected"]
        check(red == got, "xdp_redirected grew by %d, dp_requests by %d"
              % (red, got))
        passed = after["xdp_passed"]
        p = subprocess.run(["ping", "-c", "3", "-i", "0.2", "-W", "2",
                            SERVER_IP], capture_output=True, timeout=20)
        check(p.returncode == 0, "ping through the kernel failed")
        with ml.connect() as c:
            check(c.cmd(b"version\r\n").startswith(b"VERSION"),
                  "version over TCP")
        st = ml.stats()
        check(st["xdp_passed"] - passed >= 6,
              "xdp_passed grew by %d for 3 pings and a TCP exchange"
              % (st["xdp_passed"] - passed))
        check(st["dp_requests"] == after["dp_requests"] + 1,
              "TCP and ping reached the bypass: dp_requests %d -> %d"
              % (after["dp_requests"], st["dp_requests"]))


# ---------------------------------------------------------------------------
# Bad packets
# ---------------------------------------------------------------------------

def good_udp(body=b"get bad\r\n", count=1, src=CLIENT_IP, sport=40001):
    return netns.udp(src, SERVER_IP, sport, UDP_PORT,
                     netns.memcached_frame(9, body, count))


def bad_frames():
    """(name, frame, the counter af_packet moves, the one af_xdp moves)."""
    eth = lambda p: netns.ether(TOPO.smac, TOPO.cmac, p)  # noqa: E731
    ip = lambda p, **kw: netns.ipv4(CLIENT_IP, SERVER_IP, 17, p,  # noqa
                                    **kw)
    full = ip(good_udp())
    return [
        ("truncated_ipv4", eth(full[:12]), "dp_drop_truncated",
         "xdp_passed"),
        ("truncated_udp", eth(ip(good_udp()[:6], tot=26)),
         "dp_drop_truncated", "xdp_drop_truncated"),
        ("bad_ip_checksum", eth(ip(good_udp(), bad_csum=True)),
         "dp_drop_bad_checksum", "xdp_drop_bad_checksum"),
        ("bad_udp_checksum",
         eth(ip(netns.udp(CLIENT_IP, SERVER_IP, 40001, UDP_PORT,
                          netns.memcached_frame(9, b"get bad\r\n"),
                          bad_csum=True))),
         "dp_drop_bad_checksum", "dp_drop_bad_checksum"),
        ("ip_options", eth(ip(good_udp(), options=b"\x01\x01\x01\x00")),
         "dp_drop_ip_options", "xdp_drop_ip_options"),
        # net_af_packet's socket has the kernel reassemble (its fanout's
        # defrag flag): a lone fragment never reaches memlaned there
        ("fragment", eth(ip(good_udp(), frag=0x2000)), None,
         "xdp_drop_fragment"),
        ("frame_count_2", eth(ip(good_udp(count=2))), "dp_drop_bad_frame",
         "xdp_drop_bad_frame"),
        ("frame_short",
         eth(ip(netns.udp(CLIENT_IP, SERVER_IP, 40001, UDP_PORT,
                          b"\x00\x09\x00"))),
         "dp_drop_bad_frame", "xdp_drop_bad_frame"),
        ("udp_length_beyond",
         eth(ip(netns.udp(CLIENT_IP, SERVER_IP, 40001, UDP_PORT,
                          netns.memcached_frame(9, b"get bad\r\n"),
                          ulen=200))),
         "dp_drop_bad_length", "xdp_drop_bad_length"),
        ("ip_length_beyond", eth(ip(good_udp(), tot=400)),
         "dp_drop_bad_length", "xdp_drop_bad_length"),
    ]


def expect_silence(ml, u, what):
    """No datagram comes back to the client, and the node still serves."""
    d = u.recv(0.3)
    check(d is None, "%s: got a reply %r" % (what, d))
    rep = u.request(4242, b"set alive 0 0 2\r\nok\r\n",
                    lambda x: x.endswith(b"\r\n"), 5.0, 0)
    check(bytes(rep.data) == b"STORED\r\n", "after %s: set got %r"
          % (what, bytes(rep.data)))


def bad_packets():
    """Each malformed frame, sent raw to the server's MAC from the
    client's port 40001: dropped, counted under its reason (by memlaned
    on af_packet, by the XDP program on af_xdp but for UDP checksums,
    which only user space checks), never answered; the node keeps
    serving."""
    raw = netns.RawSender(TOPO)
    with memlaned(2) as ml, ml.udp() as probe:
        # the replies would go to the raw frames' source port
        listen = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        listen.bind((CLIENT_IP, 40001))
        listen.settimeout(0.3)
        try:
            for name, frame, c_pkt, c_xdp in bad_frames():
                counter = c_pkt if MODE == "af_packet" else c_xdp
                before = ml.stats()
                for _ in range(3):
                    raw.send(frame)
                time.sleep(0.2)
                try:
                    d = listen.recv(65536)
                    harness.fail("%s: answered with %r" % (name, d))
                except socket.timeout:
                    pass
                after = ml.stats()
                moved = after.get(counter, 0) - before.get(counter, 0) \
                    if counter else 0
                if counter is None:
                    moved_by = {k: after[k] - before.get(k, 0)
                                for k in after if k.startswith("dp_drop_")
                                and after[k] != before.get(k, 0)}
                    check(not moved_by, "%s: drops counted (%r), the "
                          "kernel should have kept it" % (name, moved_by))
                elif counter == "xdp_passed":
                    # the stats requests go elsewhere; ARP may pass too
                    check(moved >= 3, "%s: %s grew by %d, want >= 3"
                          % (name, counter, moved))
                else:
                    check(moved == 3, "%s: %s grew by %d, want 3"
                          % (name, counter, moved))
                expect_silence(ml, probe, name)
            # and a good frame from the same port is answered
            raw.send(netns.ether(TOPO.smac, TOPO.cmac,
                                 netns.ipv4(CLIENT_IP, SERVER_IP, 17,
                                            good_udp(b"get alive\r\n"))))
            d = listen.recv(65536)
            check(d[8:] == b"VALUE alive 0 2\r\nok\r\nEND\r\n",
                  "a good raw frame got %r" % d)
        finally:
            listen.close()
            raw.close()


def allowlist():
    """With --udp-allow naming another host, the client's UDP is dropped
    and counted, and never answered."""
    with memlaned(1, extra=["--udp-allow", "198.18.0.200/32"],
                  ready_tcp=True) as ml:
        counter = "dp_drop_not_allowed" if MODE == "af_packet" \
            else "xdp_drop_not_allowed"
        with ml.udp() as u:
            for i in range(5):
                u.send(500 + i, b"get x\r\n")
            check(u.recv(0.5) is None, "a source outside --udp-allow was "
                  "answered")
        # ask over TCP: UDP is refused to this host
        with ml.connect() as c:
            c.send(b"stats dataplane\r\n")
            text = bytes(c.read_until(b"END\r\n")).decode()
        st = dict(line.split(" ")[1:3] for line in text.split("\r\n")
                  if line.startswith("STAT "))
        check(int(st.get(counter, 0)) == 5, "%s is %s after 5 datagrams"
              % (counter, st.get(counter)))


def dp_forwards(c):
    c.send(b"stats dataplane\r\n")
    n = None
    while True:
        line = c.readline()
        if line == b"END\r\n":
            check(n is not None, "stats dataplane has dp_forwards")
            return n
        w = line.split()
        if len(w) == 3 and w[1] == b"dp_forwards":
            n = int(w[2])


def cluster_udp():
    """Two nodes as one cache: memlaned on the bypass and a socket-backend
    memlaned beside it in the server namespace. A bypass UDP get of a key
    the other node owns is forwarded to it over TCP, and the datagrams
    that come back are those one node would send."""
    tcp_host = OTHER_IP if MODE == "af_packet" else SERVER_IP
    peers = "%s:%d,%s:%d" % (tcp_host, TCP_PORT, tcp_host, TCP_PORT + 1)
    other = netns.NsServer(
        TOPO, "memlaned",
        [harness.memlaned_path()] + harness.root_args() + ["-l", tcp_host, "-p", str(TCP_PORT + 1),
         "-U", "0", "-t", "1", "--peers", peers, "--admin", "off"],
        tcp_host, 0, TCP_PORT + 1, tcp_host, "memlaned socket peer",
        ready_tcp=True)
    keys = 80
    out = subprocess.run([os.environ["KETAMA_CLIENT"], "owners", peers,
                          "cu:", str(keys)], capture_output=True,
                         timeout=60, check=True)
    owners = [int(x) for x in out.stdout.split()]
    check(0 < sum(owners) < keys, "both nodes own keys: %r" % owners)
    with other, memlaned(2, extra=("--peers", peers, "--admin", "off"),
                         ready_tcp=True) as ml:
        with harness.Conn(TCP_PORT, host=tcp_host) as c:
            for k in range(keys):
                c.send(b"set cu:%d 5 0 4\r\nv%03d\r\n" % (k, k))
                check(c.readline() == b"STORED\r\n", "set cu:%d" % k)
            before = dp_forwards(c)
        with ml.udp() as u:
            for k in range(keys):
                rep = u.request(500 + k, b"get cu:%d\r\n" % k, until_end)
                check(not rep.errors, "framing: %r" % rep.errors)
                check(bytes(rep.data) == b"VALUE cu:%d 5 4\r\nv%03d\r\nEND"
                      b"\r\n" % (k, k), "bypass get cu:%d (owner %d): %r"
                      % (k, owners[k], bytes(rep.data)))
            many = list(range(0, keys, 3))
            rep = u.request(999, b"get " + b" ".join(
                b"cu:%d" % k for k in many) + b"\r\n", until_end)
            want = b"".join(b"VALUE cu:%d 5 4\r\nv%03d\r\n" % (k, k)
                            for k in many) + b"END\r\n"
            check(bytes(rep.data) == want, "bypass multi-get over both "
                  "owners: %r" % bytes(rep.data)[:300])
        with harness.Conn(TCP_PORT, host=tcp_host) as c:
            after = dp_forwards(c)
        # a forward per get of node 1's keys, and per such key of the
        # multi-get
        want = sum(owners) + sum(owners[k] for k in many)
        check(after - before == want, "bypass forwards: %d, the ring "
              "predicts %d" % (after - before, want))


CHECKS = [differential, large_values, arp_ping, tcp_and_udp, counters,
          bad_packets, allowlist, cluster_udp]


def main():
    global MODE, TOPO
    if len(sys.argv) < 2 or sys.argv[1] not in ("af_packet", "af_xdp"):
        print(__doc__)
        return 2
    MODE = sys.argv[1]
    why = netns.need_root()
    if why:
        print("SKIP bypass_%s: %s" % (MODE, why))
        return harness.SKIP
    owns = [OTHER_IP] if MODE == "af_packet" else [SERVER_IP, OTHER_IP]
    TOPO = netns.Topology(owns)
    TOPO.enter_client()
    if MODE == "af_xdp":
        # the kernel must take XDP on a veth: see whether it does
        probe = memlaned()
        try:
            probe.start()
        except harness.TestFailure as e:
            if "XDP" in str(e) or "xdp" in str(e):
                print("SKIP bypass_af_xdp: the kernel refuses XDP here: %s"
                      % str(e)[-300:])
                return harness.SKIP
            raise
        probe.stop()
    harness.run_checks(CHECKS, sys.argv[2:])
    return 0


if __name__ == "__main__":
    sys.exit(main())

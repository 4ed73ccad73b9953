# SPDX-License-Identifier: BSD-3-Clause
"""memlaned over UDP: framing, request ids, replies split into datagrams,
multi-key gets whose keys live on different cores, messages cut where
memcached cuts them (compared datagram by datagram with memcached), bad
datagrams.

memlaned runs with -t 2 and -U; values are stored over TCP or UDP and read
back over UDP, and every reply is compared with what the stored data says
it must be. Each datagram of a reply must carry the request's id, a
sequence number below its count, a reserved field of 0, and be at most
1400 bytes with its 8-byte header.
"""

import sys
import time

# Keep the source tree free of bytecode caches.
sys.dont_write_bytecode = True

import harness  # noqa: E402
from harness import check, fail, show

MTU_PAYLOAD = harness.UDP_MTU - harness.UDP_HDR.size


def start():
    return harness.Server("memlaned", udp=True, threads=2, mem_mb=64)


def until_end(data):
    return data.endswith(b"END\r\n")


def one_line(data):
    return data.endswith(b"\r\n")


def expected_get(values, keys, with_cas=None):
    out = bytearray()
    for k in keys:
        if k in values:
            flags, v = values[k]
            if with_cas is None:
                out += b"VALUE %s %d %d\r\n" % (k, flags, len(v))
            else:
                out += b"VALUE %s %d %d %d\r\n" % (k, flags, len(v),
                                                   with_cas[k])
            out += v + b"\r\n"
    return bytes(out + b"END\r\n")


def check_reply(what, rep, expected):
    check(rep.complete, "%s: no complete reply; got %s; %s"
          % (what, show(rep.data), "; ".join(rep.errors)))
    check(not rep.errors, "%s: bad framing: %s" % (what,
                                                    "; ".join(rep.errors)))
    check(bytes(rep.data) == expected, "%s:\n      %s"
          % (what, harness.diff_text(expected, bytes(rep.data))))


def store_tcp(srv, values):
    with srv.connect() as c:
        for k, (flags, v) in values.items():
            line = c.cmd(b"set %s %d 0 %d\r\n%s\r\n" % (k, flags, len(v), v))
            check(line == b"STORED\r\n", "set %s: got %s" % (k, show(line)))


def udp_request_ids():
    """Each reply carries its request's id, whichever core answers."""
    rnd = harness.seeded_random("udp_request_ids")
    with start() as srv:
        values = {}
        for i in range(64):
            values[b"id:%d" % i] = (i, b"v%d" % i * (i % 7 + 1))
        store_tcp(srv, values)
        # One request at a time, from several sockets (source ports), so
        # that both cores' sockets see requests.
        for s in range(4):
            with harness.UdpClient(srv.udp_port) as u:
                for i in range(64):
                    rid = rnd.randrange(0, 1 << 16)
                    k = b"id:%d" % i
                    rep = u.request(rid, b"get %s\r\n" % k, until_end,
                                    settle=0)
                    check_reply("socket %d: get %s with request id %d"
                                % (s, k, rid), rep,
                                expected_get(values, [k]))
        # Many requests in flight at once: each id gets its own reply.
        with harness.UdpClient(srv.udp_port) as u:
            ids = rnd.sample(range(1 << 16), 64)
            want = {}
            for i, rid in enumerate(ids):
                k = b"id:%d" % i
                want[rid] = expected_get(values, [k])
                u.send(rid, b"get %s\r\n" % k)
            got = {}
            while len(got) < len(ids):
                d = u.recv(harness.IO_TIMEOUT)
                check(d is not None, "only %d of %d replies arrived"
                      % (len(got), len(ids)))
                rid, seq, count, res = harness.UDP_HDR.unpack_from(d)
                check((seq, count, res) == (0, 1, 0),
                      "reply to %d: header seq=%d count=%d reserved=%d"
                      % (rid, seq, count, res))
                check(rid in want and rid not in got,
                      "reply with unexpected request id %d: %s"
                      % (rid, show(d[8:])))
                got[rid] = d[8:]
            for rid in ids:
                check(got[rid] == want[rid], "request id %d: expected %s,"
                      " got %s" % (rid, show(want[rid]), show(got[rid])))


def udp_multiget_across_cores():
    """One get with many keys, which hash to both cores, answered in key
    order with one END, split into datagrams and reassembled by seq."""
    rnd = harness.seeded_random("udp_multiget")
    with start() as srv:
        values = {}
        for i in range(200):
            n = rnd.choice([0, 1, 10, 100, 300, 1000])
            v = bytes(rnd.randrange(256) for _ in range(n))
            values[b"mk%03d" % i] = (rnd.randrange(1 << 32), v)
        store_tcp(srv, values)
        keys = list(values)
        with harness.UdpClient(srv.udp_port) as u:
            for rnd_i in range(20):
                pick = rnd.sample(keys, rnd.randrange(20, 120))
                # Misses and repeats among them.
                pick += [b"missing%d" % rnd_i, pick[0]]
                rnd.shuffle(pick)
                line = b"get " + b" ".join(pick) + b"\r\n"
                rep = u.request(rnd_i + 1, line, until_end)
                check_reply("get of %d keys (%s)" % (len(pick),
                                                     show(line, 120)),
                            rep, expected_get(values, pick))
            # gets: the CAS values must be the ones TCP reports.
            pick = rnd.sample(keys, 60)
            with srv.connect() as c:
                c.send(b"gets " + b" ".join(pick) + b"\r\n")
                cas = {k: v[2] for k, v in c.read_retrieval().items()}
            rep = u.request(999, b"gets " + b" ".join(pick) + b"\r\n",
                            until_end)
            check_reply("gets of 60 keys", rep,
                        expected_get(values, pick, cas))
            # Meta gets in one datagram, with opaques.
            body = b"".join(b"mg %s v f O%d\r\n" % (k, i)
                            for i, k in enumerate(pick[:40])) + b"mn\r\n"
            want = bytearray()
            for i, k in enumerate(pick[:40]):
                flags, v = values[k]
                want += b"VA %d f%d O%d\r\n%s\r\n" % (len(v), flags, i, v)
            want += b"MN\r\n"
            rep = u.request(1000, body,
                            lambda d: d.endswith(b"MN\r\n"))
            check_reply("40 mg in one datagram", rep, bytes(want))


def datagrams(u, rid, body, timeout=harness.IO_TIMEOUT):
    """Sends body and then mn in one datagram; returns every datagram of
    the reply as (seq, count, payload), up to the sentinel's MN and any
    strays within a short wait after it."""
    u.send(rid, body + b"mn\r\n")
    out = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        d = u.recv(max(0.0, deadline - time.time()))
        if d is None:
            break
        r, seq, count, res = harness.UDP_HDR.unpack_from(d)
        check(r == rid and res == 0, "%s: header id=%d reserved=%d"
              % (show(body, 60), r, res))
        out.append((seq, count, d[8:]))
        if d[8:] == b"MN\r\n":
            while True:
                d = u.recv(0.05)
                if d is None:
                    return out
                out.append(harness.UDP_HDR.unpack_from(d)[1:3] + (d[8:],))
    fail("%s: no MN within %ds; got %r" % (show(body, 60), timeout, out))


def dgram_text(ds, n):
    if n >= len(ds):
        return "nothing"
    seq, count, payload = ds[n]
    return "seq %d of %d: %s" % (seq, count, show(payload, 120))


def udp_messages_like_memcached():
    """Datagram by datagram, replies come as memcached 1.6 sends them:
    each request's reply a message of its own; each key of a multi-key
    retrieval its own message, END with the last key; a first key that
    misses gives a bare header with a count of 0, a later miss nothing."""
    big = bytes(range(256)) * 12
    values = {b"a": (0, b"x"), b"b": (5, b"yy"), b"big": (9, big)}
    values.update({b"m%02d" % i: (i, b"v%d" % i) for i in range(0, 40, 3)})
    many = b" ".join(b"m%02d" % i for i in range(40))
    bodies = [
        b"get a zz b\r\n",
        b"get zz a\r\n",
        b"get zz yy a b\r\n",
        b"get zz yy\r\n",
        b"get a zz\r\nget zz a\r\nget zz\r\n",
        b"gat 0 a b\r\nbogus\r\nset c 0 0 1 noreply\r\nz\r\nget c\r\n",
        b"mg zz v q\r\nmg a v\r\nget zz big a\r\nget big big\r\n",
        b"get " + many + b"\r\n",
        b"gat 0 zz " + many + b"\r\ndelete c\r\ntouch b 0\r\n",
        # what memcached holds before a get decides whether its first
        # missing key sends a bare header: a reply does not, a response
        # that was sent (mn, a get) or none at all (noreply, quiet) does
        b"mn\r\nget zz a\r\nset k 0 0 1\r\nv\r\nget zz a\r\n",
        b"set k 0 0 1 noreply\r\nv\r\nget zz a\r\n",
        b"ms k 1 q\r\nv\r\nmd zz q\r\nget zz a\r\n",
        b"delete zz noreply\r\nget zz yy a zz\r\nmd zz\r\nget zz a\r\n",
        b"get a\r\nget zz a\r\nincr zz 1\r\nget zz zz\r\n",
    ]
    ref = harness.Server("memcached", udp=True, threads=1)
    srvs = [harness.Server("memlaned", udp=True, threads=t) for t in (1, 2)]
    with harness.Servers(ref, *srvs):
        for srv in [ref] + srvs:
            store_tcp(srv, values)
        with harness.UdpClient(ref.udp_port) as u:
            want = [datagrams(u, 100 + i, b) for i, b in enumerate(bodies)]
        for srv in srvs:
            with harness.UdpClient(srv.udp_port) as u:
                for i, b in enumerate(bodies):
                    got = datagrams(u, 100 + i, b)
                    if got == want[i]:
                        continue
                    n = next((j for j, (x, y) in enumerate(zip(got, want[i]))
                              if x != y), min(len(got), len(want[i])))
                    fail("%s, %s: datagram %d of %d differs (memcached"
                         " sends %d):\n  memcached %s\n  memlaned  %s"
                         % (srv.name(), show(b, 80), n, len(got),
                            len(want[i]), dgram_text(want[i], n),
                            dgram_text(got, n)))


def udp_large_value():
    """A reply far larger than a datagram: every part present once, each
    at most 1400 bytes, and the count memcached would send."""
    rnd = harness.seeded_random("udp_large")
    with start() as srv:
        with harness.UdpClient(srv.udp_port) as u:
            for size in (MTU_PAYLOAD - 20, MTU_PAYLOAD, 5000, 300000,
                         1000000):
                v = bytes(rnd.randrange(256) for _ in range(min(size, 4096)))
                v = (v * (size // len(v) + 1))[:size]
                k = b"big%d" % size
                store_tcp(srv, {k: (7, v)})
                want = expected_get({k: (7, v)}, [k])
                rid = size & 0xffff
                u.send(rid, b"get %s\r\n" % k)
                parts = {}
                count = None
                while count is None or len(parts) < count:
                    d = u.recv(harness.IO_TIMEOUT)
                    check(d is not None, "get %s: %d of %s datagrams arrived"
                          % (k, len(parts), count))
                    r, seq, cnt, res = harness.UDP_HDR.unpack_from(d)
                    check(r == rid and res == 0,
                          "get %s: header id=%d reserved=%d" % (k, r, res))
                    check(len(d) <= harness.UDP_MTU,
                          "get %s: a datagram of %d bytes" % (k, len(d)))
                    check(count is None or cnt == count,
                          "get %s: counts %s and %d in one reply"
                          % (k, count, cnt))
                    count = cnt
                    check(seq < cnt and seq not in parts,
                          "get %s: seq %d (count %d) twice or out of range"
                          % (k, seq, cnt))
                    parts[seq] = d[8:]
                need = (len(want) + MTU_PAYLOAD - 1) // MTU_PAYLOAD
                check(count == need, "get %s: reply of %d bytes in %d"
                      " datagrams, memcached sends %d"
                      % (k, len(want), count, need))
                got = b"".join(parts[i] for i in range(count))
                check(got == want, "get %s reassembled: %s"
                      % (k, harness.diff_text(want, got)))


def udp_bad_datagrams():
    """Datagrams memcached drops get no reply, and the server goes on
    answering; random bytes do not stop it either."""
    rnd = harness.seeded_random("udp_bad")
    H = harness.UDP_HDR.pack
    drops = [
        ("3 bytes", b"abc"),
        ("7 bytes", b"\x00\x01\x00\x00\x00\x01\x00"),
        ("count 2", H(11, 0, 2, 0) + b"version\r\n"),
        ("count 0", H(12, 0, 0, 0) + b"version\r\n"),
        ("a header and nothing", H(13, 0, 1, 0)),
    ]
    with start() as srv:
        store_tcp(srv, {b"k": (0, b"value")})
        with harness.UdpClient(srv.udp_port) as u:
            for i, (what, d) in enumerate(drops):
                u.sock.send(d)
                rid = 500 + i
                u.send(rid, b"get k\r\n")
                d = u.recv(harness.IO_TIMEOUT)
                check(d is not None, "after %s: no reply to a good request"
                      % what)
                r = harness.UDP_HDR.unpack_from(d)[0]
                check(r == rid, "after %s: first reply has id %d (%s),"
                      " expected the good request's %d"
                      % (what, r, show(d[8:]), rid))
                check(d[8:] == b"VALUE k 0 5\r\nvalue\r\nEND\r\n",
                      "after %s: get k gave %s" % (what, show(d[8:])))
            # A garbage line is answered ERROR, like over TCP.
            rep = u.request(600, b"\x01\x02\xff bogus\r\n", one_line)
            check_reply("a garbage line", rep, b"ERROR\r\n")
            # Random datagrams; replies to them are read and thrown away.
            for i in range(300):
                n = rnd.randrange(0, 3000)
                u.sock.send(bytes(rnd.randrange(256) for _ in range(n)))
            u2 = harness.UdpClient(srv.udp_port)
            try:
                rep = u2.request(601, b"get k\r\n", until_end)
                check_reply("get k after 300 random datagrams", rep,
                            b"VALUE k 0 5\r\nvalue\r\nEND\r\n")
            finally:
                u2.close()
        with srv.connect() as c:
            line = c.cmd(b"version\r\n")
            check(line.startswith(b"VERSION "), "TCP version after the"
                  " bad datagrams: %s" % show(line))


def udp_stats_after_sets():
    """stats at the end of a datagram of sets counts them all, those the
    other core ran included, as memcached's does."""
    with start() as srv, harness.UdpClient(srv.udp_port) as u:
        for rnd in range(3):
            body = b"".join(b"set us%d-%d 0 0 1 noreply\r\nx\r\n"
                            % (rnd, i) for i in range(40)) + b"stats\r\n"
            rep = u.request(700 + rnd, body, until_end)
            st = dict(line.split()[1:3] for line in
                      bytes(rep.data).split(b"\r\n")
                      if line.startswith(b"STAT ") and
                      len(line.split()) == 3)
            got = (st.get(b"cmd_set"), st.get(b"curr_items"))
            want = (b"%d" % (40 * (rnd + 1)),) * 2
            check(got == want, "round %d: cmd_set, curr_items after a "
                  "datagram of 40 sets then stats: %r, want %r"
                  % (rnd, got, want))


def udp_reply_bound():
    """A multi-key get over UDP is answered up to one largest item plus
    64 bytes per byte of the request (memlane's bound against
    reflection); keys past it are left out, as misses, and counted."""
    if harness.target_is_memcached():
        print("udp_reply_bound: memlane's own rule, memcached has none")
        return harness.SKIP
    big = b"b" * 600000
    values = {b"rb-small": (1, b"s" * 10), b"rb-a": (2, big),
              b"rb-b": (3, big), b"rb-c": (4, big)}
    with start() as srv, harness.UdpClient(srv.udp_port) as u:
        store_tcp(srv, values)
        rep = u.request(901, b"get rb-small rb-a\r\n", until_end)
        check_reply("get of a small and a large value", rep,
                    expected_get(values, [b"rb-small", b"rb-a"]))
        rep = u.request(902, b"get rb-a rb-b rb-c\r\n", until_end)
        check_reply("get of three 600 kB values", rep,
                    expected_get(values, [b"rb-a"]))
        rep = u.request(903, b"stats dataplane\r\n", until_end)
        st = dict(line.split()[1:3] for line in
                  bytes(rep.data).split(b"\r\n")
                  if line.startswith(b"STAT ") and len(line.split()) == 3)
        check(st.get(b"dp_udp_capped_keys") == b"2",
              "dp_udp_capped_keys after two keys left out: %r"
              % st.get(b"dp_udp_capped_keys"))


if __name__ == "__main__":
    harness.run_checks([udp_request_ids, udp_multiget_across_cores,
                        udp_messages_like_memcached, udp_large_value,
                        udp_bad_datagrams, udp_stats_after_sets,
                        udp_reply_bound])

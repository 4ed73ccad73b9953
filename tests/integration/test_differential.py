# SPDX-License-Identifier: BSD-3-Clause
"""memlaned against a real memcached, over the network, byte for byte.

Every golden session (tests/golden/sessions/*.txt) is played at the same
time against a memcached started here with the session's limits (-m, -I,
-M) and against memlaned with the same limits, once with one worker core
and once with two (so that keys owned by the other core take the
cross-core path). The replies are normalised the way the golden replay
normalises them (tests/golden/README.md) and must be equal.

    test_differential.py tcp [SESSION...]
    test_differential.py udp [SESSION...]

Over TCP every step is played as the recorder plays it: one write with the
`mn` sentinel, replies read until the sentinel's MN. Steps sent without a
sentinel are compared together with the next step that has one; both
servers must close the connection at the same steps.

Over UDP each step that forms whole requests and fits a datagram is sent
as one datagram (frame header, the step's requests, the `mn` sentinel);
the reply datagrams are checked (request id, sequence numbers, count, at
most 1400 bytes each), reassembled, normalised and compared. Steps that
split a request across packets, make the server close, or exceed the
datagram limit are left out, for both servers alike.

ML_JOBS sets how many sessions run at once (default 3).
"""

import concurrent.futures
import os
import re
import socket
import sys
import time

# Keep the source tree free of bytecode caches.
sys.dont_write_bytecode = True

import harness  # noqa: E402
from harness import record

SESSIONS_DIR = os.path.join(harness.GOLDEN_DIR, "sessions")
MAX_PROBLEMS = 8         # reported per session and server
UDP_MAX_REQUEST = 8000   # largest step sent as one datagram
UDP_STEP_TIMEOUT = 20.0
QUIT_RE = re.compile(rb"(?:^|\n)quit[ \r\n]")
# an HTTP request line closes the connection too (memcached's defence
# against cross-protocol requests): over UDP the datagram goes unanswered
HTTP_RE = re.compile(rb"(?m)^(?:\S{2,} .*)?HTTP/\S*\r?$")


class StepResult:
    def __init__(self, step, sent, reply, closed, errors=()):
        self.step = step
        self.sent = sent
        self.reply = reply
        self.closed = closed
        self.errors = list(errors)


class Played:
    """One server's run through one session: a result per step played,
    and the error that ended the run early, if any."""

    def __init__(self, server):
        self.server = server
        self.steps = []
        self.error = None


def connect(port):
    s = socket.create_connection((harness.HOST, port), 10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.setblocking(False)
    return s


def play_tcp(server, records):
    out = Played(server)
    sock = None
    cas = None
    try:
        sock = connect(server.port)
        for r in records:
            if isinstance(r, tuple):
                if r[0] == "sleep":
                    time.sleep(r[1])
                else:
                    sock.close()
                    sock = connect(server.port)
                continue
            sent = record.substitute(r.template, cas, int(time.time()))
            wire = record.expand(sent)
            reply, closed = record.exchange(
                sock, wire, "nosentinel" not in r.flags,
                record.count_mn_lines(wire))
            for v in record.reply_cas_values(reply):
                cas = v
            out.steps.append(StepResult(r, sent, reply, closed))
            if closed:
                sock.close()
                sock = connect(server.port)
    except (record.SessionError, OSError) as e:
        out.error = "%s: %s" % (type(e).__name__, e)
    finally:
        if sock is not None:
            sock.close()
    return out


def udp_eligible(records, max_request=UDP_MAX_REQUEST):
    """Indexes (into records) of the steps played over UDP, decided from
    the scripts alone so that every server gets the same steps."""
    far = int(time.time()) + 10 ** 6
    keep = set()
    for i, r in enumerate(records):
        if isinstance(r, tuple):
            continue
        if r.flags & {"nosentinel", "nosplit", "collapse"}:
            continue
        wire = record.expand(record.substitute(r.template, 2 ** 64 - 1,
                                               far))
        if QUIT_RE.search(wire) or HTTP_RE.search(wire):
            continue
        if len(wire) + len(record.SENTINEL) + 8 > max_request:
            continue
        keep.add(i)
    return keep


def play_udp(server, records, eligible):
    out = Played(server)
    cas = None
    req_id = 4000
    client = harness.UdpClient(server.udp_port,
                               getattr(server, "host", None))
    try:
        for i, r in enumerate(records):
            if isinstance(r, tuple):
                if r[0] == "sleep":
                    time.sleep(r[1])
                continue
            if i not in eligible:
                continue
            sent = record.substitute(r.template, cas, int(time.time()))
            wire = record.expand(sent)
            own = record.count_mn_lines(wire)
            req_id = (req_id * 7 + 13) & 0xffff

            def done(data, own=own):
                return (data.endswith(record.SENTINEL_REPLY) and
                        record.count_mn_replies(data) >= own + 1)

            rep = client.request(req_id, wire + record.SENTINEL, done,
                                 UDP_STEP_TIMEOUT)
            reply = bytes(rep.data)
            errors = list(rep.errors)
            if rep.complete:
                reply = reply[:-len(record.SENTINEL_REPLY)]
            else:
                errors.append("no complete reply (ending in the"
                              " sentinel's MN) within %ds"
                              % UDP_STEP_TIMEOUT)
            for v in record.reply_cas_values(reply):
                cas = v
            out.steps.append(StepResult(r, sent, reply, False, errors))
            if not rep.complete:
                break
    finally:
        client.close()
    return out


def describe_step(sr):
    r = sr.step
    return ("step at script line %d%s\n      sent: %s"
            % (r.lineno,
               " [%s]" % ",".join(sorted(r.flags)) if r.flags else "",
               harness.show(record.expand(sr.sent), 300)))


def compare(session, exp, act):
    """Problems found comparing act (memlaned) with exp (memcached)."""
    problems = []
    who = act.server.name()
    if exp.error:
        problems.append("%s: the reference memcached failed: %s"
                        % (session, exp.error))
    ne, na = harness.Normaliser(), harness.Normaliser()
    pend_e = bytearray()
    pend_a = bytearray()
    for e, a in zip(exp.steps, act.steps):
        if len(problems) >= MAX_PROBLEMS:
            problems.append("%s: %s: more differences not shown"
                            % (session, who))
            return problems
        if a.errors:
            problems.append("%s: %s: %s\n      UDP: %s"
                            % (session, who, describe_step(a),
                               "; ".join(a.errors)))
        if e.errors:
            problems.append("%s: memcached: %s\n      UDP: %s"
                            % (session, describe_step(e),
                               "; ".join(e.errors)))
        if e.closed != a.closed:
            problems.append("%s: %s: %s\n      memcached %s the"
                            " connection, %s did not"
                            % (session, who, describe_step(a),
                               "closed" if e.closed else "kept",
                               "close it" if e.closed else "keep it"))
        pend_e += e.reply
        pend_a += a.reply
        if "nosentinel" in e.step.flags:
            continue
        xe = ne.normalise(bytes(pend_e))
        xa = na.normalise(bytes(pend_a))
        if "collapse" in e.step.flags:
            xe, xa = harness.collapse(xe), harness.collapse(xa)
        if xe != xa:
            problems.append("%s: %s: %s\n      %s"
                            % (session, who, describe_step(a),
                               harness.diff_text(xe, xa)))
        del pend_e[:]
        del pend_a[:]
    if pend_e != pend_a and len(problems) < MAX_PROBLEMS:
        problems.append("%s: %s: replies after the last step differ: %s"
                        % (session, who,
                           harness.diff_text(ne.normalise(bytes(pend_e)),
                                             na.normalise(bytes(pend_a)))))
    if act.error:
        at = act.steps[-1].step.lineno if act.steps else 0
        problems.append("%s: %s: the run stopped after script line %d: %s"
                        % (session, who, at, act.error))
    elif len(act.steps) < len(exp.steps):
        problems.append("%s: %s: only %d of %d steps played"
                        % (session, who, len(act.steps), len(exp.steps)))
    return problems


def run_session(mode, name):
    server_name, records = record.parse_session(
        os.path.join(SESSIONS_DIR, name + ".txt"))
    cfg = record.SERVERS[server_name]
    udp = mode == "udp"
    common = dict(udp=udp, mem_mb=cfg["mem_mb"],
                  item_max=cfg["item_size_max"], no_evict=cfg["no_evict"])
    servers = [harness.Server("memcached", threads=1, **common),
               harness.Server("memlaned", threads=1, **common),
               harness.Server("memlaned", threads=2, **common)]
    t0 = time.time()
    problems = []
    try:
        played = play_all(servers, records, udp, name, problems)
    except harness.TestFailure as e:
        # Raised when a server does not stop cleanly: after the replies
        # were compared, so report both.
        problems.append("%s: %s" % (name, e))
        played = None
    nsteps = len(played[0].steps) if played else 0
    return (name, nsteps, time.time() - t0, problems)


def play_all(servers, records, udp, name, problems,
             max_request=UDP_MAX_REQUEST):
    with harness.Servers(*servers):
        with concurrent.futures.ThreadPoolExecutor(len(servers)) as ex:
            if udp:
                eligible = udp_eligible(records, max_request)
                futs = [ex.submit(play_udp, s, records, eligible)
                        for s in servers]
            else:
                futs = [ex.submit(play_tcp, s, records) for s in servers]
            played = [f.result() for f in futs]
        for act in played[1:]:
            problems += compare(name, played[0], act)
        for s in servers:
            if not s.alive():
                problems.append("%s: %s is no longer running: %s"
                                % (name, s.name(), s.log()[-2000:]))
    return played


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("tcp", "udp"):
        print(__doc__)
        return 2
    mode = sys.argv[1]
    names = sys.argv[2:] or sorted(
        os.path.splitext(f)[0] for f in os.listdir(SESSIONS_DIR)
        if f.endswith(".txt"))
    # The sessions with sleeps first, so that they overlap the rest.
    slow = {"expiry"}
    names.sort(key=lambda n: (n not in slow, n))
    jobs = int(os.environ.get("ML_JOBS", "3"))
    failed = 0
    with concurrent.futures.ThreadPoolExecutor(jobs) as ex:
        futs = {ex.submit(run_session, mode, n): n for n in names}
        for f in concurrent.futures.as_completed(futs):
            n = futs[f]
            try:
                name, nsteps, secs, problems = f.result()
            except harness.TestFailure as e:
                failed += 1
                print("FAIL %s: %s" % (n, e), flush=True)
                continue
            if problems:
                failed += 1
                print("FAIL %s (%d steps, %.1fs): %d differences"
                      % (name, nsteps, secs, len(problems)))
                for p in problems:
                    print("  - " + p)
                sys.stdout.flush()
            else:
                print("ok   %s (%s, %d steps, %.1fs)"
                      % (name, mode, nsteps, secs), flush=True)
    if failed:
        print("%d of %d sessions differ" % (failed, len(names)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

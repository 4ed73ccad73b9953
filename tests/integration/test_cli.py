# SPDX-License-Identifier: BSD-3-Clause
"""memlaned's command line and life cycle: memcached's flags where they
overlap, a one-line error and memcached's exit code for a bad flag or value,
--help and --version, a start in well under a second, and a clean stop
(exit 0, every reply owed sent) on SIGTERM and on SIGINT, and a second
memlaned on a port in use refused.
"""

import os
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True

import harness  # noqa: E402
from harness import check, show  # noqa: E402

EX_OSERR = os.EX_OSERR  # what memcached exits with when it cannot listen


def run(args):
    p = subprocess.run([harness.memlaned_path()] + harness.root_args()
                       + args,
                       stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=20)
    return p.returncode, p.stdout.decode(errors="replace"), \
        p.stderr.decode(errors="replace")


def bad_flags_exit_codes():
    """A bad flag or value: one line on stderr and memcached's exit code
    for the mistake (EX_USAGE for a bad value, 1 for an unknown flag and
    the counts memcached checks itself)."""
    usage, one = 64, 1
    cases = [
        (["-p", "70000"], usage), (["-p", "x"], usage),
        (["-U", "-1"], usage), (["-m", "0"], usage),
        (["-m", "lots"], usage), (["-t", "0"], one), (["-t", "1000"], one),
        (["-c", "0"], one), (["-I", "10"], usage), (["-I", "2g"], usage),
        (["-I", "40m", "-m", "64"], usage),
        (["-l", "not-an-address"], usage),
        (["--idle-timeout", "soon"], usage), (["--no-such-flag"], one),
        (["-Z"], usage), (["-p"], one), (["extra-argument"], one),
        (["-p", "0", "-U", "0"], usage), (["-S"], usage),
        (["-e", "/tmp/memfile"], usage), (["-B", "sometimes"], usage),
        (["-o", "no_such_option"], one), (["-o", "idle_timeout=x"], usage),
        (["-a", "9"], usage), (["-D", ""], usage),
    ]
    for args, code in cases:
        rc, out, err = run(args)
        lines = [l for l in err.splitlines() if l.strip()]
        check(rc == code, "%s: exit code %d, want %d (stderr %s)"
              % (args, rc, code, show(err)))
        check(len(lines) == 1 and lines[0].startswith("memlaned: "),
              "%s: want one line on stderr, got %s" % (args, show(err)))
        check(out == "", "%s: nothing on stdout, got %s" % (args, show(out)))


def help_and_version():
    rc, out, err = run(["--help"])
    check(rc == 0 and "usage: memlaned" in out,
          "--help: rc %d, %s" % (rc, show(out)))
    for flag in ("-p", "-U", "-l", "-m", "-t", "-c", "-I", "-M", "-v"):
        check(flag in out, "--help does not mention %s" % flag)
    rc, out, err = run(["--version"])
    check(rc == 0 and out.startswith("memlaned "),
          "--version: rc %d, %s" % (rc, show(out)))


def starts_fast_and_stops_clean():
    for sig in (signal.SIGTERM, signal.SIGINT):
        srv = harness.Server(threads=2)
        t0 = time.monotonic()
        srv.start()
        took = time.monotonic() - t0
        check(took < 1.0, "memlaned took %.2f s to accept a connection"
              % took)
        with harness.Conn(srv.port) as c:
            # a pipeline across both cores, then the signal: every reply
            # already owed still arrives
            req = b"".join(b"set s%d 0 0 2\r\nv%d\r\n" % (i, i % 10)
                           for i in range(200))
            req += b"".join(b"get s%d\r\n" % i for i in range(200))
            c.send(req)
            want = b"STORED\r\n" * 200 + b"".join(
                b"VALUE s%d 0 2\r\nv%d\r\nEND\r\n" % (i, i % 10)
                for i in range(200))
            got = c.read_exact(len(want))
            check(got == want, "pipeline before %s: %s"
                  % (sig.name, harness.diff_text(want, got)))
        os.kill(srv.pid, sig)
        try:
            srv.proc.wait(5)
        except subprocess.TimeoutExpired:
            srv.kill()
            harness.fail("memlaned did not stop within 5 s of %s" % sig.name)
        rc = srv.proc.returncode
        log = srv.log()
        srv.kill()
        check(rc == 0, "exit code %d after %s; output %s"
              % (rc, sig.name, show(log)))


def second_instance_refused():
    """A second memlaned on a port a first one holds exits with one line
    saying so and memcached's exit status for it (EX_OSERR, 71), instead
    of quietly sharing the port's connections or datagrams through
    SO_REUSEPORT; the first one goes on serving."""
    with harness.Servers(harness.Server(threads=2, udp=True)) as (srv,):
        for what, args in (
                ("tcp", ["-p", str(srv.port), "-U", "0"]),
                ("udp", ["-p", str(harness.free_port()),
                         "-U", str(srv.udp_port)])):
            rc, out, err = run(args + ["-l", harness.HOST, "-t", "1"])
            lines = [l for l in err.splitlines() if l.strip()]
            check(rc == EX_OSERR, "%s: a second memlaned on port %s "
                  "exited with %d, want %d" % (what, args, rc, EX_OSERR))
            check(len(lines) == 1 and "Address already in use" in lines[0]
                  and ("(%s)" % what in lines[0] or
                       harness.target_is_memcached()),
                  "%s: want one line naming the port in use, got %s"
                  % (what, show(err)))
        with harness.Conn(srv.port) as c:
            check(c.cmd(b"version\r\n").startswith(b"VERSION "),
                  "the first memlaned stopped serving")


def address_not_here_refused():
    """An address this host does not have cannot be listened on: exit
    status EX_OSERR, as memcached, and a line naming the address."""
    addr = "198.18.0.77"
    rc, out, err = run(["-l", addr, "-p", str(harness.free_port()),
                        "-U", "0", "-t", "1"])
    check(rc == EX_OSERR, "listening on %s exited with %d, want %d"
          % (addr, rc, EX_OSERR))
    check(addr in err, "want the address named, got %s" % show(err))


def requests_run_on_owner_core():
    """Keys set over one connection (which one core accepted) land in
    both cores' shards, and every connection, whichever core holds it,
    finds every key: each request runs on the core that owns its key."""
    with harness.Servers(harness.Server(threads=2)) as (srv,):
        with harness.Conn(srv.port) as c:
            c.send(b"".join(b"set own%d 0 0 1\r\nx\r\n" % i
                            for i in range(400)))
            got = c.read_exact(len(b"STORED\r\n") * 400)
            check(got == b"STORED\r\n" * 400, "sets: %s" % show(got))
            c.send(b"stats cores\r\n")
            st = c.read_until(b"END\r\n").decode()
        items = {}
        for line in st.split("\r\n"):
            parts = line.split()
            if len(parts) == 3 and parts[1].endswith(":curr_items"):
                items[parts[1]] = int(parts[2])
        check(len(items) == 2 and sum(items.values()) == 400 and
              min(items.values()) > 100,
              "items per core after 400 sets on one connection: %r"
              % items)
        for n in range(6):
            with harness.Conn(srv.port) as c:
                c.send(b"get " + b" ".join(b"own%d" % i for i in
                                           range(n, 400, 6)) + b"\r\n")
                got = c.read_until(b"END\r\n")
                want = len(range(n, 400, 6))
                check(got.count(b"VALUE ") == want,
                      "connection %d found %d of %d keys"
                      % (n, got.count(b"VALUE "), want))


def stats_sees_pipelined_requests():
    """stats in a pipeline counts every request before it, the ones that
    ran on the other core included, as memcached's would: sets, gets and
    deletes of keys owned by both cores, then stats, stats items and
    stats slabs in the same write (three times, a fresh server each)."""
    n = 300
    gets, deletes = range(0, n, 3), range(0, n, 5)
    want = {("general", "cmd_set"): n,
            ("general", "get_hits"): len(gets),
            ("general", "delete_hits"): len(deletes),
            ("general", "curr_items"): n - len(deletes),
            ("items", "items:1:number"): n - len(deletes),
            ("slabs", "1:cmd_set"): n}
    for rnd in range(3):
        with harness.Servers(harness.Server(threads=2)) as (srv,), \
                harness.Conn(srv.port) as c:
            c.send(b"".join(b"set sp%d 0 0 1\r\nx\r\n" % i
                            for i in range(n)) +
                   b"".join(b"get sp%d\r\n" % i for i in gets) +
                   b"".join(b"delete sp%d\r\n" % i for i in deletes) +
                   b"stats\r\nstats items\r\nstats slabs\r\n")
            for _ in range(n):
                check(c.readline() == b"STORED\r\n", "a set not stored")
            for _ in gets:
                c.read_until(b"END\r\n")
            for _ in deletes:
                check(c.readline() == b"DELETED\r\n",
                      "a delete found nothing")
            st = {}
            for part in ("general", "items", "slabs"):
                for line in c.read_until(b"END\r\n").split(b"\r\n"):
                    f = line.split()
                    if len(f) == 3 and f[0] == b"STAT":
                        st[(part, f[1].decode())] = f[2]
            got = {k: int(st[k]) if k in st else None for k in want}
            check(got == want, "round %d: stats after a pipeline: got %r, "
                  "want %r" % (rnd, got, want))


if __name__ == "__main__":
    harness.run_checks([bad_flags_exit_codes, help_and_version,
                        starts_fast_and_stops_clean,
                        second_instance_refused,
                        address_not_here_refused,
                        requests_run_on_owner_core,
                        stats_sees_pipelined_requests])

# SPDX-License-Identifier: BSD-3-Clause
"""memlaned as a drop-in for memcached: every flag of `memcached -h`, a
family of them per check, each shown to act, and beside the real
memcached where their answers can be compared.

  every_memcached_flag      each flag of memcached -h is in --help, and
                            memlaned runs with it or refuses where
                            memcached does (the refusals memlane adds
                            are listed, each with its reason)
  exit_codes                root without -u, an unknown user, a bad
                            flag: memcached's exit code and message
  privileges_and_pidfile    -u takes the user's identity for good, -P
  daemon_and_signals        -d, -P, SIGHUP ignored, SIGUSR1 stops and
                            takes the pid file away
  core_and_locked_memory    -r raises the core limit, -k locks memory
  config_file               --config: comments, logfile, the command
                            line overriding the file
  stock_memcached_conf      Debian's /etc/memcached.conf, unchanged, in
                            mount and network namespaces of the test's
  unix_socket               -s and -a; --keep-network with TCP beside it
  connection_limits         -c with and without maxconns_fast, and
                            -o idle_timeout, read_buf_mem_limit
  cas_disabled              -C, reply for reply against memcached -C
  protocol_switches         -F, -X, -W, -B, -A against memcached
  auth_file                 -Y against memcached -Y; wrong passwords
  admin_commands            slabs, lru, lru_crawler, cache_memlimit
                            against memcached; cache_memlimit acts
  warnings                  slab tuning accepted with one warning line
  stats_detail              -D and stats detail on|off|dump: the same
                            per-prefix counts as memcached
  watch                     watch fetchers, mutations, evictions: lines
                            with memcached's fields, in order, for the
                            same workload; -W refuses it
  tls                       -Z: the right CA works (pymemcache, Python's
                            ssl), no TLS, a wrong CA, a missing client
                            certificate and a truncated handshake are
                            refused while others are served, a notls:
                            listener beside; against memcached -Z
"""

import os
import pwd
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True

import harness  # noqa: E402
from harness import check, show  # noqa: E402

HOST = "127.0.0.1"
EX_USAGE, EX_NOUSER = 64, 67


def is_root():
    return os.geteuid() == 0


def spawn(binary, args, with_user=True):
    """The binary with args (and -u root when root), its output in a
    file; stopped by PID at exit."""
    argv = [binary] + (harness.root_args() if with_user else []) + args
    log = tempfile.TemporaryFile()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                         stderr=subprocess.STDOUT)
    p.log = log
    p.argv = argv
    _procs.append(p)
    return p


_procs = []


def log_of(p):
    p.log.seek(0)
    return p.log.read().decode(errors="replace")


def stop(p, sig=signal.SIGTERM, timeout=10):
    if p.poll() is None:
        os.kill(p.pid, sig)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
            harness.fail("%s did not stop on %s" % (p.argv, sig))
    return p.returncode


def stop_all():
    for p in _procs:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()


def wait_tcp(port, proc=None, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            socket.create_connection((HOST, port), 0.5).close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


def wait_unix(path, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            s.close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


def node(args, threads=2):
    """A memlaned on a port of its own, serving: (process, port)."""
    port = harness.free_port()
    p = spawn(harness.memlaned_path(), ["-l", HOST, "-p", str(port), "-t",
                                        str(threads)] + args)
    check(wait_tcp(port, p), "memlaned %s did not start: %s"
          % (" ".join(args), show(log_of(p))))
    return p, port


def two_served(port):
    """Two connections, each answered."""
    a, b = harness.Conn(port), harness.Conn(port)
    check(a.cmd(b"version\r\n").startswith(b"VERSION") and
          b.cmd(b"version\r\n").startswith(b"VERSION"), "two served")
    return a, b


def run_once(binary, args, timeout=20, with_user=True):
    p = subprocess.run([binary] + (harness.root_args() if with_user
                                   else []) + args,
                       stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), \
        p.stderr.decode(errors="replace")


def exchange(port, requests, settle=0.3):
    """Each request in turn on one connection, with what came back
    within settle seconds of it; '<closed>' when the server hung up."""
    s = socket.create_connection((HOST, port), 5)
    out = []
    try:
        for r in requests:
            s.sendall(r)
            got = b""
            end = time.time() + settle
            closed = False
            while time.time() < end:
                rd, _, _ = select.select([s], [], [], end - time.time())
                if not rd:
                    break
                try:
                    d = s.recv(65536)
                except ConnectionResetError:
                    d = b""
                if not d:
                    closed = True
                    break
                got += d
            out.append(got + (b"<closed>" if closed else b""))
            if closed:
                break
    finally:
        s.close()
    return out


def pair(flags, threads=2):
    """memlaned and memcached side by side with the same flags."""
    ports = [harness.free_port(), harness.free_port()]
    ml = spawn(harness.memlaned_path(), ["-l", HOST, "-p", str(ports[0]),
                                         "-U", "0", "-t", str(threads)]
               + flags)
    mc = spawn(harness.memcached_path(), ["-l", HOST, "-p", str(ports[1]),
                                          "-U", "0", "-t", str(threads)]
               + flags)
    check(wait_tcp(ports[0], ml), "memlaned %s did not start: %s"
          % (flags, show(log_of(ml))))
    check(wait_tcp(ports[1], mc), "memcached %s did not start: %s"
          % (flags, show(log_of(mc))))
    return ml, mc, ports


def versionless(b):
    return b.replace(b"1.6.18-memlane-", b"1.6.18").split(b"\r\n")[0] \
        if b.startswith(b"VERSION ") else b


def differential(flags, requests, threads=2):
    ml, mc, ports = pair(flags, threads)
    try:
        a = exchange(ports[0], requests)
        b = exchange(ports[1], requests)
    finally:
        stop(ml)
        stop(mc)
    for req, x, y in zip(requests, a, b):
        if req.startswith(b"version"):
            x, y = b"VERSION", b"VERSION"
        check(x == y, "%s: %r\n  memlaned  %r\n  memcached %r"
              % (" ".join(flags), req, x, y))
    check(len(a) == len(b), "%s: memlaned answered %d requests, "
          "memcached %d" % (flags, len(a), len(b)))


def settings(port, path=None):
    if path:
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
    else:
        s = socket.create_connection((HOST, port), 5)
    s.settimeout(5)
    s.sendall(b"stats settings\r\n")
    buf = b""
    while not buf.endswith(b"END\r\n"):
        d = s.recv(65536)
        if not d:
            break
        buf += d
    s.close()
    out = {}
    for line in buf.split(b"\r\n"):
        f = line.split(b" ", 2)
        if len(f) == 3 and f[0] == b"STAT":
            out[f[1].decode()] = f[2].decode()
    return out


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


# ---------------------------------------------------------------------------
# Every flag
# ---------------------------------------------------------------------------

# What each flag of memcached -h is started with here, and how memlaned
# may differ from memcached in running with it (None: it must not).
FLAG_ARGS = {
    "-p": None, "-U": None, "-l": None, "-u": None,  # always given
    "-s": ["-s", "{dir}/flag.sock"], "-a": ["-a", "700"],
    "-A": ["-A"], "-d": None,  # daemon_and_signals
    "-r": ["-r"], "-m": ["-m", "64"], "-M": ["-M"], "-c": ["-c", "100"],
    "-k": ["-k"], "-v": ["-v"], "-vv": ["-vv"], "-vvv": ["-vvv"],
    "-h": ["-h"], "-i": ["-i"], "-V": ["-V"],
    "-P": ["-P", "{dir}/flag.pid"], "-f": ["-f", "1.5"],
    "-n": ["-n", "64"], "-L": ["-L"], "-D": ["-D", ":"],
    "-t": ["-t", "2"], "-R": ["-R", "10"], "-C": ["-C"],
    "-b": ["-b", "512"], "-B": ["-B", "ascii"], "-I": ["-I", "2m"],
    "-S": ["-S"], "-F": ["-F"], "-X": ["-X"], "-W": ["-W"],
    "-Y": ["-Y", "{dir}/auth"], "-e": ["-e", "{dir}/memfile"],
    "-Z": ["-Z"], "-o": ["-o", "idle_timeout=30"], "-N": ["-N", "2"],
}
# Where memlaned refuses what memcached takes, and why.
MEMLANE_REFUSES = {
    "-e": "items are kept in RAM only: no restartable memory file",
}


def memcached_flags():
    out = subprocess.run([harness.memcached_path(), "-h"],
                         capture_output=True, text=True).stdout
    flags = []
    for line in out.splitlines():
        w = line.split()
        if w and w[0].startswith("-") and len(w[0]) >= 2 and \
                w[0][1] != "-":
            flags.append(w[0].rstrip(","))
    return flags


def started(binary, flag, args, tmp):
    """'runs', 'refuses' or 'prints' (a flag that prints and exits 0)."""
    port = harness.free_port()
    argv = [a.replace("{dir}", tmp) for a in args]
    base = ["-l", HOST, "-p", str(port), "-U", "0"]
    if flag in ("-h", "-i", "-V"):
        rc, out, err = run_once(binary, argv)
        return "prints" if rc == 0 and out else "refuses"
    p = spawn(binary, base + argv)
    if flag in ("-s", "-a"):
        ok = "-s" not in argv or wait_unix(argv[argv.index("-s") + 1])
        time.sleep(0.3)
        ok = ok and p.poll() is None
    else:
        ok = wait_tcp(port, p, timeout=5)
    state = "runs" if ok and p.poll() is None else "refuses"
    if p.poll() is None:
        stop(p)
    return state


def every_memcached_flag():
    if not os.path.exists(harness.memcached_path()):
        return harness.SKIP
    flags = memcached_flags()
    check(len(flags) > 30, "memcached -h listed %d flags" % len(flags))
    rc, helptext, _ = run_once(harness.memlaned_path(), ["--help"])
    tmp = tempfile.mkdtemp()
    try:
        with open(os.path.join(tmp, "auth"), "w") as f:
            f.write("user:pass\n")
        os.chmod(tmp, 0o755)
        os.chmod(os.path.join(tmp, "auth"), 0o644)
        for flag in flags:
            letter = flag[:2]
            check(letter + "," in helptext or letter + " " in helptext,
                  "memlaned --help does not list %s" % letter)
            check(flag in FLAG_ARGS, "%s of memcached -h has no case "
                  "here" % flag)
            args = FLAG_ARGS[flag]
            if args is None:
                continue
            mine = started(harness.memlaned_path(), flag, args, tmp)
            theirs = started(harness.memcached_path(), flag, args, tmp)
            if flag in MEMLANE_REFUSES:
                check(mine == "refuses", "%s: memlaned %s, want it "
                      "refused (%s)" % (flag, mine, MEMLANE_REFUSES[flag]))
                continue
            check(mine == theirs, "%s: memlaned %s, memcached %s"
                  % (" ".join(args), mine, theirs))
            print("   %-4s %s" % (flag, mine))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def exit_codes():
    cases = [
        # (args, code), memcached's for both
        (["-t", "0"], 1), (["-c", "0"], 1), (["-R", "0"], 1),
        (["-I", "10"], EX_USAGE), (["-m", "64", "-I", "40m"], EX_USAGE),
        (["-B", "foo"], EX_USAGE), (["-o", "bogus"], 1),
        (["-x"], 1), (["-p", "70000"], EX_USAGE), (["-f", "0.5"], 1),
        (["-Y", "/nonexistent/auth"], 1),
    ]
    for args, code in cases:
        for binary in (harness.memlaned_path(), harness.memcached_path()):
            rc, out, err = run_once(binary, ["-l", HOST, "-p", "0"] + args)
            check(rc == code, "%s %s: exit %d, want %d (%s)"
                  % (os.path.basename(binary), args, rc, code, show(err)))
        rc, out, err = run_once(harness.memlaned_path(),
                                ["-l", HOST, "-p", "0"] + args)
        lines = [x for x in err.splitlines() if x.strip()]
        check(len(lines) == 1 and lines[0].startswith("memlaned: "),
              "%s: want one line on stderr, got %s" % (args, show(err)))
    if not is_root():
        return
    for binary in (harness.memlaned_path(), harness.memcached_path()):
        port = str(harness.free_port())
        rc, out, err = run_once(binary, ["-l", HOST, "-p", port],
                                with_user=False)
        check(rc == EX_USAGE and
              "can't run as root without the -u switch" in err,
              "%s as root without -u: exit %d, %s"
              % (os.path.basename(binary), rc, show(err)))
        rc, out, err = run_once(binary, ["-l", HOST, "-p", port, "-u",
                                         "no-such-user-here"],
                                with_user=False)
        check(rc == EX_NOUSER and "can't find the user" in err,
              "%s -u no-such-user: exit %d, %s"
              % (os.path.basename(binary), rc, show(err)))


# ---------------------------------------------------------------------------
# The process
# ---------------------------------------------------------------------------

def privileges_and_pidfile():
    if not is_root():
        return harness.SKIP
    nobody = pwd.getpwnam("nobody")
    tmp = tempfile.mkdtemp()
    pidfile = os.path.join(tmp, "ml.pid")
    port = harness.free_port()
    try:
        p = spawn(harness.memlaned_path(),
                  ["-u", "nobody", "-l", HOST, "-p", str(port), "-t", "2",
                   "-P", pidfile], with_user=False)
        check(wait_tcp(port, p), "memlaned -u nobody did not start: %s"
              % show(log_of(p)))
        # an answer comes from the cores, started once the identity is
        # taken
        with harness.Conn(port) as c:
            check(c.cmd(b"version\r\n").startswith(b"VERSION"), "version")
        st = proc_status(p.pid)
        uids = st["Uid"].split()
        gids = st["Gid"].split()
        check(uids == [str(nobody.pw_uid)] * 4, "Uid %s, want nobody's "
              "(%d) in all four" % (uids, nobody.pw_uid))
        check(gids == [str(nobody.pw_gid)] * 4, "Gid %s, want %d"
              % (gids, nobody.pw_gid))
        check(st.get("Groups", "") == "", "supplementary groups kept: %r"
              % st.get("Groups"))
        with open(pidfile) as f:
            check(f.read().strip() == str(p.pid), "the pid file does not "
                  "hold the pid")
        check(os.stat(pidfile).st_uid == nobody.pw_uid,
              "the pid file is not nobody's")
        with harness.Conn(port) as c:
            check(c.cmd(b"set k 0 0 1\r\nv\r\n") == b"STORED\r\n",
                  "a set after dropping privileges")
        check(stop(p) == 0, "exit code after SIGTERM: %s"
              % show(log_of(p)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def daemon_and_signals():
    tmp = tempfile.mkdtemp()
    os.chmod(tmp, 0o777)
    pidfile = os.path.join(tmp, "ml.pid")
    port = harness.free_port()
    pid = None
    try:
        rc, out, err = run_once(harness.memlaned_path(),
                                ["-d", "-P", pidfile, "-l", HOST, "-p",
                                 str(port), "-t", "2"], timeout=10)
        check(rc == 0, "memlaned -d: exit %d (%s)" % (rc, show(err)))
        check(wait_tcp(port), "the daemon does not serve")
        # the listeners open before the pid file is written (then the
        # identity is taken and the cores start)
        deadline = time.time() + 10
        text = ""
        while not text.endswith("\n") and time.time() < deadline:
            try:
                with open(pidfile) as f:
                    text = f.read()
            except FileNotFoundError:
                pass
            time.sleep(0.02)
        check(text.endswith("\n"), "no pid file from the daemon")
        pid = int(text.strip())
        check(os.getsid(pid) == pid, "the daemon leads no session of its "
              "own")
        with open("/proc/%d/stat" % pid) as f:
            ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        check(ppid != os.getpid(), "the daemon is still our child")
        os.kill(pid, signal.SIGHUP)
        time.sleep(0.5)
        with harness.Conn(port) as c:
            check(c.cmd(b"version\r\n").startswith(b"VERSION "),
                  "the daemon stopped serving after SIGHUP")
        os.kill(pid, signal.SIGUSR1)
        deadline = time.time() + 10
        while time.time() < deadline and os.path.exists("/proc/%d" % pid):
            with open("/proc/%d/stat" % pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            time.sleep(0.05)
        check(not wait_tcp(port, timeout=0.5), "still serving after "
              "SIGUSR1")
        check(not os.path.exists(pidfile), "the pid file is left after "
              "a graceful stop")
        pid = None
    finally:
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(tmp, ignore_errors=True)


def core_and_locked_memory():
    port = harness.free_port()
    p = spawn(harness.memlaned_path(), ["-l", HOST, "-p", str(port),
                                        "-t", "1", "-r", "-k", "-m", "16"])
    check(wait_tcp(port, p), "memlaned -r -k did not start: %s"
          % show(log_of(p)))
    with open("/proc/%d/limits" % p.pid) as f:
        core = [x for x in f if x.startswith("Max core file size")][0]
    soft, hard = core.split()[4:6]
    check(soft == hard, "-r: the core limit %s is not raised to the hard "
          "%s" % (soft, hard))
    if is_root():
        check(soft == "unlimited", "-r as root: core limit %s" % soft)
        lck = int(proc_status(p.pid)["VmLck"].split()[0])
        # AddressSanitizer makes mlockall a no-op; without it, the
        # memory is locked or memlaned warns, as memcached does
        with open("/proc/%d/maps" % p.pid) as f:
            asan = "libasan" in f.read()
        check(lck > 1024 or asan or "-k: mlockall() failed" in log_of(p),
              "-k: %d kB locked, and no warning: %s" % (lck, show(log_of(p))))
    check(stop(p) == 0, "-r -k: exit code")
    # -L: item memory on transparent huge pages, where the kernel gives
    # them on request (THP in madvise or always mode)
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            thp = f.read()
    except OSError:
        thp = "[never]"
    if "[never]" in thp:
        print("   -L: THP is off here; not checked")
        return
    huge = {}
    for flags in ([], ["-L"]):
        p, port = node(["-m", "256"] + flags, threads=1)
        with harness.Conn(port) as c:
            v = b"x" * 50000
            for i in range(2000):
                c.send(b"set k%d 0 0 %d noreply\r\n%s\r\n" % (i, len(v), v))
            check(c.cmd(b"mn\r\n") == b"MN\r\n", "the sets")
        with open("/proc/%d/smaps" % p.pid) as f:
            huge[bool(flags)] = sum(int(x.split()[1]) for x in f
                                    if x.startswith("AnonHugePages:"))
        stop(p)
    print("   AnonHugePages: %d kB without -L, %d kB with" % (huge[False],
                                                          huge[True]))
    # with THP always, memory is huge with or without asking
    check(huge[True] >= 32 * 1024 and
          (huge[True] > huge[False] or "[always]" in thp),
          "-L: %d kB of huge pages, %d kB without" % (huge[True],
                                                     huge[False]))


# ---------------------------------------------------------------------------
# Configuration files
# ---------------------------------------------------------------------------

def config_file():
    tmp = tempfile.mkdtemp()
    port = harness.free_port()
    conf = os.path.join(tmp, "memlaned.conf")
    logfile = os.path.join(tmp, "memlaned.log")
    with open(conf, "w") as f:
        f.write("# memlaned, as memcached's config file has it\n"
                "\n-m 32\n  -p %d   # the port\n-c 77\n-v\n-l %s\n"
                "logfile %s\n-o idle_timeout=40,maxconns_fast\n"
                % (port, HOST, logfile))
    try:
        p = spawn(harness.memlaned_path(), ["--config", conf, "-c", "99",
                                            "-t", "2"])
        check(wait_tcp(port, p), "--config: did not start: %s"
              % show(log_of(p)))
        st = settings(port)
        check(st["maxbytes"] == str(32 << 20), "maxbytes %s" % st["maxbytes"])
        check(st["maxconns"] == "99", "the command line's -c 99 does not "
              "override the file's -c 77: %s" % st["maxconns"])
        check(st["idle_timeout"] == "40", "idle_timeout %s"
              % st["idle_timeout"])
        stop(p)
        with open(logfile) as f:
            text = f.read()
        check("memlaned: 2 cores" in text, "the log file got %s" % show(text))
        check(log_of(p) == "", "output went elsewhere than the log file: %s"
              % show(log_of(p)))
        with open(conf, "a") as f:
            f.write("maxmemory 5\n")
        rc, out, err = run_once(harness.memlaned_path(), ["--config", conf])
        check(rc == EX_USAGE and "maxmemory" in err and
              len(err.strip().splitlines()) == 1,
              "an unknown directive: exit %d, %s" % (rc, show(err)))
        rc, out, err = run_once(harness.memlaned_path(),
                                ["--config", os.path.join(tmp, "none")])
        check(rc != 0 and "none" in err, "a missing file: exit %d, %s"
              % (rc, show(err)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


STOCK_SCRIPT = r"""
set -e
ip link set lo up
mount -t tmpfs tmpfs /run
mkdir -p /run/memcached
chown memcache /run/memcached
mount -t tmpfs tmpfs /var/log
"$MEMLANED" --config /etc/memcached.conf
for i in $(seq 100); do
    /usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1', 11211), 1)" 2>/dev/null && break
    sleep 0.1
done
/usr/bin/python3 - <<'EOF'
from pymemcache.client.base import Client
c = Client(("127.0.0.1", 11211))
c.set("stock", "conf")
st = c.stats("settings")
print("GOT", c.get("stock").decode(), st[b"maxbytes"], st[b"tcpport"])
EOF
pid=$(cat /var/run/memcached/memcached.pid)
echo "USER $(ps -o user= -p $pid)"
echo "LOG $(wc -c < /var/log/memcached.log)"
kill -USR1 $pid
for i in $(seq 100); do [ -e /proc/$pid ] || break; sleep 0.1; done
[ -e /proc/$pid ] && echo STILL || echo STOPPED
"""


def stock_memcached_conf():
    """The memcached package's /etc/memcached.conf, unchanged, starts
    memlaned: -d, logfile, -m 64, -p 11211, -u memcache, -l 127.0.0.1,
    -P /var/run/memcached/memcached.pid. It runs in a mount and network
    namespace of its own (fresh /run and /var/log, its own loopback), so
    nothing on this host is touched or listened over."""
    conf = "/etc/memcached.conf"
    if not is_root() or not os.path.exists(conf) or \
            not shutil.which("unshare"):
        return harness.SKIP
    try:
        pwd.getpwnam("memcache")
    except KeyError:
        return harness.SKIP
    env = dict(os.environ, MEMLANED=harness.memlaned_path())
    p = subprocess.run(["unshare", "--mount", "--net", "--fork",
                        "--propagation", "private", "sh", "-c",
                        STOCK_SCRIPT], capture_output=True, text=True,
                       env=env, timeout=60)
    out = p.stdout
    check(p.returncode == 0 and "GOT conf 67108864 11211" in out,
          "the stock config: rc %d, %s %s" % (p.returncode, show(out),
                                               show(p.stderr)))
    check("USER memcache" in out, "not running as memcache: %s" % show(out))
    check("STOPPED" in out, "SIGUSR1 did not stop it: %s" % show(out))


# ---------------------------------------------------------------------------
# Sockets and limits
# ---------------------------------------------------------------------------

def unix_socket():
    from pymemcache.client.base import Client
    tmp = tempfile.mkdtemp()
    os.chmod(tmp, 0o755)
    path = os.path.join(tmp, "ml.sock")
    port = harness.free_port()
    try:
        p = spawn(harness.memlaned_path(), ["-s", path, "-a", "600",
                                            "-p", str(port), "-l", HOST,
                                            "-t", "2"])
        check(wait_unix(path), "-s: no socket at %s: %s"
              % (path, show(log_of(p))))
        mode = os.stat(path).st_mode
        check(stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600,
              "-a 600: the socket's mode is %o" % stat.S_IMODE(mode))
        check(not wait_tcp(port, timeout=0.5),
              "-s leaves TCP on, memcached turns the network off")
        c = Client(path)
        c.set("u", "over unix")
        check(c.get("u") == b"over unix", "a unix client's own set")
        st = settings(0, path)
        check(st["domain_socket"] == path and st["umask"] == "600",
              "stats settings: %s %s" % (st["domain_socket"], st["umask"]))
        c.close()
        stop(p)
        check(not os.path.exists(path), "the socket is left behind")
        # with the network kept, a TCP client's set is read over unix
        p = spawn(harness.memlaned_path(), ["-s", path, "--keep-network",
                                            "-p", str(port), "-l", HOST,
                                            "-t", "2"])
        check(wait_unix(path) and wait_tcp(port, p),
              "--keep-network: %s" % show(log_of(p)))
        tcp = Client((HOST, port))
        for i in range(50):
            check(tcp.set("k%d" % i, "tcp%d" % i, noreply=False),
                  "a TCP set")
        unix = Client(path)
        got = unix.get_many(["k%d" % i for i in range(50)])
        check(got == {"k%d" % i: b"tcp%d" % i for i in range(50)},
              "the unix client read %d of 50 keys" % len(got))
        tcp.close()
        unix.close()
        check(stop(p) == 0, "exit code")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def connection_limits():
    # -c 2, maxconns_fast (memcached's default): a third is refused
    p, port = node(["-c", "2"])
    time.sleep(0.3)  # the probe's connection is gone
    a, b = two_served(port)
    third = harness.Conn(port)
    check(third.readline() == b"ERROR Too many open connections\r\n",
          "the third connection was not refused as memcached refuses it")
    check(third.wait_closed(2), "the refused connection stays open")
    for c in (a, b, third):
        c.close()
    stop(p)
    # no_maxconns_fast: the third waits until one of the two closes
    p, port = node(["-c", "2", "-o", "no_maxconns_fast"], threads=1)
    time.sleep(0.3)
    a, b = two_served(port)
    third = socket.create_connection((HOST, port), 5)
    third.sendall(b"version\r\n")
    r, _, _ = select.select([third], [], [], 1.0)
    check(not r, "the third was answered beyond -c 2")
    a.close()
    r, _, _ = select.select([third], [], [], 5.0)
    check(r and third.recv(100).startswith(b"VERSION"),
          "the third was not served once a slot was free")
    third.close()
    b.close()
    stop(p)
    # -o idle_timeout: an idle connection is closed, a busy one is not
    p, port = node(["-o", "idle_timeout=2"])
    idle, busy = harness.Conn(port), harness.Conn(port)
    idle.cmd(b"version\r\n")
    t0 = time.time()
    while time.time() - t0 < 4.5:
        check(busy.cmd(b"version\r\n").startswith(b"VERSION"),
              "the busy connection was closed")
        time.sleep(0.5)
    check(idle.wait_closed(2), "the idle connection outlived "
          "idle_timeout=2")
    idle.close()
    busy.close()
    stop(p)
    # -o read_buf_mem_limit: a request that needs more buffer than the
    # limit is refused with memcached's words, and the node serves on
    p, port = node(["-I", "4m", "-o", "read_buf_mem_limit=1"], threads=1)
    big = harness.Conn(port)
    big.send(b"set big 0 0 %d\r\n" % (3 << 20))
    try:
        big.send(b"x" * (3 << 20) + b"\r\n")
    except OSError:
        pass
    check(big.readline() == b"SERVER_ERROR out of memory reading "
          b"request\r\n", "past read_buf_mem_limit")
    big.close()
    with harness.Conn(port) as c:
        check(c.cmd(b"set small 0 0 1\r\nx\r\n") == b"STORED\r\n",
              "a small set after the refusal")
    check(stop(p) == 0, "exit code")


# ---------------------------------------------------------------------------
# Protocol switches, against memcached
# ---------------------------------------------------------------------------

def cas_disabled():
    differential(["-C"], [
        b"set a 0 0 1\r\nx\r\n", b"gets a\r\n", b"cas a 0 0 1 0\r\ny\r\n",
        b"cas a 0 0 1 5\r\ny\r\n", b"cas zz 0 0 1 5\r\ny\r\n",
        b"mg a c v\r\n", b"ms a 1 C0\r\nz\r\n", b"md a C1\r\n",
        b"get a\r\n"])
    port = harness.free_port()
    p = spawn(harness.memlaned_path(), ["-l", HOST, "-p", str(port), "-C"])
    check(wait_tcp(port, p), "-C")
    check(settings(port)["cas_enabled"] == "no", "cas_enabled with -C")
    stop(p)


def protocol_switches():
    differential(["-F"], [b"flush_all\r\n", b"flush_all 0\r\n",
                          b"flush_all noreply\r\n", b"mn\r\n"])
    differential(["-X"], [b"set k 0 0 1\r\nv\r\n", b"stats cachedump 1 1\r\n",
                          b"lru_crawler metadump all\r\n",
                          b"lru_crawler crawl all\r\n"])
    differential(["-W"], [b"watch\r\n", b"watch fetchers\r\n"])
    differential(["-o", "no_lru_crawler"], [
        b"lru_crawler metadump all\r\n", b"lru_crawler crawl all\r\n",
        b"lru_crawler enable\r\n", b"lru_crawler metadump all\r\n"])
    noop = b"\x80\x0a" + b"\x00" * 22
    differential(["-B", "ascii"], [noop, b"version\r\n"])
    differential(["-B", "binary"], [b"version\r\n"])
    differential(["-A"], [b"shutdown foo\r\n", b"shutdown noreply\r\n",
                          b"version\r\n"])
    differential([], [b"shutdown\r\n", b"shutdown graceful\r\n"])
    # -A: shutdown ends the node, exit 0
    for how in (b"shutdown\r\n", b"shutdown graceful\r\n"):
        port = harness.free_port()
        p = spawn(harness.memlaned_path(), ["-l", HOST, "-p", str(port),
                                            "-t", "2", "-A"])
        check(wait_tcp(port, p), "-A")
        check(exchange(port, [how]) == [b"<closed>"], "%r: not a silent "
              "close" % how)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            harness.fail("%r did not end the node" % how)
        check(p.returncode == 0, "%r: exit %d" % (how, p.returncode))
    port = harness.free_port()
    p = spawn(harness.memlaned_path(), ["-l", HOST, "-p", str(port),
                                        "-t", "2", "-F", "-X", "-A", "-b",
                                        "77", "-R", "7", "-o",
                                        "hashpower=20"])
    check(wait_tcp(port, p), "-F -X -A")
    st = settings(port)
    want = {"flush_enabled": "no", "dump_enabled": "no",
            "shutdown_command": "yes", "tcp_backlog": "77",
            "reqs_per_event": "7", "hashpower_init": "20"}
    got = {k: st.get(k) for k in want}
    check(got == want, "stats settings: %r, want %r" % (got, want))
    stop(p)


def auth_file():
    tmp = tempfile.mkdtemp()
    os.chmod(tmp, 0o755)
    auth = os.path.join(tmp, "auth")
    with open(auth, "w") as f:
        f.write("alice:secret\nbob:pw2\n")
    os.chmod(auth, 0o644)
    try:
        y = ["-Y", auth]
        differential(y, [b"bogus\r\n", b"get\r\n", b"version\r\n",
                         b"mg a v\r\n", b"set a 0 0 5\r\nalice\r\n",
                         b"set a 0 0 10\r\nalice nope\r\n",
                         b"set a 0 0 13\r\nalice secrex \r\n",
                         b"set a 0 0 11\r\nalice:secre\r\n",
                         b"set a 0 0 12\r\nalice secret\r\n",
                         b"get a\r\n", b"set a 0 0 1\r\nx\r\n",
                         b"get a\r\n"])
        differential(y, [b"set a 5 0 12 noreply\r\nalice secret\r\n",
                         b"get a\r\n"])
        differential(y, [b"set b 0 0 7\r\nbob pw2\r\n", b"mn\r\n"])
        differential(y, [b"set b 0 0 14\r\n  bob pw2 more\r\n", b"mn\r\n"])
        differential(y, [b"\x80\x0a" + b"\x00" * 22])
        # a wrong password never gets in, however often it is tried
        port = harness.free_port()
        p = spawn(harness.memlaned_path(), ["-l", HOST, "-p", str(port),
                                            "-t", "2"] + y)
        check(wait_tcp(port, p), "-Y: %s" % show(log_of(p)))
        with harness.Conn(port) as c:
            for guess in (b"secreT", b"secretx", b"secre", b"x", b"pw2",
                          b"secret\x00", b"secret\r"):
                tok = b"alice " + guess
                r = c.cmd(b"set x 0 0 %d\r\n%s\r\n" % (len(tok), tok))
                check(r == b"CLIENT_ERROR authentication failure\r\n",
                      "password %r: %r" % (guess, r))
                check(c.cmd(b"get x\r\n") ==
                      b"CLIENT_ERROR unauthenticated\r\n",
                      "a get after password %r" % guess)
        stop(p)
        # -Y with UDP is refused, as memcached refuses it
        for binary in (harness.memlaned_path(), harness.memcached_path()):
            rc, out, err = run_once(binary, ["-l", HOST, "-p", "0", "-U",
                                             str(harness.free_port())] + y)
            check(rc == EX_USAGE and "Cannot use UDP" in err,
                  "%s -Y -U: exit %d %s" % (binary, rc, show(err)))
        with open(auth, "w") as f:
            f.write("no-colon-here\n")
        rc, out, err = run_once(harness.memlaned_path(),
                                ["-l", HOST, "-p", str(harness.free_port())]
                                + y)
        check(rc == 1 and "malformed" in err, "a malformed auth file: "
              "exit %d %s" % (rc, show(err)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


ADMIN = [
    b"verbosity\r\n", b"verbosity 1\r\n", b"verbosity x\r\n",
    b"cache_memlimit\r\n", b"cache_memlimit 0\r\n", b"cache_memlimit 7\r\n",
    b"cache_memlimit x\r\n", b"cache_memlimit -1\r\n",
    b"cache_memlimit 2000000000\r\n", b"cache_memlimit 8\r\n",
    b"cache_memlimit 64 x\r\n", b"cache_memlimit 64 x y\r\n",
    b"cache_memlimit 32 noreply\r\n",
    b"slabs\r\n", b"slabs automove\r\n", b"slabs automove 1\r\n",
    b"slabs automove 3\r\n", b"slabs automove x\r\n",
    b"slabs automove 2 noreply\r\n", b"slabs reassign 1 2\r\n",
    b"slabs reassign -1 2\r\n", b"slabs reassign 1 1\r\n",
    b"slabs reassign 1 39\r\n", b"slabs reassign 1 40\r\n",
    b"slabs reassign 0 1\r\n", b"slabs reassign x y\r\n",
    b"slabs reassign 1 2 3\r\n",
    b"lru\r\n", b"lru bogus\r\n", b"lru mode flat\r\n",
    b"lru mode segmented\r\n", b"lru mode x\r\n", b"lru mode\r\n",
    b"lru tune 10 25 0.1 2.0\r\n", b"lru tune 50 40 0.1 2.0\r\n",
    b"lru tune 10 10 0 2\r\n", b"lru tune x 10 1 2\r\n",
    b"lru tune 10 10 1\r\n", b"lru temp_ttl 10\r\n",
    b"lru temp_ttl x\r\n", b"lru temp_ttl -1\r\n",
    b"lru_crawler\r\n", b"lru_crawler bogus\r\n",
    b"lru_crawler enable\r\n", b"lru_crawler disable\r\n",
    b"lru_crawler disable\r\n", b"lru_crawler crawl all\r\n",
    b"lru_crawler enable\r\n", b"lru_crawler crawl all\r\n",
    b"lru_crawler crawl 1,2\r\n", b"lru_crawler crawl 0\r\n",
    b"lru_crawler crawl 63\r\n", b"lru_crawler crawl 64\r\n",
    b"lru_crawler crawl x\r\n", b"lru_crawler crawl 1,x\r\n",
    b"lru_crawler crawl all extra\r\n", b"lru_crawler sleep 100\r\n",
    b"lru_crawler sleep x\r\n", b"lru_crawler sleep 2000000\r\n",
    b"lru_crawler tocrawl 10\r\n", b"lru_crawler tocrawl x\r\n",
    b"lru_crawler mgdump 1\r\n", b"watch bogus\r\n", b"misbehave\r\n",
    b"debugtime 10\r\n",
]


def admin_commands():
    differential([], ADMIN)
    # and what they set, as stats settings shows it
    ml, mc, ports = pair([])
    try:
        seq = [b"slabs automove 2\r\n", b"lru_crawler sleep 250\r\n",
               b"lru_crawler tocrawl 9\r\n", b"lru_crawler disable\r\n",
               b"cache_memlimit 16\r\n"]
        exchange(ports[0], seq)
        exchange(ports[1], seq)
        keys = ["slab_automove", "lru_crawler", "lru_crawler_sleep",
                "lru_crawler_tocrawl", "maxbytes"]
        a, b = settings(ports[0]), settings(ports[1])
        check({k: a[k] for k in keys} == {k: b[k] for k in keys},
              "stats settings after the commands: memlaned %r, memcached "
              "%r" % ({k: a[k] for k in keys}, {k: b[k] for k in keys}))
        # cache_memlimit acts: 40 MB written into 16 MB stay under it
        with harness.Conn(ports[0]) as c:
            v = b"x" * 4000
            for i in range(10000):
                c.send(b"set m%d 0 0 %d noreply\r\n%s\r\n" % (i, len(v), v))
            check(c.cmd(b"mn\r\n") == b"MN\r\n", "the sets")
            st = harness.stats(ports[0])
            check(int(st["limit_maxbytes"]) == 16 << 20,
                  "limit_maxbytes %s" % st["limit_maxbytes"])
            check(int(st["bytes"]) <= 16 << 20 and int(st["evictions"]) > 0,
                  "cache_memlimit 16: %s bytes held, %s evictions"
                  % (st["bytes"], st["evictions"]))
            check(c.cmd(b"cache_memlimit 65\r\n") ==
                  b"MEMLIMIT_ADJUST_FAILED out of bounds or unable to "
                  b"adjust\r\n", "above the starting -m")
    finally:
        stop(ml)
        stop(mc)


def warnings():
    for args, words in ((["-o", "hot_lru_pct=20"], "hot_lru_pct"),
                        (["-o", "slab_chunk_max=16,ext_path=/x:1G"],
                         "ext_path"),
                        (["-f", "1.5"], "-f"), (["-n", "64"], "-n")):
        port = harness.free_port()
        p = spawn(harness.memlaned_path(), ["-l", HOST, "-p", str(port),
                                            "-t", "1"] + args)
        check(wait_tcp(port, p), "%s: did not start: %s"
              % (args, show(log_of(p))))
        stop(p)
        lines = [x for x in log_of(p).splitlines() if "warning" in x]
        n = len(args[1].split(",")) if args[0] == "-o" else 1
        check(len(lines) == n and words in lines[-1],
              "%s: want %d warning line(s) naming %s, got %s"
              % (args, n, words, show(log_of(p))))


def stats_detail():
    detail = [b"stats detail on\r\n", b"set foo:1 0 0 1\r\nx\r\n",
              b"get foo:1\r\n", b"get foo:2 foo:1\r\n",
              b"delete foo:1\r\n", b"set bar 0 0 1\r\nx\r\n",
              b"get bar\r\n", b"mg foo:1 v\r\n", b"incr foo:1 1\r\n",
              b"add foo:9 0 0 1\r\nx\r\n", b"get foo:9\r\n",
              b"stats detail dump\r\n", b"stats detail off\r\n",
              b"get foo:1\r\n", b"stats detail dump\r\n",
              b"stats detail\r\n"]
    differential([], detail)
    differential(["-D", "/"], [b"set a/1 0 0 1\r\nx\r\n", b"get a/1\r\n",
                               b"get a:1\r\n", b"stats detail dump\r\n"])
    # many prefixes over both cores: the same lines, in each server's
    # own order
    ml, mc, ports = pair([])
    try:
        reqs = [b"stats detail on\r\n"] + [
            b"set p%d:%d 0 0 1\r\nx\r\nget p%d:%d p%d:x\r\n"
            % (i % 7, i, i % 7, i, i % 7) for i in range(60)]
        dumps = []
        for port in ports:
            exchange(port, reqs, settle=0.05)
            got = exchange(port, [b"stats detail dump\r\n"])[0]
            dumps.append(sorted(got.split(b"\r\n")))
        check(dumps[0] == dumps[1], "stats detail dump:\n  memlaned  %r\n"
              "  memcached %r" % (dumps[0], dumps[1]))
        check(settings(ports[0])["detail_enabled"] == "yes", "detail on")
    finally:
        stop(ml)
        stop(mc)


# ---------------------------------------------------------------------------
# watch
# ---------------------------------------------------------------------------

WATCH_LOAD = (b"set k 1 0 2\r\nvv\r\nget k\r\nget nokey\r\nmg k v\r\n"
              b"add k 0 0 1\r\nx\r\nset t 0 100 1\r\nx\r\n"
              b"gets k\r\ncas k 0 0 1 1\r\nx\r\n")


def watch_lines(port, kinds, load, evict=False):
    w = socket.create_connection((HOST, port), 5)
    w.settimeout(0.5)
    w.sendall(b"watch " + kinds + b"\r\n")
    got = b""
    deadline = time.time() + 2
    while not got.startswith(b"OK\r\n") and time.time() < deadline:
        try:
            got += w.recv(100)
        except socket.timeout:
            pass
    check(got.startswith(b"OK\r\n"), "watch %s: %r" % (kinds, got))
    got = got[4:]
    exchange(port, [load], settle=0.5)
    if evict:
        with harness.Conn(port) as c:
            v = b"x" * 100000
            for i in range(200):
                c.send(b"set big%d 0 0 %d noreply\r\n%s\r\n"
                       % (i, len(v), v))
            c.cmd(b"mn\r\n")
    deadline = time.time() + 3
    while time.time() < deadline:
        try:
            d = w.recv(1 << 20)
            if not d:
                break
            got += d
        except socket.timeout:
            if got:
                break
    w.close()
    return [x for x in got.decode().split("\n") if x]


def fields(line):
    """A log line's shape: its type and field names, in order."""
    parts = [p.split("=", 1) for p in line.split(" ")]
    kind = dict(p for p in parts if len(p) == 2).get("type")
    return kind, tuple(p[0] for p in parts)


def watch():
    ml, mc, ports = pair(["-m", "8"])
    try:
        for kinds, evict in ((b"fetchers", False), (b"mutations", False),
                             (b"evictions", True)):
            a = watch_lines(ports[0], kinds, WATCH_LOAD, evict)
            b = watch_lines(ports[1], kinds, WATCH_LOAD, evict)
            check(a and b, "watch %s: memlaned %d lines, memcached %d"
                  % (kinds, len(a), len(b)))
            shapes_a = {fields(x) for x in a}
            shapes_b = {fields(x) for x in b}
            check(shapes_a == shapes_b, "watch %s: line shapes differ:\n"
                  "  memlaned  %r\n  memcached %r" % (kinds, shapes_a,
                                                     shapes_b))
            if kinds == b"mutations":
                def strip(x):
                    return " ".join(p for p in x.split(" ")
                                    if p.split("=")[0] in
                                    ("type", "key", "status", "cmd",
                                     "ttl", "size"))
                # keys on other cores log there: the order across
                # cores is the log's, not the connection's
                check(sorted(strip(x) for x in a) ==
                      sorted(strip(x) for x in b),
                      "watch mutations:\n  memlaned  %r\n  memcached %r"
                      % ([strip(x) for x in a], [strip(x) for x in b]))
            if kinds == b"fetchers":
                want = ["key=k status=found", "key=nokey status=not_found"]
                for wl in want:
                    check(any(wl in x for x in a), "watch fetchers: no "
                          "line with %s in %r" % (wl, a))
            gids = [int(dict(p.split("=", 1) for p in x.split(" "))["gid"])
                    for x in a]
            check(gids == sorted(gids), "gids out of order: %r" % gids)
    finally:
        stop(ml)
        stop(mc)
    differential(["-W"], [b"watch\r\n", b"watch fetchers\r\n"])


# ---------------------------------------------------------------------------
# TLS
# ---------------------------------------------------------------------------

def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   capture_output=True)


def make_pki(d):
    """Two CAs, a server certificate for 127.0.0.1 from the first and a
    client certificate from each."""
    for ca in ("ca", "other"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                ca + ".key", "-out", ca + ".crt", "-days", "2", "-subj",
                "/CN=memlane test " + ca, cwd=d)
    with open(os.path.join(d, "ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    for name, ca in (("srv", "ca"), ("cli", "ca"), ("bad", "other")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout",
                name + ".key", "-out", name + ".csr", "-subj",
                "/CN=127.0.0.1", cwd=d)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt",
                "-CAkey", ca + ".key", "-CAcreateserial", "-out",
                name + ".crt", "-days", "2", "-extfile", "ext", cwd=d)
    for f in os.listdir(d):
        os.chmod(os.path.join(d, f), 0o644)
    os.chmod(d, 0o755)


def tls_client(port, d, ca="ca", cert=None):
    """A TLS socket to port, checking the server against ca; the error
    when the handshake fails."""
    import ssl
    ctx = ssl.create_default_context(cafile=os.path.join(d, ca + ".crt"))
    if cert:
        ctx.load_cert_chain(os.path.join(d, cert + ".crt"),
                            os.path.join(d, cert + ".key"))
    raw = socket.create_connection((HOST, port), 5)
    try:
        s = ctx.wrap_socket(raw, server_hostname=HOST)
        # TLS 1.3 reports a refused client certificate on the first read
        s.sendall(b"version\r\n")
        s.settimeout(5)
        got = s.recv(100)
        if not got:
            raise ConnectionResetError("closed")
        return s, got
    except (OSError, ssl.SSLError) as e:
        raw.close()
        return None, e


def tls():
    import ssl
    from pymemcache.client.base import Client
    if not shutil.which("openssl"):
        return harness.SKIP
    d = tempfile.mkdtemp()
    try:
        make_pki(d)
        opts = "ssl_chain_cert=%s/srv.crt,ssl_key=%s/srv.key" % (d, d)
        outcomes = {}
        for binary in (harness.memlaned_path(), harness.memcached_path()):
            port, plain = harness.free_port(), harness.free_port()
            p = spawn(binary, ["-l", "%s,notls:%s:%d" % (HOST, HOST, plain),
                               "-p", str(port), "-U", "0", "-t", "2",
                               "-Z", "-o", opts])
            check(wait_tcp(port, p), "%s -Z: %s" % (binary,
                                                   show(log_of(p))))
            seen = []
            s, got = tls_client(port, d)
            seen.append(("right CA", got.startswith(b"VERSION")
                         if s else repr(got)))
            if s:
                s.close()
            s, got = tls_client(port, d, ca="other")
            seen.append(("wrong CA", s is None and
                         isinstance(got, ssl.SSLCertVerificationError)))
            raw = socket.create_connection((HOST, port), 5)
            raw.settimeout(5)
            raw.sendall(b"version\r\n")
            try:
                got = raw.recv(100)
            except OSError:
                got = b""
            raw.close()
            seen.append(("no TLS", got == b""))
            # a handshake cut short stalls only its own connection
            stalled = socket.create_connection((HOST, port), 5)
            stalled.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03")
            s, got = tls_client(port, d)
            seen.append(("beside a stalled handshake",
                         s is not None and got.startswith(b"VERSION")))
            if s:
                s.close()
            stalled.close()
            with harness.Conn(plain) as c:
                seen.append(("notls listener",
                             c.cmd(b"version\r\n").startswith(b"VERSION")))
            outcomes[os.path.basename(binary)] = seen
            if binary == harness.memlaned_path():
                for what, ok in seen:
                    check(ok is True, "memlaned -Z, %s: %r" % (what, ok))
                ctx = ssl.create_default_context(
                    cafile=os.path.join(d, "ca.crt"))
                c = Client((HOST, port), tls_context=ctx)
                big = b"v" * 300000
                c.set("tls", big, noreply=False)
                check(c.get("tls") == big, "pymemcache over TLS")
                c.close()
                check(settings(plain)["ssl_enabled"] == "yes",
                      "stats settings ssl_enabled")
            check(stop(p) == 0 or binary != harness.memlaned_path(),
                  "exit code")
        check(outcomes["memlaned"] == outcomes["memcached"],
              "memlaned %r, memcached %r" % (outcomes["memlaned"],
                                            outcomes["memcached"]))
        # client certificates required
        port = harness.free_port()
        p = spawn(harness.memlaned_path(),
                  ["-l", HOST, "-p", str(port), "-t", "2", "-Z", "-o",
                   opts + ",ssl_ca_cert=%s/ca.crt,ssl_verify_mode=2" % d])
        check(wait_tcp(port, p), "ssl_verify_mode=2: %s" % show(log_of(p)))
        s, got = tls_client(port, d)
        check(s is None, "no client certificate got in: %r" % (got,))
        s, got = tls_client(port, d, cert="bad")
        check(s is None, "a client certificate of another CA got in")
        s, got = tls_client(port, d, cert="cli")
        check(s is not None and got.startswith(b"VERSION"),
              "the right client certificate: %r" % (got,))
        s.close()
        check(stop(p) == 0, "exit code")
        rc, out, err = run_once(harness.memlaned_path(),
                                ["-l", HOST, "-p", str(harness.free_port()),
                                 "-Z", "-o", "ssl_chain_cert=%s/none" % d])
        check(rc == EX_USAGE and "certificate chain" in err,
              "a missing certificate: exit %d, %s" % (rc, show(err)))
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    try:
        harness.run_checks([every_memcached_flag, exit_codes,
                            privileges_and_pidfile, daemon_and_signals,
                            core_and_locked_memory, config_file,
                            stock_memcached_conf, unix_socket,
                            connection_limits, cas_disabled,
                            protocol_switches, auth_file, admin_commands,
                            warnings, stats_detail, watch, tls])
    finally:
        stop_all()

# SPDX-License-Identifier: BSD-3-Clause
"""Shared pieces of memlane's integration tests.

Starts and stops servers (memlaned, and a real memcached to compare with),
finds free loopback ports, opens connections and reads memcached replies.
Every test imports this module; nothing here asserts on its own.

The binaries come from the environment, as meson passes them:

    MEMLANED   the server under test
    MEMCACHED  the reference memcached (default /usr/bin/memcached)

MEMLANED may name a memcached as well: the tests then check the reference
against itself, which is how they are shaken out. Flags that only memlaned
has are translated (or the check that needs them is skipped).

Every process a test starts is registered here and stopped by its PID when
the test ends, fails, or is killed with SIGTERM (meson's timeout).
"""

import atexit
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(os.path.dirname(HERE))
GOLDEN_DIR = os.path.join(SOURCE_ROOT, "tests", "golden")

# The session language, its parser and the step driver of the golden
# transcripts are reused as they are.
sys.path.insert(0, GOLDEN_DIR)
import record  # noqa: E402,F401 - the tests use harness.record

# Exit code meson reads as "skipped".
SKIP = 77

HOST = "127.0.0.1"
PORT_LO, PORT_HI = 20000, 29999

# Generous: a sanitizer build of the server is several times slower.
START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
IO_TIMEOUT = 20.0


class TestFailure(Exception):
    """A check failed; the message says what was sent, expected and got."""


def fail(msg):
    raise TestFailure(msg)


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def show(data, limit=400):
    """Bytes as a readable, bounded string for failure messages."""
    if data is None:
        return "(anything)"
    if isinstance(data, str):
        data = data.encode("latin-1")
    if len(data) > limit:
        head = data[:limit * 3 // 4]
        tail = data[-limit // 4:]
        return "%r ...(%d bytes in all)... %r" % (head, len(data), tail)
    return repr(bytes(data))


# ---------------------------------------------------------------------------
# Binaries
# ---------------------------------------------------------------------------

def memlaned_path():
    path = os.environ.get("MEMLANED")
    if not path:
        print("MEMLANED is not set: the path of the server under test")
        sys.exit(2)
    return path


def root_args():
    """memcached's rule, kept by memlaned: run as root, a server must be
    told which user to be."""
    return ["-u", "root"] if os.geteuid() == 0 else []


def memcached_path():
    return os.environ.get("MEMCACHED", "/usr/bin/memcached")


def is_memcached(binary):
    return "memcached" in os.path.basename(binary)


def target_is_memcached():
    """True when the server under test is a memcached (shake-out runs)."""
    return is_memcached(memlaned_path())


# ---------------------------------------------------------------------------
# Ports
# ---------------------------------------------------------------------------

def _port_free(port):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def free_port():
    """A port in 20000-29999 free for both TCP and UDP on loopback. A bind
    without SO_REUSEPORT fails on a port that a running server holds with
    it, so a port in use by another test is never returned."""
    for _ in range(500):
        port = random.randint(PORT_LO, PORT_HI)
        if _port_free(port):
            return port
    raise TestFailure("no free port in %d-%d" % (PORT_LO, PORT_HI))


# ---------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------

_live = {}


def _stop_all():
    for srv in list(_live.values()):
        srv.kill()


def _on_sigterm(signum, frame):
    # meson stops a test that ran out of time with SIGTERM: stop the
    # servers first, through the normal exit path.
    _stop_all()
    sys.exit(128 + signum)


atexit.register(_stop_all)
signal.signal(signal.SIGTERM, _on_sigterm)


class Server:
    """One server process on 127.0.0.1.

    kind "memlaned" runs $MEMLANED, "memcached" runs $MEMCACHED. The
    options use memlaned's names; for a memcached binary they become its
    flags (-u root when run as root, -o idle_timeout for --idle-timeout),
    with -B ascii added.
    """

    def __init__(self, kind="memlaned", *, tcp=True, udp=False, mem_mb=64,
                 threads=None, conns=None, item_max=None, no_evict=False,
                 idle_timeout=None, env=None, extra=(), port=None):
        self.kind = kind
        self.binary = memlaned_path() if kind == "memlaned" \
            else memcached_path()
        self.opts = dict(tcp=tcp, udp=udp, mem_mb=mem_mb, threads=threads,
                         conns=conns, item_max=item_max, no_evict=no_evict,
                         idle_timeout=idle_timeout, extra=tuple(extra))
        self.env = env
        self.proc = None
        self.fixed_port = port  # a cluster's members know it in advance
        self.port = None
        self.udp_port = None
        self.returncode = None
        self._log = None

    @property
    def pid(self):
        return self.proc.pid

    def describe(self):
        return "%s (%s)" % (self.name(), " ".join(self.argv))

    def name(self):
        t = self.opts["threads"]
        return "%s%s" % (os.path.basename(self.binary),
                         " -t %d" % t if t else "")

    def _argv(self):
        o = self.opts
        mc = is_memcached(self.binary)
        argv = [self.binary, "-l", HOST,
                "-p", str(self.port if o["tcp"] else 0)]
        if o["udp"]:
            argv += ["-U", str(self.udp_port)]
        elif mc:
            argv += ["-U", "0"]
        if o["mem_mb"] is not None:
            argv += ["-m", str(o["mem_mb"])]
        if o["threads"] is not None:
            argv += ["-t", str(o["threads"])]
        if o["conns"] is not None:
            argv += ["-c", str(o["conns"])]
        if o["item_max"] is not None:
            argv += ["-I", "%dk" % (o["item_max"] // 1024)]
        if o["no_evict"]:
            argv.append("-M")
        if o["idle_timeout"] is not None:
            if mc:
                argv += ["-o", "idle_timeout=%d" % o["idle_timeout"]]
            else:
                argv += ["--idle-timeout", str(o["idle_timeout"])]
        if mc:
            # memlaned serves the text and meta protocols, not the
            # deprecated binary one: the reference must not switch to it
            # when a connection's first byte is 0x80.
            argv += ["-B", "ascii"]
        return argv + root_args() + list(o["extra"])

    def start(self):
        last = ""
        for _ in range(5):
            self.port = self.fixed_port or free_port()
            self.udp_port = free_port() if self.opts["udp"] else None
            self.argv = self._argv()
            self._log = tempfile.TemporaryFile()
            env = dict(os.environ)
            if self.env:
                env.update(self.env)
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                         stdout=self._log,
                                         stderr=subprocess.STDOUT, env=env)
            _live[self.proc.pid] = self
            if self._wait_ready():
                return self
            last = self.log()
            self.kill()
            # A port taken between the check and the bind: try another.
            if "in use" not in last.lower():
                break
        raise TestFailure("%s did not start: %s" % (self.describe(),
                                                     last[-2000:]))

    def _wait_ready(self):
        deadline = time.time() + START_TIMEOUT
        while time.time() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                socket.create_connection((HOST, self.port), 1).close()
            except OSError:
                time.sleep(0.02)
                continue
            # the connect may have reached another test's server that
            # took the port first: this one exits at once when it cannot
            # listen, so it must still run a moment later
            time.sleep(0.1)
            return self.proc.poll() is None
        return False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        """Everything the server wrote to stdout and stderr so far."""
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def stop(self):
        """SIGTERM, then wait; a server that does not exit by itself with
        status 0 (memlaned's contract; a sanitizer report also changes the
        status) fails the test."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
                raise TestFailure("%s did not exit within %ds of SIGTERM"
                                  % (self.describe(), STOP_TIMEOUT))
        self.returncode = self.proc.returncode
        _live.pop(self.proc.pid, None)
        if self.returncode != 0:
            raise TestFailure("%s exited with status %d; its output:\n%s"
                              % (self.describe(), self.returncode,
                                 self.log()[-4000:]))

    def kill(self):
        """Stops the process by PID without judging how it ends."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        self.returncode = self.proc.returncode
        _live.pop(self.proc.pid, None)

    def rss(self):
        """Resident set size in bytes, from /proc/PID/statm."""
        with open("/proc/%d/statm" % self.proc.pid) as f:
            resident = int(f.read().split()[1])
        return resident * os.sysconf("SC_PAGE_SIZE")

    def connect(self, timeout=IO_TIMEOUT):
        return Conn(self.port, timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, etype, evalue, tb):
        if etype is None:
            self.stop()
        else:
            self.kill()
        return False


class Servers:
    """Several servers started together and stopped together, every one of
    them even when another fails to start or stop."""

    def __init__(self, *servers):
        self.servers = list(servers)

    def __enter__(self):
        try:
            for s in self.servers:
                s.start()
        except BaseException:
            for s in self.servers:
                s.kill()
            raise
        return self.servers

    def __exit__(self, etype, evalue, tb):
        errors = []
        for s in self.servers:
            if etype is None:
                try:
                    s.stop()
                except TestFailure as e:
                    errors.append(str(e))
            else:
                s.kill()
        if errors:
            raise TestFailure("\n".join(errors))
        return False


# ---------------------------------------------------------------------------
# TCP connections
# ---------------------------------------------------------------------------

class Closed(Exception):
    """The server closed the connection."""


class _Socket:
    """A client owning self.sock, closed on close() or leaving a with."""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class Conn(_Socket):
    """A blocking TCP connection with a read buffer and the reply readers
    the tests need."""

    def __init__(self, port, timeout=IO_TIMEOUT, host=None):
        self.sock = socket.create_connection((host or HOST, port), timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        self.buf = bytearray()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        try:
            chunk = self.sock.recv(1 << 20)
        except ConnectionResetError:
            chunk = b""
        except socket.timeout:
            raise TestFailure("no reply within %ds (have %s)"
                              % (self.sock.gettimeout(), show(self.buf)))
        if not chunk:
            raise Closed()
        self.buf += chunk

    def readline(self):
        """One reply line, with its \\r\\n."""
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i + 2])
                del self.buf[:i + 2]
                return line
            self._fill()

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_until(self, end):
        """Everything up to and including the first occurrence of end."""
        while True:
            i = self.buf.find(end)
            if i >= 0:
                data = bytes(self.buf[:i + len(end)])
                del self.buf[:i + len(end)]
                return data
            self._fill()

    def cmd(self, line):
        """Sends one request and reads a one-line reply."""
        self.send(line)
        return self.readline()

    def read_retrieval(self):
        """A get/gets reply: returns {key: (flags, value, cas or None)}."""
        out = {}
        while True:
            line = self.readline()
            if line == b"END\r\n":
                return out
            w = line.split()
            if not w or w[0] != b"VALUE" or len(w) not in (4, 5):
                raise TestFailure("unexpected retrieval line %s" % show(line))
            data = self.read_exact(int(w[3]) + 2)
            if data[-2:] != b"\r\n":
                raise TestFailure("value of %r not followed by \\r\\n" % w[1])
            out[w[1]] = (int(w[2]), data[:-2],
                         int(w[4]) if len(w) == 5 else None)

    def read_meta(self):
        """One meta reply: (status line without \\r\\n, value or None)."""
        line = self.readline()[:-2]
        if line.startswith(b"VA "):
            size = int(line.split()[1])
            data = self.read_exact(size + 2)
            if data[-2:] != b"\r\n":
                raise TestFailure("VA data block not followed by \\r\\n")
            return line, data[:-2]
        return line, None

    def wait_closed(self, timeout):
        """True when the server closes the connection (EOF or reset) within
        timeout seconds; bytes that arrive meanwhile are kept in buf."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            r, _, _ = select.select([self.sock], [], [],
                                    max(0.0, deadline - time.time()))
            if not r:
                break
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return True
            if not chunk:
                return True
            self.buf += chunk
        return False


def exchange_halfclose(port, data, timeout=IO_TIMEOUT):
    """Sends data, half-closes, reads until the server closes. Returns
    (reply, how) with how one of 'closed', 'reset', 'timeout'."""
    s = socket.create_connection((HOST, port), 10)
    s.setblocking(False)
    out = memoryview(data)
    reply = bytearray()
    how = "timeout"
    deadline = time.time() + timeout
    shut = False
    try:
        while time.time() < deadline:
            if not out and not shut:
                s.shutdown(socket.SHUT_WR)
                shut = True
            r, w, _ = select.select([s], [s] if out else [], [], 0.1)
            if w:
                try:
                    n = s.send(out[:65536])
                    out = out[n:]
                except (BrokenPipeError, ConnectionResetError):
                    out = out[len(out):]
                    shut = True
            if r:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    how = "reset"
                    break
                if not chunk:
                    how = "closed"
                    break
                reply += chunk
    finally:
        s.close()
    return bytes(reply), how


def start_memcached(udp=False, threads=2):
    """A memcached of its own, as it starts by default (both protocols,
    which Server's -B ascii does not give): (process, port). Stop it by
    its PID (proc.kill()) when done."""
    port = free_port()
    argv = [memcached_path(), "-p", str(port), "-U",
            str(port) if udp else "0", "-l", HOST, "-t", str(threads)]
    if os.geteuid() == 0:
        argv += ["-u", "root"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)

    def answers():
        try:
            with socket.create_connection((HOST, port), 0.5):
                return True
        except OSError:
            return False

    wait_for("memcached answers", answers, 5)
    return proc, port


def stats(port, group=None):
    """The `stats [group]` reply as a dict of name -> value (strings)."""
    with Conn(port) as c:
        c.send(b"stats%s\r\n" % (b" " + group.encode() if group else b""))
        out = {}
        while True:
            line = c.readline()
            if line == b"END\r\n":
                return out
            w = line.decode().split()
            if len(w) != 3 or w[0] != "STAT":
                raise TestFailure("bad stats line %r" % line)
            out[w[1]] = w[2]


def bin_frame(op, key=b"", value=b"", extras=b"", opaque=0, cas=0):
    """A binary-protocol request frame."""
    return struct.pack(">BBHBBHIIQ", 0x80, op, len(key), len(extras), 0, 0,
                       len(key) + len(extras) + len(value), opaque,
                       cas) + extras + key + value


# ---------------------------------------------------------------------------
# UDP
# ---------------------------------------------------------------------------

UDP_HDR = struct.Struct(">HHHH")
UDP_MTU = 1400  # largest reply datagram, frame header included


class UdpReply:
    """What arrived for one request id: the reassembled stream, and any
    framing errors seen on the way."""

    def __init__(self):
        self.data = bytearray()
        self.errors = []
        self.datagrams = 0
        self.messages = 0
        self.complete = False


class UdpClient(_Socket):
    def __init__(self, port, host=None):
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # Large replies come as hundreds of datagrams at once.
        for opt in (33, socket.SO_RCVBUF):  # 33 = SO_RCVBUFFORCE
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, opt, 16 << 20)
                break
            except OSError:
                continue
        self.sock.connect((host or HOST, port))

    def send(self, req_id, body, seq=0, count=1, reserved=0):
        self.sock.send(UDP_HDR.pack(req_id, seq, count, reserved) + body)

    def recv(self, timeout):
        """One datagram, or None when none arrives within timeout."""
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return None
        return self.sock.recv(65536)

    def request(self, req_id, body, done, timeout=IO_TIMEOUT, settle=0.05):
        """Sends body in one datagram and collects the reply for req_id
        until done(stream) is true with no message half-received, then
        waits settle seconds for stray datagrams. Datagrams are grouped
        into messages (a run of datagrams sharing a count, sequence numbers
        0..count-1, in any order) and messages are joined in the order
        they began to arrive. A bare header with a count of 0, which
        memcached (and so memlaned) sends for a multi-key get whose first
        key misses, carries nothing and is passed over; test_udp.py checks
        where they come. Returns a UdpReply."""
        self.send(req_id, body)
        return self.collect(req_id, done, timeout, settle)

    def collect(self, req_id, done, timeout=IO_TIMEOUT, settle=0.05):
        rep = UdpReply()
        cur = None  # the message being received: {"count", "parts"}
        deadline = time.time() + timeout

        def take(d):
            nonlocal cur
            rep.datagrams += 1
            if len(d) < UDP_HDR.size:
                rep.errors.append("datagram of %d bytes" % len(d))
                return
            rid, seq, count, res = UDP_HDR.unpack_from(d)
            if rid == req_id and count == 0 and len(d) == UDP_HDR.size:
                return
            if len(d) > UDP_MTU:
                rep.errors.append("datagram of %d bytes (over %d)"
                                  % (len(d), UDP_MTU))
            if rid != req_id:
                rep.errors.append("request id %d in a reply to %d"
                                  % (rid, req_id))
                return
            if res != 0:
                rep.errors.append("reserved field %d" % res)
            if count == 0 or seq >= count:
                rep.errors.append("seq %d of %d" % (seq, count))
                return
            if cur is None or cur["count"] != count or seq in cur["parts"]:
                if cur is not None:
                    rep.errors.append("message cut short: %d of %d parts"
                                      % (len(cur["parts"]), cur["count"]))
                cur = {"count": count, "parts": {}}
                rep.messages += 1
            cur["parts"][seq] = d[UDP_HDR.size:]
            if len(cur["parts"]) == count:
                for i in range(count):
                    rep.data += cur["parts"][i]
                cur = None

        while time.time() < deadline:
            if cur is None and done(bytes(rep.data)):
                rep.complete = True
                break
            d = self.recv(max(0.0, deadline - time.time()))
            if d is None:
                break
            take(d)
        if rep.complete:
            while True:
                d = self.recv(settle)
                if d is None:
                    break
                rep.errors.append("datagram after the reply: %s"
                                  % show(d[:80]))
        elif cur is not None:
            rep.errors.append("message incomplete: %d of %d parts"
                              % (len(cur["parts"]), cur["count"]))
        return rep


# ---------------------------------------------------------------------------
# Reply normalisation, as tests/golden/README.md describes it
# ---------------------------------------------------------------------------

_META_CODES = (b"VA", b"HD", b"EN", b"NF", b"NS", b"EX")
_ME_MASKED = (b"exp=", b"la=", b"cls=", b"size=")


class Normaliser:
    """Rewrites replies so that two servers' answers compare byte for byte:
    CAS values become ordinals in order of first appearance (0 stays 0),
    times, versions and stats values become '*', and the slab lines of
    stats items / stats slabs are dropped. Data blocks are kept exact. One
    normaliser follows one server through one session."""

    def __init__(self):
        self.cas = {}

    def _cas(self, digits):
        v = int(digits)
        if v == 0:
            return b"0"
        if v not in self.cas:
            self.cas[v] = len(self.cas) + 1
        return b"#%d" % self.cas[v]

    def _meta_tok(self, t):
        if len(t) > 1 and t[1:].isdigit():
            if t[:1] == b"c":
                return b"c" + self._cas(t[1:])
            if t[:1] in (b"t", b"l"):
                return t[:1] + b"*"
        return t

    def _me_tok(self, t):
        if t.startswith(b"cas=") and t[4:].isdigit():
            return b"cas=" + self._cas(t[4:])
        for m in _ME_MASKED:
            if t.startswith(m):
                if m == b"exp=" and t == b"exp=-1":
                    return t
                return m + b"*"
        return t

    @staticmethod
    def _slab_stat(name):
        return b":" in name or name in (b"active_slabs", b"total_malloced")

    def normalise(self, data):
        out = bytearray()
        pos = 0
        n = len(data)
        while pos < n:
            end = data.find(b"\r\n", pos)
            if end < 0:
                out += data[pos:]
                break
            line = data[pos:end]
            pos = end + 2
            t = line.split(b" ")
            skip = 0
            if len(t) >= 4 and t[0] == b"VALUE":
                if len(t) >= 5 and t[4].isdigit():
                    t[4] = self._cas(t[4])
                if t[3].isdigit():
                    skip = int(t[3]) + 2
                out += b" ".join(t)
            elif t[0] in _META_CODES:
                first = 2 if t[0] == b"VA" else 1
                for i in range(first, len(t)):
                    t[i] = self._meta_tok(t[i])
                if t[0] == b"VA" and len(t) >= 2 and t[1].isdigit():
                    skip = int(t[1]) + 2
                out += b" ".join(t)
            elif len(t) >= 2 and t[0] == b"ME":
                for i in range(2, len(t)):
                    t[i] = self._me_tok(t[i])
                out += b" ".join(t)
            elif t[0] == b"VERSION":
                out += b"VERSION *"
            elif len(t) >= 3 and t[0] == b"STAT" and t[1] and t[2]:
                if self._slab_stat(t[1]):
                    continue
                out += b"STAT " + t[1] + b" *"
            else:
                out += line
            out += b"\r\n"
            if skip:
                out += data[pos:pos + skip]
                pos += skip
        return bytes(out)


def collapse(data):
    """Keeps the first occurrence of each distinct line."""
    seen = set()
    out = bytearray()
    for line in data.splitlines(keepends=True):
        if line not in seen:
            seen.add(line)
            out += line
    return bytes(out)


def first_difference(a, b):
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n if len(a) != len(b) else -1


def diff_text(expected, got, context=300):
    """A window around the first difference of two byte strings."""
    at = first_difference(expected, got)
    lo = max(0, at - context // 3)
    return ("first difference at byte %d\n"
            "      expected: %s\n"
            "      got:      %s"
            % (at, show(expected[lo:at + context], context * 2),
               show(got[lo:at + context], context * 2)))


# ---------------------------------------------------------------------------
# Running tests
# ---------------------------------------------------------------------------


# ---------------------------------------------------------------------------
# Cluster helpers: memlanectl, libmemcached's ketama, waiting
# ---------------------------------------------------------------------------

def memlanectl(admin, *args, ok=True):
    """memlanectl against the admin endpoint on 127.0.0.1:admin; with ok,
    a non-zero exit fails the check."""
    out = subprocess.run([os.environ["MEMLANECTL"], "-s",
                          "127.0.0.1:%d" % admin] + list(args),
                         capture_output=True, timeout=60)
    if ok:
        check(out.returncode == 0, "memlanectl %s: exit %d: %s"
              % (" ".join(args), out.returncode, out.stderr.decode()))
    return out


def memlanectl_json(admin, *args):
    import json
    return json.loads(memlanectl(admin, "--json", *args).stdout)


def ketama_client(*args):
    """tests/integration/ketama_client.c (libmemcached with weighted
    ketama): its output."""
    out = subprocess.run([os.environ["KETAMA_CLIENT"]] + list(args),
                         capture_output=True, timeout=60)
    check(out.returncode == 0, "ketama_client %s: %s"
          % (" ".join(args), out.stderr.decode()[-2000:]))
    return out.stdout.decode()


def wait_for(what, fn, timeout, step=0.05):
    """Polls fn until it is true; returns the time it was, or fails."""
    deadline = time.time() + timeout
    while not fn():
        if time.time() > deadline:
            fail("%s: not within %.1f s" % (what, timeout))
        time.sleep(step)
    return time.time()


def run_checks(checks, argv=None):
    """Runs named check functions in order, each isolated: a failure is
    printed and the next check still runs. A check may return SKIP.
    Exits 0 when all passed (or were skipped), 1 otherwise, 77 when every
    check was skipped. Names on the command line select checks."""
    want = (argv if argv is not None else sys.argv[1:])
    failed = []
    skipped = 0
    for fn in checks:
        name = fn.__name__
        if want and name not in want:
            continue
        t0 = time.time()
        print("== %s" % name, flush=True)
        try:
            r = fn()
        except TestFailure as e:
            failed.append(name)
            print("FAIL %s: %s" % (name, e), flush=True)
            continue
        except Exception as e:  # noqa: BLE001 - report and go on
            failed.append(name)
            import traceback
            traceback.print_exc()
            print("FAIL %s: %s: %s" % (name, type(e).__name__, e),
                  flush=True)
            continue
        if r == SKIP:
            skipped += 1
            print("SKIP %s" % name, flush=True)
        else:
            print("ok   %s (%.1fs)" % (name, time.time() - t0), flush=True)
    ran = len([f for f in checks if not want or f.__name__ in want])
    if failed:
        print("%d of %d checks failed: %s" % (len(failed), ran,
                                              ", ".join(failed)))
        sys.exit(1)
    if ran and skipped == ran:
        sys.exit(SKIP)
    sys.exit(0)


def seeded_random(name):
    """A Random with a fixed seed per test (override with ML_SEED), printed
    so that a failure can be replayed."""
    seed = int(os.environ.get("ML_SEED", "0")) or \
        (sum(name.encode()) * 7919 + 1)
    print("   seed %d (ML_SEED=%d to replay)" % (seed, seed))
    return random.Random(seed)

#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Record golden transcripts from a real memcached.

Every session script in tests/golden/sessions/*.txt is played against a
fresh memcached started by this program on 127.0.0.1 at a free port in
20000-29999, and memcached's exact reply bytes are written next to the
request bytes into tests/golden/transcripts/<session>.tr. The C test
tests/cache/test_golden.c replays those transcripts through memlane's
protocol layer and compares the replies.

Refresh all transcripts (from the top of the source tree):

    python3 tests/golden/record.py

or only some sessions:

    python3 tests/golden/record.py errors meta_get

Options: --memcached PATH (default: memcached from PATH), --sessions-dir
DIR, --out DIR, --verbose. The sleeps in some sessions make a full run take
about a minute. Only the Python standard library is used. The transcripts
are meant to come from memcached 1.6.18; another version is reported.

The session language and the transcript format are described in
tests/golden/README.md.
"""

import argparse
import os
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

FORMAT_MAGIC = b"memlane-golden 1"
EXPECTED_VERSION = "memcached 1.6.18"

# memcached instances a session can ask for with "!server NAME". The
# values are written into the transcript so that the replay can build a
# node with the same limits.
SERVERS = {
    "default": {"mem_mb": 64, "item_size_max": 1 << 20, "no_evict": False},
    # -M: memcached answers "SERVER_ERROR out of memory storing object"
    # instead of evicting.
    "nomem": {"mem_mb": 8, "item_size_max": 1 << 20, "no_evict": True},
}

SENTINEL = b"mn\r\n"
SENTINEL_REPLY = b"MN\r\n"
STEP_TIMEOUT = 15.0   # seconds to wait for a step's sentinel
QUIET = 0.3           # silence that ends a step sent without sentinel
SETTLE = 0.05         # extra wait after the sentinel, to catch stray bytes

FILL_ALPHABET = b"abcdefghijklmnopqrstuvwxyz"


class SessionError(Exception):
    pass


# ---------------------------------------------------------------------------
# Session scripts
# ---------------------------------------------------------------------------

class Step:
    def __init__(self, lineno):
        self.lineno = lineno
        self.template = b""
        self.flags = set()
        self.repeat = 1
        self.nscript = 0


ESCAPES = {"r": b"\r", "n": b"\n", "t": b"\t", "0": b"\0", "\\": b"\\",
           "s": b" "}
TOKEN_RE = re.compile(rb"\$(\$|CAS|NOW(?:[+-][0-9]+)?|FILL\([0-9]+\)|I)")


def unescape_line(text, lineno):
    """One script line to template bytes; returns (bytes, add_crlf)."""
    out = bytearray()
    i = 0
    add_crlf = True
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 >= len(text):
                raise SessionError("line %d: lone backslash" % lineno)
            nxt = text[i + 1]
            if nxt == "c":
                if i + 2 != len(text):
                    raise SessionError("line %d: \\c must end the line"
                                       % lineno)
                add_crlf = False
                i += 2
                continue
            if nxt == "x":
                hexd = text[i + 2:i + 4]
                if not re.fullmatch(r"[0-9a-fA-F]{2}", hexd):
                    raise SessionError("line %d: bad \\x escape" % lineno)
                b = bytes([int(hexd, 16)])
                # A dollar made by an escape is a literal dollar.
                out += b"$$" if b == b"$" else b
                i += 4
                continue
            if nxt not in ESCAPES:
                raise SessionError("line %d: unknown escape \\%s"
                                   % (lineno, nxt))
            out += ESCAPES[nxt]
            i += 2
            continue
        if ch == "$":
            m = TOKEN_RE.match(text.encode("latin-1"), i)
            if not m:
                raise SessionError("line %d: unknown $ token (write $$ for"
                                   " a dollar)" % lineno)
            out += m.group(0)
            i = m.end()
            continue
        out += ch.encode("latin-1")
        i += 1
    return bytes(out), add_crlf


def parse_session(path):
    """Returns (server name, records). A record is a Step, ("sleep", n) or
    ("reconnect",)."""
    server = "default"
    records = []
    pending_flags = set()
    pending_repeat = 1
    step = None

    def close_step():
        nonlocal step
        if step is not None:
            records.append(step)
            step = None

    with open(path, encoding="latin-1") as f:
        lines = f.read().split("\n")
    for lineno, line in enumerate(lines, 1):
        if line.endswith("\r"):
            raise SessionError("%s:%d: CR in script (write \\r)"
                               % (path, lineno))
        if line == "":
            close_step()
            continue
        if line.startswith("#"):
            continue
        if line.startswith("!"):
            close_step()
            words = line[1:].split()
            if not words:
                raise SessionError("%s:%d: empty directive" % (path, lineno))
            d, args = words[0], words[1:]
            if d == "server" and len(args) == 1 and args[0] in SERVERS:
                if records:
                    raise SessionError("%s:%d: !server must come first"
                                       % (path, lineno))
                server = args[0]
            elif d == "sleep" and len(args) == 1 and args[0].isdigit():
                records.append(("sleep", int(args[0])))
            elif d == "reconnect" and not args:
                records.append(("reconnect",))
            elif d in ("nosentinel", "nosplit", "collapse") and not args:
                pending_flags.add(d)
            elif d == "repeat" and len(args) == 1 and args[0].isdigit():
                pending_repeat = int(args[0])
            else:
                raise SessionError("%s:%d: bad directive %r"
                                   % (path, lineno, line))
            continue
        if step is None:
            step = Step(lineno)
            step.flags = pending_flags
            step.repeat = pending_repeat
            pending_flags = set()
            pending_repeat = 1
        try:
            data, crlf = unescape_line(line, lineno)
        except SessionError as e:
            raise SessionError("%s: %s" % (path, e))
        step.template += data + (b"\r\n" if crlf else b"")
        step.nscript += 1
    close_step()
    if pending_flags or pending_repeat != 1:
        raise SessionError("%s: directive with no step after it" % path)

    # Expand !repeat: the step's text is repeated with $I = 0, 1, ...
    for r in records:
        if isinstance(r, Step):
            if r.repeat > 1 or b"$I" in r.template.replace(b"$$", b""):
                parts = []
                for i in range(r.repeat):
                    parts.append(subst_index(r.template, i))
                r.template = b"".join(parts)
    return server, records


def subst_index(template, i):
    def rep(m):
        return str(i).encode() if m.group(1) == b"I" else m.group(0)
    return TOKEN_RE.sub(rep, template)


# ---------------------------------------------------------------------------
# Templates: the tokens the replay substitutes too
# ---------------------------------------------------------------------------

def fill(n):
    reps = n // len(FILL_ALPHABET) + 1
    return (FILL_ALPHABET * reps)[:n]


def substitute(template, cas, now):
    """$CAS and $NOW[+-N] replaced; $FILL() and $$ kept (the "sent" form)."""
    def rep(m):
        tok = m.group(1)
        if tok == b"CAS":
            if cas is None:
                raise SessionError("$CAS used before any CAS was seen")
            return str(cas).encode()
        if tok.startswith(b"NOW"):
            off = int(tok[3:]) if len(tok) > 3 else 0
            return str(now + off).encode()
        return m.group(0)
    return TOKEN_RE.sub(rep, template)


def expand(sent):
    """The wire bytes of a "sent" form: $FILL(N) and $$ expanded."""
    def rep(m):
        tok = m.group(1)
        if tok == b"$":
            return b"$"
        if tok.startswith(b"FILL("):
            return fill(int(tok[5:-1]))
        raise SessionError("unexpanded token %r" % m.group(0))
    return TOKEN_RE.sub(rep, sent)


def has_dynamic_token(template):
    for m in TOKEN_RE.finditer(template):
        if m.group(1) == b"CAS" or m.group(1).startswith(b"NOW"):
            return True
    return False


# ---------------------------------------------------------------------------
# Replies: the CAS values they reveal, in order
# ---------------------------------------------------------------------------

META_CODES = {b"VA", b"HD", b"EN", b"NF", b"NS", b"EX", b"ME"}


def reply_cas_values(reply):
    """CAS values in reply order: VALUE's 5th field, a meta status line's
    c<digits> token, an ME line's cas=<digits>."""
    found = []
    pos = 0
    while pos < len(reply):
        end = reply.find(b"\r\n", pos)
        if end < 0:
            break
        line = reply[pos:end]
        pos = end + 2
        words = line.split(b" ")
        if words[0] == b"VALUE" and len(words) >= 4:
            if len(words) >= 5 and words[4].isdigit():
                found.append(int(words[4]))
            if words[3].isdigit():
                pos += int(words[3]) + 2
        elif words[0] in META_CODES:
            toks = words[1:]
            if words[0] == b"VA" and toks:
                size = toks[0]
                toks = toks[1:]
            for t in toks:
                if words[0] == b"ME":
                    if t.startswith(b"cas=") and t[4:].isdigit():
                        found.append(int(t[4:]))
                elif t[:1] == b"c" and t[1:].isdigit():
                    found.append(int(t[1:]))
            if words[0] == b"VA" and size.isdigit():
                pos += int(size) + 2
    return found


# ---------------------------------------------------------------------------
# The memcached under test
# ---------------------------------------------------------------------------

def free_port():
    for _ in range(200):
        port = random.randint(20000, 29999)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        return port
    raise SessionError("no free port in 20000-29999")


class Memcached:
    def __init__(self, binary, cfg):
        self.cfg = cfg
        self.port = free_port()
        argv = [binary, "-p", str(self.port), "-U", "0", "-l", "127.0.0.1",
                "-m", str(cfg["mem_mb"]), "-t", "1",
                "-I", "%dk" % (cfg["item_size_max"] // 1024)]
        if cfg["no_evict"]:
            argv.append("-M")
        if os.geteuid() == 0:
            argv += ["-u", "root"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                break
            except OSError:
                if self.proc.poll() is not None:
                    err = self.proc.stderr.read().decode(errors="replace")
                    raise SessionError("memcached exited: " + err)
                if time.time() > deadline:
                    self.stop()
                    raise SessionError("memcached did not start")
                time.sleep(0.05)

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), 5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        return s

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc.stderr.close()


def count_mn_lines(data):
    """How many bare "mn" requests a step itself sends (each answers MN)."""
    return len(re.findall(rb"(?:^|(?<=\n))mn[ \r\n]", data))


def count_mn_replies(reply):
    return len(re.findall(rb"(?:^|(?<=\n))MN\r\n", reply))


def exchange(sock, wire, sentinel, own_mn):
    """Sends wire (plus the sentinel) while reading replies. Returns
    (reply bytes without the sentinel's reply, closed)."""
    if sentinel:
        wire += SENTINEL
    out = memoryview(wire)
    reply = bytearray()
    closed = False
    deadline = time.time() + STEP_TIMEOUT
    quiet_since = time.time()

    def done():
        if not sentinel:
            return not out and time.time() - quiet_since >= QUIET
        return (not out and reply.endswith(SENTINEL_REPLY)
                and count_mn_replies(reply) >= own_mn + 1)

    while not done():
        if time.time() > deadline:
            raise SessionError("no reply within %ds (reply so far %r); a"
                               " partial request needs !nosentinel"
                               % (STEP_TIMEOUT, bytes(reply[-200:])))
        wl = [sock] if out else []
        r, w, _ = select.select([sock], wl, [], 0.05)
        if w:
            try:
                n = sock.send(out[:65536])
                out = out[n:]
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
        if r:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            reply += chunk
            quiet_since = time.time()
    if not closed and sentinel:
        # Nothing may follow the sentinel's reply.
        r, _, _ = select.select([sock], [], [], SETTLE)
        if r:
            try:
                extra = sock.recv(65536)
            except ConnectionResetError:
                extra = b""
            if extra:
                raise SessionError("bytes after the sentinel: %r" % extra)
        del reply[-len(SENTINEL_REPLY):]
    return bytes(reply), closed


# ---------------------------------------------------------------------------
# Recording
# ---------------------------------------------------------------------------

def block(tag, data):
    return b"%s %d\n" % (tag, len(data)) + data + b"\n"


def record_session(binary, path, out_path, verbose):
    name = os.path.splitext(os.path.basename(path))[0]
    server, records = parse_session(path)
    cfg = SERVERS[server]
    out = bytearray()
    out += FORMAT_MAGIC + b"\n"
    out += b"session %s\n" % name.encode()
    out += (b"server mem_limit=%d item_size_max=%d no_evict=%d\n"
            % (cfg["mem_mb"] << 20, cfg["item_size_max"],
               1 if cfg["no_evict"] else 0))
    mc = Memcached(binary, cfg)
    sock = None
    nsteps = 0
    nlines = 0
    try:
        sock = mc.connect()
        cas = None
        for r in records:
            if isinstance(r, tuple):
                if r[0] == "sleep":
                    time.sleep(r[1])
                    out += b"sleep %d\n" % r[1]
                else:
                    sock.close()
                    sock = mc.connect()
                    out += b"reconnect\n"
                continue
            nsteps += 1
            sent = substitute(r.template, cas, int(time.time()))
            wire = expand(sent)
            nlines += r.nscript
            sentinel = "nosentinel" not in r.flags
            reply, closed = exchange(sock, wire, sentinel,
                                     count_mn_lines(wire))
            flags = set(r.flags)
            if closed:
                flags.add("closed")
            if has_dynamic_token(r.template):
                flags.add("dynamic")
            for v in reply_cas_values(reply):
                cas = v
            out += (b"step %d line=%d flags=%s\n"
                    % (nsteps, r.lineno,
                       (",".join(sorted(flags)) or "-").encode()))
            out += block(b"tmpl", r.template)
            out += block(b"sent", sent)
            out += block(b"reply", reply)
            if verbose:
                print("  step %d (line %d): %r -> %r%s"
                      % (nsteps, r.lineno, sent[:60], reply[:60],
                         " [closed]" if closed else ""))
            if closed:
                sock.close()
                sock = mc.connect()
        out += b"end\n"
    finally:
        if sock is not None:
            sock.close()
        mc.stop()
    tmp = out_path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(out)
    os.replace(tmp, out_path)
    return nsteps, nlines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sessions", nargs="*",
                    help="session names (default: all)")
    ap.add_argument("--memcached",
                    default=shutil.which("memcached") or "memcached")
    ap.add_argument("--sessions-dir", default=os.path.join(HERE, "sessions"))
    ap.add_argument("--out", default=os.path.join(HERE, "transcripts"))
    ap.add_argument("--verbose", "-v", action="store_true")
    args = ap.parse_args()

    try:
        version = subprocess.run([args.memcached, "-V"], check=True,
                                 capture_output=True).stdout.decode()
    except (OSError, subprocess.CalledProcessError) as e:
        print("cannot run %s: %s" % (args.memcached, e), file=sys.stderr)
        return 1
    if version.strip() != EXPECTED_VERSION:
        print("warning: %s is %r, the transcripts are for %r"
              % (args.memcached, version.strip(), EXPECTED_VERSION),
              file=sys.stderr)

    names = args.sessions or sorted(
        os.path.splitext(f)[0] for f in os.listdir(args.sessions_dir)
        if f.endswith(".txt"))
    os.makedirs(args.out, exist_ok=True)
    total_steps = total_lines = 0
    for name in names:
        path = os.path.join(args.sessions_dir, name + ".txt")
        out_path = os.path.join(args.out, name + ".tr")
        try:
            nsteps, nlines = record_session(args.memcached, path, out_path,
                                            args.verbose)
        except SessionError as e:
            print("%s: %s" % (name, e), file=sys.stderr)
            return 1
        total_steps += nsteps
        total_lines += nlines
        print("%-20s %4d steps %5d request lines" % (name, nsteps, nlines))
    print("%-20s %4d steps %5d request lines"
          % ("total", total_steps, total_lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

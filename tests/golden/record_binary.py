#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Records memcached's answers to binary-protocol sessions, for
tests/cache/test_golden_binary.c to replay through memlane's parser and
executor byte for byte (CAS values and the version string aside).

    python3 tests/golden/record_binary.py          # every session
    python3 tests/golden/record_binary.py quiet    # one

Each session runs against a fresh memcached (-p <free port> -U 0
-l 127.0.0.1 -t 1 -m 64 -I 1m). A step is a write of binary frames, to
which the recorder adds a noop of opaque 0xffffffff and reads until its
answer; a text step ends with "mn" and reads until "MN"; when memcached
closes the connection the step is marked closed and the next step opens
another. "reconnect" opens a new connection (a connection is binary or
text by its first byte, as in memcached).

Transcript format (tests/golden/binary/<session>.btr):

    memlane-golden-binary 1
    session <name>
    step <n> <bin|text> <open|closed> <cas offsets, comma separated, or ->
    sent <len>\\n<bytes>\\n
    reply <len>\\n<bytes>\\n
"""

import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import record as golden  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "binary")
SENTINEL_OPAQUE = 0xffffffff
# a frame's CAS of this value is sent as the last CAS seen in a response
# of the session (each server its own; the replay substitutes its own)
CAS = 0xc4c4c4c4c4c4c4c4

(GET, SET, ADD, REPLACE, DELETE, INCR, DECR, QUIT, FLUSH, GETQ, NOOP, VERSION,
 GETK, GETKQ, APPEND, PREPEND, STAT, SETQ, ADDQ, REPLACEQ, DELETEQ, INCRQ,
 DECRQ, QUITQ, FLUSHQ, APPENDQ, PREPENDQ, VERBOSITY, TOUCH, GAT,
 GATQ) = range(0x1f)
GATK, GATKQ = 0x23, 0x24


def frame(op, key=b"", value=b"", extras=b"", cas=0, opaque=0x11223344,
          magic=0x80, keylen=None, bodylen=None):
    kl = len(key) if keylen is None else keylen
    bl = len(key) + len(extras) + len(value) if bodylen is None else bodylen
    return struct.pack(">BBHBBHIIQ", magic, op, kl, len(extras), 0, 0, bl,
                       opaque, cas) + extras + key + value


def store(op, key, value, flags=0, exptime=0, cas=0, opaque=0x11223344):
    return frame(op, key, value, struct.pack(">II", flags, exptime), cas,
                 opaque)


def arith(op, key, delta, initial=0, expiry=0, cas=0):
    return frame(op, key, extras=struct.pack(">QQI", delta, initial, expiry),
                 cas=cas)


def touch(op, key, exptime):
    return frame(op, key, extras=struct.pack(">I", exptime))


SESSIONS = {
    "basic": [
        [frame(GET, b"nokey")],
        [store(SET, b"k", b"hello", flags=5)],
        [frame(GET, b"k"), frame(GETK, b"k")],
        [frame(GETK, b"nokey")],
        [store(ADD, b"k", b"x")],
        [store(ADD, b"new", b"x", flags=7)],
        [store(REPLACE, b"zz", b"x")],
        [store(REPLACE, b"k", b"world", flags=9), frame(GET, b"k")],
        [frame(APPEND, b"k", b"!"), frame(PREPEND, b"k", b"<"),
         frame(GET, b"k")],
        [frame(APPEND, b"zz", b"v"), frame(PREPEND, b"zz", b"v")],
        [frame(DELETE, b"zz"), frame(DELETE, b"new"), frame(GET, b"new")],
        [frame(NOOP, opaque=0x01020304), frame(VERSION)],
        [store(SET, b"empty", b""), frame(GET, b"empty")],
        [store(SET, b"big", b"v" * 100000), frame(GET, b"big")],
    ],
    "quiet": [
        [store(SETQ, b"a", b"1"), store(SETQ, b"b", b"2"),
         store(SETQ, b"c", b"3")],
        [frame(GETQ, b"a"), frame(GETQ, b"nokey"), frame(GETKQ, b"b"),
         frame(GETKQ, b"nokey2"), frame(GETQ, b"c")],
        [store(ADDQ, b"a", b"x"), store(ADDQ, b"d", b"4"),
         store(REPLACEQ, b"nokey", b"x"), store(REPLACEQ, b"d", b"5")],
        [frame(DELETEQ, b"d"), frame(DELETEQ, b"d"), frame(GETQ, b"d")],
        [frame(APPENDQ, b"a", b"+"), frame(PREPENDQ, b"nokey", b"+"),
         frame(GET, b"a")],
        [arith(INCRQ, b"n", 1, 10), arith(INCRQ, b"n", 5),
         arith(DECRQ, b"n", 3), frame(GET, b"n")],
        [arith(INCRQ, b"a", 1)],
        [touch(GATQ, b"a", 100), touch(GATQ, b"nokey", 100),
         touch(GATKQ, b"b", 100)],
        [frame(FLUSHQ), frame(GETQ, b"a"), frame(GET, b"a")],
        [frame(QUITQ)],
        [frame(NOOP)],
    ],
    "cas": [
        [store(SET, b"k", b"v1")],
        [store(SET, b"k", b"v2", cas=CAS), frame(GET, b"k")],
        [store(SET, b"k", b"v3", cas=0x7fffffffffff)],
        [store(SET, b"nokey", b"v", cas=1)],
        [store(ADD, b"k", b"v", cas=1)],
        [frame(GET, b"k"), frame(APPEND, b"k", b"+", cas=CAS),
         frame(GET, b"k")],
        [frame(DELETE, b"k", cas=CAS), frame(GET, b"k")],
        [store(SET, b"k", b"v4")],
        [store(REPLACE, b"k", b"v", cas=12345)],
        [frame(DELETE, b"k", cas=99999)],
        [frame(DELETE, b"nokey", cas=1)],
        [arith(INCR, b"k", 1, cas=5)],
        [frame(GET, b"k")],
        # an add or a replace with a CAS is a cas: the right one stores
        # over the item (an add too), a wrong one is EEXISTS
        [store(SET, b"ac", b"v1"), store(ADD, b"ac", b"v2", cas=CAS),
         frame(GET, b"ac")],
        [store(ADD, b"ac", b"v3", cas=12345), frame(GET, b"ac")],
        [store(REPLACE, b"ac", b"v4", cas=CAS), frame(GET, b"ac")],
        [store(ADDQ, b"ac", b"v5", cas=CAS), frame(GET, b"ac")],
    ],
    "arith": [
        [store(SET, b"n", b"5")],
        [arith(INCR, b"n", 3), arith(DECR, b"n", 100)],
        [arith(INCR, b"n", 0xffffffffffffffff)],
        [store(SET, b"s", b"abc"), arith(INCR, b"s", 1),
         arith(DECR, b"s", 1)],
        [arith(INCR, b"miss", 1, 42, 0), frame(GET, b"miss")],
        [arith(DECR, b"miss2", 1, 7, 0xffffffff)],
        [arith(DECR, b"miss3", 1, 7, 0), arith(DECR, b"miss3", 100)],
        [store(SET, b"long", b"18446744073709551615"),
         arith(INCR, b"long", 1)],
        [store(SET, b"sp", b"12 "), arith(INCR, b"sp", 1)],
    ],
    "touch": [
        [store(SET, b"k", b"hello", flags=3)],
        [touch(TOUCH, b"k", 100), touch(TOUCH, b"nokey", 100)],
        [touch(GAT, b"k", 200), touch(GATK, b"k", 0)],
        [touch(GAT, b"nokey", 1), touch(GATK, b"nokey", 1)],
        [touch(GAT, b"k", 0xffffffff), frame(GET, b"k")],
    ],
    "admin": [
        [frame(STAT, b"nosuch")],
        [frame(STAT, b"reset")],
        [store(SET, b"f", b"x"), frame(FLUSH), frame(GET, b"f")],
        [frame(0x55), frame(0x20), frame(0x21, b"PLAIN", b"\0u\0p")],
        [frame(NOOP)],
        [frame(QUIT)],
        [frame(NOOP)],
    ],
    "errors": [
        [frame(GET, b"k", extras=b"abcd")],
        [store(SET, b"k", b"v"), frame(NOOP)],
        [frame(SET, b"k", b"v")],
        [frame(GET, b"")],
        [frame(GET, b"k" * 251)],
        [frame(VERSION, b"k")],
        [frame(NOOP, extras=b"abcd")],
        [frame(GET, b"k", b"value")],
        [arith(INCR, b"n", 1), frame(NOOP)],
        [frame(GET, b"abcdefghij", keylen=10, bodylen=5) + b"x" * 40],
        [frame(NOOP), frame(GET, b"k", magic=0x81)],
        [store(SET, b"huge", b"v" * (2 << 20)), frame(NOOP),
         frame(GET, b"huge")],
        [store(SET, b"k2", b"small"),
         store(SET, b"k2", b"v" * (2 << 20)), frame(GET, b"k2")],
    ],
    "cross": [
        [store(SET, b"bin", b"from-binary", flags=42)],
        ["reconnect"],
        [b"get bin\r\nmg bin v f\r\nset txt 7 0 9\r\nfrom-text\r\n"],
        ["reconnect"],
        [frame(GET, b"txt"), frame(GETK, b"txt")],
        [arith(INCR, b"cnt", 1, 100, 0)],
        ["reconnect"],
        [b"incr cnt 5\r\nget cnt\r\n"],
    ],
}


def last_cas(reply, cas):
    i = 0
    while i + 24 <= len(reply):
        body = struct.unpack(">I", reply[i + 8:i + 12])[0]
        c = struct.unpack(">Q", reply[i + 16:i + 24])[0]
        if reply[i] == 0x81 and c:
            cas = c
        i += 24 + body
    return cas


def substitute(sent, cas):
    """The CAS tokens of the frames in sent, replaced; their offsets."""
    out, offs, i = bytearray(sent), [], 0
    while i + 24 <= len(out):
        body = struct.unpack(">I", out[i + 8:i + 12])[0]
        if struct.unpack(">Q", out[i + 16:i + 24])[0] == CAS:
            out[i + 16:i + 24] = struct.pack(">Q", cas)
            offs.append(i + 16)
        i += 24 + body
    return bytes(out), offs


def read_frames_until_sentinel(s):
    buf = b""
    while True:
        i = 0
        while i + 24 <= len(buf):
            op = buf[i + 1]
            body = struct.unpack(">I", buf[i + 8:i + 12])[0]
            opaque = struct.unpack(">I", buf[i + 12:i + 16])[0]
            if i + 24 + body > len(buf):
                break
            i += 24 + body
            if op == NOOP and opaque == SENTINEL_OPAQUE:
                return buf[:i], False
        d = s.recv(1 << 20)
        if not d:
            return buf, True
        buf += d


def read_text_until_mn(s):
    buf = b""
    while not buf.endswith(b"MN\r\n"):
        d = s.recv(1 << 20)
        if not d:
            return buf, True
        buf += d
    return buf, False


def record(name, steps):
    # the text recorder's own memcached, as it starts it
    mc = golden.Memcached("memcached", {"mem_mb": 64,
                                        "item_size_max": 1 << 20,
                                        "no_evict": False})
    port = mc.port
    try:
        out = [b"memlane-golden-binary 1\n", b"session %s\n" % name.encode()]
        s = None
        cas = 0
        for n, step in enumerate(steps):
            if step == ["reconnect"]:
                if s:
                    s.close()
                s = None
                continue
            if s is None:
                s = socket.create_connection(("127.0.0.1", port), 5)
            if isinstance(step[0], bytes) and not step[0][:1] == b"\x80" \
                    and step[0][:1] != b"\x81":
                kind = "text"
                sent = b"".join(step) + b"mn\r\n"
                s.sendall(sent)
                reply, closed = read_text_until_mn(s)
            else:
                kind = "bin"
                sent, offs = substitute(
                    b"".join(step) + frame(NOOP, opaque=SENTINEL_OPAQUE), cas)
                s.sendall(sent)
                reply, closed = read_frames_until_sentinel(s)
                cas = last_cas(reply, cas)
            if kind == "text":
                offs = []
            out.append(b"step %d %s %s %s\n" % (
                n, kind.encode(), b"closed" if closed else b"open",
                ",".join(str(o) for o in offs).encode() or b"-"))
            out.append(b"sent %d\n" % len(sent) + sent + b"\n")
            out.append(b"reply %d\n" % len(reply) + reply + b"\n")
            if closed:
                s.close()
                s = None
        if s:
            s.close()
    finally:
        mc.stop()
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name + ".btr"), "wb") as f:
        f.write(b"".join(out))


def main():
    names = sys.argv[1:] or list(SESSIONS)
    for name in names:
        record(name, SESSIONS[name])
        print("recorded", name)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Make the fuzzer's seed corpus from the golden transcripts, text and
binary (tests/golden/binary/: each binary session's frames as one seed,
which starts with 0x80 and so runs binary, and again after a 0x01 with
text requests between them, which runs as a forwarding peer's mix).

Each session's requests (template tokens replaced by fixed values) are run
together and cut, at step boundaries, into seeds of about SEED_LEN bytes;
a step larger than MAX_LEN (a big data block) is left out. Files are named
by their SHA-1, so reruns give the same corpus.

    python3 tests/fuzz/make_corpus.py

rewrites tests/fuzz/corpus/. Rerun it after refreshing the transcripts.
"""

import hashlib
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TRANSCRIPTS = os.path.join(HERE, "..", "golden", "transcripts")
BINARY = os.path.join(HERE, "..", "golden", "binary")
CORPUS = os.path.join(HERE, "corpus")
MAX_LEN = 4096   # keep in step with -max_len in run.sh
SEED_LEN = 1024

TOKEN_RE = re.compile(rb"\$(\$|CAS|NOW(?:[+-][0-9]+)?|FILL\([0-9]+\))")


def expand(tmpl):
    def rep(m):
        tok = m.group(1)
        if tok == b"$":
            return b"$"
        if tok == b"CAS":
            return b"1"
        if tok.startswith(b"NOW"):
            off = int(tok[3:]) if len(tok) > 3 else 0
            return str(1700000000 + off).encode()
        n = int(tok[5:-1])
        return (b"abcdefghijklmnopqrstuvwxyz" * (n // 26 + 1))[:n]
    return TOKEN_RE.sub(rep, tmpl)


def steps(path):
    """The template of every step of one transcript."""
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    out = []

    def line():
        nonlocal pos
        end = data.index(b"\n", pos)
        text = data[pos:end]
        pos = end + 1
        return text

    def block(tag):
        nonlocal pos
        head = line().split(b" ")
        if head[0] != tag:
            raise ValueError("%s: expected %r" % (path, tag))
        n = int(head[1])
        body = data[pos:pos + n]
        pos += n + 1
        return body

    for _ in range(3):
        line()
    while True:
        text = line()
        if text == b"end":
            break
        if text.startswith(b"step "):
            out.append(block(b"tmpl"))
            block(b"sent")
            block(b"reply")
    return out


def binary_steps(path):
    """(kind, sent bytes) of every step of a binary transcript."""
    with open(path, "rb") as f:
        data = f.read()
    out, pos = [], data.index(b"\nstep ") + 1
    while pos < len(data):
        end = data.index(b"\n", pos)
        kind = data[pos:end].split(b" ")[2]
        pos = end + 1
        blocks = []
        for _ in range(2):
            end = data.index(b"\n", pos)
            n = int(data[pos:end].split(b" ")[1])
            blocks.append(data[end + 1:end + 1 + n])
            pos = end + 2 + n
        out.append((kind, blocks[0]))
    return out


def main():
    seeds = set()
    for name in sorted(os.listdir(TRANSCRIPTS)):
        if not name.endswith(".tr"):
            continue
        reqs = [expand(t) for t in steps(os.path.join(TRANSCRIPTS, name))]
        run = b""
        for r in reqs:
            if len(r) > MAX_LEN:
                continue
            if run and len(run) + len(r) > SEED_LEN:
                seeds.add(run)
                run = b""
            run += r
        if run:
            seeds.add(run)

    for name in sorted(os.listdir(BINARY)):
        if not name.endswith(".btr"):
            continue
        bin_run, mixed = b"", b"\x01"
        for kind, sent in binary_steps(os.path.join(BINARY, name)):
            if len(sent) > MAX_LEN:
                continue
            if kind == b"bin" and len(bin_run) + len(sent) <= SEED_LEN:
                bin_run += sent
            if len(mixed) + len(sent) + 6 <= SEED_LEN:
                mixed += sent + b"mn\r\n"
        for seed in (bin_run, mixed):
            if len(seed) > 1:
                seeds.add(seed)

    os.makedirs(CORPUS, exist_ok=True)
    for f in os.listdir(CORPUS):
        os.unlink(os.path.join(CORPUS, f))
    for s in seeds:
        with open(os.path.join(CORPUS, hashlib.sha1(s).hexdigest()),
                  "wb") as f:
            f.write(s)
    print("%d seeds, %d bytes" % (len(seeds), sum(len(s) for s in seeds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

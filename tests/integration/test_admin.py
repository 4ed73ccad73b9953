# SPDX-License-Identifier: BSD-3-Clause
"""Bad input on the admin endpoint: malformed HTTP, huge headers, a wrong
or missing token, unknown paths and methods. Each gets a clear error (a
status, and a JSON error where the endpoint answers itself), is counted
where it is refused for its token, and the node keeps serving both its
memcached port and its endpoint.

The endpoint listens on loopback with a token, as it must off loopback;
that it refuses to start off loopback without one is checked last.
"""

import json
import socket
import sys
import urllib.error
import urllib.request

sys.dont_write_bytecode = True

import harness  # noqa: E402
from harness import check

TOKEN = "s3cret-token"


def raw(port, data, timeout=10):
    """Sends bytes, returns what comes back until the server closes."""
    s = socket.create_connection(("127.0.0.1", port), timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def request(port, path, token=None, method="GET"):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                 method=method)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def status_of(reply):
    line = reply.split(b"\r\n", 1)[0]
    parts = line.split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def error_json(body):
    try:
        return json.loads(body)["error"]
    except (ValueError, KeyError):
        harness.fail("not a JSON error: %r" % body[:200])


def serving(srv, admin):
    with srv.connect() as c:
        c.send(b"set alive 0 0 2\r\nok\r\nget alive\r\n")
        check(c.readline() == b"STORED\r\n", "memcached port serves")
        check(c.readline() == b"VALUE alive 0 2\r\n", "get after bad input")
        c.read_until(b"END\r\n")
    st, body = request(admin, "/v1/members", TOKEN)
    check(st == 200, "endpoint serves: %d %r" % (st, body[:100]))


def bad_input():
    admin = harness.free_port()
    srv = harness.Server("memlaned", threads=2, extra=(
        "--admin", "127.0.0.1:%d" % admin, "--admin-token", TOKEN))
    with srv:
        st, body = request(admin, "/v1/members")
        check(st == 401, "no token: %d" % st)
        check("token" in error_json(body), "401 says why: %r" % body)
        st, body = request(admin, "/v1/stats", "wrong")
        check(st == 401, "wrong token: %d" % st)
        st, body = request(admin, "/metrics", TOKEN[:-1])
        check(st == 401, "a prefix of the token: %d" % st)
        st, body = request(admin, "/v1/stats", TOKEN)
        check(st == 200, "right token: %d" % st)
        check(json.loads(body)["admin"]["unauthorized"] == 3,
              "refusals counted: %r" % json.loads(body)["admin"])
        st, body = request(admin, "/metrics", TOKEN)
        check(b"memlane_admin_unauthorized_total 3" in body,
              "refusals in /metrics")
        serving(srv, admin)

        st, body = request(admin, "/v1/nothing", TOKEN)
        check(st == 404 and "no such path" in error_json(body),
              "unknown path: %d %r" % (st, body))
        st, body = request(admin, "/", TOKEN)
        check(st == 404, "/: %d" % st)
        st, body = request(admin, "/v1/members", TOKEN, method="DELETE")
        check(st == 405 and "GET" in error_json(body), "wrong method: %d %r"
              % (st, body))
        st, body = request(admin, "/v1/drain", TOKEN, method="GET")
        check(st == 405, "GET of drain: %d" % st)
        st, body = request(admin, "/v1/weight?value=abc", TOKEN, "POST")
        check(st == 400, "weight abc: %d %r" % (st, body))
        st, body = request(admin, "/v1/weight?value=0", TOKEN, "POST")
        check(st == 409, "the only member to weight 0: %d %r" % (st, body))
        st, body = request(admin, "/v1/digest?member=7", TOKEN)
        check(st == 404, "digest of no member: %d %r" % (st, body))
        st, body = request(admin, "/v1/digest?lo=9&hi=3", TOKEN)
        check(st == 400, "digest lo > hi: %d" % st)
        st, body = request(admin, "/v1/digest?member=0&lo=1&hi=2", TOKEN)
        check(st == 400, "digest member and range: %d" % st)
        st, body = request(admin, "/v1/join", TOKEN, "POST")
        check(st == 501 and "gossip" in error_json(body),
              "join is reserved: %d %r" % (st, body))
        serving(srv, admin)

        # malformed HTTP: the library answers 400 and closes
        for junk in (b"\x00\x01\x02garbage\r\n\r\n",
                     b"GET\r\n\r\n",
                     b"GET /v1/members HTTP/9.9\r\nHost: x\r\n\r\n",
                     b"GET /v1/members HTTP/1.1\r\nNo colon here\r\n\r\n"):
            r = raw(admin, junk)
            st = status_of(r)
            check(st is None or 400 <= st < 600,
                  "malformed %r: %r" % (junk, r[:100]))
        # huge headers: past the endpoint's bound
        big = b"GET /v1/members HTTP/1.1\r\nHost: x\r\nX-Big: " + \
            b"a" * (256 * 1024) + b"\r\n\r\n"
        r = raw(admin, big)
        st = status_of(r)
        check(st in (400, 413, 431) or r == b"",
              "huge header: %r" % r[:100])
        many = b"GET /v1/members HTTP/1.1\r\nHost: x\r\n" + \
            b"".join(b"X-H%d: v\r\n" % i for i in range(5000)) + b"\r\n"
        r = raw(admin, many)
        check(status_of(r) in (400, 413, 431) or r == b"",
              "many headers: %r" % r[:100])
        # a request line without an end, then the client leaves
        s = socket.create_connection(("127.0.0.1", admin), 5)
        s.sendall(b"GET /v1/mem")
        s.close()
        serving(srv, admin)


def memlanectl_cli():
    """--help for every subcommand, exit 2 for a usage error, exit 1
    and a clear message when the node cannot be reached."""
    import os
    import subprocess

    def run(*args):
        return subprocess.run([os.environ["MEMLANECTL"]] + list(args),
                              capture_output=True, timeout=30)

    for cmd in ("members", "ring", "stats", "digest", "weight", "drain",
                "join", "leave"):
        r = run(cmd, "--help")
        check(r.returncode == 0 and b"usage: memlanectl" in r.stdout and
              cmd.encode() in r.stdout, "%s --help: %r" % (cmd, r))
    r = run("bogus")
    check(r.returncode == 2 and b"unknown command" in r.stderr,
          "an unknown command: %r" % r.stderr)
    r = run("weight")
    check(r.returncode == 2, "weight without a weight: %r" % r.stderr)
    port = harness.free_port()
    r = run("-s", "127.0.0.1:%d" % port, "members")
    check(r.returncode == 1 and b"127.0.0.1:%d" % port in r.stderr,
          "an unreachable node: exit %d %r" % (r.returncode, r.stderr))


def refused_off_loopback():
    out = harness.Server("memlaned", extra=("--admin", "0.0.0.0:1"))
    try:
        out.start()
        harness.fail("memlaned started with an admin endpoint off "
                     "loopback and no token")
    except harness.TestFailure as e:
        check("--admin-token" in str(e), "the refusal says why: %s" % e)


if __name__ == "__main__":
    if harness.target_is_memcached():
        sys.exit(harness.SKIP)
    harness.run_checks([bad_input, memlanectl_cli, refused_off_loopback])

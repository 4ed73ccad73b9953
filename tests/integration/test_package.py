# SPDX-License-Identifier: BSD-3-Clause
"""The Debian package and the service, as an administrator meets them.

  package_builds_and_installs
      `make deb` builds the package and lintian finds no error in it
      (make deb fails otherwise). The package is then installed with dpkg
      into a copy-on-write copy of this system (an overlay of / in a
      mount and network namespace of the test's own, so the host is not
      touched), where:
        - the unit passes systemd-analyze verify;
        - memlaned, memlanectl, memlane-bench, the unit and
          /etc/memlaned.conf are where the package says, the config a
          conffile, and the memlane user made by the package;
        - the unit's ExecStart, run as systemd would run it, serves
          memcached clients on 127.0.0.1:11211 as user memlane, and stops
          with exit 0 on the unit's stop signal (SIGTERM).

  install_with_prefix_and_destdir
      `make install PREFIX=/opt/ml DESTDIR=...`, in a build directory of
      its own: the binaries, the unit (its ExecStart naming the prefix's
      binary and options file) and the options file land under DESTDIR
      and the prefix.

Needs root, dpkg-buildpackage, lintian and unshare; skipped otherwise.
"""

import glob
import os
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True

import harness  # noqa: E402
from harness import check, show  # noqa: E402

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

INSTALL_SCRIPT = r"""
set -e
T="$WORK"
mkdir -p "$T/upper" "$T/work" "$T/root"
mount -t overlay overlay -o lowerdir=/,upperdir="$T/upper",workdir="$T/work" "$T/root"
mount -t proc proc "$T/root/proc"
mount --rbind /dev "$T/root/dev"
mount --rbind /sys "$T/root/sys"
mount -t tmpfs tmpfs "$T/root/run"
mount -t tmpfs tmpfs "$T/root/tmp"
cp "$DEB" "$T/root/tmp/memlane.deb"
chroot "$T/root" /bin/sh -e <<'EOF'
dpkg -i /tmp/memlane.deb >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; exit 1; }
echo "VERIFY $(systemd-analyze verify /lib/systemd/system/memlaned.service 2>&1 | grep -v -e 'Failed to' -e 'cgroup' | wc -l)"
systemd-analyze verify /lib/systemd/system/memlaned.service 2>&1 | sed 's/^/  verify: /'
for f in /usr/bin/memlaned /usr/bin/memlanectl /usr/bin/memlane-bench \
         /lib/systemd/system/memlaned.service /etc/memlaned.conf; do
    [ -e "$f" ] && echo "HAS $f"
done
grep -qx /etc/memlaned.conf /var/lib/dpkg/info/memlane.conffiles && echo CONFFILE
id memlane >/dev/null && echo USER
ip link set lo up
cmd=$(sed -n 's/^ExecStart=//p' /lib/systemd/system/memlaned.service)
echo "EXEC $cmd"
$cmd >/tmp/memlaned.log 2>&1 &
pid=$!
for i in $(seq 100); do
    /usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1', 11211), 1)" 2>/dev/null && break
    sleep 0.1
done
/usr/bin/python3 -c "
from pymemcache.client.base import Client
c = Client(('127.0.0.1', 11211))
c.set('pkg', 'installed', noreply=False)
print('GOT', c.get('pkg').decode())
" || cat /tmp/memlaned.log
echo "RUNS_AS $(ps -o user= -p $pid)"
kill -TERM $pid
wait $pid && echo "STOPPED 0" || echo "STOPPED $?"
cat /tmp/memlaned.log | sed 's/^/  log: /'
EOF
"""


def package_builds_and_installs():
    if os.geteuid() != 0:
        return harness.SKIP
    for tool in ("dpkg-buildpackage", "lintian", "unshare", "chroot"):
        if not shutil.which(tool):
            print("   %s is missing" % tool)
            return harness.SKIP
    p = subprocess.run(["make", "-C", SRC, "--no-print-directory", "deb"],
                       capture_output=True, text=True, timeout=1800)
    check(p.returncode == 0, "make deb failed (%d):\n%s\n%s"
          % (p.returncode, p.stdout[-3000:], p.stderr[-3000:]))
    debs = glob.glob(os.path.join(SRC, "build-deb", "memlane_*.deb"))
    check(len(debs) == 1, "make deb made %r" % debs)
    lint = [x for x in p.stdout.splitlines() if x[:2] in ("E:", "W:")]
    print("   lintian: %d errors, %d warnings"
          % (sum(x.startswith("E:") for x in lint),
             sum(x.startswith("W:") for x in lint)))
    work = tempfile.mkdtemp()
    try:
        env = dict(os.environ, WORK=work, DEB=debs[0])
        r = subprocess.run(["unshare", "--mount", "--net", "--fork",
                            "--propagation", "private", "sh", "-c",
                            INSTALL_SCRIPT], capture_output=True,
                           text=True, env=env, timeout=300)
        out = r.stdout
        check(r.returncode == 0, "installing: rc %d\n%s\n%s"
              % (r.returncode, out[-3000:], r.stderr[-3000:]))
        check("VERIFY 0" in out, "systemd-analyze verify: %s" % show(out))
        for f in ("/usr/bin/memlaned", "/usr/bin/memlanectl",
                  "/usr/bin/memlane-bench",
                  "/lib/systemd/system/memlaned.service",
                  "/etc/memlaned.conf"):
            check("HAS %s" % f in out, "the package has no %s" % f)
        check("CONFFILE" in out, "/etc/memlaned.conf is not a conffile")
        check("USER" in out, "the package made no memlane user")
        check("GOT installed" in out, "the service did not serve: %s"
              % show(out))
        check("RUNS_AS memlane" in out, "the service does not run as "
              "memlane: %s" % show(out))
        check("STOPPED 0" in out, "the service did not stop with exit 0: "
              "%s" % show(out))
    finally:
        subprocess.run(["rm", "-rf", work])


def install_with_prefix_and_destdir():
    tmp = tempfile.mkdtemp()
    try:
        dest = os.path.join(tmp, "dest")
        p = subprocess.run(["make", "-C", SRC, "--no-print-directory",
                            "install", "BUILD=" + os.path.join(tmp, "b"),
                            "PREFIX=/opt/ml", "DESTDIR=" + dest],
                           capture_output=True, text=True, timeout=1800)
        check(p.returncode == 0, "make install failed (%d):\n%s\n%s"
              % (p.returncode, p.stdout[-3000:], p.stderr[-3000:]))
        for f in ("bin/memlaned", "bin/memlanectl", "bin/memlane-bench",
                  "lib/systemd/system/memlaned.service", "etc/memlaned.conf"):
            check(os.path.exists(os.path.join(dest, "opt/ml", f)),
                  "make install put no %s under DESTDIR/PREFIX" % f)
        with open(os.path.join(dest, "opt/ml/lib/systemd/system/"
                               "memlaned.service")) as f:
            unit = f.read()
        check("ExecStart=/opt/ml/bin/memlaned --config "
              "/opt/ml/etc/memlaned.conf" in unit,
              "the unit does not name the prefix: %s" % show(unit))
        rc = subprocess.run([os.path.join(dest, "opt/ml/bin/memlaned"),
                             "--version"], capture_output=True, text=True)
        check(rc.returncode == 0 and rc.stdout.startswith("memlaned "),
              "the installed memlaned: %s" % show(rc.stdout))
    finally:
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    harness.run_checks([package_builds_and_installs,
                        install_with_prefix_and_destdir])

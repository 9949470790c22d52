#!/usr/bin/env python3
"""Tests of the Debian package: `make deb` builds it, it holds the binary,
the man page and the systemd unit, and lintian finds no errors.

Run:  python3 tests/integration/test_deb.py [NAME-SUBSTRING ...]
Needs: dpkg-dev and debhelper (else every test is skipped, with the apt-get
       line to run), lintian (else the lintian test is skipped), and the
       build dependencies in debian/control (dpkg-buildpackage checks them).
Env:   KEEP_TMP=1 (keep the temp dir with the unpacked package)
Prints "ok NAME" / "FAIL NAME: reason" / "skip NAME: reason" per test; last
line "N passed, N failed"; exit 1 if any test failed.  Standard library
only; builds in a temporary copy of the tree and starts no daemon.
"""

import glob
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

from harness import REPO, Runner, TestFailure, TestSkip, check, eq, make_tmp, timeout  # noqa: E402

R = Runner(default_timeout=120)

UNIT = "./lib/systemd/system/goproxyd.service"
SOCKET_UNIT = "./lib/systemd/system/goproxyd.socket"
BINARY = "./usr/sbin/goproxyd"
MANPAGE = "./usr/share/man/man8/goproxyd.8.gz"
NEED = "apt-get install -y dpkg-dev debhelper lintian"


class Ctx:
    tmp = None
    deb = None          # path of the built goproxyd_*.deb
    build_error = None  # why `make deb` failed, reported by every test after it
    listing = None      # dpkg-deb -c output
    root = None         # the package unpacked with dpkg-deb -x


C = Ctx()


def run(args, timeout_s=60, cwd=None, env=None):
    """Run a command; returns (rc, stdout+stderr as text)."""
    try:
        p = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, cwd=cwd, env=env, timeout=timeout_s)
    except FileNotFoundError as e:
        raise TestFailure("cannot run %s: %s" % (args[0], e))
    except subprocess.TimeoutExpired:
        raise TestFailure("%s did not finish within %ds" % (" ".join(args), timeout_s))
    return p.returncode, p.stdout.decode("utf-8", "replace")


def tail(text, n=1500):
    text = text.strip()
    return text if len(text) <= n else "..." + text[-n:]


def need_tools():
    missing = [t for t in ("dpkg-buildpackage", "dh", "dpkg-deb") if shutil.which(t) is None]
    if missing:
        raise TestSkip("%s not installed; run: %s" % (", ".join(missing), NEED))


def need_deb():
    need_tools()
    if C.build_error:
        raise TestFailure("no package: %s" % C.build_error)
    check(C.deb is not None, "no package (test_make_deb did not run)")


def parent_leftovers():
    """Build products dpkg-buildpackage would leave next to the tree."""
    parent = os.path.dirname(REPO)
    return sorted(glob.glob(os.path.join(parent, "goproxyd_*")) +
                  glob.glob(os.path.join(parent, "goproxyd-dbgsym_*")))


# Paths debhelper creates in debian/ during a build.
DEBIAN_PRODUCTS = ["debian/goproxyd", "debian/.debhelper", "debian/files", "debian/goproxyd.substvars",
                   "debian/debhelper-build-stamp", "debian/goproxyd.debhelper.log",
                   "debian/goproxyd.postinst.debhelper", "debian/tmp"]


# =================================================================== tests

@timeout(300)
def test_make_deb():
    need_tools()
    before = parent_leftovers()
    for old in glob.glob(os.path.join(REPO, "build", "deb", "goproxyd_*.deb")):
        os.unlink(old)
    env = dict(os.environ)
    env.pop("MAKEFLAGS", None)      # a parent `make check -j` must not leak in
    env.pop("MAKELEVEL", None)
    rc, out = run(["make", "--no-print-directory", "deb"], timeout_s=280, cwd=REPO, env=env)
    if rc != 0:
        C.build_error = "make deb exited %d: %s" % (rc, tail(out, 600).replace("\n", " | "))
        raise TestFailure("make deb exited %d:\n%s" % (rc, tail(out)))
    debs = glob.glob(os.path.join(REPO, "build", "deb", "goproxyd_*.deb"))
    if len(debs) != 1:
        C.build_error = "build/deb/ holds %s" % debs
        raise TestFailure("want one build/deb/goproxyd_*.deb after make deb, found %s\n%s" % (debs, tail(out)))
    C.deb = debs[0]
    left = [p for p in DEBIAN_PRODUCTS if os.path.lexists(os.path.join(REPO, p))]
    check(not left, "make deb left build products in the tree: %s" % left)
    eq(parent_leftovers(), before, "files named goproxyd_* next to the source tree")


def test_deb_fields():
    need_deb()
    rc, out = run(["dpkg-deb", "-f", C.deb, "Package", "Version", "Architecture", "Depends"])
    eq(rc, 0, "dpkg-deb -f status")
    f = dict(line.split(": ", 1) for line in out.strip().split("\n") if ": " in line)
    eq(f.get("Package"), "goproxyd", "Package")
    check(re.match(r"^0\.1\.0(-\d+)?$", f.get("Version", "")), "Version %r" % f.get("Version"))
    deps = f.get("Depends", "")
    for lib in ("libc6", "libcurl4", "libmicrohttpd12", "libcjson1", "libzip4", "libssl3", "libsystemd0"):
        check(re.search(r"(^|, )%s[ ,(]|(^|, )%s$" % (lib, lib), deps),
              "Depends lacks %s (shlibs not computed?): %r" % (lib, deps))
    # export/import dlopen() it, so shlibs cannot see it (src/archivelib.c).
    check(re.search(r"(^|, )libarchive13($|[ ,])", deps), "Depends lacks libarchive13: %r" % deps)


def test_deb_contents():
    need_deb()
    rc, out = run(["dpkg-deb", "-c", C.deb])
    eq(rc, 0, "dpkg-deb -c status (%s)" % tail(out, 300))
    C.listing = out
    entries = {}
    for line in out.strip().split("\n"):
        parts = line.split()
        if len(parts) >= 6:
            entries[parts[5]] = parts[0]
    for path, mode in ((BINARY, "-rwxr-xr-x"), (MANPAGE, "-rw-r--r--"), (UNIT, "-rw-r--r--"),
                       (SOCKET_UNIT, "-rw-r--r--")):
        check(path in entries, "%s not in the package; contents:\n%s" % (path, out))
        eq(entries[path], mode, "mode of %s" % path)
    local = [p for p in entries if p.startswith("./usr/local")]
    eq(local, [], "files under /usr/local")
    etc = [p for p in entries if p.startswith("./etc/") and p != "./etc/"]
    eq(etc, [], "files under /etc (the package ships no configuration)")


def unpack():
    if C.root is None:
        C.tmp = C.tmp or make_tmp("goproxyd-deb-", R)
        root = os.path.join(C.tmp, "root")
        rc, out = run(["dpkg-deb", "-x", C.deb, root])
        eq(rc, 0, "dpkg-deb -x status (%s)" % tail(out, 300))
        ctl = os.path.join(C.tmp, "control")
        rc, out = run(["dpkg-deb", "-e", C.deb, ctl])
        eq(rc, 0, "dpkg-deb -e status (%s)" % tail(out, 300))
        C.root = root
    return C.root


def test_deb_unit():
    need_deb()
    root = unpack()
    with open(os.path.join(root, UNIT), encoding="utf-8") as f:
        unit = f.read()
    starts = [l for l in unit.split("\n") if l.startswith("ExecStart=")]
    eq(len(starts), 1, "ExecStart= lines in the packaged unit")
    check(starts[0].startswith("ExecStart=/usr/sbin/goproxyd "), "ExecStart is %r" % starts[0])
    usr_local = [l for l in unit.split("\n") if "/usr/local" in l and not l.startswith("#")]
    eq(usr_local, [], "lines of the packaged unit naming /usr/local")
    check("DynamicUser=yes" in unit, "the packaged unit lost DynamicUser=yes")
    # dh_installsystemd enables and starts it; nothing else runs at install.
    ctl = os.path.join(C.tmp, "control")
    postinst = os.path.join(ctl, "postinst")
    check(os.path.exists(postinst), "no postinst: dh_installsystemd did not see the unit")
    with open(postinst, encoding="utf-8") as f:
        text = f.read()
    check("deb-systemd-helper enable 'goproxyd.service'" in text or
          'deb-systemd-helper enable "goproxyd.service"' in text,
          "postinst does not enable goproxyd.service:\n%s" % text)
    # The socket unit is shipped for socket activation, but not enabled.
    check("goproxyd.socket" not in text, "postinst touches goproxyd.socket:\n%s" % text)
    for script in glob.glob(os.path.join(ctl, "p*")):
        with open(script, encoding="utf-8", errors="replace") as f:
            s = f.read()
        for bad in ("useradd", "adduser", "mkdir", "chown"):
            check(bad not in s, "%s runs %s: the package must create nothing by hand" % (
                os.path.basename(script), bad))
    sa = shutil.which("systemd-analyze")
    if sa:
        # verify needs the ExecStart binary to exist: point it at the unpacked one.
        local = os.path.join(C.tmp, "goproxyd.service")
        with open(local, "w", encoding="utf-8") as f:
            f.write(unit.replace("/usr/sbin/goproxyd", os.path.join(root, "usr/sbin/goproxyd")))
        # The socket unit beside it: verify checks that its service exists.
        shutil.copy(os.path.join(root, SOCKET_UNIT), os.path.join(C.tmp, "goproxyd.socket"))
        # --man=no: goproxyd(8) is not installed on this machine, only unpacked.
        for name in ("goproxyd.service", "goproxyd.socket"):
            rc, out = run([sa, "verify", "--man=no", os.path.join(C.tmp, name)], timeout_s=60)
            eq(rc, 0, "systemd-analyze verify of the packaged %s (%s)" % (name, tail(out, 600)))


def test_deb_binary_runs():
    need_deb()
    root = unpack()
    rc, out = run([os.path.join(root, "usr/sbin/goproxyd"), "-version"], timeout_s=10)
    eq(rc, 0, "exit status of the packaged goproxyd -version (%s)" % tail(out, 300))
    rc2, ver = run(["dpkg-deb", "-f", C.deb, "Version"])
    upstream = ver.strip().split("-")[0]
    eq(out.strip(), "goproxyd %s" % upstream, "packaged goproxyd -version vs package Version")
    if shutil.which("man"):
        rc, text = run(["man", "-l", os.path.join(root, MANPAGE)], timeout_s=30,
                       env=dict(os.environ, MANPAGER="cat", PAGER="cat", MANWIDTH="80"))
        eq(rc, 0, "man -l of the packaged man page (%s)" % tail(text, 300))
        check("goproxyd" in text and "SYNOPSIS" in text, "packaged man page renders as %r" % text[:200])


@timeout(180)
def test_lintian():
    need_deb()
    if shutil.which("lintian") is None:
        raise TestSkip("lintian not installed; run: apt-get install -y lintian")
    rc, out = run(["lintian", "--no-tag-display-limit", C.deb], timeout_s=170)
    errors = [l for l in out.split("\n") if l.startswith("E:")]
    eq(errors, [], "lintian errors")
    warnings = [l for l in out.split("\n") if l.startswith("W:")]
    if warnings:
        print("# lintian warnings:\n# " + "\n# ".join(warnings), flush=True)
    # 0: no error tags; 1: error tags; 2: lintian itself failed.
    eq(rc, 0, "lintian exit status (output:\n%s)" % tail(out))


TESTS = [test_make_deb, test_deb_fields, test_deb_contents, test_deb_unit, test_deb_binary_runs,
         test_lintian]


def main(argv):
    return R.run(TESTS, only=argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

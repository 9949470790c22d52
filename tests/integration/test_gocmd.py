#!/usr/bin/env python3
"""goproxyd with the real go command (Go 1.19+, `go` on PATH).

Run:  python3 tests/integration/test_gocmd.py [NAME-SUBSTRING ...]
Env:  GOPROXYD=path/to/binary (default ./build/goproxyd), KEEP_TMP=1
The tests build on each other (direct download first, then a cold goproxyd
cache, then upstream stopped, file:// and seeding); a failed step makes the
dependent ones fail with "needs ...".  Every go invocation is hermetic: HOME,
GOPATH, GOMODCACHE, GOCACHE in temp dirs, GOSUMDB=off, GOFLAGS=-mod=mod
-modcacherw, GOPROXY only ever 127.0.0.1 or file://.  Last line "N passed, N failed".
"""

import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import fakeupstream  # noqa: E402
import mkmodules  # noqa: E402
from harness import Daemon, Runner, TestFailure, check, eq, get, make_tmp, tmp_leftovers  # noqa: E402

GO_TIMEOUT = 240
R = Runner(default_timeout=600)


class Ctx:
    tmp = None
    tree = None
    info = None
    up = None
    daemons = []
    n = 0
    direct_gosum = None       # go.sum text from the direct (fake upstream) build
    direct_modcache = None    # GOMODCACHE of that build
    cache = None              # goproxyd cacheDir filled by the cold run
    cold_ok = False


C = Ctx()


def setup():
    C.tmp = make_tmp("goproxyd-go-", R)
    C.tree = os.path.join(C.tmp, "tree")
    C.info = mkmodules.generate(C.tree)
    C.up = fakeupstream.FakeUpstream(C.tree).start()
    R.cleanups.append(lambda: C.up.stop())
    R.cleanups.append(stop_daemons)


def stop_daemons():
    while C.daemons:
        C.daemons.pop().stop(timeout=10)


def newdir(name):
    C.n += 1
    d = os.path.join(C.tmp, "%02d-%s" % (C.n, name))
    os.makedirs(d)
    return d


def daemon(cache, proxy, extra=()):
    d = Daemon(cache, proxy, extra, workdir=os.path.dirname(cache))
    C.daemons.append(d)
    return d.start()


def go_build(goproxy, name):
    """Fresh GOMODCACHE + fresh app copy: go mod download; go build.
    Returns (workdir, go.sum text, gomodcache)."""
    wd = newdir(name)
    app = mkmodules.write_app(os.path.join(wd, "app"))
    modcache = os.path.join(wd, "gomodcache")
    env = mkmodules.go_env(wd, goproxy, modcache)
    env["GOCACHE"] = os.path.join(C.tmp, "gocache")   # build cache may be shared
    for args in (["mod", "download"], ["build", "-o", os.path.join(wd, "app.bin"), "."]):
        rc, out = mkmodules.run_go(args, app, env, GO_TIMEOUT)
        if rc != 0:
            raise TestFailure("go %s (GOPROXY=%s) failed (exit status %s): %s"
                              % (" ".join(args), goproxy, rc, out.strip().replace("\n", " | ")[-700:]))
    check(os.path.isfile(os.path.join(wd, "app.bin")), "go build produced no binary")
    with open(os.path.join(app, "go.sum")) as f:
        gosum = f.read()
    return wd, gosum, modcache


def check_gosum(gosum, what):
    got = mkmodules.parse_gosum(gosum)
    for k, h in got.items():
        eq(h, C.info["sums"].get(k), "%s: go.sum hash of %s" % (what, k))
    for m, v in mkmodules.APP_GO_MOD_REQUIRES:
        check("%s %s" % (m, v) in got, "%s: go.sum lacks %s %s" % (what, m, v))


def same_gosum(gosum, what):
    if C.direct_gosum is None:
        raise TestFailure("needs test_direct_download (no reference go.sum)")
    if gosum != C.direct_gosum:
        a, b = set(gosum.splitlines()), set(C.direct_gosum.splitlines())
        raise TestFailure("%s: go.sum differs from the direct download: extra %s, missing %s"
                          % (what, sorted(a - b), sorted(b - a)))


# =================================================================== tests

def test_direct_download():
    """Reference: the go command straight against the fake upstream."""
    C.up.reset()
    wd, gosum, modcache = go_build(C.up.url, "direct")
    check_gosum(gosum, "direct")
    C.direct_gosum = gosum
    C.direct_modcache = modcache


def test_cold_cache_through_goproxyd():
    C.up.reset()
    C.cache = os.path.join(newdir("goproxyd-cache"), "cache")
    d = daemon(C.cache, C.up.url)
    wd, gosum, _ = go_build(d.url, "via-goproxyd-cold")
    check_gosum(gosum, "via goproxyd (cold)")
    same_gosum(gosum, "via goproxyd (cold)")
    stats = C.up.stats()
    check(stats, "fake upstream saw no requests")
    many = {p: n for p, n in stats.items() if n > 1}
    check(not many, "files fetched from upstream more than once: %s" % many)
    # everything the go command needed is now in the cache, byte-identical
    for m, v in mkmodules.APP_GO_MOD_REQUIRES:
        for kind in ("info", "mod", "zip"):
            rel = mkmodules.rel(m, v, kind)
            f = os.path.join(C.cache, rel)
            check(os.path.isfile(f), "%s not in goproxyd cache" % rel)
            with open(f, "rb") as fh:
                check(fh.read() == C.info["files"][rel], "%s in goproxyd cache differs from upstream" % rel)
    check(not tmp_leftovers(C.cache), "temp files left in the cache: %s" % tmp_leftovers(C.cache))
    C.cold_ok = True
    # keep the daemon running for the next test


def test_cached_only_with_go():
    """GOPROXY=http://mirror/cached-only (proxy.golang.org's form) builds
    from the filled cache and asks the upstream nothing."""
    if not C.cold_ok:
        raise TestFailure("needs test_cold_cache_through_goproxyd")
    C.up.reset()
    d = C.daemons[-1]
    wd, gosum, _ = go_build(d.url + "/cached-only", "via-cached-only")
    same_gosum(gosum, "GOPROXY=.../cached-only")
    eq(C.up.stats(), {}, "upstream requests under /cached-only")


def test_path_prefix():
    """-pathPrefix /mirror/go: GOPROXY=http://host:port/mirror/go works with
    a cold cache; paths outside the prefix are 404 with the reason."""
    C.up.reset()
    d = daemon(os.path.join(newdir("prefix"), "cache"), C.up.url, ["-pathPrefix", "/mirror/go/"])
    wd, gosum, _ = go_build(d.url + "/mirror/go", "via-prefix")
    same_gosum(gosum, "GOPROXY=.../mirror/go")
    m, v = mkmodules.APP_GO_MOD_REQUIRES[0]
    inside = "/mirror/go/" + mkmodules.rel(m, v, "info")
    eq(get(d.port, inside).status, 200, "GET %s" % inside)
    eq(get(d.port, "/mirror/go/healthz").status, 200, "GET /mirror/go/healthz")
    for path in ("/" + mkmodules.rel(m, v, "info"), "/mirror/gox/" + mkmodules.rel(m, v, "info"),
                 "/mirror/go", "/healthz"):
        r = get(d.port, path)
        eq(r.status, 404, "GET %s outside the prefix" % path)
        check("under /mirror/go/" in r.text(), "GET %s: body %r does not name the prefix" % (path, r.text()))
    C.daemons.remove(d)   # the cold run's daemon stays up for the next test
    eq(d.stop(timeout=10), 0, "exit status after SIGTERM")


def test_warm_cache_upstream_stopped():
    if not C.cold_ok:
        raise TestFailure("needs test_cold_cache_through_goproxyd")
    C.up.stop()      # nothing listens on the upstream port any more
    d = C.daemons[-1] if C.daemons and C.daemons[-1].alive() else daemon(C.cache, C.up.url)
    wd, gosum, _ = go_build(d.url, "via-goproxyd-warm")
    check_gosum(gosum, "via goproxyd (upstream stopped)")
    same_gosum(gosum, "via goproxyd (upstream stopped)")


def test_file_proxy_on_filled_cache():
    if not C.cold_ok:
        raise TestFailure("needs test_cold_cache_through_goproxyd")
    stop_daemons()
    wd, gosum, _ = go_build("file://" + os.path.abspath(C.cache), "file-proxy")
    check_gosum(gosum, "GOPROXY=file://cacheDir")
    same_gosum(gosum, "GOPROXY=file://cacheDir")


def test_seeded_from_gomodcache():
    if C.direct_modcache is None:
        raise TestFailure("needs test_direct_download")
    src = os.path.join(C.direct_modcache, "cache", "download")
    check(os.path.isdir(src), "%s missing" % src)
    cache = os.path.join(newdir("seeded"), "cache")
    shutil.copytree(src, cache)
    d = daemon(cache, "off")
    wd, gosum, _ = go_build(d.url, "via-goproxyd-seeded")
    check_gosum(gosum, "seeded cacheDir, -proxy off")
    same_gosum(gosum, "seeded cacheDir, -proxy off")
    check(d.alive(), "daemon died")


TESTS = [test_direct_download, test_cold_cache_through_goproxyd, test_cached_only_with_go, test_path_prefix, test_warm_cache_upstream_stopped,
         test_file_proxy_on_filled_cache, test_seeded_from_gomodcache]


def main(argv):
    if shutil.which("go") is None:
        print("FAIL setup: go not found on PATH")
        print("0 passed, 1 failed")
        return 1
    return R.main(setup, TESTS, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

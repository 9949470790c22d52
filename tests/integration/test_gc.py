#!/usr/bin/env python3
"""Integration tests for the disk cap: -cacheMaxSize and `goproxyd gc`.

Run:  python3 tests/integration/test_gc.py [NAME-SUBSTRING ...]
Env:  GOPROXYD=path/to/binary (default ./build/goproxyd), KEEP_TMP=1
Last line "N passed, N failed"; exit 1 if any failed.  Loopback only.
"""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import fakeupstream  # noqa: E402
import mkmodules  # noqa: E402
from harness import (Daemon, Runner, check, daemon_binary, eq, get, make_tmp,  # noqa: E402
                     run_binary, tmp_leftovers)

R = Runner(default_timeout=120)
KIB = 1024
# Three versions of one module, each with a 400 KiB incompressible file, so
# two fit under a 1 MiB cap and three do not.
MOD = "example.com/big"
VERSIONS = ["v1.0.0", "v1.1.0", "v1.2.0"]


class Ctx:
    tmp = None
    tree = None
    up = None
    n = 0


C = Ctx()


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def setup():
    C.tmp = make_tmp("goproxyd-gc-", R)
    C.tree = os.path.join(C.tmp, "tree")
    for v in VERSIONS:
        z = mkmodules.module_zip(MOD, v, {"go.mod": b"module %s\n" % MOD.encode(),
                                          "blob.bin": os.urandom(400 * KIB)}, stored=("blob.bin",))
        write(os.path.join(C.tree, mkmodules.rel(MOD, v, "zip")), z)
        write(os.path.join(C.tree, mkmodules.rel(MOD, v, "mod")), b"module %s\n" % MOD.encode())
        write(os.path.join(C.tree, mkmodules.rel(MOD, v, "info")),
              b'{"Version":"%s","Time":"2024-01-01T00:00:00Z"}' % v.encode())
    write(os.path.join(C.tree, MOD, "@v", "list"), "".join(v + "\n" for v in VERSIONS).encode())
    C.up = fakeupstream.FakeUpstream(C.tree).start()
    R.cleanups.append(C.up.stop)


def newcache():
    C.n += 1
    d = os.path.join(C.tmp, "c%02d" % C.n)
    os.makedirs(d)
    return os.path.join(d, "cache")


def zip_path(cache, v):
    return os.path.join(cache, mkmodules.rel(MOD, v, "zip"))


def cache_bytes(cache):
    total = 0
    for root, _, files in os.walk(cache):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def metric(port, name):
    for line in get(port, "/metrics").text().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def wait_for(cond, seconds=10):
    deadline = time.time() + seconds
    while not cond() and time.time() < deadline:
        time.sleep(0.1)
    return cond()


def test_cap_evicts_least_recently_used():
    d = Daemon(newcache(), C.up.url, ["-cacheMaxSize", "1M"]).start()
    try:
        for v in VERSIONS[:2]:
            eq(get(d.port, "/%s/@v/%s.zip" % (MOD, v)).status, 200, "fetch " + v)
            time.sleep(1.1)   # ages are in seconds
        # Use v1.0.0 again: v1.1.0 becomes the least recently used.
        eq(get(d.port, "/%s/@v/%s.zip" % (MOD, VERSIONS[0])).status, 200, "hit v1.0.0")
        time.sleep(1.1)
        eq(get(d.port, "/%s/@v/%s.zip" % (MOD, VERSIONS[2])).status, 200, "fetch v1.2.0")
        check(wait_for(lambda: not os.path.exists(zip_path(d.cache_dir, VERSIONS[1]))),
              "least recently used v1.1.0 was not evicted")
        check(os.path.exists(zip_path(d.cache_dir, VERSIONS[0])), "recently used v1.0.0 was evicted")
        check(os.path.exists(zip_path(d.cache_dir, VERSIONS[2])), "just fetched v1.2.0 was evicted")
        check(cache_bytes(d.cache_dir) <= 1024 * KIB, "cache still over the cap: %d bytes"
              % cache_bytes(d.cache_dir))
        # The thread counts once its pass is over.
        check(wait_for(lambda: (metric(d.port, "goproxyd_cache_evictions_total") or 0) >= 1),
              "no eviction counted")
        check(wait_for(lambda: metric(d.port, "goproxyd_cache_bytes") == float(cache_bytes(d.cache_dir))),
              "goproxyd_cache_bytes %s, files on disk %d bytes"
              % (metric(d.port, "goproxyd_cache_bytes"), cache_bytes(d.cache_dir)))
        # An evicted version is fetched again on demand, whole.
        before = C.up.count(r"v1\.1\.0\.zip")
        r = get(d.port, "/%s/@v/%s.zip" % (MOD, VERSIONS[1]))
        eq(r.status, 200, "refetch evicted v1.1.0")
        eq(C.up.count(r"v1\.1\.0\.zip"), before + 1, "upstream requests for the evicted zip")
        check(not tmp_leftovers(d.cache_dir), "temp files left")
    finally:
        d.stop()


def test_whole_versions_evicted():
    d = Daemon(newcache(), C.up.url, ["-cacheMaxSize", "1M"]).start()
    try:
        for v in VERSIONS:
            for kind in ("info", "mod", "zip"):
                eq(get(d.port, "/%s/@v/%s.%s" % (MOD, v, kind)).status, 200, "fetch %s %s" % (v, kind))
            time.sleep(1.1)
        wait_for(lambda: cache_bytes(d.cache_dir) <= 1024 * KIB)
        vdir = os.path.dirname(zip_path(d.cache_dir, VERSIONS[0]))
        for v in VERSIONS:
            present = [k for k in ("info", "mod", "zip")
                       if os.path.exists(os.path.join(vdir, "%s.%s" % (v, k)))]
            check(present in ([], ["info", "mod", "zip"]),
                  "version %s partly evicted: %s remain" % (v, present))
        check(not os.path.exists(zip_path(d.cache_dir, VERSIONS[0])), "oldest version kept")
    finally:
        d.stop()


def test_gc_command():
    cache = newcache()
    d = Daemon(cache, C.up.url).start()
    try:
        for v in VERSIONS:
            eq(get(d.port, "/%s/@v/%s.zip" % (MOD, v)).status, 200, "fill " + v)
    finally:
        d.stop()
    old = time.time() - 3600
    os.utime(zip_path(cache, VERSIONS[0]), (old, old))
    rc, out, err = run_binary([daemon_binary(), "gc", "-cacheDir", cache, "-cacheMaxSize", "1M"])
    eq(rc, 0, "gc exit status (stderr %r)" % err)
    check("evicted" in out, "gc output %r" % out)
    check(not os.path.exists(zip_path(cache, VERSIONS[0])), "gc kept the oldest version")
    check(cache_bytes(cache) <= 1024 * KIB, "gc left %d bytes" % cache_bytes(cache))
    rc, out, err = run_binary([daemon_binary(), "gc", "-cacheDir", cache])
    eq(rc, 2, "gc without -cacheMaxSize exit status")
    rc, out, err = run_binary([daemon_binary(), "-cacheMaxSize", "12Q"])
    eq(rc, 2, "bad -cacheMaxSize exit status")
    check("-cacheMaxSize" in err and len(err.strip().splitlines()) == 1, "bad size message %r" % err)


def test_symlinked_cache_dir():
    """systemd's CacheDirectory= under DynamicUser is a symlink: the start-up
    sweep, the size metrics and the cap must work through it."""
    base = os.path.dirname(newcache())
    real = os.path.join(base, "private", "cache")
    os.makedirs(real)
    link = os.path.join(base, "cache")
    os.symlink(real, link)
    stale = os.path.join(real, "example.com", ".goproxyd-tmp-999999999-0-x.zip")
    write(stale, b"partial")
    write(os.path.join(real, "example.com", "seeded", "@v", "v1.0.0.mod"), b"module example.com/seeded\n")
    d = Daemon(link, C.up.url, ["-cacheMaxSize", "1M"]).start()
    try:
        check(not os.path.exists(stale), "stale temp file survived the start-up sweep through the symlink")
        eq(metric(d.port, "goproxyd_cache_files"), 1.0, "goproxyd_cache_files of a seeded, symlinked cache")
        for v in VERSIONS:
            eq(get(d.port, "/%s/@v/%s.zip" % (MOD, v)).status, 200, "fetch " + v)
            time.sleep(1.1)
        check(wait_for(lambda: cache_bytes(real) <= 1024 * KIB), "cap not applied through the symlink: %d bytes"
              % cache_bytes(real))
    finally:
        d.stop()
    rc, out, err = run_binary([daemon_binary(), "verify", "-cacheDir", link, "-sumdb", "off"])
    eq(rc, 0, "verify through the symlink (stderr %r)" % err)
    check("skipped" in out and not out.startswith("verified 0, failed 0, skipped 0"),
          "verify found nothing through the symlink: %r" % out)


def test_foreign_temp_files():
    """On a shared cache, another host's temp file is in progress there: its
    pid means nothing here, so only an old one is removed."""
    cache = newcache()
    fresh = os.path.join(cache, "example.com", ".goproxyd-tmp-1.deadbeef-0-v1.0.0.zip")
    old = os.path.join(cache, "example.com", ".goproxyd-tmp-2.deadbeef-0-v1.0.1.zip")
    write(fresh, b"in progress elsewhere")
    write(old, b"abandoned")
    week = time.time() - 7 * 86400
    os.utime(old, (week, week))
    d = Daemon(cache, C.up.url).start()
    try:
        check(os.path.exists(fresh), "a fresh temp file of another host was removed")
        check(not os.path.exists(old), "a day-old temp file of another host was kept")
    finally:
        d.stop()


def test_collector_removes_dead_temp_files():
    """A pass of the collector in a running daemon (-cacheMaxSize) removes
    this host's temp files that no writer holds locked, although their pid
    is alive, and keeps another host's fresh one."""
    d = Daemon(newcache(), C.up.url, ["-cacheMaxSize", "1M"]).start()
    try:
        dead = os.path.join(d.cache_dir, "example.com", ".goproxyd-tmp-%d-0-v1.0.0.zip" % os.getpid())
        foreign = os.path.join(d.cache_dir, "example.com", ".goproxyd-tmp-1.deadbeef-0-v1.0.1.zip")
        write(dead, b"abandoned by a killed writer")
        write(foreign, b"in progress elsewhere")
        for v in VERSIONS[:3]:   # over the cap: the collector runs
            eq(get(d.port, "/%s/@v/%s.zip" % (MOD, v)).status, 200, "fetch " + v)
        check(wait_for(lambda: not os.path.exists(dead)),
              "the collector kept an unlocked temp file of this host")
        check(os.path.exists(foreign), "the collector removed a fresh temp file of another host")
    finally:
        d.stop()


def test_commands_need_an_existing_cache():
    missing = os.path.join(C.tmp, "no-such-cache")
    for args in (["verify", "-cacheDir", missing, "-sumdb", "off"],
                 ["gc", "-cacheDir", missing, "-cacheMaxSize", "1M"]):
        rc, out, err = run_binary([daemon_binary()] + args)
        eq(rc, 1, "%s on a missing directory: exit status (stderr %r)" % (args[0], err))
        check("no-such-cache" in err, "%s: error does not name the directory: %r" % (args[0], err))
        check(not os.path.exists(missing), "%s created the missing directory" % args[0])


def test_removed_file_not_served_from_memory():
    """Small immutable hits are answered from ready responses kept in
    memory; a file removed from the cache (disk cap, verify -purge, an
    operator) must not be served from there."""
    d = Daemon(newcache(), C.up.url).start()
    try:
        path = "/%s/@v/%s.mod" % (MOD, VERSIONS[0])
        eq(get(d.port, path).status, 200, "first fetch")
        for i in range(3):
            r = get(d.port, path)
            eq((r.status, (r.h("X-Goproxyd-Cache") or "").lower()), (200, "hit"), "repeated hit %d" % i)
        before = C.up.count(r"v1\.0\.0\.mod")
        os.unlink(os.path.join(d.cache_dir, mkmodules.rel(MOD, VERSIONS[0], "mod")))
        r = get(d.port, path)
        eq((r.status, (r.h("X-Goproxyd-Cache") or "").lower()), (200, "miss"), "after the file was removed")
        eq(C.up.count(r"v1\.0\.0\.mod"), before + 1, "upstream requests after the removal")
        # Replaced by other bytes (a purge and refetch): the new bytes are served.
        f = os.path.join(d.cache_dir, mkmodules.rel(MOD, VERSIONS[0], "mod"))
        tmp = f + ".new"
        write(tmp, b"module example.com/big // replaced\n")
        os.rename(tmp, f)
        r = get(d.port, path)
        eq(r.body, b"module example.com/big // replaced\n", "body after the file was replaced")
    finally:
        d.stop()


def max_age(r):
    cc = r.h("Cache-Control") or ""
    check(cc.startswith("public, max-age="), "Cache-Control %r" % cc)
    return int(cc.split("=", 1)[1])


def test_mutable_hits_from_memory_stay_current():
    """Small mutable hits (@v/list) are also answered from ready responses;
    those must follow a replaced file, count max-age down, and never
    outlive -cacheExpire."""
    d = Daemon(newcache(), C.up.url, ["-cacheExpire", "3s"]).start()
    try:
        path = "/%s/@v/list" % MOD
        r = get(d.port, path)
        eq((r.status, (r.h("X-Goproxyd-Cache") or "").lower()), (200, "miss"), "first fetch")
        want = r.body
        first = None
        for i in range(3):
            r = get(d.port, path)
            eq((r.status, (r.h("X-Goproxyd-Cache") or "").lower(), r.body), (200, "hit", want),
               "repeated hit %d" % i)
            first = max_age(r) if first is None else first
        check(first <= 3, "max-age %d over -cacheExpire 3s" % first)
        time.sleep(1.6)
        r = get(d.port, path)
        eq((r.status, (r.h("X-Goproxyd-Cache") or "").lower()), (200, "hit"), "hit 1.6 s later")
        check(max_age(r) < first, "max-age did not count down: %d, then %d 1.6 s later"
              % (first, max_age(r)))
        # Replaced on disk (another instance sharing the cache refreshed it).
        f = os.path.join(d.cache_dir, MOD, "@v", "list")
        st = os.stat(f)
        write(f + ".new", want + b"v9.9.9\n")
        os.utime(f + ".new", ns=(st.st_atime_ns, st.st_mtime_ns))
        os.rename(f + ".new", f)
        r = get(d.port, path)
        eq(r.body, want + b"v9.9.9\n", "body after the list file was replaced")
        before = C.up.count(r"@v/list")
        time.sleep(max(0.0, st.st_mtime + 3.2 - time.time()))
        r = get(d.port, path)
        eq((r.status, (r.h("X-Goproxyd-Cache") or "").lower()), (200, "miss"), "after -cacheExpire")
        eq(C.up.count(r"@v/list"), before + 1, "upstream list requests after -cacheExpire")
    finally:
        d.stop()


TESTS = [test_cap_evicts_least_recently_used, test_removed_file_not_served_from_memory,
         test_mutable_hits_from_memory_stay_current, test_whole_versions_evicted, test_gc_command,
         test_symlinked_cache_dir, test_foreign_temp_files, test_collector_removes_dead_temp_files,
         test_commands_need_an_existing_cache]


def main(argv):
    return R.main(setup, TESTS, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

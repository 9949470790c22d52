#!/usr/bin/env python3
"""Integration tests for goproxyd's checksum-database (sumdb) support:
proxying and caching of /sumdb/<name>/... and of the root endpoints,
verification of every fetched .mod/.zip before it is cached, the real go
command through goproxyd, and the `goproxyd verify` subcommand.

Run:  python3 tests/integration/test_sumdb.py [NAME-SUBSTRING ...]
Env:  GOPROXYD=path/to/binary (default ./build/goproxyd)
      KEEP_TMP=1 (keep temp dirs and daemon logs)
Prints "ok NAME (t)" / "FAIL NAME: reason" per test; the last line is
"N passed, N failed"; exit 1 if any test failed.  Standard library only;
only 127.0.0.1 is contacted (fake upstream: tests/lib/fakeupstream.py, fake
checksum database: tests/lib/fakesumdb.py).  The go command tests need `go`.
"""

import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import fakesumdb  # noqa: E402
import fakeupstream  # noqa: E402
import mkmodules  # noqa: E402
from harness import (Daemon, Runner, TestFailure, all_files, check, check_no_sanitizer,  # noqa: E402
                     daemon_binary, eq, get, make_tmp, norm_ct, read, run_binary, stops_clean,
                     timeout, tmp_leftovers)

NAME = fakesumdb.DEFAULT_NAME          # "sum.test.example"
OTHER = "sum.other.example"
IMMUTABLE_CC = "public, max-age=31536000, immutable"

LIBA = "example.com/liba"
LIBB = "example.com/libb"
MIXED = "example.com/MixedCase/lib"
LIBC = "example.com/libc/v2"
LIBD = "example.com/libd"
PRIV = mkmodules.PRIVATE_MODULE
TC = "golang.org/toolchain"
TCV = "v0.0.1-go1.21.0.linux-amd64"
REJECTED = "goproxyd_verify_rejected_total"
GO_TIMEOUT = 120

R = Runner(default_timeout=90)


class Ctx:
    tmp = None
    tree = None
    info = None
    up = None
    daemons = []
    dbs = []
    n = 0


C = Ctx()


# =================================================================== setup

def write_toolchain(tree):
    """golang.org/toolchain@v0.0.1-go1.21.0.linux-amd64, like the real ones:
    a zip of a Go distribution under the module prefix."""
    mod = b"module golang.org/toolchain\n"
    files = {"go.mod": mod, "VERSION": b"go1.21.0\ntime 2023-08-08T15:00:00Z\n",
             "bin/go": b"#!/bin/sh\necho 'fake go1.21.0'\n",
             "src/runtime/extern.go": b"package runtime\n"}
    out = {
        mkmodules.rel(TC, TCV, "info"): json.dumps({"Version": TCV, "Time": "2023-08-08T15:00:00Z"}).encode(),
        mkmodules.rel(TC, TCV, "mod"): mod,
        mkmodules.rel(TC, TCV, "zip"): mkmodules.module_zip(TC, TCV, files),
        mkmodules.rel(TC, kind="list"): (TCV + "\n").encode(),
    }
    for r, data in out.items():
        p = os.path.join(tree, r)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
    return out


def setup():
    C.tmp = make_tmp("goproxyd-sumdb-", R)
    C.tree = os.path.join(C.tmp, "tree")
    C.info = mkmodules.generate(C.tree)
    C.info["files"].update(write_toolchain(C.tree))
    C.up = fakeupstream.FakeUpstream(C.tree).start()
    R.cleanups.append(C.up.stop)
    R.after_each.append(after_each)
    R.cleanups.append(stop_all)


def stop_all():
    while C.daemons:
        C.daemons.pop().stop(timeout=5)
    while C.dbs:
        C.dbs.pop().stop()


def after_each():
    stop_all()
    C.up.reset()


checked = stops_clean(C.daemons)


def newdir(name):
    C.n += 1
    d = os.path.join(C.tmp, "t%02d-%s" % (C.n, name))
    os.makedirs(d)
    return d


def new_db(name=NAME, records=None, start=True):
    """A fake checksum database holding every module of the tree (or the
    given (path, version) list, in that order)."""
    db = fakesumdb.FakeSumDB(name)
    if records is None:
        db.add_proxy_dir(C.tree)
    else:
        for m, v in records:
            db.add(m, v, zsum(m, v), msum(m, v))
    C.dbs.append(db)
    return db.start() if start else db


def spec(db):
    return "%s=%s" % (db.vkey, db.url)


def daemon(db=None, extra=(), cache=None, sumdb=None, name="d", proxy=None):
    """goproxyd proxying the fake upstream; -sumdb is the given list, else
    the db's key=URL, else off."""
    if cache is None:
        cache = os.path.join(newdir(name), "cache")
    if sumdb is None:
        sumdb = spec(db) if db is not None else "off"
    d = Daemon(cache, proxy or C.up.url, ["-sumdb", sumdb] + list(extra))
    C.daemons.append(d)
    return d.start()


# =================================================================== helpers

def p(module, version=None, kind="zip"):
    return "/" + mkmodules.rel(module, version, kind)


def tree(module, version=None, kind="zip"):
    return C.info["files"][mkmodules.rel(module, version, kind)]


def zsum(m, v):
    return mkmodules.zip_hash(tree(m, v, "zip"))


def msum(m, v):
    return mkmodules.gomod_hash(tree(m, v, "mod"))


def cpath(d, module, version=None, kind="zip"):
    return os.path.join(d.cache_dir, mkmodules.rel(module, version, kind))


def lookup_rest(m, v):
    return "lookup/%s@%s" % (mkmodules.escape(m), mkmodules.escape(v))


def sdb_path(cache, rest, name=NAME):
    return os.path.join(cache, "sumdb", name, *rest.split("/"))


def vdir_files(d, module):
    """Everything stored under the module's @v/ directory (with temp files)."""
    vd = os.path.join(d.cache_dir, mkmodules.escape(module), "@v")
    return all_files(vd) if os.path.isdir(vd) else []


def xcache(r):
    return (r.h("X-Goproxyd-Cache") or "").strip().lower()


def metric(d, name=REJECTED):
    r = get(d.port, "/metrics")
    eq(r.status, 200, "/metrics status")
    for line in r.text().splitlines():
        f = line.split()
        if len(f) == 2 and f[0] == name:
            return float(f[1])
    raise TestFailure("/metrics has no %s line" % name)


def tampered_zip(module, version):
    """The module's zip with one byte of one source file changed: still a
    valid module zip (every entry under module@version/), other h1: hash."""
    with zipfile.ZipFile(io.BytesIO(tree(module, version, "zip"))) as z:
        entries = [(i.filename, z.read(i)) for i in z.infolist()]
    for i, (n, data) in enumerate(entries):
        if not n.endswith("/go.mod") and data:
            b = bytearray(data)
            b[len(b) // 2] ^= 0x01
            entries[i] = (n, bytes(b))
            break
    out = mkmodules.make_zip(entries)
    check(mkmodules.zip_hash(out) != zsum(module, version), "tampered zip has the honest hash")
    return out


def serve_instead(module, version, kind, data):
    C.up.set_rules({"^" + re.escape(p(module, version, kind)) + "$":
                    {"body_b64": base64.b64encode(data).decode()}})


def expect_served(r, want, what):
    eq(r.status, 200, "%s status (body %r)" % (what, r.body[:300]))
    check(r.body == want, "%s: body differs from the expected one (%d vs %d bytes)"
          % (what, len(r.body), len(want)))


def expect_rejected(d, module, version, kind, what, contains="checksum"):
    """A verification failure: 404, no-store, a body naming the checksum
    problem, nothing stored under the module's @v/, no temp files."""
    r = get(d.port, p(module, version, kind))
    eq(r.status, 404, "%s: status (body %r)" % (what, r.body[:300]))
    cc = (r.h("Cache-Control") or "").lower()
    check("no-store" in cc, "%s: Cache-Control %r lacks no-store" % (what, cc))
    check(contains.lower() in r.text().lower(), "%s: body %r does not mention %r"
          % (what, r.text()[:400], contains))
    check(not os.path.exists(cpath(d, module, version, kind)), "%s: %s was cached" % (what, kind))
    left = vdir_files(d, module)
    check(not left, "%s: files stored under %s/@v/: %s" % (what, module, left))
    left = tmp_leftovers(d.cache_dir)
    check(not left, "%s: temp files left: %s" % (what, left))
    return r


def expect_rejected_twice(d, module, version, kind, what, contains="checksum"):
    """Rejected, counted in /metrics, and again on a second request."""
    before = metric(d)
    expect_rejected(d, module, version, kind, what, contains)
    eq(metric(d) - before, 1, "%s: %s increase after one rejected request" % (what, REJECTED))
    expect_rejected(d, module, version, kind, what + " (again)", contains)
    eq(metric(d) - before, 2, "%s: %s increase after two rejected requests" % (what, REJECTED))


# =================================================================== A. proxying

@checked
def test_supported():
    db = new_db()
    db2 = new_db(OTHER, records=[(LIBA, "v1.0.0")])
    # KEY=URL, NAME=URL and a bare NAME (never contacted here)
    d = daemon(sumdb="%s,%s=%s,sum.third.example" % (spec(db), OTHER, db2.url))
    for name in (NAME, OTHER, "sum.third.example"):
        r = get(d.port, "/sumdb/%s/supported" % name)
        eq(r.status, 200, "/sumdb/%s/supported status" % name)
        eq(r.body, b"", "/sumdb/%s/supported body" % name)
    for name in ("sum.golang.org", "sum.test.exampl", "sum.test.example.org"):
        r = get(d.port, "/sumdb/%s/supported" % name)
        eq(r.status, 404, "/sumdb/%s/supported status (not configured)" % name)
        eq(get(d.port, "/sumdb/%s/latest" % name).status, 404, "/sumdb/%s/latest (not configured)" % name)
        eq(get(d.port, "/sumdb/%s/%s" % (name, lookup_rest(LIBA, "v1.0.0"))).status, 404,
           "/sumdb/%s/lookup (not configured)" % name)
    eq(db.count() + db2.count(), 0, "database requests for /supported and unknown names: %s %s"
       % (db.counts, db2.counts))
    # -sumdb off: nothing is supported
    d2 = daemon(sumdb="off")
    eq(get(d2.port, "/sumdb/%s/supported" % NAME).status, 404, "supported with -sumdb off")
    eq(get(d2.port, "/sumdb/sum.golang.org/supported").status, 404, "sum.golang.org with -sumdb off")


@checked
def test_endpoints_proxied_and_cached():
    db = new_db()
    n, _ = db.tree()
    d = daemon(db)
    rests = [
        ("latest", "text/plain; charset=utf-8", False),
        (lookup_rest(MIXED, "v1.0.0"), "text/plain; charset=utf-8", True),
        (lookup_rest(LIBD, "v1.2.0-RC1"), "text/plain; charset=utf-8", True),
        ("tile/8/0/000.p/%d" % n, "application/octet-stream", True),
        ("tile/8/data/000.p/%d" % n, "text/plain; charset=utf-8", True),
    ]
    for rest, ct, immutable in rests:
        want = get(db.port, "/" + rest)
        eq(want.status, 200, "fake db /%s" % rest)
        before = db.count()
        r = get(d.port, "/sumdb/%s/%s" % (NAME, rest))
        eq(r.status, 200, "/sumdb/%s/%s status (body %r)" % (NAME, rest, r.body[:200]))
        check(r.body == want.body, "/%s: body differs from the database's" % rest)
        eq(xcache(r), "miss", "/%s first X-Goproxyd-Cache" % rest)
        eq(db.count() - before, 1, "database requests for the first /%s" % rest)
        eq(norm_ct(r.h("Content-Type")), norm_ct(ct), "/%s Content-Type" % rest)
        f = sdb_path(d.cache_dir, rest)
        check(os.path.isfile(f), "/%s not cached at %s" % (rest, os.path.relpath(f, d.cache_dir)))
        check(read(f) == want.body, "cached /%s differs" % rest)
        if immutable:
            eq(r.h("Cache-Control"), IMMUTABLE_CC, "/%s Cache-Control" % rest)
        r2 = get(d.port, "/sumdb/%s/%s" % (NAME, rest))
        eq(r2.status, 200, "/%s second status" % rest)
        check(r2.body == want.body, "/%s: second body differs" % rest)
        eq(xcache(r2), "hit", "/%s second X-Goproxyd-Cache" % rest)
        eq(db.count() - before, 1, "database requests after the second /%s (fresh cache hit)" % rest)
    # unknown to the database: its 404 is passed on, nothing cached
    r = get(d.port, "/sumdb/%s/%s" % (NAME, lookup_rest("example.com/nosuch", "v1.0.0")))
    eq(r.status, 404, "lookup of an unknown module")
    check(not os.path.exists(sdb_path(d.cache_dir, lookup_rest("example.com/nosuch", "v1.0.0"))),
          "a 404 lookup was cached")


@checked
def test_root_endpoints_are_first_db():
    db = new_db()
    db2 = new_db(OTHER, records=[(LIBA, "v1.0.0"), (LIBB, "v1.0.0")])
    n, _ = db.tree()
    d = daemon(sumdb="%s,%s=%s" % (spec(db), OTHER, db2.url))
    for rest in ("latest", lookup_rest(LIBB, "v1.0.0"), "tile/8/0/000.p/%d" % n,
                 "tile/8/data/000.p/%d" % n):
        want = get(db.port, "/" + rest)
        r = get(d.port, "/" + rest)
        eq(r.status, 200, "root /%s status (body %r)" % (rest, r.body[:200]))
        check(r.body == want.body, "root /%s is not the first database's answer" % rest)
        check(os.path.isfile(sdb_path(d.cache_dir, rest)), "root /%s not cached under sumdb/%s" % (rest, NAME))
        r2 = get(d.port, "/sumdb/%s/%s" % (NAME, rest))
        check(r2.body == want.body, "/sumdb/%s/%s differs from root /%s" % (NAME, rest, rest))
        if rest != "latest":
            eq(xcache(r2), "hit", "/sumdb/%s/%s after root /%s" % (NAME, rest, rest))
    eq(db2.count(), 0, "the second database was asked for root requests: %s" % db2.counts)
    # the second database through its own name
    r = get(d.port, "/sumdb/%s/latest" % OTHER)
    eq(r.status, 200, "/sumdb/%s/latest" % OTHER)
    eq(r.body, db2.signed_tree(), "/sumdb/%s/latest body" % OTHER)
    check(os.path.isfile(sdb_path(d.cache_dir, "latest", OTHER)), "second db's latest not cached")


@checked
def test_latest_expires_and_stale_when_db_down():
    db = new_db()
    d = daemon(db, extra=["-cacheExpire", "1s"])
    lk = lookup_rest(LIBA, "v1.1.0")
    n, _ = db.tree()
    tile = "tile/8/0/000.p/%d" % n
    r = get(d.port, "/sumdb/%s/latest" % NAME)
    eq((r.status, xcache(r)), (200, "miss"), "first latest")
    r = get(d.port, "/sumdb/%s/latest" % NAME)
    eq((r.status, xcache(r)), (200, "hit"), "latest within -cacheExpire")
    eq(db.count("^/latest$"), 1, "database /latest requests while fresh")
    time.sleep(1.3)
    r = get(d.port, "/sumdb/%s/latest" % NAME)
    eq((r.status, xcache(r)), (200, "miss"), "latest after -cacheExpire")
    eq(db.count("^/latest$"), 2, "database /latest requests after expiry")
    for rest in (lk, tile):
        eq(get(d.port, "/sumdb/%s/%s" % (NAME, rest)).status, 200, "/" + rest)
    want_latest = db.signed_tree()
    db.stop()
    time.sleep(1.3)
    r = get(d.port, "/sumdb/%s/latest" % NAME)
    eq(r.status, 200, "stale latest with the database down (body %r)" % r.body[:200])
    eq(r.body, want_latest, "stale latest body")
    check(xcache(r) in ("stale", "hit"), "stale latest X-Goproxyd-Cache %r" % xcache(r))
    r = get(d.port, "/latest")
    eq(r.status, 200, "root /latest with the database down")
    for rest in (lk, tile):
        r = get(d.port, "/sumdb/%s/%s" % (NAME, rest))
        eq(r.status, 200, "/%s with the database down" % rest)
        check(xcache(r) in ("stale", "hit"), "/%s X-Goproxyd-Cache %r" % (rest, xcache(r)))
    r = get(d.port, "/sumdb/%s/%s" % (NAME, lookup_rest(LIBB, "v1.0.0")))
    eq(r.status, 404, "uncached lookup with the database down")
    check("no-store" in (r.h("Cache-Control") or ""), "uncached lookup: Cache-Control %r" % r.h("Cache-Control"))


@checked
def test_db_down_retry_timing():
    """README: connection errors are retried, 3 tries in total, after 100 ms
    and 400 ms (+ up to 50% jitter): a stale latest or a failed lookup is
    answered well within 1.5 s when the database is down."""
    db = new_db()
    d = daemon(db, extra=["-cacheExpire", "1s"])
    eq(get(d.port, "/sumdb/%s/latest" % NAME).status, 200, "latest")
    db.stop()
    time.sleep(1.2)
    for path in ("/sumdb/%s/latest" % NAME, "/sumdb/%s/%s" % (NAME, lookup_rest(LIBB, "v1.0.0"))):
        t0 = time.time()
        r = get(d.port, path)
        took = time.time() - t0
        check(r.status in (200, 404), "%s: status %d" % (path, r.status))
        check(took < 1.5, "%s with the database down took %.2fs (3 tries after 100 ms and 400 ms "
              "should take ~0.5-0.75 s; log: %s)" % (path, took, d.log_tail(400)))


@checked
def test_private_lookups_refused():
    db = new_db()
    d = daemon(db, extra=["-exclude", "example.com/private", "-noSumPatterns", LIBA + ",example.com/libc"])
    for m, v in ((PRIV, "v1.0.0"), (LIBA, "v1.0.0"), (LIBA, "v1.1.0"), (LIBC, "v2.0.0")):
        for prefix in ("/sumdb/%s/" % NAME, "/"):
            r = get(d.port, prefix + lookup_rest(m, v))
            eq(r.status, 404, "%s%s status" % (prefix, lookup_rest(m, v)))
            check("no-store" in (r.h("Cache-Control") or ""), "%s lookup: no no-store" % m)
    eq(db.count(), 0, "database contacted for private lookups: %s" % db.counts)
    # control: a public module is forwarded
    r = get(d.port, "/sumdb/%s/%s" % (NAME, lookup_rest(LIBB, "v1.0.0")))
    eq(r.status, 200, "public lookup")
    eq(db.count("^/lookup/"), 1, "database lookups for the public module")


@checked
def test_malformed_tile_paths():
    db = new_db()
    d = daemon(db)
    bad = ["tile/8/0/x000/001", "tile/8/0/x000/x001/002", "tile/8/0/000.p/256", "tile/8/0/000.p/300",
           "tile/8/data/x000/005", "tile/8/1/000.p/0", "tile/8/0/00", "tile/8/0/0001", "tile/8/0/000.p/01"]
    for rest in bad:
        for prefix in ("/sumdb/%s/" % NAME, "/"):
            r = get(d.port, prefix + rest)
            eq(r.status, 400, "%s%s status (body %r)" % (prefix, rest, r.body[:120]))
    eq(db.count(), 0, "database contacted for malformed tiles: %s" % db.counts)
    # controls: canonical paths are forwarded
    for rest in ("tile/8/0/x001/000", "tile/8/0/000.p/255", "tile/8/data/000"):
        get(d.port, "/sumdb/%s/%s" % (NAME, rest))
    eq(db.count("^/tile/"), 3, "canonical tile paths forwarded: %s" % db.counts)


# =================================================================== B. verification

@checked
def test_verify_honest_cached():
    db = new_db()
    n, _ = db.tree()
    d = daemon(db)
    for m, v in ((LIBA, "v1.1.0"), (MIXED, "v1.0.0")):
        for kind in ("mod", "zip"):
            r = get(d.port, p(m, v, kind))
            expect_served(r, tree(m, v, kind), "%s@%s .%s" % (m, v, kind))
            eq(xcache(r), "miss", "%s .%s first X-Goproxyd-Cache" % (m, kind))
            check(read(cpath(d, m, v, kind)) == tree(m, v, kind), "%s .%s not cached" % (m, kind))
            r = get(d.port, p(m, v, kind))
            eq((r.status, xcache(r)), (200, "hit"), "%s .%s second request" % (m, kind))
        rest = lookup_rest(m, v)
        eq(db.count("^/" + re.escape(rest) + "$"), 1, "database lookups for %s@%s (.mod and .zip)" % (m, v))
        f = sdb_path(d.cache_dir, rest)
        check(os.path.isfile(f), "the proved lookup %s was not cached" % rest)
        eq(read(f), get(db.port, "/" + rest).body, "cached lookup %s" % rest)
    tile = "tile/8/0/000.p/%d" % n
    check(os.path.isfile(sdb_path(d.cache_dir, tile)), "the proving tile %s was not cached: %s"
          % (tile, all_files(os.path.join(d.cache_dir, "sumdb"))))
    eq(read(sdb_path(d.cache_dir, tile)), db.log.hash_tile(0, 0, n, n), "cached tile")
    vt = sdb_path(d.cache_dir, "goproxyd-verified-tree")
    check(os.path.isfile(vt), "no goproxyd-verified-tree")
    eq(read(vt), db.signed_tree(), "goproxyd-verified-tree")
    eq(metric(d), 0, REJECTED)
    # a client's lookup and tile are now answered from the cache
    before = db.count()
    for rest in (lookup_rest(LIBA, "v1.1.0"), tile):
        r = get(d.port, "/sumdb/%s/%s" % (NAME, rest))
        eq((r.status, xcache(r)), (200, "hit"), "client /%s after verification" % rest)
    eq(db.count(), before, "database contacted for cached lookup/tile: %s" % db.counts)
    eq(tmp_leftovers(d.cache_dir), [], "temp files")


@checked
def test_verify_concurrent_honest():
    db = new_db()
    d = daemon(db)
    paths = []
    for m, vs in C.info["modules"].items():
        for v in vs:
            paths += [(m, v, "mod"), (m, v, "zip"), (m, v, "zip")]
    paths += [(TC, TCV, "zip"), (TC, TCV, "mod")]
    res = {}

    def worker(i, m, v, kind):
        try:
            res[i] = get(d.port, p(m, v, kind), timeout=60)
        except Exception as e:
            res[i] = e
    ts = [threading.Thread(target=worker, args=(i,) + x) for i, x in enumerate(paths)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(70)
    for i, (m, v, kind) in enumerate(paths):
        r = res.get(i)
        check(r is not None and not isinstance(r, Exception), "%s@%s .%s: %r" % (m, v, kind, r))
        expect_served(r, tree(m, v, kind), "concurrent %s@%s .%s" % (m, v, kind))
        check(os.path.isfile(cpath(d, m, v, kind)), "%s@%s .%s not cached" % (m, v, kind))
    eq(metric(d), 0, REJECTED)


@checked
def test_tampered_zip_rejected():
    db = new_db()
    d = daemon(db)
    serve_instead(LIBA, "v1.1.0", "zip", tampered_zip(LIBA, "v1.1.0"))
    r = expect_rejected(d, LIBA, "v1.1.0", "zip", "tampered zip", contains="checksum mismatch")
    eq(db.count("^/lookup/"), 1, "database lookups")
    eq(metric(d), 1, REJECTED + " after one tampered zip")
    expect_rejected(d, LIBA, "v1.1.0", "zip", "tampered zip again", contains="checksum mismatch")
    eq(metric(d), 2, REJECTED + " after two requests")
    # the honest go.mod of the same version still passes
    expect_served(get(d.port, p(LIBA, "v1.1.0", "mod")), tree(LIBA, "v1.1.0", "mod"), "honest .mod")
    check(not os.path.exists(cpath(d, LIBA, "v1.1.0", "zip")), "tampered zip cached")
    # ...and once upstream is honest again, so does the zip
    C.up.reset()
    expect_served(get(d.port, p(LIBA, "v1.1.0", "zip")), tree(LIBA, "v1.1.0", "zip"), "honest zip")
    eq(metric(d), 2, REJECTED + " after honest files")


@checked
def test_swapped_gomod_rejected():
    db = new_db()
    d = daemon(db)
    serve_instead(LIBA, "v1.1.0", "mod", tree(LIBB, "v1.0.0", "mod"))
    serve_instead(MIXED, "v1.0.0", "mod", tree(MIXED, "v1.0.0", "mod") + b"\nrequire example.com/evil v1.0.0\n")
    expect_rejected_twice(d, LIBA, "v1.1.0", "mod", "swapped go.mod", contains="checksum mismatch")
    expect_rejected_twice(d, MIXED, "v1.0.0", "mod", "extended go.mod", contains="checksum mismatch")


def _db_tamper(mode, module=LIBB, version="v1.0.0"):
    db = new_db()
    db.set_mode(mode)
    d = daemon(db)
    for kind in ("zip", "mod"):
        expect_rejected_twice(d, module, version, kind, "%s .%s" % (mode, kind))
    check(db.count("^/lookup/") > 0, "the database was never asked")
    lk = sdb_path(d.cache_dir, lookup_rest(module, version))
    check(not os.path.exists(lk), "%s: an unproved lookup was cached" % mode)
    return d, db


@checked
def test_db_bad_signature_rejected():
    _db_tamper("bad-signature")


@checked
def test_db_record_beyond_tree_rejected():
    _db_tamper("beyond-tree")


@checked
def test_db_bad_tiles_rejected():
    _db_tamper("bad-tiles")


@checked
def test_db_lookup_hashes_rejected():
    """The database answers a lookup with the hashes of the tampered files
    the upstream serves, while its log (tiles, signed root) stays honest."""
    db = new_db()
    bad_zip = tampered_zip(LIBA, "v1.1.0")
    bad_mod = tree(LIBA, "v1.1.0", "mod") + b"// evil\n"
    db.forge(LIBA, "v1.1.0", mkmodules.zip_hash(bad_zip), mkmodules.gomod_hash(bad_mod))
    db.set_mode("lookup-hashes")
    lk = get(db.port, "/" + lookup_rest(LIBA, "v1.1.0")).text()
    check(mkmodules.zip_hash(bad_zip) in lk and mkmodules.gomod_hash(bad_mod) in lk,
          "premise: the fake db's lookup does not carry the forged hashes: %r" % lk)
    serve_instead(LIBA, "v1.1.0", "zip", bad_zip)
    C.up.set_rules({"^" + re.escape(p(LIBA, "v1.1.0", "mod")) + "$":
                    {"body_b64": base64.b64encode(bad_mod).decode()}})
    d = daemon(db)
    expect_rejected_twice(d, LIBA, "v1.1.0", "zip", "forged lookup .zip")
    expect_rejected_twice(d, LIBA, "v1.1.0", "mod", "forged lookup .mod")
    check(not os.path.exists(sdb_path(d.cache_dir, lookup_rest(LIBA, "v1.1.0"))), "forged lookup cached")


@checked
def test_db_forged_tile_rejected():
    """300 records, the target at id 5 inside the full tile 000, which the
    database forges to hold the tampered record's hash (the signed root and
    the level-1 tile stay honest).  Only checking tile 000 against its
    parent catches it (the go command of Go 1.19 does not)."""
    db = fakesumdb.FakeSumDB(NAME)
    C.dbs.append(db)
    z0 = "h1:" + base64.b64encode(bytes(32)).decode()
    for i in range(5):
        db.add("example.com/fill%03d" % i, "v1.0.0", z0, z0)
    rid = db.add(LIBA, "v1.1.0", zsum(LIBA, "v1.1.0"), msum(LIBA, "v1.1.0"))
    eq(rid, 5, "record id")
    for i in range(5, 299):
        db.add("example.com/fill%03d" % i, "v1.0.0", z0, z0)
    db.start()
    bad_zip = tampered_zip(LIBA, "v1.1.0")
    db.forge(LIBA, "v1.1.0", mkmodules.zip_hash(bad_zip))
    db.set_mode("forged-tile")
    body = get(db.port, "/" + lookup_rest(LIBA, "v1.1.0")).body
    rec = body.split(b"\n", 1)[1].split(b"\n\n", 1)[0] + b"\n"
    check(mkmodules.zip_hash(bad_zip).encode() in rec, "premise: forged record %r" % rec)
    eq(get(db.port, "/tile/8/0/000").body[5 * 32:6 * 32], fakesumdb.record_hash(rec),
       "premise: the forged full tile holds the forged record's hash")
    serve_instead(LIBA, "v1.1.0", "zip", bad_zip)
    go_accepts_forged_tile(db)
    d = daemon(db)
    expect_rejected_twice(d, LIBA, "v1.1.0", "zip", "forged tile")
    check(not os.path.exists(sdb_path(d.cache_dir, "tile/8/0/000")), "the forged tile was cached")
    # control: the same 300-record log, honest, proves the honest zip
    db.set_mode(None)
    C.up.reset()
    d2 = daemon(db)
    expect_served(get(d2.port, p(LIBA, "v1.1.0", "zip")), tree(LIBA, "v1.1.0", "zip"), "honest 300-record log")
    eq(metric(d2), 0, REJECTED + " (honest 300-record log)")


def go_accepts_forged_tile(db):
    """Premise: the attack is real, the go command of Go 1.19 (x/mod's
    TileHashReader) accepts the tampered zip from this database."""
    have_go()
    v = subprocess.run(["go", "env", "GOVERSION"], stdout=subprocess.PIPE, timeout=30).stdout.decode()
    if not v.startswith("go1.19"):
        return
    tmp = newdir("go-forged")
    env = go_env(tmp, C.up.url, "%s %s" % (db.vkey, db.url))
    os.makedirs(os.path.join(tmp, "nomod"))
    rc, out = go(["mod", "download", "-json", LIBA + "@v1.1.0"], env, os.path.join(tmp, "nomod"))
    check(rc == 0, "premise: go 1.19 rejected the forged-tile attack itself:\n%s" % out[-1500:])
    C.up.reset()
    serve_instead(LIBA, "v1.1.0", "zip", tampered_zip(LIBA, "v1.1.0"))


def _fork(mode):
    # control: a database that is self-consistent is accepted when nothing
    # was verified before
    db0 = new_db()
    db0.set_mode(mode)
    d0 = daemon(db0, name="fork-control")
    expect_served(get(d0.port, p(LIBB, "v1.0.0", "zip")), tree(LIBB, "v1.0.0", "zip"),
                  "%s seen first (nothing verified before)" % mode)
    # the real thing: an honest tree first, then the fork
    db = new_db()
    d = daemon(db)
    expect_served(get(d.port, p(LIBA, "v1.0.0", "zip")), tree(LIBA, "v1.0.0", "zip"), "honest zip")
    eq(read(sdb_path(d.cache_dir, "goproxyd-verified-tree")), db.signed_tree(), "verified tree")
    db.set_mode(mode)
    expect_rejected_twice(d, LIBB, "v1.0.0", "zip", "%s .zip" % mode)
    expect_rejected_twice(d, LIBB, "v1.0.0", "mod", "%s .mod" % mode)
    db.set_mode(None)
    eq(read(sdb_path(d.cache_dir, "goproxyd-verified-tree")), db.signed_tree(),
       "verified tree after the fork (must stay the honest one)")
    expect_served(get(d.port, p(LIBB, "v1.0.0", "zip")), tree(LIBB, "v1.0.0", "zip"), "honest again")


@checked
def test_db_fork_larger_rejected():
    _fork("fork")


@checked
def test_db_fork_same_size_rejected():
    _fork("fork-same-size")


@checked
def test_verified_tree_persisted():
    db = new_db()
    cache = os.path.join(newdir("persist"), "cache")
    d = daemon(db, cache=cache)
    expect_served(get(d.port, p(LIBA, "v1.0.0", "mod")), tree(LIBA, "v1.0.0", "mod"), "honest .mod")
    eq(d.stop(), 0, "first daemon exit status")
    C.daemons.remove(d)
    eq(read(sdb_path(cache, "goproxyd-verified-tree")), db.signed_tree(), "persisted verified tree")
    db.set_mode("fork")
    d2 = daemon(db, cache=cache)
    expect_rejected_twice(d2, LIBB, "v1.0.0", "zip", "fork after a restart")
    # signed_tree() is the honest log's note whatever the mode
    eq(read(sdb_path(cache, "goproxyd-verified-tree")), db.signed_tree(), "verified tree after the rejected fork")


@checked
def test_unknown_module_rejected():
    db = new_db(records=[(LIBA, "v1.0.0"), (LIBA, "v1.1.0"), (LIBB, "v1.0.0")])
    d = daemon(db)
    expect_served(get(d.port, p(LIBB, "v1.0.0", "zip")), tree(LIBB, "v1.0.0", "zip"), "known module")
    for kind in ("zip", "mod"):
        expect_rejected_twice(d, LIBD, "v1.1.0", kind, "module unknown to the db .%s" % kind)
    check(db.count("^/lookup/example.com/libd@") > 0, "the database was not asked about libd")


@checked
def test_nosum_patterns_not_verified():
    db = new_db()
    d = daemon(db, extra=["-noSumPatterns", "example.com/liba,example.com/!mixed!case"])
    bad = tampered_zip(LIBA, "v1.1.0")
    serve_instead(LIBA, "v1.1.0", "zip", bad)
    r = get(d.port, p(LIBA, "v1.1.0", "zip"))
    expect_served(r, bad, "tampered zip of a -noSumPatterns module (documented trade-off)")
    check(read(cpath(d, LIBA, "v1.1.0", "zip")) == bad, "not cached")
    expect_served(get(d.port, p(LIBA, "v1.1.0", "mod")), tree(LIBA, "v1.1.0", "mod"), ".mod")
    eq(db.count(), 0, "database contacted for -noSumPatterns modules: %s" % db.counts)
    eq(metric(d), 0, REJECTED)
    # control: another module is still verified
    serve_instead(LIBB, "v1.0.0", "zip", tampered_zip(LIBB, "v1.0.0"))
    expect_rejected(d, LIBB, "v1.0.0", "zip", "tampered zip outside -noSumPatterns")


@checked
def test_sumdb_off_not_verified():
    d = daemon(sumdb="off")
    bad = tampered_zip(LIBA, "v1.1.0")
    serve_instead(LIBA, "v1.1.0", "zip", bad)
    expect_served(get(d.port, p(LIBA, "v1.1.0", "zip")), bad, "tampered zip with -sumdb off")
    expect_served(get(d.port, p(LIBB, "v1.0.0", "mod")), tree(LIBB, "v1.0.0", "mod"), ".mod with -sumdb off")
    eq(metric(d), 0, REJECTED)


@checked
def test_toolchain_verified_despite_nosum():
    db = new_db()
    ex = ["-noSumPatterns", "golang.org/toolchain,golang.org"]
    bad = tampered_zip(TC, TCV)
    serve_instead(TC, TCV, "zip", bad)
    d = daemon(db, extra=ex)
    expect_rejected_twice(d, TC, TCV, "zip", "tampered toolchain zip", contains="checksum mismatch")
    check(db.count("^/lookup/golang.org/toolchain@") > 0, "the database was not asked about the toolchain")
    C.up.reset()
    for kind in ("zip", "mod"):
        expect_served(get(d.port, p(TC, TCV, kind)), tree(TC, TCV, kind), "honest toolchain .%s" % kind)
        check(os.path.isfile(cpath(d, TC, TCV, kind)), "toolchain .%s not cached" % kind)
    # clients' own lookups of it are still refused (-noSumPatterns)
    eq(get(d.port, "/sumdb/%s/%s" % (NAME, lookup_rest(TC, TCV))).status, 404, "client toolchain lookup")


@checked
def test_toolchain_rejected_without_sumdb():
    d = daemon(sumdb="off")
    for kind in ("zip", "mod"):
        for i in range(2):
            expect_rejected(d, TC, TCV, kind, "toolchain .%s with -sumdb off (#%d)" % (kind, i + 1),
                            contains="checksum database")
    # other modules are served unverified
    expect_served(get(d.port, p(LIBA, "v1.0.0", "zip")), tree(LIBA, "v1.0.0", "zip"), "liba with -sumdb off")


@checked
def test_db_unreachable_refuses():
    """README: a proxy that cannot verify does not cache."""
    db = new_db()
    d = daemon(db)
    db.stop()
    for kind in ("zip", "mod"):
        expect_rejected_twice(d, LIBB, "v1.0.0", kind, "database down .%s" % kind)
    # and once it is back (same port), the files are verified and served
    db2 = fakesumdb.FakeSumDB(NAME, port=db.port)
    db2.add_proxy_dir(C.tree)
    C.dbs.append(db2.start())
    for kind in ("zip", "mod"):
        expect_served(get(d.port, p(LIBB, "v1.0.0", kind)), tree(LIBB, "v1.0.0", kind),
                      "database back .%s" % kind)


# =================================================================== C. the go command

def have_go():
    if shutil.which("go") is None:
        raise TestFailure("the go command is not installed")


def go_env(tmp, goproxy, gosumdb):
    have_go()
    return mkmodules.go_env(tmp, goproxy, gosumdb=gosumdb)


def go(args, env, cwd):
    """(status, output) of `go ARGS`; a timeout fails the test, so that it
    never passes for a rejection."""
    rc, out = mkmodules.run_go(args, cwd, env, GO_TIMEOUT)
    if rc is None:
        raise TestFailure(out)
    return rc, out


def build_app(env, tmp, what):
    app = mkmodules.write_app(os.path.join(tmp, "app"))
    for args in (["mod", "download"], ["build", "-o", os.path.join(tmp, "app.bin"), "."]):
        rc, out = go(args, env, app)
        check(rc == 0, "%s: go %s failed:\n%s" % (what, " ".join(args), out[-2500:]))
    gosum = mkmodules.parse_gosum(read(os.path.join(app, "go.sum")).decode())
    for m, v in mkmodules.APP_GO_MOD_REQUIRES:
        eq(gosum.get("%s %s" % (m, v)), zsum(m, v), "%s: go.sum %s %s" % (what, m, v))
    out = subprocess.run([os.path.join(tmp, "app.bin")], stdout=subprocess.PIPE, timeout=30).stdout
    check(b"hello from liba v1.1.0" in out, "%s: app printed %r" % (what, out))
    # the go command verified against the database: it keeps its latest tree
    check(os.path.isfile(os.path.join(env["GOPATH"], "pkg", "sumdb", NAME, "latest")),
          "%s: the go command kept no sumdb tree (no lookups?)" % what)
    return gosum


def access_log_paths(d, log):
    """Stops d (flushing its access log); the request paths it logged."""
    C.daemons.remove(d)
    check(d.alive(), "daemon died: %s" % d.log_tail())
    eq(d.stop(), 0, "daemon exit status (log: %s)" % d.log_tail())
    paths = []
    for line in read(log).decode("utf-8", "replace").splitlines():
        for f in line.split():
            if f.startswith("/"):
                paths.append(f)
                break
    return paths


@checked
@timeout(150)
def test_go_through_proxy_sumdb():
    db = new_db()
    tmp = newdir("go-proxy")
    log = os.path.join(tmp, "access.log")
    d = daemon(db, extra=["-accessLog", log], cache=os.path.join(tmp, "cache"))
    env = go_env(tmp, d.url, db.vkey)      # name and key only: found through /sumdb/<name>/supported
    build_app(env, tmp, "GOSUMDB=<vkey>")
    for m, v in mkmodules.APP_GO_MOD_REQUIRES:
        rest = lookup_rest(m, v)
        eq(db.count("^/" + re.escape(rest) + "$"), 1,
           "database lookups of %s@%s (goproxyd's verification and the go command share one)" % (m, v))
        check(os.path.isfile(sdb_path(d.cache_dir, rest)), "lookup %s not in goproxyd's cache" % rest)
    check(os.path.isfile(sdb_path(d.cache_dir, "goproxyd-verified-tree")), "no verified tree")
    paths = access_log_paths(d, log)
    check("/sumdb/%s/supported" % NAME in paths, "the go command did not ask /supported: %s" % paths)
    gl = [x for x in paths if x.startswith("/sumdb/%s/lookup/" % NAME)]
    check(len(gl) >= len(mkmodules.APP_GO_MOD_REQUIRES), "the go command's lookups via goproxyd: %s" % gl)


@checked
@timeout(150)
def test_go_through_chained_proxies():
    """Two goproxyds in a row, only the second with the database's URL: the
    first finds the database through it (/sumdb/NAME/supported), as the go
    command finds it through the first.  The go command's verification and
    goproxyd's both pass, and every lookup reaches the database once."""
    db = new_db()
    tmp = newdir("go-chain")
    front = daemon(db, name="front")
    d = daemon(sumdb=db.vkey, proxy=front.url, cache=os.path.join(tmp, "cache"))
    build_app(go_env(tmp, d.url, db.vkey), tmp, "GOSUMDB=<vkey> through two goproxyds")
    for m, v in mkmodules.APP_GO_MOD_REQUIRES:
        rest = lookup_rest(m, v)
        eq(db.count("^/" + re.escape(rest) + "$"), 1, "database lookups of %s@%s" % (m, v))
        for g in (d, front):
            check(os.path.isfile(sdb_path(g.cache_dir, rest)), "lookup %s not in %s" % (rest, g.cache_dir))
    eq(C.up.count("^/sumdb/"), 0, "the fake upstream behind the second goproxyd was asked about the database")


@checked
@timeout(150)
def test_go_sumdb_at_root():
    """GOSUMDB="<vkey> http://goproxyd": goproxyd's root is the database.
    GOPROXY is a second goproxyd with -sumdb off, whose /sumdb/<name>/supported
    is 404, so the go command uses the GOSUMDB URL."""
    db = new_db()
    tmp = newdir("go-root")
    log = os.path.join(tmp, "access.log")
    s = daemon(db, extra=["-accessLog", log], cache=os.path.join(tmp, "cache-s"))
    px = daemon(sumdb="off", cache=os.path.join(tmp, "cache-p"))
    env = go_env(tmp, px.url, "%s %s" % (db.vkey, s.url))
    build_app(env, tmp, "GOSUMDB=<vkey> <goproxyd root>")
    for m, v in mkmodules.APP_GO_MOD_REQUIRES:
        rest = lookup_rest(m, v)
        check(os.path.isfile(sdb_path(s.cache_dir, rest)), "root lookup %s not cached under sumdb/%s" % (rest, NAME))
        eq(db.count("^/" + re.escape(rest) + "$"), 1, "database lookups of %s@%s" % (m, v))
    paths = access_log_paths(s, log)
    gl = [x for x in paths if x.startswith("/lookup/")]
    check(len(gl) >= len(mkmodules.APP_GO_MOD_REQUIRES), "root lookups in goproxyd's access log: %s" % paths)
    check(any(x.startswith("/tile/8/") for x in paths), "no root tile requests: %s" % paths)


def self_signed(tmp):
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                        "-keyout", key, "-out", cert], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=30)
    check(r.returncode == 0, "openssl req failed: %s" % r.stdout.decode("utf-8", "replace"))
    return cert, key


@checked
def test_database_through_upstream_proxy():
    """-sumdb NAME+KEY=<upstream proxy>/sumdb/NAME: the database reached
    through another proxy's /sumdb/ route (here a second goproxyd), and
    downloads still verified against it."""
    db = new_db()
    front = daemon(db, name="front")
    d = daemon(sumdb="%s=%s/sumdb/%s" % (db.vkey, front.url, NAME), name="chained")
    for kind in ("mod", "zip"):
        r = get(d.port, p(LIBA, "v1.1.0", kind))
        eq(r.status, 200, "%s verified through the upstream's sumdb route (body %r)" % (kind, r.body[:200]))
    rest = lookup_rest(LIBA, "v1.1.0")
    check(os.path.isfile(sdb_path(d.cache_dir, rest)), "lookup not cached by the chained goproxyd")
    check(os.path.isfile(sdb_path(front.cache_dir, rest)), "lookup did not go through the upstream proxy")
    eq(get(d.port, "/sumdb/%s/%s" % (NAME, rest)).status, 200, "lookup through the chain")
    eq(C.up.count("^/sumdb/"), 0, "requests to the -proxy upstream's /sumdb/ with the URL given")


@checked
def test_sumdb_under_path_prefix():
    """-pathPrefix /go: the /sumdb/ routes and the root database paths move
    under it, as the go command asks for them relative to GOPROXY."""
    db = new_db()
    d = daemon(db, extra=["-pathPrefix", "/go"])
    rest = lookup_rest(LIBA, "v1.1.0")
    for path in ("/go/sumdb/%s/supported" % NAME, "/go/sumdb/%s/%s" % (NAME, rest), "/go/" + rest):
        r = get(d.port, path)
        eq(r.status, 200, "GET %s (body %r)" % (path, r.body[:200]))
    for path in ("/sumdb/%s/supported" % NAME, "/" + rest):
        eq(get(d.port, path).status, 404, "GET %s outside the prefix" % path)


def asked_supported(name=NAME):
    return C.up.count("^/sumdb/%s/supported$" % re.escape(name))


@checked
def test_database_found_through_upstream():
    """-sumdb KEY without a URL: as the go command does, goproxyd asks its
    -proxy entries in order for /sumdb/NAME/supported and reaches the
    database through the first that answers 200.  Here the fake upstream
    (404) comes first, then a goproxyd that proxies the database."""
    db = new_db()
    front = daemon(db, name="front")
    d = daemon(sumdb=db.vkey, proxy="%s,%s" % (C.up.url, front.url), name="finder")
    for kind in ("mod", "zip"):
        expect_served(get(d.port, p(LIBA, "v1.1.0", kind)), tree(LIBA, "v1.1.0", kind),
                      "%s verified through the second entry" % kind)
    rest = lookup_rest(LIBA, "v1.1.0")
    check(os.path.isfile(sdb_path(front.cache_dir, rest)), "the lookup did not go through the second entry")
    eq(asked_supported(), 1, "/sumdb/%s/supported requests to the first entry (decided once)" % NAME)
    check("reached at %s/sumdb/%s" % (front.url, NAME) in read(d.log_path).decode(),
          "no log line for the decision: %s" % d.log_tail())
    # A client's own checksum-database request, before any verification
    # decided the URL, takes the same route.
    d2 = daemon(sumdb=db.vkey, proxy=front.url, name="finder2")
    rest = lookup_rest(LIBB, "v1.0.0")
    r = get(d2.port, "/sumdb/%s/%s" % (NAME, rest))
    eq(r.status, 200, "lookup proxied by an undecided goproxyd (body %r)" % r.body[:200])
    check(os.path.isfile(sdb_path(front.cache_dir, rest)), "the proxied lookup did not go through the entry")


@checked
def test_database_unavailable_after_upstream_error():
    """An entry that answers /supported with an error, followed by ',',
    leaves the database unavailable: downloads are refused, not verified
    elsewhere, and the entry is asked again at the next need.  After '|',
    the next entry is asked instead."""
    db = new_db()
    front = daemon(db, name="front")
    C.up.set_rules({"^/sumdb/": {"status": 500, "times": 1}})
    d = daemon(sumdb=db.vkey, proxy="%s,%s" % (C.up.url, front.url), name="comma")
    expect_rejected(d, LIBB, "v1.0.0", "zip", "first entry answered 500",
                    contains="/sumdb/%s/supported answered 500" % NAME)
    r = get(d.port, "/sumdb/%s/%s" % (NAME, lookup_rest(LIBA, "v1.0.0")))
    eq(r.status, 200, "a proxied lookup once the entry answers 404 (body %r)" % r.body[:200])
    expect_served(get(d.port, p(LIBB, "v1.0.0", "zip")), tree(LIBB, "v1.0.0", "zip"),
                  "verified once the first entry answers 404")
    eq(asked_supported(), 2, "/supported requests: the failed decision is made again")
    C.up.reset()
    C.up.set_rules({"^/sumdb/": {"status": 500}})
    d = daemon(sumdb=db.vkey, proxy="%s|%s" % (C.up.url, front.url), name="pipe")
    expect_served(get(d.port, p(LIBB, "v1.0.0", "zip")), tree(LIBB, "v1.0.0", "zip"),
                  "verified through the entry after '|'")
    d = daemon(sumdb=db.vkey, proxy=C.up.url, name="only")
    r = get(d.port, "/sumdb/%s/latest" % NAME)
    eq(r.status, 404, "a proxied request while the database is unavailable (body %r)" % r.body[:200])
    check("answered 500" in r.text(), "the 404 does not say why: %r" % r.text()[:300])


@checked
def test_database_direct_when_no_entry_proxies_it():
    """Every entry answers 404: the database is reached directly at
    https://NAME (here https://localhost, where nothing listens, so the
    download is refused with that URL in the reason)."""
    db = new_db(name="localhost")
    d = daemon(sumdb=db.vkey, name="direct")
    expect_rejected(d, LIBB, "v1.0.0", "mod", "database reached directly",
                    contains="https://localhost/lookup/")
    eq(asked_supported("localhost"), 1, "/sumdb/localhost/supported requests to the entry")
    check("localhost: reached at https://localhost" in read(d.log_path).decode(),
          "no log line for the decision: %s" % d.log_tail())


@checked
@timeout(150)
def test_go_sumdb_at_root_https():
    """The deployment guide's GOSUMDB="<name> https://mirror:port" over TLS
    (-tlsCert/-tlsKey), the test CA given to the go command through
    SSL_CERT_FILE.  As in test_go_sumdb_at_root, GOPROXY is a second goproxyd
    with -sumdb off, so the go command must use the GOSUMDB URL."""
    db = new_db()
    tmp = newdir("go-root-tls")
    cert, key = self_signed(tmp)
    log = os.path.join(tmp, "access.log")
    s = daemon(db, extra=["-accessLog", log, "-tlsCert", cert, "-tlsKey", key],
               cache=os.path.join(tmp, "cache-s"))
    px = daemon(sumdb="off", cache=os.path.join(tmp, "cache-p"))
    env = go_env(tmp, px.url, "%s https://127.0.0.1:%d" % (db.vkey, s.port))
    env["SSL_CERT_FILE"] = cert
    build_app(env, tmp, "GOSUMDB=<vkey> <goproxyd https root>")
    paths = access_log_paths(s, log)
    gl = [x for x in paths if x.startswith("/lookup/")]
    check(len(gl) >= len(mkmodules.APP_GO_MOD_REQUIRES), "root lookups over https: %s" % paths)
    check(any(x.startswith("/tile/8/") for x in paths), "no root tile requests over https: %s" % paths)
    # Without the CA the go command must refuse the database.
    tmp2 = newdir("go-root-tls-untrusted")
    s2 = daemon(db, extra=["-tlsCert", cert, "-tlsKey", key], cache=os.path.join(tmp2, "cache-s"))
    env2 = go_env(tmp2, px.url, "%s https://127.0.0.1:%d" % (db.vkey, s2.port))
    app = mkmodules.write_app(os.path.join(tmp2, "app"))
    rc, out = go(["mod", "download"], env2, app)
    check(rc != 0, "go trusted an unknown CA for the checksum database:\n%s" % out[-1500:])


@checked
@timeout(150)
def test_go_fails_on_tampered_zip():
    db = new_db()
    tmp = newdir("go-tamper")
    d = daemon(db, cache=os.path.join(tmp, "cache"))
    serve_instead(LIBA, "v1.1.0", "zip", tampered_zip(LIBA, "v1.1.0"))
    env = go_env(tmp, d.url, db.vkey)
    app = mkmodules.write_app(os.path.join(tmp, "app"))
    rc, out = go(["mod", "download"], env, app)
    check(rc != 0, "go mod download succeeded with a tampered zip:\n%s" % out[-2000:])
    check("example.com/liba" in out and "404" in out, "go failed without naming liba's 404:\n%s" % out[-2000:])
    check("checksum" in out.lower(), "go's error does not carry goproxyd's reason:\n%s" % out[-2000:])
    check(not os.path.exists(cpath(d, LIBA, "v1.1.0", "zip")), "goproxyd cached the tampered zip")
    eq(tmp_leftovers(d.cache_dir), [], "temp files")
    check(metric(d) >= 1, "%s did not count the rejection" % REJECTED)
    zips = [f for f in all_files(os.path.join(tmp, "gomodcache", "cache", "download"))
            if f.startswith("example.com/liba/@v/v1.1.0.zip")]
    eq(zips, [], "zip in the go command's module cache")


@checked
@timeout(150)
def test_go_with_db_down_uses_cache():
    db = new_db()
    tmp1, tmp2 = newdir("go-down-1"), newdir("go-down-2")
    d = daemon(db, cache=os.path.join(tmp1, "cache"))
    build_app(go_env(tmp1, d.url, db.vkey), tmp1, "first run")
    db.stop()
    n = db.count()
    build_app(go_env(tmp2, d.url, db.vkey), tmp2, "second run, database down, fresh GOMODCACHE")
    eq(db.count(), n, "requests reached the stopped database")
    check(os.path.isdir(os.path.join(tmp2, "gomodcache", "cache", "download", "sumdb", NAME)),
          "second run fetched no tiles/lookups")


# =================================================================== D. goproxyd verify

def test_verify_cmd_usage_error():
    verify_cmd_exists()
    cache = os.path.join(newdir("vusage"), "cache")
    os.makedirs(cache)
    rc, out, err = run_binary([daemon_binary(), "verify", "-cacheDir", cache, "-sumdb", "off",
                               "-noSuchFlag"], timeout=20)
    eq(rc, 2, "exit status of verify with an unknown flag (stdout %r, stderr %r)" % (out, err))
    check("noSuchFlag" in err, "stderr %r does not name the flag" % err)
    check_no_sanitizer(out + err, "verify output")


SUMMARY_RE = re.compile(r"^verified (\d+), failed (\d+), skipped (\d+)$")


def all_versions():
    out = [(m, v) for m, vs in C.info["modules"].items() for v in vs]
    return out + [(TC, TCV)]


def fill_cache(db, cache):
    d = daemon(db, cache=cache)
    for m, v in all_versions():
        for kind in ("info", "mod", "zip"):
            r = get(d.port, p(m, v, kind))
            eq(r.status, 200, "fill %s@%s .%s (body %r)" % (m, v, kind, r.body[:200]))
    eq(d.stop(), 0, "fill daemon exit status")
    C.daemons.remove(d)
    return 2 * len(all_versions())


def run_verify(args):
    rc, out, err = run_binary([daemon_binary(), "verify"] + args, timeout=60)
    check_no_sanitizer(out + err, "goproxyd verify output")
    lines = [l for l in (out + "\n" + err).splitlines() if l.strip()]
    summary = [SUMMARY_RE.match(l.strip()) for l in out.splitlines() if SUMMARY_RE.match(l.strip())]
    check(len(summary) == 1, "goproxyd verify %s: want one summary line on stdout, got rc %d, stdout %r, stderr %r"
          % (" ".join(args), rc, out[-1500:], err[-1500:]))
    check(out.rstrip("\n").splitlines()[-1].strip() == summary[0].group(0),
          "the summary is not the last line of stdout: %r" % out[-500:])
    counts = tuple(int(x) for x in summary[0].groups())
    fails = [l.strip() for l in lines if l.startswith("FAIL ")]
    removed = [l.strip() for l in lines if l.startswith("removed ")]
    return rc, counts, fails, removed, out + err


def names_in(lines, word):
    """module@version of each "<word> module@version..." line."""
    out = []
    for l in lines:
        m = re.match(r"^%s (\S+?@v[^\s:/]+)" % word, l)
        check(m is not None, "malformed line %r" % l)
        out.append(m.group(1))
    return sorted(out)


def corrupt(cache, zip_mod=(LIBA, "v1.1.0"), mod_mod=(LIBB, "v1.0.0")):
    """One byte of a cached zip changed on disk; one cached .mod swapped."""
    zf = os.path.join(cache, mkmodules.rel(zip_mod[0], zip_mod[1], "zip"))
    data = bytearray(read(zf))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
        zi = [i for i in z.infolist() if not i.filename.endswith("/go.mod")][0]
    # inside the entry's (compressed) data, past its local header
    nlen, xlen = int.from_bytes(data[zi.header_offset + 26:zi.header_offset + 28], "little"), \
        int.from_bytes(data[zi.header_offset + 28:zi.header_offset + 30], "little")
    data[zi.header_offset + 30 + nlen + xlen + zi.compress_size // 2] ^= 0x01
    with open(zf, "wb") as f:
        f.write(bytes(data))
    mf = os.path.join(cache, mkmodules.rel(mod_mod[0], mod_mod[1], "mod"))
    with open(mf, "wb") as f:
        f.write(tree(LIBA, "v1.1.0", "mod"))
    return ["%s@%s" % zip_mod, "%s@%s" % mod_mod]


def check_fail_kinds(fails, bad):
    """README: "FAIL <module>@<version> <zip|mod>: <reason>"."""
    for mv, kind in zip(bad, ("zip", "mod")):
        check(any(l.startswith("FAIL %s %s:" % (mv, kind)) for l in fails),
              "no line \"FAIL %s %s: ...\" in %s" % (mv, kind, fails))


def verify_cmd_exists():
    rc, out, err = run_binary([daemon_binary(), "verify", "-h"], timeout=10)
    check("unexpected argument" not in err, "no `goproxyd verify` subcommand yet: %r" % err.strip())


@timeout(120)
def test_verify_cmd_reports_and_purges():
    verify_cmd_exists()
    db = new_db()
    cache = os.path.join(newdir("vcmd"), "cache")
    total = fill_cache(db, cache)
    sdb = ["-cacheDir", cache, "-sumdb", spec(db)]
    rc, counts, fails, removed, out = run_verify(sdb)
    eq((rc, counts, fails), (0, (total, 0, 0), []), "verify of an honest cache (output %r)" % out[-1500:])
    bad = corrupt(cache)
    snapshot = all_files(cache)
    rc, counts, fails, removed, out = run_verify(sdb)
    eq(rc, 1, "exit status with two bad files (output %r)" % out[-1500:])
    eq(names_in(fails, "FAIL"), sorted(bad), "FAIL lines")
    check_fail_kinds(fails, bad)
    eq(counts, (total - 2, 2, 0), "summary (verified, failed, skipped)")
    eq(removed, [], "removed lines without -purge")
    eq(all_files(cache), snapshot, "cache changed without -purge")
    rc, counts, fails, removed, out = run_verify(sdb + ["-purge"])
    eq(rc, 1, "exit status of -purge with two bad files (output %r)" % out[-1500:])
    eq(names_in(fails, "FAIL"), sorted(bad), "FAIL lines with -purge")
    eq(names_in(removed, "removed"), sorted(bad), "removed lines")
    eq(counts[1:], (2, 0), "summary of -purge (failed, skipped)")
    for mv in bad:
        m, v = mv.split("@")
        for kind in ("info", "mod", "zip"):
            check(not os.path.exists(os.path.join(cache, mkmodules.rel(m, v, kind))),
                  "-purge left %s .%s" % (mv, kind))
    for m, v in all_versions():
        if "%s@%s" % (m, v) not in bad:
            for kind in ("info", "mod", "zip"):
                check(read(os.path.join(cache, mkmodules.rel(m, v, kind))) == tree(m, v, kind),
                      "-purge touched %s@%s .%s" % (m, v, kind))
    rc, counts, fails, removed, out = run_verify(sdb)
    eq((rc, counts, fails), (0, (total - 4, 0, 0), []), "verify after -purge (output %r)" % out[-1500:])
    # a cached zip replaced by a valid module zip with other content
    zf = os.path.join(cache, mkmodules.rel(MIXED, "v1.0.0", "zip"))
    with open(zf, "wb") as f:
        f.write(tampered_zip(MIXED, "v1.0.0"))
    rc, counts, fails, removed, out = run_verify(sdb)
    eq((rc, counts), (1, (total - 5, 1, 0)), "verify with a valid but altered zip (output %r)" % out[-1500:])
    eq(len(fails), 1, "FAIL lines %s" % fails)
    check(fails[0].startswith("FAIL %s@v1.0.0 zip:" % MIXED) and "checksum mismatch" in fails[0],
          "FAIL line %r" % fails[0])
    with open(zf, "wb") as f:
        f.write(tree(MIXED, "v1.0.0", "zip"))
    # -noSumPatterns: matching modules are skipped
    corrupt(cache, zip_mod=(LIBD, "v1.1.0"), mod_mod=(LIBC, "v2.0.0"))
    rc, counts, fails, removed, out = run_verify(sdb + ["-noSumPatterns", "example.com/libd,example.com/libc"])
    eq(rc, 0, "exit status with the bad modules in -noSumPatterns (output %r)" % out[-1500:])
    eq(counts, (total - 4 - 6, 0, 6), "summary with -noSumPatterns (libd: 2 versions, libc: 1)")


def app_gosum(drop=()):
    """The app's go.sum (what Go 1.19 writes for it, with module graph
    pruning: both lines of each requirement), minus the lines whose
    "path version[/go.mod]" is in drop."""
    keys = []
    for m, v in mkmodules.APP_GO_MOD_REQUIRES:
        keys += ["%s %s" % (m, v), "%s %s/go.mod" % (m, v)]
    sums = C.info["sums"]
    return "".join("%s %s\n" % (k, sums[k]) for k in sorted(keys) if k not in drop)


@timeout(120)
def test_verify_cmd_gosum():
    verify_cmd_exists()
    db = new_db()
    work = newdir("vgosum")
    cache = os.path.join(work, "cache")
    total = fill_cache(db, cache)
    db.stop()       # go.sum mode needs no database
    gs = os.path.join(work, "go.sum")

    def run(drop=(), extra=()):
        with open(gs, "w") as f:
            f.write(app_gosum(drop))
        return run_verify(["-cacheDir", cache, "-gosum", gs] + list(extra))
    listed = 2 * len(mkmodules.APP_GO_MOD_REQUIRES)
    rc, counts, fails, _, out = run()
    eq((rc, counts, fails), (0, (listed, 0, total - listed), []), "honest cache against go.sum (output %r)"
       % out[-1500:])
    bad = corrupt(cache)
    rc, counts, fails, _, out = run()
    eq(rc, 1, "exit status with two bad files (output %r)" % out[-1500:])
    eq(names_in(fails, "FAIL"), sorted(bad), "FAIL lines")
    check_fail_kinds(fails, bad)
    eq(counts, (listed - 2, 2, total - listed), "summary")
    # a go.sum that lacks the zip's line: that file is skipped, not failed
    rc, counts, fails, _, out = run(drop=("%s v1.1.0" % LIBA,))
    eq(rc, 1, "exit status, one bad file listed (output %r)" % out[-1500:])
    eq(names_in(fails, "FAIL"), ["%s@v1.0.0" % LIBB], "FAIL lines")
    eq(counts, (listed - 2, 1, total - listed + 1), "summary with the zip's line missing")
    rc, counts, fails, _, out = run(drop=("%s v1.1.0" % LIBA, "%s v1.0.0/go.mod" % LIBB))
    eq((rc, fails), (0, []), "nothing listed is bad (output %r)" % out[-1500:])
    eq(counts, (listed - 2, 0, total - listed + 2), "summary with both lines missing")
    rc, counts, fails, removed, out = run(extra=["-purge"])
    eq(rc, 1, "exit status of -gosum -purge (output %r)" % out[-1500:])
    eq(names_in(removed, "removed"), sorted(bad), "removed lines")
    rc, counts, fails, _, out = run()
    eq((rc, counts[1]), (0, 0), "after -purge (output %r)" % out[-1500:])


# =================================================================== main

TESTS = [
    test_supported, test_endpoints_proxied_and_cached, test_root_endpoints_are_first_db,
    test_latest_expires_and_stale_when_db_down, test_db_down_retry_timing, test_private_lookups_refused, test_malformed_tile_paths,
    test_verify_honest_cached, test_verify_concurrent_honest, test_tampered_zip_rejected,
    test_swapped_gomod_rejected, test_db_bad_signature_rejected, test_db_record_beyond_tree_rejected,
    test_db_bad_tiles_rejected, test_db_lookup_hashes_rejected, test_db_forged_tile_rejected,
    test_db_fork_larger_rejected, test_db_fork_same_size_rejected, test_verified_tree_persisted,
    test_unknown_module_rejected, test_nosum_patterns_not_verified, test_sumdb_off_not_verified,
    test_toolchain_verified_despite_nosum, test_toolchain_rejected_without_sumdb,
    test_db_unreachable_refuses,
    test_sumdb_under_path_prefix,
    test_database_through_upstream_proxy, test_database_found_through_upstream,
    test_database_unavailable_after_upstream_error, test_database_direct_when_no_entry_proxies_it,
    test_go_through_proxy_sumdb, test_go_through_chained_proxies, test_go_sumdb_at_root, test_go_sumdb_at_root_https,
    test_go_fails_on_tampered_zip,
    test_go_with_db_down_uses_cache,
    test_verify_cmd_usage_error, test_verify_cmd_reports_and_purges, test_verify_cmd_gosum,
]


def main(argv):
    return R.main(setup, TESTS, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

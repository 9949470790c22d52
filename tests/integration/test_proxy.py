#!/usr/bin/env python3
"""Integration tests for goproxyd over HTTP against fake upstreams.

Run:  python3 tests/integration/test_proxy.py [NAME-SUBSTRING ...]
Env:  GOPROXYD=path/to/binary (default ./build/goproxyd)
      BIG_MIB=16 (size of the big module used by the kill -9 test)
      KEEP_TMP=1 (keep temp dirs and daemon logs)
Prints "ok NAME" / "FAIL NAME: reason" per test; last line "N passed, N failed";
exit 1 if any test failed.  Standard library only; only 127.0.0.1 is contacted.
"""

import base64
import json
import os
import re
import shutil
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import fakeupstream  # noqa: E402
import mkmodules  # noqa: E402
from harness import (Daemon, Runner, TestFailure, all_files, check, daemon_binary, eq,  # noqa: E402
                     free_port, get, make_tmp, norm_ct, raw_request, read, request,
                     run_binary, timeout, tmp_leftovers)

IMMUTABLE_CC = "public, max-age=31536000, immutable"
CT = {"info": "application/json", "latest": "application/json", "list": "text/plain; charset=utf-8",
      "mod": "text/plain; charset=utf-8", "zip": "application/zip"}

LIBA = "example.com/liba"
LIBB = "example.com/libb"
MIXED = "example.com/MixedCase/lib"
LIBC = "example.com/libc/v2"
LIBD = "example.com/libd"
PRIV = mkmodules.PRIVATE_MODULE
BIG = mkmodules.BIG_MODULE

R = Runner(default_timeout=120)


class Ctx:
    tmp = None
    tree = None
    info = None
    A = None          # fake upstream 1
    B = None          # fake upstream 2 (same tree)
    daemons = []
    n = 0


C = Ctx()


def setup():
    C.tmp = make_tmp("goproxyd-it-", R)
    C.tree = os.path.join(C.tmp, "tree")
    big = float(os.environ.get("BIG_MIB", "16"))
    C.info = mkmodules.generate(C.tree, big_mib=big)
    C.A = fakeupstream.FakeUpstream(C.tree).start()
    C.B = fakeupstream.FakeUpstream(C.tree).start()
    R.cleanups.append(C.A.stop)
    R.cleanups.append(C.B.stop)
    R.after_each.append(after_each)
    R.cleanups.append(stop_daemons)


def stop_daemons():
    while C.daemons:
        d = C.daemons.pop()
        d.stop(timeout=5)


def after_each():
    stop_daemons()
    C.A.reset()
    C.B.reset()


def newdir(name):
    C.n += 1
    d = os.path.join(C.tmp, "t%02d-%s" % (C.n, name))
    os.makedirs(d)
    return d


def daemon(proxy=None, extra=(), cache=None, name="d", workdir=None):
    if cache is None:
        cache = os.path.join(newdir(name), "cache")
    d = Daemon(cache, C.A.url if proxy is None else proxy, extra, workdir=workdir)
    C.daemons.append(d)
    return d.start()


def p(module, version=None, kind="zip", pct=False):
    s = "/" + mkmodules.rel(module, version, kind)
    return s.replace("!", "%21") if pct else s


def tree(module, version=None, kind="zip"):
    return C.info["files"][mkmodules.rel(module, version, kind)]


def cpath(d, module, version=None, kind="zip"):
    return os.path.join(d.cache_dir, mkmodules.rel(module, version, kind))


def xcache(r):
    return (r.h("X-Goproxyd-Cache") or "").strip().lower()


def expect_ok(r, want_body, kind, what):
    eq(r.status, 200, "%s status (body %r)" % (what, r.body[:200]))
    check(r.body == want_body, "%s: body differs from upstream (%d vs %d bytes)"
          % (what, len(r.body), len(want_body)))
    eq(r.h("Content-Length"), str(len(want_body)), "%s Content-Length" % what)
    eq(norm_ct(r.h("Content-Type")), norm_ct(CT[kind]), "%s Content-Type" % what)


def expect_error(r, statuses, what, contains=None):
    check(r.status in statuses, "%s: status %d, want %s (body %r)" % (what, r.status, statuses, r.body[:100]))
    cc = (r.h("Cache-Control") or "").lower()
    check("no-store" in cc, "%s: Cache-Control %r lacks no-store" % (what, cc))
    if contains:
        for c in (contains if isinstance(contains, (list, tuple)) else [contains]):
            check(c.lower() in r.text().lower(), "%s: body %r lacks %r" % (what, r.text()[:300], c))


def expect_not_stored(d, module, version, kind, what):
    f = cpath(d, module, version, kind)
    check(not os.path.exists(f), "%s: %s was stored in the cache" % (what, os.path.relpath(f, d.cache_dir)))
    left = tmp_leftovers(d.cache_dir)
    check(not left, "%s: temp files left: %s" % (what, left))


# =================================================================== flags

def _flagrun(args):
    d = newdir("flags")
    return run_binary([daemon_binary(), "-listen", "127.0.0.1:%d" % free_port(),
                       "-cacheDir", os.path.join(d, "cache")] + args, timeout=10, cwd=d)


def _one_stderr_line(err, what):
    lines = [l for l in err.strip("\n").split("\n")]
    check(len(lines) == 1 and lines[0].strip(), "%s: want exactly one stderr line, got %r" % (what, err))
    return lines[0]


def test_flag_badflag():
    rc, out, err = _flagrun(["-badflag"])
    eq(rc, 2, "exit status of -badflag (stderr %r)" % err)
    line = _one_stderr_line(err, "-badflag")
    check("badflag" in line, "stderr %r does not name the flag" % line)


def test_flag_help():
    for f in ("-h", "-help"):
        rc, out, err = _flagrun([f])
        eq(rc, 0, "exit status of %s (stderr %r)" % (f, err))
        check(out.strip(), "%s printed nothing on stdout (usage expected there)" % f)
        check("-cacheDir" in out or "cacheDir" in out, "%s usage does not mention -cacheDir: %r" % (f, out[:200]))


def test_flag_version():
    rc, out, err = _flagrun(["-version"])
    eq(rc, 0, "exit status of -version (stderr %r)" % err)
    check(re.match(r"^goproxyd \d+\.\d+\.\d+", out.strip()), "-version printed %r" % out)


def test_flag_proxy_direct():
    """'direct' is an entry (tests/integration/test_direct.py); it needs the
    go command, and without one goproxyd exits 1 at start-up."""
    for val in ("direct", C.A.url + ",direct"):
        rc, out, err = _flagrun(["-proxy", val, "-goBin", "/nonexistent/go"])
        eq(rc, 1, "exit status of -proxy %s without a go command (stderr %r)" % (val, err))
        check("go command does not run" in err, "stderr for -proxy %s: %r" % (val, err))


def test_flag_bad_value():
    rc, out, err = _flagrun(["-cacheExpire", "xyz"])
    eq(rc, 2, "exit status of -cacheExpire xyz (stderr %r)" % err)
    line = _one_stderr_line(err, "-cacheExpire xyz")
    check("cacheExpire" in line, "stderr %r does not name the flag" % line)


# =================================================================== basic serving

def test_miss_then_hit():
    d = daemon()
    path = p(LIBA, "v1.0.0", "zip")
    want = tree(LIBA, "v1.0.0", "zip")
    r1 = get(d.port, path)
    expect_ok(r1, want, "zip", "first GET")
    eq(xcache(r1), "miss", "X-Goproxyd-Cache of first GET")
    f = cpath(d, LIBA, "v1.0.0", "zip")
    check(os.path.isfile(f), "cache file %s missing" % f)
    check(read(f) == want, "cache file differs from upstream zip")
    r2 = get(d.port, path)
    expect_ok(r2, want, "zip", "second GET")
    eq(xcache(r2), "hit", "X-Goproxyd-Cache of second GET")
    eq(C.A.count(re.escape(path) + "$"), 1, "upstream requests for the zip")
    check(not tmp_leftovers(d.cache_dir), "temp files left: %s" % tmp_leftovers(d.cache_dir))


def test_headers_immutable():
    d = daemon()
    for kind in ("info", "mod", "zip"):
        path = p(LIBA, "v1.1.0", kind)
        want = tree(LIBA, "v1.1.0", kind)
        etags = []
        for n in ("miss", "hit"):
            r = get(d.port, path)
            what = "%s (%s)" % (path, n)
            expect_ok(r, want, kind, what)
            eq(xcache(r), n, "%s X-Goproxyd-Cache" % what)
            eq(r.h("Cache-Control"), IMMUTABLE_CC, "%s Cache-Control" % what)
            et = r.h("ETag") or ""
            check(re.match(r'^"[^"]+"$', et), "%s: ETag %r is not a strong ETag" % (what, et))
            eq(r.h("Accept-Ranges"), "bytes", "%s Accept-Ranges" % what)
            check((r.h("Content-Encoding") or "identity") == "identity",
                  "%s: Content-Encoding %r" % (what, r.h("Content-Encoding")))
            etags.append(et)
        eq(etags[0], etags[1], "%s ETag stable between miss and hit" % path)
    # different files have different ETags
    e1 = get(d.port, p(LIBA, "v1.1.0", "zip")).h("ETag")
    e2 = get(d.port, p(LIBA, "v1.1.0", "mod")).h("ETag")
    check(e1 != e2, "zip and mod share ETag %r" % e1)


def test_headers_mutable():
    d = daemon()
    for kind, want in (("list", tree(LIBA, kind="list")), ("latest", tree(LIBA, kind="latest"))):
        path = p(LIBA, kind=kind)
        for n in ("miss", "hit"):
            r = get(d.port, path)
            what = "%s (%s)" % (path, n)
            expect_ok(r, want, kind, what)
            eq(xcache(r), n, "%s X-Goproxyd-Cache" % what)
            cc = r.h("Cache-Control") or ""
            m = re.match(r"^public, max-age=(\d+)$", cc)
            check(m, "%s: Cache-Control %r, want 'public, max-age=N'" % (what, cc))
            check(0 < int(m.group(1)) <= 300, "%s: max-age %s not in (0, 300] (-cacheExpire 5m)" % (what, m.group(1)))
            check("immutable" not in cc, "%s: mutable answer marked immutable" % what)
        check(os.path.isfile(cpath(d, LIBA, kind=kind)), "%s not stored" % kind)
    eq(json.loads(get(d.port, p(LIBA, kind="latest")).body)["Version"], "v1.1.0", "@latest Version")


def test_headers_errors():
    d = daemon()
    r = get(d.port, "/example.com/nosuch/@v/list")
    expect_error(r, (404,), "unknown module", "not found")
    eq(norm_ct(r.h("Content-Type")), norm_ct("text/plain; charset=utf-8"), "404 Content-Type")
    eq(r.h("Content-Length"), str(len(r.body)), "404 Content-Length")
    r = get(d.port, "/example.com/liba/@v/v1.0.zip")
    expect_error(r, (400,), "non-canonical zip")
    eq(norm_ct(r.h("Content-Type")), norm_ct("text/plain; charset=utf-8"), "400 Content-Type")
    check(r.body.rstrip(b"\n").count(b"\n") == 0 and r.body.strip(), "400 body not one line: %r" % r.body)
    eq(C.A.count(r"v1\.0\.zip"), 0, "upstream requests for the malformed path")


def test_escaped_paths():
    d = daemon()
    for pct in (True, False):
        for kind in ("info", "mod", "zip"):
            r = get(d.port, p(MIXED, "v1.0.0", kind, pct))
            expect_ok(r, tree(MIXED, "v1.0.0", kind), kind, p(MIXED, "v1.0.0", kind, pct))
            r = get(d.port, p(LIBD, "v1.2.0-RC1", kind, pct))
            expect_ok(r, tree(LIBD, "v1.2.0-RC1", kind), kind, p(LIBD, "v1.2.0-RC1", kind, pct))
    r = get(d.port, p(MIXED, kind="list", pct=True))
    expect_ok(r, tree(MIXED, kind="list"), "list", "mixed-case list")
    eq(json.loads(get(d.port, p(LIBD, "v1.2.0-RC1", "info", True)).body)["Version"], "v1.2.0-RC1",
       ".info Version of the uppercase prerelease")
    for m, v in ((MIXED, "v1.0.0"), (LIBD, "v1.2.0-RC1")):
        for kind in ("info", "mod", "zip"):
            f = cpath(d, m, v, kind)
            check(os.path.isfile(f), "not stored at the escaped path %s" % os.path.relpath(f, d.cache_dir))
            check(read(f) == tree(m, v, kind), "%s differs" % f)
    # never stored under an unescaped (uppercase) name
    for f in all_files(d.cache_dir):
        check(f == f.lower(), "cache holds an uppercase name: %s" % f)


def test_major_version():
    d = daemon()
    for kind in ("info", "mod", "zip"):
        expect_ok(get(d.port, p(LIBC, "v2.0.0", kind)), tree(LIBC, "v2.0.0", kind), kind, "libc/v2 " + kind)
    for path in ("/example.com/libc/v2/@v/v1.0.0.mod", "/example.com/libc/v2/@v/v3.0.0.zip",
                 "/example.com/liba/@v/v2.0.0.mod", "/example.com/liba/@v/v2.0.0.zip"):
        expect_error(get(d.port, path), (400,), path)
    eq(C.A.count(r"libc/v2/@v/v[13]|liba/@v/v2"), 0, "upstream requests for major-version mismatches")


def test_range():
    d = daemon()
    path = p(LIBA, "v1.0.0", "zip")
    want = tree(LIBA, "v1.0.0", "zip")
    n = len(want)
    etag = get(d.port, path).h("ETag")
    for rng, lo, hi in (("bytes=0-9", 0, 9), ("bytes=10-", 10, n - 1), ("bytes=-5", n - 5, n - 1),
                        ("bytes=5-%d" % (n + 100), 5, n - 1)):
        r = get(d.port, path, {"Range": rng})
        eq(r.status, 206, "status for Range %s" % rng)
        eq(r.h("Content-Range"), "bytes %d-%d/%d" % (lo, hi, n), "Content-Range for %s" % rng)
        eq(r.h("Content-Length"), str(hi - lo + 1), "Content-Length for %s" % rng)
        check(r.body == want[lo:hi + 1], "body for Range %s differs" % rng)
    for rng in ("bytes=%d-" % n, "bytes=%d-%d" % (n + 10, n + 20)):
        r = get(d.port, path, {"Range": rng})
        eq(r.status, 416, "status for unsatisfiable Range %s" % rng)
        eq(r.h("Content-Range"), "bytes */%d" % n, "Content-Range of 416 for %s" % rng)
    r = get(d.port, path, {"Range": "bytes=0-9", "If-Range": etag})
    eq(r.status, 206, "Range with matching If-Range")
    r = get(d.port, path, {"Range": "bytes=0-9", "If-Range": '"not-the-etag"'})
    eq(r.status, 200, "Range with non-matching If-Range")
    check(r.body == want, "full body after non-matching If-Range")


def test_head():
    d = daemon()
    # cold .info, then the cached zip, then a list
    for path, kind, want in ((p(LIBB, "v1.0.0", "info"), "info", tree(LIBB, "v1.0.0", "info")),
                             (p(LIBB, "v1.0.0", "zip"), "zip", tree(LIBB, "v1.0.0", "zip")),
                             (p(LIBB, "v1.0.0", "zip"), "zip", tree(LIBB, "v1.0.0", "zip")),
                             (p(LIBB, kind="list"), "list", tree(LIBB, kind="list"))):
        r = request(d.port, "HEAD", path)
        eq(r.status, 200, "HEAD %s status" % path)
        eq(r.h("Content-Length"), str(len(want)), "HEAD %s Content-Length" % path)
        eq(norm_ct(r.h("Content-Type")), norm_ct(CT[kind]), "HEAD %s Content-Type" % path)
        eq(r.body, b"", "HEAD %s body" % path)
    r = request(d.port, "HEAD", "/example.com/liba/@v/v1.0.zip")
    eq(r.status, 400, "HEAD of a malformed path")
    # the connection still works after HEAD (no stray body bytes)
    expect_ok(get(d.port, p(LIBB, "v1.0.0", "mod")), tree(LIBB, "v1.0.0", "mod"), "mod", "GET after HEAD")


def test_methods_405():
    d = daemon()
    for m in ("POST", "PUT", "DELETE"):
        for path in (p(LIBA, "v1.0.0", "zip"), p(LIBA, kind="list"), "/"):
            r = request(d.port, m, path, body=b"")
            eq(r.status, 405, "%s %s status" % (m, path))
            allow = (r.h("Allow") or "").replace(" ", "").upper().split(",")
            check("GET" in allow and "HEAD" in allow, "%s %s: Allow %r" % (m, path, r.h("Allow")))
    eq(C.A.count(), 0, "upstream requests caused by 405 methods")
    check(not os.path.exists(cpath(d, LIBA, "v1.0.0", "zip")), "405 request stored a file")


# =================================================================== upstream list semantics

def test_fallback_comma_404():
    for st, kind in ((404, "info"), (410, "mod")):
        C.A.set_rules({".*": {"status": st}})
        d = daemon(proxy=C.A.url + "," + C.B.url)
        expect_ok(get(d.port, p(LIBA, "v1.0.0", kind)), tree(LIBA, "v1.0.0", kind), kind,
                  "',' after a %d" % st)
        check(C.A.count() >= 1, "first upstream not asked (status %d)" % st)
        check(C.B.count() >= 1, "second upstream not asked after %d" % st)
        after_each()


def test_fallback_pipe_404():
    C.A.set_rules({".*": {"status": 404}})
    d = daemon(proxy=C.A.url + "|" + C.B.url)
    expect_ok(get(d.port, p(LIBA, "v1.0.0", "zip")), tree(LIBA, "v1.0.0", "zip"), "zip", "'|' after a 404")
    check(C.A.count() >= 1 and C.B.count() >= 1, "stats A=%s B=%s" % (C.A.stats(), C.B.stats()))


def test_fallback_comma_500_terminal():
    C.A.set_rules({".*": {"status": 500, "body": "boom from A"}})
    d = daemon(proxy=C.A.url + "," + C.B.url)
    r = get(d.port, p(LIBA, "v1.0.0", "info"))
    expect_error(r, (404,), "',' after a 500", "upstream error")
    t = r.text().lower()
    check("500" in t or "internal server error" in t, "error body does not name the 500: %r" % r.text())
    check(C.A.count() >= 1, "first upstream not asked")
    eq(C.B.count(), 0, "requests to the second upstream after a 500 behind ','")
    expect_not_stored(d, LIBA, "v1.0.0", "info", "',' after 500")


def test_fallback_pipe_500():
    C.A.set_rules({".*": {"status": 500}})
    d = daemon(proxy=C.A.url + "|" + C.B.url)
    for kind in ("info", "zip"):
        expect_ok(get(d.port, p(LIBA, "v1.0.0", kind)), tree(LIBA, "v1.0.0", kind), kind, "'|' after 500")
    check(C.B.count() >= 2, "second upstream stats %s" % C.B.stats())


def test_deny():
    d = daemon(extra=["-deny", "example.com/private*"])
    for path in (p(PRIV, kind="list"), p(PRIV, "v1.0.0", "info"), p(PRIV, "v1.0.0", "mod"),
                 p(PRIV, "v1.0.0", "zip"), p(PRIV, kind="latest")):
        expect_error(get(d.port, path), (404,), "denied " + path, "-deny")
    eq(C.A.count("private"), 0, "upstream requests for a denied module")
    check(not os.path.exists(os.path.join(d.cache_dir, "example.com", "private")),
          "something stored for the denied module")
    expect_ok(get(d.port, p(LIBA, kind="list")), tree(LIBA, kind="list"), "list", "module not denied")


@timeout(60)
def test_stale_list():
    d = daemon(extra=["-cacheExpire", "1s"])
    path = p(LIBA, kind="list")
    want = tree(LIBA, kind="list")
    r = get(d.port, path)
    expect_ok(r, want, "list", "first list")
    eq(xcache(r), "miss", "first list X-Goproxyd-Cache")
    time.sleep(1.6)
    C.A.set_rules({"/@v/list$": {"status": 500}})
    r = get(d.port, path)
    expect_ok(r, want, "list", "list with failing upstream after expiry")
    eq(xcache(r), "stale", "X-Goproxyd-Cache with failing upstream after expiry")
    eq(r.h("Cache-Control"), "public, max-age=0", "Cache-Control of a stale answer")
    check(C.A.count(r"/@v/list$") >= 2, "upstream not asked again after expiry: %s" % C.A.stats())
    C.A.reset()
    r = get(d.port, path)
    expect_ok(r, want, "list", "list after upstream recovered")
    eq(xcache(r), "miss", "X-Goproxyd-Cache after upstream recovered")
    eq(C.A.count(r"/@v/list$"), 1, "upstream list requests after recovery")


# =================================================================== bad upstream answers

def _bad_answer(module, version, kind, rule, extra=(), max_seconds=None):
    d = daemon(extra=extra)
    path = p(module, version, kind)
    C.A.set_rules({re.escape(path) + "$": rule})
    t0 = time.time()
    r = get(d.port, path, timeout=60)
    el = time.time() - t0
    expect_error(r, (404,), "bad answer %s" % json.dumps(rule)[:80])
    if max_seconds:
        check(el < max_seconds, "answer took %.1fs for %d upstream attempts (limit %ds)"
              % (el, C.A.count(re.escape(path) + "$"), max_seconds))
    check(C.A.count(re.escape(path) + "$") >= 1, "upstream not asked")
    expect_not_stored(d, module, version, kind, "after bad answer")
    # once the fault is gone the same request succeeds (nothing poisoned)
    C.A.reset()
    r = get(d.port, path)
    expect_ok(r, tree(module, version, kind), kind, "after the fault cleared")
    check(read(cpath(d, module, version, kind)) == tree(module, version, kind), "stored file differs")
    return d


def test_bad_garbage_zip():
    _bad_answer(LIBA, "v1.1.0", "zip", {"garbage": True})


def test_bad_zip_outside_prefix():
    z = mkmodules.bad_zip_outside_prefix(LIBA, "v1.1.0")
    _bad_answer(LIBA, "v1.1.0", "zip", {"body_b64": base64.b64encode(z).decode()})


def test_bad_zip_other_version_prefix():
    # a valid module zip, but for another version of the module
    z = tree(LIBA, "v1.0.0", "zip")
    _bad_answer(LIBA, "v1.1.0", "zip", {"body_b64": base64.b64encode(z).decode()})


def test_bad_info_other_version():
    _bad_answer(LIBA, "v1.1.0", "info", {"info_version": "v9.9.9"})


def test_bad_info_garbage():
    _bad_answer(LIBA, "v1.1.0", "info", {"garbage": True})


def test_bad_cut_body():
    _bad_answer(LIBA, "v1.1.0", "zip", {"cut_after_bytes": 100})


def test_bad_wrong_content_length():
    _bad_answer(LIBB, "v1.0.0", "mod", {"wrong_content_length": len(tree(LIBB, "v1.0.0", "mod")) + 500})


def test_bad_status_500():
    _bad_answer(LIBA, "v1.1.0", "zip", {"status": 500})


def test_bad_status_502_503():
    _bad_answer(LIBA, "v1.1.0", "mod", {"status": 502})
    after_each()
    _bad_answer(LIBA, "v1.1.0", "info", {"status": 503})


@timeout(90)
def test_bad_stall_before_headers():
    _bad_answer(LIBA, "v1.1.0", "zip", {"stall_before_headers": 60},
                extra=["-stallTimeout", "2s"], max_seconds=15)


@timeout(90)
def test_bad_stall_mid_body():
    _bad_answer(LIBA, "v1.1.0", "zip", {"stall_after_bytes": [100, 60]},
                extra=["-stallTimeout", "2s"], max_seconds=15)


# =================================================================== other upstream behaviour

def test_retry_transient():
    d = daemon()
    path = p(LIBA, "v1.0.0", "mod")
    C.A.set_rules({re.escape(path) + "$": {"status": 503, "times": 2}})
    expect_ok(get(d.port, path), tree(LIBA, "v1.0.0", "mod"), "mod", "after two 503s")
    eq(C.A.count(re.escape(path) + "$"), 3, "upstream tries (3 in total)")
    path = p(LIBA, "v1.0.0", "info")
    C.A.set_rules({re.escape(path) + "$": {"status": 429, "times": 1}})
    expect_ok(get(d.port, path), tree(LIBA, "v1.0.0", "info"), "info", "after a 429")
    path = p(LIBA, "v1.0.0", "zip")
    C.A.set_rules({re.escape(path) + "$": {"close": True, "times": 1}})
    expect_ok(get(d.port, path), tree(LIBA, "v1.0.0", "zip"), "zip", "after a dropped connection")


def test_redirect_followed():
    d = daemon()
    path = p(LIBA, "v1.0.0", "zip")
    C.A.set_rules({re.escape(path) + "$": {"redirect": C.B.url + "{path}"}})
    expect_ok(get(d.port, path), tree(LIBA, "v1.0.0", "zip"), "zip", "redirected zip")
    eq(C.B.count(re.escape(path) + "$"), 1, "requests to the redirect target")


def test_concurrent_single_fetch():
    d = daemon()
    path = p(LIBA, "v1.1.0", "zip")
    C.A.set_rules({re.escape(path) + "$": {"stall_before_headers": 1.5}})
    results = [None] * 8

    def worker(i):
        try:
            results[i] = get(d.port, path)
        except Exception as e:
            results[i] = e
    ths = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(8)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(40)
    for i, r in enumerate(results):
        check(not isinstance(r, Exception) and r is not None, "request %d: %r" % (i, r))
        expect_ok(r, tree(LIBA, "v1.1.0", "zip"), "zip", "concurrent request %d" % i)
    eq(C.A.count(re.escape(path) + "$"), 1, "upstream requests for 8 concurrent misses")


def test_miss_fetches_only_that_file():
    d = daemon()
    for kind in ("mod", "info"):
        C.A.reset()
        expect_ok(get(d.port, p(LIBB, "v1.0.0", kind)), tree(LIBB, "v1.0.0", kind), kind, kind)
        eq(sorted(C.A.stats()), [p(LIBB, "v1.0.0", kind)], "upstream paths for a .%s miss" % kind)


def test_not_found_and_non_endpoints():
    d = daemon()
    expect_error(get(d.port, "/example.com/nosuch/@v/v1.0.0.zip"), (404,), "missing zip", "not found")
    expect_error(get(d.port, "/example.com/@latest"), (404,), "path prefix @latest")
    expect_error(get(d.port, "/example.com/@v/list"), (404,), "path prefix list")
    for path in ("/", "/example.com/foo", "/example.com/liba/@v/", "/favicon.ico"):
        r = get(d.port, path)
        check(r.status in (400, 404), "%s: status %d" % (path, r.status))
        check("no-store" in (r.h("Cache-Control") or ""), "%s: no no-store" % path)
    r = get(d.port, "/")
    eq(r.status, 404, "status of /")
    r = get(d.port, "/example.com/foo")
    eq(r.status, 404, "status of /example.com/foo")


def test_negative_cache():
    d = daemon()
    path = "/example.com/liba/@v/v1.9.0.info"
    for _ in range(2):
        expect_error(get(d.port, path), (404,), "missing version", "not found")
    eq(C.A.count(re.escape(path) + "$"), 1, "upstream requests with -negativeCacheExpire 1m")
    expect_not_stored(d, LIBA, "v1.9.0", "info", "404")
    after_each()
    d = daemon(extra=["-negativeCacheExpire", "0"])
    for _ in range(2):
        expect_error(get(d.port, path), (404,), "missing version")
    eq(C.A.count(re.escape(path) + "$"), 2, "upstream requests with -negativeCacheExpire 0")


def test_noncanonical_info_query():
    d = daemon()
    body = json.dumps({"Version": "v1.1.0", "Time": "2023-01-02T10:00:00Z"})
    C.A.set_rules({r"/example\.com/liba/@v/v1\.info$": {"body": body, "content_type": "application/json"}})
    r = get(d.port, "/example.com/liba/@v/v1.info")
    eq(r.status, 200, "status of a non-canonical .info query")
    eq(json.loads(r.body)["Version"], "v1.1.0", "resolved Version")
    cc = r.h("Cache-Control") or ""
    check(re.match(r"^public, max-age=\d+$", cc), "non-canonical .info Cache-Control %r (must be mutable)" % cc)
    check(not os.path.exists(os.path.join(d.cache_dir, "example.com/liba/@v/v1.info")),
          "query answer stored as an immutable @v/v1.info")
    check(os.path.isfile(os.path.join(d.cache_dir, "example.com/liba/@query/v1.info")),
          "@query/v1.info not stored")
    check(os.path.isfile(cpath(d, LIBA, "v1.1.0", "info")), "resolved @v/v1.1.0.info not stored")
    expect_error(get(d.port, "/example.com/liba/@v/v1.zip"), (400,), "non-canonical zip")


def test_startup_tmp_sweep():
    dd = newdir("sweep")
    cache = os.path.join(dd, "cache")
    junk = [os.path.join(cache, "example.com/liba/@v/.goproxyd-tmp-abc123"),
            os.path.join(cache, ".goproxyd-tmp-top"),
            os.path.join(cache, "example.com/!mixed!case/lib/@v/.goproxyd-tmp-x.zip")]
    for j in junk:
        os.makedirs(os.path.dirname(j), exist_ok=True)
        with open(j, "wb") as f:
            f.write(b"partial")
    keep = os.path.join(cache, mkmodules.rel(LIBA, "v1.0.0", "mod"))
    with open(keep, "wb") as f:
        f.write(tree(LIBA, "v1.0.0", "mod"))
    d = daemon(cache=cache)
    time.sleep(0.3)
    check(not tmp_leftovers(cache), "temp files survived start-up: %s" % tmp_leftovers(cache))
    check(os.path.isfile(keep), "start-up sweep removed a real cache file")
    r = get(d.port, p(LIBA, "v1.0.0", "mod"))
    expect_ok(r, tree(LIBA, "v1.0.0", "mod"), "mod", "pre-seeded .mod")
    eq(xcache(r), "hit", "pre-seeded .mod X-Goproxyd-Cache")


def test_proxy_off():
    dd = newdir("off")
    cache = os.path.join(dd, "cache")
    d = daemon(cache=cache)
    for kind in ("info", "mod", "zip"):
        expect_ok(get(d.port, p(LIBA, "v1.0.0", kind)), tree(LIBA, "v1.0.0", kind), kind, "fill " + kind)
    expect_ok(get(d.port, p(LIBA, kind="list")), tree(LIBA, kind="list"), "list", "fill list")
    d.stop()
    C.A.reset()
    d = daemon(proxy="off", cache=cache)
    for kind in ("info", "mod", "zip"):
        r = get(d.port, p(LIBA, "v1.0.0", kind))
        expect_ok(r, tree(LIBA, "v1.0.0", kind), kind, "-proxy off cached " + kind)
        eq(xcache(r), "hit", "-proxy off X-Goproxyd-Cache")
    expect_ok(get(d.port, p(LIBA, kind="list")), tree(LIBA, kind="list"), "list", "-proxy off cached list")
    for path in (p(LIBA, "v1.1.0", "zip"), p(LIBB, "v1.0.0", "info"), p(LIBB, kind="list")):
        expect_error(get(d.port, path), (404,), "-proxy off uncached " + path, "cache")
    eq(C.A.count(), 0, "upstream requests with -proxy off")
    expect_not_stored(d, LIBA, "v1.1.0", "zip", "-proxy off")


def test_cached_only():
    """/cached-only/... (proxy.golang.org's GOPROXY=.../cached-only): answers
    from the cache alone and never asks the upstream; an expired list is
    served as stale, an uncached file is 404 saying why."""
    d = daemon(cache=os.path.join(newdir("cached-only"), "cache"), extra=["-cacheExpire", "1s"])
    for kind in ("info", "mod", "zip"):
        expect_ok(get(d.port, p(LIBA, "v1.0.0", kind)), tree(LIBA, "v1.0.0", kind), kind, "fill " + kind)
    expect_ok(get(d.port, p(LIBA, kind="list")), tree(LIBA, kind="list"), "list", "fill list")
    C.A.reset()
    for kind in ("info", "mod", "zip"):
        r = get(d.port, "/cached-only" + p(LIBA, "v1.0.0", kind))
        expect_ok(r, tree(LIBA, "v1.0.0", kind), kind, "cached-only " + kind)
        eq(xcache(r), "hit", "cached-only %s X-Goproxyd-Cache" % kind)
    time.sleep(1.2)   # past -cacheExpire: a plain request would refresh the list
    r = get(d.port, "/cached-only" + p(LIBA, kind="list"))
    expect_ok(r, tree(LIBA, kind="list"), "list", "cached-only expired list")
    eq(xcache(r), "stale", "cached-only expired list X-Goproxyd-Cache")
    eq(r.h("Cache-Control"), "public, max-age=0", "cached-only expired list Cache-Control")
    for m, v, kind in ((LIBA, "v1.1.0", "zip"), (LIBB, "v1.0.0", "info"), (LIBB, "v1.0.0", "mod")):
        what = "cached-only uncached %s@%s.%s" % (m, v, kind)
        expect_error(get(d.port, "/cached-only" + p(m, v, kind)), (404,), what,
                     "not cached and was asked for under /cached-only/")
        expect_not_stored(d, m, v, kind, what)
    eq(C.A.count(), 0, "upstream requests under /cached-only")
    expect_ok(get(d.port, p(LIBA, "v1.1.0", "zip")), tree(LIBA, "v1.1.0", "zip"), "zip",
              "the same zip outside /cached-only")
    eq(C.A.count(), 1, "upstream requests once asked outside /cached-only")


@timeout(180)
def test_kill9_during_large_download():
    if BIG not in C.info["modules"]:
        raise TestFailure("BIG_MIB=0: no big module generated")
    dd = newdir("kill9")
    cache = os.path.join(dd, "cache")
    want = tree(BIG, mkmodules.BIG_VERSION, "zip")
    path = p(BIG, mkmodules.BIG_VERSION, "zip")
    C.A.set_rules({re.escape(path) + "$": {"stall_after_bytes": [len(want) // 2, 60], "times": 1}})
    d = daemon(cache=cache)
    box = {}

    def client():
        try:
            box["r"] = get(d.port, path, timeout=90)
        except Exception as e:
            box["e"] = e
    th = threading.Thread(target=client, daemon=True)
    th.start()
    deadline = time.time() + 30
    while time.time() < deadline and C.A.stalling() == 0:
        time.sleep(0.05)
    check(C.A.stalling() > 0, "upstream transfer of the big zip never started")
    time.sleep(1.0)   # let the daemon write the first half somewhere
    partial = tmp_leftovers(cache)
    d.kill9()
    th.join(30)
    final = os.path.join(cache, mkmodules.rel(BIG, mkmodules.BIG_VERSION, "zip"))
    check(not os.path.exists(final), "a (partial) zip exists at its final name after kill -9 (temp files "
          "seen before the kill: %s)" % partial)
    r = box.get("r")
    if r is not None and r.status == 200 and len(r.body) == len(want):
        raise TestFailure("client got a complete 200 although the daemon was killed mid-download")
    C.A.reset()
    d2 = daemon(cache=cache)
    time.sleep(0.3)
    check(not tmp_leftovers(cache), "temp files left after restart: %s" % tmp_leftovers(cache))
    r = get(d2.port, path, timeout=90)
    expect_ok(r, want, "zip", "big zip after restart")
    check(read(final) == want, "stored big zip differs from upstream")


# =================================================================== hostile requests

BAD_REQUESTS = [
    "/../etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/example.com%2F..%2F..%2Fetc/@v/list",
    "/example.com/m/@v/v1.0.0.zip%00",
    "/Example.com/m/@v/list",
    "/example.com/!M/@v/list",
    "/example.com/m!/@v/list",
    "/example.com/" + "a" * 5000 + "/@v/list",
    "/example.com/m/@v/v1.0.zip",
    "/example.com/m/@v/master.zip",
    "/example.com/m/@v/..%2f..%2fx.info",
    "/example.com/m/@v/..%2F..%2F..%2F..%2Fetc%2Fpasswd%00.info",
    "/example.com/m/@v/%2e%2e.info",
    "/example.com/m/../../../etc/passwd/@v/list",
    "/example.com/./m/@v/list",
    "/example.com//m/@v/list",
    "/example.com/m/@v/v1.0.0.info/x",
    "/example.com/m/@v/v1.0.0%5c..%5cx.info",
    "/example.com/m%5c..%5c..%5cx/@v/list",
    "/example.com/%c3%a9/@v/list",
    "/example.com/m/@v/v1.0.0%0a.info",
    "/example.com/m/@v/v1.0.0-%21%21.info",
    "/example.com/m/@v/!v1.0.0.info",
    "/example.com/.m/@v/list",
    "/-example.com/m/@v/list",
    "/example.com/con/@v/list",
    "/example.com/m/@v/list%00",
    "/example.com/m/@latest%2f..%2f..%2fx",
    "/%00/@v/list",
    "/example.com/m/@v/v1.0.0.zip/../../../etc/passwd",
]
RAW_BAD = [
    b"GET /example.com/m/@v/list\x00 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    b"GET /example.com/m\x00/../../etc/passwd/@v/list HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    b"GET /example.com/m/@v/v1.0.0.\xff.info HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
]


def test_bad_requests():
    dd = newdir("bad")
    sentinel = os.path.join(dd, "sentinel")
    os.makedirs(sentinel)
    cache = os.path.join(sentinel, "cache")
    d = daemon(cache=cache, workdir=dd)
    problems = []
    reqs = [("GET %s" % pth[:80], b"GET " + pth.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             b"Connection: close\r\n\r\n") for pth in BAD_REQUESTS]
    reqs += [(repr(raw[:60]), raw) for raw in RAW_BAD]
    for what, raw in reqs:
        try:
            r = raw_request(d.port, raw)
        except OSError as e:
            problems.append("%s: %s" % (what, e))
            continue
        if r is None:
            problems.append("%s: no HTTP response" % what)
        elif r.status not in (400, 404):
            problems.append("%s: status %d" % (what, r.status))
        elif b"root:" in r.body:
            problems.append("%s: served /etc/passwd?!" % what)
        if not d.alive():
            problems.append("daemon died after %s" % what)
            break
    check(not problems, "; ".join(problems))
    eq(sorted(os.listdir(sentinel)), ["cache"], "sentinel dir (parent of the cache dir) contents")
    extra = [x for x in os.listdir(dd) if x != "sentinel" and not x.endswith(".log")]
    check(not extra, "files created in the daemon's working directory: %s" % extra)
    files = all_files(cache)
    check(not files, "files created in the cache by bad requests: %s" % files[:10])
    bad_up = [q for q in C.A.stats() if ".." in q or "passwd" in q or "\x00" in q or "\\" in q]
    check(not bad_up, "hostile paths forwarded upstream: %s" % bad_up)
    expect_ok(get(d.port, p(LIBA, kind="list")), tree(LIBA, kind="list"), "list", "after the battery")


def test_sigterm_exits():
    d = daemon()
    get(d.port, p(LIBA, kind="list"))
    t0 = time.time()
    rc = d.stop(timeout=15)
    check(time.time() - t0 < 14, "daemon did not exit within 14s of SIGTERM")
    check(rc is not None and rc >= 0, "daemon exit status %r after SIGTERM" % rc)


TESTS = [
    test_flag_badflag, test_flag_help, test_flag_version, test_flag_proxy_direct, test_flag_bad_value,
    test_miss_then_hit, test_headers_immutable, test_headers_mutable, test_headers_errors,
    test_escaped_paths, test_major_version, test_range, test_head, test_methods_405,
    test_fallback_comma_404, test_fallback_pipe_404, test_fallback_comma_500_terminal, test_fallback_pipe_500,
    test_deny, test_stale_list,
    test_bad_garbage_zip, test_bad_zip_outside_prefix, test_bad_zip_other_version_prefix,
    test_bad_info_other_version, test_bad_info_garbage, test_bad_cut_body, test_bad_wrong_content_length,
    test_bad_status_500, test_bad_status_502_503, test_bad_stall_before_headers, test_bad_stall_mid_body,
    test_retry_transient, test_redirect_followed, test_concurrent_single_fetch,
    test_miss_fetches_only_that_file, test_not_found_and_non_endpoints, test_negative_cache,
    test_noncanonical_info_query, test_startup_tmp_sweep, test_proxy_off, test_cached_only,
    test_kill9_during_large_download, test_bad_requests, test_sigterm_exits,
]


def main(argv):
    return R.main(setup, TESTS, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""Fault tests for goproxyd: upstream faults (one by one, and behind ','/'|'
lists), freshness and stale serving, non-canonical .info queries, negative
caching, redirects, and disk faults (a full tmpfs, a read-only cache).

Run:  python3 tests/integration/test_faults.py [NAME-SUBSTRING ...]
Env:  GOPROXYD=path/to/binary (default ./build/goproxyd), KEEP_TMP=1
The disk tests mount small tmpfs file systems (root only); where mounting is
not possible they are skipped with a "# skip" line (and count as passed).
Prints "ok NAME" / "FAIL NAME: reason" per test; last line "N passed, N failed";
exit 1 if any test failed.  Standard library only; only 127.0.0.1 is contacted.
"""

import base64
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import fakeupstream  # noqa: E402
import mkmodules  # noqa: E402
from harness import (check_clean_exits, Daemons, Runner, check, eq, expect_ok, free_port, get,  # noqa: E402
                     make_tmp, note, parallel, read, timeout, tmp_leftovers, xcache)

LIBA = "example.com/liba"
LIBB = "example.com/libb"
R = Runner(default_timeout=120)


class Skip(Exception):
    pass


class Ctx:
    tmp = None
    tree = None
    files = None
    A = None
    B = None
    ups = []
    mounts = []


C = Ctx()
D = Daemons()


# ------------------------------------------------------------------ fixtures

def setup():
    C.tmp = D.tmp = make_tmp("goproxyd-faults-", R)
    C.tree = os.path.join(C.tmp, "tree")
    C.files = dict(mkmodules.generate(C.tree)["files"])
    C.A = fakeupstream.FakeUpstream(C.tree).start()
    C.B = fakeupstream.FakeUpstream(C.tree).start()
    R.cleanups.append(C.A.stop)
    R.cleanups.append(C.B.stop)
    R.cleanups.append(stop_all)
    R.after_each.append(after_each)


def stop_all():
    D.stop_all()
    while C.ups:
        u = C.ups.pop()
        u.release_stalls()
        u.stop()
    while C.mounts:
        umount(C.mounts.pop())


stop_one = D.stop   # its exit status is checked at the end


def after_each():
    stop_all()
    for u in (C.A, C.B):
        u.release_stalls()
        u.reset()


newdir = D.newdir


def daemon(proxy=None, extra=(), cache=None, name="d", env=None):
    return D.start(C.A.url if proxy is None else proxy, extra, cache, name, env)


def p(module, version=None, kind="zip"):
    return "/" + mkmodules.rel(module, version, kind)


def tree(module, version=None, kind="zip"):
    return C.files[mkmodules.rel(module, version, kind)]


def cpath(d, module, version=None, kind="zip"):
    return os.path.join(d.cache_dir, mkmodules.rel(module, version, kind))


def rx(path):
    return re.escape(path) + "$"


def add_version(module, version, size=0):
    """module@version added to the shared tree (mkmodules.add_version)."""
    return mkmodules.add_version(C.tree, C.files, module, version, size)


def expect_error(r, what, contains=(), status=404):
    check(r is not None and not isinstance(r, BaseException), "%s: no response (%r)" % (what, r))
    eq(r.status, status, "%s status (body %r)" % (what, r.body[:200]))
    cc = (r.h("Cache-Control") or "").lower()
    check("no-store" in cc, "%s: Cache-Control %r lacks no-store" % (what, cc))
    t = r.text().lower()
    if contains:
        check(any(c.lower() in t for c in contains), "%s: body %r names none of %s" % (what, r.text()[:300], list(contains)))


def expect_not_stored(d, module, version, kind, what):
    f = cpath(d, module, version, kind)
    check(not os.path.exists(f), "%s: %s was stored" % (what, os.path.relpath(f, d.cache_dir)))
    left = tmp_leftovers(d.cache_dir)
    check(not left, "%s: temp files left: %s" % (what, left))


def closed_port_url():
    return "http://127.0.0.1:%d" % free_port()


# ------------------------------------------------------------------ mounts

def mount_tmpfs(dirpath, size="2m"):
    os.makedirs(dirpath, exist_ok=True)
    if os.geteuid() != 0:
        raise Skip("not root: cannot mount a tmpfs")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % size, "tmpfs", dirpath],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
    if r.returncode != 0:
        raise Skip("mount -t tmpfs failed: %s" % r.stdout.decode(errors="replace").strip())
    C.mounts.append(dirpath)


def remount(dirpath, mode):
    r = subprocess.run(["mount", "-o", "remount,%s" % mode, dirpath], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=20)
    return r.returncode == 0, r.stdout.decode(errors="replace").strip()


def umount(dirpath):
    for args in (["umount", dirpath], ["umount", "-l", dirpath]):
        r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
        if r.returncode == 0:
            return
    sys.stderr.write("could not unmount %s\n" % dirpath)


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


# ================================================================= freshness and stale

@timeout(60)
def test_list_refreshes_after_cache_expire():
    d = daemon(extra=["-cacheExpire", "2s"])
    path = p(LIBA, kind="list")
    old = tree(LIBA, kind="list")
    new = old + b"v1.2.0\n"
    t0 = time.time()
    r = get(d.port, path)
    expect_ok(r, old, "list", "first list")
    eq(xcache(r), "miss", "first list X-Goproxyd-Cache")
    C.A.set_rules({rx(path): {"body": new.decode()}})
    r = get(d.port, path)
    check(time.time() - t0 < 1.8, "too slow to check before expiry")
    expect_ok(r, old, "list", "list before expiry (upstream changed)")
    eq(xcache(r), "hit", "list before expiry X-Goproxyd-Cache")
    eq(C.A.count(rx(path)), 1, "upstream list requests before expiry")
    time.sleep(max(0.0, 2.4 - (time.time() - t0)))
    r = get(d.port, path)
    expect_ok(r, new, "list", "list after expiry")
    eq(xcache(r), "miss", "list after expiry X-Goproxyd-Cache")
    eq(C.A.count(rx(path)), 2, "upstream list requests after expiry")
    r = get(d.port, path)
    expect_ok(r, new, "list", "list after the refresh")
    eq(xcache(r), "hit", "X-Goproxyd-Cache after the refresh")
    check(read(cpath(d, LIBA, kind="list")) == new, "cached list is not the new one")


@timeout(60)
def test_stale_served_when_every_upstream_fails():
    d = daemon(proxy=C.A.url + "|" + C.B.url, extra=["-cacheExpire", "1s"])
    lpath, latest = p(LIBB, kind="list"), p(LIBB, kind="latest")
    expect_ok(get(d.port, lpath), tree(LIBB, kind="list"), "list", "fill list")
    expect_ok(get(d.port, latest), tree(LIBB, kind="latest"), "latest", "fill @latest")
    time.sleep(1.4)
    C.A.set_rules({".*": {"status": 503}})
    C.B.set_rules({".*": {"status": 500}})
    for path, kind in ((lpath, "list"), (latest, "latest")):
        r = get(d.port, path)
        expect_ok(r, tree(LIBB, kind=kind), kind, "stale %s with every upstream failing" % kind)
        eq(xcache(r), "stale", "X-Goproxyd-Cache of %s with every upstream failing" % kind)
        eq(r.h("Cache-Control"), "public, max-age=0", "Cache-Control of stale %s" % kind)
        check(C.A.count(rx(path)) >= 1 and C.B.count(rx(path)) >= 1,
              "both upstreams should be asked for %s: A=%s B=%s" % (path, C.A.stats(), C.B.stats()))
    time.sleep(0.2)
    with open(d.log_path, "rb") as f:
        log = f.read().decode("utf-8", "replace")
    lines = [ln for ln in log.splitlines() if "stale" in ln.lower()]
    check(lines, "no log line mentions 'stale' (log: %s)" % d.log_tail(400))
    note("log: %s" % lines[0][:160])


def _seed_infos(cache, module):
    vdir = os.path.join(cache, mkmodules.escape(module), "@v")
    os.makedirs(vdir)
    versions = ["v1.10.0", "v1.2.0", "v1.2.0-RC1", "v1.9.0", "v0.0.0-20200101000000-abcdefabcdef",
                "v1.3.1-0.20200101000000-abcdefabcdef", "v1.9.1-pre.0.20200101000000-abcdefabcdef"]
    for v in versions:
        with open(os.path.join(vdir, mkmodules.escape(v) + ".info"), "w") as f:
            json.dump({"Version": v, "Time": "2023-01-01T00:00:00Z"}, f)
    for junk in ("master.info", "v1.5.info", "v1.9.0.mod", "v1.9.0.zip", "list.tmp"):
        with open(os.path.join(vdir, junk), "w") as f:
            f.write("junk\n")
    return b"v1.2.0-RC1\nv1.2.0\nv1.9.0\nv1.10.0\n"


@timeout(60)
def test_list_built_from_cached_infos():
    module = "example.com/seeded"
    for mode in ("upstream failing", "proxy off"):
        cache = os.path.join(newdir("seeded"), "cache")
        want = _seed_infos(cache, module)
        if mode == "proxy off":
            d = daemon(proxy="off", cache=cache)
        else:
            C.A.set_rules({".*": {"status": 500}})
            d = daemon(cache=cache)
        r = get(d.port, p(module, kind="list"))
        note("%s: built list %r, X-Goproxyd-Cache %s" % (mode, r.body, xcache(r)))
        expect_ok(r, want, "list", "list built from cached .info files (%s)" % mode)
        if mode == "proxy off":
            eq(C.A.count(), 0, "upstream requests with -proxy off")
        else:
            check(C.A.count(r"/@v/list$") >= 1, "the failing upstream was not asked")
        after_each()


@timeout(60)
def test_noncanonical_info_queries():
    mod = "example.com/query"
    for v in ("v1.0.0", "v1.2.0", "v1.2.1", "v1.3.0"):
        add_version(mod, v)

    def answer(v):
        return json.dumps({"Version": v, "Time": "2023-02-01T10:00:00Z"})
    master, v12 = p(mod, "master", "info"), p(mod, "v1.2", "info")
    C.A.set_rules({rx(master): {"body": answer("v1.3.0")}, rx(v12): {"body": answer("v1.2.0")}})
    d = daemon(extra=["-cacheExpire", "1s"])
    qdir = os.path.join(d.cache_dir, mkmodules.escape(mod), "@query")
    vdir = os.path.join(d.cache_dir, mkmodules.escape(mod), "@v")
    for rnd, (want_m, want_12) in enumerate((("v1.3.0", "v1.2.0"), ("v1.4.0", "v1.2.1"))):
        if rnd == 1:
            time.sleep(1.4)
            add_version(mod, "v1.4.0")    # the branch moved; v1.2.1 is the newest v1.2.x
            C.A.set_rules({rx(master): {"body": answer("v1.4.0")}, rx(v12): {"body": answer("v1.2.1")}})
        for path, q, want in ((master, "master", want_m), (v12, "v1.2", want_12)):
            what = "round %d %s" % (rnd, path)
            for n, xc in enumerate(("miss", "hit")):
                r = get(d.port, path)
                eq(r.status, 200, "%s status (%r)" % (what, r.body[:200]))
                eq(json.loads(r.body)["Version"], want, "%s resolved Version" % what)
                eq(xcache(r), xc, "%s X-Goproxyd-Cache (request %d)" % (what, n + 1))
                cc = r.h("Cache-Control") or ""
                check(re.match(r"^public, max-age=[01]$", cc), "%s Cache-Control %r (mutable, 1s)" % (what, cc))
            eq(C.A.count(rx(path)), rnd + 1, "%s upstream requests (forwarded once per expiry)" % what)
            qf = os.path.join(qdir, q + ".info")
            check(os.path.isfile(qf), "%s: @query/%s.info not stored" % (what, q))
            eq(json.loads(read(qf))["Version"], want, "%s: Version in @query/%s.info" % (what, q))
            vf = os.path.join(vdir, want + ".info")
            check(os.path.isfile(vf), "%s: resolved @v/%s.info not stored" % (what, want))
            eq(json.loads(read(vf))["Version"], want, "%s: Version in @v/%s.info" % (what, want))
    names = sorted(os.listdir(vdir))
    for bad in ("master.info", "v1.2.info"):
        check(bad not in names, "query answer stored as immutable @v/%s (files: %s)" % (bad, names))
    # the resolved versions are now immutable hits
    for v in ("v1.3.0", "v1.4.0", "v1.2.1"):
        r = get(d.port, p(mod, v, "info"))
        eq(r.status, 200, "@v/%s.info status" % v)
        eq(xcache(r), "hit", "@v/%s.info stored from the query answer" % v)
        eq(C.A.count(rx(p(mod, v, "info"))), 0, "upstream requests for @v/%s.info" % v)


# ================================================================= negative cache

@timeout(60)
def test_negative_cache_storm_then_expiry():
    mod, v = "example.com/negmod", "v1.0.0"
    path = p(mod, v, "zip")
    d = daemon(extra=["-negativeCacheExpire", "1s"])
    t0 = time.time()
    res = parallel([lambda: get(d.port, path, timeout=30)] * 20, 30)
    storm = time.time() - t0
    for i, r in enumerate(res):
        expect_error(r, "storm request %d" % i, ["not found"])
    note("storm of 20 took %.2fs" % storm)
    eq(C.A.count(rx(path)), 1, "upstream requests for a storm of 20 (-negativeCacheExpire 1s, %.2fs)" % storm)
    want = add_version(mod, v)["zip"]       # the version appears upstream
    r = get(d.port, path)
    if time.time() - t0 < 0.9:
        expect_error(r, "request within the TTL after the version appeared", ["not found"])
        eq(C.A.count(rx(path)), 1, "upstream requests within the TTL")
    time.sleep(max(0.0, 1.3 - (time.time() - t0)))
    r = get(d.port, path)
    expect_ok(r, want, "zip", "zip after the negative TTL")
    eq(xcache(r), "miss", "X-Goproxyd-Cache after the negative TTL")
    eq(C.A.count(rx(path)), 2, "upstream requests after the negative TTL")
    check(read(cpath(d, mod, v, "zip")) == want, "stored zip differs")


# ================================================================= upstream faults

def _big_info():
    return json.dumps({"Version": "v1.1.0", "Time": "2023-01-02T10:00:00Z", "Pad": "x" * (70 << 10)})


# name: (module, version, ext, rule or None for a closed port, expected upstream
#        requests (None: no upstream to count), words one of which the error names)
TRANSIENT_WORDS = ["closed", "reset", "partial", "remaining", "recv", "connection"]
FAULTS = {
    "refused": (LIBA, "v1.1.0", "zip", None, None, ["connect", "refused"]),
    "reset_mid_body": (LIBA, "v1.1.0", "zip", {"cut_after_bytes": 100}, 3, TRANSIENT_WORDS),
    "stall_before_headers": (LIBA, "v1.1.0", "zip", {"stall_before_headers": 60}, 3, ["no data"]),
    "stall_mid_body": (LIBA, "v1.1.0", "zip", {"stall_after_bytes": [100, 60]}, 3, ["no data"]),
    "status_500": (LIBA, "v1.1.0", "info", {"status": 500}, 3, ["500"]),
    "status_502": (LIBA, "v1.1.0", "mod", {"status": 502}, 3, ["502"]),
    "status_503": (LIBA, "v1.1.0", "zip", {"status": 503}, 3, ["503"]),
    "status_429": (LIBA, "v1.1.0", "info", {"status": 429}, 3, ["429"]),
    "wrong_content_length": (LIBB, "v1.0.0", "mod", "WRONG_CL", 3, TRANSIENT_WORDS),
    "zip_not_a_zip": (LIBA, "v1.1.0", "zip", {"garbage": True}, 1, ["zip"]),
    "zip_entries_outside_prefix": (LIBA, "v1.1.0", "zip", "OUTSIDE", 1, ["outside"]),
    "info_other_version": (LIBA, "v1.1.0", "info", {"info_version": "v1.0.0"}, 1, ["another version"]),
    "info_over_64k": (LIBA, "v1.1.0", "info", {"body": None}, 1, ["limit", "larger", "too large"]),
    "info_over_64k_chunked": (LIBA, "v1.1.0", "info", {"body": None}, 1, ["limit", "larger", "too large"]),
}
STALL_ARGS = ["-stallTimeout", "1s"]


def _fault_rule(name):
    mod, ver, ext, rule, count, words = FAULTS[name]
    if rule == "WRONG_CL":
        rule = {"wrong_content_length": len(tree(mod, ver, ext)) + 500}
    elif rule == "OUTSIDE":
        rule = {"body_b64": base64.b64encode(mkmodules.bad_zip_outside_prefix(mod, ver)).decode()}
    elif name == "info_over_64k":
        rule = {"body": _big_info()}
    elif name == "info_over_64k_chunked":       # no Content-Length: the limit must hold while streaming
        rule = {"body": _big_info(), "chunked": True}
    return rule


def _install_fault(name, up):
    """Makes up (a fake upstream) fail the way `name` says; returns the URL
    to use for it (a closed port for "refused")."""
    mod, ver, ext = FAULTS[name][:3]
    rule = _fault_rule(name)
    if rule is None:
        return closed_port_url()
    up.set_rules({rx(p(mod, ver, ext)): rule})
    return up.url


def _single_fault(name):
    mod, ver, ext, _, count, words = FAULTS[name]
    path = p(mod, ver, ext)
    url = _install_fault(name, C.A)
    d = daemon(proxy=url, extra=STALL_ARGS)
    t0 = time.time()
    r = get(d.port, path, timeout=60)
    el = time.time() - t0
    note("%s: %d %r after %.1fs, %s upstream requests" % (name, r.status, r.text().strip()[:140], el,
                                                          C.A.count(rx(path)) if count else "-"))
    expect_error(r, name, ["upstream error"])
    expect_error(r, name, words)
    check(el < 20, "%s: answer took %.1fs (-stallTimeout 1s)" % (name, el))
    if count is not None:
        eq(C.A.count(rx(path)), count, "%s: upstream requests" % name)
    else:
        check(el >= 0.45, "%s: answered after %.2fs: no retries with 100/400 ms backoff?" % (name, el))
    expect_not_stored(d, mod, ver, ext, name)
    if count is not None:    # the fault gone, the same request succeeds: nothing was poisoned
        C.A.reset()
        expect_ok(get(d.port, path), tree(mod, ver, ext), ext, "%s: after the fault cleared" % name)


def _list_fault(name):
    """A faulting first upstream behind ',' (B never asked, 404 naming the
    failure) and behind '|' (B answers)."""
    mod, ver, ext, _, count, words = FAULTS[name]
    path = p(mod, ver, ext)
    for sep in (",", "|"):
        url = _install_fault(name, C.A)
        d = daemon(proxy=url + sep + C.B.url, extra=STALL_ARGS)
        r = get(d.port, path, timeout=60)
        what = "%s behind '%s'" % (name, sep)
        if sep == ",":
            expect_error(r, what, ["upstream error"])
            expect_error(r, what, words)
            eq(C.B.count(), 0, "%s: requests to the second upstream" % what)
            expect_not_stored(d, mod, ver, ext, what)
        else:
            expect_ok(r, tree(mod, ver, ext), ext, what)
            eq(C.B.count(rx(path)), 1, "%s: requests to the second upstream" % what)
            check(read(cpath(d, mod, ver, ext)) == tree(mod, ver, ext), "%s: stored file differs" % what)
        if count is not None:
            eq(C.A.count(rx(path)), count, "%s: requests to the first upstream" % what)
        after_each()


def _make_fault_tests():
    tests = []
    for name in FAULTS:
        def single(name=name):
            _single_fault(name)
        single.__name__ = "test_fault_%s" % name
        single.timeout = 90
        tests.append(single)
    for name in FAULTS:
        if name == "status_500":
            continue     # test_proxy.py covers a 500 behind ',' and '|'
        def listed(name=name):
            _list_fault(name)
        listed.__name__ = "test_list_fault_%s" % name
        listed.timeout = 90
        tests.append(listed)
    return tests


@timeout(60)
def test_redirect_loop_gives_up_after_10():
    path = p(LIBA, "v1.1.0", "mod")
    C.A.set_rules({rx(path): {"redirect": C.A.url + "{path}"}})
    d = daemon()
    r = get(d.port, path, timeout=60)
    note("redirect loop: %d %r" % (r.status, r.text().strip()[:140]))
    expect_error(r, "redirect loop", ["redirect"])
    eq(C.A.count(rx(path)), 11, "upstream requests for a redirect loop (1 + 10 redirects followed)")
    expect_not_stored(d, LIBA, "v1.1.0", "mod", "redirect loop")


def _tls_upstream(workdir):
    """A fake upstream over https on 127.0.0.1 with a throwaway self-signed
    certificate; returns (upstream, https url, cert path) or raises Skip."""
    if shutil.which("openssl") is None:
        raise Skip("no openssl command to make a test certificate")
    key, cert = os.path.join(workdir, "key.pem"), os.path.join(workdir, "cert.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    if r.returncode != 0:
        raise Skip("openssl could not make a certificate: %s" % r.stdout.decode(errors="replace")[-200:])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    u = fakeupstream.FakeUpstream(C.tree)
    u.httpd.socket = ctx.wrap_socket(u.httpd.socket, server_side=True)
    u.start()
    C.ups.append(u)
    return u, "https://127.0.0.1:%d" % u.port, cert


@timeout(60)
def test_https_to_http_redirect_refused():
    u, url, cert = _tls_upstream(newdir("tls"))
    d = daemon(proxy=url, env={"SSL_CERT_FILE": cert})
    expect_ok(get(d.port, p(LIBA, "v1.0.0", "mod")), tree(LIBA, "v1.0.0", "mod"), "mod",
              "over https (control)")
    path = p(LIBA, "v1.1.0", "zip")
    u.set_rules({rx(path): {"redirect": C.B.url + "{path}"}})
    r = get(d.port, path, timeout=60)
    note("https -> http redirect: %d %r" % (r.status, r.text().strip()[:160]))
    expect_error(r, "https -> http redirect", ["upstream error"])
    eq(C.B.count(), 0, "requests that reached the plain-http redirect target")
    eq(u.count(rx(path)), 1, "requests to the https upstream")
    expect_not_stored(d, LIBA, "v1.1.0", "zip", "https -> http redirect")


# ================================================================= disk faults

@timeout(90)
def test_disk_full_tmpfs():
    cache = os.path.join(newdir("full"), "cache")
    mount_tmpfs(cache, "2m")
    d = daemon(cache=cache)
    small = [(p(LIBA, "v1.0.0", k), tree(LIBA, "v1.0.0", k), k) for k in ("info", "mod", "zip")]
    small.append((p(LIBA, kind="list"), tree(LIBA, kind="list"), "list"))
    for path, want, kind in small:
        expect_ok(get(d.port, path), want, kind, "fill " + path)
    free0 = free_bytes(cache)
    want = add_version("example.com/huge", "v1.0.0", size=4 << 20)["zip"]
    path = p("example.com/huge", "v1.0.0", "zip")
    r = get(d.port, path, timeout=60)
    note("4 MiB zip into a 2 MiB tmpfs (%d KiB free): %d %r; %d upstream requests"
         % (free0 >> 10, r.status, r.body[:160] if r.status != 200 else b"<zip>", C.A.count(rx(path))))
    if r.status == 200:
        check(r.body == want, "200 with a body that is not the upstream zip (%d bytes)" % len(r.body))
    else:
        expect_error(r, "zip bigger than the free space", ["no space", "cannot store", "storage", "disk", "write"])
    final = os.path.join(cache, path[1:])
    check(not os.path.exists(final) or read(final) == want, "a partial zip was stored at its final name")
    left = tmp_leftovers(cache)
    check(not left, "temp files left on the full file system: %s" % left)
    free1 = free_bytes(cache)
    check(free1 >= free0 - (64 << 10), "space not given back: %d KiB free before, %d KiB after" % (free0 >> 10, free1 >> 10))
    for path_, want_, kind in small:
        r = get(d.port, path_)
        expect_ok(r, want_, kind, "hit after the disk filled up: " + path_)
        eq(xcache(r), "hit", "X-Goproxyd-Cache of " + path_)
    expect_ok(get(d.port, p(LIBB, "v1.0.0", "zip")), tree(LIBB, "v1.0.0", "zip"), "zip",
              "a small miss after the failed big one")
    check(d.alive(), "daemon died")


def fill_disk(path):
    """Writes path until the file system says ENOSPC."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (65536, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)


@timeout(60)
def test_readyz_on_a_full_disk():
    cache = os.path.join(newdir("readyfull"), "cache")
    mount_tmpfs(cache, "2m")
    d = daemon(cache=cache)
    expect_ok(get(d.port, p(LIBA, "v1.0.0", "info")), tree(LIBA, "v1.0.0", "info"), "info", "fill")
    eq(get(d.port, "/readyz").status, 200, "/readyz before the disk fills")
    fill = os.path.join(cache, "filler")
    fill_disk(fill)
    r = get(d.port, p(LIBA, "v1.0.0", "zip"))
    expect_error(r, "a miss on a full disk", ["no space", "cannot store"])
    r = get(d.port, "/readyz")
    note("/readyz on a full disk: %d %r" % (r.status, r.text().strip()))
    eq(r.status, 503, "/readyz while misses fail with ENOSPC")
    check("disk" in r.text() and "full" in r.text(), "the reason does not name the full disk: %r" % r.text())
    os.unlink(fill)
    deadline, r = time.time() + 5, None
    while time.time() < deadline:
        r = get(d.port, "/readyz")
        if r.status == 200:
            break
        time.sleep(0.2)
    eq(r.status, 200, "/readyz within 5 s of the space coming back (%r)" % r.text().strip())
    expect_ok(get(d.port, p(LIBB, "v1.0.0", "zip")), tree(LIBB, "v1.0.0", "zip"), "zip", "a miss after")
    eq(get(d.port, "/readyz").status, 200, "/readyz after a successful miss")
    check(d.alive(), "daemon died")


def _stalled_fetch(d, path):
    """Starts a miss of path (whose upstream stalls) on d; returns the temp
    files it made, once there are some."""
    import threading
    threading.Thread(target=lambda: _quiet_get(d.port, path), daemon=True).start()
    deadline = time.time() + 10
    while time.time() < deadline:
        left = tmp_leftovers(d.cache_dir)
        if left:
            return left
        time.sleep(0.05)
    raise AssertionError("no temp file appeared for a stalled fetch of %s" % path)


def _quiet_get(port, path):
    try:
        get(port, path, timeout=5)
    except Exception:
        pass


@timeout(90)
def test_killed_writer_temp_swept_zombie():
    cache = os.path.join(newdir("zombie"), "cache")
    path = p(LIBA, "v1.1.0", "zip")
    C.A.set_rules({rx(path): {"stall_before_headers": 60}})
    d1 = daemon(cache=cache)
    left = _stalled_fetch(d1, path)
    pid = d1.proc.pid
    os.kill(pid, 9)
    D.forget(d1)
    deadline = time.time() + 5     # not reaped: the pid stays, as a zombie
    while time.time() < deadline and "State:\tZ" not in read(f"/proc/{pid}/status").decode():
        time.sleep(0.05)
    check("State:\tZ" in read(f"/proc/{pid}/status").decode(), "the killed goproxyd is no zombie")
    try:
        d2 = daemon(cache=cache)
        gone = [t for t in left if os.path.exists(os.path.join(cache, t))]
        check(not gone, "the start-up sweep kept a temp file of a killed writer whose pid is a zombie: %s" % gone)
        # A live sibling's temp file, locked while it waits on the upstream, is kept.
        path2 = p(LIBB, "v1.1.0", "zip")
        C.A.set_rules({rx(path): {"stall_before_headers": 60}, rx(path2): {"stall_before_headers": 60}})
        live = _stalled_fetch(d2, path2)
        daemon(cache=cache)
        kept = [t for t in live if os.path.exists(os.path.join(cache, t))]
        eq(kept, live, "a live sibling's temp files after another instance's start-up sweep")
        check(d2.alive(), "the sibling died")
    finally:
        os.kill(pid, 0)            # still there until now
        d1.proc.wait()


@timeout(90)
def test_read_only_cache():
    cache = os.path.join(newdir("ro"), "cache")
    mount_tmpfs(cache, "2m")
    d = daemon(cache=cache)
    small = [(p(LIBA, "v1.0.0", k), tree(LIBA, "v1.0.0", k), k) for k in ("info", "mod", "zip")]
    for path, want, kind in small:
        expect_ok(get(d.port, path), want, kind, "fill " + path)
    ok, out = remount(cache, "ro")
    if not ok:
        raise Skip("mount -o remount,ro failed: %s" % out)
    try:
        for rnd in ("live", "restarted"):
            if rnd == "restarted":
                stop_one(d)
                d = daemon(cache=cache)
            for path, want, kind in small:
                r = get(d.port, path)
                expect_ok(r, want, kind, "%s: hit on a read-only cache: %s" % (rnd, path))
                eq(xcache(r), "hit", "%s: X-Goproxyd-Cache of %s" % (rnd, path))
            for path in (p(LIBB, "v1.0.0", "mod"), p(LIBA, "v1.1.0", "zip")):
                r = get(d.port, path)
                note("%s read-only cache, miss %s: %d %r" % (rnd, path, r.status, r.text().strip()[:140]))
                expect_error(r, "%s: miss on a read-only cache" % rnd,
                             ["read-only", "cannot store", "storage", "write"])
            check(d.alive(), "daemon died on a read-only cache")
    finally:
        remount(cache, "rw")
    check(not tmp_leftovers(cache), "temp files left: %s" % tmp_leftovers(cache))


def test_daemons_exited_cleanly():
    """Every daemon this suite stopped with SIGTERM exited 0 (under the
    sanitizers a leak or error report makes the status non-zero)."""
    stop_all()
    note("%d daemons stopped with SIGTERM, all exited 0" % check_clean_exits(D.exits))


TESTS = [
    test_list_refreshes_after_cache_expire,
    test_stale_served_when_every_upstream_fails,
    test_list_built_from_cached_infos,
    test_noncanonical_info_queries,
    test_negative_cache_storm_then_expiry,
] + _make_fault_tests() + [
    test_redirect_loop_gives_up_after_10,
    test_https_to_http_redirect_refused,
    test_disk_full_tmpfs,
    test_readyz_on_a_full_disk,
    test_killed_writer_temp_swept_zombie,
    test_read_only_cache,
    test_daemons_exited_cleanly,
]


def _skippable(fn):
    def wrapper():
        try:
            fn()
        except Skip as e:
            note("skip %s: %s" % (fn.__name__, e))
    wrapper.__name__ = fn.__name__
    wrapper.timeout = getattr(fn, "timeout", R.default_timeout)
    return wrapper


def main(argv):
    return R.main(setup, [_skippable(t) for t in TESTS], argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

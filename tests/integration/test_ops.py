#!/usr/bin/env python3
"""Integration tests for goproxyd's operational features: /metrics, /healthz,
/readyz, the access log, TLS, client basic auth, upstream credentials from
-netrc and sd_notify.

Run:  python3 tests/integration/test_ops.py [NAME-SUBSTRING ...]
Env:  GOPROXYD=path/to/binary (default ./build/goproxyd), KEEP_TMP=1
Needs: openssl (certificates, SHA-512-crypt hashes), go (two tests), root for
the read-only cache test (skipped otherwise).  Prints "ok NAME" / "FAIL NAME:
reason" / "skip NAME: reason" per test; last line "N passed, N failed"; exit 1
if any test failed.  Standard library only; only 127.0.0.1 is contacted.
Every daemon a test starts must exit 0 on SIGTERM and print no sanitizer
report.
"""

import base64
import ctypes
import ctypes.util
import functools
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import fakeupstream  # noqa: E402
import mkmodules  # noqa: E402
from harness import (Daemon, Runner, TestFailure, TestSkip, all_files, check, daemon_binary,  # noqa: E402
                     eq, free_port, get, make_tmp, raw_request, read, request, run_binary,
                     timeout)

LIBA = "example.com/liba"
LIBB = "example.com/libb"
LIBC = "example.com/libc/v2"
MIXED = "example.com/MixedCase/lib"

R = Runner(default_timeout=60)

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "SUMMARY: UndefinedBehaviorSanitizer", "SUMMARY: AddressSanitizer")


class Ctx:
    tmp = None
    tree = None
    info = None
    A = None
    daemons = []
    extra_upstreams = []
    mounts = []
    n = 0
    tls = None        # (cert, key)


C = Ctx()


def setup():
    C.tmp = make_tmp("goproxyd-ops-", R)
    C.tree = os.path.join(C.tmp, "tree")
    C.info = mkmodules.generate(C.tree)
    C.A = fakeupstream.FakeUpstream(C.tree).start()
    R.cleanups.append(C.A.stop)
    R.cleanups.append(kill_everything)
    R.after_each.append(after_each)


def kill_everything():
    while C.daemons:
        C.daemons.pop().stop(timeout=5)
    while C.extra_upstreams:
        C.extra_upstreams.pop().stop()
    while C.mounts:
        umount(C.mounts.pop())


def after_each():
    kill_everything()
    C.A.reset()


def umount(path):
    for args in (["umount", path], ["umount", "-l", path]):
        if subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          timeout=20).returncode == 0:
            return


def newdir(name):
    C.n += 1
    d = os.path.join(C.tmp, "t%02d-%s" % (C.n, name))
    os.makedirs(d)
    return d


def daemon(proxy=None, extra=(), cache=None, name="d", env=None):
    if cache is None:
        cache = os.path.join(newdir(name), "cache")
    d = Daemon(cache, C.A.url if proxy is None else proxy, extra, env=env)
    C.daemons.append(d)
    return d.start()


def log_text(d):
    try:
        return read(d.log_path).decode("utf-8", "replace")
    except (OSError, TypeError):
        return ""


def finish_daemons():
    """Stop this test's daemons; each must exit 0 on SIGTERM without a sanitizer report."""
    problems = []
    while C.daemons:
        d = C.daemons.pop()
        rc = d.stop(timeout=15) if d.proc is not None else "stopped by the test"
        text = log_text(d)
        for m in SANITIZER_MARKERS:
            if m in text:
                i = text.index(m)
                problems.append("sanitizer report in %s: %s" % (os.path.basename(d.log_path or "?"),
                                                                 text[max(0, i - 100):i + 400]))
                break
        if rc not in (0, "stopped by the test"):
            problems.append("daemon exit status %r (want 0 after SIGTERM); log tail: %s" % (rc, d.log_tail(300)))
    check(not problems, "; ".join(problems))


def checked(fn):
    @functools.wraps(fn)
    def w():
        fn()
        finish_daemons()
    return w


def p(module, version=None, kind="zip"):
    return "/" + mkmodules.rel(module, version, kind)


def tree(module, version=None, kind="zip"):
    return C.info["files"][mkmodules.rel(module, version, kind)]


def xcache(r):
    return (r.h("X-Goproxyd-Cache") or "").strip().lower()


def wait_until(fn, secs, interval=0.05):
    """Call fn() until it returns a true value or secs pass; returns the last value."""
    deadline = time.time() + secs
    while True:
        v = fn()
        if v or time.time() >= deadline:
            return v
        time.sleep(interval)


def expect_body(r, want, what, cache=None):
    eq(r.status, 200, "%s status (body %r)" % (what, r.body[:200]))
    check(r.body == want, "%s: body differs (%d vs %d bytes)" % (what, len(r.body), len(want)))
    if cache:
        eq(xcache(r), cache, "%s X-Goproxyd-Cache" % what)


def b64auth(user, pw):
    return "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()


def one_line(err, what):
    lines = err.strip("\n").split("\n")
    check(len(lines) == 1 and lines[0].strip(), "%s: want exactly one stderr line, got %r" % (what, err))
    return lines[0]


def flagrun(args):
    d = newdir("flags")
    return run_binary([daemon_binary(), "-listen", "127.0.0.1:%d" % free_port(),
                       "-cacheDir", os.path.join(d, "cache"), "-sumdb", "off"] + args, timeout=15, cwd=d)


# =================================================================== Prometheus text parser

class Metrics:
    def __init__(self, text):
        self.text = text
        self.helps = {}
        self.types = {}
        self.samples = {}          # (name, frozenset(labels)) -> float
        self.order = []            # [(name, labels dict, value)]
        self.family_of = {}        # sample name -> family
        _parse(self, text)

    def get(self, name, default=None, **labels):
        return self.samples.get((name, frozenset(labels.items())), default)

    def val(self, name, **labels):
        v = self.get(name, **labels)
        if v is None:
            raise TestFailure("metric %s%s missing; have: %s" % (name, labels, self.series(name)))
        return v

    def val0(self, name, **labels):
        return self.get(name, 0.0, **labels)

    def series(self, name):
        return ["%s%s=%g" % (n, dict(ls), v) for (n, ls), v in self.samples.items() if n == name]


_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE_RE = re.compile(r"^(%s)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$" % _NAME)
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,?)')
_TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


def _unescape(v):
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "\\": "\\", '"': '"'}[m.group(1)], v)


def _value(s, line):
    if not re.match(r"^(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|[+-]Inf|NaN)$", s):
        raise TestFailure("metrics: bad value %r in line %r" % (s, line))
    return float(s)


def _family(m, name, line):
    if name in m.types:
        return name
    for suffix, types in (("_bucket", ("histogram",)), ("_sum", ("histogram", "summary")),
                          ("_count", ("histogram", "summary"))):
        if name.endswith(suffix) and m.types.get(name[:-len(suffix)]) in types:
            return name[:-len(suffix)]
    raise TestFailure("metrics: sample %r has no # TYPE before it (line %r)" % (name, line))


def _parse(m, text):
    if not text.endswith("\n"):
        raise TestFailure("metrics: exposition does not end with a newline")
    seen_families = []          # in order of first sample; samples must be grouped
    for line in text.split("\n")[:-1]:
        if line == "":
            continue
        if line.startswith("#"):
            mm = re.match(r"^# (HELP|TYPE) (%s)(?: (.*))?$" % _NAME, line)
            if not mm:
                continue          # a plain comment
            kind, name, rest = mm.group(1), mm.group(2), mm.group(3) or ""
            if name in seen_families:
                raise TestFailure("metrics: # %s %s after its samples" % (kind, name))
            table = m.helps if kind == "HELP" else m.types
            if name in table:
                raise TestFailure("metrics: second # %s for %s" % (kind, name))
            if kind == "TYPE" and rest not in _TYPES:
                raise TestFailure("metrics: bad type in %r" % line)
            table[name] = rest
            continue
        mm = _SAMPLE_RE.match(line)
        if not mm:
            raise TestFailure("metrics: line is not `name{labels} value`: %r" % line)
        name, lbl, val = mm.group(1), mm.group(2), mm.group(3)
        labels = {}
        if lbl:
            pos = 0
            while pos < len(lbl):
                lm = _LABEL_RE.match(lbl, pos)
                if not lm or (lm.group(3) == "" and lm.end() != len(lbl)):
                    raise TestFailure("metrics: bad label set in %r" % line)
                if lm.group(1) in labels:
                    raise TestFailure("metrics: duplicate label %s in %r" % (lm.group(1), line))
                labels[lm.group(1)] = _unescape(lm.group(2))
                pos = lm.end()
        fam = _family(m, name, line)
        if fam not in m.helps:
            raise TestFailure("metrics: %s has no # HELP before its samples" % fam)
        if seen_families and seen_families[-1] != fam:
            if fam in seen_families:
                raise TestFailure("metrics: samples of %s are not grouped together" % fam)
        if fam not in seen_families:
            seen_families.append(fam)
        key = (name, frozenset(labels.items()))
        if key in m.samples:
            raise TestFailure("metrics: duplicate series %r" % line)
        v = _value(val, line)
        if m.types[fam] == "counter" and not v >= 0:
            raise TestFailure("metrics: negative counter %r" % line)
        m.samples[key] = v
        m.order.append((name, labels, v))
        m.family_of[name] = fam
    for fam in list(m.types) + list(m.helps):
        if fam not in m.types or fam not in m.helps:
            raise TestFailure("metrics: %s has # HELP or # TYPE but not both" % fam)
    for fam, t in m.types.items():
        if t == "histogram":
            _check_histogram(m, fam)


def _check_histogram(m, fam):
    groups = {}
    for name, labels, v in m.order:
        if name != fam + "_bucket":
            continue
        if "le" not in labels:
            raise TestFailure("metrics: %s_bucket without le" % fam)
        rest = frozenset((k, x) for k, x in labels.items() if k != "le")
        groups.setdefault(rest, []).append((labels["le"], v))
    if not groups:
        raise TestFailure("metrics: histogram %s has no buckets" % fam)
    for rest, buckets in groups.items():
        les = []
        for le, _ in buckets:
            les.append(float("inf") if le == "+Inf" else _value(le, le))
        if les != sorted(les) or len(set(les)) != len(les):
            raise TestFailure("metrics: %s buckets not in increasing le order: %s" % (fam, [b[0] for b in buckets]))
        if buckets[-1][0] != "+Inf":
            raise TestFailure("metrics: %s buckets do not end with le=\"+Inf\"" % fam)
        counts = [v for _, v in buckets]
        if any(b < a for a, b in zip(counts, counts[1:])):
            raise TestFailure("metrics: %s buckets not cumulative: %s" % (fam, buckets))
        cnt = m.samples.get((fam + "_count", rest))
        if cnt is None or m.samples.get((fam + "_sum", rest)) is None:
            raise TestFailure("metrics: %s lacks _sum or _count%s" % (fam, dict(rest)))
        if counts[-1] != cnt:
            raise TestFailure("metrics: %s le=\"+Inf\" bucket %g != _count %g" % (fam, counts[-1], cnt))


def scrape(d, ssl_context=None, headers=None):
    r = get(d.port, "/metrics", headers=headers, ssl_context=ssl_context, timeout=15)
    eq(r.status, 200, "GET /metrics status (body %r)" % r.body[:200])
    ct = [x.strip().lower() for x in (r.h("Content-Type") or "").split(";")]
    check(ct[0] == "text/plain" and "version=0.0.4" in [x.replace(" ", "") for x in ct[1:]],
          "/metrics Content-Type %r, want text/plain; version=0.0.4" % r.h("Content-Type"))
    return Metrics(r.text()), len(r.body)


def parser_selftest():
    good = ('# HELP x_total X.\n# TYPE x_total counter\nx_total{a="b\\"c",d="e"} 3\n'
            '# HELP h H.\n# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 0.5\nh_count 2\n')
    m = Metrics(good)
    eq(m.val("x_total", a='b"c', d="e"), 3.0, "parser self-test value")
    bad = [
        good.replace('h_bucket{le="+Inf"} 2', 'h_bucket{le="+Inf"} 0'),       # not cumulative
        good.replace("h_count 2", "h_count 3"),                               # +Inf != count
        good.replace('h_bucket{le="+Inf"} 2\n', ""),                           # no +Inf
        good.replace("# HELP x_total X.\n", ""),                               # no HELP
        good.replace("# TYPE x_total counter\n", ""),                          # no TYPE
        good.replace("x_total{a", "x_total {a"),                               # malformed
        good.replace("} 3", "} three"),                                        # bad value
        good + "x_total{a=\"b\\\"c\",d=\"e\"} 4\n",                            # duplicate / ungrouped
        good[:-1],                                                             # no final newline
    ]
    for i, b in enumerate(bad):
        try:
            Metrics(b)
        except TestFailure:
            continue
        raise TestFailure("metrics parser self-test: bad exposition #%d accepted" % i)


def cache_walk(root):
    files = nbytes = 0
    for dpath, dirs, names in os.walk(root):
        for n in names:
            files += 1
            nbytes += os.lstat(os.path.join(dpath, n)).st_size
    return files, nbytes


REQ = "goproxyd_requests_total"
CACHE = "goproxyd_cache_requests_total"
UP = "goproxyd_upstream_requests_total"


# =================================================================== 1. /metrics

@checked
def test_metrics_format():
    parser_selftest()
    d = daemon()
    get(d.port, p(LIBA, "v1.0.0", "mod"))
    m, _ = scrape(d)
    want = {REQ: "counter", CACHE: "counter", UP: "counter", "goproxyd_bytes_served_total": "counter",
            "goproxyd_cache_files": "gauge", "goproxyd_cache_bytes": "gauge",
            "goproxyd_fetches_inflight": "gauge", "goproxyd_fetch_waiters": "gauge"}
    for name, t in want.items():
        eq(m.types.get(name), t, "# TYPE of %s" % name)
    check(any(t == "histogram" for t in m.types.values()), "no histogram in /metrics: %s" % m.types)
    for outcome in ("hit", "miss", "stale"):
        check(m.get(CACHE, outcome=outcome) is not None, "%s{outcome=%r} missing" % (CACHE, outcome))
    for outcome in ("ok", "notfound", "error"):
        check(m.get(UP, upstream=C.A.url, outcome=outcome) is not None,
              "%s{upstream=%r,outcome=%r} missing; have %s" % (UP, C.A.url, outcome, m.series(UP)))
    # HEAD answers the same headers without a body
    r = request(d.port, "HEAD", "/metrics")
    eq(r.status, 200, "HEAD /metrics status")
    eq(r.body, b"", "HEAD /metrics body")


@checked
def test_metrics_counters():
    d = daemon()
    mod = p(LIBA, "v1.0.0", "mod")
    nf = "/example.com/liba/@v/v1.9.0.info"
    bad = p(LIBB, "v1.0.0", "mod")
    C.A.set_rules({re.escape(bad) + "$": {"status": 500}})
    m0, len0 = scrape(d)
    sizes = []
    r = get(d.port, mod)
    expect_body(r, tree(LIBA, "v1.0.0", "mod"), "miss", "miss")
    sizes.append(len(r.body))
    r = get(d.port, mod)
    expect_body(r, tree(LIBA, "v1.0.0", "mod"), "hit", "hit")
    sizes.append(len(r.body))
    r = get(d.port, nf)
    eq(r.status, 404, "status of a version unknown upstream")
    sizes.append(len(r.body))
    r = get(d.port, bad)
    eq(r.status, 404, "status with a failing upstream")
    sizes.append(len(r.body))

    # Requests are counted when they complete, which may be just after the
    # client has its answer: scrape until all of them (and every earlier
    # scrape) are in, then compare exactly.
    scrapes = [len0]
    want_req = {("mod", "200"): 2, ("info", "404"): 1, ("mod", "404"): 1}
    m = None
    deadline = time.time() + 5
    while True:
        m, ln = scrape(d)
        got_req = {k: m.val0(REQ, endpoint=k[0], code=k[1]) - m0.val0(REQ, endpoint=k[0], code=k[1])
                   for k in want_req}
        ops = m.val0(REQ, endpoint="ops", code="200") - m0.val0(REQ, endpoint="ops", code="200")
        for k, n in want_req.items():
            check(got_req[k] <= n, "%s{endpoint=%r,code=%r} grew by %g, want %d" % (REQ, k[0], k[1], got_req[k], n))
        if all(got_req[k] == n for k, n in want_req.items()) and ops == len(scrapes):
            break
        check(time.time() < deadline, "requests not all counted within 5s: %s (want %s), ops +%g for %d scrapes"
              % (got_req, want_req, ops, len(scrapes)))
        scrapes.append(ln)
        time.sleep(0.05)

    def delta(name, **labels):
        return m.val0(name, **labels) - m0.val0(name, **labels)
    eq(delta(CACHE, outcome="hit"), 1, "cache hits counted")
    eq(delta(CACHE, outcome="miss"), 1, "cache misses counted")
    eq(delta(CACHE, outcome="stale"), 0, "stale answers counted")
    eq(delta(UP, upstream=C.A.url, outcome="ok"), C.A.count(re.escape(mod) + "$"),
       "upstream ok transfers (upstream saw %s)" % C.A.stats())
    eq(delta(UP, upstream=C.A.url, outcome="ok"), 1, "upstream ok transfers")
    eq(delta(UP, upstream=C.A.url, outcome="notfound"), 1, "upstream notfound transfers")
    n_bad = C.A.count(re.escape(bad) + "$")
    check(n_bad >= 1, "the failing upstream was not asked")
    eq(delta(UP, upstream=C.A.url, outcome="error"), n_bad, "upstream error transfers (= attempts upstream saw)")
    eq(delta("goproxyd_bytes_served_total"), sum(sizes) + sum(scrapes),
       "bytes served (bodies %s + earlier /metrics bodies %s)" % (sizes, scrapes))
    files, nbytes = cache_walk(d.cache_dir)
    eq(m.val("goproxyd_cache_files"), files, "goproxyd_cache_files vs files in %s" % all_files(d.cache_dir))
    eq(m.val("goproxyd_cache_bytes"), nbytes, "goproxyd_cache_bytes vs bytes in the cache dir")


@checked
def test_metrics_cache_usage():
    dd = newdir("usage")
    cache = os.path.join(dd, "cache")
    seed = {mkmodules.rel(LIBA, "v1.0.0", "mod"): tree(LIBA, "v1.0.0", "mod"),
            mkmodules.rel(LIBA, "v1.0.0", "info"): tree(LIBA, "v1.0.0", "info"),
            "README.txt": b"operator notes\n" * 10,
            "empty": b"",
            "example.com/liba/@v/.goproxyd-tmp-leftover": b"partial" * 100}
    for rel, data in seed.items():
        f = os.path.join(cache, rel)
        os.makedirs(os.path.dirname(f), exist_ok=True)
        with open(f, "wb") as fh:
            fh.write(data)
    d = daemon(cache=cache, extra=["-cacheExpire", "1s"])

    last = {}

    def matches():
        m, _ = scrape(d)
        last["got"] = (m.val("goproxyd_cache_files"), m.val("goproxyd_cache_bytes"))
        last["want"] = cache_walk(cache)
        return last["got"] == last["want"]
    check(wait_until(matches, 3, 0.1), "after start-up (seeded cache): /metrics says files,bytes=%s, the cache "
          "dir holds %s (%s)" % (last["got"], last["want"], all_files(cache)))
    expect_body(get(d.port, p(LIBB, "v1.0.0", "zip")), tree(LIBB, "v1.0.0", "zip"), "zip miss", "miss")
    expect_body(get(d.port, p(LIBA, kind="list")), tree(LIBA, kind="list"), "list miss", "miss")
    expect_body(get(d.port, p(LIBA, "v1.0.0", "mod")), tree(LIBA, "v1.0.0", "mod"), "seeded mod", "hit")
    time.sleep(1.3)
    # a refreshed list replaces the file; the list now differs in size
    C.A.set_rules({r"/example\.com/liba/@v/list$": {"body": "v1.0.0\nv1.1.0\nv1.2.0\nv1.3.0\n"}})
    expect_body(get(d.port, p(LIBA, kind="list")), b"v1.0.0\nv1.1.0\nv1.2.0\nv1.3.0\n", "refreshed list", "miss")
    check(wait_until(matches, 3, 0.1), "after misses and a refresh: /metrics says files,bytes=%s, the cache dir "
          "holds %s (%s)" % (last["got"], last["want"], all_files(cache)))


@checked
def test_metrics_inflight_waiters():
    d = daemon()
    path = p(LIBA, "v1.1.0", "zip")
    C.A.set_rules({re.escape(path) + "$": {"stall_before_headers": 30}})
    n = 3
    results = [None] * n

    def worker(i):
        try:
            results[i] = get(d.port, path, timeout=45)
        except Exception as e:
            results[i] = e
    ths = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    try:
        for t in ths:
            t.start()
        check(wait_until(lambda: C.A.stalling() > 0, 10), "upstream fetch never started")
        last = {}

        def sample():
            m, _ = scrape(d)
            last["m"] = m
            return m.val("goproxyd_fetch_waiters") == n
        ok = wait_until(sample, 10, 0.1)
        m = last["m"]
        check(ok, "goproxyd_fetch_waiters is %g with %d clients waiting on one stalled fetch "
              "(fetches_inflight %g)" % (m.val("goproxyd_fetch_waiters"), n, m.val("goproxyd_fetches_inflight")))
        eq(m.val("goproxyd_fetches_inflight"), 1, "goproxyd_fetches_inflight during the stalled fetch")
        eq(C.A.count(re.escape(path) + "$"), 1, "upstream requests for the stalled file")
    finally:
        C.A.release_stalls()
        for t in ths:
            t.join(30)
    for i, r in enumerate(results):
        check(not isinstance(r, Exception) and r is not None, "client %d: %r" % (i, r))
        expect_body(r, tree(LIBA, "v1.1.0", "zip"), "client %d after release" % i)
    last = {}

    def idle():
        m, _ = scrape(d)
        last["m"] = m
        return m.val("goproxyd_fetch_waiters") == 0 and m.val("goproxyd_fetches_inflight") == 0
    check(wait_until(idle, 5, 0.1), "after the fetch: waiters %g, inflight %g (want 0, 0)"
          % (last["m"].val("goproxyd_fetch_waiters"), last["m"].val("goproxyd_fetches_inflight")))


@checked
def test_metrics_stale():
    d = daemon(extra=["-cacheExpire", "1s"])
    path = p(LIBA, kind="list")
    m0, _ = scrape(d)
    expect_body(get(d.port, path), tree(LIBA, kind="list"), "first list", "miss")
    time.sleep(1.3)
    C.A.set_rules({r"/@v/list$": {"status": 500}})
    expect_body(get(d.port, path), tree(LIBA, kind="list"), "list with failing upstream", "stale")
    last = {}

    def counted():
        m, _ = scrape(d)
        last["m"] = m
        return m.val0(REQ, endpoint="list", code="200") - m0.val0(REQ, endpoint="list", code="200") >= 2
    check(wait_until(counted, 5), "list requests not counted: %s" % last["m"].series(REQ))
    m = last["m"]
    eq(m.val0(CACHE, outcome="stale") - m0.val0(CACHE, outcome="stale"), 1, "stale answers counted")
    eq(m.val0(CACHE, outcome="miss") - m0.val0(CACHE, outcome="miss"), 1, "misses counted")
    check(m.val(UP, upstream=C.A.url, outcome="error") >= 1, "upstream error not counted: %s" % m.series(UP))


# =================================================================== 2. /healthz, /readyz

def probe(d, path, **kw):
    return get(d.port, path, timeout=10, **kw)


@checked
def test_health_normal():
    d = daemon()
    eq(probe(d, "/healthz").status, 200, "/healthz at start")
    eq(probe(d, "/readyz").status, 200, "/readyz at start")
    expect_body(get(d.port, p(LIBA, "v1.0.0", "info")), tree(LIBA, "v1.0.0", "info"), "info")
    eq(probe(d, "/healthz").status, 200, "/healthz after a fetch")
    eq(probe(d, "/readyz").status, 200, "/readyz after a fetch")
    # a 404 from upstream is an answer: still ready
    eq(get(d.port, "/example.com/liba/@v/v1.9.0.info").status, 404, "unknown version")
    eq(probe(d, "/readyz").status, 200, "/readyz after an upstream 404")
    r = request(d.port, "HEAD", "/healthz")
    eq(r.status, 200, "HEAD /healthz")


@checked
def test_readyz_upstream_down():
    port = free_port()
    up = fakeupstream.FakeUpstream(C.tree, port=port).start()
    C.extra_upstreams.append(up)
    d = daemon(proxy=up.url)
    expect_body(get(d.port, p(LIBA, "v1.0.0", "mod")), tree(LIBA, "v1.0.0", "mod"), "mod with upstream up")
    eq(probe(d, "/readyz").status, 200, "/readyz with upstream up")
    up.stop(close_connections=True)
    C.extra_upstreams.remove(up)
    r = get(d.port, p(LIBA, "v1.0.0", "info"), timeout=30)
    eq(r.status, 404, "fetch with the upstream port closed (body %r)" % r.body[:200])
    last = {}

    def not_ready():
        last["r"] = probe(d, "/readyz")
        return last["r"].status == 503
    check(wait_until(not_ready, 3), "/readyz %d (body %r) after a failed fetch with the upstream port closed; want 503"
          % (last["r"].status, last["r"].body[:200]))
    eq(probe(d, "/healthz").status, 200, "/healthz with upstream down")
    expect_body(get(d.port, p(LIBA, "v1.0.0", "mod")), tree(LIBA, "v1.0.0", "mod"), "cached mod with upstream down",
                "hit")
    up2 = fakeupstream.FakeUpstream(C.tree, port=port).start()
    C.extra_upstreams.append(up2)
    expect_body(get(d.port, p(LIBA, "v1.0.0", "info")), tree(LIBA, "v1.0.0", "info"), "info after upstream is back")

    def ready():
        last["r"] = probe(d, "/readyz")
        return last["r"].status == 200
    check(wait_until(ready, 3), "/readyz %d (body %r) after the upstream is back and a fetch succeeded"
          % (last["r"].status, last["r"].body[:200]))


@checked
def test_readyz_recovers_without_traffic():
    """A load balancer sends nothing to an instance whose /readyz fails, so
    goproxyd must notice by itself that the upstream is back."""
    port = free_port()
    up = fakeupstream.FakeUpstream(C.tree, port=port).start()
    C.extra_upstreams.append(up)
    d = daemon(proxy=up.url)
    up.stop(close_connections=True)
    C.extra_upstreams.remove(up)
    eq(get(d.port, p(LIBA, "v1.0.0", "info"), timeout=30).status, 404, "fetch with the upstream down")
    check(wait_until(lambda: probe(d, "/readyz").status == 503, 3), "/readyz not 503 with the upstream down")
    up2 = fakeupstream.FakeUpstream(C.tree, port=port).start()
    C.extra_upstreams.append(up2)
    # No module request from here on: only /readyz polls.
    check(wait_until(lambda: probe(d, "/readyz").status == 200, 15),
          "/readyz still not 200 15 s after the upstream came back, with no other traffic")


@checked
def test_readyz_readonly_cache():
    if os.geteuid() != 0:
        raise TestSkip("needs root to mount a tmpfs as the cache directory")
    cache = os.path.join(newdir("rofs"), "cache")
    os.makedirs(cache)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", cache], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=20)
    if r.returncode != 0:
        raise TestSkip("cannot mount a tmpfs (%s)" % r.stdout.decode("utf-8", "replace").strip())
    C.mounts.append(cache)
    d = daemon(cache=cache)
    eq(probe(d, "/readyz").status, 200, "/readyz with a writable cache")
    expect_body(get(d.port, p(LIBA, "v1.0.0", "mod")), tree(LIBA, "v1.0.0", "mod"), "mod into the tmpfs")
    r = subprocess.run(["mount", "-o", "remount,ro", cache], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=20)
    if r.returncode != 0:
        raise TestSkip("cannot remount the tmpfs read-only (%s)" % r.stdout.decode("utf-8", "replace").strip())
    last = {}

    def status_is(want):
        def f():
            last["r"] = probe(d, "/readyz")
            return last["r"].status == want
        return f
    check(wait_until(status_is(503), 3), "/readyz %d (body %r) with the cache dir mounted read-only; want 503"
          % (last["r"].status, last["r"].body[:200]))
    eq(probe(d, "/healthz").status, 200, "/healthz with a read-only cache")
    expect_body(get(d.port, p(LIBA, "v1.0.0", "mod")), tree(LIBA, "v1.0.0", "mod"), "cached mod on a read-only cache",
                "hit")
    subprocess.run(["mount", "-o", "remount,rw", cache], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=20)
    check(wait_until(status_is(200), 3), "/readyz %d after remounting the cache read-write" % last["r"].status)
    finish_daemons()
    C.mounts.remove(cache)
    umount(cache)


@checked
def test_readyz_cache_removed():
    """A cache directory deleted under a running goproxyd can take no more
    files (its open directory is gone): /readyz says so, and why."""
    cache = os.path.join(newdir("removed"), "cache")
    d = daemon(cache=cache)
    eq(probe(d, "/readyz").status, 200, "/readyz at start")
    expect_body(get(d.port, p(LIBA, "v1.0.0", "mod")), tree(LIBA, "v1.0.0", "mod"), "mod")
    shutil.rmtree(cache)
    r = probe(d, "/readyz")
    eq(r.status, 503, "/readyz after the cache directory was removed")
    check(b"removed" in r.body, "/readyz body does not say the directory was removed: %r" % r.body[:200])
    eq(probe(d, "/healthz").status, 200, "/healthz after the cache directory was removed")
    r = get(d.port, p(LIBA, "v1.1.0", "mod"))
    eq(r.status, 404, "a miss once the cache directory is gone")
    check(d.alive(), "daemon died when its cache directory was removed")


@checked
def test_readyz_proxy_off():
    d = daemon(proxy="off")
    eq(probe(d, "/readyz").status, 200, "/readyz with -proxy off")
    eq(get(d.port, p(LIBA, "v1.0.0", "mod")).status, 404, "uncached file with -proxy off")
    eq(probe(d, "/readyz").status, 200, "/readyz with -proxy off after a cache-only 404")
    eq(probe(d, "/healthz").status, 200, "/healthz with -proxy off")
    eq(C.A.count(), 0, "upstream requests with -proxy off")


# =================================================================== 3. access log

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)$")
DUR_RE = re.compile(r"^(\d+(?:\.\d+)?)(ns|us|µs|ms|s)$")
DUR_SCALE = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1000.0}


def log_lines(path):
    try:
        data = read(path)
    except OSError:
        return []
    return data.split(b"\n")[:-1] if data.endswith(b"\n") else data.split(b"\n")


def wait_lines(path, n, secs=5):
    """Poll until path holds at least n complete lines, then a little longer
    to catch extra ones; returns the raw lines (bytes)."""
    wait_until(lambda: len(log_lines(path)) >= n, secs)
    time.sleep(0.3)
    return log_lines(path)


def check_time(t, what):
    check(TIME_RE.match(t), "%s: time %r is not RFC 3339" % (what, t))
    import datetime
    ts = datetime.datetime.fromisoformat(t.replace("Z", "+00:00"))
    now = datetime.datetime.now(datetime.timezone.utc)
    check(abs((now - ts).total_seconds()) < 300, "%s: time %r is not now (%s)" % (what, t, now.isoformat()))


def access_workload(d):
    """Requests of every kind; returns [(method, path, status, bytes, cache, min_ms)]."""
    out = []
    miss = p(LIBA, "v1.0.0", "mod")
    C.A.set_rules({re.escape(miss) + "$": {"stall_before_headers": 0.5}})
    r = get(d.port, miss)
    expect_body(r, tree(LIBA, "v1.0.0", "mod"), "stalled miss", "miss")
    out.append(("GET", miss, 200, len(r.body), "miss", 400))
    r = get(d.port, miss)
    expect_body(r, tree(LIBA, "v1.0.0", "mod"), "hit", "hit")
    out.append(("GET", miss, 200, len(r.body), "hit", 0))
    nf = "/example.com/liba/@v/v1.9.0.info"
    r = get(d.port, nf)
    eq(r.status, 404, "unknown version")
    out.append(("GET", nf, 404, len(r.body), "-", 0))
    r = get(d.port, "/example.com/liba/@v/v1.0.zip")
    eq(r.status, 400, "malformed path")
    out.append(("GET", "/example.com/liba/@v/v1.0.zip", 400, len(r.body), "-", 0))
    r = get(d.port, "/healthz")
    eq(r.status, 200, "/healthz")
    out.append(("GET", "/healthz", 200, len(r.body), "-", 0))
    lst = p(LIBB, kind="list")
    r = get(d.port, lst)
    expect_body(r, tree(LIBB, kind="list"), "list", "miss")
    out.append(("GET", lst, 200, len(r.body), "miss", 0))
    time.sleep(1.2)
    C.A.set_rules({r"/@v/list$": {"status": 500}})
    r = get(d.port, lst)
    expect_body(r, tree(LIBB, kind="list"), "stale list", "stale")
    out.append(("GET", lst, 200, len(r.body), "stale", 0))
    return out


def match_entries(entries, want, what):
    """entries: [(method, path, status, bytes, cache, ms)] parsed from the log."""
    check(len(entries) == len(want), "%s: %d lines for %d requests: %s" % (what, len(entries), len(want), entries))
    left = list(entries)
    for w in want:
        found = None
        for e in left:
            if e[:5] == w[:5]:
                found = e
                break
        check(found is not None, "%s: no line for %s; lines: %s" % (what, w[:5], entries))
        check(found[5] >= w[5], "%s: duration %.3fms for %s, want >= %dms (upstream stalled)"
              % (what, found[5], w[:2], w[5]))
        check(found[5] < 30000, "%s: duration %.3fms for %s is absurd" % (what, found[5], w[:2]))
        left.remove(found)


def parse_text_line(line, what):
    try:
        s = line.decode("utf-8")
    except UnicodeDecodeError:
        raise TestFailure("%s: line is not UTF-8: %r" % (what, line))
    f = s.split(" ")
    check(len(f) == 8, "%s: want 8 space-separated fields (time remote method path status bytes duration "
          "cache), got %r" % (what, s))
    check_time(f[0], what)
    eq(f[1], "127.0.0.1", "%s remote" % what)
    check(f[4].isdigit() and f[5].isdigit(), "%s: status/bytes not numbers in %r" % (what, s))
    m = DUR_RE.match(f[6])
    check(m, "%s: duration %r has no unit" % (what, f[6]))
    check(f[7] in ("hit", "miss", "stale", "-"), "%s: cache outcome %r" % (what, f[7]))
    return (f[2], f[3], int(f[4]), int(f[5]), f[7], float(m.group(1)) * DUR_SCALE[m.group(2)])


@checked
def test_accesslog_text():
    dd = newdir("altext")
    logf = os.path.join(dd, "access.log")
    d = daemon(cache=os.path.join(dd, "cache"),
               extra=["-accessLog", logf, "-logFormat", "text", "-cacheExpire", "1s"])
    want = access_workload(d)
    lines = wait_lines(logf, len(want))
    entries = [parse_text_line(l, "text line %d" % i) for i, l in enumerate(lines)]
    match_entries(entries, want, "text access log")


REQUIRED_JSON = {"time": str, "remote": str, "method": str, "path": str, "status": int, "bytes": int,
                 "duration_ms": (int, float), "cache": str}


def parse_json_line(line, what):
    try:
        s = line.decode("utf-8")
    except UnicodeDecodeError:
        raise TestFailure("%s: line is not UTF-8: %r" % (what, line[:300]))
    try:
        o = json.loads(s)
    except ValueError as e:
        raise TestFailure("%s: not JSON (%s): %r" % (what, e, s[:300]))
    check(isinstance(o, dict), "%s: not a JSON object: %r" % (what, s[:200]))
    for k, t in REQUIRED_JSON.items():
        check(k in o, "%s: key %r missing: %r" % (what, k, s[:300]))
        check(isinstance(o[k], t) and not isinstance(o[k], bool), "%s: %s=%r has the wrong type" % (what, k, o[k]))
    check_time(o["time"], what)
    eq(o["remote"], "127.0.0.1", "%s remote" % what)
    check(o["cache"] in ("hit", "miss", "stale", "-"), "%s: cache %r" % (what, o["cache"]))
    check(o["duration_ms"] >= 0, "%s: duration_ms %r" % (what, o["duration_ms"]))
    return o


@checked
def test_accesslog_json():
    dd = newdir("aljson")
    logf = os.path.join(dd, "access.log")
    d = daemon(cache=os.path.join(dd, "cache"),
               extra=["-accessLog", logf, "-logFormat", "json", "-cacheExpire", "1s"])
    want = access_workload(d)
    odd = ["/odd/%22quote%22/sp%20ace/nul%00/@v/list",
           "/example.com/m/@v/v1.0.0%0a%0d%09%5c%22.info",
           "/example.com/a\\b%7B%7D%5B%5D%25/@v/list?x=%22&y=1"]
    for pth in odd:
        r = get(d.port, pth)
        check(r.status in (400, 404), "odd path %r: status %d" % (pth[:60], r.status))
        want.append(("GET", pth.split("?")[0], r.status, len(r.body), "-", 0))   # the path, without the query
    # a long one: the line may shorten the path, but must stay one valid line
    long_path = "/" + "%22" * 1500 + "/@v/list"
    r = get(d.port, long_path)
    check(r.status in (400, 404), "long path: status %d" % r.status)
    raw_paths = [b'/odd/"q"/back\\slash/@v/list', b"/odd/\xc3\xa9\xff\xfe/@v/list",
                 b"/odd/" + b'"\\' * 1500 + b"/@v/list"]
    raw_status = []
    for rp in raw_paths:
        r = raw_request(d.port, b"GET " + rp + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        check(r is not None, "no HTTP answer for raw path %r" % rp[:40])
        raw_status.append(r.status)
    check(d.alive(), "daemon died on odd paths")
    n_json = len(want) + len(raw_paths) + 1
    lines = wait_lines(logf, n_json)
    objs = [parse_json_line(l, "json line %d" % i) for i, l in enumerate(lines)]
    check(len(objs) == n_json, "%d JSON lines for %d requests (one request split or lost?): %s"
          % (len(objs), n_json, [o["path"][:60] for o in objs]))
    # the raw-byte requests: each one line, path recognisable
    raw_objs = [o for o in objs if o["path"].startswith("/odd/") and o["path"] not in (odd[0],)]
    eq(len(raw_objs), len(raw_paths), "lines for the raw odd paths (%s)" % [o["path"][:40] for o in raw_objs])
    check(any('"q"' in o["path"] and "back\\slash" in o["path"] for o in raw_objs),
          "raw quote/backslash path not logged faithfully: %s" % [o["path"][:60] for o in raw_objs])
    eq(sorted(o["status"] for o in raw_objs), sorted(raw_status), "statuses logged for the raw odd paths")
    long_objs = [o for o in objs if o["path"].startswith("/%22%22")]
    eq(len(long_objs), 1, "lines for the long path")
    lo = long_objs[0]
    check(long_path.startswith(lo["path"]) and len(lo["path"]) >= 256,
          "long path logged as %r..., not a prefix of at least 256 chars of the request path" % lo["path"][:80])
    eq(lo["status"], r.status, "status logged for the long path")
    if lo["path"] != long_path:
        sys.stderr.write("note: a %d-char path is logged as its first %d chars\n" % (len(long_path), len(lo["path"])))
    rest = [o for o in objs if o not in raw_objs and o is not lo]
    entries = [(o["method"], o["path"], o["status"], o["bytes"], o["cache"], float(o["duration_ms"])) for o in rest]
    match_entries(entries, want, "json access log")


@checked
def test_head_bytes():
    # HEAD sends no body: 0 bytes in the access log and in bytes_served_total
    dd = newdir("head")
    logf = os.path.join(dd, "access.log")
    d = daemon(cache=os.path.join(dd, "cache"), extra=["-accessLog", logf, "-logFormat", "json"])
    m0, len0 = scrape(d)
    info = p(LIBA, "v1.0.0", "info")
    for outcome in ("miss", "hit"):
        r = request(d.port, "HEAD", info)
        eq(r.status, 200, "HEAD %s (%s)" % (info, outcome))
        eq(xcache(r), outcome, "HEAD X-Goproxyd-Cache")
        eq(r.body, b"", "HEAD body")
    r = request(d.port, "HEAD", "/healthz")
    eq(r.status, 200, "HEAD /healthz")
    problems = []
    lines = wait_lines(logf, 4)
    objs = [parse_json_line(l, "line %d" % i) for i, l in enumerate(lines)]
    heads = sorted((o["path"], o["bytes"], o["cache"]) for o in objs if o["method"] == "HEAD")
    want = sorted([(info, 0, "miss"), (info, 0, "hit"), ("/healthz", 0, "-")])
    if heads != want:
        problems.append("access log HEAD lines (path, bytes, cache) %s, want %s" % (heads, want))
    # bytes served since m0: the m0 body and later scrape bodies, nothing for
    # the HEADs; scrape until every earlier request is counted
    scrapes = [len0]
    deadline = time.time() + 5
    while True:
        m, ln = scrape(d)
        heads = m.val0(REQ, endpoint="info", code="200") - m0.val0(REQ, endpoint="info", code="200")
        ops = m.val0(REQ, endpoint="ops", code="200") - m0.val0(REQ, endpoint="ops", code="200")
        if heads == 2 and ops == len(scrapes) + 1:      # + HEAD /healthz
            break
        check(time.time() < deadline, "requests not counted within 5s (info +%g, ops +%g)" % (heads, ops))
        scrapes.append(ln)
        time.sleep(0.05)
    served = m.val("goproxyd_bytes_served_total") - m0.val("goproxyd_bytes_served_total")
    if served != sum(scrapes):
        problems.append("goproxyd_bytes_served_total grew by %d, want %d (the /metrics bodies %s; the HEADs "
                        "send no body)" % (served, sum(scrapes), scrapes))
    check(not problems, "; ".join(problems))


@checked
def test_accesslog_sighup_reopen():
    dd = newdir("alhup")
    logf = os.path.join(dd, "access.log")
    d = daemon(cache=os.path.join(dd, "cache"), extra=["-accessLog", logf])
    before = ["/example.com/liba/@v/list", p(LIBA, "v1.0.0", "info")]
    for pth in before:
        eq(get(d.port, pth).status, 200, "GET %s" % pth)
    lines = wait_lines(logf, len(before))
    eq(len(lines), len(before), "lines before the rotation")
    rotated = logf + ".1"
    os.rename(logf, rotated)
    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: os.path.exists(logf), 3)
    check(d.alive(), "daemon died on SIGHUP: %s" % d.log_tail())
    after = [p(LIBB, "v1.0.0", "mod"), "/healthz", p(LIBB, "v1.0.0", "info")]
    for pth in after:
        eq(get(d.port, pth).status, 200, "GET %s" % pth)
    new = wait_lines(logf, len(after))
    check(os.path.exists(logf), "no new access log at %s after SIGHUP" % logf)
    eq(len(new), len(after), "lines in the reopened log (%r)" % new)
    for pth in after:
        check(any((" %s " % pth).encode() in l for l in new), "%s not in the reopened log: %r" % (pth, new))
    old = log_lines(rotated)
    eq(len(old), len(before), "lines in the rotated log (%r)" % old)
    for pth in before:
        check(any((" %s " % pth).encode() in l for l in old), "%s not in the rotated log" % pth)
    # a second rotation works too
    os.rename(logf, logf + ".2")
    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: os.path.exists(logf), 3)
    eq(get(d.port, "/healthz").status, 200, "healthz after the second SIGHUP")
    third = wait_lines(logf, 1)
    eq(len(third), 1, "lines after the second rotation")


@checked
def test_accesslog_stderr():
    d = daemon(extra=["-accessLog", "-"])
    pth = p(LIBA, "v1.0.0", "mod")
    expect_body(get(d.port, pth), tree(LIBA, "v1.0.0", "mod"), "mod", "miss")
    eq(get(d.port, "/example.com/liba/@v/v1.9.0.info").status, 404, "unknown version")
    rx = re.compile(r"127\.0\.0\.1 GET %s 200 %d \S+ miss$" % (re.escape(pth), len(tree(LIBA, "v1.0.0", "mod"))),
                    re.M)
    rx404 = re.compile(r"127\.0\.0\.1 GET /example\.com/liba/@v/v1\.9\.0\.info 404 \d+ \S+ -$", re.M)
    ok = wait_until(lambda: rx.search(log_text(d)) and rx404.search(log_text(d)), 5)
    check(ok, "access lines not on the daemon's stderr: %r" % log_text(d)[-800:])


# =================================================================== 4. TLS

def tls_files():
    if C.tls is None:
        dd = newdir("tls")
        cert, key = os.path.join(dd, "cert.pem"), os.path.join(dd, "key.pem")
        r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                            "-nodes", "-days", "2", "-subj", "/CN=localhost",
                            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                            "-keyout", key, "-out", cert], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
        check(r.returncode == 0, "openssl req failed: %s" % r.stdout.decode("utf-8", "replace"))
        C.tls = (cert, key)
    return C.tls


def tls_ctx():
    cert, _ = tls_files()
    ctx = ssl.create_default_context(cafile=cert)
    ctx.check_hostname = True
    return ctx


def tls_args():
    cert, key = tls_files()
    return ["-tlsCert", cert, "-tlsKey", key]


@checked
def test_tls_serving():
    ctx = tls_ctx()
    d = daemon(extra=tls_args())
    for m, v in ((LIBA, "v1.1.0"), (MIXED, "v1.0.0")):
        for kind in ("info", "mod", "zip"):
            for outcome in ("miss", "hit"):
                r = get(d.port, p(m, v, kind), ssl_context=ctx)
                expect_body(r, tree(m, v, kind), "https %s (%s)" % (p(m, v, kind), outcome), outcome)
    expect_body(get(d.port, p(LIBA, kind="list"), ssl_context=ctx), tree(LIBA, kind="list"), "https list")
    eq(get(d.port, "/healthz", ssl_context=ctx).status, 200, "https /healthz")
    # the certificate presented is ours
    with socket.create_connection(("127.0.0.1", d.port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname="127.0.0.1") as ts:
            der = ts.getpeercert(binary_form=True)
    pem = read(tls_files()[0]).decode()
    check(der == ssl.PEM_cert_to_DER_cert(pem), "server certificate is not the -tlsCert one")
    # plain HTTP to the TLS port gets no HTTP answer (or an error status)
    try:
        r = raw_request(d.port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", timeout=5)
    except OSError:
        r = None
    check(r is None or r.status >= 400, "plain HTTP to the TLS port answered %r" % r)
    try:
        r = get(d.port, p(LIBA, "v1.1.0", "zip"), timeout=5)
        got = r.status
    except Exception as e:  # noqa: BLE001 - any failure is the expected outcome
        got = type(e).__name__
    check(got != 200, "plain HTTP GET of a module file on the TLS port answered 200")
    check(d.alive(), "daemon died after plain HTTP on its TLS port")
    # an untrusting client fails the handshake
    try:
        get(d.port, "/healthz", ssl_context=ssl.create_default_context(), timeout=5)
        raise TestFailure("a client trusting only the system CAs accepted the self-signed certificate")
    except ssl.SSLError:
        pass
    eq(get(d.port, "/healthz", ssl_context=ctx).status, 200, "https still works afterwards")


@checked
def test_tls_flag_pairing():
    cert, key = tls_files()
    for args, what in ((["-tlsCert", cert], "-tlsCert without -tlsKey"),
                       (["-tlsKey", key], "-tlsKey without -tlsCert")):
        rc, out, err = flagrun(args)
        eq(rc, 2, "exit status of %s (stderr %r)" % (what, err))
        line = one_line(err, what)
        check("tls" in line.lower(), "%s: message %r does not name the flags" % (what, line))


def go_run(d, goproxy, name, extra_env=None):
    work = newdir(name)
    app = mkmodules.write_app(os.path.join(work, "app"))
    env = mkmodules.go_env(work, goproxy)
    env["GOFLAGS"] = "-modcacherw -mod=mod"
    env.update(extra_env or {})
    rc, out = mkmodules.run_go(["mod", "download"], app, env, timeout=90)
    if rc is None:
        raise TestFailure("go mod download (%s) did not finish in 90s" % name)
    return rc, out, env["GOMODCACHE"]


def check_modcache(modcache, what, d=None):
    if d is not None:     # and it all came through goproxyd
        for m, v in mkmodules.APP_GO_MOD_REQUIRES:
            f = os.path.join(d.cache_dir, mkmodules.rel(m, v, "zip"))
            check(os.path.isfile(f), "%s: %s not in goproxyd's cache" % (what, mkmodules.rel(m, v, "zip")))
    for m, v in mkmodules.APP_GO_MOD_REQUIRES:
        for kind in ("mod", "zip", "info"):
            f = os.path.join(modcache, "cache", "download", mkmodules.rel(m, v, kind))
            if kind == "info" and not os.path.exists(f):
                continue
            check(os.path.isfile(f), "%s: %s not downloaded" % (what, mkmodules.rel(m, v, kind)))
            if kind != "info":
                check(read(f) == tree(m, v, kind), "%s: %s differs from upstream" % (what, mkmodules.rel(m, v, kind)))


@checked
@timeout(150)
def test_tls_gocmd():
    cert, _ = tls_files()
    d = daemon(extra=tls_args())
    url = "https://127.0.0.1:%d" % d.port
    rc, out, mc = go_run(d, url, "gotls", {"SSL_CERT_FILE": cert})
    check(rc == 0, "go mod download over HTTPS failed (%d): %s" % (rc, out[-1500:]))
    check_modcache(mc, "go over HTTPS", d)
    rc, out, _ = go_run(d, url, "gotls-untrusted")
    check(rc != 0, "go trusted goproxyd's self-signed certificate without SSL_CERT_FILE")
    check("x509" in out or "certificate" in out, "untrusted go run failed for another reason: %s" % out[-800:])


# =================================================================== 5. basic auth

def yescrypt(pw):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import crypt
        lib = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
        lib.crypt_gensalt.restype = ctypes.c_char_p
        lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
        setting = lib.crypt_gensalt(b"$y$", 0, None, 0)
        h = crypt.crypt(pw, setting.decode()) if setting else None
    except Exception:  # noqa: BLE001 - no yescrypt here: the caller skips it
        h = None
    if h and h.startswith("$y$"):
        return h
    try:
        r = subprocess.run(["mkpasswd", "-m", "yescrypt", pw], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           timeout=20)
        h = r.stdout.decode().strip()
        return h if r.returncode == 0 and h.startswith("$y$") else None
    except OSError:
        return None


def sha512crypt(pw):
    r = subprocess.run(["openssl", "passwd", "-6", pw], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    check(r.returncode == 0, "openssl passwd -6 failed: %r" % r.stderr)
    h = r.stdout.decode().strip()
    check(h.startswith("$6$"), "openssl passwd -6 gave %r" % h)
    return h


USERS = {"alice": "c0rrect:horse battery", "bob": "Yes-crypt-Pw-4", "gopher": "g0pher-Pass"}


def auth_file():
    dd = newdir("auth")
    f = os.path.join(dd, "users")
    lines = ["# goproxyd users", "", "alice:" + sha512crypt(USERS["alice"]),
             "gopher:" + sha512crypt(USERS["gopher"])]
    y = yescrypt(USERS["bob"])
    if y:
        lines.append("bob:" + y)
    with open(f, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    os.chmod(f, 0o600)
    return f, y is not None


@checked
def test_auth_basic():
    f, have_yescrypt = auth_file()
    logf = os.path.join(os.path.dirname(f), "access.log")
    d = daemon(extra=["-authFile", f, "-accessLog", logf])
    mod = p(LIBA, "v1.0.0", "mod")
    want = tree(LIBA, "v1.0.0", "mod")
    secrets = set(USERS.values()) | {"wrong-Pass-1", "hunter2-not"}
    n_req = 0
    for pth in (mod, p(LIBB, "v1.0.0", "zip"), "/metrics", p(LIBA, kind="list")):
        r = get(d.port, pth)
        n_req += 1
        eq(r.status, 401, "%s without credentials" % pth)
        wa = r.h("WWW-Authenticate") or ""
        check(wa.lower().startswith("basic"), "%s: WWW-Authenticate %r, want Basic" % (pth, wa))
        check(want not in r.body, "401 answer carries the module")
    eq(C.A.count(re.escape(p(LIBB, "v1.0.0", "zip")) + "$"), 0, "upstream fetches for unauthenticated requests")
    bad = [b64auth("alice", "wrong-Pass-1"), b64auth("nobody", USERS["alice"]), b64auth("alice", ""),
           b64auth("bob", USERS["alice"]), b64auth("alice", "c0rrect"), "Basic !!!notbase64", "Bearer hunter2-not",
           "Basic " + base64.b64encode(b"alice").decode(), b64auth("alice", USERS["alice"] + "x")]
    for h in bad:
        r = get(d.port, mod, headers={"Authorization": h})
        n_req += 1
        eq(r.status, 401, "credentials %r" % h)
        check((r.h("WWW-Authenticate") or "").lower().startswith("basic"), "no WWW-Authenticate on 401 for %r" % h)
    check(d.alive(), "daemon died on bad credentials")
    good = [("alice", USERS["alice"]), ("gopher", USERS["gopher"])]
    if have_yescrypt:
        good.append(("bob", USERS["bob"]))
    for i, (u, pw) in enumerate(good):
        r = get(d.port, mod, headers={"Authorization": b64auth(u, pw)})
        n_req += 1
        expect_body(r, want, "%s's right password" % u, "miss" if i == 0 else "hit")
        # right once, then wrong: the remembered success must not leak over
        r = get(d.port, mod, headers={"Authorization": b64auth(u, pw + "-")})
        n_req += 1
        eq(r.status, 401, "%s's wrong password right after a right one" % u)
    r = get(d.port, "/metrics", headers={"Authorization": b64auth("alice", USERS["alice"])})
    n_req += 1
    eq(r.status, 200, "/metrics with credentials")
    for pth in ("/healthz", "/readyz"):
        r = get(d.port, pth)
        n_req += 1
        eq(r.status, 200, "%s without credentials" % pth)
    lines = wait_lines(logf, n_req)
    eq(len(lines), n_req, "access-log lines")
    n401 = sum(1 for l in lines if b" 401 " in l)
    eq(n401, 4 + len(bad) + len(good), "401 lines in the access log")
    finish_daemons()
    logs = read(logf) + read(d.log_path)
    for s in secrets:
        for form in (s, base64.b64encode(("alice:" + s).encode()).decode(), s.replace(" ", "%20")):
            check(form.encode() not in logs, "secret %r (as %r) appears in the logs" % (s, form))
    if not have_yescrypt:
        raise TestSkip("everything passed, but no yescrypt hash could be made (python3 crypt/libxcrypt or mkpasswd)")


@checked
def test_auth_plaintext_refused():
    dd = newdir("authplain")
    f = os.path.join(dd, "users")
    with open(f, "w") as fh:
        fh.write("alice:%s\nplain:Pl41nT3xtPw\n" % sha512crypt("x"))
    rc, out, err = flagrun(["-authFile", f])
    eq(rc, 2, "exit status with a plain-text password in -authFile (stderr %r)" % err)
    line = one_line(err, "plain-text -authFile")
    check("-authFile" in line, "message %r does not name -authFile" % line)
    check("Pl41nT3xtPw" not in out + err, "the plain-text password is echoed: %r" % line)


@checked
@timeout(150)
def test_auth_gocmd_https():
    cert, _ = tls_files()
    f, _ = auth_file()
    d = daemon(extra=tls_args() + ["-authFile", f])
    url = "https://gopher:%s@127.0.0.1:%d" % (USERS["gopher"], d.port)
    rc, out, mc = go_run(d, url, "goauth", {"SSL_CERT_FILE": cert})
    check(rc == 0, "go mod download with GOPROXY=https://gopher:***@... failed (%d): %s" % (rc, out[-1500:]))
    check_modcache(mc, "go with credentials over HTTPS", d)
    rc, out, _ = go_run(d, "https://127.0.0.1:%d" % d.port, "goauth-none", {"SSL_CERT_FILE": cert})
    check(rc != 0, "go without credentials succeeded against -authFile")
    check("401" in out or "nauthorized" in out, "go without credentials failed for another reason: %s" % out[-800:])
    finish_daemons()
    check(USERS["gopher"].encode() not in read(d.log_path), "password in the daemon log")


# =================================================================== 6. -netrc

NETRC_USER, NETRC_PASS = "nu-LOGIN7q", "np-PASS9z"


@checked
def test_netrc_upstream_auth():
    dd = newdir("netrc")
    netrc = os.path.join(dd, "netrc")
    with open(netrc, "w") as fh:
        fh.write("machine 127.0.0.1 login %s password %s\n" % (NETRC_USER, NETRC_PASS))
    os.chmod(netrc, 0o600)
    hdr = b64auth(NETRC_USER, NETRC_PASS)
    C.A.set_rules({".*": {"require_auth": hdr}})
    # the fake upstream really refuses anonymous requests
    import urllib.request
    import urllib.error
    try:
        urllib.request.urlopen(C.A.url + p(LIBA, "v1.0.0", "mod"), timeout=10)
        raise TestFailure("fake upstream served without credentials")
    except urllib.error.HTTPError as e:
        eq(e.code, 401, "fake upstream without credentials")
    logf = os.path.join(dd, "access.log")
    d = daemon(cache=os.path.join(dd, "cache"), extra=["-netrc", netrc, "-accessLog", logf])
    for kind in ("mod", "info", "zip"):
        expect_body(get(d.port, p(LIBA, "v1.0.0", kind)), tree(LIBA, "v1.0.0", kind), "-netrc " + kind, "miss")
    expect_body(get(d.port, p(LIBA, kind="list")), tree(LIBA, kind="list"), "-netrc list")
    check(hdr in C.A.auth_seen(), "upstream never saw the netrc credentials: %s" % C.A.auth_seen())
    eq(get(d.port, "/example.com/liba/@v/v1.9.0.info").status, 404, "unknown version with -netrc")
    m, _ = scrape(d)
    b64 = hdr.split()[1]
    for s in (NETRC_USER, NETRC_PASS, b64):
        check(s not in m.text, "credential %r appears in /metrics" % s)
    check(m.val(UP, upstream=C.A.url, outcome="ok") >= 4, "upstream ok not counted: %s" % m.series(UP))

    d2 = daemon(cache=os.path.join(dd, "cache2"))
    r = get(d2.port, p(LIBA, "v1.0.0", "mod"))
    eq(r.status, 404, "without -netrc (body %r)" % r.body[:200])
    check("no-store" in (r.h("Cache-Control") or ""), "without -netrc: Cache-Control %r" % r.h("Cache-Control"))
    t = r.text().lower()
    check("401" in t or "unauthorized" in t, "without -netrc: body %r does not name the upstream's 401" % r.text())
    check(not os.path.exists(os.path.join(d2.cache_dir, mkmodules.rel(LIBA, "v1.0.0", "mod"))),
          "401 answer stored")
    finish_daemons()
    logs = read(d.log_path) + read(d2.log_path) + read(logf)
    for s in (NETRC_PASS, b64):
        check(s.encode() not in logs, "credential %r appears in a log" % s)


@checked
def test_netrc_proxy_url_credentials_refused():
    for url in ("http://u:hunter2pw@127.0.0.1:1", C.A.url + ",http://u:hunter2pw@127.0.0.1:1",
                "http://u@127.0.0.1:1"):
        rc, out, err = flagrun(["-proxy", url])
        eq(rc, 2, "exit status of -proxy %s (stderr %r)" % (url, err))
        line = one_line(err, "-proxy with credentials")
        check("-netrc" in line, "message %r does not mention -netrc" % line)


@checked
def test_proxy_url_credentials_not_echoed():
    # goproxyd refuses them because URLs "would show in logs"; the refusal
    # itself (stderr, i.e. the journal under systemd) must not show them either
    rc, out, err = flagrun(["-proxy", "http://u:hunter2pw@127.0.0.1:1"])
    eq(rc, 2, "exit status (stderr %r)" % err)
    check("hunter2pw" not in out + err, "the refusal echoes the password: %r" % err.strip())


# =================================================================== 7. sd_notify

def recv_until(sock, word, secs, got):
    deadline = time.time() + secs
    while time.time() < deadline:
        sock.settimeout(max(0.05, deadline - time.time()))
        try:
            msg = sock.recv(4096).decode("utf-8", "replace")
        except socket.timeout:
            break
        got.append(msg)
        if word in msg.split("\n"):
            return True
    return False


@checked
def test_sd_notify():
    dd = newdir("notify")
    for kind in ("path", "abstract"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            if kind == "path":
                addr = os.path.join(dd, "notify.sock")
                s.bind(addr)
                env_val = addr
            else:
                name = "goproxyd-test-%d-%d" % (os.getpid(), time.time_ns() % 1000000)
                s.bind("\0" + name)
                env_val = "@" + name
            t0 = time.time()
            d = daemon(cache=os.path.join(dd, "cache-" + kind), env={"NOTIFY_SOCKET": env_val})
            got = []
            check(recv_until(s, "READY=1", 10, got), "%s socket: no READY=1 within 10s of start (got %r)" % (kind, got))
            eq(get(d.port, "/healthz").status, 200, "/healthz after READY=1")
            check(not any("STOPPING=1" in g for g in got), "STOPPING=1 before SIGTERM: %r" % got)
            d.proc.send_signal(signal.SIGTERM)
            got2 = []
            check(recv_until(s, "STOPPING=1", 10, got2), "%s socket: no STOPPING=1 within 10s of SIGTERM (got %r)"
                  % (kind, got2))
            try:
                rc = d.proc.wait(15)
            except subprocess.TimeoutExpired:
                raise TestFailure("daemon did not exit within 15s of SIGTERM")
            eq(rc, 0, "exit status after SIGTERM")
            check(time.time() - t0 < 30, "sd_notify round took too long")
        finally:
            s.close()


class ActivatedDaemon(Daemon):
    """goproxyd started by systemd-socket-activate, which binds self.port,
    passes it as fd 3 (LISTEN_FDS=1) and execs goproxyd on the first
    connection.  goproxyd's own -listen names another port, which must stay
    unbound."""

    def __init__(self, *a, **kw):
        Daemon.__init__(self, *a, **kw)
        self.unused_port = free_port()

    def args(self):
        a = Daemon.args(self)
        a[a.index("-listen") + 1] = "127.0.0.1:%d" % self.unused_port
        return ["systemd-socket-activate", "-l", "127.0.0.1:%d" % self.port] + a


def need_socket_activate():
    if subprocess.run(["sh", "-c", "command -v systemd-socket-activate"],
                      stdout=subprocess.DEVNULL).returncode != 0:
        raise TestSkip("systemd-socket-activate not installed (Debian package systemd)")


@checked
def test_socket_activation():
    """A socket passed by systemd replaces -listen, is shared by every
    serving thread, and SIGTERM still stops goproxyd cleanly."""
    need_socket_activate()
    d = ActivatedDaemon(os.path.join(newdir("activated"), "cache"), C.A.url, ["-threads", "2"])
    C.daemons.append(d)
    d.start()
    eq(probe(d, "/healthz").status, 200, "/healthz on the passed socket")
    expect_body(get(d.port, p(LIBA, "v1.0.0", "zip")), tree(LIBA, "v1.0.0", "zip"), "zip (miss)")
    r = get(d.port, p(LIBA, "v1.0.0", "zip"))
    eq((r.h("X-Goproxyd-Cache") or "").lower(), "hit", "second request")
    # Both serving threads accept from the one socket: many connections at once.
    results = []

    def one():
        results.append(get(d.port, p(LIBA, "v1.0.0", "info")).status)
    threads = [threading.Thread(target=one) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    eq(results, [200] * 40, "40 concurrent requests on the passed socket")
    s = socket.socket()
    try:
        s.settimeout(2)
        check(s.connect_ex(("127.0.0.1", d.unused_port)) != 0, "-listen port was bound too")
    finally:
        s.close()
    check("socket from systemd" in log_text(d), "start-up line does not name the passed socket: %s"
          % d.log_tail(300))


@checked
def test_socket_activation_two_sockets_refused():
    """Two passed sockets are refused at start with a clear error and exit
    status 1, rather than serving on one of them at random."""
    need_socket_activate()
    dd = newdir("activated2")
    p1, p2 = free_port(), free_port()
    args = ["systemd-socket-activate", "-l", "127.0.0.1:%d" % p1, "-l", "127.0.0.1:%d" % p2,
            daemon_binary(), "-cacheDir", os.path.join(dd, "cache"), "-proxy", "off", "-sumdb", "off"]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 10
        s = None
        while time.time() < deadline:   # the first connection makes it exec goproxyd
            s = socket.socket()
            if s.connect_ex(("127.0.0.1", p1)) == 0:
                break
            s.close()
            s = None
            time.sleep(0.05)
        check(s is not None, "systemd-socket-activate did not listen on %d" % p1)
        s.close()
        out, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        raise TestFailure("goproxyd kept running with two passed sockets")
    text = out.decode("utf-8", "replace")
    eq(proc.returncode, 1, "exit status with two passed sockets (output: %s)" % text.strip()[-300:])
    check("2 sockets passed" in text, "no clear error for two passed sockets: %r" % text[-300:])


TESTS = [
    test_metrics_format, test_metrics_counters, test_metrics_cache_usage, test_metrics_inflight_waiters,
    test_metrics_stale,
    test_health_normal, test_readyz_upstream_down, test_readyz_recovers_without_traffic, test_readyz_readonly_cache, test_readyz_cache_removed, test_readyz_proxy_off,
    test_accesslog_text, test_accesslog_json, test_head_bytes, test_accesslog_sighup_reopen, test_accesslog_stderr,
    test_tls_serving, test_tls_flag_pairing, test_tls_gocmd,
    test_auth_basic, test_auth_plaintext_refused, test_auth_gocmd_https,
    test_netrc_upstream_auth, test_netrc_proxy_url_credentials_refused, test_proxy_url_credentials_not_echoed,
    test_sd_notify, test_socket_activation, test_socket_activation_two_sockets_refused,
]


def main(argv):
    return R.main(setup, TESTS, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

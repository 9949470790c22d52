#!/usr/bin/env python3
"""Warming (-warm, issue #18): goproxyd fetches ahead of the client what its
requests show it will ask for next.

Run:  python3 tests/integration/test_warm.py [NAME-SUBSTRING ...]
Env:  GOPROXYD=path/to/binary (default ./build/goproxyd), KEEP_TMP=1

The harness starts daemons with -warm 0 unless told otherwise; these tests
pass -warm.  Each test builds its own small module graph in GOPROXY layout, served by
tests/lib/fakeupstream.py on 127.0.0.1 (GOSUMDB=off, -sumdb off); the graph
test drives the real go command.  Upstream requests are read from the fake
upstream's request log, cache outcomes from goproxyd's JSON access log.
Last line "N passed, N failed".
"""

import json
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import fakeupstream  # noqa: E402
import mkmodules  # noqa: E402
from harness import (Daemons, Runner, check, check_clean_exits, eq, get, make_tmp,  # noqa: E402
                     wait_for)

R = Runner(default_timeout=180)
WARM = ["-warm", "64"]   # the default; the harness starts daemons with -warm 0
D = Daemons()
GO_TIMEOUT = 120


def setup():
    D.tmp = make_tmp("goproxyd-warm-", R)
    R.cleanups.append(D.stop_all)


# ------------------------------------------------------------------ module trees

class Tree:
    """A GOPROXY tree and a fake upstream serving it."""

    def __init__(self, name):
        self.dir = D.newdir(name)
        self.root = os.path.join(self.dir, "tree")
        os.makedirs(self.root)
        self.up = fakeupstream.FakeUpstream(self.root).start()
        R.after_each.append(self.stop)
        self.versions = {}

    def stop(self):
        if self.up:
            self.up.stop(close_connections=True)
            self.up = None

    def add(self, module, version, requires=(), go=None, day=1):
        """module@version; go=None writes a go.mod without a go line (an
        unpruned module: the go command reads its requirements' go.mod)."""
        mod = "module %s\n" % module
        if go:
            mod += "\ngo %s\n" % go
        if requires:
            mod += "\nrequire (\n" + "".join("\t%s %s\n" % r for r in requires) + ")\n"
        pkg = module.rsplit("/", 1)[1].replace("-", "")
        src = "package %s\n\n// V is the version.\nconst V = %r\n" % (pkg, version)
        src = src.replace("'", '"')
        base = os.path.join(self.root, mkmodules.escape(module), "@v")
        os.makedirs(base, exist_ok=True)
        ev = mkmodules.escape(version)
        files = {
            ev + ".info": json.dumps({"Version": version,
                                      "Time": "2024-01-%02dT10:00:00Z" % day}).encode(),
            ev + ".mod": mod.encode(),
            ev + ".zip": mkmodules.module_zip(module, version, {"go.mod": mod.encode(),
                                                                 pkg + ".go": src.encode()}),
        }
        for name, data in files.items():
            with open(os.path.join(base, name), "wb") as f:
                f.write(data)
        self.versions.setdefault(module, []).append(version)
        with open(os.path.join(base, "list"), "w") as f:
            f.write("".join(v + "\n" for v in self.versions[module]))

    def requested(self, pattern=None):
        """Upstream request paths in order, those matching pattern if given."""
        rx = re.compile(pattern) if pattern else None
        return [p for _, p in self.up.request_log() if rx is None or rx.search(p)]


def path(module, version, ext):
    return "/%s/@v/%s.%s" % (mkmodules.escape(module), mkmodules.escape(version), ext)


def metrics(d):
    """{series line name with labels: value} of /metrics."""
    r = get(d.port, "/metrics")
    eq(r.status, 200, "/metrics status")
    out = {}
    for line in r.text().splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def warm_settled(d, secs=20):
    """Waits until no fetch runs or waits in d (warming included)."""
    ok = wait_for(lambda: metrics(d).get("goproxyd_fetches_inflight") == 0, secs, 0.05)
    check(ok, "fetches still in flight after %ds: %s" % (secs, metrics(d)))


def access_log(logf):
    with open(logf) as f:
        return [json.loads(line) for line in f if line.strip()]


# ------------------------------------------------------------------ tests

def test_graph_mods_become_hits():
    """An unpruned graph: the client's first .mod warms the rest of the
    graph's go.mod files (and .info files), so the go command's later
    requests for them are hits, each file fetched upstream once."""
    t = Tree("graph")
    leaves = [("example.com/leaf%d" % i, "v1.0.0") for i in range(4)]
    mids = [("example.com/mid%d" % i, "v1.0.0") for i in range(3)]
    for m, v in leaves:
        t.add(m, v)
    for i, (m, v) in enumerate(mids):
        t.add(m, v, requires=[leaves[i], leaves[i + 1]])
    t.add("example.com/top", "v1.0.0", requires=mids)
    logf = os.path.join(t.dir, "access.log")
    d = D.start(t.up.url, WARM + ["-accessLog", logf, "-logFormat", "json"], name="graph-d")
    # What the go command asks for first: the top module's go.mod.
    eq(get(d.port, path("example.com/top", "v1.0.0", "mod")).status, 200, "top .mod")
    warm_settled(d)
    for m, v in mids + leaves:
        check(path(m, v, "mod") in t.requested(), "%s@%s.mod not warmed: upstream saw %s"
              % (m, v, t.requested()))
    # Now the real go command, on a fresh module cache, for the whole graph.
    wd = os.path.join(t.dir, "app")
    os.makedirs(wd)
    with open(os.path.join(wd, "go.mod"), "w") as f:
        f.write("module example.com/app\n\ngo 1.16\n\nrequire example.com/top v1.0.0\n")
    env = mkmodules.go_env(wd, d.url)
    rc, out = mkmodules.run_go(["list", "-m", "all"], wd, env, GO_TIMEOUT)
    eq(rc, 0, "go list -m all: %s" % out[-800:])
    for m, _ in mids + leaves:
        check(m in out, "go list -m all lacks %s: %s" % (m, out))
    warm_settled(d)
    seen = {}
    for e in access_log(logf):
        seen.setdefault(e["path"], []).append(e["cache"])
    for m, v in mids + leaves:
        eq(seen.get(path(m, v, "mod")), ["hit"], "%s@%s.mod as the go command got it" % (m, v))
    counts = {}
    for p in t.requested():
        counts[p] = counts.get(p, 0) + 1
    check(all(n == 1 for n in counts.values()),
          "files fetched upstream more than once: %s" % {p: n for p, n in counts.items() if n > 1})
    m = metrics(d)
    check(m.get('goproxyd_warm_files_total{use="useful"}', 0) >= len(mids + leaves),
          "useful warmed files: %s" % m)
    check(m.get('goproxyd_warm_fetches_total{outcome="stored"}', 0) >= len(mids + leaves),
          "stored warming fetches: %s" % m)


def test_warm_off_changes_nothing():
    """-warm 0: a .mod, a .zip and a .info fetch only themselves."""
    t = Tree("off")
    t.add("example.com/leaf", "v1.0.0")
    t.add("example.com/top", "v1.0.0", requires=[("example.com/leaf", "v1.0.0")])
    d = D.start(t.up.url, ["-warm", "0"], name="off-d")
    want = [path("example.com/top", "v1.0.0", e) for e in ("mod", "zip", "info")]
    for p in want:
        eq(get(d.port, p).status, 200, p)
    time.sleep(0.5)
    warm_settled(d)
    eq(t.requested(), want, "upstream requests with -warm 0")
    check(not any(k.startswith("goproxyd_warm_fetches_total") and v for k, v in metrics(d).items()),
          "warming counted with -warm 0")


def test_zip_and_info_warm_their_files():
    """A .zip warms its .mod and .info; a canonical .info warms its .zip;
    a pruned go.mod (go 1.17 or later) warms no requirement."""
    t = Tree("kinds")
    t.add("example.com/dep", "v1.0.0")
    t.add("example.com/a", "v1.0.0", go="1.19", requires=[("example.com/dep", "v1.0.0")])
    t.add("example.com/b", "v1.0.0")
    d = D.start(t.up.url, WARM, name="kinds-d")
    eq(get(d.port, path("example.com/a", "v1.0.0", "zip")).status, 200, "a .zip")
    warm_settled(d)
    eq(sorted(t.requested()), sorted(path("example.com/a", "v1.0.0", e) for e in ("zip", "mod", "info")),
       "after a .zip of a pruned module")
    eq(get(d.port, path("example.com/b", "v1.0.0", "info")).status, 200, "b .info")
    warm_settled(d)
    check(path("example.com/b", "v1.0.0", "zip") in t.requested(), "b .zip not warmed: %s" % t.requested())
    check(path("example.com/b", "v1.0.0", "mod") not in t.requested(), ".info warmed a .mod")
    r = get(d.port, path("example.com/b", "v1.0.0", "zip"))
    eq((r.status, r.h("X-Goproxyd-Cache")), (200, "hit"), "warmed zip")
    eq(t.requested().count(path("example.com/b", "v1.0.0", "zip")), 1, "upstream requests for b .zip")


def test_client_preempts_warming():
    """With every warming slot held by stalled fetches, a client's fetch
    still starts at once, and a client asking for a file whose warming
    fetch is queued makes it start ahead of the others."""
    t = Tree("preempt")
    mods = ["example.com/w%d" % i for i in range(6)]
    for m in mods:
        t.add(m, "v1.0.0")
    t.add("example.com/free", "v1.0.0")
    stalled = "|".join(re.escape(path(m, "v1.0.0", "zip")) for m in mods[:5])
    t.up.set_rules({"(%s)$" % stalled: {"stall_before_headers": 60}})
    # -maxFetches 4: at most 2 warming fetches run, 1 transfer kept for clients
    d = D.start(t.up.url, ["-maxFetches", "4", "-warm", "16", "-stallTimeout", "90s"], name="preempt-d")
    try:
        for m in mods:
            eq(get(d.port, path(m, "v1.0.0", "info")).status, 200, "%s .info" % m)
        ok = wait_for(lambda: t.up.stalling() == 2, 10, 0.05)
        check(ok, "stalled warming fetches: %d, want 2" % t.up.stalling())
        time.sleep(0.3)
        zips = t.requested(r"\.zip$")
        eq(len(zips), 2, "warming zips started (the rest queued): %s" % zips)
        # a client's own fetch is not queued behind warming
        r = get(d.port, path("example.com/free", "v1.0.0", "mod"), timeout=20)
        eq(r.status, 200, "client .mod while warming stalls")
        # the last queued warming zip, asked for by a client, starts now
        last = path(mods[5], "v1.0.0", "zip")
        check(last not in t.requested(), "w5 .zip started before a client asked")
        r = get(d.port, last, timeout=20)
        eq((r.status, r.h("X-Goproxyd-Cache")), (200, "miss"), "client joining a queued warming zip")
        zips = t.requested(r"\.zip$")
        eq(len(zips), 3, "zips asked upstream (w5 ahead of the queued w2..w4): %s" % zips)
        check(t.up.stalling() == 2, "stalls still held: %d" % t.up.stalling())
        m = metrics(d)
        check(m.get('goproxyd_warm_files_total{use="useful"}', 0) >= 1, "joined warming fetch not useful: %s" % m)
    finally:
        t.up.set_rules({"(%s)$" % stalled: {}})
        t.up.release_stalls()
    warm_settled(d, 30)


def test_warming_stops_at_caps():
    """-warm N: one go.mod warms at most N files; at most N warming fetches
    run or wait at once."""
    t = Tree("caps")
    deps = [("example.com/dep%d" % i, "v1.0.0") for i in range(8)]
    for m, v in deps:
        t.add(m, v)
    t.add("example.com/top", "v1.0.0", requires=deps)
    t.add("example.com/top2", "v1.0.0", requires=deps)
    # per go.mod: 3 of top's 8 requirements (and top's .info)
    d = D.start(t.up.url, ["-warm", "3"], name="caps-d")
    eq(get(d.port, path("example.com/top", "v1.0.0", "mod")).status, 200, "top .mod")
    time.sleep(0.5)
    warm_settled(d)
    warmed = t.requested(r"/dep\d/@v/v1\.0\.0\.mod$")
    # 3, or 2 when top's own warming .info was still under way (the total cap)
    check(2 <= len(warmed) <= 3, "requirements warmed from one go.mod with -warm 3: %s" % warmed)
    eq(t.requested(r"/dep[3-7]/"), [], "requirements past the per-go.mod cap")
    D.stop(d)
    # in total: with the warming fetches stalled, no more than 3 at once
    t.up.reset()
    stall = r"/dep\d/@v/|/top2/@v/v1\.0\.0\.info$"
    t.up.set_rules({stall: {"stall_before_headers": 60}})
    d = D.start(t.up.url, ["-warm", "3"], name="caps-total-d")
    try:
        eq(get(d.port, path("example.com/top2", "v1.0.0", "mod")).status, 200, "top2 .mod")
        ok = wait_for(lambda: t.up.stalling() >= 3, 10, 0.05)
        check(ok, "warming did not start: %s" % t.requested())
        capped = metrics(d).get("goproxyd_warm_capped_total", 0)
        eq(get(d.port, path("example.com/top", "v1.0.0", "info")).status, 200, "top .info")
        time.sleep(0.5)
        # top2.info + dep0 + dep1 = 3, all stalled; top.zip and further deps capped
        eq(sorted(t.requested(r"/dep\d/")), sorted(path(m, v, "mod") for m, v in deps[:2]),
           "stalled warming fetches")
        check(path("example.com/top", "v1.0.0", "zip") not in t.requested(), "warmed past the total cap")
        check(capped >= 1, "dep2 capped but not counted")
        eq(metrics(d).get("goproxyd_warm_capped_total", 0), capped + 1, "top .zip capped")
    finally:
        t.up.set_rules({stall: {}})
        t.up.release_stalls()
    warm_settled(d, 30)


def test_excluded_never_warmed():
    """A requirement matching -deny (refused) or -exclude (private: fetched
    from its origin by the go command, only when a client asks) is never
    fetched by warming: no upstream request, no go command."""
    t = Tree("exclude")
    t.add("example.com/private/secret", "v1.0.0")
    t.add("example.com/denied/thing", "v1.0.0")
    t.add("example.com/public", "v1.0.0")
    t.add("example.com/top", "v1.0.0",
          requires=[("example.com/private/secret", "v1.0.0"), ("example.com/denied/thing", "v1.0.0"),
                    ("example.com/public", "v1.0.0")])
    # A stand-in go command: it answers `go version` (start-up) and logs
    # anything else, so a regression is seen without reaching any origin.
    fake_go = os.path.join(D.tmp, "fake-go")
    log = fake_go + ".log"
    with open(fake_go, "w") as f:
        f.write('#!/bin/sh\nif [ "$1" = version ]; then echo "go version go1.19 fake"; exit 0; fi\n'
                'echo "$*" >> %s\necho "fake go: refusing $*" >&2\nexit 1\n' % log)
    os.chmod(fake_go, 0o755)
    d = D.start(t.up.url, WARM + ["-exclude", "example.com/private", "-deny", "example.com/denied",
                                  "-goBin", fake_go], name="exclude-d")
    eq(get(d.port, path("example.com/top", "v1.0.0", "mod")).status, 200, "top .mod")
    eq(get(d.port, path("example.com/top", "v1.0.0", "zip")).status, 200, "top .zip")
    time.sleep(0.5)
    warm_settled(d)
    check(path("example.com/public", "v1.0.0", "mod") in t.requested(), "public .mod not warmed")
    eq(t.requested("private"), [], "upstream requests for the -exclude'd module")
    eq(t.requested("denied"), [], "upstream requests for the -deny'd module")
    m = metrics(d)
    eq(sum(v for k, v in m.items() if k.startswith("goproxyd_direct_fetches_total")), 0,
       "go commands started by warming")
    check(not os.path.exists(log), "the go command ran for: %r" % (os.path.exists(log) and open(log).read()))
    r = get(d.port, path("example.com/denied/thing", "v1.0.0", "mod"))
    eq(r.status, 404, "denied module for a client")
    check("-deny" in r.text(), "body: %r" % r.text())


def test_warmed_missing_file_leaves_client_alone():
    """A file warming found missing upstream (404) is answered to a client
    as a 404 would have been, and is fetched again once the negative cache
    expires; one warming found failing (500) is fetched again at once."""
    t = Tree("missing")
    t.add("example.com/ghost", "v1.0.0")
    t.add("example.com/flaky", "v1.0.0")
    t.add("example.com/top", "v1.0.0",
          requires=[("example.com/ghost", "v1.0.0"), ("example.com/flaky", "v1.0.0")])
    ghost = path("example.com/ghost", "v1.0.0", "mod")
    flaky = path("example.com/flaky", "v1.0.0", "mod")
    t.up.set_rules({re.escape(ghost) + "$": {"status": 404, "body": "ghost is not here\n"},
                    re.escape(flaky) + "$": {"status": 500, "times": 3}})
    d = D.start(t.up.url, WARM + ["-negativeCacheExpire", "2s"], name="missing-d")
    eq(get(d.port, path("example.com/top", "v1.0.0", "mod")).status, 200, "top .mod")
    time.sleep(0.5)
    warm_settled(d)
    eq(t.requested(re.escape(ghost)), [ghost], "warming asked for ghost")
    eq(len(t.requested(re.escape(flaky))), 3, "warming tries for flaky (500, retried)")
    m = metrics(d)
    eq(m.get('goproxyd_warm_fetches_total{outcome="notfound"}'), 1.0, "notfound warming fetches")
    eq(m.get('goproxyd_warm_fetches_total{outcome="failed"}'), 1.0, "failed warming fetches")
    # the client: ghost is 404 with upstream's reason, as without warming
    r = get(d.port, ghost)
    eq(r.status, 404, "ghost for a client")
    check("ghost is not here" in r.text(), "ghost body: %r" % r.text())
    # flaky: fetched for the client, now that upstream answers
    r = get(d.port, flaky)
    eq((r.status, r.h("X-Goproxyd-Cache")), (200, "miss"), "flaky for a client")
    # ghost appears upstream: once the negative cache expires, a client gets it
    t.up.set_rules({re.escape(ghost) + "$": {}})
    time.sleep(2.2)
    r = get(d.port, ghost)
    eq((r.status, r.h("X-Goproxyd-Cache")), (200, "miss"), "ghost after the negative cache expired")


def test_clean_exits():
    """Every daemon stopped with SIGTERM exited 0 (under SANITIZE=1: no leak
    or error report), warming fetches in flight or not."""
    D.stop_all()
    check(check_clean_exits(D.exits) >= 1, "no daemon was stopped")


TESTS = [
    test_graph_mods_become_hits,
    test_warm_off_changes_nothing,
    test_zip_and_info_warm_their_files,
    test_client_preempts_warming,
    test_warming_stops_at_caps,
    test_excluded_never_warmed,
    test_warmed_missing_file_leaves_client_alone,
    test_clean_exits,
]

if __name__ == "__main__":
    sys.exit(R.main(setup, TESTS, sys.argv[1:]))

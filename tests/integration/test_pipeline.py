#!/usr/bin/env python3
"""No miss waits behind another: goproxyd's fetch pipeline against a stalled
upstream, a slow checksum database and a slow disk.

Run:  python3 tests/integration/test_pipeline.py [NAME-SUBSTRING ...]
Env:  GOPROXYD=path/to/binary (default ./build/goproxyd)
      KEEP_TMP=1 (keep temp dirs and daemon logs)
Covers: misses of other modules, and cache hits, while the files of one
module stall upstream (default -maxFetches); a miss and a hit while a
verification waits on a slow checksum database, and a verification whose
lookup is already cached; misses while other files' fsyncs are slow (an
LD_PRELOAD shim, tests/lib/slowfsync.c, built with cc at start-up).
Every test first checks that the slow thing really is slow (still pending,
or took its delay), so none can pass vacuously.
Prints "ok NAME" / "FAIL NAME: reason" per test ("# ..." lines are
measurements); last line "N passed, N failed"; exit 1 if any test failed.
Standard library only; only 127.0.0.1 is contacted; every loop is bounded.
"""

import os
import re
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import fakesumdb  # noqa: E402
import fakeupstream  # noqa: E402
import mkmodules  # noqa: E402
from harness import (REPO, check_clean_exits, Daemons, Runner, TestFailure, check, eq,  # noqa: E402
                     expect_ok, get, lat_summary, make_tmp, note, parallel, read, timed_get,
                     timeout, tmp_leftovers, wait_for, xcache)

LIBA = "example.com/liba"
LIBB = "example.com/libb"
LIBC = "example.com/libc/v2"

R = Runner(default_timeout=90)


class Ctx:
    tmp = None
    tree = None
    files = None       # tree-relative path -> bytes (everything the upstreams serve)
    ups = []           # per-test fake upstreams (stopped after each test)
    dbs = []           # per-test fake checksum databases
    shim = None        # path of the built slowfsync.so
    shim_error = None  # why it could not be built


C = Ctx()
D = Daemons()


# ------------------------------------------------------------------ fixtures

def setup():
    C.tmp = D.tmp = make_tmp("goproxyd-pipeline-", R)
    C.tree = os.path.join(C.tmp, "tree")
    C.files = dict(mkmodules.generate(C.tree)["files"])
    R.cleanups.append(stop_all)
    R.after_each.append(stop_all)
    build_shim()


def build_shim():
    """tests/lib/slowfsync.c -> TMP/slowfsync.so; a failure is reported by
    the test that needs it, not by setup."""
    cc = shutil.which("cc")
    if cc is None:
        C.shim_error = "cc not found: cannot build the slow-fsync shim tests/lib/slowfsync.c"
        return
    out = os.path.join(C.tmp, "slowfsync.so")
    src = os.path.join(REPO, "tests", "lib", "slowfsync.c")
    try:
        p = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", out, src, "-ldl"],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        C.shim_error = "cc %s: %s" % (src, e)
        return
    if p.returncode != 0:
        C.shim_error = "cc %s failed (%d): %s" % (src, p.returncode, p.stderr.decode("utf-8", "replace")[-500:])
        return
    C.shim = out


def stop_all():
    D.stop_all()
    while C.ups:
        u = C.ups.pop()
        u.release_stalls()
        u.stop(close_connections=True)
    while C.dbs:
        C.dbs.pop().stop()


stop_one = D.stop   # its exit status is checked at the end


def upstream():
    """A fake upstream of its own over the shared tree; stopped (its stalls
    released) after the test."""
    u = fakeupstream.FakeUpstream(C.tree).start()
    C.ups.append(u)
    return u


def sumdb(records):
    """A fake checksum database holding (module, version) records of the tree."""
    db = fakesumdb.FakeSumDB()
    for m, v in records:
        db.add(m, v, mkmodules.zip_hash(tree(m, v, "zip")), mkmodules.gomod_hash(tree(m, v, "mod")))
    C.dbs.append(db)
    return db.start()


def daemon(proxy, extra=(), name="d", env=None):
    return D.start(proxy, extra, None, name, env)


def p(module, version=None, kind="zip"):
    return "/" + mkmodules.rel(module, version, kind)


def tree(module, version=None, kind="zip"):
    return C.files[mkmodules.rel(module, version, kind)]


def cpath(d, module, version=None, kind="zip"):
    return os.path.join(d.cache_dir, mkmodules.rel(module, version, kind))


def add_version(module, version, size=0):
    """module@version added to the shared tree (mkmodules.add_version)."""
    return mkmodules.add_version(C.tree, C.files, module, version, size)


def median(xs):
    s = sorted(xs)
    return s[len(s) // 2]


class Background:
    """GETs started in threads now, each timed; .results[i] is (Resp or
    exception, seconds) once request i has ended, None before."""

    def __init__(self, port, paths, timeout=100.0):
        self.paths = list(paths)
        self.results = [None] * len(self.paths)
        self.started = time.monotonic()
        self.threads = []
        for i, path in enumerate(self.paths):
            t = threading.Thread(target=self._run, args=(port, i, path, timeout), daemon=True)
            t.start()
            self.threads.append(t)

    def _run(self, port, i, path, timeout):
        t0 = time.monotonic()
        try:
            r = get(port, path, timeout=timeout)
        except Exception as e:  # noqa: B902 - reported by the caller
            r = e
        self.results[i] = (r, time.monotonic() - t0)

    def done(self):
        return [i for i, x in enumerate(self.results) if x is not None]

    def join(self, secs):
        deadline = time.monotonic() + secs
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self.threads)


def settle(value, secs, quiet=1.0):
    """Polls value() until it has not changed for `quiet` seconds (or secs
    pass); returns the last value."""
    deadline = time.monotonic() + secs
    last, since = value(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        v = value()
        if v != last:
            last, since = v, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return last


def measure_hits(d, hits, n):
    """n sequential cache hits (cycling over hits), each on a fresh
    connection; returns their latencies."""
    lat = []
    for i in range(n):
        path, want, kind = hits[i % len(hits)]
        r, dt = timed_get(d.port, path, timeout=10)
        expect_ok(r, want, kind, "hit " + path)
        eq(xcache(r), "hit", "X-Goproxyd-Cache of " + path)
        lat.append(dt)
    return lat


def ms(x):
    return "%.0fms" % (1000 * x)


# ================================================================= 1. stalled upstream

N_STUCK = 64          # distinct files of example.com/stuck stalled upstream
N_FRESH = 20          # .info misses of other modules meanwhile
FRESH_BOUND = 5.0     # seconds for all of them together
HIT_SAMPLES = 60      # sequential hits per median


@timeout(90)
def test_stalled_upstream_does_not_starve_other_misses():
    U = upstream()
    stuck = []
    for i in range(N_STUCK):
        v = "v1.0.%d" % i
        add_version("example.com/stuck", v)
        stuck.append(p("example.com/stuck", v, ("info", "mod", "zip")[i % 3]))
    fresh = []
    for i in range(N_FRESH):
        m = "example.com/fresh%02d" % i
        add_version(m, "v1.0.0")
        fresh.append((p(m, "v1.0.0", "info"), tree(m, "v1.0.0", "info")))
    # The stall outlasts the test (the fake caps it at 120 s; released at
    # the end); -stallTimeout 10m so goproxyd does not give up on it.  The
    # default -maxFetches: not passed.
    U.set_rules({r"^/example\.com/stuck/": {"stall_before_headers": 600}})
    d = daemon(U.url, ["-stallTimeout", "10m", "-shutdownTimeout", "1s"])
    hits = [(p(m, v, k), tree(m, v, k), k) for m, v in ((LIBA, "v1.0.0"), (LIBB, "v1.0.0"), (LIBC, "v2.0.0"))
            for k in ("info", "mod", "zip")]
    for path, want, kind in hits:
        expect_ok(get(d.port, path), want, kind, "fill " + path)
    idle = measure_hits(d, hits, HIT_SAMPLES)

    waiters = Background(d.port, stuck, timeout=100)
    check(wait_for(lambda: U.stalling() > 0, 20), "no stalled transfer reached the upstream within 20s")
    # however many goproxyd starts: wait until the number stops growing
    n_stalled = settle(U.stalling, 15, quiet=1.0)
    n_asked = len([x for x in U.stats() if x.startswith("/example.com/stuck/")])
    note("%d stalled requests: upstream holds %d stalled transfers (%d distinct files asked for)"
         % (N_STUCK, n_stalled, n_asked))

    during = measure_hits(d, hits, HIT_SAMPLES)

    t0 = time.monotonic()
    res = parallel([(lambda path=path: timed_get(d.port, path, timeout=FRESH_BOUND + 5)) for path, _ in fresh],
                   FRESH_BOUND + 10)
    overall = time.monotonic() - t0
    lat, bad = [], []
    for (path, want), x in zip(fresh, res):
        if not isinstance(x, tuple):
            bad.append("%s: %s" % (path, "no answer" if x is None else repr(x)[:120]))
            continue
        r, dt = x
        lat.append(dt)
        if r.status != 200 or r.body != want:
            bad.append("%s: %d %r" % (path, r.status, r.body[:80]))
    note("%d .info misses of other modules while %d transfers stall: %d answered, overall %.2fs, %s"
         % (N_FRESH, n_stalled, len(lat), overall, lat_summary(lat)))
    m_idle, m_during = median(idle), median(during)
    note("hit latency idle:          %s" % lat_summary(idle))
    note("hit latency during stall:  %s" % lat_summary(during))

    # not vacuous: the stalled files are still pending, upstream still holds them
    done = waiters.done()
    check(not done, "%d of the %d stalled requests ended during the test, e.g. %s: %r"
          % (len(done), N_STUCK, stuck[done[0]] if done else "", waiters.results[done[0]] if done else None))
    check(U.stalling() >= n_stalled, "stalled transfers ended early (%d of %d left)" % (U.stalling(), n_stalled))

    check(not bad, "%d of %d .info misses of other modules failed while %d transfers of example.com/stuck "
          "stalled (default -maxFetches): %s" % (len(bad), N_FRESH, n_stalled, "; ".join(bad[:3])))
    check(overall <= FRESH_BOUND, "%d .info misses of other modules took %.2fs in all (bound %.0fs) while "
          "%d transfers stalled" % (N_FRESH, overall, FRESH_BOUND, n_stalled))
    # Medians of sub-millisecond hits on a shared 2-core machine are noisy,
    # hence the absolute slack of 2 ms on top of "within 2x".
    check(m_during <= 2 * m_idle + 0.002, "median cache hit %.2fms during the stall, %.2fms idle (bound 2x + 2ms)"
          % (1000 * m_during, 1000 * m_idle))
    stop_one(d)
    waiters.join(10)


# ================================================================= 2. slow checksum database

DB_DELAY = 10.0       # seconds the fake database holds each lookup
PROMPT = 3.0          # "well under" it


def _slow_db_daemon(prefix):
    """Modules PREFIXwarm, PREFIXslow, PREFIXinfo @v1.0.0 in the tree and in
    a fake database; a daemon verifying against it; PREFIXwarm's .mod
    fetched (verified: its lookup and tiles are cached).  Returns (db, d,
    names)."""
    names = {k: "example.com/%s%s" % (prefix, k) for k in ("warm", "slow", "info")}
    for m in names.values():
        add_version(m, "v1.0.0")
    db = sumdb([(m, "v1.0.0") for m in names.values()])
    U = upstream()
    d = daemon(U.url, ["-sumdb", "%s=%s" % (db.vkey, db.url)])
    warm = names["warm"]
    r, dt = timed_get(d.port, p(warm, "v1.0.0", "mod"), timeout=20)
    expect_ok(r, tree(warm, "v1.0.0", "mod"), "mod", "verified .mod of %s" % warm)
    lookups = db.count(r"^/lookup/")
    eq(lookups, 1, "database lookups after the first verified .mod")
    check(os.path.isfile(os.path.join(d.cache_dir, "sumdb", db.name, "lookup",
                                      mkmodules.escape(warm) + "@v1.0.0")),
          "the lookup of %s was not cached" % warm)
    note("verified .mod (fast database): %s" % ms(dt))
    db.set_delay(DB_DELAY)
    return db, d, names


def _start_slow_verification(db, d, slow):
    """The .mod of slow, in the background, once its (delayed) lookup has
    reached the database."""
    bg = Background(d.port, [p(slow, "v1.0.0", "mod")], timeout=DB_DELAY + 20)
    rx = r"^/lookup/%s@v1\.0\.0$" % re.escape(mkmodules.escape(slow))
    check(wait_for(lambda: db.count(rx) > 0, 15), "the lookup of %s never reached the database" % slow)
    return bg, time.monotonic()


def _finish_slow_verification(bg, d, slow):
    check(bg.join(DB_DELAY + 25), "the slow verification never ended")
    r, dt = bg.results[0]
    note("the .mod waiting for the slow lookup: answered after %s" % ms(dt))
    expect_ok(r, tree(slow, "v1.0.0", "mod"), "mod", ".mod of %s (slow lookup)" % slow)
    check(dt >= DB_DELAY - 0.5, "the .mod of %s took %.2fs: the database's %.0fs delay did not apply"
          % (slow, dt, DB_DELAY))
    check(read(cpath(d, slow, "v1.0.0", "mod")) == tree(slow, "v1.0.0", "mod"), "slow .mod not cached")


@timeout(90)
def test_slow_sumdb_delays_only_files_waiting_for_it():
    db, d, names = _slow_db_daemon("sdb")
    bg, t_lookup = _start_slow_verification(db, d, names["slow"])
    info, warm = names["info"], names["warm"]
    res = parallel([lambda: timed_get(d.port, p(info, "v1.0.0", "info"), timeout=DB_DELAY + 10),
                    lambda: timed_get(d.port, p(warm, "v1.0.0", "mod"), timeout=DB_DELAY + 10)],
                   DB_DELAY + 15)
    pending = not bg.done()
    since = time.monotonic() - t_lookup
    (ri, ti), (rh, th) = [x if isinstance(x, tuple) else (x, None) for x in res]
    note("while a lookup is %.0fs late: .info miss %s, cache hit %s (slow .mod still pending: %s, %.1fs in)"
         % (DB_DELAY, ms(ti) if ti is not None else repr(ri), ms(th) if th is not None else repr(rh),
            pending, since))
    # The slow verification is let finish before any verdict (and must
    # succeed, having really waited for the database).
    _finish_slow_verification(bg, d, names["slow"])
    # not vacuous: the verification was still waiting when both were answered
    check(pending and since < DB_DELAY, "the slow .mod was answered (or %.1fs passed) before the others: "
          "nothing was tested" % since)
    expect_ok(ri, tree(info, "v1.0.0", "info"), "info", ".info miss of %s" % info)
    expect_ok(rh, tree(warm, "v1.0.0", "mod"), "mod", "cache hit of %s .mod" % warm)
    eq(xcache(rh), "hit", "X-Goproxyd-Cache of the hit")
    check(ti < PROMPT, ".info miss of another module took %.2fs while a verification waited on the "
          "database (bound %.0fs)" % (ti, PROMPT))
    check(th < PROMPT, "cache hit took %.2fs while a verification waited on the database (bound %.0fs)"
          % (th, PROMPT))
    stop_one(d)


@timeout(90)
def test_cached_lookup_does_not_wait_for_slow_one():
    """The .zip of a version whose lookup is already in goproxyd's cache
    needs no database: it must not wait for another module's lookup."""
    db, d, names = _slow_db_daemon("cdb")
    warm = names["warm"]
    bg, t_lookup = _start_slow_verification(db, d, names["slow"])
    lookups = db.count(r"^/lookup/")
    r, dt = timed_get(d.port, p(warm, "v1.0.0", "zip"), timeout=DB_DELAY + 10)
    pending = not bg.done()
    since = time.monotonic() - t_lookup
    note(".zip miss whose lookup is cached, while another lookup is %.0fs late: %s "
         "(slow .mod still pending: %s, %.1fs in)" % (DB_DELAY, ms(dt), pending, since))
    _finish_slow_verification(bg, d, names["slow"])
    expect_ok(r, tree(warm, "v1.0.0", "zip"), "zip", ".zip of %s" % warm)
    eq(db.count(r"^/lookup/"), lookups, "database lookups for a .zip whose lookup is cached (%s)" % db.counts)
    check(read(cpath(d, warm, "v1.0.0", "zip")) == tree(warm, "v1.0.0", "zip"), ".zip of %s not cached" % warm)
    check(dt < PROMPT, ".zip miss whose lookup is cached took %.2fs: it waited for another module's "
          "%.0fs lookup (bound %.0fs)" % (dt, DB_DELAY, PROMPT))
    # not vacuous: the other verification was still waiting when it was answered
    check(pending, "the slow .mod was answered first: nothing was tested")
    stop_one(d)


# ================================================================= 3. slow disk

FSYNC_MS = 8000
FAST_BOUND = 2.0
SLOW_MODULE = "example.com/slowdisk"


def slow_fsync_env(match, delay_ms):
    """Environment for a daemon with the shim preloaded.  An ASan build
    aborts when a library is preloaded before its runtime ("ASan runtime
    does not come first") unless told not to check; harmless otherwise."""
    return {"LD_PRELOAD": C.shim, "SLOWFSYNC_MATCH": match, "SLOWFSYNC_MS": str(delay_ms),
            "ASAN_OPTIONS": "verify_asan_link_order=0:" + os.environ.get("ASAN_OPTIONS", "")}


def shim_stalls(d):
    """The shim's lines in the daemon's log: fsyncs it is delaying or delayed."""
    try:
        text = read(d.log_path).decode("utf-8", "replace")
    except OSError:
        return []
    return re.findall(r"slowfsync: \d+ ms before \w+ of (\S+)", text)


@timeout(90)
def test_slow_fsync_delays_only_its_own_file():
    if C.shim is None:
        raise TestFailure(C.shim_error or "the slow-fsync shim was not built")
    add_version(SLOW_MODULE, "v1.0.0")
    # One module's three files (as the go command fetches them): more slow
    # fsyncs at once than today's 2 storer threads.
    slow = [(p(SLOW_MODULE, "v1.0.0", k), tree(SLOW_MODULE, "v1.0.0", k), k) for k in ("info", "mod", "zip")]
    fast = []
    for i in range(3):
        m = "example.com/fastdisk%d" % i
        add_version(m, "v1.0.0")
        fast += [(p(m, "v1.0.0", k), tree(m, "v1.0.0", k), k) for k in ("info", "mod", "zip")]
    U = upstream()
    d = daemon(U.url, name="slowfsync", env=slow_fsync_env("slowdisk", FSYNC_MS))
    check("slowdisk" not in d.cache_dir, "the cache directory's own path matches the shim")
    slow_bg = Background(d.port, [x[0] for x in slow], timeout=60)
    check(wait_for(lambda: shim_stalls(d), 15), "no slow fsync within 15s: the shim is not in the daemon "
          "(log: %s)" % d.log_tail(300))
    time.sleep(0.3)
    n_slow = len(shim_stalls(d))
    waiting_before = len(slow) - len(slow_bg.done())
    t0 = time.monotonic()
    res = parallel([(lambda path=path: timed_get(d.port, path, timeout=30)) for path, _, _ in fast], 40)
    overall = time.monotonic() - t0
    waiting_after = len(slow) - len(slow_bg.done())
    lat = [x[1] for x in res if isinstance(x, tuple)]
    note("%d misses of other modules while %d fsync(s) under %s are %dms slow: overall %.2fs, %s; "
         "slow files waiting: %d of %d before, %d after"
         % (len(fast), n_slow, SLOW_MODULE, FSYNC_MS, overall, lat_summary(lat), waiting_before, len(slow),
            waiting_after))
    # The slow files are let finish before any verdict: a daemon stopped
    # while it syncs them would outlast its SIGTERM grace and be killed.
    slow_ok = slow_bg.join(4 * FSYNC_MS / 1000 + 10)
    note("slow files answered after %s" % ", ".join(ms(x[1]) if x else "-" for x in slow_bg.results))
    check(slow_ok, "the slow files were never answered")
    # not vacuous: the shim delayed each slow file by its delay, and they
    # were still waiting for it when the other misses started
    for (path, want, kind), (r, dt) in zip(slow, slow_bg.results):
        expect_ok(r, want, kind, "slow " + path)
        check(dt >= FSYNC_MS / 1000 - 0.2, "%s took %.2fs: its %dms fsync did not apply" % (path, dt, FSYNC_MS))
        check(read(cpath(d, SLOW_MODULE, "v1.0.0", kind)) == want, "%s not cached" % path)
    check(waiting_before, "every slow file was answered before the other misses started: nothing was tested")
    stalled = shim_stalls(d)
    check(all("slowdisk" in s for s in stalled), "the shim delayed other files: %s" % stalled)
    for (path, want, kind), x in zip(fast, res):
        check(isinstance(x, tuple), "%s: %r" % (path, x))
        expect_ok(x[0], want, kind, "miss " + path)
        check(x[1] < FAST_BOUND, "miss %s took %.2fs while other files' fsyncs were %dms slow (bound %.0fs)"
              % (path, x[1], FSYNC_MS, FAST_BOUND))
    stop_one(d)
    check(not tmp_leftovers(d.cache_dir), "temp files left: %s" % tmp_leftovers(d.cache_dir))


def test_daemons_exited_cleanly():
    """Every daemon this suite stopped with SIGTERM exited 0 (under the
    sanitizers a leak or error report makes the status non-zero)."""
    stop_all()
    note("%d daemons stopped with SIGTERM, all exited 0" % check_clean_exits(D.exits))


TESTS = [
    test_stalled_upstream_does_not_starve_other_misses,
    test_slow_sumdb_delays_only_files_waiting_for_it,
    test_cached_lookup_does_not_wait_for_slow_one,
    test_slow_fsync_delays_only_its_own_file,
    test_daemons_exited_cleanly,
]


def main(argv):
    return R.main(setup, TESTS, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

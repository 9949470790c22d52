#!/usr/bin/env python3
"""Soak test: many concurrent `go mod download`-style request streams through
goproxyd against a flaky fake upstream, for a while.  Not part of `make check`
(run it with `make soak` or directly).

Run:  python3 tests/soak/soak.py
Env:  SOAK_SECONDS=180   how long the clients run
      SOAK_CLIENTS=200   concurrent client streams (threads, keep-alive)
      SOAK_MODULES=150   generated modules (3 versions each)
      SOAK_SEED=1        seed of the generated data and of the clients
      SOAK_EVICT=1       delete a few cached zips every few seconds (as a
                         cache-pruning cron job would), so misses keep coming
      GOPROXYD=path      daemon binary (default ./build/goproxyd)
      KEEP_TMP=1         keep the temp dir (tree, cache, daemon log)

Each client loops: GET <m>/@v/list -> <v>.info -> <v>.mod -> <v>.zip (and now
and then a version that does not exist), checking every 200 body against the
upstream's bytes.  The fake upstream (tests/lib/fakeupstream.py, a separate
process) answers 500/503, stalls, cuts bodies and drops connections at low
random rates.  The report gives requests served, errors by kind, upstream
requests, and the daemon's VmRSS/VmHWM and open fds at the start, after a
warm-up, and at the end, and whether they grew.

Exit status 1 if a 200 body was wrong, the daemon died, or it did not exit 0
on SIGTERM; otherwise 0.  Only 127.0.0.1 is contacted; every loop is bounded.
"""

import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
LIB = os.path.join(os.path.dirname(HERE), "lib")
sys.path.insert(0, LIB)

import mkmodules  # noqa: E402
from harness import Daemon, wait_port  # noqa: E402

SECONDS = float(os.environ.get("SOAK_SECONDS", "180"))
CLIENTS = int(os.environ.get("SOAK_CLIENTS", "200"))
MODULES = int(os.environ.get("SOAK_MODULES", "150"))
SEED = int(os.environ.get("SOAK_SEED", "1"))
EVICT = os.environ.get("SOAK_EVICT", "1") != "0"
REQ_TIMEOUT = 30.0

# low-rate faults; the first matching rule whose coin comes up applies
# (the fake keys rules by regex, so each rule has a regex of its own)
FAULT_RULES = [
    {"path": r"\.zip$", "status": 500, "probability": 0.02},
    {"path": r"^/", "status": 503, "probability": 0.01},
    {"path": r"/@v/", "stall_before_headers": 4, "probability": 0.005},
    {"path": r"zip$", "stall_after_bytes": [512, 4], "probability": 0.005},
    {"path": r"[.]zip$", "cut_after_bytes": 300, "probability": 0.01},
    {"path": r".", "close": True, "probability": 0.005},
]


def log(msg):
    print(msg, flush=True)


# ------------------------------------------------------------------ data

def generate(root, rng):
    files = {}
    modules = []
    for i in range(MODULES):
        m = "example.com/soak/m%03d" % i
        if i % 10 == 3:
            m = "example.com/Soak/Mixed%03d" % i     # exercises '!' escaping
        versions = ["v1.0.%d" % j for j in range(3)]
        for v in versions:
            r = rng.random()
            size = 0 if r < 0.4 else rng.randint(1, 64) << 10 if r < 0.95 else rng.randint(256, 1024) << 10
            mod = mkmodules.gomod(m)
            src = {"x.go": ("package x\n\nconst V = %r\n" % v).encode().replace(b"'", b'"'), "go.mod": mod}
            stored = ()
            if size:
                src["data.bin"] = random.Random("%s@%s" % (m, v)).randbytes(size)
                stored = ("data.bin",)
            files[mkmodules.rel(m, v, "info")] = json.dumps({"Version": v, "Time": "2023-01-01T00:00:00Z"}).encode()
            files[mkmodules.rel(m, v, "mod")] = mod
            files[mkmodules.rel(m, v, "zip")] = mkmodules.module_zip(m, v, src, stored)
        files[mkmodules.rel(m, kind="list")] = "".join(v + "\n" for v in versions).encode()
        modules.append((m, versions))
    for relp, data in files.items():
        full = os.path.join(root, relp)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data)
    return files, modules


# ------------------------------------------------------------------ fake upstream (own process)

class Upstream:
    def __init__(self, root, workdir):
        self.portfile = os.path.join(workdir, "upstream.port")
        self.proc = subprocess.Popen([sys.executable, os.path.join(LIB, "fakeupstream.py"), root,
                                      "--port-file", self.portfile],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(workdir, "upstream.log"), "wb"),
                                     start_new_session=True)
        deadline = time.time() + 20
        while time.time() < deadline and not os.path.exists(self.portfile):
            time.sleep(0.05)
        with open(self.portfile) as f:
            self.port = int(f.read().strip())
        if not wait_port(self.port, self.proc, 10):
            raise RuntimeError("fake upstream did not start")
        self.url = "http://127.0.0.1:%d" % self.port

    def _call(self, method, path, body=None):
        req = urllib.request.Request(self.url + path, data=body, method=method)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"null")

    def rules(self, rules):
        return self._call("POST", "/_control", json.dumps(rules).encode())

    def stats(self):
        return self._call("GET", "/_stats")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


# ------------------------------------------------------------------ daemon probes

def proc_status(pid):
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "Threads"):
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    try:
        out["fds"] = len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        out["fds"] = -1
    return out


def asan(pid):
    try:
        with open("/proc/%d/maps" % pid) as f:
            return "libasan" in f.read()
    except OSError:
        return False


def fmt_probe(s):
    return "VmRSS %s KiB, VmHWM %s KiB, fds %s, threads %s" % (s.get("VmRSS"), s.get("VmHWM"), s.get("fds"),
                                                               s.get("Threads"))


# ------------------------------------------------------------------ clients

class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.kinds = {}
        self.served = 0
        self.bytes = 0
        self.mismatches = []

    def add(self, kind, nbytes=0, served=True):
        with self.lock:
            self.kinds[kind] = self.kinds.get(kind, 0) + 1
            if served:
                self.served += 1
            self.bytes += nbytes


def client(idx, port, files, modules, deadline, stats):
    rng = random.Random(SEED * 100003 + idx)
    conn = None

    def fetch(path):
        nonlocal conn
        for attempt in range(2):
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQ_TIMEOUT)
            try:
                conn.request("GET", path)
                r = conn.getresponse()
                body = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
                return r.status, body, r.getheader("X-Goproxyd-Cache", "")
            except TimeoutError:
                conn.close()
                conn = None
                stats.add("client timeout (%ds)" % REQ_TIMEOUT, served=False)
                return None, None, None
            except (http.client.HTTPException, OSError) as e:
                conn.close()
                conn = None
                if attempt == 1:
                    stats.add("connection error: %s" % type(e).__name__, served=False)
                    return None, None, None
                # a kept-alive connection the server closed: retry once on a new one
        return None, None, None

    def check(path, want, expect_missing=False):
        st, body, xc = fetch(path)
        if st is None:
            return False
        if st == 200:
            if expect_missing:
                stats.add("200 for a missing version", len(body))
                with stats.lock:
                    stats.mismatches.append("%s: 200 for a version that does not exist" % path)
                return False
            if body != want:
                stats.add("200 with WRONG BODY", len(body))
                with stats.lock:
                    stats.mismatches.append("%s: %d bytes, want %d" % (path, len(body), len(want)))
                return False
            stats.add("200 " + (xc or "?"), len(body))
            return True
        text = body[:200].decode("utf-8", "replace")
        if st == 404 and text.startswith("upstream error"):
            stats.add("404 upstream error (injected fault)")
        elif st == 404 and text.startswith("not found"):
            stats.add("404 not found" + ("" if expect_missing else " (UNEXPECTED)"))
        else:
            stats.add("status %d: %s" % (st, text.strip()[:60]))
        return False

    n = 0
    while time.time() < deadline and n < 10_000_000:
        n += 1
        m, versions = modules[rng.randrange(len(modules))]
        if rng.random() < 0.03:
            check("/" + mkmodules.rel(m, "v9.%d.0" % rng.randrange(5), "info"), None, expect_missing=True)
            continue
        if not check("/" + mkmodules.rel(m, kind="list"), files[mkmodules.rel(m, kind="list")]):
            continue
        v = versions[rng.randrange(len(versions))]
        for kind in ("info", "mod", "zip"):
            if time.time() >= deadline:
                break
            relp = mkmodules.rel(m, v, kind)
            if not check("/" + relp, files[relp]):
                break
    if conn is not None:
        conn.close()


def evictor(cache, deadline, stop, rng, counter):
    while not stop.wait(3.0) and time.time() < deadline:
        zips = []
        for d, _, names in os.walk(cache):
            zips += [os.path.join(d, n) for n in names if n.endswith(".zip") and not n.startswith(".")]
            if len(zips) > 5000:
                break
        for f in rng.sample(zips, min(len(zips), 15)):
            try:
                os.unlink(f)
                counter[0] += 1
            except OSError:
                pass


# ------------------------------------------------------------------ main

def main():
    tmp = tempfile.mkdtemp(prefix="goproxyd-soak-")
    rng = random.Random(SEED)
    up = d = None
    rc = 0
    try:
        t0 = time.time()
        files, modules = generate(os.path.join(tmp, "tree"), rng)
        log("soak: %d modules, %d files (%.1f MiB) generated in %.1fs; %d clients for %.0fs; seed %d"
            % (len(modules), len(files), sum(map(len, files.values())) / 1048576.0, time.time() - t0,
               CLIENTS, SECONDS, SEED))
        up = Upstream(os.path.join(tmp, "tree"), tmp)
        up.rules(FAULT_RULES)
        cache = os.path.join(tmp, "cache")
        d = Daemon(cache, up.url, ["-cacheExpire", "5s", "-negativeCacheExpire", "2s", "-stallTimeout", "2s",
                                   "-shutdownTimeout", "10s"], workdir=tmp)
        d.start()
        pid = d.proc.pid
        log("daemon %s pid %d on port %d, upstream %s" % (d.binary, pid, d.port, up.url))
        probe_start = proc_status(pid)
        log("start:   " + fmt_probe(probe_start))
        stats = Stats()
        deadline = time.time() + SECONDS
        stop = threading.Event()
        evicted = [0]
        ths = [threading.Thread(target=client, args=(i, d.port, files, modules, deadline, stats), daemon=True)
               for i in range(CLIENTS)]
        if EVICT:
            ths.append(threading.Thread(target=evictor, args=(cache, deadline, stop, random.Random(SEED), evicted),
                                        daemon=True))
        for t in ths:
            t.start()
        warm_at = time.time() + min(20.0, SECONDS * 0.2)
        probe_warm = None
        timeline = []
        last = 0
        while time.time() < deadline and d.alive():
            time.sleep(1.0)
            now = time.time()
            if probe_warm is None and now >= warm_at:
                probe_warm = proc_status(pid)
                log("warm:    " + fmt_probe(probe_warm))
            if now - last >= max(10.0, SECONDS / 12):
                last = now
                s = proc_status(pid)
                timeline.append(s)
                with stats.lock:
                    served = stats.served
                log("  t=%4.0fs served %7d  %s" % (SECONDS - (deadline - now), served, fmt_probe(s)))
        stop.set()
        for t in ths:
            t.join(max(1.0, deadline + REQ_TIMEOUT + 15 - time.time()))
        stuck = sum(1 for t in ths if t.is_alive())
        alive = d.alive()
        time.sleep(2.0)      # let the daemon close what the clients closed
        probe_end = proc_status(pid) if alive else {}
        log("end:     " + fmt_probe(probe_end))
        if probe_warm is None:
            probe_warm = probe_start
        ustats = up.stats()
        el = SECONDS
        log("")
        log("requests served: %d (%.0f/s), %.1f MiB of bodies; zips evicted from the cache: %d"
            % (stats.served, stats.served / el, stats.bytes / 1048576.0, evicted[0]))
        log("outcomes:")
        for k, v in sorted(stats.kinds.items(), key=lambda kv: -kv[1]):
            log("  %8d  %s" % (v, k))
        log("upstream requests: %d (%d distinct paths)" % (sum(ustats.values()), len(ustats)))
        # memory: the last sample under load against the one after warm-up;
        # fds: idle at the end against idle at the start, allowing for the
        # idle upstream connections libcurl keeps (fetch.c: IDLE_CONNS, 64)
        loaded = timeline[-1] if timeline else probe_warm
        for key in ("VmRSS", "VmHWM"):
            a, b, c, e = (probe_start.get(key), probe_warm.get(key), loaded.get(key), probe_end.get(key))
            if None in (a, b, c, e):
                continue
            grew = "GREW" if c > b * 1.25 + 4096 else "did not grow"
            log("%-6s KiB: start %s, after warm-up %s, last under load %s, end %s: %s"
                % (key, a, b, c, e, grew))
        if asan(pid):
            log("(the daemon runs under AddressSanitizer: its quarantine holds up to 256 MiB of freed "
                "memory, so RSS growth here is expected; leaks show as a non-zero exit below)")
        a, b, c, e = (probe_start.get("fds"), probe_warm.get("fds"), loaded.get("fds"), probe_end.get("fds"))
        if None not in (a, e):
            grew = "GREW" if e > a + 64 + 8 else "did not grow"
            log("fds: start %s (idle), after warm-up %s, last under load %s, end %s (idle): %s"
                % (a, b, c, e, grew))
        if stuck:
            log("client threads still stuck after the deadline: %d" % stuck)
            rc = 1
        if stats.mismatches:
            log("WRONG BODIES: %d, e.g. %s" % (len(stats.mismatches), stats.mismatches[:5]))
            rc = 1
        if not alive:
            log("DAEMON DIED: %s" % d.log_tail(800))
            rc = 1
        else:
            t1 = time.time()
            st = d.stop(timeout=30)
            log("daemon exit status after SIGTERM: %s (%.1fs)" % (st, time.time() - t1))
            if st != 0:
                log("daemon log tail: %s" % d.log_tail(800))
                rc = 1
        log_path = d.log_path
        d = None
        with open(log_path, "rb") as f:
            dlog = f.read().decode("utf-8", "replace")
        bad = [ln for ln in dlog.splitlines() if "ERROR: AddressSanitizer" in ln or "runtime error:" in ln
               or "LeakSanitizer" in ln]
        if bad:
            log("SANITIZER REPORTS in the daemon log: %s" % bad[:3])
            rc = 1
        log("daemon log: %d lines, %d warn, %d error" % (dlog.count("\n"), dlog.count(" warn "),
                                                          dlog.count(" error ")))
        log("soak %s" % ("PASSED" if rc == 0 else "FAILED"))
    finally:
        if d is not None:
            d.stop(timeout=15)
        if up is not None:
            up.stop()
        if os.environ.get("KEEP_TMP"):
            log("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())

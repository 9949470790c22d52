#!/usr/bin/env python3
"""goproxyd benchmark: every figure is a ratio against a reference measured
in the same run, alternating the two sides round after round.

Run through tests/bench/run.sh (`make bench`), which installs the tools and
owns the temp dir.  Settings (environment):

  BENCH_QUICK=1        2 rounds, 1 s wrk runs, no profile (a smoke run)
  BENCH_ROUNDS=N       rounds for every workload (default 5)
  BENCH_DURATION=S     seconds per wrk run (default 3)
  BENCH_CONNS=1,32,256 wrk connection counts
  BENCH_THREADS=2      goproxyd -threads and nginx worker_processes
  BENCH_MODULES=50     modules in the cold-miss graph (workload 5)
  BENCH_FAR_MS=100     upstream delay of workload 5's far variant (5b: every
                       answer that late; goproxyd with and without -warm)
  BENCH_ONLY=LIST      run only these phases (hits,graph,far,offline,huge); a partial
                       run prints its tables and results.json but writes no docs
  BENCH_HUGE_MIB=100   size of the cold zip (workload 6)
  BENCH_CLIENTS=100    concurrent clients for workload 6
  BENCH_PROFILE=0|1    perf stat/record pass on hits (default 1, quick 0)
  BENCH_DELAY_MS=100   upstream delay of the offline workload (offline.py)
  BENCH_MAX_SECONDS=N  hard budget: later rounds are skipped past it (1500)
  BENCH_DOCS=DIR       where benchmarks.md/.png go (default docs/)
  GOPROXYD=PATH        the binary (default ./goproxyd)

Writes DOCS/benchmarks.md (tables, targets, setup, the interpretation kept in
tests/bench/limits.md) and DOCS/benchmarks.png, prints the tables, and leaves
the raw results.json in the temp dir (kept with BENCH_KEEP=1).
`bench.py --render results.json` rewrites the docs from such a file without
measuring again (e.g. after editing limits.md).

Everything listens on 127.0.0.1 only.  Every loop is bounded in count and
every wait in time; all processes started here are stopped at the end.
"""

import datetime
import http.client
import json
import os
import re
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import offline  # noqa: E402  (the offline workload, issue #17)
ROOT = os.path.dirname(os.path.dirname(HERE))
MIB = 1024 * 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")


def env_int(name, default):
    v = os.environ.get(name, "")
    return int(v) if v.strip() else default


QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
ROUNDS = env_int("BENCH_ROUNDS", 2 if QUICK else 5)
DURATION = env_int("BENCH_DURATION", 1 if QUICK else 3)
CONNS = [int(c) for c in os.environ.get("BENCH_CONNS", "1,32,256").split(",") if c.strip()]
THREADS = env_int("BENCH_THREADS", 2)
MODULES = env_int("BENCH_MODULES", 50)
FAR_MS = env_int("BENCH_FAR_MS", 100)
ONLY = [x.strip() for x in os.environ.get("BENCH_ONLY", "").split(",") if x.strip()]
HUGE_MIB = env_int("BENCH_HUGE_MIB", 100)
CLIENTS = env_int("BENCH_CLIENTS", 100)
PROFILE = env_int("BENCH_PROFILE", 0 if QUICK else 1)
MAX_SECONDS = env_int("BENCH_MAX_SECONDS", 1500)
DOCS = os.environ.get("BENCH_DOCS") or os.path.join(ROOT, "docs")
GOPROXYD = os.path.abspath(os.environ.get("GOPROXYD") or os.path.join(ROOT, "goproxyd"))

# (key, label, mkgraph file key)
HIT_WORKLOADS = [
    ("info", "1 .info", "info"),
    ("small", "2 zip 20 KiB", "small"),
    ("large", "3 zip 8 MiB", "large"),
    ("list", "4 @v/list", "list"),
]

T0 = time.monotonic()
COMMANDS = []          # (what, command line) for the report


def log(msg):
    sys.stderr.write("[bench %6.1fs] %s\n" % (time.monotonic() - T0, msg))
    sys.stderr.flush()


def over_budget():
    return time.monotonic() - T0 > MAX_SECONDS


def note_cmd(what, argv):
    line = " ".join(argv) if isinstance(argv, (list, tuple)) else argv
    if (what, line) not in COMMANDS:
        COMMANDS.append((what, line))


# ------------------------------------------------------------------ /proc

def proc_status(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])   # kB
    except OSError:
        pass
    return 0


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])   # utime, stime
        except OSError:
            pass
    return total / CLK_TCK


def pss_kib(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def task_ticks(pids):
    """{(pid, tid): utime+stime ticks} for every thread of pids."""
    out = {}
    for pid in pids:
        try:
            tids = os.listdir("/proc/%d/task" % pid)
        except OSError:
            continue
        for tid in tids:
            try:
                with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                out[(pid, tid)] = int(fields[11]) + int(fields[12])
            except OSError:
                pass
    return out


def busiest_share(before, after):
    """Share of the CPU time spent by the busiest thread/process (0.5 = two
    serving threads evenly loaded, 1.0 = one did everything)."""
    d = [after[k] - before.get(k, 0) for k in after]
    return max(d) / sum(d) if d and sum(d) > 0 else float("nan")


def sys_cpu():
    """(busy, steal) CPU seconds of the whole machine so far, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = v
    return (user + nice + system + irq + softirq) / CLK_TCK, steal / CLK_TCK


def own_cpu():
    """CPU seconds of this process and of its children that have been waited for."""
    a = resource.getrusage(resource.RUSAGE_SELF)
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def tcp_out_segs():
    with open("/proc/net/snmp") as f:
        rows = [l.split() for l in f if l.startswith("Tcp:")]
    return int(rows[1][rows[0].index("OutSegs")])


def children(ppid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == ppid:
                out.append(int(d))
        except (OSError, IndexError, ValueError):
            pass
    return out


class Sampler:
    """Samples the summed memory of the processes in pids every interval
    seconds: VmRSS, or Pss (proportional: shared pages split between
    processes) with pss=True.

    pids is a list the caller resolves once, before the measured run, for
    either server.  It used to be a function called at every sample, which
    for nginx meant finding the workers by reading every /proc/N/stat on the
    machine 20 times a second: 0.2 CPU s of this process per 3 s run during
    nginx's runs against 0.03 s during goproxyd's, and ≈15% fewer nginx
    requests/s in an A/B on the same running nginx (see limits.md)."""

    def __init__(self, pids, interval=0.05, pss=False):
        self.pids = list(pids)
        self.measure = pss_kib if pss else (lambda p: proc_status(p, "VmRSS"))
        self.interval = interval
        self.peak_kib = 0
        self.samples = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _sample(self):
        kib = sum(self.measure(p) for p in self.pids)
        self.peak_kib = max(self.peak_kib, kib)
        self.samples += 1

    def _run(self):
        self._sample()
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(5)
        self._sample()


# ------------------------------------------------------------------ processes

class Proc:
    live = []

    def __init__(self, name, argv, logfile, env=None, cwd=None):
        self.name = name
        self.argv = argv
        self.logf = open(logfile, "ab")
        self.p = subprocess.Popen(argv, stdout=self.logf, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, env=env, cwd=cwd)
        self.pid = self.p.pid
        Proc.live.append(self)

    def alive(self):
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self in Proc.live:
            Proc.live.remove(self)
        if self.p.poll() is None:
            kids = children(self.pid)
            try:
                self.p.send_signal(sig)
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                log("%s (pid %d) did not stop in %ds: SIGKILL" % (self.name, self.pid, timeout))
                for k in kids:
                    try:
                        os.kill(k, signal.SIGKILL)
                    except OSError:
                        pass
                self.p.kill()
                self.p.wait(5)
        self.logf.close()

    @classmethod
    def stop_all(cls):
        for p in list(reversed(cls.live)):
            try:
                p.stop()
            except Exception as e:   # keep stopping the others
                log("stopping %s: %s" % (p.name, e))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError("%s exited (status %s) before listening; see its log"
                               % (proc.name, proc.p.returncode))
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on 127.0.0.1:%d after %ds" % (port, timeout))


def http_get(port, path, method="GET", timeout=60):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path)
        r = c.getresponse()
        body = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body
    finally:
        c.close()


BIN = GOPROXYD          # replaced by a private copy in main()
BIN_FLAGS = []          # e.g. -sumdb off, when this build has the flag


def goproxyd_flags(binary):
    """Flags that keep goproxyd on loopback whatever its defaults: a build
    that proxies checksum databases would otherwise contact sum.golang.org."""
    out = subprocess.run([binary, "-h"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         timeout=10).stdout.decode("utf-8", "replace")
    flags = []
    if re.search(r"^\s*-sumdb\b", out, re.M):
        flags += ["-sumdb", "off"]
    return flags


def start_goproxyd(tmp, name, cache, upstream_port, extra=()):
    port = free_port()
    argv = [BIN, "-listen", "127.0.0.1:%d" % port, "-cacheDir", cache,
            "-proxy", "http://127.0.0.1:%d" % upstream_port, "-threads", str(THREADS)] \
        + BIN_FLAGS + list(extra)
    line = " ".join(argv).replace(tmp, "$TMP")
    line = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", line)
    note_cmd("goproxyd (%s)" % name, re.sub(r"(graph-cache-)\d+", r"\1N", line))
    p = Proc("goproxyd-" + name, argv, os.path.join(tmp, "goproxyd-%s.log" % name))
    wait_port(port, p)
    p.port = port
    return p


# ------------------------------------------------------------------ nginx

NGINX_MAIN = """\
daemon off;
master_process on;
worker_processes {threads};
user root;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{
    worker_connections 4096;
    use epoll;
}}
http {{
    access_log off;
    tcp_nodelay on;
    keepalive_timeout 65;
    client_body_temp_path {dir}/body;
{http}}}
"""

# workloads 1-4 and 6: static files with sendfile
NGINX_STATIC = """\
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    types {{
        application/json info;
        application/zip zip;
        text/plain mod;
    }}
    default_type text/plain;
    # workloads 1-4: the very cache directory goproxyd serves
    server {{
        listen 127.0.0.1:{port};
        root {cache};
    }}
    # workload 6 reference: the upstream tree, holding the 100 MiB zip
    server {{
        listen 127.0.0.1:{port2};
        root {updir};
    }}
"""

# workload 5 reference: nginx as a plain reverse proxy of the fake upstream
# (no cache, no disk): what one extra HTTP hop costs on this machine.
NGINX_PROXY = """\
    proxy_temp_path {dir}/proxy;
    upstream fake {{
        server 127.0.0.1:{upstream};
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://fake;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
"""


def launch_nginx(tmp, name, what, http, **fmt):
    """Writes tmp/NAME/nginx.conf (NGINX_MAIN around http) and starts it."""
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    conf = NGINX_MAIN.format(threads=THREADS, dir=d, http=http.format(dir=d, **fmt))
    cpath = os.path.join(d, "nginx.conf")
    with open(cpath, "w") as f:
        f.write(conf)
    argv = ["nginx", "-p", d, "-e", os.path.join(d, "error.log"), "-c", cpath]
    note_cmd(what, [a.replace(tmp, "$TMP") for a in argv])
    p = Proc(name, argv, os.path.join(d, "stdout.log"))
    p.conf = conf.replace(tmp, "$TMP")
    return p


def start_nginx_proxy(tmp, upstream_port):
    port = free_port()
    p = launch_nginx(tmp, "nginx-proxy", "nginx pass-through proxy (workload 5 reference)",
                     NGINX_PROXY, port=port, upstream=upstream_port)
    wait_port(port, p)
    p.port = port
    return p


def start_nginx(tmp, cache, updir):
    port, port2 = free_port(), free_port()
    p = launch_nginx(tmp, "nginx", "nginx", NGINX_STATIC, port=port, port2=port2,
                     cache=cache, updir=updir)
    wait_port(port, p)
    wait_port(port2, p)
    deadline = time.monotonic() + 10
    while len(children(p.pid)) < THREADS and time.monotonic() < deadline:
        time.sleep(0.05)
    p.port, p.port2 = port, port2
    return p


def nginx_pids(p):
    return [p.pid] + children(p.pid)


# ------------------------------------------------------------------ wrk

def run_wrk(port, path, conns, duration, prefix=()):
    threads = min(2, conns)
    argv = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % duration, "--timeout", "10s",
            "-s", os.path.join(HERE, "report.lua"), "http://127.0.0.1:%d%s" % (port, path)]
    if not prefix:
        note_cmd("wrk", "wrk -tT -cC -d%ds --timeout 10s -s tests/bench/report.lua "
                 "http://127.0.0.1:PORT/<path>   (C = %s; T = 1 for C = 1, else 2)"
                 % (duration, ", ".join(map(str, CONNS))))
    p = subprocess.run(list(prefix) + argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=duration + 60)
    out = p.stdout.decode("utf-8", "replace")
    m = re.search(r"^WRKJSON (\{.*\})$", out, re.M)
    if p.returncode != 0 or not m:
        raise RuntimeError("wrk failed (%d):\n%s" % (p.returncode, out))
    r = json.loads(m.group(1))
    secs = r["duration_us"] / 1e6
    r["rps"] = r["requests"] / secs
    r["bps"] = r["bytes"] / secs
    r["errors"] = sum(r[k] for k in r if k.startswith("err_"))
    return r


# ------------------------------------------------------------------ workload 6 client

def multi_get(port, path, n, timeout=300):
    """n concurrent GETs of path over n fresh connections, all sent at once.
    Returns {ttlb: time until every body was complete, ttfb_median, ok,
    statuses, bytes} (seconds from sending the requests)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), 10)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            socks.append(s)
        req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % path).encode()
        sel = selectors.DefaultSelector()
        st = {}
        for s in socks:
            s.setblocking(False)
            st[s] = {"hdr": b"", "status": None, "clen": None, "got": 0, "first": None, "last": None}
            sel.register(s, selectors.EVENT_READ)
        buf = bytearray(1 << 20)
        t0 = time.monotonic()
        for s in socks:
            s.sendall(req)
        pending = len(socks)
        deadline = t0 + timeout
        while pending and time.monotonic() < deadline:
            for key, _ in sel.select(1.0):
                s = key.fileobj
                x = st[s]
                try:
                    k = s.recv_into(buf)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    k = 0
                now = time.monotonic()
                if x["first"] is None and k:
                    x["first"] = now - t0
                done = k == 0
                if k and x["status"] is None:
                    x["hdr"] += bytes(buf[:k])
                    i = x["hdr"].find(b"\r\n\r\n")
                    if i >= 0:
                        head = x["hdr"][:i].decode("latin-1").split("\r\n")
                        x["status"] = int(head[0].split()[1])
                        for h in head[1:]:
                            name, _, val = h.partition(":")
                            if name.strip().lower() == "content-length":
                                x["clen"] = int(val)
                        x["got"] = len(x["hdr"]) - i - 4
                        x["hdr"] = b""
                elif k:
                    x["got"] += k
                if x["clen"] is not None and x["got"] >= x["clen"]:
                    done = True
                if done:
                    x["last"] = now - t0
                    sel.unregister(s)
                    pending -= 1
        sel.close()
        vals = list(st.values())
        complete = [v for v in vals if v["status"] == 200 and v["clen"] is not None
                    and v["got"] == v["clen"]]
        return {
            "ok": len(complete),
            "n": n,
            "ttlb": max(v["last"] for v in vals) if not pending else None,
            "ttfb_median": statistics.median(v["first"] for v in vals if v["first"] is not None)
            if any(v["first"] is not None for v in vals) else None,
            "statuses": sorted({v["status"] for v in vals}, key=str),
            "bytes": sum(v["got"] for v in vals),
        }
    finally:
        for s in socks:
            s.close()


# ------------------------------------------------------------------ upstream

def upstream_reset(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("POST", "/_reset", body=b"")
    c.getresponse().read()
    c.close()


def upstream_stats(port):
    st, _, body = http_get(port, "/_stats")
    assert st == 200
    return json.loads(body)


# ------------------------------------------------------------------ go

def go_env(tmp, tag, goproxy):
    base = os.path.join(tmp, "go-" + tag)
    if os.path.exists(base):
        shutil.rmtree(base)
    os.makedirs(os.path.join(base, "home"))
    env = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "TMPDIR") if k in os.environ}
    env.update({
        "HOME": os.path.join(base, "home"),
        "GOPATH": os.path.join(base, "gopath"),
        "GOMODCACHE": os.path.join(base, "gomodcache"),
        "GOCACHE": os.path.join(base, "gocache"),
        "GOENV": "off",
        "GOPROXY": goproxy,
        "GOSUMDB": "off",
        "GOFLAGS": "-mod=mod -modcacherw",
        "GONOPROXY": "", "GONOSUMDB": "", "GOPRIVATE": "",
        "GO111MODULE": "on",
        "GOTOOLCHAIN": "local",
        "GOTELEMETRY": "off",
        "CGO_ENABLED": "0",
    })
    return base, env


def go_download(tmp, tag, appdir, goproxy, keep=False):
    """Times `go mod download` in a fresh GOMODCACHE (tmp/go-TAG), removed
    afterwards unless keep is set."""
    base, env = go_env(tmp, tag, goproxy)
    app = os.path.join(base, "app")
    shutil.copytree(appdir, app)
    argv = ["go", "mod", "download"]
    note_cmd("go (workload 5)", "cd app && env GOPROXY=%s GOMODCACHE=<fresh> GOSUMDB=off "
             "GOFLAGS='-mod=mod -modcacherw' GOPATH=<fresh> GOCACHE=<fresh> %s"
             % (re.sub(r":\d+", ":PORT", goproxy), " ".join(argv)))
    t = time.monotonic()
    p = subprocess.run(argv, cwd=app, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=300)
    wall = time.monotonic() - t
    if p.returncode != 0:
        raise RuntimeError("go mod download via %s failed:\n%s" % (goproxy, p.stdout.decode()[-3000:]))
    dl = os.path.join(env["GOMODCACHE"], "cache", "download")
    files = set()
    for d, _, fs in os.walk(dl):
        for f in fs:
            if f.endswith((".zip", ".mod", ".info")) or f == "list":
                files.add(os.path.relpath(os.path.join(d, f), dl))
    if not keep:
        shutil.rmtree(base, ignore_errors=True)
    return wall, files


# ------------------------------------------------------------------ stats helpers

def med(xs):
    return statistics.median(xs) if xs else float("nan")


def spread(xs, fmt="%.2f"):
    if not xs:
        return "n/a"
    return (fmt + " (" + fmt + "–" + fmt + ")") % (med(xs), min(xs), max(xs))


def mib(kib):
    return kib / 1024.0


# ------------------------------------------------------------------ phases

def hit_run(side, start, path, conns):
    """One wrk run against a freshly started server; returns wrk's figures plus
    CPU, thread balance, TCP segments, memory, and the CPU that processes
    outside this benchmark used meanwhile."""
    busy0, steal0 = sys_cpu()
    own0 = own_cpu()
    srv = start()
    try:
        time.sleep(0.2)
        # resolved once: nothing scans /proc while wrk runs (see Sampler)
        pids = [srv.pid] if side == "goproxyd" else nginx_pids(srv)
        idle = sum(proc_status(p, "VmRSS") for p in pids)
        cpu0, ticks0, segs0 = cpu_seconds(pids), task_ticks(pids), tcp_out_segs()
        with Sampler(pids, pss=side == "nginx") as smp:
            out = run_wrk(srv.port, path, conns, DURATION)
        out["cpu_s"] = cpu_seconds(pids) - cpu0
        out["busiest"] = busiest_share(ticks0, task_ticks(pids))
        if side == "nginx" and sorted(nginx_pids(srv)) != sorted(pids):
            log("nginx's processes changed during the run (a worker died?): its CPU figures are off")
        out["segs_per_req"] = (tcp_out_segs() - segs0) / max(out["requests"], 1)
        out["rss_idle_kib"] = idle
        out["rss_peak_kib"] = smp.peak_kib
        if side == "goproxyd":
            out["hwm_kib"] = proc_status(srv.pid, "VmHWM")
            out["rss_peak_kib"] = max(out["rss_peak_kib"], out["hwm_kib"])
    finally:
        srv.stop()
    # the server is stopped and reaped by now, so its CPU time is in RUSAGE_CHILDREN
    busy1, steal1 = sys_cpu()
    out["foreign_cpu_s"] = max(0.0, (busy1 - busy0) - (own_cpu() - own0))
    out["steal_s"] = steal1 - steal0
    return out


FOREIGN_LIMIT = 0.1     # share of a run's length that other processes may use
PAIR_TRIES = 3          # a disturbed goproxyd/nginx pair is measured again, at most this often


def phase_hits(files, res, start_g, start_n):
    """Each wrk run gets a freshly started server (same cache directory, warm
    page cache), so its peak memory is that load's and no earlier one's.  A
    pair during which other processes on the machine used more than
    FOREIGN_LIMIT of the run's length in CPU is discarded and measured again
    (both sides, at most PAIR_TRIES times; the last try is kept regardless)."""
    cells = [(w, c) for w, _, _ in HIT_WORKLOADS for c in CONNS]
    res.setdefault("discarded_pairs", [])
    for r in range(ROUNDS):
        if over_budget():
            log("time budget spent: skipping hit round %d" % (r + 1))
            res["skipped"].append("hit rounds %d..%d" % (r + 1, ROUNDS))
            break
        for w, c in cells:
            path = files[w]["path"]
            for attempt in range(PAIR_TRIES):
                a = hit_run("goproxyd", start_g, path, c)
                b = hit_run("nginx", start_n, path, c)
                foreign = max(a["foreign_cpu_s"], b["foreign_cpu_s"])
                if foreign <= FOREIGN_LIMIT * DURATION or attempt == PAIR_TRIES - 1 or over_budget():
                    break
                log("round %d %s c=%d: other processes used %.1f CPU s during the pair: measuring again"
                    % (r + 1, w, c, foreign))
                res["discarded_pairs"].append({"cell": "%s/%d" % (w, c), "round": r + 1,
                                               "foreign_cpu_s": foreign,
                                               "ratio": a["rps"] / b["rps"]})
            res["hits"].setdefault("%s/%d/goproxyd" % (w, c), []).append(a)
            res["hits"].setdefault("%s/%d/nginx" % (w, c), []).append(b)
            log("round %d %-5s c=%-3d goproxyd %9.0f req/s  nginx %9.0f req/s  ratio %.2f  "
                "goproxyd RSS %.1f MiB" % (r + 1, w, c, a["rps"], b["rps"], a["rps"] / b["rps"],
                                           mib(a["rss_peak_kib"])))


def phase_profile(tmp, g, ngx, files, res):
    """perf stat (syscalls per request) and perf record (flat profile) for
    both servers under workload 1 and 3 at 32 connections."""
    trace = "/sys/kernel/tracing/events/syscalls"
    if not os.path.isdir(trace):
        trace = "/sys/kernel/debug/tracing/events/syscalls"
    names = ["read", "recvfrom", "write", "writev", "sendto", "sendmsg", "sendfile64",
             "openat", "close", "newfstat", "newfstatat", "statx", "fcntl", "ioctl",
             "epoll_wait", "epoll_pwait", "epoll_ctl", "poll", "accept4", "setsockopt",
             "getsockopt", "shutdown", "futex", "lseek", "pread64", "mmap", "munmap",
             "brk", "madvise", "mprotect"]
    events = ["raw_syscalls:sys_enter"] + ["syscalls:sys_enter_" + n for n in names
                                           if os.path.isdir(os.path.join(trace, "sys_enter_" + n))]
    dur = max(DURATION, 3)
    for w in ("info", "large"):
        path = files[w]["path"]
        for side in ("goproxyd", "nginx"):
            port = g.port if side == "goproxyd" else ngx.port
            pids = [g.pid] if side == "goproxyd" else nginx_pids(ngx)
            key = "%s/%s" % (w, side)
            # syscall counts over one wrk run
            sf = os.path.join(tmp, "perfstat-%s-%s.txt" % (w, side))
            pre = ["perf", "stat", "-x,", "-o", sf, "-e", ",".join(events),
                   "-p", ",".join(map(str, pids)), "--"]
            try:
                out = run_wrk(port, path, 32, dur, prefix=pre)
                counts = {}
                with open(sf) as f:
                    for line in f:
                        parts = line.strip().split(",")
                        if len(parts) > 3 and parts[0].replace(".", "").isdigit():
                            counts[parts[2].split(":")[-1].replace("sys_enter_", "")] = float(parts[0])
                res["profile"].setdefault(key, {})["syscalls"] = {
                    k: v / out["requests"] for k, v in counts.items() if v}
                res["profile"][key]["requests"] = out["requests"]
                note_cmd("perf stat", "perf stat -x, -e raw_syscalls:sys_enter,syscalls:sys_enter_<name>,... "
                         "-p <server pids> -- wrk -t2 -c32 -d%ds ...  (counts / requests)" % dur)
            except Exception as e:
                log("perf stat failed: %s" % e)
                res["profile"].setdefault(key, {})["error"] = str(e)[:500]
            # flat CPU profile
            df = os.path.join(tmp, "perf-%s-%s.data" % (w, side))
            pre = ["perf", "record", "-F", "1999", "-o", df, "-p", ",".join(map(str, pids)), "--"]
            try:
                run_wrk(port, path, 32, dur, prefix=pre)
                rep = {}
                for sort in ("dso", "dso,sym"):
                    p = subprocess.run(["perf", "report", "-i", df, "--stdio", "--no-children",
                                        "--sort", sort, "--percent-limit", "1"],
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=120)
                    lines = [l.rstrip() for l in p.stdout.decode("utf-8", "replace").splitlines()
                             if l.strip() and not l.startswith("#")]
                    rep[sort] = lines[:25]
                res["profile"][key]["perf"] = rep
                note_cmd("perf record", "perf record -F 1999 -p <server pids> -- wrk -t2 -c32 -d%ds ...; "
                         "perf report --stdio --no-children --sort dso,sym" % dur)
            except Exception as e:
                log("perf record failed: %s" % e)
                res["profile"].setdefault(key, {})["perf_error"] = str(e)[:500]
        log("profiled %s" % w)


# Workload 5 creates thousands of files per round (caches, GOMODCACHEs).
# Its trees are removed only after the last round: on a journal-less ext4,
# creating a file skips every inode deleted in the last minute or more
# (ext4's recently_deleted()), one buffer lookup each, so deleting a round's
# trees before the next made file creation, on both sides, cost what the
# harness had just deleted (over half of goproxyd's CPU in a profile).
GRAPH_TREES = ("graph-cache-", "graph-store-", "go-warm", "go-via-", "go-direct-",
               "go-nginx-proxy-")


def durable_store(src, dst, threads):
    """Copies every file under src to dst the way a cache entry must be
    stored before a miss is answered (directories, temp file, write, fsync,
    rename; the directory's own fsync may follow the answer and is left out),
    from `threads` threads like the go command's parallel downloads.  Returns
    the wall time: what storing these files durably adds to a cold download
    through any proxy that answers only once the file is in its cache."""
    items = []
    for d, _, fs in os.walk(src):
        for f in fs:
            with open(os.path.join(d, f), "rb") as fh:
                items.append((os.path.relpath(os.path.join(d, f), src), fh.read()))
    todo, lock = iter(items), threading.Lock()

    def worker():
        while True:
            with lock:
                item = next(todo, None)
            if item is None:
                return
            final = os.path.join(dst, item[0])
            os.makedirs(os.path.dirname(final), exist_ok=True)
            tmpname = "%s.tmp-%d" % (final, threading.get_ident())
            fd = os.open(tmpname, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                view = memoryview(item[1])
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmpname, final)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    t = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return time.monotonic() - t


def phase_graph(tmp, up, appdir, res):
    log("workload 5: untimed warm-up go run (direct)")
    go_download(tmp, "warm", appdir, "http://127.0.0.1:%d" % up.port, keep=True)
    ngx = start_nginx_proxy(tmp, up.port)
    try:
        graph_rounds(tmp, up, ngx, appdir, res)
    finally:
        ngx.stop()
        for name in os.listdir(tmp):
            if name.startswith(GRAPH_TREES):
                shutil.rmtree(os.path.join(tmp, name), ignore_errors=True)


def graph_rounds(tmp, up, ngx, appdir, res):
    for r in range(ROUNDS):
        if over_budget():
            res["skipped"].append("graph rounds %d..%d" % (r + 1, ROUNDS))
            break
        cache = os.path.join(tmp, "graph-cache-%d" % r)
        g = start_goproxyd(tmp, "graph", cache, up.port)
        try:
            upstream_reset(up.port)
            with Sampler([g.pid]) as smp:
                wall_g, files_g = go_download(tmp, "via-%d" % r, appdir,
                                              "http://127.0.0.1:%d" % g.port, keep=True)
            stats_g = upstream_stats(up.port)
            hwm = proc_status(g.pid, "VmHWM")
            cpu_g = cpu_seconds([g.pid])
        finally:
            g.stop()
        upstream_reset(up.port)
        wall_d, files_d = go_download(tmp, "direct-%d" % r, appdir,
                                      "http://127.0.0.1:%d" % up.port, keep=True)
        stats_d = upstream_stats(up.port)
        wall_p, files_p = go_download(tmp, "nginx-proxy-%d" % r, appdir,
                                      "http://127.0.0.1:%d" % ngx.port, keep=True)
        # go downloads GOMAXPROCS modules at a time (cmd/go's download semaphore)
        store_threads = os.cpu_count() or 1
        wall_s = durable_store(cache, os.path.join(tmp, "graph-store-%d" % r), store_threads)
        res["graph"].append({
            "wall_goproxyd": wall_g, "wall_direct": wall_d, "wall_proxy": wall_p,
            "wall_store": wall_s, "store_threads": store_threads,
            "same_files_proxy": files_p == files_d, "cpu_goproxyd": cpu_g,
            "files_goproxyd": len(files_g), "files_direct": len(files_d),
            "same_files": files_g == files_d,
            "upstream_files": len(stats_g), "upstream_requests": sum(stats_g.values()),
            "max_per_file": max(stats_g.values()) if stats_g else 0,
            "direct_requests": sum(stats_d.values()),
            "rss_peak_kib": smp.peak_kib, "hwm_kib": hwm,
        })
        log("round %d graph: goproxyd %.2fs direct %.2fs ratio %.2f (nginx pass-through %.2f, "
            "+ durable store %.2f); upstream %d files, max %d req/file"
            % (r + 1, wall_g, wall_d, wall_g / wall_d, wall_p / wall_d, (wall_p + wall_s) / wall_d,
               len(stats_g), res["graph"][-1]["max_per_file"]))


def upstream_delay(port, ms):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("POST", "/_delay", body=str(ms).encode())
    r = c.getresponse()
    r.read()
    c.close()
    if r.status != 200:
        raise RuntimeError("upstream /_delay: status %d" % r.status)


def warm_metrics(port):
    """goproxyd's goproxyd_warm_* series, {name with labels: value}."""
    st, _, body = http_get(port, "/metrics")
    out = {}
    for line in body.decode("utf-8", "replace").splitlines() if st == 200 else []:
        if line.startswith("goproxyd_warm_"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def far_round(tmp, up, appdir, tag, r, extra):
    """One cold `go mod download` through a fresh goproxyd started with
    extra: (wall, files, upstream requests, warm metrics)."""
    cache = os.path.join(tmp, "graph-cache-far-%s-%d" % (tag, r))
    g = start_goproxyd(tmp, "far-" + tag, cache, up.port, extra)
    try:
        upstream_reset(up.port)
        wall, files = go_download(tmp, "via-far-%s-%d" % (tag, r), appdir,
                                  "http://127.0.0.1:%d" % g.port)
        time.sleep(0.2 + FAR_MS / 1000.0)   # warming still under way counts too
        reqs = sum(upstream_stats(up.port).values())
        wm = warm_metrics(g.port)
    finally:
        g.stop()
    shutil.rmtree(cache, ignore_errors=True)
    return wall, files, reqs, wm


def phase_graph_far(tmp, up, appdir, res):
    """Workload 5b: the cold graph with every upstream answer FAR_MS late,
    through goproxyd (default warming), goproxyd -warm 0, and direct."""
    log("workload 5b: upstream %d ms away" % FAR_MS)
    upstream_delay(up.port, FAR_MS)
    try:
        for r in range(ROUNDS):
            if over_budget():
                res["skipped"].append("far graph rounds %d..%d" % (r + 1, ROUNDS))
                break
            wall_w, files_w, req_w, wm = far_round(tmp, up, appdir, "warm", r, ())
            wall_0, files_0, req_0, _ = far_round(tmp, up, appdir, "nowarm", r, ("-warm", "0"))
            upstream_reset(up.port)
            wall_d, files_d = go_download(tmp, "direct-far-%d" % r, appdir,
                                          "http://127.0.0.1:%d" % up.port)
            req_d = sum(upstream_stats(up.port).values())
            res["graph_far"].append({
                "wall_warm": wall_w, "wall_nowarm": wall_0, "wall_direct": wall_d,
                "req_warm": req_w, "req_nowarm": req_0, "req_direct": req_d,
                "same_files": files_w == files_d and files_0 == files_d,
                "useful": wm.get('goproxyd_warm_files_total{use="useful"}', 0),
                "pending": wm.get("goproxyd_warm_pending", 0),
                "warm_fetches": sum(v for k, v in wm.items()
                                    if k.startswith("goproxyd_warm_fetches_total")),
            })
            log("round %d far graph: warm %.2fs (%.2f×), -warm 0 %.2fs (%.2f×), direct %.2fs; "
                "upstream requests %d / %d / %d" % (r + 1, wall_w, wall_w / wall_d, wall_0,
                                                    wall_0 / wall_d, wall_d, req_w, req_0, req_d))
    finally:
        upstream_delay(up.port, 0)


def far_table(res):
    gf = res.get("graph_far") or []
    out = ["### Workload 5b: the same cold graph, every upstream answer %d ms late\n" % FAR_MS]
    if not gf:
        out.append("(not run)\n")
        return out
    out.append("Each round: goproxyd with its default warming, goproxyd `-warm 0`, and direct, each "
               "with a fresh cache and GOMODCACHE, the fake upstream answering every request %d ms "
               "late (a mirror far from proxy.golang.org). Ratios against direct; lower is better.\n"
               % FAR_MS)
    out.append("| goproxyd wall s | `-warm 0` wall s | direct wall s | goproxyd / direct | "
               "`-warm 0` / direct | upstream requests (goproxyd / `-warm 0` / direct) | "
               "goproxyd requests / direct | warming fetches | warmed files asked for | same files |")
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    out.append("| %s | %s | %s | %s | %s | %d / %d / %d | %s | %d | %d | %s |\n" % (
        spread([x["wall_warm"] for x in gf]), spread([x["wall_nowarm"] for x in gf]),
        spread([x["wall_direct"] for x in gf]),
        spread([x["wall_warm"] / x["wall_direct"] for x in gf]),
        spread([x["wall_nowarm"] / x["wall_direct"] for x in gf]),
        gf[-1]["req_warm"], gf[-1]["req_nowarm"], gf[-1]["req_direct"],
        spread([x["req_warm"] / x["req_direct"] for x in gf]),
        gf[-1]["warm_fetches"], gf[-1]["useful"],
        "yes" if all(x["same_files"] for x in gf) else "NO"))
    return out


def far_targets(res):
    gf = res.get("graph_far") or []
    if not gf:
        return []
    t = []
    w = [x["wall_warm"] / x["wall_direct"] for x in gf]
    q = [x["req_warm"] / x["req_direct"] for x in gf]
    z = [x["wall_nowarm"] / x["wall_direct"] for x in gf]
    t.append(("cold graph, upstream %d ms away: ≤ 0.5× direct" % FAR_MS,
              "%.2f× (%.2f–%.2f)" % (med(w), min(w), max(w)), med(w) <= 0.5))
    t.append(("  its upstream requests ≤ 1.5× direct", "%.2f× (%.2f–%.2f)" % (med(q), min(q), max(q)),
              med(q) <= 1.5))
    t.append(("  with -warm 0: as before warming (≤ 1.1× direct)",
              "%.2f× (%.2f–%.2f)" % (med(z), min(z), max(z)), med(z) <= 1.1))
    return t


def phase_huge(tmp, up, ngx, huge, res):
    for r in range(ROUNDS):
        if over_budget():
            res["skipped"].append("huge rounds %d..%d" % (r + 1, ROUNDS))
            break
        cache = os.path.join(tmp, "huge-cache")
        shutil.rmtree(cache, ignore_errors=True)
        g = start_goproxyd(tmp, "huge", cache, up.port)
        try:
            time.sleep(0.5)
            idle = proc_status(g.pid, "VmRSS")
            upstream_reset(up.port)
            with Sampler([g.pid]) as smp:
                out_g = multi_get(g.port, huge["path"], CLIENTS)
            hwm = proc_status(g.pid, "VmHWM")
            stats = upstream_stats(up.port)
        finally:
            g.stop()
        shutil.rmtree(cache, ignore_errors=True)
        with Sampler(nginx_pids(ngx), pss=True) as smp_n:
            out_n = multi_get(ngx.port2, huge["path"], CLIENTS)
        for o in (out_g, out_n):
            if o["ok"] != CLIENTS:
                log("workload 6: only %d/%d complete 200 responses (statuses %s)"
                    % (o["ok"], CLIENTS, o["statuses"]))
        res["huge"].append({
            "goproxyd": out_g, "nginx": out_n, "upstream_requests": stats.get(huge["path"], 0),
            "upstream_other": sum(v for k, v in stats.items() if k != huge["path"]),
            "rss_idle_kib": idle, "rss_peak_kib": smp.peak_kib, "hwm_kib": hwm,
            "rss_samples": smp.samples, "nginx_rss_peak_kib": smp_n.peak_kib,
        })
        log("round %d huge: goproxyd ttlb %s nginx ttlb %s upstream req %d peak rss %.1f MiB (hwm %.1f)"
            % (r + 1, out_g["ttlb"], out_n["ttlb"], stats.get(huge["path"], 0),
               mib(smp.peak_kib), mib(hwm)))


# ------------------------------------------------------------------ report

def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=30).stdout.decode("utf-8", "replace").strip()
    except Exception as e:
        return "(%s)" % e


def machine_info():
    lscpu = sh("lscpu")
    keep = ("Architecture", "Model name", "CPU(s)", "Thread(s) per core", "Core(s) per socket",
            "Hypervisor vendor", "CPU max MHz", "L2 cache", "L3 cache")
    lines = [l for l in lscpu.splitlines() if l.split(":")[0].strip() in keep]
    return {
        "lscpu": "\n".join(lines),
        "nproc": sh("nproc"),
        "free": sh("free -h"),
        "uname": sh("uname -srvmo"),
        "debian": sh("cat /etc/debian_version"),
    }


def versions():
    return {
        "goproxyd": sh("%s -version" % BIN),
        "nginx": sh("nginx -v"),
        "wrk": sh("wrk -v | head -1"),
        "go": sh("go version"),
        "gnuplot": sh("gnuplot --version"),
        "python3": sh("python3 --version"),
        "perf": sh("perf --version"),
        "libs": sh("dpkg-query -W -f '${Package} ${Version}\\n' libmicrohttpd12 libcurl4 nginx wrk golang-go 2>/dev/null"),
    }


def hit_rows(res):
    rows = []
    for w, label, _ in HIT_WORKLOADS:
        for c in CONNS:
            g = res["hits"].get("%s/%d/goproxyd" % (w, c), [])
            n = res["hits"].get("%s/%d/nginx" % (w, c), [])
            k = min(len(g), len(n))
            if not k:
                continue
            g, n = g[:k], n[:k]
            rows.append({
                "w": w, "label": label, "c": c, "rounds": k,
                "g_rps": [x["rps"] for x in g], "n_rps": [x["rps"] for x in n],
                "r_rps": [a["rps"] / b["rps"] for a, b in zip(g, n)],
                "g_bps": [x["bps"] for x in g], "n_bps": [x["bps"] for x in n],
                "r_bps": [a["bps"] / b["bps"] for a, b in zip(g, n)],
                "g_cpu": [x["cpu_s"] / x["requests"] * 1e4 for x in g],
                "n_cpu": [x["cpu_s"] / x["requests"] * 1e4 for x in n],
                "g_rss": [x["rss_peak_kib"] for x in g], "n_rss": [x["rss_peak_kib"] for x in n],
                "g_err": sum(x["errors"] for x in g), "n_err": sum(x["errors"] for x in n),
                "g_p99": [x["lat_p99_us"] / 1000 for x in g], "n_p99": [x["lat_p99_us"] / 1000 for x in n],
                "g_busy": [x.get("busiest", float("nan")) for x in g],
                "n_busy": [x.get("busiest", float("nan")) for x in n],
                "g_segs": [x.get("segs_per_req", float("nan")) for x in g],
                "n_segs": [x.get("segs_per_req", float("nan")) for x in n],
            })
    return rows


def fmt_rate(x):
    return "%.0f" % x if x >= 100 else "%.1f" % x


def tables(res):
    """The results tables (markdown), also printed to stdout."""
    out = []
    rows = hit_rows(res)
    out.append("### Cache hits (workloads 1–4): goproxyd vs nginx on the same cache directory\n")
    out.append("Median over rounds; ratio = goproxyd / nginx per round, shown as median (min–max). "
               "Bytes/s counts what wrk read (headers + body). Errors = wrk socket errors + non-2xx, "
               "summed over rounds.\n")
    out.append("| workload | conns | goproxyd req/s | nginx req/s | req/s ratio | goproxyd MiB/s | "
               "nginx MiB/s | bytes/s ratio | errors g/n |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        out.append("| %s | %d | %s | %s | %s | %.1f | %.1f | %s | %d/%d |" % (
            r["label"], r["c"], fmt_rate(med(r["g_rps"])), fmt_rate(med(r["n_rps"])), spread(r["r_rps"]),
            med(r["g_bps"]) / MIB, med(r["n_bps"]) / MIB, spread(r["r_bps"]), r["g_err"], r["n_err"]))
    out.append("")
    out.append("Costs of the same runs (medians; g = goproxyd, n = nginx). CPU = server user+system "
               "seconds per 10k requests (nginx: master + workers). Busiest = share of the server's CPU "
               "time spent by its busiest thread/worker (0.50 = both evenly loaded, 1.00 = one did all "
               "the work). TCP segs = segments sent on the host per request, both directions "
               "(/proc/net/snmp). p99 = wrk latency. Peak memory sampled every 50 ms: goproxyd VmRSS, "
               "nginx Pss summed over master + workers (shared pages counted once).\n")
    out.append("| workload | conns | CPU s/10k g | CPU s/10k n | CPU ratio | busiest g | busiest n | "
               "TCP segs/req g | n | p99 ms g | n | peak RSS MiB g | peak Pss MiB n |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        out.append("| %s | %d | %.3f | %.3f | %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.1f | %.1f |" % (
            r["label"], r["c"], med(r["g_cpu"]), med(r["n_cpu"]),
            spread([a / b for a, b in zip(r["g_cpu"], r["n_cpu"]) if b > 0]),
            med(r["g_busy"]), med(r["n_busy"]), med(r["g_segs"]), med(r["n_segs"]),
            med(r["g_p99"]), med(r["n_p99"]), mib(max(r["g_rss"])), mib(max(r["n_rss"]))))
    out.append("")
    gr = res["graph"]
    out.append("### Workload 5: cold `go mod download` of a %d-module graph\n" % MODULES)
    if gr:
        out.append("Each round: a fresh goproxyd with an empty cache and a fresh GOMODCACHE, then "
                   "a fresh GOMODCACHE straight from the fake upstream. Ratio = wall time through "
                   "goproxyd / wall time direct (lower is better).\n")
        out.append("| goproxyd wall s | direct wall s | time ratio | files downloaded (goproxyd/direct, same set) "
                   "| upstream files fetched | upstream requests (via goproxyd / direct) | max upstream requests per file | goproxyd peak RSS MiB |")
        out.append("|---|---|---|---|---|---|---|---|")
        out.append("| %s | %s | %s | %d/%d, %s | %d | %d / %d | %d | %.1f |" % (
            spread([x["wall_goproxyd"] for x in gr]), spread([x["wall_direct"] for x in gr]),
            spread([x["wall_goproxyd"] / x["wall_direct"] for x in gr]),
            gr[-1]["files_goproxyd"], gr[-1]["files_direct"],
            "yes" if all(x["same_files"] for x in gr) else "NO",
            gr[-1]["upstream_files"], gr[-1]["upstream_requests"], gr[-1]["direct_requests"],
            max(x["max_per_file"] for x in gr), mib(max(x["rss_peak_kib"] for x in gr))))
        if all("wall_proxy" in x for x in gr):
            out.append("\nReference for what any proxy hop costs here: each round also downloads "
                       "through nginx configured as a plain reverse proxy of the fake upstream "
                       "(no cache, nothing written, keep-alive to the upstream).\n")
            out.append("| nginx pass-through wall s | pass-through / direct | goproxyd / nginx pass-through "
                       "| same files | goproxyd CPU s (user+sys, whole run) |")
            out.append("|---|---|---|---|---|")
            out.append("| %s | %s | %s | %s | %s |\n" % (
                spread([x["wall_proxy"] for x in gr]),
                spread([x["wall_proxy"] / x["wall_direct"] for x in gr]),
                spread([x["wall_goproxyd"] / x["wall_proxy"] for x in gr]),
                "yes" if all(x["same_files_proxy"] for x in gr) else "NO",
                spread([x["cpu_goproxyd"] for x in gr])))
        if all("wall_store" in x for x in gr):
            out.append("The files goproxyd cached are then stored again, in the same round, the "
                       "way a cache entry must be stored before a miss is answered (directories, "
                       "temp file, write, fsync, rename), from %d threads as the go command "
                       "downloads (Python, tests/bench/bench.py `durable_store`). Pass-through + "
                       "that store is what a proxy with no cost of its own would take.\n"
                       % gr[-1]["store_threads"])
            out.append("| durable store wall s | (pass-through + store) / direct | goproxyd / (pass-through + store) |")
            out.append("|---|---|---|")
            out.append("| %s | %s | %s |\n" % (
                spread([x["wall_store"] for x in gr]),
                spread([(x["wall_proxy"] + x["wall_store"]) / x["wall_direct"] for x in gr]),
                spread([x["wall_goproxyd"] / (x["wall_proxy"] + x["wall_store"]) for x in gr])))
    else:
        out.append("(not run)")
    out.append("")
    out.extend(far_table(res))
    hg = res["huge"]
    out.append("### Workload 6: %d concurrent requests for one uncached %d MiB zip\n" % (CLIENTS, HUGE_MIB))
    if hg:
        out.append("Time to last byte = from sending the %d requests until every body is complete. "
                   "Reference: nginx serving the same file (already on disk) to %d clients. "
                   "TTFB = median time to the first response byte.\n" % (CLIENTS, CLIENTS))
        ok = lambda x: x["ttlb"] is not None
        gt = [x["goproxyd"]["ttlb"] for x in hg if ok(x["goproxyd"])]
        nt = [x["nginx"]["ttlb"] for x in hg if ok(x["nginx"])]
        rt = [x["goproxyd"]["ttlb"] / x["nginx"]["ttlb"] for x in hg if ok(x["goproxyd"]) and ok(x["nginx"])]
        out.append("| goproxyd TTLB s | nginx TTLB s | TTLB ratio | goproxyd TTFB s | complete 200s (g/n) "
                   "| upstream requests for the zip | goproxyd RSS idle MiB | goproxyd peak RSS MiB (sampled / VmHWM) | nginx peak Pss MiB |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        out.append("| %s | %s | %s | %s | %d/%d of %d | %s | %.1f | %.1f / %.1f | %.1f |" % (
            spread(gt), spread(nt), spread(rt),
            spread([x["goproxyd"]["ttfb_median"] for x in hg if x["goproxyd"]["ttfb_median"] is not None]),
            min(x["goproxyd"]["ok"] for x in hg), min(x["nginx"]["ok"] for x in hg), CLIENTS,
            ", ".join(str(x["upstream_requests"]) for x in hg),
            mib(max(x["rss_idle_kib"] for x in hg)),
            mib(max(x["rss_peak_kib"] for x in hg)), mib(max(x["hwm_kib"] for x in hg)),
            mib(max(x["nginx_rss_peak_kib"] for x in hg))))
    else:
        out.append("(not run)")
    out.append("")
    rs = res["rss"]
    out.append("### goproxyd memory\n")
    out.append("| state | VmRSS MiB |")
    out.append("|---|---|")
    out.append("| idle, fresh start | %.1f |" % mib(rs.get("fresh_kib", 0)))
    out.append("| idle, after warm-up (4 files fetched) | %.1f |" % mib(rs.get("warm_kib", 0)))
    idles = [x["rss_idle_kib"] for k, v in res["hits"].items() if k.endswith("/goproxyd") for x in v]
    if idles:
        out.append("| idle, freshly started on the filled cache (before each hit run; max) | %.1f |"
                   % mib(max(idles)))
    for w, label, _ in HIT_WORKLOADS:
        cells = [(r["c"], max(r["g_rss"])) for r in rows if r["w"] == w]
        if cells:
            out.append("| peak under hit load, %s (max over rounds) | %s |" % (
                label, ", ".join("%.1f at %d conn%s" % (mib(k), c, "" if c == 1 else "s") for c, k in cells)))
    if hg:
        out.append("| peak while streaming the %d MiB miss to %d clients | %.1f |"
                   % (HUGE_MIB, CLIENTS, mib(max(max(x["rss_peak_kib"], x["hwm_kib"]) for x in hg))))
    out.append("")
    return "\n".join(out), rows


def targets(res, rows):
    t = []

    def cell(w, c):
        for r in rows:
            if r["w"] == w and r["c"] == c:
                return r
        return None

    for w, label, _ in HIT_WORKLOADS:
        for c in (32, 256):
            r = cell(w, c)
            if r is None:
                continue
            if w == "large":
                v = med(r["r_bps"])
                t.append(("%s, %d conns: bytes/s ≥ 0.95× nginx" % (label, c), "%.2f× (%.2f–%.2f)"
                          % (v, min(r["r_bps"]), max(r["r_bps"])), v >= 0.95))
            else:
                v = med(r["r_rps"])
                t.append(("%s, %d conns: req/s ≥ 1.0× nginx" % (label, c), "%.2f× (%.2f–%.2f)"
                          % (v, min(r["r_rps"]), max(r["r_rps"])), v >= 1.0))
    rs = res["rss"]
    idles = [rs.get("fresh_kib", 0), rs.get("warm_kib", 0)] + \
        [x["rss_idle_kib"] for k, v in res["hits"].items() if k.endswith("/goproxyd") for x in v]
    idle = max(idles)
    t.append(("RSS ≤ 16 MiB idle", "%.1f MiB (max)" % mib(idle), mib(idle) <= 16))
    if rows:
        worst = max(rows, key=lambda r: max(r["g_rss"]))
        load = max(worst["g_rss"])
        by_c = ", ".join("%d conns: %.1f" % (c, mib(max(max(r["g_rss"]) for r in rows if r["c"] == c)))
                         for c in CONNS if any(r["c"] == c for r in rows))
        t.append(("RSS ≤ 16 MiB under hit load (peak over all hit runs)",
                  "%.1f MiB (%s, %d conns); by conns: %s" % (mib(load), worst["label"], worst["c"], by_c),
                  mib(load) <= 16))
    hg = res["huge"]
    if hg:
        peak = max(max(x["rss_peak_kib"], x["hwm_kib"]) for x in hg)
        t.append(("RSS ≤ 32 MiB streaming the %d MiB miss to %d clients" % (HUGE_MIB, CLIENTS),
                  "%.1f MiB" % mib(peak), mib(peak) <= 32))
    gr = res["graph"]
    if gr:
        ratios = [x["wall_goproxyd"] / x["wall_direct"] for x in gr]
        t.append(("cold graph ≤ 1.2× direct", "%.2f× (%.2f–%.2f)" % (med(ratios), min(ratios), max(ratios)),
                  med(ratios) <= 1.2))
    t.extend(far_targets(res))
    if res.get("offline"):
        sp = offline.speedup(res["offline"])
        t.append(("prefetch ≥ 3× faster than go mod download (upstream +100 ms)", "%.1f×" % sp, sp >= 3))
    per_file = [x["max_per_file"] for x in gr] + [x["upstream_requests"] for x in hg]
    if per_file:
        t.append(("one upstream request per file (graph: max per file; 100 MiB zip)",
                  "max %d" % max(per_file), max(per_file) == 1))
    return t


def profile_section(res):
    p = res.get("profile") or {}
    if not p:
        return ""
    out = ["### Measured by the harness (`perf`, workload 1 and 3 at 32 connections)\n"]
    for w in ("info", "large"):
        g, n = p.get("%s/goproxyd" % w, {}), p.get("%s/nginx" % w, {})
        sg, sn = g.get("syscalls", {}), n.get("syscalls", {})
        if not sg and not sn:
            continue
        out.append("Syscalls per response, workload %s:\n" % ("1 (.info)" if w == "info" else "3 (8 MiB zip)"))
        out.append("| syscall | goproxyd | nginx |")
        out.append("|---|---|---|")
        keys = sorted(set(sg) | set(sn), key=lambda k: (k != "raw_syscalls", -max(sg.get(k, 0), sn.get(k, 0)), k))
        for k in keys:
            a, b = sg.get(k, 0), sn.get(k, 0)
            if max(a, b) < 0.01:
                continue
            out.append("| %s | %.2f | %.2f |" % ("all (raw_syscalls)" if k == "sys_enter" or k == "raw_syscalls" else k, a, b))
        out.append("")
    for w in ("info", "large"):
        for side in ("goproxyd", "nginx"):
            perf = p.get("%s/%s" % (w, side), {}).get("perf")
            if not perf:
                continue
            out.append("CPU samples, %s, workload %s (perf record -F 1999, self time, ≥1%%):\n"
                       % (side, "1" if w == "info" else "3"))
            out.append("```")
            out.extend(perf.get("dso", []))
            out.append("")
            out.extend(perf.get("dso,sym", [])[:18])
            out.append("```\n")
    return "\n".join(out)


def plot(res, rows, docs, tmp):
    data = os.path.join(tmp, "plot.dat")
    with open(data, "w") as f:
        f.write("# label g_med g_min g_max n_med n_min n_max r_med r_min r_max\n")
        for r in rows:
            f.write('"%s\\n%d conn%s" %g %g %g %g %g %g %g %g %g\n' % (
                r["label"], r["c"], "" if r["c"] == 1 else "s",
                med(r["g_rps"]), min(r["g_rps"]), max(r["g_rps"]),
                med(r["n_rps"]), min(r["n_rps"]), max(r["n_rps"]),
                med(r["r_rps"]), min(r["r_rps"]), max(r["r_rps"])))
    png = os.path.join(docs, "benchmarks.png")
    script = os.path.join(tmp, "plot.gp")
    with open(script, "w") as f:
        f.write("""\
set terminal pngcairo size 1400,1050 font "DejaVu Sans,11" noenhanced
set output '{png}'
set multiplot layout 2,1 title "goproxyd vs nginx serving cache hits: wrk on 127.0.0.1, {rounds} rounds x {dur} s, 2 cores\\nbars = median, whiskers = min-max over rounds" font ",13"
set style data histogram
set style histogram errorbars gap 2 lw 1.5
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key top center horizontal
set logscale y
set ylabel "requests/s (log scale)"
set yrange [50:800000]
set xtics font ",10" nomirror
set lmargin 12
set bmargin 4
plot '{data}' using 2:3:4:xtic(1) title "goproxyd" lc rgb "#1f77b4", \\
     '' using 5:6:7 title "nginx" lc rgb "#ff7f0e"
unset logscale y
set ylabel "goproxyd / nginx (req/s)"
set yrange [0:{rmax}]
set ytics 0.2
set key above horizontal
plot '{data}' using 8:9:10:xtic(1) title "ratio goproxyd / nginx (req/s), median with min-max" lc rgb "#2ca02c", \\
     '' using 0:(0.07):(sprintf("%.2f", $8)) with labels font ",10:Bold" notitle, \\
     1.0 with lines dt 2 lw 2 lc rgb "black" title "target 1.0 (workload 3: 0.95 of bytes/s)"
unset multiplot
""".format(png=png, data=data, rounds=min(r["rounds"] for r in rows), dur=DURATION,
           rmax="%.1f" % max(1.6, max(max(r["r_rps"]) for r in rows) + 0.1)))
    p = subprocess.run(["gnuplot", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    if p.returncode != 0:
        log("gnuplot failed:\n" + p.stdout.decode())
        return None
    return png


def foreign_summary(res):
    runs = [x for v in res["hits"].values() for x in v if "foreign_cpu_s" in x]
    if not runs:
        return ("n/a", "n/a", 0, "n/a", 0)
    f = [x["foreign_cpu_s"] for x in runs]
    return ("%.2f" % med(f), "%.2f" % max(f), sum(1 for x in f if x > FOREIGN_LIMIT * DURATION),
            "%.1f" % sum(x["steal_s"] for x in runs), len(res.get("discarded_pairs", [])))


def write_doc(res, docs, tmp, table_md, rows, tg, mach, vers, huge_size, limits_text):
    ngx_conf = res.get("nginx_conf", "")
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    mode = ("QUICK mode (BENCH_QUICK=1): numbers are indicative only" if QUICK else "full mode") + \
        " (%d rounds, %d s per wrk run)" % (ROUNDS, DURATION)
    L = []
    L.append("# goproxyd benchmarks\n")
    L.append("Generated by `make bench` (`sh tests/bench/run.sh`) on %s, %s; the run took %.0f s. "
             "Do not edit by hand: re-run the benchmark. The interpretation under \"What limits "
             "goproxyd\" comes from `tests/bench/limits.md`.\n" % (res.get("when", when), mode, res.get("elapsed", 0)))
    L.append("Every figure is a ratio against a reference measured in the same run. The two sides "
             "run alternately (goproxyd, nginx, goproxyd, nginx, ...) for %d rounds; tables give the "
             "median and the spread (min–max) of the per-round ratios.\n" % ROUNDS)
    if res["skipped"]:
        L.append("**Incomplete run** (time budget BENCH_MAX_SECONDS=%d spent): skipped %s.\n"
                 % (MAX_SECONDS, "; ".join(res["skipped"])))
    L.append("## Targets\n")
    L.append("| target | measured (median, min–max) | met? |")
    L.append("|---|---|---|")
    for name, val, ok in tg:
        L.append("| %s | %s | %s |" % (name, val, "met" if ok else "**missed**"))
    L.append("")
    L.append("## Results\n")
    L.append(table_md)
    L.append("![requests/s per workload, goproxyd vs nginx](benchmarks.png)\n")
    L.append("## What limits goproxyd\n")
    L.append(profile_section(res))
    if limits_text:
        L.append(limits_text.strip() + "\n")
    L.append("## Setup\n")
    L.append("### Machine\n")
    L.append("```\n%s\nnproc: %s\n%s\n%s (Debian %s)\n```\n"
             % (mach["lscpu"], mach["nproc"], mach["free"], mach["uname"], mach["debian"]))
    L.append("### Versions\n")
    L.append("```\n%s\n```\n" % "\n".join(vers[k] for k in
                                          ("goproxyd", "nginx", "wrk", "go", "gnuplot", "python3", "perf", "libs")))
    L.append("### Method\n")
    L.append("- Everything runs on 127.0.0.1 on the same 2-core machine: load generator, servers and "
             "fake upstream share the cores (no pinning), equally for both sides.\n"
             "- Files: `.info` %d B; zip %d B (20 KiB); zip %d B (8 MiB); `@v/list` %d B; cold zip %d B. "
             "Zips are valid module zips with stored random content (tests/bench/mkgraph.py).\n"
             % (res["files"]["info"]["size"], res["files"]["small"]["size"], res["files"]["large"]["size"],
                res["files"]["list"]["size"], huge_size) +
             "- Hits: a goproxyd filled once through the fake upstream (warm-up: each file fetched "
             "once, then checked to be served as a hit, byte-identical, by both servers); nginx serves "
             "that very cache directory as static files. The fake upstream stays up and must see no "
             "request during the hit runs (it saw %d).\n" % res.get("upstream_during_hits", -1) +
             "- goproxyd: `$TMP/goproxyd` is a copy of `./goproxyd` taken at the start (a rebuild "
             "during the run cannot mix binaries), run with `-threads %d`; `-sumdb off` is added when "
             "the build has that flag, so nothing but loopback is contacted. nginx: `worker_processes %d`.\n"
             % (THREADS, THREADS) +
             "- Every wrk run gets a freshly started server (goproxyd or nginx on the same filled cache "
             "directory, warm page cache), so the peak memory of a run belongs to that load only.\n"
             "- wrk: fixed -t2 (-t1 for 1 connection, as wrk needs threads ≤ connections), "
             "%d s per run, connections %s; bytes/s counts what wrk read (headers + body). "
             "%d rounds × %d runs × %d s keep the default run under ~10 minutes; "
             "`BENCH_DURATION=5` gives 5 s runs (~13 minutes).\n"
             % (DURATION, ", ".join(map(str, CONNS)), ROUNDS, 2 * len(CONNS) * len(HIT_WORKLOADS), DURATION) +
             "- Other activity: during each kept hit run, the CPU time used on the machine by "
             "processes other than this benchmark's (/proc/stat busy time minus getrusage of the "
             "harness and its reaped children) was %s s (median; max %s s; %d runs over 10%% of "
             "the run length); hypervisor steal time totalled %s s. A goproxyd/nginx pair disturbed "
             "by more than 10%% of a run's length was measured again (at most 3 tries): %d pairs "
             "were discarded.\n" % foreign_summary(res) +
             "- CPU: utime+stime deltas from /proc/<pid>/stat around each wrk run (nginx: master + "
             "workers); busiest-thread share from /proc/<pid>/task/*/stat; memory: goproxyd VmRSS "
             "(and VmHWM), nginx Pss from /proc/<pid>/smaps_rollup, sampled every 50 ms. The "
             "server's processes are found once, 0.2 s after its start, before wrk runs: nothing "
             "scans /proc during a measured run, so the harness's own CPU is about the same in "
             "both sides' runs (≈0.03 s per 3 s run for goproxyd, 0.05–0.07 s for nginx's three "
             "processes).\n"
             "- Workload 5: `go mod download` of an app requiring %d modules (each at v1.1.0, "
             "requiring up to three others at v1.0.0/v1.1.0). The fake upstream (tests/bench/upstream.py: "
             "Python ThreadingHTTPServer, sendfile) counts requests per path; its speed bounds the ratio. "
             "One untimed direct run first warms the page cache and the go binary.\n" % MODULES +
             "- Workload 6: a Python selector client opens %d connections, sends all requests at once "
             "and reads every body to the end (no storage); goproxyd starts with an empty cache "
             "each round; RSS sampled every 50 ms plus VmHWM at the end.\n" % CLIENTS)
    L.append("### Exact commands\n")
    L.append("```")
    for what, line in COMMANDS:
        L.append("# %s\n%s" % (what, line))
    L.append("```\n")
    L.append("nginx.conf (written to the temp dir):\n")
    L.append("```nginx\n%s```\n" % ngx_conf)
    L.append("### Per-round ratios (goproxyd / nginx req/s)\n")
    L.append("| workload | conns | rounds |")
    L.append("|---|---|---|")
    for r in rows:
        L.append("| %s | %d | %s |" % (r["label"], r["c"], " ".join("%.2f" % x for x in r["r_rps"])))
    L.append("")
    path = os.path.join(docs, "benchmarks.md")
    with open(path, "w") as f:
        f.write("\n".join(L))
    return path


# ------------------------------------------------------------------ main

SETTINGS = ("QUICK", "ROUNDS", "DURATION", "CONNS", "THREADS", "MODULES", "HUGE_MIB", "CLIENTS",
            "PROFILE", "MAX_SECONDS", "FAR_MS")


def phase(name):
    """Is this phase part of the run (BENCH_ONLY)?"""
    return not ONLY or name in ONLY


def report(res, tmp, docs):
    """Tables, targets, png and markdown from a results dict."""
    table_md, rows = tables(res)
    table_md += offline.markdown(res.get("offline"))
    tg = targets(res, rows)
    limits = ""
    lp = os.path.join(HERE, "limits.md")
    if os.path.exists(lp):
        with open(lp) as f:
            limits = f.read()
    png = plot(res, rows, docs, tmp)
    doc = write_doc(res, docs, tmp, table_md, rows, tg, res["machine"], res["versions"],
                    res["files"]["huge"]["size"], limits)
    print()
    print(table_md)
    print("### Targets\n")
    for name, val, ok in tg:
        print("- %-70s %-22s %s" % (name, val, "met" if ok else "MISSED"))
    print()
    print("wrote %s%s" % (doc, " and " + png if png else ""))


def render(path):
    """bench.py --render results.json: rewrite the docs from a kept run
    (BENCH_KEEP=1) without measuring again, e.g. after editing limits.md."""
    with open(path) as f:
        res = json.load(f)
    g = globals()
    for k in SETTINGS:
        g[k] = res["settings"].get(k, g[k])   # a run older than a setting keeps its default
    COMMANDS[:] = [tuple(c) for c in res["commands"]]
    os.makedirs(DOCS, exist_ok=True)
    report(res, os.path.dirname(os.path.abspath(path)), DOCS)
    return 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--render":
        return render(sys.argv[2])
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, f: sys.exit(128 + s))
    tmp = os.environ.get("BENCH_TMP") or tempfile.mkdtemp(prefix="goproxyd-bench-")
    tmp = os.path.realpath(tmp)
    if not os.access(GOPROXYD, os.X_OK):
        sys.exit("bench: %s is not built (run make)" % GOPROXYD)
    os.makedirs(DOCS, exist_ok=True)
    # a private copy: a rebuild of ./goproxyd during the run must not mix binaries
    global BIN, BIN_FLAGS
    BIN = os.path.join(tmp, "goproxyd")
    shutil.copy2(GOPROXYD, BIN)
    BIN_FLAGS = goproxyd_flags(BIN)
    log("settings: rounds=%d duration=%ds conns=%s threads=%d quick=%s tmp=%s goproxyd flags %s"
        % (ROUNDS, DURATION, CONNS, THREADS, QUICK, tmp, BIN_FLAGS))
    res = {"hits": {}, "graph": [], "graph_far": [], "huge": [], "profile": {}, "rss": {},
           "skipped": []}
    with open("/proc/loadavg") as f:
        res["loadavg_start"] = f.read().split()[:3]
    if float(res["loadavg_start"][0]) > 1.0:
        log("warning: load average %s at start: other work on this machine skews the ratios"
            % " ".join(res["loadavg_start"]))
    try:
        updir, appdir = os.path.join(tmp, "upstream"), os.path.join(tmp, "app")
        p = subprocess.run([sys.executable, os.path.join(HERE, "mkgraph.py"), updir, appdir,
                            "--modules", str(MODULES), "--huge-mib", str(HUGE_MIB)],
                           stdout=subprocess.PIPE, check=True, timeout=300)
        tree = json.loads(p.stdout)
        files = tree["files"]
        res["files"] = files
        log("generated module tree (%d graph modules)" % tree["graph_modules"])

        pf = os.path.join(tmp, "upstream.port")
        up = Proc("upstream", [sys.executable, os.path.join(HERE, "upstream.py"), updir, "--port-file", pf],
                  os.path.join(tmp, "upstream.log"))
        deadline = time.monotonic() + 15
        while not os.path.exists(pf) and time.monotonic() < deadline:
            time.sleep(0.05)
        with open(pf) as f:
            up.port = int(f.read())
        wait_port(up.port, up)
        note_cmd("fake upstream", "python3 tests/bench/upstream.py $TMP/upstream --port-file $TMP/upstream.port")

        cache = os.path.join(tmp, "cache")
        if phase("hits"):
            # warm-up: fill the cache through goproxyd, check both servers serve it
            hit_flags = ["-cacheExpire", "1h"]
            g = start_goproxyd(tmp, "hits", cache, up.port, hit_flags)
            time.sleep(1.0)
            res["rss"]["fresh_kib"] = proc_status(g.pid, "VmRSS")
            for w, _, _ in HIT_WORKLOADS:
                path = files[w]["path"]
                with open(os.path.join(updir, path.lstrip("/")), "rb") as f:
                    want = f.read()
                # the first request fetches; later ones must become hits (a request that
                # arrives while the fetched file is still being stored may say "miss"
                # without a new upstream request), within 10 s
                deadline = time.monotonic() + 10
                first = True
                while True:
                    st, hdr, body = http_get(g.port, path)
                    got = hdr.get("x-goproxyd-cache")
                    if st != 200 or body != want or (first and got != "miss"):
                        raise RuntimeError("warm-up %s: status %d, X-Goproxyd-Cache %s, %d bytes (want %d)"
                                           % (path, st, got, len(body), len(want)))
                    first = False
                    if got == "hit":
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError("warm-up %s: still no cache hit after 10 s" % path)
                    time.sleep(0.05)
            up_counts = upstream_stats(up.port)
            for w, _, _ in HIT_WORKLOADS:
                if up_counts.get(files[w]["path"]) != 1:
                    raise RuntimeError("warm-up: %d upstream requests for %s (want 1)"
                                       % (up_counts.get(files[w]["path"], 0), files[w]["path"]))
            ngx = start_nginx(tmp, cache, updir)
            res["nginx_conf"] = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", ngx.conf)
            for w, _, _ in HIT_WORKLOADS:
                path = files[w]["path"]
                a, b = http_get(g.port, path)[2], http_get(ngx.port, path)
                if b[0] != 200 or b[2] != a:
                    raise RuntimeError("nginx serves %s differently (status %d)" % (path, b[0]))
            st, _, body = http_get(ngx.port2, files["huge"]["path"], method="HEAD")
            if st != 200:
                raise RuntimeError("nginx reference for the cold zip: status %d" % st)
            time.sleep(1.0)
            res["rss"]["warm_kib"] = proc_status(g.pid, "VmRSS")
            log("warm-up done; goproxyd idle RSS %.1f MiB (fresh %.1f MiB)"
                % (mib(res["rss"]["warm_kib"]), mib(res["rss"]["fresh_kib"])))
            g.stop()
            ngx.stop()

            upstream_reset(up.port)
            phase_hits(files, res,
                       lambda: start_goproxyd(tmp, "hits", cache, up.port, hit_flags),
                       lambda: start_nginx(tmp, cache, updir))
            res["upstream_during_hits"] = sum(upstream_stats(up.port).values())
            if PROFILE:
                g = start_goproxyd(tmp, "hits", cache, up.port, hit_flags)
                ngx = start_nginx(tmp, cache, updir)
                try:
                    phase_profile(tmp, g, ngx, files, res)
                finally:
                    g.stop()
                    ngx.stop()

        if phase("graph"):
            phase_graph(tmp, up, appdir, res)
        if phase("far"):
            phase_graph_far(tmp, up, appdir, res)
        if phase("offline"):
            if over_budget():
                res["skipped"].append("offline workload")
            else:
                log("offline workload: prefetch vs go mod download, export/import vs tar")
                res["offline"] = offline.run(tmp, BIN, updir, appdir, ROUNDS, log)
        if phase("huge"):
            ngx = start_nginx(tmp, cache, updir)
            phase_huge(tmp, up, ngx, files["huge"], res)
            ngx.stop()
        up.stop()

        res["settings"] = {k: globals()[k] for k in SETTINGS}
        res["commands"] = COMMANDS
        res["machine"] = machine_info()
        res["versions"] = versions()
        res["elapsed"] = time.monotonic() - T0
        res["when"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        rj = os.path.join(tmp, "results.json")
        with open(rj, "w") as f:
            json.dump(res, f, indent=1)
        if ONLY:
            # a partial run: its tables, no docs (they describe full runs)
            print("\n".join(far_table(res)) if phase("far") else "")
            for name, val, ok in far_targets(res):
                print("- %-70s %-22s %s" % (name, val, "met" if ok else "MISSED"))
            print("partial run (BENCH_ONLY=%s): docs not written; raw results: %s"
                  % (",".join(ONLY), rj))
            return 0
        report(res, tmp, DOCS)
        print("raw results: %s (kept with BENCH_KEEP=1; re-render with "
              "python3 tests/bench/bench.py --render FILE)" % rj)
        return 0
    finally:
        Proc.stop_all()


if __name__ == "__main__":
    sys.exit(main())

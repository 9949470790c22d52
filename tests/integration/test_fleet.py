#!/usr/bin/env python3
"""A fleet on one shared cache directory: three goproxyd instances behind
nginx (round robin), one upstream fetch per file among them, and a fetch
taken over when the instance holding it is SIGKILLed.

Run:  python3 tests/integration/test_fleet.py [NAME-SUBSTRING ...]
Env:  GOPROXYD=path/to/binary (default ./build/goproxyd), KEEP_TMP=1
Needs nginx (tests/deps.sh installs it).  Everything listens on 127.0.0.1.
Last line "N passed, N failed".
"""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import fakeupstream  # noqa: E402
import mkmodules  # noqa: E402
from harness import (Daemons, Runner, TestFailure, check, check_clean_exits, eq, free_port,  # noqa: E402
                     get, make_tmp, tmp_leftovers, wait_port)

GO_TIMEOUT = 240
R = Runner(default_timeout=400)
D = Daemons()

NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
user root;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    upstream fleet {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://fleet;
            proxy_next_upstream error timeout;
            proxy_read_timeout 120s;
        }}
    }}
}}
"""


class Ctx:
    tmp = None
    tree = None
    info = None
    up = None


C = Ctx()


def setup():
    if shutil.which("nginx") is None:
        raise TestFailure("nginx is not installed (tests/deps.sh test installs it)")
    C.tmp = make_tmp("goproxyd-fleet-", R)
    D.tmp = C.tmp
    C.tree = os.path.join(C.tmp, "tree")
    C.info = mkmodules.generate(C.tree)
    C.up = fakeupstream.FakeUpstream(C.tree).start()
    R.cleanups.append(lambda: C.up.stop(close_connections=True))
    R.cleanups.append(D.stop_all)
    R.after_each.append(D.stop_all)


def fleet(n, cache, extra=()):
    return [D.start(C.up.url, extra=extra, cache=cache, name="fleet%d" % i) for i in range(n)]


class Nginx:
    def __init__(self, daemons):
        self.dir = os.path.join(C.tmp, "nginx-%d" % free_port())
        os.makedirs(self.dir)
        self.port = free_port()
        servers = "\n".join("        server 127.0.0.1:%d;" % d.port for d in daemons)
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(dir=self.dir, port=self.port, servers=servers))
        self.proc = subprocess.Popen(["nginx", "-p", self.dir, "-e", os.path.join(self.dir, "error.log"),
                                      "-c", conf], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        if not wait_port(self.port, self.proc, 15):
            self.stop()
            raise TestFailure("nginx did not start: %s" % self.error_log())

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def error_log(self):
        try:
            with open(os.path.join(self.dir, "error.log")) as f:
                return f.read()[-500:]
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def go_download(goproxy, wd):
    app = mkmodules.write_app(os.path.join(wd, "app"))
    env = mkmodules.go_env(wd, goproxy, os.path.join(wd, "gomodcache"))
    for args in (["mod", "download"], ["build", "-o", os.path.join(wd, "app.bin"), "."]):
        rc, out = mkmodules.run_go(args, app, env, GO_TIMEOUT)
        if rc != 0:
            raise TestFailure("go %s via %s failed (%s): %s"
                              % (" ".join(args), goproxy, rc, out.strip().replace("\n", " | ")[-700:]))
    with open(os.path.join(app, "go.sum")) as f:
        return f.read()


def metric(d, name):
    """The sum of every sample of name in d's /metrics."""
    total = 0
    for line in get(d.port, "/metrics").text().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def lock_leftovers(root):
    return [p for p in tmp_leftovers(root) if ".goproxyd-tmp-lock-" in p]


# =================================================================== tests

def test_cold_run_one_fetch_per_file():
    """Three instances, one directory, nginx round robin: three go clients
    at once, on a cold cache, make one upstream request per file."""
    C.up.reset()
    cache = os.path.join(D.newdir("shared"), "cache")
    ds = fleet(3, cache)
    ngx = Nginx(ds)
    R.cleanups.append(ngx.stop)
    # three go clients at once, each from an empty module cache
    dirs = [D.newdir("go-cold%d" % i) for i in range(3)]
    out = [None] * 3

    def client(i):
        try:
            out[i] = go_download(ngx.url, dirs[i])
        except Exception as e:
            out[i] = e
    ths = [threading.Thread(target=client, args=(i,)) for i in range(3)]
    try:
        for t in ths:
            t.start()
        for t in ths:
            t.join(GO_TIMEOUT + 30)
    finally:
        ngx.stop()
    for i, g in enumerate(out):
        check(isinstance(g, str), "go client %d: %s" % (i, g))
        eq(g, out[0], "go.sum of client %d" % i)
    got = mkmodules.parse_gosum(out[0])
    for k, h in got.items():
        eq(h, C.info["sums"].get(k), "go.sum hash of %s" % k)
    stats = C.up.stats()
    check(len(stats) > 10, "the upstream saw only %d paths" % len(stats))
    many = {p: n for p, n in stats.items() if n > 1}
    check(not many, "asked upstream more than once among the fleet: %s" % many)
    # every instance answered requests (nginx's round robin)
    for d in ds:
        check(metric(d, "goproxyd_requests_total") > 0, "an instance answered no request")
    check(not tmp_leftovers(cache), "temp or lock files left: %s" % tmp_leftovers(cache))
    print("  upstream requests: %d for %d paths" % (sum(stats.values()), len(stats)), flush=True)


def _zip_path():
    m, v = mkmodules.APP_GO_MOD_REQUIRES[0]
    return mkmodules.rel(m, v, "zip")


def _concurrent_get(port, path, out, i):
    try:
        out[i] = get(port, "/" + path, timeout=90)
    except Exception as e:  # the killed instance's client
        out[i] = e


def test_waiters_do_not_fetch():
    """While one instance fetches a file, the others asking for it wait for
    its publish: one upstream request, three identical answers."""
    C.up.reset()
    path = _zip_path()
    cache = os.path.join(D.newdir("waiters"), "cache")
    ds = fleet(3, cache)
    C.up.set_rules({"\\.zip$": {"stall_after_bytes": [64, 2]}})
    out = [None] * 3
    ths = [threading.Thread(target=_concurrent_get, args=(ds[0].port, path, out, 0))]
    ths[0].start()
    deadline = time.time() + 10
    while C.up.stalling() == 0 and time.time() < deadline:
        time.sleep(0.02)
    check(C.up.stalling() == 1, "the first fetch never reached the upstream")
    for i in (1, 2):
        ths.append(threading.Thread(target=_concurrent_get, args=(ds[i].port, path, out, i)))
        ths[-1].start()
    for t in ths:
        t.join(60)
    want = C.info["files"][path]
    for i, r in enumerate(out):
        check(not isinstance(r, Exception), "instance %d: %s" % (i, r))
        eq(r.status, 200, "instance %d status" % i)
        check(r.body == want, "instance %d: body differs from the upstream's" % i)
    eq(C.up.count(r"\.zip$"), 1, "upstream requests for the zip")
    for i in (1, 2):
        eq(metric(ds[i], "goproxyd_fleet_served_total"), 1, "instance %d fleet_served" % i)
    check(not tmp_leftovers(cache), "temp or lock files left: %s" % tmp_leftovers(cache))


def test_notfound_shared_with_waiters():
    """A 404 that the holder got is the waiters' answer too."""
    C.up.reset()
    cache = os.path.join(D.newdir("notfound"), "cache")
    ds = fleet(2, cache)
    m, _ = mkmodules.APP_GO_MOD_REQUIRES[0]
    path = mkmodules.rel(m, "v1.9.9", "mod")
    C.up.set_rules({"v1\\.9\\.9": {"stall_before_headers": 1.5, "status": 404,
                                   "body": "not found: no such version"}})
    out = [None] * 2
    t0 = threading.Thread(target=_concurrent_get, args=(ds[0].port, path, out, 0))
    t0.start()
    deadline = time.time() + 10
    while C.up.stalling() == 0 and time.time() < deadline:
        time.sleep(0.02)
    t1 = threading.Thread(target=_concurrent_get, args=(ds[1].port, path, out, 1))
    t1.start()
    t0.join(30)
    t1.join(30)
    for i, r in enumerate(out):
        check(not isinstance(r, Exception), "instance %d: %s" % (i, r))
        eq((r.status, r.text()), (404, r.text()), "instance %d status" % i)
        check("no such version" in r.text(), "instance %d: reason %r" % (i, r.text()))
    eq(C.up.count("v1\\.9\\.9"), 1, "upstream requests for the missing version")
    check(not tmp_leftovers(cache), "temp or lock files left: %s" % tmp_leftovers(cache))


def test_sigkill_holder_another_completes():
    """SIGKILL the instance holding a fetch: the kernel drops its lock, and
    an instance waiting for the file fetches it and answers its client."""
    C.up.reset()
    path = _zip_path()
    cache = os.path.join(D.newdir("sigkill"), "cache")
    ds = fleet(3, cache)
    # the first request stalls mid-body for up to 60 s; the next one is quick
    C.up.set_rules({"\\.zip$": {"stall_after_bytes": [64, 60], "times": 1}})
    out = [None] * 3
    ths = [threading.Thread(target=_concurrent_get, args=(ds[0].port, path, out, 0))]
    ths[0].start()
    deadline = time.time() + 10
    while C.up.stalling() == 0 and time.time() < deadline:
        time.sleep(0.02)
    check(C.up.stalling() == 1, "the first fetch never reached the upstream")
    for i in (1, 2):
        ths.append(threading.Thread(target=_concurrent_get, args=(ds[i].port, path, out, i)))
        ths[-1].start()
    time.sleep(1.0)
    eq(C.up.count(r"\.zip$"), 1, "upstream requests while the holder lives")
    check(lock_leftovers(cache), "no fetch lock file while the fetch runs")
    ds[0].kill9()
    D.forget(ds[0])
    for t in ths:
        t.join(60)
    C.up.release_stalls()
    want = C.info["files"][path]
    check(isinstance(out[0], Exception) or out[0].status != 200 or out[0].body != want,
          "the killed instance answered in full")
    for i in (1, 2):
        r = out[i]
        check(not isinstance(r, Exception), "instance %d: %s" % (i, r))
        eq(r.status, 200, "instance %d status" % i)
        check(r.body == want, "instance %d: body differs from the upstream's" % i)
    eq(C.up.count(r"\.zip$"), 2, "upstream requests: the killed one and the takeover")
    logs = ""
    for d in ds[1:]:
        with open(d.log_path) as f:
            logs += f.read()
    check("the instance that held its fetch is gone" in logs, "no takeover in the logs")
    eq(sum(metric(d, "goproxyd_fleet_takeovers_total") for d in ds[1:]), 1, "takeovers")
    with open(os.path.join(cache, path), "rb") as f:
        check(f.read() == want, "cached zip differs")


def test_stopped_holder_given_up():
    """A holder that shows no progress (SIGSTOPped) for twice -stallTimeout
    is given up on: the waiting instance fetches the file itself."""
    C.up.reset()
    path = _zip_path()
    cache = os.path.join(D.newdir("sigstop"), "cache")
    ds = fleet(2, cache, extra=["-stallTimeout", "1s"])
    C.up.set_rules({"\\.zip$": {"stall_after_bytes": [64, 60], "times": 1}})
    out = [None] * 2
    t0 = threading.Thread(target=_concurrent_get, args=(ds[0].port, path, out, 0))
    t0.start()
    deadline = time.time() + 10
    while C.up.stalling() == 0 and time.time() < deadline:
        time.sleep(0.02)
    check(C.up.stalling() == 1, "the first fetch never reached the upstream")
    os.kill(ds[0].proc.pid, signal.SIGSTOP)
    try:
        t0_wait = time.time()
        _concurrent_get(ds[1].port, path, out, 1)
        waited = time.time() - t0_wait
        asked = C.up.count(r"\.zip$")
    finally:
        os.kill(ds[0].proc.pid, signal.SIGCONT)
    C.up.release_stalls()
    t0.join(30)
    r = out[1]
    check(not isinstance(r, Exception), "waiting instance: %s" % r)
    eq(r.status, 200, "waiting instance status")
    check(r.body == C.info["files"][path], "waiting instance: body differs")
    check(waited >= 1.5, "the waiter fetched after only %.1f s" % waited)
    # (once continued, the holder's own stalled transfer is retried too)
    eq(asked, 2, "upstream requests: the stopped holder's and the waiter's")
    eq(metric(ds[1], "goproxyd_fleet_takeovers_total"), 1, "takeovers")
    with open(ds[1].log_path) as f:
        check("shows no progress" in f.read(), "no give-up line in the waiter's log")


def test_clean_exits():
    D.stop_all()
    check_clean_exits(D.exits)


def main(argv):
    return R.main(setup, [test_cold_run_one_fetch_per_file, test_waiters_do_not_fetch,
                          test_notfound_shared_with_waiters, test_sigkill_holder_another_completes,
                          test_stopped_holder_given_up, test_clean_exits], argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

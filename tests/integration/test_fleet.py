#!/usr/bin/env python3
"""A fleet on one shared cache directory: three goproxyd instances behind
nginx (round robin), one upstream fetch per file among them, and a fetch
taken over when the instance holding it is SIGKILLed.

Every case runs twice: on a local directory the instances share, and on
a CephFS file system where each instance has a ceph-fuse mount of its own
(three clients of the metadata server, as three machines would be: their
fetch locks are CephFS's, granted by the metadata server, not one
kernel's).  The CephFS cluster (tests/lib/ceph.sh with CEPH_FS=1) is
started before the first CephFS case.

Run:  python3 tests/integration/test_fleet.py [NAME-SUBSTRING ...]
Env:  GOPROXYD=path/to/binary (default ./build/goproxyd), KEEP_TMP=1
Needs nginx, and ceph-mds and ceph-fuse besides test_s3.py's Ceph packages
(tests/deps.sh installs them).  Everything listens on 127.0.0.1.
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
CEPH_SH = os.path.join(os.path.dirname(HERE), "lib", "ceph.sh")
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
    mounts = None   # the CephFS mounts, one per instance, once started
    cephfs_error = None


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


def fleet(caches, extra=()):
    """One instance on each of caches (paths to one shared directory)."""
    return [D.start(C.up.url, extra=extra, cache=c, name="fleet%d" % i) for i, c in enumerate(caches)]


def local_dir(name, n):
    """n instances' paths to one directory on the local disk."""
    return [os.path.join(D.newdir(name), "cache")] * n


def start_cephfs():
    ceph = os.path.join(C.tmp, "ceph")

    def stop():
        D.stop_all()   # nobody may hold a file on the mounts
        subprocess.run(["bash", CEPH_SH, "stop", ceph], timeout=120)
    R.cleanups.append(stop)
    t0 = time.time()
    p = subprocess.run(["bash", CEPH_SH, "start", ceph], env=dict(os.environ, CEPH_FS="1"),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=240)
    if p.returncode != 0:
        raise TestFailure("Ceph did not start: %s" % p.stdout.decode("utf-8", "replace")[-1500:])
    mounts = [os.path.join(C.tmp, "cephfs%d" % i) for i in range(3)]
    for m in mounts:
        mount_cephfs(m)
    C.mounts = mounts
    print("  ceph with CephFS and 3 ceph-fuse mounts in %.1f s" % (time.time() - t0), flush=True)


def mount_cephfs(where):
    """Another ceph-fuse mount of the file system; returns its pid."""
    ceph = os.path.join(C.tmp, "ceph")
    p = subprocess.run(["bash", CEPH_SH, "mount", ceph, where], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    if p.returncode != 0:
        raise TestFailure("ceph-fuse: %s" % p.stdout.decode("utf-8", "replace")[-800:])
    with open(os.path.join(ceph, "mounts")) as f:
        return int(f.read().splitlines()[-1].split()[0])


def cephfs_dir(name, n):
    """n instances' paths to one CephFS directory, each through a mount
    of its own."""
    if C.cephfs_error:
        raise TestFailure("CephFS did not start (first failure above): %s" % C.cephfs_error)
    if C.mounts is None:
        try:
            start_cephfs()
        except TestFailure as e:
            C.cephfs_error = str(e)[:200]
            raise
    d = "%s-%d" % (name, free_port())   # unique within the run
    os.makedirs(os.path.join(C.mounts[0], d))
    return [os.path.join(C.mounts[i % len(C.mounts)], d, "cache") for i in range(n)]


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

def cold_run_one_fetch_per_file(where):
    """Three instances, one directory, nginx round robin: three go clients
    at once, on a cold cache, make one upstream request per file."""
    C.up.reset()
    caches = where("shared", 3)
    cache = caches[0]
    ds = fleet(caches)
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


def _start_holder(d, path, out):
    """A client asking d for path (its answer in out[0]), once d's fetch
    is inside a stall at the upstream (the caller set the rule)."""
    t = threading.Thread(target=_concurrent_get, args=(d.port, path, out, 0))
    t.start()
    deadline = time.time() + 10
    while C.up.stalling() == 0 and time.time() < deadline:
        time.sleep(0.02)
    check(C.up.stalling() == 1, "the first fetch never reached the upstream")
    return t


def _other_file(n, ext):
    """The path and content of the nth required module's file."""
    m, v = mkmodules.APP_GO_MOD_REQUIRES[n]
    path = mkmodules.rel(m, v, ext)
    return path, C.info["files"][path]


def _concurrent_get(port, path, out, i, done=None):
    try:
        out[i] = get(port, "/" + path, timeout=90)
    except Exception as e:  # the killed instance's client
        out[i] = e
    if done is not None:
        done[i] = time.time()


def waiters_do_not_fetch(where):
    """While one instance fetches a file, the others asking for it wait for
    its publish: one upstream request, three identical answers."""
    C.up.reset()
    path = _zip_path()
    caches = where("waiters", 3)
    cache = caches[0]
    ds = fleet(caches)
    C.up.set_rules({"\\.zip$": {"stall_after_bytes": [64, 2]}})
    out = [None] * 3
    ths = [_start_holder(ds[0], path, out)]
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


def notfound_shared_with_waiters(where):
    """A 404 that the holder got is the waiters' answer too."""
    C.up.reset()
    caches = where("notfound", 2)
    cache = caches[0]
    ds = fleet(caches)
    m, _ = mkmodules.APP_GO_MOD_REQUIRES[0]
    path = mkmodules.rel(m, "v1.9.9", "mod")
    C.up.set_rules({"v1\\.9\\.9": {"stall_before_headers": 1.5, "status": 404,
                                   "body": "not found: no such version"}})
    out = [None] * 2
    t0 = _start_holder(ds[0], path, out)
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


def sigkill_holder_another_completes(where):
    """SIGKILL the instance holding a fetch: its lock goes with it (the
    kernel closes its files; on CephFS its mount tells the metadata server),
    and an instance waiting for the file fetches it and answers its client."""
    C.up.reset()
    path = _zip_path()
    caches = where("sigkill", 3)
    cache = caches[0]
    ds = fleet(caches)
    # the first request stalls mid-body for up to 60 s; the next one is quick
    C.up.set_rules({"\\.zip$": {"stall_after_bytes": [64, 60], "times": 1}})
    out = [None] * 3
    ths = [_start_holder(ds[0], path, out)]
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


def stopped_holder_given_up(where):
    """A holder that shows no progress (SIGSTOPped) for twice -stallTimeout
    is given up on: the waiting instance fetches the file itself."""
    C.up.reset()
    path = _zip_path()
    ds = fleet(where("sigstop", 2), extra=["-stallTimeout", "1s"])
    C.up.set_rules({"\\.zip$": {"stall_after_bytes": [64, 60], "times": 1}})
    out = [None] * 2
    t0 = _start_holder(ds[0], path, out)
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


def test_cephfs_machine_death():
    """The machine holding a fetch dies: its ceph-fuse is SIGKILLed, then
    its instance, so nothing tells the metadata server.  The dead client's
    capabilities and lock hold until the server evicts its session
    (session_timeout: 30 s here, 60 s by default); then a surviving
    instance's client waiting for that file gets it, fetched once more.
    Meanwhile the survivor answers hits of files it wrote itself; its
    misses wait with the lock (docs/deploying.md, "CephFS")."""
    C.up.reset()
    caches = cephfs_dir("death", 2)
    doomed = os.path.join(C.tmp, "cephfs-doomed")
    fuse_pid = mount_cephfs(doomed)
    caches[0] = os.path.join(doomed, os.path.relpath(caches[0], C.mounts[0]))
    ds = fleet(caches)
    hit, want_hit = _other_file(1, "mod")
    eq(get(ds[1].port, "/" + hit).status, 200, "the survivor's own file")
    path = _zip_path()
    C.up.set_rules({"\\.zip$": {"stall_after_bytes": [64, 120], "times": 1}})
    out = [None] * 3
    done = [None] * 3   # when each client was answered
    ths = [_start_holder(ds[0], path, out)]
    ths.append(threading.Thread(target=_concurrent_get, args=(ds[1].port, path, out, 1, done)))
    ths[1].start()
    time.sleep(1.0)
    eq(C.up.count(r"\.zip$"), 1, "upstream requests while the holder lives")
    os.kill(fuse_pid, signal.SIGKILL)
    ds[0].kill9()
    D.forget(ds[0])
    died = time.time()
    miss, want_miss = _other_file(2, "mod")
    ths.append(threading.Thread(target=_concurrent_get, args=(ds[1].port, miss, out, 2, done)))
    ths[2].start()
    t0 = time.time()
    r = get(ds[1].port, "/" + hit, timeout=20)
    hit_took = time.time() - t0
    eq(r.status, 200, "a hit after the death")
    check(r.body == want_hit, "a hit after the death: body differs")
    check(ths[1].is_alive(), "the waiter was answered before the hit")
    for t in ths[1:]:
        t.join(150)
    C.up.release_stalls()
    ths[0].join(30)
    r = out[1]
    check(not isinstance(r, Exception), "the waiting client: %s" % r)
    eq(r.status, 200, "the waiting client's status")
    check(r.body == C.info["files"][path], "the waiting client: body differs")
    check(not isinstance(out[2], Exception), "the miss: %s" % out[2])
    eq(out[2].status, 200, "the miss's status")
    check(out[2].body == want_miss, "the miss: body differs")
    eq(C.up.count(r"\.zip$"), 2, "upstream requests: the dead one and the takeover")
    eq(metric(ds[1], "goproxyd_fleet_takeovers_total"), 1, "takeovers")
    print("  after the death: the waiting client answered in %.1f s, a miss in %.1f s, a hit in %.2f s"
          % (done[1] - died, done[2] - died, hit_took), flush=True)


def test_clean_exits():
    D.stop_all()
    check_clean_exits(D.exits)


CASES = [cold_run_one_fetch_per_file, waiters_do_not_fetch, notfound_shared_with_waiters,
         sigkill_holder_another_completes, stopped_holder_given_up]


def variant(case, prefix, where):
    def test():
        case(where)
    test.__name__ = "test_%s_%s" % (prefix, case.__name__)
    test.__doc__ = case.__doc__
    return test


def main(argv):
    tests = [variant(c, "local", local_dir) for c in CASES]
    tests += [variant(c, "cephfs", cephfs_dir) for c in CASES]
    return R.main(setup, tests + [test_cephfs_machine_death, test_clean_exits], argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

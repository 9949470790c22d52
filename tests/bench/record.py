#!/usr/bin/env python3
"""Record the upstream request sequence of go commands (stdlib only).

    record.py [--modules 50] [--delay 0.1] [--goproxyd BIN [--flags '...']]
              [--cmd NAME ...] [--full]

Generates the benchmark graph (mkgraph.py) in a temp dir, serves it with
tests/lib/fakeupstream.py answering every request DELAY seconds late, and
runs each named go command (Debian's Go 1.19, GOSUMDB=off) on a fresh
GOMODCACHE, directly against the upstream, or through goproxyd started
with BIN and FLAGS.  For each command it prints the wall time, the
upstream requests by kind (.mod, .info, .zip, list, @latest) with the time
of the first and last of each kind, and the most requests answered at once;
--full also prints every request with its time.  Not part of make check:
this is how docs/design.md's "Warming" records were taken.

Commands: download-all (go mod download all), build (go build ./...),
list-m-all (go list -m all), get-latest (go get M@latest in a module that
requires nothing), tidy (go mod tidy).
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from fakeupstream import FakeUpstream  # noqa: E402

COMMANDS = {
    "download-all": ["go", "mod", "download", "all"],
    "build": ["go", "build", "./..."],
    "list-m-all": ["go", "list", "-m", "all"],
    "get-latest": ["go", "get", "GETTARGET@latest"],
    "tidy": ["go", "mod", "tidy"],
}


def go_env(base, goproxy):
    env = {k: os.environ[k] for k in ("PATH", "LANG", "TMPDIR") if k in os.environ}
    env.update({
        "HOME": os.path.join(base, "home"), "GOPATH": os.path.join(base, "gopath"),
        "GOMODCACHE": os.path.join(base, "gomodcache"), "GOCACHE": os.path.join(base, "gocache"),
        "GOENV": "off", "GOPROXY": goproxy, "GOSUMDB": "off", "GOFLAGS": "-mod=mod -modcacherw",
        "GONOPROXY": "", "GONOSUMDB": "", "GOPRIVATE": "", "GO111MODULE": "on",
        "GOTOOLCHAIN": "local", "CGO_ENABLED": "0",
    })
    return env


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_goproxyd(binary, flags, tmp, upstream):
    port = free_port()
    cache = tempfile.mkdtemp(prefix="cache-", dir=tmp)
    argv = [binary, "-listen", "127.0.0.1:%d" % port, "-cacheDir", cache, "-proxy", upstream,
            "-sumdb", "off"] + flags
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "gp.log"), "a"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=1).read()
            return p, "http://127.0.0.1:%d" % port
        except OSError:
            time.sleep(0.05)
    p.kill()
    raise RuntimeError("goproxyd did not start")


def kind(path):
    for k in (".mod", ".info", ".zip"):
        if path.endswith(k):
            return k
    return "list" if path.endswith("/@v/list") else "@latest" if path.endswith("/@latest") else "other"


def summarize(log, wall, name, via):
    print("== %s via %s: %.2f s, %d upstream requests" % (name, via, wall, len(log)))
    by = {}
    for t, p in log:
        by.setdefault(kind(p), []).append(t)
    for k in sorted(by, key=lambda k: by[k][0]):
        ts = by[k]
        print("   %-8s %3d  first %6.2f s  last %6.2f s" % (k, len(ts), ts[0], ts[-1]))
    # requests in order, run-length encoded by kind
    runs, last = [], None
    for _, p in log:
        k = kind(p)
        if k == last:
            runs[-1][1] += 1
        else:
            runs.append([k, 1])
            last = k
    print("   order: " + " ".join("%s×%d" % (k, n) for k, n in runs))


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--modules", type=int, default=50)
    ap.add_argument("--delay", type=float, default=0.1)
    ap.add_argument("--goproxyd")
    ap.add_argument("--flags", default="")
    ap.add_argument("--cmd", action="append")
    ap.add_argument("--full", action="store_true")
    a = ap.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="goproxyd-record-")
    gp = None
    up = None
    try:
        updir, appdir = os.path.join(tmp, "up"), os.path.join(tmp, "app")
        subprocess.run([sys.executable, os.path.join(HERE, "mkgraph.py"), updir, appdir,
                        "--modules", str(a.modules), "--huge-mib", "0.01"],
                       stdout=subprocess.DEVNULL, check=True, timeout=300)
        up = FakeUpstream(updir).start()
        if a.delay > 0:
            up.set_rules({".": {"stall_before_headers": a.delay}})
        target = "example.com/graph/m%02d" % (a.modules - 1)
        for name in a.cmd or list(COMMANDS):
            if a.goproxyd:
                gp, goproxy = start_goproxyd(a.goproxyd, a.flags.split(), tmp, up.url)
            else:
                goproxy = up.url
            base = tempfile.mkdtemp(prefix=name + "-", dir=tmp)
            work = os.path.join(base, "app")
            if name == "get-latest":
                os.makedirs(work)
                with open(os.path.join(work, "go.mod"), "w") as f:
                    f.write("module example.com/getapp\n\ngo 1.19\n")
            else:
                shutil.copytree(appdir, work)
            argv = [x.replace("GETTARGET", target) for x in COMMANDS[name]]
            rules = up.state.rules
            up.reset()
            up.state.rules = rules
            t = time.monotonic()
            p = subprocess.run(argv, cwd=work, env=go_env(base, goproxy), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=600)
            wall = time.monotonic() - t
            if p.returncode != 0:
                print("%s failed:\n%s" % (name, p.stdout.decode()[-2000:]))
            time.sleep(0.5 + a.delay)   # warm fetches still in flight land in the log
            log = up.request_log()
            summarize(log, wall, name, "goproxyd " + a.flags if a.goproxyd else "direct")
            if a.full:
                for t, path in log:
                    print("   %7.3f %s" % (t, path))
            if gp:
                gp.terminate()
                gp.wait(15)
                gp = None
            sys.stdout.flush()
    finally:
        if gp:
            gp.kill()
            gp.wait()
        if up:
            up.stop(close_connections=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

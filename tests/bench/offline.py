#!/usr/bin/env python3
"""The offline workload of the benchmark (issue #17), stdlib only.

  * prefetch: `goproxyd prefetch go.sum` into an empty cache against
    `go mod download` into an empty GOMODCACHE, from the same go.sum, both
    through the same upstream delayed 100 ms per answer (BENCH_DELAY_MS),
    alternating round after round.  Target: prefetch >= 3x faster.
  * export/import: `goproxyd export` of the prefetched cache to an
    uncompressed tar and `goproxyd import` of it into an empty cache
    (-sumdb off, -gosum), in MiB/s, against `tar -cf` / `tar -xf` of the
    same tree.

bench.py calls run() after workload 5 and renders markdown(); on its own,

    python3 tests/bench/offline.py [--modules 10] [--rounds 1]

generates a small graph in a temp dir and prints the results (a smoke
check, not a measurement).  Everything listens on 127.0.0.1; every wait is
bounded; every process started here is stopped.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
import mkmodules  # noqa: E402  (h1: hashes for the -gosum of the import)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MIB = 1024 * 1024
DELAY_MS = int(os.environ.get("BENCH_DELAY_MS", "100"))


def _go_env(base, goproxy):
    os.makedirs(os.path.join(base, "home"), exist_ok=True)
    env = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "TMPDIR") if k in os.environ}
    env.update({
        "HOME": os.path.join(base, "home"), "GOPATH": os.path.join(base, "gopath"),
        "GOMODCACHE": os.path.join(base, "gomodcache"), "GOCACHE": os.path.join(base, "gocache"),
        "GOENV": "off", "GOPROXY": goproxy, "GOSUMDB": "off", "GOFLAGS": "-mod=mod -modcacherw",
        "GONOPROXY": "", "GONOSUMDB": "", "GOPRIVATE": "", "GO111MODULE": "on",
        "GOTOOLCHAIN": "local", "GOTELEMETRY": "off", "CGO_ENABLED": "0",
    })
    return env


def _rmtree(p):
    subprocess.run(["chmod", "-R", "u+w", p], stderr=subprocess.DEVNULL, timeout=120)
    shutil.rmtree(p, ignore_errors=True)


def _go_download(base, appdir, goproxy):
    """Wall time of `go mod download` in a fresh GOMODCACHE, app with its go.sum."""
    if os.path.exists(base):
        _rmtree(base)
    env = _go_env(base, goproxy)
    app = os.path.join(base, "app")
    shutil.copytree(appdir, app)
    t = time.monotonic()
    p = subprocess.run(["go", "mod", "download"], cwd=app, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=900)
    wall = time.monotonic() - t
    if p.returncode != 0:
        raise RuntimeError("go mod download failed:\n%s" % p.stdout.decode()[-2000:])
    return wall, app


def _start_upstream(tmp, updir, delay_ms):
    pf = os.path.join(tmp, "offline-upstream-%d.port" % delay_ms)
    if os.path.exists(pf):
        os.unlink(pf)
    log = open(os.path.join(tmp, "offline-upstream-%d.log" % delay_ms), "wb")
    p = subprocess.Popen([sys.executable, os.path.join(HERE, "upstream.py"), updir, "--port-file", pf,
                          "--delay-ms", str(delay_ms)], stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True)
    log.close()
    deadline = time.monotonic() + 15
    while not os.path.exists(pf):
        if time.monotonic() > deadline or p.poll() is not None:
            p.kill()
            raise RuntimeError("offline upstream did not start")
        time.sleep(0.05)
    with open(pf) as f:
        return p, "http://127.0.0.1:%d" % int(f.read())


def _stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _timed(argv, what, timeout=900):
    t = time.monotonic()
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    wall = time.monotonic() - t
    if p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s %s" % (what, p.returncode, p.stdout.decode()[-1500:],
                                                       p.stderr.decode()[-1500:]))
    return wall, p.stdout.decode()


def _tree_bytes(d):
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(d) for f in fs)


BIG = "example.com/bench/large"


def _with_big(tmp, cache, gosum):
    """gosum plus the h1: lines of BIG, for import's -gosum."""
    vdir = os.path.join(cache, BIG, "@v")
    with open(os.path.join(vdir, "v1.0.0.zip"), "rb") as f:
        zh = mkmodules.zip_hash(f.read())
    with open(os.path.join(vdir, "v1.0.0.mod"), "rb") as f:
        mh = mkmodules.gomod_hash(f.read())
    out = os.path.join(tmp, "offline-import.sum")
    with open(gosum) as f, open(out, "w") as g:
        g.write(f.read() + "%s v1.0.0 %s\n%s v1.0.0/go.mod %s\n" % (BIG, zh, BIG, mh))
    return out


def one_round(tmp, binary, appdir, gosum, up_url, r):
    cache = os.path.join(tmp, "offline-cache-%d" % r)
    wall_p, out = _timed([binary, "prefetch", "-cacheDir", cache, "-proxy", up_url, "-sumdb", "off",
                          gosum], "prefetch")
    wall_g, _ = _go_download(os.path.join(tmp, "offline-go-%d" % r), appdir, up_url)
    _rmtree(os.path.join(tmp, "offline-go-%d" % r))
    # export/import move bytes: add the large zip of the hit workloads (untimed)
    _timed([binary, "prefetch", "-cacheDir", cache, "-proxy", up_url, "-sumdb", "off",
            BIG + "@v1.0.0"], "prefetch " + BIG)
    gosum = _with_big(tmp, cache, gosum)
    size = _tree_bytes(cache)
    bundle = os.path.join(tmp, "offline-%d.tar" % r)
    wall_e, _ = _timed([binary, "export", "-cacheDir", cache, "-sumdb", "off", "-o", bundle], "export")
    far = os.path.join(tmp, "offline-far-%d" % r)
    wall_i, _ = _timed([binary, "import", "-cacheDir", far, "-sumdb", "off", "-gosum", gosum, bundle],
                       "import")
    ref = os.path.join(tmp, "offline-ref-%d.tar" % r)
    wall_tc, _ = _timed(["tar", "-cf", ref, "-C", cache, "."], "tar -cf")
    refdir = os.path.join(tmp, "offline-refdir-%d" % r)
    os.makedirs(refdir)
    wall_tx, _ = _timed(["tar", "-xf", ref, "-C", refdir], "tar -xf")
    for p in (cache, far, refdir):
        _rmtree(p)
    for p in (bundle, ref):
        os.unlink(p)
    return {"wall_prefetch": wall_p, "wall_go": wall_g, "summary": out.strip().splitlines()[-1],
            "bytes": size, "wall_export": wall_e, "wall_import": wall_i,
            "wall_tar_c": wall_tc, "wall_tar_x": wall_tx}


def run(tmp, binary, updir, appdir, rounds, log=print):
    """Returns one dict per round (see one_round)."""
    up0, url0 = _start_upstream(tmp, updir, 0)
    try:
        # the go.sum both sides start from: go's own, from an undelayed run
        _, app = _go_download(os.path.join(tmp, "offline-gosum"), appdir, url0)
        sumapp = os.path.join(tmp, "offline-app")
        if os.path.exists(sumapp):
            shutil.rmtree(sumapp)
        shutil.copytree(app, sumapp)
        _rmtree(os.path.join(tmp, "offline-gosum"))
    finally:
        _stop(up0)
    gosum = os.path.join(sumapp, "go.sum")
    up, url = _start_upstream(tmp, updir, DELAY_MS)
    out = []
    try:
        for r in range(rounds):
            x = one_round(tmp, binary, sumapp, gosum, url, r)
            out.append(x)
            log("round %d offline: prefetch %.2fs, go mod download %.2fs (%.1fx); export %.1f MiB/s "
                "(tar %.1f), import %.1f MiB/s (tar -x %.1f)"
                % (r + 1, x["wall_prefetch"], x["wall_go"], x["wall_go"] / x["wall_prefetch"],
                   x["bytes"] / MIB / x["wall_export"], x["bytes"] / MIB / x["wall_tar_c"],
                   x["bytes"] / MIB / x["wall_import"], x["bytes"] / MIB / x["wall_tar_x"]))
    finally:
        _stop(up)
    return out


def _med(xs):
    xs = sorted(xs)
    n = len(xs)
    return (xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2) if n else float("nan")


def speedup(rows):
    return _med([x["wall_go"] / x["wall_prefetch"] for x in rows])


def markdown(rows):
    if not rows:
        return ""
    mb = [x["bytes"] / MIB for x in rows]
    out = ["### Offline: prefetch, export, import (issue #17)\n",
           "Upstream delayed %d ms per answer. Each round: `goproxyd prefetch go.sum` into an empty "
           "cache, then `go mod download` into an empty GOMODCACHE from the same go.sum; then "
           "`goproxyd export` of that cache to a plain tar and `goproxyd import` of it into an empty "
           "cache (`-sumdb off -gosum`), against `tar -cf`/`tar -xf` of the same tree. Medians over "
           "%d rounds.\n" % (DELAY_MS, len(rows)),
           "| prefetch s | go mod download s | speed-up | tree MiB | export MiB/s | tar -c MiB/s | "
           "import MiB/s | tar -x MiB/s |",
           "|---|---|---|---|---|---|---|---|",
           "| %.2f | %.2f | %.1f× | %.1f | %.1f | %.1f | %.1f | %.1f |" % (
               _med([x["wall_prefetch"] for x in rows]), _med([x["wall_go"] for x in rows]), speedup(rows),
               _med(mb), _med([m / x["wall_export"] for m, x in zip(mb, rows)]),
               _med([m / x["wall_tar_c"] for m, x in zip(mb, rows)]),
               _med([m / x["wall_import"] for m, x in zip(mb, rows)]),
               _med([m / x["wall_tar_x"] for m, x in zip(mb, rows)])),
           ""]
    return "\n".join(out) + "\n"


def main(argv):
    ap = argparse.ArgumentParser(description="offline workload smoke run")
    ap.add_argument("--modules", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=1)
    a = ap.parse_args(argv)
    binary = os.path.abspath(os.environ.get("GOPROXYD", os.path.join(ROOT, "build", "goproxyd")))
    tmp = tempfile.mkdtemp(prefix="goproxyd-bench-offline-")
    try:
        updir, appdir = os.path.join(tmp, "upstream"), os.path.join(tmp, "app")
        subprocess.run([sys.executable, os.path.join(HERE, "mkgraph.py"), updir, appdir,
                        "--modules", str(a.modules), "--huge-mib", "1"],
                       stdout=subprocess.DEVNULL, check=True, timeout=300)
        rows = run(tmp, binary, updir, appdir, a.rounds)
        print(markdown(rows))
        print(json.dumps(rows, indent=1))
    finally:
        _rmtree(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""Integration tests for air-gapped and offline sites (issue #17):
`goproxyd prefetch`, `goproxyd export`, `goproxyd import`, and serving the
result with -proxy off to the real go command.

Run:  python3 tests/integration/test_offline.py [NAME-SUBSTRING ...]
Env:  GOPROXYD=path/to/binary (default ./build/goproxyd)
      KEEP_TMP=1 (keep temp dirs and daemon logs)
Prints "ok NAME (t)" / "FAIL NAME: reason" per test; the last line is
"N passed, N failed"; exit 1 if any test failed.  Standard library only;
only 127.0.0.1 is contacted (fake upstream: tests/lib/fakeupstream.py, fake
checksum database: tests/lib/fakesumdb.py).
"""

import base64
import io
import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import fakesumdb  # noqa: E402
import fakeupstream  # noqa: E402
import mkmodules  # noqa: E402
from harness import (Daemon, Runner, TestFailure, all_files, check, check_no_sanitizer,  # noqa: E402
                     daemon_binary, eq, get, make_tmp, read, stops_clean, timeout, tmp_leftovers)

LIBA = "example.com/liba"
LIBB = "example.com/libb"
MIXED = "example.com/MixedCase/lib"
LIBC = "example.com/libc/v2"
LIBD = "example.com/libd"
GO_TIMEOUT = 180
CMD_TIMEOUT = 120

R = Runner(default_timeout=240)


class Ctx:
    tmp = None
    tree = None
    info = None
    up = None
    db = None
    daemons = []
    n = 0


C = Ctx()


# =================================================================== setup

def setup():
    C.tmp = make_tmp("goproxyd-offline-", R)
    C.tree = os.path.join(C.tmp, "tree")
    C.info = mkmodules.generate(C.tree)
    C.up = fakeupstream.FakeUpstream(C.tree).start()
    R.cleanups.append(C.up.stop)
    C.db = fakesumdb.FakeSumDB()
    C.db.add_proxy_dir(C.tree)
    C.db.start()
    R.cleanups.append(C.db.stop)
    R.after_each.append(after_each)
    R.cleanups.append(stop_all)


def stop_all():
    while C.daemons:
        C.daemons.pop().stop(timeout=5)


def after_each():
    stop_all()
    C.up.reset()
    C.db.set_mode(None)


checked = stops_clean(C.daemons)


def newdir(name):
    C.n += 1
    d = os.path.join(C.tmp, "t%02d-%s" % (C.n, name))
    os.makedirs(d)
    return d


def sumdb_spec():
    return "%s=%s" % (C.db.vkey, C.db.url)


def offline_daemon(cache):
    d = Daemon(cache, "off", ["-sumdb", "off"])
    C.daemons.append(d)
    return d.start()


def goproxyd(args, stdin=None, cwd=None, timeout_s=CMD_TIMEOUT):
    """(status, stdout, stderr) of a goproxyd subcommand."""
    p = subprocess.run([daemon_binary()] + args, input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, cwd=cwd, timeout=timeout_s)
    out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    check_no_sanitizer(err, "goproxyd %s stderr" % args[0])
    return p.returncode, out, err


def prefetch(cache, args, proxy=None, sumdb=None, extra=(), stdin=None):
    return goproxyd(["prefetch", "-cacheDir", cache, "-proxy", proxy or C.up.url,
                     "-sumdb", sumdb or sumdb_spec()] + list(extra) + list(args), stdin=stdin)


def summary(out):
    m = re.search(r"^fetched (\d+), cached (\d+), failed (\d+)$", out, re.M)
    check(m is not None, "no summary line in %r" % out[-600:])
    return tuple(int(x) for x in m.groups())


def cfile(cache, module, version=None, kind="zip"):
    return os.path.join(cache, mkmodules.rel(module, version, kind))


def tree(module, version=None, kind="zip"):
    return C.info["files"][mkmodules.rel(module, version, kind)]


def write_gosum(path, keys=None):
    lines = ["%s %s\n" % (k, h) for k, h in sorted(C.info["sums"].items())
             if keys is None or k in keys]
    with open(path, "w") as f:
        f.write("".join(lines))
    return path


def app_dir(d):
    return mkmodules.write_app(os.path.join(d, "app"))


def go(args, cwd, env):
    rc, out = mkmodules.run_go(args, cwd, env, GO_TIMEOUT)
    check(rc == 0, "go %s failed (%s): %s" % (" ".join(args), rc, out[-1500:]))
    return out


def client_flow(d, work):
    """The whole client side against a mirror that may not fetch: download,
    build, versions, @latest, a mixed-case module path."""
    env = mkmodules.go_env(work, d.url)
    app = app_dir(work)
    go(["mod", "download"], app, env)
    go(["build", "-o", os.path.join(work, "app.bin"), "."], app, env)
    out = subprocess.run([os.path.join(work, "app.bin")], stdout=subprocess.PIPE,
                         timeout=30).stdout.decode()
    check("hello from liba v1.1.0" in out and "MixedCase" in out, "app printed %r" % out)
    out = go(["list", "-m", "-versions", LIBA], app, env)
    eq(out.split(), [LIBA, "v1.0.0", "v1.1.0"], "go list -m -versions")
    out = go(["list", "-m", "-versions", MIXED], app, env)
    eq(out.split(), [MIXED, "v1.0.0"], "go list -m -versions (mixed case)")
    out = go(["list", "-m", LIBA + "@latest"], app, env)
    eq(out.split(), [LIBA, "v1.1.0"], "go list -m liba@latest")
    go(["get", LIBA + "@latest"], app, env)
    r = get(d.port, "/%s/@latest" % mkmodules.escape(MIXED))
    eq(r.status, 200, "@latest of the mixed-case module")
    eq(json.loads(r.body)["Version"], "v1.0.0", "@latest version of the mixed-case module")


# =================================================================== prefetch

@timeout(300)
@checked
def test_prefetch_gomod_graph_then_offline_go():
    base = newdir("graph")
    cache = os.path.join(base, "cache")
    app = app_dir(base)
    rc, out, err = prefetch(cache, [os.path.join(app, "go.mod")])
    eq(rc, 0, "prefetch status (out %r, err %r)" % (out[-500:], err[-500:]))
    fetched, cached, failed = summary(out)
    eq(failed, 0, "failed")
    check(fetched > 0 and cached == 0, "summary %r" % out)
    # liba v1.0.0 is only reached through libb's go.mod: the graph was followed.
    for kind in ("info", "mod", "zip"):
        check(os.path.isfile(cfile(cache, LIBA, "v1.0.0", kind)), "liba v1.0.0 .%s not fetched" % kind)
    for m in (LIBA, LIBB, MIXED, LIBC, LIBD):
        check(os.path.isfile(cfile(cache, m, kind="list")), "%s @v/list not stored" % m)
        check(os.path.isfile(cfile(cache, m, kind="latest")), "%s @latest not stored" % m)
    # verified downloads leave their checksum-database proofs in the cache
    check(os.path.isdir(os.path.join(cache, "sumdb", fakesumdb.DEFAULT_NAME, "lookup")),
          "no lookups cached")
    eq(tmp_leftovers(cache), [], "temp files left")
    # a second run fetches nothing
    rc, out, _ = prefetch(cache, [os.path.join(app, "go.mod")])
    eq(rc, 0, "second prefetch status")
    f2, c2, x2 = summary(out)
    eq((f2, x2), (0, 0), "second run fetched/failed")
    eq(c2, fetched, "second run: everything cached")
    C.up.stop()   # nothing reaches upstream from here on
    try:
        client_flow(offline_daemon(cache), newdir("graph-client"))
    finally:
        C.up = fakeupstream.FakeUpstream(C.tree, port=int(C.up.url.rsplit(":", 1)[1])).start()


@checked
def test_prefetch_gosum_stdin_and_module_args():
    base = newdir("args")
    cache = os.path.join(base, "cache")
    gs = write_gosum(os.path.join(base, "go.sum"),
                     {"%s v1.0.0" % MIXED, "%s v1.0.0/go.mod" % MIXED, "%s v1.0.0/go.mod" % LIBA})
    rc, out, err = prefetch(cache, [gs, LIBC + "@latest", LIBD + "@v1.1.0", "-"],
                            stdin=("example.com/app\n%s v1.0.0\n" % LIBB).encode())
    eq(rc, 0, "prefetch status (out %r, err %r)" % (out[-500:], err[-500:]))
    for m, v, kinds in ((MIXED, "v1.0.0", ("info", "mod", "zip")), (LIBC, "v2.0.0", ("info", "mod", "zip")),
                        (LIBD, "v1.1.0", ("info", "mod", "zip")), (LIBB, "v1.0.0", ("info", "mod", "zip")),
                        (LIBA, "v1.0.0", ("mod",))):
        for k in kinds:
            eq(read(cfile(cache, m, v, k)), tree(m, v, k), "%s@%s .%s" % (m, v, k))
    # a go.mod-only go.sum line fetches only the .mod
    check(not os.path.exists(cfile(cache, LIBA, "v1.0.0", "zip")), "liba zip fetched for a /go.mod line")
    check(os.path.isfile(cfile(cache, LIBA, kind="list")), "liba list not stored")
    # usage errors: no argument, a bad module@version
    rc, _, err = goproxyd(["prefetch", "-cacheDir", cache, "-proxy", C.up.url])
    eq(rc, 2, "status without arguments")
    rc, _, err = goproxyd(["prefetch", "-cacheDir", cache, "-proxy", C.up.url, "example.com/x@master"])
    eq(rc, 2, "status for module@branch")
    check("canonical" in err, "error for module@branch: %r" % err)


@checked
def test_prefetch_gosum_is_a_trust_anchor():
    base = newdir("anchor")
    cache = os.path.join(base, "cache")
    gs = write_gosum(os.path.join(base, "go.sum"),
                     {"%s v1.0.0" % LIBB, "%s v1.0.0/go.mod" % LIBB, "%s v1.1.0" % LIBA})
    bad = tampered_zip(LIBB, "v1.0.0")
    C.up.set_rules({"^" + re.escape("/" + mkmodules.rel(LIBB, "v1.0.0", "zip")) + "$":
                    {"body_b64": base64.b64encode(bad).decode()}})
    # no checksum database: only the go.sum stands between upstream and the cache
    rc, out, err = prefetch(cache, [gs], sumdb="off")
    eq(rc, 1, "status (out %r)" % out[-600:])
    check(re.search(r"^FAIL example.com/libb@v1.0.0 zip: .*checksum mismatch", out, re.M),
          "no FAIL line for the tampered zip: %r" % out)
    eq(summary(out)[2], 1, "failed count")
    check(not os.path.exists(cfile(cache, LIBB, "v1.0.0", "zip")), "tampered zip stored")
    eq(read(cfile(cache, LIBA, "v1.1.0", "zip")), tree(LIBA, "v1.1.0", "zip"), "liba zip")
    eq(tmp_leftovers(cache), [], "temp files left")


@checked
def test_prefetch_deny_and_a_serving_daemon():
    base = newdir("shared")
    cache = os.path.join(base, "cache")
    os.makedirs(cache)
    d = Daemon(cache, C.up.url, ["-sumdb", sumdb_spec()])
    C.daemons.append(d)
    d.start()
    # the daemon fetches some of the same files while prefetch runs
    import threading
    got = []
    th = threading.Thread(target=lambda: got.extend(
        get(d.port, "/" + mkmodules.rel(m, v, k)).status
        for m, v in mkmodules.APP_GO_MOD_REQUIRES for k in ("zip", "mod", "info")))
    th.start()
    rc, out, err = prefetch(cache, [os.path.join(app_dir(base), "go.mod"), mkmodules.PRIVATE_MODULE + "@v1.0.0"],
                            extra=["-deny", "example.com/private"])
    th.join(60)
    eq(rc, 1, "status with a -deny'd module (out %r)" % out[-600:])
    fails = [l for l in out.splitlines() if l.startswith("FAIL ")]
    check(fails and all(mkmodules.PRIVATE_MODULE in l and "-deny" in l for l in fails),
          "FAIL lines %r" % fails)
    eq(got, [200] * len(got), "daemon answers while prefetch ran")
    check(len(got) == 3 * len(mkmodules.APP_GO_MOD_REQUIRES), "reader finished")
    for m, v in mkmodules.APP_GO_MOD_REQUIRES:
        eq(read(cfile(cache, m, v, "zip")), tree(m, v, "zip"), "%s@%s zip" % (m, v))
    check(not os.path.exists(os.path.join(cache, mkmodules.escape(mkmodules.PRIVATE_MODULE))),
          "-deny'd module fetched")
    eq(tmp_leftovers(cache), [], "temp files left")


@timeout(120)
@checked
def test_prefetch_one_file_stalled():
    base = newdir("stall")
    cache = os.path.join(base, "cache")
    app = app_dir(base)
    C.up.set_rules({re.escape(mkmodules.rel(LIBC, "v2.0.0", "zip")) + "$": {"stall_before_headers": 60}})
    t0 = time.time()
    rc, out, err = prefetch(cache, [os.path.join(app, "go.mod")],
                            extra=["-stallTimeout", "2s"])
    C.up.release_stalls()
    eq(rc, 1, "status (out %r)" % out[-600:])
    check(time.time() - t0 < 60, "prefetch waited for the stall to end")
    fails = [l for l in out.splitlines() if l.startswith("FAIL ")]
    eq(len(fails), 1, "FAIL lines %r" % fails)
    check(fails[0].startswith("FAIL %s@v2.0.0 zip: " % LIBC), "FAIL line %r" % fails[0])
    eq(summary(out)[2], 1, "failed count")
    check(not os.path.exists(cfile(cache, LIBC, "v2.0.0", "zip")), "stalled zip stored")
    for m, v in mkmodules.APP_GO_MOD_REQUIRES:
        check(os.path.isfile(cfile(cache, m, v, "mod")), "%s@%s .mod missing" % (m, v))
        if m != LIBC:
            check(os.path.isfile(cfile(cache, m, v, "zip")), "%s@%s .zip missing" % (m, v))


def slow_rules():
    # every zip a second late: the run lasts long enough for progress lines
    return {r"\.zip$": {"stall_before_headers": 1.2}}


@timeout(120)
def test_prefetch_progress_on_a_pipe():
    base = newdir("pipe")
    app = app_dir(base)
    C.up.set_rules(slow_rules())
    rc, out, err = prefetch(os.path.join(base, "cache"), [os.path.join(app, "go.mod")],
                            extra=["-j", "1"])
    eq(rc, 0, "status (err %r)" % err[-400:])
    lines = [l for l in err.splitlines() if l.startswith("prefetch: ")]
    check(len(lines) >= 2, "want a progress line every few seconds and a last one: %r" % err)
    check("\r" not in err and "\033" not in err, "terminal codes on a pipe: %r" % err[:300])
    m = re.match(r"prefetch: (\d+)/(\d+) files, [\d.]+ (B|KiB|MiB), [\d.]+ (B|KiB|MiB)/s, "
                 r"(\d+:\d\d|--:--) left$", lines[-1])
    check(m is not None, "last progress line %r" % lines[-1])
    eq(m.group(1), m.group(2), "last line: files done = total")


@timeout(120)
def test_prefetch_progress_on_a_terminal():
    base = newdir("pty")
    app = app_dir(base)
    C.up.set_rules(slow_rules())
    master, slave = pty.openpty()
    args = [daemon_binary(), "prefetch", "-cacheDir", os.path.join(base, "cache"), "-proxy", C.up.url,
            "-sumdb", sumdb_spec(), "-j", "1", os.path.join(app, "go.mod")]
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    got = b""
    deadline = time.time() + 90
    try:
        while time.time() < deadline:
            r, _, _ = select.select([master], [], [], 0.5)
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                got += chunk
            elif p.poll() is not None:
                break
        out = p.communicate(timeout=30)[0].decode()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
    eq(p.returncode, 0, "status")
    text = got.decode("utf-8", "replace")
    redraws = text.count("\r")
    check(redraws >= 3, "want the bar redrawn in place (\\r), got %d: %r" % (redraws, text[:400]))
    check("[#" in text and "files" in text and "/s" in text and "left" in text, "bar %r" % text[-300:])
    check(re.search(r"\[#+\] (\d+)/\1 files", text), "no full bar at the end: %r" % text[-300:])
    check(summary(out)[2] == 0, "summary on stdout, not the terminal: %r" % out)


# =================================================================== offline serving

def tampered_zip(module, version):
    with zipfile.ZipFile(io.BytesIO(tree(module, version, "zip"))) as z:
        entries = [(i.filename, z.read(i)) for i in z.infolist()]
    for i, (n, data) in enumerate(entries):
        if not n.endswith("/go.mod") and data:
            b = bytearray(data)
            b[len(b) // 2] ^= 0x01
            entries[i] = (n, bytes(b))
            break
    return mkmodules.make_zip(entries)


@checked
def test_offline_list_and_latest_from_infos():
    base = newdir("seeded")
    cache = os.path.join(base, "cache")
    # a seeded cache: .info/.mod/.zip only, no list and no @latest
    for m, versions in C.info["modules"].items():
        for v in versions:
            for k in ("info", "mod", "zip"):
                p = cfile(cache, m, v, k)
                os.makedirs(os.path.dirname(p), exist_ok=True)
                with open(p, "wb") as f:
                    f.write(tree(m, v, k))
    d = offline_daemon(cache)
    for prefix in ("", "/cached-only"):
        r = get(d.port, prefix + "/%s/@latest" % mkmodules.escape(LIBA))
        eq(r.status, 200, "%s liba @latest (body %r)" % (prefix, r.body))
        eq(json.loads(r.body)["Version"], "v1.1.0", "liba @latest")
        # a release beats a later prerelease
        r = get(d.port, prefix + "/%s/@latest" % LIBD)
        eq(json.loads(r.body)["Version"], "v1.1.0", "libd @latest")
        r = get(d.port, prefix + "/%s/@v/list" % mkmodules.escape(MIXED))
        eq(r.body, b"v1.0.0\n", "mixed-case list")
        r = get(d.port, prefix + "/example.com/nosuch/@latest")
        eq(r.status, 404, "@latest of an uncached module")
    check(not os.path.exists(cfile(cache, LIBA, kind="latest")), "@latest written to the cache")
    client_flow(d, newdir("seeded-client"))


# =================================================================== export / import

def filled_cache(name):
    """A cache prefetched from the app's go.mod through the fake sumdb, so
    its lookups and tiles are cached too."""
    base = newdir(name)
    cache = os.path.join(base, "cache")
    rc, out, err = prefetch(cache, [os.path.join(app_dir(base), "go.mod")])
    eq(rc, 0, "prefetch status (%r %r)" % (out[-300:], err[-300:]))
    return base, cache


def export(cache, out, extra=(), gosums=()):
    return goproxyd(["export", "-cacheDir", cache, "-sumdb", sumdb_spec(), "-o", out]
                    + list(extra) + list(gosums))


def import_(cache, bundle, sumdb=None, extra=()):
    return goproxyd(["import", "-cacheDir", cache, "-sumdb", sumdb or C.db.vkey] + list(extra) + [bundle])


def module_files(cache):
    return {r: read(os.path.join(cache, r)) for r in all_files(cache)
            if not r.startswith("sumdb/")}


def bundle_names(path):
    if path.endswith(".zst"):   # Python's tarfile reads no zstd: ask tar
        p = subprocess.run(["tar", "--zstd", "-tf", path], stdout=subprocess.PIPE, timeout=60)
        eq(p.returncode, 0, "tar --zstd -tf status")
        return p.stdout.decode().splitlines()
    with tarfile.open(path) as t:
        return t.getnames()


def rewrite_bundle(src, dst, change):
    """Copies a bundle, with change(name, data) -> data applied to every
    entry (the manifest included)."""
    with tarfile.open(src) as t:
        entries = [(m.name, t.extractfile(m).read()) for m in t.getmembers()]
    with tarfile.open(dst, "w") as t:
        for name, data in entries:
            data = change(name, data)
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    return dst


def set_manifest(data, updates):
    m = json.loads(data)
    for f in m["files"]:
        if f["path"] in updates:
            f.update(updates[f["path"]])
    return json.dumps(m).encode()


def sha(data):
    import hashlib
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


@timeout(300)
@checked
def test_export_import_then_offline_go():
    base, cache = filled_cache("exp")
    for name in ("bundle.tar.zst", "bundle.tar.gz"):
        bundle = os.path.join(base, name)
        rc, out, err = export(cache, bundle)
        eq(rc, 0, "export %s status (%r)" % (name, err[-400:]))
        check(re.search(r"^exported \d+ files, \d+ bytes, to ", out, re.M), "export output %r" % out)
        names = bundle_names(bundle)
        eq(names[0], "goproxyd-manifest.json", "first entry")
        check(any("/lookup/" in n for n in names) and any("/tile/" in n for n in names),
              "no records or tiles in %r" % names[:20])
        check(not [n for n in names if ".goproxyd-tmp-" in n or "goproxyd-verified-tree" in n],
              "temp or state files exported")
        far = os.path.join(newdir("far-" + name.split(".")[-1]), "cache")
        rc, out, err = import_(far, bundle)
        eq(rc, 0, "import %s status (out %r err %r)" % (name, out[-600:], err[-300:]))
        check(re.search(r"^imported \d+, unchanged 0, failed 0, conflicts 0$", out, re.M), "import output %r" % out)
        eq(module_files(far), module_files(cache), "imported module files")
        check(os.listdir(os.path.join(far, "sumdb", fakesumdb.DEFAULT_NAME, "lookup")), "no proofs stored")
        eq(tmp_leftovers(far), [], "temp files left")
        # importing again changes nothing
        rc, out, _ = import_(far, bundle)
        eq(rc, 0, "second import status")
        check(re.search(r"^imported 0, unchanged \d+, failed 0, conflicts 0$", out, re.M), "second import %r" % out)
    client_flow(offline_daemon(far), newdir("exp-client"))


@checked
def test_export_selection():
    base, cache = filled_cache("sel")
    gs = write_gosum(os.path.join(base, "go.sum"), {"%s v1.0.0" % MIXED, "%s v1.0.0/go.mod" % MIXED})
    bundle = os.path.join(base, "mixed.tar")
    eq(export(cache, bundle, gosums=[gs])[0], 0, "export status")
    mods = sorted(n for n in bundle_names(bundle) if not n.startswith("sumdb/") and n != "goproxyd-manifest.json")
    esc = mkmodules.escape(MIXED)
    eq(mods, sorted(esc + s for s in ("/@latest", "/@v/list", "/@v/v1.0.0.info", "/@v/v1.0.0.mod", "/@v/v1.0.0.zip")),
       "files exported for a go.sum")
    lookups = [n for n in bundle_names(bundle) if "/lookup/" in n]
    eq(lookups, ["sumdb/%s/lookup/%s@v1.0.0" % (fakesumdb.DEFAULT_NAME, esc)], "records exported")
    bundle = os.path.join(base, "none.tar")
    eq(export(cache, bundle, extra=["-since", "2999-01-01"])[0], 0, "export -since status")
    eq(bundle_names(bundle), ["goproxyd-manifest.json"], "nothing is newer than 2999")
    eq(export(cache, bundle, extra=["-since", "1h"])[0], 0, "export -since 1h status")
    check(len(bundle_names(bundle)) > 20, "everything is newer than an hour ago")
    rc, _, err = goproxyd(["export", "-cacheDir", cache])
    eq(rc, 2, "export without -o")


def expect_refused(far, out, rc, module, version, what):
    eq(rc, 1, "%s: import status (out %r)" % (what, out[-800:]))
    for k in ("info", "mod", "zip"):
        check(not os.path.exists(cfile(far, module, version, k)),
              "%s: %s@%s .%s stored" % (what, module, version, k))
    eq(read(cfile(far, LIBA, "v1.1.0", "zip")), tree(LIBA, "v1.1.0", "zip"), "%s: other versions imported" % what)
    eq(tmp_leftovers(far), [], "%s: temp files left" % what)


@timeout(180)
@checked
def test_import_refuses_tampered_bundles():
    base, cache = filled_cache("tamper")
    good = os.path.join(base, "good.tar")
    eq(export(cache, good)[0], 0, "export status")
    zrel = mkmodules.rel(LIBB, "v1.0.0", "zip")
    lrel = "sumdb/%s/lookup/%s@v1.0.0" % (fakesumdb.DEFAULT_NAME, mkmodules.escape(LIBB))
    bad_zip = tampered_zip(LIBB, "v1.0.0")

    def one_byte(name, data):
        if name == zrel:
            b = bytearray(data)
            b[len(b) // 2] ^= 0x01
            return bytes(b)
        return data

    def manifest_entry(name, data):
        if name == "goproxyd-manifest.json":
            return set_manifest(data, {zrel: {"sha256": "0" * 64}})
        return data

    def forged_lookup(name, data):
        if name == zrel:
            return bad_zip
        if name == lrel:
            return data.replace(mkmodules.zip_hash(tree(LIBB, "v1.0.0", "zip")).encode(),
                                mkmodules.zip_hash(bad_zip).encode())
        if name == "goproxyd-manifest.json":
            with tarfile.open(good) as t:
                lk = t.extractfile(lrel).read()
            forged = lk.replace(mkmodules.zip_hash(tree(LIBB, "v1.0.0", "zip")).encode(),
                                mkmodules.zip_hash(bad_zip).encode())
            check(forged != lk, "lookup record has no zip hash line")
            return set_manifest(data, {zrel: sha(bad_zip), lrel: sha(forged)})
        return data

    for what, change, reason in (("one changed byte in a zip", one_byte, "differs from the manifest"),
                                 ("a changed manifest entry", manifest_entry, "differs from the manifest"),
                                 ("a forged lookup record", forged_lookup, "checksum database record not proved")):
        bundle = rewrite_bundle(good, os.path.join(base, "bad.tar"), change)
        far = os.path.join(newdir("tamper-far"), "cache")
        rc, out, err = import_(far, bundle)
        expect_refused(far, out, rc, LIBB, "v1.0.0", what)
        vrx = re.escape(mkmodules.rel(LIBB, "v1.0.0", "zip")[:-4]) + r"\.(mod|zip)"
        check(re.search(r"^FAIL %s: .*%s" % (vrx, reason), out, re.M),
              "%s: no FAIL line for libb@v1.0.0 with %r: %r" % (what, reason, out[-800:]))
        check(not os.path.exists(os.path.join(far, lrel)), "%s: forged record stored" % what)


@checked
def test_import_conflict_and_list_merge():
    base, cache = filled_cache("conflict")
    bundle = os.path.join(base, "b.tar.zst")
    eq(export(cache, bundle)[0], 0, "export status")
    far = os.path.join(newdir("conflict-far"), "cache")
    other_info = b'{"Version":"v1.0.0","Time":"2020-01-01T00:00:00Z"}'
    for rel, data in ((mkmodules.rel(LIBA, "v1.0.0", "info"), other_info),
                      (mkmodules.rel(LIBA, kind="list"), b"v0.9.0\n")):
        os.makedirs(os.path.dirname(os.path.join(far, rel)), exist_ok=True)
        with open(os.path.join(far, rel), "wb") as f:
            f.write(data)
    rc, out, _ = import_(far, bundle)
    eq(rc, 1, "status with a conflict (out %r)" % out[-600:])
    check(re.search(r"^CONFLICT %s: " % re.escape(mkmodules.rel(LIBA, "v1.0.0", "info")), out, re.M),
          "no CONFLICT line: %r" % out)
    eq(read(cfile(far, LIBA, "v1.0.0", "info")), other_info, "conflicting file overwritten")
    check(not os.path.exists(cfile(far, LIBA, "v1.0.0", "zip")), "rest of the conflicting version stored")
    eq(read(cfile(far, LIBA, kind="list")), b"v0.9.0\nv1.0.0\nv1.1.0\n", "merged list")


@checked
def test_import_gosum_when_verification_off():
    base, cache = filled_cache("gosum")
    bundle = os.path.join(base, "b.tar")
    eq(export(cache, bundle)[0], 0, "export status")
    far = os.path.join(newdir("gosum-far"), "cache")
    rc, out, err = import_(far, bundle, sumdb="off")
    eq(rc, 1, "status with -sumdb off and no -gosum")
    check("not verified" in out, "reason %r %r" % (out[-400:], err[-400:]))
    check(not os.path.exists(cfile(far, LIBA, "v1.1.0", "zip")), "unverified zip stored")
    gs = write_gosum(os.path.join(base, "go.sum"))
    rc, out, _ = import_(far, bundle, sumdb="off", extra=["-gosum", gs])
    eq(rc, 0, "status with -gosum (out %r)" % out[-600:])
    eq(read(cfile(far, LIBA, "v1.1.0", "zip")), tree(LIBA, "v1.1.0", "zip"), "zip after -gosum import")


@timeout(300)
@checked
def test_import_while_daemon_serves():
    base, cache = filled_cache("live")
    bundle = os.path.join(base, "b.tar.zst")
    eq(export(cache, bundle)[0], 0, "export status")
    far = os.path.join(newdir("live-far"), "cache")
    os.makedirs(far)
    d = offline_daemon(far)
    zpath = "/" + mkmodules.rel(LIBA, "v1.1.0", "zip")
    eq(get(d.port, zpath).status, 404, "before the import")
    stop = []
    seen = {"200": 0, "404": 0}
    errors = []

    def reader():
        deadline = time.time() + 60
        while not stop and time.time() < deadline:
            r = get(d.port, zpath)
            if r.status == 200:
                seen["200"] += 1
                if r.body != tree(LIBA, "v1.1.0", "zip"):
                    errors.append("a partial or wrong zip was served (%d bytes)" % len(r.body))
            elif r.status == 404:
                seen["404"] += 1
            else:
                errors.append("status %d" % r.status)
    import threading
    th = threading.Thread(target=reader)
    th.start()
    try:
        rc, out, _ = import_(far, bundle)
        time.sleep(0.2)
    finally:
        stop.append(1)
        th.join(70)
    eq(rc, 0, "import status (out %r)" % out[-500:])
    eq(errors, [], "reader errors")
    check(seen["200"] > 0, "the reader never saw the imported zip: %r" % seen)
    client_flow(d, newdir("live-client"))


@checked
def test_libarchive_loaded_only_by_export_and_import():
    """The daemon does not map libarchive (2.4 MiB of RSS with its
    dependencies); export and import load it, and say so when they cannot."""
    base = newdir("dl")
    cache = os.path.join(base, "cache")
    os.makedirs(cache)
    d = offline_daemon(cache)
    with open("/proc/%d/maps" % d.proc.pid) as f:
        maps = f.read()
    check("libarchive" not in maps, "the daemon maps libarchive")
    bogus = newdir("bogus-lib")
    with open(os.path.join(bogus, "libarchive.so.13"), "w") as f:
        f.write("not a library\n")
    env = dict(os.environ, LD_LIBRARY_PATH=bogus)
    bundle = os.path.join(base, "x.tar")
    for args in (["export", "-cacheDir", cache, "-o", bundle], ["import", "-cacheDir", cache, bundle]):
        p = subprocess.run([daemon_binary()] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=env, timeout=CMD_TIMEOUT)
        err = p.stderr.decode("utf-8", "replace")
        eq(p.returncode, 1, "%s status without a loadable libarchive (%r)" % (args[0], err[-300:]))
        check("cannot load libarchive" in err, "%s: no reason given: %r" % (args[0], err[-300:]))
    check(not os.path.exists(bundle), "export left a bundle")


TESTS = [
    test_prefetch_gomod_graph_then_offline_go,
    test_prefetch_gosum_stdin_and_module_args,
    test_prefetch_gosum_is_a_trust_anchor,
    test_prefetch_deny_and_a_serving_daemon,
    test_prefetch_one_file_stalled,
    test_prefetch_progress_on_a_pipe,
    test_prefetch_progress_on_a_terminal,
    test_offline_list_and_latest_from_infos,
    test_export_import_then_offline_go,
    test_export_selection,
    test_import_refuses_tampered_bundles,
    test_import_conflict_and_list_merge,
    test_import_gosum_when_verification_off,
    test_import_while_daemon_serves,
    test_libarchive_loaded_only_by_export_and_import,
]

if __name__ == "__main__":
    sys.exit(R.main(setup, TESTS, sys.argv[1:]))

#!/usr/bin/env python3
"""Generate a graph of test Go modules in GOPROXY layout.

Usage (script):
    mkmodules.py OUTDIR [--app APPDIR] [--big-mib N] [--verify]

    OUTDIR   receives <escaped path>/@v/{list,<esc ver>.info,.mod,.zip} and
             <escaped path>/@latest for every module below.
    --app    also write the (unserved) "app" module to APPDIR
             (default: OUTDIR/../app is NOT assumed; no app unless asked).
    --big-mib N  add example.com/big v1.0.0 whose zip holds N MiB of random,
             incompressible data (default 0 = no big module).
    --verify start tests/lib/fakeupstream.py in-process on 127.0.0.1, then run
             the real go command (GOPROXY=http://127.0.0.1:PORT, GOSUMDB=off,
             everything in a temp dir): `go mod download` + `go build` of the app.

Usage (module):
    import mkmodules
    info = mkmodules.generate(outdir, app_dir=None, big_mib=0)
    info["files"]      -> {tree-relative path: bytes}   (everything written)
    info["modules"]    -> {module path: [versions]}
    info["sums"]       -> {"<path> <ver>": "h1:...", "<path> <ver>/go.mod": "h1:..."}
    info["app_dir"]    -> app directory or None

Only the Python standard library is used; output is deterministic (fixed
zip timestamps, seeded random data) so hashes are stable between runs.
"""

import base64
import hashlib
import io
import json
import os
import random
import sys
import zipfile

GO_VERSION = "1.19"
ZIP_DATE = (2020, 1, 1, 0, 0, 0)

# (module path, version, time, {file: content}, requires [(path, ver)])
LIBA_GO = {
    "v1.0.0": 'package liba\n\n// Hello greets.\nfunc Hello() string { return "hello from liba v1.0.0" }\n',
    "v1.1.0": 'package liba\n\n// Hello greets.\nfunc Hello() string { return "hello from liba v1.1.0" }\n\n'
              '// Add adds.\nfunc Add(a, b int) int { return a + b }\n',
}

BIG_MODULE = "example.com/big"
BIG_VERSION = "v1.0.0"
PRIVATE_MODULE = "example.com/private/secret"

APP_MODULE = "example.com/app"


# ---------------------------------------------------------------- escaping

def escape(s):
    """The go command's case-encoding: 'A' -> '!a'."""
    out = []
    for ch in s:
        if "A" <= ch <= "Z":
            out.append("!" + ch.lower())
        else:
            out.append(ch)
    return "".join(out)


def unescape(s):
    out = []
    bang = False
    for ch in s:
        if bang:
            if not ("a" <= ch <= "z"):
                raise ValueError("bad escape in %r" % s)
            out.append(ch.upper())
            bang = False
        elif ch == "!":
            bang = True
        elif "A" <= ch <= "Z" or ord(ch) >= 0x80:
            raise ValueError("bad char in %r" % s)
        else:
            out.append(ch)
    if bang:
        raise ValueError("trailing ! in %r" % s)
    return "".join(out)


def rel(module, version=None, kind=None):
    """Tree-relative path of a file: rel(m, v, 'zip'), rel(m, kind='list'),
    rel(m, kind='latest')."""
    m = escape(module)
    if kind == "list":
        return "%s/@v/list" % m
    if kind == "latest":
        return "%s/@latest" % m
    return "%s/@v/%s.%s" % (m, escape(version), kind)


# ---------------------------------------------------------------- hashing

def hash1(files):
    """golang.org/x/mod/sumdb/dirhash.Hash1 over [(name, bytes)]."""
    summary = io.StringIO()
    for name, data in sorted(files, key=lambda f: f[0].encode()):
        if "\n" in name:
            raise ValueError("newline in file name")
        summary.write("%s  %s\n" % (hashlib.sha256(data).hexdigest(), name))
    return "h1:" + base64.b64encode(hashlib.sha256(summary.getvalue().encode()).digest()).decode()


def zip_hash(zip_bytes):
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as z:
        return hash1([(i.filename, z.read(i.filename)) for i in z.infolist()])


def gomod_hash(mod_bytes):
    return hash1([("go.mod", mod_bytes)])


# ---------------------------------------------------------------- zips

def make_zip(entries, stored=()):
    """entries: [(full entry name, bytes)] -> zip bytes (deterministic)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in entries:
            zi = zipfile.ZipInfo(name, ZIP_DATE)
            zi.compress_type = zipfile.ZIP_STORED if name in stored else zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            z.writestr(zi, data)
    return buf.getvalue()


def module_zip(module, version, files, stored=()):
    prefix = "%s@%s/" % (module, version)
    return make_zip([(prefix + n, d) for n, d in sorted(files.items())],
                    stored={prefix + s for s in stored})


def bad_zip_outside_prefix(module, version):
    """A zip with one good entry and entries outside '<module>@<version>/'."""
    prefix = "%s@%s/" % (module, version)
    return make_zip([
        (prefix + "go.mod", ("module %s\n" % module).encode()),
        ("example.com/evil@v1.0.0/evil.go", b"package evil\n"),
        ("evil.go", b"package evil\n"),
    ])


def gomod(module, requires=()):
    s = "module %s\n\ngo %s\n" % (module, GO_VERSION)
    if requires:
        s += "\nrequire (\n" + "".join("\t%s %s\n" % r for r in requires) + ")\n"
    return s.encode()


# ---------------------------------------------------------------- module set

def module_specs(big_mib=0):
    """Yield (module, version, time, files{name: bytes}, requires, stored)."""
    specs = []
    t = "2023-01-0%dT10:00:00Z"
    for i, v in enumerate(["v1.0.0", "v1.1.0"]):
        specs.append(("example.com/liba", v, t % (1 + i),
                      {"liba.go": LIBA_GO[v].encode(), "LICENSE": b"test license liba\n"}, [], ()))
    specs.append(("example.com/libb", "v1.0.0", t % 3, {
        "libb.go": b'package libb\n\nimport "example.com/liba"\n\n'
                   b'// Greet uses liba.\nfunc Greet() string { return "libb+" + liba.Hello() }\n',
    }, [("example.com/liba", "v1.0.0")], ()))
    specs.append(("example.com/MixedCase/lib", "v1.0.0", t % 4, {
        "lib.go": b'package lib\n\n// Name returns the mixed-case name.\nfunc Name() string { return "MixedCase" }\n',
        "sub/Upper.go": b'package sub\n\n// X is exported.\nconst X = 1\n',
    }, [], ()))
    specs.append(("example.com/libc/v2", "v2.0.0", t % 5, {
        "libc.go": b'package libc\n\n// Major returns 2.\nfunc Major() int { return 2 }\n',
    }, [], ()))
    specs.append(("example.com/libd", "v1.1.0", t % 6, {
        "libd.go": b'package libd\n\n// Stage is the release stage.\nconst Stage = "release"\n',
    }, [], ()))
    specs.append(("example.com/libd", "v1.2.0-RC1", t % 7, {
        "libd.go": b'package libd\n\n// Stage is the release stage.\nconst Stage = "RC1"\n',
    }, [], ()))
    specs.append((PRIVATE_MODULE, "v1.0.0", t % 8, {
        "secret.go": b'package secret\n\n// S is secret.\nconst S = "s"\n',
    }, [], ()))
    if big_mib:
        data = random.Random(12345).randbytes(int(big_mib * 1024 * 1024))
        specs.append((BIG_MODULE, BIG_VERSION, t % 9, {
            "big.go": b'package big\n\n// Size is unused.\nconst Size = 0\n',
            "data.bin": data,
        }, [], ("data.bin",)))
    return specs


APP_GO_MOD_REQUIRES = [
    ("example.com/MixedCase/lib", "v1.0.0"),
    ("example.com/liba", "v1.1.0"),
    ("example.com/libb", "v1.0.0"),
    ("example.com/libc/v2", "v2.0.0"),
    ("example.com/libd", "v1.2.0-RC1"),
]

APP_MAIN = b'''package main

import (
	"fmt"

	"example.com/MixedCase/lib"
	"example.com/liba"
	"example.com/libb"
	"example.com/libc/v2"
	"example.com/libd"
)

func main() {
	fmt.Println(liba.Hello(), liba.Add(1, 2), libb.Greet(), lib.Name(), libc.Major(), libd.Stage)
}
'''


def write_app(app_dir):
    os.makedirs(app_dir, exist_ok=True)
    with open(os.path.join(app_dir, "go.mod"), "wb") as f:
        f.write(gomod(APP_MODULE, APP_GO_MOD_REQUIRES))
    with open(os.path.join(app_dir, "main.go"), "wb") as f:
        f.write(APP_MAIN)
    gs = os.path.join(app_dir, "go.sum")
    if os.path.exists(gs):
        os.unlink(gs)
    return app_dir


def add_version(tree, files, module, version, size=0):
    """Writes module@version into the GOPROXY tree at `tree` while a fake
    upstream may be serving it: .info, .mod and a zip (x.go, go.mod and,
    with size, that many incompressible bytes, stored), each by rename, then
    appends version to the module's list.  `files` maps every relative path
    written to its bytes.  Returns {kind: bytes}."""
    mod = gomod(module)
    entries = {"x.go": b"package x\n\n// V is the version.\nconst V = \"" + version.encode() + b"\"\n",
               "go.mod": mod}
    stored = ()
    if size:
        entries["data.bin"] = random.Random("%s@%s" % (module, version)).randbytes(size)
        stored = ("data.bin",)
    out = {"info": json.dumps({"Version": version, "Time": "2023-02-01T10:00:00Z"}).encode(),
           "mod": mod, "zip": module_zip(module, version, entries, stored)}

    def put(relpath, data):
        full = os.path.join(tree, relpath)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full + ".tmp", "wb") as f:
            f.write(data)
        os.rename(full + ".tmp", full)
        files[relpath] = data

    for kind, data in out.items():
        put(rel(module, version, kind), data)
    lrel = rel(module, kind="list")
    old = files.get(lrel, b"").decode()
    if version + "\n" not in old:
        put(lrel, (old + version + "\n").encode())
    return out


def _write(outdir, relpath, data):
    p = os.path.join(outdir, relpath)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)


def generate(outdir, app_dir=None, big_mib=0):
    os.makedirs(outdir, exist_ok=True)
    files = {}
    modules = {}
    sums = {}
    times = {}
    for module, version, tm, srcfiles, requires, stored in module_specs(big_mib):
        mod = gomod(module, requires)
        allfiles = dict(srcfiles)
        allfiles["go.mod"] = mod
        z = module_zip(module, version, allfiles, stored)
        info = json.dumps({"Version": version, "Time": tm}).encode()
        files[rel(module, version, "info")] = info
        files[rel(module, version, "mod")] = mod
        files[rel(module, version, "zip")] = z
        modules.setdefault(module, []).append(version)
        times[(module, version)] = tm
        sums["%s %s" % (module, version)] = zip_hash(z)
        sums["%s %s/go.mod" % (module, version)] = gomod_hash(mod)
    for module, versions in modules.items():
        files[rel(module, kind="list")] = "".join(v + "\n" for v in versions).encode()
        latest = versions[-1]
        files[rel(module, kind="latest")] = json.dumps(
            {"Version": latest, "Time": times[(module, latest)]}).encode()
    for r, data in files.items():
        _write(outdir, r, data)
    if app_dir:
        write_app(app_dir)
    return {"root": outdir, "files": files, "modules": modules, "sums": sums,
            "app_dir": app_dir}


# ---------------------------------------------------------------- go helpers

def go_env(tmp, goproxy, gomodcache=None, gosumdb="off"):
    """A hermetic environment for the go command: everything under tmp,
    GOPROXY and GOSUMDB as given (no checksum database by default), no
    network proxies, no user config."""
    env = {}
    for k in ("PATH", "LANG", "LC_ALL", "TMPDIR", "TERM"):
        if k in os.environ:
            env[k] = os.environ[k]
    home = os.path.join(tmp, "home")
    os.makedirs(home, exist_ok=True)
    env.update({
        "HOME": home,
        "GOPATH": os.path.join(tmp, "gopath"),
        "GOMODCACHE": gomodcache or os.path.join(tmp, "gomodcache"),
        "GOCACHE": os.path.join(tmp, "gocache"),
        "GOENV": os.path.join(tmp, "goenv-none"),
        "GOPROXY": goproxy,
        "GOSUMDB": gosumdb,
        "NO_PROXY": "127.0.0.1",
        "no_proxy": "127.0.0.1",
        "GOFLAGS": "-mod=mod -modcacherw",
        "GOTOOLCHAIN": "local",
        "GO111MODULE": "on",
        "CGO_ENABLED": "0",
        "GOTELEMETRY": "off",
    })
    return env


def run_go(args, cwd, env, timeout=300):
    """(exit status, combined output) of `go ARGS`; status None if it ran
    past timeout (killed)."""
    import subprocess
    try:
        p = subprocess.run(["go"] + args, cwd=cwd, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "go %s: timed out after %ds" % (" ".join(args), timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def parse_gosum(text):
    d = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) == 3:
            d["%s %s" % (f[0], f[1])] = f[2]
    return d


def verify(info, timeout=300):
    """Serve info['root'] with the fake upstream and build the app with go."""
    import shutil
    import tempfile
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import fakeupstream
    tmp = tempfile.mkdtemp(prefix="mkmodules-verify-")
    up = fakeupstream.FakeUpstream(info["root"]).start()
    try:
        app = os.path.join(tmp, "app")
        write_app(app)
        env = go_env(tmp, up.url)
        for args in (["mod", "download"], ["build", "-o", os.path.join(tmp, "app.bin"), "."]):
            rc, out = run_go(args, app, env, timeout)
            if rc != 0:
                raise RuntimeError("go %s failed (%d):\n%s" % (" ".join(args), rc, out))
        with open(os.path.join(app, "go.sum")) as f:
            gosum = parse_gosum(f.read())
        for k, h in gosum.items():
            if info["sums"].get(k) != h:
                raise RuntimeError("go.sum line %s %s != expected %s" % (k, h, info["sums"].get(k)))
        for m, v in APP_GO_MOD_REQUIRES:
            if "%s %s" % (m, v) not in gosum:
                raise RuntimeError("go.sum lacks %s %s" % (m, v))
        import subprocess
        out = subprocess.run([os.path.join(tmp, "app.bin")], stdout=subprocess.PIPE,
                             timeout=30).stdout.decode()
        return out.strip()
    finally:
        up.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--app", default=None)
    ap.add_argument("--big-mib", type=float, default=0)
    ap.add_argument("--verify", action="store_true")
    a = ap.parse_args(argv)
    info = generate(a.outdir, a.app, a.big_mib)
    print("generated %d files for %d modules in %s" % (len(info["files"]), len(info["modules"]), a.outdir))
    if a.verify:
        print("verify: go build ok, app prints: %s" % verify(info))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

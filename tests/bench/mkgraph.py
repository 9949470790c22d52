#!/usr/bin/env python3
"""Generate the benchmark's module tree in GOPROXY layout (stdlib only).

    mkgraph.py OUTDIR APPDIR [--modules 50] [--huge-mib 100]

OUTDIR receives <escaped path>/@v/{list,<v>.info,<v>.mod,<v>.zip} and
<escaped path>/@latest for:

  * the graph: example.com/graph/mNN (NN = 00..modules-1), each at v1.0.0 and
    v1.1.0.  mNN v1.1.0 requires up to three lower-numbered modules at
    v1.0.0 or v1.1.0, so the go command walks a real requirement graph.
    APPDIR gets example.com/benchapp whose go.mod requires every mNN
    v1.1.0 (plus main.go importing them), for `go mod download`.
  * the hit files: example.com/bench/tiny v1.0.0 (its .info is workload 1,
    its @v/list workload 4), example.com/bench/small v1.0.0 (a 20 KiB zip),
    example.com/bench/large v1.0.0 (an 8 MiB zip).
  * example.com/bench/huge v1.0.0: a zip with one stored entry of HUGE MiB
    of random bytes (workload 6).

Zips are valid module zips (every entry starts with "<path>@<version>/"),
deterministic (fixed timestamps, seeded random data).  Prints a JSON object
describing the tree (URL paths and sizes) on stdout.
"""

import argparse
import io
import json
import os
import random
import sys
import zipfile

ZIP_DATE = (2024, 1, 1, 0, 0, 0)
GO = "1.19"


def escape(s):
    return "".join("!" + c.lower() if "A" <= c <= "Z" else c for c in s)


def write(root, rel, data):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)


def zip_bytes(module, version, files, stored=()):
    """files: {name: bytes}; names in stored are written uncompressed."""
    buf = io.BytesIO()
    prefix = "%s@%s/" % (module, version)
    with zipfile.ZipFile(buf, "w") as z:
        for name in sorted(files):
            zi = zipfile.ZipInfo(prefix + name, ZIP_DATE)
            zi.compress_type = zipfile.ZIP_STORED if name in stored else zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            z.writestr(zi, files[name])
    return buf.getvalue()


def gomod(module, requires=()):
    s = "module %s\n\ngo %s\n" % (module, GO)
    if requires:
        s += "\nrequire (\n" + "".join("\t%s %s\n" % r for r in requires) + ")\n"
    return s.encode()


class Tree:
    def __init__(self, root):
        self.root = root
        self.versions = {}   # module -> [versions]
        self.times = {}

    def add(self, module, version, files, requires=(), stored=(), day=1):
        mod = gomod(module, requires)
        files = dict(files)
        files["go.mod"] = mod
        ev = "%s/@v/%s" % (escape(module), escape(version))
        tm = "2024-01-%02dT10:00:00Z" % day
        write(self.root, ev + ".info", json.dumps({"Version": version, "Time": tm}).encode())
        write(self.root, ev + ".mod", mod)
        write(self.root, ev + ".zip", zip_bytes(module, version, files, stored))
        self.versions.setdefault(module, []).append(version)
        self.times[(module, version)] = tm

    def finish(self):
        for module, vs in self.versions.items():
            write(self.root, "%s/@v/list" % escape(module), "".join(v + "\n" for v in vs).encode())
            write(self.root, "%s/@latest" % escape(module),
                  json.dumps({"Version": vs[-1], "Time": self.times[(module, vs[-1])]}).encode())


def graph_name(i):
    return "example.com/graph/m%02d" % i


def go_source(pkg, i, version, imports=()):
    rnd = random.Random("%s%s" % (pkg, version))
    body = ["package %s\n" % pkg]
    if imports:
        body.append("import (\n" + "".join('\t"%s"\n' % p for p in imports) + ")\n")
        body.append("var _ = []int{%s}\n" % ", ".join("%s.N" % p.rsplit("/", 1)[1] for p in imports))
    body.append("// N identifies the module.\nconst N = %d\n" % i)
    # a few KiB of code-like text so the zips are not trivially small
    for k in range(rnd.randint(20, 80)):
        body.append("// F%d is generated.\nfunc F%d(x int) int { return x*%d + %d }\n"
                    % (k, k, rnd.randint(1, 999), rnd.randint(1, 999)))
    return "\n".join(body).encode()


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("appdir")
    ap.add_argument("--modules", type=int, default=50)
    ap.add_argument("--huge-mib", type=float, default=100)
    a = ap.parse_args(argv)

    t = Tree(a.outdir)
    rnd = random.Random(42)
    graph = []
    for i in range(a.modules):
        name = graph_name(i)
        pkg = "m%02d" % i
        deps = sorted(rnd.sample(range(i), min(i, 3))) if i else []
        # testdata of 16-256 KiB (incompressible, stored) so zip sizes are
        # in the range of real modules rather than a few KiB
        blob = rnd.randbytes(rnd.randint(16, 256) * 1024)
        t.add(name, "v1.0.0", {pkg + ".go": go_source(pkg, i, "v1.0.0"),
                               "LICENSE": b"benchmark module\n",
                               "testdata/blob.bin": blob}, stored=("testdata/blob.bin",), day=1)
        reqs = [(graph_name(d), rnd.choice(["v1.0.0", "v1.1.0"])) for d in deps]
        t.add(name, "v1.1.0", {pkg + ".go": go_source(pkg, i, "v1.1.0", [graph_name(d) for d in deps]),
                               "LICENSE": b"benchmark module\n",
                               "README.md": ("# %s\n" % name).encode(),
                               "testdata/blob.bin": blob}, stored=("testdata/blob.bin",),
              requires=reqs, day=2)
        graph.append(name)

    # hit workloads
    t.add("example.com/bench/tiny", "v1.0.0", {"tiny.go": b"package tiny\n"}, day=3)
    small_data = random.Random(1).randbytes(20 * 1024 - 400)   # zip overhead ~ 400 bytes
    t.add("example.com/bench/small", "v1.0.0",
          {"small.go": b"package small\n", "data.bin": small_data}, stored=("data.bin",), day=4)
    large_data = random.Random(2).randbytes(8 * 1024 * 1024 - 400)
    t.add("example.com/bench/large", "v1.0.0",
          {"large.go": b"package large\n", "data.bin": large_data}, stored=("data.bin",), day=5)
    huge_data = random.Random(3).randbytes(int(a.huge_mib * 1024 * 1024) - 400)
    t.add("example.com/bench/huge", "v1.0.0", {"data.bin": huge_data}, stored=("data.bin",), day=6)
    del huge_data
    t.finish()

    os.makedirs(a.appdir, exist_ok=True)
    with open(os.path.join(a.appdir, "go.mod"), "wb") as f:
        f.write(gomod("example.com/benchapp", [(m, "v1.1.0") for m in graph]))
    with open(os.path.join(a.appdir, "main.go"), "wb") as f:
        f.write(b"package main\n\nimport (\n" +
                b"".join(b'\t_ "%s"\n' % m.encode() for m in graph) +
                b")\n\nfunc main() {}\n")

    def size(urlpath):
        return os.path.getsize(os.path.join(a.outdir, urlpath.lstrip("/")))

    files = {
        "info": "/example.com/bench/tiny/@v/v1.0.0.info",
        "small": "/example.com/bench/small/@v/v1.0.0.zip",
        "large": "/example.com/bench/large/@v/v1.0.0.zip",
        "list": "/example.com/bench/tiny/@v/list",
        "huge": "/example.com/bench/huge/@v/v1.0.0.zip",
    }
    out = {"files": {k: {"path": p, "size": size(p)} for k, p in files.items()},
           "graph_modules": len(graph)}
    json.dump(out, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

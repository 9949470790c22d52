#!/usr/bin/env python3
"""A hostile upstream: answers the go command would refuse must not be cached.

One fake upstream, one misbehaviour per module; the daemon runs with
-sumdb off, so only goproxyd's own checks stand between the upstream and the
cache.  For each: the client gets a 404 with goproxyd's one-line reason, and
nothing is stored.  A well-formed go.mod naming another module path is served.
The real go command downloads a good module and gets the error for a bad one.

Run:  python3 tests/integration/test_hostile_upstream.py [NAME-SUBSTRING ...]
Env:  GOPROXYD=path/to/binary (default ./build/goproxyd), KEEP_TMP=1
Prints "ok NAME" / "FAIL NAME: reason" per test; last line "N passed, N failed".
Standard library only; only 127.0.0.1 is contacted.
"""

import base64
import gzip
import io
import json
import os
import re
import shutil
import subprocess
import sys
import warnings
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import fakeupstream  # noqa: E402
import mkmodules  # noqa: E402
from harness import (check_clean_exits, Daemons, Runner, check, eq, get,  # noqa: E402
                     make_tmp, note, timeout, tmp_leftovers, wait_for)

R = Runner(default_timeout=120)
D = Daemons()
V = "v1.0.0"


class Ctx:
    up = None
    d = None
    tmp = None


C = Ctx()


def rel(module, kind):
    return mkmodules.rel(module, V if kind != "list" else None, kind)


def b64(data):
    return base64.b64encode(data).decode()


def zip_of(entries, module):
    """entries: [(name below the prefix, bytes)]; duplicates are kept."""
    prefix = "%s@%s/" % (module, V)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # zipfile warns on a duplicate name
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in entries:
                z.writestr(zipfile.ZipInfo(prefix + name, (2020, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def good_files(module):
    return [("go.mod", ("module %s\n" % module).encode()), ("a.go", b"package a\n")]


def info(module):
    return json.dumps({"Version": V, "Time": "2020-01-01T00:00:00Z"})


# module -> (kind, rule, words the reason must contain)
HOSTILE = {
    "example.com/htmlmod": ("mod", {"body": "<!DOCTYPE html>\n<html><body><form>Sign in</form></body></html>\n",
                                    "content_type": "text/html"}, ["go.mod"]),
    "example.com/gzipmod": ("mod", {"body_b64": b64(gzip.compress(b"module example.com/gzipmod\n")),
                                    "headers": {"Content-Encoding": "gzip"}}, ["content-encoding"]),
    "example.com/shortmod": ("mod", {"body": "module example.com/shortmod\n", "wrong_content_length": 5},
                             ["go.mod"]),
    "example.com/cutmod": ("mod", {"body": "module ", "no_length": True}, ["go.mod"]),
    "example.com/badlist": ("list", {"body": "v1.0.0\n\nthis is not a version\nv1.1.0\n"}, ["version"]),
    "example.com/dotdot": ("zip", {"body_b64": b64(zip_of(good_files("example.com/dotdot") +
                                                         [("../../../tmp/x.go", b"package x\n")],
                                                         "example.com/dotdot"))}, ["file path"]),
    "example.com/casefold": ("zip", {"body_b64": b64(zip_of(good_files("example.com/casefold") +
                                                           [("README", b"a"), ("readme", b"b")],
                                                           "example.com/casefold"))}, ["collision"]),
    "example.com/dupentry": ("zip", {"body_b64": b64(zip_of(good_files("example.com/dupentry") +
                                                           [("a.go", b"package b\n")],
                                                           "example.com/dupentry"))}, ["multiple entries"]),
    "example.com/unisymbol": ("zip", {"body_b64": b64(zip_of(good_files("example.com/unisymbol") +
                                                            [("\u2713.txt", b"x\n")],
                                                            "example.com/unisymbol"))}, ["file path"]),
    "example.com/unifold": ("zip", {"body_b64": b64(zip_of(good_files("example.com/unifold") +
                                                          [("\u00c9.txt", b"a"), ("\u00e9.txt", b"b")],
                                                          "example.com/unifold"))}, ["collision"]),
    "example.com/bigmod": ("zip", {"body_b64": b64(zip_of([("go.mod", b"module example.com/bigmod\n" +
                                                                      b"\n" * (16 << 20))],
                                                         "example.com/bigmod"))}, ["16 mib"]),
}


UNILETTER_FILES = [("docs/\u6570\u636e.txt", b"data\n"), ("caf\u00e9.go", b"package a\n"),
                   ("\u0394elta/\u0436.txt", b"x\n")]


def setup():
    C.tmp = D.tmp = make_tmp("goproxyd-hostile-", R)
    root = os.path.join(C.tmp, "empty-tree")
    os.makedirs(root)
    C.up = fakeupstream.FakeUpstream(root).start()
    rules = {}
    for m, (kind, rule, _) in HOSTILE.items():
        rules["^/" + rel(m, kind) + "$"] = rule
    for m in ("example.com/good", "example.com/gobad", "example.com/uniletter", "example.com/gosymbol"):
        rules["^/" + rel(m, "info") + "$"] = {"body": info(m)}
        rules["^/" + rel(m, "mod") + "$"] = {"body": "module %s\n" % m}
    rules["^/" + rel("example.com/good", "zip") + "$"] = {
        "body_b64": b64(zip_of(good_files("example.com/good"), "example.com/good"))}
    rules["^/" + rel("example.com/gobad", "zip") + "$"] = {
        "body_b64": b64(zip_of(good_files("example.com/gobad") + [("../x.go", b"package x\n")],
                               "example.com/gobad"))}
    # Unicode letters in file names are fine (module.CheckFilePath), a
    # symbol is not: go 1.19 unpacks the first and refuses the second.
    rules["^/" + rel("example.com/uniletter", "zip") + "$"] = {
        "body_b64": b64(zip_of(good_files("example.com/uniletter") + UNILETTER_FILES, "example.com/uniletter"))}
    rules["^/" + rel("example.com/gosymbol", "zip") + "$"] = {
        "body_b64": b64(zip_of(good_files("example.com/gosymbol") + [("\u2713.txt", b"x\n")],
                               "example.com/gosymbol"))}
    rules["^/" + rel("example.com/elsewhere", "mod") + "$"] = {
        "body": "// served for another path\nmodule example.com/original\n\ngo 1.19\n"}
    C.up.set_rules(rules)
    R.cleanups.append(C.up.stop)
    R.cleanups.append(D.stop_all)
    C.d = D.start(C.up.url, extra=["-sumdb", "off"], name="hostile")


def expect_refused(module):
    kind, _, words = HOSTILE[module]
    r = get(C.d.port, "/" + rel(module, kind))
    eq(r.status, 404, "%s status (body %r)" % (module, r.body[:200]))
    t = r.text()
    check(t.count("\n") <= 1, "%s: reason is not one line: %r" % (module, t))
    check(all(w.lower() in t.lower() for w in words), "%s: reason %r lacks %s" % (module, t, words))
    f = os.path.join(C.d.cache_dir, rel(module, kind))
    check(not os.path.exists(f), "%s: %s was cached" % (module, rel(module, kind)))
    left = tmp_leftovers(C.d.cache_dir)
    check(not left, "%s: temp files left: %s" % (module, left))
    note("%s -> %s" % (module, t.strip()[:160]))


def make_test(module):
    def t():
        expect_refused(module)
    t.__name__ = "test_refused_" + module.split("/")[-1]
    return t


def test_other_module_path_is_served():
    r = get(C.d.port, "/" + rel("example.com/elsewhere", "mod"))
    eq(r.status, 200, "status (body %r)" % r.body[:200])
    check(b"module example.com/original" in r.body, "body %r" % r.body)
    check(os.path.exists(os.path.join(C.d.cache_dir, rel("example.com/elsewhere", "mod"))), "not cached")


def test_refused_answer_falls_through_pipe_not_comma():
    """A refused answer is an upstream error: after '|' the next upstream
    serves the file; after ',' (not-found only) the client gets the reason."""
    root = os.path.join(C.tmp, "empty-tree-2")
    os.makedirs(root, exist_ok=True)
    good = fakeupstream.FakeUpstream(root).start()
    R.cleanups.append(good.stop)
    for m in ("example.com/gzipmod", "example.com/htmlmod"):
        good.set_rules({"^/" + rel(m, "mod") + "$": {"body": "module %s\n" % m}})
    d = D.start(C.up.url + "|" + good.url, extra=["-sumdb", "off"], name="pipe")
    for m in ("example.com/gzipmod", "example.com/htmlmod"):
        r = get(d.port, "/" + rel(m, "mod"))
        eq(r.status, 200, "%s after '|' (body %r)" % (m, r.body[:200]))
        eq(r.body, ("module %s\n" % m).encode(), "%s body" % m)
    d2 = D.start(C.up.url + "," + good.url, extra=["-sumdb", "off"], name="comma")
    # Refused by the fetcher (Content-Encoding) and by the store (validation).
    for m, word in (("example.com/gzipmod", "content-encoding"), ("example.com/htmlmod", "go.mod")):
        r = get(d2.port, "/" + rel(m, "mod"))
        eq(r.status, 404, "%s after ',' (body %r)" % (m, r.body[:200]))
        check(word in r.text().lower(), "%s after ',': reason %r" % (m, r.text()))
    eq(good.count(), 2, "requests to the second upstream")


def upstream_outcomes(port):
    """{outcome: count} of the one upstream in /metrics."""
    body = get(port, "/metrics").body.decode()
    out = {}
    for line in body.splitlines():
        m = re.match(r'goproxyd_upstream_requests_total\{upstream="([^"]*)",outcome="(\w+)"\} (\d+)$', line)
        if m and m.group(1) != "sumdb":
            out[m.group(2)] = out.get(m.group(2), 0) + int(m.group(3))
    return out


def test_refused_answers_count_as_upstream_errors():
    """/metrics counts a refused 200 answer (an unasked-for Content-Encoding,
    a failed validation) as an upstream error, not as ok."""
    d = D.start(C.up.url, extra=["-sumdb", "off"], name="metrics")
    eq(upstream_outcomes(d.port).get("error", 0), 0, "errors at start")
    for i, m in enumerate(["example.com/gzipmod", "example.com/htmlmod"]):
        eq(get(d.port, "/" + rel(m, "mod")).status, 404, "%s status" % m)
        got = upstream_outcomes(d.port)
        eq((got.get("ok", 0), got.get("error", 0)), (0, i + 1), "%s: (ok, error) outcomes" % m)
    eq(get(d.port, "/" + rel("example.com/good", "mod")).status, 200, "good .mod status")
    # A stored answer is counted just after the client has it.
    wait_for(lambda: upstream_outcomes(d.port).get("ok", 0) >= 1, 5)
    got = upstream_outcomes(d.port)
    eq((got.get("ok", 0), got.get("error", 0)), (1, 2), "after a good .mod: (ok, error) outcomes")


def go_download(module):
    gohome = os.path.join(C.tmp, "go-" + module.split("/")[-1])
    os.makedirs(gohome, exist_ok=True)
    env = dict(os.environ, GOPROXY=C.d.url() if callable(C.d.url) else C.d.url,
               GOSUMDB="off", GOFLAGS="-mod=mod", GOPATH=os.path.join(gohome, "path"),
               GOMODCACHE=os.path.join(gohome, "modcache"), GOCACHE=os.path.join(gohome, "cache"),
               GOTOOLCHAIN="local", HOME=gohome)
    r = subprocess.run(["go", "mod", "download", "-json", module + "@" + V], cwd=gohome, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    return r.returncode, r.stdout.decode(errors="replace")


@timeout(120)
def test_go_command_good_and_bad():
    if shutil.which("go") is None:
        note("skip: no go command")
        return
    rc, out = go_download("example.com/good")
    eq(rc, 0, "go mod download good: %s" % out[-400:])
    rc, out = go_download("example.com/gobad")
    check(rc != 0, "go mod download gobad succeeded: %s" % out[-400:])
    check("file path" in out, "go mod download gobad: goproxyd's reason not shown: %s" % out[-400:])
    check(not os.path.exists(os.path.join(C.d.cache_dir, rel("example.com/gobad", "zip"))),
          "gobad zip was cached")


@timeout(120)
def test_go_command_unicode_file_names():
    """A zip whose file names hold Unicode letters is served and unpacked by
    the go command; one with a symbol (U+2713) is refused by goproxyd with
    the go command's own rule, so the go command reports goproxyd's reason."""
    r = get(C.d.port, "/" + rel("example.com/uniletter", "zip"))
    eq(r.status, 200, "uniletter zip status (body %r)" % r.body[:200])
    if shutil.which("go") is None:
        note("skip go part: no go command")
        return
    rc, out = go_download("example.com/uniletter")
    eq(rc, 0, "go mod download uniletter: %s" % out[-400:])
    d = json.loads(out)["Dir"]
    for name, data in UNILETTER_FILES:
        with open(os.path.join(d, name), "rb") as f:
            eq(f.read(), data, "unpacked %s" % name)
    rc, out = go_download("example.com/gosymbol")
    check(rc != 0, "go mod download gosymbol succeeded: %s" % out[-400:])
    check("file path" in out, "go mod download gosymbol: goproxyd's reason not shown: %s" % out[-400:])
    check(not os.path.exists(os.path.join(C.d.cache_dir, rel("example.com/gosymbol", "zip"))),
          "gosymbol zip was cached")


def test_daemons_exited_cleanly():
    D.stop_all()
    check_clean_exits(D.exits)


TESTS = [make_test(m) for m in HOSTILE] + [
    test_other_module_path_is_served,
    test_refused_answer_falls_through_pipe_not_comma,
    test_refused_answers_count_as_upstream_errors,
    test_go_command_good_and_bad,
    test_go_command_unicode_file_names,
    test_daemons_exited_cleanly,
]


if __name__ == "__main__":
    sys.exit(R.main(setup, TESTS, sys.argv[1:]))

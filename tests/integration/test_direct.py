#!/usr/bin/env python3
"""Private modules fetched from their origin with the real go command
(issue #16): -exclude, 'direct' in -proxy, -deny, -goBin, -directTimeout,
-maxDirect.

Run:  python3 tests/integration/test_direct.py [NAME-SUBSTRING ...]
Env:  GOPROXYD=path/to/binary (default ./build/goproxyd), KEEP_TMP=1

Bare git repositories made here are reached through url.<base>.insteadOf in
a test HOME that maps git.internal.test (every scheme the go command tries)
to them, so module paths like git.internal.test/team/lib.git need no go-get
discovery and nothing leaves the machine.  A git wrapper first on the
daemon's PATH logs every git invocation (to prove a second version does not
clone again) and makes the repositories named hang.git and slow.git hang or
slow; a go wrapper (-goBin) logs every go command goproxyd runs.  Clients
run with GOPROXY=goproxyd only, GOSUMDB=off, GOFLAGS=-mod=mod and a HOME
without the insteadOf, so they can only get private code through goproxyd.
Last line "N passed, N failed".
"""

import json
import re
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
import io

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import fakesumdb  # noqa: E402
import fakeupstream  # noqa: E402
import mkmodules  # noqa: E402
from harness import Daemon, Runner, TestFailure, check, eq, get, make_tmp, timeout  # noqa: E402

R = Runner(default_timeout=180)
HOST = "git.internal.test"
LIB = HOST + "/team/lib.git"
HANG_MARK = "3601"      # `sleep 3601`: the hung origin, found in /proc by this


class Ctx:
    tmp = None
    repos = None
    home = None
    bin = None
    git_log = None
    go_log = None
    up = None
    tree = None
    daemons = []
    n = 0


C = Ctx()

GIT_WRAPPER = r"""#!/bin/sh
echo "$$ $PWD $*" >> "%(log)s"
if [ -f config ] && grep -q 'team/hang' config 2>/dev/null; then exec sleep %(mark)s; fi
if [ -f config ] && grep -q 'team/slow' config 2>/dev/null; then sleep 1; fi
exec %(git)s "$@"
"""

GO_WRAPPER = r"""#!/bin/sh
echo "$*" >> "%(log)s"
exec %(go)s "$@"
"""


def which(name):
    for d in os.environ.get("PATH", "/usr/bin:/bin").split(":"):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    raise TestFailure("%s not on PATH" % name)


def write_exec(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o755)


def git_env():
    e = dict(os.environ)
    e.update({"HOME": C.home, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
              "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
              "GIT_TERMINAL_PROMPT": "0"})
    return e


def git(cwd, *args):
    r = subprocess.run(["git"] + list(args), cwd=cwd, env=git_env(), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    if r.returncode != 0:
        raise TestFailure("git %s: %s" % (" ".join(args), r.stdout.decode()[-300:]))
    return r.stdout.decode()


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


class Repo:
    """A bare repository <repos>/team/<name> and a work tree to commit from."""

    def __init__(self, name):
        self.bare = os.path.join(C.repos, "team", name)
        self.work = os.path.join(C.tmp, "work", name)
        os.makedirs(self.bare)
        git(C.tmp, "init", "-q", "--bare", "-b", "master", self.bare)
        git(C.tmp, "init", "-q", "-b", "master", self.work)
        git(self.work, "remote", "add", "origin", self.bare)

    def commit(self, files, msg="change", tags=(), branch="master"):
        for rel, text in files.items():
            write(os.path.join(self.work, rel), text)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", msg)
        for t in tags:
            git(self.work, "tag", t)
        git(self.work, "push", "-q", "origin", "HEAD:refs/heads/" + branch, *["refs/tags/" + t for t in tags])

    def checkout(self, branch, new=False):
        git(self.work, "checkout", "-q", *(["-b", branch] if new else [branch]))


def gomod(path):
    return "module %s\n\ngo 1.19\n" % path


def make_repos():
    lib = Repo("lib.git")
    lib.commit({"go.mod": gomod(LIB), "lib.go": 'package lib\n\nfunc Hello() string { return "v1.0.0" }\n'},
               tags=["v1.0.0"])
    lib.commit({"sub/go.mod": gomod(LIB + "/sub"), "sub/sub.go": "package sub\n\nconst Name = \"sub\"\n"},
               tags=["sub/v1.0.0"])
    lib.commit({"lib.go": 'package lib\n\nfunc Hello() string { return "v1.1.0" }\n'}, tags=["v1.1.0"])
    lib.checkout("feature", new=True)
    lib.commit({"feature.go": "package lib\n\nconst Feature = true\n"}, branch="feature")
    lib.checkout("master")
    v2 = Repo("v2lib.git")
    v2.commit({"go.mod": gomod(HOST + "/team/v2lib.git"), "a.go": "package v2lib\n"}, tags=["v1.0.0"])
    v2.commit({"go.mod": gomod(HOST + "/team/v2lib.git/v2"), "a.go": "package v2lib\n\nconst V = 2\n"},
              tags=["v2.0.0"])
    old = Repo("old.git")   # no go.mod: v2 and up are +incompatible
    old.commit({"old.go": "package old\n"}, tags=["v1.0.0"])
    old.commit({"old.go": "package old\n\nconst X = 2\n"}, tags=["v2.0.0"])
    notag = Repo("notag.git")
    notag.commit({"go.mod": gomod(HOST + "/team/notag.git"), "n.go": "package n\n"})
    for name in ("two.git", "many.git", "slow.git", "hang.git", "grow.git", "secret.git", "gone.git",
                 "pub.git"):
        r = Repo(name)
        path = HOST + "/team/" + name
        r.commit({"go.mod": gomod(path), "x.go": "package x\n"}, tags=["v1.0.0"])
        r.commit({"x.go": "package x\n\nconst Y = 1\n"}, tags=["v1.1.0"])
        setattr(C, name.split(".")[0], r)


def setup():
    C.tmp = make_tmp("goproxyd-direct-", R)
    C.repos = os.path.join(C.tmp, "repos")
    C.home = os.path.join(C.tmp, "home")
    C.bin = os.path.join(C.tmp, "bin")
    for d in (C.repos, C.home, C.bin):
        os.makedirs(d)
    C.git_log = os.path.join(C.tmp, "git.log")
    C.go_log = os.path.join(C.tmp, "go.log")
    write_exec(os.path.join(C.bin, "git"), GIT_WRAPPER % {"log": C.git_log, "mark": HANG_MARK,
                                                          "git": which("git")})
    write_exec(os.path.join(C.bin, "gowrap"), GO_WRAPPER % {"log": C.go_log, "go": which("go")})
    base = "file://%s/" % C.repos
    for scheme in ("https://%s/", "http://%s/", "git://%s/", "ssh://git@%s/", "ssh://%s/",
                   "git+ssh://%s/", "git@%s:"):
        subprocess.run(["git", "config", "--global", "--add", "url.%s.insteadOf" % base, scheme % HOST],
                       env=git_env(), check=True, timeout=30)
    # Credentials that must never be shown: git.cred.test goes to a closed port.
    for scheme in ("https://%s/", "http://%s/", "git://%s/", "ssh://git@%s/", "git+ssh://%s/"):
        subprocess.run(["git", "config", "--global", "--add",
                        "url.https://alice:s3cretpw@127.0.0.1:9/.insteadOf", scheme % "git.cred.test"],
                       env=git_env(), check=True, timeout=30)
    make_repos()
    C.tree = os.path.join(C.tmp, "tree")
    mkmodules.generate(C.tree)
    C.up = fakeupstream.FakeUpstream(C.tree).start()
    R.cleanups.append(lambda: C.up.stop())
    R.cleanups.append(stop_daemons)
    R.after_each.append(stop_daemons)


def stop_daemons():
    while C.daemons:
        C.daemons.pop().stop(timeout=20)


def daemon(proxy=None, extra=(), go_bin=None):
    C.n += 1
    d = os.path.join(C.tmp, "d%02d" % C.n)
    os.makedirs(d)
    args = ["-goBin", go_bin or os.path.join(C.bin, "gowrap")] + list(extra)
    if proxy is None:
        args = ["-exclude", HOST + ",git.cred.test"] + args
    env = {"HOME": C.home, "PATH": C.bin + ":" + os.environ.get("PATH", "/usr/bin:/bin")}
    dm = Daemon(os.path.join(d, "cache"), proxy or C.up.url, extra=args, env=env)
    dm.start(ready_timeout=60)
    C.daemons.append(dm)
    return dm


def p(module, version=None, kind="info"):
    if kind == "list":
        return "/%s/@v/list" % module
    if kind == "latest":
        return "/%s/@latest" % module
    return "/%s/@v/%s.%s" % (module, version, kind)


def ok(d, path, what=None):
    r = get(d.port, path, timeout=120)
    check(r.status == 200, "%s: status %d: %s (log: %s)" % (what or path, r.status, r.text()[:300],
                                                          d.log_tail(400)))
    return r


def go_runs(pattern):
    try:
        with open(C.go_log) as f:
            return sum(1 for line in f if pattern in line)
    except FileNotFoundError:
        return 0


def git_lines():
    try:
        with open(C.git_log) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def zip_names(body):
    return sorted(zipfile.ZipFile(io.BytesIO(body)).namelist())


def hung_pids():
    """Processes of the hung origin (`sleep 3601`) still alive."""
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if len(argv) >= 2 and argv[0].endswith(b"sleep") and argv[1] == HANG_MARK.encode():
            pids.append(int(pid))
    return pids


def metric(d, name):
    body = get(d.port, "/metrics").text()
    for line in body.splitlines():
        if line.split(" ")[0] == name:
            return float(line.split()[-1])
    raise TestFailure("metric %s missing" % name)


# ------------------------------------------------------------------ tests

def test_tagged_versions():
    d = daemon()
    eq(ok(d, p(LIB, kind="list")).text().split(), ["v1.0.0", "v1.1.0"], "list")
    info = json.loads(ok(d, p(LIB, "v1.0.0", "info")).body)
    eq(info["Version"], "v1.0.0", "info version")
    check("Time" in info, "info has no Time: %r" % info)
    eq(ok(d, p(LIB, "v1.0.0", "mod")).text(), gomod(LIB), "mod")
    z = ok(d, p(LIB, "v1.1.0", "zip")).body
    eq(zip_names(z), [LIB + "@v1.1.0/go.mod", LIB + "@v1.1.0/lib.go"], "zip files (sub/ is another module)")
    check(b"v1.1.0" in zipfile.ZipFile(io.BytesIO(z)).read(LIB + "@v1.1.0/lib.go"), "zip content of v1.1.0")
    # stored in the cache's usual layout, served again as a hit
    f = os.path.join(d.cache_dir, LIB, "@v", "v1.1.0.zip")
    check(os.path.exists(f), "zip not stored at %s" % f)
    n = go_runs(LIB + "@v1.1.0")
    r = ok(d, p(LIB, "v1.1.0", "zip"))
    eq(r.h("X-Goproxyd-Cache"), "hit", "second zip answer")
    eq(go_runs(LIB + "@v1.1.0"), n, "go commands for a cached zip")


def test_major_v2():
    d = daemon()
    m = HOST + "/team/v2lib.git/v2"
    eq(ok(d, p(m, kind="list")).text().split(), ["v2.0.0"], "v2 list")
    eq(ok(d, p(m, "v2.0.0", "mod")).text(), gomod(m), "v2 mod")
    eq(zip_names(ok(d, p(m, "v2.0.0", "zip")).body), [m + "@v2.0.0/a.go", m + "@v2.0.0/go.mod"], "v2 zip")
    eq(ok(d, p(HOST + "/team/v2lib.git", kind="list")).text().split(), ["v1.0.0"], "v1 list")


def test_pseudo_version_from_branch():
    d = daemon()
    info = json.loads(ok(d, p(LIB, "feature", "info")).body)
    v = info["Version"]
    check(v.startswith("v1.1.1-0.") and len(v.split("-")[-1]) == 12, "feature resolves to %r" % v)
    eq(ok(d, p(LIB, v, "mod")).text(), gomod(LIB), "pseudo-version mod")
    names = zip_names(ok(d, p(LIB, v, "zip")).body)
    check(LIB + "@" + v + "/feature.go" in names, "pseudo-version zip: %r" % names)
    # the query's answer is also kept under its canonical version
    check(os.path.exists(os.path.join(d.cache_dir, LIB, "@v", v + ".info")), "canonical .info not kept")


def test_incompatible():
    d = daemon()
    m = HOST + "/team/old.git"
    v = "v2.0.0+incompatible"
    lst = ok(d, p(m, kind="list")).text().split()
    check(v in lst and "v1.0.0" in lst, "list %r" % lst)
    eq(json.loads(ok(d, p(m, v, "info")).body)["Version"], v, "info")
    eq(ok(d, p(m, v, "mod")).text(), "module %s\n" % m, "synthesized go.mod")
    eq(zip_names(ok(d, p(m, v, "zip")).body), [m + "@" + v + "/old.go"], "zip")


def test_nested_module():
    d = daemon()
    m = LIB + "/sub"
    eq(ok(d, p(m, kind="list")).text().split(), ["v1.0.0"], "nested list")
    eq(ok(d, p(m, "v1.0.0", "mod")).text(), gomod(m), "nested mod")
    eq(zip_names(ok(d, p(m, "v1.0.0", "zip")).body), [m + "@v1.0.0/go.mod", m + "@v1.0.0/sub.go"],
       "nested zip")


def test_list_latest_and_queries():
    d = daemon()
    eq(json.loads(ok(d, p(LIB, kind="latest")).body)["Version"], "v1.1.0", "@latest")
    eq(json.loads(ok(d, p(LIB, "v1.0", "info")).body)["Version"], "v1.0.0", "v1.0 query")
    eq(json.loads(ok(d, p(LIB, "master", "info")).body)["Version"], "v1.1.0", "master query")
    check(os.path.exists(os.path.join(d.cache_dir, LIB, "@latest")), "@latest not cached")


def test_repository_without_tags():
    d = daemon()
    m = HOST + "/team/notag.git"
    eq(ok(d, p(m, kind="list")).text(), "", "list of a repository without tags")
    v = json.loads(ok(d, p(m, kind="latest")).body)["Version"]
    check(v.startswith("v0.0.0-") and len(v.split("-")[-1]) == 12, "@latest %r is no pseudo-version" % v)
    eq(ok(d, p(m, v, "mod")).text(), gomod(m), "pseudo-version .mod")


def test_new_tag_seen_after_cache_expire():
    d = daemon(extra=["-cacheExpire", "5s"])
    m = HOST + "/team/grow.git"
    t0 = time.time()
    eq(ok(d, p(m, kind="list")).text().split(), ["v1.0.0", "v1.1.0"], "list before")
    eq(json.loads(ok(d, p(m, kind="latest")).body)["Version"], "v1.1.0", "latest before")
    t1 = time.time()   # both stored by now
    C.grow.commit({"x.go": "package x\n\nconst Y = 2\n"}, tags=["v1.2.0"])
    r = ok(d, p(m, kind="list"))
    if time.time() - t0 < 4:   # still fresh, unless this machine is very slow
        eq(r.text().split(), ["v1.0.0", "v1.1.0"], "list while fresh")
        eq(r.h("X-Goproxyd-Cache"), "hit", "list while fresh")
    time.sleep(max(0.0, t1 + 5.5 - time.time()))
    eq(ok(d, p(m, kind="list")).text().split(), ["v1.0.0", "v1.1.0", "v1.2.0"], "list after -cacheExpire")
    eq(json.loads(ok(d, p(m, kind="latest")).body)["Version"], "v1.2.0", "latest after -cacheExpire")


def test_stale_when_origin_unreachable():
    d = daemon(extra=["-cacheExpire", "1s"])
    m = HOST + "/team/gone.git"
    eq(ok(d, p(m, kind="list")).text().split(), ["v1.0.0", "v1.1.0"], "list")
    eq(json.loads(ok(d, p(m, kind="latest")).body)["Version"], "v1.1.0", "latest")
    eq(json.loads(ok(d, p(m, "master", "info")).body)["Version"], "v1.1.0", "master query")
    os.rename(C.gone.bare, C.gone.bare + ".away")
    try:
        time.sleep(1.5)
        for path in (p(m, kind="list"), p(m, kind="latest"), p(m, "master", "info")):
            n = go_runs(m)
            r = ok(d, path, "stale " + path)
            eq(r.h("X-Goproxyd-Cache"), "stale", path + " cache outcome")
            check(go_runs(m) > n, "%s: the origin was not asked again" % path)
        r = get(d.port, p(m, "v1.0.0", "zip"), timeout=120)
        eq(r.status, 404, "an uncached zip with the origin gone")
    finally:
        os.rename(C.gone.bare + ".away", C.gone.bare)


def go_client_env(name):
    base = os.path.join(C.tmp, "client-" + name)
    home = os.path.join(base, "home")
    os.makedirs(home)
    e = {k: v for k, v in os.environ.items() if not k.startswith("GO") and not k.startswith("GIT")}
    e.update({"HOME": home, "GOPATH": os.path.join(base, "gopath"),
              "GOMODCACHE": os.path.join(base, "gopath", "pkg", "mod"),
              "GOCACHE": os.path.join(base, "gocache"), "GOSUMDB": "off", "GOFLAGS": "-mod=mod",
              "GO111MODULE": "on", "GOTOOLCHAIN": "local", "GIT_TERMINAL_PROMPT": "0"})
    return base, e


@timeout(300)
def test_go_build_through_goproxyd():
    d = daemon()
    base, env = go_client_env("build")
    env["GOPROXY"] = d.url
    app = os.path.join(base, "app")
    write(os.path.join(app, "go.mod"), "module example.com/app\n\ngo 1.19\n\nrequire %s v1.1.0\n" % LIB)
    write(os.path.join(app, "main.go"),
          'package main\n\nimport (\n\t"fmt"\n\n\tlib "%s"\n)\n\nfunc main() { fmt.Println(lib.Hello()) }\n' % LIB)
    r = subprocess.run(["go", "build", "-o", "app", "."], cwd=app, env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=240)
    check(r.returncode == 0, "go build: %s (log: %s)" % (r.stdout.decode()[-600:], d.log_tail(400)))
    out = subprocess.run([os.path.join(app, "app")], stdout=subprocess.PIPE, timeout=30).stdout.decode()
    eq(out.strip(), "v1.1.0", "the built program's output")
    check("h1:" in open(os.path.join(app, "go.sum")).read(), "go.sum written")


@timeout(240)
def test_twenty_requests_one_child():
    d = daemon()
    m = HOST + "/team/slow.git"   # its git commands take a second: the requests overlap
    results = []

    def one():
        try:
            r = get(d.port, p(m, "v1.0.0", "zip"), timeout=120)
            results.append((r.status, r.body))
        except Exception as e:
            results.append((0, str(e)))
    threads = [threading.Thread(target=one) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(150)
    eq(len(results), 20, "answers")
    eq(sorted(set(s for s, _ in results)), [200], "statuses")
    eq(len(set(b for _, b in results)), 1, "distinct bodies")
    eq(go_runs(m + "@v1.0.0"), 1, "go commands for 20 concurrent requests")


@timeout(240)
def test_max_direct_bounds_children():
    d = daemon(extra=["-maxDirect", "1"])
    m = HOST + "/team/slow.git"
    paths = [p(m, "v1.1.0", "info"), p(m, "v1.1.0", "mod"), p(m, kind="list")]
    results = []

    def one(path):
        results.append(get(d.port, path, timeout=150).status)
    threads = [threading.Thread(target=one, args=(x,)) for x in paths]
    for t in threads:
        t.start()
    most, seen_waiting = 0, False
    while any(t.is_alive() for t in threads):
        most = max(most, metric(d, "goproxyd_direct_running"))
        seen_waiting = seen_waiting or metric(d, "goproxyd_fetches_inflight") >= 2
        time.sleep(0.05)
    eq(sorted(results), [200, 200, 200], "statuses")
    check(seen_waiting, "the three fetches never overlapped (nothing to prove)")
    eq(most, 1.0, "go commands running at once with -maxDirect 1")


def test_second_version_does_not_clone_again():
    d = daemon()
    m = HOST + "/team/two.git"
    ok(d, p(m, "v1.0.0", "zip"))
    before = git_lines()
    inits = [line for line in before if " init " in line + " "]
    check(inits, "no `git init` logged for the first version: the wrapper is not in use")
    ok(d, p(m, "v1.1.0", "zip"))
    after = git_lines()[len(before):]
    check(after, "no git command for the second version (nothing to prove)")
    new_inits = [line for line in after if " init " in line + " "]
    eq(new_inits, [], "git init for the second version of the repository")
    check(not any(" clone " in line + " " for line in after), "git clone for the second version")


def test_missing_repository_404_with_reason():
    d = daemon()
    r = get(d.port, p(HOST + "/team/nope.git", kind="list"), timeout=120)
    eq(r.status, 404, "status for a repository that does not exist")
    t = r.text()
    check("nope" in t and "git ls-remote" in t, "go command's reason missing: %r" % t)
    check(d.cache_dir not in t, "body shows goproxyd's directory: %r" % t)
    check("\n" not in t.rstrip("\n"), "body is not one line: %r" % t)


def test_credentials_never_shown():
    d = daemon()
    r = get(d.port, p("git.cred.test/x.git", kind="list"), timeout=120)
    eq(r.status, 404, "status for an origin that refuses")
    time.sleep(0.2)
    log = open(d.log_path, errors="replace").read()
    metrics = get(d.port, "/metrics").text()
    for where, text in (("body", r.text()), ("log", log), ("metrics", metrics)):
        check("s3cretpw" not in text and "alice" not in text, "credential in the %s: %r" % (where, text[-400:]))


@timeout(120)
def test_hung_origin_cut_at_direct_timeout():
    d = daemon(extra=["-directTimeout", "2s"])
    t0 = time.time()
    r = get(d.port, p(HOST + "/team/hang.git", kind="list"), timeout=60)
    took = time.time() - t0
    eq(r.status, 404, "status after -directTimeout")
    check("-directTimeout" in r.text(), "reason: %r" % r.text())
    check(took < 30, "answer took %.1fs" % took)
    deadline = time.time() + 5
    while hung_pids() and time.time() < deadline:
        time.sleep(0.1)
    eq(hung_pids(), [], "processes of the killed group still alive")
    eq(metric(d, 'goproxyd_direct_fetches_total{outcome="timeout"}'), 1.0, "timeout metric")
    eq(metric(d, "goproxyd_direct_running"), 0.0, "children running after the timeout")


@timeout(120)
def test_sigterm_with_child_running():
    d = daemon(extra=["-shutdownTimeout", "1s"])
    answer = {}

    def one():
        try:
            answer["r"] = get(d.port, p(HOST + "/team/hang.git", "v1.0.0", "info"), timeout=60)
        except Exception as e:
            answer["e"] = e
    t = threading.Thread(target=one)
    t.start()
    deadline = time.time() + 30
    while not hung_pids() and time.time() < deadline:
        time.sleep(0.1)
    check(hung_pids(), "the hung child never started")
    eq(metric(d, "goproxyd_direct_running"), 1.0, "children running")
    t0 = time.time()
    d.proc.send_signal(signal.SIGTERM)
    rc = d.proc.wait(30)
    eq(rc, 0, "exit status after SIGTERM")
    check(time.time() - t0 < 15, "shutdown took %.1fs" % (time.time() - t0))
    t.join(30)
    check("r" in answer or "e" in answer, "the waiting client got nothing")
    if "r" in answer:
        check(answer["r"].status in (404, 503), "waiting client's status %d" % answer["r"].status)
    deadline = time.time() + 5
    while hung_pids() and time.time() < deadline:
        time.sleep(0.1)
    eq(hung_pids(), [], "child's process group alive after shutdown")


def test_upstream_never_sees_private_paths():
    C.up.reset()
    d = daemon()
    ok(d, p(LIB, kind="list"))
    ok(d, p(LIB, "v1.0.0", "mod"))
    ok(d, p(LIB, kind="latest"))
    r = get(d.port, "/sumdb/sum.golang.org/lookup/%s@v1.0.0" % LIB)
    eq(r.status, 404, "checksum-database lookup of an -exclude module")
    # a public module still goes to the upstream, with no go command
    n = go_runs("example.com/liba")
    ok(d, "/example.com/liba/@v/list")
    eq(go_runs("example.com/liba"), n, "go commands for a public module")
    check(C.up.count() >= 1, "the upstream saw nothing at all")
    eq([path for path in C.up.stats() if "internal" in path or "team" in path], [],
       "private paths in the upstream's log")


def test_sumdb_lookup_of_excluded_refused():
    d = daemon(extra=["-sumdb", "sum.golang.org=http://127.0.0.1:9"])
    r = get(d.port, "/sumdb/sum.golang.org/lookup/%s@v1.0.0" % LIB)
    eq(r.status, 404, "lookup of an -exclude module")
    check("private" in r.text(), "reason %r" % r.text())
    # and the module itself is fetched without a lookup (the database is down)
    ok(d, p(LIB, "v1.0.0", "zip"), "zip of an -exclude module with the database unreachable")


def test_deny_refuses():
    d = daemon(extra=["-deny", HOST + "/team/secret*"])
    n = go_runs("secret")
    for path in (p(HOST + "/team/secret.git", kind="list"), p(HOST + "/team/secret.git", "v1.0.0", "zip")):
        r = get(d.port, path)
        eq(r.status, 404, "denied " + path)
        check("-deny" in r.text(), "reason %r" % r.text())
    eq(go_runs("secret"), n, "go commands for a denied module")
    check(not os.path.exists(os.path.join(d.cache_dir, HOST, "team", "secret.git")), "denied module stored")


def direct_health(d):
    """The outcome in the front page's health row of the direct entry."""
    page = get(d.port, "/", headers={"Accept": "text/html"}).text()
    row = re.search(r"<tr><td>upstream</td><td><code>direct</code></td><td>(.*?)</td></tr>", page)
    check(row, "no direct row on the front page")
    return re.sub(r"<span class=\"dim\">[^<]*ago</span>|<[^>]+>", "", row.group(1)).strip()


def test_proxy_direct_falls_back_on_404_only():
    C.up.reset()
    d = daemon(proxy=C.up.url + ",direct")
    # the upstream has it: no go command
    n = go_runs("example.com/liba")
    ok(d, "/example.com/liba/@v/v1.0.0.mod")
    eq(go_runs("example.com/liba"), n, "go commands for a module the upstream serves")
    eq(direct_health(d), "not asked yet", "the front page's direct row before a go command")
    # the upstream says 404: fetched from the origin
    ok(d, p(LIB, "v1.0.0", "info"), "direct after the upstream's 404")
    eq(direct_health(d), "ok", "the front page's direct row after the go command's fetch")
    check(C.up.count("team/lib") >= 1, "the upstream was not asked first")
    # the upstream fails: ',' does not fall through
    m = get(d.port, "/metrics").text()
    check('upstream="direct"' not in m, "a 'direct' row among the upstream transfers")
    check('goproxyd_direct_fetches_total{outcome="ok"} 1' in m, "direct fetch not counted: %s"
          % [x for x in m.splitlines() if "direct" in x])
    # the upstream answered one 200 (liba) and one 404 (lib.git): the
    # go command's answer after that 404 is not the upstream's
    ups = [x for x in m.splitlines() if x.startswith("goproxyd_upstream_requests_total{") and
           'upstream="%s"' % C.up.url in x]
    got = {x.split('outcome="')[1].split('"')[0]: float(x.split()[-1]) for x in ups}
    eq((got.get("ok"), got.get("notfound")), (1.0, 1.0), "upstream transfers counted: %r" % ups)
    C.up.set_rules({"two": {"status": 500}})
    n = go_runs("two.git")
    r = get(d.port, p(HOST + "/team/two.git", "v1.0.0", "info"), timeout=60)
    eq(r.status, 404, "status after the upstream's 500")
    check("500" in r.text(), "reason %r" % r.text())
    eq(go_runs("two.git"), n, "go commands after a 500 with ','")
    # '|' falls through after the same 500
    d2 = daemon(proxy=C.up.url + "|direct")
    n = go_runs("two.git@v1.0.0")
    ok(d2, p(HOST + "/team/two.git", "v1.0.0", "info"), "direct after a 500 with '|'")
    eq(go_runs("two.git@v1.0.0"), n + 1, "go commands after a 500 with '|'")
    C.up.reset()


def test_proxy_direct_not_private_verified():
    """A module fetched through 'direct' that is not -exclude'd goes through the
    checksum database: with one that cannot be reached, nothing is cached."""
    d = daemon(proxy="direct", extra=["-sumdb", "sum.golang.org=http://127.0.0.1:9"])
    r = get(d.port, p(HOST + "/team/many.git", "v1.0.0", "mod"), timeout=120)
    check(r.status != 200, "a .mod fetched direct was served without verification")
    check(not os.path.exists(os.path.join(d.cache_dir, HOST, "team", "many.git", "@v", "v1.0.0.mod")),
          "unverified .mod stored")
    ok(d, p(HOST + "/team/many.git", "v1.0.0", "info"), ".info needs no verification")


def go_sums(module, version):
    """(h1 of the zip, h1 of the go.mod) as the go command computes them,
    fetched directly in a scratch GOPATH with the test HOME's insteadOf."""
    base, env = go_client_env("sums-" + version)
    env.update({"HOME": C.home, "GOPROXY": "direct", "GOPRIVATE": HOST})
    r = subprocess.run(["go", "mod", "download", "-json", "%s@%s" % (module, version)], cwd=base, env=env,
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    check(r.returncode == 0, "go mod download %s@%s: %s" % (module, version, r.stderr.decode()[-300:]))
    j = json.loads(r.stdout)
    return j["Sum"], j["GoModSum"]


@timeout(240)
def test_direct_public_module_verified_with_sumdb():
    """'direct' for a module not -exclude'd: the checksum database is asked
    before caching; a matching record lets it in, a mismatch keeps it out."""
    m = HOST + "/team/pub.git"
    good = go_sums(m, "v1.0.0")
    db = fakesumdb.FakeSumDB()
    db.add(m, "v1.0.0", good[0], good[1])
    db.add(m, "v1.1.0", good[0], good[1])   # v1.1.0's zip differs (its go.mod does not)
    db.start()
    R.cleanups.append(db.stop)
    d = daemon(proxy="direct", extra=["-sumdb", "%s=%s" % (db.vkey, db.url)])
    ok(d, p(m, "v1.0.0", "mod"), "verified .mod")
    ok(d, p(m, "v1.0.0", "zip"), "verified .zip")
    check(db.count("/lookup/") >= 1, "the checksum database was not asked: %s" % db.counts)
    ok(d, p(m, "v1.1.0", "mod"), "v1.1.0.mod (the same go.mod as v1.0.0: its record matches)")
    r = get(d.port, p(m, "v1.1.0", "zip"), timeout=120)
    check(r.status == 404 and "rejected" in r.text(), "v1.1.0.zip with a mismatching record: %d %r"
          % (r.status, r.text()[:200]))
    check(not os.path.exists(os.path.join(d.cache_dir, HOST, "team", "pub.git", "@v", "v1.1.0.zip")),
          "rejected v1.1.0.zip stored")


def test_startup_needs_the_go_command():
    d = os.path.join(C.tmp, "nogo")
    os.makedirs(d)
    for extra in (["-exclude", HOST], ["-proxy", "direct"]):
        args = [Daemon(d, None).binary, "-listen", "127.0.0.1:0", "-cacheDir", os.path.join(d, "c"),
                "-sumdb", "off", "-goBin", os.path.join(d, "no-such-go")] + extra
        r = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        eq(r.returncode, 1, "exit status with %s and no go command" % extra)
        check(b"go command does not run" in r.stdout, "message: %r" % r.stdout[-300:])


def test_cache_walkers_skip_the_go_gopath():
    d = daemon(extra=["-cacheMaxSize", "100M"])
    ok(d, p(LIB, "v1.0.0", "zip"))
    gopath = os.path.join(d.cache_dir, ".goproxyd-direct")
    check(os.path.isdir(os.path.join(gopath, "gopath", "pkg", "mod", "cache", "vcs")), "no vcs cache kept")
    time.sleep(0.3)
    files = metric(d, "goproxyd_cache_files")
    on_disk = 0
    for root, dirs, names in os.walk(d.cache_dir):
        if root == d.cache_dir:
            dirs[:] = [x for x in dirs if x != ".goproxyd-direct"]
        on_disk += len(names)
    eq(files, float(on_disk), "cache files counted (the go command's tree excluded)")
    # a restart rebuilds the catalog from the directory: the go command's
    # own copies of the module are not listed as cached versions
    d.stop()
    d.start(ready_timeout=60)
    cat = None
    for _ in range(100):   # the catalog's start-up walk runs beside serving
        cat = json.loads(get(d.port, "/catalog").text())
        if cat.get("modules"):
            break
        time.sleep(0.05)
    eq(cat["modules"], [{"module": LIB, "version": "v1.0.0"}], "catalog after a restart")
    d.stop()
    C.daemons.remove(d)
    r = subprocess.run([d.binary, "gc", "-cacheDir", d.cache_dir, "-cacheMaxSize", "1"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    check(os.path.isdir(os.path.join(gopath, "gopath", "pkg", "mod", "cache", "vcs")),
          "goproxyd gc removed the go command's tree: %s" % r.stdout.decode()[-300:])


def test_prefetch_and_export_private_module():
    """`goproxyd prefetch -exclude` fetches a private module with the go
    command, as the daemon does; `export` bundles those cache files and
    nothing of the go command's own tree."""
    C.n += 1
    base = os.path.join(C.tmp, "pf%02d" % C.n)
    cache = os.path.join(base, "cache")
    os.makedirs(cache)
    binary = Daemon(base, None).binary
    runs = go_runs(LIB)
    env = dict(os.environ, HOME=C.home, PATH=C.bin + ":" + os.environ.get("PATH", "/usr/bin:/bin"))
    r = subprocess.run([binary, "prefetch", "-cacheDir", cache, "-proxy", C.up.url, "-exclude", HOST,
                        "-goBin", os.path.join(C.bin, "gowrap"), LIB + "@v1.0.0"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env, timeout=300)
    out = r.stdout.decode()
    eq(r.returncode, 0, "prefetch status (out %r, err %r)" % (out[-600:], r.stderr.decode()[-600:]))
    check("failed 0" in out, "summary: %r" % out[-300:])
    for k in ("info", "mod", "zip"):
        check(os.path.isfile(os.path.join(cache, mkmodules.rel(LIB, "v1.0.0", k))), "%s not cached" % k)
    check(os.path.isfile(os.path.join(cache, mkmodules.rel(LIB, kind="list"))), "@v/list not cached")
    names = zip_names(open(os.path.join(cache, mkmodules.rel(LIB, "v1.0.0", "zip")), "rb").read())
    check(LIB + "@v1.0.0/lib.go" in names, "zip entries %r" % names)
    check(os.path.isdir(os.path.join(cache, ".goproxyd-direct", "gopath", "pkg", "mod", "cache", "vcs")),
          "the go command did not run under the cache's .goproxyd-direct")
    check(go_runs(LIB) > runs, "no go command run for %s" % LIB)
    bundle = os.path.join(base, "b.tar")
    r = subprocess.run([binary, "export", "-cacheDir", cache, "-o", bundle],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    eq(r.returncode, 0, "export status: %s" % r.stdout.decode()[-400:])
    import tarfile
    with tarfile.open(bundle) as t:
        got = t.getnames()
    check(mkmodules.rel(LIB, "v1.0.0", "zip") in got, "zip not exported: %r" % got[:20])
    eq([n for n in got if ".goproxyd-direct" in n], [], "the go command's tree exported")


TESTS = [
    test_startup_needs_the_go_command,
    test_tagged_versions, test_major_v2, test_pseudo_version_from_branch, test_incompatible,
    test_nested_module, test_list_latest_and_queries, test_new_tag_seen_after_cache_expire,
    test_stale_when_origin_unreachable, test_repository_without_tags,
    test_go_build_through_goproxyd, test_twenty_requests_one_child, test_max_direct_bounds_children,
    test_second_version_does_not_clone_again, test_missing_repository_404_with_reason,
    test_credentials_never_shown, test_hung_origin_cut_at_direct_timeout, test_sigterm_with_child_running,
    test_upstream_never_sees_private_paths, test_sumdb_lookup_of_excluded_refused, test_deny_refuses,
    test_proxy_direct_falls_back_on_404_only, test_proxy_direct_not_private_verified,
    test_direct_public_module_verified_with_sumdb,
    test_cache_walkers_skip_the_go_gopath, test_prefetch_and_export_private_module,
]

if __name__ == "__main__":
    sys.exit(R.main(setup, TESTS, sys.argv[1:]))

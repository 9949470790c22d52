#!/usr/bin/env python3
"""Checks tests/lib/fakesumdb.py against the real go command.

Run:  python3 tests/integration/test_fakesumdb_gocmd.py [NAME-SUBSTRING ...]
Env:  KEEP_TMP=1 keeps the temp dirs.

Modules come from tests/lib/mkmodules.py, served to go through a file://
GOPROXY; the fake sumdb runs in-process on 127.0.0.1 and go is pointed at it
with GOSUMDB="<vkey> http://127.0.0.1:PORT" (GONOSUMDB/GONOSUMCHECK/GOPRIVATE
unset, fresh HOME/GOPATH/GOMODCACHE per test). Honest data must be accepted,
every tamper mode rejected. Prints "ok NAME" / "FAIL NAME: reason" per test
and, last, "N passed, N failed"; exits 1 on failures. Needs `go` in PATH
(if absent, every test fails saying so). Only 127.0.0.1 is contacted.
"""

import base64
import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import ed25519  # noqa: E402
import fakesumdb  # noqa: E402
import mkmodules  # noqa: E402
from harness import Runner, TestFailure, check, eq, get, make_tmp, timeout  # noqa: E402

GO_TIMEOUT = 180
R = Runner(default_timeout=300)
S = {}   # shared: module tree, generated once

LIBA, LIBB = "example.com/liba", "example.com/libb"


def modules():
    if "info" not in S:
        root = make_tmp("fakesumdb-mods-", R)
        S["info"] = mkmodules.generate(os.path.join(root, "proxy"))
    return S["info"]


def new_db(records=None):
    db = fakesumdb.FakeSumDB("sum.test.example")
    if records is None:
        db.add_proxy_dir(modules()["root"])
    else:
        for r in records:
            db.add(*r)
    db.start()
    R.after_each.append(db.stop)
    return db


def go_env(tmp, db):
    if shutil.which("go") is None:
        raise TestFailure("the go command is not installed")
    return mkmodules.go_env(tmp, "file://" + modules()["root"], gosumdb="%s %s" % (db.vkey, db.url))


def go(args, env, cwd):
    """(status, output) of `go ARGS`; a timeout fails the test, so that it
    never passes for a rejection."""
    rc, out = mkmodules.run_go(args, cwd, env, GO_TIMEOUT)
    if rc is None:
        raise TestFailure(out)
    return rc, out


def download(env, tmp, *mods):
    """go mod download -json mods, outside any module."""
    cwd = os.path.join(tmp, "nomod")
    os.makedirs(cwd, exist_ok=True)
    return go(["mod", "download", "-json"] + list(mods), env, cwd)


def expect_reject(mode, want, mods=(LIBA + "@v1.0.0",), db=None):
    tmp = make_tmp("fakesumdb-go-", R)
    db = db or new_db()
    db.set_mode(mode)
    rc, out = download(go_env(tmp, db), tmp, *mods)
    check(rc != 0, "go accepted %s data:\n%s" % (mode, out))
    check(want in out, "go failed without %r:\n%s" % (want, out[-1500:]))
    check(db.count("^/lookup/") > 0, "go never asked the fake sumdb")
    if os.environ.get("SHOW_GO"):
        sys.stderr.write("--- %s:\n%s\n" % (mode, out))
    return out


def sumdb_dir_tiles(tmp):
    """Tiles the go command saved after authenticating them."""
    base = os.path.join(tmp, "gomodcache", "cache", "download", "sumdb", "sum.test.example")
    out = []
    for d, _dirs, files in os.walk(os.path.join(base, "tile")):
        for f in files:
            out.append(os.path.relpath(os.path.join(d, f), base))
    return sorted(out)


# ------------------------------------------------------------------ tests

@timeout(60)
def test_server_endpoints():
    """The fake's own formats: note signature, lookup, tiles, 404s."""
    db = new_db()
    n, root = db.tree()
    r = get(db.port, "/latest")
    eq(r.status, 200, "/latest status")
    text, _, sigs = r.body.rpartition(b"\n\n")
    text += b"\n"
    eq(text, fakesumdb.format_tree(n, root), "tree note text")
    line = sigs.decode()
    check(line.startswith("\u2014 sum.test.example ") and line.endswith("\n"), "sig line %r" % line)
    raw = base64.b64decode(line.split(" ")[2])
    name, hh, k64 = db.vkey.split("+")
    eq(struct.unpack(">I", raw[:4])[0], int(hh, 16), "key hash in signature")
    pub = base64.b64decode(k64)[1:]
    check(ed25519.verify(pub, text, raw[4:]), "tree note signature does not verify")

    r = get(db.port, "/lookup/example.com/!mixed!case/lib@v1.0.0")
    eq(r.status, 200, "lookup status")
    rid, _, rest = r.body.partition(b"\n")
    rec, _, note = rest.partition(b"\n\n")
    sums = modules()["sums"]
    m = "example.com/MixedCase/lib v1.0.0"
    eq(rec + b"\n", ("%s %s\n%s/go.mod %s\n" % (m, sums[m], m, sums[m + "/go.mod"])).encode(),
       "lookup record")
    eq(note, r.body[-len(note):], "lookup note")
    check(int(rid) < n, "record id %s in tree of %d" % (rid, n))

    eq(get(db.port, "/lookup/example.com/nosuch@v1.0.0").status, 404, "unknown module")
    eq(get(db.port, "/lookup/example.com/liba@latest").status, 400, "bad version")
    t = get(db.port, "/tile/8/0/000.p/%d" % n)
    eq((t.status, len(t.body)), (200, 32 * n), "partial level-0 tile")
    eq(t.body[32 * int(rid):32 * int(rid) + 32], fakesumdb.record_hash(rec + b"\n"), "leaf hash")
    eq(get(db.port, "/tile/8/0/000").status, 404, "full tile of a small tree")
    eq(get(db.port, "/tile/8/0/0.p/1").status, 400, "non-canonical tile path")
    d = get(db.port, "/tile/8/data/000.p/%d" % n)
    eq(d.status, 200, "data tile")
    check((rec + b"\n\n") in d.body, "data tile lacks the record")


def test_tile_paths():
    eq(fakesumdb.tile_path(8, 0, 1234067, 1), "tile/8/0/x001/x234/067.p/1", "path")
    eq(fakesumdb.tile_path(8, -1, 0, 256), "tile/8/data/000", "data path")
    eq(fakesumdb.tile_path(3, 4, 1234067, 8), "tile/3/4/x001/x234/067", "full path")


def test_big_log_tiles():
    """A log of 70000 records: full tiles, level-1 and level-2 tiles agree
    with the root (hashes of level-0 tiles are entries of level-1 tiles)."""
    log = fakesumdb.Log()
    for i in range(70000):
        log.append(b"r %d\n" % i)
    n = len(log)
    t0 = log.hash_tile(0, 5, 256, n)
    t1 = log.hash_tile(1, 0, 256, n)
    h = [t0[i:i + 32] for i in range(0, len(t0), 32)]
    while len(h) > 1:
        h = [fakesumdb.node_hash(h[i], h[i + 1]) for i in range(0, len(h), 2)]
    eq(h[0], t1[5 * 32:6 * 32], "level-1 entry 5 = hash of level-0 tile 5")
    eq(log.hash_tile(2, 0, 1, n), log.levels[16][0], "level-2 tile")
    check(log.hash_tile(2, 0, 2, n) is None, "no second level-16 hash yet")


@timeout(400)
def test_go_accepts_honest_and_builds():
    tmp = make_tmp("fakesumdb-go-", R)
    db = new_db()
    env = go_env(tmp, db)
    app = mkmodules.write_app(os.path.join(tmp, "app"))
    for args in (["mod", "download"], ["build", "-o", os.path.join(tmp, "app.bin"), "."]):
        rc, out = go(args, env, app)
        check(rc == 0, "go %s failed:\n%s" % (" ".join(args), out[-2000:]))
    with open(os.path.join(app, "go.sum")) as f:
        gosum = mkmodules.parse_gosum(f.read())
    for m, v in mkmodules.APP_GO_MOD_REQUIRES:
        eq(gosum.get("%s %s" % (m, v)), modules()["sums"]["%s %s" % (m, v)], "go.sum " + m)
    check(db.count("^/lookup/") >= len(mkmodules.APP_GO_MOD_REQUIRES), "lookups: %s" % db.counts)
    check(db.count("^/tile/8/0/") > 0, "no tiles fetched: %s" % db.counts)
    check(sumdb_dir_tiles(tmp), "go saved no authenticated tiles")
    latest = os.path.join(tmp, "gopath", "pkg", "sumdb", "sum.test.example", "latest")
    with open(latest, "rb") as f:
        eq(f.read(), db.signed_tree(), "go's stored latest tree note")


@timeout(240)
def test_go_accepts_many_records():
    """300 records: the proof needs a full level-0 tile and a level-1 tile."""
    info = modules()
    recs = [("example.com/filler%03d" % i, "v1.0.0", "h1:" + base64.b64encode(bytes([i % 256]) * 32).decode(),
             "h1:" + base64.b64encode(bytes([7]) * 32).decode()) for i in range(260)]
    real = []
    for key, h in sorted(info["sums"].items()):
        if not key.endswith("/go.mod"):
            p, v = key.split(" ")
            real.append((p, v, h, info["sums"][key + "/go.mod"]))
    db = new_db(recs[:130] + real + recs[130:])
    tmp = make_tmp("fakesumdb-go-", R)
    rc, out = download(go_env(tmp, db), tmp, LIBA + "@v1.1.0", "example.com/libd@v1.2.0-RC1")
    check(rc == 0, "go rejected honest data:\n%s" % out[-2000:])
    check(db.count("^/tile/8/0/000$") == 1, "full tile 0 not fetched: %s" % db.counts)
    check(db.count(r"^/tile/8/1/000\.p/1$") == 1, "level-1 tile not fetched: %s" % db.counts)


def test_forged_tile_mode():
    """forged-tile: the lookup's record hashes to the leaf in the served full
    tile, but the tiles no longer fold to the signed root through the
    level-1 tile (what a complete verifier must notice)."""
    recs = [("example.com/f%03d" % i, "v1.0.0", "h1:" + base64.b64encode(bytes([i % 256]) * 32).decode(),
             "h1:" + base64.b64encode(bytes(32)).decode()) for i in range(300)]
    db = new_db(recs)
    db.set_mode("forged-tile")
    r = get(db.port, "/lookup/example.com/f005@v1.0.0")
    eq(r.status, 200, "lookup")
    rid, _, rest = r.body.partition(b"\n")
    rec = rest.partition(b"\n\n")[0] + b"\n"
    eq(rid, b"5", "record id")
    check(rec != db.log.texts[5], "record not rewritten")
    tile0 = get(db.port, "/tile/8/0/000").body
    eq(tile0[5 * 32:6 * 32], fakesumdb.record_hash(rec), "forged leaf")
    h = [tile0[i:i + 32] for i in range(0, len(tile0), 32)]
    while len(h) > 1:
        h = [fakesumdb.node_hash(h[i], h[i + 1]) for i in range(0, len(h), 2)]
    lvl1 = get(db.port, "/tile/8/1/000.p/1").body
    check(h[0] != lvl1, "forged tile still matches its parent")
    eq(lvl1, db.log.levels[8][0], "level-1 tile stays honest")
    eq(get(db.port, "/tile/8/0/001.p/44").body, db.log.hash_tile(0, 1, 44, 300), "partial tile honest")


@timeout(240)
def test_go_rejects_wrong_hashes_in_log():
    info = modules()
    recs = []
    for key, h in sorted(info["sums"].items()):
        if not key.endswith("/go.mod"):
            p, v = key.split(" ")
            if p == LIBA and v == "v1.0.0":
                h = "h1:" + base64.b64encode(bytes(32)).decode()
            recs.append((p, v, h, info["sums"][key + "/go.mod"]))
    out = expect_reject(None, "SECURITY ERROR", db=new_db(recs))
    check("checksum mismatch" in out, "no checksum mismatch:\n%s" % out[-1500:])


@timeout(240)
def test_go_rejects_lookup_with_other_hashes():
    expect_reject("lookup-hashes", "cannot authenticate record data")


@timeout(240)
def test_go_rejects_bad_signature():
    expect_reject("bad-signature", "invalid signature for key sum.test.example")


@timeout(240)
def test_go_rejects_record_beyond_tree():
    expect_reject("beyond-tree", "cannot validate record")


@timeout(240)
def test_go_rejects_bad_tiles():
    expect_reject("bad-tiles", "inconsistent tile")


@timeout(240)
def test_go_rejects_unknown_key():
    tmp = make_tmp("fakesumdb-go-", R)
    db = new_db()
    other = fakesumdb.Key("sum.test.example", b"\x01" * 32)
    env = go_env(tmp, db)
    env["GOSUMDB"] = "%s %s" % (other.vkey, db.url)
    rc, out = download(env, tmp, LIBA + "@v1.0.0")
    check(rc != 0, "go accepted a note signed by another key:\n%s" % out)
    check("no verifiable signatures" in out, "unexpected failure:\n%s" % out[-1500:])


@timeout(240)
def test_go_rejects_unknown_module():
    tmp = make_tmp("fakesumdb-go-", R)
    db = new_db(records=[])
    db.add(LIBB, "v1.0.0", modules()["sums"][LIBB + " v1.0.0"],
           modules()["sums"][LIBB + " v1.0.0/go.mod"])
    rc, out = download(go_env(tmp, db), tmp, LIBA + "@v1.0.0")
    check(rc != 0, "go accepted a module the sumdb does not know:\n%s" % out)
    check("404 Not Found" in out, "unexpected failure:\n%s" % out[-1500:])


def _fork(mode):
    tmp = make_tmp("fakesumdb-go-", R)
    db = new_db()
    env = go_env(tmp, db)
    rc, out = download(env, tmp, LIBA + "@v1.0.0")
    check(rc == 0, "honest download failed:\n%s" % out[-2000:])
    db.set_mode(mode)
    rc, out = download(env, tmp, LIBB + "@v1.0.0")
    check(rc != 0, "go accepted a %s:\n%s" % (mode, out))
    return out


@timeout(300)
def test_go_detects_fork_larger_tree():
    out = _fork("fork")
    check("SECURITY ERROR" in out and "misbehavior" in out, "no fork report:\n%s" % out[-2000:])


@timeout(300)
def test_go_detects_fork_same_size():
    out = _fork("fork-same-size")
    check("SECURITY ERROR" in out and "misbehavior" in out, "no fork report:\n%s" % out[-2000:])


@timeout(300)
def test_go_accepts_growth():
    """A tree that grows honestly between two go runs is accepted."""
    tmp = make_tmp("fakesumdb-go-", R)
    info = modules()
    db = new_db(records=[])
    for m, v in ((LIBA, "v1.0.0"), (LIBB, "v1.0.0")):
        db.add(m, v, info["sums"]["%s %s" % (m, v)], info["sums"]["%s %s/go.mod" % (m, v)])
    env = go_env(tmp, db)
    rc, out = download(env, tmp, LIBA + "@v1.0.0")
    check(rc == 0, "first download failed:\n%s" % out[-2000:])
    m, v = "example.com/libc/v2", "v2.0.0"
    db.add(m, v, info["sums"]["%s %s" % (m, v)], info["sums"]["%s %s/go.mod" % (m, v)])
    rc, out = download(env, tmp, m + "@" + v)
    check(rc == 0, "download after growth failed:\n%s" % out[-2000:])


TESTS = [
    test_tile_paths,
    test_big_log_tiles,
    test_server_endpoints,
    test_forged_tile_mode,
    test_go_accepts_honest_and_builds,
    test_go_accepts_many_records,
    test_go_accepts_growth,
    test_go_rejects_wrong_hashes_in_log,
    test_go_rejects_lookup_with_other_hashes,
    test_go_rejects_bad_signature,
    test_go_rejects_record_beyond_tree,
    test_go_rejects_bad_tiles,
    test_go_rejects_unknown_key,
    test_go_rejects_unknown_module,
    test_go_detects_fork_larger_tree,
    test_go_detects_fork_same_size,
]

if __name__ == "__main__":
    sys.exit(R.run(TESTS, only=sys.argv[1:]))

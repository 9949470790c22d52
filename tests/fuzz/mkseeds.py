#!/usr/bin/env python3
"""mkseeds.py TARGET DIR: writes the generated seed inputs of one fuzz
target into DIR (tests/fuzz/run.sh calls it on the corpus copy).  Binary
seeds are built here, from the standard library, rather than committed:
small zips for fuzz_zip, lookup bodies with their tiles for fuzz_tlog.
Targets whose seeds are all committed text get nothing."""
import base64
import hashlib
import io
import os
import sys
import warnings
import zipfile


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: mkseeds.py TARGET DIR")
    target, out = sys.argv[1], sys.argv[2]
    gen = GENERATORS.get(target)
    if gen is not None:
        gen(out)


def zip_bytes(entries, compress=zipfile.ZIP_STORED):
    """A zip of (name, data) pairs; data None makes a directory entry."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compress) as z:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = compress
            z.writestr(info, b"" if data is None else data)
    return buf.getvalue()


def zip_seeds(out):
    warnings.simplefilter("ignore")   # the "duplicate" seed is meant
    p = "example.com/m@v1.0.0/"
    gomod = b"module example.com/m\n\ngo 1.19\n"
    good = zip_bytes([(p + "go.mod", gomod), (p + "LICENSE", b"ISC\n"),
                      (p + "m.go", b"package m\n"), (p + "sub/s.go", b"package sub\n")])
    seeds = {
        "good": good,
        "good_deflate": zip_bytes([(p + "go.mod", gomod), (p + "a/b/c.go", b"package c\n" * 8)],
                                  zipfile.ZIP_DEFLATED),
        "dirs": zip_bytes([(p, None), (p + "sub/", None), (p + "sub/x.go", b"package sub\n")]),
        "empty": zip_bytes([]),
        "outside": zip_bytes([("example.com/m@v1.0.1/go.mod", gomod)]),
        "dotdot": zip_bytes([(p + "../x.go", b"package x\n")]),
        "case": zip_bytes([(p + "A.go", b"package m\n"), (p + "a.go", b"package m\n")]),
        "file_dir": zip_bytes([(p + "x", b"x"), (p + "x/y.go", b"package x\n")]),
        "duplicate": zip_bytes([(p + "x.go", b"1"), (p + "x.go", b"2")]),
        "badname": zip_bytes([(p + "a:b.go", b"x"), (p + "COM1/x.go", b"x")]),
        "truncated": good[: len(good) // 2],
        "no_cdir": good[: good.rfind(b"PK\x01\x02")],
    }
    for name, data in seeds.items():
        with open(os.path.join(out, "gen_" + name + ".zip"), "wb") as f:
            f.write(data)


def subtree_hash(leaves, lo, hi):
    """RFC 6962 hash of the leaves [lo, hi), hi - lo a power of two."""
    if hi - lo == 1:
        return leaves[lo]
    mid = (lo + hi) // 2
    return hashlib.sha256(b"\x01" + subtree_hash(leaves, lo, mid) +
                          subtree_hash(leaves, mid, hi)).digest()


def tree_hash(leaves, lo, hi):
    """RFC 6962 Merkle tree hash of leaves [lo, hi) of any size."""
    if hi - lo == 1:
        return leaves[lo]
    k = 1
    while k * 2 < hi - lo:
        k *= 2
    return hashlib.sha256(b"\x01" + tree_hash(leaves, lo, lo + k) +
                          tree_hash(leaves, lo + k, hi)).digest()


def tlog_input(n, rid, height):
    """fuzz_tlog's proof input: a lookup of record rid in a tree of n
    records, then hash tile (l, k) at ((l * 4 + k) * 2^height * 32)."""
    recs = [b"example.com/m%d v1.0.%d h1:%s\n" %
            (i, i, base64.b64encode(hashlib.sha256(b"%d" % i).digest())) for i in range(n)]
    leaves = [hashlib.sha256(b"\x00" + r).digest() for r in recs]
    root = tree_hash(leaves, 0, n)
    note = b"go.sum database tree\n%d\n%s\n\n\xe2\x80\x94 sum.test.example AAAA\n" % (
        n, base64.b64encode(root))
    body = b"%d\n%s\n%s" % (rid, recs[rid], note)
    width = 1 << height
    tiles = {}
    level = 0
    while (n >> (level * height)) > 0:
        size = 1 << (level * height)       # leaves under one stored hash
        count = n // size                  # complete subtrees at this level
        assert (count + width - 1) // width <= 4
        for k in range((count + width - 1) // width):
            hashes = [subtree_hash(leaves, i * size, (i + 1) * size)
                      for i in range(k * width, min((k + 1) * width, count))]
            tiles[(level, k)] = b"".join(hashes)
        level += 1
    span = width * 32
    region = bytearray(max((l * 4 + k + 1) * span for l, k in tiles))
    for (l, k), data in tiles.items():
        off = (l * 4 + k) * span
        region[off:off + len(data)] = data
    return body + b"\nTILES\n" + bytes([height - 1]) + bytes(region)


def tlog_seeds(out):
    # At most 4 tiles per level (the layout's stride).
    seeds = {"n5_id3_h8": (5, 3, 8), "n1_id0_h8": (1, 0, 8), "n13_id9_h2": (13, 9, 2),
             "n16_id0_h2": (16, 0, 2), "n7_id6_h1": (7, 6, 1), "n21_id20_h3": (21, 20, 3),
             "n40_id17_h4": (40, 17, 4)}
    for name, (n, rid, height) in seeds.items():
        with open(os.path.join(out, "gen_" + name), "wb") as f:
            f.write(tlog_input(n, rid, height))


GENERATORS = {"zip": zip_seeds, "tlog": tlog_seeds}

if __name__ == "__main__":
    main()

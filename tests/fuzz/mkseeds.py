#!/usr/bin/env python3
"""mkseeds.py TARGET DIR: writes the generated seed inputs of one fuzz
target into DIR (tests/fuzz/run.sh calls it on the corpus copy).  Binary
seeds are built here, from the standard library, rather than committed:
small zips for fuzz_zip, lookup bodies with their tiles for fuzz_tlog.
Targets whose seeds are all committed text get nothing."""
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


GENERATORS = {"zip": zip_seeds}

if __name__ == "__main__":
    main()

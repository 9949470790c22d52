#!/usr/bin/env python3
"""mkseeds.py TARGET DIR: writes the generated seed inputs of one fuzz
target into DIR (tests/fuzz/run.sh calls it on the corpus copy).  Binary
seeds are built here, from the standard library, rather than committed:
small zips for fuzz_zip, lookup bodies with their tiles for fuzz_tlog.
Targets whose seeds are all committed text get nothing."""
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: mkseeds.py TARGET DIR")
    target, out = sys.argv[1], sys.argv[2]
    gen = GENERATORS.get(target)
    if gen is not None:
        gen(out)


GENERATORS = {}

if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The shape of the source tree, as docs/design.md states it:

- files depend on each other one way: no cycle among the #include edges
  of src/ and include/ (a module is a file stem: foo.c and foo.h);
- no src/*.c over 900 lines;
- every src/*.c and include/*.h opens with a comment, and every src/*.c's
  opening comment says which thread its functions run on (or that they are
  pure).

No daemon runs here; it reads the tree next to this file.
"""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import Runner, check  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MAX_LINES = 900
INCLUDE = re.compile(r'^\s*#\s*include\s+"([A-Za-z0-9_]+)\.h"', re.M)


def sources():
    for d, ext in (("src", ".c"), ("include", ".h")):
        for name in sorted(os.listdir(os.path.join(ROOT, d))):
            if name.endswith(ext):
                yield os.path.join(ROOT, d, name), name[: -len(ext)]


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def include_graph():
    graph = {}
    for path, mod in sources():
        deps = graph.setdefault(mod, set())
        for dep in INCLUDE.findall(read(path)):
            if dep != mod:
                deps.add(dep)
                graph.setdefault(dep, set())
    return graph


def find_cycle(graph):
    """One cycle as a list of modules, or None (iterative DFS, 3 colours)."""
    colour = {m: 0 for m in graph}
    for start in sorted(graph):
        if colour[start]:
            continue
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        colour[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                colour[node] = 2
                stack.pop()
                path.pop()
            elif colour[nxt] == 1:
                return path[path.index(nxt):] + [nxt]
            elif colour[nxt] == 0:
                colour[nxt] = 1
                stack.append((nxt, iter(sorted(graph[nxt]))))
                path.append(nxt)
    return None


def test_find_cycle_finds_one():
    # the checker itself must be able to fail
    check(find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) is not None, "a->b->c->a not found")
    check(find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None, "a cycle in a chain")


def test_includes_point_one_way():
    cycle = find_cycle(include_graph())
    check(cycle is None, "include cycle: %s" % " -> ".join(cycle or []))


def test_no_source_file_over_900_lines():
    for path, mod in sources():
        if path.endswith(".c"):
            n = read(path).count("\n")
            check(n <= MAX_LINES, "%s has %d lines (limit %d)" % (os.path.relpath(path, ROOT), n, MAX_LINES))


def opening_comment(text):
    m = re.match(r"\s*/\*(.*?)\*/", text, re.S)
    return m.group(1) if m else None


def test_every_file_opens_with_its_contract():
    for path, mod in sources():
        rel = os.path.relpath(path, ROOT)
        c = opening_comment(read(path))
        check(c is not None, "%s does not open with a comment" % rel)
        if c is not None and path.endswith(".c"):
            check(re.search(r"thread|pure", c, re.I) is not None,
                  "%s: the opening comment does not say which thread its functions run on" % rel)


def test_dashboard_queries_metrics_that_exist():
    """Every goproxyd_* series docs/grafana-dashboard.json queries is one
    that src/ emits (a histogram's _bucket/_sum/_count from its name), and
    every metric family src/ emits is on the dashboard."""
    emitted = set()
    for path, _ in sources():
        if path.endswith(".c"):
            emitted |= set(re.findall(r'"(goproxyd_[a-z0-9_]+)', read(path)))
    queried = set(re.findall(r"(goproxyd_[a-z0-9_]+)", read(os.path.join(ROOT, "docs", "grafana-dashboard.json"))))
    check(len(emitted) > 20 and len(queried) > 20, "found %d emitted, %d queried" % (len(emitted), len(queried)))
    for q in sorted(queried):
        base = re.sub(r"_(bucket|sum|count)$", "", q)
        check(q in emitted or base in emitted, "the dashboard queries %s, which goproxyd does not emit" % q)
    on_board = {re.sub(r"_(bucket|sum|count)$", "", q) for q in queried}
    for m in sorted(emitted - on_board):
        check(False, "%s is emitted but on no dashboard panel" % m)


TESTS = [test_find_cycle_finds_one, test_includes_point_one_way, test_no_source_file_over_900_lines,
         test_every_file_opens_with_its_contract, test_dashboard_queries_metrics_that_exist]

if __name__ == "__main__":
    sys.exit(Runner().main(lambda: None, TESTS, sys.argv[1:]))

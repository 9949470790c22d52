#!/usr/bin/env python3
"""Hostile clients against goproxyd over raw sockets (issue #15, "Clients").

Run:  python3 tests/integration/test_hostile_clients.py [NAME-SUBSTRING ...]
Env:  GOPROXYD=path/to/binary (default ./build/goproxyd)
      KEEP_TMP=1 (keep temp dirs and daemon logs)
Covers: slowloris connections (a header line every 0.4 s) closed at
-headerTimeout while a normal client is served; -maxConnsPerIP refusing
the N+1th connection from 127.0.0.1 while 127.0.0.2 is still served;
requests over -maxHeaderBytes answered 414/431 with the one-line body,
exactly one answer up to and past the end of the connection's memory (far
larger ones by libmicrohttpd, as documented); a bad Content-Length answered
once, 400/413 with the one-line body; malformed
Range headers (signs, spaces, several ranges) ignored with a 200 and the
whole body while good forms still get 206/416;
HTTP/1.1 without Host answered 400 with the one-line body, HTTP/1.0
without Host served.
Prints "ok NAME" / "FAIL NAME: reason" per test; last line "N passed,
N failed"; exit 1 if any test failed.  Standard library only; only
127.0.0.1 and 127.0.0.2 are used; every loop and socket is bounded by a timeout.
"""

import os
import re
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import fakeupstream  # noqa: E402
import mkmodules  # noqa: E402
from harness import (check_clean_exits, Daemons, Runner, check, eq, expect_ok, get,  # noqa: E402
                     make_tmp, note, timeout, wait_for)

LIBA = "example.com/liba"
R = Runner(default_timeout=60)


class Ctx:
    tmp = None
    tree = None
    files = None
    A = None


C = Ctx()
D = Daemons()


def setup():
    C.tmp = D.tmp = make_tmp("goproxyd-hostile-", R)
    C.tree = os.path.join(C.tmp, "tree")
    C.files = dict(mkmodules.generate(C.tree)["files"])
    C.A = fakeupstream.FakeUpstream(C.tree).start()
    R.cleanups.append(C.A.stop)
    R.cleanups.append(D.stop_all)
    R.after_each.append(D.stop_all)


def daemon(extra=()):
    return D.start(C.A.url, extra)


def p(module, version=None, kind="zip"):
    return "/" + mkmodules.rel(module, version, kind)


def tree(module, version=None, kind="zip"):
    return C.files[mkmodules.rel(module, version, kind)]


def exchange(port, data, secs=10.0, src="127.0.0.1"):
    """Sends data from address src and reads until the peer closes (or
    secs pass); returns (status or None, headers dict, body, raw)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(secs)
    buf = b""
    try:
        s.bind((src, 0))
        s.connect(("127.0.0.1", port))
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        deadline = time.time() + secs
        while time.time() < deadline:
            try:
                b = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not b:
                break
            buf += b
    finally:
        s.close()
    return parse(buf)


def parse(buf):
    head, _, body = buf.partition(b"\r\n\r\n")
    m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    hdrs = {}
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        hdrs[k.strip().lower().decode()] = v.strip().decode()
    return (int(m.group(1)) if m else None), hdrs, body, buf


def req(path, extra="", version="HTTP/1.1", host=True, connection="close"):
    h = "Host: 127.0.0.1\r\n" if host else ""
    return ("GET %s %s\r\n%s%sConnection: %s\r\n\r\n" % (path, version, h, extra, connection)).encode()


def one_line_text(st, hdrs, body, want, what):
    eq(st, want, what + ": status")
    check(hdrs.get("content-type", "").startswith("text/plain"),
          "%s: content-type %r" % (what, hdrs.get("content-type")))
    check(body.endswith(b"\n") and body.count(b"\n") == 1 and b"<" not in body,
          "%s: body not one line of text: %r" % (what, body[:200]))


# ---------------------------------------------------------------- Range

@timeout(60)
def test_bad_range_forms_ignored():
    d = daemon()
    path = p(LIBA, "v1.0.0", "zip")
    want = tree(LIBA, "v1.0.0", "zip")
    expect_ok(get(d.port, path), want, "zip", "fill")
    bad = ["bytes=5--3", "bytes=--5", "bytes=+1-+2", "bytes= 1-2", "bytes=1- 2", "bytes=-+3",
           "bytes=1-2,3-4", "bytes=3-2", "bytes=a-b", "bytes=0x1-2", "bytes=-",
           "bytes=18446744073709551616-"]
    for r in bad:
        st, hdrs, body, _ = exchange(d.port, req(path, "Range: %s\r\n" % r))
        eq(st, 200, "Range: %s status" % r)
        check(body == want, "Range: %s: body of %d bytes, want the whole %d" % (r, len(body), len(want)))
        check("content-range" not in hdrs, "Range: %s: Content-Range %r" % (r, hdrs.get("content-range")))
    n = len(want)
    good = [("bytes=1-2", want[1:3], "bytes 1-2/%d" % n), ("bytes=-3", want[-3:], "bytes %d-%d/%d" % (n - 3, n - 1, n)),
            ("bytes=5-", want[5:], "bytes 5-%d/%d" % (n - 1, n))]
    for r, body_want, cr in good:
        st, hdrs, body, _ = exchange(d.port, req(path, "Range: %s\r\n" % r))
        eq(st, 206, "Range: %s status" % r)
        eq(hdrs.get("content-range"), cr, "Range: %s Content-Range" % r)
        check(body == body_want, "Range: %s body" % r)
    for r in ["bytes=%d-" % n, "bytes=-0"]:
        st, hdrs, _, _ = exchange(d.port, req(path, "Range: %s\r\n" % r))
        eq(st, 416, "Range: %s status" % r)
        eq(hdrs.get("content-range"), "bytes */%d" % n, "Range: %s Content-Range" % r)
    note("%d malformed Range forms ignored (200), %d good ones 206/416" % (len(bad), len(good) + 2))


# ---------------------------------------------------------------- Host

@timeout(60)
def test_host_required_on_http11():
    d = daemon()
    path = p(LIBA, "v1.0.0", "mod")
    want = tree(LIBA, "v1.0.0", "mod")
    expect_ok(get(d.port, path), want, "mod", "fill")
    st, hdrs, body, _ = exchange(d.port, req(path, host=False))
    one_line_text(st, hdrs, body, 400, "HTTP/1.1 without Host")
    check(b"Host" in body, "400 body does not name Host: %r" % body)
    st, hdrs, body, _ = exchange(d.port, req("/healthz", host=False))
    eq(st, 400, "HTTP/1.1 /healthz without Host")
    st, _, body, _ = exchange(d.port, req(path, version="HTTP/1.0", host=False))
    eq(st, 200, "HTTP/1.0 without Host")
    check(body == want, "HTTP/1.0 without Host: body")
    st, _, body, _ = exchange(d.port, req(path))
    eq(st, 200, "HTTP/1.1 with Host")


# ---------------------------------------------------------------- slowloris

def connect(port, src="127.0.0.1", secs=10.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(secs)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def closed_by_peer(s):
    """True when the peer has closed (EOF or reset) without answering."""
    s.settimeout(0.05)
    try:
        b = s.recv(4096)
        check(b == b"", "unexpected answer %r" % b[:80])
        return True
    except socket.timeout:
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True


@timeout(60)
def test_slowloris_closed_at_header_deadline():
    d = daemon(["-clientTimeout", "3s", "-headerTimeout", "2s"])
    path = p(LIBA, "v1.0.0", "mod")
    want = tree(LIBA, "v1.0.0", "mod")
    expect_ok(get(d.port, path), want, "mod", "fill")
    slow = []
    for _ in range(5):
        s = connect(d.port)
        s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n" % path).encode())
        slow.append([s, None])
    t0 = time.time()
    served = 0
    while time.time() - t0 < 9 and any(c is None for _, c in slow):
        for e in slow:
            if e[1] is not None:
                continue
            try:
                e[0].sendall(b"X-Drip: 1\r\n")   # activity: the idle timeout never fires
            except (BrokenPipeError, ConnectionResetError):
                e[1] = time.time() - t0
                continue
            if closed_by_peer(e[0]):
                e[1] = time.time() - t0
        st, _, body, _ = exchange(d.port, req(path))
        check(st == 200 and body == want, "normal client beside slowloris: %r" % st)
        served += 1
        time.sleep(0.4)
    for s, _ in slow:
        s.close()
    for i, (_, c) in enumerate(slow):
        check(c is not None, "slowloris %d still open after 9s (-headerTimeout 2s)" % i)
        check(1.5 <= c <= 5.0, "slowloris %d closed after %.1fs (-headerTimeout 2s)" % (i, c))
    note("5 slowloris connections closed after %.1f-%.1fs; %d normal requests served meanwhile"
         % (min(c for _, c in slow), max(c for _, c in slow), served))
    # A kept-alive connection sending its second request on time is unaffected.
    s = connect(d.port)
    for _ in range(3):
        s.sendall(req(path).replace(b"Connection: close", b"X-Keep: 1"))
        s.settimeout(5)
        buf = b""
        while not buf.endswith(want):
            b = s.recv(65536)
            check(b, "keep-alive connection closed early")
            buf += b
        time.sleep(1.0)
    s.close()
    check(d.alive(), "daemon died")


# ---------------------------------------------------------------- per-address limit

@timeout(60)
def test_per_address_limit():
    n = 20
    d = daemon(["-maxConns", "200", "-maxConnsPerIP", str(n)])
    # The harness's readiness probe may not be cleaned up yet (it counts
    # against 127.0.0.1 until libmicrohttpd sees it closed): wait until the
    # only open connection is the one asking.
    check(wait_for(lambda: open_conns(d.port) == 1, 10), "connections still open before the test")
    held = []
    try:
        for _ in range(n):
            s = connect(d.port)
            s.sendall(b"GET /healthz HTTP/1.1\r\n")   # a partial request holds the slot
            held.append(s)
        time.sleep(0.3)
        gone = [i for i, s in enumerate(held) if closed_by_peer(s)]
        check(not gone, "connections %s of the first %d closed" % (gone, n))
        extra = connect(d.port)
        held.append(extra)
        extra.settimeout(5)
        try:
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            got = extra.recv(4096)
        except (ConnectionResetError, BrokenPipeError):
            got = b""
        eq(got, b"", "connection %d from 127.0.0.1 (-maxConnsPerIP %d)" % (n + 1, n))
        for path in ["/healthz", "/readyz"]:
            st, _, _, _ = exchange(d.port, req(path), src="127.0.0.2")
            eq(st, 200, "%s from 127.0.0.2 while 127.0.0.1 is at its limit" % path)
        held[0].close()
        ok = wait_for_ok(d.port)
        check(ok, "127.0.0.1 not admitted again after one of its connections closed")
    finally:
        for s in held:
            s.close()
    check(d.alive(), "daemon died")
    note("connection %d from one address refused; another address served" % (n + 1))


def open_conns(port):
    _, _, body, _ = exchange(port, req("/metrics"), src="127.0.0.2")
    m = re.search(rb"^goproxyd_connections (\d+)", body, re.M)
    return int(m.group(1)) if m else None


def wait_for_ok(port):
    for _ in range(50):
        st, _, _, _ = exchange(port, req("/healthz"))
        if st == 200:
            return True
        time.sleep(0.1)
    return False


# ---------------------------------------------------------------- oversize

@timeout(60)
def test_oversize_requests():
    d = daemon(["-maxHeaderBytes", "8192"])
    def line(total):   # a request of total bytes with a long request line
        return b"GET /" + b"a" * (total - 60) + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    def hdr(total):    # a request of total bytes with one long header
        return (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * (total - 70)
                + b"\r\nConnection: close\r\n\r\n")
    eq(exchange(d.port, hdr(8000))[0], 200, "8000-byte request")
    # Up to -maxHeaderBytes + 3.5 KiB the answer is goproxyd's own.
    for total in [8300, 9000, 9900, 9990, 10060, 11000, 11600]:
        st, hdrs, body, _ = exchange(d.port, line(total))
        one_line_text(st, hdrs, body, 414, "%d-byte request line" % total)
        st, hdrs, body, _ = exchange(d.port, hdr(total))
        one_line_text(st, hdrs, body, 431, "%d-byte headers" % total)
    # Near the end of the connection's memory (N + 4 KiB): goproxyd's own
    # answer as long as libmicrohttpd hands the request over (it once had
    # no room left to build one: N + 3.6 to 3.9 KiB got no answer at all),
    # then libmicrohttpd's own 414/431; always exactly one answer.
    for total in range(11600, 13000, 8):
        for make, want in ((line, (414, 431)), (hdr, (431,))):
            st, hdrs, body, raw = exchange(d.port, make(total), secs=5)
            what = "%d-byte %s" % (total, "request line" if make is line else "headers")
            eq(status_lines(raw), 1, what + ": status lines in %r" % raw[:300])
            check(st in want, "%s: status %s" % (what, st))
            if total <= 8192 + 3800:
                one_line_text(st, hdrs, body, want[0], what)
    # A HEAD gets the same status and headers, and no body.
    st, hdrs, body, _ = exchange(d.port, b"HEAD" + line(11950)[3:])
    eq((st, hdrs.get("content-type", "")[:10], body), (414, "text/plain", b""), "HEAD, 11950 bytes")
    # Far larger: libmicrohttpd answers by itself (documented).
    for total in [13000, 20000, 70000]:
        eq(exchange(d.port, line(total))[0], 414, "%d-byte request line" % total)
        eq(exchange(d.port, hdr(total))[0], 431, "%d-byte headers" % total)
    check(d.alive(), "daemon died")


def status_lines(raw):
    return len(re.findall(rb"(?:^|\n)HTTP/1\.[01] \d{3} ", raw))


@timeout(60)
def test_bad_content_length():
    """A Content-Length libmicrohttpd cannot parse gets one answer, goproxyd's
    one-line 400 (413 when past 2^64-1), never the library's status line and
    headers twice; the connection is closed and the daemon serves on."""
    d = daemon()
    for cl, want in [(b"-1", 400), (b"abc", 400), (b"1, 2", 400), (b"+5", 400),
                     (b"18446744073709551616", 413), (b"99999999999999999999999", 413)]:
        st, hdrs, body, raw = exchange(d.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: " + cl
                                       + b"\r\nConnection: close\r\n\r\n")
        what = "Content-Length: %s" % cl.decode()
        eq(status_lines(raw), 1, what + ": status lines in %r" % raw[:400])
        one_line_text(st, hdrs, body, want, what)
        check(b"content-length" in body.lower(), "%s: body %r" % (what, body))
        eq(hdrs.get("connection"), "close", what + ": Connection")
    # Keep-alive: the bad request comes second on the connection.
    st, _, body, raw = exchange(d.port, req("/healthz", connection="keep-alive")
                                + b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n")
    eq(status_lines(raw), 2, "keep-alive: status lines in %r" % raw[:600])
    check(raw.count(b"invalid Content-Length") == 1, "keep-alive: second answer %r" % raw[-300:])
    eq(exchange(d.port, req("/healthz"))[0], 200, "served after")
    check(d.alive(), "daemon died")


def test_daemons_exited_cleanly():
    """Every daemon this suite stopped with SIGTERM exited 0."""
    D.stop_all()
    note("%d daemons stopped with SIGTERM, all exited 0" % check_clean_exits(D.exits))


TESTS = [
    test_bad_range_forms_ignored,
    test_host_required_on_http11,
    test_slowloris_closed_at_header_deadline,
    test_per_address_limit,
    test_oversize_requests,
    test_bad_content_length,
    test_daemons_exited_cleanly,
]


def main(argv):
    return R.main(setup, TESTS, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

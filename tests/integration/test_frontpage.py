#!/usr/bin/env python3
"""Integration tests for the front page (GET / for a browser) and /catalog:
HTML for Accept: text/html and the old plain-text 404 for everyone else; the
GOPROXY line following Host, TLS and -pathPrefix; search finding a cached
module and not an uncached one; /catalog paging that walks every cached
version exactly once (also after a restart, from the start-up walk, and
after an eviction); a hostile Host and query escaped; -authFile enforced
while /healthz and /readyz stay open; and Debian's chromium, headless,
loading the page over loopback (--dump-dom, and a --screenshot checked for
being non-blank).

Run:  python3 tests/integration/test_frontpage.py [NAME-SUBSTRING ...]
Env:  GOPROXYD=path/to/binary (default ./build/goproxyd), KEEP_TMP=1,
      FRONTPAGE_PNG=path: also copy the chromium screenshot there (how
      docs/frontpage.png was made).
Needs: openssl (certificate, SHA-512-crypt hash), chromium.  Prints "ok
NAME" / "FAIL NAME: reason" per test; last line "N passed, N failed".
Standard library only; only 127.0.0.1 is contacted.
"""

import base64
import functools
import json
import os
import shutil
import signal
import ssl
import struct
import subprocess
import sys
import time
import urllib.parse
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import fakeupstream  # noqa: E402
import mkmodules  # noqa: E402
from harness import (Daemon, Runner, TestFailure, check, eq, get, make_tmp, read,  # noqa: E402
                     request, timeout)

R = Runner(default_timeout=90)
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
NO_ENDPOINT = "no such endpoint"
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "SUMMARY: UndefinedBehaviorSanitizer")


class Ctx:
    tmp = None
    tree = None
    info = None
    up = None
    n = 0
    daemons = []
    tls = None


C = Ctx()


def setup():
    C.tmp = make_tmp("goproxyd-front-", R)
    C.tree = os.path.join(C.tmp, "tree")
    C.info = mkmodules.generate(C.tree)
    C.up = fakeupstream.FakeUpstream(C.tree).start()
    R.cleanups.append(C.up.stop)
    R.cleanups.append(lambda: [d.stop(timeout=5) for d in C.daemons])


def newdir(name):
    C.n += 1
    d = os.path.join(C.tmp, "t%02d-%s" % (C.n, name))
    os.makedirs(d)
    return d


def daemon(extra=(), cache=None, name="d"):
    if cache is None:
        cache = os.path.join(newdir(name), "cache")
    d = Daemon(cache, C.up.url, extra)
    C.daemons.append(d)
    return d.start()


def finish_daemons():
    """Every daemon of the test exits 0 on SIGTERM, without a sanitizer report."""
    problems = []
    while C.daemons:
        d = C.daemons.pop()
        rc = d.stop(timeout=15)
        text = read(d.log_path).decode("utf-8", "replace") if d.log_path else ""
        for m in SANITIZER_MARKERS:
            if m in text:
                problems.append("sanitizer report: %s" % text[text.index(m):][:400])
        if rc != 0:
            problems.append("exit status %r after SIGTERM: %s" % (rc, d.log_tail(300)))
    check(not problems, "; ".join(problems))


def checked(fn):
    @functools.wraps(fn)
    def w():
        try:
            fn()
        finally:
            finish_daemons()
    return w


def rel(module, version=None, kind="info"):
    return "/" + mkmodules.rel(module, version, kind)


def fetch_all(d, prefix=""):
    """Every version of every generated module through d (its .info), so the
    cache holds them all; returns the set of (module, version)."""
    got = set()
    for m, versions in sorted(C.info["modules"].items()):
        if m == mkmodules.PRIVATE_MODULE:
            continue
        for v in versions:
            r = get(d.port, prefix + rel(m, v, "info"))
            eq(r.status, 200, "GET %s" % rel(m, v, "info"))
            got.add((m, v))
    return got


def page(d, path="/", headers=None, **kw):
    h = dict(HTML)
    h.update(headers or {})
    r = get(d.port, path, headers=h, **kw)
    return r


def goproxy_line(body):
    i = body.find('<pre id="goproxy">')
    check(i >= 0, "no GOPROXY line in the page")
    return body[i + len('<pre id="goproxy">'):body.index("</pre>", i)]


# ------------------------------------------------------------------ tests

@checked
def test_html_or_plain_text_by_accept():
    d = daemon()
    for hdrs, what in (({}, "no Accept"), ({"Accept": "*/*"}, "Accept */*"),
                       ({"Accept": "application/json"}, "Accept application/json"),
                       ({"Accept": "text/html;q=0"}, "Accept text/html;q=0")):
        r = get(d.port, "/", headers=hdrs)
        eq(r.status, 404, "GET / with %s" % what)
        eq(r.h("Content-Type"), "text/plain; charset=utf-8", "Content-Type with %s" % what)
        check(NO_ENDPOINT in r.text(), "GET / with %s: body %r" % (what, r.text()))
    r = page(d)
    eq(r.status, 200, "GET / as a browser")
    eq(r.h("Content-Type"), "text/html; charset=utf-8", "Content-Type of the page")
    eq(r.h("Vary"), "Accept", "Vary")
    eq(r.h("Cache-Control"), "no-store", "Cache-Control")
    check("default-src 'none'" in (r.h("Content-Security-Policy") or ""), "no Content-Security-Policy")
    body = r.text()
    check(body.startswith("<!DOCTYPE html>") and body.rstrip().endswith("</html>"), "not a whole page")
    check("<script" not in body and " src=" not in body and "<link" not in body,
          "the page loads something or runs a script")
    eq(goproxy_line(body), "go env -w GOPROXY=http://127.0.0.1:%d" % d.port, "GOPROXY line")
    h = request(d.port, "HEAD", "/", headers=HTML)
    eq((h.status, h.body), (200, b""), "HEAD / as a browser")
    # The go command's own requests are unchanged.
    eq(get(d.port, rel("example.com/liba", "v1.0.0")).status, 200, "GET .info")


@checked
def test_goproxy_line_follows_host_and_prefix():
    d = daemon(["-pathPrefix", "/mirror/go", "-exclude", "corp.example.com",
                "-noSumPatterns", "*.internal.example"])
    r = page(d, "/mirror/go/", headers={"Host": "goproxy.example.org:8443"})
    eq(r.status, 200, "GET /mirror/go/ as a browser")
    body = r.text()
    eq(goproxy_line(body), "go env -w GOPROXY=http://goproxy.example.org:8443/mirror/go", "GOPROXY line")
    check('action="/mirror/go/"' in body, "the search form is not under the prefix")
    # Behind a front end that terminates TLS (docs/frontends.md).
    r = page(d, "/mirror/go/", headers={"Host": "goproxy.example.org", "X-Forwarded-Proto": "https"})
    eq(goproxy_line(r.text()), "go env -w GOPROXY=https://goproxy.example.org/mirror/go",
       "GOPROXY line behind a TLS front end")
    check('href="/mirror/go/catalog"' in body, "the catalog link is not under the prefix")
    check("go env -w GONOSUMDB=corp.example.com,*.internal.example</pre>" in body,
          "no GONOSUMDB line with -exclude and -noSumPatterns")
    check("GOSUMDB=&quot;" not in body, "a GOSUMDB line with -sumdb off")
    for path in ("/", "/catalog"):
        r = page(d, path)
        eq(r.status, 404, "GET %s outside the prefix" % path)
    eq(get(d.port, "/mirror/go/catalog").status, 200, "GET /mirror/go/catalog")
    # With a checksum database the GOSUMDB line names the mirror's route.
    e = daemon(["-sumdb", "sum.golang.org=http://127.0.0.1:9"])
    body = page(e, headers={"Host": "mirror:8080"}).text()
    check('go env -w GOSUMDB=&quot;sum.golang.org http://mirror:8080/sumdb/sum.golang.org&quot;' in body,
          "no GOSUMDB line for -sumdb sum.golang.org")


def tls_files():
    if C.tls is None:
        dd = newdir("tls")
        cert, key = os.path.join(dd, "cert.pem"), os.path.join(dd, "key.pem")
        r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                            "-nodes", "-days", "2", "-subj", "/CN=localhost",
                            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                            "-keyout", key, "-out", cert], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
        check(r.returncode == 0, "openssl req failed: %s" % r.stdout.decode("utf-8", "replace"))
        C.tls = (cert, key)
    return C.tls


@checked
def test_goproxy_line_https_with_tls():
    cert, key = tls_files()
    d = daemon(["-tlsCert", cert, "-tlsKey", key, "-pathPrefix", "/go"])
    ctx = ssl.create_default_context(cafile=cert)
    r = page(d, "/go/", ssl_context=ctx)
    eq(r.status, 200, "GET /go/ over https")
    eq(goproxy_line(r.text()), "go env -w GOPROXY=https://127.0.0.1:%d/go" % d.port, "GOPROXY line over TLS")


@checked
def test_search_finds_cached_not_uncached():
    d = daemon()
    for kind in ("info", "mod", "zip"):
        eq(get(d.port, rel("example.com/liba", "v1.0.0", kind)).status, 200, "GET liba v1.0.0 %s" % kind)
    eq(get(d.port, rel("example.com/liba", "v1.1.0", "mod")).status, 200, "GET liba v1.1.0 .mod")
    body = page(d, "/?q=LIBA").text()
    check('<div id="results">' in body, "no results block")
    res = body[body.index('<div id="results">'):body.index("</div>", body.index('<div id="results">'))]
    check("<code>example.com/liba</code>" in res, "liba not found: %s" % res[:400])
    for kind in ("info", "mod", "zip"):
        link = '<a href="/example.com/liba/@v/v1.0.0.%s">%s</a>' % (kind, kind)
        check(link in res, "no %s link for v1.0.0" % kind)
    check('<a href="/example.com/liba/@v/v1.1.0.mod">mod</a>' in res, "no .mod link for v1.1.0")
    check('v1.1.0.zip"' not in res, "a link to v1.1.0's .zip, which is not cached")
    # Each link answers.
    eq(get(d.port, "/example.com/liba/@v/v1.0.0.zip").status, 200, "the .zip link")
    # libb exists upstream but was never asked for: not in the cache, not found.
    body = page(d, "/?q=example.com%2Flibb").text()
    check("No cached module matches <code>example.com/libb</code>" in body and '<li class="mod">' not in body,
          "an uncached module was listed")
    eq(page(d, "/?q=%zz").status, 400, "a malformed query")
    # The newest cached versions are shown without a search.
    body = page(d).text()
    check('<table id="recent">' in body and "example.com/liba" in body, "no recent versions")


def walk_catalog(d, pagesize, prefix=""):
    """Follows next to the end; returns the versions in order and the pages."""
    seen, pages, token = [], 0, None
    for _ in range(1000):
        q = {"pagesize": str(pagesize)}
        if token is not None:
            q["token"] = token
        r = get(d.port, prefix + "/catalog?" + urllib.parse.urlencode(q))
        eq(r.status, 200, "GET /catalog page %d" % pages)
        eq(r.h("Content-Type"), "application/json", "Content-Type of /catalog")
        doc = json.loads(r.body)
        check(set(doc) <= {"modules", "next"}, "unexpected keys %r" % list(doc))
        mods = doc["modules"]
        check(len(mods) <= pagesize, "page of %d over pagesize %d" % (len(mods), pagesize))
        seen += [(m["module"], m["version"]) for m in mods]
        pages += 1
        if "next" not in doc:
            return seen, pages
        check(mods, "an empty page with a next token")
        eq(doc["next"], "%s|%s" % (mods[-1]["module"], mods[-1]["version"]), "next token")
        token = doc["next"]
    raise TestFailure("/catalog did not end within 1000 pages")


@checked
@timeout(150)
def test_catalog_walks_each_version_once():
    cache = os.path.join(newdir("catalog"), "cache")
    d = daemon(cache=cache)
    want = fetch_all(d)
    check(len(want) >= 5, "too few generated versions: %d" % len(want))
    for size in (1, 2, 3, 1000):
        seen, pages = walk_catalog(d, size)
        eq(len(seen), len(set(seen)), "versions seen twice with pagesize %d" % size)
        eq(set(seen), want, "versions listed with pagesize %d" % size)
    r = get(d.port, "/catalog")
    doc = json.loads(r.body)
    check("next" not in doc and len(doc["modules"]) == len(want), "default pagesize: %r" % doc)
    for q in ("pagesize=0", "pagesize=-1", "pagesize=x", "token=no-bar", "token=%zz"):
        eq(get(d.port, "/catalog?" + q).status, 400, "GET /catalog?%s" % q)
    # A restart: the start-up walk rebuilds the same index from the directory.
    C.daemons.remove(d)
    eq(d.stop(timeout=15), 0, "exit status")
    e = daemon(cache=cache)
    deadline = time.time() + 30
    while time.time() < deadline:
        seen, _ = walk_catalog(e, 2)
        if set(seen) == want:
            break
        time.sleep(0.1)
    eq(set(seen), want, "versions listed after a restart")
    eq(len(seen), len(want), "versions seen twice after a restart")


@checked
def test_eviction_leaves_the_catalog():
    """-cacheMaxSize evicts versions; /catalog stops listing what is gone."""
    big = mkmodules.BIG_MODULE if mkmodules.BIG_MODULE in C.info["modules"] else None
    d = daemon(["-cacheMaxSize", "2K"])
    want = fetch_all(d)
    for m, versions in sorted(C.info["modules"].items()):
        if m != mkmodules.PRIVATE_MODULE and m != big:
            for v in versions:
                get(d.port, rel(m, v, "zip"))
    deadline = time.time() + 20
    while time.time() < deadline:
        seen, _ = walk_catalog(d, 1000)
        on_disk = set()
        for m, v in seen:
            base = os.path.join(d.cache_dir, mkmodules.rel(m, v, "info")[:-len(".info")])
            if any(os.path.exists(base + ext) for ext in (".info", ".mod", ".zip")):
                on_disk.add((m, v))
        if set(seen) == on_disk and len(seen) < len(want):
            return
        time.sleep(0.2)
    raise TestFailure("the catalog lists evicted versions: %d listed, %d on disk" % (len(seen), len(on_disk)))


@checked
def test_hostile_host_and_query_escaped():
    d = daemon()
    eq(get(d.port, rel("example.com/liba", "v1.0.0")).status, 200, "GET .info")
    evil = "<script>alert(1)</script>"
    r = page(d, "/?q=" + urllib.parse.quote('"><script>alert(2)</script>'), headers={"Host": evil})
    eq(r.status, 200, "GET / with a hostile Host")
    body = r.text()
    check("<script" not in body.lower(), "markup from Host or the query reached the page")
    eq(goproxy_line(body), "go env -w GOPROXY=http://&lt;script&gt;alert(1)&lt;/script&gt;", "escaped GOPROXY line")
    check('value="&quot;&gt;&lt;script&gt;alert(2)&lt;/script&gt;"' in body, "the query is not escaped")


def sha512crypt(pw):
    r = subprocess.run(["openssl", "passwd", "-6", pw], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    check(r.returncode == 0, "openssl passwd -6 failed: %r" % r.stderr)
    return r.stdout.decode().strip()


@checked
def test_auth_applies_to_front_and_catalog():
    f = os.path.join(newdir("auth"), "users")
    with open(f, "w") as fh:
        fh.write("gopher:%s\n" % sha512crypt("s3cret-Pass"))
    os.chmod(f, 0o600)
    d = daemon(["-authFile", f])
    good = {"Authorization": "Basic " + base64.b64encode(b"gopher:s3cret-Pass").decode()}
    bad = {"Authorization": "Basic " + base64.b64encode(b"gopher:wrong").decode()}
    for path in ("/", "/?q=liba", "/catalog"):
        for hdrs, what in (({}, "no credentials"), (bad, "a wrong password")):
            r = page(d, path, headers=hdrs)
            eq(r.status, 401, "GET %s with %s" % (path, what))
            check("Basic" in (r.h("WWW-Authenticate") or ""), "no WWW-Authenticate on %s" % path)
        eq(page(d, path, headers=good).status, 200, "GET %s with the password" % path)
    eq(get(d.port, "/", headers=good).status, 404, "GET / as curl, with the password")
    for path in ("/healthz", "/readyz"):
        eq(get(d.port, path).status, 200, "GET %s without credentials" % path)


# ------------------------------------------------------------------ chromium

def chromium_binary():
    for b in ("chromium", "chromium-browser"):
        p = shutil.which(b)
        if p:
            return p
    return None


def run_chromium(url, args, workdir, secs=90):
    """Headless chromium against url; nothing but 127.0.0.1 is reachable:
    every other host resolves to nothing and goes to a proxy that is not
    there, and the background services are off."""
    cmd = [chromium_binary(), "--headless", "--no-sandbox", "--disable-gpu",
           "--user-data-dir=" + os.path.join(workdir, "profile"),
           "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--disable-default-apps",
           "--disable-extensions", "--disable-breakpad", "--disable-domain-reliability",
           "--metrics-recording-only", "--no-pings", "--disable-client-side-phishing-detection",
           "--proxy-server=http://127.0.0.1:9",
           "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"] + args + [url]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                         cwd=workdir, start_new_session=True)
    try:
        out, err = p.communicate(timeout=secs)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate(timeout=10)
        raise TestFailure("chromium did not finish within %ds" % secs)
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)   # helpers it left behind
        except OSError:
            pass
    return p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def png_colours(path, limit=64):
    """Distinct pixel colours of an 8-bit RGB/RGBA PNG (up to limit), decoded
    with zlib: chunks, inflate, then each scanline's filter undone."""
    data = read(path)
    check(data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG")
    pos, idat, hdr = 8, [], None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = hdr
    check(depth == 8 and ctype in (2, 6) and interlace == 0, "unexpected PNG format %r" % (hdr,))
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = w * bpp
    prev = bytearray(stride)
    colours = set()
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + ((a + b) >> 1)) & 255
            elif f == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        for x in range(0, stride, bpp * 7):
            colours.add(bytes(line[x:x + 3]))
        if len(colours) >= limit:
            break
        prev = line
    return colours, (w, h)


@checked
@timeout(240)
def test_chromium_loads_the_page():
    if chromium_binary() is None:
        raise TestFailure("chromium is not installed (apt-get install chromium; tests/deps.sh installs it)")
    work = newdir("chromium")
    d = daemon(["-exclude", "corp.example.com"])
    fetch_all(d)
    for kind in ("mod", "zip"):
        get(d.port, rel("example.com/liba", "v1.1.0", kind))
    url = "http://127.0.0.1:%d/?q=liba" % d.port
    rc, dom, err = run_chromium(url, ["--dump-dom"], work)
    check(rc == 0 and "<html" in dom, "chromium --dump-dom failed (status %d): %s" % (rc, err[-600:]))
    check('<pre id="goproxy">go env -w GOPROXY=http://127.0.0.1:%d</pre>' % d.port in dom,
          "the DOM lacks the GOPROXY line")
    check("<code>example.com/liba</code>" in dom and 'href="/example.com/liba/@v/v1.1.0.zip"' in dom,
          "the DOM lacks the search result")
    shot = os.path.join(work, "frontpage.png")
    rc, _, err = run_chromium(url, ["--screenshot=" + shot, "--window-size=900,1350",
                                    "--hide-scrollbars"], work)
    check(rc == 0 and os.path.exists(shot), "chromium --screenshot failed (status %d): %s" % (rc, err[-600:]))
    colours, size = png_colours(shot)
    check(len(colours) > 1, "the screenshot is blank (%d colour, %dx%d)" % (len(colours), size[0], size[1]))
    if os.environ.get("FRONTPAGE_PNG"):
        shutil.copyfile(shot, os.environ["FRONTPAGE_PNG"])


TESTS = [test_html_or_plain_text_by_accept, test_goproxy_line_follows_host_and_prefix,
         test_goproxy_line_https_with_tls, test_search_finds_cached_not_uncached,
         test_catalog_walks_each_version_once, test_eviction_leaves_the_catalog,
         test_hostile_host_and_query_escaped, test_auth_applies_to_front_and_catalog,
         test_chromium_loads_the_page]

if __name__ == "__main__":
    sys.exit(R.main(setup, TESTS, sys.argv[1:]))

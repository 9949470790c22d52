#!/usr/bin/env python3
"""The S3 tier (-s3) against a real S3-compatible store: a single-node Ceph
RGW started by tests/lib/ceph.sh on 127.0.0.1, and the real go command.

Run:  python3 tests/integration/test_s3.py [NAME-SUBSTRING ...]
Env:  GOPROXYD=path/to/binary (default ./build/goproxyd), KEEP_TMP=1
If Ceph cannot start here, setup fails (the suite does not skip).
The tests build on each other: A fills the store, B serves from it.
Last line "N passed, N failed".
"""

import json
import os
import re
import signal
import threading
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import awsquery  # noqa: E402
import fakeupstream  # noqa: E402
import mkmodules  # noqa: E402
from harness import (Daemons, Runner, TestFailure, check, check_clean_exits, daemon_binary,  # noqa: E402
                     eq, free_port, get, make_tmp, run_binary)

GO_TIMEOUT = 240
CEPH_SH = os.path.join(os.path.dirname(HERE), "lib", "ceph.sh")
R = Runner(default_timeout=300)
D = Daemons()


class Ctx:
    tmp = None
    tree = None
    info = None
    up = None
    ceph = None
    env = {}
    s3url = None
    a = None          # instance A and its cache directory
    filled = False


C = Ctx()


def setup():
    C.tmp = make_tmp("goproxyd-s3-", R)
    D.tmp = C.tmp
    C.tree = os.path.join(C.tmp, "tree")
    C.info = mkmodules.generate(C.tree)
    C.up = fakeupstream.FakeUpstream(C.tree).start()
    R.cleanups.append(lambda: C.up.stop(close_connections=True))
    C.ceph = os.path.join(C.tmp, "ceph")
    R.cleanups.append(lambda: subprocess.run(["bash", CEPH_SH, "stop", C.ceph], timeout=60))
    t0 = time.time()
    p = subprocess.run(["bash", CEPH_SH, "start", C.ceph], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=240)
    if p.returncode != 0:
        raise TestFailure("Ceph did not start: %s" % p.stdout.decode("utf-8", "replace")[-1500:])
    with open(os.path.join(C.ceph, "s3.env")) as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            C.env[k] = v
    print("  ceph started in %.1f s" % (time.time() - t0), flush=True)
    C.s3url = "%s/%s/mirror" % (C.env["S3_ENDPOINT"], C.env["S3_BUCKET"])
    R.cleanups.append(D.stop_all)


def creds(secret=None):
    return {"AWS_ACCESS_KEY_ID": C.env["S3_ACCESS_KEY"],
            "AWS_SECRET_ACCESS_KEY": secret or C.env["S3_SECRET_KEY"]}


def s3d(name, proxy=None, extra=(), cache=None):
    return D.start(proxy or C.up.url, extra=["-s3", C.s3url] + list(extra), cache=cache,
                   name=name, env=creds())


def curl_s3(method, key, data=None, base=None):
    """(status, body) of a signed request to the store (path-style, below
    base, default C.s3url), with curl."""
    args = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "-X", method,
            "--aws-sigv4", "aws:amz:us-east-1:s3",
            "--user", "%s:%s" % (C.env["S3_ACCESS_KEY"], C.env["S3_SECRET_KEY"]),
            "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"]
    if data is not None:
        args += ["--data-binary", "@-"]
    quoted = "".join(c if c.isalnum() or c in "-._~/" else "%%%02X" % ord(c) for c in key)
    p = subprocess.run(args + ["%s/%s" % (base or C.s3url, quoted)], input=data, stdout=subprocess.PIPE,
                       timeout=30)
    body, _, code = p.stdout.rpartition(b"\n")
    return int(code), body


def metric(d, name):
    total = 0
    for line in get(d.port, "/metrics").text().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def wait_metric(d, name, want, secs=30):
    deadline = time.time() + secs
    while time.time() < deadline:
        if metric(d, name) >= want:
            return
        time.sleep(0.2)
    raise TestFailure("%s stayed at %s (want %s)" % (name, metric(d, name), want))


def go_run(goproxy, name):
    wd = D.newdir(name)
    app = mkmodules.write_app(os.path.join(wd, "app"))
    env = mkmodules.go_env(wd, goproxy, os.path.join(wd, "gomodcache"))
    for args in (["mod", "download"], ["build", "-o", os.path.join(wd, "app.bin"), "."]):
        rc, out = mkmodules.run_go(args, app, env, GO_TIMEOUT)
        if rc != 0:
            raise TestFailure("go %s via %s failed (%s): %s"
                              % (" ".join(args), goproxy, rc, out.strip().replace("\n", " | ")[-700:]))
    with open(os.path.join(app, "go.sum")) as f:
        got = mkmodules.parse_gosum(f.read())
    for k, h in got.items():
        eq(h, C.info["sums"].get(k), "go.sum hash of %s" % k)


def immutable_files():
    return [mkmodules.rel(m, v, k) for m, v in mkmodules.APP_GO_MOD_REQUIRES
            for k in ("info", "mod", "zip")]


# =================================================================== tests

def test_a_fills_the_store():
    """Instance A, cold: the go command's run fills the store in the
    background with every immutable file it fetched."""
    C.up.reset()
    cache = os.path.join(D.newdir("a"), "cache")
    C.a = s3d("a", cache=cache)
    go_run(C.a.url, "go-a")
    files = immutable_files()
    wait_metric(C.a, "goproxyd_s3_puts_total", len(files))
    eq(metric(C.a, "goproxyd_s3_put_errors_total"), 0, "PUT errors")
    # every GET (all misses here) and PUT attempt is in the latency histogram
    check(metric(C.a, "goproxyd_s3_duration_seconds_count") >= 2 * len(files),
          "store latency observations: %s" % metric(C.a, "goproxyd_s3_duration_seconds_count"))
    for rel in files:
        st, body = curl_s3("GET", rel)
        eq(st, 200, "store object %s" % rel)
        check(body == C.info["files"][rel], "store object %s differs from upstream" % rel)
    C.filled = True


def test_b_serves_from_store_with_upstream_stopped():
    """Instance B, empty local directory, upstream unreachable: the same go
    run passes from the store alone."""
    if not C.filled:
        raise TestFailure("needs test_a_fills_the_store")
    dead = "http://127.0.0.1:%d" % free_port()
    b = s3d("b", proxy=dead)
    go_run(b.url, "go-b")
    check(metric(b, "goproxyd_s3_get_hits_total") >= len(immutable_files()),
          "B's store hits: %s" % metric(b, "goproxyd_s3_get_hits_total"))
    eq(metric(b, "goproxyd_s3_puts_total"), 0, "B copied back what it got from the store")


def test_mutable_answers_from_store_when_upstream_down():
    """A's list and @latest answers go to the store with their fetch time;
    instance C, empty directory, upstream down, serves them from there,
    as old as they are (its file keeps A's fetch time)."""
    if not C.filled:
        raise TestFailure("needs test_a_fills_the_store")
    m = mkmodules.escape(mkmodules.APP_GO_MOD_REQUIRES[1][0])
    puts = metric(C.a, "goproxyd_s3_puts_total")
    bodies = {}
    for rel in ("%s/@v/list" % m, "%s/@latest" % m):
        r = get(C.a.port, "/" + rel)
        eq(r.status, 200, "A: %s" % rel)
        bodies[rel] = r.body
    wait_metric(C.a, "goproxyd_s3_puts_total", puts + 2)
    time.sleep(1.1)   # C's copy must not look newer than A's
    dead = "http://127.0.0.1:%d" % free_port()
    cache = os.path.join(D.newdir("c"), "cache")
    c = s3d("c", proxy=dead, cache=cache)
    for rel, body in bodies.items():
        r = get(c.port, "/" + rel)
        eq(r.status, 200, "C: %s" % rel)
        eq(r.body, body, "C: body of %s" % rel)
        a_mtime = int(os.stat(os.path.join(C.a.cache_dir, rel)).st_mtime)
        eq(int(os.stat(os.path.join(cache, rel)).st_mtime), a_mtime, "C's mtime of %s" % rel)
    r = get(c.port, "/example.com/nosuchmodule/@v/list")
    check(r.status in (404, 410), "a list in neither place: %d" % r.status)


def start_fails(env_extra, extra):
    """Runs goproxyd with -s3 and expects it to refuse to start: its output."""
    cache = os.path.join(D.newdir("refused"), "cache")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(env_extra)
    p = subprocess.run([daemon_binary(), "-listen", "127.0.0.1:%d" % free_port(), "-cacheDir", cache,
                        "-proxy", C.up.url, "-sumdb", "off", "-s3", C.s3url] + list(extra), env=env,
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)
    out = p.stdout.decode("utf-8", "replace")
    eq(p.returncode, 1, "exit status (output: %s)" % out[-300:])
    return out


def test_wrong_secret_refuses_to_start():
    secret = "wrong" + C.env["S3_SECRET_KEY"][5:]
    out = start_fails(creds(secret), [])
    check("S3 store" in out and C.env["S3_ENDPOINT"] in out and "refused the credentials" in out,
          "the message does not name the store: %s" % out[-300:])
    check(secret not in out, "the secret is in the output")


def test_virtual_hosted_style():
    """-s3AddressingStyle virtual (Alibaba Cloud OSS accepts nothing else):
    the bucket in the host name, BUCKET.localhost here (libcurl resolves
    *.localhost to the loopback address itself; ceph.sh sets RGW's 'rgw dns
    name' to localhost).  An instance fills the store through it, a
    path-style client finds the objects there, and an instance with no
    upstream serves them; a bucket that does not exist is named at start-up."""
    C.up.reset()
    port = C.env["S3_ENDPOINT"].rsplit(":", 1)[1]
    url = "http://%s.localhost:%s/virtual" % (C.env["S3_BUCKET"], port)
    style = ["-s3", url, "-s3AddressingStyle", "virtual"]
    files = immutable_files()[:3]
    a = D.start(C.up.url, extra=style, name="virtual-a", env=creds())
    for rel in files:
        eq(get(a.port, "/" + rel).status, 200, "A: " + rel)
    wait_metric(a, "goproxyd_s3_puts_total", len(files))
    eq(metric(a, "goproxyd_s3_put_errors_total"), 0, "PUT errors")
    path_style = "%s/%s/virtual" % (C.env["S3_ENDPOINT"], C.env["S3_BUCKET"])
    for rel in files:
        st, body = curl_s3("GET", rel, base=path_style)
        eq(st, 200, "store object %s, path-style" % rel)
        check(body == C.info["files"][rel], "store object %s differs from upstream" % rel)
    b = D.start("http://127.0.0.1:%d" % free_port(), extra=style, name="virtual-b", env=creds())
    for rel in files:
        r = get(b.port, "/" + rel)
        eq(r.status, 200, "B: " + rel)
        check(r.body == C.info["files"][rel], "B: %s differs from upstream" % rel)
    eq(metric(b, "goproxyd_s3_get_hits_total"), len(files), "B's store hits")
    out = start_fails(creds(), ["-s3", "http://nosuch%d.localhost:%s" % (free_port(), port),
                                "-s3AddressingStyle", "virtual"])
    check("no such bucket" in out and ".localhost:%s/" % port in out,
          "the message does not name the missing bucket: %s" % out[-300:])


class NoConditionalStore:
    """A pass-through proxy to the RGW that plays a store without
    conditional PUTs: a PUT with If-None-Match gets 501 NotImplemented, as
    S3 answers a header it does not implement.  With fail_gets, every GET
    gets 500 (an instance then fetches upstream and PUTs).  Headers go
    through unchanged (Host included), so RGW checks the signature that
    goproxyd made for the proxy's address."""

    def __init__(self, target):
        import http.client
        import http.server
        host, port = target.split("//", 1)[1].rsplit(":", 1)
        store = self
        self.refused = 0
        self.fail_gets = False

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def forward(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                if self.command == "PUT" and self.headers.get("If-None-Match"):
                    store.refused += 1
                    return self.answer(501, b"<Error><Code>NotImplemented</Code></Error>")
                if self.command == "GET" and store.fail_gets:
                    return self.answer(500, b"<Error><Code>InternalError</Code></Error>")
                c = http.client.HTTPConnection(host, int(port), timeout=30)
                c.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for k, v in self.headers.items():
                    if k.lower() != "expect":
                        c.putheader(k, v)
                c.endheaders(body)
                r = c.getresponse()
                data = r.read()
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(r.getheader("Content-Length", len(data))
                                                       if self.command == "HEAD" else len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                c.close()

            def answer(self, status, body):
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_HEAD = forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def test_store_without_conditional_puts():
    """A store that answers 501 to If-None-Match: * still gets every file:
    goproxyd says so once, then asks with a HEAD before each PUT, and one
    that is already there is counted as existing, not written again."""
    C.up.reset()
    proxy = NoConditionalStore(C.env["S3_ENDPOINT"])
    R.cleanups.append(proxy.stop)
    url = "%s/%s/noconditional" % (proxy.url, C.env["S3_BUCKET"])
    base = "%s/%s/noconditional" % (C.env["S3_ENDPOINT"], C.env["S3_BUCKET"])
    files = immutable_files()[:3]
    a = D.start(C.up.url, extra=["-s3", url], name="nocond-a", env=creds())
    for rel in files:
        eq(get(a.port, "/" + rel).status, 200, "A: " + rel)
    wait_metric(a, "goproxyd_s3_puts_total", len(files))
    eq(metric(a, "goproxyd_s3_put_errors_total"), 0, "PUT errors")
    check(proxy.refused >= 1, "no conditional PUT reached the store")
    with open(a.log_path) as f:
        eq(f.read().count("conditional PUTs (If-None-Match: *) are not implemented"), 1,
           "the log lines saying so")
    for rel in files:
        st, body = curl_s3("GET", rel, base=base)
        eq(st, 200, "store object %s" % rel)
        check(body == C.info["files"][rel], "store object %s differs from upstream" % rel)
    # B cannot read the store, so it fetches upstream; its PUTs find the
    # objects there with a HEAD and write nothing
    proxy.fail_gets = True
    b = D.start(C.up.url, extra=["-s3", url], name="nocond-b", env=creds())
    for rel in files:
        eq(get(b.port, "/" + rel).status, 200, "B: " + rel)
    wait_metric(b, "goproxyd_s3_put_exists_total", len(files))
    eq(metric(b, "goproxyd_s3_puts_total"), 0, "B's PUTs")
    eq(metric(b, "goproxyd_s3_put_errors_total"), 0, "B's PUT errors")


def test_credentials_file():
    """-s3CredentialsFile: the AWS shared-credentials format, the profile
    AWS_PROFILE names (else [default]), and it wins over the environment."""
    if not C.filled:
        raise TestFailure("needs test_a_fills_the_store")
    secret = C.env["S3_SECRET_KEY"]
    wrong = "wrong" + secret[5:]
    path = os.path.join(D.newdir("creds"), "credentials")
    with open(path, "w") as f:
        f.write("# written by test_s3.py\n[default]\naws_access_key_id = %s\n"
                "aws_secret_access_key = %s\n\n[mirror]\n  aws_access_key_id=%s\n"
                "aws_secret_access_key =   %s  \n" % (C.env["S3_ACCESS_KEY"], wrong, C.env["S3_ACCESS_KEY"], secret))
    os.chmod(path, 0o600)
    # The right secret from the file's [mirror] profile, a wrong one in the environment.
    d = D.start(C.up.url, extra=["-s3", C.s3url, "-s3CredentialsFile", path], name="credfile",
                env={"AWS_PROFILE": "mirror", "AWS_ACCESS_KEY_ID": C.env["S3_ACCESS_KEY"],
                     "AWS_SECRET_ACCESS_KEY": wrong})
    eq(get(d.port, "/readyz").status, 200, "/readyz with the file's credentials")
    rel = immutable_files()[0]
    r = get(d.port, "/" + rel)
    eq(r.status, 200, "a local miss")
    eq(metric(d, "goproxyd_s3_get_hits_total"), 1, "found in the store with the file's credentials")
    # [default] holds the wrong secret: refused at start-up, the secret never shown.
    out = start_fails({}, ["-s3CredentialsFile", path])
    check("refused the credentials" in out, "wrong secret in [default]: %s" % out[-300:])
    check(wrong not in out and secret not in out, "a secret is in the output")
    out = start_fails({"AWS_PROFILE": "nosuch"}, ["-s3CredentialsFile", path])
    check("no aws_access_key_id and aws_secret_access_key in profile [nosuch]" in out,
          "missing profile: %s" % out[-300:])
    out = start_fails({}, ["-s3CredentialsFile", path + ".missing"])
    check("-s3CredentialsFile" in out and "No such file" in out, "missing file: %s" % out[-300:])


def test_session_token():
    """Temporary credentials from the store's STS (GetSessionToken): with
    AWS_SESSION_TOKEN, or aws_session_token in -s3CredentialsFile, the
    store takes them; the same key and secret without the token are
    refused.  The token never appears in the output."""
    if not C.filled:
        raise TestFailure("needs test_a_fills_the_store")
    ep, ak, sk = C.env["S3_ENDPOINT"], C.env["S3_ACCESS_KEY"], C.env["S3_SECRET_KEY"]
    awsquery.put_user_policy(ep, ak, sk, "goproxyd", "session-tokens", json.dumps(
        {"Version": "2012-10-17",
         "Statement": [{"Effect": "Allow", "Action": ["sts:GetSessionToken"], "Resource": "*"}]}))
    tak, tsk, token = awsquery.get_session_token(ep, ak, sk)
    check(tak != ak, "GetSessionToken gave the long-term key back")
    d = D.start(C.up.url, extra=["-s3", C.s3url], name="token",
                env={"AWS_ACCESS_KEY_ID": tak, "AWS_SECRET_ACCESS_KEY": tsk, "AWS_SESSION_TOKEN": token})
    eq(get(d.port, "/readyz").status, 200, "/readyz with temporary credentials")
    eq(get(d.port, "/" + immutable_files()[1]).status, 200, "a local miss")
    eq(metric(d, "goproxyd_s3_get_hits_total"), 1, "found in the store with temporary credentials")
    path = os.path.join(D.newdir("tokenfile"), "credentials")
    with open(path, "w") as f:
        f.write("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\naws_session_token = %s\n"
                % (tak, tsk, token))
    os.chmod(path, 0o600)
    e = D.start(C.up.url, extra=["-s3", C.s3url, "-s3CredentialsFile", path], name="tokenfile", env={})
    eq(get(e.port, "/readyz").status, 200, "/readyz with the token from the file")
    out = start_fails({"AWS_ACCESS_KEY_ID": tak, "AWS_SECRET_ACCESS_KEY": tsk}, [])
    check("refused the credentials" in out, "temporary key without its token: %s" % out[-300:])
    check(token not in out and tsk not in out, "a secret is in the output")
    for x in (d, e):
        eq(D.stop(x), 0, "exit status")
        with open(x.log_path, "rb") as f:
            check(token.encode() not in f.read(), "the token is in %s" % x.log_path)


def test_unreachable_store_not_ready():
    """A store that cannot be reached at start-up: goproxyd starts, serves
    from upstream, and /readyz says 503 naming the store."""
    url = "http://127.0.0.1:%d/goproxyd" % free_port()
    d = D.start(C.up.url, extra=["-s3", url], name="unreach", env=creds())
    r = get(d.port, "/readyz")
    eq(r.status, 503, "/readyz status")
    check(url in r.text() and "unreachable" in r.text(), "/readyz body: %r" % r.text())
    rel = immutable_files()[0]
    r = get(d.port, "/" + rel)
    eq(r.status, 200, "a miss served from upstream")


def test_store_stopped_local_hits_go_on():
    """With radosgw stopped (SIGSTOP) mid-run: A's local hits go on; on
    instance E the first miss waits for its store GET to stall
    (-stallTimeout 2s), then the store counts as down, further misses go
    straight upstream, and /readyz says 503 naming the store until the
    store answers again."""
    if not C.filled:
        raise TestFailure("needs test_a_fills_the_store")
    C.up.reset()
    e = s3d("e", extra=["-stallTimeout", "2s"])
    eq(get(e.port, "/readyz").status, 200, "E's /readyz before")
    with open(os.path.join(C.ceph, "pids")) as f:
        rgw = int(f.read().split()[-1])   # the last started: radosgw
    os.kill(rgw, signal.SIGSTOP)
    try:
        go_run(C.a.url, "go-a-again")
        files = immutable_files()
        t0 = time.time()
        r = get(C.a.port, "/" + files[2], timeout=10)
        eq(r.status, 200, "a hit while the store is stopped")
        check(time.time() - t0 < 1.5, "a hit waited on the stopped store")
        r = get(e.port, "/" + files[0], timeout=30)
        eq(r.status, 200, "E's first miss")
        t0 = time.time()
        r = get(e.port, "/" + files[1], timeout=30)
        eq(r.status, 200, "E's second miss")
        check(time.time() - t0 < 1.5, "E's second miss waited %.1f s on the stopped store"
              % (time.time() - t0))
        r = get(e.port, "/readyz")
        eq(r.status, 503, "E's /readyz with the store stopped")
        check(C.s3url.rsplit("/", 1)[0] in r.text(), "/readyz does not name the store: %r" % r.text())
    finally:
        os.kill(rgw, signal.SIGCONT)
    deadline = time.time() + 20
    while get(e.port, "/readyz").status != 200 and time.time() < deadline:
        time.sleep(0.5)
    eq(get(e.port, "/readyz").status, 200, "E's /readyz once the store is back")


def test_tampered_object_replaced():
    """A store object that fails the checks is refused, fetched from
    upstream, and replaced in the store."""
    if not C.filled:
        raise TestFailure("needs test_a_fills_the_store")
    C.up.reset()
    rel = [f for f in immutable_files() if f.endswith(".zip")][0]
    st, _ = curl_s3("PUT", rel, b"PK not a zip at all")
    eq(st, 200, "tampering PUT")
    d = s3d("tamper")
    r = get(d.port, "/" + rel)
    eq(r.status, 200, "status of the tampered file")
    check(r.body == C.info["files"][rel], "served body differs from upstream")
    eq(C.up.count(r"\.zip$"), 1, "upstream requests for the zip")
    eq(metric(d, "goproxyd_s3_get_rejected_total"), 1, "rejected store objects")
    wait_metric(d, "goproxyd_s3_puts_total", 1)
    st, body = curl_s3("GET", rel)
    check(st == 200 and body == C.info["files"][rel], "the store object was not replaced")


def test_conditional_create_counts_duplicates():
    """An object another writer created while this instance fetched the
    file is not overwritten: the PUT is a conditional create
    (If-None-Match: *), which RGW 16 answers 412, and it is counted."""
    if not C.filled:
        raise TestFailure("needs test_a_fills_the_store")
    C.up.reset()
    rel = immutable_files()[1]
    st, _ = curl_s3("DELETE", rel)
    check(st in (200, 204), "DELETE status %d" % st)
    C.up.set_rules({re.escape(rel) + "$": {"stall_before_headers": 2}})
    d = s3d("dup")
    out = {}
    t = threading.Thread(target=lambda: out.update(r=get(d.port, "/" + rel, timeout=30)))
    t.start()
    deadline = time.time() + 10
    while C.up.stalling() == 0 and time.time() < deadline:
        time.sleep(0.02)
    check(C.up.stalling() == 1, "the fetch never reached the upstream")
    st, _ = curl_s3("PUT", rel, C.info["files"][rel])
    eq(st, 200, "the other writer's PUT")
    t.join(30)
    eq(out["r"].status, 200, "served")
    wait_metric(d, "goproxyd_s3_put_exists_total", 1)
    eq(metric(d, "goproxyd_s3_puts_total"), 0, "objects written")


def test_secret_never_logged():
    secret = C.env["S3_SECRET_KEY"]
    D.stop_all()
    n = 0
    for root, _, files in os.walk(C.tmp):
        for f in files:
            if f.startswith("goproxyd-") and f.endswith(".log"):
                n += 1
                with open(os.path.join(root, f), "rb") as fh:
                    check(secret.encode() not in fh.read(), "the secret is in %s" % f)
    check(n >= 5, "found only %d daemon logs" % n)
    check_clean_exits(D.exits)


def main(argv):
    return R.main(setup, [test_a_fills_the_store, test_b_serves_from_store_with_upstream_stopped,
                          test_mutable_answers_from_store_when_upstream_down,
                          test_wrong_secret_refuses_to_start, test_virtual_hosted_style,
                          test_store_without_conditional_puts,
                          test_credentials_file, test_session_token,
                          test_unreachable_store_not_ready,
                          test_store_stopped_local_hits_go_on, test_tampered_object_replaced,
                          test_conditional_create_counts_duplicates, test_secret_never_logged],
                  argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

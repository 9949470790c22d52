"""Shared pieces of the goproxyd integration suites (standard library only):
a tiny test runner, a daemon launcher, and HTTP helpers that never hang."""

import functools
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


class TestFailure(Exception):
    pass


class TestSkip(Exception):
    """Raised by a test that cannot run here (missing privilege or tool); the
    runner prints "skip NAME: reason" and counts it neither passed nor failed."""
    pass


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def eq(got, want, what):
    if got != want:
        raise TestFailure("%s: got %s, want %s" % (what, _short(got), _short(want)))


def _short(v, n=200):
    r = repr(v)
    return r if len(r) <= n else r[:n] + "...(%d chars)" % len(r)


# ------------------------------------------------------------------ runner

class Runner:
    """Runs test functions in order, each in its own thread with a deadline.
    Prints "ok NAME" / "FAIL NAME: reason"; the last line is "N passed, N failed"."""

    def __init__(self, default_timeout=120):
        self.default_timeout = default_timeout
        self.cleanups = []          # callables run at the very end (LIFO)
        self.after_each = []        # callables run after every test
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.failures = []

    def main(self, setup, tests, argv):
        """A suite's whole run: setup() (a failure is one failed test), then
        the tests whose names contain any of argv."""
        try:
            setup()
        except Exception as e:
            self.finish()
            print("FAIL setup: %s" % e)
            print("0 passed, 1 failed")
            return 1
        if not os.path.exists(daemon_binary()):
            sys.stderr.write("warning: daemon binary %s does not exist\n" % daemon_binary())
        return self.run(tests, only=argv)

    def run(self, tests, only=None):
        def on_signal(signum, frame):
            self.finish()
            print("%d passed, %d failed" % (self.passed, self.failed + 1), flush=True)
            os._exit(1)
        old_term = signal.signal(signal.SIGTERM, on_signal)
        try:
            for t in tests:
                name = t.__name__
                if only and not any(o in name for o in only):
                    continue
                self._one(t, name)
        finally:
            self.finish()
            signal.signal(signal.SIGTERM, old_term)
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        return 1 if self.failed else 0

    def _one(self, fn, name):
        timeout = getattr(fn, "timeout", self.default_timeout)
        result = {}

        def body():
            try:
                fn()
                result["ok"] = True
            except TestFailure as e:
                result["err"] = str(e)
            except TestSkip as e:
                result["skip"] = str(e)
            except BaseException as e:  # unexpected error in the test itself
                tb = traceback.extract_tb(e.__traceback__)
                where = "%s:%d" % (os.path.basename(tb[-1].filename), tb[-1].lineno) if tb else "?"
                result["err"] = "%s: %s (at %s)" % (type(e).__name__, e, where)

        th = threading.Thread(target=body, daemon=True)
        t0 = time.time()
        th.start()
        th.join(timeout)
        if th.is_alive():
            result["err"] = "timed out after %ds" % timeout
        for f in list(self.after_each):
            try:
                f()
            except Exception as e:
                sys.stderr.write("cleanup after %s: %s\n" % (name, e))
        line_reason = result.get("err", "").replace("\n", " | ")
        if "skip" in result and "err" not in result:
            self.skipped += 1
            print("skip %s: %s" % (name, result["skip"].replace("\n", " | ")), flush=True)
        elif "ok" in result and "err" not in result:
            self.passed += 1
            print("ok %s (%.1fs)" % (name, time.time() - t0), flush=True)
        else:
            self.failed += 1
            self.failures.append((name, line_reason))
            print("FAIL %s: %s" % (name, line_reason), flush=True)

    def finish(self):
        while self.cleanups:
            f = self.cleanups.pop()
            try:
                f()
            except Exception as e:
                sys.stderr.write("cleanup: %s\n" % e)


class Daemons:
    """A suite's goproxyd processes and numbered test directories.  Every
    daemon stopped with SIGTERM leaves (exit status, log, log tail) in
    .exits, for check_clean_exits() at the end of the suite."""

    def __init__(self):
        self.tmp = None      # set by the suite's setup()
        self.n = 0
        self.running = []
        self.exits = []

    def newdir(self, name):
        self.n += 1
        d = os.path.join(self.tmp, "t%02d-%s" % (self.n, name))
        os.makedirs(d)
        return d

    def start(self, proxy, extra=(), cache=None, name="d", env=None):
        if cache is None:
            cache = os.path.join(self.newdir(name), "cache")
        d = Daemon(cache, proxy, extra, env=env)
        self.running.append(d)
        return d.start()

    def forget(self, d):
        """For a daemon the test killed itself: not stopped, not checked."""
        self.running.remove(d)

    def stop(self, d):
        """SIGTERM one daemon now; returns its exit status."""
        if d in self.running:
            self.running.remove(d)
        alive = d.alive()
        rc = d.stop(timeout=15)
        if alive:
            self.exits.append((rc, d.log_path, d.log_tail(400)))
        return rc

    def stop_all(self):
        while self.running:
            self.stop(self.running[-1])


def check_clean_exits(exits):
    """exits: (status, log path, log tail) of every daemon a suite stopped
    with SIGTERM; all must be 0 (under the sanitizers a leak or error report
    makes the status non-zero).  Returns how many there were."""
    bad = [(rc, tail) for rc, _, tail in exits if rc != 0]
    check(not bad, "%d of %d daemons exited non-zero after SIGTERM: %s"
          % (len(bad), len(exits), " || ".join("status %s: %s" % (rc, t[-300:]) for rc, t in bad[:3])))
    return len(exits)


def timeout(seconds):
    def deco(fn):
        fn.timeout = seconds
        return fn
    return deco


def make_tmp(prefix, runner):
    d = tempfile.mkdtemp(prefix=prefix)
    if not os.environ.get("KEEP_TMP"):
        runner.cleanups.append(lambda: shutil.rmtree(d, ignore_errors=True))
    else:
        sys.stderr.write("KEEP_TMP: %s\n" % d)
    return d


# ------------------------------------------------------------------ daemon

def daemon_binary():
    b = os.environ.get("GOPROXYD", "./build/goproxyd")
    if not os.path.isabs(b):
        # relative to the current directory, else to the project root
        cand = os.path.abspath(b)
        if not os.path.exists(cand):
            cand = os.path.join(REPO, b)
        b = cand
    return b


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, proc=None, timeout=15.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


class Daemon:
    """One goproxyd process on 127.0.0.1:<free port>."""

    def __init__(self, cache_dir, proxy, extra=(), workdir=None, binary=None, env=None):
        self.binary = binary or daemon_binary()
        self.env = env              # extra environment variables (dict) or None
        self.cache_dir = cache_dir
        self.proxy = proxy
        self.extra = list(extra)
        self.workdir = workdir or os.path.dirname(os.path.abspath(cache_dir))
        self.proc = None
        self.port = None
        self.log_path = None
        self._n = 0

    def args(self):
        a = [self.binary, "-listen", "127.0.0.1:%d" % self.port, "-cacheDir", self.cache_dir]
        if self.proxy is not None:
            a += ["-proxy", self.proxy]
        # Checksum-database verification is on by default and would reach
        # for sum.golang.org; suites that test it pass their own -sumdb.
        if not any(x == "-sumdb" or x.startswith("-sumdb=") for x in self.extra):
            a += ["-sumdb", "off"]
        # Warming (-warm, on by default) fetches files no request asked for;
        # suites that count upstream requests or cache outcomes would see
        # them.  Suites that test warming pass their own -warm.
        if not any(x == "-warm" or x.startswith("-warm=") for x in self.extra):
            a += ["-warm", "0"]
        return a + self.extra

    def start(self, ready_timeout=15.0):
        if not os.path.exists(self.binary):
            raise TestFailure("daemon binary %s does not exist" % self.binary)
        last = ""
        for attempt in range(3):
            self.port = free_port()
            self._n += 1
            self.log_path = os.path.join(self.workdir, "goproxyd-%d-%d.log" % (self.port, self._n))
            log = open(self.log_path, "wb")
            env = None
            if self.env:
                env = dict(os.environ)
                env.update(self.env)
            self.proc = subprocess.Popen(self.args(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=self.workdir,
                                         start_new_session=True, env=env)
            log.close()
            if wait_port(self.port, self.proc, ready_timeout):
                return self
            last = self.log_tail()
            rc = self.proc.poll()
            self.kill9()
            if rc is None or "addr" not in last.lower():
                break
        raise TestFailure("daemon did not start (%s): %s" % (" ".join(self.args()), last))

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n=600):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
            return data[-n:].decode("utf-8", "replace").strip().replace("\n", " | ")
        except OSError:
            return ""

    def stop(self, timeout=15.0):
        """SIGTERM, then SIGKILL after timeout. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
        rc = self.proc.returncode
        self.proc = None
        return rc

    def kill9(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.kill()
            except OSError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass


def run_binary(args, timeout=10, cwd=None):
    """Run the daemon binary with args; returns (rc, stdout, stderr) or raises
    TestFailure if it does not exit within timeout."""
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, cwd=cwd, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate(timeout=10)
        raise TestFailure("%s did not exit within %ds" % (" ".join(args), timeout))
    return p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


# ------------------------------------------------------------------ HTTP

class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.header_list = headers
        self.headers = {}
        for k, v in headers:
            self.headers[k.lower()] = v
        self.body = body

    def h(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def text(self):
        return self.body.decode("utf-8", "replace") if isinstance(self.body, bytes) else str(self.body)

    def __repr__(self):
        return "<%d %s %s>" % (self.status, self.headers, _short(self.body, 120))


def request(port, method, path, headers=None, body=None, timeout=30.0, ssl_context=None):
    """One request on a fresh connection; HTTPS when ssl_context is given."""
    if ssl_context is not None:
        c = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=ssl_context)
    else:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return Resp(r.status, r.getheaders(), data)
    finally:
        c.close()


def get(port, path, headers=None, timeout=30.0, ssl_context=None):
    return request(port, "GET", path, headers, timeout=timeout, ssl_context=ssl_context)


def raw_request(port, data, timeout=15.0):
    """Send raw bytes; return Resp or None if the peer closed without a status
    line. Reads until close (send Connection: close)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        chunks = []
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            chunks.append(b)
            buf = b"".join(chunks)
            # stop once a complete Content-Length response is in
            if b"\r\n\r\n" in buf:
                head, _, rest = buf.partition(b"\r\n\r\n")
                cl = None
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        try:
                            cl = int(v.strip())
                        except ValueError:
                            pass
                if cl is not None and len(rest) >= cl:
                    break
        buf = b"".join(chunks)
    finally:
        s.close()
    if not buf.startswith(b"HTTP/"):
        return None
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return None
    hdrs = []
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        hdrs.append((k.strip().decode("latin-1"), v.strip().decode("latin-1")))
    return Resp(status, hdrs, rest)


def norm_ct(v):
    return (v or "").replace(" ", "").lower()


def tmp_leftovers(root):
    out = []
    for d, dirs, files in os.walk(root):
        for n in files + dirs:
            if n.startswith(".goproxyd-tmp-"):
                out.append(os.path.relpath(os.path.join(d, n), root))
    return out


def all_files(root):
    out = []
    for d, dirs, files in os.walk(root):
        for n in files:
            out.append(os.path.relpath(os.path.join(d, n), root))
    return sorted(out)


def read(path):
    with open(path, "rb") as f:
        return f.read()


# ------------------------------------------------------------------ timing and checks

def note(msg):
    """A measurement line ("# ..."), between the ok/FAIL lines."""
    print("# " + msg, flush=True)


CT = {"info": "application/json", "mod": "text/plain; charset=utf-8", "zip": "application/zip",
      "list": "text/plain; charset=utf-8", "latest": "application/json"}


def xcache(r):
    return (r.h("X-Goproxyd-Cache") or "").strip().lower()


def expect_ok(r, want, kind, what):
    """r (a Resp, or the exception/None a helper returned) is a 200 with
    exactly want, its length and the Content-Type of kind."""
    check(r is not None and not isinstance(r, BaseException), "%s: no response (%r)" % (what, r))
    eq(r.status, 200, "%s status (body %r)" % (what, r.body[:200]))
    check(r.body == want, "%s: body differs from upstream (%d vs %d bytes)" % (what, len(r.body), len(want)))
    eq(r.h("Content-Length"), str(len(want)), "%s Content-Length" % what)
    eq(norm_ct(r.h("Content-Type")), norm_ct(CT[kind]), "%s Content-Type" % what)


def parallel(fns, join_timeout=60.0):
    """Runs the callables in threads, released together; returns their
    results (an exception object for a failed call, None if unfinished)."""
    res = [None] * len(fns)
    gate = threading.Barrier(len(fns) + 1)

    def run(i, f):
        try:
            gate.wait(10)
            res[i] = f()
        except BaseException as e:  # noqa: B902 - reported by the caller
            res[i] = e
    ths = [threading.Thread(target=run, args=(i, f), daemon=True) for i, f in enumerate(fns)]
    for t in ths:
        t.start()
    gate.wait(10)
    deadline = time.time() + join_timeout
    for t in ths:
        t.join(max(0.1, deadline - time.time()))
    return res


def wait_for(cond, secs, step=0.02):
    """Polls cond() until true or secs pass; returns its last value."""
    deadline = time.time() + secs
    v = cond()
    while not v and time.time() < deadline:
        time.sleep(step)
        v = cond()
    return v


def timed_get(port, path, timeout=30.0):
    t0 = time.monotonic()
    r = get(port, path, timeout=timeout)
    return r, time.monotonic() - t0


def lat_summary(xs):
    if not xs:
        return "n=0"
    s = sorted(xs)
    return "n=%d p50=%.1fms p90=%.1fms max=%.1fms" % (len(s), 1000 * s[len(s) // 2],
                                                      1000 * s[min(len(s) - 1, int(len(s) * 0.9))],
                                                      1000 * s[-1])


def check_no_sanitizer(text, what):
    """text (a daemon's log, a command's output) holds no sanitizer report."""
    for m in ("Sanitizer", "runtime error:"):
        i = text.find(m)
        check(i < 0, "%s has a sanitizer report: %s" % (what, text[max(0, i - 200):i + 600]))


def stops_clean(daemons):
    """A decorator for test bodies: at the end of a passing body, every
    Daemon in the list daemons (which the body appends to) must still be
    running, must exit 0 on SIGTERM and must have logged no sanitizer
    report."""
    def decorate(fn):
        @functools.wraps(fn)
        def wrapper():
            fn()
            while daemons:
                d = daemons.pop()
                check(d.alive(), "daemon died during the test: %s" % d.log_tail())
                rc = d.stop(timeout=15)
                eq(rc, 0, "daemon exit status after SIGTERM (log: %s)" % d.log_tail())
                check_no_sanitizer(read(d.log_path).decode("utf-8", "replace"), "daemon log")
        return wrapper
    return decorate

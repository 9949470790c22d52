#!/usr/bin/env python3
"""A fake GOPROXY upstream with fault injection (standard library only).

Serves a directory in GOPROXY layout (see mkmodules.py) over HTTP/1.1 on
127.0.0.1.  The URL path is percent-decoded once; '..' and the like are refused.

Script:
    fakeupstream.py ROOT [--port N] [--port-file FILE]
    Prints the chosen port as the first line on stdout (and writes it to
    --port-file, atomically).  SIGTERM/SIGINT shut it down cleanly (exit 0).

Module:
    up = FakeUpstream(root, port=0).start()    # serves in a background thread
    up.url                                     # "http://127.0.0.1:PORT"
    up.set_rules({regex: rule, ...}); up.reset(); up.stats(); up.stop()

Control API (paths starting with /_ are never counted, never faulted):
    POST /_control   body: JSON object {"<path regex>": {rule}, ...}
                     (or a list [{"path": regex, ...rule}]).  Rules accumulate;
                     posting a regex again replaces its rule.  The first rule
                     (in insertion order) whose regex re.search()es the
                     decoded request path applies.
    POST /_reset     clears rules and counters
    GET  /_stats     JSON {decoded path: request count}
    GET  /_rules     JSON of the active rules (with remaining "times")
    GET  /_log       JSON [[seconds since the last reset, decoded path], ...]:
                     every counted request in arrival order
    GET  /_concurrency  JSON {"active": n, "max": m}: requests being answered
                     now, and the most at once since the last reset
    POST /_release   ends every stall in progress now (rules stay)

Rule keys (all optional, combinable):
    status: int                 answer with this status (body: "body" or a default)
    body: str / body_b64: str   answer with these bytes (status 200 unless "status")
    headers: {name: value}      extra response headers
    content_type: str           override Content-Type
    stall_before_headers: s     sleep s seconds before sending anything
    stall_after_bytes: [n, s]   send headers + n body bytes, sleep s, send the rest
    cut_after_bytes: n          send the full Content-Length, then close after n bytes
    wrong_content_length: n     declare Content-Length n, send the real body, close
    garbage: true               same length of random bytes instead of the file
    info_version: "v9.9.9"      .info/@latest JSON naming another Version
    redirect: url               302 to url ("{path}" is replaced by the raw path)
    close: true                 close the connection without any response
    times: k                    the rule applies to the next k matching requests only
    chunked: true               send the body chunked, without a Content-Length
    no_length: true             send no Content-Length; the body ends when the
                                connection closes (HTTP/1.0 style)
    rate: bytes_per_second      throttle the body to about this rate (a slow upstream)
    probability: p              the rule applies to a matching request with
                                probability p (0..1); otherwise the next rule is tried
    require_auth: "Basic ..."   answer 401 (WWW-Authenticate: Basic) unless the
                                request's Authorization header is exactly this;
                                when it is, the rest of the rule applies
Every stall is bounded by MAX_STALL seconds and ends early on shutdown.
"""

import json
import os
import random
import re
import signal
import socket
import sys
import threading
import time
import base64
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_STALL = 120.0

CONTENT_TYPES = {
    ".info": "application/json",
    ".mod": "text/plain; charset=utf-8",
    ".zip": "application/zip",
}


class _State:
    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []          # [ [regex str, compiled, rule dict] ]
        self.counts = {}
        self.stalling = 0        # requests currently inside a stall
        self.stall_started = threading.Event()
        self.stop = threading.Event()
        self.active = 0          # requests being answered now (not /_ ones)
        self.max_active = 0      # high-water mark of active since reset
        self.release_gen = 0     # bumped by release(): ends current stalls
        self.cond = threading.Condition(self.lock)
        self.rng = random.Random(1)
        self.auth_seen = []      # Authorization headers seen by require_auth rules
        self.log = []            # [(monotonic time, path)] of counted requests
        self.t0 = time.monotonic()

    def reset(self):
        with self.lock:
            self.rules = []
            self.counts = {}
            self.auth_seen = []
            self.log = []
            self.t0 = time.monotonic()
            self.stall_started.clear()
            self.max_active = self.active

    def add_rules(self, spec):
        if isinstance(spec, dict):
            items = list(spec.items())
        elif isinstance(spec, list):
            items = []
            for r in spec:
                r = dict(r)
                items.append((r.pop("path"), r))
        else:
            raise ValueError("rules must be an object or a list")
        compiled = [(rx, re.compile(rx), dict(rule)) for rx, rule in items]
        with self.lock:
            for rx, c, rule in compiled:
                self.rules = [r for r in self.rules if r[0] != rx]
                self.rules.append([rx, c, rule])

    def match(self, path):
        """Count the request and return the applicable rule (or None)."""
        with self.lock:
            self.counts[path] = self.counts.get(path, 0) + 1
            self.log.append((time.monotonic(), path))
            for entry in self.rules:
                rx, c, rule = entry
                if c.search(path):
                    if "probability" in rule and self.rng.random() >= float(rule["probability"]):
                        continue
                    if "times" in rule:
                        if rule["times"] <= 0:
                            continue
                        rule["times"] -= 1
                    return dict(rule)
            return None

    def sleep(self, seconds):
        """Bounded, interruptible sleep; returns False if shutting down."""
        seconds = max(0.0, min(float(seconds), MAX_STALL))
        with self.lock:
            self.stalling += 1
        self.stall_started.set()
        try:
            return self.pause(seconds)
        finally:
            with self.lock:
                self.stalling -= 1

    def pause(self, seconds):
        """Sleep up to seconds (bounded by MAX_STALL); ends early on
        release() (returns True) or shutdown (returns False)."""
        deadline = time.monotonic() + max(0.0, min(float(seconds), MAX_STALL))
        with self.cond:
            gen = self.release_gen
            while not self.stop.is_set() and self.release_gen == gen:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(min(left, 0.2))
        return not self.stop.is_set()

    def release(self):
        with self.cond:
            self.release_gen += 1
            self.cond.notify_all()

    def enter(self):
        with self.lock:
            self.active += 1
            if self.active > self.max_active:
                self.max_active = self.active

    def leave(self):
        with self.lock:
            self.active -= 1


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fakeupstream/1"
    timeout = 60  # idle keep-alive connections end after this

    def log_message(self, fmt, *args):  # quiet
        if self.server.verbose:
            sys.stderr.write("fakeupstream: " + (fmt % args) + "\n")

    # ------------------------------------------------------------ helpers
    def _send(self, status, body, ctype="text/plain; charset=utf-8", headers=None,
              head=False, rule=None):
        rule = rule or {}
        st = self.server.state
        self.send_response(status)
        self.send_header("Content-Type", rule.get("content_type", ctype))
        clen = len(body)
        close_after = False
        if "wrong_content_length" in rule:
            clen = int(rule["wrong_content_length"])
            close_after = True
        chunked = bool(rule.get("chunked")) and "wrong_content_length" not in rule
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif rule.get("no_length"):
            close_after = True
        else:
            self.send_header("Content-Length", str(clen))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        for k, v in rule.get("headers", {}).items():
            self.send_header(k, str(v))
        if close_after or "cut_after_bytes" in rule:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if head:
            return
        try:
            if chunked:
                for i in range(0, len(body), 1 << 14):
                    part = body[i:i + (1 << 14)]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
                return
            if "cut_after_bytes" in rule:
                n = int(rule["cut_after_bytes"])
                self.wfile.write(body[:n])
                self.wfile.flush()
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if "stall_after_bytes" in rule:
                n, secs = rule["stall_after_bytes"]
                n = int(n)
                self.wfile.write(body[:n])
                self.wfile.flush()
                if not st.sleep(secs):
                    self.close_connection = True
                    return
                body = body[n:]
            if rule.get("rate"):
                rate = max(1.0, float(rule["rate"]))
                step = max(1, int(rate / 20))
                for i in range(0, len(body), step):
                    self.wfile.write(body[i:i + step])
                    self.wfile.flush()
                    if i + step < len(body) and not st.pause(step / rate):
                        self.close_connection = True
                        return
                return
            # write in chunks so a dead peer is noticed early
            for i in range(0, len(body), 1 << 16):
                self.wfile.write(body[i:i + (1 << 16)])
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, socket.timeout, OSError):
            self.close_connection = True

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > 16 << 20:
            raise ValueError("body too large")
        return self.rfile.read(n) if n else b""

    # ------------------------------------------------------------ control
    def _control(self, method, path):
        st = self.server.state
        try:
            if method == "POST" and path == "/_control":
                st.add_rules(json.loads(self._read_body() or b"{}"))
                return self._send(200, b'{"ok":true}\n', "application/json")
            if method == "POST" and path == "/_reset":
                self._read_body()
                st.reset()
                return self._send(200, b'{"ok":true}\n', "application/json")
            if method == "GET" and path == "/_stats":
                with st.lock:
                    body = json.dumps(st.counts, sort_keys=True).encode()
                return self._send(200, body, "application/json")
            if method == "GET" and path == "/_log":
                with st.lock:
                    body = json.dumps([[round(t - st.t0, 4), p] for t, p in st.log]).encode()
                return self._send(200, body, "application/json")
            if method == "GET" and path == "/_concurrency":
                with st.lock:
                    body = json.dumps({"active": st.active, "max": st.max_active}).encode()
                return self._send(200, body, "application/json")
            if method == "POST" and path == "/_release":
                self._read_body()
                st.release()
                return self._send(200, b'{"ok":true}\n', "application/json")
            if method == "GET" and path == "/_rules":
                with st.lock:
                    body = json.dumps([[r[0], r[2]] for r in st.rules]).encode()
                return self._send(200, body, "application/json")
        except Exception as e:  # bad JSON, bad regex
            return self._send(400, ("bad control request: %s\n" % e).encode())
        return self._send(404, b"unknown control endpoint\n")

    # ------------------------------------------------------------ serving
    def _serve(self, head):
        raw = self.path.split("?", 1)[0]
        path = urllib.parse.unquote(raw, errors="strict") if "%" in raw else raw
        if path.startswith("/_"):
            if head:
                return self._send(405, b"")
            return self._control(self.command, path)
        st = self.server.state
        st.enter()
        try:
            self._serve_counted(st, path, raw, head)
        finally:
            st.leave()

    def _serve_counted(self, st, path, raw, head):
        rule = st.match(path) or {}

        if "require_auth" in rule:
            got = self.headers.get("Authorization")
            with st.lock:
                st.auth_seen.append(got)
            if got != rule["require_auth"]:
                return self._send(401, b"authorization required\n", head=head,
                                  headers={"WWW-Authenticate": 'Basic realm="fakeupstream"'})

        if rule.get("stall_before_headers"):
            if not st.sleep(rule["stall_before_headers"]):
                self.close_connection = True
                return
        if rule.get("close"):
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if "redirect" in rule:
            loc = rule["redirect"].replace("{path}", raw)
            return self._send(302, b"redirect\n", headers={"Location": loc}, head=head)

        if "body_b64" in rule or "body" in rule:
            body = base64.b64decode(rule["body_b64"]) if "body_b64" in rule \
                else rule["body"].encode()
            status = int(rule.get("status", 200))
            ctype = self._ctype(path) if status == 200 else "text/plain; charset=utf-8"
            return self._send(status, body, ctype, head=head, rule=rule)
        if "status" in rule:
            status = int(rule["status"])
            body = ("injected status %d for %s\n" % (status, path)).encode()
            hdrs = {"Retry-After": "0"} if status in (429, 503) else None
            return self._send(status, body, headers=hdrs, head=head, rule=rule)

        data = self._file(path)
        if data is None:
            return self._send(404, ("not found: %s\n" % path).encode(), head=head, rule=rule)
        if rule.get("info_version") and (path.endswith(".info") or path.endswith("/@latest")):
            try:
                obj = json.loads(data)
            except ValueError:
                obj = {}
            obj["Version"] = rule["info_version"]
            data = json.dumps(obj).encode()
        if rule.get("garbage"):
            data = random.Random(len(data)).randbytes(max(len(data), 64))
        return self._send(200, data, self._ctype(path), head=head, rule=rule)

    @staticmethod
    def _ctype(path):
        for ext, ct in CONTENT_TYPES.items():
            if path.endswith(ext):
                return ct
        if path.endswith("/@latest"):
            return "application/json"
        return "text/plain; charset=utf-8"

    def _file(self, path):
        parts = path.split("/")
        if not path.startswith("/") or "\\" in path or "\x00" in path:
            return None
        if any(p in (".", "..") for p in parts[1:]) or "" in parts[1:]:
            return None
        root = self.server.root
        full = os.path.realpath(os.path.join(root, *parts[1:]))
        if not full.startswith(root + os.sep) or not os.path.isfile(full):
            return None
        try:
            with open(full, "rb") as f:
                return f.read()
        except OSError:
            return None

    def do_GET(self):
        try:
            self._serve(False)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except UnicodeDecodeError:
            self._send(400, b"bad path encoding\n")

    def do_HEAD(self):
        try:
            self._serve(True)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except UnicodeDecodeError:
            self._send(400, b"bad path encoding\n", head=True)

    def do_POST(self):
        raw = self.path.split("?", 1)[0]
        if raw.startswith("/_"):
            return self._control("POST", raw)
        self._read_body()
        self._send(405, b"method not allowed\n", headers={"Allow": "GET, HEAD"})

    do_PUT = do_DELETE = do_POST


class TrackingServer(ThreadingHTTPServer):
    """A threading HTTP server that can end its kept-alive connections too
    (close_connections()): a stopped fake server is really down.  Also used
    by fakesumdb.py."""
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, *args, **kwargs):
        self.conns = set()       # client sockets being served
        self.conns_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request, client_address):
        with self.conns_lock:
            self.conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.conns_lock:
            self.conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self):
        with self.conns_lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass



class _Server(TrackingServer):
    def handle_error(self, request, client_address):  # quiet on broken pipes
        if self.verbose:
            super().handle_error(request, client_address)


class FakeUpstream:
    def __init__(self, root, port=0, host="127.0.0.1", verbose=False):
        self.root = os.path.realpath(root)
        self.state = _State()
        self.httpd = _Server((host, port), _Handler)
        self.httpd.root = self.root
        self.httpd.state = self.state
        self.httpd.verbose = verbose
        self.port = self.httpd.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self.httpd.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self):
        self.httpd.serve_forever(poll_interval=0.1)

    def stop(self, close_connections=False):
        """Stop accepting, end stalls, close the listening socket.  With
        close_connections, also cut the kept-alive client connections, so
        the upstream is really gone (not just closed to new connections)."""
        self.state.stop.set()
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(10)
            self._thread = None
        self.httpd.server_close()
        if close_connections:
            self.httpd.close_connections()

    # direct (in-process) control, same semantics as the HTTP API
    def set_rules(self, rules):
        self.state.add_rules(rules)

    def reset(self):
        self.state.reset()

    def stats(self):
        with self.state.lock:
            return dict(self.state.counts)

    def count(self, pattern=None):
        """Total requests whose path re.search()es pattern (all if None)."""
        rx = re.compile(pattern) if pattern else None
        return sum(n for p, n in self.stats().items() if rx is None or rx.search(p))

    def auth_seen(self):
        """Authorization headers (None if absent) of requests that met a
        require_auth rule since the last reset."""
        with self.state.lock:
            return list(self.state.auth_seen)

    def request_log(self):
        """[(seconds since the last reset, path)] of counted requests, in order."""
        with self.state.lock:
            return [(t - self.state.t0, p) for t, p in self.state.log]

    def stalling(self):
        with self.state.lock:
            return self.state.stalling

    def concurrency(self):
        """(requests being answered now, most at once since the last reset)."""
        with self.state.lock:
            return self.state.active, self.state.max_active

    def release_stalls(self):
        """End every stall (and throttle pause) in progress now."""
        self.state.release()


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description="fake GOPROXY upstream with fault injection")
    ap.add_argument("root")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    up = FakeUpstream(a.root, a.port, verbose=a.verbose)
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    up.start()
    if a.port_file:
        tmp = a.port_file + ".tmp%d" % os.getpid()
        with open(tmp, "w") as f:
            f.write("%d\n" % up.port)
        os.rename(tmp, a.port_file)
    print(up.port, flush=True)
    while not stop.wait(0.5):
        pass
    up.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

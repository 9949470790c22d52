#!/usr/bin/env python3
"""A fast, counting fake GOPROXY upstream for the benchmark (stdlib only).

    upstream.py ROOT --port-file FILE [--delay-ms N]

Serves ROOT (GOPROXY layout, see mkgraph.py) on 127.0.0.1 with HTTP/1.1
keep-alive, one thread per connection, file bodies sent with sendfile(2).
Every request for a path outside /_ is counted:
    GET  /_stats   -> JSON {path: count}
    POST /_reset   -> clears the counters
    POST /_delay   -> body: milliseconds every later answer waits before it
                      is sent (a far upstream; 0 = none, at most 10000)
Writes the chosen port to FILE (atomically) once listening; exits on
SIGTERM/SIGINT.  --delay-ms N answers every counted request N ms late (a
distant upstream: the offline workload's prefetch against go mod download).
"""

import argparse
import json
import os
import signal
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TYPES = {".info": "application/json", ".zip": "application/zip"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "benchupstream/1"
    timeout = 120
    # Headers and body go out as two writes: without TCP_NODELAY, Nagle holds
    # the body until the client's delayed ACK (~40 ms) on a reused connection.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass

    def _reply(self, status, body, ctype="text/plain; charset=utf-8"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if self.path == "/_reset":
            with self.server.lock:
                self.server.counts.clear()
            return self._reply(200, b"{}\n", "application/json")
        if self.path == "/_delay":
            try:
                ms = int(body or b"0")
            except ValueError:
                return self._reply(400, b"delay: milliseconds\n")
            self.server.delay = max(0, min(ms, 10000)) / 1000.0
            return self._reply(200, b"{}\n", "application/json")
        self._reply(405, b"method not allowed\n")

    def do_GET(self):
        path = urllib.parse.unquote(self.path.split("?", 1)[0])
        if path == "/_stats":
            with self.server.lock:
                body = json.dumps(self.server.counts, sort_keys=True).encode()
            return self._reply(200, body, "application/json")
        with self.server.lock:
            self.server.counts[path] = self.server.counts.get(path, 0) + 1
        if self.server.delay:
            time.sleep(self.server.delay)
        parts = path.split("/")[1:]
        if not parts or any(p in ("", ".", "..") for p in parts):
            return self._reply(404, b"not found\n")
        full = os.path.join(self.server.root, *parts)
        try:
            f = open(full, "rb")
        except OSError:
            return self._reply(404, ("not found: %s\n" % path).encode())
        with f:
            size = os.fstat(f.fileno()).st_size
            ext = os.path.splitext(path)[1]
            ctype = TYPES.get(ext, "application/json" if path.endswith("/@latest")
                              else "text/plain; charset=utf-8")
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            if self.command == "HEAD":
                return
            self.wfile.flush()
            try:
                self.connection.sendfile(f)
            except OSError:
                self.close_connection = True

    do_HEAD = do_GET


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--delay-ms", type=int, default=0)
    a = ap.parse_args(argv)
    srv = Server(("127.0.0.1", 0), Handler)
    srv.root = os.path.realpath(a.root)
    srv.counts = {}
    srv.delay = max(0, min(a.delay_ms, 10000)) / 1000.0
    srv.lock = threading.Lock()
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, a.port_file)

    def stop(signum, frame):
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    srv.serve_forever(poll_interval=0.2)
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""A fake Go checksum database (sumdb) for tests, standard library only.

It keeps a transparency log of go.sum records (RFC 6962 hashing, tiles of
height 8), signs its tree notes with an Ed25519 test key made from a fixed
seed, and serves, on 127.0.0.1, exactly what sum.golang.org serves:

    GET /latest                          signed tree note
    GET /lookup/<esc path>@<esc version> "<id>\\n<record>\\n<signed note>"
                                         (404 "not found: ..." if unknown,
                                          400 on malformed module@version)
    GET /tile/8/<L>/<K>[.p/<W>]          W*32 bytes of hashes
    GET /tile/8/data/<K>[.p/<W>]         record texts, each + "\\n"

Usage (module):
    import fakesumdb
    db = fakesumdb.FakeSumDB("sum.test.example")
    db.add("example.com/m", "v1.0.0", "h1:...zip...", "h1:...go.mod...")
    db.add_proxy_dir(root)    # or: every module of a GOPROXY-layout tree
    db.start()
    db.url, db.vkey           # GOSUMDB="%s %s" % (db.vkey, db.url)
    db.counts                 # {"/lookup/...": n, ...}; db.count(regex)
    db.set_mode("bad-signature")   # tamper; set_mode(None) = honest
    db.set_delay(10)          # answer lookups 10 s late (a slow database);
                              # set_delay(s, pattern) for other paths, 0 = off
    db.stop()

Tamper modes (set_mode; also POST /_mode with the name as body, "" = honest):
    lookup-hashes   lookup returns the record with other hashes (log intact;
                    db.forge(path, version, h1zip, h1mod) picks them)
    bad-signature   tree notes carry a corrupted signature
    beyond-tree     lookups carry a note for a tree that ends before the record
    bad-tiles       hash tiles have a flipped byte
    fork            a different log (record 0 rewritten) one record larger
    fork-same-size  a different log (record 0 rewritten) of the same size
    forged-tile     like lookup-hashes, and every FULL level-0 tile holds the
                    hashes of the rewritten records (partial tiles, which the
                    signed root covers directly, stay honest). A verifier that
                    checks every tile against its parent rejects it; the go
                    command of Go 1.19 (x/mod TileHashReader starting its
                    parent checks at len(stx)) accepts such a lookup when the
                    record's tile is not one of the tree-size tiles, e.g.
                    record 5 of a tree of 300.
Records added with wrong hashes are, of course, just served (the go command
must then fail with SECURITY ERROR, checksum mismatch).

Delay (set_delay; also POST /_delay with body "SECONDS [REGEX]"): requests
whose path re.search()es the regex (default ^/lookup/) are counted at once
and answered that many seconds late; stop() ends the waits early.  A delay
is bounded by MAX_DELAY seconds.

Usage (script):
    fakesumdb.py [--name NAME] [--port N] [--port-file F] [--proxy-dir DIR]
                 [--record 'path version h1:zip h1:mod' ...] [--verify]
                 [--lookup-delay SECONDS]
Prints the port and then the verifier key; runs until SIGTERM/SIGINT.
--verify runs the self-check against the real go command instead
(see tests/integration/test_fakesumdb_gocmd.py) and exits.
"""

import base64
import hashlib
import io
import os
import re
import signal
import struct
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import ed25519  # noqa: E402
from fakeupstream import TrackingServer  # noqa: E402

HEIGHT = 8
DEFAULT_NAME = "sum.test.example"
DEFAULT_SEED = hashlib.sha256(b"goproxyd fakesumdb test key").digest()
MAX_DELAY = 120.0
MODES = ("lookup-hashes", "bad-signature", "beyond-tree", "bad-tiles", "fork", "fork-same-size",
         "forged-tile")

MOD_VER_RE = re.compile(r"^[^@]+@v[0-9]+\.[0-9]+\.[0-9]+(-[^@]*)?(\+incompatible)?$")
TILE_RE = re.compile(r"^/tile/8/(data|[0-9]+)/((?:x[0-9]{3}/)*[0-9]{3})(?:\.p/([0-9]+))?$")


# ---------------------------------------------------------------- hashing

def record_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def hash1(files):
    """dirhash.Hash1 over [(name, bytes)]."""
    lines = []
    for name, data in sorted(files, key=lambda f: f[0].encode()):
        if "\n" in name:
            raise ValueError("newline in file name")
        lines.append("%s  %s\n" % (hashlib.sha256(data).hexdigest(), name))
    return "h1:" + base64.b64encode(hashlib.sha256("".join(lines).encode()).digest()).decode()


def zip_hash(zip_bytes):
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as z:
        return hash1([(i.filename, z.read(i)) for i in z.infolist()])


def gomod_hash(mod_bytes):
    return hash1([("go.mod", mod_bytes)])


def escape(s):
    return "".join("!" + c.lower() if "A" <= c <= "Z" else c for c in s)


def unescape(s):
    out, bang = [], False
    for c in s:
        if bang:
            if not "a" <= c <= "z":
                raise ValueError("bad escape")
            out.append(c.upper())
            bang = False
        elif c == "!":
            bang = True
        elif "A" <= c <= "Z" or ord(c) >= 0x80:
            raise ValueError("bad character")
        else:
            out.append(c)
    if bang:
        raise ValueError("trailing !")
    return "".join(out)


def tile_path(h, level, k, w):
    """tlog.Tile.Path; level -1 is "data"."""
    s = "%03d" % (k % 1000)
    k //= 1000
    while k > 0:
        s = "x%03d/%s" % (k % 1000, s)
        k //= 1000
    lv = "data" if level == -1 else str(level)
    p = "tile/%d/%s/%s" % (h, lv, s)
    if w != 1 << h:
        p += ".p/%d" % w
    return p


def format_record(path, version, ziph, modh):
    return ("%s %s %s\n%s %s/go.mod %s\n" % (path, version, ziph, path, version, modh)).encode()


# ---------------------------------------------------------------- keys, notes

class Key:
    def __init__(self, name, seed=DEFAULT_SEED):
        self.name = name
        self.seed = seed
        self.pub = ed25519.public_key(seed)
        h = hashlib.sha256(name.encode() + b"\n\x01" + self.pub).digest()
        self.hash = struct.unpack(">I", h[:4])[0]
        self.vkey = "%s+%08x+%s" % (name, self.hash, base64.b64encode(b"\x01" + self.pub).decode())
        self.skey = "PRIVATE+KEY+%s+%08x+%s" % (name, self.hash,
                                                base64.b64encode(b"\x01" + seed).decode())

    def sign_note(self, text, corrupt=False):
        """note.Sign: text + blank line + one signature line."""
        sig = ed25519.sign(self.seed, text)
        if corrupt:
            sig = bytes([sig[0] ^ 1]) + sig[1:]
        b64 = base64.b64encode(struct.pack(">I", self.hash) + sig).decode()
        return text + b"\n" + ("\u2014 %s %s\n" % (self.name, b64)).encode()


def format_tree(n, h):
    return ("go.sum database tree\n%d\n%s\n" % (n, base64.b64encode(h).decode())).encode()


# ---------------------------------------------------------------- the log

class Log:
    """Records and all complete subtree hashes: levels[k][i] is the hash of
    records [i*2^k, (i+1)*2^k)."""

    def __init__(self, texts=()):
        self.texts = []
        self.levels = [[]]
        for t in texts:
            self.append(t)

    def append(self, text):
        self.texts.append(text)
        h = record_hash(text)
        k = 0
        while True:
            if len(self.levels) <= k:
                self.levels.append([])
            lv = self.levels[k]
            lv.append(h)
            if len(lv) % 2:
                break
            h = node_hash(lv[-2], lv[-1])
            k += 1
        return len(self.texts) - 1

    def __len__(self):
        return len(self.texts)

    def tree_hash(self, n):
        """RFC 6962 MTH of the first n records; 32 zero bytes for n == 0."""
        if n == 0:
            return bytes(32)
        subs, lo = [], 0
        for k in range(n.bit_length() - 1, -1, -1):
            if n & (1 << k):
                subs.append(self.levels[k][lo >> k])
                lo += 1 << k
        h = subs[-1]
        for s in reversed(subs[:-1]):
            h = node_hash(s, h)
        return h

    def hash_tile(self, level, k, w, n):
        """Tile (8, level, k, w) of the tree of size n, or None."""
        lv = level * HEIGHT
        start = k << HEIGHT
        if lv >= len(self.levels) or start + w > (n >> lv):
            return None
        return b"".join(self.levels[lv][start:start + w])

    def data_tile(self, k, w, n):
        start = k << HEIGHT
        if start + w > n:
            return None
        return b"".join(t + b"\n" for t in self.texts[start:start + w])


# ---------------------------------------------------------------- server

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fakesumdb"

    def log_message(self, fmt, *args):
        if self.server.db.verbose:
            sys.stderr.write("fakesumdb: " + fmt % args + "\n")

    def _send(self, code, body, ctype="text/plain; charset=UTF-8"):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        db = self.server.db
        path = self.path.split("?", 1)[0]
        db._count(path)
        db._delay(path)
        try:
            code, body, ctype = db.handle(path)
        except Exception as e:  # a bug in the fake: say so, do not hang
            code, body, ctype = 500, "fakesumdb: %s\n" % e, "text/plain; charset=UTF-8"
        self._send(code, body, ctype)

    do_HEAD = do_GET

    def do_POST(self):
        db = self.server.db
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode().strip() if n else ""
        if self.path == "/_mode":
            try:
                db.set_mode(body or None)
            except ValueError as e:
                return self._send(400, "%s\n" % e)
            return self._send(200, "ok\n")
        if self.path == "/_delay":
            try:
                f = body.split(None, 1)
                db.set_delay(float(f[0]) if f else 0, *f[1:])
            except (ValueError, re.error) as e:
                return self._send(400, "%s\n" % e)
            return self._send(200, "ok\n")
        self._send(405, "method not allowed\n")


class FakeSumDB:
    def __init__(self, name=DEFAULT_NAME, seed=DEFAULT_SEED, port=0, verbose=False):
        self.key = Key(name, seed)
        self.name = name
        self.vkey = self.key.vkey
        self.verbose = verbose
        self.log = Log()
        self.index = {}            # (path, version) -> record id
        self.mode = None
        self.lock = threading.Lock()
        self.counts = {}
        self._fork = None
        self._notes = {}           # (id(log), n, corrupt) -> signed note
        self.forged = {}           # (path, version) -> (h1 zip, h1 mod), see forge()
        self.delay = 0.0           # see set_delay()
        self.delay_rx = None
        self.stopping = threading.Event()
        self.httpd = TrackingServer(("127.0.0.1", port), _Handler)
        self.httpd.db = self
        self.port = self.httpd.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self._thread = None

    # -- content

    def add(self, path, version, ziph, modh):
        """Append the record for path@version; returns its id."""
        with self.lock:
            if (path, version) in self.index:
                raise ValueError("duplicate record %s@%s" % (path, version))
            rid = self.log.append(format_record(path, version, ziph, modh))
            self.index[(path, version)] = rid
            self._fork = None
            return rid

    def add_proxy_dir(self, root):
        """Add every <esc path>/@v/<esc version>.zip (+ .mod) under a
        GOPROXY-layout tree, in sorted order; returns {(path, ver): id}."""
        found = []
        for d, _dirs, files in os.walk(root):
            if os.path.basename(d) != "@v":
                continue
            esc_path = os.path.relpath(os.path.dirname(d), root).replace(os.sep, "/")
            for f in files:
                if f.endswith(".zip") and os.path.exists(os.path.join(d, f[:-4] + ".mod")):
                    found.append((unescape(esc_path), unescape(f[:-4]), d, f[:-4]))
        ids = {}
        for path, ver, d, base in sorted(found):
            with open(os.path.join(d, base + ".zip"), "rb") as fz:
                zh = zip_hash(fz.read())
            with open(os.path.join(d, base + ".mod"), "rb") as fm:
                mh = gomod_hash(fm.read())
            ids[(path, ver)] = self.add(path, ver, zh, mh)
        return ids

    def forge(self, path, version, ziph=None, modh=None):
        """Choose the hashes that the lookup-hashes and forged-tile modes put
        in path@version's rewritten record (instead of meaningless ones), e.g.
        the h1: hashes of tampered content an attacker serves; None keeps
        that line's honest hash."""
        with self.lock:
            rid = self.index[(path, version)]
            f = self.log.texts[rid].decode().split("\n")
            self.forged[(path, version)] = (ziph or f[0].split(" ")[-1],
                                            modh or f[1].split(" ")[-1])

    def _rewritten(self, text):
        """The record text as the lookup-hashes/forged-tile modes serve it."""
        f = text.decode().split(" ", 2)
        forged = self.forged.get((f[0], f[1])) if len(f) == 3 else None
        if forged:
            return format_record(f[0], f[1], forged[0], forged[1])
        return _other_hashes(text)

    def tree(self):
        """(N, root hash) of the honest tree."""
        with self.lock:
            return len(self.log), self.log.tree_hash(len(self.log))

    def signed_tree(self, log=None, n=None, corrupt=False):
        log = log or self.log
        n = len(log) if n is None else n
        k = (id(log), n, corrupt, len(log))
        note = self._notes.get(k)
        if note is None:
            note = self.key.sign_note(format_tree(n, log.tree_hash(n)), corrupt)
            self._notes[k] = note
        return note

    def set_mode(self, mode):
        if mode is not None and mode not in MODES:
            raise ValueError("unknown mode %r (want one of %s)" % (mode, ", ".join(MODES)))
        with self.lock:
            self.mode = mode

    def set_delay(self, seconds, pattern=r"^/lookup/"):
        """Answer requests whose path re.search()es pattern `seconds` late
        (0 = at once); by default lookups, as a slow database would."""
        rx = re.compile(pattern)
        with self.lock:
            self.delay = max(0.0, min(float(seconds), MAX_DELAY))
            self.delay_rx = rx

    def _delay(self, path):
        with self.lock:
            secs = self.delay if self.delay_rx is not None and self.delay_rx.search(path) else 0
        if secs > 0:
            self.stopping.wait(secs)

    def _fork_log(self):
        """The honest records with record 0 rewritten, plus one more."""
        if self._fork is None:
            texts = list(self.log.texts)
            if texts:
                texts[0] = _other_hashes(texts[0])
            texts.append(format_record("example.com/forked", "v1.0.0", hash1([("a", b"a")]),
                                       hash1([("go.mod", b"module example.com/forked\n")])))
            self._fork = Log(texts)
        return self._fork

    # -- requests

    def _count(self, path):
        with self.lock:
            self.counts[path] = self.counts.get(path, 0) + 1

    def count(self, pattern=None):
        rx = re.compile(pattern) if pattern else None
        with self.lock:
            return sum(n for p, n in self.counts.items() if rx is None or rx.search(p))

    def _view(self):
        """(log, tree size) served under the current mode."""
        if self.mode == "fork":
            f = self._fork_log()
            return f, len(f)
        if self.mode == "fork-same-size":
            return self._fork_log(), len(self.log)
        return self.log, len(self.log)

    def handle(self, path):
        with self.lock:
            log, n = self._view()
            mode = self.mode
        corrupt = mode == "bad-signature"
        if path == "/latest":
            return 200, self.signed_tree(log, n, corrupt), "text/plain; charset=UTF-8"
        if path.startswith("/lookup/"):
            return self._lookup(path[len("/lookup/"):], log, n, mode, corrupt)
        if path.startswith("/tile/"):
            m = TILE_RE.match(path)
            if m is None:
                return 400, "invalid tile syntax\n", "text/plain; charset=utf-8"
            return self._tile(path, m, log, n, mode)
        return 404, "404 page not found\n", "text/plain; charset=utf-8"

    def _lookup(self, mod, log, n, mode, corrupt):
        if not MOD_VER_RE.match(mod):
            return 400, "invalid module@version syntax\n", "text/plain; charset=utf-8"
        esc_path, esc_ver = mod.split("@", 1)
        try:
            path, ver = unescape(esc_path), unescape(esc_ver)
        except ValueError as e:
            return 404, "not found: %s: %s\n" % (mod, e), "text/plain; charset=utf-8"
        rid = self.index.get((path, ver))
        if rid is None or rid >= n:
            return 404, "not found: %s@%s: unknown module version\n" % (path, ver), \
                "text/plain; charset=utf-8"
        text = log.texts[rid]
        if mode in ("lookup-hashes", "forged-tile"):
            text = self._rewritten(text)
        tn = rid if mode == "beyond-tree" else n
        body = ("%d\n" % rid).encode() + text + b"\n" + self.signed_tree(log, tn, corrupt)
        return 200, body, "text/plain; charset=UTF-8"

    def _tile(self, path, m, log, n, mode):
        level = -1 if m.group(1) == "data" else int(m.group(1))
        k = 0
        for g in m.group(2).split("/"):
            k = k * 1000 + int(g.lstrip("x"))
        w = int(m.group(3)) if m.group(3) else 1 << HEIGHT
        if path[1:] != tile_path(HEIGHT, level, k, w) or not 1 <= w <= 1 << HEIGHT or level > 63:
            return 400, "invalid tile syntax\n", "text/plain; charset=utf-8"
        if level == -1:
            data = log.data_tile(k, w, n)
            ctype = "text/plain; charset=UTF-8"
        else:
            data = log.hash_tile(level, k, w, n)
            ctype = "application/octet-stream"
            if data is not None and mode == "bad-tiles":
                data = bytes([data[0] ^ 0x80]) + data[1:]
            if data is not None and mode == "forged-tile" and level == 0 and w == 1 << HEIGHT:
                data = b"".join(record_hash(self._rewritten(t))
                                for t in log.texts[k << HEIGHT:(k << HEIGHT) + w])
        if data is None:
            return 404, "not found: %s\n" % path[1:], "text/plain; charset=utf-8"
        return 200, data, ctype

    # -- lifecycle

    def start(self):
        self.stopping.clear()
        self._thread = threading.Thread(target=self.httpd.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stop listening and end every open connection (kept-alive ones
        included), so that the database is really down; delayed answers
        end early."""
        self.stopping.set()
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(10)
            self._thread = None
        self.httpd.server_close()
        self.httpd.close_connections()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _other_hashes(text):
    """The same record lines with different (well-formed) h1: hashes."""
    out = []
    for line in text.decode().split("\n")[:-1]:
        f = line.split(" ")
        f[-1] = "h1:" + base64.b64encode(hashlib.sha256(f[-1].encode()).digest()).decode()
        out.append(" ".join(f))
    return ("\n".join(out) + "\n").encode()


# ---------------------------------------------------------------- script

def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description="fake Go checksum database")
    ap.add_argument("--name", default=DEFAULT_NAME)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--proxy-dir")
    ap.add_argument("--record", action="append", default=[],
                    help="'path version h1:zip h1:mod' (repeatable)")
    ap.add_argument("--mode", choices=MODES)
    ap.add_argument("--lookup-delay", type=float, default=0,
                    help="answer lookups this many seconds late")
    ap.add_argument("--verify", action="store_true",
                    help="run tests/integration/test_fakesumdb_gocmd.py and exit")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    if a.verify:
        import runpy
        sys.argv = [os.path.join(HERE, "..", "integration", "test_fakesumdb_gocmd.py")]
        runpy.run_path(sys.argv[0], run_name="__main__")
        return 0
    db = FakeSumDB(a.name, port=a.port, verbose=a.verbose)
    if a.proxy_dir:
        db.add_proxy_dir(a.proxy_dir)
    for r in a.record:
        p, v, zh, mh = r.split()
        db.add(p, v, zh, mh)
    db.set_mode(a.mode)
    db.set_delay(a.lookup_delay)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda s, f: stop.set())
    signal.signal(signal.SIGINT, lambda s, f: stop.set())
    db.start()
    if a.port_file:
        tmp = a.port_file + ".tmp%d" % os.getpid()
        with open(tmp, "w") as f:
            f.write("%d\n" % db.port)
        os.rename(tmp, a.port_file)
    print(db.port, flush=True)
    print(db.vkey, flush=True)
    while not stop.wait(0.5):
        pass
    db.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

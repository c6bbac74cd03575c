"""tests/serve/mpserve.py: shared helpers for the `magpie serve` tests and benchmarks (python3 stdlib only).

- Server: starts `magpie serve` on a free port (--port 0), reads the port from its stderr line
  "magpie serve: listening on http://HOST:PORT", waits for /readyz, stops it (SIGTERM, SIGKILL).
- Client: one keep-alive HTTP/1.1 connection (http.client) that reconnects when the server closed it.
- raw_exchange: writes arbitrary bytes on a fresh socket and reads the answer (malformed requests).
- store helpers: the events of a store read with the sqlite3 module, as (user, item, type, ts) tuples.
"""
import http.client
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import time

# Stored numeric codes of the event types (include/magpie/records.h, MP_EVENT_TYPE_MAP order).
EVENT_TYPES = ["view", "click", "cart", "fav", "purchase", "review", "rating", "dislike", "return"]
TYPE_CODE = {name: i for i, name in enumerate(EVENT_TYPES)}

LISTEN_RE = re.compile(r"listening on http://([^:/\s]+):(\d+)")


class ServeError(Exception):
    pass


class Server:
    """One `magpie serve` process. stderr goes to a file (never a pipe that could fill up)."""

    def __init__(self, magpie, db, args=(), log_path=None, env=None, name="magpie serve"):
        self.magpie = magpie
        self.db = db
        self.args = list(args)
        self.log_path = log_path or (db + ".serve.log")
        self.env = env
        self.name = name
        self.proc = None
        self.port = None
        self.host = "127.0.0.1"
        self._log_offset = 0

    def cmdline(self):
        return [self.magpie, "serve", "--db", self.db, "--port", "0"] + self.args

    def start(self, timeout=120.0, ready=True, cmd=None):
        """Starts the process; returns the port once it printed its listening line (and, with ready, once /readyz
        answers 200). Raises ServeError with the stderr tail when it exits or does not get there in time."""
        # Append: a test that restarts the server keeps one log with every run in it.
        log = open(self.log_path, "ab")
        self._log_offset = log.tell()
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        self.proc = subprocess.Popen(cmd or self.cmdline(), stdout=subprocess.DEVNULL, stderr=log, env=env)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            m = LISTEN_RE.search(self.stderr_text(since_start=True))
            if m:
                self.host, self.port = m.group(1), int(m.group(2))
                break
            if self.proc.poll() is not None:
                raise ServeError("%s exited with status %s before listening; stderr:\n%s"
                                 % (self.name, self.proc.returncode, self.stderr_tail()))
            if time.monotonic() > deadline:
                self.kill()
                raise ServeError("%s printed no 'listening on' line within %.0f s; stderr:\n%s"
                                 % (self.name, timeout, self.stderr_tail()))
            time.sleep(0.01)
        if ready:
            self.wait_ready(max(1.0, deadline - time.monotonic()))
        return self.port

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServeError("%s exited with status %s while loading; stderr:\n%s"
                                 % (self.name, self.proc.returncode, self.stderr_tail()))
            try:
                st, _, body = request(self.port, "GET", "/readyz", timeout=5)
                if st == 200:
                    return json.loads(body)
                last = "%d %s" % (st, body[:200])
            except OSError as e:
                last = repr(e)
            time.sleep(0.05)
        raise ServeError("%s not ready within %.0f s (last /readyz: %s); stderr:\n%s"
                         % (self.name, timeout, last, self.stderr_tail()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL; returns once the process is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        """Sends sig and returns the exit status (None if it did not exit within timeout; it is then killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def stderr_text(self, since_start=False):
        try:
            with open(self.log_path, "rb") as f:
                if since_start:
                    f.seek(self._log_offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stderr_tail(self, n=3000):
        return self.stderr_text(since_start=True)[-n:]


def request(port, method, path, body=None, headers=None, timeout=10.0, host="127.0.0.1"):
    """One request on a fresh connection. Returns (status, headers dict with lower-case names, body bytes)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        conn.close()


class Client:
    """A keep-alive connection. request() reconnects once if the server closed an idle connection; any other
    failure raises (callers decide whether that is a test failure)."""

    def __init__(self, port, host="127.0.0.1", timeout=30.0, headers=None):
        self.port, self.host, self.timeout = port, host, timeout
        self.headers = dict(headers or {})
        self.conn = None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method, path, body=None, headers=None, retry_idle=True):
        h = dict(self.headers)
        h.update(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        fresh = self.conn is None
        if fresh:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self.conn.request(method, path, body=body, headers=h)
            r = self.conn.getresponse()
            data = r.read()
            if r.getheader("Connection", "").lower() == "close":
                self.close()
            return r.status, data
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self.close()
            # A kept-alive connection the server had closed: the request never reached it. Only safe to
            # resend once, on a connection that was not fresh.
            if retry_idle and not fresh:
                return self.request(method, path, body, headers, retry_idle=False)
            raise
        except Exception:
            self.close()
            raise

    def json(self, method, path, body=None, headers=None):
        st, data = self.request(method, path, body, headers)
        try:
            return st, json.loads(data) if data else None
        except ValueError:
            return st, {"_unparsable": data[:300].decode("utf-8", "replace")}


def raw_exchange(port, data, timeout=5.0, host="127.0.0.1", shut_write=False):
    """Sends raw bytes on a new connection and reads until the server closes it or timeout. Returns the bytes
    read (b"" if the server closed without answering). Send errors (the server closed early) are ignored."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        try:
            s.sendall(data)
            if shut_write:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except OSError:
                break
            if not b:
                break
            chunks.append(b)
            if _complete_response(b"".join(chunks)):
                break
        return b"".join(chunks)
    finally:
        s.close()


def _complete_response(buf):
    """True when buf holds one whole HTTP response with a Content-Length (or chunked end)."""
    head, sep, rest = buf.partition(b"\r\n\r\n")
    if not sep:
        return False
    m = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
    if m:
        return len(rest) >= int(m.group(1))
    if re.search(rb"(?im)^transfer-encoding:\s*chunked", head):
        return rest.endswith(b"0\r\n\r\n")
    return False


def parse_raw_response(buf):
    """(status, body bytes) of a raw HTTP response, or (None, buf) when it is not one."""
    m = re.match(rb"HTTP/1\.[01] (\d{3})", buf)
    if not m:
        return None, buf
    head, _, rest = buf.partition(b"\r\n\r\n")
    if re.search(rb"(?im)^transfer-encoding:\s*chunked", head):
        body, pos = b"", 0
        while True:
            eol = rest.find(b"\r\n", pos)
            if eol < 0:
                break
            size = int(rest[pos:eol].split(b";")[0] or b"0", 16)
            if size == 0:
                break
            body += rest[eol + 2:eol + 2 + size]
            pos = eol + 2 + size + 2
        rest = body
    return int(m.group(1)), rest


# ---- the store (read directly, with the server stopped or beside it: SQLite WAL readers do not block it) ----

def store_events(db, where="", params=()):
    """Every stored event as a list of (user_ext, item_ext, type_name, ts) tuples (duplicates kept)."""
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
    try:
        rows = con.execute("SELECT u.ext, i.ext, e.type, e.ts FROM events e JOIN users u ON u.id = e.user "
                           "JOIN items i ON i.id = e.item " + where, params).fetchall()
    finally:
        con.close()
    return [(u, i, EVENT_TYPES[t] if 0 <= t < len(EVENT_TYPES) else str(t), ts) for u, i, t, ts in rows]


def store_scalar(db, sql, params=()):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
    try:
        return con.execute(sql, params).fetchone()[0]
    finally:
        con.close()


def store_integrity(db):
    """PRAGMA integrity_check text ("ok" when intact). Opened read-write so that a WAL left by a killed server is
    recovered the way the next open would."""
    con = sqlite3.connect(db, timeout=30)
    try:
        return "\n".join(r[0] for r in con.execute("PRAGMA integrity_check").fetchall())
    finally:
        con.close()


def ids_of(db, table, limit=None):
    sql = "SELECT ext FROM %s ORDER BY id" % table
    if limit:
        sql += " LIMIT %d" % int(limit)
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
    try:
        return [r[0] for r in con.execute(sql).fetchall()]
    finally:
        con.close()


def event_json(user, item, etype, ts, value=None):
    e = {"user": user, "item": item, "type": etype, "ts": ts}
    if value is not None:
        e["value"] = value
    return e


def quote_id(s):
    """Percent-encodes an id for a path segment (every byte outside unreserved characters)."""
    from urllib.parse import quote
    return quote(s, safe="")

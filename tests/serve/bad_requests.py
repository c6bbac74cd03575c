"""tests/serve/bad_requests.py: `magpie serve` against hostile and broken requests.

The server runs with keys (read key "rk-test", write key "wk-test"), --max-body 4k, --max-n 100, --max-batch 50,
--idle-timeout 1s and --request-timeout 3s. Every bad request must get the right 4xx status and the error body
{"error": {"code", "message", "field"}} with the code of that status (docs/api.md), and /healthz must answer after
each. Covered: authentication (401, 403), malformed JSON and wrong body shapes (400), invalid records (422, all or
nothing), unknown ids (404), oversized bodies and batches (413), unsupported media type (415), wrong methods (405),
invalid UTF-8 in bodies and path ids, over-long ids, path traversal and SQL injection attempts as ids (treated as
plain ids: unknown -> 404; posted in events -> stored and returned verbatim), n / offset out of range and bad query
parameters, idle and dribbling clients (cut off while other clients are served). Then the store must be intact
(integrity_check, the events table whole, exactly the accepted events added) and SIGTERM must end the server
with status 0 (no sanitizer report on its stderr).

usage: bad_requests.py --magpie BIN --db STORE
"""
import argparse
import json
import os
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mpserve  # noqa: E402
from mpserve import quote_id as q  # noqa: E402

READ_KEY, WRITE_KEY = "rk-test", "wk-test"
RK = {"Authorization": "Bearer " + READ_KEY}
WK = {"Authorization": "Bearer " + WRITE_KEY}
JSON = {"Content-Type": "application/json"}
CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
         413: "payload_too_large", 415: "unsupported_media_type", 422: "unprocessable", 500: "internal",
         503: ("timeout", "not_ready")}
IDLE_S, REQUEST_S = 1.0, 3.0


class Checker:
    def __init__(self, port):
        self.port = port
        self.failures = []
        self.n_cases = 0
        self.inserted = 0  # events inserted by requests answered 200 (they must be in the store at the end)

    def fail(self, msg):
        self.failures.append(msg)
        print("FAIL " + msg)

    def healthz(self, after):
        try:
            st, _, body = mpserve.request(self.port, "GET", "/healthz", timeout=5)
            if st != 200:
                self.fail("after %s: /healthz answered %d %r" % (after, st, body[:200]))
                return False
        except OSError as e:
            self.fail("after %s: /healthz failed: %r (did the server die?)" % (after, e))
            return False
        return True

    def check_error_body(self, what, status, body, field=None):
        """The body must be {"error": {"code", "message", "field"}} with the code of the status."""
        try:
            doc = json.loads(body)
        except ValueError:
            self.fail("%s: %d body is not JSON: %r" % (what, status, body[:200]))
            return None
        err = doc.get("error") if isinstance(doc, dict) else None
        if not isinstance(err, dict) or not {"code", "message", "field"} <= set(err):
            self.fail("%s: %d body is not {\"error\": {\"code\", \"message\", \"field\"}}: %r" % (what, status, body[:300]))
            return None
        want = CODES.get(status)
        if want is not None and err["code"] not in (want if isinstance(want, tuple) else (want,)):
            self.fail("%s: status %d with error code %r, expected %r" % (what, status, err["code"], want))
        if not isinstance(err["message"], str) or not err["message"]:
            self.fail("%s: empty error message" % what)
        if not (err["field"] is None or isinstance(err["field"], str)):
            self.fail("%s: error field is %r, expected a string or null" % (what, err["field"]))
        if field is not None and err["field"] != field:
            self.fail("%s: error field %r, expected %r (message: %s)" % (what, err["field"], field, err["message"]))
        return doc

    def case(self, what, method, path, body=None, headers=None, want=400, field=None, auth=WK):
        """One request on a fresh connection; want is a status or a tuple of acceptable statuses."""
        self.n_cases += 1
        h = dict(auth or {})
        if body is not None:
            h.update(JSON)
        h.update(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        try:
            st, hdrs, data = mpserve.request(self.port, method, path, body=body, headers=h, timeout=10)
        except OSError as e:
            self.fail("%s: %s %s: no answer: %r" % (what, method, path, e))
            self.healthz(what)
            return None, None
        wants = want if isinstance(want, tuple) else (want,)
        doc = None
        if st not in wants:
            self.fail("%s: %s %s answered %d, expected %s; body: %r" % (what, method, path[:120], st, want, data[:300]))
        elif st >= 400:
            ctype = hdrs.get("content-type", "")
            if not ctype.startswith("application/json"):
                self.fail("%s: error answer with Content-Type %r, expected application/json" % (what, ctype))
            doc = self.check_error_body(what, st, data, field)
        else:
            try:
                doc = json.loads(data)
            except ValueError:
                self.fail("%s: %d body is not JSON: %r" % (what, st, data[:200]))
        if st == 200 and method == "POST" and path == "/v1/events" and isinstance(doc, dict):
            self.inserted += doc.get("inserted", 0)
        self.healthz(what)
        return st, doc

    def raw(self, what, data, want=400, timeout=5.0):
        """Raw bytes on a fresh socket (requests http.client refuses to write)."""
        self.n_cases += 1
        buf = mpserve.raw_exchange(self.port, data, timeout=timeout)
        st, body = mpserve.parse_raw_response(buf)
        wants = want if isinstance(want, tuple) else (want,)
        if st not in wants:
            self.fail("%s: answered %s, expected %s; got %r" % (what, st, want, buf[:300]))
        elif st is not None and st >= 400 and body:
            self.check_error_body(what, st, body)
        self.healthz(what)
        return st


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--magpie", required=True)
    ap.add_argument("--db", required=True)
    a = ap.parse_args()
    t_start = time.monotonic()

    users = mpserve.ids_of(a.db, "users", 5)
    items = mpserve.ids_of(a.db, "items", 5)
    n_before = mpserve.store_scalar(a.db, "SELECT count(*) FROM events")
    server = mpserve.Server(a.magpie, a.db, ["--read-keys", READ_KEY, "--write-keys", WRITE_KEY, "--max-body", "4k",
                                             "--max-n", "100", "--max-batch", "50", "--idle-timeout", "1s",
                                             "--request-timeout", "3s"],
                            log_path=a.db + ".serve.log")
    try:
        server.start(timeout=60)
    except mpserve.ServeError as e:
        print("FAIL: %s" % e)
        return 1
    c = Checker(server.port)
    u0, i0 = users[0], items[0]

    # ---- positive controls: the setup works, so the failures below mean what they say ----
    st, doc = c.case("control: read key GET recommend", "GET", "/v1/recommend/%s" % q(u0), auth=RK, want=200)
    st, doc = c.case("control: X-API-Key header", "GET", "/v1/popular?n=3", auth={"X-API-Key": READ_KEY}, want=200)
    st, doc = c.case("control: write key may read", "GET", "/v1/stats", auth=WK, want=200)
    st, _, _ = mpserve.request(c.port, "GET", "/readyz")
    if st != 200:
        c.fail("/readyz without a key answered %d, expected 200" % st)

    # ---- authentication ----
    c.case("no key", "GET", "/v1/recommend/%s" % q(u0), auth=None, want=401)
    c.case("no key on a write", "POST", "/v1/events", [mpserve.event_json(u0, i0, "view", 1)], auth=None, want=401)
    c.case("wrong bearer key", "GET", "/v1/recommend/%s" % q(u0), auth={"Authorization": "Bearer nope"}, want=401)
    c.case("wrong X-API-Key", "GET", "/v1/popular", auth={"X-API-Key": "rk-tes"}, want=401)
    c.case("key prefix longer", "GET", "/v1/popular", auth={"X-API-Key": READ_KEY + "x"}, want=401)
    c.case("basic auth instead of a key", "GET", "/v1/popular", auth={"Authorization": "Basic cms6dGVzdA=="},
           want=401)
    c.case("empty bearer", "GET", "/v1/popular", auth={"Authorization": "Bearer "}, want=401)
    c.case("metrics without a key", "GET", "/metrics", auth=None, want=401)
    c.case("read key on POST /v1/events", "POST", "/v1/events", [mpserve.event_json(u0, i0, "view", 1)], auth=RK,
           want=403)
    c.case("read key on DELETE /v1/users", "DELETE", "/v1/users/%s" % q(u0), auth=RK, want=403)
    c.case("read key on DELETE /v1/items", "DELETE", "/v1/items/%s" % q(i0), auth=RK, want=403)
    c.case("read key on PUT /v1/items/{id}", "PUT", "/v1/items/%s" % q(i0), {"title": "x"}, auth=RK, want=403)
    c.case("read key on POST /v1/users", "POST", "/v1/users", [{"id": "zz"}], auth=RK, want=403)
    c.case("read key on admin reload", "POST", "/v1/admin/reload", auth=RK, want=403)

    # ---- malformed JSON and wrong body shapes (400) ----
    for what, body in [("truncated array", '[{"user":"u1"'), ("empty body", ""), ("bare number", "42"),
                       ("misspelt null", "nul"), ("trailing garbage", "[] x"), ("events not an array", '{"events": 5}'),
                       ("single quotes", "[{'user': 'u1'}]"),
                       ("NUL byte", '[{"user":"u\x00"}]'), ("deep nesting", "[" * 10000 + "]" * 10000),
                       ("lone surrogate escape", '[{"user":"\\ud800","item":"a","type":"view","ts":1}]')]:
        want = (400, 422) if what in ("lone surrogate escape", "NUL byte") else 400
        if what == "deep nesting":
            want = (400, 413)  # 20000 bytes exceed max_body 4k: either answer is right
        c.case("POST /v1/events: " + what, "POST", "/v1/events", body, want=want)
    # an object that is not {"events": [...]} is one record: its unknown field makes it invalid
    c.case("POST /v1/events: unknown wrapper key", "POST", "/v1/events", '{"evnts": []}', want=422, field="evnts")
    c.case("POST /v1/items: truncated", "POST", "/v1/items", '{"items": [', want=400)
    c.case("POST /v1/users: not JSON", "POST", "/v1/users", "hello", want=400)
    c.case("POST /v1/recommend: truncated", "POST", "/v1/recommend", "{", want=400, auth=RK)
    c.case("POST /v1/recommend: items not an array", "POST", "/v1/recommend", {"items": "sku-1"}, want=400,
           field="items", auth=RK)
    c.case("POST /v1/recommend: n a string", "POST", "/v1/recommend", {"items": [i0], "n": "ten"}, want=400,
           field="n", auth=RK)
    c.case("POST /v1/recommend: n 0", "POST", "/v1/recommend", {"items": [i0], "n": 0}, want=400, field="n", auth=RK)
    c.case("POST /v1/recommend: n too large", "POST", "/v1/recommend", {"items": [i0], "n": 5000}, want=400,
           field="n", auth=RK)
    c.case("POST /v1/recommend: negative offset", "POST", "/v1/recommend", {"items": [i0], "offset": -1}, want=400,
           field="offset", auth=RK)
    c.case("POST /v1/recommend: explain a string", "POST", "/v1/recommend", {"items": [i0], "explain": "yes"},
           want=400, field="explain", auth=RK)
    c.case("POST /v1/recommend: unknown field", "POST", "/v1/recommend", {"items": [i0], "nn": 3}, want=400,
           auth=RK)
    c.case("POST /v1/recommend: items hold a number", "POST", "/v1/recommend", {"items": [5]}, want=(400, 200),
           auth=RK)
    c.case("POST /v1/recommend: body an array", "POST", "/v1/recommend", [i0], want=400, auth=RK)

    # ---- invalid records (422, all or nothing) ----
    good = mpserve.event_json(u0, i0, "purchase", 1735689601)
    for what, ev, field in [("ts not a time", dict(good, ts="yesterday"), "ts"),
                            ("ts an object", dict(good, ts={"s": 1}), "ts"),
                            ("user an array", dict(good, user=["a"]), "user"),
                            ("user empty", dict(good, user=""), "user"),
                            ("user too long", dict(good, user="u" * 300), "user"),
                            ("unknown type", dict(good, type="teleport"), "type"),
                            ("value a string", dict(good, value="five"), "value"),
                            ("missing item", {k: v for k, v in good.items() if k != "item"}, "item"),
                            ("unknown field", dict(good, colour="red"), None)]:
        st, doc = c.case("POST /v1/events: " + what, "POST", "/v1/events", [good, ev], want=422, field=field)
        if doc is not None:
            errs = doc.get("errors")
            if not isinstance(errs, list) or not errs or errs[0].get("index") != 1:
                c.fail("POST /v1/events: %s: 422 without \"errors\": [{\"index\": 1, ...}]: %s" % (what, doc))
    c.case("POST /v1/items: price a string", "POST", "/v1/items", [{"id": "bad-item", "price": "cheap"}], want=422,
           field="price")
    c.case("POST /v1/items: id missing", "POST", "/v1/items", [{"title": "no id"}], want=422, field="id")
    c.case("POST /v1/users: attrs a number", "POST", "/v1/users", [{"id": "bad-user", "attrs": 5}], want=422,
           field="attrs")
    c.case("POST /v1/events: JSON Lines, bad second line", "POST", "/v1/events",
           json.dumps(good) + "\n" + '{"user":"u1","item":"x","type":"view","ts":"soon"}\n',
           headers={"Content-Type": "application/x-ndjson"}, want=422, field="ts")
    if mpserve.store_scalar(a.db, "SELECT count(*) FROM events") != n_before:
        c.fail("a rejected batch wrote events (all-or-nothing broken)")

    # ---- unsupported media type ----
    # (text/plain and form-urlencoded are let through on purpose: what `curl -d` sends)
    for ctype in ("application/xml", "text/csv", "multipart/form-data; boundary=x"):
        c.case("POST /v1/events as " + ctype, "POST", "/v1/events", json.dumps([good]),
               headers={"Content-Type": ctype}, want=415)

    # ---- unknown ids and routes (404) ----
    c.case("unknown user", "GET", "/v1/recommend/nobody-here", auth=RK, want=404)
    c.case("unknown item (similar)", "GET", "/v1/similar/no-such-sku", auth=RK, want=404)
    c.case("unknown user (history)", "GET", "/v1/users/nobody-here/history", auth=RK, want=404)
    c.case("delete unknown user", "DELETE", "/v1/users/nobody-here", want=404)
    c.case("delete unknown item", "DELETE", "/v1/items/no-such-sku", want=404)
    c.case("unknown route", "GET", "/v1/nothing", auth=RK, want=404)
    c.case("unknown version", "GET", "/v2/recommend/%s" % q(u0), auth=RK, want=404)
    c.case("unknown top-level path", "GET", "/etc/passwd", auth=None, want=404)

    # ---- wrong methods (405) ----
    for m, p in [("PUT", "/v1/recommend/%s" % q(u0)), ("DELETE", "/v1/events"), ("GET", "/v1/events"),
                 ("PATCH", "/v1/items"), ("POST", "/v1/similar/%s" % q(i0)), ("DELETE", "/v1/popular"),
                 ("PUT", "/v1/stats"), ("GET", "/v1/admin/reload"), ("GET", "/v1/recommend"),
                 ("BREW", "/v1/stats")]:
        c.case("method %s %s" % (m, p), m, p, want=405)
    c.case("method POST /healthz", "POST", "/healthz", auth=None, want=405)

    # ---- n, offset and other query parameters (400) ----
    base = "/v1/recommend/%s" % q(u0)
    for qs, field in [("n=0", "n"), ("n=101", "n"), ("n=-1", "n"), ("n=abc", "n"), ("n=1.5", "n"), ("n=", "n"),
                      ("n=99999999999999999999999999", "n"), ("n=10abc", "n"), ("n=%2B5x", "n"),
                      ("offset=-1", "offset"), ("offset=abc", "offset"), ("offset=99999999999999999999999", "offset"),
                      ("explain=maybe", "explain"), ("exclude=%FF", "exclude"), ("category=%FF%FE", "category")]:
        c.case("GET recommend ?" + qs, "GET", base + "?" + qs, auth=RK, want=400, field=field)
    c.case("GET similar n=0", "GET", "/v1/similar/%s?n=0" % q(i0), auth=RK, want=400, field="n")
    c.case("GET popular n huge", "GET", "/v1/popular?n=100000000000", auth=RK, want=400, field="n")
    c.case("GET popular offset negative", "GET", "/v1/popular?offset=-5", auth=RK, want=400, field="offset")
    c.case("GET history n=-5", "GET", "/v1/users/%s/history?n=-5" % q(u0), auth=RK, want=400, field="n")
    c.case("GET recommend unknown parameter", "GET", base + "?nn=5", auth=RK, want=400, field="nn")
    c.case("GET recommend unknown category", "GET", base + "?category=No%20Such%20Thing", auth=RK, want=(200, 400, 404))

    # ---- oversized bodies (413) ----
    big = [mpserve.event_json("big-user", "big-item-%d" % k, "view", 1735689600 + k) for k in range(100)]
    c.case("body over max_body", "POST", "/v1/events", big, want=413)
    c.case("batch over max_batch (51 records)", "POST", "/v1/events",
           [{"user": "b", "item": "i%d" % k, "type": "view", "ts": k + 1} for k in range(51)], want=413)
    # announced too big: 413 at once, without waiting for (or reading) 100 MB
    c.raw("Content-Length of 100 MB announced",
               b"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + WRITE_KEY.encode() +
               b"\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n[", want=413)
    chunk = b"[" + b" " * 3000
    chunked = (b"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + WRITE_KEY.encode() +
               b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
               (b"%x\r\n%s\r\n" % (len(chunk), chunk)) * 3 + b"0\r\n\r\n")
    c.raw("chunked body over max_body", chunked, want=413)

    # ---- invalid UTF-8 ----
    c.case("invalid UTF-8 in a body string", "POST", "/v1/events",
           b'[{"user":"\xff\xfe","item":"a","type":"view","ts":1}]', want=(400, 422))
    c.case("invalid UTF-8 in JSON Lines", "POST", "/v1/events", b'{"user":"u\xc3","item":"a","type":"view","ts":1}\n',
           headers={"Content-Type": "application/x-ndjson"}, want=(400, 422))
    c.case("invalid UTF-8 in a path id", "GET", "/v1/recommend/%FF%FE", auth=RK, want=400)
    c.case("overlong UTF-8 slash in a path id", "GET", "/v1/similar/a%C0%AFb", auth=RK, want=400)
    c.case("invalid UTF-8 in a history id", "GET", "/v1/users/%ED%A0%80/history", auth=RK, want=400)
    c.case("id over 256 bytes", "GET", "/v1/recommend/" + "x" * 300, auth=RK, want=400)
    c.raw("raw 0xFF byte in the path",
          b"GET /v1/recommend/\xff\xfe HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + READ_KEY.encode() +
          b"\r\nConnection: close\r\n\r\n", want=400)
    c.raw("garbage request line", b"HELLO\r\n\r\n", want=(400, None))

    # ---- path traversal and SQL injection as ids: plain ids ----
    for p in ["/v1/recommend/..%2F..%2Fetc%2Fpasswd", "/v1/recommend/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
              "/v1/users/..%2F..%2Fetc%2Fpasswd/history", "/v1/similar/..%5C..%5Cwindows"]:
        # an id holding '/' is refused (400) or unknown (404); '\' is an ordinary character
        st, _ = c.case("traversal " + p, "GET", p, auth=RK, want=(400, 404))
    c.case("traversal %2e%2e", "GET", "/v1/recommend/%2e%2e", auth=RK, want=404)
    c.case("traversal raw ../", "GET", "/v1/recommend/../../etc/passwd", auth=RK, want=(400, 404))
    c.case("traversal under the dashboard", "GET", "/dashboard.js/../../../../etc/passwd", auth=None,
           want=(400, 404))
    c.case("traversal %2e%2e/ at the root", "GET", "/%2e%2e/%2e%2e/etc/passwd", auth=None, want=(400, 404))
    sql_user = "u1'; DROP TABLE events;--"
    sql_item = "x' OR '1'='1"
    c.case("SQL injection as a user id", "GET", "/v1/recommend/" + q(sql_user), auth=RK, want=404)
    c.case("SQL injection as an item id", "GET", "/v1/similar/" + q(sql_item), auth=RK, want=404)
    c.case("SQL injection in a category", "GET", base + "?category=" + q("x' OR 1=1--"), auth=RK,
           want=(200, 400, 404))
    weird = [mpserve.event_json(sql_user, "../../etc/passwd", "view", 1735700001),
             mpserve.event_json(sql_user, sql_item, "purchase", 1735700002),
             mpserve.event_json("../x", "%2e%2e", "click", 1735700003),
             mpserve.event_json("\u00fcser \u2603", "..\\..\\boot.ini", "view", 1735700004)]
    st, doc = c.case("post events with hostile ids", "POST", "/v1/events", weird, want=200)
    if st == 200:
        if doc.get("inserted") != len(weird):
            c.fail("hostile ids: inserted %s, expected %d" % (doc.get("inserted"), len(weird)))
    st, doc = c.case("history of the SQL-injection user", "GET", "/v1/users/%s/history" % q(sql_user), auth=RK,
                     want=200)
    if st == 200:
        if doc.get("user") != sql_user or sorted(e.get("item") for e in doc.get("events", [])) != \
                sorted(["../../etc/passwd", sql_item]):
            c.fail("history of %r not returned verbatim: %s" % (sql_user, doc))
    st, doc = c.case("recommend for the SQL-injection user", "GET", "/v1/recommend/%s" % q(sql_user), auth=RK,
                     want=200)
    if st == 200 and doc.get("user") != sql_user:
        c.fail("recommend: user %r not returned verbatim: %r" % (sql_user, doc.get("user")))
    st, doc = c.case("similar for the traversal item", "GET", "/v1/similar/%s" % q("%2e%2e"), auth=RK, want=200)
    if st == 200 and doc.get("item") != "%2e%2e":
        c.fail("similar: item '%%2e%%2e' not returned verbatim: %r" % doc.get("item"))
    st, doc = c.case("history of a unicode user", "GET", "/v1/users/%s/history" % q("\u00fcser \u2603"), auth=RK,
                     want=200)
    stored = set(mpserve.store_events(a.db, "WHERE e.ts BETWEEN 1735700001 AND 1735700004"))
    want_rows = set((e["user"], e["item"], e["type"], e["ts"]) for e in weird)
    if stored != want_rows:
        c.fail("hostile ids not stored verbatim: store has %s" % sorted(stored))
    st, doc = c.case("PUT an item with id '..'", "PUT", "/v1/items/%2e%2e", {"title": "dots"}, want=200)
    title = mpserve.store_scalar(a.db, "SELECT title FROM items WHERE ext = ?", ("..",))
    if st == 200 and title != "dots":
        c.fail("PUT /v1/items/%%2e%%2e: the store's item '..' has title %r, expected 'dots'" % title)
    st, doc = c.case("forget the SQL-injection user", "DELETE", "/v1/users/" + q(sql_user), want=200)
    if st == 200:
        if doc.get("user") != sql_user or doc.get("deleted_events") != 2:
            c.fail("DELETE /v1/users/%s: expected {user: %r, deleted_events: 2}, got %s" % (q(sql_user), sql_user, doc))
        c.inserted -= doc.get("deleted_events", 0)
    c.case("the forgotten user is unknown", "GET", "/v1/recommend/" + q(sql_user), auth=RK, want=404)
    left = mpserve.store_scalar(a.db, "SELECT count(*) FROM events e JOIN users u ON u.id = e.user WHERE u.ext = ?",
                                (sql_user,))
    if left:
        c.fail("%d events of the forgotten user %r are still in the store" % (left, sql_user))

    # ---- idle and dribbling clients: cut off, others served meanwhile ----
    slow_clients(c)

    # ---- the store is intact ----
    integ = mpserve.store_integrity(a.db)
    if integ != "ok":
        c.fail("PRAGMA integrity_check: %s" % integ[:300])
    n_after = mpserve.store_scalar(a.db, "SELECT count(*) FROM events")
    if n_after != n_before + c.inserted:
        c.fail("the store holds %d events; expected %d before + %d inserted by requests answered 200"
               % (n_after, n_before, c.inserted))
    tables = mpserve.store_scalar(a.db, "SELECT group_concat(name) FROM (SELECT name FROM sqlite_master "
                                        "WHERE type = 'table' ORDER BY name)")
    for t in ("events", "items", "users"):
        if t not in (tables or "").split(","):
            c.fail("table %s is gone from the store (tables: %s)" % (t, tables))

    status = server.stop(timeout=30)
    log = server.stderr_text()
    if status != 0:
        c.fail("SIGTERM: exit status %s, expected 0" % status)
    for bad in ("LeakSanitizer", "runtime error", "AddressSanitizer"):
        if bad in log:
            c.fail("server stderr contains %r" % bad)
    if c.failures:
        print("--- server stderr (tail) ---")
        print(log[-3000:])
    print("bad_requests: %d cases in %.1f s, %d failures" % (c.n_cases, time.monotonic() - t_start, len(c.failures)))
    return 1 if c.failures else 0


def slow_clients(c):
    """An idle client and dribbling clients must be cut off (idle_timeout 1 s, request_timeout 3 s) while other
    clients keep being answered quickly."""
    def cut_after(sock, send_more=None, limit=10.0):
        """Seconds until the server closed sock (or answered and closed), None if it stayed open past limit.
        send_more() is called every 0.2 s (a dribble) until then."""
        t0 = time.monotonic()
        sock.settimeout(0.2)
        while time.monotonic() - t0 < limit:
            try:
                b = sock.recv(4096)
                if not b:
                    return time.monotonic() - t0
                # an answer (say 408 or 503): it must close the connection after it; keep reading
                continue
            except socket.timeout:
                pass
            except OSError:
                return time.monotonic() - t0
            if send_more is not None:
                try:
                    send_more()
                except OSError:
                    return time.monotonic() - t0
        return None

    results = {}

    def idle():
        s = socket.create_connection(("127.0.0.1", c.port))
        s.sendall(b"GET /v1/stats HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        results["idle"] = cut_after(s)
        s.close()

    def dribble(name, n_bytes):
        s = socket.create_connection(("127.0.0.1", c.port))
        s.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + WRITE_KEY.encode() +
                  b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n[" % n_bytes)
        results[name] = cut_after(s, lambda: s.send(b" "))
        s.close()

    def header_dribble():
        s = socket.create_connection(("127.0.0.1", c.port))
        s.sendall(b"GET /v1/stats HTTP/1.1\r\n")
        results["header-dribble"] = cut_after(s, lambda: s.send(b"X"))
        s.close()

    threads = [threading.Thread(target=idle), threading.Thread(target=header_dribble)]
    threads += [threading.Thread(target=dribble, args=("dribble-%d" % k, 2000)) for k in range(8)]
    for t in threads:
        t.start()
    # meanwhile: other clients are answered at once
    worst = 0.0
    t_end = time.monotonic() + 2.5
    n = 0
    while time.monotonic() < t_end:
        t0 = time.monotonic()
        try:
            st, _, _ = mpserve.request(c.port, "GET", "/v1/popular?n=5", headers=RK, timeout=5)
            if st != 200:
                c.fail("while slow clients hang on: GET /v1/popular answered %d" % st)
        except OSError as e:
            c.fail("while slow clients hang on: GET /v1/popular failed: %r" % e)
        worst = max(worst, time.monotonic() - t0)
        n += 1
        time.sleep(0.05)
    # the dribblers hang on for request_timeout (3 s): a server they block would take that long
    if worst > 1.5:
        c.fail("while slow clients hang on: a request took %.2f s (other clients must be served at once)" % worst)
    for t in threads:
        t.join(20)
    c.n_cases += len(threads)
    idle_s = results.get("idle")
    if idle_s is None or idle_s > IDLE_S + 2.0:
        c.fail("an idle connection (headers unfinished) was not closed within %.0f s after idle_timeout %.0f s "
               "(closed after: %s)" % (2.0, IDLE_S, idle_s))
    for name, v in sorted(results.items()):
        if name == "idle":
            continue
        # a dribbler is never idle for a second: only request_timeout (or an overall per-request limit) stops it
        if v is None or v > REQUEST_S + 3.0:
            c.fail("%s: a client dribbling a byte every 0.2 s was not cut off within %.0f s (request_timeout %.0f s, "
                   "idle_timeout %.0f s; closed after: %s)" % (name, REQUEST_S + 3.0, REQUEST_S, IDLE_S, v))
    print("slow clients: closed after %s s; %d other requests served meanwhile, slowest %.3f s"
          % ({k: (round(v, 2) if v is not None else None) for k, v in sorted(results.items())}, n, worst))
    c.healthz("slow clients")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""End-to-end checks of `magpie serve` (called by tests/cli/serve_realtime.sh with URL MAGPIE TMPDIR PID).

Asserts real behaviour: an event changes that user's next recommendations at once (well under 100 ms), the item
just bought is filtered, the ALS fold-in moves the scores, popularity counters move, DELETE /v1/users removes
every event from the store, model reloads (file change, SIGHUP, admin call) happen under concurrent traffic with
no failed request, keys give 401/403, /metrics and the dashboard answer."""
import http.client
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse

URL, MAGPIE, TMP, PID = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
HOST = urllib.parse.urlparse(URL)
READ, WRITE = "rkey", "wkey"


class Client:
    def __init__(self, key=WRITE):
        self.key = key
        self.conn = http.client.HTTPConnection(HOST.hostname, HOST.port, timeout=20)

    def call(self, method, path, body=None, key="default", ctype="application/json"):
        headers = {}
        k = self.key if key == "default" else key
        if k:
            headers["X-API-Key"] = k
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = ctype
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if attempt:
                    raise
                self.conn.close()
                self.conn = http.client.HTTPConnection(HOST.hostname, HOST.port, timeout=20)
        ctype_out = resp.getheader("Content-Type", "")
        doc = json.loads(raw) if ctype_out.startswith("application/json") else raw.decode()
        return resp.status, doc


def check(cond, what):
    if not cond:
        print("FAIL:", what, file=sys.stderr)
        sys.exit(1)


c = Client()
db = os.path.join(TMP, "shop.db")

# --- health, readiness, auth ---
check(c.call("GET", "/healthz", key=None)[0] == 200, "healthz")
st, doc = c.call("GET", "/readyz", key=None)
check(st == 200 and doc["model_version"] == 1, f"readyz {st} {doc}")
st, doc = c.call("GET", "/v1/stats", key=None)
check(st == 401 and doc["error"]["code"] == "unauthorized", f"no key -> 401, got {st} {doc}")
st, doc = c.call("GET", "/v1/stats", key="nope")
check(st == 401, "wrong key -> 401")
st, doc = c.call("POST", "/v1/events", [{"user": "x", "item": "y", "type": "view", "ts": 1}], key=READ)
check(st == 403 and doc["error"]["code"] == "forbidden", f"read key on a write -> 403, got {st}")
st, stats = c.call("GET", "/v1/stats", key=READ)
check(st == 200 and stats["users"] >= 300 and stats["events"] > 0, f"stats {stats}")

# --- a user with history, recommendations with reasons ---
con = sqlite3.connect(db)
candidates = [r[0] for r in con.execute("SELECT ext FROM users ORDER BY id LIMIT 20")]
con.close()
user, st, hist = None, None, None
for uid in candidates:
    st, hist = c.call("GET", f"/v1/users/{uid}/history?n=500")
    if st == 200 and hist["total"] >= 3:
        user = uid
        break
check(user is not None, f"a demo user with history (last answer {st} {hist})")
st, rec = c.call("GET", f"/v1/recommend/{user}?n=10&explain=1", key=READ)
check(st == 200 and len(rec["items"]) == 10, f"recommend {st} {rec}")
check(rec["model"] == "als" and rec["model_version"] == 1 and not rec["fallback"], f"model fields {rec}")
check(all(it["reason"] for it in rec["items"]), "every item has a reason")
seen = {e["item"] for e in hist["events"]}
check(not (seen & {it["item"] for it in rec["items"]}), "history items are not recommended")

# --- real time: buy the top item; the very next call must not show it, and scores move (fold-in) ---
top = rec["items"][0]["item"]
before = {it["item"]: it["score"] for it in rec["items"]}
ts = int(time.time())
t0 = time.perf_counter()
st, ack = c.call("POST", "/v1/events", [{"user": user, "item": top, "type": "purchase", "ts": ts}])
check(st == 200 and ack["inserted"] == 1, f"event ack {st} {ack}")
st, rec2 = c.call("GET", f"/v1/recommend/{user}?n=10", key=READ)
elapsed_ms = (time.perf_counter() - t0) * 1000
check(st == 200 and top not in {it["item"] for it in rec2["items"]}, "bought item filtered at once")
check(elapsed_ms < 100, f"event -> changed recommendations took {elapsed_ms:.1f} ms (>= 100)")
after = {it["item"]: it["score"] for it in rec2["items"]}
common = set(before) & set(after)
check(any(abs(before[i] - after[i]) > 1e-6 for i in common) or set(after) != set(before) - {top},
      "ALS fold-in changed the user's scores")
print(f"event -> new recommendations: {elapsed_ms:.2f} ms")

# duplicates: the same event again is acknowledged and not doubled
st, ack = c.call("POST", "/v1/events", [{"user": user, "item": top, "type": "purchase", "ts": ts}])
check(st == 200 and ack["inserted"] == 0 and ack["duplicates"] == 1, f"duplicate {ack}")

# --- popularity counters move with events ---
st, pop = c.call("GET", "/v1/popular?n=50", key=READ)
check(st == 200 and pop["items"], "popular")
target = pop["items"][-1]["item"]
events = [{"user": f"rt-{i}", "item": target, "type": "purchase", "ts": ts + i} for i in range(200)]
st, ack = c.call("POST", "/v1/events", events)
check(st == 200 and ack["inserted"] == 200 and ack["new_users"] == 200, f"batch {ack}")
st, pop2 = c.call("GET", "/v1/popular?n=1", key=READ)
check(pop2["items"][0]["item"] == target, f"popular counters updated: {pop2['items'][:1]} vs {target}")

# --- anonymous session, similar, unknowns ---
st, ses = c.call("POST", "/v1/recommend", {"items": [top, "no-such-item"], "n": 5, "explain": True}, key=READ)
check(st == 200 and len(ses["items"]) == 5 and ses["unknown_items"] == 1 and ses["user"] is None, f"session {ses}")
check(top not in {it["item"] for it in ses["items"]}, "session items are not recommended back")
st, sim = c.call("GET", f"/v1/similar/{urllib.parse.quote(top)}?n=5", key=READ)
check(st == 200 and len(sim["items"]) == 5 and top not in {i["item"] for i in sim["items"]}, f"similar {sim}")
st, doc = c.call("GET", "/v1/recommend/nobody-knows-me", key=READ)
check(st == 404 and doc["error"]["code"] == "not_found" and doc["error"]["field"] == "user", f"unknown user {doc}")

# --- item unavailable: never recommended ---
st, rec3 = c.call("GET", f"/v1/recommend/{user}?n=1", key=READ)
gone = rec3["items"][0]["item"]
st, doc = c.call("DELETE", f"/v1/items/{urllib.parse.quote(gone)}")
check(st == 200 and doc["available"] is False, f"delete item {doc}")
st, rec4 = c.call("GET", f"/v1/recommend/{user}?n=50", key=READ)
check(gone not in {it["item"] for it in rec4["items"]}, "unavailable item not recommended")

# --- the right to be forgotten ---
victim = "rt-7"
con = sqlite3.connect(db)
victim_id = con.execute("SELECT id FROM users WHERE ext = ?", (victim,)).fetchone()[0]
check(con.execute("SELECT COUNT(*) FROM events WHERE user = ?", (victim_id,)).fetchone()[0] == 1, "victim stored")
con.close()
st, doc = c.call("DELETE", f"/v1/users/{victim}")
check(st == 200 and doc["deleted_events"] == 1, f"forget {doc}")
st, doc = c.call("GET", f"/v1/users/{victim}/history", key=READ)
check(st == 404, "forgotten user is unknown")
con = sqlite3.connect(db)
n_left = con.execute("SELECT COUNT(*) FROM users WHERE ext = ?", (victim,)).fetchone()[0]
ev_left = con.execute("SELECT COUNT(*) FROM events WHERE user = ?", (victim_id,)).fetchone()[0]
con.close()
check(ev_left == 0, "the forgotten user's events are gone from the store")
check(n_left == 0, "the external id is gone from the store")

# --- reloads under traffic: no failed request ---
failures, calls, versions = [], [0], set()
stop = threading.Event()


def reader():
    cl = Client(READ)
    while not stop.is_set():
        st, d = cl.call("GET", f"/v1/recommend/{user}?n=10")
        calls[0] += 1
        if st != 200 or len(d.get("items", [])) != 10:
            failures.append((st, d))
        else:
            versions.add(d["model_version"])


threads = [threading.Thread(target=reader) for _ in range(3)]
for t in threads:
    t.start()
time.sleep(0.3)
# 1. a new model file (the watcher polls every 200 ms)
subprocess.run([MAGPIE, "train", "--db", db, "--model", "als", "--param", "factors=16,iterations=3",
                "--out", os.path.join(TMP, "als.mpm"), "--quiet"], check=True)
deadline = time.time() + 10
while time.time() < deadline:
    if c.call("GET", "/v1/model", key=READ)[1]["version"] >= 2:
        break
    time.sleep(0.1)
check(c.call("GET", "/v1/model", key=READ)[1]["version"] >= 2, "model file change reloaded")
# 2. admin call
st, doc = c.call("POST", "/v1/admin/reload")
check(st == 200 and doc["model"]["version"] >= 3, f"admin reload {doc}")
# 3. SIGHUP
v = doc["model"]["version"]
os.kill(PID, signal.SIGHUP)
deadline = time.time() + 10
while time.time() < deadline and c.call("GET", "/v1/model", key=READ)[1]["version"] <= v:
    time.sleep(0.1)
check(c.call("GET", "/v1/model", key=READ)[1]["version"] == v + 1, "SIGHUP reloaded")
time.sleep(0.3)
stop.set()
for t in threads:
    t.join()
check(not failures, f"{len(failures)} failed requests during reloads, first {failures[:1]}")
check(calls[0] > 20 and len(versions) >= 2, f"traffic across versions: {calls[0]} calls, versions {versions}")
st, model = c.call("GET", "/v1/model", key=READ)
check(model["meta"] and "metrics" in model["meta"], f"model meta {model}")
print(f"reloads under traffic: {calls[0]} requests, versions {sorted(versions)}, 0 failed")

# --- metrics and dashboard ---
st, text = c.call("GET", "/metrics", key=READ)
check(st == 200 and 'magpie_http_requests_total{endpoint="GET /v1/recommend/{user}"' in text, "metrics requests")
check("magpie_http_request_duration_seconds_bucket" in text and "magpie_model_version" in text, "metrics families")
st, page = c.call("GET", "/", key=None)
check(st == 200 and "<html" in page.lower(), "dashboard page")
print("ok")

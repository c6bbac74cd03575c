"""tests/serve/mixed.py: concurrent event ingestion and recommendation requests against `magpie serve`.

Writer threads post batches of new events (each with a unique ts >= TS_BASE) for users they own; reader threads ask
GET /v1/recommend/{user} for those users. Checked while it runs:
  - every request answers 200 (writes with accepted == inserted == batch size, as every posted event is new);
  - no recommendation contains an item the user was acknowledged to have interacted with before the request was
    sent (the store history of the user, plus every event acknowledged by then): seen-item filtering is at once;
  - writers also post items the user was just recommended and ask again at once: those items must be gone;
  - a user created by an acknowledged event is known at once (recommend answers 200, not 404).
Checked afterwards in the store (sqlite3, beside the running server: WAL readers do not block it):
  - the events with ts >= TS_BASE are exactly the acknowledged ones (count and set) and the total is the count
    before plus the acknowledged ones.

Starts the server itself (--magpie, --serve-arg) or uses a running one (--port). Prints a summary line and, with
--json-out, a JSON summary. Exit 0 when everything held.
"""
import argparse
import json
import os
import random
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mpserve  # noqa: E402

TS_BASE = 1760000000  # 2025-10-09: after the demo store's events, before the clock (live events may not be in the future)
WRITE_TYPES = ["view", "click", "cart", "purchase"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--magpie")
    ap.add_argument("--port", type=int)
    ap.add_argument("--serve-arg", action="append", default=[])
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--writers", type=int, default=2)
    ap.add_argument("--readers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--users-per-writer", type=int, default=40)
    ap.add_argument("--n", type=int, default=20, help="items per recommendation asked by readers")
    ap.add_argument("--api-key", default=None)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--json-out")
    ap.add_argument("--no-store-check", action="store_true")
    ap.add_argument("--ready-file", help="created once set up, just before the timed run starts")
    a = ap.parse_args()
    rng = random.Random(a.seed)

    server = None
    if a.port is None:
        if not a.magpie:
            print("FAIL: give --port of a running server or --magpie to start one")
            return 2
        server = mpserve.Server(a.magpie, a.db, a.serve_arg, log_path=a.db + ".serve.log")
        server.start(timeout=300)
        port = server.port
    else:
        port = a.port
    headers = {"Authorization": "Bearer " + a.api_key} if a.api_key else {}

    # Users the writers own (disjoint) and items to post: known ones, picked at random (users with a history in
    # the store, so readers check the store history too).
    all_users = mpserve.ids_of(a.db, "users")
    items = mpserve.ids_of(a.db, "items")
    rng.shuffle(all_users)
    need = a.writers * a.users_per_writer
    if len(all_users) < need or not items:
        print("FAIL: the store has %d users (need %d) and %d items" % (len(all_users), need, len(items)))
        return 2
    owned = [all_users[w * a.users_per_writer:(w + 1) * a.users_per_writer] for w in range(a.writers)]
    watched = [u for us in owned for u in us]
    seen = {u: set() for u in watched}  # acknowledged items per user (store history + acked events)
    if watched:
        hist = history_of(a.db, watched)
        for u in watched:
            seen[u] |= hist.get(u, set())
    lock = threading.Lock()
    before_total = None if a.no_store_check else mpserve.store_scalar(a.db, "SELECT count(*) FROM events")
    before_posted = None if a.no_store_check else \
        mpserve.store_scalar(a.db, "SELECT count(*) FROM events WHERE ts >= ?", (TS_BASE,))

    if not a.no_store_check:
        # continue after the posts of an earlier run on the same store (each posted ts must be new)
        top = mpserve.store_scalar(a.db, "SELECT max(ts) FROM events")
        if top is not None and top >= TS_BASE:
            ts_counter_start = top - TS_BASE
        else:
            ts_counter_start = 0
    else:
        ts_counter_start = rng.randrange(1, 1 << 30)

    stats = {"writes": 0, "write_events": 0, "reads": 0, "recheck": 0, "new_users": 0, "write_s": 0.0,
             "read_s": 0.0}
    acked = []
    failures = []
    ts_counter = [ts_counter_start]

    def fail(msg):
        with lock:
            failures.append(msg)

    def next_ts():
        with lock:
            ts_counter[0] += 1
            return TS_BASE + ts_counter[0]

    def recommend(client, user, n):
        t0 = time.monotonic()
        st, res = client.json("GET", "/v1/recommend/%s?n=%d" % (mpserve.quote_id(user), n))
        dt = time.monotonic() - t0
        return st, res, dt

    def check_recs(where, user, st, res, must_not):
        if st != 200:
            fail("%s: GET /v1/recommend/%s: status %d %s" % (where, user, st, str(res)[:300]))
            return None
        got = [it.get("item") for it in (res or {}).get("items", [])]
        bad = [i for i in got if i in must_not]
        if bad:
            fail("%s: recommendations for %s contain items acknowledged as seen before the request: %s"
                 % (where, user, bad[:5]))
        return got

    def writer(w):
        wr = random.Random(a.seed * 31 + w)
        client = mpserve.Client(port, timeout=60, headers=headers)
        mine = owned[w]
        new_k = 0
        try:
            while time.monotonic() < deadline and not failures:
                user = wr.choice(mine)
                probe = []
                if wr.random() < 0.5:
                    st, res, dt = recommend(client, user, 10)
                    with lock:
                        stats["reads"] += 1
                        stats["read_s"] += dt
                        must_not = set(seen[user])
                    got = check_recs("writer %d" % w, user, st, res, must_not)
                    if got:
                        probe = wr.sample(got, min(2, len(got)))
                batch = []
                for it in probe:
                    batch.append(mpserve.event_json(user, it, wr.choice(WRITE_TYPES), next_ts()))
                new_user = None
                if wr.random() < 0.05:
                    new_k += 1
                    new_user = "mixed-w%d-new%d-%d" % (w, new_k, a.seed)
                    batch.append(mpserve.event_json(new_user, wr.choice(items), "view", next_ts()))
                while len(batch) < a.batch:
                    u = user if wr.random() < 0.5 else wr.choice(mine)
                    batch.append(mpserve.event_json(u, wr.choice(items), wr.choice(WRITE_TYPES), next_ts()))
                t0 = time.monotonic()
                st, res = client.json("POST", "/v1/events", batch)
                dt = time.monotonic() - t0
                if st != 200 or not isinstance(res, dict) or res.get("accepted") != len(batch) or \
                        res.get("inserted") != len(batch):
                    fail("writer %d: POST /v1/events of %d new events: status %d %s"
                         % (w, len(batch), st, str(res)[:300]))
                    return
                with lock:
                    for e in batch:
                        acked.append((e["user"], e["item"], e["type"], e["ts"]))
                        if e["user"] in seen:
                            seen[e["user"]].add(e["item"])
                    stats["writes"] += 1
                    stats["write_events"] += len(batch)
                    stats["write_s"] += dt
                    must_not = set(seen[user])
                if probe:
                    # the items just posted were recommended a moment ago: they must be gone now
                    st, res, dt = recommend(client, user, 10)
                    check_recs("writer %d (re-ask after posting %s)" % (w, probe), user, st, res, must_not)
                    with lock:
                        stats["recheck"] += 1
                if new_user is not None:
                    st, res, dt = recommend(client, new_user, 5)
                    if st != 200:
                        fail("writer %d: user %s created by an acknowledged event: recommend answered %d %s"
                             % (w, new_user, st, str(res)[:200]))
                    with lock:
                        stats["new_users"] += 1
        except Exception as e:
            fail("writer %d: %r" % (w, e))
        finally:
            client.close()

    def reader(r):
        rr = random.Random(a.seed * 17 + r)
        client = mpserve.Client(port, timeout=60, headers=headers)
        try:
            while time.monotonic() < deadline and not failures:
                user = rr.choice(watched)
                with lock:
                    must_not = set(seen[user])  # snapshot before sending
                st, res, dt = recommend(client, user, a.n)
                check_recs("reader %d" % r, user, st, res, must_not)
                with lock:
                    stats["reads"] += 1
                    stats["read_s"] += dt
        except Exception as e:
            fail("reader %d: %r" % (r, e))
        finally:
            client.close()

    deadline = time.monotonic() + a.seconds
    if a.ready_file:
        open(a.ready_file, "w").close()
    threads = [threading.Thread(target=writer, args=(w,)) for w in range(a.writers)]
    threads += [threading.Thread(target=reader, args=(r,)) for r in range(a.readers)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0

    result = {"seconds": round(elapsed, 2), "writes": stats["writes"], "acked_events": len(acked),
              "events_per_s": round(len(acked) / elapsed, 1) if elapsed > 0 else 0,
              "write_ms_avg": round(1000 * stats["write_s"] / max(1, stats["writes"]), 2),
              "reads": stats["reads"], "read_ms_avg": round(1000 * stats["read_s"] / max(1, stats["reads"]), 2),
              "rechecks": stats["recheck"], "new_users": stats["new_users"]}
    if not a.no_store_check and not failures:
        total = mpserve.store_scalar(a.db, "SELECT count(*) FROM events")
        posted = mpserve.store_events(a.db, "WHERE e.ts >= ?", (TS_BASE,))
        result.update({"store_events_before": before_total, "store_events_after": total,
                       "store_posted_events": len(posted) - before_posted})
        if total != before_total + len(acked):
            fail("the store holds %d events; expected %d before + %d acknowledged = %d"
                 % (total, before_total, len(acked), before_total + len(acked)))
        # the posted events must be exactly the acknowledged ones (this run's ts are unique: > earlier runs' only
        # if the store was fresh, so compare this run's set)
        mine = set(acked)
        got = set(e for e in posted if e in mine)
        if got != mine:
            fail("%d acknowledged events are not in the store, e.g. %s" % (len(mine - got), sorted(mine - got)[:3]))
        if len(posted) - before_posted != len(acked):
            fail("the store gained %d events with ts >= %d; %d were acknowledged"
                 % (len(posted) - before_posted, TS_BASE, len(acked)))
    result["failures"] = len(failures)
    if server is not None:
        status = server.stop()
        result["exit_status"] = status
        if status != 0:
            fail("SIGTERM: exit status %s, expected 0; stderr:\n%s" % (status, server.stderr_tail()))
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(result, f, indent=1)
    print("mixed: %s" % json.dumps(result))
    for f in failures[:20]:
        print("FAIL " + f)
    return 1 if failures else 0


def history_of(db, users):
    """{user: set of item ids} from the store's events (by internal id: the events key starts with the user)."""
    import sqlite3
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
    out = {}
    try:
        for i in range(0, len(users), 500):
            chunk = users[i:i + 500]
            ids = dict(con.execute("SELECT id, ext FROM users WHERE ext IN (%s)" % ",".join("?" * len(chunk)),
                                   chunk).fetchall())
            if not ids:
                continue
            q = ("SELECT e.user, i.ext FROM events e JOIN items i ON i.id = e.item WHERE e.user IN (%s)"
                 % ",".join("?" * len(ids)))
            for uid, it in con.execute(q, list(ids)):
                out.setdefault(ids[uid], set()).add(it)
    finally:
        con.close()
    return out


if __name__ == "__main__":
    sys.exit(main())

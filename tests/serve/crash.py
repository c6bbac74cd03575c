"""tests/serve/crash.py: kill -9 `magpie serve` while a client posts event batches; acknowledged events must survive.

Each round: start the server on the store, (sometimes) re-send the batch the previous round left unanswered,
then a client thread posts batches of new events one after another while the main thread sleeps 0.05-0.5 s and
kills the server with SIGKILL. A batch goes into the acknowledged log only after its 200 arrived. After each kill
the store is checked:
  - PRAGMA integrity_check is ok;
  - every acknowledged event is stored exactly once (rows == distinct (user, item, type, ts));
  - every stored event the test posted belongs to a batch it sent (acknowledged, or sent but unanswered);
  - an unanswered batch is in the store entirely or not at all (one transaction);
  - the events that were there before the test are untouched.
A re-sent batch must answer 200 with inserted + duplicates == its size and must not double anything. The last
round stops the server with SIGTERM and requires exit status 0.

usage: crash.py --magpie BIN --db STORE [--rounds 20] [--seed S] [--max-seconds 50]
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

TS_BASE = 1760000000  # posted events have ts >= TS_BASE (2025-10-09, in the past: live events may not be
# more than a day ahead of the clock); the demo store's events are in January-March 2025


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--magpie", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--max-seconds", type=float, default=50.0)
    ap.add_argument("--batch", type=int, default=40)
    ap.add_argument("--serve-arg", action="append", default=[])
    a = ap.parse_args()
    rng = random.Random(a.seed)
    print("crash: seed %d" % a.seed)

    users = mpserve.ids_of(a.db, "users", 200)
    items = mpserve.ids_of(a.db, "items", 300)
    before = sorted(mpserve.store_events(a.db))
    if not users or not items or not before:
        print("FAIL: the store %s has no users, items or events to start from" % a.db)
        return 1

    acked = []          # every acknowledged event tuple, in order
    unanswered = []     # batches sent that got no 200 (lists of tuples): each in the store fully or not at all
    failures = []
    counter = [0]       # next event sequence number (gives each posted event a unique ts)
    log = open(a.db + ".acked.log", "w")

    def make_batch():
        evs = []
        for _ in range(a.batch):
            k = counter[0]
            counter[0] += 1
            # new users ("crash-u*") and known users alike; a known item each time
            u = users[k % len(users)] if k % 3 else "crash-u%d" % (k % 97)
            evs.append((u, items[(k * 7) % len(items)], mpserve.EVENT_TYPES[k % 5], TS_BASE + k))
        return evs

    def post(client, batch):
        body = [mpserve.event_json(*e) for e in batch]
        return client.json("POST", "/v1/events", body)

    def check_ack(what, st, res, batch):
        if st != 200:
            return "%s: status %d %s" % (what, st, res)
        if not isinstance(res, dict) or res.get("accepted") != len(batch) or \
                res.get("inserted", -1) + res.get("duplicates", -1) != len(batch):
            return "%s: 200 but the counts do not add up to %d events: %s" % (what, len(batch), res)
        return None

    server = mpserve.Server(a.magpie, a.db, a.serve_arg, log_path=a.db + ".serve.log")
    t_start = time.monotonic()
    pending_retry = None
    rounds = 0
    kills_mid_batch = 0
    retries = 0
    retries_committed = 0
    while rounds < a.rounds or (rounds < a.rounds * 3 and kills_mid_batch < 3):
        if time.monotonic() - t_start > a.max_seconds:
            print("crash: stopping after %d rounds (time bound %.0f s)" % (rounds, a.max_seconds))
            break
        rounds += 1
        try:
            server.start(timeout=30)
        except mpserve.ServeError as e:
            print("FAIL round %d: %s" % (rounds, e))
            return 1
        client = mpserve.Client(server.port, timeout=10)

        if pending_retry is not None:
            # Retrying a batch whose answer was lost is allowed and must not double anything.
            retries += 1
            try:
                st, res = post(client, pending_retry)
                err = check_ack("round %d: re-sent batch" % rounds, st, res, pending_retry)
            except Exception as e:  # the server is up and idle: any failure here is a bug
                err = "round %d: re-sent batch: %r" % (rounds, e)
            if err:
                failures.append(err)
            else:
                if res.get("duplicates") == len(pending_retry):
                    retries_committed += 1  # the lost answer's batch had committed before the kill
                elif res.get("inserted") != len(pending_retry):
                    failures.append("round %d: re-sent batch half-committed before: %s" % (rounds, res))
                acked.extend(pending_retry)
                for e in pending_retry:
                    log.write(json.dumps(e) + "\n")
                log.flush()
                unanswered.remove(pending_retry)
            pending_retry = None

        state = {"in_flight": None, "stop": False}

        def writer():
            while not state["stop"]:
                batch = make_batch()
                state["in_flight"] = batch
                try:
                    st, res = post(client, batch)
                except Exception:
                    return  # the server died under us: the batch stays in flight, unanswered
                err = check_ack("round %d" % rounds, st, res, batch)
                if err:
                    failures.append(err)
                    return
                # acknowledged: only now does it enter the log
                acked.extend(batch)
                for e in batch:
                    log.write(json.dumps(e) + "\n")
                log.flush()
                state["in_flight"] = None

        t = threading.Thread(target=writer, daemon=True)
        t.start()
        time.sleep(rng.uniform(0.05, 0.5))
        server.kill()
        t.join(15)
        if t.is_alive():
            failures.append("round %d: the client hung after the server was killed" % rounds)
            break
        client.close()
        in_flight = state["in_flight"]
        if in_flight is not None:
            kills_mid_batch += 1
            unanswered.append(in_flight)
            if rng.random() < 0.5:
                pending_retry = in_flight

        err = verify(a.db, before, acked, unanswered)
        if err:
            failures.append("round %d: %s" % (rounds, err))
            break

    # A last clean start and stop: SIGTERM must end it with status 0.
    try:
        server.start(timeout=30)
        client = mpserve.Client(server.port, timeout=10)
        batch = make_batch()
        st, res = post(client, batch)
        err = check_ack("final batch", st, res, batch)
        if err:
            failures.append(err)
        else:
            acked.extend(batch)
        client.close()
        status = server.stop()
        if status != 0:
            failures.append("SIGTERM: exit status %s, expected 0; stderr:\n%s" % (status, server.stderr_tail()))
        err = verify(a.db, before, acked, unanswered)
        if err:
            failures.append("after the clean stop: " + err)
    except mpserve.ServeError as e:
        failures.append("final start: %s" % e)
    log.close()

    elapsed = time.monotonic() - t_start
    print("crash: %d rounds in %.1f s: %d events acknowledged, %d batches killed in flight (%d re-sent, "
          "%d of them already committed; %d unanswered batches never re-sent, %d of them committed); store checked "
          "after every kill" % (rounds, elapsed, len(acked), kills_mid_batch, retries, retries_committed,
                                len(unanswered), committed_unanswered(a.db, unanswered)))
    if rounds < 20:
        failures.append("only %d rounds ran (need 20)" % rounds)
    if kills_mid_batch < 3:
        failures.append("only %d kills hit a batch in flight (need 3 to mean anything)" % kills_mid_batch)
    if len(acked) == 0:
        failures.append("no batch was ever acknowledged")
    for f in failures[:20]:
        print("FAIL " + f)
    return 1 if failures else 0


def committed_unanswered(db, unanswered):
    stored = set(e for e in mpserve.store_events(db) if e[3] >= TS_BASE)
    return sum(1 for b in unanswered if set(b) <= stored)


def verify(db, before, acked, unanswered):
    """None when the store is as required, else a description of the first problem."""
    integ = mpserve.store_integrity(db)
    if integ != "ok":
        return "PRAGMA integrity_check: %s" % integ[:500]
    rows = mpserve.store_events(db)
    n_rows = len(rows)
    stored = set(rows)
    if len(stored) != n_rows:
        return "%d event rows but only %d distinct (user, item, type, ts): something is doubled" % (n_rows, len(stored))
    n_distinct_sql = mpserve.store_scalar(db, "SELECT count(*) FROM (SELECT DISTINCT user, item, type, ts FROM events)")
    if n_distinct_sql != n_rows:
        return "sqlite counts %d distinct keys for %d rows" % (n_distinct_sql, n_rows)
    old = sorted(e for e in rows if e[3] < TS_BASE)
    if old != before:
        return "the events stored before the test changed (%d -> %d)" % (len(before), len(old))
    posted = set(e for e in rows if e[3] >= TS_BASE)
    acked_set = set(acked)
    if len(acked_set) != len(acked):
        return "test bug: acknowledged events repeat"
    missing = acked_set - posted
    if missing:
        return "%d acknowledged events are missing from the store, e.g. %s" % (len(missing), sorted(missing)[:3])
    extra = posted - acked_set
    for batch in unanswered:
        bs = set(batch)
        inside = len(bs & extra)
        if inside not in (0, len(bs)):
            return "an unanswered batch of %d events is half in the store (%d events): not atomic" % (len(bs), inside)
        extra -= bs
    if extra:
        return "%d stored events were never sent (or belong to no batch), e.g. %s" % (len(extra), sorted(extra)[:3])
    return None


if __name__ == "__main__":
    sys.exit(main())

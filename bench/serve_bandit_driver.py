#!/usr/bin/env python3
"""Closed-loop shoppers against a running `magpie serve` with A/B variants of exploration policies
(bench/serve_bandit.sh starts the server). Standard library only.

Every item has a hidden click-through rate the server's model does not know: log-normal around BASE_CTR, so a
few items are much more clickable than the rest. A shopper's interest is what the model learns from behaviour:
items in one of the shopper's two most frequent top-level categories (from the events) are clicked at the full
rate, others at 0.3 of it. Each round a random shopper asks GET /v1/recommend/{user}?n=K, looks at the slate with
a position bias 1/(1 + position)^0.5 (the top slot 1) and clicks each shown item with probability
ctr(item) * interest(shopper, item) * bias(position); every shown item gets POST /v1/feedback with reward 1 or 0.

Prints one JSON object per variant on stdout: impressions, clicks, CTR, the expected CTR (the mean click
probability of what was shown: the same quantity without the click noise) and the CTR over the last half of the
run (after learning), from the driver's own counts (the server's /v1/abtest counts are printed by the script).
"""
import json
import math
import random
import sys
import urllib.request


def call(url, method="GET", body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def main():
    url, events_file, items_file = sys.argv[1], sys.argv[2], sys.argv[3]
    rounds, k, seed, base = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7])
    label = sys.argv[8] if len(sys.argv) > 8 else None  # reported instead of the server's variant name
    rng = random.Random(seed)
    top = {}
    for line in open(items_file):
        it = json.loads(line)
        cat = it.get("category") or ["(none)"]
        top[it["id"]] = cat[0] if isinstance(cat, list) else cat.split(" > ")[0]
    items = list(top)
    counts = {}
    for line in open(events_file):
        e = json.loads(line)
        c = counts.setdefault(e["user"], {})
        c[top.get(e["item"], "(none)")] = c.get(top.get(e["item"], "(none)"), 0) + 1
    users = sorted(counts)
    favs = {u: set(sorted(c, key=lambda x: (-c[x], x))[:2]) for u, c in counts.items()}
    # hidden CTRs: log-normal, median BASE, sigma 1 (the top 5% of items about 5x the median), capped at 0.9
    ctr = {it: min(0.9, base * math.exp(rng.gauss(0.0, 1.0))) for it in items}
    rng = random.Random(seed + 1)  # the shoppers' sequence and clicks: the same stream for every policy
    bias = [1.0 / math.sqrt(1.0 + p) for p in range(k)]
    stats = {}
    for r in range(rounds):
        u = rng.choice(users)
        rec = call("%s/v1/recommend/%s?n=%d" % (url, u, k))
        v = label or rec.get("variant", "default")
        s = stats.setdefault(v, {"variant": v, "policy": rec.get("policy"), "impressions": 0, "clicks": 0,
                                 "late_impressions": 0, "late_clicks": 0, "expected": 0.0})
        for pos, it in enumerate(rec["items"]):
            interest = 1.0 if top.get(it["item"]) in favs[u] else 0.3
            p = ctr.get(it["item"], base) * interest * bias[pos]
            click = 1 if rng.random() < p else 0
            s["impressions"] += 1
            s["clicks"] += click
            s["expected"] += p
            if r >= rounds // 2:
                s["late_impressions"] += 1
                s["late_clicks"] += click
            call(url + "/v1/feedback", "POST", {"event_id": rec["event_id"], "item": it["item"], "reward": click})
    for s in stats.values():
        s["ctr"] = s["clicks"] / max(1, s["impressions"])
        s["expected_ctr"] = s["expected"] / max(1, s["impressions"])
        s["late_ctr"] = s["late_clicks"] / max(1, s["late_impressions"])
        print(json.dumps(s))


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# magpie serve with exploration (issue 6): a per-request policy returns an event id and per-item propensities,
# POST /v1/feedback updates the policy and the per-variant counters, unknown / expired / foreign event ids and bad
# feedback get the documented errors, A/B variants are stable per user, and the serving log written by the server
# is read by `magpie ope --format jsonl`.
. "$(dirname "$0")/lib.sh"

"$MAGPIE" serve --help | grep -q -- "--ab-variants" || fail "serve --help lists ab-variants"
"$MAGPIE" gen-demo --out shop --users 200 --items 150 --seed 4 --quiet
"$MAGPIE" import items shop/items.jsonl --db shop.db --quiet
"$MAGPIE" import events shop/events.jsonl --db shop.db --quiet

# a bad config is refused at start, naming the setting and the key
if "$MAGPIE" serve --db shop.db --port 0 --bandit "egreedy:eps=1" 2>bad.err; then fail "bad bandit spec accepted"; fi
grep -q "bandit" bad.err && grep -q "eps" bad.err || fail "bad spec message: $(cat bad.err)"
if "$MAGPIE" serve --db shop.db --port 0 --ab-variants "control:x:greedy" 2>bad2.err; then fail "bad variants"; fi
grep -q "ab_variants" bad2.err || fail "bad ab_variants message: $(cat bad2.err)"

start() {
    # the previous run's log goes first: grep could otherwise see its "ready in" before the new server truncates it
    rm -f serve.err
    "$MAGPIE" serve --db shop.db --port 0 --encoder none --embed-items false "$@" 2>serve.err &
    pid=$!
    wait_ready serve.err 300
    url=$(server_url serve.err)
}
stop() {
    kill -TERM "$pid"
    wait "$pid" && rc=0 || rc=$?
    pid=""
    [ "$rc" -eq 0 ] || fail "server exit status $rc after SIGTERM"
    if grep -q -E "LeakSanitizer|runtime error|AddressSanitizer" serve.err; then fail "sanitizer report"; fi
}

start --bandit-log serving.jsonl --bandit-ttl 2s \
    --ab-variants "control:50:greedy;explore:50:softmax:tau=0.5" --ab-salt exp1
python3 - "$url" <<'EOF' || fail "bandit API checks"
import json, sys, time, urllib.request, urllib.error
url = sys.argv[1]
def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")
def check(cond, what):
    if not cond:
        print("FAIL:", what); sys.exit(1)

users = []
for line in open("shop/events.jsonl"):
    u = json.loads(line)["user"]
    if u not in users:
        users.append(u)
    if len(users) == 40:
        break
u1, u2, u3, u7, u9 = users[0], users[1], users[2], users[6], users[8]
# 1. per-request policy: event id, propensities in (0, 1], the first position's probability and the slate's
st, r = call("GET", "/v1/recommend/" + u1 + "?n=5&policy=egreedy:epsilon=0.5")
check(st == 200, "egreedy recommend: %s %s" % (st, r))
check(r.get("event_id") and r.get("policy") == "egreedy", "event_id and policy in %s" % r)
props = [it["propensity"] for it in r["items"]]
check(len(props) == 5 and all(0 < p <= 1 for p in props), "propensities %s" % props)
# egreedy with epsilon 0.5 over m candidates: the greedy item has 0.5 + 0.5/m, any other 0.5/m, so p >= 0.5/m
# and the first position's propensities are consistent with a distribution (one item <= 1, sums sensibly)
check(props[0] >= 0.5 / 15 - 1e-9, "first propensity %s" % props[0])
ev = r["event_id"]
# uniform: each position k draws among the m - k remaining candidates
st, r2 = call("GET", "/v1/recommend/" + u2 + "?n=4&policy=uniform")
check(st == 200, "uniform %s" % (r2,))
p2 = [it["propensity"] for it in r2["items"]]
m = round(1 / p2[0])
check(m >= 4 and all(abs(p2[k] - 1.0 / (m - k)) < 1e-9 for k in range(4)), "uniform propensities %s" % p2)
# greedy: deterministic, every propensity 1
st, r3 = call("GET", "/v1/recommend/" + u3 + "?n=3&policy=greedy")
check(st == 200 and all(it["propensity"] == 1 for it in r3["items"]), "greedy propensities %s" % r3)
# a bad per-request spec: 400 naming the key
st, e = call("GET", "/v1/recommend/" + u1 + "?n=5&policy=egreedy:eps=1")
check(st == 400 and e["error"]["field"] == "policy" and "eps" in e["error"]["message"], "bad policy %s %s" % (st, e))
st, e = call("POST", "/v1/recommend", {"items": [], "q": "shoes", "policy": "nosuch"})
check(st == 400 and "nosuch" in e["error"]["message"], "bad POST policy %s %s" % (st, e))

# 2. feedback
item0 = r["items"][0]["item"]
st, s0 = call("GET", "/v1/stats")
fb0 = sum(v["feedback"] for v in s0["bandit"]["variants"])
st, f = call("POST", "/v1/feedback", {"event_id": ev, "item": item0, "reward": 1})
check(st == 200 and f["accepted"] is True and f["variant"] in ("control", "explore"), "feedback %s %s" % (st, f))
st, s1 = call("GET", "/v1/stats")
check(sum(v["feedback"] for v in s1["bandit"]["variants"]) == fb0 + 1, "feedback counted")
check(sum(v["clicks"] for v in s1["bandit"]["variants"]) >= 1, "click counted")
check(sum(v["updates"] for v in s1["bandit"]["variants"]) >= 1, "policy updated")
st, e = call("POST", "/v1/feedback", {"event_id": ev, "item": item0, "reward": 1})
check(st == 409 and "already has feedback" in e["error"]["message"], "twice %s %s" % (st, e))
st, e = call("POST", "/v1/feedback", {"event_id": ev, "item": "not-shown", "reward": 1})
check(st == 422 and e["error"]["field"] == "item" and "was not in event" in e["error"]["message"], "item %s %s" % (st, e))
st, e = call("POST", "/v1/feedback", {"event_id": ev, "item": r["items"][1]["item"], "reward": "yes"})
check(st == 422 and e["error"]["field"] == "reward", "bad reward %s %s" % (st, e))
st, e = call("POST", "/v1/feedback", {"event_id": ev, "item": item0})
check(st == 400 and e["error"]["field"] == "reward", "missing reward %s %s" % (st, e))
st, e = call("POST", "/v1/feedback", {"event_id": "deadbeef-99", "item": item0, "reward": 1})
check(st == 404 and "unknown event id" in e["error"]["message"] and e["error"]["field"] == "event_id",
      "unknown id %s %s" % (st, e))
st, e = call("POST", "/v1/feedback", {"event_id": "garbage", "item": item0, "reward": 1})
check(st == 404 and "unknown event id" in e["error"]["message"], "garbage id %s %s" % (st, e))

# 3. A/B: every user keeps a variant across requests, both variants get users
seen = {}
for u in users:
    for _ in range(2):
        st, x = call("GET", "/v1/recommend/%s?n=3" % u)
        check(st == 200 and x["event_id"], "recommend %s" % u)
        check(seen.setdefault(u, x["variant"]) == x["variant"], "variant of %s changed" % u)
        # the variant's own policy when the request names none
        check(x["policy"] == ("greedy" if x["variant"] == "control" else "softmax"), "policy of variant %s" % x)
check(set(seen.values()) == {"control", "explore"}, "both variants used: %s" % set(seen.values()))
# answer some lists so the log has rewards
st, x = call("GET", "/v1/recommend/" + u7 + "?n=3")
call("POST", "/v1/feedback", {"event_id": x["event_id"], "item": x["items"][2]["item"], "reward": 1})
st, s2 = call("GET", "/v1/stats")
for v in s2["bandit"]["variants"]:
    check(v["requests"] >= 1 and v["impressions"] >= v["requests"], "variant counters %s" % v)
with urllib.request.urlopen(url + "/metrics") as mr:
    met = mr.read().decode()
check('magpie_ab_impressions_total{variant="control"}' in met and "magpie_ab_clicks_total" in met, "metrics")

# 4. expiry: ttl 2 s
st, x = call("GET", "/v1/recommend/" + u9 + "?n=2&policy=uniform")
time.sleep(2.5)
st, e = call("POST", "/v1/feedback", {"event_id": x["event_id"], "item": x["items"][0]["item"], "reward": 1})
check(st == 404 and "expired" in e["error"]["message"], "expired %s %s" % (st, e))
print("bandit API ok")
EOF
stop

# the serving log: one line per impression, read by magpie ope
[ -s serving.jsonl ] || fail "no serving log"
lines=$(wc -l <serving.jsonl)
[ "$lines" -ge 100 ] || fail "serving log has only $lines lines"
grep -q '"reward":1' serving.jsonl || fail "serving log has no rewarded line"
"$MAGPIE" ope --log serving.jsonl --format jsonl --policy uniform --bootstrap 50 >ope.out 2>ope.err ||
    fail "magpie ope on the serving log: $(cat ope.err)"
grep -qi "snips" ope.out || fail "ope output: $(cat ope.out)"

# default config (greedy, no log, no variants): today's response shape, no event id
start
python3 - "$url" <<'EOF' || fail "default shape"
import json, sys, urllib.request
u1 = json.loads(open("shop/events.jsonl").readline())["user"]
r = json.loads(urllib.request.urlopen(sys.argv[1] + "/v1/recommend/" + u1 + "?n=3").read())
assert "event_id" not in r and all("propensity" not in it for it in r["items"]), r
r = json.loads(urllib.request.urlopen(sys.argv[1] + "/v1/recommend/" + u1 + "?n=3&policy=greedy").read())
assert r["event_id"] and all(it["propensity"] == 1 for it in r["items"]), r
EOF
stop

# shopper protection: with a cap of one impression per item, a user's lists never repeat an item
start --item-cap 1
python3 - "$url" <<'EOF' || fail "item cap"
import json, sys, urllib.request
u1 = json.loads(open("shop/events.jsonl").readline())["user"]
shown = []
for _ in range(3):
    r = json.loads(urllib.request.urlopen(sys.argv[1] + "/v1/recommend/" + u1 + "?n=3").read())
    assert r["event_id"] and len(r["items"]) == 3, r
    shown += [it["item"] for it in r["items"]]
assert len(set(shown)) == 9, shown
s = json.loads(urllib.request.urlopen(sys.argv[1] + "/v1/stats").read())
assert s["bandit"]["protection"] is True and s["bandit"]["shoppers"] == 1, s["bandit"]
EOF
stop
"$MAGPIE" train --model als --out shop.model --db shop.db --param factors=8,iterations=4 --quiet

# novelty uses the live popularity: with a strong boost the served items are less popular than without (before
# any event is posted: a new event would decay the generated events' popularity)
novelty_pop() {
    python3 - "$url" <<'EOF'
import json, sys, urllib.request
url = sys.argv[1]
pop = {it["item"]: it["score"] for it in json.loads(urllib.request.urlopen(url + "/v1/popular?n=150").read())["items"]}
users = []
for line in open("shop/events.jsonl"):
    u = json.loads(line)["user"]
    if u not in users:
        users.append(u)
    if len(users) == 20:
        break
total = n = 0
for u in users:
    r = json.loads(urllib.request.urlopen(url + "/v1/recommend/%s?n=5&policy=greedy" % u).read())
    for it in r["items"]:
        total += pop.get(it["item"], 0.0)
        n += 1
print("%.6f" % (total / n))
EOF
}
start --model shop.model
plain=$(novelty_pop) || fail "novelty baseline"
stop
start --model shop.model --novelty-weight 50
boosted=$(novelty_pop) || fail "novelty boosted"
stop
python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(0 if b < 0.8 * a else 1)" "$plain" "$boosted" ||
    fail "novelty boost did not lower the served items' popularity ($plain -> $boosted)"
# LinUCB over the model's item factors, a price-range rule, A/B conversion counts and the learned policy kept
# across a restart (bandit_state)
start --model shop.model --bandit-state state --price-max 60 \
    --ab-variants "a:1:linucb:alpha=0.5,intercept=1;b:1:egreedy:epsilon=0.2,intercept=1" --ab-salt s2
python3 - "$url" <<'EOF' || fail "features, price rule, abtest"
import json, sys, urllib.request, urllib.error
url = sys.argv[1]
def get(path):
    try:
        with urllib.request.urlopen(url + path, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
def post(path, body):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())
price = {}
for line in open("shop/items.jsonl"):
    it = json.loads(line)
    price[it["id"]] = it.get("price")
users = []
for line in open("shop/events.jsonl"):
    u = json.loads(line)["user"]
    if u not in users:
        users.append(u)
    if len(users) == 30:
        break
st, s = get("/v1/stats")
b = json.loads(s)["bandit"]
assert b["features"] == "model" and b["dim"] == 8, b
# the config's price rule, then a request's tighter one, then an empty range refused
for i, u in enumerate(users):
    st, r = get("/v1/recommend/%s?n=5" % u)
    r = json.loads(r)
    assert st == 200 and r["items"], r
    assert all(price[it["item"]] is not None and price[it["item"]] <= 60 for it in r["items"]), r["items"]
    if i % 3 == 0:  # feedback on the first item of every third user: conversions in their variant
        post("/v1/feedback", {"event_id": r["event_id"], "item": r["items"][0]["item"], "reward": 1})
st, r = get("/v1/recommend/%s?n=5&price_min=20&price_max=40" % users[0])
r = json.loads(r)
assert st == 200 and all(20 <= price[it["item"]] <= 40 for it in r["items"]), r
r = post("/v1/recommend", {"items": [], "q": "shoes", "price_max": 30, "n": 3})
assert all(price[it["item"]] <= 30 for it in r["items"]), r
st, e = get("/v1/recommend/%s?price_min=50&price_max=10" % users[0])
assert st == 400 and "price_min" in e, (st, e)
st, e = get("/v1/recommend/%s?price_max=cheap" % users[0])
assert st == 400 and "price_max" in e, (st, e)
try:
    post("/v1/recommend", {"items": [], "q": "shoes", "price_min": 50, "price_max": 10})
    assert False, "an empty POST price range was accepted"
except urllib.error.HTTPError as ex:
    assert ex.code == 400 and "price_min" in ex.read().decode(), ex.code
# a purchase event by a served user who did not click counts for their variant
req = urllib.request.Request(url + "/v1/events", method="POST", headers={"Content-Type": "application/json"},
                             data=json.dumps([{"user": users[1], "item": r["items"][0]["item"] if r["items"] else "x",
                                               "type": "purchase"}]).encode())
urllib.request.urlopen(req, timeout=10).read()
st, a = get("/v1/abtest")
a = json.loads(a)
v = {x["name"]: x for x in a["variants"]}
assert v["a"]["users"] + v["b"]["users"] == 30, a
assert v["a"]["converted_users"] + v["b"]["converted_users"] == 11, a  # 10 clicks + 1 purchase (users[1])
assert v["a"]["purchases"] + v["b"]["purchases"] == 1, a
assert a["comparisons"][0]["control"] == "a" and "p_value" in a["comparisons"][0], a
st, csv = get("/v1/abtest?format=csv")
assert st == 200 and csv.startswith("variant,user,converted,value\n") and csv.count("\n") == 31, csv[:200]
open("ab.csv", "w").write(csv)
st, e = get("/v1/abtest?format=xml")
assert st == 400, (st, e)
EOF
"$MAGPIE" abtest --csv ab.csv --control a --bootstrap 100 >ab.out 2>ab.err || fail "magpie abtest --csv: $(cat ab.err)"
grep -q "difference" ab.out || fail "abtest output: $(cat ab.out)"
stop
[ -s state/a.bandit ] && [ -s state/b.bandit ] || fail "bandit_state files not written: $(ls state)"
start --model shop.model --bandit-state state --price-max 60 \
    --ab-variants "a:1:linucb:alpha=0.5,intercept=1;b:1:egreedy:epsilon=0.2,intercept=1" --ab-salt s2
grep -q 'variant `a` resumes from state/a.bandit' serve.err || fail "state not resumed: $(cat serve.err)"
python3 - "$url" <<'EOF' || fail "resumed policy"
import json, sys, urllib.request
s = json.loads(urllib.request.urlopen(sys.argv[1] + "/v1/stats").read())["bandit"]
assert sum(v["updates"] for v in s["variants"]) == 10, s
EOF
stop
echo "serve_bandit: ok"

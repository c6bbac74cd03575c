#!/usr/bin/env bash
# The sequential transformer served live: `magpie serve --model` a trained sasrec; GET /v1/recommend/{user} answers
# from the live history and POST /v1/recommend from an anonymous session's items; an event changes the next answer
# at once, and a session's list changes as it grows. Also: `train --help` lists the model's parameters, and bad
# parameters are refused with the parameter named.
. "$(dirname "$0")/lib.sh"

"$MAGPIE" train --help | grep -q "sasrec" || fail "train --help lists sasrec"
"$MAGPIE" gen-demo --out shop --users 300 --items 120 --seed 5 --quiet
"$MAGPIE" import items shop/items.jsonl --db shop.db --quiet
"$MAGPIE" import events shop/events.jsonl --db shop.db --quiet
expect_fail "heads (3) must divide dim (16)" "$MAGPIE" train --db shop.db --model sasrec --param dim=16,heads=3 --out bad.mpm --quiet
expect_fail "dropout" "$MAGPIE" train --db shop.db --model sasrec --param dropout=1 --out bad.mpm --quiet
"$MAGPIE" train --db shop.db --model sasrec --param dim=16,layers=1,epochs=4,max_len=20 --valid-share 0.1 \
    --out seq.mpm --quiet
[ -s seq.mpm ] || fail "no model file"

# --ann on: the answers come from the HNSW index over the item embeddings (query_vector . item_vectors)
"$MAGPIE" serve --db shop.db --model seq.mpm --port 0 --ann on 2>serve.err &
pid=$!
wait_ready serve.err 100
url=$(server_url serve.err)
python3 - "$url" <<'PY' || fail "sasrec serving checks"
import json, sys, urllib.request
url = sys.argv[1]
def get(path):
    with urllib.request.urlopen(url + path, timeout=10) as r:
        return json.loads(r.read())
def post(path, body):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())
items = [json.loads(l)["id"] for l in open("shop/items.jsonl")]
users = [json.loads(l)["user"] for l in open("shop/events.jsonl")]
user = users[0]
first = get("/v1/recommend/%s?n=5&explain=1" % user)
assert first["model"] == "sasrec", first
assert len(first["items"]) == 5 and all("reason" in x for x in first["items"]), first
# a new event for the user: the next list differs at once and the item is no longer recommended
new_item = first["items"][0]["item"]
post("/v1/events", [{"user": user, "item": new_item, "type": "purchase"}])
second = get("/v1/recommend/%s?n=5&explain=1" % user)
ids1 = [x["item"] for x in first["items"]]
ids2 = [x["item"] for x in second["items"]]
assert new_item not in ids2, (new_item, ids2)
assert ids1 != ids2, "the next answer did not change"
assert any("just now" in x["reason"] for x in second["items"]), second
# an anonymous session: each new item changes the list
session, seen = [], []
for it in items[:4]:
    session.append(it)
    r = post("/v1/recommend", {"items": session, "n": 5, "explain": True})
    assert r["user"] is None and len(r["items"]) == 5, r
    ids = [x["item"] for x in r["items"]]
    assert not set(ids) & set(session), (ids, session)
    seen.append(ids)
assert all(seen[i] != seen[i + 1] for i in range(len(seen) - 1)), seen
print("ok")
PY
kill -TERM "$pid"
wait "$pid" && rc=0 || rc=$?
pid=""
[ "$rc" -eq 0 ] || fail "server exit status $rc"
if grep -q -E "LeakSanitizer|runtime error|AddressSanitizer" serve.err; then fail "sanitizer report"; fi
echo "ok"

#!/usr/bin/env bash
# gen-demo -> import -> train pop -> recommend with reasons -> corrupted / foreign model files are refused.
. "$(dirname "$0")/lib.sh"

for cmd in gen-demo train recommend; do
    "$MAGPIE" "$cmd" --help | grep -q "usage: magpie $cmd" || fail "$cmd --help"
done

# Deterministic generation.
"$MAGPIE" gen-demo --out shop --users 300 --items 200 --seed 5 --quiet
"$MAGPIE" gen-demo --out shop2 --users 300 --items 200 --seed 5 --quiet
for f in items.jsonl users.jsonl events.jsonl; do
    cmp -s "shop/$f" "shop2/$f" || fail "gen-demo is not deterministic ($f)"
done
"$MAGPIE" gen-demo --out shopcsv --users 50 --items 40 --format csv --max-events 500 --quiet
[ "$(wc -l < shopcsv/events.csv)" -eq 501 ] || fail "--max-events 500 with CSV header"
head -1 shopcsv/events.csv | grep -qx 'user,item,type,ts,value,text,session' || fail "CSV header"
expect_fail "--format" "$MAGPIE" gen-demo --out x --format xml

# Import, then train and recommend.
export MAGPIE_DB="$tmp/shop.db"
"$MAGPIE" import items shop/items.jsonl --quiet
"$MAGPIE" import users shop/users.jsonl --quiet
"$MAGPIE" import events shop/events.jsonl --quiet

# Train.
expect_fail 'unknown model "nosuch"' "$MAGPIE" train --model nosuch --out m.model
expect_fail 'unknown parameter "bogus"' "$MAGPIE" train --model pop --param bogus=1 --out m.model
expect_fail 'half_life_days' "$MAGPIE" train --model pop --param half_life_days=-3 --out m.model
expect_fail 'no store at' "$MAGPIE" train --model pop --db "$tmp/missing.db" --out m.model
"$MAGPIE" train --model pop --out pop.model 2>train.log
grep -q "trained pop on" train.log || { cat train.log; fail "train summary"; }
[ -s pop.model ] || fail "no model file"
ls | grep -q 'pop.model.tmp' && fail "temporary model file left behind"
"$MAGPIE" train --model pop --param category_boost=1,weighted=1 --half-life-days 14 --out boost.model --quiet

# Recommend.
"$MAGPIE" recommend --model pop.model --users 3 --n 5 --explain > rec.txt
[ "$(grep -c '^user-' rec.txt)" -eq 3 ] || { cat rec.txt; fail "expected 3 users"; }
[ "$(grep -c '^ *[0-9]*\. sku-' rec.txt)" -eq 15 ] || { cat rec.txt; fail "expected 5 items per user"; }
grep -q 'popular in ' rec.txt || { cat rec.txt; fail "no reasons"; }

# History is excluded: no recommended item appears in the user's events.
user=$(grep -m1 '^user-' rec.txt | cut -d' ' -f1)
"$MAGPIE" recommend --model pop.model --user "$user" --n 20 --json > rec.json
grep -q "\"user\":\"$user\"" rec.json || fail "json user"
for item in $(grep -o '"item":"sku-[0-9]*"' rec.json | cut -d'"' -f4); do
    if grep -q "\"user\":\"$user\",\"item\":\"$item\"" shop/events.jsonl; then fail "$item is in $user's history"; fi
done
[ "$(grep -o '"item":"sku-' rec.json | wc -l)" -eq 20 ] || fail "expected 20 items in json"

# Category filter, explanations with the boost, unknown users.
"$MAGPIE" recommend --model pop.model --users 2 --category "Skin Care" --explain --json > cat.json
grep -o '"reason":"[^"]*"' cat.json | grep -v 'Skin Care' && fail "item outside the category filter"
expect_fail 'no category "Toys"' "$MAGPIE" recommend --model pop.model --users 1 --category Toys
"$MAGPIE" recommend --model boost.model --users 5 --explain > boost.txt
grep -q 'popular in ' boost.txt || fail "boost reasons"
expect_fail 'unknown user "nobody"' "$MAGPIE" recommend --model pop.model --user nobody
"$MAGPIE" recommend --model pop.model --user nobody --allow-unknown --n 3 > unk.txt
grep -q 'unknown user: popular items' unk.txt || fail "unknown user label"
expect_fail '--user' "$MAGPIE" recommend --model pop.model

# Corrupted and foreign model files are refused with a clear message naming the file.
cp pop.model bad.model
printf '\x5a' | dd of=bad.model bs=1 seek=300 conv=notrunc 2>/dev/null
cmp -s pop.model bad.model && fail "corruption did not change the file"
expect_fail "bad.model: payload checksum mismatch" "$MAGPIE" recommend --model bad.model --users 1
cp pop.model hdr.model
printf '\x01' | dd of=hdr.model bs=1 seek=50 conv=notrunc 2>/dev/null
expect_fail "hdr.model: header checksum mismatch" "$MAGPIE" recommend --model hdr.model --users 1
head -c 1000 pop.model > short.model
expect_fail "short.model: truncated" "$MAGPIE" recommend --model short.model --users 1
expect_fail "not a model file" "$MAGPIE" recommend --model shop/items.jsonl --users 1
expect_fail "SQLite database" "$MAGPIE" recommend --model "$MAGPIE_DB" --users 1
expect_fail "missing.model" "$MAGPIE" recommend --model missing.model --users 1

echo "ok"

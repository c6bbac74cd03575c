#!/usr/bin/env bash
# `magpie import` over bad input: every case must exit 1, name the file, line and problem on stderr, and leave
# the store exactly as it was (checked with `magpie stats --json`).
set -u
MAGPIE=${MAGPIE:-build/magpie}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
fail=0
db=store.db

events_in_store() { "$MAGPIE" stats --db "$db" --json | sed 's/.*"events":\([0-9]*\).*/\1/'; }
users_in_store() { "$MAGPIE" stats --db "$db" --json | sed 's/.*"users":\([0-9]*\).*/\1/'; }

# A store with known content: 2 events, 2 users, 1 item.
printf '{"user":"u1","item":"i1","type":"view","ts":100}\n{"user":"u2","item":"i1","type":"cart","ts":"2025-01-01T00:00:00Z"}\n' >good.jsonl
"$MAGPIE" import events good.jsonl --db "$db" --quiet || { echo "FAIL: importing a good file"; exit 1; }
[ "$(events_in_store)" = 2 ] || { echo "FAIL: expected 2 events after the good import"; exit 1; }
before=$("$MAGPIE" stats --db "$db" --json)

ok_line='{"user":"u7","item":"i7","type":"click","ts":200}'
# expect NAME FILE PATTERN [import args...]: exit 1, PATTERN in stderr, store unchanged.
expect() {
    local name=$1 file=$2 pattern=$3
    shift 3
    local out rc
    out=$("$MAGPIE" import "$@" "$file" --db "$db" 2>&1 >/dev/null)
    rc=$?
    if [ "$rc" != 1 ]; then
        echo "FAIL $name: exit $rc, expected 1; stderr: $out"
        fail=1
    elif ! grep -qF -- "$pattern" <<<"$out"; then
        echo "FAIL $name: stderr lacks \"$pattern\": $out"
        fail=1
    fi
    if [ "$("$MAGPIE" stats --db "$db" --json)" != "$before" ]; then
        echo "FAIL $name: the store changed"
        fail=1
    fi
}

{ echo "$ok_line"; echo '{"user":"u1","item":"i1","type":"view","ts":100'; } >malformed.jsonl
expect malformed-json malformed.jsonl "malformed.jsonl:2: malformed JSON" events
{ echo "$ok_line"; echo '{"user":"u1","item":"i1","type":"view","ts":true}'; } >wrongtype.jsonl
expect wrong-type wrongtype.jsonl 'wrongtype.jsonl:2: field `ts`' events
echo '{"user":"u1","type":"view","ts":100}' >missing.jsonl
expect missing-field missing.jsonl 'missing.jsonl:1: field `item`: missing required field' events
printf '{"user":"u\xff1","item":"i1","type":"view","ts":100}\n' >utf8.jsonl
expect invalid-utf8 utf8.jsonl 'utf8.jsonl:1: field `user`: invalid UTF-8' events
# Text fields (titles, review text) are validated the same way: a truncated multi-byte sequence in a review's text
# and an overlong encoding in an item title are both refused with the field named; valid emoji and mixed scripts pass.
printf '{"user":"u1","item":"i1","type":"review","ts":100,"text":"great \xe6\x96"}\n' >utf8text.jsonl
expect invalid-utf8-review-text utf8text.jsonl 'utf8text.jsonl:1: field `text`: invalid UTF-8' events
printf '{"id":"i9","title":"bad \xc0\xaf title"}\n' >utf8title.jsonl
expect invalid-utf8-title utf8title.jsonl 'utf8title.jsonl:1: field `title`: invalid UTF-8' items
echo '{"user":"u1","item":"i1","type":"buy","ts":100}' >type.jsonl
expect unknown-type type.jsonl 'type.jsonl:1: field `type`: unknown event type' events
echo '{"user":"u1","item":"i1","type":"view","ts":"2025-13-45"}' >ts.jsonl
expect bad-timestamp ts.jsonl 'ts.jsonl:1: field `ts`' events
echo '{"user":"u1","item":"i1","type":"view","ts":100,"colour":"red"}' >field.jsonl
expect unknown-field field.jsonl 'field `colour`: unknown field' events
: >empty.jsonl
expect empty-file empty.jsonl "empty.jsonl: file is empty" events
awk -v ok="$ok_line" 'BEGIN { print ok; printf "{\"user\":\"u1\",\"item\":\"i1\",\"type\":\"view\",\"ts\":1,\"text\":\"";
    for (i = 0; i < 17000; i++) printf "%s", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"; print "\"}"; print ok }' >long.jsonl
expect line-over-1mb long.jsonl "long.jsonl:2: record is longer than" events
printf 'user,item,type,ts\nu1,i1,view,100\nu2,i2,view\n' >cols.csv
expect csv-column-count cols.csv "cols.csv:3: expected 4 columns" events
expect csv-forced-format good.jsonl "good.jsonl" events --format csv
expect missing-file nosuch.jsonl "nosuch.jsonl" events
printf '{"id":"sku-1","price":-3}\n' >items.jsonl
expect item-negative-price items.jsonl 'items.jsonl:1: field `price`' items

# the summary line names the counts and the way out
{ echo "$ok_line"; echo "$ok_line" | sed 's/click/clack/'; echo "$ok_line" | sed 's/u7/u8/'; } >mixed.jsonl
out=$("$MAGPIE" import events mixed.jsonl --db "$db" 2>&1 >/dev/null)
grep -qF "rejected 1 of 3 records; nothing was written (use --skip-bad FILE to keep the good records)" <<<"$out" ||
    { echo "FAIL summary: $out"; fail=1; }

# unknown preset
out=$("$MAGPIE" import --preset no-such-dataset . --db "$db" 2>&1 >/dev/null)
rc=$?
[ "$rc" = 1 ] && grep -qi "preset" <<<"$out" || { echo "FAIL unknown preset: exit $rc: $out"; fail=1; }
[ "$("$MAGPIE" stats --db "$db" --json)" = "$before" ] || { echo "FAIL unknown preset: the store changed"; fail=1; }

# usage errors exit 2
"$MAGPIE" import --db "$db" 2>/dev/null
[ $? = 2 ] || { echo "FAIL: import without arguments should exit 2"; fail=1; }
"$MAGPIE" import things good.jsonl --db "$db" 2>/dev/null
[ $? = 2 ] || { echo "FAIL: unknown kind should exit 2"; fail=1; }

# --dry-run reports the bad record and writes nothing, even to a store that does not exist yet
out=$("$MAGPIE" import events mixed.jsonl --dry-run --db fresh.db 2>&1 >/dev/null)
[ $? = 1 ] && grep -qF "mixed.jsonl:2" <<<"$out" || { echo "FAIL dry run: $out"; fail=1; }
[ ! -e fresh.db ] || { echo "FAIL dry run created the store"; fail=1; }

# --skip-bad keeps the good records and writes the bad one with its reason
"$MAGPIE" import events mixed.jsonl --db "$db" --skip-bad rejects.jsonl --quiet 2>/dev/null ||
    { echo "FAIL: --skip-bad should succeed"; fail=1; }
[ "$(events_in_store)" = 4 ] || { echo "FAIL --skip-bad: expected 4 events, got $(events_in_store)"; fail=1; }
[ "$(users_in_store)" = 4 ] || { echo "FAIL --skip-bad: expected 4 users"; fail=1; }
[ "$(wc -l <rejects.jsonl)" = 1 ] || { echo "FAIL --skip-bad: expected one reject line"; fail=1; }
grep -qF '{"file":"mixed.jsonl","line":2,"error":"field `type`: unknown event type' rejects.jsonl &&
    grep -qF '"record":"{\"user\":\"u7\",\"item\":\"i7\",\"type\":\"clack\",\"ts\":200}"}' rejects.jsonl ||
    { echo "FAIL rejects file:"; cat rejects.jsonl; fail=1; }

# re-importing the same file only counts duplicates
out=$("$MAGPIE" import events good.jsonl --db "$db" 2>&1)
grep -qF "0 written, 2 duplicates skipped" <<<"$out" || { echo "FAIL duplicates: $out"; fail=1; }

# stats on a missing store fails clearly
out=$("$MAGPIE" stats --db missing.db 2>&1)
[ $? = 1 ] && grep -qF "does not exist" <<<"$out" || { echo "FAIL stats on missing store: $out"; fail=1; }

[ $fail = 0 ] && echo "import_errors: all cases passed"
exit $fail

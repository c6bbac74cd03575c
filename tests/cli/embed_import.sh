#!/usr/bin/env bash
# `magpie import embeddings` in each format and its file:line errors (a bad file changes nothing), and
# `magpie embed`: USE-Lite on a small generated shop computes, then caches; without the model package the use-lite
# encoder names the install command while importing vectors and an OpenAI-compatible encoder (a python3 stub
# server here) still work.
set -u
MAGPIE=${MAGPIE:-build/magpie}
case $MAGPIE in /*) ;; *) MAGPIE="$PWD/$MAGPIE" ;; esac
dir=$(mktemp -d)
stub_pid=
cleanup() {
    [ -n "$stub_pid" ] && kill "$stub_pid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
cd "$dir"
fail=0
db=store.db
say_fail() {
    echo "FAIL: $*"
    fail=1
}

"$MAGPIE" gen-demo --out shop --users 20 --items 30 --quiet || { echo "FAIL: gen-demo"; exit 1; }
"$MAGPIE" import items shop/items.jsonl --db "$db" --quiet || { echo "FAIL: import items"; exit 1; }
"$MAGPIE" import users shop/users.jsonl --db "$db" --quiet || { echo "FAIL: import users"; exit 1; }

# --- import embeddings: the three formats ---------------------------------------------------------------------
printf '3 4\nsku-000001 0.1 0.2 0.3 0.4\nsku-000002\t1 2 3 4\n\nnot-an-item 1 1 1 1\n' >vec.txt
out=$("$MAGPIE" import embeddings vec.txt --db "$db" 2>&1) || say_fail "text import: $out"
grep -qF '2 vectors of dimension 4 for items (source "user"); 1 unknown ids skipped ("not-an-item")' <<<"$out" ||
    say_fail "text import summary: $out"

printf 'id,v1,v2,v3,v4\n"sku-000003",1,2,3,4\nsku-000004, 5 ,6,7,8e-1\n' >vec.csv
out=$("$MAGPIE" import embeddings vec.csv --db "$db" 2>&1) || say_fail "csv import: $out"
grep -qF '2 vectors of dimension 4' <<<"$out" || say_fail "csv import summary: $out"

printf '{"id":"sku-000005","embedding":[1,2,3,4]}\n{"id":"sku-000006","embedding":[0.5,0.5,0.5,0.5]}\n' >vec.jsonl
out=$("$MAGPIE" import embeddings vec.jsonl --db "$db" 2>&1) || say_fail "jsonl import: $out"
grep -qF '2 vectors of dimension 4' <<<"$out" || say_fail "jsonl import summary: $out"

# users, under another source
printf 'user-000001 1 0\nuser-000002 0 1\n' >users.vec
out=$("$MAGPIE" import embeddings users.vec --kind users --source mf --db "$db" 2>&1) || say_fail "users: $out"
grep -qF '2 vectors of dimension 2 for users (source "mf")' <<<"$out" || say_fail "users summary: $out"

# --- errors: exit 1, file:line, and nothing of the file is stored ----------------------------------------------
emb_count() { # vectors of items under source "user", counted by re-importing nothing: use sqlite3 when present
    if command -v sqlite3 >/dev/null; then
        sqlite3 "$db" "SELECT count(*) FROM embeddings WHERE kind = 1 AND source = 'user'"
    else
        echo unknown
    fi
}
before=$(emb_count)
expect_err() { # NAME FILE PATTERN [args...]
    local name=$1 file=$2 pattern=$3
    shift 3
    local out rc
    out=$("$MAGPIE" import embeddings "$file" --db "$db" "$@" 2>&1)
    rc=$?
    [ "$rc" = 1 ] || say_fail "$name: exit $rc, expected 1: $out"
    grep -qF -- "$pattern" <<<"$out" || say_fail "$name: output lacks \"$pattern\": $out"
    [ "$(emb_count)" = "$before" ] || say_fail "$name: the store changed"
}
printf 'sku-000007 1 2 3 4\nsku-000008 1 2 3\n' >short.txt
expect_err "row dimension" short.txt "short.txt:2: 3 values, but line 1 has 4"
printf '2 5\nsku-000007 1 2 3 4\n' >hdr.txt
expect_err "header dimension" hdr.txt "hdr.txt:2: 4 values, but the header says the dimension is 5"
printf 'sku-000007 1 2 3\n' >other.txt
expect_err "stored dimension" other.txt "other.txt:1: store"
expect_err "stored dimension hint" other.txt "have dimension 4"
printf 'sku-000007,1,2,,4\n' >hole.csv
expect_err "csv empty value" hole.csv "hole.csv:1: value 3: empty value"
printf 'sku-000007 1 2 nan 4\n' >nan.txt
expect_err "nan" nan.txt "nan.txt:1: value 3: not a number"
printf '{"id":"sku-000007","embedding":[1,2,3,4]}\n{"id":"sku-000008","embedding":[1,"2",3,4]}\n' >bad.jsonl
expect_err "jsonl element" bad.jsonl 'bad.jsonl:2: field `embedding`: value 2 is not a number'
printf '{"id":"sku-000007"}\n' >noemb.jsonl
expect_err "jsonl missing" noemb.jsonl 'noemb.jsonl:1: field `embedding`: missing'
"$MAGPIE" import embeddings vec.txt --kind events --db "$db" >/dev/null 2>&1
[ $? = 2 ] || say_fail "--kind events must be a usage error"
# --replace changes the dimension of a source in one go
out=$("$MAGPIE" import embeddings other.txt --replace --db "$db" 2>&1) || say_fail "--replace: $out"
grep -qF '1 vectors of dimension 3' <<<"$out" && grep -qF '6 old vectors replaced' <<<"$out" ||
    say_fail "--replace summary: $out"

# --- records carry embeddings too ------------------------------------------------------------------------------
printf '{"id":"new-item","title":"Fresh","embedding":[1,2,3]}\n{"id":"bad-item","embedding":[1,2]}\n' >items-emb.jsonl
out=$("$MAGPIE" import items items-emb.jsonl --db "$db" 2>&1)
[ $? = 1 ] || say_fail "items with a wrong-dimension embedding must be rejected: $out"
grep -qF 'items-emb.jsonl:2: field `embedding`: 2 values, but the items'"'"' embeddings have dimension 3' <<<"$out" ||
    say_fail "record embedding dimension message: $out"

# --- magpie embed with USE-Lite: computes, then caches -----------------------------------------------------------
# --text prints one JSON line per text with a 512-value unit vector; when the package is missing, skip USE-Lite
if "$MAGPIE" embed --encoder use-lite --text "red shoes" --text "blue shoes" >use.out 2>use.err; then
    python3 - <<'EOF' || say_fail "embed --text output: $(head -c 300 use.out)"
import json, math
rows = [json.loads(l) for l in open("use.out").read().splitlines()]
assert [r["text"] for r in rows] == ["red shoes", "blue shoes"], rows
for r in rows:
    v = r["embedding"]
    assert len(v) == 512 and abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-4
EOF
    out=$("$MAGPIE" embed --encoder use-lite --db "$db" --quiet 2>&1) || say_fail "embed use-lite: $out"
    grep -qF 'embedded items with use-lite: 30 computed, 0 cached' <<<"$out" || say_fail "first embed: $out"
    out=$("$MAGPIE" embed --encoder use-lite --db "$db" --quiet 2>&1) || say_fail "embed use-lite again: $out"
    grep -qF ': 0 computed, 30 cached' <<<"$out" || say_fail "second embed must be all cached: $out"
elif grep -qF 'npm install' use.err; then
    echo "note: the USE-Lite package is not installed here; skipping the use-lite compute/cache check"
else
    say_fail "embed --encoder use-lite --text: $(cat use.err)"
fi

# --- without the model package ----------------------------------------------------------------------------------
out=$(MAGPIE_USE_DIR=/nonexistent "$MAGPIE" embed --encoder use-lite --db "$db" 2>&1)
[ $? = 1 ] || say_fail "use-lite without the package must fail: $out"
grep -qF 'npm install' <<<"$out" || say_fail "the use-lite error must name the npm install command: $out"
export MAGPIE_USE_DIR=/nonexistent
printf 'sku-000010 9 9 9\n' >more.txt
out=$("$MAGPIE" import embeddings more.txt --db "$db" 2>&1) || say_fail "import embeddings without the package: $out"

# an OpenAI-compatible stub: vector [len(text), number of 'e' in it, 1] per input, answered in reverse order
cat >stub.py <<'EOF'
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/v1/embeddings" or req.get("model") != "stub-model":
            body, code = json.dumps({"error": {"message": "unknown model " + str(req.get("model"))}}), 404
        else:
            data = [{"object": "embedding", "index": i, "embedding": [len(t), t.count("e"), 1]}
                    for i, t in enumerate(req["input"])]
            body, code = json.dumps({"object": "list", "data": data[::-1], "model": req["model"]}), 200
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())
    def log_message(self, *a):
        pass
s = HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
EOF
python3 stub.py >port.txt &
stub_pid=$!
for _ in $(seq 50); do [ -s port.txt ] && break; sleep 0.1; done
port=$(cat port.txt)
[ -n "$port" ] || { echo "FAIL: the stub server did not start"; exit 1; }
enc="openai:stub-model@http://127.0.0.1:$port/v1"
out=$("$MAGPIE" embed --encoder "$enc" --db "$db" --threads 2 --quiet 2>&1) || say_fail "embed openai: $out"
grep -qF 'embedded items with openai:stub-model: 30 computed, 0 cached' <<<"$out" || say_fail "openai embed: $out"
out=$("$MAGPIE" embed --encoder "$enc" --db "$db" --quiet 2>&1) || say_fail "embed openai again: $out"
grep -qF ': 0 computed, 30 cached' <<<"$out" || say_fail "openai second embed: $out"
out=$("$MAGPIE" embed --encoder "$enc" --text "hello" --text "tree" 2>&1) || say_fail "embed --text openai: $out"
python3 -c '
import json, math, sys
rows = [json.loads(l) for l in sys.stdin.read().splitlines()]
assert [r["text"] for r in rows] == ["hello", "tree"], rows
for r, want in zip(rows, ([5, 1, 1], [4, 2, 1])):
    n = math.sqrt(sum(x * x for x in want))
    assert all(abs(a - b / n) < 1e-6 for a, b in zip(r["embedding"], want)), (r, want)
' <<<"$out" || say_fail "openai --text vectors: $out"
out=$("$MAGPIE" embed --encoder "openai:other@http://127.0.0.1:$port/v1" --text x 2>&1)
[ $? = 1 ] || say_fail "an unknown model must fail"
grep -qF 'HTTP 404: unknown model other' <<<"$out" || say_fail "the server's message must be shown: $out"
out=$("$MAGPIE" embed --encoder bogus --text x 2>&1)
[ $? = 1 ] && grep -qF 'known encoders' <<<"$out" || say_fail "unknown encoder: $out"

[ $fail = 0 ] && echo "ok"
exit $fail

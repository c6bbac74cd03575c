#!/usr/bin/env bash
# The demo: installs dependencies, builds, generates the demo shop, imports it into the embedded store, trains,
# evaluates and prints recommendations with reasons. Everything it writes goes to ./demo-shop/.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
make -j2 all >/dev/null
exec ./examples/demo.sh

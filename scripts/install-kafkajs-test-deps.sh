#!/usr/bin/env bash
# Installs kafkajs (a pure-JavaScript Kafka client, its own SASL/SCRAM code) from
# tests/clients/kafkajs's lock file, for crates/sluice/tests/kafka_kafkajs.rs.
# Idempotent: skips npm when node_modules matches the lock.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/tests/clients/kafkajs"

if ! command -v npm >/dev/null; then
  echo "npm is required (apt-get install nodejs npm)" >&2
  exit 1
fi
# npm writes node_modules/.package-lock.json on install; newer than the committed lock: current.
STAMP="$DIR/node_modules/.package-lock.json"
if [[ -f "$STAMP" && "$STAMP" -nt "$DIR/package-lock.json" ]]; then
  echo "tests/clients/kafkajs/node_modules is current"
else
  (cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error)
fi
node -e "console.log('kafkajs', require('$DIR/node_modules/kafkajs/package.json').version)"

#!/usr/bin/env bash
# Installs what the web console's end-to-end test (crates/sluice/tests/console.rs,
# tests/console/scenario.mjs) needs: Debian's `chromium` (Playwright drives it by path; its own
# browser download does not work offline) and playwright-core from tests/console's lock file.
# Idempotent: skips apt when /usr/bin/chromium exists and npm when node_modules matches the lock.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONSOLE_TEST_DIR="$ROOT/tests/console"

if [[ -x /usr/bin/chromium ]]; then
  echo "chromium already installed: $(/usr/bin/chromium --version 2>/dev/null || echo unknown version)"
else
  SUDO=""
  if [[ "$(id -u)" != 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
fi

if ! command -v npm >/dev/null; then
  echo "npm is required (apt-get install nodejs npm)" >&2
  exit 1
fi

# npm writes node_modules/.package-lock.json on install; when it equals the committed lock's
# package set, the tree is current.
STAMP="$CONSOLE_TEST_DIR/node_modules/.package-lock.json"
if [[ -f "$STAMP" && "$STAMP" -nt "$CONSOLE_TEST_DIR/package-lock.json" ]]; then
  echo "tests/console/node_modules is current"
else
  (cd "$CONSOLE_TEST_DIR" && npm ci --no-audit --no-fund --loglevel=error)
fi
node -e "console.log('playwright-core', require('$CONSOLE_TEST_DIR/node_modules/playwright-core/package.json').version)"

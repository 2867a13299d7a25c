#!/usr/bin/env bash
# The project's test command: installs the real-client test dependencies, builds every
# target in the workspace and runs every test (all failures reported, exit non-zero on any).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-test-deps.sh

echo "==> cargo build --workspace --all-targets"
cargo build --workspace --all-targets

echo "==> cargo test --workspace --no-fail-fast"
cargo test --workspace --no-fail-fast "$@"

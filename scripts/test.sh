#!/usr/bin/env bash
# The project's test command: installs the real-client test dependencies, builds every
# target in the workspace and runs every test (all failures reported, exit non-zero on any).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# rustup installs cargo under ~/.cargo/bin, which a non-interactive shell may not have on PATH.
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi

# The machine's Python with pip is pyenv's; a non-interactive shell (CI) may not have its
# shims on PATH, and the NSQ client tests run `python3` from PATH.
if [ -d "$HOME/.pyenv/shims" ]; then
  export PATH="$HOME/.pyenv/shims:$PATH"
fi

bash scripts/install-test-deps.sh
bash scripts/install-nsq-test-deps.sh
bash scripts/install-mqtt-test-deps.sh
bash scripts/install-api-test-deps.sh
bash scripts/install-ops-test-deps.sh
bash scripts/install-console-test-deps.sh
bash scripts/install-kafkajs-test-deps.sh

echo "==> cargo build --workspace --all-targets"
cargo build --workspace --all-targets

echo "==> cargo test --workspace --no-fail-fast"
cargo test --workspace --no-fail-fast "$@"

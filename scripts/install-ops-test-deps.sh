#!/usr/bin/env bash
# Installs what the operations tests need. Idempotent: each section checks for its tool first.
# Sections are independent; add new ones below with the same shape.
set -euo pipefail

SUDO=""
if [[ "$(id -u)" != 0 ]]; then SUDO="sudo"; fi
APT_UPDATED=""
apt_install() {
  if [[ -z "$APT_UPDATED" ]]; then
    $SUDO apt-get update -q
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "$@"
}

# --- metrics: `promtool check metrics` on a /metrics scrape (crates/sluice/tests/metrics.rs) ---
if command -v promtool >/dev/null; then
  echo "promtool already installed: $(promtool --version 2>&1 | head -n 1)"
else
  apt_install prometheus
  # The package starts a Prometheus server through its init scripts where it can; the test
  # needs only the promtool binary.
  promtool --version 2>&1 | head -n 1
fi

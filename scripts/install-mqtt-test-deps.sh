#!/usr/bin/env bash
# Installs the MQTT clients the MQTT black-box tests drive (crates/sluice/tests/mqtt_*.rs):
# Debian's mosquitto-clients (mosquitto_pub, mosquitto_sub; MQTT 3.1.1 and 5.0).
# Idempotent: does nothing when they are already there.
set -euo pipefail

if command -v mosquitto_pub >/dev/null 2>&1 && command -v mosquitto_sub >/dev/null 2>&1; then
  echo "mosquitto clients already installed: $(mosquitto_pub --help 2>&1 | head -1)"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends mosquitto-clients
mosquitto_pub --help 2>&1 | head -1

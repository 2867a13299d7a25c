#!/usr/bin/env bash
# Installs the MQTT clients the MQTT black-box tests drive (crates/sluice/tests/mqtt_*.rs):
# Debian's mosquitto-clients (mosquitto_pub, mosquitto_sub; MQTT 3.1.1 and 5.0) and paho-mqtt
# (PyPI; its websockets transport drives MQTT over WebSocket). Idempotent: does nothing for
# what is already installed.
set -euo pipefail

PYTHON="${PYTHON:-python3}"
PAHO_VERSION=2.1.0

if command -v mosquitto_pub >/dev/null 2>&1 && command -v mosquitto_sub >/dev/null 2>&1; then
  echo "mosquitto clients already installed: $(mosquitto_pub --help 2>&1 | head -1)"
else
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends mosquitto-clients
  mosquitto_pub --help 2>&1 | head -1
fi

if "$PYTHON" -c 'import paho.mqtt.client' 2>/dev/null; then
  echo "paho-mqtt already installed for $("$PYTHON" --version)"
else
  "$PYTHON" -m pip install --disable-pip-version-check --quiet "paho-mqtt==$PAHO_VERSION"
  "$PYTHON" -c 'import paho.mqtt; print("paho-mqtt", paho.mqtt.__version__)'
fi

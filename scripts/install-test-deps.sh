#!/usr/bin/env bash
# Installs the real Kafka clients the black-box test suite drives (kcat, kafka-python,
# confluent-kafka, librdkafka, Go + sarama) plus build tools. Idempotent: installs only
# what is missing, and runs `apt-get update` only when something is missing.
set -euo pipefail

PACKAGES=(
  kcat
  python3-kafka
  python3-confluent-kafka
  librdkafka-dev
  golang-go
  golang-github-shopify-sarama-dev
  # sarama's SCRAM client is the application's to supply: xdg-go/scram, as sarama's example.
  golang-github-xdg-go-scram-dev
  pkg-config
  cmake
  # Building the rdkafka crate's bundled librdkafka (C and C++) and sarama's cgo zstd binding.
  build-essential
  zlib1g-dev
  libzstd-dev
  # fusermount3 for the power-cut test filesystem (crates/powercut).
  fuse3
  # `ip netns` and veth pairs for the cluster's network-partition tests.
  iproute2
)

export DEBIAN_FRONTEND=noninteractive

is_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! is_installed "$pkg"; then
    missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-test-deps: all test packages present"
else
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      SUDO="sudo -n"
    else
      echo "install-test-deps: need root (or sudo) to install: ${missing[*]}" >&2
      exit 1
    fi
  fi
  echo "install-test-deps: installing: ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}" </dev/null
fi

# Sanity checks: fail here with a clear message rather than deep inside a test.
command -v kcat >/dev/null || { echo "install-test-deps: kcat not on PATH" >&2; exit 1; }
command -v go >/dev/null || { echo "install-test-deps: go not on PATH" >&2; exit 1; }
command -v ip >/dev/null || { echo "install-test-deps: ip (iproute2) not on PATH" >&2; exit 1; }
/usr/bin/python3 -c 'import kafka, confluent_kafka' \
  || { echo "install-test-deps: /usr/bin/python3 cannot import kafka / confluent_kafka" >&2; exit 1; }
test -d /usr/share/gocode/src/github.com/Shopify/sarama \
  || { echo "install-test-deps: sarama source missing under /usr/share/gocode" >&2; exit 1; }
command -v fusermount3 >/dev/null || { echo "install-test-deps: fusermount3 (fuse3) not on PATH" >&2; exit 1; }
test -c /dev/fuse || { echo "install-test-deps: /dev/fuse missing (the power-cut tests need FUSE)" >&2; exit 1; }
echo "install-test-deps: ok"

#!/usr/bin/env bash
# Installs the Python NSQ clients the NSQ black-box tests drive (crates/sluice/tests/nsq_*.rs,
# tests/clients/nsq/): pynsq (tornado) and gnsq (gevent), with python-snappy for snappy
# connections. Idempotent: pip skips what is already installed at the pinned version.
set -euo pipefail

PYTHON="${PYTHON:-python3}"
PACKAGES=(
  "pynsq==0.9.1"
  "tornado==6.4.2"
  "gnsq==1.0.2"
  "gevent==24.11.1"
  "blinker==1.9.0"
  "six==1.17.0"
  "urllib3==2.2.3"
  "python-snappy==0.7.3"
)

if "$PYTHON" - <<'PY' 2>/dev/null
import nsq, gnsq, snappy, tornado  # noqa: F401
PY
then
  echo "nsq test clients already installed for $("$PYTHON" --version)"
  exit 0
fi

"$PYTHON" -m pip install --disable-pip-version-check --quiet "${PACKAGES[@]}"
"$PYTHON" -c 'import nsq, gnsq, snappy, tornado; print("pynsq", nsq.__version__, "gnsq", gnsq.__version__)'

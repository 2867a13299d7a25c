#!/usr/bin/env bash
# Installs schemathesis, which the admin API contract test (crates/sluice/tests/admin_openapi.rs)
# runs against a live broker to check every response against /api/openapi.json. Idempotent:
# nothing is downloaded when the pinned version is already installed.
set -euo pipefail

PYTHON="${PYTHON:-python3}"
VERSION="4.32.5"

if "$PYTHON" - "$VERSION" <<'PY' 2>/dev/null
import sys
import schemathesis
sys.exit(0 if schemathesis.__version__ == sys.argv[1] else 1)
PY
then
  echo "schemathesis $VERSION already installed for $("$PYTHON" --version)"
  exit 0
fi

"$PYTHON" -m pip install --disable-pip-version-check --quiet "schemathesis==$VERSION"
"$PYTHON" -c 'import schemathesis; print("schemathesis", schemathesis.__version__)'

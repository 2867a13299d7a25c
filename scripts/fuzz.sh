#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time on the STABLE toolchain and fails
# if any input crashes one. Per target it prints libFuzzer's executions and final stats.
#
#   SLUICE_FUZZ_SECS     seconds per target (default 45; e.g. 3600 for a long run by hand)
#   SLUICE_FUZZ_TARGETS  space-separated subset of `cargo fuzz list` (default: all)
#
# The committed corpus fuzz/corpus/<target>/ seeds each run and is only read: inputs libFuzzer
# finds go to fuzz/target/corpus-new/<target>/ (ignored). To keep the interesting ones, run
# `cargo fuzz cmin -s none <target>` after copying them into the corpus (keep it small).
# A crash leaves its input in fuzz/artifacts/<target>/; reproduce with
# `RUSTC_BOOTSTRAP=1 cargo +stable fuzz run -s none <target> <file>`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi

CARGO_FUZZ_VERSION="0.13.1"
FUZZ_SECS="${SLUICE_FUZZ_SECS:-45}"

if ! cargo fuzz --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
  echo "==> installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi

# cargo-fuzz passes a few unstable flags (-Z) to rustc for coverage instrumentation; this lets
# the stable compiler accept them. `-s none` skips AddressSanitizer, which needs nightly, and
# matters little for code without `unsafe`; `-a` keeps debug assertions and overflow checks on.
export RUSTC_BOOTSTRAP=1
FUZZ=(cargo +stable fuzz)
BUILD_FLAGS=(-s none -a)

cd fuzz
TARGETS="${SLUICE_FUZZ_TARGETS:-$("${FUZZ[@]}" list)}"

echo "==> cargo fuzz build (${TARGETS//$'\n'/ })"
"${FUZZ[@]}" build "${BUILD_FLAGS[@]}"

failed=()
for target in $TARGETS; do
  scratch="target/corpus-new/$target"
  seeds="corpus/$target"
  log="target/fuzz-$target.log"
  mkdir -p "$scratch" "$seeds"
  echo "==> fuzz $target for ${FUZZ_SECS}s (seeds: $(find "$seeds" -type f | wc -l))"
  status=0
  "${FUZZ[@]}" run "${BUILD_FLAGS[@]}" "$target" "$scratch" "$seeds" -- \
    -max_total_time="$FUZZ_SECS" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 || status=$?
  runs="$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' | tail -1)"
  echo "    $target: ${runs:-?} executions in ${FUZZ_SECS}s; $(grep -E '^Done [0-9]+ runs' "$log" | tail -1)"
  if [ "$status" -ne 0 ]; then
    echo "    $target FAILED (exit $status); the end of its log:"
    tail -40 "$log" | sed 's/^/      /'
    failed+=("$target")
  fi
done

if [ "${#failed[@]}" -ne 0 ]; then
  echo "fuzzing found crashes in: ${failed[*]} (inputs in fuzz/artifacts/)"
  exit 1
fi
echo "fuzzing: every target ran ${FUZZ_SECS}s without a crash"

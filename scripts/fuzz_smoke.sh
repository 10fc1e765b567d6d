#!/usr/bin/env bash
# Bounded libFuzzer run of each target over its kept corpus (fuzz/corpus/<target>/), for CI.
# The kept corpus is copied first so a smoke run never edits the repository; new crashes are
# written to build-fuzz/crashes/ and fail the run.
#   FUZZ_SECONDS (default 30) per target.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-30}"
mkdir -p build-fuzz/crashes
status=0
for target in fault_spec npy replay_token; do
  work="build-fuzz/corpus-${target}"
  rm -rf "$work" && mkdir -p "$work"
  cp -r "fuzz/corpus/${target}/." "$work/" 2>/dev/null || true
  echo "fuzz_${target}: ${seconds}s, $(ls "$work" | wc -l) seed inputs"
  if ! "build-fuzz/bin/fuzz_${target}" -max_total_time="$seconds" -rss_limit_mb=2048 \
      -artifact_prefix="build-fuzz/crashes/${target}-" -print_final_stats=1 "$work" \
      > "build-fuzz/fuzz_${target}.log" 2>&1; then
    echo "fuzz_${target}: FAILED (log: build-fuzz/fuzz_${target}.log)"
    tail -40 "build-fuzz/fuzz_${target}.log"
    status=1
  else
    grep -E "stat::number_of_executed_units" "build-fuzz/fuzz_${target}.log" || true
  fi
done
exit $status

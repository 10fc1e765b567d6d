#!/usr/bin/env bash
# Bounded libFuzzer run of each target over its kept corpus (fuzz/corpus/<target>/), for CI.
# The kept corpus is copied first so a smoke run never edits the repository; new crashes are
# written to build-fuzz/crashes/ and fail the run.
#   FUZZ_SECONDS (default 30) per target. The targets run side by side: each one is a single
#   process, and one after another they left a core idle for the whole stage.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-30}"
targets=(fault_spec npy replay_token)
mkdir -p build-fuzz/crashes
pids=()
for target in "${targets[@]}"; do
  work="build-fuzz/corpus-${target}"
  rm -rf "$work" && mkdir -p "$work"
  cp -r "fuzz/corpus/${target}/." "$work/" 2>/dev/null || true
  echo "fuzz_${target}: ${seconds}s, $(ls "$work" | wc -l) seed inputs"
  "build-fuzz/bin/fuzz_${target}" -max_total_time="$seconds" -rss_limit_mb=2048 \
    -artifact_prefix="build-fuzz/crashes/${target}-" -print_final_stats=1 "$work" \
    > "build-fuzz/fuzz_${target}.log" 2>&1 &
  pids+=($!)
done
status=0
for i in "${!targets[@]}"; do
  target="${targets[$i]}"
  if ! wait "${pids[$i]}"; then
    echo "fuzz_${target}: FAILED (log: build-fuzz/fuzz_${target}.log)"
    tail -40 "build-fuzz/fuzz_${target}.log"
    status=1
  else
    echo "fuzz_${target}: $(grep -E "stat::number_of_executed_units" "build-fuzz/fuzz_${target}.log" || echo 'no stats line')"
  fi
done
exit $status

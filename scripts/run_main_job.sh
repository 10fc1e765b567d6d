#!/usr/bin/env bash
# The main job of `make run` (after the build): the default simulation campaign on the CPU backend.
#   scripts/run_main_job.sh          default campaign: a fixed seed range (so its DIGEST is the
#                                    same on every run of one build), swarm faults, every policy,
#                                    determinism self-check, coverage gate; about a minute. Writes
#                                    the JSON report and its HTML drawing (rcsim report).
#   scripts/run_main_job.sh --ci     CI campaign: two shards in parallel (one per core), denser
#                                    swarm faults, merged with `rcsim merge` (coverage gate on the
#                                    union); must inject >= 100000 faults; reports the count.
# Variables: RCSIM_SEEDS (default 0:1999), RCSIM_CI_SEEDS (0:11999), RCSIM_CI_BUDGET (10m, a
# safety cap: a campaign cut short by it exits 6), RCSIM_CI_FAULTS_MIN (100000), BUILD_DIR, OUT_DIR.
# Exit code: the campaign's (rcsim --help: 0 pass, 1 check failed, 2 usage, 3 crash,
# 4 nondeterminism, 5 coverage gate, 6 budget ran out, 7 liveness); 8 if too few faults (--ci).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
RCSIM="${BUILD_DIR}/bin/rcsim"
OUT_DIR="${OUT_DIR:-${BUILD_DIR}/campaign}"
mkdir -p "${OUT_DIR}"
[[ -x "${RCSIM}" ]] || { echo "run_main_job: ${RCSIM} not built (run make build)" >&2; exit 2; }

if [[ "${1:-}" != "--ci" ]]; then
  # Fixed seeds, not a time budget, decide the work: the digest must not depend on machine speed.
  # The budget is only a safety cap; if it is ever hit the campaign says "incomplete" and exits 6.
  rc=0
  "${RCSIM}" campaign --seeds "${RCSIM_SEEDS:-0:1999}" --budget 10m \
    --report "${OUT_DIR}/default_campaign.json" || rc=$?
  if [[ -s "${OUT_DIR}/default_campaign.json" ]]; then
    "${RCSIM}" report "${OUT_DIR}/default_campaign.json" --html "${OUT_DIR}/default_campaign.html"
  fi
  exit "${rc}"
fi

# CI: shard the seeds over two processes (the same mechanism as a CI matrix or a Slurm array),
# then merge the shard reports; the coverage gate applies to the union.
SEEDS="${RCSIM_CI_SEEDS:-0:11999}"
BUDGET="${RCSIM_CI_BUDGET:-10m}"
FAULTS_MIN="${RCSIM_CI_FAULTS_MIN:-100000}"
pids=()
for shard in 0 1; do
  "${RCSIM}" campaign --seeds "${SEEDS}" --shard "${shard}/2" --budget "${BUDGET}" \
    --faults swarm-dense --progress-seconds 30 --report "${OUT_DIR}/ci_shard${shard}.json" \
    > "${OUT_DIR}/ci_shard${shard}.log" 2>&1 &
  pids+=($!)
done
for i in 0 1; do
  wait "${pids[$i]}" || true  # the merge below decides the exit code
  tail -n 3 "${OUT_DIR}/ci_shard${i}.log"
done
rc=0
"${RCSIM}" merge "${OUT_DIR}/ci_shard0.json" "${OUT_DIR}/ci_shard1.json" \
  --report "${OUT_DIR}/ci_campaign.json" > "${OUT_DIR}/ci_merge.log" 2>&1 || rc=$?
tail -n 14 "${OUT_DIR}/ci_merge.log"
"${RCSIM}" report "${OUT_DIR}/ci_campaign.json" --html "${OUT_DIR}/ci_campaign.html" || true
total=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["faults_injected_total"])' \
  "${OUT_DIR}/ci_campaign.json" 2>/dev/null || echo 0)
echo "CI campaign: ${total} faults injected over 2 shards (minimum ${FAULTS_MIN})"
if (( total < FAULTS_MIN )); then
  echo "CI campaign: FAIL: fewer than ${FAULTS_MIN} faults injected" >&2
  (( rc == 0 )) && rc=8
fi
exit "${rc}"

#!/usr/bin/env bash
# The main job of `make run` (after the build): the default simulation campaign on the CPU backend.
#   scripts/run_main_job.sh          default campaign: a fixed seed range (so its DIGEST is the
#                                    same on every run of one build), swarm faults, every policy,
#                                    determinism self-check, coverage gate; about a minute.
#   scripts/run_main_job.sh --ci     CI campaign: two shards in parallel (one per core), denser
#                                    swarm faults, must inject >= 100000 faults; reports the count.
# Exit code: the campaign's (0 pass, 127 crash, 128 liveness, 129 correctness, 130 nondeterminism).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
RCSIM="${BUILD_DIR}/bin/rcsim"
OUT_DIR="${OUT_DIR:-${BUILD_DIR}/campaign}"
mkdir -p "${OUT_DIR}"
[[ -x "${RCSIM}" ]] || { echo "run_main_job: ${RCSIM} not built (run make build)" >&2; exit 1; }

if [[ "${1:-}" != "--ci" ]]; then
  # Fixed seeds, not a time budget, decide the work: the digest must not depend on machine speed.
  # The budget is only a safety cap; if it is ever hit the summary says "budget exhausted".
  exec "${RCSIM}" campaign --seeds "${RCSIM_SEEDS:-0:1999}" --budget 10m \
    --report "${OUT_DIR}/default_campaign.json"
fi

# CI: shard the seeds over two processes (the same mechanism as a CI matrix or a Slurm array).
SEEDS="${RCSIM_CI_SEEDS:-0:13999}"
BUDGET="${RCSIM_CI_BUDGET:-6m}"
FAULTS_MIN="${RCSIM_CI_FAULTS_MIN:-100000}"
pids=()
for shard in 0 1; do
  "${RCSIM}" campaign --seeds "${SEEDS}" --shard "${shard}/2" --budget "${BUDGET}" \
    --faults swarm-dense --report "${OUT_DIR}/ci_shard${shard}.json" \
    > "${OUT_DIR}/ci_shard${shard}.log" 2>&1 &
  pids+=($!)
done
rc=0
for i in 0 1; do
  wait "${pids[$i]}" || { code=$?; (( code > rc )) && rc=${code}; }
  tail -n 12 "${OUT_DIR}/ci_shard${i}.log"
done
total=0
for i in 0 1; do
  n=$(grep -o '"faults_injected_total": [0-9]*' "${OUT_DIR}/ci_shard${i}.json" | grep -o '[0-9]*$')
  total=$(( total + ${n:-0} ))
done
echo "CI campaign: ${total} faults injected over 2 shards (minimum ${FAULTS_MIN})"
if (( total < FAULTS_MIN )); then
  echo "CI campaign: FAIL: fewer than ${FAULTS_MIN} faults injected" >&2
  (( rc == 0 )) && rc=1
fi
exit "${rc}"

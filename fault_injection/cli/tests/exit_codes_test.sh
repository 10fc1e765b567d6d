#!/usr/bin/env bash
# Exit codes reached here through merge (7 liveness: no real run produces it; 4 nondeterminism, also
# reached by a real campaign in cli_exit_4_nondeterminism; 8 cross-backend:
# a CPU build cannot run the GPU side) and the
# precedence between outcomes, through `rcsim merge`: two real shard reports of a fault-free
# campaign, with one failure of a given verdict edited into one of them. Also merge's refusals
# (a shard twice, another build, not a report) and a missing shard (incomplete, exit 6).
set -uo pipefail
rcsim="$1"
work=$(mktemp -d)
trap 'rm -rf "${work}"' EXIT
cd "${work}"
failures=0
check() {  # check NAME WANT_CODE WANT_TEXT ARGS...
  local name="$1" want="$2" text="$3"; shift 3
  local out code
  out=$("${rcsim}" "$@" 2>&1); code=$?
  if [[ "${code}" != "${want}" || "${out}" != *"${text}"* ]]; then
    printf 'FAIL %s: exit %s (want %s), want text "%s"\n%s\n' "${name}" "${code}" "${want}" "${text}" "${out}"
    failures=$((failures + 1))
  else
    printf 'ok   %s: exit %s, "%s"\n' "${name}" "${code}" "${text}"
  fi
}
for i in 0 1; do
  "${rcsim}" campaign --seeds 0:7 --shard "${i}/2" --faults none --steps 4 --report "s${i}.json" \
    > /dev/null 2>&1 || { echo "shard ${i} failed"; exit 1; }
done
# edit VERDICT [VERDICT...]: s1.json with one failure per verdict, written to edited.json.
edit() {
  python3 - "$@" <<'PY'
import json, sys
r = json.load(open("s1.json"))
for i, verdict in enumerate(sys.argv[1:]):
    r["failures"].append({"seed": 1 + 2 * i, "verdict": verdict, "message": "edited in by the test",
                          "token": "rcsim1_edited_00000000"})
    r["passed"] -= 1
    r["failed"] += 1
json.dump(r, open("edited.json", "w"))
PY
}
check pass 0 "8 passed, 0 failed" merge s0.json s1.json --no-coverage-gate
check gate_on_union 5 "8 passed, 0 failed; gate: missing" merge s0.json s1.json
check incomplete 6 "4 passed, 0 failed; incomplete: 4 of 8 seeds" merge s0.json --no-coverage-gate
edit correctness; check correctness 1 "7 passed, 1 failed" merge s0.json edited.json --no-coverage-gate
edit crash; check crash 3 "FAIL seed=1 (crash)" merge s0.json edited.json --no-coverage-gate
edit nondeterminism; check nondeterminism 4 "FAIL seed=1 (nondeterminism)" merge s0.json edited.json --no-coverage-gate
edit liveness; check liveness 7 "7 passed, 1 failed" merge s0.json edited.json --no-coverage-gate
edit cross-backend; check cross_backend 8 "FAIL seed=1 (cross-backend)" merge s0.json edited.json --no-coverage-gate
edit correctness cross-backend; check precedence_cross_backend 8 "2 failed" merge s0.json edited.json
edit cross-backend nondeterminism; check precedence_nondeterminism_over_cross 4 "2 failed" merge s0.json edited.json
edit liveness correctness nondeterminism crash; check precedence_crash 3 "4 failed" merge s0.json edited.json
edit liveness correctness nondeterminism; check precedence_nondeterminism 4 "3 failed" merge s0.json edited.json
edit liveness correctness; check precedence_correctness 1 "2 failed" merge s0.json edited.json
edit liveness; check precedence_liveness_over_gate 7 "gate: missing" merge s0.json edited.json
check shard_twice 2 "shard 0 given twice" merge s0.json s0.json
python3 -c 'import json; r = json.load(open("s1.json")); r["build_id"] = "other"; json.dump(r, open("other.json", "w"))'
check other_build 2 "'build_id' differs" merge s0.json other.json
echo '{"runs": 1}' > bogus.json
check not_a_report 2 "not an rcsim campaign report" merge s0.json bogus.json
check missing_file 2 "nope.json: cannot open" merge s0.json nope.json
exit $(( failures > 0 ))

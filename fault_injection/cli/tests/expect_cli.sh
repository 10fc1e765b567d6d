#!/usr/bin/env bash
# One CLI expectation, run as its own CTest test:
#   expect_cli.sh RCSIM CODE SUBSTRING [VAR=VALUE ...] -- ARGS...
# Runs `RCSIM ARGS...` in a fresh empty directory with the given environment, and passes only if
# the exit code is CODE, stdout+stderr contain SUBSTRING, and, for a rejection (CODE 2), the
# directory is still empty afterwards (bad input writes nothing) and no run started.
set -uo pipefail
rcsim="$1"; want_code="$2"; want_text="$3"; shift 3
envs=()
while [[ $# -gt 0 && "$1" != "--" ]]; do envs+=("$1"); shift; done
[[ "${1:-}" == "--" ]] && shift
work=$(mktemp -d)
trap 'rm -rf "${work}"' EXIT
cd "${work}"
out=$(env -u RCSIM_FAULTS -u RCSIM_MUTANT "${envs[@]}" "${rcsim}" "$@" 2>&1)
code=$?
fail() { printf 'FAIL: %s\n--- command: %s %s\n--- output:\n%s\n' "$1" "${envs[*]}" "$*" "${out}"; exit 1; }
[[ "${code}" == "${want_code}" ]] || fail "exit code ${code}, expected ${want_code}"
[[ "${out}" == *"${want_text}"* ]] || fail "output lacks '${want_text}'"
if [[ "${want_code}" == 2 ]]; then
  [[ -z "$(ls -A "${work}")" ]] || fail "a rejected command wrote $(ls -A "${work}")"
  # RUNS/SUMMARY: a campaign or run started; "rcsim case: seed": a case call started.
  [[ "${out}" != *"RUNS "* && "${out}" != *"SUMMARY"* && "${out}" != *"rcsim case: seed"* ]] ||
    fail "a rejected command ran"
fi
echo "ok: exit ${code}, output has '${want_text}'"

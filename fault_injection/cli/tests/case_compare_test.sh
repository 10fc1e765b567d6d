#!/usr/bin/env bash
# `rcsim case --compare-to`: a run compared with an identical run passes (exit 0, COMPARE PASS);
# one bit changed in the other run's q, or in a V element of its qkv, fails (exit 1) and names
# the first (token, head, dim). Usage: case_compare_test.sh RCSIM CASE_FILE
set -uo pipefail
rcsim="$1"; case_file="$2"
work=$(mktemp -d)
trap 'rm -rf "${work}"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
"${rcsim}" case --in "${case_file}" --out "${work}/a" > /dev/null || fail "first run"
out=$("${rcsim}" case --in "${case_file}" --out "${work}/b" --compare-to "${work}/a" 2>&1)
[[ $? == 0 && "${out}" == *"COMPARE PASS"* ]] || fail "identical runs: ${out}"
# Flip the lowest bit of one 16-bit element of an .npy file (element index $3).
flip() {
  python3 - "$1" "$2" <<'PY'
import struct, sys
path, index = sys.argv[1], int(sys.argv[2])
data = bytearray(open(path, "rb").read())
header_len = struct.unpack("<H", data[8:10])[0]
offset = 10 + header_len + 2 * index
data[offset] ^= 1
open(path, "wb").write(bytes(data))
PY
}
cp -r "${work}/a" "${work}/q" && flip "${work}/q/q.npy" 3
out=$("${rcsim}" case --in "${case_file}" --out "${work}/c" --compare-to "${work}/q" 2>&1)
[[ $? == 1 && "${out}" == *"COMPARE FAIL"*"q differs at (token 0, head 0, dim 3)"* ]] ||
  fail "q bit flipped: ${out}"
# qkv columns: Hq + Hkv heads of D, then V. The case's config sets Hq, Hkv and D.
read -r hq hkv d < <(python3 -c "import json,sys; c=json.load(open(sys.argv[1]))['config']; print(c['num_heads_q'], c['num_heads_kv'], c['head_dim'])" "${case_file}")
cp -r "${work}/a" "${work}/v" && flip "${work}/v/qkv.npy" $(((hq + hkv) * d))
out=$("${rcsim}" case --in "${case_file}" --out "${work}/e" --compare-to "${work}/v" 2>&1)
[[ $? == 1 && "${out}" == *"qkv differs at (token 0, head $((hq + hkv)), dim 0)"* ]] ||
  fail "V bit flipped: ${out}"
echo "ok: identical runs pass; a flipped q bit and a flipped V bit fail with their coordinates"

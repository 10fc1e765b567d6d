#!/usr/bin/env bash
# RCSIM_DIGEST_TRACE / RCSIM_DIGEST_DUMP (fault_injection/sim/digest.h) do what docs/gpu-results.md says: the
# last traced running value is the printed DIGEST, the digest is the same with and without tracing, and the
# dump holds one file per hashed buffer. Usage: digest_trace_test.sh RCSIM_BINARY
set -euo pipefail
rcsim=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
args=(run --seed 7 --steps 4 --layers 1 --faults none --kv-cache fp8_e4m3fn)
plain=$("$rcsim" "${args[@]}" | grep '^DIGEST=')
mkdir "$dir/dump"
traced=$(RCSIM_DIGEST_TRACE=1 RCSIM_DIGEST_DUMP="$dir/dump" "$rcsim" "${args[@]}" 2>"$dir/trace" |
         grep '^DIGEST=')
[ "$plain" = "$traced" ] || { echo "FAIL: tracing changed the digest: $plain vs $traced"; exit 1; }
last=$(grep '^DIGEST_TRACE' "$dir/trace" | tail -1 | sed 's/.*running=//')
[ "DIGEST=$last" = "$plain" ] || { echo "FAIL: last traced value $last is not $plain"; exit 1; }
buffers=$(ls "$dir/dump" | wc -l)
[ "$buffers" -ge 4 ] || { echo "FAIL: $buffers dumped buffers (the final caches alone are 4)"; exit 1; }
echo "PASS: $(grep -c '^DIGEST_TRACE' "$dir/trace") updates traced, $buffers buffers dumped, $plain"

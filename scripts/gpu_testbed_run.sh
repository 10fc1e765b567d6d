#!/usr/bin/env bash
# The whole testbed on the real GPU kernels (issue 14), in one call on the GPU machine, < 9 min on
# an H200 host. Binaries are built here with the GPU build and carried in .gpu_carry/ (bin/, lib/,
# or carry.tar.gz: PACK_TAR=1 PACK_BINARIES="rcsim props_numeric ..." bench/pack_gpu_carry.sh
# build-gpu90); every log and JSON goes to $OUT; a summary table ends it.
#
#   1. GPU campaign, seeds 0:$SEEDS-1, swarm faults, every policy (by seed), --cross-backend: each
#      seed also runs on the CPU and must give the same digest (sharded over $SHARDS processes on
#      the GPU(s), merged with `rcsim merge`), plus the same seeds on the CPU backend alone: the
#      merged campaign digests must be equal.
#   2. The RapidCheck property suites on the GPU backend (RCSIM_PROPERTY_BACKEND=gpu), $CASES
#      cases per property (run side by side with step 1).
#   3. The planted device-only bug (mutant gpu-v-shuffle-index): the CPU campaign passes, the GPU
#      campaign and the GPU numeric property suite fail.
#   4. `rcsim case --backend gpu` on every examples/cases file: outputs byte-identical to cpu.
#   5. With >= 2 GPUs visible: the same GPU campaign with --devices 1 and --devices 2 (faults/s
#      ratio, digests equal).
#   6. `rcsim diff` on the Qwen3 shapes: realistic (headline) vs stress (random-sign) weights.
# Usage (device machine, repository root): bash scripts/gpu_testbed_run.sh
# Knobs: SEEDS (2000), SHARDS (8), CASES (100), DEV_SEEDS (600), NEG_SEEDS (40).
set -u
OUT=${OUT:-/tmp/rcsim_gpu_testbed}
mkdir -p "$OUT"
CARRY=${CARRY:-.gpu_carry}
if [ -f "$CARRY/carry.tar.gz" ] && [ ! -d "$CARRY/bin" ]; then  # PACK_TAR=1 bench/pack_gpu_carry.sh
  mkdir -p /tmp/rcsim_carry && tar -C /tmp/rcsim_carry -xzf "$CARRY/carry.tar.gz" && CARRY=/tmp/rcsim_carry
fi
case "$CARRY" in /*) ;; *) CARRY="$PWD/$CARRY" ;; esac
export LD_LIBRARY_PATH="$CARRY/lib:${LD_LIBRARY_PATH:-}"
export NCCL_NVLS_ENABLE=0
BIN="$CARRY/bin"
SEEDS=${SEEDS:-2000}
SHARDS=${SHARDS:-8}
CASES=${CASES:-100}
DEV_SEEDS=${DEV_SEEDS:-600}
NEG_SEEDS=${NEG_SEEDS:-40}
LOG="$OUT/run.log"
T0=$(date +%s)
declare -a ROWS=()
step() { echo "=== $1 ($(date -u +%H:%M:%S), +$(( $(date +%s) - T0 ))s)" | tee -a "$LOG"; }
row() { ROWS+=("$(printf '%-44s %-6s %s' "$1" "$2" "$3")"); echo "ROW $1 | $2 | $3" >> "$LOG"; }
verdict() { [ "$1" = "$2" ] && echo PASS || echo FAIL; }
last_seed=$((SEEDS - 1))

step info
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; date -u
  "$BIN/rcsim" run --help | head -1; } 2>&1 | tee -a "$LOG"
NGPU=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
echo "GPUs visible: $NGPU" | tee -a "$LOG"

# ---- 1 + 2: GPU campaign (cross-backend) and CPU campaign, property suites alongside ----------
step "campaign gpu --cross-backend + campaign cpu ($SEEDS seeds, $SHARDS shards each) + properties on gpu ($CASES cases)"
mkdir -p "$OUT/shards" "$OUT/props"
pids=()
for ((i = 0; i < SHARDS; i++)); do
  CUDA_VISIBLE_DEVICES=$((i % (NGPU > 0 ? NGPU : 1))) timeout 420 "$BIN/rcsim" campaign \
    --seeds "0:$last_seed" --budget 400s --backend gpu --cross-backend --shard "$i/$SHARDS" \
    --progress-seconds 0 --report "$OUT/shards/gpu$i.json" > "$OUT/shards/gpu$i.log" 2>&1 &
  pids+=($!)
  timeout 420 "$BIN/rcsim" campaign --seeds "0:$last_seed" --budget 400s --backend cpu \
    --shard "$i/$SHARDS" --progress-seconds 0 --report "$OUT/shards/cpu$i.json" \
    > "$OUT/shards/cpu$i.log" 2>&1 &
  pids+=($!)
done
suites=(numeric fp8 restore dispatch state_model field)
for s in "${suites[@]}"; do
  RCSIM_PROPERTY_BACKEND=gpu RCSIM_REQUIRE_GPU=1 RCSIM_PROPERTY_CASES=$CASES timeout 400 \
    "$BIN/props_$s" --gtest_filter='-*Negative*' > "$OUT/props/$s.log" 2>&1 &
  pids+=($!)
done
wait "${pids[@]}"
"$BIN/rcsim" merge "$OUT"/shards/gpu*.json --report "$OUT/campaign_gpu.json" > "$OUT/campaign_gpu.log" 2>&1
rc_gpu=$?
"$BIN/rcsim" merge "$OUT"/shards/cpu*.json --report "$OUT/campaign_cpu.json" > "$OUT/campaign_cpu.log" 2>&1
rc_cpu=$?
tail -25 "$OUT/campaign_gpu.log" | tee -a "$LOG"
tail -4 "$OUT/campaign_cpu.log" | tee -a "$LOG"
dg=$(grep -o 'DIGEST=[0-9a-f]*' "$OUT/campaign_gpu.log" | tail -1)
dc=$(grep -o 'DIGEST=[0-9a-f]*' "$OUT/campaign_cpu.log" | tail -1)
runs=$(python3 -c "import json;j=json.load(open('$OUT/campaign_gpu.json'));print(j['runs'],'runs',j['throughput']['cross_checked'],'seeds cross-checked',j['faults_injected_total'],'faults',j['failed'],'failed')" 2>/dev/null)
row "gpu campaign --cross-backend (exit 0)" "$(verdict $rc_gpu 0)" "exit $rc_gpu; $runs"
row "cpu campaign, same seeds (exit 0)" "$(verdict $rc_cpu 0)" "exit $rc_cpu"
row "campaign digest gpu == cpu" "$(verdict "$dg" "$dc")" "gpu $dg cpu $dc"
tp=$(grep '^THROUGHPUT' "$OUT/campaign_gpu.log" | tr '\n' ' ')
row "throughput (gpu, cpu twin)" "info" "$tp"
for s in "${suites[@]}"; do
  if grep -q '^\[  PASSED  \]' "$OUT/props/$s.log" && ! grep -q '^\[  FAILED  \]' "$OUT/props/$s.log"; then
    r=PASS; else r=FAIL; fi
  row "props_$s on gpu ($CASES cases)" "$r" "$(grep -E '^\[  (PASSED|FAILED)  \]' "$OUT/props/$s.log" | head -2 | tr '\n' ' ')"
done

# ---- 3: the planted device-only bug ---------------------------------------------------------
step "planted bug gpu-v-shuffle-index"
neg_last=$((NEG_SEEDS - 1))
timeout 120 "$BIN/rcsim" campaign --seeds "0:$neg_last" --backend cpu --mutant gpu-v-shuffle-index \
  --no-coverage-gate --progress-seconds 0 > "$OUT/neg_cpu_campaign.log" 2>&1
rc=$?; row "planted bug: cpu campaign passes (exit 0)" "$(verdict $rc 0)" "exit $rc, $(tail -1 "$OUT/neg_cpu_campaign.log")"
timeout 180 "$BIN/rcsim" campaign --seeds "0:$neg_last" --backend gpu --mutant gpu-v-shuffle-index \
  --no-coverage-gate --progress-seconds 0 > "$OUT/neg_gpu_campaign.log" 2>&1
rc=$?; row "planted bug: gpu campaign fails (exit 1)" "$(verdict $rc 1)" "exit $rc, $(tail -1 "$OUT/neg_gpu_campaign.log")"
grep -m1 '^FAIL seed' "$OUT/neg_gpu_campaign.log" | cut -c1-300 | tee -a "$LOG"
RCSIM_PROPERTY_BACKEND=gpu RCSIM_REQUIRE_GPU=1 RCSIM_PROPERTY_CASES=$CASES RCSIM_MUTANT=gpu-v-shuffle-index \
  timeout 200 "$BIN/props_numeric" --gtest_filter='-*Negative*' > "$OUT/neg_props_numeric.log" 2>&1
rc_neg=$?
nfail=$(grep -cE '^\[  FAILED  \]' "$OUT/neg_props_numeric.log")
# Caught = a property failed (gtest FAILED lines), not a crash, a timeout or a missing GPU.
rc=$rc_neg; row "planted bug: gpu props_numeric fails" "$([ "$nfail" -gt 0 ] && echo PASS || echo FAIL)" "exit $rc, $nfail FAILED lines"
grep -m3 -E 'Falsifiable|FAILED|first bad|mismatch' "$OUT/neg_props_numeric.log" | cut -c1-300 | tee -a "$LOG"
# (The same suite without the mutant is step 2's props_numeric row.)

# ---- 4: rcsim case on both backends ---------------------------------------------------------
step "rcsim case --backend gpu vs cpu"
for f in examples/cases/*.json; do
  n=$(basename "$f" .json)
  "$BIN/rcsim" case --in "$f" --backend cpu --out "$OUT/case/$n/cpu" > "$OUT/case_$n.log" 2>&1
  a=$?
  "$BIN/rcsim" case --in "$f" --backend gpu --out "$OUT/case/$n/gpu" >> "$OUT/case_$n.log" 2>&1
  b=$?
  same=yes
  for npy in "$OUT/case/$n/cpu"/*.npy; do
    cmp -s "$npy" "$OUT/case/$n/gpu/$(basename "$npy")" || { same="no ($(basename "$npy"))"; break; }
  done
  [ $a -eq 0 ] && [ $b -eq 0 ] && [ "$same" = yes ] && r=PASS || r=FAIL
  row "case $n: gpu outputs == cpu" "$r" "exit cpu $a gpu $b, identical: $same"
done

# ---- 5: --devices 1 vs 2 --------------------------------------------------------------------
if [ "$NGPU" -ge 2 ]; then
  step "campaign --devices 1 vs 2 ($DEV_SEEDS seeds)"
  dl=$((DEV_SEEDS - 1))
  for n in 1 2; do
    timeout 300 "$BIN/rcsim" campaign --seeds "0:$dl" --budget 290s --backend gpu --devices "$n" \
      --report "$OUT/devices$n.json" > "$OUT/devices$n.log" 2>&1
    echo "devices $n exit $?" | tee -a "$LOG"
    grep -E '^(DEVICE|DEVICES|THROUGHPUT|DIGEST|RUNS)' "$OUT/devices$n.log" | tee -a "$LOG"
  done
  python3 - "$OUT" >> "$LOG" 2>&1 <<'EOF'
import json, sys
out = sys.argv[1]
a, b = (json.load(open(f"{out}/devices{n}.json")) for n in (1, 2))
ratio = a["elapsed_seconds"] / b["elapsed_seconds"] if b["elapsed_seconds"] else 0
print(f"DEVICES_RATIO {ratio:.2f} (1 GPU {a['elapsed_seconds']:.1f}s, 2 GPUs {b['elapsed_seconds']:.1f}s) "
      f"digest {a['digest']} vs {b['digest']}")
EOF
  ratio=$(grep -o 'DEVICES_RATIO [0-9.]*' "$LOG" | tail -1 | cut -d' ' -f2)
  d1=$(grep -o 'DIGEST=[0-9a-f]*' "$OUT/devices1.log" | tail -1)
  d2=$(grep -o 'DIGEST=[0-9a-f]*' "$OUT/devices2.log" | tail -1)
  row "--devices 2 vs 1: digests equal" "$(verdict "$d1" "$d2")" "$d1 / $d2"
  row "--devices 2 vs 1: speed-up >= 1.8" "$(python3 -c "print('PASS' if float('${ratio:-0}') >= 1.8 else 'FAIL')")" "x${ratio:-?} ($(grep -o 'DEVICES_RATIO.*' "$LOG" | tail -1))"
else
  step "campaign --devices (1 GPU visible: smoke only)"
  timeout 120 "$BIN/rcsim" campaign --seeds 0:99 --backend gpu --devices all --no-coverage-gate \
    > "$OUT/devices_all.log" 2>&1
  rc=$?; row "--devices all on 1 GPU (no ratio: 1 GPU)" "$(verdict $rc 0)" "exit $rc, $(tail -1 "$OUT/devices_all.log")"
fi

# ---- 6: rcsim diff: realistic vs stress weights ---------------------------------------------
step "rcsim diff (realistic and stress weights)"
timeout 150 "$BIN/rcsim" diff --shapes qwen3 --tokens 1024 --kv auto fp8_e4m3fn \
  --report "$OUT/diff.json" > "$OUT/diff.log" 2>&1
rc=$?; row "rcsim diff (contract rows bit-exact)" "$(verdict $rc 0)" "exit $rc"
grep -E 'pr279' "$OUT/diff.log" | tee -a "$LOG"

step "summary (+$(( $(date +%s) - T0 ))s)"
{ printf '%-44s %-6s %s\n' "check" "result" "detail"
  for r in "${ROWS[@]}"; do echo "$r"; done; } | tee "$OUT/summary.txt" | tee -a "$LOG"
fails=$(printf '%s\n' "${ROWS[@]}" | awk '{ if ($0 ~ / FAIL /) n++ } END { print n + 0 }')
echo "TESTBED $( [ "$fails" -eq 0 ] && echo PASS || echo "FAIL ($fails rows)" ) in $(( $(date +%s) - T0 ))s" | tee -a "$LOG"

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
#   4. `rcsim case --backend gpu --compare-to <the cpu run>` on every examples/cases file: outputs
#      equal to the CPU backend's (computed ones by NaN class, core/nan_class.h; V copies bit for
#      bit).
#   5. With >= 2 GPUs visible: the same GPU campaign with --devices 1 and --devices 2 (faults/s
#      ratio, digests equal).
#   6. `rcsim diff` on the Qwen3 shapes: realistic (headline) vs stress (random-sign) weights.
# Usage (device machine, repository root): bash scripts/gpu_testbed_run.sh
# Knobs: SEEDS (2000), SHARDS (8), CASES (100), DEV_SEEDS (600), NEG_SEEDS (40), CARRY
# (.gpu_carry: the directory holding bin/ and lib/). Without a GPU every GPU row FAILs (the
# property suites are told RCSIM_REQUIRE_GPU=1), which is how the plumbing is checked off-device:
#   CARRY=build SEEDS=20 SHARDS=2 CASES=2 DEV_SEEDS=10 NEG_SEEDS=4 bash scripts/gpu_testbed_run.sh
# Output: one "ROW <check> | PASS|FAIL|info | <detail>" line per check in $OUT/run.log, the table
# in $OUT/summary.txt, and last "TESTBED PASS" or "TESTBED FAIL (n rows): <their names>".
set -u
[ -f property_tests/regressions.txt ] && [ -d examples/cases ] || {
  echo "gpu_testbed_run: run from the repository root (property_tests/regressions.txt not here)" >&2
  exit 2
}
# The property suites' stored counterexamples: the repository's copy, whatever path the binaries
# were built at (prop_harness.cc; a missing file aborts the suite instead of skipping it).
export RCSIM_REGRESSIONS_DIR="$PWD/property_tests"
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
declare -a FAILED=()
row() {
  ROWS+=("$(printf '%-56s %-6s %s' "$1" "$2" "$3")")
  [ "$2" = FAIL ] && FAILED+=("$1")
  echo "ROW $1 | $2 | $3" | tee -a "$LOG"
}
verdict() { [ -n "$1" ] && [ "$1" = "$2" ] && echo PASS || echo FAIL; }
last_seed=$((SEEDS - 1))

step info
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; date -u
  "$BIN/rcsim" run --help | head -1; git log -1 --format='commit %H %s' 2>/dev/null; } 2>&1 | tee -a "$LOG"
NGPU=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
[ -x "$BIN/rcsim" ] || { echo "gpu_testbed_run: $BIN/rcsim missing (CARRY=$CARRY)" | tee -a "$LOG"; exit 2; }
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
shard_rcs=""
for p in "${pids[@]}"; do wait "$p"; shard_rcs+="$? "; done
"$BIN/rcsim" merge "$OUT"/shards/gpu*.json --report "$OUT/campaign_gpu.json" > "$OUT/campaign_gpu.log" 2>&1
rc_gpu=$?
"$BIN/rcsim" merge "$OUT"/shards/cpu*.json --report "$OUT/campaign_cpu.json" > "$OUT/campaign_cpu.log" 2>&1
rc_cpu=$?
tail -25 "$OUT/campaign_gpu.log" | tee -a "$LOG"
tail -4 "$OUT/campaign_cpu.log" | tee -a "$LOG"
dg=$(grep -o 'DIGEST=[0-9a-f]*' "$OUT/campaign_gpu.log" | tail -1)
dc=$(grep -o 'DIGEST=[0-9a-f]*' "$OUT/campaign_cpu.log" | tail -1)
runs=$(python3 -c "import json;j=json.load(open('$OUT/campaign_gpu.json'));print(j['runs'],'runs',j['throughput']['cross_checked'],'seeds cross-checked',j['faults_injected_total'],'faults',j['failed'],'failed')" 2>/dev/null)
# The first 2*SHARDS exit codes are the campaign shards (gpu, cpu alternating), then the suites.
campaign_rcs=$(echo "$shard_rcs" | tr ' ' '\n' | head -$((2 * SHARDS)) | tr '\n' ' ')
bad_shards=$(echo "$campaign_rcs" | tr ' ' '\n' | grep -cv '^0*$')
row "campaign shards all exited 0 (gpu/cpu pairs)" "$([ "$bad_shards" -eq 0 ] && echo PASS || echo FAIL)" "exit codes: $campaign_rcs"
row "gpu campaign --cross-backend (exit 0)" "$(verdict $rc_gpu 0)" "exit $rc_gpu; $runs"
xb=$(grep -ho 'cross-backend: [^;]*' "$OUT"/shards/gpu*.log 2>/dev/null | head -3 | cut -c1-160 | tr '\n' ' ')
xseeds=$(grep -hE '^FAIL seed=[0-9]+.*cross-backend' "$OUT"/shards/gpu*.log 2>/dev/null | sed -E 's/^FAIL seed=([0-9]+).*/\1/' | sort -n | tr '\n' ' ')
# PASS only when every seed really ran on both backends and none differed.
xchecked=$(python3 -c "import json;print(json.load(open('$OUT/campaign_gpu.json'))['throughput']['cross_checked'])" 2>/dev/null || echo 0)
row "cross-backend: every seed's digest gpu == cpu" "$([ -z "$xseeds" ] && [ "$xchecked" = "$SEEDS" ] && echo PASS || echo FAIL)" "$xchecked of $SEEDS seeds cross-checked; ${xseeds:+differing seeds $xseeds; }${xb:-no cross-backend difference reported}"
row "cpu campaign, same seeds (exit 0)" "$(verdict $rc_cpu 0)" "exit $rc_cpu"
row "campaign digest gpu == cpu" "$(verdict "$dg" "$dc")" "gpu $dg cpu $dc"
tp=$(grep '^THROUGHPUT' "$OUT/campaign_gpu.log" | tr '\n' ' ')
row "throughput (gpu, cpu twin)" "info" "$tp"
read -r -a all_rcs <<< "$shard_rcs"
for i in "${!suites[@]}"; do
  s=${suites[$i]}
  src=${all_rcs[$((2 * SHARDS + i))]:-?}
  # PASS = exit 0 and gtest's PASSED line without a FAILED one; a suite that skipped (77: no GPU),
  # crashed, timed out (124) or lost its regressions file (abort) is a FAIL.
  if [ "$src" = 0 ] && grep -q '^\[  PASSED  \]' "$OUT/props/$s.log" && ! grep -q '^\[  FAILED  \]' "$OUT/props/$s.log"; then
    r=PASS; else r=FAIL; fi
  row "props_$s on gpu ($CASES cases)" "$r" "exit $src; $(grep -E '^\[  (PASSED|FAILED)  \]' "$OUT/props/$s.log" | head -2 | tr '\n' ' ')$(grep -m1 -E 'assertion failed|no GPU|skip' "$OUT/props/$s.log" | cut -c1-160)"
done
grep -h -m1 '^property regressions:' "$OUT"/props/*.log | head -1 | tee -a "$LOG"

# ---- 3: the planted device-only bug ---------------------------------------------------------
step "planted bug gpu-v-shuffle-index"
neg_last=$((NEG_SEEDS - 1))
timeout 120 "$BIN/rcsim" campaign --seeds "0:$neg_last" --backend cpu --mutant gpu-v-shuffle-index \
  --no-coverage-gate --progress-seconds 0 > "$OUT/neg_cpu_campaign.log" 2>&1
rc=$?; row "planted bug: cpu campaign passes (exit 0)" "$(verdict $rc 0)" "exit $rc, $(tail -1 "$OUT/neg_cpu_campaign.log")"
timeout 180 "$BIN/rcsim" campaign --seeds "0:$neg_last" --backend gpu --mutant gpu-v-shuffle-index \
  --no-coverage-gate --progress-seconds 0 > "$OUT/neg_gpu_campaign.log" 2>&1
rc=$?; row "planted bug: gpu campaign fails (exit 1)" "$(verdict $rc 1)" "exit $rc, $(tail -1 "$OUT/neg_gpu_campaign.log")"
grep -m1 '^FAIL seed=' "$OUT/neg_gpu_campaign.log" | cut -c1-300 | tee -a "$LOG"
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
  # --compare-to: computed outputs by NaN class, V copies bit for bit (exit 1 on a difference).
  "$BIN/rcsim" case --in "$f" --backend gpu --out "$OUT/case/$n/gpu" \
    --compare-to "$OUT/case/$n/cpu" >> "$OUT/case_$n.log" 2>&1
  b=$?
  bitsame=yes
  for npy in "$OUT/case/$n/cpu"/*.npy; do
    cmp -s "$npy" "$OUT/case/$n/gpu/$(basename "$npy")" || { bitsame="no ($(basename "$npy"))"; break; }
  done
  [ $a -eq 0 ] && [ $b -eq 0 ] && r=PASS || r=FAIL
  row "case $n: gpu outputs == cpu" "$r" "exit cpu $a gpu $b; $(grep -ho 'COMPARE [A-Z]*.*' "$OUT/case_$n.log" | cut -c1-120); byte-identical: $bitsame"
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
{ printf '%-56s %-6s %s\n' "check" "result" "detail"
  for r in "${ROWS[@]}"; do echo "$r"; done; } | tee "$OUT/summary.txt" | tee -a "$LOG"
# The verdict comes from the rows' own result column (FAILED), never from words in a detail.
fails=${#FAILED[@]}
if [ "$fails" -eq 0 ]; then verdict_line="TESTBED PASS (${#ROWS[@]} rows)"
else verdict_line="TESTBED FAIL ($fails of ${#ROWS[@]} rows): $(printf '%s; ' "${FAILED[@]}")"; fi
echo "$verdict_line in $(( $(date +%s) - T0 ))s" | tee -a "$LOG"
[ "$fails" -eq 0 ]

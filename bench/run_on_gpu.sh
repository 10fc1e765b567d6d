#!/usr/bin/env bash
# One batch on the GPU machine (issue 7 + 8): gpu tests, compute-sanitizer memcheck + racecheck,
# `rcsim diff` + the PyTorch/HF reference, the kernel benchmarks and the PyTorch peer. Binaries
# are built here with the cuda preset and carried in .gpu_carry/ (bin/ and lib/); every log and
# JSON goes to $OUT. Usage (device machine): bash bench/run_on_gpu.sh [steps...]
# steps: info tests sanitize diff bench profile profile_sizes profile_sources peer (default: all, in
# that order)
set -u
OUT=${OUT:-/tmp/rcsim_gpu_out}
mkdir -p "$OUT"
CARRY=${CARRY:-.gpu_carry}
export LD_LIBRARY_PATH="$PWD/$CARRY/lib:${LD_LIBRARY_PATH:-}"
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1
BIN="$CARRY/bin"
LOG="$OUT/run.log"
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(info tests sanitize diff bench profile profile_sizes profile_sources peer)
step() { echo "=== $1 ($(date -u +%H:%M:%S))" | tee -a "$LOG"; }
for s in "${steps[@]}"; do
  case "$s" in
    info)
      step info
      { nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; date -u;
        python3 -c 'import torch,transformers;print("torch",torch.__version__,"transformers",transformers.__version__)'; } 2>&1 | tee -a "$LOG" ;;
    tests)
      step tests
      RCSIM_REQUIRE_GPU=1 timeout 400 "$BIN/gpu_backend_test" 2>&1 | tail -60 | tee -a "$LOG"
      echo "gpu_backend_test exit ${PIPESTATUS[0]}" | tee -a "$LOG" ;;
    sanitize)
      # The exhaustive sweeps (billions of threads, no memory traffic to check) and the largest
      # shapes stay out: under the sanitizers they would take the call's time (the page-size sweep
      # alone took 85 s under memcheck in the sixteenth pass's run of record).
      for tool in memcheck racecheck; do
        step "compute-sanitizer $tool"
        RCSIM_REQUIRE_GPU=1 RCSIM_GPU_QUICK=1 timeout 300 compute-sanitizer --tool "$tool" \
          --error-exitcode 99 "$BIN/gpu_backend_test" \
          --gtest_filter='-*AiterGrid*:*Qwen3Shapes*:*FourGiB*:*TrueDivisionOnTheDevice*:*Reciprocal*:*Fp8Scale*:*FastDivisor*' 2>&1 | tail -15 | tee -a "$LOG"
        echo "compute-sanitizer $tool exit ${PIPESTATUS[0]}" | tee -a "$LOG"
      done ;;
    diff)
      step diff
      mkdir -p /tmp/rcsim_dump
      timeout 300 "$BIN/rcsim" diff --shapes qwen3 --tokens 1024 --kv auto fp8_e4m3fn \
        --report "$OUT/diff.json" --dump-dir /tmp/rcsim_dump 2>&1 | tee -a "$LOG"
      echo "rcsim diff exit ${PIPESTATUS[0]}" | tee -a "$LOG"
      step torch_reference
      timeout 200 python3 tools/torch_reference.py /tmp/rcsim_dump --out "$OUT/torch_diff.json" 2>&1 | tee -a "$LOG" ;;
    bench)
      step gpu_bench
      # --draws 8: the small-batch fused rows again on eight more input draws (their spread).
      timeout 420 "$BIN/gpu_bench" --draws 8 --out "$OUT/gpu_bench.json" > "$OUT/gpu_bench.log" 2>&1
      echo "gpu_bench exit $?" | tee -a "$LOG"; grep -E "device|copy|qwen3-8b .* (fused|nonfused_chain|policy)" "$OUT/gpu_bench.log" | tail -40 ;;
    profile)
      # Nsight Compute, one launch of each kernel at Qwen3-8B T=32768 (gpu_bench --profile): time,
      # warp instructions, issue-slot and DRAM utilisation, occupancy, registers, DRAM bytes.
      step "nsight compute"
      timeout 400 ncu --csv --metrics gpu__time_duration.sum,sm__inst_executed.sum,smsp__issue_active.avg.pct_of_peak_sustained_active,dram__throughput.avg.pct_of_peak_sustained_elapsed,sm__warps_active.avg.pct_of_peak_sustained_active,launch__registers_per_thread,launch__block_size,launch__grid_size,dram__bytes_read.sum,dram__bytes_write.sum \
        "$BIN/gpu_bench" --profile --out /tmp/profile_unused.json > "$OUT/ncu.csv" 2> "$OUT/ncu.log"
      echo "ncu exit $?" | tee -a "$LOG"; grep -c '"' "$OUT/ncu.csv" | sed 's/^/ncu csv lines: /' | tee -a "$LOG" ;;
    profile_sizes)
      # Where the launches of the issue's other sizes lose time (BENCHMARKS.md, measured causes).
      # T=4096: how much of each launch the SMs are busy (ramp-up and the last wave show as idle
      # SM cycles). T=1: the fused kernels' stall reasons and source counters (one block's chain);
      # bench/ncu_source_summary.py ncu_t1_source.csv.gz K prints kernel K's.
      step "nsight compute, T=4096 and T=1"
      timeout 300 ncu --csv --metrics gpu__time_duration.sum,sm__cycles_active.avg,sm__cycles_active.max,sm__cycles_elapsed.avg,sm__warps_active.avg.pct_of_peak_sustained_elapsed,dram__throughput.avg.pct_of_peak_sustained_elapsed,launch__grid_size \
        "$BIN/gpu_bench" --profile-tokens 4096 --out /tmp/profile_unused.json > "$OUT/ncu_t4096.csv" 2> "$OUT/ncu_t4096.log"
      echo "ncu T=4096 exit $?" | tee -a "$LOG"
      timeout 300 ncu --section SourceCounters --section WarpStateStats --metrics gpu__time_duration.sum \
        -k regex:'^fused_tiled' -f -o /tmp/rcsim_ncu_t1 "$BIN/gpu_bench" --profile-tokens 1 \
        --out /tmp/profile_unused.json > "$OUT/ncu_t1.log" 2>&1
      echo "ncu T=1 exit $?" | tee -a "$LOG"
      ncu -i /tmp/rcsim_ncu_t1.ncu-rep --page source --print-source sass --csv 2>/dev/null | gzip > "$OUT/ncu_t1_source.csv.gz"
      ncu -i /tmp/rcsim_ncu_t1.ncu-rep --page details --csv 2>/dev/null > "$OUT/ncu_t1_details.csv" ;;
    profile_sources)
      # Where the fp8 kernels' instructions and stalls go at T=32768 (BENCHMARKS.md, measured
      # causes of the fp8 gaps): source counters and warp states of every fused and cache-writer
      # launch of `gpu_bench --profile --kv fp8` (prefill, then decode). Summaries:
      # python3 bench/ncu_source_summary.py ncu_source_fp8.csv.gz K. ncu's source page lists each launch
      # twice: K = 0 fused, 2 per-token writer, 4 the chain's writer, 6 and 8 fused and writer in decode.
      step "nsight compute, fp8 source counters"
      timeout 400 ncu --section SourceCounters --section WarpStateStats --metrics gpu__time_duration.sum \
        -k regex:'^(fused_tiled|cache_tiled)' -f -o /tmp/rcsim_ncu_src "$BIN/gpu_bench" --profile --kv fp8 \
        --out /tmp/profile_unused.json > "$OUT/ncu_source_fp8.log" 2>&1
      echo "ncu sources exit $?" | tee -a "$LOG"
      ncu -i /tmp/rcsim_ncu_src.ncu-rep --page source --print-source sass --csv 2>/dev/null | gzip > "$OUT/ncu_source_fp8.csv.gz" ;;
    peer)
      step torch_peer
      timeout 400 python3 bench/torch_peer.py --out "$OUT/torch_peer.json" \
        --shapes "${PEER_SHAPES:-qwen3-8b}" 2>&1 | tee "$OUT/torch_peer.log" | tail -40 ;;
  esac
done
step done

#!/usr/bin/env bash
# Call 4 of the seventeenth pass: where the fused kernels lose at T=4096 against T=32768, at the
# benchmark's boost clock (ncu --clock-control none; caches flushed before each launch, as ncu
# does by default): one launch each of the fused kernel and the cache writer, prefill slots,
# Qwen3-8B, bf16 and fp8, base binaries (45c1293).
set -u
C=.gpu_carry
R=$OUT/r; mkdir -p $R
mkdir -p /tmp/base && tar -C /tmp/base -xzf $C/base.tar.gz
export LD_LIBRARY_PATH=/tmp/base/lib
date -u > $R/date.txt
M=gpu__time_duration.sum,sm__cycles_active.avg,sm__cycles_elapsed.avg,smsp__issue_active.avg.pct_of_peak_sustained_active,smsp__inst_executed.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,sm__warps_active.avg.pct_of_peak_sustained_active,launch__grid_size
for T in 4096 32768; do
  for kv in bf16 fp8; do
    timeout 120 ncu --clock-control none --csv --metrics $M -k regex:'^(fused_tiled|cache_tiled)' --launch-count 2 \
      /tmp/base/bin/gpu_bench --profile-tokens $T --kv $kv --out /tmp/p.json > $R/ncu_boost_${T}_$kv.csv 2> $R/ncu_boost_${T}_$kv.log
    echo "exit $?" >> $R/ncu_boost_${T}_$kv.log
  done
done
tar -C $OUT -czf $OUT/call4.tar.gz r && rm -rf $R

#!/usr/bin/env bash
# Call 6 of the seventeenth pass: is call 4's single launch (fp8 T=4096 as fast as bf16) more than one
# sample? Five processes per (dtype, cache control), one launch each of the fused kernel and the
# cache writer, Qwen3-8B prefill T=4096, boost clock; caches flushed before the launch (all) or left
# as the setup's copies left them (none). base binaries (45c1293).
set -u
C=.gpu_carry
R=$OUT/r; mkdir -p $R
mkdir -p /tmp/base && tar -C /tmp/base -xzf $C/base.tar.gz
export LD_LIBRARY_PATH=/tmp/base/lib
date -u > $R/date.txt
M=gpu__time_duration.sum,sm__cycles_active.avg,sm__cycles_elapsed.avg,smsp__issue_active.avg.pct_of_peak_sustained_active,smsp__inst_executed.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,sm__warps_active.avg.pct_of_peak_sustained_active,launch__grid_size
for i in 1 2 3 4 5; do
  for cc in all none; do
    for kv in bf16 fp8; do
      timeout 60 ncu --clock-control none --cache-control $cc --csv --metrics $M -k regex:'^(fused_tiled|cache_tiled)' --launch-count 2 \
        /tmp/base/bin/gpu_bench --profile-tokens 4096 --kv $kv --out /tmp/p.json > $R/ncu_${cc}_${kv}_$i.csv 2> $R/ncu_${cc}_${kv}_$i.log
      echo "exit $?" >> $R/ncu_${cc}_${kv}_$i.log
    done
  done
done
tar -C $OUT -czf $OUT/call6.tar.gz r && rm -rf $R

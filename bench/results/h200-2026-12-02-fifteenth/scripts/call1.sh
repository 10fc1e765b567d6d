#!/usr/bin/env bash
# Call 1 of the fifteenth pass: new kernels' gpu_backend_test (with the new sweeps), base/new
# alternated gpu_bench --quick x3, ncu instruction counts base vs new, fp8 source counters of new.
set -u
C=.gpu_carry
R=$OUT/r; mkdir -p $R
for b in base new; do mkdir -p /tmp/$b && tar -C /tmp/$b -xzf $C/$b.tar.gz; done
run() { local b=$1; shift; LD_LIBRARY_PATH=/tmp/$b/lib "$@"; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > $R/smi.txt 2>&1
date -u > $R/date.txt
run new env RCSIM_REQUIRE_GPU=1 timeout 240 /tmp/new/bin/gpu_backend_test > $R/gpu_backend_test.log 2>&1
echo "gpu_backend_test exit $?" >> $R/gpu_backend_test.log
for i in 1 2 3; do
  for b in base new; do
    run $b timeout 60 /tmp/$b/bin/gpu_bench --quick --out /tmp/q_${b}_$i.json > $R/quick_${b}_$i.log 2>&1
  done
done
for b in base new; do
  run $b timeout 120 ncu --csv --metrics gpu__time_duration.sum,sm__inst_executed.sum,smsp__issue_active.avg.pct_of_peak_sustained_active,launch__registers_per_thread \
    -k regex:'^(fused_tiled|cache_tiled)' --launch-count 3 /tmp/$b/bin/gpu_bench --profile --kv fp8 --out /tmp/p.json > $R/ncu_inst_$b.csv 2>$R/ncu_inst_$b.log
done
run new timeout 150 ncu --section SourceCounters --section WarpStateStats --metrics gpu__time_duration.sum \
  -k regex:'^(fused_tiled|cache_tiled)' --launch-count 2 -f -o /tmp/src /tmp/new/bin/gpu_bench --profile --kv fp8 --out /tmp/p.json > $R/ncu_src.log 2>&1
ncu -i /tmp/src.ncu-rep --page source --print-source sass --csv 2>/dev/null | gzip > $R/ncu_source_fp8_new.csv.gz
tar -C $OUT -czf $OUT/call1.tar.gz r && rm -rf $R

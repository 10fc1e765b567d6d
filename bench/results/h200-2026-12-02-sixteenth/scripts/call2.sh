#!/usr/bin/env bash
# Call 2 of the sixteenth pass: `k4` (new with four K heads per block of the fused kernel instead of
# two) against `new`: gpu_backend_test of k4, new / k4 alternated gpu_bench --quick x3, instruction
# counts of both; source counters of new's fused fp8 kernel and per-token writer at T=32768.
set -u
C=.gpu_carry
R=$OUT/r; mkdir -p $R
for b in new k4; do mkdir -p /tmp/$b && tar -C /tmp/$b -xzf $C/$b.tar.gz; done
run() { local b=$1; shift; LD_LIBRARY_PATH=/tmp/$b/lib "$@"; }
date -u > $R/date.txt
run k4 env RCSIM_REQUIRE_GPU=1 timeout 200 /tmp/k4/bin/gpu_backend_test > $R/gpu_backend_test_k4.log 2>&1
echo "gpu_backend_test exit $?" >> $R/gpu_backend_test_k4.log
for i in 1 2 3; do
  for b in new k4; do
    run $b timeout 60 /tmp/$b/bin/gpu_bench --quick --out /tmp/q_${b}_$i.json > $R/quick_${b}_$i.log 2>&1
  done
done
for b in new k4; do
  for kv in fp8 bf16; do
    run $b timeout 60 ncu --csv --metrics gpu__time_duration.sum,sm__inst_executed.sum,launch__registers_per_thread \
      -k regex:'^fused_tiled' --launch-count 1 /tmp/$b/bin/gpu_bench --profile --kv $kv --out /tmp/p.json > $R/ncu_inst_${b}_$kv.csv 2>$R/ncu_inst_${b}_$kv.log
  done
done
run new timeout 120 ncu --section SourceCounters --section WarpStateStats --metrics gpu__time_duration.sum \
  -k regex:'^(fused_tiled|cache_tiled)' --launch-count 2 -f -o /tmp/src /tmp/new/bin/gpu_bench --profile --kv fp8 --out /tmp/p.json > $R/ncu_src.log 2>&1
ncu -i /tmp/src.ncu-rep --page source --print-source sass --csv 2>/dev/null | gzip > $R/ncu_source_fp8_new.csv.gz
tar -C $OUT -czf $OUT/call2.tar.gz r && rm -rf $R

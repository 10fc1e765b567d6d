#!/usr/bin/env bash
# Call 3 of the sixteenth pass: `new2` (new with four K heads per block of the fused kernel only in
# launches of four waves or more, two below) against `new`: gpu_backend_test of new2, new / new2
# alternated gpu_bench --quick x3, instruction counts of new2's fused kernels at T=32768.
set -u
C=.gpu_carry
R=$OUT/r; mkdir -p $R
for b in new new2; do mkdir -p /tmp/$b && tar -C /tmp/$b -xzf $C/$b.tar.gz; done
run() { local b=$1; shift; LD_LIBRARY_PATH=/tmp/$b/lib "$@"; }
date -u > $R/date.txt
run new2 env RCSIM_REQUIRE_GPU=1 timeout 200 /tmp/new2/bin/gpu_backend_test > $R/gpu_backend_test_new2.log 2>&1
echo "gpu_backend_test exit $?" >> $R/gpu_backend_test_new2.log
for i in 1 2 3; do
  for b in new new2; do
    run $b timeout 60 /tmp/$b/bin/gpu_bench --quick --out /tmp/q_${b}_$i.json > $R/quick_${b}_$i.log 2>&1
  done
done
for kv in fp8 bf16; do
  run new2 timeout 60 ncu --csv --metrics gpu__time_duration.sum,sm__inst_executed.sum,launch__registers_per_thread \
    -k regex:'^fused_tiled' --launch-count 1 /tmp/new2/bin/gpu_bench --profile --kv $kv --out /tmp/p.json > $R/ncu_inst_new2_$kv.csv 2>$R/ncu_inst_new2_$kv.log
done
tar -C $OUT -czf $OUT/call3.tar.gz r && rm -rf $R

#!/usr/bin/env bash
# Call 1 of the seventeenth pass: gpu_backend_test of base (45c1293, the page-size sweep on the
# shared grid-stride loop, never run on a GPU) and of v2; base, v1 (blocks by role: V, K, Q) and
# v2 (v1 + the fewest Q heads per block that keep one block per SM in the one-head band)
# alternated, three gpu_bench --quick runs each.
set -u
C=.gpu_carry
R=$OUT/r; mkdir -p $R
for b in base v1 v2; do mkdir -p /tmp/$b && tar -C /tmp/$b -xzf $C/$b.tar.gz; done
run() { local b=$1; shift; LD_LIBRARY_PATH=/tmp/$b/lib "$@"; }
date -u > $R/date.txt
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv > $R/smi.txt 2>&1
for b in base v2; do
  s=$(date +%s)
  run $b env RCSIM_REQUIRE_GPU=1 timeout 200 /tmp/$b/bin/gpu_backend_test > $R/gpu_backend_test_$b.log 2>&1
  echo "gpu_backend_test exit $? ($(( $(date +%s) - s )) s)" >> $R/gpu_backend_test_$b.log
done
for i in 1 2 3; do
  for b in base v1 v2; do
    s=$(date +%s)
    run $b timeout 60 /tmp/$b/bin/gpu_bench --quick --out /tmp/q_${b}_$i.json > $R/quick_${b}_$i.log 2>&1
    echo "exit $? ($(( $(date +%s) - s )) s)" >> $R/quick_${b}_$i.log
  done
done
tar -C $OUT -czf $OUT/call1.tar.gz r && rm -rf $R

#!/usr/bin/env bash
# Call 3 of the seventeenth pass: gpu_backend_test of v5 (the four-V-head kernel from four waves of
# resident blocks instead of sixteen: Qwen3-8B fp8 T=4096 takes it); base (45c1293) and v5
# alternated, three gpu_bench --quick runs each.
set -u
C=.gpu_carry
R=$OUT/r; mkdir -p $R
for b in base v5; do mkdir -p /tmp/$b && tar -C /tmp/$b -xzf $C/$b.tar.gz; done
run() { local b=$1; shift; LD_LIBRARY_PATH=/tmp/$b/lib "$@"; }
date -u > $R/date.txt
s=$(date +%s)
run v5 env RCSIM_REQUIRE_GPU=1 timeout 200 /tmp/v5/bin/gpu_backend_test > $R/gpu_backend_test_v5.log 2>&1
echo "gpu_backend_test exit $? ($(( $(date +%s) - s )) s)" >> $R/gpu_backend_test_v5.log
for i in 1 2 3; do
  for b in base v5; do
    s=$(date +%s)
    run $b timeout 60 /tmp/$b/bin/gpu_bench --quick --out /tmp/q_${b}_$i.json > $R/quick_${b}_$i.log 2>&1
    echo "exit $? ($(( $(date +%s) - s )) s)" >> $R/quick_${b}_$i.log
  done
done
tar -C $OUT -czf $OUT/call3.tar.gz r && rm -rf $R

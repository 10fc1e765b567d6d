#!/usr/bin/env bash
# Call 4 of the fifteenth pass: the writer's loads stepped from head to head (new3) against new2;
# gpu_backend_test of new3, then new2 / new3 alternated gpu_bench --quick x3, and instruction counts.
set -u
C=.gpu_carry
R=$OUT/r; mkdir -p $R
for b in new2 new3; do mkdir -p /tmp/$b && tar -C /tmp/$b -xzf $C/$b.tar.gz; done
run() { local b=$1; shift; LD_LIBRARY_PATH=/tmp/$b/lib "$@"; }
date -u > $R/date.txt
run new3 env RCSIM_REQUIRE_GPU=1 timeout 200 /tmp/new3/bin/gpu_backend_test > $R/gpu_backend_test_new3.log 2>&1
echo "gpu_backend_test exit $?" >> $R/gpu_backend_test_new3.log
for i in 1 2 3; do
  for b in new2 new3; do
    run $b timeout 60 /tmp/$b/bin/gpu_bench --quick --out /tmp/q_${b}_$i.json > $R/quick_${b}_$i.log 2>&1
  done
done
for b in new2 new3; do
  run $b timeout 60 ncu --csv --metrics gpu__time_duration.sum,sm__inst_executed.sum \
    -k regex:'^cache_tiled' --launch-count 1 /tmp/$b/bin/gpu_bench --profile --kv fp8 --out /tmp/p.json > $R/ncu_inst_$b.csv 2>$R/ncu_inst_$b.log
done
tar -C $OUT -czf $OUT/call4.tar.gz r && rm -rf $R

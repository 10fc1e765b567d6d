#!/usr/bin/env bash
# Call 2 of the fifteenth pass: gpu_backend_test of new2 (writer strides, no NaN test in the
# writer, the non-fused special-value test); the planted bug (fp8_scale without its correction);
# base / new1 / new2 alternated gpu_bench --quick x3; ncu counts and writer source counters of new2.
set -u
C=.gpu_carry
R=$OUT/r; mkdir -p $R
for b in base new1 new2 plant; do mkdir -p /tmp/$b && tar -C /tmp/$b -xzf $C/$b.tar.gz; done
run() { local b=$1; shift; LD_LIBRARY_PATH=/tmp/$b/lib "$@"; }
date -u > $R/date.txt
run new2 env RCSIM_REQUIRE_GPU=1 timeout 200 /tmp/new2/bin/gpu_backend_test > $R/gpu_backend_test_new2.log 2>&1
echo "gpu_backend_test exit $?" >> $R/gpu_backend_test_new2.log
run plant env RCSIM_REQUIRE_GPU=1 timeout 150 /tmp/plant/bin/gpu_backend_test --gtest_filter='-*AiterGrid*:*FourGiB*' > $R/gpu_backend_test_planted.log 2>&1
echo "gpu_backend_test exit $?" >> $R/gpu_backend_test_planted.log
for i in 1 2 3; do
  for b in base new1 new2; do
    run $b timeout 60 /tmp/$b/bin/gpu_bench --quick --out /tmp/q_${b}_$i.json > $R/quick_${b}_$i.log 2>&1
  done
done
run new2 timeout 100 ncu --csv --metrics gpu__time_duration.sum,sm__inst_executed.sum,smsp__issue_active.avg.pct_of_peak_sustained_active,dram__throughput.avg.pct_of_peak_sustained_elapsed,launch__registers_per_thread \
  -k regex:'^(fused_tiled|cache_tiled)' --launch-count 3 /tmp/new2/bin/gpu_bench --profile --kv fp8 --out /tmp/p.json > $R/ncu_inst_new2.csv 2>$R/ncu_inst_new2.log
run new2 timeout 100 ncu --section SourceCounters --section WarpStateStats --metrics gpu__time_duration.sum \
  -k regex:'^cache_tiled' --launch-count 1 -f -o /tmp/src /tmp/new2/bin/gpu_bench --profile --kv fp8 --out /tmp/p.json > $R/ncu_src.log 2>&1
ncu -i /tmp/src.ncu-rep --page source --print-source sass --csv 2>/dev/null | gzip > $R/ncu_source_fp8_writer_new2.csv.gz
tar -C $OUT -czf $OUT/call2.tar.gz r && rm -rf $R

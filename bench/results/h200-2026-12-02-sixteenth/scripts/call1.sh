#!/usr/bin/env bash
# Call 1 of the sixteenth pass: gpu_backend_test and gpu_faulty_kernels_test of `new` (the page size
# divided by a prepared multiply and shift, the tile and head group from a two-dimensional grid);
# base (d3abd06) and new alternated, three gpu_bench --quick runs each; Nsight Compute instruction
# counts of the tiled kernels at T=32768, both builds, both cache types.
set -u
C=.gpu_carry
R=$OUT/r; mkdir -p $R
for b in base new; do mkdir -p /tmp/$b && tar -C /tmp/$b -xzf $C/$b.tar.gz; done
run() { local b=$1; shift; LD_LIBRARY_PATH=/tmp/$b/lib "$@"; }
date -u > $R/date.txt
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv > $R/smi.txt 2>&1
run new env RCSIM_REQUIRE_GPU=1 timeout 240 /tmp/new/bin/gpu_backend_test > $R/gpu_backend_test_new.log 2>&1
echo "gpu_backend_test exit $?" >> $R/gpu_backend_test_new.log
run new env RCSIM_REQUIRE_GPU=1 timeout 60 /tmp/new/bin/gpu_faulty_kernels_test > $R/gpu_faulty_kernels_test_new.log 2>&1
echo "gpu_faulty_kernels_test exit $?" >> $R/gpu_faulty_kernels_test_new.log
for i in 1 2 3; do
  for b in base new; do
    run $b timeout 60 /tmp/$b/bin/gpu_bench --quick --out /tmp/q_${b}_$i.json > $R/quick_${b}_$i.log 2>&1
  done
done
for b in base new; do
  for kv in fp8 bf16; do
    run $b timeout 60 ncu --csv --metrics gpu__time_duration.sum,sm__inst_executed.sum,smsp__issue_active.avg.pct_of_peak_sustained_active,dram__throughput.avg.pct_of_peak_sustained_elapsed,launch__registers_per_thread \
      -k regex:'^(fused_tiled|cache_tiled|rms_norm_tiled|rotary_tiled)' --launch-count 6 /tmp/$b/bin/gpu_bench --profile --kv $kv --out /tmp/p.json > $R/ncu_inst_${b}_$kv.csv 2>$R/ncu_inst_${b}_$kv.log
  done
done
tar -C $OUT -czf $OUT/call1.tar.gz r && rm -rf $R

#!/usr/bin/env bash
# Call 3 of the nineteenth pass: the run of record again, now with gpu_bench --draws 8 (every step of
# bench/run_on_gpu.sh; the kernels are call 2's, gpu_bench gained --draws), gpu_faulty_kernels_test,
# the testbed (SEEDS=1500); then Nsight Compute on the small batches' fused launches (T = 1, 8, 64):
# instructions and active cycles per SM, busiest against average (which blocks share an SM).
set -u
export PATH=/usr/local/cuda/bin:$PATH
tar -C .gpu_carry -xzf .gpu_carry/carry.tar.gz
R=$OUT/r; mkdir -p $R
OUT=$R/bench CARRY=.gpu_carry bash bench/run_on_gpu.sh > $R/bench_console.log 2>&1
LD_LIBRARY_PATH=$PWD/.gpu_carry/lib RCSIM_REQUIRE_GPU=1 timeout 60 .gpu_carry/bin/gpu_faulty_kernels_test > $R/gpu_faulty_kernels_test.log 2>&1
echo "exit $?" >> $R/gpu_faulty_kernels_test.log
OUT=$R/testbed SEEDS=1500 timeout 200 bash scripts/gpu_testbed_run.sh > $R/testbed_console.log 2>&1
echo "testbed exit $?" >> $R/testbed_console.log
for t in 1 8 64; do
  LD_LIBRARY_PATH=$PWD/.gpu_carry/lib timeout 60 ncu --csv -k regex:'^fused_tiled' --metrics \
    gpu__time_duration.sum,sm__inst_executed.max,sm__inst_executed.avg,sm__inst_executed.sum,sm__cycles_active.max,sm__cycles_active.avg,smsp__inst_executed.max,smsp__inst_executed.avg,launch__grid_size,sm__ctas_launched.max,sm__ctas_launched.avg \
    .gpu_carry/bin/gpu_bench --profile-tokens $t --out /tmp/unused.json > $R/ncu_sm_t$t.csv 2> $R/ncu_sm_t$t.log
  echo "ncu T=$t exit $?" >> $R/ncu_sm_t$t.log
done
tar -C $OUT -czf $OUT/call3.tar.gz r && rm -rf $R

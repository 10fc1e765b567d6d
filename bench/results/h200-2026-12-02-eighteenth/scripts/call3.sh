#!/usr/bin/env bash
# Call 3 of the eighteenth pass: the run of record (every step of bench/run_on_gpu.sh),
# gpu_faulty_kernels_test, then the testbed (SEEDS=1500) on the same binaries.
set -u
tar -C .gpu_carry -xzf .gpu_carry/carry.tar.gz
R=$OUT/r; mkdir -p $R
OUT=$R/bench CARRY=.gpu_carry bash bench/run_on_gpu.sh > $R/bench_console.log 2>&1
LD_LIBRARY_PATH=$PWD/.gpu_carry/lib RCSIM_REQUIRE_GPU=1 timeout 60 .gpu_carry/bin/gpu_faulty_kernels_test > $R/gpu_faulty_kernels_test.log 2>&1
echo "exit $?" >> $R/gpu_faulty_kernels_test.log
OUT=$R/testbed SEEDS=1500 timeout 200 bash scripts/gpu_testbed_run.sh > $R/testbed_console.log 2>&1
echo "testbed exit $?" >> $R/testbed_console.log
tar -C $OUT -czf $OUT/call3.tar.gz r && rm -rf $R

#!/usr/bin/env bash
# Call 2 of the nineteenth pass: the run of record (every step of bench/run_on_gpu.sh) with
# programmatic launches in every tiled kernel, gpu_faulty_kernels_test, the testbed (SEEDS=1500) on
# the same binaries, then two gpu_bench --quick runs (the fused and chain rows, with and without
# programmatic launches, on the quick run's inputs).
set -u
tar -C .gpu_carry -xzf .gpu_carry/carry.tar.gz
R=$OUT/r; mkdir -p $R
OUT=$R/bench CARRY=.gpu_carry bash bench/run_on_gpu.sh > $R/bench_console.log 2>&1
LD_LIBRARY_PATH=$PWD/.gpu_carry/lib RCSIM_REQUIRE_GPU=1 timeout 60 .gpu_carry/bin/gpu_faulty_kernels_test > $R/gpu_faulty_kernels_test.log 2>&1
echo "exit $?" >> $R/gpu_faulty_kernels_test.log
OUT=$R/testbed SEEDS=1500 timeout 200 bash scripts/gpu_testbed_run.sh > $R/testbed_console.log 2>&1
echo "testbed exit $?" >> $R/testbed_console.log
for i in 1 2; do
  LD_LIBRARY_PATH=$PWD/.gpu_carry/lib timeout 60 .gpu_carry/bin/gpu_bench --quick --out $R/quick_$i.json > $R/quick_$i.log 2>&1
  echo "exit $?" >> $R/quick_$i.log
done
tar -C $OUT -czf $OUT/call2.tar.gz r && rm -rf $R

#!/usr/bin/env bash
# Call 4 of the nineteenth pass: 7312808's gpu_bench (the workload model moved to its own file after the
# run of record) with call 3's kernels: two gpu_bench --quick --draws 8 runs. Its draws are the run of
# record's draws (same seed, same labels), so their rows should repeat call 3's.
set -u
tar -C .gpu_carry -xzf .gpu_carry/carry.tar.gz
R=$OUT/r; mkdir -p $R
for i in 1 2; do
  LD_LIBRARY_PATH=$PWD/.gpu_carry/lib timeout 120 .gpu_carry/bin/gpu_bench --quick --draws 8 --out $R/quick_draws_$i.json > $R/quick_draws_$i.log 2>&1
  echo "exit $?" >> $R/quick_draws_$i.log
done
tar -C $OUT -czf $OUT/call4.tar.gz r && rm -rf $R

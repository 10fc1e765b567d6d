#!/usr/bin/env bash
# Call 5 of the eighteenth pass: in the middle band (fewer than four blocks per SM, more than one:
# T=256 for Qwen3-8B), a fused kernel compiled for its counts (two Q, one K, two V heads), without
# the prefetch code (RCSIM_EXP_MID=1; build `mid`, 8044fcf's kernels plus that switch).
# gpu_backend_test with it on, then its quick set under compute-sanitizer memcheck and racecheck;
# `one` (the switch off, the run of record's kernels) and `mid` alternated, three gpu_bench --quick
# runs each.
set -u
export PATH=/usr/local/cuda/bin:$PATH
mkdir -p /tmp/mid && tar -C /tmp/mid -xzf .gpu_carry/mid.tar.gz
export LD_LIBRARY_PATH=/tmp/mid/lib
R=$OUT/r; mkdir -p $R
date -u > $R/date.txt
s=$(date +%s)
RCSIM_REQUIRE_GPU=1 RCSIM_EXP_MID=1 timeout 220 /tmp/mid/bin/gpu_backend_test > $R/gpu_backend_test_mid.log 2>&1
echo "gpu_backend_test exit $? ($(( $(date +%s) - s )) s)" >> $R/gpu_backend_test_mid.log
for tool in memcheck racecheck; do
  RCSIM_REQUIRE_GPU=1 RCSIM_GPU_QUICK=1 RCSIM_EXP_MID=1 timeout 120 compute-sanitizer --tool $tool --error-exitcode 99 \
    /tmp/mid/bin/gpu_backend_test \
    --gtest_filter='-*AiterGrid*:*Qwen3Shapes*:*FourGiB*:*TrueDivisionOnTheDevice*:*Reciprocal*:*Fp8Scale*:*FastDivisor*' \
    > $R/sanitizer_${tool}_mid.log 2>&1
  echo "compute-sanitizer $tool exit $?" >> $R/sanitizer_${tool}_mid.log
done
for i in 1 2 3; do
  for v in one mid; do
    s=$(date +%s)
    if [ $v = mid ]; then e="env RCSIM_EXP_MID=1"; else e=env; fi
    $e timeout 60 /tmp/mid/bin/gpu_bench --quick --out /tmp/q_${v}_$i.json > $R/quick_${v}_$i.log 2>&1
    echo "exit $? ($(( $(date +%s) - s )) s)" >> $R/quick_${v}_$i.log
  done
done
tar -C $OUT -czf $OUT/call5.tar.gz r && rm -rf $R

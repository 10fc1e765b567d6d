#!/usr/bin/env bash
# Call 1 of the nineteenth pass: the fused kernel launched with programmatic dependent launch
# (FusedParams::programmatic_launch, the default now). gpu_backend_test with it, its quick set under
# compute-sanitizer memcheck and racecheck, then three gpu_bench --quick runs, each timing the
# `fused` (programmatic) and `fused_plain_launch` rows in the same process.
set -u
export PATH=/usr/local/cuda/bin:$PATH
mkdir -p /tmp/pdl && tar -C /tmp/pdl -xzf .gpu_carry/pdl.tar.gz
export LD_LIBRARY_PATH=/tmp/pdl/lib
R=$OUT/r; mkdir -p $R
date -u > $R/date.txt
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > $R/gpu.txt 2>&1
s=$(date +%s)
RCSIM_REQUIRE_GPU=1 timeout 220 /tmp/pdl/bin/gpu_backend_test > $R/gpu_backend_test.log 2>&1
echo "gpu_backend_test exit $? ($(( $(date +%s) - s )) s)" >> $R/gpu_backend_test.log
for tool in memcheck racecheck; do
  RCSIM_REQUIRE_GPU=1 RCSIM_GPU_QUICK=1 timeout 120 compute-sanitizer --tool $tool --error-exitcode 99 \
    /tmp/pdl/bin/gpu_backend_test \
    --gtest_filter='-*AiterGrid*:*Qwen3Shapes*:*FourGiB*:*TrueDivisionOnTheDevice*:*Reciprocal*:*Fp8Scale*:*FastDivisor*' \
    > $R/sanitizer_${tool}.log 2>&1
  echo "compute-sanitizer $tool exit $?" >> $R/sanitizer_${tool}.log
done
for i in 1 2 3; do
  s=$(date +%s)
  timeout 60 /tmp/pdl/bin/gpu_bench --quick --out $R/quick_$i.json > $R/quick_$i.log 2>&1
  echo "exit $? ($(( $(date +%s) - s )) s)" >> $R/quick_$i.log
done
tar -C $OUT -czf $OUT/call1.tar.gz r && rm -rf $R

#!/usr/bin/env bash
# Call 2 of the eighteenth pass: in the one-head band (T <= 64 for Qwen3-8B), a fused kernel
# compiled for one head of each kind, without the prefetch code (RCSIM_EXP_ONE_HEAD=1).
# gpu_backend_test with it on; base and it alternated, three gpu_bench --quick runs each; the
# SASS of the bf16-cache Qwen3 instances of both binaries.
set -u
export PATH=/usr/local/cuda/bin:$PATH
C=.gpu_carry
R=$OUT/r; mkdir -p $R
for b in base one; do mkdir -p /tmp/$b && tar -C /tmp/$b -xzf $C/$b.tar.gz; done
run() { local b=$1; shift; LD_LIBRARY_PATH=/tmp/$b/lib "$@"; }
date -u > $R/date.txt
s=$(date +%s)
run one env RCSIM_REQUIRE_GPU=1 RCSIM_EXP_ONE_HEAD=1 timeout 220 /tmp/one/bin/gpu_backend_test > $R/gpu_backend_test_one.log 2>&1
echo "gpu_backend_test exit $? ($(( $(date +%s) - s )) s)" >> $R/gpu_backend_test_one.log
for i in 1 2 3; do
  for v in base one; do
    s=$(date +%s)
    run $v env RCSIM_EXP_ONE_HEAD=1 timeout 60 /tmp/$v/bin/gpu_bench --quick --out /tmp/q_${v}_$i.json > $R/quick_${v}_$i.log 2>&1
    echo "exit $? ($(( $(date +%s) - s )) s)" >> $R/quick_${v}_$i.log
  done
done
for v in base one; do
  cuobjdump -sass /tmp/$v/bin/gpu_bench 2>/dev/null | awk '/Function :/ {keep = ($0 ~ /Li128ELNS0_7ActTypeE0ELNS0_9CacheTypeE[01]ELb1ENS0_4tile14MirroredHalves/)} keep' > $R/sass_$v.txt
done
tar -C $OUT -czf $OUT/call2.tar.gz r && rm -rf $R

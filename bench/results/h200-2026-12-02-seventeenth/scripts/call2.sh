#!/usr/bin/env bash
# Call 2 of the seventeenth pass: base (45c1293) and v3 (the L2 prefetch half a wave ahead in the
# fused kernel's narrow-V fp8 instances, launches of 4 to 16 waves; and in the cache writers,
# launches of 4 waves or more) alternated, three gpu_bench --quick runs each.
set -u
C=.gpu_carry
R=$OUT/r; mkdir -p $R
for b in base v3; do mkdir -p /tmp/$b && tar -C /tmp/$b -xzf $C/$b.tar.gz; done
run() { local b=$1; shift; LD_LIBRARY_PATH=/tmp/$b/lib "$@"; }
date -u > $R/date.txt
for i in 1 2 3; do
  for b in base v3; do
    s=$(date +%s)
    run $b timeout 60 /tmp/$b/bin/gpu_bench --quick --out /tmp/q_${b}_$i.json > $R/quick_${b}_$i.log 2>&1
    echo "exit $? ($(( $(date +%s) - s )) s)" >> $R/quick_${b}_$i.log
  done
done
tar -C $OUT -czf $OUT/call2.tar.gz r && rm -rf $R

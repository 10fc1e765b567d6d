#!/usr/bin/env bash
# Call 1 of the eighteenth pass: the split tail (the last tiles of a launch of four waves or more
# run as two blocks each, half of each group's heads per block). gpu_backend_test with every
# launch split (RCSIM_EXP_TAIL=100000, min waves 0: all tiles but the first), then base
# (cf2d361's kernels = 45c1293's) and the variant at 0, 50, 100 and 200% of a wave of tiles
# alternated, three gpu_bench --quick runs each.
set -u
C=.gpu_carry
R=$OUT/r; mkdir -p $R
for b in base tail; do mkdir -p /tmp/$b && tar -C /tmp/$b -xzf $C/$b.tar.gz; done
run() { local b=$1; shift; LD_LIBRARY_PATH=/tmp/$b/lib "$@"; }
date -u > $R/date.txt
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv > $R/smi.txt 2>&1
s=$(date +%s)
run tail env RCSIM_REQUIRE_GPU=1 RCSIM_EXP_TAIL=100000 RCSIM_EXP_TAIL_MIN_WAVES=0 timeout 220 /tmp/tail/bin/gpu_backend_test > $R/gpu_backend_test_tail_all.log 2>&1
echo "gpu_backend_test exit $? ($(( $(date +%s) - s )) s)" >> $R/gpu_backend_test_tail_all.log
for i in 1 2 3; do
  for v in base t0 t50 t100 t200; do
    s=$(date +%s)
    if [ $v = base ]; then
      run base timeout 60 /tmp/base/bin/gpu_bench --quick --out /tmp/q_${v}_$i.json > $R/quick_${v}_$i.log 2>&1
    else
      run tail env RCSIM_EXP_TAIL=${v#t} timeout 60 /tmp/tail/bin/gpu_bench --quick --out /tmp/q_${v}_$i.json > $R/quick_${v}_$i.log 2>&1
    fi
    echo "exit $? ($(( $(date +%s) - s )) s)" >> $R/quick_${v}_$i.log
  done
done
tar -C $OUT -czf $OUT/call1.tar.gz r && rm -rf $R

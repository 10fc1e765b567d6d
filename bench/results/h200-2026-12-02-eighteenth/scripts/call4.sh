#!/usr/bin/env bash
# Call 4 of the eighteenth pass: the run-to-run spread of the run of record's small-T rows. The run of
# record's binaries (call 3) run the full gpu_bench (four shapes) and --quick (Qwen3-8B alone),
# alternated, three times each. Qwen3-8B's inputs differ between the two: the full run draws
# Qwen3-0.6B's first from the same random stream.
set -u
mkdir -p /tmp/final && tar -C /tmp/final -xzf .gpu_carry/final.tar.gz
R=$OUT/r; mkdir -p $R
date -u > $R/date.txt
for i in 1 2 3; do
  for m in full quick; do
    s=$(date +%s)
    a=""; [ $m = quick ] && a=--quick
    LD_LIBRARY_PATH=/tmp/final/lib timeout 120 /tmp/final/bin/gpu_bench $a --out /tmp/b_${m}_$i.json > $R/${m}_$i.log 2>&1
    echo "exit $? ($(( $(date +%s) - s )) s)" >> $R/${m}_$i.log
  done
done
tar -C $OUT -czf $OUT/call4.tar.gz r && rm -rf $R

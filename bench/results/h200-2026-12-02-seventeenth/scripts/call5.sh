#!/usr/bin/env bash
# Call 5 of the seventeenth pass: the SM clock and the power while gpu_bench --quick runs (base,
# 45c1293): does the fp8 kernel's benchmark time at T=4096 include a lower clock than ncu's single
# launch (call 4)? nvidia-smi samples every 50 ms; gpu_bench's lines are time-stamped.
set -u
C=.gpu_carry
R=$OUT/r; mkdir -p $R
mkdir -p /tmp/base && tar -C /tmp/base -xzf $C/base.tar.gz
export LD_LIBRARY_PATH=/tmp/base/lib
date -u > $R/date.txt
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_event_reasons.active --format=csv -lms 50 > $R/smi_samples.csv 2>&1 &
SMI=$!
sleep 1
timeout 90 /tmp/base/bin/gpu_bench --quick --out /tmp/q.json 2>&1 | while IFS= read -r l; do echo "$(date +%H:%M:%S.%N | cut -c1-12) $l"; done > $R/quick_stamped.log
kill $SMI
tar -C $OUT -czf $OUT/call5.tar.gz r && rm -rf $R

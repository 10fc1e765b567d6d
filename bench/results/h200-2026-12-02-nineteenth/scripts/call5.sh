#!/usr/bin/env bash
# Call 5 of the nineteenth pass: does the tiles' alignment to the cache's pages set the small batches'
# spread over input draws? gpu_bench of 7312808 plus RCSIM_EXP_WHOLE_PAGES (diffs/whole_pages_env_gated.diff:
# every prefill sequence's length rounded up to a whole page, so every 16-row tile is one page), with and
# without it, alternated, two --quick --draws 8 runs each.
set -u
tar -C .gpu_carry -xzf .gpu_carry/carry.tar.gz
R=$OUT/r; mkdir -p $R
for i in 1 2; do
  for v in base whole; do
    if [ $v = whole ]; then e="env RCSIM_EXP_WHOLE_PAGES=1"; else e=env; fi
    LD_LIBRARY_PATH=$PWD/.gpu_carry/lib $e timeout 120 .gpu_carry/bin/gpu_bench --quick --draws 8 --out $R/quick_${v}_$i.json > $R/quick_${v}_$i.log 2>&1
    echo "exit $?" >> $R/quick_${v}_$i.log
  done
done
tar -C $OUT -czf $OUT/call5.tar.gz r && rm -rf $R

#!/usr/bin/env python3
"""Side-by-side cold-L2 rows of `gpu_bench --quick` logs of several builds run in one call.

Usage (from this folder):  python3 compare_quick.py call2_ base,C
reads call2_quick_base_1.log, call2_quick_base_2.log, call2_quick_C_1.log, ... and prints, per
(T, cache, slot pattern, kernel), each build's runs in us and the ratio of each build's faster
run to the first build's faster run.
"""
import collections
import re
import sys

ROW = re.compile(r'(\S+)\s+(\d+)\s+(\S+)\s+cold\s+(\S+)\s+(\S+)\s+([\d.]+)')


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    prefix, builds = sys.argv[1], sys.argv[2].split(',')
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    rows = collections.defaultdict(dict)
    for build in builds:
        for run in range(1, runs + 1):
            with open(f'{prefix}quick_{build}_{run}.log') as log:
                for line in log:
                    m = ROW.match(line)
                    if m:
                        key = m.group(2, 3, 4, 5)
                        rows[key].setdefault(build, []).append(float(m.group(6)))
    print(f"{'T':>6} {'kv':5} {'slots':8} {'kernel':24}",
          *[f'{b:>18}' for b in builds], *[f'{b}/{builds[0]}' for b in builds[1:]])
    for key, times in rows.items():
        first = min(times[builds[0]])
        print(f'{key[0]:>6} {key[1]:5} {key[2]:8} {key[3]:24}',
              *[f'{str(times[b]):>18}' for b in builds],
              *[f'{min(times[b]) / first:.3f}' for b in builds[1:]])


if __name__ == '__main__':
    main()

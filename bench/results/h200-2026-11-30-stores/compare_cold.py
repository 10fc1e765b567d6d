#!/usr/bin/env python3
"""Cold rows of the gpu_bench --quick logs of one call, median per build, and each build's ratio to the first.

Usage (from this folder): python3 compare_cold.py CALL BUILDS [ROW_REGEX]
  CALL: call1 .. call4; BUILDS: comma-separated, as in the file names callN_quick_<build>_<i>.log
  e.g.  python3 compare_cold.py call1 base,S,V4 'fused$|reshape|per_token'
"""
import collections
import glob
import re
import statistics
import sys

ROW = re.compile(r'(\S+)\s+(\d+)\s+(bf16|fp8)\s+(warm|cold)\s+(prefill|decode)?\s*(\S+)\s+([\d.]+)')


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    call, builds = sys.argv[1], sys.argv[2].split(',')
    pattern = re.compile(sys.argv[3]) if len(sys.argv) > 3 else None
    rows = collections.OrderedDict()
    for b in builds:
        files = sorted(glob.glob(f'{call}_quick_{b}_[0-9].log'))
        if not files:
            sys.exit(f'no {call}_quick_{b}_N.log here')
        for path in files:
            for line in open(path):
                m = ROW.match(line)
                if not m or m.group(4) != 'cold':
                    continue
                key = (m.group(3), m.group(2), m.group(5), m.group(6))
                rows.setdefault(key, {}).setdefault(b, []).append(float(m.group(7)))
    print('kv    T       slots    kernel                       ' + '  '.join(f'{b:>9s}' for b in builds))
    for key, by_build in rows.items():
        if pattern and not pattern.search(key[3]):
            continue
        med = [statistics.median(by_build[b]) if b in by_build else float('nan') for b in builds]
        ratios = '  '.join(f'{m / med[0]:.3f}' for m in med[1:])
        print(f'{key[0]:5s} {key[1]:>6s}  {key[2]:8s} {key[3]:28s} ' +
              '  '.join(f'{m:9.2f}' for m in med) + '   ' + ratios)


if __name__ == '__main__':
    main()

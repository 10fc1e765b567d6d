#!/usr/bin/env python3
"""Side-by-side cold-L2 rows of `gpu_bench --quick` logs of several builds run in one call.

Usage (from a bench/results/<run>/ folder):
  python3 ../../compare_quick.py PREFIX BUILDS [RUNS] [--median] [--rows REGEX] [--shape NAME]
  e.g. python3 ../../compare_quick.py call2_ base,C
reads PREFIXquick_<build>_<i>.log for i = 1..RUNS (default: every such file), and prints, per
(T, cache, slot pattern, kernel), each build's runs in us and the ratio of each build's faster run to
the first build's faster run; with --median, each build's median and the ratios of the medians.
--rows keeps the kernels whose name matches REGEX. --shape keeps one shape's rows: a log of the full
benchmark (every shape) has rows of the same key for each shape, which would otherwise be mixed.
Rows of `gpu_bench --draws` (timed on another input draw) keep their draw: kernel `fused d3` is the
fused row on draw 3.
"""
import argparse
import collections
import glob
import re
import statistics
import sys

ROW = re.compile(r'(\S+)\s+(\d+)\s+(\S+)\s+cold\s+(\S+)\s+(\S+)\s+([\d.]+)')
DRAW = re.compile(r'\(draw (\d+)\)\s*$')  # gpu_bench --draws: a row timed on another input draw


def log_paths(prefix, build, runs):
    if runs is not None:
        return [f'{prefix}quick_{build}_{run}.log' for run in range(1, runs + 1)]
    paths = sorted(glob.glob(f'{prefix}quick_{build}_[0-9].log'))
    if not paths:
        sys.exit(f'no {prefix}quick_{build}_N.log here')
    return paths


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('prefix')
    parser.add_argument('builds')
    parser.add_argument('runs', nargs='?', type=int)
    parser.add_argument('--median', action='store_true')
    parser.add_argument('--rows', type=re.compile)
    parser.add_argument('--shape')
    args = parser.parse_args()
    builds = args.builds.split(',')
    rows = collections.defaultdict(dict)
    for build in builds:
        for path in log_paths(args.prefix, build, args.runs):
            with open(path) as log:
                for line in log:
                    m = ROW.match(line)
                    if m and (args.rows is None or args.rows.search(m.group(5))) and \
                            (args.shape is None or m.group(1) == args.shape):
                        draw = DRAW.search(line)
                        kernel = m.group(5) + (f' d{draw.group(1)}' if draw else '')
                        rows[(*m.group(2, 3, 4), kernel)].setdefault(build, []).append(float(m.group(6)))
    pick = statistics.median if args.median else min
    print(f"{'T':>6} {'kv':5} {'slots':8} {'kernel':24}",
          *[f'{b:>18}' for b in builds], *[f'{b}/{builds[0]}' for b in builds[1:]])
    for key, times in rows.items():
        first = pick(times[builds[0]])
        shown = [f'{pick(times[b]):.2f}' if args.median else str(times[b]) for b in builds]
        print(f'{key[0]:>6} {key[1]:5} {key[2]:8} {key[3]:24}', *[f'{s:>18}' for s in shown],
              *[f'{pick(times[b]) / first:.3f}' for b in builds[1:]])


if __name__ == '__main__':
    main()

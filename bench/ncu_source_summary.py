#!/usr/bin/env python3
"""Where a kernel's instructions go, from Nsight Compute's SASS source counters.

Input: the CSV of `ncu -i REPORT --page source --print-source sass --csv` (optionally gzipped) for a
report taken with `--section SourceCounters`. For kernel number K of that file it prints the total warp
instructions executed, the opcode mix, and the instructions grouped by execution count: in the tiled
kernels each count is one code path (Q warps, K warps, V warps, the V chunk loop), so `count x n` is that
path's share. Used for BENCHMARKS.md's measured causes (issue 13).

Usage: python3 bench/ncu_source_summary.py source.csv.gz [K]
"""
import collections
import csv
import gzip
import sys


def kernels_of(path):
    opener = gzip.open if path.endswith(".gz") else open
    kernels, cur = [], None
    with opener(path, "rt") as f:
        for row in csv.reader(f):
            if row and row[0] == "Kernel Name":
                cur = {"name": row[1], "rows": []}
                kernels.append(cur)
            elif row and row[0] != "Address" and cur is not None and len(row) > 6:
                cur["rows"].append(row)
    return kernels


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    kernels = kernels_of(sys.argv[1])
    if not kernels:
        sys.exit("no kernel in that file: was the report taken with --section SourceCounters?")
    k = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    if not 0 <= k < len(kernels):
        sys.exit(f"kernel {k} out of range: the file has {len(kernels)}")
    rows = kernels[k]["rows"]
    # columns: Address, Source, stall samples (all), (not issued), # samples, Instructions Executed
    total = sum(int(r[5]) for r in rows)
    print(f"kernel {k}: {kernels[k]['name'][:150]}")
    print(f"warp instructions executed: {total}")
    ops = collections.Counter()
    for r in rows:
        words = r[1].split()
        if not words:
            continue
        op = words[1] if words[0].startswith("@") and len(words) > 1 else words[0]
        ops[op.split(".")[0]] += int(r[5])
    print("opcode mix (share of warp instructions):")
    for op, n in ops.most_common(15):
        print(f"  {op:8s} {n:12d} {100.0 * n / total:5.1f}%")
    paths = collections.Counter()
    sizes = collections.Counter()
    for r in rows:
        c = int(r[5])
        if c:
            paths[c] += c
            sizes[c] += 1
    print("by execution count (one count ~ one code path): count x instructions = share")
    for c, n in paths.most_common(8):
        print(f"  {c:9d} x {sizes[c]:5d} = {n:11d} ({100.0 * n / total:4.1f}%)")


if __name__ == "__main__":
    main()

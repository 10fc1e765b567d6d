#!/usr/bin/env python3
"""Where a kernel's instructions go, from Nsight Compute's SASS source counters.

Input: the CSV of `ncu -i REPORT --page source --print-source sass --csv` (optionally gzipped) for a
report taken with `--section SourceCounters`. For kernel number K of that file it prints the total warp
instructions executed, the opcode mix, and the instructions grouped by execution count: in the tiled
kernels each count is one code path (Q warps, K warps, V warps, the V chunk loop), so `count x n` is that
path's share; then the code size (SASS instructions, and how many ever ran: rare paths inlined into
the hot code cost instruction fetch) and, when the report has WarpStateStats, the stall samples by
reason (no_inst = waiting on instruction fetch). Used for BENCHMARKS.md's measured causes (issue 13).

Usage: python3 bench/ncu_source_summary.py source.csv.gz [K]
"""
import collections
import csv
import gzip
import sys


def kernels_of(path):
    opener = gzip.open if path.endswith(".gz") else open
    kernels, cur, header = [], None, []
    with opener(path, "rt") as f:
        for row in csv.reader(f):
            if row and row[0] == "Kernel Name":
                cur = {"name": row[1], "rows": [], "header": header}
                kernels.append(cur)
            elif row and row[0] == "Address":
                header = row
                if cur is not None:
                    cur["header"] = header
            elif cur is not None and len(row) > 6:
                cur["rows"].append(row)
    return kernels


def print_code_and_stalls(kernel):
    rows, header = kernel["rows"], kernel["header"]
    ran = sum(1 for r in rows if int(r[5] or 0) > 0)
    print(f"code: {len(rows)} SASS instructions ({16 * len(rows)} bytes), {ran} of them executed")
    stall_cols = [i for i, h in enumerate(header) if h.startswith("stall_") and "Not Issued" not in h]
    if not stall_cols:
        return
    stalls = collections.Counter()
    for r in rows:
        for i in stall_cols:
            stalls[header[i][len("stall_"):]] += int(r[i] or 0)
    samples = sum(stalls.values())
    print("stall samples by reason (share of all samples):")
    for reason, n in stalls.most_common(8):
        print(f"  {reason:18s} {n:8d} {100.0 * n / max(samples, 1):5.1f}%")


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
    print_code_and_stalls(kernels[k])


if __name__ == "__main__":
    main()

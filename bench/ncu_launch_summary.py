#!/usr/bin/env python3
"""One line per kernel launch of an Nsight Compute `--csv --metrics ...` file: time, the share of the
launch the SMs were busy (sm__cycles_active.avg / sm__cycles_elapsed.avg: ramp-up and the last
wave show as idle cycles), issue and DRAM utilisation, occupancy, warp instructions and grid size,
for the metrics the file holds.

Usage: ncu_launch_summary.py FILE.csv [FILE.csv ...]
(bench/results/h200-2026-12-02-seventeenth/scripts/call4.sh writes such files: one launch each of the
fused kernel and the cache writer at the boost clock.)"""
import sys

from ncu_csv import read_launches, short_kernel_name

COLUMNS = [  # (metric, heading, scale)
    ("gpu__time_duration.sum", "us", 1),  # read_launches gives microseconds
    ("smsp__issue_active.avg.pct_of_peak_sustained_active", "issue %", 1),
    ("dram__throughput.avg.pct_of_peak_sustained_elapsed", "DRAM %", 1),
    ("sm__warps_active.avg.pct_of_peak_sustained_active", "occupancy %", 1),
    ("smsp__inst_executed.sum", "warp instr (M)", 1e-6),
    ("launch__grid_size", "blocks", None),  # printed whole
]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    print("| file | launch | kernel | SMs busy | " + " | ".join(h for _, h, _ in COLUMNS) + " |")
    print("|---|---|---|---|" + "---|" * len(COLUMNS))
    for path in sys.argv[1:]:
        for (i, kernel), m in sorted(read_launches(path).items()):
            name = short_kernel_name(kernel)
            active, elapsed = m.get("sm__cycles_active.avg"), m.get("sm__cycles_elapsed.avg")
            busy = f"{active / elapsed:.3f}" if active and elapsed else "-"
            cells = ["-" if k not in m else f"{m[k]:.0f}" if s is None else f"{m[k] * s:.4g}"
                     for k, _, s in COLUMNS]
            print(f"| {path.split('/')[-1]} | {i} | `{name[:90]}` | {busy} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

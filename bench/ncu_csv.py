"""Reads the metrics table of an Nsight Compute `--csv --metrics ...` file, one dict per kernel launch,
with each value in one unit whatever ncu printed: times in microseconds, byte counts in megabytes.

Why one reader: ncu picks the unit it prints per metric (this ncu writes "ns" and "byte"; others write
"nsecond", "usecond", "Kbyte", ...). Each tool reading the file on its own had taken one spelling for
granted, and a time in ns went into BENCHMARKS.md's Nsight table as microseconds."""
import csv
import re
import sys

TIME_TO_US = {"ns": 1e-3, "nsecond": 1e-3, "us": 1.0, "usecond": 1.0, "ms": 1e3, "msecond": 1e3,
              "s": 1e6, "second": 1e6}
BYTES_TO_MB = {"byte": 1e-6, "Kbyte": 1e-3, "KB": 1e-3, "Mbyte": 1.0, "MB": 1.0, "Gbyte": 1e3, "GB": 1e3}


def in_common_unit(value, unit, metric):
    """The value in microseconds (a time) or megabytes (a byte count); other units as printed."""
    for table in (TIME_TO_US, BYTES_TO_MB):
        if unit in table:
            return value * table[unit]
    if metric == "gpu__time_duration.sum" or metric.startswith("dram__bytes"):
        sys.exit(f"ncu_csv: unit '{unit}' of {metric} is not one this reader knows")
    return value


def read_launches(path):
    """{(launch id, kernel name as ncu wrote it): {metric: value}} of one ncu CSV whose header row starts
    with "ID"; times in us, byte counts in MB (in_common_unit)."""
    rows = list(csv.reader(open(path)))
    head = next((i for i, r in enumerate(rows) if r and r[0] == "ID"), None)
    if head is None:
        sys.exit(f"{path}: no ncu metrics table (no row starting with \"ID\")")
    cols = rows[head]
    ki, mi, ui, vi = (cols.index(c) for c in ("Kernel Name", "Metric Name", "Metric Unit", "Metric Value"))
    out = {}
    for r in rows[head + 1:]:
        if len(r) > vi:
            try:
                value = float(r[vi].replace(",", ""))
            except ValueError:  # a details page (--page details) also holds rule rows and text values
                if r[mi] == "gpu__time_duration.sum":
                    sys.exit(f"{path}: launch {r[0]}'s time '{r[vi]}' is not a number")
                continue
            out.setdefault((int(r[0]), r[ki]), {})[r[mi]] = in_common_unit(value, r[ui], r[mi])
    return out


def short_kernel_name(kernel):
    """The kernel's name and template arguments as ncu wrote them, without `void`, namespaces or the
    parameter list, so a table says which instance ran, e.g.
    `fused_tiled_kernel<128, 0, 1, 1, MirroredHalves<128>, 4, 4, 4>`. make_tables.py and
    ncu_launch_summary.py both print it."""
    kernel = re.sub(r"\(anonymous namespace\)::|unnamed>::|\b\w+::", "", kernel.replace("void ", "", 1))
    depth = 0
    for i, c in enumerate(kernel):
        depth += {"<": 1, ">": -1}.get(c, 0)
        if c == "(" and depth == 0 and i > 0:
            return kernel[:i]
    return kernel

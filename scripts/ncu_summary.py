#!/usr/bin/env python3
"""Where a decode step's time goes, from an Nsight Compute CSV (scripts/bench.sh profile).

usage: ncu_summary.py NCU_CSV [--copy-tbps X] > table.md

The CSV is `ncu --csv --page raw --metrics gpu__time_duration.sum,dram__bytes_read.sum,
dram__bytes_write.sum ...` over `mmrun bench --pp 1 --tg N`: every launch of the plan's programs,
the decode program's N + 1 times. Launches are grouped by kernel entry name (mmc names an entry by
its kind and parameters, e.g. gemm_w4_cs4_g128_k3072_n8192_..., so one row is one specialization);
the table lists per group: launches, total and mean time, DRAM bytes per launch, the achieved DRAM
rate, and the share of the profiled time, largest first. With --copy-tbps (the device-to-device
copy bandwidth of the same machine, read + write), the rate is also shown as a share of it.
"""
import argparse
import csv
import sys
from collections import OrderedDict

TIME = "gpu__time_duration.sum"
READ = "dram__bytes_read.sum"
WRITE = "dram__bytes_write.sum"

# Units ncu writes in its raw page, as a factor to seconds or bytes.
UNITS = {"ns": 1e-9, "nsecond": 1e-9, "usecond": 1e-6, "us": 1e-6, "msecond": 1e-3, "ms": 1e-3,
         "second": 1.0, "s": 1.0, "byte": 1.0, "Kbyte": 1e3, "Mbyte": 1e6, "Gbyte": 1e9,
         "KB": 1e3, "MB": 1e6, "GB": 1e9, "B": 1.0}


def _is_number(text):
    try:
        float(text.replace(",", ""))
        return True
    except ValueError:
        return False


def read_rows(path):
    """The launches of an ncu raw CSV: (kernel name, seconds, dram bytes read + written)."""
    with open(path, newline="") as f:
        lines = [l for l in f if l.startswith('"')]   # ncu prints its own notes before the table
    if len(lines) < 2:
        sys.exit(f"error: {path}: no ncu CSV table (was the profile empty?)")
    reader = csv.reader(lines)
    header = next(reader)
    col = {name: i for i, name in enumerate(header)}
    for need in ("Kernel Name", TIME, READ, WRITE):
        if need not in col:
            sys.exit(f"error: {path}: column '{need}' missing (metrics: {TIME},{READ},{WRITE})")
    rows = list(reader)
    # The raw page's second row gives each column's unit (absent in some ncu versions).
    units = [""] * len(header)
    if rows and not _is_number(rows[0][col[TIME]]):
        units, rows = rows[0], rows[1:]

    def value(row, name):
        text = row[col[name]].replace(",", "")
        if text in ("", "n/a"):
            return 0.0
        unit = units[col[name]].strip()
        if unit and unit not in UNITS:
            sys.exit(f"error: {path}: unknown unit '{unit}' in column {name}")
        return float(text) * UNITS.get(unit, 1.0)

    for row in rows:
        if len(row) != len(header):
            continue
        yield row[col["Kernel Name"]], value(row, TIME), value(row, READ) + value(row, WRITE)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv")
    ap.add_argument("--copy-tbps", type=float, default=0.0)
    a = ap.parse_args()
    groups = OrderedDict()
    for name, sec, nbytes in read_rows(a.csv):
        g = groups.setdefault(name, [0, 0.0, 0.0])
        g[0] += 1
        g[1] += sec
        g[2] += nbytes
    if not groups:
        sys.exit(f"error: {a.csv}: no launches")
    total = sum(g[1] for g in groups.values())
    print(f"{sum(g[0] for g in groups.values())} launches, {total * 1e3:.2f} ms of kernel time profiled\n")
    head = "| kernel | launches | total ms | mean us | MB per launch | GB/s |"
    rule = "|:--|--:|--:|--:|--:|--:|"
    if a.copy_tbps > 0:
        head += " % of copy |"
        rule += "--:|"
    print(head + " share |")
    print(rule + "--:|")
    for name, (n, sec, nbytes) in sorted(groups.items(), key=lambda kv: -kv[1][1]):
        rate = nbytes / sec / 1e9 if sec > 0 else 0.0
        line = f"| `{name}` | {n} | {sec * 1e3:.3f} | {sec / n * 1e6:.1f} | {nbytes / n / 1e6:.2f} | {rate:.0f} |"
        if a.copy_tbps > 0:
            line += f" {100 * rate / (a.copy_tbps * 1e3):.0f} % |"
        print(line + f" {100 * sec / total:.1f} % |")


if __name__ == "__main__":
    main()

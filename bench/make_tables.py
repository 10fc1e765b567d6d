#!/usr/bin/env python3
"""Markdown tables for BENCHMARKS.md and docs/gpu-results.md from one GPU run's files
(gpu_bench.json, torch_peer.json, ncu.csv, diff.json, torch_diff.json; a missing file skips its
tables). Usage: make_tables.py RESULTS_DIR"""
import json
import os
import sys

from ncu_csv import read_launches, short_kernel_name

res = sys.argv[1]


def load(name):
    path = os.path.join(res, name)
    return json.load(open(path)) if os.path.exists(path) else None


bench = load("gpu_bench.json")
peer = load("torch_peer.json")
diff = load("diff.json")
tdiff = load("torch_diff.json")
TOK = [1, 8, 64, 256, 1024, 4096, 32768]


def row(shape, kv, kernel, t, cold, eager=False, slots="prefill"):
    for r in bench["rows"]:
        if (r["shape"], r["kv"], r["kernel"], r["tokens"], r["cold"]) == (shape, kv, kernel, t, cold) \
                and bool(r.get("eager")) == eager and r.get("slots", "prefill") == slots \
                and r.get("draw", 0) == 0:  # the run's own inputs, not a --draws draw
            return r
    return None


def ncu_table(path):
    """Per kernel launch of `gpu_bench --profile` (Qwen3-8B, T=32768): the metrics that say
    whether a kernel is bound by memory or by instruction issue."""
    want = {"gpu__time_duration.sum": "time (us)", "dram__throughput.avg.pct_of_peak_sustained_elapsed": "DRAM %",
            "smsp__issue_active.avg.pct_of_peak_sustained_active": "issue busy %",
            "sm__warps_active.avg.pct_of_peak_sustained_active": "achieved occupancy %",
            "launch__registers_per_thread": "registers", "sm__inst_executed.sum": "warp instructions",
            "dram__bytes_read.sum": "DRAM read", "dram__bytes_write.sum": "DRAM write"}
    launches = {}
    for (i, kernel), metrics in read_launches(path).items():  # times in us, bytes in MB
        launches[(i, short_kernel_name(kernel))] = {want[k]: v for k, v in metrics.items() if k in want}
    print("| launch | kernel | time (us) | DRAM % | issue busy % | warp instr | achieved occupancy % | registers | DRAM read / write (MB) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (i, name), m in sorted(launches.items()):
        print(f"| {i} | `{name[:80]}` | {m.get('time (us)', 0):.1f} | {m.get('DRAM %', 0):.1f} | {m.get('issue busy %', 0):.1f} | "
              f"{m.get('warp instructions', 0):.3g} | {m.get('achieved occupancy %', 0):.1f} | {m.get('registers', 0):.0f} | "
              f"{m.get('DRAM read', 0):.0f} / {m.get('DRAM write', 0):.0f} |")
    print()


if bench is None:
    sys.exit("no gpu_bench.json in " + res)


print(f"## copy bandwidth (gpu_bench, 2 GiB D2D): {bench['copy_gbps']:.0f} GB/s"
      + (f"; torch run: {peer['copy_gbps']:.0f} GB/s" if peer else "") + f"; device {bench['device']}\n")
for kv in ("bf16", "fp8_e4m3fn"):
    cache_kernel = "reshape_and_cache" if kv == "bf16" else "per_token_quant_cache"
    print(f"### {kv} cache: fused vs non-fused, us per call (graph replay), % of copy bandwidth, cold\n")
    print("| shape | T | fused cold | fused warm | % copy (cold) | rms q | rms k | rotary | cache write | non-fused chain cold | non-fused warm | fused speedup cold / warm |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for sh in ("qwen3-0.6b", "qwen3-8b", "qwen3-32b", "qwen3-235b-tp8"):
        for t in TOK:
            fc, fw = row(sh, kv, "fused", t, True), row(sh, kv, "fused", t, False)
            nc, nw = row(sh, kv, "nonfused_chain", t, True), row(sh, kv, "nonfused_chain", t, False)
            ks = [row(sh, kv, k, t, True) for k in ("rms_norm_q", "rms_norm_k", "rotary", cache_kernel)]
            cell = lambda r: f"{r['us_per_call']:.2f} ({100 * r['fraction_of_copy']:.0f}%)"
            print(f"| {sh} | {t} | {fc['us_per_call']:.2f} | {fw['us_per_call']:.2f} | {100 * fc['fraction_of_copy']:.0f}% | "
                  + " | ".join(cell(k) for k in ks)
                  + f" | {nc['us_per_call']:.2f} | {nw['us_per_call']:.2f} | {nc['us_per_call'] / fc['us_per_call']:.2f}x / {nw['us_per_call'] / fw['us_per_call']:.2f}x |")
    print()

if row("qwen3-8b", "bf16", "copy_qkv_rows", 4096, True):
    print("### Size-matched copy: the fused kernel against a device copy of the same case's qkv rows (Qwen3-8B, cold, graph replay, % of the 2 GiB copy)\n")
    print("| kv | T | fused | copy of the qkv rows | fused / size-matched copy |")
    print("|---|---|---|---|---|")
    for kv in ("bf16", "fp8_e4m3fn"):
        for t in (256, 1024, 4096, 32768):
            f, c = row("qwen3-8b", kv, "fused", t, True), row("qwen3-8b", kv, "copy_qkv_rows", t, True)
            if f and c:
                print(f"| {kv} | {t} | {100 * f['fraction_of_copy']:.1f}% | {100 * c['fraction_of_copy']:.1f}% | "
                      f"{f['fraction_of_copy'] / c['fraction_of_copy']:.3f} |")
    print()

if row("qwen3-8b", "bf16", "fused_plain_launch", 1, True):
    print("### Programmatic vs plain launches (Qwen3-8B, prefill, cold, graph replay, us per call; every node of the graph is the same call on the next input set)\n")
    print("| kv | T | fused | fused, plain launch | plain / programmatic | non-fused chain | chain, plain launches | plain / programmatic |")
    print("|---|---|---|---|---|---|---|---|")
    for kv in ("bf16", "fp8_e4m3fn"):
        for t in TOK:
            f, fp = row("qwen3-8b", kv, "fused", t, True), row("qwen3-8b", kv, "fused_plain_launch", t, True)
            c, cp = row("qwen3-8b", kv, "nonfused_chain", t, True), row("qwen3-8b", kv, "nonfused_chain_plain_launch", t, True)
            if f and fp and c and cp:
                print(f"| {kv} | {t} | {f['us_per_call']:.2f} | {fp['us_per_call']:.2f} | {fp['us_per_call'] / f['us_per_call']:.3f} | "
                      f"{c['us_per_call']:.2f} | {cp['us_per_call']:.2f} | {cp['us_per_call'] / c['us_per_call']:.3f} |")
    print()

if bench.get("draws"):
    n = bench["draws"]
    print(f"### Small batches over {n} more input draws (gpu_bench --draws {n}; Qwen3-8B, prefill, cold, graph replay, us per call)\n")
    print("| kv | T | kernel | this run's inputs | median of the draws | fastest draw | slowest draw |")
    print("|---|---|---|---|---|---|---|")
    for kv in ("bf16", "fp8_e4m3fn"):
        for t in (1, 8, 64):
            for k in ("fused", "fused_plain_launch"):
                own = row("qwen3-8b", kv, k, t, True)
                us = sorted(r["us_per_call"] for r in bench["rows"]
                            if r.get("draw", 0) > 0 and (r["kv"], r["kernel"], r["tokens"], r["cold"]) == (kv, k, t, True))
                if own and us:
                    print(f"| {kv} | {t} | {k} | {own['us_per_call']:.2f} | {us[len(us) // 2]:.2f} | {us[0]:.2f} | {us[-1]:.2f} |")
    print()

print("### Tiled vs reference (AITER) thread mapping, fused kernel, cold, us per call (same bits)\n")
print("| kv | shape | T | tiled | reference mapping | speedup |")
print("|---|---|---|---|---|---|")
for kv in ("bf16", "fp8_e4m3fn"):
    for sh in ("qwen3-0.6b", "qwen3-8b", "qwen3-32b", "qwen3-235b-tp8"):
        for t in (1024, 4096, 32768):
            a, b = row(sh, kv, "fused", t, True), row(sh, kv, "fused_reference_mapping", t, True)
            if a and b:
                print(f"| {kv} | {sh} | {t} | {a['us_per_call']:.2f} | {b['us_per_call']:.2f} | {b['us_per_call'] / a['us_per_call']:.2f}x |")
print()

print("### Decode slots (one token per page, random distinct pages), Qwen3-8B, cold: against the sector-level floor\n")
print("| kv | T | kernel | us per call | sector floor (MB) | % of copy bandwidth at the sector floor |")
print("|---|---|---|---|---|---|")
for kv in ("bf16", "fp8_e4m3fn"):
    for t in (4096, 32768):
        for k in ("fused", "reshape_and_cache" if kv == "bf16" else "per_token_quant_cache", "fused_reference_mapping"):
            r = row("qwen3-8b", kv, k, t, True, slots="decode")
            if r:
                print(f"| {kv} | {t} | {k} | {r['us_per_call']:.2f} | {r['min_bytes'] / 1e6:.1f} | {100 * r['fraction_of_copy']:.0f}% |")
print()

if os.path.exists(os.path.join(res, "ncu.csv")):
    print("### Nsight Compute, one launch each, Qwen3-8B T=32768 (gpu_bench --profile; launch order: per kv bf16 then fp8, prefill then decode)\n")
    ncu_table(os.path.join(res, "ncu.csv"))

def to_alone(kv, t, kernel, alone_us):
    """A policy's time over the non-fused path alone (`alone_us`, that row's median): the median of
    per-round ratios where the run recorded them (gpu_timing.h, EagerTimes), else (runs before the
    thirteenth pass) the ratio of the two medians."""
    r = row("qwen3-8b", kv, kernel, t, False, True)
    if r.get("paired_ratio_to") == "policy_nonfused_alone":
        return r["paired_ratio"]
    return r["us_per_call"] / alone_us


print("### Fallback cost per policy once the fused kernel is known to fail (Qwen3-8B, eager launches, warm, us per call;"
      " the ratios to alone are medians of per-round ratios where the run recorded them)\n")
print("| kv | T | non-fused alone | pr279 | sticky | qk-slice-backup | out-of-place | pr279 / alone | sticky / alone | healthy fused (eager) | healthy pr279 (backup + fused) |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for kv in ("bf16", "fp8_e4m3fn"):
    for t in TOK:
        g = lambda k: row("qwen3-8b", kv, k, t, False, True)["us_per_call"]
        a = g("policy_nonfused_alone")
        print(f"| {kv} | {t} | {a:.2f} | {g('policy_pr279'):.2f} | {g('policy_sticky'):.2f} | {g('policy_qk_slice_backup'):.2f} | "
              f"{g('policy_out_of_place'):.2f} | {to_alone(kv, t, 'policy_pr279', a):.3f} | {to_alone(kv, t, 'policy_sticky', a):.3f} | "
              f"{g('healthy_fused_eager'):.2f} | {g('healthy_pr279_backup_plus_fused'):.2f} |")
print()

if peer:
    print("### PyTorch peer (same card, torch_peer.py), us per call, and rcsim fused (graph replay, cold) beside it\n")
    forms = ("eager", "eager+graph", "compile", "compile+graph", "static-compile", "static-compile+graph")
    print("| shape | T | " + " | ".join(forms) + " | best form | rcsim fused (bf16, cold) | fused vs best torch |")
    print("|---|---|" + "---|" * len(forms) + "---|---|---|")
    for sh in ("qwen3-0.6b", "qwen3-8b", "qwen3-32b"):
        for t in TOK:
            f = {r["form"]: r["us_per_call"] for r in peer["rows"] if r["shape"] == sh and r["tokens"] == t}
            fr = row(sh, "bf16", "fused", t, True)
            if not f or not fr:
                continue
            fu = fr["us_per_call"]
            best = min(f, key=f.get)
            print(f"| {sh} | {t} | " + " | ".join(f"{f[x]:.1f}" if x in f else "-" for x in forms)
                  + f" | {best} | {fu:.2f} | {f[best] / fu:.2f}x |")
    print()

if not diff or not tdiff:
    sys.exit(0)
print("### rcsim diff (seed 0x%x, %s)\n" % (diff["seed"], diff["device"]))
print("| shape | kv | pair | bit-exact | cosine | max abs | max ULP | mismatches / elements | first bad (t, h, d) | K-cache elems differing | V-cache elems differing |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for c in diff["cases"]:
    kv = c["describe"].split(" kv=")[1].split()[0]
    for p in c["pairs"]:
        fb = p["first_bad"]
        fbs = f"({fb['token']}, {fb['head']}, {fb['dim']})" if fb else "-"
        print(f"| {c['shape']} | {kv} | {p['pair']} | {'yes' if p['bit_exact'] else 'no'} | {p['cosine_similarity']:.7f} | "
              f"{p['max_abs_error']:.3g} | {p['max_ulp']} | {p['mismatches']} / {p['elements']} | {fbs} | "
              f"{p['k_cache_mismatched_elements']} | {p['v_cache_mismatched_elements']} |")
print()
print("### GPU fused vs PyTorch / HF transformers (tools/torch_reference.py, transformers %s, torch %s)\n" % (tdiff["transformers"], tdiff["torch"]))
print("| shape | kv | part | cosine | max abs | max ULP | mismatches / elements | first bad | K-cache elems differing (mapped slots) | V-cache | K-scale |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for c in tdiff["cases"]:
    m = c["meta"]
    for part in ("q", "k"):
        p = c[part]
        fb = p["first_bad"]
        fbs = f"({fb['token']}, {fb['head']}, {fb['dim']})" if fb else "-"
        print(f"| {m['shape']} | {m['kv_cache_dtype']} | {part} | {p['cosine_similarity']:.7f} | {p['max_abs_error']:.3g} | "
              f"{p['max_ulp']} | {p['mismatches']} / {p['elements']} | {fbs} | "
              + (f"{c.get('k_cache_mismatched_elements')} | {c.get('v_cache_mismatched_elements', '-')} | {c.get('k_scale_mismatches', '-')} |" if part == "k" else "| | |"))

#!/usr/bin/env python3
"""Markdown tables for BENCHMARKS.md and docs/gpu-results.md from one GPU run's JSON files
(gpu_bench.json, torch_peer.json, diff.json, torch_diff.json). Usage: make_tables.py RESULTS_DIR"""
import json
import os
import sys

res = sys.argv[1]
bench = json.load(open(os.path.join(res, "gpu_bench.json")))
peer = json.load(open(os.path.join(res, "torch_peer.json")))
diff = json.load(open(os.path.join(res, "diff.json")))
tdiff = json.load(open(os.path.join(res, "torch_diff.json")))
TOK = [1, 8, 64, 256, 1024, 4096, 32768]


def row(shape, kv, kernel, t, cold, eager=False):
    for r in bench["rows"]:
        if (r["shape"], r["kv"], r["kernel"], r["tokens"], r["cold"]) == (shape, kv, kernel, t, cold) \
                and bool(r.get("eager")) == eager:
            return r
    return None


print(f"## copy bandwidth (gpu_bench, 2 GiB D2D): {bench['copy_gbps']:.0f} GB/s; torch run: {peer['copy_gbps']:.0f} GB/s\n")
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

print("### Fallback cost per policy once the fused kernel is known to fail (Qwen3-8B, eager launches, warm, us per call)\n")
print("| kv | T | non-fused alone | pr279 | sticky | qk-slice-backup | out-of-place | pr279 / alone | sticky / alone | healthy fused (eager) | healthy pr279 (backup + fused) |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for kv in ("bf16", "fp8_e4m3fn"):
    for t in TOK:
        g = lambda k: row("qwen3-8b", kv, k, t, False, True)["us_per_call"]
        a = g("policy_nonfused_alone")
        print(f"| {kv} | {t} | {a:.2f} | {g('policy_pr279'):.2f} | {g('policy_sticky'):.2f} | {g('policy_qk_slice_backup'):.2f} | "
              f"{g('policy_out_of_place'):.2f} | {g('policy_pr279') / a:.3f} | {g('policy_sticky') / a:.3f} | "
              f"{g('healthy_fused_eager'):.2f} | {g('healthy_pr279_backup_plus_fused'):.2f} |")
print()

print("### PyTorch peer (same run's card; torch_peer.py), us per call, and rcsim fused (graph replay, cold) beside it\n")
print("| shape | T | eager | eager+graph | compile | compile+graph | rcsim fused (bf16, cold) | fused vs best torch |")
print("|---|---|---|---|---|---|---|---|")
for sh in ("qwen3-0.6b", "qwen3-8b", "qwen3-32b"):
    for t in TOK:
        f = {r["form"]: r["us_per_call"] for r in peer["rows"] if r["shape"] == sh and r["tokens"] == t}
        if not f:
            continue
        fu = row(sh, "bf16", "fused", t, True)["us_per_call"]
        best = min(f.values())
        print(f"| {sh} | {t} | {f.get('eager', 0):.1f} | {f.get('eager+graph', 0):.1f} | {f.get('compile', 0):.1f} | "
              f"{f.get('compile+graph', 0):.1f} | {fu:.2f} | {best / fu:.1f}x |")
print()

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

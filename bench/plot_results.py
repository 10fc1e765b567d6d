#!/usr/bin/env python3
"""Pictures for docs/gpu-results.md and BENCHMARKS.md from the JSON the GPU run wrote, as plain
SVG (no plotting library needed):
  ulp histograms   one panel per compared pair of `rcsim diff` (diff.json) and of the PyTorch/HF
                   reference (torch_diff.json);
  bandwidth vs T   achieved GB/s of the minimal traffic for fused, the non-fused chain and the
                   PyTorch peer forms (gpu_bench.json, torch_peer.json), with the copy bandwidth.
Usage: plot_results.py RESULTS_DIR OUT_DIR
"""
import json
import math
import os
import sys


def svg_bars(title, labels, series, w=460, h=220):
    """series: list of (name, counts). Log-scale bars (counts + 1)."""
    colors = ["#4472c4", "#ed7d31", "#70ad47", "#a5a5a5"]
    n = len(labels)
    top = max(max(c) for _, c in series) + 1
    lmax = math.log10(top)
    bw = (w - 60) / n / max(1, len(series))
    out = [f'<g><text x="10" y="16" font-size="12">{title}</text>']
    for si, (name, counts) in enumerate(series):
        for i, c in enumerate(counts):
            bh = (h - 60) * (math.log10(c + 1) / lmax if lmax > 0 else 0)
            x = 40 + i * bw * len(series) + si * bw
            out.append(f'<rect x="{x:.1f}" y="{h - 30 - bh:.1f}" width="{bw - 1:.1f}" height="{bh:.1f}" fill="{colors[si % 4]}"/>')
        out.append(f'<text x="{w - 150}" y="{30 + 14 * si}" font-size="10" fill="{colors[si % 4]}">{name}</text>')
    for i, lab in enumerate(labels):
        out.append(f'<text x="{40 + (i + 0.3) * bw * len(series):.1f}" y="{h - 15}" font-size="9">{lab}</text>')
    out.append(f'<text x="5" y="{h - 2}" font-size="9">ULP distance (bars: log10(count+1))</text></g>')
    return "\n".join(out), w, h


def svg_lines(title, xs, series, copy_gbps, w=640, h=360):
    colors = ["#c00000", "#4472c4", "#70ad47", "#ed7d31", "#7030a0", "#a5a5a5", "#000000"]
    ymax = max(copy_gbps, max(max(v for v in ys if v) for _, ys in series)) * 1.1
    lx = [math.log2(x) for x in xs]
    px = lambda v: 60 + (v - lx[0]) / (lx[-1] - lx[0]) * (w - 220)
    py = lambda v: h - 40 - v / ymax * (h - 70)
    out = [f'<text x="10" y="18" font-size="13">{title}</text>']
    out.append(f'<line x1="60" x2="{w - 160}" y1="{py(copy_gbps):.1f}" y2="{py(copy_gbps):.1f}" stroke="#000" stroke-dasharray="4"/>')
    out.append(f'<text x="{w - 155}" y="{py(copy_gbps) + 4:.1f}" font-size="10">copy {copy_gbps:.0f} GB/s</text>')
    for si, (name, ys) in enumerate(series):
        pts = " ".join(f"{px(math.log2(x)):.1f},{py(y):.1f}" for x, y in zip(xs, ys) if y)
        out.append(f'<polyline points="{pts}" fill="none" stroke="{colors[si % 7]}" stroke-width="2"/>')
        out.append(f'<text x="{w - 155}" y="{40 + 14 * si}" font-size="10" fill="{colors[si % 7]}">{name}</text>')
    for x in xs:
        out.append(f'<text x="{px(math.log2(x)) - 8:.1f}" y="{h - 22}" font-size="10">{x}</text>')
    for frac in (0.25, 0.5, 0.75, 1.0):
        v = ymax / 1.1 * frac
        out.append(f'<text x="5" y="{py(v) + 4:.1f}" font-size="10">{v:.0f}</text>')
    out.append(f'<text x="{w / 2 - 80}" y="{h - 5}" font-size="11">tokens T (log scale); y: GB/s of minimal traffic</text>')
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}">' + "\n".join(out) + "</svg>"


def main():
    res, outd = sys.argv[1], sys.argv[2]
    os.makedirs(outd, exist_ok=True)
    # ULP histograms
    panels = []
    dpath = os.path.join(res, "diff.json")
    diff = json.load(open(dpath)) if os.path.exists(dpath) else {"ulp_bins": [], "cases": []}
    for case in diff["cases"]:
        if not case["shape"] == "qwen3-8b":
            continue
        for p in case["pairs"]:
            panels.append(svg_bars(f'{case["describe"][:40]} | {p["pair"]}', diff["ulp_bins"],
                                   [("q/k elements", p["ulp_histogram"])]))
    tpath = os.path.join(res, "torch_diff.json")
    if os.path.exists(tpath):
        td = json.load(open(tpath))
        for c in td["cases"]:
            if c["meta"]["shape"] != "qwen3-8b":
                continue
            panels.append(svg_bars(f'{c["meta"]["shape"]} {c["meta"]["kv_cache_dtype"]} | gpu-fused vs HF transformers',
                                   td["ulp_bins"], [("q", c["q"]["ulp_histogram"]), ("k", c["k"]["ulp_histogram"])]))
    y = 0
    body = []
    if not panels:
        print("no diff.json / torch_diff.json: ulp-histograms.svg not redrawn")
    for g, w, h in panels:
        body.append(f'<g transform="translate(0,{y})">{g}</g>')
        y += h + 10
    if panels:
        open(os.path.join(outd, "ulp-histograms.svg"), "w").write(
            f'<svg xmlns="http://www.w3.org/2000/svg" width="470" height="{y}">' + "\n".join(body) + "</svg>")
    # Bandwidth vs T
    bench = json.load(open(os.path.join(res, "gpu_bench.json")))
    peer = json.load(open(os.path.join(res, "torch_peer.json"))) if os.path.exists(os.path.join(res, "torch_peer.json")) else None
    xs = [1, 8, 64, 256, 1024, 4096, 32768]
    for kv in ("bf16", "fp8_e4m3fn"):
        def pick(kernel, cold):
            return [next((r["gbps"] for r in bench["rows"] if r["shape"] == "qwen3-8b" and r["kv"] == kv and
                          r["kernel"] == kernel and r["cold"] == cold and r["tokens"] == x and not r.get("eager")
                          and r.get("slots", "prefill") == "prefill"), None) for x in xs]
        series = [("fused (cold)", pick("fused", True)), ("fused (warm)", pick("fused", False)),
                  ("non-fused chain (cold)", pick("nonfused_chain", True))]
        if peer and kv == "bf16":
            for form in ("eager", "eager+graph", "compile", "compile+graph", "static-compile",
                         "static-compile+graph"):
                series.append((f"torch {form}", [next((r["gbps"] for r in peer["rows"] if r["shape"] == "qwen3-8b" and
                                                       r["form"] == form and r["tokens"] == x), None) for x in xs]))
        open(os.path.join(outd, f"bandwidth-qwen3-8b-{kv}.svg"), "w").write(
            svg_lines(f'Qwen3-8B, {kv} cache, {bench["device"]}', xs, series, bench["copy_gbps"]))


if __name__ == "__main__":
    main()

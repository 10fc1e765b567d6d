#!/usr/bin/env python3
"""PyTorch / HF transformers reference for `rcsim diff` (issue 7).

Reads the cases `rcsim diff --dump-dir DIR` wrote (inputs and the GPU fused kernel's outputs),
computes the HF Qwen3 semantics with transformers' own code -- Qwen3RMSNorm per head, then
apply_rotary_pos_emb, then the paged-cache scatter (K x-packed, V shuffle; fp8 with a per-token
scale amax/fp8_max, value/scale cast to float8_e4m3fn) -- and compares the GPU outputs with it:
cosine similarity, max abs error, max ULP distance (bf16), mismatch count, first bad
(token, head, dim), an ULP histogram; differing cache elements over the mapped slots.

Only NeoX cases are compared (HF's rotate_half is NeoX). The cos/sin rows are the dumped table's
(bf16), so the comparison isolates arithmetic (HF rounds after the norm, after the weight multiply
and after each RoPE product and sum; the fused kernel rounds twice) from table construction.

Usage: torch_reference.py DIR --out results.json [--device cuda]
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch

try:
    from transformers.models.qwen3.modeling_qwen3 import Qwen3RMSNorm, apply_rotary_pos_emb
    HF_SOURCE = "transformers.models.qwen3.modeling_qwen3"
except Exception as exc:  # transformers missing: say so in the report, never fake a result
    print(f"torch_reference: cannot import transformers' Qwen3 ({exc})", file=sys.stderr)
    sys.exit(2)

ULP_BINS = ["0", "1", "2", "3-4", "5-8", "9-16", "17-64", ">64"]


def load(path, dtype, shape):
    arr = np.fromfile(path, dtype=dtype)
    return arr.reshape(shape)


def bf16_from_u16(u16, device):
    return torch.from_numpy(u16.astype(np.int16)).to(device).view(torch.bfloat16)


def ulp_bin(u):
    if u <= 2:
        return int(u)
    for i, hi in ((3, 4), (4, 8), (5, 16), (6, 64)):
        if u <= hi:
            return i
    return 7


def ordered(u16):
    u = u16.astype(np.int64)
    return np.where(u & 0x8000, -(u & 0x7FFF), u)


def compare(got_u16, want_u16, num_heads, head_dim):
    """got/want: uint16 [T, H*D] of bf16 bits."""
    g = torch.from_numpy(got_u16.astype(np.int16)).view(torch.bfloat16).double().numpy()
    w = torch.from_numpy(want_u16.astype(np.int16)).view(torch.bfloat16).double().numpy()
    nan = np.isnan(g) | np.isnan(w)
    ulp = np.abs(ordered(got_u16) - ordered(want_u16))
    ulp = np.where(nan, 1 << 20, ulp)
    bad = got_u16 != want_u16
    hist = [0] * len(ULP_BINS)
    vals, counts = np.unique(np.minimum(ulp, 65), return_counts=True)
    for v, c in zip(vals, counts):
        hist[ulp_bin(int(v))] += int(c)
    first = None
    if bad.any():
        t, col = np.argwhere(bad)[0]
        first = {"token": int(t), "head": int(col // head_dim), "dim": int(col % head_dim)}
    denom = math.sqrt(float((g * g).sum()) * float((w * w).sum()))
    return {
        "cosine_similarity": float((g * w).sum()) / denom if denom > 0 else 0.0,
        "max_abs_error": float(np.abs(g - w)[bad].max()) if bad.any() else 0.0,
        "max_ulp": int(ulp[bad].max()) if bad.any() else 0,
        "mismatches": int(bad.sum()),
        "elements": int(bad.size),
        "first_bad": first,
        "ulp_histogram": hist,
    }


def run_case(d, prefix, meta, device):
    T, hq, hkv, D = meta["tokens"], meta["num_heads_q"], meta["num_heads_kv"], meta["head_dim"]
    W = (hq + 2 * hkv) * D
    rot, eps = meta["rotary_dim"], meta["eps"]
    qkv = bf16_from_u16(load(prefix + "qkv_in.bin", np.uint16, (T, W)), device)
    qw = bf16_from_u16(load(prefix + "q_weight.bin", np.uint16, (D,)), device)
    kw = bf16_from_u16(load(prefix + "k_weight.bin", np.uint16, (D,)), device)
    cos_sin = bf16_from_u16(load(prefix + "cos_sin.bin", np.uint16, (meta["max_position"], rot)), device)
    pos = torch.from_numpy(load(prefix + "positions.bin", np.int64, (T,))).to(device)
    slots = load(prefix + "slots.bin", np.int64, (T,))

    q = qkv[:, : hq * D].reshape(T, hq, D)
    k = qkv[:, hq * D : (hq + hkv) * D].reshape(T, hkv, D)
    v = qkv[:, (hq + hkv) * D :].reshape(T, hkv, D)
    q_norm = Qwen3RMSNorm(D, eps=eps).to(device=device, dtype=torch.bfloat16)
    k_norm = Qwen3RMSNorm(D, eps=eps).to(device=device, dtype=torch.bfloat16)
    with torch.no_grad():
        q_norm.weight.copy_(qw)
        k_norm.weight.copy_(kw)
        qn = q_norm(q).transpose(0, 1).unsqueeze(0)  # [1, Hq, T, D]
        kn = k_norm(k).transpose(0, 1).unsqueeze(0)
        half = rot // 2
        rows = cos_sin[pos]  # [T, rot]
        cos = torch.cat([rows[:, :half], rows[:, :half]], dim=-1).unsqueeze(0)  # [1, T, D]
        sin = torch.cat([rows[:, half:], rows[:, half:]], dim=-1).unsqueeze(0)
        qr, kr = apply_rotary_pos_emb(qn, kn, cos, sin)  # unsqueeze_dim=1 broadcasts over heads
    q_ref = qr[0].transpose(0, 1).contiguous()  # [T, Hq, D]
    k_ref = kr[0].transpose(0, 1).contiguous()

    gpu_qkv = load(prefix + "gpu_qkv.bin", np.uint16, (T, W))
    to_u16 = lambda t: t.reshape(T, -1).view(torch.int16).cpu().numpy().astype(np.uint16)
    res = {
        "q": compare(gpu_qkv[:, : hq * D], to_u16(q_ref), hq, D),
        "k": compare(gpu_qkv[:, hq * D : (hq + hkv) * D], to_u16(k_ref), hkv, D),
    }

    # Paged-cache scatter of the HF K and raw V, compared over the mapped slots only.
    nb, bs, x = meta["num_blocks"], meta["block_size"], meta["x"]
    kv = meta["kv_cache_dtype"]
    mapped = np.nonzero(slots >= 0)[0]
    blk, off = slots[mapped] // bs, slots[mapped] % bs
    dims = np.arange(D)
    if kv == "auto":
        kc = load(prefix + "gpu_k_cache.bin", np.uint16, (nb * hkv * D * bs,))
        vc = load(prefix + "gpu_v_cache.bin", np.uint16, (nb * hkv * D * bs,))
        kref, vref = to_u16(k_ref).reshape(T, hkv, D), to_u16(v).reshape(T, hkv, D)
        k_bad = v_bad = 0
        for h in range(hkv):
            ko = (((blk[:, None] * hkv + h) * (D // x) + dims[None, :] // x) * bs * x
                  + off[:, None] * x + dims[None, :] % x)
            vo = (((blk[:, None] * hkv + h) * (bs // x) + off[:, None] // x) * D * x
                  + dims[None, :] * x + off[:, None] % x)
            k_bad += int((kc[ko] != kref[mapped, h, :]).sum())
            v_bad += int((vc[vo] != vref[mapped, h, :]).sum())
        res["k_cache_mismatched_elements"] = k_bad
        res["v_cache_mismatched_elements"] = v_bad
    elif kv == "fp8_e4m3fn":
        kc = load(prefix + "gpu_k_cache.bin", np.uint8, (nb * hkv * D * bs,))
        ks = load(prefix + "gpu_k_scale.bin", np.float32, (nb * hkv * bs,))
        kf = k_ref.float()
        amax = kf.abs().amax(dim=-1, keepdim=True)
        scale = amax / 448.0
        codes = (kf / scale).to(torch.float8_e4m3fn).view(torch.uint8).cpu().numpy()
        k_bad = 0
        scale_bad = 0
        sc = scale[..., 0].cpu().numpy()
        for h in range(hkv):
            ko = (((blk[:, None] * hkv + h) * (D // x) + dims[None, :] // x) * bs * x
                  + off[:, None] * x + dims[None, :] % x)
            k_bad += int((kc[ko] != codes[mapped, h, :]).sum())
            so = (blk * hkv + h) * bs + off
            scale_bad += int((ks[so] != sc[mapped, h]).sum())
        res["k_cache_mismatched_elements"] = k_bad
        res["k_scale_mismatches"] = scale_bad
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dump_dir")
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    metas = sorted(f for f in os.listdir(args.dump_dir) if f.endswith("meta.json"))
    out = {"hf_source": HF_SOURCE, "torch": torch.__version__, "device": args.device,
           "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
           "ulp_bins": ULP_BINS, "cases": []}
    import transformers
    out["transformers"] = transformers.__version__
    print(f"{'shape':<16} {'T':>5} {'kv':<11} {'part':<4} {'cosine':>10} {'max_abs':>9} "
          f"{'max_ulp':>7} {'mismatch':>9} {'of':>9} first_bad")
    for m in metas:
        prefix = os.path.join(args.dump_dir, m[: -len("meta.json")])
        meta = json.load(open(os.path.join(args.dump_dir, m)))
        if not meta["is_neox"]:
            continue
        r = run_case(args.dump_dir, prefix, meta, args.device)
        r["meta"] = meta
        out["cases"].append(r)
        for part in ("q", "k"):
            p = r[part]
            print(f"{meta['shape']:<16} {meta['tokens']:>5} {meta['kv_cache_dtype']:<11} {part:<4} "
                  f"{p['cosine_similarity']:>10.7f} {p['max_abs_error']:>9.3g} {p['max_ulp']:>7} "
                  f"{p['mismatches']:>9} {p['elements']:>9} {p['first_bad']}")
        print(f"   cache: k mismatched {r.get('k_cache_mismatched_elements')} "
              f"v mismatched {r.get('v_cache_mismatched_elements')} "
              f"k_scale mismatched {r.get('k_scale_mismatches')}")
    json.dump(out, open(args.out, "w"), indent=1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Goal: every output of `rcsim case` equals, bit for bit, what the independent numpy model
(semantics_model.py, written from semantics.md and HF's formulas, sharing no code with
kernels/common) predicts, on a grid that covers head dims 64/128/256, NeoX and GPT-J, full and
partial rotary, GQA with 2 and 4 KV heads, bf16 and fp16 activations, the "auto" cache and both fp8
caches with per-token scales, padded slots, the three paths (fused; the non-fused fallback in PR
#279's order and in the model's order) and edge magnitudes (heads whose mean square is near eps,
exact-zero heads, V at fp8 max and beyond, amax at the scale floor, the last row of the cos/sin
table).

Method: per grid point a case file (and, for the edge cases, input .npy files drawn here from the
seed) is written to a scratch directory and run with `rcsim case`; the model recomputes qkv, q, k,
both caches and both scale tensors from the inputs rcsim wrote (inputs/*.npy) and every byte is
compared, sentinel bytes of untouched memory included. For fp8 caches rcsim also writes its own
decode of both caches ({k,v}_cache_dequant.npy: each code decoded times its per-token scale, as
attention reads it); the model decodes rcsim's codes with its own value table and layouts and
must get the same fp32 bits - the one check that sees rcsim's fp8 decoder. The cos/sin table is
the one place where the spec fixes no rounding (cos/sin of an fp32 angle in float vs the model's
float64): there the check is |table - model| <= 1 unit in the last place of the activation dtype
at that value (the model's value rounded once is within half an ulp; the C++ single-precision cos
adds < 1 fp32 ulp, which can move a value across one rounding boundary, never two).

With --mutant NAME the same grid runs under a planted bug (core/mutants.h) and the script passes iff
some output differs from the model (exit 0), i.e. the model catches the mutant.

Exit codes: 0 pass, 1 a mismatch (or, with --mutant, nothing caught), 2 rcsim failed to run.
Repro: the failing case file is kept and printed with the command that runs it.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import semantics_model as model  # noqa: E402

DEFAULT_SEED = 19
KV_KINDS = ("auto", "fp8_e4m3fn", "fp8_e4m3fnuz")
ACTS = ("bf16", "fp16")
PATHS = {  # path -> (policy, faults, branch rcsim must report)
    "fused": ("pr279", "", "A-fused"),
    "rope-then-norm": ("pr279", "fused:unavailable", "C-non-fused"),
    "norm-then-rope": ("pr279-model-order", "fused:unavailable", "C-non-fused"),
}
# Partial rotary per head dim (AITER@HEAD's op test: 64 -> 16, 128 -> 64, 256 -> 64).
PARTIAL_ROTARY = {64: 16, 128: 64, 256: 64}


def grid_cases(seed):
    """The regular grid: every path sees every (head dim, NeoX/GPT-J, full/partial rotary) shape;
    cache dtype, activation dtype and head counts cycle so each path meets every cache x activation
    pair twice."""
    cases = []
    for path in PATHS:
        for s in range(12):
            dim = (64, 128, 256)[s // 4]
            neox = s % 2 == 0
            rot = PARTIAL_ROTARY[dim] if (s // 2) % 2 else dim
            kv = KV_KINDS[s % 3]
            act = ACTS[(s // 3) % 2]
            hq, hkv = ((4, 2), (8, 4))[(s // 6) % 2]
            cases.append({
                "name": f"{path}-d{dim}-{'neox' if neox else 'gptj'}-rot{rot}-{act}-{kv}-h{hq}x{hkv}",
                "path": path,
                "config": {"num_heads_q": hq, "num_heads_kv": hkv, "head_dim": dim,
                           "rotary_dim": rot, "is_neox": neox, "eps": 1e-6, "act_dtype": act,
                           "kv_cache_dtype": kv, "block_size": 16 if s % 4 else 32,
                           "num_blocks": 3, "max_position": 512, "amax_floor": s % 2 == 1,
                           "rope_theta": 10000.0 if s % 3 else 1e6},
                "seed": seed * 1000 + len(cases),
                "tokens": 5 + s % 3,
                "padding_tokens": 1 + s % 2,
            })
    return cases


def edge_cases(seed):
    """Edge magnitudes, inputs drawn here: per path, bf16 + e4m3fn with the amax floor (AITER@HEAD),
    fp16 + e4m3fnuz without it (March 2026: a zero head quantises 0/0 = NaN) and one "auto"
    case."""
    cases = []
    combos = (("bf16", "fp8_e4m3fn", 128, True), ("fp16", "fp8_e4m3fnuz", 64, False),
              ("bf16", "auto", 256, True))
    for path in PATHS:
        for act, kv, dim, neox in combos:
            floor = act == "bf16"
            cases.append({
                "name": f"edge-{path}-d{dim}-{act}-{kv}",
                "path": path,
                "edge": True,
                "config": {"num_heads_q": 4, "num_heads_kv": 2, "head_dim": dim,
                           "rotary_dim": dim if neox else PARTIAL_ROTARY[dim], "is_neox": neox,
                           "eps": 1e-6, "act_dtype": act, "kv_cache_dtype": kv,
                           "block_size": 16, "num_blocks": 2, "max_position": 4096,
                           "amax_floor": floor, "rope_theta": 1e6},
                "seed": seed * 1000 + 500 + len(cases),
                "tokens": 8,
                "padding_tokens": 1,
            })
    return cases


def edge_inputs(case, rng):
    """qkv and positions with the edge magnitudes. Per token, heads are drawn from these kinds:
    ordinary (|x| in [0.25, 2)), tiny (|x| ~ 1e-3: mean square ~ eps), zero, V at the fp8 max and
    just above (448/450 or 240/242 with a spread below), and V with amax at the 1e-8 scale floor
    (bf16 only; fp16 flushes 1e-8 to zero, which is the zero-head case). Positions include 0 and
    max_position - 1."""
    cfg = case["config"]
    hq, hkv, dim, tokens = cfg["num_heads_q"], cfg["num_heads_kv"], cfg["head_dim"], case["tokens"]
    act, kv = cfg["act_dtype"], cfg["kv_cache_dtype"]
    qkv = np.empty((tokens, hq + 2 * hkv, dim), dtype=np.float32)
    fp8_max = model.FP8_MAX.get(kv, 448.0)
    for t in range(tokens):
        for h in range(hq + 2 * hkv):
            is_v = h >= hq + hkv
            kind = (t + h) % (5 if is_v else 3)
            sign = np.where(rng.random(dim) < 0.5, -1.0, 1.0)
            if kind == 0:
                mag = rng.uniform(0.25, 2.0, dim)
            elif kind == 1:
                mag = rng.uniform(0.5e-3, 2e-3, dim)
            elif kind == 2:
                mag = np.zeros(dim)
            elif kind == 3:
                mag = rng.uniform(0.5, 1.0, dim) * fp8_max
                mag[rng.integers(dim)] = fp8_max
                mag[rng.integers(dim)] = fp8_max + 2.0
            else:
                # amax just below the floor on even tokens, at it on odd ones
                mag = rng.uniform(0.25e-8, 0.9e-8, dim)
                mag[rng.integers(dim)] = 0.95e-8 if t % 2 == 0 else 1e-8
            qkv[t, h] = sign * mag
    bits = model.f32_to_act(qkv.reshape(tokens, -1), act)
    positions = rng.integers(0, cfg["max_position"], tokens).astype(np.int64)
    positions[0], positions[-1] = cfg["max_position"] - 1, 0
    positions[tokens // 2] = cfg["max_position"] - 1
    return bits, positions


def write_case(case, work):
    policy, faults, _ = PATHS[case["path"]]
    spec = {"description": case["name"], "config": case["config"], "policy": policy,
            "backend": "cpu", "seed": case["seed"], "tokens": case["tokens"],
            "padding_tokens": case["padding_tokens"]}
    if faults:
        spec["faults"] = faults
    if case.get("edge"):
        rng = np.random.default_rng(case["seed"])
        qkv, positions = edge_inputs(case, rng)
        np.save(os.path.join(work, "qkv.npy"), qkv)
        np.save(os.path.join(work, "positions.npy"), positions)
        spec["inputs"] = {"qkv": "qkv.npy", "positions": "positions.npy"}
    path = os.path.join(work, "case.json")
    with open(path, "w") as f:
        json.dump(spec, f, indent=1)
    return path


def load_dir(out_dir, names):
    return {n: np.load(os.path.join(out_dir, n + ".npy")) for n in names
            if os.path.exists(os.path.join(out_dir, n + ".npy"))}


def describe_index(name, idx, cfg):
    labels = {"qkv": ("token", "column"), "q": ("token", "head", "dim"), "k": ("token", "head", "dim"),
              "k_cache": ("block", "head", "dim/x", "token_in_block", "dim%x"),
              "k_scale": ("block", "head", "token_in_block"),
              "v_scale": ("block", "head", "token_in_block"),
              "k_cache_dequant": ("block", "head", "token_in_block", "dim"),
              "v_cache_dequant": ("block", "head", "token_in_block", "dim")}
    if name == "qkv":
        t, col = idx
        return f"token {t}, head {col // cfg['head_dim']}, dim {col % cfg['head_dim']}"
    names = labels.get(name, tuple(f"i{i}" for i in range(len(idx))))
    return ", ".join(f"{n} {int(i)}" for n, i in zip(names, idx))


def compare(name, got, want, cfg):
    """None if equal bit for bit, else a message naming the first bad element."""
    if got.shape != want.shape or got.dtype != want.dtype:
        return f"{name}: got {got.dtype}{got.shape}, model {want.dtype}{want.shape}"
    g = got.view(np.uint8).reshape(got.shape + (-1,))
    w = want.view(np.uint8).reshape(want.shape + (-1,))
    bad = np.any(g != w, axis=-1)
    kv = cfg["kv_cache_dtype"]
    if kv != "auto" and name in ("k_cache", "v_cache"):
        # A NaN code is the format's NaN either way; e4m3fn has two (sign of the 0/0 NaN is the
        # CPU's choice), so a NaN matches a NaN.
        bad &= ~(model.fp8_is_nan(got, kv) & model.fp8_is_nan(want, kv))
    if name in ("k_scale", "v_scale", "k_cache_dequant", "v_cache_dequant"):
        bad &= ~(np.isnan(got) & np.isnan(want))
    if not bad.any():
        return None
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    return (f"{name}: {int(bad.sum())} of {bad.size} elements differ; first at "
            f"{describe_index(name, first, cfg)}: rcsim {got[first]!r}, model {want[first]!r}")


def check_cos_sin(inputs, cfg):
    bits, exact = model.expected_cos_sin(cfg, cfg["rope_theta"])
    table = model.act_to_f32(inputs["cos_sin_cache"], cfg["act_dtype"]).astype(np.float64)
    ref = model.act_to_f32(bits, cfg["act_dtype"]).astype(np.float64)
    # One ulp of the activation dtype at the model's value: the spacing to the next value away
    # from zero (bf16: 2^(e-7), fp16: 2^(e-10), floored at the subnormal spacing).
    mant_bits, min_exp = (7, -126) if cfg["act_dtype"] == "bf16" else (10, -14)
    e = np.floor(np.log2(np.maximum(np.abs(exact), 2.0**min_exp)))
    ulp = 2.0 ** (e - mant_bits)
    bad = np.abs(table - ref) > ulp
    if bad.any():
        p, j = (int(i) for i in np.argwhere(bad)[0])
        return (f"cos_sin_cache: {int(bad.sum())} entries beyond 1 ulp; first row {p} column {j}: "
                f"rcsim {table[p, j]}, model {ref[p, j]} (exact {exact[p, j]})")
    return None


def run_case(rcsim, case, work, mutant):
    case_path = write_case(case, work)
    out_dir = os.path.join(work, "out")
    shutil.rmtree(out_dir, ignore_errors=True)
    cmd = [rcsim, "case", "--in", case_path, "--out", out_dir]
    if mutant:
        cmd += ["--mutant", mutant]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return None, f"rcsim case exited {proc.returncode}: {proc.stderr.strip()}"
    with open(os.path.join(out_dir, "meta.json")) as f:
        meta = json.load(f)
    with open(os.path.join(out_dir, "record.json")) as f:
        record = json.load(f)
    cfg = dict(meta["config"])
    want_branch = PATHS[case["path"]][2]
    problems = []
    if record["outcome"] != "ok" or record["branch"] != want_branch:
        problems.append(f"record: outcome {record['outcome']}, branch {record['branch']}; "
                        f"expected ok on {want_branch}")
        return problems, None
    inputs = load_dir(os.path.join(out_dir, "inputs"),
                      ("qkv", "positions", "slot_mapping", "cos_sin_cache", "q_weight",
                       "k_weight", "k_cache", "v_cache", "k_scale", "v_scale"))
    outputs = load_dir(out_dir, ("qkv", "q", "k", "k_cache", "v_cache", "k_scale", "v_scale",
                                 "k_cache_dequant", "v_cache_dequant"))
    v_layout = "plain" if cfg["use_triton_attn"] else "shuffle"
    want = model.expected_outputs(cfg, inputs, case["path"], v_layout)
    for name in ("qkv", "q", "k", "k_cache", "v_cache", "k_scale", "v_scale"):
        if name in want:
            if name not in outputs:
                problems.append(f"{name}: rcsim wrote no {name}.npy")
                continue
            msg = compare(name, outputs[name], want[name], cfg)
            if msg:
                problems.append(msg)
    if cfg["kv_cache_dtype"] != "auto":
        # rcsim's own decode of its fp8 caches (the only output that shows numeric's fp8
        # decoder) against the model's decode of the same codes times the same scales (both
        # already compared above).
        for side in ("k", "v"):
            name = side + "_cache_dequant"
            if name not in outputs:
                problems.append(f"{name}: rcsim wrote no {name}.npy")
                continue
            want_dq = model.dequantised_cache(cfg, outputs[side + "_cache"],
                                              outputs[side + "_scale"], side, v_layout)
            msg = compare(name, outputs[name], want_dq, cfg)
            if msg:
                problems.append(msg)
    msg = check_cos_sin(inputs, cfg)
    if msg:
        problems.append(msg)
    return problems, None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rcsim", required=True, help="path to the rcsim binary")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--mutant", default="", help="run under a planted bug; pass iff caught")
    ap.add_argument("--only", default="", help="run only cases whose name contains this")
    ap.add_argument("--keep", default="", help="directory to keep case files in (default: temp)")
    args = ap.parse_args()
    cases = [c for c in grid_cases(args.seed) + edge_cases(args.seed) if args.only in c["name"]]
    print(f"independent reference grid: seed {args.seed}, {len(cases)} cases"
          + (f", mutant {args.mutant}" if args.mutant else ""))
    root = args.keep or tempfile.mkdtemp(prefix="rcsim-oracle-")
    failed = 0
    for i, case in enumerate(cases):
        work = os.path.join(root, f"{i:03d}")
        os.makedirs(work, exist_ok=True)
        problems, error = run_case(args.rcsim, case, work, args.mutant)
        if error:
            print(f"ERROR {case['name']}: {error}\nREPRO: {args.rcsim} case --in "
                  f"{os.path.join(work, 'case.json')} --out DIR")
            return 2
        if problems:
            failed += 1
            if args.mutant:
                print(f"mutant {args.mutant} caught by {case['name']}: {problems[0]}")
                return 0
            print(f"FAIL {case['name']}:")
            for p in problems:
                print(f"  {p}")
            print(f"REPRO: {args.rcsim} case --in {os.path.join(work, 'case.json')} --out DIR"
                  f"   (grid: check_case_grid.py --rcsim {args.rcsim} --seed {args.seed} "
                  f"--only {case['name']})")
        elif not args.keep:
            shutil.rmtree(work)
    if args.mutant:
        print(f"mutant {args.mutant} NOT caught by any of {len(cases)} cases")
        return 1
    print(f"{len(cases) - failed} passed, {failed} failed")
    if failed == 0 and not args.keep:
        shutil.rmtree(root)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

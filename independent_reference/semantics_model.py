"""An independent model of one rope_cache call, in numpy, written from
../shared/reference/semantics.md (sections 1.6, 2.1-2.6) and HF Qwen3's formulas - not from
rcsim's kernels/common or kernels/cpu. It exists so that a mistake in rcsim's shared math (which the
CPU reference and the GPU kernels both use, so every differential test misses it) still shows.

How it differs from rcsim's code on purpose:
  * conversions are "nearest representable value" searches over the format's value set (bf16 by the
    two neighbouring truncations compared in float64, fp8 by a table of all codes), not bit tricks;
    fp16 is numpy's own float16 cast;
  * every fp32 operation is a numpy float32 ufunc on whole arrays (one rounding per operation, no
    FMA), with the fused kernel's reduction order written out as array operations: 32 lanes of
    D/32 contiguous elements summed sequentially, then an xor butterfly 16, 8, 4, 2, 1;
  * cache writes index the documented logical shapes (K [NB, H, D/x, BS, x], V shuffle
    [NB, H, BS/x, D, x], V plain [NB, H, D, BS], scales [NB, H, BS]) through numpy reshapes, never
    through an offset formula.
"""
import numpy as np

F32 = np.float32
LANES = 32
BUTTERFLY_MASKS = (16, 8, 4, 2, 1)
AMAX_FLOOR = F32(1e-8)  # AITER@HEAD kFp8KvQuantAbsmaxFloorF32
FP8_MAX = {"fp8_e4m3fn": 448.0, "fp8_e4m3fnuz": 240.0}


# ---- storage formats ------------------------------------------------------------------------
def bf16_to_f32(bits):
    return (np.asarray(bits, dtype=np.uint32) << 16).view(F32)


def f32_to_bf16(values):
    """Round-to-nearest-even onto the bf16 grid: pick the nearer of the two bf16 numbers around
    the value (its truncation and the next one away from zero), ties to the even code."""
    v = np.asarray(values, dtype=F32)
    u = v.view(np.uint32)
    lo = (u >> 16).astype(np.uint32)
    hi = lo + 1
    v64 = v.astype(np.float64)
    lo64 = bf16_to_f32(lo).astype(np.float64)
    hi_exp_all_ones = (hi & 0x7F80) == 0x7F80
    with np.errstate(over="ignore", invalid="ignore"):
        hi64 = np.where(hi_exp_all_ones, np.copysign(2.0**128, v64),
                        bf16_to_f32(hi & 0xFFFF).astype(np.float64))
        d_lo = np.abs(v64 - lo64)
        d_hi = np.abs(hi64 - v64)
    take_hi = (d_hi < d_lo) | ((d_hi == d_lo) & ((lo & 1) == 1))
    out = np.where(take_hi, hi, lo).astype(np.uint32)
    nan = np.isnan(v)
    out = np.where(nan, (u >> 16) | 0x0040, out)  # a quiet NaN keeps its sign
    exact = (u & 0xFFFF) == 0  # already on the grid (also +-0 and +-inf)
    out = np.where(exact & ~nan, u >> 16, out)
    return out.astype(np.uint16)


def fp16_to_f32(bits):
    return np.asarray(bits, dtype=np.uint16).view(np.float16).astype(F32)


def f32_to_fp16(values):
    return np.asarray(values, dtype=F32).astype(np.float16).view(np.uint16)


def act_to_f32(bits, act):
    return bf16_to_f32(bits) if act == "bf16" else fp16_to_f32(bits)


def f32_to_act(values, act):
    return f32_to_bf16(values) if act == "bf16" else f32_to_fp16(values)


def fp8_value_table(kind):
    """Values of the 128 non-negative codes of e4m3 (fn: bias 7, S.1111.111 is NaN; fnuz: bias 8,
    only 0x80 is NaN), from the format definition; NaN codes are NaN."""
    bias = 7 if kind == "fp8_e4m3fn" else 8
    vals = np.empty(128, dtype=np.float64)
    for code in range(128):
        e, m = code >> 3, code & 7
        vals[code] = (m / 8.0) * 2.0 ** (1 - bias) if e == 0 else (1 + m / 8.0) * 2.0 ** (e - bias)
    if kind == "fp8_e4m3fn":
        vals[0x7F] = np.nan
    return vals


def f32_to_fp8(values, kind):
    """RNE onto the e4m3 grid with saturation to +-max (ck_tile's clip mode, semantics.md 2.4);
    NaN -> the format's NaN; e4m3fnuz has no -0."""
    table = fp8_value_table(kind)
    finite_codes = np.arange(128)[~np.isnan(table)]
    grid = table[finite_codes]  # increasing
    v = np.asarray(values, dtype=F32).astype(np.float64)
    mag = np.minimum(np.abs(v), grid[-1])  # saturate (inf included)
    idx = np.clip(np.searchsorted(grid, mag), 1, len(grid) - 1)
    below, above = grid[idx - 1], grid[idx]
    d_below, d_above = mag - below, above - mag
    code_below, code_above = finite_codes[idx - 1], finite_codes[idx]
    pick_above = (d_above < d_below) | ((d_above == d_below) & (code_above % 2 == 0))
    code = np.where(pick_above, code_above, code_below)
    code = np.where(mag <= grid[0], 0, code)
    negative = np.signbit(v)
    if kind == "fp8_e4m3fnuz":
        out = np.where(negative & (code != 0), code | 0x80, code)
        out = np.where(np.isnan(v), 0x80, out)
    else:
        out = np.where(negative, code | 0x80, code)
        out = np.where(np.isnan(v), np.where(negative, 0xFF, 0x7F), out)
    return out.astype(np.uint8)


def fp8_is_nan(codes, kind):
    codes = np.asarray(codes, dtype=np.uint8)
    return (codes & 0x7F) == 0x7F if kind == "fp8_e4m3fn" else codes == 0x80


# ---- the math -------------------------------------------------------------------------------
def sum_squares_32_lanes(x):
    """x: [N, D] float32. The fused kernel's order: lane l sums the squares of its D/32 contiguous
    elements sequentially (s = s + x*x, two roundings), then an xor butterfly over the 32 lanes
    (v[l] = v[l] + v[l ^ mask] for mask 16, 8, 4, 2, 1); lane 0 holds the result."""
    n_rows, dim = x.shape
    per_lane = dim // LANES
    lanes = x.reshape(n_rows, LANES, per_lane)
    s = np.zeros((n_rows, LANES), dtype=F32)
    for i in range(per_lane):
        sq = lanes[:, :, i] * lanes[:, :, i]
        s = s + sq
    lane_ids = np.arange(LANES)
    for mask in BUTTERFLY_MASKS:
        s = s + s[:, lane_ids ^ mask]
    return s[:, 0]


def rms_norm(x, w, eps):
    """HF Qwen3RMSNorm as AITER's kernels evaluate it: fp32 1 / sqrt(mean(x^2) + eps), then
    (x * rcp) * w in fp32; the caller rounds once to the activation dtype."""
    dim = x.shape[1]
    mean = sum_squares_32_lanes(x) / F32(dim)
    rcp = F32(1.0) / np.sqrt(mean + F32(eps))
    return (x * rcp[:, None]) * w[None, :]


def rope(x, cos_rows, sin_rows, rotary_dim, is_neox):
    """x: [N, D] float32; cos_rows/sin_rows: [N, rotary_dim/2] float32 (each row's position).
    NeoX (HF rotate_half): pairs (j, j + rot/2); GPT-J: pairs (2j, 2j+1). For a pair (a, b) at
    frequency j: a' = a*cos_j - b*sin_j, b' = b*cos_j + a*sin_j, each product and the sum rounded
    to fp32 (the subtraction is the addition of the negated product). Dims >= rot pass through."""
    out = x.copy()
    half = rotary_dim // 2
    if is_neox:
        a, b = x[:, :half], x[:, half:rotary_dim]
        out[:, :half] = a * cos_rows + (-b) * sin_rows
        out[:, half:rotary_dim] = b * cos_rows + a * sin_rows
    else:
        a, b = x[:, 0:rotary_dim:2], x[:, 1:rotary_dim:2]
        out[:, 0:rotary_dim:2] = a * cos_rows + (-b) * sin_rows
        out[:, 1:rotary_dim:2] = b * cos_rows + a * sin_rows
    return out


def per_token_scale(head_values, kind, amax_floor):
    """scale = amax / fp8_max per row (amax floored at 1e-8 iff amax_floor), float32."""
    amax = np.max(np.abs(head_values), axis=1)
    if amax_floor:
        amax = np.where(amax >= AMAX_FLOOR, amax, AMAX_FLOOR)
    return (amax / F32(FP8_MAX[kind])).astype(F32)


# ---- one call -------------------------------------------------------------------------------
class Case:
    """The inputs (as rcsim case wrote them under inputs/) and the config of meta.json."""

    def __init__(self, cfg, inputs):
        self.cfg = cfg
        self.inp = inputs
        self.act = cfg["act_dtype"]
        self.hq, self.hkv, self.dim = cfg["num_heads_q"], cfg["num_heads_kv"], cfg["head_dim"]
        self.rot = cfg["rotary_dim"]
        self.tokens = inputs["qkv"].shape[0]

    def heads(self, first, count):
        """[T*count, D] float32 of heads first..first+count-1 of every token (token-major)."""
        qkv = self.inp["qkv"].reshape(self.tokens, self.hq + 2 * self.hkv, self.dim)
        return act_to_f32(qkv[:, first:first + count, :], self.act).reshape(-1, self.dim)

    def cos_sin_rows(self, heads_per_token):
        table = act_to_f32(self.inp["cos_sin_cache"], self.act)
        rows = table[np.repeat(self.inp["positions"], heads_per_token)]
        half = self.rot // 2
        return rows[:, :half], rows[:, half:self.rot]

    def round_act(self, values):
        bits = f32_to_act(values, self.act)
        return bits, act_to_f32(bits, self.act)


def norm_then_rope(case, x, w, heads):
    _, normed = case.round_act(rms_norm(x, w, case.cfg["eps"]))
    cos, sin = case.cos_sin_rows(heads)
    return case.round_act(rope(normed, cos, sin, case.rot, case.cfg["is_neox"]))


def rope_then_norm(case, x, w, heads):
    cos, sin = case.cos_sin_rows(heads)
    roped_bits, roped = case.round_act(rope(x, cos, sin, case.rot, case.cfg["is_neox"]))
    bits, values = case.round_act(rms_norm(roped, w, case.cfg["eps"]))
    return roped_bits, bits, values


def write_caches(case, k_bits, k_vals, v_bits, v_vals, v_layout, quant_divides, out):
    """Writes every token with slot >= 0 into out's caches (and scales for fp8)."""
    cfg = case.cfg
    kv = cfg["kv_cache_dtype"]
    nb, h, bs, d = cfg["num_blocks"], case.hkv, cfg["block_size"], case.dim
    x = 16 // (1 if kv.startswith("fp8") else 2)
    k5 = out["k_cache"].reshape(nb, h, d // x, bs, x)
    v_shuffle = out["v_cache"].reshape(nb, h, bs // x, d, x)
    v_plain = out["v_cache"].reshape(nb, h, d, bs)
    dims = np.arange(d)
    k_rows = {"bits": k_bits.reshape(case.tokens, h, d), "vals": k_vals.reshape(case.tokens, h, d)}
    v_rows = {"bits": v_bits.reshape(case.tokens, h, d), "vals": v_vals.reshape(case.tokens, h, d)}
    for side, rows in (("k", k_rows), ("v", v_rows)):
        if kv == "auto":
            stored = rows["bits"]
        else:
            flat = rows["vals"].reshape(-1, d)
            scale = per_token_scale(flat, kv, cfg["amax_floor"])
            with np.errstate(divide="ignore", invalid="ignore"):  # a zero head without the
                if quant_divides:                                  # floor is 0/0 = NaN (2.1)
                    q = flat / scale[:, None]
                else:
                    q = flat * (F32(1.0) / scale)[:, None]
            stored = f32_to_fp8(q, kv).reshape(case.tokens, h, d)
            scales = scale.reshape(case.tokens, h)
        for t, slot in enumerate(case.inp["slot_mapping"]):
            if slot < 0:
                continue  # padding: never cached
            blk, off = int(slot) // bs, int(slot) % bs
            for head in range(h):
                if side == "k":
                    k5[blk, head, dims // x, off, dims % x] = stored[t, head]
                elif v_layout == "shuffle":
                    v_shuffle[blk, head, off // x, dims, off % x] = stored[t, head]
                else:
                    v_plain[blk, head, dims, off] = stored[t, head]
                if kv != "auto":
                    out[side + "_scale"].reshape(nb, h, bs)[blk, head, off] = scales[t, head]


def expected_outputs(cfg, inputs, path, v_layout):
    """path: 'fused' (branch A), 'rope-then-norm' (branch C, PR #279's order) or
    'norm-then-rope' (branch C, the model's order). Returns {name: array} for qkv, q, k, k_cache,
    v_cache and, for fp8 caches, k_scale and v_scale - every array whole, untouched memory
    included (it keeps the input's sentinel bytes)."""
    case = Case(cfg, inputs)
    hq, hkv, dim, tokens = case.hq, case.hkv, case.dim, case.tokens
    qw = act_to_f32(inputs["q_weight"], case.act)
    kw = act_to_f32(inputs["k_weight"], case.act)
    q_in, k_in, v_in = case.heads(0, hq), case.heads(hq, hkv), case.heads(hq + hkv, hkv)
    out = {name: inputs[name].copy() for name in ("qkv", "k_cache", "v_cache")}
    if cfg["kv_cache_dtype"] != "auto":
        out["k_scale"] = inputs["k_scale"].copy()
        out["v_scale"] = inputs["v_scale"].copy()
    qkv3 = out["qkv"].reshape(tokens, hq + 2 * hkv, dim)
    if path == "fused" or path == "norm-then-rope":
        q_bits, _ = norm_then_rope(case, q_in, qw, hq)
        k_bits, k_vals = norm_then_rope(case, k_in, kw, hkv)
        if path == "fused":  # written back in place; C in the model's order leaves qkv alone
            qkv3[:, :hq, :] = q_bits.reshape(tokens, hq, dim)
            qkv3[:, hq:hq + hkv, :] = k_bits.reshape(tokens, hkv, dim)
    else:
        q_roped, q_bits, _ = rope_then_norm(case, q_in, qw, hq)
        k_roped, k_bits, k_vals = rope_then_norm(case, k_in, kw, hkv)
        qkv3[:, :hq, :] = q_roped.reshape(tokens, hq, dim)  # RoPE ran in place on qkv's views
        qkv3[:, hq:hq + hkv, :] = k_roped.reshape(tokens, hkv, dim)
    v_bits = inputs["qkv"].reshape(tokens, hq + 2 * hkv, dim)[:, hq + hkv:, :].reshape(-1, dim)
    write_caches(case, k_bits, k_vals, v_bits, v_in, "shuffle" if path == "fused" else v_layout,
                 quant_divides=(path == "fused"), out=out)
    out["q"] = q_bits.reshape(tokens, hq, dim)
    out["k"] = k_bits.reshape(tokens, hkv, dim)
    return out


def expected_cos_sin(cfg, theta):
    """The RoPE table as aiter builds it (semantics.md 1.1): inv_freq[j] = 1 / theta^(2j/rot)
    rounded to fp32, angle = fp32(p) * inv_freq[j] in fp32; cos/sin evaluated in float64 here and
    rounded to the activation dtype. Returns (bits, values as float64 before rounding)."""
    rot, max_pos = cfg["rotary_dim"], cfg["max_position"]
    j = np.arange(rot // 2, dtype=np.float64)
    inv_freq = (1.0 / np.power(theta, 2.0 * j / rot)).astype(F32)
    angle = np.arange(max_pos, dtype=F32)[:, None] * inv_freq[None, :]
    exact = np.concatenate([np.cos(angle.astype(np.float64)), np.sin(angle.astype(np.float64))],
                           axis=1)
    return f32_to_act(exact.astype(F32), cfg["act_dtype"]), exact


def fp8_decode(codes, kind):
    """fp32 values of e4m3 codes, from the format's value table (sign bit applied by hand; NaN
    codes decode to NaN)."""
    codes = np.asarray(codes, dtype=np.uint8)
    mag = fp8_value_table(kind)[codes & 0x7F]
    val = np.where(codes & 0x80, -mag, mag)
    if kind == "fp8_e4m3fnuz":
        val = np.where(codes == 0x80, np.nan, val)
    return val.astype(F32)


def dequantised_cache(cfg, codes, scales, side, v_layout):
    """What attention reads from an fp8 cache (semantics.md 2.4: stored = fp8(x / s), so x ~
    decode(stored) * s), in the logical order [NB, H, BS, D]: the codes are reordered from their
    documented layout by numpy reshapes, decoded by fp8_decode and multiplied by their token's
    scale in one fp32 multiply. side 'k' or 'v'; v_layout 'shuffle' or 'plain'."""
    kind = cfg["kv_cache_dtype"]
    nb, h, bs, d, x = (cfg["num_blocks"], cfg["num_heads_kv"], cfg["block_size"],
                       cfg["head_dim"], 16)
    flat = np.asarray(codes).reshape(-1)
    if side == "k":
        logical = flat.reshape(nb, h, d // x, bs, x).transpose(0, 1, 3, 2, 4)
    elif v_layout == "shuffle":
        logical = flat.reshape(nb, h, bs // x, d, x).transpose(0, 1, 2, 4, 3)
    else:
        logical = flat.reshape(nb, h, d, bs).transpose(0, 1, 3, 2)
    values = fp8_decode(logical.reshape(nb, h, bs, d), kind)
    s = np.asarray(scales, dtype=F32).reshape(nb, h, bs, 1)
    with np.errstate(invalid="ignore", over="ignore"):
        return np.ascontiguousarray(values * s, dtype=F32)

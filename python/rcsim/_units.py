"""Each kernel's work units and their footprints, for injecting faults into *any* callable with
the kernel's signature (AITER's own op, rcsim.kernels, a user's wrapper).

The unit orders are those of core/kernel_interfaces.h (the real GPU kernels' block order). A unit's
footprint is every element it may write, as (region, argument, index) pieces; an index works on
NumPy arrays and PyTorch tensors alike. A torn write copies the pieces of units [0, k) from a
scratch run into the caller's tensors: footprints may include elements a unit only reads (a V
slice of qkv), which the scratch run left equal to the caller's, so copying them changes nothing.
"""
from ._tensors import heads_view, is_torch, to_list

_ALL = slice(None)


class Bound:
    """A call's arguments by parameter name, and how to call again with some replaced."""

    def __init__(self, params, args, kwargs):
        if len(args) > len(params):
            raise TypeError(f"too many positional arguments ({len(args)} > {len(params)})")
        self.values = dict(zip(params, args))
        for name, value in kwargs.items():
            if name in self.values:
                raise TypeError(f"argument {name!r} given twice")
            self.values[name] = value
        self._positional = len(args)
        self._params = params
        self._kw = list(kwargs)

    def __getitem__(self, name):
        return self.values.get(name)

    def call(self, fn, replaced):
        vals = dict(self.values, **replaced)
        args = [vals[p] for p in self._params[:self._positional]]
        return fn(*args, **{k: vals[k] for k in self._kw})


def _cache5(v_cache, x):
    """A 4-D [NB, H, D, BS] label over shuffle memory as its 5-D [NB, H, BS/x, D, x] view."""
    if v_cache.ndim == 5:
        return v_cache
    nb, h, d, bs = v_cache.shape
    shape = (nb, h, bs // x, d, x)
    return v_cache.view(*shape) if is_torch(v_cache) else v_cache.reshape(shape)


def _slot_pieces(region, key_cache, v_cache, v_shuffle, x, bs, head, slot, k_scale=None,
                 v_scale=None):
    """The cache elements of one (kv head, slot): K x-packed, V shuffle or plain, scales."""
    if slot < 0:
        return []
    blk, off = divmod(slot, bs)
    out = [(region, key_cache, (blk, head, _ALL, off, _ALL))]
    if v_shuffle:
        out.append((region, v_cache, (blk, head, off // x, _ALL, off % x)))
    else:
        out.append((region, v_cache, (blk, head, _ALL, off)))
    for s in (k_scale, v_scale):
        if s is not None:
            out.append((region, s, (blk, head, off)))
    return out


class KernelModel:
    name = ""
    site = ""
    params = ()
    outputs = ()  # arguments the kernel writes in place
    regions = ("all",)

    def bind(self, args, kwargs):
        return Bound(self.params, args, kwargs)

    def fp8_dtype(self, b):
        return b["kv_cache_dtype"] or "auto"


class Fused(KernelModel):
    name = "fused_qk_norm_rope_cache_quant_shuffle"
    site = "fused"
    params = ("qkv", "num_heads_q", "num_heads_k", "num_heads_v", "head_dim", "eps", "qw", "kw",
              "cos_sin_cache", "is_neox_style", "pos_ids", "k_cache", "v_cache", "slot_mapping",
              "kv_cache_dtype", "k_scale", "v_scale")
    outputs = ("qkv", "k_cache", "v_cache", "k_scale", "v_scale")
    regions = ("q", "k", "v", "cache")

    def geometry(self, b):
        hq, hkv = b["num_heads_q"], b["num_heads_k"]
        t = b["qkv"].shape[0]
        return t, t * (hq + 2 * hkv)

    def pieces(self, b, units):
        hq, hkv, d = b["num_heads_q"], b["num_heads_k"], b["head_dim"]
        kc = b["k_cache"]
        x, bs = kc.shape[4], kc.shape[3]
        vc = _cache5(b["v_cache"], x)
        slots = to_list(b["slot_mapping"])
        heads = hq + 2 * hkv
        for g in units:
            t, h = divmod(g, heads)
            cols = (t, slice(h * d, (h + 1) * d))
            if h < hq:
                yield g, [("q", b["qkv"], cols)]
            elif h < hq + hkv:
                kh = h - hq
                p = [("k", b["qkv"], cols)]
                if slots[t] >= 0:
                    blk, off = divmod(slots[t], bs)
                    p.append(("cache", kc, (blk, kh, _ALL, off, _ALL)))
                    if b["k_scale"] is not None:
                        p.append(("cache", b["k_scale"], (blk, kh, off)))
                yield g, p
            else:
                vh = h - hq - hkv
                p = [("v", b["qkv"], cols)]
                if slots[t] >= 0:
                    blk, off = divmod(slots[t], bs)
                    p.append(("cache", vc, (blk, vh, off // x, _ALL, off % x)))
                    if b["v_scale"] is not None:
                        p.append(("cache", b["v_scale"], (blk, vh, off)))
                yield g, p


class RopeCache(KernelModel):
    name = "qk_rope_reshape_and_cache"
    site = "rope_cache"
    params = ("q", "k", "v", "k_cache", "v_cache", "slot_mapping", "positions", "cos_sin_cache",
              "k_scale", "v_scale", "is_neox", "flash_layout", "apply_scale", "kv_cache_dtype")
    outputs = ("q", "k", "k_cache", "v_cache")
    regions = ("q", "k", "cache")

    def geometry(self, b):
        t, hq = b["q"].shape[0], b["q"].shape[1]
        return t, t * hq

    def pieces(self, b, units):
        q, k = b["q"], b["k"]
        hq, hkv = q.shape[1], k.shape[1]
        group = hq // hkv
        kc, vc = b["k_cache"], b["v_cache"]
        x, bs = kc.shape[4], kc.shape[3]
        slots = to_list(b["slot_mapping"])
        for g in units:
            t, h = divmod(g, hq)
            p = [("q", q, (t, h))]
            if h % group == 0:
                kh = h // group
                p.append(("k", k, (t, kh)))
                p += _slot_pieces("cache", kc, vc, vc.ndim == 5, x, bs, kh, slots[t])
            yield g, p


class Rotary(KernelModel):
    name = "rotary_embedding"
    site = "fallback.rope"
    params = ("positions", "query", "key", "head_size", "cos_sin_cache", "is_neox")
    outputs = ("query", "key")
    regions = ("q", "k")

    def geometry(self, b):
        q = heads_view(b["query"], b["head_size"])
        k = heads_view(b["key"], b["head_size"])
        t = q.shape[0]
        return t, t * (q.shape[1] + (k.shape[1] if k is not None else 0))

    def pieces(self, b, units):
        q = heads_view(b["query"], b["head_size"])
        k = heads_view(b["key"], b["head_size"])
        rot = slice(0, b["cos_sin_cache"].shape[1])
        nq = q.shape[0] * q.shape[1]
        for g in units:
            if g < nq:
                t, h = divmod(g, q.shape[1])
                yield g, [("q", q, (t, h, rot))]
            else:
                t, h = divmod(g - nq, k.shape[1])
                yield g, [("k", k, (t, h, rot))]


class RmsNorm(KernelModel):
    name = "rms_norm"
    site = "fallback.norm"
    params = ("out", "input", "weight", "epsilon")
    outputs = ("out",)
    regions = ("out",)

    def geometry(self, b):
        out = b["out"]
        rows = out.shape[1] if out.ndim == 3 else 1
        return out.shape[0], out.shape[0] * rows

    def pieces(self, b, units):
        out = b["out"]
        rows = out.shape[1] if out.ndim == 3 else 1
        for g in units:
            t, h = divmod(g, rows)
            yield g, [("out", out, (t, h) if out.ndim == 3 else (t,))]


class ReshapeAndCache(KernelModel):
    name = "reshape_and_cache"
    site = "fallback.cache"
    params = ("key", "value", "key_cache", "value_cache", "slot_mapping", "kv_cache_dtype",
              "k_scale", "v_scale", "asm_layout")
    outputs = ("key_cache", "value_cache")
    regions = ("cache",)

    def geometry(self, b):
        t = b["key"].shape[0]
        return t, t

    def pieces(self, b, units):
        kc = b["key_cache"]
        x, bs = kc.shape[4], kc.shape[3]
        shuffle = bool(b["asm_layout"])
        vc = _cache5(b["value_cache"], x) if shuffle else b["value_cache"]
        slots = to_list(b["slot_mapping"])
        for g in units:
            p = []
            for h in range(b["key"].shape[1]):
                p += _slot_pieces("cache", kc, vc, shuffle, x, bs, h, slots[g])
            yield g, p


class PerTokenQuantCache(KernelModel):
    name = "reshape_and_cache_with_pertoken_quant"
    site = "fallback.cache"
    params = ("key", "value", "key_cache", "value_cache", "k_dequant_scales", "v_dequant_scales",
              "slot_mapping", "asm_layout", "kv_cache_dtype")
    outputs = ("key_cache", "value_cache", "k_dequant_scales", "v_dequant_scales")
    regions = ("cache",)

    def geometry(self, b):
        t, h = b["key"].shape[0], b["key"].shape[1]
        return t, t * h

    def pieces(self, b, units):
        kc = b["key_cache"]
        x, bs = kc.shape[4], kc.shape[3]
        shuffle = bool(b["asm_layout"])
        vc = _cache5(b["value_cache"], x) if shuffle else b["value_cache"]
        slots = to_list(b["slot_mapping"])
        hkv = b["key"].shape[1]
        for g in units:
            t, h = divmod(g, hkv)
            yield g, _slot_pieces("cache", kc, vc, shuffle, x, bs, h, slots[t],
                                  b["k_dequant_scales"], b["v_dequant_scales"])


MODELS = {m.name: m for m in (Fused(), RopeCache(), Rotary(), RmsNorm(), ReshapeAndCache(),
                              PerTokenQuantCache())}
MODELS["fused_qk_rope_reshape_and_cache"] = MODELS["qk_rope_reshape_and_cache"]


def model_for(fn, kernel=None):
    """The model of `fn`: named by `kernel`, else by the function's name."""
    name = kernel or getattr(fn, "__name__", None)
    if name not in MODELS:
        raise ValueError(f"rcsim.faults: unknown kernel {name!r}; pass kernel= one of "
                         f"{', '.join(sorted(MODELS))}")
    return MODELS[name]



"""Seeded inputs at Qwen3 shapes for tests of code that calls the rope_cache kernels.

One seed drives every value (rcsim's PRNG, core/prng.h): activations non-zero in +-[0.05, 2),
q/k RMSNorm weights positive and near 1 (0.8 to 1.25, not pair-symmetric, as trained Qwen3
checkpoints are), cos/sin from RoPE theta 1e6, distinct slots with one padding token (-1), caches
and scales filled with a sentinel byte so unwritten memory is visible.
"""
import numpy as np

from . import _rcsim
from ._tensors import torch

SHAPES = {  # (num_heads_q, num_heads_kv, head_dim) per rank
    "qwen3-8b": (32, 8, 128),
    "qwen3-235b-tp8": (8, 1, 128),  # 64 q heads, 4 kv heads over 8 ranks: kv replicated
    "qwen3-0.6b": (16, 8, 128),
}
SENTINEL = 0x5A
ROPE_THETA = 1_000_000.0


def _bf16_bits(f32):
    """fp32 -> bf16 bits, round to nearest even (finite inputs)."""
    u = np.asarray(f32, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def cos_sin_table(max_position, rotary_dim, theta=ROPE_THETA):
    """[max_pos, rotary_dim] bf16 bits: cos half then sin half, as ATOM's cos_sin_cache."""
    inv_freq = 1.0 / theta ** (np.arange(0, rotary_dim, 2, dtype=np.float32) / rotary_dim)
    freqs = np.outer(np.arange(max_position, dtype=np.float32), inv_freq.astype(np.float32))
    return _bf16_bits(np.concatenate([np.cos(freqs), np.sin(freqs)], axis=1))


class Case:
    """One rope_cache call's inputs. Tensors are NumPy (bf16 as uint16, fp8 as uint8) or PyTorch
    (bfloat16, uint8 fp8 codes) on `device`."""

    def __init__(self, seed, *, shape="qwen3-8b", tokens=8, kv_cache_dtype="auto",
                 block_size=16, num_blocks=8, max_position=512, lib="numpy", device="cpu",
                 eps=1e-6, weights=None):
        hq, hkv, d = SHAPES[shape]
        self.seed, self.shape, self.tokens = seed, shape, tokens
        self.num_heads_q, self.num_heads_kv, self.head_dim = hq, hkv, d
        self.kv_cache_dtype = kv_cache_dtype
        self.block_size, self.num_blocks = block_size, num_blocks
        self.eps, self.is_neox, self.lib, self.device = eps, True, lib, device
        fp8 = kv_cache_dtype != "auto"
        x = 16 if fp8 else 8
        prng = _rcsim.Prng.stream(seed, "python.case")

        def values(label, n, lo, hi, signed=True):
            raw = _rcsim.random_values(seed, label, n, "bf16", lo, hi, signed)
            return np.frombuffer(raw, dtype=np.uint16).copy()

        qkv = values("qkv", tokens * (hq + 2 * hkv) * d, 0.05, 2.0).reshape(tokens, -1)
        if weights == "symmetric":  # w[d] == w[d + D/2]: the fallback's order then commutes
            half = values("q_norm", d // 2, 0.8, 1.25, signed=False)
            qw = np.concatenate([half, half])
            half = values("k_norm", d // 2, 0.8, 1.25, signed=False)
            kw = np.concatenate([half, half])
        else:
            qw = values("q_norm", d, 0.8, 1.25, signed=False)
            kw = values("k_norm", d, 0.8, 1.25, signed=False)
        cos_sin = cos_sin_table(max_position, d)
        positions = np.array([prng.range(0, max_position - 1) for _ in range(tokens)], np.int64)
        slots = list(range(num_blocks * block_size))
        for i in range(len(slots) - 1, 0, -1):  # Fisher-Yates from the seed: distinct slots
            j = prng.range(0, i)
            slots[i], slots[j] = slots[j], slots[i]
        slot_mapping = np.array(slots[:tokens], np.int64)
        if tokens > 1:
            slot_mapping[prng.range(0, tokens - 1)] = -1  # one padding token
        cache_dt = np.uint8 if fp8 else np.uint16
        k_cache = np.full((num_blocks, hkv, d // x, block_size, x), 0, cache_dt)
        v_cache = np.full((num_blocks, hkv, d, block_size), 0, cache_dt)
        k_cache.view(np.uint8)[...] = SENTINEL
        v_cache.view(np.uint8)[...] = SENTINEL
        scales = None
        if fp8:
            scales = [np.zeros((num_blocks, hkv, block_size), np.float32) for _ in range(2)]
            for s in scales:
                s.view(np.uint8)[...] = SENTINEL
        arrays = dict(qkv=qkv, q_weight=qw, k_weight=kw, cos_sin_cache=cos_sin,
                      positions=positions, slot_mapping=slot_mapping, k_cache=k_cache,
                      v_cache=v_cache, k_scale=scales[0] if fp8 else None,
                      v_scale=scales[1] if fp8 else None)
        for name, a in arrays.items():
            setattr(self, name, self._convert(a))

    def _convert(self, a):
        if a is None or self.lib == "numpy":
            return a
        if self.lib != "torch" or torch is None:
            raise ValueError(f"lib {self.lib!r} is not numpy or torch "
                             "(is python3-torch installed?)")
        if a.dtype == np.uint16:
            t = torch.from_numpy(a.view(np.int16).copy()).view(torch.bfloat16)
        else:
            t = torch.from_numpy(a.copy())
        return t.to(self.device)

    def clone(self):
        """An independent copy (same values) for a second run."""
        other = object.__new__(Case)
        other.__dict__.update(self.__dict__)
        for name in ("qkv", "q_weight", "k_weight", "cos_sin_cache", "positions", "slot_mapping",
                     "k_cache", "v_cache", "k_scale", "v_scale"):
            v = getattr(self, name)
            if v is not None:
                setattr(other, name, v.clone() if self.lib == "torch" else v.copy())
        return other

    def split(self):
        """q [T, Hq, D], k, v [T, Hkv, D]: views into qkv, as torch.split gives them in ATOM."""
        t, d = self.tokens, self.head_dim
        hq, hkv = self.num_heads_q, self.num_heads_kv
        heads = self.qkv.view(t, hq + 2 * hkv, d) if self.lib == "torch" else \
            self.qkv.reshape(t, hq + 2 * hkv, d)
        return heads[:, :hq], heads[:, hq:hq + hkv], heads[:, hq + hkv:]

    def fused_args(self):
        """The arguments of fused_qk_norm_rope_cache_quant_shuffle, in AITER's order."""
        return (self.qkv, self.num_heads_q, self.num_heads_kv, self.num_heads_kv, self.head_dim,
                self.eps, self.q_weight, self.k_weight, self.cos_sin_cache, self.is_neox,
                self.positions, self.k_cache, self.v_cache, self.slot_mapping,
                self.kv_cache_dtype, self.k_scale, self.v_scale)

    def tensors(self):
        """Every tensor a rope_cache call may write, by name."""
        d = dict(qkv=self.qkv, k_cache=self.k_cache, v_cache=self.v_cache)
        if self.k_scale is not None:
            d.update(k_scale=self.k_scale, v_scale=self.v_scale)
        return d

    def describe(self):
        return (f"Case(seed={self.seed}, shape={self.shape}, tokens={self.tokens}, "
                f"kv_cache_dtype={self.kv_cache_dtype}, lib={self.lib}, device={self.device})")

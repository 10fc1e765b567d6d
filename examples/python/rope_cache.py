"""A Python rope_cache() written from ATOM PR #279's description (semantics.md 1.2-1.6), the
code rcsim's C++ dispatcher ports, so its own tests can run the real Python logic under rcsim's
faults. Works on PyTorch tensors (as ATOM does) and on NumPy arrays.

    A  fused_qk_norm_rope_cache_quant_shuffle when rotary, q_norm and k_norm are all present:
       qkv is cloned before every attempt; on any exception the warning is logged once per
       process (a class attribute), qkv is restored from the clone, and the call falls back.
    B  qk_rope_reshape_and_cache (RoPE + cache, no norm) when A did not succeed and
       use_triton_attn and rotary and q_norm is None (the PR's guard: B never normalises).
    C  otherwise: rotary_embedding in place, then q_norm and k_norm into new tensors (the PR's
       order: RoPE before the norms), then reshape_and_cache (per-token quant for fp8).

`ops` holds the kernels (rcsim.kernels by default; a test passes rcsim.faults-wrapped ones).
`planted_bug` makes one of three deliberate mistakes, for the negative tests:
    "skip_restore"            the except clause does not restore qkv
    "branch_b_after_failure"  the q_norm-is-None guard on B is dropped
    "warn_every_call"         the warning is logged on every failed call
"""
import logging
import types

import numpy as np

import rcsim

logger = logging.getLogger("atom")
PLANTED_BUGS = ("skip_restore", "branch_b_after_failure", "warn_every_call")


def default_ops():
    k = rcsim.kernels
    return types.SimpleNamespace(
        fused_qk_norm_rope_cache_quant_shuffle=k.fused_qk_norm_rope_cache_quant_shuffle,
        qk_rope_reshape_and_cache=k.qk_rope_reshape_and_cache,
        rotary_embedding=k.rotary_embedding, rms_norm=k.rms_norm,
        reshape_and_cache=k.reshape_and_cache,
        reshape_and_cache_with_pertoken_quant=k.reshape_and_cache_with_pertoken_quant)


def _is_torch(x):
    return type(x).__module__.startswith("torch")


def _clone(x):
    return x.clone() if _is_torch(x) else x.copy()


def _copy_(dst, src):
    if _is_torch(dst):
        dst.copy_(src)
    else:
        np.copyto(dst, src)


def _empty_like_contiguous(x):
    if _is_torch(x):
        import torch
        return torch.empty(x.shape, dtype=x.dtype, device=x.device)
    return np.empty(x.shape, dtype=x.dtype)


class RMSNorm:
    """ATOM's RMSNorm(head_dim, eps): a weight and an eps; forward returns a new tensor."""

    def __init__(self, weight, eps):
        self.weight, self.eps = weight, eps


class RotaryEmbedding:
    def __init__(self, cos_sin_cache, is_neox_style=True):
        self.cos_sin_cache, self.is_neox_style = cos_sin_cache, is_neox_style


class PagedAttentionImpl:
    _fused_rope_warned = False  # process-wide, as the PR's class attribute

    def __init__(self, num_heads, num_kv_heads, head_dim, *, rotary_emb, q_norm, k_norm,
                 kv_cache_dtype="auto", sliding_window=-1, ops=None, planted_bug=None):
        if planted_bug not in (None,) + PLANTED_BUGS:
            raise ValueError(f"planted_bug {planted_bug!r} is not one of {PLANTED_BUGS}")
        self.num_heads, self.num_kv_heads, self.head_dim = num_heads, num_kv_heads, head_dim
        self.rotary_emb, self.q_norm, self.k_norm = rotary_emb, q_norm, k_norm
        self.kv_cache_dtype = kv_cache_dtype
        self.use_triton_attn = sliding_window != -1 or head_dim != 128
        # ATOM's self.kv_scale for branch B (448/240 on fnuz, 1 on OCP e4m3fn and "auto").
        self.kv_scale = 448.0 / 240.0 if kv_cache_dtype == "fp8_e4m3fnuz" else 1.0
        self.ops = ops or default_ops()
        self.planted_bug = planted_bug
        self.last_branch = None  # "A", "B" or "C": what the last call ran

    def _norm(self, norm, x):
        out = _empty_like_contiguous(x)
        self.ops.rms_norm(out, x, norm.weight, norm.eps)
        return out

    def rope_cache(self, q, k, v, qkv, position, k_cache, v_cache, k_scale, v_scale,
                   slot_mapping):
        fused_ok = False
        rot = self.rotary_emb
        if rot is not None and self.q_norm is not None and self.k_norm is not None:
            qkv_backup = _clone(qkv)
            try:
                self.ops.fused_qk_norm_rope_cache_quant_shuffle(
                    qkv, self.num_heads, self.num_kv_heads, self.num_kv_heads, self.head_dim,
                    self.q_norm.eps, self.q_norm.weight, self.k_norm.weight, rot.cos_sin_cache,
                    rot.is_neox_style, position, k_cache, v_cache, slot_mapping,
                    self.kv_cache_dtype, k_scale, v_scale)
                fused_ok = True
                self.last_branch = "A"
            except Exception as e:  # noqa: BLE001 - the PR catches everything
                if (not getattr(PagedAttentionImpl, "_fused_rope_warned", False)
                        or self.planted_bug == "warn_every_call"):
                    logger.warning("fused_qk_norm_rope_cache_quant_shuffle failed (%s), "
                                   "falling back to non-fused path", e)
                    PagedAttentionImpl._fused_rope_warned = True
                if self.planted_bug != "skip_restore":
                    _copy_(qkv, qkv_backup)  # q, k, v alias qkv: restored with it
            del qkv_backup

        q_norm_guard = self.q_norm is None or self.planted_bug == "branch_b_after_failure"
        fp8 = self.kv_cache_dtype != "auto"
        if not fused_ok and self.use_triton_attn and rot is not None and q_norm_guard:
            self.last_branch = "B"
            self.ops.qk_rope_reshape_and_cache(
                q, k, v, k_cache, v_cache, slot_mapping, position, rot.cos_sin_cache,
                self.kv_scale, self.kv_scale, rot.is_neox_style, False, fp8,
                self.kv_cache_dtype)
        elif not fused_ok:
            self.last_branch = "C"
            if rot is not None:
                self.ops.rotary_embedding(position, q, k, self.head_dim, rot.cos_sin_cache,
                                          rot.is_neox_style)
            if self.q_norm is not None:
                q = self._norm(self.q_norm, q)
            if self.k_norm is not None:
                k = self._norm(self.k_norm, k)
            asm_layout = not self.use_triton_attn
            if fp8:
                self.ops.reshape_and_cache_with_pertoken_quant(
                    k, v, k_cache, v_cache, k_scale, v_scale, slot_mapping, asm_layout,
                    self.kv_cache_dtype)
            else:
                self.ops.reshape_and_cache(k, v, k_cache, v_cache, slot_mapping, "auto", None,
                                           None, asm_layout)
        return q, k, v, k_cache, v_cache, k_scale, v_scale

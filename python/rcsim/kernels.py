"""rcsim's reference kernels (the spec, bit-faithful to AITER's) with AITER-like signatures.

Every kernel works in place on the caller's NumPy arrays or PyTorch tensors (no copies: arrays
cross by the buffer protocol, tensors by DLPack), returns None as AITER's in-place ops do, and
raises ValueError before writing a byte when an argument is bad. Kernel failures raise
rcsim.errors types. bf16 is NumPy uint16 (or torch.bfloat16); fp8 caches are uint8 (or torch
float8) named by `kv_cache_dtype`: "auto", "fp8_e4m3fn" or "fp8_e4m3fnuz".

Work-unit orders (used by rcsim.faults, from core/kernel_interfaces.h):
  fused_qk_norm_rope_cache_quant_shuffle  (token, head) over Q, K, V heads
  qk_rope_reshape_and_cache               (token, q head)
  rotary_embedding                        q (token, head) pairs, then k pairs
  rms_norm                                (token, head) rows
  reshape_and_cache                       tokens
  reshape_and_cache_with_pertoken_quant   (token, kv head)
"""
from . import _rcsim
from ._tensors import fp8_name, for_kernel, is_cuda, scalar, torch


def _kv_dtype(kv_cache_dtype, cache):
    """Resolves AITER's platform name "fp8" from a float8 tensor's dtype; rcsim names pass."""
    named = fp8_name(cache)
    if kv_cache_dtype in (None, "fp8", "fp8_e4m3"):
        if named is None:
            if kv_cache_dtype is None:
                return "auto"
            raise ValueError(f"kv_cache_dtype '{kv_cache_dtype}' names the platform's fp8; "
                             "pass fp8_e4m3fn or fp8_e4m3fnuz (or float8 tensors)")
        return named
    return kv_cache_dtype


def _synchronized(tensors):
    """CUDA tensors: let PyTorch's queued work finish before rcsim's backend reads them."""
    if torch is not None and any(is_cuda(t) for t in tensors if t is not None):
        torch.cuda.synchronize()


def fused_qk_norm_rope_cache_quant_shuffle(qkv, num_heads_q, num_heads_k, num_heads_v, head_dim,
                                           eps, qw, kw, cos_sin_cache, is_neox_style, pos_ids,
                                           k_cache, v_cache, slot_mapping, kv_cache_dtype,
                                           k_scale=None, v_scale=None):
    """Branch A (AITER@Mar26 argument order): per (token, head) RMSNorm then RoPE in place on
    qkv [T, (Hq+2Hkv)*D]; K and V into the paged cache (shuffle V), per-token fp8 scales."""
    kv = _kv_dtype(kv_cache_dtype, k_cache)
    _synchronized((qkv, k_cache))
    _rcsim.fused_qk_norm_rope_cache_quant_shuffle(
        qkv, num_heads_q, num_heads_k, num_heads_v, head_dim, eps, qw, kw, cos_sin_cache,
        is_neox_style, pos_ids, for_kernel(k_cache), for_kernel(v_cache), slot_mapping, kv,
        k_scale, v_scale)


def qk_rope_reshape_and_cache(q, k, v, k_cache, v_cache, slot_mapping, positions, cos_sin_cache,
                              k_scale, v_scale, is_neox, flash_layout=False, apply_scale=False,
                              kv_cache_dtype=None):
    """Branch B (aiter fused_qk_rope_reshape_and_cache): RoPE q and k in place (no norm), K/V
    into the cache with a static per-tensor scale; a 4-D v_cache is the plain layout, 5-D the
    shuffle layout. cos_sin_cache is [max_pos, rotary_dim] (cos half, then sin half)."""
    kv = _kv_dtype(kv_cache_dtype, k_cache)
    _synchronized((q, k_cache))
    _rcsim.qk_rope_reshape_and_cache(
        q, k, v, for_kernel(k_cache), for_kernel(v_cache), slot_mapping, positions, cos_sin_cache,
        scalar(k_scale), scalar(v_scale), is_neox, flash_layout, apply_scale, kv)


fused_qk_rope_reshape_and_cache = qk_rope_reshape_and_cache


def rotary_embedding(positions, query, key, head_size, cos_sin_cache, is_neox):
    """RoPE in place (vLLM/AITER rotary_embedding): query [T, Hq, D] or [T, Hq*D], key likewise
    or None; rotary_dim = cos_sin_cache.shape[1]; fp32 math, one rounding."""
    _synchronized((query, key))
    _rcsim.rotary_embedding(positions, query, key, head_size, cos_sin_cache, is_neox)


def rms_norm(out, input, weight, epsilon):  # noqa: A002 - AITER's parameter name
    """Per-row RMSNorm (aiter rms_norm): out = x * rsqrt(mean(x^2) + eps) * weight, rows of
    [T, H, D] or [M, D]; out may alias input."""
    _synchronized((out, input))
    _rcsim.rms_norm(out, input, weight, epsilon)


def reshape_and_cache(key, value, key_cache, value_cache, slot_mapping, kv_cache_dtype,
                      k_scale=None, v_scale=None, asm_layout=False):
    """K/V [T, Hkv, D] into the paged cache ("auto" copy, or fp8 with per-tensor scales);
    asm_layout selects the shuffle V layout."""
    kv = _kv_dtype(kv_cache_dtype, key_cache)
    _synchronized((key, key_cache))
    _rcsim.reshape_and_cache(key, value, for_kernel(key_cache), for_kernel(value_cache),
                             slot_mapping, kv, scalar(k_scale), scalar(v_scale), asm_layout)


def reshape_and_cache_with_pertoken_quant(key, value, key_cache, value_cache, k_dequant_scales,
                                          v_dequant_scales, slot_mapping, asm_layout,
                                          kv_cache_dtype=None):
    """K/V into an fp8 cache with a dynamic scale per (token, kv head) stored at [NB, Hkv, BS].
    `kv_cache_dtype` (rcsim's addition) names the fp8 format of uint8 caches."""
    kv = _kv_dtype(kv_cache_dtype, key_cache)
    _synchronized((key, key_cache))
    _rcsim.reshape_and_cache_with_pertoken_quant(
        key, value, for_kernel(key_cache), for_kernel(value_cache), k_dequant_scales,
        v_dequant_scales, slot_mapping, asm_layout, kv)


ALL = (fused_qk_norm_rope_cache_quant_shuffle, qk_rope_reshape_and_cache, rotary_embedding,
       rms_norm, reshape_and_cache, reshape_and_cache_with_pertoken_quant)

"""Goal: rcsim.kernels validate like rcsim's C++ kernels (bad input: ValueError, nothing written)
and give bit-identical results on NumPy arrays and PyTorch tensors (the same memory crosses).

Method: seeded Qwen3-shaped cases; each bad-input case corrupts one argument, snapshots every
tensor, and checks that the call raised ValueError naming the problem and changed no byte.
"""
import numpy as np
import pytest
import torch

import rcsim
from rcsim import check
from rcsim._tensors import host_bits


def fused_call(case, **override):
    args = dict(zip(rcsim._units.Fused.params, case.fused_args()))
    args.update(override)
    rcsim.kernels.fused_qk_norm_rope_cache_quant_shuffle(**args)


BAD = [  # (what, override builder, message fragment)
    ("position beyond cos/sin", lambda c: {"pos_ids": c.positions + 10**6}, "position"),
    ("slot beyond the cache", lambda c: {"slot_mapping": c.slot_mapping + 10**6}, "slot"),
    ("weights of another dtype", lambda c: {"qw": np.ones(c.head_dim, np.float32)},
     "q_weight has dtype fp32"),
    ("unknown kv_cache_dtype", lambda c: {"kv_cache_dtype": "int4"}, "kv_cache_dtype"),
    ("num_heads_v != num_heads_k", lambda c: {"num_heads_v": c.num_heads_kv + 1}, "num_heads_v"),
    ("read-only qkv", lambda c: {"qkv": np.frombuffer(c.qkv.tobytes(), np.uint16)
                                 .reshape(c.qkv.shape)}, "read-only"),
    ("a Python list", lambda c: {"k_cache": [1, 2, 3]}, "NumPy array or a PyTorch tensor"),
]


@pytest.mark.parametrize("what,override,fragment", BAD, ids=[b[0] for b in BAD])
def test_bad_input_raises_value_error_and_writes_nothing(rcsim_seed, what, override, fragment):
    case = rcsim.cases.Case(rcsim_seed, shape="qwen3-0.6b")
    snap = check.snapshot(case.tensors())
    with pytest.raises(ValueError, match=fragment):
        fused_call(case, **override(case))
    check.assert_restored(snap, case.tensors(), head_dim=case.head_dim)


def test_cache_kernel_rejects_fp8_cache_without_format(rcsim_seed):
    case = rcsim.cases.Case(rcsim_seed, shape="qwen3-0.6b", kv_cache_dtype="fp8_e4m3fn")
    _, k, v = case.split()
    snap = check.snapshot(case.tensors())
    with pytest.raises(ValueError, match="fp8"):
        rcsim.kernels.reshape_and_cache_with_pertoken_quant(
            k, v, case.k_cache, case.v_cache, case.k_scale, case.v_scale, case.slot_mapping, True)
    check.assert_restored(snap, case.tensors())


@pytest.mark.parametrize("kv", ["auto", "fp8_e4m3fn", "fp8_e4m3fnuz"])
def test_numpy_and_torch_give_identical_bits(rcsim_seed, kv):
    a = rcsim.cases.Case(rcsim_seed, kv_cache_dtype=kv, lib="numpy")
    b = rcsim.cases.Case(rcsim_seed, kv_cache_dtype=kv, lib="torch")
    for name in a.tensors():
        assert (host_bits(getattr(a, name)) == host_bits(getattr(b, name))).all(), name
    before = check.snapshot(a.tensors())
    rcsim.kernels.fused_qk_norm_rope_cache_quant_shuffle(*a.fused_args())
    rcsim.kernels.fused_qk_norm_rope_cache_quant_shuffle(*b.fused_args())
    for name in a.tensors():
        assert check.first_difference(getattr(a, name), getattr(b, name)) is None, name
    # ... and the kernel did write: Q/K heads changed, slots of the padding token did not.
    assert check.first_difference(before["qkv"], a.qkv, a.head_dim) is not None
    check.assert_cache_write_set(before["k_cache"], a.k_cache, a.slot_mapping, "k",
                                 require_all_written=True)


def test_torch_tensors_are_not_copied(rcsim_seed):
    """The kernel writes into the caller's storage through DLPack (a strided view included)."""
    case = rcsim.cases.Case(rcsim_seed, shape="qwen3-0.6b", lib="torch")
    q, k, _ = case.split()
    ptr = case.qkv.data_ptr()
    before = q.clone()
    rcsim.kernels.rotary_embedding(case.positions, q, k, case.head_dim, case.cos_sin_cache, True)
    assert case.qkv.data_ptr() == ptr and not torch.equal(before, q)


@pytest.mark.skipif(not torch.cuda.is_available() or rcsim.has_gpu_backend,
                    reason="needs a CUDA tensor and a CPU-only build")
def test_cuda_tensor_without_gpu_backend_is_value_error(rcsim_seed):
    case = rcsim.cases.Case(rcsim_seed, shape="qwen3-0.6b", lib="torch", device="cuda")
    with pytest.raises(ValueError, match="GPU backend"):
        rcsim.kernels.fused_qk_norm_rope_cache_quant_shuffle(*case.fused_args())

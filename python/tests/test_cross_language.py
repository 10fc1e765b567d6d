"""Goal: rcsim.faults.inject writes, on NumPy arrays and on PyTorch tensors, exactly the bytes
rcsim's C++ fault decorator (fakes/faults) writes for the same spec on the same inputs.

Method: the two mechanisms differ: Python runs the kernel to completion on scratch copies and
copies the footprint of the first k units into the caller's tensors; C++ runs the kernel with a
WorkLimit of k units in place. For every kernel, several granularities and k values, each side
starts from identical seeded inputs (outputs sentinel-filled), both must raise LaunchFailure, and
every output tensor must agree bit for bit. k = 0 must leave the outputs untouched and k = all
must equal a clean run, so a comparison of two no-ops cannot pass by accident.
"""
import numpy as np
import pytest

import rcsim
from rcsim import _rcsim, errors
from rcsim._tensors import host_bits

LIBS = ["numpy", "torch"]


def _fused(case):
    return case.fused_args(), {}


def _rope_cache(case):
    q, k, v = case.split()
    fp8 = case.kv_cache_dtype != "auto"
    return (q, k, v, case.k_cache, case.v_cache, case.slot_mapping, case.positions,
            case.cos_sin_cache, 1.5 if fp8 else 1.0, 1.25 if fp8 else 1.0, True, False, fp8,
            case.kv_cache_dtype), {}


def _rotary(case):
    q, k, _ = case.split()
    return (case.positions, q, k, case.head_dim, case.cos_sin_cache, True), {}


def _rms(case):
    q, _, _ = case.split()
    out = rcsim._tensors.clone(q)
    rcsim._tensors.bits(out)[...] = 0x5A5A  # poisoned output
    return (out, q, case.q_weight, case.eps), {}


def _cache(case):
    _, k, v = case.split()
    return (k, v, case.k_cache, case.v_cache, case.slot_mapping, case.kv_cache_dtype, None, None,
            True), {}


def _pertoken(case):
    _, k, v = case.split()
    return (k, v, case.k_cache, case.v_cache, case.k_scale, case.v_scale, case.slot_mapping,
            True), {"kv_cache_dtype": case.kv_cache_dtype}


KERNELS = [  # (python kernel, site, argument builder, kv cache dtype)
    (rcsim.kernels.fused_qk_norm_rope_cache_quant_shuffle, "fused", _fused, "auto"),
    (rcsim.kernels.fused_qk_norm_rope_cache_quant_shuffle, "fused", _fused, "fp8_e4m3fnuz"),
    (rcsim.kernels.qk_rope_reshape_and_cache, "rope_cache", _rope_cache, "fp8_e4m3fn"),
    (rcsim.kernels.rotary_embedding, "fallback.rope", _rotary, "auto"),
    (rcsim.kernels.rms_norm, "fallback.norm", _rms, "auto"),
    (rcsim.kernels.reshape_and_cache, "fallback.cache", _cache, "auto"),
    (rcsim.kernels.reshape_and_cache_with_pertoken_quant, "fallback.cache", _pertoken,
     "fp8_e4m3fn"),
]
TORN = ["torn(k=0)", "torn(k=1)", "torn(k=mid)", "torn(k=last)", "torn(k=all)",
        "torn(unit=token,k=3)", "torn(unit=tile,tile=2,k=2)", "torn(unit=head,k=37)"]


def _outputs(args):
    """Every tensor argument, in order (inputs included: they must not change either)."""
    return [host_bits(a) for a in args if hasattr(a, "shape")]


def _cpp(fn, args, kwargs, spec, seed):
    """The same call through the C++ decorator: _rcsim.<kernel>(..., fault_spec, fault_seed)."""
    conv = [rcsim._tensors.for_kernel(a) if hasattr(a, "shape") else a for a in args]
    name = fn.__name__
    if name == "reshape_and_cache":
        conv[6], conv[7] = 1.0, 1.0
    if name == "qk_rope_reshape_and_cache":
        conv.append(kwargs.get("kv_cache_dtype", conv.pop()))
    if name == "reshape_and_cache_with_pertoken_quant":
        conv.append(kwargs["kv_cache_dtype"])
    getattr(_rcsim, name)(*conv, fault_spec=spec, fault_seed=seed)


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("kernel,site,build,kv", KERNELS,
                         ids=[f"{k[1]}-{k[0].__name__}-{k[3]}" for k in KERNELS])
def test_torn_inject_matches_cpp_decorator(lib, kernel, site, build, kv, rcsim_seed, rcsim_case):
    # With --rcsim-device cuda both sides run on CUDA tensors (the GPU backend's WorkLimit).
    base = rcsim_case(shape="qwen3-0.6b", kv_cache_dtype=kv, lib=lib)
    clean = base.clone()
    args, kwargs = build(clean)
    kernel(*args, **kwargs)
    clean_bits = _outputs(args)
    for torn in TORN:
        spec = f"{site}:{torn}"
        py_case, cpp_case = base.clone(), base.clone()
        py_args, py_kwargs = build(py_case)
        untouched = _outputs(py_args)
        cpp_args, cpp_kwargs = build(cpp_case)
        faulty = rcsim.faults.inject(kernel, spec, seed=rcsim_seed)
        with pytest.raises(errors.LaunchFailure, match="injected"):
            faulty(*py_args, **py_kwargs)
        with pytest.raises(errors.LaunchFailure, match="injected"):
            _cpp(kernel, cpp_args, cpp_kwargs, spec, rcsim_seed)
        got, want = _outputs(py_args), _outputs(cpp_args)
        for i, (g, w) in enumerate(zip(got, want)):
            bad = np.flatnonzero(g.reshape(-1) != w.reshape(-1))
            assert bad.size == 0, (f"{spec} on {lib}: tensor #{i} differs from the C++ decorator "
                                   f"at {bad.size} elements, first flat index {bad[0]}")
        changed = any((g != u).any() for g, u in zip(got, untouched))
        if torn.startswith("torn(k=0)"):
            assert not changed, f"{spec}: k=0 wrote something"
        else:
            assert changed, f"{spec}: nothing was written (the comparison would be vacuous)"
        if torn == "torn(k=all)":
            assert all((g == c).all() for g, c in zip(got, clean_bits)), f"{spec} != clean run"


def test_inject_wraps_a_foreign_callable(rcsim_seed, rcsim_case):
    """Any callable with the kernel's name and signature (here a stand-in for AITER's op)."""
    calls = []

    def fused_qk_norm_rope_cache_quant_shuffle(*args):
        calls.append(len(args))
        rcsim.kernels.fused_qk_norm_rope_cache_quant_shuffle(*args)

    base = rcsim_case(shape="qwen3-0.6b")
    a, b = base.clone(), base.clone()
    faulty = rcsim.faults.inject(fused_qk_norm_rope_cache_quant_shuffle,
                                 "fused:torn(unit=token,k=2)", seed=rcsim_seed)
    with pytest.raises(errors.LaunchFailure):
        faulty(*a.fused_args())
    with pytest.raises(errors.LaunchFailure):
        _rcsim.fused_qk_norm_rope_cache_quant_shuffle(
            *b.fused_args(), fault_spec="fused:torn(unit=token,k=2)", fault_seed=rcsim_seed)
    assert calls == [17]
    for name in ("qkv", "k_cache", "v_cache"):
        assert (host_bits(getattr(a, name)) == host_bits(getattr(b, name))).all(), name

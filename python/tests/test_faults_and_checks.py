"""Goal: rcsim.faults kinds other than torn behave as docs/fault-spec.md says, and rcsim.check's
checkers pass on correct code and name the first bad element on incorrect code.

Method: seeded cases through rcsim.kernels; each kind's effect is checked bit for bit against a
clean run (units before k) and the untouched input (units the kind must not write).
"""
import logging

import numpy as np
import pytest

import rcsim
from rcsim import check, errors
from rcsim._tensors import host_bits

FUSED = rcsim.kernels.fused_qk_norm_rope_cache_quant_shuffle


def case(seed, **kw):
    return rcsim.cases.Case(seed, shape="qwen3-0.6b", **kw)


@pytest.mark.parametrize("kind,exc,also", [
    ("unavailable", errors.Unavailable, ModuleNotFoundError),
    ("launch", errors.LaunchFailure, RuntimeError),
    ("invalid", errors.InvalidArgument, RuntimeError),
    ("oom", errors.OutOfMemory, MemoryError)])
def test_kinds_that_write_nothing(rcsim_seed, kind, exc, also):
    c = case(rcsim_seed)
    snap = check.snapshot(c.tensors())
    with pytest.raises(exc) as info:
        rcsim.faults.inject(FUSED, f"fused:{kind}", seed=rcsim_seed)(*c.fused_args())
    assert isinstance(info.value, also) and info.value.injected
    check.assert_restored(snap, c.tensors(), head_dim=c.head_dim)


@pytest.mark.parametrize("kind", ["garbage", "nan"])
def test_payload_hits_only_unprocessed_units_of_its_region(rcsim_seed, kind):
    c, clean = case(rcsim_seed), case(rcsim_seed)
    FUSED(*clean.fused_args())
    before = check.snapshot(c.tensors())
    w = (c.num_heads_q + 2 * c.num_heads_kv) * c.head_dim
    with pytest.raises(errors.LaunchFailure):
        rcsim.faults.inject(FUSED, f"fused:{kind}(unit=token,k=3,region=q)",
                            seed=rcsim_seed)(*c.fused_args())
    got, want, orig = host_bits(c.qkv), host_bits(clean.qkv), host_bits(before["qkv"])
    assert (got[:3] == want[:3]).all(), "the first 3 tokens are the real kernel's"
    q = slice(0, c.num_heads_q * c.head_dim)
    assert (got[3:, q] != orig[3:, q]).mean() > 0.9, "the payload reached the later Q heads"
    assert (got[3:, q.stop:w] == orig[3:, q.stop:w]).all(), "K/V heads are outside region=q"
    if kind == "nan":
        assert (got[3:, q] == 0x7FC0).all()
    for name in ("k_cache", "v_cache"):  # caches: only the first 3 tokens' slots (real values)
        check.assert_cache_write_set(before[name], getattr(c, name), c.slot_mapping[:3],
                                     "k" if name == "k_cache" else "v_shuffle", x=8)


def test_garbage_is_reproducible_from_the_seed(rcsim_seed):
    runs = []
    for _ in range(2):
        c = case(rcsim_seed)
        with pytest.raises(errors.LaunchFailure):
            rcsim.faults.inject(FUSED, "fused:garbage(p=1/2)", seed=rcsim_seed)(*c.fused_args())
        runs.append(host_bits(c.qkv))
    assert (runs[0] == runs[1]).all()


def test_sticky_poisons_every_later_call_on_the_device(rcsim_seed):
    device = rcsim.faults.FaultDevice()
    fused = rcsim.faults.inject(FUSED, "fused:sticky(k=2)", seed=rcsim_seed, device=device)
    norm = rcsim.faults.inject(rcsim.kernels.rms_norm, "", seed=rcsim_seed, device=device)
    c = case(rcsim_seed)
    with pytest.raises(errors.StickyDeviceError):
        fused(*c.fused_args())
    q, _, _ = c.split()
    out = q.copy()
    with pytest.raises(errors.StickyDeviceError, match="poisoned"):
        norm(out, q, c.q_weight, c.eps)


def test_call_modifier_and_late_error(rcsim_seed):
    fused = rcsim.faults.inject(FUSED, "fused:launch(call=2)", seed=rcsim_seed)
    fused(*case(rcsim_seed).fused_args())
    with pytest.raises(errors.LaunchFailure):
        fused(*case(rcsim_seed).fused_args())
    fused(*case(rcsim_seed).fused_args())
    late = rcsim.faults.inject(FUSED, "fused:late(k=all,after=2,error=launch)", seed=rcsim_seed)
    late(*case(rcsim_seed).fused_args())  # returns "success"
    late(*case(rcsim_seed).fused_args())
    with pytest.raises(errors.LaunchFailure, match="late"):
        late(*case(rcsim_seed).fused_args())


def test_malformed_spec_names_the_column():
    with pytest.raises(ValueError, match="column 7: unknown kind 'tron'"):
        rcsim.faults.inject(FUSED, "fused:tron", seed=0)


def test_unknown_kernel_is_refused():
    with pytest.raises(ValueError, match="unknown kernel"):
        rcsim.faults.inject(lambda x: x, "fused:launch", seed=0)


def test_assert_restored_names_token_head_dim(rcsim_seed):
    c = case(rcsim_seed)
    snap = check.snapshot({"qkv": c.qkv})
    d = c.head_dim
    c.qkv[2, 5 * d + 7] ^= 1
    with pytest.raises(AssertionError, match=r"first difference at \(token 2, head 5, dim 7\)"):
        check.assert_restored(snap, {"qkv": c.qkv}, head_dim=d)


def test_cache_write_set_catches_a_stray_slot(rcsim_seed):
    c = case(rcsim_seed)
    before = check.snapshot(c.tensors())
    FUSED(*c.fused_args())
    check.assert_cache_write_set(before["k_cache"], c.k_cache, c.slot_mapping, "k")
    fewer = c.slot_mapping.copy()
    fewer[np.flatnonzero(fewer >= 0)[0]] = -1  # pretend one written token was padding
    with pytest.raises(AssertionError, match="written outside slot_mapping"):
        check.assert_cache_write_set(before["k_cache"], c.k_cache, fewer, "k")


def test_log_once_checker():
    with check.LogOnceChecker("atom") as checker:
        logging.getLogger("atom").warning("fell back")
        checker.assert_logged_once("fell back")
        logging.getLogger("atom").warning("fell back")
        with pytest.raises(AssertionError, match="logged 2 times"):
            checker.assert_logged_once("fell back")


@pytest.mark.parametrize("kw,want", [
    (dict(), "A"),
    (dict(has_q_norm=False, has_k_norm=False), "C"),
    (dict(has_q_norm=False, has_k_norm=False, head_dim=64), "B"),
    (dict(has_k_norm=False, sliding_window=128), "C"),  # the PR's edge change
    (dict(has_k_norm=False, sliding_window=128, logic="pr-base"), "B"),
    (dict(qkv_present=False), "C"),
    (dict(sliding_window=128, after_failure=True), "C"),  # the q_norm-is-None guard
])
def test_decide_is_atoms_decision_table(kw, want):
    assert check.decide(**kw) == want

"""Goal: test the Python rope_cache of PR #279 (rope_cache.py) under rcsim's faults, as its
owners could test the real one: (a) the restore holds under torn writes at every granularity,
(b) three planted bugs are caught for the right reason, (c) the fallback's RoPE-before-norm
order diverges from the fused kernel with realistic norm weights.

Method: seeded Qwen3-shaped cases from the rcsim plugin (caches sentinel-filled, norm weights
positive near 1); the kernels are rcsim's references wrapped by rcsim.faults.inject; outputs are
compared bit for bit with a clean run of the branch that should have produced them. Run with
`python3 -m pytest examples/python -p rcsim.pytest_plugin` (options: --rcsim-seed, --rcsim-faults,
--rcsim-swarm, --rcsim-device).
"""
import types

import numpy as np
import pytest

import rcsim
from rcsim import check, errors
from rcsim._tensors import clone, host_bits

import rope_cache

UNITS = ["unit=head", "unit=token", "unit=tile,tile=3"]
FALLBACK_SITES = {"fallback.rope", "fallback.norm", "fallback.cache", "rope_cache"}


@pytest.fixture(autouse=True)
def fresh_process():
    """The warned flag is process-wide; each test is a fresh serving process."""
    rope_cache.PagedAttentionImpl._fused_rope_warned = False
    yield
    rope_cache.PagedAttentionImpl._fused_rope_warned = False


def faulty_ops(spec, seed):
    """Every kernel wrapped with one plan and one FaultDevice (one GPU context)."""
    base = rope_cache.default_ops()
    device = rcsim.faults.FaultDevice()
    return types.SimpleNamespace(**{
        name: rcsim.faults.inject(fn, spec, seed=seed, device=device)
        for name, fn in vars(base).items()})


def make_layer(case, ops, **kwargs):
    return rope_cache.PagedAttentionImpl(
        case.num_heads_q, case.num_heads_kv, case.head_dim,
        rotary_emb=rope_cache.RotaryEmbedding(case.cos_sin_cache, case.is_neox),
        q_norm=rope_cache.RMSNorm(case.q_weight, case.eps),
        k_norm=rope_cache.RMSNorm(case.k_weight, case.eps),
        kv_cache_dtype=case.kv_cache_dtype, ops=ops, **kwargs)


def call(layer, case):
    q, k, v = case.split()
    return layer.rope_cache(q, k, v, case.qkv, case.positions, case.k_cache, case.v_cache,
                            case.k_scale, case.v_scale, case.slot_mapping)


def result_bits(out):
    """q, k, v and the caches/scales a call returns, as host bits."""
    return [host_bits(t) for t in out if t is not None]


def assert_same(got, want, what):
    names = ["q", "k", "v", "k_cache", "v_cache", "k_scale", "v_scale"]
    for name, g, w in zip(names, got, want):
        msg = check.first_difference(w, g, None)
        assert msg is None, f"{what}: {name} differs from the expected run: {msg}"


def restore_spy(ops, case, snap):
    """The fallback's first kernel asserts that qkv is byte-identical to before the call."""
    inner = ops.rotary_embedding

    def rotary_embedding(*args, **kwargs):
        check.assert_restored(snap, {"qkv": case.qkv}, head_dim=case.head_dim)
        return inner(*args, **kwargs)

    ops.rotary_embedding = rotary_embedding
    return ops


def clean_fallback(case, seed):
    """The PR's fallback with nothing torn: the fused module is simply unavailable."""
    c = case.clone()
    return result_bits(call(make_layer(c, faulty_ops("fused:unavailable", seed)), c))


def boundaries(n, seed):
    """k values to tear at: every boundary for small n, else 0, 1, mid, n-1, n and 3 seeded."""
    if n <= 16:
        return list(range(n + 1))
    prng = rcsim._rcsim.Prng.stream(seed, "example.k")
    return sorted({0, 1, n // 2, n - 1, n} | {prng.range(0, n) for _ in range(3)})


# ---- (a) the PR's restore under torn writes ----------------------------------------------------
@pytest.mark.parametrize("kv", ["auto", "fp8_e4m3fn"])
@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_pr279_restores_under_torn_writes(rcsim_case, rcsim_seed, rcsim_log_checker, kv, unit,
                                          lib):
    case = rcsim_case(kv_cache_dtype=kv, lib=lib)
    want = clean_fallback(case, rcsim_seed)
    native = case.tokens * (case.num_heads_q + 2 * case.num_heads_kv)
    tile = 3 if "tile" in unit else 4
    n = rcsim._rcsim.units_at_granularity(unit.split(",")[0][5:], tile, native, case.tokens)
    for k in boundaries(n, rcsim_seed):
        c = case.clone()
        before = check.snapshot(c.tensors())
        spec = f"fused:torn({unit},k={k})"
        ops = restore_spy(faulty_ops(spec, rcsim_seed), c, check.snapshot({"qkv": c.qkv}))
        layer = make_layer(c, ops)
        got = result_bits(call(layer, c))
        assert layer.last_branch == "C", f"{spec}: ran branch {layer.last_branch}"
        assert_same(got, want, spec)
        for name, layout in (("k_cache", "k"), ("v_cache", "v_shuffle"), ("k_scale", "scale"),
                             ("v_scale", "scale")):
            if name in before:
                check.assert_cache_write_set(before[name], getattr(c, name), c.slot_mapping,
                                             layout, x=c.k_cache.shape[-1])
    rcsim_log_checker.assert_logged_once("falling back to non-fused path")


def test_pr279_under_plugin_faults(rcsim_case, rcsim_seed, rcsim_fault_spec):
    """Whatever --rcsim-faults (or the swarm plan of --rcsim-swarm) injects: the call either
    returns exactly what a clean run of the branch it took returns, or raises an injected error
    that the PR cannot hide (a fault in the fallback itself, a sticky device)."""
    case = rcsim_case(kv_cache_dtype="fp8_e4m3fn" if rcsim_seed % 2 else "auto")
    ops = faulty_ops(rcsim_fault_spec, rcsim_seed)
    layer = make_layer(case.clone(), ops)
    c = case.clone()
    fired = lambda: {w.state.model.site: dict(w.state.injections)  # noqa: E731
                     for w in vars(ops).values() if w.state.injections}
    try:
        got = result_bits(call(layer, c))
    except errors.KernelError as e:
        assert e.injected, f"an error rcsim did not inject: {e}"
        sites = fired()
        surfaced = (set(sites) & FALLBACK_SITES or ops.rotary_embedding.device.poisoned
                    or any("late" in kinds for kinds in sites.values()))
        assert surfaced, f"{rcsim_fault_spec}: the PR should have hidden {e!r} (fired {sites})"
        return
    if any("late" in kinds for kinds in fired().values()):
        pytest.skip("a late fault returns success over a partial write: no policy can restore")
    if layer.last_branch == "A":
        ref = case.clone()
        want = result_bits(call(make_layer(ref, rope_cache.default_ops()), ref))
    else:
        want = clean_fallback(case, rcsim_seed)
    assert_same(got, want, f"{rcsim_fault_spec} (branch {layer.last_branch})")


# ---- (b) planted bugs are caught, each for its own reason ----------------------------------------
def test_planted_skip_restore_is_caught(rcsim_case, rcsim_seed):
    case = rcsim_case()
    ops = restore_spy(faulty_ops("fused:torn(k=mid)", rcsim_seed), case,
                      check.snapshot({"qkv": case.qkv}))
    layer = make_layer(case, ops, planted_bug="skip_restore")
    with pytest.raises(AssertionError,
                       match=r"qkv not restored: first difference at \(token 0, head 0, dim \d+\)"):
        call(layer, case)


def assert_branch_follows_decision_table(layer, failed):
    want = check.decide(has_rotary=layer.rotary_emb is not None,
                        has_q_norm=layer.q_norm is not None, has_k_norm=layer.k_norm is not None,
                        sliding_window=128 if layer.use_triton_attn else -1,
                        head_dim=layer.head_dim, after_failure=failed)
    assert layer.last_branch == want, \
        f"took branch {layer.last_branch}, ATOM's decision table says {want}"


@pytest.mark.parametrize("bug", [None, "branch_b_after_failure"])
def test_planted_branch_b_after_failure_is_caught(rcsim_case, rcsim_seed, bug):
    case = rcsim_case()
    layer = make_layer(case, faulty_ops("fused:torn(unit=token,k=2)", rcsim_seed),
                       sliding_window=128, planted_bug=bug)  # a use_triton_attn layer
    call(layer, case)
    if bug is None:
        assert_branch_follows_decision_table(layer, failed=True)
    else:
        with pytest.raises(AssertionError, match="took branch B, ATOM's decision table says C"):
            assert_branch_follows_decision_table(layer, failed=True)


@pytest.mark.parametrize("bug", [None, "warn_every_call"])
def test_planted_warn_every_call_is_caught(rcsim_case, rcsim_seed, rcsim_log_checker, bug):
    ops = faulty_ops("fused:unavailable", rcsim_seed)
    case = rcsim_case()
    layers = [make_layer(case, ops, planted_bug=bug) for _ in range(2)]
    for _ in range(3):
        for layer in layers:
            call(layer, case.clone())
    if bug is None:
        rcsim_log_checker.assert_logged_once("falling back to non-fused path")
    else:
        with pytest.raises(AssertionError, match="logged 6 times, expected exactly once"):
            rcsim_log_checker.assert_logged_once("falling back to non-fused path")


# ---- (c) RoPE before norm diverges from the fused kernel -----------------------------------------
def bf16_values(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def compare_bf16(got_bits, want_bits):
    """Mismatches beyond bf16's tolerance for two differently-ordered roundings, max error and
    cosine similarity. atol = rtol = 2^-6: two bf16 roundings (2^-8 each, relative) of each
    order, with a factor-2 margin."""
    g, w = bf16_values(got_bits).astype(np.float64), bf16_values(want_bits).astype(np.float64)
    tol = 2.0 ** -6 + 2.0 ** -6 * np.abs(w)
    bad = np.abs(g - w) > tol
    cos = float((g * w).sum() / np.sqrt((g * g).sum() * (w * w).sum()))
    return int(bad.sum()), float(np.abs(g - w).max()), cos, bad


@pytest.mark.parametrize("weights", ["realistic", "symmetric"])
def test_rope_before_norm_diverges_from_fused(rcsim_case, rcsim_seed, weights):
    case = rcsim_case(weights=None if weights == "realistic" else "symmetric")
    fused = case.clone()
    rcsim.kernels.fused_qk_norm_rope_cache_quant_shuffle(*fused.fused_args())
    fq, fk, _ = fused.split()

    pr = case.clone()  # the PR's fallback: RoPE, then the norms
    q, k, _, *_ = call(make_layer(pr, faulty_ops("fused:unavailable", rcsim_seed)), pr)

    model = case.clone()  # the model's order: the norms, then RoPE
    mq, mk, _ = model.split()
    nq, nk = clone(mq), clone(mk)
    rcsim.kernels.rms_norm(nq, mq, model.q_weight, model.eps)
    rcsim.kernels.rms_norm(nk, mk, model.k_weight, model.eps)
    rcsim.kernels.rotary_embedding(model.positions, nq, nk, model.head_dim,
                                   model.cos_sin_cache, True)
    assert check.first_difference(fq, nq) is None and check.first_difference(fk, nk) is None, \
        "model-order fallback != fused, bit for bit"

    bad_q, err_q, cos_q, mask = compare_bf16(host_bits(q), host_bits(fq))
    bad_k, err_k, _, _ = compare_bf16(host_bits(k), host_bits(fk))
    report = (f"{weights} weights: q {bad_q}/{mask.size} beyond tolerance (max error {err_q:.4f}, "
              f"cosine {cos_q:.6f}), k {bad_k} beyond tolerance (max error {err_k:.4f})")
    print(report)
    if weights == "symmetric":
        assert bad_q == 0 and bad_k == 0, report  # w[d] == w[d+D/2]: the orders commute
    else:
        assert bad_q > 0 and bad_k > 0, report
        t, h, d = np.argwhere(mask)[0]
        print(f"first divergent q element: (token {t}, head {h}, dim {d})")

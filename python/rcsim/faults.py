"""rcsim.faults.inject(fn, spec, seed=...): a kernel callable under rcsim's fault-spec grammar.

    faulty = rcsim.faults.inject(aiter.fused_qk_norm_rope_cache_quant_shuffle,
                                 "fused:torn(unit=token,k=mid)", seed=7)
    faulty(qkv, ...)   # same signature; writes exactly the first k tokens' units, then raises

The spec is parsed by rcsim's C++ parser (docs/fault-spec.md), so the same text means the same
thing here, on the CLI and in RCSIM_FAULTS. Rules whose site is not this kernel's are ignored, so
one plan can be given to every wrapped kernel. Kinds:

  unavailable            raise errors.Unavailable (a ModuleNotFoundError) before writing
  launch / throw         raise errors.LaunchFailure before writing
  invalid                raise errors.InvalidArgument;  oom: errors.OutOfMemory
  torn                   run fn on scratch copies of its in-place outputs, copy the footprint of
                         exactly the first k units (the unit order of core/kernel_interfaces.h)
                         into the caller's tensors, raise LaunchFailure
  cacheonly              as torn, but only the cache writes of those units (fused, rope_cache)
  garbage / nan          first k units real, then seeded random bits / the dtype's quiet NaN
                         into each later unit's footprint chosen with ratio p, within `region`
  sticky                 first k units, raise StickyDeviceError; every later call on the same
                         FaultDevice (any kernel wrapped with it) raises StickyDeviceError
  late                   k units written, the call returns; the after-th later call on the device
                         raises (sticky by default, or launch with error=launch)
  rebuild                log the loader's error line on logger "aiter", raise Unavailable
  abort                  os.abort(), as the op's argument checks do (run it in a child process)
  call=n, ratio=a/b      modifiers: only the n-th call at this site; fire with chance a/b. There is
                         no separate "intermittent" kind: intermittent faults are ratio=a/b.

Rules at the `backup` and `restore` sites model the dispatcher's own copies, which a Python
dispatcher makes itself with clone()/copy_(); no kernel wrapper matches them, so they are ignored.

Determinism: every choice (ratio, k=seed, garbage bits) comes from rcsim's PRNG seeded by
(seed, site); a torn write with a numeric k (or mid/last/all) writes the same bytes as rcsim's C++
decorator on the same inputs (python/tests/test_cross_language.py).
"""
import functools
import logging
import os

from . import _rcsim, errors
from ._tensors import bits, clone, element_size, fp8_name, from_host_bits, is_torch
from ._units import model_for

import numpy as np

_KERNEL_SITES = {"fused", "rope_cache", "fallback.rope", "fallback.norm", "fallback.cache"}
_NAN_BITS = {"bf16": 0x7FC0, "fp16": 0x7E00, "fp32": 0x7FC00000, "fp8_e4m3fn": 0x7F,
             "fp8_e4m3fnuz": 0x80}


class FaultDevice:
    """The state kernels on one device share: poisoned by a sticky fault, pending late errors.
    Wrap several kernels with one device (inject(..., device=d)) to model one GPU context."""

    def __init__(self):
        self.poisoned = False
        self.poison_reason = ""
        self._late = []  # [calls_left, error kind, site]

    def before_call(self, kernel):
        if self.poisoned:
            raise errors.make("sticky_device", kernel,
                              f"device poisoned earlier ({self.poison_reason})")
        for entry in list(self._late):
            entry[0] -= 1
            if entry[0] <= 0:
                self._late.remove(entry)
                if entry[1] == "sticky":
                    self.poison(f"late fault armed at {entry[2]}")
                    raise errors.make("sticky_device", kernel, f"late error from {entry[2]}")
                raise errors.make("launch_failure", kernel, f"late error from {entry[2]}")

    def poison(self, reason):
        self.poisoned = True
        self.poison_reason = reason

    def arm_late(self, after_calls, error, site):
        self._late.append([after_calls, error, site])


def _resolve_k(k_text, n, prng):
    if k_text == "mid":
        return n // 2
    if k_text == "last":
        return max(n - 1, 0)
    if k_text == "all":
        return n
    if k_text == "seed":
        return prng.range(0, n)
    return min(int(k_text), n)


def _dtype_name(x, kv_cache_dtype):
    """rcsim's dtype name of a tensor, for NaN payloads."""
    named = fp8_name(x)
    if named:
        return named
    if is_torch(x):
        import torch
        return {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32",
                torch.uint8: kv_cache_dtype, torch.int16: "bf16"}.get(x.dtype, "bf16")
    return {"uint16": "bf16", "int16": "bf16", "float16": "fp16", "float32": "fp32",
            "uint8": kv_cache_dtype}.get(str(x.dtype), "bf16")


class _Injected:
    def __init__(self, fn, spec, seed, kernel, device):
        self.fn = fn
        self.model = model_for(fn, kernel)
        self.spec = spec
        self.seed = seed
        self.device = device if device is not None else FaultDevice()
        self.rules = [r for r in _rcsim.parse_fault_plan(spec) if r["site"] == self.model.site]
        self.prng = _rcsim.Prng.stream(seed, "python.faults." + self.model.site)
        self.calls = 0
        self.injections = {}
        self.rebuild_attempts = 0

    def _pick(self):
        for r in self.rules:
            if r["call"] and r["call"] != self.calls:
                continue
            num, den = r["ratio"]
            if num != den and not self.prng.chance(num, den):
                continue
            return r
        return None

    def __call__(self, *args, **kwargs):
        name = self.model.name
        self.device.before_call(name)
        self.calls += 1
        rule = self._pick()
        if rule is None:
            return self.fn(*args, **kwargs)
        kind = rule["kind"]
        self.injections[kind] = self.injections.get(kind, 0) + 1
        detail = f"{rule['text']} on call {self.calls} (seed {self.seed})"
        if kind == "unavailable":
            raise errors.make("unavailable", name, f"module not built: {detail}")
        if kind == "launch":
            raise errors.make("launch_failure", name, detail)
        if kind == "invalid":
            raise errors.make("invalid_argument", name, detail)
        if kind == "oom":
            raise errors.make("out_of_memory", name, detail)
        if kind == "rebuild":
            self.rebuild_attempts += 1
            logging.getLogger("aiter").error("failed to build module for %s (attempt %d): %s",
                                             name, self.rebuild_attempts, detail)
            raise errors.make("unavailable", name, f"JIT rebuild failed: {detail}")
        if kind == "abort":
            os.abort()
        return self._partial_run(rule, args, kwargs, detail)

    def _partial_run(self, rule, args, kwargs, detail):
        kind = rule["kind"]
        b = self.model.bind(args, kwargs)
        tokens, native = self.model.geometry(b)
        n = _rcsim.units_at_granularity(rule["unit"], rule["tile"], native, tokens)
        k = _resolve_k(rule["k"], n, self.prng)
        k_native = _rcsim.native_units_for(rule["unit"], rule["tile"], k, native, tokens)

        # The real kernel on scratch copies of everything it writes; the caller's stay untouched.
        scratch = {o: clone(b[o]) for o in self.model.outputs if b[o] is not None}
        b.call(self.fn, scratch)
        sb = self.model.bind(args, kwargs)
        sb.values.update(scratch)

        regions = None if kind != "cacheonly" else {"cache"}
        caller = dict(self.model.pieces(b, range(k_native)))
        for g, pieces in self.model.pieces(sb, range(k_native)):
            for (region, src, index), (_, dst, _) in zip(pieces, caller[g]):
                if regions is None or region in regions:
                    dst[index] = src[index]

        if kind in ("garbage", "nan"):
            self._payload(rule, b, k_native, native)
        if kind == "late":
            self.device.arm_late(rule["after"], rule["error"], self.model.site)
            return None
        if kind == "sticky":
            self.device.poison(detail)
            raise errors.make("sticky_device", self.model.name, detail)
        raise errors.make("launch_failure", self.model.name, f"{detail}: {k} of {n} units done")

    def _payload(self, rule, b, first, native):
        """Random bits or NaN into the footprint of units [first, native) hit with ratio p."""
        num, den = rule["p"]
        region = rule["region"]
        kv = b["kv_cache_dtype"] or "fp8_e4m3fn"
        units = [g for g in range(first, native) if num == den or self.prng.chance(num, den)]
        label = f"python.payload.{self.model.site}.{self.calls}"
        drawn = 0
        for _, pieces in self.model.pieces(b, units):
            for r, tensor, index in pieces:
                if region != "all" and r != region:
                    continue
                view = bits(tensor)
                if rule["kind"] == "nan":
                    view[index] = _NAN_BITS[_dtype_name(tensor, kv)]
                    continue
                shape = tuple(view[index].shape)
                size = element_size(tensor)
                count = int(np.prod(shape)) if shape else 1
                raw = _rcsim.random_bytes(self.seed, f"{label}.{drawn}", count * size)
                drawn += 1
                host = np.frombuffer(raw, dtype=np.dtype(f"u{size}")).reshape(shape)
                view[index] = from_host_bits(host, tensor)


def inject(fn, spec, seed=0, *, kernel=None, device=None):
    """A callable with fn's signature that follows `spec` for fn's site (see the module doc).

    kernel: the kernel fn implements when its __name__ does not say (AITER ops are named as in
    rcsim.kernels). device: a FaultDevice shared with other wrapped kernels (default: a new one).
    The wrapper exposes .device, .spec, .seed and .state (.state.calls, .state.injections).
    """
    state = _Injected(fn, spec, seed, kernel, device)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return state(*args, **kwargs)

    wrapper.device = state.device
    wrapper.spec = spec
    wrapper.seed = seed
    wrapper.state = state
    wrapper._rcsim_kernel = state.model.name
    return wrapper

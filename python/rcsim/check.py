"""Checkers for code that calls rcsim's (or AITER's) kernels: byte-exact restore, the KV-cache
write set, once-only logging, and ATOM's branch decision table. They work on NumPy arrays and
PyTorch tensors (CPU or CUDA) and always compare bits, never values.
"""
import logging

import numpy as np

from . import _rcsim
from ._tensors import clone, host_bits


class Snapshot(dict):
    """name -> a private copy of a tensor (see snapshot())."""


def _named(tensors):
    if isinstance(tensors, dict):
        return dict(tensors)
    if isinstance(tensors, (list, tuple)):
        return {f"tensor[{i}]": t for i, t in enumerate(tensors)}
    return {"tensor": tensors}


def snapshot(tensors):
    """Copies of `tensors` (a dict name -> tensor, a list, or one tensor) for assert_restored."""
    return Snapshot({name: clone(t) for name, t in _named(tensors).items() if t is not None})


def _coordinates(shape, flat, head_dim):
    """(token, head, dim) of a flat index into [T, H, D], or [T, H*D] given head_dim."""
    idx = np.unravel_index(flat, shape)
    if len(shape) == 3:
        return f"(token {idx[0]}, head {idx[1]}, dim {idx[2]})"
    if len(shape) == 2 and head_dim:
        return f"(token {idx[0]}, head {idx[1] // head_dim}, dim {idx[1] % head_dim})"
    return "index " + str(tuple(int(i) for i in idx))


def first_difference(before, after, head_dim=None):
    """None if the bits agree, else a message naming the first differing (token, head, dim)."""
    a, b = host_bits(before), host_bits(after)
    if a.shape != b.shape:
        return f"shape changed from {a.shape} to {b.shape}"
    diff = np.flatnonzero(a != b)
    if diff.size == 0:
        return None
    i = int(diff[0])
    width = 2 * a.itemsize
    return (f"first difference at {_coordinates(a.shape, i, head_dim)}: "
            f"0x{int(a.reshape(-1)[i]):0{width}x} -> 0x{int(b.reshape(-1)[i]):0{width}x}; "
            f"{diff.size} of {a.size} elements differ")


def assert_restored(snap, tensors, head_dim=None):
    """Every tensor byte-identical to its snapshot; AssertionError names the first difference
    as (token, head, dim) (rank-3 tensors, or rank-2 [T, H*D] given head_dim)."""
    current = _named(tensors)
    for name, before in snap.items():
        if name not in current:
            raise KeyError(f"assert_restored: no tensor named {name!r}")
        msg = first_difference(before, current[name], head_dim)
        if msg is not None:
            raise AssertionError(f"{name} not restored: {msg}")


# Each layout's (block, head, offset-in-block) per element, from its index formula
# (semantics.md 2.3).
def _slot_coordinates(shape, layout, x):
    ix = np.indices(shape, sparse=True)
    if layout == "k":  # [NB, H, D/x, BS, x]
        return ix[0], ix[1], ix[3], shape[3]
    if layout == "v_shuffle":  # [NB, H, BS/x, D, x] (a 4-D label is reshaped by the caller)
        return ix[0], ix[1], ix[2] * x + ix[4], shape[2] * x
    if layout == "v_plain":  # [NB, H, D, BS]
        return ix[0], ix[1], ix[3], shape[3]
    if layout == "scale":  # [NB, H, BS]
        return ix[0], ix[1], ix[2], shape[2]
    raise ValueError(f"layout {layout!r} is not k, v_shuffle, v_plain or scale")


def assert_cache_write_set(before, after, slot_mapping, layout, *, x=None,
                           require_all_written=False):
    """Only the slots of `slot_mapping` (>= 0) changed between `before` and `after`, one cache
    or scale tensor in `layout`: "k" [NB, H, D/x, BS, x], "v_shuffle" [NB, H, BS/x, D, x] or its
    4-D [NB, H, D, BS] label (give x), "v_plain" [NB, H, D, BS], "scale" [NB, H, BS]. Every other
    byte must be identical. With require_all_written, every
    listed slot also changed somewhere (fill caches with a sentinel first)."""
    a, b = host_bits(before), host_bits(after)
    if x is None:
        x = a.shape[-1] if layout in ("k", "v_shuffle") else 1
    if layout == "v_shuffle" and a.ndim == 4:  # ATOM's [NB, H, D, BS] label over shuffle memory
        nb, h, d, bs4 = a.shape
        a, b = (t.reshape(nb, h, bs4 // x, d, x) for t in (a, b))
    blk, head, off, bs = _slot_coordinates(a.shape, layout, x)
    slot_values = host_bits(slot_mapping).reshape(-1).view(np.int64)
    slots = [int(s) for s in slot_values if s >= 0]
    slot_of = np.broadcast_to(blk * bs + off, a.shape)
    allowed = np.isin(slot_of, np.asarray(slots, dtype=np.int64))
    changed = a != b
    stray = np.flatnonzero(changed & ~allowed)
    if stray.size:
        i = int(stray[0])
        coords = np.unravel_index(i, a.shape)
        s = int(slot_of.reshape(-1)[i])
        raise AssertionError(
            f"{layout} cache written outside slot_mapping: slot {s} (block {s // bs}, offset "
            f"{s % bs}) at index {tuple(int(c) for c in coords)}; {stray.size} stray elements")
    if require_all_written:
        written = set(np.unique(slot_of[changed]).tolist())
        missing = [s for s in slots if s not in written]
        if missing:
            raise AssertionError(f"{layout} cache: slots {missing[:8]} of slot_mapping not written")


class LogOnceChecker(logging.Handler):
    """Captures the records of one logger (default "atom", ATOM's module logger) so a test can
    assert that a warning was logged exactly once per process, however many calls and layers."""

    def __init__(self, logger_name="atom", level=logging.WARNING):
        super().__init__(level)
        self.logger_name = logger_name
        self.records = []

    def emit(self, record):
        self.records.append(record)

    def __enter__(self):
        logging.getLogger(self.logger_name).addHandler(self)
        return self

    def __exit__(self, *exc):
        logging.getLogger(self.logger_name).removeHandler(self)
        return False

    def matching(self, substring):
        return [r for r in self.records if substring in r.getMessage()]

    def assert_logged_once(self, substring):
        hits = self.matching(substring)
        if len(hits) != 1:
            lines = "\n  ".join(r.getMessage() for r in hits[:5])
            raise AssertionError(f"logger {self.logger_name!r}: {substring!r} logged {len(hits)} "
                                 f"times, expected exactly once\n  {lines}")


def decide(*, has_rotary=True, has_q_norm=True, has_k_norm=True, sliding_window=-1,
           head_dim=128, qkv_present=True, logic="pr279", after_failure=False):
    """ATOM's branch for a layer: "A" (try the fused kernel), "B" (Triton rope+cache) or "C"
    (non-fused), from rcsim's port (core/dispatch). after_failure: the branch PR #279 takes after
    a failed fused attempt (B only when q_norm is None, else C). logic: "pr279" or "pr-base"."""
    return _rcsim.decide(has_rotary, has_q_norm, has_k_norm, sliding_window, head_dim,
                         qkv_present, logic, after_failure)

"""rcsim for Python: rcsim's reference kernels, fault injectors and checkers on NumPy arrays and
PyTorch tensors, and a pytest plugin (``pytest -p rcsim.pytest_plugin``).

    rcsim.kernels   the reference kernels with AITER's signatures, in place
    rcsim.faults    inject(fn, spec, seed=...): a kernel callable under rcsim's fault-spec grammar
    rcsim.check     snapshot / assert_restored, assert_cache_write_set, LogOnceChecker, decide()
    rcsim.cases     seeded Qwen3-shaped inputs
    rcsim.errors    the exception types injected faults raise
"""
from . import _rcsim  # noqa: F401  (the C++ core; fails early when the build is missing)
from . import cases, check, errors, faults, kernels  # noqa: F401

has_gpu_backend = _rcsim.has_gpu_backend

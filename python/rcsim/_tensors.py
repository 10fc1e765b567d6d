"""The few tensor operations rcsim needs, for NumPy arrays and PyTorch tensors alike.

NumPy has no bfloat16 or float8: their bits live in uint16 and uint8 arrays (see
python/bindings/tensor_bridge.h). Comparisons always look at bits, never at values, so NaN
payloads and -0.0 compare exactly.
"""
import numpy as np

try:  # PyTorch is optional: rcsim works on NumPy alone.
    import torch
except ImportError:  # pragma: no cover - Debian's python3-torch is a declared dependency
    torch = None


def is_torch(x):
    return torch is not None and isinstance(x, torch.Tensor)


def is_cuda(x):
    return is_torch(x) and x.device.type != "cpu"


_TORCH_BITS = {}
if torch is not None:
    _TORCH_BITS = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
_FLOAT8 = {}
if torch is not None:
    for _name, _rc in (("float8_e4m3fn", "fp8_e4m3fn"), ("float8_e4m3fnuz", "fp8_e4m3fnuz")):
        if hasattr(torch, _name):
            _FLOAT8[getattr(torch, _name)] = _rc


def fp8_name(x):
    """rcsim's kv_cache_dtype name of a PyTorch float8 tensor, else None."""
    return _FLOAT8.get(x.dtype) if is_torch(x) else None


def for_kernel(x):
    """What crosses into C++: PyTorch float8 tensors as uint8 views (no copy)."""
    if x is not None and fp8_name(x) is not None:
        return x.view(torch.uint8)
    return x


def element_size(x):
    return x.element_size() if is_torch(x) else x.itemsize


def clone(x):
    return x.clone() if is_torch(x) else x.copy()


def bits(x):
    """A same-shape integer view of x's storage (no copy): writes through it hit x."""
    if is_torch(x):
        return x.view(_TORCH_BITS[x.element_size()])
    return x.view(np.dtype(f"u{x.itemsize}"))


def host_bits(x):
    """A copy of x's bits as a host NumPy array."""
    if is_torch(x):
        b = bits(x).detach()
        if b.device.type != "cpu":
            b = b.cpu()
        return b.contiguous().numpy().view(np.dtype(f"u{x.element_size()}")).copy()
    return np.array(x, copy=True, order="C").view(np.dtype(f"u{x.itemsize}"))


def from_host_bits(host, like):
    """A tensor of `like`'s kind (array or tensor, same device) holding `host`'s integer bits."""
    if is_torch(like):
        t = torch.from_numpy(np.ascontiguousarray(host).view(np.dtype(f"i{host.itemsize}")))
        return t.to(like.device)
    return host


def to_list(x):
    """A 1-D integer tensor (positions, slot mapping) as a Python list."""
    if is_torch(x):
        return x.detach().cpu().tolist()
    return np.asarray(x).tolist()


def scalar(x, default=1.0):
    """A per-tensor scale given as None, a number, or a 0-d/1-element tensor."""
    if x is None:
        return default
    if is_torch(x):
        return float(x.detach().reshape(-1)[0].item())
    if isinstance(x, np.ndarray):
        return float(x.reshape(-1)[0])
    return float(x)


def heads_view(x, head_dim):
    """[T, H*D] as a [T, H, D] view (never a copy: in-place outputs must stay in place)."""
    if x is None or x.ndim == 3:
        return x
    t = x.shape[0]
    v = x.view(t, -1, head_dim) if is_torch(x) else x.reshape(t, -1, head_dim)
    if not is_torch(x) and not np.shares_memory(v, x):
        raise ValueError("cannot view this tensor as [T, H, D] without a copy")
    return v

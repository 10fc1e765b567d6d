"""Exceptions that mirror rcsim's failure classes (core/errors.h).

Every injected fault raises a KernelError subclass with ``injected = True``; an untagged one is a
real failure. The classes also derive from what the real stack raises for the same event, so a
dispatcher's ``except`` clauses meet what they would meet: a module that is not built is a
``ModuleNotFoundError``; launch failures, sticky device errors and rejected arguments arrive as
``RuntimeError`` (a HIP/CUDA error or a TORCH_CHECK through PyTorch); allocation failures are also
``MemoryError``. Bad input to rcsim's own kernels is a plain ``ValueError`` and writes nothing.
"""


class KernelError(RuntimeError):
    failure_class = "kernel_error"

    def __init__(self, message, *, kernel="", injected=False):
        super().__init__(message)
        self.kernel = kernel
        self.injected = injected


class Unavailable(KernelError, ModuleNotFoundError):
    failure_class = "unavailable"


class LaunchFailure(KernelError):
    failure_class = "launch_failure"


class InvalidArgument(KernelError):
    failure_class = "invalid_argument"


class StickyDeviceError(KernelError):
    failure_class = "sticky_device"


class OutOfMemory(KernelError, MemoryError):
    failure_class = "out_of_memory"


BY_FAILURE_CLASS = {c.failure_class: c for c in
                    (Unavailable, LaunchFailure, InvalidArgument, StickyDeviceError, OutOfMemory)}


def make(failure_class, kernel, detail, injected=True):
    """The exception of `failure_class` for `kernel`, worded like the C++ KernelError."""
    cls = BY_FAILURE_CLASS[failure_class]
    text = f"{kernel}: {failure_class}: {detail}" + (" [injected]" if injected else "")
    return cls(text, kernel=kernel, injected=injected)


def from_cpp(failure_class, kernel, message, injected):
    """Used by the C++ module to raise a KernelError thrown by a kernel or the C++ decorator."""
    return BY_FAILURE_CLASS[failure_class](message, kernel=kernel, injected=injected)

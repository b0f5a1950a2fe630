"""Array-kind dispatch: kernels accept NumPy, CuPy or torch arrays and hand back the kind they were given.

torch CPU tensors become NumPy views (shared memory, no copy); torch CUDA tensors become CuPy arrays
through DLPack (no host copy). Results are turned back into the caller's kind the same way.
"""

from __future__ import annotations

import sys
from enum import Enum

import numpy as np


class Kind(Enum):
    NUMPY = "numpy"
    CUPY = "cupy"
    TORCH_CPU = "torch-cpu"
    TORCH_CUDA = "torch-cuda"


def _module_of(x) -> str:
    return type(x).__module__.split(".", 1)[0]


def kind_of(x) -> Kind:
    if isinstance(x, np.ndarray):
        return Kind.NUMPY
    module = _module_of(x)
    if module == "cupy":
        return Kind.CUPY
    if module == "torch" and "torch" in sys.modules and isinstance(x, sys.modules["torch"].Tensor):
        return Kind.TORCH_CUDA if x.is_cuda else Kind.TORCH_CPU
    raise TypeError(f"expected a NumPy, CuPy or torch array, got {type(x).__name__}")


def native(x):
    """NumPy or CuPy view of x (torch CPU -> NumPy without copy, torch CUDA -> CuPy by DLPack)."""
    kind = kind_of(x)
    if kind is Kind.TORCH_CPU:
        return x.detach().numpy()
    if kind is Kind.TORCH_CUDA:
        import cupy

        return cupy.from_dlpack(x.detach())
    return x


def restore(arr, kind: Kind):
    """arr (NumPy or CuPy) as the caller's kind."""
    if kind is Kind.TORCH_CPU:
        import torch

        return torch.from_numpy(np.asarray(arr))
    if kind is Kind.TORCH_CUDA:
        import torch

        if arr.dtype == np.bool_:
            return torch.from_dlpack(arr.view(np.uint8)).bool()
        return torch.from_dlpack(arr)
    return arr


def host(x) -> np.ndarray:
    """x as a NumPy array: a view for NumPy and torch CPU, one device-to-host copy for CuPy and torch CUDA."""
    arr = native(x)
    return arr.get() if on_gpu(arr) else np.asarray(arr)


def on_gpu(arr) -> bool:
    return _module_of(arr) == "cupy"


def xp_of(arr):
    """The array module (numpy or cupy) that owns arr."""
    if on_gpu(arr):
        import cupy

        return cupy
    return np


def leading(x, name: str, dtype, shape: tuple):
    """A kernel call's first input: the caller's kind (results are restored to it), the array as NumPy or
    CuPy checked against dtype and shape (see checked), and whether it is on the GPU, where every other
    input of the call must be too."""
    kind = kind_of(x)
    arr = native(x)
    gpu = on_gpu(arr)
    return kind, checked(arr, name, dtype, shape, gpu), gpu


def checked(arr, name: str, dtype, shape: tuple, gpu: bool, writable: bool = False):
    """arr validated against dtype and shape (None entries match any size), on the expected device.

    Read-only inputs that are not C-contiguous are made contiguous (a copy); arrays the kernel
    writes into must already be C-contiguous, since a copy would not be seen by the caller.
    """
    if on_gpu(arr) != gpu:
        where, other = ("GPU (CuPy)", "NumPy") if gpu else ("CPU (NumPy)", "CuPy")
        raise TypeError(f"{name} is a {other} array but the other inputs are on the {where}: "
                        f"pass every array of one call on the same device")
    if arr.dtype != np.dtype(dtype):
        raise TypeError(f"{name} must be {np.dtype(dtype).name}, got {arr.dtype.name}: "
                        f"convert it with .astype({np.dtype(dtype).name})")
    if arr.ndim != len(shape) or any(want is not None and want != got for want, got in zip(shape, arr.shape)):
        wanted = "x".join("?" if s is None else str(s) for s in shape)
        raise ValueError(f"{name} must have shape {wanted}, got {'x'.join(map(str, arr.shape)) or 'a scalar'}")
    if not arr.flags.c_contiguous:
        if writable:
            raise ValueError(f"{name} is written in place and must be C-contiguous: allocate it with "
                             f"empty/zeros (or pass a contiguous copy and read the result back)")
        arr = xp_of(arr).ascontiguousarray(arr)
    return arr

"""NNPACK's convolution through its C API, for what torch's op leaves out: reusing a kernel's transform.

torch's CPU wheels bundle NNPACK (conv.py says why we use it), but torch's op transforms the kernel on
every call, which for E2E-HIM's wide layers is a third of the call (22 of 76 ms for a 3x3, 512 -> 1024
channel convolution at 44 x 80 here). NNPACK itself can transform a kernel once (`transform`) and
convolve with that (`convolve(..., transformed=)`), so layers whose weights do not change keep it:
256 bytes per input-output channel pair of a 3x3 kernel, about 0.5 GB for the whole network.
libtorch_cpu exports the functions; where a build does not, `available()` is False and conv.py uses
torch's op. The calls release the GIL, like torch's.
"""

from __future__ import annotations

import ctypes
import functools
import threading
from ctypes import POINTER, Structure, c_int, c_size_t, c_void_p
from pathlib import Path

import torch
from torch import Tensor

AUTO, WINOGRAD = 0, 3  # nnp_convolution_algorithm: NNPACK's choice; F(6x6, 3x3) tiles, the one kept transforms use
COMPUTE, PRECOMPUTE, REUSE = 1, 2, 3  # nnp_convolution_transform_strategy
SUCCESS, INSUFFICIENT_BUFFER = 0, 53  # nnp_status


class _Size(Structure):
    _fields_ = [("width", c_size_t), ("height", c_size_t)]


class _Padding(Structure):
    _fields_ = [("top", c_size_t), ("right", c_size_t), ("bottom", c_size_t), ("left", c_size_t)]


class _Library:
    """nnp_convolution_inference and a thread pool with torch's thread count."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.convolution = lib.nnp_convolution_inference
        self.convolution.restype = c_int
        self.convolution.argtypes = [c_int, c_int, c_size_t, c_size_t, _Size, _Padding, _Size, _Size,
                                     c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, POINTER(c_size_t),
                                     c_int, c_void_p, c_void_p, c_void_p]
        lib.pthreadpool_create.restype = c_void_p
        lib.pthreadpool_create.argtypes = [c_size_t]
        self.pool = lib.pthreadpool_create(torch.get_num_threads())
        self.workspace = threading.local()  # each thread its own scratch, grown as calls need


@functools.cache
def _library() -> _Library | None:
    try:
        lib = ctypes.CDLL(str(Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"))
        if lib.nnp_initialize() != SUCCESS:
            return None
        return _Library(lib)
    except (OSError, AttributeError):  # no such library (not Linux) or a build without NNPACK's symbols
        return None


def available() -> bool:
    return _library() is not None


def transform(weight: Tensor) -> Tensor:
    """A 3x3 kernel (O, C, 3, 3), fp32 on the CPU, transformed for `convolve(..., transformed=)`.

    The transform depends on the kernel only, not on the images it will convolve."""
    out_channels, in_channels = weight.shape[:2]
    kernel = weight.detach().contiguous()
    size = c_size_t(0)
    args = (WINOGRAD, PRECOMPUTE, in_channels, out_channels, (3, 3), 1, 3, None, kernel, None, None)
    _check(_call(*args, None, size))  # asks for the size only
    transformed = torch.empty(size.value, dtype=torch.uint8)
    _check(_call(*args, transformed, size))
    return transformed


def convolve(image: Tensor, weight: Tensor, bias: Tensor | None, padding: int,
             transformed: Tensor | None = None) -> Tensor:
    """conv2d of one image (1, C, H, W) with a square kernel, stride 1, zero padding; fp32 on the CPU.

    transformed: transform(weight), for a 3x3 kernel whose transform is kept between calls."""
    out_channels, in_channels, k = weight.shape[0], weight.shape[1], weight.shape[-1]
    height, width = image.shape[-2:]
    out = image.new_empty(1, out_channels, height + 2 * padding - k + 1, width + 2 * padding - k + 1)
    bias = image.new_zeros(out_channels) if bias is None else bias.detach().contiguous()
    algorithm, strategy, kernel = ((AUTO, COMPUTE, weight.detach().contiguous()) if transformed is None
                                   else (WINOGRAD, REUSE, transformed))
    args = (algorithm, strategy, in_channels, out_channels, (height, width), padding, k,
            image.contiguous(), kernel, bias, out)
    workspace = getattr(_library().workspace, "buffer", None)
    size = c_size_t(0 if workspace is None else workspace.numel())
    status = _call(*args, workspace, size) if workspace is not None else INSUFFICIENT_BUFFER
    if status == INSUFFICIENT_BUFFER:
        _check(_call(*args, None, size))  # asks for the size only
        workspace = _library().workspace.buffer = torch.empty(size.value, dtype=torch.uint8)
        status = _call(*args, workspace, size)
    _check(status)
    return out


def _call(algorithm: int, strategy: int, in_channels: int, out_channels: int, size: tuple[int, int],
          padding: int, k: int, image: Tensor | None, kernel: Tensor, bias: Tensor | None, out: Tensor | None,
          workspace: Tensor | None, workspace_size: c_size_t) -> int:
    """One nnp_convolution_inference call; tensors as pointers, None as NULL (a NULL workspace asks its size)."""
    def pointer(t: Tensor | None) -> int | None:
        return None if t is None else t.data_ptr()

    return _library().convolution(
        algorithm, strategy, in_channels, out_channels, _Size(size[1], size[0]),
        _Padding(padding, padding, padding, padding), _Size(k, k), _Size(1, 1), pointer(image), pointer(kernel),
        pointer(bias), pointer(out), pointer(workspace), ctypes.byref(workspace_size), 0, None, _library().pool, None)


def _check(status: int) -> None:
    if status != SUCCESS:
        raise RuntimeError(f"NNPACK's convolution failed with status {status} (enum nnp_status in NNPACK's nnpack.h)")

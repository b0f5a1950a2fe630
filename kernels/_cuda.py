"""CUDA module loading: each kernels/<name>.cu is compiled once per process and device (CuPy RawModule)."""

from __future__ import annotations

import functools
from pathlib import Path


SOURCE_DIR = Path(__file__).resolve().parent
BLOCK = 256


def sources() -> list[Path]:
    """Every CUDA source of the package."""
    return sorted(SOURCE_DIR.glob("*.cu"))


def gpu_available() -> bool:
    """True where CuPy imports and sees at least one CUDA device."""
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


@functools.cache
def _module(name: str, device_id: int):
    import cupy

    with cupy.cuda.Device(device_id):
        return cupy.RawModule(code=(SOURCE_DIR / f"{name}.cu").read_text(), options=("-std=c++17",))


def launch(module: str, function: str, threads: int, args: tuple) -> None:
    """Run module.function on the current device and stream with one thread per work item.

    Scalars in args must already be NumPy scalars of the exact C type (np.int32, np.float32).
    """
    import cupy

    if threads <= 0:
        return
    kernel = _module(module, cupy.cuda.Device().id).get_function(function)
    kernel(((threads + BLOCK - 1) // BLOCK,), (BLOCK,), args)


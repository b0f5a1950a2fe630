"""CUDA module loading: each kernels/<name>.cu is compiled once per process and device (CuPy RawModule)."""

from __future__ import annotations

import functools
import importlib
from enum import IntEnum
from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parent
BLOCK = 256


def sources() -> list[Path]:
    """Every CUDA source of the package."""
    return sorted(SOURCE_DIR.glob("*.cu"))


def defines(tables: dict[str, type[IntEnum]], **numbers: int) -> str:
    """#define PREFIX_MEMBER value for every member of each table (keyed by its prefix), then NAME value for
    each of numbers: the text a kernels/<name>.py exports as CUDA_DEFINES, so that its .cu names the codes
    and layouts it shares with the CPU twin instead of repeating their numbers."""
    lines = [f"#define {prefix}_{member.name} {int(member)}" for prefix, table in tables.items() for member in table]
    lines += [f"#define {name} {int(value)}" for name, value in numbers.items()]
    return "".join(line + "\n" for line in lines)


def source_text(name: str) -> str:
    """kernels/<name>.cu as it is compiled, at run time and by tests/test_kernels_cuda.py: the CUDA_DEFINES of
    kernels/<name>.py (where it has them) first, then a #line directive, so that compiler messages still
    point into the .cu file, then the file itself."""
    path = SOURCE_DIR / f"{name}.cu"
    prelude = getattr(importlib.import_module(f"kernels.{name}"), "CUDA_DEFINES", "")
    return f'{prelude}#line 1 "{path.name}"\n{path.read_text()}'


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
        return cupy.RawModule(code=source_text(name), options=("-std=c++17",))


def launch(module: str, function: str, threads: int, args: tuple) -> None:
    """Run module.function on the current device and stream with one thread per work item.

    Scalars in args must already be NumPy scalars of the exact C type (np.int32, np.float32).
    """
    import cupy

    if threads <= 0:
        return
    kernel = _module(module, cupy.cuda.Device().id).get_function(function)
    kernel(((threads + BLOCK - 1) // BLOCK,), (BLOCK,), args)

"""Process-wide tuning the livematte commands apply when they start (tune_process): how OpenMP threads wait,
and keeping freed memory in the process for reuse instead of handing large blocks back to the OS.

glibc serves blocks above its mmap threshold (128 KiB at first) with fresh mmap()s and returns them on
free(). Every frame allocates the same large arrays again (network activations up to 30 MB, per-person
mattes of 15 MB at 720p), so each reuse began with a page fault per 4 KiB page, the kernel zeroing it:
about 100,000 faults (400 MB) per 640x640 E2E-HIM forward. With blocks up to 32 MiB kept in the heap
and the heap never trimmed, the network runs 5-9 % faster on this CPU (bench/model_cpu.py) and the
process keeps its peak working set, which a streaming process reaches on its first frames anyway.
"""

from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt() parameters (malloc.h)
LARGEST_HEAP_BLOCK = 32 << 20  # glibc's upper limit for the mmap threshold on 64-bit
TRIM_AT = (1 << 31) - 1  # the largest value mallopt takes: trim the heap only with 2 GiB free at its top
SPIN_COUNT = "10000"  # GOMP_SPINCOUNT: about 0.1 ms of spinning after a parallel region, then sleep


def tune_process() -> None:
    """Tune the whole process for livematte's work. Only applications call it (livematte/cli.py's main()), and
    first, before torch is imported: a library import leaves the process as it found it.

    - OpenMP threads (torch's and numba's) spin about 0.1 ms after a parallel region, then sleep
      (GOMP_SPINCOUNT=10000, _spin_briefly); a user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT in the
      environment wins.
    - Large freed blocks stay in the heap for the next frame (glibc mallopt, keep_freed_memory); no switch:
      it only keeps the peak working set the process reached."""
    _spin_briefly()
    keep_freed_memory()


def _spin_briefly() -> None:
    """libgomp's default spin, about 3 ms, takes cores from other threads: from NNPACK's own, which start
    right after an OpenMP op (the network's wide convolutions ran 15-25 % slower), and from the live
    pipeline's capture, tracking and compositing threads (the network once took 3.4-10.7 s per 640x352
    frame beside other work instead of 2.0 s). Not spinning at all (OMP_WAIT_POLICY=PASSIVE) makes each
    of the network's ~1000 parallel regions wake a sleeping thread: 0.94 s against 1.08 s at 640x352
    (bench/openmp_wait.py). libgomp reads the variables once, when it is loaded (by torch's import), so
    this has no effect after that; a user's own OMP_WAIT_POLICY (which sets libgomp's spin itself) or
    GOMP_SPINCOUNT stands."""
    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ.setdefault("GOMP_SPINCOUNT", SPIN_COUNT)


def keep_freed_memory() -> bool:
    """Apply the policy through glibc's mallopt(); False where the C library is not glibc (nothing to do).
    The process's own symbols are searched (dlopen(NULL)): looking libc up by name runs ldconfig, a
    subprocess on every start."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    kept = mallopt(M_MMAP_THRESHOLD, LARGEST_HEAP_BLOCK) == 1
    trimmed = mallopt(M_TRIM_THRESHOLD, TRIM_AT) == 1
    if not (kept and trimmed):
        log.debug("mallopt refused the memory policy; large arrays keep being mapped per use")
    return kept and trimmed

"""Keep freed memory in the process for reuse, instead of handing large blocks back to the OS.

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

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt() parameters (malloc.h)
LARGEST_HEAP_BLOCK = 32 << 20  # glibc's upper limit for the mmap threshold on 64-bit
TRIM_AT = (1 << 31) - 1  # the largest value mallopt takes: trim the heap only with 2 GiB free at its top


def keep_freed_memory() -> bool:
    """Apply the policy through glibc's mallopt(); False where the C library is not glibc (nothing to do).
    The process's own symbols are searched (dlopen(NULL)): looking libc up by name runs ldconfig, a
    subprocess on every import."""
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

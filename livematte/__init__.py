"""livematte: real-time per-person video matting with a per-person effect."""

import os

# OpenMP threads (torch's and numba's) spin for about 0.1 ms after a parallel region, then sleep.
# libgomp's default spin, about 3 ms, takes cores from other threads: from NNPACK's own, which start
# right after an OpenMP op (the network's wide convolutions ran 15-25 % slower), and from the live
# pipeline's capture, tracking and compositing threads (the network once took 3.4-10.7 s per 640x352
# frame beside other work instead of 2.0 s). Not spinning at all (OMP_WAIT_POLICY=PASSIVE) makes each
# of the network's ~1000 parallel regions wake a sleeping thread: 0.94 s against 1.08 s at 640x352
# (bench/openmp_wait.py). libgomp reads the variables once, when it is loaded (by torch's import), so
# they are set here, first; a user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT stands.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "10000")

from livematte.memory import keep_freed_memory  # noqa: E402

keep_freed_memory()  # large per-frame arrays reuse freed memory instead of page-faulting (livematte/memory.py)

__version__ = "0.1.0"

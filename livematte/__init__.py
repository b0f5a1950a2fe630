"""livematte: real-time per-person video matting with a per-person effect."""

import os

# OpenMP threads (torch's and numba's) sleep between parallel regions instead of spinning, libgomp's
# default. The live pipeline runs capture, tracking, compositing and the network on their own threads;
# spinning threads starve them on a few cores: the E2E-HIM network at 640x352 took 3.4-10.7 s per frame
# beside other work instead of 2.0 s, and one WebRTC peer got 10-22 fps instead of 30 (bench/webrtc_cpu.py).
# libgomp reads the variable once, when it is loaded (by torch's import): so it is set here, first.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from livematte.memory import keep_freed_memory  # noqa: E402

keep_freed_memory()  # large per-frame arrays reuse freed memory instead of page-faulting (livematte/memory.py)

__version__ = "0.1.0"

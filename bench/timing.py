"""Timing a call where it runs: CUDA events on the current stream on a GPU, the wall clock on the CPU.

CUDA events measure the GPU's own time for the queued work, so host-side launch gaps show up only when
the GPU waits for them (which is what a caller pays). CuPy and torch share the default stream, so one
timer serves both.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable


def call_ms(fn: Callable[[], object], repeats: int, cuda: bool, warmup: int = 1) -> list[float]:
    """Milliseconds of each of `repeats` calls of fn, after `warmup` untimed calls (first calls allocate)."""
    for _ in range(warmup):
        fn()
    if not cuda:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start) * 1e3)
        return times
    import torch

    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return times


def summary(times: list[float], batch: int = 1) -> dict[str, float]:
    """Median and p95 per call, and the median per frame of a batch."""
    ordered = sorted(times)
    median = statistics.median(ordered)
    return {"median_ms": round(median, 3), "p95_ms": round(ordered[round(0.95 * (len(ordered) - 1))], 3),
            "per_frame_ms": round(median / batch, 3), "runs": len(ordered)}

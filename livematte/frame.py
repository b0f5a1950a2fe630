"""The unit that flows from a source through the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One captured picture.

    `capture_ns` is time.monotonic_ns() when the source received the frame: glass-to-glass latency
    is measured from it. `pts` is the source's own presentation time in seconds (None when the
    source has none, e.g. a webcam through OpenCV).
    """

    pixels: np.ndarray  # uint8 BGR, H x W x 3, C-contiguous
    index: int
    capture_ns: int
    pts: float | None = None
    alphas: np.ndarray | None = field(default=None, repr=False)  # ground truth (N, H, W) float32, synthetic only

    @property
    def height(self) -> int:
        return self.pixels.shape[0]

    @property
    def width(self) -> int:
        return self.pixels.shape[1]

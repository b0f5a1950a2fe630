"""When to run the engine: every k-th frame, or only when the image changed enough.

On skipped frames the pipeline hands the last prediction to the stabilizer again, whose fusion
carries the mattes forward; the engine's cost is then paid on a fraction of the frames.
"""

from __future__ import annotations

import cv2
import numpy as np

PROBE_WIDTH = 64  # the change test looks at a thumbnail: cheap, and blind to sensor noise


class InferenceSkipper:
    def __init__(self, every: int = 1, min_change: float | None = None):
        """every: the longest run of frames between two inferences (1 = infer every frame);
        min_change: also infer as soon as the mean absolute grey-level change since the last
        inferred frame reaches this (None: run on a fixed every-k-th schedule)."""
        if every < 1:
            raise ValueError(f"every must be at least 1, got {every}")
        self.every, self.min_change = every, min_change
        self.frames = self.skipped = 0
        self._since = 0
        self._reference: np.ndarray | None = None

    def should_infer(self, frame: np.ndarray) -> bool:
        """Decide for this frame (host uint8 BGR) and count the decision."""
        self.frames += 1
        probe = self._probe(frame) if self.min_change is not None else None
        changed = probe is not None and self._reference is not None and self._changed(probe)
        if self.frames == 1 or self._since + 1 >= self.every or changed:
            self._since, self._reference = 0, probe
            return True
        self._since += 1
        self.skipped += 1
        return False

    @property
    def skip_rate(self) -> float:
        return self.skipped / self.frames if self.frames else 0.0

    def _changed(self, probe: np.ndarray) -> bool:
        return probe.shape != self._reference.shape or float(np.abs(probe - self._reference).mean()) >= self.min_change

    @staticmethod
    def _probe(frame: np.ndarray) -> np.ndarray:
        height, width = frame.shape[:2]
        size = (PROBE_WIDTH, max(1, round(height * PROBE_WIDTH / width)))
        grey = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_BGR2GRAY)
        return cv2.resize(grey, size, interpolation=cv2.INTER_AREA).astype(np.float32)

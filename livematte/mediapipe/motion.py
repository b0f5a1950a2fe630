"""How the picture moved since the last frame, on the mattes' grid: it carries the masks of the people
the landmark model did not read on this frame (livematte/engine/mediapipe_engine.py).

Moving such a mask by its square's velocity leaves a limb that moves otherwise (an arm swinging while
the body stands) behind until the person's next read; that showed as flicker and as trailing limbs.
Dense optical flow (OpenCV's DIS, its fastest preset: ~3 ms at 640x360 on one core) moves each pixel
of the mask with the picture under it.
"""

from __future__ import annotations

import cv2
import numpy as np

from livematte.frame import at_size
from livematte.mediapipe.landmarks import MASK_FLOOR

Box = tuple[int, int, int, int]  # [y0, y1, x0, x1) on the grid


class Motion:
    """One stream's frames in order; not thread-safe."""

    def __init__(self) -> None:
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        self._previous: np.ndarray | None = None
        self._flow: np.ndarray | None = None  # per grid pixel of this frame: (dx, dy) to where it was before

    def see(self, frame: np.ndarray, grid: tuple[int, int], carrying: bool) -> None:
        """Take the stream's next frame (BGR at any size); the flow is computed only when a mask is to be
        carried (`carrying`) and the last frame had the same grid."""
        grey = cv2.cvtColor(at_size(frame, grid), cv2.COLOR_BGR2GRAY)
        same = self._previous is not None and self._previous.shape == grey.shape
        self._flow = self._dis.calc(grey, self._previous, None) if carrying and same else None
        self._previous = grey

    def carry(self, matte: np.ndarray, box: Box | None) -> tuple[np.ndarray, Box | None]:
        """Last frame's matte (grid size, zero outside `box`) moved to this frame, and its new box; as it is
        when there is no flow (the first frame of a grid)."""
        if self._flow is None or box is None:
            return matte, box
        y0, y1, x0, x1 = box
        reach = int(np.ceil(np.abs(self._flow[y0:y1, x0:x1]).max())) + 1
        y0, y1 = max(y0 - reach, 0), min(y1 + reach, matte.shape[0])
        x0, x1 = max(x0 - reach, 0), min(x1 + reach, matte.shape[1])
        flow = self._flow[y0:y1, x0:x1]
        columns, rows = np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32)[:, None]
        moved = np.zeros_like(matte)
        cv2.remap(matte, columns + flow[..., 0], rows + flow[..., 1], cv2.INTER_LINEAR, dst=moved[y0:y1, x0:x1],
                  borderMode=cv2.BORDER_CONSTANT)
        left, top, width, height = cv2.boundingRect((moved[y0:y1, x0:x1] >= MASK_FLOOR).astype(np.uint8))
        return moved, ((y0 + top, y0 + top + height, x0 + left, x0 + left + width) if height else None)

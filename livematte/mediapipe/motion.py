"""How the picture moved since the last frame, on the mattes' grid: it carries the masks of the people
the landmark model did not read on this frame (livematte/engine/mediapipe_engine.py), and says where it
changed (livematte/mediapipe/newcomers.py).

Moving such a mask by its square's velocity leaves a limb that moves otherwise (an arm swinging while
the body stands) behind until the person's next read; that showed as flicker and as trailing limbs.
Dense optical flow (OpenCV's DIS, its fastest preset: ~1.4 ms at 640x360 on one core) moves each pixel
of the mask with the picture under it. A mask under which (and up to STILL_MARGIN pixels around which) no
pixel changed stays as it is: the flow of a still picture is noise that only drifts and blurs the mask,
and a frame where every carried mask is still (people sitting for a call) needs no flow at all.
"""

from __future__ import annotations

import cv2
import numpy as np

from livematte.mediapipe.landmarks import MASK_FLOOR

Box = tuple[int, int, int, int]  # [y0, y1, x0, x1) on the grid
CHANGE = 12  # grey levels by which a pixel must change to count as changed (compression noise stays below)
STILL_MARGIN = 2  # grid pixels around a mask's box where a change also moves the mask


def box_slices(box: Box | None) -> tuple[slice, slice]:
    """`box` as an index of the grid (an empty one for None)."""
    y0, y1, x0, x1 = box if box is not None else (0, 0, 0, 0)
    return slice(y0, y1), slice(x0, x1)


class Motion:
    """One stream's frames in order; not thread-safe."""

    def __init__(self) -> None:
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        self._last: np.ndarray | None = None  # the last frame seen, grey, on the grid
        self._before: np.ndarray | None = None  # the one before it, where it had the same grid
        self._changed: np.ndarray | None = None  # where the picture changed between the two (bool)
        self._flow: np.ndarray | None = None  # per grid pixel of the last frame: (dx, dy) to where it was before

    def see(self, picture: np.ndarray) -> None:
        """Take the stream's next frame, BGR on the grid; the flow waits until a mask needs it."""
        grey = cv2.cvtColor(picture, cv2.COLOR_BGR2GRAY)
        same = self._last is not None and self._last.shape == grey.shape
        self._last, self._before = grey, self._last if same else None
        self._changed = cv2.absdiff(self._last, self._before) > CHANGE if same else None
        self._flow = None

    def changed(self) -> np.ndarray | None:
        """Where the grid's picture changed between the last two frames (bool); None after a first frame."""
        return self._changed

    def carry(self, patch: np.ndarray, box: Box | None) -> tuple[np.ndarray, Box | None]:
        """Last frame's matte, given as its `box` of the grid (zero elsewhere), moved to this frame: the new
        patch and box; as they are where nothing moved under it, and on the first frame of a grid."""
        if self._changed is None or box is None or not self._changed[box_slices(_grown(box))].any():
            return patch, box
        if self._flow is None:
            self._flow = self._dis.calc(self._last, self._before, None)
        y0, y1, x0, x1 = box
        reach = int(np.ceil(np.abs(self._flow[y0:y1, x0:x1]).max())) + 1
        height, width = self._flow.shape[:2]
        top, bottom = max(y0 - reach, 0), min(y1 + reach, height)
        left, right = max(x0 - reach, 0), min(x1 + reach, width)
        flow = self._flow[top:bottom, left:right]
        columns = np.arange(left - x0, right - x0, dtype=np.float32)  # this region's pixels in the patch's
        rows = np.arange(top - y0, bottom - y0, dtype=np.float32)[:, None]
        moved = cv2.remap(patch, columns + flow[..., 0], rows + flow[..., 1], cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT)
        x, y, w, h = cv2.boundingRect((moved >= MASK_FLOOR).astype(np.uint8))
        if not h:
            return patch[:0, :0], None
        return moved[y:y + h, x:x + w], (top + y, top + y + h, left + x, left + x + w)


def _grown(box: Box) -> Box:
    y0, y1, x0, x1 = box
    return max(y0 - STILL_MARGIN, 0), y1 + STILL_MARGIN, max(x0 - STILL_MARGIN, 0), x1 + STILL_MARGIN

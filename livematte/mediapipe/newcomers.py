"""Where someone new may be: the detector's squares whose picture changed where nobody followed is.

A camera that stands still (a video call, a streamer's desk, a studio) shows a newcomer as a change
of the picture away from the people it follows. The engine (livematte/engine/mediapipe_engine.py)
reads such squares with the detector and otherwise lets it rest but for a slow sweep, which finds a
person the detector missed who keeps still. Not a newcomer: a change next to a followed person's
matte (their own hand or foot ahead of it), a thin one (a swinging string, the edge of a shadow) or a
small one (compression noise). A moving camera changes every square: the detector then reads them
all in turn, as without this watch.
"""

from __future__ import annotations

import cv2
import numpy as np

from livematte.mediapipe.detector import Square
from livematte.mediapipe.motion import Box

NEAR = 10  # grid pixels around a followed person's matte whose changes are their own motion
THIN = 5  # side of the opening that removes changes thinner than this (grid pixels)
MIN_AREA = 200  # grid pixels of a change big enough to be a person (a 14-pixel square on a 640-pixel grid)
_NEAR_KERNEL = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * NEAR + 1, 2 * NEAR + 1))
_THIN_KERNEL = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (THIN, THIN))


class NewcomerWatch:
    """One stream's squares that changed since the detector last read them; not thread-safe."""

    def __init__(self) -> None:
        self.reset([], 1.0)

    def reset(self, squares: list[Square], scale: float) -> None:
        """Forget every change (a new stream or frame size): the detector's `squares` (frame pixels) of
        frames whose mattes' grid is `scale` times their size."""
        self._squares, self._scale = squares, scale
        self._changed: set[Square] = set()
        self._people: np.ndarray | None = None  # the last frame's followed people on the grid (uint8, 1 = someone)

    def see(self, change: np.ndarray | None, people: np.ndarray) -> None:
        """One frame on the mattes' grid: `change` is where the picture changed since the last frame (None
        on a first frame), `people` (uint8) where a followed person's matte is on this frame."""
        around = people if self._people is None else cv2.max(people, self._people)
        self._people = people
        if change is None:
            return
        away = change & (cv2.dilate(around, _NEAR_KERNEL) == 0)
        solid = cv2.morphologyEx(away.view(np.uint8), cv2.MORPH_OPEN, _THIN_KERNEL)
        if cv2.countNonZero(solid) < MIN_AREA:
            return
        count, _, stats, _ = cv2.connectedComponentsWithStats(solid, connectivity=8)
        for x, y, w, h, area in stats[1:count]:
            if area >= MIN_AREA:
                self.mark((y, y + h, x, x + w))

    def mark(self, box: Box) -> None:
        """Every square that overlaps `box` ([y0, y1, x0, x1) on the grid) has changed: what
        was there must be looked at again (a person the engine let go there may still be in the picture)."""
        y0, y1, x0, x1 = (v / self._scale for v in box)
        self._changed.update((x, y, side) for x, y, side in self._squares
                             if x < x1 and x0 < x + side and y < y1 and y0 < y + side)

    def changed(self, square: Square) -> bool:
        return square in self._changed

    def read(self, square: Square) -> None:
        """The detector has read `square`: its changes are seen."""
        self._changed.discard(square)

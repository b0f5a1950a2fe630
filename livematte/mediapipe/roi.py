"""A person's region of interest: the square, turned with their body, that the landmark model reads.

As in MediaPipe's pose graphs, the square is centred on the hip centre, upright along the line from
the hip centre to a point above the head, its side 2.5 times that distance (twice it, then 1.25x).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SCALE = 2.0 * 1.25
Part = tuple[float, float, float, float]  # (top, bottom, left, right) of the square, as fractions of its side
WHOLE: Part = (0.0, 1.0, 0.0, 1.0)


@dataclass(frozen=True)
class Roi:
    centre: np.ndarray  # (x, y) frame pixels
    down: np.ndarray  # unit (x, y): the body's downward direction in the frame
    size: float  # side in frame pixels

    @classmethod
    def from_alignment(cls, hip: np.ndarray, top: np.ndarray) -> "Roi":
        """The square for a body whose hip centre and top point (above the head) are given."""
        axis = np.asarray(hip, np.float64) - np.asarray(top, np.float64)
        length = float(np.hypot(*axis))
        down = axis / length if length > 0 else np.array([0.0, 1.0])
        return cls(np.asarray(hip, np.float64), down, SCALE * max(length, 1.0))

    def moved(self, shift: np.ndarray) -> "Roi":
        return Roi(self.centre + shift, self.down, self.size)

    def scaled(self, scale: float) -> "Roi":
        """The same square on a grid `scale` times the frame's (the engine's mattes)."""
        return Roi(on_grid(self.centre, scale), self.down, self.size * scale)

    def to_frame(self, side: int) -> np.ndarray:
        """2x3 affine taking a side x side crop's pixel (u, v) to frame pixels."""
        right = np.array([self.down[1], -self.down[0]])
        step = self.size / side
        offset = self.centre + step * (0.5 - side / 2) * (right + self.down)
        return np.array([[right[0] * step, self.down[0] * step, offset[0]],
                         [right[1] * step, self.down[1] * step, offset[1]]])

    def crop(self, frame: np.ndarray, side: int) -> np.ndarray:
        """The square as a side x side picture (outside the frame: black)."""
        return cv2.warpAffine(frame, self.to_frame(side), (side, side), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT)

    def box(self, height: int, width: int, part: Part = WHOLE) -> tuple[int, int, int, int] | None:
        """[y0, y1, x0, x1) bounding a part of the square inside a height x width frame; None when outside."""
        top, bottom, left, right = part
        across = np.array([self.down[1], -self.down[0]])
        corners = np.array([self.centre + (u - 0.5) * self.size * across + (v - 0.5) * self.size * self.down
                            for u in (left, right) for v in (top, bottom)])
        lo, hi = np.floor(corners.min(axis=0)).astype(int), np.ceil(corners.max(axis=0)).astype(int) + 1
        x0, y0 = max(int(lo[0]), 0), max(int(lo[1]), 0)
        x1, y1 = min(int(hi[0]), width), min(int(hi[1]), height)
        return (y0, y1, x0, x1) if x1 > x0 and y1 > y0 else None

    def paste(self, patch: np.ndarray, out: np.ndarray, part: Part = WHOLE) -> None:
        """Write a crop-space map (side x side float32) into `out` (frame size) where a part of the square
        lies (the patch is zero outside that part)."""
        box = self.box(*out.shape[:2], part)
        if box is None:
            return
        y0, y1, x0, x1 = box
        to_box = self.to_frame(patch.shape[0]) - np.array([[0, 0, x0], [0, 0, y0]])
        cv2.warpAffine(patch, to_box, (x1 - x0, y1 - y0), dst=out[y0:y1, x0:x1], flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_TRANSPARENT)

    def points_to_frame(self, points: np.ndarray, side: int) -> np.ndarray:
        """(N, 2) crop pixels -> frame pixels."""
        m = self.to_frame(side)
        return points @ m[:, :2].T + m[:, 2]

    def sample(self, patch: np.ndarray, points: np.ndarray) -> np.ndarray:
        """(N,) values of a crop-space map (side x side) at frame points (N, 2), nearest pixel; 0 outside."""
        m = self.to_frame(patch.shape[0])
        crop = np.rint((points - m[:, 2]) @ np.linalg.inv(m[:, :2]).T).astype(int)
        inside = ((crop >= 0) & (crop < patch.shape[0])).all(axis=1)
        values = np.zeros(len(points), patch.dtype)
        values[inside] = patch[crop[inside, 1], crop[inside, 0]]
        return values


def on_grid(points: np.ndarray, scale: float) -> np.ndarray:
    """Frame pixel coordinates on a grid `scale` times the frame's, pixel centres aligned as cv2.resize
    aligns them (the frame's outer edge is the grid's)."""
    return (np.asarray(points, np.float64) + 0.5) * scale - 0.5

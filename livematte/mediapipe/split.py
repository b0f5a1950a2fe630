"""Pixels two people's masks both claim go to the nearer body.

Each person's mask comes from their own square, and a neighbour who stands in it is partly masked
too (an arm across a shoulder, people sitting shoulder to shoulder). Where two mattes both exceed
one half, the pixel belongs to the person whose visible skeleton is nearer; a seam of SEAM frame pixels
cross-fades the two, so the cut is soft like the rest of the matte. Distances are computed only around
the contested pixels, on a lattice of at least LATTICE pixels (the difference of two distances changes
smoothly, so it is interpolated, and the seam applied after): most people's masks do not meet.
"""

from __future__ import annotations

import cv2
import numpy as np
from numba import njit

from livematte.mediapipe.landmarks import BONES, MIN_VISIBLE

SEAM = 4.0  # frame pixels over which a contested pixel passes from one person to the other
LATTICE = 2  # finest spacing, in the mattes' pixels, of the points where distances are computed
FAR = 1e9  # distance to a person none of whose bones is visible


def split_contested(mattes: np.ndarray, boxes: list[tuple[int, int, int, int] | None], landmarks: list[np.ndarray],
                    visible: list[np.ndarray], scale: float = 1.0) -> None:
    """In place: for every two people whose boxes [y0, y1, x0, x1) meet, share what both mattes claim.
    Boxes and landmarks are in the mattes' pixels, `scale` times the frame's."""
    seam = max(1.0, SEAM * scale)
    for i in range(len(mattes)):
        for j in range(i + 1, len(mattes)):
            region = _meet(boxes[i], boxes[j])
            if region is None:
                continue
            y0, y1, x0, x1 = region
            a, b = mattes[i, y0:y1, x0:x1], mattes[j, y0:y1, x0:x1]
            ys, xs = np.nonzero((a > 0.5) & (b > 0.5))
            if len(ys):
                top, left = ys.min(), xs.min()
                share_a = _share(top, ys.max() + 1, left, xs.max() + 1, (x0, y0), (landmarks[i], visible[i]),
                                 (landmarks[j], visible[j]), seam)[ys - top, xs - left]
                a[ys, xs] *= share_a
                b[ys, xs] *= 1.0 - share_a


def _share(y0: int, y1: int, x0: int, x1: int, offset: tuple[int, int], a, b, seam: float) -> np.ndarray:
    """Person a's share of each pixel of a region (region pixels [y0, y1) x [x0, x1) of a frame region at
    `offset`): how much nearer a's skeleton is than b's, from a lattice interpolated, across `seam` pixels."""
    step = max(LATTICE, int(seam))
    gy, gx = np.mgrid[y0:y1 + step:step, x0:x1 + step:step]
    pixels = np.stack([gx.ravel() + offset[0], gy.ravel() + offset[1]], axis=1).astype(np.float32)
    nearer_a = (bone_distance(pixels, *b) - bone_distance(pixels, *a)).astype(np.float32).reshape(gy.shape)
    rows, cols = (np.arange(y1 - y0) / step).astype(np.float32), (np.arange(x1 - x0) / step).astype(np.float32)
    difference = cv2.remap(nearer_a, *np.meshgrid(cols, rows), interpolation=cv2.INTER_LINEAR)
    return np.clip(0.5 + difference / (2 * seam), 0.0, 1.0)


def bone_distance(pixels: np.ndarray, points: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """(P,) distance of each (x, y) pixel to the nearest visible bone of a skeleton (FAR if none shows)."""
    bones = np.array([(p, q) for p, q in BONES if visible[p] >= MIN_VISIBLE and visible[q] >= MIN_VISIBLE])
    if not len(bones):
        return np.full(len(pixels), FAR, np.float32)
    return _segment_distance(np.asarray(pixels, np.float32), points[bones[:, 0]].astype(np.float32),
                             points[bones[:, 1]].astype(np.float32))


@njit(cache=True, nogil=True)
def _segment_distance(pixels, starts, ends):
    """(P,) float32 distance of each (x, y) pixel to the nearest of the segments starts[k] -> ends[k]."""
    out = np.empty(pixels.shape[0], np.float32)
    for p in range(pixels.shape[0]):
        nearest = np.float32(np.inf)
        for k in range(starts.shape[0]):
            ax, ay = ends[k, 0] - starts[k, 0], ends[k, 1] - starts[k, 1]
            rx, ry = pixels[p, 0] - starts[k, 0], pixels[p, 1] - starts[k, 1]
            t = min(max((rx * ax + ry * ay) / max(ax * ax + ay * ay, np.float32(1e-6)), np.float32(0)),
                    np.float32(1))
            dx, dy = rx - t * ax, ry - t * ay
            nearest = min(nearest, dx * dx + dy * dy)
        out[p] = np.sqrt(nearest)
    return out


def _meet(a, b) -> tuple[int, int, int, int] | None:
    if a is None or b is None:
        return None
    y0, y1, x0, x1 = max(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), min(a[3], b[3])
    return (y0, y1, x0, x1) if y1 > y0 and x1 > x0 else None

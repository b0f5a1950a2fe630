"""Where a stack of per-person planes is non-zero: the CPU twins work inside these windows only.

A person covers a fraction of the frame; per-person passes over the whole frame made the CPU cost grow
with the number of people times the frame size. Extents are (N, 4) int64 [y0, y1, x0, x1), with
y1 = 0 for an empty plane. The GPU kernels do not need them (one thread per pixel; empty pixels are
cheap there).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

BLOCK = 32  # values tested at once while looking for a row's first and last non-zero value


@njit(cache=True)
def bounds_from_rows(first, last):
    """(N, H) first and one-past-last non-zero x of every row (last = 0: empty row) -> (N, 4) extents."""
    n, h = first.shape
    out = np.zeros((n, 4), np.int64)
    for i in range(n):
        y0, y1, x0, x1 = h, 0, 1 << 62, 0
        for y in range(h):
            if last[i, y] > 0:
                y0 = min(y0, y)
                y1 = y + 1
                x0 = min(x0, first[i, y])
                x1 = max(x1, last[i, y])
        if y1 > 0:
            out[i, 0], out[i, 1], out[i, 2], out[i, 3] = y0, y1, x0, x1
    return out


@njit(cache=True)
def _any_positive(row, start, end):
    """Whether row[start:end] holds a value > 0; without an early exit, so the loop vectorises."""
    hits = 0
    for x in range(start, end):
        hits += row[x] > 0
    return hits > 0


@njit(parallel=True, cache=True, nogil=True)
def nonzero_extents(planes):
    """(N, H, W) -> (N, 4) extents of the values > 0 of each plane."""
    n, h, w = planes.shape
    first = np.full((n, h), w, np.int64)
    last = np.zeros((n, h), np.int64)
    for k in prange(n * h):
        row = planes[k // h, k % h]
        start = 0
        while start + BLOCK <= w and not _any_positive(row, start, start + BLOCK):
            start += BLOCK
        for x in range(start, w):
            if row[x] > 0:
                first[k // h, k % h] = x
                break
        if first[k // h, k % h] == w:  # an empty row: nothing to find from the other end
            continue
        end = w
        while end - BLOCK >= 0 and not _any_positive(row, end - BLOCK, end):
            end -= BLOCK
        for x in range(end - 1, -1, -1):
            if row[x] > 0:
                last[k // h, k % h] = x + 1
                break
    return bounds_from_rows(first, last)


@njit(cache=True)
def union(a, b):
    """The smallest extents holding both a and b (row by row)."""
    out = a.copy()
    for i in range(a.shape[0]):
        if b[i, 1] == 0:
            continue
        if a[i, 1] == 0:
            out[i] = b[i]
            continue
        out[i, 0], out[i, 1] = min(a[i, 0], b[i, 0]), max(a[i, 1], b[i, 1])
        out[i, 2], out[i, 3] = min(a[i, 2], b[i, 2]), max(a[i, 3], b[i, 3])
    return out


def whole(n: int, h: int, w: int) -> np.ndarray:
    """Extents covering the whole frame for n planes."""
    return np.tile(np.array([0, h, 0, w], np.int64), (n, 1))


def shifted(extents: np.ndarray, shifts: np.ndarray, h: int, w: int) -> np.ndarray:
    """extents moved by each plane's (dy, dx) and clipped to the frame; one pushed out is empty."""
    moved = extents + np.repeat(shifts.astype(np.int64), 2, axis=1)
    out = np.stack([np.clip(moved[:, 0], 0, h), np.clip(moved[:, 1], 0, h),
                    np.clip(moved[:, 2], 0, w), np.clip(moved[:, 3], 0, w)], axis=1)
    out[(extents[:, 1] == 0) | (out[:, 0] >= out[:, 1]) | (out[:, 2] >= out[:, 3])] = 0
    return out


def grown(extents: np.ndarray, r: int, h: int, w: int) -> np.ndarray:
    """extents widened by r on every side (what an outward feather of radius r reaches), clipped to the
    frame; empty ones stay empty."""
    empty = extents[:, 1] == 0
    out = np.stack([np.maximum(extents[:, 0] - r, 0), np.minimum(extents[:, 1] + r, h),
                    np.maximum(extents[:, 2] - r, 0), np.minimum(extents[:, 3] + r, w)], axis=1).astype(np.int64)
    out[empty] = 0
    return out

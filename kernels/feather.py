"""Outward feather of person alphas: a soft dilation that widens the matte edge without eroding it.

    out(p) = max over |dx|, |dy| <= r of alpha(p + (dx, dy)) * f(dx) * f(dy),   f(d) = 1 - |d| / (r + 1)

A separable max-convolution (rows, then columns; exact, since f >= 0 factorises), so a fully opaque edge
fades out linearly over r pixels. f(0) = 1 gives out >= alpha everywhere: the person is never eroded.
Negative alphas count as 0. feather.cu computes the same function with the same float32 weights.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from kernels import _cuda
from kernels._arrays import checked, leading, native, restore, xp_of
from kernels._extent import nonzero_extents


def falloff(radius: int) -> np.ndarray:
    """float32 f(d) for d = -r..r, computed exactly as the CUDA kernels do."""
    d = np.abs(np.arange(-radius, radius + 1)).astype(np.float32)
    return np.float32(1.0) - d / np.float32(radius + 1)


@njit(parallel=True, cache=True, nogil=True)
def _feather_cpu(alphas, out, weights, extents):
    """Rows, then columns, each inside the person's window (their non-zero extent grown by r)."""
    people, h, w = alphas.shape
    r = (weights.shape[0] - 1) // 2
    tmp = np.empty_like(alphas)
    for k in prange(people * h):
        i = k // h
        y = k % h
        y0, y1, x0, x1 = extents[i]
        if y < y0 or y >= y1:
            continue
        row = tmp[i, y]
        source = alphas[i, y]
        lo, hi = max(0, x0 - r), min(w, x1 + r)
        row[lo:hi] = 0.0
        for d in range(-min(r, w - 1), min(r, w - 1) + 1):
            f = weights[d + r]
            for x in range(max(lo, -d), min(hi, w - d)):
                row[x] = max(row[x], source[x + d] * f)
    for k in prange(people * h):
        i = k // h
        y = k % h
        y0, y1, x0, x1 = extents[i]
        row = out[i, y]
        row[:] = 0.0
        lo, hi = max(0, x0 - r), min(w, x1 + r)
        for yy in range(max(y0, y - r), min(y1, y + r + 1)):
            f = weights[yy - y + r]
            source = tmp[i, yy]
            for x in range(lo, hi):
                row[x] = max(row[x], source[x] * f)


def feather(alphas, radius: int, out=None, extents: np.ndarray | None = None):
    """Soft outward dilation of (N, H, W) float32 alphas by radius pixels; out (optional, same shape,
    must not alias alphas). Returns the feathered alphas of the caller's kind.

    extents: (N, 4) int64 [y0, y1, x0, x1) holding every alpha > 0, when the caller knows them (the
    fusion keeps them): the CPU twin then skips finding them, a pass over every plane."""
    if radius < 0:
        raise ValueError(f"feather radius must be >= 0, got {radius}")
    kind, src, gpu = leading(alphas, "alphas", np.float32, (None, None, None))
    xp = xp_of(src)
    result = xp.empty_like(src) if out is None else checked(native(out), "out", np.float32, src.shape, gpu, True)
    if result is src:
        raise ValueError("feather out must not be the alphas array itself: pass a separate buffer")
    if gpu:
        people, h, w = src.shape
        tmp = xp.empty_like(src)
        _cuda.launch("feather", "feather_rows", src.size, (src, tmp, np.int64(src.size), np.int32(w), np.int32(radius)))
        _cuda.launch("feather", "feather_cols", src.size, (
            tmp, result, np.int64(src.size), np.int32(h), np.int32(w), np.int32(radius)))
    else:
        if extents is None:
            extents = nonzero_extents(src)
        elif np.shape(extents) != (src.shape[0], 4):
            raise ValueError(f"extents must have shape ({src.shape[0]}, 4), got {np.shape(extents)}")
        _feather_cpu(src, result, falloff(radius), np.asarray(extents, np.int64))
    return out if out is not None else restore(result, kind)

"""Halo-free masked blur: people are masked out of the blur and the result renormalised, so no person
colour bleeds into a blurred background.

    out = (box(I * v) + DELTA * box(I)) / (box(v) + DELTA * box(1)),   v = 1 - min(1, sum_i alpha_i)

box is a separable box filter of radius r (window 2r + 1, clipped at the image border: the sums run
over the pixels inside the frame only), so any radius costs the same on the CPU (running sums).
Where the window holds no background at all (v = 0 everywhere in it) the background is unknown and the
result is the plain box blur of the frame; DELTA = 1e-4 blends that fallback in continuously (a window
with 1 % background is off the exact ratio by about 1 %), with no division by zero. With no people
(alphas of shape (0, H, W)) this is the plain box blur.

With of_people=True the weight is inverted, v = min(1, sum_i alpha_i): the people are blurred with
the background masked out, so a blurred or pixelated person carries no screen colour from around them.
"""

from __future__ import annotations

import cv2
import numpy as np
from numba import njit, prange

from kernels import _cuda
from kernels._arrays import checked, leading, native, restore, xp_of

DELTA = np.float32(1e-4)
COLUMN_CHUNK = 64
REDUCED_RADIUS = 7  # background_blur on the CPU: radii of at least twice this run at 1/(radius // this) resolution


@njit(parallel=True, cache=True, nogil=True)
def _blur_rows_cpu(frame, alphas, r, of_people):
    """Visible weight v of the row, then running row sums over [x - r, x + r]: (I * v) B, G, R, v, I B, G, R."""
    h, w, _ = frame.shape
    people = alphas.shape[0]
    tmp = np.empty((h, w, 7), np.float32)
    for y in prange(h):
        cover = np.zeros(w, np.float32)
        for i in range(people):
            for x in range(w):
                cover[x] += alphas[i, y, x]
        weight = np.empty(w, np.float32)
        for x in range(w):
            weight[x] = min(1.0, cover[x]) if of_people else 1.0 - min(1.0, cover[x])
        s = np.zeros(7)
        for j in range(min(w - 1, r) + 1):
            v = weight[j]
            for c in range(3):
                s[c] += frame[y, j, c] * v
                s[4 + c] += frame[y, j, c]
            s[3] += v
        for x in range(w):
            for c in range(7):
                tmp[y, x, c] = s[c]
            add = x + r + 1
            drop = x - r
            if add < w:
                v = weight[add]
                for c in range(3):
                    s[c] += frame[y, add, c] * v
                    s[4 + c] += frame[y, add, c]
                s[3] += v
            if drop >= 0:
                v = weight[drop]
                for c in range(3):
                    s[c] -= frame[y, drop, c] * v
                    s[4 + c] -= frame[y, drop, c]
                s[3] -= v
    return tmp


@njit(parallel=True, cache=True, nogil=True)
def _blur_cols_cpu(tmp, out, r, delta, chunk):
    """Running column sums, chunk columns at a time (rows stay contiguous in memory), and the ratio."""
    h, w, _ = tmp.shape
    for k in prange((w + chunk - 1) // chunk):
        x0 = k * chunk
        x1 = min(w, x0 + chunk)
        s = np.zeros((x1 - x0, 7))
        for i in range(min(h - 1, r) + 1):
            for x in range(x0, x1):
                for c in range(7):
                    s[x - x0, c] += tmp[i, x, c]
        for y in range(h):
            rows = min(h - 1, y + r) - max(0, y - r) + 1
            for x in range(x0, x1):
                count = rows * (min(w - 1, x + r) - max(0, x - r) + 1)
                denominator = s[x - x0, 3] + delta * count
                for c in range(3):
                    v = (s[x - x0, c] + delta * s[x - x0, 4 + c]) / denominator
                    out[y, x, c] = np.uint8(min(255.0, max(0.0, v)) + 0.5)
            add = y + r + 1
            drop = y - r
            for x in range(x0, x1):
                for c in range(7):
                    if add < h:
                        s[x - x0, c] += tmp[add, x, c]
                    if drop >= 0:
                        s[x - x0, c] -= tmp[drop, x, c]


def masked_blur(frame, alphas, radius: int, out=None, of_people: bool = False):
    """Background blur with people masked out and renormalised (see the module docstring); with
    of_people, the people's blur with the background masked out.

    frame: (H, W, 3) uint8 BGR; alphas: (N, H, W) float32 person mattes in [0, 1] (N may be 0);
    radius: box radius in pixels (>= 0); out: optional (H, W, 3) uint8. Returns (H, W, 3) uint8.
    """
    if radius < 0:
        raise ValueError(f"blur radius must be >= 0, got {radius}")
    kind, src, gpu = leading(frame, "frame", np.uint8, (None, None, 3))
    h, w, _ = src.shape
    people = checked(native(alphas), "alphas", np.float32, (None, h, w), gpu)
    xp = xp_of(src)
    result = (xp.empty((h, w, 3), np.uint8) if out is None
              else checked(native(out), "out", np.uint8, (h, w, 3), gpu, True))
    if gpu:
        weight = xp.empty((h, w), np.float32)
        tmp = xp.empty((h, w, 7), np.float32)
        _cuda.launch("blur", "visible_weight", h * w, (people, weight, np.int32(people.shape[0]), np.int64(h * w),
                                                          np.int32(of_people)))
        _cuda.launch("blur", "blur_rows", h * w, (src, weight, tmp, np.int32(h), np.int32(w), np.int32(radius)))
        _cuda.launch("blur", "blur_cols", h * w, (tmp, result, np.int32(h), np.int32(w), np.int32(radius), DELTA))
    else:
        tmp = _blur_rows_cpu(src, people, radius, bool(of_people))
        _blur_cols_cpu(tmp, result, radius, float(DELTA), COLUMN_CHUNK)
    return out if out is not None else restore(result, kind)


def masked_blur_at(frame: np.ndarray, alphas: np.ndarray, radius: int, rows: np.ndarray, cols: np.ndarray,
                   of_people: bool = False) -> np.ndarray:
    """masked_blur(frame, alphas, radius, of_people=of_people) at the pixels rows x cols only (sorted
    ascending), as (len(rows), len(cols), 3) uint8: a pixelation reads one pixel a block, so the CPU
    sums each window once instead of running sums over every pixel. The same sums in another order:
    equal to masked_blur there but for a value that lands within float rounding of a half grey level."""
    if radius < 0:
        raise ValueError(f"blur radius must be >= 0, got {radius}")
    h, w, _ = frame.shape
    people = checked(native(alphas), "alphas", np.float32, (None, h, w), False)
    return _blur_at_cpu(np.ascontiguousarray(frame), people, radius, bool(of_people), np.asarray(rows, np.int64),
                        np.asarray(cols, np.int64), float(DELTA))


@njit(parallel=True, cache=True, nogil=True)
def _blur_at_cpu(frame, alphas, r, of_people, rows, cols, delta):
    """Row sums at the wanted columns for every row a wanted row's window holds, then column sums."""
    h, w, _ = frame.shape
    people = alphas.shape[0]
    out = np.empty((rows.shape[0], cols.shape[0], 3), np.uint8)
    if rows.shape[0] == 0 or cols.shape[0] == 0:
        return out
    top, bottom = max(0, rows[0] - r), min(h, rows[-1] + r + 1)
    # per row and wanted column: (I * v) B, G, R, v, I B, G, R, kept in float32 as masked_blur keeps them
    sums = np.empty((bottom - top, cols.shape[0], 7), np.float32)
    for y in prange(top, bottom):
        weight = np.empty(w, np.float32)
        for x in range(w):
            cover = np.float32(0.0)
            for i in range(people):
                cover += alphas[i, y, x]
            weight[x] = min(1.0, cover) if of_people else 1.0 - min(1.0, cover)
        s = np.empty(7)
        for k in range(cols.shape[0]):
            s[:] = 0.0
            for x in range(max(0, cols[k] - r), min(w, cols[k] + r + 1)):
                v = weight[x]
                for c in range(3):
                    s[c] += frame[y, x, c] * v
                    s[4 + c] += frame[y, x, c]
                s[3] += v
            for c in range(7):
                sums[y - top, k, c] = s[c]
    for j in prange(rows.shape[0]):
        y0, y1 = max(0, rows[j] - r), min(h, rows[j] + r + 1)
        for k in range(cols.shape[0]):
            s = np.zeros(7)
            for y in range(y0, y1):
                for c in range(7):
                    s[c] += sums[y - top, k, c]
            count = (y1 - y0) * (min(w, cols[k] + r + 1) - max(0, cols[k] - r))
            denominator = s[3] + delta * count
            for c in range(3):
                value = (s[c] + delta * s[4 + c]) / denominator
                out[j, k, c] = np.uint8(min(255.0, max(0.0, value)) + 0.5)
    return out


def background_blur(frame, alphas, radius: int):
    """masked_blur(frame, alphas, radius) for the background layer, cheaper for large radii on the CPU.

    There a radius of 2 * REDUCED_RADIUS or more runs at 1/f of the resolution, f = radius // REDUCED_RADIUS:
    the people-masked colour I * v and the weight v are summed over f x f blocks (so a block half covered
    by a person carries only its background: halo-free as at full size), blurred with radius radius // f
    and scaled back up bilinearly. The box of block sums is a little smoother than one box of the full
    radius, which a background blurred this much does not show; the time falls several-fold. CUDA runs
    the full-resolution kernel. Returns (H, W, 3) uint8 of the frame's kind.
    """
    kind, src, gpu = leading(frame, "frame", np.uint8, (None, None, 3))
    factor = radius // REDUCED_RADIUS
    h, w, _ = src.shape
    if gpu or factor < 2 or min(h, w) < 2 * factor:
        return masked_blur(frame, alphas, radius)
    people = checked(native(alphas), "alphas", np.float32, (None, h, w), gpu)
    colour, cover = _masked_blocks_cpu(src, people, factor)
    blurred = masked_blur(colour, cover[None], radius // factor)
    return restore(cv2.resize(blurred, (w, h), interpolation=cv2.INTER_LINEAR), kind)


@njit(parallel=True, cache=True, nogil=True)
def _masked_blocks_cpu(frame, alphas, f):
    """Per f x f block (the frame cut to whole blocks): the background colour (sum of I * v over sum of v,
    the plain mean where the block holds no background) and the people's cover 1 - mean(v)."""
    bh, bw = frame.shape[0] // f, frame.shape[1] // f
    people = alphas.shape[0]
    colour = np.empty((bh, bw, 3), np.uint8)
    cover = np.empty((bh, bw), np.float32)
    for by in prange(bh):
        for bx in range(bw):
            masked = np.zeros(3)
            plain = np.zeros(3)
            weight = 0.0
            for y in range(by * f, by * f + f):
                for x in range(bx * f, bx * f + f):
                    covered = 0.0
                    for i in range(people):
                        covered += alphas[i, y, x]
                    v = 1.0 - min(1.0, covered)
                    weight += v
                    for c in range(3):
                        masked[c] += frame[y, x, c] * v
                        plain[c] += frame[y, x, c]
            for c in range(3):
                value = masked[c] / weight if weight > 1e-3 else plain[c] / (f * f)
                colour[by, bx, c] = np.uint8(min(255.0, value) + 0.5)
            cover[by, bx] = np.float32(1.0 - weight / (f * f))
    return colour, cover

"""Pre-process: uint8 BGR frames -> letterboxed, ImageNet-normalised float32 CHW RGB, in one pass.

Sampling (preprocess.cu and the twin below compute the same function): the content rectangle of the
letterbox maps exactly onto the whole frame (per-axis factor f = src / content, which differs from
1 / Letterbox.scale by the rounding of the content size, under half a pixel). Output index o samples
around source centre c = (o + 0.5) * f - 0.5 (half-pixel centres) with a triangle filter of half-width
s = max(f, 1), clipped to the frame and normalised: plain bilinear when upscaling, the antialiased
(area-like) triangle filter of PIL / torch antialias=True when downscaling, so strong downscales do not
alias. Padding is 0 (the normalised value of the mean colour). The inverse mapping: crop the content
rectangle [top:top + content_h, left:left + content_w] and resize it to the frame size.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from kernels import _cuda
from kernels._arrays import checked, kind_of, native, on_gpu, restore, xp_of
from kernels.letterbox import Letterbox

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalisation() -> tuple[np.ndarray, np.ndarray]:
    """(mul, add) per RGB channel such that normalised = value_0_255 * mul + add."""
    std = np.asarray(IMAGENET_STD)
    return 1.0 / (255.0 * std), -np.asarray(IMAGENET_MEAN) / std


@njit(cache=True)
def _axis_taps(src: int, content: int):
    """First tap, tap count and normalised weights of every output index along one axis."""
    f = src / content
    s = max(f, 1.0)
    width = int(2.0 * s) + 2
    first = np.zeros(content, np.int64)
    count = np.zeros(content, np.int64)
    weights = np.zeros((content, width))
    for o in range(content):
        c = (o + 0.5) * f - 0.5
        lo = max(0, int(math.ceil(c - s)))
        hi = min(src - 1, int(math.floor(c + s)))
        total = 0.0
        for j in range(lo, hi + 1):
            w = max(0.0, 1.0 - abs(j - c) / s)
            weights[o, j - lo] = w
            total += w
        weights[o, : hi - lo + 1] /= total
        first[o] = lo
        count[o] = hi - lo + 1
    return first, count, weights


@njit(parallel=True, cache=True, nogil=True)
def _letterbox_cpu(src, dst, top, left, content_h, content_w, mul, add):
    """The same weights as the CUDA kernel, applied separably per output row (vertical taps into a row
    buffer, then horizontal taps): equal up to float rounding, and the vertical pass vectorises."""
    batch, src_h, src_w, _ = src.shape
    out_h = dst.shape[2]
    y_first, y_count, y_weights = _axis_taps(src_h, content_h)
    x_first, x_count, x_weights = _axis_taps(src_w, content_w)
    for r in prange(batch * out_h):
        b = r // out_h
        y = r % out_h
        cy = y - top
        if cy < 0 or cy >= content_h:
            dst[b, :, y, :] = 0.0
            continue
        dst[b, :, y, :left] = 0.0
        dst[b, :, y, left + content_w:] = 0.0
        rows = np.zeros(src_w * 3)
        for ti in range(y_count[cy]):
            wy = y_weights[cy, ti]
            line = src[b, y_first[cy] + ti].reshape(-1)
            for k in range(src_w * 3):
                rows[k] += wy * line[k]
        for cx in range(content_w):
            acc_b = 0.0
            acc_g = 0.0
            acc_r = 0.0
            for tj in range(x_count[cx]):
                j = 3 * (x_first[cx] + tj)
                wx = x_weights[cx, tj]
                acc_b += wx * rows[j]
                acc_g += wx * rows[j + 1]
                acc_r += wx * rows[j + 2]
            dst[b, 0, y, left + cx] = acc_r * mul[0] + add[0]
            dst[b, 1, y, left + cx] = acc_g * mul[1] + add[1]
            dst[b, 2, y, left + cx] = acc_b * mul[2] + add[2]


def preprocess(frames, out_size: tuple[int, int], out=None):
    """Letterbox + normalise uint8 BGR frames for the network.

    frames: (H, W, 3) or a batch (B, H, W, 3) uint8 BGR; out_size: network (h, w); out: optional
    preallocated float32 (3, h, w) or (B, 3, h, w) written in place. Returns (network input of the
    caller's array kind, Letterbox geometry for the inverse mapping).
    """
    kind = kind_of(frames)
    src = native(frames)
    gpu = on_gpu(src)
    single = src.ndim == 3
    shape = (None, None, 3) if single else (None, None, None, 3)
    src = checked(src, "frames", np.uint8, shape, gpu)
    batch = src[None] if single else src
    count, src_h, src_w, _ = batch.shape
    out_h, out_w = out_size
    box = Letterbox.fit(src_h, src_w, out_h, out_w)
    out_shape = (3, out_h, out_w) if single else (count, 3, out_h, out_w)
    if out is None:
        result = xp_of(src).empty(out_shape, np.float32)
    else:
        result = checked(native(out), "out", np.float32, out_shape, gpu, writable=True)
    dst = result.reshape(count, 3, out_h, out_w)
    mul, add = normalisation()
    if gpu:
        _cuda.launch("preprocess", "letterbox_normalize", dst.size // 3, (
            batch, dst, np.int32(count), np.int32(src_h), np.int32(src_w), np.int32(out_h), np.int32(out_w),
            np.int32(box.top), np.int32(box.left), np.int32(box.content_h), np.int32(box.content_w),
            *map(np.float32, mul), *map(np.float32, add)))
    else:
        _letterbox_cpu(batch, dst, box.top, box.left, box.content_h, box.content_w, mul, add)
    return (out if out is not None else restore(result, kind)), box

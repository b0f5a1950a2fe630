"""Temporal fusion of per-track mattes (DESIGN section 4): cell change map, guarded causal rule and
the one-frame-delay exact rule. temporal.cu holds the CUDA kernels; the twins below compute the same.

The API works on explicit state arrays so that a stateful wrapper (livematte/temporal.py) stays thin:
per stream, prev_frame (H, W, 3) uint8 (the previous BGR frame); per track (N tracks), matte (N, H, W)
float32 (the previous fused matte, which each call overwrites with the new fused one), age and pend
(N, H, W) uint8. A frame's change map is `cells` (ceil(H/s), ceil(W/s)) uint8 with `count` (1,) int32
changed cells.

The change test is colour-aware: a pixel changed when max over B, G, R of |I_t - I_prev| > tau_y. This
deliberately refines DESIGN section 4's luma test |Y_t - Y_prev| > tau_y: luma alone is blind to
isoluminant motion (a figure whose clothes have the background's luma walks and the map says "static",
so the fusion holds stale mattes). The per-channel maximum is never below the luma change (luma is a
convex mix of the channels), so everything the luma test flagged is still flagged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numba import njit, prange

from kernels import _cuda
from kernels._arrays import checked, kind_of, native, on_gpu, restore, xp_of
from kernels._extent import bounds_from_rows, nonzero_extents, union, whole

SATURATE_LOW = np.float32(1.0 / 255.0)
SATURATE_HIGH = np.float32(254.0 / 255.0)


@dataclass(frozen=True)
class FusionParams:
    """tau_y: largest per-channel change max(|dB|, |dG|, |dR|) (grey levels) still called static (a pixel
    changed when it is exceeded; a colour-aware refinement of DESIGN section 4's luma test); cell: side s
    of the change cells, 1 (per pixel) by default rather than DESIGN's 8: with 8 x 8 cells and their
    3 x 3 dilation every pixel within 24 px of a moving edge counted as changed, so the noise along the
    edges of people who move passed straight through (bench/quality.py measures it); rho: fraction of
    changed cells above which the frame is a scene cut; eps: largest |prediction - previous| still
    called agreement; max_age: L, frames a value may be carried; blend: k,
    how far a held value moves towards the prediction each frame (0 = hold exactly)."""

    tau_y: float = 12.0
    cell: int = 1
    rho: float = 0.5
    eps: float = 8.0 / 255.0
    max_age: int = 30
    blend: float = 0.0

    def __post_init__(self):
        if self.cell < 1:
            raise ValueError(f"cell must be at least 1 pixel, got {self.cell}")
        if not 0 <= self.max_age <= 255:
            raise ValueError(f"max_age must be in 0..255 (age is stored as uint8), got {self.max_age}")
        if not 0.0 <= self.blend <= 1.0:
            raise ValueError(f"blend must be in [0, 1], got {self.blend}")
        if self.tau_y < 0 or self.eps < 0 or self.rho < 0:
            raise ValueError(f"tau_y, eps and rho must be non-negative, got {self.tau_y}, {self.eps}, {self.rho}")

    def cells_shape(self, h: int, w: int) -> tuple[int, int]:
        return math.ceil(h / self.cell), math.ceil(w / self.cell)

    def cut_cells(self, h: int, w: int) -> np.float32:
        """Changed-cell count above which mean(D) > rho."""
        cells_h, cells_w = self.cells_shape(h, w)
        return np.float32(self.rho * cells_h * cells_w)


class Fused(NamedTuple):
    """matte: the fused mattes (N, H, W), which is the matte state array itself (copy it to keep a frame);
    scene_cut: a bool scalar of the caller's kind (numpy.bool_, 0-d CuPy array or 0-d torch tensor);
    on the GPU it stays on the device, so bool(scene_cut) is where the caller chooses to synchronise."""

    matte: Any
    scene_cut: Any


@njit(parallel=True, cache=True, nogil=True)
def _frame_changes_cpu(frame, prev_frame, cells, s, tau):
    h, w, _ = prev_frame.shape
    for cy in prange(cells.shape[0]):
        cells[cy, :] = 0
        for y in range(cy * s, min(h, cy * s + s)):
            for x in range(w):
                moved = 0
                for c in range(3):
                    value = frame[y, x, c]
                    moved = max(moved, abs(np.int32(value) - np.int32(prev_frame[y, x, c])))
                    prev_frame[y, x, c] = value
                if moved > tau:
                    cells[cy, x // s] = 1


@njit(cache=True)
def _still_row(cells, y, s, w, out):
    """out[x] = 1 where the 3x3 max-dilation of the cell map is 0 at the cell of pixel (y, x).

    Computed per pixel row (vertical max of three cell rows, then a horizontal 3-max), so the
    dilation needs no pass of its own and parallelises with the rows."""
    cells_h, cells_w = cells.shape
    cy = y // s
    column = np.zeros(cells_w, np.uint8)
    for i in range(max(0, cy - 1), min(cells_h, cy + 2)):
        for cx in range(cells_w):
            column[cx] |= cells[i, cx]
    for cx in range(cells_w):
        near = column[cx] | (column[cx - 1] if cx > 0 else 0) | (column[cx + 1] if cx + 1 < cells_w else 0)
        value = 1 - near
        for x in range(cx * s, min(w, cx * s + s)):
            out[x] = value


@njit(cache=True)
def _clamp(out, low, high):
    return np.float32(0.0) if out <= low else (np.float32(1.0) if out >= high else out)


@njit(cache=True)
def _window_row(windows, i, y, first, last):
    """The x range of track i's window on row y (empty when outside it); clears that row's state bounds."""
    first[i, y], last[i, y] = 1 << 62, 0
    y0, y1, x0, x1 = windows[i]
    return (x0, x1) if y0 <= y < y1 else (0, 0)


@njit(parallel=True, cache=True, nogil=True)
def _fuse_causal_cpu(alpha, matte, age, pend, new_track, cells, s, reset, eps, max_age, blend, low, high, windows,
                     first, last):
    """Inside each track's window; first/last receive the x bounds of every row's non-zero state."""
    tracks, h, w = alpha.shape
    for y in prange(h):
        still = np.empty(w, np.uint8)
        _still_row(cells, y, s, w, still)
        for i in range(tracks):
            live = not (reset or new_track[i] != 0)
            a_row, m_row, age_row, pend_row = alpha[i, y], matte[i, y], age[i, y], pend[i, y]
            x0, x1 = _window_row(windows, i, y, first, last)
            for x in range(x0, x1):
                a = a_row[x]
                q = m_row[x]
                held = age_row[x]
                static = live and still[x] != 0 and not (a == 0 and q == 0)
                agree = abs(a - q) <= eps
                hold = static and agree and held < max_age
                wait = static and not agree and pend_row[x] == 0
                out = _clamp(q + blend * (a - q) if hold else (q if wait else a), low, high)
                m_row[x] = out
                age_row[x] = held + 1 if hold else (held if wait else 0)
                pend_row[x] = 1 if wait else 0
                if out != 0 or hold or wait:
                    first[i, y] = min(first[i, y], x)
                    last[i, y] = x + 1


@njit(parallel=True, cache=True, nogil=True)
def _fuse_exact_cpu(alpha, alpha_next, matte, new_track, has_next, cells_fwd, cells_bwd, s, reset, eps, low, high,
                    windows, first, last):
    tracks, h, w = alpha.shape
    for y in prange(h):
        still = np.empty(w, np.uint8)
        still_bwd = np.empty(w, np.uint8)
        _still_row(cells_fwd, y, s, w, still)
        _still_row(cells_bwd, y, s, w, still_bwd)
        for i in range(tracks):
            live = not (reset or new_track[i] != 0 or has_next[i] == 0)
            a_row, n_row, m_row = alpha[i, y], alpha_next[i, y], matte[i, y]
            x0, x1 = _window_row(windows, i, y, first, last)
            for x in range(x0, x1):
                q = m_row[x]
                keep = live and still[x] != 0 and still_bwd[x] != 0 and abs(n_row[x] - q) <= eps
                out = _clamp(q if keep else a_row[x], low, high)
                m_row[x] = out
                if out != 0:
                    first[i, y] = min(first[i, y], x)
                    last[i, y] = x + 1


def _windows(alpha, extents) -> np.ndarray:
    """Where a CPU twin must work: the prediction's extent and the state's (the whole frame when the
    state's extent is not tracked). Outside, prediction and state are both zero and stay zero."""
    tracks, h, w = alpha.shape
    return whole(tracks, h, w) if extents is None else union(nonzero_extents(alpha), extents)


def frame_changes(frame, prev_frame, params: FusionParams, cells=None, count=None):
    """Cell change map of frame against prev_frame, which is overwritten with this frame (in place).

    A pixel changed when max over B, G, R of |frame - prev_frame| > tau_y (integers, the same on CPU
    and GPU); a cell changed when any of its pixels did. Per channel rather than on luma (a deliberate
    refinement of DESIGN section 4) because luma alone misses isoluminant motion, e.g. grey clothes in
    front of a wall of the same luma.

    frame: (H, W, 3) uint8 BGR; prev_frame: (H, W, 3) uint8 state, the previous frame (its content is
    irrelevant on a frame fused with reset=True). Returns (cells, count) of the caller's kind;
    cells/count may be given preallocated ((ceil(H/s), ceil(W/s)) uint8 and (1,) int32).
    """
    kind = kind_of(frame)
    src = native(frame)
    gpu = on_gpu(src)
    src = checked(src, "frame", np.uint8, (None, None, 3), gpu)
    h, w, _ = src.shape
    prev = checked(native(prev_frame), "prev_frame", np.uint8, (h, w, 3), gpu, writable=True)
    shape = params.cells_shape(h, w)
    xp = xp_of(src)
    cells_a = xp.empty(shape, np.uint8) if cells is None else checked(native(cells), "cells", np.uint8, shape, gpu, True)
    count_a = xp.empty(1, np.int32) if count is None else checked(native(count), "count", np.int32, (1,), gpu, True)
    if gpu:
        count_a.fill(0)
        _cuda.launch("temporal", "frame_changes", shape[0] * shape[1], (
            src, prev, cells_a, count_a, np.int32(h), np.int32(w), np.int32(params.cell),
            np.int32(shape[0]), np.int32(shape[1]), np.float32(params.tau_y)))
    else:
        _frame_changes_cpu(src, prev, cells_a, params.cell, np.float32(params.tau_y))
        count_a[0] = np.count_nonzero(cells_a)
    return (cells if cells is not None else restore(cells_a, kind),
            count if count is not None else restore(count_a, kind))


def _scene_cut(count, cut_cells, reset, xp):
    return xp.logical_or(count[0] > cut_cells, bool(reset))


def fuse_causal(alpha, matte, age, pend, new_track, cells, count, params: FusionParams, reset: bool = False,
                extents: np.ndarray | None = None) -> Fused:
    """Guarded causal rule for one frame (DESIGN section 4), updating matte, age and pend in place.

    alpha: (N, H, W) float32 predictions in track order; new_track: (N,) uint8, 1 for a track with no
    valid state; cells/count: this frame's frame_changes; reset: force a reset of every track (first
    frame of a stream). A scene cut (changed cells > rho) resets every track as well. pend is cleared
    whenever the prediction agrees, since it marks a disagreement in the previous frame. Where both the
    prediction and the previous matte are 0 nothing is held: age and pend become 0 (so empty space has
    no state, and the CPU twin can skip it).

    extents: (N, 4) int64 host array kept with the state, [y0, y1, x0, x1) of where matte/age/pend are
    non-zero (zeros for new tracks); the CPU twin then works only inside it and the prediction's extent,
    and updates it. None: the whole frame (and on the GPU, where it is ignored).
    """
    kind = kind_of(alpha)
    a = native(alpha)
    gpu = on_gpu(a)
    a = checked(a, "alpha", np.float32, (None, None, None), gpu)
    tracks, h, w = a.shape
    m = checked(native(matte), "matte", np.float32, a.shape, gpu, writable=True)
    ag = checked(native(age), "age", np.uint8, a.shape, gpu, writable=True)
    pd = checked(native(pend), "pend", np.uint8, a.shape, gpu, writable=True)
    new = checked(native(new_track), "new_track", np.uint8, (tracks,), gpu)
    cells_a = checked(native(cells), "cells", np.uint8, params.cells_shape(h, w), gpu)
    count_a = checked(native(count), "count", np.int32, (1,), gpu)
    cut = params.cut_cells(h, w)
    eps = np.float32(params.eps)
    if gpu:
        _cuda.launch("temporal", "fuse_causal", a.size, (
            a, m, ag, pd, new, cells_a, count_a, np.int32(tracks), np.int32(h), np.int32(w), np.int32(params.cell),
            np.int32(cells_a.shape[0]), np.int32(cells_a.shape[1]), cut, np.int32(reset), eps,
            np.int32(params.max_age), np.float32(params.blend), SATURATE_LOW, SATURATE_HIGH))
    else:
        first, last = np.empty((2, tracks, h), np.int64)
        _fuse_causal_cpu(a, m, ag, pd, new, cells_a, params.cell, bool(reset or count_a[0] > cut), eps,
                         params.max_age, np.float32(params.blend), SATURATE_LOW, SATURATE_HIGH, _windows(a, extents),
                         first, last)
        if extents is not None:
            extents[:] = bounds_from_rows(first, last)
    flag = _scene_cut(count_a, cut, reset, xp_of(a))
    return Fused(matte, restore(flag, kind))


def fuse_exact(alpha, alpha_next, matte, new_track, has_next, cells_fwd, count_fwd, cells_bwd, count_bwd,
               params: FusionParams, reset: bool = False, extents: np.ndarray | None = None) -> Fused:
    """MaGGIe's two-sided rule for frame t, called when frame t + 1 arrives (one frame of latency).

    alpha, alpha_next: (N, H, W) float32 predictions at t and t + 1 in track order; matte: fused t - 1,
    overwritten with fused t; new_track: (N,) uint8, 1 where the track has no fused t - 1; has_next:
    (N,) uint8, 0 where the track is absent at t + 1 (then the prediction at t is taken);
    cells_fwd/count_fwd: frame_changes t - 1 -> t; cells_bwd/count_bwd: t -> t + 1. A scene cut on
    either side takes the prediction. No age limit is needed: a kept value is re-checked against the
    next prediction every frame. scene_cut reports the cut into frame t (or reset). extents: as in
    fuse_causal, the non-zero extent of matte.
    """
    kind = kind_of(alpha)
    a = native(alpha)
    gpu = on_gpu(a)
    a = checked(a, "alpha", np.float32, (None, None, None), gpu)
    tracks, h, w = a.shape
    nxt = checked(native(alpha_next), "alpha_next", np.float32, a.shape, gpu)
    m = checked(native(matte), "matte", np.float32, a.shape, gpu, writable=True)
    new = checked(native(new_track), "new_track", np.uint8, (tracks,), gpu)
    has = checked(native(has_next), "has_next", np.uint8, (tracks,), gpu)
    shape = params.cells_shape(h, w)
    fwd = checked(native(cells_fwd), "cells_fwd", np.uint8, shape, gpu)
    bwd = checked(native(cells_bwd), "cells_bwd", np.uint8, shape, gpu)
    n_fwd = checked(native(count_fwd), "count_fwd", np.int32, (1,), gpu)
    n_bwd = checked(native(count_bwd), "count_bwd", np.int32, (1,), gpu)
    cut = params.cut_cells(h, w)
    eps = np.float32(params.eps)
    if gpu:
        _cuda.launch("temporal", "fuse_exact", a.size, (
            a, nxt, m, new, has, fwd, n_fwd, bwd, n_bwd, np.int32(tracks), np.int32(h), np.int32(w),
            np.int32(params.cell), np.int32(shape[0]), np.int32(shape[1]), cut, np.int32(reset), eps,
            SATURATE_LOW, SATURATE_HIGH))
    else:
        first, last = np.empty((2, tracks, h), np.int64)
        _fuse_exact_cpu(a, nxt, m, new, has, fwd, bwd, params.cell, bool(reset or n_fwd[0] > cut or n_bwd[0] > cut),
                        eps, SATURATE_LOW, SATURATE_HIGH, _windows(a, extents), first, last)
        if extents is not None:
            extents[:] = bounds_from_rows(first, last)
    flag = _scene_cut(n_fwd, cut, reset, xp_of(a))
    return Fused(matte, restore(flag, kind))

"""Temporal fusion of per-track mattes: cell change map, guarded causal rule and
the one-frame-delay exact rule. temporal.cu holds the CUDA kernels; the twins below compute the same.

The API works on explicit state arrays so that a stateful wrapper (livematte/temporal.py) stays thin:
per stream, prev_frame (H, W, 3) uint8 (the previous BGR frame); per track (N tracks), matte (N, H, W)
float32 (the previous fused matte, which each call overwrites with the new fused one), age and pend
(N, H, W) uint8. A frame's change map is `cells` (ceil(H/s), ceil(W/s)) uint8 with `count` (1,) int32
changed cells.

The change test is colour-aware: a pixel changed when max over B, G, R of |I_t - I_prev| > tau_y. This
deliberately refines the original design's luma test |Y_t - Y_prev| > tau_y: luma alone is blind to
isoluminant motion (a figure whose clothes have the background's luma walks and the map says "static",
so the fusion holds stale mattes). The per-channel maximum is never below the luma change (luma is a
convex mix of the channels), so everything the luma test flagged is still flagged.

Motion compensation (track_motion, then fuse_causal with its Motion): without it every pixel that a
walking person's edge crosses counts as changed and takes the prediction, and a person the network
misses for a frame loses the moving part of their matte. Each track's integer translation, from the
row and column profiles of its previous fused matte and its prediction, moves its previous state and
the previous frame of its change test, so a person who translates is static after compensation; a pixel
whose picture did not change in place keeps its own state (a person moves only in part). A
track with an empty prediction (the tracker holds a person the network missed) keeps its last shift
and skips the change test: its matte is held for one frame (the one-frame wait), moved with the
person. With every shift (0, 0) and no such track the rule is the uncompensated one exactly.

Evidence (fuse_causal's last argument): an engine that reads people in turn (the learned CPU engine reads
one person a frame) or a pipeline that skips frames hands on earlier predictions, which are no news. A
carried prediction never changes the fused matte by itself: it neither confirms a waiting change nor
clears the wait, so a change is taken when two looks go the same way, not when one look is repeated. Where
nothing waits and a carried prediction leaves the held value (the optical flow moved a matte that the
engine's last look left still), it starts the wait, and a fresh prediction going the same way is taken at
once: the flow and the engine are two looks. Where the picture changed while a track was carried, its
next fresh prediction is taken at once, as no earlier look saw that picture. On the dancers' clip (three
people, one read a frame) fused/raw flicker went from 0.85 to 0.76 with the first rule, and the fused
matte beyond the engine's (by 3 px) from 0.49 % to 0.38 % of its mass; the flow's look then took it to
0.21 % (missing inside the engine's 0.18 -> 0.14 %) for 0.775 -> 0.797 flicker.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import cv2
import numpy as np
from numba import njit, prange

from kernels import _cuda
from kernels._arrays import checked, leading, native, restore, xp_of
from kernels._extent import bounds_from_rows, nonzero_extents, shifted, union, whole

# pend: which way the prediction left the held value in the previous frame (it waited there); a change
# is taken when it goes the same way a second frame, so a wobble that turns back is never taken
AGREES, ROSE, FELL = 0, 1, 2
CUDA_DEFINES = _cuda.defines({}, AGREES=AGREES, ROSE=ROSE, FELL=FELL)
SATURATE_LOW = np.float32(1.0 / 255.0)
SATURATE_HIGH = np.float32(254.0 / 255.0)


@dataclass(frozen=True)
class FusionParams:
    """tau_y: largest per-channel change max(|dB|, |dG|, |dR|) (grey levels) still called static (a pixel
    changed when it is exceeded; a colour-aware refinement of the original design's luma test); cell: side s
    of the change cells, 1 (per pixel) by default rather than the original design's 8: with 8 x 8 cells and their
    3 x 3 dilation every pixel within 24 px of a moving edge counted as changed, so the noise along the
    edges of people who move passed straight through (bench/quality.py measures it); rho: fraction of
    changed cells above which the frame is a scene cut; eps: largest |prediction - previous| still
    called agreement; max_age: L, frames a value may be carried; blend: k,
    how far a held value moves towards the prediction each frame (0 = hold exactly; 0.15 rather than
    the original design's 0: bench/quality.py's ground-truth error falls with it, walking MAD 0.49 ->
    0.35e-3). A disagreement waits a frame and is taken only when the next prediction leaves the held
    value the same way (the design took any second disagreement): a learned engine's mask edges wobble
    up and down where the picture is still, and that wobble is no longer passed through. Averaging
    every disagreement in (eps 0.7) flickered less still on the dancers' clip (fused/raw 0.45 against
    0.71) but left trailing outlines where white clothes moved over a white wall (2.7x the matte mass
    outside the raw mattes; seen in the frames); motion: whether the
    wrapper (livematte.temporal) compensates each track's translation, up to max_shift pixels per frame
    and axis, in the causal rule (track_motion): walking people are then held like still ones
    (bench/quality.py: walking dtSSD -33 % against fusion off, -19 % without motion)."""

    tau_y: float = 12.0
    cell: int = 1
    rho: float = 0.5
    eps: float = 8.0 / 255.0
    max_age: int = 30
    blend: float = 0.15
    motion: bool = True
    max_shift: int = 16

    def __post_init__(self):
        if self.cell < 1:
            raise ValueError(f"cell must be at least 1 pixel, got {self.cell}")
        if not 0 <= self.max_age <= 255:
            raise ValueError(f"max_age must be in 0..255 (age is stored as uint8), got {self.max_age}")
        if not 0.0 <= self.blend <= 1.0:
            raise ValueError(f"blend must be in [0, 1], got {self.blend}")
        if self.max_shift < 1:
            raise ValueError(f"max_shift must be at least 1 pixel, got {self.max_shift}")
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


class Motion(NamedTuple):
    """One frame's motion compensation (track_motion) for fuse_causal. shifts: (N, 2) int32, each
    track's translation (dy, dx) from its previous fused matte to its prediction; blind: (N,) uint8, 1
    for a track with an empty prediction and a matte to hold; cells: (N, ceil(H/s), ceil(W/s)) uint8,
    each track's change map against the previous frame moved by its shift; windows: (N, 4) int64 host
    extents where the CPU twins work, computed once for both passes (None on the GPU)."""

    shifts: Any
    blind: Any
    cells: Any
    windows: np.ndarray | None


class Evidence(NamedTuple):
    """Which predictions of a frame are news, for fuse_causal. fresh: (N,) uint8, 1 for a track whose
    prediction the engine made from this frame, 0 for one it carried from an earlier frame (a frame the
    pipeline skipped, or a person the engine reads in turn with others); dirty: (N, ceil(H/s), ceil(W/s))
    uint8 state, 1 at the cells that changed on a track's carried frames since its last fresh one
    (fuse_causal updates it; zeros for a new track)."""

    fresh: Any
    dirty: Any


class _State(NamedTuple):
    """matte, age and pend, (N, H, W) each, as the numba twins take the fusion state: by name, since age
    and pend share a type and a shape and would be swapped silently as positional parameters."""

    matte: Any
    age: Any
    pend: Any


class _Rule(NamedTuple):
    """The scalars of a fusion rule as the numba twins take them, named where _rule builds them: numba
    accepts a keyword-only `*` in a jitted signature but does not enforce it. cell: s; reset: every track
    takes its prediction (a reset or a scene cut); eps, max_age, blend: FusionParams's (the exact rule
    reads cell, reset and eps); per_track: the causal twin's cell maps are one per track (else the first
    serves every track); evidence: the causal twin reads an Evidence (else every prediction is fresh)."""

    cell: int
    reset: bool
    eps: np.float32
    max_age: int
    blend: np.float32
    per_track: bool
    evidence: bool


def _rule(params: FusionParams, reset: bool, per_track: bool = False, evidence: bool = False) -> _Rule:
    return _Rule(cell=params.cell, reset=bool(reset), eps=np.float32(params.eps), max_age=params.max_age,
                 blend=np.float32(params.blend), per_track=per_track, evidence=evidence)


@njit(cache=True)
def _largest_change(frame, prev_frame, y, x, sy, sx):
    """max over B, G, R of |frame[y, x] - prev_frame[sy, sx]| in grey levels."""
    moved = 0
    for c in range(3):
        moved = max(moved, abs(np.int32(frame[y, x, c]) - np.int32(prev_frame[sy, sx, c])))
    return moved


def _frame_changes_cpu(frame, prev_frame, cells, s, tau):
    """OpenCV's vector code per pixel (7x faster than a numba loop over interleaved B, G, R), then
    whether any pixel of each s x s cell changed."""
    changed = functools.reduce(cv2.max, cv2.split(cv2.absdiff(frame, prev_frame))) > tau
    np.copyto(prev_frame, frame)
    if s == 1:
        cells[...] = changed
        return
    h, w = changed.shape
    rows, cols = cells.shape
    padded = np.zeros((rows * s, cols * s), bool)
    padded[:h, :w] = changed
    cells[...] = padded.reshape(rows, s, cols, s).any(axis=(1, 3))


@njit(parallel=True, cache=True, nogil=True)
def _track_changes_cpu(frame, prev_frame, shifts, windows, cells, s, tau):
    """Per track, the cells of its window and their neighbours (the dilation reads them); 0 elsewhere.
    A pixel whose source (y - dy, x - dx) lies outside the frame counts as changed: nothing is known."""
    tracks, cells_h, cells_w = cells.shape
    h, w, _ = frame.shape
    for k in prange(tracks * cells_h):
        i, cy = k // cells_h, k % cells_h
        cells[i, cy, :] = 0
        y0, y1, x0, x1 = windows[i]
        if y0 >= y1 or cy < y0 // s - 1 or cy > (y1 - 1) // s + 1:
            continue
        left, right = max(0, x0 // s - 1) * s, min(w, ((x1 - 1) // s + 2) * s)
        for y in range(cy * s, min(h, cy * s + s)):
            sy = y - shifts[i, 0]
            for x in range(left, right):
                sx = x - shifts[i, 1]
                if not (0 <= sy < h and 0 <= sx < w) or _largest_change(frame, prev_frame, y, x, sy, sx) > tau:
                    cells[i, cy, x // s] = 1


@njit(cache=True)
def _still_row(cells, y, s, x0, x1, out):
    """out[x] for x0 <= x < x1: 1 where the 3x3 max-dilation of the cell map is 0 at the cell of (y, x).

    Computed per pixel row (vertical max of three cell rows, then a horizontal 3-max), so the
    dilation needs no pass of its own and parallelises with the rows."""
    cells_h, cells_w = cells.shape
    cy = y // s
    c0, c1 = x0 // s, (x1 - 1) // s + 1
    lo, hi = max(0, c0 - 1), min(cells_w, c1 + 1)
    column = np.zeros(hi - lo, np.uint8)  # column[k]: cell column lo + k
    for i in range(max(0, cy - 1), min(cells_h, cy + 2)):
        for cx in range(lo, hi):
            column[cx - lo] |= cells[i, cx]
    for cx in range(c0, c1):
        k = cx - lo
        near = column[k] | (column[k - 1] if cx > lo else 0) | (column[k + 1] if cx + 1 < hi else 0)
        value = 1 - near
        for x in range(max(x0, cx * s), min(x1, cx * s + s)):
            out[x] = value


@njit(cache=True)
def _clamp(out):
    """Snap to 0 or 1 within SATURATE_LOW / SATURATE_HIGH of them."""
    return np.float32(0.0) if out <= SATURATE_LOW else (np.float32(1.0) if out >= SATURATE_HIGH else out)


@njit(cache=True, inline="always")
def _previous(matte_row, age_row, pend_row, row_inside, x, width):
    """(matte, age, pend) of one row of a previous state at x; zeros outside the state. Inlined: as a
    call it made the 720p fusion of three people 6 ms slower."""
    if row_inside and 0 <= x < width:
        return matte_row[x], age_row[x], pend_row[x]
    return np.float32(0.0), np.uint8(0), np.uint8(0)


@njit(cache=True)
def _window_row(windows, i, y, first, last):
    """The x range of track i's window on row y (empty when outside it); clears that row's state bounds."""
    first[i, y], last[i, y] = 1 << 62, 0
    y0, y1, x0, x1 = windows[i]
    return (x0, x1) if y0 <= y < y1 else (0, 0)


@njit(parallel=True, cache=True, nogil=True)
def _fuse_causal_cpu(alpha, new_track, state, previous, origins, frame_cells, motion, rule, evidence, first, last):
    """Inside each track's window (motion.windows); track i reads its previous state at (y - dy_i, x - dx_i)
    from previous, a window of it whose top-left lies at origins[i] (0 outside; state itself when every
    shift is 0), and its cell map motion.cells[i] (motion.cells[0] for all unless rule.per_track); where
    frame_cells, the unshifted map, calls a pixel still, a compensated track reads its own pixel's state
    and holds it: a dancer's arm sets the whole track's shift, but their still torso did not move (on the
    dancers' clip fused/raw flicker went from 0.97 to 0.70); with rule.evidence, a fresh track is not
    still where evidence.dirty says the picture changed since its last read, and a carried track's
    disagreement is held, starting a wait where none is pending; first/last receive the x bounds of every
    row's non-zero state."""
    matte, age, pend = state.matte, state.age, state.pend
    prev_matte, prev_age, prev_pend = previous.matte, previous.age, previous.pend
    shifts, blind, cells, windows = motion.shifts, motion.blind, motion.cells, motion.windows
    s, reset, eps, per_track = rule.cell, rule.reset, rule.eps, rule.per_track
    max_age, blend = rule.max_age, rule.blend
    tracks, h, w = alpha.shape
    prev_h, prev_w = prev_matte.shape[1], prev_matte.shape[2]
    for y in prange(h):
        still = np.empty(w, np.uint8)
        unmoved = np.empty(w, np.uint8)
        undisturbed = np.empty(w, np.uint8)  # for a fresh track: no change on its carried frames near there
        if not per_track:
            _still_row(cells[0], y, s, 0, w, still)
        for i in range(tracks):
            live = not (reset or new_track[i] != 0)
            read = not rule.evidence or evidence.fresh[i] != 0
            news = rule.evidence and read and blind[i] == 0
            a_row, m_row, age_row, pend_row = alpha[i, y], matte[i, y], age[i, y], pend[i, y]
            x0, x1 = _window_row(windows, i, y, first, last)
            in_place = per_track and blind[i] == 0 and (shifts[i, 0] != 0 or shifts[i, 1] != 0)  # else still says it
            if per_track and x0 < x1:
                _still_row(cells[i], y, s, x0, x1, still)
                if in_place:
                    _still_row(frame_cells, y, s, x0, x1, unmoved)
            if news and x0 < x1:
                _still_row(evidence.dirty[i], y, s, x0, x1, undisturbed)
            uy, sy = y - origins[i, 0], y - origins[i, 0] - shifts[i, 0]
            u_inside, s_inside = 0 <= uy < prev_h, 0 <= sy < prev_h
            uy, sy = uy if u_inside else 0, sy if s_inside else 0
            q_row, held_row, waited_row = prev_matte[i, sy], prev_age[i, sy], prev_pend[i, sy]
            uq_row, uheld_row, uwaited_row = prev_matte[i, uy], prev_age[i, uy], prev_pend[i, uy]
            ux0, sx0 = origins[i, 1], origins[i, 1] + shifts[i, 1]
            for x in range(x0, x1):
                a = a_row[x]
                here = in_place and unmoved[x] != 0  # unchanged in place: read without the shift
                if here:
                    q, held, waited = _previous(uq_row, uheld_row, uwaited_row, u_inside, x - ux0, prev_w)
                else:
                    q, held, waited = _previous(q_row, held_row, waited_row, s_inside, x - sx0, prev_w)
                static = (live and (blind[i] != 0 or here or still[x] != 0) and not (a == 0 and q == 0)
                          and not (news and undisturbed[x] == 0))
                moved = AGREES if abs(a - q) <= eps else (ROSE if a > q else FELL)
                hold = static and moved == AGREES and held < max_age
                carried = static and not read and moved != AGREES and held < max_age  # held; may start a wait
                wait = static and read and moved != AGREES and waited != moved  # taken once it persists a frame
                out = _clamp(q + blend * (a - q) if hold else (q if wait or carried else a))
                m_row[x] = out
                age_row[x] = held + 1 if hold or carried else (held if wait else 0)
                pend_row[x] = moved if wait else ((waited if waited != AGREES else moved) if carried else 0)
                if out != 0 or hold or wait or carried:
                    first[i, y] = min(first[i, y], x)
                    last[i, y] = x + 1


@njit(parallel=True, cache=True, nogil=True)
def _fuse_exact_cpu(alpha, alpha_next, matte, new_track, has_next, cells_fwd, cells_bwd, rule, windows, first, last):
    s, reset, eps, blend = rule.cell, rule.reset, rule.eps, rule.blend
    tracks, h, w = alpha.shape
    for y in prange(h):
        still = np.empty(w, np.uint8)
        still_bwd = np.empty(w, np.uint8)
        _still_row(cells_fwd, y, s, 0, w, still)
        _still_row(cells_bwd, y, s, 0, w, still_bwd)
        for i in range(tracks):
            live = not (reset or new_track[i] != 0 or has_next[i] == 0)
            a_row, n_row, m_row = alpha[i, y], alpha_next[i, y], matte[i, y]
            x0, x1 = _window_row(windows, i, y, first, last)
            for x in range(x0, x1):
                q = m_row[x]
                keep = live and still[x] != 0 and still_bwd[x] != 0 and abs(n_row[x] - q) <= eps
                a = a_row[x]
                out = _clamp((q + blend * (a - q) if abs(a - q) <= eps else q) if keep else a)
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
    refinement of a luma test) because luma alone misses isoluminant motion, e.g. grey clothes in
    front of a wall of the same luma.

    frame: (H, W, 3) uint8 BGR; prev_frame: (H, W, 3) uint8 state, the previous frame (its content is
    irrelevant on a frame fused with reset=True). Returns (cells, count) of the caller's kind;
    cells/count may be given preallocated ((ceil(H/s), ceil(W/s)) uint8 and (1,) int32).
    """
    kind, src, gpu = leading(frame, "frame", np.uint8, (None, None, 3))
    h, w, _ = src.shape
    prev = checked(native(prev_frame), "prev_frame", np.uint8, (h, w, 3), gpu, writable=True)
    shape = params.cells_shape(h, w)
    xp = xp_of(src)
    cells_a = (xp.empty(shape, np.uint8) if cells is None
               else checked(native(cells), "cells", np.uint8, shape, gpu, True))
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


def _profiles(planes, extents):
    """Row and column sums, (N, H) and (N, W), of each plane: inside each extent on the CPU (0 outside
    it); over whole planes without extents (the GPU, where nothing goes back to the host)."""
    if extents is None:
        return planes.sum(axis=2), planes.sum(axis=1)
    tracks, h, w = planes.shape
    rows, cols = np.zeros((tracks, h), np.float32), np.zeros((tracks, w), np.float32)
    for i, (y0, y1, x0, x1) in enumerate(extents):
        box = planes[i, y0:y1, x0:x1]
        rows[i, y0:y1], cols[i, x0:x1] = box.sum(axis=1), box.sum(axis=0)
    return rows, cols


def _best_shift(now, before, max_shift: int):
    """Per track, the d in [-max_shift, max_shift] minimising the sum over x of |now(x) - before(x - d)|
    (before is 0 outside); among equal costs the smallest |d|, so that no evidence means no shift.

    Profiles rather than the whole plane: O((H + W) * max_shift) per track, and a pop of the matte
    moves a profile only locally, where it would drag a centroid."""
    xp = xp_of(now)
    tracks, length = now.shape
    padded = xp.zeros((tracks, length + 2 * max_shift), np.float32)
    padded[:, max_shift:max_shift + length] = before
    order = xp.arange(2 * max_shift + 1)
    candidates = xp.where(order % 2 == 1, (order + 1) // 2, -((order + 1) // 2))  # 0, 1, -1, 2, -2, ...
    source = (max_shift - candidates)[:, None] + xp.arange(length)[None, :]
    costs = xp.abs(padded[:, source] - now[:, None, :]).sum(axis=2)
    return candidates[costs.argmin(axis=1)]


def track_motion(alpha, matte, last_shifts, frame, prev_frame, params: FusionParams,
                 extents: np.ndarray | None = None, found: np.ndarray | None = None) -> Motion:
    """Each track's motion for this frame's fuse_causal; call it before frame_changes, which overwrites
    prev_frame.

    alpha: (N, H, W) float32 predictions; matte: the previous fused mattes (fuse_causal's state);
    last_shifts: (N, 2) int32, each track's previous shift (0 for new tracks), kept by a track that
    gives no evidence this frame (an empty prediction or no previous matte): a person the network
    misses for a frame goes on moving. frame, prev_frame: this and the previous (H, W, 3) uint8 frame.
    extents: as in fuse_causal (pass the same); found: (N, 4) extents bounding alpha's non-zero values
    where the caller knows them (searched for otherwise). On the GPU nothing is read back to the host.
    """
    kind, a, gpu = leading(alpha, "alpha", np.float32, (None, None, None))
    tracks, h, w = a.shape
    m = checked(native(matte), "matte", np.float32, a.shape, gpu)
    last = checked(native(last_shifts), "last_shifts", np.int32, (tracks, 2), gpu)
    src = checked(native(frame), "frame", np.uint8, (h, w, 3), gpu)
    prev = checked(native(prev_frame), "prev_frame", np.uint8, (h, w, 3), gpu)
    xp = xp_of(a)
    predicted = None if gpu else (nonzero_extents(a) if found is None else np.asarray(found, np.int64))
    held = None if gpu else (whole(tracks, h, w) if extents is None else extents)
    rows, cols = _profiles(a, predicted)
    rows_before, cols_before = _profiles(m, held)
    mass, mass_before = rows.sum(axis=1), rows_before.sum(axis=1)
    found = xp.stack([_best_shift(rows, rows_before, params.max_shift),
                      _best_shift(cols, cols_before, params.max_shift)], axis=1)
    shifts = xp.where(((mass > 0) & (mass_before > 0))[:, None], found, last).astype(np.int32)
    blind = ((mass == 0) & (mass_before > 0)).astype(np.uint8)
    cells_h, cells_w = params.cells_shape(h, w)
    cells = xp.empty((tracks, cells_h, cells_w), np.uint8)
    windows = None
    if gpu:
        _cuda.launch("temporal", "track_changes", cells.size, (
            src, prev, shifts, cells, np.int32(tracks), np.int32(h), np.int32(w), np.int32(params.cell),
            np.int32(cells_h), np.int32(cells_w), np.float32(params.tau_y)))
    else:
        windows = union(union(predicted, held), shifted(held, shifts, h, w))
        _track_changes_cpu(frame=src, prev_frame=prev, shifts=shifts, windows=windows, cells=cells, s=params.cell,
                           tau=np.float32(params.tau_y))
    return Motion(restore(shifts, kind), restore(blind, kind), restore(cells, kind), windows)


def _snapshot(states: _State, extents) -> tuple[_State, Any]:
    """Copies of the state arrays for shifted reads while the kernel overwrites them, and each track's
    origin (the top-left corner of its copy in the frame). With extents only each track's extent is
    copied (the state is 0 elsewhere), into one (N, tallest, widest) array per state: whole-frame
    copies allocated every frame cost as much as the fusion itself."""
    xp = xp_of(states.matte)
    tracks = states.matte.shape[0]
    if extents is None:
        return _State(*(state.copy() for state in states)), xp.zeros((tracks, 2), np.int32)
    tallest, widest = np.maximum((extents[:, 1::2] - extents[:, ::2]).max(axis=0, initial=0), 1)
    copies = _State(*(xp.zeros((tracks, tallest, widest), state.dtype) for state in states))
    for i, (y0, y1, x0, x1) in enumerate(extents):
        for copy, state in zip(copies, states):
            copy[i, :y1 - y0, :x1 - x0] = state[i, y0:y1, x0:x1]
    return copies, extents[:, ::2].astype(np.int32)


def _scene_cut(count, cut_cells, reset, xp):
    return xp.logical_or(count[0] > cut_cells, bool(reset))


def fuse_causal(alpha, matte, age, pend, new_track, cells, count, params: FusionParams, reset: bool = False,
                extents: np.ndarray | None = None, motion: Motion | None = None,
                evidence: Evidence | None = None) -> Fused:
    """Guarded causal rule for one frame, updating matte, age and pend in place.

    alpha: (N, H, W) float32 predictions in track order; new_track: (N,) uint8, 1 for a track with no
    valid state; cells/count: this frame's frame_changes; reset: force a reset of every track (first
    frame of a stream). A scene cut (changed cells > rho) resets every track as well. pend holds which
    way (ROSE, FELL) a disagreement went in the previous frame, AGREES (0) otherwise: a disagreement
    waits until it goes the same way a second frame. Where both the
    prediction and the previous matte are 0 nothing is held: age and pend become 0 (so empty space has
    no state, and the CPU twin can skip it).

    extents: (N, 4) int64 host array kept with the state, [y0, y1, x0, x1) of where matte/age/pend are
    non-zero (zeros for new tracks); the CPU twin then works only inside it and the prediction's extent,
    and updates it. None: the whole frame (and on the GPU, where it is ignored).

    motion: this frame's track_motion (made with the same extents). Track i then reads its previous
    matte, age and pend at p - shift_i and tests change on its own map, except where cells call p still
    (then it reads and holds its state at p); cells/count still decide the scene cut, and a blind track
    is static everywhere. None: no compensation.

    evidence: which predictions are fresh (None: all). A carried prediction is the engine's last look
    again, moved by the picture's motion: where it disagrees with the held value at a still pixel, the
    value is held (up to max_age frames) and a wait the last fresh prediction started stays as it was, so a
    change is taken when two looks go the same way, not when one look is repeated; where nothing waits, it
    starts the wait, which only a fresh prediction can complete. A fresh track's pixel near a
    cell that changed on its carried frames (evidence.dirty) is not still: the engine's first look at
    the changed picture is taken at once. Then dirty is cleared for the fresh tracks and gains this
    frame's cells for the carried ones (a blind track ignores it: its prediction is empty).
    """
    kind, a, gpu = leading(alpha, "alpha", np.float32, (None, None, None))
    tracks, h, w = a.shape
    m = checked(native(matte), "matte", np.float32, a.shape, gpu, writable=True)
    ag = checked(native(age), "age", np.uint8, a.shape, gpu, writable=True)
    pd = checked(native(pend), "pend", np.uint8, a.shape, gpu, writable=True)
    new = checked(native(new_track), "new_track", np.uint8, (tracks,), gpu)
    cells_a = checked(native(cells), "cells", np.uint8, params.cells_shape(h, w), gpu)
    count_a = checked(native(count), "count", np.int32, (1,), gpu)
    cut = params.cut_cells(h, w)
    eps = np.float32(params.eps)
    xp = xp_of(a)
    state = _State(m, ag, pd)
    if motion is None:  # every track reads its own pixel (in place) and shares the frame's change map
        shifts, blind = xp.zeros((tracks, 2), np.int32), xp.zeros(tracks, np.uint8)
        changes, previous, origins = cells_a[None], state, xp.zeros((tracks, 2), np.int32)
        windows = None if gpu else _windows(a, extents)
    else:
        shifts = checked(native(motion.shifts), "motion.shifts", np.int32, (tracks, 2), gpu)
        blind = checked(native(motion.blind), "motion.blind", np.uint8, (tracks,), gpu)
        changes = checked(native(motion.cells), "motion.cells", np.uint8, (tracks, *cells_a.shape), gpu)
        previous, origins = _snapshot(state, extents)
        windows = motion.windows
    per_track = motion is not None
    fresh = xp.ones(tracks, np.uint8) if evidence is None else checked(native(evidence.fresh), "evidence.fresh",
                                                                        np.uint8, (tracks,), gpu)
    dirty = (xp.zeros((1, 1, 1), np.uint8) if evidence is None
             else checked(native(evidence.dirty), "evidence.dirty", np.uint8, (tracks, *cells_a.shape), gpu, True))
    if gpu:
        _cuda.launch("temporal", "fuse_causal", a.size, (
            a, m, ag, pd, *previous, origins, np.int32(previous[0].shape[1]), np.int32(previous[0].shape[2]), new,
            cells_a, shifts, blind, changes, np.int64(cells_a.size if per_track else 0), count_a, np.int32(tracks),
            np.int32(h), np.int32(w), np.int32(params.cell), np.int32(cells_a.shape[0]),
            np.int32(cells_a.shape[1]), cut, np.int32(reset), eps, np.int32(params.max_age), np.float32(params.blend),
            fresh, dirty, np.int32(evidence is not None), SATURATE_LOW, SATURATE_HIGH))
    else:
        first, last = np.empty((2, tracks, h), np.int64)
        _fuse_causal_cpu(alpha=a, new_track=new, state=state, previous=previous, origins=origins, frame_cells=cells_a,
                         motion=Motion(shifts, blind, changes, windows),
                         rule=_rule(params, reset or count_a[0] > cut, per_track, evidence is not None),
                         evidence=Evidence(fresh, dirty), first=first, last=last)
        if extents is not None:
            extents[:] = bounds_from_rows(first, last)
    if evidence is not None:
        xp.bitwise_or(dirty, cells_a[None], out=dirty)
        dirty *= (fresh == 0)[:, None, None]
    flag = _scene_cut(count_a, cut, reset, xp)
    return Fused(matte, restore(flag, kind))


def fuse_exact(alpha, alpha_next, matte, new_track, has_next, cells_fwd, count_fwd, cells_bwd, count_bwd,
               params: FusionParams, reset: bool = False, extents: np.ndarray | None = None) -> Fused:
    """MaGGIe's two-sided rule for frame t, called when frame t + 1 arrives (one frame of latency).

    alpha, alpha_next: (N, H, W) float32 predictions at t and t + 1 in track order; matte: fused t - 1,
    overwritten with fused t; new_track: (N,) uint8, 1 where the track has no fused t - 1; has_next:
    (N,) uint8, 0 where the track is absent at t + 1 (then the prediction at t is taken);
    cells_fwd/count_fwd: frame_changes t - 1 -> t; cells_bwd/count_bwd: t -> t + 1. A scene cut on
    either side takes the prediction. A kept value moves by params.blend towards the prediction at t when
    that agrees with it too (a pop at t is dropped whole). No age limit is needed: a kept value is
    re-checked against the next prediction every frame. scene_cut reports the cut into frame t (or
    reset). extents: as in fuse_causal, the non-zero extent of matte.
    """
    kind, a, gpu = leading(alpha, "alpha", np.float32, (None, None, None))
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
            np.float32(params.blend), SATURATE_LOW, SATURATE_HIGH))
    else:
        first, last = np.empty((2, tracks, h), np.int64)
        _fuse_exact_cpu(alpha=a, alpha_next=nxt, matte=m, new_track=new, has_next=has, cells_fwd=fwd, cells_bwd=bwd,
                        rule=_rule(params, reset or n_fwd[0] > cut or n_bwd[0] > cut),
                        windows=_windows(a, extents), first=first, last=last)
        if extents is not None:
            extents[:] = bounds_from_rows(first, last)
    flag = _scene_cut(n_fwd, cut, reset, xp_of(a))
    return Fused(matte, restore(flag, kind))

"""Per-track temporal fusion state around the fusion kernels (kernels/temporal.py states the rule).

The kernels work on state arrays in one fixed track order; this class keeps those arrays (on the
device of the mattes it is given) and realigns them only when the set or order of tracks changes.

Modes: "off" passes mattes through; "causal" (default) applies the guarded forward rule with no
latency; "exact" applies MaGGIe's two-sided rule and so answers one frame late: update() returns
the previous frame's mattes (None on the first frame) and flush() returns the last one. With
params.motion, causal mode compensates each track's translation (kernels.track_motion) and keeps
each track's last shift, which a person the network misses for a frame goes on with. Causal mode
also keeps, per track, where the picture changed since the engine last looked at that person
(kernels.Evidence), for the engines that hand on some mattes from earlier frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Sequence

import numpy as np

from kernels import Evidence, FusionParams, frame_changes, fuse_causal, fuse_exact, track_motion
from kernels._arrays import kind_of, native, restore, xp_of
from livematte.config import TemporalConfig

Mode = Literal["off", "causal", "exact"]


@dataclass
class _Pending:
    """Frame t of exact mode, waiting for t + 1."""

    alpha: Any
    ids: list[int]
    cells: Any
    count: Any
    reset: bool


def fusion_params(cfg: TemporalConfig) -> FusionParams:
    """The fusion kernels' settings from `temporal:` (kernels/ cannot read the config: it sits below it)."""
    return FusionParams(tau_y=cfg.tau_y, cell=cfg.cell, rho=cfg.rho, eps=cfg.eps, max_age=cfg.max_age,
                        blend=cfg.blend, motion=cfg.motion, max_shift=cfg.max_shift)


class TemporalFuser:
    def __init__(self, mode: Mode = "causal", params: FusionParams = FusionParams()):
        if mode not in ("off", "causal", "exact"):
            raise ValueError(f"temporal mode must be off, causal or exact, got {mode!r}")
        self.mode, self.params = mode, params
        self.delay = 1 if mode == "exact" else 0  # frames between a frame's update() and its result
        self.ids: list[int] = []  # track ids of the mattes the last update() returned, in order
        self._cuts = 0  # a device scalar on GPU: counting must not synchronise every frame
        self.reset()

    def reset(self) -> None:
        """Forget everything (a new stream): the next frame is taken as predicted."""
        self._prev_frame = None
        self._state_ids: list[int] = []
        self._matte = self._age = self._pend = None
        self._dirty = None  # (N, cells) uint8: kernels.Evidence.dirty, while the engine hands on some mattes
        self._shifts = None  # (N, 2) int32 on the mattes' device: each track's last shift (dy, dx)
        self._extents = np.zeros((0, 4), np.int64)  # where each track's state is non-zero (CPU twins skip the rest)
        self._pending: _Pending | None = None

    def update(self, frame, mattes, track_ids: Sequence[int], extents: np.ndarray | None = None,
               fresh: np.ndarray | None = None):
        """Fused mattes for one frame; same kind (NumPy / CuPy / torch) and order as given.

        frame: (H, W, 3) uint8 BGR; mattes: (N, H, W) float32 in [0, 1]; track_ids: N distinct ids;
        extents: (N, 4) int64 [y0, y1, x0, x1) bounding each matte's non-zero values, where the caller
        knows them (the CPU twins then need not find them); fresh: (N,) bool, which mattes the engine
        made from this frame (None: all), read in causal mode.
        The result is the fuser's own state array: read it before the next update().
        In exact mode the result belongs to the previous call's frame (ids in self.ids), or is None.
        """
        ids = [int(i) for i in track_ids]
        if len(set(ids)) != len(ids):
            raise ValueError(f"track ids must be distinct, got {ids}")
        if len(ids) != mattes.shape[0]:
            raise ValueError(f"got {mattes.shape[0]} mattes but {len(ids)} track ids")
        if self.mode == "off":
            self.ids = ids
            return mattes
        kind = kind_of(mattes)
        frame, alpha = native(frame), native(mattes)
        reset = self._start(frame)
        if self.mode == "causal":
            return restore(self._causal(frame, alpha, ids, reset, extents, fresh), kind)
        cells, count = frame_changes(frame, self._prev_frame, self.params)
        pending, self._pending = self._pending, _Pending(alpha.copy(), ids, cells, count, reset)
        if pending is None:
            return None
        return restore(self._exact(pending, alpha, ids, cells, count), kind)

    def flush(self):
        """Exact mode: the last frame's mattes, taken as predicted (there is no next frame); else None."""
        pending, self._pending = self._pending, None
        if pending is None:
            return None
        xp = xp_of(pending.alpha)
        kind = kind_of(pending.alpha)
        return restore(self._exact(pending, pending.alpha, [], pending.cells, xp.zeros_like(pending.count)), kind)

    def _start(self, frame) -> bool:
        """(Re)start on the first frame or a size change; True when this frame must reset."""
        height, width = frame.shape[:2]
        if self._prev_frame is not None and self._prev_frame.shape == (height, width, 3):
            return False
        self.reset()
        self._prev_frame = xp_of(frame).zeros((height, width, 3), np.uint8)
        return True

    def _causal(self, frame, alpha, ids: list[int], reset: bool, found: np.ndarray | None,
                fresh: np.ndarray | None):
        """The fused mattes of this frame (the state array itself); the motion is measured first, since
        its change test needs the previous frame that frame_changes overwrites."""
        matte, age, pend, new = self._aligned(ids, alpha)
        evidence = None if fresh is None else self._evidence(alpha, fresh)
        extents = self._host_extents()
        motion = None
        if self.params.motion:
            motion = track_motion(alpha, matte, self._shifts, frame, self._prev_frame, self.params, extents, found)
        cells, count = frame_changes(frame, self._prev_frame, self.params)
        fused = fuse_causal(alpha, matte, age, pend, new, cells, count, self.params, reset, extents, motion, evidence)
        if evidence is None:  # every matte was fresh: nothing changed unseen
            self._dirty = None
        if motion is not None:  # a shift across a scene cut is no motion
            self._shifts = xp_of(alpha).where(fused.scene_cut, 0, motion.shifts).astype(np.int32)
        self._count_cut(fused.scene_cut, reset)
        self.ids = ids
        return matte

    def _evidence(self, alpha, fresh: np.ndarray) -> Evidence:
        """kernels.Evidence for this frame, on the mattes' device; the changed-cells map starts empty."""
        xp = xp_of(alpha)
        cells_shape = self.params.cells_shape(*alpha.shape[1:])
        if self._dirty is None or self._dirty.shape[1:] != cells_shape:
            self._dirty = xp.zeros((alpha.shape[0], *cells_shape), np.uint8)
        return Evidence(xp.asarray(np.asarray(fresh, np.uint8)), self._dirty)

    def _aligned(self, ids: list[int], like):
        """State arrays (matte, age, pend) in the order of `ids`, plus the new-track flags; the shifts,
        extents and changes since the last fresh matte are realigned with them."""
        xp = xp_of(like)
        if ids == self._state_ids and self._matte is not None and self._matte.shape == like.shape:
            return self._matte, self._age, self._pend, xp.zeros(len(ids), np.uint8)
        matte = xp.zeros(like.shape, np.float32)
        age = xp.zeros(like.shape, np.uint8)
        pend = xp.zeros(like.shape, np.uint8)
        shifts = xp.zeros((len(ids), 2), np.int32)
        dirty = None if self._dirty is None else xp.zeros((len(ids), *self._dirty.shape[1:]), np.uint8)
        extents = np.zeros((len(ids), 4), np.int64)
        new = np.ones(len(ids), np.uint8)
        slot = {track: j for j, track in enumerate(self._state_ids)}
        for j, track in enumerate(ids):
            if track in slot:
                k = slot[track]
                matte[j], age[j], pend[j], new[j] = self._matte[k], self._age[k], self._pend[k], 0
                shifts[j], extents[j] = self._shifts[k], self._extents[k]
                if dirty is not None:
                    dirty[j] = self._dirty[k]
        self._state_ids, self._matte, self._age, self._pend = ids, matte, age, pend
        self._shifts, self._extents, self._dirty = shifts, extents, dirty
        return matte, age, pend, xp.asarray(new)

    def _exact(self, pending: _Pending, alpha_next, next_ids: list[int], cells_bwd, count_bwd):
        """Fuse frame t (pending) now that t + 1 (alpha_next, next_ids) is known."""
        xp = xp_of(pending.alpha)
        matte, _, _, new = self._aligned(pending.ids, pending.alpha)
        where = {track: j for j, track in enumerate(next_ids)}
        following = xp.zeros_like(pending.alpha)
        has_next = np.zeros(len(pending.ids), np.uint8)
        for j, track in enumerate(pending.ids):
            if track in where:
                following[j], has_next[j] = alpha_next[where[track]], 1
        fused = fuse_exact(pending.alpha, following, matte, new, xp.asarray(has_next), pending.cells, pending.count,
                           cells_bwd, count_bwd, self.params, pending.reset, self._host_extents())
        self._count_cut(fused.scene_cut, pending.reset)
        self.ids = pending.ids
        return matte

    @property
    def extents(self) -> np.ndarray | None:
        """(N, 4) int64 [y0, y1, x0, x1) holding every non-zero value of the mattes the last update()
        returned, a copy (CPU only: None on the GPU and in mode off)."""
        if self.mode == "off" or not isinstance(self._matte, np.ndarray):
            return None
        return self._extents.copy()

    def _host_extents(self) -> np.ndarray | None:
        """The state's extents for the CPU twins; None on the GPU, whose kernels cover every pixel."""
        return self._extents if isinstance(self._matte, np.ndarray) else None

    def _count_cut(self, scene_cut, reset: bool) -> None:
        if not reset:  # the kernels flag the first frame of a stream too; that is a start, not a cut
            self._cuts = self._cuts + scene_cut

    @property
    def scene_cuts(self) -> int:
        """Scene cuts seen so far (each reset every track)."""
        return int(self._cuts)

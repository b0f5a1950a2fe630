"""Keeps each person's identity and matte stable: tracking, then temporal fusion per track.

A network often loses a person for a single frame. A confirmed person unseen for up to
`hold_frames` frames is still handed to the fuser, with an empty prediction: the fuser holds their
last matte for one frame (its one-frame wait), so a dropout does not blink; with motion compensation
the held matte moves on with the person's last shift, without it only where the image did not
change is it held. If the absence persists, the empty prediction is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kernels._arrays import host, kind_of, native, restore, xp_of
from livematte.frame import at_size
from livematte.temporal import TemporalFuser
from livematte.tracking import UNTRACKED, Tracker


@dataclass(frozen=True)
class People:
    """Stable per-person mattes of one frame: mattes (M, H, W) in the given kind, one track id each;
    extents (M, 4) [y0, y1, x0, x1) holding each matte's non-zero values, where known (CPU fusion)."""

    mattes: Any
    ids: list[int]
    extents: np.ndarray | None = None


def numbered_left_to_right(mattes, probs, min_prob: float) -> People:
    """A photo's people, ids 1, 2, ... from left to right (by the centre of their matte): for stills,
    where nobody is followed from one picture to the next."""
    kind, alphas = kind_of(mattes), native(mattes)
    xp = xp_of(alphas)
    keep = np.flatnonzero(np.asarray(host(probs), np.float32).reshape(-1) >= min_prob)
    alphas = alphas[keep]
    columns = alphas.sum(axis=1)
    centres = host((columns * xp.arange(alphas.shape[2], dtype=np.float32)).sum(axis=1)
                   / xp.maximum(columns.sum(axis=1), 1e-6))
    order = np.argsort(centres, kind="stable")
    return People(restore(xp.ascontiguousarray(alphas[order]), kind), list(range(1, len(order) + 1)))


class Stabilizer:
    def __init__(self, tracker: Tracker, fuser: TemporalFuser, hold_frames: int = 1):
        self.tracker, self.fuser, self.hold_frames = tracker, fuser, hold_frames

    @property
    def delay(self) -> int:
        """Frames between a frame going in and its people coming out (1 in exact fusion mode)."""
        return self.fuser.delay

    def update(self, frame, mattes, probs, extents: np.ndarray | None = None,
               fresh: np.ndarray | None = None) -> People | None:
        """Track and fuse one frame's instances; None only on the first frame of exact mode. Mattes smaller
        than the frame (NumPy) are tracked and fused at their size, against the frame brought to it.
        extents, fresh: Instances', where the engine gave them (a held track's empty matte is fresh: the
        engine looked and missed them)."""
        frame = at_size(frame, mattes.shape[1:])
        ids = self.tracker.update(mattes, probs, frame)
        keep = [i for i, track in enumerate(ids) if track != UNTRACKED]
        held = [t for t in self.tracker.recently_missed(self.hold_frames) if t not in ids]
        kind = kind_of(mattes)
        alphas = native(mattes)
        xp = xp_of(alphas)
        if len(keep) == len(alphas) and not held and alphas.flags.c_contiguous:
            stacked = alphas  # everyone tracked: no copy of the frame-sized mattes
        else:
            stacked = xp.zeros((len(keep) + len(held), *alphas.shape[1:]), np.float32)
            stacked[:len(keep)] = alphas[keep]
        if extents is not None:  # the held have empty mattes
            extents = np.concatenate([extents[keep], np.zeros((len(held), 4), np.int64)])
        if fresh is not None:
            fresh = np.concatenate([np.asarray(fresh, bool)[keep], np.ones(len(held), bool)])
        fused = self.fuser.update(frame, restore(stacked, kind), [ids[i] for i in keep] + held, extents, fresh)
        if fused is None:
            return None
        return People(fused, list(self.fuser.ids), self.fuser.extents)

    def flush(self) -> People | None:
        """The last frame's people in exact mode (None otherwise)."""
        fused = self.fuser.flush()
        return None if fused is None else People(fused, list(self.fuser.ids), self.fuser.extents)

"""Stable person ids across frames.

An engine's instances are an unordered set: query 3 may be someone else in the next frame. Users
attach effects to an id ("Alex gets the beach"), so ids must stick. Matching runs in two stages:

1. Overlap: each frame's mattes against every track's last matte, moved by the track's motion, at
   low resolution. The score is the overlap coefficient (intersection over the smaller area), not
   IoU: a person walking behind someone shrinks to a sliver that still lies inside their own last
   matte (visible parts of different people never overlap), while IoU would fall below any gate.
2. Re-identification: a sliver changes shape faster than overlap can follow, and a person fully
   hidden for a while comes back elsewhere (the far side of whoever hid them). Mattes left over are
   matched to tracks left over by colour appearance (a hue/saturation histogram under the matte)
   and nearness, within a radius that grows with the time unseen. It needs the frame; without
   one, only stage 1 runs.

A track is confirmed after `confirm_frames` sightings (a one-frame false positive never shows), is
kept `max_missing` frames unseen, and ids are never reused within a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import count

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from kernels._arrays import host
from livematte.config import TrackingConfig

UNTRACKED = -1  # the id update() gives mattes that are not (yet) a confirmed person
HIST_BINS = (12, 4)  # hue x saturation


@dataclass
class Track:
    id: int
    mask: np.ndarray  # low-resolution matte, float32 (h, w)
    centroid: np.ndarray  # (y, x) in low-resolution pixels
    appearance: np.ndarray | None  # normalised hue/saturation histogram
    peak_area: float
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float32))
    hits: int = 1
    missed: int = 0
    confirmed: bool = False

    def predicted_mask(self) -> np.ndarray:
        """The last mask moved by the smoothed motion, for each frame it has been unseen (plus this one)."""
        dy, dx = np.round(self.velocity * (self.missed + 1)).astype(int)
        return _shift(self.mask, int(dy), int(dx))


class Tracker:
    def __init__(self, enter_threshold: float = 0.6, exit_threshold: float = 0.4, min_overlap: float = 0.15,
                 confirm_frames: int = 2, max_missing: int = 60, max_people: int = 20, grid_width: int = 96,
                 min_similarity: float = 0.4, reid_radius: float = 0.15, reid_speed: float = 0.01):
        if not 0 <= exit_threshold <= enter_threshold <= 1:
            raise ValueError(f"thresholds must satisfy 0 <= exit ({exit_threshold}) <= enter ({enter_threshold}) <= 1")
        self.enter_threshold, self.exit_threshold = enter_threshold, exit_threshold
        self.min_overlap, self.confirm_frames, self.max_missing = min_overlap, confirm_frames, max_missing
        self.max_people, self.grid_width = max_people, grid_width
        self.min_similarity = min_similarity
        self.reid_radius, self.reid_speed = reid_radius, reid_speed  # fractions of the frame width (per frame)
        self.tracks: list[Track] = []
        self._ids = count(1)

    @classmethod
    def from_config(cls, cfg: TrackingConfig) -> "Tracker":
        """The tracker `tracking:` asks for (the settings it does not name keep their defaults)."""
        return cls(enter_threshold=cfg.enter_threshold, exit_threshold=cfg.exit_threshold,
                   confirm_frames=cfg.confirm_frames, max_missing=cfg.max_missing, max_people=cfg.max_people)

    def update(self, mattes, probs, frame=None) -> list[int]:
        """One id per matte (in order); UNTRACKED for mattes that are not a confirmed person.

        `mattes` (N, H, W) float in [0, 1], `probs` (N,), and optionally the BGR frame they came from
        (for re-identification): NumPy, or torch (pooled on its device, only small arrays copied).
        """
        small = _low_resolution(mattes, self.grid_width)
        probs = np.asarray(host(probs) if hasattr(probs, "shape") else probs, np.float32).reshape(-1)
        if len(probs) != len(small):
            raise ValueError(f"got {len(small)} mattes but {len(probs)} probabilities")
        hist = _appearances(frame, small) if frame is not None else [None] * len(small)
        candidates = [i for i, p in enumerate(probs) if p >= self.exit_threshold and small[i].sum() > 0]
        ids = [UNTRACKED] * len(probs)

        matches = self._match_overlap(small, hist, candidates)
        free = [i for i in candidates if i not in {d for d, _ in matches} and probs[i] >= self.enter_threshold]
        matches += self._match_appearance(small, hist, free, {t.id for _, t in matches})
        for det, track in matches:
            self._observe(track, small[det], hist[det])
            ids[det] = track.id
        seen = {t.id for _, t in matches}
        for track in self.tracks:
            if track.id not in seen:
                track.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missing]

        for det in free:
            if ids[det] == UNTRACKED:
                area = float(small[det].sum())
                track = Track(next(self._ids), small[det], _centroid(small[det]), hist[det], area)
                track.confirmed = self.confirm_frames <= 1
                self.tracks.append(track)
                ids[det] = track.id

        shown = self._shown_ids()
        return [i if i in shown else UNTRACKED for i in ids]

    def _match_overlap(self, small: np.ndarray, hist, candidates: list[int]) -> list[tuple[int, Track]]:
        if not candidates or not self.tracks:
            return []
        predicted = np.stack([t.predicted_mask() for t in self.tracks])
        score = _overlap(small[candidates], predicted)
        for r, det in enumerate(candidates):  # colours break ties between neighbours of similar overlap
            for c, track in enumerate(self.tracks):
                if score[r, c] > 0 and hist[det] is not None and track.appearance is not None:
                    score[r, c] *= 0.5 + 0.5 * _similarity(hist[det], track.appearance)
        rows, cols = linear_sum_assignment(-score)
        return [(candidates[r], self.tracks[c]) for r, c in zip(rows, cols) if score[r, c] >= self.min_overlap]

    def _match_appearance(self, small, hist, free: list[int], taken: set[int]) -> list[tuple[int, Track]]:
        """Re-identify people who reappear away from where they vanished (stage 2 above)."""
        lost = [t for t in self.tracks if t.id not in taken and t.appearance is not None]
        free = [d for d in free if hist[d] is not None]
        if not lost or not free:
            return []
        width = small.shape[2]
        score = np.zeros((len(free), len(lost)), np.float32)
        for r, det in enumerate(free):
            centroid = _centroid(small[det])
            for c, track in enumerate(lost):
                radius = width * (self.reid_radius + self.reid_speed * (track.missed + 1))
                nearness = 1.0 - np.linalg.norm(centroid - track.centroid) / radius
                if nearness > 0:
                    score[r, c] = 0.5 * (_similarity(hist[det], track.appearance) + nearness)
        rows, cols = linear_sum_assignment(-score)
        return [(free[r], lost[c]) for r, c in zip(rows, cols) if score[r, c] >= self.min_similarity]

    def _observe(self, track: Track, mask: np.ndarray, appearance: np.ndarray | None) -> None:
        centroid = _centroid(mask)
        area = float(mask.sum())
        if track.missed == 0:  # motion from consecutive frames only; a reappearance jumps
            track.velocity = 0.5 * track.velocity + 0.5 * (centroid - track.centroid)
        else:
            track.velocity = np.zeros(2, np.float32)
        if appearance is not None and area >= 0.5 * track.peak_area:  # a sliver's colours are not the person's
            track.appearance = appearance if track.appearance is None else 0.8 * track.appearance + 0.2 * appearance
        track.mask, track.centroid, track.peak_area = mask, centroid, max(track.peak_area, area)
        track.hits += 1
        track.missed = 0
        track.confirmed = track.confirmed or track.hits >= self.confirm_frames

    def recently_missed(self, frames: int) -> list[int]:
        """Confirmed tracks unseen for 1..frames frames: the fuser may hold their mattes over a dropout."""
        return sorted(t.id for t in self.tracks if t.confirmed and 0 < t.missed <= frames)

    def _shown_ids(self) -> set[int]:
        """Confirmed tracks seen this frame, oldest first, at most max_people of them."""
        visible = sorted(t.id for t in self.tracks if t.confirmed and t.missed == 0)
        return set(visible[: self.max_people])


def _grid_size(height: int, width: int, grid_width: int) -> tuple[int, int]:
    """(h, w) of the low-resolution grid: about grid_width wide, aspect kept, never upscaled."""
    if width <= grid_width:
        return height, width
    return max(1, round(height * grid_width / width)), grid_width


def _low_resolution(images, grid_width: int) -> np.ndarray:
    """(N, H, W[, C]) -> (N, h, w[, C]) float32 by area averaging: matching needs shape, not detail."""
    if hasattr(images, "detach"):  # torch: pool on the device, copy only the small result
        import torch.nn.functional as F

        n, height, width = images.shape[:3]
        size = _grid_size(height, width, grid_width)
        x = images.detach().float()
        x = x.permute(0, 3, 1, 2) if x.ndim == 4 else x[:, None]
        pooled = F.interpolate(x, size=size, mode="area") if n else x.new_zeros((0, x.shape[1], *size))
        pooled = pooled.permute(0, 2, 3, 1) if images.ndim == 4 else pooled[:, 0]
        return pooled.cpu().numpy()
    height, width = images.shape[1:3]
    h, w = _grid_size(height, width, grid_width)
    if (h, w) == (height, width):
        return np.asarray(images, np.float32)
    step = max(1, min(height // (2 * h), width // (2 * w)))  # every step-th pixel first: 20x cheaper, same shapes
    images = np.ascontiguousarray(images[:, ::step, ::step], np.float32)
    out = np.empty((len(images), h, w, *images.shape[3:]), np.float32)
    for i, image in enumerate(images):
        out[i] = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    return out


def _appearances(frame, small: np.ndarray) -> list[np.ndarray | None]:
    """A hue/saturation histogram of each person's pixels, weighted by their low-resolution matte."""
    pixels = _low_resolution(frame[None], small.shape[2])[0] if len(small) else None
    if pixels is None or pixels.shape[:2] != small.shape[1:]:
        return [None] * len(small)
    hsv = cv2.cvtColor(np.clip(pixels, 0, 255).astype(np.uint8), cv2.COLOR_BGR2HSV)
    hue = (hsv[..., 0].astype(np.int32) * HIST_BINS[0]) // 180
    sat = (hsv[..., 1].astype(np.int32) * HIST_BINS[1]) // 256
    bins = (hue * HIST_BINS[1] + sat).ravel()
    out: list[np.ndarray | None] = []
    for mask in small:
        hist = np.bincount(bins, weights=mask.ravel(), minlength=HIST_BINS[0] * HIST_BINS[1])
        total = hist.sum()
        out.append((hist / total).astype(np.float32) if total > 0 else None)
    return out


def _similarity(det: np.ndarray, track: np.ndarray, floor: float = 0.05) -> float:
    """The share of the detection's pixels whose colour is common in the track's appearance.

    Back-projection rather than a histogram distance: a person reappearing as a sliver (an arm, the
    legs) shows only some of their colours, and those must still count as theirs.
    """
    return float((det * np.minimum(1.0, track / floor)).sum())


def _overlap(det: np.ndarray, tracks: np.ndarray) -> np.ndarray:
    """Match score of every (detection, track) pair: the mean of IoU and the share of the detection
    that lies inside the track's predicted matte, with soft masks counted by their products.

    The second term keeps a person who shrinks to a sliver behind someone matched to their own
    track; IoU keeps a large detection from claiming a small track that it happens to cover.
    """
    a, b = det.reshape(len(det), -1), tracks.reshape(len(tracks), -1)
    inter = a @ b.T
    area_a, area_b = (a * a).sum(1)[:, None], (b * b).sum(1)[None]
    iou = inter / np.maximum(area_a + area_b - inter, 1e-6)
    return 0.5 * (iou + inter / np.maximum(area_a, 1e-6))


def _centroid(mask: np.ndarray) -> np.ndarray:
    total = mask.sum()
    ys, xs = np.indices(mask.shape)
    return np.array([(ys * mask).sum() / total, (xs * mask).sum() / total], np.float32)


def _shift(mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Translate with zero fill (np.roll would wrap people around the frame edge)."""
    out = np.zeros_like(mask)
    h, w = mask.shape
    if abs(dy) >= h or abs(dx) >= w:
        return out
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = (
        mask[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)])
    return out

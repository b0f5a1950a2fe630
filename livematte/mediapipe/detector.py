"""People in a picture from MediaPipe's pose detector (BlazePose's first stage).

The detector finds faces and predicts, for each, the body's hip centre and a point above the head
(the alignment of the landmark model's square, livematte/mediapipe/roi.py). It reads 224x224; a
person in a 16:9 frame squeezed whole into that is too small to be found, so the frame is read as
overlapping squares: squares of the short side along the long side (people near the camera), then
squares of half that (people far away, a group round a table); detections of one face are merged.
Anchors and decoding follow the detector's MediaPipe graph (SSD anchors, strides 8-16-32-32-32,
two per cell; sigmoid scores; weighted non-maximum suppression). The suppression groups faces by
distance, not box overlap: the boxes' size follows the square read, not the face.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.special import expit

from livematte.mediapipe.litert import LiteModel
from livematte.mediapipe.models import POSE_DETECTOR
from livematte.mediapipe.roi import Roi

SIDE = 224
STRIDES = (8, 16, 32, 32, 32)
SAME_FACE = 0.3  # two faces nearer than this x the body's length (hip to top) are one person's
Square = tuple[int, int, int]  # (x0, y0, side) of a part of the frame the detector reads
# the model's output names: (2254, 12) box and keypoint offsets, (2254, 1) logits
BOXES, SCORES = "Identity", "Identity_1"


@dataclass(frozen=True)
class Detection:
    score: float
    face: np.ndarray  # (x0, y0, x1, y1) frame pixels
    hip: np.ndarray  # (x, y) hip centre
    top: np.ndarray  # (x, y) point above the head, at the body's size from the hip

    @property
    def roi(self) -> Roi:
        return Roi.from_alignment(self.hip, self.top)

    @property
    def face_centre(self) -> np.ndarray:
        return (self.face[:2] + self.face[2:]) / 2

    def same_person(self, face: np.ndarray) -> bool:
        """Whether a face at `face` (x, y) is this detection's."""
        return float(np.hypot(*(face - self.face_centre))) < SAME_FACE * float(np.hypot(*(self.top - self.hip)))


def anchors() -> np.ndarray:
    """(2254, 2) anchor centres (x, y) in [0, 1]: layers of one stride share a grid, two anchors per layer."""
    centres = []
    for stride in sorted(set(STRIDES)):
        cells = math.ceil(SIDE / stride)
        per_cell = 2 * STRIDES.count(stride)
        ys, xs = np.mgrid[0:cells, 0:cells]
        grid = np.stack([(xs.ravel() + 0.5) / cells, (ys.ravel() + 0.5) / cells], axis=1)
        centres.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


class PoseDetector:
    def __init__(self, threads: int, min_score: float):
        self.model = LiteModel(POSE_DETECTOR, threads)
        self.min_score = min_score
        self._anchors = anchors()

    def detect(self, frame: np.ndarray, squares: list[Square] | None = None) -> list[Detection]:
        """Everyone found in a uint8 BGR frame (in the given squares of it; default all of tiles()), best first."""
        found = []
        for x0, y0, side in tiles(*frame.shape[:2]) if squares is None else squares:
            tile = frame[y0:y0 + side, x0:x0 + side]
            found += [_shifted(d, side / SIDE, np.array([x0, y0], np.float64)) for d in self._detect_square(tile)]
        return merge(found)

    def _detect_square(self, tile: np.ndarray) -> list[Detection]:
        picture = cv2.resize(tile, (SIDE, SIDE), interpolation=cv2.INTER_AREA)
        picture = cv2.cvtColor(picture, cv2.COLOR_BGR2RGB).astype(np.float32) * (2 / 255) - 1
        out = self.model(picture)
        raw, scores = out[BOXES], expit(out[SCORES][:, 0])
        keep = np.flatnonzero(scores >= self.min_score)
        boxes = raw[keep] / SIDE
        centre = self._anchors[keep]
        face_centre, face_size = boxes[:, 0:2] + centre, boxes[:, 2:4]
        faces = np.concatenate([face_centre - face_size / 2, face_centre + face_size / 2], axis=1) * SIDE
        hips, tops = (boxes[:, 4:6] + centre) * SIDE, (boxes[:, 6:8] + centre) * SIDE
        return merge([Detection(float(s), f, h, t) for s, f, h, t in zip(scores[keep], faces, hips, tops)])


def tiles(height: int, width: int) -> list[Square]:
    """Squares that cover the frame with overlap: of the short side, then of half of it (none below SIDE)."""
    near, far = _scales(height, width)
    return near + far


def sweep(height: int, width: int) -> list[Square]:
    """The order a video is read in, one square per turn, over and over: a near square every other turn,
    since people near the camera are found in them (and found sooner so)."""
    near, far = _scales(height, width)
    return [square for k, far_square in enumerate(far) for square in (near[k % len(near)], far_square)] or near


def _scales(height: int, width: int) -> tuple[list[Square], list[Square]]:
    short = min(height, width)
    return _grid(height, width, short), _grid(height, width, short // 2) if short // 2 >= SIDE else []


def _grid(height: int, width: int, side: int) -> list[Square]:
    """side x side squares covering the frame, one more along each axis than fits, so they overlap."""
    def starts(length: int) -> np.ndarray:
        count = 1 if length == side else math.ceil(length / side) + 1
        return np.linspace(0, length - side, count).round().astype(int)

    return [(int(x), int(y), side) for y in starts(height) for x in starts(width)]


def merge(found: list[Detection]) -> list[Detection]:
    """Detections of one face (from one square or several) become their score-weighted mean (steadier
    than keeping the best one), best first."""
    pending = sorted(found, key=lambda d: -d.score)
    merged = []
    while pending:
        best = pending[0]
        group = [d for d in pending if best.same_person(d.face_centre)]
        pending = [d for d in pending if not best.same_person(d.face_centre)]
        weights = np.array([d.score for d in group])[:, None] / sum(d.score for d in group)

        def mean(points: list[np.ndarray]) -> np.ndarray:
            return (weights * np.stack(points)).sum(axis=0)

        merged.append(Detection(best.score, mean([d.face for d in group]), mean([d.hip for d in group]),
                                mean([d.top for d in group])))
    return merged


def _shifted(d: Detection, scale: float, offset: np.ndarray) -> Detection:
    return Detection(d.score, d.face * scale + np.tile(offset, 2), d.hip * scale + offset, d.top * scale + offset)

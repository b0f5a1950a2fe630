"""People in a picture from MediaPipe's pose detector (BlazePose's first stage).

The detector finds faces and predicts, for each, the body's hip centre and a point above the head
(the alignment of the landmark model's square, livematte/mediapipe/roi.py). It reads 224x224; a
person in a 16:9 frame squeezed whole into that is too small to be found, so the frame is read as
overlapping squares along its long side, and detections of the same face are merged.
Anchors and decoding follow the detector's MediaPipe graph (SSD anchors, strides 8-16-32-32-32,
two per cell; sigmoid scores; weighted non-maximum suppression at IoU 0.3).
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
MERGE_IOU = 0.3
BOXES, SCORES = "Identity", "Identity_1"  # the model's output names: (2254, 12) box and keypoint offsets, (2254, 1) logits


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

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Everyone found in a uint8 BGR frame, best first."""
        found = []
        for x0, y0, side in tiles(*frame.shape[:2]):
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


def tiles(height: int, width: int) -> list[tuple[int, int, int]]:
    """(x0, y0, side) squares of the short side's length that cover the frame with overlap."""
    side, long = min(height, width), max(height, width)
    count = 1 if long == side else math.ceil(long / side) + 1
    starts = np.linspace(0, long - side, count).round().astype(int)
    return [(int(s), 0, side) if width >= height else (0, int(s), side) for s in starts]


def merge(found: list[Detection]) -> list[Detection]:
    """Weighted non-maximum suppression on the face boxes: overlapping detections become their
    score-weighted mean (steadier than keeping the best one), best first."""
    pending = sorted(found, key=lambda d: -d.score)
    merged = []
    while pending:
        group = [d for d in pending if _iou(pending[0].face, d.face) > MERGE_IOU]
        pending = [d for d in pending if _iou(pending[0].face, d.face) <= MERGE_IOU]
        weights = np.array([d.score for d in group])[:, None] / sum(d.score for d in group)
        mean = [(weights * np.stack([getattr(d, k) for d in group])).sum(axis=0) for k in ("face", "hip", "top")]
        merged.append(Detection(group[0].score, *mean))
    return merged


def _shifted(d: Detection, scale: float, offset: np.ndarray) -> Detection:
    return Detection(d.score, d.face * scale + np.tile(offset, 2), d.hip * scale + offset, d.top * scale + offset)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0) * max(h, 0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0

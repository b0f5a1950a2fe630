"""One person in their square: MediaPipe's pose landmark model (BlazePose full).

Reads the 256x256 crop of a person's Roi and gives their presence, 33 body landmarks, a soft mask of
that person in the crop, and the Roi that frames them in the next frame (from its two alignment
landmarks, as MediaPipe's pose graph tracks a person without running the detector again).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.special import expit

from livematte.mediapipe.litert import LiteModel
from livematte.mediapipe.models import POSE_LANDMARKS
from livematte.mediapipe.roi import Part, Roi

MASK_FLOOR = 0.01  # mask values below this are taken as zero (where a mask is pasted)
BODY = 33  # body landmarks; two alignment landmarks (hip centre, above the head) follow
LANDMARKS, PRESENCE, SEGMENTATION = "Identity", "Identity_1", "Identity_2"  # the model's output names
LANDMARK_VALUES = 5  # x, y, z, visibility, presence
MIN_VISIBLE = 0.5  # p(visible) from which a landmark counts as seen
# Landmark index pairs of the body's skeleton (MediaPipe's pose connections, face to feet).
BONES = ((0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10), (11, 12), (11, 13), (13, 15),
         (12, 14), (14, 16), (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28), (27, 29), (28, 30),
         (29, 31), (30, 32), (27, 31), (28, 32), (15, 17), (15, 19), (15, 21), (17, 19), (16, 18), (16, 20), (16, 22),
         (18, 20))


@dataclass(frozen=True)
class Pose:
    presence: float  # p(a person fills this square)
    roi: Roi  # the square the model read
    mask: np.ndarray  # (side, side) float32 in [0, 1], in the square's pixels
    extent: Part  # the part of the square where the mask is above MASK_FLOOR
    landmarks: np.ndarray  # (33, 2) frame pixels
    visible: np.ndarray  # (33,) p(landmark visible)
    next_roi: Roi  # where the person is framed from their landmarks


class PoseLandmarker:
    def __init__(self, threads: int):
        self.model = LiteModel(POSE_LANDMARKS, threads)
        self.side = self.model.input_shape[0]

    def __call__(self, frame: np.ndarray, roi: Roi) -> Pose:
        picture = cv2.cvtColor(roi.crop(frame, self.side), cv2.COLOR_BGR2RGB).astype(np.float32) * (1 / 255)
        out = self.model(picture)
        points = out[LANDMARKS].reshape(-1, LANDMARK_VALUES)
        in_frame = roi.points_to_frame(points[:, :2].astype(np.float64), self.side)
        hip, top = in_frame[BODY], in_frame[BODY + 1]
        mask = expit(out[SEGMENTATION][..., 0]).astype(np.float32)
        return Pose(float(out[PRESENCE][0]), roi, mask, _extent(mask), in_frame[:BODY], expit(points[:BODY, 3]),
                    Roi.from_alignment(hip, top))


def _extent(mask: np.ndarray) -> Part:
    rows, cols = np.flatnonzero((mask >= MASK_FLOOR).any(axis=1)), np.flatnonzero((mask >= MASK_FLOOR).any(axis=0))
    if not len(rows):
        return (0.0, 0.0, 0.0, 0.0)
    side = mask.shape[0]
    return rows[0] / side, (rows[-1] + 1) / side, cols[0] / side, (cols[-1] + 1) / side

"""The learned CPU engine: real people without a green screen, a GPU or downloaded weights.

MediaPipe's pose detector finds people (livematte/mediapipe/detector.py); its pose landmark model
then reads each person's own square and gives their mask and the square for the next frame
(livematte/mediapipe/landmarks.py), so a person is followed without the detector, which runs every
`detect_every` frames to find newcomers. Each person has their own mask, also where people touch;
what two masks both claim goes to the nearer skeleton (livematte/mediapipe/split.py).

The landmark model costs the same for every person, so the time per frame is bounded: the
`people_per_frame` people seen longest ago are read again, and the others' masks move on with their
last motion until their turn. Stills (a folder of unrelated photos) are read whole: detector and
every person, twice (the second square from the first pass's landmarks), nothing carried over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from livematte.config import MediaPipeConfig
from livematte.engine.base import Instances, checked_frames
from livematte.mediapipe.detector import Detection, PoseDetector
from livematte.mediapipe.landmarks import Pose, PoseLandmarker
from livematte.mediapipe.roi import Roi
from livematte.mediapipe.split import split_contested

SAME_FACE = 0.25  # a detection is a followed person when their faces are nearer than this x the body's size
SAME_BODY = 0.08  # two followed people are one when their landmarks lie nearer than this x the square (mean)
MOTION_SMOOTHING = 0.5  # weight of the newest square's motion in the velocity


@dataclass
class _Person:
    pose: Pose
    seen: int  # frame number of `pose`
    velocity: np.ndarray  # (x, y) pixels per frame of the square's centre

    def placed(self, frame: int) -> Roi:
        """Where the last mask lies on `frame`: moved on by the last motion."""
        return self.pose.roi.moved(self.velocity * (frame - self.seen))

    def next_roi(self, frame: int) -> Roi:
        return self.pose.next_roi.moved(self.velocity * (frame - self.seen))


class MediaPipeEngine:
    """Engine protocol on CPU: uint8 BGR frames in, one soft matte per person out (NumPy).

    Keeps per-stream state (who is followed): one engine per stream."""

    def __init__(self, cfg: MediaPipeConfig, stills: bool = False):
        self.cfg, self.stills = cfg, stills
        self.detector = PoseDetector(cfg.threads, cfg.min_score)
        self.landmarker = PoseLandmarker(cfg.threads)
        self.people: list[_Person] = []
        self._frame = 0
        self._detected_at: int | None = None
        self._size: tuple[int, int] | None = None

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of one person's square as the landmark model reads it."""
        return self.landmarker.model.input_shape

    def infer(self, frames: Sequence[np.ndarray]) -> list[Instances]:
        return [self._one(frame) for frame in checked_frames(frames)]

    def _one(self, frame: np.ndarray) -> Instances:
        if self.stills or frame.shape[:2] != self._size:
            self.people, self._detected_at, self._size = [], None, frame.shape[:2]
        self._frame += 1
        if self.stills:
            self._read_still(frame)
        else:
            self._follow(frame)
        return self._instances(frame.shape[:2])

    def _follow(self, frame: np.ndarray) -> None:
        now = self._frame
        due = sorted(self.people, key=lambda p: p.seen)[:self.cfg.people_per_frame]
        for person in due:
            self._refresh(person, frame)
        if not self.people or self._detected_at is None or now - self._detected_at >= self.cfg.detect_every:
            self._detected_at = now
            for detection in self._newcomers(self.detector.detect(frame)):
                pose = self.landmarker(frame, detection.roi)
                if pose.presence >= self.cfg.min_presence:
                    self.people.append(_Person(pose, now, np.zeros(2)))
        self.people = [p for p in self.people if p.pose.presence >= self.cfg.min_presence]
        self._drop_duplicates()

    def _read_still(self, frame: np.ndarray) -> None:
        for detection in self.detector.detect(frame)[:self.cfg.max_people]:
            first = self.landmarker(frame, detection.roi)
            pose = self.landmarker(frame, first.next_roi) if first.presence >= self.cfg.min_presence else first
            if pose.presence >= self.cfg.min_presence:
                self.people.append(_Person(pose, self._frame, np.zeros(2)))
        self._drop_duplicates()

    def _refresh(self, person: _Person, frame: np.ndarray) -> None:
        now = self._frame
        pose = self.landmarker(frame, person.next_roi(now))
        moved = (pose.next_roi.centre - person.pose.next_roi.centre) / max(now - person.seen, 1)
        person.velocity = MOTION_SMOOTHING * moved + (1 - MOTION_SMOOTHING) * person.velocity
        person.pose, person.seen = pose, now

    def _newcomers(self, detections: list[Detection]) -> list[Detection]:
        """Detections whose face is not a followed person's, within the room left under max_people."""
        faces = [p.pose.landmarks[0] + p.velocity * (self._frame - p.seen) for p in self.people]
        new = [d for d in detections
               if all(np.hypot(*(d.face_centre - f)) > SAME_FACE * d.roi.size for f in faces)]
        return new[:max(self.cfg.max_people - len(self.people), 0)]

    def _drop_duplicates(self) -> None:
        """Two squares that converged on one person (a neighbour's square can slide onto them): keep the
        more certain."""
        kept: list[_Person] = []
        for person in sorted(self.people, key=lambda p: -p.pose.presence):
            if all(np.mean(np.hypot(*(person.pose.landmarks - k.pose.landmarks).T)) > SAME_BODY * k.pose.roi.size
                   for k in kept):
                kept.append(person)
        self.people = kept

    def _instances(self, size: tuple[int, int]) -> Instances:
        mattes = np.zeros((len(self.people), *size), np.float32)
        squares = [p.placed(self._frame) for p in self.people]
        for matte, person, square in zip(mattes, self.people, squares):
            square.paste(person.pose.mask, matte, person.pose.extent)
        shifts = [p.velocity * (self._frame - p.seen) for p in self.people]
        split_contested(mattes, [s.box(*size, p.pose.extent) for s, p in zip(squares, self.people)],
                        [p.pose.landmarks + shift for p, shift in zip(self.people, shifts)],
                        [p.pose.visible for p in self.people])
        return Instances(mattes, np.array([p.pose.presence for p in self.people], np.float32))

"""The learned CPU engine: real people without a green screen, a GPU or downloaded weights.

MediaPipe's pose detector finds people (livematte/mediapipe/detector.py); its pose landmark model
then reads each person's own square and gives their mask and the square for the next frame
(livematte/mediapipe/landmarks.py), so a person is followed without the detector. Each person has
their own mask, also where people touch; what two masks both claim goes to the nearer skeleton
(livematte/mediapipe/split.py).

The mattes are at most `matte_side` pixels long (640: a 720p frame's half, a 1080p frame's third),
which the masks' 256 pixels a person fill: what follows (tracking, fusion) then costs a quarter or less
of what it costs at frame size, and the compositor brings the mattes to the frame's size.

Both models cost the same whatever the picture holds, so the time per frame is bounded: the
`people_per_frame` people seen longest ago are read again while the others' masks are carried by the
picture's motion until their turn (livematte/mediapipe/motion.py), and the detector reads at most one
of the frame's overlapping squares a frame. A stream's first frame is read whole; then, every
`detect_every` frames, a square where the picture changed away from the people followed (a newcomer,
livematte/mediapipe/newcomers.py), and every `sweep_every` frames the next square in turn (someone the
detector missed who keeps still); every frame while nobody is followed. On a sweep's frame nobody is
read again, so that no frame costs both models (on the dancers' clip the engine's p95 fell from 24 to
16 ms), unless a cut (over CUT_SHARE of the picture changed at once) came within the last
`sweep_every` frames: the squares followed are then stale, and a detector's find in one would be
followed twice. Stills (a folder of unrelated photos) are read whole: every square, every person twice
(the second square from the first pass's landmarks), nothing carried over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from livematte.config import MediaPipeConfig
from livematte.engine.base import Engine, Instances, checked_frames
from livematte.frame import at_size
from livematte.mediapipe.detector import Detection, PoseDetector, Square, sweep
from livematte.mediapipe.landmarks import MASK_FLOOR, MIN_VISIBLE, Pose, PoseLandmarker
from livematte.mediapipe.motion import Box, Motion, box_slices
from livematte.mediapipe.newcomers import NewcomerWatch
from livematte.mediapipe.roi import Roi, on_grid
from livematte.mediapipe.split import split_contested

CUT_SHARE = 0.15  # a frame whose picture changed over this share of the grid is a cut (the dancers move 8 % at most)
SAME_BODY = 0.6  # a pose is another's body again when this share of its visible landmarks lies in the other's mask
MOTION_SMOOTHING = 0.5  # weight of the newest square's motion in the velocity


@dataclass
class _Person:
    pose: Pose
    since: int  # frame number they were first found
    seen: int  # frame number of `pose`
    velocity: np.ndarray  # (x, y) pixels per frame of the square's centre
    # what the next frame carries: their own matte before the split, as the box of the grid where it is
    # not zero and the patch inside it
    box: Box | None = None
    matte: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))

    def shift(self, frame: int) -> np.ndarray:
        """How far the last motion has taken them since `pose` was read, on `frame`."""
        return self.velocity * (frame - self.seen)

    def next_roi(self, frame: int) -> Roi:
        return self.pose.next_roi.moved(self.shift(frame))


class MediaPipeEngine(Engine):
    """Engine protocol on CPU: uint8 BGR frames in, one soft matte per person out (NumPy).

    Keeps per-stream state (who is followed): one engine per stream."""

    per_stream = True

    def __init__(self, cfg: MediaPipeConfig, stills: bool = False):
        self.cfg, self.stills = cfg, stills
        self.detector = PoseDetector(cfg.threads, cfg.min_score)
        self.landmarker = PoseLandmarker(cfg.threads)
        self.people: list[_Person] = []
        self._frame = 0
        self._cut_at = 0  # frame number of the last cut (over CUT_SHARE of the picture changed)
        self._next_square = 0  # the detector's place in its sweep of the frame's squares
        self._detected_at: int | None = None  # frame number of the detector's last run
        self._swept_at = 0  # frame number of the sweep's last square
        self._size: tuple[int, int] | None = None
        # of a frame of that size: the detector's squares in sweep order, the mattes' grid and its scale
        self._squares: list[Square] = []
        self._grid, self._scale = (0, 0), 1.0
        self._motion = Motion()
        self._watch = NewcomerWatch()

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of one person's square as the landmark model reads it."""
        return self.landmarker.model.input_shape

    def infer(self, frames: Sequence[np.ndarray]) -> list[Instances]:
        return [self._one(frame) for frame in checked_frames(frames)]

    def _one(self, frame: np.ndarray) -> Instances:
        if self.stills or frame.shape[:2] != self._size:
            self.people, self._next_square, self._detected_at, self._size = [], 0, None, frame.shape[:2]
            self._squares = sweep(*self._size)
            self._scale = min(1.0, self.cfg.matte_side / max(self._size))
            self._grid = (max(1, round(self._size[0] * self._scale)), max(1, round(self._size[1] * self._scale)))
            self._watch.reset(self._squares, self._scale)
            self._cut_at = self._frame + 1  # a new stream starts like a cut
        self._frame += 1
        picture = at_size(frame, self._grid)
        self._motion.see(picture)
        changed = self._motion.changed()
        if changed is not None and cv2.countNonZero(changed.view(np.uint8)) > CUT_SHARE * changed.size:
            self._cut_at = self._frame
        if self.stills:
            self._read_still(frame)
        else:
            self._follow(frame)
        return self._instances(picture)

    def _follow(self, frame: np.ndarray) -> None:
        if not (self._sweep_due() and self._frame - self._cut_at > self.cfg.sweep_every):
            self._read_again(frame)
        if self._detected_at is None:  # the stream's first frame: the whole frame, everyone at once
            self._detected_at = self._swept_at = self._frame
            self._add(frame, self.detector.detect(frame), second_look=False)
            return
        square = self._detector_square()
        if square is not None:
            self._detected_at = self._frame
            self._watch.read(square)
            self._add(frame, self.detector.detect(frame, [square]), second_look=False)

    def _read_again(self, frame: np.ndarray) -> None:
        """The people_per_frame people seen longest ago read again; who is no longer there let go."""
        for person in sorted(self.people, key=lambda p: p.seen)[:self.cfg.people_per_frame]:
            self._refresh(person, frame)
        for person in self.people:
            if person.pose.presence < self.cfg.min_presence and person.box is not None:
                self._watch.mark(person.box)
        self.people = [p for p in self.people if p.pose.presence >= self.cfg.min_presence]
        self._drop_duplicates()

    def _sweep_due(self) -> bool:
        return not self.people or self._frame - self._swept_at >= self.cfg.sweep_every

    def _detector_square(self) -> Square | None:
        """The square the detector reads on this frame, if any: the sweep's next one when nobody is
        followed or the sweep is due, else (every detect_every frames) the first one in the sweep's order
        where the picture changed."""
        squares, start = self._squares, self._next_square
        if self._sweep_due():
            self._swept_at, self._next_square = self._frame, start + 1
            return squares[start % len(squares)]
        if self._frame - self._detected_at < self.cfg.detect_every:
            return None
        return next((s for s in (squares[(start + k) % len(squares)] for k in range(len(squares)))
                     if self._watch.changed(s)), None)

    def _read_still(self, frame: np.ndarray) -> None:
        self._add(frame, self.detector.detect(frame), second_look=True)

    def _add(self, frame: np.ndarray, detections: list[Detection], second_look: bool) -> None:
        """Newcomers among `detections`: not a followed person's face, present in their square, not a
        followed body again (a detection on someone's hand or knee frames that someone)."""
        now = self._frame
        for detection in detections:
            if len(self.people) >= self.cfg.max_people:
                return
            if any(detection.same_person(p.pose.landmarks[0] + p.shift(now)) for p in self.people):
                continue
            pose = self.landmarker(frame, detection.roi)
            if second_look and pose.presence >= self.cfg.min_presence:
                pose = self.landmarker(frame, pose.next_roi)
            if pose.presence >= self.cfg.min_presence and not any(self._same_body(pose, p.pose) for p in self.people):
                self.people.append(_Person(pose, now, now, np.zeros(2)))

    def _refresh(self, person: _Person, frame: np.ndarray) -> None:
        now = self._frame
        pose = self.landmarker(frame, person.next_roi(now))
        if person.seen > person.since:  # the first read after the detector's square: a step, not motion
            moved = (pose.next_roi.centre - person.pose.next_roi.centre) / max(now - person.seen, 1)
            person.velocity = MOTION_SMOOTHING * moved + (1 - MOTION_SMOOTHING) * person.velocity
        person.pose, person.seen = pose, now

    def _drop_duplicates(self) -> None:
        """Two squares that converged on one person (a neighbour's square can slide onto them): the one
        followed longer stays. Only a pose read on this frame can have become another's."""
        kept: list[_Person] = []
        for person in sorted(self.people, key=lambda p: p.since):
            if not any(self._same_body(person.pose, k.pose) for k in kept if self._frame in (person.seen, k.seen)):
                kept.append(person)
        self.people = kept

    @staticmethod
    def _same_body(a: Pose, b: Pose) -> bool:
        """Whether pose a is b's body again: most of a's visible landmarks lie inside b's mask."""
        seen = a.visible >= MIN_VISIBLE
        return bool(seen.any()) and float(np.mean(b.roi.sample(b.mask, a.landmarks[seen]) > 0.5)) >= SAME_BODY

    def _instances(self, picture: np.ndarray) -> Instances:
        """Everyone's matte on the grid: a fresh read's mask, or the last matte carried by the motion (which
        Instances.fresh tells the fusion is no news)."""
        grid, scale, now = self._grid, self._scale, self._frame
        mattes = np.zeros((len(self.people), *grid), np.float32)
        followed = np.zeros(grid, np.uint8)
        for matte, person in zip(mattes, self.people):
            if person.seen == now:
                square = person.pose.roi.scaled(scale)
                square.paste(person.pose.mask, matte, person.pose.extent)
                person.box = square.box(*grid, person.pose.extent)
                person.matte = matte[box_slices(person.box)].copy()
            else:
                person.matte, person.box = self._motion.carry(person.matte, person.box)
                matte[box_slices(person.box)] = person.matte
            followed[box_slices(person.box)] |= person.matte >= MASK_FLOOR
        if not self.stills:
            self._watch.see(self._motion.changed(), followed)
        split_contested(mattes, [p.box for p in self.people],
                        [on_grid(p.pose.landmarks + p.shift(now), scale) for p in self.people],
                        [p.pose.visible for p in self.people], scale)
        extents = np.array([p.box or (0, 0, 0, 0) for p in self.people], np.int64).reshape(-1, 4)
        return Instances(mattes, np.array([p.pose.presence for p in self.people], np.float32), extents, picture,
                         np.array([p.seen == now for p in self.people], bool))

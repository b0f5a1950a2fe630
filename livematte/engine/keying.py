"""The embedded CPU engine: chroma key or clean-plate difference key, people split by connected components.

It is the default when no E2E-HIM weights are installed, so it must run well inside a 30 fps budget on
two shared cores: all per-pixel work is OpenCV on uint8 (vectorised, releases the GIL). People are found
at a reduced working resolution; each person's box is then keyed again at frame size, so mattes keep
full-resolution edges while the full-size work covers only the people.

Keying knows colours, not people: figures that touch or overlap form one connected component and come
out as one instance (the tracker sees them merge and split again).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from livematte.config import KeyingConfig, bgr
from livematte.engine.base import Engine, Instances, checked_frames

Mode = Literal["chroma", "difference"]
SCREEN_CHANNELS = (0, 1)  # BGR indices a screen colour may be dominant in: blue, green
MIN_SCREEN_STRENGTH = 30  # the screen's dominant channel must exceed the other two by this many levels
BORDER = 4  # rows/columns of the working frame's edge sampled to estimate the key colour
CLEANUP = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))


@dataclass(frozen=True)
class KeyingSettings:
    """How to key and how to cut the key into people.

    mode: "chroma" (green or blue screen) or "difference" (against a captured clean plate of the empty scene).
    key_colour: BGR of the screen; None estimates it from the median of each frame's border.
    screen_low, screen_high: the chroma ramp, as fractions of the key colour's screen strength
        (dominant channel minus the larger other channel): at or below `screen_low` a pixel is opaque,
        at or above `screen_high` it is screen. `screen_high` < 1 leaves room for uneven lighting.
    difference_low, difference_high: the difference ramp in levels of the largest per-channel difference to
        the plate: at or below `low` a pixel is background (camera noise), at or above `high` it is opaque.
    plate_frames: frames averaged into the clean plate (at start, and after each `capture_plate()`).
    scale: working resolution as a fraction of the frame size (keying, clean-up, components).
    min_area: least person area as a fraction of the frame area; smaller components are dropped.
    threshold: alpha above which a pixel belongs to a person's component.
    edge: dilation radius of each component, in working pixels, so that its soft edge belongs to it.
    """

    mode: Mode = "chroma"
    key_colour: tuple[int, int, int] | None = None
    screen_low: float = 0.1
    screen_high: float = 0.75
    difference_low: float = 10.0
    difference_high: float = 30.0
    plate_frames: int = 10
    scale: float = 0.5
    min_area: float = 0.002
    threshold: float = 0.5
    edge: int = 1

    @classmethod
    def from_config(cls, cfg: KeyingConfig) -> "KeyingSettings":
        """The settings `engine.keying:` asks for (the finer ones it does not name keep their defaults)."""
        return cls(mode=cfg.mode, key_colour=bgr(cfg.key_colour) if cfg.key_colour else None,
                   plate_frames=cfg.plate_frames, scale=cfg.scale, min_area=cfg.min_area)

    def __post_init__(self):
        if self.mode not in ("chroma", "difference"):
            raise ValueError(f"mode must be 'chroma' or 'difference', got {self.mode!r}")
        if self.key_colour is not None:
            if len(self.key_colour) != 3 or not all(0 <= int(c) <= 255 for c in self.key_colour):
                raise ValueError(f"key_colour must be three BGR levels in 0..255, got {self.key_colour}")
            screen_channel(np.asarray(self.key_colour, np.float32))
        if not 0.0 <= self.screen_low < self.screen_high <= 1.0:
            raise ValueError(f"need 0 <= screen_low < screen_high <= 1, got {self.screen_low}, {self.screen_high}")
        if not 0.0 <= self.difference_low < self.difference_high <= 255.0:
            raise ValueError(f"need 0 <= difference_low < difference_high <= 255, "
                             f"got {self.difference_low}, {self.difference_high}")
        if self.plate_frames < 1:
            raise ValueError(f"plate_frames must be >= 1, got {self.plate_frames}")
        if not 0.0 < self.scale <= 1.0:
            raise ValueError(f"scale must be in (0, 1], got {self.scale}")
        if not 0.0 <= self.min_area < 1.0:
            raise ValueError(f"min_area is a fraction of the frame area in [0, 1), got {self.min_area}")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if self.edge < 0:
            raise ValueError(f"edge must be >= 0, got {self.edge}")


class KeyingEngine(Engine):
    """Engine protocol on CPU: uint8 BGR frames in, one soft matte per separated person out (NumPy).

    In difference mode the first `plate_frames` frames are the clean plate (the empty scene; they return no
    people); `capture_plate()` captures it again, e.g. on a key press, from any thread. Per stream: the
    plate and the estimated key colour belong to one camera.
    """

    per_stream = True

    def __init__(self, settings: KeyingSettings | None = None):
        self.settings = settings or KeyingSettings()
        self._size: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self._plate: tuple[np.ndarray, np.ndarray] | None = None  # uint8 at frame size and at working size
        self._plate_sum: np.ndarray | None = None  # float32 running sum at frame size while capturing
        self._plate_count = 0
        self._capturing = self.settings.mode == "difference"

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the working resolution, which follows the frames."""
        if self._size is None:
            raise RuntimeError("the keying size follows the frames: call infer() first")
        return self._size

    @property
    def plate_frames(self) -> int | None:
        return self.settings.plate_frames if self.settings.mode == "difference" else None

    @property
    def plate_ready(self) -> bool:
        """Whether a clean plate is in place (difference mode keys people only once it is)."""
        return self._plate is not None and not self._capturing

    def capture_plate(self, plate: np.ndarray | None = None) -> None:
        """Take `plate` (a uint8 BGR picture of the empty scene) as the clean plate, or, without one,
        average the next `plate_frames` frames into a new plate (they return no people)."""
        with self._lock:
            if plate is None:
                self._plate_sum, self._plate_count, self._capturing = None, 0, True
            else:
                self._set_plate(checked_frames([plate])[0].copy())

    def despill(self, frame: np.ndarray) -> np.ndarray:
        """`frame` with the screen's colour cast removed (see `despill`), for compositing the people;
        unchanged in difference mode, where there is no screen."""
        frame = checked_frames([frame])[0]
        if self.settings.mode != "chroma":
            return frame
        key = self._key_colour(self._work(frame))
        return despill(frame, key)

    def infer(self, frames: Sequence[np.ndarray]) -> list[Instances]:
        return [self._infer_one(frame) for frame in checked_frames(frames)]

    def _infer_one(self, frame: np.ndarray) -> Instances:
        """Key the working-size frame to find the people, then key each person's box again at frame size,
        so edges (hair, fingers) keep full detail at a fraction of a full-frame key's cost."""
        small = self._work(frame)
        if self.settings.mode == "chroma":
            full_reference = small_reference = self._key_colour(small)
        else:
            plates = self._plates_for(frame, small)
            if plates is None:
                return no_people(frame.shape[:2])
            full_reference, small_reference = plates
        alpha = self._key(small, small_reference)
        self._size = alpha.shape

        def alpha_at(rows: slice, cols: slice) -> np.ndarray:
            if small is frame:
                return alpha[rows, cols]
            region = full_reference if full_reference.ndim == 1 else full_reference[rows, cols]
            return self._key(frame[rows, cols], region)
        return split_people(alpha, alpha_at, frame.shape[:2], self.settings)

    def _key(self, image: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """uint8 alpha of `image` against the key colour (chroma) or the same region of the clean plate."""
        s = self.settings
        if s.mode == "chroma":
            return chroma_alpha(image, reference, s.screen_low, s.screen_high)
        return difference_alpha(image, reference, s.difference_low, s.difference_high)

    def _work(self, frame: np.ndarray) -> np.ndarray:
        """The frame at working resolution (area averaging also filters sensor noise)."""
        h, w = frame.shape[:2]
        size = (max(1, round(w * self.settings.scale)), max(1, round(h * self.settings.scale)))
        return frame if size == (w, h) else cv2.resize(frame, size, interpolation=cv2.INTER_AREA)

    def _key_colour(self, small: np.ndarray) -> np.ndarray:
        if self.settings.key_colour is not None:
            return np.asarray(self.settings.key_colour, np.float32)
        return border_colour(small)

    def _plates_for(self, frame: np.ndarray, small: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The clean plate at frame and working size, or None while it is being captured (`frame` joins it)."""
        with self._lock:
            reference = self._plate_sum if self._capturing else self._plate[0]
            if reference is not None and reference.shape != frame.shape:
                raise ValueError(f"frame size changed from the clean plate's {reference.shape[1]}x{reference.shape[0]} "
                                 f"to {frame.shape[1]}x{frame.shape[0]}: call capture_plate() again")
            if not self._capturing:
                return self._plate
            if self._plate_sum is None:
                self._plate_sum = np.zeros(frame.shape, np.float32)
            cv2.accumulate(frame, self._plate_sum)
            self._plate_count += 1
            if self._plate_count == self.settings.plate_frames:
                self._set_plate(cv2.convertScaleAbs(self._plate_sum, alpha=1.0 / self._plate_count))
            return None

    def _set_plate(self, plate: np.ndarray) -> None:
        self._plate = plate, self._work(plate)
        self._plate_sum, self._plate_count, self._capturing = None, 0, False
        self._size = self._plate[1].shape[:2]


def border_colour(image: np.ndarray) -> np.ndarray:
    """Median BGR of the frame's outer rows and columns: the screen, as long as people cover less than half."""
    b = min(BORDER, max(1, min(image.shape[:2]) // 4))
    ring = np.concatenate([image[:b].reshape(-1, 3), image[-b:].reshape(-1, 3),
                           image[:, :b].reshape(-1, 3), image[:, -b:].reshape(-1, 3)])
    key = np.median(ring, axis=0).astype(np.float32)
    screen_channel(key)
    return key


def screen_channel(key: np.ndarray) -> tuple[int, float]:
    """(BGR index of the screen's dominant channel, its strength over the other two) for a green or blue key."""
    channel = int(np.argmax(key))
    strength = float(key[channel] - np.delete(key, channel).max())
    if channel not in SCREEN_CHANNELS or strength < MIN_SCREEN_STRENGTH:
        raise ValueError(f"key colour BGR {tuple(int(c) for c in key)} is not a green or blue screen (the green or "
                         f"blue level must exceed the others by {MIN_SCREEN_STRENGTH}): set engine.keying.key_colour "
                         "to the screen's colour, engine.keying.mode to difference (an empty room at start), or "
                         "engine.kind to mediapipe (people without a screen)")
    return channel, strength


def ramp(zero_at: float, one_at: float) -> np.ndarray:
    """uint8 look-up table mapping a level linearly from 0 (at `zero_at`) to 255 (at `one_at`), clipped."""
    levels = np.arange(256, dtype=np.float32)
    return np.clip((levels - zero_at) / (one_at - zero_at) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def screen_strength(image: np.ndarray, channel: int) -> np.ndarray:
    """uint8 per-pixel dominant-channel excess (the colour-difference key), 0 where it is negative."""
    planes = cv2.split(image)
    others = [planes[c] for c in range(3) if c != channel]
    return cv2.subtract(planes[channel], cv2.max(others[0], others[1]))


def chroma_alpha(image: np.ndarray, key: np.ndarray, low: float, high: float) -> np.ndarray:
    """uint8 alpha: opaque where the screen strength is below `low` of the key's, clear above `high` of it.

    The colour-difference key is linear in the mix of person and screen at soft edges, and 0 for every
    colour without an excess of the screen's channel (skin, grey, red, ...), so one ramp serves everyone.
    """
    channel, strength = screen_channel(key)
    return cv2.LUT(screen_strength(image, channel), ramp(high * strength, low * strength))


def difference_alpha(image: np.ndarray, plate: np.ndarray, low: float, high: float) -> np.ndarray:
    """uint8 alpha from the largest per-channel difference to the clean plate, with light clean-up:
    a 3x3 median drops isolated noisy pixels, an opening removes specks, a closing fills pinholes."""
    diff = cv2.absdiff(image, plate)
    b, g, r = cv2.split(diff)
    alpha = cv2.LUT(cv2.max(cv2.max(b, g), r), ramp(low, high))
    alpha = cv2.medianBlur(alpha, 3)
    alpha = cv2.morphologyEx(alpha, cv2.MORPH_OPEN, CLEANUP)
    return cv2.morphologyEx(alpha, cv2.MORPH_CLOSE, CLEANUP)


def despill(frame: np.ndarray, key_colour: Sequence[float] | np.ndarray) -> np.ndarray:
    """`frame` with the screen colour's dominant channel limited to the larger of the other two.

    Light bounced off the screen tints hair and edges green (or blue); capping that channel removes the
    tint and leaves colours without an excess of it untouched. Returns a new uint8 BGR frame.
    """
    channel, _ = screen_channel(np.asarray(key_colour, np.float32))
    planes = list(cv2.split(frame))
    others = [planes[c] for c in range(3) if c != channel]
    planes[channel] = cv2.min(planes[channel], cv2.max(others[0], others[1]))
    return cv2.merge(planes)


def no_people(frame_size: tuple[int, int]) -> Instances:
    return Instances(np.zeros((0, *frame_size), np.float32), np.zeros(0, np.float32))


def split_people(alpha: np.ndarray, alpha_at: Callable[[slice, slice], np.ndarray], frame_size: tuple[int, int],
                 settings: KeyingSettings) -> Instances:
    """One soft matte at frame size per large enough connected component of (working alpha > threshold).

    `alpha_at(rows, cols)` keys a box of the frame at frame size. A person's matte is that alpha limited
    to their component, dilated by `edge` (so the soft edge belongs to it) and upsampled to frame size.
    Its probability is `min(1, area / (4 min_area)) * min(1, 2 solidity)`: components well above the
    minimum area whose silhouette fills at least half its convex hull (a person, limbs included) score 1;
    small or stringy ones (noise, shadows, cables) score less.
    """
    h, w = alpha.shape
    frame_h, frame_w = frame_size
    binary = (alpha > round(settings.threshold * 255)).view(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    min_area = max(settings.min_area * h * w, 1.0)
    keep = [k for k in range(1, count) if stats[k, cv2.CC_STAT_AREA] >= min_area]
    mattes = np.zeros((len(keep), frame_h, frame_w), np.float32)
    probs = np.zeros(len(keep), np.float32)
    fy, fx = frame_h / h, frame_w / w
    pad = settings.edge + 1
    dilate = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * settings.edge + 1,) * 2)
    for i, k in enumerate(keep):
        x, y, bw, bh, area = stats[k]
        x0, y0, x1, y1 = max(x - pad, 0), max(y - pad, 0), min(x + bw + pad, w), min(y + bh + pad, h)
        member = (labels[y0:y1, x0:x1] == k).view(np.uint8)
        probs[i] = min(1.0, area / (4.0 * min_area)) * min(1.0, 2.0 * solidity(member, area))
        rows = slice(int(y0 * fy), min(int(np.ceil(y1 * fy)), frame_h))
        cols = slice(int(x0 * fx), min(int(np.ceil(x1 * fx)), frame_w))
        region = upsample(cv2.dilate(member, dilate) * np.uint8(255), (y0, x0), (rows, cols), (fy, fx))
        np.multiply(cv2.min(alpha_at(rows, cols), region), np.float32(1 / 255), out=mattes[i, rows, cols],
                    casting="unsafe")
    return Instances(mattes, probs)


def solidity(member: np.ndarray, area: int) -> float:
    """Component area over the area of its convex hull (1 for a convex blob)."""
    contours, _ = cv2.findContours(member, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull = cv2.contourArea(cv2.convexHull(np.concatenate(contours)))
    return min(1.0, area / hull) if hull > 0 else 1.0


def upsample(crop: np.ndarray, origin: tuple[int, int], box: tuple[slice, slice],
             factor: tuple[float, float]) -> np.ndarray:
    """Bilinear upsample of a working-size `crop` (top-left at `origin` = (y, x)) to the frame-size `box`
    (rows, cols), aligned as a whole-frame resize is: pixel centres map as x_work = (x + 0.5) / fx - 0.5."""
    (y0, x0), (rows, cols), (fy, fx) = origin, box, factor
    if (fy, fx) == (1.0, 1.0):
        return crop[rows.start - y0:rows.stop - y0, cols.start - x0:cols.stop - x0]
    to_crop = np.float32([[1 / fx, 0, (cols.start + 0.5) / fx - 0.5 - x0],
                          [0, 1 / fy, (rows.start + 0.5) / fy - 0.5 - y0]])
    return cv2.warpAffine(crop, to_crop, (cols.stop - cols.start, rows.stop - rows.start),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)

"""Builds the output frame: a background layer, then every person with their own effect, back to front.

Depth order: a person whose matte reaches lower in the frame stands nearer the camera and is drawn
later. Background and own-background images are decoded once and resized once per output size;
a video background loops. The per-pixel work is kernels.composite (CUDA on GPU, numba on CPU).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

import av
import cv2
import numpy as np

from kernels import Background, PersonLayers, Scene, composite, feather, isolated_layer, person_boxes
from kernels._arrays import kind_of, native, restore, xp_of
from kernels._extent import grown, nonzero_extents
from livematte.config import BackgroundConfig, EffectsConfig, bgr
from livematte.effects import EFFECT_CODES, EffectAssignments, select

log = logging.getLogger(__name__)

BACKGROUND_KINDS = {
    "original": Background.ORIGINAL,
    "blur": Background.BLUR,
    "color": Background.COLOR,
    "image": Background.IMAGE,
    "video": Background.IMAGE,
    "transparent": Background.TRANSPARENT,
}


def scene_for(cfg: EffectsConfig) -> Scene:
    """The compositing kernels' frame-wide settings from `effects:` (kernels/ cannot read the config)."""
    background = cfg.background
    return Scene(background=BACKGROUND_KINDS[background.kind], color=tuple(map(float, bgr(background.color))),
                 blur_radius=background.blur_radius, privacy_radius=cfg.privacy_radius, pixel_block=cfg.pixel_block,
                 spotlight_dim=cfg.spotlight_dim, region_feather=cfg.region_feather)


class CompositorError(ValueError):
    """A background or effect file that cannot be used; the message names it."""


@dataclass(frozen=True)
class Composite:
    image: Any  # (H, W, 3) BGR, or (H, W, 4) BGRA with a transparent background; the frame's kind
    isolated: dict[int, Any] = field(default_factory=dict)  # track id -> (H, W, 4) BGRA, that person alone
    depth_order: list[int] = field(default_factory=list)  # track ids back to front


@lru_cache(maxsize=16)
def _read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise CompositorError(f"cannot read background image {path}: check the path (PNG or JPEG)")
    return image


@lru_cache(maxsize=16)
def _fitted(path: Path, width: int, height: int) -> np.ndarray:
    """The image scaled to cover width x height (aspect kept) and centre-cropped: no bars, no stretch."""
    image = _read_image(path)
    scale = max(width / image.shape[1], height / image.shape[0])
    size = (max(width, round(image.shape[1] * scale)), max(height, round(image.shape[0] * scale)))
    resized = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    top, left = (size[1] - height) // 2, (size[0] - width) // 2
    return np.ascontiguousarray(resized[top:top + height, left:left + width])


class LoopingVideo:
    """A background video: one frame per output frame, from the start again at the end, or at the first
    damaged frame (a copy cut short, a bad sector): a damaged background must not end a live show."""

    def __init__(self, path: Path):
        try:
            self._container = av.open(str(path))
        except (av.error.FFmpegError, OSError) as exc:
            raise CompositorError(f"cannot open background video {path}: {exc}") from None
        if not self._container.streams.video:
            raise CompositorError(f"background video {path} has no video stream")
        self.path = path
        self._frames = self._container.decode(video=0)
        self._damaged = False

    def next(self, width: int, height: int) -> np.ndarray:
        frame = self._decoded()
        if frame is None:
            self._container.seek(0)
            self._frames = self._container.decode(video=0)
            frame = self._decoded()
        if frame is None:
            raise CompositorError(f"background video {self.path} has no frame that decodes; "
                                  "check the file (effects: background: path)")
        image = frame.to_ndarray(format="bgr24")
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)

    def _decoded(self) -> av.VideoFrame | None:
        """The next frame; None at the end and at damage."""
        try:
            return next(self._frames, None)
        except av.error.FFmpegError as exc:
            if not self._damaged:
                log.warning("background video %s is damaged (%s); it loops what comes before", self.path, exc)
            self._damaged = True
            return None

    def close(self) -> None:
        self._container.close()


class Compositor:
    def __init__(self, cfg: EffectsConfig):
        self.cfg = cfg
        self.effects = EffectAssignments(cfg)
        background = cfg.background
        self.scene = scene_for(cfg)
        self._video = LoopingVideo(background.path) if background.kind == "video" else None
        if background.kind == "image":
            _read_image(background.path)  # fail now, not on the first frame
        for spec in [cfg.default, *cfg.people.values()]:
            if spec.background is not None:
                _read_image(spec.background)
        self._last: tuple[Any, list[int]] | None = None
        self._stills: dict[tuple, Any] = {}  # still images as the compositor uses them, by what they show
        self._canvas = MatteCanvas()

    def render(self, frame, mattes, track_ids: Sequence[int], extents: np.ndarray | None = None) -> Composite:
        """The output for one frame. frame: (H, W, 3) uint8 BGR; mattes: (N, H, W) float32 per track id,
        or (NumPy) smaller with the frame's aspect (brought to its size here); extents: where each matte
        is non-zero, in the mattes' pixels, when known (kernels.feather)."""
        ids = [int(i) for i in track_ids]
        if len(ids) != mattes.shape[0]:
            raise ValueError(f"got {mattes.shape[0]} mattes but {len(ids)} track ids")
        kind = kind_of(frame)
        src, alphas = native(frame), native(mattes)
        xp = xp_of(src)
        height, width = src.shape[:2]
        scale = alphas.shape[2] / width  # 1, or the learned engine's smaller mattes (feathered before enlarging)
        if self.cfg.feather and ids:
            radius = max(1, round(self.cfg.feather * scale))
            alphas = feather(alphas, radius, extents=extents)
            extents = None if extents is None else grown(np.asarray(extents, np.int64), radius, *alphas.shape[1:])
        boxes = person_boxes(alphas) if ids else np.zeros((0, 4), np.float32)  # small mattes: less work
        if scale != 1:
            boxes = _scaled_boxes(boxes, width / alphas.shape[2], height / alphas.shape[1])
        order = sorted(range(len(ids)), key=lambda i: (boxes[i, 3], boxes[i, 1]))  # lower bottom edge = nearer = later
        if scale != 1:  # enlarged straight into depth order: no copy of frame-size mattes
            ordered, extents = self._canvas.enlarged(alphas, extents, height, width, order)
        else:
            ordered = alphas[order] if ids else alphas
            extents = None if extents is None or not ids else extents[order]
        specs = [self.effects.get(ids[i]) for i in order]
        own_paths = sorted({s.background for s in specs if s.background is not None})
        layers = PersonLayers(
            effect=np.array([int(EFFECT_CODES[s.effect]) for s in specs], np.int32),
            tint=np.array([bgr(s.tint) for s in specs], np.float32).reshape(-1, 3),
            strength=np.array([s.strength for s in specs], np.float32),
            background=np.array([own_paths.index(s.background) if s.background is not None else -1 for s in specs],
                                np.int32),
        )
        own_images = None if not own_paths else self._still(
            xp, ("own", *own_paths, width, height), lambda: np.stack([_fitted(p, width, height) for p in own_paths]))
        out = composite(src, ordered, layers, self.scene, image=self._background_image(xp, width, height),
                        own_images=own_images, boxes=boxes[order] if ids else None, extents=extents)
        in_depth = [ids[i] for i in order]
        isolated = {track: restore(isolated_layer(src, ordered[j]), kind)
                    for j, track in enumerate(in_depth) if track in self.cfg.isolate}
        self._last = (ordered, in_depth)
        return Composite(restore(out, kind), isolated, in_depth)

    def select(self, x: int, y: int) -> int | None:
        """The track id of the person under pixel (x, y) of the last rendered frame, or None."""
        if self._last is None:
            return None
        return select(self._last[0], self._last[1], x, y)

    def _background_image(self, xp, width: int, height: int):
        """The background picture on the frame's device (xp: numpy or cupy), or None."""
        background: BackgroundConfig = self.cfg.background
        if background.kind == "image":
            return self._still(xp, ("background", background.path, width, height),
                               lambda: _fitted(background.path, width, height))
        if self._video is not None:
            return xp.asarray(self._video.next(width, height))
        return None

    def _still(self, xp, key: tuple, make: Callable[[], np.ndarray]):
        """A still image made (and on a GPU uploaded) once, not every frame."""
        key = (xp.__name__, *key)
        if key not in self._stills:
            if len(self._stills) >= 8:  # sizes or settings changed: drop the old ones
                self._stills.clear()
            self._stills[key] = xp.asarray(make())
        return self._stills[key]

    def close(self) -> None:
        if self._video is not None:
            self._video.close()


def _scaled_boxes(boxes: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """person_boxes ([x0, y0, x1, y1], inclusive pixels) of small mattes in the pixels of a frame sx, sy
    times larger: the frame pixels those matte pixels cover."""
    out = boxes.copy()
    present = boxes[:, 2] >= boxes[:, 0]
    out[present] = np.stack([np.floor(boxes[present, 0] * sx), np.floor(boxes[present, 1] * sy),
                             np.ceil((boxes[present, 2] + 1) * sx) - 1, np.ceil((boxes[present, 3] + 1) * sy) - 1],
                            axis=1)
    return out


class MatteCanvas:
    """Frame-size arrays for the enlarged mattes, kept from frame to frame: two in turn, since select() may
    still read the last frame's while the next is drawn. Of each, only what its last use wrote and this
    one did not overwrite is cleared: zeroing eight 720p mattes anew cost 3 ms a frame, clearing all
    that the last use wrote 0.7 ms a 1080p frame of three dancers."""

    def __init__(self) -> None:
        self._planes: list[np.ndarray | None] = [None, None]
        self._written = [np.zeros((0, 4), np.int64)] * 2  # per array: the extents its last use wrote
        self._turn = 0

    def enlarged(self, alphas: np.ndarray, extents: np.ndarray | None, height: int, width: int,
                 order: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """enlarged(...) into this turn's array."""
        self._turn ^= 1
        planes = self._planes[self._turn]
        before = self._written[self._turn]
        if planes is None or planes.shape[0] < len(order) or planes.shape[1:] != (height, width):
            planes = self._planes[self._turn] = np.zeros((len(order), height, width), np.float32)
            before = before[:0]
        out = planes[:len(order)]
        written = enlarged(alphas, extents, out, order)  # each writes every pixel of its extent
        for j, old in enumerate(before):
            _clear_outside(planes[j], old, written[j] if j < len(written) else (0, 0, 0, 0))
        self._written[self._turn] = written
        return out, written


def _clear_outside(plane: np.ndarray, old: Sequence[int], new: Sequence[int]) -> None:
    """Zero what the box `old` [y0, y1, x0, x1) of `plane` holds outside the box `new`: the rows above and
    below `new`, then left and right of it."""
    top, bottom, left, right = old
    new_top, new_bottom, new_left, new_right = new
    plane[top:min(bottom, new_top), left:right] = 0.0
    plane[max(top, new_bottom):bottom, left:right] = 0.0
    rows = slice(max(top, new_top), min(bottom, new_bottom))
    plane[rows, left:min(right, new_left)] = 0.0
    plane[rows, max(left, new_right):right] = 0.0


def enlarged(alphas: np.ndarray, extents: np.ndarray | None, out: np.ndarray, order: Sequence[int]) -> np.ndarray:
    """(N, h, w) mattes `alphas`, in `order` (indices of them), brought to zeroed (len(order), height,
    width) `out` as cv2.resize brings them (bilinear, pixel centres aligned), working only around where
    each is non-zero (`extents` in the mattes' pixels, or found); returns extents [y0, y1, x0, x1) in the
    frame's pixels that hold every non-zero value (and all that was written)."""
    if not isinstance(alphas, np.ndarray):
        raise TypeError("mattes smaller than the frame come only from CPU engines, as NumPy arrays")
    _, h, w = alphas.shape
    _, height, width = out.shape
    found = nonzero_extents(alphas) if extents is None else np.asarray(extents, np.int64)
    out_extents = np.zeros((len(order), 4), np.int64)
    sy, sx = height / h, width / w
    for j, i in enumerate(order):
        y0, y1, x0, x1 = found[i]
        if y1 <= y0 or x1 <= x0:
            continue
        # frame pixels whose centre falls within one matte pixel of the extent (bilinear support)
        top, bottom = max(0, math.floor((y0 - 0.5) * sy - 0.5)), min(height, math.ceil((y1 + 0.5) * sy - 0.5) + 1)
        left, right = max(0, math.floor((x0 - 0.5) * sx - 0.5)), min(width, math.ceil((x1 + 0.5) * sx - 0.5) + 1)
        to_matte = np.array([[1 / sx, 0, (left + 0.5) / sx - 0.5], [0, 1 / sy, (top + 0.5) / sy - 0.5]])
        cv2.warpAffine(alphas[i], to_matte, (right - left, bottom - top), dst=out[j, top:bottom, left:right],
                       flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
        out_extents[j] = top, bottom, left, right
    return out_extents

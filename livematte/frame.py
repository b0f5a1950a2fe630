"""The unit that flows from a source through the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np


@dataclass(frozen=True)
class Frame:
    """One captured picture.

    `capture_ns` is time.monotonic_ns() when the source received the frame: glass-to-glass latency
    is measured from it. `pts` is the source's own presentation time in seconds (None when the
    source has none, e.g. a webcam through OpenCV).
    """

    pixels: np.ndarray  # uint8 BGR, H x W x 3, C-contiguous
    index: int
    capture_ns: int
    pts: float | None = None
    alphas: np.ndarray | None = field(default=None, repr=False)  # ground truth (N, H, W) float32, synthetic only

    @property
    def height(self) -> int:
        return self.pixels.shape[0]

    @property
    def width(self) -> int:
        return self.pixels.shape[1]


def as_bgr(image: np.ndarray) -> np.ndarray:
    """Any decoded picture (grey, grey+alpha, BGR, BGRA; 8 or 16 bit) as C-contiguous uint8 BGR.

    Cameras and image files come in all of these; everything downstream assumes uint8 BGR.
    """
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ValueError(f"unsupported pixel type {image.dtype}: expected 8- or 16-bit images")
    if image.ndim == 2:
        image = image[..., None]
    channels = image.shape[2]
    if channels == 1:
        image = np.repeat(image, 3, axis=2)
    elif channels == 2:
        image = np.repeat(image[..., :1], 3, axis=2)
    elif channels == 4:
        image = image[..., :3]
    elif channels != 3:
        raise ValueError(f"unsupported image with {channels} channels: expected grey, BGR or BGRA")
    return np.ascontiguousarray(image)


def at_size(frame, size: tuple[int, int]):
    """The frame at (height, width) `size`, averaged over the pixels each one covers; as it is when it
    has that size."""
    if tuple(frame.shape[:2]) == tuple(size):
        return frame
    if not isinstance(frame, np.ndarray):
        raise TypeError("mattes smaller than the frame come only from CPU engines, with NumPy frames")
    return cv2.resize(frame, (size[1], size[0]), interpolation=cv2.INTER_AREA)

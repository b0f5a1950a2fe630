"""The paper's training augmentations on one sample: affine warp, random crop to the training
size, horizontal flip (image and alphas alike), then contrast, gamma and saturation (image only).

Every draw comes from the generator passed in, so a sample's augmentation is reproducible from its
seed (resumed training sees the same data).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

from livematte.train.config import AugmentConfig
from livematte.train.layout import Sample


def augment(sample: Sample, size: int, cfg: AugmentConfig, rng: np.random.Generator) -> Sample:
    """-> a size x size sample."""
    image, alphas = sample.image, sample.alphas
    if rng.random() < cfg.affine:
        image, alphas = random_affine(image, alphas, cfg, rng)
    image, alphas = random_crop(image, alphas, size, cfg.zoom, rng)
    if rng.random() < cfg.flip:
        image, alphas = image[:, ::-1], alphas[:, :, ::-1]
    image = photometric(image, cfg, rng)
    return Sample(sample.name, np.ascontiguousarray(image), np.ascontiguousarray(alphas))


def random_affine(image: np.ndarray, alphas: np.ndarray, cfg: AugmentConfig,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Rotation, shear and scale about the image centre; uncovered corners are black with zero alpha."""
    h, w = image.shape[:2]
    angle = math.radians(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg))
    shear = math.tan(math.radians(rng.uniform(-cfg.shear_deg, cfg.shear_deg)))
    scale = rng.uniform(1 - cfg.scale, 1 + cfg.scale)
    cos, sin = math.cos(angle), math.sin(angle)
    linear = scale * np.array([[cos, -sin], [sin, cos]]) @ np.array([[1.0, shear], [0.0, 1.0]])
    centre = np.array([(w - 1) / 2, (h - 1) / 2])
    matrix = np.hstack([linear, (centre - linear @ centre)[:, None]])

    def warp(x: np.ndarray) -> np.ndarray:
        return cv2.warpAffine(x, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    return warp(image), _each(alphas, warp, (h, w))


def random_crop(image: np.ndarray, alphas: np.ndarray, size: int, zoom: float,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Scale so the short side is size x U(1, zoom), then cut a random size x size window."""
    h, w = image.shape[:2]
    scale = size * rng.uniform(1.0, zoom) / min(h, w)
    new_h, new_w = max(size, math.ceil(h * scale)), max(size, math.ceil(w * scale))
    if (new_h, new_w) != (h, w):
        interpolation = cv2.INTER_AREA if new_h < h else cv2.INTER_LINEAR

        def resize(x: np.ndarray) -> np.ndarray:
            return cv2.resize(x, (new_w, new_h), interpolation=interpolation)

        image, alphas = resize(image), _each(alphas, resize, (new_h, new_w))
    top = int(rng.integers(0, new_h - size + 1))
    left = int(rng.integers(0, new_w - size + 1))
    window = np.s_[top: top + size, left: left + size]
    return image[window], np.clip(alphas[(slice(None), *window)], 0.0, 1.0)


def photometric(image: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Contrast about the mean grey level, gamma, saturation in HSV; uint8 BGR in and out."""
    x = image.astype(np.float32)
    mean = float(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).mean())
    x = np.clip(mean + (x - mean) * rng.uniform(1 - cfg.contrast, 1 + cfg.contrast), 0, 255)
    x = 255.0 * (x / 255.0) ** math.exp(rng.uniform(-math.log(cfg.gamma), math.log(cfg.gamma)))
    hsv = cv2.cvtColor(x.astype(np.float32) / 255.0, cv2.COLOR_BGR2HSV)
    hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(1 - cfg.saturation, 1 + cfg.saturation), 0, 1)
    return np.clip(cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _each(alphas: np.ndarray, fn: Callable[[np.ndarray], np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Apply an image transform to every alpha (OpenCV limits channel counts); (0, *shape) for nobody."""
    if len(alphas) == 0:
        return np.zeros((0, *shape), np.float32)
    return np.stack([fn(np.ascontiguousarray(a)) for a in alphas])

"""Composites for training: people cut out of image-instance samples, pasted onto a background.

People are pasted back to front (a lower bottom edge is nearer, as in the compositor), and each
paste removes what it covers from the alphas of the people behind it, so every alpha stays the
visible part of its person and the alphas never sum above 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from livematte.train.layout import Sample


@dataclass(frozen=True)
class Cutout:
    """One person: colours (h, w, 3) float32 BGR and alpha (h, w) float32, cropped to the person."""

    colour: np.ndarray
    alpha: np.ndarray


def cut_out(sample: Sample, person: int) -> Cutout:
    """The bounding box of one person's alpha; colours are the image's (soft edges keep its background)."""
    alpha = sample.alphas[person]
    rows, cols = np.nonzero(alpha > 0)
    if rows.size == 0:
        raise ValueError(f"sample {sample.name}: person {person} has an empty alpha")
    box = np.s_[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]
    return Cutout(sample.image[box].astype(np.float32), alpha[box].copy())


def compose(background: np.ndarray, cutouts: list[Cutout], person_height: tuple[float, float],
            rng: np.random.Generator, name: str = "composite") -> Sample:
    """Paste the cut-outs onto a uint8 BGR background at random heights and places."""
    height, width = background.shape[:2]
    canvas = background.astype(np.float32)
    placed = [_place(c, height, width, person_height, rng) for c in cutouts]
    placed.sort(key=lambda p: p[0] + p[2].alpha.shape[0])  # by bottom edge: farthest first
    alphas = np.zeros((len(placed), height, width), np.float32)
    for i, (top, left, cutout) in enumerate(placed):
        h, w = cutout.alpha.shape
        y0, y1, x0, x1 = max(top, 0), min(top + h, height), max(left, 0), min(left + w, width)
        if y0 >= y1 or x0 >= x1:
            continue
        a = cutout.alpha[y0 - top: y1 - top, x0 - left: x1 - left]
        colour = cutout.colour[y0 - top: y1 - top, x0 - left: x1 - left]
        alphas[:i, y0:y1, x0:x1] *= 1.0 - a
        alphas[i, y0:y1, x0:x1] = a
        region = canvas[y0:y1, x0:x1]
        region *= 1.0 - a[..., None]
        region += colour * a[..., None]
    image = np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
    return Sample(name, image, alphas)


def _place(cutout: Cutout, height: int, width: int, person_height: tuple[float, float],
           rng: np.random.Generator) -> tuple[int, int, Cutout]:
    """Scale to a random height (no wider than the canvas) and pick a place mostly inside it."""
    h, w = cutout.alpha.shape
    scale = min(height * rng.uniform(*person_height) / h, width / w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resized = Cutout(cv2.resize(cutout.colour, size, interpolation=cv2.INTER_LINEAR),
                     np.clip(cv2.resize(cutout.alpha, size, interpolation=cv2.INTER_LINEAR), 0, 1))
    sw, sh = size
    top = int(rng.integers(-(sh // 4), max(height - 3 * sh // 4, -(sh // 4)) + 1))
    left = int(rng.integers(-(sw // 4), max(width - 3 * sw // 4, -(sw // 4)) + 1))
    return top, left, resized

"""A deterministic scene of walking person-like figures on chroma green, with exact per-person alphas.

It is the embedded default source (no camera needed) and the ground truth for tests and quality
benchmarks: figures cross and occlude each other, edges are anti-aliased (fractional alpha), and
each figure's alpha is its visible part (covered parts removed), so the alphas never sum above 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SHIRTS = np.array([(40, 40, 200), (200, 80, 40), (40, 200, 230), (150, 50, 150), (90, 90, 90),
                   (30, 120, 240), (220, 200, 190), (60, 30, 120), (160, 160, 40), (20, 20, 20)], np.uint8)
SKINS = np.array([(140, 170, 225), (100, 135, 190), (60, 90, 140), (170, 195, 240), (80, 110, 160)], np.uint8)
TROUSERS = np.array([(70, 40, 30), (40, 40, 40), (120, 90, 60), (50, 50, 110), (150, 130, 120)], np.uint8)
AA = 3  # sub-pixel bits for cv2 drawing: smooth motion and anti-aliased edges


@dataclass(frozen=True)
class Figure:
    """One walker: where its feet are, how it sways across the frame, and its colours (BGR)."""

    feet_y: float  # fraction of frame height; lower = nearer = larger and drawn later
    centre_x: float  # fraction of frame width
    sway: float  # fraction of frame width
    period_s: float
    phase: float
    shirt: tuple[int, int, int]
    skin: tuple[int, int, int]
    trousers: tuple[int, int, int]


class SyntheticScene:
    def __init__(self, width: int, height: int, people: int, seed: int = 0, fps: float = 30.0, motion: float = 1.0):
        """`motion` scales how far and how fast figures move: 1 walks across the frame (crossings),
        about 0.05 is a video call (people in place, swaying slightly), 0 is still."""
        self.width, self.height, self.fps = width, height, fps
        rng = np.random.default_rng(seed)
        figures = [
            Figure(
                feet_y=float(rng.uniform(0.80, 0.98)),
                centre_x=float((i + 0.5) / max(people, 1) + rng.uniform(-0.05, 0.05)),
                sway=float(rng.uniform(0.08, 0.25)) * motion,
                period_s=float(rng.uniform(3.0, 7.0)),
                phase=float(rng.uniform(0, 2 * np.pi)),
                shirt=tuple(int(c) for c in SHIRTS[rng.integers(len(SHIRTS))]),
                skin=tuple(int(c) for c in SKINS[rng.integers(len(SKINS))]),
                trousers=tuple(int(c) for c in TROUSERS[rng.integers(len(TROUSERS))]),
            )
            for i in range(people)
        ]
        self.figures = sorted(figures, key=lambda f: f.feet_y)  # back to front
        self.background = _green_screen(width, height, rng)

    def render(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame `index`: BGR uint8 (H, W, 3) and visible alphas float32 (N, H, W), back to front.
        Colours are blended in float only inside the box around all figures (a live source's budget)."""
        t = index / self.fps
        image = self.background.copy()
        alphas = np.zeros((len(self.figures), self.height, self.width), np.float32)
        drawn = [(i, d) for i, fig in enumerate(self.figures) if (d := _draw_figure(fig, t, self.width, self.height))]
        if not drawn:
            return image, alphas
        boxes = np.array([box for _, (box, _, _) in drawn])
        top, left = boxes[:, 0].min(), boxes[:, 2].min()
        bottom, right = boxes[:, 1].max(), boxes[:, 3].max()
        canvas = image[top:bottom, left:right].astype(np.float32)
        for i, ((y0, y1, x0, x1), alpha, colour) in drawn:
            alphas[:i, y0:y1, x0:x1] *= 1.0 - alpha
            alphas[i, y0:y1, x0:x1] = alpha
            roi = canvas[y0 - top:y1 - top, x0 - left:x1 - left]
            roi *= 1.0 - alpha[..., None]
            roi += colour
        image[top:bottom, left:right] = np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
        return image, alphas


def _green_screen(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """Chroma green with a soft vertical lighting gradient and sensor-like noise (fixed per seed)."""
    shade = np.linspace(0.85, 1.1, height, dtype=np.float32)[:, None, None]
    base = np.array([50, 175, 60], np.float32) * shade
    noise = rng.normal(0, 3.0, (height, width, 3)).astype(np.float32)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def _draw_figure(fig: Figure, t: float, width: int, height: int):
    """Rasterise one figure at time t into its bounding box: (box, alpha (h, w), premultiplied colour (h, w, 3))."""
    size = height * (0.35 + 0.55 * (fig.feet_y - 0.7))  # figure height in pixels
    cx = width * (fig.centre_x + fig.sway * np.sin(2 * np.pi * t / fig.period_s + fig.phase))
    stride = np.sin(2 * np.pi * t * 1.6 + fig.phase) * min(1.0, fig.sway / 0.08)  # limbs swing while walking
    feet = height * fig.feet_y - size * 0.02 * abs(stride)  # slight bob
    half_w = int(size * 0.35) + 2
    x0, x1 = int(cx) - half_w, int(cx) + half_w
    y0, y1 = int(feet - size) - 2, int(feet) + 4
    bx0, bx1, by0, by1 = max(x0, 0), min(x1, width), max(y0, 0), min(y1, height)
    if bx0 >= bx1 or by0 >= by1:
        return None

    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    colour = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
    ox, oy = cx - x0, feet - y0  # origin at the feet, in box coordinates

    def pt(dx: float, dy: float) -> tuple[int, int]:
        return int(round((ox + dx * size) * (1 << AA))), int(round((oy - dy * size) * (1 << AA)))

    def limb(a, b, thickness, col):
        th = max(1, int(thickness * size))
        for layer, c in ((mask, 255), (colour, col)):
            cv2.line(layer, pt(*a), pt(*b), c, th, cv2.LINE_AA, AA)

    def blob(centre, axes, col):
        ax = (int(axes[0] * size * (1 << AA)), int(axes[1] * size * (1 << AA)))
        for layer, c in ((mask, 255), (colour, col)):
            cv2.ellipse(layer, pt(*centre), ax, 0, 0, 360, c, -1, cv2.LINE_AA, AA)

    swing = 0.12 * stride
    limb((-0.05, 0.47), (-0.05 + swing, 0.03), 0.09, fig.trousers)
    limb((0.05, 0.47), (0.05 - swing, 0.03), 0.09, fig.trousers)
    blob((0.0, 0.63), (0.14, 0.21), fig.shirt)
    limb((-0.12, 0.78), (-0.16 - swing, 0.50), 0.06, fig.shirt)
    limb((0.12, 0.78), (0.16 + swing, 0.50), 0.06, fig.shirt)
    blob((0.0, 0.89), (0.075, 0.09), fig.skin)

    crop = (slice(by0 - y0, by1 - y0), slice(bx0 - x0, bx1 - x0))
    alpha = mask[crop].astype(np.float32) / 255.0
    return (by0, by1, bx0, bx1), alpha, colour[crop].astype(np.float32)

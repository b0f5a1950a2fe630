"""Matting metrics on float alphas in [0, 1] (NumPy), with the usual definitions.

Image metrics (one matte against its truth): SAD = sum |p - g|, MSE = mean (p - g)^2,
MAD = mean |p - g|, Grad = sum (|grad p| - |grad g|)^2 with first-derivative-of-Gaussian filters
(sigma 1.4, unit L2 norm, as in Rhemann et al.'s benchmark), Conn = sum |phi(p) - phi(g)| with
phi the connectivity degree at threshold steps of 0.1 and the 0.15 cut-off. All over the whole
image (instance matting has no trimap) and unscaled; tables apply the customary scales.
Instance matching: people are paired by the Hungarian assignment on mask IoU (alpha >= 0.5).
Temporal: dtSSD = per frame pair, the root mean square of (dp/dt - dg/dt) over pixels; flicker, the
same without ground truth, where the picture did not change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from livematte.frame import at_size

GRAD_SIGMA = 1.4
CONN_STEP = 0.1
CONN_CUTOFF = 0.15


def sad(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.abs(pred.astype(np.float64) - truth).sum())


def mse(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(((pred.astype(np.float64) - truth) ** 2).mean())


def mad(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.abs(pred.astype(np.float64) - truth).mean())


@cache
def _gaussian_derivative(sigma: float) -> np.ndarray:
    """(2r+1, 2r+1) kernel: Gaussian along rows times its derivative along columns, unit L2 norm;
    r is where the Gaussian falls to 1 % of its peak."""
    radius = math.ceil(sigma * math.sqrt(-2 * math.log(math.sqrt(2 * math.pi) * sigma * 0.01)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    gauss = np.exp(-x ** 2 / (2 * sigma ** 2)) / (sigma * math.sqrt(2 * math.pi))
    kernel = gauss[:, None] * (-x * gauss / sigma ** 2)[None, :]
    return kernel / np.sqrt((kernel ** 2).sum())


def _gradient_magnitude(alpha: np.ndarray) -> np.ndarray:
    kernel = _gaussian_derivative(GRAD_SIGMA)
    gx = ndimage.convolve(alpha, kernel, mode="nearest")
    gy = ndimage.convolve(alpha, kernel.T, mode="nearest")
    return np.hypot(gx, gy)


def gradient_error(pred: np.ndarray, truth: np.ndarray) -> float:
    p, g = (_gradient_magnitude(a.astype(np.float64)) for a in (pred, truth))
    return float(((p - g) ** 2).sum())


def _connectivity(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """phi(pred), phi(truth): 1 - the part of each alpha above the level at which the pixel left the
    largest 4-connected region both alphas share (counted only where that part is >= 0.15)."""
    level = np.full(pred.shape, -1.0)
    steps = np.arange(0.0, 1.0 + CONN_STEP / 2, CONN_STEP)
    for previous, t in zip(steps[:-1], steps[1:]):
        labels, count = ndimage.label((pred >= t) & (truth >= t))
        largest = np.zeros(pred.shape, bool)
        if count:
            sizes = np.bincount(labels.ravel())[1:]
            largest = labels == 1 + int(np.argmax(sizes))
        level[(level == -1) & ~largest] = previous
    level[level == -1] = 1.0
    phis = []
    for alpha in (pred, truth):
        d = alpha - level
        phis.append(1.0 - d * (d >= CONN_CUTOFF))
    return phis[0], phis[1]


def connectivity_error(pred: np.ndarray, truth: np.ndarray) -> float:
    p, g = _connectivity(pred.astype(np.float64), truth.astype(np.float64))
    return float(np.abs(p - g).sum())


@dataclass(frozen=True)
class ImageMetrics:
    sad: float
    mse: float
    mad: float
    grad: float
    conn: float


def image_metrics(pred: np.ndarray, truth: np.ndarray) -> ImageMetrics:
    if pred.shape != truth.shape:
        raise ValueError(f"prediction {pred.shape} and truth {truth.shape} differ in size")
    return ImageMetrics(sad(pred, truth), mse(pred, truth), mad(pred, truth), gradient_error(pred, truth),
                        connectivity_error(pred, truth))


def mask_iou(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """(N, H, W), (M, H, W) alphas -> (N, M) IoU of their alpha >= 0.5 masks (0 where both are empty)."""
    pixels = truth.shape[1] * truth.shape[2]
    t = (truth >= 0.5).reshape(len(truth), pixels).astype(np.float64)
    p = (pred >= 0.5).reshape(len(pred), pixels).astype(np.float64)
    inter = t @ p.T
    union = t.sum(1)[:, None] + p.sum(1)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def match_people(truth: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hungarian pairing that maximises total IoU -> (truth indices, prediction indices, their IoU)."""
    iou = mask_iou(truth, pred)
    if iou.size == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0)
    rows, cols = linear_sum_assignment(-iou)
    return rows, cols, iou[rows, cols]


def dtssd(pred: np.ndarray, truth: np.ndarray) -> float:
    """(T, H, W) sequences of one person's matte -> mean over the T - 1 frame pairs."""
    if len(pred) < 2:
        raise ValueError("dtSSD needs at least two frames")
    diff = np.diff(pred.astype(np.float64), axis=0) - np.diff(truth.astype(np.float64), axis=0)
    return float(np.sqrt((diff ** 2).reshape(len(diff), -1).mean(axis=1)).mean())


UNCHANGED = 3  # grey levels: a pixel whose picture changed less than this "did not change"


def _still_changes(frames: list[np.ndarray], mattes: list[dict[int, np.ndarray]]):
    """Per frame pair and person: (track, |alpha_t - alpha_t-1|, the pixels flicker() reads, each pixel's
    distance to the nearest one whose picture changed). frames are brought to the mattes' size, as the
    fusion brings them."""
    size = next(alpha.shape for people in mattes for alpha in people.values())
    grey = [cv2.cvtColor(at_size(f, size), cv2.COLOR_BGR2GRAY).astype(np.int16) for f in frames]
    for t in range(1, len(frames)):
        changed = (np.abs(grey[t] - grey[t - 1]) >= UNCHANGED).astype(np.uint8)
        distance = cv2.distanceTransform(1 - changed, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        for track, alpha in mattes[t].items():
            before = mattes[t - 1].get(track)
            if before is not None:
                yield track, np.abs(alpha - before), (changed == 0) & ((alpha > 0.01) | (before > 0.01)), distance


def flicker(frames: list[np.ndarray], mattes: list[dict[int, np.ndarray]]) -> dict[int, float]:
    """No-reference flicker of each person's matte, for footage without ground truth: per id, mean
    |alpha_t - alpha_t-1| over the pixels whose picture did not change (grey level within UNCHANGED) and
    that either matte covers (elsewhere both are 0, which would only dilute the figure). frames: BGR
    uint8; mattes: per frame, each id's (h, w) float matte."""
    sums: dict[int, list[float]] = {}
    for track, difference, region, _ in _still_changes(frames, mattes):
        if region.any():
            sums.setdefault(track, []).append(float(difference[region].mean()))
    return {track: float(np.mean(values)) for track, values in sums.items()}


def flicker_by_distance(frames: list[np.ndarray], mattes: list[dict[int, np.ndarray]],
                        bounds: tuple[float, ...] = (1.5, 4.0)) -> list[float]:
    """Where flicker() lies: the sum of its |alpha_t - alpha_t-1| over all people and frames, split by the
    pixel's distance to the nearest pixel whose picture changed, in bands up to each of `bounds` and one
    beyond. A pixel beside a moving edge did not change itself, yet a matte edge moving with the person
    crosses it: flicker counts that too, and a rule that holds the matte there leaves a trail."""
    edges = (0.0, *bounds, np.inf)
    totals = [0.0] * (len(edges) - 1)
    for _, difference, region, distance in _still_changes(frames, mattes):
        for band in range(len(totals)):
            inside = region & (distance > edges[band]) & (distance <= edges[band + 1])
            totals[band] += float(difference[inside].sum())
    return totals


def beyond_share(mattes: list[dict[int, np.ndarray]], reference: list[dict[int, np.ndarray]], reach: int) -> float:
    """The share of the mattes' mass lying more than `reach` pixels from where the reference mattes of the
    same id (a filter's input) exceed 0.05: what a temporal filter shows where its input had no one, the
    trails and ghosts that flicker() rewards. Ids absent from the reference count as all beyond."""
    grow = np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)
    beyond = total = 0.0
    for shown, given in zip(mattes, reference):
        for track, alpha in shown.items():
            source = given.get(track, np.zeros_like(alpha))
            near = cv2.dilate((source > 0.05).astype(np.uint8), grow) > 0
            beyond, total = beyond + float(alpha[~near].sum()), total + float(alpha.sum())
    return beyond / total if total else 0.0

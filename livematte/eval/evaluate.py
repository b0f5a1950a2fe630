"""Evaluate predicted person mattes against an image-instance dataset.

Instance metrics (E2E-HIM paper) at each IoU threshold: people are paired by the Hungarian
assignment on mask IoU and a pair counts when its IoU reaches the threshold. REC = pairs / true
people, ACC = pairs / predicted people (precision), EMSE and EMAD = mean MSE and MAD over the
pairs. A person, true or predicted, counts when some pixel of its alpha is >= 0.5.
Image metrics compare the union matte of all people (sum clipped to 1) with the true one,
averaged over images. Sequences (frames in name order, alpha NN.png the same person in every
frame) add dtSSD per true person, against the prediction paired with them (or nothing) per frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields

import numpy as np
from rich.console import Console
from rich.progress import Progress

from livematte.eval.metrics import ImageMetrics, dtssd, image_metrics, mad, match_people, mse
from livematte.train.layout import Sample, SampleFiles, read_sample

Predictor = Callable[[Sample], np.ndarray]  # sample -> (M, H, W) float32 mattes at the image's size


@dataclass(frozen=True)
class InstanceScores:
    iou: float
    rec: float | None
    acc: float | None
    emse: float | None
    emad: float | None
    pairs: int


@dataclass(frozen=True)
class EvalReport:
    images: int
    people: int
    predicted: int
    instance: list[InstanceScores]
    image: ImageMetrics
    dtssd: float | None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Tally:
    pairs: int = 0
    mse: list[float] = field(default_factory=list)
    mad: list[float] = field(default_factory=list)


class _Temporal:
    """Running dtSSD: each person index's value for every frame pair, as frames arrive."""

    def __init__(self) -> None:
        self.previous: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.values: list[float] = []

    def add(self, frame: dict[int, tuple[np.ndarray, np.ndarray]], shape: tuple[int, int]) -> None:
        """frame: person index -> (prediction, truth); a person missing from a frame is empty there."""
        zero = np.zeros(shape, np.float32)
        for k in frame.keys() | self.previous.keys():
            now = frame.get(k, (zero, zero))
            if k in self.previous:
                before = self.previous[k]
                self.values.append(dtssd(np.stack([before[0], now[0]]), np.stack([before[1], now[1]])))
            self.previous[k] = now


def _visible(alphas: np.ndarray) -> np.ndarray:
    return np.nonzero((alphas >= 0.5).any(axis=(1, 2)))[0]


def _union(alphas: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return np.clip(alphas.sum(axis=0), 0, 1) if len(alphas) else np.zeros(shape, np.float32)


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def evaluate(files: list[SampleFiles], predict: Predictor, thresholds: tuple[float, ...] = (0.5, 0.75),
             sequence: bool = False, show_progress: bool = False) -> EvalReport:
    tallies = {t: _Tally() for t in thresholds}
    per_image: list[ImageMetrics] = []
    temporal = _Temporal()
    people = predicted = 0
    with Progress(console=Console(stderr=True), disable=not show_progress) as progress:
        for entry in progress.track(files, description="evaluating"):
            sample = read_sample(entry)
            mattes = np.asarray(predict(sample), np.float32)
            shape = sample.image.shape[:2]
            if mattes.shape[1:] != shape:
                raise ValueError(f"{entry.name}: predicted mattes are {mattes.shape[1:]}, the image is {shape}")
            true_ids, pred_ids = _visible(sample.alphas), _visible(mattes)
            truth, pred = sample.alphas[true_ids], mattes[pred_ids]
            people += len(truth)
            predicted += len(pred)
            rows, cols, iou = match_people(truth, pred)
            for t, tally in tallies.items():
                for r, c in zip(rows[iou >= t], cols[iou >= t]):
                    tally.pairs += 1
                    tally.mse.append(mse(pred[c], truth[r]))
                    tally.mad.append(mad(pred[c], truth[r]))
            per_image.append(image_metrics(_union(mattes, shape), _union(sample.alphas, shape)))
            if sequence:
                kept = iou >= min(thresholds)
                paired = {int(true_ids[r]): pred[c] for r, c in zip(rows[kept], cols[kept])}
                zero = np.zeros(shape, np.float32)
                temporal.add({k: (paired.get(k, zero), alpha) for k, alpha in enumerate(sample.alphas)}, shape)
    instance = [InstanceScores(t, _ratio(tally.pairs, people), _ratio(tally.pairs, predicted),
                               float(np.mean(tally.mse)) if tally.pairs else None,
                               float(np.mean(tally.mad)) if tally.pairs else None, tally.pairs)
                for t, tally in tallies.items()]
    image = ImageMetrics(*(float(np.mean([getattr(m, f.name) for m in per_image])) for f in fields(ImageMetrics)))
    return EvalReport(len(files), people, predicted, instance, image,
                      float(np.mean(temporal.values)) if sequence and temporal.values else None)

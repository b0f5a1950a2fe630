"""Training data: a source of samples (a dataset folder, composites, or generated figures), turned
into augmented network inputs with their targets, in an order fixed by the seed and the step.

Item keys are (sample index, position in the run): the augmentation is seeded by the position, so
a resumed run draws exactly the batches the uninterrupted run would have drawn.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from kernels.letterbox import Letterbox
from livematte.model.e2ehim import NUM_QUERIES
from livematte.model.input import preprocess
from livematte.train.augment import augment
from livematte.train.compose import compose, cut_out
from livematte.train.config import AugmentConfig, CompositeData, DataConfig, InstancesData, SyntheticData, TargetConfig
from livematte.train.layout import IMAGE_SUFFIXES, LayoutError, Sample, list_samples, read_image, read_sample
from livematte.train.synthetic_data import SyntheticSpec, write_synthetic_dataset
from livematte.train.targets import seg_from_alpha, trimap_from_alpha


class Source(Protocol):
    def __len__(self) -> int: ...

    def sample(self, index: int, rng: np.random.Generator) -> Sample: ...


class FolderSource:
    """The samples of an image-instance dataset, as stored."""

    def __init__(self, root: Path) -> None:
        self.files = list_samples(root)

    def __len__(self) -> int:
        return len(self.files)

    def sample(self, index: int, rng: np.random.Generator) -> Sample:
        return read_sample(self.files[index])


class CompositeSource:
    """Each item: a random background with 2 to 5 people cut out of random foreground samples."""

    def __init__(self, cfg: CompositeData) -> None:
        self.cfg = cfg
        self.people = [(f, i) for f in list_samples(cfg.foregrounds) for i in range(len(f.alphas))]
        if not self.people:
            raise LayoutError(f"{cfg.foregrounds} has no people (no alpha PNGs) to cut out")
        if not cfg.backgrounds.is_dir():
            raise LayoutError(f"background folder {cfg.backgrounds} not found; "
                              "set data.backgrounds to a folder of images")
        self.backgrounds = sorted(p for p in cfg.backgrounds.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.backgrounds:
            raise LayoutError(f"{cfg.backgrounds} holds no .jpg, .jpeg or .png background images")

    def __len__(self) -> int:
        return self.cfg.samples

    def sample(self, index: int, rng: np.random.Generator) -> Sample:
        background = read_image(self.backgrounds[int(rng.integers(len(self.backgrounds)))])
        count = int(rng.integers(self.cfg.people[0], self.cfg.people[1] + 1))
        cutouts = []
        for k in rng.choice(len(self.people), size=min(count, len(self.people)), replace=False):
            files, person = self.people[k]
            sample = read_sample(files)
            if sample.alphas[person].any():
                cutouts.append(cut_out(sample, person))
        return compose(background, cutouts, self.cfg.person_height, rng, name=f"composite_{index}")


def open_source(cfg: DataConfig) -> Source:
    if isinstance(cfg, InstancesData):
        return FolderSource(cfg.root)
    if isinstance(cfg, CompositeData):
        return CompositeSource(cfg)
    assert isinstance(cfg, SyntheticData)
    spec = SyntheticSpec(cfg.samples, cfg.width, cfg.height, cfg.people, cfg.seed)
    return FolderSource(write_synthetic_dataset(cfg.write_to, spec))


@dataclass(frozen=True)
class Targets:
    """One image's people at training size: alphas (N, S, S) float32, trimap classes (N, S, S) int64,
    /8 coverage (N, S/8, S/8) float32."""

    alphas: Tensor
    trimaps: Tensor
    seg: Tensor

    def to(self, device: torch.device) -> "Targets":
        return Targets(self.alphas.to(device), self.trimaps.to(device), self.seg.to(device))


@dataclass(frozen=True)
class TrainItem:
    image: Tensor  # (3, S, S) normalised RGB, as the engine feeds the network
    targets: Targets


@dataclass(frozen=True)
class TrainBatch:
    images: Tensor  # (B, 3, S, S)
    targets: list[Targets]

    def to(self, device: torch.device) -> "TrainBatch":
        return TrainBatch(self.images.to(device, non_blocking=True), [t.to(device) for t in self.targets])


class TrainingSet(Dataset):
    """Augmented items with targets; at most one person per network query (the largest are kept)."""

    def __init__(self, source: Source, size: int, augment_cfg: AugmentConfig, target_cfg: TargetConfig,
                 seed: int) -> None:
        self.source, self.size, self.augment_cfg, self.target_cfg, self.seed = (
            source, size, augment_cfg, target_cfg, seed)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, key: tuple[int, int]) -> TrainItem:
        index, position = key
        rng = np.random.default_rng([self.seed, position])
        sample = augment(self.source.sample(index, rng), self.size, self.augment_cfg, rng)
        area = sample.alphas.sum(axis=(1, 2))
        keep = np.argsort(-area, kind="stable")[:NUM_QUERIES]
        alphas = sample.alphas[np.sort(keep[area[keep] >= max(self.target_cfg.min_area, 1e-6)])]
        frame = torch.from_numpy(sample.image).unsqueeze(0)
        image = preprocess(frame, Letterbox.fit(self.size, self.size, self.size, self.size))[0]
        targets = Targets(torch.from_numpy(alphas),
                          torch.from_numpy(trimap_from_alpha(alphas, self.target_cfg.trimap_width)).long(),
                          torch.from_numpy(np.ascontiguousarray(seg_from_alpha(alphas))))
        return TrainItem(image, targets)


def collate(items: list[TrainItem]) -> TrainBatch:
    return TrainBatch(torch.stack([item.image for item in items]), [item.targets for item in items])


class RunOrder(Sampler):
    """(index, position) keys for positions [start, stop): a fresh permutation of the dataset every
    epoch, drawn from (seed, epoch), so any stretch of the run can be replayed on its own."""

    def __init__(self, size: int, seed: int, start: int, stop: int) -> None:
        self.size, self.seed, self.start, self.stop = size, seed, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, order = -1, None
        for position in range(self.start, self.stop):
            if position // self.size != epoch:
                epoch = position // self.size
                order = np.random.default_rng([self.seed, epoch, 1]).permutation(self.size)
            yield int(order[position % self.size]), position

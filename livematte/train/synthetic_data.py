"""A dataset in the image-instance layout generated from the synthetic scene (exact alphas).

It lets a fresh clone train and evaluate end to end with no download (configs/train_tiny.yaml, CI)
and gives the tests data whose answers are known. Generation is seeded, so every machine writes
the same files; a folder written with another spec is rewritten, any other folder is left alone.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from livematte.synthetic import SyntheticScene
from livematte.train.layout import LayoutError, Sample, write_sample

SPEC_FILE = "synthetic.json"


@dataclass(frozen=True)
class SyntheticSpec:
    """sequence: consecutive frames of one scene with `people[1]` people, alpha NN.png being the same
    person in every frame (empty where they are out of view), for temporal metrics. Otherwise every
    image is its own scene with people[0]..people[1] people, and only visible people get an alpha."""

    samples: int
    width: int
    height: int
    people: tuple[int, int]
    seed: int
    sequence: bool = False


def write_synthetic_dataset(root: Path, spec: SyntheticSpec) -> Path:
    """Write the dataset to `root` unless it already holds this spec; returns root."""
    spec_path = root / SPEC_FILE
    wanted = asdict(spec) | {"people": list(spec.people)}
    if spec_path.is_file():
        if json.loads(spec_path.read_text()) == wanted:
            return root
        for folder in ("images", "alphas"):
            shutil.rmtree(root / folder, ignore_errors=True)
    elif root.exists() and any(root.iterdir()):
        raise LayoutError(f"{root} exists and is not a generated synthetic dataset; choose another write_to folder")
    for sample in _samples(spec):
        write_sample(root, sample)
    spec_path.write_text(json.dumps(wanted, indent=2) + "\n")
    return root


def _samples(spec: SyntheticSpec):
    rng = np.random.default_rng(spec.seed)
    if spec.sequence:
        scene = SyntheticScene(spec.width, spec.height, spec.people[1], seed=spec.seed)
        for i in range(spec.samples):
            image, alphas = scene.render(i)
            yield Sample(f"{i:05d}", image, alphas)
        return
    for i in range(spec.samples):
        people = int(rng.integers(spec.people[0], spec.people[1] + 1))
        scene = SyntheticScene(spec.width, spec.height, people, seed=int(rng.integers(1 << 31)))
        image, alphas = scene.render(int(rng.integers(0, 300)))
        visible = (alphas >= 0.5).any(axis=(1, 2))
        yield Sample(f"{i:05d}", image, alphas[visible])

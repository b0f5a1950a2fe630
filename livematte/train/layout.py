"""The image-instance dataset layout: root/images/NAME.jpg and root/alphas/NAME/00.png, 01.png ...

One alpha PNG per person (8- or 16-bit grey, the image's size), as in I-HIM50K. An image with
nobody in it has an empty alphas/NAME/ folder. Training, evaluation and the synthetic writer share
this module, so every dataset is read and written one way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_SHOWN = 5


class LayoutError(ValueError):
    """A dataset folder or file that does not follow the image-instance layout; the message says what to fix."""


@dataclass(frozen=True)
class SampleFiles:
    name: str
    image: Path
    alphas: tuple[Path, ...]


@dataclass(frozen=True)
class Sample:
    """One image and its people: uint8 BGR (H, W, 3) and float32 alphas (N, H, W) in [0, 1]."""

    name: str
    image: np.ndarray
    alphas: np.ndarray


def list_samples(root: Path) -> list[SampleFiles]:
    """Every image of a dataset with its alpha files, in name order."""
    images_dir, alphas_dir = root / "images", root / "alphas"
    if not root.is_dir():
        raise LayoutError(f"dataset folder {root} not found; "
                          "set the dataset root to a folder holding images/ and alphas/")
    if not images_dir.is_dir() or not alphas_dir.is_dir():
        raise LayoutError(f"{root} needs images/ and alphas/ folders: images/NAME.jpg with one alpha per person in "
                          "alphas/NAME/00.png, 01.png ...")
    images = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise LayoutError(f"{images_dir} holds no .jpg, .jpeg or .png images")
    orphans = [p.stem for p in images if not (alphas_dir / p.stem).is_dir()]
    if orphans:
        shown = ", ".join(orphans[:_SHOWN]) + (" ..." if len(orphans) > _SHOWN else "")
        raise LayoutError(f"{len(orphans)} images in {images_dir} have no alphas/NAME/ folder ({shown}): add the "
                          "people's alpha PNGs there (an empty folder for an image with nobody in it) "
                          "or remove the images")
    return [SampleFiles(p.stem, p, alpha_files(alphas_dir / p.stem)) for p in images]


def alpha_files(folder: Path) -> tuple[Path, ...]:
    """The alpha PNGs of one image, in person order; none when the folder does not exist."""
    return tuple(sorted(folder.glob("*.png"))) if folder.is_dir() else ()


def read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise LayoutError(f"{path}: not a readable image; replace or remove it")
    return image


def read_alphas(paths: tuple[Path, ...], height: int, width: int) -> np.ndarray:
    """float32 (N, H, W) in [0, 1] from 8- or 16-bit PNGs of exactly (height, width)."""
    alphas = np.zeros((len(paths), height, width), np.float32)
    for i, path in enumerate(paths):
        raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if raw is None:
            raise LayoutError(f"{path}: not a readable PNG; replace or remove it")
        if raw.ndim == 3:
            raw = cv2.cvtColor(raw[..., :3], cv2.COLOR_BGR2GRAY)
        if raw.shape != (height, width):
            raise LayoutError(f"{path}: alpha is {raw.shape[1]}x{raw.shape[0]} but its image is {width}x{height}; "
                              "every alpha must have its image's size")
        alphas[i] = raw.astype(np.float32) / np.iinfo(raw.dtype).max
    return alphas


def read_sample(files: SampleFiles) -> Sample:
    image = read_image(files.image)
    return Sample(files.name, image, read_alphas(files.alphas, *image.shape[:2]))


def write_alphas(folder: Path, alphas: np.ndarray) -> None:
    """One 8-bit PNG per person: 00.png, 01.png ... (the folder is created, even for nobody)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, alpha in enumerate(alphas):
        cv2.imwrite(str(folder / f"{i:02d}.png"), np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8))


def write_sample(root: Path, sample: Sample) -> None:
    """The image as PNG (lossless, so generated data stays exact) and its alphas."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(root / "images" / f"{sample.name}.png"), sample.image)
    write_alphas(root / "alphas" / sample.name, sample.alphas)

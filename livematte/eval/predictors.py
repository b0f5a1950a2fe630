"""Where evaluated mattes come from: a model run through the product's own engine (pre-processing,
network, the official post-processing), or a folder of mattes in the image-instance layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kernels._arrays import host
from livematte.engine.postprocess import PostprocessConfig
from livematte.engine.torch_engine import TorchEngine
from livematte.train.checkpoints import load_network
from livematte.train.layout import LayoutError, Sample, alpha_files, read_alphas


class ModelPredictor:
    """threshold and min_area as in the official evaluation (p(human) > 0.5, area >= 1000 pixels)."""

    def __init__(self, weights: str, input_size: tuple[int, int], device: str, threshold: float = 0.5,
                 min_area: float = 1000.0) -> None:
        self.engine = TorchEngine(load_network(weights), device=device, input_size=input_size,
                                  postprocess_config=PostprocessConfig(threshold, min_area), warmup=False)

    def __call__(self, sample: Sample) -> np.ndarray:
        return host(self.engine.infer([sample.image])[0].mattes)


class FolderPredictor:
    """Mattes in ROOT/alphas/NAME/00.png ...; an image without a folder has no predicted people."""

    def __init__(self, root: Path) -> None:
        if not (root / "alphas").is_dir():
            raise LayoutError(f"{root} has no alphas/ folder: predictions go in alphas/NAME/00.png, 01.png ... "
                              "with NAME the image's name")
        self.root = root

    def __call__(self, sample: Sample) -> np.ndarray:
        return read_alphas(alpha_files(self.root / "alphas" / sample.name), *sample.image.shape[:2])

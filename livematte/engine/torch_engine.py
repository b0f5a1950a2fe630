"""E2E-HIM in PyTorch behind the Engine protocol, on CPU or CUDA.

Frames are uploaded once as uint8 and pre-processed on the device (`preprocess` below, a torch
stand-in for the kernels/ pre-process kernel); post-processing stays on the device too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from kernels.letterbox import Letterbox, input_size_for
from livematte.engine.base import Instances
from livematte.model.checkpoint import find_weights, load_into, read_weights
from livematte.model.e2ehim import E2EHIM, MEAN, STD
from livematte.model.postprocess import PostprocessConfig, postprocess

Weights = Union[str, Path, Mapping[str, Tensor], E2EHIM]
MULTIPLE = 32


def build_model(weights: Weights) -> E2EHIM:
    """A model from a ready module, a state dict with our names, a safetensors path or an installed name."""
    if isinstance(weights, E2EHIM):
        return weights
    model = E2EHIM()
    if isinstance(weights, Mapping):
        load_into(model, weights)
        return model
    path = Path(weights)
    if not path.is_file():
        path = find_weights(str(weights))
    load_into(model, read_weights(path), what=str(path))
    return model


def preprocess(frames: Tensor, box: Letterbox) -> Tensor:
    """uint8 BGR (B, H, W, 3) -> normalised RGB float (B, 3, out_h, out_w), letterboxed with zeros.

    Bilinear resize (antialiased when shrinking) to the content size, then centred in the canvas;
    the padding is 0 after normalisation.
    """
    x = frames.permute(0, 3, 1, 2).flip(1).float().div_(255.0)
    if (box.content_h, box.content_w) != (box.src_h, box.src_w):
        shrink = box.content_h < box.src_h or box.content_w < box.src_w
        x = F.interpolate(x, size=(box.content_h, box.content_w), mode="bilinear", align_corners=False,
                          antialias=shrink)
    mean = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
    x = (x - mean) / std
    right = box.out_w - box.content_w - box.left
    bottom = box.out_h - box.content_h - box.top
    return F.pad(x, (box.left, right, box.top, bottom))


class TorchEngine:
    """E2E-HIM with torch: fp16 autocast on CUDA, channels_last, inference_mode, warm-up.

    weights: see build_model. input_size: (h, w), multiples of 32; None follows the first frame's
    aspect (long side 640, e.g. 352x640 for 16:9). Frames of one call must share one size.
    bf16: bfloat16 autocast on CPU, about twice as fast on CPUs with native bf16 (AVX512-BF16, AMX)
    but no longer the official function to 1e-5 (alpha within about 1e-2); off by default.
    """

    def __init__(self, weights: Weights, device: str = "cpu", input_size: tuple[int, int] | None = None,
                 fp16: bool = True, channels_last: bool = True,
                 postprocess_config: PostprocessConfig = PostprocessConfig(), warmup: bool = True,
                 bf16: bool = False) -> None:
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' requested but torch sees no CUDA device; use device='cpu'")
        if input_size is not None and (input_size[0] % MULTIPLE or input_size[1] % MULTIPLE or min(input_size) <= 0):
            raise ValueError(f"input_size must be positive multiples of {MULTIPLE}, got {input_size}")
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = build_model(weights).to(self.device).eval().to(memory_format=self.memory_format)
        self.autocast_dtype = (torch.float16 if fp16 and self.device.type == "cuda"
                               else torch.bfloat16 if bf16 and self.device.type == "cpu" else None)
        self.config = postprocess_config
        self.warmup = warmup
        self._size = input_size
        if input_size is not None and warmup:
            self._warm_up()

    @property
    def input_size(self) -> tuple[int, int]:
        if self._size is None:
            raise RuntimeError("the input size follows the first frame: call infer() first, or pass input_size")
        return self._size

    def infer(self, frames: Sequence[Any]) -> list[Instances]:
        if len(frames) == 0:
            return []
        batch = self._upload(frames)
        height, width = batch.shape[1], batch.shape[2]
        if self._size is None:
            self._size = input_size_for(height, width)
            if self.warmup:
                self._warm_up()
        box = Letterbox.fit(height, width, *self._size)
        with torch.inference_mode():
            image = preprocess(batch, box).contiguous(memory_format=self.memory_format)
            with self._autocast():
                output = self.model(image)
            found = postprocess(output, box, self.config)
        if self.device.type == "cpu":
            return [Instances(mattes=i.mattes.numpy(), probs=i.probs.numpy()) for i in found]
        return found

    def _upload(self, frames: Sequence[Any]) -> Tensor:
        if isinstance(frames[0], Tensor):
            return torch.stack(list(frames)).to(self.device)
        return torch.from_numpy(np.stack(frames)).to(self.device, non_blocking=True)

    def _warm_up(self) -> None:
        """First calls pay for kernel selection and allocation; do it before real frames arrive."""
        image = torch.zeros(1, 3, *self.input_size, device=self.device).contiguous(memory_format=self.memory_format)
        with torch.inference_mode(), self._autocast():
            for _ in range(3 if self.device.type == "cuda" else 1):
                self.model(image)

    def _autocast(self) -> AbstractContextManager:
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

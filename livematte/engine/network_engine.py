"""What the E2E-HIM engines share: frames in, letterboxed network input, post-processed mattes out.

Torch, ONNX Runtime and TensorRT differ only in how they run the network on a pre-processed batch
(`_forward`); upload, letterbox, normalisation and post-processing are this one code for all of
them, so the three give the same mattes up to the network's own numerics.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from kernels.letterbox import Letterbox, input_size_for
from livematte.engine.base import Instances
from livematte.model.e2ehim import MEAN, STD, E2EHIMOutput
from livematte.model.postprocess import PostprocessConfig, postprocess

MULTIPLE = 32


def check_input_size(input_size: tuple[int, int] | None) -> None:
    if input_size is not None and (input_size[0] % MULTIPLE or input_size[1] % MULTIPLE or min(input_size) <= 0):
        raise ValueError(f"input_size must be positive multiples of {MULTIPLE}, got {input_size}")


@functools.cache
def normalisation(device: torch.device) -> tuple[Tensor, Tensor]:
    """ImageNet mean and std as (1, 3, 1, 1) tensors on `device`, made once: on a GPU each new one
    would be a host-to-device copy per frame. Normal tensors even when first asked for under inference_mode,
    so callers outside it (export, training) can use them too."""
    with torch.inference_mode(False):
        return tuple(torch.tensor(v, device=device).view(1, 3, 1, 1) for v in (MEAN, STD))


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
    mean, std = normalisation(x.device)
    x = (x - mean) / std
    right = box.out_w - box.content_w - box.left
    bottom = box.out_h - box.content_h - box.top
    return F.pad(x, (box.left, right, box.top, bottom))


class NetworkEngine:
    """Base of the E2E-HIM engines (the Engine protocol); subclasses implement `_forward`.

    input_size: (h, w), multiples of 32; None follows the first frame's aspect (long side 640,
    e.g. 352x640 for 16:9). `_start` runs as soon as the size is known (warm-up, export, build):
    here when it is given, so subclasses set their own state before calling this constructor.
    Frames of one call must share one size. On CPU the Instances hold NumPy arrays, on CUDA
    torch tensors on the device.
    """

    def __init__(self, device: torch.device, input_size: tuple[int, int] | None,
                 postprocess_config: PostprocessConfig, memory_format: torch.memory_format = torch.contiguous_format
                 ) -> None:
        check_input_size(input_size)
        self.device = device
        self.config = postprocess_config
        self.memory_format = memory_format
        self._size = input_size
        if input_size is not None:
            self._start()

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
            self._start()
        box = Letterbox.fit(height, width, *self._size)
        with torch.inference_mode():
            image = preprocess(batch, box).contiguous(memory_format=self.memory_format)
            found = postprocess(self._forward(image), box, self.config)
        if self.device.type == "cpu":
            return [Instances(mattes=i.mattes.numpy(), probs=i.probs.numpy()) for i in found]
        return found

    def _upload(self, frames: Sequence[Any]) -> Tensor:
        if isinstance(frames[0], Tensor):
            return torch.stack(list(frames)).to(self.device)
        return torch.from_numpy(np.stack(frames)).to(self.device, non_blocking=True)

    def _start(self) -> None:
        """Prepare for `input_size` (known from here on): a no-op unless the backend needs it."""

    def _forward(self, image: Tensor) -> E2EHIMOutput:
        """Normalised image batch (B, 3, H, W) float32 on the device -> the raw network outputs."""
        raise NotImplementedError

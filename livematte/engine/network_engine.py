"""What the E2E-HIM engines share: frames in, letterboxed network input, post-processed mattes out.

Torch, ONNX Runtime and TensorRT differ only in how they run the network on a pre-processed batch
(`_forward`); upload, letterbox, normalisation and post-processing are this one code for all of
them, so the three give the same mattes up to the network's own numerics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from kernels.letterbox import Letterbox, input_size_for
from livematte.engine.base import Engine, Instances
from livematte.engine.postprocess import PostprocessConfig, postprocess
from livematte.model.e2ehim import E2EHIMOutput
from livematte.model.input import check_input_size, preprocess


class NetworkEngine(Engine):
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
        self._device = device
        self.config = postprocess_config
        self.memory_format = memory_format
        self._size = input_size
        if input_size is not None:
            self._start()

    @property
    def device(self) -> torch.device:
        return self._device

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

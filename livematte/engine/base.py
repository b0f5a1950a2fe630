"""The Engine protocol: frames in, per-person mattes and probabilities out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Instances:
    """The people an engine found in one frame.

    Arrays live on the engine's device: NumPy on CPU, torch/CuPy on CUDA. `mattes` are at frame
    size, float32 in [0, 1], one per person (N may be 0); `probs` is p(human) of each.
    """

    mattes: Any  # (N, H, W) float32
    probs: Any  # (N,) float32

    def __len__(self) -> int:
        return int(self.probs.shape[0])


@runtime_checkable
class Engine(Protocol):
    """What the pipeline needs from an engine.

    `infer` takes frames of one size (uint8 BGR H x W x 3: NumPy, or torch CUDA tensors on GPU
    engines) and returns one Instances per frame, in order.
    """

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) the network runs at."""
        ...

    def infer(self, frames: Sequence[Any]) -> list[Instances]: ...


def checked_frames(frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The frames as C-contiguous arrays, or a ValueError naming the first one that is not uint8 BGR."""
    out = []
    for i, frame in enumerate(frames):
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            what = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
            raise ValueError(f"frame {i} is {what}: CPU engines need uint8 BGR frames of shape (H, W, 3); "
                             "convert decoded pictures with livematte.frame.as_bgr")
        if out and frame.shape != out[0].shape:
            raise ValueError(f"frame {i} is {frame.shape[1]}x{frame.shape[0]} but frame 0 is "
                             f"{out[0].shape[1]}x{out[0].shape[0]}: a batch holds frames of one size")
        out.append(np.ascontiguousarray(frame))
    return out

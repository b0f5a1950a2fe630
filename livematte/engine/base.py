"""The Engine protocol: frames in, per-person mattes and probabilities out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence, runtime_checkable


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

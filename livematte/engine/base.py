"""The Engine protocol: frames in, per-person mattes and probabilities out, and what else an engine states."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, Sequence, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    import torch


class EngineError(RuntimeError):
    """The configured engine cannot start or cannot process a frame; the message says what to change."""


@dataclass(frozen=True)
class Instances:
    """The people an engine found in one frame.

    Arrays live on the engine's device: NumPy on CPU, torch/CuPy on CUDA. `mattes` are float32 in
    [0, 1], one per person (N may be 0), at frame size or (NumPy only) smaller with the frame's aspect,
    where the engine's masks carry no finer detail: tracking and fusion then work at that size and
    the compositor brings them to the frame's; `probs` is p(human) of each. `extents`, where the engine
    knows them (NumPy mattes), bound each matte's non-zero values: the fusion then need not search the
    mattes for them. `picture`, where the engine brought the frame to the mattes' smaller size, is that
    picture: tracking and fusion read it instead of scaling the frame again (2.5 ms at 1080p).
    `fresh`, where the engine hands on some mattes from earlier frames (it reads people in turn), says
    which ones it made from this frame: the fusion takes no carried matte as news (None: all are fresh).
    """

    mattes: Any  # (N, h, w) float32
    probs: Any  # (N,) float32
    extents: np.ndarray | None = None  # (N, 4) int64 [y0, y1, x0, x1)
    picture: np.ndarray | None = None  # (h, w, 3) uint8 BGR
    fresh: np.ndarray | None = None  # (N,) bool

    def __len__(self) -> int:
        return int(self.probs.shape[0])


@runtime_checkable
class Engine(Protocol):
    """Everything the pipeline and the WebRTC server ask of an engine.

    `infer` takes frames of one size (uint8 BGR H x W x 3: NumPy, or tensors on `device`) and returns one
    Instances per frame, in order. The other members have defaults that suit a stateless engine working on
    host frames; engines subclass this class to get them and override what applies (as pyvirtualcam's
    Backend states every method), and wrappers forward every member.
    """

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) the network runs at."""
        ...

    def infer(self, frames: Sequence[Any]) -> list[Instances]: ...

    @property
    def device(self) -> torch.device | None:
        """Where the pipeline puts each frame before inference (a torch device), or None for host NumPy."""
        return None

    @property
    def per_stream(self) -> bool:
        """True where the engine keeps per-stream state (a clean plate, the people it follows): each stream
        (camera, WebRTC peer) needs an engine of its own; False where one engine serves every stream."""
        return False

    def despill(self, pixels: Any) -> Any:
        """The frame with a green/blue screen's colour cast removed, for people shown on a new background;
        the pixels as they are where the engine keys no screen."""
        return pixels

    @property
    def plate_frames(self) -> int | None:
        """Frames a clean-plate capture takes (difference keying), or None where the engine keys against
        no empty scene."""
        return None

    def capture_plate(self) -> None:
        """Capture the empty scene again from the next `plate_frames` frames (only where that is not None)."""
        raise EngineError("this engine keys against no empty scene: only the keying engine's difference key "
                          "(engine.keying.mode=difference) does")


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

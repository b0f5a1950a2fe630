"""Which engine each peer gets: its own where engines keep per-stream state, else a share of one network."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Sequence

from livematte.config import EngineConfig
from livematte.engine.base import Engine, Instances
from livematte.engine.choose import open_engine

if TYPE_CHECKING:
    import torch


class SharedEngine(Engine):
    """One engine used from several peers' worker threads, one inference at a time. It states every member
    of the engine's as its own (its device above all, so each peer's FrameProcessor uploads its frames
    there: a CUDA network's mattes then meet CUDA frames, not host ones)."""

    def __init__(self, engine: Engine):
        self._engine = engine
        self._lock = threading.Lock()

    @property
    def input_size(self) -> tuple[int, int]:
        return self._engine.input_size

    def infer(self, frames: Sequence[Any]) -> list[Instances]:
        with self._lock:
            return self._engine.infer(frames)

    @property
    def device(self) -> torch.device | None:
        return self._engine.device

    @property
    def per_stream(self) -> bool:
        return self._engine.per_stream

    def despill(self, pixels: Any) -> Any:
        return self._engine.despill(pixels)

    @property
    def plate_frames(self) -> int | None:
        return self._engine.plate_frames

    def capture_plate(self) -> None:
        with self._lock:
            self._engine.capture_plate()


class PeerEngines:
    """Opens the configured engine once (failing early, with the reason) and hands one to each peer."""

    def __init__(self, cfg: EngineConfig):
        self._cfg = cfg
        engine, self.description = open_engine(cfg)
        self.clean_plate = engine.plate_frames is not None
        self._shared = None if engine.per_stream else SharedEngine(engine)

    def for_peer(self) -> Engine:
        return self._shared if self._shared is not None else open_engine(self._cfg)[0]

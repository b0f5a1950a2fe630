"""Which engine each peer gets: its own keying engine, or a share of one network engine."""

from __future__ import annotations

import threading
from typing import Any, Sequence

from livematte.config import EngineConfig
from livematte.engine.base import Engine, Instances
from livematte.engine.choose import open_engine
from livematte.engine.keying import KeyingEngine
from livematte.engine.mediapipe_engine import MediaPipeEngine


def engine_per_peer(engine: Engine) -> bool:
    """Keying and the learned CPU engine are light and keep per-stream state (the clean plate, the people
    followed): every peer needs its own. A network holds hundreds of MB of weights and no stream state:
    one is shared."""
    return isinstance(engine, (KeyingEngine, MediaPipeEngine))


def clean_plate(engine: Engine) -> KeyingEngine | None:
    """The peer's own difference-keying engine, whose empty-scene plate the page can capture again."""
    return engine if isinstance(engine, KeyingEngine) and engine.settings.mode == "difference" else None


class SharedEngine:
    """One engine used from several peers' worker threads, one inference at a time.

    It states the engine's device as its own, so each peer's FrameProcessor uploads its frames there:
    a CUDA network's mattes then meet CUDA frames, not host ones."""

    def __init__(self, engine: Engine):
        self._engine = engine
        self._lock = threading.Lock()
        self.device = getattr(engine, "device", None)  # a torch.device for network engines

    @property
    def input_size(self) -> tuple[int, int]:
        return self._engine.input_size

    def infer(self, frames: Sequence[Any]) -> list[Instances]:
        with self._lock:
            return self._engine.infer(frames)


class PeerEngines:
    """Opens the configured engine once (failing early, with the reason) and hands one to each peer."""

    def __init__(self, cfg: EngineConfig):
        self._cfg = cfg
        engine, self.description = open_engine(cfg)
        self.clean_plate = clean_plate(engine) is not None
        self._shared = None if engine_per_peer(engine) else SharedEngine(engine)

    def for_peer(self) -> Engine:
        return self._shared if self._shared is not None else open_engine(self._cfg)[0]

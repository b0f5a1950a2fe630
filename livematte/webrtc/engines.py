"""Which engine each peer gets: its own where engines keep per-stream state, else a share of one network
whose peers' frames are batched (livematte/engine/batching.py)."""

from __future__ import annotations

from livematte.config import EngineConfig
from livematte.engine.base import Engine
from livematte.engine.batching import BatchingEngine
from livematte.engine.choose import open_engine


class PeerEngines:
    """Opens the configured engine once (failing early, with the reason) and hands one to each peer."""

    def __init__(self, cfg: EngineConfig):
        self._cfg = cfg
        engine, self.description = open_engine(cfg)
        self.clean_plate = engine.plate_frames is not None
        self.shared = None if engine.per_stream else BatchingEngine(
            engine, window_ms=cfg.batch.window_ms, max_batch=cfg.batch.max_batch)

    def for_peer(self) -> Engine:
        return self.shared if self.shared is not None else open_engine(self._cfg)[0]

    def batches(self) -> dict[str, int]:
        """Frames per inference -> inferences run so far (empty where each peer has an engine of its own)."""
        return {} if self.shared is None else {str(n): runs for n, runs in sorted(self.shared.batch_sizes().items())}

    def close(self) -> None:
        if self.shared is not None:
            self.shared.close()

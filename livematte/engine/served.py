"""A network engine served by Ray Serve: model replicas anywhere in a Ray cluster, frames from any process.

`MattingModel` is the Serve deployment: each replica opens the configured network engine once and
answers frames with Serve's dynamic request batching (the frames that arrive within `window_ms`, up to
`max_batch`, run as one inference: livematte/engine/batching.py's rule, across processes and machines).
`ServedEngine` is the Engine protocol on a handle to it, for a stream's FrameProcessor in any process of
the cluster. A request whose replica dies (killed, its node lost) is sent once more, to another (Serve
starts a new one meanwhile), so a stream sees one slow frame, not an error.

Needs the `cluster` extra (pip install -e '.[cluster]': ray[serve]).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from ray import serve
from ray.exceptions import RayActorError
from ray.serve.handle import DeploymentHandle

from kernels._arrays import host
from livematte.config import EngineConfig
from livematte.engine.base import Engine, EngineError, Instances
from livematte.engine.batching import infer_each, max_batch_for
from livematte.engine.choose import open_engine

NAME = "livematte-model"  # the deployment's name in the cluster


@serve.deployment(name=NAME)
class MattingModel:
    """One replica: the network engine on host frames in, host mattes out, frames batched by Serve."""

    def __init__(self, cfg: EngineConfig):
        self._engine, self.description = open_engine(cfg)
        if self._engine.per_stream:
            raise EngineError(f"{self.description} follows each stream's people: it cannot be served to many "
                              "streams; serve E2E-HIM (engine.kind e2ehim, onnxruntime or tensorrt)")
        self.__call__.set_max_batch_size(max_batch_for(self._engine, cfg.batch.max_batch))
        self.__call__.set_batch_wait_timeout_s(cfg.batch.window_ms / 1e3)

    def input_size(self) -> tuple[int, int]:
        return self._engine.input_size

    @serve.batch
    async def __call__(self, frames: list[np.ndarray]) -> list[Instances | ValueError]:
        """Serve calls this with the frames it gathered; each caller gets its own people, or the engine's
        ValueError where it rejected that caller's frame."""
        answers, _ = infer_each(self._engine, frames)
        return [a if isinstance(a, ValueError) else Instances(host(a.mattes), host(a.probs)) for a in answers]


class ServedEngine(Engine):
    """The Engine protocol on a handle to the served model; stateless, so any number of streams share it."""

    def __init__(self, handle: DeploymentHandle):
        self._handle = handle
        self._size: tuple[int, int] | None = None

    @property
    def input_size(self) -> tuple[int, int]:
        if self._size is None:
            self._size = tuple(self._handle.input_size.remote().result())
        return self._size

    def infer(self, frames: Sequence[np.ndarray]) -> list[Instances]:
        frames = [np.ascontiguousarray(frame) for frame in frames]
        responses = [self._handle.remote(frame) for frame in frames]
        found = [self._result(response, frame) for response, frame in zip(responses, frames)]
        for result in found:
            if isinstance(result, ValueError):
                raise result
        return found

    def _result(self, response: Any, frame: np.ndarray) -> Instances | ValueError:
        try:
            return response.result()
        except RayActorError:  # its replica died: once more, on another
            try:
                return self._handle.remote(frame).result()
            except RayActorError:
                raise EngineError("the served model's replicas keep dying (see the Ray logs); is the cluster short "
                                  "of memory?") from None

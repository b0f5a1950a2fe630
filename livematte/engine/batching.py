"""One network, many streams: the frames that streams hand in together run as one batch.

Each stream (a WebRTC peer, a camera of a multi-source run) calls `infer` from its own thread and
gets its own people back; a single worker thread owns the network. The worker takes the first frame
that waits, gathers what else arrives within `window_ms` (or until `max_batch` frames), and runs one
inference per frame size. It never waits for a particular stream, so a slow or stalled stream holds
nobody up: the worst a stream adds to another's latency is the window. Per-stream state (tracking,
fusion) stays in each stream's FrameProcessor; only stateless engines are batched (per_stream False).

A batch the engine rejects (a ValueError: one stream's odd frame) is run again frame by frame, so the
error reaches only the stream that sent that frame.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from livematte.engine.base import Engine, EngineError, Instances

GPU_BATCH, CPU_BATCH = 8, 2  # engine.batch.max_batch when null, by where the network runs

if TYPE_CHECKING:
    import torch


@dataclass
class _Request:
    frames: Sequence[Any]
    result: Future = field(default_factory=Future)


class BatchingEngine(Engine):
    """The Engine protocol for any number of threads at once; every member of the engine is stated as its
    own (its device above all, so each stream's FrameProcessor uploads its frames there)."""

    def __init__(self, engine: Engine, *, window_ms: float, max_batch: int | None):
        if engine.per_stream:
            raise ValueError("an engine that keeps per-stream state cannot be shared between streams")
        self._engine = engine
        self._window_s, self.max_batch = window_ms / 1e3, max_batch_for(engine, max_batch)
        self._requests: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._batch_sizes: Counter[int] = Counter()  # frames per inference run -> how many runs
        self._closing, self._closed = threading.Lock(), False  # nothing is handed in after close()
        self._worker = threading.Thread(target=self._serve, name="batching", daemon=True)
        self._worker.start()

    @property
    def input_size(self) -> tuple[int, int]:
        return self._engine.input_size

    def infer(self, frames: Sequence[Any]) -> list[Instances]:
        if not len(frames):
            return []
        request = _Request(list(frames))
        with self._closing:
            if self._closed:
                raise EngineError("the shared engine was closed")
            self._requests.put(request)
        return request.result.result()

    @property
    def device(self) -> torch.device | None:
        return self._engine.device

    @property
    def per_stream(self) -> bool:
        return False

    def despill(self, pixels: Any) -> Any:
        return self._engine.despill(pixels)

    @property
    def plate_frames(self) -> int | None:
        return self._engine.plate_frames

    def capture_plate(self) -> None:
        self._engine.capture_plate()

    def batch_sizes(self) -> dict[int, int]:
        """Frames per inference -> inferences run so far."""
        return dict(self._batch_sizes)

    def close(self) -> None:
        """Stop the worker once the frames handed in so far are answered."""
        with self._closing:
            if not self._closed:
                self._closed = True
                self._requests.put(None)
        self._worker.join()

    def _serve(self) -> None:
        while True:
            first = self._requests.get()
            if first is None:
                return
            gathered, closing = self._gather(first)
            self._run(gathered)
            if closing:
                return

    def _gather(self, first: _Request) -> tuple[list[_Request], bool]:
        """The first request and those arriving within the window, up to max_batch frames; and whether
        close() was asked for meanwhile."""
        gathered, frames = [first], len(first.frames)
        deadline = time.perf_counter() + self._window_s
        while frames < self.max_batch:
            remaining = deadline - time.perf_counter()
            try:
                request = self._requests.get(timeout=remaining) if remaining > 0 else self._requests.get_nowait()
            except queue.Empty:
                break
            if request is None:
                return gathered, True
            gathered.append(request)
            frames += len(request.frames)
        return gathered, False

    def _run(self, gathered: list[_Request]) -> None:
        try:
            answers, sizes = infer_each(self._engine, [frame for request in gathered for frame in request.frames])
        except Exception as exc:  # the network failed: every stream of the batch hears why
            for request in gathered:
                request.result.set_exception(exc)
            return
        self._batch_sizes.update(sizes)
        start = 0
        for request in gathered:
            mine, start = answers[start:start + len(request.frames)], start + len(request.frames)
            rejected = next((a for a in mine if isinstance(a, ValueError)), None)
            if rejected is not None:
                request.result.set_exception(rejected)
            else:
                request.result.set_result(mine)


def max_batch_for(engine: Engine, configured: int | None) -> int:
    """engine.batch.max_batch, or where it is null the default for the engine's device."""
    if configured is not None:
        return configured
    return GPU_BATCH if engine.device is not None and engine.device.type == "cuda" else CPU_BATCH


def infer_each(engine: Engine, frames: list[Any]) -> tuple[list[Instances | ValueError], list[int]]:
    """Each frame's people, the frames of one size (and array kind) run as one inference; where the engine
    rejects a batch (a ValueError: one stream's odd frame), its frames again one by one, so that only the
    rejected frame's answer is the error. Also the number of frames of each inference that succeeded."""
    groups: dict[tuple, list[int]] = {}
    for i, frame in enumerate(frames):
        groups.setdefault((type(frame), tuple(frame.shape)), []).append(i)
    answers: list[Instances | ValueError | None] = [None] * len(frames)
    sizes: list[int] = []
    for indices in groups.values():
        try:
            found = engine.infer([frames[i] for i in indices])
            sizes.append(len(indices))
        except ValueError as exc:
            found = [exc] if len(indices) == 1 else [_alone(engine, frames[i], sizes) for i in indices]
        for i, answer in zip(indices, found):
            answers[i] = answer
    return answers, sizes


def _alone(engine: Engine, frame: Any, sizes: list[int]) -> Instances | ValueError:
    try:
        found = engine.infer([frame])[0]
    except ValueError as exc:
        return exc
    sizes.append(1)
    return found

"""Several sources in one process: one LivePipeline per stream, on one engine where it can be shared.

A network engine (E2E-HIM) is opened once and shared through a BatchingEngine, so the frames the
streams hand in together run as one batch (livematte/engine/batching.py); an engine that keeps
per-stream state (the learned CPU engine, keying) is opened once per stream. Each stream keeps its own
tracking, fusion, effects and sinks, and runs on threads of its own: a stream whose source stalls or
ends holds nobody up, and the run ends when every stream has.
"""

from __future__ import annotations

import logging
import threading
from contextlib import ExitStack
from dataclasses import dataclass

from livematte.config import Config
from livematte.engine.base import Engine
from livematte.engine.batching import BatchingEngine
from livematte.engine.choose import open_engine
from livematte.signals import first_stop_calls
from livematte.sources import Source
from pipelines.live import LivePipeline, RunReport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamsReport:
    reports: list[RunReport]  # one per stream, in the config's order
    engine: str
    batch_sizes: dict[int, int]  # frames per inference -> inferences (empty where each stream has its own engine)
    interrupted: bool = False


class StreamsRun:
    """The streams of `cfg` (Config.stream_configs), built and run together.

    sources: sources not yet started, one per stream, for a caller with frames of its own (the bench);
    None opens the ones the configs ask for. engine: an open engine and its description, for a caller
    that runs several times on one network (it is batched anew, and not closed); None opens it."""

    def __init__(self, cfg: Config, sources: list[Source] | None = None, engine: tuple[Engine, str] | None = None):
        configs = cfg.stream_configs()
        first, self.description = engine or open_engine(configs[0].engine, configs[0].footage)
        self.batching = None if first.per_stream else BatchingEngine(
            first, window_ms=cfg.engine.batch.window_ms, max_batch=cfg.engine.batch.max_batch)
        engines = [(self.batching, self.description)] * len(configs) if self.batching is not None else [
            (first, self.description), *(open_engine(c.engine, c.footage) for c in configs[1:])]
        self.pipelines = [LivePipeline(c, engine, None if sources is None else sources[i])
                          for i, (c, engine) in enumerate(zip(configs, engines))]

    def run(self, show_progress: bool = False) -> StreamsReport:
        """Until every stream has ended (its source, run.max_frames) or Ctrl-C, which stops them all."""
        reports: list[RunReport | BaseException | None] = [None] * len(self.pipelines)
        # Each stream says it ended through an Event: Ctrl-C landing in Thread.join() can leave CPython 3.11
        # taking a running thread for ended (its tstate lock released by the interrupted join).
        ended = [threading.Event() for _ in self.pipelines]

        def stream(i: int) -> None:
            try:
                reports[i] = self.pipelines[i].run(show_progress)
            except BaseException as exc:  # re-raised on the caller's thread once every stream has stopped
                reports[i] = exc
                self.stop()
            finally:
                ended[i].set()

        with ExitStack() as stack:
            if self.batching is not None:
                stack.callback(self.batching.close)
            for i in range(len(reports)):
                threading.Thread(target=stream, args=(i,), name=f"stream {i}", daemon=True).start()
            with first_stop_calls(self.stop) as stop_signal:  # a second signal: KeyboardInterrupt, nothing awaited
                for event in ended:
                    event.wait()
        interrupted = stop_signal.came
        if interrupted:
            log.info("stopped by Ctrl-C; every stream's outputs closed")
        failed = next((r for r in reports if isinstance(r, BaseException)), None)
        if failed is not None:
            raise failed
        return StreamsReport([r for r in reports if isinstance(r, RunReport)], self.description,
                             {} if self.batching is None else self.batching.batch_sizes(), interrupted)

    def stop(self) -> None:
        for pipeline in self.pipelines:
            pipeline.stop()

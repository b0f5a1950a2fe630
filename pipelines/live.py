"""The main job: source -> engine -> tracking + fusion -> compositor -> sinks.

Five threads hand frames on through one-slot mailboxes, so no stage can build a queue: the source's
reader (newest frame wins), an inference worker, a tracking worker (tracking, fusion) and a compositing
worker, which overlap (frame t is composited while t + 1 is tracked and t + 2 inferred: on two cores
the learned engine's three dancers went from 11.5 to 14 fps with the tracking split from inference,
bench/people_cpu.py), and the caller's thread, which writes the sinks (inference never runs there, so
a paced sink such as a virtual camera never stalls it). Offline sources (a file processed as fast as
possible) hand over losslessly end to end instead, so no frame is lost.

The three workers each run numba's parallel kernels at the same time, so each takes its share of the
cores (share_cores): on two cores a parallel region whose second thread is busy in another stage waits
for it; with one kernel thread per worker the dancers went from 25.6 to 27.4 fps at 720p
(bench/people_cpu.py's clip, alternated runs), the keying engine's synthetic scene stayed within noise.
"""

from __future__ import annotations

import logging
import os
import sys
import sysconfig
import threading
import time
from collections import deque
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TypeVar

import cv2
import numba
import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from livematte.config import Config, PngSinkConfig, SyntheticSourceConfig
from livematte.engine.base import Engine
from livematte.engine.choose import open_engine
from livematte.mailbox import Mailbox, MailboxClosed
from livematte.processor import STAGES as PROCESS_STAGES
from livematte.processor import STATS_WINDOW, FrameProcessor, Inferred, Processed, Tracked, medians
from livematte.signals import first_stop_calls
from livematte.sinks import FileSink, PngSink, Sink, open_sink
from livematte.sources import Source, SourceInfo, open_source

log = logging.getLogger(__name__)

STDLIB = sysconfig.get_paths()["stdlib"]
WORKER_STOP_S = 10  # how long a shutdown waits for each worker's current frame
STAGES = (*PROCESS_STAGES, "sinks")
A, B = TypeVar("A"), TypeVar("B")
WAITING_AFTER_S = 1.0  # a live source that has sent nothing this long after the start is shown as awaited
CARD_SIZE = (1280, 720)  # (width, height) of the card shown before a source's first picture
WORKERS = 3  # inference, tracking, compositing: each may run a parallel kernel while the others do


@dataclass(frozen=True)
class RunReport:
    frames: int
    seconds: float
    dropped: int
    engine: str = ""
    skip_rate: float = 0.0
    stage_ms: dict[str, float] = field(default_factory=dict)  # median per stage
    latency_ms: float = 0.0  # median capture -> handed to the sinks
    outputs: list[Path] = field(default_factory=list)
    interrupted: bool = False
    cards: int = 0  # frames of the "reconnecting" card sent while a live source was away
    first_frame_s: float = 0.0  # start -> first frame handed to the sinks (opening, warm-up, first inference)
    output_s: float = 0.0  # first -> last frame handed to the sinks
    dropped_running: int = 0  # of `dropped`, those after the first frame reached the sinks

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def steady_fps(self) -> float:
        """Frames per second once running: what a live source must be matched by (start-up excluded)."""
        return (self.frames - 1) / self.output_s if self.output_s > 0 else 0.0


class LivePipeline:
    def __init__(self, cfg: Config, engine: tuple[Engine, str] | None = None, source: Source | None = None):
        """engine: an open engine and its description, for a caller that runs several pipelines on one
        network; source: a source not yet started, for a caller with frames of its own. None opens the
        one cfg.engine / cfg.source asks for."""
        self.cfg = cfg
        self.engine, self.engine_description = engine or open_engine(cfg.engine, cfg.footage)
        self._source = source
        self.processor = FrameProcessor(cfg, self.engine)
        self.times: dict[str, deque[float]] = {**self.processor.times, "sinks": deque(maxlen=STATS_WINDOW)}
        self.latencies: deque[float] = deque(maxlen=STATS_WINDOW)
        self._stop = threading.Event()  # the workers end
        self._ending = threading.Event()  # run() ends (stop())

    def run(self, show_progress: bool = True) -> RunReport:
        """Until the source ends, `run.max_frames`, a preview window is closed, or Ctrl-C."""
        cfg = self.cfg
        frames, cards, interrupted = 0, 0, False
        started = time.perf_counter()
        first = last_out = started
        dropped_at_first = 0
        with ExitStack() as stack:
            stack.callback(self.processor.close)
            source = stack.enter_context(self._source or open_source(cfg.source))
            sinks = [stack.enter_context(open_sink(s, source.info.fps)) for s in cfg.sinks]
            people_sinks: dict[int, Sink] = {}
            stack.callback(lambda: [s.close() for s in people_sinks.values()])
            inferred: Mailbox[Inferred] = Mailbox(lossless=not source.info.live)
            tracked: Mailbox[Tracked] = Mailbox(lossless=not source.info.live)
            rendered: Mailbox[Processed] = Mailbox(lossless=not source.info.live)
            workers = [threading.Thread(target=self._infer, args=(source, inferred), name="infer", daemon=True),
                       threading.Thread(target=self._relay, name="stabilize", daemon=True,
                                        args=(inferred, self.processor.stabilize, tracked, self.processor.flush)),
                       threading.Thread(target=self._relay, args=(tracked, self.processor.render, rendered),
                                        name="render", daemon=True)]
            for worker in workers:
                worker.start()
            stack.push(lambda kind, *_: self._shutdown(source, (inferred, tracked, rendered), workers,
                                                       wait=kind is not KeyboardInterrupt))
            progress = stack.enter_context(self._progress(source, show_progress))
            task = progress.add_task("frames", total=self._expected_frames(), fps=0.0)
            last: np.ndarray | None = None
            card: tuple[str, np.ndarray] | None = None  # the card shown while no picture comes, and its text
            stop_signal = stack.enter_context(first_stop_calls(self.stop))  # a second: KeyboardInterrupt
            while True:
                try:
                    item = rendered.get(timeout=1.0 / source.info.fps)
                except MailboxClosed as closed:
                    if closed.__cause__ is not None:
                        raise closed.__cause__
                    break
                if item is None:
                    if self._ending.is_set():
                        break
                    text = card_text(source, last is not None, time.perf_counter() - last_out)
                    if text is not None:
                        card = card if card is not None and card[0] == text else (text, status_card(text, last))
                        for sink in sinks:  # viewers see why there is no picture, and the output keeps its pace
                            sink.write(card[1], at_ns=time.monotonic_ns())
                        cards += 1
                    continue
                last, card = item.image, None
                self._write(item, sinks, people_sinks, source.info)
                last_out = time.perf_counter()
                if frames == 0:
                    first, dropped_at_first = last_out, self._dropped(source, inferred, tracked, rendered)
                frames += 1
                progress.update(task, completed=frames, fps=frames / (time.perf_counter() - started))
                if frames == cfg.run.max_frames or any(s.wants_stop for s in sinks) or self._ending.is_set():
                    break
            interrupted = stop_signal.came
            if interrupted:
                log.info("stopped by Ctrl-C; closing outputs")
            dropped = self._dropped(source, inferred, tracked, rendered)
        outputs = [s.path for s in [*sinks, *people_sinks.values()] if isinstance(s, (FileSink, PngSink)) and s.frames]
        return RunReport(frames=frames, seconds=time.perf_counter() - started, dropped=dropped,
                         engine=self.engine_description, skip_rate=self.processor.skipper.skip_rate,
                         stage_ms=medians(self.times),
                         latency_ms=float(np.median(self.latencies)) if self.latencies else 0.0, outputs=outputs,
                         interrupted=interrupted, cards=cards, first_frame_s=first - started,
                         output_s=last_out - first, dropped_running=dropped - dropped_at_first)

    def stop(self) -> None:
        """End run() from another thread as it ends at run.max_frames: every output finalised."""
        self._ending.set()

    def _infer(self, source: Source, out: Mailbox[Inferred]) -> None:
        """First worker: newest frame -> the engine's people, handed to the tracking worker."""
        share_cores()
        try:
            for frame in source:
                if self._stop.is_set():
                    break
                if not out.put(self.processor.infer(frame)):
                    return
        except Exception as exc:  # re-raised on the caller's thread
            out.close(exc)
            return
        out.close()

    @staticmethod
    def _relay(inbox: Mailbox[A], work: Callable[[A], B | None], out: Mailbox[B],
               last: Callable[[], B | None] | None = None) -> None:
        """A worker after the first: each item through `work` (a None result is not handed on); when the
        inbox ends cleanly, what `last` still has (exact fusion's last frame)."""
        share_cores()
        try:
            while True:
                try:
                    item = inbox.get()
                except MailboxClosed as closed:
                    final = last() if last is not None and closed.__cause__ is None else None
                    if final is not None:
                        out.put(final)
                    out.close(closed.__cause__)
                    return
                result = work(item)
                if result is not None and not out.put(result):
                    inbox.discard()
                    return
        except Exception as exc:  # re-raised on the caller's thread
            inbox.discard()
            out.close(exc)

    def _write(self, item: Processed, sinks: list[Sink], people_sinks: dict[int, Sink], info: SourceInfo) -> None:
        """A live source's pictures carry their capture time to the sinks; a file's follow at its rate."""
        start = time.perf_counter()
        self.latencies.append((time.monotonic_ns() - item.frame.capture_ns) / 1e6)
        at_ns = item.frame.capture_ns if info.live else None
        for sink in sinks:
            sink.write(item.image, at_ns=at_ns)
        for track, layer in item.isolated.items():
            if track not in people_sinks:
                people_sinks[track] = open_sink(
                    PngSinkConfig(path=self.cfg.effects.isolate_path / f"person_{track}"), info.fps)
            people_sinks[track].write(layer, at_ns=at_ns)
        self.times["sinks"].append((time.perf_counter() - start) * 1e3)

    @staticmethod
    def _dropped(source: Source, *mailboxes: Mailbox) -> int:
        return source.dropped + sum(m.dropped for m in mailboxes)

    def _shutdown(self, source: Source, mailboxes: tuple[Mailbox, ...], workers: list[threading.Thread],
                  wait: bool) -> None:
        """wait: for each worker's current frame (bounded); not after a second stop signal, which asks for
        the outputs to be closed now."""
        self._stop.set()
        source.close()
        for mailbox in mailboxes:
            mailbox.discard()
        for worker in workers if wait else ():
            worker.join(timeout=WORKER_STOP_S)
            if worker.is_alive():
                log.warning("the %s worker did not stop within %g s (busy in %s); closing the outputs without it",
                            worker.name, WORKER_STOP_S, _where(worker))

    def _expected_frames(self) -> int | None:
        total = self.cfg.run.max_frames
        source = self.cfg.source
        if isinstance(source, SyntheticSourceConfig) and source.frames is not None:
            total = min(total or source.frames, source.frames)
        return total

    @staticmethod
    def _progress(source: Source, show: bool) -> Progress:
        return Progress(TextColumn(f"[bold]{source.info.name}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("{task.fields[fps]:.1f} fps"), disable=not show, transient=True)


def _where(thread: threading.Thread) -> str:
    """The innermost place outside Python's standard library that a thread is running (its own frame when
    waiting on a lock says nothing), for a shutdown that has to leave it behind."""
    frame = sys._current_frames().get(thread.ident)
    while frame is not None and frame.f_code.co_filename.startswith(STDLIB) and frame.f_back is not None:
        frame = frame.f_back
    if frame is None:
        return "an unknown place"
    return f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno} {frame.f_code.co_name}"


def share_cores() -> None:
    """The calling worker's numba kernels run on its share of the cores, at least one thread (numba's
    thread count is per calling thread)."""
    numba.set_num_threads(max(1, min(numba.config.NUMBA_NUM_THREADS, (os.cpu_count() or 1) // WORKERS)))


def card_text(source: Source, shown: bool, silent_s: float) -> str | None:
    """What the outputs of a live source say while it sends no picture (None: nothing to say yet). shown:
    a picture was output; silent_s: seconds since the last one (since the start before the first)."""
    info = source.info
    if not info.live:
        return None
    if not shown:  # before the first picture: down at start, or still connecting
        return f"waiting for {info.name}..." if source.status != "running" and silent_s >= WAITING_AFTER_S else None
    if source.status == "reconnecting":
        return f"reconnecting to {info.name}..."
    if info.stall_s is not None and silent_s >= info.stall_s:  # connected, but nothing comes
        return f"waiting for {info.name}..."
    return None


def status_card(text: str, image: np.ndarray | None) -> np.ndarray:
    """The last picture dimmed (a dark CARD_SIZE picture before the first one), with `text` across it."""
    if image is None:
        card = np.full((CARD_SIZE[1], CARD_SIZE[0], 3), 32, np.uint8)
    else:
        card = (image.astype(np.uint16) * 2 // 5).astype(np.uint8)
    height, width = card.shape[:2]
    scale = max(0.5, width / 1280)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
    origin = (max(0, (width - tw) // 2), (height + th) // 2)
    colour = (255, 255, 255, 255)[: card.shape[2]]
    cv2.putText(card, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 2, cv2.LINE_AA)
    if card.shape[2] == 4:
        card[..., 3] = 255
    return card


def run(cfg: Config, show_progress: bool = True) -> RunReport:
    pipeline = LivePipeline(cfg)
    log.info(pipeline.engine_description)
    return pipeline.run(show_progress)

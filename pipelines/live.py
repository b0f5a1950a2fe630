"""The main job: frames from a source to every sink, with a progress display and a closing report."""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from livematte.config import Config, SyntheticSourceConfig
from livematte.sinks import FileSink, PngSink, open_sink
from livematte.sources import open_source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunReport:
    frames: int
    seconds: float
    dropped: int
    outputs: list[Path] = field(default_factory=list)
    interrupted: bool = False

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def run(cfg: Config, show_progress: bool = True) -> RunReport:
    """Run until the source ends, `run.max_frames` is reached, a preview window is closed or Ctrl-C."""
    total = cfg.run.max_frames
    if isinstance(cfg.source, SyntheticSourceConfig) and cfg.source.frames is not None:
        total = min(total or cfg.source.frames, cfg.source.frames)
    frames, interrupted = 0, False
    started = time.perf_counter()
    with ExitStack() as stack:
        source = stack.enter_context(open_source(cfg.source))
        sinks = [stack.enter_context(open_sink(s, source.info.fps)) for s in cfg.sinks]
        progress = stack.enter_context(Progress(
            TextColumn(f"[bold]{source.info.name}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("{task.fields[fps]:.1f} fps"), disable=not show_progress, transient=True))
        task = progress.add_task("frames", total=total, fps=0.0)
        try:
            for frame in source:
                for sink in sinks:
                    sink.write(frame.pixels)
                frames += 1
                progress.update(task, completed=frames, fps=frames / (time.perf_counter() - started))
                if frames == cfg.run.max_frames or any(s.wants_stop for s in sinks):
                    break
        except KeyboardInterrupt:
            interrupted = True
            log.info("stopped by Ctrl-C; closing outputs")
        dropped = source.dropped
    outputs = [s.path for s in sinks if isinstance(s, (FileSink, PngSink)) and s.frames]
    return RunReport(frames, time.perf_counter() - started, dropped, outputs, interrupted)

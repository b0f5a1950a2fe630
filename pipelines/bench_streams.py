"""`livematte bench --streams N`: N live synthetic streams at once through one process (pipelines/streams.py).

Each stream is the config's synthetic scene (its own seed) paced at its rate, into a null sink. With a
network engine the streams share it twice, in alternating rounds so both meet the same host moments:
batched (up to engine.batch.max_batch frames an inference) and one frame at a time (max_batch 1, what
a lock in front of the network gives). The report has, per mode and stream, frames per second once
running and capture-to-output latency p50/p99; the batch sizes formed; how many streams kept their
source's rate; the network's own time for one frame (the engine period). An engine that keeps
per-stream state (learned, keying) runs one engine per stream, in one mode.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from livematte.config import Config, NullSinkConfig, RunConfig, StreamConfig, SyntheticSourceConfig
from livematte.engine.base import Engine
from livematte.engine.batching import max_batch_for
from livematte.engine.choose import open_engine
from livematte.synthetic import SyntheticScene
from pipelines.bench import percentiles
from pipelines.report import machine, write_report
from pipelines.streams import StreamsRun

HELD = 0.95  # a stream keeps its source's rate when it outputs at least this share of it
ROUNDS = 2  # rounds of each mode, alternated


def streams_config(cfg: Config, streams: int, frames: int) -> Config:
    """`streams` live copies of the config's synthetic scene (a default one for other sources), seeds 0..N-1."""
    scene = cfg.source if isinstance(cfg.source, SyntheticSourceConfig) else SyntheticSourceConfig()
    return cfg.model_copy(update={
        "streams": [StreamConfig(source=scene.model_copy(update={"seed": i, "realtime": True, "frames": None}),
                                 sinks=[NullSinkConfig()]) for i in range(streams)],
        "run": RunConfig(max_frames=frames, log_level=cfg.run.log_level)})


def engine_period_ms(engine: Engine, source: SyntheticSourceConfig, repeats: int = 5) -> float:
    """The engine's median time for one frame of the scene, alone."""
    frame = SyntheticScene(source.width, source.height, source.people).render(0)[0]
    engine.infer([frame])
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        engine.infer([frame])
        times.append((time.perf_counter() - start) * 1e3)
    return round(float(np.median(times)), 3)


def run_mode(cfg: Config, engine: tuple[Engine, str]) -> dict:
    run = StreamsRun(cfg, engine=engine)
    done = run.run()
    per_stream = [{"fps": round(r.steady_fps, 2), "latency_ms": percentiles(list(p.latencies)),
                   "dropped_running": r.dropped_running} for r, p in zip(done.reports, run.pipelines)]
    rate = cfg.stream_configs()[0].source.fps
    latencies = [x for p in run.pipelines for x in p.latencies]
    return {"total_fps": round(sum(s["fps"] for s in per_stream), 2), "streams_held": sum(
        s["fps"] >= HELD * rate for s in per_stream), "latency_ms": percentiles(latencies),
        "batch_sizes": {str(n): c for n, c in sorted(done.batch_sizes.items())}, "streams": per_stream}


def streams_bench(cfg: Config, streams: int, frames: int, out: Path, name: str = "streams") -> tuple[dict, Path]:
    """Writes <out>/<name>_<date>.json."""
    cfg = streams_config(cfg, streams, frames)
    first = cfg.stream_configs()[0]
    engine = open_engine(first.engine, first.footage)
    batch = cfg.engine.batch
    modes = {"own engine per stream": cfg} if engine[0].per_stream else {
        "batched": cfg,
        "one at a time": cfg.model_copy(update={"engine": cfg.engine.model_copy(
            update={"batch": batch.model_copy(update={"max_batch": 1})})})}
    rounds: dict[str, list[dict]] = {mode: [] for mode in modes}
    for _ in range(1 if engine[0].per_stream else ROUNDS):
        for mode, mode_cfg in modes.items():
            rounds[mode].append(run_mode(mode_cfg, engine))
    report = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": machine(),
        "benchmark": f"{streams} live synthetic streams at {first.source.fps:g} fps in one process, "
                     f"{frames} frames each, null sinks",
        "engine": engine[1],
        "engine_period_ms": engine_period_ms(engine[0], first.source),
        "batch": {"max_batch": max_batch_for(engine[0], batch.max_batch), "window_ms": batch.window_ms},
        "config": cfg.model_dump(mode="json"),
        "modes": rounds,
    }
    if len(modes) == 2:
        batched, single = (rounds[m] for m in modes)
        report["batched_over_single"] = {
            "total_fps": round(sum(r["total_fps"] for r in batched) / sum(r["total_fps"] for r in single), 3),
            "latency_p99_ms_difference": round(float(np.mean([b["latency_ms"]["p99"] - s["latency_ms"]["p99"]
                                                              for b, s in zip(batched, single)])), 1)}
    return report, write_report(report, out, name)


def print_streams_summary(console: Console, report: dict) -> None:
    table = Table(title=f"livematte bench: {report['benchmark']}")
    for column in ("mode", "round", "total fps", "streams held", "latency p50 ms", "latency p99 ms", "batch sizes"):
        table.add_column(column)
    for mode, rounds in report["modes"].items():
        for i, r in enumerate(rounds):
            table.add_row(mode, str(i + 1), f"{r['total_fps']:.1f}", f"{r['streams_held']}/{len(r['streams'])}",
                          f"{r['latency_ms'].get('p50', 0):.0f}", f"{r['latency_ms'].get('p99', 0):.0f}",
                          ", ".join(f"{n}: {c}" for n, c in r["batch_sizes"].items()) or "-")
    console.print(table)
    console.print(f"engine: {report['engine']}; one frame alone {report['engine_period_ms']:.1f} ms; batched: "
                  f"up to {report['batch']['max_batch']} frames gathered for {report['batch']['window_ms']:g} ms")
    if "batched_over_single" in report:
        ratio = report["batched_over_single"]
        console.print(f"batched / one at a time: total fps {ratio['total_fps']:.2f}x, latency p99 "
                      f"{ratio['latency_p99_ms_difference']:+.0f} ms")

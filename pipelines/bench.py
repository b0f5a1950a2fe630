"""`livematte bench`: run the live pipeline for N frames and report where the time goes.

The report (JSON + PNG plots) has per-stage p50/p95/p99, FPS once running (start-up apart), the
capacity (FPS with the synthetic source unpaced), dropped frames, capture-to-sink latency (and so the
delay audio must be offset by), engine time against the number of people (synthetic
scenes) and against the frame size. `--compare` runs a second config in the same process and prints
the ratios, which is the only fair comparison on a shared machine.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from livematte.config import Config, NullSinkConfig, SyntheticSourceConfig  # noqa: E402
from livematte.engine.base import Engine  # noqa: E402
from livematte.engine.choose import open_engine  # noqa: E402
from livematte.sources import Source  # noqa: E402
from livematte.synthetic import SyntheticScene  # noqa: E402
from pipelines.live import STAGES, LivePipeline  # noqa: E402
from pipelines.report import machine, report_path, write_report  # noqa: E402

PEOPLE = (1, 2, 4, 6, 10, 20)
SIZES = ((360, 640), (720, 1280), (1080, 1920))


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"p50": round(float(p50), 3), "p95": round(float(p95), 3), "p99": round(float(p99), 3)}


def pipeline_run(cfg: Config, frames: int, engine: tuple[Engine, str] | None = None,
                 source: Source | None = None) -> tuple[dict, list[float]]:
    """The pipeline on `cfg` for `frames` frames into a null sink; its timing summary and latencies.
    engine, source: see LivePipeline."""
    cfg = cfg.model_copy(update={"sinks": [NullSinkConfig()], "run": cfg.run.model_copy(update={"max_frames": frames})})
    pipeline = LivePipeline(cfg, engine, source)
    report = pipeline.run(show_progress=True)
    latency = percentiles(pipeline.latencies)
    return {
        "engine": report.engine,
        "frames": report.frames,
        "seconds": round(report.seconds, 3),
        "fps": round(report.steady_fps, 2),  # once running; start-up is first_frame_s
        "fps_with_startup": round(report.fps, 2),
        "first_frame_s": round(report.first_frame_s, 3),
        "dropped": report.dropped,
        "dropped_running": report.dropped_running,
        "inference_skipped": round(report.skip_rate, 3),
        "stage_ms": {stage: percentiles(pipeline.times[stage]) for stage in STAGES},
        "latency_ms": latency,
        "audio_delay_ms": latency.get("p50", 0.0),
    }, pipeline.latencies


def capacity(cfg: Config, frames: int) -> float | None:
    """Frames per second with the synthetic source unpaced (handed over losslessly, as fast as the stages
    go): the headroom above a live source's rate. None for other sources, which cannot be unpaced."""
    if not isinstance(cfg.source, SyntheticSourceConfig):
        return None
    unpaced = cfg.model_copy(update={"source": cfg.source.model_copy(update={"realtime": False, "frames": frames})})
    return pipeline_run(unpaced, frames)[0]["fps"]


def engine_sweep(cfg: Config, people: tuple[int, ...], sizes: tuple[tuple[int, int], ...], repeats: int) -> dict:
    """Engine milliseconds (median) against people in the frame and against frame size."""
    engine, _ = open_engine(cfg.engine, cfg.footage)
    height, width = _frame_size(cfg)

    def timed(scene: SyntheticScene) -> float:
        frames = [scene.render(i)[0] for i in range(repeats + 1)]
        engine.infer(frames[:1])  # warm-up: first calls allocate
        times = []
        for frame in frames[1:]:
            start = time.perf_counter()
            engine.infer([frame])
            times.append((time.perf_counter() - start) * 1e3)
        return round(float(np.median(times)), 3)

    by_people = {str(n): timed(SyntheticScene(width, height, n, seed=n)) for n in people}
    by_size = {f"{w}x{h}": timed(SyntheticScene(w, h, 4, seed=4)) for h, w in sizes}
    return {"frame": f"{width}x{height}", "ms_by_people": by_people, "ms_by_frame_size_4_people": by_size}


def _frame_size(cfg: Config) -> tuple[int, int]:
    source = cfg.source
    if isinstance(source, SyntheticSourceConfig):
        return source.height, source.width
    return 720, 1280


def plot(report: dict, latencies: list[float], folder: Path, stem: str) -> list[Path]:
    """stages.png (p50/p95/p99 per stage), latency.png (per frame), engine.png (people, size)."""
    paths = []
    stages = report["pipeline"]["stage_ms"]
    names = [s for s in STAGES if stages.get(s)]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for k, (key, offset) in enumerate((("p50", -0.25), ("p95", 0), ("p99", 0.25))):
        ax.bar(np.arange(len(names)) + offset, [stages[s][key] for s in names], width=0.25, label=key)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("ms per frame")
    ax.set_title(f"per-stage time over {report['pipeline']['frames']} frames", fontsize=9)
    ax.legend()
    paths.append(_save(fig, folder / f"{stem}_stages.png"))

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(latencies, lw=1)
    ax.set_xlabel("frame")
    ax.set_ylabel("capture -> sink, ms")
    ax.set_ylim(bottom=0)
    ax.set_title("glass-to-glass latency", fontsize=9)
    paths.append(_save(fig, folder / f"{stem}_latency.png"))

    sweep = report["engine_sweep"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.5))
    people = sweep["ms_by_people"]
    left.plot([int(n) for n in people], list(people.values()), marker="o")
    left.set_xlabel(f"people in a {sweep['frame']} frame")
    left.set_ylabel("engine ms")
    left.set_ylim(bottom=0)
    sizes = sweep["ms_by_frame_size_4_people"]
    right.bar(list(sizes), list(sizes.values()))
    right.set_xlabel("frame size (4 people)")
    paths.append(_save(fig, folder / f"{stem}_engine.png"))
    return paths


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def bench(cfg: Config, frames: int, out: Path, people: tuple[int, ...] = PEOPLE,
          sizes: tuple[tuple[int, int], ...] = SIZES, repeats: int = 5, name: str = "bench") -> tuple[dict, Path]:
    """Run the whole benchmark for one config; writes <out>/<name>_<date>.json and its plots."""
    pipeline, latencies = pipeline_run(cfg, frames)
    pipeline["capacity_fps"] = capacity(cfg, frames)
    report = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": machine(),
        "config": cfg.model_dump(mode="json"),
        "pipeline": pipeline,
        "engine_sweep": engine_sweep(cfg, people, sizes, repeats),
    }
    stem = report_path(out, name).stem
    report["plots"] = [p.name for p in plot(report, latencies, out, stem)]
    return report, write_report(report, out, name)


def print_summary(console: Console, reports: dict[str, dict]) -> None:
    """One table of the headline numbers; with two configs, the ratio second / first."""
    table = Table(title="livematte bench")
    table.add_column("")
    for label in reports:
        table.add_column(label)
    if len(reports) == 2:
        table.add_column("ratio")
    rows = [("fps", lambda r: r["pipeline"]["fps"]), ("capacity fps", lambda r: r["pipeline"]["capacity_fps"] or 0),
            ("latency p50 ms", lambda r: r["pipeline"]["latency_ms"].get("p50", 0))]
    rows += [(f"{stage} p50 ms", lambda r, s=stage: r["pipeline"]["stage_ms"].get(s, {}).get("p50", 0))
             for stage in STAGES]
    for label, get in rows:
        values = [get(r) for r in reports.values()]
        cells = [f"{v:.2f}" for v in values]
        if len(values) == 2:
            cells.append(f"{values[1] / values[0]:.2f}x" if values[0] else "-")
        table.add_row(label, *cells)
    console.print(table)

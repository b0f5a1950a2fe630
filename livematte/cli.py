"""The `livematte` command: run, warmup, bench, config, models, weights, export, serve, train, eval."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from livematte.cli_args import add_config_args, positive, size
from livematte.compositor import CompositorError
from livematte.config import Config, ConfigError, load_config
from livematte.engine.base import EngineError
from livematte.mediapipe.cli import add_models_parser
from livematte.memory import tune_process
from livematte.signals import stop_as_ctrl_c
from livematte.sinks import SinkError
from livematte.sources import SourceError
from livematte.webrtc.cli import add_serve_parser

if TYPE_CHECKING:
    from pipelines.live import RunReport
    from pipelines.streams import StreamsReport

console = Console(stderr=True)
log = logging.getLogger(__name__)


def _run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.overrides)
    logging.getLogger().setLevel(cfg.run.log_level.upper())
    if cfg.cluster.address is not None:
        return _run_streams(cfg, _cluster_run(cfg))
    if cfg.streams:
        from pipelines.streams import StreamsRun

        streams = StreamsRun(cfg)
        for i, pipeline in enumerate(streams.pipelines):
            log.info("stream %d: %s", i, pipeline.engine_description)
        return _run_streams(cfg, streams.run())
    from pipelines.live import run

    report = run(cfg, show_progress=console.is_terminal)
    console.print(_summary(report) + (" (stopped early)" if report.interrupted else ""), soft_wrap=True)
    for path in report.outputs:
        print(path.resolve())
    return 0


def _cluster_run(cfg: Config) -> StreamsReport:
    try:
        from pipelines.cluster import run_on_cluster
    except ImportError as exc:
        raise ConfigError(f"cluster.address needs Ray ({exc}): pip install -e '.[cluster]', or remove "
                          "cluster.address to run in this process") from None
    return run_on_cluster(cfg)


def _run_streams(cfg: Config, done: StreamsReport) -> int:
    for i, (stream, report) in enumerate(zip(cfg.stream_configs(), done.reports)):
        console.print(f"stream {i} ({stream.source.kind}): {_summary(report)}", soft_wrap=True)
    if done.batch_sizes:
        runs = ", ".join(f"{n}: {count}x" for n, count in sorted(done.batch_sizes.items()))
        console.print(f"frames per inference (batched across the streams): {runs}")
    if done.interrupted:
        console.print("(stopped early)")
    for report in done.reports:
        for path in report.outputs:
            print(path.resolve())
    return 0


def _summary(report: RunReport) -> str:
    stages = ", ".join(f"{name} {ms:.1f}" for name, ms in report.stage_ms.items())
    summary = (f"{report.frames} frames in {report.seconds:.1f} s ({report.steady_fps:.1f} fps once running, "
               f"first frame after {report.first_frame_s:.1f} s), {report.dropped} dropped "
               f"({report.dropped_running} once running), "
               f"{report.skip_rate:.0%} inference skipped; median ms per frame: {stages}; "
               f"capture-to-output latency {report.latency_ms:.0f} ms")
    if report.cards:
        summary += f"; the source was away for {report.cards} frames (reconnecting card shown)"
    return summary


def _bench(args: argparse.Namespace) -> int:
    from pipelines.bench import bench, print_summary

    if args.streams:
        return _bench_streams(args)
    configs = {"config": load_config(args.config, args.overrides)}
    if args.compare:
        configs["compare"] = load_config(args.compare, args.overrides)
    reports = {}
    for label, cfg in configs.items():
        name = args.name if label == "config" else f"{args.name}_compare"
        report, path = bench(cfg, args.frames, args.out, tuple(args.people), tuple(args.sizes), name=name)
        reports[label] = report
        print(path.resolve())
    print_summary(console, reports)
    return 0


def _bench_streams(args: argparse.Namespace) -> int:
    from pipelines.bench_streams import print_streams_summary, streams_bench

    if args.compare:
        raise ConfigError("--streams compares its modes itself (batched against one frame at a time); drop --compare")
    report, path = streams_bench(load_config(args.config, args.overrides), args.streams, args.frames, args.out,
                                 name=f"{args.name}_streams")
    print(path.resolve())
    print_streams_summary(console, report)
    return 0


# Tiny jobs that reach every CPU kernel `make run` and a video call use (the default preset's effects, then
# blurs), so that numba compiles them once, at set-up, not while a first run shows nothing.
WARMUP_JOBS = ([], ["effects.background.kind=blur", "effects.default.effect=blur"])


def _warmup(args: argparse.Namespace) -> int:
    from pipelines.live import run

    logging.getLogger().setLevel("WARNING")  # the tiny jobs' engine choice is no news to a user setting up
    with console.status("compiling the CPU kernels (once; numba caches them next to their sources)"):
        importlib.import_module("livematte.mediapipe.split")  # the learned engine's loop compiles as it loads
        for extra in WARMUP_JOBS:
            cfg = load_config(overrides=["source.width=64", "source.height=48", "source.frames=3",
                                         "sinks.0.kind=null", *extra])
            run(cfg, show_progress=False)
    console.print("CPU kernels compiled")
    return 0


def _show_config(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.overrides)
    print(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The commands that load torch are imported here, after main() tuned the process: libgomp reads how its
    threads wait when torch loads it (livematte/memory.py)."""
    from livematte.eval.cli import add_eval_parser
    from livematte.export.cli import add_export_parser
    from livematte.model.weights_cli import add_weights_parser
    from livematte.train.cli import add_train_parser

    parser = argparse.ArgumentParser(prog="livematte", description="Real-time per-person video matting.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the live pipeline (the main job)")
    add_config_args(run)
    run.set_defaults(func=_run)
    commands.add_parser("warmup", help="compile the CPU kernels now (the set-up runs it)").set_defaults(func=_warmup)
    show = commands.add_parser("config", help="print the effective configuration after --config and --set")
    add_config_args(show)
    show.set_defaults(func=_show_config)
    bench = commands.add_parser("bench", help="run the pipeline for N frames; JSON report and plots")
    add_config_args(bench)
    bench.add_argument("--frames", type=positive, default=300, help="frames through the pipeline (default 300)")
    bench.add_argument("--compare", metavar="FILE", help="a second config, run in the same process; prints ratios")
    bench.add_argument("--out", type=Path, default=Path("bench/results"), help="folder of the report and plots")
    bench.add_argument("--name", default="bench", help="file name stem of the report (default bench)")
    bench.add_argument("--people", type=int, nargs="+", default=[1, 2, 4, 6, 10, 20], help="engine sweep: people")
    bench.add_argument("--sizes", type=size, nargs="+", default=[(360, 640), (720, 1280), (1080, 1920)],
                       metavar="WxH", help="engine sweep: frame sizes")
    bench.add_argument("--streams", type=positive, metavar="N",
                       help="N live synthetic streams at once on one engine (a network's frames batched across them, "
                            "against one frame at a time); per-stream fps and latency, batch sizes")
    bench.set_defaults(func=_bench)
    add_models_parser(commands)
    add_weights_parser(commands)
    add_train_parser(commands)
    add_eval_parser(commands)
    add_export_parser(commands)
    add_serve_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    tune_process()
    stop_as_ctrl_c()
    logging.basicConfig(level="INFO", format="%(message)s", handlers=[RichHandler(console=console, show_path=False)])
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, SourceError, SinkError, EngineError, CompositorError) as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:  # a stop before the pipeline handles Ctrl-C itself, or a second one during shutdown
        console.print("stopped")
        return 130


if __name__ == "__main__":
    sys.exit(main())

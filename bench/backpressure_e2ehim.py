"""Backpressure with a slow engine: E2E-HIM on this CPU behind a live 30 fps camera.

The engine takes far longer than a camera frame, so the camera produces many frames per inference.
Newest-frame handover drops the stale ones (counted), and capture-to-output latency must stay near
one engine period for the whole run instead of growing with every frame. The network's weights are
random: its speed does not depend on their values, and the official checkpoint is not available here.

    .venv/bin/python bench/backpressure_e2ehim.py [--frames 300] [--input-size 352 640]
writes bench/results/backpressure_e2ehim_cpu_<date>.json and a latency plot next to it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
from pathlib import Path

from livematte.memory import tune_process

tune_process()  # before torch loads: libgomp reads then how its threads wait, as in livematte's commands

import matplotlib

import livematte

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from random_network import random_network  # noqa: E402

from livematte.config import load_config  # noqa: E402
from pipelines.bench import pipeline_run  # noqa: E402
from pipelines.report import machine, report_path, write_report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=300, help="frames that reach the sink")
    parser.add_argument("--input-size", type=int, nargs=2, default=(352, 640), metavar=("H", "W"))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        cfg = load_config(ROOT / "configs" / "bench.yaml", random_network(Path(folder), args.input_size))
        summary, latencies = pipeline_run(cfg, args.frames)

    latencies = np.asarray(latencies)
    engine_ms = summary["stage_ms"]["engine"]["p50"]
    tenth = max(1, len(latencies) // 10)
    early, late = float(np.median(latencies[:tenth])), float(np.median(latencies[-tenth:]))
    today = dt.date.today().isoformat()
    report = {
        "benchmark": "backpressure: E2E-HIM (random weights) on CPU behind a live 30 fps 1280x720 source",
        "date": today,
        "device": machine(),
        "livematte": livematte.__version__,
        "input_size": list(args.input_size),
        "pipeline": summary,
        "camera_frames_per_output": round((summary["dropped"] + summary["frames"]) / summary["frames"], 1),
        "latency_over_engine_p50": round(summary["latency_ms"]["p50"] / engine_ms, 2),
        "latency_over_engine_p99": round(summary["latency_ms"]["p99"] / engine_ms, 2),
        "latency_first_tenth_ms": round(early, 1),
        "latency_last_tenth_ms": round(late, 1),
    }
    plot = report_path(args.out, "backpressure_e2ehim_cpu").with_suffix(".png")
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(latencies, lw=1, label="capture -> sink")
    ax.axhline(engine_ms, color="grey", ls="--", lw=1, label="engine p50")
    ax.set_xlabel("output frame")
    ax.set_ylabel("ms")
    ax.set_ylim(bottom=0)
    ax.set_title(f"E2E-HIM {args.input_size[1]}x{args.input_size[0]} on CPU, 30 fps camera: "
                 f"{summary['dropped']} stale frames dropped", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(plot, dpi=100)
    report["plot"] = plot.name
    path = write_report(report, args.out, "backpressure_e2ehim_cpu")
    print(json.dumps({k: v for k, v in report.items() if k not in ("device", "pipeline")}, indent=2))
    print(path)


if __name__ == "__main__":
    main()

"""E2E-HIM on this CPU: torch eager against ONNX Runtime, same weights, same run.

    .venv/bin/python bench/onnx_cpu.py [--repeats 5] [--out bench/results] [--graphs DIR]

Random weights (the compute does not depend on their values). At 640x352 and 640x640 (W x H),
batch 1, the network alone (normalised image in, raw outputs out): torch as the engine runs it
(fp32, channels_last, fused alpha head) against ONNX Runtime's CPU provider on the fp32 export
(whose alpha head is the unfused one: the fused head's groups are the batch size). Both run on the
default thread count and on one thread each: one thread compares the kernels alone, the default
also how each copes with cores shared with other work. The two alternate run by run, so a change
in the load of the shared CPU touches both; median and min of --repeats runs after a warm-up, and
torch / ONNX Runtime ratios (the median of the ratios of adjacent runs is the one least moved by
other work). Also recorded: the export time, the largest output difference, the load average.
Writes bench/results/onnx_cpu_<date>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from livematte.memory import tune_process

tune_process()  # before torch loads: libgomp reads then how its threads wait, as in livematte's commands

import numpy as np
import onnxruntime as ort
import torch
from model_cpu import SIZES, summary

import livematte
from livematte.export.onnx import INPUT, OUTPUTS, export_onnx
from livematte.model.e2ehim import E2EHIM
from pipelines.report import cpu_model, openmp_wait, write_report

DEFAULT_THREADS = torch.get_num_threads()


def time_pair(model: E2EHIM, path: Path, size: tuple[int, int], threads: int, repeats: int) -> dict:
    """torch and ONNX Runtime on `threads` threads each, alternating run by run."""
    torch.set_num_threads(threads)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    image = torch.randn(1, 3, *size)
    fast_image = image.contiguous(memory_format=torch.channels_last)
    feed = {INPUT: image.numpy()}
    times: dict[str, list[float]] = {"torch": [], "onnxruntime": []}
    with torch.inference_mode():
        for _ in range(repeats + 1):  # the first pair is the warm-up
            for label, call in (("torch", lambda: model(fast_image)), ("onnxruntime", lambda: session.run(None, feed))):
                start = time.perf_counter()
                call()
                times[label].append(time.perf_counter() - start)
    times = {label: runs[1:] for label, runs in times.items()}
    pairs = [t / o for t, o in zip(times["torch"], times["onnxruntime"])]
    row = {"threads": threads, "torch": summary(times["torch"]), "onnxruntime": summary(times["onnxruntime"]),
           "load_after": os.getloadavg()[0]}
    row["ratio_torch_over_onnxruntime"] = {
        "median_of_adjacent_pairs": round(statistics.median(pairs), 3),
        "of_medians": round(row["torch"]["median_ms"] / row["onnxruntime"]["median_ms"], 3),
        "of_mins": round(row["torch"]["min_ms"] / row["onnxruntime"]["min_ms"], 3)}
    return row


def bench_size(model: E2EHIM, name: str, size: tuple[int, int], repeats: int, folder: Path) -> dict:
    path = folder / f"e2ehim_random_seed0_{name}.onnx"
    export_s = None  # None: the graph of an earlier run was reused (--graphs)
    if not path.is_file():
        started = time.perf_counter()
        export_onnx(model, path, size)
        export_s = round(time.perf_counter() - started, 1)
    image = torch.randn(2, 3, *size)
    with torch.inference_mode():
        expected = model(image.contiguous(memory_format=torch.channels_last))
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {INPUT: image.numpy()})
    row = {"size": name, "export_s": export_s,
           "max_abs_difference": {n: float(np.abs(g - e.numpy()).max()) for n, g, e in zip(OUTPUTS, got, expected)},
           "timings": [time_pair(model, path, size, threads, repeats) for threads in (DEFAULT_THREADS, 1)]}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--graphs", type=Path, help="keep the exported graphs here and reuse them in later runs")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = E2EHIM().eval().to(memory_format=torch.channels_last)
    load_before = os.getloadavg()
    with torch.inference_mode():
        model(torch.zeros(1, 3, 64, 64).contiguous(memory_format=torch.channels_last))  # first-call set-up
    with tempfile.TemporaryDirectory() as temporary:
        folder = args.graphs or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        rows = [bench_size(model, name, size, args.repeats, folder) for name, size in SIZES.items()]
    result = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_default_threads": DEFAULT_THREADS,
                   "torch": torch.__version__, "onnxruntime": ort.__version__, "python": platform.python_version(),
                   "numpy": np.__version__, "openmp_wait": openmp_wait(),
                   "livematte": livematte.__version__},
        "batch": 1, "weights": "random", "torch_config": "fp32, channels_last, fused alpha head, inference_mode",
        "onnxruntime_config": "CPUExecutionProvider, fp32 export (opset 18), default graph optimisations",
        "load_average_before": load_before,
        "sizes": rows,
        "load_average_after": os.getloadavg(),
        "note": ("The 2-core CPU is shared with other engineers' processes; torch and ONNX Runtime alternate "
                 "run by run so both see the same load. A 1-minute load average well above the thread count "
                 "means the benchmark got only part of the cores; min_ms is the least disturbed run."),
    }
    print(f"wrote {write_report(result, args.out, 'onnx_cpu')}")


if __name__ == "__main__":
    main()

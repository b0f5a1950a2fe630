"""E2E-HIM (our implementation) on the CPU: time per frame, and time against people in the picture.

    .venv/bin/python bench/model_cpu.py [--repeats 5] [--out bench/results]

Random weights (the official checkpoint is not shipped; the compute does not depend on the values).
1. The network alone, batch 1, at 640x640 and 640x352 (W x H, the 16:9 input): fp32 as the engine
   runs it (NNPACK's Winograd/FFT for the 3x3 and 5x5 convolutions, their transforms kept, NCHW; Swin's
   linear layers through oneDNN with packed weights), fp32 with oneDNN only
   (channels_last, the previous default), and bf16 autocast (not the official function to 1e-5; for
   reference): median and p95 of --repeats runs after a warm-up.
2. The whole engine (pre-process, network, post-process) at 640x640 on ../shared/media/group1.jpg,
   group2.jpg and crops of them with fewer people (approximate counts, judged by eye): the cost must
   not grow with the number of people.
The CPU may be shared with other work: the load average before and after each section is recorded.
Writes bench/results/model_cpu_<date>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import time
from pathlib import Path
from unittest.mock import patch

from livematte.memory import tune_process

tune_process()  # before torch loads: libgomp reads then how its threads wait, as in livematte's commands

import cv2
import numpy as np
import torch

import livematte
from livematte.engine.torch_engine import TorchEngine
from livematte.model import conv
from livematte.model.e2ehim import E2EHIM
from livematte.model.kept import KeptWeights
from pipelines.report import cpu_model, openmp_wait, write_report

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"
SIZES = {"640x640": (640, 640), "640x352": (352, 640)}  # name W x H -> (h, w)
# (image, x0, x1, y0, y1 as fractions of the picture, people in the crop)
CROPS = [
    ("group1.jpg", 0.73, 1.0, 0.0, 0.2, 0),
    ("group1.jpg", 0.0, 0.32, 0.0, 1.0, 1),
    ("group2.jpg", 0.0, 0.30, 0.0, 1.0, 1),
    ("group1.jpg", 0.0, 0.50, 0.0, 1.0, 2),
    ("group2.jpg", 0.0, 0.47, 0.0, 1.0, 2),
    ("group1.jpg", 0.0, 1.0, 0.0, 1.0, 4),
    ("group2.jpg", 0.0, 1.0, 0.0, 1.0, 4),
]


def summary(seconds: list[float]) -> dict[str, float]:
    ms = sorted(1000 * s for s in seconds)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return {"median_ms": round(statistics.median(ms), 1), "p95_ms": round(p95, 1), "min_ms": round(ms[0], 1),
            "runs": len(ms)}


def time_calls(call, repeats: int, warmup_s: float = 3.0) -> list[float]:
    """Times of `repeats` calls after a warm-up: oneDNN picks and builds its kernels on the first call of
    each shape, and this shared host runs the first seconds of a busy process slower."""
    start = time.perf_counter()
    call()
    while time.perf_counter() - start < warmup_s:
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def network(model: E2EHIM, repeats: int) -> list[dict]:
    """fp32 as the engine runs it on a CPU (NNPACK, NCHW), fp32 with oneDNN only (the convolutions torch
    picks by itself, channels_last), and bf16 autocast (the engine's bf16 option) for reference."""
    rows, nnpack = [], conv.nnpack_ready()
    for name, (h, w) in SIZES.items():
        for precision, convolutions, channels_last in (("fp32", "nnpack", False), ("fp32", "onednn", True),
                                                       ("bf16", "onednn", True)):
            layout = torch.channels_last if channels_last else torch.contiguous_format
            model.to(memory_format=layout)
            image = torch.randn(1, 3, h, w).contiguous(memory_format=layout)
            with (torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"),
                  patch.object(conv, "nnpack_ready", lambda: nnpack and convolutions == "nnpack")):
                times = time_calls(lambda: model(image), repeats)
            rows.append({"size": name, "precision": precision, "convolutions": convolutions,
                         "channels_last": channels_last, "load_after": os.getloadavg()[0], **summary(times),
                         "kept_weights_mb": round(kept_bytes(model) / 2**20)})
            print(rows[-1], flush=True)
    return rows


def kept_bytes(model: E2EHIM) -> int:
    """Memory the modules keep beside their weights: NNPACK kernel transforms, phase kernels, packed matrices."""
    return sum(module.kept.nbytes for module in model.modules()
               if isinstance(getattr(module, "kept", None), KeptWeights))


def matmul_gmacs() -> float:
    """This host's speed just now: a 2048^3 fp32 matrix product, in billions of multiply-adds a second."""
    a = torch.randn(2048, 2048)
    times = time_calls(lambda: a @ a, 5, warmup_s=1.0)
    return round(2048**3 / statistics.median(times) / 1e9, 1)


def people(model: E2EHIM, repeats: int) -> list[dict]:
    engine = TorchEngine(model, input_size=(640, 640), warmup=True)
    rows = []
    for image_name, x0, x1, y0, y1, count in CROPS:
        picture = cv2.imread(str(MEDIA / image_name))
        if picture is None:
            raise SystemExit(f"{MEDIA / image_name} not found: the people benchmark needs ../shared/media")
        h, w = picture.shape[:2]
        crop = np.ascontiguousarray(picture[int(y0 * h): int(y1 * h), int(x0 * w): int(x1 * w)])
        found = []
        times = time_calls(lambda: found.append(len(engine.infer([crop])[0])), repeats)
        rows.append({"image": image_name, "crop_xyxy": [x0, y0, x1, y1], "frame": f"{crop.shape[1]}x{crop.shape[0]}",
                     "people": count, "instances_kept_random_weights": found[-1],
                     "load_after": os.getloadavg()[0], **summary(times)})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = E2EHIM().eval()
    load_before = os.getloadavg()
    result = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                   "torch": torch.__version__, "python": platform.python_version(), "openmp_wait": openmp_wait(),
                   "livematte": livematte.__version__},
        "batch": 1, "weights": "random",
        "engine_precision": ("fp32, NNPACK for 3x3/5x5 (3x3 kernels' transforms kept between calls), NCHW; "
                             "Swin's linear layers through oneDNN with packed weights"),
        "load_average_before": load_before,
        "matmul_gmacs_before": matmul_gmacs(),
        "network": network(model, args.repeats),
        "people_engine_640x640": people(model, args.repeats),
        "load_average_after": os.getloadavg(),
        "matmul_gmacs_after": matmul_gmacs(),
        "note": ("The 2-core CPU is shared with other engineers' processes. This benchmark's own two threads "
                 "make a 1-minute load average of about 2; well above 2, the network got only part of the "
                 "cores. min_ms is the least disturbed run. matmul_gmacs_before/after: the host's speed "
                 "around the run (a 2048^3 fp32 product; about 90 on a quiet host here)."),
    }
    print(f"wrote {write_report(result, args.out, 'model_cpu')}")


if __name__ == "__main__":
    main()
